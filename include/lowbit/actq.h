/* Activation quantization (W8A8): a descriptor the quantizer writes into the GGUF file and
 * the forward pass applies to the input of each group of linears before they multiply it:
 * with exact products, quantize-dequantize in place (int8 activations simulated in f32, the
 * int8 weights dequantized); in fast contexts (lb_context_params.fast), int8 activation rows
 * (lb_actq_quantize_i8: the same levels) times the int8 weight rows with int32 sums
 * (kernels/matmul.h, lb_matmul_w8a8), which computes the same products to f32 rounding.
 *   dynamic  one scale per token (row of x): d = max|x_row| / 127;
 *   static   one clip range r per input, calibrated (min/max, percentile, or the KL
 *            divergence of the histogram): d = r / 127, values clamped to +-127 d;
 *   outliers (LLM.int8) listed columns of an input stay f32 (left out of the token's scale),
 *            and so do the matching columns of the weights that read it: the quantizer stores
 *            them as f32 tensors "blk.L.<linear>.outlier_cols" (ne = [k, n_out]) and zeroes
 *            them in the int8 weight; the loader puts them back into the dequantized weight.
 * The inputs of a block: attn_in (q, k, v), attn_out (o), ffn_in (gate, up), ffn_mid (down);
 * the output head's input is not quantized.
 * GGUF metadata (absent: no activation quantization):
 *   lowbit.actq.bits         u32     8
 *   lowbit.actq.mode         str     "dynamic" | "static"
 *   lowbit.actq.calibration  str     how ranges were found: "dynamic", "minmax", "p99.99", "kl"
 *   lowbit.actq.ranges       f32[]   static: n_layers * 4 clip ranges, layer-major, > 0, finite
 *   lowbit.actq.outlier_threshold  f32  LLM.int8's threshold (when outliers are listed)
 *   lowbit.actq.outliers.<layer>.<input>  i32[]  column indices, strictly increasing */
#ifndef LOWBIT_ACTQ_H
#define LOWBIT_ACTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "range.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The inputs of a block's linear groups, in forward order. */
typedef enum lb_block_input {
    LB_INPUT_ATTN_IN  = 0, /* attn_norm(x): q, k, v */
    LB_INPUT_ATTN_OUT = 1, /* attention output: o */
    LB_INPUT_FFN_IN   = 2, /* ffn_norm(h): gate, up */
    LB_INPUT_FFN_MID  = 3, /* silu(gate) * up: down */
    LB_INPUT_COUNT    = 4,
} lb_block_input;

/* The input a weight role reads (-1: none, e.g. norms, the embedding, the output head). */
int            lb_block_input_of(lb_tensor_role role);
/* The role forward hooks report the input with (LB_ROLE_ATTN_Q, _ATTN_OUTPUT, _FFN_GATE,
 * _FFN_DOWN), its name ("attn_in", ...), and the roles of the linears of layer l of m (a model
 * without an architecture: of any) reading it (count: at most 3; a mixture of experts' FFN
 * input: the router and the shared expert's gate and up). */
lb_tensor_role lb_block_input_role(lb_block_input in);
const char    *lb_block_input_name(lb_block_input in);
int            lb_block_input_readers(const lb_model *m, int32_t l, lb_block_input in, lb_tensor_role roles[3]);
/* llama.cpp's tensor name stem of a linear role ("attn_q", "ffn_down"); NULL for others. */
const char    *lb_role_stem(lb_tensor_role role);
/* The tensor of a per-layer role in L, norms included; NULL for roles outside the blocks. */
lb_tensor     *lb_layer_tensor(lb_layer *L, lb_tensor_role role);

typedef enum lb_actq_mode {
    LB_ACTQ_DYNAMIC = 0,
    LB_ACTQ_STATIC  = 1,
} lb_actq_mode;

typedef struct lb_actq_input {
    float    range;         /* static: the clip range (> 0) */
    int32_t  n_outliers;    /* columns kept in f32 */
    int32_t *outliers;      /* [n_outliers], strictly increasing */
    float   *w_outliers[3]; /* per reader (lb_block_input_readers order): [n_out, n_outliers] */
    lb_tensor w_int8[3];    /* per reader, when its weight was restored to f32 for the
                             * simulation: the int8 weight as stored (outlier columns 0), for
                             * integer products; .data NULL otherwise */
} lb_actq_input;

typedef struct lb_actq {
    lb_actq_mode   mode;
    int32_t        bits;              /* 8 */
    int32_t        n_layers;
    float          outlier_threshold; /* LLM.int8; 0 without outliers */
    char           calibration[16];   /* "dynamic", "minmax", "p99.99", "kl" */
    lb_actq_input *inputs;            /* [n_layers * LB_INPUT_COUNT] */
} lb_actq;

/* An empty descriptor (no outliers, ranges 0) for n_layers blocks. */
lb_status lb_actq_create(lb_actq **out, int32_t n_layers, lb_actq_mode mode, lb_error *err);
void      lb_actq_free(lb_actq *aq); /* accepts NULL */
static inline lb_actq_input *lb_actq_at(const lb_actq *aq, int32_t layer, lb_block_input in) {
    return &aq->inputs[(int64_t)layer * LB_INPUT_COUNT + (int)in];
}

/* Quantize-dequantize X [T, n], the input of role's linears in `layer`, in place. Does
 * nothing for layer < 0 or a role without a block input. */
void lb_actq_apply(const lb_actq *aq, int32_t layer, lb_tensor_role role, float *x, int32_t T,
                   int32_t n);

/* Fast contexts: X [T, n], the input of role's linears in `layer`, quantized to int8 rows
 * { f32 d; int8 q[n] } `stride` bytes apart (stride >= 4 + n), with the levels lb_actq_apply
 * gives (it leaves x = d q), outlier columns 0. The caller checks lb_block_input_of(role) >= 0
 * and 0 <= layer < n_layers. */
void lb_actq_quantize_i8(const lb_actq *aq, int32_t layer, lb_tensor_role role, const float *x,
                         int32_t T, int32_t n, void *dst, size_t stride);

/* Metadata and outlier tensors into a GGUF being written for model m (data borrowed from aq
 * until the write). */
lb_status lb_actq_write(const lb_actq *aq, const lb_model *m, lb_gguf_writer *w, lb_error *err);
/* Parse and check the metadata of g for a model of config c: *out is NULL when the file has
 * no activation quantization. Outlier weight columns are not read here (lb_model_load does). */
lb_status lb_actq_from_gguf(lb_actq **out, const lb_gguf *g, const lb_llama_config *c,
                            lb_error *err);

/* ---- how activations are quantized (lowbit quantize --act) ---- */
typedef struct lb_act_calib {
    bool     calibrated; /* static ranges from calibration (false: dynamic, per-token
                          * scales at run time) */
    lb_range range;      /* static: how each input's clip is chosen (range.h) */
} lb_act_calib;

/* "dynamic", or a range estimator's name (minmax, pNN, mse, kl, kl-count); LB_ERR_PARAM
 * otherwise. */
lb_status   lb_act_calib_parse(const char *s, lb_act_calib *out);
const char *lb_act_calib_name(const lb_act_calib *a, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
