// Reading Hugging Face safetensors files (spec: huggingface/safetensors README): an 8-byte
// little-endian header length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [b, e]},
// "__metadata__": {...}}, then the data section. Files are memory-mapped and tensors viewed in place.
//
// Everything the header claims is checked before use, like the GGUF reader does: the header length
// against the file size, every dtype, every shape (no overflow), every offset range against the data
// section, each range's size against dtype x shape, and that ranges do not overlap. Nothing is
// allocated at a size the file states. A bad file is one g4::Error naming the file and the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "util/mapped_file.h"

namespace g4::convert {

enum class StDtype { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };
const char* StDtypeName(StDtype t);
size_t StDtypeSize(StDtype t);

struct StTensor {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order)
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  const std::string* file = nullptr;  // the file it lives in (for messages)
  int64_t Elements() const;
  std::string ShapeString() const;  // "[256, 512]"
};

class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> Open(const std::string& path);
  // Parses an image held in memory (tests); the bytes must outlive the object.
  static std::unique_ptr<SafetensorsFile> Parse(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  const std::map<std::string, StTensor>& tensors() const { return tensors_; }
  const StTensor* Find(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  void ParseImage(const uint8_t* data, size_t size);
  std::unique_ptr<MappedFile> map_;
  std::string path_;
  std::map<std::string, StTensor> tensors_;
};

// Converts `n` elements starting at element `first` of a floating-point tensor to f32 (f32/f16/bf16/f64
// sources). Fails naming the tensor for other dtypes.
void ReadF32(const StTensor& t, int64_t first, int64_t n, float* dst);

}  // namespace g4::convert
