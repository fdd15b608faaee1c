#include "convert/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fp16.h"

namespace g4::convert {

namespace {
// A header larger than this is not a real checkpoint (the 12B's is well under 1 MiB); the bound keeps a
// lying length from making the JSON parser read the whole file as text.
constexpr uint64_t kMaxHeader = 100ull << 20;

bool ParseDtype(const std::string& s, StDtype* t) {
  static const std::pair<const char*, StDtype> kNames[] = {
      {"F32", StDtype::F32}, {"F16", StDtype::F16}, {"BF16", StDtype::BF16}, {"F64", StDtype::F64},
      {"I64", StDtype::I64}, {"I32", StDtype::I32}, {"I16", StDtype::I16},   {"I8", StDtype::I8},
      {"U8", StDtype::U8},   {"BOOL", StDtype::BOOL}};
  for (const auto& [n, v] : kNames) {
    if (s == n) {
      *t = v;
      return true;
    }
  }
  return false;
}
}  // namespace

const char* StDtypeName(StDtype t) {
  switch (t) {
    case StDtype::F32: return "F32";
    case StDtype::F16: return "F16";
    case StDtype::BF16: return "BF16";
    case StDtype::F64: return "F64";
    case StDtype::I64: return "I64";
    case StDtype::I32: return "I32";
    case StDtype::I16: return "I16";
    case StDtype::I8: return "I8";
    case StDtype::U8: return "U8";
    case StDtype::BOOL: return "BOOL";
  }
  return "?";
}

size_t StDtypeSize(StDtype t) {
  switch (t) {
    case StDtype::F64: case StDtype::I64: return 8;
    case StDtype::F32: case StDtype::I32: return 4;
    case StDtype::F16: case StDtype::BF16: case StDtype::I16: return 2;
    default: return 1;
  }
}

int64_t StTensor::Elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string StTensor::ShapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  s += "]";
  return s;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile);
  f->map_ = std::make_unique<MappedFile>(path);
  f->path_ = path;
  f->ParseImage(f->map_->data(), f->map_->size());
  return f;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::Parse(const uint8_t* data, size_t size, const std::string& name) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile);
  f->path_ = name;
  f->ParseImage(data, size);
  return f;
}

const StTensor* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void SafetensorsFile::ParseImage(const uint8_t* data, size_t size) {
  const char* p = path_.c_str();
  if (size < 8) Fail("%s: not a safetensors file: %zu bytes, shorter than the 8-byte header length", p, size);
  uint64_t n = 0;
  std::memcpy(&n, data, 8);
  if (n > size - 8) {
    Fail("%s: header length %llu runs past the end of the file (%zu bytes)", p, (unsigned long long)n, size);
  }
  if (n > kMaxHeader) Fail("%s: header length %llu is implausibly large", p, (unsigned long long)n);
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(reinterpret_cast<const char*>(data) + 8, reinterpret_cast<const char*>(data) + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    Fail("%s: the header is not valid JSON: %s", p, e.what());
  }
  if (!h.is_object()) Fail("%s: the header is not a JSON object", p);
  const uint64_t data_size = size - 8 - n;
  const uint8_t* base = data + 8 + n;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<std::string> range_names;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets")) {
      Fail("%s: tensor '%s': the entry needs dtype, shape and data_offsets", p, name.c_str());
    }
    StTensor t;
    t.name = name;
    t.file = &path_;
    if (!v["dtype"].is_string() || !ParseDtype(v["dtype"].get<std::string>(), &t.dtype)) {
      Fail("%s: tensor '%s': unknown dtype %s", p, name.c_str(), v["dtype"].dump().c_str());
    }
    const auto& shape = v["shape"];
    if (!shape.is_array() || shape.size() > 8) Fail("%s: tensor '%s': shape must be an array of at most 8 sizes", p, name.c_str());
    // Elements counted with an overflow check: each size below 2^40 and the product below 2^62.
    unsigned __int128 elems = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40)) {
        Fail("%s: tensor '%s': bad dimension %s in shape", p, name.c_str(), d.dump().c_str());
      }
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
      elems *= d.get<uint64_t>();
      if (elems > (static_cast<unsigned __int128>(1) << 62)) Fail("%s: tensor '%s': shape is too large", p, name.c_str());
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      Fail("%s: tensor '%s': data_offsets must be two unsigned integers", p, name.c_str());
    }
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_size) {
      Fail("%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data section (%llu bytes)", p, name.c_str(),
           (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size);
    }
    const unsigned __int128 want = elems * StDtypeSize(t.dtype);
    if (want != e - b) {
      Fail("%s: tensor '%s': %s %s needs %llu bytes but data_offsets give %llu", p, name.c_str(),
           StDtypeName(t.dtype), t.ShapeString().c_str(), (unsigned long long)want, (unsigned long long)(e - b));
    }
    t.data = base + b;
    t.nbytes = e - b;
    ranges.push_back({b, e});
    range_names.push_back(name);
    tensors_.emplace(name, std::move(t));
  }
  // Tensors must not share bytes (the format lays them out one after another).
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& prev = ranges[order[k - 1]];
    const auto& cur = ranges[order[k]];
    if (cur.first < prev.second && cur.second > cur.first) {
      Fail("%s: tensors '%s' and '%s' overlap in the data section", p, range_names[order[k - 1]].c_str(),
           range_names[order[k]].c_str());
    }
  }
}

void ReadF32(const StTensor& t, int64_t first, int64_t n, float* dst) {
  G4_CHECK(first >= 0 && n >= 0 && first + n <= t.Elements());
  const uint8_t* src = t.data + static_cast<size_t>(first) * StDtypeSize(t.dtype);
  switch (t.dtype) {
    case StDtype::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case StDtype::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = F16ToF32(h);
      }
      return;
    case StDtype::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = Bf16ToF32(h);
      }
      return;
    case StDtype::F64:
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        dst[i] = static_cast<float>(d);
      }
      return;
    default:
      Fail("%s: tensor '%s' has dtype %s; only floating-point weights can be converted", t.file->c_str(),
           t.name.c_str(), StDtypeName(t.dtype));
  }
}

}  // namespace g4::convert
