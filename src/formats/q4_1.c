/* Q4_1: blocks of 32 4-bit values, affine: x = q * d + m with m = min, d = (max - min) / 15
 * (5.0 bpw). */
#include <float.h>

#include "formats.h"
#include "kquant_common.h"
#include "lowbit/core.h"

void lb_quantize_row_q4_1_ref(void *dst, const float *x, int64_t n) {
    lb_block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK_LEGACY; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d  = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = lb_f32_to_f16(d);
        y[i].m = lb_f32_to_f16(min);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            const int q0 = (int8_t)((x[j] - min) * id + 0.5f), q1 = (int8_t)((x[j + 16] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

void lb_dequantize_row_q4_1(float *y, const void *src, int64_t n) {
    const lb_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = lb_f16_to_f32(b[i].d), m = lb_f16_to_f32(b[i].m);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            y[j]      = (float)(b[i].qs[j] & 0x0f) * d + m;
            y[j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

/* With importance: weighted least squares for scale and min over candidate spacings (as
 * ggml's quantize_row_q4_1_impl). */
static void fit_q4_1(void *block, const float *x, const float *w) {
    lb_block_q4_1 *y = block;
    float          min;
    uint8_t        L[QK_LEGACY], aux[QK_LEGACY];
    const float    d = lb_kq_make_qkx_quants(QK_LEGACY, 15, x, w, L, &min, aux, -0.9f, 0.05f, 36, 0);
    y->d = lb_f32_to_f16(d);
    y->m = lb_f32_to_f16(-min);
    for (int j = 0; j < QK_LEGACY / 2; j++) y->qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
}

size_t lb_quantize_q4_1(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    return lb_quantize_rows_weighted(dst, src, nrow, n_per_row, importance, sizeof(lb_block_q4_1),
                                     lb_quantize_row_q4_1_ref, fit_q4_1);
}
