#!/usr/bin/env python3
"""CPU/GPU crossover sweep: where does a one-shot call (NumPy in -> NumPy out) get faster on "cuda" than
on "cpu"? Sets the compiled-in defaults of LC_CONV2D_CPU_CROSSOVER_MACS and LC_MATMUL_CPU_CROSSOVER_FLOPS
(src/core/tune_cache.c), which decide device "auto" for conv2d and matmul/linear on host operands.

Rows: conv2d NCHW 3x3, stride 1, pad 1, bias, from a few thousand to ~10^10 multiply-adds (MACs); square
float32 matmul from 8 to 4096. Each side is timed the same way (harness.time_call: host clock around the
whole call, warm-up first — so the first-call autotuning is not in the figures — median of samples).
The crossover is the smallest size from which "cuda" wins on every larger row of the sweep; "none" when it
never does. Without a usable GPU the cuda side is skipped (the table still shows the CPU times).
Writes benchmark_results/crossover_sweep.{csv,json}; the JSON holds the crossover points.
Usage: python benchmarks/python/crossover_sweep.py [--quick] [--only conv2d,matmul] [--out-dir DIR]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import lightning_core as lc  # noqa: E402

FIELDS = ["op", "shape", "work", "work_unit", "cpu_ms", "cuda_ms", "winner", "cuda_over_cpu", "auto_device",
          "cpu_path", "cuda_path", "check_rel_err"]

# (n, c, h, w, oc): MACs = n*oc*h*w*c*9, from ~7e3 to ~1e10
CONV_SHAPES = [
    (1, 3, 8, 8, 4), (1, 3, 16, 16, 8), (1, 3, 16, 16, 16), (1, 8, 16, 16, 16), (1, 8, 32, 32, 16),
    (1, 16, 32, 32, 32), (2, 16, 32, 32, 32), (4, 32, 32, 32, 32), (16, 3, 64, 64, 16), (16, 16, 32, 32, 32),
    (8, 32, 64, 64, 32), (8, 64, 64, 64, 64), (16, 64, 128, 128, 64),
]
MATMUL_SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096]
QUICK_MAX_WORK = 2e9  # --quick: rows up to this much work


def _rel(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def conv_rows(rng):
    for n, c, h, w, oc in CONV_SHAPES:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((oc, c, 3, 3)) / math.sqrt(9 * c)).astype(np.float32)
        b = rng.standard_normal(oc).astype(np.float32)
        macs = n * oc * h * w * c * 9
        yield ("conv2d", f"n={n},c={c},h={h},w={w},oc={oc},k=3", macs, "MACs",
               lambda dev, x=x, wt=wt, b=b: lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1, dev))


def matmul_rows(rng):
    for s in MATMUL_SIZES:
        a = rng.standard_normal((s, s)).astype(np.float32)
        b = rng.standard_normal((s, s)).astype(np.float32)
        yield ("matmul", f"m={s},k={s},n={s}", 2 * s ** 3, "flops", lambda dev, a=a, b=b: lc.matmul2d(a, b, dev))


def crossover(rows):
    """Smallest work from which cuda wins on every larger row (rows of one op); None when it never does."""
    rows = sorted((r for r in rows if r["cuda_ms"] == r["cuda_ms"]), key=lambda r: r["work"])
    point = None
    for r in reversed(rows):
        if r["cuda_ms"] < r["cpu_ms"]:
            point = r["work"]
        else:
            break
    return point


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help=f"fewer samples, rows up to {QUICK_MAX_WORK:g} work")
    p.add_argument("--only", default="", help="comma list: conv2d,matmul")
    p.add_argument("--out-dir", type=Path, default=Path("benchmark_results"))
    args = p.parse_args()
    only = set(filter(None, args.only.split(",")))
    cuda = bool(lc.cuda_available())
    lc.set_matmul_precision("highest")
    tkw = dict(warmup=2, samples=7, min_sample_s=2e-4, settle_s=0.05) if args.quick else \
        dict(warmup=5, samples=21, min_sample_s=5e-4, settle_s=0.15)
    extra_env = {"lightning_core": lc.__version__, "lc_threads": lc.num_threads(), "lc_blas": lc.blas_name(),
                 "lc_cpu_features": lc.cpu_features(), "cuda": cuda}
    if hasattr(harness, "gpu_info"):
        extra_env.update(harness.gpu_info())
    env = harness.environment(extra_env)
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    if not cuda:
        print("crossover_sweep: no usable CUDA GPU (lc.cuda_available() is False): the cuda side is skipped")

    rng = np.random.default_rng(20261127)
    rows = []
    gens = [("conv2d", conv_rows), ("matmul", matmul_rows)]
    for op, gen in gens:
        if only and op not in only:
            continue
        for op_name, shape, work, unit, call in gen(rng):
            if args.quick and work > QUICK_MAX_WORK:
                continue
            y_cpu = call("cpu")
            cpu_path = lc.last_dispatch()["path"]
            cpu_s = harness.time_call(lambda: call("cpu"), **tkw)["median_s"]
            cuda_s, cuda_path, err = float("nan"), "", float("nan")
            if cuda:
                y_cuda = call("cuda")
                cuda_path = lc.last_dispatch()["path"]
                err = _rel(y_cuda, y_cpu)
                cuda_s = harness.time_call(lambda: call("cuda"), **tkw)["median_s"]
            call("auto")
            auto_dev = lc.last_dispatch()["selected"]
            winner = "n/a" if not cuda else ("cuda" if cuda_s < cpu_s else "cpu")
            row = {"op": op_name, "shape": shape, "work": work, "work_unit": unit, "cpu_ms": cpu_s * 1e3,
                   "cuda_ms": cuda_s * 1e3, "winner": winner, "cuda_over_cpu": cpu_s / cuda_s if cuda else float("nan"),
                   "auto_device": auto_dev, "cpu_path": cpu_path, "cuda_path": cuda_path, "check_rel_err": err}
            rows.append(row)
            print(f"{op_name:7s} {shape:34s} {work:12.3g} {unit:5s} cpu {harness.fmt_ms(cpu_s):>9s} ms  "
                  f"cuda {harness.fmt_ms(cuda_s):>9s} ms  -> {winner:4s} (auto: {auto_dev})", flush=True)

    points = {}
    for op, var, current in [("conv2d", "LC_CONV2D_CPU_CROSSOVER_MACS", lc.conv2d_cpu_crossover_macs()),
                             ("matmul", "LC_MATMUL_CPU_CROSSOVER_FLOPS", lc.matmul_cpu_crossover_flops())]:
        op_rows = [r for r in rows if r["op"] == op]
        if not op_rows:
            continue
        point = crossover(op_rows) if cuda else None
        points[op] = {"variable": var, "measured_crossover": point, "current_setting": current,
                      "unit": op_rows[0]["work_unit"]}

    print()
    print(harness.markdown_table(
        ["op", "shape", "work", "cpu ms", "cuda ms", "winner", "cpu/cuda", "auto picks", "cpu path", "cuda path"],
        [[r["op"], r["shape"], f"{r['work']:.3g}", harness.fmt_ms(r["cpu_ms"] / 1e3), harness.fmt_ms(r["cuda_ms"] / 1e3),
          r["winner"], harness.fmt_ratio(r["cuda_over_cpu"]), r["auto_device"], r["cpu_path"], r["cuda_path"] or "-"]
         for r in rows]))
    print()
    for op, pt in points.items():
        if pt["measured_crossover"] is None:
            why = "cuda side skipped (no GPU)" if not cuda else "cuda never wins on every larger row"
            print(f"{op}: no crossover measured ({why}); current {pt['variable']} = {pt['current_setting']:g}")
        else:
            print(f"{op}: cuda wins from {pt['measured_crossover']:.4g} {pt['unit']} on (every larger row too); "
                  f"current {pt['variable']} = {pt['current_setting']:g}")

    out = args.out_dir
    harness.write_csv(out / "crossover_sweep.csv", rows, FIELDS)
    harness.write_json(out / "crossover_sweep.json", env, rows, {"crossover": points})
    print(f"wrote {out / 'crossover_sweep.csv'} and {out / 'crossover_sweep.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
