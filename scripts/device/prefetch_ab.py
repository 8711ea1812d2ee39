"""lc.prefetch in the decode step (CausalLM.prefetch_mb: the weights used after a layer's attention requested
into L2 before it) A/B on CUDA: one model per budget (PF_MBS, MiB, default "0,8,16,64"; 0 = off) of each
make_random folder given, bf16, default weight layout (PF_LAYOUT overrides), batches PF_BATCHES (default
"1,32"), 32-token prompts, 64 new tokens, settings alternating call by call (graph_steps.alternate). Run once
per LC_PREFETCH_MODE (line, last, bulk: read once a process). Usage: python scripts/device/prefetch_ab.py DIR..."""
import os
import sys

from graph_steps import alternate, report  # scripts/device/graph_steps.py (this script's directory)
from lightning_core.models import load


def main():
    mbs = [float(x) for x in os.environ.get("PF_MBS", "0,8,16,64").split(",")]
    lay = os.environ.get("PF_LAYOUT") or None
    for d in sys.argv[1:]:
        models = {}
        for mb in mbs:
            m = load(d, device="cuda", dtype="bfloat16", weight_layout=lay)
            m.prefetch_mb = mb
            models[f"pf {mb:g} MiB ({len(m._prefetch_list(m.layers[0]))} tensors)"] = m
        runs = {k: (lambda p, tm, m=m: m.generate(p, 64, timings=tm)) for k, m in models.items()}
        for b in map(int, os.environ.get("PF_BATCHES", "1,32").split(",")):
            report(f"{d} [{os.environ.get('LC_PREFETCH_MODE', 'line')}, {lay or 'default layout'}]", b,
                   *alternate(runs, b))
        del models, runs


if __name__ == "__main__":
    main()
