"""The dist suite (issue 17's target): all_reduce bus bandwidth of lc.distributed against torch.distributed
(NCCL backend) on the same GPUs, 64 MB and 1 GB messages, bfloat16 and float32 (--quick: 64 MB only).

Needs >= 2 visible GPUs: with fewer it says "needs >= 2 GPUs" (SuiteUnavailable, exit 0). The suite starts the
ranks itself, twice through python -m lightning_core.launch --nproc <GPUs, at most 8>: once running this module
as `--peer lc` (lc.distributed, check=False: no header exchange in the loop), once as `--peer torch`
(torch.distributed.init_process_group("nccl"); its own process, so each side loads its own NCCL). Each rank
warms up, then times `iters` all_reduces between two host waits (the best of 3 rounds, after a barrier);
rank 0 prints one JSON line per case. Bus bandwidth = 2 (n - 1) / n x bytes / time (nccl-tests' busbw).
Row: ours_ms / peer_ms per all_reduce, ratio = peer_ms / ours_ms (>= 0.9 is the target: 90% of torch's
bandwidth); the note gives both GB/s and the target's PASS / MISS by N%. Correctness: before timing, each
side checks one all_reduce of rank-valued data (sum = n(n+1)/2) and reports rel_err.
Tested by tests/python/test_bench_suites.py (CPU: the clean "needs >= 2 GPUs" skip).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from . import Ctx, SuiteUnavailable
from .lowp import _target

SIZES = {"64MB": 64 << 20, "1GB": 1 << 30}
DTYPES = ("bfloat16", "float32")
_TAG = "DIST_RESULT "


def _cases(quick: bool):
    return [(s, d) for s in (("64MB",) if quick else ("64MB", "1GB")) for d in DTYPES]


def _launch(nproc: int, peer: str, quick: bool, timeout: float) -> tuple[dict, str]:
    cmd = [sys.executable, "-m", "lightning_core.launch", "--nproc", str(nproc), "-m",
           "lightning_core.bench.suites.dist", "--peer", peer] + (["--quick"] if quick else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    res = {}
    for line in p.stdout.splitlines():
        i = line.find(_TAG)
        if line.startswith("[rank 0] ") and i >= 0:
            r = json.loads(line[i + len(_TAG):])
            res[(r["size"], r["dtype"])] = r
    return res, "" if p.returncode == 0 else f"{peer} ranks failed (exit {p.returncode}): {p.stderr[-600:]}"


def run(ctx: Ctx) -> list[dict]:
    import lightning_core as lc
    from ..harness import make_row
    n = lc._C.cuda_device_count() if lc.distributed.available() else 0
    if n < 2:
        why = lc.distributed.why_unavailable() or f"{n} visible"
        raise SuiteUnavailable(f"needs >= 2 GPUs ({why}); the all_reduce target is measured on a multi-GPU host")
    nproc = min(n, 8)
    ctx.case(f"lc.distributed all_reduce, {nproc} ranks")
    ours, err_ours = _launch(nproc, "lc", ctx.quick, 900)
    ctx.case(f"torch.distributed all_reduce, {nproc} ranks")
    theirs, err_torch = _launch(nproc, "torch", ctx.quick, 900)
    for e in (err_ours, err_torch):
        ctx.note(e)
    rows = []
    for size, dtype in _cases(ctx.quick):
        o, t = ours.get((size, dtype), {}), theirs.get((size, dtype), {})
        o_ms, t_ms = o.get("ms", float("nan")), t.get("ms", float("nan"))
        o_bw, t_bw = o.get("busbw_gbs", float("nan")), t.get("busbw_gbs", float("nan"))
        ratio = t_ms / o_ms if o_ms == o_ms and t_ms == t_ms and o_ms > 0 else float("nan")
        note = (f"busbw ours {o_bw:.1f} GB/s, torch {t_bw:.1f} GB/s ({nproc} GPUs, NCCL_NVLS_ENABLE="
                f"{os.environ.get('NCCL_NVLS_ENABLE', '0')}, ours NCCL {o.get('nccl', '?')}, torch NCCL "
                f"{t.get('nccl', '?')}); " + _target(ratio, 0.9, "busbw vs torch"))
        rows.append(make_row("dist", "all_reduce", f"all_reduce {size} {dtype} x{nproc}", "resident", o_ms,
                             "torch_distributed", t_ms, shape=f"bytes={SIZES[size]},ranks={nproc}", dtype=dtype,
                             device="cuda", peer_version=t.get("version", ""), rel_err=o.get("rel_err", float("nan")),
                             path="nccl_all_reduce", nbytes=float(SIZES[size]), notes=note,
                             status="" if o and t else "n/a"))
    return rows


# ---- one rank (run by the launcher) ---------------------------------------------------------------

def _time_loop(call, sync, barrier, iters: int) -> float:
    best = float("inf")
    for _ in range(3):
        barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            call()
        sync()
        best = min(best, (time.perf_counter() - t0) / iters)
    return best * 1e3


def _rank_lc(quick: bool):
    import numpy as np

    import lightning_core as lc
    g = lc.distributed.init(timeout=600.0, check=False)
    n, r = g.world_size, g.rank
    # correctness: rank-valued data sums to n(n+1)/2 everywhere
    chk = lc.Tensor(np.full((4096,), r + 1, np.float32), device="cuda")
    g.all_reduce(chk)
    want = n * (n + 1) / 2
    err = float(np.max(np.abs(chk.numpy().astype(np.float64) - want)) / want)
    for size, dtype in _cases(quick):
        elems = SIZES[size] // (2 if dtype == "bfloat16" else 4)
        t = lc.Tensor((elems,), device="cuda", dtype=dtype)
        iters = 20 if SIZES[size] < (1 << 30) else 5
        for _ in range(3):
            g.all_reduce(t)
        g.synchronize()
        ms = _time_loop(lambda: g.all_reduce(t), g.synchronize, g.barrier, iters)
        del t
        _report(r, n, size, dtype, ms, err, f"lightning_core {lc.__version__}", lc._C.dist_nccl_version())
    g.destroy()


def _rank_torch(quick: bool):
    import torch
    import torch.distributed as td
    local = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local)
    port = int(os.environ["MASTER_PORT"])
    td.init_process_group("nccl", init_method=f"tcp://{os.environ['MASTER_ADDR']}:{port}",
                          rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    n, r = td.get_world_size(), td.get_rank()
    chk = torch.full((4096,), float(r + 1), device="cuda")
    td.all_reduce(chk)
    want = n * (n + 1) / 2
    err = float((chk.double() - want).abs().max().item() / want)
    nccl = ".".join(map(str, torch.cuda.nccl.version()))
    for size, dtype in _cases(quick):
        dt = torch.bfloat16 if dtype == "bfloat16" else torch.float32
        t = torch.zeros(SIZES[size] // (2 if dtype == "bfloat16" else 4), dtype=dt, device="cuda")
        iters = 20 if SIZES[size] < (1 << 30) else 5
        for _ in range(3):
            td.all_reduce(t)
        torch.cuda.synchronize()
        ms = _time_loop(lambda: td.all_reduce(t), torch.cuda.synchronize, td.barrier, iters)
        del t
        _report(r, n, size, dtype, ms, err, f"torch {torch.__version__}", nccl)
    td.destroy_process_group()


def _report(rank, n, size, dtype, ms, err, version, nccl):
    if rank == 0:
        busbw = 2.0 * (n - 1) / n * SIZES[size] / (ms * 1e-3) / 1e9
        print(_TAG + json.dumps({"size": size, "dtype": dtype, "ms": ms, "busbw_gbs": busbw, "rel_err": err,
                                 "version": version, "nccl": nccl}), flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lightning_core.bench.suites.dist")
    p.add_argument("--peer", choices=("lc", "torch"), required=True)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    (_rank_lc if a.peer == "lc" else _rank_torch)(a.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
