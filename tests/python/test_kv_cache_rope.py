"""KVCache.attention(q, ..., k_new=, v_new=, positions=, rope_theta=, rotary_dim=, rope_scaling=) (docs/python_api.md):
the rotary embedding of q and k_new fused into the cache's append + attention call.

Semantics: exactly lc.rope(q, positions), lc.rope(k_new, positions), then the call without positions. Checked
against that composition on a twin cache, bit for bit (on CUDA the tensor-core decode rotates q and the new keys
with the rope op's own rotation, rope.cuh, so the bits agree; elsewhere the call runs that composition), the cache
contents after the call (the rotated keys) included; against float64: the new cache rows against ref_rope of
k_new (test_ops_llm's rope bound: the rounding, 2u; float32 2e-6), the output against ref_sdpa of the rotated q and the cached keys
(testing.sdpa_tol). Per dtype (float32, float16, bfloat16) and device (cpu; cuda skipped without a GPU), with GQA,
sequences of different lengths, q / k / v as strided views of one packed qkv buffer (what the model runner
passes), positions int32 / int64, [batch, t] / [t], large positions, partial rotary_dim, linear / llama3 scaling.
On CUDA: the path taken (cuda_sdpa_decode_mma_rope_append_* where it fuses: 16-bit, t <= 16, head_dim padded to
64 or 128, rotary_dim a multiple of 16; the rope op first otherwise), and one fused step captured by
lc.capture_graph, replayed with the positions in a device tensor. Bad calls: ValueError / TypeError naming the
argument, nothing appended.
"""

import numpy as np
import pytest

import lightning_core as lc
from conftest import replay_step, requires_cuda
from lightning_core.testing import as_host as host
from lightning_core.testing import check_sdpa as check
from lightning_core.testing import ref_rope, ref_sdpa, unit_roundoff
from lightning_core.testing.refs import rel_err
from kv_helpers import DT, bits_equal, decode_rig, lean_applies, packed_qkv, twin_caches

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}


def rope_tol(dtype):
    """test_ops_llm's rope bound: float32 keeps the float32 sine / cosine's error (2e-6); 16-bit: the rounding."""
    return 2e-6 if dtype == "float32" else 2 * unit_roundoff(dtype)


def dp_of(d):
    return 32 if d <= 32 else 64 if d <= 64 else 128 if d <= 128 else 256


def rope_fuses(device, dtype, d, t, rd):
    return (device == "cuda" and dtype != "float32" and d % 8 == 0 and t <= 16 and dp_of(d) in (64, 128)
            and rd % 16 == 0)


# (B, H, Hkv, D, prefill lengths, new tokens T, max_seq, rotary_dim, scaling, theta, positions form)
CASES = [
    (1, 32, 4, 64, [7], 1, 32, None, None, 10000.0, "next"),            # the LLaMA 1.1B decode shape
    (2, 8, 2, 128, [5, 11], 1, 40, None, LLAMA3, 500000.0, "next"),     # LLaMA-3 style
    (2, 4, 2, 64, [3, 0], 4, 24, 32, {"rope_type": "linear", "factor": 2.0}, 10000.0, "i32"),
    (1, 4, 1, 40, [6], 1, 16, 32, None, 10000.0, "large"),               # head_dim 40 (padded to 64), partial
    (2, 4, 2, 64, [9, 2], 16, 48, None, None, 10000.0, "shared"),        # 16 tokens, positions [t]
    (1, 4, 2, 64, [3], 17, 48, None, None, 10000.0, "next"),             # 17 rows: the prefill path, rope first
    (1, 4, 2, 256, [3], 1, 16, None, None, 10000.0, "next"),             # head_dim 256: rope first
    (1, 4, 2, 64, [3], 1, 16, 24, None, 10000.0, "next"),                # rotary_dim 24: rope first
]


def positions_for(rng, form, lens, t, step):
    if form == "next":  # each sequence's next positions (what a decode step passes), int64 [B, T]
        return np.array([[L + step * t + i for i in range(t)] for L in lens], np.int64)
    if form == "i32":
        return np.array([[L + step * t + i for i in range(t)] for L in lens], np.int32)
    if form == "shared":  # one row for every sequence, int64 [T]
        return np.arange(step * t, step * t + t, dtype=np.int64) + 100
    return rng.integers(0, 2_000_000, size=(len(lens), t)).astype(np.int64)  # large, any order


@pytest.mark.parametrize("dtype", list(DT))
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"B{c[0]}H{c[1]}kv{c[2]}D{c[3]}T{c[5]}rd{c[7]}{c[10]}")
def test_rope_fused_equals_rope_then_call(rng, device, dtype, case):
    _rope_case(rng, device, dtype, case)


@requires_cuda
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"B{c[0]}H{c[1]}kv{c[2]}D{c[3]}T{c[5]}rd{c[7]}{c[10]}")
@pytest.mark.parametrize("form", ["head", "kv"])
def test_rope_fused_lean(rng, dtype, case, form, monkeypatch):
    """The same under the short-path decode (LC_SDPA_DECODE_LEAN: one query row, head_dim 64, full rotary_dim; the
    other cases keep their paths), a block a head and a block a kv head (LC_SDPA_DECODE_LEAN_KV=1)."""
    monkeypatch.setenv("LC_SDPA_DECODE_LEAN", "4096")
    monkeypatch.setenv("LC_SDPA_DECODE_LEAN_KV", "1" if form == "kv" else "0")
    _rope_case(rng, "cuda", dtype, case)


def _rope_case(rng, device, dtype, case):
    b, h, hkv, d, lens, t, max_seq, rd, scaling, theta, form = case
    dt, rdim = DT[dtype], d if rd is None else rd
    fused, twin = twin_caches(rng, b, hkv, d, lens, max_seq, dtype, device)
    for step in range(2):
        (q, k, v), (hq, hk, hv), _ = packed_qkv(rng, b, h, hkv, t, d, dtype, device)
        pos = positions_for(rng, form, lens, t, step)
        out = lc.Tensor(np.full((b, h, t, d), np.nan, dt), device=device, dtype=dtype)
        before = fused.lengths
        fused.attention_into(q, out, causal=True, k_new=k, v_new=v, positions=pos, rope_theta=theta, rotary_dim=rd,
                             rope_scaling=scaling)
        path = lc.last_dispatch()["path"]
        if device == "cuda":  # the tensor-core decode's rope form, or the short path's (LC_SDPA_DECODE_LEAN)
            assert ("rope_append" in path) == rope_fuses(device, dtype, d, t, rdim), path
            # (a rope the attention cannot take runs first: the attention then has none, as if full-width)
            rd_seen = rdim if rope_fuses(device, dtype, d, t, rdim) else d
            assert ("decode_lean" in path) == (dtype != "float32" and lean_applies(d, t, h // hkv, rd_seen, max_seq)), path
        rq = lc.rope(q, pos, theta, rd, scaling, device)
        rk = lc.rope(k, pos, theta, rd, scaling, device)
        want_out = twin.attention(rq, causal=True, k_new=rk, v_new=v)
        assert bits_equal(out, want_out), f"step {step}: fused differs from rope + append + attention ({path})"
        L = fused.lengths
        assert np.array_equal(L, twin.lengths) and np.array_equal(L, before + t)
        kk, vv, k2 = host(fused.k), host(fused.v), host(twin.k)
        want_k = ref_rope(np.ascontiguousarray(hk), pos, theta, rd, scaling)  # float64 [B, Hkv, T, D]
        for i in range(b):
            assert bits_equal(kk[i, :, :L[i]], k2[i, :, :L[i]])
            new = kk[i, :, L[i] - t:L[i]]
            assert rel_err(new, want_k[i]) <= rope_tol(dtype), f"cached rotated keys of sequence {i}"
            assert bits_equal(vv[i, :, L[i] - t:L[i]], np.ascontiguousarray(hv[i]))
        # against float64: the rotated q as the rope op stores it, each sequence's cached keys
        hrq = host(rq)
        want = np.stack([ref_sdpa(hrq[i:i + 1], kk[i:i + 1, :, :L[i]], vv[i:i + 1, :, :L[i]], causal=True)[0]
                         for i in range(b)])
        check(out, want, dt, int(L.max()), d)
        assert rel_err(hrq, ref_rope(hq, pos, theta, rd, scaling)) <= rope_tol(dtype)


def test_rope_fused_bad_calls_append_nothing(rng, device):
    b, h, hkv, d, t = 2, 4, 2, 64, 1
    cache = lc.KVCache(b, hkv, 16, d, dtype="float32", device=device)
    (q, k, v), _, _ = packed_qkv(rng, b, h, hkv, t, d, "float32", device)
    good = np.zeros((b, t), np.int64)
    bad = [
        (dict(k_new=k, v_new=v, positions=np.zeros((b, t + 1), np.int64)), ValueError, "positions"),
        (dict(k_new=k, v_new=v, positions=np.zeros((3, t), np.int64)), ValueError, "positions"),
        (dict(k_new=k, v_new=v, positions=np.zeros((b, t), np.float64)), TypeError, "positions"),
        (dict(k_new=k, v_new=v, positions=good, rotary_dim=3), ValueError, "rotary_dim"),
        (dict(k_new=k, v_new=v, positions=good, rotary_dim=2 * d), ValueError, "rotary_dim"),
        (dict(k_new=k, v_new=v, positions=good, rope_theta=-1.0), ValueError, "rope_theta"),
        (dict(k_new=k, v_new=v, positions=good, rope_scaling={"rope_type": "yarn"}), ValueError, "rope_scaling"),
        (dict(k_new=k, v_new=v, positions=good, rope_scaling={"rope_type": "linear"}), ValueError, "factor"),
        (dict(positions=good), ValueError, "positions"),
        (dict(k_new=k, v_new=v, rotary_dim=16), ValueError, "positions"),
    ]
    for kw, exc, name in bad:
        with pytest.raises(exc, match=name):
            cache.attention(q, **kw)
        assert np.all(cache.lengths == 0), kw
    (q2, _, _), _, _ = packed_qkv(rng, b, h, hkv, 2, d, "float32", device)  # q of 2 tokens, k_new of 1
    with pytest.raises(ValueError, match="q"):
        cache.attention(q2, k_new=k, v_new=v, positions=good)
    assert np.all(cache.lengths == 0)
    cache.attention(q, k_new=k, v_new=v, positions=good)  # still usable
    assert np.all(cache.lengths == 1)


@requires_cuda
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("prefill,b", [(0, 1), (5, 3), (1500, 2)])
def test_rope_fused_captured_decode_step_replays(rng, dtype, prefill, b):
    """One fused step (attention_into with k_new / v_new / positions in device tensors) captured once, replayed
    step by step: each replay equals the eager rope + append + attention of the same step bit for bit. A prefill
    of 1500 keys makes the plan split the keys over blocks (the fresh keys in the last live split)."""
    h, hkv, d, steps, theta = 8, 2, 64, 6, 10000.0
    max_seq = prefill + steps + 1
    n = prefill + steps
    (q, k, v), (cache, eager), (kt, vt, qt, ot) = decode_rig(rng, b, h, hkv, d, prefill, n, max_seq, dtype)
    pt = lc.Tensor(np.zeros((b, 1), np.int32), device="cuda", dtype="int32")
    graph = lc.capture_graph(lambda: cache.attention_into(qt, ot, causal=True, k_new=kt, v_new=vt, positions=pt,
                                                          rope_theta=theta))
    assert np.all(cache.lengths == prefill), "capturing must not run the append"
    for t in range(prefill, n):
        pos = (np.arange(b, dtype=np.int32)[:, None] * 7 + t).astype(np.int32)
        got = replay_step(graph, [(kt, k[:, :, t:t + 1]), (vt, v[:, :, t:t + 1]), (qt, q[:, :, t:t + 1]), (pt, pos)], ot)
        assert np.all(cache.lengths == t + 1)
        want = eager.attention(lc.rope(q[:, :, t:t + 1], pos, theta, device="cuda"), causal=True,
                               k_new=lc.rope(k[:, :, t:t + 1], pos, theta, device="cuda"), v_new=v[:, :, t:t + 1])
        assert bits_equal(got, want), f"step {t}"
    L = cache.lengths
    kk, ke = host(cache.k), host(eager.k)
    assert all(bits_equal(kk[i, :, :L[i]], ke[i, :, :L[i]]) for i in range(b))
    graph.release()
