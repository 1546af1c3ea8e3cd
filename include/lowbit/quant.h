/* Quantization: recipes (which type each tensor gets) and the model-level driver.
 * A recipe is a target as llama-quantize names it: a plain type ("q4_0", "q8_0", "f16") or
 * a named mix ("q4_k_m", "q3_k_s", ...) in which llama.cpp's rules give attention V,
 * FFN down, the output and the embedding their own types. Norms stay f32; a tensor whose
 * row length the block size does not divide falls back to a type that fits. */
#ifndef LOWBIT_QUANT_H
#define LOWBIT_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_recipe {
    const char *name;      /* "q4_k_m" */
    lb_type     base;      /* the type most tensors get */
    uint32_t    file_type; /* llama.cpp's general.file_type (llama_ftype) */
    bool        mix;       /* llama.cpp's per-role rules apply */
} lb_recipe;

/* NULL when unknown. Case-insensitive; "q4_k" means q4_k_m, as in llama-quantize. */
const lb_recipe *lb_recipe_find(const char *name);
/* The names, for --help: a NULL-terminated list. */
const char *const *lb_recipe_names(void);

/* A manual override: tensors whose name matches the (POSIX extended) regex get type. */
typedef struct lb_type_override {
    const char *pattern;
    lb_type     type;
} lb_type_override;

typedef struct lb_quant_params {
    const lb_recipe        *recipe;
    bool                    pure;         /* every weight matrix gets the base type */
    const lb_type_override *overrides;
    int32_t                 n_overrides;
    const char             *method;       /* "rtn" */
    bool                    progress;
} lb_quant_params;

/* What happened to one tensor. */
typedef struct lb_tensor_plan {
    const lb_named_tensor *nt;
    lb_type                wanted;   /* before the shape fallback */
    lb_type                type;     /* what is stored */
    bool                   fallback; /* the row length did not fit `wanted` */
    bool                   overridden;
} lb_tensor_plan;

/* Choose every tensor's type. plans must hold 3 + 9 * n_layers entries; returns the count
 * through *n. */
lb_status lb_quant_plan(const lb_model *m, const lb_quant_params *p, lb_named_tensor *tensors,
                        lb_tensor_plan *plans, int32_t *n, lb_error *err);

typedef struct lb_quant_summary {
    size_t  bytes_in, bytes_out;  /* weights, as loaded and as written */
    int64_t n_params;
    double  bpw;                  /* bits per weight of the output, scales included */
    int32_t n_tensors, n_fallback;
    double  seconds;
} lb_quant_summary;

/* Quantize m into a GGUF at out_path. plans (optional, as from lb_quant_plan) receives
 * each tensor's decision. */
lb_status lb_quantize_model(const lb_model *m, const char *out_path, const lb_quant_params *p,
                            lb_tensor_plan *plans, lb_named_tensor *tensors,
                            lb_quant_summary *summary, lb_error *err);

#ifdef __cplusplus
}
#endif
#endif
