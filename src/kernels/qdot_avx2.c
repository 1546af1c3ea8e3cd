/* The SIMD kernels of qdot_x86.h for AVX2 + FMA + F16C (this file alone is compiled with
 * -mavx2 -mfma -mf16c; it runs only after lb_cpu_get_features says so). Elsewhere: an empty
 * table. */
#include "qdot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define QX_DOT(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#define QX_FILL      lb_qdot_fill_avx2
#include "qdot_x86.h"
#else
#include <string.h>
void lb_qdot_fill_avx2(lb_qdot_table *t) {
    memset(t, 0, sizeof *t);
}
#endif
