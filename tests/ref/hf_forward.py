#!/usr/bin/env python3
"""An independent forward pass of a Hugging Face model directory, in NumPy (float64).

It shares no code with lowbit: it reads config.json and model.safetensors the way transformers
does (Llama, Mistral, Qwen2, Qwen3, Phi-3: rotate_half RoPE on the half-split layout, q/k/v biases,
Qwen3's per-head q/k RMSNorm, Phi-3's fused qkv_proj and gate_up_proj, grouped-query attention,
SiLU MLP, tied embeddings, linear
rope_scaling) and compares
its logits with those lowbit saved with `lowbit eval DIR --save-logits FILE`.

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


def forward(cfg, w, tokens):
    E = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    K = cfg.get("num_key_value_heads", H)
    D = cfg.get("head_dim") or E // H
    L = cfg["num_hidden_layers"]
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind not in ("default", "linear"):
        raise SystemExit(f"rope_scaling {kind}: not in this reference")
    scale = rs.get("factor", 1.0) if kind == "linear" else 1.0
    T = len(tokens)
    x = w["model.embed_tokens.weight"][tokens]
    inv = 1.0 / theta ** (np.arange(0, D, 2, dtype=np.float64) / D)
    ang = np.outer(np.arange(T, dtype=np.float64) / scale, inv)
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(L):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
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
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, H // K, axis=1)
        v = np.repeat(v, H // K, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(D) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, H * D)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        if p + "mlp.gate_up_proj.weight" in w:  # Phi-3: gate's rows, then up's
            gu = h @ w[p + "mlp.gate_up_proj.weight"].T
            g, u = gu[:, : gu.shape[1] // 2], gu[:, gu.shape[1] // 2 :]
        else:
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g / (1.0 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


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
