"""Float64 NumPy references of every op, the relative error and the validator (one copy for tests and
benchmarks; tests/python/conftest.py wraps rel_err into its failing fixture).

References (float64 unless dtype= says otherwise; the NumPy peers of the benchmarks call them with the
inputs' dtype): matmul; attention q,k,v [seq, head_dim], scale 1/sqrt(head_dim), causal masking that never
reads a masked position (a NaN in a later k or v row cannot reach an earlier output row); conv2d NCHW with
bias, stride, padding and ReLU; relu; gelu (erf or tanh); layer_norm over the last axis with optional
gamma/beta; the seed's conv3x3 -> qkv repeat -> attention chain.
rel_err(out, ref) = ||out - ref|| / ||ref|| in float64 over the finite reference entries (||out|| when the
reference is all zeros); inf when out has a NaN/inf where the reference is finite, or differs where the
reference is not finite; a shape mismatch raises ValueError. validate(out, ref, tol) -> (err, ok).
Low precision: UNIT_ROUNDOFF / unit_roundoff(dtype) (half an ulp at 1 of each storage dtype) and
lowp_matmul_excess (how far a 16-bit product is from the bound of float32 accumulation rounded once).
Tested by tests/python/test_refs.py (and every op test through conftest.py).
"""
from __future__ import annotations

import math
import types

import numpy as np

F64 = np.float64


def _as(a, dtype):
    return np.asarray(a, dtype) if dtype is not None else np.asarray(a)


def ref_matmul(a, b, dtype=F64):
    return _as(a, dtype) @ _as(b, dtype)


def ref_attention(q, k, v, causal=False, dtype=F64):
    """softmax(q k^T / sqrt(d)) v; with causal, row i reads only keys and values 0..i (a NaN/Inf in a
    masked k or v row cannot reach it). NaN/Inf a row does see propagate (inf - inf is meant: NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return _ref_attention(q, k, v, causal, dtype)


def _ref_attention(q, k, v, causal, dtype):
    q, k, v = (_as(t, dtype) for t in (q, k, v))
    scale = 1.0 / math.sqrt(q.shape[1])
    if not causal:
        s = (q @ k.T) * q.dtype.type(scale)
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        return p @ v
    out = np.empty((q.shape[0], v.shape[1]), np.result_type(q, v))
    for i in range(q.shape[0]):  # masked positions are never read
        s = (k[:i + 1] @ q[i]) * scale
        p = np.exp(s - s.max())
        out[i] = (p / p.sum()) @ v[:i + 1]
    return out


def conv_out_size(h, k, stride, pad):
    return (h + 2 * pad - k) // stride + 1


def ref_conv2d(x, w, b=None, stride_h=1, stride_w=1, pad_h=0, pad_w=0, apply_relu=False, dtype=F64):
    x, w = _as(x, dtype), _as(w, dtype)
    kh, kw = w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride_h, ::stride_w]
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    if b is not None:
        y = y + _as(b, dtype)[None, :, None, None]
    if apply_relu:
        y = np.maximum(y, 0)
    return y


def ref_relu(x):
    return np.maximum(np.asarray(x, F64), 0.0)


_erf = np.frompyfunc(math.erf, 1, 1)


def ref_gelu(x, approximate="none"):
    x = np.asarray(x, F64)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    try:
        from scipy.special import erf  # vectorised; the same function as math.erf
        e = erf(x / math.sqrt(2.0))
    except ImportError:
        e = _erf(x / math.sqrt(2.0)).astype(F64)
    return 0.5 * x * (1.0 + e)


def ref_layer_norm(x, gamma=None, beta=None, eps=1e-5, dtype=F64):
    x = _as(x, dtype)
    mean = x.mean(axis=-1, keepdims=True)
    c = x - mean
    y = c / np.sqrt((c * c).mean(axis=-1, keepdims=True) + x.dtype.type(eps))
    if gamma is not None:
        y = y * _as(gamma, dtype)
    if beta is not None:
        y = y + _as(beta, dtype)
    return y


def ref_chain(x, w, b, seq, hd, dtype=F64):
    """The seed's chain: conv3x3 (stride 1, pad 1) + bias + ReLU, q|k|v[i] = conv_flat[i % size], attention."""
    y = ref_conv2d(x, w, b, 1, 1, 1, 1, True, dtype=dtype).ravel()
    sd = seq * hd
    qkv = y[np.arange(3 * sd) % y.size]
    return ref_attention(*(qkv[j * sd:(j + 1) * sd].reshape(seq, hd) for j in range(3)), dtype=dtype)


REF = types.SimpleNamespace(matmul=ref_matmul, attention=ref_attention, conv2d=ref_conv2d,
                            conv_out_size=conv_out_size, relu=ref_relu, gelu=ref_gelu, layer_norm=ref_layer_norm,
                            chain=ref_chain)


# ---- the one relative error and validator -------------------------------------------------------------
def mismatch(out, ref) -> str | None:
    """Why out cannot be compared with ref at all (None when it can): a shape mismatch, a non-finite value
    where the reference is finite, or a difference where the reference is not finite."""
    o, r = np.asarray(out), np.asarray(ref)
    if o.shape != r.shape:
        return f"shape {o.shape} != reference shape {r.shape}"
    o, r = o.astype(F64), r.astype(F64)
    fin = np.isfinite(r)
    bad = ~np.isfinite(o) & fin
    if bad.any():
        return (f"{int(bad.sum())} non-finite value(s) in the output where the reference is finite "
                f"(first at index {np.argwhere(bad)[0].tolist()})")
    if not fin.all() and not np.array_equal(o[~fin], r[~fin], equal_nan=True):
        return "the output differs from the reference where the reference is not finite"
    return None


def rel_err(out, ref) -> float:
    """||out - ref|| / ||ref|| in float64 over the finite reference entries; inf on a mismatch() other than
    the shape (which raises ValueError)."""
    o, r = np.asarray(out), np.asarray(ref)
    if o.shape != r.shape:
        raise ValueError(f"rel_err: shape {o.shape} != reference shape {r.shape}")
    if mismatch(o, r) is not None:
        return float("inf")
    o, r = o.astype(F64), r.astype(F64)
    fin = np.isfinite(r)
    o, r = o[fin], r[fin]
    denom = np.linalg.norm(r)
    return float(np.linalg.norm(o)) if denom == 0 else float(np.linalg.norm(o - r) / denom)


def validate(out, ref, tol: float) -> tuple[float, bool]:
    """(rel_err, ok) of an output against its reference; out is reshaped to the reference's shape when the
    element counts agree (a flat out buffer); a different count gives (inf, False)."""
    o, r = np.asarray(out), np.asarray(ref)
    if o.shape != r.shape:
        if o.size != r.size:
            return float("inf"), False
        o = o.reshape(r.shape)
    err = rel_err(o, r)
    return err, bool(err < tol)


# ---- low precision --------------------------------------------------------------------------------------
UNIT_ROUNDOFF = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8, "float32": 2.0 ** -24}


def unit_roundoff(dtype) -> float:
    """u of a storage dtype (a name, NumPy dtype or type; ml_dtypes.bfloat16 included)."""
    return UNIT_ROUNDOFF[dtype if isinstance(dtype, str) else np.dtype(dtype).name]


def lowp_matmul_excess(y, a, b, dtype, bias=None) -> float:
    """max over the elements of |y - ref| / (u·|ref| + 2k·2^-24·(|a|@|b| + |bias|)), ref = a @ b (+ bias) in
    float64 from the inputs as stored (a [m,k], b [k,n], bias [n] or None), u = unit_roundoff(dtype): the
    bound of a product accumulated in float32 and rounded once to `dtype`. <= 1 passes. inf for a non-finite
    y or an element off where the bound is 0."""
    a64, b64, y64 = (np.asarray(t).astype(F64) for t in (a, b, y))
    ref, mag = a64 @ b64, np.abs(a64) @ np.abs(b64)
    if bias is not None:
        ref, mag = ref + np.asarray(bias).astype(F64), mag + np.abs(np.asarray(bias).astype(F64))
    if not np.all(np.isfinite(y64)):
        return float("inf")
    err, bound = np.abs(y64 - ref), unit_roundoff(dtype) * np.abs(ref) + 2.0 * a64.shape[-1] * 2.0 ** -24 * mag
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bound > 0, err / np.where(bound > 0, bound, 1.0), np.where(err > 0, np.inf, 0.0))
    return float(ratio.max()) if ratio.size else 0.0


def max_abs_diff(a, b) -> float:
    """max |a - b| in float64 over arrays of the same element count; inf when either holds NaN/inf."""
    a, b = np.asarray(a, F64).ravel(), np.asarray(b, F64).ravel()
    if a.size != b.size:
        raise ValueError(f"max_abs_diff: {a.size} vs {b.size} elements")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0
