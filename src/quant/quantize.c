/* The quantization driver: plan each tensor's type (recipe.c), run the whole-model methods
 * (W8A8's transforms) and the activation quantization, then hand the block methods to the
 * block engine (engine.c), which stores each block and writes it to the output as it goes,
 * with the run's provenance in metadata. The methods (methods.c, one file each):
 *   rtn      round to nearest (the format's own quantizer), no data needed
 *   imatrix  the format's quantizer weighted by per-channel importance (mean x^2 of the
 *            layer's input over the calibration text), as llama-quantize --imatrix does
 *   gptq     GPTQ on every weight matrix whose type has blocks, true-sequential: layer l's
 *            inputs are recomputed through the already-quantized layers before it, and
 *            within a layer q/k/v, then o, then gate/up, then down.
 *   awq      activation-aware scales folded into the model, then clipping (method_awq.c)
 *   smoothquant, llm-int8   W8A8 (recipe w8a8) transforms on the whole model (method_w8a8.c);
 *            with w8a8 the activation quantization is calibrated after them and written along. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "quant_internal.h"

typedef struct {
    const lb_quant_params *p;
    const lb_model        *m;
    int32_t                n_windows;
    const lb_actq         *actq;
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
    for (const char *a = p->method ? p->method : "rtn"; !st && *a;) { /* each method's options */
        const size_t          len = strcspn(a, "+");
        const lb_method_info *mi  = lb_method_lookup(a, len);
        if (mi && mi->meta) st = mi->meta(w, p);
        a += len + (a[len] == '+');
    }
    if (!st && c->actq) st = lb_actq_write(c->actq, c->m, w, NULL);
    return st;
}

void lb_method_prepare_rows(float *rows, int64_t nr, int64_t n, lb_type t, const float *importance,
                            void *user) {
    lb_method_ctx *c = user;
    lb_range_apply_stats(rows, nr, n, t, &c->p->range, importance, &c->range);
}

void lb_method_log(const lb_quant_params *p, const char *fmt, ...) {
    if (!p->log) return;
    char    line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->log(p->log_user, line);
}

lb_status lb_method_windows(lb_method_ctx *c, lb_error *err) {
    if (c->windows) return LB_OK;
    const lb_quant_params *p = c->p;
    LB_RETURN_IF(!p->calib_text, err, LB_ERR_PARAM,
                 "method '%s' needs calibration text (--calib FILE)", p->method);
    char     *text;
    size_t    len;
    lb_status st = lb_read_file(p->calib_text, &text, &len, err);
    if (st) return st;
    st = lb_calib_windows(c->model->vocab, text, len, &p->calib, &c->windows, &c->n_windows, err);
    free(text);
    return st;
}

void lb_method_set_model(lb_method_ctx *c, lb_model *m) {
    if (c->owned != m) lb_model_free(c->owned);
    c->owned = m;
    c->model = m;
    lb_model_tensors(m, c->tensors, lb_model_n_tensors(m));
}

int32_t lb_method_find(const lb_named_tensor *ts, int32_t n, int32_t layer, lb_tensor_role role) {
    for (int32_t i = 0; i < n; i++)
        if (ts[i].layer == layer && ts[i].role == role) return i;
    return -1;
}

lb_status lb_quantize_model(const lb_model *m, const char *out_path, const lb_quant_params *p,
                            lb_tensor_plan *plans, lb_named_tensor *tensors, int32_t room,
                            lb_quant_summary *summary, lb_error *err) {
    const int32_t    cap    = lb_model_n_tensors(m);
    LB_RETURN_IF(!plans != !tensors || ((plans || tensors) && room < cap), err, LB_ERR_PARAM,
                 "give plans and tensors with room for %d entries (or neither)", cap);
    lb_tensor_plan  *own_pl = plans ? NULL : malloc((size_t)cap * sizeof *own_pl);
    lb_named_tensor *own_nt = tensors ? NULL : malloc((size_t)cap * sizeof *own_nt);
    lb_type         *types  = malloc((size_t)cap * sizeof *types);
    const char      *method = p->method ? p->method : "rtn";
    lb_quant_summary s      = { 0 };
    lb_method_ctx    c      = { .model = m, .p = p, .summary = &s };
    lb_status        st     = LB_OK;
    const double     t0     = lb_time_sec();
    c.data       = calloc((size_t)cap, sizeof *c.data);
    c.importance = calloc((size_t)cap, sizeof *c.importance);
    if (!plans) plans = own_pl;
    if (!tensors) tensors = own_nt;
    c.tensors = tensors;
    c.plans   = plans;
    LB_GOTO_IF(!plans || !tensors || !types || !c.data || !c.importance, err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(lb_quant_check(p, err)); /* the names, their order and needs, before any work */
    LB_TRY(lb_quant_plan(m, p, tensors, plans, cap, &c.n, err));
    if (!p->allow_nonfinite) LB_TRY(lb_quant_check_values(tensors, plans, c.n, err));
    for (int32_t i = 0; i < c.n && !p->imatrix && !strcmp(method, "rtn"); i++)
        LB_GOTO_IF(lb_recipe_requires_importance(p->recipe, &tensors[i], plans[i].type), err, LB_ERR_PARAM,
                   "%s: %s needs an importance matrix, as in llama.cpp: give --imatrix FILE "
                   "(llama-imatrix's or lowbit calibrate's) or --method imatrix --calib TEXT",
                   tensors[i].name, lb_type_name(plans[i].type));
    s.bytes_in  = lb_model_nbytes(m);
    s.n_tensors = c.n;
    for (int32_t i = 0; i < c.n; i++) {
        types[i] = plans[i].type;
        s.n_fallback += plans[i].fallback;
        const lb_tensor *t = tensors[i].t;
        s.bytes_out += lb_row_size(types[i], t->ne[0]) * (size_t)(lb_tensor_nelements(t) / t->ne[0]);
        s.n_params += lb_tensor_nelements(t);
    }
    if (p->imatrix) { /* importance from a file: for every method */
        int32_t found = 0;
        for (int32_t i = 0; i < c.n; i++) {
            if (tensors[i].t->ne[1] == 1) continue;
            /* a mixture of experts' stacked experts: a vector each */
            c.importance[i] = malloc((size_t)(tensors[i].t->ne[0] * tensors[i].t->ne[2]) * sizeof *c.importance[i]);
            LB_GOTO_IF(!c.importance[i], err, LB_ERR_NOMEM, "out of memory");
            if (lb_imatrix_get_tensor(p->imatrix, m, &tensors[i], c.importance[i])) {
                found++;
            } else {
                free(c.importance[i]);
                c.importance[i] = NULL;
            }
        }
        LB_GOTO_IF(found == 0, err, LB_ERR_PARAM, "the importance matrix has no entry for this "
                   "model's tensors (names or sizes differ, or --include-weights/--exclude-weights left none)");
    }
    /* the whole-model methods (W8A8's), then the activation quantization, then the blocks */
    bool calib = false;
    for (const char *a = method; *a;) {
        const size_t          len = strcspn(a, "+");
        const lb_method_info *mt  = lb_method_lookup(a, len);
        /* scales folded into a norm need every reader of its output scaled: the experts too */
        LB_GOTO_IF(m->cfg.n_expert > 0 && (mt->whole || mt->block == lb_method_awq || !strcmp(p->recipe->name, "w8a8")), err,
                   LB_ERR_UNSUPPORTED, "%.*s on a mixture of experts (%s) is not supported yet (rtn, imatrix and "
                   "gptq are)", (int)len, a, m->arch->name);
        calib |= mt->calib && !(p->imatrix && mt->block == lb_method_imatrix);
        if (mt->whole) LB_TRY(mt->whole(&c, err));
        a += len + (a[len] == '+');
    }
    LB_TRY(lb_method_w8a8_acts(&c, err));
    if (calib) LB_TRY(lb_method_windows(&c, err)); /* before the header: it records them */
    meta_ctx            mc   = { p, c.model, c.n_windows, c.actq };
    const lb_write_plan plan = { .types = types, .file_type = p->recipe->file_type, .add_meta = add_meta,
                                 .user = &mc, .kv_overrides = p->kv_overrides, .n_kv_overrides = p->n_kv_overrides,
                                 .split_max_bytes = p->split_max_bytes, .split_max_tensors = p->split_max_tensors,
                                 .keep_split = p->keep_split };
    LB_TRY(lb_engine_run(&c, &plan, out_path, err));
    s.bpw           = 8.0 * (double)s.bytes_out / (double)s.n_params;
    s.seconds       = lb_time_sec() - t0;
    s.calib_windows = c.n_windows;
    s.peak_rss      = lb_peak_rss();
    s.calib_ctx     = c.n_windows ? p->calib.n_ctx : 0;
    if (summary) *summary = s;
fail:
    for (int32_t i = 0; c.data && i < cap; i++) free(c.data[i]);
    for (int32_t i = 0; c.importance && i < cap; i++) free(c.importance[i]);
    free(c.data);
    free(c.importance);
    free(c.windows);
    lb_actq_free(c.actq);
    if (tensors && c.owned) lb_model_tensors(m, tensors, lb_model_n_tensors(m)); /* the caller's view: of m */
    lb_model_free(c.owned);
    free(own_pl);
    free(own_nt);
    free(types);
    return st;
}
