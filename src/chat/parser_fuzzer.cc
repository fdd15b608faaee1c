// libFuzzer target for the output parser (build with -DGEMMA4_FUZZ=ON and clang):
//   build-fuzz/src/chat/chat_parser_fuzzer -max_total_time=300 src/chat/fuzz_corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "chat/parser_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    g4::chat::CheckParserProperties(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "property violated: %s\n", e.what());
    std::abort();
  }
  return 0;
}
