"""lc.api engines and the seed's integrated names (python/lightning_core/api.py; seed sections 18, 24):
engine switching gives the same results (lightning vs torch when torch is installed), a torch request
without torch falls back with torch_unavailable_fallback in the trace, route policies, the legacy
lightning_* names with the seed's argument orders, and bad arguments."""
import numpy as np
import pytest

import lightning_core as lc
from lightning_core import api

TOL = 3e-5


@pytest.fixture(autouse=True)
def _restore_engine():
    engine, route = api.get_engine(), api.get_route_policy()
    yield
    api.set_engine(engine)
    api.set_route_policy(**route)
    api._torch = None


def _have_torch():
    return api._torch_module() is not None


def _inputs(rng):
    x = rng.random((1, 3, 9, 7)).astype(np.float32)
    w = (rng.random((5, 3, 3, 3)) - 0.5).astype(np.float32)
    b = (rng.random(5) - 0.5).astype(np.float32)
    return x, w, b


@pytest.mark.parametrize("engine", ["lightning", "auto", "torch"])
def test_engines_agree(engine, device, rng, ref, rel_err):
    if engine == "torch" and not _have_torch():
        pytest.skip("torch is not installed here")
    api.set_engine(engine)
    assert api.get_engine() == engine
    a = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal((29, 23)).astype(np.float32)
    assert rel_err(api.matmul(a, b, device=device), ref.matmul(a, b)) < TOL
    out = np.full((37, 23), np.nan, np.float32)
    assert api.matmul_into(a, b, out, device=device) is out and rel_err(out, ref.matmul(a, b)) < TOL
    seq, d = 19, 12
    q, k, v = (rng.standard_normal(seq * d).astype(np.float32) for _ in range(3))
    expect = ref.attention(q.reshape(seq, d), k.reshape(seq, d), v.reshape(seq, d), causal=True).reshape(-1)
    assert rel_err(api.attention(q, k, v, seq, d, True, device), expect) < TOL
    o = np.full(seq * d, np.nan, np.float32)
    api.attention_into(q, k, v, o, seq, d, True, device)
    assert rel_err(o, expect) < TOL
    x, w, bb = _inputs(rng)
    y = api.conv_relu_nchw(x, w, bb, stride_h=2, stride_w=1, pad_h=1, pad_w=1, device=device)
    assert rel_err(y, ref.conv2d(x, w, bb, 2, 1, 1, 1, apply_relu=True)) < TOL
    z = api.conv_attention_torchstrong_nchw(x, w, bb, seq_len=11, head_dim=6, device=device)
    zl = lc.lightning_conv_attention_torchstrong_nchw(x, w, bb, 11, 6, 1, 1, 1, 1, device)
    assert rel_err(z, zl.astype(np.float64)) < TOL


def test_torch_request_without_torch_falls_back(rng, ref, rel_err):
    api._torch = False  # as if `import torch` failed
    api.set_engine("torch")
    a = rng.standard_normal((8, 5)).astype(np.float32)
    lc.runtime_trace_clear()
    lc.runtime_trace_enable(True)
    try:
        out = api.matmul(a, a.T.copy(), device="cpu")
    finally:
        lc.runtime_trace_enable(False)
    assert rel_err(out, ref.matmul(a, a.T)) < TOL
    notes = [e for e in lc.runtime_trace_events() if e["reason"] == "torch_unavailable_fallback"]
    assert len(notes) == 1 and notes[0]["op"] == "matmul" and notes[0]["path"] == "lightning"


def test_graph_route_to_torch_runs_eager(rng, ref, rel_err):
    api._torch = False
    api.set_route_policy(graph="torch")
    x, w, b = _inputs(rng)
    lc.runtime_trace_clear()
    lc.runtime_trace_enable(True)
    try:
        z = api.conv_attention_torchstrong_nchw(x, w, b, 8, 4, device="cpu", execution_mode="graph")
    finally:
        lc.runtime_trace_enable(False)
    assert z.shape == (8, 4)
    reasons = [e["reason"] for e in lc.runtime_trace_events() if e["op"] == "conv_attention_torchstrong_nchw"]
    assert reasons == ["graph_engine_not_lightning"]
    assert api.get_route_policy() == {"conv": None, "attention": None, "graph": "torch"}


def test_legacy_names_and_orders(rng, ref, rel_err):
    a = rng.standard_normal((6, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    assert rel_err(lc.lightning_matmul(a, b, "cpu"), ref.matmul(a, b)) < TOL
    out = np.empty((6, 5), np.float32)
    lc.lightning_matmul_into(a, b, out, "cpu")
    assert rel_err(out, ref.matmul(a, b)) < TOL
    seq, d = 8, 16  # seed section 21 shapes, flat layout
    q, k, v = (rng.random(seq * d).astype(np.float32) for _ in range(3))
    o = np.empty(seq * d, np.float32)
    lc.lightning_attention_into(q, k, v, o, seq, d, False, "cpu")
    assert rel_err(lc.lightning_attention(q, k, v, seq, d), o.astype(np.float64)) < TOL
    x, w, bb = _inputs(rng)
    y = np.empty((1, 5, 9, 7), np.float32)
    lc.lightning_conv_relu_nchw_into(x, w, bb, y, 1, 1, 1, 1, "cpu")
    assert rel_err(lc.lightning_conv_relu_nchw(x, w, bb, 1, 1, 1, 1, "cpu"), y.astype(np.float64)) < TOL
    z = np.empty(6 * 5, np.float32)
    lc.lightning_conv_attention_torchstrong_nchw_into(x, w, bb, z, 6, 5, 1, 1, 1, 1, "cpu")
    assert rel_err(z.reshape(6, 5), lc.lightning_conv_attention_torchstrong_nchw(x, w, bb, 6, 5, 1, 1, 1, 1, "cpu")) < TOL


def test_bad_arguments(rng):
    with pytest.raises(ValueError, match="engine"):
        api.set_engine("tensorflow")
    with pytest.raises(ValueError, match="attention"):
        api.set_route_policy(attention="jax")
    x, w, b = _inputs(rng)
    with pytest.raises(ValueError, match="out"):
        api.conv_attention_torchstrong_nchw_into(x, w, b, np.empty(3, np.float32), 4, 4, device="cpu")
