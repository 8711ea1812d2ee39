"""The columns of the graph suites (graph_eager_ab, fusion): one case's work written once for every side
(Case), LC eager resident, LC graph plan columns (resident execute(1), one-shot run, plan cache), torch
eager / CUDA graph / one-shot, and the host-dispatch probe (runtime_counters and the runtime trace).
Tested through tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import numpy as np

from ...testing import validate
from .columns import ColCtx, Skip, check, col, free_gpu, looped, nan_array, once_ms, torch_cols

COUNT_ITERS = 8  # iterations of the dispatch / trace probes


class Case:
    """One case's work, written once for every side.

    inputs: [(name, float32 array)] graph inputs in order; ref: float64 reference of the (single) output.
    graph(g, *input_values) -> output Value (adds its constants itself).
    lc_eager(L, E, dev) -> (f, out): L(array) uploads a tensor to dev, E(shape) allocates one; f(*input
    tensors) runs the chain op by op into the tensor out (no synchronisation).
    torch(T) -> f: T(array) makes a tensor on torch's device; f(*input tensors) runs the chain, returns the
    output tensor (weights captured at build time, so one-shot uploads only the inputs)."""

    def __init__(self, row, case, inputs, ref, graph, lc_eager, torch_fn):
        self.row, self.case, self.inputs, self.ref = row, case, inputs, ref
        self.graph, self.lc_eager, self.torch = graph, lc_eager, torch_fn


def make_plan(cc: ColCtx, case: Case, fuse: bool):
    import lightning_core as lc
    g = lc.Graph()
    vals = [g.input(name, a.shape) for name, a in case.inputs]
    g.output(case.graph(g, *vals))
    return g.plan(device=cc.lc_dev, fuse=fuse)


def record_plan(rec, key, plan, device, explain=False):
    """The plan's summary fields (<key>_<field>), a note when it runs elsewhere than `device`, and with
    explain the rules that fired with the cost model's expected speedup."""
    s = dict(plan.summary())
    for f in ("device", "steps", "fused_steps", "host_dispatches_per_run", "uses_graph"):
        rec[f"{key}_{f}"] = s.get(f, "missing")
    if s.get("device") != device:
        rec["notes"].append(f"{key}: the plan runs on {s.get('device')} (asked {device}; reason {s.get('reason')})")
    if not explain:
        return
    fired = [dict(e) for e in plan.explain() if e.get("fired")]
    nodes = lambda e: e["nodes"] if isinstance(e.get("nodes"), str) else "+".join(map(str, e.get("nodes") or []))  # noqa: E731
    rec["rules_fired"] = ", ".join(f"{e.get('rule')}({nodes(e)})" for e in fired) or "none"
    unf = sum(float(e.get("est_unfused_us") or 0) for e in fired)
    fus = sum(float(e.get("est_fused_us") or 0) for e in fired)
    rec["expected_speedup"] = unf / fus if fus > 0 else float("nan")


def probe_dispatches(cc: ColCtx, rec, key, step, iters=COUNT_ITERS):
    """Host dispatches per iteration of step() (runtime_counters: dispatches + graph_launches), cross-checked
    with the runtime trace (op events, and plan/session events that replayed a graph)."""
    import lightning_core as lc
    for _ in range(2):
        step()
    lc.synchronize(cc.lc_dev)
    lc.runtime_counters_reset()
    for _ in range(iters):
        step()
    c = dict(lc.runtime_counters())
    rec[f"{key}_dispatches_per_it"] = (c.get("dispatches", 0) + c.get("graph_launches", 0)) / iters
    lc.runtime_trace_clear()
    lc.runtime_trace_enable(True)
    try:
        for _ in range(iters):
            step()
    finally:
        lc.runtime_trace_enable(False)
    ev = list(lc.runtime_trace_events())
    lc.runtime_trace_clear()
    summary = lambda e: str(e.get("op")) == "graph_plan" or str(e.get("op")).startswith("session")  # noqa: E731
    td = sum(1 for e in ev if not summary(e) or "replay" in str(e.get("path"))) / iters
    if td != rec[f"{key}_dispatches_per_it"]:
        rec["notes"].append(f"{key}: trace {td:g} dispatches/it vs counters {rec[f'{key}_dispatches_per_it']:g}")


def lc_eager_col(cc: ColCtx, rec, case: Case, st, count=True):
    """LC eager resident: inputs and weights uploaded once; per call the chain op by op + one synchronize."""
    import lightning_core as lc
    cc.budget()
    dev = cc.lc_dev
    L = lambda a: lc.Tensor(np.ascontiguousarray(a, dtype=np.float32), device=dev)  # noqa: E731
    E = lambda shape: lc.Tensor(nan_array(*shape), device=dev)  # noqa: E731
    f, out = case.lc_eager(L, E, dev)
    tin = [L(a) for _, a in case.inputs]
    fwd = lambda: f(*tin)  # noqa: E731
    fwd()
    lc.synchronize(dev)
    rec["path"] = lc.last_dispatch()["path"]
    st["eager_out"] = got = out.numpy()
    check(rec, "lc eager", got, case.ref)
    step = looped(fwd, 1, lambda: lc.synchronize(dev))
    rec["lc_eager_ms"] = cc.timed(step)
    if count:
        probe_dispatches(cc, rec, "lc_eager", step)


def lc_graph_cols(cc: ColCtx, rec, case: Case, st, key="lc_graph", fuse=True, oneshot=True, count=True,
                  explain=False):
    """LC graph columns of one plan (fuse on or off): resident (upload once; per call execute(1), which
    waits at its end) and, with oneshot, plan.run NumPy in/out; the plan cache on a rebuild."""
    import lightning_core as lc
    arrays = [a for _, a in case.inputs]
    stp = {}

    def plan():
        if "failed" in stp:
            raise Skip(f"no plan ({stp['failed']})")
        if "plan" not in stp:
            try:
                rec[f"{key}_plan_build_ms"] = once_ms(lambda: stp.__setitem__("plan", make_plan(cc, case, fuse)))
            except Exception as e:
                stp["failed"] = f"{type(e).__name__}: {e}"[:200]
                raise
        return stp["plan"]

    def resident():
        cc.budget()
        p = plan()
        p.upload(*arrays)
        p.execute(1)
        out = nan_array(*case.ref.shape)
        p.download_into(0, out)
        check(rec, f"{key} upload + execute(1) + download_into", out, case.ref)
        for _ in range(2):  # on CUDA the second run captures the steps; later runs replay them
            p.execute(1)
        p.upload(*[np.zeros_like(a) for a in arrays])  # a replay that does not run would leave this result
        p.execute(1)
        p.upload(*arrays)
        p.execute(1)
        out = nan_array(*case.ref.shape)
        p.download_into(0, out)
        check(rec, f"{key} re-upload + execute(1) (replay) + download_into", out, case.ref)
        st[f"{key}_out"] = out
        step = lambda: p.execute(1)  # noqa: E731
        if cc.lc_cuda:  # execute(1) should end in one wait; if it did not, time it with an explicit one
            lc.synchronize("cuda")
            lc.runtime_counters_reset()
            step()
            if lc.runtime_counters().get("syncs", 0) == 0:
                rec["notes"].append(f"{key}: execute(1) did not wait (no sync counted); timed with lc.synchronize")
                step = lambda: (p.execute(1), lc.synchronize("cuda"))  # noqa: E731
        rec[f"{key}_ms"] = cc.timed(step)
        record_plan(rec, key, p, cc.lc_dev, explain)
        if count:
            probe_dispatches(cc, rec, key, step)

    def run_oneshot():
        cc.budget()
        p = plan()
        check(rec, f"{key} run (one-shot)", p.run(*arrays)[0], case.ref)
        rec[f"{key}_oneshot_ms"] = cc.timed(lambda: p.run(*arrays))

    def rebuild():
        """A fresh, identical graph planned again: should come from the plan cache."""
        cc.budget()
        plan()
        p2 = make_plan(cc, case, fuse)
        if dict(p2.summary()).get("cache_hit") is not True:
            rec["notes"].append(f"{key}: an identical graph planned again missed the plan cache")

    col(rec, key, resident)
    if oneshot:
        col(rec, f"{key}_oneshot", run_oneshot)
    col(rec, f"{key}_plan_cache", rebuild)
    stp.clear()
    free_gpu(cc)


def torch_resident_cols(cc: ColCtx, rec, case: Case, oneshot=True):
    """torch eager resident (+ sync) and torch CUDA graph (replay + sync), one iteration per timed call; then
    torch one-shot (NumPy in/out, weights resident)."""
    shape = case.ref.shape
    host = lambda t: t.detach().reshape(shape).cpu().numpy()  # noqa: E731

    def build():
        cc.budget()
        f = case.torch(cc.T)
        tin = [cc.T(a) for _, a in case.inputs]
        return (lambda: f(*tin)), host

    torch_cols(cc, rec, build, case.ref, "torch_eager_ms")
    if not oneshot:
        return

    def one():
        cc.need_torch()
        cc.budget()
        f = case.torch(cc.T)
        arrays = [np.ascontiguousarray(a) for _, a in case.inputs]
        call = lambda: host(f(*[cc.torch.from_numpy(a).to(cc.tdev) for a in arrays]))  # noqa: E731
        rec["torch_oneshot_rel_err"] = validate(call(), case.ref, 1e-4)[0]
        rec["torch_oneshot_ms"] = cc.timed(call)

    col(rec, "torch_oneshot", one)
    free_gpu(cc)
