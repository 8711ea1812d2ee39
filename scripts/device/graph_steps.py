"""Decode steps a graph replay (CausalLM.generate's graph_steps) A/B on CUDA: GPT-2 124M and LLaMA 1.1B bf16
(make_random folders given as arguments), batch 1 and 32, 32-token prompts, 64 new tokens; the settings
alternate call by call (3 samples each after a warm-up); prints the median decode ms per step (timings:
decode_ms / decode_steps) and tokens/s. Usage: python scripts/device/graph_steps.py DIR [DIR ...]"""
import statistics
import sys

import numpy as np

from lightning_core.models import load


def main():
    settings = (1, 8, 16)
    for d in sys.argv[1:]:
        model = load(d, device="cuda", dtype="bfloat16")
        for b in (1, 32):
            prompts = np.random.default_rng(3).integers(1, 1000, (b, 32)).tolist()
            res = {g: [] for g in settings}
            outs = {}
            for rep in range(4):
                for g in settings:
                    tm = {}
                    outs[g] = model.generate(prompts, 64, timings=tm, graph_steps=g)
                    if rep:
                        res[g].append(tm["decode_ms"] / tm["decode_steps"])
            same = all(outs[g] == outs[settings[0]] for g in settings)
            med = {g: statistics.median(v) for g, v in res.items()}
            line = "; ".join(f"graph_steps {g}: {m:.3f} ms/step ({b / m * 1e3:.0f} tok/s)" for g, m in med.items())
            print(f"{d} B={b}: {line}; tokens equal across settings: {same}", flush=True)
        del model


if __name__ == "__main__":
    main()
