/* Q4_0: blocks of 32 4-bit values, symmetric: x = (q - 8) * d with d = max / -8, where
 * max is the value of largest magnitude (4.5 bpw). Nibble j holds value j (low) and
 * value j + 16 (high). */
#include <math.h>

#include "formats.h"
#include "kquant_common.h"
#include "lowbit/core.h"

/* the value of largest magnitude, keeping its sign (first one on ties) */
static float signed_absmax(const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK_LEGACY; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max  = x[j];
        }
    return max;
}

void lb_quantize_row_q4_0_ref(void *dst, const float *x, int64_t n) {
    lb_block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        const float d  = signed_absmax(x) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = lb_f32_to_f16(d);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            const int q0 = (int8_t)(x[j] * id + 8.5f), q1 = (int8_t)(x[j + 16] * id + 8.5f);
            y[i].qs[j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

void lb_dequantize_row_q4_0(float *y, const void *src, int64_t n) {
    const lb_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = lb_f16_to_f32(b[i].d);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            y[j]      = (float)((b[i].qs[j] & 0x0f) - 8) * d;
            y[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* With importance (llama.cpp's imatrix): the scale minimizing the weighted squared error over
 * candidate scales (as ggml's quantize_row_q4_0_impl). */
static void fit_q4_0(void *block, const float *x, const float *w) {
    lb_block_q4_0 *y = block;
    int8_t         L[QK_LEGACY];
    y->d = lb_f32_to_f16(lb_kq_make_qx_quants(QK_LEGACY, 8, x, L, w));
    for (int j = 0; j < QK_LEGACY / 2; j++) y->qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
}

size_t lb_quantize_q4_0(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    return lb_quantize_rows_weighted(dst, src, nrow, n_per_row, importance, sizeof(lb_block_q4_0),
                                     lb_quantize_row_q4_0_ref, fit_q4_0);
}
