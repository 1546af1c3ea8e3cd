/* Metadata kept through quantize and convert: an input GGUF (stories260K) with many kinds of
 * keys (every scalar type, bool, strings, arrays of ints, floats, bools and strings, deep
 * names, general.* and tokenizer.* keys lowbit does not write, rope scaling, custom keys) is
 * quantized (q4_0, q8_0, q4_k_m, and again from a quantized file) and converted, and so is a
 * synthetic Qwen3 GGUF with the same keys added; every key of
 * the input is in the output with the same type and value bytes, read by a small parser of
 * its own, except the keys lowbit recomputes (general.file_type, general.quantization_version,
 * general.quantized_by when quantizing, lowbit.*) and the ones it drops (quantize.imatrix.*,
 * the tokenizer when --tokenizer replaces it). The outputs' tensors and logits equal those of
 * the same run on the input without the extra keys. */
#include "test_util.h"
#include "lowbit/train.h"

#include "model/model_internal.h"

/* ---- a GGUF metadata walker of its own: each key's type and value bytes in the file ---- */
typedef struct {
    char          *key;
    uint32_t       type;
    const uint8_t *val; /* the value's bytes (an array's: element type, count, elements) */
    size_t         len;
} raw_kv;

typedef struct {
    uint8_t *buf;
    raw_kv  *kv;
    uint64_t n;
} raw_file;

static size_t scalar_size(uint32_t t) {
    static const size_t sz[13] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    return t < 13 ? sz[t] : 0;
}

static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static size_t value_len(const uint8_t *p, uint32_t t) {
    if (t == LB_GGUF_STRING) return 8 + (size_t)rd64(p);
    if (t != LB_GGUF_ARRAY) return scalar_size(t);
    uint32_t at;
    memcpy(&at, p, 4);
    const uint64_t n   = rd64(p + 4);
    size_t         len = 12;
    for (uint64_t i = 0; i < n; i++) len += value_len(p + len, at);
    return len;
}

static raw_file raw_read(const char *path) {
    raw_file r = { 0 };
    FILE    *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    r.buf = malloc((size_t)size);
    assert_int_equal(fread(r.buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    assert_memory_equal(r.buf, "GGUF", 4);
    r.n       = rd64(r.buf + 16);
    r.kv      = calloc(r.n, sizeof *r.kv);
    size_t at = 24;
    for (uint64_t i = 0; i < r.n; i++) {
        const size_t kl = (size_t)rd64(r.buf + at);
        r.kv[i].key     = strndup((const char *)r.buf + at + 8, kl);
        at += 8 + kl;
        memcpy(&r.kv[i].type, r.buf + at, 4);
        r.kv[i].val = r.buf + at + 4;
        r.kv[i].len = value_len(r.kv[i].val, r.kv[i].type);
        at += 4 + r.kv[i].len;
        assert_true(at <= (size_t)size);
    }
    return r;
}

static void raw_free(raw_file *r) {
    for (uint64_t i = 0; i < r->n; i++) free(r->kv[i].key);
    free(r->kv);
    free(r->buf);
}

static const raw_kv *raw_find(const raw_file *r, const char *key) {
    for (uint64_t i = 0; i < r->n; i++)
        if (!strcmp(r->kv[i].key, key)) return &r->kv[i];
    return NULL;
}

static uint32_t raw_u32(const raw_file *r, const char *key) {
    const raw_kv *kv = raw_find(r, key);
    assert_non_null(kv);
    assert_int_equal(kv->type, LB_GGUF_U32);
    uint32_t v;
    memcpy(&v, kv->val, 4);
    return v;
}

/* ---- the input: stories260K as GGUF, then the same with many more keys ---- */
static char g_plain[256], g_rich[256], g_tok[256];

static lb_status put(lb_gguf_writer *w, const char *key, lb_gguf_vtype t, const void *v) {
    lb_gguf_kv kv = { .key = (char *)key, .type = t };
    memcpy(&kv.v, v, scalar_size(t));
    if (t == LB_GGUF_I8 || t == LB_GGUF_I16 || t == LB_GGUF_I32) { /* widened as the reader does */
        int64_t x = t == LB_GGUF_I8 ? *(const int8_t *)v : t == LB_GGUF_I16 ? *(const int16_t *)v : *(const int32_t *)v;
        kv.v.i64  = x;
    }
    if (t == LB_GGUF_F32) kv.v.f64 = *(const float *)v;
    if (t == LB_GGUF_BOOL) kv.v.b = *(const bool *)v;
    return lb_gguf_writer_copy_kv(w, &kv);
}

static void add_keys(lb_gguf_writer *w) {
    const uint8_t  u8  = 200;
    const int8_t   i8  = -5;
    const uint16_t u16 = 60000;
    const int16_t  i16 = -30000;
    const uint32_t u32 = 4000000000u;
    const int32_t  i32 = -123456;
    const uint64_t u64 = (uint64_t)1 << 40;
    const int64_t  i64 = -((int64_t)1 << 41);
    const float    f32 = 3.25f, one = 1.0f;
    const double   f64 = 3.14159265358979;
    const bool     no  = false;
    assert_int_equal(put(w, "custom.u8", LB_GGUF_U8, &u8), LB_OK);
    assert_int_equal(put(w, "custom.i8", LB_GGUF_I8, &i8), LB_OK);
    assert_int_equal(put(w, "custom.u16", LB_GGUF_U16, &u16), LB_OK);
    assert_int_equal(put(w, "custom.i16", LB_GGUF_I16, &i16), LB_OK);
    assert_int_equal(put(w, "custom.u32", LB_GGUF_U32, &u32), LB_OK);
    assert_int_equal(put(w, "custom.i32", LB_GGUF_I32, &i32), LB_OK);
    assert_int_equal(put(w, "custom.u64", LB_GGUF_U64, &u64), LB_OK);
    assert_int_equal(put(w, "custom.i64", LB_GGUF_I64, &i64), LB_OK);
    assert_int_equal(put(w, "custom.f32", LB_GGUF_F32, &f32), LB_OK);
    assert_int_equal(put(w, "custom.f64", LB_GGUF_F64, &f64), LB_OK);
    assert_int_equal(put(w, "custom.bool", LB_GGUF_BOOL, &no), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "custom.empty", ""), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "custom.a.deeply.nested.key.name", "x.y=z"), LB_OK);
    const int32_t  ai[5] = { -1, 0, 1, INT32_MAX, INT32_MIN };
    const float    af[3] = { 0.5f, -0.0f, 1e30f };
    const uint8_t  ab[3] = { 1, 0, 1 };
    const int64_t  al[2] = { INT64_MIN, INT64_MAX };
    const double   ad[2] = { 1e-300, -2.5 };
    const uint16_t aw[2] = { 7, 65535 };
    const char    *as[4] = { "en", "", "日本語", "a\"b" };
    assert_int_equal(lb_gguf_writer_set_arr(w, "custom.arr.i32", LB_GGUF_I32, ai, 5), LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr(w, "custom.arr.f32", LB_GGUF_F32, af, 3), LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr(w, "custom.arr.bool", LB_GGUF_BOOL, ab, 3), LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr(w, "custom.arr.i64", LB_GGUF_I64, al, 2), LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr(w, "custom.arr.f64", LB_GGUF_F64, ad, 2), LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr(w, "custom.arr.u16", LB_GGUF_U16, aw, 2), LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr(w, "custom.arr.empty", LB_GGUF_U32, NULL, 0), LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr_str(w, "custom.arr.str", as, 4), LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr_str(w, "general.languages", as, 1), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "general.license", "mit"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "general.author", "Andrej Karpathy"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "general.basename", "stories"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "general.size_label", "260K"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "general.quantized_by", "someone else"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(w, "general.alignment", 32), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "llama.rope.scaling.type", "none"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_f32(w, "llama.rope.scaling.factor", one), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(w, "llama.rope.scaling.original_context_length", 512), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", 2), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "tokenizer.chat_template", "{{ messages }}"), LB_OK);
    /* a previous run's: dropped, the new run's written instead */
    assert_int_equal(lb_gguf_writer_set_str(w, "lowbit.quantize.recipe", "old"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "lowbit.something.else", "old"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "quantize.imatrix.file", "old.dat"), LB_OK);
}

/* rich: plain's keys and tensors, with add_keys' after its general.name */
static void make_rich(const char *plain, const char *rich) {
    lb_gguf        *g;
    lb_error        err = { 0 };
    lb_gguf_writer *w   = lb_gguf_writer_create();
    assert_int_equal(lb_gguf_open(&g, plain, &err), LB_OK);
    for (int64_t i = 0; i < g->n_kv; i++) {
        assert_int_equal(lb_gguf_writer_copy_kv(w, &g->kv[i]), LB_OK);
        if (!strcmp(g->kv[i].key, "general.name")) add_keys(w);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        assert_int_equal(lb_gguf_writer_add_tensor(w, t->name, t->ggml_type, t->n_dims, t->ne, t->data,
                                                   t->nbytes, &err), LB_OK);
    }
    assert_int_equal(lb_gguf_writer_write(w, rich, &err), LB_OK);
    lb_gguf_writer_free(w);
    lb_gguf_close(g);
}

static int setup(void **state) {
    (void)state;
    char      bin[256];
    lb_model *m;
    lb_error  err = { 0 };
    tmp_path("plain.gguf", g_plain, sizeof g_plain);
    tmp_path("rich.gguf", g_rich, sizeof g_rich);
    repo_path("models/stories260K/tok512.bin", g_tok, sizeof g_tok);
    if (lb_model_load(&m, repo_path("models/stories260K/stories260K.bin", bin, sizeof bin), NULL, &err) ||
        lb_model_save_gguf(m, g_plain, LB_TYPE_F32, &err))
        return -1;
    lb_model_free(m);
    make_rich(g_plain, g_rich);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(g_plain);
    unlink(g_rich);
    return 0;
}

/* ---- checks ---- */
static bool has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* Every key of `in` is in `out` with the same type and value bytes, but lowbit's recomputed
 * ones; the dropped ones are absent. quantized: general.quantized_by is lowbit's. */
static void check_keys(const char *in_path, const char *out_path, bool quantized, bool same_vocab) {
    raw_file in = raw_read(in_path), out = raw_read(out_path);
    int      kept = 0;
    for (uint64_t i = 0; i < in.n; i++) {
        const raw_kv *a = &in.kv[i], *b = raw_find(&out, a->key);
        if (has_prefix(a->key, "quantize.imatrix.")) {
            assert_null(b);
            continue;
        }
        if (!same_vocab && has_prefix(a->key, "tokenizer.")) continue; /* the new vocabulary's */
        if (has_prefix(a->key, "lowbit.") || !strcmp(a->key, "general.file_type") ||
            !strcmp(a->key, "general.quantization_version") ||
            (quantized && !strcmp(a->key, "general.quantized_by")))
            continue;
        if (!b) fail_msg("%s: key %s is missing", out_path, a->key);
        assert_int_equal(b->type, a->type);
        assert_int_equal(b->len, a->len);
        if (memcmp(a->val, b->val, a->len)) fail_msg("%s: key %s changed", out_path, a->key);
        kept++;
    }
    assert_true(kept >= 40);
    assert_int_equal(raw_u32(&out, "general.quantization_version"), 2);
    const raw_kv *q = raw_find(&out, "general.quantized_by");
    assert_non_null(q);
    assert_int_equal(q->type, LB_GGUF_STRING);
    assert_true(quantized ? !memcmp(q->val + 8, "lowbit", 6) : !memcmp(q->val + 8, "someone else", 12));
    const raw_kv *r = raw_find(&out, "lowbit.quantize.recipe");
    if (r) assert_false(rd64(r->val) == 3 && !memcmp(r->val + 8, "old", 3));
    assert_null(raw_find(&out, "lowbit.something.else"));
    raw_free(&in);
    raw_free(&out);
}

/* The tensors of two GGUF files are the same, byte for byte. */
static void check_same_tensors(const char *a_path, const char *b_path) {
    lb_gguf *a, *b;
    lb_error err = { 0 };
    assert_int_equal(lb_gguf_open(&a, a_path, &err), LB_OK);
    assert_int_equal(lb_gguf_open(&b, b_path, &err), LB_OK);
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (int64_t i = 0; i < a->n_tensors; i++) {
        const int64_t j = lb_gguf_find_tensor(b, a->tensors[i].name);
        assert_true(j >= 0);
        assert_int_equal(a->tensors[i].ggml_type, b->tensors[j].ggml_type);
        assert_int_equal(a->tensors[i].nbytes, b->tensors[j].nbytes);
        assert_memory_equal(a->tensors[i].data, b->tensors[j].data, a->tensors[i].nbytes);
    }
    lb_gguf_close(a);
    lb_gguf_close(b);
}

/* Both files load, and give the same logits. */
static void check_same_logits(const char *a_path, const char *b_path) {
    static const int32_t toks[] = { 1, 403, 407, 261, 378, 281, 354, 297 };
    const int32_t        n      = (int32_t)(sizeof toks / sizeof toks[0]);
    float               *lg[2];
    const char          *paths[2] = { a_path, b_path };
    int32_t              nv       = 0;
    for (int k = 0; k < 2; k++) {
        lb_model    *m;
        lb_context  *c;
        const float *l;
        lb_error     err = { 0 };
        assert_int_equal(lb_model_load(&m, paths[k], NULL, &err), LB_OK);
        assert_int_equal(lb_context_create(&c, m, 64, 64, &err), LB_OK);
        assert_int_equal(lb_forward(c, toks, n, &l, &err), LB_OK);
        nv    = m->cfg.n_vocab;
        lg[k] = malloc((size_t)n * (size_t)nv * sizeof *lg[k]);
        memcpy(lg[k], l, (size_t)n * (size_t)nv * sizeof *lg[k]);
        for (int64_t i = 0; i < (int64_t)n * nv; i++) assert_true(isfinite(lg[k][i]));
        lb_context_free(c);
        lb_model_free(m);
    }
    assert_memory_equal(lg[0], lg[1], (size_t)n * (size_t)nv * sizeof *lg[0]);
    free(lg[0]);
    free(lg[1]);
}

static void quantize(const char *in, const char *tok, const char *recipe, const char *out) {
    lb_model             *m;
    lb_error              err = { 0 };
    const lb_quant_params p   = { .recipe = lb_recipe_find(recipe), .method = "rtn", .allow_requantize = true };
    assert_non_null(p.recipe);
    assert_int_equal(lb_model_load(&m, in, tok, &err), LB_OK);
    if (lb_quantize_model(m, out, &p, NULL, NULL, 0, NULL, &err)) fail_msg("%s", err.msg);
    lb_model_free(m);
}

static void test_quantize_keeps_keys(void **state) {
    (void)state;
    static const char *const recipes[] = { "q4_0", "q8_0", "q4_k_m" };
    char out[256], ref[256], again[256];
    tmp_path("q.gguf", out, sizeof out);
    tmp_path("ref.gguf", ref, sizeof ref);
    tmp_path("again.gguf", again, sizeof again);
    for (size_t r = 0; r < sizeof recipes / sizeof recipes[0]; r++) {
        quantize(g_rich, NULL, recipes[r], out);
        quantize(g_plain, NULL, recipes[r], ref);
        check_keys(g_rich, out, true, true);
        raw_file f = raw_read(out);
        assert_int_equal(raw_u32(&f, "general.file_type"), lb_recipe_find(recipes[r])->file_type);
        raw_free(&f);
        check_same_tensors(out, ref);
        check_same_logits(out, ref);
        /* a quantized input quantized again: its file type changes, the other keys stay */
        quantize(out, NULL, "q5_0", again);
        check_keys(g_rich, again, true, true);
        check_keys(out, again, true, true);
        f = raw_read(again);
        assert_int_equal(raw_u32(&f, "general.file_type"), lb_recipe_find("q5_0")->file_type);
        raw_free(&f);
    }
    unlink(out);
    unlink(ref);
    unlink(again);
}

static void test_convert_keeps_keys(void **state) {
    (void)state;
    char      out[256], ref[256];
    lb_model *m;
    lb_error  err = { 0 };
    tmp_path("f16.gguf", out, sizeof out);
    tmp_path("f16ref.gguf", ref, sizeof ref);
    assert_int_equal(lb_model_load(&m, g_rich, NULL, &err), LB_OK);
    assert_int_equal(lb_model_save_gguf(m, out, LB_TYPE_F16, &err), LB_OK);
    lb_model_free(m);
    assert_int_equal(lb_model_load(&m, g_plain, NULL, &err), LB_OK);
    assert_int_equal(lb_model_save_gguf(m, ref, LB_TYPE_F16, &err), LB_OK);
    lb_model_free(m);
    check_keys(g_rich, out, false, true);
    raw_file f = raw_read(out);
    assert_int_equal(raw_u32(&f, "general.file_type"), 1);
    raw_free(&f);
    check_same_tensors(out, ref);
    check_same_logits(out, ref);
    unlink(out);
    unlink(ref);
}

/* qat's trained model keeps the input's keys as quantize does */
static void test_qat_keeps_keys(void **state) {
    (void)state;
    char      out[256];
    lb_model *m;
    lb_error  err = { 0 };
    tmp_path("qat.gguf", out, sizeof out);
    assert_int_equal(lb_model_load(&m, g_rich, NULL, &err), LB_OK);
    lb_tokens t = { .ids = malloc(4000 * sizeof(int32_t)), .n = 4000 };
    for (int64_t i = 0; i < t.n; i++) t.ids[i] = 10 + (int32_t)(i * 7 % 300);
    lb_qat_params p = lb_qat_default_params(LB_QAT_QAT);
    p.type = "q4_0", p.opts.steps = 2, p.opts.batch = 1, p.opts.ctx = 32, p.opts.eval_windows = 0;
    lb_train_result r;
    if (lb_qat_run(m, &p, &t, NULL, out, &r, &err)) fail_msg("%s", err.msg);
    check_keys(g_rich, out, false, true);
    free(t.ids);
    lb_model_free(m);
    unlink(out);
}

/* --tokenizer replaces the vocabulary: the input's tokenizer.* keys go, the new ones come;
 * the other keys stay. */
static void test_tokenizer_replaced(void **state) {
    (void)state;
    char out[256];
    tmp_path("tok.gguf", out, sizeof out);
    quantize(g_rich, g_tok, "q8_0", out);
    check_keys(g_rich, out, true, false);
    raw_file f = raw_read(out);
    assert_null(raw_find(&f, "tokenizer.ggml.eot_token_id"));
    assert_null(raw_find(&f, "tokenizer.chat_template"));
    assert_non_null(raw_find(&f, "tokenizer.ggml.tokens"));
    assert_non_null(raw_find(&f, "general.license"));
    raw_free(&f);
    lb_model *m;
    lb_error  err = { 0 };
    assert_int_equal(lb_model_load(&m, out, NULL, &err), LB_OK);
    lb_model_free(m);
    unlink(out);
}

/* Another architecture (qwen3.* keys, per-head q/k norms): the same. */
static void test_qwen3_keeps_keys(void **state) {
    (void)state;
    char            plain[256], rich[256], out[256], ref[256];
    lb_error        err = { 0 };
    lb_synth_params p   = { .type = LB_TYPE_F16, .seed = 7, .arch = "qwen3" };
    assert_int_equal(lb_synth_shape("tiny", &p.cfg, &err), LB_OK);
    assert_int_equal(lb_synth_write(tmp_path("qwen3.gguf", plain, sizeof plain), &p, &err), LB_OK);
    make_rich(plain, tmp_path("qwen3rich.gguf", rich, sizeof rich));
    quantize(rich, NULL, "q4_k_m", tmp_path("qwen3q.gguf", out, sizeof out));
    quantize(plain, NULL, "q4_k_m", tmp_path("qwen3ref.gguf", ref, sizeof ref));
    check_keys(rich, out, true, true);
    raw_file f = raw_read(out);
    const raw_kv *a = raw_find(&f, "general.architecture");
    assert_non_null(a);
    assert_memory_equal(a->val + 8, "qwen3", 5);
    assert_int_equal(raw_u32(&f, "qwen3.block_count"), (uint32_t)p.cfg.n_layers);
    raw_free(&f);
    check_same_tensors(out, ref);
    check_same_logits(out, ref);
    unlink(plain), unlink(rich), unlink(out), unlink(ref);
}

/* A key lowbit writes whose value changed is lowbit's, in the input's place; one whose
 * value is the same in another width is the input's. */
static void test_writer_merge_rules(void **state) {
    (void)state;
    lb_gguf_writer *in_w = lb_gguf_writer_create(), *own = lb_gguf_writer_create(),
                   *w    = lb_gguf_writer_create();
    const uint64_t  ctx  = 512;
    assert_int_equal(lb_gguf_writer_set_str(in_w, "general.license", "mit"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u64(in_w, "llama.context_length", ctx), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(in_w, "llama.block_count", 4), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(in_w, "general.alignment", 64), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(in_w, "split.count", "x"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(own, "llama.block_count", 5), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(own, "llama.context_length", 512), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(own, "lowbit.version", "1"), LB_OK);
    void    *img;
    size_t   n;
    lb_gguf *in, *out;
    lb_error err = { 0 };
    assert_int_equal(lb_gguf_writer_kv_image(in_w, &img, &n), LB_OK);
    assert_int_equal(lb_gguf_open_memory(&in, img, n, "in", &err), LB_OK);
    assert_int_equal(lb_model_merge_meta(w, in, own, true, &err), LB_OK);
    void  *img2;
    size_t n2;
    assert_int_equal(lb_gguf_writer_kv_image(w, &img2, &n2), LB_OK);
    assert_int_equal(lb_gguf_open_memory(&out, img2, n2, "out", &err), LB_OK);
    assert_int_equal(out->n_kv, 4);
    assert_string_equal(out->kv[0].key, "general.license");
    assert_string_equal(out->kv[1].key, "llama.context_length");
    assert_int_equal(out->kv[1].type, LB_GGUF_U64); /* the same value: the input's */
    assert_string_equal(out->kv[2].key, "llama.block_count");
    assert_int_equal(out->kv[2].v.u64, 5); /* changed: lowbit's, in place */
    assert_string_equal(out->kv[3].key, "lowbit.version");
    lb_gguf_close(in);
    lb_gguf_close(out);
    free(img);
    free(img2);
    lb_gguf_writer_free(in_w);
    lb_gguf_writer_free(own);
    lb_gguf_writer_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_merge_rules),
        cmocka_unit_test(test_quantize_keeps_keys),
        cmocka_unit_test(test_convert_keeps_keys),
        cmocka_unit_test(test_qat_keeps_keys),
        cmocka_unit_test(test_tokenizer_replaced),
        cmocka_unit_test(test_qwen3_keeps_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
