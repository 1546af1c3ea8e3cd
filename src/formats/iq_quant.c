/* The importance-weighted quantizers of IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S, which give
 * llama-quantize's bytes: one search, parameterized by a row of k_iq, as ggml's
 * quantize_row_iq2_*_impl and quantize_row_iq3_*_impl do it (float operation for float
 * operation). Per super-block of 256 and per block of 16 or 32 values:
 *   1. weights w = imp * sqrt(sigma^2 + x^2) (sigma^2 a multiple of the super-block's mean
 *      square), or the type's fallback without an importance matrix;
 *   2. signs: |x| is fit and the signs stored, 8 per byte, or 7 per 8 values with the eighth
 *      implied by even parity (the weakest value's sign flipped to make it so);
 *   3. a scan of candidate scales: each group of `dim` values rounded to the odd-integer
 *      levels 2l + 1 and, when that pattern is not a grid point, moved to the best of its
 *      nearest grid points (iq_grid.h); the scale of the best weighted fit wins;
 *   4. the groups re-rounded at that scale (which groups: the type's rule), the scale refit;
 *   5. the block scales stored on 4 bits against the super-block's d = max scale / 31, d
 *      written with the type's fudge factor. */
#include <float.h>
#include <stdbool.h>
#include <string.h>

#include "formats.h"
#include "iq_grid.h"
#include "kquant_common.h"
#include "lowbit/core.h"

enum refine { REFINE_OFF_GRID, REFINE_ALL_IF_OFF_GRID, REFINE_ALWAYS };

typedef struct iq_params {
    lb_iq_grid_id grid;
    int32_t       block;       /* values per block scale: 16 or 32 */
    int32_t       kmax;        /* levels per position: 3 (IQ2) or 8 (IQ3) */
    float         sigma_mult;  /* sigma^2 = sigma_mult * sum x^2 / 256 */
    float         eps;         /* a block whose largest |x| is below this is zero */
    bool          parity;      /* 7 stored signs per 8, even parity */
    bool          from_qp;     /* start from make_qp_quants's scale (IQ2_XXS), else from max */
    int32_t       is_lo, is_hi;
    float         is_step;
    enum refine   refine;
    bool          init_on_grid;
    float         fudge;       /* d is stored as d * fudge */
    /* weight without an importance matrix: x^2 (0) or sigma^2 / 4 + x^2 (1); -1: required */
    int32_t       no_imp;
} iq_params;

static const iq_params k_iq2_xxs = { LB_IQG_IQ2XXS, 32, 3, 1, 1e-15f, true, true, -6, 6, 0.1f,
                                     REFINE_ALWAYS, true, 1.0f, -1 };
static const iq_params k_iq2_xs  = { LB_IQG_IQ2XS, 16, 3, 1, 1e-15f, true, false, -9, 9, 0.1f,
                                     REFINE_OFF_GRID, true, 1.0f, -1 };
static const iq_params k_iq2_s   = { LB_IQG_IQ2S, 16, 3, 2, 1e-8f, false, false, -9, 9, 0.1f,
                                     REFINE_OFF_GRID, true, 0.9875f, 1 };
static const iq_params k_iq3_xxs = { LB_IQG_IQ3XXS, 32, 8, 2, 1e-8f, true, false, -15, 15, 0.2f,
                                     REFINE_OFF_GRID, true, 1.0125f, 0 };
static const iq_params k_iq3_s   = { LB_IQG_IQ3S, 32, 8, 2, FLT_TRUE_MIN, false, false, -9, 9, 0.2f,
                                     REFINE_ALL_IF_OFF_GRID, false, 1.033f, 0 };

/* The grid point nearest to xval (weighted by waux) among the neighbours of an off-grid
 * pattern, at this scale; writes its levels to L (first of equals, as ggml). */
static int32_t best_neighbour(const lb_iq_grid *g, const uint16_t *nb, const float *xval,
                              const float *waux, float scale, int8_t *L) {
    float   best = FLT_MAX;
    int32_t p    = nb[1];
    for (int32_t j = 1; j <= nb[0]; j++) {
        const int8_t *pg = g->odd + g->dim * nb[j];
        float         d2 = 0;
        for (int32_t i = 0; i < g->dim; i++) {
            const float diff = scale * (float)pg[i] - xval[i];
            d2 += waux[i] * diff * diff;
        }
        if (d2 < best) best = d2, p = nb[j];
    }
    for (int32_t i = 0; i < g->dim; i++) L[i] = (int8_t)((g->odd[g->dim * p + i] - 1) / 2);
    return p;
}

/* Round one group to levels at inverse scale id; on the grid: its point, else the best
 * neighbour at `scale` (levels into L either way). Returns the point; *on says which. */
static int32_t round_group(const iq_params *P, const lb_iq_grid *g, const float *xval,
                           const float *waux, float id, float scale, int8_t *L, bool *on) {
    uint32_t u = 0;
    for (int32_t i = 0; i < g->dim; i++) {
        L[i] = (int8_t)lb_kq_clamp(lb_kq_nearest_int(0.5f * (id * xval[i] - 1)), 0, P->kmax - 1);
        u |= (uint32_t)L[i] << (g->bits * i);
    }
    const int32_t p = g->map[u];
    *on             = p >= 0;
    return p >= 0 ? p : best_neighbour(g, g->neighbours - p - 1, xval, waux, scale, L);
}

static void fit_sums(int32_t n, const float *w, const float *xval, const int8_t *L, float *sqx,
                     float *sq2) {
    float sumqx = 0, sumq2 = 0;
    for (int32_t i = 0; i < n; i++) {
        const float q = (float)(2 * L[i] + 1);
        sumqx += w[i] * xval[i] * q;
        sumq2 += w[i] * q * q;
    }
    *sqx = sumqx, *sq2 = sumq2;
}

/* Steps 3-4 for one block of n = P->block values (|x| in xval): false when the block is
 * zero (stored as zeros); else the scale into *scale and each group's point into pt. */
static bool fit_block(const iq_params *P, const lb_iq_grid *g, int32_t n, const float *xval,
                      const float *w, const float *waux, float *scale_out, uint16_t *pt) {
    int8_t  L[32], Laux[32];
    bool    on[8], on_aux[8];
    const int32_t ng = n / g->dim;
    float   max = xval[0];
    for (int32_t i = 1; i < n; i++) max = max > xval[i] ? max : xval[i];
    if (max < P->eps) return false;
    float scale, eff_max = max;
    if (P->from_qp) {
        scale   = lb_kq_make_qp_quants(n, P->kmax + 1, xval, (uint8_t *)L, w);
        eff_max = scale * (float)P->kmax;
        if (eff_max <= 0) return false;
    } else {
        scale = max / (float)(2 * P->kmax - 1);
        memset(L, 0, (size_t)n);
    }
    for (int32_t k = 0; k < ng; k++) on[k] = P->init_on_grid;
    float best = 0;
    for (int32_t is = P->is_lo; is <= P->is_hi; is++) {
        const float id = ((float)(2 * P->kmax - 1) + (float)is * P->is_step) / eff_max;
        const float this_scale = 1 / id;
        for (int32_t k = 0; k < ng; k++)
            round_group(P, g, xval + g->dim * k, waux + g->dim * k, id, this_scale,
                        Laux + g->dim * k, &on_aux[k]);
        float sumqx, sumq2;
        fit_sums(n, w, xval, Laux, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best  = scale * sumqx;
            memcpy(L, Laux, (size_t)n);
            memcpy(on, on_aux, sizeof on);
        }
    }
    bool off = false;
    for (int32_t k = 0; k < ng; k++) off |= !on[k];
    if (scale > 0 && (off || P->refine == REFINE_ALWAYS)) {
        const float id = 1 / scale;
        for (int32_t k = 0; k < ng; k++) {
            bool ignored;
            if (P->refine != REFINE_OFF_GRID || !on[k])
                round_group(P, g, xval + g->dim * k, waux + g->dim * k, id, scale, L + g->dim * k,
                            &ignored);
        }
        float sumqx, sumq2;
        fit_sums(n, w, xval, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    /* every group's levels now form a grid point (ggml aborts otherwise; the scan leaves
     * none off the grid) */
    for (int32_t k = 0; k < ng; k++) {
        uint32_t u = 0;
        for (int32_t i = 0; i < g->dim; i++) u |= (uint32_t)L[g->dim * k + i] << (g->bits * i);
        pt[k] = (uint16_t)(g->map[u] >= 0 ? g->map[u] : 0);
    }
    *scale_out = scale;
    return true;
}

/* Step 2 for 8 values: |x| into xval and the sign bits (even parity: bit 7 implied) */
static uint8_t signs8(const iq_params *P, const float *x, const float *w, float *xval) {
    uint8_t s = 0;
    int     nflip = 0;
    for (int i = 0; i < 8; i++) {
        xval[i] = x[i] >= 0 ? x[i] : -x[i];
        if (x[i] < 0) s |= (uint8_t)(1 << i), nflip++;
    }
    if (P->parity && nflip % 2) {
        int   imin = 0;
        float min  = w[0] * x[0] * x[0];
        for (int i = 1; i < 8; i++) {
            const float ax = w[i] * x[i] * x[i];
            if (ax < min) min = ax, imin = i;
        }
        xval[imin] = -xval[imin];
        s ^= (uint8_t)(1 << imin);
    }
    return P->parity ? s & 127 : s;
}

/* What one block's fit leaves for the type's store: points, signs per 8 and the scale. */
typedef struct iq_block {
    uint16_t pt[8];
    uint8_t  signs[4];
    float    scale;
} iq_block;

typedef void (*iq_store_fn)(void *y, int32_t ib, const iq_block *b);
typedef void (*iq_scales_fn)(void *y, const uint8_t *l, uint16_t d);

/* Steps 1-5 over a row; store writes a block's points and signs, scales the 4-bit scales
 * and d (the block bytes are zeroed first). */
static size_t quantize_rows(const iq_params *P, size_t block_bytes, iq_store_fn store,
                            iq_scales_fn scales, void *dst, const float *src, int64_t nrow,
                            int64_t n_per_row, const float *imp) {
    const lb_iq_grid *g  = lb_iq_grid_search(P->grid);
    const int32_t     nb = QK_K / P->block;
    uint8_t          *y  = dst;
    for (int64_t r = 0; r < nrow; r++)
        for (int64_t ibl = 0; ibl < n_per_row / QK_K; ibl++, src += QK_K, y += block_bytes) {
            memset(y, 0, block_bytes);
            float sumx2 = 0;
            for (int i = 0; i < QK_K; i++) sumx2 += src[i] * src[i];
            const float sigma2 = P->sigma_mult * sumx2 / QK_K;
            float       sc[QK_K / 16], max_scale = 0;
            for (int32_t ib = 0; ib < nb; ib++) {
                const float *xb = src + P->block * ib;
                float        w[32], waux[32], xval[32];
                for (int32_t i = 0; i < P->block; i++)
                    w[i] = imp ? imp[QK_K * ibl + P->block * ib + i] * sqrtf(sigma2 + xb[i] * xb[i])
                         : P->no_imp == 1 ? 0.25f * sigma2 + xb[i] * xb[i]
                                          : xb[i] * xb[i];
                for (int32_t i = 0; i < P->block; i++) waux[i] = sqrtf(w[i]);
                iq_block b = { 0 };
                for (int32_t k = 0; k < P->block / 8; k++)
                    b.signs[k] = signs8(P, xb + 8 * k, w + 8 * k, xval + 8 * k);
                sc[ib] = 0;
                if (!fit_block(P, g, P->block, xval, w, waux, &b.scale, b.pt)) continue;
                if (b.scale < 0) {          /* never expected; kept as ggml does */
                    b.scale = -b.scale;
                    for (int32_t k = 0; k < P->block / 8; k++)
                        b.signs[k] = (uint8_t)(~b.signs[k] & (P->parity ? 127 : 255));
                }
                store(y, ib, &b);
                sc[ib]    = b.scale;
                max_scale = max_scale > b.scale ? max_scale : b.scale;
            }
            if (max_scale == 0) {
                memset(y, 0, block_bytes);
                continue;
            }
            const float d  = max_scale / 31;
            const float id = 1 / d;
            uint8_t     l[QK_K / 16];
            for (int32_t ib = 0; ib < nb; ib++)
                l[ib] = (uint8_t)lb_kq_clamp(lb_kq_nearest_int(0.5f * (id * sc[ib] - 1)), 0, 15);
            scales(y, l, lb_f32_to_f16(d * P->fudge));
        }
    return (size_t)(nrow * (n_per_row / QK_K)) * block_bytes;
}

/* ---- each type's block store ---- */

static void store_iq2_xxs(void *vy, int32_t ib, const iq_block *b) {
    lb_block_iq2_xxs *y = vy;
    uint32_t          w[2] = { 0, 0 };
    for (int k = 0; k < 4; k++) w[0] |= (uint32_t)b->pt[k] << 8 * k, w[1] |= (uint32_t)b->signs[k] << 7 * k;
    memcpy(y->qs + 4 * ib, w, sizeof w);
}
static void scales_iq2_xxs(void *vy, const uint8_t *l, uint16_t d) {
    lb_block_iq2_xxs *y = vy;
    y->d = d;
    for (int ib = 0; ib < QK_K / 32; ib++) y->qs[4 * ib + 3] |= (uint16_t)(l[ib] << 12);
}

static void store_iq2_xs(void *vy, int32_t ib, const iq_block *b) {
    lb_block_iq2_xs *y = vy;
    for (int k = 0; k < 2; k++) y->qs[2 * ib + k] = (uint16_t)(b->pt[k] | b->signs[k] << 9);
}
static void scales_pairs(uint8_t *scales, const uint8_t *l, int n) {
    for (int i = 0; i < n; i += 2) scales[i / 2] = (uint8_t)(l[i] | l[i + 1] << 4);
}
static void scales_iq2_xs(void *vy, const uint8_t *l, uint16_t d) {
    lb_block_iq2_xs *y = vy;
    y->d = d;
    scales_pairs(y->scales, l, QK_K / 16);
}

static void store_iq2_s(void *vy, int32_t ib, const iq_block *b) {
    lb_block_iq2_s *y = vy;
    for (int k = 0; k < 2; k++) {
        const int i8 = 2 * ib + k;
        y->qs[i8] = (uint8_t)b->pt[k];
        y->qh[i8 / 4] |= (uint8_t)((b->pt[k] >> 8) << 2 * (i8 % 4));
        y->qs[QK_K / 8 + i8] = b->signs[k];
    }
}
static void scales_iq2_s(void *vy, const uint8_t *l, uint16_t d) {
    lb_block_iq2_s *y = vy;
    y->d = d;
    scales_pairs(y->scales, l, QK_K / 16);
}

static void store_iq3_xxs(void *vy, int32_t ib, const iq_block *b) {
    lb_block_iq3_xxs *y = vy;
    uint32_t          s = 0;
    for (int k = 0; k < 8; k++) y->qs[8 * ib + k] = (uint8_t)b->pt[k];
    for (int k = 0; k < 4; k++) s |= (uint32_t)b->signs[k] << 7 * k;
    memcpy(y->qs + QK_K / 4 + 4 * ib, &s, sizeof s);
}
static void scales_iq3_xxs(void *vy, const uint8_t *l, uint16_t d) {
    lb_block_iq3_xxs *y = vy;
    y->d = d;
    for (int ib = 0; ib < QK_K / 32; ib++) y->qs[QK_K / 4 + 4 * ib + 3] |= (uint8_t)(l[ib] << 4);
}

static void store_iq3_s(void *vy, int32_t ib, const iq_block *b) {
    lb_block_iq3_s *y = vy;
    for (int k = 0; k < 8; k++) {
        y->qs[8 * ib + k] = (uint8_t)b->pt[k];
        y->qh[ib] |= (uint8_t)((b->pt[k] >> 8) << k);
    }
    memcpy(y->signs + 4 * ib, b->signs, 4);
}
static void scales_iq3_s(void *vy, const uint8_t *l, uint16_t d) {
    lb_block_iq3_s *y = vy;
    y->d = d;
    scales_pairs(y->scales, l, QK_K / 32);
}

#define IQ_QUANTIZER(X)                                                                            \
    size_t lb_quantize_##X(void *dst, const float *src, int64_t nrow, int64_t n_per_row,          \
                           const float *importance) {                                              \
        return quantize_rows(&k_##X, sizeof(lb_block_##X), store_##X, scales_##X, dst, src, nrow, \
                             n_per_row, importance);                                               \
    }                                                                                              \
    void lb_quantize_row_##X##_ref(void *dst, const float *src, int64_t n) {                       \
        lb_quantize_##X(dst, src, 1, n, NULL);                                                     \
    }
IQ_QUANTIZER(iq2_xxs)
IQ_QUANTIZER(iq2_xs)
IQ_QUANTIZER(iq2_s)
IQ_QUANTIZER(iq3_xxs)
IQ_QUANTIZER(iq3_s)
