/* Accumulates, token by token, what llama-perplexity --kl-divergence reports. */
#ifndef LB_EVAL_KLD_ACC_H
#define LB_EVAL_KLD_ACC_H

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

int  lb_kld_acc_init(lb_kld_acc *a, int64_t cap); /* 0 on success */
void lb_kld_acc_add(lb_kld_acc *a, const float *ref, const float *q, int32_t n_vocab, int32_t tok);
/* The same against a row of llama-perplexity's base file (kld_base.h), as llama.cpp computes
 * it: the reference's log-probabilities as stored, those below -16 left out. */
void lb_kld_acc_add_base(lb_kld_acc *a, const uint16_t *row, const float *q, int32_t n_vocab, int32_t tok);
void lb_kld_acc_finish(lb_kld_acc *a, lb_kld_result *r);
void lb_kld_acc_free(lb_kld_acc *a);

#endif
