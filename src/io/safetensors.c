/* safetensors read (validated, over an mmap or memory) and write (a temp beside PATH, renamed when complete).
 * Invariants after a successful open: every tensor has a known dtype, 0..8 non-negative
 * dims whose product times the dtype size equals end - begin, end <= the data size, no two
 * tensors' bytes overlap, and no two tensors share a name. The io layer knows bytes, shapes
 * and dtypes, not transformers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked_math.h"
#include "core/fail.h"
#include "core/json.h"
#include "lowbit/safetensors.h"

#define MAX_HEADER ((uint64_t)100 << 20) /* as huggingface/safetensors */

static const struct {
    const char *name;
    size_t      size;
} k_dtypes[LB_ST_DTYPE_COUNT] = {
    [LB_ST_BOOL] = { "BOOL", 1 },       [LB_ST_U8] = { "U8", 1 },   [LB_ST_I8] = { "I8", 1 },
    [LB_ST_F8_E4M3] = { "F8_E4M3", 1 }, [LB_ST_F8_E5M2] = { "F8_E5M2", 1 },
    [LB_ST_I16] = { "I16", 2 },         [LB_ST_U16] = { "U16", 2 }, [LB_ST_F16] = { "F16", 2 },
    [LB_ST_BF16] = { "BF16", 2 },       [LB_ST_I32] = { "I32", 4 }, [LB_ST_U32] = { "U32", 4 },
    [LB_ST_F32] = { "F32", 4 },         [LB_ST_I64] = { "I64", 8 }, [LB_ST_U64] = { "U64", 8 },
    [LB_ST_F64] = { "F64", 8 },
};

const char *lb_st_dtype_name(lb_st_dtype t) {
    return (unsigned)t < LB_ST_DTYPE_COUNT ? k_dtypes[t].name : "?";
}
size_t lb_st_dtype_size(lb_st_dtype t) {
    return (unsigned)t < LB_ST_DTYPE_COUNT ? k_dtypes[t].size : 0;
}

void lb_safetensors_close(lb_safetensors *st) {
    if (!st) return;
    for (int64_t i = 0; st->tensors && i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    lb_source_close(&st->src);
    free(st);
}

int64_t lb_safetensors_find(const lb_safetensors *st, const char *name) {
    for (int64_t i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return i;
    return -1;
}

/* One header entry: {"dtype": D, "shape": [..], "data_offsets": [b, e]}. */
static lb_status parse_entry(const cJSON *e, lb_st_tensor *t, uint64_t data_size, const char *f,
                             lb_error *err) {
    LB_RETURN_IF(!cJSON_IsObject(e), err, LB_ERR_CORRUPT, "%s: tensor '%s' is not a JSON object",
                 f, t->name);
    const char *dt = lb_json_str(e, "dtype");
    LB_RETURN_IF(!dt, err, LB_ERR_CORRUPT, "%s: tensor '%s' has no dtype", f, t->name);
    int d = 0;
    while (d < LB_ST_DTYPE_COUNT && strcmp(k_dtypes[d].name, dt) != 0) d++;
    LB_RETURN_IF(d == LB_ST_DTYPE_COUNT, err, LB_ERR_UNSUPPORTED,
                 "%s: tensor '%s' has unknown dtype '%.16s'", f, t->name, dt);
    t->dtype               = (lb_st_dtype)d;
    const cJSON *shape     = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offsets   = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    const int    shape_len = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : -1;
    LB_RETURN_IF(shape_len < 0 || shape_len > LB_ST_MAX_DIMS, err, LB_ERR_CORRUPT,
                 "%s: tensor '%s' needs a shape of 0..%d dimensions", f, t->name, LB_ST_MAX_DIMS);
    t->n_dims  = shape_len;
    uint64_t n = 1;
    int      k = 0;
    for (const cJSON *s = shape->child; s; s = s->next, k++) {
        int64_t v;
        LB_RETURN_IF(!lb_json_int(s, 0, INT64_MAX, &v), err, LB_ERR_CORRUPT,
                     "%s: tensor '%s': dimension %d is not a non-negative integer", f, t->name, k);
        t->shape[k] = v;
        LB_RETURN_IF(__builtin_mul_overflow(n, (uint64_t)v, &n), err, LB_ERR_CORRUPT,
                     "%s: tensor '%s': its shape overflows", f, t->name);
    }
    int64_t b, en;
    LB_RETURN_IF(!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
                     !lb_json_int(offsets->child, 0, INT64_MAX, &b) ||
                     !lb_json_int(offsets->child->next, 0, INT64_MAX, &en),
                 err, LB_ERR_CORRUPT, "%s: tensor '%s': data_offsets must be two non-negative integers",
                 f, t->name);
    uint64_t nbytes;
    LB_RETURN_IF(__builtin_mul_overflow(n, (uint64_t)k_dtypes[d].size, &nbytes), err,
                 LB_ERR_CORRUPT, "%s: tensor '%s': its shape overflows", f, t->name);
    LB_RETURN_IF(en < b, err, LB_ERR_CORRUPT, "%s: tensor '%s': data_offsets [%lld, %lld] run backwards",
                 f, t->name, (long long)b, (long long)en);
    LB_RETURN_IF((uint64_t)(en - b) != nbytes, err, LB_ERR_CORRUPT,
                 "%s: tensor '%s': dtype %s and %d-dim shape need %llu bytes, data_offsets [%lld, %lld] "
                 "give %llu", f, t->name, dt, t->n_dims, (unsigned long long)nbytes, (long long)b,
                 (long long)en, (unsigned long long)(en - b));
    LB_RETURN_IF((uint64_t)en > data_size, err, LB_ERR_TRUNCATED,
                 "%s: tensor '%s': data_offsets [%lld, %lld] are past the end of the data (%llu bytes)",
                 f, t->name, (long long)b, (long long)en, (unsigned long long)data_size);
    t->begin = (uint64_t)b;
    t->end   = (uint64_t)en;
    return LB_OK;
}

static int cmp_begin(const void *a, const void *b) {
    const lb_st_tensor *x = *(lb_st_tensor *const *)a, *y = *(lb_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(lb_st_tensor *const *)a)->name, (*(lb_st_tensor *const *)b)->name);
}

/* No repeated names, no overlapping bytes (names first: a repeated entry usually repeats its
 * offsets too, and the message must name the real cause). */
static lb_status check_layout(lb_safetensors *st, lb_error *err) {
    const char    *f   = st->src.name;
    const size_t   n   = (size_t)st->n_tensors;
    lb_st_tensor **idx = malloc((n ? n : 1) * sizeof *idx);
    LB_RETURN_IF(!idx, err, LB_ERR_NOMEM, "%s: out of memory", f);
    for (size_t i = 0; i < n; i++) idx[i] = &st->tensors[i];
    lb_status st_ = LB_OK;
    qsort(idx, n, sizeof *idx, cmp_name);
    for (size_t i = 1; i < n && !st_; i++)
        if (strcmp(idx[i - 1]->name, idx[i]->name) == 0)
            st_ = lb_fail(err, LB_ERR_CORRUPT, "%s: duplicate name: tensor '%s' appears twice in the header",
                          f, idx[i]->name);
    qsort(idx, n, sizeof *idx, cmp_begin);
    const lb_st_tensor *prev = NULL;
    for (size_t i = 0; i < n && !st_; i++) {
        if (idx[i]->begin == idx[i]->end) continue; /* empty tensors take no bytes */
        if (prev && idx[i]->begin < prev->end)
            st_ = lb_fail(err, LB_ERR_CORRUPT, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                          f, prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end,
                          idx[i]->name, (unsigned long long)idx[i]->begin, (unsigned long long)idx[i]->end);
        prev = idx[i];
    }
    free(idx);
    return st_;
}

static lb_status parse(lb_safetensors *sf, lb_error *err) {
    const char    *f = sf->src.name;
    const uint8_t *p = sf->src.data;
    const size_t   size = sf->src.size;
    uint64_t       hlen;
    LB_RETURN_IF(size < 8, err, LB_ERR_TRUNCATED, "%s: %zu bytes, too short for a safetensors header",
                 f, size);
    memcpy(&hlen, p, 8);
    LB_RETURN_IF(hlen > size - 8, err, LB_ERR_TRUNCATED,
                 "%s: header length %llu is past the end of the file (%zu bytes)", f,
                 (unsigned long long)hlen, size);
    LB_RETURN_IF(hlen > MAX_HEADER, err, LB_ERR_CORRUPT, "%s: header length %llu is over 100 MiB", f,
                 (unsigned long long)hlen);
    LB_RETURN_IF(hlen < 2 || p[8] != '{', err, LB_ERR_FORMAT,
                 "%s: not a safetensors file (the header is not a JSON object)", f);
    sf->data_offset          = 8 + (size_t)hlen;
    const uint64_t data_size = size - sf->data_offset;
    cJSON         *j;
    lb_status      st = lb_json_parse(&j, (const char *)p + 8, (size_t)hlen, f, err);
    if (st) return st;
    LB_GOTO_IF(!cJSON_IsObject(j), err, LB_ERR_FORMAT, "%s: the header is not a JSON object", f);
    int64_t n = 0;
    for (const cJSON *e = j->child; e; e = e->next)
        if (!e->string || strcmp(e->string, "__metadata__") != 0) n++;
    sf->tensors = calloc((size_t)(n ? n : 1), sizeof *sf->tensors);
    LB_GOTO_IF(!sf->tensors, err, LB_ERR_NOMEM, "%s: out of memory", f);
    for (const cJSON *e = j->child; e; e = e->next) {
        LB_GOTO_IF(!e->string, err, LB_ERR_CORRUPT, "%s: header entry without a name", f);
        if (strcmp(e->string, "__metadata__") == 0) {
            LB_GOTO_IF(!cJSON_IsObject(e), err, LB_ERR_CORRUPT, "%s: __metadata__ is not an object", f);
            continue;
        }
        lb_st_tensor *t = &sf->tensors[sf->n_tensors];
        t->name         = strdup(e->string);
        LB_GOTO_IF(!t->name, err, LB_ERR_NOMEM, "%s: out of memory", f);
        sf->n_tensors++;
        LB_TRY(parse_entry(e, t, data_size, f, err));
        t->data = p + sf->data_offset + t->begin;
    }
    LB_TRY(check_layout(sf, err));
    cJSON_Delete(j);
    return LB_OK;
fail:
    cJSON_Delete(j);
    return st;
}

static lb_status open_common(lb_safetensors **out, lb_safetensors *st, lb_error *err) {
    lb_status s = parse(st, err);
    if (s) {
        lb_safetensors_close(st);
        *out = NULL;
        return s;
    }
    *out = st;
    return LB_OK;
}

lb_status lb_safetensors_open(lb_safetensors **out, const char *path, lb_error *err) {
    *out               = NULL;
    lb_safetensors *st = calloc(1, sizeof *st);
    LB_RETURN_IF(!st, err, LB_ERR_NOMEM, "out of memory");
    lb_status s = lb_source_open_file(&st->src, path, err);
    if (s) {
        free(st);
        return s;
    }
    return open_common(out, st, err);
}

lb_status lb_safetensors_open_memory(lb_safetensors **out, const void *data, size_t size,
                                     const char *name, lb_error *err) {
    *out               = NULL;
    lb_safetensors *st = calloc(1, sizeof *st);
    LB_RETURN_IF(!st, err, LB_ERR_NOMEM, "out of memory");
    lb_status s = lb_source_open_memory(&st->src, data, size, name, err);
    if (s) {
        free(st);
        return s;
    }
    return open_common(out, st, err);
}

lb_status lb_safetensors_write(const char *path, const lb_st_write_tensor *t, size_t n,
                               lb_error *err) {
    lb_strbuf h   = { 0 };
    uint64_t  off = 0;
    static const char meta[] = "{\"__metadata__\":{\"format\":\"pt\"}";
    lb_strbuf_add(&h, meta, sizeof meta - 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t ne = 1;
        LB_RETURN_IF(t[i].n_dims < 0 || t[i].n_dims > LB_ST_MAX_DIMS ||
                         (unsigned)t[i].dtype >= LB_ST_DTYPE_COUNT,
                     err, LB_ERR_PARAM, "%s: tensor '%s': bad dtype or rank", path, t[i].name);
        for (int32_t d = 0; d < t[i].n_dims; d++) ne *= (uint64_t)t[i].shape[d];
        LB_RETURN_IF(ne * lb_st_dtype_size(t[i].dtype) != t[i].nbytes, err, LB_ERR_PARAM,
                     "%s: tensor '%s': %zu bytes do not fit its shape", path, t[i].name, t[i].nbytes);
        lb_strbuf_add(&h, ",", 1);
        lb_strbuf_json_string(&h, t[i].name, strlen(t[i].name));
        lb_strbuf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", lb_st_dtype_name(t[i].dtype));
        for (int32_t d = 0; d < t[i].n_dims; d++)
            lb_strbuf_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        lb_strbuf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                         (unsigned long long)(off + t[i].nbytes));
        off += t[i].nbytes;
    }
    lb_strbuf_add(&h, "}", 1);
    while (!h.oom && (h.n % 8) != 0) lb_strbuf_add(&h, " ", 1);
    LB_RETURN_IF(h.oom, err, LB_ERR_NOMEM, "%s: out of memory", path);
    lb_out    out;
    lb_status st = lb_out_open(&out, path, err);
    if (st) {
        free(h.p);
        return st;
    }
    const uint64_t hlen = h.n;
    bool           ok   = fwrite(&hlen, 8, 1, out.f) == 1 && fwrite(h.p, 1, h.n, out.f) == h.n;
    for (size_t i = 0; ok && i < n; i++)
        ok = t[i].nbytes == 0 || fwrite(t[i].data, 1, t[i].nbytes, out.f) == t[i].nbytes;
    free(h.p);
    if (!ok) {
        st = lb_fail(err, LB_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        lb_out_abort(&out);
        return st;
    }
    return lb_out_commit(&out, err);
}
