"""lc.KVCache (issue 15; docs/python_api.md): k/v stored in place [B, Hkv, max_seq, D], append at each
sequence's current length, attention of new queries against what the cache holds.

Against the float64 reference lightning_core.testing.ref_sdpa (tolerance testing.sdpa_tol), per dtype
(float32, float16, bfloat16) and device (cpu; cuda skipped without a GPU): token-by-token append + attention
equals full causal attention (GQA and MQA query heads), chunked prefill then decode, attention_into with a
NaN-poisoned out, causal=False, cache.attention equal to scaled_dot_product_attention over the storage views
with key_lengths=cache.lengths, lengths / reset / k / v / attributes, Tensor inputs, overflow (ValueError
naming k_new, nothing written), bad dtypes / shapes (TypeError / ValueError naming the argument), and on
CUDA one decode step (append + attention_into) captured with lc.capture_graph and replayed step by step
equal to the eager result, past max_seq setting cache.overflowed. Sliding window (window=W): token by token
and chunked equal full causal windowed attention, bad values, and a captured windowed decode step replayed
past the window.
"""
import numpy as np
import pytest

import lightning_core as lc
from conftest import replay_step, requires_cuda
from lightning_core.testing import as_host as host
from lightning_core.testing import check_sdpa as check
from lightning_core.testing import ref_sdpa, rel_err, sdpa_tol

ml_dtypes = pytest.importorskip("ml_dtypes")
DT = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
DTYPES = list(DT)


def rand(rng, shape, dt):
    return rng.standard_normal(shape).astype(dt)






def seqs(rng, b, h, hkv, s, d, dt):
    return rand(rng, (b, h, s, d), dt), rand(rng, (b, hkv, s, d), dt), rand(rng, (b, hkv, s, d), dt)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h,hkv", [(4, 4), (8, 2), (6, 1)])  # MHA, GQA, MQA
def test_token_by_token_equals_full_causal(rng, device, dtype, h, hkv):
    dt = DT[dtype]
    b, s, d, max_seq = 2, 13, 24, 20
    q, k, v = seqs(rng, b, h, hkv, s, d, dt)
    cache = lc.KVCache(b, hkv, max_seq, d, dtype=dtype, device=device)
    assert (cache.batch, cache.kv_heads, cache.max_seq, cache.head_dim) == (b, hkv, max_seq, d)
    assert cache.dtype == dtype and cache.device == device
    assert np.array_equal(cache.lengths, np.zeros(b, np.int64))
    rows = []
    for t in range(s):
        cache.append(k[:, :, t:t + 1], v[:, :, t:t + 1])
        lens = cache.lengths
        assert lens.dtype == np.int64 and lens.shape == (b,) and np.all(lens == t + 1)
        out = cache.attention(q[:, :, t:t + 1], causal=True)
        assert tuple(host(out).shape) == (b, h, 1, d)
        rows.append(host(out))
    got = np.concatenate(rows, axis=2)
    check(got, ref_sdpa(q, k, v, causal=True), dt, s, d)
    # the stored keys/values are the appended ones, bit for bit (no rounding on the way in)
    kk, vv = host(cache.k), host(cache.v)
    assert kk.shape == (b, hkv, max_seq, d) and vv.shape == (b, hkv, max_seq, d)
    assert np.array_equal(kk[:, :, :s].view(np.uint8), k.view(np.uint8))
    assert np.array_equal(vv[:, :, :s].view(np.uint8), v.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_chunked_prefill_then_decode(rng, device, dtype):
    dt = DT[dtype]
    b, h, hkv, d, max_seq = 3, 4, 2, 16, 40
    chunks = [9, 7, 1, 1, 5, 1]
    s = sum(chunks)
    q, k, v = seqs(rng, b, h, hkv, s, d, dt)
    full = ref_sdpa(q, k, v, causal=True)
    cache = lc.KVCache(b, hkv, max_seq, d, dtype=dtype, device=device)
    pos = 0
    for t in chunks:
        cache.append(k[:, :, pos:pos + t], v[:, :, pos:pos + t])
        out = np.full((b, h, t, d), np.nan, dt)
        assert cache.attention_into(q[:, :, pos:pos + t], out, causal=True) is out
        pos += t
        check(out, full[:, :, pos - t:pos], dt, pos, d)
        # the cache's attention is sdpa over its storage with key_lengths = its lengths
        same = lc.scaled_dot_product_attention(q[:, :, pos - t:pos], cache.k, cache.v, causal=True,
                                               key_lengths=cache.lengths, device=device)
        check(same, full[:, :, pos - t:pos], dt, pos, d)
    # causal=False: every query sees every key held
    out = cache.attention(q[:, :, :4], causal=False)
    check(out, ref_sdpa(q[:, :, :4], k, v), dt, s, d)
    # a custom scale
    out = cache.attention(q[:, :, -2:], causal=True, scale=0.25)
    check(out, ref_sdpa(q[:, :, -2:], k, v, causal=True, scale=0.25), dt, s, d)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reset_and_reuse(rng, device, dtype):
    dt = DT[dtype]
    b, h, hkv, d = 2, 2, 1, 8
    cache = lc.KVCache(b, hkv, 16, d, dtype=dtype, device=device)
    q, k, v = seqs(rng, b, h, hkv, 10, d, dt)
    ptr = (cache.k.data_ptr, cache.v.data_ptr)
    cache.append(k, v)
    assert np.all(cache.lengths == 10)
    cache.reset()
    assert np.array_equal(cache.lengths, np.zeros(b, np.int64))
    q2, k2, v2 = seqs(rng, b, h, hkv, 5, d, dt)
    cache.append(k2, v2)  # written from position 0 again; the old keys are not seen
    assert np.all(cache.lengths == 5)
    check(cache.attention(q2, causal=True), ref_sdpa(q2, k2, v2, causal=True), dt, 5, d)
    assert np.array_equal(host(cache.k)[:, :, :5].view(np.uint8), k2.view(np.uint8))
    assert (cache.k.data_ptr, cache.v.data_ptr) == ptr, "the storage moved"


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_inputs(rng, device, dtype):
    dt = DT[dtype]
    b, h, hkv, d, s = 2, 4, 2, 16, 6
    q, k, v = seqs(rng, b, h, hkv, s, d, dt)
    cache = lc.KVCache(b, hkv, 8, d, dtype=dtype, device=device)
    tk, tv, tq = (lc.Tensor(x, device=device, dtype=dtype) for x in (k, v, q))
    cache.append(tk, tv)
    out = lc.Tensor(np.full(q.shape, np.nan, dt), device=device, dtype=dtype)
    assert cache.attention_into(tq, out, causal=True) is out
    check(out, ref_sdpa(q, k, v, causal=True), dt, s, d)
    res = cache.attention(tq, causal=True)
    assert isinstance(res, (lc.Tensor, lc.TensorView)) and res.device == device
    check(res, ref_sdpa(q, k, v, causal=True), dt, s, d)
    assert cache.k.device == device and cache.v.dtype == dtype


def test_overflow_writes_nothing(rng, device):
    b, hkv, d, max_seq = 2, 2, 8, 6
    cache = lc.KVCache(b, hkv, max_seq, d, device=device)
    k, v = rand(rng, (b, hkv, 4, d), np.float32), rand(rng, (b, hkv, 4, d), np.float32)
    cache.append(k, v)
    before_k, before_v = host(cache.k).copy(), host(cache.v).copy()
    k3, v3 = np.full((b, hkv, 3, d), np.nan, np.float32), np.full((b, hkv, 3, d), np.nan, np.float32)
    with pytest.raises(ValueError, match="k_new"):
        cache.append(k3, v3)  # 4 + 3 > 6
    assert np.all(cache.lengths == 4)
    assert np.array_equal(host(cache.k), before_k, equal_nan=True)
    assert np.array_equal(host(cache.v), before_v, equal_nan=True)
    cache.append(k[:, :, :2], v[:, :, :2])  # exactly full is fine
    assert np.all(cache.lengths == max_seq)
    with pytest.raises(ValueError, match="k_new"):
        cache.append(k[:, :, :1], v[:, :, :1])
    assert np.all(cache.lengths == max_seq)
    q = rand(rng, (b, 4, 1, d), np.float32)
    kk = np.concatenate([k, k[:, :, :2]], axis=2)
    vv = np.concatenate([v, v[:, :, :2]], axis=2)
    check(cache.attention(q, causal=True), ref_sdpa(q, kk, vv, causal=True), np.float32, max_seq, d)


def test_bad_inputs_name_the_argument(rng):
    b, hkv, d = 2, 2, 8
    cache = lc.KVCache(b, hkv, 8, d, dtype="float32")
    k, v = rand(rng, (b, hkv, 2, d), np.float32), rand(rng, (b, hkv, 2, d), np.float32)
    with pytest.raises(TypeError, match="k_new"):
        cache.append(k.astype(np.float16), v)
    with pytest.raises(TypeError, match="v_new"):
        cache.append(k, v.astype(ml_dtypes.bfloat16))
    for bad_k, bad_v, name in [(k[:1], v, "k_new"), (k[:, :1], v, "k_new"), (k[..., :4], v, "k_new"),
                               (k, v[:, :, :1], "v_new"), (k[0], v[0], "k_new")]:
        with pytest.raises(ValueError, match=name):
            cache.append(bad_k, bad_v)
    assert np.all(cache.lengths == 0), "a refused append moved the lengths"
    with pytest.raises((TypeError, ValueError), match="k_new"):
        cache.append([[1.0]], v)
    q = rand(rng, (b, 3, 1, d), np.float32)  # 3 query heads over 2 kv heads
    cache.append(k, v)
    with pytest.raises(ValueError, match=r"\bq\b"):
        cache.attention(q)
    with pytest.raises(ValueError, match=r"\bq\b"):
        cache.attention(rand(rng, (b, 4, 1, d + 1), np.float32))
    with pytest.raises(TypeError, match=r"\bq\b"):
        cache.attention(rand(rng, (b, 4, 1, d), np.float16))
    out = np.full((b, 4, 1, d), np.nan, np.float32)
    with pytest.raises(ValueError, match="out"):
        cache.attention_into(rand(rng, (b, 4, 2, d), np.float32), out)
    assert np.isnan(out).all()
    for args, exc in [((0, 1, 4, 8), ValueError), ((1, 1, 0, 8), ValueError), ((1, 1, 4, 257), ValueError),
                      ((1, 1, 4, 8, "int32"), TypeError)]:
        with pytest.raises(exc):
            lc.KVCache(*args)
    q = rand(rng, (b, 4, 2, d), np.float32)  # the cache still works
    check(cache.attention(q, causal=True), ref_sdpa(q, k, v, causal=True), np.float32, 2, d)


# ---- CUDA graphs ------------------------------------------------------------------------------------


@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_captured_decode_step_replays(rng, dtype):
    dt = DT[dtype]
    b, h, hkv, d, max_seq, steps = 2, 8, 2, 64, 12, 10
    q, k, v = seqs(rng, b, h, hkv, steps, d, dt)
    eager = lc.KVCache(b, hkv, max_seq, d, dtype=dtype, device="cuda")
    cache = lc.KVCache(b, hkv, max_seq, d, dtype=dtype, device="cuda")
    kt, vt, qt = (lc.Tensor(np.zeros(shape, dt), device="cuda", dtype=dtype)
                  for shape in ((b, hkv, 1, d), (b, hkv, 1, d), (b, h, 1, d)))
    ot = lc.Tensor(np.full((b, h, 1, d), np.nan, dt), device="cuda", dtype=dtype)
    graph = lc.capture_graph(lambda: (cache.append(kt, vt), cache.attention_into(qt, ot)))
    assert np.all(cache.lengths == 0), "capturing must not run the append"
    want = ref_sdpa(q, k, v, causal=True)
    for t in range(steps):
        got = replay_step(graph, [(kt, k[:, :, t:t + 1]), (vt, v[:, :, t:t + 1]), (qt, q[:, :, t:t + 1])], ot)
        assert np.all(cache.lengths == t + 1)
        eager.append(k[:, :, t:t + 1], v[:, :, t:t + 1])
        ref_step = host(eager.attention(q[:, :, t:t + 1], causal=True))
        assert np.array_equal(got.view(np.uint8), ref_step.view(np.uint8)) or \
            rel_err(got, ref_step) < sdpa_tol(dt, t + 1, d), "graph replay differs from the eager step"
        check(got, want[:, :, t:t + 1], dt, t + 1, d)
    assert not cache.overflowed
    for _ in range(max_seq - steps + 1):  # past max_seq: the graph's append clamps and flags it
        graph.replay()
    lc.synchronize("cuda")
    assert cache.overflowed and np.all(cache.lengths == max_seq)
    graph.release()


def test_set_lengths_padded_prefill(device):
    """Prompts of different lengths: a padded prefill, set_lengths to the true lengths, then token-by-token
    decode equals each sequence's own causal attention (the padding rows are overwritten, never attended)."""
    rng = np.random.default_rng(11)
    B, H, Hkv, D, S, steps = 3, 4, 2, 16, 6, 3
    lens = [6, 2, 4]
    cache = lc.KVCache(B, Hkv, S + steps, D, device=device)
    k = rng.standard_normal((B, Hkv, S + steps, D)).astype(np.float32)
    v = rng.standard_normal((B, Hkv, S + steps, D)).astype(np.float32)
    q = rng.standard_normal((B, H, S + steps, D)).astype(np.float32)
    cache.append(k[:, :, :S], v[:, :, :S])  # padded: rows >= lens[b] are junk for sequence b
    cache.set_lengths(lens)
    assert list(cache.lengths) == lens
    for t in range(steps):
        kt = np.stack([k[b, :, lens[b] + t] for b in range(B)])[:, :, None]
        vt = np.stack([v[b, :, lens[b] + t] for b in range(B)])[:, :, None]
        qt = np.stack([q[b, :, lens[b] + t] for b in range(B)])[:, :, None]
        cache.append(kt, vt)
        got = cache.attention(qt)
        got = got.numpy() if hasattr(got, "numpy") else got
        for b in range(B):
            n = lens[b] + t + 1
            ref = ref_sdpa(q[b:b + 1, :, n - 1:n], k[b:b + 1, :, :n], v[b:b + 1, :, :n], causal=True)
            assert np.max(np.abs(got[b:b + 1] - ref)) <= sdpa_tol("float32", n, D)
    with pytest.raises(ValueError, match="lengths"):
        cache.set_lengths([1, 2])
    with pytest.raises(ValueError, match="lengths"):
        cache.set_lengths([1, 2, S + steps + 1])


# ---- sliding window ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("window", [1, 5])
def test_window_token_by_token_equals_full_windowed(rng, device, dtype, window):
    """Appending token by token and attending with window=W equals full causal attention with the window
    (query at position p sees keys p - W < j <= p), past the window too; chunked prefill then decode as well."""
    dt = DT[dtype]
    b, h, hkv, d, s = 2, 8, 2, 32, 19
    q, k, v = seqs(rng, b, h, hkv, s, d, dt)
    full = ref_sdpa(q, k, v, causal=True, window=window)
    assert rel_err(ref_sdpa(q, k, v, causal=True), full) > 0.05  # the window hides something
    cache = lc.KVCache(b, hkv, 24, d, dtype=dtype, device=device)
    rows = []
    for t in range(s):
        cache.append(k[:, :, t:t + 1], v[:, :, t:t + 1])
        out = np.full((b, h, 1, d), np.nan, dt)
        cache.attention_into(q[:, :, t:t + 1], out, causal=True, window=window)
        rows.append(out)
    check(np.concatenate(rows, axis=2), full, dt, s, d)
    cache.reset()
    pos = 0
    for t in (7, 1, 6, 1, 4):  # chunks wider than the window, then decode
        cache.append(k[:, :, pos:pos + t], v[:, :, pos:pos + t])
        out = cache.attention(q[:, :, pos:pos + t], causal=True, window=window)
        pos += t
        check(out, full[:, :, pos - t:pos], dt, pos, d)


def test_window_bad_values(rng, device):
    cache = lc.KVCache(1, 2, 8, 16, device=device)
    k = rand(rng, (1, 2, 3, 16), np.float32)
    cache.append(k, k)
    q = rand(rng, (1, 4, 1, 16), np.float32)
    out = np.full(q.shape, np.nan, np.float32)
    for bad, exc in ((-1, ValueError), (2.0, TypeError), (False, TypeError)):
        with pytest.raises(exc, match="window"):
            cache.attention_into(q, out, causal=True, window=bad)
        assert np.isnan(out).all()
    for w in (None, 0, 3, 100):  # none, or a window that hides nothing at position 2
        check(cache.attention(q, causal=True, window=w), ref_sdpa(q, k, k, causal=True, key_lengths=[3]), np.float32,
              3, 16)


@requires_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("prefill,w", [(0, 7), (1500, 700)])
def test_captured_windowed_decode_replays_past_the_window(rng, dtype, prefill, w):
    """One captured append + attention_into(window=w) replayed step by step: the window follows the device
    lengths, so each replay equals the windowed reference at its own position, past w (after a long prefill:
    the split-KV decode kernels, whose splits start at the window's first key, read on the device)."""
    dt = DT[dtype]
    b, h, hkv, d, max_seq, steps = 2, 8, 2, 64, 2048, 30
    n = prefill + steps
    q, k, v = seqs(rng, b, h, hkv, n, d, dt)
    cache = lc.KVCache(b, hkv, max_seq, d, dtype=dtype, device="cuda")
    if prefill:
        cache.append(k[:, :, :prefill], v[:, :, :prefill])
    kt, vt, qt = (lc.Tensor(np.zeros(shape, dt), device="cuda", dtype=dtype)
                  for shape in ((b, hkv, 1, d), (b, hkv, 1, d), (b, h, 1, d)))
    ot = lc.Tensor(np.full((b, h, 1, d), np.nan, dt), device="cuda", dtype=dtype)
    graph = lc.capture_graph(lambda: (cache.append(kt, vt), cache.attention_into(qt, ot, causal=True, window=w)))
    for t in range(prefill, n):
        replay_step(graph, [(kt, k[:, :, t:t + 1]), (vt, v[:, :, t:t + 1]), (qt, q[:, :, t:t + 1])], ot)
        want = ref_sdpa(q[:, :, t:t + 1], k[:, :, :t + 1], v[:, :, :t + 1], causal=True, window=w)
        check(ot.numpy(), want, dt, t + 1, d)
    assert np.all(cache.lengths == n)
    graph.release()
