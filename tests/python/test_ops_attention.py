"""attention2d / attention2d_into / attention_forward / attention_forward_into (docs/python_api.md).

Softmax(q k^T / sqrt(head_dim)) v, causal and non-causal, against a float64 NumPy reference on random
inputs with awkward sizes; NaN-poisoned outs; the flat API with flat and 2-D arrays; float32-only op:
float64 inputs are converted and the output is float32 (float16/bfloat16: test_dtype_ops.py); Fortran/transposed/sliced/
byte-swapped inputs; inputs never modified; device fallback, auto, and strict mode.
"""
import re

import numpy as np
import pytest

import lightning_core as lc
from conftest import FALLBACK, FALLBACK_DEVICE, check_dispatch, unavailable_devices
from lightning_core.testing import ref_sdpa, rel_err as rel_err_of, sdpa_tol


# (seq, head_dim); 4096 in one dimension of one case only.
SHAPES = [(1, 1), (1, 7), (7, 1), (2, 33), (33, 7), (64, 64), (255, 33), (1023, 7), (3, 4096)]



def qkv(rng, seq, hd, dtype=np.float32):
    return tuple(rng.standard_normal((seq, hd)).astype(dtype) for _ in range(3))


@pytest.mark.parametrize("seq,hd", SHAPES)
@pytest.mark.parametrize("causal", [False, True])
def test_attention2d_matches_reference(rng, rel_err, ref, device, seq, hd, causal):
    q, k, v = qkv(rng, seq, hd)
    saved = [t.copy() for t in (q, k, v)]
    y = lc.attention2d(q, k, v, causal, device)
    assert isinstance(y, np.ndarray) and y.shape == (seq, hd) and y.dtype == np.float32
    assert rel_err(y, ref.attention(q, k, v, causal)) < 1e-5
    for t, t0 in zip((q, k, v), saved):
        assert np.array_equal(t, t0), "input modified"


@pytest.mark.parametrize("seq,hd", SHAPES)
@pytest.mark.parametrize("causal", [False, True])
def test_attention2d_into_writes_every_element(rng, rel_err, ref, poison, device, seq, hd, causal):
    q, k, v = qkv(rng, seq, hd)
    out = poison((seq, hd))
    ret = lc.attention2d_into(q, k, v, out, causal, device)
    assert ret is out
    assert not np.isnan(out).any()
    assert rel_err(out, ref.attention(q, k, v, causal)) < 1e-5


@pytest.mark.parametrize("seq,hd", [(1, 1), (7, 33), (33, 7), (255, 16), (2, 4096)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_forward_flat(rng, rel_err, ref, poison, device, seq, hd, causal):
    q, k, v = (t.reshape(-1) for t in qkv(rng, seq, hd))
    saved = [t.copy() for t in (q, k, v)]
    want = ref.attention(q.reshape(seq, hd), k.reshape(seq, hd), v.reshape(seq, hd), causal)
    y = lc.attention_forward(q, k, v, seq, hd, causal, device)
    assert y.shape == (seq * hd,) and y.dtype == np.float32
    assert rel_err(y.reshape(seq, hd), want) < 1e-5
    out = poison(seq * hd)
    assert lc.attention_forward_into(q, k, v, out, seq, hd, causal, device) is out
    assert not np.isnan(out).any()
    assert rel_err(out.reshape(seq, hd), want) < 1e-5
    for t, t0 in zip((q, k, v), saved):
        assert np.array_equal(t, t0)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_forward_2d_and_other_shapes(rng, rel_err, ref, poison, causal):
    seq, hd = 12, 10
    q, k, v = qkv(rng, seq, hd)
    want = ref.attention(q, k, v, causal)
    # 2-D arrays go through the flat API unchanged (read row-major); the result is flat.
    y = lc.attention_forward(q, k, v, seq, hd, causal)
    assert y.shape == (seq * hd,)
    assert rel_err(y.reshape(seq, hd), want) < 1e-5
    # Any shape with seq*head_dim elements; out of any shape with that element count.
    out = poison((hd, seq))
    lc.attention_forward_into(q.reshape(4, 30), k.reshape(-1), v.reshape(2, 3, 20), out, seq, hd, causal)
    assert rel_err(out.reshape(seq, hd), want) < 1e-5
    out = poison((seq, hd))
    lc.attention_forward_into(q, k, v, out, seq, hd, causal=causal, device="cpu")
    assert rel_err(out, want) < 1e-5


def test_attention_flat_sizes_decide_the_shape(rng, rel_err, ref, poison):
    # The same 48-element buffers read as (seq, head_dim) = (6, 8) and (8, 6) give different results.
    q, k, v = (rng.standard_normal(48).astype(np.float32) for _ in range(3))
    for seq, hd in [(6, 8), (8, 6), (48, 1), (1, 48)]:
        out = poison(48)
        lc.attention_forward_into(q, k, v, out, seq, hd, True)
        want = ref.attention(q.reshape(seq, hd), k.reshape(seq, hd), v.reshape(seq, hd), True)
        assert rel_err(out.reshape(seq, hd), want) < 1e-5


def test_attention_causal_first_row_is_first_value(rng):
    q, k, v = qkv(rng, 9, 5)
    y = lc.attention2d(q, k, v, True)
    # Query 0 sees key 0 only: its output is v[0]; the non-causal result differs.
    assert np.allclose(y[0], v[0], rtol=1e-6, atol=1e-6)
    y_nc = lc.attention2d(q, k, v, False)
    assert not np.allclose(y_nc[0], v[0], rtol=1e-3, atol=1e-3)


def test_attention_keyword_arguments(rng, rel_err, ref, poison):
    q, k, v = qkv(rng, 5, 3)
    want = ref.attention(q, k, v, True)
    assert rel_err(lc.attention2d(q=q, k=k, v=v, causal=True, device="cpu"), want) < 1e-5
    out = poison((5, 3))
    lc.attention2d_into(q, k, v, out=out, causal=True)
    assert rel_err(out, want) < 1e-5
    y = lc.attention_forward(q, k, v, seq=5, head_dim=3, causal=True)
    assert rel_err(y.reshape(5, 3), want) < 1e-5


def test_attention_large_scores_are_stable(rng, rel_err, ref):
    # Every score of a row shifted by about +-280 (a component shared by all keys): a naive exp
    # overflows (or underflows to 0/0); softmax must subtract the row max. The differences between
    # scores stay O(1), so the result is well conditioned; the looser bound covers the float32 rounding
    # of scores of magnitude ~280 (~2e-5 absolute).
    q, k, v = qkv(rng, 17, 8)
    q[:, 0] = rng.choice([-20.0, 20.0], size=17)
    k[:, 0] = 40.0
    for causal in (False, True):
        assert rel_err(lc.attention2d(q, k, v, causal), ref.attention(q, k, v, causal)) < 1e-4


@pytest.mark.parametrize("dtype", [np.float64])  # float16/bfloat16: test_dtype_ops.py (table-driven)
@pytest.mark.parametrize("causal", [False, True])
def test_attention_converts_float64_and_float16(rng, rel_err, ref, poison, dtype, causal):
    seq, hd = 19, 12
    q, k, v = qkv(rng, seq, hd, dtype)
    saved = [t.copy() for t in (q, k, v)]
    want = ref.attention(q, k, v, causal)
    y = lc.attention2d(q, k, v, causal)
    assert y.dtype == np.float32
    assert rel_err(y, want) < 1e-5
    out = poison((seq, hd))  # out stays float32: it is never converted
    lc.attention2d_into(q, k, v, out, causal)
    assert rel_err(out, want) < 1e-5
    flat = poison(seq * hd)
    lc.attention_forward_into(q, k, v, flat, seq, hd, causal)
    assert rel_err(flat.reshape(seq, hd), want) < 1e-5
    y = lc.attention_forward(q, k, v, seq, hd, causal)
    assert y.dtype == np.float32
    for t, t0 in zip((q, k, v), saved):
        assert t.dtype == dtype and np.array_equal(t, t0)


def test_attention_mixed_input_dtypes(rng, rel_err, ref):
    q, k, v = qkv(rng, 11, 6)
    k = k.astype(np.float64)
    y = lc.attention2d(q, k, v)
    assert y.dtype == np.float32
    assert rel_err(y, ref.attention(q, k, v)) < 1e-5
    with pytest.raises(TypeError, match="q and v: .* got q of dtype float32 and v of dtype float16"):
        lc.attention2d(q, q, v.astype(np.float16))  # float16 never mixes with another dtype


@pytest.mark.parametrize("layout", ["fortran", "transposed", "sliced", "byteswapped", "reversed"])
def test_attention_converted_layouts(rng, rel_err, ref, poison, layout):
    seq, hd = 21, 9
    base = qkv(rng, seq, hd)
    if layout == "fortran":
        q, k, v = (np.asfortranarray(t) for t in base)
    elif layout == "transposed":
        q, k, v = (np.ascontiguousarray(t.T).T for t in base)
    elif layout == "sliced":
        big = [rng.standard_normal((2 * seq, hd + 4)).astype(np.float32) for _ in range(3)]
        q, k, v = (b[::2, 2 : hd + 2] for b in big)
    elif layout == "byteswapped":
        q, k, v = (t.astype(t.dtype.newbyteorder()) for t in base)
    else:
        q, k, v = (t[::-1] for t in base)
    assert not q.flags.c_contiguous or not q.dtype.isnative
    saved = [t.copy() for t in (q, k, v)]
    for causal in (False, True):
        want = ref.attention(q, k, v, causal)
        assert rel_err(lc.attention2d(q, k, v, causal), want) < 1e-5
        out = poison((seq, hd))
        lc.attention2d_into(q, k, v, out, causal)
        assert rel_err(out, want) < 1e-5
        flat = poison(seq * hd)
        lc.attention_forward_into(q, k, v, flat, seq, hd, causal)
        assert rel_err(flat.reshape(seq, hd), want) < 1e-5
    for t, t0 in zip((q, k, v), saved):
        assert np.array_equal(t, t0) and t.dtype == t0.dtype


# ---- device policy ---------------------------------------------------------------------------------



@pytest.mark.parametrize("dev", unavailable_devices())
def test_attention_unavailable_device_falls_back(rng, rel_err, ref, poison, strict_off, dev):
    seq, hd = 33, 8
    q, k, v = qkv(rng, seq, hd)
    for causal in (False, True):
        want = ref.attention(q, k, v, causal)
        assert rel_err(lc.attention2d(q, k, v, causal, dev), want) < 1e-5
        check_dispatch("attention", dev, FALLBACK_DEVICE, FALLBACK)
        out = poison((seq, hd))
        lc.attention2d_into(q, k, v, out, causal, dev)
        assert rel_err(out, want) < 1e-5
        check_dispatch("attention", dev, FALLBACK_DEVICE, FALLBACK)
        y = lc.attention_forward(q.ravel(), k.ravel(), v.ravel(), seq, hd, causal, dev)
        assert rel_err(y.reshape(seq, hd), want) < 1e-5
        check_dispatch("attention", dev, FALLBACK_DEVICE, FALLBACK)
        flat = poison(seq * hd)
        lc.attention_forward_into(q, k, v, flat, seq, hd, causal, dev)
        assert rel_err(flat.reshape(seq, hd), want) < 1e-5
        check_dispatch("attention", dev, FALLBACK_DEVICE, FALLBACK)


@pytest.mark.parametrize("seq,hd", [(1, 1), (64, 32), (1023, 7)])
def test_attention_auto_device(rng, rel_err, ref, poison, seq, hd):
    q, k, v = qkv(rng, seq, hd)
    out = poison((seq, hd))
    lc.attention2d_into(q, k, v, out, True, "auto")
    assert rel_err(out, ref.attention(q, k, v, True)) < 1e-5
    d = check_dispatch("attention", "auto", reason="auto_selected")
    assert d["selected"] in (["cpu", "cuda"] if lc.cuda_available() else ["cpu"])


@pytest.mark.parametrize("dev", unavailable_devices())
def test_attention_strict_mode(rng, poison, strict_off, dev):
    q, k, v = qkv(rng, 6, 4)
    lc.set_strict_device(True)
    try:
        out = poison((6, 4))
        with pytest.raises(lc.DeviceUnavailableError, match=dev):
            lc.attention2d_into(q, k, v, out, False, dev)
        assert np.isnan(out).all()
        flat = poison(24)
        with pytest.raises(lc.DeviceUnavailableError):
            lc.attention_forward_into(q, k, v, flat, 6, 4, True, dev)
        assert np.isnan(flat).all()
        with pytest.raises(lc.DeviceUnavailableError):
            lc.attention2d(q, k, v, False, dev)
        with pytest.raises(lc.DeviceUnavailableError):
            lc.attention_forward(q, k, v, 6, 4, False, dev)
        lc.attention2d_into(q, k, v, out, False, "cpu")
        assert not np.isnan(out).any()
    finally:
        lc.set_strict_device(False)


# ---- attention runs on sdpa's kernels (issue 15, item 1) ------------------------------------------------
# attention2d / attention_forward are scaled_dot_product_attention on [seq, head_dim] (batch = heads = 1,
# scale 1/sqrt(head_dim)): the op keeps its name, checks and signature; the kernel and its path are sdpa's.
# On CUDA attention takes sdpa's generic kernel for every seq (never the decode or tensor-core kernels).
SDPA_PATH = {"cpu": r"cpu_sdpa_(avx512|avx2|generic)", "cuda": r"cuda_sdpa_(flash|split)_(f32|f16|bf16)"}


@pytest.mark.parametrize("seq,hd", [(1, 8), (7, 33), (65, 64), (300, 100)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention2d_runs_sdpa_kernel(rng, device, seq, hd, causal):
    q, k, v = qkv(rng, seq, hd)
    y = lc.attention2d(q, k, v, causal, device)
    d = lc.last_dispatch()
    assert d["op"] == "attention_forward" and re.fullmatch(SDPA_PATH[device], d["path"]), d
    # float32: where sdpa takes the same kernel (its path), bit for bit sdpa's output (the seed's own kernels
    # computed scale·log2(e)·q first and would differ in the last bits); on CUDA sdpa itself takes its decode
    # kernel for seq <= 16, another summation order: then within float32 rounding
    want = lc.scaled_dot_product_attention(q, k, v, causal=causal, device=device)
    if lc.last_dispatch()["path"] == d["path"]:
        assert np.array_equal(y, want)
    else:
        assert device == "cuda" and seq <= 16, (d["path"], lc.last_dispatch()["path"])
        assert np.max(np.abs(y - want)) <= 1e-6 * max(1.0, float(np.max(np.abs(want))))
    flat = lc.attention_forward(q.ravel(), k.ravel(), v.ravel(), seq, hd, causal, device)
    assert np.array_equal(flat.reshape(seq, hd), y) and re.fullmatch(SDPA_PATH[device], lc.last_dispatch()["path"])


def test_attention2d_bfloat16_cpu_is_sdpa(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    q, k, v = (t.astype(ml_dtypes.bfloat16) for t in qkv(rng, 70, 24))
    for causal in (False, True):
        y = lc.attention2d(q, k, v, causal, "cpu")
        path = lc.last_dispatch()["path"]
        assert y.dtype == q.dtype and re.fullmatch(SDPA_PATH["cpu"], path)
        want = lc.scaled_dot_product_attention(q, k, v, causal=causal, device="cpu")
        if lc.last_dispatch()["path"] == path:  # the same kernel: the same bits
            assert np.array_equal(y.view(np.uint16), want.view(np.uint16))
        else:  # sdpa's AVX-512 BF16 tile rounds the weights to bfloat16 (attention2d keeps them in float32)
            assert lc.last_dispatch()["path"] == "cpu_sdpa_avx512bf16"
            ref = ref_sdpa(q, k, v, causal=causal)
            for out in (y, want):
                assert rel_err_of(out, ref) < sdpa_tol("bfloat16", 70, 24)


def test_attention_session_runs_sdpa_kernel(rng, rel_err, ref, device):
    seq, hd = 40, 16
    q, k, v = qkv(rng, seq, hd)
    s = lc.AttentionSession(seq, hd, True, device)
    out = np.full((seq, hd), np.nan, np.float32)
    s.forward_into(q, k, v, out)
    assert rel_err(out, ref.attention(q, k, v, True)) < 1e-5
    assert re.fullmatch(SDPA_PATH[device], lc.last_dispatch()["path"]), lc.last_dispatch()


@pytest.mark.parametrize("seq", [3, 40])
def test_attention2d_keeps_its_nonfinite_rule(device, seq):
    # Key 0's score is -inf for every row (k[0, 0] = +inf against q[:, 0] = -1). Causal row 0 sees key 0
    # only: every score -inf, so the plain formula exp(s - max) gives NaN (the float64 reference) where
    # scaled_dot_product_attention documents zeros; attention keeps NaN. The other rows give key 0 weight
    # exactly 0, and a NaN in v[0] still reaches them (0 * NaN), as the reference says: attention never
    # skips a zero weight.
    rng = np.random.default_rng(7)
    q, k, v = (rng.uniform(0.5, 1.0, (seq, 4)).astype(np.float32) for _ in range(3))
    q[:, 0] = -1.0
    k[0, 0] = np.inf
    y = lc.attention2d(q, k, v, True, device)
    assert np.isnan(y[0]).all() and np.isfinite(y[1:]).all()
    v[0, 2] = np.nan
    y = lc.attention2d(q, k, v, True, device)
    assert np.isnan(y[0]).all() and np.isnan(y[1:, 2]).all() and np.isfinite(np.delete(y[1:], 2, axis=1)).all()
