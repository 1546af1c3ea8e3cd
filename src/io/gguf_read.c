/* GGUF reader: validates the whole header up front (counts, lengths, types, shapes,
 * offsets, alignment) so that everything it returns is safe to use. Tensor data is
 * not copied: infos point into the read-only mapping. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked_math.h"
#include "core/fail.h"
#include "core/strmap.h"
#include "lowbit/gguf.h"

/* A cursor over the source; every read is bounds-checked and names the offset. */
typedef struct {
    const uint8_t *p;
    size_t         size;
    size_t         pos;
    const char    *name;
    lb_error      *err;
} cursor;

static lb_status need(cursor *c, size_t n, const char *what) {
    if (c->size - c->pos < n)
        return lb_fail(c->err, LB_ERR_TRUNCATED,
                       "%s: truncated at offset %zu: %s needs %zu bytes, %zu remain", c->name,
                       c->pos, what, n, c->size - c->pos);
    return LB_OK;
}

static lb_status rd(cursor *c, void *dst, size_t n, const char *what) {
    lb_status st = need(c, n, what);
    if (st) return st;
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return LB_OK;
}

static lb_status rd_u32(cursor *c, uint32_t *v, const char *what) { return rd(c, v, 4, what); }
static lb_status rd_u64(cursor *c, uint64_t *v, const char *what) { return rd(c, v, 8, what); }

static lb_status rd_str(cursor *c, lb_gguf_str *s, const char *what) {
    uint64_t n;
    lb_status st = rd_u64(c, &n, what);
    if (st) return st;
    if (n > c->size - c->pos)
        return lb_fail(c->err, LB_ERR_CORRUPT,
                       "%s: %s at offset %zu has length %" PRIu64 ", past the end of the file",
                       c->name, what, c->pos - 8, n);
    s->p = (const char *)c->p + c->pos;
    s->n = n;
    c->pos += n;
    return LB_OK;
}

static size_t vtype_size(uint32_t t) {
    switch (t) {
    case LB_GGUF_U8: case LB_GGUF_I8: case LB_GGUF_BOOL:  return 1;
    case LB_GGUF_U16: case LB_GGUF_I16:                   return 2;
    case LB_GGUF_U32: case LB_GGUF_I32: case LB_GGUF_F32: return 4;
    case LB_GGUF_U64: case LB_GGUF_I64: case LB_GGUF_F64: return 8;
    default:                                              return 0;
    }
}

/* Decode one numeric scalar at p into kv->v. */
static void decode_scalar(lb_gguf_kv *kv, uint32_t t, const uint8_t *p) {
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
    float f32; uint64_t u64; int64_t i64; double f64;
    switch (t) {
    case LB_GGUF_U8:   memcpy(&u8, p, 1);  kv->v.u64 = u8;  break;
    case LB_GGUF_I8:   memcpy(&i8, p, 1);  kv->v.i64 = i8;  break;
    case LB_GGUF_U16:  memcpy(&u16, p, 2); kv->v.u64 = u16; break;
    case LB_GGUF_I16:  memcpy(&i16, p, 2); kv->v.i64 = i16; break;
    case LB_GGUF_U32:  memcpy(&u32, p, 4); kv->v.u64 = u32; break;
    case LB_GGUF_I32:  memcpy(&i32, p, 4); kv->v.i64 = i32; break;
    case LB_GGUF_F32:  memcpy(&f32, p, 4); kv->v.f64 = f32; break;
    case LB_GGUF_BOOL: kv->v.b = p[0] != 0; break;
    case LB_GGUF_U64:  memcpy(&u64, p, 8); kv->v.u64 = u64; break;
    case LB_GGUF_I64:  memcpy(&i64, p, 8); kv->v.i64 = i64; break;
    case LB_GGUF_F64:  memcpy(&f64, p, 8); kv->v.f64 = f64; break;
    default: break;
    }
}

static lb_status read_kv(cursor *c, lb_gguf_kv *kv) {
    lb_gguf_str key;
    uint32_t    t;
    lb_status   st = rd_str(c, &key, "key");
    if (st) return st;
    LB_RETURN_IF(key.n == 0 || memchr(key.p, 0, key.n), c->err, LB_ERR_CORRUPT,
                 "%s: empty key or key with a NUL byte at offset %zu", c->name, c->pos);
    kv->key = malloc(key.n + 1);
    LB_RETURN_IF(!kv->key, c->err, LB_ERR_NOMEM, "%s: out of memory", c->name);
    memcpy(kv->key, key.p, key.n);
    kv->key[key.n] = '\0';
    if ((st = rd_u32(c, &t, "value type"))) return st;
    LB_RETURN_IF(t >= LB_GGUF_VTYPE_COUNT, c->err, LB_ERR_CORRUPT,
                 "%s: key '%s' has unknown value type %u", c->name, kv->key, t);
    kv->type = (lb_gguf_vtype)t;
    if (t == LB_GGUF_STRING) return rd_str(c, &kv->str, kv->key);
    if (t != LB_GGUF_ARRAY) {
        const size_t n = vtype_size(t);
        if ((st = need(c, n, kv->key))) return st;
        decode_scalar(kv, t, c->p + c->pos);
        c->pos += n;
        return LB_OK;
    }
    uint32_t at;
    uint64_t an;
    if ((st = rd_u32(c, &at, "array type")) || (st = rd_u64(c, &an, "array length"))) return st;
    LB_RETURN_IF(at >= LB_GGUF_VTYPE_COUNT, c->err, LB_ERR_CORRUPT,
                 "%s: array '%s' has unknown element type %u", c->name, kv->key, at);
    LB_RETURN_IF(at == LB_GGUF_ARRAY, c->err, LB_ERR_UNSUPPORTED,
                 "%s: array '%s' holds arrays (nested arrays are not supported)", c->name,
                 kv->key);
    kv->arr_type = (lb_gguf_vtype)at;
    kv->arr_n    = an;
    const size_t remain = c->size - c->pos;
    if (at == LB_GGUF_STRING) {
        /* each string takes at least its 8-byte length */
        LB_RETURN_IF(an > remain / 8, c->err, LB_ERR_CORRUPT,
                     "%s: array '%s' claims %" PRIu64 " strings, more than the file holds",
                     c->name, kv->key, an);
        kv->arr_str = malloc((size_t)(an ? an : 1) * sizeof *kv->arr_str);
        LB_RETURN_IF(!kv->arr_str, c->err, LB_ERR_NOMEM, "%s: out of memory", c->name);
        for (uint64_t i = 0; i < an; i++)
            if ((st = rd_str(c, &kv->arr_str[i], kv->key))) return st;
        return LB_OK;
    }
    const size_t es = vtype_size(at);
    LB_RETURN_IF(an > remain / es, c->err, LB_ERR_CORRUPT,
                 "%s: array '%s' claims %" PRIu64 " elements, more than the file holds", c->name,
                 kv->key, an);
    kv->arr_data = c->p + c->pos;
    c->pos += (size_t)an * es;
    return LB_OK;
}

static lb_status read_tensor_info(cursor *c, lb_gguf_tensor_info *ti) {
    lb_gguf_str name;
    lb_status   st = rd_str(c, &name, "tensor name");
    if (st) return st;
    LB_RETURN_IF(name.n == 0 || name.n >= 64 || memchr(name.p, 0, name.n), c->err,
                 LB_ERR_CORRUPT, "%s: tensor name at offset %zu is empty or too long (%" PRIu64
                 " bytes, the limit is 63)", c->name, c->pos, name.n);
    ti->name = malloc(name.n + 1);
    LB_RETURN_IF(!ti->name, c->err, LB_ERR_NOMEM, "%s: out of memory", c->name);
    memcpy(ti->name, name.p, name.n);
    ti->name[name.n] = '\0';
    if ((st = rd_u32(c, &ti->n_dims, "n_dims"))) return st;
    LB_RETURN_IF(ti->n_dims == 0 || ti->n_dims > LB_GGUF_MAX_DIMS, c->err, LB_ERR_CORRUPT,
                 "%s: tensor '%s' has %u dimensions (1..%d allowed)", c->name, ti->name,
                 ti->n_dims, LB_GGUF_MAX_DIMS);
    int64_t nel = 1;
    for (uint32_t d = 0; d < LB_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < ti->n_dims && (st = rd_u64(c, &ne, "tensor dimension"))) return st;
        LB_RETURN_IF(ne == 0 || ne > (uint64_t)INT64_MAX || !lb_mul_i64(nel, (int64_t)ne, &nel),
                     c->err, LB_ERR_CORRUPT, "%s: tensor '%s' has an absurd dimension %" PRIu64,
                     c->name, ti->name, ne);
        ti->ne[d] = (int64_t)ne;
    }
    if ((st = rd_u32(c, &ti->ggml_type, "tensor type"))) return st;
    const int32_t bs = lb_ggml_type_block_size(ti->ggml_type);
    LB_RETURN_IF(bs == 0, c->err, LB_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown type id %u",
                 c->name, ti->name, ti->ggml_type);
    LB_RETURN_IF(ti->ne[0] % bs != 0, c->err, LB_ERR_CORRUPT,
                 "%s: tensor '%s' row of %" PRId64 " is not a multiple of %s's block size %d",
                 c->name, ti->name, ti->ne[0], lb_ggml_type_name(ti->ggml_type), bs);
    size_t nb;
    LB_RETURN_IF(!lb_mul_size((size_t)(nel / bs), lb_ggml_type_size(ti->ggml_type), &nb), c->err,
                 LB_ERR_CORRUPT, "%s: tensor '%s' is too large", c->name, ti->name);
    ti->nbytes = nb;
    return rd_u64(c, &ti->offset, "tensor offset");
}

static lb_status parse(lb_gguf *g, lb_error *err) {
    cursor    c = { g->src.data, g->src.size, 0, g->src.name, err };
    lb_status st;
    char      magic[4];
    uint64_t  n_tensors, n_kv;
    if ((st = rd(&c, magic, 4, "magic"))) return st;
    LB_RETURN_IF(memcmp(magic, "GGUF", 4) != 0, err, LB_ERR_FORMAT,
                 "%s: not a GGUF file (magic is not 'GGUF')", c.name);
    if ((st = rd_u32(&c, &g->version, "version"))) return st;
    LB_RETURN_IF(g->version != 2 && g->version != 3, err, LB_ERR_VERSION,
                 "%s: GGUF version %u is not supported (2 and 3 are)", c.name, g->version);
    if ((st = rd_u64(&c, &n_tensors, "tensor count")) || (st = rd_u64(&c, &n_kv, "kv count")))
        return st;
    /* a kv takes at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes; a tensor info 8+1+4+8+4+8 */
    const size_t remain = c.size - c.pos;
    LB_RETURN_IF(n_kv > remain / 14, err, LB_ERR_CORRUPT,
                 "%s: header claims %" PRIu64 " metadata pairs, more than the file can hold",
                 c.name, n_kv);
    LB_RETURN_IF(n_tensors > remain / 33, err, LB_ERR_CORRUPT,
                 "%s: header claims %" PRIu64 " tensors, more than the file can hold", c.name,
                 n_tensors);
    g->kv      = calloc((size_t)n_kv + 1, sizeof *g->kv);
    g->tensors = calloc((size_t)n_tensors + 1, sizeof *g->tensors);
    g->index   = calloc(2, sizeof *g->index); /* [0]: keys, [1]: tensors */
    LB_RETURN_IF(!g->kv || !g->tensors || !g->index, err, LB_ERR_NOMEM, "%s: out of memory", c.name);
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = (int64_t)i + 1; /* so close() frees what was read */
        if ((st = read_kv(&c, &g->kv[i]))) return st;
        const int64_t seen = lb_strmap_put(&g->index[0], g->kv[i].key, strlen(g->kv[i].key), (int64_t)i);
        LB_RETURN_IF(seen == -2, err, LB_ERR_NOMEM, "%s: out of memory", c.name);
        LB_RETURN_IF(seen >= 0, err, LB_ERR_CORRUPT, "%s: duplicate key '%s'", c.name, g->kv[i].key);
    }
    g->alignment = LB_GGUF_DEFAULT_ALIGNMENT;
    const int64_t ai = lb_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        const lb_gguf_kv *a = &g->kv[ai];
        LB_RETURN_IF(a->type != LB_GGUF_U32 || a->v.u64 == 0 || (a->v.u64 & (a->v.u64 - 1)) ||
                         a->v.u64 > (1u << 20),
                     err, LB_ERR_CORRUPT,
                     "%s: general.alignment must be a u32 power of two (at most 1 MiB)", c.name);
        g->alignment = (size_t)a->v.u64;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors = (int64_t)i + 1;
        if ((st = read_tensor_info(&c, &g->tensors[i]))) return st;
        const char   *name = g->tensors[i].name;
        const int64_t seen = lb_strmap_put(&g->index[1], name, strlen(name), (int64_t)i);
        LB_RETURN_IF(seen == -2, err, LB_ERR_NOMEM, "%s: out of memory", c.name);
        LB_RETURN_IF(seen >= 0, err, LB_ERR_CORRUPT, "%s: duplicate tensor '%s'", c.name, name);
    }
    size_t data_off;
    LB_RETURN_IF(!lb_align_size(c.pos, g->alignment, &data_off), err, LB_ERR_CORRUPT,
                 "%s: bad header size", c.name);
    g->data_offset = data_off;
    if (n_tensors > 0)
        LB_RETURN_IF(data_off > c.size, err, LB_ERR_TRUNCATED,
                     "%s: file ends before the tensor data section (offset %zu)", c.name, data_off);
    const size_t data_size = data_off <= c.size ? c.size - data_off : 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        lb_gguf_tensor_info *t = &g->tensors[i];
        LB_RETURN_IF(t->offset % g->alignment != 0, err, LB_ERR_CORRUPT,
                     "%s: tensor '%s' offset %" PRIu64 " is not a multiple of the alignment %zu",
                     c.name, t->name, t->offset, g->alignment);
        LB_RETURN_IF(t->offset > data_size || t->nbytes > data_size - t->offset, err,
                     LB_ERR_TRUNCATED,
                     "%s: tensor '%s' (%zu bytes at data offset %" PRIu64
                     ") ends past the end of the file",
                     c.name, t->name, t->nbytes, t->offset);
        t->data = g->src.data + data_off + t->offset;
    }
    return LB_OK;
}

static lb_status finish_open(lb_gguf *g, lb_gguf **out, lb_error *err) {
    lb_status st = parse(g, err);
    if (st != LB_OK) {
        lb_gguf_close(g);
        return st;
    }
    *out = g;
    return LB_OK;
}

lb_status lb_gguf_open(lb_gguf **out, const char *path, lb_error *err) {
    *out       = NULL;
    lb_gguf *g = calloc(1, sizeof *g);
    LB_RETURN_IF(!g, err, LB_ERR_NOMEM, "%s: out of memory", path);
    lb_status st = lb_source_open_file(&g->src, path, err);
    if (st != LB_OK) {
        free(g);
        return st;
    }
    return finish_open(g, out, err);
}

lb_status lb_gguf_open_memory(lb_gguf **out, const void *data, size_t size, const char *name,
                              lb_error *err) {
    *out       = NULL;
    lb_gguf *g = calloc(1, sizeof *g);
    LB_RETURN_IF(!g, err, LB_ERR_NOMEM, "out of memory");
    lb_status st = lb_source_open_memory(&g->src, data, size, name, err);
    if (st != LB_OK) {
        free(g);
        return st;
    }
    return finish_open(g, out, err);
}

/* shard k's path from the first's: PREFIX-00001-of-0000N.gguf (llama.cpp's llama_split_path) */
static bool shard_path(const char *first, int64_t k, int64_t count, char *out, size_t cap) {
    char         tail[64];
    const size_t n = strlen(first);
    snprintf(tail, sizeof tail, "-%05d-of-%05d.gguf", 1, (int)count);
    const size_t tl = strlen(tail);
    if (n < tl || strcmp(first + n - tl, tail) != 0) return false;
    return snprintf(out, cap, "%.*s-%05d-of-%05d.gguf", (int)(n - tl), first, (int)k + 1, (int)count) < (int)cap;
}

lb_status lb_gguf_open_split(lb_gguf **out, const char *path, lb_error *err) {
    lb_gguf *g;
    int64_t  count = 1, no = 0, total = 0;
    LB_TRY_RET(lb_gguf_open(&g, path, err));
    lb_status st = lb_gguf_get_int(g, "split.count", &count, err);
    if (st == LB_ERR_NOT_FOUND || (!st && count <= 1)) {
        *out = g;
        return LB_OK;
    }
    lb_gguf *last = g;
    char     sp[4096];
    if (st) goto fail;
    LB_GOTO_IF(count > 9999 || lb_gguf_get_int(g, "split.no", &no, NULL) || no != 0 ||
                   lb_gguf_get_int(g, "split.tensors.count", &total, NULL),
               err, LB_ERR_CORRUPT, "%s: not the first shard of a split model (split.no, split.count, "
               "split.tensors.count)", path);
    LB_GOTO_IF(!shard_path(path, 0, count, sp, sizeof sp), err, LB_ERR_PARAM,
               "%s: shard 1 of %lld must be named PREFIX-00001-of-%05lld.gguf", path, (long long)count,
               (long long)count);
    for (int64_t k = 1; k < count; k++) {
        lb_gguf *s;
        int64_t  sn = -1, sc = -1;
        shard_path(path, k, count, sp, sizeof sp);
        LB_TRY(lb_gguf_open(&s, sp, err));
        last->next_shard = s, last = s; /* closed with g from now on */
        LB_GOTO_IF(lb_gguf_get_int(s, "split.no", &sn, NULL) || sn != k || lb_gguf_get_int(s, "split.count", &sc, NULL) ||
                       sc != count,
                   err, LB_ERR_CORRUPT, "%s: not shard %lld of %lld (split.no %lld, split.count %lld)", sp,
                   (long long)k + 1, (long long)count, (long long)sn + 1, (long long)sc);
        lb_gguf_tensor_info *t = realloc(g->tensors, (size_t)(g->n_tensors + s->n_tensors + 1) * sizeof *t);
        LB_GOTO_IF(!t, err, LB_ERR_NOMEM, "out of memory");
        g->tensors = t;
        for (int64_t i = 0; i < s->n_tensors; i++) {
            lb_gguf_tensor_info *d = &g->tensors[g->n_tensors];
            *d                     = s->tensors[i];
            LB_GOTO_IF(!(d->name = strdup(s->tensors[i].name)), err, LB_ERR_NOMEM, "out of memory");
            g->n_tensors++;
            const int64_t seen = lb_strmap_put(&g->index[1], d->name, strlen(d->name), g->n_tensors - 1);
            LB_GOTO_IF(seen == -2, err, LB_ERR_NOMEM, "out of memory");
            LB_GOTO_IF(seen >= 0, err, LB_ERR_CORRUPT, "%s: tensor '%s' is in two shards", sp, d->name);
        }
    }
    LB_GOTO_IF(g->n_tensors != total, err, LB_ERR_CORRUPT, "%s: the shards hold %lld tensors, split.tensors.count "
               "says %lld", path, (long long)g->n_tensors, (long long)total);
    *out = g;
    return LB_OK;
fail:
    lb_gguf_close(g);
    *out = NULL;
    return st;
}

int32_t lb_gguf_tensor_shard(const lb_gguf *g, int64_t i) {
    int64_t first = g->n_tensors; /* the first shard's own tensors come first, then each next's */
    for (const lb_gguf *s = g->next_shard; s; s = s->next_shard) first -= s->n_tensors;
    if (i < first) return 0;
    int32_t k = 1;
    for (const lb_gguf *s = g->next_shard; s; s = s->next_shard, k++) {
        if (i < first + s->n_tensors) return k;
        first += s->n_tensors;
    }
    return 0;
}

void lb_gguf_close(lb_gguf *g) {
    if (!g) return;
    lb_gguf_close(g->next_shard);
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].arr_str);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    if (g->index) {
        lb_strmap_free(&g->index[0]);
        lb_strmap_free(&g->index[1]);
        free(g->index);
    }
    lb_source_close(&g->src);
    free(g);
}

int64_t lb_gguf_find_key(const lb_gguf *g, const char *key) {
    return g->index ? lb_strmap_get(&g->index[0], key, strlen(key)) : -1;
}

int64_t lb_gguf_find_tensor(const lb_gguf *g, const char *name) {
    return g->index ? lb_strmap_get(&g->index[1], name, strlen(name)) : -1;
}

static bool is_signed(lb_gguf_vtype t) {
    return t == LB_GGUF_I8 || t == LB_GGUF_I16 || t == LB_GGUF_I32 || t == LB_GGUF_I64;
}
static bool is_unsigned(lb_gguf_vtype t) {
    return t == LB_GGUF_U8 || t == LB_GGUF_U16 || t == LB_GGUF_U32 || t == LB_GGUF_U64;
}

static lb_status find(const lb_gguf *g, const char *key, const lb_gguf_kv **kv) {
    const int64_t i = lb_gguf_find_key(g, key);
    if (i < 0) return LB_ERR_NOT_FOUND;
    *kv = &g->kv[i];
    return LB_OK;
}

lb_status lb_gguf_get_int(const lb_gguf *g, const char *key, int64_t *out, lb_error *err) {
    const lb_gguf_kv *kv;
    if (find(g, key, &kv)) return LB_ERR_NOT_FOUND;
    if (is_signed(kv->type)) {
        *out = kv->v.i64;
        return LB_OK;
    }
    LB_RETURN_IF(!is_unsigned(kv->type) || kv->v.u64 > (uint64_t)INT64_MAX, err, LB_ERR_CORRUPT,
                 "%s: key '%s' should be an integer, it is %s", g->src.name, key,
                 lb_gguf_vtype_name(kv->type));
    *out = (int64_t)kv->v.u64;
    return LB_OK;
}

lb_status lb_gguf_get_float(const lb_gguf *g, const char *key, double *out, lb_error *err) {
    const lb_gguf_kv *kv;
    if (find(g, key, &kv)) return LB_ERR_NOT_FOUND;
    LB_RETURN_IF(kv->type != LB_GGUF_F32 && kv->type != LB_GGUF_F64, err, LB_ERR_CORRUPT,
                 "%s: key '%s' should be a float, it is %s", g->src.name, key,
                 lb_gguf_vtype_name(kv->type));
    *out = kv->v.f64;
    return LB_OK;
}

lb_status lb_gguf_get_bool(const lb_gguf *g, const char *key, bool *out, lb_error *err) {
    const lb_gguf_kv *kv;
    if (find(g, key, &kv)) return LB_ERR_NOT_FOUND;
    LB_RETURN_IF(kv->type != LB_GGUF_BOOL, err, LB_ERR_CORRUPT,
                 "%s: key '%s' should be a bool, it is %s", g->src.name, key,
                 lb_gguf_vtype_name(kv->type));
    *out = kv->v.b;
    return LB_OK;
}

lb_status lb_gguf_get_str(const lb_gguf *g, const char *key, lb_gguf_str *out, lb_error *err) {
    const lb_gguf_kv *kv;
    if (find(g, key, &kv)) return LB_ERR_NOT_FOUND;
    LB_RETURN_IF(kv->type != LB_GGUF_STRING, err, LB_ERR_CORRUPT,
                 "%s: key '%s' should be a string, it is %s", g->src.name, key,
                 lb_gguf_vtype_name(kv->type));
    *out = kv->str;
    return LB_OK;
}

lb_status lb_gguf_get_arr(const lb_gguf *g, const char *key, const lb_gguf_kv **out,
                          lb_error *err) {
    const lb_gguf_kv *kv;
    if (find(g, key, &kv)) return LB_ERR_NOT_FOUND;
    LB_RETURN_IF(kv->type != LB_GGUF_ARRAY, err, LB_ERR_CORRUPT,
                 "%s: key '%s' should be an array, it is %s", g->src.name, key,
                 lb_gguf_vtype_name(kv->type));
    *out = kv;
    return LB_OK;
}

int64_t lb_gguf_arr_int(const lb_gguf_kv *kv, uint64_t i) {
    lb_gguf_kv tmp;
    decode_scalar(&tmp, kv->arr_type, kv->arr_data + i * vtype_size(kv->arr_type));
    if (kv->arr_type == LB_GGUF_F32 || kv->arr_type == LB_GGUF_F64) { /* clamped; NaN is 0 */
        const double v = tmp.v.f64;
        return !(v == v) ? 0 : v >= 0x1p63 ? INT64_MAX : v <= -0x1p63 ? INT64_MIN : (int64_t)v;
    }
    if (kv->arr_type == LB_GGUF_BOOL) return tmp.v.b;
    return is_signed(kv->arr_type) ? tmp.v.i64 : (int64_t)tmp.v.u64;
}

double lb_gguf_arr_float(const lb_gguf_kv *kv, uint64_t i) {
    lb_gguf_kv tmp;
    decode_scalar(&tmp, kv->arr_type, kv->arr_data + i * vtype_size(kv->arr_type));
    if (kv->arr_type == LB_GGUF_F32 || kv->arr_type == LB_GGUF_F64) return tmp.v.f64;
    if (kv->arr_type == LB_GGUF_BOOL) return tmp.v.b;
    return is_signed(kv->arr_type) ? (double)tmp.v.i64 : (double)tmp.v.u64;
}

void lb_gguf_kv_format(const lb_gguf_kv *kv, char *buf, size_t cap) {
    switch (kv->type) {
    case LB_GGUF_STRING: {
        const int n = kv->str.n > 60 ? 60 : (int)kv->str.n;
        snprintf(buf, cap, "\"%.*s%s\"", n, kv->str.p, kv->str.n > 60 ? "..." : "");
        break;
    }
    case LB_GGUF_ARRAY:
        if (kv->arr_type == LB_GGUF_STRING && kv->arr_n > 0) {
            const int n = kv->arr_str[0].n > 20 ? 20 : (int)kv->arr_str[0].n;
            snprintf(buf, cap, "[%s x %" PRIu64 "] \"%.*s\", ...", lb_gguf_vtype_name(kv->arr_type),
                     kv->arr_n, n, kv->arr_str[0].p);
        } else if (kv->arr_n > 0) {
            snprintf(buf, cap, "[%s x %" PRIu64 "] %g, ...", lb_gguf_vtype_name(kv->arr_type),
                     kv->arr_n, lb_gguf_arr_float(kv, 0));
        } else {
            snprintf(buf, cap, "[%s x 0]", lb_gguf_vtype_name(kv->arr_type));
        }
        break;
    case LB_GGUF_F32: case LB_GGUF_F64: snprintf(buf, cap, "%g", kv->v.f64); break;
    case LB_GGUF_BOOL: snprintf(buf, cap, "%s", kv->v.b ? "true" : "false"); break;
    default:
        if (is_signed(kv->type)) snprintf(buf, cap, "%" PRId64, kv->v.i64);
        else snprintf(buf, cap, "%" PRIu64, kv->v.u64);
    }
}

bool lb_gguf_kv_same_value(const lb_gguf_kv *a, const lb_gguf_kv *b) {
    const bool fa = a->type == LB_GGUF_F32 || a->type == LB_GGUF_F64;
    const bool fb = b->type == LB_GGUF_F32 || b->type == LB_GGUF_F64;
    if (fa || fb) { /* at f32 precision when either is f32: a value lowbit keeps as a float */
        if (!fa || !fb) return false;
        if (a->type == LB_GGUF_F32 || b->type == LB_GGUF_F32) return (float)a->v.f64 == (float)b->v.f64;
        return a->v.f64 == b->v.f64;
    }
    const bool ia = is_signed(a->type) || is_unsigned(a->type);
    const bool ib = is_signed(b->type) || is_unsigned(b->type);
    if (ia || ib) {
        if (!ia || !ib) return false;
        const bool na = is_signed(a->type) && a->v.i64 < 0, nb = is_signed(b->type) && b->v.i64 < 0;
        return na == nb && a->v.u64 == b->v.u64; /* the same bits once the signs agree */
    }
    if (a->type != b->type) return false;
    switch (a->type) {
    case LB_GGUF_BOOL:   return a->v.b == b->v.b;
    case LB_GGUF_STRING: return a->str.n == b->str.n && !memcmp(a->str.p, b->str.p, a->str.n);
    case LB_GGUF_ARRAY:
        if (a->arr_type != b->arr_type || a->arr_n != b->arr_n) return false;
        if (a->arr_type != LB_GGUF_STRING)
            return a->arr_n == 0 || !memcmp(a->arr_data, b->arr_data, (size_t)a->arr_n * vtype_size(a->arr_type));
        for (uint64_t i = 0; i < a->arr_n; i++)
            if (a->arr_str[i].n != b->arr_str[i].n ||
                memcmp(a->arr_str[i].p, b->arr_str[i].p, (size_t)a->arr_str[i].n))
                return false;
        return true;
    default: return false;
    }
}
