"""Decode with each weight layout (CausalLM weight_layout "in_out" / "out_in") on CUDA: GPT-2 124M / LLaMA 1.1B
bf16 (make_random folders given as arguments), batch 1 and 32, 32-token prompts, 64 new tokens; the layouts
alternate call by call (3 samples each after a warm-up); prints the median decode ms per step and tokens/s, and
whether the tokens agree. Run it twice, with and without LC_GEMV_NK_GRID=all, to compare the [n, k] GEMV's
grids. Usage: python scripts/device/layout_ab.py DIR [DIR ...]"""
import statistics
import sys

import numpy as np

from lightning_core.models import load


def main():
    layouts = ("in_out", "out_in")
    for d in sys.argv[1:]:
        models = {lay: load(d, device="cuda", dtype="bfloat16", weight_layout=lay) for lay in layouts}
        for b in (1, 32):
            prompts = np.random.default_rng(3).integers(1, 1000, (b, 32)).tolist()
            res = {lay: [] for lay in layouts}
            outs = {}
            for rep in range(4):
                for lay in layouts:
                    tm = {}
                    outs[lay] = models[lay].generate(prompts, 64, timings=tm)
                    if rep:
                        res[lay].append(tm["decode_ms"] / tm["decode_steps"])
            med = {lay: statistics.median(v) for lay, v in res.items()}
            line = "; ".join(f"{lay}: {m:.3f} ms/step ({b / m * 1e3:.0f} tok/s)" for lay, m in med.items())
            print(f"{d} B={b}: {line}; tokens equal: {outs['in_out'] == outs['out_in']}", flush=True)


if __name__ == "__main__":
    main()
