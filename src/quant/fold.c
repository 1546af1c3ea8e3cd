/* Folding per-channel scales into an owned-f32 model (fold.h): the producer of a block
 * input divided by s, the linears reading it multiplied by s column-wise. */
#include "fold.h"

float *lb_fold_weight(lb_model *m, int32_t layer, lb_tensor_role role, int64_t *n_out, int64_t *n) {
    lb_tensor *t = lb_layer_tensor(&m->layers[layer], role);
    if (n_out) *n_out = t->ne[1];
    if (n) *n = t->ne[0];
    return t->type == LB_TYPE_F32 ? (float *)t->data : NULL;
}

const char *lb_fold_blocker(const lb_model *m, lb_block_input in) {
    if (in == LB_INPUT_ATTN_OUT && m->cfg.n_heads != m->cfg.n_kv_heads)
        return "grouped-query attention: one v row feeds several query heads' o columns";
    return NULL;
}

void lb_fold_scales(lb_model *m, int32_t layer, lb_block_input in, const float *s) {
    int64_t        n_prev, n_in;
    lb_tensor_role readers[3];
    const int      nr = lb_block_input_readers(m, layer, in, readers);
    /* the producer: a norm weight [n] (one row) or a linear's rows [n, n_in] */
    static const lb_tensor_role producer[LB_INPUT_COUNT] = { LB_ROLE_ATTN_NORM, LB_ROLE_ATTN_V,
                                                             LB_ROLE_FFN_NORM, LB_ROLE_FFN_UP };
    float *P = lb_fold_weight(m, layer, producer[in], &n_prev, &n_in);
    if (n_prev == 1) { /* norm: ne = [n, 1] */
        for (int64_t j = 0; j < n_in; j++) P[j] /= s[j];
    } else {
        for (int64_t r = 0; r < n_prev; r++)
            for (int64_t j = 0; j < n_in; j++) P[r * n_in + j] /= s[r];
        /* a linear producer's bias (Qwen2's v) is part of its output rows */
        lb_tensor *b = producer[in] == LB_ROLE_ATTN_V ? &m->layers[layer].bv : NULL;
        if (b && b->data && b->type == LB_TYPE_F32)
            for (int64_t r = 0; r < n_prev; r++) ((float *)b->data)[r] /= s[r];
    }
    for (int k = 0; k < nr; k++) {
        int64_t n_out, n;
        float  *W = lb_fold_weight(m, layer, readers[k], &n_out, &n);
        for (int64_t r = 0; r < n_out; r++)
            for (int64_t j = 0; j < n; j++) W[r * n + j] *= s[j];
    }
}
