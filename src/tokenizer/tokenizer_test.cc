#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "formats/gguf.h"
#include "testutil.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace g4 {
namespace {

using Ids = std::vector<int32_t>;

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

std::string Repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// The Gemma 4 vocabulary-only GGUF, loaded once for all tests that use it.
class Gemma4Vocab : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!g4::testing::SharedDir()) return;
    tok_ = std::make_unique<Tokenizer>(Tokenizer::Load(g4::testing::SharedPath("tokenizer/gemma4-vocab.gguf")));
  }
  static void TearDownTestSuite() { tok_.reset(); }
  void SetUp() override { G4_REQUIRE_SHARED(); }

  static const Tokenizer& tok() { return *tok_; }
  int32_t Id(std::string_view piece) const {
    const int32_t id = tok().Lookup(piece);
    EXPECT_GE(id, 0) << "piece not in the vocabulary: " << piece;
    return id;
  }

  static std::unique_ptr<Tokenizer> tok_;
};
std::unique_ptr<Tokenizer> Gemma4Vocab::tok_;

TEST_F(Gemma4Vocab, Metadata) {
  EXPECT_EQ(tok().model(), "gemma4");
  EXPECT_EQ(tok().algorithm(), Tokenizer::Algorithm::kBpeMerges);
  EXPECT_EQ(tok().n_vocab(), 262144);
  EXPECT_EQ(tok().n_merges(), 514906u);
  EXPECT_EQ(tok().bos(), 2);
  EXPECT_EQ(tok().eos(), 1);
  EXPECT_EQ(tok().unk(), 3);
  EXPECT_EQ(tok().pad(), 0);
  EXPECT_TRUE(tok().add_bos_token());
  EXPECT_FALSE(tok().add_space_prefix());
  EXPECT_EQ(tok().Piece(2), "<bos>");
  EXPECT_EQ(tok().Lookup("<|turn>"), 105);
  EXPECT_EQ(tok().Lookup("<turn|>"), 106);
  EXPECT_EQ(tok().Lookup("<start_of_turn>"), -1);  // renamed in Gemma 4
  EXPECT_EQ(tok().Lookup("no such piece"), -1);
  EXPECT_TRUE(tok().IsControl(105));
  EXPECT_EQ(tok().Type(52), TokenType::kUserDefined);  // <|"|>
  EXPECT_EQ(tok().Type(3), TokenType::kUnknown);
  EXPECT_EQ(tok().Type(tok().Lookup("<0x41>")), TokenType::kByte);
  EXPECT_EQ(tok().Type(tok().Lookup("▁Hello")), TokenType::kNormal);
  EXPECT_THROW(tok().Piece(262144), Error);
  EXPECT_THROW(tok().Type(-1), Error);
  EXPECT_THROW(tok().TokenBytes(1 << 20), Error);
}

// The 158 cases made with the Hugging Face `tokenizers` library from the Gemma 3 tokenizer.json. HF
// recognises every added token in text, so they are encoded with parse_special. Two chat cases spell
// the Gemma 3 turn markers, which Gemma 4 renamed (ids 105/106 kept): they are checked with the Gemma 4
// names substituted.
TEST_F(Gemma4Vocab, HuggingFaceVectors) {
  std::ifstream in(g4::testing::SharedPath("tokenizer/gemma-hf-tokenizers-vectors.jsonl"));
  ASSERT_TRUE(in);
  const auto to_gemma4 = [](std::string s) {
    return ReplaceAll(ReplaceAll(std::move(s), "<start_of_turn>", "<|turn>"), "<end_of_turn>", "<turn|>");
  };
  int cases = 0, renamed = 0, plain = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const nlohmann::json c = nlohmann::json::parse(line);
    const std::string name = c.at("name");
    std::string text = c.at("text");
    std::string decoded = c.at("decoded");
    const Ids ids = c.at("ids").get<Ids>();
    std::vector<std::string> pieces = c.at("tokens").get<std::vector<std::string>>();
    if (text.find("<start_of_turn>") != std::string::npos || text.find("<end_of_turn>") != std::string::npos) {
      text = to_gemma4(text);
      decoded = to_gemma4(decoded);
      for (auto& p : pieces) p = to_gemma4(p);
      ++renamed;
    }
    SCOPED_TRACE(name);
    ++cases;

    const Ids got = tok().Encode(text, /*parse_special=*/true, /*add_bos=*/false);
    EXPECT_EQ(got, ids);
    ASSERT_EQ(pieces.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(tok().Piece(ids[i]), pieces[i]) << "token " << i;
    EXPECT_EQ(tok().Decode(ids, /*render_special=*/true), decoded);

    // Without parse_special only CONTROL/UNKNOWN tokens stop being recognised: cases without them must
    // come out the same (USER_DEFINED tokens such as "\n" or "\t" are still split off).
    bool has_control = false;
    for (int32_t id : ids) has_control |= tok().IsControl(id) || tok().Type(id) == TokenType::kUnknown;
    if (!has_control) {
      ++plain;
      EXPECT_EQ(tok().Encode(text, false, false), ids);
      EXPECT_EQ(tok().Decode(ids), decoded);
    } else {
      const Ids literal = tok().Encode(text, false, false);
      for (int32_t id : literal) EXPECT_FALSE(tok().IsControl(id)) << "control token " << id << " from plain text";
      EXPECT_EQ(tok().Decode(literal), text);
    }
  }
  EXPECT_EQ(cases, 158);
  EXPECT_EQ(renamed, 2);
  EXPECT_GT(plain, 140);
}

// llama.cpp's tokenizer test inputs for Gemma 4 (ids from the official HF tokenizer, no BOS,
// parse_special off as in llama.cpp's test-tokenizer-0).
TEST_F(Gemma4Vocab, LlamaCppVectors) {
  const std::string raw = g4::testing::ReadText(g4::testing::SharedPath("tokenizer/ggml-vocab-gemma-4.gguf.inp"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::ifstream out(g4::testing::SharedPath("tokenizer/ggml-vocab-gemma-4.gguf.out"));
  std::vector<Ids> expected;
  for (std::string line; std::getline(out, line);) {
    Ids ids;
    std::istringstream ss(line);
    for (int32_t id; ss >> id;) ids.push_back(id);
    expected.push_back(ids);
  }
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_EQ(expected.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + ": " + inputs[i]);
    EXPECT_EQ(tok().Encode(inputs[i], false, false), expected[i]);
    EXPECT_EQ(tok().Decode(expected[i]), inputs[i]);
  }
}

TEST_F(Gemma4Vocab, ControlTokensOnlyWithParseSpecial) {
  const std::string text = "<|turn>user\nHi<turn|>";
  const Ids special = tok().Encode(text, true, false);
  const Ids want = {105, Id("user"), Id("\n"), Id("Hi"), 106};
  EXPECT_EQ(special, want);
  EXPECT_EQ(tok().Decode(special), "user\nHi");                  // control tokens are hidden...
  EXPECT_EQ(tok().Decode(special, true), text);                  // ...unless rendered
  EXPECT_EQ(tok().TokenBytes(105, true), "<|turn>");

  const Ids plain = tok().Encode(text, false, false);
  for (int32_t id : plain) EXPECT_FALSE(tok().IsControl(id)) << id;
  EXPECT_GT(plain.size(), want.size());
  EXPECT_EQ(tok().Decode(plain), text);

  // <bos>, <eos>, <unk>, <mask>, <unusedN> alike.
  for (const char* s : {"<bos>", "<eos>", "<unk>", "<mask>", "<unused7>", "<pad>"}) {
    SCOPED_TRACE(s);
    const Ids on = tok().Encode(s, true, false);
    ASSERT_EQ(on.size(), 1u);
    EXPECT_EQ(on[0], tok().Lookup(s));
    for (int32_t id : tok().Encode(s, false, false)) EXPECT_NE(id, tok().Lookup(s));
  }
}

TEST_F(Gemma4Vocab, UserDefinedTokensAlwaysRecognised) {
  // The Gemma 4 tool/channel markers are USER_DEFINED: split off and rendered whatever the flags say.
  for (const char* s : {"<|\"|>", "<|tool_call>", "<tool_call|>", "<|channel>", "<channel|>", "<|tool_response>"}) {
    SCOPED_TRACE(s);
    const int32_t id = Id(s);
    ASSERT_EQ(tok().Type(id), TokenType::kUserDefined);
    const std::string text = std::string("call") + s + "x";
    for (bool parse_special : {false, true}) {
      const Ids ids = tok().Encode(text, parse_special, false);
      ASSERT_EQ(ids.size(), 3u);
      EXPECT_EQ(ids[1], id);
      EXPECT_EQ(tok().Decode(ids), text);
    }
    EXPECT_EQ(tok().TokenBytes(id), s);
  }
  // So are the runs of "\n", "\t" and literal "▁".
  EXPECT_EQ(tok().Encode("a\n\nb", false, false), (Ids{Id("a"), Id("\n\n"), Id("b")}));
  EXPECT_EQ(tok().Encode("x▁▁y", false, false), (Ids{Id("x"), Id("▁▁"), Id("y")}));
  EXPECT_EQ(tok().Decode(Ids{Id("▁▁")}), "  ");
}

TEST_F(Gemma4Vocab, BosExactlyOnce) {
  const Ids hello = tok().Encode("Hello", false, false);
  Ids with_bos = {2};
  with_bos.insert(with_bos.end(), hello.begin(), hello.end());
  EXPECT_EQ(tok().Encode("Hello", false, true), with_bos);
  EXPECT_EQ(tok().Encode("<bos>Hello", true, true), with_bos);  // the text's own <bos> is the one
  EXPECT_EQ(tok().Encode("<bos>Hello", true, false), with_bos);
  EXPECT_EQ(tok().Encode("", false, true), Ids{2});
  EXPECT_EQ(tok().Encode("", false, false), Ids{});
  // Without parse_special "<bos>" is just text, so BOS is still added in front of it.
  const Ids literal = tok().Encode("<bos>Hello", false, true);
  ASSERT_GE(literal.size(), 2u);
  EXPECT_EQ(literal[0], 2);
  EXPECT_NE(literal[1], 2);
  // A BOS later in the text is kept: only the leading one is de-duplicated.
  const Ids two = tok().Encode("<bos>a<bos>", true, true);
  EXPECT_EQ(two, (Ids{2, Id("a"), 2}));
}

TEST_F(Gemma4Vocab, ByteFallback) {
  const auto bytes_of = [&](std::string_view s) {
    Ids ids;
    for (unsigned char c : s) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", c);
      ids.push_back(Id(name));
    }
    return ids;
  };
  // Characters outside the vocabulary: a CJK Extension B ideograph, an emoji, an Egyptian hieroglyph
  // and a rune.
  for (const std::string s : {"\xF0\xA0\x80\x80", "\xF0\x9F\xA6\x99", "\xF0\x93\x80\x80", "\xE1\x9A\xA0"}) {
    SCOPED_TRACE(s);
    ASSERT_EQ(tok().Lookup(s), -1);
    EXPECT_EQ(tok().Encode(s, false, false), bytes_of(s));
    EXPECT_EQ(tok().Decode(bytes_of(s)), s);
    // Inside a word the neighbours still merge normally.
    const Ids mixed = tok().Encode("Hello" + s + "world", false, false);
    Ids want = {Id("Hello")};
    for (int32_t id : bytes_of(s)) want.push_back(id);
    want.push_back(Id("world"));
    EXPECT_EQ(mixed, want);
  }
  // Ill-formed UTF-8 input: every bad byte is a byte token and the round trip is exact.
  const std::string bad = "ok\xFF\xFE then \xC3 and \xE2\x96 end \xED\xA0\x80";
  const Ids ids = tok().Encode(bad, false, false);
  EXPECT_EQ(tok().Decode(ids), bad);
  for (unsigned char c : std::string_view("\xFF\xFE\xC3\xED")) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", c);
    EXPECT_NE(std::find(ids.begin(), ids.end(), Id(name)), ids.end()) << name;
  }
  EXPECT_EQ(utf8::MakeValid(tok().Decode(ids)),
            "ok\xEF\xBF\xBD\xEF\xBF\xBD then \xEF\xBF\xBD and \xEF\xBF\xBD end \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(Gemma4Vocab, LongWhitespaceRuns) {
  // Runs longer than the longest whitespace piece split into several tokens and round-trip exactly.
  for (const char* unit : {" ", "\n", "\t", " \n", "\t "}) {
    for (int n : {1, 2, 31, 32, 100, 1000}) {
      const std::string text = Repeat(unit, n);
      SCOPED_TRACE(::testing::PrintToString(text.substr(0, 8)) + " x" + std::to_string(n));
      const Ids ids = tok().Encode(text, false, false);
      EXPECT_EQ(tok().Decode(ids), text);
      EXPECT_LE(ids.size(), text.size());
      for (int32_t id : ids) EXPECT_NE(tok().Type(id), TokenType::kByte);
    }
  }
  // Newline runs are user-defined tokens of up to 31 newlines, matched longest first.
  const std::string nl70(70, '\n');
  EXPECT_EQ(tok().Encode(nl70, false, false),
            (Ids{Id(std::string(31, '\n')), Id(std::string(31, '\n')), Id(std::string(8, '\n'))}));
  // Spaces around words keep their count.
  const std::string spaced = "a" + std::string(45, ' ') + "b   \t\t  c  ";
  EXPECT_EQ(tok().Decode(tok().Encode(spaced, false, false)), spaced);
}

TEST_F(Gemma4Vocab, StreamingDecoderHoldsSplitCharacters) {
  const std::string text = "héllo 🦙 世界\n\xF0\xA0\x80\x80!";  // the llama and U+20000 are spelled in byte tokens
  const Ids ids = tok().Encode(text, false, false);
  StreamingDecoder dec(tok());
  std::string all;
  int held = 0;
  for (int32_t id : ids) {
    const std::string piece = dec.Push(id);
    EXPECT_TRUE(utf8::IsValid(piece)) << piece;
    if (piece.empty()) ++held;
    all += piece;
  }
  all += dec.Flush();
  EXPECT_EQ(all, text);
  EXPECT_EQ(held, 6);  // 3 + 3 leading bytes of the two four-byte characters

  // Bytes of the llama one at a time: nothing until the last one.
  const Ids llama = tok().Encode("🦙", false, false);
  ASSERT_EQ(llama.size(), 4u);
  StreamingDecoder d2(tok());
  EXPECT_EQ(d2.Push(llama[0]), "");
  EXPECT_EQ(d2.Push(llama[1]), "");
  EXPECT_EQ(d2.Push(llama[2]), "");
  EXPECT_EQ(d2.pending_bytes(), 3u);
  EXPECT_EQ(d2.Push(llama[3]), "🦙");
  EXPECT_EQ(d2.pending_bytes(), 0u);

  // A sequence that cannot be completed becomes U+FFFD as soon as that is known.
  StreamingDecoder d3(tok());
  EXPECT_EQ(d3.Push(Id("<0xE2>")), "");
  EXPECT_EQ(d3.Push(Id("a")), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(d3.Push(Id("<0xFF>")), "\xEF\xBF\xBD");
  EXPECT_EQ(d3.Push(Id("<0xF0>")), "");
  EXPECT_EQ(d3.Push(Id("<0x9F>")), "");
  EXPECT_EQ(d3.Flush(), "\xEF\xBF\xBD");  // an unfinished character at the end
  EXPECT_EQ(d3.pending_bytes(), 0u);

  // Control tokens are hidden by default and rendered on request.
  StreamingDecoder quiet(tok()), loud(tok(), /*render_special=*/true);
  EXPECT_EQ(quiet.Push(105), "");
  EXPECT_EQ(loud.Push(105), "<|turn>");
  EXPECT_EQ(quiet.Push(Id("<|channel>")), "<|channel>");
}

TEST_F(Gemma4Vocab, LargeTextRoundTrips) {
  // A long text with no newline is one BPE word; it must still encode (quickly) and round-trip.
  std::string text;
  for (int i = 0; text.size() < 300000; ++i) text += "The quick brown fox " + std::to_string(i) + " jumps, über 🦙 dogs. ";
  const Ids ids = tok().Encode(text, false, false);
  EXPECT_EQ(tok().Decode(ids), text);
  EXPECT_LT(ids.size(), text.size() / 2);
  // Encoding is local: the same sentence tokenizes the same inside the long text.
  const Ids one = tok().Encode("The quick brown fox ", false, false);
  EXPECT_TRUE(std::equal(one.begin(), one.end(), ids.begin()));
}

TEST_F(Gemma4Vocab, ConcurrentEncodeIsSafe) {
  // The server encodes requests on several threads with one shared tokenizer.
  std::vector<std::string> texts;
  for (int i = 0; i < 8; ++i) texts.push_back(Repeat("Thread " + std::to_string(i) + " says héllo 🦙\n\t ", 200 + i));
  std::vector<Ids> want;
  for (const auto& t : texts) want.push_back(tok().Encode(t, true, true));
  std::vector<Ids> got(texts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < texts.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int rep = 0; rep < 5; ++rep) got[i] = tok().Encode(texts[i], true, true);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(got, want);
}

// ---------------------------------------------------------------------------------------------------
// The tiny golden models' 512-token vocabularies.

TEST(TinyVocab, Gemma4BpeLoadsAndRoundTrips) {
  G4_REQUIRE_SHARED();
  const Tokenizer tok = Tokenizer::Load(g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf"));
  EXPECT_EQ(tok.model(), "gemma4");
  EXPECT_EQ(tok.n_vocab(), 512);
  // Merges whose pieces are CONTROL here (the "\n" runs) can never apply to text and are not loaded.
  const auto file = gguf::File::Open(g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf"));
  const auto& merges = file->GetStringArray("tokenizer.ggml.merges");
  ASSERT_EQ(merges.size(), 872u);
  size_t usable = 0;
  for (std::string_view m : merges) {
    const size_t sp = m.find(' ');
    const std::string a(m.substr(0, sp)), b(m.substr(sp + 1));
    bool ok = true;
    for (const std::string& p : {a, b, a + b}) ok = ok && !tok.IsControl(tok.Lookup(p));
    usable += ok;
  }
  EXPECT_LT(usable, 872u);
  EXPECT_EQ(tok.n_merges(), usable);
  EXPECT_EQ(tok.Lookup("<|turn>"), 105);
  EXPECT_EQ(tok.Lookup("<turn|>"), 106);
  EXPECT_EQ(tok.Lookup("<|channel>"), 100);
  EXPECT_EQ(tok.bos(), 2);
  const std::string text = "<|turn>user\nthe cat is on the mat<turn|>\n<|channel>ok";
  const Ids ids = tok.Encode(text, true, true);
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 105);
  EXPECT_EQ(tok.Decode(ids, true), "<bos>" + text);
  // "\n" is a CONTROL token in this vocabulary, so parsed it is hidden like <|turn>.
  EXPECT_EQ(tok.Decode(ids), "userthe cat is on the mat<|channel>ok");
  const Ids plain = tok.Encode(text, false, false);
  for (int32_t id : plain) EXPECT_FALSE(tok.IsControl(id)) << id;  // "\n" is CONTROL in this vocabulary
  EXPECT_EQ(tok.Decode(plain), text);
}

TEST(TinyVocab, SentencePieceScores) {
  G4_REQUIRE_SHARED();
  const Tokenizer tok = Tokenizer::Load(g4::testing::SharedPath("golden/g3-tiny/g3-tiny.f32.gguf"));
  EXPECT_EQ(tok.model(), "llama");
  EXPECT_EQ(tok.algorithm(), Tokenizer::Algorithm::kSentencePieceScore);
  EXPECT_EQ(tok.n_vocab(), 512);
  EXPECT_FALSE(tok.add_space_prefix());
  EXPECT_EQ(tok.Lookup("<start_of_turn>"), 105);
  const auto id = [&](std::string_view p) { return tok.Lookup(p); };

  // Scores are -id: "▁t" (494) beats "he" (499), then "▁t"+"he" = "▁the" (506). "▁" alone and "i", "s"
  // are not pieces here, so " is" is three bytes of "▁" then "is".
  EXPECT_EQ(tok.Encode(" the is", false, false),
            (Ids{id("▁the"), id("<0xE2>"), id("<0x96>"), id("<0x81>"), id("is")}));
  // The higher score wins over the leftmost position: in "rer", "er" (497) beats "re" (500).
  EXPECT_EQ(tok.Encode("rer", false, false), (Ids{id("<0x72>"), id("er")}));
  EXPECT_EQ(tok.Encode("rere", false, false), (Ids{id("<0x72>"), id("er"), id("<0x65>")}));

  // Text made of all its pieces round-trips, with and without special tokens.
  std::string text, with_specials;
  for (int32_t i = 0; i < tok.n_vocab(); ++i) {
    const TokenType t = tok.Type(i);
    if (t == TokenType::kNormal) text += tok.TokenBytes(i);
    if (t != TokenType::kByte && t != TokenType::kUnknown) with_specials += tok.TokenBytes(i, true);
  }
  EXPECT_EQ(tok.Decode(tok.Encode(text, false, false)), text);
  const Ids ids = tok.Encode(with_specials, true, false);
  EXPECT_EQ(tok.Decode(ids, true), with_specials);
  for (int32_t i : {0, 1, 2, 105, 106}) EXPECT_NE(std::find(ids.begin(), ids.end(), i), ids.end()) << i;
}

// ---------------------------------------------------------------------------------------------------
// Synthetic vocabularies written with the GGUF writer.

struct VocabSpec {
  std::string model = "llama";
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  std::vector<std::string> merges;
  bool with_merges = false;
  bool add_space_prefix = false;
};

// <pad> <eos> <bos> <unk> <ctl>, then byte tokens, then the given text pieces (scores -id).
VocabSpec SmallVocab(const std::vector<std::string>& pieces) {
  VocabSpec s;
  s.tokens = {"<pad>", "<eos>", "<bos>", "<unk>", "<ctl>"};
  s.types = {3, 3, 3, 2, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    s.tokens.push_back(name);
    s.types.push_back(6);
  }
  for (const auto& p : pieces) {
    s.tokens.push_back(p);
    s.types.push_back(1);
  }
  for (size_t i = 0; i < s.tokens.size(); ++i) s.scores.push_back(i < 261 ? 0.0f : -static_cast<float>(i));
  return s;
}

std::string WriteVocab(const VocabSpec& s, const std::string& name) {
  gguf::Writer w;
  w.SetString("general.architecture", "test");
  w.SetString("tokenizer.ggml.model", s.model);
  w.SetStringArray("tokenizer.ggml.tokens", s.tokens);
  if (!s.types.empty()) w.SetInt32Array("tokenizer.ggml.token_type", s.types);
  if (!s.scores.empty()) w.SetFloat32Array("tokenizer.ggml.scores", s.scores);
  if (s.with_merges) w.SetStringArray("tokenizer.ggml.merges", s.merges);
  w.SetBool("tokenizer.ggml.add_space_prefix", s.add_space_prefix);
  const std::string path = g4::testing::TempDir() + "/" + name + ".gguf";
  w.Write(path);
  return path;
}

// Loads `s` expecting an error; returns its message.
std::string LoadError(const VocabSpec& s, const std::string& name) {
  const std::string path = WriteVocab(s, name);
  try {
    Tokenizer::Load(path);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << "the message should name the file: " << msg;
    return msg;
  }
  ADD_FAILURE() << "expected an error for " << name;
  return "";
}

TEST(SyntheticVocab, SpacePrefixIsAddedAndRemoved) {
  VocabSpec s = SmallVocab({"▁", "h", "i", "▁h", "▁hi", "hi"});
  s.add_space_prefix = true;
  const Tokenizer tok = Tokenizer::Load(WriteVocab(s, "prefix"));
  const auto id = [&](std::string_view p) { return tok.Lookup(p); };
  EXPECT_TRUE(tok.add_space_prefix());
  EXPECT_EQ(tok.Encode("hi", false, false), Ids{id("▁hi")});
  // After a special token the next fragment gets a prefix space too (llama.cpp's SPM behaviour).
  EXPECT_EQ(tok.Encode("hi<ctl>hi", true, false), (Ids{id("▁hi"), 4, id("▁hi")}));
  EXPECT_EQ(tok.Decode(tok.Encode("hi hi", false, true)), "hi hi");
  EXPECT_EQ(tok.Decode(tok.Encode("hi hi", false, true), /*render_special=*/true), "<bos>hi hi");
  EXPECT_EQ(tok.Decode(tok.Encode("hi<ctl>hi", true, false), true), "hi<ctl> hi");
  StreamingDecoder dec(tok);
  std::string streamed;
  for (int32_t t : tok.Encode("hi hi", false, true)) streamed += dec.Push(t);
  EXPECT_EQ(streamed, "hi hi");
}

TEST(SyntheticVocab, MergesAreAppliedByRankNotScore) {
  // "a b" ranks before "b c", so "abc" -> "ab" "c" although "bc" has the better score.
  VocabSpec s = SmallVocab({"a", "b", "c", "bc", "ab"});
  s.model = "gemma4";
  s.with_merges = true;
  s.merges = {"a b", "b c"};
  const Tokenizer tok = Tokenizer::Load(WriteVocab(s, "ranks"));
  const auto id = [&](std::string_view p) { return tok.Lookup(p); };
  EXPECT_EQ(tok.n_merges(), 2u);
  EXPECT_EQ(tok.Encode("abc", false, false), (Ids{id("ab"), id("c")}));
  EXPECT_EQ(tok.Encode("bcab", false, false), (Ids{id("bc"), id("ab")}));
  // Without merges (SentencePiece scores) the score decides: "bc" (-264) beats "ab" (-265).
  VocabSpec spm = SmallVocab({"a", "b", "c", "bc", "ab"});
  const Tokenizer by_score = Tokenizer::Load(WriteVocab(spm, "scores"));
  EXPECT_EQ(by_score.Encode("abc", false, false), (Ids{by_score.Lookup("a"), by_score.Lookup("bc")}));
}

TEST(SyntheticVocab, MissingBytesFallBackToUnk) {
  VocabSpec s;
  s.tokens = {"<unk>", "a", "b"};
  s.types = {2, 1, 1};
  s.scores = {0, -1, -2};
  const Tokenizer tok = Tokenizer::Load(WriteVocab(s, "nobytes"));
  EXPECT_EQ(tok.unk(), 0);
  EXPECT_EQ(tok.bos(), -1);
  EXPECT_EQ(tok.Encode("axyb", false, false), (Ids{1, 0, 2}));  // consecutive unknowns fused
  EXPECT_EQ(tok.Encode("ab", false, true), (Ids{1, 2}));           // no BOS to add
}

TEST(SyntheticVocab, MalformedMetadataIsReported) {
  const VocabSpec good = SmallVocab({"a", "b", "ab"});

  VocabSpec s = good;
  s.tokens.clear();
  s.types.clear();
  s.scores.clear();
  {
    gguf::Writer w;
    w.SetString("tokenizer.ggml.model", "llama");
    const std::string path = g4::testing::TempDir() + "/novocab.gguf";
    w.Write(path);
    try {
      Tokenizer::Load(path);
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.tokens"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  EXPECT_NE(LoadError(s, "empty").find("tokenizer.ggml.tokens"), std::string::npos);

  s = good;
  s.types.pop_back();
  EXPECT_NE(LoadError(s, "types").find("tokenizer.ggml.token_type"), std::string::npos);

  s = good;
  s.types[7] = 9;
  EXPECT_NE(LoadError(s, "typeval").find("tokenizer.ggml.token_type"), std::string::npos);

  s = good;
  s.scores.push_back(0);
  EXPECT_NE(LoadError(s, "scores").find("tokenizer.ggml.scores"), std::string::npos);

  s = good;
  s.model = "gpt2";
  EXPECT_NE(LoadError(s, "model").find("gpt2"), std::string::npos);

  s = good;
  s.model = "gemma4";  // gemma4 needs merges
  EXPECT_NE(LoadError(s, "nomerges").find("tokenizer.ggml.merges"), std::string::npos);

  s = good;
  s.with_merges = true;
  s.merges = {"a b", "a zz"};
  const std::string unknown = LoadError(s, "badmerge");
  EXPECT_NE(unknown.find("tokenizer.ggml.merges"), std::string::npos);
  EXPECT_NE(unknown.find("zz"), std::string::npos);

  s.merges = {"b a"};  // "ba" is not a piece
  EXPECT_NE(LoadError(s, "noresult").find("tokenizer.ggml.merges"), std::string::npos);

  s.merges = {"ab"};
  EXPECT_NE(LoadError(s, "nospace").find("tokenizer.ggml.merges"), std::string::npos);

  s = good;
  s.types[261] = 6;  // "a" marked as a byte token
  EXPECT_NE(LoadError(s, "bytetype").find("BYTE"), std::string::npos);

  {
    gguf::Writer w;
    w.SetString("tokenizer.ggml.model", "llama");
    w.SetStringArray("tokenizer.ggml.tokens", {"a", "b"});
    w.SetFloat32Array("tokenizer.ggml.scores", {0, 0});
    w.SetUInt32("tokenizer.ggml.bos_token_id", 7);
    const std::string path = g4::testing::TempDir() + "/bos.gguf";
    w.Write(path);
    try {
      Tokenizer::Load(path);
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.bos_token_id"), std::string::npos) << e.what();
    }
  }
}

TEST(Utf8, Classify) {
  EXPECT_TRUE(utf8::IsValid("héllo 世界 🦙"));
  EXPECT_FALSE(utf8::IsValid("\xC0\xAF"));          // overlong
  EXPECT_FALSE(utf8::IsValid("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(utf8::IsValid("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(utf8::IsValid("\xE2\x96"));          // truncated
  // One U+FFFD per maximal subpart.
  EXPECT_EQ(utf8::MakeValid("a\xF0\x9F\x80" "b\x80\x80" "c"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD" "c");
  std::string out;
  size_t tail = 0;
  utf8::AppendValid("x\xE4\xB8", &out, &tail);
  EXPECT_EQ(out, "x");
  EXPECT_EQ(tail, 2u);
}

}  // namespace
}  // namespace g4
