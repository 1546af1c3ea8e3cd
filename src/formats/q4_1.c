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
size_t lb_quantize_q4_1(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    const size_t rs = (size_t)(n_per_row / QK_LEGACY) * sizeof(lb_block_q4_1);
    for (int64_t r = 0; r < nrow; r++) {
        const float   *x = src + r * n_per_row;
        lb_block_q4_1 *y = (lb_block_q4_1 *)((uint8_t *)dst + (size_t)r * rs);
        if (!importance) {
            lb_quantize_row_q4_1_ref(y, x, n_per_row);
            continue;
        }
        const float sigma2 = lb_row_sigma2(x, n_per_row);
        for (int64_t b = 0; b < n_per_row / QK_LEGACY; b++) {
            float   w[QK_LEGACY], min;
            uint8_t L[QK_LEGACY], aux[QK_LEGACY];
            lb_importance_weights(w, x + b * QK_LEGACY, importance + b * QK_LEGACY, sigma2);
            const float d = lb_kq_make_qkx_quants(QK_LEGACY, 15, x + b * QK_LEGACY, w, L, &min, aux,
                                                  -0.9f, 0.05f, 36, 0);
            y[b].d = lb_f32_to_f16(d);
            y[b].m = lb_f32_to_f16(-min);
            for (int j = 0; j < QK_LEGACY / 2; j++) y[b].qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
        }
    }
    return (size_t)nrow * rs;
}
