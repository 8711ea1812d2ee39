"""KVCache.attention(q, ..., k_new=, v_new=) (docs/python_api.md): the append fused into the attention call.

Semantics: exactly cache.append(k_new, v_new) followed by cache.attention(q, ...). Checked against that pair
on a twin cache, bit for bit (the same kernels' arithmetic on the same values: on CUDA the fused tensor-core
decode reads this step's keys from k_new / v_new instead of the cache, in the same order), and against the
float64 reference ref_sdpa (tolerance testing.sdpa_tol); the cache contents and lengths after the call equal
the twin's. Per dtype (float32, float16, bfloat16) and device (cpu; cuda skipped without a GPU), with GQA/MQA,
prompts of different lengths (set_lengths), a sliding window, k_new / v_new as strided views of one packed
qkv buffer (what the model runner passes), 1..16 new tokens. On CUDA: the path taken
(cuda_sdpa_decode_mma_append_* where the tensor-core decode fuses, another otherwise: float32, head_dim not
a multiple of 8, more than 16 query rows, LC_KV_FUSE=0), one fused decode step captured by lc.capture_graph
and replayed step by step (long prefill: the split-KV plan with its counters, several sequences), past
max_seq (overflow flag, lengths clamped). Bad calls: only one of k_new / v_new, a wrong k_new shape, a q of
another dtype, too many tokens, a wrong out: ValueError / TypeError naming the argument, nothing appended.
"""

import os

import numpy as np
import pytest

import lightning_core as lc
from conftest import replay_step, requires_cuda
from lightning_core.testing import as_host as host
from lightning_core.testing import check_sdpa as check
from lightning_core.testing import ref_sdpa
from kv_helpers import DT, bits_equal, decode_rig, lean_applies, packed_qkv, rand, same_contents, twin_caches

DTYPES = list(DT)


# (B, H, Hkv, D, prefill lengths per sequence, new tokens T, max_seq, window)
CASES = [
    (1, 4, 4, 64, [7], 1, 32, None),
    (2, 8, 2, 64, [5, 11], 1, 40, None),
    (2, 6, 1, 128, [0, 3], 2, 24, None),
    (3, 8, 2, 32, [20, 1, 9], 5, 48, 6),
    (1, 32, 4, 64, [300], 1, 512, None),
    (2, 8, 2, 64, [190, 127], 1, 2048, None),  # splits of 2 tiles (the new row in a split's first / second tile)
    (2, 4, 2, 64, [9, 2], 16, 48, None),
    (2, 4, 2, 36, [6, 4], 1, 16, None),  # head_dim 36: not the tensor-core decode, never fused
    (1, 4, 2, 64, [3], 17, 48, None),    # 17 query rows: the prefill path, never fused
]


def fuses(device, dtype, d, t):
    return device == "cuda" and dtype != "float32" and d % 8 == 0 and t <= 16 and os.environ.get("LC_KV_FUSE") != "0"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"B{c[0]}H{c[1]}kv{c[2]}D{c[3]}T{c[5]}")
def test_fused_equals_append_then_attention(rng, device, dtype, case):
    _fused_vs_twin(rng, device, dtype, case)


# The tensor-core decode's A/B knobs (read at each call): one block for a key range of at most N tiles instead of
# splits and a merge (LC_SDPA_DECODE_DIRECT; default 2; 0: only when one split holds them all, 64: every case
# here), the append's count awaited where it is taken (LC_SDPA_DECODE_COUNT=now) instead of at the block's end
# (those three with LC_SDPA_DECODE_LEAN=0: the short path is the default for caches of at most 256 keys), the
# short-path decode for caches of at most N keys (LC_SDPA_DECODE_LEAN=N; head_dim 64, one new token, GQA group <= 8;
# a block a head, or with LC_SDPA_DECODE_LEAN_KV=1 a block a kv head; with LC_KV_FUSE=0: the append kernel, then the
# short path unfused).
# Each form: fused equals append + attention bit for bit, the float64 reference within tolerance, the new rows in
# the caches.
TC = {"LC_SDPA_DECODE_LEAN": "0"}
KNOBS = [{"LC_SDPA_DECODE_DIRECT": "0", **TC}, {"LC_SDPA_DECODE_DIRECT": "64", **TC},
         {"LC_SDPA_DECODE_DIRECT": "0", "LC_SDPA_DECODE_COUNT": "now", **TC},
         {"LC_SDPA_DECODE_LEAN": "4096"}, {"LC_SDPA_DECODE_LEAN": "4096", "LC_SDPA_DECODE_LEAN_KV": "1"},
         {"LC_SDPA_DECODE_LEAN": "4096", "LC_KV_FUSE": "0"}]


@requires_cuda
@pytest.mark.parametrize("knobs", KNOBS, ids=lambda k: ",".join(f"{n[15:]}={v}" for n, v in k.items()))
@pytest.mark.parametrize("case", [c for c in CASES if c[3] % 8 == 0 and c[5] <= 16],
                         ids=lambda c: f"B{c[0]}H{c[1]}kv{c[2]}D{c[3]}T{c[5]}")
def test_fused_decode_knobs(rng, case, knobs, monkeypatch):
    for name, value in knobs.items():
        monkeypatch.setenv(name, value)
    _fused_vs_twin(rng, "cuda", "bfloat16", case)


def _fused_vs_twin(rng, device, dtype, case):
    b, h, hkv, d, lens, t, max_seq, window = case
    dt = DT[dtype]
    fused, twin = twin_caches(rng, b, hkv, d, lens, max_seq, dtype, device)
    for step in range(2):
        (q, k, v), (hq, hk, hv), _ = packed_qkv(rng, b, h, hkv, t, d, dtype, device)
        out = lc.Tensor(np.full((b, h, t, d), np.nan, dt), device=device, dtype=dtype)
        fused.attention_into(q, out, causal=True, window=window, k_new=k, v_new=v)
        path = lc.last_dispatch()["path"]
        twin.append(k, v)
        want_out = twin.attention(q, causal=True, window=window)
        assert bits_equal(out, want_out), f"step {step}: fused differs from append + attention ({path})"
        assert same_contents(fused, twin)
        if device == "cuda":  # the tensor-core decode's fused form, or the short path's (LC_SDPA_DECODE_LEAN)
            assert ("_append" in path) == fuses(device, dtype, d, t), path
            assert ("decode_lean" in path) == (dtype != "float32" and lean_applies(d, t, h // hkv, d, max_seq, window)), path
        # against float64: each sequence's keys are its prefix then the new tokens
        kk, vv, L = host(fused.k), host(fused.v), fused.lengths
        want = np.stack([ref_sdpa(hq[i:i + 1], kk[i:i + 1, :, :L[i]], vv[i:i + 1, :, :L[i]], causal=True,
                                  window=window)[0] for i in range(b)])
        check(out, want, dt, int(L.max()), d)
        for i in range(b):  # the new rows landed at each sequence's own length, bit for bit
            assert bits_equal(kk[i, :, L[i] - t:L[i]], np.ascontiguousarray(hk[i]))
            assert bits_equal(vv[i, :, L[i] - t:L[i]], np.ascontiguousarray(hv[i]))


def test_fused_attention_returns_new_tensor(rng, device):
    """cache.attention(q, k_new=, v_new=) allocates out (q's shape, the cache's dtype) like attention()."""
    b, h, hkv, d = 2, 4, 2, 16
    c = lc.KVCache(b, hkv, 8, d, device=device)
    q, k, v = rand(rng, (b, h, 1, d), np.float32), rand(rng, (b, hkv, 1, d), np.float32), rand(rng, (b, hkv, 1, d), np.float32)
    out = c.attention(q, k_new=k, v_new=v)
    assert tuple(host(out).shape) == (b, h, 1, d) and np.all(c.lengths == 1)
    check(out, ref_sdpa(q, k, v, causal=True), np.float32, 1, d)


def test_fused_bad_calls_append_nothing(rng, device):
    b, h, hkv, d, max_seq = 2, 4, 2, 16, 6
    c = lc.KVCache(b, hkv, max_seq, d, device=device)
    c.append(rand(rng, (b, hkv, 3, d), np.float32), rand(rng, (b, hkv, 3, d), np.float32))
    k0, v0 = host(c.k).copy(), host(c.v).copy()  # the whole storage: a refused call writes nowhere
    q = rand(rng, (b, h, 1, d), np.float32)
    k, v = rand(rng, (b, hkv, 1, d), np.float32), rand(rng, (b, hkv, 1, d), np.float32)
    with pytest.raises(ValueError, match="v_new.*both or neither"):
        c.attention(q, k_new=k)
    with pytest.raises(ValueError, match="k_new.*both or neither"):
        c.attention(q, v_new=v)
    with pytest.raises(ValueError, match="k_new"):
        c.attention(q, k_new=rand(rng, (b, hkv + 1, 1, d), np.float32), v_new=v)
    with pytest.raises(ValueError, match="v_new"):
        c.attention(q, k_new=k, v_new=rand(rng, (b, hkv, 2, d), np.float32))
    with pytest.raises(TypeError, match="k_new"):
        c.attention(q, k_new=k.astype(np.float16), v_new=v)
    with pytest.raises(TypeError, match="q"):
        c.attention(q.astype(np.float16), k_new=k, v_new=v)
    with pytest.raises(ValueError, match="k_new.*at most 3 more tokens"):
        c.attention(rand(rng, (b, h, 4, d), np.float32), k_new=rand(rng, (b, hkv, 4, d), np.float32),
                    v_new=rand(rng, (b, hkv, 4, d), np.float32))
    bad_out = lc.Tensor(np.zeros((b, h, 2, d), np.float32), device=device)
    with pytest.raises(ValueError, match="out"):
        c.attention_into(q, bad_out, k_new=k, v_new=v)
    assert np.all(c.lengths == 3)
    assert bits_equal(c.k, k0) and bits_equal(c.v, v0), "a refused call wrote into the cache"
    # and the cache still works
    out = c.attention(q, k_new=k, v_new=v)
    assert np.all(c.lengths == 4)
    kk, vv = host(c.k)[:, :, :4], host(c.v)[:, :, :4]
    check(out, ref_sdpa(q, kk, vv, causal=True), np.float32, 4, d)


# ---- CUDA: the fused kernel, graph replay ------------------------------------------------------------


@requires_cuda
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_kv_fuse_off_runs_the_append_kernel(rng, dtype, monkeypatch):
    """LC_KV_FUSE=0 (read at each call): the append kernel, then the plain tensor-core decode; same bits."""
    monkeypatch.setenv("LC_SDPA_DECODE_LEAN", "0")  # the tensor-core decode, not the short path
    dt = DT[dtype]
    b, h, hkv, d = 2, 8, 2, 64
    outs, paths, caches = [], [], []
    (q, k, v), _, _ = packed_qkv(rng, b, h, hkv, 1, d, dtype, "cuda")
    kp, vp = rand(rng, (b, hkv, 10, d), dt), rand(rng, (b, hkv, 10, d), dt)  # the rows set_lengths exposes
    for env in (None, "0"):
        if env is None:
            monkeypatch.delenv("LC_KV_FUSE", raising=False)
        else:
            monkeypatch.setenv("LC_KV_FUSE", env)
        c = lc.KVCache(b, hkv, 64, d, dtype=dtype, device="cuda")
        c.append(kp, vp)
        c.set_lengths([10, 3])
        outs.append(c.attention(q, k_new=k, v_new=v))
        paths.append(lc.last_dispatch()["path"])
        caches.append(c)
    assert "decode_mma_append" in paths[0] and "decode_mma" in paths[1] and "append" not in paths[1], paths
    assert bits_equal(outs[0], outs[1])
    assert same_contents(caches[0], caches[1])


@requires_cuda
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("prefill,window,b", [(0, None, 1), (5, None, 3), (1500, None, 2), (1500, 700, 2)])
def test_fused_captured_decode_step_replays(rng, dtype, prefill, window, b):
    """One fused decode step (attention_into with k_new / v_new) captured once, replayed step by step: each
    replay equals the eager append + attention of the same step bit for bit and the float64 reference; past
    max_seq the replays clamp the lengths and raise the overflow flag. A prefill of 1500 keys makes the plan
    split the keys over blocks (the fold and the per-sequence counters of several sequences)."""
    dt = DT[dtype]
    h, hkv, d, steps = 8, 2, 64, 12
    max_seq = prefill + steps + 2
    n = prefill + steps
    (q, k, v), (cache, eager), (kt, vt, qt, ot) = decode_rig(rng, b, h, hkv, d, prefill, n, max_seq, dtype)
    graph = lc.capture_graph(lambda: cache.attention_into(qt, ot, causal=True, window=window, k_new=kt, v_new=vt))
    assert np.all(cache.lengths == prefill), "capturing must not run the append"
    for t in range(prefill, n):
        got = replay_step(graph, [(kt, k[:, :, t:t + 1]), (vt, v[:, :, t:t + 1]), (qt, q[:, :, t:t + 1])], ot)
        assert np.all(cache.lengths == t + 1)
        eager.append(k[:, :, t:t + 1], v[:, :, t:t + 1])
        assert bits_equal(got, eager.attention(q[:, :, t:t + 1], causal=True, window=window)), f"step {t}"
        if t % 4 == 0 or t == n - 1:
            check(got, ref_sdpa(q[:, :, t:t + 1], k[:, :, :t + 1], v[:, :, :t + 1], causal=True, window=window),
                  dt, t + 1, d)
    assert same_contents(cache, eager)
    assert not cache.overflowed
    for _ in range(max_seq - n + 1):
        graph.replay()
    lc.synchronize("cuda")
    assert cache.overflowed and np.all(cache.lengths == max_seq)
    graph.release()
