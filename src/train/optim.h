/* AdamW over groups of parameters, the learning-rate schedule and gradient clipping. */
#ifndef LB_TRAIN_OPTIM_H
#define LB_TRAIN_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "lowbit/status.h"

/* A tensor of parameters with its gradient: one per model slot, plus any others a method
 * trains (LSQ step sizes). */
typedef struct lb_param_group {
    float  *p, *g;
    int64_t n;
    int64_t ne0;      /* row length (the checkpoint's shape is [ne0, n / ne0]) */
    bool    decay;    /* decoupled weight decay applies */
    float   lr_mult;  /* this group's learning rate = lr * lr_mult (0: frozen) */
    char    name[64]; /* checkpoint tensor name */
} lb_param_group;

typedef struct lb_adamw {
    lb_param_group *groups; /* borrowed */
    int32_t         n_groups;
    float          *m, *v;  /* first and second moments, all groups end to end */
    int64_t        *off;    /* per group, into m and v */
    int64_t         n_total;
    int64_t         t;      /* steps taken (bias correction) */
} lb_adamw;

lb_status lb_adamw_init(lb_adamw *o, lb_param_group *groups, int32_t n_groups, lb_error *err);
void      lb_adamw_free(lb_adamw *o);
void      lb_adamw_zero_grad(lb_adamw *o);
/* The global L2 norm of all gradients (f64 sums). */
double    lb_adamw_grad_norm(const lb_adamw *o);
/* One step: g scaled by grad_scale first (clipping), then
 *   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²; p -= lr (m̂ / (sqrt(v̂) + eps) + wd p). */
void      lb_adamw_step(lb_adamw *o, float lr, float wd, float b1, float b2, float eps,
                        float grad_scale);

/* Linear warmup over `warmup` steps to lr, then cosine decay to min_frac * lr at `steps`. */
float lb_lr_at(int64_t step, int64_t steps, int64_t warmup, float lr, float min_frac);

#endif
