/* The scalar reference of every quantized dot product (qdot.h): each weight block is decoded
 * to integer levels and integer scales, its integer dot with the activation block is exact,
 * and the float scales are applied once per block. The SIMD kernels compute the same
 * integers; only the order of the float additions differs.
 *   32-blocks:    sum += (d_w d_a) * sum_j q_j a_j  [+ m_w * s_a for the affine types]
 *   super-blocks: sum += d_a * (d_w * sum_g sc_g sum_{j in g} q_j a_j - dmin_w * sum_g mn_g bsum_g)
 * Also the activation quantizers, which every ISA must reproduce byte for byte. */
#include <math.h>
#include <string.h>

#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/iq4_common.h"
#include "formats/iq_grid.h"
#include "formats/kquant_common.h"
#include "lowbit/core.h"
#include "qdot.h"

/* ---- activations ---- */

static void quantize_q8a_ref(void *dst, const float *x, int64_t n) {
    lb_block_q8a *y = dst;
    for (int64_t i = 0; i < n / LB_QK_A; i++, x += LB_QK_A) {
        float amax = 0.0f;
        for (int j = 0; j < LB_QK_A; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float id  = amax != 0.0f ? 127.0f / amax : 0.0f;
        int         sum = 0;
        for (int j = 0; j < LB_QK_A; j++) {
            y[i].qs[j] = (int8_t)lb_round_even(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d   = amax / 127.0f;
        y[i].sum = sum;
        y[i].s   = y[i].d * (float)sum;
    }
}

static void quantize_q8k_ref(void *dst, const float *x, int64_t n) {
    lb_block_q8k *y = dst;
    for (int64_t i = 0; i < n / LB_QK_KA; i++, x += LB_QK_KA) {
        float amax = 0.0f;
        for (int j = 0; j < LB_QK_KA; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        for (int j = 0; j < LB_QK_KA; j++) y[i].qs[j] = (int8_t)lb_round_even(x[j] * id);
        for (int g = 0; g < LB_QK_KA / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += y[i].qs[16 * g + j];
            y[i].bsums[g] = (int16_t)s;
        }
        y[i].d = amax / 127.0f;
    }
}

size_t lb_act_row_size(lb_act_kind k, int64_t n) {
    switch (k) {
    case LB_ACT_Q8A: return (size_t)(n / LB_QK_A) * sizeof(lb_block_q8a);
    case LB_ACT_Q8K: return (size_t)(n / LB_QK_KA) * sizeof(lb_block_q8k);
    case LB_ACT_I8:  return (size_t)(4 + n + 3) / 4 * 4;
    case LB_ACT_BF16: return (size_t)n * 2;
    default:         return (size_t)n * sizeof(float);
    }
}

/* ---- 32-blocks: levels q (signed, or unsigned plus a min m for the affine types) ---- */

typedef struct {
    int8_t q[32];
    float  d, m;
} dec32;

static void nibbles(int8_t *q, const uint8_t *qs, int offset) {
    for (int j = 0; j < 16; j++) {
        q[j]      = (int8_t)((qs[j] & 0xF) - offset);
        q[j + 16] = (int8_t)((qs[j] >> 4) - offset);
    }
}

/* 16 bytes of nibbles indexing a 16-level grid: low nibbles values 0..15, high ones 16..31 */
static void grid_nibbles(int8_t *q, const uint8_t *qs, const int8_t *grid) {
    for (int j = 0; j < 16; j++) {
        q[j]      = grid[qs[j] & 0xF];
        q[j + 16] = grid[qs[j] >> 4];
    }
}

static void fifth_bits(int8_t *q, const uint8_t *qh4) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    for (int j = 0; j < 32; j++) q[j] = (int8_t)(q[j] + (int)((qh >> j) & 1) * 16);
}

static void dec_q8_0(dec32 *o, const void *p) {
    const lb_block_q8_0 *b = p;
    memcpy(o->q, b->qs, 32);
    o->d = lb_f16_to_f32(b->d), o->m = 0;
}
static void dec_q4_0(dec32 *o, const void *p) {
    const lb_block_q4_0 *b = p;
    nibbles(o->q, b->qs, 8);
    o->d = lb_f16_to_f32(b->d), o->m = 0;
}
static void dec_q4_1(dec32 *o, const void *p) {
    const lb_block_q4_1 *b = p;
    nibbles(o->q, b->qs, 0);
    o->d = lb_f16_to_f32(b->d), o->m = lb_f16_to_f32(b->m);
}
static void dec_q5_0(dec32 *o, const void *p) {
    const lb_block_q5_0 *b = p;
    nibbles(o->q, b->qs, 0);
    fifth_bits(o->q, b->qh);
    for (int j = 0; j < 32; j++) o->q[j] = (int8_t)(o->q[j] - 16);
    o->d = lb_f16_to_f32(b->d), o->m = 0;
}
static void dec_q5_1(dec32 *o, const void *p) {
    const lb_block_q5_1 *b = p;
    nibbles(o->q, b->qs, 0);
    fifth_bits(o->q, b->qh);
    o->d = lb_f16_to_f32(b->d), o->m = lb_f16_to_f32(b->m);
}
static void dec_iq4_nl(dec32 *o, const void *p) {
    const lb_block_iq4_nl *b = p;
    grid_nibbles(o->q, b->qs, lb_iq4nl_grid);
    o->d = lb_f16_to_f32(b->d), o->m = 0;
}

static void dec_xnf4(dec32 *o, const void *p) {
    const lb_block_xnf4 *b = p;
    grid_nibbles(o->q, b->qs, lb_nf4_grid8);
    o->d = lb_f16_to_f32(b->d), o->m = 0;
}
/* X2_0 / X2_1: value 8 s + b in bits 2 s of qs[b] */
static void crumbs(int8_t *q, const uint8_t *qs, int offset) {
    for (int j = 0; j < 32; j++) q[j] = (int8_t)((qs[j % 8] >> 2 * (j / 8) & 3) - offset);
}
static void dec_x2_0(dec32 *o, const void *p) {
    const lb_block_x2_0 *b = p;
    crumbs(o->q, b->qs, 2);
    o->d = lb_f16_to_f32(b->d), o->m = 0;
}
static void dec_x2_1(dec32 *o, const void *p) {
    const lb_block_x2_1 *b = p;
    crumbs(o->q, b->qs, 0);
    o->d = lb_f16_to_f32(b->d), o->m = lb_f16_to_f32(b->m);
}

static void dec_mxfp4(dec32 *o, const void *p) {
    const lb_block_mxfp4 *b = p;
    grid_nibbles(o->q, b->qs, lb_mxfp4_values);
    o->d = lb_e8m0_half(b->e), o->m = 0;
}

static float dot32(const dec32 *w, const lb_block_q8a *a) {
    int isum = 0;
    for (int j = 0; j < 32; j++) isum += w->q[j] * a->qs[j];
    return (w->d * a->d) * (float)isum + w->m * a->s;
}

#define GEMM32(X, DEC)                                                                             \
    static void gemm_##X##_ref(int64_t n, const void *w, size_t ws, int64_t nr, const void *a,    \
                               size_t as, int64_t nc, float *out, int64_t ldo) {                   \
        for (int64_t r = 0; r < nr; r++)                                                           \
            for (int64_t c = 0; c < nc; c++) {                                                     \
                const lb_block_##X *wb = (const void *)((const uint8_t *)w + (size_t)r * ws);     \
                const lb_block_q8a *ab = (const void *)((const uint8_t *)a + (size_t)c * as);     \
                float               s  = 0.0f;                                                     \
                for (int64_t i = 0; i < n / 32; i++) {                                             \
                    dec32 d;                                                                       \
                    DEC(&d, &wb[i]);                                                               \
                    s += dot32(&d, &ab[i]);                                                        \
                }                                                                                  \
                out[c * ldo + r] = s;                                                              \
            }                                                                                      \
    }
GEMM32(q8_0, dec_q8_0)
GEMM32(q4_0, dec_q4_0)
GEMM32(q4_1, dec_q4_1)
GEMM32(q5_0, dec_q5_0)
GEMM32(q5_1, dec_q5_1)
GEMM32(iq4_nl, dec_iq4_nl)
GEMM32(mxfp4, dec_mxfp4)
GEMM32(xnf4, dec_xnf4)
GEMM32(x2_0, dec_x2_0)
GEMM32(x2_1, dec_x2_1)

/* X2_K: X2_0's blocks of 32, 8 under each 256-block's d */
static void gemm_x2_k_ref(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, int64_t nc,
                          float *out, int64_t ldo) {
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++) {
            const lb_block_x2_k *wb = (const void *)((const uint8_t *)w + (size_t)r * ws);
            const lb_block_q8a  *ab = (const void *)((const uint8_t *)a + (size_t)c * as);
            float                s  = 0.0f;
            for (int64_t i = 0; i < n / 32; i++) {
                dec32 d;
                crumbs(d.q, wb[i / 8].qs + 8 * (i % 8), 2);
                d.d = lb_f16_to_f32(wb[i / 8].d), d.m = 0;
                s += dot32(&d, &ab[i]);
            }
            out[c * ldo + r] = s;
        }
}
#undef GEMM32

/* ---- super-blocks: levels q, a scale sc and a min mn per group of 16 ---- */

typedef struct {
    int8_t  q[256];
    int16_t sc[16], mn[16];
    float   d, dmin;
} deck;

/* Q2_K: q in 0..3, 4-bit scale and min per 16 */
static void dec_q2_k(deck *o, const void *p) {
    const lb_block_q2_k *b = p;
    for (int v = 0; v < 256; v++)
        o->q[v] = (int8_t)((b->qs[32 * (v / 128) + v % 32] >> (2 * (v % 128 / 32))) & 3);
    for (int g = 0; g < 16; g++) o->sc[g] = b->scales[g] & 0xF, o->mn[g] = b->scales[g] >> 4;
    o->d = lb_f16_to_f32(b->d), o->dmin = lb_f16_to_f32(b->dmin);
}
/* Q3_K: d (s - 32) (q - 4) with q in 0..7 = d s q - d (4 s): the offset becomes a min */
static void dec_q3_k(deck *o, const void *p) {
    const lb_block_q3_k *b = p;
    for (int v = 0; v < 256; v++) {
        const int lo = (b->qs[32 * (v / 128) + v % 32] >> (2 * (v % 128 / 32))) & 3;
        const int hi = (b->hmask[v % 32] >> (v / 32)) & 1;
        o->q[v]      = (int8_t)(lo | hi << 2);
    }
    for (int g = 0; g < 16; g++) {
        const int lo = g < 8 ? b->scales[g] & 0xF : b->scales[g - 8] >> 4;
        const int s  = (lo | ((b->scales[8 + g % 4] >> (2 * (g / 4))) & 3) << 4) - 32;
        o->sc[g] = (int16_t)s, o->mn[g] = (int16_t)(4 * s);
    }
    o->d = o->dmin = lb_f16_to_f32(b->d);
}
/* Q4_K / Q5_K: q in 0..15 (0..31), 6-bit scale and min per 32 */
static void kq_scales32(deck *o, const uint8_t *scales) {
    for (int g = 0; g < 8; g++) {
        uint8_t sc, m;
        lb_kq_get_scale_min(g, scales, &sc, &m);
        o->sc[2 * g] = o->sc[2 * g + 1] = sc;
        o->mn[2 * g] = o->mn[2 * g + 1] = m;
    }
}
static void dec_q4_k(deck *o, const void *p) {
    const lb_block_q4_k *b = p;
    for (int v = 0; v < 256; v++)
        o->q[v] = (int8_t)((b->qs[32 * (v / 64) + v % 32] >> (4 * (v / 32 % 2))) & 0xF);
    kq_scales32(o, b->scales);
    o->d = lb_f16_to_f32(b->d), o->dmin = lb_f16_to_f32(b->dmin);
}
static void dec_q5_k(deck *o, const void *p) {
    const lb_block_q5_k *b = p;
    for (int v = 0; v < 256; v++)
        o->q[v] = (int8_t)(((b->qs[32 * (v / 64) + v % 32] >> (4 * (v / 32 % 2))) & 0xF) |
                           ((b->qh[v % 32] >> (v / 32)) & 1) << 4);
    kq_scales32(o, b->scales);
    o->d = lb_f16_to_f32(b->d), o->dmin = lb_f16_to_f32(b->dmin);
}
/* Q6_K: d s (q - 32) with q in 0..63 = d s q - d (32 s) */
static void dec_q6_k(deck *o, const void *p) {
    const lb_block_q6_k *b = p;
    for (int v = 0; v < 256; v++) {
        const int h = v / 128, k = v % 128 / 32, l = v % 32;
        const int lo = (b->ql[64 * h + l + 32 * (k % 2)] >> (4 * (k / 2))) & 0xF;
        const int hi = (b->qh[32 * h + l] >> (2 * k)) & 3;
        o->q[v]      = (int8_t)(lo | hi << 4);
    }
    for (int g = 0; g < 16; g++) o->sc[g] = b->scales[g], o->mn[g] = (int16_t)(32 * b->scales[g]);
    o->d = o->dmin = lb_f16_to_f32(b->d);
}
/* IQ4_XS: signed grid levels, a 6-bit scale (l - 32) per 32, no min */
static void dec_iq4_xs(deck *o, const void *p) {
    const lb_block_iq4_xs *b = p;
    for (int ib = 0; ib < 8; ib++) {
        for (int j = 0; j < 16; j++) {
            o->q[32 * ib + j]      = lb_iq4nl_grid[b->qs[16 * ib + j] & 0xF];
            o->q[32 * ib + j + 16] = lb_iq4nl_grid[b->qs[16 * ib + j] >> 4];
        }
        const int l = ((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | ((b->scales_h >> 2 * ib) & 3) << 4;
        o->sc[2 * ib] = o->sc[2 * ib + 1] = (int16_t)(l - 32);
        o->mn[2 * ib] = o->mn[2 * ib + 1] = 0;
    }
    o->d = lb_f16_to_f32(b->d), o->dmin = 0;
}

/* ---- the i-quants: grid points times signs, odd block scales 2 s + 1 against d / 8, d / 4
 * or d; IQ1's levels 8 g +- 1 (its +-1/8 shift, exactly) against d / 8 ---- */

/* 8 levels: point p's values, negated where sign bit j is set */
static void grid8(int8_t *q, const int8_t *point, uint32_t signs) {
    for (int j = 0; j < 8; j++) q[j] = (int8_t)(signs >> j & 1 ? -point[j] : point[j]);
}
static void odd_scales(deck *o, int g16, int s) {
    o->sc[g16] = (int16_t)(2 * s + 1), o->mn[g16] = 0;
}

static void dec_iq2_xxs(deck *o, const void *p) {
    const lb_block_iq2_xxs *b = p;
    const int8_t           *v = lb_iq_grid_get(LB_IQG_IQ2XXS)->values;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t w[2];
        memcpy(w, b->qs + 4 * ib, sizeof w);
        for (int l = 0; l < 4; l++) grid8(o->q + 32 * ib + 8 * l, v + 8 * (w[0] >> 8 * l & 255), lb_iq_signs(w[1] >> 7 * l & 127));
        odd_scales(o, 2 * ib, (int)(w[1] >> 28)), odd_scales(o, 2 * ib + 1, (int)(w[1] >> 28));
    }
    o->d = lb_f16_to_f32(b->d) * 0.125f, o->dmin = 0;
}
static void dec_iq2_xs(deck *o, const void *p) {
    const lb_block_iq2_xs *b = p;
    const int8_t          *v = lb_iq_grid_get(LB_IQG_IQ2XS)->values;
    for (int k = 0; k < 32; k++) grid8(o->q + 8 * k, v + 8 * (b->qs[k] & 511), lb_iq_signs(b->qs[k] >> 9));
    for (int g = 0; g < 16; g++) odd_scales(o, g, b->scales[g / 2] >> 4 * (g % 2) & 15);
    o->d = lb_f16_to_f32(b->d) * 0.125f, o->dmin = 0;
}
static void dec_iq2_s(deck *o, const void *p) {
    const lb_block_iq2_s *b = p;
    const int8_t         *v = lb_iq_grid_get(LB_IQG_IQ2S)->values;
    for (int k = 0; k < 32; k++)
        grid8(o->q + 8 * k, v + 8 * (b->qs[k] | (b->qh[k / 4] >> 2 * (k % 4) & 3) << 8), b->qs[32 + k]);
    for (int g = 0; g < 16; g++) odd_scales(o, g, b->scales[g / 2] >> 4 * (g % 2) & 15);
    o->d = lb_f16_to_f32(b->d) * 0.125f, o->dmin = 0;
}
static void dec_iq3_xxs(deck *o, const void *p) {
    const lb_block_iq3_xxs *b = p;
    const int8_t           *v = lb_iq_grid_get(LB_IQG_IQ3XXS)->values;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t w;
        memcpy(&w, b->qs + 64 + 4 * ib, 4);
        for (int l = 0; l < 4; l++) {
            int8_t pt[8];
            memcpy(pt, v + 4 * b->qs[8 * ib + 2 * l], 4);
            memcpy(pt + 4, v + 4 * b->qs[8 * ib + 2 * l + 1], 4);
            grid8(o->q + 32 * ib + 8 * l, pt, lb_iq_signs(w >> 7 * l & 127));
        }
        odd_scales(o, 2 * ib, (int)(w >> 28)), odd_scales(o, 2 * ib + 1, (int)(w >> 28));
    }
    o->d = lb_f16_to_f32(b->d) * 0.25f, o->dmin = 0;
}
static void dec_iq3_s(deck *o, const void *p) {
    const lb_block_iq3_s *b = p;
    const int8_t         *v = lb_iq_grid_get(LB_IQG_IQ3S)->values;
    for (int ib = 0; ib < 8; ib++) {
        for (int l = 0; l < 4; l++) {
            int8_t    pt[8];
            const int k = 8 * ib + 2 * l;
            memcpy(pt, v + 4 * (b->qs[k] | (b->qh[ib] >> 2 * l & 1) << 8), 4);
            memcpy(pt + 4, v + 4 * (b->qs[k + 1] | (b->qh[ib] >> (2 * l + 1) & 1) << 8), 4);
            grid8(o->q + 32 * ib + 8 * l, pt, b->signs[4 * ib + l]);
        }
        const int s = b->scales[ib / 2] >> 4 * (ib % 2) & 15;
        odd_scales(o, 2 * ib, s), odd_scales(o, 2 * ib + 1, s);
    }
    o->d = lb_f16_to_f32(b->d), o->dmin = 0;
}
/* 8 IQ1 levels 8 g + delta */
static void iq1_8(int8_t *q, const int8_t *point, int delta) {
    for (int j = 0; j < 8; j++) q[j] = (int8_t)(8 * point[j] + delta);
}
static void dec_iq1_s(deck *o, const void *p) {
    const lb_block_iq1_s *b = p;
    const int8_t         *v = lb_iq_grid_get(LB_IQG_IQ1S)->values;
    for (int ib = 0; ib < 8; ib++) {
        const int qh = b->qh[ib], delta = qh & 0x8000 ? -1 : 1;
        for (int l = 0; l < 4; l++) iq1_8(o->q + 32 * ib + 8 * l, v + 8 * (b->qs[4 * ib + l] | (qh >> 3 * l & 7) << 8), delta);
        odd_scales(o, 2 * ib, qh >> 12 & 7), odd_scales(o, 2 * ib + 1, qh >> 12 & 7);
    }
    o->d = lb_f16_to_f32(b->d) * 0.125f, o->dmin = 0;
}
static void dec_iq1_m(deck *o, const void *p) {
    const lb_block_iq1_m *b = p;
    const int8_t         *v = lb_iq_grid_get(LB_IQG_IQ1S)->values;
    uint16_t              sc[4];
    memcpy(sc, b->scales, sizeof sc);
    for (int k = 0; k < 32; k++) {
        const int h = b->qh[k / 2] >> 4 * (k % 2);
        iq1_8(o->q + 8 * k, v + 8 * (b->qs[k] | (h & 7) << 8), h & 8 ? -1 : 1);
    }
    for (int g = 0; g < 16; g++) odd_scales(o, g, sc[g / 4] >> 3 * (g % 4) & 7);
    o->d = lb_f16_to_f32(lb_iq1m_d(sc)) * 0.125f, o->dmin = 0;
}

static float dotk(const deck *w, const lb_block_q8k *a) {
    int isum = 0, msum = 0;
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int j = 16 * g; j < 16 * g + 16; j++) s += w->q[j] * a->qs[j];
        isum += w->sc[g] * s;
        msum += w->mn[g] * a->bsums[g];
    }
    return a->d * (w->d * (float)isum - w->dmin * (float)msum);
}

#define GEMMK(X, DEC)                                                                              \
    static void gemm_##X##_ref(int64_t n, const void *w, size_t ws, int64_t nr, const void *a,    \
                               size_t as, int64_t nc, float *out, int64_t ldo) {                   \
        for (int64_t r = 0; r < nr; r++)                                                           \
            for (int64_t c = 0; c < nc; c++) {                                                     \
                const lb_block_##X *wb = (const void *)((const uint8_t *)w + (size_t)r * ws);     \
                const lb_block_q8k *ab = (const void *)((const uint8_t *)a + (size_t)c * as);     \
                float               s  = 0.0f;                                                     \
                for (int64_t i = 0; i < n / 256; i++) {                                            \
                    deck d;                                                                        \
                    DEC(&d, &wb[i]);                                                               \
                    s += dotk(&d, &ab[i]);                                                         \
                }                                                                                  \
                out[c * ldo + r] = s;                                                              \
            }                                                                                      \
    }
GEMMK(q2_k, dec_q2_k)
GEMMK(q3_k, dec_q3_k)
GEMMK(q4_k, dec_q4_k)
GEMMK(q5_k, dec_q5_k)
GEMMK(q6_k, dec_q6_k)
GEMMK(iq4_xs, dec_iq4_xs)
GEMMK(iq2_xxs, dec_iq2_xxs)
GEMMK(iq2_xs, dec_iq2_xs)
GEMMK(iq2_s, dec_iq2_s)
GEMMK(iq3_xxs, dec_iq3_xxs)
GEMMK(iq3_s, dec_iq3_s)
GEMMK(iq1_s, dec_iq1_s)
GEMMK(iq1_m, dec_iq1_m)
#undef GEMMK

/* ---- INT8_PC rows { f32 d; int8 q[n] } with f32 activations: d_w * sum_j q_j x_j ---- */

static void gemm_int8_pc_ref(int64_t n, const void *w, size_t ws, int64_t nr, const void *a,
                             size_t as, int64_t nc, float *out, int64_t ldo) {
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
            const int8_t  *q  = (const int8_t *)(wr + 4);
            const float   *x  = (const void *)((const uint8_t *)a + (size_t)c * as);
            float          dw, s = 0.0f;
            memcpy(&dw, wr, 4);
            for (int64_t j = 0; j < n; j++) s += (float)q[j] * x[j];
            out[c * ldo + r] = dw * s;
        }
}

/* ---- KM3/KM4 rows (a codebook of K f16 levels, then the indices) with f32 activations: the
 * look-up-table product, the activations summed per level, then K products per row (no SIMD
 * twin yet: every ISA runs this one) ---- */

static void gemm_km(int K, int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                    int64_t nc, float *out, int64_t ldo) {
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++)
            out[c * ldo + r] = (float)lb_km_dot(K, (const uint8_t *)w + (size_t)r * ws,
                                                (const float *)((const uint8_t *)a + (size_t)c * as), n);
}

static void gemm_km3_ref(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                         int64_t nc, float *out, int64_t ldo) {
    gemm_km(8, n, w, ws, nr, a, as, nc, out, ldo);
}

static void gemm_km4_ref(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                         int64_t nc, float *out, int64_t ldo) {
    gemm_km(16, n, w, ws, nr, a, as, nc, out, ldo);
}

/* ---- W8A8: int8 rows { f32 d; int8 q[n] } against int8 activation rows of the same layout ---- */

static void gemm_i8_ref(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                        int64_t nc, float *out, int64_t ldo) {
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
            const uint8_t *ar = (const uint8_t *)a + (size_t)c * as;
            const int8_t  *qw = (const int8_t *)(wr + 4), *qa = (const int8_t *)(ar + 4);
            float          dw, da;
            int32_t        isum = 0;
            memcpy(&dw, wr, 4);
            memcpy(&da, ar, 4);
            for (int64_t j = 0; j < n; j++) isum += qw[j] * qa[j];
            out[c * ldo + r] = (dw * da) * (float)isum;
        }
}

static void quantize_i8_ref(int8_t *q, const float *x, int64_t n, float id) {
    for (int64_t j = 0; j < n; j++) q[j] = (int8_t)fminf(fmaxf(roundf(x[j] * id), -127.0f), 127.0f);
}

/* ---- F16 / BF16 rows with f32 activations ---- */

#define GEMM16(X, CONV)                                                                            \
    static void gemm_##X##_ref(int64_t n, const void *w, size_t ws, int64_t nr, const void *a,    \
                               size_t as, int64_t nc, float *out, int64_t ldo) {                   \
        for (int64_t r = 0; r < nr; r++)                                                           \
            for (int64_t c = 0; c < nc; c++) {                                                     \
                const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;                           \
                const float   *x  = (const void *)((const uint8_t *)a + (size_t)c * as);          \
                float          s  = 0.0f;                                                          \
                for (int64_t j = 0; j < n; j++) {                                                  \
                    uint16_t h;                                                                    \
                    memcpy(&h, wr + 2 * j, 2);                                                     \
                    s += CONV(h) * x[j];                                                           \
                }                                                                                  \
                out[c * ldo + r] = s;                                                              \
            }                                                                                      \
    }
GEMM16(f16, lb_f16_to_f32)
GEMM16(bf16, lb_bf16_to_f32)
#undef GEMM16

/* BF16 rows against activations rounded to bf16 (FAST mode): every product is exact in f32 */
static void quantize_bf16_ref(void *dst, const float *x, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        const uint16_t h = lb_f32_to_bf16(x[j]);
        memcpy((uint8_t *)dst + 2 * j, &h, 2);
    }
}

static void gemm_bf16_bf16_ref(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                               int64_t nc, float *out, int64_t ldo) {
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws, *ar = (const uint8_t *)a + (size_t)c * as;
            float          s  = 0.0f;
            for (int64_t j = 0; j < n; j += 2) /* in pairs, the second's product first (vdpbf16ps) */
                for (int64_t k = j + 1 < n ? j + 1 : j; k >= j; k--) {
                    uint16_t hw, ha;
                    memcpy(&hw, wr + 2 * k, 2);
                    memcpy(&ha, ar + 2 * k, 2);
                    s += lb_bf16_to_f32(hw) * lb_bf16_to_f32(ha);
                }
            out[c * ldo + r] = s;
        }
}

/* the Gram kernel's twin (qdot.h: lb_gram_pairs_fn), the pair's high halves first */
static void gram_pairs_ref(int64_t np, const uint32_t *P, int64_t i0, int64_t nr, const uint32_t *Q, int64_t j0,
                           int64_t nc, float *out, int64_t ldo) {
    const size_t ps = (size_t)np * LB_GRAM_PANEL;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++) {
            const int64_t   i = i0 + r, j = j0 + c;
            const uint32_t *a = P + (size_t)(i / LB_GRAM_PANEL) * ps + i % LB_GRAM_PANEL;
            const uint32_t *b = Q + (size_t)(j / LB_GRAM_PANEL) * ps + j % LB_GRAM_PANEL;
            float           s = 0.0f;
            for (int64_t p = 0; p < np; p++) {
                const uint32_t x = a[(size_t)p * LB_GRAM_PANEL], y = b[(size_t)p * LB_GRAM_PANEL];
                s += lb_bf16_to_f32((uint16_t)(x >> 16)) * lb_bf16_to_f32((uint16_t)(y >> 16));
                s += lb_bf16_to_f32((uint16_t)x) * lb_bf16_to_f32((uint16_t)y);
            }
            out[r * ldo + c] = s;
        }
}

void lb_qdot_fill_ref(lb_qdot_table *t) {
    memset(t, 0, sizeof *t);
#define K(T, X, ACT) t->kern[T] = (lb_qdot){ .act = ACT, .gemm = gemm_##X##_ref };
    LB_QDOT_TYPES(K)
#undef K
    t->kern[LB_TYPE_KM3]        = (lb_qdot){ .act = LB_ACT_F32, .gemm = gemm_km3_ref };
    t->kern[LB_TYPE_KM4]        = (lb_qdot){ .act = LB_ACT_F32, .gemm = gemm_km4_ref };
    t->quantize_act[LB_ACT_Q8A] = quantize_q8a_ref;
    t->quantize_act[LB_ACT_Q8K] = quantize_q8k_ref;
    t->quantize_act[LB_ACT_BF16] = quantize_bf16_ref;
    t->fast[LB_TYPE_BF16]        = (lb_qdot){ .act = LB_ACT_BF16, .gemm = gemm_bf16_bf16_ref, .any_t = true };
    t->gemm_i8                  = gemm_i8_ref;
    t->quantize_i8              = quantize_i8_ref;
    t->gram_pairs               = gram_pairs_ref;
}
