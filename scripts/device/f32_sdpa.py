"""float32 attention A/B on a GPU (developer probe, not a benchmark suite): for B·H = 32, S in 1k/2k/4k,
D 64/128, causal and not, times lc.scaled_dot_product_attention on the 3xTF32 tensor-core kernel (each
variant of sdpa_tf32.cu, LC_SDPA_TF32_VARIANT), on the generic SIMT kernel (LC_SDPA_F32=simt), and torch's
F.scaled_dot_product_attention with TF32 off, in one process; prints TFLOP/s, ratios and the relative error of
two heads against float64. Usage: python scripts/device/f32_sdpa.py [S ...]."""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import lightning_core as lc
from lightning_core.bench.suites.lowp import _events
from lightning_core.bench.timer import time_call
from lightning_core.testing import ref_sdpa

torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
VARIANTS = {64: [0, 1, 5, 6, 7], 128: [2, 3, 4]}
KW = dict(warmup=3, samples=9, min_sample_s=3e-4, settle_s=0.05, max_s=3.0)


def ours_ms(fn):
    return time_call(fn, sample_ms=lambda run: lc.time_device_ms(run, device="cuda"), **KW)["median_ms"]


def err_of(o, q, k, v, causal):
    got = o[:2, :1].float().cpu().numpy()
    want = ref_sdpa(*(x[:2, :1].cpu().numpy() for x in (q, k, v)), causal=causal)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def main():
    seqs = [int(x) for x in sys.argv[1:]] or [1024, 2048, 4096]
    b, h = 4, 8
    g = torch.Generator(device="cuda")
    g.manual_seed(1)
    print(f"device {torch.cuda.get_device_name()}; torch {torch.__version__}")
    for d in (64, 128):
        for s in seqs:
            q, k, v = (torch.randn((b, h, s, d), generator=g, device="cuda") for _ in range(3))
            o = torch.full_like(q, float("nan"))
            tq, tk, tv, to = (lc.from_dlpack(x) for x in (q, k, v, o))
            for causal in (False, True):
                fl = 4.0 * b * h * s * s * d * (0.5 if causal else 1.0)
                call = lambda: lc.scaled_dot_product_attention_into(tq, tk, tv, to, causal=causal, device="cuda")
                res = {}
                for tag, env in [("simt", {"LC_SDPA_F32": "simt"})] + \
                        [(f"v{i}", {"LC_SDPA_TF32_VARIANT": str(i)}) for i in VARIANTS[d]] + [("default", {})]:
                    os.environ.pop("LC_SDPA_F32", None), os.environ.pop("LC_SDPA_TF32_VARIANT", None)
                    os.environ.update(env)
                    o.fill_(float("nan"))
                    torch.cuda.synchronize()
                    call()
                    lc.synchronize("cuda")
                    path = lc.last_dispatch()["path"]
                    e = err_of(o, q, k, v, causal)
                    ms = ours_ms(call)
                    res[tag] = ms
                    print(f"  D={d} S={s} {'causal' if causal else 'full  '} {tag:8s} {ms:8.3f} ms {fl / ms / 1e9:6.1f} TF "
                          f"err {e:.1e} {path}", flush=True)
                os.environ.pop("LC_SDPA_F32", None), os.environ.pop("LC_SDPA_TF32_VARIANT", None)
                with torch.inference_mode():
                    pt = time_call(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), sample_ms=_events(torch), **KW)["median_ms"]
                    perr = err_of(F.scaled_dot_product_attention(q, k, v, is_causal=causal), q, k, v, causal)
                best = min(res.values())
                print(f"D={d} S={s} {'causal' if causal else 'full'}: torch {pt:.3f} ms ({fl / pt / 1e9:.1f} TF, err {perr:.1e}); "
                      f"default {res['default']:.3f} ms = {pt / res['default']:.2f}x torch, {fl / res['default'] / 1e9:.1f} TF; "
                      f"simt {pt / res['simt']:.2f}x; best {pt / best:.2f}x", flush=True)


if __name__ == "__main__":
    main()
