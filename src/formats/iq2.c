/* IQ2_XXS, IQ2_XS and IQ2_S: 8 values at a time as a point of a 2-bit-level grid (iq_grid.h)
 * times a block scale, with a sign per value. Super-blocks of 256 in 8 blocks of 32:
 *   IQ2_XXS: per block two uint32 words, the first the four 8-bit points, the second four
 *            7-bit sign indices (lb_iq_signs) and a 4-bit scale s: dl = d (0.5 + s) / 4;
 *   IQ2_XS:  per 8 values a uint16, 9-bit point and 7-bit sign index; two 4-bit scales per
 *            block (one per 16 values), dl as IQ2_XXS;
 *   IQ2_S:   10-bit points (8 bits in qs, 2 in qh), the 8 signs as a byte after the points.
 * Quantization (importance-weighted, as ggml's quantize_row_iq2_*_impl) is in iq_quant.c. */
#include <string.h>

#include "formats.h"
#include "iq_grid.h"
#include "lowbit/core.h"

/* 8 values of point p with sign byte s, times dl (the product in ggml's order) */
static inline void put8(float *y, float dl, const int8_t *point, uint8_t s) {
    for (int j = 0; j < 8; j++) y[j] = dl * (float)(uint8_t)point[j] * (s >> j & 1 ? -1.f : 1.f);
}

void lb_dequantize_row_iq2_xxs(float *y, const void *src, int64_t n) {
    const lb_iq_grid       *g = lb_iq_grid_get(LB_IQG_IQ2XXS);
    const lb_block_iq2_xxs *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = lb_f16_to_f32(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            uint32_t w[2];
            memcpy(w, b[i].qs + 4 * ib, sizeof w);
            const float dl = d * (0.5f + (float)(w[1] >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++, y += 8)
                put8(y, dl, g->values + 8 * (w[0] >> 8 * l & 255), lb_iq_signs(w[1] >> 7 * l & 127));
        }
    }
}

void lb_dequantize_row_iq2_xs(float *y, const void *src, int64_t n) {
    const lb_iq_grid      *g = lb_iq_grid_get(LB_IQG_IQ2XS);
    const lb_block_iq2_xs *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = lb_f16_to_f32(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++)
            for (int l = 0; l < 4; l++, y += 8) {
                const float    dl = d * (0.5f + (float)(b[i].scales[ib] >> 4 * (l / 2) & 15)) * 0.25f;
                const uint16_t q  = b[i].qs[4 * ib + l];
                put8(y, dl, g->values + 8 * (q & 511), lb_iq_signs(q >> 9));
            }
    }
}

void lb_dequantize_row_iq2_s(float *y, const void *src, int64_t n) {
    const lb_iq_grid     *g = lb_iq_grid_get(LB_IQG_IQ2S);
    const lb_block_iq2_s *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float    d     = lb_f16_to_f32(b[i].d);
        const uint8_t *signs = b[i].qs + QK_K / 8;
        for (int ib = 0; ib < QK_K / 32; ib++)
            for (int l = 0; l < 4; l++, y += 8) {
                const float dl = d * (0.5f + (float)(b[i].scales[ib] >> 4 * (l / 2) & 15)) * 0.25f;
                const int   p  = b[i].qs[4 * ib + l] | (b[i].qh[ib] >> 2 * l & 3) << 8;
                put8(y, dl, g->values + 8 * p, signs[4 * ib + l]);
            }
    }
}
