// Internal: the panel layout every MatMul kernel reads ("packed" weights).
//
// Rows are grouped in panels of kPanelRows = 16 consecutive rows (the last panel is padded with zero
// rows). A panel is a run of tiles, one per block of the type (32 or 256 columns; one column for the
// float types), in column order; a tile holds that block of all 16 rows, interleaved so that one
// 64-byte load gives 16 rows x 4 consecutive elements (one 32-bit lane per row, the operand layout of
// u8 x s8 dot instructions). A tile has exactly 16 x the bytes of the type's block, so a panel has
// the bytes of its 16 rows and panel p starts at byte p * 16 * row_bytes, as row 16p of the GGUF
// layout does: row ranges that start at a multiple of 16 have the same offsets in both layouts.
//
// Notation: L[n] = n steps x 16 rows x 4 bytes: byte i of row r at step s is at (s * 16 + r) * 4 + i.
// "[w][16] dwords" = word w of row r at (w * 16 + r) * 4. f16[16] = 16 half floats, one per row.
//
//   F32, F16, BF16 (one column per tile): the 16 rows' elements of that column.
//   Q4_0 (288 B):  L[4] qs (byte i at step s = qs[4s + i]: low nibble element 4s+i, high 16+4s+i),
//                  f16[16] d.
//   Q4_1 (320 B):  as Q4_0, then f16[16] m.
//   Q5_0 (352 B):  L[4] qs, then a dword per row of 5th bits rearranged: bit 8i + s = bit of element
//                  4s + i, bit 8i + 4 + s = bit of element 16 + 4s + i (i, s < 4); f16[16] d.
//   Q5_1 (384 B):  as Q5_0, then f16[16] m.
//   Q8_0 (544 B):  L[8] qs XOR 0x80 (the int8 values + 128: unsigned levels, offset 128), f16[16] d.
//   Q4_K (2304 B): L[32] qs (step 8c + s, byte i = qs[32c + 4s + i]: low nibble element
//                  64c + 4s + i, high 64c + 32 + 4s + i), [3][16] dwords scales (the 12 packed
//                  bytes), f16[16] d, f16[16] dmin.
//   Q5_K (2816 B): L[32] qs as Q4_K, L[8] qh (step s, byte i = qh[4s + i]), [3][16] dwords scales,
//                  f16[16] d, f16[16] dmin.
//   Q6_K (3360 B): for h < 2, s < 8: L[1] ql[64h + 4s + i], L[1] ql[64h + 32 + 4s + i],
//                  L[1] qh[32h + 4s + i]; then [4][16] dwords scales (16 int8), f16[16] d.
#pragma once

#include <cstdint>

#include "formats/ggml_types.h"
#include "kernels/kernels.h"

namespace g4::kernels {

// Elements per tile (the type's block; 1 for float types) and bytes per tile (16 blocks).
int64_t TileCols(GgmlType t);
inline int64_t TileBytes(GgmlType t) { return kPanelRows * Traits(t).type_size; }
inline int64_t PanelBytes(const Matrix& w) { return kPanelRows * static_cast<int64_t>(w.row_bytes()); }
inline int64_t NumPanels(int64_t rows) { return (rows + kPanelRows - 1) / kPanelRows; }

// Packs blocks [b0, b1) of rows [r0, r0 + 16) of w (rows past w.rows are zero) into b1 - b0
// consecutive tiles at dst.
void PackPanelBlocks(const Matrix& w, int64_t r0, int64_t b0, int64_t b1, uint8_t* dst);

// Inverse, for one row: copies row r (< 16) of `ntiles` consecutive tiles back into GGUF block bytes.
void UnpackPanelRow(GgmlType t, const uint8_t* tiles, int64_t ntiles, int r, uint8_t* dst);

}  // namespace g4::kernels
