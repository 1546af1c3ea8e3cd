/* Training a mixture of experts' FFN (moe_train.h). The pairs of one expert run as one
 * product each way, so an expert's matrices are read once per micro-batch. */
#include <math.h>
#include <string.h>

#include "model/moe.h"
#include "moe_train.h"
#include "ops.h"

size_t lb_tmoe_acts_floats(const lb_tmoe *m) {
    const size_t NK = (size_t)m->N * (size_t)m->K;
    return (size_t)m->N * (size_t)m->X + NK + NK * (size_t)(2 * m->E + 3 * m->FX);
}

size_t lb_tmoe_acts_ints(const lb_tmoe *m) { return 2 * (size_t)m->N * (size_t)m->K + (size_t)m->X + 1; }

size_t lb_tmoe_scratch_floats(const lb_tmoe *m) {
    const size_t NK = (size_t)m->N * (size_t)m->K;
    return NK * (size_t)(2 * m->E + 3 * m->FX) + (size_t)m->N * (size_t)m->X + NK;
}

void lb_tmoe_acts_place(lb_tmoe_acts *a, const lb_tmoe *m, float *f, int32_t *i) {
    const size_t NK = (size_t)m->N * (size_t)m->K, E = (size_t)m->E, FX = (size_t)m->FX;
    a->probs = f, f += (size_t)m->N * (size_t)m->X;
    a->w = f, f += NK;
    a->xe = f, f += NK * E;
    a->gate = f, f += NK * FX;
    a->up = f, f += NK * FX;
    a->act = f, f += NK * FX;
    a->eo = f;
    a->sel = i, i += NK;
    a->order = i, i += NK;
    a->start = i;
}

void lb_tmoe_forward(const lb_tmoe *m, lb_tmoe_acts *a, const float *xn, float *out) {
    const int64_t N = m->N, E = m->E, FX = m->FX;
    const int32_t X = m->X, K = m->K;
    lb_op_linear_fwd(a->probs, xn, m->wr, N, E, X); /* the router's logits; the inference routing */
    lb_moe_route(m->cfg, m->norm, NULL, a->probs, (int32_t)N, a->sel, a->w);
    int32_t n = 0; /* the pairs grouped by expert */
    for (int32_t e = 0; e < X; e++) {
        a->start[e] = n;
        for (int64_t i = 0; i < N * K; i++)
            if (a->sel[i] == e) a->order[n++] = (int32_t)i;
    }
    a->start[X] = n;
    for (int64_t r = 0; r < N * K; r++) memcpy(a->xe + r * E, xn + (a->order[r] / K) * E, (size_t)E * sizeof *xn);
    for (int32_t e = 0; e < X; e++) {
        const int64_t r0 = a->start[e], ne = a->start[e + 1] - r0;
        if (ne == 0) continue;
        lb_op_linear_fwd(a->gate + r0 * FX, a->xe + r0 * E, m->wg + (int64_t)e * FX * E, ne, E, FX);
        lb_op_linear_fwd(a->up + r0 * FX, a->xe + r0 * E, m->wu + (int64_t)e * FX * E, ne, E, FX);
        lb_op_swiglu_fwd(a->act + r0 * FX, a->gate + r0 * FX, a->up + r0 * FX, ne * FX);
        lb_op_linear_fwd(a->eo + r0 * E, a->act + r0 * FX, m->wd + (int64_t)e * E * FX, ne, FX, E);
    }
    memset(out, 0, (size_t)(N * E) * sizeof *out);
    for (int64_t r = 0; r < N * K; r++) {
        const int32_t i = a->order[r];
        const float   w = a->w[i];
        float        *y = out + (i / K) * E;
        for (int64_t j = 0; j < E; j++) y[j] += w * a->eo[r * E + j];
    }
}

double lb_tmoe_balance(const lb_tmoe *m, const lb_tmoe_acts *a) {
    double s = 0;
    for (int32_t e = 0; e < m->X; e++) {
        double p = 0;
        for (int64_t t = 0; t < m->N; t++) p += a->probs[t * m->X + e];
        s += (double)(a->start[e + 1] - a->start[e]) / (double)(m->N * m->K) * (p / (double)m->N);
    }
    return (double)m->X * s;
}

void lb_tmoe_backward(const lb_tmoe *m, const lb_tmoe_acts *a, float aux, const float *dy, const float *xn,
                      float *gr, float *gg, float *gu, float *gd, float *dxn, float *scratch) {
    const int64_t N = m->N, E = m->E, FX = m->FX, NK = N * m->K;
    const int32_t X = m->X, K = m->K;
    float *deo = scratch, *dxe = deo + NK * E, *dact = dxe + NK * E, *dg = dact + NK * FX, *du = dg + NK * FX;
    float *dlog = du + NK * FX, *dw = dlog + N * X;
    for (int64_t r = 0; r < NK; r++) { /* each pair: d(its output) = w dy, d(w) = dy . output */
        const int32_t i = a->order[r];
        const float  *d = dy + (i / K) * E, *o = a->eo + r * E;
        double        s = 0;
        for (int64_t j = 0; j < E; j++) {
            deo[r * E + j] = a->w[i] * d[j];
            s += (double)d[j] * o[j];
        }
        dw[i] = (float)s;
    }
    for (int32_t e = 0; e < X; e++) {
        const int64_t r0 = a->start[e], ne = a->start[e + 1] - r0;
        if (ne == 0) continue;
        lb_op_linear_bwd(dact + r0 * FX, gd + (int64_t)e * E * FX, deo + r0 * E, a->act + r0 * FX,
                         m->wd + (int64_t)e * E * FX, ne, FX, E, false);
        lb_op_swiglu_bwd(dg + r0 * FX, du + r0 * FX, dact + r0 * FX, a->gate + r0 * FX, a->up + r0 * FX, ne * FX);
        lb_op_linear_bwd(dxe + r0 * E, gg + (int64_t)e * FX * E, dg + r0 * FX, a->xe + r0 * E,
                         m->wg + (int64_t)e * FX * E, ne, E, FX, false);
        lb_op_linear_bwd(dxe + r0 * E, gu + (int64_t)e * FX * E, du + r0 * FX, a->xe + r0 * E,
                         m->wu + (int64_t)e * FX * E, ne, E, FX, true);
    }
    /* aux * N * X * sum_e f_e P_e, P_e = mean_t p_te: d/dp_te = aux * X * f_e */
    float f[LB_MOE_MAX_EXPERTS];
    for (int32_t e = 0; e < X; e++) f[e] = (float)(a->start[e + 1] - a->start[e]) / (float)NK;
    for (int64_t t = 0; t < N; t++) { /* the router: through the chosen weights, then softmax */
        const float   *p = a->probs + t * X;
        const int32_t *sel = a->sel + t * K;
        const float   *w = a->w + t * K, *g = dw + t * K;
        float         *dp = dlog + t * X;
        for (int32_t e = 0; e < X; e++) dp[e] = aux * (float)X * f[e];
        double ws = 0, gw = 0; /* w_k = p_k / S: dp_k = (g_k - sum_j g_j w_j) / S */
        for (int32_t k = 0; k < K; k++) ws += p[sel[k]], gw += (double)g[k] * w[k];
        ws = ws > 6.103515625e-5 ? ws : 6.103515625e-5;
        for (int32_t k = 0; k < K; k++) dp[sel[k]] += m->norm ? (float)((g[k] - gw) / ws) : g[k];
        double pd = 0;
        for (int32_t e = 0; e < X; e++) pd += (double)p[e] * dp[e];
        for (int32_t e = 0; e < X; e++) dp[e] = p[e] * (dp[e] - (float)pd);
    }
    memset(dxn, 0, (size_t)(N * E) * sizeof *dxn);
    for (int64_t r = 0; r < NK; r++) { /* the experts' input gradients back to their tokens */
        float       *d = dxn + (a->order[r] / K) * E;
        const float *s = dxe + r * E;
        for (int64_t j = 0; j < E; j++) d[j] += s[j];
    }
    lb_op_linear_bwd(dxn, gr, dlog, xn, m->wr, N, E, X, true);
}
