/* The flat interface (lowbit/api.h): options parsed from JSON with every key and type checked,
 * the library's calls made as the CLI makes them, results built with cJSON (escaped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "core/json.h"
#include "lowbit/api.h"
#include "lowbit/lowbit.h"

#define MAX_TENSOR_TYPES 64

void lb_api_free(void *p) { free(p); }

/* ---- options ---- */

typedef enum { OPT_STR, OPT_INT, OPT_NUM, OPT_BOOL, OPT_OBJ } opt_kind;
typedef struct {
    const char *key;
    opt_kind    kind;
} opt_spec;

/* parse options (NULL or "" is {}) and check every key is in spec with its kind */
static lb_status parse_options(const char *options, const opt_spec *spec, size_t n_spec, cJSON **out,
                               lb_error *err) {
    *out = NULL;
    if (!options || !*options) options = "{}";
    LB_TRY_RET(lb_json_parse(out, options, strlen(options), "options", err));
    LB_RETURN_IF(!cJSON_IsObject(*out), err, LB_ERR_PARAM, "options: not a JSON object");
    for (const cJSON *it = (*out)->child; it; it = it->next) {
        size_t k = 0;
        while (k < n_spec && strcmp(spec[k].key, it->string)) k++;
        LB_RETURN_IF(k == n_spec, err, LB_ERR_PARAM, "options: unknown key '%.64s'", it->string);
        if (cJSON_IsNull(it)) continue;
        const opt_kind want = spec[k].kind;
        const bool     ok   = want == OPT_STR    ? cJSON_IsString(it)
                              : want == OPT_BOOL ? cJSON_IsBool(it)
                              : want == OPT_OBJ  ? cJSON_IsObject(it)
                              : want == OPT_INT  ? cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble)
                                                 : cJSON_IsNumber(it);
        static const char *const names[] = { "a string", "an integer", "a number", "true or false", "an object" };
        LB_RETURN_IF(!ok, err, LB_ERR_PARAM, "options: '%s' must be %s", it->string, names[want]);
    }
    return LB_OK;
}

static const char *opt_str(const cJSON *o, const char *key, const char *def) {
    const char *s = lb_json_str(o, key);
    return s ? s : def;
}

static lb_status opt_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *v, lb_error *err) {
    const cJSON *it = lb_json_get(o, key);
    if (!it) return LB_OK;
    LB_RETURN_IF(!lb_json_int(it, lo, hi, v), err, LB_ERR_PARAM, "options: '%s' must be in %lld .. %lld", key,
                 (long long)lo, (long long)hi);
    return LB_OK;
}

static double opt_num(const cJSON *o, const char *key, double def) {
    const cJSON *it = lb_json_get(o, key);
    return it ? it->valuedouble : def;
}

static bool opt_bool(const cJSON *o, const char *key) { return cJSON_IsTrue(lb_json_get(o, key)); }

static lb_status opt_type(const cJSON *o, const char *key, bool *has, lb_type *t, lb_error *err) {
    const char *s = lb_json_str(o, key);
    if (!s) return LB_OK;
    *t   = lb_type_from_name(s);
    *has = true;
    LB_RETURN_IF(*t == LB_TYPE_INVALID, err, LB_ERR_PARAM, "options: '%s': unknown type '%.32s'", key, s);
    return LB_OK;
}

/* ---- results ---- */

typedef struct {
    const char *key;
    double      v;
} num_field;

static void add_nums(cJSON *o, const num_field *f, size_t n) {
    for (size_t i = 0; i < n; i++) cJSON_AddNumberToObject(o, f[i].key, f[i].v);
}
#define ADD_NUMS(o, ...)                                                                           \
    do {                                                                                           \
        const num_field f_[] = { __VA_ARGS__ };                                                    \
        add_nums((o), f_, sizeof f_ / sizeof f_[0]);                                               \
    } while (0)

static lb_status finish_json(cJSON *o, char **result, lb_error *err) {
    *result = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    LB_RETURN_IF(!*result, err, LB_ERR_NOMEM, "out of memory");
    return LB_OK;
}

/* ---- quantize ---- */

typedef struct {
    lb_api_progress cb;
    void           *user;
} progress_ctx;

static void on_block(void *user, const lb_block_report *r) {
    const progress_ctx *p = user;
    cJSON              *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    ADD_NUMS(o, { "block", r->done }, { "blocks", r->total }, { "seconds", r->seconds }, { "elapsed", r->elapsed },
             { "eta", r->eta }, { "peak_rss", (double)r->peak_rss }, { "err_rtn", r->err_rtn },
             { "err_method", r->err_method });
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s) p->cb(p->user, s);
    free(s);
}

static const opt_spec k_quant_opts[] = {
    { "type", OPT_STR },           { "method", OPT_STR },          { "calib", OPT_STR },
    { "calib_samples", OPT_INT },  { "calib_ctx", OPT_INT },       { "seed", OPT_INT },
    { "imatrix", OPT_STR },        { "range", OPT_STR },           { "act", OPT_STR },
    { "damp", OPT_NUM },           { "act_order", OPT_BOOL },      { "pure", OPT_BOOL },
    { "allow_requantize", OPT_BOOL }, { "tokenizer", OPT_STR },    { "tensor_types", OPT_OBJ },
    { "output_tensor_type", OPT_STR }, { "token_embedding_type", OPT_STR }, { "threads", OPT_INT },
    { "calib_matmul", OPT_STR },
};

lb_status lb_api_quantize(const char *in, const char *out, const char *options, lb_api_progress progress,
                          void *user, char **result, lb_error *err) {
    cJSON           *o = NULL;
    lb_model        *m = NULL;
    lb_imatrix      *im = NULL;
    lb_type_override ov[MAX_TENSOR_TYPES];
    int32_t          n_ov = 0;
    progress_ctx     pc   = { progress, user };
    lb_status        st;
    *result = NULL;
    LB_TRY(parse_options(options, k_quant_opts, sizeof k_quant_opts / sizeof k_quant_opts[0], &o, err));
    const char *type = opt_str(o, "type", NULL);
    LB_GOTO_IF(!type, err, LB_ERR_PARAM, "options: 'type' is required");
    lb_quant_params p = { .recipe = lb_recipe_find(type), .method = opt_str(o, "method", "rtn"),
                          .calib_text = opt_str(o, "calib", NULL), .pure = opt_bool(o, "pure"),
                          .allow_requantize = opt_bool(o, "allow_requantize"),
                          .gptq = { .damp = opt_num(o, "damp", 0), .block = 128, .act_order = opt_bool(o, "act_order") },
                          .on_block = progress ? on_block : NULL, .log_user = &pc /* on_block's */ };
    LB_GOTO_IF(!p.recipe, err, LB_ERR_PARAM, "options: unknown type '%.32s'", type);
    int64_t samples = 128, ctx = 128, seed = 1234, threads = 0;
    LB_TRY(opt_int(o, "calib_samples", 1, 1 << 20, &samples, err));
    LB_TRY(opt_int(o, "calib_ctx", 2, 1 << 20, &ctx, err));
    LB_TRY(opt_int(o, "seed", 0, INT64_MAX, &seed, err));
    LB_TRY(opt_int(o, "threads", 0, 1024, &threads, err));
    const char *cm = opt_str(o, "calib_matmul", "q8");
    LB_GOTO_IF(strcmp(cm, "q8") && strcmp(cm, "exact"), err, LB_ERR_PARAM, "options: calib_matmul is q8 or exact, not '%.32s'",
               cm);
    p.calib = (lb_calib_params){ .n_samples = (int32_t)samples, .n_ctx = (int32_t)ctx, .seed = (uint64_t)seed,
                                 .exact = !strcmp(cm, "exact") };
    const char *range = lb_json_str(o, "range"), *act = lb_json_str(o, "act"), *imp = lb_json_str(o, "imatrix");
    LB_GOTO_IF(range && lb_range_parse(range, &p.range), err, LB_ERR_PARAM, "options: unknown range '%.32s'", range);
    LB_GOTO_IF(act && lb_act_calib_parse(act, &p.act), err, LB_ERR_PARAM, "options: unknown act '%.32s'", act);
    LB_TRY(opt_type(o, "output_tensor_type", &p.has_output_type, &p.output_type, err));
    LB_TRY(opt_type(o, "token_embedding_type", &p.has_embd_type, &p.embd_type, err));
    for (const cJSON *it = lb_json_get(o, "tensor_types") ? lb_json_get(o, "tensor_types")->child : NULL; it; it = it->next) {
        LB_GOTO_IF(n_ov == MAX_TENSOR_TYPES, err, LB_ERR_PARAM, "options: at most %d tensor_types", MAX_TENSOR_TYPES);
        LB_GOTO_IF(!cJSON_IsString(it), err, LB_ERR_PARAM, "options: tensor_types values are type names");
        ov[n_ov] = (lb_type_override){ it->string, lb_type_from_name(it->valuestring) };
        LB_GOTO_IF(ov[n_ov].type == LB_TYPE_INVALID, err, LB_ERR_PARAM, "options: tensor_types: unknown type '%.32s'",
                   it->valuestring);
        n_ov++;
    }
    p.overrides = ov, p.n_overrides = n_ov;
    if (imp) LB_TRY(lb_imatrix_load(&im, imp, err));
    p.imatrix = im;
    LB_TRY(lb_quant_check(&p, err));
    lb_threads_set((int)threads);
    LB_TRY(lb_model_load(&m, in, opt_str(o, "tokenizer", NULL), err));
    lb_quant_summary s;
    LB_TRY(lb_quantize_model(m, out, &p, NULL, NULL, 0, &s, err));
    cJSON *r = cJSON_CreateObject();
    ADD_NUMS(r, { "bytes_in", (double)s.bytes_in }, { "bytes_out", (double)s.bytes_out }, { "bpw", s.bpw },
             { "params", (double)s.n_params }, { "tensors", s.n_tensors }, { "fallbacks", s.n_fallback },
             { "err_rtn", s.err_rtn }, { "err_method", s.err_method }, { "seconds", s.seconds },
             { "seconds_calib", s.seconds_calib }, { "seconds_method", s.seconds_method },
             { "peak_rss", (double)s.peak_rss });
    st = finish_json(r, result, err);
fail:
    lb_model_free(m);
    lb_imatrix_free(im);
    cJSON_Delete(o);
    return st;
}

/* ---- evaluate ---- */

static const opt_spec k_eval_opts[] = {
    { "ctx", OPT_INT }, { "chunks", OPT_INT }, { "ref", OPT_STR }, { "tokenizer", OPT_STR }, { "threads", OPT_INT },
};

lb_status lb_api_evaluate(const char *model, const char *text_path, const char *options, char **result,
                          lb_error *err) {
    cJSON      *o = NULL;
    lb_model   *m = NULL, *rm = NULL;
    lb_context *ctx = NULL, *rctx = NULL;
    char       *text = NULL;
    int32_t    *ids  = NULL;
    size_t      len, n_ids;
    int64_t     n_ctx = 128, chunks = 0, threads = 0;
    lb_status   st;
    *result = NULL;
    LB_TRY(parse_options(options, k_eval_opts, sizeof k_eval_opts / sizeof k_eval_opts[0], &o, err));
    LB_TRY(opt_int(o, "ctx", 4, 1 << 20, &n_ctx, err));
    LB_TRY(opt_int(o, "chunks", 0, 1 << 30, &chunks, err));
    LB_TRY(opt_int(o, "threads", 0, 1024, &threads, err));
    lb_threads_set((int)threads);
    const char *tok = opt_str(o, "tokenizer", NULL), *ref = opt_str(o, "ref", NULL);
    LB_TRY(lb_model_load(&m, model, tok, err));
    LB_GOTO_IF(n_ctx > m->cfg.n_ctx_train && m->cfg.n_ctx_train > 0, err, LB_ERR_PARAM,
               "ctx %lld is past the model's context (%d)", (long long)n_ctx, m->cfg.n_ctx_train);
    if (ref) {
        LB_TRY(lb_model_load(&rm, ref, tok, err));
        LB_GOTO_IF(rm->cfg.n_vocab != m->cfg.n_vocab, err, LB_ERR_SHAPE, "%s: vocabulary of %d tokens, %s has %d",
                   ref, rm->cfg.n_vocab, model, m->cfg.n_vocab);
        LB_TRY(lb_context_create(&rctx, rm, (int32_t)n_ctx, (int32_t)n_ctx, err));
    }
    LB_TRY(lb_read_file(text_path, &text, &len, err));
    LB_TRY(lb_tokenize(m->vocab, text, len, lb_vocab_add_bos(m->vocab), false, &ids, &n_ids, err));
    LB_TRY(lb_context_create(&ctx, m, (int32_t)n_ctx, (int32_t)n_ctx, err));
    const lb_ppl_params p   = { .n_ctx = (int32_t)n_ctx, .max_chunks = (int32_t)chunks };
    const lb_kld_ref    kr  = { .ctx = rctx };
    lb_ppl_result       r;
    lb_kld_result       k;
    LB_TRY(lb_eval_kld(ctx, m->vocab, ids, n_ids, &p, rctx ? &kr : NULL, &r, rctx ? &k : NULL, err));
    cJSON *out = cJSON_CreateObject();
    ADD_NUMS(out, { "ppl", r.ppl }, { "ppl_stderr", r.ppl_stderr }, { "tokens_scored", (double)r.tokens_scored },
             { "chunks", r.chunks }, { "ctx", r.n_ctx }, { "seconds", r.seconds });
    if (rctx)
        ADD_NUMS(out, { "kld_mean", k.kld_mean }, { "kld_stderr", k.kld_stderr }, { "kld_median", k.kld_median },
                 { "kld_p99", k.kld_p99 }, { "kld_max", k.kld_max }, { "top1", k.top1 }, { "ppl_ref", k.ppl_ref });
    st = finish_json(out, result, err);
fail:
    lb_context_free(ctx);
    lb_context_free(rctx);
    lb_model_free(m);
    lb_model_free(rm);
    free(text);
    free(ids);
    cJSON_Delete(o);
    return st;
}

/* ---- convert ---- */

static const opt_spec k_convert_opts[] = { { "to", OPT_STR }, { "type", OPT_STR }, { "tokenizer", OPT_STR } };

lb_status lb_api_convert(const char *in, const char *out, const char *options, char **result, lb_error *err) {
    cJSON    *o = NULL;
    lb_model *m = NULL;
    lb_status st;
    *result = NULL;
    LB_TRY(parse_options(options, k_convert_opts, sizeof k_convert_opts / sizeof k_convert_opts[0], &o, err));
    const char *to = opt_str(o, "to", "gguf"), *tn = opt_str(o, "type", NULL);
    const bool  hf = !strcmp(to, "hf"), gptq = !strcmp(to, "hf-gptq");
    LB_GOTO_IF(!hf && !gptq && strcmp(to, "gguf"), err, LB_ERR_PARAM, "options: 'to' must be gguf, hf or hf-gptq, not '%.32s'", to);
    LB_GOTO_IF(gptq && tn, err, LB_ERR_PARAM, "options: hf-gptq keeps the model's types: no 'type'");
    lb_type type = tn && strcmp(tn, "keep") ? lb_type_from_name(tn) : LB_TYPE_INVALID;
    LB_GOTO_IF(tn && strcmp(tn, "keep") && type != LB_TYPE_F32 && type != LB_TYPE_F16 && type != LB_TYPE_BF16, err,
               LB_ERR_PARAM, "options: 'type' must be f32, f16, bf16 or keep, not '%.32s'", tn);
    LB_GOTO_IF(hf && tn && !strcmp(tn, "keep"), err, LB_ERR_PARAM, "options: 'to' hf takes f32, f16 or bf16");
    LB_TRY(lb_out_check(out, hf || gptq, err));
    LB_TRY(lb_model_load(&m, in, opt_str(o, "tokenizer", NULL), err));
    const lb_hf_quant_report *rep = lb_model_hf_quant(m);
    if (!tn && !gptq) type = rep ? LB_TYPE_INVALID : LB_TYPE_F32; /* an import keeps its blocks */
    const double t0 = lb_time_sec();
    LB_TRY(gptq ? lb_model_save_hf_gptq(m, out, err) : hf ? lb_model_save_hf(m, out, type, err)
                                                          : lb_model_save_gguf(m, out, type, err));
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "to", to);
    cJSON_AddStringToObject(r, "type", gptq ? "gptq" : type == LB_TYPE_INVALID ? "keep" : lb_type_name(type));
    ADD_NUMS(r, { "params", (double)lb_model_nparams(m) }, { "seconds", lb_time_sec() - t0 });
    if (rep) {
        cJSON *im = cJSON_AddObjectToObject(r, "import");
        cJSON_AddStringToObject(im, "method", rep->method);
        ADD_NUMS(im, { "bits", rep->bits }, { "group_size", rep->group_size }, { "layers", rep->n_tensors },
                 { "exact", rep->n_exact }, { "max_rel_err", rep->max_rel_err });
        cJSON_AddBoolToObject(im, "sym", rep->sym);
        cJSON_AddBoolToObject(im, "act_order", rep->desc_act);
        cJSON_AddStringToObject(im, "worst", rep->worst);
    }
    st = finish_json(r, result, err);
fail:
    lb_model_free(m);
    cJSON_Delete(o);
    return st;
}

/* ---- a loaded model ---- */

static cJSON *kv_value(const lb_gguf_kv *kv) {
    switch (kv->type) {
    case LB_GGUF_STRING: {
        char *s = strndup(kv->str.p, (size_t)kv->str.n);
        cJSON *v = s ? cJSON_CreateString(s) : cJSON_CreateNull();
        free(s);
        return v;
    }
    case LB_GGUF_BOOL: return cJSON_CreateBool(kv->v.b);
    case LB_GGUF_F32: case LB_GGUF_F64: return cJSON_CreateNumber(kv->v.f64);
    case LB_GGUF_I8: case LB_GGUF_I16: case LB_GGUF_I32: case LB_GGUF_I64: return cJSON_CreateNumber((double)kv->v.i64);
    case LB_GGUF_ARRAY: {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "array", lb_gguf_vtype_name(kv->arr_type));
        cJSON_AddNumberToObject(a, "n", (double)kv->arr_n);
        return a;
    }
    default: return cJSON_CreateNumber((double)kv->v.u64);
    }
}

lb_status lb_api_model_info(const lb_model *m, char **result, lb_error *err) {
    const lb_llama_config *c = &m->cfg;
    const int32_t          n = lb_model_n_tensors(m);
    lb_named_tensor       *ts = malloc((size_t)n * sizeof *ts);
    cJSON                 *o = cJSON_CreateObject(), *meta = cJSON_CreateObject(), *tl = cJSON_CreateArray();
    *result = NULL;
    if (!ts || !o || !meta || !tl) {
        free(ts), cJSON_Delete(o), cJSON_Delete(meta), cJSON_Delete(tl);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    cJSON_AddStringToObject(o, "arch", m->arch ? m->arch->name : "llama");
    cJSON_AddStringToObject(o, "name", m->name ? m->name : "");
    ADD_NUMS(o, { "n_layers", c->n_layers }, { "n_embd", c->n_embd }, { "n_ff", c->n_ff }, { "n_heads", c->n_heads },
             { "n_kv_heads", c->n_kv_heads }, { "head_dim", c->head_dim }, { "n_vocab", c->n_vocab },
             { "n_ctx", c->n_ctx_train }, { "rope_base", c->rope_theta }, { "norm_eps", c->norm_eps },
             { "params", (double)lb_model_nparams(m) }, { "bytes", (double)lb_model_nbytes(m) });
    const lb_gguf *g = lb_model_gguf(m);
    for (int64_t i = 0; g && i < g->n_kv; i++) cJSON_AddItemToObject(meta, g->kv[i].key, kv_value(&g->kv[i]));
    cJSON_AddItemToObject(o, "metadata", meta);
    lb_model_tensors(m, ts, lb_model_n_tensors(m));
    for (int32_t i = 0; i < n; i++) {
        cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        cJSON_AddStringToObject(t, "name", ts[i].name);
        cJSON_AddStringToObject(t, "type", lb_type_name(ts[i].t->type));
        for (int d = 0; d < 4 && (d < 2 || ts[i].t->ne[d] > 1); d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)ts[i].t->ne[d]));
        cJSON_AddItemToObject(t, "shape", shape);
        cJSON_AddItemToArray(tl, t);
    }
    cJSON_AddItemToObject(o, "tensors", tl);
    free(ts);
    return finish_json(o, result, err);
}

lb_status lb_api_gguf_info(const char *path, char **result, lb_error *err) {
    lb_gguf *g;
    *result = NULL;
    LB_TRY_RET(lb_gguf_open(&g, path, err));
    cJSON *o = cJSON_CreateObject(), *meta = cJSON_CreateObject(), *tl = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "file", path);
    ADD_NUMS(o, { "version", g->version }, { "alignment", (double)g->alignment }, { "data_offset", (double)g->data_offset });
    for (int64_t i = 0; i < g->n_kv; i++) cJSON_AddItemToObject(meta, g->kv[i].key, kv_value(&g->kv[i]));
    double total = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lb_gguf_tensor_info *ti = &g->tensors[i];
        cJSON                     *t = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        char                       own[32];
        int64_t                    ne0 = ti->ne[0];
        cJSON_AddStringToObject(t, "name", ti->name);
        const bool lowbit_type = lb_gguf_lowbit_type(g, ti, own, sizeof own, &ne0); /* i8 rows */
        cJSON_AddStringToObject(t, "type", lowbit_type ? own : lb_ggml_type_name(ti->ggml_type));
        for (uint32_t d = 0; d < ti->n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)(d ? ti->ne[d] : ne0)));
        cJSON_AddItemToObject(t, "shape", shape);
        cJSON_AddNumberToObject(t, "bytes", (double)ti->nbytes);
        cJSON_AddItemToArray(tl, t);
        total += (double)ti->nbytes;
    }
    cJSON_AddItemToObject(o, "metadata", meta);
    cJSON_AddItemToObject(o, "tensors", tl);
    cJSON_AddNumberToObject(o, "tensor_bytes", total);
    lb_gguf_close(g);
    return finish_json(o, result, err);
}

static lb_status find_tensor(const lb_model *m, const char *name, const lb_tensor **t, lb_error *err) {
    const int32_t    n  = lb_model_n_tensors(m);
    lb_named_tensor *ts = malloc((size_t)n * sizeof *ts);
    LB_RETURN_IF(!ts, err, LB_ERR_NOMEM, "out of memory");
    lb_model_tensors(m, ts, lb_model_n_tensors(m));
    *t = NULL;
    for (int32_t i = 0; i < n && !*t; i++)
        if (!strcmp(ts[i].name, name)) *t = ts[i].t;
    free(ts);
    LB_RETURN_IF(!*t, err, LB_ERR_PARAM, "no tensor named '%.64s'", name);
    return LB_OK;
}

lb_status lb_api_tensor_shape(const lb_model *m, const char *name, int64_t ne[4], int64_t *count,
                              lb_error *err) {
    const lb_tensor *t;
    LB_TRY_RET(find_tensor(m, name, &t, err));
    for (int d = 0; d < 4; d++) ne[d] = t->ne[d] > 0 ? t->ne[d] : 1;
    *count = lb_tensor_nelements(t);
    return LB_OK;
}

lb_status lb_api_tensor_read(const lb_model *m, const char *name, float *out, int64_t cap, lb_error *err) {
    const lb_tensor *t;
    LB_TRY_RET(find_tensor(m, name, &t, err));
    const int64_t n = t->ne[0], rows = lb_tensor_nelements(t) / n;
    LB_RETURN_IF(cap < n * rows, err, LB_ERR_PARAM, "%s: %lld values, room for %lld", name, (long long)(n * rows),
                 (long long)cap);
    for (int64_t r = 0; r < rows; r++) lb_tensor_get_row_f32(t, r, out + r * n);
    return LB_OK;
}
