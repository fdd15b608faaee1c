// A chat Conversation with images, on the golden tiny multimodal model: a turn's prompt is what
// `gemma4 generate` runs for the rendered conversation, later turns evaluate only their new
// positions, and re-rendering (/load, dropping old turns) keeps every message's media in place.
#include <gtest/gtest.h>

#include "chat/render.h"
#include "engine/chat.h"
#include "engine/conversation.h"
#include "engine/generator.h"
#include "multimodal/test_media.h"
#include "multimodal/tiny_mm_test.h"

namespace g4::mm {
namespace {

class ChatMedia : public TinyMm {
 protected:
  void SetUp() override {
    TinyMm::SetUp();
    if (IsSkipped()) return;
    setup_ = ChatSetupFor(*model_, *tok_);
  }
  MediaEmbedding Image(const std::string& name) {
    return enc_->EmbedImage(test::ReadBytes(MmDir() + "media/" + name), name, {}, pool_);
  }
  static ContextOptions Options() {
    ContextOptions o = Exact();
    o.kv.n_ctx = 2048;  // three images and their turns
    return o;
  }
  PromptMedia Attach(const std::string& name) { return ToPromptMedia(*tok_, Image(name)); }
  // A user message as `gemma4 run` makes it: the image part, then the text.
  static chat::Json ImageAndText(const std::string& file, const std::string& text) {
    return chat::Json::array({{{"type", "image"}, {"file", file}}, {{"type", "text"}, {"text", text}}});
  }
  // What `gemma4 generate` runs for these messages: the template's text tokenized, the images at
  // its placeholders.
  std::vector<PromptPiece> Rendered(const chat::Json& messages, std::vector<MediaEmbedding> media) const {
    chat::RenderOptions ro;
    ro.add_generation_prompt = true;
    ro.bos_token = setup_.bos_text;
    const std::string text = chat::Render(setup_.format, messages, chat::Json(), ro);
    return ExpandPrompt(*tok_, TokenizePrompt(*tok_, text), std::move(media));
  }
  struct Result {
    int evaluated = 0;           // prompt positions run
    std::vector<float> logits;   // [n_vocab] at the prompt's last position
    std::vector<int32_t> tokens; // greedy continuation
  };
  Result Run(Context& ctx, Generator& gen, std::span<const PromptPiece> prompt, int n) const {
    Result r;
    r.evaluated = gen.Prefill(prompt);
    r.logits.assign(ctx.Logits(0), ctx.Logits(0) + model_->config().n_vocab);
    SamplingParams greedy;
    greedy.temperature = 0;
    StopCriteria stop;
    stop.max_tokens = n;
    r.tokens = gen.Generate(prompt, greedy, stop, nullptr).tokens;
    return r;
  }
  Result Fresh(std::span<const PromptPiece> prompt, int n) const {
    Context ctx(*model_, Options());
    Generator gen(ctx, *tok_);
    return Run(ctx, gen, prompt, n);
  }
  void Answer(Conversation& c, const std::vector<int32_t>& tokens) const {
    chat::ParsedOutput out;
    out.content = tok_->Decode(tokens);
    c.AddAssistant(tokens, /*stopped=*/false, out);
  }
  static void ExpectSamePieces(const std::vector<PromptPiece>& a, const std::vector<PromptPiece>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].tokens, b[i].tokens) << "piece " << i;
      EXPECT_EQ(a[i].embd, b[i].embd) << "piece " << i;
      EXPECT_EQ(a[i].bidirectional, b[i].bidirectional) << "piece " << i;
      EXPECT_EQ(a[i].key, b[i].key) << "piece " << i;
    }
  }
  ChatSetup setup_;
};

TEST_F(ChatMedia, ImageTurnIsGenerateOnTheRenderedPrompt) {
  Conversation c(setup_, *tok_);
  c.AddUser(ImageAndText("a.png", "What is this?"), {Attach("img_96x96.png")});
  const std::vector<PromptPiece> chat = c.NextPrompt();
  // The image's 256 rows (96x96 -> 768x768, 16x16 patches) between its markers, where the template
  // wrote <|image|>: at the start of the user turn.
  ASSERT_EQ(chat.size(), 3u);
  EXPECT_EQ(tok_->Decode(chat[0].tokens, true), "<bos><|turn>user\n<|image>");
  EXPECT_EQ(chat[1].embd.size(), 256u * 256u);
  EXPECT_TRUE(chat[1].bidirectional);
  EXPECT_EQ(tok_->Decode(chat[2].tokens, true).rfind("<image|>What is this?<turn|>\n<|turn>model\n", 0), 0u);
  EXPECT_EQ(c.n_positions(), chat[0].tokens.size() + 256 + chat[2].tokens.size());
  const std::vector<PromptPiece> generate = Rendered(c.messages(), {Image("img_96x96.png")});
  ExpectSamePieces(chat, generate);
  const Result a = Fresh(chat, 8), b = Fresh(generate, 8);
  EXPECT_EQ(a.logits, b.logits);
  EXPECT_EQ(a.tokens, b.tokens);
}

TEST_F(ChatMedia, LaterTurnsEvaluateOnlyTheirNewPositions) {
  Conversation c(setup_, *tok_);
  Context ctx(*model_, Options());
  Generator gen(ctx, *tok_);
  c.AddUser(ImageAndText("a.png", "What is this?"), {Attach("img_96x96.png")});
  const Result first = Run(ctx, gen, c.NextPrompt(), 4);
  Answer(c, first.tokens);
  const size_t after_first = c.n_positions();
  // A text turn after the image: only its text runs, and it sees what a fresh evaluation sees.
  c.AddUser("And the colors?");
  const std::vector<PromptPiece> p2 = c.NextPrompt();
  const Result second = Run(ctx, gen, p2, 4);
  EXPECT_EQ(static_cast<size_t>(second.evaluated), c.n_positions() - after_first + 1);  // + the answer's last token
  EXPECT_LT(second.evaluated, 256);  // not the image again
  const Result fresh2 = Fresh(p2, 4);
  EXPECT_EQ(second.logits, fresh2.logits);
  EXPECT_EQ(second.tokens, fresh2.tokens);
  // A turn with another image (200x120 -> 252 soft tokens): it and its text run, the first image does not.
  Answer(c, second.tokens);
  const size_t after_second = c.n_positions();
  c.AddUser(ImageAndText("b.png", "And this one?"), {Attach("img_200x120.png")});
  const std::vector<PromptPiece> p3 = c.NextPrompt();
  const Result third = Run(ctx, gen, p3, 4);
  EXPECT_EQ(static_cast<size_t>(third.evaluated), c.n_positions() - after_second + 1);
  const Result fresh3 = Fresh(p3, 4);
  EXPECT_EQ(third.logits, fresh3.logits);
  EXPECT_EQ(third.tokens, fresh3.tokens);
  // Re-rendered from its messages and media (as /load does): the whole conversation's render with
  // both images in place; the generator keeps at least the first turn and its image.
  Conversation loaded(setup_, *tok_);
  loaded.SetMessages(c.messages(), c.media());
  const std::vector<PromptPiece> p4 = loaded.NextPrompt();
  ExpectSamePieces(p4, Rendered(c.messages(), {Image("img_96x96.png"), Image("img_200x120.png")}));
  const Result reloaded = Run(ctx, gen, p4, 4);
  EXPECT_LT(static_cast<size_t>(reloaded.evaluated), loaded.n_positions() - p2.front().tokens.size() - 256);
  EXPECT_EQ(reloaded.logits, Fresh(p4, 4).logits);
}

TEST_F(ChatMedia, DroppingTheOldestTurnDropsItsImage) {
  Conversation c(setup_, *tok_);
  c.AddUser(ImageAndText("a.png", "first"), {Attach("img_96x96.png")});
  c.NextPrompt();
  Answer(c, TokenizePrompt(*tok_, "ok"));
  c.AddUser(ImageAndText("b.png", "second"), {Attach("img_200x120.png")});
  Conversation probe = c, d = c;  // NextPrompt extends the stream: one call per new message
  const size_t n_pieces = probe.NextPrompt().size();
  const int64_t all = static_cast<int64_t>(probe.n_positions());
  FitResult fit;
  // error: refused, and the conversation is as it was.
  EXPECT_THROW(c.NextPrompt(all - 1, ContextOverflow::kError, &fit), ContextOverflowError);
  EXPECT_EQ(c.messages().size(), 3u);
  EXPECT_EQ(c.NextPrompt(all, ContextOverflow::kError, &fit).size(), n_pieces);
  EXPECT_EQ(fit.tokens, all);
  // drop-oldest: the first turn goes with its image; what remains is the second turn's render.
  const std::vector<PromptPiece> p = d.NextPrompt(all - 1, ContextOverflow::kDropOldest, &fit);
  EXPECT_EQ(fit.dropped_turns, 1);
  EXPECT_EQ(fit.dropped_messages, 2);
  ASSERT_EQ(d.messages().size(), 1u);
  ASSERT_EQ(d.media().size(), 1u);
  EXPECT_EQ(fit.tokens, static_cast<int64_t>(d.n_positions()));
  EXPECT_LE(fit.tokens, all - 1);
  ExpectSamePieces(p, Rendered(d.messages(), {Image("img_200x120.png")}));
  // The newest turn alone (252 soft tokens and its text) cannot be cut.
  EXPECT_THROW(d.NextPrompt(100, ContextOverflow::kDropOldest, &fit), ContextOverflowError);
}

TEST_F(ChatMedia, PlaceholdersWithoutMediaAreAClearError) {
  Conversation c(setup_, *tok_);
  c.AddUser("look: <|image|>");  // the placeholder typed as text, no image attached
  try {
    c.NextPrompt();
    ADD_FAILURE() << "a placeholder without an image was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("written as text in a message"), std::string::npos) << e.what();
  }
  EXPECT_EQ(c.n_positions(), 0u);
}

}  // namespace
}  // namespace g4::mm
