/* Hugging Face models in and out. The stories260K HF directory written by an independent
 * generator (tests/fixtures/make_hf_fixture.c) loads to the llama2.c checkpoint's tensors
 * (bit for bit, after the rotary permutation), vocabulary and logits; bf16 shards match an
 * independent rounding; HF -> GGUF equals .bin -> GGUF in every tensor; GGUF -> HF -> GGUF
 * keeps every tensor; byte-level tokenizers survive tokenizer.json; Qwen2's attention biases
 * and Llama 3.1's rope_scaling go through GGUF and back; bad files fail cleanly. */
#include <math.h>
#include <sys/stat.h>

#include "../fixtures/make_hf_fixture.c"
#include "test_util.h"

static char g_dir[512]; /* the f32 fixture, made once */

static const char *src_path(const char *rel, char *buf, size_t cap) { return repo_path(rel, buf, cap); }

static void rm_dir(const char *dir) {
    static const char *files[] = { "config.json", "generation_config.json", "model.safetensors",
                                   "tokenizer.json", "tokenizer_config.json",
                                   "model.safetensors.index.json", "model-00001-of-00003.safetensors",
                                   "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors" };
    char p[700];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    rmdir(dir);
}

static void make_fixture(const char *dir, const char *type, int shards) {
    char bin[512], tok[512];
    rm_dir(dir);
    assert_int_equal(make_hf_fixture(src_path("models/stories260K/stories260K.bin", bin, sizeof bin),
                                     src_path("models/stories260K/tok512.bin", tok, sizeof tok), dir,
                                     type, shards), 0);
}

static lb_model *load(const char *path) {
    lb_model *m;
    lb_error  err = { 0 };
    lb_status st  = lb_model_load(&m, path, NULL, &err);
    if (st) printf("# %s\n", err.msg);
    assert_int_equal(st, LB_OK);
    return m;
}

static lb_model *load_bin(void) {
    char p[512];
    return load(src_path("models/stories260K/stories260K.bin", p, sizeof p));
}

static int setup(void **state) {
    (void)state;
    tmp_path("hf-f32", g_dir, sizeof g_dir);
    make_fixture(g_dir, "f32", 1);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_dir(g_dir);
    return 0;
}

/* ---- safetensors ---- */
static void test_safetensors_roundtrip(void **state) {
    (void)state;
    char                     path[512];
    const float              a[6] = { 1, 2, 3, 4, 5, 6 };
    const uint16_t           b[3] = { 1, 2, 3 };
    const lb_st_write_tensor ts[] = {
        { "a.weight", LB_ST_F32, 2, { 2, 3 }, a, sizeof a },
        { "b \"quoted\"", LB_ST_BF16, 1, { 3 }, b, sizeof b },
    };
    lb_error        err = { 0 };
    lb_safetensors *st;
    tmp_path("rt.safetensors", path, sizeof path);
    assert_int_equal(lb_safetensors_write(path, ts, 2, &err), LB_OK);
    assert_int_equal(lb_safetensors_open(&st, path, &err), LB_OK);
    assert_int_equal(st->n_tensors, 2);
    assert_int_equal(st->data_offset % 8, 0);
    const lb_st_tensor *t = &st->tensors[lb_safetensors_find(st, "a.weight")];
    assert_int_equal(t->dtype, LB_ST_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_memory_equal(t->data, a, sizeof a);
    t = &st->tensors[lb_safetensors_find(st, "b \"quoted\"")];
    assert_int_equal(t->dtype, LB_ST_BF16);
    assert_memory_equal(t->data, b, sizeof b);
    assert_int_equal(lb_safetensors_find(st, "c"), -1);
    lb_safetensors_close(st);
    remove(path);
}

/* A file from a header and n data bytes (zeros). */
static lb_status open_crafted(const char *header, uint64_t hlen, size_t n_data, lb_error *err) {
    const size_t hl = strlen(header);
    uint8_t     *buf = calloc(1, 8 + hl + n_data + 1);
    memcpy(buf, &hlen, 8);
    memcpy(buf + 8, header, hl);
    lb_safetensors *st;
    err->msg[0]  = '\0';
    lb_status rc = lb_safetensors_open_memory(&st, buf, 8 + hl + n_data, "crafted.safetensors", err);
    if (!rc) lb_safetensors_close(st);
    free(buf);
    return rc;
}

static void expect_bad(const char *header, size_t n_data, const char *want) {
    lb_error  err = { 0 };
    lb_status rc  = open_crafted(header, strlen(header), n_data, &err);
    printf("# %-40.40s -> %s\n", header, err.msg);
    assert_int_not_equal(rc, LB_OK);
    assert_non_null(strstr(err.msg, "crafted.safetensors"));
    assert_non_null(strstr(err.msg, want));
}

static void test_safetensors_bad(void **state) {
    (void)state;
    lb_error err = { 0 };
    const char *good = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    assert_int_equal(open_crafted(good, strlen(good), 8, &err), LB_OK);
    /* the header length is past the end of the file */
    assert_int_not_equal(open_crafted("{}", 1000000, 0, &err), LB_OK);
    assert_non_null(strstr(err.msg, "past the end of the file"));
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "malformed JSON");
    expect_bad("[1, 2]", 0, "not a safetensors file");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", 16, "need 16 bytes");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "past the end of the data");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, "overlap");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "backwards");
    expect_bad("{\"x\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "dimension 0");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "dimension 0");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "overflows");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "twice");
    /* a name repeated with its offsets: the message names the duplicate, not an overlap */
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "duplicate name");
    /* every truncation of a real file fails cleanly */
    char      path[700];
    uint8_t  *data;
    size_t    size;
    snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
    assert_int_equal(lb_read_file(path, (char **)&data, &size, &err), LB_OK);
    for (size_t cut = 0; cut < size; cut += cut < 4096 ? 7 : 65521) {
        lb_safetensors *st;
        assert_int_not_equal(lb_safetensors_open_memory(&st, data, cut, "cut", &err), LB_OK);
    }
    free(data);
}

/* ---- the HF fixture against the llama2.c checkpoint ---- */
static void assert_same_tensors(const lb_model *a, const lb_model *b) {
    lb_named_tensor ta[3 + 9 * 5], tb[3 + 9 * 5];
    const int32_t   n = lb_model_tensors(a, ta, (int32_t)(sizeof ta / sizeof ta[0]));
    assert_int_equal(lb_model_tensors(b, tb, (int32_t)(sizeof tb / sizeof tb[0])), n);
    for (int32_t i = 0; i < n; i++) {
        assert_string_equal(ta[i].name, tb[i].name);
        assert_int_equal(ta[i].t->type, tb[i].t->type);
        assert_memory_equal(ta[i].t->ne, tb[i].t->ne, sizeof ta[i].t->ne);
        if (memcmp(ta[i].t->data, tb[i].t->data, lb_tensor_nbytes(ta[i].t)) != 0) {
            printf("# tensor %s differs\n", ta[i].name);
            fail();
        }
    }
}

static void assert_same_vocab(const lb_vocab *a, const lb_vocab *b) {
    assert_int_equal(lb_vocab_n_tokens(a), lb_vocab_n_tokens(b));
    for (int32_t i = 0; i < lb_vocab_n_tokens(a); i++) {
        size_t la, lb;
        const char *x = lb_vocab_text(a, i, &la), *y = lb_vocab_text(b, i, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(x, y, la);
        assert_int_equal(lb_vocab_type(a, i), lb_vocab_type(b, i));
        assert_true(lb_vocab_score(a, i) == lb_vocab_score(b, i));
    }
    assert_int_equal(lb_vocab_bos(a), lb_vocab_bos(b));
    assert_int_equal(lb_vocab_eos(a), lb_vocab_eos(b));
    assert_int_equal(lb_vocab_add_bos(a), lb_vocab_add_bos(b));
    assert_int_equal(lb_vocab_add_space_prefix(a), lb_vocab_add_space_prefix(b));
}

static float *logits_of(const lb_model *m, const int32_t *toks, int32_t n) {
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

static void test_fixture_equals_bin(void **state) {
    (void)state;
    lb_model *hf = load(g_dir), *bin = load_bin();
    assert_int_equal(hf->format, LB_MODEL_HF);
    assert_memory_equal(&hf->cfg, &bin->cfg, sizeof hf->cfg);
    assert_true(hf->tied_output);
    assert_same_tensors(hf, bin);
    assert_same_vocab(hf->vocab, bin->vocab);
    /* the same tokens and the same logits, exactly */
    char     tp[512], *text;
    size_t   len;
    lb_error err = { 0 };
    assert_int_equal(lb_read_file(src_path("data/tinystories-valid-70.txt", tp, sizeof tp), &text, &len, &err), LB_OK);
    int32_t *ia, *ib;
    size_t   na, nb;
    assert_int_equal(lb_tokenize(hf->vocab, text, len, true, false, &ia, &na, &err), LB_OK);
    assert_int_equal(lb_tokenize(bin->vocab, text, len, true, false, &ib, &nb, &err), LB_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof *ia);
    float *la = logits_of(hf, ia, 48), *lb = logits_of(bin, ib, 48);
    assert_memory_equal(la, lb, 48 * 512 * sizeof *la);
    free(la), free(lb), free(ia), free(ib), free(text);
    lb_model_free(hf);
    lb_model_free(bin);
}

/* Mistral's newer tokenizer.json spells the '▁' handling as a Metaspace pre-tokenizer. */
static void test_metaspace_tokenizer(void **state) {
    (void)state;
    char     f[700], dir[512], *text;
    size_t   len;
    lb_error err = { 0 };
    snprintf(f, sizeof f, "%s/tokenizer.json", g_dir);
    assert_int_equal(lb_read_file(f, &text, &len, &err), LB_OK);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON_ReplaceItemInObject(j, "normalizer", cJSON_CreateNull());
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "type", "Metaspace");
    cJSON_AddStringToObject(meta, "replacement", "\xe2\x96\x81");
    cJSON_AddStringToObject(meta, "prepend_scheme", "first");
    cJSON_AddBoolToObject(meta, "split", 0);
    cJSON_ReplaceItemInObject(j, "pre_tokenizer", meta);
    tmp_path("metaspace", dir, sizeof dir);
    rm_dir(dir);
    mkdir(dir, 0755);
    assert_int_equal(fx_write_json(dir, "tokenizer.json", j), 0);
    lb_vocab *v, *r2;
    assert_int_equal(lb_vocab_load_hf(&v, dir, 0, &err), LB_OK);
    assert_int_equal(lb_vocab_load_hf(&r2, g_dir, 0, &err), LB_OK);
    assert_same_vocab(v, r2); /* the same scores, flags and special tokens */
    lb_vocab_free(v);
    lb_vocab_free(r2);
    rm_dir(dir);
}

/* bf16 in three shards: each weight is the bin's value rounded by the generator's own
 * bf16 rounding, which must agree with lowbit's bit for bit. */
static void test_fixture_bf16_shards(void **state) {
    (void)state;
    char dir[512];
    tmp_path("hf-bf16", dir, sizeof dir);
    make_fixture(dir, "bf16", 3);
    lb_model       *hf = load(dir), *bin = load_bin();
    lb_named_tensor th[3 + 9 * 5], tb[3 + 9 * 5];
    const int32_t   n = lb_model_tensors(hf, th, (int32_t)(sizeof th / sizeof th[0]));
    lb_model_tensors(bin, tb, (int32_t)(sizeof tb / sizeof tb[0]));
    for (int32_t i = 0; i < n; i++) {
        const int64_t ne = lb_tensor_nelements(tb[i].t);
        const float  *src = tb[i].t->data;
        if (th[i].t->type == LB_TYPE_F32) { /* norms: bf16 in the file, f32 in memory */
            for (int64_t k = 0; k < ne; k++)
                assert_true(((const float *)th[i].t->data)[k] == lb_bf16_to_f32(lb_f32_to_bf16(src[k])));
            continue;
        }
        assert_int_equal(th[i].t->type, LB_TYPE_BF16);
        const uint16_t *h = th[i].t->data;
        for (int64_t k = 0; k < ne; k++) assert_int_equal(h[k], lb_f32_to_bf16(src[k]));
    }
    lb_model_free(hf);
    lb_model_free(bin);
    /* a shard missing: one line naming it */
    char shard[700];
    lb_error err = { 0 };
    lb_model *m;
    snprintf(shard, sizeof shard, "%s/model-00002-of-00003.safetensors", dir);
    remove(shard);
    assert_int_not_equal(lb_model_load(&m, dir, NULL, &err), LB_OK);
    printf("# missing shard: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "model-00002-of-00003.safetensors"));
    rm_dir(dir);
}

/* Tensor data of two GGUF files, tensor by tensor. */
static void assert_same_gguf_tensors(const char *a, const char *b) {
    lb_gguf *ga, *gb;
    lb_error err = { 0 };
    assert_int_equal(lb_gguf_open(&ga, a, &err), LB_OK);
    assert_int_equal(lb_gguf_open(&gb, b, &err), LB_OK);
    assert_int_equal(ga->n_tensors, gb->n_tensors);
    for (int64_t i = 0; i < ga->n_tensors; i++) {
        const lb_gguf_tensor_info *x = &ga->tensors[i];
        const int64_t              j = lb_gguf_find_tensor(gb, x->name);
        assert_true(j >= 0);
        const lb_gguf_tensor_info *y = &gb->tensors[j];
        assert_int_equal(x->ggml_type, y->ggml_type);
        assert_int_equal(x->nbytes, y->nbytes);
        assert_memory_equal(x->ne, y->ne, sizeof x->ne);
        assert_memory_equal(x->data, y->data, x->nbytes);
    }
    lb_gguf_close(ga);
    lb_gguf_close(gb);
}

static void test_gguf_hf_roundtrips(void **state) {
    (void)state;
    char      g1[512], g2[512], g3[512], hf[512];
    lb_error  err = { 0 };
    lb_model *bin = load_bin(), *fx = load(g_dir);
    tmp_path("from-bin.gguf", g1, sizeof g1);
    tmp_path("from-hf.gguf", g2, sizeof g2);
    tmp_path("round.gguf", g3, sizeof g3);
    tmp_path("out-hf", hf, sizeof hf);
    rm_dir(hf);
    /* HF fixture -> GGUF equals .bin -> GGUF, tensor for tensor (f16 too) */
    for (int k = 0; k < 2; k++) {
        const lb_type t = k ? LB_TYPE_F16 : LB_TYPE_F32;
        assert_int_equal(lb_model_save_gguf(bin, g1, t, &err), LB_OK);
        assert_int_equal(lb_model_save_gguf(fx, g2, t, &err), LB_OK);
        assert_same_gguf_tensors(g1, g2);
    }
    /* GGUF (f16) -> HF (f16) -> GGUF (f16): every tensor kept; the vocabulary too */
    lb_model *m16 = load(g1);
    assert_int_equal(lb_model_save_hf(m16, hf, LB_TYPE_F16, &err), LB_OK);
    lb_model *back = load(hf);
    assert_same_vocab(back->vocab, m16->vocab);
    assert_int_equal(lb_model_save_gguf(back, g3, LB_TYPE_F16, &err), LB_OK);
    assert_same_gguf_tensors(g1, g3);
    /* into a directory that is not empty: refused, nothing left behind */
    lb_status st = lb_model_save_hf(m16, hf, LB_TYPE_F16, &err);
    assert_int_not_equal(st, LB_OK);
    assert_non_null(strstr(err.msg, "not empty"));
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", hf);
    assert_int_not_equal(access(tmp, F_OK), 0);
    lb_model_free(back);
    lb_model_free(m16);
    rm_dir(hf);
    /* f32: lowbit's writer gives the generator's tensors (same data, same layout) */
    assert_int_equal(lb_model_save_hf(bin, hf, LB_TYPE_F32, &err), LB_OK);
    back = load(hf);
    assert_same_tensors(back, fx);
    assert_same_vocab(back->vocab, fx->vocab);
    lb_model_free(back);
    rm_dir(hf);
    remove(g1), remove(g2), remove(g3);
    lb_model_free(bin);
    lb_model_free(fx);
}

/* ---- byte-level BPE through tokenizer.json and back ---- */
static void vocab_roundtrip(const char *rel) {
    char path[512];
    SKIP_UNLESS(shared_path(rel, path, sizeof path));
    lb_vocab *v, *w;
    lb_error  err = { 0 };
    assert_int_equal(lb_vocab_load_any(&v, path, &err), LB_OK);
    assert_int_equal(lb_vocab_kind_of(v), LB_VOCAB_BPE);
    char *tj, *tc, dir[512], f[700];
    assert_int_equal(lb_vocab_to_hf_json(v, &tj, &tc, &err), LB_OK);
    tmp_path("tok-dir", dir, sizeof dir);
    rm_dir(dir);
    mkdir(dir, 0755);
    snprintf(f, sizeof f, "%s/tokenizer.json", dir);
    FILE *fp = fopen(f, "wb");
    fputs(tj, fp);
    fclose(fp);
    snprintf(f, sizeof f, "%s/tokenizer_config.json", dir);
    fp = fopen(f, "wb");
    fputs(tc, fp);
    fclose(fp);
    free(tj), free(tc);
    assert_int_equal(lb_vocab_load_hf(&w, dir, 0, &err), LB_OK);
    assert_string_equal(lb_vocab_pre(w), lb_vocab_pre(v));
    assert_int_equal(lb_vocab_n_merges(w), lb_vocab_n_merges(v));
    assert_same_vocab(w, v);
    /* the same ids for every test input, and decoding gives the text back */
    char *text, inp[600];
    size_t len;
    snprintf(inp, sizeof inp, "%s.inp", path);
    assert_int_equal(lb_read_file(inp, &text, &len, &err), LB_OK);
    for (char *s = text, *next; s; s = next) {
        next = strstr(s, "\n__ggml_vocab_test__\n");
        const size_t n = next ? (size_t)(next - s) : strlen(s);
        int32_t *ia, *ib;
        size_t   na, nb;
        assert_int_equal(lb_tokenize(v, s, n, false, false, &ia, &na, &err), LB_OK);
        assert_int_equal(lb_tokenize(w, s, n, false, false, &ib, &nb, &err), LB_OK);
        assert_int_equal(na, nb);
        assert_memory_equal(ia, ib, na * sizeof *ia);
        char   out[4096];
        size_t k = 0;
        for (size_t i = 0; i < na; i++) k += lb_token_to_piece(v, -1, ia[i], out + k, sizeof out - k);
        assert_int_equal(k, n);
        assert_memory_equal(out, s, n);
        free(ia), free(ib);
        if (next) next += strlen("\n__ggml_vocab_test__\n");
    }
    free(text);
    rm_dir(dir);
    lb_vocab_free(v);
    lb_vocab_free(w);
}

static void test_byte_bpe_gpt2_json(void **state) {
    (void)state;
    vocab_roundtrip("gguf/ggml-vocab-gpt-2.gguf");
}

static void test_byte_bpe_deepseek_json(void **state) {
    (void)state;
    vocab_roundtrip("gguf/ggml-vocab-deepseek-llm.gguf");
}

/* ---- a byte-level BPE model: the stories weights with GPT-2's first 512 tokens, under GPT-2's
 * pre-tokenizer and under SmolLM's (digits one by one, then GPT-2's: Digits + ByteLevel in
 * tokenizer.json, "smollm" in GGUF) ---- */
static void byte_level_model(const char *pre) {
    char p[512], g[512], hf[512];
    SKIP_UNLESS(shared_path("gguf/ggml-vocab-gpt-2.gguf", p, sizeof p));
    lb_vocab *gpt2, *w;
    lb_error  err = { 0 };
    assert_int_equal(lb_vocab_load_any(&gpt2, p, &err), LB_OK);
    assert_int_equal(lb_vocab_create(&w, 512, &err), LB_OK);
    for (int32_t i = 0; i < 512; i++) {
        size_t      n;
        const char *t = lb_vocab_text(gpt2, i, &n);
        assert_int_equal(lb_vocab_set_token(w, i, t, n, 0.0f, i == 511 ? LB_TOKEN_CONTROL : LB_TOKEN_NORMAL), LB_OK);
    }
    const char **merges = malloc(lb_vocab_n_merges(gpt2) * sizeof *merges);
    size_t       nm     = 0;
    for (size_t i = 0; i < lb_vocab_n_merges(gpt2); i++) { /* the merges within the 512 tokens */
        const char *m = lb_vocab_merge(gpt2, i), *sp = strchr(m, ' ');
        char        cat[128];
        snprintf(cat, sizeof cat, "%.*s%s", (int)(sp - m), m, sp + 1);
        const int32_t a = lb_vocab_find(gpt2, m, (size_t)(sp - m)), b = lb_vocab_find(gpt2, sp + 1, strlen(sp + 1));
        const int32_t c = lb_vocab_find(gpt2, cat, strlen(cat));
        if (a >= 0 && a < 511 && b >= 0 && b < 511 && c >= 0 && c < 511) merges[nm++] = m;
    }
    assert_true(nm > 200);
    assert_int_equal(lb_vocab_set_bpe(w, merges, nm, pre, NULL, 0, false, &err), LB_OK);
    free(merges);
    lb_vocab_set_special(w, 511, 511, -1);
    assert_int_equal(lb_vocab_set_chat_template(w, "{{ messages }}"), LB_OK);
    assert_int_equal(lb_vocab_build(w, &err), LB_OK);
    lb_model *m = load_bin();
    lb_vocab_free(m->vocab);
    m->vocab = w;
    tmp_path("bpe.gguf", g, sizeof g);
    tmp_path("bpe-hf", hf, sizeof hf);
    rm_dir(hf);
    assert_int_equal(lb_model_save_gguf(m, g, LB_TYPE_F32, &err), LB_OK);
    assert_int_equal(lb_model_save_hf(m, hf, LB_TYPE_F32, &err), LB_OK);
    lb_model *a = load(g), *b = load(hf);
    const char *text = "Hello world! It's 2024 -- the cat sat on the mat.";
    for (int k = 0; k < 2; k++) {
        const lb_vocab *x = k ? b->vocab : a->vocab;
        assert_int_equal(lb_vocab_kind_of(x), LB_VOCAB_BPE);
        assert_string_equal(lb_vocab_pre(x), pre);
        assert_int_equal(lb_vocab_n_merges(x), nm);
        assert_string_equal(lb_vocab_chat_template(x), "{{ messages }}");
        assert_same_vocab(x, w);
        int32_t *i1, *i2;
        size_t   n1, n2;
        assert_int_equal(lb_tokenize(w, text, strlen(text), false, false, &i1, &n1, &err), LB_OK);
        assert_int_equal(lb_tokenize(x, text, strlen(text), false, false, &i2, &n2, &err), LB_OK);
        assert_int_equal(n1, n2);
        assert_memory_equal(i1, i2, n1 * sizeof *i1);
        assert_true(n1 < strlen(text)); /* merges happened */
        int32_t *d;
        size_t   nd;
        assert_int_equal(lb_tokenize(x, "2024", 4, false, false, &d, &nd, &err), LB_OK);
        if (!strcmp(pre, "smollm")) assert_int_equal(nd, 4); /* digit by digit */
        free(i1), free(i2), free(d);
    }
    lb_gguf          *gg;
    lb_gguf_str       model;
    assert_int_equal(lb_gguf_open(&gg, g, &err), LB_OK);
    assert_int_equal(lb_gguf_get_str(gg, "tokenizer.ggml.model", &model, &err), LB_OK);
    assert_int_equal(model.n, 4);
    assert_memory_equal(model.p, "gpt2", 4);
    assert_int_equal(lb_gguf_find_key(gg, "tokenizer.ggml.unknown_token_id"), -1);
    lb_gguf_close(gg);
    lb_model_free(a);
    lb_model_free(b);
    lb_model_free(m);
    lb_vocab_free(gpt2);
    remove(g);
    rm_dir(hf);
}

static void test_byte_level_model(void **state) {
    (void)state;
    byte_level_model("gpt-2");
    byte_level_model("smollm");
}

/* ---- Qwen2: attention biases (permuted with Q and K), through GGUF and back ---- */
static void write_qwen2(const char *dir, float bias_scale) {
    char            f[700], from[700], *text;
    size_t          len;
    lb_error        err = { 0 };
    lb_safetensors *st;
    rm_dir(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    const char *copy[] = { "tokenizer.json", "tokenizer_config.json", "config.json" };
    for (int i = 0; i < 3; i++) {
        snprintf(from, sizeof from, "%s/%s", g_dir, copy[i]);
        snprintf(f, sizeof f, "%s/%s", dir, copy[i]);
        assert_int_equal(lb_read_file(from, &text, &len, &err), LB_OK);
        char *at;
        if (i == 2) {
            while ((at = strstr(text, "LlamaForCausalLM"))) memcpy(at, "Qwen2ForCausalLM", 16);
            if ((at = strstr(text, "\"llama\""))) memcpy(at, "\"qwen2\"", 7);
        }
        FILE *fp = fopen(f, "wb");
        fwrite(text, 1, len, fp);
        fclose(fp);
        free(text);
    }
    snprintf(from, sizeof from, "%s/model.safetensors", g_dir);
    assert_int_equal(lb_safetensors_open(&st, from, &err), LB_OK);
    lb_st_write_tensor ts[64];
    char               names[15][64];
    float              bias[15][64];
    size_t             n = 0;
    for (int64_t i = 0; i < st->n_tensors; i++, n++) {
        const lb_st_tensor *t = &st->tensors[i];
        ts[n] = (lb_st_write_tensor){ t->name, t->dtype, t->n_dims, { t->shape[0], t->shape[1] }, t->data,
                                      (size_t)(t->end - t->begin) };
    }
    for (int l = 0; l < 5; l++)
        for (int k = 0; k < 3; k++) {
            const int b = 3 * l + k, rows = k == 0 ? 64 : 32;
            snprintf(names[b], sizeof names[b], "model.layers.%d.self_attn.%c_proj.bias", l, "qkv"[k]);
            for (int r = 0; r < rows; r++) bias[b][r] = bias_scale * (float)((r * 7 + b * 3) % 11 - 5);
            ts[n++] = (lb_st_write_tensor){ names[b], LB_ST_F32, 1, { rows }, bias[b], (size_t)rows * 4 };
        }
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    assert_int_equal(lb_safetensors_write(f, ts, n, &err), LB_OK);
    lb_safetensors_close(st);
}

static void test_qwen2_biases(void **state) {
    (void)state;
    char dir[512], g[512], hf[512];
    tmp_path("qwen2", dir, sizeof dir);
    tmp_path("qwen2.gguf", g, sizeof g);
    tmp_path("qwen2-out", hf, sizeof hf);
    lb_model     *bin = load_bin();
    const int32_t toks[] = { 1, 403, 407, 261, 378, 281, 354, 297 };
    float        *ref  = logits_of(bin, toks, 8);
    /* zero biases: exactly the Llama logits */
    write_qwen2(dir, 0.0f);
    lb_model *q = load(dir);
    assert_non_null(q->layers[0].bq.data);
    float *lq = logits_of(q, toks, 8);
    assert_memory_equal(lq, ref, 8 * 512 * sizeof *lq);
    free(lq);
    lb_model_free(q);
    /* real biases: Q/K biases permuted as the rows are, V's as they are; they change logits */
    write_qwen2(dir, 0.05f);
    q = load(dir);
    for (int l = 0; l < 5; l++) {
        const float *bq = q->layers[l].bq.data, *bv = q->layers[l].bv.data;
        for (int h = 0; h < 8; h++)
            for (int s = 0; s < 2; s++)
                for (int j = 0; j < 4; j++) {
                    const int r = h * 8 + s * 4 + j, b = 3 * l;
                    assert_true(bq[h * 8 + 2 * j + s] == 0.05f * (float)((r * 7 + b * 3) % 11 - 5));
                }
        for (int r = 0; r < 32; r++) assert_true(bv[r] == 0.05f * (float)((r * 7 + (3 * l + 2) * 3) % 11 - 5));
    }
    lq = logits_of(q, toks, 8);
    assert_memory_not_equal(lq, ref, 8 * 512 * sizeof *lq);
    /* GGUF keeps them (blk.N.attn_q.bias), and so does HF again (Qwen2ForCausalLM) */
    lb_error err = { 0 };
    rm_dir(hf);
    assert_int_equal(lb_model_save_gguf(q, g, LB_TYPE_F32, &err), LB_OK);
    lb_model *qg = load(g);
    float    *lg = logits_of(qg, toks, 8);
    assert_memory_equal(lg, lq, 8 * 512 * sizeof *lg);
    assert_int_equal(lb_model_save_hf(qg, hf, LB_TYPE_F32, &err), LB_OK);
    lb_model *qh = load(hf);
    float    *lh = logits_of(qh, toks, 8);
    assert_memory_equal(lh, lq, 8 * 512 * sizeof *lh);
    free(lq), free(lg), free(lh), free(ref);
    lb_model_free(q);
    lb_model_free(qg);
    lb_model_free(qh);
    lb_model_free(bin);
    rm_dir(dir);
    rm_dir(hf);
    remove(g);
}

/* ---- Llama 3.1's rope_scaling "llama3": llama.cpp's rope_freqs, through GGUF and back ---- */
static void copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char     a[700], b[700], *text;
    size_t   len;
    lb_error err = { 0 };
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    assert_int_equal(lb_read_file(a, &text, &len, &err), LB_OK);
    FILE *f = fopen(b, "wb");
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    free(text);
}

static void test_rope_scaling_llama3(void **state) {
    (void)state;
    char     dir[512], f[700], g[512], hf[512], *text;
    size_t   len;
    lb_error err = { 0 };
    tmp_path("llama3", dir, sizeof dir);
    tmp_path("llama3.gguf", g, sizeof g);
    tmp_path("llama3-out", hf, sizeof hf);
    rm_dir(dir), rm_dir(hf);
    mkdir(dir, 0755);
    copy_file(g_dir, dir, "model.safetensors");
    copy_file(g_dir, dir, "tokenizer.json");
    snprintf(f, sizeof f, "%s/config.json", g_dir);
    assert_int_equal(lb_read_file(f, &text, &len, &err), LB_OK);
    cJSON *j = cJSON_Parse(text), *rs = cJSON_CreateObject();
    free(text);
    cJSON_AddStringToObject(rs, "rope_type", "llama3");
    cJSON_AddNumberToObject(rs, "factor", 8.0);
    cJSON_AddNumberToObject(rs, "low_freq_factor", 1.0);
    cJSON_AddNumberToObject(rs, "high_freq_factor", 4.0);
    cJSON_AddNumberToObject(rs, "original_max_position_embeddings", 2048);
    cJSON_AddItemToObject(j, "rope_scaling", rs);
    assert_int_equal(fx_write_json(dir, "config.json", j), 0);
    lb_model *m = load(dir), *bin = load_bin();
    const float *ff = m->rope_freqs.data;
    assert_non_null(ff);
    /* D = 8, theta 1e4: wavelengths 2pi * {1, 10, 100, 1000}; 628 lies between 512 and 2048 */
    const double smooth = (2048.0 / (2 * 3.14159265358979 * 100) - 1.0) / 3.0;
    assert_true(ff[0] == 1.0f && ff[1] == 1.0f && ff[3] == 8.0f);
    assert_true(fabs(ff[2] - 1.0 / ((1 - smooth) / 8 + smooth)) < 1e-5);
    const int32_t toks[] = { 1, 403, 407, 261, 378, 281, 354, 297 };
    float        *lm = logits_of(m, toks, 8), *lb = logits_of(bin, toks, 8);
    assert_memory_equal(lm, lb, 512 * sizeof *lm); /* position 0: no rotation */
    assert_memory_not_equal(lm, lb, 8 * 512 * sizeof *lm);
    assert_int_equal(lb_model_save_gguf(m, g, LB_TYPE_F32, &err), LB_OK);
    lb_model *mg = load(g);
    float    *lg = logits_of(mg, toks, 8);
    assert_memory_equal(lg, lm, 8 * 512 * sizeof *lg);
    assert_int_equal(lb_model_save_hf(mg, hf, LB_TYPE_F32, &err), LB_OK);
    lb_model *mh = load(hf);
    assert_memory_equal(mh->rope_freqs.data, ff, 4 * sizeof *ff);
    free(lm), free(lb), free(lg);
    lb_model_free(m), lb_model_free(bin), lb_model_free(mg), lb_model_free(mh);
    rm_dir(dir), rm_dir(hf);
    remove(g);
}

/* config.json values out of range, and GGUF hyperparameters that are not finite: one-line
 * errors naming the key, never a model with an infinite rope base. */
static void expect_config_bad(const char *key, double v, const char *want) {
    char     dir[512], f[700], *text;
    size_t   len;
    lb_error err = { 0 };
    tmp_path("badcfg", dir, sizeof dir);
    rm_dir(dir);
    mkdir(dir, 0755);
    copy_file(g_dir, dir, "model.safetensors");
    copy_file(g_dir, dir, "tokenizer.json");
    snprintf(f, sizeof f, "%s/config.json", g_dir);
    assert_int_equal(lb_read_file(f, &text, &len, &err), LB_OK);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON_DeleteItemFromObject(j, key);
    cJSON_AddNumberToObject(j, key, v);
    assert_int_equal(fx_write_json(dir, "config.json", j), 0);
    lb_model *m;
    assert_int_not_equal(lb_model_load(&m, dir, NULL, &err), LB_OK);
    printf("# %s = %g -> %s\n", key, v, err.msg);
    assert_non_null(strstr(err.msg, key));
    assert_non_null(strstr(err.msg, want));
    rm_dir(dir);
}

static void test_config_ranges(void **state) {
    (void)state;
    expect_config_bad("rope_theta", 1e300, "outside");
    expect_config_bad("rope_theta", -5, "outside");
    expect_config_bad("rms_norm_eps", 0, "outside");
    expect_config_bad("rms_norm_eps", 2, "outside");
    expect_config_bad("max_position_embeddings", -1, "positive integer");
    /* GGUF: an infinite rope base written by hand is refused when read */
    char      g[512];
    lb_error  err = { 0 };
    lb_model *m   = load(g_dir), *back;
    tmp_path("badcfg.gguf", g, sizeof g);
    m->cfg.rope_theta = INFINITY;
    assert_int_equal(lb_model_save_gguf(m, g, LB_TYPE_F32, &err), LB_OK);
    assert_int_not_equal(lb_model_load(&back, g, NULL, &err), LB_OK);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "llama.rope.freq_base"));
    lb_model_free(m);
    remove(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safetensors_roundtrip), cmocka_unit_test(test_safetensors_bad),
        cmocka_unit_test(test_fixture_equals_bin),    cmocka_unit_test(test_metaspace_tokenizer),
        cmocka_unit_test(test_fixture_bf16_shards),
        cmocka_unit_test(test_gguf_hf_roundtrips),    cmocka_unit_test(test_byte_bpe_gpt2_json),
        cmocka_unit_test(test_byte_bpe_deepseek_json), cmocka_unit_test(test_byte_level_model),
        cmocka_unit_test(test_qwen2_biases),          cmocka_unit_test(test_rope_scaling_llama3),
        cmocka_unit_test(test_config_ranges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
