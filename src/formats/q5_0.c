/* Q5_0: blocks of 32 5-bit values, symmetric: x = (q - 16) * d with d = max / -16, where
 * max is the value of largest magnitude (5.5 bpw). Low nibbles as Q4_0; the fifth bits
 * in a 32-bit mask, bit j for value j. */
#include <math.h>
#include <string.h>

#include "formats.h"
#include "kquant_common.h"
#include "lowbit/core.h"

void lb_quantize_row_q5_0_ref(void *dst, const float *x, int64_t n) {
    lb_block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_LEGACY; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max  = x[j];
            }
        const float d  = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint32_t    qh = 0;
        y[i].d         = lb_f32_to_f16(d);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            int q0 = (int8_t)(x[j] * id + 16.5f), q1 = (int8_t)(x[j + 16] * id + 16.5f);
            q0 = q0 < 31 ? q0 : 31;
            q1 = q1 < 31 ? q1 : 31;
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | (q1 & 0x0f) << 4);
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

void lb_dequantize_row_q5_0(float *y, const void *src, int64_t n) {
    const lb_block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = lb_f16_to_f32(b[i].d);
        uint32_t    qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j]      = (float)(((b[i].qs[j] & 0x0f) | h0) - 16) * d;
            y[j + 16] = (float)(((b[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

/* With importance: q4_0's weighted scale search, on 32 levels. */
static void fit_q5_0(void *block, const float *x, const float *w) {
    lb_block_q5_0 *y  = block;
    int8_t         L[QK_LEGACY];
    uint32_t       qh = 0;
    y->d = lb_f32_to_f16(lb_kq_make_qx_quants(QK_LEGACY, 16, x, L, w));
    for (int j = 0; j < QK_LEGACY / 2; j++) {
        y->qs[j] = (uint8_t)((L[j] & 0x0f) | (L[j + 16] & 0x0f) << 4);
        qh |= (uint32_t)((L[j] & 0x10) >> 4) << j;
        qh |= (uint32_t)((L[j + 16] & 0x10) >> 4) << (j + 16);
    }
    memcpy(y->qh, &qh, 4);
}

size_t lb_quantize_q5_0(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    return lb_quantize_rows_weighted(dst, src, nrow, n_per_row, importance, sizeof(lb_block_q5_0),
                                     lb_quantize_row_q5_0_ref, fit_q5_0);
}
