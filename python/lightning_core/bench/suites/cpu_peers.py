"""Rows against the CPU peers (NumPy in, NumPy out, one-shot): NumPy and torch CPU (same thread count as
lightning_core, TF32 off; torch.from_numpy/.numpy() are zero-copy). Our side runs on the run's device; on a
GPU machine it is device="auto" (the cost model's pick per call, recorded as "auto-><device>": what a
NumPy-in, NumPy-out user calls there).
  kernel groups: attention (seq, head_dim) 8x16 .. 1024x64; conv3x3+ReLU (the seed's six shapes); matmul 8^3
                 .. 2048^3
  ml group:      linear 1024..4096 x 1024 -> 512/1024 (matmul_np_into), matrix_sub, vector_add 1K .. 4M
  pipeline_cpu:  ffn (linear+GELU -> linear; NumPy n/a: no erf), ln->proj, conv->attn chain
--quick drops the largest shapes. The NumPy peers compute the float64 references' formulas in the inputs'
dtype (lightning_core.testing.refs with dtype=). Tested by tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import math

import numpy as np

from ...testing import refs as R
from . import Ctx
from .common import inference_mode, measure, np_dtype, timing, torch_mod, torch_version, work

CPU_TIMING = dict(quick=dict(warmup=3, samples=7, min_sample_s=1e-4, settle_s=0.15),
                  full=dict(warmup=10, samples=21, min_sample_s=3e-4, settle_s=0.15))


def _setup(ctx: Ctx):
    import lightning_core as lc
    torch, F = torch_mod()
    if torch is not None:
        torch.set_num_threads(lc.num_threads())
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    lc.set_matmul_precision("highest")
    return lc, torch, F


class _Run:
    def __init__(self, ctx: Ctx, suite: str, rows: list):
        self.lc, self.torch, self.F = _setup(ctx)
        self.ctx, self.suite, self.rows = ctx, suite, rows
        self.route = ctx.device == "cuda"
        self.dev = "auto" if self.route else ctx.device
        self.dt = np_dtype(ctx)
        self.rng = np.random.default_rng(ctx.seed)
        self.tkw = timing(ctx, **CPU_TIMING)
        self.nv, self.tv = f"numpy {np.__version__}", torch_version()

    def rand(self, *shape):
        return self.rng.standard_normal(shape).astype(self.dt)

    def row(self, family, case, shape, ours, np_fn, t_fn, ref, flops=None, nbytes=None, tol=1e-3, notes=""):
        peers = ([("numpy", self.nv, np_fn)] if np_fn else []) + \
                ([("torch_cpu", self.tv, t_fn)] if self.torch is not None and t_fn else [])
        note = "; ".join(filter(None, [notes, "ours: device='auto' (cost model)" if self.route else ""]))
        measure(self.ctx, self.rows, self.suite, family, case, shape, ours, peers, ref, tol=tol, tkw=self.tkw,
                flops=flops, nbytes=nbytes, route=self.route, notes=note)


def _t(run: _Run, *arrays):
    return [run.torch.from_numpy(a) for a in arrays] if run.torch is not None else [None] * len(arrays)


def attention(run: _Run) -> None:
    lc, F = run.lc, run.F
    for seq, d in [(8, 16), (96, 48), (256, 64)] + ([] if run.ctx.quick else [(1024, 64)]):
        q, k, v = run.rand(seq, d), run.rand(seq, d), run.rand(seq, d)
        tq, tk, tv = (t[None, None] if t is not None else None for t in _t(run, q, k, v))
        shape = f"seq={seq},head_dim={d}"
        run.row("attention", f"attention2d {shape}", shape, lambda: lc.attention2d(q, k, v, False, run.dev),
                lambda: R.ref_attention(q, k, v, dtype=None),
                lambda: F.scaled_dot_product_attention(tq, tk, tv)[0, 0].numpy(), R.ref_attention(q, k, v),
                **work(("attention_forward", [(seq, d)] * 3), dtype=run.dt.name))


def conv(run: _Run) -> None:
    lc, F = run.lc, run.F
    shapes = [(1, 3, 16, 16, 16), (1, 3, 24, 24, 16), (1, 3, 28, 28, 16), (1, 3, 32, 32, 16), (2, 3, 16, 16, 16),
              (2, 3, 32, 32, 16)]
    for n, c, h, w, oc in shapes[:3] if run.ctx.quick else shapes:
        x, wt, b = run.rand(n, c, h, w), run.rand(oc, c, 3, 3), run.rand(oc)
        tx, tw, tb = _t(run, x, wt, b)
        shape = f"batch={n},in_ch={c},h={h},w={w},out_ch={oc},k=3"
        run.row("conv", f"conv2d_relu {shape}", shape,
                lambda: lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1, run.dev, apply_relu=True),
                lambda: R.ref_conv2d(x, wt, b, 1, 1, 1, 1, True, dtype=None),
                lambda: F.relu(F.conv2d(tx, tw, tb, stride=1, padding=1)).numpy(),
                R.ref_conv2d(x, wt, b, 1, 1, 1, 1, True),
                **work(("conv2d_nchw", [x.shape, wt.shape, b.shape], dict(pad_h=1, pad_w=1)), dtype=run.dt.name))


def matmul(run: _Run) -> None:
    lc, torch = run.lc, run.torch
    for m, k, n in [(8, 16, 8), (256, 256, 256)] + ([] if run.ctx.quick else [(1024, 1024, 1024), (2048, 2048, 2048)]):
        a, b = run.rand(m, k), run.rand(k, n)
        ta, tb = _t(run, a, b)
        shape = f"m={m},k={k},n={n}"
        run.row("gemm", f"matmul2d {shape}", shape, lambda: lc.matmul2d(a, b, run.dev), lambda: a @ b,
                lambda: torch.matmul(ta, tb).numpy(), R.ref_matmul(a, b),
                **work(("matmul", [a.shape, b.shape]), dtype=run.dt.name))


def ml(run: _Run) -> None:
    lc, torch = run.lc, run.torch
    lin = [(1024, 1024, 512), (2048, 1024, 512), (4096, 1024, 1024)]
    for batch, fin, fout in lin[:1] if run.ctx.quick else lin:
        x, wt = run.rand(batch, fin), run.rand(fin, fout)
        out = np.empty((batch, fout), dtype=run.dt)
        tx, tw = _t(run, x, wt)
        tout = torch.from_numpy(out.copy()) if torch is not None else None
        shape = f"batch={batch},in={fin},out={fout}"
        run.row("linear_classifier_inference", f"linear_classifier_inference {shape}", shape,
                lambda: lc.matmul_np_into(x, wt, out, batch, fin, fout, run.dev), lambda: np.matmul(x, wt, out=out),
                lambda: torch.matmul(tx, tw, out=tout).numpy(), R.ref_matmul(x, wt),
                **work(("matmul", [x.shape, wt.shape]), dtype=run.dt.name))
    sub = [(512, 512), (1024, 1024), (2048, 1024)]
    for rows, cols in sub[:1] if run.ctx.quick else sub:
        a, b = run.rand(rows * cols), run.rand(rows * cols)
        ta, tb = (t.reshape(rows, cols) if t is not None else None for t in _t(run, a, b))
        shape = f"rows={rows},cols={cols}"
        run.row("matrix_preprocessing_sub", f"matrix_preprocessing_sub {shape}", shape,
                lambda: lc.matrix_sub(a, b, rows, cols, run.dev), lambda: (a - b).reshape(rows, cols),
                lambda: (ta - tb).numpy(), (a.astype(np.float64) - b).reshape(rows, cols),
                **work(("matrix_sub", [(rows, cols)] * 2), dtype=run.dt.name))
    for n in [1024, 65536, 262144] + ([] if run.ctx.quick else [1048576, 4194304]):
        a, b = run.rand(n), run.rand(n)
        ta, tb = _t(run, a, b)
        run.row("feature_scaling_vector_add", f"feature_scaling_vector_add n={n}", f"n={n}",
                lambda: lc.vector_add(a, b, run.dev), lambda: a + b, lambda: (ta + tb).numpy(),
                a.astype(np.float64) + b, **work(("vector_add", [(n,), (n,)]), dtype=run.dt.name))


GROUPS = {"attention": attention, "conv": conv, "matmul": matmul, "ml": ml}


def run_groups(ctx: Ctx, suite: str, groups: list[str]) -> list[dict]:
    rows: list[dict] = []
    run = _Run(ctx, suite, rows)
    if run.torch is None:
        ctx.note("torch not installed: NumPy is the only CPU peer")
    with inference_mode():
        for g in groups:
            GROUPS[g](run)
    return rows


def pipeline_cpu(ctx: Ctx) -> list[dict]:
    """The seed's pipeline cases one-shot on the CPU against NumPy (not ffn: NumPy has no erf) and torch CPU."""
    rows: list[dict] = []
    run = _Run(ctx, "pipeline", rows)
    lc, torch, F = run.lc, run.torch, run.F
    dev = ctx.device
    f = lambda *s, scale=1.0: (run.rng.standard_normal(s) * scale).astype(run.dt)  # noqa: E731
    T = (lambda a: torch.from_numpy(a)) if torch is not None else (lambda a: None)  # noqa: E731
    ffn = [(512, 768, 3072)] if ctx.quick else [(512, 768, 3072), (1024, 768, 3072)]
    lnp = [(1024, 1024, 1024)] if ctx.quick else [(1024, 1024, 1024), (2048, 1024, 1024)]
    chain = [(48, 48), (96, 48)] if ctx.quick else [(48, 48), (96, 48), (192, 48), (192, 8)]
    with inference_mode():
        for b, dm, dff in ffn:
            x, w1, b1 = f(b, dm), f(dm, dff, scale=1 / math.sqrt(dm)), f(dff, scale=0.1)
            w2, b2 = f(dff, dm, scale=1 / math.sqrt(dff)), f(dm, scale=0.1)
            ref = R.ref_gelu(R.ref_matmul(x, w1) + b1) @ w2.astype(np.float64) + b2
            tt = [T(a) for a in (x, w1, b1, w2, b2)]
            shape = f"batch={b},d_model={dm},d_ff={dff}"
            run.row("ffn", f"ffn {shape}", shape,
                    lambda: lc.linear(lc.linear(x, w1, b1, "gelu", dev), w2, b2, "none", dev), None,
                    lambda: (F.linear(F.gelu(F.linear(tt[0], tt[1].T, tt[2])), tt[3].T, tt[4])).numpy(), ref,
                    tol=1e-4, **work(("linear", [(b, dm), (dm, dff), (dff,)]), ("linear", [(b, dff), (dff, dm), (dm,)])),
                    notes="two lc.linear calls (bias + erf GELU epilogue); NumPy peer n/a (no erf)")
        for b, dm, o in lnp:
            x, w, bias = f(b, dm), f(dm, o, scale=1 / math.sqrt(dm)), f(o, scale=0.1)
            tx, tw, tb = T(x), T(w), T(bias)
            shape = f"batch={b},d_model={dm},out={o}"
            run.row("ln->proj", f"ln_proj {shape}", shape,
                    lambda x=x, w=w, bias=bias: lc.linear(lc.layer_norm(x, device=dev), w, bias, "none", dev),
                    lambda x=x, w=w, bias=bias: R.ref_layer_norm(x, dtype=None) @ w + bias,
                    lambda tx=tx, tw=tw, tb=tb: torch.addmm(tb, F.layer_norm(tx, tx.shape[-1:]), tw).numpy(),
                    R.ref_layer_norm(x) @ w.astype(np.float64) + bias, tol=1e-4,
                    **work(("layer_norm", [(b, dm)]), ("linear", [(b, dm), (dm, o), (o,)])),
                    notes="layer_norm + linear, two calls")
        x, w, bias = run.rng.random((1, 3, 8, 8)).astype(run.dt), f(16, 3, 3, 3, scale=0.3), f(16, scale=0.1)
        for s, hd in chain:
            sd = s * hd

            def t_chain(s=s, hd=hd, sd=sd):
                y = F.relu(F.conv2d(T(x), T(w), T(bias), padding=1)).reshape(-1)
                qkv = y.repeat(-(-3 * sd // y.numel()))[:3 * sd]
                q, k, v = (qkv[j * sd:(j + 1) * sd].view(1, 1, s, hd) for j in range(3))
                return F.scaled_dot_product_attention(q, k, v)[0, 0].numpy()
            shape = f"conv(n=1,c=3->16,h=8,w=8,k=3)+attn(seq={s},d={hd})"
            run.row("conv->attn", f"conv_attn {shape}", shape,
                    lambda s=s, hd=hd: lc.api.conv_attention_torchstrong_nchw(x, w, bias, s, hd, device=dev),
                    lambda s=s, hd=hd: R.ref_chain(x, w, bias, s, hd, dtype=None), t_chain,
                    R.ref_chain(x, w, bias, s, hd), tol=1e-4)
    return rows
