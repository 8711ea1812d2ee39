"""python -m lightning_core.bench: every registered suite, repeated, summarised, charted.

  python -m lightning_core.bench [--quick] [--suites a,b] [--out benchmark_results] [--repeats N]
                                 [--seed S] [--device auto|cpu|cuda] [--max-seconds T] [--cv-threshold F]
                                 [--list]
Stability gate: each suite runs N times (default 3, --quick 2) with the same seed; a row's cv is the
coefficient of variation of our time across the repeats and rows above --cv-threshold (default 0.10) are
marked "unstable" in the tables and listed in the report. Exit status: 0, or 1 when a suite errored or
timed out or a row failed its result check; 2 on a usage error.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from . import charts, harness as H, report
from .progress import Progress
from .suites import DEFAULT_ORDER, REGISTRY, Ctx, SuiteTimeout, SuiteUnavailable


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m lightning_core.bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short run: fewer shapes and samples, 2 repeats")
    p.add_argument("--suites", default="", help="comma list of suites (default: all); --list shows them")
    p.add_argument("--out", type=Path, default=Path("benchmark_results"), help="output directory")
    p.add_argument("--repeats", type=int, default=None, help="runs per suite for the stability gate (3; quick 2)")
    p.add_argument("--seed", type=int, default=20261126, help="the fixed seed of every repeat")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="our side's backend; auto = CUDA when lightning_core has a usable GPU, else CPU")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="time budget of the whole run: a suite still running at the limit is stopped, later ones "
                        "are skipped, reports are written anyway")
    p.add_argument("--cv-threshold", type=float, default=0.10, help="rows with a larger CV are 'unstable'")
    p.add_argument("--list", action="store_true", help="list the suites and exit")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    names = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = [s for s in names if s not in REGISTRY]
    if unknown:
        p.error(f"--suites: unknown suite(s) {', '.join(unknown)}; known: {', '.join(_order())}")
    args.names = names or [s for s in _order()]
    return args


def _order() -> list[str]:
    return [s for s in DEFAULT_ORDER if s in REGISTRY] + [s for s in REGISTRY if s not in DEFAULT_ORDER]


def resolve_device(choice: str) -> str:
    try:
        import lightning_core as lc
        cuda = bool(lc.cuda_available())
    except Exception:  # noqa: BLE001
        cuda = False
    if choice == "cuda" and not cuda:
        raise SystemExit("lightning_core.bench: --device cuda but lc.cuda_available() is False")
    return "cuda" if choice == "cuda" or (choice == "auto" and cuda) else "cpu"


def run_suite(name: str, index: int, args, device: str, deadline: float, progress: Progress) -> dict:
    """Runs one suite args.repeats times; returns its block (rows aggregated over the repeats)."""
    suite = REGISTRY[name]
    notes: list[str] = []
    reps: list[list[dict]] = []
    status = "ok"
    t0 = time.perf_counter()
    for k in range(1, args.repeats + 1):
        if time.perf_counter() >= deadline:
            status = f"timeout: time budget used after {len(reps)} of {args.repeats} repeats" if reps else \
                "skipped: time budget (--max-seconds) used up"
            break
        progress.start_suite(index, name, k, args.repeats)
        ctx = Ctx(quick=args.quick, device=device, seed=args.seed, repeat=k, repeats=args.repeats, raw_dir=args.out / "raw",
                  deadline=deadline, progress=progress, python=sys.executable, notes=notes)
        try:
            reps.append(list(suite.run(ctx)))
        except SuiteUnavailable as e:
            status = f"unavailable: {e}"
            break
        except SuiteTimeout as e:
            status = f"timeout: {e}"
            break
        except Exception as e:  # noqa: BLE001  (one suite's failure must not stop the others)
            status = f"error: {type(e).__name__}: {e}"
            progress.message(f"{name}: " + "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip())
            break
    wall = time.perf_counter() - t0
    rows = H.aggregate_repeats(reps, args.cv_threshold)
    failed = sum(1 for r in rows if r["status"] in ("FAILED", "error"))
    if status == "ok" and failed:
        status = f"ok, {failed} row(s) failed"
    elif status == "ok" and not rows:
        status = "no rows: no peer could be measured here (see notes)"
    stab = H.stability(rows, [H.repeat_total_ms(r) for r in reps], args.cv_threshold)
    return {"name": name, "title": suite.title, "runs": suite.doc, "status": status, "notes": "; ".join(notes),
            "wall_s": wall, "repeats_done": len(reps), "failed_rows": failed, "rows": rows,
            "summary": H.group_summaries(rows), "families": H.family_summaries(rows), "stability": stab}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for n in _order():
            print(f"{n:18s} {REGISTRY[n].title}: {REGISTRY[n].doc}")
        return 0
    device = resolve_device(args.device)
    t_start = time.perf_counter()
    deadline = t_start + args.max_seconds if args.max_seconds else float("inf")
    cmd = "python -m lightning_core.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    flags = (f"mode={'quick' if args.quick else 'full'} suites={','.join(args.names)} device={device} "
             f"repeats={args.repeats} seed={args.seed} cv_threshold={args.cv_threshold} tf32=off")
    env = report.full_environment(flags, probe_torch=True)
    env["lc_device"] = device
    progress = Progress(len(args.names))
    blocks = []
    for i, name in enumerate(args.names, 1):
        block = run_suite(name, i, args, device, deadline, progress)
        if block["rows"]:
            report.write_suite(args.out, name, env, {k: v for k, v in block.items() if k != "rows"}, block["rows"])
            try:
                charts.write_chart(args.out / "charts" / f"{name}.png",
                                   f"{name}: speedup per case ({device})", block["rows"])
                block["chart"] = f"charts/{name}.png"
            except Exception as e:  # noqa: BLE001  (a chart must not lose the numbers)
                block["notes"] = "; ".join(filter(None, [block["notes"], f"chart failed: {e}"]))
        blocks.append(block)
        progress.message(f"[bench] {name}: {block['status']} - {len(block['rows'])} rows, "
                         f"{block['wall_s']:.1f}s")
    progress.close()
    run = {"mode": "quick" if args.quick else "full", "command": cmd.strip(), "device": device,
           "repeats": args.repeats, "seed": args.seed, "cv_threshold": args.cv_threshold,
           "suites": args.names, "wall_s": time.perf_counter() - t_start,
           "suite_wall_s": {b["name"]: b["wall_s"] for b in blocks}}
    path = report.write_report(args.out, env, run, blocks)
    print(f"lightning_core.bench: {len(blocks)} suite(s), {sum(len(b['rows']) for b in blocks)} rows, "
          f"{run['wall_s']:.1f}s -> {path}")
    for b in blocks:
        print(f"  {b['name']:18s} {b['status']:40.40s} rows {len(b['rows']):3d}  {b['wall_s']:7.1f}s")
    bad = [b for b in blocks if b["status"].startswith(("error", "timeout")) or b["failed_rows"]]
    return 1 if bad else 0
