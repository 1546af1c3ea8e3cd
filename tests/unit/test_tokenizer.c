/* Tokenizer: llama.cpp's test vectors (every case) for the llama-spm and phi-3 vocabularies
 * (SentencePiece BPE) and gpt-2 and deepseek-llm (byte-level BPE); the llama2.c tokenizer
 * against its SentencePiece .model; decoding; bad tokenizer files. */
#include "test_util.h"

/* Run every case of VOCAB.gguf.inp / .out (llama.cpp's test-tokenizer-0 layout:
 * inputs separated by "\n__ggml_vocab_test__\n", one line of ids per input). */
static void run_vectors(const char *rel) {
    char path[512], inp[600], out[600];
    if (!shared_path(rel, path, sizeof path)) {
        skip();
        return;
    }
    snprintf(inp, sizeof inp, "%s.inp", path);
    snprintf(out, sizeof out, "%s.out", path);
    lb_vocab *v;
    lb_error  err = { 0 };
    assert_int_equal(lb_vocab_load_any(&v, path, &err), LB_OK);
    char  *itext, *otext;
    size_t ilen, olen;
    assert_int_equal(lb_read_file(inp, &itext, &ilen, &err), LB_OK);
    assert_int_equal(lb_read_file(out, &otext, &olen, &err), LB_OK);
    const char  *sep  = "\n__ggml_vocab_test__\n";
    const size_t slen = strlen(sep);
    size_t       ipos = 0;
    char        *oline = otext, *save = NULL;
    int          cases = 0, failures = 0;
    while (ipos < ilen) {
        const char  *next = strstr(itext + ipos, sep);
        const size_t n    = next ? (size_t)(next - (itext + ipos)) : ilen - ipos;
        /* the expected ids: one line (may be empty) */
        char *nl = strchr(oline, '\n');
        assert_non_null(nl);
        *nl = '\0';
        int32_t expect[512];
        int     ne = 0;
        for (char *tok = strtok_r(oline, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
            expect[ne++] = atoi(tok);
        oline = nl + 1;
        int32_t *ids;
        size_t   nids;
        assert_int_equal(lb_tokenize(v, itext + ipos, n, false, false, &ids, &nids, &err), LB_OK);
        bool same = nids == (size_t)ne;
        for (int i = 0; same && i < ne; i++) same = ids[i] == expect[i];
        if (!same) {
            failures++;
            printf("# %s case %d: '%.*s'\n#   expected:", rel, cases, (int)n, itext + ipos);
            for (int i = 0; i < ne; i++) printf(" %d", expect[i]);
            printf("\n#   got:     ");
            for (size_t i = 0; i < nids; i++) printf(" %d", ids[i]);
            printf("\n");
        }
        free(ids);
        cases++;
        if (!next) break;
        ipos = (size_t)(next - itext) + slen;
    }
    printf("# %s: %d cases, %d failures\n", rel, cases, failures);
    assert_true(cases >= 40);
    assert_int_equal(failures, 0);
    free(itext);
    free(otext);
    lb_vocab_free(v);
}

static void test_vectors_llama_spm(void **state) {
    (void)state;
    run_vectors("gguf/ggml-vocab-llama-spm.gguf");
}

static void test_vectors_phi3(void **state) {
    (void)state;
    run_vectors("gguf/ggml-vocab-phi-3.gguf");
}

/* byte-level BPE (tokenizer.ggml.model "gpt2"): merges by rank, PCRE2 pre-tokenizers */
static void test_vectors_gpt2(void **state) {
    (void)state;
    run_vectors("gguf/ggml-vocab-gpt-2.gguf");
}

static void test_vectors_deepseek_llm(void **state) {
    (void)state;
    run_vectors("gguf/ggml-vocab-deepseek-llm.gguf");
}

static lb_vocab *load_tok512(void) {
    char      path[512];
    lb_vocab *v;
    lb_error  err = { 0 };
    assert_int_equal(lb_vocab_load_file(&v, repo_path("models/stories260K/tok512.bin", path, sizeof path), &err), LB_OK);
    return v;
}

static void test_llama2c_tokenizer(void **state) {
    (void)state;
    lb_vocab *v = load_tok512();
    assert_int_equal(lb_vocab_n_tokens(v), 512);
    assert_int_equal(lb_vocab_type(v, 1), LB_TOKEN_CONTROL);
    assert_int_equal(lb_vocab_type(v, 3), LB_TOKEN_BYTE);
    int32_t *ids;
    size_t   n;
    lb_error err = { 0 };
    const char *text = "Once upon a time, there was a little girl named Lily.\nShe said: \"\xe2\x98\x83!\"";
    assert_int_equal(lb_tokenize(v, text, strlen(text), true, false, &ids, &n, &err), LB_OK);
    assert_int_equal(ids[0], 1);
    /* decode back: the text, exactly (the leading space after BOS is dropped) */
    char   buf[512] = { 0 };
    size_t k        = 0;
    for (size_t i = 1; i < n; i++) k += lb_token_to_piece(v, ids[i - 1], ids[i], buf + k, sizeof buf - k);
    assert_int_equal(k, strlen(text));
    assert_memory_equal(buf, text, k);
    /* a snowman is no piece: it must come out as its byte tokens <0xE2> <0x98> <0x83> */
    bool saw_bytes = false;
    for (size_t i = 0; i + 1 < n; i++)
        if (ids[i] == 3 + 0xE2 && ids[i + 1] == 3 + 0x98) saw_bytes = true;
    assert_true(saw_bytes);
    free(ids);
    /* empty text: just BOS, or nothing */
    assert_int_equal(lb_tokenize(v, "", 0, true, false, &ids, &n, &err), LB_OK);
    assert_int_equal(n, 1);
    free(ids);
    assert_int_equal(lb_tokenize(v, "", 0, false, false, &ids, &n, &err), LB_OK);
    assert_int_equal(n, 0);
    free(ids);
    lb_vocab_free(v);
}

/* The SentencePiece .model that tok512.bin was exported from holds the same pieces. */
static void test_spm_model_matches_llama2c(void **state) {
    (void)state;
    char path[512];
    SKIP_UNLESS(shared_path("models/stories260K/tok512.model", path, sizeof path));
    lb_vocab *a = load_tok512(), *b;
    lb_error  err = { 0 };
    assert_int_equal(lb_vocab_load_file(&b, path, &err), LB_OK);
    assert_int_equal(lb_vocab_n_tokens(a), lb_vocab_n_tokens(b));
    for (int32_t i = 3; i < lb_vocab_n_tokens(a); i++) {
        size_t      la, lb;
        const char *ta = lb_vocab_text(a, i, &la), *tb = lb_vocab_text(b, i, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(ta, tb, la);
        assert_true(lb_vocab_score(a, i) == lb_vocab_score(b, i));
        assert_int_equal(lb_vocab_type(a, i), lb_vocab_type(b, i));
    }
    const char *text = "The cat sat on the mat. It was happy!";
    int32_t    *ia, *ib;
    size_t      na, nb;
    assert_int_equal(lb_tokenize(a, text, strlen(text), true, false, &ia, &na, &err), LB_OK);
    assert_int_equal(lb_tokenize(b, text, strlen(text), true, false, &ib, &nb, &err), LB_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof *ia);
    free(ia);
    free(ib);
    lb_vocab_free(a);
    lb_vocab_free(b);
}

/* BabyLlama's tokenizer exists only as a .model: 105 single-character pieces, no bytes. */
static void test_spm_model_tok105(void **state) {
    (void)state;
    char path[512];
    SKIP_UNLESS(shared_path("models/babyllama-tok105/tok105.model", path, sizeof path));
    lb_vocab *v;
    lb_error  err = { 0 };
    assert_int_equal(lb_vocab_load_file(&v, path, &err), LB_OK);
    assert_int_equal(lb_vocab_n_tokens(v), 105);
    int32_t *ids;
    size_t   n;
    const char *text = "Lily ran \xe2\x98\x83.";  /* a snowman: unknown, no byte fallback */
    assert_int_equal(lb_tokenize(v, text, strlen(text), true, false, &ids, &n, &err), LB_OK);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] >= 0 && ids[i] < 105);
    bool has_unk = false;
    for (size_t i = 0; i < n; i++) has_unk |= ids[i] == lb_vocab_unk(v);
    assert_true(has_unk);
    free(ids);
    lb_vocab_free(v);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void test_bad_tokenizer_files(void **state) {
    (void)state;
    char     src[512], path[256];
    lb_error err = { 0 };
    lb_vocab *v;
    char     *data;
    size_t    size;
    assert_int_equal(lb_read_file(repo_path("models/stories260K/tok512.bin", src, sizeof src), &data, &size, &err), LB_OK);
    tmp_path("tok.bin", path, sizeof path);
    /* every truncation fails cleanly, or (cut at a token boundary: the format has no
     * count) gives fewer tokens, which the model's vocabulary size then rejects */
    for (size_t cut = 0; cut < size; cut += (cut < 64 ? 1 : 97)) {
        write_bytes(path, data, cut);
        err.msg[0] = '\0';
        if (lb_vocab_load_file(&v, path, &err) == LB_OK) {
            assert_true(lb_vocab_n_tokens(v) < 512);
            lb_vocab_free(v);
        } else {
            assert_true(strlen(err.msg) > 0);
        }
    }
    /* a token length larger than the file */
    int32_t huge = 0x7fffffff;
    memcpy(data + 8, &huge, 4);
    write_bytes(path, data, size);
    assert_int_not_equal(lb_vocab_load_file(&v, path, &err), LB_OK);
    /* random garbage */
    for (size_t i = 0; i < size; i++) data[i] = (char)(i * 7919 % 251);
    write_bytes(path, data, 300);
    assert_int_not_equal(lb_vocab_load_file(&v, path, &err), LB_OK);
    remove(path);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_llama_spm),      cmocka_unit_test(test_vectors_phi3),
        cmocka_unit_test(test_vectors_gpt2),           cmocka_unit_test(test_vectors_deepseek_llm),
        cmocka_unit_test(test_llama2c_tokenizer),      cmocka_unit_test(test_spm_model_matches_llama2c),
        cmocka_unit_test(test_spm_model_tok105),       cmocka_unit_test(test_bad_tokenizer_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
