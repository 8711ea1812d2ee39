"""layer_norm_linear / rms_norm_linear (the pre-norm projection as one op): act(norm(x) @ w + bias) against a
float64 reference on fresh random inputs, every dtype x device, outputs checked finite (NaN never passes),
the CUDA routing (16-bit, m <= 8, n % 8 == 0: one GEMV launch normalising x as it is staged, split-k and
unsplit plans; else norm + linear), NaN in x reaching exactly its row, bad arguments.

Tolerance (written once, norm_linear_excess): the normed x as the op stores it carries a relative error of
u (its rounding to the dtype) + 4·2^-24 (float32 arithmetic of the statistics and the scale/shift) of
mag_xn = |x - mean|·rstd·|gamma| + |beta| per element; the product adds 2k·2^-24·(|xn|@|w|) (float32 sums);
the bias and the activation (Lipschitz <= 1.13, float32 evaluation) 1.2x that; the output's rounding u|ref|.
Spec: docs/python_api.md (layer_norm_linear). """
import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import UNIT_ROUNDOFF, ref_activation

ml_dtypes = pytest.importorskip("ml_dtypes")
DT = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
ACTS = ["none", "relu", "gelu", "gelu_tanh"]


def f64(a):
    return np.asarray(a).astype(np.float64)


def ref_norm64(x, gamma, beta, eps, rms):
    """The normed rows in float64 and mag_xn (see the module docstring)."""
    x = f64(x)
    if rms:
        rstd = 1.0 / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + eps)
        d = x
    else:
        mean = x.mean(axis=1, keepdims=True)
        rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + eps)
        d = x - mean
    y, mag = d * rstd, np.abs(d) * rstd
    if gamma is not None:
        y, mag = y * f64(gamma), mag * np.abs(f64(gamma))
    if beta is not None:
        y, mag = y + f64(beta), mag + np.abs(f64(beta))
    return y, mag


def norm_linear_excess(z, x, w, bias, gamma, beta, eps, act, name, rms, device="cpu"):
    """max |z - ref| / bound over the elements (<= 1 passes; inf for a non-finite z). float32 GELU-tanh on
    CUDA runs cuBLASLt's GELU epilogue, whose tanh is a fast form (absolute error up to ~2^-15, as
    test_ops_linear allows for it): its term 0.5·|pre|·2^-15 replaces the 1e-6·|ref| of an accurate tanh,
    which cannot hold where 1 + tanh cancels (pre well below 0, ref near 0)."""
    xn, mag_xn = ref_norm64(x, gamma, beta, eps, rms)
    w64 = f64(w)
    pre, mag = xn @ w64, mag_xn @ np.abs(w64)
    if bias is not None:
        pre, mag = pre + f64(bias), mag + np.abs(f64(bias))
    ref = ref_activation(pre, act)
    z64 = f64(z)
    if not np.all(np.isfinite(z64)):
        return float("inf")
    u, k = UNIT_ROUNDOFF[name], x.shape[1]
    half_sub = {"float16": 2.0**-25, "bfloat16": 2.0**-134, "float32": 2.0**-150}[name]
    act_err = 2.0**-16 * np.abs(pre) if (device == "cuda" and name == "float32" and act == "gelu_tanh") else 0.0
    bound = u * np.abs(ref) + 1.2 * (u + 4 * 2.0**-24 + 2 * k * 2.0**-24) * mag + 1e-6 * np.abs(ref) + act_err + half_sub
    return float(np.max(np.abs(z64 - ref) / bound))


def _call(rms, x, w, bias, gamma, beta, eps, act, device):
    if rms:
        return lc.rms_norm_linear(x, w, bias, gamma, eps, act, device)
    return lc.layer_norm_linear(x, w, bias, gamma, beta, eps, act, device)


def _inputs(rng, m, k, n, dt, shift=0.0):
    x = (rng.standard_normal((m, k)) * 2.0 + shift).astype(dt)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dt)
    return x, w


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
def test_norm_linear_matches_reference(rng, device, name, rms):
    """Awkward shapes, every activation, bias / gamma / beta present or not, x off-centre (the mean matters)."""
    dt = DT[name]
    i = 0
    for m in (1, 3, 8, 9):
        for k in (7, 64, 1000):
            for n in (8, 24, 50):
                act, with_bias = ACTS[i % 4], (i // 4) % 2 == 0
                affine = i % 3  # 0: gamma and beta, 1: gamma only, 2: neither
                i += 1
                x, w = _inputs(rng, m, k, n, dt, shift=3.0)
                bias = rng.standard_normal(n).astype(dt) if with_bias else None
                gamma = (1.0 + 0.5 * rng.standard_normal(k)).astype(dt) if affine < 2 else None
                beta = rng.standard_normal(k).astype(dt) if affine == 0 and not rms else None
                eps = 1e-6 if rms else 1e-5
                if device == "cuda":
                    tx = lc.Tensor(x, device="cuda", dtype=name)
                    z = _call(rms, tx, lc.Tensor(w, device="cuda", dtype=name),
                              None if bias is None else lc.Tensor(bias, device="cuda", dtype=name),
                              None if gamma is None else lc.Tensor(gamma, device="cuda", dtype=name),
                              None if beta is None else lc.Tensor(beta, device="cuda", dtype=name), eps, act, "cuda")
                    assert isinstance(z, lc.Tensor) and z.device == "cuda"
                    path = lc.last_dispatch()["path"]
                    z = z.numpy()
                    fused = name != "float32" and m <= 8 and n % 8 == 0
                    assert ("norm_gemv" in path) == fused, (m, k, n, path)
                else:
                    z = _call(rms, x, w, bias, gamma, beta, eps, act, "cpu")
                assert z.dtype == dt and z.shape == (m, n)
                ex = norm_linear_excess(z, x, w, bias, gamma, beta, eps, act, name, rms, device)
                assert ex <= 1.0, (m, k, n, act, with_bias, affine, ex)


@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
def test_norm_linear_equals_norm_then_linear_on_cpu(rng, rms):
    """On the CPU the op is the norm kernel then the linear kernel: bit-identical to the two ops in a row."""
    for name in ("float32", "bfloat16", "float16"):
        dt = DT[name]
        x, w = _inputs(rng, 5, 96, 40, dt, shift=1.0)
        g, b, bias = (rng.standard_normal(96).astype(dt), rng.standard_normal(96).astype(dt),
                      rng.standard_normal(40).astype(dt))
        if rms:
            z = lc.rms_norm_linear(x, w, bias, g, 1e-6, "gelu_tanh")
            ref = lc.linear(lc.rms_norm(x, g, 1e-6), w, bias, "gelu_tanh")
        else:
            z = lc.layer_norm_linear(x, w, bias, g, b, 1e-5, "gelu_tanh")
            ref = lc.linear(lc.layer_norm(x, g, b, 1e-5), w, bias, "gelu_tanh")
        assert np.array_equal(f64(z), f64(ref)), name


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_cuda_norm_gemv_plans_and_nan(rng, name, monkeypatch):
    """The fused GEMV's split-k (long k, few columns) and unsplit (many columns) plans, x not 16-byte aligned
    rows (k odd: the statistics' scalar path), decode-sized shapes; NaN in x gives exactly its row NaN;
    LC_GEMV=0 takes norm + linear with the same bound."""
    if not lc.cuda_available():
        pytest.skip("no CUDA GPU here")
    dt = DT[name]
    path_want = "cuda_norm_gemv_bf16" if name == "bfloat16" else "cuda_norm_gemv_f16"
    for rms in (False, True):
        for m, k, n in ((1, 4099, 24), (3, 768, 2304), (8, 2048, 264), (2, 65, 50264), (1, 2048, 11264), (5, 7, 8)):
            x, w = _inputs(rng, m, k, n, dt, shift=2.0)
            g = (1.0 + 0.3 * rng.standard_normal(k)).astype(dt)
            b = None if rms else rng.standard_normal(k).astype(dt)
            bias = rng.standard_normal(n).astype(dt)
            eps = 1e-5
            z = _call(rms, x, w, bias, g, b, eps, "none", "cuda")
            assert lc.last_dispatch()["path"] == path_want, (m, k, n)
            ex = norm_linear_excess(z, x, w, bias, g, b, eps, "none", name, rms)
            assert ex <= 1.0, (rms, m, k, n, ex)
        x, w = _inputs(rng, 3, 4099, 264, dt)
        x[1, 17] = np.nan
        g = np.ones(4099, dt)
        y = f64(_call(rms, x, w, None, g, None, 1e-5, "none", "cuda"))
        assert lc.last_dispatch()["path"] == path_want
        assert np.all(np.isnan(y[1])) and np.all(np.isfinite(np.delete(y, 1, axis=0)))
    monkeypatch.setenv("LC_GEMV", "0")
    x, w = _inputs(rng, 1, 768, 2304, dt, shift=1.0)
    g, b, bias = np.ones(768, dt), np.zeros(768, dt), rng.standard_normal(2304).astype(dt)
    z = lc.layer_norm_linear(x, w, bias, g, b, 1e-5, "gelu_tanh", "cuda")
    assert "norm_gemv" not in lc.last_dispatch()["path"]
    assert norm_linear_excess(z, x, w, bias, g, b, 1e-5, "gelu_tanh", name, False, "cuda") <= 1.0


def test_cuda_norm_gemv_in_a_captured_graph(rng):
    """The fused pre-norm GEMV (split-k counters) replays correctly inside lc.capture_graph."""
    if not lc.cuda_available():
        pytest.skip("no CUDA GPU here")
    dt = DT["bfloat16"]
    x, w = _inputs(rng, 1, 4096, 64, dt, shift=1.0)
    g = (1.0 + 0.3 * rng.standard_normal(4096)).astype(dt)
    tx, tw, tg = (lc.Tensor(a, device="cuda", dtype="bfloat16") for a in (x, w, g))
    out = {}

    def step():
        out["z"] = lc.rms_norm_linear(tx, tw, None, tg, 1e-6, "none", "cuda")

    step()
    first = out["z"].numpy().copy()
    graph = lc.capture_graph(step)
    for _ in range(3):
        graph.replay()
    assert np.array_equal(f64(out["z"].numpy()), f64(first))
    assert norm_linear_excess(first, x, w, None, g, None, 1e-6, "none", "bfloat16", True) <= 1.0


def test_norm_linear_bad_arguments(rng):
    x, w = _inputs(rng, 3, 8, 4, np.float32)
    with pytest.raises(ValueError, match=r"layer_norm_linear: gamma: expected \[k=8\]"):
        lc.layer_norm_linear(x, w, gamma=np.ones(7, np.float32))
    with pytest.raises(ValueError, match=r"rms_norm_linear: weight: expected \[k=8\]"):
        lc.rms_norm_linear(x, w, weight=np.ones(9, np.float32))
    with pytest.raises(ValueError, match=r"layer_norm_linear: w: expected \[k=8, n\]"):
        lc.layer_norm_linear(x, np.ones((7, 4), np.float32))
    with pytest.raises(ValueError, match=r"layer_norm_linear: bias: expected \[n=4\]"):
        lc.layer_norm_linear(x, w, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="eps"):
        lc.rms_norm_linear(x, w, eps=0.0)
    with pytest.raises(ValueError, match="activation"):
        lc.layer_norm_linear(x, w, activation="tanh")
    with pytest.raises(TypeError, match="float16"):
        lc.layer_norm_linear(x, w.astype(np.float16))
    # the process stays usable
    assert lc.layer_norm_linear(x, w).shape == (3, 4)
