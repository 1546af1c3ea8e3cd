/* Grids of the 32-value block types: the values each position can take once the block's
 * scale (and min) are stored, and where its code goes. The layouts are those of the
 * dequantizers in q8_0.c, q4_0.c, q4_1.c, q5_0.c, q5_1.c and iq4_nl.c; the super-block
 * types' grids (Q2_K .. Q6_K, IQ4_XS) are in grid_kquants.c. */
#include <string.h>

#include "formats.h"
#include "grid.h"
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

static int32_t q8_0_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const float d = lb_f16_to_f32(((const lb_block_q8_0 *)b)->d);
    for (int32_t k = 0; k < 255; k++) v[k] = (float)(k - 127) * d; /* -127..127 as the ref uses */
    return 255;
}
static void q8_0_set(void *b, int32_t j, int32_t k) { ((lb_block_q8_0 *)b)->qs[j] = (int8_t)(k - 127); }

static int32_t q4_0_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const float d = lb_f16_to_f32(((const lb_block_q4_0 *)b)->d);
    for (int32_t k = 0; k < 16; k++) v[k] = (float)(k - 8) * d;
    return 16;
}
static void q4_0_set(void *b, int32_t j, int32_t k) { set_nibble(((lb_block_q4_0 *)b)->qs, j, k); }

static int32_t q4_1_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const lb_block_q4_1 *x = b;
    const float          d = lb_f16_to_f32(x->d), m = lb_f16_to_f32(x->m);
    for (int32_t k = 0; k < 16; k++) v[k] = (float)k * d + m;
    return 16;
}
static void q4_1_set(void *b, int32_t j, int32_t k) { set_nibble(((lb_block_q4_1 *)b)->qs, j, k); }

static int32_t q5_0_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const float d = lb_f16_to_f32(((const lb_block_q5_0 *)b)->d);
    for (int32_t k = 0; k < 32; k++) v[k] = (float)(k - 16) * d;
    return 32;
}
static void q5_0_set(void *b, int32_t j, int32_t k) {
    set_nibble(((lb_block_q5_0 *)b)->qs, j, k);
    set_high_bit(((lb_block_q5_0 *)b)->qh, j, k);
}

static int32_t q5_1_levels(const void *b, int32_t j, float *v) {
    (void)j;
    const lb_block_q5_1 *x = b;
    const float          d = lb_f16_to_f32(x->d), m = lb_f16_to_f32(x->m);
    for (int32_t k = 0; k < 32; k++) v[k] = (float)k * d + m;
    return 32;
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

static const lb_grid_ops k_grids[LB_TYPE_COUNT] = {
    [LB_TYPE_Q8_0]   = { q8_0_levels, q8_0_set },     [LB_TYPE_Q4_0] = { q4_0_levels, q4_0_set },
    [LB_TYPE_Q4_1]   = { q4_1_levels, q4_1_set },     [LB_TYPE_Q5_0] = { q5_0_levels, q5_0_set },
    [LB_TYPE_Q5_1]   = { q5_1_levels, q5_1_set },     [LB_TYPE_IQ4_NL] = { iq4_nl_levels, iq4_nl_set },
    [LB_TYPE_Q2_K]   = { lb_grid_q2_k_levels, lb_grid_q2_k_set },
    [LB_TYPE_Q3_K]   = { lb_grid_q3_k_levels, lb_grid_q3_k_set },
    [LB_TYPE_Q4_K]   = { lb_grid_q4_k_levels, lb_grid_q4_k_set },
    [LB_TYPE_Q5_K]   = { lb_grid_q5_k_levels, lb_grid_q5_k_set },
    [LB_TYPE_Q6_K]   = { lb_grid_q6_k_levels, lb_grid_q6_k_set },
    [LB_TYPE_IQ4_XS] = { lb_grid_iq4_xs_levels, lb_grid_iq4_xs_set },
};

const lb_grid_ops *lb_type_grid(lb_type t) {
    if ((int)t < 0 || t >= LB_TYPE_COUNT || !k_grids[t].levels) return NULL;
    return &k_grids[t];
}
