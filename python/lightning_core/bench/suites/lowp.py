"""The lowp suite (issue 14's targets): float16 / bfloat16 work against our own float32 and the peers.

  CPU   matmul bf16 and f16 (NumPy ml_dtypes/float16 in and out) vs our float32 matmul (peer lc_float32,
        target >= 2x for bf16 on a CPU with AVX-512 BF16 or AMX-BF16) and vs torch CPU in the same dtype
        (target >= 1.0x); lc.cast float32 <-> bfloat16 of a large array vs the machine's copy bandwidth
        (peer copy_bw: the time a copy of the same bytes takes, measured in the run; target >= 0.8) and vs
        ml_dtypes' astype.
  CUDA  bf16 / f16 GEMM on resident tensors vs torch (target >= 0.97x); linear bf16 with bias + GELU(tanh)
        epilogue vs F.gelu(F.linear(...)) (target >= 1.2x); decode-shape linear bf16 m = 1 (GPT-2 qkv with bias +
        GELU(tanh), LLaMA-1.1B MLP up, GPT-2 lm_head) as captured graphs over weight copies (w from memory) vs
        torch's graph-captured F.linear (target >= 1.0x) and vs our cuBLASLt path (LC_GEMV=0), GB/s of w; bf16 vector_add, relu, gelu (both forms) and layer_norm of 64M elements vs
        torch (target >= 1.0x) and vs the card's device copy bandwidth (target >= 0.9). Device time by events
        on both sides. Rows whose op has no low-precision kernel yet say so and are skipped.
Every row: float64 reference from the rounded inputs, tolerance from the dtype's unit roundoff and the
reduction length (testing.refs), flops/bytes from the op table; the note gives TFLOP/s or GB/s and the
target with its shortfall when missed. Tested by tests/python/test_bench_suites.py (CPU, --quick).
"""
from __future__ import annotations

import numpy as np

from .. import harness as H
from ...testing import lowp_matmul_excess, unit_roundoff
from ..timer import time_call
from . import Ctx, SuiteUnavailable
from .common import timing, torch_graph_time, torch_mod, torch_version, work



def _np_dtype(name):
    from ...dtypes import numpy_dtype
    return numpy_dtype(name)


def _target(value, target, what):
    """'target >= X: PASS' or '... MISS by N%' for the note."""
    if not np.isfinite(value):
        return f"target {what} >= {target:g}: n/a"
    if value >= target:
        return f"target {what} >= {target:g}: PASS ({value:.2f})"
    return f"target {what} >= {target:g}: MISS by {100.0 * (1.0 - value / target):.0f}% ({value:.2f})"


def _row(rows, ctx, family, case, shape, dtype, device, ours, peer, peer_ms, err, wk, note, peer_version="",
         mode=None):
    ctx.case(f"{case} vs {peer}")
    mode = mode or ("resident" if device == "cuda" else "one_shot")
    rows.append(H.make_row("lowp", family, case, mode, ours["median_ms"],
                           peer, peer_ms, shape=shape, dtype=dtype, device=device, cv=ours["cv"],
                           rel_err=err, status="ok" if err <= 1.0 else "FAILED", peer_version=peer_version,
                           notes=note, **wk))


def _cpu(ctx: Ctx, rows: list) -> None:
    import lightning_core as lc
    torch, _ = torch_mod()
    tkw = timing(ctx)
    rng = np.random.default_rng(ctx.seed)
    n = 512 if ctx.quick else 1024
    f32 = (rng.standard_normal((n, n)) / 4).astype(np.float32), (rng.standard_normal((n, n)) / 4).astype(np.float32)
    t32 = time_call(lambda: lc.matmul2d(f32[0], f32[1], "cpu"), **tkw)
    feats = lc.cpu_features().split()
    native = "avx512_bf16" in feats or "amx_bf16" in feats
    for name in ("bfloat16", "float16"):
        a, b = (lc.cast(x, name) for x in f32)
        try:
            got = lc.matmul2d(a, b, "cpu")
        except TypeError as e:  # the binding does not take this dtype here
            ctx.note(f"matmul {name}: {e}")
            continue
        if got.dtype != _np_dtype(name):  # computed in float32 by an older binding: not this row's subject
            ctx.note(f"matmul {name}: the binding returned {got.dtype}; rows skipped")
            continue
        path = lc.last_dispatch()["path"]
        err = lowp_matmul_excess(got, a, b, name)
        ours = time_call(lambda: lc.matmul2d(a, b, "cpu"), **tkw)
        wk = work(("matmul", [(n, n), (n, n)]), dtype=name)
        tf = 2.0 * n ** 3 / ours["median_s"] / 1e12
        shape = f"m={n},k={n},n={n}"
        vs32 = t32["median_ms"] / ours["median_ms"]
        note = f"{tf:.3f} TFLOP/s, path {path}; " + (
            _target(vs32, 2.0, f"{name} vs our float32") if name == "bfloat16" and native
            else f"vs our float32 {vs32:.2f}x (no bf16 dot-product ISA here: informational)")
        _row(rows, ctx, "cpu_matmul", f"matmul {name} {shape}", shape, name, "cpu", ours, "lc_float32",
             t32["median_ms"], err, wk, note)
        if torch is not None:
            ta, tb = (torch.from_numpy(lc.cast(x, "float32")).to(getattr(torch, name)) for x in (a, b))
            tt = time_call(lambda: torch.matmul(ta, tb), **tkw)
            r = tt["median_ms"] / ours["median_ms"]
            _row(rows, ctx, "cpu_matmul", f"matmul {name} {shape}", shape, name, "cpu", ours, "torch_cpu",
                 tt["median_ms"], err, wk, f"{tf:.3f} TFLOP/s; " + _target(r, 1.0, f"{name} vs torch CPU"),
                 torch_version())
    # conversions at memory bandwidth
    m = (4 << 20) if ctx.quick else (64 << 20)
    x = rng.standard_normal(m).astype(np.float32)
    dst = np.empty_like(x)
    copy = time_call(lambda: np.copyto(dst, x), **tkw)  # 8 bytes per element (read + write)
    bw = 8.0 * m / copy["median_s"]
    xb = lc.cast(x, "bfloat16")
    for src, name, nbytes in ((x, "bfloat16", 6.0 * m), (xb, "float32", 6.0 * m)):
        got = lc.cast(src, name)
        want = src.astype(_np_dtype(name))
        exact = got.view(np.uint8).tobytes() == want.view(np.uint8).tobytes()
        into = np.empty(src.shape, _np_dtype(name))  # like the copy: into an output that exists (no page faults)
        ours = time_call(lambda: lc.cast(src, name, out=into), **tkw)
        peer_ms = nbytes / bw * 1e3
        frac = peer_ms / ours["median_ms"]
        case = f"cast {src.dtype}->{name} n={m}"
        wk = {"flops": float("nan"), "nbytes": nbytes}
        note = (f"{nbytes / ours['median_s'] / 1e9:.1f} GB/s of {bw / 1e9:.1f} GB/s copy bandwidth; "
                + _target(frac, 0.8, "fraction of copy bandwidth"))
        _row(rows, ctx, "cpu_cast", case, f"n={m}", name, "cpu", ours, "copy_bw", peer_ms, 0.0 if exact else 2.0, wk,
             note)
        nd = time_call(lambda: src.astype(_np_dtype(name)), **tkw)
        _row(rows, ctx, "cpu_cast", case, f"n={m}", name, "cpu", ours, "numpy_ml_dtypes", nd["median_ms"],
             0.0 if exact else 2.0, wk, "bit-exact" if exact else "NOT bit-exact")


def _events(torch):
    def sample_ms(run):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        run()
        e.record()
        e.synchronize()
        return s.elapsed_time(e)
    return sample_ms


def _cuda(ctx: Ctx, rows: list) -> None:
    import lightning_core as lc
    torch, F = torch_mod()
    if torch is None or not torch.cuda.is_available():
        ctx.note("CUDA rows: torch with CUDA is not available")
        return
    tkw = dict(timing(ctx), max_s=3.0)
    ev = _events(torch)

    def ours_ms(fn):
        return time_call(fn, sample_ms=lambda run: lc.time_device_ms(run, device="cuda"), **tkw)

    rng = np.random.default_rng(ctx.seed)
    sizes = [2048] if ctx.quick else [4096, 8192]
    for name in ("bfloat16", "float16"):
        tdt = getattr(torch, name)
        for n in sizes:
            shape = f"m={n},k={n},n={n}"
            a32 = (rng.standard_normal((n, n)) / 4).astype(np.float32)
            b32 = (rng.standard_normal((n, n)) / 4).astype(np.float32)
            try:
                ta, tb = (lc.Tensor(lc.cast(x, name), device="cuda", dtype=name) for x in (a32, b32))
                tc = lc.Tensor(np.full((n, n), np.nan, _np_dtype(name)), device="cuda", dtype=name)
                lc.matmul2d_into(ta, tb, tc, device="cuda")
            except (TypeError, ValueError) as e:
                ctx.note(f"cuda matmul {name}: {type(e).__name__}: {e}")
                break
            got = lc.cast(tc.numpy(), "float32")
            rows_chk = slice(0, 256)  # the bound on 256 rows: a float64 reference of the whole product is slow
            err = lowp_matmul_excess(got[rows_chk], lc.cast(a32, name)[rows_chk], lc.cast(b32, name), name)
            path = lc.last_dispatch()["path"]
            ours = ours_ms(lambda: lc.matmul2d_into(ta, tb, tc, device="cuda"))
            xa, xb = (torch.from_numpy(x).cuda().to(tdt) for x in (a32, b32))
            peer = time_call(lambda: torch.matmul(xa, xb), sample_ms=ev, **tkw)
            r = peer["median_ms"] / ours["median_ms"]
            tf = 2.0 * n ** 3 / ours["median_s"] / 1e12
            _row(rows, ctx, "cuda_gemm", f"matmul {name} {shape}", shape, name, "cuda", ours, "torch_cuda",
                 peer["median_ms"], err, work(("matmul", [(n, n), (n, n)]), dtype=name),
                 f"{tf:.0f} TFLOP/s, path {path}; " + _target(r, 0.97, f"{name} GEMM vs torch"), torch_version())
            del ta, tb, tc, xa, xb
    # linear bf16 + bias + GELU(tanh) epilogue
    n = 2048 if ctx.quick else 4096
    x32, w32 = (rng.standard_normal((n, n)) / 8).astype(np.float32), (rng.standard_normal((n, n)) / 64).astype(np.float32)
    b32 = (rng.standard_normal(n) / 8).astype(np.float32)
    try:
        tx, tw, tbias = (lc.Tensor(lc.cast(v, "bfloat16"), device="cuda", dtype="bfloat16") for v in (x32, w32, b32))
        tout = lc.Tensor(np.full((n, n), np.nan, _np_dtype("bfloat16")), device="cuda", dtype="bfloat16")
        lc.linear_into(tx, tw, tout, tbias, "gelu_tanh", "cuda")
        ours = ours_ms(lambda: lc.linear_into(tx, tw, tout, tbias, "gelu_tanh", "cuda"))
        px, pw, pb = (torch.from_numpy(v).cuda().to(torch.bfloat16) for v in (x32, w32, b32))
        pwt = pw.t().contiguous()
        peer = time_call(lambda: F.gelu(F.linear(px, pwt, pb), approximate="tanh"), sample_ms=ev, **tkw)
        r = peer["median_ms"] / ours["median_ms"]
        ref = torch.nn.functional.gelu(px[:256].double() @ pw.double() + pb.double(), approximate="tanh").cpu().numpy()
        got = lc.cast(tout.numpy()[:256], "float64")
        err = float(np.max(np.abs(got - ref) / (unit_roundoff("bfloat16") * 4 * np.abs(ref) + 2 * n * 2.0 ** -24 * 8 + 1e-3)))
        _row(rows, ctx, "cuda_linear", f"linear bf16 bias+gelu_tanh {n}^3", f"m={n},k={n},n={n}", "bfloat16", "cuda",
             ours, "torch_cuda", peer["median_ms"], err, work(("linear", [(n, n), (n, n), (n,)]), dtype="bfloat16"),
             _target(r, 1.2, "linear bf16 + GELU vs F.gelu(F.linear)"), torch_version())
    except (TypeError, ValueError, AttributeError) as e:
        ctx.note(f"cuda linear bfloat16: {type(e).__name__}: {e}")
    _cuda_decode_linear(ctx, rows, ev, tkw)
    _cuda_bandwidth(ctx, rows, ours_ms, ev, tkw)


# (k, n, bias, activation) of the decode-shape rows: GPT-2 qkv with bias + GELU(tanh) (the MLP's form), the
# LLaMA-1.1B MLP up projection, the GPT-2 lm_head (vocab padded to a multiple of 8).
DECODE_LINEAR = ((768, 2304, True, "gelu_tanh"), (2048, 5632, False, "none"), (768, 50264, False, "none"))


def _cuda_decode_linear(ctx: Ctx, rows: list, ev, tkw) -> None:
    """Decode-shape linear (bf16, m = 1): ours (the fused GEMV, path cuda_gemv_bf16) and our cuBLASLt path
    (LC_GEMV=0 while capturing) vs torch F.linear / F.gelu(F.linear(...)), each side one captured CUDA graph of
    `copies` calls cycling over copies of the weight (more than 160 MB: w comes from memory, as in a decode
    step), timed by events around replays; GB/s of w read per call."""
    import os

    import lightning_core as lc
    torch, F = torch_mod()
    rng = np.random.default_rng(ctx.seed + 2)
    bf = _np_dtype("bfloat16")
    for k, n, with_bias, act in (DECODE_LINEAR[:1] if ctx.quick else DECODE_LINEAR):
        wbytes = 2.0 * k * n
        copies = int(min(48, max(2, (160 << 20) // wbytes + 1)))
        x32 = rng.standard_normal((1, k)).astype(np.float32)
        w32 = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
        b32 = rng.standard_normal(n).astype(np.float32) if with_bias else None
        xb, wb = lc.cast(x32, "bfloat16"), lc.cast(w32, "bfloat16")
        bb = lc.cast(b32, "bfloat16") if with_bias else None
        case = f"decode linear bf16 m=1 k={k} n={n}" + (f" bias+{act}" if with_bias else (f" {act}" if act != "none" else ""))
        shape = f"m=1,k={k},n={n}"
        try:
            tx = lc.Tensor(xb, device="cuda", dtype="bfloat16")
            tws = [lc.Tensor(wb, device="cuda", dtype="bfloat16") for _ in range(copies)]
            tb = lc.Tensor(bb, device="cuda", dtype="bfloat16") if with_bias else None
            tout = lc.Tensor(np.full((1, n), np.nan, bf), device="cuda", dtype="bfloat16")

            def step(t=tout):
                for tw in tws:
                    lc.linear_into(tx, tw, t, tb, act, "cuda")

            step()
            path = lc.last_dispatch()["path"]
            got = lc.cast(tout.numpy(), "float64")
            old = os.environ.pop("LC_GEMV", None)
            graphs = {}
            try:
                graphs["ours"] = lc.capture_graph(step, device="cuda")
                os.environ["LC_GEMV"] = "0"
                lt_out = lc.Tensor(np.full((1, n), np.nan, bf), device="cuda", dtype="bfloat16")
                step(lt_out)
                lt_path = lc.last_dispatch()["path"]
                graphs["cublaslt"] = lc.capture_graph(lambda: step(lt_out), device="cuda")
            finally:
                os.environ.pop("LC_GEMV", None)
                if old is not None:
                    os.environ["LC_GEMV"] = old
        except (TypeError, ValueError, AttributeError, RuntimeError) as e:
            ctx.note(f"cuda decode linear {shape}: {type(e).__name__}: {e}")
            continue
        pre = lc.cast(xb, "float64") @ lc.cast(wb, "float64")
        mag = np.abs(lc.cast(xb, "float64")) @ np.abs(lc.cast(wb, "float64"))
        if with_bias:
            pre, mag = pre + lc.cast(bb, "float64"), mag + np.abs(lc.cast(bb, "float64"))
        ref = torch.nn.functional.gelu(torch.from_numpy(pre), approximate="tanh").numpy() if act == "gelu_tanh" else pre
        bound = unit_roundoff("bfloat16") * np.abs(ref) + 1.2 * 2 * k * 2.0 ** -24 * mag + 1e-6 * np.abs(ref) + 1e-30
        err = float(np.max(np.abs(got - ref) / bound)) if np.all(np.isfinite(got)) else float("inf")
        wk = work(("linear", [(1, k), (k, n)] + ([(n,)] if with_bias else [])), dtype="bfloat16")

        def graph_time(g):
            return time_call(lambda: g.replay(), sample_ms=lambda run: lc.time_device_ms(run, device="cuda"),
                             per=copies, **tkw)

        ours = graph_time(graphs["ours"])
        lt = graph_time(graphs["cublaslt"])
        px = torch.from_numpy(lc.cast(xb, "float32")).cuda().to(torch.bfloat16)
        pws = [torch.from_numpy(lc.cast(wb, "float32")).cuda().to(torch.bfloat16).t().contiguous() for _ in range(copies)]
        pb = torch.from_numpy(lc.cast(bb, "float32")).cuda().to(torch.bfloat16) if with_bias else None
        po = torch.empty((1, n), dtype=torch.bfloat16, device="cuda")

        def tstep():
            for pw in pws:
                y = F.linear(px, pw, pb)
                po.copy_(F.gelu(y, approximate="tanh") if act == "gelu_tanh" else y)

        peer = torch_graph_time(torch, tstep, copies, ev, tkw)
        gbs = wbytes / ours["median_s"] / 1e9
        note = (f"{ours['median_ms'] * 1e3:.2f} us, {gbs:.0f} GB/s of w read, path {path}; ")
        _row(rows, ctx, "cuda_decode_linear", case, shape, "bfloat16", "cuda", ours, "torch_cuda_graph",
             peer["median_ms"], err, wk,
             note + f"torch {wbytes / peer['median_s'] / 1e9:.0f} GB/s; "
             + _target(peer["median_ms"] / ours["median_ms"], 1.0, "decode linear vs torch graph"),
             torch_version(), mode="graph")
        _row(rows, ctx, "cuda_decode_linear", case, shape, "bfloat16", "cuda", ours, "lc_cublaslt",
             lt["median_ms"], err, wk,
             note + f"LC_GEMV=0 ({lt_path}) {wbytes / lt['median_s'] / 1e9:.0f} GB/s; "
             + _target(lt["median_ms"] / ours["median_ms"], 1.0, "GEMV vs our cuBLASLt path"), mode="graph")
        for g in graphs.values():
            g.release()
        del tws, pws


def _cuda_bandwidth(ctx: Ctx, rows: list, ours_ms, ev, tkw) -> None:
    """bf16 vector_add, relu, gelu (erf and tanh forms) and layer_norm of 64M elements vs torch and vs the card's
    device copy bandwidth."""
    import lightning_core as lc
    torch, F = torch_mod()
    rng = np.random.default_rng(ctx.seed + 1)
    cols = 4096
    m = (4 << 20) if ctx.quick else (64 << 20)
    rows_n = m // cols
    bf = _np_dtype("bfloat16")
    src = torch.empty(m, dtype=torch.bfloat16, device="cuda")
    dst = torch.empty_like(src)
    copy = time_call(lambda: dst.copy_(src), sample_ms=ev, **tkw)  # 2 bytes read + 2 written per element
    bw = 4.0 * m / copy["median_s"]
    del src, dst
    x32 = rng.standard_normal((rows_n, cols)).astype(np.float32)
    y32 = rng.standard_normal((rows_n, cols)).astype(np.float32)
    g32 = (1.0 + rng.standard_normal(cols) / 4).astype(np.float32)
    b32 = (rng.standard_normal(cols) / 4).astype(np.float32)
    xb, yb, gb, bb = (lc.cast(v, "bfloat16") for v in (x32, y32, g32, b32))
    try:
        tx, ty, tg, tb = (lc.Tensor(v, device="cuda", dtype="bfloat16") for v in (xb, yb, gb, bb))
        tout = lc.Tensor(np.full((rows_n, cols), np.nan, bf), device="cuda", dtype="bfloat16")
    except (TypeError, ValueError) as e:
        ctx.note(f"cuda bf16 bandwidth rows: {type(e).__name__}: {e}")
        return
    px, py, pg, pb = (torch.from_numpy(lc.cast(v, "float32")).cuda().to(torch.bfloat16) for v in (xb, yb, gb, bb))
    u = unit_roundoff("bfloat16")
    from ...testing.refs import ref_gelu

    def _x64():
        return lc.cast(xb[:64], "float64")

    def _ln_ref():
        x = _x64()
        mu = x.mean(axis=1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
        ref = (x - mu) / np.sqrt(var + 1e-5) * lc.cast(gb, "float64") + lc.cast(bb, "float64")
        return ref, 2 * u * np.abs(ref) + 8 * cols * 2.0 ** -24 + 1e-6

    def _rounded(ref):  # one rounding of the exact value
        return ref, u * np.abs(ref) + 1e-30

    def _gelu_ref(form):  # one rounding of a float32 value within 2e-5 relative (activation.cuh)
        ref = ref_gelu(_x64(), form)
        return ref, (u + 1e-4) * np.abs(ref) + 1e-36

    # (op, ours, torch, (float64 reference of the first 64 rows, its tolerance), bytes moved, op-table work)
    cases = (
        ("vector_add", lambda: lc.vector_add_into(tx, ty, tout, device="cuda"), lambda: torch.add(px, py),
         lambda: _rounded(_x64() + lc.cast(yb[:64], "float64")), 6.0 * m,
         ("vector_add", [(rows_n, cols)] * 2)),
        ("relu", lambda: lc.relu_into(tx, tout, device="cuda"), lambda: torch.relu(px),
         lambda: (np.maximum(_x64(), 0.0), np.zeros((64, cols)) + 1e-300), 4.0 * m, ("relu", [(rows_n, cols)])),
        ("gelu", lambda: lc.gelu_into(tx, tout, device="cuda"), lambda: F.gelu(px),
         lambda: _gelu_ref("none"), 4.0 * m, ("gelu", [(rows_n, cols)])),
        ("gelu_tanh", lambda: lc.gelu_into(tx, tout, "tanh", device="cuda"), lambda: F.gelu(px, approximate="tanh"),
         lambda: _gelu_ref("tanh"), 4.0 * m, ("gelu", [(rows_n, cols)])),
        ("layer_norm", lambda: lc.layer_norm_into(tx, tout, tg, tb, 1e-5, "cuda"),
         lambda: F.layer_norm(px, (cols,), pg, pb, 1e-5), _ln_ref, 4.0 * m, ("layer_norm", [(rows_n, cols)])),
    )
    for op, ours_fn, peer_fn, ref_fn, nbytes, wk_args in cases:
        tout = lc.Tensor(np.full((rows_n, cols), np.nan, bf), device="cuda", dtype="bfloat16")  # poisoned
        try:
            ours_fn()
        except (TypeError, ValueError) as e:
            ctx.note(f"cuda {op} bfloat16: {type(e).__name__}: {e}")
            continue
        got = lc.cast(tout.numpy()[:64], "float64")
        ref, tol = ref_fn()
        err = float(np.max(np.abs(got - ref) / tol)) if np.all(np.isfinite(got)) else float("inf")
        ours = ours_ms(ours_fn)
        peer = time_call(peer_fn, sample_ms=ev, **tkw)
        gbs = nbytes / ours["median_s"] / 1e9
        frac = (nbytes / bw) / ours["median_s"]
        shape = f"rows={rows_n},cols={cols}"
        case = f"{op} bf16 n={m}"
        wk = work(wk_args, dtype="bfloat16")
        _row(rows, ctx, "cuda_bandwidth", case, shape, "bfloat16", "cuda", ours, "copy_bw", nbytes / bw * 1e3, err,
             wk, f"{gbs:.0f} GB/s of {bw / 1e9:.0f} GB/s copy; " + _target(frac, 0.9, "fraction of copy bandwidth"))
        r = peer["median_ms"] / ours["median_ms"]
        _row(rows, ctx, "cuda_bandwidth", case, shape, "bfloat16", "cuda", ours, "torch_cuda", peer["median_ms"], err,
             wk, f"{gbs:.0f} GB/s; " + _target(r, 1.0, f"{op} bf16 vs torch"), torch_version())


def run(ctx: Ctx) -> list[dict]:
    import lightning_core as lc
    ctx.need_dtype("float32")  # the suite picks its own dtypes
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        raise SuiteUnavailable("ml_dtypes is not installed") from None
    rows: list[dict] = []
    _cpu(ctx, rows)
    if ctx.device == "cuda" and lc.cuda_available():
        _cuda(ctx, rows)
    return rows
