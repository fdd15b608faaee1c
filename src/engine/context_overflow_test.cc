#include "engine/context_overflow.h"

#include <gtest/gtest.h>

namespace g4 {
namespace {

using chat::Json;

// Each message costs the length of its content plus 2 (its markers).
int64_t Count(const Json& m) {
  int64_t n = 0;
  for (const auto& x : m) n += static_cast<int64_t>(x.value("content", "").size()) + 2;
  return n;
}

Json Conv() {
  return Json::array({{{"role", "system"}, {"content", "sys"}},              // 5
                      {{"role", "user"}, {"content", "first q"}},           // 9
                      {{"role", "assistant"}, {"content", "first answer"}},  // 14
                      {{"role", "user"}, {"content", "second"}},            // 8
                      {{"role", "assistant"}, {"content", "", }, {"tool_calls", Json::array()}},  // 2
                      {{"role", "tool"}, {"content", "result"}},            // 8
                      {{"role", "assistant"}, {"content", "done"}},         // 6
                      {{"role", "user"}, {"content", "third"}}});           // 7
}

TEST(ContextOverflow, FittingConversationIsUntouched) {
  Json m = Conv();
  const FitResult r = FitConversation(&m, 59, ContextOverflow::kError, Count);
  EXPECT_EQ(r.tokens, 59);
  EXPECT_EQ(r.dropped_turns, 0);
  EXPECT_EQ(m, Conv());
}

TEST(ContextOverflow, ErrorSaysHowManyTokensAreOver) {
  Json m = Conv();
  try {
    FitConversation(&m, 50, ContextOverflow::kError, Count);
    FAIL() << "no error";
  } catch (const ContextOverflowError& e) {
    EXPECT_EQ(e.over(), 9);
    EXPECT_NE(std::string(e.what()).find("59 tokens, 9 over"), std::string::npos) << e.what();
  }
  EXPECT_EQ(m, Conv());
}

TEST(ContextOverflow, DropOldestRemovesWholeTurnsAndKeepsTheSystemPrompt) {
  Json m = Conv();
  FitResult r = FitConversation(&m, 50, ContextOverflow::kDropOldest, Count);
  EXPECT_EQ(r.dropped_turns, 1);
  EXPECT_EQ(r.dropped_messages, 2);
  EXPECT_EQ(r.tokens, 36);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0]["role"], "system");
  EXPECT_EQ(m[1]["content"], "second");
  // The second turn (with its tool call and result) goes as a whole.
  m = Conv();
  r = FitConversation(&m, 20, ContextOverflow::kDropOldest, Count);
  EXPECT_EQ(r.dropped_turns, 2);
  EXPECT_EQ(r.dropped_messages, 6);
  EXPECT_EQ(m, Json::array({Conv()[0], Conv()[7]}));
}

TEST(ContextOverflow, DropOldestFailsWhenTheNewestTurnAloneIsOver) {
  Json m = Conv();
  try {
    FitConversation(&m, 10, ContextOverflow::kDropOldest, Count);
    FAIL() << "no error";
  } catch (const ContextOverflowError& e) {
    EXPECT_EQ(e.tokens(), 12);
    EXPECT_EQ(e.over(), 2);
    EXPECT_NE(std::string(e.what()).find("newest turn alone is 12 tokens, 2 over"), std::string::npos) << e.what();
  }
}

TEST(ContextOverflow, ParsesPolicyNames) {
  EXPECT_EQ(ParseContextOverflow("error", "--context-overflow"), ContextOverflow::kError);
  EXPECT_EQ(ParseContextOverflow("drop-oldest", "--context-overflow"), ContextOverflow::kDropOldest);
  try {
    ParseContextOverflow("truncate", "--context-overflow");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--context-overflow: unknown policy 'truncate'"), std::string::npos);
  }
}

}  // namespace
}  // namespace g4
