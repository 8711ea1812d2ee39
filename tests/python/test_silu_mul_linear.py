"""silu_mul_linear (SwiGLU's down projection as one op): out = act(silu(gu[:, :k]) * gu[:, k:] @ w + bias) +
residual against a float64 reference on fresh random inputs, every dtype x device, m in {1, 2, 3, 8, 9, 33},
awkward k and n (n not a multiple of 8: the CUDA fallback), bias / activation / residual / out being the
residual, outputs poisoned with NaN before every run; the CUDA routing (16-bit, m <= 8, n % 8 == 0: one GEMV
launch computing silu(g)*u as it stages gu, split-k and unsplit plans; else the pitched silu_mul kernel + linear);
fused == unfused (silu_mul then linear_into: bit-equal on the CPU; on CUDA the prologue's h bit-equal to the
silu_mul kernel's, seen through an identity w; the whole op within the bound); NaN in gu reaching exactly its
row; bad arguments (ValueError / TypeError naming the argument, out untouched).

Tolerance (written once, swiglu_excess): h = silu(g)*u as the op stores it carries a relative error of u (its
rounding to the dtype) + 8·2^-24 (float32 exp, divide and products) of |h|, and an absolute half subnormal
(float16's flush of tiny h: 2^-25); the product adds 2k·2^-24·(|h|@|w|) (float32 sums); the bias and the
activation (Lipschitz <= 1.13, float32 evaluation) 1.2x all that; the residual's float32 addition 2^-24(|y| +
|res|), the output's rounding u|ref| (+ 1e-6|ref| for the activation's float32 evaluation). float32 GELU-tanh on
CUDA (cuBLASLt's fast tanh) adds 2^-16|pre| as in test_norm_linear.py.
Spec: docs/python_api.md (silu_mul_linear). """
import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import UNIT_ROUNDOFF, ref_activation, ref_silu

ml_dtypes = pytest.importorskip("ml_dtypes")
DT = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
ACTS = ["none", "relu", "gelu", "gelu_tanh"]
HALF_SUB = {"float16": 2.0**-25, "bfloat16": 2.0**-134, "float32": 2.0**-150}


def f64(a):
    return np.asarray(a).astype(np.float64)


def product_excess(z, h, w, bias, res, act, name, device="cpu", staged=True):
    """max |z - ref| / bound for z = act(h @ w + bias) + res (<= 1 passes; inf for a non-finite z); staged: h is
    a prologue's output rounded to the dtype (its u + 8·2^-24 relative and half-subnormal terms), else exact
    input. See the module docstring."""
    h, w64 = f64(h), f64(w)
    k = w64.shape[0]
    u = UNIT_ROUNDOFF[name]
    pre, mag = h @ w64, np.abs(h) @ np.abs(w64)
    if bias is not None:
        pre, mag = pre + f64(bias), mag + np.abs(f64(bias))
    y = ref_activation(pre, act)
    ref = y + (f64(res) if res is not None else 0.0)
    z64 = f64(z)
    if not np.all(np.isfinite(z64)):
        return float("inf")
    act_err = 2.0**-16 * np.abs(pre) if (device == "cuda" and name == "float32" and act == "gelu_tanh") else 0.0
    res_err = 2.0**-24 * (np.abs(y) + np.abs(f64(res))) if res is not None else 0.0
    prod_err = 2 * k * 2.0**-24 * mag
    if staged:
        prod_err = prod_err + (u + 8 * 2.0**-24) * mag + HALF_SUB[name] * np.abs(w64).sum(axis=0)
    bound = u * np.abs(ref) + 1.2 * prod_err + 1e-6 * np.abs(ref) + act_err + res_err + HALF_SUB[name]
    return float(np.max(np.abs(z64 - ref) / bound))


def swiglu_excess(z, gu, w, bias, res, act, name, device="cpu"):
    """product_excess of h = silu(g)·u (see the module docstring)."""
    gu64 = f64(gu)
    k = f64(w).shape[0]
    return product_excess(z, ref_silu(gu64[:, :k]) * gu64[:, k:], w, bias, res, act, name, device)


def _inputs(rng, m, k, n, dt):
    gu = (rng.standard_normal((m, 2 * k)) * 2.0).astype(dt)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dt)
    return gu, w


def _dev(a, device, name):
    if a is None or device == "cpu":
        return a
    return lc.Tensor(a, device="cuda", dtype=name)


def _host(a):
    return a.numpy() if isinstance(a, lc.Tensor) else np.asarray(a)


def _run(gu, w, bias, res, act, device, name, mode):
    """mode 0: a new result; 1: into a NaN-poisoned out; 2: in place (out is the residual). Returns host z."""
    t = lambda a: _dev(a, device, name)  # noqa: E731
    if mode == 0:
        return _host(lc.silu_mul_linear(t(gu), t(w), t(bias), act, device, residual=t(res)))
    m, n = gu.shape[0], w.shape[1]
    if mode == 2:
        out = t(res.copy())
        z = lc.silu_mul_linear_into(t(gu), t(w), out, t(bias), act, device, residual=out)
    else:
        out = t(np.full((m, n), np.nan, DT[name]))
        z = lc.silu_mul_linear_into(t(gu), t(w), out, t(bias), act, device, residual=t(res))
    assert z is out
    return _host(out)


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16"])
def test_silu_mul_linear_matches_reference(rng, device, name):
    """Awkward shapes, every activation, bias and residual present or not, in place, poisoned outputs."""
    dt = DT[name]
    i = 0
    for m in (1, 2, 3, 8, 9, 33):
        for k in (1, 7, 65, 1000):
            for n in (8, 24, 50, 264):
                act, with_bias, mode = ACTS[i % 4], (i // 4) % 2 == 0, i % 3
                with_res = mode == 2 or (i // 2) % 2 == 0
                i += 1
                gu, w = _inputs(rng, m, k, n, dt)
                bias = rng.standard_normal(n).astype(dt) if with_bias else None
                res = (rng.standard_normal((m, n)) * 3.0).astype(dt) if with_res else None
                z = _run(gu, w, bias, res, act, device, name, mode)
                if device == "cuda":
                    path = lc.last_dispatch()["path"]
                    fused = name != "float32" and m <= 8 and n % 8 == 0
                    assert ("swiglu_gemv" in path) == fused, (m, k, n, path)
                assert z.dtype == dt and z.shape == (m, n)
                ex = swiglu_excess(z, gu, w, bias, res, act, name, device)
                assert ex <= 1.0, (m, k, n, act, with_bias, with_res, mode, ex)


def test_silu_mul_linear_equals_silu_mul_then_linear_on_cpu(rng):
    """On the CPU the op is silu_mul then the linear kernel: bit-identical to the two ops in a row (residual too,
    and in place)."""
    for name in ("float32", "bfloat16", "float16"):
        dt = DT[name]
        for m, k, n in ((1, 5632 // 8, 40), (5, 96, 40), (33, 1000, 24)):
            gu, w = _inputs(rng, m, k, n, dt)
            bias, res = rng.standard_normal(n).astype(dt), rng.standard_normal((m, n)).astype(dt)
            h = lc.silu_mul(np.ascontiguousarray(gu[:, :k]), np.ascontiguousarray(gu[:, k:]))
            ref = lc.linear_into(h, w, res.copy(), bias, "gelu_tanh", "cpu", residual=res)
            z = lc.silu_mul_linear(gu, w, bias, "gelu_tanh", residual=res)
            assert np.array_equal(f64(z), f64(ref)), (name, m, k, n)
            x = res.copy()
            lc.silu_mul_linear_into(gu, w, x, bias, "gelu_tanh", "cpu", residual=x)
            assert np.array_equal(f64(x), f64(ref)), (name, m, k, n)


def test_silu_mul_linear_strided_gu(rng, device):
    """gu may be a strided view (the op gathers it, as linear's x): a [m, 2k] window of a wider tensor."""
    name, dt = "bfloat16", DT["bfloat16"]
    m, k, n = 3, 40, 24
    big = (rng.standard_normal((m, 2 * k + 6)) * 2.0).astype(dt)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dt)
    tb = lc.Tensor(big, device=device, dtype=name)
    view = tb.view((m, 2 * k), (2 * k + 6, 1), 3)
    z = _host(lc.silu_mul_linear(view, _dev(w, device, name), None, "none", device))
    gu = np.ascontiguousarray(big[:, 3:3 + 2 * k])
    assert swiglu_excess(z, gu, w, None, None, "none", name, device) <= 1.0
    if device == "cpu":
        assert np.array_equal(f64(z), f64(lc.silu_mul_linear(gu, w)))


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_cuda_swiglu_gemv_plans_identity_and_nan(rng, name, monkeypatch):
    """The fused GEMV's split-k (long k, few columns) and unsplit (many columns) plans and decode shapes (the
    LLaMA-1.1B down projection among them); through an identity w the output is h itself, bit-equal to the
    silu_mul kernel's (fused m <= 8 and the pitched fallback m > 8); NaN in the gate or up half gives exactly
    its row NaN; LC_GEMV=0 and LC_GEMV=nonorm take silu_mul + linear with the same bound."""
    if not lc.cuda_available():
        pytest.skip("no CUDA GPU here")
    dt = DT[name]
    want = "cuda_swiglu_gemv_bf16" if name == "bfloat16" else "cuda_swiglu_gemv_f16"
    t = lambda a: lc.Tensor(a, device="cuda", dtype=name)  # noqa: E731
    for m, k, n in ((1, 4099, 24), (3, 768, 2304), (8, 2048, 264), (1, 5632, 2048), (2, 65, 50264), (5, 7, 8)):
        gu, w = _inputs(rng, m, k, n, dt)
        bias, res = rng.standard_normal(n).astype(dt), rng.standard_normal((m, n)).astype(dt)
        z = lc.silu_mul_linear(t(gu), t(w), t(bias), "none", "cuda", residual=t(res)).numpy()
        assert lc.last_dispatch()["path"] == want, (m, k, n)
        assert swiglu_excess(z, gu, w, bias, res, "none", name, "cuda") <= 1.0, (m, k, n)
        h = lc.silu_mul(t(np.ascontiguousarray(gu[:, :k])), t(np.ascontiguousarray(gu[:, k:])), "cuda")
        unfused = lc.linear_into(h, t(w), t(res.copy()), t(bias), "none", "cuda", residual=t(res)).numpy()
        assert swiglu_excess(unfused, gu, w, bias, res, "none", name, "cuda") <= 1.0, (m, k, n)
    for m, k in ((1, 264), (3, 1000), (8, 64), (9, 264), (33, 72)):
        gu, _ = _inputs(rng, m, k, 8, dt)
        eye = np.eye(k, dtype=np.float32).astype(dt)
        z = lc.silu_mul_linear(t(gu), t(eye), None, "none", "cuda").numpy()
        assert ("swiglu_gemv" in lc.last_dispatch()["path"]) == (m <= 8 and k % 8 == 0)
        h = lc.silu_mul(t(np.ascontiguousarray(gu[:, :k])), t(np.ascontiguousarray(gu[:, k:])), "cuda").numpy()
        assert np.array_equal(z.view(np.uint16), h.view(np.uint16)), (m, k)
    for col in (17, 4099 + 17):  # gate half, up half
        gu, w = _inputs(rng, 3, 4099, 264, dt)
        gu[1, col] = np.nan
        y = f64(lc.silu_mul_linear(t(gu), t(w), None, "none", "cuda").numpy())
        assert lc.last_dispatch()["path"] == want
        assert np.all(np.isnan(y[1])) and np.all(np.isfinite(np.delete(y, 1, axis=0)))
    for env in ("0", "nonorm"):
        monkeypatch.setenv("LC_GEMV", env)
        gu, w = _inputs(rng, 1, 768, 2304, dt)
        bias = rng.standard_normal(2304).astype(dt)
        z = lc.silu_mul_linear(t(gu), t(w), t(bias), "gelu_tanh", "cuda").numpy()
        assert "swiglu_gemv" not in lc.last_dispatch()["path"]
        assert swiglu_excess(z, gu, w, bias, None, "gelu_tanh", name, "cuda") <= 1.0


def test_cuda_swiglu_gemv_in_a_captured_graph(rng):
    """The fused SwiGLU GEMV (split-k counters) replays correctly inside lc.capture_graph."""
    if not lc.cuda_available():
        pytest.skip("no CUDA GPU here")
    dt = DT["bfloat16"]
    gu, w = _inputs(rng, 1, 4096, 64, dt)
    tgu, tw = (lc.Tensor(a, device="cuda", dtype="bfloat16") for a in (gu, w))
    out = lc.Tensor(np.full((1, 64), np.nan, dt), device="cuda", dtype="bfloat16")

    def step():
        lc.silu_mul_linear_into(tgu, tw, out, None, "none", "cuda")

    step()
    first = out.numpy().copy()
    graph = lc.capture_graph(step)
    for _ in range(3):
        graph.replay()
    assert np.array_equal(f64(out.numpy()), f64(first))
    assert swiglu_excess(first, gu, w, None, None, "none", "bfloat16", "cuda") <= 1.0


def test_silu_mul_linear_nan_in_gu_on_cpu(rng):
    for name in ("float32", "bfloat16"):
        gu, w = _inputs(rng, 4, 33, 16, DT[name])
        gu[2, 5] = np.nan       # gate
        gu[0, 33 + 7] = np.nan  # up
        y = f64(lc.silu_mul_linear(gu, w))
        assert np.all(np.isnan(y[[0, 2]])) and np.all(np.isfinite(y[[1, 3]]))


def test_silu_mul_linear_bad_arguments(rng):
    gu, w = _inputs(rng, 3, 8, 4, np.float32)
    out = np.full((3, 4), 7.0, np.float32)
    cases = [
        (ValueError, r"silu_mul_linear_into: gu: expected \[m, 2k\] \(gate \| up halves", (gu[:, :15], w, out), {}),
        (ValueError, r"silu_mul_linear_into: w: expected \[k=8, n\] with k half of gu's dim 1", (gu, w[:7], out), {}),
        (ValueError, r"silu_mul_linear_into: bias: expected \[n=4\]", (gu, w, out, np.ones(5, np.float32)), {}),
        (ValueError, r"silu_mul_linear_into: residual: expected \[3, 4\]", (gu, w, out),
         {"residual": np.ones((2, 4), np.float32)}),
        (ValueError, r"silu_mul_linear_into: out:", (gu, w, np.zeros((3, 5), np.float32)), {}),
        (ValueError, "activation", (gu, w, out), {"activation": "tanh"}),
        (TypeError, "float16", (gu, w.astype(np.float16), out), {}),
        (ValueError, r"gu: expected 2 dimensions|gu: expected rank 2|gu", (gu.reshape(-1), w, out), {}),
    ]
    for exc, pat, args, kw in cases:
        with pytest.raises(exc, match=pat):
            lc.silu_mul_linear_into(*args, **kw)
        assert np.all(out == 7.0), pat  # nothing half-written
    with pytest.raises(ValueError, match=r"silu_mul_linear: gu: expected \[m, 2k\]"):
        lc.silu_mul_linear(np.ones((2, 3), np.float32), np.ones((1, 4), np.float32))
    # the process stays usable
    assert lc.silu_mul_linear(gu, w).shape == (3, 4)
