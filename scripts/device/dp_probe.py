"""Where a fused decode step's time goes (LC_DP_PROBE=1: the kernel writes globaltimer stamps of blocks 0 and
grid-1 into the logits buffer instead of logits): per instruction [start (previous barrier passed), input
staged, weights consumed, epilogue done]. Prints, per instruction kind, the mean us of staging, consuming,
epilogue and the barrier after it (next start - this end), and the step's total. Usage (CUDA):
LC_DP_PROBE=1 python scripts/device/dp_probe.py DIR..."""
import os
import sys

import numpy as np

assert os.environ.get("LC_DP_PROBE") == "1", "run with LC_DP_PROBE=1"
os.environ["LC_MODELS_FUSED_DECODE"] = "1"  # the engine loads the weights [out, in] for it
import lightning_core as lc  # noqa: E402
from lightning_core.models import fused, load  # noqa: E402


def main():
    for d in sys.argv[1:]:
        m = load(d, device="cuda", dtype="bfloat16")
        cache = m.new_cache(1, 256)
        m.forward(np.arange(1, 33)[None], cache=cache)
        prog = fused.FusedDecode(m, cache)
        tok = lc.Tensor(np.array([5], np.int64), device="cuda")
        nxt = lc.Tensor(np.array([0], np.int64), device="cuda")
        buf = lc.Tensor(np.zeros(m.vocab, np.float32), device="cuda")
        for _ in range(4):
            prog.step(tok, nxt, buf)
        st = buf.numpy()
        n = 5 * len(m.layers) + 1
        kinds = ["qkv", "attn", "o", "up", "down"] * len(m.layers) + ["lm_head"]
        for b, name in ((0, "block 0"), (1, "last block")):
            a = st[b * 4 * n:(b + 1) * 4 * n].reshape(n, 4) / 1e3  # us
            bar = np.append(a[1:, 0] - a[:-1, 3], np.nan)
            print(f"{d} {name}: step {a[-1, 3]:.1f} us to the last epilogue; first start {a[0, 0]:.2f} us")
            for k in ("qkv", "attn", "o", "up", "down", "lm_head"):
                idx = [i for i, x in enumerate(kinds) if x == k]
                r = a[idx]
                print(f"  {k:8s} x{len(idx):3d}: staged {np.mean(r[:, 1] - r[:, 0]):6.2f}  consumed "
                      f"{np.mean(r[:, 2] - r[:, 1]):6.2f}  epilogue {np.mean(r[:, 3] - r[:, 2]):6.2f}  "
                      f"total {np.mean(r[:, 3] - r[:, 0]):6.2f}  barrier after {np.nanmean(bar[idx]):6.2f} us")
            print("  layer 0 rows:", np.round(a[:5], 2).tolist(), flush=True)
        del m, cache, prog


if __name__ == "__main__":
    main()
