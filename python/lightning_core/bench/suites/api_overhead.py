"""The api_overhead suite (seed section 12, "API Overhead"): what the Python layers cost on top of the calls
they wrap, in the same process, timed interleaved (time_pair): ours = the lc.api / lc.nn call, peer =
lc_direct (the direct lightning_core call doing the same work); ratio = direct / API (target >= 1/1.05 for
lc.api, >= 1/1.1 for nn.Linear, in the note). Plus, with torch on CUDA, the DLPack round trip of a 64 MB
tensor torch -> lc.from_dlpack -> torch.from_dlpack (no copy, < 20 us; a note). Tested by
tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import numpy as np

from .. import harness as H
from ...testing import validate
from ..timer import time_call, time_pair
from . import Ctx
from .common import torch_mod


def run(ctx: Ctx) -> list[dict]:
    import lightning_core as lc
    from lightning_core import nn
    ctx.need_dtype("float32")
    dev, pairs = ctx.device, (3 if ctx.quick else 7)
    lc.set_matmul_precision("highest")
    lc.api.set_engine("lightning")
    rng = np.random.default_rng(7)
    rows: list[dict] = []

    def pair(family, case, direct, api, target):
        ctx.case(case)
        err, ok = validate(api(), direct(), 1e-5)
        t = time_pair(direct, api, pairs, samples=7, settle_s=0.0)
        r = t["a_ms"] / t["b_ms"]
        verdict = ("PASS" if 1 / r <= target else "MISS") if ok else "FAILED"
        rows.append(H.make_row("api_overhead", family, case, "one_shot", t["b_ms"], "lc_direct", t["a_ms"],
                               dtype="float32", device=dev, rel_err=err, status="ok" if ok else "FAILED",
                               notes=f"target API/direct <= {target}x: {verdict}"))

    for seq, d in [(256, 64), (512, 64)]:
        q, k, v = (rng.random(seq * d).astype(np.float32) for _ in range(3))
        pair("attention", f"attention seq={seq},head_dim={d}", lambda: lc.attention_forward(q, k, v, seq, d, False, dev),
             lambda: lc.api.attention(q, k, v, seq, d, False, dev), 1.05)
    for n in (1, 2):
        x, w, b = (rng.random(s).astype(np.float32) for s in ((n, 3, 32, 32), (16, 3, 3, 3), (16,)))
        pair("conv_relu", f"conv_relu batch={n},in_ch=3,h=32,w=32,out_ch=16,k=3",
             lambda: lc.conv2d_nchw(x, w, b, 1, 1, 1, 1, dev, True), lambda: lc.api.conv_relu_nchw(x, w, b, 1, 1, 1, 1, dev),
             1.05)
    x, w, b = (rng.random(s).astype(np.float32) for s in ((1, 3, 8, 8), (16, 3, 3, 3), (16,)))
    for seq, d in [(48, 48), (96, 48)]:
        def direct(seq=seq, d=d):
            qq, kk, vv = lc.qkv_pack_repeat(lc.conv2d_nchw(x, w, b, 1, 1, 1, 1, dev, True), seq, d, dev)
            return lc.attention2d(qq, kk, vv, False, dev)
        pair("conv_attn", f"conv_attn conv(1,3->16,8x8)+attn(seq={seq},d={d})", direct,
             lambda seq=seq, d=d: lc.api.conv_attention_torchstrong_nchw(x, w, b, seq, d, device=dev), 1.05)
    for batch, fin, fout in [(64, 512, 512), (256, 1024, 1024)]:
        layer = nn.Linear(fin, fout, seed=1, device=dev)
        xx = rng.standard_normal((batch, fin)).astype(np.float32)
        pair("nn.Linear", f"nn.Linear batch={batch},{fin}->{fout}",
             lambda: lc.linear(xx, layer.weight, layer.bias, "none", dev), lambda: layer.forward(xx), 1.1)
    torch, _ = torch_mod()
    if torch is None or not torch.cuda.is_available() or dev != "cuda":
        ctx.note("dlpack round trip not measured: needs torch with CUDA and --device cuda")
        return rows
    t = torch.randn(16 * 1024 * 1024, device="cuda")  # 64 MB float32
    torch.cuda.synchronize()

    def round_trip():
        return torch.from_dlpack(lc.from_dlpack(t))
    same = round_trip().data_ptr() == t.data_ptr()
    us = time_call(round_trip, samples=21, settle_s=0.0)["median_s"] * 1e6
    ctx.note(f"dlpack round trip 64 MB torch->lc->torch: {us:.1f} us, same pointer {same} (target: no copy and "
             f"< 20 us: {'PASS' if same and us < 20 else 'MISS'})")
    return rows
