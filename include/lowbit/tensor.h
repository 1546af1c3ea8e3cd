/* Tensor views and the table of storage types.
 * A tensor is a view {type, ne[4], data}: it never owns its data. ne[0] is the row
 * length (the innermost, contiguous dimension), as in ggml; a weight matrix of a
 * linear layer y = W x has ne[0] = in_features, ne[1] = out_features.
 * Every storage type is defined once, in src/formats/traits.c. */
#ifndef LOWBIT_TENSOR_H
#define LOWBIT_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* lowbit's INTn types, the one list their enum values, names and table rows come from:
 * X(UPPER, lower, id, bits, affine, group) for bits in {2, 3, 4, 5, 6, 8}, symmetric
 * ("int": levels -(2^(bits-1)-1) .. 2^(bits-1)-1 times d) and affine ("uint": levels
 * 0 .. 2^bits-1 times d plus a minimum m), and the granularity of the scale: group > 0
 * values per block ("_g32" .. "_g256"), 0 one scale per row ("_pc", per channel), -1 one
 * scale per tensor ("_pt"). Ids: 80 + 12 * (bits index) + 6 * affine + (granularity index);
 * stable, never renumbered. Layouts: src/formats/intn.c. */
#define LB_INTN_GRANULARITIES(X, U, L, BITS, ID, AFFINE)                                         \
    X(U##BITS##_G32, L##BITS##_g32, (ID) + 0, BITS, AFFINE, 32)                                  \
    X(U##BITS##_G64, L##BITS##_g64, (ID) + 1, BITS, AFFINE, 64)                                  \
    X(U##BITS##_G128, L##BITS##_g128, (ID) + 2, BITS, AFFINE, 128)                               \
    X(U##BITS##_G256, L##BITS##_g256, (ID) + 3, BITS, AFFINE, 256)                               \
    X(U##BITS##_PC, L##BITS##_pc, (ID) + 4, BITS, AFFINE, 0)                                     \
    X(U##BITS##_PT, L##BITS##_pt, (ID) + 5, BITS, AFFINE, -1)
#define LB_INTN_BITS(X, BITS, ID)                                                                \
    LB_INTN_GRANULARITIES(X, INT, int, BITS, ID, 0)                                              \
    LB_INTN_GRANULARITIES(X, UINT, uint, BITS, (ID) + 6, 1)
#define LB_INTN_TYPES(X)                                                                         \
    LB_INTN_BITS(X, 2, 80) LB_INTN_BITS(X, 3, 92) LB_INTN_BITS(X, 4, 104)                        \
    LB_INTN_BITS(X, 5, 116) LB_INTN_BITS(X, 6, 128) LB_INTN_BITS(X, 8, 140)

/* lowbit's own type ids: stable, never renumbered. GGUF ids are mapped by a switch
 * in src/io (never assumed equal). */
typedef enum lb_type {
    LB_TYPE_F32    = 0,
    LB_TYPE_F16    = 1,
    LB_TYPE_BF16   = 2,
    /* GGUF block types, bit-compatible with ggml's layouts (ggml-common.h) */
    LB_TYPE_Q8_0   = 3,
    LB_TYPE_Q4_0   = 4,
    LB_TYPE_Q4_1   = 5,
    LB_TYPE_Q5_0   = 6,
    LB_TYPE_Q5_1   = 7,
    LB_TYPE_Q2_K   = 8,
    LB_TYPE_Q3_K   = 9,
    LB_TYPE_Q4_K   = 10,
    LB_TYPE_Q5_K   = 11,
    LB_TYPE_Q6_K   = 12,
    LB_TYPE_IQ4_NL = 13,
    LB_TYPE_IQ4_XS = 14,
    LB_TYPE_TQ1_0  = 15,
    LB_TYPE_TQ2_0  = 16,
    /* the i-quants (below 4 bits, importance matrix needed for IQ1/IQ2) and MXFP4 */
    LB_TYPE_IQ2_XXS = 17,
    LB_TYPE_IQ2_XS  = 18,
    LB_TYPE_IQ2_S   = 19,
    LB_TYPE_IQ3_XXS = 20,
    LB_TYPE_IQ3_S   = 21,
    LB_TYPE_IQ1_S   = 22,
    LB_TYPE_IQ1_M   = 23,
    LB_TYPE_MXFP4   = 24,
    /* 25..63: reserved for more GGUF types */
    /* lowbit's own types (no ggml id; stored in GGUF as I8 rows, see src/model/save_gguf.c) */
    LB_TYPE_NF4         = 64,
    LB_TYPE_FP8_E4M3_PC = 65,
    LB_TYPE_FP8_E4M3_PT = 66,
    LB_TYPE_FP8_E5M2_PC = 67,
    LB_TYPE_FP8_E5M2_PT = 68,
    LB_TYPE_TERNARY     = 69,
    LB_TYPE_KM3         = 70, /* a k-means codebook per row: 8 levels, 3-bit indices */
    LB_TYPE_KM4         = 71, /* 16 levels, 4-bit indices */
    /* kernel layouts (src/formats/xlayout.c): internal, never in a file; the forward pass
     * transcodes other types' rows to them at load for their kernels */
    LB_TYPE_X2_0 = 72, /* 2 bits, d (u - 2) per 32 */
    LB_TYPE_X2_1 = 73, /* 2 bits, d u + m per 32 */
    LB_TYPE_XNF4 = 74, /* NF4's levels as int8 (IQ4_NL's layout), d per 32 */
    LB_TYPE_X2_K = 75, /* X2_0's levels, d per 256 */
    /* 76..79: reserved; 80..151: INTn, generated from LB_INTN_TYPES above */
#define LB_INTN_ENUM(U, L, ID, BITS, AFFINE, GROUP) LB_TYPE_##U = (ID),
    LB_INTN_TYPES(LB_INTN_ENUM)
#undef LB_INTN_ENUM
    LB_TYPE_COUNT,
    LB_TYPE_INVALID = -1,
} lb_type;

#define LB_MAX_DIMS 4

typedef struct lb_tensor {
    lb_type     type;
    int32_t     n_dims;
    int64_t     ne[LB_MAX_DIMS]; /* unused dims are 1 */
    const void *data;
} lb_tensor;

/* Dequantize / convert n values (n a multiple of the block size; a whole row for the
 * row-scaled types). */
typedef void (*lb_to_float_fn)(float *dst, const void *src, int64_t n);
/* Reference quantizer (round to nearest, as ggml's quantize_row_*_ref) of n values. */
typedef void (*lb_from_float_fn)(void *dst, const float *src, int64_t n);
/* Quantize nrow rows of n_per_row values; importance (n_per_row weights, one per column)
 * may be NULL. Returns the bytes written. */
typedef size_t (*lb_quantize_fn)(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                                 const float *importance);
/* Reference dot product of a stored row of n values with n f32 values (double accumulator). */
typedef double (*lb_vec_dot_fn)(const void *row, const float *x, int64_t n);

/* Bytes of a row of n values, for types whose rows carry their own scale. */
typedef size_t (*lb_row_size_fn)(int64_t n);

/* Block types: a row is n / block_size blocks of type_size bytes. Row-scaled types (a
 * scale at the start of each row: per channel, per tensor) have no fixed block: row_size
 * gives a row's bytes, block_size and type_size are 1, and to_float / from_float / vec_dot
 * take whole rows only. whole_tensor: the quantizer must see every row of a tensor in one
 * call (its scale is computed over the whole tensor); from_float alone treats its row as
 * the whole tensor. */
typedef struct lb_type_traits {
    const char      *name;        /* "f32", "q4_K", ... as llama.cpp spells them */
    int32_t          block_size;  /* values per block */
    size_t           type_size;   /* bytes per block */
    float            bits_per_weight; /* row-scaled types: without the per-row scale */
    bool             is_quantized;
    bool             whole_tensor;
    bool             needs_importance; /* quantized only with an importance matrix (llama.cpp's
                                          rule for IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS) */
    bool             internal;    /* a kernel layout: no name a user can give, never written */
    lb_row_size_fn   row_size;    /* NULL for block types */
    lb_to_float_fn   to_float;
    lb_from_float_fn from_float;  /* the reference quantizer */
    lb_quantize_fn   quantize;    /* importance-aware; NULL: rows of from_float */
    lb_vec_dot_fn    vec_dot;     /* NULL: dequantize, then dot */
} lb_type_traits;

/* Quantize nrow rows with t's quantizer (importance may be NULL); returns bytes written.
 * For a whole_tensor type the rows are the whole tensor. */
size_t lb_quantize_rows(lb_type t, void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
/* Called on each chunk of nr rows of n values (f32) before they are quantized to t; may change
 * them (range clipping). */
typedef void (*lb_rows_hook)(float *rows, int64_t nr, int64_t n, lb_type t, const float *importance,
                             void *user);
/* Tensor t stored as `type` in a new buffer (*out, *nbytes): rows read as f32, prepared by the
 * hook (may be NULL; for quantized types only), quantized with importance (may be NULL; a
 * stacked tensor's, ne[2] > 1: ne[0] values for each of its ne[2] matrices). */
lb_status lb_tensor_convert(const lb_tensor *t, lb_type type, const float *importance,
                            lb_rows_hook prepare, void *user, void **out, size_t *nbytes,
                            lb_error *err);
/* The same for rows [r0, r1) of t's rows (ne[1] * ne[2] * ne[3] of them): the bytes of those
 * rows in the whole tensor's conversion (rows are independent). A whole_tensor type takes
 * every row (r0 = 0, r1 = all) or fails. */
lb_status lb_tensor_convert_rows(const lb_tensor *t, lb_type type, const float *importance,
                                 lb_rows_hook prepare, void *user, int64_t r0, int64_t r1, void **out,
                                 size_t *nbytes, lb_error *err);
/* Dot product of a stored row of t with n f32 values (the scalar reference). For row-scaled
 * types n is the whole row. */
double lb_vec_dot_ref(lb_type t, const void *row, const float *x, int64_t n);

/* NULL for an invalid type. */
const lb_type_traits *lb_type_get_traits(lb_type t);
const char           *lb_type_name(lb_type t);
/* Case-insensitive; LB_TYPE_INVALID when unknown. */
lb_type               lb_type_from_name(const char *name);
/* Bytes of a row of n values; 0 when n is not a multiple of the block size (or n < 1 for
 * row-scaled types). */
size_t                lb_row_size(lb_type t, int64_t n);

int64_t lb_tensor_nelements(const lb_tensor *t);
size_t  lb_tensor_nbytes(const lb_tensor *t);
/* The first value of an f32/f16/bf16 tensor that is NaN or whose magnitude passes limit
 * (INFINITY: NaN and Inf only): its index, or -1 (also for other types). The value: *bad. */
int64_t lb_tensor_find_bad(const lb_tensor *t, float limit, float *bad);
/* Pointer to row i (counting over all dims above ne[0]). */
const void *lb_tensor_row(const lb_tensor *t, int64_t i);
/* Convert row i to f32 (dst holds ne[0] floats). */
void        lb_tensor_get_row_f32(const lb_tensor *t, int64_t i, float *dst);

#ifdef __cplusplus
}
#endif
#endif
