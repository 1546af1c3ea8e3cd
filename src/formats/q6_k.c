/* Q6_K: super-blocks of 256 values in 16 groups of 16, symmetric: x = d * sc * (q - 32) with
 * q in 0..63, sc a signed 8-bit scale and d a half float (6.5625 bpw). In each half of 128
 * values, value 32 k + l (k < 4, l < 32) keeps its low 4 bits in ql[l + 32 (k % 2)] (high
 * nibble for k >= 2) and its high 2 bits in bits 2k of qh[l]. */
#include <math.h>
#include <string.h>

#include "formats.h"
#include "kquant_common.h"
#include "lowbit/core.h"

/* One super-block; imp (256 weights) may be NULL: then groups are weighted by x^2. */
static void q6_k_block(lb_block_q6_k *y, const float *x, const float *imp) {
    int8_t L[QK_K];
    float  scales[QK_K / 16];
    float  max_scale = 0, max_abs_scale = 0; /* the group scale of largest magnitude, signed */
    for (int g = 0; g < QK_K / 16; g++) {
        scales[g] = lb_kq_make_qx_quants(16, 32, x + 16 * g, L + 16 * g, imp ? imp + 16 * g : NULL);
        if (fabsf(scales[g]) > max_abs_scale) {
            max_abs_scale = fabsf(scales[g]);
            max_scale     = scales[g];
        }
    }
    if (max_abs_scale < LB_KQ_GROUP_EPS) { /* all zero */
        memset(y, 0, sizeof *y);
        return;
    }
    const float iscale = -128.f / max_scale;
    y->d               = lb_f32_to_f16(1 / iscale);
    for (int g = 0; g < QK_K / 16; g++) {
        const int s  = lb_kq_nearest_int(iscale * scales[g]); /* -128 .. 128 */
        y->scales[g] = (int8_t)(s < 127 ? s : 127);
    }
    /* re-round every group on its stored scale (a zero scale keeps the search's levels) */
    for (int g = 0; g < QK_K / 16; g++) {
        const float d = lb_f16_to_f32(y->d) * (float)y->scales[g];
        if (!d) continue;
        for (int i = 0; i < 16; i++) {
            const int l   = lb_kq_nearest_int(x[16 * g + i] / d);
            L[16 * g + i] = (int8_t)(lb_kq_clamp(l, -32, 31) + 32);
        }
    }
    for (int h = 0; h < 2; h++) {
        const int8_t *v  = L + 128 * h;
        uint8_t      *ql = y->ql + 64 * h, *qh = y->qh + 32 * h;
        for (int l = 0; l < 32; l++) {
            ql[l]      = (uint8_t)((v[l] & 0xF) | (v[l + 64] & 0xF) << 4);
            ql[l + 32] = (uint8_t)((v[l + 32] & 0xF) | (v[l + 96] & 0xF) << 4);
            qh[l]      = (uint8_t)(v[l] >> 4 | (v[l + 32] >> 4) << 2 | (v[l + 64] >> 4) << 4 |
                              (v[l + 96] >> 4) << 6);
        }
    }
}

void lb_quantize_row_q6_k_ref(void *dst, const float *x, int64_t n) {
    lb_block_q6_k *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++) q6_k_block(&y[i], x + i * QK_K, NULL);
}

/* With importance, the group searches weight values by the importance alone (as ggml). */
size_t lb_quantize_q6_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    const size_t rs = (size_t)(n_per_row / QK_K) * sizeof(lb_block_q6_k);
    for (int64_t r = 0; r < nrow; r++) {
        lb_block_q6_k *y = (lb_block_q6_k *)((uint8_t *)dst + (size_t)r * rs);
        for (int64_t i = 0; i < n_per_row / QK_K; i++) {
            const float *imp = importance ? importance + i * QK_K : NULL;
            q6_k_block(&y[i], src + r * n_per_row + i * QK_K, imp);
        }
    }
    return (size_t)nrow * rs;
}

void lb_dequantize_row_q6_k(float *y, const void *src, int64_t n) {
    const lb_block_q6_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = lb_f16_to_f32(b[i].d);
        for (int v = 0; v < QK_K; v++) {
            const int h = v / 128, k = v % 128 / 32, l = v % 32;
            const int lo = (b[i].ql[64 * h + l + 32 * (k % 2)] >> (4 * (k / 2))) & 0xF;
            const int hi = (b[i].qh[32 * h + l] >> (2 * k)) & 3;
            /* as ggml: (d * scale) * level, in that order */
            *y++ = d * (float)b[i].scales[v / 16] * (float)((lo | hi << 4) - 32);
        }
    }
}
