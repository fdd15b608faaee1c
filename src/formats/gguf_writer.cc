// GGUF v3 writing.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

#include "formats/gguf.h"
#include "util/error.h"

namespace g4::gguf {

namespace {
void Put(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
template <typename T>
void PutT(std::string& out, T v) {
  Put(out, &v, sizeof(T));
}
void PutString(std::string& out, std::string_view s) {
  PutT<uint64_t>(out, s.size());
  out.append(s.data(), s.size());
}

size_t ScalarBytes(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    default: return 0;
  }
}

// Encodes a value read from another file (payload only, without its type).
void EncodeValue(std::string& out, const Value& v) {
  switch (v.type) {
    case ValueType::UINT8: PutT<uint8_t>(out, static_cast<uint8_t>(v.u)); break;
    case ValueType::INT8: PutT<int8_t>(out, static_cast<int8_t>(v.i)); break;
    case ValueType::UINT16: PutT<uint16_t>(out, static_cast<uint16_t>(v.u)); break;
    case ValueType::INT16: PutT<int16_t>(out, static_cast<int16_t>(v.i)); break;
    case ValueType::UINT32: PutT<uint32_t>(out, static_cast<uint32_t>(v.u)); break;
    case ValueType::INT32: PutT<int32_t>(out, static_cast<int32_t>(v.i)); break;
    case ValueType::UINT64: PutT<uint64_t>(out, v.u); break;
    case ValueType::INT64: PutT<int64_t>(out, v.i); break;
    case ValueType::FLOAT32: PutT<float>(out, static_cast<float>(v.f)); break;
    case ValueType::FLOAT64: PutT<double>(out, v.f); break;
    case ValueType::BOOL: PutT<uint8_t>(out, v.u ? 1 : 0); break;
    case ValueType::STRING: PutString(out, v.str); break;
    case ValueType::ARRAY: {
      PutT<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      PutT<uint64_t>(out, v.count);
      const size_t es = ScalarBytes(v.elem_type);
      if (es) {
        Put(out, v.array_data, static_cast<size_t>(v.count) * es);
      } else if (v.elem_type == ValueType::STRING) {
        for (auto s : v.strs) PutString(out, s);
      } else {
        for (const auto& e : v.nested) EncodeValue(out, e);
      }
      break;
    }
  }
}
}  // namespace

void Writer::SetRaw(const std::string& key, ValueType type, std::string payload) {
  std::string enc;
  PutT<uint32_t>(enc, static_cast<uint32_t>(type));
  enc += payload;
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(enc);
      return;
    }
  }
  kv_.emplace_back(key, std::move(enc));
}

void Writer::SetUInt32(const std::string& key, uint32_t v) {
  std::string p;
  PutT(p, v);
  SetRaw(key, ValueType::UINT32, p);
}
void Writer::SetInt32(const std::string& key, int32_t v) {
  std::string p;
  PutT(p, v);
  SetRaw(key, ValueType::INT32, p);
}
void Writer::SetUInt64(const std::string& key, uint64_t v) {
  std::string p;
  PutT(p, v);
  SetRaw(key, ValueType::UINT64, p);
}
void Writer::SetFloat32(const std::string& key, float v) {
  std::string p;
  PutT(p, v);
  SetRaw(key, ValueType::FLOAT32, p);
}
void Writer::SetBool(const std::string& key, bool v) {
  std::string p;
  PutT<uint8_t>(p, v ? 1 : 0);
  SetRaw(key, ValueType::BOOL, p);
}
void Writer::SetString(const std::string& key, const std::string& v) {
  std::string p;
  PutString(p, v);
  SetRaw(key, ValueType::STRING, p);
}
void Writer::SetStringArray(const std::string& key, const std::vector<std::string>& v) {
  std::string p;
  PutT<uint32_t>(p, static_cast<uint32_t>(ValueType::STRING));
  PutT<uint64_t>(p, v.size());
  for (const auto& s : v) PutString(p, s);
  SetRaw(key, ValueType::ARRAY, p);
}
void Writer::SetFloat32Array(const std::string& key, const std::vector<float>& v) {
  std::string p;
  PutT<uint32_t>(p, static_cast<uint32_t>(ValueType::FLOAT32));
  PutT<uint64_t>(p, v.size());
  Put(p, v.data(), v.size() * 4);
  SetRaw(key, ValueType::ARRAY, p);
}
void Writer::SetInt32Array(const std::string& key, const std::vector<int32_t>& v) {
  std::string p;
  PutT<uint32_t>(p, static_cast<uint32_t>(ValueType::INT32));
  PutT<uint64_t>(p, v.size());
  Put(p, v.data(), v.size() * 4);
  SetRaw(key, ValueType::ARRAY, p);
}
void Writer::SetUInt32Array(const std::string& key, const std::vector<uint32_t>& v) {
  std::string p;
  PutT<uint32_t>(p, static_cast<uint32_t>(ValueType::UINT32));
  PutT<uint64_t>(p, v.size());
  Put(p, v.data(), v.size() * 4);
  SetRaw(key, ValueType::ARRAY, p);
}
void Writer::SetBoolArray(const std::string& key, const std::vector<bool>& v) {
  std::string p;
  PutT<uint32_t>(p, static_cast<uint32_t>(ValueType::BOOL));
  PutT<uint64_t>(p, v.size());
  for (bool b : v) PutT<uint8_t>(p, b ? 1 : 0);
  SetRaw(key, ValueType::ARRAY, p);
}
void Writer::CopyValue(const std::string& key, const Value& v) {
  std::string p;
  EncodeValue(p, v);
  SetRaw(key, v.type, p);
}
void Writer::SetAlignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) Fail("GGUF alignment %u is not a power of two", alignment);
  alignment_ = alignment;
  SetUInt32("general.alignment", alignment);
}

void Writer::AddTensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Producer produce) {
  if (ne.empty() || ne.size() > 4) Fail("tensor '%s': %zu dimensions (1 to 4 allowed)", name.c_str(), ne.size());
  const auto& tr = Traits(type);
  if (ne[0] % tr.block_size != 0) {
    Fail("tensor '%s': row of %" PRId64 " elements is not a multiple of the %s block size %" PRId64, name.c_str(),
         ne[0], tr.name, tr.block_size);
  }
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  for (const auto& t : tensors_) {
    if (t.name == name) Fail("tensor '%s' added twice", name.c_str());
  }
  const uint64_t nbytes = static_cast<uint64_t>(RowBytes(type, ne[0]) * rows);
  tensors_.push_back({name, type, std::move(ne), nbytes, std::move(produce)});
}

void Writer::Write(const std::string& path, const std::function<void(size_t, size_t)>& progress) const {
  std::string head;
  PutT<uint32_t>(head, kMagic);
  PutT<uint32_t>(head, 3);
  PutT<uint64_t>(head, tensors_.size());
  PutT<uint64_t>(head, kv_.size());
  for (const auto& kv : kv_) {
    PutString(head, kv.first);
    head += kv.second;
  }
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const auto& t : tensors_) {
    PutString(head, t.name);
    PutT<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) PutT<uint64_t>(head, static_cast<uint64_t>(n));
    PutT<uint32_t>(head, static_cast<uint32_t>(t.type));
    PutT<uint64_t>(head, offset);
    offsets.push_back(offset);
    offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }
  head.resize((head.size() + alignment_ - 1) / alignment_ * alignment_, '\0');

  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) Fail("%s: cannot create: %s", tmp.c_str(), std::strerror(errno));
  auto write = [&](const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f) != n) {
      const int e = errno;
      std::fclose(f);
      std::remove(tmp.c_str());
      Fail("%s: write failed: %s", tmp.c_str(), std::strerror(e));
    }
  };
  write(head.data(), head.size());
  std::vector<uint8_t> buf;
  static const uint8_t zeros[64] = {};
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const auto& t = tensors_[k];
    buf.assign(static_cast<size_t>(t.nbytes), 0);
    try {
      t.produce(buf.data(), buf.size());
    } catch (...) {
      std::fclose(f);
      std::remove(tmp.c_str());
      throw;
    }
    write(buf.data(), buf.size());
    size_t pad = static_cast<size_t>((t.nbytes + alignment_ - 1) / alignment_ * alignment_ - t.nbytes);
    while (pad > 0) {
      const size_t n = std::min(pad, sizeof(zeros));
      write(zeros, n);
      pad -= n;
    }
    if (progress) progress(k + 1, tensors_.size());
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    Fail("%s: close failed: %s", tmp.c_str(), std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    Fail("%s: cannot rename to %s: %s", tmp.c_str(), path.c_str(), std::strerror(errno));
  }
}

}  // namespace g4::gguf
