#include "multimodal/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "util/error.h"

namespace g4::mm {

Size2 TransformersTargetSize(int width, int height, int max_tokens) {
  if (width <= 0 || height <= 0) Fail("cannot size an image of %dx%d", width, height);
  if (max_tokens <= 0) Fail("the image token budget must be positive (got %d)", max_tokens);
  const int64_t max_patches = int64_t{max_tokens} * 9;  // 16-px patches, pooled 3x3 into one token
  const int64_t target_px = max_patches * 16 * 16;
  const double factor = std::sqrt(static_cast<double>(target_px) / (static_cast<double>(height) * width));
  const double ideal_h = factor * height, ideal_w = factor * width;
  int64_t th = static_cast<int64_t>(std::floor(ideal_h / kPatch)) * kPatch;
  int64_t tw = static_cast<int64_t>(std::floor(ideal_w / kPatch)) * kPatch;
  if (th == 0 && tw == 0) Fail("cannot resize a %dx%d image to a 0x0 grid", width, height);
  const int64_t max_side = (max_patches / 9) * kPatch;
  if (th == 0) {
    th = kPatch;
    tw = std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<double>(width) / height)) * kPatch, max_side);
  } else if (tw == 0) {
    tw = kPatch;
    th = std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<double>(height) / width)) * kPatch, max_side);
  }
  if (th * tw > target_px) {
    Fail("resizing a %dx%d image to %lldx%lld would exceed %lld patches", width, height, (long long)tw, (long long)th,
         (long long)max_patches);
  }
  return {static_cast<int>(tw), static_cast<int>(th)};
}

Size2 LlamaCppTargetSize(int width, int height, int min_tokens, int max_tokens) {
  if (width <= 0 || height <= 0) Fail("cannot size an image of %dx%d", width, height);
  if (min_tokens < 0 || max_tokens <= 0 || min_tokens > max_tokens) {
    Fail("bad image token range [%d, %d]", min_tokens, max_tokens);
  }
  const int align = kPatch;
  const int min_pixels = min_tokens * align * align, max_pixels = max_tokens * align * align;
  auto round_by = [&](float x) { return static_cast<int>(std::round(x / static_cast<float>(align))) * align; };
  auto ceil_by = [&](float x) { return static_cast<int>(std::ceil(x / static_cast<float>(align))) * align; };
  auto floor_by = [&](float x) { return static_cast<int>(std::floor(x / static_cast<float>(align))) * align; };
  int h = std::max(align, round_by(static_cast<float>(height)));
  int w = std::max(align, round_by(static_cast<float>(width)));
  const float area = static_cast<float>(static_cast<int64_t>(height) * width);
  if (static_cast<int64_t>(h) * w > max_pixels) {
    const float beta = std::sqrt(area / static_cast<float>(max_pixels));
    h = std::max(align, floor_by(static_cast<float>(height) / beta));
    w = std::max(align, floor_by(static_cast<float>(width) / beta));
  } else if (static_cast<int64_t>(h) * w < min_pixels) {
    const float beta = std::sqrt(static_cast<float>(min_pixels) / area);
    h = ceil_by(static_cast<float>(height) * beta);
    w = ceil_by(static_cast<float>(width) * beta);
  }
  return {w, h};
}

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double BicubicFilter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis: output pixel i reads `count[i]`
// input pixels from `first[i]` with fixed-point weights k[i * ksize + j].
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;  // [out]
  std::vector<int32_t> k;         // [out][ksize]
};

Coeffs Precompute(int in_size, int out_size) {
  constexpr double support0 = 2.0;  // bicubic
  Coeffs c;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = support0 * filterscale;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = BicubicFilter((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits)) : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t Clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// Horizontal pass over rows [y0, y0 + n_rows) of src: [n_rows][out_w][3].
RgbImage Horizontal(const RgbImage& src, int y0, int n_rows, const Coeffs& c, int out_w) {
  RgbImage dst;
  dst.width = out_w;
  dst.height = n_rows;
  dst.pixels.resize(static_cast<size_t>(out_w) * n_rows * 3);
  for (int y = 0; y < n_rows; ++y) {
    const uint8_t* row = src.pixels.data() + static_cast<size_t>(y + y0) * src.width * 3;
    uint8_t* out = dst.pixels.data() + static_cast<size_t>(y) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = c.k.data() + static_cast<size_t>(xx) * c.ksize;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      const uint8_t* p = row + static_cast<size_t>(c.first[xx]) * 3;
      for (int x = 0; x < c.count[xx]; ++x) {
        s0 += p[3 * x + 0] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      out[3 * xx + 0] = Clip8(s0);
      out[3 * xx + 1] = Clip8(s1);
      out[3 * xx + 2] = Clip8(s2);
    }
  }
  return dst;
}

// Vertical pass; c.first is relative to src's first row.
RgbImage Vertical(const RgbImage& src, const Coeffs& c, int first_offset, int out_h) {
  RgbImage dst;
  dst.width = src.width;
  dst.height = out_h;
  const size_t stride = static_cast<size_t>(src.width) * 3;
  dst.pixels.resize(stride * out_h);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = c.k.data() + static_cast<size_t>(yy) * c.ksize;
    const uint8_t* base = src.pixels.data() + static_cast<size_t>(c.first[yy] - first_offset) * stride;
    uint8_t* out = dst.pixels.data() + static_cast<size_t>(yy) * stride;
    for (size_t xc = 0; xc < stride; ++xc) {
      int32_t s = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < c.count[yy]; ++y) s += base[static_cast<size_t>(y) * stride + xc] * k[y];
      out[xc] = Clip8(s);
    }
  }
  return dst;
}

}  // namespace

RgbImage ResizeBicubicPillow(const RgbImage& src, int width, int height) {
  if (width <= 0 || height <= 0) Fail("cannot resize to %dx%d", width, height);
  const bool need_h = width != src.width, need_v = height != src.height;
  if (!need_h && !need_v) return src;
  const Coeffs ch = need_h ? Precompute(src.width, width) : Coeffs{};
  const Coeffs cv = need_v ? Precompute(src.height, height) : Coeffs{};
  if (!need_v) return Horizontal(src, 0, src.height, ch, width);
  if (!need_h) return Vertical(src, cv, 0, height);
  // Only the input rows the vertical pass reads go through the horizontal pass (as Pillow does).
  const int y_first = cv.first[0];
  const int y_last = cv.first[height - 1] + cv.count[height - 1];
  const RgbImage tmp = Horizontal(src, y_first, y_last - y_first, ch, width);
  return Vertical(tmp, cv, y_first, height);
}

namespace {

inline float Lerp(float a, float b, float t) { return a + (b - a) * t; }

// Align-corners bilinear resize, truncated to uint8 (llama.cpp's resize_bilinear at the golden commit).
RgbImage Bilinear(const RgbImage& src, int nw, int nh) {
  RgbImage dst;
  dst.width = nw;
  dst.height = nh;
  dst.pixels.resize(static_cast<size_t>(nw) * nh * 3);
  const float xr = nw > 1 ? static_cast<float>(src.width - 1) / static_cast<float>(nw - 1) : 0.0f;
  const float yr = nh > 1 ? static_cast<float>(src.height - 1) / static_cast<float>(nh - 1) : 0.0f;
  for (int y = 0; y < nh; ++y) {
    const float py = static_cast<float>(y) * yr;
    const int y0 = std::min(static_cast<int>(py), src.height - 1);
    const int y1 = std::min(y0 + 1, src.height - 1);
    const float ty = py - static_cast<float>(y0);
    for (int x = 0; x < nw; ++x) {
      const float px = static_cast<float>(x) * xr;
      const int x0 = std::min(static_cast<int>(px), src.width - 1);
      const int x1 = std::min(x0 + 1, src.width - 1);
      const float tx = px - static_cast<float>(x0);
      for (int c = 0; c < 3; ++c) {
        const float top = Lerp(src.at(x0, y0, c), src.at(x1, y0, c), tx);
        const float bottom = Lerp(src.at(x0, y1, c), src.at(x1, y1, c), tx);
        dst.pixels[(static_cast<size_t>(y) * nw + x) * 3 + c] = static_cast<uint8_t>(Lerp(top, bottom, ty));
      }
    }
  }
  return dst;
}

}  // namespace

RgbImage ResizeLlamaCpp(const RgbImage& src, int width, int height, Letterbox* box) {
  if (width <= 0 || height <= 0) Fail("cannot resize to %dx%d", width, height);
  if (src.width == width && src.height == height) {
    if (box) *box = {width, height, 0, 0};
    return src;
  }
  const float scale = std::min(static_cast<float>(width) / static_cast<float>(src.width),
                               static_cast<float>(height) / static_cast<float>(src.height));
  const int nw = std::max(1, std::min(static_cast<int>(std::ceil(static_cast<float>(src.width) * scale)), width));
  const int nh = std::max(1, std::min(static_cast<int>(std::ceil(static_cast<float>(src.height) * scale)), height));
  const RgbImage content = Bilinear(src, nw, nh);
  RgbImage dst;
  dst.width = width;
  dst.height = height;
  dst.pixels.assign(static_cast<size_t>(width) * height * 3, 0);
  const int ox = (width - nw) / 2, oy = (height - nh) / 2;
  for (int y = 0; y < nh; ++y) {
    std::memcpy(dst.pixels.data() + (static_cast<size_t>(y + oy) * width + ox) * 3,
                content.pixels.data() + static_cast<size_t>(y) * nw * 3, static_cast<size_t>(nw) * 3);
  }
  if (box) *box = {nw, nh, ox, oy};
  return dst;
}

}  // namespace g4::mm
