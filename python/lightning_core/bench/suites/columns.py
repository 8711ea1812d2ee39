"""The column machinery of the resident suites (sessions, graph_eager_ab, fusion): a case is a record of
named columns (LC eager, LC graph, torch eager, torch CUDA graph, ...), each measured independently: a column
that cannot run here is n/a with its reason, one that raises is an error, and the case goes on. emit() turns
a finished record into rows of the schema (one per compared pair of columns).
Every LC output is checked against the float64 reference (lightning_core.testing.validate, tol 1e-4); times
are time_call medians (loops iterations + one sync, divided by loops).
Tested through tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import sys
import time
import traceback

import numpy as np

from .. import harness as H
from ...testing import validate
from ..timer import time_call
from . import Ctx, SuiteUnavailable
from .common import torch_mod, torch_version
from .gpu_peers import torch_graph

TOL = 1e-4


class Skip(Exception):
    """A column not measured on this machine (no CUDA, no torch, time budget): n/a with the reason."""


def nan_array(*shape):
    return np.full(shape, np.nan, np.float32)


class ColCtx:
    """What every column needs: our device, torch's device, timing presets, the time budget, the RNG."""

    def __init__(self, ctx: Ctx, seed: int = 20261127):
        import lightning_core as lc
        ctx.need_dtype("float32")
        self.ctx, self.quick = ctx, ctx.quick
        self.torch, self.F = torch_mod()
        self.lc_dev = ctx.device
        self.lc_cuda = self.lc_graph = ctx.device == "cuda"  # lc.capture_graph is CUDA only
        self.tdev, self.t_why = None, "torch is not installed"
        if self.torch is not None:
            if not self.lc_cuda:
                self.tdev = "cpu"
            elif self.torch.cuda.is_available():
                self.tdev = "cuda"
            else:
                self.t_why = "torch has no CUDA here"
            self.torch.backends.cuda.matmul.allow_tf32 = False
            self.torch.backends.cudnn.allow_tf32 = False
        self.t_graph = self.tdev == "cuda"
        self.tv = torch_version()
        self.tkw = dict(warmup=2, samples=7, min_sample_s=2e-4, settle_s=0.05) if ctx.quick else \
            dict(warmup=3, samples=15, min_sample_s=5e-4, settle_s=0.1)
        self.loop_target_s = 0.005 if ctx.quick else 0.02
        self.loop_range = (2, 50) if ctx.quick else (8, 200)
        self.rng = np.random.default_rng(seed)
        lc.set_matmul_precision("highest")
        # "sync" in a session method's name (and the end of a plan's execute) is honoured under the 'auto'
        # policy; under 'never' (LC_SYNC_POLICY) the calls would return at enqueue and time only the launch.
        lc.set_sync_policy("auto")

    def budget(self):
        if self.ctx.remaining() <= 0:
            raise Skip("time budget (--max-seconds) used up")

    def need_torch(self):
        if self.tdev is None:
            raise Skip(self.t_why)

    def need_tgraph(self):
        self.need_torch()
        if not self.t_graph:
            raise Skip("torch CUDA graphs need CUDA")

    def need_lc_graph(self):
        if not self.lc_graph:
            raise Skip("lc.capture_graph needs CUDA")

    def tsync(self):
        if self.tdev == "cuda":
            self.torch.cuda.synchronize()

    def T(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.tdev)

    def timed(self, fn, per=1, sample_ms=None) -> float:
        """Median ms of fn() / per (time_call; sample_ms: a device clock instead of the host's)."""
        self.budget()
        kw = dict(self.tkw, inner=1) if sample_ms is not None else self.tkw
        return time_call(fn, per=per, sample_ms=sample_ms, **kw)["median_ms"]

    def loops_for(self, fn):
        """Iterations per timed call so that one lasts about loop_target_s (fn: one iteration + sync)."""
        lo, hi = self.loop_range
        est = time_call(fn, warmup=0, samples=3, inner=1, settle_s=0.0, max_s=None)["min_s"]
        if not (est > 0):
            return lo
        return int(min(hi, max(lo, round(self.loop_target_s / est))))


def looped(fn, loops, sync):
    """One call = `loops` calls of fn, then sync()."""
    def run():
        for _ in range(loops):
            fn()
        sync()
    return run


def new_record(cc: ColCtx, row: str, case: str) -> dict:
    return {"row": row, "case": case, "lc_device": cc.lc_dev, "torch_device": cc.tdev or "n/a",
            "max_rel_err": float("nan"), "failed_checks": [], "errors": [], "na": [], "notes": []}


def check(rec, what, got, ref):
    err, ok = validate(got, ref, TOL)
    prev = rec["max_rel_err"]
    rec["max_rel_err"] = err if not H.finite(prev) else max(prev, err)
    if not ok:
        rec["failed_checks"].append(f"{what}: rel_err {err:.2e}")
    return err


def col(rec, name, fn):
    """Runs one column; n/a or an error is recorded in the record, and the case goes on."""
    try:
        fn()
    except Skip as e:
        rec["na"].append(f"{name}: {e}")
    except Exception as e:  # noqa: BLE001  (any failure of one column must not stop the run)
        rec["errors"].append(f"{name}: {type(e).__name__}: {e}")
        print(f"  ! {rec['row']} {rec['case']} {name}: {type(e).__name__}: {e}", flush=True)
        traceback.print_exc(limit=3, file=sys.stderr)


def free_gpu(cc: ColCtx):
    if cc.torch is not None and cc.torch.cuda.is_available():
        cc.torch.cuda.empty_cache()


def torch_cols(cc: ColCtx, rec, build, ref, eager_key):
    """The torch columns of a record: eager (rec["loops"] calls of fwd + one sync, per iteration) and CUDA
    graph (fwd captured once; loops replays + one sync). build() makes fresh tensors on cc.tdev and
    returns (fwd, to_host): fwd() runs one iteration and returns its output tensor."""
    def eager():
        cc.need_torch()
        fwd, host = build()
        out = fwd()
        cc.tsync()
        rec["torch_rel_err"] = validate(host(out), ref, TOL)[0]
        loops = rec.get("loops", 1)
        rec[eager_key] = cc.timed(looped(fwd, loops, cc.tsync), per=loops)

    def graph():
        cc.need_tgraph()
        fwd, host = build()
        g, out = torch_graph(cc.torch, fwd)
        g.replay()
        cc.tsync()
        rec["torch_graph_rel_err"] = validate(host(out), ref, TOL)[0]
        loops = rec.get("loops", 1)
        rec["torch_graph_ms"] = cc.timed(looped(g.replay, loops, cc.tsync), per=loops)

    for name, fn in ((eager_key[:-3], eager), ("torch_graph", graph)):
        col(rec, name, fn)
        free_gpu(cc)


def status(rec) -> str:
    return "FAILED" if rec["failed_checks"] else ("error" if rec["errors"] else "ok")


def emit(cc: ColCtx, rec: dict, suite: str, family: str, case: str, pairs: list) -> list[dict]:
    """Rows of one finished record: pairs [(mode, ours_key, peer, peer_key, note)]; a peer named "torch" is
    torch on its device (torch_cpu / torch_cuda). A pair without both times is left out unless the record
    failed (so the failure shows). The record's n/a reasons and errors go to the suite notes."""
    st = status(rec)
    for why in rec["na"]:
        cc.ctx.note("n/a here: " + why)
    for e in rec["errors"]:
        cc.ctx.note(f"error in {rec['row']} {rec['case']}: {e}")
    extra = "; ".join(rec["failed_checks"] + rec["errors"])
    rows = []
    for mode, ours_key, peer, peer_key, note in pairs:
        ours, theirs = rec.get(ours_key), rec.get(peer_key)
        if not (H.finite(ours) and H.finite(theirs)) and st == "ok":
            continue
        name = f"torch_{rec['torch_device']}" if peer == "torch" else peer
        rows.append(H.make_row(suite, family, case, mode, ours, name, theirs, shape=rec["case"], dtype="float32",
                               device=rec.get("lc_device", cc.lc_dev),
                               peer_version=cc.tv if name.startswith("torch") else "",
                               rel_err=rec["max_rel_err"], status=st, path=rec.get("path", ""),
                               notes="; ".join(filter(None, [note, extra]))))
    return rows


def once_ms(fn) -> float:
    """Host ms of one call of fn (a one-off cost such as building a plan, not a timing of a hot call)."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def unavailable_without_plan_api():
    import lightning_core as lc
    if not (hasattr(lc, "Graph") and hasattr(lc.Graph(), "plan")):
        raise SuiteUnavailable("lc.Graph has no plan() in this build")
