/* Folding per-channel scales into a model, exactly: the input x of a group of linears is
 * divided by s where it is produced (an RMSNorm weight, or the rows of the linear before) and
 * the linears' columns are multiplied by s, so (W diag s)(x / s) = W x and the unquantized
 * model computes the same function (up to f32 rounding). Shared by AWQ and SmoothQuant.
 *   attn_in:  attn_norm /= s;  q, k, v columns *= s
 *   attn_out: v rows /= s;     o columns *= s   (only when each query head has its own KV
 *                                                 head: with GQA one v row feeds several)
 *   ffn_in:   ffn_norm /= s;   gate, up columns *= s
 *   ffn_mid:  up rows /= s;    down columns *= s
 * The model's tensors must be owned f32 (lb_model_clone_f32). */
#ifndef LB_QUANT_FOLD_H
#define LB_QUANT_FOLD_H

#include "lowbit/actq.h"

/* NULL when scales on this input can be folded, else the reason they cannot. */
const char *lb_fold_blocker(const lb_model *m, lb_block_input in);
/* Fold s (the input's n channels, all > 0) into layer `layer` of m. */
void        lb_fold_scales(lb_model *m, int32_t layer, lb_block_input in, const float *s);
/* The f32 weight [n_out, n] of a linear role in a layer of an owned-f32 model. */
float      *lb_fold_weight(lb_model *m, int32_t layer, lb_tensor_role role, int64_t *n_out,
                           int64_t *n);

#endif
