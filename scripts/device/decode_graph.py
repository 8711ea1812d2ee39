"""Decode attention device time, graph-replayed (developer probe): B=1/8, H=32, Hkv=8, D=128, bf16, Skv 1k/4k;
`copies` calls on distinct k/v copies (>= 256 MB together) captured in one graph, for our default dispatch,
LC_SDPA_CUDNN=1 (cuDNN's engine for every eligible shape), LC_SDPA_DECODE=simt, the split merges without
clusters (LC_SDPA_DECODE_CLUSTER=0: the fold, and with LC_SDPA_DECODE_FOLD=0 the combine kernel), and torch's SDPA captured
the same way, and the decode's split plan with at least 2 / 4 key tiles a split
(LC_SDPA_DECODE_MINTILES). Prints us per call. Usage: [DG_VARIANTS=default,...] [DG_SHAPES=B:Skv,...]
python scripts/device/decode_graph.py (other LC_* knobs in the environment apply to every variant; DG_SHAPES replaces
the default shapes 1:1024,1:4096,8:1024,1:16384; DG_EAGER=1 adds each variant's eager time, host clock around the
copies' calls and one synchronize, us a call)."""
import math
import os

import torch
import torch.nn.functional as F

import lightning_core as lc
from lightning_core.bench.suites.common import torch_graph_time
from lightning_core.bench.suites.lowp import _events
from lightning_core.bench.timer import time_call

KW = dict(warmup=3, samples=9, min_sample_s=2e-4, settle_s=0.05, max_s=2.0)
KNOBS = ("LC_SDPA_CUDNN", "LC_SDPA_DECODE", "LC_SDPA_DECODE_FOLD", "LC_SDPA_DECODE_MINTILES", "LC_SDPA_DECODE_CLUSTER")
VARIANTS = tuple(v for v in (
    ("default", {}), ("cudnn", {"LC_SDPA_CUDNN": "1"}), ("simt", {"LC_SDPA_DECODE": "simt"}),
    ("fold", {"LC_SDPA_DECODE_CLUSTER": "0"}), ("combine", {"LC_SDPA_DECODE_CLUSTER": "0", "LC_SDPA_DECODE_FOLD": "0"}),
    ("mint2", {"LC_SDPA_DECODE_MINTILES": "2"}), ("mint4", {"LC_SDPA_DECODE_MINTILES": "4"}))
    if v[0] in os.environ.get("DG_VARIANTS", v[0]).split(","))  # DG_VARIANTS=default,cudnn: only those


def ours_us(tq, tks, tvs, to, copies):
    def step():
        for tk, tv in zip(tks, tvs):
            lc.scaled_dot_product_attention_into(tq, tk, tv, to, device="cuda")
    step()
    path = lc.last_dispatch()["path"]
    lc.synchronize("cuda")
    g = lc.capture_graph(step, device="cuda")
    t = time_call(lambda: g.replay(), sample_ms=lambda run: lc.time_device_ms(run, device="cuda"), per=copies, **KW)
    g.release()
    eager = ""
    if os.environ.get("DG_EAGER") == "1":  # host clock around the copies' calls and one synchronize, us a call
        def run():
            step()
            lc.synchronize("cuda")
        e = time_call(run, per=copies, **KW)
        eager = f", eager {e['median_s'] * 1e6:.2f}"
    return t["median_s"] * 1e6, path + eager


def main():
    print(f"device {torch.cuda.get_device_name()}; torch {torch.__version__}; cudnn {lc.cudnn_version()}")
    shapes = os.environ.get("DG_SHAPES", "1:1024,1:4096,8:1024,1:16384")
    for b, skv in (tuple(int(x) for x in sh.split(":")) for sh in shapes.split(",")):
        h, hkv, d = 32, 8, 128
        kv = 2.0 * b * hkv * skv * d * 2
        copies = int(max(1, min(math.ceil(256e6 / kv), 2e9 // kv)))
        q = torch.randn((b, h, 1, d), device="cuda", dtype=torch.bfloat16)
        ks = [torch.randn((b, hkv, skv, d), device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        vs = [torch.randn((b, hkv, skv, d), device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        o = torch.empty_like(q)
        tq, to = lc.from_dlpack(q), lc.from_dlpack(o)
        tks, tvs = [lc.from_dlpack(x) for x in ks], [lc.from_dlpack(x) for x in vs]
        res = {}
        for tag, env in VARIANTS:
            for kname in KNOBS:
                os.environ.pop(kname, None)
            os.environ.update(env)
            try:
                res[tag] = ours_us(tq, tks, tvs, to, copies)
            except RuntimeError as e:
                res[tag] = (float("nan"), f"error {e}")
        for kname in KNOBS:
            os.environ.pop(kname, None)

        def tstep():
            for k_, v_ in zip(ks, vs):
                F.scaled_dot_product_attention(q, k_, v_, enable_gqa=True)
        pt = torch_graph_time(torch, tstep, copies, _events(torch), KW)["median_s"] * 1e6
        line = " ".join(f"{k} {v[0]:.2f} us ({v[1]})" for k, v in res.items())
        print(f"B={b} Skv={skv} x{copies}: torch {pt:.2f} us ({kv / pt / 1e3:.0f} GB/s); {line}", flush=True)


if __name__ == "__main__":
    main()
