"""python -m lightning_core.bench.child N SCRIPT [ARGS...]: one benchmark script run N times in one process.

The suite runner (suites.run_script) starts this instead of the script itself, so the stability gate's
repeats pay the interpreter, torch and CUDA start-up (about 4-5 s on the GPU machine) once per suite and
script, not once per repeat. Each repeat re-executes SCRIPT from the top as __main__ (runpy): a fresh module,
fresh inputs from the script's fixed seed, its process-wide settings set again; "{k}" in ARGS becomes the
repeat number (the scripts' output directories: OUT/raw/<suite>/r{k}). Before each repeat a line
"[repeat k/N]" is printed (the progress bar reads it). Exit status: the largest of the repeats' exit codes.
Tested by tests/python/test_bench_harness.py.
"""
from __future__ import annotations

import runpy
import sys
import traceback
from pathlib import Path


def _code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    return e.code if isinstance(e.code, int) else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or not argv[0].isdigit() or int(argv[0]) < 1:
        print("usage: python -m lightning_core.bench.child N SCRIPT [ARGS...]  (N >= 1)", file=sys.stderr)
        return 2
    n, script, args = int(argv[0]), argv[1], argv[2:]
    sys.path.insert(0, str(Path(script).resolve().parent))
    worst = 0
    saved_argv = sys.argv
    try:
        for k in range(1, n + 1):
            print(f"[repeat {k}/{n}]", flush=True)
            sys.argv = [script] + [a.replace("{k}", str(k)) for a in args]
            try:
                runpy.run_path(script, run_name="__main__")
                rc = 0
            except SystemExit as e:
                rc = _code(e)
            except Exception:  # noqa: BLE001  (a crashed repeat: report it, run the next one)
                traceback.print_exc()
                rc = 1
            worst = max(worst, rc)
    finally:
        sys.argv = saved_argv
    return worst


if __name__ == "__main__":
    sys.exit(main())
