"""The crossover suite (CUDA only; not in the default run): where does a one-shot call (NumPy in -> NumPy out)
get faster on "cuda" than on "cpu"? ours = device="cuda", peer lc_cpu = device="cpu", one row per size; the
note says where device="auto" went. Conv2d NCHW 3x3 (stride 1, pad 1, bias) from ~7e3 to ~1e10 MACs, square
float32 matmul 8 .. 4096 (--quick: work up to 2e9). The crossover (the smallest size from which cuda wins on
every larger row) and the current LC_CONV2D_CPU_CROSSOVER_MACS / LC_MATMUL_CPU_CROSSOVER_FLOPS settings are
suite notes. Tested (CPU: unavailable) by tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import math

import numpy as np

from .. import harness as H
from ...testing import refs as R
from ...testing import validate
from ..timer import time_call
from . import Ctx, SuiteUnavailable
from .common import last_path

CONV_SHAPES = [(1, 3, 8, 8, 4), (1, 3, 16, 16, 8), (1, 3, 16, 16, 16), (1, 8, 16, 16, 16), (1, 8, 32, 32, 16),
               (1, 16, 32, 32, 32), (2, 16, 32, 32, 32), (4, 32, 32, 32, 32), (16, 3, 64, 64, 16),
               (16, 16, 32, 32, 32), (8, 32, 64, 64, 32), (8, 64, 64, 64, 64), (16, 64, 128, 128, 64)]
MATMUL_SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096]
QUICK_MAX_WORK = 2e9


def crossover(rows: list[dict]):
    """Smallest work from which cuda wins on every larger row; None when it never does."""
    point = None
    for r in sorted(rows, key=lambda r: r["flops"], reverse=True):
        if not r["ratio"] > 1.0:
            break
        point = r["flops"]
    return point


def run(ctx: Ctx) -> list[dict]:
    import lightning_core as lc
    if ctx.device != "cuda" or not lc.cuda_available():
        raise SuiteUnavailable("needs CUDA (--device cuda on a GPU machine)")
    ctx.need_dtype("float32")
    lc.set_matmul_precision("highest")
    tkw = dict(warmup=2, samples=7, min_sample_s=2e-4, settle_s=0.05) if ctx.quick else \
        dict(warmup=5, samples=21, min_sample_s=5e-4, settle_s=0.15)
    rng = np.random.default_rng(20261127)
    cases = []
    for n, c, h, w, oc in CONV_SHAPES:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((oc, c, 3, 3)) / math.sqrt(9 * c)).astype(np.float32)
        b = rng.standard_normal(oc).astype(np.float32)
        cases.append(("conv2d", f"n={n},c={c},h={h},w={w},oc={oc},k=3", 2.0 * n * oc * h * w * c * 9,
                      lambda dev, x=x, wt=wt, b=b: lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1, dev),
                      lambda x=x, wt=wt, b=b: R.ref_conv2d(x, wt, b, 1, 1, 1, 1)))
    for s in MATMUL_SIZES:
        a, b = rng.standard_normal((s, s)).astype(np.float32), rng.standard_normal((s, s)).astype(np.float32)
        cases.append(("matmul", f"m={s},k={s},n={s}", 2.0 * s ** 3, lambda dev, a=a, b=b: lc.matmul2d(a, b, dev),
                      lambda a=a, b=b: R.ref_matmul(a, b)))
    rows: list[dict] = []
    for op, shape, flops, call, ref_fn in cases:
        if ctx.quick and (flops / 2 if op == "conv2d" else flops) > QUICK_MAX_WORK:
            continue
        case = f"{op} {shape}"
        ctx.case(case)
        ref = ref_fn()
        err = max(validate(call("cpu"), ref, 1e-4)[0], validate(call("cuda"), ref, 1e-4)[0])
        path, _ = last_path()
        cpu, cuda = time_call(lambda: call("cpu"), **tkw), time_call(lambda: call("cuda"), **tkw)
        call("auto")
        auto = lc.last_dispatch()["selected"]
        rows.append(H.make_row("crossover", op, case, "one_shot", cuda["median_ms"], "lc_cpu", cpu["median_ms"],
                               shape=shape, device="cuda", cv=cuda["cv"], peer_cv=cpu["cv"], rel_err=err, path=path,
                               flops=flops, status="ok" if err < 1e-4 else "FAILED", notes=f"auto picks {auto}"))
    for op, var, current in [("conv2d", "LC_CONV2D_CPU_CROSSOVER_MACS", lc.conv2d_cpu_crossover_macs()),
                             ("matmul", "LC_MATMUL_CPU_CROSSOVER_FLOPS", lc.matmul_cpu_crossover_flops())]:
        point = crossover([r for r in rows if r["family"] == op and H.finite(r["ratio"])])
        if op == "conv2d" and point is not None:
            point /= 2.0  # flops -> MACs, the variable's unit
        ctx.note(f"{op}: cuda wins from {point:.4g} on (every larger row too)" if point is not None else
                 f"{op}: no crossover (cuda never wins on every larger row)")
        ctx.note(f"{op}: current {var} = {current:g}")
    return rows
