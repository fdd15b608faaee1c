// What the CPU we run on can do, read once with cpuid. Kernel dispatch uses it to pick the fastest
// implementation that is safe on this machine.
#pragma once

#include <string>

namespace g4 {

struct CpuFeatures {
  bool avx2 = false;      // with FMA and F16C
  bool avx512 = false;    // F, BW, DQ, VL
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;  // VEX-encoded VNNI (Alder Lake and later)
  bool amx_int8 = false;
  std::string Describe() const;
};

const CpuFeatures& GetCpuFeatures();

}  // namespace g4
