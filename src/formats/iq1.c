/* IQ1_S and IQ1_M: 8 values at a time as a point of the 2048-point ternary grid (levels -1 0 1,
 * iq_grid.h) shifted by +-1/8, times a block scale. Super-blocks of 256 in 8 blocks of 32:
 *   IQ1_S: 11-bit points (8 bits in qs, 3 in qh); per block a uint16 qh holding the four high
 *          parts, a 3-bit scale s (dl = d (2 s + 1)) and the shift's sign (bit 15);
 *   IQ1_M: per 8 values a shift sign, per 16 values a 3-bit scale; the f16 super-block scale's
 *          four nibbles sit in the top nibbles of the four uint16 scale words.
 * Quantization (as ggml's quantize_row_iq1_*_impl) is in iq1_quant.c. */
#include <string.h>

#include "formats.h"
#include "iq_grid.h"
#include "lowbit/core.h"


static inline void put8(float *y, float dl, const int8_t *point, float delta) {
    for (int j = 0; j < 8; j++) y[j] = dl * ((float)point[j] + delta);
}

void lb_dequantize_row_iq1_s(float *y, const void *src, int64_t n) {
    const lb_iq_grid     *g = lb_iq_grid_get(LB_IQG_IQ1S);
    const lb_block_iq1_s *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = lb_f16_to_f32(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint32_t qh    = b[i].qh[ib];
            const float    dl    = d * (float)(2 * (qh >> 12 & 7) + 1);
            const float    delta = qh & 0x8000 ? -LB_IQ1_DELTA : LB_IQ1_DELTA;
            for (int l = 0; l < 4; l++, y += 8)
                put8(y, dl, g->values + 8 * (b[i].qs[4 * ib + l] | (qh >> 3 * l & 7) << 8), delta);
        }
    }
}

/* IQ1_M's four scale words and the super-block scale spread over their top nibbles */
static float iq1m_scales(const lb_block_iq1_m *b, uint16_t sc[4]) {
    memcpy(sc, b->scales, 4 * sizeof *sc);
    return lb_f16_to_f32(lb_iq1m_d(sc));
}

void lb_dequantize_row_iq1_m(float *y, const void *src, int64_t n) {
    const lb_iq_grid     *g = lb_iq_grid_get(LB_IQG_IQ1S);
    const lb_block_iq1_m *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint16_t      sc[4];
        const float   d  = iq1m_scales(&b[i], sc);
        for (int ib = 0; ib < QK_K / 32; ib++)
            for (int l = 0; l < 4; l++, y += 8) {
                const int   s     = sc[ib / 2] >> (6 * (ib % 2) + 3 * (l / 2)) & 7;
                const float dl    = d * (float)(2 * s + 1);
                const int   h     = b[i].qh[2 * ib + l / 2] >> 4 * (l % 2);
                const float delta = h & 8 ? -LB_IQ1_DELTA : LB_IQ1_DELTA;
                put8(y, dl, g->values + 8 * (b[i].qs[4 * ib + l] | (h & 7) << 8), delta);
            }
    }
}
