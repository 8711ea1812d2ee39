"""python -m lightning_core.bench: every suite, repeated, summarised, charted (``make bench``; ``make demo``
is ``--quick`` with the summary table).

  python -m lightning_core.bench [--quick] [--suite NAME[,NAME]] ... [--device auto|cpu|cuda]
                                 [--dtype float32|float64] [--out benchmark_results] [--repeats N] [--seed S]
                                 [--max-seconds T] [--cv-threshold F] [--list]
Each suite runs in one child process (child.py) that runs all its repeats and streams rows of the one schema
(harness.FIELDS). Stability gate: each suite runs N times (default 3, --quick 2) with the same seed; a row's
cv is the coefficient of variation of our time across the repeats and rows above --cv-threshold (default
0.10) are marked "unstable" in the tables and listed in the report. The summary table (per suite, mode and
peer) is printed at the end. Exit status: 0, or 1 when a suite errored or timed out or a row failed its
result check; 2 on a usage error.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import charts, harness as H, report
from .child import parse
from .progress import Progress
from .suites import DTYPES, REGISTRY, order


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m lightning_core.bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short run: smaller shapes, fewer samples, 2 repeats")
    p.add_argument("--suite", "--suites", dest="suite", action="append", default=[],
                   help="suite(s) to run, comma list or repeated (default: every default suite); --list shows them")
    p.add_argument("--out", type=Path, default=Path("benchmark_results"), help="output directory")
    p.add_argument("--repeats", type=int, default=None, help="runs per suite for the stability gate (3; quick 2)")
    p.add_argument("--seed", type=int, default=20261126, help="the fixed seed of every repeat")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="our side's backend; auto = CUDA when lightning_core has a usable GPU, else CPU")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="element type of the inputs (suites that do not take it report 'unavailable')")
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
    names = [s.strip() for arg in args.suite for s in arg.split(",") if s.strip()]
    unknown = [s for s in names if s not in REGISTRY]
    if unknown:
        p.error(f"--suite: unknown suite(s) {', '.join(unknown)}; known: {', '.join(order(True))}")
    args.names = list(dict.fromkeys(names)) or order()
    return args


def resolve_device(choice: str) -> str:
    try:
        import lightning_core as lc
        cuda = bool(lc.cuda_available())
    except Exception:  # noqa: BLE001
        cuda = False
    if choice == "cuda" and not cuda:
        raise SystemExit("lightning_core.bench: --device cuda but lc.cuda_available() is False")
    return "cuda" if choice == "cuda" or (choice == "auto" and cuda) else "cpu"


def _child_env() -> dict:
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])  # the directory holding lightning_core/
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_child(name: str, args, device: str, deadline: float, progress: Progress, log_path: Path) -> dict:
    """Runs `python -m lightning_core.bench.child name` to its end (or to the time budget); returns
    {"reps": rows per repeat, "notes", "status": "ok" | "unavailable: ..." | "error: ..." | "timeout: ..."}."""
    remaining = deadline - time.perf_counter()
    if remaining <= 1:
        return {"reps": [], "notes": [], "status": "skipped: time budget (--max-seconds) used up"}
    cmd = [sys.executable, "-u", "-m", "lightning_core.bench.child", name, "--repeats", str(args.repeats),
           "--device", device, "--dtype", args.dtype, "--seed", str(args.seed)] + (["--quick"] if args.quick else []) + \
        ([f"--max-seconds={0.9 * remaining:.0f}"] if math.isfinite(remaining) else [])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    reps: list[list[dict]] = []
    notes: list[str] = []
    status = "ok"
    killed: list[bool] = []
    with log_path.open("w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                env=_child_env())

        def kill():
            killed.append(True)
            proc.kill()
        timer = threading.Timer(remaining, kill) if math.isfinite(remaining) else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            for line in proc.stdout:
                msg = parse(line)
                if msg is None:
                    log.write(line)
                elif "row" in msg:
                    while len(reps) < msg.get("repeat", 1):
                        reps.append([])
                    reps[msg.get("repeat", 1) - 1].append(msg["row"])
                elif "repeat" in msg:
                    while len(reps) < msg["repeat"]:
                        reps.append([])
                    progress.set_repeat(msg["repeat"], msg.get("of", args.repeats))
                elif "case" in msg:
                    progress.set_case(str(msg["case"]))
                elif "note" in msg and msg["note"] not in notes:
                    notes.append(msg["note"])
                elif "unavailable" in msg:
                    status = f"unavailable: {msg['unavailable']}"
                elif "error" in msg:
                    status = f"error: {msg['error']}"
                    progress.message(f"{name}: {msg['error']} (traceback in {log_path})")
            rc = proc.wait()
        finally:
            if timer:
                timer.cancel()
    if killed:
        status = f"timeout: stopped at the time budget in repeat {len(reps)} of {args.repeats}"
        reps = reps[:-1]  # the repeat it was in is incomplete
    elif rc != 0 and status == "ok":
        status = f"error: the child exited {rc} (log {log_path})"
    if status.startswith("unavailable"):
        reps = []
    return {"reps": reps, "notes": notes, "status": status}


def run_suite(name: str, index: int, args, device: str, deadline: float, progress: Progress) -> dict:
    """Runs one suite args.repeats times (one child process); returns its block (rows aggregated over the
    repeats)."""
    suite = REGISTRY[name]
    t0 = time.perf_counter()
    progress.start_suite(index, name, 1, args.repeats)
    got = run_child(name, args, device, deadline, progress, args.out / "raw" / f"{name}.log")
    reps, status = got["reps"], got["status"]
    wall = time.perf_counter() - t0
    rows = H.aggregate_repeats(reps, args.cv_threshold)
    failed = sum(1 for r in rows if r["status"] in ("FAILED", "error"))
    if status == "ok" and failed:
        status = f"ok, {failed} row(s) failed"
    elif status == "ok" and not rows:
        status = "no rows: no peer could be measured here (see notes)"
    stab = H.stability(rows, [H.repeat_total_ms(r) for r in reps], args.cv_threshold)
    return {"name": name, "title": suite.title, "runs": suite.doc, "status": status, "notes": "; ".join(got["notes"]),
            "wall_s": wall, "repeats_done": len(reps), "failed_rows": failed, "rows": rows,
            "summary": H.group_summaries(rows), "families": H.family_summaries(rows), "stability": stab}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for n in order(True):
            s = REGISTRY[n]
            print(f"{n:18s} {s.title}: {s.doc}" + ("" if s.default else " [not in the default run]"))
        return 0
    device = resolve_device(args.device)
    t_start = time.perf_counter()
    deadline = t_start + args.max_seconds if args.max_seconds else float("inf")
    cmd = "python -m lightning_core.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    flags = (f"mode={'quick' if args.quick else 'full'} suites={','.join(args.names)} device={device} dtype={args.dtype} "
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
    run = {"mode": "quick" if args.quick else "full", "command": cmd.strip(), "device": device, "dtype": args.dtype,
           "repeats": args.repeats, "seed": args.seed, "cv_threshold": args.cv_threshold,
           "suites": args.names, "wall_s": time.perf_counter() - t_start,
           "suite_wall_s": {b["name"]: b["wall_s"] for b in blocks}}
    path = report.write_report(args.out, env, run, blocks)
    print(report.summary_text(blocks))
    print(f"lightning_core.bench: {len(blocks)} suite(s), {sum(len(b['rows']) for b in blocks)} rows, "
          f"{run['wall_s']:.1f}s -> {path}")
    for b in blocks:
        print(f"  {b['name']:18s} {b['status']:40.40s} rows {len(b['rows']):3d}  {b['wall_s']:7.1f}s")
    bad = [b for b in blocks if b["status"].startswith(("error", "timeout")) or b["failed_rows"]]
    return 1 if bad else 0
