// Replays the committed fuzzing corpus through the parser's properties on every test run (under the
// sanitizers in a GEMMA4_SANITIZE build), so what the fuzzer found stays fixed.
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "chat/parser_fuzz_check.h"
#include "testutil.h"

namespace g4::chat {
namespace {

TEST(ParserFuzzCorpus, EveryInputKeepsTheParserProperties) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(GEMMA4_SOURCE_DIR) / "src/chat/fuzz_corpus";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string data = g4::testing::ReadText(entry.path().string());
    try {
      CheckParserProperties(data);
    } catch (const std::logic_error& e) {
      ADD_FAILURE() << entry.path().filename() << ": " << e.what();
    }
    ++count;
  }
  EXPECT_GE(count, 20u) << "the corpus should not be empty";
}

}  // namespace
}  // namespace g4::chat
