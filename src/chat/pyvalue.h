// Python and Jinja semantics over JSON values, as far as the official chat templates reach them.
// The templates print values with str(), test them for truth, sort dict items with `dictsort`,
// upper-case with `upper` and strip with `trim`; a native renderer that agrees byte for byte with
// Jinja has to do exactly the same things, including on odd inputs (a null description prints
// "None", a list-valued type prints its repr()).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/json.h"

namespace g4::chat::py {

// Jinja's Undefined (a missing key) is represented by nullptr throughout.
using Value = const Json*;

// obj[key] as the sandboxed Jinja environment evaluates it on a dict: the value, or Undefined when
// obj is not an object or has no such key. (The one attribute fallback a template could reach,
// dict.items, is never printed by the templates, only tested for being a mapping, so it needs none.)
Value Item(Value obj, std::string_view key);

// Python truth: Undefined, None, False, 0, 0.0, "", [] and {} are false.
bool Truthy(Value v);

// Jinja's `is string`, `is mapping`, `is sequence` (a dict, a list, a string, and also Undefined,
// which has a length and no items), `is none`.
bool IsString(Value v);
bool IsMapping(Value v);
bool IsSequence(Value v);
bool IsNone(Value v);

// str(v) as Jinja prints it: Undefined prints "", strings print themselves, everything else as
// Python's str() (None, True, 1.0, 1e-05, [1, 'a'], {'k': None}).
std::string Str(Value v);

// repr(v) of the Python object json.loads would have built.
std::string Repr(const Json& v);

// repr(x) of a Python float: the shortest round-trip digits in Python's layout.
std::string FloatRepr(double x);

// Python's == between two values (1 == 1.0 == True; Undefined equals nothing here, as the templates
// only compare values they fetched with dict.get, which gives None rather than Undefined).
bool Equals(Value a, Value b);

// `dictsort`: the items of an object sorted by key, case-insensitively (str.lower()), stable.
std::vector<std::pair<const std::string*, const Json*>> DictSort(const Json& obj);

// str.strip(), str.lower(), str.upper() on UTF-8 text, with Python's Unicode tables.
std::string Strip(std::string_view s);
std::string Lower(std::string_view s);
std::string Upper(std::string_view s);

}  // namespace g4::chat::py
