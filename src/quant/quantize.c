/* The quantization driver: plan each tensor's type (recipe.c), choose values with the
 * method, store them in the format, write the GGUF with its provenance in metadata.
 *   rtn      round to nearest (the format's own quantizer), no data needed
 *   imatrix  the format's quantizer weighted by per-channel importance (mean x^2 of the
 *            layer's input over the calibration text), as llama-quantize --imatrix does
 *   gptq     GPTQ on every weight matrix whose type has blocks, true-sequential: layer l's
 *            inputs are recomputed through the already-quantized layers before it, and
 *            within a layer q/k/v, then o, then gate/up, then down. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/quant.h"

typedef struct {
    const lb_quant_params *p;
    const lb_model        *m;
    int32_t                n_windows;
} meta_ctx;

static lb_status add_meta(lb_gguf_writer *w, void *user) {
    const meta_ctx        *c  = user;
    const lb_quant_params *p  = c->p;
    lb_status              st = lb_gguf_writer_set_str(w, "general.quantized_by", "lowbit " LB_VERSION);
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.version", LB_VERSION);
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.quantize.recipe", p->recipe->name);
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.quantize.method", p->method ? p->method : "rtn");
    if (!st) st = lb_gguf_writer_set_bool(w, "lowbit.quantize.pure", p->pure);
    char buf[32];
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.quantize.range", lb_range_name(&p->range, buf, sizeof buf));
    if (!st && c->n_windows > 0) {
        st = lb_gguf_writer_set_str(w, "lowbit.calibration.file", p->calib_text);
        if (!st) st = lb_gguf_writer_set_u32(w, "lowbit.calibration.samples", (uint32_t)c->n_windows);
        if (!st) st = lb_gguf_writer_set_u32(w, "lowbit.calibration.ctx", (uint32_t)p->calib.n_ctx);
        if (!st) st = lb_gguf_writer_set_u64(w, "lowbit.calibration.seed", p->calib.seed);
    }
    if (!st && p->method && !strcmp(p->method, "gptq")) {
        st = lb_gguf_writer_set_f32(w, "lowbit.gptq.damp", (float)(p->gptq.damp > 0 ? p->gptq.damp : 0.01));
        if (!st) st = lb_gguf_writer_set_bool(w, "lowbit.gptq.act_order", p->gptq.act_order);
    }
    return st;
}

static void prepare_rows(float *rows, int64_t nr, int64_t n, lb_type t, const float *importance,
                         void *user) {
    const meta_ctx *c = user;
    lb_range_apply(rows, nr, n, t, &c->p->range, importance);
}

static void logf_(const lb_quant_params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const lb_quant_params *p, const char *fmt, ...) {
    if (!p->log) return;
    char    line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->log(p->log_user, line);
}

/* calibration windows from p->calib_text */
static lb_status load_windows(const lb_model *m, const lb_quant_params *p, int32_t **win,
                              int32_t *n_win, lb_error *err) {
    LB_RETURN_IF(!p->calib_text, err, LB_ERR_PARAM, "method '%s' needs calibration text (--calib FILE)",
                 p->method);
    char     *text;
    size_t    len;
    lb_status st = lb_read_file(p->calib_text, &text, &len, err);
    if (st) return st;
    st = lb_calib_windows(m->vocab, text, len, &p->calib, win, n_win, err);
    free(text);
    return st;
}

static bool is_matrix(const lb_named_tensor *nt) { return nt->t->ne[1] > 1; }

/* GPTQ can take the tensor: a block type whose blocks divide its rows */
static bool gptq_able(lb_type t, int64_t ncols) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    return tr && tr->is_quantized && tr->block_size > 1 && ncols % tr->block_size == 0;
}

/* quantize-dequantize a working tensor in place with RTN (what the file will hold) */
static lb_status round_trip(float *w, const lb_tensor *t, lb_type type) {
    const int64_t n = t->ne[0], nr = lb_tensor_nelements(t) / n;
    const size_t  rs = lb_row_size(type, n);
    uint8_t      *q = malloc(rs);
    if (!q) return LB_ERR_NOMEM;
    for (int64_t r = 0; r < nr; r++) {
        lb_quantize_rows(type, q, w + r * n, 1, n, NULL);
        lb_type_get_traits(type)->to_float(w + r * n, q, n);
    }
    free(q);
    return LB_OK;
}

/* RTN of W onto type t, dequantized into out (for the before/after report) */
static void rtn_into(const float *W, int64_t nr, int64_t n, lb_type t, float *out, uint8_t *q) {
    lb_quantize_rows(t, q, W, nr, n, NULL);
    const size_t rs = lb_row_size(t, n);
    for (int64_t r = 0; r < nr; r++) lb_type_get_traits(t)->to_float(out + r * n, q + (size_t)r * rs, n);
}

static lb_status gptq_tensor(const lb_quant_params *p, const lb_named_tensor *wt, lb_type type,
                             const lb_act_stats *s, void **data, lb_quant_summary *sum,
                             lb_error *err) {
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
    LB_TRY(lb_gptq_quantize(W, nr, n, s->H, type, &p->gptq, has_imp ? imp : NULL, q, err));
    rtn_into(orig, nr, n, type, rtn, q2);
    const double e_rtn = lb_output_error(orig, rtn, nr, n, s->H);
    const double e_gq  = lb_output_error(orig, W, nr, n, s->H);
    sum->err_rtn += e_rtn;
    sum->err_method += e_gq;
    logf_(p, "%-26s %-6s output error: RTN %.6f -> GPTQ %.6f (%.2fx)", wt->name, lb_type_name(type),
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

/* find the working tensor of (layer, role) */
static int32_t find_role(const lb_named_tensor *ts, int32_t n, int32_t layer, lb_tensor_role role) {
    for (int32_t i = 0; i < n; i++)
        if (ts[i].layer == layer && ts[i].role == role) return i;
    return -1;
}

static lb_status method_gptq(const lb_model *m, const lb_quant_params *p, const lb_tensor_plan *pl,
                             int32_t n, void **data, int32_t *n_win_out, lb_quant_summary *sum,
                             lb_error *err) {
    lb_model        *work = NULL;
    lb_context      *ctx  = NULL;
    lb_calib        *cal  = NULL;
    int32_t         *win  = NULL, n_win = 0;
    lb_named_tensor *wts  = malloc((size_t)(3 + 9 * m->cfg.n_layers) * sizeof *wts);
    lb_status        st   = LB_OK;
    LB_GOTO_IF(!wts, err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(load_windows(m, p, &win, &n_win, err));
    *n_win_out = n_win;
    LB_TRY(lb_model_clone_f32(m, &work, err));
    lb_model_tensors(work, wts);
    LB_TRY(lb_context_create(&ctx, work, p->calib.n_ctx, p->calib.n_ctx, err));
    LB_TRY(lb_calib_create(&cal, work, true, err));
    /* within a layer: q, k, v share an input; then o; gate and up share one; then down.
     * The output head comes last, after every layer is quantized (the tied embedding is
     * the output head). */
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
    lb_progress bar;
    if (p->progress) lb_progress_begin(&bar, "gptq", m->cfg.n_layers + 1);
    for (int32_t l = 0; l <= m->cfg.n_layers; l++) {
        const bool head = l == m->cfg.n_layers;
        for (int g = 0; g < (head ? 1 : 4); g++) {
            const lb_tensor_role in = head ? LB_ROLE_OUTPUT : groups[g].in;
            const int32_t        li = head ? -1 : l;
            const double         t0 = lb_time_sec();
            lb_calib_select(cal, li, in);
            lb_calib_clear(cal, li, in);
            lb_context_set_layer_limit(ctx, head ? 0 : l + 1);
            LB_TRY(lb_calib_run(cal, ctx, win, n_win, p->calib.n_ctx, err));
            sum->seconds_calib += lb_time_sec() - t0;
            const double        t1 = lb_time_sec();
            const lb_act_stats *s  = lb_calib_get(cal, li, in);
            for (int k = 0; k < (head ? 1 : groups[g].n); k++) {
                const lb_tensor_role role =
                    head ? (work->tied_output ? LB_ROLE_TOKEN_EMBD : LB_ROLE_OUTPUT) : groups[g].roles[k];
                const int32_t i = find_role(wts, n, li, role);
                if (i < 0) continue;
                const lb_type type = pl[i].type;
                if (gptq_able(type, wts[i].t->ne[0])) {
                    LB_TRY(gptq_tensor(p, &wts[i], type, s, &data[i], sum, err));
                } else if (type != LB_TYPE_F32) { /* later layers see what the file will hold */
                    LB_GOTO_IF(round_trip((float *)wts[i].t->data, wts[i].t, type), err, LB_ERR_NOMEM,
                               "out of memory");
                    logf_(p, "%-26s %-6s round to nearest (no GPTQ for this type or shape)", wts[i].name,
                          lb_type_name(type));
                }
            }
            sum->seconds_method += lb_time_sec() - t1;
        }
        if (p->progress) lb_progress_update(&bar, l + 1);
    }
    if (p->progress) lb_progress_end(&bar);
fail:
    lb_calib_free(cal);
    lb_context_free(ctx);
    lb_model_free(work);
    free(wts);
    free(win);
    return st;
}

/* importance of every tensor from one calibration pass over the unquantized model */
static lb_status method_imatrix(const lb_model *m, const lb_quant_params *p, const lb_named_tensor *ts,
                                int32_t n, float **imp, int32_t *n_win_out, lb_quant_summary *sum,
                                lb_error *err) {
    lb_context *ctx = NULL;
    lb_calib   *cal = NULL;
    int32_t    *win = NULL, n_win = 0;
    lb_status   st  = LB_OK;
    const double t0 = lb_time_sec();
    LB_TRY(load_windows(m, p, &win, &n_win, err));
    *n_win_out = n_win;
    LB_TRY(lb_context_create(&ctx, m, p->calib.n_ctx, p->calib.n_ctx, err));
    LB_TRY(lb_calib_create(&cal, m, false, err));
    LB_TRY(lb_calib_run(cal, ctx, win, n_win, p->calib.n_ctx, err));
    for (int32_t i = 0; i < n; i++) {
        const lb_act_stats *s = is_matrix(&ts[i]) ? lb_calib_get(cal, ts[i].layer, ts[i].role) : NULL;
        if (!s) continue;
        imp[i] = malloc((size_t)s->n * sizeof *imp[i]);
        LB_GOTO_IF(!imp[i], err, LB_ERR_NOMEM, "out of memory");
        if (!lb_act_importance(s, imp[i])) {
            free(imp[i]);
            imp[i] = NULL;
        }
    }
    sum->seconds_calib = lb_time_sec() - t0;
fail:
    lb_calib_free(cal);
    lb_context_free(ctx);
    free(win);
    return st;
}

lb_status lb_quantize_model(const lb_model *m, const char *out_path, const lb_quant_params *p,
                            lb_tensor_plan *plans, lb_named_tensor *tensors,
                            lb_quant_summary *summary, lb_error *err) {
    const int32_t    cap    = 3 + 9 * m->cfg.n_layers;
    lb_tensor_plan  *own_pl = plans ? NULL : malloc((size_t)cap * sizeof *own_pl);
    lb_named_tensor *own_nt = tensors ? NULL : malloc((size_t)cap * sizeof *own_nt);
    lb_type         *types  = malloc((size_t)cap * sizeof *types);
    void           **data   = calloc((size_t)cap, sizeof *data);
    float          **imp    = calloc((size_t)cap, sizeof *imp);
    const char      *method = p->method ? p->method : "rtn";
    lb_status        st     = LB_OK;
    const double     t0     = lb_time_sec();
    int32_t          n, n_win = 0;
    lb_quant_summary s = { 0 };
    if (!plans) plans = own_pl;
    if (!tensors) tensors = own_nt;
    LB_GOTO_IF(!plans || !tensors || !types || !data || !imp, err, LB_ERR_NOMEM, "out of memory");
    LB_GOTO_IF(strcmp(method, "rtn") && strcmp(method, "imatrix") && strcmp(method, "gptq"), err,
               LB_ERR_UNSUPPORTED, "method '%s' is not available (rtn, imatrix, gptq are)", method);
    LB_TRY(lb_quant_plan(m, p, tensors, plans, &n, err));
    s.bytes_in  = lb_model_nbytes(m);
    s.n_tensors = n;
    for (int32_t i = 0; i < n; i++) {
        types[i] = plans[i].type;
        s.n_fallback += plans[i].fallback;
        const lb_tensor *t = tensors[i].t;
        s.bytes_out += lb_row_size(types[i], t->ne[0]) * (size_t)(lb_tensor_nelements(t) / t->ne[0]);
        s.n_params += lb_tensor_nelements(t);
    }
    if (p->imatrix) { /* importance from a file: for every method */
        int32_t found = 0;
        for (int32_t i = 0; i < n; i++) {
            if (!is_matrix(&tensors[i])) continue;
            imp[i] = malloc((size_t)tensors[i].t->ne[0] * sizeof *imp[i]);
            LB_GOTO_IF(!imp[i], err, LB_ERR_NOMEM, "out of memory");
            if (lb_imatrix_get(p->imatrix, tensors[i].name, tensors[i].t->ne[0], imp[i])) {
                found++;
            } else {
                free(imp[i]);
                imp[i] = NULL;
            }
        }
        LB_GOTO_IF(found == 0, err, LB_ERR_PARAM, "the importance matrix has no entry for this "
                   "model's tensors (names or sizes differ)");
    } else if (!strcmp(method, "imatrix")) {
        LB_TRY(method_imatrix(m, p, tensors, n, imp, &n_win, &s, err));
    }
    if (!strcmp(method, "gptq")) LB_TRY(method_gptq(m, p, plans, n, data, &n_win, &s, err));
    meta_ctx            mc   = { p, m, n_win };
    const lb_write_plan plan = { .types = types, .data = (const void *const *)data,
                                 .importance = (const float *const *)imp,
                                 .file_type = p->recipe->file_type, .add_meta = add_meta,
                                 .prepare_rows = prepare_rows, .user = &mc,
                                 .progress = p->progress && strcmp(method, "gptq") };
    LB_TRY(lb_model_write_gguf(m, out_path, &plan, err));
    s.bpw           = 8.0 * (double)s.bytes_out / (double)s.n_params;
    s.seconds       = lb_time_sec() - t0;
    s.calib_windows = n_win;
    s.calib_ctx     = n_win ? p->calib.n_ctx : 0;
    if (summary) *summary = s;
fail:
    for (int32_t i = 0; data && i < cap; i++) free(data[i]);
    for (int32_t i = 0; imp && i < cap; i++) free(imp[i]);
    free(data);
    free(imp);
    free(own_pl);
    free(own_nt);
    free(types);
    return st;
}
