"""Decode steps a graph replay (CausalLM.generate's graph_steps) A/B on CUDA: GPT-2 124M and LLaMA 1.1B bf16
(make_random folders given as arguments), batch 1 and 32, 32-token prompts, 64 new tokens; the settings
alternate call by call (3 samples each after a warm-up); prints the median decode ms per step (timings:
decode_ms / decode_steps) and tokens/s. Usage: python scripts/device/graph_steps.py DIR [DIR ...]"""
import statistics
import sys

import numpy as np

from lightning_core.models import load


def alternate(runs, b, reps=4, plen=32):
    """runs: {label: fn(prompts, timings) -> tokens}, called in turn (a warm-up round, then reps - 1 samples each)
    on b fixed plen-token prompts. Returns ({label: median decode ms a step}, whether all gave the same tokens)."""
    prompts = np.random.default_rng(3).integers(1, 1000, (b, plen)).tolist()
    res = {k: [] for k in runs}
    outs = {}
    for rep in range(reps):
        for k, run in runs.items():
            tm = {}
            outs[k] = run(prompts, tm)
            if rep:
                res[k].append(tm["decode_ms"] / tm["decode_steps"])
    first = next(iter(outs.values()))
    return {k: statistics.median(v) for k, v in res.items()}, all(o == first for o in outs.values())


def report(d, b, med, same):
    line = "; ".join(f"{k}: {m:.3f} ms/step ({b / m * 1e3:.0f} tok/s)" for k, m in med.items())
    print(f"{d} B={b}: {line}; tokens equal across settings: {same}", flush=True)


def main():
    for d in sys.argv[1:]:
        model = load(d, device="cuda", dtype="bfloat16")
        runs = {f"graph_steps {g}": (lambda p, tm, g=g: model.generate(p, 64, timings=tm, graph_steps=g))
                for g in (1, 8, 16)}
        for b in (1, 32):
            report(d, b, *alternate(runs, b))
        del model


if __name__ == "__main__":
    main()
