"""The fused decode step (ops.h lc_decode_program_*, models/fused.py, src/backend/cuda/decode_fused_cuda.cu) on
make_random "small" checkpoints (every in-dimension a multiple of 256; GPT-2 head_dim 64, LLaMA-family 128 with
GQA 2:1, Qwen2 with q/k/v biases, Mistral with a sliding window of 6), bfloat16 and float16.

CUDA: after a prefill through the op-by-op path, each fused step's float32 logits (poisoned with NaN before the
step) against the float64 reference forward of the whole sequence (lightning_core.testing.ref_models), its
next token equal to the first index of the logits' maximum, the caches' lengths advanced; generate (graph
replays of fused steps) deterministic across calls and equal to the reference's argmax wherever the reference's
top-two margin exceeds the tolerance; seeded sampling repeatable; a full cache or a token out of range writes
token -1 and nothing else. Tolerance: the step keeps float32 activations and sums; the error is the weights'
and the cache's storage rounding (u = 2^-8 bfloat16, 2^-11 float16) carried through two layers, so
|logits - ref| <= 32 u * max|ref| (0.125 / 0.016 of the scale; a layout, rope, mask or norm mistake moves the
logits by O(1) of the scale).
Any device: the program's checks (arch, tuples, tensors, strides, caches, dtype) name the field; a CPU model
gets NotImplementedError from the C library and a reason from models.fused.unsupported. """
import json
import os

import numpy as np
import pytest

import lightning_core as lc
from lightning_core import _C
from lightning_core.models import fused, load
from lightning_core.models.make_random import make_random
from lightning_core.testing.ref_models import ref_forward

from conftest import requires_cuda

ARCHS = ("gpt2", "llama", "qwen2", "mistral")
EPS = {"bfloat16": 2.0 ** -8, "float16": 2.0 ** -11}
PROMPT = [5, 17, 3, 99, 42, 7, 640]


@pytest.fixture(autouse=True)
def fused_on(monkeypatch):
    """the engine's fused step switched on (its default is the measured faster path, engine.FUSED_DEFAULT)"""
    monkeypatch.setenv("LC_MODELS_FUSED_DECODE", "1")


@pytest.fixture(scope="module", params=ARCHS)
def folder(request, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("fused_" + request.param))
    make_random(d, arch=request.param, size="small", seed=11)
    if request.param == "mistral":  # a window shorter than the prompt: the step must drop the oldest keys
        path = os.path.join(d, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg["sliding_window"] = 6
        with open(path, "w") as f:
            json.dump(cfg, f)
    return request.param, d


def _dev(a, dtype=None):
    return lc.Tensor(np.ascontiguousarray(a), device="cuda", dtype=dtype)


def _close(got, want, rel):
    scale = np.max(np.abs(want))
    err = np.max(np.abs(got.astype(np.float64) - want))
    assert np.all(np.isfinite(got)) and err <= rel * scale, (err, scale, rel)


def _prefilled(model, cap):
    cache = model.new_cache(1, cap)
    model.forward(np.array([PROMPT]), cache=cache)
    return cache


@requires_cuda
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_steps_match_reference(folder, dtype):
    arch, path = folder
    model = load(path, device="cuda", dtype=dtype)
    assert model.fused_decode and model.weight_layout == "out_in", model.fused_reason
    cfg, t = lc.models.load_checkpoint(path)
    cache = _prefilled(model, 32)
    prog = fused.FusedDecode(model, cache)
    seq = list(PROMPT)
    tok = _dev(np.array([int(np.argmax(ref_forward(cfg, t, np.array(seq))[-1]))], np.int64))
    for step in range(6):
        seq.append(int(tok.numpy()[0]))
        nxt = _dev(np.array([-7], np.int64))
        logits = _dev(np.full((1, model.vocab), np.nan, np.float32))
        prog.step(tok, nxt, logits)
        got = logits.numpy()[0]
        _close(got, ref_forward(cfg, t, np.array(seq))[-1], 32 * EPS[dtype])
        assert int(nxt.numpy()[0]) == int(np.argmax(got)), step  # the kernel's argmax: first index of the max
        tok = nxt
    assert list(cache[0].lengths) == [len(seq)] and list(cache[-1].lengths) == [len(seq)]
    # the op-by-op path goes on from the caches the fused steps wrote (host mirror refreshed from the device)
    seq.append(int(tok.numpy()[0]))
    got = model.forward(np.array([[seq[-1]]]), cache=cache).numpy()[0, -1]
    _close(got.astype(np.float64), ref_forward(cfg, t, np.array(seq))[-1], 32 * EPS[dtype])


@requires_cuda
def test_generate_fused_deterministic_and_decisive_tokens_match(folder):
    _, path = folder
    model = load(path, device="cuda", dtype="bfloat16")
    cfg, t = lc.models.load_checkpoint(path)
    a = model.generate(PROMPT, 20, graph_steps=4)  # the first run eager, then captured replays
    b = model.generate(PROMPT, 20, graph_steps=4)  # replays only
    assert a == b and len(a) == len(PROMPT) + 20 and all(0 <= x < model.vocab for x in a)
    tol = 32 * EPS["bfloat16"]
    for j in range(len(PROMPT), len(a)):
        ref = ref_forward(cfg, t, np.array(a[:j]))[-1]
        top = np.sort(ref)[-2:]
        if top[1] - top[0] > 2 * tol * np.max(np.abs(ref)):  # decisive: no storage rounding can flip it
            assert a[j] == int(np.argmax(ref)), j


@requires_cuda
def test_generate_fused_sampling_repeatable(folder):
    _, path = folder
    model = load(path, device="cuda", dtype="bfloat16")
    a = model.generate(PROMPT, 10, temperature=0.8, top_k=50, seed=3)
    assert a == model.generate(PROMPT, 10, temperature=0.8, top_k=50, seed=3)
    assert all(0 <= x < model.vocab for x in a)


@requires_cuda
def test_full_cache_and_bad_token_write_minus_one(folder):
    _, path = folder
    model = load(path, device="cuda", dtype="bfloat16")
    cache = _prefilled(model, len(PROMPT) + 1)
    prog = fused.FusedDecode(model, cache)
    nxt, logits = _dev(np.array([-7], np.int64)), _dev(np.full(model.vocab, np.nan, np.float32))
    prog.step(_dev(np.array([model.vocab], np.int64)), nxt, logits)  # a token out of range
    assert int(nxt.numpy()[0]) == -1 and np.all(np.isnan(logits.numpy()))
    assert list(cache[0].lengths) == [len(PROMPT)]
    prog.step(_dev(np.array([3], np.int64)), nxt, logits)  # fills the last slot
    assert 0 <= int(nxt.numpy()[0]) < model.vocab and list(cache[0].lengths) == [len(PROMPT) + 1]
    logits.copy_from(np.full(model.vocab, np.nan, np.float32))
    prog.step(nxt, nxt, logits)  # no room: -1, nothing written, overflow raised
    assert int(nxt.numpy()[0]) == -1 and np.all(np.isnan(logits.numpy()))
    assert list(cache[0].lengths) == [len(PROMPT) + 1] and cache[0].overflowed


@requires_cuda
def test_fused_off_switch(folder, monkeypatch):
    _, path = folder
    monkeypatch.setenv("LC_MODELS_FUSED_DECODE", "0")
    model = load(path, device="cuda", dtype="bfloat16")
    assert not model.fused_decode and model.fused_reason == "LC_MODELS_FUSED_DECODE=0"
    assert len(model.generate(PROMPT, 4)) == len(PROMPT) + 4


# ---- checks (any device) ------------------------------------------------------------------------------
def _parts(model, caches):
    """the binding's arguments for model (weights [out, in]), as FusedDecode passes them"""
    return (*fused.program_args(model), [c._cap for c in caches])


@pytest.fixture(scope="module")
def cpu_llama(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("fused_checks"))
    make_random(d, arch="llama", size="small", seed=2)
    return d


def test_checks_name_the_field(cpu_llama):
    model = load(cpu_llama, device="cpu", dtype="bfloat16", weight_layout="out_in")
    caches = [lc.KVCache(1, model.hkv, 16, model.hd, dtype="bfloat16") for _ in model.layers]
    arch, cfg, ts, layers, caps = _parts(model, caches)
    with pytest.raises(NotImplementedError, match="runs on CUDA, got cpu"):  # every check passed: the device
        _C._decode_program_new(arch, cfg, ts, layers, caps)
    with pytest.raises(ValueError, match="arch"):
        _C._decode_program_new("bert", cfg, ts, layers, caps)
    with pytest.raises(TypeError, match="config"):
        _C._decode_program_new(arch, list(cfg), ts, layers, caps)
    with pytest.raises(TypeError, match="tensors"):
        _C._decode_program_new(arch, cfg, ts[:4], layers, caps)
    with pytest.raises(TypeError, match=r"layers\[1\]"):
        _C._decode_program_new(arch, cfg, ts, [layers[0], layers[1][:11]], caps)
    bad = list(layers[1])
    bad[4] = np.zeros((256, 256), np.float32)
    with pytest.raises(TypeError, match=r"layers\[1\]\.w_o"):
        _C._decode_program_new(arch, cfg, ts, [layers[0], tuple(bad)], caps)
    bad[4] = layers[1][2]  # w_qkv where w_o belongs: the wrong shape
    with pytest.raises(ValueError, match=r"layers\[1\]\.w_o: expected shape"):
        _C._decode_program_new(arch, cfg, ts, [layers[0], tuple(bad)], caps)
    with pytest.raises(ValueError, match=r"caches"):
        _C._decode_program_new(arch, cfg, ts, layers, caps[:1])
    with pytest.raises(TypeError, match=r"caches\[0\]"):
        _C._decode_program_new(arch, cfg, ts, layers, [object(), caps[1]])
    odd = lc.KVCache(1, model.hkv, 16, 32, dtype="bfloat16")
    with pytest.raises(NotImplementedError, match=r"layers\[0\]\.cache: expected head_dim 64 or 128, got 32"):
        _C._decode_program_new(arch, cfg, ts, layers, [odd._cap, caps[1]])
    wrong = [lc.KVCache(1, model.hkv, 16, 64, dtype="bfloat16") for _ in model.layers]
    with pytest.raises(ValueError, match=r"layers\[1\]\.cache"):
        _C._decode_program_new(arch, cfg, ts, layers, [caps[0], wrong[1]._cap])
    f16 = [lc.KVCache(1, model.hkv, 16, model.hd, dtype="float16") for _ in model.layers]
    with pytest.raises(ValueError, match=r"layers\[0\]\.cache"):
        _C._decode_program_new(arch, cfg, ts, layers, [c._cap for c in f16])
    with pytest.raises(ValueError, match=r"heads \(<= 1024\) a multiple of kv_heads"):
        _C._decode_program_new(arch, (3, 2) + cfg[2:], ts, layers, caps)
    # weights stored [in, out] (weight_layout "in_out") are not the transposed views the kernel streams
    io = load(cpu_llama, device="cpu", dtype="bfloat16", weight_layout="in_out")
    with pytest.raises(ValueError, match=r"lm_head: expected the \[in, out\] view .*'out_in'"):
        _C._decode_program_new(*_parts(io, caches))
    f32 = load(cpu_llama, device="cpu", dtype="float32", weight_layout="out_in")
    with pytest.raises(TypeError, match="embed: expected dtype bfloat16 or float16"):
        _C._decode_program_new(*_parts(f32, caches))
    with pytest.raises(ValueError, match="not supported by the fused decode step: device"):
        fused.FusedDecode(model, caches)
    assert fused.unsupported(model) == "device is not cuda" and not model.fused_decode


def test_env_switch_checked(cpu_llama, monkeypatch):
    monkeypatch.setenv("LC_MODELS_FUSED_DECODE", "yes")
    with pytest.raises(ValueError, match="LC_MODELS_FUSED_DECODE"):
        load(cpu_llama, device="cpu")
