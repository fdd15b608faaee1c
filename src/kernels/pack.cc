// The panel layout (panel.h): packing GGUF rows into tiles and back, whole matrices at load time,
// and the memory that holds them.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "kernels/panel.h"
#include "kernels/quant_blocks.h"
#include "util/error.h"

namespace g4::kernels {

namespace {

constexpr int P = kPanelRows;

// Offset in the tile of native byte o of row r, for the fields that are plain byte permutations.
// Returns -1 for the bytes handled separately (Q5_0/Q5_1 5th bits).
int64_t TileOffset(GgmlType t, int r, int o) {
  auto lanes = [r](int64_t base, int j) { return base + (j / 4 * P + r) * 4 + j % 4; };  // L[] / dwords
  auto half = [r](int64_t base, int j) { return base + 2 * r + j; };                     // f16[16]
  switch (t) {
    case GgmlType::F32: return 4 * r + o;
    case GgmlType::F16:
    case GgmlType::BF16: return 2 * r + o;
    case GgmlType::Q4_0: return o < 2 ? half(256, o) : lanes(0, o - 2);
    case GgmlType::Q4_1: return o < 2 ? half(256, o) : o < 4 ? half(288, o - 2) : lanes(0, o - 4);
    case GgmlType::Q5_0: return o < 2 ? half(320, o) : o < 6 ? -1 : lanes(0, o - 6);
    case GgmlType::Q5_1:
      return o < 2 ? half(320, o) : o < 4 ? half(352, o - 2) : o < 8 ? -1 : lanes(0, o - 8);
    case GgmlType::Q8_0: return o < 2 ? half(512, o) : lanes(0, o - 2);
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      const bool q5 = t == GgmlType::Q5_K;
      const int64_t sc_base = q5 ? 2560 : 2048, d_base = sc_base + 192;
      if (o < 2) return half(d_base, o);
      if (o < 4) return half(d_base + 32, o - 2);
      if (o < 16) return lanes(sc_base, o - 4);
      if (q5 && o < 48) return lanes(2048, o - 16);
      const int j = o - (q5 ? 48 : 16);  // qs byte: chunk j / 32, step (j % 32) / 4
      return lanes(0, (j / 32 * 8 + j % 32 / 4) * 4 + j % 4);
    }
    case GgmlType::Q6_K: {
      if (o < 128) {  // ql: half h, part (ql0 / ql1), step
        const int h = o / 64, l = o % 64, part = l / 32, s = l % 32 / 4;
        return ((h * 8 + s) * 3 + part) * 64 + r * 4 + o % 4;
      }
      if (o < 192) {
        const int j = o - 128, h = j / 32, s = j % 32 / 4;
        return ((h * 8 + s) * 3 + 2) * 64 + r * 4 + j % 4;
      }
      if (o < 208) return lanes(3072, o - 192);
      return half(3328, o - 208);
    }
    default: Fail("panel layout: type %s is not supported", TypeName(t));
  }
}

// Q5_0 / Q5_1 5th bits: native bit j of qh (element j) <-> panel bit 8 * (j % 4) + j / 4 (j < 16) or
// 8 * (j % 4) + 4 + (j - 16) / 4 (j >= 16), see panel.h.
int Q5BitPos(int j) { return j < 16 ? 8 * (j % 4) + j / 4 : 8 * (j % 4) + 4 + (j - 16) / 4; }
int Q5QhOffset(GgmlType t) { return t == GgmlType::Q5_0 ? 2 : 4; }

bool IsQ5Small(GgmlType t) { return t == GgmlType::Q5_0 || t == GgmlType::Q5_1; }

}  // namespace

int64_t TileCols(GgmlType t) { return Traits(t).block_size; }

void PackPanelBlocks(const Matrix& w, int64_t r0, int64_t b0, int64_t b1, uint8_t* dst) {
  const GgmlType t = w.type;
  const int bytes = static_cast<int>(Traits(t).type_size);
  const int64_t tile = TileBytes(t);
  // Native offset -> tile offset, computed once per call.
  int64_t map[P][256];
  G4_CHECK(bytes <= 256);
  for (int r = 0; r < P; ++r) {
    for (int o = 0; o < bytes; ++o) map[r][o] = TileOffset(t, r, o);
  }
  const uint8_t xor_mask = t == GgmlType::Q8_0 ? 0x80 : 0;
  for (int64_t b = b0; b < b1; ++b) {
    uint8_t* out = dst + (b - b0) * tile;
    for (int r = 0; r < P; ++r) {
      const int64_t row = r0 + r;
      static const uint8_t kZeroBlock[256] = {};  // rows past the end: every field 0
      const uint8_t* src = row < w.rows ? w.row(row) + b * bytes : kZeroBlock;
      for (int o = 0; o < bytes; ++o) {
        if (map[r][o] < 0) continue;
        const bool level = t == GgmlType::Q8_0 && o >= 2;
        out[map[r][o]] = level ? static_cast<uint8_t>(src[o] ^ xor_mask) : src[o];
      }
      if (IsQ5Small(t)) {
        uint32_t qh, packed = 0;
        std::memcpy(&qh, src + Q5QhOffset(t), 4);
        for (int j = 0; j < 32; ++j) packed |= ((qh >> j) & 1u) << Q5BitPos(j);
        std::memcpy(out + 256 + 4 * r, &packed, 4);
      }
    }
  }
}

void UnpackPanelRow(GgmlType t, const uint8_t* tiles, int64_t ntiles, int r, uint8_t* dst) {
  const int bytes = static_cast<int>(Traits(t).type_size);
  const int64_t tile = TileBytes(t);
  int64_t map[256];
  for (int o = 0; o < bytes; ++o) map[o] = TileOffset(t, r, o);
  for (int64_t b = 0; b < ntiles; ++b) {
    const uint8_t* in = tiles + b * tile;
    uint8_t* out = dst + b * bytes;
    for (int o = 0; o < bytes; ++o) {
      if (map[o] < 0) continue;
      const bool level = t == GgmlType::Q8_0 && o >= 2;
      out[o] = level ? static_cast<uint8_t>(in[map[o]] ^ 0x80) : in[map[o]];
    }
    if (IsQ5Small(t)) {
      uint32_t packed, qh = 0;
      std::memcpy(&packed, in + 256 + 4 * r, 4);
      for (int j = 0; j < 32; ++j) qh |= ((packed >> Q5BitPos(j)) & 1u) << j;
      std::memcpy(out + Q5QhOffset(t), &qh, 4);
    }
  }
}

int64_t PackedBytes(const Matrix& w) { return NumPanels(w.rows) * PanelBytes(w); }

void PackMatrix(const Matrix& w, uint8_t* dst, ThreadPool& pool,
                const std::function<void(const uint8_t*, size_t)>& release) {
  if (!SupportsMatMul(w.type)) Fail("PackMatrix: weight type %s is not supported", TypeName(w.type));
  if (w.cols <= 0 || w.cols % Traits(w.type).block_size != 0) {
    Fail("PackMatrix: %lld columns are not whole %s blocks", static_cast<long long>(w.cols), TypeName(w.type));
  }
  const int64_t n_panels = NumPanels(w.rows), blocks = w.cols / TileCols(w.type);
  // Slices of about 16 MB of source rows: packed by both threads, then released, so that resident
  // memory never holds much more of the source than one slice.
  const int64_t per_slice = std::max<int64_t>(1, (int64_t{16} << 20) / PanelBytes(w));
  for (int64_t s0 = 0; s0 < n_panels; s0 += per_slice) {
    const int64_t s1 = std::min(n_panels, s0 + per_slice);
    pool.ParallelFor(s1 - s0, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t p = s0 + i0; p < s0 + i1; ++p) {
        PackPanelBlocks(w, p * kPanelRows, 0, blocks, dst + p * PanelBytes(w));
      }
    });
    if (release) {
      const int64_t r0 = s0 * kPanelRows, r1 = std::min(w.rows, s1 * kPanelRows);
      release(w.row(r0), static_cast<size_t>((r1 - r0) * static_cast<int64_t>(w.row_bytes())));
    }
  }
}

PackedBuffer::PackedBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  ::madvise(p, bytes, MADV_HUGEPAGE);  // fewer TLB misses while streaming; a hint only
#endif
  data_ = static_cast<uint8_t*>(p);
}

PackedBuffer::~PackedBuffer() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

}  // namespace g4::kernels
