"""One float32 sdpa call per configuration for ncu (developer probe): B=4, H=8, S, D from argv
(`python scripts/device/ncu_one.py S D [causal]`); a warm-up call, then the profiled one."""
import sys

import torch

import lightning_core as lc

s, d = int(sys.argv[1]), int(sys.argv[2])
causal = len(sys.argv) > 3 and sys.argv[3] == "causal"
q, k, v = (torch.randn((4, 8, s, d), device="cuda") for _ in range(3))
o = torch.empty_like(q)
tq, tk, tv, to = (lc.from_dlpack(x) for x in (q, k, v, o))
for _ in range(2):
    lc.scaled_dot_product_attention_into(tq, tk, tv, to, causal=causal, device="cuda")
lc.synchronize("cuda")
print(lc.last_dispatch()["path"])
