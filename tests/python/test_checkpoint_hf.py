"""Hugging Face checkpoints: lightning_core.models.safetensors (reader/writer), .hf (configs, expected
tensors, load_checkpoint) and .make_random (spec: docs/python_api.md, "Checkpoints: Hugging Face folders
and safetensors").

Round trips bit-exact for every dtype (all 65,536 float16/bfloat16 patterns), zero-copy mmap views,
sharded indexes, every malformed-file case (each a ValueError naming the file and the tensor/field;
truncation at every length of a small file), load_checkpoint on make_random output for gpt2/llama/qwen2,
bad checkpoints and configs, the make_random CLI, and, when `transformers` is importable, that it loads the
make_random folders with the same weights (skipped otherwise).
"""
import dataclasses
import json
import math
import mmap
import os
import struct
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from lightning_core.models import hf, make_random as mr
from lightning_core.models.safetensors import (DTYPES, HEADER_LIMIT, SafetensorsError, SafetensorsFile,
                                               ShardedSafetensors, load_file, open_weights, save_file,
                                               save_file_streaming)

BF16 = np.dtype(ml_dtypes.bfloat16)


def _bits(a):
    """The raw bytes of ``a`` in C order (bit-exact comparisons, NaN payloads included)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8).tobytes()


def _raw_file(path, header, data=b"", n=None):
    """Writes a safetensors file by hand: header (dict -> JSON, or bytes), data, optional forced length."""
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(hb) if n is None else n) + hb + data)
    return path


def _mmap_of(a):
    """The mmap.mmap an array is a view of (following .base), or None."""
    b = a
    while b is not None:
        if isinstance(b, memoryview):
            b = b.obj
        if isinstance(b, mmap.mmap):
            return b
        b = getattr(b, "base", None)
    return None


# ------------------------------------------------------------------------------------------ round trips

def _all_dtype_tensors(rng):
    t = {}
    for name, dt in DTYPES.items():
        if dt.kind == "f" and dt.itemsize == 2:  # every 16-bit pattern, bfloat16 and float16
            t[name] = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(dt).reshape(256, 256)
        elif dt.kind == "b":
            t[name] = rng.integers(0, 2, size=(3, 5)).astype(bool)
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            t[name] = rng.integers(info.min, info.max, size=(4, 3, 2), dtype=dt, endpoint=True)
        elif dt.itemsize == 1:  # float8: every pattern
            t[name] = np.arange(256, dtype=np.uint8).view(dt)
        else:
            t[name] = rng.standard_normal((7, 5)).astype(dt)
    t["F32"][0, :4] = [np.nan, -0.0, np.inf, 1e-45]
    return t


def test_round_trip_every_dtype_bit_exact(tmp_path, rng):
    t = _all_dtype_tensors(rng)
    t["scalar"] = np.array(2.5, np.float64)
    t["empty"] = np.zeros((0, 4), np.float32)
    t["strided"] = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2].T  # a non-contiguous view
    t["big_endian"] = np.arange(6, dtype=">f4").reshape(2, 3)
    p = save_file(t, tmp_path / "m.safetensors", metadata={"format": "pt", "note": "é"})
    f = SafetensorsFile(p)
    assert f.metadata == {"format": "pt", "note": "é"}
    assert set(f) == set(t) and len(f) == len(t)
    for k, a in t.items():
        b = f[k]
        assert b.shape == a.shape, k
        assert f.shape_of(k) == a.shape and f.dtype_of(k) == b.dtype
        want = a.dtype.newbyteorder("=") if not a.dtype.isnative else a.dtype
        assert b.dtype == want, k
        assert _bits(b) == _bits(a.astype(want)), k
    assert f["BF16"].dtype == BF16
    assert load_file(p).keys() == f.keys()


def test_layout_aligned_and_padded(tmp_path):
    t = {"a": np.ones(3, np.int8), "b": np.ones(3, np.float64), "c": np.ones(1, np.float16), "d": np.ones(2, np.float32)}
    p = save_file(t, tmp_path / "m.safetensors")
    raw = open(p, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0
    hdr = json.loads(raw[8:8 + n])
    assert "__metadata__" not in hdr
    spans = sorted((v["data_offsets"], k) for k, v in hdr.items())
    off = 0
    for (b, e), k in spans:  # contiguous, each aligned to its itemsize
        assert b == off and b % t[k].itemsize == 0
        off = e
    assert off == len(raw) - 8 - n
    for (b, e), k in spans:
        assert raw[8 + n + b:8 + n + e] == t[k].tobytes()


def test_foreign_unpadded_unaligned_file_reads(tmp_path):
    """A file another writer made (no padding, odd offsets) reads correctly."""
    a = np.array([1.5, -2.0, 3.25], np.float32)
    b = np.array([7], np.int8)
    hdr = {"b": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]},
           "a": {"dtype": "F32", "shape": [3], "data_offsets": [1, 13]}}
    p = _raw_file(tmp_path / "x.safetensors", hdr, b.tobytes() + a.tobytes())
    f = SafetensorsFile(p)
    np.testing.assert_array_equal(f["a"], a)
    np.testing.assert_array_equal(f["b"], b)
    assert f.metadata == {}


def test_mmap_zero_copy(tmp_path):
    a = np.arange(1 << 16, dtype=np.float32).reshape(256, 256)
    p = save_file({"a": a, "h": a.astype(BF16)}, tmp_path / "m.safetensors")
    f = SafetensorsFile(p)
    for k in ("a", "h"):
        v = f[k]
        m = _mmap_of(v)
        assert isinstance(m, mmap.mmap), k
        assert not v.flags.writeable
        with pytest.raises(ValueError):
            v[0, 0] = 1
        # the array's memory is inside the mapping
        addr = v.__array_interface__["data"][0]
        base = np.frombuffer(m, np.uint8).__array_interface__["data"][0]
        assert base <= addr < base + len(m)
    np.testing.assert_array_equal(f["a"], a)


def test_streaming_writer(tmp_path):
    def chunks():
        for i in range(3):
            yield np.full(4, i, np.float32)
    p = save_file_streaming([("x", np.float32, (3, 4), chunks)], tmp_path / "s.safetensors", {"k": "v"})
    np.testing.assert_array_equal(SafetensorsFile(p)["x"], np.repeat(np.arange(3, dtype=np.float32), 4).reshape(3, 4))
    for bad, msg in ((lambda: iter([np.zeros(5, np.float32)]), "chunks hold 20 bytes, expected 48"),
                     (lambda: iter([np.zeros(100, np.float32)]), "expected 48"),
                     (lambda: iter([np.zeros(12, np.float64)]), "dtype float64")):
        q = tmp_path / "bad.safetensors"
        with pytest.raises(ValueError, match=msg):
            save_file_streaming([("x", np.float32, (3, 4), bad)], q)
        assert not q.exists()
    assert sorted(os.listdir(tmp_path)) == ["s.safetensors"]  # no temporary files left


def test_save_file_bad_inputs(tmp_path):
    p = tmp_path / "m.safetensors"
    with pytest.raises(TypeError, match="'x'.*NumPy array"):
        save_file({"x": [1, 2]}, p)
    with pytest.raises(TypeError, match="'x'.*object"):
        save_file({"x": np.array([None])}, p)
    with pytest.raises(TypeError, match="'x'.*complex"):
        save_file({"x": np.zeros(2, np.complex64)}, p)
    with pytest.raises(ValueError, match="__metadata__"):
        save_file({"__metadata__": np.zeros(2)}, p)
    with pytest.raises(ValueError, match="non-empty"):
        save_file({"": np.zeros(2)}, p)
    with pytest.raises(TypeError, match="metadata"):
        save_file({"x": np.zeros(2)}, p, metadata={"a": 1})
    with pytest.raises(TypeError, match="tensors"):
        save_file([np.zeros(2)], p)
    with pytest.raises(IsADirectoryError):
        save_file({"x": np.zeros(2)}, tmp_path)
    assert not p.exists()


# ------------------------------------------------------------------------------------ malformed files

GOOD = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
DATA = np.arange(4, dtype=np.float32).tobytes()


def _t(**kw):
    e = dict(GOOD["w"])
    e.update(kw)
    return {"w": e}


MALFORMED = [
    ("header_past_end", dict(header=GOOD, data=DATA, n=10_000), "runs past the end"),
    ("huge_header", dict(header=GOOD, data=DATA, n=2**63 + 5), "exceeds the limit"),
    ("just_over_limit", dict(header=GOOD, data=DATA, n=HEADER_LIMIT + 1), "exceeds the limit"),
    ("zero_header", dict(header=b"", data=b"xxxxxxxx"), "too short for a JSON object"),
    ("not_utf8", dict(header=b'{"w\xff": 1}', data=DATA), "UTF-8"),
    ("not_json", dict(header=b"{not json at all}", data=DATA), "not valid JSON"),
    ("json_array", dict(header=b"[1, 2, 3]", data=DATA), "not a JSON object"),
    ("json_nan", dict(header=b'{"w": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 16]}}', data=DATA),
     "not valid JSON"),
    ("duplicate_key", dict(header=b'{"w": 1, "w": 2}', data=DATA), "duplicate JSON key 'w'"),
    ("entry_not_object", dict(header={"w": [1, 2]}, data=DATA), "'w'.*expected an object"),
    ("missing_field", dict(header={"w": {"dtype": "F32", "shape": [4]}}, data=DATA), "'w'.*missing.*data_offsets"),
    ("unknown_field", dict(header=_t(extra=1), data=DATA), "'w'.*unknown field.*'extra'"),
    ("bad_dtype", dict(header=_t(dtype="F17"), data=DATA), "'w'.*dtype.*'F17'"),
    ("dtype_not_str", dict(header=_t(dtype=3), data=DATA), "'w'.*dtype"),
    ("negative_shape", dict(header=_t(shape=[-2, -2]), data=DATA), "'w'.*shape"),
    ("float_shape", dict(header=_t(shape=[2.0, 2]), data=DATA), "'w'.*shape"),
    ("bool_shape", dict(header=_t(shape=[True, 4]), data=DATA), "'w'.*shape"),
    ("str_shape", dict(header=_t(shape="2x2"), data=DATA), "'w'.*shape"),
    ("huge_rank", dict(header=_t(shape=[1] * 100), data=DATA), "'w'.*shape"),
    ("offsets_not_pair", dict(header=_t(data_offsets=[0]), data=DATA), "'w'.*data_offsets"),
    ("offsets_float", dict(header=_t(data_offsets=[0, 16.0]), data=DATA), "'w'.*data_offsets"),
    ("offsets_negative", dict(header=_t(data_offsets=[-16, 0]), data=DATA), "'w'.*data_offsets"),
    ("offsets_reversed", dict(header=_t(data_offsets=[16, 0]), data=DATA), "'w'.*data_offsets"),
    ("offsets_out_of_range", dict(header=_t(data_offsets=[16, 32]), data=DATA), "'w'.*past the end"),
    ("offsets_huge", dict(header=_t(shape=[2**40, 2**20], data_offsets=[0, 2**62]), data=DATA), "'w'.*past the end"),
    ("size_mismatch", dict(header=_t(shape=[2, 3]), data=DATA), "'w'.*size mismatch.*24"),
    ("overlap", dict(header={"w": GOOD["w"], "v": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
                     data=DATA), "'w'.*'v'.*overlap"),
    ("metadata_not_obj", dict(header={**GOOD, "__metadata__": [1]}, data=DATA), "__metadata__"),
    ("metadata_not_str", dict(header={**GOOD, "__metadata__": {"a": 1}}, data=DATA), "__metadata__.*'a'"),
    ("empty_name", dict(header={"": GOOD["w"]}, data=DATA), "empty name"),
]


@pytest.mark.parametrize("case,kw,msg", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_file_is_value_error_naming_file(tmp_path, case, kw, msg):
    p = _raw_file(tmp_path / f"{case}.safetensors", **kw)
    with pytest.raises(SafetensorsError, match=msg) as ei:
        SafetensorsFile(p)
    assert isinstance(ei.value, ValueError)
    assert str(p) in str(ei.value)


def test_valid_reference_of_malformed_cases(tmp_path):
    """The base case the mutations start from is itself valid (each case fails for its own reason)."""
    f = SafetensorsFile(_raw_file(tmp_path / "ok.safetensors", GOOD, DATA))
    np.testing.assert_array_equal(f["w"], np.arange(4, dtype=np.float32).reshape(2, 2))


def test_truncated_at_every_length(tmp_path, rng):
    src = save_file({"a": rng.standard_normal((3, 5)).astype(np.float32), "b": np.arange(7, dtype=np.int64)},
                    tmp_path / "src.safetensors")
    raw = open(src, "rb").read()
    p = tmp_path / "cut.safetensors"
    for n in range(len(raw)):
        p.write_bytes(raw[:n])
        with pytest.raises(SafetensorsError) as ei:
            SafetensorsFile(p)
        assert str(p) in str(ei.value), n
        if n >= 8 + struct.unpack("<Q", raw[:8])[0] - 1:
            assert "past the end" in str(ei.value) or "JSON" in str(ei.value), (n, str(ei.value))


def test_header_byte_flips_never_crash(tmp_path, rng):
    src = save_file({"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(3, BF16)},
                    tmp_path / "src.safetensors")
    raw = bytearray(open(src, "rb").read())
    (n,) = struct.unpack("<Q", raw[:8])
    p = tmp_path / "flip.safetensors"
    for pos in range(8 + n):
        for bit in (0, 5, 7):
            m = bytearray(raw)
            m[pos] ^= 1 << bit
            p.write_bytes(bytes(m))
            try:
                f = SafetensorsFile(p)
            except SafetensorsError:
                continue
            for k in f:  # a flip that still parses gives arrays inside the file
                assert f[k].nbytes <= len(m)


def test_not_a_regular_file(tmp_path):
    with pytest.raises(SafetensorsError, match="directory"):
        SafetensorsFile(tmp_path)
    with pytest.raises(FileNotFoundError):
        SafetensorsFile(tmp_path / "nope.safetensors")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(SafetensorsError, match="regular file"):
            SafetensorsFile(tmp_path / "fifo")  # never waits on the FIFO


# --------------------------------------------------------------------------------------------- shards

def _write_shards(folder, parts, weight_map=None):
    wm = {}
    for i, part in enumerate(parts):
        name = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        save_file(part, folder / name)
        wm.update({k: name for k in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 1},
                                                                      "weight_map": weight_map or wm}))
    return wm


def test_sharded_index_lazy_mapping(tmp_path, rng):
    parts = [{"a": rng.standard_normal((2, 3)).astype(np.float32), "b": np.arange(4, dtype=np.int32)},
             {"c": rng.standard_normal(5).astype(np.float32).astype(BF16)}]
    _write_shards(tmp_path, parts)
    m = open_weights(tmp_path)
    assert isinstance(m, ShardedSafetensors)
    assert sorted(m) == ["a", "b", "c"] and len(m) == 3 and m.metadata == {"total_size": 1}
    assert len(m.shards) == 2
    for part in parts:
        for k, a in part.items():
            assert _bits(m[k]) == _bits(a) and m.shape_of(k) == a.shape and m.dtype_of(k) == a.dtype
            assert isinstance(_mmap_of(m[k]), mmap.mmap)


@pytest.mark.parametrize("case", ["lacking", "unlisted", "missing_shard", "traversal", "absolute", "no_map",
                                  "not_json", "bad_shard"])
def test_sharded_index_errors(tmp_path, case):
    parts = [{"a": np.zeros(2, np.float32), "b": np.ones(2, np.float32)}, {"c": np.zeros(3, np.float32)}]
    wm = _write_shards(tmp_path, parts)
    idx = tmp_path / "model.safetensors.index.json"
    msg = {"lacking": "'zz'.*lacks it", "unlisted": "holds tensor 'b'", "missing_shard": "does not exist",
           "traversal": "file name in the folder", "absolute": "file name in the folder", "no_map": "weight_map",
           "not_json": "JSON", "bad_shard": "header length"}[case]
    if case == "lacking":
        wm["zz"] = wm["a"]
    elif case == "unlisted":
        del wm["b"]
    elif case == "missing_shard":
        wm["a"] = "model-gone.safetensors"
    elif case == "traversal":
        wm["a"] = "../" + wm["a"]
    elif case == "absolute":
        wm["a"] = str(tmp_path / wm["a"])
    elif case == "bad_shard":
        (tmp_path / wm["c"]).write_bytes(b"\xff" * 16)
    if case == "no_map":
        idx.write_text(json.dumps({"weights": wm}))
    elif case == "not_json":
        idx.write_text("{weight_map:")
    else:
        idx.write_text(json.dumps({"weight_map": wm}))
    with pytest.raises(SafetensorsError, match=msg):
        open_weights(tmp_path)


# ------------------------------------------------------------------------------- HF configs and folders

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("hf")
    out = {}
    for arch in ("gpt2", "llama", "qwen2"):
        for dt in ("float32", "bfloat16"):
            out[arch, dt] = mr.make_random(base / f"{arch}_{dt}", arch, "tiny", seed=3, dtype=dt)
    out["llama", "shards"] = mr.make_random(base / "llama_shards", "llama", "tiny", seed=3, shards=3)
    return out


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
def test_load_checkpoint_make_random(folders, arch):
    cfg, t = hf.load_checkpoint(folders[arch, "float32"])
    exp = hf.expected_tensors(cfg)
    assert list(t) == list(exp)
    for k, shape in exp.items():
        assert t[k].shape == shape and t[k].dtype == np.float32, k
        assert isinstance(_mmap_of(t[k]), mmap.mmap), k  # no copy without dtype=
        assert np.isfinite(t[k]).all() and np.abs(t[k]).max() > 0, k
    if arch == "gpt2":
        assert isinstance(cfg, hf.GPT2Config) and (cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.vocab_size) == (64, 2, 4, 256)
        assert cfg.tie_word_embeddings and "lm_head.weight" not in t and cfg.activation == "gelu_tanh"
        assert t["h.0.attn.c_attn.weight"].shape == (64, 192) and t["h.1.mlp.c_proj.weight"].shape == (256, 64)
        ln = t["h.0.ln_1.weight"]
    else:
        assert isinstance(cfg, hf.LlamaConfig) and cfg.model_type == arch
        assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (4, 2, 16)
        assert t["model.layers.1.self_attn.k_proj.weight"].shape == (32, 64)
        assert t["model.layers.0.mlp.down_proj.weight"].shape == (64, 176)
        assert t["lm_head.weight"].shape == (256, 64)
        assert ("model.layers.0.self_attn.q_proj.bias" in t) == (arch == "qwen2") == cfg.attention_bias
        assert "model.layers.0.self_attn.o_proj.bias" not in t
        ln = t["model.layers.0.input_layernorm.weight"]
    assert abs(float(ln.mean()) - 1.0) < 0.05  # norms around 1, matrices around 0
    # residual projections are scaled down by sqrt(2 * layers)
    w = t["h.0.attn.c_attn.weight" if arch == "gpt2" else "model.layers.0.self_attn.q_proj.weight"]
    o = t["h.0.attn.c_proj.weight" if arch == "gpt2" else "model.layers.0.self_attn.o_proj.weight"]
    assert 0.017 < w.std() < 0.023 and 0.008 < o.std() < 0.012


def test_load_checkpoint_dtype_cast(folders):
    cfg32, t32 = hf.load_checkpoint(folders["llama", "float32"])
    cfg16, t16 = hf.load_checkpoint(folders["llama", "bfloat16"])
    assert cfg16.torch_dtype == "bfloat16" and cfg32.torch_dtype == "float32"
    for k in t32:
        assert t16[k].dtype == BF16
        assert _bits(t16[k]) == _bits(t32[k].astype(BF16)), k  # same seed: the bf16 file is the rounded f32 one
    _, c16 = hf.load_checkpoint(folders["llama", "float32"], dtype="bfloat16")
    _, c32 = hf.load_checkpoint(folders["llama", "bfloat16"], dtype=np.float32)
    _, h16 = hf.load_checkpoint(folders["llama", "float32"], dtype="float16")
    _, same = hf.load_checkpoint(folders["llama", "bfloat16"], dtype="bf16")
    for k in t32:
        assert _bits(c16[k]) == _bits(t16[k]), k
        assert c32[k].dtype == np.float32 and _bits(c32[k]) == _bits(t16[k].astype(np.float32)), k
        assert h16[k].dtype == np.float16 and _bits(h16[k]) == _bits(t32[k].astype(np.float16)), k
        assert isinstance(_mmap_of(same[k]), mmap.mmap)  # already bfloat16: still a view
    with pytest.raises(ValueError, match="dtype.*float64"):
        hf.load_checkpoint(folders["llama", "float32"], dtype="float64")
    with pytest.raises(TypeError, match="dtype"):
        hf.load_checkpoint(folders["llama", "float32"], dtype="int8")


def test_sharded_and_single_agree(folders):
    assert os.path.exists(os.path.join(folders["llama", "shards"], "model.safetensors.index.json"))
    assert len(open_weights(folders["llama", "shards"]).shards) == 3
    _, a = hf.load_checkpoint(folders["llama", "shards"])
    _, b = hf.load_checkpoint(folders["llama", "float32"])
    assert list(a) == list(b)
    for k in a:
        assert _bits(a[k]) == _bits(b[k]), k


def test_make_random_deterministic(tmp_path):
    a = mr.make_random(tmp_path / "a", "gpt2", "tiny", seed=7)
    b = mr.make_random(tmp_path / "b", "gpt2", "tiny", seed=7)
    c = mr.make_random(tmp_path / "c", "gpt2", "tiny", seed=8)
    fa, fb, fc = (open(os.path.join(x, "model.safetensors"), "rb").read() for x in (a, b, c))
    assert fa == fb and fa != fc
    raw = SafetensorsFile(os.path.join(a, "model.safetensors"))
    assert raw.metadata == {"format": "pt"}
    assert "transformer.h.0.attn.c_attn.weight" in raw and "lm_head.weight" not in raw  # GPT2LMHeadModel names
    with pytest.raises(ValueError, match="arch.*'bert'"):
        mr.make_random(tmp_path / "d", "bert", "tiny")
    with pytest.raises(ValueError, match="size.*'7b'"):
        mr.make_random(tmp_path / "d", "llama", "7b")
    with pytest.raises(ValueError, match="std"):
        mr.make_random(tmp_path / "d", "llama", "tiny", std=float("nan"))


@pytest.mark.parametrize("arch,size", [(a, s) for a in ("gpt2", "llama") for s in ("124m", "1b")])
def test_make_random_big_configs(arch, size):
    """The big sizes' configs and parameter counts (nothing written)."""
    cfg = hf.parse_config(mr.config_dict(arch, size))
    n = sum(int(np.prod(s)) for s in hf.expected_tensors(cfg).values())
    if (arch, size) == ("gpt2", "124m"):
        assert (cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.vocab_size, cfg.n_positions) == (768, 12, 12, 50257, 1024)
        assert n == 124_439_808  # GPT-2 small
    if (arch, size) == ("llama", "1b"):
        assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads,
                cfg.intermediate_size, cfg.vocab_size, cfg.rope_theta) == (2048, 22, 32, 4, 5632, 32000, 10000.0)
        assert n == 1_100_048_384  # TinyLlama-1.1B's count


def test_make_random_cli(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = tmp_path / "cli"
    r = subprocess.run([sys.executable, "-m", "lightning_core.models.make_random", "--arch", "llama", "--size", "tiny",
                        "--seed", "5", "--dtype", "bfloat16", str(out)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    cfg, t = hf.load_checkpoint(out)
    assert cfg.torch_dtype == "bfloat16" and t["model.embed_tokens.weight"].dtype == BF16
    assert _bits(t["model.norm.weight"]) == _bits(hf.load_checkpoint(mr.make_random(
        tmp_path / "api", "llama", "tiny", seed=5, dtype="bfloat16"))[1]["model.norm.weight"])
    r = subprocess.run([sys.executable, "-m", "lightning_core.models.make_random", "--arch", "bert", str(out)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "bert" in r.stderr


# ------------------------------------------------------------------------------------- bad checkpoints

def _edit_folder(src, dst, edit_tensors=None, edit_config=None):
    """A copy of folder ``src`` with its tensors (dict, HF names) and/or config dict edited."""
    os.makedirs(dst)
    t = {k: np.array(v) for k, v in load_file(os.path.join(src, "model.safetensors")).items()}
    cfg = json.load(open(os.path.join(src, "config.json")))
    if edit_tensors:
        edit_tensors(t)
    if edit_config:
        edit_config(cfg)
    save_file(t, os.path.join(dst, "model.safetensors"), {"format": "pt"})
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f)
    return dst


L0 = "model.layers.0."
BAD_TENSORS = [
    ("missing", "llama", lambda t: t.pop(L0 + "mlp.up_proj.weight"), r"missing tensor 'model.layers.0.mlp.up_proj.weight'"),
    ("missing_lm_head", "llama", lambda t: t.pop("lm_head.weight"), r"missing tensor 'lm_head.weight'"),
    ("missing_bias", "qwen2", lambda t: t.pop(L0 + "self_attn.v_proj.bias"), r"missing tensor '.*v_proj.bias'"),
    ("wrong_shape", "llama", lambda t: t.update({L0 + "self_attn.k_proj.weight": np.zeros((64, 64), np.float32)}),
     r"'model.layers.0.self_attn.k_proj.weight': expected shape \[32, 64\], got \[64, 64\]"),
    ("transposed", "gpt2", lambda t: t.update({"transformer.h.1.mlp.c_fc.weight": np.zeros((256, 64), np.float32)}),
     r"'transformer.h.1.mlp.c_fc.weight': expected shape \[64, 256\], got \[256, 64\]"),
    ("int_dtype", "llama", lambda t: t.update({"model.norm.weight": np.ones(64, np.int32)}),
     r"'model.norm.weight': expected a float dtype.*got int32"),
    ("bool_dtype", "gpt2", lambda t: t.update({"transformer.ln_f.bias": np.ones(64, bool)}),
     r"'transformer.ln_f.bias': expected a float dtype.*got bool"),
    ("unexpected", "llama", lambda t: t.update({L0 + "mlp.gate_proj.bias": np.zeros(176, np.float32)}),
     r"unexpected tensor 'model.layers.0.mlp.gate_proj.bias'"),
    ("both_prefixes", "gpt2", lambda t: t.update({"wte.weight": t["transformer.wte.weight"]}),
     r"'wte.weight' is present twice"),
    ("tied_head_bad_shape", "gpt2", lambda t: t.update({"lm_head.weight": np.zeros((3, 64), np.float32)}),
     r"'lm_head.weight': expected shape \[256, 64\]"),
]


@pytest.mark.parametrize("case,arch,edit,msg", BAD_TENSORS, ids=[c[0] for c in BAD_TENSORS])
def test_bad_checkpoint_tensors(folders, tmp_path, case, arch, edit, msg):
    d = _edit_folder(folders[arch, "float32"], tmp_path / case, edit_tensors=edit)
    with pytest.raises(ValueError, match=msg) as ei:
        hf.load_checkpoint(d)
    assert str(d) in str(ei.value)


def test_gpt2_variants_load(folders, tmp_path):
    """GPT-2 without the 'transformer.' prefix, with the mask buffers and a tied lm_head (as the original
    checkpoints have them), and untied."""
    ref_cfg, ref = hf.load_checkpoint(folders["gpt2", "float32"])

    def strip(t):
        for k in list(t):
            t[k[len("transformer."):]] = t.pop(k)
        t["h.0.attn.bias"] = np.tril(np.ones((1, 1, 128, 128), np.float32))
        t["h.0.attn.masked_bias"] = np.array(-1e4, np.float32)
        t["lm_head.weight"] = t["wte.weight"]
    _, t = hf.load_checkpoint(_edit_folder(folders["gpt2", "float32"], tmp_path / "plain", edit_tensors=strip))
    assert list(t) == list(ref) and all(_bits(t[k]) == _bits(ref[k]) for k in ref)

    head = np.full((256, 64), 0.5, np.float32)
    d = _edit_folder(folders["gpt2", "float32"], tmp_path / "untied",
                     edit_tensors=lambda t: t.update({"lm_head.weight": head}),
                     edit_config=lambda c: c.update({"tie_word_embeddings": False}))
    cfg, t = hf.load_checkpoint(d)
    assert not cfg.tie_word_embeddings and _bits(t["lm_head.weight"]) == _bits(head)
    d = _edit_folder(folders["gpt2", "float32"], tmp_path / "untied_missing",
                     edit_config=lambda c: c.update({"tie_word_embeddings": False}))
    with pytest.raises(ValueError, match="missing tensor 'lm_head.weight'"):
        hf.load_checkpoint(d)


def test_bad_safetensors_in_folder(folders, tmp_path):
    d = _edit_folder(folders["llama", "float32"], tmp_path / "trunc")
    p = os.path.join(d, "model.safetensors")
    raw = open(p, "rb").read()
    open(p, "wb").write(raw[:-100])
    with pytest.raises(ValueError, match="past the end.*truncated"):
        hf.load_checkpoint(d)
    os.remove(p)
    with pytest.raises(FileNotFoundError):
        hf.load_checkpoint(d)
    with pytest.raises(NotADirectoryError):
        hf.load_checkpoint(os.path.join(folders["llama", "float32"], "config.json"))


def _cfg(**kw):
    c = mr.config_dict("llama", "tiny")
    for k, v in kw.items():
        if v is _DEL:
            c.pop(k, None)
        else:
            c[k] = v
    return c


_DEL = object()
BAD_CONFIGS = [
    ("unknown_model_type", _cfg(model_type="bert"), r"unknown architecture: model_type 'bert' \(supported: gpt2, llama, mistral, qwen2\)"),
    ("unknown_architecture", _cfg(model_type=_DEL, architectures=["BertModel"]), r"unknown architecture.*BertModel.*LlamaForCausalLM"),
    ("no_type", _cfg(model_type=_DEL, architectures=_DEL), r"'model_type': missing"),
    ("missing_hidden", _cfg(hidden_size=_DEL), r"field 'hidden_size': missing"),
    ("missing_vocab", _cfg(vocab_size=_DEL), r"field 'vocab_size': missing"),
    ("null_layers", _cfg(num_hidden_layers=None), r"'num_hidden_layers': expected an integer, got None"),
    ("str_heads", _cfg(num_attention_heads="4"), r"'num_attention_heads': expected an integer, got '4'"),
    ("bool_ffn", _cfg(intermediate_size=True), r"'intermediate_size': expected an integer"),
    ("zero_layers", _cfg(num_hidden_layers=0), r"'num_hidden_layers': expected a positive integer"),
    ("gqa_mismatch", _cfg(num_key_value_heads=3), r"'num_key_value_heads'"),
    ("heads_not_dividing", _cfg(num_attention_heads=5, num_key_value_heads=5), r"'num_attention_heads'.*head_dim"),
    ("odd_head_dim", _cfg(head_dim=15), r"'head_dim'.*even"),
    ("bad_eps", _cfg(rms_norm_eps=-1.0), r"'rms_norm_eps': expected a positive number"),
    ("bad_theta", _cfg(rope_theta="big"), r"'rope_theta': expected a finite number"),
    ("bad_act", _cfg(hidden_act="gelu"), r"'hidden_act': unsupported 'gelu'"),
    ("bad_tie", _cfg(tie_word_embeddings="no"), r"'tie_word_embeddings': expected true or false"),
    ("rope_yarn", _cfg(rope_scaling={"rope_type": "yarn", "factor": 4.0}), r"'rope_scaling': unsupported rope_type 'yarn'"),
    ("rope_no_factor", _cfg(rope_scaling={"type": "linear"}), r"'rope_scaling'.*'factor': missing"),
    ("rope_llama3_missing", _cfg(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                               "high_freq_factor": 4.0}), r"'original_max_position_embeddings': missing"),
    ("rope_not_obj", _cfg(rope_scaling=[8]), r"'rope_scaling': expected null or an object"),
    ("gpt2_missing", {"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "vocab_size": 10},
     r"'n_positions': missing"),
    ("gpt2_heads", {"model_type": "gpt2", "n_embd": 64, "n_head": 5, "n_layer": 2, "vocab_size": 10, "n_positions": 8},
     r"'n_head': n_embd 64 is not a multiple"),
    ("gpt2_act", {**mr.config_dict("gpt2", "tiny"), "activation_function": "quick_gelu"},
     r"'activation_function': unsupported 'quick_gelu'"),
    ("not_object", [1, 2], r"expected a JSON object"),
]


@pytest.mark.parametrize("case,cfg,msg", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config(case, cfg, msg):
    with pytest.raises(ValueError, match=msg):
        hf.parse_config(cfg)


def test_bad_config_in_folder(folders, tmp_path):
    d = _edit_folder(folders["llama", "float32"], tmp_path / "cfg", edit_config=lambda c: c.pop("intermediate_size"))
    with pytest.raises(ValueError, match=r"config '.*config.json': field 'intermediate_size': missing"):
        hf.load_checkpoint(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write("{oops")
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        hf.load_checkpoint(d)


def test_config_fields_and_variants():
    c = hf.parse_config(_cfg(model_type=_DEL, architectures=["MistralForCausalLM"], sliding_window=4096,
                             num_key_value_heads=_DEL, torch_dtype="torch.bfloat16"))
    assert c.model_type == "mistral" and c.sliding_window == 4096 and c.num_key_value_heads == 4
    assert c.torch_dtype == "bfloat16"
    c = hf.parse_config(_cfg(attention_bias=True, mlp_bias=True, head_dim=32))
    assert c.attention_bias and c.o_proj_bias and c.mlp_bias and c.head_dim == 32
    exp = hf.expected_tensors(c)
    assert exp["model.layers.0.self_attn.q_proj.weight"] == (128, 64) and exp["model.layers.0.self_attn.o_proj.weight"] == (64, 128)
    assert exp["model.layers.1.self_attn.o_proj.bias"] == (64,) and exp["model.layers.1.mlp.down_proj.bias"] == (64,)
    c = hf.parse_config({**mr.config_dict("qwen2", "tiny"), "use_sliding_window": True, "sliding_window": 128,
                         "tie_word_embeddings": True})
    assert c.attention_bias and not c.o_proj_bias and c.sliding_window == 128 and c.tie_word_embeddings
    assert "lm_head.weight" not in hf.expected_tensors(c)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.vocab_size = 3
    g = hf.parse_config({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "vocab_size": 10, "n_ctx": 32,
                         "n_inner": 100, "activation_function": "gelu"})
    assert g.n_positions == 32 and g.n_inner == 100 and g.activation == "gelu_erf" and g.tie_word_embeddings
    assert g.layer_norm_epsilon == 1e-5 and g.head_dim == 16


def test_rope_scaling_parsed_and_inv_freq():
    base = hf.parse_config(_cfg(rope_theta=500000.0, head_dim=64))
    assert base.rope_scaling is None
    inv = hf.rope_inv_freq(base)
    np.testing.assert_allclose(inv, [500000.0 ** (-2 * i / 64) for i in range(32)], rtol=1e-14)
    lin = hf.parse_config(_cfg(rope_theta=500000.0, head_dim=64, rope_scaling={"type": "linear", "factor": 2.0}))
    assert lin.rope_scaling == hf.RopeScaling("linear", 2.0)
    np.testing.assert_allclose(hf.rope_inv_freq(lin), inv / 2, rtol=1e-14)
    rs = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}
    l3 = hf.parse_config(_cfg(rope_theta=500000.0, head_dim=64, rope_scaling=rs))
    assert l3.rope_scaling == hf.RopeScaling("llama3", 8.0, 1.0, 4.0, 8192)
    got = hf.rope_inv_freq(l3)
    for i, f in enumerate(inv):  # scalar reference of the llama3 rule
        wl = 2 * math.pi / f
        if wl < 8192 / 4.0:
            want = f
        elif wl > 8192 / 1.0:
            want = f / 8.0
        else:
            s = (8192 / wl - 1.0) / (4.0 - 1.0)
            want = (1 - s) * f / 8.0 + s * f
        assert got[i] == pytest.approx(want, rel=1e-13), i
    assert got[0] == inv[0] and got[-1] == pytest.approx(inv[-1] / 8) and (got < inv).sum() > 0
    assert hf.parse_config(_cfg(rope_scaling={"rope_type": "default"})).rope_scaling is None
    with pytest.raises(TypeError):
        hf.rope_inv_freq(hf.parse_config(mr.config_dict("gpt2", "tiny")))


# ----------------------------------------------------------------------------------------- transformers

@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
def test_transformers_loads_make_random(folders, arch):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folders[arch, "float32"]))
    _, ours = hf.load_checkpoint(folders[arch, "float32"])
    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    for k, a in ours.items():
        key = ("transformer." + k) if arch == "gpt2" and k != "lm_head.weight" else k
        assert key in sd, key
        np.testing.assert_array_equal(sd[key], a, err_msg=key)
