"""Random-weight Hugging Face checkpoints for tests and benchmarks (offline; no tokenizer is written).

``python -m lightning_core.models.make_random --arch gpt2|llama|qwen2|mistral --size tiny|small|124m|1b DIR
[--seed S] [--dtype float32|bfloat16|float16] [--std 0.02] [--shards N]`` writes DIR/config.json and
DIR/model.safetensors (or N shards + model.safetensors.index.json) with Hugging Face names and layouts
(GPT-2 as GPT2LMHeadModel saves it: ``transformer.`` prefix, Conv1D [in, out] weights, tied head, no
lm_head.weight; LLaMA as LlamaForCausalLM: nn.Linear [out, in], untied lm_head.weight).

Weights come from NumPy's seeded generator, one stream per tensor (seeded by (seed, crc32(name)), so a
tensor's values do not depend on the layout): matrices and embeddings N(0, std^2), the residual output
projections (GPT-2 c_proj, LLaMA o_proj/down_proj) N(0, std^2 / (2 * layers)), biases N(0, std^2), norm
weights 1 + N(0, std^2), norm biases N(0, std^2). Tensors are generated and written in chunks of 4M
elements, so memory stays bounded for the 1.1B model.

Sizes (vocab, positions, d, layers, heads, kv heads, ffn):
  gpt2  tiny 256, 128, 64, 2, 4, -, 256 | small 1000, 128, 256, 2, 4, -, 1024 (head_dim 64)
        124m 50257, 1024, 768, 12, 12, -, 3072 (GPT-2 small)
        1b   50257, 2048, 2048, 22, 32, -, 8192
  llama tiny 256, 256, 64, 2, 4, 2, 176 | small 1000, 256, 256, 2, 2, 1, 512 (head_dim 128)
        124m 32000, 2048, 768, 12, 12, 4, 2048
        1b   32000, 2048, 2048, 22, 32, 4, 5632 (the LLaMA-architecture 1.1B config; rope_theta 10000)
  qwen2 / mistral: the llama dims under that model_type (qwen2: q/k/v biases).
  small: the smallest dims the fused decode step takes (every in-dimension a multiple of 256), for its tests.
Tests: tests/python/test_checkpoint_hf.py.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import zlib

import numpy as np

from .hf import expected_tensors, parse_config
from .safetensors import INDEX_NAME, SINGLE_NAME, _write_atomic, save_file_streaming

CHUNK = 1 << 22
ARCHS = ("gpt2", "llama", "qwen2", "mistral")
SIZES = ("tiny", "small", "124m", "1b")
_GPT2 = {"tiny": (256, 128, 64, 2, 4), "small": (1000, 128, 256, 2, 4), "124m": (50257, 1024, 768, 12, 12), "1b": (50257, 2048, 2048, 22, 32)}
_LLAMA = {"tiny": (256, 256, 64, 2, 4, 2, 176), "small": (1000, 256, 256, 2, 2, 1, 512), "124m": (32000, 2048, 768, 12, 12, 4, 2048),
          "1b": (32000, 2048, 2048, 22, 32, 4, 5632)}
_ARCH_CLASS = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
               "mistral": "MistralForCausalLM"}


def config_dict(arch, size, dtype="float32"):
    """The config.json content of ``arch`` at ``size``."""
    if arch not in ARCHS:
        raise ValueError(f"make_random: arch: expected one of {', '.join(ARCHS)}, got {arch!r}")
    if size not in SIZES:
        raise ValueError(f"make_random: size: expected one of {', '.join(SIZES)}, got {size!r}")
    common = {"architectures": [_ARCH_CLASS[arch]], "model_type": arch, "torch_dtype": dtype,
              "initializer_range": 0.02, "use_cache": True}
    if arch == "gpt2":
        v, p, d, n, h = _GPT2[size]
        return {**common, "vocab_size": v, "n_positions": p, "n_ctx": p, "n_embd": d, "n_layer": n, "n_head": h,
                "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
                "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "scale_attn_weights": True,
                "tie_word_embeddings": True, "bos_token_id": v - 1, "eos_token_id": v - 1}
    v, p, d, n, h, hkv, f = _LLAMA[size]
    cfg = {**common, "vocab_size": v, "max_position_embeddings": p, "hidden_size": d, "intermediate_size": f,
           "num_hidden_layers": n, "num_attention_heads": h, "num_key_value_heads": hkv, "hidden_act": "silu",
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": False,
           "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2}
    if arch == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1})
    elif arch == "mistral":
        cfg["sliding_window"] = None
    else:
        cfg.update({"use_sliding_window": False, "sliding_window": None})
    return cfg


def _init(name, layers, std):
    """(scale, offset) of a tensor's N(offset, scale^2) values."""
    if "norm" in name or ".ln_" in name or name.startswith(("ln_f", "transformer.ln_f")):
        return (std, 1.0) if name.endswith("weight") else (std, 0.0)
    if name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight", "o_proj.weight", "down_proj.weight")):
        return std / np.sqrt(2.0 * layers), 0.0
    return std, 0.0


def _producer(name, shape, seed, std, layers, dtype):
    def produce():
        from ..dtypes import cast  # noqa: PLC0415
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        scale, offset = _init(name, layers, std)
        left = int(np.prod(shape))
        while left > 0:
            k = min(left, CHUNK)
            x = rng.standard_normal(k, dtype=np.float32) * np.float32(scale)
            if offset:
                x += np.float32(offset)
            yield x if dtype == "float32" else cast(x, dtype)
            left -= k
    return produce


def make_random(directory, arch="llama", size="tiny", seed=0, dtype="float32", std=0.02, shards=1):
    """Writes config.json and the weights of a random ``arch``/``size`` model into ``directory``
    (created if missing). Returns the directory."""
    from ..dtypes import dtype_name, numpy_dtype  # noqa: PLC0415
    dtype = dtype_name(dtype, "make_random: dtype")
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"make_random: dtype: expected float32, float16 or bfloat16, got {dtype}")
    if not isinstance(std, (int, float)) or isinstance(std, bool) or not 0 < std < float("inf"):
        raise ValueError(f"make_random: std: expected a positive finite number, got {std!r}")
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise ValueError(f"make_random: shards: expected a positive integer, got {shards!r}")
    cfg = config_dict(arch, size, dtype)
    config = parse_config(cfg, f"make_random {arch}/{size}")
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    for stale in (INDEX_NAME, SINGLE_NAME):
        if os.path.exists(os.path.join(directory, stale)) and (stale == INDEX_NAME or shards > 1):
            raise FileExistsError(f"make_random: {directory!r} already holds {stale}; use an empty folder")
    layers = cfg.get("n_layer", cfg.get("num_hidden_layers"))
    names = expected_tensors(config)
    if arch == "gpt2":  # GPT2LMHeadModel's names
        names = {("transformer." + k if k != "lm_head.weight" else k): s for k, s in names.items()}
    npdt = numpy_dtype(dtype)
    entries = [(k, npdt, s, _producer(k, s, seed, std, layers, dtype)) for k, s in names.items()]
    meta = {"format": "pt"}
    if shards == 1:
        save_file_streaming(entries, os.path.join(directory, SINGLE_NAME), meta)
    else:
        total = sum(int(np.prod(s)) for _, _, s, _ in entries)
        groups, acc, cur = [], 0, []
        for e in entries:  # contiguous groups of about total / shards elements
            cur.append(e)
            acc += int(np.prod(e[2]))
            if acc >= total * (len(groups) + 1) / shards and len(groups) < shards - 1:
                groups.append(cur)
                cur = []
        groups.append(cur)
        groups = [g for g in groups if g]
        weight_map = {}
        for i, g in enumerate(groups):
            fname = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
            save_file_streaming(g, os.path.join(directory, fname), meta)
            weight_map.update({e[0]: fname for e in g})
        index = {"metadata": {"total_size": total * npdt.itemsize}, "weight_map": weight_map}
        _write_atomic(os.path.join(directory, INDEX_NAME),
                      lambda f: f.write(json.dumps(index, indent=2).encode("utf-8")))
    _write_atomic(os.path.join(directory, "config.json"),
                  lambda f: f.write((json.dumps(cfg, indent=2) + "\n").encode("utf-8")))
    return directory


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lightning_core.models.make_random",
                                 description="Write a random-weight Hugging Face checkpoint (config.json + safetensors).")
    ap.add_argument("--arch", choices=ARCHS, required=True)
    ap.add_argument("--size", choices=SIZES, default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    ap.add_argument("--std", type=float, default=0.02, help="standard deviation of the weights (default 0.02)")
    ap.add_argument("--shards", type=int, default=1, help="number of safetensors shards (default 1)")
    ap.add_argument("dir")
    a = ap.parse_args(argv)
    try:
        make_random(a.dir, a.arch, a.size, a.seed, a.dtype, a.std, a.shards)
    except (ValueError, OSError) as e:
        print(f"make_random: {e}", file=sys.stderr)
        return 1
    print(f"wrote {a.arch} {a.size} ({a.dtype}, seed {a.seed}) to {a.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
