"""The batch-1 ring GEMV (gemv_ring_cuda.cu, LC_GEMV_RING) against the kernels before it, decode on CUDA: GPT-2
124M / LLaMA 1.1B bf16 (make_random folders given as arguments), 32-token prompts, 64 new tokens, settings
alternating call by call (graph_steps.alternate: 3 samples each after a warm-up); prints the median decode ms a
step and whether the tokens agree. Each setting has its own model, so its captured graphs hold its own kernels;
its environment is set before each of its calls (the ring's knobs are read at each launch).
RING_AB_SETTINGS: "label=layout[,VAR=value...];..." (default: out_in with the ring, LC_GEMV_RING=1; out_in
without it, LC_GEMV_RING=0, the [n, k] tile kernel; in_out, the split-k [k, n] kernel, where the ring does not
apply). A variable a setting does not name is unset for its calls. RING_AB_BATCHES (default "1"): batch sizes.
RING_AB_PROMPT (default 32): the prompts' length (the cache holds it + 64 at the end).
Usage: python scripts/device/ring_ab.py DIR [DIR ...]"""
import os
import sys

from graph_steps import alternate, report  # scripts/device/graph_steps.py (this script's directory)
from lightning_core.models import load

DEFAULT = "out_in ring=out_in,LC_GEMV_RING=1;out_in tiles=out_in,LC_GEMV_RING=0;in_out=in_out,LC_GEMV_RING=0"


def parse(text):
    out = {}
    for item in filter(None, (t.strip() for t in text.split(";"))):
        label, rest = item.split("=", 1)
        layout, *env = rest.split(",")
        out[label.strip()] = (layout.strip(), dict(e.split("=", 1) for e in env))
    return out


def main():
    settings = parse(os.environ.get("RING_AB_SETTINGS", DEFAULT))
    names = {n for _, env in settings.values() for n in env}

    def use(env):
        for n in names:
            os.environ.pop(n, None)
        os.environ.update(env)

    for d in sys.argv[1:]:
        models = {}
        for label, (layout, env) in settings.items():
            use(env)
            models[label] = load(d, device="cuda", dtype="bfloat16", weight_layout=layout)

        def run(label):
            def f(p, tm):
                use(settings[label][1])
                return models[label].generate(p, 64, timings=tm)
            return f
        for b in map(int, os.environ.get("RING_AB_BATCHES", "1").split(",")):
            plen = int(os.environ.get("RING_AB_PROMPT", "32"))
            report(d + (f" prompt {plen}" if plen != 32 else ""), b, *alternate({k: run(k) for k in settings}, b, plen=plen))
        del models


if __name__ == "__main__":
    main()
