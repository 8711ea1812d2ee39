"""The large_gemm_sweep and resident suites: resident sessions, graph replay and the conv->attention chain
session against torch on the same device and process.
  large_gemm_sweep  one-shot NumPy in/out (matmul_np_into vs torch from_numpy/.to/@/copy back); the
                    session's sync_into one-shot; per iteration the session's cached batch (resident; graph when
                    it replays a captured graph) vs torch resident loop and torch CUDA graph. The bare kernel's
                    device time (lc.time_device_ms) is measured for the note resident/bare.
  resident          mlp: Linear+ReLU -> Linear on resident tensors, LC eager / LC graph vs torch eager / CUDA
                    graph; conv->attn: ConvAttentionSession latency (one cached replay + sync) vs torch eager /
                    CUDA graph; trace: 256^3 matmul loops with the runtime trace on (ours) vs off (peer
                    lc_trace_off), interleaved pairs (time_pair).
Loop columns are (loops iterations + one sync) / loops. TF32 off on both sides. Without CUDA every column runs
on the CPU (torch CPU if installed), graph columns n/a. Shapes: the seed's on CUDA; CPU-sized on the CPU;
tiny under --quick on the CPU. Tested by tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import math

import numpy as np

from ...testing import refs as R
from ..timer import time_pair
from . import Ctx
from .columns import ColCtx, check, col, emit, free_gpu, looped, nan_array, new_record, torch_cols

GEMM = [(1024, 1024, 1024), (1536, 1536, 1536), (2048, 2048, 2048), (3072, 3072, 3072), (4096, 1024, 4096)]
GEMM_TINY = [(64, 64, 64), (96, 128, 80)]
GEMM_CPU = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024)]
MLP = [(256, 512, 1024, 256), (512, 1024, 2048, 512), (1024, 1024, 4096, 1024), (2048, 1024, 2048, 1024)]
MLP_TINY = [(16, 32, 64, 16), (32, 64, 128, 32)]
MLP_CPU = [(256, 512, 1024, 256), (512, 1024, 2048, 512)]
CHAIN = [(48, 48), (96, 48), (192, 48), (192, 8)]
CHAIN_X, CHAIN_OC = (1, 3, 8, 8), 16  # x [1,3,8,8], w [16,3,3,3], b [16], stride 1, pad 1


def _shapes(ctx: Ctx, cc: ColCtx, gpu, tiny, cpu):
    """The seed's shapes on CUDA, CPU-sized ones on the CPU (tiny under --quick); --quick keeps the first 2."""
    full = gpu if cc.lc_cuda else tiny if ctx.quick else cpu
    return full[:2] if ctx.quick else full


def _mm_into(*a, **k):
    import lightning_core as lc
    return (getattr(lc, "matmul_into", None) or lc.matmul2d_into)(*a, **k)


# ---- large GEMM sweep ------------------------------------------------------------------------------------
def run_gemm(cc: ColCtx, m, k, n) -> list[dict]:
    import lightning_core as lc
    torch = cc.torch
    rec = new_record(cc, "large_gemm_sweep", f"m={m},k={k},n={n}")
    dev = cc.lc_dev
    a, b = cc.rng.random((m, k), dtype=np.float32), cc.rng.random((k, n), dtype=np.float32)
    ref = R.ref_matmul(a, b)
    rec["loops"] = cc.loop_range[0]
    cc.ctx.case(f"matmul {rec['case']}")

    def bare():
        ta, tb, tc = lc.Tensor(a, device=dev), lc.Tensor(b, device=dev), lc.Tensor(nan_array(m, n), device=dev)
        _mm_into(ta, tb, tc, device=dev)
        lc.synchronize(dev)
        check(rec, "bare matmul_into", tc.numpy(), ref)
        rec["loops"] = loops = cc.loops_for(lambda: (_mm_into(ta, tb, tc, device=dev), lc.synchronize(dev)))
        many = looped(lambda: _mm_into(ta, tb, tc, device=dev), loops, lambda: None)
        rec["lc_bare_ms"] = cc.timed(many, per=loops, sample_ms=lambda run: lc.time_device_ms(run, device=dev))

    def oneshot():
        out = nan_array(m * n)
        lc.matmul_np_into(a.ravel(), b.ravel(), out, m, k, n, device=dev)
        rec["path"] = lc.last_dispatch()["path"]
        check(rec, "one-shot matmul_np_into", out, ref)
        rec["lc_oneshot_ms"] = cc.timed(lambda: lc.matmul_np_into(a.ravel(), b.ravel(), out, m, k, n, device=dev))

    st = {}

    def session():
        if "sess" not in st:
            st["sess"] = lc.MatMulResidentSession(m, k, n, device=dev)
        return st["sess"]

    def resident():
        sess = session()
        out = nan_array(m, n)
        sess.start_into(a, b, out)
        check(rec, "session start_into", out, ref)
        sess.run_batch_sync_cached_no_download(2)
        out2 = nan_array(m * n)
        sess.download_into(out2)
        check(rec, "session cached + download_into", out2, ref)
        loops = rec["loops"]
        rec["lc_resident_ms"] = cc.timed(lambda: sess.run_batch_sync_cached_no_download(loops), per=loops)
        rec["lc_uses_graph"] = getattr(sess, "uses_graph", "?")  # True once a captured graph has replayed

    def session_oneshot():
        sess, out = session(), nan_array(m, n)
        sess.sync_into(a, b, out)
        check(rec, "session sync_into", out, ref)
        rec["lc_session_oneshot_ms"] = cc.timed(lambda: sess.sync_into(a, b, out))

    def t_oneshot():
        cc.need_torch()
        out = np.empty((m, n), np.float32)
        to = torch.from_numpy(out)
        f = lambda: to.copy_(torch.from_numpy(a).to(cc.tdev) @ torch.from_numpy(b).to(cc.tdev))  # noqa: E731
        f()
        check(rec, "torch one-shot", out, ref)
        rec["torch_oneshot_ms"] = cc.timed(f)

    def t_build():
        ta, tb, tc = cc.T(a), cc.T(b), torch.empty((m, n), device=cc.tdev)
        return (lambda: torch.matmul(ta, tb, out=tc)), (lambda t: t.cpu().numpy())

    for name, fn in (("lc_bare", bare), ("lc_oneshot", oneshot), ("lc_resident", resident),
                     ("lc_session_oneshot", session_oneshot), ("torch_oneshot", t_oneshot)):
        col(rec, name, fn)
        if name == "lc_session_oneshot":
            st.clear()
        free_gpu(cc)
    torch_cols(cc, rec, t_build, ref, "torch_resident_ms")
    graph = rec.get("lc_uses_graph") is True
    res = rec.get("lc_resident_ms", float("nan")) / rec.get("lc_bare_ms", float("nan"))
    note = f"ours: session cached batch per iteration (uses_graph={rec.get('lc_uses_graph')}); " \
           f"resident/bare kernel {res:.3f}x"
    case = f"matmul {rec['case']}"
    rows = emit(cc, rec, "large_gemm_sweep", "gemm", case, [
        ("one_shot", "lc_oneshot_ms", "torch", "torch_oneshot_ms", "matmul_np_into vs torch from_numpy/.to/@/copy back"),
        ("resident", "lc_resident_ms", "torch", "torch_resident_ms", note),
        ("graph" if graph else "resident", "lc_resident_ms", "torch_cuda_graph", "torch_graph_ms", note)])
    rows += emit(cc, rec, "large_gemm_sweep", "gemm (session one-shot)", case + " session.sync_into", [
        ("one_shot", "lc_session_oneshot_ms", "torch", "torch_oneshot_ms", "")])
    return rows


def large_gemm_sweep(ctx: Ctx) -> list[dict]:
    cc = ColCtx(ctx)
    return [r for s in _shapes(ctx, cc, GEMM, GEMM_TINY, GEMM_CPU) for r in run_gemm(cc, *s)]


# ---- MLP forward on resident tensors -------------------------------------------------------------------
def run_mlp(cc: ColCtx, bt, i, h, o) -> list[dict]:
    import lightning_core as lc
    torch = cc.torch
    rec = new_record(cc, "mlp_resident", f"batch={bt},in={i},hidden={h},out={o}")
    dev = cc.lc_dev
    cc.ctx.case(f"mlp {rec['case']}")
    f32 = lambda *s, scale=1.0: (cc.rng.standard_normal(s) * scale).astype(np.float32)  # noqa: E731
    x, w1, b1 = f32(bt, i), f32(i, h, scale=1 / math.sqrt(i)), f32(h, scale=0.1)
    w2, b2 = f32(h, o, scale=1 / math.sqrt(h)), f32(o, scale=0.1)
    ref = R.ref_relu(R.ref_matmul(x, w1) + b1) @ w2.astype(np.float64) + b2
    rec["loops"] = cc.loop_range[0]

    def lc_tensors():
        t = [lc.Tensor(v, device=dev) for v in (x, w1, b1, w2, b2)]
        th, ty = lc.Tensor((bt, h), device=dev), lc.Tensor(nan_array(bt, o), device=dev)

        def fwd():
            lc.linear_into(t[0], t[1], th, bias=t[2], activation="relu", device=dev)
            lc.linear_into(th, t[3], ty, bias=t[4], activation="none", device=dev)
        return fwd, ty

    def lc_eager():
        fwd, ty = lc_tensors()
        fwd()
        lc.synchronize(dev)
        rec["path"] = lc.last_dispatch()["path"]
        check(rec, "lc eager", ty.numpy(), ref)
        rec["loops"] = loops = cc.loops_for(lambda: (fwd(), lc.synchronize(dev)))
        rec["lc_eager_ms"] = cc.timed(looped(fwd, loops, lambda: lc.synchronize(dev)), per=loops)

    def lc_graph():
        cc.need_lc_graph()
        fwd, ty = lc_tensors()
        fwd()  # warm-up outside capture (library workspaces, heuristics)
        lc.synchronize("cuda")
        g = lc.capture_graph(fwd, device="cuda")
        ty.copy_from(nan_array(bt, o))  # so that the check below sees what the replay wrote
        lc.synchronize("cuda")
        g.replay(1)
        lc.synchronize("cuda")
        check(rec, "lc graph replay", ty.numpy(), ref)
        loops = rec["loops"]
        rec["lc_graph_ms"] = cc.timed(lambda: (g.replay(loops), lc.synchronize("cuda")), per=loops)

    def t_build():
        t = [cc.T(v) for v in (x, w1, b1, w2, b2)]
        th, ty = torch.empty((bt, h), device=cc.tdev), torch.empty((bt, o), device=cc.tdev)

        def fwd():
            torch.addmm(t[2], t[0], t[1], out=th)
            torch.relu_(th)
            return torch.addmm(t[4], th, t[3], out=ty)
        return fwd, (lambda y: y.cpu().numpy())

    for name, fn in (("lc_eager", lc_eager), ("lc_graph", lc_graph)):
        col(rec, name, fn)
        free_gpu(cc)
    torch_cols(cc, rec, t_build, ref, "torch_eager_ms")
    return emit(cc, rec, "resident", "mlp", f"mlp {rec['case']}", [
        ("resident", "lc_eager_ms", "torch", "torch_eager_ms", f"per iteration of {rec.get('loops')} + one sync"),
        ("graph", "lc_graph_ms", "torch_cuda_graph", "torch_graph_ms", "")])


# ---- conv -> attention chain ------------------------------------------------------------------------------
def run_chain(cc: ColCtx, seq, hd) -> list[dict]:
    import lightning_core as lc
    F = cc.F
    rec = new_record(cc, "conv_attn_chain", f"x={'x'.join(map(str, CHAIN_X))},oc={CHAIN_OC},seq={seq},head_dim={hd}")
    dev = cc.lc_dev
    cc.ctx.case(f"conv_attn {rec['case']}")
    n, c, hh, ww = CHAIN_X
    x = cc.rng.random(CHAIN_X, dtype=np.float32)
    w = (cc.rng.random((CHAIN_OC, c, 3, 3), dtype=np.float32) - 0.5) * 0.5
    b = (cc.rng.random(CHAIN_OC, dtype=np.float32) - 0.5) * 0.1
    ref = R.ref_chain(x, w, b, seq, hd)
    st = {}

    def lc_latency():
        st["sess"] = sess = lc.ConvAttentionSession(n, c, hh, ww, CHAIN_OC, seq, hd, stride_h=1, stride_w=1, pad_h=1,
                                                    pad_w=1, causal=False, device=dev)
        out = nan_array(seq, hd)
        sess.start_into(x, w, b, out)
        check(rec, "session start_into", out, ref)
        sess.run_batch_sync_cached_no_download(1)
        out2 = nan_array(seq, hd)
        sess.download_into(out2)
        check(rec, "session cached + download_into", out2, ref)
        rec["lc_latency_ms"] = cc.timed(lambda: sess.run_batch_sync_cached_no_download(1))
        rec["lc_uses_graph"] = getattr(sess, "uses_graph", "?")

    sd, conv_numel = seq * hd, CHAIN_OC * hh * ww * n  # stride 1, pad 1: same spatial size
    reps = -(-3 * sd // conv_numel)

    def t_build():  # one iteration per timed call (no "loops"): chain + sync
        tx, tw, tb = cc.T(x), cc.T(w), cc.T(b)

        def fwd():
            y = F.relu(F.conv2d(tx, tw, tb, stride=1, padding=1)).reshape(-1)
            qkv = y.repeat(reps)[:3 * sd]
            q, k, v = (qkv[j * sd:(j + 1) * sd].view(1, 1, seq, hd) for j in range(3))
            return F.scaled_dot_product_attention(q, k, v)
        return fwd, (lambda o: o[0, 0].cpu().numpy())

    col(rec, "lc_latency", lc_latency)
    st.clear()
    free_gpu(cc)
    torch_cols(cc, rec, t_build, ref, "torch_eager_ms")
    graph = rec.get("lc_uses_graph") is True
    note = f"ours: ConvAttentionSession cached replay + sync (uses_graph={rec.get('lc_uses_graph')})"
    return emit(cc, rec, "resident", "conv->attn", f"conv_attn {rec['case']}", [
        ("resident", "lc_latency_ms", "torch", "torch_eager_ms", note),
        ("graph" if graph else "resident", "lc_latency_ms", "torch_cuda_graph", "torch_graph_ms", note)])


# ---- runtime trace overhead -----------------------------------------------------------------------------------
def run_trace(cc: ColCtx, dev, resident) -> list[dict]:
    import lightning_core as lc
    loops, pairs, nn = (16, 9, 256) if cc.quick else (64, 31, 256)
    kind = "device Tensors, matmul_into x loops + one sync" if resident else "NumPy in/out matmul2d_into"
    rec = new_record(cc, "trace_overhead", f"{loops} x matmul 256^3 on {dev} ({kind})")
    rec["lc_device"] = dev
    cc.ctx.case(f"trace {rec['case']}")
    a, b = cc.rng.random((nn, nn), dtype=np.float32), cc.rng.random((nn, nn), dtype=np.float32)
    ref = R.ref_matmul(a, b)

    def measure():
        cc.budget()
        if resident:
            ta, tb, tc = lc.Tensor(a, device="cuda"), lc.Tensor(b, device="cuda"), lc.Tensor((nn, nn), device="cuda")
            fn = looped(lambda: _mm_into(ta, tb, tc, device="cuda"), loops, lambda: lc.synchronize("cuda"))
            fn()
            check(rec, "matmul_into", tc.numpy(), ref)
        else:
            out = nan_array(nn, nn)
            fn = looped(lambda: lc.matmul2d_into(a, b, out, device=dev), loops, lambda: None)
            fn()
            check(rec, "matmul2d_into", out, ref)

        def traced(flag):
            def run():
                lc.runtime_trace_clear()
                lc.runtime_trace_enable(flag)
                fn()
                lc.runtime_trace_enable(False)
            return run
        try:
            t = time_pair(traced(False), traced(True), pairs, warmup=cc.tkw["warmup"], samples=1, inner=1,
                          settle_s=cc.tkw["settle_s"], max_s=None)
            traced(True)()
            events = lc.runtime_trace_stats().get("events", -1)
        finally:
            lc.runtime_trace_enable(False)
            lc.runtime_trace_clear()
        rec["trace_off_ms"], rec["trace_on_ms"] = t["a_ms"] / loops, t["b_ms"] / loops
        if events < loops:
            rec["errors"].append(f"trace recorded {events} events per run of {loops} ops")
        rec["note"] = f"{pairs} interleaved pairs; on/off per pair (median) {100 * (t['b_over_a'] - 1):+.2f}% " \
                      f"(target <= 5%); {events} events per traced run"

    col(rec, "trace", measure)
    mode = "resident" if resident else "one_shot"
    return emit(cc, rec, "resident", "trace", f"trace {rec['case']}", [
        (mode, "trace_on_ms", "lc_trace_off", "trace_off_ms", rec.get("note", ""))])


def resident(ctx: Ctx) -> list[dict]:
    cc = ColCtx(ctx)
    rows = [r for s in _shapes(ctx, cc, MLP, MLP_TINY, MLP_CPU) for r in run_mlp(cc, *s)]
    for s in CHAIN[:2] if ctx.quick else CHAIN:
        rows += run_chain(cc, *s)
    for d in ([("cuda", True), ("cuda", False), ("cpu", False)] if cc.lc_cuda else [("cpu", False)]):
        rows += run_trace(cc, *d)
    return rows


