"""The sliding window of lc.scaled_dot_product_attention(_into) (issue 16's Mistral window; docs/python_api.md):
query i (own key position p_i = i + L - Sq, L = key_lengths[b] or Skv) sees key j only if j > p_i - window
(with causal: p_i - window < j <= p_i, Hugging Face's rule; without causal a left bound only).

Against the float64 reference testing.ref_sdpa(window=...) within testing.sdpa_tol, per dtype (float32,
float16, bfloat16) and device (cpu; cuda skipped without a GPU): windows 1, 3, 64 and >= Skv, causal and not,
Sq == Skv and Sq < Skv (decode Sq 1..16), key_lengths (1, Skv, in between), GQA/MQA, ranks 2/3/4, strided NumPy
views and strided TensorViews, `_into` with NaN-poisoned out and lse. Each case also checks that the window
hides something (the reference without it differs), so a kernel ignoring the window fails. Shapes that take
each CUDA kernel (the lead's GPU run checks the path): the tensor-core prefill (bf16/f16, D 64/128, S 300,
window 100), the decode kernels (Sq <= 16 against Skv 1000 / 4100, window 700; tensor-core for 16-bit,
SIMT for float32), the generic flash kernel (float32, odd D) and its key split. NaN in k/v rows left of every
row's window never reaches an output; bad window values raise TypeError / ValueError naming window, nothing
written.
"""
import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import as_host as host
from lightning_core.testing import check_sdpa as check
from lightning_core.testing import ref_sdpa, rel_err

ml_dtypes = pytest.importorskip("ml_dtypes")
DT = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
DTYPES = list(DT)


def rand(rng, shape, dt):
    return rng.standard_normal(shape).astype(dt)






def hides_something(q, k, v, want, **kw):
    """The window changes the result (the same call's reference without it differs by far more than any
    tolerance), so a kernel that ignores it cannot pass."""
    assert rel_err(ref_sdpa(q, k, v, **kw), want) > 0.05


# (B, H, Hkv, Sq, Skv, D, window, causal, key_lengths)
CASES = [
    (2, 4, 2, 37, 37, 16, 1, True, None),
    (1, 3, 3, 70, 70, 33, 3, True, None),
    (2, 2, 1, 129, 129, 64, 64, True, [129, 100]),
    (1, 4, 2, 65, 65, 24, 3, False, None),              # a left bound only
    (2, 2, 2, 9, 200, 32, 64, True, [200, 1]),          # Sq < Skv, lengths Skv and 1
    (2, 8, 2, 1, 300, 64, 64, True, [300, 150]),        # decode
    (1, 6, 1, 16, 257, 48, 3, True, None),              # decode, 16 rows, MQA
    (1, 4, 4, 4, 130, 40, 64, False, [77]),             # decode without causal
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:6])) + f"w{c[6]}" + ("c" if c[7] else ""))
def test_window_matches_reference(rng, device, dtype, case):
    b, h, hkv, sq, skv, d, w, causal, lens = case
    dt = DT[dtype]
    q, k, v = rand(rng, (b, h, sq, d), dt), rand(rng, (b, hkv, skv, d), dt), rand(rng, (b, hkv, skv, d), dt)
    want, wlse = ref_sdpa(q, k, v, causal=causal, key_lengths=lens, window=w, return_lse=True)
    if not (lens is not None and max(lens) <= 1):
        hides_something(q, k, v, want, causal=causal, key_lengths=lens)
    out, lse = lc.scaled_dot_product_attention(q, k, v, causal=causal, key_lengths=lens, window=w, device=device,
                                               return_lse=True)
    check(out, want, dt, skv, d)
    fin = np.isfinite(wlse)
    assert np.array_equal(np.isneginf(host(lse)), np.isneginf(wlse))
    np.testing.assert_allclose(host(lse)[fin], wlse[fin], rtol=1e-5, atol=1e-5)
    # _into: every element of a NaN-poisoned out (and lse) is written
    o2, l2 = np.full(q.shape, np.nan, dt), np.full(q.shape[:-1], np.nan, np.float32)
    lc.scaled_dot_product_attention_into(q, k, v, o2, causal=causal, key_lengths=lens, window=w, device=device, lse=l2)
    check(o2, want, dt, skv, d)
    assert not np.isnan(l2).any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_window_at_least_skv_is_no_window(rng, device, dtype, causal):
    """A window >= Skv hides nothing: bit-identical to no window (and None, 0 mean none)."""
    dt = DT[dtype]
    q, k, v = rand(rng, (2, 4, 20, 16), dt), rand(rng, (2, 2, 20, 16), dt), rand(rng, (2, 2, 20, 16), dt)
    base = host(lc.scaled_dot_product_attention(q, k, v, causal=causal, device=device))
    for w in (None, 0, 20, 21, 10 ** 12):
        got = host(lc.scaled_dot_product_attention(q, k, v, causal=causal, device=device, window=w))
        assert np.array_equal(got.view(np.uint8), base.view(np.uint8)), w
    got = host(lc.scaled_dot_product_attention(q, k, v, causal=causal, device=device, window=19))
    assert not np.array_equal(got.view(np.uint8), base.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ranks_strided_views_and_tensors(rng, device, dtype):
    dt = DT[dtype]
    b, s, h, d, w = 2, 40, 3, 16, 6
    packed = rand(rng, (b, s, 3, h, d), dt)  # one qkv projection, read as [B, H, S, D] views
    q, k, v = (packed[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    want = ref_sdpa(q, k, v, causal=True, window=w)
    hides_something(q, k, v, want, causal=True)
    check(lc.scaled_dot_product_attention(q, k, v, causal=True, window=w, device=device), want, dt, s, d)
    # rank 3 and rank 2
    check(lc.scaled_dot_product_attention(q[1], k[1], v[1], causal=True, window=w, device=device), want[1], dt, s, d)
    check(lc.scaled_dot_product_attention(q[0, 2], k[0, 2], v[0, 2], causal=True, window=w, device=device),
          want[0, 2], dt, s, d)
    # strided TensorViews on the device, out a strided view merging the heads ([B, S, H, D] storage)
    tp = lc.Tensor(packed, device=device, dtype=dtype)
    cols = 3 * h * d
    views = [tp.view((b, h, s, d), (s * cols, d, cols, 1), i * h * d) for i in range(3)]
    tb = lc.Tensor(np.full((b, s, h, d), np.nan, dt), device=device, dtype=dtype)
    merged = tb.view((b, h, s, d), (s * h * d, d, h * d, 1), 0)
    lc.scaled_dot_product_attention_into(*views, merged, causal=True, window=w, device=device)
    check(host(tb).transpose(0, 2, 1, 3), want, dt, s, d)


# Shapes that take each CUDA kernel: (name, dtype, B, H, Hkv, Sq, Skv, D, window, lengths, path substring).
KERNEL_CASES = [
    ("mma_prefill_d64", "bfloat16", 1, 4, 2, 300, 300, 64, 100, None, "sdpa_mma_bf16_d64"),
    ("mma_prefill_d128", "float16", 2, 2, 1, 300, 300, 128, 100, [300, 250], "sdpa_mma_f16_d128"),
    ("mma_prefill_sq_lt_skv", "bfloat16", 1, 2, 2, 100, 1000, 128, 130, None, "sdpa_mma_bf16_d128"),
    ("decode_mma_1000", "bfloat16", 2, 8, 2, 1, 1000, 128, 700, [1000, 400], "cuda_sdpa_decode_mma_bf16"),
    ("decode_mma_4100", "float16", 1, 32, 8, 1, 4100, 128, 700, None, "cuda_sdpa_decode_mma_f16"),
    ("decode_mma_sq16", "bfloat16", 1, 4, 2, 16, 4100, 64, 700, None, "cuda_sdpa_decode_mma_bf16"),
    ("decode_simt_f32", "float32", 1, 8, 2, 3, 4100, 64, 700, None, "cuda_sdpa_decode_f32"),
    ("decode_simt_odd_d", "bfloat16", 2, 4, 4, 5, 1000, 36, 700, [1000, 690], "cuda_sdpa_decode_bf16"),
    ("flash_f32", "float32", 1, 2, 1, 300, 300, 64, 100, None, "cuda_sdpa_"),
    ("flash_f32_long", "float32", 1, 1, 1, 1100, 1100, 72, 130, None, "cuda_sdpa_"),
    ("flash_bf16_odd_d", "bfloat16", 2, 3, 3, 200, 200, 40, 33, [200, 120], "cuda_sdpa_"),
]


@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: c[0])
def test_window_every_kernel(rng, device, case):
    name, dtype, b, h, hkv, sq, skv, d, w, lens, path = case
    dt = DT[dtype]
    q, k, v = rand(rng, (b, h, sq, d), dt), rand(rng, (b, hkv, skv, d), dt), rand(rng, (b, hkv, skv, d), dt)
    if device == "cuda":  # on the device already: the 16-byte aligned buffers the tensor-core kernels read
        q, k, v = (lc.Tensor(x, device="cuda", dtype=dtype) for x in (q, k, v))
        hq, hk, hv = (x.numpy() for x in (q, k, v))
    else:
        hq, hk, hv = q, k, v
    want = ref_sdpa(hq, hk, hv, causal=True, key_lengths=lens, window=w)
    hides_something(hq, hk, hv, want, causal=True, key_lengths=lens)
    out = lc.scaled_dot_product_attention(q, k, v, causal=True, key_lengths=lens, window=w, device=device)
    if device == "cuda":
        got_path = lc.last_dispatch()["path"]
        assert path in got_path, (got_path, path)
    check(out, want, dt, skv, d)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sq", [1, 7, 150])
def test_nan_left_of_every_window_is_never_read(rng, device, dtype, sq):
    """k/v rows left of every row's window hold NaN: no output sees them (they are skipped, not multiplied by
    a zero weight); a NaN inside some rows' windows reaches exactly those rows."""
    dt = DT[dtype]
    skv, d, w = 300, 64, 40
    q, k, v = rand(rng, (1, 2, sq, d), dt), rand(rng, (1, 2, skv, d), dt), rand(rng, (1, 2, skv, d), dt)
    first = skv - sq - w + 1  # the first row's first key
    k[:, :, :first - 1] = np.nan
    v[:, :, :first - 1] = np.nan
    out = host(lc.scaled_dot_product_attention(q, k, v, causal=True, window=w, device=device))
    assert np.isfinite(out).all()
    check(out, ref_sdpa(q, k, v, causal=True, window=w), dt, skv, d)
    if sq > 1:
        v[:, :, first + 2] = np.nan  # seen by rows 0..2 only
        out = host(lc.scaled_dot_product_attention(q, k, v, causal=True, window=w, device=device))
        assert np.isnan(out[:, :, :3]).all() and np.isfinite(out[:, :, 3:]).all()


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (-(2 ** 40), ValueError), (1.5, TypeError), (True, TypeError),
                                     ("3", TypeError), (2 ** 70, ValueError)])
def test_bad_window(rng, device, bad, exc):
    q = rand(rng, (2, 5, 8), np.float32)
    out = np.full(q.shape, np.nan, np.float32)
    with pytest.raises(exc, match="window"):
        lc.scaled_dot_product_attention(q, q, q, causal=True, window=bad, device=device)
    with pytest.raises(exc, match="window"):
        lc.scaled_dot_product_attention_into(q, q, q, out, causal=True, window=bad, device=device)
    assert np.isnan(out).all(), "out written before the window was checked"
    # the process is still usable
    check(lc.scaled_dot_product_attention(q, q, q, causal=True, window=2, device=device),
          ref_sdpa(q, q, q, causal=True, window=2), np.float32, 5, 8)


def test_ref_sdpa_window_is_huggingface_rule():
    """ref_sdpa's window against direct loops of Hugging Face's rule (kv_idx > q_idx - window and causal,
    q_idx the absolute position i + Skv - Sq)."""
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((9, 3)), rng.standard_normal((9, 3))
    out = ref_sdpa(q, k, v, causal=True, window=3, scale=1.0)
    for i in range(4):
        pos = i + 5
        js = [j for j in range(9) if pos - 3 < j <= pos]
        assert len(js) == 3
        s = np.array([q[i] @ k[j] for j in js])
        p = np.exp(s - s.max())
        np.testing.assert_allclose(out[i], (p / p.sum()) @ v[js], rtol=1e-12)
    with pytest.raises(ValueError, match="window"):
        ref_sdpa(q, k, v, window=-1)
