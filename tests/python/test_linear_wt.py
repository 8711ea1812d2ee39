"""Linear-family ops with w given as the transposed view of an [n, k] array (torch's Linear layout; how the model
runner holds its CUDA weights): linear (bias, activation, residual, out being the residual), layer_norm_linear,
rms_norm_linear and silu_mul_linear against the float64 reference on fresh random inputs, every dtype x device,
m in {1, 3, 8, 9, 33}, awkward k and n; outputs poisoned with NaN first; the CUDA routing (16-bit, m <= 8,
k % 8 == 0: the [n, k] GEMV, paths cuda_gemv_nk_* / cuda_norm_gemv_nk_* / cuda_swiglu_gemv_nk_* (the tile kernel and,
with LC_GEMV_RING=1, the ring kernel: *_nk_ring_*; each test runs both); otherwise cuBLASLt
reading the array transposed; the CPU gathers the view into a contiguous copy); NaN in x reaching exactly its row.

Tolerances: norm_linear_excess (test_norm_linear.py) and swiglu_excess (test_silu_mul_linear.py), imported; for
linear the same terms without a prologue: u|ref| (the output's rounding) + 1.2·2k·2^-24·(|x|@|w| + |b|) (float32
sums; activation Lipschitz <= 1.13) + 1e-6|ref| (float32 activation) + 2^-24(|y| + |res|) (the residual's float32
addition) + half a subnormal, and float32 GELU-tanh on CUDA 2^-16|pre| (cuBLASLt's fast tanh).
Spec: docs/python_api.md (linear: w may be any strided view). """
import numpy as np
import pytest

import lightning_core as lc
from test_norm_linear import norm_linear_excess
from test_silu_mul_linear import product_excess, swiglu_excess

ml_dtypes = pytest.importorskip("ml_dtypes")
DT = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
ACTS = ["none", "relu", "gelu", "gelu_tanh"]
SHAPES = [(1, 8, 24), (1, 64, 7), (3, 1000, 50), (8, 264, 264), (9, 64, 24), (33, 128, 40), (2, 65, 16), (1, 2048, 257)]


def f64(a):
    return np.asarray(a).astype(np.float64)


def linear_excess(z, x, w, bias, res, act, name, device):
    """product_excess with x exact (no prologue rounding). See the module docstring."""
    return product_excess(z, x, w, bias, res, act, name, device, staged=False)


def _t(a, device, name):
    return None if a is None else lc.Tensor(a, device=device, dtype=name)


def _wt(rng, k, n, dt, device, name):
    """w [k, n] as the transposed view of a fresh [n, k] array on the device, and w itself on the host."""
    w_nk = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(dt)
    return lc.transpose(_t(w_nk, device, name), 0, 1), w_nk.T


@pytest.fixture(autouse=True, params=["1", "0"], ids=["ring", "tiles"])
def gemv_ring(request, monkeypatch):
    """CUDA: each test with the ring kernel (LC_GEMV_RING=1, where its plan fits) and with the tile kernel
    (LC_GEMV_RING=0), whatever the default; the CPU runs once."""
    spec = getattr(request.node, "callspec", None)
    if (spec is None or spec.params.get("device") != "cuda") and request.param != "1":
        pytest.skip("LC_GEMV_RING selects a CUDA kernel")
    monkeypatch.setenv("LC_GEMV_RING", request.param)
    return request.param


def _gemv_nk(name, device, m, k, n):
    """The CUDA [n, k] GEMV takes the call (else cuBLASLt or, on the CPU, the gathered view)."""
    return device == "cuda" and name != "float32" and m <= 8 and k % 8 == 0 and k >= 8 and n > 1


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16"])
def test_linear_with_transposed_w(rng, device, name):
    dt = DT[name]
    for i, (m, k, n) in enumerate(SHAPES):
        act, with_bias, res_kind = ACTS[i % 4], i % 2 == 0, i % 3  # res: 0 none, 1 its own, 2 out itself
        x = rng.standard_normal((m, k)).astype(dt)
        wv, w = _wt(rng, k, n, dt, device, name)
        assert wv.shape == (k, n)
        bias = rng.standard_normal(n).astype(dt) if with_bias else None
        res = (rng.standard_normal((m, n)) * 2).astype(dt) if res_kind else None
        out = lc.Tensor(res if res_kind == 2 else np.full((m, n), np.nan, dt), device=device, dtype=name)
        r = out if res_kind == 2 else _t(res, device, name)
        lc.linear_into(_t(x, device, name), wv, out, bias=_t(bias, device, name), activation=act, device=device,
                       residual=r)
        path = lc.last_dispatch()["path"]
        assert ("gemv_nk" in path) == _gemv_nk(name, device, m, k, n), (m, k, n, path)
        ex = linear_excess(out.numpy(), x, w, bias, res, act, name, device)
        assert ex <= 1.0, (m, k, n, act, with_bias, res_kind, path, ex)


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
def test_norm_linear_with_transposed_w(rng, device, name, rms):
    dt = DT[name]
    for i, (m, k, n) in enumerate(SHAPES):
        act, with_bias = ACTS[i % 4], i % 2 == 1
        x = (rng.standard_normal((m, k)) * 2.0 + 3.0).astype(dt)
        wv, w = _wt(rng, k, n, dt, device, name)
        bias = rng.standard_normal(n).astype(dt) if with_bias else None
        gamma = (1.0 + 0.5 * rng.standard_normal(k)).astype(dt)
        beta = None if rms else rng.standard_normal(k).astype(dt)
        eps = 1e-6 if rms else 1e-5
        if rms:
            z = lc.rms_norm_linear(_t(x, device, name), wv, _t(bias, device, name), _t(gamma, device, name), eps, act,
                                   device)
        else:
            z = lc.layer_norm_linear(_t(x, device, name), wv, _t(bias, device, name), _t(gamma, device, name),
                                     _t(beta, device, name), eps, act, device)
        path = lc.last_dispatch()["path"]
        assert ("norm_gemv_nk" in path) == _gemv_nk(name, device, m, k, n), (m, k, n, path)
        ex = norm_linear_excess(z.numpy(), x, w, bias, gamma, beta, eps, act, name, rms, device)
        assert ex <= 1.0, (m, k, n, act, with_bias, path, ex)


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16"])
def test_silu_mul_linear_with_transposed_w(rng, device, name):
    dt = DT[name]
    for i, (m, k, n) in enumerate(SHAPES):
        act, with_bias, with_res = ACTS[i % 4], i % 2 == 0, i % 3 != 0
        gu = (rng.standard_normal((m, 2 * k)) * 2.0).astype(dt)
        wv, w = _wt(rng, k, n, dt, device, name)
        bias = rng.standard_normal(n).astype(dt) if with_bias else None
        res = (rng.standard_normal((m, n)) * 2).astype(dt) if with_res else None
        out = lc.Tensor(np.full((m, n), np.nan, dt), device=device, dtype=name)
        lc.silu_mul_linear_into(_t(gu, device, name), wv, out, _t(bias, device, name), act, device,
                                residual=_t(res, device, name))
        path = lc.last_dispatch()["path"]
        assert ("swiglu_gemv_nk" in path) == _gemv_nk(name, device, m, k, n), (m, k, n, path)
        ex = swiglu_excess(out.numpy(), gu, w, bias, res, act, name, device)
        assert ex <= 1.0, (m, k, n, act, with_bias, with_res, path, ex)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_transposed_w_nan_reaches_its_row(rng, device, name):
    """A NaN in row r of x gives NaN in exactly row r of the output (the [n, k] GEMV on CUDA)."""
    dt = DT[name]
    for m, k, n in ((1, 2048, 264), (5, 1000, 50)):
        x = rng.standard_normal((m, k)).astype(dt)
        x[m - 1, k // 3] = np.nan
        wv, w = _wt(rng, k, n, dt, device, name)
        z = f64(lc.linear(_t(x, device, name), wv, None, "none", device).numpy())
        assert np.all(np.isnan(z[m - 1])) and np.all(np.isfinite(z[: m - 1])), (m, k, n)


def test_transposed_w_matches_contiguous_w_on_cpu(rng):
    """On the CPU the view is gathered into a contiguous [k, n] copy: bit-identical to passing that copy."""
    for name in ("float32", "bfloat16"):
        dt = DT[name]
        x = rng.standard_normal((4, 96)).astype(dt)
        wv, w = _wt(rng, 96, 40, dt, "cpu", name)
        a = lc.linear(x, wv, None, "gelu_tanh", "cpu")
        b = lc.linear(x, np.ascontiguousarray(w), None, "gelu_tanh", "cpu")
        assert np.array_equal(f64(a.numpy() if hasattr(a, "numpy") else a), f64(b)), name
