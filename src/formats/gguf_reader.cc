// GGUF reading and validation. The parser walks the file with a bounds-checked cursor; every count
// or length is checked against the bytes that remain before anything is allocated for it.
#include <algorithm>
#include <cinttypes>
#include <cstring>

#include "formats/gguf.h"
#include "util/error.h"

namespace g4::gguf {

const char* ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "uint8";
    case ValueType::INT8: return "int8";
    case ValueType::UINT16: return "uint16";
    case ValueType::INT16: return "int16";
    case ValueType::UINT32: return "uint32";
    case ValueType::INT32: return "int32";
    case ValueType::FLOAT32: return "float32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "uint64";
    case ValueType::INT64: return "int64";
    case ValueType::FLOAT64: return "float64";
  }
  return "?";
}

bool Value::IsInteger() const {
  switch (type) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

std::string TensorInfo::ShapeString() const {
  std::string s = "[";
  for (int i = 0; i < n_dims; ++i) {
    if (i) s += ", ";
    s += std::to_string(ne[i]);
  }
  return s + "]";
}

namespace {

// Size in bytes of one element of a scalar type; 0 for STRING/ARRAY (variable size).
size_t ScalarSize(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    default: return 0;
  }
}

bool ValidValueType(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size, const std::string& name) : base_(base), size_(size), name_(name) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  [[noreturn]] void Bad(const char* fmt, ...) const __attribute__((format(printf, 2, 3))) {
    va_list args;
    va_start(args, fmt);
    std::string msg = StrFormatV(fmt, args);
    va_end(args);
    Fail("%s: invalid GGUF at offset %zu: %s", name_.c_str(), pos_, msg.c_str());
  }

  void Need(size_t n, const char* what) const {
    if (n > remaining()) {
      Fail("%s: truncated GGUF: %s needs %zu bytes at offset %zu but the file ends at %zu", name_.c_str(), what, n,
           pos_, size_);
    }
  }
  template <typename T>
  T Read(const char* what) {
    Need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view ReadString(const char* what) {
    const uint64_t len = Read<uint64_t>(what);
    if (len > remaining()) {
      Fail("%s: invalid GGUF at offset %zu: %s has length %" PRIu64 " but only %zu bytes remain", name_.c_str(),
           pos_ - 8, what, len, remaining());
    }
    std::string_view s(reinterpret_cast<const char*>(base_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  const uint8_t* Skip(size_t n, const char* what) {
    Need(n, what);
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

void ReadValue(Cursor& c, ValueType type, Value& v, const std::string& key, int depth) {
  v.type = type;
  switch (type) {
    case ValueType::UINT8: v.u = c.Read<uint8_t>("uint8 value"); v.i = static_cast<int64_t>(v.u); break;
    case ValueType::INT8: v.i = c.Read<int8_t>("int8 value"); v.u = static_cast<uint64_t>(v.i); break;
    case ValueType::UINT16: v.u = c.Read<uint16_t>("uint16 value"); v.i = static_cast<int64_t>(v.u); break;
    case ValueType::INT16: v.i = c.Read<int16_t>("int16 value"); v.u = static_cast<uint64_t>(v.i); break;
    case ValueType::UINT32: v.u = c.Read<uint32_t>("uint32 value"); v.i = static_cast<int64_t>(v.u); break;
    case ValueType::INT32: v.i = c.Read<int32_t>("int32 value"); v.u = static_cast<uint64_t>(v.i); break;
    case ValueType::UINT64: v.u = c.Read<uint64_t>("uint64 value"); v.i = static_cast<int64_t>(v.u); break;
    case ValueType::INT64: v.i = c.Read<int64_t>("int64 value"); v.u = static_cast<uint64_t>(v.i); break;
    case ValueType::FLOAT32: v.f = c.Read<float>("float32 value"); break;
    case ValueType::FLOAT64: v.f = c.Read<double>("float64 value"); break;
    case ValueType::BOOL: {
      const uint8_t b = c.Read<uint8_t>("bool value");
      if (b > 1) c.Bad("key '%s': bool value %u is neither 0 nor 1", key.c_str(), b);
      v.u = b;
      v.i = b;
      break;
    }
    case ValueType::STRING: v.str = c.ReadString("string value"); break;
    case ValueType::ARRAY: {
      if (depth >= 4) c.Bad("key '%s': arrays nested deeper than 4 levels", key.c_str());
      const uint32_t et = c.Read<uint32_t>("array element type");
      if (!ValidValueType(et)) c.Bad("key '%s': unknown array element type %u", key.c_str(), et);
      v.elem_type = static_cast<ValueType>(et);
      v.count = c.Read<uint64_t>("array length");
      const size_t elem = ScalarSize(v.elem_type);
      // Minimum bytes per element: strings need their 8-byte length, arrays their type + length.
      const size_t min_elem = elem ? elem : (v.elem_type == ValueType::STRING ? 8 : 12);
      if (v.count > c.remaining() / min_elem) {
        c.Bad("key '%s': array of %" PRIu64 " %s elements does not fit in the %zu bytes that remain", key.c_str(),
              v.count, ValueTypeName(v.elem_type), c.remaining());
      }
      v.array_data = c.Skip(0, "array");
      if (elem) {
        c.Skip(static_cast<size_t>(v.count) * elem, "array data");
        if (v.elem_type == ValueType::BOOL) {
          for (uint64_t k = 0; k < v.count; ++k) {
            if (v.array_data[k] > 1) c.Bad("key '%s': bool element %" PRIu64 " is neither 0 nor 1", key.c_str(), k);
          }
        }
      } else if (v.elem_type == ValueType::STRING) {
        v.strs.reserve(static_cast<size_t>(v.count));
        for (uint64_t k = 0; k < v.count; ++k) v.strs.push_back(c.ReadString("string array element"));
      } else {
        v.nested.resize(static_cast<size_t>(v.count));
        for (auto& e : v.nested) ReadValue(c, v.elem_type, e, key, depth + 1);
      }
      break;
    }
  }
}

int64_t ReadScalarInt(const uint8_t* p, ValueType t) {
  switch (t) {
    case ValueType::UINT8: return *p;
    case ValueType::INT8: return static_cast<int8_t>(*p);
    case ValueType::BOOL: return *p;
    case ValueType::UINT16: { uint16_t x; std::memcpy(&x, p, 2); return x; }
    case ValueType::INT16: { int16_t x; std::memcpy(&x, p, 2); return x; }
    case ValueType::UINT32: { uint32_t x; std::memcpy(&x, p, 4); return x; }
    case ValueType::INT32: { int32_t x; std::memcpy(&x, p, 4); return x; }
    case ValueType::UINT64: { uint64_t x; std::memcpy(&x, p, 8); return static_cast<int64_t>(x); }
    case ValueType::INT64: { int64_t x; std::memcpy(&x, p, 8); return x; }
    default: return 0;
  }
}

}  // namespace

std::unique_ptr<File> File::Open(const std::string& path) {
  auto map = std::make_unique<MappedFile>(path);
  std::unique_ptr<File> f(new File());
  f->path_ = path;
  f->base_ = map->data();
  f->size_ = map->size();
  f->map_ = std::move(map);
  f->ParseImage();
  return f;
}

void File::Read(const uint8_t* p, size_t n, void* dst) const {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p), begin = reinterpret_cast<uintptr_t>(base_);
  if (at < begin || at - begin > size_ || n > size_ - (at - begin)) {
    Fail("%s: read of %zu bytes outside the file", path_.c_str(), n);
  }
  if (map_) {
    map_->ReadAt(at - begin, n, dst);
  } else {
    std::memcpy(dst, p, n);
  }
}

std::unique_ptr<File> File::Parse(const uint8_t* data, size_t size, const std::string& name) {
  std::unique_ptr<File> f(new File());
  f->path_ = name;
  f->base_ = data;
  f->size_ = size;
  f->ParseImage();
  return f;
}

void File::ParseImage() {
  Cursor c(base_, size_, path_);
  if (size_ < 4) Fail("%s: not a GGUF file: only %zu bytes", path_.c_str(), size_);
  const uint32_t magic = c.Read<uint32_t>("magic");
  if (magic != kMagic) {
    Fail("%s: not a GGUF file: bad magic 0x%08x (expected \"GGUF\")", path_.c_str(), magic);
  }
  version_ = c.Read<uint32_t>("version");
  if (version_ == 1) Fail("%s: GGUF version 1 is not supported (versions 2 and 3 are)", path_.c_str());
  if ((version_ & 0xffff) == 0 && version_ != 0) {
    Fail("%s: big-endian GGUF files are not supported", path_.c_str());
  }
  if (version_ != 2 && version_ != 3) {
    Fail("%s: unsupported GGUF version %u (versions 2 and 3 are supported)", path_.c_str(), version_);
  }
  const uint64_t n_tensors = c.Read<uint64_t>("tensor count");
  const uint64_t n_kv = c.Read<uint64_t>("metadata count");
  // Smallest possible encodings: a key-value pair is 8 (key length) + 4 (type) + 1 bytes; a tensor
  // info is 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset).
  if (n_kv > c.remaining() / 13) {
    Fail("%s: invalid GGUF: %" PRIu64 " metadata entries cannot fit in a file of %zu bytes", path_.c_str(), n_kv, size_);
  }
  if (n_tensors > c.remaining() / 32) {
    Fail("%s: invalid GGUF: %" PRIu64 " tensors cannot fit in a file of %zu bytes", path_.c_str(), n_tensors, size_);
  }

  kvs_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    KeyValue kv;
    kv.offset = c.pos();
    const std::string_view key = c.ReadString("metadata key");
    if (key.empty()) c.Bad("metadata entry %" PRIu64 " has an empty key", k);
    kv.key = std::string(key);
    const uint32_t t = c.Read<uint32_t>("metadata value type");
    if (!ValidValueType(t)) c.Bad("key '%s' has unknown value type %u", kv.key.c_str(), t);
    ReadValue(c, static_cast<ValueType>(t), kv.value, kv.key, 0);
    if (kv_index_.count(kv.key)) c.Bad("duplicate metadata key '%s'", kv.key.c_str());
    kv_index_.emplace(kv.key, kvs_.size());
    kvs_.push_back(std::move(kv));
  }

  if (const Value* a = Find("general.alignment")) {
    if (!a->IsInteger() || a->u == 0 || a->u > (1u << 24) || (a->u & (a->u - 1)) != 0) {
      Fail("%s: invalid GGUF: general.alignment must be a power of two, got %s %" PRIu64, path_.c_str(),
           ValueTypeName(a->type), a->u);
    }
    alignment_ = static_cast<uint32_t>(a->u);
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo ti;
    const std::string_view name = c.ReadString("tensor name");
    if (name.empty()) c.Bad("tensor %" PRIu64 " has an empty name", k);
    if (name.size() > 256) c.Bad("tensor %" PRIu64 " has a name of %zu bytes (at most 256)", k, name.size());
    ti.name = std::string(name);
    const uint32_t n_dims = c.Read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > 4) c.Bad("tensor '%s' has %u dimensions (1 to 4 allowed)", ti.name.c_str(), n_dims);
    ti.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.Read<uint64_t>("tensor dimension");
      if (ne == 0 || ne > (uint64_t{1} << 40)) {
        c.Bad("tensor '%s' dimension %u is %" PRIu64, ti.name.c_str(), d, ne);
      }
      ti.ne[d] = static_cast<int64_t>(ne);
    }
    const uint32_t type = c.Read<uint32_t>("tensor type");
    const auto traits = TraitsOf(type);
    if (!traits) c.Bad("tensor '%s' has unknown type %u", ti.name.c_str(), type);
    ti.type = static_cast<GgmlType>(type);
    ti.offset = c.Read<uint64_t>("tensor data offset");
    // Element count, with overflow checks: every ne <= 2^40, so check the running product.
    __int128 elements = 1;
    for (int d = 0; d < 4; ++d) elements *= ti.ne[d];
    if (elements > (static_cast<__int128>(1) << 50)) {
      c.Bad("tensor '%s' claims %s elements", ti.name.c_str(), ti.ShapeString().c_str());
    }
    if (ti.ne[0] % traits->block_size != 0) {
      c.Bad("tensor '%s' of type %s has rows of %" PRId64 " elements, not a multiple of the block size %" PRId64,
            ti.name.c_str(), traits->name, ti.ne[0], traits->block_size);
    }
    ti.nbytes = static_cast<uint64_t>(static_cast<int64_t>(elements) / traits->block_size * traits->type_size);
    if (tensor_index_.count(ti.name)) c.Bad("duplicate tensor name '%s'", ti.name.c_str());
    tensor_index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(std::move(ti));
  }

  const uint64_t end_of_infos = c.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > size_) {
    Fail("%s: truncated GGUF: tensor data should start at offset %" PRIu64 " but the file has %zu bytes",
         path_.c_str(), data_offset_, size_);
  }
  const uint64_t data_size = data_offset_ <= size_ ? size_ - data_offset_ : 0;

  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (auto& ti : tensors_) {
    if (ti.offset % alignment_ != 0) {
      Fail("%s: invalid GGUF: tensor '%s' data offset %" PRIu64 " is not a multiple of the alignment %u",
           path_.c_str(), ti.name.c_str(), ti.offset, alignment_);
    }
    if (ti.offset > data_size || ti.nbytes > data_size - ti.offset) {
      Fail("%s: truncated or invalid GGUF: tensor '%s' (%s %s, %" PRIu64 " bytes at data offset %" PRIu64
           ") extends past the end of the file (%" PRIu64 " bytes of tensor data)",
           path_.c_str(), ti.name.c_str(), TypeName(ti.type), ti.ShapeString().c_str(), ti.nbytes, ti.offset,
           data_size);
    }
    ti.data = base_ + data_offset_ + ti.offset;
    by_offset.push_back(&ti);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const TensorInfo* prev = by_offset[k - 1];
    if (prev->offset + prev->nbytes > by_offset[k]->offset) {
      Fail("%s: invalid GGUF: tensors '%s' (offset %" PRIu64 ", %" PRIu64 " bytes) and '%s' (offset %" PRIu64
           ") overlap",
           path_.c_str(), prev->name.c_str(), prev->offset, prev->nbytes, by_offset[k]->name.c_str(),
           by_offset[k]->offset);
    }
  }
}

const Value* File::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

namespace {
[[noreturn]] void Missing(const File& f, std::string_view key) {
  Fail("%smissing required metadata key '%.*s'", f.Where().c_str(), static_cast<int>(key.size()), key.data());
}
[[noreturn]] void WrongType(const File& f, std::string_view key, const Value& v, const char* want) {
  Fail("%smetadata key '%.*s' is %s, expected %s", f.Where().c_str(), static_cast<int>(key.size()), key.data(),
       ValueTypeName(v.type), want);
}
}  // namespace

uint64_t File::GetUInt(std::string_view key) const {
  auto v = GetUIntOpt(key);
  if (!v) Missing(*this, key);
  return *v;
}

std::optional<uint64_t> File::GetUIntOpt(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (!v->IsInteger()) WrongType(*this, key, *v, "an unsigned integer");
  const bool is_signed = v->type == ValueType::INT8 || v->type == ValueType::INT16 || v->type == ValueType::INT32 ||
                         v->type == ValueType::INT64;
  if (is_signed && v->i < 0) {
    Fail("%smetadata key '%.*s' is negative (%" PRId64 ")", Where().c_str(), static_cast<int>(key.size()), key.data(),
         v->i);
  }
  return v->u;
}

int64_t File::GetInt(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) Missing(*this, key);
  if (!v->IsInteger()) WrongType(*this, key, *v, "an integer");
  return v->i;
}

double File::GetFloat(std::string_view key) const {
  auto v = GetFloatOpt(key);
  if (!v) Missing(*this, key);
  return *v;
}

std::optional<double> File::GetFloatOpt(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->type == ValueType::FLOAT32 || v->type == ValueType::FLOAT64) return v->f;
  if (v->IsInteger()) return static_cast<double>(v->i);
  WrongType(*this, key, *v, "a number");
}

bool File::GetBool(std::string_view key) const {
  auto v = GetBoolOpt(key);
  if (!v) Missing(*this, key);
  return *v;
}

std::optional<bool> File::GetBoolOpt(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::BOOL) WrongType(*this, key, *v, "a bool");
  return v->u != 0;
}

std::string File::GetString(std::string_view key) const {
  auto v = GetStringOpt(key);
  if (!v) Missing(*this, key);
  return *v;
}

std::optional<std::string> File::GetStringOpt(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::STRING) WrongType(*this, key, *v, "a string");
  return std::string(v->str);
}

std::vector<int64_t> File::GetIntPerLayer(std::string_view key, size_t n) const {
  const Value* v = Find(key);
  if (!v) Missing(*this, key);
  if (v->type == ValueType::ARRAY) {
    std::vector<int64_t> a = GetIntArray(key);
    if (a.size() != n) {
      Fail("%smetadata key '%.*s' has %zu elements, expected one per layer (%zu)", Where().c_str(),
           static_cast<int>(key.size()), key.data(), a.size(), n);
    }
    return a;
  }
  if (!v->IsInteger()) WrongType(*this, key, *v, "an integer or an array of integers");
  return std::vector<int64_t>(n, v->i);
}

std::vector<int64_t> File::GetIntArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) Missing(*this, key);
  if (v->type != ValueType::ARRAY || ScalarSize(v->elem_type) == 0 || v->elem_type == ValueType::FLOAT32 ||
      v->elem_type == ValueType::FLOAT64) {
    WrongType(*this, key, *v, "an array of integers");
  }
  std::vector<int64_t> out(static_cast<size_t>(v->count));
  const size_t es = ScalarSize(v->elem_type);
  for (size_t k = 0; k < out.size(); ++k) out[k] = ReadScalarInt(v->array_data + k * es, v->elem_type);
  return out;
}

std::vector<bool> File::GetBoolArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) Missing(*this, key);
  if (v->type != ValueType::ARRAY || v->elem_type != ValueType::BOOL) WrongType(*this, key, *v, "an array of bools");
  std::vector<bool> out(static_cast<size_t>(v->count));
  for (size_t k = 0; k < out.size(); ++k) out[k] = v->array_data[k] != 0;
  return out;
}

std::vector<float> File::GetFloatArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) Missing(*this, key);
  if (v->type != ValueType::ARRAY ||
      (v->elem_type != ValueType::FLOAT32 && v->elem_type != ValueType::FLOAT64)) {
    WrongType(*this, key, *v, "an array of floats");
  }
  std::vector<float> out(static_cast<size_t>(v->count));
  for (size_t k = 0; k < out.size(); ++k) {
    if (v->elem_type == ValueType::FLOAT32) {
      std::memcpy(&out[k], v->array_data + 4 * k, 4);
    } else {
      double d;
      std::memcpy(&d, v->array_data + 8 * k, 8);
      out[k] = static_cast<float>(d);
    }
  }
  return out;
}

const std::vector<std::string_view>& File::GetStringArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) Missing(*this, key);
  if (v->type != ValueType::ARRAY || v->elem_type != ValueType::STRING) WrongType(*this, key, *v, "an array of strings");
  return v->strs;
}

const TensorInfo* File::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::RequireTensor(std::string_view name, std::initializer_list<int64_t> ne) const {
  const TensorInfo* t = FindTensor(name);
  if (!t) Fail("%smissing required tensor '%.*s'", Where().c_str(), static_cast<int>(name.size()), name.data());
  int64_t want[4] = {1, 1, 1, 1};
  int k = 0;
  for (int64_t x : ne) want[k++] = x;
  for (int d = 0; d < 4; ++d) {
    if (t->ne[d] != want[d]) {
      std::string w = "[";
      for (int i = 0; i < k; ++i) w += (i ? ", " : "") + std::to_string(want[i]);
      w += "]";
      Fail("%stensor '%s' has shape %s, expected %s", Where().c_str(), t->name.c_str(), t->ShapeString().c_str(),
           w.c_str());
    }
  }
  return *t;
}

}  // namespace g4::gguf
