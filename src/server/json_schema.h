// JSON Schema, the subset that real clients send for structured output and tool parameters
// (OpenAI structured outputs, pydantic, zod, LangChain), compiled into a graph of nodes that the
// constrained decoder (json_constraint.h) walks byte by byte, plus a plain validator.
//
// Supported keywords:
//   type (a name or a list), enum, const, nullable (OpenAPI)
//   string:  minLength, maxLength
//   number / integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers, or draft-4 booleans)
//   array:   items (one schema), minItems, maxItems
//   object:  properties, required, additionalProperties (true, false or a schema)
//   anyOf, oneOf (treated as anyOf: the usual clients' oneOf has disjoint branches), allOf with one
//   schema, $ref to "#" or into $defs / definitions of the same document (recursion allowed)
// Annotations are ignored: title, description, default, examples, format (an annotation since
// draft 2019-09), $schema, $id, $comment, deprecated, readOnly, writeOnly, strict, discriminator.
// Keywords that would constrain the value in ways the decoder cannot enforce (pattern, multipleOf,
// not, if/then/else, patternProperties, prefixItems, uniqueItems, contains, minProperties,
// maxProperties, propertyNames, dependent*, unevaluated*, allOf with several schemas) are refused in
// strict mode (response_format: the output must validate) and ignored otherwise (tool parameters).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chat/json.h"

namespace g4::server {

using Json = chat::Json;

struct SchemaNode {
  enum TypeBits : uint8_t {
    kNull = 1,
    kBoolean = 2,
    kInteger = 4,  // integers only
    kNumber = 8,   // any number (integers included)
    kString = 16,
    kArray = 32,
    kObject = 64,
    kAnyType = 127,
  };
  uint8_t types = kAnyType;
  bool never = false;  // the `false` schema: no value matches

  bool has_enum = false;
  std::vector<Json> enum_values;

  int64_t min_length = 0, max_length = -1;  // code points; -1: unbounded

  std::optional<double> minimum, maximum;
  bool exclusive_minimum = false, exclusive_maximum = false;

  const SchemaNode* items = nullptr;  // null: any value
  int64_t min_items = 0, max_items = -1;

  std::vector<std::pair<std::string, const SchemaNode*>> properties;
  std::vector<std::string> required;
  bool additional_allowed = true;
  const SchemaNode* additional = nullptr;  // schema of other properties (null: any value)

  std::vector<const SchemaNode*> any_of;  // non-empty: the value matches one of these

  bool HasRange() const { return minimum || maximum; }
  // Index of a property, or -1.
  int FindProperty(const std::string& name) const;
  bool IsRequired(const std::string& name) const;
};

class Schema {
 public:
  // Compiles `schema`. Every problem is a g4::Error whose message starts with the path of the
  // offending keyword under `path`, e.g. "response_format.json_schema.schema.properties.age.minimum:
  // must be a number". strict: refuse keywords the decoder cannot enforce (see above).
  static std::shared_ptr<const Schema> Compile(const Json& schema, const std::string& path, bool strict);
  // Any JSON value.
  static std::shared_ptr<const Schema> AnyValue();
  // Any JSON object (response_format json_object, tool arguments without parameters).
  static std::shared_ptr<const Schema> AnyObject();

  const SchemaNode* root() const { return root_; }

  // Full validation: "" when `value` matches, else what is wrong and where (a JSON pointer).
  std::string Validate(const Json& value) const;
  static std::string Validate(const SchemaNode* node, const Json& value, const std::string& pointer);

 private:
  class Compiler;
  std::deque<SchemaNode> nodes_;
  const SchemaNode* root_ = nullptr;
};

}  // namespace g4::server
