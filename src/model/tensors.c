/* A model's tensors through its architecture's table (arch.h): lookup by role, the file-order
 * list, validation of every shape against the config, sizes. */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>

#include "core/fail.h"
#include "model_internal.h"

/* lb_layer's named fields and its slot array are the same tensors */
static_assert(offsetof(lb_layer, wq) == (LB_ROLE_ATTN_Q - LB_ROLE_LAYER_FIRST) * sizeof(lb_tensor), "slots");
static_assert(offsetof(lb_layer, ffn_down) == (LB_ROLE_FFN_DOWN - LB_ROLE_LAYER_FIRST) * sizeof(lb_tensor), "slots");
static_assert(offsetof(lb_layer, bq) == (LB_ROLE_ATTN_Q_BIAS - LB_ROLE_LAYER_FIRST) * sizeof(lb_tensor), "slots");
static_assert(offsetof(lb_layer, k_norm) == (LB_ROLE_ATTN_K_NORM - LB_ROLE_LAYER_FIRST) * sizeof(lb_tensor), "slots");
static_assert(offsetof(lb_layer, ffn_post_norm) == (LB_ROLE_FFN_POST_NORM - LB_ROLE_LAYER_FIRST) * sizeof(lb_tensor), "slots");
static_assert(offsetof(lb_layer, ffn_down_exps) == (LB_ROLE_FFN_DOWN_EXPS - LB_ROLE_LAYER_FIRST) * sizeof(lb_tensor), "slots");
static_assert(offsetof(lb_layer, ffn_down_shexp) == (LB_ROLE_FFN_DOWN_SHEXP - LB_ROLE_LAYER_FIRST) * sizeof(lb_tensor), "slots");
static_assert(sizeof(lb_layer) == LB_LAYER_SLOTS * sizeof(lb_tensor), "slots");

static bool is_layer_role(lb_tensor_role r) {
    return (int)r >= LB_ROLE_LAYER_FIRST && (int)r < LB_ROLE_LAYER_END;
}

int32_t lb_slot_first(const lb_slot *s) {
    return s->flags & LB_SLOT_GLOBAL ? -1 : 0;
}

int32_t lb_slot_end(const lb_model *m, const lb_slot *s) {
    return s->flags & LB_SLOT_GLOBAL ? 0 : m->cfg.n_layers;
}

void lb_tensor_name(char *buf, size_t cap, const char *name, int32_t layer, bool hf) {
    if (layer < 0) snprintf(buf, cap, "%s", name);
    else snprintf(buf, cap, hf ? "model.layers.%d.%s" : "blk.%d.%s", layer, name);
}

const lb_tensor *lb_model_tensor_c(const lb_model *m, int32_t layer, lb_tensor_role role) {
    if ((unsigned)role >= LB_ROLE_COUNT || (m->arch && m->arch->use[role] == LB_USE_NONE)) return NULL;
    if (is_layer_role(role))
        return layer >= 0 && layer < m->cfg.n_layers ? &m->layers[layer].slot[(int)role - LB_ROLE_LAYER_FIRST] : NULL;
    switch (role) {
    case LB_ROLE_TOKEN_EMBD:  return &m->tok_embd;
    case LB_ROLE_OUTPUT_NORM: return &m->output_norm;
    case LB_ROLE_OUTPUT:      return &m->output;
    case LB_ROLE_ROPE_FREQS:  return &m->rope_freqs;
    case LB_ROLE_ROPE_LONG:   return &m->rope_long;
    case LB_ROLE_ROPE_SHORT:  return &m->rope_short;
    default:                  return NULL;
    }
}

lb_tensor *lb_model_tensor(lb_model *m, int32_t layer, lb_tensor_role role) {
    return (lb_tensor *)lb_model_tensor_c(m, layer, role);
}

int64_t lb_model_dim(const lb_model *m, lb_dim d) {
    const lb_llama_config *c = &m->cfg;
    switch (d) {
    case LB_DIM_E:      return c->n_embd;
    case LB_DIM_F:      return c->n_ff;
    case LB_DIM_V:      return c->n_vocab;
    case LB_DIM_Q:      return (int64_t)c->n_heads * c->head_dim;
    case LB_DIM_KV:     return (int64_t)c->n_kv_heads * c->head_dim;
    case LB_DIM_D:      return c->head_dim;
    case LB_DIM_HALF_D: return c->head_dim / 2;
    case LB_DIM_X:      return c->n_expert;
    case LB_DIM_FX:     return c->n_ff_exp > 0 ? c->n_ff_exp : c->n_ff;
    case LB_DIM_FS:     return c->n_ff_shexp;
    case LB_DIM_QV:     return (int64_t)c->n_heads * (c->head_dim_v > 0 ? c->head_dim_v : c->head_dim);
    case LB_DIM_H:      return c->n_heads;
    case LB_DIM_QL:     return c->n_lora_q;
    case LB_DIM_KVL:    return c->n_lora_kv;
    case LB_DIM_KVA:    return (int64_t)c->n_lora_kv + c->n_rot;
    case LB_DIM_DN:     return c->head_dim - c->n_rot;
    case LB_DIM_DV:     return c->head_dim_v > 0 ? c->head_dim_v : c->head_dim;
    default:            return 1;
    }
}

bool lb_expert_groups_fit(const lb_llama_config *c) {
    const int32_t G = c->n_expert_groups;
    return G <= 1 || (c->n_expert % G == 0 && c->n_group_used > 0 && c->n_group_used <= G && c->n_expert / G >= 2 &&
                      c->n_group_used * (c->n_expert / G) >= c->n_expert_used);
}

bool lb_layer_windowed(const lb_llama_config *c, int32_t l) {
    return c->n_swa > 0 && (c->swa_pattern == 0 || l % c->swa_pattern < c->swa_pattern - 1);
}

/* Call fn on every present tensor in file order (the tied output skipped); stops at a
 * non-zero return. */
typedef int (*visit_fn)(void *user, const lb_slot *s, int32_t layer, const lb_tensor *t);

static int visit(const lb_model *m, visit_fn fn, void *user) {
    int            ns, rc = 0;
    const lb_slot *slots = lb_slots(&ns);
    for (int i = 0; i < ns && !rc;) {
        if (slots[i].flags & LB_SLOT_GLOBAL) {
            const lb_tensor *t = lb_model_tensor_c(m, -1, slots[i].role);
            if (t && t->data && !(slots[i].role == LB_ROLE_OUTPUT && m->tied_output))
                rc = fn(user, &slots[i], -1, t);
            i++;
            continue;
        }
        int e = i; /* the run of a block's slots */
        while (e < ns && !(slots[e].flags & LB_SLOT_GLOBAL)) e++;
        for (int32_t l = 0; l < m->cfg.n_layers && !rc; l++)
            for (int k = i; k < e && !rc; k++) {
                const lb_tensor *t = lb_model_tensor_c(m, l, slots[k].role);
                if (t && t->data) rc = fn(user, &slots[k], l, t);
            }
        i = e;
    }
    return rc;
}

static int count_one(void *user, const lb_slot *s, int32_t layer, const lb_tensor *t) {
    (void)s, (void)layer, (void)t;
    ++*(int32_t *)user;
    return 0;
}

int32_t lb_model_n_tensors(const lb_model *m) {
    int32_t n = 0;
    visit(m, count_one, &n);
    return n;
}

typedef struct {
    lb_named_tensor *out;
    int32_t          n, cap;
} list_ctx;

static int list_one(void *user, const lb_slot *s, int32_t layer, const lb_tensor *t) {
    list_ctx *c = user;
    if (c->n >= c->cap) { /* counted, not written */
        c->n++;
        return 0;
    }
    lb_named_tensor *nt = &c->out[c->n++];
    lb_tensor_name(nt->name, sizeof nt->name, s->gguf, layer, false);
    nt->t     = t;
    nt->role  = s->role;
    nt->layer = layer;
    return 0;
}

int32_t lb_model_tensors(const lb_model *m, lb_named_tensor *out, int32_t cap) {
    list_ctx c = { out, 0, out ? cap : 0 };
    visit(m, list_one, &c);
    return c.n;
}

lb_status lb_model_split_fused(lb_model *m, int32_t layer, const lb_fused *f, const lb_tensor *fused,
                               const char *name, lb_error *err) {
    int64_t rows = 0;
    for (int k = 0; k < 3 && f->parts[k] != LB_ROLE_COUNT; k++) rows += lb_model_dim(m, lb_slot_of(f->parts[k])->ne1);
    const int64_t ne0 = lb_model_dim(m, lb_slot_of(f->parts[0])->ne0);
    LB_RETURN_IF(fused->ne[0] != ne0 || fused->ne[1] != rows || fused->ne[2] != 1 || fused->ne[3] != 1, err,
                 LB_ERR_SHAPE, "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld] (its parts' rows)",
                 name, name, (long long)fused->ne[0], (long long)fused->ne[1], (long long)ne0, (long long)rows);
    const size_t rs  = lb_row_size(fused->type, ne0);
    int64_t      row = 0;
    for (int k = 0; k < 3 && f->parts[k] != LB_ROLE_COUNT; k++) {
        lb_tensor    *t = lb_model_tensor(m, layer, f->parts[k]);
        const int64_t n = lb_model_dim(m, lb_slot_of(f->parts[k])->ne1);
        *t              = *fused;
        t->ne[1]        = n;
        t->data         = (const uint8_t *)fused->data + (size_t)row * rs;
        row += n;
    }
    return LB_OK;
}

static lb_status check_tensor(const lb_tensor *t, const char *name, int64_t ne0, int64_t ne1, int64_t ne2,
                              const char *path, lb_error *err) {
    LB_RETURN_IF(!t->data, err, LB_ERR_NOT_FOUND, "%s: tensor '%s' is missing", path, name);
    LB_RETURN_IF(t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != 1, err,
                 LB_ERR_SHAPE, "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld]",
                 path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                 (long long)t->ne[3], (long long)ne0, (long long)ne1, (long long)ne2);
    LB_RETURN_IF(!lb_type_get_traits(t->type), err, LB_ERR_UNSUPPORTED,
                 "%s: tensor '%s' has a type lowbit cannot compute with", path, name);
    return LB_OK;
}

/* every slot: present when required, the shape of the config, f32 where the table says */
static lb_status check_slots(const lb_model *m, const char *path, lb_error *err) {
    int            ns;
    const lb_slot *slots = lb_slots(&ns);
    for (int i = 0; i < ns; i++) {
        const lb_slot *s      = &slots[i];
        for (int32_t l = lb_slot_first(s); l < lb_slot_end(m, s); l++) {
            const lb_tensor *t   = lb_model_tensor_c(m, l, s->role);
            const uint8_t    use = lb_layer_use(m->arch, &m->cfg, l, s->role);
            char             name[80];
            lb_tensor_name(name, sizeof name, s->gguf, l, false);
            LB_RETURN_IF(t && t->data && use == LB_USE_NONE, err, LB_ERR_SHAPE, "%s: tensor '%s' does not "
                         "belong in this layer of %s (%d leading dense layers, q's low rank %d)", path, name,
                         m->arch->name, m->cfg.n_dense_lead, m->cfg.n_lora_q);
            if (!t || (!t->data && use != LB_USE_REQUIRED)) continue;
            lb_status st = check_tensor(t, name, lb_model_dim(m, s->ne0), lb_model_dim(m, s->ne1),
                                        lb_model_dim(m, s->ne2), path, err);
            if (st) return st;
            LB_RETURN_IF((s->flags & LB_SLOT_F32) && t->type != LB_TYPE_F32, err, LB_ERR_UNSUPPORTED,
                         "%s: tensor '%s' must be f32 in memory", path, name);
        }
    }
    /* biases come as a group: q, k and v, or none */
    for (int32_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_layer *L = &m->layers[l];
        LB_RETURN_IF(!L->bq.data != !L->bk.data || !L->bq.data != !L->bv.data, err, LB_ERR_NOT_FOUND,
                     "%s: blk.%d has some of the attention biases q, k, v but not all", path, l);
    }
    return LB_OK;
}

lb_status lb_model_validate(const lb_model *m, const char *path, lb_error *err) {
    const lb_llama_config *c = &m->cfg;
    LB_RETURN_IF(c->n_embd <= 0 || c->n_ff <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
                     c->n_kv_heads <= 0 || c->n_vocab <= 0 || c->n_ctx_train <= 0,
                 err, LB_ERR_CORRUPT,
                 "%s: bad hyperparameters (n_embd %d, n_ff %d, n_layers %d, n_heads %d, "
                 "n_kv_heads %d, n_vocab %d, n_ctx %d)",
                 path, c->n_embd, c->n_ff, c->n_layers, c->n_heads, c->n_kv_heads, c->n_vocab,
                 c->n_ctx_train);
    LB_RETURN_IF(c->n_embd > (1 << 16) || c->n_ff > (1 << 18) || c->n_layers > 1024 || c->n_heads > (1 << 16) ||
                     c->n_vocab > (1 << 22) || c->n_ctx_train > (1 << 24),
                 err, LB_ERR_CORRUPT, "%s: absurd hyperparameters (n_embd %d, n_ff %d, "
                 "n_layers %d, n_vocab %d, n_ctx %d)", path, c->n_embd, c->n_ff, c->n_layers,
                 c->n_vocab, c->n_ctx_train);
    LB_RETURN_IF(c->n_heads % c->n_kv_heads != 0 || c->head_dim <= 0 || c->head_dim > 4096 ||
                     c->head_dim % 2 != 0,
                 err, LB_ERR_CORRUPT, "%s: n_embd %d, n_heads %d, n_kv_heads %d, head_dim %d "
                 "do not fit together", path, c->n_embd, c->n_heads, c->n_kv_heads, c->head_dim);
    LB_RETURN_IF(!(c->norm_eps > 0 && c->norm_eps < 1) || !(c->rope_theta > 0), err,
                 LB_ERR_CORRUPT, "%s: bad norm epsilon %g or rope base %g", path,
                 (double)c->norm_eps, (double)c->rope_theta);
    LB_RETURN_IF(c->n_swa < 0 || c->swa_pattern < 0 || c->swa_pattern > 1024 || !(c->rope_theta_swa >= 0 && c->rope_theta_swa <= 1e12f) ||
                     !(c->rope_linear_swa >= 0 && c->rope_linear_swa <= 1024) || !(c->attn_softcap >= 0 && c->attn_softcap <= 1e6f) ||
                     !(c->final_softcap >= 0 && c->final_softcap <= 1e6f) || !(c->attn_scale >= 0 && c->attn_scale <= 1e3f),
                 err, LB_ERR_CORRUPT, "%s: bad sliding window %d (pattern %d), window RoPE base %g, "
                 "soft-capping %g/%g or attention scale %g", path, c->n_swa, c->swa_pattern,
                 (double)c->rope_theta_swa, (double)c->attn_softcap, (double)c->final_softcap,
                 (double)c->attn_scale);
    LB_RETURN_IF(!(c->rope_yarn >= 0 && c->rope_yarn <= 1024) || !(c->yarn_beta_fast >= 0 && c->yarn_beta_fast <= 1e6f) ||
                     !(c->yarn_beta_slow >= 0 && c->yarn_beta_slow <= 1e6f) || c->rope_orig_ctx < 0 ||
                     !(c->rope_attn_factor >= 0 && c->rope_attn_factor <= 1e3f),
                 err, LB_ERR_CORRUPT, "%s: bad RoPE scaling (YaRN factor %g, betas %g/%g, original context %d, "
                 "attention factor %g)", path, (double)c->rope_yarn, (double)c->yarn_beta_fast,
                 (double)c->yarn_beta_slow, c->rope_orig_ctx, (double)c->rope_attn_factor);
    LB_RETURN_IF(!m->arch, err, LB_ERR_PARAM, "%s: the model has no architecture", path);
    LB_RETURN_IF(m->arch->moe != (c->n_expert > 0) || c->n_expert < 0 || c->n_expert > 4096 ||
                     (c->n_expert > 0 && (c->n_expert_used <= 0 || c->n_expert_used > c->n_expert || c->n_expert_used > 256)) ||
                     c->n_ff_exp < 0 || c->n_ff_exp > (1 << 18) || c->n_ff_shexp < 0 || c->n_ff_shexp > (1 << 18) ||
                     (m->arch->use[LB_ROLE_FFN_GATE_SHEXP] && c->n_ff_shexp <= 0),
                 err, LB_ERR_CORRUPT, "%s: bad mixture of experts for %s: %d experts, %d used, expert FFN %d, "
                 "shared FFN %d", path, m->arch->name, c->n_expert, c->n_expert_used, c->n_ff_exp, c->n_ff_shexp);
    LB_RETURN_IF(m->arch->ops.mla && (c->n_lora_kv <= 0 || c->n_lora_kv > (1 << 16) || c->n_lora_q < 0 ||
                                      c->n_lora_q > (1 << 16) || c->n_rot <= 0 || c->n_rot % 2 || c->n_rot >= c->head_dim ||
                                      c->head_dim_v <= 0 || c->head_dim_v > 4096 || c->n_kv_heads != 1 ||
                                      c->n_dense_lead < 0 || c->n_dense_lead > c->n_layers ||
                                      c->n_expert_shared <= 0 || c->n_ff_shexp != c->n_expert_shared * c->n_ff_exp),
                 err, LB_ERR_CORRUPT, "%s: bad latent attention or shared experts: q rank %d, latent %d, rotary %d "
                 "of head %d, value head %d, %d KV heads, %d dense layers, %d shared experts", path, c->n_lora_q,
                 c->n_lora_kv, c->n_rot, c->head_dim, c->head_dim_v, c->n_kv_heads, c->n_dense_lead, c->n_expert_shared);
    LB_RETURN_IF(c->moe_gating < 0 || c->moe_gating > LB_GATING_SIGMOID || !(c->moe_w_scale >= 0 && c->moe_w_scale <= 1e3f) ||
                     c->n_expert_groups < 0 || c->n_group_used < 0 ||
                     !lb_expert_groups_fit(c) ||
                     !(c->rope_yarn_log_mul >= 0 && c->rope_yarn_log_mul <= 1e3f),
                 err, LB_ERR_CORRUPT, "%s: bad router: gating %d, weights scale %g, %d expert groups (%d used), "
                 "yarn log multiplier %g", path, c->moe_gating, (double)c->moe_w_scale, c->n_expert_groups,
                 c->n_group_used, (double)c->rope_yarn_log_mul);
    lb_status st = check_slots(m, path, err);
    if (st) return st;
    if (m->vocab)
        LB_RETURN_IF(lb_vocab_n_tokens(m->vocab) != c->n_vocab, err, LB_ERR_SHAPE,
                     "%s: the tokenizer has %d tokens but the model's vocabulary is %d",
                     path, lb_vocab_n_tokens(m->vocab), c->n_vocab);
    return LB_OK;
}

typedef struct {
    size_t  bytes;
    int64_t params;
} sizes;

static int add_sizes(void *user, const lb_slot *s, int32_t layer, const lb_tensor *t) {
    (void)layer;
    sizes *z = user;
    if (s->flags & LB_SLOT_ROPE) return 0; /* computed from the config: not a weight */
    z->bytes += lb_tensor_nbytes(t);
    z->params += lb_tensor_nelements(t);
    return 0;
}

size_t lb_model_nbytes(const lb_model *m) {
    sizes z = { 0, 0 };
    visit(m, add_sizes, &z);
    return z.bytes;
}

int64_t lb_model_nparams(const lb_model *m) {
    sizes z = { 0, 0 };
    visit(m, add_sizes, &z);
    return z.params;
}

size_t lb_model_expert_nbytes(const lb_model *m) {
    size_t n = 0;
    for (int32_t l = 0; m->cfg.n_expert > 0 && l < m->cfg.n_layers; l++)
        for (int r = LB_ROLE_LAYER_FIRST; r < LB_ROLE_LAYER_END; r++) {
            const lb_tensor *t = lb_model_tensor_c(m, l, (lb_tensor_role)r);
            if (t && t->data && (lb_slot_of((lb_tensor_role)r)->flags & LB_SLOT_EXPERTS)) n += lb_tensor_nbytes(t);
        }
    return n;
}

size_t lb_model_token_nbytes(const lb_model *m) {
    size_t n = lb_model_nbytes(m);
    if (!m->tied_output) n -= lb_tensor_nbytes(&m->tok_embd) - lb_row_size(m->tok_embd.type, m->tok_embd.ne[0]);
    const int32_t X = m->cfg.n_expert, K = m->cfg.n_expert_used;
    return X > 0 ? n - lb_model_expert_nbytes(m) / (size_t)X * (size_t)(X - K) : n; /* the experts not chosen */
}
