"""Decode ms a step of this tree's package (PYTHONPATH decides which build), GPT-2 / LLaMA folders as arguments:
32-token prompts, 64 new tokens, bf16, batch sizes from TREE_MS_BATCHES (default "1,32"); graph_steps.alternate's
warm-up and median of 3 (one line a folder and batch). For A/B between builds run in alternating processes
(ab_tree.sh builds the second tree)."""
import os
import sys

from graph_steps import alternate  # scripts/device/graph_steps.py (this script's directory)
from lightning_core.models import load

for d in sys.argv[1:]:
    model = load(d, device="cuda", dtype="bfloat16")
    label = os.environ.get("TREE_MS_LABEL", "?")
    for b in map(int, os.environ.get("TREE_MS_BATCHES", "1,32").split(",")):
        med, _ = alternate({label: lambda p, tm: model.generate(p, 64, timings=tm)}, b)
        print(f"{label} {d} B={b}: {med[label]:.4f} ms/step", flush=True)
    del model
