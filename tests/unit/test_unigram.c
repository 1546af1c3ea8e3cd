/* SentencePiece Unigram against spm_encode: two models trained with spm_train
 * (tests/golden/unigram/README.md has the commands). ugm1k: 1000 pieces, the default nmt_nfkc
 * normalizer (precompiled charsmap), unknown characters as <unk>; ugmbf: 600 pieces, identity
 * normalizer, byte fallback, user-defined "<sep>" and "Mr.". spm_encode encodes line by line;
 * so do these tests, and compare its output text (or its FNV-1a 64 digest) with lowbit's. */
#include "test_util.h"

#define DIR "tests/golden/unigram/"

static lb_vocab *load(const char *rel) {
    char      path[512];
    lb_vocab *v;
    lb_error  err = { 0 };
    if (lb_vocab_load_file(&v, repo_path(rel, path, sizeof path), &err) != LB_OK) {
        printf("# %s\n", err.msg);
        fail();
    }
    assert_int_equal(lb_vocab_kind_of(v), LB_VOCAB_UGM);
    return v;
}

typedef struct {
    char  *p;
    size_t n, cap, n_ids, n_lines;
} text;

static void put(text *t, const char *s, size_t n) {
    while (t->cap - t->n < n + 1) {
        t->cap = t->cap ? 2 * t->cap : 4096;
        t->p   = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0';
}

/* spm_encode --output_format=id's output for the lines of s. */
static text encode_lines(const lb_vocab *v, const char *s, size_t n) {
    text   t   = { 0 };
    size_t pos = 0;
    put(&t, "", 0);
    while (pos < n) {
        const char  *nl  = memchr(s + pos, '\n', n - pos);
        const size_t len = nl ? (size_t)(nl - (s + pos)) : n - pos;
        int32_t     *ids;
        size_t       nids;
        lb_error     err = { 0 };
        assert_int_equal(lb_tokenize(v, s + pos, len, false, false, &ids, &nids, &err), LB_OK);
        for (size_t i = 0; i < nids; i++) {
            char num[16];
            put(&t, num, (size_t)snprintf(num, sizeof num, i ? " %d" : "%d", ids[i]));
        }
        put(&t, "\n", 1);
        t.n_ids += nids;
        t.n_lines++;
        free(ids);
        pos += len + 1;
    }
    return t;
}

/* The first line where got and want differ, printed. */
static void show_diff(const char *what, const char *got, const char *want) {
    for (int line = 1;; line++) {
        const char *g = strchr(got, '\n'), *w = strchr(want, '\n');
        if (!g || !w) break;
        if (g - got != w - want || memcmp(got, want, (size_t)(g - got)) != 0) {
            printf("# %s line %d\n#   spm_encode: %.*s\n#   lowbit:     %.*s\n", what, line,
                   (int)(w - want), want, (int)(g - got), got);
            return;
        }
        got = g + 1, want = w + 1;
    }
}

/* lowbit's ids for the lines of text_rel equal the spm_encode output in ids_rel. */
static void check_ids(const lb_vocab *v, const char *text_rel, const char *ids_rel) {
    char     path[512];
    char    *s, *want;
    size_t   n, nw;
    lb_error err = { 0 };
    assert_int_equal(lb_read_file(repo_path(text_rel, path, sizeof path), &s, &n, &err), LB_OK);
    assert_int_equal(lb_read_file(repo_path(ids_rel, path, sizeof path), &want, &nw, &err), LB_OK);
    text got = encode_lines(v, s, n);
    printf("# %s: %zu lines, %zu ids\n", text_rel, got.n_lines, got.n_ids);
    if (got.n != nw || memcmp(got.p, want, nw) != 0) {
        show_diff(text_rel, got.p, want);
        fail();
    }
    free(got.p);
    free(s);
    free(want);
}

/* Every book of a digest file ("FILE LINES IDS FNV1A64" per line): FILE under ../shared/data,
 * or in the repository when it starts with "data/". */
static void check_digests(const lb_vocab *v, const char *digest_rel) {
    char     path[512], line[600], file[400], hex[32];
    size_t   want_lines, want_ids, books = 0, ids = 0, bad = 0;
    lb_error err = { 0 };
    FILE    *f   = fopen(repo_path(digest_rel, path, sizeof path), "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%399s %zu %zu %31s", file, &want_lines, &want_ids, hex) != 4) continue;
        const char *p = strncmp(file, "data/", 5) == 0 ? repo_path(file, path, sizeof path)
                                                       : shared_path(file, path, sizeof path);
        if (!p) {
            fclose(f);
            skip();
            return;
        }
        char  *s;
        size_t n;
        assert_int_equal(lb_read_file(p, &s, &n, &err), LB_OK);
        text          got = encode_lines(v, s, n);
        const uint64_t h   = fnv1a(got.p, got.n);
        char           got_hex[32];
        snprintf(got_hex, sizeof got_hex, "%016llx", (unsigned long long)h);
        const bool same = got.n_lines == want_lines && got.n_ids == want_ids && strcmp(got_hex, hex) == 0;
        printf("# %s: %zu lines, %zu ids (spm_encode %zu), %s\n", file, got.n_lines, got.n_ids,
               want_ids, same ? "same ids" : "DIFFERENT");
        books++;
        ids += got.n_ids;
        bad += !same;
        free(got.p);
        free(s);
    }
    fclose(f);
    printf("# %s: %zu texts, %zu ids, %zu differ\n", digest_rel, books, ids, bad);
    assert_true(books > 0);
    assert_int_equal(bad, 0);
}

static void test_ugm1k_bundled(void **state) {
    (void)state;
    lb_vocab *v = load(DIR "ugm1k.model");
    check_ids(v, DIR "special.txt", DIR "special.ugm1k.ids");
    check_ids(v, "data/tinystories-valid-70.txt", DIR "tinystories-valid-70.ugm1k.ids");
    lb_vocab_free(v);
}

static void test_ugmbf_bundled(void **state) {
    (void)state;
    lb_vocab *v = load(DIR "ugmbf.model");
    check_ids(v, DIR "special.txt", DIR "special.ugmbf.ids");
    lb_vocab_free(v);
}

static void test_ugm1k_valid_books(void **state) {
    (void)state;
    lb_vocab *v = load(DIR "ugm1k.model");
    check_digests(v, DIR "valid-books.ugm1k.digest");
    lb_vocab_free(v);
}

static void test_ugmbf_valid_books(void **state) {
    (void)state;
    lb_vocab *v = load(DIR "ugmbf.model");
    check_digests(v, DIR "valid-books.ugmbf.digest");
    lb_vocab_free(v);
}

/* seed.model: 80 pieces, a charsmap compiled from seed-rules.tsv (U+FB01 -> "fi",
 * U+2460 -> "1", U+3000 -> " "); its ids are spm_encode's. */
static void test_small_charsmap(void **state) {
    (void)state;
    lb_vocab     *v    = load(DIR "seed.model");
    const char    s[]  = "\xef\xac\x81ne \xe2\x91\xa0\xe3\x80\x80x  y";
    const int32_t want[] = { 28, 9, 21, 4, 3, 0, 3, 0, 3, 17 };
    int32_t      *ids;
    size_t        n;
    lb_error      err = { 0 };
    assert_int_equal(lb_tokenize(v, s, sizeof s - 1, false, false, &ids, &n, &err), LB_OK);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    free(ids);
    lb_vocab_free(v);
}

/* A Unigram ModelProto: pieces <unk> (unknown) and "a", "\xe2\x96\x81a" (normal), then extra
 * bytes (a TrainerSpec or NormalizerSpec). */
static lb_status load_proto(const char *extra, size_t n_extra, lb_vocab **v, lb_error *err) {
    static const char pieces[] = "\x0a\x09\x0a\x05<unk>\x18\x02"
                                 "\x0a\x0a\x0a\x01" "a\x15\x00\x00\x80\xbf\x18\x01"
                                 "\x0a\x0b\x0a\x04\xe2\x96\x81" "a\x15\x00\x00\x00\xc0";
    char buf[256];
    memcpy(buf, pieces, sizeof pieces - 1);
    memcpy(buf + sizeof pieces - 1, extra, n_extra);
    return lb_vocab_load_spm_proto(v, buf, sizeof pieces - 1 + n_extra, "test.model", err);
}

static void test_bad_models(void **state) {
    (void)state;
    lb_vocab *v;
    lb_error  err = { 0 };
    int32_t  *ids;
    size_t    n;
    /* WORD and CHAR models, whitespace as suffix: refused */
    assert_int_equal(load_proto("\x12\x02\x18\x03", 4, &v, &err), LB_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "WORD"));
    assert_int_equal(load_proto("\x12\x02\x18\x04", 4, &v, &err), LB_ERR_UNSUPPORTED);
    assert_int_equal(load_proto("\x12\x03\xc0\x01\x01", 5, &v, &err), LB_ERR_UNSUPPORTED);
    assert_int_equal(load_proto("\x1a\x02\x28\x00", 4, &v, &err), LB_ERR_UNSUPPORTED);
    /* charsmaps too short, or whose trie does not fit */
    assert_int_equal(load_proto("\x1a\x05\x12\x03xyz", 7, &v, &err), LB_ERR_CORRUPT);
    assert_int_equal(load_proto("\x1a\x0a\x12\x08\x00\x01\x00\x00" "abcd", 12, &v, &err), LB_ERR_CORRUPT);
    /* a trie of nonsense units loads and tokenizes without reading out of bounds */
    assert_int_equal(load_proto("\x1a\x0e\x12\x0c\x04\x00\x00\x00\xff\xff\xff\xff" "ab\x00" "c", 16, &v, &err), LB_OK);
    assert_int_equal(lb_tokenize(v, "aa a\xff", 5, false, false, &ids, &n, &err), LB_OK);
    free(ids);
    lb_vocab_free(v);
    /* the default model type is Unigram: "a  a" is "\xe2\x96\x81a" twice, two bad bytes one <unk> */
    assert_int_equal(load_proto("", 0, &v, &err), LB_OK);
    assert_int_equal(lb_vocab_kind_of(v), LB_VOCAB_UGM);
    assert_int_equal(lb_tokenize(v, "a  a\xff\xfe", 6, false, false, &ids, &n, &err), LB_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 0);
    free(ids);
    lb_vocab_free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ugm1k_bundled),
        cmocka_unit_test(test_ugmbf_bundled),
        cmocka_unit_test(test_ugm1k_valid_books),
        cmocka_unit_test(test_ugmbf_valid_books),
        cmocka_unit_test(test_small_charsmap),
        cmocka_unit_test(test_bad_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
