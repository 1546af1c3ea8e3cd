/* Hugging Face model directories, out (in: lb_model_load takes a directory, see model.h).
 * A directory holds config.json, generation_config.json, model.safetensors (or shards and
 * model.safetensors.index.json), tokenizer.json and tokenizer_config.json. */
#ifndef LOWBIT_HF_H
#define LOWBIT_HF_H

#include "model.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write m (f32/f16/bf16 tensors) as an HF directory transformers loads: weight matrices in
 * `type` (f32, f16 or bf16), norms and biases f32, Q/K rows in HF's half-split rotary order.
 * dir must not exist or be empty; it is written as dir.tmp and renamed when complete. */
lb_status lb_model_save_hf(const lb_model *m, const char *dir, lb_type type, lb_error *err);

/* The same, as a GPTQ checkpoint (AutoGPTQ/GPTQModel's "gptq" format: qweight, qzeros, scales,
 * g_idx; config.json's quantization_config) that transformers and vLLM load: every weight
 * matrix of the blocks must be stored in one type with an exact GPTQ layout (q4_0 and int4_gN:
 * 4 bits; q8_0 and int8_gN: 8 bits; symmetric, groups of 32 for q4_0/q8_0, N for intN), as
 * lowbit's gptq and awq methods write them. The embedding and output matrix are written f16. */
lb_status lb_model_save_hf_gptq(const lb_model *m, const char *dir, lb_error *err);

/* What loading a quantized HF directory (GPTQ or AWQ, see lb_model_load) did with its packed
 * layers; NULL for every other model. */
typedef struct lb_hf_quant_report {
    char    method[8];     /* "gptq" or "awq" */
    int32_t bits;
    int32_t group_size;    /* -1: one group per row */
    bool    sym, desc_act;
    int32_t n_tensors;     /* packed layers read */
    int32_t n_exact;       /* of them stored exactly (Q4_1: up to the f16 rounding of its minimum) */
    int32_t n_by_type[3];  /* stored as q4_0, q4_1, q8_0 */
    double  max_rel_err;   /* the largest RMS error of a layer against the checkpoint's own
                              dequantization, relative to the layer's RMS */
    char    worst[96];     /* that layer's name */
} lb_hf_quant_report;
const lb_hf_quant_report *lb_model_hf_quant(const lb_model *m);

#ifdef __cplusplus
}
#endif
#endif
