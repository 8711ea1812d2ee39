"""How long one lc.prefetch kernel takes in a captured graph (us a call): N calls on distinct buffers of MB
MiB each (> L2 in total), replayed; and an empty-range baseline (a 256-byte tensor). If the time grows with the
bytes at DRAM speed, the kernel ends only when its requests are filled (so the next kernel waits for them).
Usage: python scripts/device/pf_probe.py (LC_PREFETCH_MODE applies)."""
import os
import time

import numpy as np

import lightning_core as lc


def per_call(ts, n=16, reps=20):
    g = lc.capture_graph(lambda: [lc.prefetch(t) for t in ts[:n]])
    g.replay(); lc.synchronize("cuda")
    t0 = time.perf_counter()
    for _ in range(reps):
        g.replay()
    lc.synchronize("cuda")
    return (time.perf_counter() - t0) / (reps * n) * 1e6


for mb in (0, 1, 4, 10, 24):
    nel = max(64, int(mb * 2 ** 20 / 2))
    ts = [lc.Tensor((nel,), device="cuda", dtype="bfloat16") for _ in range(16)]
    print(f"[{os.environ.get('LC_PREFETCH_MODE', 'line')}] prefetch {mb} MiB: {per_call(ts):.2f} us a call "
          f"({mb * 2 ** 20 / max(per_call(ts), 1e-9) / 1e3:.0f} GB/s)", flush=True)
