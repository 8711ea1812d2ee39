"""Elementwise and row ops (docs/python_api.md): vector_add, matrix_sub, matrix_div, relu, gelu (erf and
tanh forms), layer_norm (with/without gamma and beta, several eps), and their *_into variants.

Against float64 NumPy references on random inputs with awkward sizes; float64 compute and output for
vector_add / matrix_sub / matrix_div / relu when an input is float64; float32-only gelu / layer_norm
convert float64 inputs and return float32 (float16/bfloat16: test_dtype_ops.py); NaN-poisoned outs; in-place outs (out is exactly
an input) for the elementwise ops; converted layouts; inputs never modified; device fallback, auto and
strict mode.
"""
import numpy as np
import pytest

import lightning_core as lc
from conftest import FALLBACK, FALLBACK_DEVICE, unavailable_devices


SIZES = [1, 7, 33, 255, 1023, 4096]
SHAPES = [(1,), (7,), (33,), (255,), (1023,), (4096,), (7, 33), (3, 5, 17), (2, 1, 3, 255)]
F64_OPS_DTYPES = [np.float32, np.float64]



def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def nonzero(rng, shape, dtype=np.float32):
    # Divisors bounded away from zero: |x| in [0.5, 3.5).
    return (rng.choice([-1.0, 1.0], size=shape) * (0.5 + 3.0 * rng.random(shape))).astype(dtype)


def tol(dtype):
    return 1e-12 if np.dtype(dtype) == np.float64 else 1e-5


# ---- vector_add ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", F64_OPS_DTYPES)
def test_vector_add(rng, rel_err, poison, device, shape, dtype):
    a, b = rand(rng, shape, dtype), rand(rng, shape, dtype)
    a0, b0 = a.copy(), b.copy()
    want = a.astype(np.float64) + b
    y = lc.vector_add(a, b, device)
    assert y.shape == shape and y.dtype == dtype
    assert rel_err(y, want) < tol(dtype)
    out = poison(shape, dtype)
    assert lc.vector_add_into(a, b, out, device) is out
    assert rel_err(out, want) < tol(dtype)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


@pytest.mark.parametrize("dtype", F64_OPS_DTYPES)
def test_vector_add_in_place(rng, rel_err, dtype):
    a, b = rand(rng, (5, 33), dtype), rand(rng, (5, 33), dtype)
    want = a.astype(np.float64) + b
    a1 = a.copy()
    assert lc.vector_add_into(a1, b, a1) is a1  # out is exactly a
    assert rel_err(a1, want) < tol(dtype)
    b1 = b.copy()
    lc.vector_add_into(a, b1, b1)  # out is exactly b
    assert rel_err(b1, want) < tol(dtype)
    c = a.copy()
    lc.vector_add_into(c, c, c)  # all three the same array
    assert rel_err(c, 2.0 * a.astype(np.float64)) < tol(dtype)


@pytest.mark.parametrize(
    "da,db,want",
    [(np.float32, np.float64, np.float64), (np.float64, np.float32, np.float64), (np.float32, np.float32, np.float32)],
)  # float16/bfloat16 (the table decides their compute dtype; mixes are TypeError): tests/python/test_dtype_ops.py
def test_vector_add_mixed_dtypes(rng, rel_err, poison, da, db, want):
    a, b = rand(rng, 255, da), rand(rng, 255, db)
    y = lc.vector_add(a, b)
    assert y.dtype == want
    ref = a.astype(np.float64) + b.astype(np.float64)
    assert rel_err(y, ref) < tol(want)
    out = poison(255, want)
    lc.vector_add_into(a, b, out)
    assert rel_err(out, ref) < tol(want)


# ---- matrix_sub / matrix_div -----------------------------------------------------------------------

RC = [(1, 1), (1, 7), (7, 1), (33, 255), (255, 33), (1, 4096), (1023, 3)]


@pytest.mark.parametrize("rows,cols", RC)
@pytest.mark.parametrize("dtype", F64_OPS_DTYPES)
@pytest.mark.parametrize("op", ["sub", "div"])
def test_matrix_sub_div(rng, rel_err, poison, device, rows, cols, dtype, op):
    fn, fn_into = (lc.matrix_sub, lc.matrix_sub_into) if op == "sub" else (lc.matrix_div, lc.matrix_div_into)
    a = rand(rng, (rows, cols), dtype)
    b = nonzero(rng, (rows, cols), dtype)
    a0, b0 = a.copy(), b.copy()
    want = a.astype(np.float64) - b if op == "sub" else a.astype(np.float64) / b
    y = fn(a, b, rows, cols, device)
    assert y.shape == (rows, cols) and y.dtype == dtype
    assert rel_err(y, want) < tol(dtype)
    out = poison((rows, cols), dtype)
    assert fn_into(a, b, out, rows, cols, device) is out
    assert rel_err(out, want) < tol(dtype)
    # Flat arrays (rows*cols elements) give the same [rows, cols] result; a flat out works too.
    y = fn(a.ravel(), b.ravel(), rows, cols, device)
    assert y.shape == (rows, cols)
    assert rel_err(y, want) < tol(dtype)
    flat = poison(rows * cols, dtype)
    fn_into(a.ravel(), b.ravel(), flat, rows, cols, device)
    assert rel_err(flat.reshape(rows, cols), want) < tol(dtype)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


@pytest.mark.parametrize("op", ["sub", "div"])
def test_matrix_ops_rows_cols_decide_the_shape(rng, rel_err, poison, op):
    fn, fn_into = (lc.matrix_sub, lc.matrix_sub_into) if op == "sub" else (lc.matrix_div, lc.matrix_div_into)
    a, b = rand(rng, (4, 6)), nonzero(rng, (4, 6))
    want = a.astype(np.float64) - b if op == "sub" else a.astype(np.float64) / b
    for rows, cols in [(3, 8), (24, 1), (1, 24), (2, 12)]:
        y = fn(a, b, rows, cols)
        assert y.shape == (rows, cols)
        assert rel_err(y, want.reshape(rows, cols)) < 1e-5
    out = poison((6, 4))  # any out with rows*cols elements
    fn_into(a, b, out, 4, 6)
    assert rel_err(out.reshape(4, 6), want) < 1e-5
    y = fn(a=a, b=b, rows=8, cols=3, device="cpu")
    assert y.shape == (8, 3)


@pytest.mark.parametrize("op", ["sub", "div"])
def test_matrix_ops_in_place_and_mixed(rng, rel_err, op):
    fn_into = lc.matrix_sub_into if op == "sub" else lc.matrix_div_into
    fn = lc.matrix_sub if op == "sub" else lc.matrix_div
    a, b = rand(rng, (9, 7)), nonzero(rng, (9, 7))
    want = a.astype(np.float64) - b if op == "sub" else a.astype(np.float64) / b
    a1 = a.copy()
    assert fn_into(a1, b, a1, 9, 7) is a1
    assert rel_err(a1, want) < 1e-5
    b1 = b.copy()
    fn_into(a, b1, b1, 9, 7)
    assert rel_err(b1, want) < 1e-5
    y = fn(a, b.astype(np.float64), 9, 7)
    assert y.dtype == np.float64
    assert rel_err(y, want) < 1e-12
    with pytest.raises(TypeError, match="a of dtype float16 and b of dtype float32"):
        fn(a.astype(np.float16), b, 9, 7)  # float16 never mixes with another dtype


def test_matrix_div_by_zero_follows_ieee(rng):
    a = np.array([[1.0, -2.0, 0.0, 3.5]], np.float32)
    b = np.array([[0.0, 0.0, 0.0, 2.0]], np.float32)
    y = lc.matrix_div(a, b, 1, 4)
    assert y[0, 0] == np.inf and y[0, 1] == -np.inf and np.isnan(y[0, 2]) and y[0, 3] == 1.75


# ---- relu ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", F64_OPS_DTYPES)
def test_relu(rng, rel_err, ref, poison, device, shape, dtype):
    x = rand(rng, shape, dtype)
    x.flat[0] = -abs(x.flat[0]) - 0.1  # at least one negative and, for size > 1, one positive
    if x.size > 1:
        x.flat[-1] = abs(x.flat[-1]) + 0.1
    x0 = x.copy()
    want = ref.relu(x)
    y = lc.relu(x, device)
    assert y.shape == shape and y.dtype == dtype
    assert np.array_equal(y, np.maximum(x, 0)), "relu is exact"
    if x.size > 1:
        assert rel_err(y, want) < tol(dtype)
    out = poison(shape, dtype)
    assert lc.relu_into(x, out, device) is out
    assert np.array_equal(out, np.maximum(x, 0))
    assert np.array_equal(x, x0)
    lc.relu_into(x, x, device)  # in place
    assert np.array_equal(x, np.maximum(x0, 0))


def test_relu_layouts(rng):  # float16/bfloat16: test_dtype_ops.py
    x = rand(rng, (12, 20))
    for v in (x.T, x[::2, 3:], np.asfortranarray(x), x.astype(">f4"), x[::-1]):
        v0 = v.copy()
        y = lc.relu(v)
        assert y.shape == v.shape and y.dtype == np.float32
        assert np.array_equal(y, np.maximum(v.astype(np.float32), 0))
        assert np.array_equal(v, v0)


# ---- gelu ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(rng, rel_err, ref, poison, device, shape, approximate):
    x = rand(rng, shape) * 3.0
    x0 = x.copy()
    want = ref.gelu(x, approximate)
    y = lc.gelu(x, approximate, device)
    assert y.shape == shape and y.dtype == np.float32
    assert rel_err(y, want) < 1e-5
    out = poison(shape)
    assert lc.gelu_into(x, out, approximate, device) is out
    assert rel_err(out, want) < 1e-5
    assert np.array_equal(x, x0)
    lc.gelu_into(x, x, approximate=approximate, device=device)  # in place
    assert rel_err(x, want) < 1e-5


def test_gelu_default_is_erf_form_and_forms_differ(rng, rel_err, ref):
    x = rand(rng, 4096) * 3.0
    # The two forms differ by ~1e-4 relative on these inputs: a kernel returning the wrong one fails.
    assert rel_err(ref.gelu(x, "tanh"), ref.gelu(x, "none")) > 5e-5
    y = lc.gelu(x)
    assert rel_err(y, ref.gelu(x, "none")) < 1e-5
    assert rel_err(y, ref.gelu(x, "tanh")) > 5e-5
    y = lc.gelu(x, approximate="tanh")
    assert rel_err(y, ref.gelu(x, "tanh")) < 1e-5


def test_gelu_extreme_values(ref):
    # Large |x| must not produce inf/NaN (x**3 overflows float32; tanh via exp gives inf/inf).
    x = np.array([-1e38, -1e4, -60.0, -10.0, -1e-8, 0.0, 1e-8, 10.0, 60.0, 1e4, 1e38], np.float32)
    for approximate in ("none", "tanh"):
        y = lc.gelu(x, approximate)
        want = ref.gelu(x, approximate)
        assert np.isfinite(y).all(), f"{approximate}: {y}"
        assert np.allclose(y, want, rtol=1e-5, atol=1e-6), f"{approximate}: {y} vs {want}"


@pytest.mark.parametrize("dtype", [np.float64])  # float16/bfloat16: test_dtype_ops.py (table-driven)
def test_gelu_converts_float64_and_float16(rng, rel_err, ref, poison, dtype):
    x = (rand(rng, (7, 33)) * 2).astype(dtype)
    x0 = x.copy()
    for approximate in ("none", "tanh"):
        y = lc.gelu(x, approximate)
        assert y.dtype == np.float32
        assert rel_err(y, ref.gelu(x, approximate)) < 1e-5
        out = poison((7, 33))
        lc.gelu_into(x, out, approximate)
        assert rel_err(out, ref.gelu(x, approximate)) < 1e-5
    assert np.array_equal(x, x0) and x.dtype == dtype


def test_gelu_layouts(rng, rel_err, ref):
    x = rand(rng, (16, 24))
    for v in (x.T, x[1::3, ::2], np.asfortranarray(x), x.astype(">f4"), x[:, ::-1]):
        v0 = v.copy()
        assert rel_err(lc.gelu(v), ref.gelu(v)) < 1e-5
        assert rel_err(lc.gelu(v, "tanh"), ref.gelu(v, "tanh")) < 1e-5
        assert np.array_equal(v, v0)


# ---- layer_norm ------------------------------------------------------------------------------------

LN_SHAPES = [(7,), (1, 7), (33, 255), (3, 1023), (2, 4096), (5, 7, 33), (2, 3, 4, 17), (255, 2)]


@pytest.mark.parametrize("shape", LN_SHAPES)
@pytest.mark.parametrize("affine", ["none", "gamma", "beta", "both"])
def test_layer_norm(rng, rel_err, ref, poison, device, shape, affine):
    d = shape[-1]
    x = rand(rng, shape) * 2.0 + 0.5
    gamma = rand(rng, d) if affine in ("gamma", "both") else None
    beta = rand(rng, d) if affine in ("beta", "both") else None
    saved = [t.copy() for t in (x, gamma, beta) if t is not None]
    want = ref.layer_norm(x, gamma, beta)
    y = lc.layer_norm(x, gamma, beta, 1e-5, device)
    assert y.shape == shape and y.dtype == np.float32
    assert rel_err(y, want) < 1e-5
    out = poison(shape)
    assert lc.layer_norm_into(x, out, gamma, beta, 1e-5, device) is out
    assert not np.isnan(out).any()
    assert rel_err(out, want) < 1e-5
    for t, t0 in zip([t for t in (x, gamma, beta) if t is not None], saved):
        assert np.array_equal(t, t0)


@pytest.mark.parametrize("eps", [1e-12, 1e-5, 1e-3, 0.5, 4.0])
def test_layer_norm_eps_is_used(rng, rel_err, ref, poison, eps):
    # Rows with a small variance make eps matter: eps=0.5 and 4.0 change the result a lot.
    x = rand(rng, (9, 33)) * 0.3 + 2.0
    gamma, beta = rand(rng, 33), rand(rng, 33)
    want = ref.layer_norm(x, gamma, beta, eps)
    y = lc.layer_norm(x, gamma, beta, eps=eps)
    assert rel_err(y, want) < 1e-5
    out = poison((9, 33))
    lc.layer_norm_into(x, out, gamma=gamma, beta=beta, eps=eps)
    assert rel_err(out, want) < 1e-5
    if eps >= 0.5:
        assert rel_err(ref.layer_norm(x, gamma, beta, 1e-5), want) > 1e-2  # eps changes the answer


def test_layer_norm_default_eps_and_keywords(rng, rel_err, ref):
    x = rand(rng, (4, 16)) * 0.01  # variance ~1e-4: eps=1e-5 visibly matters
    want = ref.layer_norm(x, eps=1e-5)
    assert rel_err(lc.layer_norm(x), want) < 1e-5
    assert rel_err(lc.layer_norm(x, None, None), want) < 1e-5
    assert rel_err(ref.layer_norm(x, eps=1e-9), want) > 1e-2
    beta = rand(rng, 16)
    assert rel_err(lc.layer_norm(x, beta=beta, device="cpu"), ref.layer_norm(x, None, beta)) < 1e-5


def test_layer_norm_constant_rows(rng):
    # Zero variance: the normalised value is 0 (no division by zero), so the output is beta.
    x = np.repeat(rand(rng, (5, 1)), 8, axis=1)
    beta = rand(rng, 8)
    gamma = rand(rng, 8)
    y = lc.layer_norm(x, gamma, beta)
    assert np.isfinite(y).all()
    # (a mean that rounds by one ulp leaves ~3e-5 after normalisation: hence atol 1e-4)
    assert np.allclose(y, np.broadcast_to(beta, (5, 8)), rtol=1e-5, atol=1e-4)
    y = lc.layer_norm(x[:, :1], gamma[:1], beta[:1])  # d == 1
    assert np.allclose(y, np.broadcast_to(beta[:1], (5, 1)), rtol=1e-5, atol=1e-4)


def test_layer_norm_large_offset_is_stable(rng, rel_err, ref):
    # Mean 1000, std 1: a one-pass E[x^2]-E[x]^2 variance in float32 loses everything.
    # Float32 accumulation of a mean of ~1000 costs up to ~1e-4 relative; one-pass costs percents.
    x = rand(rng, (6, 255)) + 1000.0
    assert rel_err(lc.layer_norm(x), ref.layer_norm(x)) < 1e-3


@pytest.mark.parametrize("dtype", [np.float64])  # float16/bfloat16: test_dtype_ops.py (table-driven)
def test_layer_norm_converts_float64_and_float16(rng, rel_err, ref, poison, dtype):
    x = rand(rng, (5, 40), dtype)
    gamma, beta = rand(rng, 40, dtype), rand(rng, 40, dtype)
    y = lc.layer_norm(x, gamma, beta)
    assert y.dtype == np.float32
    assert rel_err(y, ref.layer_norm(x, gamma, beta)) < 1e-5
    out = poison((5, 40))
    lc.layer_norm_into(x, out, gamma, beta)
    assert rel_err(out, ref.layer_norm(x, gamma, beta)) < 1e-5


def test_layer_norm_layouts(rng, rel_err, ref):
    x = rand(rng, (18, 20))
    g = rand(rng, 40)
    for v in (x.T, x[::2, 1:], np.asfortranarray(x), x.astype(">f4"), x[::-1, ::-1]):
        gamma = g[: v.shape[-1] * 2 : 2]  # strided gamma
        v0 = v.copy()
        assert rel_err(lc.layer_norm(v, gamma), ref.layer_norm(v, gamma)) < 1e-5
        assert np.array_equal(v, v0)


# ---- layouts and inputs untouched for the binary ops -----------------------------------------------


@pytest.mark.parametrize("dtype", F64_OPS_DTYPES)
def test_binary_ops_converted_layouts(rng, rel_err, dtype):
    A, B = rand(rng, (12, 20), dtype), nonzero(rng, (12, 20), dtype)
    views = {
        "transposed": (A.T, B.T),
        "sliced": (A[::2, 1:11], B[1::2, :10]),
        "fortran": (np.asfortranarray(A), np.asfortranarray(B)),
        "byteswapped": (A.astype(A.dtype.newbyteorder()), B.astype(B.dtype.newbyteorder())),
        "reversed": (A[::-1], B[:, ::-1]),
    }
    for name, (a, b) in views.items():
        a0, b0 = a.copy(), b.copy()
        assert a.shape == b.shape
        y = lc.vector_add(a, b)
        assert y.dtype == dtype and y.shape == a.shape, name
        assert rel_err(y, a.astype(np.float64) + b.astype(np.float64)) < tol(dtype), name
        rows, cols = a.shape
        want_sub = (a.astype(np.float64) - b.astype(np.float64))
        want_div = (a.astype(np.float64) / b.astype(np.float64))
        assert rel_err(lc.matrix_sub(a, b, rows, cols), want_sub) < tol(dtype), name
        assert rel_err(lc.matrix_div(a, b, rows, cols), want_div) < tol(dtype), name
        assert np.array_equal(a, a0) and np.array_equal(b, b0), name


# ---- device policy ---------------------------------------------------------------------------------


def _calls(rng, ref):
    """(name, call(device) -> result, float64 reference) for every elementwise op and its _into form."""
    a, b = rand(rng, (7, 33)), nonzero(rng, (7, 33))
    g, be = rand(rng, 33), rand(rng, 33)
    a64 = a.astype(np.float64)

    def out(dt=np.float32):
        return np.full((7, 33), np.nan, dt)

    return [
        ("vector_add", lambda d: lc.vector_add(a, b, d), a64 + b),
        ("vector_add_into", lambda d: lc.vector_add_into(a, b, out(), d), a64 + b),
        ("matrix_sub", lambda d: lc.matrix_sub(a, b, 7, 33, d), a64 - b),
        ("matrix_sub_into", lambda d: lc.matrix_sub_into(a, b, out(), 7, 33, d), a64 - b),
        ("matrix_div", lambda d: lc.matrix_div(a, b, 7, 33, d), a64 / b),
        ("matrix_div_into", lambda d: lc.matrix_div_into(a, b, out(), 7, 33, d), a64 / b),
        ("relu", lambda d: lc.relu(a, d), ref.relu(a)),
        ("relu_into", lambda d: lc.relu_into(a, out(), d), ref.relu(a)),
        ("relu float64", lambda d: lc.relu(a64, d), ref.relu(a)),
        ("gelu tanh", lambda d: lc.gelu(a, "tanh", d), ref.gelu(a, "tanh")),
        ("gelu_into none", lambda d: lc.gelu_into(a, out(), "none", d), ref.gelu(a, "none")),
        ("layer_norm", lambda d: lc.layer_norm(a, g, be, 1e-5, d), ref.layer_norm(a, g, be, 1e-5)),
        ("layer_norm_into", lambda d: lc.layer_norm_into(a, out(), g, be, 1e-5, d), ref.layer_norm(a, g, be, 1e-5)),
    ]


@pytest.mark.parametrize("dev", unavailable_devices())
def test_elementwise_unavailable_device_falls_back(rng, rel_err, ref, strict_off, dev):
    for name, call, want in _calls(rng, ref):
        y = call(dev)
        assert rel_err(y, want) < 1e-5, name
        d = lc.last_dispatch()
        assert isinstance(d["op"], str) and d["op"], (name, d)
        assert (d["requested"], d["selected"], d["reason"]) == (dev, FALLBACK_DEVICE, FALLBACK), (name, d)


def test_elementwise_auto_device(rng, rel_err, ref):
    allowed = ["cpu", "cuda"] if lc.cuda_available() else ["cpu"]
    for name, call, want in _calls(rng, ref):
        assert rel_err(call("auto"), want) < 1e-5, name
        d = lc.last_dispatch()
        assert d["requested"] == "auto" and d["reason"] == "auto_selected", (name, d)
        assert d["selected"] in allowed


@pytest.mark.parametrize("dev", unavailable_devices())
def test_elementwise_strict_mode(rng, poison, strict_off, dev):
    a, b = rand(rng, 33), nonzero(rng, 33)
    lc.set_strict_device(True)
    try:
        into_calls = [
            lambda o: lc.vector_add_into(a, b, o, dev),
            lambda o: lc.matrix_sub_into(a, b, o, 3, 11, dev),
            lambda o: lc.matrix_div_into(a, b, o, 3, 11, dev),
            lambda o: lc.relu_into(a, o, dev),
            lambda o: lc.gelu_into(a, o, "none", dev),
            lambda o: lc.layer_norm_into(a, o, None, None, 1e-5, dev),
        ]
        for call in into_calls:
            out = poison(33)
            with pytest.raises(lc.DeviceUnavailableError, match=dev):
                call(out)
            assert np.isnan(out).all()
        for call in (
            lambda: lc.vector_add(a, b, dev),
            lambda: lc.matrix_sub(a, b, 3, 11, dev),
            lambda: lc.matrix_div(a, b, 3, 11, dev),
            lambda: lc.relu(a, dev),
            lambda: lc.gelu(a, "tanh", dev),
            lambda: lc.layer_norm(a, None, None, 1e-5, dev),
        ):
            with pytest.raises(lc.DeviceUnavailableError):
                call()
        # In-place refusal leaves the input/out untouched too.
        a1 = a.copy()
        with pytest.raises(lc.DeviceUnavailableError):
            lc.relu_into(a1, a1, dev)
        assert np.array_equal(a1, a)
    finally:
        lc.set_strict_device(False)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_16bit_every_value(ref, poison, device, name, approximate):
    """Every finite float16 / bfloat16 value (65,536 bit patterns less NaN/inf, an awkward count): the stored
    result within one rounding (unit roundoff u, relative) plus 1e-4 relative of the float64 value, or an absolute
    floor: float16 half its smallest subnormal step (2^-25); bfloat16 1e-36 (both devices flush gelu's tail below
    that magnitude to -0, as elementwise_cpu.c and activation.cuh document). The CUDA kernel
    computes the 16-bit forms of activation.cuh (float32 error < 2e-5), the CPU its float32 form. NaN stays NaN."""
    from lightning_core.dtypes import numpy_dtype
    from lightning_core.testing import unit_roundoff
    dt = numpy_dtype(name)
    bits = np.arange(1 << 16, dtype=np.uint16).view(dt)
    with np.errstate(invalid="ignore"):  # the NaN patterns
        x = bits[np.isfinite(bits.astype(np.float64))]
    x64 = x.astype(np.float64)
    want = ref.gelu(x64, approximate)
    out = poison(x.shape, dt)
    lc.gelu_into(x, out, approximate, device)
    got = out.astype(np.float64)
    assert not np.isnan(got).any()
    atol = 2.0**-25 if name == "float16" else 1e-36
    excess = np.abs(got - want) - ((unit_roundoff(name) + 1e-4) * np.abs(want) + atol)
    worst = int(np.argmax(excess))
    assert excess[worst] <= 0, f"x={x64[worst]!r}: got {got[worst]!r}, want {want[worst]!r}"
    nan = lc.gelu(np.array([np.nan, 1.0], dt), approximate, device).astype(np.float64)
    assert np.isnan(nan[0]) and nan[1] > 0.8
