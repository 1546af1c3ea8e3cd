/* GGUF reader and writer: a round trip through every value type and a few tensors
 * (layout, alignment, determinism, copy_kv), every truncation of that file, hand-built
 * corrupt headers, writer misuse, and the llama.cpp files in ../shared/data/golden. */
#include <dirent.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "test_util.h"

/* ---- byte images built by hand: little-endian fields appended to a buffer ---- */

typedef struct {
    uint8_t *p;
    size_t   n, cap;
} image;

static void img_bytes(image *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        assert_non_null(q);
        b->p   = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void img_le(image *b, uint64_t v, int width) {
    uint8_t le[8];
    for (int i = 0; i < width; i++) le[i] = (uint8_t)(v >> (8 * i));
    img_bytes(b, le, (size_t)width);
}

static void img_u32(image *b, uint32_t v) { img_le(b, v, 4); }
static void img_u64(image *b, uint64_t v) { img_le(b, v, 8); }

static void img_str(image *b, const char *s) {
    img_u64(b, strlen(s));
    img_bytes(b, s, strlen(s));
}

static void img_header(image *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b->n = 0;
    img_bytes(b, "GGUF", 4);
    img_u32(b, version);
    img_u64(b, n_tensors);
    img_u64(b, n_kv);
}

static void img_kv_u32(image *b, const char *key, uint32_t v) {
    img_str(b, key);
    img_u32(b, LB_GGUF_U32);
    img_u32(b, v);
}

static void img_tensor_info(image *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                            uint32_t ggml_type, uint64_t offset) {
    img_str(b, name);
    img_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) img_u64(b, ne[d]);
    img_u32(b, ggml_type);
    img_u64(b, offset);
}

/* Zero padding to the default alignment, then n bytes of tensor data. */
static void img_data(image *b, size_t n) {
    while (b->n % LB_GGUF_DEFAULT_ALIGNMENT) img_le(b, 0, 1);
    for (size_t i = 0; i < n; i++) img_le(b, (uint8_t)i, 1);
}

/* A whole file holding one tensor, n_data bytes in its data section. */
static void one_tensor(image *b, uint32_t n_dims, const uint64_t *ne, uint32_t ggml_type,
                       uint64_t offset, size_t n_data) {
    img_header(b, 3, 1, 0);
    img_tensor_info(b, "t", n_dims, ne, ggml_type, offset);
    img_data(b, n_data);
}

/* Open n bytes from an exactly-sized heap copy (so ASan sees any read past the end);
 * closes the file when it opened. */
static lb_status open_bytes(const uint8_t *p, size_t n, lb_error *err) {
    uint8_t *copy = n ? malloc(n) : NULL;
    if (n) {
        assert_non_null(copy);
        memcpy(copy, p, n);
    }
    memset(err, 0, sizeof *err);
    lb_gguf  *g  = NULL;
    lb_status st = lb_gguf_open_memory(&g, copy, n, "image", err);
    if (st == LB_OK) {
        assert_non_null(g);
        lb_gguf_close(g);
    } else {
        assert_null(g);
    }
    free(copy);
    return st;
}

/* The image must fail with `want`, and the message must name the problem. */
static void expect_fail(const image *b, lb_status want, const char *fragment) {
    lb_error        err;
    const lb_status st = open_bytes(b->p, b->n, &err);
    if (st != want || !strstr(err.msg, fragment))
        print_message("# expected %s '%s', got %s: %s\n", lb_status_str(want), fragment,
                      lb_status_str(st), err.msg);
    assert_int_equal(st, want);
    assert_int_equal(err.code, want);
    assert_non_null(strstr(err.msg, fragment));
}

static void expect_ok(const image *b) {
    lb_error        err;
    const lb_status st = open_bytes(b->p, b->n, &err);
    if (st != LB_OK) print_message("# %s\n", err.msg);
    assert_int_equal(st, LB_OK);
}

/* ---- the round-trip file ---- */

static const char *const k_arr_str[] = { "alpha", "", "\xce\xb2" "eta" };
static const float       k_arr_f32[] = { 1.5f, -2.25f, 3.4e38f, 1e-45f };
static const int32_t     k_arr_i32[] = { INT32_MIN, -1, 0, INT32_MAX };
static const uint8_t     k_arr_u8[]  = { 0, 1, 255 };
static const int8_t      k_arr_i8[]  = { -128, 0, 127 };
static const uint16_t    k_arr_u16[] = { 0, 65535 };
static const int16_t     k_arr_i16[] = { -32768, 32767 };
static const uint64_t    k_arr_u64[] = { UINT64_MAX, 1 };
static const int64_t     k_arr_i64[] = { INT64_MIN, 7 };
static const double      k_arr_f64[] = { 0.1, -1e300 };
static const uint8_t     k_arr_bool[] = { 1, 0, 1 };
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Every key, in the order it is set. */
static const char *const k_keys[] = {
    "test.u32",       "test.i32",       "test.u64",        "test.f32",       "test.bool.true",
    "test.bool.false", "test.str",      "test.str.empty",  "test.arr.str",   "test.arr.f32",
    "test.arr.i32",   "test.arr.u8",    "test.arr.i8",     "test.arr.u16",   "test.arr.i16",
    "test.arr.u64",   "test.arr.i64",   "test.arr.f64",    "test.arr.bool",  "test.arr.empty",
    "test.arr.str.empty", "test.u8",    "test.i8",         "test.u16",       "test.i16",
    "test.i64",       "test.f64",
};

/* Tensor data. The q8_0 tensor is last and 544 = 17 * 32 bytes long, so the file ends
 * exactly where its data ends (no trailing padding): every shorter prefix is invalid. */
typedef struct {
    float    w[5][3];        /* "w.f32", f32, ne [3, 5] */
    uint16_t h[7];           /* "b.f16", f16, ne [7] */
    uint8_t  q[16 * 34];     /* "q.q8_0", q8_0, ne [64, 8]: 16 blocks of 34 bytes */
} tensor_data;

static void fill_data(tensor_data *d) {
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++) d->w[i][j] = (float)(i * 3 + j) * 0.5f - 3.0f;
    for (int i = 0; i < 7; i++) d->h[i] = lb_f32_to_f16((float)i / 4.0f - 1.0f);
    for (size_t i = 0; i < sizeof d->q; i++) d->q[i] = (uint8_t)(i * 37 + 11);
}

/* A scalar kv of a type the writer has no setter for, for copy_kv. */
static lb_gguf_kv scalar_kv(const char *key, lb_gguf_vtype t) {
    lb_gguf_kv kv;
    memset(&kv, 0, sizeof kv);
    kv.key  = (char *)key;
    kv.type = t;
    return kv;
}

static lb_gguf_writer *build_writer(const tensor_data *d) {
    lb_gguf_writer *w = lb_gguf_writer_create();
    assert_non_null(w);
    assert_int_equal(lb_gguf_writer_set_u32(w, "test.u32", 4000000000u), LB_OK);
    assert_int_equal(lb_gguf_writer_set_i32(w, "test.i32", -2000000000), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u64(w, "test.u64", 0xfedcba9876543210ull), LB_OK);
    assert_int_equal(lb_gguf_writer_set_f32(w, "test.f32", -1.5e-3f), LB_OK);
    assert_int_equal(lb_gguf_writer_set_bool(w, "test.bool.true", true), LB_OK);
    assert_int_equal(lb_gguf_writer_set_bool(w, "test.bool.false", false), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "test.str", "hello, gguf \xe2\x9c\x93"), LB_OK);
    assert_int_equal(lb_gguf_writer_set_str(w, "test.str.empty", ""), LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr_str(w, "test.arr.str", k_arr_str, N_OF(k_arr_str)),
                     LB_OK);
    static const struct {
        const char   *key;
        lb_gguf_vtype t;
        const void   *data;
        uint64_t      n;
    } arrs[] = {
        { "test.arr.f32", LB_GGUF_F32, k_arr_f32, N_OF(k_arr_f32) },
        { "test.arr.i32", LB_GGUF_I32, k_arr_i32, N_OF(k_arr_i32) },
        { "test.arr.u8", LB_GGUF_U8, k_arr_u8, N_OF(k_arr_u8) },
        { "test.arr.i8", LB_GGUF_I8, k_arr_i8, N_OF(k_arr_i8) },
        { "test.arr.u16", LB_GGUF_U16, k_arr_u16, N_OF(k_arr_u16) },
        { "test.arr.i16", LB_GGUF_I16, k_arr_i16, N_OF(k_arr_i16) },
        { "test.arr.u64", LB_GGUF_U64, k_arr_u64, N_OF(k_arr_u64) },
        { "test.arr.i64", LB_GGUF_I64, k_arr_i64, N_OF(k_arr_i64) },
        { "test.arr.f64", LB_GGUF_F64, k_arr_f64, N_OF(k_arr_f64) },
        { "test.arr.bool", LB_GGUF_BOOL, k_arr_bool, N_OF(k_arr_bool) },
        { "test.arr.empty", LB_GGUF_I32, NULL, 0 },
    };
    for (size_t i = 0; i < N_OF(arrs); i++)
        assert_int_equal(lb_gguf_writer_set_arr(w, arrs[i].key, arrs[i].t, arrs[i].data, arrs[i].n),
                         LB_OK);
    assert_int_equal(lb_gguf_writer_set_arr_str(w, "test.arr.str.empty", NULL, 0), LB_OK);
    /* the narrow and 64-bit signed scalars and f64 have no setter: copy_kv writes them */
    lb_gguf_kv kv = scalar_kv("test.u8", LB_GGUF_U8);
    kv.v.u64      = 200;
    assert_int_equal(lb_gguf_writer_copy_kv(w, &kv), LB_OK);
    kv       = scalar_kv("test.i8", LB_GGUF_I8);
    kv.v.i64 = -100;
    assert_int_equal(lb_gguf_writer_copy_kv(w, &kv), LB_OK);
    kv       = scalar_kv("test.u16", LB_GGUF_U16);
    kv.v.u64 = 60000;
    assert_int_equal(lb_gguf_writer_copy_kv(w, &kv), LB_OK);
    kv       = scalar_kv("test.i16", LB_GGUF_I16);
    kv.v.i64 = -30000;
    assert_int_equal(lb_gguf_writer_copy_kv(w, &kv), LB_OK);
    kv       = scalar_kv("test.i64", LB_GGUF_I64);
    kv.v.i64 = INT64_MIN + 1;
    assert_int_equal(lb_gguf_writer_copy_kv(w, &kv), LB_OK);
    kv       = scalar_kv("test.f64", LB_GGUF_F64);
    kv.v.f64 = 0.1;
    assert_int_equal(lb_gguf_writer_copy_kv(w, &kv), LB_OK);

    lb_error      err     = { 0 };
    const int64_t ne_w[2] = { 3, 5 }, ne_h[1] = { 7 }, ne_q[2] = { 64, 8 };
    assert_int_equal(lb_gguf_writer_add_tensor(w, "w.f32", LB_GGML_F32, 2, ne_w, d->w,
                                               sizeof d->w, &err), LB_OK);
    assert_int_equal(lb_gguf_writer_add_tensor(w, "b.f16", LB_GGML_F16, 1, ne_h, d->h,
                                               sizeof d->h, &err), LB_OK);
    assert_int_equal(lb_gguf_writer_add_tensor(w, "q.q8_0", LB_GGML_Q8_0, 2, ne_q, d->q,
                                               sizeof d->q, &err), LB_OK);
    return w;
}

/* Write the round-trip file to path and return its bytes (caller frees). */
static uint8_t *write_round_trip(const tensor_data *d, const char *path, size_t *size) {
    lb_error        err = { 0 };
    lb_gguf_writer *w   = build_writer(d);
    assert_int_equal(lb_gguf_writer_write(w, path, &err), LB_OK);
    lb_gguf_writer_free(w);
    char *bytes;
    assert_int_equal(lb_read_file(path, &bytes, size, &err), LB_OK);
    return (uint8_t *)bytes;
}

static const lb_gguf_kv *kv_of(const lb_gguf *g, const char *key, lb_gguf_vtype t) {
    const int64_t i = lb_gguf_find_key(g, key);
    if (i < 0) print_message("# key %s is missing\n", key);
    assert_true(i >= 0);
    assert_int_equal(g->kv[i].type, t);
    return &g->kv[i];
}

static void assert_gstr(lb_gguf_str s, const char *want) {
    assert_int_equal(s.n, strlen(want));
    if (s.n) assert_memory_equal(s.p, want, s.n);
}

/* A numeric array kv holding exactly n elements of type t equal to want. */
static const lb_gguf_kv *check_arr(const lb_gguf *g, const char *key, lb_gguf_vtype t,
                                   const void *want, uint64_t n, size_t elem) {
    lb_error          err = { 0 };
    const lb_gguf_kv *kv  = kv_of(g, key, LB_GGUF_ARRAY);
    const lb_gguf_kv *got;
    assert_int_equal(lb_gguf_get_arr(g, key, &got, &err), LB_OK);
    assert_ptr_equal(got, kv);
    assert_int_equal(kv->arr_type, t);
    assert_int_equal(kv->arr_n, n);
    if (n) assert_memory_equal(kv->arr_data, want, (size_t)n * elem);
    return kv;
}

static void check_tensor(const lb_gguf *g, const char *name, uint32_t ggml_type, uint32_t n_dims,
                         const int64_t *ne, const void *data, size_t nbytes) {
    const int64_t i = lb_gguf_find_tensor(g, name);
    assert_true(i >= 0);
    const lb_gguf_tensor_info *t = &g->tensors[i];
    assert_string_equal(t->name, name);
    assert_int_equal(t->ggml_type, ggml_type);
    assert_int_equal(t->n_dims, n_dims);
    for (uint32_t d = 0; d < LB_GGUF_MAX_DIMS; d++)
        assert_int_equal(t->ne[d], d < n_dims ? ne[d] : 1);
    assert_int_equal(t->nbytes, nbytes);
    assert_int_equal(t->offset % 32, 0);
    assert_ptr_equal(t->data, g->src.data + g->data_offset + t->offset);
    assert_true(g->data_offset + t->offset + nbytes <= g->src.size);
    assert_memory_equal(t->data, data, nbytes);
}

/* Everything build_writer put in, as the reader sees it. */
static void check_round_trip(const lb_gguf *g, const tensor_data *d) {
    lb_error err = { 0 };
    assert_int_equal(g->version, 3);
    assert_int_equal(g->alignment, 32);
    assert_int_equal(g->data_offset % 32, 0);
    assert_int_equal(g->n_kv, N_OF(k_keys));
    for (size_t i = 0; i < N_OF(k_keys); i++) assert_string_equal(g->kv[i].key, k_keys[i]);

    /* scalars, raw and through the getters */
    int64_t     iv;
    double      fv;
    bool        bv;
    lb_gguf_str sv;
    assert_int_equal(kv_of(g, "test.u32", LB_GGUF_U32)->v.u64, 4000000000u);
    assert_int_equal(lb_gguf_get_int(g, "test.u32", &iv, &err), LB_OK);
    assert_true(iv == 4000000000);
    assert_true(kv_of(g, "test.i32", LB_GGUF_I32)->v.i64 == -2000000000);
    assert_true(kv_of(g, "test.u64", LB_GGUF_U64)->v.u64 == 0xfedcba9876543210ull);
    assert_int_equal(lb_gguf_get_int(g, "test.u64", &iv, &err), LB_ERR_CORRUPT); /* > INT64_MAX */
    assert_true(kv_of(g, "test.f32", LB_GGUF_F32)->v.f64 == (double)-1.5e-3f);
    assert_int_equal(lb_gguf_get_float(g, "test.f32", &fv, &err), LB_OK);
    assert_true(fv == (double)-1.5e-3f);
    assert_true(kv_of(g, "test.bool.true", LB_GGUF_BOOL)->v.b);
    assert_false(kv_of(g, "test.bool.false", LB_GGUF_BOOL)->v.b);
    assert_int_equal(lb_gguf_get_bool(g, "test.bool.true", &bv, &err), LB_OK);
    assert_true(bv);
    assert_gstr(kv_of(g, "test.str", LB_GGUF_STRING)->str, "hello, gguf \xe2\x9c\x93");
    assert_int_equal(lb_gguf_get_str(g, "test.str.empty", &sv, &err), LB_OK);
    assert_gstr(sv, "");
    assert_int_equal(kv_of(g, "test.u8", LB_GGUF_U8)->v.u64, 200);
    assert_true(kv_of(g, "test.i8", LB_GGUF_I8)->v.i64 == -100);
    assert_int_equal(kv_of(g, "test.u16", LB_GGUF_U16)->v.u64, 60000);
    assert_true(kv_of(g, "test.i16", LB_GGUF_I16)->v.i64 == -30000);
    assert_int_equal(lb_gguf_get_int(g, "test.i16", &iv, &err), LB_OK);
    assert_true(iv == -30000);
    assert_true(kv_of(g, "test.i64", LB_GGUF_I64)->v.i64 == INT64_MIN + 1);
    assert_true(kv_of(g, "test.f64", LB_GGUF_F64)->v.f64 == 0.1);
    assert_int_equal(lb_gguf_get_float(g, "test.f64", &fv, &err), LB_OK);
    assert_true(fv == 0.1);
    /* wrong kind and absent keys */
    assert_int_equal(lb_gguf_get_int(g, "test.str", &iv, &err), LB_ERR_CORRUPT);
    assert_int_equal(lb_gguf_get_str(g, "test.u32", &sv, &err), LB_ERR_CORRUPT);
    assert_int_equal(lb_gguf_get_int(g, "test.absent", &iv, &err), LB_ERR_NOT_FOUND);

    /* arrays */
    const lb_gguf_kv *kv = kv_of(g, "test.arr.str", LB_GGUF_ARRAY);
    assert_int_equal(kv->arr_type, LB_GGUF_STRING);
    assert_int_equal(kv->arr_n, N_OF(k_arr_str));
    for (size_t i = 0; i < N_OF(k_arr_str); i++) assert_gstr(kv->arr_str[i], k_arr_str[i]);
    kv = check_arr(g, "test.arr.f32", LB_GGUF_F32, k_arr_f32, N_OF(k_arr_f32), 4);
    for (size_t i = 0; i < N_OF(k_arr_f32); i++)
        assert_true(lb_gguf_arr_float(kv, i) == (double)k_arr_f32[i]);
    kv = check_arr(g, "test.arr.i32", LB_GGUF_I32, k_arr_i32, N_OF(k_arr_i32), 4);
    for (size_t i = 0; i < N_OF(k_arr_i32); i++) assert_true(lb_gguf_arr_int(kv, i) == k_arr_i32[i]);
    kv = check_arr(g, "test.arr.u8", LB_GGUF_U8, k_arr_u8, N_OF(k_arr_u8), 1);
    assert_true(lb_gguf_arr_int(kv, 2) == 255);
    kv = check_arr(g, "test.arr.i8", LB_GGUF_I8, k_arr_i8, N_OF(k_arr_i8), 1);
    assert_true(lb_gguf_arr_int(kv, 0) == -128);
    kv = check_arr(g, "test.arr.u16", LB_GGUF_U16, k_arr_u16, N_OF(k_arr_u16), 2);
    assert_true(lb_gguf_arr_int(kv, 1) == 65535);
    kv = check_arr(g, "test.arr.i16", LB_GGUF_I16, k_arr_i16, N_OF(k_arr_i16), 2);
    assert_true(lb_gguf_arr_int(kv, 0) == -32768);
    check_arr(g, "test.arr.u64", LB_GGUF_U64, k_arr_u64, N_OF(k_arr_u64), 8);
    kv = check_arr(g, "test.arr.i64", LB_GGUF_I64, k_arr_i64, N_OF(k_arr_i64), 8);
    assert_true(lb_gguf_arr_int(kv, 0) == INT64_MIN);
    kv = check_arr(g, "test.arr.f64", LB_GGUF_F64, k_arr_f64, N_OF(k_arr_f64), 8);
    assert_true(lb_gguf_arr_float(kv, 1) == -1e300);
    kv = check_arr(g, "test.arr.bool", LB_GGUF_BOOL, k_arr_bool, N_OF(k_arr_bool), 1);
    assert_true(lb_gguf_arr_int(kv, 0) == 1 && lb_gguf_arr_int(kv, 1) == 0);
    check_arr(g, "test.arr.empty", LB_GGUF_I32, NULL, 0, 4);
    kv = kv_of(g, "test.arr.str.empty", LB_GGUF_ARRAY);
    assert_int_equal(kv->arr_type, LB_GGUF_STRING);
    assert_int_equal(kv->arr_n, 0);

    /* tensors, in the order added, each 32-byte aligned */
    assert_int_equal(g->n_tensors, 3);
    assert_string_equal(g->tensors[0].name, "w.f32");
    assert_string_equal(g->tensors[1].name, "b.f16");
    assert_string_equal(g->tensors[2].name, "q.q8_0");
    const int64_t ne_w[2] = { 3, 5 }, ne_h[1] = { 7 }, ne_q[2] = { 64, 8 };
    check_tensor(g, "w.f32", LB_GGML_F32, 2, ne_w, d->w, 60);
    check_tensor(g, "b.f16", LB_GGML_F16, 1, ne_h, d->h, 14);
    check_tensor(g, "q.q8_0", LB_GGML_Q8_0, 2, ne_q, d->q, 544);
    assert_int_equal(g->tensors[0].offset, 0);
    assert_int_equal(g->tensors[1].offset, 64);
    assert_int_equal(g->tensors[2].offset, 96);
    assert_int_equal(g->src.size, g->data_offset + 96 + 544);
    assert_int_equal(lb_gguf_find_tensor(g, "absent"), -1);
}

static void test_round_trip(void **state) {
    (void)state;
    tensor_data d;
    fill_data(&d);
    char   a[256], b[256], c[256];
    size_t na, nb, nc;
    tmp_path("rt-a.gguf", a, sizeof a);
    tmp_path("rt-b.gguf", b, sizeof b);
    tmp_path("rt-c.gguf", c, sizeof c);
    uint8_t *ba = write_round_trip(&d, a, &na);
    uint8_t *bb = write_round_trip(&d, b, &nb);
    /* deterministic: the same content gives the same bytes */
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    /* the fixed header */
    assert_memory_equal(ba, "GGUF\x03\0\0\0\x03\0\0\0\0\0\0\0", 16);
    assert_int_equal(ba[16], N_OF(k_keys));

    lb_error err = { 0 };
    lb_gguf *g, *gm;
    assert_int_equal(lb_gguf_open(&g, a, &err), LB_OK);
    check_round_trip(g, &d);
    assert_int_equal(lb_gguf_open_memory(&gm, ba, na, "round trip", &err), LB_OK);
    check_round_trip(gm, &d);
    assert_int_equal(gm->data_offset, g->data_offset);
    lb_gguf_close(gm);

    /* copy every kv and tensor of the opened file: the copy is the same file */
    lb_gguf_writer *w = lb_gguf_writer_create();
    assert_non_null(w);
    for (int64_t i = 0; i < g->n_kv; i++) assert_int_equal(lb_gguf_writer_copy_kv(w, &g->kv[i]), LB_OK);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        assert_int_equal(lb_gguf_writer_add_tensor(w, t->name, t->ggml_type, t->n_dims, t->ne,
                                                   t->data, t->nbytes, &err), LB_OK);
    }
    assert_int_equal(lb_gguf_writer_write(w, c, &err), LB_OK);
    lb_gguf_writer_free(w);
    lb_gguf_close(g);
    char *bc;
    assert_int_equal(lb_read_file(c, &bc, &nc, &err), LB_OK);
    assert_int_equal(nc, na);
    assert_memory_equal(bc, ba, na);

    free(ba);
    free(bb);
    free(bc);
    remove(a);
    remove(b);
    remove(c);
}

/* Every proper prefix of a valid file fails cleanly. */
static void test_every_truncation(void **state) {
    (void)state;
    tensor_data d;
    fill_data(&d);
    char   path[256];
    size_t size;
    uint8_t *bytes = write_round_trip(&d, tmp_path("trunc.gguf", path, sizeof path), &size);
    remove(path);
    lb_error err;
    assert_int_equal(open_bytes(bytes, size, &err), LB_OK);
    lb_gguf *g;
    assert_int_equal(lb_gguf_open_memory(&g, bytes, size, "full", &err), LB_OK);
    const size_t data_offset = g->data_offset;
    lb_gguf_close(g);
    for (size_t len = 0; len < size; len++) {
        const lb_status st = open_bytes(bytes, len, &err);
        if (st == LB_OK || err.msg[0] == '\0' ||
            (st != LB_ERR_TRUNCATED && (st != LB_ERR_CORRUPT || len >= data_offset)))
            print_message("# prefix %zu of %zu: %s: %s\n", len, size, lb_status_str(st), err.msg);
        assert_int_not_equal(st, LB_OK);
        assert_true(err.msg[0] != '\0');
        /* in the header a length can run past the end (corrupt); in the data, truncated */
        if (len >= data_offset) assert_int_equal(st, LB_ERR_TRUNCATED);
        else assert_true(st == LB_ERR_TRUNCATED || st == LB_ERR_CORRUPT);
    }
    free(bytes);
}

static void test_corrupt_header(void **state) {
    (void)state;
    image          b     = { 0 };
    const uint64_t ne[1] = { 8 };

    /* the baseline the cases below change: one kv, one f32 tensor; v2 and v3 both read */
    for (uint32_t version = 2; version <= 3; version++) {
        img_header(&b, version, 1, 1);
        img_kv_u32(&b, "k", 1);
        img_tensor_info(&b, "t", 1, ne, LB_GGML_F32, 0);
        img_data(&b, 32);
        expect_ok(&b);
    }

    img_header(&b, 3, 0, 0);
    memcpy(b.p, "GGML", 4);
    expect_fail(&b, LB_ERR_FORMAT, "not a GGUF file");

    img_header(&b, 1, 0, 0);
    expect_fail(&b, LB_ERR_VERSION, "version 1");
    img_header(&b, 99, 0, 0);
    expect_fail(&b, LB_ERR_VERSION, "version 99");

    /* counts far beyond what the file can hold: rejected before any allocation */
    img_header(&b, 3, 0, 1ull << 62);
    img_kv_u32(&b, "k", 1);
    expect_fail(&b, LB_ERR_CORRUPT, "metadata pairs");
    img_header(&b, 3, 1ull << 62, 0);
    img_tensor_info(&b, "t", 1, ne, LB_GGML_F32, 0);
    img_data(&b, 32);
    expect_fail(&b, LB_ERR_CORRUPT, "tensors");
    /* and counts just beyond it: 2 kv claimed, 1 present (a kv takes at least 14 bytes) */
    img_header(&b, 3, 0, 2);
    img_kv_u32(&b, "k", 1);
    expect_fail(&b, LB_ERR_CORRUPT, "2 metadata pairs");
    img_header(&b, 3, 4, 0); /* 4 tensors claimed, 1 present (an info takes at least 33) */
    img_tensor_info(&b, "t", 1, ne, LB_GGML_F32, 0);
    img_data(&b, 64);
    expect_fail(&b, LB_ERR_CORRUPT, "4 tensors");
    free(b.p);
}

static void test_corrupt_kv(void **state) {
    (void)state;
    image b = { 0 };

    img_header(&b, 3, 0, 1); /* key length 2^63 */
    img_u64(&b, 1ull << 63);
    img_bytes(&b, "key", 3);
    img_u32(&b, LB_GGUF_U32);
    img_u32(&b, 1);
    expect_fail(&b, LB_ERR_CORRUPT, "has length 9223372036854775808");

    img_header(&b, 3, 0, 1); /* value string length 2^63 */
    img_str(&b, "k");
    img_u32(&b, LB_GGUF_STRING);
    img_u64(&b, 1ull << 63);
    img_bytes(&b, "abc", 3);
    expect_fail(&b, LB_ERR_CORRUPT, "has length");

    img_header(&b, 3, 0, 1); /* array of 2^60 u8 */
    img_str(&b, "k");
    img_u32(&b, LB_GGUF_ARRAY);
    img_u32(&b, LB_GGUF_U8);
    img_u64(&b, 1ull << 60);
    img_bytes(&b, "abcdefgh", 8);
    expect_fail(&b, LB_ERR_CORRUPT, "1152921504606846976 elements");

    img_header(&b, 3, 0, 1); /* array of 2^60 strings */
    img_str(&b, "k");
    img_u32(&b, LB_GGUF_ARRAY);
    img_u32(&b, LB_GGUF_STRING);
    img_u64(&b, 1ull << 60);
    img_str(&b, "abc");
    expect_fail(&b, LB_ERR_CORRUPT, "1152921504606846976 strings");

    img_header(&b, 3, 0, 1); /* 100 strings claimed, one present: counts are checked first */
    img_str(&b, "k");
    img_u32(&b, LB_GGUF_ARRAY);
    img_u32(&b, LB_GGUF_STRING);
    img_u64(&b, 100);
    char long_str[201];
    memset(long_str, 's', 200);
    long_str[200] = '\0';
    img_str(&b, long_str);
    expect_fail(&b, LB_ERR_CORRUPT, "100 strings");

    img_header(&b, 3, 0, 1); /* 3 u32 claimed, 2 present */
    img_str(&b, "k");
    img_u32(&b, LB_GGUF_ARRAY);
    img_u32(&b, LB_GGUF_U32);
    img_u64(&b, 3);
    img_u32(&b, 1);
    img_u32(&b, 2);
    expect_fail(&b, LB_ERR_CORRUPT, "3 elements");

    img_header(&b, 3, 0, 1); /* value type 77 */
    img_str(&b, "k");
    img_u32(&b, 77);
    img_u32(&b, 1);
    expect_fail(&b, LB_ERR_CORRUPT, "unknown value type 77");

    img_header(&b, 3, 0, 1); /* array element type 77 */
    img_str(&b, "k");
    img_u32(&b, LB_GGUF_ARRAY);
    img_u32(&b, 77);
    img_u64(&b, 1);
    img_u32(&b, 1);
    expect_fail(&b, LB_ERR_CORRUPT, "unknown element type 77");

    img_header(&b, 3, 0, 1); /* an array of arrays: [[1]] */
    img_str(&b, "k");
    img_u32(&b, LB_GGUF_ARRAY);
    img_u32(&b, LB_GGUF_ARRAY);
    img_u64(&b, 1);
    img_u32(&b, LB_GGUF_U32);
    img_u64(&b, 1);
    img_u32(&b, 1);
    expect_fail(&b, LB_ERR_UNSUPPORTED, "nested arrays");

    img_header(&b, 3, 0, 1); /* empty key */
    img_str(&b, "");
    img_u32(&b, LB_GGUF_U32);
    img_u32(&b, 1);
    expect_fail(&b, LB_ERR_CORRUPT, "empty key");

    img_header(&b, 3, 0, 3); /* the same key twice */
    img_kv_u32(&b, "a", 1);
    img_kv_u32(&b, "b", 2);
    img_kv_u32(&b, "a", 3);
    expect_fail(&b, LB_ERR_CORRUPT, "duplicate key 'a'");

    img_header(&b, 3, 0, 1);
    img_kv_u32(&b, "general.alignment", 64);
    expect_ok(&b);
    img_header(&b, 3, 0, 1);
    img_kv_u32(&b, "general.alignment", 3);
    expect_fail(&b, LB_ERR_CORRUPT, "general.alignment");
    img_header(&b, 3, 0, 1);
    img_kv_u32(&b, "general.alignment", 0);
    expect_fail(&b, LB_ERR_CORRUPT, "general.alignment");
    img_header(&b, 3, 0, 1); /* right value, wrong type */
    img_str(&b, "general.alignment");
    img_u32(&b, LB_GGUF_U64);
    img_u64(&b, 32);
    expect_fail(&b, LB_ERR_CORRUPT, "general.alignment");
    free(b.p);
}

static void test_corrupt_tensor_info(void **state) {
    (void)state;
    image b = { 0 };

    const uint64_t ne8[1] = { 8 }; /* the baseline: 8 f32 = 32 bytes at offset 0 */
    one_tensor(&b, 1, ne8, LB_GGML_F32, 0, 32);
    expect_ok(&b);

    const uint64_t five[5] = { 8, 1, 1, 1, 1 };
    one_tensor(&b, 5, five, LB_GGML_F32, 0, 32);
    expect_fail(&b, LB_ERR_CORRUPT, "5 dimensions");
    one_tensor(&b, 0, ne8, LB_GGML_F32, 0, 32);
    expect_fail(&b, LB_ERR_CORRUPT, "0 dimensions");

    const uint64_t zero[2] = { 8, 0 };
    one_tensor(&b, 2, zero, LB_GGML_F32, 0, 32);
    expect_fail(&b, LB_ERR_CORRUPT, "absurd dimension 0");
    const uint64_t huge[2] = { 1ull << 32, 1ull << 32 }; /* 2^64 elements */
    one_tensor(&b, 2, huge, LB_GGML_F32, 0, 32);
    expect_fail(&b, LB_ERR_CORRUPT, "absurd dimension");
    const uint64_t neg[1] = { 1ull << 63 }; /* negative as int64 */
    one_tensor(&b, 1, neg, LB_GGML_F32, 0, 32);
    expect_fail(&b, LB_ERR_CORRUPT, "absurd dimension");

    one_tensor(&b, 1, ne8, 200, 0, 32);
    expect_fail(&b, LB_ERR_UNSUPPORTED, "unknown type id 200");
    one_tensor(&b, 1, ne8, 4, 0, 32); /* Q4_2, removed upstream */
    expect_fail(&b, LB_ERR_UNSUPPORTED, "unknown type id 4");

    const uint64_t row33[2] = { 33, 2 }; /* q4_0 rows must hold whole 32-value blocks */
    one_tensor(&b, 2, row33, LB_GGML_Q4_0, 0, 128);
    expect_fail(&b, LB_ERR_CORRUPT, "block size 32");

    one_tensor(&b, 1, ne8, LB_GGML_F32, 16, 64); /* data offset not a multiple of 32 */
    expect_fail(&b, LB_ERR_CORRUPT, "not a multiple of the alignment");

    one_tensor(&b, 1, ne8, LB_GGML_F32, 32, 32); /* 32 bytes at offset 32 of 32 */
    expect_fail(&b, LB_ERR_TRUNCATED, "past the end of the file");
    one_tensor(&b, 1, ne8, LB_GGML_F32, 0, 31); /* one byte short */
    expect_fail(&b, LB_ERR_TRUNCATED, "past the end of the file");
    one_tensor(&b, 1, ne8, LB_GGML_F32, 1ull << 63, 32); /* offset beyond everything */
    expect_fail(&b, LB_ERR_TRUNCATED, "past the end of the file");

    img_header(&b, 3, 2, 0); /* the same name twice */
    img_tensor_info(&b, "t", 1, ne8, LB_GGML_F32, 0);
    img_tensor_info(&b, "t", 1, ne8, LB_GGML_F32, 32);
    img_data(&b, 64);
    expect_fail(&b, LB_ERR_CORRUPT, "duplicate tensor 't'");

    char long_name[65];
    memset(long_name, 'x', 64);
    long_name[64] = '\0';
    img_header(&b, 3, 1, 0); /* a 64-byte name (63 is the limit) */
    img_tensor_info(&b, long_name, 1, ne8, LB_GGML_F32, 0);
    img_data(&b, 32);
    expect_fail(&b, LB_ERR_CORRUPT, "too long");

    /* general.alignment = 64 moves the data section and the allowed offsets */
    for (uint64_t offset = 0; offset <= 32; offset += 32) {
        img_header(&b, 3, 1, 1);
        img_kv_u32(&b, "general.alignment", 64);
        img_tensor_info(&b, "t", 1, ne8, LB_GGML_F32, offset);
        while (b.n % 64) img_le(&b, 0, 1);
        img_data(&b, 128);
        if (offset == 0) expect_ok(&b);
        else expect_fail(&b, LB_ERR_CORRUPT, "not a multiple of the alignment 64");
    }
    free(b.p);
}

static void test_writer_misuse(void **state) {
    (void)state;
    lb_error        err = { 0 };
    lb_gguf_writer *w   = lb_gguf_writer_create();
    assert_non_null(w);
    assert_int_equal(lb_gguf_writer_set_u32(w, "k", 1), LB_OK);
    assert_int_equal(lb_gguf_writer_set_u32(w, "k", 2), LB_ERR_PARAM);
    assert_int_equal(lb_gguf_writer_set_str(w, "k", "x"), LB_ERR_PARAM);
    assert_int_equal(lb_gguf_writer_set_arr_str(w, "k", NULL, 0), LB_ERR_PARAM);

    float         f[8]    = { 0 };
    const int64_t ne8[1]  = { 8 }, ne33[1] = { 33 }, ne0[2] = { 8, 0 };
    err.msg[0]            = '\0';
    assert_int_equal(lb_gguf_writer_add_tensor(w, "t", LB_GGML_F32, 1, ne8, f, 31, &err),
                     LB_ERR_SHAPE);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(lb_gguf_writer_add_tensor(w, "t", LB_GGML_Q4_0, 1, ne33, f, 18, &err),
                     LB_ERR_SHAPE);
    assert_int_equal(lb_gguf_writer_add_tensor(w, "t", LB_GGML_F32, 2, ne0, f, 0, &err),
                     LB_ERR_PARAM);
    assert_int_equal(lb_gguf_writer_add_tensor(w, "t", 200, 1, ne8, f, 32, &err), LB_ERR_PARAM);
    assert_int_equal(lb_gguf_writer_add_tensor(w, "t", LB_GGML_F32, 5, ne8, f, 32, &err),
                     LB_ERR_PARAM);
    char long_name[65];
    memset(long_name, 'x', 64);
    long_name[64] = '\0';
    assert_int_equal(lb_gguf_writer_add_tensor(w, long_name, LB_GGML_F32, 1, ne8, f, 32, &err),
                     LB_ERR_PARAM);
    assert_int_equal(lb_gguf_writer_add_tensor(w, "t", LB_GGML_F32, 1, ne8, f, 32, &err), LB_OK);
    assert_int_equal(lb_gguf_writer_add_tensor(w, "t", LB_GGML_F32, 1, ne8, f, 32, &err),
                     LB_ERR_PARAM);

    /* into a directory that does not exist: an error, and no file */
    char dir[256], out[300], tmp[310];
    tmp_path("no-such-dir", dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    err.msg[0] = '\0';
    assert_int_equal(lb_gguf_writer_write(w, out, &err), LB_ERR_IO);
    assert_true(err.msg[0] != '\0');
    assert_int_not_equal(access(out, F_OK), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);

    /* onto a directory: the rename fails, and the .tmp is removed */
    tmp_path("a-dir", out, sizeof out);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    assert_int_equal(mkdir(out, 0700), 0);
    assert_int_equal(lb_gguf_writer_write(w, out, &err), LB_ERR_IO);
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_equal(rmdir(out), 0);

    /* the failed calls left nothing behind: the file holds k = 1 and one tensor */
    tmp_path("misuse.gguf", out, sizeof out);
    assert_int_equal(lb_gguf_writer_write(w, out, &err), LB_OK);
    lb_gguf_writer_free(w);
    lb_gguf *g;
    assert_int_equal(lb_gguf_open(&g, out, &err), LB_OK);
    assert_int_equal(g->n_kv, 1);
    assert_int_equal(kv_of(g, "k", LB_GGUF_U32)->v.u64, 1);
    assert_int_equal(g->n_tensors, 1);
    assert_int_equal(g->tensors[0].nbytes, 32);
    lb_gguf_close(g);
    remove(out);

    /* general.alignment must agree with the 32-byte layout the writer produces */
    for (int c = 0; c < 3; c++) {
        w = lb_gguf_writer_create();
        assert_non_null(w);
        if (c < 2) {
            assert_int_equal(lb_gguf_writer_set_u32(w, "general.alignment", c ? 64 : 32), LB_OK);
        } else {
            assert_int_equal(lb_gguf_writer_set_u64(w, "general.alignment", 32), LB_OK);
        }
        assert_int_equal(lb_gguf_writer_add_tensor(w, "t", LB_GGML_F32, 1, ne8, f, 32, &err), LB_OK);
        assert_int_equal(lb_gguf_writer_write(w, out, &err), c == 0 ? LB_OK : LB_ERR_PARAM);
        assert_int_equal(access(out, F_OK) == 0, c == 0);
        lb_gguf_writer_free(w);
        remove(out);
    }
}

static void test_golden_stories(void **state) {
    (void)state;
    char path[512];
    SKIP_UNLESS(shared_path("golden/stories260K-f32.gguf", path, sizeof path));
    lb_error err = { 0 };
    lb_gguf *g;
    assert_int_equal(lb_gguf_open(&g, path, &err), LB_OK);
    lb_gguf_str arch;
    int64_t     v;
    assert_int_equal(lb_gguf_get_str(g, "general.architecture", &arch, &err), LB_OK);
    assert_gstr(arch, "llama");
    assert_int_equal(lb_gguf_get_int(g, "llama.embedding_length", &v, &err), LB_OK);
    assert_int_equal(v, 64);
    assert_int_equal(lb_gguf_get_int(g, "llama.block_count", &v, &err), LB_OK);
    assert_int_equal(v, 5);
    assert_int_equal(g->n_tensors, 48);
    const int64_t i = lb_gguf_find_tensor(g, "token_embd.weight");
    assert_true(i >= 0);
    const lb_gguf_tensor_info *t = &g->tensors[i];
    assert_int_equal(t->ggml_type, LB_GGML_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->nbytes, 64 * 512 * 4);
    lb_gguf_close(g);
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden_all(void **state) {
    (void)state;
    char dir[512];
    SKIP_UNLESS(shared_path("golden", dir, sizeof dir));
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    char         *names[256];
    size_t        n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        const size_t len = strlen(de->d_name);
        if (len > 5 && strcmp(de->d_name + len - 5, ".gguf") == 0) {
            assert_true(n < N_OF(names));
            names[n] = strdup(de->d_name);
            assert_non_null(names[n++]);
        }
    }
    closedir(dp);
    assert_true(n > 0);
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t f = 0; f < n; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        lb_error err = { 0 };
        lb_gguf *g;
        const lb_status st = lb_gguf_open(&g, path, &err);
        if (st != LB_OK) print_message("# %s: %s\n", names[f], err.msg);
        assert_int_equal(st, LB_OK);
        assert_int_equal(g->data_offset % g->alignment, 0);
        for (int64_t i = 0; i < g->n_tensors; i++) {
            const lb_gguf_tensor_info *t  = &g->tensors[i];
            const int32_t              bs = lb_ggml_type_block_size(t->ggml_type);
            assert_true(bs > 0);
            int64_t nel = 1;
            for (int d = 0; d < LB_GGUF_MAX_DIMS; d++) nel *= t->ne[d];
            assert_int_equal(nel % bs, 0);
            assert_int_equal(t->nbytes, (size_t)(nel / bs) * lb_ggml_type_size(t->ggml_type));
            assert_int_equal(t->offset % g->alignment, 0);
            assert_true(g->data_offset + t->offset + t->nbytes <= g->src.size);
        }
        printf("# %-28s %3" PRId64 " kv %4" PRId64 " tensors\n", names[f], g->n_kv, g->n_tensors);
        lb_gguf_close(g);
        free(names[f]);
    }
}

/* Duplicate names are found in linear time: 120k tensors write, open and look up in well
 * under a second (a quadratic check took 23 s to open such a file). */
static void test_many_tensors(void **state) {
    (void)state;
    enum { N = 120000 };
    static const float one = 1.0f;
    const int64_t      ne[1] = { 1 };
    lb_error           err;
    char               out[300], name[32];
    lb_gguf_writer    *w  = lb_gguf_writer_create();
    const double       t0 = lb_time_sec();
    assert_non_null(w);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "blk.%d.w", i);
        assert_int_equal(lb_gguf_writer_add_tensor(w, name, LB_GGML_F32, 1, ne, &one, 4, &err), LB_OK);
        snprintf(name, sizeof name, "k.%d", i);
        if (i % 10 == 0) assert_int_equal(lb_gguf_writer_set_u32(w, name, (uint32_t)i), LB_OK);
    }
    assert_int_equal(lb_gguf_writer_add_tensor(w, "blk.777.w", LB_GGML_F32, 1, ne, &one, 4, &err), LB_ERR_PARAM);
    assert_int_not_equal(lb_gguf_writer_set_u32(w, "k.770", 1), LB_OK);
    assert_int_equal(lb_gguf_writer_write(w, tmp_path("many.gguf", out, sizeof out), &err), LB_OK);
    lb_gguf_writer_free(w);
    const double t1 = lb_time_sec();
    lb_gguf     *g;
    assert_int_equal(lb_gguf_open(&g, out, &err), LB_OK);
    assert_int_equal(g->n_tensors, N);
    for (int i = 0; i < N; i += 997) {
        snprintf(name, sizeof name, "blk.%d.w", i);
        assert_int_equal(lb_gguf_find_tensor(g, name), i);
    }
    assert_int_equal(lb_gguf_find_tensor(g, "blk.120000.w"), -1);
    assert_int_equal(kv_of(g, "k.119990", LB_GGUF_U32)->v.u64, 119990);
    lb_gguf_close(g);
    const double t2 = lb_time_sec();
    print_message("120k tensors: written in %.3f s, opened and looked up in %.3f s\n", t1 - t0, t2 - t1);
#ifndef LB_SANITIZE
    assert_true(t2 - t1 < 1.0);
    assert_true(t1 - t0 < 2.0);
#endif
    remove(out);
}

/* Split output: by tensor count, by data bytes (a tensor larger than the limit gets a shard of
 * its own), and by shards given (an empty one is still written); each reads back as one
 * model with lb_gguf_open_split, its data intact; a resumable (partial) write refuses. */
static void test_split_write(void **state) {
    (void)state;
    float          data[7][64];
    const int64_t  ne[7] = { 8, 8, 64, 8, 8, 8, 8 };
    lb_error       err;
    char           out[300], first[320], name[16];
    for (int k = 0; k < 7; k++)
        for (int i = 0; i < 64; i++) data[k][i] = (float)(k * 100 + i);
    for (int mode = 0; mode < 3; mode++) {
        lb_gguf_writer *w = lb_gguf_writer_create();
        assert_int_equal(lb_gguf_writer_set_str(w, "general.name", "split"), LB_OK);
        for (int k = 0; k < 7; k++) {
            snprintf(name, sizeof name, "t%d", k);
            assert_int_equal(lb_gguf_writer_add_tensor(w, name, LB_GGML_F32, 1, &ne[k], data[k], (size_t)ne[k] * 4, &err), LB_OK);
        }
        static const uint16_t given[7] = { 0, 0, 3, 3, 1, 1, 1 }; /* shard 2 empty */
        int n_expect = 0;
        if (mode == 0) lb_gguf_writer_split(w, 0, 3), n_expect = 3;       /* 3 + 3 + 1 */
        if (mode == 1) lb_gguf_writer_split(w, 100, 0), n_expect = 4;     /* t0 t1 | t2 (256 bytes) | t3 t4 t5 | t6 */
        for (int k = 0; mode == 2 && k < 7; k++) assert_int_equal(lb_gguf_writer_set_shard(w, (uint64_t)k, given[k], &err), LB_OK);
        if (mode == 2) n_expect = 4;
        assert_int_equal(lb_gguf_writer_write(w, tmp_path("split.gguf", out, sizeof out), &err), LB_OK);
        assert_int_equal(lb_gguf_writer_n_shards(w), n_expect);
        lb_gguf_writer_free(w);
        assert_true(lb_gguf_shard_path(first, sizeof first, out, 0, n_expect));
        lb_gguf *g;
        assert_int_equal(lb_gguf_open_split(&g, first, &err), LB_OK);
        assert_int_equal(g->n_tensors, 7);
        assert_non_null(kv_of(g, "general.name", LB_GGUF_STRING));
        for (int k = 0; k < 7; k++) {
            snprintf(name, sizeof name, "t%d", k);
            const int64_t i = lb_gguf_find_tensor(g, name);
            assert_true(i >= 0);
            if (mode == 2) assert_int_equal(lb_gguf_tensor_shard(g, i), given[k]);
        }
        lb_gguf_close(g);
        for (int s = 0; s < n_expect; s++) {
            char sp[320];
            lb_gguf_shard_path(sp, sizeof sp, out, s, n_expect);
            lb_gguf *one;
            assert_int_equal(lb_gguf_open(&one, sp, &err), LB_OK); /* each shard alone: its split keys */
            assert_int_equal(kv_of(one, "split.no", LB_GGUF_U16)->v.u64, (uint64_t)s);
            assert_int_equal(kv_of(one, "split.count", LB_GGUF_U16)->v.u64, (uint64_t)n_expect);
            assert_int_equal(one->n_kv, s == 0 ? 4 : 3);
            lb_gguf_close(one);
            remove(sp);
        }
    }
    lb_gguf_writer *w = lb_gguf_writer_create();
    assert_int_equal(lb_gguf_writer_add_tensor(w, "t", LB_GGML_F32, 1, &ne[0], data[0], 32, &err), LB_OK);
    lb_gguf_writer_split(w, 0, 1);
    tmp_path("split-partial.gguf", first, sizeof first);
    assert_int_equal(lb_gguf_writer_begin_partial(w, first, out, false, &err), LB_ERR_UNSUPPORTED);
    lb_gguf_writer_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),          cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_corrupt_header),      cmocka_unit_test(test_corrupt_kv),
        cmocka_unit_test(test_corrupt_tensor_info), cmocka_unit_test(test_writer_misuse),
        cmocka_unit_test(test_golden_stories),      cmocka_unit_test(test_golden_all),
        cmocka_unit_test(test_many_tensors),        cmocka_unit_test(test_split_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
