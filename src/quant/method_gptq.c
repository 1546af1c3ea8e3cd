/* GPTQ over a whole model, true-sequential: layer l's inputs are recomputed through the
 * already-quantized layers before it (a working f32 copy updated in place with what the file
 * will hold; each window's residual stream at the layer's input is kept, so a calibration pass
 * runs that layer alone), and within a layer q/k/v, then o, then gate/up, then down. The target is the
 * unquantized model's output (unless self_target): the same windows run through the
 * unquantized model beside, and each weight is refit to the quantized inputs first
 * (lb_gptq_retarget), so GPTQ also makes up for the error earlier layers passed on; the token
 * embedding is rounded to nearest before the first layer, the output head comes last (a
 * tied one is the embedding, already fixed). Each matrix whose type has blocks (or per-row
 * or per-tensor scales and grid access) goes through lb_gptq_quantize (gptq.c); others are
 * rounded to nearest. Reports each matrix's output error, RTN against GPTQ. */
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "formats/grid.h"
#include "quant_internal.h"

/* GPTQ can take the tensor: a block type whose blocks divide its rows, or a row-scaled type
 * (per channel, per tensor) with grid access, the row being its block */
static bool gptq_able(lb_type t, int64_t ncols) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    if (!tr || !tr->is_quantized) return false;
    if (tr->row_size) return lb_type_grid(t) != NULL;
    return tr->block_size > 1 && ncols % tr->block_size == 0;
}

/* RTN of W onto type t, dequantized into out (for the before/after report) */
static void rtn_into(const float *W, int64_t nr, int64_t n, lb_type t, float *out, uint8_t *q) {
    lb_quantize_rows(t, q, W, nr, n, NULL);
    const size_t rs = lb_row_size(t, n);
    for (int64_t r = 0; r < nr; r++) lb_type_get_traits(t)->to_float(out + r * n, q + (size_t)r * rs, n);
}

/* A, C: the unquantized model's input statistics (sum X X^T, sum X X'^T) for the f32 target,
 * or NULL (the layer's own outputs are the target) */
static lb_status gptq_tensor(const lb_quant_params *p, const lb_named_tensor *wt, lb_type type,
                             const lb_act_stats *s, const double *A, const double *C, void **data,
                             lb_quant_summary *sum, lb_error *err) {
    float        *W = (float *)wt->t->data; /* the working copy: updated in place */
    const int64_t n = wt->t->ne[0], nr = wt->t->ne[1];
    const size_t  bytes = lb_row_size(type, n) * (size_t)nr;
    uint8_t      *q = malloc(bytes), *q2 = malloc(bytes);
    float        *orig = malloc((size_t)(n * nr) * sizeof *orig), *rtn = malloc((size_t)(n * nr) * sizeof *rtn);
    float        *imp = malloc((size_t)n * sizeof *imp);
    lb_status     st = LB_OK;
    LB_GOTO_IF(!q || !q2 || !orig || !rtn || !imp, err, LB_ERR_NOMEM, "out of memory");
    memcpy(orig, W, (size_t)(n * nr) * sizeof *orig);
    const bool has_imp = lb_act_importance(s, imp);
    if (C) LB_TRY(lb_gptq_retarget(W, nr, n, C, s->H, p->gptq.damp, err));
    LB_TRY(lb_gptq_quantize(W, nr, n, s->H, type, &p->gptq, has_imp ? imp : NULL, q, err));
    rtn_into(orig, nr, n, type, rtn, q2);
    const double e_rtn = C ? lb_output_error_cross(orig, rtn, nr, n, A, C, s->H) : lb_output_error(orig, rtn, nr, n, s->H);
    const double e_gq  = C ? lb_output_error_cross(orig, W, nr, n, A, C, s->H) : lb_output_error(orig, W, nr, n, s->H);
    sum->err_rtn += e_rtn;
    sum->err_method += e_gq;
    lb_method_log(p, "%-26s %-6s output error: RTN %.6f -> GPTQ %.6f (%.2fx)", wt->name, lb_type_name(type),
          e_rtn, e_gq, e_gq > 0 ? e_rtn / e_gq : 0.0);
    *data = q;
    q     = NULL;
fail:
    free(q);
    free(q2);
    free(orig);
    free(rtn);
    free(imp);
    return st;
}

lb_status lb_method_gptq(lb_method_ctx *c, lb_error *err) {
    const lb_model        *m   = c->model;
    const lb_quant_params *p   = c->p;
    const lb_tensor_plan  *pl  = c->plans;
    const int32_t          n   = c->n;
    void                 **data = c->data;
    lb_quant_summary      *sum = c->summary;
    lb_model        *work = NULL;
    lb_context      *ctx  = NULL;
    lb_calib        *cal  = NULL;
    lb_context      *ref  = NULL; /* the unquantized model, for the f32 target */
    lb_calib_states *sq = NULL, *sr = NULL; /* each window at the current layer's input */
    double          *A = NULL, *C = NULL;
    lb_named_tensor *wts  = malloc((size_t)lb_model_n_tensors(m) * sizeof *wts);
    lb_status        st   = LB_OK;
    LB_GOTO_IF(!wts, err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(lb_method_windows(c, err));
    const int32_t *win = c->windows, n_win = c->n_windows;
    LB_TRY(lb_model_clone_f32(m, &work, err));
    lb_model_tensors(work, wts);
    LB_TRY(lb_context_create(&ctx, work, p->calib.n_ctx, p->calib.n_ctx, err));
    LB_TRY(lb_calib_create(&cal, work, true, err));
    if (!p->gptq.self_target) {
        const int64_t mx = m->cfg.n_ff > m->cfg.n_embd ? m->cfg.n_ff : m->cfg.n_embd;
        A = malloc((size_t)(mx * mx) * sizeof *A);
        C = malloc((size_t)(mx * mx) * sizeof *C);
        LB_GOTO_IF(!A || !C, err, LB_ERR_NOMEM, "out of memory");
        LB_TRY(lb_context_create(&ref, m, p->calib.n_ctx, p->calib.n_ctx, err));
    }
    /* within a layer: q, k, v share an input; then o; gate and up share one; then down.
     * The output head comes last, after every layer is quantized. */
    static const struct {
        lb_tensor_role in;
        int            n;
        lb_tensor_role roles[3];
    } groups[4] = {
        { LB_ROLE_ATTN_Q, 3, { LB_ROLE_ATTN_Q, LB_ROLE_ATTN_K, LB_ROLE_ATTN_V } },
        { LB_ROLE_ATTN_OUTPUT, 1, { LB_ROLE_ATTN_OUTPUT } },
        { LB_ROLE_FFN_GATE, 2, { LB_ROLE_FFN_GATE, LB_ROLE_FFN_UP } },
        { LB_ROLE_FFN_DOWN, 1, { LB_ROLE_FFN_DOWN } },
    };
    /* The token embedding first, rounded to nearest as the file will hold it, so that every
     * layer is calibrated on the embeddings the quantized model looks up. A tied embedding is
     * the output head too: its values are fixed here, so the head gets no GPTQ (GPTQ on it,
     * last, left every layer calibrated on f32 embeddings: babyllama int3_g32 KLD 0.92
     * against 0.60 this way; with a q8_0 embedding, at 4 bits, within 5% either way). */
    const int32_t ie = lb_method_find(wts, n, -1, LB_ROLE_TOKEN_EMBD);
    if (ie >= 0 && pl[ie].type != LB_TYPE_F32) {
        LB_TRY(lb_method_round_trip(wts[ie].t, pl[ie].type, NULL, NULL, err));
        lb_method_log(p, "%-26s %-6s round to nearest (the embedding, before the layers%s)", wts[ie].name,
                      lb_type_name(pl[ie].type), work->tied_output ? "; tied: no GPTQ as the output head" : "");
    }
    LB_TRY(lb_calib_states_create(&sq, work, win, n_win, p->calib.n_ctx, err));
    if (ref) LB_TRY(lb_calib_states_create(&sr, m, win, n_win, p->calib.n_ctx, err));
    lb_progress bar;
    if (p->progress) lb_progress_begin(&bar, "gptq", m->cfg.n_layers + 1);
    for (int32_t l = 0; l <= m->cfg.n_layers; l++) {
        const bool head = l == m->cfg.n_layers;
        for (int g = 0; g < (head ? !(work->tied_output && ie >= 0) : 4); g++) {
            const lb_tensor_role in = head ? LB_ROLE_OUTPUT : groups[g].in;
            const int32_t        li = head ? -1 : l;
            const double         t0 = lb_time_sec();
            lb_calib_select(cal, li, in);
            lb_calib_clear(cal, li, in);
            if (ref) LB_TRY(lb_calib_run_states_cross(cal, ctx, sq, ref, sr, C, A, err));
            else LB_TRY(lb_calib_run_states(cal, ctx, sq, err));
            sum->seconds_calib += lb_time_sec() - t0;
            const double        t1 = lb_time_sec();
            const lb_act_stats *s  = lb_calib_get(cal, li, in);
            for (int k = 0; k < (head ? 1 : groups[g].n); k++) {
                const lb_tensor_role role =
                    head ? (work->tied_output ? LB_ROLE_TOKEN_EMBD : LB_ROLE_OUTPUT) : groups[g].roles[k];
                const int32_t i = lb_method_find(wts, n, li, role);
                if (i < 0) continue;
                const lb_type type = pl[i].type;
                if (gptq_able(type, wts[i].t->ne[0])) {
                    LB_TRY(gptq_tensor(p, &wts[i], type, s, A, C, &data[i], sum, err));
                } else if (type != LB_TYPE_F32) { /* later layers see what the file will hold */
                    LB_TRY(lb_method_round_trip(wts[i].t, type, NULL, NULL, err));
                    lb_method_log(p, "%-26s %-6s round to nearest (no GPTQ for this type or shape)", wts[i].name,
                          lb_type_name(type));
                }
            }
            sum->seconds_method += lb_time_sec() - t1;
        }
        if (!head) { /* the next layer's inputs: through this layer as quantized (and f32) */
            const double t0 = lb_time_sec();
            LB_TRY(lb_calib_states_advance(sq, ctx, err));
            if (sr) LB_TRY(lb_calib_states_advance(sr, ref, err));
            sum->seconds_calib += lb_time_sec() - t0;
        }
        if (p->progress) lb_progress_update(&bar, l + 1);
    }
    if (p->progress) lb_progress_end(&bar);
fail:
    lb_calib_states_free(sq);
    lb_calib_states_free(sr);
    lb_calib_free(cal);
    lb_context_free(ctx);
    lb_context_free(ref);
    free(A);
    free(C);
    lb_model_free(work);
    free(wts);
    return st;
}

