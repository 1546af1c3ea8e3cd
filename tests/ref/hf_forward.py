#!/usr/bin/env python3
"""An independent forward pass of a Hugging Face model directory, in NumPy (float64).

It shares no code with lowbit: it reads config.json and model.safetensors the way transformers
does (Llama, Mistral, Qwen2, Qwen3, Phi-3: rotate_half RoPE on the half-split layout, q/k/v biases,
Qwen3's per-head q/k RMSNorm, Phi-3's fused qkv_proj and gate_up_proj, Mixtral's, Qwen2-MoE's and
Qwen3-MoE's experts, grouped-query attention,
SiLU MLP, tied embeddings, linear, llama3, YaRN and LongRoPE rope_scaling; Gemma 2 and Gemma 3 as modeling_gemma2/3.py
compute them: embeddings times sqrt(hidden_size), RMSNorm by (1 + w), post-attention and
post-feedforward norms, gelu_pytorch_tanh, query_pre_attn_scalar, soft-capped scores and logits,
sliding-window layers (layer_types or sliding_window_pattern), Gemma 3's local RoPE base;
Mistral's window on every layer; DeepSeek-V2/V3 as modeling_deepseek computes them:
multi-head latent attention without the absorption (kv_b_proj decompresses each head's keys and
values), the rotary part de-interleaved before rotate_half, YaRN's softmax scale, dense first
layers, routed experts (softmax or sigmoid, the correction bias choosing, expert groups,
renormalized and scaled as llama.cpp does) plus shared experts) and
compares its logits with those lowbit saved with `lowbit eval DIR --save-logits FILE`.

usage: hf_forward.py HF_DIR LOGITS_FILE [--tol X]
Prints the largest relative difference per chunk; exits 1 when it is above --tol (1e-4).
"""
import json
import struct
import sys

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        raw = data[base + lo : base + hi]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2")
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view("<f4")
        else:
            raise SystemExit(f"{path}: tensor {name} has dtype {dt}")
        out[name] = a.astype(np.float64).reshape(info["shape"])
    return out


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def softcap(x, cap):
    return cap * np.tanh(x / cap) if cap else x


def sliding_layers(cfg, L):
    """Which layers use the sliding window (Gemma): layer_types, else the pattern."""
    if not cfg.get("sliding_window"):
        return [False] * L
    if cfg.get("layer_types"):
        return [t == "sliding_attention" for t in cfg["layer_types"]]
    if cfg["model_type"] == "gemma2":
        return [l % 2 == 0 for l in range(L)]
    period = cfg.get("sliding_window_pattern", 6)
    return [(l + 1) % period != 0 for l in range(L)]


def get_mscale(scale, mscale=1.0):
    return 1.0 if scale <= 1 else 0.1 * mscale * np.log(scale) + 1.0


def rope_inv_freq(cfg, theta, D, T):
    """inv_freq and the attention factor, as modeling_rope_utils computes them (default,
    linear, yarn, longrope)."""
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    pos = theta ** (np.arange(0, D, 2, dtype=np.float64) / D)
    if kind in ("default", "linear"):
        return 1.0 / pos / (rs.get("factor", 1.0) if kind == "linear" else 1.0), 1.0
    if kind == "yarn":
        factor = rs["factor"]
        orig = rs.get("original_max_position_embeddings") or cfg["max_position_embeddings"]
        attn = rs.get("attention_factor")
        if attn is None:
            ms, ms_all = rs.get("mscale"), rs.get("mscale_all_dim")
            attn = get_mscale(factor, ms) / get_mscale(factor, ms_all) if ms and ms_all else get_mscale(factor)
        corr = lambda rot: D * np.log(orig / (rot * 2 * np.pi)) / (2 * np.log(theta))
        low = max(np.floor(corr(rs.get("beta_fast") or 32)), 0)
        high = min(np.ceil(corr(rs.get("beta_slow") or 1)), D - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(D // 2, dtype=np.float64) - low) / (high - low), 0, 1)
        extra = 1 - ramp  # the extrapolated share of each pair
        return (1.0 / (factor * pos)) * (1 - extra) + (1.0 / pos) * extra, attn
    if kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        inv = 1.0 / pos
        wavelen = 2 * np.pi / inv
        llama = np.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * llama / factor + smooth * llama
        medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
        return np.where(medium, smoothed, llama), 1.0
    if kind in ("longrope", "su"):
        orig = cfg.get("original_max_position_embeddings") or rs["original_max_position_embeddings"]
        factor = cfg["max_position_embeddings"] / orig if "original_max_position_embeddings" in cfg else rs.get("factor", 1.0)
        attn = rs.get("attention_factor")
        if attn is None:
            attn = 1.0 if factor <= 1 else np.sqrt(1 + np.log(factor) / np.log(orig))
        ext = np.array(rs["long_factor"] if T > orig else rs["short_factor"], dtype=np.float64)
        return 1.0 / (ext * pos), attn
    raise SystemExit(f"rope_scaling {kind}: not in this reference")


def rope_tables(inv, attn, T):
    ang = np.outer(np.arange(T, dtype=np.float64), inv)
    return (np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :] * attn,
            np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :] * attn)


def mla_attention(cfg, w, p, h, T, mask):
    """DeepSeek's attention (DeepseekV2Attention), the keys and values decompressed per head."""
    H = cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    R = cfg["kv_lora_rank"]
    eps = cfg.get("rms_norm_eps", 1e-6)
    if cfg.get("q_lora_rank"):
        qa = rms_norm(h @ w[p + "self_attn.q_a_proj.weight"].T, w[p + "self_attn.q_a_layernorm.weight"], eps)
        q = qa @ w[p + "self_attn.q_b_proj.weight"].T
    else:
        q = h @ w[p + "self_attn.q_proj.weight"].T
    q = q.reshape(T, H, dn + dr)
    q_nope, q_pe = q[..., :dn], q[..., dn:]
    ckv = h @ w[p + "self_attn.kv_a_proj_with_mqa.weight"].T
    c, k_pe = ckv[:, :R], ckv[:, R:].reshape(T, 1, dr)
    kv = (rms_norm(c, w[p + "self_attn.kv_a_layernorm.weight"], eps) @ w[p + "self_attn.kv_b_proj.weight"].T)
    kv = kv.reshape(T, H, dn + dv)
    k_nope, v = kv[..., :dn], kv[..., dn:]
    inv, attn = rope_inv_freq(cfg, cfg.get("rope_theta", 10000.0), dr, T)
    cos, sin = rope_tables(inv, attn, T)
    # the rotary values come in pairs: de-interleaved (evens, then odds), then rotate_half
    deint = lambda x: np.concatenate([x[..., 0::2], x[..., 1::2]], axis=-1)
    q_pe, k_pe = deint(q_pe), deint(k_pe)
    q_pe = q_pe * cos + rotate_half(q_pe) * sin
    k_pe = k_pe * cos + rotate_half(k_pe) * sin
    qq = np.concatenate([q_nope, q_pe], axis=-1)
    kk = np.concatenate([k_nope, np.repeat(k_pe, H, axis=1)], axis=-1)
    scale = (dn + dr) ** -0.5
    rs = cfg.get("rope_scaling") or {}
    if rs.get("mscale_all_dim"):
        scale *= get_mscale(rs["factor"], rs["mscale_all_dim"]) ** 2
    s = np.einsum("thd,shd->hts", qq, kk) * scale + mask
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    s /= s.sum(axis=-1, keepdims=True)
    return np.einsum("hts,shd->thd", s, v).reshape(T, H * dv) @ w[p + "self_attn.o_proj.weight"].T


def forward(cfg, w, tokens):
    E = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    K = cfg.get("num_key_value_heads", H)
    D = cfg.get("head_dim") or E // H
    L = cfg["num_hidden_layers"]
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    T = len(tokens)
    gemma = cfg.get("model_type") in ("gemma2", "gemma3_text")
    plus = 1.0 if gemma else 0.0  # Gemma's RMSNorm multiplies by (1 + w)
    x = w["model.embed_tokens.weight"][tokens]
    if gemma:
        x = x * np.sqrt(E)
    cos, sin = rope_tables(*rope_inv_freq(cfg, theta, D, T), T)
    if "rope_local_base_freq" in cfg:  # Gemma 3's sliding layers: their own base, unscaled
        local = rope_tables(1.0 / cfg["rope_local_base_freq"] ** (np.arange(0, D, 2, dtype=np.float64) / D), 1.0, T)
    else:
        local = (cos, sin)
    qscale = cfg.get("query_pre_attn_scalar", D) ** -0.5
    mask = np.triu(np.full((T, T), -np.inf), 1)
    win = cfg.get("sliding_window") or 0
    far = np.subtract.outer(np.arange(T), np.arange(T)) >= win if win else None
    swa = mask.copy()
    if win:
        swa[far] = -np.inf
    mistral = cfg.get("model_type") == "mistral"  # a window on every layer
    sliding = sliding_layers(cfg, L) if gemma else [mistral and win > 0] * L
    for l in range(L):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"] + plus, eps)
        if "kv_lora_rank" in cfg:  # DeepSeek
            x = x + mla_attention(cfg, w, p, h, T, mask)
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
            if p + "mlp.gate.weight" in w:
                x = x + moe(cfg, w, p, h)
            else:
                g = h @ w[p + "mlp.gate_proj.weight"].T
                x = x + (g / (1.0 + np.exp(-g)) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
            continue
        if p + "self_attn.qkv_proj.weight" in w:  # Phi-3: q, k, v rows in one matrix
            qkv = h @ w[p + "self_attn.qkv_proj.weight"].T
            q, k, v = qkv[:, : H * D], qkv[:, H * D : H * D + K * D], qkv[:, H * D + K * D :]
        else:
            q = h @ w[p + "self_attn.q_proj.weight"].T
            k = h @ w[p + "self_attn.k_proj.weight"].T
            v = h @ w[p + "self_attn.v_proj.weight"].T
        if p + "self_attn.q_proj.bias" in w:
            q = q + w[p + "self_attn.q_proj.bias"]
            k = k + w[p + "self_attn.k_proj.bias"]
            v = v + w[p + "self_attn.v_proj.bias"]
        q, k, v = q.reshape(T, H, D), k.reshape(T, K, D), v.reshape(T, K, D)
        if p + "self_attn.q_norm.weight" in w:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"] + plus, eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"] + plus, eps)
        c, sn = local if sliding[l] else (cos, sin)
        q = q * c + rotate_half(q) * sn
        k = k * c + rotate_half(k) * sn
        k = np.repeat(k, H // K, axis=1)
        v = np.repeat(v, H // K, axis=1)
        s = np.einsum("thd,shd->hts", q, k) * (qscale if gemma else 1.0 / np.sqrt(D))
        s = softcap(s, cfg.get("attn_logit_softcapping") if gemma else None)
        s = s + (swa if sliding[l] else mask)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, H * D) @ w[p + "self_attn.o_proj.weight"].T
        if gemma:
            o = rms_norm(o, w[p + "post_attention_layernorm.weight"] + plus, eps)
        x = x + o
        h = rms_norm(x, w[p + ("pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight")] + plus, eps)
        if p + "mlp.gate.weight" in w or p + "block_sparse_moe.gate.weight" in w:  # a mixture of experts
            x = x + moe(cfg, w, p, h)
            continue
        if p + "mlp.gate_up_proj.weight" in w:  # Phi-3: gate's rows, then up's
            gu = h @ w[p + "mlp.gate_up_proj.weight"].T
            g, u = gu[:, : gu.shape[1] // 2], gu[:, gu.shape[1] // 2 :]
        else:
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
        act = gelu_tanh(g) if gemma else g / (1.0 + np.exp(-g))
        f = (act * u) @ w[p + "mlp.down_proj.weight"].T
        if gemma:
            f = rms_norm(f, w[p + "post_feedforward_layernorm.weight"] + plus, eps)
        x = x + f
    x = rms_norm(x, w["model.norm.weight"] + plus, eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return softcap(x @ head.T, cfg.get("final_logit_softcapping") if gemma else None)


def moe(cfg, w, p, h):
    """Mixtral's, Qwen2-MoE's and Qwen3-MoE's sparse block as transformers computes it: softmax of
    the router, the top num_experts_per_tok, renormalized (Mixtral; Qwen: norm_topk_prob), each
    expert's SwiGLU times its weight; Qwen2-MoE adds sigmoid(shared_expert_gate) times the shared
    expert."""
    mixtral = p + "block_sparse_moe.gate.weight" in w
    deepseek = "n_routed_experts" in cfg
    q = p + ("block_sparse_moe." if mixtral else "mlp.")
    logits = h @ w[q + "gate.weight"].T
    if deepseek and cfg.get("scoring_func") == "sigmoid":
        pr = 1.0 / (1.0 + np.exp(-logits))
    else:
        pr = np.exp(logits - logits.max(axis=-1, keepdims=True))
        pr /= pr.sum(axis=-1, keepdims=True)
    choice = pr + w.get(q + "gate.e_score_correction_bias", 0.0)  # DeepSeek-V3: the bias only chooses
    G = cfg.get("n_group") or 1 if deepseek else 1
    k = cfg["num_experts_per_tok"]
    out = np.zeros_like(h)
    names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
    for t in range(h.shape[0]):
        ch = choice[t].copy()
        if G > 1:  # the topk_group groups of the largest top-two sums (llama.cpp's, for V2 and V3)
            grp = ch.reshape(G, -1)
            score = np.sort(grp, axis=-1)[:, -2:].sum(axis=-1)
            keep = np.argsort(-score, kind="stable")[: cfg["topk_group"]]
            off = np.ones(G, dtype=bool)
            off[keep] = False
            grp[off] = -np.inf
            ch = grp.reshape(-1)
        sel = np.argsort(-ch, kind="stable")[:k]
        wt = pr[t, sel]
        if mixtral or cfg.get("norm_topk_prob", False):
            wt = wt / wt.sum()
        if deepseek:
            wt = wt * cfg.get("routed_scaling_factor", 1.0)
        for e, we in zip(sel, wt):
            g = h[t] @ w[f"{q}experts.{e}.{names[0]}.weight"].T
            u = h[t] @ w[f"{q}experts.{e}.{names[1]}.weight"].T
            out[t] += we * ((g / (1.0 + np.exp(-g)) * u) @ w[f"{q}experts.{e}.{names[2]}.weight"].T)
    if q + "shared_expert.gate_proj.weight" in w:
        g = h @ w[q + "shared_expert.gate_proj.weight"].T
        u = h @ w[q + "shared_expert.up_proj.weight"].T
        f = (g / (1.0 + np.exp(-g)) * u) @ w[q + "shared_expert.down_proj.weight"].T
        z = h @ w[q + "shared_expert_gate.weight"].T  # [T, 1]
        out += f / (1.0 + np.exp(-z))
    if q + "shared_experts.gate_proj.weight" in w:  # DeepSeek: ungated
        g = h @ w[q + "shared_experts.gate_proj.weight"].T
        out += (g / (1.0 + np.exp(-g)) * (h @ w[q + "shared_experts.up_proj.weight"].T)) @ w[q + "shared_experts.down_proj.weight"].T
    return out


def read_logits(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:8]
    version, n_vocab, n_ctx, n_chunks = struct.unpack("<4I", data[8:24])
    if version != 1:
        raise SystemExit(f"{path}: logits file version {version}")
    pos = 24
    tokens = np.frombuffer(data[pos : pos + 4 * n_ctx * n_chunks], dtype="<i4").reshape(n_chunks, n_ctx)
    pos += 4 * n_ctx * n_chunks
    first = n_ctx // 2
    scored = n_ctx - 1 - first
    rows = np.frombuffer(data[pos:], dtype="<f4").reshape(n_chunks, scored, n_vocab)
    return magic, tokens, rows, first


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    tol = float(sys.argv[sys.argv.index("--tol") + 1]) if "--tol" in sys.argv else 1e-4
    d = sys.argv[1]
    with open(d + "/config.json") as f:
        cfg = json.load(f)
    w = load_safetensors(d + "/model.safetensors")
    _, tokens, rows, first = read_logits(sys.argv[2])
    worst = 0.0
    for c in range(tokens.shape[0]):
        ref = forward(cfg, w, tokens[c])[first : first + rows.shape[1]]
        rel = np.abs(rows[c] - ref).max() / np.abs(ref).max()
        worst = max(worst, rel)
        print(f"chunk {c}: max |lowbit - numpy| / max |numpy| = {rel:.2e}")
    arch = cfg.get("architectures", ["?"])[0]
    print(f"{arch}: worst {worst:.2e} (tolerance {tol:.0e})")
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
