/* Q2_K: super-blocks of 256 values in 16 groups of 16, affine per group:
 * x = d * sc * q - dmin * m with q in 0..3, sc and m 4-bit (the low and high nibble of
 * scales[g]), d and dmin half floats (2.625 bpw). Value 128 h + 32 k + l (h < 2, k < 4,
 * l < 32) sits in bits 2k of qs[32 h + l]. */
#include <math.h>
#include <string.h>

#include "formats.h"
#include "kquant_common.h"
#include "lowbit/core.h"

/* Re-round every group on its stored (half-precision, 4-bit) scale and min, then pack. */
static void q2_k_finish(lb_block_q2_k *y, const float *x, uint8_t *L) {
    const float d = lb_f16_to_f32(y->d), dmin = lb_f16_to_f32(y->dmin);
    for (int g = 0; g < QK_K / 16; g++) {
        const float dg = d * (float)(y->scales[g] & 0xF);
        if (!dg) continue; /* keep the levels of the search */
        const float mg = dmin * (float)(y->scales[g] >> 4);
        for (int i = 0; i < 16; i++) {
            const int l   = lb_kq_nearest_int((x[16 * g + i] + mg) / dg);
            L[16 * g + i] = (uint8_t)lb_kq_clamp(l, 0, 3);
        }
    }
    for (int h = 0; h < QK_K; h += 128)
        for (int l = 0; l < 32; l++)
            y->qs[h / 4 + l] = (uint8_t)(L[h + l] | L[h + l + 32] << 2 | L[h + l + 64] << 4 |
                                         L[h + l + 96] << 6);
}

void lb_quantize_row_q2_k_ref(void *dst, const float *x, int64_t n) {
    lb_block_q2_k *y = dst;
    uint8_t        L[QK_K], Laux[16];
    float          w[16], mins[QK_K / 16], scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_min = 0; /* scales are positive: the min is subtracted */
        for (int g = 0; g < QK_K / 16; g++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * g + l]);
            scales[g] = lb_kq_make_qkx_quants(16, 3, x + 16 * g, w, L + 16 * g, &mins[g], Laux,
                                              -0.5f, 0.1f, 15, 1);
            if (scales[g] > max_scale) max_scale = scales[g];
            if (mins[g] > max_min) max_min = mins[g];
        }
        /* the group scales and mins on 4 bits, relative to the largest of each */
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int g = 0; g < QK_K / 16; g++)
                y[i].scales[g] = (uint8_t)lb_kq_nearest_int(iscale * scales[g]);
            y[i].d = lb_f32_to_f16(max_scale / 15.f);
        } else {
            memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = lb_f32_to_f16(0.f);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int g = 0; g < QK_K / 16; g++)
                y[i].scales[g] |= (uint8_t)(lb_kq_nearest_int(iscale * mins[g]) << 4);
            y[i].dmin = lb_f32_to_f16(max_min / 15.f);
        } else {
            y[i].dmin = lb_f32_to_f16(0.f);
        }
        q2_k_finish(&y[i], x, L);
    }
}

/* One row with importance: the searches weight each value by imp * sqrt(sigma^2 + x^2), and
 * the 4-bit scales and mins are fitted to the group scales weighted by the groups' weight. */
static void q2_k_row_imatrix(lb_block_q2_k *y, const float *x, int64_t n, const float *imp) {
    uint8_t L[QK_K], Laux[16], Ls[QK_K / 16], Lm[QK_K / 16];
    float   w[16], mins[QK_K / 16], scales[QK_K / 16], sw[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, imp += QK_K) {
        float sumx2 = 0;
        for (int j = 0; j < QK_K; j++) sumx2 += x[j] * x[j];
        const float sigma2 = sumx2 / (float)QK_K;
        for (int g = 0; g < QK_K / 16; g++) {
            sw[g] = 0;
            for (int l = 0; l < 16; l++) {
                w[l] = imp[16 * g + l] * sqrtf(sigma2 + x[16 * g + l] * x[16 * g + l]);
                sw[g] += w[l];
            }
            scales[g] = lb_kq_make_qkx_quants(16, 3, x + 16 * g, w, L + 16 * g, &mins[g], Laux,
                                              -0.9f, 0.05f, 36, 0);
        }
        const float dm = lb_kq_make_qp_quants(QK_K / 16, 15, scales, Ls, sw);
        const float mm = lb_kq_make_qp_quants(QK_K / 16, 15, mins, Lm, sw);
        y[i].d         = lb_f32_to_f16(dm);
        y[i].dmin      = lb_f32_to_f16(mm);
        for (int g = 0; g < QK_K / 16; g++) y[i].scales[g] = (uint8_t)(Ls[g] | Lm[g] << 4);
        q2_k_finish(&y[i], x, L);
    }
}

size_t lb_quantize_q2_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    const size_t rs = (size_t)(n_per_row / QK_K) * sizeof(lb_block_q2_k);
    for (int64_t r = 0; r < nrow; r++) {
        void *row = (uint8_t *)dst + (size_t)r * rs;
        if (importance) q2_k_row_imatrix(row, src + r * n_per_row, n_per_row, importance);
        else lb_quantize_row_q2_k_ref(row, src + r * n_per_row, n_per_row);
    }
    return (size_t)nrow * rs;
}

void lb_dequantize_row_q2_k(float *y, const void *src, int64_t n) {
    const lb_block_q2_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = lb_f16_to_f32(b[i].d), dmin = lb_f16_to_f32(b[i].dmin);
        for (int g = 0; g < QK_K / 16; g++, y += 16) {
            /* group g: half g / 8, shift 2 * (g % 8 / 2), bytes 16 * (g % 2) .. + 15 */
            const uint8_t *q     = b[i].qs + 32 * (g / 8) + 16 * (g % 2);
            const int      shift = 2 * (g % 8 / 2);
            const uint8_t  sc    = b[i].scales[g]; /* scale in the low nibble, min in the high */
            const float    dl    = d * (float)(sc & 0xF), ml = dmin * (float)(sc >> 4);
            for (int l = 0; l < 16; l++) y[l] = dl * (float)((q[l] >> shift) & 3) - ml;
        }
    }
}
