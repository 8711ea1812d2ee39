"""The engine_split suite: the same lc.api calls (NumPy in, NumPy out) with set_engine("lightning") (ours)
and set_engine("torch") (peer lc_api_torch, the interop path) on the run's device: the seed's hotspot shapes
(conv 16/24/32, conv->attn (48,48) (96,48) (192,48) (192,8)) plus matmul and attention. ratio = torch-engine
ms / lightning-engine ms (the seed's interop_over_pure). Needs torch (without it lc.api would run lightning
for both). Both outputs are checked against the float64 reference. Tested by tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import numpy as np

from ...testing import refs as R
from . import Ctx, SuiteUnavailable
from .common import measure, torch_mod, torch_version


def run(ctx: Ctx) -> list[dict]:
    import lightning_core as lc
    torch, _ = torch_mod()
    if torch is None:
        raise SuiteUnavailable("torch not installed (the torch engine of lc.api needs it)")
    if ctx.device == "cuda" and not torch.cuda.is_available():
        raise SuiteUnavailable("torch has no CUDA here (the torch engine would run on another device)")
    ctx.need_dtype("float32")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    lc.set_matmul_precision("highest")
    if ctx.device == "cpu":
        torch.set_num_threads(lc.num_threads())
    api, dev, tv = lc.api, ctx.device, torch_version()
    rng = np.random.default_rng(ctx.seed)
    r = lambda *s: rng.random(s, dtype=np.float32)  # noqa: E731
    saved = api.get_engine()
    rows: list[dict] = []

    def split(family, case, shape, call, ref):
        def on(engine):
            def f():
                api.set_engine(engine)
                return call()
            return f
        measure(ctx, rows, "engine_split", family, case, shape, on("lightning"), [("lc_api_torch", tv, on("torch"))],
                ref, notes="same lc.api call; ratio = torch engine / lightning engine (interop_over_pure)")

    mm = [(256, 256, 256)] + ([] if ctx.quick else [(1024, 1024, 1024)])
    att = [(256, 64)] + ([] if ctx.quick else [(1024, 64)])
    conv = [16, 32] if ctx.quick else [16, 24, 32]
    chain = [(48, 48), (96, 48)] if ctx.quick else [(48, 48), (96, 48), (192, 48), (192, 8)]
    try:
        with torch.inference_mode():
            for m, k, n in mm:
                a, b = r(m, k), r(k, n)
                split("matmul", f"matmul m={m},k={k},n={n}", f"m={m},k={k},n={n}",
                      lambda a=a, b=b: api.matmul(a, b, dev), R.ref_matmul(a, b))
            for s, d in att:
                q, k, v = r(s * d), r(s * d), r(s * d)
                split("attention", f"attention seq={s},head_dim={d}", f"seq={s},head_dim={d}",
                      lambda q=q, k=k, v=v, s=s, d=d: api.attention(q, k, v, s, d, False, dev),
                      R.ref_attention(*(t.reshape(s, d) for t in (q, k, v))))
            for h in conv:
                x, w, b = r(1, 3, h, h), r(16, 3, 3, 3) - 0.5, r(16) - 0.5
                shape = f"n=1,c=3->16,h={h},w={h},k=3"
                split("conv", f"conv_relu {shape}", shape, lambda x=x, w=w, b=b: api.conv_relu_nchw(x, w, b, 1, 1, 1, 1, dev),
                      R.ref_conv2d(x, w, b, 1, 1, 1, 1, True))
            x, w, b = r(1, 3, 8, 8), (r(16, 3, 3, 3) - 0.5) * 0.5, (r(16) - 0.5) * 0.1
            for s, d in chain:
                shape = f"conv(n=1,c=3->16,h=8,w=8,k=3)+attn(seq={s},d={d})"
                split("conv->attn", f"conv_attn {shape}", shape,
                      lambda s=s, d=d: api.conv_attention_torchstrong_nchw(x, w, b, s, d, device=dev),
                      R.ref_chain(x, w, b, s, d))
    finally:
        api.set_engine(saved)
    return rows
