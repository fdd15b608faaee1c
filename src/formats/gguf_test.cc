#include "formats/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "testutil.h"
#include "util/error.h"

namespace g4::gguf {
namespace {

std::string ReadAll(const std::string& path) { return g4::testing::ReadText(path); }

// A small valid file with every metadata type and three tensors.
std::string MakeFile(const std::string& dir) {
  Writer w;
  w.SetString("general.architecture", "gemma4");
  w.SetUInt32("test.u32", 7);
  w.SetInt32("test.i32", -3);
  w.SetUInt64("test.u64", 1ull << 40);
  w.SetFloat32("test.f32", 1.5f);
  w.SetBool("test.bool", true);
  w.SetStringArray("test.strings", {"a", "bc", ""});
  w.SetFloat32Array("test.floats", {1.0f, 2.0f});
  w.SetInt32Array("test.ints", {1, -2, 3});
  w.SetBoolArray("test.bools", {true, false, true});
  w.AddTensor("a", GgmlType::F32, {4, 2}, [](uint8_t* d, size_t n) {
    for (size_t i = 0; i < n / 4; ++i) {
      float v = static_cast<float>(i);
      std::memcpy(d + 4 * i, &v, 4);
    }
  });
  w.AddTensor("b", GgmlType::Q8_0, {64}, [](uint8_t* d, size_t n) { std::memset(d, 1, n); });
  w.AddTensor("c", GgmlType::F16, {3}, [](uint8_t* d, size_t n) { std::memset(d, 0, n); });
  const std::string path = dir + "/ok.gguf";
  w.Write(path);
  return path;
}

std::string ExpectParseError(const std::string& bytes) {
  try {
    File::Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "bad.gguf");
  } catch (const g4::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

TEST(Gguf, WriteThenReadRoundTrips) {
  const std::string path = MakeFile(g4::testing::TempDir());
  auto f = File::Open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->GetString("general.architecture"), "gemma4");
  EXPECT_EQ(f->GetUInt("test.u32"), 7u);
  EXPECT_EQ(f->GetInt("test.i32"), -3);
  EXPECT_EQ(f->GetUInt("test.u64"), 1ull << 40);
  EXPECT_EQ(f->GetFloat("test.f32"), 1.5);
  EXPECT_TRUE(f->GetBool("test.bool"));
  EXPECT_EQ(f->GetStringArray("test.strings").size(), 3u);
  EXPECT_EQ(f->GetStringArray("test.strings")[1], "bc");
  EXPECT_EQ(f->GetFloatArray("test.floats")[1], 2.0f);
  EXPECT_EQ(f->GetIntArray("test.ints")[1], -2);
  EXPECT_EQ(f->GetBoolArray("test.bools")[2], true);
  EXPECT_EQ(f->GetIntPerLayer("test.u32", 3), (std::vector<int64_t>{7, 7, 7}));
  EXPECT_EQ(f->GetIntPerLayer("test.ints", 3), (std::vector<int64_t>{1, -2, 3}));
  const TensorInfo& a = f->RequireTensor("a", {4, 2});
  float v;
  std::memcpy(&v, a.data + 4 * 5, 4);
  EXPECT_EQ(v, 5.0f);
  EXPECT_EQ(f->RequireTensor("b", {64}).nbytes, 68u);
  EXPECT_EQ(static_cast<size_t>(a.data - f->base()) % 32, 0u);
}

TEST(Gguf, ClearErrorsForWrongKeysAndShapes) {
  auto f = File::Open(MakeFile(g4::testing::TempDir()));
  try {
    f->GetUInt("missing.key");
    FAIL();
  } catch (const g4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing required metadata key 'missing.key'"), std::string::npos);
  }
  try {
    f->GetString("test.u32");
    FAIL();
  } catch (const g4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'test.u32' is uint32, expected a string"), std::string::npos);
  }
  try {
    f->RequireTensor("a", {2, 4});
    FAIL();
  } catch (const g4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'a' has shape [4, 2], expected [2, 4]"), std::string::npos);
  }
  try {
    f->GetIntPerLayer("test.ints", 4);
    FAIL();
  } catch (const g4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 elements, expected one per layer (4)"), std::string::npos);
  }
  EXPECT_THROW(f->GetUInt("test.i32"), g4::Error);  // negative
}

TEST(Gguf, EveryTruncationIsAnError) {
  const std::string good = ReadAll(MakeFile(g4::testing::TempDir()));
  for (size_t n = 0; n < good.size(); ++n) {
    // A truncation inside the padding after the last tensor still holds all data; skip those.
    const std::string bytes = good.substr(0, n);
    bool threw = false;
    try {
      File::Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "cut.gguf");
    } catch (const g4::Error& e) {
      threw = true;
    }
    if (!threw) {
      // Only acceptable when the cut removed nothing but trailing padding.
      auto f = File::Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "cut.gguf");
      uint64_t end = 0;
      for (auto& t : f->tensors()) end = std::max(end, f->data_offset() + t.offset + t.nbytes);
      EXPECT_LE(end, n) << "truncation at " << n << " accepted";
    }
  }
}

// Byte offsets inside the header of a file we build by hand.
struct Raw {
  std::string s;
  template <typename T>
  void Put(T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void Str(const std::string& x) {
    Put<uint64_t>(x.size());
    s += x;
  }
};

Raw Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
  Raw r;
  r.Put<uint32_t>(kMagic);
  r.Put<uint32_t>(version);
  r.Put<uint64_t>(n_tensors);
  r.Put<uint64_t>(n_kv);
  return r;
}

TEST(Gguf, MalformedHeaders) {
  EXPECT_NE(ExpectParseError("GGU").find("not a GGUF file"), std::string::npos);
  EXPECT_NE(ExpectParseError("GGML\x03\0\0\0").find("bad magic"), std::string::npos);
  EXPECT_NE(ExpectParseError(Header(1, 0, 0).s).find("version 1 is not supported"), std::string::npos);
  EXPECT_NE(ExpectParseError(Header(7, 0, 0).s).find("unsupported GGUF version 7"), std::string::npos);
  EXPECT_NE(ExpectParseError(Header(0x03000000, 0, 0).s).find("big-endian"), std::string::npos);
  EXPECT_NE(ExpectParseError(Header(3, 0, 1ull << 60).s).find("metadata entries cannot fit"), std::string::npos);
  EXPECT_NE(ExpectParseError(Header(3, 1ull << 60, 0).s).find("tensors cannot fit"), std::string::npos);
}

TEST(Gguf, MalformedMetadata) {
  {  // absurd string length
    Raw r = Header(3, 0, 1);
    r.Put<uint64_t>(1ull << 62);
    r.s += "key" + std::string(64, '\0');
    EXPECT_NE(ExpectParseError(r.s).find("has length"), std::string::npos);
  }
  {  // unknown value type
    Raw r = Header(3, 0, 1);
    r.Str("k");
    r.Put<uint32_t>(99);
    EXPECT_NE(ExpectParseError(r.s).find("unknown value type 99"), std::string::npos);
  }
  {  // absurd array length
    Raw r = Header(3, 0, 1);
    r.Str("k");
    r.Put<uint32_t>(9);
    r.Put<uint32_t>(4);
    r.Put<uint64_t>(1ull << 61);
    EXPECT_NE(ExpectParseError(r.s).find("does not fit"), std::string::npos);
  }
  {  // duplicate key
    Raw r = Header(3, 0, 2);
    for (int i = 0; i < 2; ++i) {
      r.Str("k");
      r.Put<uint32_t>(4);
      r.Put<uint32_t>(1);
    }
    EXPECT_NE(ExpectParseError(r.s).find("duplicate metadata key 'k'"), std::string::npos);
  }
  {  // bad alignment
    Raw r = Header(3, 0, 1);
    r.Str("general.alignment");
    r.Put<uint32_t>(4);
    r.Put<uint32_t>(3);
    EXPECT_NE(ExpectParseError(r.s).find("power of two"), std::string::npos);
  }
  {  // bool that is not 0/1
    Raw r = Header(3, 0, 1);
    r.Str("k");
    r.Put<uint32_t>(7);
    r.Put<uint8_t>(2);
    EXPECT_NE(ExpectParseError(r.s).find("neither 0 nor 1"), std::string::npos);
  }
}

Raw OneTensor(uint32_t n_dims, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
  Raw r = Header(3, 1, 0);
  r.Str("t");
  r.Put<uint32_t>(n_dims);
  for (auto n : ne) r.Put<uint64_t>(n);
  r.Put<uint32_t>(type);
  r.Put<uint64_t>(offset);
  r.s.resize((r.s.size() + 31) / 32 * 32, '\0');
  return r;
}

TEST(Gguf, MalformedTensorInfos) {
  {
    Raw r = OneTensor(5, {1, 1, 1, 1, 1}, 0, 0);
    EXPECT_NE(ExpectParseError(r.s).find("5 dimensions"), std::string::npos);
  }
  {
    Raw r = OneTensor(1, {4}, 77, 0);
    r.s += std::string(64, '\0');
    EXPECT_NE(ExpectParseError(r.s).find("unknown type 77"), std::string::npos);
  }
  {
    Raw r = OneTensor(1, {33}, 8, 0);  // q8_0 row not a multiple of 32
    r.s += std::string(64, '\0');
    EXPECT_NE(ExpectParseError(r.s).find("not a multiple of the block size"), std::string::npos);
  }
  {
    Raw r = OneTensor(2, {1ull << 40, 1ull << 40}, 0, 0);
    EXPECT_NE(ExpectParseError(r.s).find("claims"), std::string::npos);
  }
  {
    Raw r = OneTensor(1, {0}, 0, 0);
    EXPECT_NE(ExpectParseError(r.s).find("dimension 0 is 0"), std::string::npos);
  }
  {
    Raw r = OneTensor(1, {16}, 0, 0);  // needs 64 bytes, file has none
    EXPECT_NE(ExpectParseError(r.s).find("extends past the end of the file"), std::string::npos);
  }
  {
    Raw r = OneTensor(1, {16}, 0, 8);  // unaligned offset
    r.s += std::string(128, '\0');
    EXPECT_NE(ExpectParseError(r.s).find("not a multiple of the alignment"), std::string::npos);
  }
  {  // two overlapping tensors
    Raw r = Header(3, 2, 0);
    for (const char* name : {"x", "y"}) {
      r.Str(name);
      r.Put<uint32_t>(1);
      r.Put<uint64_t>(16);
      r.Put<uint32_t>(0);
      r.Put<uint64_t>(name[0] == 'x' ? 0 : 32);
    }
    r.s.resize((r.s.size() + 31) / 32 * 32, '\0');
    r.s += std::string(128, '\0');
    EXPECT_NE(ExpectParseError(r.s).find("overlap"), std::string::npos);
  }
}

TEST(Gguf, RandomCorruptionNeverCrashes) {
  const std::string good = ReadAll(MakeFile(g4::testing::TempDir()));
  std::mt19937 rng(1234);
  int errors = 0;
  for (int it = 0; it < 3000; ++it) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Bias corruption towards the header, where the structure is.
      const size_t pos = rng() % std::min<size_t>(bytes.size(), (rng() & 1) ? 400 : bytes.size());
      bytes[pos] = static_cast<char>(rng());
    }
    try {
      auto f = File::Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "fuzz.gguf");
      for (auto& t : f->tensors()) ASSERT_LE(t.data + t.nbytes, f->base() + f->file_size());
    } catch (const g4::Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(Gguf, ReadsGoldenModels) {
  G4_REQUIRE_SHARED();
  auto f = File::Open(g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.q8_0.gguf"));
  EXPECT_EQ(f->GetString("general.architecture"), "gemma4");
  EXPECT_EQ(f->tensors().size(), 169u);
  EXPECT_EQ(f->RequireTensor("token_embd.weight", {256, 512}).type, GgmlType::Q8_0);
  EXPECT_EQ(f->GetStringArray("tokenizer.ggml.merges").size(), 872u);
  auto v = File::Open(g4::testing::SharedPath("tokenizer/gemma4-vocab.gguf"));
  EXPECT_EQ(v->GetStringArray("tokenizer.ggml.tokens").size(), 262144u);
}

}  // namespace
}  // namespace g4::gguf
