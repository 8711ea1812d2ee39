"""Decode attention calls for ncu/nsys (developer probe): B, Skv from argv, H=32, Hkv=8, D=128, bf16;
`python scripts/device/decode_one.py B SKV ours|torch [N]`: N calls (default 4) on one k/v."""
import sys

import torch
import torch.nn.functional as F

import lightning_core as lc

b, skv, who = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 4
q = torch.randn((b, 32, 1, 128), device="cuda", dtype=torch.bfloat16)
k, v = (torch.randn((b, 8, skv, 128), device="cuda", dtype=torch.bfloat16) for _ in range(2))
o = torch.empty_like(q)
tq, tk, tv, to = (lc.from_dlpack(x) for x in (q, k, v, o))
for _ in range(n):
    if who == "ours":
        lc.scaled_dot_product_attention_into(tq, tk, tv, to, device="cuda")
    else:
        F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
torch.cuda.synchronize()
print(lc.last_dispatch()["path"] if who == "ours" else "torch")
