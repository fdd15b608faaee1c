// Open-addressing hash tables for the tokenizer's hot lookups: piece -> id over a 262K-token vocabulary
// and (left id, right id) -> merge over 515K merges. std::unordered_map would allocate a node per entry
// and chase a pointer per probe; these are flat arrays with linear probing, built once at load time and
// read-only afterwards (so concurrent Encode calls need no locks).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace g4::tok {

inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// Hashes a short byte string eight bytes at a time.
inline uint64_t HashBytes(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0x100000001B3ULL);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ Mix64(v)) * 0x100000001B3ULL;
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return Mix64(h ^ v);
}

inline size_t TableSizeFor(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;  // load factor <= 1/2 keeps probe chains short
  return cap;
}

// Maps strings to non-negative int32 ids. The strings are not copied: they live in one buffer `base`
// (the vocabulary's packed pieces) and each slot keeps their offset, length, id and 32 bits of the hash,
// so a lookup touches one slot and, on a tag match, the string itself.
class StringIdMap {
 public:
  StringIdMap() = default;
  explicit StringIdMap(const char* base) : base_(base) {}

  void Reserve(size_t n) {
    slots_.assign(TableSizeFor(n), Slot{0, -1, 0, 0});
    mask_ = slots_.size() - 1;
  }

  // Inserts base[off, off + len) -> id unless that string is present; returns the id now stored
  // under it. Reserve() must have been called for at least as many entries.
  int32_t Insert(uint32_t off, uint32_t len, int32_t id) { return Insert(off, len, id, HashBytes({base_ + off, len})); }
  int32_t Insert(uint32_t off, uint32_t len, int32_t id, uint64_t h) {
    const std::string_view key(base_ + off, len);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        s = Slot{tag, id, off, len};
        return id;
      }
      if (Matches(s, tag, key)) return s.id;
    }
  }

  // The id stored under key, or -1.
  int32_t Find(std::string_view key) const { return Find(key, HashBytes(key)); }
  int32_t Find(std::string_view key, uint64_t h) const {
    if (slots_.empty()) return -1;
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (Matches(s, tag, key)) return s.id;
    }
  }
  // Brings the first slot a lookup of hash h reads into the cache (for batched lookups).
  void Prefetch(uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[h & mask_]);
  }

 private:
  struct Slot {
    uint32_t tag;
    int32_t id;
    uint32_t off;
    uint32_t len;
  };
  bool Matches(const Slot& s, uint32_t tag, std::string_view key) const {
    return s.tag == tag && s.len == key.size() && std::memcmp(base_ + s.off, key.data(), key.size()) == 0;
  }
  const char* base_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// Maps 64-bit keys (all but UINT64_MAX) to small values.
template <class V>
class U64Map {
 public:
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  void Reserve(size_t n) {
    slots_.assign(TableSizeFor(n), Slot{kEmpty, V{}});
    mask_ = slots_.size() - 1;
    size_ = 0;
  }

  // Inserts key -> v unless present (the first insertion wins); returns false if it was present.
  bool Insert(uint64_t key, const V& v) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    for (size_t i = Mix64(key) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.key == kEmpty) {
        s = Slot{key, v};
        ++size_;
        return true;
      }
      if (s.key == key) return false;
    }
  }

  void Prefetch(uint64_t key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[Mix64(key) & mask_]);
  }

  const V* Find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = Mix64(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.v;
      if (s.key == kEmpty) return nullptr;
    }
  }

  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;
    V v;
  };
  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    Reserve(old.empty() ? 8 : old.size());
    for (const Slot& s : old) {
      if (s.key != kEmpty) Insert(s.key, s.v);
    }
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace g4::tok
