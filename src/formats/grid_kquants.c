/* Grids of the super-block types (256 values): the values position j can take once the
 * super-block's scales are stored, and where its code goes. Each level is computed with the
 * float operations of the type's dequantizer, in its order (q2_k.c .. q6_k.c, iq4_xs.c),
 * so that it equals the dequantized value bit for bit. */
#include <math.h>

#include "formats.h"
#include "grid.h"
#include "grid_kquants.h"
#include "iq4_common.h"
#include "kquant_common.h"
#include "lowbit/core.h"

/* Q2_K / Q3_K / Q6_K: in each half of 128 values, value 32 s + l (s < 4, l < 32) of half h
 * has its 2-bit field at bits 2 s of byte 32 h + l */
static void set_crumb(uint8_t *qs, int32_t j, int32_t k) {
    const int32_t h = j / 128, s = j % 128 / 32, l = j % 32, sh = 2 * s;
    uint8_t      *p = qs + 32 * h + l;
    *p              = (uint8_t)((*p & ~(3u << sh)) | (uint32_t)(k & 3) << sh);
}

/* one bit of a byte: bit `bit` of *p */
static void set_bit(uint8_t *p, int32_t bit, int32_t v) {
    *p = (uint8_t)((*p & ~(1u << bit)) | (uint32_t)(v & 1) << bit);
}

/* one nibble of a byte: the high one when high */
static void set_nib(uint8_t *p, int high, int32_t k) {
    if (high) *p = (uint8_t)((*p & 0x0f) | (k & 0x0f) << 4);
    else *p = (uint8_t)((*p & 0xf0) | (k & 0x0f));
}

/* ---- Q2_K: x = d * sc * q - dmin * m, q in 0..3, group of 16 ---- */
int32_t lb_grid_q2_k_levels(const void *block, int32_t j, float *v) {
    const lb_block_q2_k *b  = block;
    const float          d  = lb_f16_to_f32(b->d), dmin = lb_f16_to_f32(b->dmin);
    const uint8_t        sc = b->scales[j / 16];
    const float          dl = d * (float)(sc & 0xF), ml = dmin * (float)(sc >> 4);
    for (int32_t k = 0; k < 4; k++) v[k] = dl * (float)k - ml;
    return 4;
}
void lb_grid_q2_k_set(void *block, int32_t j, int32_t k) { set_crumb(((lb_block_q2_k *)block)->qs, j, k); }

/* ---- Q3_K: x = d * (sc - 32) * (q - 4), q in 0..7: low 2 bits as Q2_K, high bit in hmask ---- */
#define Q3_K_LEVEL(k) (dl * (float)((k) - 4))
int32_t lb_grid_q3_k_levels(const void *block, int32_t j, float *v) {
    const lb_block_q3_k *b  = block;
    const float          dl = lb_f16_to_f32(b->d) * (float)lb_q3_k_scale(b->scales, j / 16);
    /* the dequantizer's ((low) - (high bit ? 0 : 4)) is the integer q - 4 */
    for (int32_t k = 0; k < 8; k++) v[k] = Q3_K_LEVEL(k);
    return 8;
}
int32_t lb_grid_q3_k_scan(const void *block, int32_t j, float x, float *level) {
    const lb_block_q3_k *b  = block;
    const float          dl = lb_f16_to_f32(b->d) * (float)lb_q3_k_scale(b->scales, j / 16);
    LB_GRID_NEAREST(8, Q3_K_LEVEL, x / dl + 4.0f, x, level);
}
void lb_grid_q3_k_set(void *block, int32_t j, int32_t k) {
    lb_block_q3_k *b = block;
    set_crumb(b->qs, j, k);
    set_bit(&b->hmask[j % 32], j / 32, k >> 2);
}

/* ---- Q4_K / Q5_K: x = d * sc * q - dmin * m, group of 32, 6-bit packed sc and m ---- */
static void kq_group_dm(const uint8_t *scales, uint16_t d16, uint16_t dmin16, int32_t j,
                        float *dg, float *mg) {
    uint8_t sc, m;
    lb_kq_get_scale_min(j / 32, scales, &sc, &m);
    *dg = lb_f16_to_f32(d16) * (float)sc;
    *mg = lb_f16_to_f32(dmin16) * (float)m;
}

/* the low 4 bits of value j: byte 32 (g / 2) + j % 32, high nibble for odd groups g */
static void kq_set_low4(uint8_t *qs, int32_t j, int32_t k) {
    const int32_t g = j / 32;
    set_nib(qs + 32 * (g / 2) + j % 32, g % 2, k);
}

#define KQ_LEVEL(k) (dg * (float)(k) - mg)
int32_t lb_grid_q4_k_levels(const void *block, int32_t j, float *v) {
    const lb_block_q4_k *b = block;
    float                dg, mg;
    kq_group_dm(b->scales, b->d, b->dmin, j, &dg, &mg);
    for (int32_t k = 0; k < 16; k++) v[k] = KQ_LEVEL(k);
    return 16;
}
int32_t lb_grid_q4_k_scan(const void *block, int32_t j, float x, float *level) {
    const lb_block_q4_k *b = block;
    float                dg, mg;
    kq_group_dm(b->scales, b->d, b->dmin, j, &dg, &mg);
    LB_GRID_NEAREST(16, KQ_LEVEL, (x + mg) / dg, x, level);
}
void lb_grid_q4_k_set(void *block, int32_t j, int32_t k) { kq_set_low4(((lb_block_q4_k *)block)->qs, j, k); }

int32_t lb_grid_q5_k_levels(const void *block, int32_t j, float *v) {
    const lb_block_q5_k *b = block;
    float                dg, mg;
    kq_group_dm(b->scales, b->d, b->dmin, j, &dg, &mg);
    for (int32_t k = 0; k < 32; k++) v[k] = KQ_LEVEL(k);
    return 32;
}
int32_t lb_grid_q5_k_scan(const void *block, int32_t j, float x, float *level) {
    const lb_block_q5_k *b = block;
    float                dg, mg;
    kq_group_dm(b->scales, b->d, b->dmin, j, &dg, &mg);
    LB_GRID_NEAREST(32, KQ_LEVEL, (x + mg) / dg, x, level);
}
void lb_grid_q5_k_set(void *block, int32_t j, int32_t k) {
    lb_block_q5_k *b = block;
    kq_set_low4(b->qs, j, k);
    set_bit(&b->qh[j % 32], j / 32, k >> 4); /* the fifth bit: bit g of qh[j % 32] */
}

/* ---- Q6_K: x = (d * sc) * (q - 32), q in 0..63, group of 16 ---- */
#define Q6_K_LEVEL(k) (d * (float)sc * (float)((k) - 32))
int32_t lb_grid_q6_k_levels(const void *block, int32_t j, float *v) {
    const lb_block_q6_k *b  = block;
    const float          d  = lb_f16_to_f32(b->d);
    const int8_t         sc = b->scales[j / 16];
    for (int32_t k = 0; k < 64; k++) v[k] = Q6_K_LEVEL(k);
    return 64;
}
int32_t lb_grid_q6_k_scan(const void *block, int32_t j, float x, float *level) {
    const lb_block_q6_k *b  = block;
    const float          d  = lb_f16_to_f32(b->d);
    const int8_t         sc = b->scales[j / 16];
    LB_GRID_NEAREST(64, Q6_K_LEVEL, x / (d * (float)sc) + 32.0f, x, level);
}
void lb_grid_q6_k_set(void *block, int32_t j, int32_t k) {
    lb_block_q6_k *b = block;
    const int32_t  h = j / 128, s = j % 128 / 32, l = j % 32;
    set_nib(b->ql + 64 * h + l + 32 * (s % 2), s / 2, k); /* low 4 bits */
    set_crumb(b->qh, j, k >> 4);                          /* high 2: bits 2 s of qh[32 h + l] */
}

/* ---- IQ4_XS: x = d * (l - 32) * grid[q], block of 32, nibbles as IQ4_NL's ---- */
int32_t lb_grid_iq4_xs_levels(const void *block, int32_t j, float *v) {
    const lb_block_iq4_xs *b  = block;
    const int32_t          ib = j / 32;
    const int              l  = ((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                                ((b->scales_h >> 2 * ib) & 3) << 4;
    const float            dl = lb_f16_to_f32(b->d) * (float)(l - 32);
    for (int32_t k = 0; k < 16; k++) v[k] = dl * lb_iq4nl_grid[k];
    return 16;
}
void lb_grid_iq4_xs_set(void *block, int32_t j, int32_t k) {
    lb_block_iq4_xs *b = block;
    const int32_t    i = j % 32;
    set_nib(b->qs + 16 * (j / 32) + i % 16, i >= 16, k);
}
