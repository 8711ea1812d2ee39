"""The fusion suite: lc.Graph plans with the fusion rules on vs off, against eager lc ops, torch eager and
torch CUDA graphs on the same device and process, with the planner's explain() report in the notes.
  matmul_bias_relu  relu(x @ W + b), 512x768x768
  attention_proj    attention(q, k, v) @ Wo + bo, seq 256 and 1024, head_dim 64
  ffn_gelu          gelu(x @ W1 + b1) @ W2 + b2 (erf GELU), batch 512 and 1024, 768 -> 3072 -> 768
  ln_proj           layer_norm(x, gamma, beta) @ W + b, 1024x1024x1024 and 2048x1024x1024
(tiny shapes under --quick on the CPU; --quick keeps the first shape of each). Rows (graph mode unless said):
LC fused vs LC unfused (the measured fusion speedup; the cost model's expected one in the note), vs LC
eager, vs torch eager, vs torch CUDA graph; resident LC eager vs torch eager. Targets (docs/benchmarks.md):
ffn_gelu 512x768x3072 and ln_proj 1024^3 fused >= 1.2x torch eager. Tested by tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import math

import numpy as np

from .. import harness as H
from ...testing import max_abs_diff, refs as R
from . import Ctx
from .columns import ColCtx, col, emit, free_gpu, new_record, unavailable_without_plan_api
from .graph_eager_ab import matmul_bias_relu_case
from .plans import Case, lc_eager_col, lc_graph_cols, torch_resident_cols

SHAPES = {"matmul_bias_relu": [(512, 768, 768)], "attention_proj": [(256, 64), (1024, 64)],
          "ffn_gelu": [(512, 768, 3072), (1024, 768, 3072)], "ln_proj": [(1024, 1024, 1024), (2048, 1024, 1024)]}
TINY = {"matmul_bias_relu": [(32, 48, 64)], "attention_proj": [(32, 16), (64, 16)],
        "ffn_gelu": [(16, 32, 64), (32, 32, 64)], "ln_proj": [(32, 64, 48), (64, 64, 48)]}
LN_EPS = 1e-5


def _f32(cc, *shape, scale=1.0):
    return (cc.rng.standard_normal(shape) * scale).astype(np.float32)


def attention_proj_case(cc: ColCtx, seq, d) -> Case:
    import lightning_core as lc
    torch, F = cc.torch, cc.F
    q, k, v = _f32(cc, seq, d), _f32(cc, seq, d), _f32(cc, seq, d)
    wo, bo = _f32(cc, d, d, scale=1 / math.sqrt(d)), _f32(cc, d, scale=0.1)

    def lc_eager(L, E, dev):
        tw, tb, ta, out = L(wo), L(bo), E((seq, d)), E((seq, d))

        def f(tq, tk, tv):
            lc.attention2d_into(tq, tk, tv, ta, causal=False, device=dev)
            lc.linear_into(ta, tw, out, bias=tb, activation="none", device=dev)
        return f, out

    def torch_fn(T):
        tw, tb = T(wo), T(bo)
        out = torch.empty((seq, d), device=tw.device)

        def f(tq, tk, tv):
            a = F.scaled_dot_product_attention(tq.view(1, 1, seq, d), tk.view(1, 1, seq, d), tv.view(1, 1, seq, d))
            return torch.addmm(tb, a.view(seq, d), tw, out=out)
        return f

    return Case("attention_proj", f"seq={seq},head_dim={d},proj={d}->{d}", [("q", q), ("k", k), ("v", v)],
                R.ref_attention(q, k, v) @ wo.astype(np.float64) + bo,
                lambda g, qv, kv, vv: g.bias_add(g.matmul(g.attention(qv, kv, vv), g.constant("wo", wo)),
                                                 g.constant("bo", bo)), lc_eager, torch_fn)


def ffn_case(cc: ColCtx, bt, d, h) -> Case:
    import lightning_core as lc
    torch, F = cc.torch, cc.F
    x = _f32(cc, bt, d)
    w1, b1 = _f32(cc, d, h, scale=1 / math.sqrt(d)), _f32(cc, h, scale=0.1)
    w2, b2 = _f32(cc, h, d, scale=1 / math.sqrt(h)), _f32(cc, d, scale=0.1)

    def graph(g, xv):
        hv = g.gelu(g.bias_add(g.matmul(xv, g.constant("w1", w1)), g.constant("b1", b1)), approximate="none")
        return g.bias_add(g.matmul(hv, g.constant("w2", w2)), g.constant("b2", b2))

    def lc_eager(L, E, dev):
        t1, tb1, t2, tb2, th, out = L(w1), L(b1), L(w2), L(b2), E((bt, h)), E((bt, d))

        def f(tx):
            lc.linear_into(tx, t1, th, bias=tb1, activation="gelu", device=dev)
            lc.linear_into(th, t2, out, bias=tb2, activation="none", device=dev)
        return f, out

    def torch_fn(T):
        t1, tb1, t2, tb2 = T(w1), T(b1), T(w2), T(b2)
        th, out = torch.empty((bt, h), device=t1.device), torch.empty((bt, d), device=t1.device)

        def f(tx):
            torch.addmm(tb1, tx, t1, out=th)
            return torch.addmm(tb2, F.gelu(th, approximate="none"), t2, out=out)
        return f

    ref = R.ref_gelu(R.ref_matmul(x, w1) + b1) @ w2.astype(np.float64) + b2
    return Case("ffn_gelu", f"batch={bt},d={d},hidden={h}", [("x", x)], ref, graph, lc_eager, torch_fn)


def ln_proj_case(cc: ColCtx, m, k, n) -> Case:
    import lightning_core as lc
    torch, F = cc.torch, cc.F
    x = _f32(cc, m, k)
    gamma, beta = (1.0 + _f32(cc, k, scale=0.1)), _f32(cc, k, scale=0.1)
    w, b = _f32(cc, k, n, scale=1 / math.sqrt(k)), _f32(cc, n, scale=0.1)

    def graph(g, xv):
        y = g.layer_norm(xv, g.constant("gamma", gamma), g.constant("beta", beta), eps=LN_EPS)
        return g.bias_add(g.matmul(y, g.constant("w", w)), g.constant("b", b))

    def lc_eager(L, E, dev):
        tg, tbt, tw, tb, ty, out = L(gamma), L(beta), L(w), L(b), E((m, k)), E((m, n))

        def f(tx):
            lc.layer_norm_into(tx, ty, gamma=tg, beta=tbt, eps=LN_EPS, device=dev)
            lc.linear_into(ty, tw, out, bias=tb, activation="none", device=dev)
        return f, out

    def torch_fn(T):
        tg, tbt, tw, tb = T(gamma), T(beta), T(w), T(b)
        out = torch.empty((m, n), device=tw.device)
        return lambda tx: torch.addmm(tb, F.layer_norm(tx, (k,), tg, tbt, LN_EPS), tw, out=out)

    ref = R.ref_layer_norm(x, gamma, beta, eps=LN_EPS) @ w.astype(np.float64) + b
    return Case("ln_proj", f"m={m},k={k},n={n}", [("x", x)], ref, graph, lc_eager, torch_fn)


def run_fusion(cc: ColCtx, case: Case) -> list[dict]:
    rec = new_record(cc, case.row, case.case)
    cc.ctx.case(f"{case.row} {case.case}")
    st = {}
    lc_graph_cols(cc, rec, case, st, key="lc_fused", fuse=True, oneshot=False, explain=True)
    lc_graph_cols(cc, rec, case, st, key="lc_unfused", fuse=False, oneshot=False)
    col(rec, "lc_eager", lambda: lc_eager_col(cc, rec, case, st))
    free_gpu(cc)
    torch_resident_cols(cc, rec, case, oneshot=False)
    if "lc_fused_out" in st and "lc_unfused_out" in st:
        rec["notes"].append(f"max |fused - unfused| {max_abs_diff(st['lc_fused_out'], st['lc_unfused_out']):.1e}")
    exp = rec.get("expected_speedup")
    rules = f"rules: {rec.get('rules_fired', '?')}" + (f"; expected {exp:.2f}x" if H.finite(exp) else "")
    return emit(cc, rec, "fusion", case.row, f"{case.row} {case.case}", [
        ("graph", "lc_fused_ms", "lc_unfused", "lc_unfused_ms",
         "; ".join(["fusion on vs off", rules] + rec["notes"])),
        ("graph", "lc_fused_ms", "lc_eager", "lc_eager_ms", ""),
        ("graph", "lc_fused_ms", "torch", "torch_eager_ms", "peer eager resident + sync"),
        ("graph", "lc_fused_ms", "torch_cuda_graph", "torch_graph_ms", ""),
        ("resident", "lc_eager_ms", "torch", "torch_eager_ms", "")])


def run(ctx: Ctx) -> list[dict]:
    unavailable_without_plan_api()
    cc = ColCtx(ctx, seed=20261129)
    shapes = SHAPES if (cc.lc_cuda or not ctx.quick) else TINY
    make = {"matmul_bias_relu": lambda s: matmul_bias_relu_case(cc, *s), "attention_proj": lambda s: attention_proj_case(cc, *s),
            "ffn_gelu": lambda s: ffn_case(cc, *s), "ln_proj": lambda s: ln_proj_case(cc, *s)}
    rows = []
    for name, ss in shapes.items():
        for s in ss[:1] if ctx.quick else ss:
            rows += run_fusion(cc, make[name](s))
    return rows
