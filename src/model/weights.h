/* The weight matrices of a model as the forward pass hands them to the products: each tensor
 * with, for contexts that quantize activations, a copy of its rows packed for the kernels
 * (kernels/matmul.h, lb_matmul_pack). Once a tensor of a mapped file is packed, its pages are
 * released (they come back from the file if read again), so the model stays in memory once.
 * A matrix of a type without kernels is first transcoded to a type that holds the same values
 * (formats.h, lb_transcode_target: int4_g128 as Q4_0 blocks, 2-bit groups as X2_0/X2_1 and
 * TQ1_0/TQ2_0 as X2_K, kernel layouts), whose kernels then compute it; when it is also
 * packed, the transcoded rows the packed copy holds are given back too (a packed product reads
 * only its packed rows and those after them). In contexts that quantize activations (pack), NF4,
 * lowbit's ternary and INTn per-row and per-tensor scales become the type within the
 * activations' error that reads fewest bytes (lb_transcode_approx_target: XNF4, X2_0, the
 * block type of their width with f16 scales; W8A8 models keep INT8_PC for their integer
 * products), and a quantized matrix with neither (FP8, 6- and 8-bit affine groups) is
 * requantized to Q8_0 from its values: an error of at most half a level in 1/127 of each 32
 * values' largest, of the order of the activations' own 8-bit rounding there. */
#ifndef LB_MODEL_WEIGHTS_H
#define LB_MODEL_WEIGHTS_H

#include <stdbool.h>

#include "kernels/matmul.h"
#include "lowbit/model.h"

#define LB_WEIGHTS_STACKS 5 /* the experts' gate, up and down; MLA's k_b and v_b */

typedef struct lb_weights {
    lb_mat *init;     /* mats as made (lb_context_set_matrix restores them) */
    void  **set_buf;  /* [n_mats] the packed rows of matrices lb_context_set_matrix gave, or NULL */
    lb_mat *mats;     /* n_layers * LB_LAYER_SLOTS (the linear slots filled), then the output,
                         then per layer each stacked tensor's slices: each expert's gate, up and
                         down, each head's k_b and v_b (lb_weights_slice) */
    lb_tensor *views; /* the slices: views into their 3-D tensors */
    lb_tensor *tc;    /* [as mats]: the transcoded INTn matrices (data in tc_buf), mats[i].t = &tc[i] */
    void  **tc_buf;
    int32_t n_layers, n_mats;
    int32_t n_slice[LB_WEIGHTS_STACKS], per_layer; /* slices of each stack (experts, heads), their sum */
    void   *buf;      /* the packed rows of all tensors */
    size_t  packed;   /* bytes in buf */
} lb_weights;

lb_status lb_weights_init(lb_weights *w, const lb_model *m, bool pack, lb_error *err);
void      lb_weights_free(lb_weights *w);

/* the matrix of a linear role of layer l; l = -1: the output matrix */
static inline lb_mat lb_weights_get(const lb_weights *w, int32_t l, lb_tensor_role role) {
    return w->mats[l < 0 ? w->n_layers * LB_LAYER_SLOTS : l * LB_LAYER_SLOTS + ((int)role - LB_ROLE_LAYER_FIRST)];
}

/* slice e of stack k (0-2: expert e's gate, up, down; 3, 4: head e's k_b, v_b) of layer l of m
 * (the model w was made for): a view of its rows of m's 3-D tensor as it is now (the block
 * engine swaps a block's tensors for f32 working copies), or its packed or transcoded copy */
lb_mat lb_weights_slice(lb_weights *w, const lb_model *m, int32_t l, int k, int32_t e);
static inline lb_mat lb_weights_expert(lb_weights *w, const lb_model *m, int32_t l, int k, int32_t e) {
    return lb_weights_slice(w, m, l, k, e);
}

#endif
