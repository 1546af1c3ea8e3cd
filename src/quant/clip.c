/* Range estimators (clip.h): percentile, MSE search and entropy calibration on a sample's
 * histogram or values. Pure functions of the sample: the same sample gives the same clip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clip.h"

#define MSE_GRID   20 /* clips amax * (1 - k / 20), k = 0 .. 19 */
#define MSE_GOLDEN 12 /* golden-section steps between the best grid clip's neighbours */
#define KL_STEPS   2048 /* at most this many candidate thresholds (every bin up to it) */

void lb_clip_hist_add(double *count, double *mass, int32_t nb, float amax, const float *x,
                      int64_t n, const float *w) {
    const float iw = amax > 0 ? (float)nb / amax : 0;
    for (int64_t i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        int32_t     b = (int32_t)(a * iw);
        b             = b < nb ? b : nb - 1;
        count[b] += 1;
        mass[b] += (double)(w ? w[i] : 1.0f) * (double)a;
    }
}

double lb_clip_hist_error(const double *count, int32_t nb, float amax, int32_t levels, float c) {
    const double w = (double)amax / nb, d = (double)c / (levels - 1), qmax = levels - 1;
    double       e = 0;
    for (int32_t b = 0; b < nb; b++) {
        if (count[b] == 0) continue;
        double eb = 0;
        for (int s = 0; s < 4; s++) {
            const double v = ((double)b + (s + 0.5) / 4) * w, q = fmin(nearbyint(v / d), qmax) * d;
            eb += (v - q) * (v - q);
        }
        e += count[b] * eb / 4;
    }
    return e;
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static float percentile(const lb_clip_sample *s, double pct) {
    if (s->x) { /* exact: the sorted |x|, interpolated */
        float *v = malloc((size_t)s->n * sizeof *v);
        if (!v) return s->amax; /* out of memory: no clipping, never a wrong result */
        for (int64_t i = 0; i < s->n; i++) v[i] = fabsf(s->x[i]);
        qsort(v, (size_t)s->n, sizeof *v, cmp_float);
        const double  pos = pct / 100.0 * (double)(s->n - 1);
        const int64_t lo = (int64_t)pos, hi = lo + 1 < s->n ? lo + 1 : lo;
        const float   c  = v[lo] + (float)(pos - (double)lo) * (v[hi] - v[lo]);
        free(v);
        return c > 0 ? c : s->amax;
    }
    double total = 0, acc = 0; /* the histogram: interpolated inside the bin it falls in */
    for (int32_t i = 0; i < s->nb; i++) total += s->count[i];
    const double want = pct / 100.0 * total, w = (double)s->amax / s->nb;
    for (int32_t i = 0; i < s->nb; i++) {
        if (s->count[i] > 0 && acc + s->count[i] >= want)
            return (float)(w * (i + (want - acc) / s->count[i]));
        acc += s->count[i];
    }
    return s->amax;
}

/* the squared error after clipping at c: the caller's quantizer, or the uniform grid */
static double error_at(const lb_clip_sample *s, float c) {
    return s->error ? s->error(s->user, c) : lb_clip_hist_error(s->count, s->nb, s->amax, s->levels, c);
}

/* a grid from amax down, then a golden-section search between the best's neighbours */
static float mse(const lb_clip_sample *s) {
    double best = INFINITY;
    float  c    = s->amax;
    int    kb   = 0;
    for (int k = 0; k < MSE_GRID; k++) {
        const float  cand = s->amax * (1.0f - (float)k / MSE_GRID);
        const double e    = error_at(s, cand);
        if (e < best) best = e, c = cand, kb = k;
    }
    const double g = (sqrt(5.0) - 1) / 2;
    double       lo = s->amax * (1.0 - (kb + 1.0) / MSE_GRID), hi = s->amax * (1.0 - (kb - 1.0) / MSE_GRID);
    hi              = fmin(hi, s->amax);
    lo              = fmax(lo, s->amax / (2.0 * MSE_GRID));
    double x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
    double e1 = error_at(s, (float)x1), e2 = error_at(s, (float)x2);
    for (int it = 0; it < MSE_GOLDEN; it++) {
        if (e1 < best) best = e1, c = (float)x1;
        if (e2 < best) best = e2, c = (float)x2;
        if (e1 <= e2) {
            hi = x2, x2 = x1, e2 = e1;
            x1 = hi - g * (hi - lo), e1 = error_at(s, (float)x1);
        } else {
            lo = x1, x1 = x2, e1 = e2;
            x2 = lo + g * (hi - lo), e2 = error_at(s, (float)x2);
        }
    }
    return c;
}

/* KL(P || Q) for the threshold at bin i (h[0 .. i) kept, the rest clipped into bin i-1):
 * Q spreads each of the `levels` groups' mass evenly over the group's non-empty bins of P
 * (TensorRT's construction). S, Z: prefix sums of h and of its non-empty bins. */
static double kl_at(const double *h, const double *S, const int32_t *Z, int32_t nb, int32_t i,
                    int32_t levels) {
    const double above = S[nb] - S[i], ps = S[nb], qs = S[i];
    if (!(qs > 0)) return INFINITY;
    double kl = 0;
    for (int32_t j = 0; j < levels; j++) {
        const int32_t a = (int32_t)((int64_t)j * i / levels), b = (int32_t)((int64_t)(j + 1) * i / levels);
        int32_t       nz = Z[b] - Z[a];
        const double  gs = S[b] - S[a];
        const bool    last = b == i && above > 0 && h[i - 1] == 0; /* the clipped mass lands there */
        nz += last;
        if (nz == 0) continue;
        const double q = gs / nz / qs;
        for (int32_t k = a; k < b; k++) {
            const double pk = (h[k] + (k == i - 1 ? above : 0)) / ps;
            if (pk > 0) kl += pk * log(pk / fmax(q, 1e-12));
        }
    }
    return kl;
}

static float kl(const lb_clip_sample *s, bool counts) {
    const int32_t nb = s->nb, L = s->levels;
    if (nb <= L) return s->amax;
    double  *h = malloc((size_t)nb * sizeof *h), *S = malloc((size_t)(nb + 1) * sizeof *S);
    int32_t *Z = malloc((size_t)(nb + 1) * sizeof *Z);
    float    c = s->amax;
    if (!h || !S || !Z) goto done;
    memcpy(h, counts ? s->count : s->mass, (size_t)nb * sizeof *h);
    if (counts) h[0] = 0; /* TensorRT drops the first bin: the mass of near-zero values */
    S[0] = 0, Z[0] = 0;
    for (int32_t k = 0; k < nb; k++) S[k + 1] = S[k] + h[k], Z[k + 1] = Z[k] + (h[k] != 0);
    const int32_t step = (nb - L) / KL_STEPS + 1;
    double        best = INFINITY;
    for (int32_t i = nb;; i -= step) { /* from the top: ties keep the larger clip */
        const double d = kl_at(h, S, Z, nb, i, L);
        if (d < best) best = d, c = s->amax * (float)i / (float)nb;
        if (i - step < L) break;
    }
done:
    free(h), free(S), free(Z);
    return c;
}

float lb_clip_choose(const lb_range *r, const lb_clip_sample *s) {
    if (!(s->amax > 0)) return s->amax;
    float c = s->amax;
    switch (r->kind) {
    case LB_RANGE_PERCENTILE: c = percentile(s, r->pct); break;
    case LB_RANGE_MSE:        c = mse(s); break;
    case LB_RANGE_KL:         c = kl(s, false); break;
    case LB_RANGE_KL_COUNT:   c = kl(s, true); break;
    default:                  break;
    }
    return c > 0 && c < s->amax ? c : s->amax;
}
