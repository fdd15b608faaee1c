#include "formats/ggml_types.h"

#include <array>
#include <cctype>
#include <string>

#include "util/error.h"

namespace g4 {

namespace {
struct Entry {
  uint32_t id;
  GgmlTypeTraits traits;
};
// Block sizes and byte sizes from ggml/src/ggml-common.h. Types we cannot compute with are still
// listed so that `gemma4 info` can name them and errors say "unsupported" rather than "unknown".
constexpr std::array<Entry, 31> kTypes = {{
    {0, {"f32", 1, 4, true}},
    {1, {"f16", 1, 2, true}},
    {2, {"q4_0", 32, 18, true}},
    {3, {"q4_1", 32, 20, true}},
    {6, {"q5_0", 32, 22, true}},
    {7, {"q5_1", 32, 24, true}},
    {8, {"q8_0", 32, 34, true}},
    {9, {"q8_1", 32, 36, false}},
    {10, {"q2_K", 256, 84, false}},
    {11, {"q3_K", 256, 110, false}},
    {12, {"q4_K", 256, 144, true}},
    {13, {"q5_K", 256, 176, true}},
    {14, {"q6_K", 256, 210, true}},
    {15, {"q8_K", 256, 292, false}},
    {16, {"iq2_xxs", 256, 66, false}},
    {17, {"iq2_xs", 256, 74, false}},
    {18, {"iq3_xxs", 256, 98, false}},
    {19, {"iq1_s", 256, 50, false}},
    {20, {"iq4_nl", 32, 18, false}},
    {21, {"iq3_s", 256, 110, false}},
    {22, {"iq2_s", 256, 82, false}},
    {23, {"iq4_xs", 256, 136, false}},
    {24, {"i8", 1, 1, false}},
    {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},
    {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},
    {29, {"iq1_m", 256, 56, false}},
    {30, {"bf16", 1, 2, true}},
    {34, {"tq1_0", 256, 54, false}},
    {35, {"tq2_0", 256, 66, false}},
}};
}  // namespace

std::optional<GgmlTypeTraits> TraitsOf(uint32_t type_id) {
  for (const auto& e : kTypes) {
    if (e.id == type_id) return e.traits;
  }
  return std::nullopt;
}

namespace {
// kTypes' index of each type id (-1: none): Traits is called per panel in the kernels' loops.
constexpr uint32_t kMaxId = 40;
constexpr std::array<int8_t, kMaxId> kIndex = [] {
  std::array<int8_t, kMaxId> index{};
  index.fill(-1);
  for (size_t i = 0; i < kTypes.size(); ++i) index[kTypes[i].id] = static_cast<int8_t>(i);
  return index;
}();
}  // namespace

const GgmlTypeTraits& Traits(GgmlType t) {
  const uint32_t id = static_cast<uint32_t>(t);
  if (id < kMaxId && kIndex[id] >= 0) return kTypes[static_cast<size_t>(kIndex[id])].traits;
  Fail("internal: no traits for ggml type %u", static_cast<unsigned>(t));
}

std::optional<GgmlType> ParseGgmlType(std::string_view name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& e : kTypes) {
    std::string n = e.traits.name;
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (n == lower) return static_cast<GgmlType>(e.id);
  }
  return std::nullopt;
}

}  // namespace g4
