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
    # every kind takes float32 (the default), float16 and bfloat16; float64 stays with the eager ops
    assert lc.AttentionSession(4, 4, device="cpu").dtype == "float32"
    assert lc.sessions._C.ResidentSession("attention", (4, 4), "cpu", dtype="bfloat16").dtype == "bfloat16"
    with pytest.raises(TypeError, match="attention_session: dtype: expected float32, float16 or bfloat16, got float64"):
        lc.AttentionSession(4, 4, device="cpu", dtype="float64")
    with pytest.raises(TypeError, match="conv_attention_session: dtype: expected float32, float16 or bfloat16, got float64"):
        lc.ConvAttentionSession(1, 1, 4, 4, 2, 4, 4, device="cpu", dtype=np.float64)
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
    # float64 has no kernel for attention: the builder refuses it by the op table's mask
    x64 = g.input("x64", (4, 4), dtype="float64")
    with pytest.raises(TypeError, match="float64"):
        g.attention(x64, x64, x64)
    schemas = {s["name"]: s for s in lc.graph_op_schemas()}
    for op in ("matmul", "layer_norm", "gelu", "bias_add", "attention_forward", "conv2d_nchw"):
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


# ---- bias_add and the fused attention -> projection in 16 bits ------------------------------------------
# Bounds (per element, u the dtype's unit roundoff, e = 2^-23): a linear (matmul_bias_act fused) sums k products
# and the bias in float32 and rounds once: u |ref| + (k + 2) e (|x| @ |w| + |b|); unfused, the matmul's output is
# rounded before the bias is added: + u (|x| @ |w|) more. The fused attention_projection keeps the attention rows
# in float32 (their error below 4 (seq + d) e max|v|, the bound test_attention2d_lowp_* allows with margin) and
# rounds the projection once; unfused, attention_forward rounds its rows first: + u (|A| @ |w|).


def _attn64(q, k, v, causal):
    from lightning_core.testing import refs
    return refs.ref_attention(_f64(q), _f64(k), _f64(v), causal=causal)


@pytest.mark.parametrize("dt", LOWP)
@pytest.mark.parametrize("fuse", [True, False])
def test_lowp_graph_matmul_bias_add_relu(rng, dt, fuse, device):
    m, k, n = 13, 71, 22
    xv, wv, bv = _rand(rng, (m, k), dt), _rand(rng, (k, n), dt, -0.5, 0.5), _rand(rng, (n,), dt)
    g = lc.Graph()
    x = g.input("x", (m, k), dtype=dt.name)
    y = g.bias_add(g.matmul(x, g.constant("w", wv)), g.constant("b", bv))
    assert y.dtype == dt.name
    g.output(g.relu(y))
    plan = g.plan(device=device, fuse=fuse)
    site = [e for e in plan.explain() if e["rule"] == "matmul_bias_act"][0]
    assert site["fired"] == fuse, site
    (out,) = plan.run(xv)
    assert out.dtype == dt and out.shape == (m, n)
    mag = np.abs(_f64(xv)) @ np.abs(_f64(wv))
    ref = np.maximum(_f64(xv) @ _f64(wv) + _f64(bv), 0.0)
    tol = _u(dt) * np.abs(ref) + (k + 2) * F32_EPS * (mag + np.abs(_f64(bv))) + (0 if fuse else _u(dt) * mag)
    got = _f64(out)
    assert np.all(np.isfinite(got)) and np.all(np.abs(got - ref) <= tol), np.max(np.abs(got - ref) / tol)


@pytest.mark.parametrize("dt", LOWP)
def test_lowp_graph_bias_add_alone(rng, dt, device):
    # bias_add on a graph input (no matmul to fuse into): the bias broadcast over rows, then one add
    xv, bv = _rand(rng, (9, 33), dt), _rand(rng, (33,), dt)
    g = lc.Graph()
    x = g.input("x", xv.shape, dtype=dt)
    g.output(g.bias_add(x, g.constant("b", bv)))
    (out,) = g.run(xv, device=device)
    ref = _f64(xv) + _f64(bv)
    assert out.dtype == dt and np.all(np.abs(_f64(out) - ref) <= (_u(dt) + F32_EPS) * np.abs(ref))
    # a bias of another dtype is refused by the builder, naming both
    other = F16 if dt == BF16 else BF16
    with pytest.raises(TypeError, match=f"expected dtype {dt.name}.*got {other.name}"):
        g.bias_add(x, g.constant("b2", bv.astype(np.float32).astype(other)))


@pytest.mark.parametrize("dt", LOWP)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_lowp_graph_attention_projection(rng, dt, causal, with_bias, device):
    seq, d, pn = 37, 24, 19
    q, k, v = (_rand(rng, (seq, d), dt) for _ in range(3))
    wv, bv = _rand(rng, (d, pn), dt, -0.5, 0.5), _rand(rng, (pn,), dt)
    g = lc.Graph()
    qi, ki, vi = (g.input(nm, (seq, d), dtype=dt.name) for nm in "qkv")
    y = g.matmul(g.attention(qi, ki, vi, causal=causal), g.constant("w", wv))
    if with_bias:
        y = g.bias_add(y, g.constant("b", bv))
    g.output(y)
    A = _attn64(q, k, v, causal)
    ref = A @ _f64(wv) + (_f64(bv) if with_bias else 0.0)
    mag = np.abs(A) @ np.abs(_f64(wv)) + (np.abs(_f64(bv)) if with_bias else 0.0)
    att_err = 4 * (seq + d) * F32_EPS * np.max(np.abs(_f64(v))) * np.sum(np.abs(_f64(wv)), axis=0)
    for fuse in (True, False):
        plan = g.plan(device=device, fuse=fuse)
        site = [e for e in plan.explain() if e["rule"] == "attention_projection"][0]
        fused = site["fired"]
        if not fuse:
            assert not fused and site["reason"] == "fusion_disabled"
        elif device == "cpu":
            assert fused, site  # the CPU kernel takes float16/bfloat16
        else:
            assert fused or site["reason"] == "dtype_outside_fused_kernel", site
        (out,) = plan.run(q, k, v)
        assert out.dtype == dt and out.shape == (seq, pn)
        got = _f64(out)
        tol = _u(dt) * np.abs(ref) + (d + 3) * F32_EPS * mag + att_err + (0 if fused else 2 * _u(dt) * mag)
        assert np.all(np.isfinite(got)) and np.all(np.abs(got - ref) <= tol), (fused, np.max(np.abs(got - ref) / tol))


@pytest.mark.parametrize("dt", LOWP)
def test_lowp_attention_projection_nan_in_causal_row(rng, dt, device):
    # causal: a NaN in v row j reaches the projected rows >= j only (every column: each reads the whole row)
    seq, d, pn, j = 40, 16, 12, 23
    q, k, v = (_rand(rng, (seq, d), dt) for _ in range(3))
    v[j, 5] = np.nan
    g = lc.Graph()
    qi, ki, vi = (g.input(nm, (seq, d), dtype=dt.name) for nm in "qkv")
    g.output(g.matmul(g.attention(qi, ki, vi, causal=True), g.constant("w", _rand(rng, (d, pn), dt, 0.1, 0.5))))
    (out,) = g.run(q, k, v, device=device)
    got = _f64(out)
    assert np.all(np.isfinite(got[:j])) and np.all(np.isnan(got[j:]))


# ---- attention and conv -> attention sessions in 16 bits ------------------------------------------------


@pytest.mark.parametrize("dt", LOWP)
@pytest.mark.parametrize("causal", [False, True])
def test_lowp_attention_session(rng, dt, causal, device):
    seq, d = 45, 40
    s = lc.AttentionSession(seq, d, causal=causal, device=device, dtype=dt)
    assert s.dtype == dt.name and f"dtype='{dt.name}'" in repr(s)
    q, k, v = (_rand(rng, (seq, d), dt) for _ in range(3))
    ref = _attn64(q, k, v, causal)
    eager = lc.attention2d(q, k, v, causal, device)
    for method in ("start_into", "sync_into"):
        out = _poison((seq, d), dt)
        getattr(s, method)(q, k, v, out)
        got = _f64(out)
        assert np.all(np.isfinite(got))
        assert np.all(np.abs(got - ref) <= 2 * _u(dt) * np.abs(ref) + 1e-4 * np.max(np.abs(_f64(v))))
        # the session runs attention_forward's kernel: the eager op's bits
        assert np.array_equal(out.view(np.uint16), eager.view(np.uint16))
    out = _poison((seq * d,), dt)
    s.run_batch_sync_into(q, k, v, out, 3)
    assert np.array_equal(out.reshape(seq, d).view(np.uint16), eager.view(np.uint16))
    with pytest.raises(TypeError, match=rf"input 0: expected dtype {dt.name} \(the session's.*got float32"):
        s.start_into(q.astype(np.float32), k, v, out)


@pytest.mark.parametrize("dt", LOWP)
@pytest.mark.parametrize("seq,d", [(21, 32), (6, 130)])
def test_lowp_conv_attention_session(rng, dt, seq, d, device):
    x, w, b = _rand(rng, (1, 3, 9, 7), dt, 0, 1), _rand(rng, (16, 3, 3, 3), dt, -0.5, 0.5), _rand(rng, (16,), dt, -0.5, 0.5)
    s = lc.ConvAttentionSession(1, 3, 9, 7, 16, seq, d, device=device, dtype=dt.name)
    assert s.dtype == dt.name
    out = _poison((seq, d), dt)
    s.start_into(x, w, b, out)
    # a 16-bit chain runs as its three ops (each rounding once): the eager chain's bits
    y = lc.conv2d_nchw(x, w, b, 1, 1, 1, 1, device, True)  # stride 1, pad 1, ReLU
    q, k, v = lc.qkv_pack_repeat(y, seq, d, device=device)
    chain = lc.attention2d(q, k, v, False, device)
    assert y.dtype == dt and chain.dtype == dt
    assert np.array_equal(out.view(np.uint16), chain.view(np.uint16))
    # and near float64: the conv's float64 output rounded to the dtype, attention in float64
    from lightning_core.testing import refs
    y64 = refs.ref_conv2d(_f64(x), _f64(w), _f64(b), pad_h=1, pad_w=1, apply_relu=True)
    flat = y64.astype(np.float32).astype(dt).astype(np.float64).ravel()
    qkv = flat[np.arange(3 * seq * d) % flat.size].reshape(3, seq, d)
    ref = refs.ref_attention(qkv[0], qkv[1], qkv[2])
    assert np.all(np.abs(_f64(out) - ref) <= 3 * _u(dt) * np.abs(ref) + 4 * _u(dt) * np.max(np.abs(qkv[2])))
    out2 = _poison((seq, d), dt)
    s.run_batch_sync_into(x, w, b, out2, 2)
    assert np.array_equal(out2.view(np.uint16), out.view(np.uint16))
