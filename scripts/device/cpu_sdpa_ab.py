"""The host CPU's attention at issue 15's CPU shape (B=1, H=12, S=1024, D=64), float32 and bfloat16, non-causal and
causal: medians of 9 in ms with the path taken, and torch CPU SDPA beside it (same thread count). Run it once as is
and once under LC_CPU_DISABLE=avx512bf16 (the mask is read once a process): on the card's Intel host session 31 saw
bfloat16 (VDPBF16PS tiles) slower than float32, and the masked run says whether converting the tiles to float32
would do better there. Session 32 (no device): written for scripts/device/s32.sh.
Usage: python3 scripts/device/cpu_sdpa_ab.py [label]"""
import os
import sys

import numpy as np

import lightning_core as lc
from lightning_core.bench.timer import time_call


def med(f):
    """Median ms of f() (the package's timer: a settle first, so the other side's worker threads have stopped)."""
    return time_call(f, warmup=1, samples=9, max_s=20.0)["median_ms"]


def main():
    label = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LC_CPU_DISABLE", "default") or "default"
    rng = np.random.default_rng(0)
    shape = (1, 12, 1024, 64)
    x32 = [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]
    try:
        import torch
        torch.set_num_threads(lc.num_threads())
    except ImportError:
        torch = None
    for name in ("float32", "bfloat16"):
        q, k, v = (lc.cast(x, name) for x in x32)
        for causal in (False, True):
            ms = med(lambda: lc.scaled_dot_product_attention(q, k, v, causal=causal, device="cpu"))
            path = lc.last_dispatch()["path"]
            line = f"{label:>20s} {name:8s} causal={int(causal)} ours {ms:8.3f} ms [{path}]"
            if torch is not None:
                tdt = getattr(torch, name)
                tq, tk, tv = (torch.from_numpy(x).to(tdt) for x in x32)
                tms = med(lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal))
                line += f"  torch {tms:8.3f} ms  ratio {tms / ms:5.2f}x"
            print(line, flush=True)


if __name__ == "__main__":
    main()
