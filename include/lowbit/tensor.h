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

#ifdef __cplusplus
extern "C" {
#endif

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

/* Dequantize / convert n values (n a multiple of the block size). */
typedef void (*lb_to_float_fn)(float *dst, const void *src, int64_t n);
/* Reference quantizer (round to nearest, as ggml's quantize_row_*_ref) of n values. */
typedef void (*lb_from_float_fn)(void *dst, const float *src, int64_t n);
/* Quantize nrow rows of n_per_row values; importance (n_per_row weights, one per column)
 * may be NULL. Returns the bytes written. */
typedef size_t (*lb_quantize_fn)(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                                 const float *importance);
/* Reference dot product of a stored row of n values with n f32 values (double accumulator). */
typedef double (*lb_vec_dot_fn)(const void *row, const float *x, int64_t n);

typedef struct lb_type_traits {
    const char      *name;        /* "f32", "q4_K", ... as llama.cpp spells them */
    int32_t          block_size;  /* values per block */
    size_t           type_size;   /* bytes per block */
    float            bits_per_weight;
    bool             is_quantized;
    lb_to_float_fn   to_float;
    lb_from_float_fn from_float;  /* the reference quantizer */
    lb_quantize_fn   quantize;    /* importance-aware; NULL: rows of from_float */
    lb_vec_dot_fn    vec_dot;     /* NULL: dequantize, then dot */
} lb_type_traits;

/* Quantize nrow rows with t's quantizer (importance may be NULL); returns bytes written. */
size_t lb_quantize_rows(lb_type t, void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
/* Dot product of a stored row of t with n f32 values (the scalar reference). */
double lb_vec_dot_ref(lb_type t, const void *row, const float *x, int64_t n);

/* NULL for an invalid type. */
const lb_type_traits *lb_type_get_traits(lb_type t);
const char           *lb_type_name(lb_type t);
/* Case-insensitive; LB_TYPE_INVALID when unknown. */
lb_type               lb_type_from_name(const char *name);
/* Bytes of a row of n values; 0 when n is not a multiple of the block size. */
size_t                lb_row_size(lb_type t, int64_t n);

int64_t lb_tensor_nelements(const lb_tensor *t);
size_t  lb_tensor_nbytes(const lb_tensor *t);
/* Pointer to row i (counting over all dims above ne[0]). */
const void *lb_tensor_row(const lb_tensor *t, int64_t i);
/* Convert row i to f32 (dst holds ne[0] floats). */
void        lb_tensor_get_row_f32(const lb_tensor *t, int64_t i, float *dst);

#ifdef __cplusplus
}
#endif
#endif
