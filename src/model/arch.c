/* The slot table and the architectures (arch.h). */
#include <string.h>

#include <math.h>

#include "lowbit/arch.h"
#include "lowbit/model.h"

#define NOIN LB_ROLE_COUNT /* reads no activation */

/* In file order: the globals before the blocks, a block's slots (llama.cpp's order within a
 * block), the globals after the blocks. */
static const lb_slot k_slots[] = {
    { LB_ROLE_TOKEN_EMBD, "token_embd.weight", "model.embed_tokens.weight", LB_DIM_E, LB_DIM_V, LB_DIM_1, NOIN, LB_SLOT_GLOBAL, LB_DIM_1 },
    { LB_ROLE_OUTPUT_NORM, "output_norm.weight", "model.norm.weight", LB_DIM_E, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_GLOBAL | LB_SLOT_F32 | LB_SLOT_NORM, LB_DIM_1 },
    { LB_ROLE_OUTPUT, "output.weight", "lm_head.weight", LB_DIM_E, LB_DIM_V, LB_DIM_1, LB_ROLE_OUTPUT, LB_SLOT_GLOBAL, LB_DIM_1 },
    { LB_ROLE_ATTN_NORM, "attn_norm.weight", "input_layernorm.weight", LB_DIM_E, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_F32 | LB_SLOT_NORM, LB_DIM_1 },
    { LB_ROLE_ATTN_Q, "attn_q.weight", "self_attn.q_proj.weight", LB_DIM_E, LB_DIM_Q, LB_DIM_Q, LB_ROLE_ATTN_Q, 0, LB_DIM_1 },
    { LB_ROLE_ATTN_K, "attn_k.weight", "self_attn.k_proj.weight", LB_DIM_E, LB_DIM_KV, LB_DIM_KV, LB_ROLE_ATTN_Q, 0, LB_DIM_1 },
    { LB_ROLE_ATTN_V, "attn_v.weight", "self_attn.v_proj.weight", LB_DIM_E, LB_DIM_KV, LB_DIM_1, LB_ROLE_ATTN_Q, 0, LB_DIM_1 },
    { LB_ROLE_ATTN_Q_BIAS, "attn_q.bias", "self_attn.q_proj.bias", LB_DIM_Q, LB_DIM_1, LB_DIM_Q, NOIN, LB_SLOT_F32, LB_DIM_1 },
    { LB_ROLE_ATTN_K_BIAS, "attn_k.bias", "self_attn.k_proj.bias", LB_DIM_KV, LB_DIM_1, LB_DIM_KV, NOIN, LB_SLOT_F32, LB_DIM_1 },
    { LB_ROLE_ATTN_V_BIAS, "attn_v.bias", "self_attn.v_proj.bias", LB_DIM_KV, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_F32, LB_DIM_1 },
    { LB_ROLE_ATTN_Q_NORM, "attn_q_norm.weight", "self_attn.q_norm.weight", LB_DIM_D, LB_DIM_1, LB_DIM_D, NOIN, LB_SLOT_F32 | LB_SLOT_NORM, LB_DIM_1 },
    { LB_ROLE_ATTN_K_NORM, "attn_k_norm.weight", "self_attn.k_norm.weight", LB_DIM_D, LB_DIM_1, LB_DIM_D, NOIN, LB_SLOT_F32 | LB_SLOT_NORM, LB_DIM_1 },
    /* MLA (DeepSeek-V2/V3); k_b and v_b are Hugging Face's kv_b_proj split per head (k_b transposed) */
    { LB_ROLE_ATTN_Q_A, "attn_q_a.weight", "self_attn.q_a_proj.weight", LB_DIM_E, LB_DIM_QL, LB_DIM_1, LB_ROLE_ATTN_Q, 0, LB_DIM_1 },
    { LB_ROLE_ATTN_Q_A_NORM, "attn_q_a_norm.weight", "self_attn.q_a_layernorm.weight", LB_DIM_QL, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_F32 | LB_SLOT_NORM, LB_DIM_1 },
    { LB_ROLE_ATTN_Q_B, "attn_q_b.weight", "self_attn.q_b_proj.weight", LB_DIM_QL, LB_DIM_Q, LB_DIM_1, LB_ROLE_ATTN_Q_B, 0, LB_DIM_1 },
    { LB_ROLE_ATTN_KV_A_MQA, "attn_kv_a_mqa.weight", "self_attn.kv_a_proj_with_mqa.weight", LB_DIM_E, LB_DIM_KVA, LB_DIM_1, LB_ROLE_ATTN_Q, 0, LB_DIM_1 },
    { LB_ROLE_ATTN_KV_A_NORM, "attn_kv_a_norm.weight", "self_attn.kv_a_layernorm.weight", LB_DIM_KVL, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_F32 | LB_SLOT_NORM, LB_DIM_1 },
    { LB_ROLE_ATTN_K_B, "attn_k_b.weight", NULL, LB_DIM_DN, LB_DIM_KVL, LB_DIM_1, LB_ROLE_ATTN_K_B, LB_SLOT_HEADS, LB_DIM_H },
    { LB_ROLE_ATTN_V_B, "attn_v_b.weight", NULL, LB_DIM_KVL, LB_DIM_DV, LB_DIM_1, LB_ROLE_ATTN_V_B, LB_SLOT_HEADS, LB_DIM_H },
    { LB_ROLE_ATTN_OUTPUT, "attn_output.weight", "self_attn.o_proj.weight", LB_DIM_QV, LB_DIM_E, LB_DIM_1, LB_ROLE_ATTN_OUTPUT, 0, LB_DIM_1 },
    { LB_ROLE_ATTN_POST_NORM, "post_attention_norm.weight", "post_attention_layernorm.weight", LB_DIM_E, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_F32 | LB_SLOT_NORM, LB_DIM_1 },
    { LB_ROLE_FFN_NORM, "ffn_norm.weight", "post_attention_layernorm.weight", LB_DIM_E, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_F32 | LB_SLOT_NORM, LB_DIM_1 },
    { LB_ROLE_FFN_GATE, "ffn_gate.weight", "mlp.gate_proj.weight", LB_DIM_E, LB_DIM_F, LB_DIM_1, LB_ROLE_FFN_GATE, 0, LB_DIM_1 },
    { LB_ROLE_FFN_DOWN, "ffn_down.weight", "mlp.down_proj.weight", LB_DIM_F, LB_DIM_E, LB_DIM_1, LB_ROLE_FFN_DOWN, 0, LB_DIM_1 },
    { LB_ROLE_FFN_UP, "ffn_up.weight", "mlp.up_proj.weight", LB_DIM_E, LB_DIM_F, LB_DIM_1, LB_ROLE_FFN_GATE, 0, LB_DIM_1 },
    /* mixture of experts: Qwen's HF names (Mixtral's are its renames); an expert's HF tensor
     * per expert, %d its index */
    { LB_ROLE_FFN_GATE_INP, "ffn_gate_inp.weight", "mlp.gate.weight", LB_DIM_E, LB_DIM_X, LB_DIM_1, LB_ROLE_FFN_GATE, LB_SLOT_F32, LB_DIM_1 },
    { LB_ROLE_FFN_EXP_PROBS_B, "exp_probs_b.bias", "mlp.gate.e_score_correction_bias", LB_DIM_X, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_F32, LB_DIM_1 },
    { LB_ROLE_FFN_GATE_EXPS, "ffn_gate_exps.weight", "mlp.experts.%d.gate_proj.weight", LB_DIM_E, LB_DIM_FX, LB_DIM_1, LB_ROLE_FFN_GATE_EXPS, LB_SLOT_EXPERTS, LB_DIM_X },
    { LB_ROLE_FFN_DOWN_EXPS, "ffn_down_exps.weight", "mlp.experts.%d.down_proj.weight", LB_DIM_FX, LB_DIM_E, LB_DIM_1, LB_ROLE_FFN_DOWN_EXPS, LB_SLOT_EXPERTS, LB_DIM_X },
    { LB_ROLE_FFN_UP_EXPS, "ffn_up_exps.weight", "mlp.experts.%d.up_proj.weight", LB_DIM_E, LB_DIM_FX, LB_DIM_1, LB_ROLE_FFN_GATE_EXPS, LB_SLOT_EXPERTS, LB_DIM_X },
    { LB_ROLE_FFN_GATE_INP_SHEXP, "ffn_gate_inp_shexp.weight", "mlp.shared_expert_gate.weight", LB_DIM_E, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_F32, LB_DIM_1 },
    { LB_ROLE_FFN_GATE_SHEXP, "ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj.weight", LB_DIM_E, LB_DIM_FS, LB_DIM_1, LB_ROLE_FFN_GATE, 0, LB_DIM_1 },
    { LB_ROLE_FFN_DOWN_SHEXP, "ffn_down_shexp.weight", "mlp.shared_expert.down_proj.weight", LB_DIM_FS, LB_DIM_E, LB_DIM_1, LB_ROLE_FFN_DOWN, 0, LB_DIM_1 },
    { LB_ROLE_FFN_UP_SHEXP, "ffn_up_shexp.weight", "mlp.shared_expert.up_proj.weight", LB_DIM_E, LB_DIM_FS, LB_DIM_1, LB_ROLE_FFN_GATE, 0, LB_DIM_1 },
    { LB_ROLE_FFN_POST_NORM, "post_ffw_norm.weight", "post_feedforward_layernorm.weight", LB_DIM_E, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_F32 | LB_SLOT_NORM, LB_DIM_1 },
    /* computed from the config (HF rope_scaling "llama3"), so it has no HF name */
    { LB_ROLE_ROPE_FREQS, "rope_freqs.weight", NULL, LB_DIM_HALF_D, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_GLOBAL | LB_SLOT_F32 | LB_SLOT_ROPE, LB_DIM_1 },
    /* HF rope_scaling "longrope"'s long_factor and short_factor (llama.cpp's phi3) */
    { LB_ROLE_ROPE_LONG, "rope_factors_long.weight", NULL, LB_DIM_HALF_D, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_GLOBAL | LB_SLOT_F32 | LB_SLOT_ROPE, LB_DIM_1 },
    { LB_ROLE_ROPE_SHORT, "rope_factors_short.weight", NULL, LB_DIM_HALF_D, LB_DIM_1, LB_DIM_1, NOIN, LB_SLOT_GLOBAL | LB_SLOT_F32 | LB_SLOT_ROPE, LB_DIM_1 },
};

#define R LB_USE_REQUIRED
#define O LB_USE_OPTIONAL
#define LLAMA_BLOCK                                                                                \
    [LB_ROLE_TOKEN_EMBD] = R, [LB_ROLE_OUTPUT_NORM] = R, [LB_ROLE_OUTPUT] = O, [LB_ROLE_ROPE_FREQS] = O, \
    [LB_ROLE_ATTN_NORM] = R, [LB_ROLE_ATTN_Q] = R, [LB_ROLE_ATTN_K] = R, [LB_ROLE_ATTN_V] = R,    \
    [LB_ROLE_ATTN_OUTPUT] = R, [LB_ROLE_FFN_NORM] = R, [LB_ROLE_FFN_GATE] = R,                    \
    [LB_ROLE_FFN_UP] = R, [LB_ROLE_FFN_DOWN] = R
/* The Llama family (Mistral: the same tensors, and a sliding window on every layer when its
 * config has one). A missing output is tied to the embedding.
 * llama's attention biases are optional (llama.cpp adds them when present: lowbit wrote Qwen2
 * models so before it knew qwen2). Qwen2: q/k/v biases. Qwen3: RMSNorm of each q and k head
 * before RoPE, no biases. Both keep rotary rows split in halves in GGUF (NEOX RoPE). */
#define GEMMA_BLOCK                                                                                \
    [LB_ROLE_TOKEN_EMBD] = R, [LB_ROLE_OUTPUT_NORM] = R, [LB_ROLE_ATTN_NORM] = R, [LB_ROLE_ATTN_Q] = R, \
    [LB_ROLE_ATTN_K] = R, [LB_ROLE_ATTN_V] = R, [LB_ROLE_ATTN_OUTPUT] = R, [LB_ROLE_ATTN_POST_NORM] = R, \
    [LB_ROLE_FFN_NORM] = R, [LB_ROLE_FFN_GATE] = R, [LB_ROLE_FFN_UP] = R, [LB_ROLE_FFN_DOWN] = R,   \
    [LB_ROLE_FFN_POST_NORM] = R
/* A mixture of experts' FFN in place of the dense one: a router and the experts' gate, up and
 * down (llama.cpp's _exps tensors: one [in, out, n_expert] tensor each) */
#define MOE_BLOCK                                                                                  \
    [LB_ROLE_TOKEN_EMBD] = R, [LB_ROLE_OUTPUT_NORM] = R, [LB_ROLE_OUTPUT] = O, [LB_ROLE_ATTN_NORM] = R, \
    [LB_ROLE_ATTN_Q] = R, [LB_ROLE_ATTN_K] = R, [LB_ROLE_ATTN_V] = R, [LB_ROLE_ATTN_OUTPUT] = R,  \
    [LB_ROLE_FFN_NORM] = R, [LB_ROLE_FFN_GATE_INP] = R, [LB_ROLE_FFN_GATE_EXPS] = R,             \
    [LB_ROLE_FFN_UP_EXPS] = R, [LB_ROLE_FFN_DOWN_EXPS] = R
/* Gemma's HF names: post_attention_layernorm is the attention's post-norm, the FFN's pre-norm
 * is pre_feedforward_layernorm */
#define GEMMA_HF                                                                                   \
    { { LB_ROLE_FFN_NORM, "pre_feedforward_layernorm.weight" } }
static const lb_arch k_archs[] = {
    { .name = "llama", .gguf = "llama", .hf_class = { "LlamaForCausalLM", "MistralForCausalLM", NULL },
      .hf_type = { "llama", "mistral" }, .ops = { .swa_every = true },
      .use = { LLAMA_BLOCK, [LB_ROLE_ATTN_Q_BIAS] = O, [LB_ROLE_ATTN_K_BIAS] = O, [LB_ROLE_ATTN_V_BIAS] = O } },
    { .name = "qwen2", .gguf = "qwen2", .hf_class = { "Qwen2ForCausalLM", NULL }, .hf_type = { "qwen2" },
      .rope_neox = true,
      .use = { LLAMA_BLOCK, [LB_ROLE_ATTN_Q_BIAS] = R, [LB_ROLE_ATTN_K_BIAS] = R, [LB_ROLE_ATTN_V_BIAS] = R } },
    { .name = "qwen3", .gguf = "qwen3", .hf_class = { "Qwen3ForCausalLM", NULL }, .hf_type = { "qwen3" },
      .rope_neox = true, .use = { LLAMA_BLOCK, [LB_ROLE_ATTN_Q_NORM] = R, [LB_ROLE_ATTN_K_NORM] = R } },
    /* Gemma 2: embeddings times sqrt(n_embd), post-norms, GELU, soft-capped attention scores
     * and logits, every other layer windowed; the output is always the embedding (llama.cpp
     * reads no output.weight, its converter drops lm_head) */
    { .name = "gemma2", .gguf = "gemma2", .hf_class = { "Gemma2ForCausalLM", NULL }, .hf_type = { "gemma2" },
      .rope_neox = true, .use = { GEMMA_BLOCK }, .hf_rename = GEMMA_HF,
      .ops = { .act = LB_ACT_GELU_TANH, .embd_scale = true, .hf_norm_plus1 = true, .hf_tied = true, .swa_pattern = 2,
               .softcaps = true, .attn_softcap = 50.0f, .final_softcap = 30.0f, .big_layers = 46 } },
    /* Gemma 3 (text): Gemma 2 with q/k head norms, no attention soft-capping, five windowed
     * layers of six rotating with their own base (10000) */
    { .name = "gemma3", .gguf = "gemma3", .hf_class = { "Gemma3ForCausalLM", NULL }, .hf_type = { "gemma3_text" },
      .rope_neox = true, .use = { GEMMA_BLOCK, [LB_ROLE_OUTPUT] = O, [LB_ROLE_ATTN_Q_NORM] = R, [LB_ROLE_ATTN_K_NORM] = R },
      .hf_rename = GEMMA_HF,
      .ops = { .act = LB_ACT_GELU_TANH, .embd_scale = true, .hf_norm_plus1 = true, .hf_tied = true, .swa_pattern = 6,
               .swa_rope_own = true, .softcaps = true, .big_layers = 62 } },
    /* Phi-3: q, k, v in one qkv_proj and gate, up in one gate_up_proj (HF); llama.cpp's phi3
     * reads attn_qkv or attn_q/k/v, and ffn_up holding gate's rows then up's */
    { .name = "phi3", .gguf = "phi3", .hf_class = { "Phi3ForCausalLM", NULL }, .rope_neox = true,
      .hf_type = { "phi3" }, .use = { LLAMA_BLOCK, [LB_ROLE_ROPE_LONG] = O, [LB_ROLE_ROPE_SHORT] = O },
      .fused = { { { LB_ROLE_ATTN_Q, LB_ROLE_ATTN_K, LB_ROLE_ATTN_V }, "attn_qkv.weight", "self_attn.qkv_proj.weight", false },
                 { { LB_ROLE_FFN_GATE, LB_ROLE_FFN_UP, LB_ROLE_COUNT }, "ffn_up.weight", "mlp.gate_up_proj.weight", true } } },
    /* Mixtral: Llama's attention (its optional rope_freqs and biases too) and a mixture of
     * experts, the chosen experts' weights renormalized; its GGUF is llama's with
     * llama.expert_count */
    { .name = "mixtral", .gguf = "llama", .hf_class = { "MixtralForCausalLM", NULL }, .hf_type = { "mixtral" },
      .moe = true, .ops = { .swa_every = true, .moe_norm = true },
      .use = { MOE_BLOCK, [LB_ROLE_ROPE_FREQS] = O, [LB_ROLE_ATTN_Q_BIAS] = O, [LB_ROLE_ATTN_K_BIAS] = O,
               [LB_ROLE_ATTN_V_BIAS] = O },
      .hf_rename = { { LB_ROLE_FFN_GATE_INP, "block_sparse_moe.gate.weight" },
                     { LB_ROLE_FFN_GATE_EXPS, "block_sparse_moe.experts.%d.w1.weight" },
                     { LB_ROLE_FFN_DOWN_EXPS, "block_sparse_moe.experts.%d.w2.weight" },
                     { LB_ROLE_FFN_UP_EXPS, "block_sparse_moe.experts.%d.w3.weight" } } },
    /* Qwen3-MoE: Qwen3's attention (q/k head norms), the experts' weights renormalized (as
     * llama.cpp always does, whatever norm_topk_prob says) */
    { .name = "qwen3moe", .gguf = "qwen3moe", .hf_class = { "Qwen3MoeForCausalLM", NULL }, .hf_type = { "qwen3_moe" },
      .rope_neox = true, .moe = true, .ops = { .moe_norm = true, .moe_ff_exp = true },
      .use = { MOE_BLOCK, [LB_ROLE_ATTN_Q_NORM] = R, [LB_ROLE_ATTN_K_NORM] = R } },
    /* Qwen2-MoE: Qwen2's attention (q/k/v biases), the experts' weights as the softmax gave
     * them, and a shared expert every token goes through, scaled by sigmoid(its gate) */
    { .name = "qwen2moe", .gguf = "qwen2moe", .hf_class = { "Qwen2MoeForCausalLM", NULL }, .hf_type = { "qwen2_moe" },
      .rope_neox = true, .moe = true, .ops = { .moe_ff_exp = true },
      .use = { MOE_BLOCK, [LB_ROLE_ATTN_Q_BIAS] = R, [LB_ROLE_ATTN_K_BIAS] = R, [LB_ROLE_ATTN_V_BIAS] = R,
               [LB_ROLE_FFN_GATE_INP_SHEXP] = R, [LB_ROLE_FFN_GATE_SHEXP] = R, [LB_ROLE_FFN_UP_SHEXP] = R,
               [LB_ROLE_FFN_DOWN_SHEXP] = R } },
    /* DeepSeek-V2/V3 (and Kimi K2, its converter's): multi-head latent attention, dense FFNs in
     * the first layers and experts with shared experts in the rest; the router's softmax or
     * sigmoid, its selection bias, expert groups, renormalization and scale come from keys */
    { .name = "deepseek2", .gguf = "deepseek2", .hf_class = { "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", NULL },
      .hf_type = { "deepseek_v2", "deepseek_v3" }, .moe = true, .ops = { .mla = true, .moe_ff_exp = true },
      .hf_rename = { { LB_ROLE_FFN_GATE_SHEXP, "mlp.shared_experts.gate_proj.weight" },
                     { LB_ROLE_FFN_UP_SHEXP, "mlp.shared_experts.up_proj.weight" },
                     { LB_ROLE_FFN_DOWN_SHEXP, "mlp.shared_experts.down_proj.weight" } },
      .use = { [LB_ROLE_TOKEN_EMBD] = R, [LB_ROLE_OUTPUT_NORM] = R, [LB_ROLE_OUTPUT] = O, [LB_ROLE_ATTN_NORM] = R,
               [LB_ROLE_ATTN_Q] = O, [LB_ROLE_ATTN_Q_A] = O, [LB_ROLE_ATTN_Q_A_NORM] = O, [LB_ROLE_ATTN_Q_B] = O,
               [LB_ROLE_ATTN_KV_A_MQA] = R, [LB_ROLE_ATTN_KV_A_NORM] = R, [LB_ROLE_ATTN_K_B] = R,
               [LB_ROLE_ATTN_V_B] = R, [LB_ROLE_ATTN_OUTPUT] = R, [LB_ROLE_FFN_NORM] = R, [LB_ROLE_FFN_GATE] = O,
               [LB_ROLE_FFN_UP] = O, [LB_ROLE_FFN_DOWN] = O, [LB_ROLE_FFN_GATE_INP] = O, [LB_ROLE_FFN_EXP_PROBS_B] = O,
               [LB_ROLE_FFN_GATE_EXPS] = O, [LB_ROLE_FFN_UP_EXPS] = O, [LB_ROLE_FFN_DOWN_EXPS] = O,
               [LB_ROLE_FFN_GATE_SHEXP] = O, [LB_ROLE_FFN_UP_SHEXP] = O, [LB_ROLE_FFN_DOWN_SHEXP] = O } },
};
#undef R
#undef O

uint8_t lb_layer_use(const lb_arch *a, const lb_llama_config *c, int32_t l, lb_tensor_role r) {
    if (!a->ops.mla || l < 0) return a->use[r];
    const bool dense = l < c->n_dense_lead, lora = c->n_lora_q > 0;
    switch (r) {
    case LB_ROLE_ATTN_Q: return lora ? LB_USE_NONE : LB_USE_REQUIRED;
    case LB_ROLE_ATTN_Q_A: case LB_ROLE_ATTN_Q_A_NORM: case LB_ROLE_ATTN_Q_B:
        return lora ? LB_USE_REQUIRED : LB_USE_NONE;
    case LB_ROLE_FFN_GATE: case LB_ROLE_FFN_UP: case LB_ROLE_FFN_DOWN:
        return dense ? LB_USE_REQUIRED : LB_USE_NONE;
    case LB_ROLE_FFN_EXP_PROBS_B: return dense ? LB_USE_NONE : LB_USE_OPTIONAL;
    case LB_ROLE_FFN_GATE_INP: case LB_ROLE_FFN_GATE_EXPS: case LB_ROLE_FFN_UP_EXPS: case LB_ROLE_FFN_DOWN_EXPS:
    case LB_ROLE_FFN_GATE_SHEXP: case LB_ROLE_FFN_UP_SHEXP: case LB_ROLE_FFN_DOWN_SHEXP:
        return dense ? LB_USE_NONE : LB_USE_REQUIRED;
    default: return a->use[r];
    }
}

const lb_slot *lb_slots(int *n) {
    *n = (int)(sizeof k_slots / sizeof k_slots[0]);
    return k_slots;
}

const lb_slot *lb_slot_of(lb_tensor_role role) {
    for (size_t i = 0; i < sizeof k_slots / sizeof k_slots[0]; i++)
        if (k_slots[i].role == role) return &k_slots[i];
    return NULL;
}

const lb_arch *lb_arch_find_moe(const char *gguf, size_t len, bool moe) {
    const lb_arch *any = NULL;
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
        if (strlen(k_archs[i].gguf) == len && !memcmp(k_archs[i].gguf, gguf, len)) {
            if (k_archs[i].moe == moe) return &k_archs[i];
            if (!any) any = &k_archs[i];
        }
    return any;
}

const lb_arch *lb_arch_find(const char *gguf, size_t len) { return lb_arch_find_moe(gguf, len, false); }

const lb_arch *lb_arch_by_name(const char *name) {
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
        if (!strcmp(k_archs[i].name, name)) return &k_archs[i];
    return NULL;
}

const lb_arch *lb_arch_find_hf(const char *hf_class, const char *model_type) {
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
        for (int k = 0; k < 4 && k_archs[i].hf_class[k]; k++)
            if (hf_class ? !strcmp(k_archs[i].hf_class[k], hf_class)
                         : model_type && k_archs[i].hf_type[k] && !strcmp(k_archs[i].hf_type[k], model_type))
                return &k_archs[i];
    return NULL;
}

float lb_arch_attn_scale(const lb_arch *a, const lb_llama_config *c) {
    return a && a->ops.big_layers > 0 && c->n_layers == a->ops.big_layers && c->n_heads > 0
               ? 1.0f / sqrtf((float)(c->n_embd / c->n_heads)) : 0.0f;
}

void lb_arch_config_defaults(const lb_arch *a, lb_llama_config *c) {
    const lb_arch_ops *o = &a->ops;
    if (o->swa_pattern > 0) {
        if (!c->swa_pattern) c->swa_pattern = o->swa_pattern;
        if (!c->n_swa) c->n_swa = c->n_ctx_train / 4 > 0 ? c->n_ctx_train / 4 : 1;
        if (o->swa_rope_own && !c->rope_theta_swa) c->rope_theta_swa = 10000.0f;
    }
    if (!c->attn_softcap) c->attn_softcap = o->attn_softcap;
    if (!c->final_softcap) c->final_softcap = o->final_softcap;
}

const char *lb_arch_hf_name(const lb_arch *a, const lb_slot *s) {
    for (int k = 0; a && k < 4 && a->hf_rename[k].hf; k++)
        if (a->hf_rename[k].role == s->role) return a->hf_rename[k].hf;
    return s->hf;
}

const char *lb_arch_names(void) {
    return "'llama', 'qwen2', 'qwen3', 'phi3', 'gemma2', 'gemma3', 'qwen2moe', 'qwen3moe', 'deepseek2' (and "
           "llama's mixture of experts, Mixtral)";
}

const lb_fused *lb_arch_fusion(const lb_arch *a, lb_tensor_role role, int *part) {
    for (int f = 0; a && f < 2; f++)
        for (int k = 0; k < 3 && (a->fused[f].gguf || a->fused[f].hf); k++)
            if (a->fused[f].parts[k] == role) {
                if (part) *part = k;
                return &a->fused[f];
            }
    return NULL;
}
