/* Model architectures as tables (DESIGN.md: "a model is a table").
 *
 * Every tensor a supported model can hold is a row of one slot table: its role, its llama.cpp
 * and Hugging Face names, its shape from the config, whether it is computed in f32 (norms,
 * biases), which activation feeds it (for calibration and the AWQ/SmoothQuant fold groups)
 * and which rows Hugging Face stores in the rotary half-split order. An architecture is a
 * name and which of those slots it has (required or optional). Loaders, writers, validation,
 * cloning, sizes and the quantizers iterate over these tables; nothing else spells out a
 * family's tensors or counts them. Adding a family: its row in k_archs (arch.c), any new
 * slots, and its differences in the forward pass (CONTRIBUTING.md). */
#ifndef LOWBIT_ARCH_H
#define LOWBIT_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The roles of a model's tensors. The per-layer ones run from LB_ROLE_LAYER_FIRST to
 * LB_ROLE_LAYER_END (exclusive), in the order of lb_layer's fields. */
typedef enum lb_tensor_role {
    LB_ROLE_TOKEN_EMBD, LB_ROLE_OUTPUT_NORM, LB_ROLE_OUTPUT, LB_ROLE_ATTN_NORM, LB_ROLE_ATTN_Q,
    LB_ROLE_ATTN_K, LB_ROLE_ATTN_V, LB_ROLE_ATTN_OUTPUT, LB_ROLE_FFN_NORM, LB_ROLE_FFN_GATE,
    LB_ROLE_FFN_UP, LB_ROLE_FFN_DOWN,
    LB_ROLE_ATTN_Q_BIAS, LB_ROLE_ATTN_K_BIAS, LB_ROLE_ATTN_V_BIAS, /* Qwen2 */
    LB_ROLE_ATTN_Q_NORM, LB_ROLE_ATTN_K_NORM,                      /* Qwen3, Gemma 3: RMSNorm per head */
    LB_ROLE_ATTN_POST_NORM, LB_ROLE_FFN_POST_NORM,                 /* Gemma 2/3: RMSNorm of the attention's
                                                                      and the FFN's output */
    LB_ROLE_FFN_GATE_INP,                                          /* mixture of experts: the router, */
    LB_ROLE_FFN_GATE_EXPS, LB_ROLE_FFN_UP_EXPS, LB_ROLE_FFN_DOWN_EXPS, /* the experts' FFNs, one 3-D tensor each */
    LB_ROLE_FFN_GATE_INP_SHEXP,                                    /* a shared expert's gate (Qwen2-MoE) */
    LB_ROLE_FFN_GATE_SHEXP, LB_ROLE_FFN_UP_SHEXP, LB_ROLE_FFN_DOWN_SHEXP, /* and its FFN */
    /* DeepSeek-V2/V3's multi-head latent attention (MLA): q through a low-rank pair (q_a, its
     * norm, q_b) or wq; keys and values from one compressed vector (kv_a_mqa: the latent and
     * the shared rotary key; its norm); per head, k_b takes q's non-rotary part into the
     * latent space and v_b the attention's latent output back to a head (3-D, ne[2] heads) */
    LB_ROLE_ATTN_Q_A, LB_ROLE_ATTN_Q_A_NORM, LB_ROLE_ATTN_Q_B, LB_ROLE_ATTN_KV_A_MQA,
    LB_ROLE_ATTN_KV_A_NORM, LB_ROLE_ATTN_K_B, LB_ROLE_ATTN_V_B,
    LB_ROLE_FFN_EXP_PROBS_B,                                       /* DeepSeek-V3: the router's selection bias */
    LB_ROLE_ROPE_FREQS,                                            /* Llama 3.1's rope_freqs */
    LB_ROLE_ROPE_LONG, LB_ROLE_ROPE_SHORT,                         /* Phi-3's LongRoPE factors */
    LB_ROLE_COUNT,
} lb_tensor_role;
#define LB_ROLE_LAYER_FIRST ((int)LB_ROLE_ATTN_NORM)
#define LB_ROLE_LAYER_END   ((int)LB_ROLE_FFN_EXP_PROBS_B + 1)
#define LB_LAYER_SLOTS      (LB_ROLE_LAYER_END - LB_ROLE_LAYER_FIRST)

/* A dimension of a tensor, from the config. */
typedef enum lb_dim {
    LB_DIM_1,     /* 1 (vectors) */
    LB_DIM_E,     /* n_embd */
    LB_DIM_F,     /* n_ff */
    LB_DIM_V,     /* n_vocab */
    LB_DIM_Q,     /* n_heads * head_dim */
    LB_DIM_KV,    /* n_kv_heads * head_dim */
    LB_DIM_D,     /* head_dim */
    LB_DIM_HALF_D, /* head_dim / 2 */
    LB_DIM_X,      /* n_expert */
    LB_DIM_FX,     /* an expert's n_ff (n_ff_exp, else n_ff) */
    LB_DIM_FS,     /* the shared experts' n_ff (n_ff_shexp) */
    LB_DIM_QV,     /* n_heads * the value head size (head_dim_v, else head_dim): the attention's output */
    LB_DIM_H,      /* n_heads (MLA's k_b and v_b: one matrix per head) */
    LB_DIM_QL,     /* MLA: q's low rank (n_lora_q) */
    LB_DIM_KVL,    /* MLA: the latent's size (n_lora_kv) */
    LB_DIM_KVA,    /* MLA: the latent and the rotary key (n_lora_kv + n_rot) */
    LB_DIM_DN,     /* MLA: a query head's non-rotary part (head_dim - n_rot) */
    LB_DIM_DV      /* the value head size */
} lb_dim;

enum {
    LB_SLOT_F32    = 1, /* computed (and written) in f32 whatever the file holds: norms, biases */
    LB_SLOT_GLOBAL = 2, /* outside the blocks */
    LB_SLOT_NORM   = 4, /* an RMSNorm's weight (Gemma's HF holds it less 1) */
    LB_SLOT_ROPE   = 8, /* RoPE frequency factors: computed from the config, not a weight */
    LB_SLOT_EXPERTS = 16, /* one matrix per expert, stacked along ne[2] (ggml's 3-D "_exps") */
    LB_SLOT_HEADS  = 32, /* one matrix per attention head, stacked along ne[2] (MLA's k_b, v_b) */
};
#define LB_SLOT_STACKED (LB_SLOT_EXPERTS | LB_SLOT_HEADS) /* 3-D: each slice its own input's statistics */

/* A row of the slot table. */
typedef struct lb_slot {
    lb_tensor_role role;
    const char    *gguf;  /* llama.cpp's name; per layer "blk.%d." goes before it */
    const char    *hf;    /* Hugging Face's name; per layer "model.layers.%d." goes before it */
    lb_dim         ne0, ne1; /* ggml order: a linear weight is [inputs, outputs] */
    lb_dim         rotary;   /* LB_DIM_Q / LB_DIM_KV: rows in rotary heads (HF's half-split
                                order is permuted to GGUF's pairs); LB_DIM_1: none */
    lb_tensor_role input;    /* the hook role of the activation it reads (ATTN_Q: the normed
                                attention input, ATTN_OUTPUT, FFN_GATE, FFN_DOWN, OUTPUT; an
                                expert's: FFN_GATE_EXPS, FFN_DOWN_EXPS; MLA's q_b input
                                ATTN_Q_B and per-head ATTN_K_B, ATTN_V_B; model.h's hook);
                                LB_ROLE_COUNT: none (norms, biases, the embedding) */
    uint8_t        flags;
    lb_dim         ne2;      /* LB_DIM_X for the experts' tensors, LB_DIM_H for the heads'; else LB_DIM_1 */
} lb_slot;

enum { LB_USE_NONE = 0, LB_USE_REQUIRED = 1, LB_USE_OPTIONAL = 2 };

/* Slots a family stores as one tensor (Phi-3's qkv_proj and gate_up_proj): the parts' rows one
 * after another, in the order of parts. lowbit holds the parts as views into it. */
typedef struct lb_fused {
    lb_tensor_role parts[3];   /* LB_ROLE_COUNT after the last */
    const char    *gguf;       /* the fused tensor's llama.cpp name ("ffn_up.weight"), or NULL */
    const char    *hf;         /* and Hugging Face's ("mlp.gate_up_proj.weight"), or NULL */
    bool           gguf_write; /* written fused to GGUF (else as its parts, which llama.cpp
                                  also reads) */
} lb_fused;

/* The gated FFN's activation: silu(gate) * up, or tanh-approximated GELU (Gemma). */
typedef enum lb_ffn_act { LB_ACT_SILU = 0, LB_ACT_GELU_TANH = 1 } lb_ffn_act;

/* A slot a family names differently in Hugging Face (Gemma's post_attention_layernorm is the
 * attention's post-norm, where Llama's is the FFN's pre-norm). */
typedef struct lb_hf_rename {
    lb_tensor_role role;
    const char    *hf;
} lb_hf_rename;

/* How a family's layers differ in the forward pass, beyond which slots it has. */
typedef struct lb_arch_ops {
    lb_ffn_act act;
    bool       embd_scale;    /* the embeddings are multiplied by sqrt(n_embd) (Gemma) */
    bool       hf_norm_plus1; /* HF norms hold w where the computation (and GGUF) uses 1 + w */
    bool       hf_tied;       /* HF's tie_word_embeddings defaults to true */
    int32_t    swa_pattern;   /* with a sliding window: layer l is windowed when
                                 l % pattern < pattern - 1 (llama.cpp's default pattern) */
    bool       swa_every;     /* a window, when the model has one, on every layer (Mistral's
                                 sliding_window; lowbit's <arch>.attention.sliding_window, which
                                 llama.cpp's llama ignores) */
    bool       swa_rope_own;  /* windowed layers rotate with their own base (rope.freq_base_swa,
                                 default 10000) and no scaling (Gemma 3); else the global ones */
    bool       softcaps;      /* reads <arch>.final_logit_softcapping, and attn_logit_softcapping
                                 when attn_softcap > 0 (else the family has none) */
    float      attn_softcap;  /* the keys' defaults (0: none) */
    float      final_softcap;
    bool       moe_norm;      /* the chosen experts' weights renormalized to sum to 1 (Mixtral,
                                 Qwen3-MoE; not Qwen2-MoE) */
    bool       moe_ff_exp;    /* the experts' width is a key of its own (expert_feed_forward_length,
                                 HF moe_intermediate_size, Qwen); else n_ff (Mixtral) */
    bool       mla;           /* multi-head latent attention (DeepSeek-V2/V3): the MLA slots in place
                                 of q, k, v; head_dim is a query head's, with n_rot rotary values
                                 at its end; the first n_dense_lead layers have a dense FFN, the
                                 others experts and shared experts (ungated) */
    int32_t    big_layers;    /* a model of this many layers scales queries by
                                 1/sqrt(n_embd / n_heads), not 1/sqrt(head_dim), as llama.cpp
                                 does for Gemma's 27B (its GGUF has no key for it); 0: none */
} lb_arch_ops;

/* An architecture: its name, the GGUF architecture it is written as (general.architecture
 * and the key prefix), the Hugging Face classes it loads from, and which slots it has. */
typedef struct lb_arch {
    const char  *name;
    const char  *gguf;
    const char  *hf_class[4];        /* NULL-terminated */
    const char  *hf_type[4];         /* config.json's model_type of each class */
    uint8_t      use[LB_ROLE_COUNT]; /* LB_USE_* of each role */
    bool         rope_neox;          /* its GGUF keeps rotary rows split in halves, as HF does
                                        (llama.cpp's NEOX RoPE); llama's keeps adjacent pairs */
    lb_fused     fused[2];           /* fused slots (gguf and hf NULL: none) */
    lb_hf_rename hf_rename[4];       /* slots named otherwise in HF (hf NULL: none) */
    lb_arch_ops  ops;
    bool         moe;                /* a mixture of experts: chosen for a GGUF of its gguf name
                                        with <arch>.expert_count > 0 (Mixtral is llama's) */
} lb_arch;

/* The queries' scale llama.cpp gives a model of architecture a with config c (its GGUF has
 * no key for it: Gemma's 27B rule); 0: the usual 1/sqrt(head_dim). */
struct lb_llama_config;
float lb_arch_attn_scale(const lb_arch *a, const struct lb_llama_config *c);

/* Fill c's family fields that are 0 with a's defaults: the window pattern, a window of a
 * quarter of the context, the soft-capping values, Gemma 3's windowed RoPE base (10000). */
void lb_arch_config_defaults(const lb_arch *a, struct lb_llama_config *c);

/* The use (LB_USE_*) of role r in layer l (-1: a global) of a model of architecture a and
 * config c: the table's, except where a family's layers differ (MLA: q through the low-rank
 * pair or not, dense FFNs in the first n_dense_lead layers, experts after them). */
uint8_t lb_layer_use(const lb_arch *a, const struct lb_llama_config *c, int32_t l, lb_tensor_role r);

/* The Hugging Face name of slot s in architecture a (NULL: it has none). */
const char *lb_arch_hf_name(const lb_arch *a, const lb_slot *s);

/* The fusion of arch a role is part of (NULL: none), and the part's index in it. */
const lb_fused *lb_arch_fusion(const lb_arch *a, lb_tensor_role role, int *part);

/* Every slot in file order: the globals before the blocks, one block's (a contiguous run),
 * the globals after the blocks; *n receives the count. */
const lb_slot *lb_slots(int *n);
/* The slot of a role (NULL for LB_ROLE_COUNT). */
const lb_slot *lb_slot_of(lb_tensor_role role);
/* The architecture a GGUF's general.architecture names (len bytes), or NULL; moe: the
 * mixture-of-experts one of that name when there is one (Mixtral's GGUF is llama's). */
const lb_arch *lb_arch_find(const char *gguf, size_t len);
const lb_arch *lb_arch_find_moe(const char *gguf, size_t len, bool moe);
/* An architecture by lowbit's name ("mixtral"), or NULL. */
const lb_arch *lb_arch_by_name(const char *name);
/* The architecture of a Hugging Face class ("LlamaForCausalLM") or, hf_class NULL, of a
 * config.json model_type ("gemma3_text"); NULL if none. */
const lb_arch *lb_arch_find_hf(const char *hf_class, const char *model_type);
/* The GGUF architectures lowbit reads, for messages: "'llama', 'qwen2', 'qwen3', 'phi3'". */
const char    *lb_arch_names(void);

#ifdef __cplusplus
}
#endif
#endif
