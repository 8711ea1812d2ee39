"""The cuDNN fused-attention prefill of lc.scaled_dot_product_attention (src/backend/cuda/sdpa_cudnn.c).

On a GPU machine with cuDNN 9 loadable: with LC_SDPA_CUDNN=1 (every eligible shape, not only the large ones
the default rule sends there) each float16/bfloat16 case runs on path cuda_sdpa_cudnn_* and matches the
float64 reference within testing.sdpa_tol (the same bound as our tensor-core kernel: P is rounded to the
dtype before P·V): awkward sizes, GQA and MQA, causal with Sq < Skv (diagonal at the end of the keys), head
dims 8..128, single-query decode against 1000-1500 keys, strided [B, S, H, D] views of one packed
projection, out as a strided view; NaN-poisoned out fully written. What it does not take runs our own kernels (path checked): masks, key_lengths, a window,
return_lse, causal with Sq > Skv, float32, head_dim 136, LC_SDPA_CUDNN=0, small shapes under the default
rule (prefill below 256, decode reading fewer than 2^17 k/v rows), and the KV cache's decode (it passes
lengths). A captured graph replays a cuDNN call whose plan was built before the capture; a capture that would
have to build a plan runs our kernel instead. Without a GPU or without cuDNN only the version query runs.
"""
import numpy as np
import pytest

import lightning_core as lc
from conftest import CUDA
from lightning_core.testing import as_host as host
from lightning_core.testing import check_sdpa as check
from lightning_core.testing import ref_sdpa

ml_dtypes = pytest.importorskip("ml_dtypes")
DT = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
CUDNN = CUDA and lc.cudnn_version() > 0
needs_cudnn = pytest.mark.skipif(not CUDNN, reason="needs a CUDA GPU and a loadable cuDNN 9")


def test_cudnn_version():
    v = lc.cudnn_version()
    assert isinstance(v, int) and (v == 0 or v >= 90000), v


@pytest.fixture
def forced(monkeypatch):
    monkeypatch.setenv("LC_SDPA_CUDNN", "1")


def rand(rng, shape, dt):
    return rng.standard_normal(shape).astype(dt)


def run(q, k, v, dtype, **kw):
    """sdpa on CUDA Tensors into a NaN-poisoned out; returns (out on the host, path)."""
    tq, tk, tv = (lc.Tensor(x, device="cuda", dtype=dtype) for x in (q, k, v))
    out = lc.Tensor(np.full(q.shape, np.nan, q.dtype), device="cuda", dtype=dtype)
    lc.scaled_dot_product_attention_into(tq, tk, tv, out, device="cuda", **kw)
    return host(out), lc.last_dispatch()["path"]


CASES = [  # b, h, hkv, sq, skv, d, causal
    (1, 2, 2, 256, 256, 128, False),
    (2, 4, 2, 300, 300, 64, True),
    (1, 4, 1, 129, 1000, 64, True),  # MQA, Sq < Skv: the diagonal at the end of the keys
    (2, 2, 2, 65, 513, 128, False),
    (1, 8, 2, 1000, 1000, 128, True),
    (3, 3, 3, 17, 33, 8, False),
    (1, 2, 1, 63, 63, 72, True),
    (3, 8, 2, 1, 1500, 128, False),  # decode: one query against a long cache
    (2, 4, 4, 1, 1000, 64, True),
]


@needs_cudnn
@pytest.mark.parametrize("dtype", list(DT))
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:6])) + ("c" if c[6] else ""))
def test_matches_reference(rng, forced, dtype, case):
    b, h, hkv, sq, skv, d, causal = case
    dt = DT[dtype]
    q, k, v = rand(rng, (b, h, sq, d), dt), rand(rng, (b, hkv, skv, d), dt), rand(rng, (b, hkv, skv, d), dt)
    out, path = run(q, k, v, dtype, causal=causal)
    assert path == f"cuda_sdpa_cudnn_{'bf16' if dtype == 'bfloat16' else 'f16'}", path
    check(out, ref_sdpa(q, k, v, causal=causal), dt, skv, d)
    scale = 0.3  # a custom scale reaches the by-value operand
    out, _ = run(q, k, v, dtype, causal=causal, scale=scale)
    check(out, ref_sdpa(q, k, v, causal=causal, scale=scale), dt, skv, d)


@needs_cudnn
@pytest.mark.parametrize("dtype", list(DT))
def test_strided_views_in_and_out(rng, forced, dtype):
    """q, k, v as [B, H, S, D] views of a packed [B, S, 3, H, D] projection, out a [B, H, S, D] view of a
    [B, S, H·D] buffer: no copies, the output lands in place."""
    dt = DT[dtype]
    b, s, h, d = 2, 300, 4, 64
    packed = rand(rng, (b, s, 3, h, d), dt)
    tp = lc.Tensor(packed, device="cuda", dtype=dtype)
    st = (s * 3 * h * d, d, 3 * h * d, 1)
    views = [tp.view((b, h, s, d), st, offset=i * h * d) for i in range(3)]
    buf = lc.Tensor(np.full((b, s, h * d), np.nan, dt), device="cuda", dtype=dtype)
    out = buf.view((b, h, s, d), (s * h * d, d, h * d, 1), 0)
    lc.scaled_dot_product_attention_into(*views, out, causal=True, device="cuda")
    assert "cudnn" in lc.last_dispatch()["path"]
    want = ref_sdpa(*(np.ascontiguousarray(packed[:, :, i].transpose(0, 2, 1, 3)) for i in range(3)), causal=True)
    got = host(buf).reshape(b, s, h, d).transpose(0, 2, 1, 3)
    check(np.ascontiguousarray(got), want, dt, s, d)


@needs_cudnn
def test_what_cudnn_does_not_take_runs_our_kernels(rng, forced):
    dt, dtype = DT["bfloat16"], "bfloat16"
    b, h, sq, skv, d = 1, 2, 300, 300, 64
    q, k, v = rand(rng, (b, h, sq, d), dt), rand(rng, (b, h, skv, d), dt), rand(rng, (b, h, skv, d), dt)
    mask = rng.standard_normal((sq, skv)).astype(np.float32)
    for kw, want in (
        (dict(attn_mask=mask), ref_sdpa(q, k, v, attn_mask=mask)),
        (dict(key_lengths=[200]), ref_sdpa(q, k, v, key_lengths=[200])),
        (dict(causal=True, window=64), ref_sdpa(q, k, v, causal=True, window=64)),
    ):
        out, path = run(q, k, v, dtype, **kw)
        assert "cudnn" not in path, (kw, path)
        check(out, want, dt, skv, d)
    tq, tk, tv = (lc.Tensor(x, device="cuda", dtype=dtype) for x in (q, k, v))
    lc.scaled_dot_product_attention(tq, tk, tv, return_lse=True, device="cuda")
    assert "cudnn" not in lc.last_dispatch()["path"]
    qq = rand(rng, (b, h, 400, d), dt)  # causal with Sq > Skv: rows without a key
    out, path = run(qq, k, v, dtype, causal=True)
    assert "cudnn" not in path
    check(out, ref_sdpa(qq, k, v, causal=True), dt, skv, d)
    q32, k32, v32 = (x.astype(np.float32) for x in (q, k, v))
    _, path = run(q32, k32, v32, "float32")
    assert "cudnn" not in path
    q136, k136, v136 = (rand(rng, (1, 1, 300, 136), dt) for _ in range(3))
    _, path = run(q136, k136, v136, dtype)
    assert "cudnn" not in path


@needs_cudnn
def test_env_switch_and_default_rule(rng, monkeypatch):
    dt, dtype = DT["float16"], "float16"
    big = [rand(rng, (1, 2, 256, 64), dt) for _ in range(3)]
    small = [rand(rng, (1, 2, 100, 64), dt) for _ in range(3)]
    monkeypatch.delenv("LC_SDPA_CUDNN", raising=False)
    assert "cudnn" in run(*big, dtype)[1]
    assert "cudnn" not in run(*small, dtype)[1]  # below the default rule's size
    dec = [rand(rng, (2, 16, 1, 128), dt)] + [rand(rng, (2, 8, 8192, 128), dt) for _ in range(2)]
    assert "cudnn" in run(*dec, dtype)[1]  # single-query decode reading 2 x 8 x 8192 = 2^17 k/v rows
    assert "cudnn" not in run(dec[0], dec[1][:, :, :8000], dec[2][:, :, :8000], dtype)[1]  # fewer: ours
    cache = lc.KVCache(2, 8, 8192, 128, dtype=dtype, device="cuda")  # the cache's decode: lengths, our kernels
    cache.append(lc.Tensor(dec[1], device="cuda", dtype=dtype), lc.Tensor(dec[2], device="cuda", dtype=dtype))
    cache.attention(lc.Tensor(dec[0], device="cuda", dtype=dtype))
    assert "cudnn" not in lc.last_dispatch()["path"]
    monkeypatch.setenv("LC_SDPA_CUDNN", "0")
    out, path = run(*big, dtype)
    assert "cudnn" not in path
    check(out, ref_sdpa(*big), dt, 256, 64)


@needs_cudnn
def test_capture_replays_a_built_plan(rng, forced):
    dt, dtype = DT["bfloat16"], "bfloat16"
    q, k, v = (rand(rng, (1, 4, 320, 64), dt) for _ in range(3))
    tq, tk, tv = (lc.Tensor(x, device="cuda", dtype=dtype) for x in (q, k, v))
    out = lc.Tensor(np.full(q.shape, np.nan, dt), device="cuda", dtype=dtype)
    lc.scaled_dot_product_attention_into(tq, tk, tv, out, causal=True, device="cuda")  # builds the plan
    assert "cudnn" in lc.last_dispatch()["path"]
    g = lc.capture_graph(lambda: lc.scaled_dot_product_attention_into(tq, tk, tv, out, causal=True, device="cuda"))
    assert "cudnn" in lc.last_dispatch()["path"]
    for _ in range(2):  # new contents each replay
        q2, k2, v2 = (rand(rng, q.shape, dt) for _ in range(3))
        for t, a in ((tq, q2), (tk, k2), (tv, v2)):
            t.copy_from(a)
        out.copy_from(np.full(q.shape, np.nan, dt))
        g.replay()
        check(host(out), ref_sdpa(q2, k2, v2, causal=True), dt, 320, 64)
    # a shape without a plan inside a capture: our kernel is captured instead (no build during a capture)
    q3 = rand(rng, (1, 4, 352, 64), dt)
    tq3 = lc.Tensor(q3, device="cuda", dtype=dtype)
    out3 = lc.Tensor(np.full(q3.shape, np.nan, dt), device="cuda", dtype=dtype)
    g3 = lc.capture_graph(lambda: lc.scaled_dot_product_attention_into(tq3, tk, tv, out3, device="cuda"))
    assert "cudnn" not in lc.last_dispatch()["path"]
    g3.replay()
    check(host(out3), ref_sdpa(q3, k2, v2), dt, 320, 64)


@needs_cudnn
@pytest.mark.parametrize("dtype", list(DT))
@pytest.mark.parametrize("forced_env", ["1", None])
def test_kv_cache_prefill(rng, monkeypatch, dtype, forced_env):
    """The KV cache's prefill (attention_into with k_new/v_new of T >= 256 tokens: cuDNN by the default
    rule too) appends first, then attends with the cache's device lengths as cuDNN's padding mask and the
    causal diagonal at each sequence's own length: every sequence against its prefix + new tokens in float64;
    the cache holds the new rows bit for bit; a second call continues from the advanced lengths."""
    if forced_env:
        monkeypatch.setenv("LC_SDPA_CUDNN", forced_env)
    else:
        monkeypatch.delenv("LC_SDPA_CUDNN", raising=False)
    dt = DT[dtype]
    b, h, hkv, d, t, max_seq = 3, 8, 2, 64, 300, 1024
    lens = [0, 17, 130]
    cache = lc.KVCache(b, hkv, max_seq, d, dtype=dtype, device="cuda")
    kp, vp = rand(rng, (b, hkv, max(lens), d), dt), rand(rng, (b, hkv, max(lens), d), dt)
    cache.append(lc.Tensor(kp, device="cuda", dtype=dtype), lc.Tensor(vp, device="cuda", dtype=dtype))
    cache.set_lengths(lens)
    for step in range(2):
        q, k, v = rand(rng, (b, h, t, d), dt), rand(rng, (b, hkv, t, d), dt), rand(rng, (b, hkv, t, d), dt)
        out = lc.Tensor(np.full(q.shape, np.nan, dt), device="cuda", dtype=dtype)
        tq, tk, tv = (lc.Tensor(x, device="cuda", dtype=dtype) for x in (q, k, v))
        cache.attention_into(tq, out, causal=True, k_new=tk, v_new=tv)
        assert "cudnn" in lc.last_dispatch()["path"], lc.last_dispatch()["path"]
        kk, vv, L = host(cache.k), host(cache.v), cache.lengths
        assert list(L) == [n + t * (step + 1) for n in lens]
        got = host(out)
        for i in range(b):
            n0 = L[i] - t
            assert np.array_equal(kk[i, :, n0:L[i]].view(np.uint16), k[i].view(np.uint16))
            assert np.array_equal(vv[i, :, n0:L[i]].view(np.uint16), v[i].view(np.uint16))
            want = ref_sdpa(q[i:i + 1], kk[i:i + 1, :, :L[i]], vv[i:i + 1, :, :L[i]], causal=True)
            check(got[i:i + 1], want, dt, int(L[i]), d)


@needs_cudnn
@pytest.mark.parametrize("rank", [3, 2])
def test_rank3_and_rank2_inputs(rng, forced, rank):
    """[H, S, D] and [S, D] inputs (their batch, and head, axes have stride 0 in lc_sdpa's arguments) reach
    cuDNN with dense strides for those extent-1 axes."""
    dt, dtype = DT["bfloat16"], "bfloat16"
    shape = (4, 300, 64) if rank == 3 else (300, 64)
    q, k, v = (rand(rng, shape, dt) for _ in range(3))
    out, path = run(q, k, v, dtype, causal=True)
    assert "cudnn" in path, path
    check(out, ref_sdpa(q, k, v, causal=True), dt, 300, 64)
