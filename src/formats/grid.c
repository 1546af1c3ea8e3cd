/* Grids of the 32-value block types: the values each position can take once the block's
 * scale (and min) are stored, and where its code goes. The layouts are those of the
 * dequantizers in q8_0.c, q4_0.c, q4_1.c, q5_0.c, q5_1.c and iq4_nl.c; the super-block
 * types' grids (Q2_K .. Q6_K, IQ4_XS) are in grid_kquants.c, the INTn types' in intn.c.
 * Also NF4 (nf4.c) and the row-scaled FP8 types (fp8.c; the block is the row), which round
 * as their quantizers do. */
#include <math.h>
#include <string.h>

#include "formats.h"
#include "grid.h"
#include "grid_intn.h"
#include "grid_kquants.h"
#include "iq4_common.h"
#include "lowbit/core.h"

/* a nibble per value: value j in the low nibble of byte j, value j + 16 in the high one */
static void set_nibble(uint8_t *qs, int32_t j, int32_t k) {
    if (j < 16) qs[j] = (uint8_t)((qs[j] & 0xf0) | (k & 0x0f));
    else qs[j - 16] = (uint8_t)((qs[j - 16] & 0x0f) | (k & 0x0f) << 4);
}

/* the fifth bit of value j in a 32-bit mask */
static void set_high_bit(uint8_t *qh, int32_t j, int32_t k) {
    uint32_t h;
    memcpy(&h, qh, 4);
    h = (h & ~(1u << j)) | (uint32_t)((k >> 4) & 1) << j;
    memcpy(qh, &h, 4);
}

/* The 32-blocks' grids are affine: a level macro gives both the levels and the scan's code
 * (LB_GRID_NEAREST), with the same float operations */
#define Q_OFFSET_LEVEL(k) ((float)((k) - off) * d)
#define Q_AFFINE_LEVEL(k) ((float)(k) * d + m)

static int32_t q8_0_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const float   d   = lb_f16_to_f32(((const lb_block_q8_0 *)b)->d);
    const int32_t off = 127;
    for (int32_t k = 0; k < 255; k++) v[k] = Q_OFFSET_LEVEL(k); /* -127..127 as the ref uses */
    return 255;
}
static int32_t q8_0_scan(const void *b, int32_t j, float x, float *level) {
    (void)j;
    const float   d   = lb_f16_to_f32(((const lb_block_q8_0 *)b)->d);
    const int32_t off = 127;
    LB_GRID_NEAREST(255, Q_OFFSET_LEVEL, x / d + (float)off, x, level);
}
static void q8_0_set(void *b, int32_t j, int32_t k) { ((lb_block_q8_0 *)b)->qs[j] = (int8_t)(k - 127); }

static int32_t q4_0_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const float   d   = lb_f16_to_f32(((const lb_block_q4_0 *)b)->d);
    const int32_t off = 8;
    for (int32_t k = 0; k < 16; k++) v[k] = Q_OFFSET_LEVEL(k);
    return 16;
}
static int32_t q4_0_scan(const void *b, int32_t j, float x, float *level) {
    (void)j;
    const float   d   = lb_f16_to_f32(((const lb_block_q4_0 *)b)->d);
    const int32_t off = 8;
    LB_GRID_NEAREST(16, Q_OFFSET_LEVEL, x / d + (float)off, x, level);
}
static void q4_0_set(void *b, int32_t j, int32_t k) { set_nibble(((lb_block_q4_0 *)b)->qs, j, k); }

static int32_t q4_1_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const lb_block_q4_1 *x = b;
    const float          d = lb_f16_to_f32(x->d), m = lb_f16_to_f32(x->m);
    for (int32_t k = 0; k < 16; k++) v[k] = Q_AFFINE_LEVEL(k);
    return 16;
}
static int32_t q4_1_scan(const void *b, int32_t j, float x, float *level) {
    (void)j;
    const lb_block_q4_1 *q = b;
    const float          d = lb_f16_to_f32(q->d), m = lb_f16_to_f32(q->m);
    LB_GRID_NEAREST(16, Q_AFFINE_LEVEL, (x - m) / d, x, level);
}
static void q4_1_set(void *b, int32_t j, int32_t k) { set_nibble(((lb_block_q4_1 *)b)->qs, j, k); }

static int32_t q5_0_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const float   d   = lb_f16_to_f32(((const lb_block_q5_0 *)b)->d);
    const int32_t off = 16;
    for (int32_t k = 0; k < 32; k++) v[k] = Q_OFFSET_LEVEL(k);
    return 32;
}
static int32_t q5_0_scan(const void *b, int32_t j, float x, float *level) {
    (void)j;
    const float   d   = lb_f16_to_f32(((const lb_block_q5_0 *)b)->d);
    const int32_t off = 16;
    LB_GRID_NEAREST(32, Q_OFFSET_LEVEL, x / d + (float)off, x, level);
}
static void q5_0_set(void *b, int32_t j, int32_t k) {
    set_nibble(((lb_block_q5_0 *)b)->qs, j, k);
    set_high_bit(((lb_block_q5_0 *)b)->qh, j, k);
}

static int32_t q5_1_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const lb_block_q5_1 *x = b;
    const float          d = lb_f16_to_f32(x->d), m = lb_f16_to_f32(x->m);
    for (int32_t k = 0; k < 32; k++) v[k] = Q_AFFINE_LEVEL(k);
    return 32;
}
static int32_t q5_1_scan(const void *b, int32_t j, float x, float *level) {
    (void)j;
    const lb_block_q5_1 *q = b;
    const float          d = lb_f16_to_f32(q->d), m = lb_f16_to_f32(q->m);
    LB_GRID_NEAREST(32, Q_AFFINE_LEVEL, (x - m) / d, x, level);
}
static void q5_1_set(void *b, int32_t j, int32_t k) {
    set_nibble(((lb_block_q5_1 *)b)->qs, j, k);
    set_high_bit(((lb_block_q5_1 *)b)->qh, j, k);
}

static int32_t iq4_nl_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const float d = lb_f16_to_f32(((const lb_block_iq4_nl *)b)->d);
    for (int32_t k = 0; k < 16; k++) v[k] = (float)lb_iq4nl_grid[k] * d;
    return 16;
}
static void iq4_nl_set(void *b, int32_t j, int32_t k) { set_nibble(((lb_block_iq4_nl *)b)->qs, j, k); }

/* NF4: { f32 absmax; two codes a byte, the even value in the high nibble }, x = level * d */
static float nf4_scale(const void *b) {
    float d;
    memcpy(&d, &((const lb_block_nf4 *)b)->d, sizeof d);
    return d;
}
static int32_t nf4_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const float d = nf4_scale(b);
    for (int32_t k = 0; k < 16; k++) v[k] = lb_nf4_levels[k] * d;
    return 16;
}
static void nf4_set(void *b, int32_t j, int32_t k) {
    uint8_t *p = &((lb_block_nf4 *)b)->qs[j / 2];
    if (j % 2) *p = (uint8_t)((*p & 0xf0) | (k & 0x0f));
    else *p = (uint8_t)((*p & 0x0f) | (k & 0x0f) << 4);
}
static int32_t nf4_nearest(const void *b, int32_t j, float x, float *level) {
    (void)j;
    const float d = nf4_scale(b), v = x * (d != 0.0f ? 1.0f / d : 0.0f);
    int32_t     best = 0; /* as nf4.c: the nearest level to x / absmax, ties to the lower */
    for (int32_t k = 1; k < 16; k++)
        if (fabsf(v - lb_nf4_levels[k]) < fabsf(v - lb_nf4_levels[best])) best = k;
    *level = lb_nf4_levels[best] * d;
    return best;
}

/* FP8 rows: { f32 scale; u8 code[n] }, x = decode(code) * scale; code k is the byte k (NaN
 * codes are levels too, never the nearest) */
static float fp8_scale(const void *row) {
    float s;
    memcpy(&s, row, sizeof s);
    return s;
}
static void fp8_set(void *row, int32_t j, int32_t k) { ((uint8_t *)row)[4 + j] = (uint8_t)k; }
#define FP8_GRID(X)                                                                                \
    static int32_t fp8_##X##_levels(const void *row, int32_t j, float *v) {                        \
        (void)j;                                                                                   \
        const float s = fp8_scale(row);                                                            \
        for (int32_t k = 0; k < 256; k++) v[k] = lb_fp8_##X##_to_f32((uint8_t)k) * s;             \
        return 256;                                                                                \
    }                                                                                              \
    static int32_t fp8_##X##_nearest(const void *row, int32_t j, float x, float *level) {          \
        (void)j;                                                                                   \
        const float   s = fp8_scale(row);                                                          \
        const uint8_t c = lb_f32_to_fp8_##X(s != 0.0f ? x / s : 0.0f); /* as fp8.c */             \
        *level          = lb_fp8_##X##_to_f32(c) * s;                                              \
        return c;                                                                                  \
    }
FP8_GRID(e4m3)
FP8_GRID(e5m2)
#undef FP8_GRID

/* KM3/KM4: the row's codebook, fixed by the type's quantizer before GPTQ runs (levels from
 * the importance-weighted k-means of the original row) */
#define KM_GRID(X, K)                                                                              \
    static int32_t km_##X##_levels(const void *row, int32_t j, float *v) {                         \
        (void)j;                                                                                   \
        lb_km_levels(K, row, v);                                                                   \
        return K;                                                                                  \
    }                                                                                              \
    static void km_##X##_set(void *row, int32_t j, int32_t k) { lb_km_set_index(K, row, j, (unsigned)k); }
KM_GRID(km3, 8)
KM_GRID(km4, 16)
#undef KM_GRID

static const lb_grid_ops k_grids[LB_TYPE_COUNT] = {
    [LB_TYPE_Q8_0]   = { q8_0_levels, q8_0_set, NULL, q8_0_scan },
    [LB_TYPE_Q4_0]   = { q4_0_levels, q4_0_set, NULL, q4_0_scan },
    [LB_TYPE_Q4_1]   = { q4_1_levels, q4_1_set, NULL, q4_1_scan },
    [LB_TYPE_Q5_0]   = { q5_0_levels, q5_0_set, NULL, q5_0_scan },
    [LB_TYPE_Q5_1]   = { q5_1_levels, q5_1_set, NULL, q5_1_scan },
    [LB_TYPE_IQ4_NL] = { iq4_nl_levels, iq4_nl_set },
    [LB_TYPE_Q2_K]   = { lb_grid_q2_k_levels, lb_grid_q2_k_set },
    [LB_TYPE_Q3_K]   = { lb_grid_q3_k_levels, lb_grid_q3_k_set, NULL, lb_grid_q3_k_scan },
    [LB_TYPE_Q4_K]   = { lb_grid_q4_k_levels, lb_grid_q4_k_set, NULL, lb_grid_q4_k_scan },
    [LB_TYPE_Q5_K]   = { lb_grid_q5_k_levels, lb_grid_q5_k_set, NULL, lb_grid_q5_k_scan },
    [LB_TYPE_Q6_K]   = { lb_grid_q6_k_levels, lb_grid_q6_k_set, NULL, lb_grid_q6_k_scan },
    [LB_TYPE_IQ4_XS] = { lb_grid_iq4_xs_levels, lb_grid_iq4_xs_set },
    [LB_TYPE_NF4]    = { nf4_levels, nf4_set, nf4_nearest },
    [LB_TYPE_FP8_E4M3_PC] = { fp8_e4m3_levels, fp8_set, fp8_e4m3_nearest },
    [LB_TYPE_FP8_E4M3_PT] = { fp8_e4m3_levels, fp8_set, fp8_e4m3_nearest },
    [LB_TYPE_FP8_E5M2_PC] = { fp8_e5m2_levels, fp8_set, fp8_e5m2_nearest },
    [LB_TYPE_FP8_E5M2_PT] = { fp8_e5m2_levels, fp8_set, fp8_e5m2_nearest },
    [LB_TYPE_KM3] = { km_km3_levels, km_km3_set },
    [LB_TYPE_KM4] = { km_km4_levels, km_km4_set },
};

const lb_grid_ops *lb_type_grid(lb_type t) {
    if ((int)t < 0 || t >= LB_TYPE_COUNT) return NULL;
    if (k_grids[t].levels) return &k_grids[t];
    return lb_intn_grid(t);
}

float lb_grid_round(const lb_grid_ops *g, void *block, int32_t j, float x) {
    float   level;
    int32_t k;
    if (g->nearest) {
        k = g->nearest(block, j, x, &level);
    } else if (g->scan) {
        k = g->scan(block, j, x, &level);
    } else {
        float         lv[LB_GRID_MAX];
        const int32_t nl = g->levels(block, j, lv);
        k                = 0;
        for (int32_t l = 1; l < nl; l++)
            if (fabsf(lv[l] - x) < fabsf(lv[k] - x)) k = l;
        level = lv[k];
    }
    g->set_code(block, j, k);
    return level;
}
