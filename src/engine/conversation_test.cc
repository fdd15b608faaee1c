#include "engine/conversation.h"

#include <gtest/gtest.h>

#include "testutil.h"

namespace g4 {
namespace {

class ConversationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    G4_REQUIRE_SHARED();
    tok_ = std::make_unique<Tokenizer>(Tokenizer::Load(g4::testing::SharedPath("tokenizer/gemma4-vocab.gguf")));
    setup_.format = chat::ChatFormat::kGemma4;
    setup_.bos_text = "<bos>";
  }
  std::vector<int32_t> Tok(const std::string& s) { return TokenizePrompt(*tok_, s); }
  static std::vector<int32_t> Ids(const std::vector<PromptPiece>& p) { return TokenIds(p); }
  std::vector<int32_t> Cat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }
  // The model answers "Hello!" and stops on <turn|>; returns its tokens.
  std::vector<int32_t> SayHello(Conversation& c) {
    const auto answer = Cat(Tok("Hello!"), {tok_->Lookup("<turn|>")});
    chat::ParsedOutput out;
    out.content = "Hello!";
    out.stop = "<turn|>";
    out.ended = true;
    c.AddAssistant(answer, true, out);
    return answer;
  }
  std::unique_ptr<Tokenizer> tok_;
  ChatSetup setup_;
};

TEST_F(ConversationTest, EachTurnAddsOnlyItsNewTokens) {
  Conversation c(setup_, *tok_);
  c.SetSystem("Be brief.");
  c.AddUser("Hi");
  const auto p1 = Ids(c.NextPrompt());
  EXPECT_EQ(p1, Tok("<bos><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n"
                    "<|channel>thought\n<channel|>"));
  EXPECT_EQ(c.parser_state(), chat::ParserState::kContent);
  const auto answer = SayHello(c);
  c.AddUser("Thanks");
  const auto p2 = Ids(c.NextPrompt());
  const auto want = Cat(Cat(p1, answer), Tok("\n<|turn>user\nThanks<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"));
  EXPECT_EQ(p2, want);
  ASSERT_EQ(c.messages().size(), 3u);
  EXPECT_EQ(c.messages()[1]["content"], "Hello!");
}

TEST_F(ConversationTest, ToolCallRoundTrip) {
  Conversation c(setup_, *tok_);
  c.SetTools(chat::Json::parse(R"([{"type":"function","function":{"name":"add","description":"Adds",
      "parameters":{"type":"object","properties":{"a":{"type":"number"}},"required":["a"]}}}])"));
  c.SetThinking(true);
  c.AddUser("1+1?");
  const auto p1 = Ids(c.NextPrompt());
  EXPECT_EQ(c.parser_state(), chat::ParserState::kContent);  // the model opens its own thought channel
  const auto gen = Tok("<|tool_call>call:add{a:1}<tool_call|><|tool_response>");
  chat::ParsedOutput out;
  out.tool_calls.push_back({"add", chat::Json{{"a", 1}}});
  out.stop = "<|tool_response>";
  out.ended = true;
  c.AddAssistant(gen, true, out);
  ASSERT_TRUE(c.messages().back().contains("tool_calls"));
  const std::string id = c.messages().back()["tool_calls"][0]["id"];
  c.AddToolResult(id, "add", chat::Json{{"sum", 2}});
  const auto p2 = Ids(c.NextPrompt());
  // The tool response continues the model's turn directly after its <|tool_response>.
  const auto prefix = Cat(p1, gen);
  ASSERT_GT(p2.size(), prefix.size());
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), p2.begin()));
  const std::string tail = tok_->Decode(std::vector<int32_t>(p2.begin() + prefix.size(), p2.end()), true);
  EXPECT_EQ(tail.rfind("response:add{sum:2}<tool_response|>", 0), 0u) << tail;
}

TEST_F(ConversationTest, CutAnswerIsClosedAndThinkingToggleRebuilds) {
  Conversation c(setup_, *tok_);
  c.AddUser("Hi");
  const auto p1 = Ids(c.NextPrompt());
  chat::ParsedOutput out;
  out.content = "Hel";
  c.AddAssistant(Tok("Hel"), /*stopped=*/false, out);
  c.AddUser("again");
  const auto p2 = Ids(c.NextPrompt());
  const auto want = Cat(Cat(Cat(p1, Tok("Hel")), {tok_->Lookup("<turn|>")}),
                        Tok("\n<|turn>user\nagain<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"));
  EXPECT_EQ(p2, want);
  c.SetThinking(true);
  const auto p3 = Ids(c.NextPrompt());
  // Re-rendered from the messages: the system turn now enables thinking.
  EXPECT_EQ(tok_->Decode(p3, true).rfind("<bos><|turn>system\n<|think|>", 0), 0u);
}

// Media given with a user message take the place of the placeholder the template writes for its
// part; the next turn appends only its own text after the model's answer.
TEST_F(ConversationTest, MediaTakeTheirPlaceholdersPlace) {
  const int32_t ph = tok_->Lookup("<|image|>");
  ASSERT_GE(ph, 0);
  PromptMedia img;
  img.placeholder = ph;
  img.pieces = {PromptPiece{{tok_->Lookup("<|image>")}, {}, false, 0},
                PromptPiece{{}, std::vector<float>(3 * 4, 0.5f), true, 7},  // 3 rows of a 4-wide model
                PromptPiece{{tok_->Lookup("<image|>")}, {}, false, 0}};
  img.positions = 5;
  Conversation c(setup_, *tok_);
  c.AddUser(chat::Json::array({{{"type", "image"}, {"file", "a.png"}}, {{"type", "text"}, {"text", "Hi"}}}), {img});
  const std::vector<PromptPiece> p1 = c.NextPrompt();
  ASSERT_EQ(p1.size(), 3u);
  EXPECT_EQ(p1[0].tokens, Tok("<bos><|turn>user\n<|image>"));
  EXPECT_EQ(p1[1].key, 7u);
  EXPECT_EQ(p1[2].tokens, Tok("<image|>Hi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"));
  EXPECT_EQ(c.n_positions(), p1[0].tokens.size() + 3 + p1[2].tokens.size());
  const auto answer = SayHello(c);
  c.AddUser("Thanks");
  const std::vector<PromptPiece> p2 = c.NextPrompt();
  ASSERT_EQ(p2.size(), 3u);
  EXPECT_EQ(p2[1].key, 7u);
  EXPECT_EQ(p2[2].tokens, Cat(Cat(p1[2].tokens, answer), Tok("\n<|turn>user\nThanks<turn|>\n<|turn>model\n"
                                                            "<|channel>thought\n<channel|>")));
  // Re-rendered (thinking toggled): the image is still in its place.
  c.SetThinking(true);
  const std::vector<PromptPiece> p3 = c.NextPrompt();
  ASSERT_EQ(p3.size(), 3u);
  EXPECT_EQ(p3[1].key, 7u);
}

}  // namespace
}  // namespace g4
