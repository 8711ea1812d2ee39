"""Float64 NumPy reference forward of the model runner's architectures (issue 16), owned by the test suite.

  ref_forward(config, tensors, ids, positions=None) -> logits [B, S, vocab] (float64)
  ref_generate(config, tensors, prompt, max_new_tokens, stop_ids=()) -> prompt + greedy tokens (list of int)

config/tensors as `lightning_core.models.load_checkpoint` returns them (canonical names, HF layouts).
  GPT-2: wte + wpe, per block LayerNorm -> c_attn (Conv1D layout x @ W [in, out]) -> causal multi-head
         attention (scale 1/sqrt(head_dim)) -> c_proj, residual; LayerNorm -> c_fc -> GELU (tanh form for
         "gelu_new"/"gelu_pytorch_tanh", erf for "gelu") -> c_proj, residual; ln_f; logits with wte
         (tied) or lm_head.
  LLaMA (and Mistral/Qwen2 configs): embed_tokens, per block RMSNorm -> q/k/v projections (nn.Linear layout
         x @ W.T, biases when the config has them) -> RoPE (half-split rotate_half, inverse frequencies with
         rope_scaling from models.hf.rope_inv_freq) -> causal GQA attention (sliding window when the config
         sets one) -> o_proj, residual; RMSNorm -> down(silu(gate(x)) * up(x)), residual; norm; lm_head.
Everything is computed in float64 from the stored weights (whatever their dtype), one sequence at a time, so
it is the ground truth for padding, batching and caching in the engine. positions default to 0..S-1.
Tests: tests/python/test_ref_models.py (self-consistency; against transformers when it is installed).
"""
from __future__ import annotations

import math

import numpy as np

F64 = np.float64


def _w(tensors, name):
    return np.asarray(tensors[name]).astype(F64)


def _layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w


def _gelu(x, kind):
    if kind in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast", "tanh"):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if kind == "gelu":
        from math import erf
        return 0.5 * x * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)))
    if kind == "relu":
        return np.maximum(x, 0.0)
    raise ValueError(f"ref_models: activation_function: expected gelu_new, gelu_pytorch_tanh, gelu or relu, got {kind!r}")


def _attention(q, k, v, positions, window=None):
    """q [S, H, hd], k, v [S, Hkv, hd] of one sequence; query i sees keys j with pos_j <= pos_i (and within
    the sliding window). Returns [S, H, hd]."""
    s, h, hd = q.shape
    g = h // k.shape[1]
    out = np.empty_like(q)
    pos = np.asarray(positions)
    visible = pos[None, :] <= pos[:, None]
    if window is not None:
        visible &= (pos[:, None] - pos[None, :]) < window
    for head in range(h):
        kh = k[:, head // g]
        sc = (q[:, head] @ kh.T) / math.sqrt(hd)
        sc = np.where(visible, sc, -np.inf)
        sc -= sc.max(axis=-1, keepdims=True)
        p = np.exp(sc)
        p /= p.sum(axis=-1, keepdims=True)
        out[:, head] = p @ v[:, head // g]
    return out


def _rope(x, positions, inv_freq):
    """x [S, H, hd] rotated by pos * inv_freq in the half-split layout (rotate_half)."""
    ang = np.asarray(positions, dtype=F64)[:, None] * inv_freq[None, :]  # [S, hd/2]
    cos = np.cos(np.concatenate([ang, ang], axis=-1))[:, None, :]
    sin = np.sin(np.concatenate([ang, ang], axis=-1))[:, None, :]
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rot * sin


def _gpt2_seq(cfg, t, ids, pos):
    d, h = cfg.n_embd, cfg.n_head
    hd = d // h
    x = _w(t, "wte.weight")[ids] + _w(t, "wpe.weight")[pos]
    eps = cfg.layer_norm_epsilon
    for i in range(cfg.n_layer):
        p = f"h.{i}."
        a = _layer_norm(x, _w(t, p + "ln_1.weight"), _w(t, p + "ln_1.bias"), eps)
        qkv = a @ _w(t, p + "attn.c_attn.weight") + _w(t, p + "attn.c_attn.bias")
        q, k, v = (qkv[:, j * d:(j + 1) * d].reshape(-1, h, hd) for j in range(3))
        att = _attention(q, k, v, pos).reshape(-1, d)
        x = x + att @ _w(t, p + "attn.c_proj.weight") + _w(t, p + "attn.c_proj.bias")
        m = _layer_norm(x, _w(t, p + "ln_2.weight"), _w(t, p + "ln_2.bias"), eps)
        m = _gelu(m @ _w(t, p + "mlp.c_fc.weight") + _w(t, p + "mlp.c_fc.bias"), cfg.activation_function)
        x = x + m @ _w(t, p + "mlp.c_proj.weight") + _w(t, p + "mlp.c_proj.bias")
    x = _layer_norm(x, _w(t, "ln_f.weight"), _w(t, "ln_f.bias"), eps)
    head = _w(t, "wte.weight") if cfg.tie_word_embeddings else _w(t, "lm_head.weight")
    return x @ head.T


def _linear(t, x, name, bias):
    y = x @ _w(t, name + ".weight").T
    return y + _w(t, name + ".bias") if bias else y


def _llama_seq(cfg, t, ids, pos):
    from ..models.hf import rope_inv_freq
    h, hkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    inv = rope_inv_freq(cfg)
    x = _w(t, "model.embed_tokens.weight")[ids]
    eps = cfg.rms_norm_eps
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        a = _rms_norm(x, _w(t, p + "input_layernorm.weight"), eps)
        q = _linear(t, a, p + "self_attn.q_proj", cfg.attention_bias).reshape(-1, h, hd)
        k = _linear(t, a, p + "self_attn.k_proj", cfg.attention_bias).reshape(-1, hkv, hd)
        v = _linear(t, a, p + "self_attn.v_proj", cfg.attention_bias).reshape(-1, hkv, hd)
        q, k = _rope(q, pos, inv), _rope(k, pos, inv)
        att = _attention(q, k, v, pos, cfg.sliding_window).reshape(-1, h * hd)
        x = x + _linear(t, att, p + "self_attn.o_proj", cfg.o_proj_bias)
        m = _rms_norm(x, _w(t, p + "post_attention_layernorm.weight"), eps)
        gate = _linear(t, m, p + "mlp.gate_proj", cfg.mlp_bias)
        up = _linear(t, m, p + "mlp.up_proj", cfg.mlp_bias)
        x = x + _linear(t, gate / (1.0 + np.exp(-gate)) * up, p + "mlp.down_proj", cfg.mlp_bias)
    x = _rms_norm(x, _w(t, "model.norm.weight"), eps)
    head = _w(t, "model.embed_tokens.weight") if cfg.tie_word_embeddings else _w(t, "lm_head.weight")
    return x @ head.T


def ref_forward(config, tensors, ids, positions=None):
    """Logits [B, S, vocab] (float64) of ids [B, S] (or [S]); positions [B, S] / [S] (default 0..S-1)."""
    from ..models.hf import GPT2Config, LlamaConfig
    ids = np.asarray(ids)
    squeeze = ids.ndim == 1
    ids2 = ids[None] if squeeze else ids
    if ids2.ndim != 2 or not np.issubdtype(ids2.dtype, np.integer):
        raise ValueError(f"ref_forward: ids: expected integer [B, S] or [S], got {ids.dtype} {ids.shape}")
    if positions is None:
        pos2 = np.broadcast_to(np.arange(ids2.shape[1]), ids2.shape)
    else:
        pos2 = np.broadcast_to(np.asarray(positions), ids2.shape)
    if isinstance(config, GPT2Config):
        seq = _gpt2_seq
    elif isinstance(config, LlamaConfig):
        seq = _llama_seq
    else:
        raise TypeError(f"ref_forward: config: expected GPT2Config or LlamaConfig, got {type(config).__name__}")
    out = np.stack([seq(config, tensors, ids2[b], pos2[b]) for b in range(ids2.shape[0])])
    return out[0] if squeeze else out


def ref_generate(config, tensors, prompt, max_new_tokens, stop_ids=()):
    """prompt + up to max_new_tokens greedy tokens (argmax of the last position's logits, the full forward
    recomputed each step); stops after emitting a token in stop_ids."""
    toks = [int(t) for t in prompt]
    for _ in range(max_new_tokens):
        nxt = int(np.argmax(ref_forward(config, tensors, np.asarray(toks))[-1]))
        toks.append(nxt)
        if nxt in stop_ids:
            break
    return toks
