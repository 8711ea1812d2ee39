#!/usr/bin/env python3
"""Session benchmark (the sessions issue): resident sessions, graph replay, the conv->attention chain
session, trace overhead and the one-sync check; lightning_core vs torch on the same device and process.

Rows (docs/benchmarks.md, "Sessions" describes every column):
  large_gemm_sweep  one-shot NumPy in/out; per iteration: LC session cached batch, LC bare kernel (CUDA
                    events), torch resident loop, torch CUDA graph replay. Target: resident <= 1.1x bare.
  mlp_resident      Linear+ReLU -> Linear on resident tensors: LC eager / LC graph vs torch eager / graph.
  conv_attn_chain   conv3x3+ReLU -> q|k|v -> attention: ConvAttentionSession latency (one cached replay +
                    sync) and one-shot I/O vs torch eager / graph. Targets: >= 10x eager, >= 2x graph.
  trace_overhead    256^3 matmul loops, runtime trace off vs on (interleaved). Target: <= 5%.
  sync_count        runtime_counters() around a cached batch of 16: 1 sync, 16 graph launches, no copies.
Times are medians of repeated samples after warm-up; loop columns are (loops iterations + one sync) /
loops. Every LC result is checked once against float64 NumPy (relative error < 1e-4, NaN fails). TF32
off on both sides. Without CUDA the LC side and torch (if installed) run on the CPU, graph columns
n/a. Columns are independent: an error is recorded in its row and the run goes on. Reports:
OUT/session_bench.{json,md}, OUT/session_bench_<row>.csv, rewritten after every row section.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from gpu_bench import _rel as rel_err  # noqa: E402
from lightning_core.bench.refs import ref_chain  # noqa: E402  (float64 reference of the chain)

import lightning_core as lc  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except Exception:  # torch is an optional peer
    torch = None
    F = None

TOL = 1e-4
ROWS = ["large_gemm_sweep", "mlp_resident", "conv_attn_chain", "trace_overhead", "sync_count"]
GEMM = [(1024, 1024, 1024), (1536, 1536, 1536), (2048, 2048, 2048), (3072, 3072, 3072), (4096, 1024, 4096)]
GEMM_TINY = [(64, 64, 64), (96, 128, 80)]
# CPU-only machines: the seed's sweep shapes (up to 3072^3, ~58 GFLOP a call) take minutes per row on a
# few cores, so a full CPU run uses CPU-sized shapes (the row's shape column says which ran).
GEMM_CPU = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024)]
MLP = [(256, 512, 1024, 256), (512, 1024, 2048, 512), (1024, 1024, 4096, 1024), (2048, 1024, 2048, 1024)]
MLP_TINY = [(16, 32, 64, 16), (32, 64, 128, 32)]
MLP_CPU = [(256, 512, 1024, 256), (512, 1024, 2048, 512)]
CHAIN = [(48, 48), (96, 48), (192, 48), (192, 8)]
CHAIN_X, CHAIN_OC = (1, 3, 8, 8), 16  # x [1,3,8,8], w [16,3,3,3], b [16], stride 1, pad 1
LIST_KEYS = ("failed_checks", "errors", "na")


class Skip(Exception):
    """A column not measured on this machine (no CUDA, no torch, time budget): n/a with the reason."""


_mm_into = getattr(lc, "matmul_into", None) or lc.matmul2d_into  # a [m,k] @ b [k,n] into out, tensors or arrays


def _session_cls():
    cls = getattr(lc, "MatMulResidentSession", None) or getattr(lc, "MatMulMetalResidentSession", None)
    if cls is None:
        raise RuntimeError("this lightning_core has no MatMulResidentSession")
    return cls


def _nan(*shape):
    return np.full(shape, np.nan, np.float32)


class Ctx:
    def __init__(self, args):
        self.quick, self.sync_policy_found = args.quick, args.sync_policy_found
        self.lc_dev = args.lc_dev
        self.lc_cuda = self.lc_dev == "cuda"
        self.lc_graph = self.lc_cuda  # lc.capture_graph is CUDA only
        self.tdev, self.t_why = None, "torch is not installed"
        if torch is not None:
            if not self.lc_cuda:
                self.tdev = "cpu"
            elif torch.cuda.is_available():
                self.tdev = "cuda"
            else:
                self.t_why = "torch has no CUDA here"
        self.t_graph = self.tdev == "cuda"
        self.tkw = dict(warmup=2, samples=7, min_sample_s=2e-4, settle_s=0.05) if args.quick else \
            dict(warmup=3, samples=15, min_sample_s=5e-4, settle_s=0.1)
        self.loop_target_s = 0.005 if args.quick else 0.02
        self.loop_range = (2, 50) if args.quick else (8, 200)
        self.deadline = time.perf_counter() + args.max_seconds
        self.rng = np.random.default_rng(20261127)

    def budget(self):
        if time.perf_counter() > self.deadline:
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
            torch.cuda.synchronize()

    def T(self, a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.tdev)

    def wall_ms(self, fn, per=1):
        """Median host-clock ms of fn() / per."""
        self.budget()
        return harness.time_call(fn, **self.tkw)["median_s"] * 1e3 / per

    def median_ms(self, measure_ms, per=1):
        """Median of measure_ms() (a function returning ms, e.g. CUDA-event time) / per, after warm-up."""
        self.budget()
        for _ in range(self.tkw["warmup"]):
            measure_ms()
        return statistics.median(float(measure_ms()) for _ in range(self.tkw["samples"])) / per

    def loops_for(self, est_s):
        lo, hi = self.loop_range
        if not (est_s and est_s > 0 and math.isfinite(est_s)):
            return lo
        return int(min(hi, max(lo, round(self.loop_target_s / est_s))))


def once_s(fn, reps=3):
    """Min host seconds of fn() over a few calls (to size loops)."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def new_row(ctx, row, case):
    return {"row": row, "case": case, "lc_device": ctx.lc_dev, "torch_device": ctx.tdev or "n/a", "status": "",
            "max_rel_err": float("nan"), "failed_checks": [], "errors": [], "na": []}


def check(row, what, got, ref):
    err = rel_err(np.asarray(got).reshape(ref.shape), ref)
    prev = row["max_rel_err"]
    row["max_rel_err"] = err if not (prev == prev) else max(prev, err)
    if not err < TOL:
        row["failed_checks"].append(f"{what}: rel_err {err:.2e}")
    return err


def col(row, name, fn):
    """Runs one column; n/a or an error is recorded in the row, and the row goes on."""
    try:
        fn()
    except Skip as e:
        row["na"].append(f"{name}: {e}")
    except Exception as e:  # noqa: BLE001  (any failure of one column must not stop the run)
        row["errors"].append(f"{name}: {type(e).__name__}: {e}")
        print(f"  ! {row['row']} {row['case']} {name}: {type(e).__name__}: {e}", flush=True)
        traceback.print_exc(limit=3, file=sys.stderr)


def finish(row):
    row["status"] = "FAILED" if row["failed_checks"] else ("error" if row["errors"] else "ok")
    return row


def ratio(row, key, num, den):
    row[key] = harness.ratio(row.get(num), row.get(den))


def torch_graph(fn):
    """Captures fn() (torch ops on CUDA tensors) into a CUDAGraph after a side-stream warm-up, as
    gpu_bench.py does. Returns (graph, what the captured call returned: its static output)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = fn()
    torch.cuda.synchronize()
    return g, out


def looped(fn, loops, sync):
    """One call = `loops` calls of fn, then sync()."""
    def run():
        for _ in range(loops):
            fn()
        sync()
    return run


def torch_cols(ctx, row, build, ref, eager_key):
    """The torch columns of a row: eager (row["loops"] calls of fwd + one sync, per iteration) and CUDA
    graph (fwd captured once; loops replays + one sync). build() makes fresh tensors on ctx.tdev and
    returns (fwd, to_host): fwd() runs one iteration and returns its output tensor."""
    def eager():
        ctx.need_torch()
        fwd, host = build()
        row["torch_rel_err"] = rel_err(host(fwd()), ref)
        loops = row.get("loops", 1)
        row[eager_key] = ctx.wall_ms(looped(fwd, loops, ctx.tsync), per=loops)

    def graph():
        ctx.need_tgraph()
        fwd, host = build()
        g, out = torch_graph(fwd)
        g.replay()
        ctx.tsync()
        row["torch_graph_rel_err"] = rel_err(host(out), ref)
        loops = row.get("loops", 1)
        row["torch_graph_ms"] = ctx.wall_ms(looped(g.replay, loops, ctx.tsync), per=loops)

    for name, fn in ((eager_key[:-3], eager), ("torch_graph", graph)):
        col(row, name, fn)
        free_gpu()


def free_gpu():
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- 1. large GEMM sweep ------------------------------------------------------------------------------
def run_gemm(ctx, m, k, n):
    row = new_row(ctx, "large_gemm_sweep", f"m={m},k={k},n={n}")
    dev, rng = ctx.lc_dev, ctx.rng
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    row["loops"] = ctx.loop_range[0]

    def bare():
        ta, tb, tc = lc.Tensor(a, device=dev), lc.Tensor(b, device=dev), lc.Tensor(_nan(m, n), device=dev)
        _mm_into(ta, tb, tc, device=dev)
        lc.synchronize(dev)
        check(row, "bare matmul_into", tc.numpy(), ref)
        row["loops"] = loops = ctx.loops_for(once_s(lambda: (_mm_into(ta, tb, tc, device=dev), lc.synchronize(dev))))
        many = looped(lambda: _mm_into(ta, tb, tc, device=dev), loops, lambda: None)
        if hasattr(lc, "time_device_ms"):
            row["bare_timer"] = "lc.time_device_ms"
            row["lc_bare_ms"] = ctx.median_ms(lambda: lc.time_device_ms(many, device=dev), per=loops)
        else:
            row["bare_timer"] = "host clock + synchronize (lc.time_device_ms missing)"
            row["lc_bare_ms"] = ctx.wall_ms(lambda: (many(), lc.synchronize(dev)), per=loops)

    def oneshot():
        out = _nan(m * n)
        lc.matmul_np_into(a.ravel(), b.ravel(), out, m, k, n, device=dev)
        check(row, "one-shot matmul_np_into", out, ref)
        row["lc_oneshot_ms"] = ctx.wall_ms(lambda: lc.matmul_np_into(a.ravel(), b.ravel(), out, m, k, n, device=dev))

    st = {}

    def session():
        if "sess" not in st:
            st["sess"] = sess = _session_cls()(m, k, n, device=dev)
            row["lc_session_device"] = getattr(sess, "device", "?")
        return st["sess"]

    def resident():
        sess = session()
        out = _nan(m, n)
        sess.start_into(a, b, out)
        check(row, "session start_into", out, ref)
        sess.run_batch_sync_cached_no_download(2)
        out2 = _nan(m * n)  # flat out
        sess.download_into(out2)
        check(row, "session cached + download_into", out2, ref)
        loops = row["loops"]
        row["lc_resident_ms"] = ctx.wall_ms(lambda: sess.run_batch_sync_cached_no_download(loops), per=loops)
        row["lc_uses_graph"] = getattr(sess, "uses_graph", "?")  # True once a captured graph has replayed

    def session_oneshot():
        sess, out = session(), _nan(m, n)
        sess.sync_into(a, b, out)
        check(row, "session sync_into", out, ref)
        row["lc_session_oneshot_ms"] = ctx.wall_ms(lambda: sess.sync_into(a, b, out))

    def t_oneshot():
        ctx.need_torch()
        out = np.empty((m, n), np.float32)
        to = torch.from_numpy(out)
        f = lambda: to.copy_(torch.from_numpy(a).to(ctx.tdev) @ torch.from_numpy(b).to(ctx.tdev))  # noqa: E731
        f()
        row["torch_oneshot_rel_err"] = rel_err(out, ref)
        row["torch_oneshot_ms"] = ctx.wall_ms(f)

    def t_build():
        ta, tb, tc = ctx.T(a), ctx.T(b), torch.empty((m, n), device=ctx.tdev)
        return (lambda: torch.matmul(ta, tb, out=tc)), (lambda t: t.cpu().numpy())

    for name, fn in (("lc_bare", bare), ("lc_oneshot", oneshot), ("lc_resident", resident),
                     ("lc_session_oneshot", session_oneshot), ("torch_oneshot", t_oneshot)):
        col(row, name, fn)
        if name == "lc_session_oneshot":
            st.clear()
        free_gpu()
    torch_cols(ctx, row, t_build, ref, "torch_resident_ms")
    ratio(row, "resident_over_bare", "lc_resident_ms", "lc_bare_ms")
    ratio(row, "oneshot_speedup", "torch_oneshot_ms", "lc_oneshot_ms")
    ratio(row, "session_oneshot_speedup", "torch_oneshot_ms", "lc_session_oneshot_ms")
    ratio(row, "torch_resident_over_lc_resident", "torch_resident_ms", "lc_resident_ms")
    ratio(row, "torch_graph_over_lc_resident", "torch_graph_ms", "lc_resident_ms")
    return finish(row)


# ---- 2. MLP forward on resident tensors -----------------------------------------------------------------
def run_mlp(ctx, bt, i, h, o):
    row = new_row(ctx, "mlp_resident", f"batch={bt},in={i},hidden={h},out={o}")
    dev, rng = ctx.lc_dev, ctx.rng
    f32 = lambda *s, scale=1.0: (rng.standard_normal(s) * scale).astype(np.float32)  # noqa: E731
    x, w1, b1 = f32(bt, i), f32(i, h, scale=1 / math.sqrt(i)), f32(h, scale=0.1)
    w2, b2 = f32(h, o, scale=1 / math.sqrt(h)), f32(o, scale=0.1)
    d = [v.astype(np.float64) for v in (x, w1, b1, w2, b2)]
    ref = np.maximum(d[0] @ d[1] + d[2], 0.0) @ d[3] + d[4]
    row["loops"] = ctx.loop_range[0]

    def lc_tensors():
        t = [lc.Tensor(v, device=dev) for v in (x, w1, b1, w2, b2)]
        th, ty = lc.Tensor((bt, h), device=dev), lc.Tensor(_nan(bt, o), device=dev)

        def fwd():
            lc.linear_into(t[0], t[1], th, bias=t[2], activation="relu", device=dev)
            lc.linear_into(th, t[3], ty, bias=t[4], activation="none", device=dev)
        return fwd, ty

    def lc_eager():
        fwd, ty = lc_tensors()
        fwd()
        lc.synchronize(dev)
        check(row, "lc eager", ty.numpy(), ref)
        row["loops"] = loops = ctx.loops_for(once_s(lambda: (fwd(), lc.synchronize(dev))))
        row["lc_eager_ms"] = ctx.wall_ms(looped(fwd, loops, lambda: lc.synchronize(dev)), per=loops)

    def lc_graph():
        ctx.need_lc_graph()
        fwd, ty = lc_tensors()
        fwd()  # warm-up outside capture (library workspaces, heuristics)
        lc.synchronize("cuda")
        g = lc.capture_graph(fwd, device="cuda")
        ty.copy_from(_nan(bt, o))  # so that the check below sees what the replay wrote
        lc.synchronize("cuda")
        g.replay(1)
        lc.synchronize("cuda")
        check(row, "lc graph replay", ty.numpy(), ref)
        loops = row["loops"]
        row["lc_graph_ms"] = ctx.wall_ms(lambda: (g.replay(loops), lc.synchronize("cuda")), per=loops)

    def t_build():
        t = [ctx.T(v) for v in (x, w1, b1, w2, b2)]
        th, ty = torch.empty((bt, h), device=ctx.tdev), torch.empty((bt, o), device=ctx.tdev)

        def fwd():
            torch.addmm(t[2], t[0], t[1], out=th)
            torch.relu_(th)
            return torch.addmm(t[4], th, t[3], out=ty)
        return fwd, (lambda y: y.cpu().numpy())

    for name, fn in (("lc_eager", lc_eager), ("lc_graph", lc_graph)):
        col(row, name, fn)
        free_gpu()
    torch_cols(ctx, row, t_build, ref, "torch_eager_ms")
    ratio(row, "torch_eager_over_lc_eager", "torch_eager_ms", "lc_eager_ms")
    ratio(row, "torch_graph_over_lc_graph", "torch_graph_ms", "lc_graph_ms")
    ratio(row, "lc_eager_over_lc_graph", "lc_eager_ms", "lc_graph_ms")
    return finish(row)


# ---- 3. conv -> attention chain ----------------------------------------------------------------------------
def run_chain(ctx, seq, hd):
    row = new_row(ctx, "conv_attn_chain", f"x={'x'.join(map(str, CHAIN_X))},oc={CHAIN_OC},seq={seq},head_dim={hd}")
    dev, rng = ctx.lc_dev, ctx.rng
    n, c, hh, ww = CHAIN_X
    x = rng.random(CHAIN_X, dtype=np.float32)
    w = (rng.random((CHAIN_OC, c, 3, 3), dtype=np.float32) - 0.5) * 0.5
    b = (rng.random(CHAIN_OC, dtype=np.float32) - 0.5) * 0.1
    ref = ref_chain(x, w, b, seq, hd)
    st = {}

    def session():
        if "sess" not in st:
            st["sess"] = lc.ConvAttentionSession(n, c, hh, ww, CHAIN_OC, seq, hd, stride_h=1, stride_w=1, pad_h=1,
                                                 pad_w=1, causal=False, device=dev)
            row["lc_session_device"] = getattr(st["sess"], "device", "?")
        return st["sess"]

    def lc_latency():
        sess = session()
        out = _nan(seq, hd)
        sess.start_into(x, w, b, out)
        check(row, "session start_into", out, ref)
        sess.run_batch_sync_cached_no_download(1)
        out2 = _nan(seq, hd)
        sess.download_into(out2)
        check(row, "session cached + download_into", out2, ref)
        row["lc_latency_ms"] = ctx.wall_ms(lambda: sess.run_batch_sync_cached_no_download(1))
        row["lc_uses_graph"] = getattr(sess, "uses_graph", "?")

    def lc_oneshot_io():
        sess = session()
        out = _nan(seq, hd)
        sess.run_batch_sync_into(x, w, b, out, 1)
        check(row, "session run_batch_sync_into", out, ref)
        row["lc_oneshot_io_ms"] = ctx.wall_ms(lambda: sess.run_batch_sync_into(x, w, b, out, 1))

    sd, conv_numel = seq * hd, CHAIN_OC * hh * ww * n  # stride 1, pad 1: same spatial size
    reps = -(-3 * sd // conv_numel)

    def t_chain(tx, tw, tb):
        y = F.relu(F.conv2d(tx, tw, tb, stride=1, padding=1)).reshape(-1)
        qkv = y.repeat(reps)[:3 * sd]
        q, k, v = (qkv[j * sd:(j + 1) * sd].view(1, 1, seq, hd) for j in range(3))
        return F.scaled_dot_product_attention(q, k, v)

    def t_build():  # one iteration per timed call (row has no "loops"): chain + sync
        tx, tw, tb = ctx.T(x), ctx.T(w), ctx.T(b)
        return (lambda: t_chain(tx, tw, tb)), (lambda o: o[0, 0].cpu().numpy())

    for name, fn in (("lc_latency", lc_latency), ("lc_oneshot_io", lc_oneshot_io)):
        col(row, name, fn)
    st.clear()
    free_gpu()
    torch_cols(ctx, row, t_build, ref, "torch_eager_ms")
    ratio(row, "torch_eager_over_lc", "torch_eager_ms", "lc_latency_ms")
    ratio(row, "torch_graph_over_lc", "torch_graph_ms", "lc_latency_ms")
    return finish(row)


# ---- 4. trace overhead -----------------------------------------------------------------------------------
def run_trace(ctx, dev, resident):
    loops, pairs, nn = (16, 9, 256) if ctx.quick else (64, 31, 256)
    kind = "device Tensors, matmul_into x loops + one sync" if resident else "NumPy in/out matmul2d_into"
    row = new_row(ctx, "trace_overhead", f"{loops} x matmul 256^3 on {dev} ({kind})")
    row["lc_device"], row["torch_device"] = dev, "n/a"
    a, b = ctx.rng.random((nn, nn), dtype=np.float32), ctx.rng.random((nn, nn), dtype=np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)

    def measure():
        ctx.budget()
        if resident:
            ta, tb, tc = lc.Tensor(a, device="cuda"), lc.Tensor(b, device="cuda"), lc.Tensor((nn, nn), device="cuda")
            fn = looped(lambda: _mm_into(ta, tb, tc, device="cuda"), loops, lambda: lc.synchronize("cuda"))
            fn()
            check(row, "matmul_into", tc.numpy(), ref)
        else:
            out = _nan(nn, nn)
            fn = looped(lambda: lc.matmul2d_into(a, b, out, device=dev), loops, lambda: None)
            fn()
            check(row, "matmul2d_into", out, ref)
        time.sleep(ctx.tkw["settle_s"])
        for _ in range(ctx.tkw["warmup"] + 2):
            fn()
        off, on, events = [], [], []
        try:
            for p in range(pairs):  # alternate the order inside each pair to cancel drift
                for flag in ((False, True) if p % 2 == 0 else (True, False)):
                    lc.runtime_trace_clear()
                    lc.runtime_trace_enable(flag)
                    t0 = time.perf_counter()
                    fn()
                    dt = time.perf_counter() - t0
                    lc.runtime_trace_enable(False)
                    (on if flag else off).append(dt)
                    if flag:
                        events.append(lc.runtime_trace_stats().get("events", -1))
        finally:
            lc.runtime_trace_enable(False)
            lc.runtime_trace_clear()
        row["loops"], row["pairs"] = loops, pairs
        row["trace_off_ms"] = statistics.median(off) * 1e3 / loops
        row["trace_on_ms"] = statistics.median(on) * 1e3 / loops
        row["overhead_pct"] = 100 * (statistics.median(y / x for x, y in zip(off, on)) - 1)
        row["events_per_on_sample"] = statistics.median(events)
        if row["events_per_on_sample"] < loops:
            row["errors"].append(f"trace recorded {row['events_per_on_sample']} events per sample of {loops} ops")

    col(row, "trace", measure)
    return finish(row)


# ---- 5. sync count -------------------------------------------------------------------------------------------
def run_sync_count(ctx, what):
    dev, loops = ctx.lc_dev, 16
    row = new_row(ctx, "sync_count", what)
    row["torch_device"] = "n/a"

    def measure():
        if what.startswith("DeviceGraph"):
            ctx.need_lc_graph()
            ta, tb = (lc.Tensor(ctx.rng.random((256, 256), dtype=np.float32), device="cuda") for _ in range(2))
            tc = lc.Tensor((256, 256), device="cuda")
            _mm_into(ta, tb, tc, device="cuda")
            lc.synchronize("cuda")
            g = lc.capture_graph(lambda: _mm_into(ta, tb, tc, device="cuda"), device="cuda")
            run, graph, sess = (lambda: (g.replay(loops), lc.synchronize("cuda"))), True, None
            row["lc_session_device"] = "cuda"
        else:
            if what.startswith("MatMul"):
                m = 64 if ctx.quick and not ctx.lc_cuda else 256
                sess = _session_cls()(m, m, m, device=dev)
                sess.start_into(ctx.rng.random((m, m), dtype=np.float32), ctx.rng.random((m, m), dtype=np.float32),
                                _nan(m, m))
            else:
                sess = lc.ConvAttentionSession(*CHAIN_X, CHAIN_OC, 48, 48, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
                                               causal=False, device=dev)
                sess.start_into(ctx.rng.random(CHAIN_X, dtype=np.float32),
                                ctx.rng.random((CHAIN_OC, 3, 3, 3), dtype=np.float32) - 0.5,
                                ctx.rng.random(CHAIN_OC, dtype=np.float32), _nan(48, 48))
            sess.run_batch_sync_cached_no_download(2)  # any capture happens before the counted batch
            run, row["lc_session_device"] = (lambda: sess.run_batch_sync_cached_no_download(loops)), sess.device
            graph = None
        lc.synchronize(dev)
        lc.runtime_counters_reset()
        run()
        cnt = dict(lc.runtime_counters())
        row["lc_uses_graph"] = graph = graph if graph is not None else bool(getattr(sess, "uses_graph", False))
        for key in ("syncs", "graph_launches", "graph_captures", "h2d_bytes", "d2h_bytes"):
            row[key] = cnt.get(key, "missing")
        row["counters"] = cnt
        if row["lc_session_device"] != "cuda":
            row["verdict"] = "info (counts are only specified for CUDA)"
            return
        bad = []
        if row["syncs"] != 1:
            bad.append(f"syncs {row['syncs']} != 1")
        if graph and row["graph_launches"] != loops:
            bad.append(f"graph_launches {row['graph_launches']} != {loops}")
        if row["h2d_bytes"] != 0 or row["d2h_bytes"] != 0:
            bad.append(f"transfers h2d {row['h2d_bytes']} d2h {row['d2h_bytes']} != 0")
        row["verdict"] = "PASS" if not bad else "FAIL: " + "; ".join(bad)
        if bad:
            row["failed_checks"].append(row["verdict"])

    col(row, "counters", measure)
    return finish(row)


# ---- report -------------------------------------------------------------------------------------------------
def _ms(v):
    return harness.fmt_ms(None if v is None else v / 1e3)


def _r(v):
    return "n/a" if v is None else harness.fmt_ratio(v)


TABLES = {  # per row: (header, key, formatter)
    "large_gemm_sweep": [("shape", "case", str), ("loops", "loops", str), ("LC one-shot", "lc_oneshot_ms", _ms),
                         ("LC session one-shot", "lc_session_oneshot_ms", _ms),
                         ("torch one-shot", "torch_oneshot_ms", _ms), ("speedup", "oneshot_speedup", _r),
                         ("speedup (session)", "session_oneshot_speedup", _r),
                         ("LC resident/it", "lc_resident_ms", _ms), ("LC bare/it", "lc_bare_ms", _ms),
                         ("resident/bare", "resident_over_bare", _r), ("torch resident/it", "torch_resident_ms", _ms),
                         ("torch graph/it", "torch_graph_ms", _ms),
                         ("torch res/LC", "torch_resident_over_lc_resident", _r),
                         ("torch graph/LC", "torch_graph_over_lc_resident", _r), ("graph", "lc_uses_graph", str)],
    "mlp_resident": [("config", "case", str), ("loops", "loops", str), ("LC eager/it", "lc_eager_ms", _ms),
                     ("LC graph/it", "lc_graph_ms", _ms), ("torch eager/it", "torch_eager_ms", _ms),
                     ("torch graph/it", "torch_graph_ms", _ms),
                     ("torch eager/LC eager", "torch_eager_over_lc_eager", _r),
                     ("torch graph/LC graph", "torch_graph_over_lc_graph", _r)],
    "conv_attn_chain": [("shape", "case", str), ("LC latency", "lc_latency_ms", _ms),
                        ("LC one-shot I/O", "lc_oneshot_io_ms", _ms), ("torch eager", "torch_eager_ms", _ms),
                        ("torch graph", "torch_graph_ms", _ms), ("torch eager/LC", "torch_eager_over_lc", _r),
                        ("torch graph/LC", "torch_graph_over_lc", _r), ("graph", "lc_uses_graph", str)],
    "trace_overhead": [("case", "case", str), ("off/op", "trace_off_ms", _ms), ("on/op", "trace_on_ms", _ms),
                       ("overhead %", "overhead_pct", lambda v: "n/a" if v is None else f"{v:+.2f}"),
                       ("events/sample", "events_per_on_sample", str)],
    "sync_count": [("case", "case", str), ("device", "lc_session_device", str), ("graph", "lc_uses_graph", str),
                   ("syncs", "syncs", str), ("graph launches", "graph_launches", str),
                   ("graph captures", "graph_captures", str), ("h2d bytes", "h2d_bytes", str),
                   ("d2h bytes", "d2h_bytes", str), ("verdict", "verdict", str)],
}


def _cell(row, key, fmt):
    v = row.get(key)
    if isinstance(v, float) and not math.isfinite(v):
        v = None
    try:
        return "n/a" if v is None else fmt(v)
    except Exception:  # noqa: BLE001
        return str(v)


def table(name, rows):
    spec = TABLES[name]
    lines = [[_cell(r, k, f) for _, k, f in spec] + [r["status"] + (f" ({'; '.join(r['failed_checks'])})"
                                                                    if r["failed_checks"] else ""),
                                                     _cell(r, "max_rel_err", lambda v: f"{v:.1e}")] for r in rows]
    return harness.markdown_table([h for h, _, _ in spec] + ["status", "rel err"], lines)


def targets(rows):
    out = []

    def add(target, r, key, ok, fmt):
        v = r.get(key)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            out.append([target, r["case"], "n/a", "n/a"])
        else:
            out.append([target, r["case"], fmt(v), "PASS" if ok(v) else "MISS"])

    for r in rows:
        if r["row"] == "large_gemm_sweep":
            add("LC resident <= 1.1x LC bare kernel", r, "resident_over_bare", lambda v: v <= 1.1,
                lambda v: f"{v:.3f}x")
        elif r["row"] == "conv_attn_chain":
            x = lambda v: f"{v:.2f}x"  # noqa: E731
            add("LC latency >= 10x faster than torch eager", r, "torch_eager_over_lc", lambda v: v >= 10, x)
            add("LC latency >= 2x faster than torch graph", r, "torch_graph_over_lc", lambda v: v >= 2, x)
        elif r["row"] == "trace_overhead":
            add("trace on <= 5% over trace off", r, "overhead_pct", lambda v: v <= 5.0, lambda v: f"{v:+.2f}%")
        elif r["row"] == "sync_count":
            v = r.get("verdict") or "n/a"
            out.append(["1 sync (+16 graph launches, no transfers) per cached batch", r["case"],
                        f"syncs={r.get('syncs', 'n/a')}, graph_launches={r.get('graph_launches', 'n/a')}",
                        v if v.startswith(("PASS", "info", "n/a")) else "FAIL"])
    return out


def write_reports(out_dir, env, sections):
    rows = [r for _, rs in sections for r in rs]
    harness.write_json(out_dir / "session_bench.json", env, [harness.json_safe(r) for r in rows],
                       extra={"targets": targets(rows)})
    for name, rs in sections:
        fields = []
        for r in rs:
            fields += [k for k in r if k not in fields and k != "counters"]
        flat = [{k: ("; ".join(v) if k in LIST_KEYS else v) for k, v in harness.json_safe(r).items()} for r in rs]
        harness.write_csv(out_dir / f"session_bench_{name}.csv", flat, fields)
    md = ["# Session bench", "", *[f"- {k}: {v}" for k, v in env.items()], "",
          "Times in ms (median). '/it' = per iteration of a loop ending in one synchronize. Ratios peer/LC "
          "(> 1: LC faster); resident/bare: LC session per iteration over the bare kernel's CUDA-event time.", ""]
    for name, rs in sections:
        md += [f"## {name}", "", table(name, rs), ""]
        notes = [f"- {r['case']}: " + "; ".join(r["errors"] + r["na"]) for r in rs if r["errors"] or r["na"]]
        md += (["Errors and n/a columns:", *notes, ""] if notes else [])
    md += ["## Targets", "", harness.markdown_table(["target", "case", "measured", "verdict"], targets(rows)), ""]
    (out_dir / "session_bench.md").write_text("\n".join(md), encoding="utf-8")


def environment(ctx):
    extra = {"lightning_core": getattr(lc, "__version__", "?"), "lc_backend": _try(lc.backend_name),
             "lc_threads": _try(lc.num_threads), "lc_device": ctx.lc_dev, "lc_cuda_available": _try(lc.cuda_available),
             "lc_matmul_precision": _try(lc.get_matmul_precision),
             "lc_sync_policy": (_try(lc.get_sync_policy) if hasattr(lc, "get_sync_policy") else "n/a")
             + f" (found {ctx.sync_policy_found})",
             "env_LC_SYNC_POLICY": os.environ.get("LC_SYNC_POLICY", "unset"),
             "torch": getattr(torch, "__version__", "not installed"),
             "torch_device": ctx.tdev or f"n/a ({ctx.t_why})"}
    if torch is not None:
        extra["torch_threads"] = _try(torch.get_num_threads)
        extra["torch_tf32"] = f"matmul={torch.backends.cuda.matmul.allow_tf32}, cudnn={torch.backends.cudnn.allow_tf32}"
        if torch.cuda.is_available():
            extra["gpu"] = _try(torch.cuda.get_device_name)
            extra["torch_cuda"] = torch.version.cuda
    extra.update(harness.gpu_info())
    return harness.environment(extra)


def _try(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        return f"error: {e}"


def parse_args(argv=None, rows=ROWS, doc=__doc__, out_default="benchmark_results"):
    """The command line shared by the session, graph/eager and fusion benchmarks (``rows``: the script's row
    names, selectable with --only by name or 1-based number)."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer shapes and samples (smoke run; tiny shapes on CPU)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--out", type=Path, default=Path(out_default))
    p.add_argument("--only", default="", help="comma list of rows (names or 1-based numbers): " + ",".join(rows))
    p.add_argument("--max-seconds", type=float, default=540.0,
                   help="columns starting after this many seconds are skipped (n/a), reports still written")
    args = p.parse_args(argv)
    sel = []
    for tok in filter(None, (t.strip() for t in args.only.split(","))):
        name = rows[int(tok) - 1] if tok.isdigit() and 1 <= int(tok) <= len(rows) else tok
        if name not in rows:
            p.error(f"--only: unknown row {tok!r}; rows: {', '.join(rows)}")
        sel.append(name)
    args.rows = [r for r in rows if not sel or r in sel]
    return args


def setup(args, name, extra_env=None):
    """Device choice, TF32 off on both sides, sync policy 'auto', the Ctx and the environment block (printed).
    (None, None) when --device cuda was asked and there is no GPU: nothing to run."""
    cuda = bool(_try(lc.cuda_available) is True)
    if args.device == "cuda" and not cuda:
        print(f"{name}: --device cuda but lc.cuda_available() is False; nothing measured", file=sys.stderr)
        return None, None
    args.lc_dev = "cuda" if (args.device == "cuda" or (args.device == "auto" and cuda)) else "cpu"
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    lc.set_matmul_precision("highest")
    # "sync" in a session method's name (and the end of a plan's execute) is honoured under the 'auto'
    # policy; under 'never' (LC_SYNC_POLICY) the calls would return at enqueue and every time here would
    # be launch-only.
    args.sync_policy_found = _try(lc.get_sync_policy) if hasattr(lc, "get_sync_policy") else "n/a"
    if hasattr(lc, "set_sync_policy"):
        lc.set_sync_policy("auto")
    ctx = Ctx(args)
    ctx.out = args.out
    env = environment(ctx)
    env.update(extra_env or {})
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    return ctx, env


def main(argv=None) -> int:
    args = parse_args(argv)
    ctx, env = setup(args, "session_bench")
    if ctx is None:
        return 2
    gemm = GEMM if ctx.lc_cuda else GEMM_TINY if args.quick else GEMM_CPU
    mlp = MLP if ctx.lc_cuda else MLP_TINY if args.quick else MLP_CPU
    if args.quick:
        gemm, mlp = gemm[:2], mlp[:2]
    chain = CHAIN[:2] if args.quick else CHAIN
    plans = {
        "large_gemm_sweep": [lambda s=s: run_gemm(ctx, *s) for s in gemm],
        "mlp_resident": [lambda s=s: run_mlp(ctx, *s) for s in mlp],
        "conv_attn_chain": [lambda s=s: run_chain(ctx, *s) for s in chain],
        "trace_overhead": [lambda d=d: run_trace(ctx, *d) for d in
                           ([("cuda", True), ("cuda", False), ("cpu", False)] if ctx.lc_cuda else [("cpu", False)])],
        "sync_count": [lambda w=w: run_sync_count(ctx, w) for w in
                       ["MatMulResidentSession.run_batch_sync_cached_no_download(16)",
                        "ConvAttentionSession.run_batch_sync_cached_no_download(16)"]
                       + (["DeviceGraph.replay(16) + synchronize"] if ctx.lc_graph else [])],
    }
    rows = harness.run_sections(args.rows, plans, "session_bench",
                                lambda sections: write_reports(args.out, env, sections),
                                after_section=lambda name, rs: print(table(name, rs), flush=True))
    return harness.finish_run("session_bench", args.out, rows, targets(rows))


if __name__ == "__main__":
    sys.exit(main())
