"""The batch-1 ring GEMV (gemv_ring_cuda.cu, LC_GEMV_RING) against the kernels before it, decode on CUDA: GPT-2
124M / LLaMA 1.1B bf16 (make_random folders given as arguments), batch 1, 32-token prompts, 64 new tokens, settings
alternating call by call (graph_steps.alternate: 3 samples each after a warm-up); prints the median decode ms a
step and whether the tokens agree. Settings: out_in with the ring (LC_GEMV_RING=1), out_in without it
(LC_GEMV_RING=0: the [n, k] tile kernel), in_out (the split-k [k, n] kernel; the ring does not apply). Each
setting has its own model, so its captured graphs hold its own kernels; the env is set before each of its calls.
RING_AB_BATCHES (default "1"): batch sizes. Usage: python scripts/device/ring_ab.py DIR [DIR ...]"""
import os
import sys

from graph_steps import alternate, report  # scripts/device/graph_steps.py (this script's directory)
from lightning_core.models import load


def setting(layout, ring):
    os.environ["LC_GEMV_RING"] = "1" if ring else "0"
    return load(DIR, device="cuda", dtype="bfloat16", weight_layout=layout)


def main():
    global DIR
    for d in sys.argv[1:]:
        DIR = d
        settings = {"out_in ring": ("out_in", True), "out_in tiles": ("out_in", False), "in_out": ("in_out", False)}
        models = {k: setting(*v) for k, v in settings.items()}

        def run(k):
            def f(p, tm):
                os.environ["LC_GEMV_RING"] = "1" if settings[k][1] else "0"
                return models[k].generate(p, 64, timings=tm)
            return f
        for b in map(int, os.environ.get("RING_AB_BATCHES", "1").split(",")):
            report(d, b, *alternate({k: run(k) for k in settings}, b))
        del models


if __name__ == "__main__":
    main()
