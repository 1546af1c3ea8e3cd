/* Helpers shared by the k-quants (q2_k.c .. q6_k.c): rounding, the searches for a group's
 * scale (and min), and the 6-bit scale/min packing of Q4_K and Q5_K. Each search follows
 * ggml's (ggml-quants.c) float operation for float operation, so that the bytes match. */
#ifndef LB_FORMATS_KQUANT_COMMON_H
#define LB_FORMATS_KQUANT_COMMON_H

#include <stdint.h>
#include <string.h>

/* A group whose largest magnitude is below this is all zero (ggml's GROUP_MAX_EPS). */
#define LB_KQ_GROUP_EPS 1e-15f

/* Round to nearest, ties to even, for |f| < 2^22. Adding 1.5 * 2^23 leaves a float whose
 * unit in the last place is 1, so the FPU rounds f to an integer and the integer sits in
 * the low mantissa bits. The same trick as ggml's nearest_int, hence the same results. */
static inline int lb_kq_nearest_int(float f) {
    const float v = f + 12582912.f;
    int32_t     i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Q3_K's signed scale (-32..31) of group g (0..15) from its 12 packed bytes: the low 4 bits
 * in a nibble of scales[g % 8] (the high one for g >= 8), the high 2 in bits 2 (g / 4) of
 * scales[8 + g % 4]. */
static inline int lb_q3_k_scale(const uint8_t *scales, int g) {
    const int lo = g < 8 ? scales[g] & 0xF : scales[g - 8] >> 4;
    return (lo | ((scales[8 + g % 4] >> (2 * (g / 4))) & 3) << 4) - 32;
}

static inline int lb_kq_clamp(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Symmetric scale of n values on levels -nmax .. nmax-1, minimizing sum w (x - scale*l)^2
 * over 19 candidate scales around -nmax/max. w are the weights, or x^2 when NULL. Writes
 * L = l + nmax (0 for an all-zero group) and returns the scale. */
float lb_kq_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *w);

/* Affine scale and min of n values on levels 0 .. nmax: x ~ scale * l - the_min, with
 * the_min >= 0. Starts from (max - min) / nmax, then tries nstep + 1 level spacings
 * (nmax + rmin + rdelta * is) and solves weighted least squares for scale and min on each,
 * keeping the one of lowest weighted error (absolute when use_mad, else squared).
 * w must not be NULL; Laux is scratch of n. Returns the scale. */
float lb_kq_make_qkx_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                            float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                            int use_mad);

/* Quantize n non-negative values (the scales or mins of a super-block) on levels 0 .. nmax,
 * weighted by w: a search over 9 candidate scales, then up to 5 passes moving single levels
 * while that improves the weighted fit. Writes L and returns the scale. */
float lb_kq_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *w);

/* Q4_K / Q5_K: the 6-bit scale and min of group j (0..7) in the 12 packed bytes. Groups
 * 0-3 use the low 6 bits of bytes j (scale) and j+4 (min); groups 4-7 keep their low 4 bits
 * in the nibbles of byte j+4 and their high 2 bits in the top bits of bytes j-4 and j. */
void lb_kq_get_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m);
/* Pack 8 scales and 8 mins (each 0..63) in that layout. */
void lb_kq_pack_scale_min(uint8_t *q, const uint8_t *ls, const uint8_t *lm);

/* Q4_K / Q5_K super-block of 256 values (8 groups of 32, levels 0..nmax): fit each group's
 * scale and min, store them on 6 bits relative to the half-float d and dmin, and write the
 * levels L re-rounded on the stored scales. The _ref fit (round to nearest, as ggml's
 * quantize_row_q4_K_ref / q5_K_ref) weights values by rms + |x| and takes the type's
 * search steps; the _imatrix fit weights them by imp * sqrt(2 sigma^2 + x^2) and fits
 * the 6-bit scales and mins by weighted least squares too. */
void lb_kq_fit_scale_min_ref(const float *x, int nmax, float rmin, float rdelta, int nstep,
                             uint8_t *L, uint8_t *scales, uint16_t *d, uint16_t *dmin);
void lb_kq_fit_scale_min_imatrix(const float *x, const float *imp, int nmax, uint8_t *L,
                                 uint8_t *scales, uint16_t *d, uint16_t *dmin);

#endif
