"""GPT-2's lm_head on CUDA in out_in models: the tied embedding's own [vocab, d] array (the [n, k] GEMV, the
default) against a [d, vocab] copy (LC_MODELS_HEAD_LAYOUT=in_out: the split-k [k, n] GEMV, 29.5 against 42.7 us
for 768 x 50264 in test_gemv_cuda's table, session 20). Both models loaded once, decode alternating call by call
(graph_steps.alternate); HEAD_AB_BATCHES (default "1,32"). Usage: python scripts/device/head_ab.py DIR [DIR ...]"""
import os
import sys

from graph_steps import alternate, report  # scripts/device/graph_steps.py (this script's directory)
from lightning_core.models import load


def main():
    for d in sys.argv[1:]:
        models = {"head [n, k] (default)": load(d, device="cuda", dtype="bfloat16")}
        os.environ["LC_MODELS_HEAD_LAYOUT"] = "in_out"
        models["head [k, n] copy"] = load(d, device="cuda", dtype="bfloat16")
        del os.environ["LC_MODELS_HEAD_LAYOUT"]
        runs = {lab: (lambda p, tm, m=m: m.generate(p, 64, timings=tm)) for lab, m in models.items()}
        for b in map(int, os.environ.get("HEAD_AB_BATCHES", "1,32").split(",")):
            report(d, b, *alternate(runs, b))


if __name__ == "__main__":
    main()
