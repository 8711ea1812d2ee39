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


def _chain_inputs(rng):
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    w = (rng.random((16, 3, 3, 3)) - 0.5).astype(np.float32)
    b = (rng.random(16) - 0.5).astype(np.float32)
    return x, w, b


def _outcome(call):
    try:
        z = call()
    except Exception as exc:  # noqa: BLE001 - the outcome is compared
        return type(exc), str(exc)
    return "ok", np.asarray(z).shape


def test_one_argument_rule_for_every_mode_and_engine(rng):
    # Issue 12: graph mode took int32/list x, said ValueError for seq_len=16.0 and failed on b=None.
    # Every route (eager fast path, eager through the engine layer, graph) gives the same outcome.
    x, w, b = _chain_inputs(rng)
    cases = {
        "x int32": dict(x=x.astype(np.int32)), "x list": dict(x=x.tolist()), "x empty": dict(x=x[:, :, :0]),
        "x 3-d": dict(x=x[0]), "w channels": dict(w=w[:, :2]), "b shape": dict(b=b[:3]), "b list": dict(b=b.tolist()),
        "b None": dict(b=None), "x float64": dict(x=x.astype(np.float64)), "x float16": dict(x=x.astype(np.float16), w=w.astype(np.float16), b=b.astype(np.float16)),
        "x Tensor64": dict(x=lc.Tensor64(x.astype(np.float64))), "x Tensor": dict(x=lc.Tensor(x)),
        "seq float": dict(seq_len=16.0), "seq bool": dict(seq_len=True), "seq 0": dict(seq_len=0),
        "head_dim str": dict(head_dim="8"), "seq np.int64": dict(seq_len=np.int64(16)),
        "stride 0": dict(stride_h=0), "pad -1": dict(pad_w=-1), "pad float": dict(pad_h=1.0),
        "device None": dict(device=None), "device gpu": dict(device="gpu"), "kernel too big": dict(pad_h=0, x=x[:, :, :2]),
        # float16 mixed with another dtype: refused in graph mode too (the fuzzer found graph mode converting it)
        "b float16 mixed": dict(b=b.astype(np.float16)), "x float16 mixed": dict(x=x.astype(np.float16)),
    }
    for name, over in cases.items():
        args = dict(x=x, w=w, b=b, seq_len=16, head_dim=8, stride_h=1, stride_w=1, pad_h=1, pad_w=1, device="cpu")
        args.update(over)
        seen = {}
        for route in ("eager", "eager_engine", "graph"):
            mode = "graph" if route == "graph" else "eager"
            if route == "eager_engine":
                lc.api.set_route_policy(attention="lightning")  # not the fast path, same engine
                lc.api.set_engine("auto")
                lc.api._state["plain"] = False
            try:
                seen[route] = _outcome(lambda: lc.api.conv_attention_torchstrong_nchw(**args, execution_mode=mode))
            finally:
                lc.api.set_engine("lightning")
                lc.api.set_route_policy()
        assert seen["eager"] == seen["eager_engine"] == seen["graph"], (name, seen)
        if name in ("b None", "x float64", "x float16", "x Tensor", "seq np.int64"):
            assert seen["graph"] == ("ok", (16, 8)), (name, seen)
        else:
            assert seen["graph"][0] in (TypeError, ValueError), (name, seen)
            assert "conv_attention_torchstrong_nchw: " in seen["graph"][1], (name, seen)
    bad_types = {"x int32", "x list", "b list", "x Tensor64", "seq float", "seq bool", "head_dim str", "pad float",
                 "device None", "b float16 mixed", "x float16 mixed"}
    for name in cases:
        args = dict(x=x, w=w, b=b, seq_len=16, head_dim=8, device="cpu")
        args.update(cases[name])
        got = _outcome(lambda: lc.api.conv_attention_torchstrong_nchw(**args, execution_mode="graph"))[0]
        if got != "ok":
            assert got is (TypeError if name in bad_types else ValueError), (name, got)


def test_b_none_in_both_modes(device, rng, ref, rel_err):
    x, w, _ = _chain_inputs(rng)
    want = _chain_ref(ref, x, w, None, 24, 8)
    for mode in ("eager", "graph"):
        z = lc.api.conv_attention_torchstrong_nchw(x, w, None, 24, 8, device=device, execution_mode=mode)
        assert rel_err(z, want) < TOL, mode


@pytest.mark.parametrize("fn", ["api", "legacy"])
@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_into_out_rule(rng, ref, rel_err, fn, mode):
    # Issue 12: a non-contiguous out got the result in a reshaped copy and came back unchanged.
    x, w, b = _chain_inputs(rng)
    seq, d = 12, 8
    want = _chain_ref(ref, x, w, b, seq, d)

    def call(out):
        if fn == "api":
            return lc.api.conv_attention_torchstrong_nchw_into(x, w, b, out, seq, d, device="cpu", execution_mode=mode)
        return lc.lightning_conv_attention_torchstrong_nchw_into(x, w, b, out, seq, d, 1, 1, 1, 1, "cpu", mode)

    base = np.full((seq, 2 * d), np.nan, np.float32)
    bad = {
        "non-contiguous": (base[:, ::2], ValueError, "C-contiguous"),
        "transposed": (np.full((d, seq), np.nan, np.float32).T, ValueError, "C-contiguous"),
        "read-only": (np.full((seq, d), np.nan, np.float32), ValueError, "writable"),
        "float64": (np.full((seq, d), np.nan), TypeError, "dtype"),
        "count": (np.full((seq, d + 1), np.nan, np.float32), ValueError, "elements"),
        "list": ([0.0] * (seq * d), TypeError, "numpy.ndarray"),
        "strided tensor": (lc.TensorView(lc.Tensor(np.zeros((seq, 2 * d), np.float32)), (seq, d), (2 * d, 2)),
                           ValueError, "contiguous"),
    }
    bad["read-only"][0].flags.writeable = False
    for name, (out, exc, words) in bad.items():
        with pytest.raises(exc, match=words):
            call(out)
    assert np.isnan(base).all()  # nothing written through a view or a copy
    # out sharing bytes with an input (here: the tail of w's buffer) is refused before any work
    buf = np.zeros(w.size + seq * d, np.float32)
    w_in = buf[:w.size].reshape(w.shape)
    w_in[...] = w
    with pytest.raises(ValueError, match="out: expected memory separate from w"):
        if fn == "api":
            lc.api.conv_attention_torchstrong_nchw_into(x, w_in, b, buf[w.size - 4:w.size - 4 + seq * d], seq, d,
                                                        device="cpu", execution_mode=mode)
        else:
            lc.lightning_conv_attention_torchstrong_nchw_into(x, w_in, b, buf[w.size - 4:w.size - 4 + seq * d], seq, d,
                                                              1, 1, 1, 1, "cpu", mode)
    assert np.array_equal(w_in, w)
    for out in (np.full((seq, d), np.nan, np.float32), np.full(seq * d, np.nan, np.float32)):
        assert call(out) is out and rel_err(out.reshape(seq, d), want) < TOL
    t = lc.Tensor(np.full((seq, d), np.nan, np.float32))
    assert call(t) is t and rel_err(t.numpy(), want) < TOL
