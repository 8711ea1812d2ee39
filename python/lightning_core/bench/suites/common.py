"""Helpers shared by the suite modules: the optional torch peer, the timing presets, the NumPy-in/NumPy-out
case runner (measure: our side and each peer timed by timer.time_call, every output validated against the
float64 reference by lightning_core.testing.validate, one schema row per peer) and the dtype of a run.
Tested through tests/python/test_bench_suites.py (a --quick run of every suite).
"""
from __future__ import annotations

import numpy as np

from .. import harness as H
from ..timer import time_call
from ...testing import validate
from . import Ctx


def torch_mod():
    """(torch, torch.nn.functional), or (None, None) where torch is not installed (an optional peer)."""
    try:
        import torch
        import torch.nn.functional as F  # noqa: N812
        return torch, F
    except Exception:  # noqa: BLE001
        return None, None


def torch_version() -> str:
    torch, _ = torch_mod()
    return f"torch {torch.__version__}" if torch is not None else ""


def np_dtype(ctx: Ctx):
    return np.dtype(ctx.dtype)


def tol_for(ctx: Ctx, f32_tol: float) -> float:
    """The relative-error bound of a row: f32_tol for float32 outputs; 1e-10 for float64 ones."""
    return 1e-10 if ctx.dtype == "float64" else f32_tol


def timing(ctx: Ctx, *, quick: dict | None = None, full: dict | None = None) -> dict:
    """time_call keywords of a suite: its quick or full preset (the module's own, else these defaults)."""
    if ctx.quick:
        return quick or dict(warmup=3, samples=7, min_sample_s=1e-4, settle_s=0.05)
    return full or dict(warmup=8, samples=15, min_sample_s=3e-4, settle_s=0.1)


def work(*calls, dtype="float32") -> dict:
    """flops and bytes of one row from the op table (lc.op_work: the estimate routing and the cost model use),
    summed over the row's library calls, each given as (op, [input shapes], {attrs}). Keywords for measure()
    or a row: {"flops": ..., "nbytes": ...}."""
    import lightning_core as lc
    flops = nbytes = 0.0
    for call in calls:
        op, shapes, attrs = (call + ({},))[:3]
        w = lc.op_work(op, list(shapes), dtype=dtype, **attrs)
        flops += w["flops"]
        nbytes += w["bytes"]
    return {"flops": flops, "nbytes": nbytes}


def last_path() -> tuple[str, str]:
    """(kernel path, selected device) of the calling thread's last lightning_core dispatch."""
    import lightning_core as lc
    d = lc.last_dispatch()
    return str(d.get("path", "")), str(d.get("selected", ""))


def measure(ctx: Ctx, rows: list, suite: str, family: str, case: str, shape: str, ours, peers, ref, *,
            mode: str = "one_shot", tol: float = 1e-4, notes: str = "", tkw: dict | None = None, flops=None,
            nbytes=None, route: bool = False) -> None:
    """Times ours() and each peer of peers [(name, version, fn)] with time_call, validates every output
    against ref (float64), appends one row per peer. The row's path is our call's kernel path; with route
    (our side called with device="auto") its device is "auto-><selected>". Our output in another dtype
    than the run's (an op without that dtype) skips the case with a note. An exception on one side makes
    that row 'error' with the message in notes."""
    ctx.case(case)
    tkw = tkw or timing(ctx)
    tol = tol_for(ctx, tol)
    kw = dict(shape=shape, dtype=ctx.dtype, flops=flops, nbytes=nbytes)
    try:
        out = ours()
        path, selected = last_path()
        if np.asarray(out).dtype != np_dtype(ctx):
            ctx.note(f"{case}: skipped, our op returns {np.asarray(out).dtype} for {ctx.dtype} inputs")
            return
        err, _ = validate(out, ref, tol)
        t = time_call(ours, **tkw)
    except Exception as e:  # noqa: BLE001
        for name, ver, _ in peers:
            rows.append(H.make_row(suite, family, case, mode, float("nan"), name, float("nan"), device=ctx.device,
                                   peer_version=ver, status="error", notes=f"ours: {type(e).__name__}: {e}", **kw))
        return
    dev = f"auto->{selected}" if route else ctx.device
    for name, ver, fn in peers:
        try:
            perr, _ = validate(fn(), ref, tol)
            p = time_call(fn, **tkw)
            worst = max(err, perr)
            rows.append(H.make_row(suite, family, case, mode, t["median_ms"], name, p["median_ms"], device=dev,
                                   peer_version=ver, cv=t["cv"], peer_cv=p["cv"], rel_err=worst, path=path,
                                   status="ok" if worst < tol else "FAILED", notes=notes, **kw))
        except Exception as e:  # noqa: BLE001
            rows.append(H.make_row(suite, family, case, mode, t["median_ms"], name, float("nan"), device=dev,
                                   peer_version=ver, cv=t["cv"], rel_err=err, path=path, status="error",
                                   notes=f"{name}: {type(e).__name__}: {e}", **kw))


class Null:
    """A do-nothing context manager (torch.inference_mode() where there is no torch)."""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def inference_mode():
    torch, _ = torch_mod()
    return torch.inference_mode() if torch is not None else Null()


def torch_graph_time(torch, step, per: int, sample_ms, tkw: dict) -> dict:
    """time_call of step() captured once in a torch CUDA graph (after one eager run), under inference_mode,
    divided by per (the calls step makes)."""
    with torch.inference_mode():
        step()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        t = time_call(lambda: graph.replay(), sample_ms=sample_ms, per=per, **tkw)
    del graph
    return t
