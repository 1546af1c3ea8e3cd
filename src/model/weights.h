/* The weight matrices of a model as the forward pass hands them to the products: each tensor
 * with, for contexts that quantize activations, a copy of its rows packed for the kernels
 * (kernels/matmul.h, lb_matmul_pack). Once a tensor of a mapped file is packed, its pages are
 * released (they come back from the file if read again), so the model stays in memory once. */
#ifndef LB_MODEL_WEIGHTS_H
#define LB_MODEL_WEIGHTS_H

#include <stdbool.h>

#include "kernels/matmul.h"
#include "lowbit/model.h"

enum { LB_W_Q, LB_W_K, LB_W_V, LB_W_O, LB_W_GATE, LB_W_UP, LB_W_DOWN, LB_W_PER_LAYER };

typedef struct lb_weights {
    lb_mat *mats;     /* n_layers * LB_W_PER_LAYER, then the output */
    int32_t n_layers;
    void   *buf;      /* the packed rows of all tensors */
    size_t  packed;   /* bytes in buf */
} lb_weights;

lb_status lb_weights_init(lb_weights *w, const lb_model *m, bool pack, lb_error *err);
void      lb_weights_free(lb_weights *w);

/* matrix k (LB_W_*) of layer l; l = -1: the output matrix */
static inline lb_mat lb_weights_get(const lb_weights *w, int32_t l, int k) {
    return w->mats[l < 0 ? w->n_layers * LB_W_PER_LAYER : l * LB_W_PER_LAYER + k];
}

#endif
