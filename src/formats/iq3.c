/* IQ3_XXS and IQ3_S: 4 values at a time as a point of a 3-bit-level grid (iq_grid.h), with a
 * sign per value. Super-blocks of 256 in 8 blocks of 32:
 *   IQ3_XXS: 64 8-bit points, then per block a uint32 of four 7-bit sign indices (lb_iq_signs)
 *            and a 4-bit scale s: dl = d (0.5 + s) / 2;
 *   IQ3_S:   9-bit points (8 bits in qs, the ninth in qh), 8 explicit sign bits per 8 values,
 *            a 4-bit scale per block: dl = d (1 + 2 s).
 * Quantization (importance-weighted, as ggml's quantize_row_iq3_*_impl) is in iq_quant.c. */
#include <string.h>

#include "formats.h"
#include "iq_grid.h"
#include "lowbit/core.h"

/* 8 values from two points of 4 with sign byte s, times dl (the product in ggml's order) */
static inline void put8(float *y, float dl, const int8_t *p0, const int8_t *p1, uint8_t s) {
    for (int j = 0; j < 4; j++) {
        y[j]     = dl * (float)(uint8_t)p0[j] * (s >> j & 1 ? -1.f : 1.f);
        y[j + 4] = dl * (float)(uint8_t)p1[j] * (s >> (j + 4) & 1 ? -1.f : 1.f);
    }
}

void lb_dequantize_row_iq3_xxs(float *y, const void *src, int64_t n) {
    const lb_iq_grid       *g = lb_iq_grid_get(LB_IQG_IQ3XXS);
    const lb_block_iq3_xxs *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float    d  = lb_f16_to_f32(b[i].d);
        const uint8_t *qs = b[i].qs;
        for (int ib = 0; ib < QK_K / 32; ib++, qs += 8) {
            uint32_t w;
            memcpy(&w, b[i].qs + QK_K / 4 + 4 * ib, sizeof w);
            const float dl = d * (0.5f + (float)(w >> 28)) * 0.5f;
            for (int l = 0; l < 4; l++, y += 8)
                put8(y, dl, g->values + 4 * qs[2 * l], g->values + 4 * qs[2 * l + 1],
                     lb_iq_signs(w >> 7 * l & 127));
        }
    }
}

void lb_dequantize_row_iq3_s(float *y, const void *src, int64_t n) {
    const lb_iq_grid     *g = lb_iq_grid_get(LB_IQG_IQ3S);
    const lb_block_iq3_s *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = lb_f16_to_f32(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const float    dl = d * (float)(1 + 2 * (b[i].scales[ib / 2] >> 4 * (ib % 2) & 15));
            const uint8_t *qs = b[i].qs + 8 * ib;
            const int      qh = b[i].qh[ib];
            for (int l = 0; l < 4; l++, y += 8) {
                const int p0 = qs[2 * l] | (qh >> 2 * l & 1) << 8;
                const int p1 = qs[2 * l + 1] | (qh >> (2 * l + 1) & 1) << 8;
                put8(y, dl, g->values + 4 * p0, g->values + 4 * p1, b[i].signs[4 * ib + l]);
            }
        }
    }
}
