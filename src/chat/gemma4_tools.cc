// Gemma 4 tool declarations, transcribed from the format_parameters and format_function_declaration
// macros of the official templates. The Jinja semantics are kept on purpose, because the model saw
// whatever they produce:
//  * properties are sorted case-insensitively (dictsort), and a property named like a schema keyword
//    (description, type, properties, required, nullable) is skipped;
//  * a property whose schema is not an object prints as {type:<|"|><|"|>}; a list-valued "type"
//    prints its upper-cased Python repr; a null description prints "None";
//  * an object schema without "properties" lists its other keys as if they were properties;
//  * parameters without "type" never close their brace, and keep a dangling comma.
#include "chat/format.h"
#include "chat/gemma_syntax.h"
#include "chat/render_internal.h"
#include "util/error.h"

namespace g4::chat::internal {
namespace {

using py::Item;
using py::Str;
using py::Truthy;
using py::Value;

bool IsStandardKey(const std::string& key) {
  return key == "description" || key == "type" || key == "properties" || key == "required" || key == "nullable";
}

class DeclarationWriter {
 public:
  DeclarationWriter(bool interleaved, std::string* out)
      : interleaved_(interleaved), q_(MarkersFor(ChatFormat::kGemma4).string_delimiter), out_(*out) {}

  void Declaration(const Json& tool, const std::string& path) {
    const Json& fn = tool.at("function");
    out_ += "declaration:" + Str(Item(&fn, "name")) + "{description:" + q_ + Str(Item(&fn, "description")) + q_;
    Value params = Item(&fn, "parameters");
    if (Truthy(params)) {
      out_ += ",parameters:{";
      if (Truthy(Item(params, "properties"))) {
        out_ += "properties:{";
        Parameters(*Item(params, "properties"), path + ".function.parameters.properties");
        out_ += "},";
      }
      if (Value required = Item(params, "required"); Truthy(required)) {
        out_ += "required:[";
        RequiredList(required, path + ".function.parameters.required");
        out_ += "],";
      }
      if (Value type = Item(params, "type"); Truthy(type)) out_ += "type:" + q_ + py::Upper(Str(type)) + q_ + "}";
    }
    if (fn.contains("response")) {
      Value response = Item(&fn, "response");
      out_ += ",response:{";
      if (Value desc = Item(response, "description"); Truthy(desc)) out_ += "description:" + q_ + Str(desc) + q_ + ",";
      const std::string type = py::Upper(Str(Item(response, "type")));
      if (type == "OBJECT") out_ += "type:" + q_ + type + q_ + "}";
    }
    out_ += "}";
  }

 private:
  // <|"|>a<|"|>,<|"|>b<|"|> for `for item in list`.
  void RequiredList(Value list, const std::string& path) {
    const std::vector<Json> items = Iterate(list, path);
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += ",";
      out_ += q_ + Str(&items[i]) + q_;
    }
  }

  // The template's `{%- if add_comma %},{%- else -%}{%- set add_comma = true -%}{% endif -%}`.
  static void Comma(bool* add_comma, std::string* out) {
    if (*add_comma) out->push_back(',');
    *add_comma = true;
  }

  void Parameters(const Json& properties, const std::string& path) {
    bool found_first = false;
    for (const auto& [key_ptr, value] : py::DictSort(properties)) {
      const std::string& key = *key_ptr;
      if (IsStandardKey(key)) continue;
      if (found_first) out_ += ",";
      found_first = true;
      const std::string vpath = path + "." + key;
      out_ += key + ":{";
      bool add_comma = false;
      if (Value desc = Item(value, "description"); Truthy(desc)) {
        out_ += "description:" + q_ + Str(desc) + q_;
        add_comma = true;
      }
      const std::string type = py::Upper(Str(Item(value, "type")));
      if (interleaved_) {
        Nullable(value, &add_comma);
        if (type == "STRING") {
          Enum(value, &add_comma);
        } else if (type == "OBJECT") {
          // The interleaved template writes these commas unconditionally and leaves add_comma alone.
          out_ += ",properties:{";
          NestedProperties(value, vpath);
          out_ += "}";
          if (Value required = Item(value, "required"); Truthy(required)) {
            out_ += ",required:[";
            RequiredList(required, vpath + ".required");
            out_ += "]";
          }
        } else if (type == "ARRAY") {
          Items(value, vpath, &add_comma);
        }
      } else {
        if (type == "STRING") {
          Enum(value, &add_comma);
        } else if (type == "ARRAY") {
          Items(value, vpath, &add_comma);
        }
        Nullable(value, &add_comma);
        if (type == "OBJECT") {
          if (IsNestedMapping(value)) {
            Comma(&add_comma, &out_);
            out_ += "properties:{";
            NestedProperties(value, vpath);
            out_ += "}";
          }
          if (Value required = Item(value, "required"); Truthy(required)) {
            Comma(&add_comma, &out_);
            out_ += "required:[";
            RequiredList(required, vpath + ".required");
            out_ += "]";
          }
        }
      }
      Comma(&add_comma, &out_);
      out_ += "type:" + q_ + type + q_ + "}";
    }
  }

  // `value['properties'] is mapping` or else `value is mapping`: whether there is anything to list.
  static bool IsNestedMapping(Value value) { return py::IsMapping(Item(value, "properties")) || py::IsMapping(value); }

  void NestedProperties(Value value, const std::string& path) {
    Value props = Item(value, "properties");
    if (py::IsMapping(props)) {
      Parameters(*props, path + ".properties");
    } else if (py::IsMapping(value)) {
      Parameters(*value, path);
    }
  }

  void Nullable(Value value, bool* add_comma) {
    if (Truthy(Item(value, "nullable"))) {
      Comma(add_comma, &out_);
      out_ += "nullable:true";
    }
  }

  void Enum(Value value, bool* add_comma) {
    if (Value e = Item(value, "enum"); Truthy(e)) {
      Comma(add_comma, &out_);
      out_ += "enum:";
      AppendGemmaValue(e, /*quote_keys=*/true, q_, &out_);
    }
  }

  void Items(Value value, const std::string& path, bool* add_comma) {
    Value items = Item(value, "items");
    if (!py::IsMapping(items) || !Truthy(items)) return;
    if (interleaved_) {
      out_ += ",items:{";
    } else {
      Comma(add_comma, &out_);
      out_ += "items:{";
    }
    bool found_first = false;
    for (const auto& [key_ptr, item_value] : py::DictSort(*items)) {
      const std::string& item_key = *key_ptr;
      if (py::IsNone(item_value)) continue;
      if (found_first) out_ += ",";
      found_first = true;
      const std::string ipath = path + ".items." + item_key;
      if (item_key == "properties") {
        out_ += "properties:{";
        if (py::IsMapping(item_value)) Parameters(*item_value, ipath);
        out_ += "}";
      } else if (item_key == "required") {
        out_ += "required:[";
        RequiredList(item_value, ipath);
        out_ += "]";
      } else if (item_key == "type") {
        out_ += "type:";
        if (py::IsString(item_value)) {
          const Json upper = py::Upper(item_value->get_ref<const std::string&>());
          AppendGemmaValue(&upper, true, q_, &out_);
        } else {
          // item_value | map('upper') | list
          Json upper = Json::array();
          for (const Json& t : Iterate(item_value, ipath)) upper.push_back(py::Upper(Str(&t)));
          AppendGemmaValue(&upper, true, q_, &out_);
        }
      } else {
        out_ += item_key + ":";
        AppendGemmaValue(item_value, true, q_, &out_);
      }
    }
    out_ += "}";
  }

  bool interleaved_;
  std::string q_;
  std::string& out_;
};

}  // namespace

void AppendGemma4ToolDeclaration(const Json& tool, size_t index, bool interleaved, std::string* out) {
  const Markers& m = MarkersFor(ChatFormat::kGemma4);
  out->append(m.tool_declaration_start);
  // The template pipes the declaration through `trim`; it always starts with "declaration:" and
  // ends with "}", so that changes nothing.
  DeclarationWriter(interleaved, out).Declaration(tool, "tools[" + std::to_string(index) + "]");
  out->append(m.tool_declaration_end);
}

}  // namespace g4::chat::internal
