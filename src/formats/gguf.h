// GGUF: the model file format of llama.cpp (spec: ggml/docs/gguf.md). Versions 2 and 3 are read
// memory-mapped: metadata values and tensor data point into the mapping and are never copied.
// Everything a file claims is validated before it is used; a bad file gives one g4::Error that
// names the file and what is wrong, never a crash, a hang or an allocation of a size the file claims.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/ggml_types.h"
#include "util/mapped_file.h"

namespace g4::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
const char* ValueTypeName(ValueType t);

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kDefaultAlignment = 32;

// A metadata value. Scalars are decoded; strings and arrays view the mapped file.
struct Value {
  ValueType type = ValueType::UINT8;
  // Scalars (integers widened, floats as double, bool as 0/1).
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string_view str;            // STRING
  ValueType elem_type = ValueType::UINT8;  // ARRAY
  uint64_t count = 0;              // ARRAY: number of elements
  const uint8_t* array_data = nullptr;     // ARRAY: first element in the file
  std::vector<std::string_view> strs;  // ARRAY of STRING: the elements
  std::vector<Value> nested;       // ARRAY of ARRAY: decoded elements
  bool IsInteger() const;
  bool IsNumber() const { return IsInteger() || type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }
};

struct KeyValue {
  std::string key;
  Value value;
  uint64_t offset = 0;  // where the pair starts in the file (for messages)
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the innermost (contiguous) dimension
  uint64_t offset = 0;           // relative to the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // in the mapping
  int64_t Elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t Rows() const { return ne[1] * ne[2] * ne[3]; }
  std::string ShapeString() const;  // "[256, 512]"
};

class File {
 public:
  // Opens, maps and fully validates a GGUF file. Throws g4::Error on any problem.
  static std::unique_ptr<File> Open(const std::string& path);
  // Parses a file image held in memory (for tests and for reading before mapping); `name` is used in
  // messages. The bytes must outlive the File.
  static std::unique_ptr<File> Parse(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return size_; }
  const uint8_t* base() const { return base_; }
  // Copies n bytes that start at p (a pointer into base()) to dst: with pread from an opened file, so
  // the pages are not mapped into the process (MappedFile::ReadAt), or from memory for a parsed image.
  void Read(const uint8_t* p, size_t n, void* dst) const;

  const std::vector<KeyValue>& kvs() const { return kvs_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  const Value* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Typed getters: a missing key or a value of the wrong kind throws an error naming file and key.
  // Integer getters accept any integer type that fits; float getters accept any number.
  uint64_t GetUInt(std::string_view key) const;
  int64_t GetInt(std::string_view key) const;
  double GetFloat(std::string_view key) const;
  bool GetBool(std::string_view key) const;
  std::string GetString(std::string_view key) const;
  std::optional<uint64_t> GetUIntOpt(std::string_view key) const;
  std::optional<double> GetFloatOpt(std::string_view key) const;
  std::optional<bool> GetBoolOpt(std::string_view key) const;
  std::optional<std::string> GetStringOpt(std::string_view key) const;

  // A key that may hold one scalar or an array with one element per layer (llama.cpp's
  // get_key_or_arr). Returns n values; an array of another length is an error.
  std::vector<int64_t> GetIntPerLayer(std::string_view key, size_t n) const;
  std::vector<bool> GetBoolArray(std::string_view key) const;
  // Array accessors; throw if the key is not an array of the right element kind.
  const std::vector<std::string_view>& GetStringArray(std::string_view key) const;
  std::vector<float> GetFloatArray(std::string_view key) const;
  std::vector<int64_t> GetIntArray(std::string_view key) const;

  const TensorInfo* FindTensor(std::string_view name) const;
  // The tensor `name` with the given shape (ggml order; trailing 1s may be omitted). Throws if it is
  // missing or has another shape.
  const TensorInfo& RequireTensor(std::string_view name, std::initializer_list<int64_t> ne) const;

  // "file.gguf: " prefix for messages.
  std::string Where() const { return path_ + ": "; }

 private:
  File() = default;
  void ParseImage();

  std::unique_ptr<MappedFile> map_;
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Writes GGUF v3. Metadata and tensor descriptions are collected first; tensor data is produced on
// demand while writing (one tensor in memory at a time), so very large synthetic models can be
// written with little memory. The file is written to a temporary name and renamed at the end.
class Writer {
 public:
  void SetUInt32(const std::string& key, uint32_t v);
  void SetInt32(const std::string& key, int32_t v);
  void SetUInt64(const std::string& key, uint64_t v);
  void SetFloat32(const std::string& key, float v);
  void SetBool(const std::string& key, bool v);
  void SetString(const std::string& key, const std::string& v);
  void SetStringArray(const std::string& key, const std::vector<std::string>& v);
  void SetFloat32Array(const std::string& key, const std::vector<float>& v);
  void SetInt32Array(const std::string& key, const std::vector<int32_t>& v);
  void SetUInt32Array(const std::string& key, const std::vector<uint32_t>& v);
  void SetBoolArray(const std::string& key, const std::vector<bool>& v);
  // Copies a key-value pair (any type, arrays included) from another file.
  void CopyValue(const std::string& key, const Value& v);
  void SetAlignment(uint32_t alignment);

  // Producer fills exactly RowBytes(type, ne0) * rows bytes.
  using Producer = std::function<void(uint8_t* dst, size_t nbytes)>;
  void AddTensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Producer produce);

  // Writes everything to `path`; `progress(done_tensors, total)` is called after each tensor.
  void Write(const std::string& path, const std::function<void(size_t, size_t)>& progress = nullptr) const;

  size_t tensor_count() const { return tensors_.size(); }

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    uint64_t nbytes;
    Producer produce;
  };
  void SetRaw(const std::string& key, ValueType type, std::string payload);
  std::vector<std::pair<std::string, std::string>> kv_;  // key -> encoded (type + payload)
  std::vector<PendingTensor> tensors_;
  uint32_t alignment_ = kDefaultAlignment;
};

}  // namespace g4::gguf
