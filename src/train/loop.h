/* The training loop shared by `lowbit train` and the QAT methods, and its checkpoints. */
#ifndef LB_TRAIN_LOOP_H
#define LB_TRAIN_LOOP_H

#include "lowbit/train.h"
#include "optim.h"
#include "tmodel.h"

/* What a method adds to plain training (all optional). */
typedef struct lb_train_hooks {
    void *user;
    /* before every forward pass (training and validation): refresh tm->wf[] */
    void (*before_forward)(void *user);
    /* after the backward passes of a step: turn the gradients of the weights the products used
     * (tm->g) into gradients of the trained parameters (straight-through masks, step sizes) */
    void (*after_backward)(void *user);
    /* after each optimizer update (keep parameters in range) */
    void (*after_update)(void *user);
    lb_tmodel *teacher; /* distillation: the loss is KL(teacher || model) on the same tokens */
} lb_train_hooks;

typedef struct lb_train_job {
    lb_tmodel            *tm;
    lb_param_group       *extra;   /* trained besides the model's slots */
    int32_t               n_extra;
    bool                  freeze_model; /* only the extra groups train */
    const lb_train_hooks *hooks;
    const lb_tokens      *train, *valid;
    lb_vocab             *vocab;   /* written into checkpoints */
    const char           *label;   /* progress line prefix */
} lb_train_job;

lb_status lb_train_loop(const lb_train_job *job, const lb_train_opts *o, lb_train_result *res,
                        lb_error *err);

/* A line for o->report (printf-style), when there is a report callback. */
void lb_train_report(const lb_train_opts *o, bool step, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Mean cross-entropy (nats per token) over `windows` consecutive windows of T+1 tokens of
 * v, in micro-batches of tm->B; the hooks' before_forward is run first. NAN if v is too short. */
double lb_train_validate(lb_tmodel *tm, const lb_train_hooks *h, const lb_tokens *v, int32_t windows);

/* Checkpoints (GGUF): the parameter groups as f32 tensors, "adam.m.<name>" and
 * "adam.v.<name>", and lowbit.train.{step,tokens,rng,adam_t}. */
typedef struct lb_train_state {
    int64_t  step, tokens;
    uint64_t rng;
} lb_train_state;
lb_status lb_train_ckpt_save(const char *path, const lb_train_job *job, const lb_adamw *opt,
                             const lb_train_state *s, lb_error *err);
lb_status lb_train_ckpt_load(const char *path, lb_adamw *opt, lb_train_state *s, lb_error *err);

#endif
