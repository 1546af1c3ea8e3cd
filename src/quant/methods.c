/* The table of quantization methods: each one's name, its run (quant_internal.h), and what
 * it needs before it can run (calibration text, the w8a8 recipe), so that a caller can
 * check a request before any work (lb_quant_check) and the driver finds a method by name. */
#include <regex.h>
#include <string.h>

#include "core/fail.h"
#include "quant_internal.h"

static lb_status gptq_meta(lb_gguf_writer *w, const lb_quant_params *p) {
    /* 0: each type's default (lb_gptq_params) */
    lb_status st = lb_gguf_writer_set_f32(w, "lowbit.gptq.damp", (float)(p->gptq.damp > 0 ? p->gptq.damp : 0));
    if (!st) st = lb_gguf_writer_set_bool(w, "lowbit.gptq.act_order", p->gptq.act_order);
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.gptq.target", p->gptq.self_target ? "self" : "f32");
    if (!st && p->gptq.min_tokens != 0) st = lb_gguf_writer_set_i32(w, "lowbit.gptq.min_tokens", p->gptq.min_tokens);
    return st;
}

static lb_status smoothquant_meta(lb_gguf_writer *w, const lb_quant_params *p) {
    return lb_gguf_writer_set_f32(w, "lowbit.smoothquant.alpha", (float)(p->smooth_alpha > 0 ? p->smooth_alpha : 0.5));
}

static const lb_method_info k_methods[] = {
    /* name, whole, block, calib, w8a8, weights, meta */
    { "rtn", NULL, NULL, false, false, false, NULL },
    { "imatrix", NULL, lb_method_imatrix, true, false, false, NULL },
    { "gptq", NULL, lb_method_gptq, true, false, true, gptq_meta },
    { "awq", NULL, lb_method_awq, true, false, true, NULL },
    { "smoothquant", lb_method_smoothquant, NULL, true, true, false, smoothquant_meta },
    { "llm-int8", lb_method_llm_int8, NULL, true, true, false, NULL },
};

const lb_method_info *lb_method_lookup(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof k_methods / sizeof k_methods[0]; i++)
        if (strlen(k_methods[i].name) == len && !strncmp(k_methods[i].name, name, len)) return &k_methods[i];
    return NULL;
}

lb_status lb_quant_check(const lb_quant_params *p, lb_error *err) {
    const char *method = p->method ? p->method : "rtn";
    const bool  w8a8   = p->recipe && !strcmp(p->recipe->name, "w8a8");
    const lb_method_info *prev_block = NULL, *stores = NULL;
    for (const char *a = method;;) {
        const size_t          len = strcspn(a, "+");
        const lb_method_info *mi  = lb_method_lookup(a, len);
        LB_RETURN_IF(!mi, err, LB_ERR_PARAM, "method '%.*s' is not available (rtn, imatrix, gptq, "
                     "awq, smoothquant, llm-int8, or several joined by '+')", (int)(len > 32 ? 32 : len), a);
        /* an importance matrix from a file stands in for imatrix's calibration */
        LB_RETURN_IF(mi->calib && !p->calib_text && !(p->imatrix && mi->block == lb_method_imatrix),
                     err, LB_ERR_PARAM, "method '%s' needs calibration text (--calib FILE)", mi->name);
        LB_RETURN_IF(mi->w8a8 && !w8a8, err, LB_ERR_PARAM,
                     "method %s is a W8A8 method: use it with --type w8a8", mi->name);
        LB_RETURN_IF(mi->whole && prev_block, err, LB_ERR_PARAM, "method %s changes the whole model, so it "
                     "must come before %s (e.g. %s+%s)", mi->name, prev_block->name, mi->name, prev_block->name);
        LB_RETURN_IF(stores && (mi->weights || mi->whole), err, LB_ERR_PARAM, "%s changes the weights, so it "
                     "must come before %s, which stores them (e.g. %s+%s)", mi->name, stores->name, mi->name,
                     stores->name);
        LB_RETURN_IF(stores && mi->block, err, LB_ERR_PARAM, "%s must come before %s, which stores the weights "
                     "(e.g. %s+%s)", mi->name, stores->name, mi->name, stores->name);
        LB_RETURN_IF(mi->block == lb_method_awq && p->range.kind != LB_RANGE_MINMAX, err, LB_ERR_PARAM,
                     "--range with awq: AWQ searches its own clipping (--range is for rtn, imatrix and gptq)");
        if (mi->block) prev_block = mi;
        if (mi->block == lb_method_gptq) stores = mi;
        if (!a[len]) break;
        a += len + 1;
    }
    for (int32_t k = 0; k < p->n_kv_overrides; k++) LB_TRY_RET(lb_gguf_writer_override(NULL, p->kv_overrides[k], err));
    LB_RETURN_IF(w8a8 && p->act.calibrated && !p->calib_text, err, LB_ERR_PARAM,
                 "static activation ranges (--act) need calibration text (--calib FILE)");
    for (int32_t k = 0; k < p->n_overrides; k++) {
        regex_t   re;
        const int rc = regcomp(&re, p->overrides[k].pattern, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[96];
            regerror(rc, &re, why, sizeof why);
            return lb_fail(err, LB_ERR_PARAM, "--tensor-type: bad regular expression '%.64s': %s",
                           p->overrides[k].pattern, why);
        }
        regfree(&re);
        LB_RETURN_IF(!lb_type_get_traits(p->overrides[k].type), err, LB_ERR_PARAM,
                     "--tensor-type: type %s is not available", lb_type_name(p->overrides[k].type));
    }
    return LB_OK;
}
