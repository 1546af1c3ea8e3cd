/* GGUF v2/v3 reader and writer (ggml's docs/gguf.md).
 *
 * File layout, all little-endian:
 *   1. magic "GGUF", u32 version, u64 n_tensors, u64 n_kv
 *   2. n_kv key/value pairs: string key, u32 value type, value
 *      (string = u64 length + bytes, no NUL; array = u32 element type, u64 count, elements)
 *   3. n_tensors tensor infos: string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 *      u64 offset (relative to the data section, a multiple of the alignment)
 *   4. padding to `general.alignment` (u32, default 32), then the data section.
 *
 * The reader maps the file read-only and checks every count, length, offset and
 * dimension against the bytes that remain; it never trusts a size from the file.
 * The io layer knows bytes, shapes and ggml type ids, not transformers. */
#ifndef LOWBIT_GGUF_H
#define LOWBIT_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LB_GGUF_DEFAULT_ALIGNMENT 32
#define LB_GGUF_MAX_DIMS          4

typedef enum lb_gguf_vtype {
    LB_GGUF_U8 = 0, LB_GGUF_I8 = 1, LB_GGUF_U16 = 2, LB_GGUF_I16 = 3, LB_GGUF_U32 = 4,
    LB_GGUF_I32 = 5, LB_GGUF_F32 = 6, LB_GGUF_BOOL = 7, LB_GGUF_STRING = 8, LB_GGUF_ARRAY = 9,
    LB_GGUF_U64 = 10, LB_GGUF_I64 = 11, LB_GGUF_F64 = 12,
    LB_GGUF_VTYPE_COUNT,
} lb_gguf_vtype;

/* ggml tensor type ids as they appear in files (ggml.h's enum ggml_type). */
typedef enum lb_ggml_type {
    LB_GGML_F32 = 0, LB_GGML_F16 = 1, LB_GGML_Q4_0 = 2, LB_GGML_Q4_1 = 3,
    /* 4, 5: Q4_2, Q4_3, removed upstream */
    LB_GGML_Q5_0 = 6, LB_GGML_Q5_1 = 7, LB_GGML_Q8_0 = 8, LB_GGML_Q8_1 = 9, LB_GGML_Q2_K = 10,
    LB_GGML_Q3_K = 11, LB_GGML_Q4_K = 12, LB_GGML_Q5_K = 13, LB_GGML_Q6_K = 14, LB_GGML_Q8_K = 15,
    LB_GGML_IQ2_XXS = 16, LB_GGML_IQ2_XS = 17, LB_GGML_IQ3_XXS = 18, LB_GGML_IQ1_S = 19,
    LB_GGML_IQ4_NL = 20, LB_GGML_IQ3_S = 21, LB_GGML_IQ2_S = 22, LB_GGML_IQ4_XS = 23,
    LB_GGML_I8 = 24, LB_GGML_I16 = 25, LB_GGML_I32 = 26, LB_GGML_I64 = 27, LB_GGML_F64 = 28,
    LB_GGML_IQ1_M = 29, LB_GGML_BF16 = 30,
    /* 31..33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8, removed upstream */
    LB_GGML_TQ1_0 = 34, LB_GGML_TQ2_0 = 35,
    /* 36..38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8, removed upstream */
    LB_GGML_MXFP4 = 39,
    LB_GGML_TYPE_COUNT = 40,
} lb_ggml_type;

/* Name ("q4_K"), block size and bytes per block of a ggml type; NULL / 0 when unknown. */
const char *lb_ggml_type_name(uint32_t ggml_type);
int32_t     lb_ggml_type_block_size(uint32_t ggml_type);
size_t      lb_ggml_type_size(uint32_t ggml_type);
/* lowbit type for a ggml type (LB_TYPE_INVALID when lowbit cannot compute with it), and back
 * (-1 when the lowbit type has no ggml equivalent). */
lb_type     lb_type_from_ggml(uint32_t ggml_type);
int32_t     lb_type_to_ggml(lb_type t);
const char *lb_gguf_vtype_name(lb_gguf_vtype t);

typedef struct lb_gguf_str {
    const char *p; /* not NUL-terminated; points into the file */
    uint64_t    n;
} lb_gguf_str;

typedef struct lb_gguf_kv {
    char         *key; /* NUL-terminated copy */
    lb_gguf_vtype type;
    union {
        uint64_t u64; /* every unsigned type, widened */
        int64_t  i64; /* every signed type, widened */
        double   f64; /* f32 and f64 */
        bool     b;
    } v;
    lb_gguf_str    str;      /* LB_GGUF_STRING */
    lb_gguf_vtype  arr_type; /* LB_GGUF_ARRAY: element type (never ARRAY) */
    uint64_t       arr_n;
    const uint8_t *arr_data; /* numeric arrays: raw little-endian bytes in the file */
    lb_gguf_str   *arr_str;  /* string arrays: arr_n entries */
} lb_gguf_kv;

typedef struct lb_gguf_tensor_info {
    char       *name;
    uint32_t    n_dims;
    int64_t     ne[LB_GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint32_t    ggml_type;
    uint64_t    offset; /* relative to the data section */
    size_t      nbytes;
    const void *data; /* in the mapped file */
} lb_gguf_tensor_info;

typedef struct lb_gguf {
    lb_source            src;
    uint32_t             version;
    int64_t              n_kv;
    int64_t              n_tensors;
    lb_gguf_kv          *kv;
    lb_gguf_tensor_info *tensors;
    size_t               alignment;
    size_t               data_offset; /* start of the data section in the file */
    struct lb_strmap    *index;       /* private: keys and tensor names -> their index */
    struct lb_gguf      *next_shard;  /* private: a split file's next shard, kept open (its
                                       * tensors are listed in the first's) */
} lb_gguf;

/* Open and validate a file (mmapped) or a caller's memory (borrowed). *out is NULL on error. */
lb_status lb_gguf_open(lb_gguf **out, const char *path, lb_error *err);
lb_status lb_gguf_open_memory(lb_gguf **out, const void *data, size_t size, const char *name,
                              lb_error *err);
void      lb_gguf_close(lb_gguf *g); /* accepts NULL */
/* lb_gguf_open, and when the file is the first shard of a split model (llama.cpp's gguf-split:
 * split.count > 1, files PREFIX-00001-of-0000N.gguf), the other shards too: their tensors join
 * the first's list (data in their own mappings), the metadata is the first's. Every shard's
 * split.no, split.count and the total split.tensors.count are checked. */
lb_status lb_gguf_open_split(lb_gguf **out, const char *path, lb_error *err);
/* The shard (0 for the first, or an unsplit file) that holds tensor i of such a list. */
int32_t   lb_gguf_tensor_shard(const lb_gguf *g, int64_t i);

/* Index of a key or tensor, -1 when absent. */
int64_t lb_gguf_find_key(const lb_gguf *g, const char *key);
int64_t lb_gguf_find_tensor(const lb_gguf *g, const char *name);

/* Typed getters. LB_ERR_NOT_FOUND when absent (err untouched then, so optional keys are
 * easy), LB_ERR_CORRUPT when present with an incompatible type. Integers of any width
 * and signedness are accepted by get_int (range-checked), f32/f64 by get_float. */
lb_status lb_gguf_get_int(const lb_gguf *g, const char *key, int64_t *out, lb_error *err);
lb_status lb_gguf_get_float(const lb_gguf *g, const char *key, double *out, lb_error *err);
lb_status lb_gguf_get_bool(const lb_gguf *g, const char *key, bool *out, lb_error *err);
lb_status lb_gguf_get_str(const lb_gguf *g, const char *key, lb_gguf_str *out, lb_error *err);
/* An array kv of the given element kind: LB_GGUF_STRING, or any numeric type, read with
 * lb_gguf_arr_int / lb_gguf_arr_float. */
lb_status lb_gguf_get_arr(const lb_gguf *g, const char *key, const lb_gguf_kv **out,
                          lb_error *err);
int64_t   lb_gguf_arr_int(const lb_gguf_kv *kv, uint64_t i);
double    lb_gguf_arr_float(const lb_gguf_kv *kv, uint64_t i);

/* Whether two kvs hold the same value: integers of any width and signedness equal as
 * numbers, f32/f64 equal as numbers, strings and bools equal, arrays of the same element
 * type with equal bytes. Keys are not compared. */
bool lb_gguf_kv_same_value(const lb_gguf_kv *a, const lb_gguf_kv *b);

/* Format a kv's value for display (arrays summarized), into buf. */
void lb_gguf_kv_format(const lb_gguf_kv *kv, char *buf, size_t cap);

/* ---- writer ---- */
typedef struct lb_gguf_writer lb_gguf_writer;

lb_gguf_writer *lb_gguf_writer_create(void); /* NULL when out of memory */
void            lb_gguf_writer_free(lb_gguf_writer *w);

/* Set a key; a key set twice is an error (LB_ERR_PARAM). Strings are copied. */
lb_status lb_gguf_writer_set_u32(lb_gguf_writer *w, const char *key, uint32_t v);
lb_status lb_gguf_writer_set_i32(lb_gguf_writer *w, const char *key, int32_t v);
lb_status lb_gguf_writer_set_u64(lb_gguf_writer *w, const char *key, uint64_t v);
lb_status lb_gguf_writer_set_f32(lb_gguf_writer *w, const char *key, float v);
lb_status lb_gguf_writer_set_bool(lb_gguf_writer *w, const char *key, bool v);
lb_status lb_gguf_writer_set_str(lb_gguf_writer *w, const char *key, const char *v);
lb_status lb_gguf_writer_set_arr_str(lb_gguf_writer *w, const char *key,
                                     const char *const *v, uint64_t n);
/* Numeric array: n elements of type t, raw little-endian. */
lb_status lb_gguf_writer_set_arr(lb_gguf_writer *w, const char *key, lb_gguf_vtype t,
                                 const void *data, uint64_t n);
/* Copy one kv of an open file, verbatim. */
lb_status lb_gguf_writer_copy_kv(lb_gguf_writer *w, const lb_gguf_kv *kv);
/* llama-quantize's --override-kv KEY=TYPE:VALUE (TYPE int: i32, float: f32, bool, str): the
 * key is written now, and later sets of it (the model's, the input's) are ignored. w NULL:
 * only check the spec. */
lb_status lb_gguf_writer_override(lb_gguf_writer *w, const char *spec, lb_error *err);

/* The keys set so far as a GGUF without tensors, in memory (malloc'd into *out, *size bytes):
 * read them back with lb_gguf_open_memory (the buffer must outlive the lb_gguf). */
lb_status lb_gguf_writer_kv_image(const lb_gguf_writer *w, void **out, size_t *size);

/* Add a tensor. data (nbytes, as the type and shape require) is borrowed until write; NULL
 * declares the tensor only, its bytes given later by lb_gguf_writer_put. Tensors are numbered
 * from 0 in the order they are added. */
lb_status lb_gguf_writer_add_tensor(lb_gguf_writer *w, const char *name, uint32_t ggml_type,
                                    uint32_t n_dims, const int64_t *ne, const void *data,
                                    size_t nbytes, lb_error *err);

/* Add the tensors `from` holds (their data borrowed as there; none may be a fill tensor). */
lb_status lb_gguf_writer_add_tensors_of(lb_gguf_writer *w, const lb_gguf_writer *from, lb_error *err);

/* Add a tensor whose nbytes are produced while the file is written (a model larger than
 * memory streams through): fill writes the next bytes, from offset off of the tensor, into
 * buf (cap bytes, at least 16 MiB) and returns how many (> 0, at most nbytes - off); 0 is an
 * error (fill describes it in err). */
typedef size_t (*lb_gguf_fill_fn)(void *user, uint8_t *buf, size_t cap, size_t off,
                                  lb_error *err);
lb_status lb_gguf_writer_add_tensor_fill(lb_gguf_writer *w, const char *name, uint32_t ggml_type,
                                         uint32_t n_dims, const int64_t *ne, size_t nbytes,
                                         lb_gguf_fill_fn fill, void *user, lb_error *err);

/* Write to path.tmp, then rename to path: never a partial output file. */
lb_status lb_gguf_writer_write(lb_gguf_writer *w, const char *path, lb_error *err);

/* Streaming: begin writes the metadata and the tensor infos (every tensor declared, no key or
 * tensor may be added after it) to a temp beside path, and the tensors added with their data; put writes tensor i's bytes (exactly as
 * declared) at its offset, in any order, each once; finish checks that every tensor was written,
 * then renames the temp to path; abort (or free) removes the temp. */
/* Write shards as llama.cpp's gguf-split does (set before begin): a new shard when the next
 * tensor's padded bytes would pass max_bytes of data, or its count max_tensors (0: no limit);
 * or each tensor in the shard set_shard gives (the others in 0). With more than one shard,
 * begin's path names them: PREFIX-00001-of-0000N.gguf, PREFIX the path without ".gguf"; the
 * first holds the metadata, each one split.no (u16), split.count (u16) and
 * split.tensors.count (i32); finish renames the first last. */
void      lb_gguf_writer_split(lb_gguf_writer *w, uint64_t max_bytes, uint64_t max_tensors);
lb_status lb_gguf_writer_set_shard(lb_gguf_writer *w, uint64_t i, uint16_t shard, lb_error *err);
uint16_t  lb_gguf_writer_n_shards(const lb_gguf_writer *w); /* after begin: the files written */
/* Shard k (from 0) of n's file name for path into out; false when it does not fit. */
bool      lb_gguf_shard_path(char *out, size_t cap, const char *path, int k, int n);
lb_status lb_gguf_writer_begin(lb_gguf_writer *w, const char *path, lb_error *err);
uint64_t  lb_gguf_writer_n_tensors(const lb_gguf_writer *w); /* added so far */
lb_status lb_gguf_writer_put(lb_gguf_writer *w, uint64_t i, const void *data, size_t nbytes,
                             lb_error *err);
lb_status lb_gguf_writer_finish(lb_gguf_writer *w, lb_error *err);
void      lb_gguf_writer_abort(lb_gguf_writer *w);
/* The same into a file that outlives the process (a resumable run's partial output): created
 * at `partial`, or with resume reopened there after checking that its header is the one this
 * writer writes (tensors already put there stay); sync flushes it to disk (before a checkpoint);
 * finish renames it to path; abort closes it and keeps it. */
lb_status lb_gguf_writer_begin_partial(lb_gguf_writer *w, const char *partial, const char *path, bool resume,
                                       lb_error *err);
lb_status lb_gguf_writer_sync(lb_gguf_writer *w, lb_error *err);
/* Tensor i is in the partial file already (a resumed run's finished blocks). */
void      lb_gguf_writer_assume(lb_gguf_writer *w, uint64_t i);

#ifdef __cplusplus
}
#endif
#endif
