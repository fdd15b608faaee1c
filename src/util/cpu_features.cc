#include "util/cpu_features.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace g4 {

namespace {
#if defined(__x86_64__)
uint64_t Xgetbv() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const bool fma = (c >> 12) & 1;
  const bool f16c = (c >> 29) & 1;
  const bool avx = (c >> 28) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = Xgetbv();
  const bool ymm_os = (xcr0 & 0x6) == 0x6;
  const bool zmm_os = (xcr0 & 0xe6) == 0xe6;
  const bool amx_os = (xcr0 & 0x60000) == 0x60000;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = ymm_os && fma && f16c && ((b >> 5) & 1);
  const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
  f.avx512 = f.avx2 && zmm_os && avx512f && avx512dq && avx512bw && avx512vl;
  f.avx512_vnni = f.avx512 && ((c >> 11) & 1);
  f.amx_int8 = amx_os && ((d >> 25) & 1) && ((d >> 24) & 1);
  unsigned a1, b1, c1, d1;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) {
    f.avx_vnni = f.avx2 && ((a1 >> 4) & 1);
    f.avx512_bf16 = f.avx512 && ((a1 >> 5) & 1);
  }
#endif
  return f;
}
}  // namespace

std::string CpuFeatures::Describe() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "AVX2");
  add(avx512, "AVX512");
  add(avx512_vnni, "AVX512_VNNI");
  add(avx512_bf16, "AVX512_BF16");
  add(avx_vnni, "AVX_VNNI");
  add(amx_int8, "AMX_INT8");
  return s.empty() ? "scalar" : s;
}

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures f = Detect();
  return f;
}

}  // namespace g4
