"""python -m lightning_core.bench.child SUITE [--repeats N] [--quick] [--device cpu|cuda] [--dtype T] [--seed S]
[--max-seconds T]:
runs every repeat of one suite in this process and streams its rows to the parent (cli.run_suite).

One child process per suite: the suites set process-wide state (sync policy, matmul precision, torch threads)
and import torch and CUDA (4-5 s on the GPU machine), so the child isolates them, pays the start-up once for
all the repeats, and can be stopped at the time budget. Each repeat calls the suite's run(ctx) afresh (fresh
inputs from the fixed seed). Protocol, one JSON object per stdout line after the prefix "@@lc ":
  {"repeat": k, "of": N}      repeat k starts           {"case": text}    the case being measured
  {"row": {...}, "repeat": k} a row of the schema       {"note": text}    a suite note
  {"unavailable": text}       the suite cannot run here {"error": text}   the repeat raised (traceback on stderr)
Rows with status "n/a" (a side not measured on this machine) are not sent; a note counts them. Other stdout
lines are the suite's own output (the parent keeps them in the log). Exit status: 0, 1 after an error,
2 on a usage error. Tested by tests/python/test_bench_harness.py and tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback

PREFIX = "@@lc "


def emit(obj: dict, stream=None) -> None:
    stream = stream or sys.stdout
    stream.write(PREFIX + json.dumps(obj) + "\n")
    stream.flush()


def parse(line: str) -> dict | None:
    """The message of a protocol line; None for any other line."""
    if not line.startswith(PREFIX):
        return None
    try:
        msg = json.loads(line[len(PREFIX):])
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def main(argv: list[str] | None = None) -> int:
    from .suites import DTYPES, REGISTRY, Ctx, SuiteUnavailable
    p = argparse.ArgumentParser(prog="python -m lightning_core.bench.child")
    p.add_argument("suite")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--seed", type=int, default=20261126)
    p.add_argument("--max-seconds", type=float, default=None,
                   help="the suite's time budget: columns starting after it are n/a (the parent also stops the child)")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    if args.suite not in REGISTRY or args.repeats < 1:
        print(f"child: unknown suite {args.suite!r} or --repeats < 1; suites: {', '.join(REGISTRY)}", file=sys.stderr)
        return 2
    import math
    import time
    suite, notes = REGISTRY[args.suite], []
    deadline = time.perf_counter() + args.max_seconds if args.max_seconds else math.inf
    for k in range(1, args.repeats + 1):
        emit({"repeat": k, "of": args.repeats})
        ctx = Ctx(quick=args.quick, device=args.device, dtype=args.dtype, seed=args.seed, repeat=k,
                  repeats=args.repeats, deadline=deadline, on_case=lambda text: emit({"case": text[:100]}), notes=notes)
        try:
            n_na = 0
            for row in suite.run(ctx) or []:
                if row.get("status") == "n/a":
                    n_na += 1
                    continue
                emit({"row": row, "repeat": k})
            if n_na:
                ctx.note(f"{n_na} row(s) n/a in repeat {k}: a side not measured here")
        except SuiteUnavailable as e:
            emit({"unavailable": str(e)})
            return 0
        except Exception as e:  # noqa: BLE001  (reported to the parent; the suite's other repeats are skipped)
            traceback.print_exc()
            emit({"error": f"{type(e).__name__}: {e}"})
            return 1
        finally:
            for n in notes:
                emit({"note": n})
    return 0


if __name__ == "__main__":
    sys.exit(main())
