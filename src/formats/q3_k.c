/* Q3_K: super-blocks of 256 values in 16 groups of 16, symmetric: x = d * (sc - 32) * (q - 4)
 * with q in 0..7 and sc 6-bit (3.4375 bpw). The low 2 bits of value 128 h + 32 k + l sit in
 * bits 2k of qs[32 h + l] (as Q2_K); its high bit is bit (v / 32) of hmask[v % 32]. Scale g
 * keeps its low 4 bits in a nibble of scales[g % 8] (high nibble for g >= 8) and its high
 * 2 bits in bits 2 (g / 4) of scales[8 + g % 4]. */
#include <math.h>
#include <string.h>

#include "formats.h"
#include "kquant_common.h"
#include "lowbit/core.h"

/* Symmetric levels -nmax .. nmax-1 for n values, weighted by x^2: start from rounding on
 * -nmax / max, then up to 5 passes moving single levels while that improves the fit.
 * Writes L = l + nmax and returns the scale (as ggml's make_q3_quants with do_rmse). */
static float q3_k_make_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max  = x[i];
        }
    }
    if (amax < LB_KQ_GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = (float)-nmax / max;
    float       sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int   l = lb_kq_clamp(lb_kq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        const float w = x[i] * x[i];
        L[i]          = (int8_t)l;
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w   = x[i] * x[i];
            float       slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2   = suml2 - w * (float)L[i] * (float)L[i];
                int   new_l = lb_kq_nearest_int(x[i] * sl2 / slx);
                new_l       = lb_kq_clamp(new_l, -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i]  = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Store the 6-bit scale l (0..63) of group g; scales[] must start zeroed. */
static void q3_k_put_scale(uint8_t *scales, int g, int l) {
    if (g < 8) scales[g] = (uint8_t)(l & 0xF);
    else scales[g - 8] |= (uint8_t)((l & 0xF) << 4);
    scales[8 + g % 4] |= (uint8_t)((l >> 4) << (2 * (g / 4)));
}

/* The signed scale of group g (-32 .. 31): lb_q3_k_scale (kquant_common.h). */

/* Re-round every group on its stored scale, then split the levels into qs and hmask. */
static void q3_k_finish(lb_block_q3_k *y, const float *x, int8_t *L) {
    const float d_all = lb_f16_to_f32(y->d);
    for (int g = 0; g < QK_K / 16; g++) {
        const float d = d_all * (float)lb_q3_k_scale(y->scales, g);
        if (!d) continue; /* keep the levels of the search */
        for (int i = 0; i < 16; i++)
            L[16 * g + i] = (int8_t)(lb_kq_clamp(lb_kq_nearest_int(x[16 * g + i] / d), -4, 3) + 4);
    }
    memset(y->hmask, 0, sizeof y->hmask);
    for (int v = 0; v < QK_K; v++)
        if (L[v] > 3) {
            y->hmask[v % 32] |= (uint8_t)(1 << (v / 32));
            L[v] = (int8_t)(L[v] - 4);
        }
    for (int h = 0; h < QK_K; h += 128)
        for (int l = 0; l < 32; l++)
            y->qs[h / 4 + l] = (uint8_t)(L[h + l] | L[h + l + 32] << 2 | L[h + l + 64] << 4 |
                                         L[h + l + 96] << 6);
}

void lb_quantize_row_q3_k_ref(void *dst, const float *x, int64_t n) {
    lb_block_q3_k *y = dst;
    int8_t         L[QK_K];
    float          scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, amax = 0; /* the group scale of largest magnitude, signed */
        for (int g = 0; g < QK_K / 16; g++) {
            scales[g] = q3_k_make_quants(16, 4, x + 16 * g, L + 16 * g);
            if (fabsf(scales[g]) > amax) {
                amax      = fabsf(scales[g]);
                max_scale = scales[g];
            }
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        if (max_scale != 0) {
            const float iscale = -32.f / max_scale;
            for (int g = 0; g < QK_K / 16; g++) {
                /* ggml keeps the rounded value in an int8_t: same value, it is in -32..32 */
                const int l = lb_kq_clamp((int8_t)lb_kq_nearest_int(iscale * scales[g]), -32, 31);
                q3_k_put_scale(y[i].scales, g, l + 32);
            }
            y[i].d = lb_f32_to_f16(1 / iscale);
        } else {
            y[i].d = lb_f32_to_f16(0.f);
        }
        q3_k_finish(&y[i], x, L);
    }
}

/* One row with importance: group levels weighted by imp * sqrt(2 sigma^2 + x^2), the group
 * scales fitted on 6 bits weighted by the groups' total weight. */
static void q3_k_row_imatrix(lb_block_q3_k *y, const float *x, int64_t n, const float *imp) {
    int8_t L[QK_K], Ls[QK_K / 16];
    float  scales[QK_K / 16], w[16], sw[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, imp += QK_K) {
        float sumx2 = 0;
        for (int j = 0; j < QK_K; j++) sumx2 += x[j] * x[j];
        const float sigma2 = 2 * sumx2 / (float)QK_K;
        for (int g = 0; g < QK_K / 16; g++) {
            for (int l = 0; l < 16; l++)
                w[l] = imp[16 * g + l] * sqrtf(sigma2 + x[16 * g + l] * x[16 * g + l]);
            float sumw = 0;
            for (int l = 0; l < 16; l++) sumw += w[l];
            sw[g]     = sumw;
            scales[g] = lb_kq_make_qx_quants(16, 4, x + 16 * g, L + 16 * g, w);
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        const float d_block = lb_kq_make_qx_quants(QK_K / 16, 32, scales, Ls, sw);
        for (int g = 0; g < QK_K / 16; g++) q3_k_put_scale(y[i].scales, g, Ls[g]);
        y[i].d = lb_f32_to_f16(d_block);
        q3_k_finish(&y[i], x, L);
    }
}

size_t lb_quantize_q3_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    const size_t rs = (size_t)(n_per_row / QK_K) * sizeof(lb_block_q3_k);
    for (int64_t r = 0; r < nrow; r++) {
        void *row = (uint8_t *)dst + (size_t)r * rs;
        if (importance) q3_k_row_imatrix(row, src + r * n_per_row, n_per_row, importance);
        else lb_quantize_row_q3_k_ref(row, src + r * n_per_row, n_per_row);
    }
    return (size_t)nrow * rs;
}

void lb_dequantize_row_q3_k(float *y, const void *src, int64_t n) {
    const lb_block_q3_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = lb_f16_to_f32(b[i].d);
        for (int g = 0; g < QK_K / 16; g++, y += 16) {
            /* group g holds values 16 g .. 16 g + 15: see the layout above */
            const int      v0 = 16 * g, h = v0 / 128, k = v0 % 128 / 32, off = v0 % 32;
            const uint8_t *q  = b[i].qs + 32 * h + off;
            const uint8_t *hm = b[i].hmask + off;
            const int      hb = 4 * h + k; /* the hmask bit of this group */
            const float    dl = d_all * (float)lb_q3_k_scale(b[i].scales, g);
            for (int l = 0; l < 16; l++)
                y[l] = dl * (float)(((q[l] >> (2 * k)) & 3) - ((hm[l] >> hb) & 1 ? 0 : 4));
        }
    }
}
