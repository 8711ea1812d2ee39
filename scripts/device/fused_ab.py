"""The fused decode step (CausalLM.fused_decode, one persistent kernel a batch-1 step) against the op-by-op
graph-replayed step (LC_MODELS_FUSED_DECODE=0, the architecture's default layout without it) on CUDA: each
make_random folder given, bf16, batch 1, 32-token prompts, 64 new tokens, the two alternating call by call
(graph_steps.alternate). Usage: python scripts/device/fused_ab.py DIR..."""
import os
import sys

from graph_steps import alternate, report  # scripts/device/graph_steps.py (this script's directory)
from lightning_core.models import load


def main():
    for d in sys.argv[1:]:
        os.environ["LC_MODELS_FUSED_DECODE"] = "1"
        fused = load(d, device="cuda", dtype="bfloat16")
        os.environ["LC_MODELS_FUSED_DECODE"] = "0"
        plain = load(d, device="cuda", dtype="bfloat16")
        print(f"{d}: fused_decode={fused.fused_decode} ({fused.fused_reason}), layouts {fused.weight_layout} / "
              f"{plain.weight_layout}", flush=True)
        runs = {"fused": (lambda p, tm: fused.generate(p, 64, timings=tm)),
                "op-by-op": (lambda p, tm: plain.generate(p, 64, timings=tm))}
        report(d, 1, *alternate(runs, 1, reps=6))
        if os.environ.get("FUSED_AB_B32"):
            report(d, 32, *alternate(runs, 32))
        del fused, plain, runs


if __name__ == "__main__":
    main()
