"""Command line of the Lightning Core fuzzer (``make fuzz``; docs/design.md, "Fuzzing").

  python tests/python/fuzz/run.py [--seconds 120] [--seed S] [--cases N] [--timeout 10]
  python tests/python/fuzz/run.py --seed S --case I [--mask M]      # replay one case

Without --seed a random seed is drawn and printed. Exits 1 when any finding is not in allow.py
(after confirming each alone and shrinking it), 0 otherwise. FUZZ_SECONDS sets the default duration.
"""
import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import driver  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", "120")))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--cases", type=int, default=None, help="run this many cases instead of --seconds")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--case", type=int, default=None, help="replay one case")
    ap.add_argument("--mask", type=int, default=None, help="with --case: keep only these mutations/steps")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per case before it counts as a hang")
    ap.add_argument("--batch", type=int, default=400)
    ap.add_argument("--no-shrink", action="store_true")
    a = ap.parse_args(argv)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(2**32)
    if a.case is not None:
        recs = driver.run_cases(seed, a.case, 1, a.mask, a.timeout)
        print(json.dumps(recs[0], indent=1, default=str))
        return 1 if recs[0].get("kind") else 0
    print(f"lightning_core fuzz: seed {seed} (replay with --seed {seed})", flush=True)
    t0 = time.monotonic()
    if a.cases is not None:
        recs = driver.run_cases(seed, a.start, a.cases, None, a.timeout, a.batch)
    else:
        recs = driver.run_cases(seed, a.start, 10**12, None, a.timeout, a.batch, deadline=t0 + a.seconds)
    rep = driver.Report(seed, recs)
    if not a.no_shrink:
        rep.confirm(a.timeout)
    print(rep.format())
    print(f"fuzz: {len(recs)} cases in {time.monotonic() - t0:.1f} s", flush=True)
    return 1 if rep.new else 0


if __name__ == "__main__":
    sys.exit(main())
