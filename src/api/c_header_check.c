/* Compiled as C99 to prove include/gemma4.h is a C header. */
#include "gemma4.h"

int gemma4_c_header_check(void) {
  gemma4_context_params p = gemma4_context_default_params();
  return p.n_ctx > 0 ? 0 : 1;
}
