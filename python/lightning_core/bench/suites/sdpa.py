"""The sdpa suite (issue 15's targets): lc.scaled_dot_product_attention and lc.KVCache against torch.

  CPU   float32 B=1, H=12, S=1024, D=64, causal and not, vs torch CPU F.scaled_dot_product_attention (target
        >= 1.5x) and vs a float32 NumPy softmax attention (informational; the rows that run without torch).
  CUDA  (resident tensors, device time by events on both sides)
        prefill bf16/f16, D=128 and 64, B=4 H=8, S=1k/4k/16k, causal and not, vs torch SDPA (>= 1.0x);
        float32 prefill D=64 and 128, S=1k/4k vs torch with TF32 off (>= 1.5x and >= 40 TFLOP/s; both sides' relative
        error against float64 in the note, ours <= 1e-5);
        decode Sq=1, H=32, Hkv=8, D=128, bf16, B in 1/8/32/64, Skv 1k..32k (caches over ~8 GiB skipped) vs
        torch SDPA with enable_gqa (>= 1.0x; >= 2x at B=1, Skv <= 4k) and vs the card's read bandwidth
        measured in the run (peer read_bw: the time the k/v bytes take at that bandwidth; >= 0.8 for
        Skv >= 4k), each case twice: eager calls (resident: the host's call rate counts at small sizes) and
        the device time of calls on distinct k/v copies (>= 256 MB together, so not from L2) captured in one
        graph, against torch's SDPA captured the same way (peer torch_cuda_graph) and the bandwidth;
        one decode step captured with lc.capture_graph and replayed, Skv ~1k (peer target_12us: <= 12 us
        per step), three times: KVCache append + attention_into, the fused attention_into(k_new=, v_new=),
        and 16 fused steps captured in one graph (the step's device time without a graph launch per step);
        GQA traffic: the same decode with Hkv=8 and Hkv=32 (peer lc_hkv32): 4x fewer k/v bytes, time ratio
        (target >= 3x, i.e. the traffic saving shows in the time).
Every row validated against the float64 testing.ref_sdpa on a slice (a few (b, h) pairs, the last query rows:
with the causal diagonal aligned to the end of the keys the last rows of q are a sub-problem of their own),
tolerance testing.sdpa_tol; a wrong output makes the row FAILED. TFLOP/s in the notes count 4·Sq·Skv·D per
(b, h) over the visible pairs (causal: about half), the convention of torch's and FlashAttention's numbers;
the rows' flops/bytes columns come from the op table (lc.op_work "sdpa"), with the same formula as fallback.
Skipped with a note (or unavailable as a whole) where the binding, CUDA or torch is missing.
Tested by tests/python/test_bench_suites.py (CPU, --quick).
"""
from __future__ import annotations

import math

import numpy as np

from .. import harness as H
from ...testing import ref_sdpa, rel_err, sdpa_tol
from ..timer import time_call
from . import Ctx, SuiteUnavailable
from .common import timing, torch_graph_time, torch_mod, torch_version, work
from .lowp import _events, _target

SUITE = "sdpa"
MAX_CACHE_BYTES = 8 << 30  # decode cases whose k/v cache exceeds this are skipped


def _visible_pairs(sq, skv, causal):
    """(query, key) pairs a (b, h) computes: all, or under the bottom-right causal diagonal."""
    if not causal:
        return sq * skv
    i = np.arange(sq)
    return int(np.clip(i + skv - sq + 1, 0, skv).sum())


def _flops(b, h, sq, skv, d, causal):
    return 4.0 * b * h * _visible_pairs(sq, skv, causal) * d


def _work(b, h, hkv, sq, skv, d, causal, name):
    """flops/bytes of one call: the op table's estimate (lc.op_work "sdpa"), else the formula (q, k, v and out
    read/written once at the dtype's size; 4·D flops per visible pair)."""
    try:
        return work(("sdpa", [(b, h, sq, d), (b, hkv, skv, d), (b, hkv, skv, d)], {"causal": bool(causal)}), dtype=name)
    except Exception:  # noqa: BLE001  (no sdpa in the op table, or other attrs): the formula
        size = 4 if name == "float32" else 2
        return {"flops": _flops(b, h, sq, skv, d, causal), "nbytes": float(size * (2 * b * h * sq * d + 2 * b * hkv * skv * d))}


def _slice_err(out, q, k, v, causal, picks, rows=128, host=np.asarray):
    """max rel_err of out [B,H,Sq,D] against float64 ref_sdpa on the (b, h) pairs `picks`, last `rows` queries.
    host() turns a slice into a NumPy array (torch tensors: .float().cpu().numpy())."""
    hq, hkv = q.shape[1], k.shape[1]
    g = hq // hkv
    worst = 0.0
    for b, h in picks:
        qs, ks, vs, os = (host(t) for t in (q[b, h, -rows:], k[b, h // g], v[b, h // g], out[b, h, -rows:]))
        worst = max(worst, rel_err(np.asarray(os, np.float64), ref_sdpa(qs, ks, vs, causal=causal)))
    return worst


def _row(rows, ctx, family, case, shape, name, device, mode, ours, peer, peer_t, err, tol, wk, note,
         peer_version="", path=""):
    """One schema row; ours / peer_t are time_call results (peer_t a float: a computed peer time in ms)."""
    ctx.case(f"{case} vs {peer}")
    peer_ms, peer_cv = (peer_t, float("nan")) if isinstance(peer_t, float) else (peer_t["median_ms"], peer_t["cv"])
    rows.append(H.make_row(SUITE, family, case, mode, ours["median_ms"], peer, peer_ms, shape=shape, dtype=name,
                           device=device, cv=ours["cv"], peer_cv=peer_cv, rel_err=err, status="ok" if err < tol else "FAILED", peer_version=peer_version,
                           path=path, notes=note, **wk))


# ---- CPU ----------------------------------------------------------------------------------------------


def _np_attention(q, k, v, bias):
    """The float32 NumPy peer: softmax(q k^T / sqrt(D) + bias) v, [B,H,S,D], bias 0 or -inf above the diagonal."""
    s = np.matmul(q, k.swapaxes(-1, -2)) * np.float32(1.0 / math.sqrt(q.shape[-1]))
    if bias is not None:
        s += bias
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return np.matmul(s, v)


def _cpu(ctx: Ctx, rows: list) -> None:
    import lightning_core as lc
    torch, F = torch_mod()
    tkw = timing(ctx)
    rng = np.random.default_rng(ctx.seed)
    b, h, s, d = 1, 12, (256 if ctx.quick else 1024), 64
    q, k, v = (rng.standard_normal((b, h, s, d)).astype(np.float32) for _ in range(3))
    shape = f"B={b},H={h},S={s},D={d}"
    if torch is None:
        ctx.note("CPU rows: torch is not installed; only the NumPy peer runs")
    # float32 (the target), then bfloat16 (informational: the AVX-512 BF16 tile where the CPU has it) against
    # the same causal setting's float32 time of this run and torch CPU bfloat16
    import ml_dtypes
    f32_ms = {}
    for name, tag, arrs in (("float32", "f32", (q, k, v)),
                            ("bfloat16", "bf16", tuple(x.astype(ml_dtypes.bfloat16) for x in (q, k, v)))):
        tol = sdpa_tol(name, s, d)
        for causal in (False, True):
            case = f"cpu prefill {tag} {shape}" + (" causal" if causal else "")
            out = lc.scaled_dot_product_attention(*arrs, causal=causal, device="cpu")
            path = str(lc.last_dispatch().get("path", ""))
            err = _slice_err(out, *arrs, causal, [(0, 0), (0, h - 1)])
            ours = time_call(lambda: lc.scaled_dot_product_attention(*arrs, causal=causal, device="cpu"), **tkw)
            wk = _work(b, h, h, s, s, d, causal, name)
            tf = _flops(b, h, s, s, d, causal) / ours["median_s"] / 1e12
            if name == "float32":
                f32_ms[causal] = ours
                bias = np.triu(np.full((s, s), -np.inf, np.float32), 1) if causal else None
                peer = time_call(lambda: _np_attention(q, k, v, bias), **tkw)
                _row(rows, ctx, "cpu_prefill", case, shape, name, "cpu", "one_shot", ours,
                     "numpy", peer, err, tol, wk, f"{tf:.3f} TFLOP/s, rel_err {err:.2e}; informational", path=path)
            else:
                _row(rows, ctx, "cpu_prefill", case, shape, name, "cpu", "one_shot", ours, "lc_float32",
                     f32_ms[causal], err, tol, wk, f"{tf:.3f} TFLOP/s; informational", path=path)
            if torch is not None:
                tq, tk, tv = (torch.from_numpy(x).to(getattr(torch, name)) for x in (q, k, v))
                with torch.inference_mode():
                    pt = time_call(lambda: F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal), **tkw)
                r = pt["median_ms"] / ours["median_ms"]
                note = (_target(r, 1.5, "f32 SDPA vs torch CPU") if name == "float32"
                        else "informational (the CPU target is float32's)")
                _row(rows, ctx, "cpu_prefill", case, shape, name, "cpu", "one_shot", ours,
                     "torch_cpu", pt, err, tol, wk, f"{tf:.3f} TFLOP/s; " + note, torch_version(), path)


# ---- CUDA ---------------------------------------------------------------------------------------------


class _Cuda:
    """Shared state of the CUDA rows: torch, the two timers, the data helpers."""

    def __init__(self, ctx, torch, F):
        import lightning_core as lc
        self.lc, self.ctx, self.torch, self.F = lc, ctx, torch, F
        self.tkw = dict(timing(ctx), max_s=3.0)
        self.ev = _events(torch)
        self.gen = torch.Generator(device="cuda")
        self.gen.manual_seed(ctx.seed)

    def ours(self, fn, per: int = 1):
        return time_call(fn, sample_ms=lambda run: self.lc.time_device_ms(run, device="cuda"), per=per, **self.tkw)

    def peer(self, fn):
        with self.torch.inference_mode():
            return time_call(fn, sample_ms=self.ev, **self.tkw)

    def randn(self, shape, name):
        t = self.torch
        return t.randn(shape, generator=self.gen, device="cuda", dtype=t.float32).to(getattr(t, name))

    def lct(self, x):
        """An lc.Tensor over a torch tensor's memory (DLPack, no copy)."""
        return self.lc.from_dlpack(x)

    def nan_out(self, shape, name):
        t = self.torch
        x = t.full(shape, float("nan"), device="cuda", dtype=getattr(t, name))
        return x, self.lc.from_dlpack(x)

    def host(self, x):
        return x.float().cpu().numpy()

    def sync(self):
        self.torch.cuda.synchronize()
        self.lc.synchronize("cuda")


def _prefill(c: _Cuda, rows: list) -> None:
    lc, F = c.lc, c.F
    quick = c.ctx.quick
    b, h = 4, 8
    configs = [("bfloat16", 128, (512,)), ("float16", 64, (512,))] if quick else \
        [(n, d, (1024, 4096, 16384)) for n in ("bfloat16", "float16") for d in (128, 64)]
    for name, d, seqs in configs:
        for s in seqs:
            q, k, v = (c.randn((b, h, s, d), name) for _ in range(3))
            o, to = c.nan_out((b, h, s, d), name)
            tq, tk, tv = (c.lct(x) for x in (q, k, v))
            for causal in (False, True):
                shape = f"B={b},H={h},S={s},D={d}"
                case = f"prefill {name} {shape}" + (" causal" if causal else "")
                try:
                    o.fill_(float("nan"))  # every variant writes every element
                    c.sync()
                    lc.scaled_dot_product_attention_into(tq, tk, tv, to, causal=causal, device="cuda")
                    path = str(lc.last_dispatch().get("path", ""))
                    c.sync()
                except (TypeError, ValueError, RuntimeError) as e:
                    c.ctx.note(f"{case}: {type(e).__name__}: {e}")
                    continue
                err = _slice_err(o, q, k, v, causal, [(0, 0), (b - 1, h - 1)], host=c.host)
                ours = c.ours(lambda: lc.scaled_dot_product_attention_into(tq, tk, tv, to, causal=causal, device="cuda"))
                peer = c.peer(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
                r = peer["median_ms"] / ours["median_ms"]
                fl = _flops(b, h, s, s, d, causal)
                tf, ptf = fl / ours["median_s"] / 1e12, fl / peer["median_s"] / 1e12
                _row(rows, c.ctx, "cuda_prefill", case, shape, name, "cuda", "resident", ours,
                     "torch_cuda", peer, err, sdpa_tol(name, s, d), _work(b, h, h, s, s, d, causal, name),
                     f"{tf:.0f} TFLOP/s (torch {ptf:.0f}), path {path}; " + _target(r, 1.0, f"{name} prefill vs torch"),
                     torch_version(), path)


def _prefill_f32(c: _Cuda, rows: list) -> None:
    lc, torch, F = c.lc, c.torch, c.F
    b, h = 4, 8
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        for d, s in (((64, 512),) if c.ctx.quick else ((64, 1024), (64, 4096), (128, 1024), (128, 4096))):
            q, k, v = (c.randn((b, h, s, d), "float32") for _ in range(3))
            o, to = c.nan_out((b, h, s, d), "float32")
            tq, tk, tv = (c.lct(x) for x in (q, k, v))
            for causal in (False, True):
                shape = f"B={b},H={h},S={s},D={d}"
                case = f"prefill float32 {shape}" + (" causal" if causal else "")
                try:
                    o.fill_(float("nan"))
                    c.sync()
                    lc.scaled_dot_product_attention_into(tq, tk, tv, to, causal=causal, device="cuda")
                    path = str(lc.last_dispatch().get("path", ""))
                    c.sync()
                except (TypeError, ValueError, RuntimeError) as e:
                    c.ctx.note(f"{case}: {type(e).__name__}: {e}")
                    continue
                picks = [(0, 0), (b - 1, h - 1)]
                err = _slice_err(o, q, k, v, causal, picks, host=c.host)
                with torch.inference_mode():
                    po = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                perr = _slice_err(po, q, k, v, causal, picks, host=c.host)
                ours = c.ours(lambda: lc.scaled_dot_product_attention_into(tq, tk, tv, to, causal=causal, device="cuda"))
                peer = c.peer(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
                r = peer["median_ms"] / ours["median_ms"]
                tf = _flops(b, h, s, s, d, causal) / ours["median_s"] / 1e12
                acc = "PASS" if err <= 1e-5 else "MISS"
                note = (f"{tf:.1f} TFLOP/s, path {path}; rel_err ours {err:.1e} (target <= 1e-5: {acc}), torch "
                        f"{perr:.1e} (TF32 off); " + _target(r, 1.5, "f32 vs torch") + "; "
                        + _target(tf, 40.0, "TFLOP/s"))
                _row(rows, c.ctx, "cuda_prefill_f32", case, shape, "float32", "cuda", "resident", ours,
                     "torch_cuda", peer, err, sdpa_tol("float32", s, d),
                     _work(b, h, h, s, s, d, causal, "float32"), note, torch_version(), path)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _read_bandwidth(c: _Cuda) -> float:
    """The card's read bandwidth in bytes/s, measured now: the better of a device copy of 1 GiB of bf16
    (2 bytes read + 2 written per element) and a sum over it (2 bytes read)."""
    torch = c.torch
    n = (64 << 20) if c.ctx.quick else (512 << 20)
    src = torch.ones(n, device="cuda", dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    copy = c.peer(lambda: dst.copy_(src))
    red = c.peer(lambda: src.sum(dtype=torch.float32))
    return max(4.0 * n / copy["median_s"], 2.0 * n / red["median_s"])


def _torch_decode(c: _Cuda):
    """F.scaled_dot_product_attention with enable_gqa (torch >= 2.5), else with k/v repeated beforehand (the
    repeat outside the timed call: that peer reads 4x the bytes)."""
    F = c.F

    def make(q, k, v):
        try:
            F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
            return (lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)), "enable_gqa"
        except (TypeError, RuntimeError):
            g = q.shape[1] // k.shape[1]
            kr, vr = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
            return (lambda: F.scaled_dot_product_attention(q, kr, vr)), "k/v repeated (no enable_gqa)"
    return make


def _decode_case(c: _Cuda, b, h, hkv, skv, d, name):
    """(ours timing, err, path, q/k/v torch tensors) of one decode call, or None after a note."""
    lc = c.lc
    q, k, v = c.randn((b, h, 1, d), name), c.randn((b, hkv, skv, d), name), c.randn((b, hkv, skv, d), name)
    o, to = c.nan_out((b, h, 1, d), name)
    tq, tk, tv = (c.lct(x) for x in (q, k, v))
    try:
        c.sync()
        lc.scaled_dot_product_attention_into(tq, tk, tv, to, device="cuda")
        path = str(lc.last_dispatch().get("path", ""))
        c.sync()
    except (TypeError, ValueError, RuntimeError) as e:
        c.ctx.note(f"decode B={b} Hkv={hkv} Skv={skv}: {type(e).__name__}: {e}")
        return None
    err = _slice_err(o, q, k, v, False, [(0, 0), (b - 1, h - 1)], rows=1, host=c.host)
    ours = c.ours(lambda: lc.scaled_dot_product_attention_into(tq, tk, tv, to, device="cuda"))
    return ours, err, path, (q, k, v)


def _decode(c: _Cuda, rows: list, bw: float) -> None:
    name, h, hkv, d = "bfloat16", 32, 8, 128
    batches, lens = ((1, 8), (1024, 4096)) if c.ctx.quick else ((1, 8, 32, 64), (1024, 4096, 16384, 32768))
    make_peer = _torch_decode(c)
    for b in batches:
        for skv in lens:
            kv_bytes = 2.0 * b * hkv * skv * d * 2
            shape = f"B={b},H={h},Hkv={hkv},Skv={skv},D={d}"
            case = f"decode bf16 {shape}"
            if kv_bytes > MAX_CACHE_BYTES:
                c.ctx.note(f"{case}: skipped, the k/v cache is {kv_bytes / 2**30:.1f} GiB (> 8 GiB)")
                continue
            got = _decode_case(c, b, h, hkv, skv, d, name)
            if got is None:
                continue
            ours, err, path, (q, k, v) = got
            fn, how = make_peer(q, k, v)
            peer = c.peer(fn)
            r = peer["median_ms"] / ours["median_ms"]
            gbs = kv_bytes / ours["median_s"] / 1e9
            wk = _work(b, h, hkv, 1, skv, d, False, name)
            tol = sdpa_tol(name, skv, d)
            want = 2.0 if (b == 1 and skv <= 4096) else 1.0
            _row(rows, c.ctx, "cuda_decode", case, shape, name, "cuda", "resident", ours,
                 "torch_cuda", peer, err, tol, wk,
                 f"{gbs:.0f} GB/s of k/v (torch {kv_bytes / peer['median_s'] / 1e9:.0f}, {how}), path {path}; "
                 + _target(r, want, "decode vs torch"), torch_version(), path)
            frac = (kv_bytes / bw) / ours["median_s"]
            note = f"{gbs:.0f} GB/s of {bw / 1e9:.0f} GB/s measured read bandwidth; " + (
                _target(frac, 0.8, "fraction of read bandwidth") if skv >= 4096
                else f"fraction {frac:.2f} (target applies from Skv=4k)")
            _row(rows, c.ctx, "cuda_decode", case, shape, name, "cuda", "resident", ours,
                 "read_bw", kv_bytes / bw * 1e3, err, tol, wk, note, path=path)
            _decode_graph(c, rows, b, h, hkv, skv, d, name, q, bw, want)


def _decode_graph(c: _Cuda, rows: list, b, h, hkv, skv, d, name, q, bw, want) -> None:
    """The decode call's device time without the host: `copies` calls on distinct k/v copies (together >= 256
    MB, so the L2 holds none of them when its turn comes) captured in one graph, the replays timed with events
    and divided by copies; torch's SDPA the same way in a torch CUDA graph. A small call's resident row above
    measures the host's call rate as much as the kernel (either side)."""
    lc, torch, F = c.lc, c.torch, c.F
    kv_bytes = 2.0 * b * hkv * skv * d * 2
    copies = int(max(1, min(math.ceil(256e6 / kv_bytes), 2e9 // kv_bytes)))
    shape = f"B={b},H={h},Hkv={hkv},Skv={skv},D={d}"
    case = f"decode bf16 {shape} x{copies} per graph"
    try:
        ks = [c.randn((b, hkv, skv, d), name) for _ in range(copies)]
        vs = [c.randn((b, hkv, skv, d), name) for _ in range(copies)]
        o, to = c.nan_out((b, h, 1, d), name)
        tq, tks, tvs = c.lct(q), [c.lct(x) for x in ks], [c.lct(x) for x in vs]

        def step():
            for tk, tv in zip(tks, tvs):
                lc.scaled_dot_product_attention_into(tq, tk, tv, to, device="cuda")

        step()
        path = str(lc.last_dispatch().get("path", ""))
        c.sync()
        graph = lc.capture_graph(step, device="cuda")
        o.fill_(float("nan"))
        c.sync()
        graph.replay()
        c.sync()
    except (TypeError, ValueError, RuntimeError) as e:
        c.ctx.note(f"{case}: {type(e).__name__}: {e}")
        return
    err = _slice_err(o, q, ks[-1], vs[-1], False, [(0, 0), (b - 1, h - 1)], rows=1, host=c.host)
    ours = c.ours(lambda: graph.replay(), per=copies)
    gbs = kv_bytes / ours["median_s"] / 1e9
    wk, tol = _work(b, h, hkv, 1, skv, d, False, name), sdpa_tol(name, skv, d)
    try:
        def tstep():
            for k_, v_ in zip(ks, vs):
                F.scaled_dot_product_attention(q, k_, v_, enable_gqa=True)

        peer = torch_graph_time(torch, tstep, copies, c.ev, c.tkw)
        r = peer["median_ms"] / ours["median_ms"]
        _row(rows, c.ctx, "cuda_decode_graph", case, shape, name, "cuda", "graph", ours, "torch_cuda_graph", peer,
             err, tol, wk, f"{gbs:.0f} GB/s of k/v (torch {kv_bytes / peer['median_s'] / 1e9:.0f}), device time "
             f"of {copies} calls in one graph, path {path}; " + _target(r, want, "decode vs torch, both graphs"),
             torch_version(), path)
    except (TypeError, ValueError, RuntimeError) as e:
        c.ctx.note(f"{case}: torch graph: {type(e).__name__}: {e}")
    frac = (kv_bytes / bw) / ours["median_s"]
    note = f"{gbs:.0f} GB/s of {bw / 1e9:.0f} GB/s measured read bandwidth, device time; " + (
        _target(frac, 0.8, "fraction of read bandwidth") if skv >= 4096
        else f"fraction {frac:.2f} (target applies from Skv=4k)")
    _row(rows, c.ctx, "cuda_decode_graph", case, shape, name, "cuda", "graph", ours, "read_bw", kv_bytes / bw * 1e3,
         err, tol, wk, note, path=path)
    graph.release()
    del ks, vs, tks, tvs


def _gqa_traffic(c: _Cuda, rows: list) -> None:
    name, b, h, d = "bfloat16", (1 if c.ctx.quick else 8), 32, 128
    skv = 4096 if c.ctx.quick else 8192
    res = {}
    for hkv in (8, 32):
        got = _decode_case(c, b, h, hkv, skv, d, name)
        if got is None:
            return
        res[hkv] = got
    (o8, e8, p8, _), (o32, e32, _, _) = res[8], res[32]
    by8, by32 = (2.0 * b * hkv * skv * d * 2 for hkv in (8, 32))
    t_ratio = o32["median_ms"] / o8["median_ms"]
    shape = f"B={b},H={h},Skv={skv},D={d}"
    note = (f"k/v bytes {by8 / 1e6:.0f} MB (Hkv=8) vs {by32 / 1e6:.0f} MB (Hkv=32): {by32 / by8:.2f}x fewer; "
            f"{by8 / o8['median_s'] / 1e9:.0f} vs {by32 / o32['median_s'] / 1e9:.0f} GB/s; "
            + _target(t_ratio, 3.0, "time Hkv=32 / Hkv=8"))
    _row(rows, c.ctx, "cuda_gqa", f"decode GQA Hkv=8 vs 32 {shape}", shape, name, "cuda", "resident", o8,
         "lc_hkv32", o32, max(e8, e32), sdpa_tol(name, skv, d),
         _work(b, h, 8, 1, skv, d, False, name), note, path=p8)


def _graph_step(c: _Cuda, rows: list, fused: bool, steps: int = 1) -> None:
    """One decode step (append one token + attention) captured once and replayed: device us per step at
    Skv ~1k. Each sample resets the cache to 1023 prefilled tokens, so the replays run at Skv 1024..1043
    (steps > 1: that many steps captured in one graph, the time divided by steps, Skv 1024..~1100: the
    device time of a step without one graph launch per step).
    fused: the step is one call, cache.attention_into(q, out, k_new=, v_new=) (one kernel on this path);
    else cache.append then cache.attention_into (two launches)."""
    lc, torch = c.lc, c.torch
    if not hasattr(lc, "KVCache"):
        c.ctx.note("graph decode step: lc.KVCache is not in this build")
        return
    name, b, h, hkv, d, pre = "bfloat16", 1, 32, 8, 128, 1023
    inner = 20 if steps == 1 else 4
    try:
        cache = lc.KVCache(b, hkv, pre + steps * (inner + 4) + 64, d, dtype=name, device="cuda")
    except (TypeError, ValueError, RuntimeError) as e:
        c.ctx.note(f"graph decode step: {type(e).__name__}: {e}")
        return
    kp, vp = c.randn((b, hkv, pre, d), name), c.randn((b, hkv, pre, d), name)
    kt, vt, qt = c.randn((b, hkv, 1, d), name), c.randn((b, hkv, 1, d), name), c.randn((b, h, 1, d), name)
    o, to = c.nan_out((b, h, 1, d), name)
    tkp, tvp, tkt, tvt, tqt = (c.lct(x) for x in (kp, vp, kt, vt, qt))
    c.sync()

    def refill():
        cache.reset()
        cache.append(tkp, tvp)

    try:
        def step():
            for _ in range(steps):
                if fused:
                    cache.attention_into(tqt, to, k_new=tkt, v_new=tvt)
                else:
                    cache.append(tkt, tvt)
                    cache.attention_into(tqt, to)

        graph = lc.capture_graph(step)
        refill()
        graph.replay()
        c.sync()
    except (TypeError, ValueError, RuntimeError) as e:
        c.ctx.note(f"graph decode step: {type(e).__name__}: {e}")
        return
    kk, vv = torch.cat([kp] + [kt] * steps, 2), torch.cat([vp] + [vt] * steps, 2)
    err = _slice_err(o, qt, kk, vv, True, [(0, 0), (0, h - 1)], rows=1, host=c.host)

    def sample_ms(run):
        refill()
        return lc.time_device_ms(run, device="cuda")

    t = time_call(lambda: graph.replay(), sample_ms=sample_ms, inner=inner, per=steps, **dict(c.tkw, warmup=3))
    us = t["median_s"] * 1e6
    shape = f"B={b},H={h},Hkv={hkv},Skv~{pre + 1},D={d}"
    form = "attention_into with k_new/v_new" if fused else "KVCache append + attention_into"
    many = f" x{steps} per graph" if steps > 1 else ""
    _row(rows, c.ctx, "cuda_graph_decode", f"graph decode step{' fused' if fused else ''}{many} {shape}", shape,
         name, "cuda", "graph", t, "target_12us", 0.012, err, sdpa_tol(name, pre + steps, d),
         _work(b, h, hkv, 1, pre + 1, d, True, name),
         f"{us:.1f} us per step ({form}, graph-replayed{', ' + str(steps) + ' steps a replay' if steps > 1 else ''}); "
         + _target(12.0 / us, 1.0, "12 us / step time"))
    graph.release()


def _cuda(ctx: Ctx, rows: list) -> None:
    torch, F = torch_mod()
    if torch is None or not torch.cuda.is_available():
        ctx.note("CUDA rows: torch with CUDA is not available")
        return
    c = _Cuda(ctx, torch, F)
    _prefill(c, rows)
    _prefill_f32(c, rows)
    bw = _read_bandwidth(c)
    _decode(c, rows, bw)
    _gqa_traffic(c, rows)
    _graph_step(c, rows, fused=False)
    _graph_step(c, rows, fused=True)
    _graph_step(c, rows, fused=True, steps=16)


def run(ctx: Ctx) -> list[dict]:
    import lightning_core as lc
    ctx.need_dtype("float32")  # the suite picks its own dtypes
    if not hasattr(lc, "scaled_dot_product_attention"):
        raise SuiteUnavailable("lc.scaled_dot_product_attention is not in this build")
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        raise SuiteUnavailable("ml_dtypes is not installed") from None
    rows: list[dict] = []
    _cpu(ctx, rows)
    if ctx.device == "cuda" and lc.cuda_available():
        _cuda(ctx, rows)
    return rows
