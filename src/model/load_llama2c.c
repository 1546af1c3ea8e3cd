/* llama2.c legacy checkpoints (karpathy/llama2.c run.c):
 *   i32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *   (vocab_size < 0: the classifier is stored separately at the end), then f32 arrays:
 *   token_embedding [V, E], rms_att [L, E], wq [L, E, E], wk [L, KV, E], wv [L, KV, E],
 *   wo [L, E, E], rms_ffn [L, E], w1 [L, F, E], w2 [L, E, F], w3 [L, F, E], rms_final [E],
 *   freq_cis_real [S, D/2], freq_cis_imag [S, D/2], (wcls [V, E]).
 * The weights are views into the read-only mapping; the sizes must fill the file exactly.
 * llama2.c's RoPE rotates adjacent pairs, as GGUF's llama does: no permutation needed. */
#include <stdlib.h>
#include <string.h>

#include "core/checked_math.h"
#include "core/fail.h"
#include "model_internal.h"

static lb_tensor view(const float **p, int64_t ne0, int64_t ne1) {
    lb_tensor t = { .type = LB_TYPE_F32, .n_dims = ne1 > 1 ? 2 : 1, .ne = { ne0, ne1, 1, 1 },
                    .data = *p };
    *p += ne0 * ne1;
    return t;
}

lb_status lb_model_load_llama2c(lb_model *m, const char *path, lb_error *err) {
    lb_status st = lb_source_open_file(&m->priv->src, path, err);
    if (st) return st;
    const lb_source *s = &m->priv->src;
    int32_t          h[7];
    LB_RETURN_IF(s->size >= 4 && memcmp(s->data, "ak42", 4) == 0, err, LB_ERR_UNSUPPORTED,
                 "%s: llama2.c version-2 exports are not supported; export with --version 0",
                 path);
    LB_RETURN_IF(s->size < sizeof h, err, LB_ERR_TRUNCATED,
                 "%s: %zu bytes, too short for a llama2.c header (28 bytes)", path, s->size);
    memcpy(h, s->data, sizeof h);
    const bool shared = h[5] > 0;
    lb_llama_config *c = &m->cfg;
    c->n_embd      = h[0];
    c->n_ff        = h[1];
    c->n_layers    = h[2];
    c->n_heads     = h[3];
    c->n_kv_heads  = h[4];
    c->n_vocab     = h[5] == INT32_MIN ? 0 : abs(h[5]);
    c->n_ctx_train = h[6];
    c->head_dim    = c->n_heads > 0 ? c->n_embd / c->n_heads : 0;
    c->norm_eps    = 1e-5f;
    c->rope_theta  = 10000.0f;
    /* validate the hyperparameters before computing any size from them */
    LB_RETURN_IF(c->n_embd <= 0 || c->n_ff <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
                     c->n_kv_heads <= 0 || c->n_vocab <= 0 || c->n_ctx_train <= 0 ||
                     c->n_embd > (1 << 16) || c->n_ff > (1 << 18) || c->n_layers > 1024 ||
                     c->n_vocab > (1 << 22) || c->n_ctx_train > (1 << 24) ||
                     c->n_embd % c->n_heads || c->n_heads % c->n_kv_heads || c->head_dim % 2,
                 err, LB_ERR_FORMAT,
                 "%s: not a llama2.c checkpoint (header: dim %d, hidden_dim %d, n_layers %d, "
                 "n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d)",
                 path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    const int64_t E = c->n_embd, F = c->n_ff, V = c->n_vocab, L = c->n_layers;
    const int64_t KV = (int64_t)c->n_kv_heads * c->head_dim, S = c->n_ctx_train;
    const int64_t per_layer = E + E * E + 2 * KV * E + E * E + E + 3 * F * E;
    const int64_t n_floats  = V * E + L * per_layer + E + S * c->head_dim + (shared ? 0 : V * E);
    const size_t  need      = sizeof h + (size_t)n_floats * sizeof(float);
    LB_RETURN_IF(need > s->size, err, LB_ERR_TRUNCATED,
                 "%s: the header's shapes need %zu bytes, the file has %zu (truncated?)", path,
                 need, s->size);
    LB_RETURN_IF(need < s->size, err, LB_ERR_CORRUPT,
                 "%s: the header's shapes need %zu bytes, the file has %zu extra", path, need,
                 s->size - need);
    m->arch   = lb_arch_find("llama", 5);
    m->layers = calloc((size_t)L, sizeof *m->layers);
    LB_RETURN_IF(!m->layers, err, LB_ERR_NOMEM, "out of memory");

    const float *p = (const float *)(s->data + sizeof h);
    m->tok_embd    = view(&p, E, V);
    for (int64_t l = 0; l < L; l++) m->layers[l].attn_norm = view(&p, E, 1);
    for (int64_t l = 0; l < L; l++) m->layers[l].wq = view(&p, E, E);
    for (int64_t l = 0; l < L; l++) m->layers[l].wk = view(&p, E, KV);
    for (int64_t l = 0; l < L; l++) m->layers[l].wv = view(&p, E, KV);
    for (int64_t l = 0; l < L; l++) m->layers[l].wo = view(&p, E, E);
    for (int64_t l = 0; l < L; l++) m->layers[l].ffn_norm = view(&p, E, 1);
    for (int64_t l = 0; l < L; l++) m->layers[l].ffn_gate = view(&p, E, F);
    for (int64_t l = 0; l < L; l++) m->layers[l].ffn_down = view(&p, F, E);
    for (int64_t l = 0; l < L; l++) m->layers[l].ffn_up = view(&p, E, F);
    m->output_norm = view(&p, E, 1);
    p += S * c->head_dim; /* freq_cis_real and freq_cis_imag: recomputed, not used */
    m->tied_output = shared;
    m->output      = shared ? m->tok_embd : view(&p, E, V);
    return LB_OK;
}
