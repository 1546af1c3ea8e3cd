/* The quantization driver: plan each tensor's type (recipe.c), choose values with the
 * method (round to nearest for now), store them in the format, write the GGUF with its
 * provenance in metadata. */
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/quant.h"

typedef struct {
    const lb_quant_params *p;
} meta_ctx;

static lb_status add_meta(lb_gguf_writer *w, void *user) {
    const meta_ctx *c  = user;
    lb_status       st = lb_gguf_writer_set_str(w, "general.quantized_by", "lowbit " LB_VERSION);
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.version", LB_VERSION);
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.quantize.recipe", c->p->recipe->name);
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.quantize.method", c->p->method ? c->p->method : "rtn");
    if (!st) st = lb_gguf_writer_set_bool(w, "lowbit.quantize.pure", c->p->pure);
    char buf[32];
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.quantize.range", lb_range_name(&c->p->range, buf, sizeof buf));
    return st;
}

static void prepare_rows(float *rows, int64_t nr, int64_t n, lb_type t, const float *importance,
                         void *user) {
    const meta_ctx *c = user;
    lb_range_apply(rows, nr, n, t, &c->p->range, importance);
}

lb_status lb_quantize_model(const lb_model *m, const char *out_path, const lb_quant_params *p,
                            lb_tensor_plan *plans, lb_named_tensor *tensors,
                            lb_quant_summary *summary, lb_error *err) {
    const int32_t    cap     = 3 + 9 * m->cfg.n_layers;
    lb_tensor_plan  *own_pl  = plans ? NULL : malloc((size_t)cap * sizeof *own_pl);
    lb_named_tensor *own_nt  = tensors ? NULL : malloc((size_t)cap * sizeof *own_nt);
    lb_type         *types   = malloc((size_t)cap * sizeof *types);
    lb_status        st      = LB_OK;
    const double     t0      = lb_time_sec();
    int32_t          n;
    if (!plans) plans = own_pl;
    if (!tensors) tensors = own_nt;
    LB_GOTO_IF(!plans || !tensors || !types, err, LB_ERR_NOMEM, "out of memory");
    LB_GOTO_IF(p->method && strcmp(p->method, "rtn") != 0, err, LB_ERR_UNSUPPORTED,
               "method '%s' is not available yet (rtn is)", p->method);
    LB_TRY(lb_quant_plan(m, p, tensors, plans, &n, err));
    lb_quant_summary s = { .bytes_in = lb_model_nbytes(m), .n_tensors = n };
    for (int32_t i = 0; i < n; i++) {
        types[i] = plans[i].type;
        s.n_fallback += plans[i].fallback;
        const lb_tensor *t = tensors[i].t;
        s.bytes_out += lb_row_size(types[i], t->ne[0]) * (size_t)(lb_tensor_nelements(t) / t->ne[0]);
        s.n_params += lb_tensor_nelements(t);
    }
    meta_ctx            mc   = { p };
    const lb_write_plan plan = { .types = types, .file_type = p->recipe->file_type,
                                 .add_meta = add_meta, .prepare_rows = prepare_rows, .user = &mc,
                                 .progress = p->progress };
    LB_TRY(lb_model_write_gguf(m, out_path, &plan, err));
    s.bpw     = 8.0 * (double)s.bytes_out / (double)s.n_params;
    s.seconds = lb_time_sec() - t0;
    if (summary) *summary = s;
fail:
    free(own_pl);
    free(own_nt);
    free(types);
    return st;
}
