"""float16/bfloat16 resident sessions and graphs/plans (issue 14, items 3 and 4; docs/python_api.md
"Resident sessions", "Graphs", "Graph plans").

Every result is compared with a float64 reference computed from the rounded (16-bit) inputs. Tolerances
come from the unit roundoff u of the output dtype (u = 2^-8 for bfloat16, 2^-11 for float16): the ops
accumulate in float32 and round the result once, so
- elementwise (add/sub/div): |out - ref| <= (u + 2^-23) |ref| per element (one float32 rounding, then
  one rounding to the dtype);
- matmul with reduction length k: |out - ref| <= u |ref| + k 2^-23 (|a| @ |b|) per element;
- the bfloat16 chain matmul -> gelu -> layer_norm (each op rounds its output; the plan may fuse
  matmul+gelu into one linear, which rounds once): normwise relative error <= 4u.
Every `out` is poisoned with NaN first. The "device" argument runs cpu and cuda (skipped without a GPU).
"""
import ml_dtypes
import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import lowp_matmul_excess, unit_roundoff

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
LOWP = [pytest.param(BF16, id="bfloat16"), pytest.param(F16, id="float16")]
F32_EPS = 2.0 ** -23


def _u(dt):
    return unit_roundoff(dt)


def _rand(rng, shape, dt, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(np.float32).astype(dt)


def _f64(a):
    return np.asarray(a).astype(np.float32).astype(np.float64)


def _poison(shape, dt):
    return np.full(shape, np.nan, np.float32).astype(dt)


def _check_matmul(out, a, b, dt):
    assert np.all(np.isfinite(_f64(out))), "out has NaN/Inf (not every element written?)"
    excess = lowp_matmul_excess(out, a, b, dt)
    assert excess <= 1.0, f"max err/bound {excess:.3g}"


# ---- sessions ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dt", LOWP)
def test_matmul_session_low_precision(rng, dt, device):
    m, k, n = 17, 40, 9
    s = lc.MatMulResidentSession(m, k, n, device=device, dtype=dt)
    assert s.dtype == dt.name and f"dtype='{dt.name}'" in repr(s)
    a, b = _rand(rng, (m, k), dt), _rand(rng, (k, n), dt)
    for method in ("start_into", "sync_into"):
        out = _poison((m, n), dt)
        getattr(s, method)(a, b, out)
        _check_matmul(out, a, b, dt)
    out = _poison((m * n,), dt)  # flat out of the element count
    s.run_batch_sync_into(a, b, out, 3)
    _check_matmul(out.reshape(m, n), a, b, dt)
    out2 = _poison((m, n), dt)
    s.run_batch_sync_cached_no_download(2)
    s.download_into(out2)
    assert np.array_equal(out2.view(np.uint16), out.reshape(m, n).view(np.uint16))
    # resident buffers keep the dtype: the session factory follows a's dtype
    s2 = lc.matmul2d_resident_session(a, b, device=device)
    assert s2.dtype == dt.name


@pytest.mark.parametrize("dt", LOWP)
def test_elemwise_session_low_precision(rng, dt, device):
    rows, cols = 7, 33
    s = lc.MatrixElemwiseResidentSession(rows, cols, device=device, dtype=dt.name)
    a = _rand(rng, (rows, cols), dt)
    b = _rand(rng, (rows, cols), dt, 0.5, 3.0)  # away from 0 for div
    for name, fn in (("add", np.add), ("sub", np.subtract), ("div", np.divide)):
        out = _poison((rows, cols), dt)
        getattr(s, f"{name}_start_into")(a, b, out)
        ref = fn(_f64(a), _f64(b))
        err = np.abs(_f64(out) - ref)
        assert np.all(err <= (_u(dt) + F32_EPS) * np.abs(ref)), name


@pytest.mark.parametrize("dt", LOWP)
def test_session_dtype_mismatch_is_type_error(rng, dt):
    s = lc.MatMulResidentSession(4, 8, 3, device="cpu", dtype=dt)
    a, b = _rand(rng, (4, 8), dt), _rand(rng, (8, 3), dt)
    out = _poison((4, 3), dt)
    s.start_into(a, b, out)
    before = out.copy()
    other = F16 if dt == BF16 else BF16
    for bad in (np.float32, np.float64, other):
        with pytest.raises(TypeError, match=rf"input 1: expected dtype {dt.name} \(the session's.*got {np.dtype(bad).name}"):
            s.start_into(a, b.astype(np.float32).astype(bad), out)
    with pytest.raises(TypeError, match=rf"out: expected dtype {dt.name}, got float32"):
        s.start_into(a, b, np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match=rf"expected dtype {dt.name} .*tensors are never converted.*got float32"):
        s.upload(lc.Tensor(a.astype(np.float32)), b)
    assert np.array_equal(out.view(np.uint16), before.view(np.uint16))
    # the refused calls changed no resident input: a cached run gives the same result
    s.run_batch_sync_cached_no_download(1)
    again = _poison((4, 3), dt)
    s.download_into(again)
    assert np.array_equal(again.view(np.uint16), before.view(np.uint16))


def test_session_tensor_inputs_of_the_dtype(rng):
    a, b = _rand(rng, (5, 6), BF16), _rand(rng, (6, 4), BF16)
    s = lc.MatMulResidentSession(5, 6, 4, device="cpu", dtype="bfloat16")
    out = _poison((5, 4), BF16)
    s.start_into(lc.Tensor(a, dtype="bfloat16"), lc.Tensor(b, dtype="bfloat16"), out)
    _check_matmul(out, a, b, BF16)


def test_session_dtype_argument_rules():
    with pytest.raises(TypeError, match="dtype: expected"):
        lc.MatMulResidentSession(2, 2, 2, device="cpu", dtype="int8")
    with pytest.raises(TypeError, match="dtype: expected float32, float16 or bfloat16, got float64"):
        lc.MatMulResidentSession(2, 2, 2, device="cpu", dtype="float64")
    # attention and conv->attention sessions keep float32 buffers (attention has no 16-bit kernel here)
    with pytest.raises(TypeError, match="kind 'attention' keeps float32 buffers only"):
        lc.sessions._C.ResidentSession("attention", (4, 4), "cpu", dtype="bfloat16")
    assert lc.AttentionSession(4, 4, device="cpu").dtype == "float32"
    s32 = lc.MatMulResidentSession(2, 3, 2, device="cpu")
    assert s32.dtype == "float32"
    # a float32 session still converts float64 ndarrays (as it always did)
    out = np.full((2, 2), np.nan, np.float32)
    s32.start_into(np.ones((2, 3)), np.ones((3, 2)), out)
    assert np.array_equal(out, np.full((2, 2), 3.0, np.float32))


# ---- graphs and plans ---------------------------------------------------------------------------------

def _gelu64(x):
    from math import erf
    return 0.5 * x * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))


def _ln64(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


@pytest.mark.parametrize("fuse", [True, False])
def test_bf16_graph_matmul_gelu_layer_norm(rng, fuse, device):
    m, k, n = 12, 32, 24
    g = lc.Graph()
    x = g.input("x", (m, k), dtype="bfloat16")
    wv, gv, bv = _rand(rng, (k, n), BF16, -0.3, 0.3), _rand(rng, (n,), BF16, 0.5, 1.5), _rand(rng, (n,), BF16)
    w, gm, bt = g.constant("w", wv), g.constant("gamma", gv), g.constant("beta", bv)
    assert (x.dtype, w.dtype, gm.dtype) == ("bfloat16",) * 3
    y = g.layer_norm(g.gelu(g.matmul(x, w)), gm, bt)
    assert y.dtype == "bfloat16"
    g.output(y)
    assert [i for i in g.validate("cpu") if i["severity"] == "error"] == []
    xv = _rand(rng, (m, k), BF16)
    ref = _ln64(_gelu64(_f64(xv) @ _f64(wv)), _f64(gv), _f64(bv))
    plan = g.plan(device=device, fuse=fuse)
    (out,) = plan.run(xv)
    assert out.dtype == BF16 and out.shape == (m, n)
    err = np.linalg.norm(_f64(out) - ref) / np.linalg.norm(ref)
    assert np.all(np.isfinite(_f64(out))) and err <= 4 * _u(BF16), err
    dl = _poison((m, n), BF16)
    plan.download_into(0, dl)
    assert np.array_equal(dl.view(np.uint16), out.view(np.uint16))
    (again,) = g.run(xv, device=device, fuse=fuse)
    assert again.dtype == BF16 and np.array_equal(again.view(np.uint16), out.view(np.uint16))
    with pytest.raises(TypeError, match=r"input 0: expected dtype bfloat16 \(the graph input's.*got float32"):
        plan.run(xv.astype(np.float32))
    with pytest.raises(TypeError, match="out: expected dtype bfloat16"):
        plan.download_into(0, np.zeros((m, n), np.float32))


def test_f16_graph_add_relu_and_float64_plans(rng):
    g = lc.Graph()
    a, b = g.input("a", (5, 7), dtype=np.float16), g.input("b", (5, 7), dtype="half")
    g.output(g.relu(g.add(a, b)))
    av, bv = _rand(rng, (5, 7), F16), _rand(rng, (5, 7), F16)
    (out,) = g.run(av, bv, device="cpu")
    ref = np.maximum(_f64(av) + _f64(bv), 0.0)
    assert out.dtype == F16
    assert np.all(np.abs(_f64(out) - ref) <= (_u(F16) + F32_EPS) * np.abs(ref))
    # float64 inputs run and return float64 (ndarrays of float32 are converted to the input's dtype)
    g64 = lc.Graph()
    x = g64.input("x", (3, 3), dtype="float64")
    g64.output(g64.matmul(x, x))
    xv = rng.standard_normal((3, 3))
    (o64,) = g64.run(xv, device="cpu")
    assert o64.dtype == np.float64 and np.allclose(o64, xv @ xv, rtol=1e-13, atol=0)


def test_graph_low_precision_dtype_rules(rng):
    g = lc.Graph()
    x = g.input("x", (4, 4), dtype="bfloat16")
    f = g.input("f", (4, 4))
    with pytest.raises(TypeError, match="expected dtype bfloat16"):
        g.matmul(x, f)
    c16 = g.constant("c16", np.ones((4, 4), np.float16))
    assert c16.dtype == "float16"
    with pytest.raises(TypeError, match="dtype"):
        g.add(x, c16)
    # attention has no 16-bit kernel: the builder refuses it by the op table's mask
    if "bfloat16" not in lc.op_dtypes("attention_forward"):
        with pytest.raises(TypeError, match="bfloat16"):
            g.attention(x, x, x)
    schemas = {s["name"]: s for s in lc.graph_op_schemas()}
    for op in ("matmul", "layer_norm", "gelu"):
        assert "bfloat16" in schemas[op]["dtypes"] and "float16" in schemas[op]["dtypes"]


def test_layer_norm_matmul_fold_stays_float32_only(rng):
    # the plan-time fold of constant gamma/beta into w is written in float32: a bf16 chain is not folded
    g = lc.Graph()
    x = g.input("x", (6, 8), dtype="bfloat16")
    ln = g.layer_norm(x, g.constant("g", _rand(rng, (8,), BF16)), g.constant("b", _rand(rng, (8,), BF16)))
    g.output(g.matmul(ln, g.constant("w", _rand(rng, (8, 5), BF16))))
    plan = g.plan(device="cpu")
    sites = [e for e in plan.explain() if e["rule"] == "layer_norm_matmul"]
    assert sites and not sites[0]["fired"] and sites[0]["reason"] == "fold_needs_float32"
    (out,) = plan.run(_rand(rng, (6, 8), BF16))
    assert out.dtype == BF16 and np.all(np.isfinite(_f64(out)))
