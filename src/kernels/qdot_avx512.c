/* The SIMD kernels of qdot_x86.h with AVX-512 VNNI dot products on 256-bit vectors
 * (vpdpbusd: four u8 x s8 products into each int32 lane, no int16 step), and the packed
 * kernels of qdot_x86_512.h on 512-bit vectors. This file alone is compiled with -mavx512f
 * -mavx512bw -mavx512vl -mavx512vnni (+ AVX2, FMA, F16C); it runs only after
 * lb_cpu_get_features says so. Elsewhere: an empty table. */
#include "qdot.h"

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__) && \
    defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define QX_DOT(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#define QX_FILL      lb_qdot_fill_avx512_ymm
void QX_FILL(lb_qdot_table *t);
#include "qdot_x86.h"
#include "qdot_x86_512.h"
#else
#include <string.h>
void lb_qdot_fill_avx512(lb_qdot_table *t) {
    memset(t, 0, sizeof *t);
}
#endif
