#!/usr/bin/env python3
"""Quick benchmark: the seed's quick-bench cases (attention, conv, matmul) and ML-bench cases
(linear, matrix_sub, vector_add), lightning_core vs NumPy vs torch CPU (where installed), in one run.

Every side does the same work: NumPy arrays in, NumPy array out, timed on the host clock around the
whole call (median of repeated samples after warm-up). torch CPU runs with the same thread count as
lightning_core and TF32 off; torch.from_numpy/.numpy() are zero-copy on the CPU.

Usage:
  python benchmarks/python/quick_bench.py            # full
  python benchmarks/python/quick_bench.py --quick    # short run (make demo)
Writes benchmark_results/quick_bench.{csv,json,md}. Figures are recorded in docs/benchmarks.md.
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

try:
    import torch
    import torch.nn.functional as F
except Exception:  # torch is an optional peer
    torch = None
    F = None

FIELDS = ["suite", "bench", "shape", "device", "lc_ms", "numpy_ms", "torch_cpu_ms", "numpy_over_lc",
          "torch_over_lc", "lc_gflops", "numpy_gflops", "lc_path", "lc_cv", "check_rel_err"]


def _np_attention(q, k, v, causal=False):
    s = (q @ k.T) * np.float32(1.0 / math.sqrt(q.shape[1]))
    if causal:
        s = s + np.triu(np.full(s.shape, -np.inf, dtype=np.float32), 1)
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    return p @ v


def _np_conv_relu(x, w, b, stride, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + b[None, :, None, None]
    return np.maximum(y, 0)


def _rel_err(out, ref):
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        return float("inf")
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30))


class Runner:
    def __init__(self, device: str, quick: bool, seed: int):
        self.device = device
        self.rng = np.random.default_rng(seed)
        self.rows: list[dict] = []
        self.tkw = dict(warmup=3, samples=7, min_sample_s=1e-4) if quick else dict(warmup=10, samples=21, min_sample_s=3e-4)

    def rand(self, *shape):
        return self.rng.standard_normal(shape, dtype=np.float32)

    def row(self, suite, bench, shape, lc_fn, numpy_fn=None, torch_fn=None, flops=None, ref=None):
        out = lc_fn()
        path, selected = lc.last_dispatch()["path"], lc.last_dispatch()["selected"]
        err = _rel_err(out, ref) if ref is not None else float("nan")
        lc_t = harness.time_call(lc_fn, **self.tkw)
        np_t = harness.time_call(numpy_fn, **self.tkw) if numpy_fn else None
        th_t = harness.time_call(torch_fn, **self.tkw) if torch_fn else None
        lc_s = lc_t["median_s"]
        np_s = np_t["median_s"] if np_t else None
        th_s = th_t["median_s"] if th_t else None
        r = {"suite": suite, "bench": bench, "shape": shape,
             "device": f"auto->{selected}" if self.device == "auto" else self.device,
             "lc_ms": lc_s * 1e3, "numpy_ms": np_s * 1e3 if np_s else float("nan"),
             "torch_cpu_ms": th_s * 1e3 if th_s else float("nan"),
             "numpy_over_lc": harness.ratio(np_s, lc_s), "torch_over_lc": harness.ratio(th_s, lc_s),
             "lc_gflops": flops / lc_s / 1e9 if flops else float("nan"),
             "numpy_gflops": flops / np_s / 1e9 if (flops and np_s) else float("nan"),
             "lc_path": path, "lc_cv": lc_t["cv"], "check_rel_err": err}
        self.rows.append(r)
        print(f"  [{suite}/{bench}] {shape}: lc {harness.fmt_ms(lc_s)} ms | numpy {harness.fmt_ms(np_s)} ms "
              f"| torch {harness.fmt_ms(th_s)} ms | path {path} | err {err:.1e}", flush=True)
        return r


def bench_matmul(R: Runner):
    for m, k, n in [(8, 16, 8), (256, 256, 256), (1024, 1024, 1024), (2048, 2048, 2048)]:
        a, b = R.rand(m, k), R.rand(k, n)
        ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch else (None, None)
        R.row("quick", "matmul2d", f"m={m},k={k},n={n}", lambda: lc.matmul2d(a, b, R.device),
              lambda: a @ b, (lambda: torch.matmul(ta, tb).numpy()) if torch else None,
              flops=2.0 * m * k * n, ref=a.astype(np.float64) @ b)


def bench_attention(R: Runner):
    for seq, d in [(8, 16), (96, 48), (256, 64), (1024, 64)]:
        q, k, v = R.rand(seq, d), R.rand(seq, d), R.rand(seq, d)
        tq, tk, tv = ((torch.from_numpy(x)[None, None] for x in (q, k, v)) if torch else (None,) * 3)
        R.row("quick", "attention2d", f"seq={seq},head_dim={d}", lambda: lc.attention2d(q, k, v, False, R.device),
              lambda: _np_attention(q, k, v),
              (lambda: F.scaled_dot_product_attention(tq, tk, tv)[0, 0].numpy()) if torch else None,
              flops=4.0 * seq * seq * d, ref=_np_attention(*(x.astype(np.float64) for x in (q, k, v))))


def bench_conv(R: Runner):
    for n, c, h, w, oc in [(1, 3, 16, 16, 16), (1, 3, 24, 24, 16), (1, 3, 28, 28, 16), (1, 3, 32, 32, 16),
                           (2, 3, 16, 16, 16), (2, 3, 32, 32, 16)]:
        x, wt, b = R.rand(n, c, h, w), R.rand(oc, c, 3, 3), R.rand(oc)
        tx, tw, tb = ((torch.from_numpy(t) for t in (x, wt, b)) if torch else (None,) * 3)
        R.row("quick", "conv2d_relu", f"batch={n},in_ch={c},h={h},w={w},out_ch={oc},k=3",
              lambda: lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1, R.device, apply_relu=True),
              lambda: _np_conv_relu(x, wt, b, 1, 1),
              (lambda: F.relu(F.conv2d(tx, tw, tb, stride=1, padding=1)).numpy()) if torch else None,
              flops=2.0 * n * oc * h * w * c * 9,
              ref=_np_conv_relu(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), 1, 1))


def bench_ml(R: Runner):
    for batch, fin, fout in [(1024, 1024, 512), (2048, 1024, 512), (4096, 1024, 1024)]:
        x, wt = R.rand(batch, fin), R.rand(fin, fout)
        out = np.empty((batch, fout), dtype=np.float32)
        tx, tw = (torch.from_numpy(x), torch.from_numpy(wt)) if torch else (None, None)
        tout = torch.from_numpy(out.copy()) if torch else None
        R.row("ml", "linear_classifier_inference", f"batch={batch},in={fin},out={fout}",
              lambda: lc.matmul_np_into(x, wt, out, batch, fin, fout, R.device),
              lambda: np.matmul(x, wt, out=out), (lambda: torch.matmul(tx, tw, out=tout)) if torch else None,
              flops=2.0 * batch * fin * fout, ref=x.astype(np.float64) @ wt)
    for rows, cols in [(512, 512), (1024, 1024), (2048, 1024)]:
        a, b = R.rand(rows * cols), R.rand(rows * cols)
        ta, tb = (torch.from_numpy(a.reshape(rows, cols)), torch.from_numpy(b.reshape(rows, cols))) if torch else (None, None)
        R.row("ml", "matrix_preprocessing_sub", f"rows={rows},cols={cols}",
              lambda: lc.matrix_sub(a, b, rows, cols, R.device), lambda: (a - b).reshape(rows, cols),
              (lambda: (ta - tb).numpy()) if torch else None, ref=(a.astype(np.float64) - b).reshape(rows, cols))
    for n in [1024, 65536, 262144, 1048576, 4194304]:
        a, b = R.rand(n), R.rand(n)
        ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch else (None, None)
        R.row("ml", "feature_scaling_vector_add", f"n={n}", lambda: lc.vector_add(a, b, R.device),
              lambda: a + b, (lambda: (ta + tb).numpy()) if torch else None, ref=a.astype(np.float64) + b)


def _find(rows, bench, shape):
    for r in rows:
        if r["bench"] == bench and r["shape"] == shape:
            return r
    return None


def check_targets(rows) -> list[tuple[str, str, str]]:
    """The issue's targets, read off this run's rows: (target, measured, verdict)."""
    out = []

    def add(name, measured, ok):
        out.append((name, measured, "n/a" if ok is None else ("met" if ok else "MISSED")))

    for s in ("m=1024,k=1024,n=1024", "m=2048,k=2048,n=2048"):
        r = _find(rows, "matmul2d", s)
        if r:
            rel = r["lc_gflops"] / r["numpy_gflops"]
            add(f"matmul {s} >= 0.9x NumPy throughput",
                f"{r['lc_gflops']:.0f} vs {r['numpy_gflops']:.0f} GFLOP/s ({rel:.2f}x)", rel >= 0.9)
    tiny = [("matmul2d", "m=8,k=16,n=8"), ("attention2d", "seq=8,head_dim=16"), ("feature_scaling_vector_add", "n=1024")]
    for bench, s in tiny:
        r = _find(rows, bench, s)
        if r:
            add(f"tiny {bench} {s} <= 2 us per call", f"{r['lc_ms'] * 1e3:.2f} us", r["lc_ms"] * 1e3 <= 2.0)
    r = _find(rows, "matmul2d", "m=8,k=16,n=8")
    if r:
        add("tiny matmul within 2x of NumPy a @ b", f"{r['lc_ms'] * 1e3:.2f} us vs {r['numpy_ms'] * 1e3:.2f} us",
            r["lc_ms"] <= 2.0 * r["numpy_ms"])
    r = _find(rows, "attention2d", "seq=1024,head_dim=64")
    if r:
        add("attention seq=1024,d=64 >= 3x NumPy", f"{r['numpy_over_lc']:.2f}x", r["numpy_over_lc"] >= 3.0)
        t = r["torch_over_lc"]
        add("attention seq=1024,d=64 >= 1x torch CPU SDPA", harness.fmt_ratio(t), None if t != t else t >= 1.0)
    for r in rows:
        if r["bench"] == "conv2d_relu":
            t = r["torch_over_lc"]
            add(f"conv3x3+ReLU {r['shape']} >= 1x torch CPU", harness.fmt_ratio(t), None if t != t else t >= 1.0)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short run (fewer samples)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "route"],
                   help="lightning_core device; auto = the best available backend; route = pass device='auto' to "
                        "every call (the runtime's cost model picks cpu or cuda per call; the row says which)")
    p.add_argument("--seed", type=int, default=20261126)
    p.add_argument("--out-dir", type=Path, default=Path("benchmark_results"))
    p.add_argument("--only", default="", help="comma list of: matmul,attention,conv,ml")
    args = p.parse_args()

    device = lc.backend_name() if args.device == "auto" else "auto" if args.device == "route" else args.device
    threads = lc.num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    env = harness.environment({"lightning_core": lc.__version__, "lc_backend": lc.backend_name(),
                               "lc_device": device, "lc_threads": threads, "lc_blas": lc.blas_name(),
                               "lc_cpu_features": lc.cpu_features(),
                               "torch": torch.__version__ if torch is not None else "not installed",
                               "torch_threads": torch.get_num_threads() if torch is not None else None})
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    R = Runner(device, args.quick, args.seed)
    only = set(filter(None, args.only.split(",")))
    for name, fn in [("attention", bench_attention), ("conv", bench_conv), ("matmul", bench_matmul), ("ml", bench_ml)]:
        if not only or name in only:
            print(f"== {name}", flush=True)
            with (torch.inference_mode() if torch is not None else _null()):
                fn(R)

    out = args.out_dir
    harness.write_csv(out / "quick_bench.csv", R.rows, FIELDS)
    harness.write_json(out / "quick_bench.json", env, R.rows)
    table = harness.markdown_table(
        ["suite", "case", "shape", "LC ms", "NumPy ms", "torch CPU ms", "NumPy/LC", "torch/LC", "LC path"],
        [[r["suite"], r["bench"], r["shape"], harness.fmt_ms(r["lc_ms"] / 1e3), harness.fmt_ms(r["numpy_ms"] / 1e3),
          harness.fmt_ms(r["torch_cpu_ms"] / 1e3), harness.fmt_ratio(r["numpy_over_lc"]),
          harness.fmt_ratio(r["torch_over_lc"]), r["lc_path"]] for r in R.rows])
    targets = check_targets(R.rows)
    ttable = harness.markdown_table(["target", "measured", "verdict"], targets)
    summ = []
    for peer in ("numpy_over_lc", "torch_over_lc"):
        s = harness.summarize([r[peer] for r in R.rows])
        summ.append([peer.replace("_over_lc", ""), s["rows"], f"{s['win_rate'] * 100:.0f}%" if s["rows"] else "n/a",
                     harness.fmt_ratio(s["median"]), harness.fmt_ratio(s["min"]), harness.fmt_ratio(s["max"])])
    stable = harness.markdown_table(["peer", "rows", "win rate (>1.0)", "median", "min", "max"], summ)
    md = (f"# Quick bench ({'quick' if args.quick else 'full'})\n\n"
          + "\n".join(f"- {k}: {v}" for k, v in env.items())
          + "\n\nRatios are peer time / LC time (> 1: Lightning Core is faster).\n\n## Summary\n\n" + stable
          + "\n\n## Targets\n\n" + ttable + "\n\n## Cases (median ms per call)\n\n" + table + "\n")
    (out / "quick_bench.md").write_text(md, encoding="utf-8")
    print("\n" + stable + "\n\n" + ttable + "\n\n" + table)
    print(f"\nsaved: {out}/quick_bench.csv, .json, .md")
    bad = [r for r in R.rows if not (r["check_rel_err"] < 1e-3)]
    if bad:
        print("ERROR: result check failed for: " + ", ".join(f"{r['bench']} {r['shape']}" for r in bad))
        return 1
    return 0


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


if __name__ == "__main__":
    sys.exit(main())
