"""lightning_core.api — the seed's clean-name integrated API (seed sections 18 and 24).

Engines: ``set_engine("lightning" | "torch" | "auto")`` / ``get_engine()`` choose who runs the calls
below: lightning (this library), torch (PyTorch on the matching device, NumPy in and out; when torch is
not installed the call runs on lightning and the runtime trace records ``torch_unavailable_fallback``),
or auto (lightning: every call here has a lightning kernel). ``set_route_policy(conv=, attention=,
graph=)`` overrides the engine per subgraph kind (None = follow the engine); graph execution whose
route resolves to torch runs eagerly and records ``graph_engine_not_lightning``.

Calls (NumPy in, NumPy out, or lightning Tensors where the underlying op takes them): ``matmul``,
``attention`` / ``attention_into`` (flat seed layout: seq·head_dim elements), ``conv_relu_nchw`` /
``conv_relu_nchw_into``, ``conv_attention_torchstrong_nchw`` / ``_into`` with
``execution_mode="eager" | "graph"`` (graph: a planned, fused graph replayed per call; 3x3 stride 1 pad 1,
other shapes run eagerly with ``graph_shape_unsupported`` traced) and
``conv_attention_torchstrong_nchw_ab_report``. The lightning path is one check and one C call, so an
lc.api call costs the same as the direct ``lightning_core`` call (benchmarked). The conv -> attention
chain checks its arguments with one rule for every mode and engine (``_chain_args``); ``*_into`` calls
filled here check ``out`` with the library's rule (``_checks.check_out``). Graph mode's plans are an LRU
pool (``set_graph_cache_capacity``, ``graph_cache_info``, ``clear_graph_cache``): concurrent calls never
share a plan.
Tests: tests/python/test_api.py, tests/python/test_api_graph.py, tests/python/test_threads_hidden_state.py.
Reference: docs/python_api.md ("lc.api").
"""

import numpy as np

from . import _C
from ._checks import check_device as _check_device, check_input as _check_input, check_int as _check_int
from ._checks import check_one_lowp as _check_one_lowp
from ._checks import check_out as _check_out, fill_out as _fill_out, is_tensor as _is_tensor
from ._pool import ObjectPool as _ObjectPool, check_capacity as _check_capacity
from .graph import Graph as _Graph

__all__ = [
    "set_engine", "get_engine", "set_route_policy", "get_route_policy", "matmul", "matmul_into", "attention", "attention_into",
    "conv_relu_nchw", "conv_relu_nchw_into", "conv_attention_torchstrong_nchw", "conv_attention_torchstrong_nchw_into",
    "conv_attention_torchstrong_nchw_ab_report", "set_graph_cache_capacity", "graph_cache_info", "clear_graph_cache",
]

_ENGINES = ("lightning", "torch", "auto")
_ROUTES = ("conv", "attention", "graph")
_MODES = ("eager", "graph")
_state = {"engine": "lightning", "route": {"conv": None, "attention": None, "graph": None}, "plain": True}
# "plain": the engine is lightning and no route overrides it, so calls take the shortest path.
_torch = None  # False once an import failed
# graph mode: plans per (shapes, bias, seq_len, head_dim, device); a thread borrows one for its call, so no
# two threads ever run one plan at once (_pool.py); LRU-bounded (set_graph_cache_capacity)
_plans = _ObjectPool(capacity=64, per_key=8)


def set_engine(engine):
    """'lightning', 'torch' or 'auto' for every lc.api call (process-wide)."""
    if engine not in _ENGINES:
        raise ValueError(f"set_engine: engine: expected 'lightning', 'torch' or 'auto', got {engine!r}")
    _state["engine"] = engine
    _update_plain()


def get_engine():
    return _state["engine"]


def set_route_policy(conv=None, attention=None, graph=None):
    """Per-subgraph engine overrides ('lightning' | 'torch' | 'auto' | None = follow set_engine)."""
    for name, value in (("conv", conv), ("attention", attention), ("graph", graph)):
        if value is not None and value not in _ENGINES:
            raise ValueError(f"set_route_policy: {name}: expected 'lightning', 'torch', 'auto' or None, got {value!r}")
    _state["route"] = {"conv": conv, "attention": attention, "graph": graph}
    _update_plain()


def _update_plain():
    _state["plain"] = _state["engine"] != "torch" and all(v in (None, "lightning", "auto") for v in _state["route"].values())


def get_route_policy():
    return dict(_state["route"])


def _torch_module():
    global _torch
    if _torch is None:
        try:
            import torch  # noqa: PLC0415 (optional peer, imported on first torch-engine call)

            _torch = torch
        except Exception:  # noqa: BLE001 (any import failure means: no torch here)
            _torch = False
    return _torch or None


def _engine_for(kind, op_word, device):
    """'lightning' or 'torch' for this call (kind: a route_policy key, or None for the engine alone); a torch
    request without torch falls back to lightning (traced as torch_unavailable_fallback)."""
    engine = (_state["route"].get(kind) if kind else None) or _state["engine"]
    if engine != "torch":
        return "lightning"
    if _torch_module() is None:
        _C._trace_note(op_word, "lightning", _dev_word(device), "cuda" if _C.cuda_available() else "cpu",
                       "torch_unavailable_fallback")
        return "lightning"
    return "torch"


def _dev_word(device):
    return device if device in ("cpu", "cuda", "metal", "auto") else "auto"


def _torch_device(device):
    torch = _torch_module()
    return "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"


def _to_torch(a, dev):
    torch = _torch_module()
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(dev)


def _from_torch(t):
    return t.detach().to("cpu").contiguous().numpy()


# ---- matmul ------------------------------------------------------------------------------------------

def matmul(a, b, device="auto"):
    """a [m,k] @ b [k,n] -> [m,n]."""
    if _state["engine"] != "torch" or _engine_for(None, "matmul", device) == "lightning":
        return _C.matmul2d(a, b, device)
    dev = _torch_device(device)
    return _from_torch(_to_torch(a, dev) @ _to_torch(b, dev))


def matmul_into(a, b, out, device="auto"):
    """a [m,k] @ b [k,n] into out [m,n]; returns out."""
    if _state["engine"] != "torch" or _engine_for(None, "matmul", device) == "lightning":
        return _C.matmul2d_into(a, b, out, device)
    dev = _torch_device(device)
    res = _from_torch(_to_torch(a, dev) @ _to_torch(b, dev))
    _check_out("matmul_into", out, shape=res.shape, inputs={"a": a, "b": b})
    return _fill_out(out, res)


# ---- attention ---------------------------------------------------------------------------------------

def _torch_attention(q, k, v, seq, head_dim, causal, device):
    torch = _torch_module()
    dev = _torch_device(device)
    tq, tk, tv = (_to_torch(np.asarray(t).reshape(1, 1, seq, head_dim), dev) for t in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=bool(causal))
    return _from_torch(out).reshape(seq * head_dim)


def attention(q, k, v, seq, head_dim, causal=False, device="auto"):
    """Single-head attention over flat (or any-shape) q, k, v of seq·head_dim elements -> flat [seq·head_dim]."""
    if _engine_for("attention", "attention", device) == "lightning":
        return _C.attention_forward(q, k, v, seq, head_dim, causal, device)
    return _torch_attention(q, k, v, seq, head_dim, causal, device)


def attention_into(q, k, v, out, seq, head_dim, causal=False, device="auto"):
    if _engine_for("attention", "attention", device) == "lightning":
        return _C.attention_forward_into(q, k, v, out, seq, head_dim, causal, device)
    res = _torch_attention(q, k, v, seq, head_dim, causal, device)
    _check_out("attention_into", out, count=res.size, inputs={"q": q, "k": k, "v": v})
    return _fill_out(out, res)


# ---- conv + relu -------------------------------------------------------------------------------------

def _torch_conv_relu(x, w, b, sh, sw, ph, pw, device):
    torch = _torch_module()
    dev = _torch_device(device)
    y = torch.nn.functional.conv2d(_to_torch(x, dev), _to_torch(w, dev), None if b is None else _to_torch(b, dev),
                                   stride=(sh, sw), padding=(ph, pw))
    return _from_torch(torch.relu(y))


def conv_relu_nchw(x, w, b, stride_h=1, stride_w=1, pad_h=0, pad_w=0, device="auto"):
    """relu(conv2d(x [n,c,h,w], w [oc,c,kh,kw]) + b [oc]) -> [n,oc,oh,ow]."""
    if _engine_for("conv", "conv_relu_nchw", device) == "lightning":
        return _C.conv2d_nchw(x, w, b, stride_h, stride_w, pad_h, pad_w, device, True)
    return _torch_conv_relu(x, w, b, stride_h, stride_w, pad_h, pad_w, device)


def conv_relu_nchw_into(x, w, b, out, stride_h=1, stride_w=1, pad_h=0, pad_w=0, device="auto"):
    if _engine_for("conv", "conv_relu_nchw", device) == "lightning":
        return _C.conv2d_nchw_into(x, w, b, out, stride_h, stride_w, pad_h, pad_w, device, True)
    res = _torch_conv_relu(x, w, b, stride_h, stride_w, pad_h, pad_w, device)
    _check_out("conv_relu_nchw_into", out, shape=res.shape, inputs={"x": x, "w": w, "b": b})
    return _fill_out(out, res)


# ---- conv -> attention ---------------------------------------------------------------------------------

_CHAIN = "conv_attention_torchstrong_nchw"
_INT_MAX = 2**31 - 1


def _chain_args(fn, x, w, b, seq_len, head_dim, sh, sw, ph, pw, device, execution_mode):
    """The one argument check of the conv -> attention chain, for both execution modes and both engines
    (the C ops' rules, docs "Input rules", named after the lc.api call): (seq_len, head_dim, sh, sw, ph, pw)
    as ints."""
    if not isinstance(execution_mode, str):
        raise TypeError(f"{fn}: execution_mode: expected 'eager' or 'graph', got {type(execution_mode).__name__}")
    if execution_mode not in _MODES:
        raise ValueError(f"{fn}: execution_mode: expected 'eager' or 'graph', got {execution_mode!r}")
    xs, ws = _check_input(fn, "x", x, 4), _check_input(fn, "w", w, 4)
    if ws[1] != xs[1]:
        raise ValueError(f"{fn}: w: expected shape (oc, {xs[1]}, kh, kw) with c matching x, got {ws}")
    if b is not None and _check_input(fn, "b", b) != (ws[0],):
        raise ValueError(f"{fn}: b: expected shape ({ws[0]},) (oc of w) or None, got {tuple(b.shape)}")
    _check_one_lowp(fn, {"x": x, "w": w, "b": b})  # as the eager C ops: both modes refuse the same inputs
    seq_len, head_dim = _check_int(fn, "seq_len", seq_len, 1), _check_int(fn, "head_dim", head_dim, 1)
    sh, sw = _check_int(fn, "stride_h", sh, 1, _INT_MAX), _check_int(fn, "stride_w", sw, 1, _INT_MAX)
    ph, pw = _check_int(fn, "pad_h", ph, 0, _INT_MAX), _check_int(fn, "pad_w", pw, 0, _INT_MAX)
    _check_device(fn, device)
    if xs[2] + 2 * ph < ws[2] or xs[3] + 2 * pw < ws[3]:
        raise ValueError(f"{fn}: w: expected a kernel that fits the padded input (output size >= 1), got kernel "
                         f"{ws[2:]} for input {xs[2:]} with pad_h={ph}, pad_w={pw}")
    return seq_len, head_dim, sh, sw, ph, pw


def _split_qkv(qkv, seq_len, head_dim):
    """q, k, v of a packed [3, seq_len, head_dim] result: ndarray rows, or views of a tensor (tensor inputs
    give a tensor, on their device)."""
    if type(qkv) is np.ndarray:
        return qkv
    n = seq_len * head_dim
    return tuple(_C.TensorView(qkv, (seq_len, head_dim), None, i * n) for i in range(3))


def _chain_eager(x, w, b, seq_len, head_dim, sh, sw, ph, pw, device):
    if _engine_for("conv", _CHAIN, device) == "torch":
        y = _torch_conv_relu(x, w, b, sh, sw, ph, pw, device).reshape(-1)
        flat = y[np.arange(3 * seq_len * head_dim) % y.size]
        q, k, v = (flat[i * seq_len * head_dim:(i + 1) * seq_len * head_dim] for i in range(3))
        return attention(q, k, v, seq_len, head_dim, False, device).reshape(seq_len, head_dim)
    y = _C.conv2d_nchw(x, w, b, sh, sw, ph, pw, device, True)
    q, k, v = _split_qkv(_C.qkv_pack_repeat(y, seq_len, head_dim, device), seq_len, head_dim)
    if _engine_for("attention", "attention", device) == "torch":
        return _torch_attention(q, k, v, seq_len, head_dim, False, device).reshape(seq_len, head_dim)
    return _C.attention2d(q, k, v, False, device)


def _graph_supported(w_shape, sh, sw, ph, pw):
    return w_shape[2] == 3 and w_shape[3] == 3 and (sh, sw, ph, pw) == (1, 1, 1, 1)


def _run_plan(x, w, b, seq_len, head_dim, device):
    """The chain as a planned graph (x, w[, b] its inputs), on a plan this thread alone uses meanwhile."""
    xs, ws = tuple(x.shape), tuple(w.shape)

    def make():
        g = _Graph()
        gx, gw = g.input("x", xs), g.input("w", ws)
        gb = None if b is None else g.input("b", (ws[0],))
        y = g.conv2d(gx, gw, gb, pad_h=1, pad_w=1)
        g.output(g.attention_packed(g.qkv_pack_repeat(g.relu(y), seq_len, head_dim)))
        return g.plan(device=device)

    with _plans.borrow((xs, ws, b is not None, seq_len, head_dim, device), make) as plan:
        z = plan.run(x, w)[0] if b is None else plan.run(x, w, b)[0]
    first = next((t for t in (x, w, b) if _is_tensor(t)), None)
    return z if first is None else _C.Tensor(z, first.device)  # tensors in, a tensor out (as in eager mode)


def _chain(x, w, b, seq_len, head_dim, sh, sw, ph, pw, device, execution_mode):
    if execution_mode == "eager" and _state["plain"]:
        q, k, v = _split_qkv(_C.qkv_pack_repeat(_C.conv2d_nchw(x, w, b, sh, sw, ph, pw, device, True), seq_len, head_dim,
                                                device), seq_len, head_dim)
        return _C.attention2d(q, k, v, False, device)
    if execution_mode == "graph":
        selected = "cuda" if device != "cpu" and _C.cuda_available() else "cpu"
        graph_engine = _state["route"].get("graph") or _state["engine"]
        if graph_engine == "torch":
            _C._trace_note(_CHAIN, "eager_fallback", _dev_word(device), selected, "graph_engine_not_lightning")
        elif _graph_supported(w.shape, sh, sw, ph, pw):
            return _run_plan(x, w, b, seq_len, head_dim, device)
        else:
            _C._trace_note(_CHAIN, "eager_fallback", _dev_word(device), selected, "graph_shape_unsupported")
    return _chain_eager(x, w, b, seq_len, head_dim, sh, sw, ph, pw, device)


def conv_attention_torchstrong_nchw(x, w, b, seq_len, head_dim, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
                                    device="auto", execution_mode="eager"):
    """relu(conv2d(x [n,c,h,w], w [oc,c,kh,kw]) + b [oc] or None) flattened, repeated/truncated into q, k, v
    of [seq_len, head_dim] (element i of q|k|v = y.flat[i % y.size]), then attention -> [seq_len, head_dim].
    Both modes take the same arguments (one check, _chain_args). ``execution_mode="graph"`` plans the chain
    once per shape/device (an LRU cache of set_graph_cache_capacity() shapes; concurrent calls never share
    a plan) and replays it; shapes outside the graph path run eagerly with ``graph_shape_unsupported``
    traced, a graph route resolving to torch runs eagerly with ``graph_engine_not_lightning`` traced."""
    if execution_mode == "eager" and _state["plain"]:
        # shortest path (the direct calls' cost): the C ops apply the same rules as _chain_args; when they
        # refuse, _chain_args raises that error named after this call (else the C error stands)
        try:
            q, k, v = _split_qkv(_C.qkv_pack_repeat(_C.conv2d_nchw(x, w, b, stride_h, stride_w, pad_h, pad_w, device, True),
                                                    seq_len, head_dim, device), seq_len, head_dim)
            return _C.attention2d(q, k, v, False, device)
        except (TypeError, ValueError):
            _chain_args(_CHAIN, x, w, b, seq_len, head_dim, stride_h, stride_w, pad_h, pad_w, device, execution_mode)
            raise
    ints = _chain_args(_CHAIN, x, w, b, seq_len, head_dim, stride_h, stride_w, pad_h, pad_w, device, execution_mode)
    return _chain(x, w, b, *ints, device, execution_mode)


def conv_attention_torchstrong_nchw_into(x, w, b, out, seq_len, head_dim, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
                                         device="auto", execution_mode="eager"):
    """conv_attention_torchstrong_nchw into ``out`` (float32, seq_len·head_dim elements, C-contiguous
    ndarray or contiguous tensor; checked before any work); returns out."""
    fn = _CHAIN + "_into"
    ints = _chain_args(fn, x, w, b, seq_len, head_dim, stride_h, stride_w, pad_h, pad_w, device, execution_mode)
    _check_out(fn, out, count=ints[0] * ints[1], inputs={"x": x, "w": w, "b": b})
    return _fill_out(out, _chain(x, w, b, *ints, device, execution_mode))


def set_graph_cache_capacity(n):
    """Graph mode keeps plans for at most ``n`` shapes (default 64; least recently used dropped first),
    each with at most 8 idle plans (one per thread that ran it at once)."""
    _plans.set_capacity(_check_capacity("set_graph_cache_capacity", n))


def graph_cache_info():
    """Graph mode's plan cache: {'keys': shapes cached, 'idle': plans kept, 'capacity', 'per_key'}."""
    return _plans.info()


def clear_graph_cache():
    """Drops every plan graph mode keeps (plans in use finish first and are kept afterwards)."""
    _plans.clear()


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
    from .bench.timer import time_call  # the benchmarks' one timer (median of `iters` single calls)
    eager_ms, graph_ms = (time_call(lambda m=m: conv_attention_torchstrong_nchw(*args, execution_mode=m), warmup=warmup,
                                    samples=iters, inner=1, settle_s=0.0, max_s=None)["median_ms"]
                          for m in ("eager", "graph"))
    return {
        "winner": "graph" if graph_ms < eager_ms else "eager",
        "graph_over_eager": eager_ms / graph_ms if graph_ms > 0 else float("nan"),
        "max_abs_diff": float(np.max(np.abs(eager.astype(np.float64) - graph))),
        "eager_ms": eager_ms,
        "graph_ms": graph_ms,
        "eager_host_dispatches": _dispatches(lambda: conv_attention_torchstrong_nchw(*args, execution_mode="eager")),
        "graph_host_dispatches": _dispatches(lambda: conv_attention_torchstrong_nchw(*args, execution_mode="graph")),
        "graph_mode_supported": _graph_supported(w.shape, stride_h, stride_w, pad_h, pad_w),
        "seq_len": int(seq_len),
        "head_dim": int(head_dim),
    }


# ---- the seed's legacy-prefixed names (re-exported by lightning_core) ---------------------------------

def lightning_matmul(a, b, device="auto"):
    return matmul(a, b, device)


def lightning_matmul_into(a, b, out, device="auto"):
    return matmul_into(a, b, out, device)


def lightning_attention(q, k, v, seq, head_dim, causal=False, device="auto"):
    return attention(q, k, v, seq, head_dim, causal, device)


def lightning_attention_into(q, k, v, out, seq, head_dim, causal=False, device="auto"):
    return attention_into(q, k, v, out, seq, head_dim, causal, device)


def lightning_conv_relu_nchw(x, w, b, stride_h=1, stride_w=1, pad_h=0, pad_w=0, device="auto"):
    return conv_relu_nchw(x, w, b, stride_h, stride_w, pad_h, pad_w, device)


def lightning_conv_relu_nchw_into(x, w, b, out, stride_h=1, stride_w=1, pad_h=0, pad_w=0, device="auto"):
    return conv_relu_nchw_into(x, w, b, out, stride_h, stride_w, pad_h, pad_w, device)


def lightning_conv_attention_torchstrong_nchw(x, w, b, seq_len, head_dim, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
                                              device="auto", execution_mode="eager"):
    return conv_attention_torchstrong_nchw(x, w, b, seq_len, head_dim, stride_h, stride_w, pad_h, pad_w, device,
                                           execution_mode)


def lightning_conv_attention_torchstrong_nchw_into(x, w, b, out, seq_len, head_dim, stride_h=1, stride_w=1, pad_h=1,
                                                   pad_w=1, device="auto", execution_mode="eager"):
    return conv_attention_torchstrong_nchw_into(x, w, b, out, seq_len, head_dim, stride_h, stride_w, pad_h, pad_w,
                                                device, execution_mode)


LEGACY_NAMES = [
    "lightning_matmul", "lightning_matmul_into", "lightning_attention", "lightning_attention_into",
    "lightning_conv_relu_nchw", "lightning_conv_relu_nchw_into", "lightning_conv_attention_torchstrong_nchw",
    "lightning_conv_attention_torchstrong_nchw_into",
]
