/* The KV cache (kv_cache.h): rows of any storage type the traits table quantizes with a
 * reference quantizer and whose block divides a row; the CLI offers f32, f16, q8_0, q4_0. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "kv_cache.h"

const char *lb_kv_type_check(lb_type t, int32_t kv) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    if (!tr || tr->row_size || tr->whole_tensor || !tr->from_float)
        return "is not a block type";
    if (kv % tr->block_size != 0) return "blocks do not divide the rows (n_kv_heads * head_dim)";
    return NULL;
}

lb_status lb_kv_cache_init(lb_kv_cache *c, const lb_llama_config *cfg, int32_t n_ctx,
                           lb_type type_k, lb_type type_v, lb_error *err) {
    memset(c, 0, sizeof *c);
    /* MLA (n_lora_kv > 0) keeps the latent and the rotary key; its values are the latent, read
     * from the keys' rows (as llama.cpp's MLA cache: K's type, nothing stored twice) */
    const bool    mla = cfg->n_lora_kv > 0;
    const int32_t kk = mla ? cfg->n_lora_kv + cfg->n_rot : cfg->n_kv_heads * cfg->head_dim;
    const int32_t kv = mla ? 0 : cfg->n_kv_heads * cfg->head_dim;
    const char   *why_k = lb_kv_type_check(type_k, kk), *why_v = mla ? NULL : lb_kv_type_check(type_v, kv);
    LB_RETURN_IF(why_k || why_v, err, LB_ERR_PARAM, "KV cache type %s: %s (%d values a row)",
                 lb_type_name(why_k ? type_k : type_v), why_k ? why_k : why_v, why_k ? kk : kv);
    c->type_k = type_k, c->type_v = type_v;
    c->n_layers = cfg->n_layers, c->n_ctx = n_ctx, c->kv = kv, c->kk = kk;
    c->row_k = lb_row_size(type_k, kk), c->row_v = mla ? 0 : lb_row_size(type_v, kv);
    const size_t pos = (size_t)cfg->n_layers * (size_t)n_ctx;
    c->k             = malloc(pos * c->row_k);
    c->v             = mla ? NULL : malloc(pos * c->row_v);
    if (type_k != LB_TYPE_F32) c->kf = malloc((size_t)n_ctx * (size_t)kk * sizeof(float));
    if (!mla && type_v != LB_TYPE_F32) c->vf = malloc((size_t)n_ctx * (size_t)kv * sizeof(float));
    if (!c->k || (!mla && !c->v) || (type_k != LB_TYPE_F32 && !c->kf) || (!mla && type_v != LB_TYPE_F32 && !c->vf)) {
        lb_kv_cache_free(c);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory for a KV cache of %d positions (%zu MiB)",
                       n_ctx, pos * (c->row_k + c->row_v) >> 20);
    }
    return LB_OK;
}

void lb_kv_cache_free(lb_kv_cache *c) {
    free(c->k), free(c->v), free(c->kf), free(c->vf);
    memset(c, 0, sizeof *c);
}

static void store_row(uint8_t *dst, lb_type t, const float *x, int32_t n) {
    if (t == LB_TYPE_F32) memcpy(dst, x, (size_t)n * sizeof *x);
    else lb_type_get_traits(t)->from_float(dst, x, n);
}

void lb_kv_store(lb_kv_cache *c, int32_t l, int32_t pos, const float *k, const float *v) {
    const size_t at = (size_t)l * (size_t)c->n_ctx + (size_t)pos;
    store_row(c->k + at * c->row_k, c->type_k, k, c->kk);
    if (c->v) store_row(c->v + at * c->row_v, c->type_v, v, c->kv);
}

/* positions 0 .. n_pos-1 of one layer as f32: the rows themselves, or dequantized into buf */
static const float *layer_f32(const uint8_t *rows, size_t row, lb_type t, float *buf, int32_t n_pos,
                              int32_t kv) {
    if (t == LB_TYPE_F32) return (const float *)rows;
    const lb_to_float_fn to_float = lb_type_get_traits(t)->to_float;
#pragma omp parallel for schedule(static) if ((int64_t)n_pos * kv >= (1 << 16))
    for (int32_t p = 0; p < n_pos; p++)
        to_float(buf + (size_t)p * (size_t)kv, rows + (size_t)p * row, kv);
    return buf;
}

void lb_kv_layer(lb_kv_cache *c, int32_t l, int32_t n_pos, const float **k, const float **v) {
    const size_t at = (size_t)l * (size_t)c->n_ctx;
    *k = layer_f32(c->k + at * c->row_k, c->row_k, c->type_k, c->kf, n_pos, c->kk);
    *v = c->v ? layer_f32(c->v + at * c->row_v, c->row_v, c->type_v, c->vf, n_pos, c->kv) : *k;
}

size_t lb_kv_cache_bytes(const lb_kv_cache *c) {
    return (size_t)c->n_layers * (size_t)c->n_ctx * (c->row_k + c->row_v);
}
