"""The fused decode step's time under this process's developer knobs (LC_DP_FLAGS, LC_DP_L2AHEAD, LC_DP_INFLIGHT: read once a
process, so one process a setting): each make_random folder given, bf16, B=1, 32-token prompt, 64 new tokens,
median of 4 after a warm-up. Usage: LC_DP_L2AHEAD=8 python scripts/device/fused_knob.py DIR..."""
import os
import statistics
import sys

import numpy as np

from lightning_core.models import load


def main():
    os.environ["LC_MODELS_FUSED_DECODE"] = "1"
    knobs = " ".join(f"{k}={os.environ[k]}" for k in ("LC_DP_FLAGS", "LC_DP_L2AHEAD", "LC_DP_INFLIGHT")
                     if k in os.environ) or "defaults"
    for d in sys.argv[1:]:
        m = load(d, device="cuda", dtype="bfloat16")
        prompt = np.random.default_rng(3).integers(1, 1000, 32).tolist()
        res = []
        for rep in range(5):
            tm = {}
            m.generate(prompt, 64, timings=tm)
            if rep:
                res.append(tm["decode_ms"] / tm["decode_steps"])
        med = statistics.median(res)
        print(f"{d} [{knobs}] fused={m.fused_decode}: {med:.3f} ms/step ({1e3 / med:.0f} tok/s)", flush=True)
        del m


if __name__ == "__main__":
    main()
