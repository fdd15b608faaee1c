// Test fixture: the golden tiny multimodal model (g4u-mm-tiny, hidden 256), its projector with
// exact numerics, and contexts with the reference numerics (exact math, F32 KV cache).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "model/context.h"
#include "multimodal/media.h"
#include "testutil.h"

namespace g4::mm {

inline std::string MmDir() { return g4::testing::SharedPath("golden/multimodal/"); }

inline ContextOptions Exact(int64_t n_batch = 512) {
  ContextOptions o;
  o.math = kernels::Math::kExact;
  o.kv.n_ctx = 512;
  o.kv.type_k = o.kv.type_v = GgmlType::F32;
  o.n_threads = 2;
  o.n_batch = n_batch;
  return o;
}

class TinyMm : public ::testing::Test {
 protected:
  void SetUp() override {
    G4_REQUIRE_SHARED();
    model_ = Model::Load(MmDir() + "g4u-mm-tiny.f32.gguf");
    tok_ = std::make_unique<Tokenizer>(Tokenizer::FromGguf(model_->file()));
    enc_ = MediaEncoder::Create(*model_, MmDir() + "mmproj-g4u-mm-tiny.f32.gguf", kernels::Math::kExact);
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<MediaEncoder> enc_;
  ThreadPool pool_{2};
};

}  // namespace g4::mm
