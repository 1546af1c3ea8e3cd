/* GPTQ on stacked tensors, one Hessian per slice (method_gptq.c calls it in the block's order):
 * a mixture of experts' experts (after the FFN's shared input: each expert's gate and up on the
 * Hessian of the calibration tokens routed to it, then each one's down on its down input, the
 * quantized gate and up's output), and MLA's k_b and v_b (each head on its own input: its
 * non-rotary query, its latent attention output), true-sequential as the dense layers. The rows
 * of one slice are a slice of the stacked 3-D tensor; its quantized rows go to the same slice of
 * the stored tensor.
 *
 * Rare experts: a router sends few tokens to some experts, and their Hessians are nearly
 * singular (rank at most the token count); an expert that saw none cannot run GPTQ at all.
 * The rule: an expert that saw fewer than min_tokens (lb_gptq_params) has its statistics
 * topped up to min_tokens tokens' weight with those of every calibration token passed through
 * it, as if the router had sent them all there (lb_calib_run_states_prior); then GPTQ runs on
 * it as on the others. The tokens it saw keep their full weight. The default, 1, tops up only
 * the experts that saw none: topping up to the input width (a full-rank Hessian) was measured
 * on a trained mixture of experts, and it moved the KL divergence by 1-2% either way, as
 * rounding the rare ones by importance had (bench/README.md, section 17). With min_tokens < 0
 * the rule is off: an expert that saw none is rounded to nearest. Each expert's count and what
 * was done is logged.
 *
 * Under MPI each rank quantizes a share of the chunk's experts (whole experts), gathered on
 * every rank.
 *
 * Experts aim at their own outputs on the quantized inputs (the GPTQ paper's target): the f32
 * target pairs each token's quantized and unquantized inputs, and the unquantized model may
 * route a token to other experts. Hessians are gathered for as many experts per pass as fit
 * EXPERT_H_BUDGET. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/fail.h"
#include "quant_internal.h"

#define EXPERT_H_BUDGET ((size_t)512 << 20)

lb_status lb_gptq_slices(lb_method_ctx *c, const lb_tensor_role *roles, int nr, lb_error *err) {
    const lb_quant_params *p = c->p;
    const int32_t          l = c->layer;
    const bool             heads = (lb_slot_of(roles[0])->flags & LB_SLOT_HEADS) != 0;
    const char            *g     = lb_slot_of(roles[0])->gguf;
    char                   what[32]; /* the log's name: "ffn_gate/up_exps", "ffn_down_exps", "attn_k_b" */
    if (roles[0] == LB_ROLE_FFN_GATE_EXPS) snprintf(what, sizeof what, "ffn_gate/up_exps");
    else snprintf(what, sizeof what, "%.*s", (int)strcspn(g, "."), g);
    int32_t                idx[2] = { -1, -1 };
    uint8_t               *q[2]   = { NULL, NULL };
    float                 *imp    = NULL;
    lb_status              st     = LB_OK;
    bool                   any    = false;
    for (int k = 0; k < nr; k++) { /* GPTQ takes them, or the format's quantizer stores them now */
        const int32_t i = lb_method_find(c->tensors, c->n, l, roles[k]);
        if (i < 0) continue;
        if (lb_gptq_able(c->plans[i].type, c->tensors[i].t->ne[0])) {
            idx[k] = i;
            any    = true;
        } else if (c->plans[i].type != LB_TYPE_F32) {
            LB_TRY_RET(lb_engine_store(c, i, err));
            lb_method_log(p, "%-26s %-6s round to nearest (no GPTQ for this type or shape)", c->tensors[i].name,
                          lb_type_name(c->plans[i].type));
        }
    }
    if (!any) return LB_OK;
    const lb_tensor *t0  = lb_engine_tensor(c, idx[0] >= 0 ? idx[0] : idx[1]);
    const int64_t    n   = t0->ne[0];
    const int32_t    X   = (int32_t)t0->ne[2];
    const int32_t    mt  = p->gptq.min_tokens;
    const int64_t    min = mt == 0 ? 1 : mt < 0 ? 0 : mt == LB_GPTQ_MIN_WIDTH ? n : mt;
    for (int k = 0; k < nr; k++)
        if (idx[k] >= 0) {
            const lb_tensor *t = lb_engine_tensor(c, idx[k]);
            q[k] = malloc(lb_row_size(c->plans[idx[k]].type, n) * (size_t)(t->ne[1] * t->ne[2]));
            LB_GOTO_IF(!q[k], err, LB_ERR_NOMEM, "gptq: out of memory for %s", c->tensors[idx[k]].name);
        }
    imp = malloc((size_t)n * sizeof *imp);
    LB_GOTO_IF(!imp, err, LB_ERR_NOMEM, "out of memory");
    const size_t  hb    = (size_t)n * (size_t)n * sizeof(double);
    const int32_t chunk = hb * (size_t)X <= EXPERT_H_BUDGET ? X : hb >= EXPERT_H_BUDGET ? 1 : (int32_t)(EXPERT_H_BUDGET / hb);
    int32_t       n_gptq = 0, n_rare = 0;
    for (int32_t e0 = 0; e0 < X; e0 += chunk) {
        const int32_t e1 = e0 + chunk < X ? e0 + chunk : X;
        const double  tc = lb_time_sec();
        lb_calib_select_experts(c->cal_h, l, roles[0], e0, e1);
        LB_TRY(lb_calib_clear(c->cal_h, l, roles[0], err));
        LB_TRY(lb_calib_run_states(c->cal_h, c->ctx_q, c->sq, LB_CALIB_STAY, err));
        int32_t topped = 0;
        if (min > 0 && !heads) LB_TRY(lb_calib_run_states_prior(c->cal_h, c->ctx_q, c->sq, min, &topped, err));
        n_rare += topped;
        c->summary->seconds_calib += lb_time_sec() - tc;
        const double tm = lb_time_sec();
        int64_t      mine0, mine1; /* under MPI this rank's experts of the chunk (whole experts) */
        lb_dist_share_rows(e1 - e0, 1, lb_dist_rank(), &mine0, &mine1);
        lb_status done = LB_OK;
        for (int32_t e = e0 + (int32_t)mine0; e < e0 + mine1 && done == LB_OK; e++) {
            const lb_act_stats *s       = lb_calib_get_expert(c->cal_h, l, roles[0], e);
            const bool          gq      = s->count > 0 || s->prior > 0;
            const bool          has_imp = lb_act_importance(s, imp);
            for (int k = 0; k < nr && done == LB_OK; k++) {
                if (idx[k] < 0) continue;
                const lb_type  type = c->plans[idx[k]].type;
                lb_tensor     *t    = lb_engine_tensor(c, idx[k]);
                const int64_t  rows = t->ne[1];
                const size_t   rs   = lb_row_size(type, n);
                float         *W    = (float *)t->data + (size_t)e * (size_t)rows * (size_t)n;
                uint8_t       *qe   = q[k] + (size_t)e * (size_t)rows * rs;
                if (gq) {
                    lb_gptq_params gp = p->gptq;
                    gp.range          = p->range;
                    done = lb_gptq_quantize(W, rows, n, s->H, type, &gp, has_imp ? imp : NULL, qe, err);
                } else { /* no tokens, no prior: round to nearest (--range's clipping first); the
                          * next passes see its values */
                    lb_method_prepare_rows(W, rows, n, type, NULL, c);
                    lb_quantize_rows(type, qe, W, rows, n, NULL);
                    for (int64_t r = 0; r < rows; r++)
                        lb_type_get_traits(type)->to_float(W + r * n, qe + (size_t)r * rs, n);
                }
            }
        }
        LB_TRY(lb_dist_agree(done, err));
        for (int k = 0; k < nr; k++) /* every rank's experts to every rank */
            if (idx[k] >= 0) {
                lb_tensor    *t = lb_engine_tensor(c, idx[k]);
                const int64_t rows = t->ne[1];
                const size_t  rs   = lb_row_size(c->plans[idx[k]].type, n);
                LB_TRY(lb_dist_gather_rows((float *)t->data + (size_t)e0 * (size_t)rows * (size_t)n, (e1 - e0) * rows,
                                           (size_t)n * sizeof(float), rows, err));
                LB_TRY(lb_dist_gather_rows(q[k] + (size_t)e0 * (size_t)rows * rs, (e1 - e0) * rows, rs, rows, err));
            }
        for (int32_t e = e0; e < e1; e++) {
            const lb_act_stats *s  = lb_calib_get_expert(c->cal_h, l, roles[0], e);
            const bool          gq = s->count > 0 || s->prior > 0;
            n_gptq += gq;
            if (!heads) /* (a head sees every token: its summary line below) */
                lb_method_log(p, "blk.%d %s expert %-3d %6lld tokens: %s", l, what, e, (long long)s->count,
                              !gq ? "round to nearest (no tokens)" : s->prior > 0 ? "GPTQ, topped up (few tokens)" : "GPTQ");
        }
        lb_calib_release(c->cal_h, l, roles[0]);
        c->summary->seconds_method += lb_time_sec() - tm;
    }
    lb_method_log(p, "blk.%d %s: %d %s GPTQ, %d of them topped up to %lld tokens", l, what, n_gptq,
                  heads ? "heads" : "experts", n_rare, (long long)min);
    for (int k = 0; k < nr; k++)
        if (idx[k] >= 0) {
            c->data[idx[k]] = q[k];
            q[k]            = NULL;
        }
fail:
    free(q[0]), free(q[1]);
    free(imp);
    return st;
}
