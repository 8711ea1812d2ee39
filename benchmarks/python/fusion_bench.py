#!/usr/bin/env python3
"""Fusion benchmark (issue 5): lc.Graph plans with the fusion rules on vs off, against eager lc ops, torch
eager and torch CUDA graphs on the same device in the same process, with the planner's explain() report.

Rows (docs/benchmarks.md, "Graphs and fusion", describes every column):
  matmul_bias_relu  relu(x @ W + b), 512x768x768.
  attention_proj    attention(q, k, v) @ Wo + bo, seq 256 and 1024, head_dim 64, projection 64 -> 64.
  ffn_gelu          gelu(x @ W1 + b1) @ W2 + b2 (erf GELU), batch 512 and 1024, 768 -> 3072 -> 768.
  ln_proj           layer_norm(x, gamma, beta) @ W + b, 1024x1024x1024 and 2048x1024x1024.
Columns, each one iteration ending in one synchronisation, median ms: LC graph fused (g.plan(fuse=True):
upload once, execute(1) per call), LC graph unfused (fuse=False, the same), LC eager resident (device
tensors, the best eager ops: linear_into with its bias/activation epilogue, layer_norm_into,
attention2d_into; + lc.synchronize), torch eager resident (+ sync), torch CUDA graph (replay + sync).
Derived: measured fusion speedup (unfused / fused) next to the cost model's expected speedup (explain():
the rules that fired, their estimated unfused/fused microseconds, and why the others did not fire),
peer/LC ratios, max_abs_diff between the fused and unfused outputs. Targets: ffn_gelu 512x768x3072 and
ln_proj 1024^3, fused graph >= 1.2x faster than torch eager resident.
Every LC output (fused, unfused, eager) is checked once against float64 NumPy (relative error < 1e-4,
NaN fails). TF32 off on both sides. Without CUDA every column runs on the CPU (torch CPU if installed),
torch CUDA graph n/a. Columns are independent: an error is recorded in its row and the run goes on.
Reports: OUT/fusion_bench.{json,md}, OUT/fusion_bench_<row>.csv, rewritten after every row section.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from gpu_bench import ref_attention, ref_gelu, ref_layer_norm  # noqa: E402  (float64 references)
from graph_eager_ab_bench import (Case, col, finish, free_gpu, lc_eager_col, lc_graph_cols,  # noqa: E402
                                  matmul_bias_relu_case, new_row, parse_args, ratio, setup, torch_resident_cols,
                                  winner, write_reports)

import lightning_core as lc  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except Exception:  # torch is an optional peer
    torch = None
    F = None

STEM = "fusion_bench"
ROWS = ["matmul_bias_relu", "attention_proj", "ffn_gelu", "ln_proj"]
SHAPES = {"matmul_bias_relu": [(512, 768, 768)], "attention_proj": [(256, 64), (1024, 64)],
          "ffn_gelu": [(512, 768, 3072), (1024, 768, 3072)], "ln_proj": [(1024, 1024, 1024), (2048, 1024, 1024)]}
TINY = {"matmul_bias_relu": [(32, 48, 64)], "attention_proj": [(32, 16), (64, 16)],
        "ffn_gelu": [(16, 32, 64), (32, 32, 64)], "ln_proj": [(32, 64, 48), (64, 64, 48)]}
TARGETS = {("ffn_gelu", "batch=512,d=768,hidden=3072"), ("ln_proj", "m=1024,k=1024,n=1024")}
COLS = (("LC fused", "lc_fused_ms"), ("LC unfused", "lc_unfused_ms"), ("LC eager", "lc_eager_ms"),
        ("torch eager", "torch_eager_ms"), ("torch graph", "torch_graph_ms"))
LN_EPS = 1e-5


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _d(*arrays):
    return [a.astype(np.float64) for a in arrays]


# ---- cases -------------------------------------------------------------------------------------------------
def attention_proj_case(rng, seq, d):
    q, k, v = _f32(rng, seq, d), _f32(rng, seq, d), _f32(rng, seq, d)
    wo, bo = _f32(rng, d, d, scale=1 / math.sqrt(d)), _f32(rng, d, scale=0.1)
    dq, dk, dv, dw, db = _d(q, k, v, wo, bo)
    ref = ref_attention(dq, dk, dv) @ dw + db

    def graph(g, qv, kv, vv):
        return g.bias_add(g.matmul(g.attention(qv, kv, vv), g.constant("wo", wo)), g.constant("bo", bo))

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

    return Case("attention_proj", f"seq={seq},head_dim={d},proj={d}->{d}", [("q", q), ("k", k), ("v", v)], ref,
                graph, lc_eager, torch_fn)


def ffn_case(rng, bt, d, h):
    x = _f32(rng, bt, d)
    w1, b1 = _f32(rng, d, h, scale=1 / math.sqrt(d)), _f32(rng, h, scale=0.1)
    w2, b2 = _f32(rng, h, d, scale=1 / math.sqrt(h)), _f32(rng, d, scale=0.1)
    dx, dw1, db1, dw2, db2 = _d(x, w1, b1, w2, b2)
    ref = ref_gelu(dx @ dw1 + db1) @ dw2 + db2

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

    return Case("ffn_gelu", f"batch={bt},d={d},hidden={h}", [("x", x)], ref, graph, lc_eager, torch_fn)


def ln_proj_case(rng, m, k, n):
    x = _f32(rng, m, k)
    gamma, beta = (1.0 + _f32(rng, k, scale=0.1)), _f32(rng, k, scale=0.1)
    w, b = _f32(rng, k, n, scale=1 / math.sqrt(k)), _f32(rng, n, scale=0.1)
    dx, dg, dbt, dw, db = _d(x, gamma, beta, w, b)
    ref = (ref_layer_norm(dx, LN_EPS) * dg + dbt) @ dw + db

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

        def f(tx):
            return torch.addmm(tb, F.layer_norm(tx, (k,), tg, tbt, LN_EPS), tw, out=out)
        return f

    return Case("ln_proj", f"m={m},k={k},n={n}", [("x", x)], ref, graph, lc_eager, torch_fn)


# ---- one row -------------------------------------------------------------------------------------------------
def run_fusion(ctx, case):
    row = new_row(ctx, case.row, case.case)
    row["notes"] = []
    st = {}
    lc_graph_cols(ctx, row, case, st, key="lc_fused", fuse=True, oneshot=False, count=True, explain=True)
    lc_graph_cols(ctx, row, case, st, key="lc_unfused", fuse=False, oneshot=False, count=True)
    col(row, "lc_eager", lambda: lc_eager_col(ctx, row, case, st))
    free_gpu()
    torch_resident_cols(ctx, row, case, oneshot=False)
    if "lc_fused_out" in st and "lc_unfused_out" in st:
        row["max_abs_diff"] = harness.max_abs_diff(st["lc_fused_out"], st["lc_unfused_out"])
    if "lc_fused_out" in st and "eager_out" in st:
        row["max_abs_diff_vs_eager"] = harness.max_abs_diff(st["lc_fused_out"], st["eager_out"])
    row["winner"] = winner(row, COLS)
    ratio(row, "measured_speedup", "lc_unfused_ms", "lc_fused_ms")
    ratio(row, "lc_eager_over_lc_fused", "lc_eager_ms", "lc_fused_ms")
    ratio(row, "torch_eager_over_lc_fused", "torch_eager_ms", "lc_fused_ms")
    ratio(row, "torch_graph_over_lc_fused", "torch_graph_ms", "lc_fused_ms")
    ratio(row, "torch_eager_over_lc_eager", "torch_eager_ms", "lc_eager_ms")
    e, m = row.get("expected_speedup"), row.get("measured_speedup")
    if isinstance(e, float) and isinstance(m, float) and math.isfinite(e) and math.isfinite(m) and e > 0:
        row["measured_over_expected"] = m / e
    return finish(row)


# ---- report --------------------------------------------------------------------------------------------------
_ms, _r, _g = harness.ms_cell, (lambda v: harness.fmt_ratio(v)), (lambda v: f"{v:g}")
SPEC = [("case", "case", str), ("LC fused/it", "lc_fused_ms", _ms), ("LC unfused/it", "lc_unfused_ms", _ms),
        ("LC eager/it", "lc_eager_ms", _ms), ("torch eager/it", "torch_eager_ms", _ms),
        ("torch graph/it", "torch_graph_ms", _ms), ("winner", "winner", str),
        ("unfused/fused", "measured_speedup", _r), ("expected", "expected_speedup", _r),
        ("torch eager/LC fused", "torch_eager_over_lc_fused", _r),
        ("torch graph/LC fused", "torch_graph_over_lc_fused", _r), ("LC eager/LC fused", "lc_eager_over_lc_fused", _r),
        ("rules fired", "rules_fired", str), ("steps (fused, unfused)", "steps_pair", str),
        ("dispatches/it fused", "lc_fused_dispatches_per_it", _g),
        ("max_abs_diff (fused-unfused)", "max_abs_diff", lambda v: f"{v:.1e}")]
JSON_ONLY = ("lc_fused_summary", "lc_fused_explain", "lc_unfused_summary")


def decorate(r):
    r["steps_pair"] = f"{harness.cell(r, 'lc_fused_steps')}, {harness.cell(r, 'lc_unfused_steps')}"
    return r


def targets(rows):
    out = []
    for r in rows:
        if (r["row"], r["case"]) in TARGETS:
            v = r.get("torch_eager_over_lc_fused")
            ok = isinstance(v, float) and math.isfinite(v)
            out.append(["LC fused graph >= 1.2x faster than torch eager resident", f"{r['row']} {r['case']}",
                        f"{v:.2f}x" if ok else "n/a", ("PASS" if v >= 1.2 else "MISS") if ok else "n/a"])
    return out


def report(ctx, env, sections):
    write_reports(ctx, env, sections, stem=STEM, spec=SPEC, targets_fn=targets, json_only=JSON_ONLY, intro=[
        "Times in ms (median); '/it' = one iteration ending in one synchronisation. unfused/fused: measured "
        "fusion speedup; expected: the cost model's (explain(), summed over the rules that fired). Peer/LC "
        "ratios > 1: LC faster. Rule reasons and plan summaries: the JSON and the CSV."])


def main(argv=None) -> int:
    args = parse_args(argv, rows=ROWS, doc=__doc__)
    ctx, env = setup(args, STEM)
    if ctx is None:
        return 2
    rng = np.random.default_rng(20261129)
    shapes = SHAPES if (ctx.lc_cuda or not args.quick) else TINY
    if args.quick:
        shapes = {k: v[:1] for k, v in shapes.items()}
    make = {"matmul_bias_relu": lambda s: matmul_bias_relu_case(rng, *s, row="matmul_bias_relu"),
            "attention_proj": lambda s: attention_proj_case(rng, *s),
            "ffn_gelu": lambda s: ffn_case(rng, *s), "ln_proj": lambda s: ln_proj_case(rng, *s)}
    plans = {name: [lambda s=s, name=name: run_fusion(ctx, make[name](s)) for s in shapes[name]] for name in ROWS}
    rows = harness.run_sections(args.rows, plans, STEM, lambda sections: report(ctx, env, sections), decorate)
    return harness.finish_run(STEM, args.out, rows, targets(rows))


if __name__ == "__main__":
    sys.exit(main())
