/* GGUF writer: metadata is serialized as it is set; tensors are declared with their sizes,
 * each at a 32-byte aligned offset. Either lb_gguf_writer_write writes everything at once
 * (borrowed data, or a fill callback chunk by chunk), or the caller streams: begin writes the
 * header (every offset is known from the sizes), put writes one tensor's bytes at its offset,
 * in any order, and finish checks that each was written once. The file appears only when
 * complete (lb_out: a unique temp beside it, renamed when complete). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checked_math.h"
#include "core/fail.h"
#include "core/strmap.h"
#include "lowbit/gguf.h"

#define FILL_CHUNK ((size_t)16 << 20) /* bytes a fill callback produces at most per call */

typedef struct {
    char       *name;
    uint32_t    type;
    uint32_t    n_dims;
    int64_t     ne[LB_GGUF_MAX_DIMS];
    const void *data;
    size_t      nbytes;
    lb_gguf_fill_fn fill; /* or data */
    void       *user;
} wtensor;

struct lb_gguf_writer {
    uint8_t *kv;  /* serialized key/value pairs */
    size_t   kv_len, kv_cap;
    uint64_t n_kv, cap_kv;
    char   **keys;     /* [cap_kv], n_kv used */
    bool    *locked;   /* [cap_kv] an override's: later sets of the key are ignored */
    wtensor *tensors;
    uint64_t n_tensors, cap_tensors;
    lb_strmap key_ix, tensor_ix; /* names -> index, for duplicates */
    /* streaming, between begin and finish/abort */
    bool     open;
    bool     partial;      /* into a kept file (begin_partial), not a temp */
    char    *partial_path, *final_path;
    lb_out   out;        /* shard 0's file (the only one unless split) */
    uint64_t *offset;    /* [n_tensors] from its shard's data start */
    bool     *written;   /* [n_tensors] */
    size_t   align_at;   /* offset in kv of general.alignment's value; 0 when not set */
    uint32_t align_type; /* and its type */
    bool     oom;
    /* split output (gguf-split's layout): limits, or each tensor's shard given; after begin,
     * n_shards files (shard 0: out; the others: souts[k - 1]) and each one's data section */
    uint64_t  split_bytes, split_tensors;
    uint16_t *shard;      /* [n_tensors]: given by set_shard, else computed at begin */
    bool      shard_given;
    uint16_t  n_shards;
    lb_out   *souts;
    uint64_t *data_start, *data_end; /* [n_shards]: file offsets of the data and its padded end */
};

lb_gguf_writer *lb_gguf_writer_create(void) {
    return calloc(1, sizeof(lb_gguf_writer));
}

void lb_gguf_writer_free(lb_gguf_writer *w) {
    if (!w) return;
    lb_gguf_writer_abort(w);
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (uint64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->keys);
    free(w->locked);
    free(w->kv);
    free(w->tensors);
    free(w->shard);
    lb_strmap_free(&w->key_ix);
    lb_strmap_free(&w->tensor_ix);
    free(w);
}

static void put(lb_gguf_writer *w, const void *p, size_t n) {
    if (w->oom || n == 0) return; /* n == 0: p may be NULL (an empty array) */
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n) cap *= 2;
        uint8_t *b = realloc(w->kv, cap);
        if (!b) {
            w->oom = true;
            return;
        }
        w->kv     = b;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}

static void put_u32(lb_gguf_writer *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(lb_gguf_writer *w, uint64_t v) { put(w, &v, 8); }
static void put_str(lb_gguf_writer *w, const char *s, size_t n) {
    put_u64(w, n);
    put(w, s, n);
}

/* Start a kv: check the key is new, record it, write key and type. *skip: the key is an
 * override's (lb_gguf_writer_override): write nothing, successfully. */
static lb_status begin_kv(lb_gguf_writer *w, const char *key, lb_gguf_vtype t, bool *skip) {
    *skip = false;
    if (w->open) return LB_ERR_PARAM; /* the header is written */
    const int64_t ix = lb_strmap_get(&w->key_ix, key, strlen(key));
    if (ix >= 0) {
        *skip = w->locked[ix];
        return *skip ? LB_OK : LB_ERR_PARAM;
    }
    if (w->n_kv == w->cap_kv) { /* grown by doubling: 100k keys stay linear */
        const uint64_t cap = w->cap_kv ? 2 * w->cap_kv : 64;
        char         **k   = realloc(w->keys, (size_t)cap * sizeof *k);
        if (!k) return LB_ERR_NOMEM;
        w->keys = k;
        bool *l = realloc(w->locked, (size_t)cap * sizeof *l);
        if (!l) return LB_ERR_NOMEM;
        w->locked = l;
        w->cap_kv = cap;
    }
    w->locked[w->n_kv] = false;
    if (!(w->keys[w->n_kv] = strdup(key))) return LB_ERR_NOMEM;
    if (lb_strmap_put(&w->key_ix, w->keys[w->n_kv], strlen(key), (int64_t)w->n_kv) == -2) {
        free(w->keys[w->n_kv]);
        return LB_ERR_NOMEM;
    }
    w->n_kv++;
    put_str(w, key, strlen(key));
    put_u32(w, (uint32_t)t);
    if (strcmp(key, "general.alignment") == 0) {
        w->align_at   = w->kv_len;
        w->align_type = (uint32_t)t;
    }
    return w->oom ? LB_ERR_NOMEM : LB_OK;
}

static lb_status end_kv(lb_gguf_writer *w) {
    return w->oom ? LB_ERR_NOMEM : LB_OK;
}

#define SCALAR_SETTER(fn, ctype, vt)                                                               \
    lb_status fn(lb_gguf_writer *w, const char *key, ctype v) {                                    \
        bool      skip;                                                                            \
        lb_status st = begin_kv(w, key, vt, &skip);                                                \
        if (st || skip) return st;                                                                 \
        put(w, &v, sizeof v);                                                                      \
        return end_kv(w);                                                                          \
    }
SCALAR_SETTER(lb_gguf_writer_set_u32, uint32_t, LB_GGUF_U32)
SCALAR_SETTER(lb_gguf_writer_set_i32, int32_t, LB_GGUF_I32)
SCALAR_SETTER(lb_gguf_writer_set_u64, uint64_t, LB_GGUF_U64)
SCALAR_SETTER(lb_gguf_writer_set_f32, float, LB_GGUF_F32)
#undef SCALAR_SETTER

lb_status lb_gguf_writer_set_bool(lb_gguf_writer *w, const char *key, bool v) {
    bool      skip;
    lb_status st = begin_kv(w, key, LB_GGUF_BOOL, &skip);
    if (st || skip) return st;
    const uint8_t b = v ? 1 : 0;
    put(w, &b, 1);
    return end_kv(w);
}

lb_status lb_gguf_writer_set_str(lb_gguf_writer *w, const char *key, const char *v) {
    bool      skip;
    lb_status st = begin_kv(w, key, LB_GGUF_STRING, &skip);
    if (st || skip) return st;
    put_str(w, v, strlen(v));
    return end_kv(w);
}

lb_status lb_gguf_writer_set_arr_str(lb_gguf_writer *w, const char *key, const char *const *v,
                                     uint64_t n) {
    bool      skip;
    lb_status st = begin_kv(w, key, LB_GGUF_ARRAY, &skip);
    if (st || skip) return st;
    put_u32(w, LB_GGUF_STRING);
    put_u64(w, n);
    for (uint64_t i = 0; i < n; i++) put_str(w, v[i], strlen(v[i]));
    return end_kv(w);
}

static size_t elem_size(lb_gguf_vtype t) {
    switch (t) {
    case LB_GGUF_U8: case LB_GGUF_I8: case LB_GGUF_BOOL:  return 1;
    case LB_GGUF_U16: case LB_GGUF_I16:                   return 2;
    case LB_GGUF_U32: case LB_GGUF_I32: case LB_GGUF_F32: return 4;
    case LB_GGUF_U64: case LB_GGUF_I64: case LB_GGUF_F64: return 8;
    default:                                              return 0;
    }
}

lb_status lb_gguf_writer_set_arr(lb_gguf_writer *w, const char *key, lb_gguf_vtype t,
                                 const void *data, uint64_t n) {
    const size_t es = elem_size(t);
    if (es == 0) return LB_ERR_PARAM;
    bool      skip;
    lb_status st = begin_kv(w, key, LB_GGUF_ARRAY, &skip);
    if (st || skip) return st;
    put_u32(w, (uint32_t)t);
    put_u64(w, n);
    put(w, data, (size_t)n * es);
    return end_kv(w);
}

lb_status lb_gguf_writer_copy_kv(lb_gguf_writer *w, const lb_gguf_kv *kv) {
    bool      skip;
    lb_status st = begin_kv(w, kv->key, kv->type, &skip);
    if (st || skip) return st;
    switch (kv->type) {
    case LB_GGUF_STRING: put_str(w, kv->str.p, kv->str.n); break;
    case LB_GGUF_ARRAY:
        put_u32(w, kv->arr_type);
        put_u64(w, kv->arr_n);
        if (kv->arr_type == LB_GGUF_STRING)
            for (uint64_t i = 0; i < kv->arr_n; i++) put_str(w, kv->arr_str[i].p, kv->arr_str[i].n);
        else put(w, kv->arr_data, (size_t)kv->arr_n * elem_size(kv->arr_type));
        break;
    case LB_GGUF_BOOL: { const uint8_t b = kv->v.b; put(w, &b, 1); break; }
    case LB_GGUF_F32: { const float f = (float)kv->v.f64; put(w, &f, 4); break; }
    case LB_GGUF_F64: put(w, &kv->v.f64, 8); break;
    default: put(w, &kv->v.u64, elem_size(kv->type)); break; /* little-endian low bytes */
    }
    return end_kv(w);
}

lb_status lb_gguf_writer_override(lb_gguf_writer *w, const char *spec, lb_error *err) {
    const char *eq = strchr(spec, '='), *colon = eq ? strchr(eq, ':') : NULL;
    LB_RETURN_IF(!eq || eq == spec || !colon || eq - spec >= 256, err, LB_ERR_PARAM,
                 "--override-kv wants KEY=TYPE:VALUE (TYPE int, float, bool or str), not '%.80s'", spec);
    char key[256], type[8];
    snprintf(key, sizeof key, "%.*s", (int)(eq - spec), spec);
    snprintf(type, sizeof type, "%.*s", (int)(colon - eq - 1 < 7 ? colon - eq - 1 : 7), eq + 1);
    const char *v = colon + 1;
    char       *end;
    lb_status   st;
    errno = 0;
    if (!strcmp(type, "int")) {
        const long long x = strtoll(v, &end, 10);
        LB_RETURN_IF(errno || end == v || *end || x < INT32_MIN || x > INT32_MAX, err, LB_ERR_PARAM,
                     "--override-kv %s: '%.40s' is not a 32-bit integer", key, v);
        st = w ? lb_gguf_writer_set_i32(w, key, (int32_t)x) : LB_OK;
    } else if (!strcmp(type, "float")) {
        const double x = strtod(v, &end);
        LB_RETURN_IF(errno || end == v || *end || !isfinite((float)x), err, LB_ERR_PARAM,
                     "--override-kv %s: '%.40s' is not a finite number", key, v);
        st = w ? lb_gguf_writer_set_f32(w, key, (float)x) : LB_OK;
    } else if (!strcmp(type, "bool")) {
        LB_RETURN_IF(strcmp(v, "true") && strcmp(v, "false"), err, LB_ERR_PARAM,
                     "--override-kv %s: bool wants true or false, not '%.40s'", key, v);
        st = w ? lb_gguf_writer_set_bool(w, key, !strcmp(v, "true")) : LB_OK;
    } else if (!strcmp(type, "str")) {
        LB_RETURN_IF(strlen(v) > 127, err, LB_ERR_PARAM, "--override-kv %s: strings are at most 127 bytes", key);
        st = w ? lb_gguf_writer_set_str(w, key, v) : LB_OK;
    } else {
        return lb_fail(err, LB_ERR_PARAM, "--override-kv %s: type '%s' is not int, float, bool or str", key, type);
    }
    LB_RETURN_IF(st, err, st, "--override-kv %s: %s", key, st == LB_ERR_PARAM ? "given twice" : "out of memory");
    if (w) w->locked[lb_strmap_get(&w->key_ix, key, strlen(key))] = true;
    return LB_OK;
}

lb_status lb_gguf_writer_kv_image(const lb_gguf_writer *w, void **out, size_t *size) {
    *out = NULL;
    *size = 0;
    if (w->oom) return LB_ERR_NOMEM;
    const uint32_t version = 3;
    const uint64_t n_tensors = 0;
    const size_t   n = 24 + w->kv_len;
    uint8_t       *b = malloc(n);
    if (!b) return LB_ERR_NOMEM;
    memcpy(b, "GGUF", 4);
    memcpy(b + 4, &version, 4);
    memcpy(b + 8, &n_tensors, 8);
    memcpy(b + 16, &w->n_kv, 8);
    if (w->kv_len) memcpy(b + 24, w->kv, w->kv_len);
    *out  = b;
    *size = n;
    return LB_OK;
}

lb_status lb_gguf_writer_add_tensor(lb_gguf_writer *w, const char *name, uint32_t ggml_type,
                                    uint32_t n_dims, const int64_t *ne, const void *data,
                                    size_t nbytes, lb_error *err) {
    LB_RETURN_IF(w->open, err, LB_ERR_PARAM, "tensor '%s' added after the header was written", name);
    LB_RETURN_IF(strlen(name) == 0 || strlen(name) >= 64, err, LB_ERR_PARAM,
                 "tensor name '%s' must have 1..63 bytes", name);
    LB_RETURN_IF(n_dims == 0 || n_dims > LB_GGUF_MAX_DIMS, err, LB_ERR_PARAM,
                 "tensor '%s': %u dimensions", name, n_dims);
    const int32_t bs = lb_ggml_type_block_size(ggml_type);
    LB_RETURN_IF(bs == 0, err, LB_ERR_PARAM, "tensor '%s': unknown ggml type %u", name, ggml_type);
    int64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        LB_RETURN_IF(ne[d] <= 0 || !lb_mul_i64(nel, ne[d], &nel), err, LB_ERR_PARAM,
                     "tensor '%s': bad dimension", name);
    }
    LB_RETURN_IF(ne[0] % bs != 0, err, LB_ERR_SHAPE, "tensor '%s': row of %lld is not a multiple "
                 "of %s's block size %d", name, (long long)ne[0], lb_ggml_type_name(ggml_type), bs);
    LB_RETURN_IF((size_t)(nel / bs) * lb_ggml_type_size(ggml_type) != nbytes, err, LB_ERR_SHAPE,
                 "tensor '%s': %zu bytes given, its shape and type need %zu", name, nbytes,
                 (size_t)(nel / bs) * lb_ggml_type_size(ggml_type));
    LB_RETURN_IF(lb_strmap_get(&w->tensor_ix, name, strlen(name)) >= 0, err, LB_ERR_PARAM,
                 "tensor '%s' added twice", name);
    if (w->n_tensors == w->cap_tensors) {
        const uint64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        wtensor       *t   = realloc(w->tensors, (size_t)cap * sizeof *t);
        LB_RETURN_IF(!t, err, LB_ERR_NOMEM, "out of memory");
        w->tensors     = t;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    LB_RETURN_IF(!t->name, err, LB_ERR_NOMEM, "out of memory");
    if (lb_strmap_put(&w->tensor_ix, t->name, strlen(t->name), (int64_t)w->n_tensors) == -2) {
        free(t->name);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    t->type   = ggml_type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < LB_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data   = data;
    t->nbytes = nbytes;
    w->n_tensors++;
    return LB_OK;
}

lb_status lb_gguf_writer_add_tensors_of(lb_gguf_writer *w, const lb_gguf_writer *from, lb_error *err) {
    for (uint64_t i = 0; i < from->n_tensors; i++) {
        const wtensor  *t  = &from->tensors[i];
        const lb_status st = lb_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->nbytes, err);
        if (st) return st;
    }
    return LB_OK;
}

lb_status lb_gguf_writer_add_tensor_fill(lb_gguf_writer *w, const char *name, uint32_t ggml_type,
                                         uint32_t n_dims, const int64_t *ne, size_t nbytes,
                                         lb_gguf_fill_fn fill, void *user, lb_error *err) {
    static const uint8_t dummy;
    lb_status st = lb_gguf_writer_add_tensor(w, name, ggml_type, n_dims, ne, &dummy, nbytes, err);
    if (st) return st;
    w->tensors[w->n_tensors - 1].data = NULL;
    w->tensors[w->n_tensors - 1].fill = fill;
    w->tensors[w->n_tensors - 1].user = user;
    return LB_OK;
}

static bool fwrite_all(FILE *f, const void *p, size_t n) {
    return n == 0 || fwrite(p, 1, n, f) == n;
}

static uint64_t padded(uint64_t n, uint64_t align) { return (n + align - 1) / align * align; }

void lb_gguf_writer_split(lb_gguf_writer *w, uint64_t max_bytes, uint64_t max_tensors) {
    w->split_bytes   = max_bytes;
    w->split_tensors = max_tensors;
}

static bool grow_shards(lb_gguf_writer *w) {
    uint16_t *sh = realloc(w->shard, (size_t)(w->cap_tensors ? w->cap_tensors : 1) * sizeof *sh);
    if (!sh) return false;
    w->shard = sh;
    return true;
}

lb_status lb_gguf_writer_set_shard(lb_gguf_writer *w, uint64_t i, uint16_t shard, lb_error *err) {
    LB_RETURN_IF(w->open || i >= w->n_tensors, err, LB_ERR_PARAM, "gguf: no tensor %llu to place", (unsigned long long)i);
    LB_RETURN_IF(!grow_shards(w), err, LB_ERR_NOMEM, "out of memory");
    if (!w->shard_given) memset(w->shard, 0, (size_t)w->n_tensors * sizeof *w->shard);
    w->shard_given = true;
    w->shard[i]    = shard;
    return LB_OK;
}

uint16_t lb_gguf_writer_n_shards(const lb_gguf_writer *w) { return w->n_shards ? w->n_shards : 1; }

bool lb_gguf_shard_path(char *out, size_t cap, const char *path, int k, int n) {
    size_t len = strlen(path);
    if (len > 5 && strcmp(path + len - 5, ".gguf") == 0) len -= 5;
    const int r = snprintf(out, cap, "%.*s-%05d-of-%05d.gguf", (int)len, path, k + 1, n);
    return r > 0 && (size_t)r < cap;
}

/* Each tensor's shard: as given, or a new one when the next tensor would pass a limit. */
static lb_status plan_shards(lb_gguf_writer *w, const char *path, lb_error *err) {
    LB_RETURN_IF(!grow_shards(w), err, LB_ERR_NOMEM, "out of memory");
    uint64_t n = 0, bytes = 0, count = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const uint64_t nb = padded(w->tensors[i].nbytes, LB_GGUF_DEFAULT_ALIGNMENT);
        if (w->shard_given) {
            n = (uint64_t)w->shard[i] + 1 > n ? (uint64_t)w->shard[i] + 1 : n;
            continue;
        }
        if (count > 0 && ((w->split_tensors && count + 1 > w->split_tensors) || (w->split_bytes && bytes + nb > w->split_bytes))) {
            n++;
            bytes = count = 0;
        }
        w->shard[i] = (uint16_t)(n < 65535 ? n : 65535);
        bytes += nb;
        count++;
    }
    if (!w->shard_given) n++;
    LB_RETURN_IF(n > 9999, err, LB_ERR_PARAM, "%s: %llu shards; gguf-split's names allow 9999", path,
                 (unsigned long long)n);
    w->n_shards = (uint16_t)(n ? n : 1); /* a given shard may be empty: still written */
    return LB_OK;
}

static bool fwrite_kv_key(FILE *f, const char *key, uint32_t type) {
    const uint64_t n = strlen(key);
    return fwrite_all(f, &n, 8) && fwrite_all(f, key, n) && fwrite_all(f, &type, 4);
}

/* shard s's header (magic, counts, metadata, tensor infos, padding) into *buf, *len bytes; its
 * tensors' offsets into w. Split: the first shard holds the metadata, every shard the split.*
 * keys. */
static lb_status header(lb_gguf_writer *w, uint16_t s, const char *path, uint8_t **buf, size_t *len, lb_error *err) {
    const size_t align = LB_GGUF_DEFAULT_ALIGNMENT;
    /* readers lay the data out by general.alignment: it must say what is written */
    uint32_t file_align = LB_GGUF_DEFAULT_ALIGNMENT;
    if (w->align_at) {
        file_align = 0;
        if (w->align_type == LB_GGUF_U32) memcpy(&file_align, w->kv + w->align_at, 4);
    }
    LB_RETURN_IF(file_align != align, err, LB_ERR_PARAM,
                 "%s: general.alignment must be a u32 equal to %zu, the alignment written", path,
                 align);
    char *mem = NULL;
    FILE *f   = open_memstream(&mem, len);
    LB_RETURN_IF(!f, err, LB_ERR_NOMEM, "out of memory");
    const bool     split   = w->n_shards > 1;
    const uint32_t version = 3;
    uint64_t       n_t = 0, n_kv = (s == 0 ? w->n_kv : 0) + (split ? 3 : 0);
    for (uint64_t i = 0; i < w->n_tensors; i++) n_t += w->shard[i] == s;
    bool ok = fwrite_all(f, "GGUF", 4) && fwrite_all(f, &version, 4) && fwrite_all(f, &n_t, 8) &&
              fwrite_all(f, &n_kv, 8) && (s != 0 || fwrite_all(f, w->kv, w->kv_len));
    if (split) { /* llama.cpp's LLM_KV_SPLIT_*: u16, u16, i32 */
        const uint16_t no = s, count = w->n_shards;
        const int32_t  total = (int32_t)w->n_tensors;
        ok = ok && fwrite_kv_key(f, "split.no", LB_GGUF_U16) && fwrite_all(f, &no, 2) &&
             fwrite_kv_key(f, "split.count", LB_GGUF_U16) && fwrite_all(f, &count, 2) &&
             fwrite_kv_key(f, "split.tensors.count", LB_GGUF_I32) && fwrite_all(f, &total, 4);
    }
    uint64_t off = 0;
    for (uint64_t i = 0; ok && i < w->n_tensors; i++) {
        if (w->shard[i] != s) continue;
        const wtensor *t = &w->tensors[i];
        const uint64_t n = strlen(t->name);
        ok = fwrite_all(f, &n, 8) && fwrite_all(f, t->name, n) && fwrite_all(f, &t->n_dims, 4);
        for (uint32_t d = 0; ok && d < t->n_dims; d++) ok = fwrite_all(f, &t->ne[d], 8);
        ok = ok && fwrite_all(f, &t->type, 4) && fwrite_all(f, &off, 8);
        w->offset[i] = off;
        off += padded(t->nbytes, align);
    }
    const long pos = ok ? ftell(f) : -1;
    static const uint8_t zeros[LB_GGUF_DEFAULT_ALIGNMENT];
    ok               = ok && pos > 0 && fwrite_all(f, zeros, (size_t)(padded((uint64_t)pos, align) - (uint64_t)pos));
    w->data_start[s] = ok ? padded((uint64_t)pos, align) : 0;
    w->data_end[s]   = w->data_start[s] + off;
    ok               = fclose(f) == 0 && ok;
    if (!ok) {
        free(mem);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    *buf = (uint8_t *)mem;
    return LB_OK;
}

/* The state begin needs: shards planned, offset and written arrays. */
static lb_status prepare(lb_gguf_writer *w, const char *path, lb_error *err) {
    LB_RETURN_IF(w->open, err, LB_ERR_PARAM, "%s: the writer is already writing", path);
    LB_RETURN_IF(w->oom, err, LB_ERR_NOMEM, "%s: out of memory building metadata", path);
    lb_status st = plan_shards(w, path, err);
    if (st) return st;
    free(w->offset), free(w->written), free(w->data_start), free(w->data_end), free(w->souts);
    const size_t nt = (size_t)(w->n_tensors ? w->n_tensors : 1);
    w->offset       = malloc(nt * sizeof *w->offset);
    w->written      = calloc(nt, sizeof *w->written);
    w->data_start   = calloc(w->n_shards, sizeof *w->data_start);
    w->data_end     = calloc(w->n_shards, sizeof *w->data_end);
    w->souts        = calloc(w->n_shards, sizeof *w->souts);
    LB_RETURN_IF(!w->offset || !w->written || !w->data_start || !w->data_end || !w->souts, err, LB_ERR_NOMEM,
                 "out of memory");
    return LB_OK;
}

static lb_out *out_of(lb_gguf_writer *w, uint16_t s) { return s == 0 ? &w->out : &w->souts[s - 1]; }

/* what begin allocated */
static void release(lb_gguf_writer *w) {
    free(w->offset), free(w->written), free(w->data_start), free(w->data_end), free(w->souts);
    w->offset = NULL, w->written = NULL, w->data_start = w->data_end = NULL, w->souts = NULL;
}

/* the tensors added with their data */
static lb_status put_given(lb_gguf_writer *w, lb_error *err) {
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        if (!w->tensors[i].data) continue;
        const lb_status st = lb_gguf_writer_put(w, i, w->tensors[i].data, w->tensors[i].nbytes, err);
        if (st) return st;
    }
    return LB_OK;
}

lb_status lb_gguf_writer_begin(lb_gguf_writer *w, const char *path, lb_error *err) {
    lb_status st = prepare(w, path, err);
    if (st) return st;
    w->open = true; /* abort now cleans up what was opened */
    for (uint16_t s = 0; !st && s < w->n_shards; s++) {
        char     sp[4096];
        uint8_t *hb;
        size_t   hn;
        if (w->n_shards > 1 && !lb_gguf_shard_path(sp, sizeof sp, path, s, w->n_shards)) {
            st = lb_fail(err, LB_ERR_PARAM, "%s: path too long for its shards' names", path);
            break;
        }
        const char *fp = w->n_shards > 1 ? sp : path;
        if ((st = header(w, s, fp, &hb, &hn, err))) break;
        lb_out *o = out_of(w, s);
        if ((st = lb_out_open(o, fp, err))) {
            free(hb);
            break;
        }
        if (!fwrite_all(o->f, hb, hn)) st = lb_fail(err, LB_ERR_IO, "%s: write failed: %s", fp, strerror(errno));
        free(hb);
    }
    if (!st) st = put_given(w, err);
    if (st) lb_gguf_writer_abort(w);
    return st;
}

lb_status lb_gguf_writer_begin_partial(lb_gguf_writer *w, const char *partial, const char *path, bool resume,
                                       lb_error *err) {
    uint8_t  *hb;
    size_t    hn;
    LB_RETURN_IF(w->split_bytes || w->split_tensors || w->shard_given, err, LB_ERR_UNSUPPORTED,
                 "%s: a resumable run writes one file, not shards", path);
    lb_status st = prepare(w, partial, err);
    if (!st) st = header(w, 0, partial, &hb, &hn, err);
    if (st) return st;
    const int fd = open(partial, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (resume ? 0 : O_CREAT | O_TRUNC), 0666);
    FILE     *f  = fd >= 0 ? fdopen(fd, "r+") : NULL;
    if (!f) {
        st = lb_fail(err, LB_ERR_IO, "%s: %s", partial, strerror(errno));
        if (fd >= 0) close(fd);
        free(hb);
        return st;
    }
    w->out          = (lb_out){ .f = f, .path = NULL, .tmp = NULL, .slot = -1 };
    w->partial      = true;
    w->open         = true;
    w->partial_path = strdup(partial);
    w->final_path   = strdup(path);
    if (!w->partial_path || !w->final_path) st = lb_fail(err, LB_ERR_NOMEM, "out of memory");
    if (resume) { /* the file must be this run's: the same header byte for byte */
        uint8_t *old = malloc(hn ? hn : 1);
        if (!old) st = lb_fail(err, LB_ERR_NOMEM, "out of memory");
        else if (fread(old, 1, hn, f) != hn || memcmp(old, hb, hn) != 0)
            st = lb_fail(err, LB_ERR_PARAM, "%s: its header is not the one this run writes", partial);
        free(old);
    } else if (!fwrite_all(f, hb, hn)) {
        st = lb_fail(err, LB_ERR_IO, "%s: write failed: %s", partial, strerror(errno));
    }
    free(hb);
    if (!st && !resume) st = put_given(w, err);
    if (st) lb_gguf_writer_abort(w);
    return st;
}

void lb_gguf_writer_assume(lb_gguf_writer *w, uint64_t i) {
    if (w->open && i < w->n_tensors) w->written[i] = true;
}

lb_status lb_gguf_writer_sync(lb_gguf_writer *w, lb_error *err) {
    LB_RETURN_IF(!w->open, err, LB_ERR_PARAM, "gguf: sync before begin");
    for (uint16_t s = 0; s < w->n_shards; s++)
        LB_RETURN_IF(fflush(out_of(w, s)->f) != 0 || fsync(fileno(out_of(w, s)->f)) != 0, err, LB_ERR_IO,
                     "write failed: %s", strerror(errno));
    return LB_OK;
}

uint64_t lb_gguf_writer_n_tensors(const lb_gguf_writer *w) { return w->n_tensors; }

static const char *wpath(lb_gguf_writer *w, uint64_t i) {
    return w->partial ? w->partial_path : out_of(w, i < w->n_tensors ? w->shard[i] : 0)->path;
}

/* seek to tensor i's offset + at, for nbytes */
static lb_status seek_tensor(lb_gguf_writer *w, uint64_t i, uint64_t at, lb_error *err) {
    LB_RETURN_IF(!w->open, err, LB_ERR_PARAM, "gguf: put before begin");
    LB_RETURN_IF(i >= w->n_tensors, err, LB_ERR_PARAM, "gguf: no tensor %llu", (unsigned long long)i);
    LB_RETURN_IF(w->written[i], err, LB_ERR_PARAM, "gguf: tensor '%s' written twice", w->tensors[i].name);
    const uint16_t s = w->shard[i];
    LB_RETURN_IF(fseeko(out_of(w, s)->f, (off_t)(w->data_start[s] + w->offset[i] + at), SEEK_SET) != 0, err,
                 LB_ERR_IO, "%s: seek failed: %s", wpath(w, i), strerror(errno));
    return LB_OK;
}

lb_status lb_gguf_writer_put(lb_gguf_writer *w, uint64_t i, const void *data, size_t nbytes,
                             lb_error *err) {
    lb_status st = seek_tensor(w, i, 0, err);
    if (st) return st;
    LB_RETURN_IF(nbytes != w->tensors[i].nbytes, err, LB_ERR_SHAPE, "tensor '%s': %zu bytes given, "
                 "%zu declared", w->tensors[i].name, nbytes, w->tensors[i].nbytes);
    LB_RETURN_IF(!fwrite_all(out_of(w, w->shard[i])->f, data, nbytes), err, LB_ERR_IO, "%s: write failed: %s",
                 wpath(w, i), strerror(errno));
    w->written[i] = true;
    return LB_OK;
}

/* tensor i from its fill callback, chunk by chunk */
static lb_status put_fill(lb_gguf_writer *w, uint64_t i, uint8_t *chunk, lb_error *err) {
    const wtensor *t  = &w->tensors[i];
    lb_status      st = seek_tensor(w, i, 0, err);
    const uint16_t t_shard = i < w->n_tensors ? w->shard[i] : 0;
    for (size_t done = 0; !st && done < t->nbytes;) {
        const size_t n = t->fill(t->user, chunk, FILL_CHUNK, done, err);
        if (n == 0 || n > t->nbytes - done) {
            if (n) lb_fail(err, LB_ERR_PARAM, "tensor '%s': filled past its end", t->name);
            return err && err->code ? err->code : LB_ERR_IO;
        }
        LB_RETURN_IF(!fwrite_all(out_of(w, t_shard)->f, chunk, n), err, LB_ERR_IO, "%s: write failed: %s",
                     wpath(w, i), strerror(errno));
        done += n;
    }
    if (!st) w->written[i] = true;
    return st;
}

lb_status lb_gguf_writer_finish(lb_gguf_writer *w, lb_error *err) {
    LB_RETURN_IF(!w->open, err, LB_ERR_PARAM, "gguf: finish before begin");
    lb_status st = LB_OK;
    for (uint64_t i = 0; !st && i < w->n_tensors; i++)
        if (!w->written[i]) st = lb_fail(err, LB_ERR_PARAM, "%s: tensor '%s' was never written", wpath(w, i),
                                         w->tensors[i].name);
    /* the padding after the last tensor: holes read as zeros */
    for (uint16_t s = 0; !st && s < w->n_shards; s++) {
        FILE *f = out_of(w, s)->f;
        if (fflush(f) != 0 || ftruncate(fileno(f), (off_t)w->data_end[s]) != 0)
            st = lb_fail(err, LB_ERR_IO, "%s: write failed: %s", w->partial ? w->partial_path : out_of(w, s)->path,
                         strerror(errno));
    }
    if (!st && w->partial) { /* the partial file becomes OUT */
        const char *path = w->final_path;
        st = lb_out_check(path, false, err);
        if (!st) {
            const bool ok = fsync(fileno(w->out.f)) == 0;
            const bool closed = fclose(w->out.f) == 0;
            w->out.f = NULL;
            w->open  = false;
            if (!ok || !closed) st = lb_fail(err, LB_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        if (!st && rename(w->partial_path, path) != 0)
            st = lb_fail(err, LB_ERR_IO, "%s: cannot rename %s to it: %s", path, w->partial_path, strerror(errno));
        if (!st) lb_fsync_parent(path);
    } else if (!st) { /* the shards after the first, then the first: a reader starts there */
        for (uint16_t s = w->n_shards; !st && s-- > 1;) st = lb_out_commit(&w->souts[s - 1], err);
        if (!st) st = lb_out_commit(&w->out, err);
        w->open = !!st;
    }
    if (st) lb_gguf_writer_abort(w);
    release(w);
    return st;
}

void lb_gguf_writer_abort(lb_gguf_writer *w) {
    if (w->open && w->partial && w->out.f) fclose(w->out.f); /* a partial file is kept: it is a state */
    else if (w->open)
        for (uint16_t s = 0; s < w->n_shards && (s == 0 || w->souts); s++) lb_out_abort(out_of(w, s)); /* uncommitted */
    free(w->partial_path), free(w->final_path);
    w->partial_path = w->final_path = NULL;
    w->partial                      = false;
    w->open = false;
    release(w);
}

lb_status lb_gguf_writer_write(lb_gguf_writer *w, const char *path, lb_error *err) {
    for (uint64_t i = 0; i < w->n_tensors; i++)
        LB_RETURN_IF(!w->tensors[i].data && !w->tensors[i].fill, err, LB_ERR_PARAM,
                     "%s: tensor '%s' has no data", path, w->tensors[i].name);
    uint8_t  *chunk = NULL;
    lb_status st    = lb_gguf_writer_begin(w, path, err);
    for (uint64_t i = 0; !st && i < w->n_tensors; i++) { /* begin wrote those with data */
        if (!w->tensors[i].fill) continue;
        if (!chunk && !(chunk = malloc(FILL_CHUNK))) {
            st = lb_fail(err, LB_ERR_NOMEM, "out of memory");
            break;
        }
        st = put_fill(w, i, chunk, err);
    }
    free(chunk);
    if (!st) return lb_gguf_writer_finish(w, err);
    lb_gguf_writer_abort(w);
    return st;
}
