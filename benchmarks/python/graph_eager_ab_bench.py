#!/usr/bin/env python3
"""Graph vs eager A/B benchmark (issue 5): the same work as an lc.Graph plan and as eager lc ops, with the
host dispatches per iteration, against torch eager and torch CUDA graphs; same device, same process.

Cases (docs/benchmarks.md, "Graphs and fusion", describes every column):
  conv_attn          x [1,3,8,8] -> conv3x3 (w [16,3,3,3], b [16], stride 1, pad 1) -> ReLU -> qkv_pack_repeat
                     -> attention(q, k, v), (seq, head_dim) in (48,48), (96,48), (192,48), (192,8).
  matmul_matrix_sub  x @ W - C, 256x256 (W, C constants).
  matmul_bias_relu   relu(x @ W + b), 512x768x768.
Columns, each one iteration ending in one synchronisation, median ms: LC eager resident (device tensors,
op by op, + lc.synchronize), LC graph resident (plan.upload once, then plan.execute(1)), LC graph one-shot
(plan.run: NumPy in, NumPy out), torch eager resident (+ torch.cuda.synchronize), torch CUDA graph (replay +
sync), torch one-shot (NumPy in/out, weights resident). Derived: winner (resident columns), graph_over_eager
= LC eager / LC graph (> 1: the graph is faster), max_abs_diff (LC graph vs LC eager output), host
dispatches per iteration (runtime_counters: dispatches + graph_launches) for the LC graph and LC eager,
cross-checked with the runtime trace (events per iteration). Targets: conv_attn LC graph >= 2x faster than
torch CUDA graph; exactly 1 host dispatch per iteration for the LC graph on CUDA.
Every LC output (graph and eager) is checked once against float64 NumPy (relative error < 1e-4, NaN fails).
TF32 off on both sides. Without CUDA every column runs on the CPU (torch CPU if installed), torch CUDA
graph n/a. Columns are independent: an error is recorded in its row and the run goes on. Reports:
OUT/graph_eager_ab.{json,md}, OUT/graph_eager_ab_<section>.csv, rewritten after every section.
fusion_bench.py reuses this file's case runner; the section loop is harness.run_sections.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from gpu_bench import _rel as rel_err  # noqa: E402
from session_bench import (Skip, _nan, _try, check, col, finish, free_gpu, looped, new_row, torch_cols,  # noqa: E402
                           ratio, ref_chain)
from session_bench import parse_args as session_parse_args  # noqa: E402
from session_bench import setup as session_setup  # noqa: E402

import lightning_core as lc  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except Exception:  # torch is an optional peer
    torch = None
    F = None

STEM = "graph_eager_ab"
ROWS = ["conv_attn", "matmul_matrix_sub", "matmul_bias_relu"]
CHAIN = [(48, 48), (96, 48), (192, 48), (192, 8)]
CHAIN_X, CHAIN_OC = (1, 3, 8, 8), 16
SUB, SUB_TINY = 256, 32
MBR, MBR_TINY = (512, 768, 768), (32, 48, 64)
COUNT_ITERS = 8  # iterations of the dispatch / trace probes
LIST_KEYS = ("failed_checks", "errors", "na", "notes")
RESIDENT_COLS = (("LC eager", "lc_eager_ms"), ("LC graph", "lc_graph_ms"), ("torch eager", "torch_eager_ms"),
                 ("torch graph", "torch_graph_ms"))


class Case:
    """One row's work, written once for every side.

    inputs: [(name, float32 array)] graph inputs in order; ref: float64 reference of the (single) output.
    graph(g, *input_values) -> output Value (adds its constants itself).
    lc_eager(L, E, dev) -> (f, out): L(array) uploads a tensor to dev, E(shape) allocates one; f(*input
    tensors) runs the chain op by op into the tensor out (no synchronisation).
    torch(T) -> f: T(array) makes a tensor on torch's device; f(*input tensors) runs the chain, returns the
    output tensor (weights captured at build time, so one-shot uploads only the inputs)."""

    def __init__(self, row, case, inputs, ref, graph, lc_eager, torch_fn, **info):
        self.row, self.case, self.inputs, self.ref = row, case, inputs, ref
        self.graph, self.lc_eager, self.torch = graph, lc_eager, torch_fn
        self.info = info


def has_plan_api():
    return hasattr(lc, "Graph") and hasattr(lc.Graph(), "plan")


def build_graph(case):
    g = lc.Graph()
    vals = [g.input(name, a.shape) for name, a in case.inputs]
    g.output(case.graph(g, *vals))
    return g


def make_plan(ctx, case, fuse):
    if not has_plan_api():
        raise Skip("lc.Graph has no plan() in this build (graph execution not available)")
    return build_graph(case).plan(device=ctx.lc_dev, fuse=fuse)


def record_summary(row, key, plan, device=None):
    """The plan's summary() fields as <key>_<field>; the whole dict goes to the JSON only. A plan that
    runs elsewhere than `device` gets a note with the planner's reason."""
    try:
        s = dict(plan.summary())
    except Exception as e:  # noqa: BLE001
        row["notes"].append(f"{key}: summary(): {type(e).__name__}: {e}")
        return
    row[f"{key}_summary"] = s
    if hasattr(plan, "steps"):
        row[f"{key}_step_labels"] = " ; ".join(map(str, _try(plan.steps) or []))
    for f in ("device", "steps", "fused_steps", "segments", "host_dispatches_per_run", "uses_graph", "cache_hit",
              "fusions_fired", "sync_boundaries"):
        row[f"{key}_{f}"] = s.get(f, "missing")
    if device is not None and s.get("device") != device:
        row["notes"].append(f"{key}: the plan runs on {s.get('device')} (asked {device}; reason {s.get('reason')})")


def record_explain(row, key, plan):
    """explain(): the rules that fired, their cost-model estimate (sum over fired rules) and the reasons of
    the ones that did not."""
    try:
        ex = [dict(e) for e in plan.explain()]
    except Exception as e:  # noqa: BLE001
        row["notes"].append(f"{key}: explain(): {type(e).__name__}: {e}")
        return
    row[f"{key}_explain"] = ex
    fired = [e for e in ex if e.get("fired")]
    def nodes(e):
        n = e.get("nodes")
        return n if isinstance(n, str) else "+".join(map(str, n or []))
    row["rules_fired"] = ", ".join(f"{e.get('rule')}({nodes(e)})" for e in fired) or "none"
    row["rules_not_fired"] = "; ".join(f"{e.get('rule')}({nodes(e)}): {e.get('reason')}"
                                       for e in ex if not e.get("fired")) or "none"
    try:
        unf = sum(float(e.get("est_unfused_us") or 0) for e in fired)
        fus = sum(float(e.get("est_fused_us") or 0) for e in fired)
        row["est_unfused_us"], row["est_fused_us"] = unf, fus
        row["expected_speedup"] = unf / fus if fus > 0 else float("nan")
    except (TypeError, ValueError) as e:
        row["notes"].append(f"{key}: explain() estimates: {e}")


def probe_dispatches(ctx, row, key, step, iters=COUNT_ITERS):
    """Host dispatches per iteration of step() from runtime_counters (dispatches + graph_launches), syncs
    and transfers per iteration, and the runtime trace's events (and fallbacks) per iteration."""
    dev = ctx.lc_dev
    for _ in range(2):
        step()
    lc.synchronize(dev)
    lc.runtime_counters_reset()
    for _ in range(iters):
        step()
    c = dict(lc.runtime_counters())
    row[f"{key}_dispatches_per_it"] = (c.get("dispatches", 0) + c.get("graph_launches", 0)) / iters
    row[f"{key}_graph_launches_per_it"] = c.get("graph_launches", 0) / iters
    row[f"{key}_syncs_per_it"] = c.get("syncs", 0) / iters
    row[f"{key}_transfers_per_it"] = (c.get("uploads", 0) + c.get("downloads", 0)) / iters
    lc.runtime_trace_clear()
    lc.runtime_trace_enable(True)
    try:
        for _ in range(iters):
            step()
    finally:
        lc.runtime_trace_enable(False)
    ev = list(lc.runtime_trace_events())
    lc.runtime_trace_clear()
    row[f"{key}_trace_events_per_it"] = len(ev) / iters
    row[f"{key}_fallbacks_per_it"] = sum(1 for e in ev if e.get("fallback")) / iters
    per = max(1, len(ev) // iters)
    row[f"{key}_trace_ops"] = " ".join(f"{e.get('op')}|{e.get('path')}|{e.get('selected_device')}" for e in ev[:per])
    # host dispatches seen by the trace: op events, plus the plan's/sessions' summary events that replayed
    # a captured graph (their eager runs show up as op events already)
    summary = lambda e: str(e.get("op")) == "graph_plan" or str(e.get("op")).startswith("session")  # noqa: E731
    td = sum(1 for e in ev if not summary(e) or "replay" in str(e.get("path"))) / iters
    row[f"{key}_trace_dispatches_per_it"] = td
    if td != row[f"{key}_dispatches_per_it"]:
        row["notes"].append(f"{key}: trace {td:g} dispatches/it vs counters "
                            f"{row[f'{key}_dispatches_per_it']:g} dispatches+launches/it")


def lc_eager_col(ctx, row, case, st, count=True):
    """LC eager resident: inputs and weights uploaded once; per call the chain op by op + one synchronize."""
    ctx.budget()
    dev = ctx.lc_dev
    L = lambda a: lc.Tensor(np.ascontiguousarray(a, dtype=np.float32), device=dev)  # noqa: E731
    E = lambda shape: lc.Tensor(_nan(*shape), device=dev)  # noqa: E731
    f, out = case.lc_eager(L, E, dev)
    tin = [L(a) for _, a in case.inputs]
    fwd = lambda: f(*tin)  # noqa: E731
    fwd()
    lc.synchronize(dev)
    st["eager_out"] = got = out.numpy()
    check(row, "lc eager", got, case.ref)
    step = looped(fwd, 1, lambda: lc.synchronize(dev))
    row["lc_eager_ms"] = ctx.wall_ms(step)
    if count:
        probe_dispatches(ctx, row, "lc_eager", step)


def lc_graph_cols(ctx, row, case, st, key="lc_graph", fuse=True, oneshot=True, count=True, explain=False):
    """LC graph columns of one plan (fuse on or off): resident (upload once; per call execute(1), which
    waits at its end) and, with oneshot, plan.run NumPy in/out. Output checks, summary, explain, counts."""
    arrays = [a for _, a in case.inputs]
    stp = {}

    def plan():
        if "failed" in stp:
            raise Skip(f"no plan ({stp['failed']})")
        if "plan" not in stp:
            t0 = time.perf_counter()
            try:
                stp["plan"] = make_plan(ctx, case, fuse)
            except Exception as e:
                stp["failed"] = str(e)[:200] if isinstance(e, Skip) else f"{type(e).__name__}: {e}"[:200]
                raise
            row[f"{key}_plan_build_ms"] = (time.perf_counter() - t0) * 1e3
        return stp["plan"]

    def resident():
        ctx.budget()
        p = plan()
        p.upload(*arrays)
        p.execute(1)
        out = _nan(*case.ref.shape)
        p.download_into(0, out)
        check(row, f"{key} upload + execute(1) + download_into", out, case.ref)
        for _ in range(2):  # on CUDA the second run captures the steps; later runs replay them
            p.execute(1)
        p.upload(*[np.zeros_like(a) for a in arrays])  # a replay that does not run would leave this result
        p.execute(1)
        p.upload(*arrays)
        p.execute(1)
        out = _nan(*case.ref.shape)
        p.download_into(0, out)
        check(row, f"{key} re-upload + execute(1) (replay) + download_into", out, case.ref)
        st[f"{key}_out"] = out
        step = lambda: p.execute(1)  # noqa: E731
        if ctx.lc_cuda:  # execute(1) should end in one wait; if it did not, time it with an explicit one
            for _ in range(2):
                step()
            lc.synchronize("cuda")
            lc.runtime_counters_reset()
            step()
            if lc.runtime_counters().get("syncs", 0) == 0:
                row["notes"].append(f"{key}: execute(1) did not wait (no sync counted); timed with lc.synchronize")
                step = lambda: (p.execute(1), lc.synchronize("cuda"))  # noqa: E731
        row[f"{key}_ms"] = ctx.wall_ms(step)
        record_summary(row, key, p, ctx.lc_dev)
        if explain:
            record_explain(row, key, p)
        if count:
            probe_dispatches(ctx, row, key, step)

    def run_oneshot():
        ctx.budget()
        p = plan()
        outs = p.run(*arrays)
        check(row, f"{key} run (one-shot)", outs[0], case.ref)
        row[f"{key}_oneshot_ms"] = ctx.wall_ms(lambda: p.run(*arrays))

    def rebuild():
        """A fresh, identical graph planned again: should come from the plan cache."""
        ctx.budget()
        plan()
        t0 = time.perf_counter()
        p2 = make_plan(ctx, case, fuse)
        row[f"{key}_plan_rebuild_ms"] = (time.perf_counter() - t0) * 1e3
        try:
            row[f"{key}_rebuild_cache_hit"] = dict(p2.summary()).get("cache_hit", "missing")
        finally:
            del p2

    col(row, key, resident)
    if oneshot:
        col(row, f"{key}_oneshot", run_oneshot)
    col(row, f"{key}_plan_cache", rebuild)
    stp.clear()
    free_gpu()


def torch_resident_cols(ctx, row, case, oneshot=True):
    """torch eager resident (+ sync) and torch CUDA graph (replay + sync): session_bench.torch_cols, one
    iteration per timed call (these rows have no "loops"); then torch one-shot (NumPy in/out)."""
    shape = case.ref.shape
    host = lambda t: t.detach().reshape(shape).cpu().numpy()  # noqa: E731

    def build():
        ctx.budget()
        f = case.torch(ctx.T)
        tin = [ctx.T(a) for _, a in case.inputs]
        return (lambda: f(*tin)), host

    torch_cols(ctx, row, build, case.ref, "torch_eager_ms")
    if not oneshot:
        return

    def one():
        ctx.need_torch()
        ctx.budget()
        f = case.torch(ctx.T)
        arrays = [np.ascontiguousarray(a) for _, a in case.inputs]
        call = lambda: host(f(*[torch.from_numpy(a).to(ctx.tdev) for a in arrays]))  # noqa: E731
        row["torch_oneshot_rel_err"] = rel_err(call(), case.ref)
        row["torch_oneshot_ms"] = ctx.wall_ms(call)

    col(row, "torch_oneshot", one)
    free_gpu()


def winner(row, cols=RESIDENT_COLS):
    got = [(row.get(k), name) for name, k in cols if isinstance(row.get(k), float) and math.isfinite(row.get(k))]
    return min(got)[1] if got else "n/a"


def run_ab(ctx, case):
    row = new_row(ctx, case.row, case.case)
    row["notes"] = []
    row.update({k: v for k, v in case.info.items() if not callable(v)})
    st = {}
    col(row, "lc_eager", lambda: lc_eager_col(ctx, row, case, st))
    free_gpu()
    lc_graph_cols(ctx, row, case, st)
    torch_resident_cols(ctx, row, case)
    row.update({k: v for k, v in case.info.items() if not callable(v)})  # e.g. graph_qkv_via, set at build
    if "eager_out" in st and "lc_graph_out" in st:
        row["max_abs_diff"] = harness.max_abs_diff(st["lc_graph_out"], st["eager_out"])
    row["winner"] = winner(row)
    ratio(row, "graph_over_eager", "lc_eager_ms", "lc_graph_ms")
    ratio(row, "torch_graph_over_lc_graph", "torch_graph_ms", "lc_graph_ms")
    ratio(row, "torch_eager_over_lc_eager", "torch_eager_ms", "lc_eager_ms")
    ratio(row, "torch_eager_over_lc_graph", "torch_eager_ms", "lc_graph_ms")
    ratio(row, "torch_oneshot_over_lc_oneshot", "torch_oneshot_ms", "lc_graph_oneshot_ms")
    g, e = row.get("lc_graph_dispatches_per_it"), row.get("lc_eager_dispatches_per_it")
    if isinstance(g, float) and isinstance(e, float) and e > 0:
        row["dispatch_reduction_pct"] = 100.0 * (e - g) / e
    if isinstance(g, float):
        if not ctx.lc_cuda:
            row["dispatch_verdict"] = "info (the 1-dispatch target is for CUDA)"
        else:
            row["dispatch_verdict"] = "PASS" if g == 1.0 else f"MISS ({g:g}/it)"
    return finish(row)


# ---- the cases -------------------------------------------------------------------------------------------
def graph_qkv_attention(g, qkv, seq, hd):
    """attention(q, k, v) with q, k, v the three [seq, head_dim] slices of qkv [3, seq, head_dim], through
    whichever op this lc.Graph offers; raises Skip (n/a with the reason) if there is none."""
    tried = []
    for name in ("attention_packed", "attention_qkv", "packed_attention"):
        fn = getattr(g, name, None)
        if fn is not None:
            return fn(qkv), f"Graph.{name}"
    for name in ("qkv_split", "split_qkv", "unpack_qkv", "qkv_unpack", "split3", "unbind"):
        fn = getattr(g, name, None)
        if fn is not None:
            try:
                q, k, v = fn(qkv)
                return g.attention(q, k, v), f"Graph.{name}"
            except Exception as e:  # noqa: BLE001
                tried.append(f"{name}: {type(e).__name__}: {e}")
    for name in ("select", "slice", "index", "take", "qkv_slice", "qkv_select", "getitem"):
        fn = getattr(g, name, None)
        if fn is None:
            continue
        for how in ((lambda i: fn(qkv, i)), (lambda i: fn(qkv, 0, i)), (lambda i: fn(qkv, i, i + 1))):
            try:
                qkv3 = [how(i) for i in range(3)]
                if all(tuple(x.shape) == (seq, hd) for x in qkv3):
                    return g.attention(*qkv3), f"Graph.{name}"
                tried.append(f"{name}: shapes {[tuple(x.shape) for x in qkv3]}")
            except Exception as e:  # noqa: BLE001
                tried.append(f"{name}: {type(e).__name__}: {e}")
    try:
        op_names = [s["name"] for s in lc.graph_op_schemas()]
    except Exception:  # noqa: BLE001
        op_names = []
    cand = [n for n in op_names if any(w in n for w in ("slice", "select", "split", "unpack", "qkv_attention"))]
    for name in cand:
        for attrs in ({"index": None}, {"part": None}, {}):
            try:
                if not attrs:
                    out = g.op(name, qkv)
                    if tuple(out.shape) == (seq, hd):
                        return out, f"op {name}"
                    break
                a = next(iter(attrs))
                qkv3 = [g.op(name, qkv, **{a: i}) for i in range(3)]
                return g.attention(*qkv3), f"op {name}({a}=i)"
            except Exception as e:  # noqa: BLE001
                tried.append(f"op {name}: {type(e).__name__}: {e}")
    raise Skip("lc.Graph has no op to take q, k, v out of qkv_pack_repeat's [3, seq, head_dim] value"
               + (f" (tried: {'; '.join(tried)[:300]})" if tried else ""))


def conv_attn_case(rng, seq, hd):
    n, c, hh, ww = CHAIN_X
    x = rng.random(CHAIN_X, dtype=np.float32)
    w = (rng.random((CHAIN_OC, c, 3, 3), dtype=np.float32) - 0.5) * 0.5
    b = (rng.random(CHAIN_OC, dtype=np.float32) - 0.5) * 0.1
    sd, conv_numel = seq * hd, CHAIN_OC * hh * ww * n
    reps = -(-3 * sd // conv_numel)
    info = {}

    def graph(g, xv):
        y = g.relu(g.conv2d(xv, g.constant("w", w), g.constant("b", b), stride_h=1, stride_w=1, pad_h=1, pad_w=1))
        out, info["graph_qkv_via"] = graph_qkv_attention(g, g.qkv_pack_repeat(y, seq, hd), seq, hd)
        return out

    def lc_eager(L, E, dev):
        tw, tb = L(w), L(b)
        ty, tqkv, out = E((n, CHAIN_OC, hh, ww)), E((3, seq, hd)), E((seq, hd))
        q, k, v = (tqkv.view((seq, hd), offset=j * sd) for j in range(3))

        def f(tx):
            lc.conv2d_nchw_into(tx, tw, tb, ty, stride_h=1, stride_w=1, pad_h=1, pad_w=1, device=dev, apply_relu=True)
            lc.qkv_pack_repeat_into(ty, tqkv, device=dev)
            lc.attention2d_into(q, k, v, out, causal=False, device=dev)
        return f, out

    def torch_fn(T):
        tw, tb = T(w), T(b)

        def f(tx):
            y = F.relu(F.conv2d(tx, tw, tb, stride=1, padding=1)).reshape(-1)
            qkv = y.repeat(reps)[:3 * sd]
            q, k, v = (qkv[j * sd:(j + 1) * sd].view(1, 1, seq, hd) for j in range(3))
            return F.scaled_dot_product_attention(q, k, v)
        return f

    case = Case("conv_attn", f"x={'x'.join(map(str, CHAIN_X))},oc={CHAIN_OC},seq={seq},head_dim={hd}",
                [("x", x)], ref_chain(x, w, b, seq, hd), graph, lc_eager, torch_fn)
    case.info = info  # filled while the graph is built (which op took q, k, v out)
    return case


def matmul_sub_case(rng, m):
    x = rng.standard_normal((m, m)).astype(np.float32)
    w = (rng.standard_normal((m, m)) / math.sqrt(m)).astype(np.float32)
    c = rng.standard_normal((m, m)).astype(np.float32)
    ref = x.astype(np.float64) @ w.astype(np.float64) - c.astype(np.float64)

    def graph(g, xv):
        return g.sub(g.matmul(xv, g.constant("w", w)), g.constant("c", c))

    def lc_eager(L, E, dev):
        tw, tc, tt, out = L(w), L(c), E((m, m)), E((m, m))

        def f(tx):
            lc.matmul2d_into(tx, tw, tt, device=dev)
            lc.matrix_sub_into(tt, tc, out, m, m, device=dev)
        return f, out

    def torch_fn(T):
        tw, tc = T(w), T(c)
        tt, out = torch.empty((m, m), device=ctx_tdev(tw)), torch.empty((m, m), device=ctx_tdev(tw))

        def f(tx):
            torch.matmul(tx, tw, out=tt)
            return torch.sub(tt, tc, out=out)
        return f

    return Case("matmul_matrix_sub", f"m=k=n={m}", [("x", x)], ref, graph, lc_eager, torch_fn)


def matmul_bias_relu_case(rng, m, k, n, row="matmul_bias_relu"):
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) / math.sqrt(k)).astype(np.float32)
    b = (rng.standard_normal(n) * 0.1).astype(np.float32)
    ref = np.maximum(x.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64), 0.0)

    def graph(g, xv):
        return g.relu(g.bias_add(g.matmul(xv, g.constant("w", w)), g.constant("b", b)))

    def lc_eager(L, E, dev):
        tw, tb, out = L(w), L(b), E((m, n))
        return (lambda tx: lc.linear_into(tx, tw, out, bias=tb, activation="relu", device=dev)), out

    def torch_fn(T):
        tw, tb = T(w), T(b)
        out = torch.empty((m, n), device=ctx_tdev(tw))

        def f(tx):
            torch.addmm(tb, tx, tw, out=out)
            return torch.relu_(out)
        return f

    return Case(row, f"m={m},k={k},n={n}", [("x", x)], ref, graph, lc_eager, torch_fn)


def ctx_tdev(t):
    return t.device


# ---- report ----------------------------------------------------------------------------------------------
_ms, _r = harness.ms_cell, (lambda v: harness.fmt_ratio(v))
_g = (lambda v: f"{v:g}")
SPEC = [("case", "case", str), ("LC eager/it", "lc_eager_ms", _ms), ("LC graph/it", "lc_graph_ms", _ms),
        ("LC graph one-shot", "lc_graph_oneshot_ms", _ms), ("torch eager/it", "torch_eager_ms", _ms),
        ("torch graph/it", "torch_graph_ms", _ms), ("torch one-shot", "torch_oneshot_ms", _ms),
        ("winner", "winner", str), ("graph_over_eager", "graph_over_eager", _r),
        ("torch graph/LC graph", "torch_graph_over_lc_graph", _r),
        ("torch one-shot/LC one-shot", "torch_oneshot_over_lc_oneshot", _r),
        ("max_abs_diff", "max_abs_diff", lambda v: f"{v:.1e}"),
        ("dispatches/it graph", "lc_graph_dispatches_per_it", _g),
        ("dispatches/it eager", "lc_eager_dispatches_per_it", _g),
        ("trace dispatches/it (graph, eager)", "trace_pair", str), ("syncs/it graph", "lc_graph_syncs_per_it", _g),
        ("steps (fused)", "steps_pair", str), ("uses graph", "lc_graph_uses_graph", str)]
JSON_ONLY = ("lc_graph_summary", "lc_graph_explain")


def decorate(r):
    """Display-only pair columns."""
    r["trace_pair"] = f"{harness.cell(r, 'lc_graph_trace_dispatches_per_it', _g)}, " \
                      f"{harness.cell(r, 'lc_eager_trace_dispatches_per_it', _g)}"
    r["steps_pair"] = f"{harness.cell(r, 'lc_graph_steps')} ({harness.cell(r, 'lc_graph_fused_steps')})"
    return r


def targets(rows):
    out = []
    for r in rows:
        if r["row"] == "conv_attn":
            v = r.get("torch_graph_over_lc_graph")
            ok = isinstance(v, float) and math.isfinite(v)
            out.append(["LC graph >= 2x faster than torch CUDA graph (conv->attn)", r["case"],
                        f"{v:.2f}x" if ok else "n/a", ("PASS" if v >= 2.0 else "MISS") if ok else "n/a"])
        v = r.get("lc_graph_dispatches_per_it")
        out.append(["exactly 1 host dispatch per iteration, LC graph on CUDA", r["case"],
                    "n/a" if v is None else f"{v:g}/it (eager {harness.cell(r, 'lc_eager_dispatches_per_it', _g)})",
                    r.get("dispatch_verdict", "n/a")])
    return out


def write_reports(ctx, env, sections, stem=STEM, spec=SPEC, targets_fn=targets, intro=None, json_only=JSON_ONLY):
    rows = [r for _, rs in sections for r in rs]
    extra = {}
    if hasattr(lc, "graph_plan_cache_stats"):
        extra["graph_plan_cache_stats"] = _try(lambda: dict(lc.graph_plan_cache_stats()))
    harness.write_sectioned_reports(
        ctx.out, stem, env, sections, spec, targets_fn(rows), list_keys=LIST_KEYS, json_only_keys=json_only,
        extra=extra, intro=intro or [
            "Times in ms (median); '/it' = one iteration ending in one synchronisation. graph_over_eager = LC "
            "eager / LC graph (> 1: graph faster); peer/LC ratios > 1: LC faster. Dispatches/it = "
            "runtime_counters dispatches + graph_launches per iteration; trace ev/it = runtime trace events."])


# ---- CLI ---------------------------------------------------------------------------------------------------
def parse_args(argv=None, rows=ROWS, doc=__doc__, out_default="benchmark_results"):
    return session_parse_args(argv, rows, doc, out_default)


def setup(args, name):
    """session_bench's setup, with the plan API's presence in the environment block."""
    return session_setup(args, name, {"lc_graph_plan_api": has_plan_api()})


def main(argv=None) -> int:
    args = parse_args(argv)
    ctx, env = setup(args, STEM)
    if ctx is None:
        return 2
    rng = np.random.default_rng(20261128)
    chain = CHAIN[:2] if args.quick else CHAIN
    sub = SUB if (ctx.lc_cuda or not args.quick) else SUB_TINY
    mbr = MBR if (ctx.lc_cuda or not args.quick) else MBR_TINY
    plans = {"conv_attn": [lambda s=s: run_ab(ctx, conv_attn_case(rng, *s)) for s in chain],
             "matmul_matrix_sub": [lambda: run_ab(ctx, matmul_sub_case(rng, sub))],
             "matmul_bias_relu": [lambda: run_ab(ctx, matmul_bias_relu_case(rng, *mbr))]}
    rows = harness.run_sections(args.rows, plans, STEM, lambda sections: write_reports(ctx, env, sections), decorate)
    return harness.finish_run(STEM, args.out, rows, targets(rows))


if __name__ == "__main__":
    sys.exit(main())
