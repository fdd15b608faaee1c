// Builds without x86 SIMD code (non-x86 targets): only the scalar kernels exist.
#include "kernels/ops.h"

namespace g4::kernels {

const IsaOps* Avx2Ops() { return nullptr; }
const IsaOps* Avx512Ops() { return nullptr; }

}  // namespace g4::kernels
