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

#ifdef __cplusplus
}
#endif
#endif
