"""The LLM building blocks (issue 16): rms_norm, rope, softmax, silu, silu_mul, add / mul with broadcasting,
and their *_into forms, for float32 / float16 / bfloat16 (add / mul also float64) on every device ("cuda"
cases skip without a GPU), against the float64 NumPy references of lightning_core.testing.refs computed from
the inputs as stored (so a 16-bit input is the same value on both sides).

Tolerances (u = testing.unit_roundoff(dtype): 2^-24 float32, 2^-11 float16, 2^-8 bfloat16), as
test_dtype_ops.py words them: a 16-bit result is the float32 result rounded once, so it lies within u·|ref|
plus the float32 error, which is ~k·2^-24 for a k-term statistic (rms_norm's Σx², softmax's Σexp);
tests use the normwise rel_err (testing.rel_err) with RTOL = 2u for 16-bit and 64·2^-24 for float32
(statistics over 4097 columns), elementwise |out - ref| <= 1.01·u·|ref| + (half the dtype's smallest subnormal) for add / mul (one
rounding of an exact float64 value; bfloat16 may round twice through float32), and rope at position 1e5 within 2e-6
(the float64 angle reduced mod 2π, cos/sin in float32).
Sizes: rows 1, 7, 1000; cols 1, 63, 65, 4097; for the CUDA vector paths rms_norm and layer_norm also rows of
16-byte multiples (1 x 2048, 1 x 768, 2 x 8192, 300 x 2048, ...) and rope the decode views of a qkv row;
outputs poisoned with NaN before *_into; NaN propagation;
bad inputs (mixed 16-bit / float32 -> TypeError naming both; bad shapes -> ValueError naming the argument).
"""
import math

import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import (ref_layer_norm, ref_rms_norm, ref_rope, ref_rope_inv_freq, ref_silu, ref_silu_mul, ref_softmax,
                                    rel_err, mismatch, unit_roundoff)

ml_dtypes = pytest.importorskip("ml_dtypes")
DT = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
DTYPES = list(DT)
SHAPES = [(1, 1), (7, 63), (1000, 65), (3, 4097), (2, 3, 5, 8)]
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}


def rand(rng, shape, dt, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dt)


def host(x):
    return np.asarray(x) if isinstance(x, np.ndarray) else x.numpy()


def rtol(dtype):
    return 64 * 2.0 ** -24 if dtype == "float32" else 2 * unit_roundoff(dtype)


def check(out, want, dtype, tol=None):
    out = host(out)
    assert out.dtype == DT[dtype], (out.dtype, dtype)
    why = mismatch(out, want)
    assert why is None, why
    err = rel_err(out, want)
    assert err <= (rtol(dtype) if tol is None else tol), (err, dtype)


def tiny(dtype):
    """Half the smallest subnormal of dtype: the absolute error a correctly rounded result may have near 0."""
    return {"float16": 2.0 ** -25, "bfloat16": 2.0 ** -134, "float32": 2.0 ** -150, "float64": 2.0 ** -1074}[dtype]


def poison(shape, dtype):
    return np.full(shape, np.nan, dtype=DT[dtype])


# ---- rms_norm --------------------------------------------------------------------------------------------


def _check_rms_norm(rng, device, dtype, shape, eps):
    """With and without weight (the second call with eps if given), into a poisoned out, in place."""
    dt = DT[dtype]
    x, w = rand(rng, shape, dt, 3.0), rand(rng, shape[-1], dt)
    check(lc.rms_norm(x, w, device=device), ref_rms_norm(x, w), dtype)
    if eps is None:
        check(lc.rms_norm(x, device=device), ref_rms_norm(x, None), dtype)
    else:
        check(lc.rms_norm(x, device=device, eps=eps), ref_rms_norm(x, None, eps), dtype)
    out = poison(shape, dtype)
    assert lc.rms_norm_into(x, out, w, device=device) is out
    check(out, ref_rms_norm(x, w), dtype)
    y = x.copy()
    assert lc.rms_norm_into(y, y, w, device=device) is y  # in place
    check(y, ref_rms_norm(x, w), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_rms_norm(rng, device, dtype, shape):
    _check_rms_norm(rng, device, dtype, shape, 1e-5)


# Rows of 16-byte multiples (the CUDA register path of rms_norm: 1..4 vectors a thread) and few rows of
# float4 multiples (the CUDA few-rows path of layer_norm, gamma/beta prefetched), decode shapes first.
VEC_SHAPES = [(1, 2048), (1, 768), (1, 16), (5, 4096), (2, 8192), (300, 2048)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", VEC_SHAPES)
def test_rms_norm_vector_rows(rng, device, dtype, shape):
    _check_rms_norm(rng, device, dtype, shape, None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 768), (1, 4), (1, 12), (3, 2048), (2, 8192), (300, 768)])
def test_layer_norm_few_rows(rng, device, dtype, shape):
    dt = DT[dtype]
    x, g, b = rand(rng, shape, dt, 2.0), rand(rng, shape[-1], dt), rand(rng, shape[-1], dt)
    for gg, bb in ((g, b), (None, None), (g, None), (None, b)):
        check(lc.layer_norm(x, gg, bb, device=device), ref_layer_norm(x, gg, bb), dtype)
    out = poison(shape, dtype)
    assert lc.layer_norm_into(x, out, g, b, device=device) is out
    check(out, ref_layer_norm(x, g, b), dtype)
    y = x.copy()
    assert lc.layer_norm_into(y, y, g, b, device=device) is y  # in place
    check(y, ref_layer_norm(x, g, b), dtype)


def test_rms_norm_statistic_and_nan(device):
    # a row of 1e4 + small noise keeps its rms; a NaN poisons only its row; a zero row stays 0 (eps)
    x = np.full((3, 64), 1e4, np.float32)
    x[0] += np.linspace(-1, 1, 64, dtype=np.float32)
    x[1, 5] = np.nan
    x[2] = 0
    y = lc.rms_norm(x, device=device)
    assert np.all(np.isnan(y[1])) and np.all(y[2] == 0)
    assert rel_err(y[0], ref_rms_norm(x[0])) < 4e-7


# ---- softmax ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax(rng, device, dtype, shape):
    dt = DT[dtype]
    x = rand(rng, shape, dt, 4.0)
    check(lc.softmax(x, device=device), ref_softmax(x), dtype)
    out = poison(shape, dtype)
    assert lc.softmax_into(x, out, device=device) is out
    check(out, ref_softmax(x), dtype)
    y = x.copy()
    lc.softmax_into(y, y, device=device)
    check(y, ref_softmax(x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_nonfinite(device, dtype):
    dt = DT[dtype]
    inf = np.inf
    x = np.array([[-inf, -inf, -inf], [1.0, np.nan, 2.0], [0.0, -inf, 0.0], [inf, 1.0, 2.0], [60.0, -60.0, 0.0]]).astype(dt)
    y = host(lc.softmax(x, device=device)).astype(np.float64)
    assert np.all(np.isnan(y[0])) and np.all(np.isnan(y[1])) and np.all(np.isnan(y[3]))  # as torch
    assert np.array_equal(y[2], [0.5, 0.0, 0.5])
    assert abs(y[4, 0] - 1.0) <= unit_roundoff(dtype) and 0.0 <= y[4, 1] < 1e-30


# ---- silu / silu_mul -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_silu(rng, device, dtype, shape):
    dt = DT[dtype]
    x, b = rand(rng, shape, dt, 6.0), rand(rng, shape, dt)
    tol = 4 * unit_roundoff(dtype)
    check(lc.silu(x, device=device), ref_silu(x), dtype, tol)
    check(lc.silu_mul(x, b, device=device), ref_silu_mul(x, b), dtype, tol)
    out = poison(shape, dtype)
    assert lc.silu_into(x, out, device=device) is out
    check(out, ref_silu(x), dtype, tol)
    out = poison(shape, dtype)
    assert lc.silu_mul_into(x, b, out, device=device) is out
    check(out, ref_silu_mul(x, b), dtype, tol)
    for alias in (0, 1):  # out exactly a, then exactly b
        a2, b2 = x.copy(), b.copy()
        lc.silu_mul_into(a2, b2, (a2, b2)[alias], device=device)
        check((a2, b2)[alias], ref_silu_mul(x, b), dtype, tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_silu_extremes(device, dtype):
    dt = DT[dtype]
    x = np.array([-200.0, -88.5, -20.0, -0.0, 0.0, 1e-3, 20.0, 88.5, 200.0, np.nan, np.inf, -np.inf]).astype(dt)
    y = host(lc.silu(x, device=device)).astype(np.float64)
    ref = ref_silu(x)
    assert np.isnan(y[9]) and y[10] == np.inf and np.isnan(y[11])  # -inf * sigmoid(-inf): NaN, as torch
    fin = np.isfinite(ref) & (np.abs(ref) > 1e-30)
    assert np.all(np.abs(y[fin] - ref[fin]) <= 4 * unit_roundoff(dtype) * np.abs(ref[fin]) + tiny(dtype))


# ---- add / mul with broadcasting -------------------------------------------------------------------------

BCAST = [((7, 65), (7, 65)), ((1000, 63), (63,)), ((63,), (7, 63)), ((5, 1), (1, 9)), ((2, 3, 4, 5), (3, 1, 5)),
         ((1,), (3, 4097)), ((4, 1, 6), (1, 7, 1))]


@pytest.mark.parametrize("dtype", DTYPES + ["float64"])
@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("shapes", BCAST)
def test_add_mul_broadcast(rng, device, dtype, op, shapes):
    dt = DT.get(dtype, np.dtype(np.float64))
    a, b = rand(rng, shapes[0], dt), rand(rng, shapes[1], dt)
    fn, fn_into = getattr(lc, op), getattr(lc, op + "_into")
    ref = getattr(np, op if op == "add" else "multiply")(a.astype(np.float64), b.astype(np.float64))
    u = 2.0 ** -53 if dtype == "float64" else unit_roundoff(dtype)

    def ok(y):
        y = host(y)
        assert y.dtype == dt and y.shape == ref.shape
        assert np.all(np.abs(y.astype(np.float64) - ref) <= 1.01 * u * np.abs(ref) + tiny(dtype))

    ok(fn(a, b, device=device))
    out = np.full(ref.shape, np.nan, dt)
    assert fn_into(a, b, out, device=device) is out
    ok(out)
    if a.shape == ref.shape:  # out exactly a
        a2 = a.copy()
        fn_into(a2, b, a2, device=device)
        ok(a2)


def test_add_nan_propagates(device):
    a = np.zeros((3, 4), np.float32)
    b = np.array([1.0, np.nan, 2.0, np.inf], np.float32)
    y = lc.add(a, b, device=device)
    assert np.all(np.isnan(y[:, 1])) and np.all(y[:, 3] == np.inf) and np.all(y[:, 0] == 1)
    z = lc.mul(np.full((3, 4), np.inf, np.float32), np.zeros(4, np.float32), device=device)
    assert np.all(np.isnan(z))


# ---- rope ------------------------------------------------------------------------------------------------


def positions_for(rng, b, s, start=0, batched=True, dtype=np.int64):
    if batched:
        return (start + rng.integers(0, 64, size=(b, s))).astype(dtype)
    return (start + np.arange(s)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [
    dict(shape=(2, 4, 7, 64), batched=True),
    dict(shape=(2, 4, 7, 64), batched=False, rotary_dim=32, theta=500000.0),
    dict(shape=(3, 5, 16), batched=False, scaling={"rope_type": "linear", "factor": 4.0}),
    dict(shape=(9, 128), batched=False, scaling=LLAMA3, theta=500000.0, start=100000),
    dict(shape=(1, 2, 1, 128), batched=True, scaling=LLAMA3, theta=500000.0, start=3),  # decode step
    dict(shape=(1, 32, 1, 64), batched=True, start=900),  # LLaMA 1.1B decode q
    dict(shape=(3, 2, 320), batched=False, rotary_dim=288, start=7),  # rotary_dim > 256: no frequency table
])
def test_rope(rng, device, dtype, case):
    dt = DT[dtype]
    shape = case["shape"]
    x = rand(rng, shape, dt)
    b = shape[0] if len(shape) == 4 else 1
    pos = positions_for(rng, b, shape[-2], case.get("start", 0), case["batched"],
                        np.int32 if case.get("start", 0) < 1000 else np.int64)
    kw = {k: case[k] for k in ("rotary_dim", "theta", "scaling") if k in case}
    want = ref_rope(x, pos, **kw)
    tol = 2e-6 if dtype == "float32" else 2 * unit_roundoff(dtype)
    check(lc.rope(x, pos, device=device, **kw), want, dtype, tol)
    out = poison(shape, dtype)
    assert lc.rope_into(x, pos, out, device=device, **kw) is out
    check(out, want, dtype, tol)
    y = x.copy()
    assert lc.rope_into(y, pos, y, device=device, **kw) is y  # in place
    check(y, want, dtype, tol)
    rd = kw.get("rotary_dim", shape[-1])
    if rd < shape[-1]:  # pass-through channels are copied bit for bit
        assert np.array_equal(host(out)[..., rd:].view(np.uint8), x[..., rd:].view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_decode_view_of_qkv_row(rng, device, dtype):
    # one decode token: q [1, 32, 1, 64] and k [1, 4, 1, 64] read in place from a fused qkv row, then a call
    # with other options (the CUDA launcher's frequency table follows them)
    dt = DT[dtype]
    row = rand(rng, (1, 1, (32 + 2 * 4) * 64), dt)
    q = row[:, :, :32 * 64].reshape(1, 1, 32, 64).transpose(0, 2, 1, 3)
    k = row[:, :, 32 * 64:36 * 64].reshape(1, 1, 4, 64).transpose(0, 2, 1, 3)
    pos = np.array([[517]], np.int64)
    tol = 2e-6 if dtype == "float32" else 2 * unit_roundoff(dtype)
    for kw in ({}, {"theta": 500000.0}, {"scaling": LLAMA3}, {}):
        check(lc.rope(q, pos, device=device, **kw), ref_rope(np.ascontiguousarray(q), pos, **kw), dtype, tol)
        check(lc.rope(k, pos, device=device, **kw), ref_rope(np.ascontiguousarray(k), pos, **kw), dtype, tol)


def test_rope_large_positions_accurate(device):
    # pos up to 1e6: the angle is formed in float64; float32 cos/sin of the reduced angle keeps ~1e-6
    x = np.ones((4, 128), np.float32)
    pos = np.array([0, 99999, 100000, 1000000], np.int64)
    y = lc.rope(x, pos, device=device)
    want = ref_rope(x, pos)
    assert np.max(np.abs(y - want)) < 2e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_strided_views(rng, device, dtype):
    dt = DT[dtype]
    bsz, s, h, d = 2, 6, 3, 32
    packed = rand(rng, (bsz, s, 3, h, d), dt)  # a fused qkv projection, [B, S, 3, H, D]
    q = packed[:, :, 0].transpose(0, 2, 1, 3)  # [B, H, S, D] NumPy view
    pos = positions_for(rng, bsz, s)
    want = ref_rope(np.ascontiguousarray(q), pos)
    check(lc.rope(q, pos, device=device), want, dtype, 2e-6 if dtype == "float32" else None)
    # a TensorView over the packed storage (k: offset h*d) is read in place on its device; a Tensor comes back
    tp = lc.Tensor(packed, device=device, dtype=dtype)
    view = tp.view((bsz, h, s, d), (s * 3 * h * d, d, 3 * h * d, 1), offset=h * d)
    assert not view.is_contiguous
    want_k = ref_rope(np.ascontiguousarray(packed[:, :, 1].transpose(0, 2, 1, 3)), pos)
    y = lc.rope(view, pos, device=device)
    assert isinstance(y, (lc.Tensor, lc.TensorView)) and y.device == device
    check(y, want_k, dtype, 2e-6 if dtype == "float32" else None)
    assert np.array_equal(tp.numpy().view(np.uint8), packed.view(np.uint8))  # the input is untouched


def test_rope_inv_freq_llama3_matches_hf_formula():
    # the three bands of the llama3 rule: high frequencies unchanged, low ones / factor, a smooth middle
    inv = ref_rope_inv_freq(128, 500000.0)
    got = ref_rope_inv_freq(128, 500000.0, LLAMA3)
    wavelen = 2 * math.pi / inv
    assert np.allclose(got[wavelen < 8192 / 4], inv[wavelen < 8192 / 4])
    assert np.allclose(got[wavelen > 8192], inv[wavelen > 8192] / 8)
    mid = (wavelen >= 8192 / 4) & (wavelen <= 8192)
    assert mid.any() and np.all(got[mid] < inv[mid]) and np.all(got[mid] > inv[mid] / 8)


def test_tensor_inputs(rng, device):
    x = rand(rng, (2, 2, 5, 16), np.float32)
    pos = np.arange(10, dtype=np.int32).reshape(2, 5)
    tx = lc.Tensor(x, device=device)
    for y, want in ((lc.rms_norm(tx, device=device), ref_rms_norm(x)), (lc.softmax(tx, device=device), ref_softmax(x)),
                    (lc.silu_mul(tx, tx, device=device), ref_silu_mul(x, x)),
                    (lc.add(tx, x[0, 0, 0], device=device), x.astype(np.float64) + x[0, 0, 0])):
        assert isinstance(y, (lc.Tensor, lc.TensorView)) and y.device == device
        check(y, want, "float32", 1e-6)
    y = lc.rope(tx, pos, device=device)  # a Tensor in, a Tensor out
    assert isinstance(y, (lc.Tensor, lc.TensorView))
    check(y, ref_rope(x, pos), "float32", 2e-6)


# ---- bad inputs ------------------------------------------------------------------------------------------


def test_mixed_dtypes_refused(rng):
    a16, a32 = rand(rng, (4, 8), np.float16), rand(rng, (4, 8), np.float32)
    for call in (lambda: lc.add(a16, a32), lambda: lc.silu_mul(a32, a16), lambda: lc.rms_norm(a16, a32[0]),
                 lambda: lc.mul(a16, a32[0])):
        with pytest.raises(TypeError) as e:
            call()
        assert "float16" in str(e.value) and "float32" in str(e.value)


def test_bad_shapes_refused(rng):
    x = rand(rng, (4, 8), np.float32)
    with pytest.raises(ValueError, match="weight"):
        lc.rms_norm(x, np.ones(7, np.float32))
    with pytest.raises(ValueError, match="b"):
        lc.add(x, np.ones((3, 8), np.float32))
    with pytest.raises(ValueError, match="b"):
        lc.silu_mul(x, np.ones((4, 7), np.float32))
    with pytest.raises(ValueError, match="4 dimensions"):
        lc.add(np.ones((1, 1, 1, 1, 2), np.float32), np.ones(2, np.float32))
    with pytest.raises(ValueError, match="out"):
        lc.softmax_into(x, np.zeros((4, 9), np.float32))
    with pytest.raises(ValueError, match="out"):  # out may not be a broadcast input
        lc.add_into(x[0].copy(), x, x[0].copy())
    with pytest.raises(ValueError, match="positions"):
        lc.rope(x, np.arange(3))
    with pytest.raises(ValueError, match="rotary_dim"):
        lc.rope(x, np.arange(4), rotary_dim=3)
    with pytest.raises(ValueError, match="x"):
        lc.rope(np.ones(8, np.float32), np.arange(1))
    with pytest.raises(TypeError, match="positions"):
        lc.rope(x, np.arange(4, dtype=np.float32))
    with pytest.raises(ValueError, match="scaling"):
        lc.rope(x, np.arange(4), scaling={"rope_type": "yarn", "factor": 2.0})
    with pytest.raises(ValueError, match="low_freq_factor"):
        lc.rope(x, np.arange(4), scaling={"rope_type": "llama3", "factor": 8.0})
    with pytest.raises(ValueError, match="high_freq_factor"):
        lc.rope(x, np.arange(4), scaling=dict(LLAMA3, high_freq_factor=0.5))
    with pytest.raises(ValueError, match="theta"):
        lc.rope(x, np.arange(4), theta=-1.0)
    with pytest.raises(ValueError, match="eps"):
        lc.rms_norm(x, eps=0.0)


def test_nothing_written_on_error(rng):
    x = rand(rng, (4, 8), np.float32)
    out = np.full((4, 8), 7.0, np.float32)
    with pytest.raises(ValueError):
        lc.rope_into(x, np.arange(4), out, rotary_dim=10)
    with pytest.raises(TypeError):
        lc.silu_mul_into(x, x.astype(np.float16), out)
    assert np.all(out == 7.0)


# ---- graph -----------------------------------------------------------------------------------------------


def test_graph_ops(rng):
    g = lc.Graph()
    x, w, b = g.input("x", (5, 16)), g.input("w", (16,)), g.input("bias", (16,))
    h = g.rms_norm(x, w, eps=1e-5)
    y = g.silu_mul(h, g.softmax(h))
    z = g.mul(g.add_bcast(y, b), g.silu(y))
    g.output(z)
    xv, wv, bv = rand(rng, (5, 16), np.float32), rand(rng, 16, np.float32), rand(rng, 16, np.float32)
    (got,) = g.run(xv, wv, bv, device="cpu")
    hh = ref_rms_norm(xv, wv, 1e-5)
    yy = ref_silu_mul(hh, ref_softmax(hh))
    want = (yy + bv.astype(np.float64)) * ref_silu(yy)
    assert rel_err(got, want) < 1e-5
