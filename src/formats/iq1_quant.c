/* The importance-weighted quantizers of IQ1_S and IQ1_M, which give llama-quantize's bytes
 * (as ggml's quantize_row_iq1_s_impl / iq1_m_impl, float operation for float operation).
 * Per block (32 values for IQ1_S, 16 for IQ1_M):
 *   1. weights w = imp * sqrt(sigma^2 + x^2), sigma^2 twice the super-block's mean square;
 *   2. the exact best split of the sorted values into the three levels -1, 0, 1 (shifted by
 *      +1/8 or -1/8: per block for IQ1_S, per 8 values for IQ1_M), by weighted least squares
 *      over every pair of boundaries;
 *   3. each 8 values' levels moved to the nearest grid point when the pattern is not one, and
 *      the scale refit;
 *   4. the block scales on 3 bits against d = max / 15; IQ1_M then refits d itself over the
 *      stored scales and points. */
#include <float.h>
#include <stdbool.h>
#include <string.h>

#include "formats.h"
#include "iq_grid.h"
#include "kquant_common.h"
#include "lowbit/core.h"


static const float k_xp[3] = { -1 + LB_IQ1_DELTA, LB_IQ1_DELTA, 1 + LB_IQ1_DELTA };
static const float k_xm[3] = { -1 - LB_IQ1_DELTA, -LB_IQ1_DELTA, 1 - LB_IQ1_DELTA };

/* idx = the positions of x[0..n) by ascending value, equal values in position order (what
 * glibc's merge-sort qsort gives ggml) */
static void sort_positions(const float *x, int n, int *idx) {
    for (int j = 0; j < n; j++) {
        int i = j;
        for (; i > 0 && x[idx[i - 1]] > x[j]; i--) idx[i] = idx[i - 1];
        idx[i] = j;
    }
}

static void weights(const float *xb, int n, const float *imp, float sigma2, float *w) {
    for (int i = 0; i < n; i++) w[i] = imp ? imp[i] * sqrtf(sigma2 + xb[i] * xb[i]) : xb[i] * xb[i];
}

/* 8 values' level pattern onto the grid: the point, or its neighbour nearest to x at scale
 * (weighted); levels l map to values xx[l]. Sets *on when the pattern was a point. */
static int32_t to_grid(const lb_iq_grid *g, const int8_t *L, const float *x, const float *w,
                       float scale, const float *xx, bool *on) {
    uint32_t u = 0;
    for (int j = 0; j < 8; j++) u |= (uint32_t)L[j] << 2 * j;
    if (g->map[u] >= 0) return *on = true, g->map[u];
    *on                = false;
    const uint16_t *nb = g->neighbours - g->map[u] - 1;
    float           best = FLT_MAX;
    int32_t         p    = nb[1];
    for (int32_t k = 1; k <= nb[0]; k++) {
        const int8_t *pg = g->odd + 8 * nb[k];
        float         d2 = 0;
        for (int j = 0; j < 8; j++) {
            const float diff = scale * xx[(pg[j] - 1) / 2] - x[j];
            d2 += w[j] * diff * diff;
        }
        if (d2 < best) best = d2, p = nb[k];
    }
    return p;
}

static void point_sums(const lb_iq_grid *g, int32_t p, const float *x, const float *w,
                       const float *xx, float mult, float *sqx, float *sq2) {
    const int8_t *pg = g->odd + 8 * p;
    for (int j = 0; j < 8; j++) {
        const float q = xx[(pg[j] - 1) / 2] * mult;
        *sqx += w[j] * q * x[j];
        *sq2 += w[j] * q * q;
    }
}

/* ---- IQ1_S: blocks of 32, one shift per block ---- */

/* Steps 2-3 for one block: false when zero; else scale, shift (+1/-1) and the 4 points. */
static bool iq1s_block(const lb_iq_grid *g, const float *xb, const float *w, float max,
                       float *scale_out, int *shift_out, uint16_t *pt) {
    enum { N = 32 };
    if (max < 1e-12f) return false;
    int   idx[N];
    float sumx[N + 1], sumw[N + 1];
    sort_positions(xb, N, idx);
    sumx[0] = sumw[0] = 0;
    for (int j = 0; j < N; j++) {
        sumx[j + 1] = sumx[j] + w[idx[j]] * xb[idx[j]];
        sumw[j + 1] = sumw[j] + w[idx[j]];
    }
    float best = -FLT_MAX, scale = max;
    int   b1 = -1, b2 = -1, shift = 0;
    for (int i1 = 0; i1 <= N; i1++)
        for (int i2 = i1; i2 <= N; i2++)
            for (int s = 0; s < 2; s++) {
                const float *v = s == 0 ? k_xp : k_xm;
                const float  sqx = (sumx[i1] - sumx[0]) * v[0] + (sumx[i2] - sumx[i1]) * v[1] +
                                  (sumx[N] - sumx[i2]) * v[2];
                const float sq2 = (sumw[i1] - sumw[0]) * v[0] * v[0] +
                                  (sumw[i2] - sumw[i1]) * v[1] * v[1] +
                                  (sumw[N] - sumw[i2]) * v[2] * v[2];
                if (sq2 > 0 && sqx * sqx > best * sq2) {
                    scale = sqx / sq2, best = scale * sqx;
                    b1 = i1, b2 = i2, shift = s == 0 ? 1 : -1;
                }
            }
    if (b1 < 0 || b2 < 0 || shift == 0) return false;
    int8_t L[N];
    for (int j = 0; j < N; j++) L[idx[j]] = (int8_t)(j < b1 ? 0 : j < b2 ? 1 : 2);
    if (scale < 0) {
        for (int j = 0; j < N; j++) L[j] = (int8_t)(2 - L[j]);
        scale = -scale, shift = -shift;
    }
    const float *xx  = shift == 1 ? k_xp : k_xm;
    bool         all = true;
    for (int k = 0; k < N / 8; k++) {
        bool on;
        pt[k] = (uint16_t)to_grid(g, L + 8 * k, xb + 8 * k, w + 8 * k, scale, xx, &on);
        all &= on;
    }
    if (!all) {
        float sqx = 0, sq2 = 0;
        for (int k = 0; k < N / 8; k++) point_sums(g, pt[k], xb + 8 * k, w + 8 * k, xx, 1, &sqx, &sq2);
        if (sqx > 0 && sq2 > 0) scale = sqx / sq2;
    }
    *scale_out = scale, *shift_out = shift;
    return true;
}

size_t lb_quantize_iq1_s(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                         const float *imp) {
    const lb_iq_grid *g = lb_iq_grid_search(LB_IQG_IQ1S);
    lb_block_iq1_s   *y = dst;
    for (int64_t r = 0; r < nrow; r++)
        for (int64_t ibl = 0; ibl < n_per_row / QK_K; ibl++, y++, src += QK_K) {
            memset(y, 0, sizeof *y);
            float sumx2 = 0, scales[QK_K / 32], max_scale = 0;
            int   shifts[QK_K / 32];
            for (int i = 0; i < QK_K; i++) sumx2 += src[i] * src[i];
            const float sigma2 = 2 * sumx2 / QK_K;
            for (int ib = 0; ib < QK_K / 32; ib++) {
                const float *xb = src + 32 * ib;
                float        w[32], max = fabsf(xb[0]);
                uint16_t     pt[4];
                weights(xb, 32, imp ? imp + QK_K * ibl + 32 * ib : NULL, sigma2, w);
                for (int i = 1; i < 32; i++) max = fmaxf(max, fabsf(xb[i]));
                scales[ib] = 0, shifts[ib] = 1;
                if (!iq1s_block(g, xb, w, max, &scales[ib], &shifts[ib], pt)) continue;
                for (int k = 0; k < 4; k++) {
                    y->qs[4 * ib + k] = (uint8_t)pt[k];
                    y->qh[ib] |= (uint16_t)((pt[k] >> 8) << 3 * k);
                }
                max_scale = fmaxf(max_scale, scales[ib]);
            }
            if (max_scale == 0) continue;
            const float d  = max_scale / 15;
            const float id = 1 / d;
            y->d           = lb_f32_to_f16(d * 1.125f);
            for (int ib = 0; ib < QK_K / 32; ib++) {
                int l = lb_kq_clamp(lb_kq_nearest_int(0.5f * (id * scales[ib] - 1)), 0, 7);
                if (shifts[ib] == -1) l |= 8;
                y->qh[ib] |= (uint16_t)(l << 12);
            }
        }
    return (size_t)(nrow * (n_per_row / QK_K)) * sizeof(lb_block_iq1_s);
}

/* ---- IQ1_M: blocks of 16, a shift per 8 values (k: bit 1 the first 8's, bit 0 the
 * second's; set = -1/8) ---- */

static const float *iq1m_xx(int k, int half) {
    return (half == 0 ? k >> 1 : k & 1) ? k_xm : k_xp;
}

static bool iq1m_block(const lb_iq_grid *g, const float *xb, const float *w, float max,
                       float *scale_out, int *k_out, uint16_t *pt) {
    enum { N = 16 };
    if (max < 1e-7f) return false;
    int idx[N];
    sort_positions(xb, N, idx);
    float best = -FLT_MAX, scale = max;
    int   b1 = -1, b2 = -1, bk = -1;
    for (int i1 = 0; i1 <= N; i1++)
        for (int i2 = i1; i2 <= N; i2++) {
            float sqx[4] = { 0 }, sq2[4] = { 0 };
            for (int j = 0; j < N; j++) {
                const int i = idx[j], l = j < i1 ? 0 : j < i2 ? 1 : 2;
                for (int k = 0; k < 4; k++) {
                    const float v = iq1m_xx(k, i >= N / 2)[l];
                    sqx[k] += w[i] * v * xb[i];
                    sq2[k] += w[i] * v * v;
                }
            }
            for (int k = 0; k < 4; k++)
                if (sq2[k] > 0 && sqx[k] * sqx[k] > best * sq2[k]) {
                    scale = sqx[k] / sq2[k], best = scale * sqx[k];
                    b1 = i1, b2 = i2, bk = k;
                }
        }
    if (b1 < 0 || b2 < 0 || bk < 0) return false;
    int8_t L[N];
    for (int j = 0; j < N; j++) L[idx[j]] = (int8_t)(j < b1 ? 0 : j < b2 ? 1 : 2);
    if (scale < 0) {
        for (int j = 0; j < N; j++) L[j] = (int8_t)(2 - L[j]);
        scale = -scale, bk = 3 - bk;
    }
    bool all = true;
    for (int k = 0; k < 2; k++) {
        bool on;
        pt[k] = (uint16_t)to_grid(g, L + 8 * k, xb + 8 * k, w + 8 * k, scale, iq1m_xx(bk, k), &on);
        all &= on;
    }
    if (!all) {
        float sqx = 0, sq2 = 0;
        for (int k = 0; k < 2; k++) point_sums(g, pt[k], xb + 8 * k, w + 8 * k, iq1m_xx(bk, k), 1, &sqx, &sq2);
        if (sqx > 0 && sq2 > 0) scale = sqx / sq2;
    }
    *scale_out = scale, *k_out = bk;
    return true;
}

size_t lb_quantize_iq1_m(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                         const float *imp) {
    static const uint8_t masks[4] = { 0x00, 0x80, 0x08, 0x88 };
    const lb_iq_grid    *g = lb_iq_grid_search(LB_IQG_IQ1S);
    lb_block_iq1_m      *y = dst;
    for (int64_t r = 0; r < nrow; r++)
        for (int64_t ibl = 0; ibl < n_per_row / QK_K; ibl++, y++, src += QK_K) {
            memset(y, 0, sizeof *y);
            float sumx2 = 0, scales[QK_K / 16], max_scale = 0;
            int   shifts[QK_K / 16];
            for (int i = 0; i < QK_K; i++) sumx2 += src[i] * src[i];
            const float sigma2 = 2 * sumx2 / QK_K;
            const float *bimp  = imp ? imp + QK_K * ibl : NULL;
            for (int ib = 0; ib < QK_K / 16; ib++) {
                const float *xb = src + 16 * ib;
                float        w[16], max = fabsf(xb[0]);
                uint16_t     pt[2];
                weights(xb, 16, bimp ? bimp + 16 * ib : NULL, sigma2, w);
                for (int i = 1; i < 16; i++) max = fmaxf(max, fabsf(xb[i]));
                scales[ib] = 0, shifts[ib] = 0;
                if (!iq1m_block(g, xb, w, max, &scales[ib], &shifts[ib], pt)) continue;
                y->qs[2 * ib]     = (uint8_t)pt[0];
                y->qs[2 * ib + 1] = (uint8_t)pt[1];
                y->qh[ib]         = (uint8_t)((pt[0] >> 8) | (pt[1] >> 8) << 4);
                max_scale         = fmaxf(max_scale, scales[ib]);
            }
            if (max_scale == 0) continue;
            /* the 3-bit scales, then d refit over every block as stored (zero blocks too) */
            uint16_t    sc[4] = { 0 };
            float       d = max_scale / 15, sqx = 0, sq2 = 0;
            const float id = 1 / d;
            for (int ib = 0; ib < QK_K / 16; ib++) {
                const int l = lb_kq_clamp(lb_kq_nearest_int(0.5f * (id * scales[ib] - 1)), 0, 7);
                sc[ib / 4] |= (uint16_t)(l << 3 * (ib % 4));
                y->qh[ib] |= masks[shifts[ib]];
                const float *xb = src + 16 * ib;
                float        w[16];
                weights(xb, 16, bimp ? bimp + 16 * ib : NULL, sigma2, w);
                for (int k = 0; k < 2; k++) {
                    const int32_t p = y->qs[2 * ib + k] | (y->qh[ib] << (8 - 4 * k) & 0x700);
                    point_sums(g, p, xb + 8 * k, w + 8 * k, iq1m_xx(shifts[ib], k), (float)(2 * l + 1), &sqx, &sq2);
                }
            }
            if (sq2 > 0) d = sqx / sq2;
            const uint16_t s = lb_f32_to_f16(d * 1.1125f);
            sc[0] |= (uint16_t)((s & 0x000f) << 12);
            sc[1] |= (uint16_t)((s & 0x00f0) << 8);
            sc[2] |= (uint16_t)((s & 0x0f00) << 4);
            sc[3] |= (uint16_t)(s & 0xf000);
            memcpy(y->scales, sc, sizeof sc);
        }
    return (size_t)(nrow * (n_per_row / QK_K)) * sizeof(lb_block_iq1_m);
}

void lb_quantize_row_iq1_s_ref(void *dst, const float *src, int64_t n) {
    lb_quantize_iq1_s(dst, src, 1, n, NULL);
}
void lb_quantize_row_iq1_m_ref(void *dst, const float *src, int64_t n) {
    lb_quantize_iq1_m(dst, src, 1, n, NULL);
}
