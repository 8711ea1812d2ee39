"""In-process suites with no script of their own in benchmarks/python: engine split and the CPU pipeline.

engine_split   the same lc.api calls (NumPy in, NumPy out) with set_engine("lightning") (ours) and
               set_engine("torch") (peer "lc_api_torch", the interop path), on the suite's device; the seed's
               hotspot shapes (conv 16/24/32, conv->attn (48,48) (96,48) (192,48) (192,8)) plus matmul and
               attention. ratio = torch-engine ms / lightning-engine ms (the seed's interop_over_pure).
               Needs torch (without it lc.api would quietly run lightning for both).
pipeline_cpu   the seed's pipeline cases one-shot on the CPU: ffn (linear+GELU -> linear), ln->proj
               (layer_norm -> linear), conv->attn; ours = lightning_core ops, peers NumPy (not for ffn: NumPy
               has no erf) and torch CPU (same thread count, TF32 off).
Both sides of a row are timed by harness.time_call; every output is checked against the other side /
a float64 reference (relative error < 1e-4, else the row is FAILED).
"""
from __future__ import annotations

import math

import numpy as np

from . import harness as H
from .refs import ref_attention, ref_chain, ref_conv_relu
from .suites import Ctx, SuiteUnavailable


def _tkw(ctx: Ctx) -> dict:
    return dict(warmup=3, samples=7, min_sample_s=1e-4, settle_s=0.05) if ctx.quick else \
        dict(warmup=8, samples=15, min_sample_s=3e-4, settle_s=0.1)


def _rel(out, ref) -> float:
    out = np.asarray(out, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    if out.size != ref.size or not np.all(np.isfinite(out)):
        return float("inf")
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30))


def measure(ctx: Ctx, rows: list, suite: str, family: str, case: str, shape: str, ours, peers, ref, *,
            mode: str = "one_shot", tol: float = 1e-4, notes: str = "") -> None:
    """Times ours() and each peer () of peers [(name, version, fn)], checks every output against ref, and
    appends one row per peer. An exception on one side makes that row 'error' with the message in notes."""
    ctx.case(case)
    try:
        err = _rel(ours(), ref)
        t = H.time_call(ours, **_tkw(ctx))
        ours_ms, cv = t["median_s"] * 1e3, t["cv"]
    except Exception as e:  # noqa: BLE001
        for name, ver, _ in peers:
            rows.append(H.make_row(suite, family, case, mode, float("nan"), name, float("nan"), shape=shape,
                                   device=ctx.device, peer_version=ver, status="error",
                                   notes=f"ours: {type(e).__name__}: {e}"))
        return
    for name, ver, fn in peers:
        try:
            perr = _rel(fn(), ref)
            p = H.time_call(fn, **_tkw(ctx))
            worst = max(err, perr)
            rows.append(H.make_row(suite, family, case, mode, ours_ms, name, p["median_s"] * 1e3, shape=shape,
                                   device=ctx.device, peer_version=ver, cv=cv, peer_cv=p["cv"], rel_err=worst,
                                   status="ok" if worst < tol else "FAILED", notes=notes))
        except Exception as e:  # noqa: BLE001
            rows.append(H.make_row(suite, family, case, mode, ours_ms, name, float("nan"), shape=shape,
                                   device=ctx.device, peer_version=ver, cv=cv, rel_err=err, status="error",
                                   notes=f"{name}: {type(e).__name__}: {e}"))


def _torch():
    try:
        import torch
        return torch
    except Exception:  # noqa: BLE001
        return None


def _f64(*a):
    return [np.asarray(t, np.float64) for t in a]


# ---- engine split -------------------------------------------------------------------------------------------------
def engine_split(ctx: Ctx) -> list[dict]:
    import lightning_core as lc
    torch = _torch()
    if torch is None:
        raise SuiteUnavailable("torch not installed (the torch engine of lc.api needs it)")
    if ctx.device == "cuda" and not torch.cuda.is_available():
        raise SuiteUnavailable("torch has no CUDA here (the torch engine would run on another device)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    lc.set_matmul_precision("highest")
    if ctx.device == "cpu":
        torch.set_num_threads(lc.num_threads())
    api, dev, tv = lc.api, ctx.device, f"torch {torch.__version__}"
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
                      lambda a=a, b=b: api.matmul(a, b, dev), _f64(a)[0] @ _f64(b)[0])
            for s, d in att:
                q, k, v = r(s * d), r(s * d), r(s * d)
                split("attention", f"attention seq={s},head_dim={d}", f"seq={s},head_dim={d}",
                      lambda q=q, k=k, v=v, s=s, d=d: api.attention(q, k, v, s, d, False, dev),
                      ref_attention(*(t.reshape(s, d) for t in _f64(q, k, v))))
            for h in conv:
                x, w, b = r(1, 3, h, h), r(16, 3, 3, 3) - 0.5, r(16) - 0.5
                shape = f"n=1,c=3->16,h={h},w={h},k=3"
                split("conv", f"conv_relu {shape}", shape,
                      lambda x=x, w=w, b=b: api.conv_relu_nchw(x, w, b, 1, 1, 1, 1, dev), ref_conv_relu(*_f64(x, w, b)))
            x, w, b = r(1, 3, 8, 8), (r(16, 3, 3, 3) - 0.5) * 0.5, (r(16) - 0.5) * 0.1
            for s, d in chain:
                shape = f"conv(n=1,c=3->16,h=8,w=8,k=3)+attn(seq={s},d={d})"
                split("conv->attn", f"conv_attn {shape}", shape,
                      lambda s=s, d=d: api.conv_attention_torchstrong_nchw(x, w, b, s, d, device=dev),
                      ref_chain(*_f64(x, w, b), s, d))
    finally:
        api.set_engine(saved)
    return rows


# ---- pipeline on the CPU ------------------------------------------------------------------------------------------------
def pipeline_cpu(ctx: Ctx) -> list[dict]:
    import lightning_core as lc
    torch = _torch()
    F = None
    if torch is not None:
        import torch.nn.functional as F  # noqa: N812
        torch.set_num_threads(lc.num_threads())
        torch.backends.cuda.matmul.allow_tf32 = False
    lc.set_matmul_precision("highest")
    dev, rows = ctx.device, []
    rng = np.random.default_rng(ctx.seed)
    f32 = lambda *s, scale=1.0: (rng.standard_normal(s) * scale).astype(np.float32)  # noqa: E731
    nv = f"numpy {np.__version__}"
    tv = f"torch {torch.__version__}" if torch is not None else ""
    T = (lambda a: torch.from_numpy(a)) if torch is not None else None  # noqa: E731
    erf = np.frompyfunc(math.erf, 1, 1)

    def peers(np_fn, t_fn):
        return ([("numpy", nv, np_fn)] if np_fn else []) + ([("torch_cpu", tv, t_fn)] if torch is not None else [])

    ffn = [(512, 768, 3072)] if ctx.quick else [(512, 768, 3072), (1024, 768, 3072)]
    lnp = [(1024, 1024, 1024)] if ctx.quick else [(1024, 1024, 1024), (2048, 1024, 1024)]
    chain = [(48, 48), (96, 48)] if ctx.quick else [(48, 48), (96, 48), (192, 48), (192, 8)]
    ctxm = torch.inference_mode() if torch is not None else _Null()
    with ctxm:
        for b, dm, dff in ffn:
            x, w1, b1 = f32(b, dm), f32(dm, dff, scale=1 / math.sqrt(dm)), f32(dff, scale=0.1)
            w2, b2 = f32(dff, dm, scale=1 / math.sqrt(dff)), f32(dm, scale=0.1)
            d = _f64(x, w1, b1, w2, b2)
            hpre = d[0] @ d[1] + d[2]
            ref = (0.5 * hpre * (1.0 + erf(hpre / math.sqrt(2.0)).astype(np.float64))) @ d[3] + d[4]
            tt = [T(a) for a in (x, w1, b1, w2, b2)] if torch is not None else None
            measure(ctx, rows, "pipeline", "ffn", f"ffn batch={b},d_model={dm},d_ff={dff}",
                    f"batch={b},d_model={dm},d_ff={dff}",
                    lambda: lc.linear(lc.linear(x, w1, b1, "gelu", dev), w2, b2, "none", dev),
                    peers(None, lambda: (F.linear(F.gelu(F.linear(tt[0], tt[1].T, tt[2])), tt[3].T, tt[4])).numpy()),
                    ref, notes="two lc.linear calls (bias + erf GELU epilogue); NumPy peer n/a (no erf)")
        for b, dm, o in lnp:
            x, w, bias = f32(b, dm), f32(dm, o, scale=1 / math.sqrt(dm)), f32(o, scale=0.1)
            d = _f64(x, w, bias)
            mu = d[0].mean(axis=1, keepdims=True)
            xn = (d[0] - mu) / np.sqrt(((d[0] - mu) ** 2).mean(axis=1, keepdims=True) + 1e-5)
            ref = xn @ d[1] + d[2]

            def np_ln(x=x, w=w, bias=bias):
                m = x.mean(axis=1, keepdims=True)
                c = x - m
                return (c / np.sqrt((c * c).mean(axis=1, keepdims=True) + np.float32(1e-5))) @ w + bias
            tx, tw, tb = (T(a) for a in (x, w, bias)) if torch is not None else (None,) * 3
            measure(ctx, rows, "pipeline", "ln->proj", f"ln_proj batch={b},d_model={dm},out={o}",
                    f"batch={b},d_model={dm},out={o}",
                    lambda x=x, w=w, bias=bias: lc.linear(lc.layer_norm(x, device=dev), w, bias, "none", dev),
                    peers(np_ln, lambda tx=tx, tw=tw, tb=tb: torch.addmm(tb, F.layer_norm(tx, tx.shape[-1:]), tw).numpy()),
                    ref, notes="layer_norm + linear, two calls")
        x, w, bias = rng.random((1, 3, 8, 8), dtype=np.float32), f32(16, 3, 3, 3, scale=0.3), f32(16, scale=0.1)
        for s, hd in chain:
            ref = ref_chain(*_f64(x, w, bias), s, hd)
            sd = s * hd

            def np_chain(s=s, hd=hd, sd=sd):
                y = _np_conv_relu(x, w, bias).ravel()
                qkv = y[np.arange(3 * sd) % y.size]
                return _np_attn(*(qkv[j * sd:(j + 1) * sd].reshape(s, hd) for j in range(3)))

            def t_chain(s=s, hd=hd, sd=sd):
                y = F.relu(F.conv2d(T(x), T(w), T(bias), padding=1)).reshape(-1)
                qkv = y.repeat(-(-3 * sd // y.numel()))[:3 * sd]
                q, k, v = (qkv[j * sd:(j + 1) * sd].view(1, 1, s, hd) for j in range(3))
                return F.scaled_dot_product_attention(q, k, v)[0, 0].numpy()
            shape = f"conv(n=1,c=3->16,h=8,w=8,k=3)+attn(seq={s},d={hd})"
            measure(ctx, rows, "pipeline", "conv->attn", f"conv_attn {shape}", shape,
                    lambda s=s, hd=hd: lc.api.conv_attention_torchstrong_nchw(x, w, bias, s, hd, device=dev),
                    peers(np_chain, t_chain if torch is not None else None), ref)
    return rows


def _np_conv_relu(x, w, b):
    return ref_conv_relu(x, w, b).astype(np.float32)


def _np_attn(q, k, v):
    s = (q @ k.T) * np.float32(1.0 / math.sqrt(q.shape[1]))
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    return p @ v


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
