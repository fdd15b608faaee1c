#include "server/json_schema.h"

#include <cmath>
#include <set>

#include "util/error.h"

namespace g4::server {

namespace {

// Deeper schemas than any client writes; bounds the compiler's recursion on hostile input.
constexpr int kMaxSchemaDepth = 64;
// The decoder tracks which properties an object has seen in a fixed-size bitset.
constexpr size_t kMaxProperties = 256;

const std::set<std::string>& Annotations() {
  static const std::set<std::string> k = {"title",    "description", "default",   "examples",   "format",
                                          "$schema",  "$id",         "$comment",  "deprecated", "readOnly",
                                          "writeOnly", "strict",     "discriminator", "$defs",  "definitions",
                                          "name",     "example",     "externalDocs", "xml",     "$anchor"};
  return k;
}

const std::set<std::string>& Unsupported() {
  static const std::set<std::string> k = {
      "pattern",          "multipleOf",        "not",                "if",
      "then",             "else",              "patternProperties",  "prefixItems",
      "uniqueItems",      "contains",          "minContains",        "maxContains",
      "minProperties",    "maxProperties",     "propertyNames",      "dependentRequired",
      "dependentSchemas", "dependencies",      "unevaluatedItems",   "unevaluatedProperties",
      "additionalItems",  "contentEncoding",   "contentMediaType",   "contentSchema",
      "$dynamicRef",      "$recursiveRef"};
  return k;
}

// Keywords that constrain a value (everything that is neither an annotation nor a combinator).
bool IsValidating(const std::string& key) {
  return !Annotations().count(key) && key != "$ref" && key != "anyOf" && key != "oneOf" && key != "allOf";
}

int64_t CodePoints(const std::string& s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool JsonEqual(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto jt = b.find(it.key());
      if (jt == b.end() || !JsonEqual(*it, *jt)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!JsonEqual(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

uint8_t TypeBit(const std::string& name, const std::string& path) {
  if (name == "null") return SchemaNode::kNull;
  if (name == "boolean") return SchemaNode::kBoolean;
  if (name == "integer") return SchemaNode::kInteger;
  if (name == "number") return SchemaNode::kNumber;
  if (name == "string") return SchemaNode::kString;
  if (name == "array") return SchemaNode::kArray;
  if (name == "object") return SchemaNode::kObject;
  Fail("%s: unknown type '%s' (expected null, boolean, integer, number, string, array or object)", path.c_str(),
       name.c_str());
}

std::string Join(const std::string& path, const std::string& key) {
  std::string p = path;
  p += '.';
  p += key;
  return p;
}

std::string Index(const std::string& path, size_t i) {
  std::string p = path;
  p += '[';
  p += std::to_string(i);
  p += ']';
  return p;
}

int64_t NonNegative(const Json& v, const std::string& path) {
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())) {
    Fail("%s: must be a non-negative integer", path.c_str());
  }
  const double d = v.get<double>();
  if (d < 0) Fail("%s: must be a non-negative integer", path.c_str());
  return d > 1e15 ? int64_t{1000000000000000} : static_cast<int64_t>(d);
}

double Number(const Json& v, const std::string& path) {
  if (!v.is_number()) Fail("%s: must be a number", path.c_str());
  const double d = v.get<double>();
  if (!std::isfinite(d)) Fail("%s: must be finite", path.c_str());
  return d;
}

// Is there a number (an integer when integer_only) in the node's range?
bool RangeSatisfiable(const SchemaNode& n, bool integer_only) {
  double lo = n.minimum ? *n.minimum : -INFINITY, hi = n.maximum ? *n.maximum : INFINITY;
  if (integer_only) {
    double ilo = std::ceil(lo), ihi = std::floor(hi);
    if (n.exclusive_minimum && ilo == lo) ilo += 1;
    if (n.exclusive_maximum && ihi == hi) ihi -= 1;
    return ilo <= ihi;
  }
  if (lo < hi) return true;
  return lo == hi && !n.exclusive_minimum && !n.exclusive_maximum;
}

}  // namespace

int SchemaNode::FindProperty(const std::string& name) const {
  for (size_t i = 0; i < properties.size(); ++i) {
    if (properties[i].first == name) return static_cast<int>(i);
  }
  return -1;
}

bool SchemaNode::IsRequired(const std::string& name) const {
  for (const auto& r : required) {
    if (r == name) return true;
  }
  return false;
}

class Schema::Compiler {
 public:
  Compiler(Schema* s, const Json& doc, bool strict) : s_(s), doc_(doc), strict_(strict) {}

  const SchemaNode* Compile(const Json& j, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) Fail("%s: schema nested deeper than %d levels", path.c_str(), kMaxSchemaDepth);
    if (j.is_boolean()) {
      SchemaNode* n = New();
      n->never = !j.get<bool>();
      return n;
    }
    if (!j.is_object()) Fail("%s: a schema must be an object or a boolean", path.c_str());
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (strict_ && Unsupported().count(it.key())) {
        Fail("%s.%s: this keyword is not supported for constrained output (supported: type, enum, const, "
             "properties, required, additionalProperties, items, minItems, maxItems, minLength, maxLength, "
             "minimum, maximum, exclusiveMinimum, exclusiveMaximum, anyOf, oneOf, $ref)",
             path.c_str(), it.key().c_str());
      }
    }
    auto siblings_validate = [&](const char* combinator) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() != combinator && IsValidating(it.key()) && !Unsupported().count(it.key()) && it.key() != "nullable") {
          if (strict_) {
            Fail("%s: '%s' beside '%s' is not supported; move it into the %s schemas", path.c_str(), it.key().c_str(),
                 combinator, combinator);
          }
        }
      }
    };
    if (auto r = j.find("$ref"); r != j.end()) {
      if (!r->is_string()) Fail("%s.$ref: must be a string", path.c_str());
      siblings_validate("$ref");
      return Ref(r->get<std::string>(), Join(path, "$ref"), depth);
    }
    if (auto a = j.find("allOf"); a != j.end()) {
      if (!a->is_array() || a->empty()) Fail("%s.allOf: must be a non-empty array of schemas", path.c_str());
      if (a->size() == 1) {
        siblings_validate("allOf");
        return Compile((*a)[0], Index(Join(path, "allOf"), 0), depth + 1);
      }
      if (strict_) Fail("%s.allOf: only a single schema is supported", path.c_str());
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      auto a = j.find(key);
      if (a == j.end()) continue;
      if (!a->is_array() || a->empty()) Fail("%s.%s: must be a non-empty array of schemas", path.c_str(), key);
      siblings_validate(key);
      SchemaNode* n = New();
      for (size_t i = 0; i < a->size(); ++i) {
        n->any_of.push_back(Compile((*a)[i], Index(Join(path, key), i), depth + 1));
      }
      if (j.value("nullable", false)) n->any_of.push_back(NullNode());
      return n;
    }
    SchemaNode* n = New();
    Fill(n, j, path, depth);
    return n;
  }

 private:
  SchemaNode* New() {
    s_->nodes_.emplace_back();
    return &s_->nodes_.back();
  }

  const SchemaNode* NullNode() {
    SchemaNode* n = New();
    n->types = SchemaNode::kNull;
    return n;
  }

  // "#", "#/$defs/Name", "#/definitions/Name" or any JSON pointer into the document.
  const SchemaNode* Ref(const std::string& ref, const std::string& path, int depth) {
    if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
    if (ref.empty() || ref[0] != '#') {
      Fail("%s: only references into the same schema are supported ('#/$defs/...'), not '%s'", path.c_str(),
           ref.c_str());
    }
    const Json* target = nullptr;
    try {
      target = &doc_.at(Json::json_pointer(ref.substr(1)));
    } catch (const Json::exception&) {
      Fail("%s: '%s' does not point into the schema", path.c_str(), ref.c_str());
    }
    // A placeholder first, so that a recursive reference finds it.
    SchemaNode* n = New();
    refs_[ref] = n;
    const SchemaNode* compiled = Compile(*target, path, depth + 1);
    *n = *compiled;
    return n;
  }

  void Fill(SchemaNode* n, const Json& j, const std::string& path, int depth) {
    if (auto t = j.find("type"); t != j.end()) {
      n->types = 0;
      if (t->is_string()) {
        n->types = TypeBit(t->get<std::string>(), Join(path, "type"));
      } else if (t->is_array() && !t->empty()) {
        for (size_t i = 0; i < t->size(); ++i) {
          if (!(*t)[i].is_string()) Fail("%s: must be a type name", Index(Join(path, "type"), i).c_str());
          n->types |= TypeBit((*t)[i].get<std::string>(), Index(Join(path, "type"), i));
        }
      } else {
        Fail("%s.type: must be a type name or a non-empty list of them", path.c_str());
      }
      if (auto nb = j.find("nullable"); nb != j.end() && nb->is_boolean() && nb->get<bool>()) n->types |= SchemaNode::kNull;
    }
    // Strings.
    if (auto v = j.find("minLength"); v != j.end()) n->min_length = NonNegative(*v, Join(path, "minLength"));
    if (auto v = j.find("maxLength"); v != j.end()) n->max_length = NonNegative(*v, Join(path, "maxLength"));
    if (n->max_length >= 0 && n->min_length > n->max_length) {
      Fail("%s: minLength is greater than maxLength", path.c_str());
    }
    // Numbers: draft 6+ exclusive bounds are numbers, draft 4 ones booleans qualifying minimum/maximum.
    if (auto v = j.find("minimum"); v != j.end()) n->minimum = Number(*v, Join(path, "minimum"));
    if (auto v = j.find("maximum"); v != j.end()) n->maximum = Number(*v, Join(path, "maximum"));
    if (auto v = j.find("exclusiveMinimum"); v != j.end()) {
      if (v->is_boolean()) {
        n->exclusive_minimum = v->get<bool>() && n->minimum;
      } else {
        const double x = Number(*v, Join(path, "exclusiveMinimum"));
        if (!n->minimum || x >= *n->minimum) {
          n->minimum = x;
          n->exclusive_minimum = true;
        }
      }
    }
    if (auto v = j.find("exclusiveMaximum"); v != j.end()) {
      if (v->is_boolean()) {
        n->exclusive_maximum = v->get<bool>() && n->maximum;
      } else {
        const double x = Number(*v, Join(path, "exclusiveMaximum"));
        if (!n->maximum || x <= *n->maximum) {
          n->maximum = x;
          n->exclusive_maximum = true;
        }
      }
    }
    if (n->HasRange() && (n->types & (SchemaNode::kInteger | SchemaNode::kNumber))) {
      const bool integer_only = !(n->types & SchemaNode::kNumber);
      if (!RangeSatisfiable(*n, integer_only)) {
        if (n->types == SchemaNode::kInteger || n->types == SchemaNode::kNumber) {
          Fail("%s: no %s lies between minimum and maximum", path.c_str(), integer_only ? "integer" : "number");
        }
        n->types &= static_cast<uint8_t>(~(SchemaNode::kInteger | SchemaNode::kNumber));
      }
    }
    // Arrays.
    if (auto v = j.find("items"); v != j.end()) {
      if (v->is_array()) {
        Fail("%s.items: a list of schemas (tuple validation) is not supported; use one schema", path.c_str());
      }
      n->items = Compile(*v, Join(path, "items"), depth + 1);
    }
    if (auto v = j.find("minItems"); v != j.end()) n->min_items = NonNegative(*v, Join(path, "minItems"));
    if (auto v = j.find("maxItems"); v != j.end()) n->max_items = NonNegative(*v, Join(path, "maxItems"));
    if (n->max_items >= 0 && n->min_items > n->max_items) Fail("%s: minItems is greater than maxItems", path.c_str());
    if (n->items && n->items->never && n->min_items > 0 && n->types == SchemaNode::kArray) {
      Fail("%s: items allows no value but minItems is %lld", path.c_str(), (long long)n->min_items);
    }
    // Objects.
    if (auto v = j.find("properties"); v != j.end()) {
      if (!v->is_object()) Fail("%s.properties: must be an object", path.c_str());
      if (v->size() > kMaxProperties) {
        Fail("%s.properties: more than %zu properties are not supported", path.c_str(), kMaxProperties);
      }
      for (auto it = v->begin(); it != v->end(); ++it) {
        n->properties.push_back({it.key(), Compile(*it, Join(Join(path, "properties"), it.key()), depth + 1)});
      }
    }
    if (auto v = j.find("required"); v != j.end()) {
      if (!v->is_array()) Fail("%s.required: must be an array of property names", path.c_str());
      for (size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_string()) Fail("%s: must be a string", Index(Join(path, "required"), i).c_str());
        const std::string name = (*v)[i].get<std::string>();
        if (!n->IsRequired(name)) n->required.push_back(name);
      }
    }
    if (auto v = j.find("additionalProperties"); v != j.end()) {
      if (v->is_boolean()) {
        n->additional_allowed = v->get<bool>();
      } else {
        n->additional = Compile(*v, Join(path, "additionalProperties"), depth + 1);
        n->additional_allowed = !n->additional->never;
      }
    }
    for (const auto& r : n->required) {
      const int p = n->FindProperty(r);
      if (p < 0 && !n->additional_allowed && (n->types & SchemaNode::kObject)) {
        Fail("%s.required: '%s' is required but additionalProperties is false and it is not in properties",
             path.c_str(), r.c_str());
      }
      if (p >= 0 && n->properties[static_cast<size_t>(p)].second->never && (n->types & SchemaNode::kObject)) {
        Fail("%s.required: '%s' is required but its schema allows no value", path.c_str(), r.c_str());
      }
    }
    // enum / const last: values that break the node's other constraints are dropped.
    std::vector<Json> values;
    bool has_enum = false;
    if (auto v = j.find("enum"); v != j.end()) {
      if (!v->is_array() || v->empty()) Fail("%s.enum: must be a non-empty array", path.c_str());
      has_enum = true;
      for (const auto& x : *v) values.push_back(x);
    }
    if (auto v = j.find("const"); v != j.end()) {
      has_enum = true;
      values = {*v};
    }
    if (has_enum) {
      for (const auto& x : values) {
        if (Schema::Validate(n, x, "").empty()) n->enum_values.push_back(x);
      }
      if (n->enum_values.empty()) Fail("%s: no value of enum/const matches the schema's other keywords", path.c_str());
      n->has_enum = true;
    }
    if (n->types == 0) Fail("%s.type: allows no value", path.c_str());
  }

  Schema* s_;
  const Json& doc_;
  bool strict_;
  std::map<std::string, SchemaNode*> refs_;
};

std::shared_ptr<const Schema> Schema::Compile(const Json& schema, const std::string& path, bool strict) {
  auto s = std::make_shared<Schema>();
  Compiler c(s.get(), schema, strict);
  s->root_ = c.Compile(schema, path, 0);
  if (s->root_->never) Fail("%s: the schema allows no value", path.c_str());
  return s;
}

std::shared_ptr<const Schema> Schema::AnyValue() {
  static const std::shared_ptr<const Schema> any = [] {
    auto s = std::make_shared<Schema>();
    s->nodes_.emplace_back();
    s->root_ = &s->nodes_.back();
    return s;
  }();
  return any;
}

std::shared_ptr<const Schema> Schema::AnyObject() {
  static const std::shared_ptr<const Schema> obj = [] {
    auto s = std::make_shared<Schema>();
    s->nodes_.emplace_back();
    s->nodes_.back().types = SchemaNode::kObject;
    s->root_ = &s->nodes_.back();
    return s;
  }();
  return obj;
}

std::string Schema::Validate(const Json& value) const { return Validate(root_, value, ""); }

std::string Schema::Validate(const SchemaNode* n, const Json& v, const std::string& ptr) {
  auto at = [&](const std::string& what) {
    std::string s = ptr.empty() ? "/" : ptr;
    s += ": ";
    s += what;
    return s;
  };
  if (n == nullptr) return "";
  if (n->never) return at("no value is allowed here");
  if (!n->any_of.empty()) {
    std::string first;
    for (const SchemaNode* b : n->any_of) {
      std::string e = Validate(b, v, ptr);
      if (e.empty()) return "";
      if (first.empty()) first = e;
    }
    return at("matches none of the anyOf/oneOf schemas (first: " + first + ")");
  }
  uint8_t bit = 0;
  if (v.is_null()) {
    bit = SchemaNode::kNull;
  } else if (v.is_boolean()) {
    bit = SchemaNode::kBoolean;
  } else if (v.is_number_integer()) {
    bit = SchemaNode::kInteger | SchemaNode::kNumber;
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    bit = SchemaNode::kNumber | (std::isfinite(d) && std::floor(d) == d ? SchemaNode::kInteger : 0);
  } else if (v.is_string()) {
    bit = SchemaNode::kString;
  } else if (v.is_array()) {
    bit = SchemaNode::kArray;
  } else if (v.is_object()) {
    bit = SchemaNode::kObject;
  }
  if (!(n->types & bit)) return at("wrong type " + std::string(v.type_name()));
  if (n->has_enum) {
    bool found = false;
    for (const auto& e : n->enum_values) found = found || JsonEqual(e, v);
    if (!found) return at("not one of the enum values");
  }
  if (v.is_string()) {
    const int64_t len = CodePoints(v.get_ref<const std::string&>());
    if (len < n->min_length) return at("shorter than minLength");
    if (n->max_length >= 0 && len > n->max_length) return at("longer than maxLength");
  } else if (v.is_number()) {
    const double d = v.get<double>();
    if (n->minimum && (d < *n->minimum || (n->exclusive_minimum && d == *n->minimum))) return at("below the minimum");
    if (n->maximum && (d > *n->maximum || (n->exclusive_maximum && d == *n->maximum))) return at("above the maximum");
  } else if (v.is_array()) {
    const auto size = static_cast<int64_t>(v.size());
    if (size < n->min_items) return at("fewer items than minItems");
    if (n->max_items >= 0 && size > n->max_items) return at("more items than maxItems");
    for (size_t i = 0; i < v.size(); ++i) {
      std::string e = Validate(n->items, v[i], ptr + "/" + std::to_string(i));
      if (!e.empty()) return e;
    }
  } else if (v.is_object()) {
    for (const auto& r : n->required) {
      if (!v.contains(r)) return at("missing required property '" + r + "'");
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      const int p = n->FindProperty(it.key());
      std::string child = ptr;
      child += '/';
      child += it.key();
      if (p >= 0) {
        std::string e = Validate(n->properties[static_cast<size_t>(p)].second, *it, child);
        if (!e.empty()) return e;
      } else if (!n->additional_allowed) {
        return at("property '" + it.key() + "' is not allowed");
      } else {
        std::string e = Validate(n->additional, *it, child);
        if (!e.empty()) return e;
      }
    }
  }
  return "";
}

}  // namespace g4::server
