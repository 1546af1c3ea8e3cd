/* AdamW (Loshchilov & Hutter), global-norm clipping, warmup + cosine schedule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "optim.h"

lb_status lb_adamw_init(lb_adamw *o, lb_param_group *groups, int32_t n_groups, lb_error *err) {
    memset(o, 0, sizeof *o);
    o->groups   = groups;
    o->n_groups = n_groups;
    o->off      = calloc((size_t)n_groups + 1, sizeof *o->off);
    LB_RETURN_IF(!o->off, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < n_groups; i++) o->off[i + 1] = o->off[i] + groups[i].n;
    o->n_total = o->off[n_groups];
    o->m       = calloc((size_t)o->n_total + 1, sizeof *o->m);
    o->v       = calloc((size_t)o->n_total + 1, sizeof *o->v);
    if (!o->m || !o->v) {
        lb_adamw_free(o);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory for the optimizer's moments");
    }
    return LB_OK;
}

void lb_adamw_free(lb_adamw *o) {
    free(o->m);
    free(o->v);
    free(o->off);
    memset(o, 0, sizeof *o);
}

void lb_adamw_zero_grad(lb_adamw *o) {
    for (int32_t i = 0; i < o->n_groups; i++)
        if (o->groups[i].g) memset(o->groups[i].g, 0, (size_t)o->groups[i].n * sizeof(float));
}

double lb_adamw_grad_norm(const lb_adamw *o) {
    double s = 0.0;
    for (int32_t i = 0; i < o->n_groups; i++) {
        const lb_param_group *gr = &o->groups[i];
        if (gr->lr_mult == 0.0f) continue;
        double part = 0.0;
#pragma omp parallel for reduction(+ : part) if (gr->n > 65536)
        for (int64_t j = 0; j < gr->n; j++) part += (double)gr->g[j] * gr->g[j];
        s += part;
    }
    return sqrt(s);
}

void lb_adamw_step(lb_adamw *o, float lr, float wd, float b1, float b2, float eps, float grad_scale) {
    o->t++;
    const float bc1 = 1.0f - powf(b1, (float)o->t), bc2 = 1.0f - powf(b2, (float)o->t);
    for (int32_t i = 0; i < o->n_groups; i++) {
        const lb_param_group *gr = &o->groups[i];
        if (gr->lr_mult == 0.0f) continue;
        float        *m = o->m + o->off[i], *v = o->v + o->off[i];
        const float   glr = lr * gr->lr_mult, gwd = gr->decay ? wd : 0.0f;
#pragma omp parallel for if (gr->n > 65536)
        for (int64_t j = 0; j < gr->n; j++) {
            const float g = gr->g[j] * grad_scale;
            m[j]          = b1 * m[j] + (1.0f - b1) * g;
            v[j]          = b2 * v[j] + (1.0f - b2) * g * g;
            const float mh = m[j] / bc1, vh = v[j] / bc2;
            gr->p[j] -= glr * (mh / (sqrtf(vh) + eps) + gwd * gr->p[j]);
        }
    }
}

float lb_lr_at(int64_t step, int64_t steps, int64_t warmup, float lr, float min_frac) {
    if (warmup > 0 && step < warmup) return lr * (float)(step + 1) / (float)warmup;
    const int64_t span = steps - warmup;
    if (span <= 0) return lr;
    double p = (double)(step - warmup) / (double)span;
    if (p > 1.0) p = 1.0;
    const double c = 0.5 * (1.0 + cos(3.141592653589793 * p));
    return (float)(lr * (min_frac + (1.0 - min_frac) * c));
}
