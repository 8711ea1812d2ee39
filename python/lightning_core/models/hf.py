"""Hugging Face model folders: config.json -> GPT2Config / LlamaConfig, the expected tensors, load_checkpoint.

- ``read_config(folder_or_config_json)`` -> ``GPT2Config`` (model_type "gpt2") or ``LlamaConfig``
  ("llama", "mistral", "qwen2"); a missing or bad field is a ``ValueError`` naming it, an unknown
  architecture one naming it and the supported ones.
- ``expected_tensors(config)`` -> {canonical name: shape}. Canonical names are the Hugging Face names of
  the decoder: GPT-2 without the ``transformer.`` prefix (``wte.weight`` [V, D], ``h.{i}.attn.c_attn.weight``
  [D, 3D] in Conv1D layout [in, out], ...), LLaMA as ``LlamaForCausalLM`` saves them
  (``model.layers.{i}.self_attn.q_proj.weight`` [H*hd, D] in nn.Linear layout [out, in], ...).
  ``lm_head.weight`` [V, D] is expected only when the embeddings are not tied.
- ``load_checkpoint(path, dtype=None)`` -> (config, {canonical name: ndarray}): every expected tensor must
  be present with its shape and a float dtype, and nothing else may be there (known buffers such as GPT-2's
  ``attn.bias`` mask and ``rotary_emb.inv_freq`` are skipped; a tied ``lm_head.weight`` is dropped); all of
  it is checked before anything is returned. Without ``dtype`` the arrays are zero-copy mmap views in the
  checkpoint's dtype; ``dtype="float32"|"float16"|"bfloat16"`` casts (``lightning_core.cast``).
- ``rope_inv_freq(config)``: the RoPE inverse frequencies [head_dim/2] (float64), with linear or llama3
  scaling applied.

Reference: docs/python_api.md ("Checkpoints: Hugging Face folders and safetensors").
Tests: tests/python/test_checkpoint_hf.py.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional

import numpy as np

from .safetensors import _fspath, open_weights

CONFIG_NAME = "config.json"
LLAMA_TYPES = ("llama", "mistral", "qwen2")
SUPPORTED = ("gpt2",) + LLAMA_TYPES
ARCHITECTURES = {"GPT2LMHeadModel": "gpt2", "GPT2Model": "gpt2", "LlamaForCausalLM": "llama",
                 "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2"}
# GPT-2 activation names -> the form computed
GPT2_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
                    "gelu": "gelu_erf", "relu": "relu"}
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


class ConfigError(ValueError):
    """A config.json that cannot describe a supported model (names the file and the field)."""


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """rope_scaling of a LLaMA config: ``rope_type`` "linear" (factor) or "llama3" (factor, low/high
    frequency factors, original_max_position_embeddings)."""
    rope_type: str
    factor: float
    low_freq_factor: Optional[float] = None
    high_freq_factor: Optional[float] = None
    original_max_position_embeddings: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class GPT2Config:
    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    n_inner: int  # the MLP width (config null -> 4 * n_embd)
    layer_norm_epsilon: float = 1e-5
    activation_function: str = "gelu_new"
    tie_word_embeddings: bool = True
    scale_attn_weights: bool = True
    torch_dtype: Optional[str] = None
    model_type: str = "gpt2"

    @property
    def head_dim(self):
        return self.n_embd // self.n_head

    @property
    def activation(self):
        """"gelu_tanh", "gelu_erf" or "relu"."""
        return GPT2_ACTIVATIONS[self.activation_function]


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    model_type: str  # "llama", "mistral" or "qwen2"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: Optional[RopeScaling] = None
    tie_word_embeddings: bool = False
    attention_bias: bool = False  # q/k/v biases (always on for qwen2)
    o_proj_bias: bool = False  # llama's attention_bias also gives o_proj a bias; qwen2's o_proj has none
    mlp_bias: bool = False
    sliding_window: Optional[int] = None  # in effect (mistral; qwen2 with use_sliding_window), else None
    torch_dtype: Optional[str] = None


def _cfg_fail(where, field, problem):
    raise ConfigError(f"{where}: field {field!r}: {problem}")


def _get(cfg, where, field, kind, default=dataclasses.MISSING, positive=False, allow_null=False):
    if field not in cfg or (cfg[field] is None and not allow_null and default is not dataclasses.MISSING):
        if default is dataclasses.MISSING:
            _cfg_fail(where, field, "missing")
        return default
    v = cfg[field]
    if v is None and allow_null:
        return None
    if kind is int:
        if not isinstance(v, int) or isinstance(v, bool):
            _cfg_fail(where, field, f"expected an integer, got {v!r}")
        if positive and v <= 0:
            _cfg_fail(where, field, f"expected a positive integer, got {v}")
    elif kind is float:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            _cfg_fail(where, field, f"expected a finite number, got {v!r}")
        v = float(v)
        if positive and v <= 0:
            _cfg_fail(where, field, f"expected a positive number, got {v}")
    elif kind is bool:
        if not isinstance(v, bool):
            _cfg_fail(where, field, f"expected true or false, got {v!r}")
    elif kind is str:
        if not isinstance(v, str):
            _cfg_fail(where, field, f"expected a string, got {v!r}")
    return v


def _torch_dtype(cfg, where):
    v = cfg.get("torch_dtype", cfg.get("dtype"))
    if v is None:
        return None
    if not isinstance(v, str):
        _cfg_fail(where, "torch_dtype", f"expected a string, got {v!r}")
    return v.replace("torch.", "")


def _arch(cfg, where):
    mt = cfg.get("model_type")
    if mt is not None:
        if not isinstance(mt, str) or mt not in SUPPORTED:
            raise ConfigError(f"{where}: unknown architecture: model_type {mt!r} (supported: {', '.join(SUPPORTED)})")
        return mt
    archs = cfg.get("architectures")
    if isinstance(archs, list) and archs:
        for a in archs:
            if a in ARCHITECTURES:
                return ARCHITECTURES[a]
        raise ConfigError(f"{where}: unknown architecture: architectures {archs!r} (supported: "
                          f"{', '.join(ARCHITECTURES)}; model_type {', '.join(SUPPORTED)})")
    raise ConfigError(f"{where}: field 'model_type': missing (and no known 'architectures'); "
                      f"supported: {', '.join(SUPPORTED)}")


def _gpt2_config(cfg, where):
    d = _get(cfg, where, "n_embd", int, positive=True)
    h = _get(cfg, where, "n_head", int, positive=True)
    if d % h:
        _cfg_fail(where, "n_head", f"n_embd {d} is not a multiple of n_head {h}")
    inner = _get(cfg, where, "n_inner", int, None, positive=True, allow_null=True)
    act = _get(cfg, where, "activation_function", str, "gelu_new")
    if act not in GPT2_ACTIVATIONS:
        _cfg_fail(where, "activation_function", f"unsupported {act!r} (supported: {', '.join(GPT2_ACTIVATIONS)})")
    if _get(cfg, where, "scale_attn_by_inverse_layer_idx", bool, False):
        _cfg_fail(where, "scale_attn_by_inverse_layer_idx", "true is not supported")
    if "n_positions" in cfg or "n_ctx" not in cfg:
        npos = _get(cfg, where, "n_positions", int, positive=True)
    else:
        npos = _get(cfg, where, "n_ctx", int, positive=True)
    return GPT2Config(
        vocab_size=_get(cfg, where, "vocab_size", int, positive=True), n_positions=npos, n_embd=d,
        n_layer=_get(cfg, where, "n_layer", int, positive=True), n_head=h, n_inner=inner or 4 * d,
        layer_norm_epsilon=_get(cfg, where, "layer_norm_epsilon", float, 1e-5, positive=True),
        activation_function=act, tie_word_embeddings=_get(cfg, where, "tie_word_embeddings", bool, True),
        scale_attn_weights=_get(cfg, where, "scale_attn_weights", bool, True),
        torch_dtype=_torch_dtype(cfg, where))


def _rope_scaling(cfg, where):
    rs = cfg.get("rope_scaling")
    if rs is None:
        return None
    f = "rope_scaling"
    if not isinstance(rs, dict):
        _cfg_fail(where, f, f"expected null or an object, got {rs!r}")
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "default":
        return None
    if kind not in ("linear", "llama3"):
        _cfg_fail(where, f, f"unsupported rope_type {kind!r} (supported: linear, llama3)")
    sub = f"{where}: field 'rope_scaling'"
    factor = _get(rs, sub, "factor", float, positive=True)
    if kind == "linear":
        return RopeScaling("linear", factor)
    lo = _get(rs, sub, "low_freq_factor", float, positive=True)
    hi = _get(rs, sub, "high_freq_factor", float, positive=True)
    if hi <= lo:
        _cfg_fail(sub, "high_freq_factor", f"must exceed low_freq_factor ({hi} <= {lo})")
    orig = _get(rs, sub, "original_max_position_embeddings", int, positive=True)
    return RopeScaling("llama3", factor, lo, hi, orig)


def _llama_config(cfg, where, mt):
    d = _get(cfg, where, "hidden_size", int, positive=True)
    h = _get(cfg, where, "num_attention_heads", int, positive=True)
    hkv = _get(cfg, where, "num_key_value_heads", int, h, positive=True)
    if h % hkv:
        _cfg_fail(where, "num_key_value_heads", f"num_attention_heads {h} is not a multiple of it ({hkv})")
    hd = _get(cfg, where, "head_dim", int, None, positive=True, allow_null=True)
    if hd is None:
        if d % h:
            _cfg_fail(where, "num_attention_heads", f"hidden_size {d} is not a multiple of it ({h}) and no head_dim is given")
        hd = d // h
    if hd % 2:
        _cfg_fail(where, "head_dim", f"RoPE needs an even head dimension, got {hd}")
    act = _get(cfg, where, "hidden_act", str, "silu")
    if act != "silu":
        _cfg_fail(where, "hidden_act", f"unsupported {act!r} (supported: silu)")
    if mt == "qwen2":
        qkv_bias, o_bias, mlp_bias = True, False, False
        sw = _get(cfg, where, "sliding_window", int, None, positive=True, allow_null=True) \
            if _get(cfg, where, "use_sliding_window", bool, False) else None
    elif mt == "mistral":
        qkv_bias = o_bias = mlp_bias = False
        sw = _get(cfg, where, "sliding_window", int, None, positive=True, allow_null=True)
    else:
        qkv_bias = o_bias = _get(cfg, where, "attention_bias", bool, False)
        mlp_bias = _get(cfg, where, "mlp_bias", bool, False)
        sw = None
    return LlamaConfig(
        model_type=mt, vocab_size=_get(cfg, where, "vocab_size", int, positive=True), hidden_size=d,
        intermediate_size=_get(cfg, where, "intermediate_size", int, positive=True),
        num_hidden_layers=_get(cfg, where, "num_hidden_layers", int, positive=True),
        num_attention_heads=h, num_key_value_heads=hkv, head_dim=hd,
        max_position_embeddings=_get(cfg, where, "max_position_embeddings", int, positive=True),
        rms_norm_eps=_get(cfg, where, "rms_norm_eps", float, 1e-6, positive=True),
        rope_theta=_get(cfg, where, "rope_theta", float, 10000.0, positive=True),
        rope_scaling=_rope_scaling(cfg, where),
        tie_word_embeddings=_get(cfg, where, "tie_word_embeddings", bool, False),
        attention_bias=qkv_bias, o_proj_bias=o_bias, mlp_bias=mlp_bias, sliding_window=sw,
        torch_dtype=_torch_dtype(cfg, where))


def parse_config(cfg, where="config"):
    """A config dict (config.json's content) -> GPT2Config or LlamaConfig."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(cfg).__name__}")
    mt = _arch(cfg, where)
    return _gpt2_config(cfg, where) if mt == "gpt2" else _llama_config(cfg, where, mt)


def read_config(path):
    """``path``: a model folder (its config.json) or a config.json file -> GPT2Config or LlamaConfig."""
    p = _fspath(path)
    if os.path.isdir(p):
        p = os.path.join(p, CONFIG_NAME)
    where = f"config {p!r}"
    with open(p, "rb") as f:
        raw = f.read(16 * 1024 * 1024 + 1)
    if len(raw) > 16 * 1024 * 1024:
        raise ConfigError(f"{where}: larger than 16 MiB")
    try:
        cfg = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"{where}: not valid UTF-8 JSON ({e})") from None
    return parse_config(cfg, where)


def expected_tensors(config):
    """{canonical name: shape} of every tensor the config's model needs, in model order."""
    out = {}
    if isinstance(config, GPT2Config):
        d, f, v = config.n_embd, config.n_inner, config.vocab_size
        out["wte.weight"] = (v, d)
        out["wpe.weight"] = (config.n_positions, d)
        for i in range(config.n_layer):
            p = f"h.{i}."
            out.update({p + "ln_1.weight": (d,), p + "ln_1.bias": (d,),
                        p + "attn.c_attn.weight": (d, 3 * d), p + "attn.c_attn.bias": (3 * d,),
                        p + "attn.c_proj.weight": (d, d), p + "attn.c_proj.bias": (d,),
                        p + "ln_2.weight": (d,), p + "ln_2.bias": (d,),
                        p + "mlp.c_fc.weight": (d, f), p + "mlp.c_fc.bias": (f,),
                        p + "mlp.c_proj.weight": (f, d), p + "mlp.c_proj.bias": (d,)})
        out["ln_f.weight"] = (d,)
        out["ln_f.bias"] = (d,)
    elif isinstance(config, LlamaConfig):
        d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
        q, kv = config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim
        out["model.embed_tokens.weight"] = (v, d)
        for i in range(config.num_hidden_layers):
            p = f"model.layers.{i}."
            out[p + "input_layernorm.weight"] = (d,)
            for name, rows in (("q_proj", q), ("k_proj", kv), ("v_proj", kv)):
                out[p + f"self_attn.{name}.weight"] = (rows, d)
                if config.attention_bias:
                    out[p + f"self_attn.{name}.bias"] = (rows,)
            out[p + "self_attn.o_proj.weight"] = (d, q)
            if config.o_proj_bias:
                out[p + "self_attn.o_proj.bias"] = (d,)
            out[p + "post_attention_layernorm.weight"] = (d,)
            for name, shape in (("gate_proj", (f, d)), ("up_proj", (f, d)), ("down_proj", (d, f))):
                out[p + f"mlp.{name}.weight"] = shape
                if config.mlp_bias:
                    out[p + f"mlp.{name}.bias"] = (shape[0],)
        out["model.norm.weight"] = (d,)
    else:
        raise TypeError(f"expected_tensors: config: expected GPT2Config or LlamaConfig, got {type(config).__name__}")
    if not config.tie_word_embeddings:
        out["lm_head.weight"] = (v, d)
    return out


def _ignored(name):
    """Buffers some checkpoints carry that are not weights (GPT-2's causal mask, cached RoPE frequencies)."""
    return name.endswith((".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq"))


def _canonical_names(config, names, where):
    """{canonical name: file name} for the file's tensors (GPT-2's 'transformer.' prefix removed)."""
    out = {}
    for n in names:
        c = n
        if isinstance(config, GPT2Config):
            if n.startswith("transformer."):
                c = n[len("transformer."):]
            if c.startswith("h.") and _ignored(c):
                continue
        elif _ignored(n):
            continue
        if c in out:
            raise ValueError(f"{where}: tensor {c!r} is present twice ({out[c]!r} and {n!r})")
        out[c] = n
    return out


def load_checkpoint(path, dtype=None):
    """Loads a Hugging Face model folder -> (config, {canonical name: ndarray}).

    Every expected tensor must be present with its shape and a float dtype, and no unknown tensor may be
    there; the first problem is a ValueError naming the tensor (expected vs got) and nothing is returned.
    ``dtype`` None keeps the checkpoint's dtype (zero-copy mmap views); "float32", "float16" or "bfloat16"
    casts on load (a tensor already of that dtype stays a view)."""
    from ..dtypes import dtype_name  # noqa: PLC0415  (the package's dtype names)
    p = _fspath(path)
    if not os.path.isdir(p):
        raise NotADirectoryError(f"load_checkpoint: path: expected a model folder (config.json + safetensors), got {p!r}")
    target = None
    if dtype is not None:
        target = dtype_name(dtype, "load_checkpoint: dtype")
        if target not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"load_checkpoint: dtype: expected 'float32', 'float16' or 'bfloat16', got {target!r}")
    config = read_config(p)
    weights = open_weights(p)
    where = f"checkpoint {p!r}"
    names = _canonical_names(config, list(weights), where)
    expected = expected_tensors(config)
    kind = config.model_type
    for c, shape in expected.items():
        if c not in names:
            raise ValueError(f"{where}: missing tensor {c!r} (expected shape {list(shape)} for this {kind} config)")
        got = tuple(weights.shape_of(names[c]))
        if got != shape:
            raise ValueError(f"{where}: tensor {names[c]!r}: expected shape {list(shape)}, got {list(got)}")
        dt = weights.dtype_of(names[c])
        if dt.name not in FLOAT_DTYPES:
            raise ValueError(f"{where}: tensor {names[c]!r}: expected a float dtype ({', '.join(FLOAT_DTYPES)}), got {dt}")
    for c, n in names.items():
        if c in expected:
            continue
        if c == "lm_head.weight" and config.tie_word_embeddings:
            v, d = expected["wte.weight" if kind == "gpt2" else "model.embed_tokens.weight"]
            if tuple(weights.shape_of(n)) != (v, d):
                raise ValueError(f"{where}: tensor {n!r}: expected shape {[v, d]} (tied to the embeddings), "
                                 f"got {list(weights.shape_of(n))}")
            continue  # tied: the embedding matrix is the head
        raise ValueError(f"{where}: unexpected tensor {n!r} (not part of a {kind} model with this config)")
    out = {}
    for c in expected:
        a = weights[names[c]]
        if target is not None and a.dtype.name != target:
            from ..dtypes import cast  # noqa: PLC0415
            a = cast(a, target)
        out[c] = a
    return config, out


def rope_inv_freq(config):
    """RoPE inverse frequencies [head_dim / 2] (float64) of a LlamaConfig, rope_scaling applied:
    theta^(-2i/hd); "linear" divides them by factor; "llama3" divides the low frequencies (wavelength past
    original_max_position_embeddings / low_freq_factor) by factor, keeps the high ones (wavelength under
    original / high_freq_factor) and interpolates smoothly in between."""
    if not isinstance(config, LlamaConfig):
        raise TypeError(f"rope_inv_freq: config: expected LlamaConfig, got {type(config).__name__}")
    hd = config.head_dim
    inv = 1.0 / (config.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    rs = config.rope_scaling
    if rs is None:
        return inv
    if rs.rope_type == "linear":
        return inv / rs.factor
    orig = rs.original_max_position_embeddings
    wavelen = 2 * math.pi / inv
    low_wl, high_wl = orig / rs.low_freq_factor, orig / rs.high_freq_factor
    smooth = (orig / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor)
    mid = (1 - smooth) * inv / rs.factor + smooth * inv
    return np.where(wavelen > low_wl, inv / rs.factor, np.where(wavelen < high_wl, inv, mid))
