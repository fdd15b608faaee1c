// The JSON type of the chat library. Objects keep their insertion order, as Python's dict does: the
// templates sort keys case-insensitively with a stable sort, so keys that differ only in case come
// out in the order the request wrote them, and repr() of a dict prints it in that order too.
#pragma once

#include <nlohmann/json.hpp>

namespace g4::chat {

using Json = nlohmann::ordered_json;

}  // namespace g4::chat
