"""lightning_core.api — the seed's clean-name integrated API (seed section 24), the part the graph layer
needs now: ``conv_attention_torchstrong_nchw`` (conv + ReLU -> qkv repeat -> attention) in
``execution_mode="eager"`` (op by op) or ``"graph"`` (a planned, fused, replayed graph), and
``conv_attention_torchstrong_nchw_ab_report`` (parity + speed of both modes). Engines, nn, autograd and
the rest of lc.api come with the high-level API issue.

Graph mode covers what the seed's graph path covers: a 3x3 kernel, stride 1, pad 1. Any other shape runs
eagerly, deterministically, and the runtime trace records ``graph_shape_unsupported``.
Tests: tests/python/test_api_graph.py. Reference: docs/python_api.md ("lc.api (graph path)").
"""
import time

import numpy as np

from . import _C
from .graph import Graph

__all__ = ["conv_attention_torchstrong_nchw", "conv_attention_torchstrong_nchw_ab_report"]

_MODES = ("eager", "graph")
_plans = {}


def _f32(name, a, ndim):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim != ndim:
        raise ValueError(f"conv_attention_torchstrong_nchw: {name}: expected {ndim} dimensions, got shape {a.shape}")
    return a


def _eager(x, w, b, seq_len, head_dim, sh, sw, ph, pw, device):
    y = _C.conv2d_nchw(x, w, b, sh, sw, ph, pw, device, True)
    q, k, v = _C.qkv_pack_repeat(y, seq_len, head_dim, device)
    return _C.attention2d(q, k, v, False, device)


def _graph_supported(w, sh, sw, ph, pw):
    return w.shape[2] == 3 and w.shape[3] == 3 and (sh, sw, ph, pw) == (1, 1, 1, 1)


def _plan_for(x, w, b, seq_len, head_dim, device):
    key = (x.shape, w.shape, seq_len, head_dim, device)
    plan = _plans.get(key)
    if plan is None:
        g = Graph()
        y = g.conv2d(g.input("x", x.shape), g.input("w", w.shape), g.input("b", b.shape), pad_h=1, pad_w=1)
        g.output(g.attention_packed(g.qkv_pack_repeat(g.relu(y), seq_len, head_dim)))
        plan = g.plan(device=device)
        _plans[key] = plan
    return plan


def conv_attention_torchstrong_nchw(x, w, b, seq_len, head_dim, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
                                    device="auto", execution_mode="eager"):
    """relu(conv2d(x [n,c,h,w], w [oc,c,kh,kw]) + b [oc]) flattened, repeated/truncated into q, k, v of
    [seq_len, head_dim] (element i of q|k|v = y.flat[i % y.size]), then attention -> [seq_len, head_dim].
    ``execution_mode="graph"`` plans the chain once per shape/device (cached here and in the plan cache)
    and replays it; shapes outside the graph path run eagerly with ``graph_shape_unsupported`` traced."""
    if execution_mode not in _MODES:
        raise ValueError(f"conv_attention_torchstrong_nchw: execution_mode: expected 'eager' or 'graph', got {execution_mode!r}")
    for name, v in (("seq_len", seq_len), ("head_dim", head_dim)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"conv_attention_torchstrong_nchw: {name}: expected an int >= 1, got {v!r}")
    x, w, b = _f32("x", x, 4), _f32("w", w, 4), _f32("b", b, 1)
    if execution_mode == "graph":
        if _graph_supported(w, stride_h, stride_w, pad_h, pad_w):
            return _plan_for(x, w, b, int(seq_len), int(head_dim), device).run(x, w, b)[0]
        _C._trace_note("conv_attention_torchstrong_nchw", "eager_fallback", device if device != "auto" else "auto",
                       "cuda" if device != "cpu" and _C.cuda_available() else "cpu", "graph_shape_unsupported")
    return _eager(x, w, b, int(seq_len), int(head_dim), stride_h, stride_w, pad_h, pad_w, device)


def _median_ms(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def _dispatches(fn):
    before = _C.runtime_counters()
    fn()
    after = _C.runtime_counters()
    return (after["dispatches"] - before["dispatches"]) + (after["graph_launches"] - before["graph_launches"])


def conv_attention_torchstrong_nchw_ab_report(x, w, b, seq_len, head_dim, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
                                              device="auto", warmup=3, iters=20):
    """Runs the chain in both modes on the same inputs: the seed's report fields ``winner`` ('graph' or
    'eager'), ``graph_over_eager`` (eager time / graph time: > 1 means graph is faster), ``max_abs_diff``,
    plus ``eager_ms``, ``graph_ms`` (median one-shot call, NumPy in/out), host dispatches per call
    (``eager_host_dispatches``, ``graph_host_dispatches``: ops dispatched + graph launches), and
    ``graph_mode_supported``."""
    args = (x, w, b, seq_len, head_dim, stride_h, stride_w, pad_h, pad_w, device)
    eager = conv_attention_torchstrong_nchw(*args, execution_mode="eager")
    graph = conv_attention_torchstrong_nchw(*args, execution_mode="graph")
    eager_ms = _median_ms(lambda: conv_attention_torchstrong_nchw(*args, execution_mode="eager"), warmup, iters)
    graph_ms = _median_ms(lambda: conv_attention_torchstrong_nchw(*args, execution_mode="graph"), warmup, iters)
    supported = _graph_supported(np.asarray(w).reshape(np.shape(w)), stride_h, stride_w, pad_h, pad_w)
    return {
        "winner": "graph" if graph_ms < eager_ms else "eager",
        "graph_over_eager": eager_ms / graph_ms if graph_ms > 0 else float("nan"),
        "max_abs_diff": float(np.max(np.abs(eager.astype(np.float64) - graph))),
        "eager_ms": eager_ms,
        "graph_ms": graph_ms,
        "eager_host_dispatches": _dispatches(lambda: conv_attention_torchstrong_nchw(*args, execution_mode="eager")),
        "graph_host_dispatches": _dispatches(lambda: conv_attention_torchstrong_nchw(*args, execution_mode="graph")),
        "graph_mode_supported": supported,
        "seq_len": int(seq_len),
        "head_dim": int(head_dim),
    }
