"""The graph_eager_ab suite: the same work as an lc.Graph plan and as eager lc ops (host dispatches per
iteration in the note), against torch eager and torch CUDA graphs on the same device and process.
  conv_attn          x [1,3,8,8] -> conv3x3 (w [16,3,3,3], b [16], stride 1, pad 1) -> ReLU -> qkv_pack_repeat
                     -> attention, (seq, head_dim) in (48,48), (96,48), (192,48), (192,8) (--quick: the first 2)
  matmul_matrix_sub  x @ W - C, 256x256 (32 under --quick on the CPU)
  matmul_bias_relu   relu(x @ W + b), 512x768x768 (32x48x64 under --quick on the CPU)
Rows: resident LC eager vs torch eager; graph LC graph vs LC eager (the A/B), vs torch eager, vs torch CUDA
graph; one-shot plan.run vs torch one-shot (weights resident). Targets (docs/benchmarks.md): conv_attn LC
graph >= 2x torch CUDA graph; 1 host dispatch per iteration for the LC graph on CUDA.
Tested by tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import math

import numpy as np

from ...testing import max_abs_diff, refs as R
from . import Ctx
from .columns import ColCtx, Skip, col, emit, free_gpu, new_record, unavailable_without_plan_api
from .plans import Case, lc_eager_col, lc_graph_cols, torch_resident_cols

CHAIN = [(48, 48), (96, 48), (192, 48), (192, 8)]
CHAIN_X, CHAIN_OC = (1, 3, 8, 8), 16
SUB, SUB_TINY = 256, 32
MBR, MBR_TINY = (512, 768, 768), (32, 48, 64)
FAMILY = {"conv_attn": "conv->attn"}


def conv_attn_case(cc: ColCtx, seq, hd) -> Case:
    import lightning_core as lc
    F = cc.F
    n, c, hh, ww = CHAIN_X
    x = cc.rng.random(CHAIN_X, dtype=np.float32)
    w = (cc.rng.random((CHAIN_OC, c, 3, 3), dtype=np.float32) - 0.5) * 0.5
    b = (cc.rng.random(CHAIN_OC, dtype=np.float32) - 0.5) * 0.1
    sd, conv_numel = seq * hd, CHAIN_OC * hh * ww * n
    reps = -(-3 * sd // conv_numel)

    def graph(g, xv):
        if not hasattr(g, "attention_packed"):
            raise Skip("lc.Graph has no attention_packed (q, k, v out of qkv_pack_repeat's value)")
        y = g.relu(g.conv2d(xv, g.constant("w", w), g.constant("b", b), stride_h=1, stride_w=1, pad_h=1, pad_w=1))
        return g.attention_packed(g.qkv_pack_repeat(y, seq, hd))

    def lc_eager(L, E, dev):
        tw, tb = L(w), L(b)
        ty, tqkv, out = E((n, CHAIN_OC, hh, ww)), E((3, seq, hd)), E((seq, hd))
        q, k, v = (tqkv.view((seq, hd), offset=j * sd) for j in range(3))

        def f(tx):
            lc.conv2d_nchw_into(tx, tw, tb, ty, stride_h=1, stride_w=1, pad_h=1, pad_w=1, device=dev, apply_relu=True)
            lc.qkv_pack_repeat_into(ty, tqkv, device=dev)
            lc.attention2d_into(q, k, v, out, causal=False, device=dev)
        return f, out

    def torch_fn(T):
        tw, tb = T(w), T(b)

        def f(tx):
            y = F.relu(F.conv2d(tx, tw, tb, stride=1, padding=1)).reshape(-1)
            qkv = y.repeat(reps)[:3 * sd]
            q, k, v = (qkv[j * sd:(j + 1) * sd].view(1, 1, seq, hd) for j in range(3))
            return F.scaled_dot_product_attention(q, k, v)
        return f

    return Case("conv_attn", f"x={'x'.join(map(str, CHAIN_X))},oc={CHAIN_OC},seq={seq},head_dim={hd}",
                [("x", x)], R.ref_chain(x, w, b, seq, hd), graph, lc_eager, torch_fn)


def matmul_sub_case(cc: ColCtx, m) -> Case:
    import lightning_core as lc
    torch = cc.torch
    x = cc.rng.standard_normal((m, m)).astype(np.float32)
    w = (cc.rng.standard_normal((m, m)) / math.sqrt(m)).astype(np.float32)
    c = cc.rng.standard_normal((m, m)).astype(np.float32)

    def lc_eager(L, E, dev):
        tw, tc, tt, out = L(w), L(c), E((m, m)), E((m, m))

        def f(tx):
            lc.matmul2d_into(tx, tw, tt, device=dev)
            lc.matrix_sub_into(tt, tc, out, m, m, device=dev)
        return f, out

    def torch_fn(T):
        tw, tc = T(w), T(c)
        tt, out = torch.empty((m, m), device=tw.device), torch.empty((m, m), device=tw.device)

        def f(tx):
            torch.matmul(tx, tw, out=tt)
            return torch.sub(tt, tc, out=out)
        return f

    return Case("matmul_matrix_sub", f"m=k=n={m}", [("x", x)], R.ref_matmul(x, w) - c,
                lambda g, xv: g.sub(g.matmul(xv, g.constant("w", w)), g.constant("c", c)), lc_eager, torch_fn)


def matmul_bias_relu_case(cc: ColCtx, m, k, n, row="matmul_bias_relu") -> Case:
    import lightning_core as lc
    torch = cc.torch
    x = cc.rng.standard_normal((m, k)).astype(np.float32)
    w = (cc.rng.standard_normal((k, n)) / math.sqrt(k)).astype(np.float32)
    b = (cc.rng.standard_normal(n) * 0.1).astype(np.float32)

    def lc_eager(L, E, dev):
        tw, tb, out = L(w), L(b), E((m, n))
        return (lambda tx: lc.linear_into(tx, tw, out, bias=tb, activation="relu", device=dev)), out

    def torch_fn(T):
        tw, tb = T(w), T(b)
        out = torch.empty((m, n), device=tw.device)

        def f(tx):
            torch.addmm(tb, tx, tw, out=out)
            return torch.relu_(out)
        return f

    return Case(row, f"m={m},k={k},n={n}", [("x", x)], R.ref_relu(R.ref_matmul(x, w) + b),
                lambda g, xv: g.relu(g.bias_add(g.matmul(xv, g.constant("w", w)), g.constant("b", b))),
                lc_eager, torch_fn)


def run_ab(cc: ColCtx, case: Case) -> list[dict]:
    rec = new_record(cc, case.row, case.case)
    cc.ctx.case(f"{case.row} {case.case}")
    st = {}
    col(rec, "lc_eager", lambda: lc_eager_col(cc, rec, case, st))
    free_gpu(cc)
    lc_graph_cols(cc, rec, case, st)
    torch_resident_cols(cc, rec, case)
    if "eager_out" in st and "lc_graph_out" in st:
        rec["notes"].append(f"max |graph - eager| {max_abs_diff(st['lc_graph_out'], st['eager_out']):.1e}")
    g, e = rec.get("lc_graph_dispatches_per_it"), rec.get("lc_eager_dispatches_per_it")
    disp = f"dispatches/it graph {g}, eager {e}"
    if isinstance(g, float) and cc.lc_cuda:
        disp += "; 1-dispatch target " + ("PASS" if g == 1.0 else "MISS")
    notes = "; ".join(rec["notes"])
    fam = FAMILY.get(case.row, case.row)
    return emit(cc, rec, "graph_eager_ab", fam, f"{case.row} {case.case}", [
        ("resident", "lc_eager_ms", "torch", "torch_eager_ms", "ours: eager ops on device tensors + sync"),
        ("graph", "lc_graph_ms", "lc_eager", "lc_eager_ms", "; ".join(filter(None, ["the A/B: ratio = eager / graph",
                                                                                    disp, notes]))),
        ("graph", "lc_graph_ms", "torch", "torch_eager_ms", "peer eager resident + sync"),
        ("graph", "lc_graph_ms", "torch_cuda_graph", "torch_graph_ms", ""),
        ("one_shot", "lc_graph_oneshot_ms", "torch", "torch_oneshot_ms",
         "ours: plan.run NumPy in/out; peer weights resident")])


def run(ctx: Ctx) -> list[dict]:
    unavailable_without_plan_api()
    cc = ColCtx(ctx, seed=20261128)
    small = not cc.lc_cuda and ctx.quick
    rows = []
    for s in CHAIN[:2] if ctx.quick else CHAIN:
        rows += run_ab(cc, conv_attn_case(cc, *s))
    rows += run_ab(cc, matmul_sub_case(cc, SUB_TINY if small else SUB))
    rows += run_ab(cc, matmul_bias_relu_case(cc, *(MBR_TINY if small else MBR)))
    return rows
