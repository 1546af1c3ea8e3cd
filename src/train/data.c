/* Training data: text files tokenized once into one stream of ids, cached on disk.
 * Cache file, little-endian: "LBTK", u32 version 1, u64 key (what it was built from),
 * i32 n_vocab, i32 reserved 0, i64 count, then count i32 ids, each in [0, n_vocab). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fail.h"
#include "lowbit/train.h"

#define CACHE_HEADER 32

void lb_tokens_free(lb_tokens *t) {
    free(t->ids);
    t->ids = NULL;
    t->n   = 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* What a cache depends on: the vocabulary's pieces and the files' names and sizes. */
static uint64_t cache_key(const lb_vocab *v, const char *const *files, int32_t n_files) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (int32_t i = 0; i < lb_vocab_n_tokens(v); i++) {
        size_t      len;
        const char *s = lb_vocab_text(v, i, &len);
        h             = fnv(h, s, len + 1);
    }
    for (int32_t i = 0; i < n_files; i++) {
        struct stat st;
        const long long size = stat(files[i], &st) == 0 ? (long long)st.st_size : -1;
        h = fnv(h, files[i], strlen(files[i]) + 1);
        h = fnv(h, &size, sizeof size);
    }
    return h;
}

lb_status lb_tokens_read_cache(lb_tokens *out, const char *path, uint64_t key, int32_t n_vocab,
                               lb_error *err) {
    out->ids = NULL, out->n = 0;
    char  *buf;
    size_t size;
    lb_status st = lb_read_file(path, &buf, &size, err);
    if (st) return st;
    uint32_t version;
    uint64_t k;
    int32_t  nv;
    int64_t  count;
    if (size < CACHE_HEADER || memcmp(buf, "LBTK", 4)) {
        free(buf);
        return lb_fail(err, LB_ERR_CORRUPT, "%s: not a lowbit token cache", path);
    }
    memcpy(&version, buf + 4, 4);
    memcpy(&k, buf + 8, 8);
    memcpy(&nv, buf + 16, 4);
    memcpy(&count, buf + 24, 8);
    if (version != 1 || k != key || nv != n_vocab) {
        free(buf);
        return lb_fail(err, LB_ERR_NOT_FOUND, "%s: a token cache of other files or another "
                       "tokenizer", path);
    }
    if (count < 0 || (uint64_t)count != (size - CACHE_HEADER) / 4 || (size - CACHE_HEADER) % 4) {
        free(buf);
        return lb_fail(err, LB_ERR_CORRUPT, "%s: %zu bytes do not hold the %lld ids the header "
                       "says", path, size, (long long)count);
    }
    out->ids = malloc((size_t)count * sizeof *out->ids + 1);
    if (!out->ids) {
        free(buf);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    memcpy(out->ids, buf + CACHE_HEADER, (size_t)count * sizeof *out->ids);
    free(buf);
    for (int64_t i = 0; i < count; i++)
        if (out->ids[i] < 0 || out->ids[i] >= n_vocab) {
            const int32_t bad = out->ids[i];
            lb_tokens_free(out);
            return lb_fail(err, LB_ERR_CORRUPT, "%s: id %lld is %d, outside [0, %d)", path,
                           (long long)i, bad, n_vocab);
        }
    out->n = count;
    return LB_OK;
}

lb_status lb_tokens_write_cache(const lb_tokens *t, const char *path, uint64_t key, int32_t n_vocab,
                                lb_error *err) {
    lb_out          o;
    const lb_status st = lb_out_open(&o, path, err);
    if (st) return st;
    FILE *f = o.f;
    unsigned char h[CACHE_HEADER] = { 'L', 'B', 'T', 'K' };
    const uint32_t version = 1;
    memcpy(h + 4, &version, 4);
    memcpy(h + 8, &key, 8);
    memcpy(h + 16, &n_vocab, 4);
    memcpy(h + 24, &t->n, 8);
    const bool ok = fwrite(h, 1, sizeof h, f) == sizeof h &&
                    fwrite(t->ids, sizeof *t->ids, (size_t)t->n, f) == (size_t)t->n;
    if (!ok) {
        lb_out_abort(&o);
        return lb_fail(err, LB_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return lb_out_commit(&o, err);
}

lb_status lb_tokens_load_or_build(lb_tokens *out, const lb_vocab *v, const char *const *files,
                                  int32_t n_files, const char *cache_path, lb_error *err) {
    out->ids = NULL, out->n = 0;
    const uint64_t key     = cache_key(v, files, n_files);
    const int32_t  n_vocab = lb_vocab_n_tokens(v);
    if (cache_path) {
        lb_error  quiet = { 0 };
        if (lb_tokens_read_cache(out, cache_path, key, n_vocab, &quiet) == LB_OK) return LB_OK;
    }
    int64_t cap = 0;
    for (int32_t i = 0; i < n_files; i++) {
        char     *text = NULL;
        size_t    len, n_ids;
        int32_t  *ids = NULL;
        lb_status st = lb_read_file(files[i], &text, &len, err);
        if (!st) st = lb_tokenize(v, text, len, lb_vocab_add_bos(v), false, &ids, &n_ids, err);
        if (st) {
            free(text);
            lb_tokens_free(out);
            return st;
        }
        free(text);
        if (out->n + (int64_t)n_ids > cap) {
            cap            = (out->n + (int64_t)n_ids) * 2;
            int32_t *grown = realloc(out->ids, (size_t)cap * sizeof *grown);
            if (!grown) {
                free(ids);
                lb_tokens_free(out);
                return lb_fail(err, LB_ERR_NOMEM, "out of memory for the tokens of %s", files[i]);
            }
            out->ids = grown;
        }
        memcpy(out->ids + out->n, ids, n_ids * sizeof *ids);
        out->n += (int64_t)n_ids;
        free(ids);
    }
    if (cache_path) {
        lb_status st = lb_tokens_write_cache(out, cache_path, key, n_vocab, err);
        if (st) {
            lb_tokens_free(out);
            return st;
        }
    }
    return LB_OK;
}
