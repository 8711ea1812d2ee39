"""Decode ms a step of this tree's package (PYTHONPATH decides which build), GPT-2 / LLaMA folders as arguments:
32-token prompts, 64 new tokens, bf16, batch sizes from TREE_MS_BATCHES (default "1,32"); a warm-up, then the
median of 3 (one line a folder and batch). For A/B between builds run in alternating processes (s27d.sh)."""
import os
import statistics
import sys

import numpy as np

from lightning_core.models import load

for d in sys.argv[1:]:
    model = load(d, device="cuda", dtype="bfloat16")
    for b in map(int, os.environ.get("TREE_MS_BATCHES", "1,32").split(",")):
        prompts = np.random.default_rng(3).integers(1, 1000, (b, 32)).tolist()
        ms = []
        for rep in range(4):
            tm = {}
            model.generate(prompts, 64, timings=tm)
            if rep:
                ms.append(tm["decode_ms"] / tm["decode_steps"])
        print(f"{os.environ.get('TREE_MS_LABEL', '?')} {d} B={b}: {statistics.median(ms):.4f} ms/step", flush=True)
    del model
