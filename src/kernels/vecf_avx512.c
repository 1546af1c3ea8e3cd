/* vecf_body.h compiled for AVX512 (this file's flags: CMakeLists.txt); it runs only where
 * the CPU has it (vecf.c). Elsewhere: an empty table. */
#include "vecf.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__AVX512F__)
#define VF_FILL lb_vecf_fill_avx512
#include "vecf_body.h"
#else
#include <string.h>
void lb_vecf_fill_avx512(lb_vecf *v) {
    memset(v, 0, sizeof *v);
}
#endif
