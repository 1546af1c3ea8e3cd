/* lowbit synth (synth.h): random-weight Llama models of real shapes, streamed into a GGUF.
 * Each tensor is a fill callback of the GGUF writer: rows are drawn (each from its own seeded
 * stream) and quantized in parallel, 16 MiB of file at a time, so memory stays small and the
 * bytes do not depend on the thread count. Tensor order and metadata are the model writer's
 * (save_gguf.c), so the file reads like any lowbit or llama.cpp GGUF. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/synth.h"
#include "model_internal.h"

#define ROWS_PER_TASK 16
#define OUTLIER_SCALE 8.0f

lb_status lb_synth_shape(const char *name, lb_llama_config *cfg, lb_error *err) {
    static const struct {
        const char     *name;
        lb_llama_config cfg;
    } shapes[] = {
        { "tiny", { .n_embd = 256, .n_ff = 768, .n_layers = 4, .n_heads = 4, .n_kv_heads = 2, .head_dim = 64, .n_vocab = 512, .n_ctx_train = 512, .norm_eps = 1e-5f, .rope_theta = 10000.0f } },
        { "1b", { .n_embd = 2048, .n_ff = 5632, .n_layers = 22, .n_heads = 32, .n_kv_heads = 4, .head_dim = 64, .n_vocab = 32000, .n_ctx_train = 2048, .norm_eps = 1e-5f, .rope_theta = 10000.0f } },   /* TinyLlama-1.1B */
        { "7b", { .n_embd = 4096, .n_ff = 11008, .n_layers = 32, .n_heads = 32, .n_kv_heads = 32, .head_dim = 128, .n_vocab = 32000, .n_ctx_train = 4096, .norm_eps = 1e-5f, .rope_theta = 10000.0f } }, /* Llama-2-7B */
        { "8b", { .n_embd = 4096, .n_ff = 14336, .n_layers = 32, .n_heads = 32, .n_kv_heads = 8, .head_dim = 128, .n_vocab = 128256, .n_ctx_train = 8192, .norm_eps = 1e-5f, .rope_theta = 500000.0f } }, /* Llama-3-8B */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (strcmp(shapes[i].name, name) == 0) {
            *cfg = shapes[i].cfg;
            return LB_OK;
        }
    return lb_fail(err, LB_ERR_PARAM, "unknown shape '%s' (tiny, 1b, 7b, 8b)", name);
}

/* llama.cpp's general.file_type of a model whose matrices are all of type t */
static uint32_t file_type_of(lb_type t) {
    switch (t) {
    case LB_TYPE_F32: return 0;     case LB_TYPE_F16: return 1;     case LB_TYPE_Q4_0: return 2;
    case LB_TYPE_Q4_1: return 3;    case LB_TYPE_Q8_0: return 7;    case LB_TYPE_Q5_0: return 8;
    case LB_TYPE_Q5_1: return 9;    case LB_TYPE_Q2_K: return 10;   case LB_TYPE_Q3_K: return 11;
    case LB_TYPE_Q4_K: return 14;   case LB_TYPE_Q5_K: return 16;   case LB_TYPE_Q6_K: return 18;
    case LB_TYPE_IQ4_NL: return 25; case LB_TYPE_IQ4_XS: return 30; case LB_TYPE_BF16: return 32;
    case LB_TYPE_TQ1_0: return 36;  case LB_TYPE_TQ2_0: return 37;  default: return 0;
    }
}

/* ---- random numbers: one splitmix64 stream per row, normals by Box-Muller ---- */

typedef struct {
    uint64_t s;
    float    spare;
    bool     has_spare;
} rng;

static uint64_t next_u64(rng *g) {
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
    z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float normal(rng *g) {
    if (g->has_spare) {
        g->has_spare = false;
        return g->spare;
    }
    const uint64_t u  = next_u64(g);
    const float    u1 = ((float)(u >> 40) + 0.5f) * 0x1p-24f, u2 = (float)(u & 0xFFFFFF) * 0x1p-24f;
    const float    r  = sqrtf(-2.0f * logf(u1));
    g->spare          = r * sinf(6.2831853f * u2);
    g->has_spare      = true;
    return r * cosf(6.2831853f * u2);
}

/* ---- tensors ---- */

/* a tied embedding (a family without an output matrix: Gemma 2) is the output head too: rows of
 * norm ~1, so that the logits spread as a trained model's do */
/* a router (mixture of experts) is skewed: expert e's row has a spread of 2 * 0.6^e, so the
 * first experts win most tokens and the last few are rare, as in trained models */
typedef enum { KIND_MATRIX, KIND_NORM, KIND_EMBEDDING, KIND_TIED_EMBEDDING, KIND_BIAS, KIND_ROUTER } tensor_kind;

typedef struct {
    const lb_synth_params *p;
    char                   name[64];
    uint32_t               index; /* seeds the rows */
    tensor_kind            kind;
    int64_t                n, rows;
    int64_t                ne1, ne2; /* rows = ne1 * ne2 (the experts' 3-D tensors) */
    lb_type                type;
    size_t                 row_bytes;
    int64_t               *done, total; /* values written so far (all tensors), and in all */
} synth_tensor;

/* Input channel j of rows n wide is an outlier (the same channels in every tensor reading the
 * same stream, as in real models). */
static bool is_outlier(uint64_t seed, int64_t n, int64_t j) {
    rng g = { .s = seed ^ (uint64_t)n * 0x2545F4914F6CDD1Dull ^ (uint64_t)j * 0x9E3779B97F4A7C15ull };
    return (next_u64(&g) & 255) == 0;
}

static void gen_row(const synth_tensor *t, int64_t r, float *x) {
    rng g = { .s = t->p->seed * 0xD1B54A32D192ED03ull ^ (uint64_t)t->index << 40 ^ (uint64_t)r };
    switch (t->kind) {
    case KIND_NORM:
        for (int64_t j = 0; j < t->n; j++) x[j] = 1.0f + 0.1f * normal(&g);
        break;
    case KIND_EMBEDDING:
        for (int64_t j = 0; j < t->n; j++) x[j] = 0.02f * normal(&g);
        break;
    case KIND_TIED_EMBEDDING:
        for (int64_t j = 0; j < t->n; j++) x[j] = 1.0f / sqrtf((float)t->n) * normal(&g);
        break;
    case KIND_BIAS:
        for (int64_t j = 0; j < t->n; j++) x[j] = 0.1f * normal(&g);
        break;
    case KIND_ROUTER: {
        const float sigma = 2.0f * powf(0.6f, (float)r) / sqrtf((float)t->n);
        for (int64_t j = 0; j < t->n; j++) x[j] = sigma * normal(&g);
        break;
    }
    case KIND_MATRIX: {
        const float sigma = expf(0.3f * normal(&g)) / sqrtf((float)t->n);
        for (int64_t j = 0; j < t->n; j++)
            x[j] = sigma * normal(&g) * (is_outlier(t->p->seed, t->n, j) ? OUTLIER_SCALE : 1.0f);
        break;
    }
    }
}

static size_t fill(void *user, uint8_t *buf, size_t cap, size_t off, lb_error *err) {
    synth_tensor *t  = user;
    const int64_t r0 = (int64_t)(off / t->row_bytes);
    int64_t       nr = (int64_t)(cap / t->row_bytes);
    if (nr > t->rows - r0) nr = t->rows - r0;
    if (nr < 1) {
        lb_fail(err, LB_ERR_PARAM, "tensor '%s': a row of %zu bytes exceeds the write buffer",
                t->name, t->row_bytes);
        return 0;
    }
    bool oom = false;
#pragma omp parallel
    {
        float *x = malloc((size_t)(ROWS_PER_TASK * t->n) * sizeof *x);
        if (!x) {
#pragma omp atomic write
            oom = true;
        }
#pragma omp for schedule(dynamic)
        for (int64_t c = 0; c < nr; c += ROWS_PER_TASK) {
            if (!x) continue;
            const int64_t m = nr - c < ROWS_PER_TASK ? nr - c : ROWS_PER_TASK;
            for (int64_t i = 0; i < m; i++) gen_row(t, r0 + c + i, x + i * t->n);
            lb_quantize_rows(t->type, buf + (size_t)c * t->row_bytes, x, m, t->n, NULL);
        }
        free(x);
    }
    if (oom) {
        lb_fail(err, LB_ERR_NOMEM, "out of memory generating '%s'", t->name);
        return 0;
    }
    *t->done += nr * t->n;
    if (t->p->progress) t->p->progress(t->p->progress_user, "synth", *t->done, t->total);
    return (size_t)nr * t->row_bytes;
}

/* ---- vocabulary ---- */

/* The i-th lowercase word of len letters ("aa", "ab", ...). */
static void word(char *s, int64_t i, int len) {
    for (int k = len - 1; k >= 0; k--, i /= 26) s[k] = (char)('a' + i % 26);
    s[len] = '\0';
}

/* <unk> <s> </s>, the 256 byte pieces, then "▁", printable ASCII, "▁" + words and words of
 * growing length, scores falling: a SentencePiece vocabulary that tokenizes any text. */
static lb_status make_vocab(lb_vocab **out, int32_t n, lb_error *err) {
    LB_RETURN_IF(n < 260, err, LB_ERR_PARAM, "a generated vocabulary needs at least 260 tokens, "
                 "not %d (or give --vocab FILE)", n);
    lb_status st = lb_vocab_create(out, n, err);
    if (st) return st;
    lb_vocab *v  = *out;
    int32_t   id = 0;
    char      piece[16];
#define PUT(text, type) st = st ? st : lb_vocab_set_token(v, id, text, strlen(text), -(float)id, type), id++
    PUT("<unk>", LB_TOKEN_UNKNOWN);
    PUT("<s>", LB_TOKEN_CONTROL);
    PUT("</s>", LB_TOKEN_CONTROL);
    for (int b = 0; b < 256; b++) {
        snprintf(piece, sizeof piece, "<0x%02X>", b);
        PUT(piece, LB_TOKEN_BYTE);
    }
    PUT("\xe2\x96\x81", LB_TOKEN_NORMAL);
    for (int c = 33; c < 127 && id < n; c++) {
        piece[0] = (char)c, piece[1] = '\0';
        PUT(piece, LB_TOKEN_NORMAL);
    }
    int64_t count = 26;
    for (int len = 1; len <= 5 && id < n; len++, count *= 26)
        for (int pre = 1; pre >= (len > 1 ? 0 : 1) && id < n; pre--)
            for (int64_t i = 0; i < count && id < n; i++) {
                memcpy(piece, "\xe2\x96\x81", 3);
                word(piece + 3 * pre, i, len);
                PUT(piece, LB_TOKEN_NORMAL);
            }
#undef PUT
    lb_vocab_set_special(v, 1, 2, 0);
    lb_vocab_set_flags(v, true, true);
    if (!st) st = lb_vocab_build(v, err);
    if (st) {
        lb_vocab_free(v);
        *out = NULL;
        return lb_fail(err, st, "cannot build the generated vocabulary");
    }
    return LB_OK;
}

/* A tokenizer file's vocabulary padded with unused pieces to n tokens. */
static lb_status load_vocab(lb_vocab **out, const char *path, int32_t n, lb_error *err) {
    lb_vocab *src;
    lb_status st = lb_vocab_load_any(&src, path, err);
    if (st) return st;
    const int32_t have = lb_vocab_n_tokens(src);
    if (have > n) {
        lb_vocab_free(src);
        return lb_fail(err, LB_ERR_SHAPE, "%s: %d tokens, more than the shape's vocabulary of %d "
                       "(raise --n-vocab)", path, have, n);
    }
    st = lb_vocab_create(out, n, err);
    for (int32_t i = 0; !st && i < n; i++) {
        char        pad[32];
        size_t      len;
        const char *text = i < have ? lb_vocab_text(src, i, &len) : pad;
        if (i >= have) len = (size_t)snprintf(pad, sizeof pad, "<unused%d>", i - have);
        st = lb_vocab_set_token(*out, i, text, len, i < have ? lb_vocab_score(src, i) : -1e9f,
                                i < have ? lb_vocab_type(src, i) : LB_TOKEN_UNUSED);
    }
    if (!st) {
        lb_vocab_set_special(*out, lb_vocab_bos(src), lb_vocab_eos(src), lb_vocab_unk(src));
        lb_vocab_set_pad(*out, lb_vocab_pad(src));
        lb_vocab_set_flags(*out, lb_vocab_add_bos(src), lb_vocab_add_space_prefix(src));
        st = lb_vocab_build(*out, err);
    }
    if (!st && lb_vocab_kind_of(src) == LB_VOCAB_BPE) { /* byte-level BPE: its merges and pre-tokenizer */
        const size_t nm = lb_vocab_n_merges(src), nr = lb_vocab_n_pre_regex(src);
        const char **mr = malloc((nm + nr + 1) * sizeof *mr);
        for (size_t i = 0; mr && i < nm; i++) mr[i] = lb_vocab_merge(src, i);
        for (size_t i = 0; mr && i < nr; i++) mr[nm + i] = lb_vocab_pre_regex(src, i);
        const char *pre = lb_vocab_pre(src);
        st = !mr ? lb_fail(err, LB_ERR_NOMEM, "out of memory")
                 : lb_vocab_set_bpe(*out, mr, nm, pre, pre ? NULL : mr + nm, pre ? 0 : nr, lb_vocab_ignore_merges(src), err);
        free(mr);
        lb_vocab_set_flags(*out, lb_vocab_add_bos(src), lb_vocab_add_space_prefix(src));
        if (!st) st = lb_vocab_build(*out, err);
    }
    if (!st && lb_vocab_kind_of(src) == LB_VOCAB_UGM) { /* Unigram: its normalizer too */
        size_t      cn;
        const void *cm = lb_vocab_charsmap(src, &cn);
        st = lb_vocab_set_unigram(*out, cm, cn, lb_vocab_remove_extra_whitespaces(src), err);
    }
    lb_vocab_free(src);
    if (st) {
        lb_vocab_free(*out);
        *out = NULL;
        return lb_fail(err, st, "%s: cannot pad the vocabulary to %d tokens", path, n);
    }
    return LB_OK;
}

/* ---- the file ---- */

void lb_synth_moe_defaults(const lb_arch *a, lb_llama_config *c) {
    if (c->n_expert <= 0) c->n_expert = 8;
    if (c->n_expert_used <= 0) c->n_expert_used = 2;
    if (!a->ops.moe_ff_exp) c->n_ff_exp = 0; /* Mixtral's experts are feed_forward_length wide */
    else if (c->n_ff_exp <= 0) c->n_ff_exp = c->n_ff / 2;
    if (a->use[LB_ROLE_FFN_GATE_SHEXP] && c->n_ff_shexp <= 0) c->n_ff_shexp = c->n_ff;
    if (!a->use[LB_ROLE_FFN_GATE_SHEXP]) c->n_ff_shexp = 0;
    if (a->ops.mla) { /* DeepSeek: shared experts as wide as the routed ones */
        if (c->n_expert_shared <= 0) c->n_expert_shared = 2;
        c->n_ff_shexp = c->n_expert_shared * c->n_ff_exp;
    }
}

/* MLA's sizes left 0 in c (head_dim set), in DeepSeek-V2's proportions: half of a query head
 * rotary, value heads as wide as the rest, a latent four of those, one KV head, one dense
 * layer first (when there are two or more); n_dense_lead < 0 means 0 */
static void mla_defaults(lb_llama_config *c) {
    if (c->n_rot <= 0) c->n_rot = c->head_dim / 4 * 2;
    if (c->head_dim_v <= 0) c->head_dim_v = c->head_dim - c->n_rot;
    if (c->n_lora_kv <= 0) c->n_lora_kv = 4 * (c->head_dim - c->n_rot);
    if (c->n_dense_lead == 0) c->n_dense_lead = c->n_layers > 1 ? 1 : 0;
    if (c->n_dense_lead < 0) c->n_dense_lead = 0;
    c->n_kv_heads = 1;
}

lb_status lb_synth_write(const char *path, const lb_synth_params *p, lb_error *err) {
    const lb_llama_config *c = &p->cfg;
    const lb_arch *arch = lb_arch_by_name(p->arch ? p->arch : "llama");
    /* (phi3's ffn_up is written as gate's rows then up's, as llama.cpp reads it) */
    LB_RETURN_IF(!arch, err, LB_ERR_PARAM, "synth: unknown architecture '%s' (%s)", p->arch, lb_arch_names());
    const int32_t hd = c->head_dim > 0 ? c->head_dim : c->n_heads > 0 ? c->n_embd / c->n_heads : 0;
    LB_RETURN_IF(c->n_embd <= 0 || c->n_ff <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
                     c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads || hd <= 0 ||
                     (c->head_dim <= 0 && c->n_embd % c->n_heads) ||
                     c->n_vocab <= 0 || c->n_ctx_train <= 0 || hd % 2,
                 err, LB_ERR_PARAM, "synth: shape does not fit together (n_embd %d, n_ff %d, "
                 "n_layers %d, n_heads %d, n_kv_heads %d, n_vocab %d)", c->n_embd, c->n_ff,
                 c->n_layers, c->n_heads, c->n_kv_heads, c->n_vocab);
    LB_RETURN_IF(lb_type_to_ggml(p->type) < 0, err, LB_ERR_UNSUPPORTED,
                 "synth writes GGUF types; %s has no ggml id", lb_type_name(p->type));
    lb_model m = { .arch = arch, .cfg = *c };
    m.cfg.head_dim = hd;
    lb_arch_config_defaults(arch, &m.cfg);
    if (!arch->moe) m.cfg.n_expert = m.cfg.n_expert_used = m.cfg.n_ff_exp = m.cfg.n_ff_shexp = 0;
    else lb_synth_moe_defaults(arch, &m.cfg);
    if (arch->ops.mla) mla_defaults(&m.cfg);
    if (!arch->ops.mla) m.cfg.n_lora_q = m.cfg.n_lora_kv = m.cfg.n_rot = m.cfg.head_dim_v = m.cfg.n_dense_lead = 0;
    LB_RETURN_IF(arch->ops.mla && (m.cfg.n_rot <= 0 || m.cfg.n_rot % 2 || m.cfg.n_rot >= hd ||
                                   m.cfg.n_dense_lead > m.cfg.n_layers || !lb_expert_groups_fit(&m.cfg)),
                 err, LB_ERR_PARAM, "synth: latent attention does not fit: rotary %d of head %d, %d dense layers of %d, "
                 "%d expert groups (%d used)", m.cfg.n_rot, hd, m.cfg.n_dense_lead, m.cfg.n_layers, m.cfg.n_expert_groups,
                 m.cfg.n_group_used);
    LB_RETURN_IF(arch->moe && (m.cfg.n_expert_used > m.cfg.n_expert || m.cfg.n_expert > 4096), err, LB_ERR_PARAM,
                 "synth: %d experts used of %d", m.cfg.n_expert_used, m.cfg.n_expert);
    char          name[96];
    snprintf(name, sizeof name, "lowbit synth %dx%d %s", c->n_layers, c->n_embd, lb_type_name(p->type));
    m.name                  = name;
    int             ns; /* the architecture's required slots (and the output), in file order */
    const lb_slot  *slots = lb_slots(&ns);
    int32_t         n_t   = 0; /* at most: every slot of the table */
    for (int i = 0; i < ns; i++) n_t += slots[i].flags & LB_SLOT_GLOBAL ? 1 : c->n_layers;
    synth_tensor   *ts      = calloc((size_t)n_t, sizeof *ts);
    lb_gguf_writer *w       = lb_gguf_writer_create();
    int64_t         done = 0, total = 0;
    lb_status       st = LB_OK;
    LB_GOTO_IF(!ts || !w, err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(p->vocab_path ? load_vocab(&m.vocab, p->vocab_path, c->n_vocab, err)
                         : make_vocab(&m.vocab, c->n_vocab, err));
    LB_GOTO_IF((st = lb_model_write_meta(w, &m, file_type_of(p->type))), err, st,
               "%s: cannot build metadata (%s)", path, lb_status_str(st));
    int32_t k = 0;
#define ADD(KIND, N, ROWS, NE2, ...)                                                               \
    do {                                                                                           \
        synth_tensor *t = &ts[k];                                                                  \
        t->p = p, t->index = (uint32_t)k, t->kind = KIND, t->n = N, t->rows = (ROWS) * (NE2);     \
        t->ne1 = ROWS, t->ne2 = NE2;                                                               \
        t->type = KIND == KIND_NORM || KIND == KIND_BIAS || KIND == KIND_ROUTER ? LB_TYPE_F32 : p->type; \
        t->done = &done;                                                                           \
        snprintf(t->name, sizeof t->name, __VA_ARGS__);                                            \
        t->row_bytes = lb_row_size(t->type, N);                                                    \
        LB_GOTO_IF(t->row_bytes == 0, err, LB_ERR_SHAPE, "synth: %s rows of %lld values do not "   \
                   "fit type %s", t->name, (long long)(N), lb_type_name(t->type));                 \
        total += (N) * t->rows;                                                                    \
        k++;                                                                                       \
    } while (0)
    for (int i = 0; i < ns;) {
        int e = i + 1; /* a global, or the run of a block's slots */
        if (!(slots[i].flags & LB_SLOT_GLOBAL))
            while (e < ns && !(slots[e].flags & LB_SLOT_GLOBAL)) e++;
        for (int32_t l = lb_slot_first(&slots[i]); l < lb_slot_end(&m, &slots[i]); l++)
            for (int j = i; j < e; j++) {
                const lb_slot *s = &slots[j];
                const uint8_t use = lb_layer_use(m.arch, &m.cfg, l, s->role);
                const bool    sel_bias = s->role == LB_ROLE_FFN_EXP_PROBS_B && m.cfg.moe_gating == LB_GATING_SIGMOID;
                if (use == LB_USE_NONE || (use != LB_USE_REQUIRED && s->role != LB_ROLE_OUTPUT && !sel_bias)) continue;
                const bool bias = s->role == LB_ROLE_ATTN_Q_BIAS || s->role == LB_ROLE_ATTN_K_BIAS ||
                                  s->role == LB_ROLE_ATTN_V_BIAS || s->role == LB_ROLE_FFN_GATE_INP_SHEXP || sel_bias;
                const bool tied = m.arch->use[LB_ROLE_OUTPUT] == LB_USE_NONE;
                const int  kind = s->role == LB_ROLE_TOKEN_EMBD ? (tied ? KIND_TIED_EMBEDDING : KIND_EMBEDDING)
                                : s->role == LB_ROLE_FFN_GATE_INP ? KIND_ROUTER
                                : bias                          ? KIND_BIAS
                                : s->flags & LB_SLOT_F32         ? KIND_NORM
                                                                 : KIND_MATRIX;
                const int64_t   n = lb_model_dim(&m, s->ne0);
                int64_t         rows = lb_model_dim(&m, s->ne1);
                const int64_t   ne2  = lb_model_dim(&m, s->ne2);
                int             part;
                const lb_fused *fu = lb_arch_fusion(m.arch, s->role, &part);
                if (fu && fu->gguf_write) { /* one tensor of all the parts' rows, at the last part */
                    if (part + 1 < 3 && fu->parts[part + 1] != LB_ROLE_COUNT) continue;
                    for (int q = 0; q < part; q++) rows += lb_model_dim(&m, lb_slot_of(fu->parts[q])->ne1);
                    ADD(kind, n, rows, ne2, "blk.%d.%s", l, fu->gguf);
                    continue;
                }
                if (l < 0) ADD(kind, n, rows, ne2, "%s", s->gguf);
                else ADD(kind, n, rows, ne2, "blk.%d.%s", l, s->gguf);
            }
        i = e;
    }
#undef ADD
    for (int32_t i = 0; i < k; i++) {
        const int64_t ne[3] = { ts[i].n, ts[i].ne1, ts[i].ne2 };
        LB_TRY(lb_gguf_writer_add_tensor_fill(w, ts[i].name, (uint32_t)lb_type_to_ggml(ts[i].type),
                                              ts[i].ne2 > 1 ? 3 : ts[i].rows > 1 ? 2 : 1, ne,
                                              ts[i].row_bytes * (size_t)ts[i].rows, fill, &ts[i], err));
    }
    for (int32_t i = 0; i < k; i++) ts[i].total = total;
    if (p->progress) p->progress(p->progress_user, "synth", 0, total);
    st = lb_gguf_writer_write(w, path, err);
fail:
    lb_vocab_free(m.vocab);
    lb_gguf_writer_free(w);
    free(ts);
    return st;
}

/* ---- sparse upcycling ---- */

lb_status lb_synth_upcycle(const char *path, const lb_model *dense, const lb_upcycle_params *p, lb_error *err) {
    const char    *to  = !strcmp(dense->arch->name, "llama") ? "mixtral" : !strcmp(dense->arch->name, "qwen3") ? "qwen3moe" : NULL;
    const int32_t  X = p->n_expert > 0 ? p->n_expert : 8, K = p->n_expert_used > 0 ? p->n_expert_used : 2;
    LB_RETURN_IF(!to, err, LB_ERR_UNSUPPORTED, "upcycle: a %s model has no mixture-of-experts family here (llama "
                 "becomes mixtral, qwen3 qwen3moe)", dense->arch->name);
    LB_RETURN_IF(K > X || X > 256 || !(p->noise >= 0 && p->noise < 1), err, LB_ERR_PARAM,
                 "upcycle: %d experts used of %d, noise %g", K, X, (double)p->noise);
    lb_model m = *dense; /* the same tensors but the FFN's: views of the dense model */
    m.arch     = lb_arch_by_name(to);
    m.priv     = NULL;   /* lowbit's own keys (the dense model's name a new one) */
    m.cfg.n_expert = X, m.cfg.n_expert_used = K;
    m.cfg.n_ff_exp = m.arch->ops.moe_ff_exp ? dense->cfg.n_ff : 0;
    char name[160];
    snprintf(name, sizeof name, "%s upcycled to %d experts", dense->name ? dense->name : "lowbit", X);
    m.name      = name;
    m.layers    = calloc((size_t)dense->cfg.n_layers, sizeof *m.layers);
    float **own = calloc((size_t)dense->cfg.n_layers * 4, sizeof *own);
    lb_status st = LB_OK;
    LB_GOTO_IF(!m.layers || !own, err, LB_ERR_NOMEM, "out of memory");
    const int64_t E = dense->cfg.n_embd;
    const lb_tensor_role from[3] = { LB_ROLE_FFN_GATE, LB_ROLE_FFN_UP, LB_ROLE_FFN_DOWN };
    const lb_tensor_role into[3] = { LB_ROLE_FFN_GATE_EXPS, LB_ROLE_FFN_UP_EXPS, LB_ROLE_FFN_DOWN_EXPS };
    for (int32_t l = 0; l < dense->cfg.n_layers; l++) {
        lb_layer *L = &m.layers[l];
        *L          = dense->layers[l];
        for (int k = 0; k < 3; k++) { /* each expert: the dense FFN times (1 + noise N(0, 1)) */
            const lb_tensor *d = lb_model_tensor_c(dense, l, from[k]);
            const int64_t    n = d->ne[0], rows = d->ne[1];
            float           *w = own[l * 4 + k] = malloc((size_t)(n * rows * X) * sizeof *w);
            LB_GOTO_IF(!w, err, LB_ERR_NOMEM, "out of memory for the experts");
            for (int64_t r = 0; r < rows; r++) lb_tensor_get_row_f32(d, r, w + r * n);
            for (int32_t e = X - 1; e >= 0; e--) {
                rng g = { .s = p->seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)(l * 3 + k) << 32 ^ (uint64_t)e };
                float *o = w + (size_t)e * (size_t)(n * rows);
                for (int64_t i = 0; i < n * rows; i++) o[i] = w[i] * (1.0f + p->noise * normal(&g));
            }
            lb_tensor *t = lb_model_tensor(&m, l, into[k]);
            *t = (lb_tensor){ .type = LB_TYPE_F32, .n_dims = 3, .ne = { n, rows, X, 1 }, .data = w };
            L->slot[(int)from[k] - LB_ROLE_LAYER_FIRST] = (lb_tensor){ 0 }; /* no dense FFN */
        }
        float *r = own[l * 4 + 3] = malloc((size_t)(E * X) * sizeof *r); /* synth's skewed router */
        LB_GOTO_IF(!r, err, LB_ERR_NOMEM, "out of memory");
        synth_tensor rt = { .p = &(lb_synth_params){ .seed = p->seed }, .index = (uint32_t)(1000 + l), .kind = KIND_ROUTER, .n = E };
        for (int32_t e = 0; e < X; e++) gen_row(&rt, e, r + (size_t)e * (size_t)E);
        L->ffn_gate_inp = (lb_tensor){ .type = LB_TYPE_F32, .n_dims = 2, .ne = { E, X, 1, 1 }, .data = r };
    }
    st = lb_model_save_gguf(&m, path, p->type, err);
fail:
    for (int32_t i = 0; own && i < dense->cfg.n_layers * 4; i++) free(own[i]);
    free(own);
    free(m.layers);
    return st;
}
