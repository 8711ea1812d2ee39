"""Rows against torch CUDA on the same GPU in the same process (the seed's kernel, GEMM, pipeline, model and
ML cases of shared/baselines/peer_baseline_h200_torch2.11.json). Per case, like for like:
  one_shot  NumPy in -> NumPy out. ours lc.op(ndarrays, device="cuda"); torch from_numpy(...).to("cuda") ->
            op -> .cpu().numpy(). The note adds our device="auto" time and where it ran.
  resident  inputs already on the GPU, call + synchronize, vs torch eager (peer torch_cuda) and vs torch's
            CUDA-graph replay + sync (peer torch_cuda_graph).
TF32 off on both sides except the gemm_tf32 group. Every output (one-shot and resident) is checked against
the float64 reference, on 256 sampled rows where the output has more than 2048 rows that follow the first
input's (GEMM, attention, linear, FFN, LN->proj, MLP). --quick: fewer samples and the smaller shapes.
Tested (CPU: unavailable) by tests/python/test_bench_suites.py; runs on the GPU machine.
"""
from __future__ import annotations

import time

import numpy as np

from .. import harness as H
from ...testing import refs as R
from ...testing import validate
from ..timer import time_call
from . import Ctx, SuiteUnavailable
from .common import last_path, torch_mod, torch_version, work

ROW_WISE = {"attention2d", "matmul2d", "matmul2d_tf32", "ffn_gelu", "ln_proj", "mlp_relu", "linear"}
SAMPLE_ABOVE, CHECK_ROWS = 2048, 256
FAMILY = {"attention2d": "attention", "conv2d_relu_3x3": "conv", "matmul2d": "gemm", "matmul2d_tf32": "gemm_tf32",
          "ffn_gelu": "ffn", "ln_proj": "ln->proj", "mlp_relu": "mlp"}


def cases(lc, torch, F, rng, quick):
    """(group, bench, shape, make inputs, lc op, torch op, float64 reference, work (flops, bytes from the op
    table), note) per case."""
    r = lambda *s: rng.random(s, dtype=np.float32)  # noqa: E731  (the baseline's distribution)
    q = (lambda xs, n: xs[:n]) if quick else (lambda xs, n: xs)
    out = []
    for s, d in q([(8, 16), (8, 32), (12, 12), (96, 48), (256, 64), (512, 64), (1024, 64), (2048, 64), (4096, 64),
                   (8192, 64), (16384, 64)], 7):
        out.append(("kernel", "attention2d", f"seq={s},head_dim={d}", lambda s=s, d=d: (r(s, d), r(s, d), r(s, d)),
                    lambda q, k, v, dev: lc.attention2d(q, k, v, False, dev),
                    lambda q, k, v: F.scaled_dot_product_attention(q[None, None], k[None, None], v[None, None])[0, 0],
                    R.ref_attention, work(("attention_forward", [(s, d)] * 3)), ""))
    for n, c, h, w, oc in q([(1, 3, 16, 16, 16), (1, 3, 24, 24, 16), (2, 3, 16, 16, 16), (1, 3, 28, 28, 16),
                             (1, 3, 32, 32, 16), (2, 3, 32, 32, 16), (16, 3, 64, 64, 16), (16, 16, 32, 32, 32)], 6):
        out.append(("kernel", "conv2d_relu_3x3", f"n={n},c={c},h={h},w={w},oc={oc}",
                    lambda n=n, c=c, h=h, w=w, oc=oc: (r(n, c, h, w), r(oc, c, 3, 3), r(oc)),
                    lambda x, wt, b, dev: lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1, dev, apply_relu=True),
                    lambda x, wt, b: F.relu(F.conv2d(x, wt, b, stride=1, padding=1)),
                    lambda x, wt, b: R.ref_conv2d(x, wt, b, 1, 1, 1, 1, True),
                    work(("conv2d_nchw", [(n, c, h, w), (oc, c, 3, 3), (oc,)], dict(pad_h=1, pad_w=1))), ""))
    for m, k, n in q([(256, 256, 256), (896, 896, 896), (1024, 1024, 1024), (1536, 1536, 1536), (2048, 2048, 2048),
                      (3072, 3072, 3072), (4096, 1024, 4096)], 3):
        out.append(("gemm", "matmul2d", f"m={m},k={k},n={n}", lambda m=m, k=k, n=n: (r(m, k), r(k, n)),
                    lambda a, b, dev: lc.matmul2d(a, b, dev), lambda a, b: a @ b, R.ref_matmul, work(("matmul", [(m, k), (k, n)])), ""))
    for m in q((4096, 8192), 1):
        out.append(("gemm_tf32", "matmul2d_tf32", f"m={m},k={m},n={m}", lambda m=m: (r(m, m), r(m, m)),
                    lambda a, b, dev: lc.matmul2d(a, b, dev), lambda a, b: a @ b, R.ref_matmul, work(("matmul", [(m, m), (m, m)])),
                    "TF32 on both sides (lc.set_matmul_precision('tf32'), torch allow_tf32=True)"))
    for b, dm, dff in q([(512, 768, 3072), (1024, 768, 3072)], 1):
        out.append(("pipeline", "ffn_gelu", f"batch={b},d_model={dm},d_ff={dff}",
                    lambda b=b, dm=dm, dff=dff: (r(b, dm), r(dm, dff), r(dff), r(dff, dm), r(dm)),
                    lambda x, w1, b1, w2, b2, dev: lc.linear(lc.linear(x, w1, b1, "gelu", dev), w2, b2, "none", dev),
                    lambda x, w1, b1, w2, b2: F.gelu(x @ w1 + b1) @ w2 + b2,
                    lambda x, w1, b1, w2, b2: R.ref_gelu(x @ w1 + b1) @ w2 + b2,
                    work(("linear", [(b, dm), (dm, dff), (dff,)]), ("linear", [(b, dff), (dff, dm), (dm,)])),
                    "two lc.linear calls (bias in the cuBLASLt epilogue, erf GELU as one extra pass)"))
    for b, dm, o in q([(1024, 1024, 1024), (2048, 1024, 1024)], 1):
        out.append(("pipeline", "ln_proj", f"batch={b},d_model={dm},out={o}",
                    lambda b=b, dm=dm, o=o: (r(b, dm), r(dm, o), r(o)),
                    lambda x, w, bias, dev: lc.linear(lc.layer_norm(x, device=dev), w, bias, "none", dev),
                    lambda x, w, bias: F.layer_norm(x, x.shape[-1:]) @ w + bias,
                    lambda x, w, bias: R.ref_layer_norm(x) @ w + bias,
                    work(("layer_norm", [(b, dm)]), ("linear", [(b, dm), (dm, o), (o,)])),
                    "layer_norm + linear, two launches"))
    for b, i, h, o in q([(1024, 1024, 2048, 1024), (2048, 1024, 2048, 1024)], 1):
        out.append(("model", "mlp_relu", f"batch={b},in={i},hidden={h},out={o}",
                    lambda b=b, i=i, h=h, o=o: (r(b, i), r(i, h), r(h, o)),
                    lambda x, w1, w2, dev: lc.matmul2d(lc.linear(x, w1, None, "relu", dev), w2, dev),
                    lambda x, w1, w2: torch.relu(x @ w1) @ w2, lambda x, w1, w2: np.maximum(x @ w1, 0) @ w2,
                    work(("linear", [(b, i), (i, h)]), ("matmul", [(b, h), (h, o)])),
                    "linear with the ReLU epilogue, then matmul: two launches"))
    for b, i, o in q([(1024, 1024, 512), (2048, 1024, 512), (4096, 1024, 1024)], 1):
        out.append(("ml", "linear", f"batch={b},in={i},out={o}", lambda b=b, i=i, o=o: (r(b, i), r(i, o)),
                    lambda a, w, dev: lc.matmul2d(a, w, dev), lambda a, w: a @ w, R.ref_matmul,
                    work(("matmul", [(b, i), (i, o)])), ""))
    for rr, cc in q([(512, 512), (1024, 1024), (2048, 1024)], 1):
        out.append(("ml", "matrix_sub", f"rows={rr},cols={cc}", lambda rr=rr, cc=cc: (r(rr, cc), r(rr, cc)),
                    lambda a, b, dev, rr=rr, cc=cc: lc.matrix_sub(a, b, rr, cc, dev), torch.sub, lambda a, b: a - b,
                    work(("matrix_sub", [(rr, cc)] * 2)), ""))
    for n in q([65536, 262144, 1048576, 4194304], 2):
        out.append(("ml", "vector_add", f"n={n}", lambda n=n: (r(n), r(n)),
                    lambda a, b, dev: lc.vector_add(a, b, dev), torch.add, lambda a, b: a + b,
                    work(("vector_add", [(n,), (n,)])), ""))
    return out


def torch_graph(torch, fn):
    """Captures fn() (torch ops on CUDA tensors) into a CUDAGraph after a side-stream warm-up. Returns
    (graph, the captured call's static output)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = fn()
    torch.cuda.synchronize()
    return g, out


def run_groups(ctx: Ctx, suite: str, groups: set[str]) -> list[dict]:
    import lightning_core as lc
    torch, F = torch_mod()
    if not lc.cuda_available():
        raise SuiteUnavailable("no usable CUDA GPU (lc.cuda_available() is False)")
    if torch is None or not torch.cuda.is_available():
        ctx.note("torch CUDA rows skipped: torch with CUDA (the GPU peer) is not installed")
        return []
    ctx.need_dtype("float32")
    dev = torch.device("cuda")
    tkw = dict(warmup=5, samples=15, min_sample_s=2e-4, settle_s=0.02, max_s=1.0) if ctx.quick else \
        dict(warmup=20, samples=41, min_sample_s=5e-4, settle_s=0.02, max_s=2.0)
    tv = torch_version()
    rng, check_rng = np.random.default_rng(20261127), np.random.default_rng(20261128)
    rows: list[dict] = []
    try:
        for group, bench, shape, make, lc_op, t_op, ref_fn, wk, note in cases(lc, torch, F, rng, ctx.quick):
            if group not in groups:
                continue
            case = f"{bench} {shape}"
            ctx.case(case)
            tf32 = group == "gemm_tf32"
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            lc.set_matmul_precision("tf32" if tf32 else "highest")
            arrs = make()
            picked = None  # float64 reference on sampled rows where it would take seconds whole
            if bench in ROW_WISE and arrs[0].shape[0] > SAMPLE_ABOVE:
                picked = np.sort(check_rng.choice(arrs[0].shape[0], CHECK_ROWS, replace=False))
                ref = ref_fn(arrs[0][picked].astype(np.float64), *[a.astype(np.float64) for a in arrs[1:]])
            else:
                ref = ref_fn(*[a.astype(np.float64) for a in arrs])
            pick = (lambda o: np.asarray(o)[picked]) if picked is not None else np.asarray
            time.sleep(0.2)  # settle once per case: NumPy's BLAS threads spin after the float64 reference
            tol = 5e-3 if tf32 else 1e-4
            err, _ = validate(pick(lc_op(*arrs, "cuda")), ref, tol)
            path, _ = last_path()
            one = time_call(lambda: lc_op(*arrs, "cuda"), **tkw)
            auto = time_call(lambda: lc_op(*arrs, "auto"), **tkw)
            auto_dev = lc.last_dispatch()["selected"]
            dts = [lc.Tensor(a, device="cuda") for a in arrs]
            lc.synchronize("cuda")
            res_dev = lc_op(*dts, "cuda")
            lc.synchronize("cuda")
            err = max(err, validate(pick(res_dev.numpy()), ref, tol)[0])

            def lc_res():
                lc_op(*dts, "cuda")
                lc.synchronize("cuda")
            resident = time_call(lc_res, **tkw)
            tds = [torch.from_numpy(a).to(dev) for a in arrs]

            def t_one():
                return t_op(*[torch.from_numpy(a).to(dev) for a in arrs]).cpu().numpy()

            def t_res():
                t_op(*tds)
                torch.cuda.synchronize()
            t_one_t, t_res_t = time_call(t_one, **tkw), time_call(t_res, **tkw)
            try:
                g, _ = torch_graph(torch, lambda: t_op(*tds))

                def t_graph():
                    g.replay()
                    torch.cuda.synchronize()
                graph_ms = time_call(t_graph, **tkw)["median_ms"]
            except Exception as e:  # noqa: BLE001
                graph_ms = float("nan")
                ctx.note(f"{case}: torch CUDA graph: {type(e).__name__}: {e}")
            st = "ok" if err < tol else "FAILED"
            base = "; ".join(filter(None, [note, f"auto one-shot {auto['median_ms']:.4f} ms on {auto_dev}"]))
            kw = dict(shape=shape, dtype="float32", device="cuda", rel_err=err, peer_version=tv, status=st, path=path,
                      **wk)
            fam = FAMILY.get(bench, bench)
            rows.append(H.make_row(suite, fam, case, "one_shot", one["median_ms"], "torch_cuda", t_one_t["median_ms"],
                                   cv=one["cv"], peer_cv=t_one_t["cv"], notes=base, **kw))
            rows.append(H.make_row(suite, fam, case, "resident", resident["median_ms"], "torch_cuda",
                                   t_res_t["median_ms"], cv=resident["cv"], peer_cv=t_res_t["cv"], notes=note, **kw))
            rows.append(H.make_row(suite, fam, case, "resident", resident["median_ms"], "torch_cuda_graph", graph_ms,
                                   cv=resident["cv"], notes="ours: eager resident + sync; peer: CUDA graph replay + sync",
                                   **kw))
            dts = tds = res_dev = None  # free the device copies before the next case
    finally:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        lc.set_matmul_precision("highest")
    return rows
