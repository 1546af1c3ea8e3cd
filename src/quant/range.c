/* Range estimation before quantization: choose, per row, the value |x| is clipped to.
 * Clipping trades a large error on a few outliers for a finer grid for every other value;
 * the MSE search measures that trade with the format's own quantizer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/quant.h"

lb_status lb_range_parse(const char *s, lb_range *out) {
    memset(out, 0, sizeof *out);
    if (!strcmp(s, "minmax")) return LB_OK;
    if (!strcmp(s, "mse")) {
        out->kind = LB_RANGE_MSE;
        return LB_OK;
    }
    char        *end;
    const double p = s[0] == 'p' ? strtod(s + 1, &end) : 0;
    if (s[0] != 'p' || *end || !(p > 0 && p <= 100)) return LB_ERR_PARAM;
    out->kind = LB_RANGE_PERCENTILE;
    out->pct  = p;
    return LB_OK;
}

const char *lb_range_name(const lb_range *r, char *buf, size_t cap) {
    switch (r->kind) {
    case LB_RANGE_MSE:        return "mse";
    case LB_RANGE_PERCENTILE: snprintf(buf, cap, "p%g", r->pct); return buf;
    default:                  return "minmax";
    }
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* squared error of x after clipping to c and a round trip through type t */
static double clipped_error(const float *x, int64_t n, lb_type t, float c, const float *w,
                            float *tmp, float *deq, void *q) {
    for (int64_t i = 0; i < n; i++) tmp[i] = fminf(fmaxf(x[i], -c), c);
    lb_quantize_rows(t, q, tmp, 1, n, w);
    lb_type_get_traits(t)->to_float(deq, q, n);
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)deq[i] - x[i];
        e += (w ? w[i] : 1.0) * d * d;
    }
    return e;
}

float lb_range_clip_row(const float *x, int64_t n, lb_type t, const lb_range *r,
                        const float *importance) {
    float amax = 0;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    if (r->kind == LB_RANGE_MINMAX || amax == 0) return INFINITY;
    float *tmp = malloc((size_t)(2 * n) * sizeof *tmp);
    void  *q   = malloc(lb_row_size(t, n) ? lb_row_size(t, n) : 1);
    float  c   = INFINITY;
    if (!tmp || !q) goto done; /* out of memory: no clipping, never a wrong result */
    if (r->kind == LB_RANGE_PERCENTILE) {
        for (int64_t i = 0; i < n; i++) tmp[i] = fabsf(x[i]);
        qsort(tmp, (size_t)n, sizeof *tmp, cmp_float);
        const double pos = r->pct / 100.0 * (double)(n - 1);
        const int64_t lo = (int64_t)pos, hi = lo + 1 < n ? lo + 1 : lo;
        c = tmp[lo] + (float)(pos - (double)lo) * (tmp[hi] - tmp[lo]); /* interpolated */
        if (c <= 0) c = amax;
    } else {
        double best = INFINITY;
        for (int k = 0; k <= 20; k++) { /* a = 1, 0.975, ..., 0.5 */
            const float  cand = amax * (1.0f - 0.025f * (float)k);
            const double e    = clipped_error(x, n, t, cand, importance, tmp, tmp + n, q);
            if (e < best) {
                best = e;
                c    = cand;
            }
        }
    }
done:
    free(tmp);
    free(q);
    return c;
}

void lb_range_apply(float *rows, int64_t nr, int64_t n, lb_type t, const lb_range *r,
                    const float *importance) {
    if (r->kind == LB_RANGE_MINMAX) return;
    for (int64_t i = 0; i < nr; i++) {
        float      *x = rows + i * n;
        const float c = lb_range_clip_row(x, n, t, r, importance);
        if (isinf(c)) continue;
        for (int64_t j = 0; j < n; j++) x[j] = fminf(fmaxf(x[j], -c), c);
    }
}
