/* Hugging Face quantized checkpoints (hf_quant.c): the packed linear layers of GPTQ
 * (AutoGPTQ, GPTQModel) and AutoAWQ's GEMM layout, to GGUF blocks and back. */
#ifndef LB_MODEL_HF_QUANT_H
#define LB_MODEL_HF_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/json.h"
#include "lowbit/hf.h"
#include "lowbit/safetensors.h"

typedef enum lb_hfq_method { LB_HFQ_NONE = 0, LB_HFQ_GPTQ, LB_HFQ_AWQ } lb_hfq_method;

typedef struct lb_hfq {
    lb_hfq_method method;
    int32_t       bits;     /* 4 or 8 (AWQ: 4) */
    int32_t       group;    /* inputs per group; -1: one group over the whole row */
    bool          sym;      /* GPTQ's sym: every zero point 2^(bits-1) (as stored, not assumed) */
    bool          desc_act; /* GPTQ's act-order: groups given by g_idx, not contiguous */
    bool          v2;       /* GPTQModel's gptq_v2 zeros (as they are); v1 stores zero - 1 */
} lb_hfq;

/* A quantization_config object (config.json's, or quantize_config.json itself) into q.
 * LB_ERR_UNSUPPORTED for other methods and layouts, with the reason. */
lb_status lb_hfq_parse(const cJSON *qc, lb_hfq *q, const char *file, lb_error *err);

/* One packed linear layer: NAME.qweight, .qzeros, .scales and (GPTQ, optional) .g_idx. */
typedef struct lb_hfq_linear {
    const lb_st_tensor *qweight, *qzeros, *scales, *g_idx;
    const char         *name; /* NAME, for messages */
} lb_hfq_linear;

/* The layer's n_out rows of n_in values (its HF order) as GGUF rows: a 4-bit group whose
 * inputs fall in one 32-block becomes Q4_0 blocks when every zero point is 8 (exact) or
 * Q4_1 (exact up to the f16 rounding of the minimum, -scale * zero); 8 bits with zero 128
 * become Q8_0 (exact). Otherwise (act-order groups that split a block, groups under 32, an
 * asymmetric 8-bit layer) each block is quantized again from the checkpoint's values.
 * *out: malloc'd rows of *type; *rel_err: the RMS error against the checkpoint's own
 * dequantization scale * (q - zero), relative to its RMS; *exact as above. */
lb_status lb_hfq_import(const lb_hfq *q, const lb_hfq_linear *L, int64_t n_out, int64_t n_in,
                        lb_type *type, void **out, double *rel_err, bool *exact, lb_error *err);

/* The GPTQ bits and group size a GGUF type's rows export to exactly (Q4_0, Q8_0, INTn
 * symmetric groups of 4 or 8 bits); false for any other type. */
bool lb_hfq_export_spec(lb_type t, int32_t *bits, int32_t *group);

/* GPTQ (v1, symmetric) tensors of n_out rows of n_in values stored as t (an export type):
 * rows[r] is row r's bytes in the HF order. Out: qweight [n_in*bits/32, n_out] and qzeros
 * [n_in/group, n_out*bits/32] int32, scales [n_in/group, n_out] f16, g_idx [n_in] int32, each
 * malloc'd into parts[0..3] with its shape. */
lb_status lb_hfq_export(lb_type t, const void *const *rows, int64_t n_out, int64_t n_in,
                        lb_st_write_tensor parts[4], void *owned[4], lb_error *err);

#endif
