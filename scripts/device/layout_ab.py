"""Decode with each weight layout (CausalLM weight_layout "in_out" / "out_in") on CUDA: GPT-2 124M / LLaMA 1.1B
bf16 (make_random folders given as arguments), batch 1 and 32, 32-token prompts, 64 new tokens; the layouts
alternate call by call (3 samples each after a warm-up); prints the median decode ms per step and tokens/s, and
whether the tokens agree. Run it twice, with and without LC_GEMV_NK_GRID=all, to compare the [n, k] GEMV's
grids. LAYOUT_AB_BATCHES (default "1,32"): the batch sizes. Usage: python scripts/device/layout_ab.py DIR [DIR ...]"""
import os
import sys

from graph_steps import alternate, report  # scripts/device/graph_steps.py (this script's directory)
from lightning_core.models import load


def main():
    for d in sys.argv[1:]:
        models = {lay: load(d, device="cuda", dtype="bfloat16", weight_layout=lay) for lay in ("in_out", "out_in")}
        runs = {lay: (lambda p, tm, m=m: m.generate(p, 64, timings=tm)) for lay, m in models.items()}
        for b in map(int, os.environ.get("LAYOUT_AB_BATCHES", "1,32").split(",")):
            report(d, b, *alternate(runs, b))


if __name__ == "__main__":
    main()
