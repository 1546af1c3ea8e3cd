/* The KV cache of a context: per layer, n_ctx positions of K and of V (n_kv_heads * head_dim
 * values each; MLA's: the latent and the rotary key, and no V of its own: the latent, the first
 * n_lora_kv values of each K row), stored as f32, f16, bf16, q8_0 or q4_0, K and V chosen apart (K is
 * the more sensitive). A position is written once (quantized by the type's reference
 * quantizer, over the whole row: a block may span heads when head_dim < 32); attention reads
 * f32 views of a layer's first positions, dequantized into the cache's own buffers. */
#ifndef LB_MODEL_KV_CACHE_H
#define LB_MODEL_KV_CACHE_H

#include <stdint.h>

#include "lowbit/model.h"

typedef struct lb_kv_cache {
    lb_type  type_k, type_v;
    int32_t  n_layers, n_ctx, kk, kv; /* values of a K row and of a V row (MLA: 0, v NULL) */
    size_t   row_k, row_v; /* bytes per position */
    uint8_t *k, *v;        /* [n_layers, n_ctx, row] */
    float   *kf, *vf;      /* [n_ctx, kv]: one layer dequantized (NULL for f32) */
} lb_kv_cache;

/* Whether t can store a cache row of kv values (NULL) or why not. */
const char *lb_kv_type_check(lb_type t, int32_t kv);
lb_status   lb_kv_cache_init(lb_kv_cache *c, const lb_llama_config *cfg, int32_t n_ctx,
                             lb_type type_k, lb_type type_v, lb_error *err);
void        lb_kv_cache_free(lb_kv_cache *c);
/* Store position pos of layer l (kk values of k, kv of v). */
void        lb_kv_store(lb_kv_cache *c, int32_t l, int32_t pos, const float *k, const float *v);
/* f32 views of positions 0 .. n_pos-1 of layer l ([n_pos, kk] and [n_pos, kv]; MLA: v is k), valid until the
 * next call; quantized rows are dequantized (threads over positions). */
void        lb_kv_layer(lb_kv_cache *c, int32_t l, int32_t n_pos, const float **k, const float **v);
/* Bytes the cache holds. */
size_t      lb_kv_cache_bytes(const lb_kv_cache *c);

#endif
