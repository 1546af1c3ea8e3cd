/* safetensors (huggingface/safetensors): u64 header length N (little-endian), N bytes of
 * JSON { "__metadata__": {str: str}, NAME: {"dtype": D, "shape": [..], "data_offsets":
 * [begin, end]} ... }, then the data; offsets are relative to the data's start.
 * The reader maps the file and checks every shape, dtype and offset against the file:
 * each tensor's byte count must equal its shape times its dtype size, and tensors may
 * neither leave the data nor overlap. The writer goes through PATH.tmp and a rename. */
#ifndef LOWBIT_SAFETENSORS_H
#define LOWBIT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LB_ST_MAX_DIMS 8

typedef enum lb_st_dtype {
    LB_ST_BOOL, LB_ST_U8, LB_ST_I8, LB_ST_F8_E4M3, LB_ST_F8_E5M2, LB_ST_I16, LB_ST_U16,
    LB_ST_F16, LB_ST_BF16, LB_ST_I32, LB_ST_U32, LB_ST_F32, LB_ST_I64, LB_ST_U64, LB_ST_F64,
    LB_ST_DTYPE_COUNT,
} lb_st_dtype;

const char *lb_st_dtype_name(lb_st_dtype t); /* "BF16" */
size_t      lb_st_dtype_size(lb_st_dtype t); /* bytes per element */

typedef struct lb_st_tensor {
    char       *name;
    lb_st_dtype dtype;
    int32_t     n_dims;
    int64_t     shape[LB_ST_MAX_DIMS]; /* row-major: shape[n_dims-1] is contiguous */
    uint64_t    begin, end;            /* within the data section */
    const void *data;                  /* in the mapping (not aligned beyond 1 byte) */
} lb_st_tensor;

typedef struct lb_safetensors {
    lb_source     src;
    int64_t       n_tensors;
    lb_st_tensor *tensors; /* in header order */
    size_t        data_offset; /* 8 + N */
} lb_safetensors;

/* Open and validate a file (mmapped) or a caller's memory (borrowed). *out is NULL on error. */
lb_status lb_safetensors_open(lb_safetensors **out, const char *path, lb_error *err);
lb_status lb_safetensors_open_memory(lb_safetensors **out, const void *data, size_t size,
                                     const char *name, lb_error *err);
void      lb_safetensors_close(lb_safetensors *st); /* accepts NULL */
int64_t   lb_safetensors_find(const lb_safetensors *st, const char *name); /* -1: absent */

/* One tensor to write: n_dims dims in row-major order, data of exactly nbytes. */
typedef struct lb_st_write_tensor {
    const char *name;
    lb_st_dtype dtype;
    int32_t     n_dims;
    int64_t     shape[LB_ST_MAX_DIMS];
    const void *data;
    size_t      nbytes;
} lb_st_write_tensor;

/* Write tensors in the given order, 8-byte aligned header, {"format": "pt"} metadata. */
lb_status lb_safetensors_write(const char *path, const lb_st_write_tensor *t, size_t n,
                               lb_error *err);

#ifdef __cplusplus
}
#endif
#endif
