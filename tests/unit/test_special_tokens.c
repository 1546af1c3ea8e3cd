/* Vocabularies without some special tokens (Qwen2/2.5/3 have no BOS): the GGUF writer omits
 * an absent token's key; the reader takes a missing key as absent and drops an id past the
 * vocabulary (llama.cpp's converters write -1 as 4294967295) with a warning, refusing it only
 * for a BOS the vocabulary adds; perplexity and calibration windows put a BOS first only when
 * the vocabulary adds one, and otherwise score the text's own tokens as llama-perplexity does. */
#include "test_util.h"

static lb_model *load_stories(void) {
    char      p[512];
    lb_model *m;
    lb_error  err = { 0 };
    assert_int_equal(lb_model_load(&m, repo_path("models/stories260K/stories260K.bin", p, sizeof p), NULL, &err), LB_OK);
    return m;
}

/* Copy GGUF src to path with the special keys changed: val[k] < 0 drops key k, val[k] >= 0
 * sets it (u32); add_bos < 0 keeps tokenizer.ggml.add_bos_token as it is. */
static const char *const k_keys[4] = { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                       "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id" };

static void rewrite(const char *src, const char *path, const int64_t val[4], int add_bos) {
    lb_gguf  *g;
    lb_error  err = { 0 };
    assert_int_equal(lb_gguf_open(&g, src, &err), LB_OK);
    lb_gguf_writer *w = lb_gguf_writer_create();
    for (int64_t i = 0; i < g->n_kv; i++) {
        bool special = false;
        for (int k = 0; k < 4; k++) special = special || strcmp(g->kv[i].key, k_keys[k]) == 0;
        if (special || (add_bos >= 0 && strcmp(g->kv[i].key, "tokenizer.ggml.add_bos_token") == 0)) continue;
        assert_int_equal(lb_gguf_writer_copy_kv(w, &g->kv[i]), LB_OK);
    }
    for (int k = 0; k < 4; k++)
        if (val[k] >= 0) assert_int_equal(lb_gguf_writer_set_u32(w, k_keys[k], (uint32_t)val[k]), LB_OK);
    if (add_bos >= 0) assert_int_equal(lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos != 0), LB_OK);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        assert_int_equal(lb_gguf_writer_add_tensor(w, t->name, t->ggml_type, t->n_dims, t->ne,
                                                   t->data, t->nbytes, &err), LB_OK);
    }
    assert_int_equal(lb_gguf_writer_write(w, path, &err), LB_OK);
    lb_gguf_writer_free(w);
    lb_gguf_close(g);
}

static void test_gguf_special_ids(void **state) {
    (void)state;
    char      base[256], path[256];
    lb_error  err = { 0 };
    lb_model *m   = load_stories();
    tmp_path("special-base.gguf", base, sizeof base);
    tmp_path("special.gguf", path, sizeof path);
    assert_int_equal(lb_model_save_gguf(m, base, LB_TYPE_F32, &err), LB_OK);
    lb_vocab *v;
    /* keys missing, no BOS added: all absent, no warning */
    rewrite(base, path, (const int64_t[4]){ -1, -1, -1, -1 }, 0);
    assert_int_equal(lb_vocab_load_any(&v, path, &err), LB_OK);
    assert_int_equal(lb_vocab_bos(v), -1);
    assert_int_equal(lb_vocab_eos(v), -1);
    assert_int_equal(lb_vocab_unk(v), -1);
    assert_int_equal(lb_vocab_pad(v), -1);
    assert_false(lb_vocab_add_bos(v));
    assert_null(lb_vocab_warning(v));
    lb_vocab_free(v);
    /* the BOS key missing, a BOS added: llama.cpp's default for SentencePiece */
    rewrite(base, path, (const int64_t[4]){ -1, 2, 0, -1 }, 1);
    assert_int_equal(lb_vocab_load_any(&v, path, &err), LB_OK);
    assert_int_equal(lb_vocab_bos(v), 1);
    assert_true(lb_vocab_add_bos(v));
    lb_vocab_free(v);
    /* -1 as u32 (llama.cpp's files) and ids past the vocabulary: absent, with one warning */
    rewrite(base, path, (const int64_t[4]){ 4294967295ll, 512, 0, 4294967295ll }, 0);
    assert_int_equal(lb_vocab_load_any(&v, path, &err), LB_OK);
    assert_int_equal(lb_vocab_bos(v), -1);
    assert_int_equal(lb_vocab_eos(v), -1);
    assert_int_equal(lb_vocab_unk(v), 0);
    assert_int_equal(lb_vocab_pad(v), -1);
    assert_non_null(lb_vocab_warning(v));
    assert_non_null(strstr(lb_vocab_warning(v), "bos_token_id 4294967295"));
    assert_non_null(strstr(lb_vocab_warning(v), "eos_token_id 512"));
    assert_non_null(strstr(lb_vocab_warning(v), "padding_token_id 4294967295"));
    assert_null(strchr(lb_vocab_warning(v), '\n'));
    lb_vocab_free(v);
    /* ... but a BOS the vocabulary adds must be a token */
    rewrite(base, path, (const int64_t[4]){ 4294967295ll, 2, 0, -1 }, 1);
    assert_int_equal(lb_vocab_load_any(&v, path, &err), LB_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "bos_token_id"));
    /* a model whose vocabulary has no BOS and a PAD: the writer omits the BOS key */
    lb_vocab_set_special(m->vocab, -1, 2, 0);
    lb_vocab_set_pad(m->vocab, 3);
    lb_vocab_set_flags(m->vocab, false, true);
    assert_int_equal(lb_model_save_gguf(m, path, LB_TYPE_F32, &err), LB_OK);
    lb_gguf *g;
    int64_t  pad = -1;
    assert_int_equal(lb_gguf_open(&g, path, &err), LB_OK);
    assert_int_equal(lb_gguf_find_key(g, "tokenizer.ggml.bos_token_id"), -1);
    assert_int_equal(lb_gguf_get_int(g, "tokenizer.ggml.padding_token_id", &pad, &err), LB_OK);
    assert_int_equal(pad, 3);
    lb_gguf_close(g);
    lb_model *back;
    assert_int_equal(lb_model_load(&back, path, NULL, &err), LB_OK);
    assert_int_equal(lb_vocab_bos(back->vocab), -1);
    assert_int_equal(lb_vocab_pad(back->vocab), 3);
    assert_false(lb_vocab_add_bos(back->vocab));
    int32_t *ids;
    size_t   n;
    assert_int_equal(lb_tokenize(back->vocab, "Once upon", 9, true, false, &ids, &n, &err), LB_OK);
    assert_true(n > 0 && ids[0] != 1); /* no BOS, even when asked for */
    free(ids);
    lb_model_free(back);
    lb_model_free(m);
    remove(base);
    remove(path);
}

/* Perplexity as llama-perplexity: chunks of n_ctx tokens, BOS in place of the first when the
 * vocabulary adds one, else the text's tokens; NLL over positions n_ctx/2 .. n_ctx-2. */
static double ppl_by_hand(lb_model *m, const int32_t *toks, int32_t n_ctx, int32_t chunks, int32_t bos) {
    lb_context  *c;
    lb_error     err = { 0 };
    const float *lg;
    const int32_t V = m->cfg.n_vocab;
    double        nll = 0;
    int64_t       count = 0;
    int32_t      *chunk = malloc((size_t)n_ctx * sizeof *chunk);
    assert_int_equal(lb_context_create(&c, m, n_ctx, n_ctx, &err), LB_OK);
    for (int32_t k = 0; k < chunks; k++) {
        memcpy(chunk, toks + (size_t)k * (size_t)n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (bos >= 0) chunk[0] = bos;
        lb_context_reset(c);
        assert_int_equal(lb_forward(c, chunk, n_ctx, &lg, &err), LB_OK);
        for (int32_t j = n_ctx / 2; j < n_ctx - 1; j++) {
            const float *row = lg + (size_t)j * (size_t)V;
            double       mx = row[0], s = 0;
            for (int32_t i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
            for (int32_t i = 0; i < V; i++) s += exp((double)row[i] - mx);
            nll -= (double)row[chunk[j + 1]] - mx - log(s);
            count++;
        }
    }
    lb_context_free(c);
    free(chunk);
    return exp(nll / (double)count);
}

static void test_perplexity_bos_or_not(void **state) {
    (void)state;
    char      p[512], *text;
    size_t    len, n;
    int32_t  *ids;
    lb_error  err = { 0 };
    lb_model *m   = load_stories();
    assert_int_equal(lb_read_file(repo_path("data/tinystories-valid-70.txt", p, sizeof p), &text, &len, &err), LB_OK);
    const int32_t n_ctx = 64, chunks = 3;
    for (int add = 0; add < 2; add++) {
        lb_vocab_set_flags(m->vocab, add != 0, true);
        assert_int_equal(lb_tokenize(m->vocab, text, len, lb_vocab_add_bos(m->vocab), false, &ids, &n, &err), LB_OK);
        assert_true(add ? ids[0] == 1 : ids[0] != 1);
        lb_context *c;
        assert_int_equal(lb_context_create(&c, m, n_ctx, n_ctx, &err), LB_OK);
        lb_ppl_params pp = { .n_ctx = n_ctx, .max_chunks = chunks };
        lb_ppl_result r;
        assert_int_equal(lb_eval_perplexity(c, m->vocab, ids, n, &pp, &r, &err), LB_OK);
        const double want = ppl_by_hand(m, ids, n_ctx, chunks, add ? 1 : -1);
        assert_true(fabs(r.ppl - want) <= 1e-6 * want);
        /* the other rule gives another figure: the test can tell them apart */
        assert_true(fabs(ppl_by_hand(m, ids, n_ctx, chunks, add ? -1 : 1) - want) > 1e-4 * want);
        lb_context_free(c);
        /* calibration windows: BOS first only when the vocabulary adds one */
        lb_calib_params cp = { .n_ctx = n_ctx, .sequential = true, .n_samples = 2 };
        int32_t        *win, nw;
        assert_int_equal(lb_calib_windows(m->vocab, text, len, &cp, &win, &nw, &err), LB_OK);
        assert_int_equal(nw, 2);
        assert_int_equal(win[0], ids[0]);
        assert_int_equal(win[n_ctx], add ? 1 : ids[n_ctx]);
        free(win);
        free(ids);
    }
    free(text);
    lb_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_special_ids),
        cmocka_unit_test(test_perplexity_bos_or_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
