/* KL divergence statistics over the full vocabulary, in double precision:
 * KL(p_ref || p) = sum_i p_ref(i) (ln p_ref(i) - ln p(i)), with both distributions from
 * log-softmax of their logits; same-top-1 share; ln(PPL/PPL_ref); RMS of the change in
 * the probability of the correct token. Percentiles from the sorted per-token values. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kld_acc.h"

int lb_kld_acc_init(lb_kld_acc *a, int64_t cap) {
    memset(a, 0, sizeof *a);
    a->cap = cap > 0 ? cap : 1;
    a->kl  = malloc((size_t)a->cap * sizeof *a->kl);
    return a->kl ? 0 : -1;
}

void lb_kld_acc_free(lb_kld_acc *a) {
    free(a->kl);
    memset(a, 0, sizeof *a);
}

/* max and log(sum exp(x - max)) of a row */
static void log_norm(const float *x, int32_t n, float *mx, double *lse, int32_t *argmax) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += exp((double)x[i] - (double)x[best]);
    *mx     = x[best];
    *lse    = log(s);
    *argmax = best;
}

void lb_kld_acc_push(lb_kld_acc *a, const lb_kld_rec *r) {
    if (a->n < a->cap) a->kl[a->n] = r->kl;
    a->n++;
    a->sum_kl += r->kl;
    a->sum_kl2 += r->kl * r->kl;
    a->same_top += r->same;
    a->sum_dnll += r->dnll;
    a->sum_dnll2 += r->dnll * r->dnll;
    a->sum_nll_ref += r->nll_ref;
    a->sum_dp2 += r->dp * r->dp;
}

lb_kld_rec lb_kld_measure(const float *ref, const float *q, int32_t n_vocab, int32_t tok) {
    float   mr, mq;
    double  lr, lq;
    int32_t ar, aq;
    log_norm(ref, n_vocab, &mr, &lr, &ar);
    log_norm(q, n_vocab, &mq, &lq, &aq);
    double kl = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        const double lpr = (double)ref[i] - mr - lr, lpq = (double)q[i] - mq - lq;
        kl += exp(lpr) * (lpr - lpq);
    }
    if (kl < 0) kl = 0; /* rounding */
    const double lpr_t = (double)ref[tok] - mr - lr, lpq_t = (double)q[tok] - mq - lq;
    return (lb_kld_rec){ kl, lpr_t - lpq_t, -lpr_t, exp(lpq_t) - exp(lpr_t), ar == aq };
}

lb_kld_rec lb_kld_measure_base(const uint16_t *row, const float *q, int32_t n_vocab, int32_t tok) {
    /* llama-perplexity's own arithmetic (its log_softmax against a base row), float for float */
    float   mq = q[0], scale, min_lp;
    int32_t aq = 0;
    for (int32_t i = 1; i < n_vocab; i++)
        if (q[i] > mq) mq = q[i], aq = i;
    double se = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) se += expf(q[i] - mq);
    const float lse = (float)log(se);
    memcpy(&scale, row, 4);
    memcpy(&min_lp, row + 2, 4);
    const uint16_t *lp  = row + 4;
    const float     nll = mq + lse - q[tok], nll_base = -(scale * lp[tok] + min_lp);
    const float     top = mq + lse;
    double          kl  = 0;
    int32_t         ar  = -1;
    float           lmax = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        const float lpr = scale * lp[i] + min_lp;
        if (i == 0 || lpr > lmax) lmax = lpr, ar = i;
        if (lpr > -16.f) kl += expf(lpr) * (lpr - q[i] + top);
    }
    return (lb_kld_rec){ kl, (double)nll - nll_base, nll_base, (double)expf(-nll) - expf(-nll_base), ar == aq };
}

static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* the value at fraction f of the sorted array (nearest rank) */
static double pct(const double *v, int64_t n, double f) {
    int64_t i = (int64_t)(f * (double)(n - 1) + 0.5);
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static double stderr_of(double sum, double sum2, int64_t n) {
    if (n < 2) return 0;
    const double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
    return var > 0 ? sqrt(var / (double)(n - 1)) : 0;
}

void lb_kld_acc_finish(lb_kld_acc *a, lb_kld_result *r) {
    memset(r, 0, sizeof *r);
    const int64_t n = a->n < a->cap ? a->n : a->cap;
    if (n == 0) return;
    qsort(a->kl, (size_t)n, sizeof *a->kl, cmp_double);
    r->n                   = a->n;
    r->kld_mean            = a->sum_kl / (double)a->n;
    r->kld_stderr          = stderr_of(a->sum_kl, a->sum_kl2, a->n);
    r->kld_median          = pct(a->kl, n, 0.5);
    r->kld_p90             = pct(a->kl, n, 0.90);
    r->kld_p95             = pct(a->kl, n, 0.95);
    r->kld_p99             = pct(a->kl, n, 0.99);
    r->kld_max             = a->kl[n - 1];
    r->top1                = a->same_top / (double)a->n;
    r->top1_stderr         = sqrt(r->top1 * (1 - r->top1) / (double)(a->n > 1 ? a->n - 1 : 1));
    r->ppl_ref             = exp(a->sum_nll_ref / (double)a->n);
    r->ln_ppl_ratio        = a->sum_dnll / (double)a->n;
    r->ln_ppl_ratio_stderr = stderr_of(a->sum_dnll, a->sum_dnll2, a->n);
    r->rms_dp              = sqrt(a->sum_dp2 / (double)a->n);
}
