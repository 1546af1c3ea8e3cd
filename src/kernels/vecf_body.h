/* The functions of vecf.h, included once per ISA by a file that defines VF_FILL (the name of
 * its table's fill function) and is compiled with that ISA's flags. Loops without branches
 * (selects), so that each one vectorizes; no FMA contraction (C11 mode), so the rounding is
 * the same per element on every ISA, the sums' order aside. */
#include <string.h>

#include "vecf.h"

#define VF_EXP_LO   -87.33654f /* below: exp underflows to 0 */
#define VF_EXP_HI   88.72283f  /* above: +inf */
#define VF_ROUND    12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */

/* Cephes expf: x = n ln2 + r, |r| <= ln2 / 2, e^r by a polynomial, times 2^n (as two
 * factors, so that n = 128 and results below the normal range come out right). */
static inline float vf_exp1(float x) {
    const float xc = x < VF_EXP_LO ? VF_EXP_LO : (x > VF_EXP_HI ? VF_EXP_HI : x);
    const float t  = xc * 1.44269504088896341f + VF_ROUND;
    const float n  = t - VF_ROUND;
    uint32_t    tu;
    memcpy(&tu, &t, sizeof tu);
    const int32_t k = (int32_t)(tu - 0x4B400000u); /* n as an integer, -126 .. 128 (NaN: any) */
    float         r = xc - n * 0.693359375f;
    r               = r - n * -2.12194440e-4f;
    float p         = 1.9875691500e-4f;
    p               = p * r + 1.3981999507e-3f;
    p               = p * r + 8.3334519073e-3f;
    p               = p * r + 4.1665795894e-2f;
    p               = p * r + 1.6666665459e-1f;
    p               = p * r + 5.0000001201e-1f;
    const float   y  = p * r * r + r + 1.0f;
    const uint32_t b1 = (uint32_t)(k / 2 + 127) << 23, b2 = (uint32_t)(k - k / 2 + 127) << 23;
    float         s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    const float e = y * s1 * s2;
    return x > VF_EXP_HI ? __builtin_inff() : (x < VF_EXP_LO ? 0.0f : e);
}

static void vf_exp(float *y, const float *x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = vf_exp1(x[i]);
}

static void vf_silu_mul(float *g, const float *u, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float x = g[i];
        g[i]          = x * (1.0f / (1.0f + vf_exp1(-x))) * u[i];
    }
}

static void vf_softmax(float *x, int64_t n) {
    float mx = -__builtin_inff(), sum = 0.0f;
#pragma omp simd reduction(max : mx)
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) {
        x[i] = vf_exp1(x[i] - mx);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void VF_FILL(lb_vecf *v) {
    v->silu_mul = vf_silu_mul;
    v->softmax  = vf_softmax;
    v->exp      = vf_exp;
}
