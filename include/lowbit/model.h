/* The Llama-family model: configuration, weights (tensor views), tokenizer; loading from
 * GGUF or a llama2.c checkpoint, saving as GGUF; and the forward pass with its KV cache.
 *
 * Shapes (ggml order, ne[0] first): E = n_embd, F = n_ff, V = n_vocab, H = n_heads,
 * K = n_kv_heads, D = head_dim. A linear weight has ne = [in, out]. */
#ifndef LOWBIT_MODEL_H
#define LOWBIT_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "arch.h"
#include "core.h"
#include "gguf.h"
#include "tensor.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_llama_config {
    int32_t n_embd;      /* E */
    int32_t n_ff;        /* F */
    int32_t n_layers;
    int32_t n_heads;     /* H */
    int32_t n_kv_heads;  /* K, divides H */
    int32_t head_dim;    /* D = E / H */
    int32_t n_vocab;     /* V */
    int32_t n_ctx_train; /* context length the model was trained for */
    float   norm_eps;    /* RMSNorm epsilon */
    float   rope_theta;  /* RoPE base frequency */
    float   rope_linear; /* linear RoPE scaling: positions divided by it (rope_scaling "linear");
                            0 or 1: none */
    float   rope_yarn;   /* YaRN's factor (rope_scaling "yarn"; 0: none): llama.cpp's rope_yarn with
                            ext_factor 1, beta_fast and beta_slow below */
    float   yarn_beta_fast, yarn_beta_slow;
    int32_t rope_orig_ctx;    /* the context YaRN and LongRoPE scale from (0: n_ctx_train);
                                 LongRoPE takes the long factors past it */
    float   rope_attn_factor; /* cos and sin times it (rope.scaling.attn_factor; 0: 1) */
    /* Sliding windows and soft-capping (Gemma; 0: none). A windowed layer's query at position p
     * sees keys p - n_swa + 1 .. p; which layers are windowed: lb_layer_windowed. */
    int32_t n_swa;
    int32_t swa_pattern;    /* layer l is windowed when l % swa_pattern < swa_pattern - 1;
                               0: every layer (with n_swa > 0) */
    float   rope_theta_swa; /* windowed layers' RoPE base and linear scaling (0: the global ones) */
    float   rope_linear_swa;
    float   attn_softcap;   /* attention scores become c * tanh(s / c) */
    float   final_softcap;  /* and the logits */
    float   attn_scale;     /* the queries' scale; 0: 1 / sqrt(head_dim) */
    /* Mixture of experts (0: a dense FFN): each token's FFN is the n_expert_used experts the
     * router scores highest, weighted by their softmax probabilities */
    int32_t n_expert, n_expert_used;
    int32_t n_ff_exp;   /* an expert's FFN size (<arch>.expert_feed_forward_length; 0: n_ff) */
    int32_t n_ff_shexp; /* the shared expert's (Qwen2-MoE); DeepSeek's: n_expert_shared * n_ff_exp */
    /* DeepSeek-V2/V3 (arch ops.mla): multi-head latent attention and its router */
    int32_t n_lora_q;        /* q's low rank (0: wq) */
    int32_t n_lora_kv;       /* the latent's size */
    int32_t n_rot;           /* rotary values at the end of a query head (head_dim - n_rot are not) */
    int32_t head_dim_v;      /* a value head's size (0: head_dim) */
    int32_t n_dense_lead;    /* the first layers, with a dense FFN */
    int32_t n_expert_shared; /* shared experts (one FFN n_expert_shared * n_ff_exp wide) */
    int32_t moe_gating;      /* the router's probabilities: LB_GATING_SOFTMAX or LB_GATING_SIGMOID */
    int32_t moe_norm_w;      /* the chosen weights renormalized (expert_weights_norm; families whose
                                arch ops.moe_norm always) */
    float   moe_w_scale;     /* and then scaled (expert_weights_scale; 0: 1) */
    int32_t n_expert_groups, n_group_used; /* experts in groups, tokens choosing among the
                                n_group_used groups of the largest top-two sums (0: none) */
    float   rope_yarn_log_mul; /* YaRN's mscale_all_dim: the query scale's (1 + 0.1 m ln factor)^2 */
} lb_llama_config;

enum { LB_GATING_SOFTMAX = 0, LB_GATING_SIGMOID = 1 };

/* A block's tensors: by name for the forward pass, by slot (role - LB_ROLE_LAYER_FIRST) for
 * everything that iterates over the architecture's table. Absent tensors have data NULL. */
typedef struct lb_layer {
    union {
        struct {
            lb_tensor attn_norm;      /* [E], f32 */
            lb_tensor wq;             /* [E, H*D] */
            lb_tensor wk;             /* [E, K*D] */
            lb_tensor wv;             /* [E, K*D] */
            lb_tensor wo;             /* [H*D, E] */
            lb_tensor ffn_norm;       /* [E], f32 */
            lb_tensor ffn_gate;       /* [E, F] (w1) */
            lb_tensor ffn_up;         /* [E, F] (w3) */
            lb_tensor ffn_down;       /* [F, E] (w2) */
            lb_tensor bq, bk, bv;     /* [H*D], [K*D], [K*D] f32 attention biases (Qwen2) */
            lb_tensor q_norm, k_norm; /* [D] f32 per-head RMSNorm of q and k (Qwen3, Gemma 3) */
            lb_tensor attn_post_norm; /* [E] f32 RMSNorm of the attention's output (Gemma) */
            lb_tensor ffn_post_norm;  /* [E] f32 RMSNorm of the FFN's output (Gemma) */
            lb_tensor ffn_gate_inp;   /* [E, X] f32 router (mixture of experts) */
            lb_tensor ffn_gate_exps;  /* [E, FX, X] the experts' gate, up and down */
            lb_tensor ffn_up_exps;    /* [E, FX, X] */
            lb_tensor ffn_down_exps;  /* [FX, E, X] */
            lb_tensor ffn_gate_inp_shexp; /* [E] f32 the shared expert's gate (Qwen2-MoE) */
            lb_tensor ffn_gate_shexp, ffn_up_shexp; /* [E, FS] */
            lb_tensor ffn_down_shexp; /* [FS, E] */
            lb_tensor wq_a, q_a_norm, wq_b; /* MLA: [E, QL], [QL] f32, [QL, H*D] */
            lb_tensor wkv_a, kv_a_norm;     /* [E, KVL + n_rot], [KVL] f32 */
            lb_tensor wk_b, wv_b;           /* [D - n_rot, KVL, H], [KVL, DV, H] */
            lb_tensor exp_probs_b;          /* [X] f32 the router's selection bias */
        };
        lb_tensor slot[LB_LAYER_SLOTS];
    };
} lb_layer;

typedef struct lb_actq lb_actq; /* activation quantization (actq.h) */

typedef enum lb_model_format {
    LB_MODEL_GGUF    = 0,
    LB_MODEL_LLAMA2C = 1,
    LB_MODEL_HF      = 2, /* a Hugging Face directory: config.json + safetensors */
} lb_model_format;

typedef struct lb_model {
    const lb_arch  *arch;        /* its table (arch.h) */
    lb_llama_config cfg;
    lb_tensor       tok_embd;    /* [E, V] */
    lb_tensor       output_norm; /* [E], f32 */
    lb_tensor       output;      /* [E, V]; the same data as tok_embd when tied */
    lb_tensor       rope_freqs;  /* [D/2] f32 RoPE frequency divisors (Llama 3.1's rope_scaling,
                                    GGUF rope_freqs.weight); data NULL when none */
    lb_tensor       rope_long, rope_short; /* [D/2] f32 LongRoPE's divisors (Phi-3) past
                                    rope_orig_ctx and within it; data NULL when none */
    bool            tied_output;
    lb_layer       *layers;      /* n_layers */
    lb_vocab       *vocab;
    lb_model_format format;
    char           *name;        /* general.name or the file's base name */
    lb_actq        *actq;        /* W8A8 activation quantization (actq.h), or NULL */
    /* the library's own: the mapped files the weights are views into, the buffers it owns,
     * the GGUF whose metadata a writer keeps (model_internal.h); reached through
     * lb_model_gguf and lb_model_hf_quant */
    struct lb_model_priv *priv;
} lb_model;

/* The GGUF whose metadata the model carries (the file it was loaded from; a clone's
 * original's), or NULL for other formats. */
const lb_gguf *lb_model_gguf(const lb_model *m);

/* Load a model: GGUF (detected by magic), a Hugging Face directory (config.json,
 * model.safetensors or its sharded index, tokenizer.json) or a llama2.c checkpoint.
 * tokenizer_path is needed for llama2.c unless a tokenizer (tokenizer.bin, tok*.bin,
 * tok*.model) lies next to the checkpoint; otherwise it overrides the model's own. */
lb_status lb_model_load(lb_model **out, const char *path, const char *tokenizer_path,
                        lb_error *err);
void      lb_model_free(lb_model *m); /* accepts NULL */

/* A working copy whose every tensor is f32 in memory it owns (weights may be changed in
 * place, e.g. by methods that quantize layer after layer); shares m's vocabulary, so it must
 * be freed before m. */
lb_status lb_model_clone_f32(const lb_model *m, lb_model **out, lb_error *err);

/* A GGUF tensor stored in one of lowbit's own types (I8 rows, with lowbit.tensor_type.<name>
 * and lowbit.tensor_ne0.<name> keys), for display: its type's name into type (false when the
 * tensor has none, or it does not fit cap) and its row length (the stored ne[0] without the
 * key). Loading checks the same keys strictly. */
bool lb_gguf_lowbit_type(const lb_gguf *g, const lb_gguf_tensor_info *t, char *type, size_t cap, int64_t *ne0);

/* Load only a vocabulary: from a GGUF's tokenizer.ggml.* keys, or a tokenizer file. */
lb_status lb_vocab_load_any(lb_vocab **out, const char *path, lb_error *err);
lb_status lb_vocab_from_gguf(lb_vocab **out, const lb_gguf *g, lb_error *err);

typedef struct lb_named_tensor {
    char             name[64]; /* llama.cpp's name, e.g. "blk.3.ffn_down.weight" */
    const lb_tensor *t;
    lb_tensor_role   role;
    int32_t          layer;    /* -1 outside the blocks */
} lb_named_tensor;

/* The tensors a GGUF of the model holds, in file order (the architecture's table; the output
 * omitted when tied): lb_model_n_tensors counts them; lb_model_tensors writes the first cap of
 * them into out (NULL: none) and returns the count, as snprintf does: a return above cap
 * means out was too small. */
int32_t lb_model_n_tensors(const lb_model *m);
int32_t lb_model_tensors(const lb_model *m, lb_named_tensor *out, int32_t cap);
/* The tensor of a role (of layer `layer` for the per-layer roles), NULL when the model's
 * architecture has no such slot; its data is NULL when an optional slot is empty. */
lb_tensor       *lb_model_tensor(lb_model *m, int32_t layer, lb_tensor_role role);
const lb_tensor *lb_model_tensor_c(const lb_model *m, int32_t layer, lb_tensor_role role);
/* A dimension of the model's config (arch.h). */
int64_t lb_model_dim(const lb_model *m, lb_dim d);
/* Token's embedding, the first layer's input, into x [n_embd] (Gemma's scaled by sqrt(n_embd)). */
void lb_model_embed(const lb_model *m, int32_t token, float *x);
/* Whether layer l attends through a sliding window (lb_llama_config.n_swa). */
bool lb_layer_windowed(const lb_llama_config *c, int32_t l);
/* DeepSeek-V3's expert groups fit c (none, or groups of two or more that divide the experts,
 * of which the used ones hold at least n_expert_used experts). */
bool lb_expert_groups_fit(const lb_llama_config *c);

/* Write the model as GGUF. types[i] is the storage type of tensor i of lb_model_tensors;
 * importance[i] (may be NULL, or have NULL entries) its per-column importance.
 * file_type is llama.cpp's general.file_type; add_meta (may be NULL) adds keys. */
typedef struct lb_gguf_writer lb_gguf_writer;
typedef struct lb_write_plan {
    const lb_type  *types;
    const void *const *data; /* may be NULL, or hold tensors already stored in types[i] */
    const float *const *importance;
    uint32_t        file_type;
    lb_status     (*add_meta)(lb_gguf_writer *w, void *user);
    /* called on each chunk of rows (f32) before they are quantized; may change them */
    lb_rows_hook    prepare_rows;
    void           *user;
    /* llama-quantize's --override-kv specs ("KEY=TYPE:VALUE"), written before every other key
     * and winning over them */
    const char *const *kv_overrides;
    int32_t         n_kv_overrides;
    lb_progress_fn  progress;      /* may be NULL: called after each tensor */
    void           *progress_user;
    /* lb_model_writer_open: write into this kept file (a resumable run's), renamed to path at
     * commit; with resume, reopen it (its header must be this plan's) */
    const char     *partial;
    bool            resume;
    /* llama.cpp's split GGUF (lb_gguf_writer_split): shards of at most split_max_bytes of data
     * or split_max_tensors tensors (0: no limit); keep_split: each tensor in the shard of the
     * input GGUF that held it. More than one shard: path names PREFIX-00001-of-0000N.gguf */
    uint64_t        split_max_bytes;
    int32_t         split_max_tensors;
    bool            keep_split;
} lb_write_plan;
lb_status lb_model_write_gguf(const lb_model *m, const char *path, const lb_write_plan *plan,
                              lb_error *err);

/* The same, streamed: open writes the metadata and every tensor's info (plan's types; data,
 * importance and prepare_rows unused) to a temp beside path; put gives tensor i of
 * lb_model_tensors in its stored bytes (types[i]), in any order, each once (the parts of a fused
 * tensor are held until all are given); commit renames the temp to path and frees the writer;
 * free without commit removes the temp. */
typedef struct lb_model_writer lb_model_writer;
lb_status lb_model_writer_open(lb_model_writer **out, const lb_model *m, const char *path,
                               const lb_write_plan *plan, lb_error *err);
lb_status lb_model_writer_put(lb_model_writer *w, int32_t i, const void *data, size_t nbytes,
                              lb_error *err);
lb_status lb_model_writer_commit(lb_model_writer *w, lb_error *err);
lb_status lb_model_writer_sync(lb_model_writer *w, lb_error *err); /* what was put, to disk */
void      lb_model_writer_assume(lb_model_writer *w, int32_t i); /* tensor i is there (resumed) */
void      lb_model_writer_free(lb_model_writer *w); /* accepts NULL */

/* Write the model as GGUF with its weight matrices (and embedding) in `type`
 * (f32, f16 or bf16); norms stay f32. LB_TYPE_INVALID: every tensor as it is stored (an
 * imported GPTQ/AWQ checkpoint's blocks). */
lb_status lb_model_save_gguf(const lb_model *m, const char *path, lb_type type, lb_error *err);

/* Bytes of all weights as stored. */
size_t lb_model_nbytes(const lb_model *m);
/* Bytes of weights a generated token reads: every matrix and norm, of the embedding table one
 * row (unless it is the output matrix too), of a mixture of experts' experts the n_expert_used
 * chosen per layer (their share of the stacked tensors). */
size_t lb_model_token_nbytes(const lb_model *m);
/* Bytes of a mixture of experts' stacked expert tensors (0 without experts). */
size_t lb_model_expert_nbytes(const lb_model *m);
int64_t lb_model_nparams(const lb_model *m);

/* ---- forward pass ---- */
typedef struct lb_context lb_context;

/* A context holds the KV cache for n_ctx positions and buffers for n_batch tokens. */
lb_status lb_context_create(lb_context **out, const lb_model *m, int32_t n_ctx, int32_t n_batch,
                            lb_error *err);
/* Settings beyond the size (lb_context_default_params: exact products, f32 cache). */
typedef struct lb_context_params {
    int32_t n_ctx, n_batch;
    bool    fast;   /* quantize activations on the fly to 8-bit blocks in products with
                       quantized weights (integer dot products, as llama.cpp computes: faster,
                       logits change slightly); false: f32 activations */
    lb_type type_k; /* KV cache storage of K and of V: f32, f16, bf16, q8_0, q4_0 (any block */
    lb_type type_v; /* type whose block divides n_kv_heads * head_dim) */
    bool    unpacked; /* with fast: no packed or approximated copies of the model's matrices
                         made up front (the block engine, which sets its block's matrices
                         itself: lb_context_set_matrix) */
} lb_context_params;
lb_context_params lb_context_default_params(int32_t n_ctx, int32_t n_batch);
lb_status lb_context_create_ex(lb_context **out, const lb_model *m, const lb_context_params *p,
                               lb_error *err);
size_t    lb_context_kv_bytes(const lb_context *c); /* bytes of the KV cache */
/* Bytes of expert matrices (a mixture of experts) the forward passes multiplied since the
 * context was created: each chosen expert's gate, up and down once per batch it is chosen in. */
uint64_t  lb_context_expert_bytes(const lb_context *c);
void      lb_context_free(lb_context *c); /* accepts NULL */
void      lb_context_reset(lb_context *c); /* forget all positions */
int32_t   lb_context_n_past(const lb_context *c);

/* A hook sees the input X [T, n] of each group of linear layers before they multiply it:
 * role LB_ROLE_ATTN_Q (the normed input shared by q, k, v), LB_ROLE_ATTN_OUTPUT (attention
 * output, into wo), LB_ROLE_FFN_GATE (the normed input shared by gate and up),
 * LB_ROLE_FFN_DOWN (silu(gate) * up, into down), LB_ROLE_OUTPUT (into the output head,
 * layer -1). A mixture of experts: LB_ROLE_FFN_GATE is the FFN's input (the router's, the
 * shared expert's), LB_ROLE_FFN_DOWN the shared expert's down input, and each expert's inputs
 * come as LB_ROLE_FFN_GATE_EXPS (the rows of the tokens routed to it, into its gate and up) and
 * LB_ROLE_FFN_DOWN_EXPS (into its down), with `expert` its index (-1 for every other input).
 * MLA (DeepSeek): LB_ROLE_ATTN_Q is the input of q (or q_a) and kv_a_mqa, LB_ROLE_ATTN_Q_B the
 * normed low-rank q into q_b, and per head (`expert` the head) LB_ROLE_ATTN_K_B its non-rotary
 * query into k_b and LB_ROLE_ATTN_V_B its latent attention output into v_b.
 * Calibration accumulates statistics from it. */
typedef void (*lb_forward_hook)(void *user, int32_t layer, lb_tensor_role role, int32_t expert,
                                const float *x, int32_t T, int32_t n);
void lb_context_set_hook(lb_context *c, lb_forward_hook hook, void *user);
/* Run only the first n_layers blocks (then stop: no logits); <= 0 restores the full model. */
void lb_context_set_layer_limit(lb_context *c, int32_t n_layers);
/* The matrix of layer l's linear role (a 2-D slot) that the forward passes multiply: t instead
 * of the model's (the same shape; it must outlive its use), NULL: the model's again. Only in a
 * fast context and for a type with a quantized kernel (else false, nothing changed): the
 * block engine's quantized stream multiplies its block's stored matrices this way. */
bool lb_context_set_matrix(lb_context *c, int32_t layer, lb_tensor_role role, const lb_tensor *t);
/* Stop a forward pass as soon as the hook has seen `input` (an input role as the hook names
 * them), skipping its product and all after: no logits, the residual stream undefined. For
 * calibration passes that want one input. LB_ROLE_COUNT (the default): never. */
void lb_context_set_stop(lb_context *c, lb_tensor_role input);
/* A probe of a mixture of experts' experts, for calibration: in a pass that stops at an
 * experts' input (LB_ROLE_FFN_GATE_EXPS or LB_ROLE_FFN_DOWN_EXPS), `probe` sees that input of
 * each expert e with experts[e] != 0 as if the router had sent it every token of the batch
 * (T rows; the down input through the expert's own gate and up), and the routed experts are
 * not run. experts: n_expert flags, kept by the caller until the probe is cleared (NULL). */
void lb_context_set_probe(lb_context *c, lb_forward_hook probe, void *user, const uint8_t *experts);

/* Process n tokens (n <= n_batch) at positions n_past .. n_past+n-1, as one batch
 * (T x E matrices through GEMM). *logits receives n rows of V floats, valid until
 * the next call. */
lb_status lb_forward(lb_context *c, const int32_t *tokens, int32_t n, const float **logits,
                     lb_error *err);
/* The same from layer `first` on (0 .. n_layers; n_layers: the head alone), its input given:
 * x [n, n_embd], the residual stream as lb_context_residual left it after a forward stopped
 * by the layer limit at `first`. Layers before `first` see nothing (their KV cache rows stay
 * as they were): for calibration, which runs a window one layer at a time. */
lb_status lb_forward_from(lb_context *c, int32_t first, const float *x, int32_t n,
                          const float **logits, lb_error *err);
/* The same from layer `first`'s FFN on: x is its residual after its attention (h), as
 * lb_context_residual leaves it after a forward stopped at that layer's FFN input
 * (lb_context_set_stop(c, LB_ROLE_FFN_GATE)). */
lb_status lb_forward_from_ffn(lb_context *c, int32_t first, const float *x, int32_t n,
                              const float **logits, lb_error *err);
/* The same from layer `first`'s attention output on: x [n, n_embd] its input (the residual), att
 * [n, q width] its attention's output as lb_context_att_out gave it; the output projection on.
 * Layer `first` writes no keys and values (as from its FFN): for one batch a window, after a
 * reset. Models with activation quantization or latent attention cannot
 * (lb_model_att_resumable). */
bool      lb_model_att_resumable(const lb_model *m);
lb_status lb_forward_from_att(lb_context *c, int32_t first, const float *x, const float *att, int32_t n,
                              const float **logits, lb_error *err);
/* The attention output [n, q width] of the last forward, when it stopped at a layer's attention
 * output (lb_context_set_stop(c, LB_ROLE_ATTN_OUTPUT)) and a forward can start there again
 * (lb_forward_from_att); else NULL (activation quantization, latent attention). */
const float *lb_context_att_out(const lb_context *c);
/* The same one step later: layer `first` from its FFN's down projection, x [n, n_embd] the
 * residual after its attention and mid [n, n_ff] the down projection's input as
 * lb_context_ffn_mid gave it (no keys or values written). For models without activation
 * quantization or experts (lb_model_mid_resumable). */
bool         lb_model_mid_resumable(const lb_model *m);
lb_status    lb_forward_from_down(lb_context *c, int32_t first, const float *x, const float *mid, int32_t n,
                                  const float **logits, lb_error *err);
/* The down projection's input [n, n_ff] of the last forward, when it stopped there
 * (lb_context_set_stop(c, LB_ROLE_FFN_DOWN)) and a forward can start there again; else NULL. */
const float *lb_context_ffn_mid(const lb_context *c);
/* The residual stream [n, n_embd] of the last forward's tokens where it stopped (after the
 * last layer run, before the output norm). */
const float *lb_context_residual(const lb_context *c);

/* ---- sampling ---- */
typedef struct lb_sampler {
    float    temp;  /* 0: greedy */
    float    top_p; /* nucleus; >= 1 disables */
    uint64_t rng;
} lb_sampler;

void    lb_sampler_init(lb_sampler *s, float temp, float top_p, uint64_t seed);
/* Choose a token from n logits. scratch holds 2*n floats. */
int32_t lb_sample(lb_sampler *s, const float *logits, int32_t n, float *scratch);

#ifdef __cplusplus
}
#endif
#endif
