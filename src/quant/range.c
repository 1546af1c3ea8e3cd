/* Range estimation for weights (lowbit/range.h): each row's values as an estimator sample
 * (clip.h), the error of a clip measured by the format's own quantizer round trip. Clipping
 * trades a large error on a few outliers for a finer grid for every other value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clip.h"
#include "core/fail.h"

lb_status lb_range_parse(const char *s, lb_range *out) {
    static const struct {
        const char   *name;
        lb_range_kind kind;
    } named[] = { { "minmax", LB_RANGE_MINMAX }, { "mse", LB_RANGE_MSE }, { "kl", LB_RANGE_KL },
                  { "kl-count", LB_RANGE_KL_COUNT } };
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (!strcmp(s, named[i].name)) {
            out->kind = named[i].kind;
            return LB_OK;
        }
    char        *end;
    const double p = s[0] == 'p' ? strtod(s + 1, &end) : 0;
    if (s[0] != 'p' || end == s + 1 || *end || !(p > 0 && p <= 100)) return LB_ERR_PARAM;
    out->kind = LB_RANGE_PERCENTILE;
    out->pct  = p;
    return LB_OK;
}

const char *lb_range_name(const lb_range *r, char *buf, size_t cap) {
    switch (r->kind) {
    case LB_RANGE_MSE:        return "mse";
    case LB_RANGE_KL:         return "kl";
    case LB_RANGE_KL_COUNT:   return "kl-count";
    case LB_RANGE_PERCENTILE: snprintf(buf, cap, "p%g", r->pct); return buf;
    default:                  return "minmax";
    }
}

typedef struct {
    const float *x, *w; /* the row, its importance (may be NULL) */
    int64_t      n;
    lb_type      t;
    float       *tmp, *deq;
    void        *q;
} row_error;

/* squared error of the row after clipping to c and a round trip through its type */
static double clipped_error(void *user, float c) {
    const row_error *r = user;
    for (int64_t i = 0; i < r->n; i++) r->tmp[i] = fminf(fmaxf(r->x[i], -c), c);
    lb_quantize_rows(r->t, r->q, r->tmp, 1, r->n, r->w);
    lb_type_get_traits(r->t)->to_float(r->deq, r->q, r->n);
    double e = 0;
    for (int64_t i = 0; i < r->n; i++) {
        const double d = (double)r->deq[i] - r->x[i];
        e += (r->w ? r->w[i] : 1.0) * d * d;
    }
    return e;
}

/* the grid's magnitudes a type has, zero included: 2^(bits - 1) for its whole bits */
static int32_t type_levels(lb_type t) {
    const int bits = (int)lb_type_get_traits(t)->bits_per_weight;
    return bits >= 2 ? 1 << (bits - 1) : 2;
}

/* the clip of one row (INFINITY: none) and its max |x|; each estimator gets only what it
 * reads: the values (percentile), the format's round trip (mse), a histogram (kl) */
static float clip_of(const float *x, int64_t n, lb_type t, const lb_range *r, const float *importance,
                     float *amax_out) {
    float amax = 0;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    *amax_out = amax;
    if (r->kind == LB_RANGE_MINMAX || amax == 0) return INFINITY;
    const bool     kl = r->kind == LB_RANGE_KL || r->kind == LB_RANGE_KL_COUNT, mse = r->kind == LB_RANGE_MSE;
    const int32_t  L  = type_levels(t);
    /* the histogram: 16 bins a level, at most 256, and at least 4 values a bin (2 levels) */
    int32_t        nb = 16 * L < 256 ? 16 * L : 256;
    nb                = nb < n / 4 ? nb : (int32_t)(n / 4);
    nb                = nb > 2 * L ? nb : 2 * L;
    const size_t   qs = lb_row_size(t, n) ? lb_row_size(t, n) : 1;
    double        *h  = kl ? calloc(2 * (size_t)nb, sizeof *h) : NULL;
    row_error      e  = { .x = x, .w = importance, .n = n, .t = t, .q = mse ? malloc(qs) : NULL };
    e.tmp             = mse ? malloc((size_t)(2 * n) * sizeof *e.tmp) : NULL;
    e.deq             = e.tmp ? e.tmp + n : NULL;
    float c           = INFINITY;
    if ((!kl || h) && (!mse || (e.q && e.tmp))) { /* out of memory: no clipping, never a wrong result */
        if (kl) lb_clip_hist_add(h, h + nb, nb, amax, x, n, importance);
        const lb_clip_sample s = { .nb = nb, .amax = amax, .count = h, .mass = h ? h + nb : NULL, .x = x, .n = n,
                                   .levels = L, .error = clipped_error, .user = &e };
        c = lb_clip_choose(r, &s);
    }
    free(h);
    free(e.q);
    free(e.tmp);
    return c < amax ? c : INFINITY;
}

float lb_range_clip_row(const float *x, int64_t n, lb_type t, const lb_range *r,
                        const float *importance) {
    float amax;
    return clip_of(x, n, t, r, importance, &amax);
}

void lb_range_apply_stats(float *rows, int64_t nr, int64_t n, lb_type t, const lb_range *r,
                          const float *importance, lb_range_stats *s) {
    if (r->kind == LB_RANGE_MINMAX) return;
    int64_t clipped = 0;
    double  sum = 0, lo = 1;
    for (int64_t i = 0; i < nr; i++) {
        float      *x = rows + i * n, amax;
        const float c = clip_of(x, n, t, r, importance, &amax);
        if (isinf(c)) {
            sum += 1;
            continue;
        }
        for (int64_t j = 0; j < n; j++) x[j] = fminf(fmaxf(x[j], -c), c);
        sum += c / amax, lo = fmin(lo, c / amax), clipped++;
    }
    if (!s) return;
#pragma omp critical(lb_range_stats)
    {
        s->ratio_min = s->rows ? fmin(s->ratio_min, lo) : lo;
        s->rows += nr, s->clipped += clipped, s->ratio_sum += sum;
    }
}

void lb_range_apply(float *rows, int64_t nr, int64_t n, lb_type t, const lb_range *r,
                    const float *importance) {
    lb_range_apply_stats(rows, nr, n, t, r, importance, NULL);
}

void lb_range_stats_errors(lb_range_stats *s, const lb_tensor *t, lb_type type, const void *q,
                           const float *importance) {
    const int64_t n = t->ne[0], nr = lb_tensor_nelements(t) / n;
    const size_t  rs = lb_row_size(type, n);
    void         *plain = NULL;
    size_t        nbytes;
    float        *x = malloc((size_t)(3 * n) * sizeof *x);
    if (!x || lb_tensor_convert(t, type, importance, NULL, NULL, &plain, &nbytes, NULL)) {
        free(x);
        return;
    }
    float *y = x + n, *z = x + 2 * n;
    s->weighted |= importance != NULL;
    for (int64_t r = 0; r < nr; r++) {
        lb_tensor_get_row_f32(t, r, x);
        lb_type_get_traits(type)->to_float(y, (const uint8_t *)q + (size_t)r * rs, n);
        lb_type_get_traits(type)->to_float(z, (const uint8_t *)plain + (size_t)r * rs, n);
        const float *im = importance && t->ne[2] > 1 ? importance + r / t->ne[1] * n : importance; /* an expert's */
        for (int64_t j = 0; j < n; j++) {
            const double w = im ? im[j] : 1.0, a = (double)y[j] - x[j], b = (double)z[j] - x[j];
            s->err += w * a * a, s->err_minmax += w * b * b, s->norm += w * (double)x[j] * x[j];
        }
    }
    free(plain);
    free(x);
}
