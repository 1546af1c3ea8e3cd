/* Accumulates, token by token, what llama-perplexity --kl-divergence reports. */
#ifndef LB_EVAL_KLD_ACC_H
#define LB_EVAL_KLD_ACC_H

#include <stdbool.h>
#include <stdint.h>

#include "lowbit/eval.h"

typedef struct lb_kld_acc {
    double *kl;                      /* per-token KL, for the percentiles */
    int64_t n, cap;
    double  sum_kl, sum_kl2;
    double  same_top;
    double  sum_dnll, sum_dnll2;     /* ln p_ref(tok) - ln p(tok): for ln(PPL/PPL_ref) */
    double  sum_nll_ref;
    double  sum_dp2;                 /* (p(tok) - p_ref(tok))^2 */
} lb_kld_acc;

/* one scored position: its KL, ln p_ref(tok) - ln p(tok), -ln p_ref(tok), p(tok) - p_ref(tok),
 * whether the top tokens agree. Measured where the position's chunk ran, pushed in order. */
typedef struct lb_kld_rec {
    double kl, dnll, nll_ref, dp;
    bool   same;
} lb_kld_rec;

int        lb_kld_acc_init(lb_kld_acc *a, int64_t cap); /* 0 on success */
lb_kld_rec lb_kld_measure(const float *ref, const float *q, int32_t n_vocab, int32_t tok);
/* The same against a row of llama-perplexity's base file (kld_base.h), as llama.cpp computes
 * it: the reference's log-probabilities as stored, those below -16 left out. */
lb_kld_rec lb_kld_measure_base(const uint16_t *row, const float *q, int32_t n_vocab, int32_t tok);
void       lb_kld_acc_push(lb_kld_acc *a, const lb_kld_rec *r);
void lb_kld_acc_finish(lb_kld_acc *a, lb_kld_result *r);
void lb_kld_acc_free(lb_kld_acc *a);

#endif
