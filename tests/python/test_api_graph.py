"""lc.api's graph path (python/lightning_core/api.py): conv_attention_torchstrong_nchw in eager and graph
modes against the float64 chain reference on cpu and cuda, the deterministic eager fallback with
graph_shape_unsupported in the trace, and the A/B report fields (seed section 24)."""
import numpy as np
import pytest

import lightning_core as lc

TOL = 3e-5


def _chain_ref(ref, x, w, b, seq, d, stride=1, pad=1):
    y = ref.conv2d(x, w, b, stride, stride, pad, pad, apply_relu=True).ravel()
    flat = y[np.arange(3 * seq * d) % y.size]
    q, k, v = (flat[i * seq * d:(i + 1) * seq * d].reshape(seq, d) for i in range(3))
    return ref.attention(q, k, v)


@pytest.mark.parametrize("seq,d", [(48, 48), (96, 48), (192, 8), (13, 7)])
def test_modes_agree_with_reference(device, seq, d, rng, ref, rel_err):
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    w = (rng.random((16, 3, 3, 3)) - 0.5).astype(np.float32)
    b = (rng.random(16) - 0.5).astype(np.float32)
    expect = _chain_ref(ref, x, w, b, seq, d)
    for mode in ("eager", "graph"):
        z = lc.api.conv_attention_torchstrong_nchw(x, w, b, seq_len=seq, head_dim=d, device=device, execution_mode=mode)
        assert z.shape == (seq, d) and rel_err(z, expect) < TOL
    # graph mode takes new weights on every call (they are graph inputs, not baked constants)
    w2 = (rng.random((16, 3, 3, 3)) - 0.5).astype(np.float32)
    z2 = lc.api.conv_attention_torchstrong_nchw(x, w2, b, seq_len=seq, head_dim=d, device=device, execution_mode="graph")
    assert rel_err(z2, _chain_ref(ref, x, w2, b, seq, d)) < TOL


def test_unsupported_shape_falls_back_to_eager(device, rng, ref, rel_err):
    x = rng.random((1, 3, 9, 9)).astype(np.float32)
    w = (rng.random((4, 3, 3, 3)) - 0.5).astype(np.float32)
    b = (rng.random(4) - 0.5).astype(np.float32)
    lc.runtime_trace_clear()
    lc.runtime_trace_enable(True)
    try:
        z = lc.api.conv_attention_torchstrong_nchw(x, w, b, seq_len=10, head_dim=6, stride_h=2, stride_w=2,
                                                   device=device, execution_mode="graph")
    finally:
        lc.runtime_trace_enable(False)
    assert rel_err(z, _chain_ref(ref, x, w, b, 10, 6, stride=2)) < TOL
    notes = [e for e in lc.runtime_trace_events() if e["op"] == "conv_attention_torchstrong_nchw"]
    assert len(notes) == 1 and notes[0]["reason"] == "graph_shape_unsupported" and notes[0]["fallback"]
    assert notes[0]["path"] == "eager_fallback"


def test_ab_report(device, rng):
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    w = rng.random((16, 3, 3, 3)).astype(np.float32)
    b = rng.random(16).astype(np.float32)
    r = lc.api.conv_attention_torchstrong_nchw_ab_report(x, w, b, seq_len=96, head_dim=48, device=device, warmup=1, iters=3)
    assert r["winner"] in ("graph", "eager") and r["graph_over_eager"] > 0 and r["max_abs_diff"] < 1e-4
    assert r["graph_mode_supported"] and r["eager_host_dispatches"] == 3
    if device == "cuda":
        assert r["graph_host_dispatches"] == 1  # one graph launch per call once captured


def test_bad_arguments(rng):
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    w = rng.random((16, 3, 3, 3)).astype(np.float32)
    b = rng.random(16).astype(np.float32)
    with pytest.raises(ValueError, match="execution_mode"):
        lc.api.conv_attention_torchstrong_nchw(x, w, b, 8, 8, execution_mode="fused")
    with pytest.raises(ValueError, match="seq_len"):
        lc.api.conv_attention_torchstrong_nchw(x, w, b, 0, 8)
    with pytest.raises(ValueError, match="x: expected 4 dimensions"):
        lc.api.conv_attention_torchstrong_nchw(x[0], w, b, 8, 8)
    with pytest.raises(ValueError, match="_trace_note"):
        lc._C._trace_note("not_an_op", "graph", "cpu", "cpu", "direct")
