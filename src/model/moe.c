/* A mixture of experts' FFN (moe.h), as llama.cpp's build_moe_ffn computes it for Mixtral,
 * Qwen2-MoE, Qwen3-MoE and DeepSeek-V2/V3:
 *   p = softmax(Wr · x), or sigmoid (DeepSeek-V3)   over the n_expert experts
 *   S = the n_expert_used largest of p + b          (b: the selection bias, DeepSeek-V3; only
 *                                                    among the chosen groups' experts when they
 *                                                    are grouped; ties: the lower index first)
 *   w = p[S], divided by its sum when the family renormalizes (clamped at 2^-14, as llama.cpp),
 *       times the weights' scale
 *   y = Σ_{e in S} w_e · Wdown_e · act(Wgate_e · x, Wup_e · x)
 * plus, with shared experts, Wdown_s · act(Wgate_s · x, Wup_s · x), times sigmoid(g · x) when
 * they have a gate (Qwen2-MoE).
 * The batch's tokens are grouped by expert, so each chosen expert's matrices are read once per
 * batch, and an expert no token chose is not read at all (one token reads n_expert_used). */
#include <math.h>
#include <string.h>

#include "moe.h"

/* the k largest of p[0..n) into sel, largest first; equal values: the lower index first;
 * only where ok[e] when ok is given */
static void top_k(const float *p, int32_t n, int32_t k, int32_t *sel, const bool *ok) {
    for (int32_t j = 0; j < k; j++) {
        int32_t best = -1;
        for (int32_t e = 0; e < n; e++) {
            bool taken = ok && !ok[e];
            for (int32_t q = 0; q < j && !taken; q++) taken = sel[q] == e;
            if (!taken && (best < 0 || p[e] > p[best])) best = e;
        }
        sel[j] = best;
    }
}

/* DeepSeek-V3's groups: ok[e] for the experts of the n_group_used groups whose two largest
 * selection scores sum highest (ties: the lower group) */
static void choose_groups(const lb_llama_config *c, const float *s, bool *ok) {
    const int32_t G = c->n_expert_groups, per = c->n_expert / G;
    float         sum[LB_MOE_MAX_EXPERTS];
    int32_t       two[2], pick[LB_MOE_MAX_EXPERTS];
    for (int32_t g = 0; g < G; g++) {
        top_k(s + g * per, per, 2, two, NULL);
        sum[g] = s[g * per + two[0]] + s[g * per + two[1]];
    }
    top_k(sum, G, c->n_group_used, pick, NULL);
    for (int32_t e = 0; e < c->n_expert; e++) ok[e] = false;
    for (int32_t j = 0; j < c->n_group_used; j++)
        for (int32_t e = 0; e < per; e++) ok[pick[j] * per + e] = true;
}

void lb_moe_route(const lb_llama_config *c, bool norm, const float *bias, float *logits, int32_t T, int32_t *sel,
                  float *w) {
    const int32_t X = c->n_expert, K = c->n_expert_used;
    const bool    groups = c->n_expert_groups > 1;
    for (int32_t t = 0; t < T; t++) {
        float *p = logits + (size_t)t * (size_t)X;
        if (c->moe_gating == LB_GATING_SIGMOID) {
            for (int32_t e = 0; e < X; e++) p[e] = 1.0f / (1.0f + expf(-p[e]));
        } else {
            float mx = p[0], sum = 0;
            for (int32_t e = 1; e < X; e++) mx = p[e] > mx ? p[e] : mx;
            for (int32_t e = 0; e < X; e++) sum += p[e] = expf(p[e] - mx);
            for (int32_t e = 0; e < X; e++) p[e] /= sum;
        }
        float        biased[LB_MOE_MAX_EXPERTS];
        bool         ok[LB_MOE_MAX_EXPERTS];
        const float *s = p; /* what chooses: the probabilities, plus the selection bias */
        if (bias) {
            for (int32_t e = 0; e < X; e++) biased[e] = p[e] + bias[e];
            s = biased;
        }
        if (groups) choose_groups(c, s, ok);
        int32_t *si = sel + (size_t)t * (size_t)K;
        float   *wt = w + (size_t)t * (size_t)K;
        top_k(s, X, K, si, groups ? ok : NULL);
        float ws = 0;
        for (int32_t j = 0; j < K; j++) ws += wt[j] = p[si[j]];
        if (norm) {
            ws = ws > 6.103515625e-5f ? ws : 6.103515625e-5f;
            for (int32_t j = 0; j < K; j++) wt[j] /= ws;
        }
        if (c->moe_w_scale > 0 && c->moe_w_scale != 1.0f)
            for (int32_t j = 0; j < K; j++) wt[j] *= c->moe_w_scale;
    }
}

/* io->gate [T', F] = act(Wgate · x, Wup · x) for x [T', E]: an expert's down input */
static void down_input(const lb_moe_io *io, lb_mat gate, lb_mat up, const float *x, int32_t T, int64_t F) {
    lb_mat      gu[2]  = { gate, up };
    float *const o2[2] = { io->gate, io->up };
    lb_matmul_multi(o2, x, gu, 2, T, io->mode, io->scratch);
    io->act(io->gate, io->up, (int64_t)T * F);
}

/* out [T', E] = Wdown · act(Wgate · x, Wup · x) for x [T', E], through the io's buffers; the
 * hook sees the down input as `role` of expert e. False: stopped there. */
static bool expert_ffn(const lb_moe_io *io, int32_t l, lb_tensor_role role, int32_t e, lb_mat gate, lb_mat up,
                       lb_mat down, const float *x, int32_t T, int64_t F, float *out) {
    down_input(io, gate, up, x, T, F);
    if (io->hook) io->hook(io->hook_user, l, role, e, io->gate, T, (int32_t)F);
    if (io->stop_at == role && role == LB_ROLE_FFN_DOWN) return false;
    lb_matmul(out, io->gate, down, T, io->mode, io->scratch);
    return true;
}

/* a probe pass (lb_context_set_probe): every token into the flagged experts' input io->stop_at */
static void probe_experts(const lb_model *m, int32_t l, lb_moe_io *io, const float *xn, int32_t T, int64_t F) {
    for (int32_t e = 0; e < m->cfg.n_expert; e++) {
        if (!io->probe_experts[e]) continue;
        if (io->stop_at == LB_ROLE_FFN_GATE_EXPS) {
            io->probe(io->probe_user, l, LB_ROLE_FFN_GATE_EXPS, e, xn, T, m->cfg.n_embd);
            continue;
        }
        down_input(io, lb_weights_expert(io->w, m, l, 0, e), lb_weights_expert(io->w, m, l, 1, e), xn, T, F);
        io->probe(io->probe_user, l, LB_ROLE_FFN_DOWN_EXPS, e, io->gate, T, (int32_t)F);
    }
}

bool lb_moe_ffn(const lb_model *m, int32_t l, lb_moe_io *io, const float *xn, int32_t T, float *out) {
    const lb_llama_config *c = &m->cfg;
    const lb_layer        *L = &m->layers[l];
    const int32_t          E = c->n_embd, X = c->n_expert, K = c->n_expert_used;
    const int64_t          FX = c->n_ff_exp > 0 ? c->n_ff_exp : c->n_ff;
    if (io->probe && (io->stop_at == LB_ROLE_FFN_GATE_EXPS || io->stop_at == LB_ROLE_FFN_DOWN_EXPS)) {
        probe_experts(m, l, io, xn, T, FX);
        return false;
    }
    lb_matmul(io->router, xn, lb_weights_get(io->w, l, LB_ROLE_FFN_GATE_INP), T, LB_MATMUL_EXACT, io->scratch);
    lb_moe_route(c, m->arch->ops.moe_norm || c->moe_norm_w, L->exp_probs_b.data, io->router, T, io->sel, io->selw);
    memset(out, 0, (size_t)T * (size_t)E * sizeof *out);
    for (int32_t e = 0; e < X; e++) {
        int32_t n = 0; /* the (token, choice) pairs that chose e, in token order */
        for (int32_t i = 0; i < T * K; i++)
            if (io->sel[i] == e) io->pick[n++] = i;
        if (n == 0) continue;
        for (int32_t r = 0; r < n; r++)
            memcpy(io->xe + (size_t)r * (size_t)E, xn + (size_t)(io->pick[r] / K) * (size_t)E, (size_t)E * sizeof *xn);
        if (io->hook) io->hook(io->hook_user, l, LB_ROLE_FFN_GATE_EXPS, e, io->xe, n, E);
        if (io->stop_at == LB_ROLE_FFN_GATE_EXPS) continue; /* every expert's input, nothing computed */
        const lb_mat g = lb_weights_expert(io->w, m, l, 0, e), u = lb_weights_expert(io->w, m, l, 1, e),
                     d = lb_weights_expert(io->w, m, l, 2, e);
        io->read += lb_tensor_nbytes(g.t) + lb_tensor_nbytes(u.t) + lb_tensor_nbytes(d.t);
        expert_ffn(io, l, LB_ROLE_FFN_DOWN_EXPS, e, g, u, d, io->xe, n, FX, io->oe);
        for (int32_t r = 0; r < n; r++) {
            const float  wt = io->selw[io->pick[r]];
            float       *y  = out + (size_t)(io->pick[r] / K) * (size_t)E;
            const float *o  = io->oe + (size_t)r * (size_t)E;
            for (int32_t i = 0; i < E; i++) y[i] += wt * o[i];
        }
    }
    if (io->stop_at == LB_ROLE_FFN_GATE_EXPS || io->stop_at == LB_ROLE_FFN_DOWN_EXPS) return false;
    if (!L->ffn_gate_shexp.data) return true;
    /* the shared experts: every token; Qwen2-MoE's scaled by sigmoid of its gate */
    if (!expert_ffn(io, l, LB_ROLE_FFN_DOWN, -1, lb_weights_get(io->w, l, LB_ROLE_FFN_GATE_SHEXP),
                    lb_weights_get(io->w, l, LB_ROLE_FFN_UP_SHEXP), lb_weights_get(io->w, l, LB_ROLE_FFN_DOWN_SHEXP), xn, T,
                    c->n_ff_shexp, io->oe))
        return false;
    const float *g = L->ffn_gate_inp_shexp.data;
    for (int32_t t = 0; t < T; t++) {
        const float *x = xn + (size_t)t * (size_t)E;
        float        z = 0;
        for (int32_t i = 0; g && i < E; i++) z += g[i] * x[i];
        const float  s = g ? 1.0f / (1.0f + expf(-z)) : 1.0f;
        float       *y = out + (size_t)t * (size_t)E;
        const float *o = io->oe + (size_t)t * (size_t)E;
        for (int32_t i = 0; i < E; i++) y[i] += s * o[i];
    }
    return true;
}
