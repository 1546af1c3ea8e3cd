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
    LB_TYPE_F32  = 0,
    LB_TYPE_F16  = 1,
    LB_TYPE_BF16 = 2,
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
/* Quantize / convert n values (n a multiple of the block size). */
typedef void (*lb_from_float_fn)(void *dst, const float *src, int64_t n);

typedef struct lb_type_traits {
    const char      *name;        /* "f32", "f16", ... as llama.cpp spells them */
    int32_t          block_size;  /* values per block */
    size_t           type_size;   /* bytes per block */
    float            bits_per_weight;
    bool             is_quantized;
    lb_to_float_fn   to_float;
    lb_from_float_fn from_float;
} lb_type_traits;

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
