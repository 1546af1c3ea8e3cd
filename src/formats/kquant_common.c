/* Scale searches shared by the k-quants (see kquant_common.h). The order of every float
 * operation, the rounding (ties to even) and the tie-breaking of comparisons follow ggml's
 * make_qx_quants, make_qkx2_quants / make_qkx3_quants and make_qp_quants: a different
 * order moves scales by an ulp, which flips levels and breaks byte identity. */
#include <math.h>

#include "kquant_common.h"
#include "lowbit/core.h"

/* Weight of value i in make_qx_quants: the caller's, or x^2 (ggml's rmse_type 1). */
static float qx_weight(const float *w, const float *x, int i) {
    return w ? w[i] : x[i] * x[i];
}

float lb_kq_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *w) {
    float max = 0, amax = 0; /* max: the value of largest magnitude, with its sign */
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
    /* first guess: the largest value on level -nmax; scale = sum w x l / sum w l^2 */
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int   l  = lb_kq_clamp(lb_kq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        const float wi = qx_weight(w, x, i);
        L[i] = (int8_t)(l + nmax);
        sumlx += wi * x[i] * (float)l;
        suml2 += wi * (float)l * (float)l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best  = scale * sumlx; /* the fit's gain: sumlx^2 / suml2 */
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int   l  = lb_kq_clamp(lb_kq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float wi = qx_weight(w, x, i);
            sumlx += wi * x[i] * (float)l;
            suml2 += wi * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = lb_kq_nearest_int(iscale * x[i]);
                L[i]        = (int8_t)(nmax + lb_kq_clamp(l, -nmax, nmax - 1));
            }
            scale = sumlx / suml2;
            best  = scale * sumlx;
        }
    }
    return scale;
}

/* Weighted error of x ~ scale * L + min: absolute (mad) or squared. */
static float qkx_error(int n, const float *x, const float *w, const uint8_t *L, float scale,
                       float min, int use_mad) {
    float err = 0;
    for (int i = 0; i < n; i++) {
        float diff = scale * (float)L[i] + min - x[i];
        diff       = use_mad ? fabsf(diff) : diff * diff;
        err += w[i] * diff;
    }
    return err;
}

float lb_kq_make_qkx_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                            float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                            int use_mad) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0; /* the offset only ever lowers the grid */
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale  = 1 / iscale;
    for (int i = 0; i < n; i++)
        L[i] = (uint8_t)lb_kq_clamp(lb_kq_nearest_int(iscale * (x[i] - min)), 0, nmax);
    float best_error = qkx_error(n, x, w, L, scale, min, use_mad);
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale      = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = lb_kq_clamp(lb_kq_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i]     = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        /* least squares for (scale, min) given the levels; min > 0 is not allowed */
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min   = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min   = 0;
                this_scale = sum_xl / sum_l2;
            }
            const float cur_error = qkx_error(n, x, w, Laux, this_scale, this_min, use_mad);
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale      = this_scale;
                min        = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Weighted squared error of x ~ scale * l with l = min(nmax, round(iscale * x)). */
static float qp_error(int n, int nmax, const float *x, const float *w, float iscale, float scale) {
    float mse = 0;
    for (int i = 0; i < n; i++) {
        const int   l    = lb_kq_nearest_int(iscale * x[i]);
        const float diff = x[i] - scale * (float)(l < nmax ? l : nmax);
        mse += w[i] * diff * diff;
    }
    return mse;
}

float lb_kq_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float max = 0;
    for (int i = 0; i < n; i++) max = max > x[i] ? max : x[i];
    if (max < LB_KQ_GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale   = (float)nmax / max;
    float best_mse = 0;
    {   /* the error of the first guess (no clamp needed: x <= max) */
        const float scale = 1 / iscale;
        for (int i = 0; i < n; i++) {
            L[i]             = (uint8_t)lb_kq_nearest_int(iscale * x[i]);
            const float diff = x[i] - scale * (float)L[i];
            best_mse += w[i] * diff * diff;
        }
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        const float mse       = qp_error(n, nmax, x, w, iscale_is, 1 / iscale_is);
        if (mse < best_mse) {
            best_mse = mse;
            iscale   = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = lb_kq_nearest_int(iscale * x[i]);
        l     = l < nmax ? l : nmax;
        L[i]  = (uint8_t)l;
        sumlx += w[i] * x[i] * (float)l;
        suml2 += w[i] * (float)l * (float)l;
    }
    /* move one level at a time to the best level given the others; keep improvements */
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * (float)L[i];
            float sl2 = suml2 - w[i] * (float)L[i] * (float)L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = lb_kq_nearest_int(x[i] * sl2 / slx);
                new_l     = new_l < nmax ? new_l : nmax;
                if (new_l != L[i]) {
                    slx += w[i] * x[i] * (float)new_l;
                    sl2 += w[i] * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i]  = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

void lb_kq_get_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m  = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m  = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void lb_kq_pack_scale_min(uint8_t *q, const uint8_t *ls, const uint8_t *lm) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            q[j]     = ls[j];
            q[j + 4] = lm[j];
        } else { /* bytes j-4 and j were written by group j-4 */
            q[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            q[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            q[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Re-round the levels of the 8 groups on the stored scales and mins (a group whose stored
 * scale is 0 keeps the levels of its search). */
static void requantize_scale_min(const float *x, int nmax, const uint8_t *scales, uint16_t d,
                                 uint16_t dmin, uint8_t *L) {
    for (int g = 0; g < 8; g++) {
        uint8_t sc, m;
        lb_kq_get_scale_min(g, scales, &sc, &m);
        const float dg = lb_f16_to_f32(d) * (float)sc;
        if (!dg) continue;
        const float mg = lb_f16_to_f32(dmin) * (float)m;
        for (int i = 0; i < 32; i++) {
            const int l   = lb_kq_nearest_int((x[32 * g + i] + mg) / dg);
            L[32 * g + i] = (uint8_t)lb_kq_clamp(l, 0, nmax);
        }
    }
}

void lb_kq_fit_scale_min_ref(const float *x, int nmax, float rmin, float rdelta, int nstep,
                             uint8_t *L, uint8_t *scales, uint16_t *d, uint16_t *dmin) {
    float   w[32], gscale[8], gmin[8];
    uint8_t Laux[32], ls[8], lm[8];
    float   max_scale = 0, max_min = 0; /* scales are positive: the min is subtracted */
    for (int g = 0; g < 8; g++) {
        const float *xg     = x + 32 * g;
        float        sum_x2 = 0;
        for (int i = 0; i < 32; i++) sum_x2 += xg[i] * xg[i];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int i = 0; i < 32; i++) w[i] = av_x + fabsf(xg[i]);
        gscale[g] = lb_kq_make_qkx_quants(32, nmax, xg, w, L + 32 * g, &gmin[g], Laux, rmin, rdelta,
                                          nstep, 0);
        if (gscale[g] > max_scale) max_scale = gscale[g];
        if (gmin[g] > max_min) max_min = gmin[g];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min   = max_min > 0 ? 63.f / max_min : 0.f;
    for (int g = 0; g < 8; g++) { /* as ggml: the rounded level goes through a uint8_t */
        const uint8_t s = (uint8_t)lb_kq_nearest_int(inv_scale * gscale[g]);
        const uint8_t m = (uint8_t)lb_kq_nearest_int(inv_min * gmin[g]);
        ls[g]           = s < 63 ? s : 63;
        lm[g]           = m < 63 ? m : 63;
    }
    lb_kq_pack_scale_min(scales, ls, lm);
    *d    = lb_f32_to_f16(max_scale / 63.f);
    *dmin = lb_f32_to_f16(max_min / 63.f);
    requantize_scale_min(x, nmax, scales, *d, *dmin, L);
}

void lb_kq_fit_scale_min_imatrix(const float *x, const float *imp, int nmax, uint8_t *L,
                                 uint8_t *scales, uint16_t *d, uint16_t *dmin) {
    float   w[32], sw[8], gscale[8], gmin[8];
    uint8_t Laux[32], ls[8], lm[8];
    float   sum_x2 = 0;
    for (int i = 0; i < 256; i++) sum_x2 += x[i] * x[i];
    const float sigma2 = 2 * sum_x2 / 256;
    for (int g = 0; g < 8; g++) {
        const float *xg = x + 32 * g;
        for (int i = 0; i < 32; i++) w[i] = imp[32 * g + i] * sqrtf(sigma2 + xg[i] * xg[i]);
        float sumw = 0;
        for (int i = 0; i < 32; i++) sumw += w[i];
        sw[g]     = sumw;
        gscale[g] = lb_kq_make_qkx_quants(32, nmax, xg, w, L + 32 * g, &gmin[g], Laux, -0.9f, 0.05f,
                                          36, 0);
    }
    const float d_block = lb_kq_make_qp_quants(8, 63, gscale, ls, sw);
    const float m_block = lb_kq_make_qp_quants(8, 63, gmin, lm, sw);
    /* ggml's Q5_K clamps these to 63, its Q4_K does not: a no-op, as make_qp_quants caps its
     * levels at 63 and only a negative group scale (impossible for this least-squares fit:
     * levels grow with x) could wrap around */
    for (int g = 0; g < 8; g++) {
        ls[g] = ls[g] < 63 ? ls[g] : 63;
        lm[g] = lm[g] < 63 ? lm[g] : 63;
    }
    lb_kq_pack_scale_min(scales, ls, lm);
    *d    = lb_f32_to_f16(d_block);
    *dmin = lb_f32_to_f16(m_block);
    requantize_scale_min(x, nmax, scales, *d, *dmin, L);
}
