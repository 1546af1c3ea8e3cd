/* Model loading and the forward pass: llama2.c and GGUF give the same logits, batched and
 * token-by-token forward passes agree, f16/bf16 stay close to f32, bad checkpoints and
 * bad GGUF models fail with a clear status, the other tiny models in ../shared run. */
#include <math.h>

#include "lowbit/synth.h"
#include "test_util.h"

static lb_model *load(const char *path, const char *tok) {
    lb_model *m;
    lb_error  err = { 0 };
    lb_status st  = lb_model_load(&m, path, tok, &err);
    if (st) printf("# %s\n", err.msg);
    assert_int_equal(st, LB_OK);
    return m;
}

static const char *stories_bin(char *buf, size_t cap) {
    return repo_path("models/stories260K/stories260K.bin", buf, cap);
}

/* logits of the tokens [1, 2..n) run as one batch (all rows) */
static float *logits_batch(const lb_model *m, const int32_t *toks, int32_t n) {
    lb_context  *c;
    const float *lg;
    lb_error     err = { 0 };
    assert_int_equal(lb_context_create(&c, m, 64, 64, &err), LB_OK);
    assert_int_equal(lb_forward(c, toks, n, &lg, &err), LB_OK);
    float *out = malloc((size_t)n * (size_t)m->cfg.n_vocab * sizeof *out);
    memcpy(out, lg, (size_t)n * (size_t)m->cfg.n_vocab * sizeof *out);
    lb_context_free(c);
    return out;
}

static const int32_t k_toks[] = { 1, 403, 407, 261, 378, 281, 354, 297, 266, 322, 295, 402, 31, 13 };
#define N_TOKS ((int32_t)(sizeof k_toks / sizeof k_toks[0]))

static void test_llama2c_config(void **state) {
    (void)state;
    char      p[512];
    lb_model *m = load(stories_bin(p, sizeof p), NULL); /* tokenizer found beside it */
    assert_int_equal(m->cfg.n_embd, 64);
    assert_int_equal(m->cfg.n_ff, 172);
    assert_int_equal(m->cfg.n_layers, 5);
    assert_int_equal(m->cfg.n_heads, 8);
    assert_int_equal(m->cfg.n_kv_heads, 4);
    assert_int_equal(m->cfg.n_vocab, 512);
    assert_int_equal(m->cfg.n_ctx_train, 512);
    assert_true(m->tied_output);
    assert_int_equal(lb_model_nparams(m), 260032);
    /* the tensor list has an explicit capacity: the count comes back, never more is written */
    lb_named_tensor few[4];
    memset(few, 0x5a, sizeof few);
    assert_int_equal(lb_model_tensors(m, few, 3), lb_model_n_tensors(m));
    assert_string_equal(few[0].name, "token_embd.weight");
    for (size_t b = 0; b < sizeof few[3]; b++) assert_int_equal(((const unsigned char *)&few[3])[b], 0x5a);
    assert_int_equal(lb_model_tensors(m, NULL, 0), 47);
    lb_model_free(m);
}

static void test_batch_equals_sequential(void **state) {
    (void)state;
    char          p[512];
    lb_model     *m   = load(stories_bin(p, sizeof p), NULL);
    const int32_t V   = m->cfg.n_vocab;
    float        *all = logits_batch(m, k_toks, N_TOKS);
    lb_context   *c;
    lb_error      err = { 0 };
    assert_int_equal(lb_context_create(&c, m, 64, 1, &err), LB_OK);
    double maxdiff = 0;
    for (int32_t t = 0; t < N_TOKS; t++) {
        const float *lg;
        assert_int_equal(lb_forward(c, &k_toks[t], 1, &lg, &err), LB_OK);
        for (int32_t i = 0; i < V; i++) {
            const double d = fabs((double)lg[i] - (double)all[(size_t)t * (size_t)V + (size_t)i]);
            if (d > maxdiff) maxdiff = d;
        }
    }
    printf("# batch vs sequential: max |diff| = %.3g\n", maxdiff);
    assert_true(maxdiff < 1e-4);
    /* the context refuses what does not fit */
    const float *lg;
    int32_t      bad = 512;
    assert_int_equal(lb_forward(c, &bad, 1, &lg, &err), LB_ERR_PARAM);
    assert_int_equal(lb_forward(c, k_toks, 2, &lg, &err), LB_ERR_PARAM);
    lb_context_free(c);
    free(all);
    lb_model_free(m);
}

static void test_gguf_round_trip(void **state) {
    (void)state;
    char      p[512], out[256];
    lb_model *m = load(stories_bin(p, sizeof p), NULL);
    lb_error  err = { 0 };
    tmp_path("f32.gguf", out, sizeof out);
    assert_int_equal(lb_model_save_gguf(m, out, LB_TYPE_F32, &err), LB_OK);
    lb_model *g   = load(out, NULL);
    float    *a   = logits_batch(m, k_toks, N_TOKS);
    float    *b   = logits_batch(g, k_toks, N_TOKS);
    /* same weights, same arithmetic: identical logits */
    assert_memory_equal(a, b, (size_t)N_TOKS * 512 * sizeof(float));
    assert_int_equal(lb_vocab_n_tokens(g->vocab), 512);
    for (int32_t i = 0; i < 512; i++) {
        size_t la, lb;
        const char *ta = lb_vocab_text(m->vocab, i, &la), *tb = lb_vocab_text(g->vocab, i, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(ta, tb, la);
        assert_true(lb_vocab_score(m->vocab, i) == lb_vocab_score(g->vocab, i));
        assert_int_equal(lb_vocab_type(m->vocab, i), lb_vocab_type(g->vocab, i));
    }
    /* f16 and bf16: close to f32 */
    const lb_type types[] = { LB_TYPE_F16, LB_TYPE_BF16 };
    for (int k = 0; k < 2; k++) {
        char o2[256];
        tmp_path(k ? "bf16.gguf" : "f16.gguf", o2, sizeof o2);
        assert_int_equal(lb_model_save_gguf(m, o2, types[k], &err), LB_OK);
        lb_model *h = load(o2, NULL);
        assert_int_equal(h->layers[0].wq.type, types[k]);
        assert_int_equal(h->layers[0].attn_norm.type, LB_TYPE_F32);
        float *c       = logits_batch(h, k_toks, N_TOKS);
        double num = 0, den = 0;
        for (size_t i = 0; i < (size_t)N_TOKS * 512; i++) {
            num += ((double)c[i] - a[i]) * ((double)c[i] - a[i]);
            den += (double)a[i] * a[i];
        }
        printf("# %s: relative logit error %.3g\n", lb_type_name(types[k]), sqrt(num / den));
        assert_true(sqrt(num / den) < (k ? 2e-2 : 2e-3));
        free(c);
        lb_model_free(h);
        remove(o2);
    }
    free(a);
    free(b);
    lb_model_free(g);
    lb_model_free(m);
    remove(out);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static lb_status try_load(const char *path, const char *tok, lb_error *err) {
    lb_model *m = NULL;
    err->msg[0] = '\0';
    lb_status st = lb_model_load(&m, path, tok, err);
    assert_true(st == LB_OK ? m != NULL : m == NULL);
    lb_model_free(m);
    if (st) assert_true(strlen(err->msg) > 0 && strstr(err->msg, path) != NULL);
    return st;
}

static void test_llama2c_bad_input(void **state) {
    (void)state;
    char     src[512], tok[512], path[256];
    char    *data;
    size_t   size;
    lb_error err = { 0 };
    assert_int_equal(lb_read_file(stories_bin(src, sizeof src), &data, &size, &err), LB_OK);
    repo_path("models/stories260K/tok512.bin", tok, sizeof tok);
    tmp_path("bad.bin", path, sizeof path);
    /* truncations: the header, then inside the weights */
    const size_t cuts[] = { 0, 3, 27, 28, 1000, size / 2, size - 4, size - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(path, data, cuts[i]);
        const lb_status st = try_load(path, tok, &err);
        assert_true(st == LB_ERR_TRUNCATED || st == LB_ERR_FORMAT);
    }
    /* extra bytes at the end */
    char *big = calloc(size + 8, 1);
    memcpy(big, data, size);
    write_bytes(path, big, size + 8);
    assert_int_equal(try_load(path, tok, &err), LB_ERR_CORRUPT);
    free(big);
    /* absurd headers */
    const struct {
        int     field;
        int32_t value;
    } bad[] = { { 0, 0 }, { 0, -64 }, { 0, 1 << 30 }, { 1, 0 }, { 2, 100000 }, { 3, 0 }, { 3, 7 },
                { 4, 3 }, { 5, 0 }, { 5, INT32_MIN }, { 6, 0 }, { 6, -1 } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *d = malloc(size);
        memcpy(d, data, size);
        memcpy(d + 4 * bad[i].field, &bad[i].value, 4);
        write_bytes(path, d, size);
        const lb_status st = try_load(path, tok, &err);
        assert_true(st == LB_ERR_FORMAT || st == LB_ERR_TRUNCATED || st == LB_ERR_CORRUPT);
        free(d);
    }
    /* llama2.c's version-2 export */
    memcpy(data, "ak42", 4);
    write_bytes(path, data, size);
    assert_int_equal(try_load(path, tok, &err), LB_ERR_UNSUPPORTED);
    /* a tokenizer whose size disagrees with the model */
    char tok105[512];
    if (shared_path("models/babyllama-tok105/tok105.model", tok105, sizeof tok105)) {
        char p2[512];
        assert_int_equal(try_load(stories_bin(p2, sizeof p2), tok105, &err), LB_ERR_SHAPE);
        printf("# %s\n", err.msg);
    }
    remove(path);
    free(data);
}

static void test_gguf_model_errors(void **state) {
    (void)state;
    char     p[512], out[256];
    lb_error err = { 0 };
    lb_model *m  = load(stories_bin(p, sizeof p), NULL);
    tmp_path("m.gguf", out, sizeof out);
    assert_int_equal(lb_model_save_gguf(m, out, LB_TYPE_F32, &err), LB_OK);
    lb_gguf *g;
    assert_int_equal(lb_gguf_open(&g, out, &err), LB_OK);
    /* rewrite the file with one change: drop a tensor, change a shape, change the arch, the
     * heads, or store a matrix in a type lowbit cannot compute with (ggml's Q8_1) */
    for (int variant = 0; variant < 5; variant++) {
        lb_gguf_writer *w = lb_gguf_writer_create();
        for (int64_t i = 0; i < g->n_kv; i++) {
            if (variant == 2 && !strcmp(g->kv[i].key, "general.architecture")) {
                lb_gguf_writer_set_str(w, "general.architecture", "gpt2");
                continue;
            }
            if (variant == 3 && !strcmp(g->kv[i].key, "llama.attention.head_count")) {
                lb_gguf_writer_set_u32(w, "llama.attention.head_count", 3);
                continue;
            }
            assert_int_equal(lb_gguf_writer_copy_kv(w, &g->kv[i]), LB_OK);
        }
        for (int64_t i = 0; i < g->n_tensors; i++) {
            const lb_gguf_tensor_info *t = &g->tensors[i];
            if (variant == 0 && !strcmp(t->name, "blk.2.ffn_up.weight")) continue;
            int64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
            if (variant == 1 && !strcmp(t->name, "blk.1.attn_k.weight")) {
                ne[0] = 32; /* [64, 32] -> [32, 64]: same bytes, wrong shape */
                ne[1] = 64;
            }
            if (variant == 4 && !strcmp(t->name, "blk.0.attn_q.weight")) { /* f32 bytes, fewer */
                assert_int_equal(lb_gguf_writer_add_tensor(w, t->name, LB_GGML_Q8_1, t->n_dims, ne, t->data,
                                                           lb_ggml_type_size(LB_GGML_Q8_1) * (size_t)(ne[0] * ne[1] / 32),
                                                           &err), LB_OK);
                continue;
            }
            assert_int_equal(lb_gguf_writer_add_tensor(w, t->name, t->ggml_type, t->n_dims, ne,
                                                       t->data, t->nbytes, &err), LB_OK);
        }
        char bad[256];
        tmp_path("bad.gguf", bad, sizeof bad);
        assert_int_equal(lb_gguf_writer_write(w, bad, &err), LB_OK);
        lb_gguf_writer_free(w);
        const lb_status expect[] = { LB_ERR_NOT_FOUND, LB_ERR_SHAPE, LB_ERR_UNSUPPORTED, LB_ERR_CORRUPT,
                                     LB_ERR_UNSUPPORTED };
        const lb_status st       = try_load(bad, NULL, &err);
        printf("# variant %d: %s\n", variant, err.msg);
        assert_int_equal(st, expect[variant]);
        remove(bad);
    }
    lb_gguf_close(g);
    /* llama.cpp's own IQ2_XXS file loads (the i-quants are lowbit types too) */
    char q4[512];
    if (shared_path("golden/synth256-IQ2_XXS.gguf", q4, sizeof q4))
        assert_int_equal(try_load(q4, NULL, &err), LB_OK);
    lb_model_free(m);
    remove(out);
}

/* A checkpoint with a separate classifier (negative vocab_size, wcls at the end): here a
 * copy of the embedding, so the logits must equal the shared model's. */
static void test_llama2c_separate_classifier(void **state) {
    (void)state;
    char     src[512], tok[512], path[256];
    char    *data;
    size_t   size;
    lb_error err = { 0 };
    assert_int_equal(lb_read_file(stories_bin(src, sizeof src), &data, &size, &err), LB_OK);
    const size_t emb = 512 * 64 * sizeof(float);
    char        *d   = malloc(size + emb);
    memcpy(d, data, size);
    memcpy(d + size, data + 28, emb); /* wcls = token_embedding */
    const int32_t neg = -512;
    memcpy(d + 20, &neg, 4);
    FILE *f = fopen(tmp_path("sep.bin", path, sizeof path), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, size + emb, f), size + emb);
    fclose(f);
    lb_model *a = load(src, NULL);
    lb_model *b = load(path, repo_path("models/stories260K/tok512.bin", tok, sizeof tok));
    assert_false(b->tied_output);
    assert_ptr_not_equal(b->output.data, b->tok_embd.data);
    float *x = logits_batch(a, k_toks, N_TOKS), *y = logits_batch(b, k_toks, N_TOKS);
    assert_memory_equal(x, y, (size_t)N_TOKS * 512 * sizeof(float));
    free(x);
    free(y);
    lb_model_free(a);
    lb_model_free(b);
    free(d);
    free(data);
    remove(path);
}

/* llama.cpp's converter wrote this file; it must give the same logits as the .bin */
static void test_llama_cpp_gguf(void **state) {
    (void)state;
    char gp[512], bp[512];
    SKIP_UNLESS(shared_path("golden/stories260K-f32.gguf", gp, sizeof gp));
    lb_model *g = load(gp, NULL), *b = load(stories_bin(bp, sizeof bp), NULL);
    assert_false(g->tied_output); /* the converter stores output.weight separately */
    float *x = logits_batch(g, k_toks, N_TOKS), *y = logits_batch(b, k_toks, N_TOKS);
    assert_memory_equal(x, y, (size_t)N_TOKS * 512 * sizeof(float));
    free(x);
    free(y);
    lb_model_free(g);
    lb_model_free(b);
}

/* The other tiny llama2.c models: aidreams260K (own tokenizer), BabyLlama (tok105.model). */
static void test_other_models(void **state) {
    (void)state;
    const char *models[][2] = {
        { "models/aidreams260K/aidreams260K.bin", "models/aidreams260K/tok512.bin" },
        { "models/babyllama-tok105/model5000.bin", "models/babyllama-tok105/tok105.model" },
    };
    for (int k = 0; k < 2; k++) {
        char mp[512], tp[512];
        if (!shared_path(models[k][0], mp, sizeof mp) || !shared_path(models[k][1], tp, sizeof tp)) {
            skip();
            return;
        }
        lb_model   *m = load(mp, tp);
        lb_context *c;
        lb_error    err = { 0 };
        int32_t    *ids;
        size_t      n;
        const char *text = "Once upon a time";
        assert_int_equal(lb_tokenize(m->vocab, text, strlen(text), true, false, &ids, &n, &err), LB_OK);
        assert_int_equal(lb_context_create(&c, m, 64, 64, &err), LB_OK);
        const float *lg;
        assert_int_equal(lb_forward(c, ids, (int32_t)n, &lg, &err), LB_OK);
        for (size_t i = 0; i < n * (size_t)m->cfg.n_vocab; i++) assert_true(isfinite(lg[i]));
        free(ids);
        lb_context_free(c);
        lb_model_free(m);
    }
}

static void test_sampler(void **state) {
    (void)state;
    float      logits[5] = { 0.1f, 2.0f, -1.0f, 1.9f, 0.0f }, scratch[10];
    lb_sampler s;
    lb_sampler_init(&s, 0.0f, 0.9f, 1);
    assert_int_equal(lb_sample(&s, logits, 5, scratch), 1);
    /* seeded sampling is reproducible; top-p 0.5 keeps only the top tokens */
    int32_t a[32], b[32];
    lb_sampler_init(&s, 1.0f, 1.0f, 42);
    for (int i = 0; i < 32; i++) a[i] = lb_sample(&s, logits, 5, scratch);
    lb_sampler_init(&s, 1.0f, 1.0f, 42);
    for (int i = 0; i < 32; i++) b[i] = lb_sample(&s, logits, 5, scratch);
    assert_memory_equal(a, b, sizeof a);
    lb_sampler_init(&s, 1.0f, 0.5f, 7);
    for (int i = 0; i < 64; i++) {
        const int32_t t = lb_sample(&s, logits, 5, scratch);
        assert_true(t == 1 || t == 3);
    }
}


/* ---- lowbit's own types: quantized models stored as I8 rows + metadata, loaded back ---- */


/* Quantize m to recipe `name` at path; check the stored types and shapes; return the
 * relative logit error against ref. */
static double quantize_and_check(const lb_model *m, const char *name, const char *path,
                                 const float *ref) {
    const lb_quant_params p   = { .recipe = lb_recipe_find(name), .method = "rtn" };
    lb_tensor_plan        pl[3 + 9 * 5];
    lb_named_tensor       nt[3 + 9 * 5], lt[3 + 9 * 5];
    lb_quant_summary      s;
    lb_error              err = { 0 };
    assert_non_null(p.recipe);
    assert_int_equal(lb_quantize_model(m, path, &p, pl, nt, 2, &s, &err), LB_ERR_PARAM); /* too little room */
    assert_int_equal(lb_quantize_model(m, path, &p, pl, nt, (int32_t)(sizeof pl / sizeof pl[0]), &s, &err), LB_OK);
    lb_model     *q = load(path, NULL);
    const int32_t n = lb_model_tensors(q, lt, (int32_t)(sizeof lt / sizeof lt[0]));
    assert_int_equal(n, s.n_tensors);
    int n_own = 0;
    for (int32_t i = 0; i < n; i++) {
        const lb_tensor *t = lt[i].t, *o = nt[i].t;
        assert_string_equal(lt[i].name, nt[i].name);
        /* norms are computed in f32 whatever the file holds */
        const lb_type want = o->ne[1] == 1 ? LB_TYPE_F32 : pl[i].type;
        assert_int_equal(t->type, want);
        for (int d = 0; d < LB_MAX_DIMS; d++) assert_int_equal(t->ne[d], o->ne[d]);
        /* in the file: I8 rows of the type's bytes */
        const int64_t k = lb_gguf_find_tensor(lb_model_gguf(q), lt[i].name);
        assert_true(k >= 0);
        const lb_gguf_tensor_info *ti = &lb_model_gguf(q)->tensors[k];
        if (lb_type_to_ggml(want) < 0) {
            n_own++;
            assert_int_equal(ti->ggml_type, LB_GGML_I8);
            assert_int_equal(ti->ne[0], (int64_t)lb_row_size(want, o->ne[0]));
            assert_int_equal(ti->ne[1], o->ne[1]);
        } else {
            assert_int_equal(ti->ggml_type, lb_type_to_ggml(want));
        }
    }
    assert_true(n_own >= 5 * 6); /* at least every layer's attention and FFN up/gate */
    float *lg = logits_batch(q, k_toks, N_TOKS);
    for (size_t i = 0; i < (size_t)N_TOKS * 512; i++) assert_true(isfinite(lg[i]));
    const double e = test_rel_rms(lg, ref, (size_t)N_TOKS * 512);
    printf("# %-12s %.3f bpw, %d tensors in own types, relative logit error %.4f\n", name, s.bpw,
           n_own, e);
    free(lg);
    lb_model_free(q);
    return e;
}

static void test_own_types_model(void **state) {
    (void)state;
    char      p[512], out[256];
    lb_model *m   = load(stories_bin(p, sizeof p), NULL);
    float    *ref = logits_batch(m, k_toks, N_TOKS);
    tmp_path("own.gguf", out, sizeof out);
    const char *names[] = { "int4_g32", "nf4", "fp8_e4m3_pc", "ternary", "int8_pc", "int2_g32" };
    double      e[6];
    for (int k = 0; k < 6; k++) e[k] = quantize_and_check(m, names[k], out, ref);
    assert_true(e[4] < e[0] && e[0] < e[5]);  /* int8_pc < int4_g32 < int2_g32 */
    assert_true(e[2] < e[0] && e[1] < e[5]);  /* fp8 (3 mantissa bits) < int4; nf4 < int2 */
    assert_true(e[4] < 0.02 && e[2] < 0.1);
    free(ref);
    lb_model_free(m);
    remove(out);
}

/* Copy GGUF g to path with key `key` replaced: as a string (s != NULL) or as a u64. */
static void rewrite_key(const lb_gguf *g, const char *path, const char *key, const char *s,
                        uint64_t v) {
    lb_gguf_writer *w   = lb_gguf_writer_create();
    lb_error        err = { 0 };
    for (int64_t i = 0; i < g->n_kv; i++) {
        lb_status st;
        if (strcmp(g->kv[i].key, key) != 0) st = lb_gguf_writer_copy_kv(w, &g->kv[i]);
        else if (s) st = lb_gguf_writer_set_str(w, key, s);
        else st = lb_gguf_writer_set_u64(w, key, v);
        assert_int_equal(st, LB_OK);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        assert_int_equal(lb_gguf_writer_add_tensor(w, t->name, t->ggml_type, t->n_dims, t->ne,
                                                   t->data, t->nbytes, &err), LB_OK);
    }
    assert_int_equal(lb_gguf_writer_write(w, path, &err), LB_OK);
    lb_gguf_writer_free(w);
}

static void test_own_types_bad_input(void **state) {
    (void)state;
    char                  p[512], out[256], bad[256];
    lb_model             *m   = load(stories_bin(p, sizeof p), NULL);
    const lb_quant_params qp  = { .recipe = lb_recipe_find("int4_g32"), .method = "rtn" };
    lb_error              err = { 0 };
    tmp_path("own-ok.gguf", out, sizeof out);
    tmp_path("own-bad.gguf", bad, sizeof bad);
    assert_int_equal(lb_quantize_model(m, out, &qp, NULL, NULL, 0, NULL, &err), LB_OK);
    lb_model_free(m);
    lb_gguf *g;
    assert_int_equal(lb_gguf_open(&g, out, &err), LB_OK);
    const char *tk = "lowbit.tensor_type.blk.1.attn_k.weight";
    const char *nk = "lowbit.tensor_ne0.blk.1.attn_k.weight";
    const struct {
        const char *key, *s;
        uint64_t    v;
        lb_status   want;
    } cases[] = {
        { tk, "int9_g32", 0, LB_ERR_UNSUPPORTED },  /* a type this lowbit does not know */
        { tk, "int4_g64", 0, LB_ERR_CORRUPT },      /* rows of 64: 34 bytes, the file has 36 */
        { tk, "int8_pc", 0, LB_ERR_CORRUPT },       /* rows of 64 int8_pc take 68 bytes */
        { nk, NULL, 65, LB_ERR_CORRUPT },           /* 65 values fit no 32-block */
        { nk, NULL, 128, LB_ERR_CORRUPT },          /* 72 bytes, the file stores 36 */
        { nk, NULL, 0, LB_ERR_CORRUPT },
        { tk, "q8_0", 0, LB_ERR_CORRUPT },          /* a GGUF type is checked the same way */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rewrite_key(g, bad, cases[i].key, cases[i].s, cases[i].v);
        const lb_status st = try_load(bad, NULL, &err);
        printf("# %s = %s: %s\n", cases[i].key, cases[i].s ? cases[i].s : "(u64)", err.msg);
        assert_int_equal(st, cases[i].want);
        assert_non_null(strstr(err.msg, "blk.1.attn_k.weight"));
    }
    lb_gguf_close(g);
    remove(out);
    remove(bad);
}

/* llama.cpp's converter writes Phi-3's q, k, v as one attn_qkv: a phi3 GGUF rewritten that
 * way (every key kept, q/k/v rows concatenated) gives the logits of the one with separate q/k/v;
 * a wrong fused shape is refused by name. */
static void test_phi3_fused_qkv(void **state) {
    (void)state;
    char            sep[256], fused[256], bad[256], tok[512];
    lb_error        err = { 0 };
    lb_synth_params sp  = { .seed = 7, .type = LB_TYPE_F32, .arch = "phi3",
                            .vocab_path = repo_path("models/stories260K/tok512.bin", tok, sizeof tok) };
    assert_int_equal(lb_synth_shape("tiny", &sp.cfg, &err), LB_OK);
    sp.cfg.n_layers = 2, sp.cfg.n_embd = 128, sp.cfg.n_ff = 256, sp.cfg.n_heads = 4, sp.cfg.n_kv_heads = 2;
    sp.cfg.n_vocab = 512, sp.cfg.head_dim = 0;
    assert_int_equal(lb_synth_write(tmp_path("phi3-sep.gguf", sep, sizeof sep), &sp, &err), LB_OK);
    lb_gguf *g;
    assert_int_equal(lb_gguf_open(&g, sep, &err), LB_OK);
    for (int variant = 0; variant < 2; variant++) { /* 0: the right fused shape, 1: a row short */
        lb_gguf_writer *w = lb_gguf_writer_create();
        void           *cat[2] = { NULL, NULL };
        for (int64_t i = 0; i < g->n_kv; i++) assert_int_equal(lb_gguf_writer_copy_kv(w, &g->kv[i]), LB_OK);
        for (int64_t i = 0; i < g->n_tensors; i++) {
            const lb_gguf_tensor_info *t = &g->tensors[i];
            int                        l;
            char                       what[32];
            if (sscanf(t->name, "blk.%d.attn_%31[^.]", &l, what) == 2 &&
                (!strcmp(what, "q") || !strcmp(what, "k") || !strcmp(what, "v"))) {
                if (strcmp(what, "q") != 0) continue; /* q's turn writes all three */
                char          kn[64], vn[64], fn[64];
                snprintf(kn, sizeof kn, "blk.%d.attn_k.weight", l);
                snprintf(vn, sizeof vn, "blk.%d.attn_v.weight", l);
                snprintf(fn, sizeof fn, "blk.%d.attn_qkv.weight", l);
                const lb_gguf_tensor_info *k = &g->tensors[lb_gguf_find_tensor(g, kn)];
                const lb_gguf_tensor_info *v = &g->tensors[lb_gguf_find_tensor(g, vn)];
                const size_t rb = (size_t)t->ne[0] * sizeof(float);
                const size_t nb = t->nbytes + k->nbytes + v->nbytes - (variant ? rb : 0);
                uint8_t     *c  = malloc(t->nbytes + k->nbytes + v->nbytes);
                memcpy(c, t->data, t->nbytes);
                memcpy(c + t->nbytes, k->data, k->nbytes);
                memcpy(c + t->nbytes + k->nbytes, v->data, v->nbytes);
                cat[l] = c;
                const int64_t ne[2] = { t->ne[0], (int64_t)(nb / rb) };
                assert_int_equal(lb_gguf_writer_add_tensor(w, fn, t->ggml_type, 2, ne, c, nb, &err), LB_OK);
                continue;
            }
            assert_int_equal(lb_gguf_writer_add_tensor(w, t->name, t->ggml_type, t->n_dims, t->ne, t->data,
                                                       t->nbytes, &err), LB_OK);
        }
        tmp_path(variant ? "phi3-bad.gguf" : "phi3-fused.gguf", variant ? bad : fused, sizeof fused);
        assert_int_equal(lb_gguf_writer_write(w, variant ? bad : fused, &err), LB_OK);
        lb_gguf_writer_free(w);
        free(cat[0]);
        free(cat[1]);
    }
    lb_gguf_close(g);
    lb_model *a = load(sep, NULL), *b = load(fused, NULL), *c;
    float    *la = logits_batch(a, k_toks, N_TOKS), *lb_ = logits_batch(b, k_toks, N_TOKS);
    assert_memory_equal(la, lb_, (size_t)N_TOKS * 512 * sizeof(float));
    assert_int_equal(lb_model_load(&c, bad, NULL, &err), LB_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "blk.0.attn_qkv.weight"));
    free(la);
    free(lb_);
    lb_model_free(a);
    lb_model_free(b);
    remove(sep);
    remove(fused);
    remove(bad);
}


/* A split model (llama.cpp's gguf-split: PREFIX-0000K-of-0000N.gguf, split.* keys, tensors
 * divided, metadata in the first): loads from its first shard with the whole file's logits;
 * a missing shard, a shard with the wrong split.no and a first shard named otherwise are
 * errors naming the problem. */
static void write_shard(const lb_gguf *g, const char *path, int no, int count, int64_t t0, int64_t t1, bool meta) {
    lb_gguf_writer *w   = lb_gguf_writer_create();
    lb_error        err = { 0 };
    for (int64_t i = 0; meta && i < g->n_kv; i++) assert_int_equal(lb_gguf_writer_copy_kv(w, &g->kv[i]), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(w, "split.no", (uint32_t)no), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(w, "split.count", (uint32_t)count), LB_OK);
    assert_int_equal(lb_gguf_writer_set_i32(w, "split.tensors.count", (int32_t)g->n_tensors), LB_OK);
    for (int64_t i = t0; i < t1; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        assert_int_equal(lb_gguf_writer_add_tensor(w, t->name, t->ggml_type, t->n_dims, t->ne, t->data, t->nbytes, &err),
                         LB_OK);
    }
    assert_int_equal(lb_gguf_writer_write(w, path, &err), LB_OK);
    lb_gguf_writer_free(w);
}

static void test_split_gguf(void **state) {
    (void)state;
    char      p[512], whole[512], s1[512], s2[512], odd[512];
    lb_error  err = { 0 };
    lb_model *m   = load(stories_bin(p, sizeof p), NULL);
    tmp_path("whole.gguf", whole, sizeof whole);
    tmp_path("sp-00001-of-00002.gguf", s1, sizeof s1);
    tmp_path("sp-00002-of-00002.gguf", s2, sizeof s2);
    tmp_path("sp-first.gguf", odd, sizeof odd);
    assert_int_equal(lb_model_save_gguf(m, whole, LB_TYPE_F32, &err), LB_OK);
    lb_gguf *g;
    assert_int_equal(lb_gguf_open(&g, whole, &err), LB_OK);
    const int64_t half = g->n_tensors / 2;
    write_shard(g, s1, 0, 2, 0, half, true);
    write_shard(g, s2, 1, 2, half, g->n_tensors, false);
    const int32_t n  = (int32_t)(sizeof k_toks / sizeof k_toks[0]);
    lb_model     *a  = load(whole, NULL), *b = load(s1, NULL);
    float        *la = logits_batch(a, k_toks, n), *lbits = logits_batch(b, k_toks, n);
    assert_int_equal(lb_model_gguf(b)->n_tensors, g->n_tensors);
    assert_memory_equal(la, lbits, (size_t)n * (size_t)a->cfg.n_vocab * sizeof *la);
    free(la), free(lbits);
    lb_model_free(a), lb_model_free(b);
    /* errors */
    lb_model *x = NULL;
    write_shard(g, s2, 0, 2, half, g->n_tensors, false); /* split.no says it is the first */
    assert_int_not_equal(lb_model_load(&x, s1, NULL, &err), LB_OK);
    assert_non_null(strstr(err.msg, "not shard 2 of 2"));
    unlink(s2);
    assert_int_not_equal(lb_model_load(&x, s1, NULL, &err), LB_OK);
    assert_non_null(strstr(err.msg, "sp-00002-of-00002.gguf"));
    write_shard(g, odd, 0, 2, 0, half, true);
    assert_int_not_equal(lb_model_load(&x, odd, NULL, &err), LB_OK);
    assert_non_null(strstr(err.msg, "must be named PREFIX-00001-of-00002.gguf"));
    assert_null(x);
    lb_gguf_close(g);
    lb_model_free(m);
    unlink(whole), unlink(s1), unlink(odd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2c_config),    cmocka_unit_test(test_batch_equals_sequential),
        cmocka_unit_test(test_gguf_round_trip),   cmocka_unit_test(test_llama2c_bad_input),
        cmocka_unit_test(test_gguf_model_errors), cmocka_unit_test(test_llama_cpp_gguf),
        cmocka_unit_test(test_other_models),      cmocka_unit_test(test_sampler),
        cmocka_unit_test(test_llama2c_separate_classifier),
        cmocka_unit_test(test_own_types_model),   cmocka_unit_test(test_own_types_bad_input),
        cmocka_unit_test(test_phi3_fused_qkv),    cmocka_unit_test(test_split_gguf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
