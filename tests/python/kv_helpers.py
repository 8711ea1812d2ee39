"""Shared helpers of the KV-cache call tests (test_kv_cache_fused.py, test_kv_cache_rope.py): the dtypes, random
inputs, bit-for-bit comparison, a qkv projection's packed output as strided views, a twin pair of caches filled
with the same prefix, and which calls the short-path CUDA decode takes (LC_SDPA_DECODE_LEAN)."""
import os

import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import as_host as host

ml_dtypes = pytest.importorskip("ml_dtypes")
DT = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}


def lean_applies(d, t, group, rd, max_seq, window=None):
    """Whether the short-path CUDA decode takes a 16-bit call (caches of at most N keys, LC_SDPA_DECODE_LEAN=N, 0:
    never, unset: 256 = sdpa_cuda.cu's SD_LEAN_KEYS; one query row, head_dim 64, GQA group <= 8, the rope over all
    64 columns, no window)."""
    e = os.environ.get("LC_SDPA_DECODE_LEAN", "")
    n = int(e) if e else 256
    return n > 0 and max_seq <= n and d == 64 and t == 1 and group <= 8 and rd == 64 and window is None


def rand(rng, shape, dt):
    return rng.standard_normal(shape).astype(dt)


def bits_equal(a, b):
    a, b = host(a), host(b)
    return a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def same_contents(c1, c2):
    """Both caches hold the same lengths and, below them, the same keys and values bit for bit (the storage
    past a sequence's length is never written: it holds whatever the allocation held)."""
    L = c1.lengths
    if not np.array_equal(L, c2.lengths):
        return False
    k1, v1, k2, v2 = host(c1.k), host(c1.v), host(c2.k), host(c2.v)
    return all(bits_equal(k1[i, :, :L[i]], k2[i, :, :L[i]]) and bits_equal(v1[i, :, :L[i]], v2[i, :, :L[i]])
               for i in range(len(L)))


def packed_qkv(rng, b, h, hkv, t, d, dtype, device):
    """q [B, H, T, D], k / v [B, Hkv, T, D] as strided views of one [B*T, (H + 2 Hkv)·D] buffer (a fused qkv
    projection's output, as the model runner reads it), plus the host arrays."""
    cols = (h + 2 * hkv) * d
    buf = rand(rng, (b * t, cols), DT[dtype])
    tb = lc.Tensor(buf, device=device, dtype=dtype)
    st = (t * cols, d, cols, 1)
    q = tb.view((b, h, t, d), st, 0)
    k = tb.view((b, hkv, t, d), st, h * d)
    v = tb.view((b, hkv, t, d), st, (h + hkv) * d)
    r = buf.reshape(b, t, h + 2 * hkv, d).transpose(0, 2, 1, 3)
    return (q, k, v), (r[:, :h], r[:, h:h + hkv], r[:, h + hkv:]), tb


def twin_caches(rng, b, hkv, d, lens, max_seq, dtype, device):
    """Two caches holding the same random prefix, sequence i at length lens[i]."""
    dt, pre = DT[dtype], max(lens)
    kp, vp = rand(rng, (b, hkv, pre, d), dt), rand(rng, (b, hkv, pre, d), dt)
    caches = [lc.KVCache(b, hkv, max_seq, d, dtype=dtype, device=device) for _ in range(2)]
    for c in caches:
        if pre:
            c.append(kp, vp)
        c.set_lengths(lens)
    return caches


def decode_rig(rng, b, h, hkv, d, prefill, n, max_seq, dtype):
    """A captured-decode test's setup (CUDA): q / k / v of n tokens (host), two caches holding the first `prefill`
    of them, and the device tensors a captured step reads (k, v, q of one token) and writes (out, NaN)."""
    dt = DT[dtype]
    q, k, v = rand(rng, (b, h, n, d), dt), rand(rng, (b, hkv, n, d), dt), rand(rng, (b, hkv, n, d), dt)
    cache, eager = (lc.KVCache(b, hkv, max_seq, d, dtype=dtype, device="cuda") for _ in range(2))
    if prefill:
        for c in (cache, eager):
            c.append(k[:, :, :prefill], v[:, :, :prefill])
    kt, vt, qt = (lc.Tensor(np.zeros(s, dt), device="cuda", dtype=dtype)
                  for s in ((b, hkv, 1, d), (b, hkv, 1, d), (b, h, 1, d)))
    ot = lc.Tensor(np.full((b, h, 1, d), np.nan, dt), device="cuda", dtype=dtype)
    return (q, k, v), (cache, eager), (kt, vt, qt, ot)
