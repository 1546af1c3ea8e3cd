/* Q5_1: blocks of 32 5-bit values, affine: x = q * d + m with m = min, d = (max - min) / 31
 * (6.0 bpw). Bits laid out as Q5_0. */
#include <float.h>
#include <string.h>

#include "formats.h"
#include "kquant_common.h"
#include "lowbit/core.h"

void lb_quantize_row_q5_1_ref(void *dst, const float *x, int64_t n) {
    lb_block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK_LEGACY; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d  = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint32_t    qh = 0;
        y[i].d         = lb_f32_to_f16(d);
        y[i].m         = lb_f32_to_f16(min);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            const int q0 = (uint8_t)((x[j] - min) * id + 0.5f);
            const int q1 = (uint8_t)((x[j + 16] - min) * id + 0.5f);
            y[i].qs[j]   = (uint8_t)((q0 & 0x0f) | (q1 & 0x0f) << 4);
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

void lb_dequantize_row_q5_1(float *y, const void *src, int64_t n) {
    const lb_block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = lb_f16_to_f32(b[i].d), m = lb_f16_to_f32(b[i].m);
        uint32_t    qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j]      = (float)((b[i].qs[j] & 0x0f) | h0) * d + m;
            y[j + 16] = (float)((b[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

/* With importance: q4_1's weighted fit, on 32 levels. */
static void fit_q5_1(void *block, const float *x, const float *w) {
    lb_block_q5_1 *y  = block;
    float          min;
    uint8_t        L[QK_LEGACY], aux[QK_LEGACY];
    uint32_t       qh = 0;
    const float    d  = lb_kq_make_qkx_quants(QK_LEGACY, 31, x, w, L, &min, aux, -0.9f, 0.05f, 36, 0);
    y->d = lb_f32_to_f16(d);
    y->m = lb_f32_to_f16(-min);
    for (int j = 0; j < QK_LEGACY / 2; j++) {
        y->qs[j] = (uint8_t)((L[j] & 0x0f) | (L[j + 16] & 0x0f) << 4);
        qh |= (uint32_t)((L[j] & 0x10) >> 4) << j;
        qh |= (uint32_t)((L[j + 16] & 0x10) >> 4) << (j + 16);
    }
    memcpy(y->qh, &qh, 4);
}

size_t lb_quantize_q5_1(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    return lb_quantize_rows_weighted(dst, src, nrow, n_per_row, importance, sizeof(lb_block_q5_1),
                                     lb_quantize_row_q5_1_ref, fit_q5_1);
}
