"""Float64 NumPy references of every op, the relative error and the validator (one copy for tests and
benchmarks; tests/python/conftest.py wraps rel_err into its failing fixture).

References (float64 unless dtype= says otherwise; the NumPy peers of the benchmarks call them with the
inputs' dtype): matmul; attention q,k,v [seq, head_dim], scale 1/sqrt(head_dim), causal masking that never
reads a masked position (a NaN in a later k or v row cannot reach an earlier output row); conv2d NCHW with
bias, stride, padding and ReLU; relu; gelu (erf or tanh); layer_norm over the last axis with optional
gamma/beta; the seed's conv3x3 -> qkv repeat -> attention chain; ref_sdpa: batched multi-head scaled
dot-product attention (rank 2/3/4, GQA, masks, key_lengths, bottom-right causal, sliding window, lse) with its tolerance
sdpa_tol(dtype, skv, head_dim).
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


_erfc = np.frompyfunc(math.erfc, 1, 1)


def ref_gelu(x, approximate="none"):
    """float64 GELU without cancellation in the negative tail (where 1 + erf and 1 + tanh lose all digits below
    x ~ -6): the erf form as x·erfc(-x/√2)/2, the tanh form as x·σ(2u) = x / (1 + exp(-2u))."""
    x = np.asarray(x, F64)
    if approximate == "tanh":
        u = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        with np.errstate(over="ignore"):
            return x / (1.0 + np.exp(-2.0 * u))
    try:
        from scipy.special import erfc  # vectorised; the same function as math.erfc
        c = erfc(-x / math.sqrt(2.0))
    except ImportError:
        c = np.asarray(_erfc(-x / math.sqrt(2.0)), F64)  # a 0-d x gives a Python float here
    return 0.5 * x * c


def ref_activation(y, activation):
    """The linear family's activation by its API name ("none", "relu", "gelu", "gelu_tanh") in float64."""
    if activation == "relu":
        return ref_relu(y)
    if activation in ("gelu", "gelu_tanh"):
        return ref_gelu(y, "tanh" if activation == "gelu_tanh" else "none")
    if activation == "none":
        return np.asarray(y, F64)
    raise ValueError(f"ref_activation: activation: expected none, relu, gelu or gelu_tanh, got {activation!r}")


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


SDPA_MAX_HEAD_DIM = 256


def ref_sdpa(q, k, v, attn_mask=None, causal=False, scale=None, key_lengths=None, return_lse=False, window=None):
    """Float64 scaled dot-product attention, the semantics of lc.scaled_dot_product_attention (the comment
    above lc_sdpa_args in src/core/backend.h): q [B,H,Sq,D], k and v [B,Hkv,Skv,D] (or all [H,S,D] or all
    [S,D]), H % Hkv == 0, query head h reads kv head h // (H // Hkv). Key j is visible to query row i of
    sequence b when j < L_b (L_b = key_lengths[b], else Skv), when causal j <= i + L_b - Sq (the diagonal
    aligned to the end of the valid keys), with a window (None/0: none) j > i + L_b - Sq - window (with causal:
    the last `window` keys up to the row's position, Hugging Face's sliding window; without: a left bound
    only), and a bool attn_mask is True there; a float attn_mask is added
    to the scaled scores (-inf hides the key). attn_mask broadcasts to [B,H,Sq,Skv] by NumPy rules.
    scale defaults to 1/sqrt(D). Hidden keys are never read (a NaN in a hidden k/v row reaches no output);
    NaN a row does see propagates to that row only; a row with no visible key gets zeros and lse -inf.
    Inputs of any float dtype are read as stored (bfloat16 included). Returns float64 out (q's rank) and,
    with return_lse, (out, lse) with lse = log(sum_j exp(score_j)) over the visible keys, shape q's shape
    without D. Bad shapes raise ValueError naming the argument."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _ref_sdpa(q, k, v, attn_mask, causal, scale, key_lengths, return_lse, window)


def _f64(a):
    return np.asarray(a).astype(F64)  # astype, not asarray(.., F64): ml_dtypes' bfloat16 converts this way


def _ref_sdpa(q, k, v, attn_mask, causal, scale, key_lengths, return_lse, window=None):
    q, k, v = _f64(q), _f64(k), _f64(v)
    rank = q.ndim
    if rank not in (2, 3, 4):
        raise ValueError(f"ref_sdpa: q: expected rank 2, 3 or 4, got shape {q.shape}")
    for name, t in (("k", k), ("v", v)):
        if t.ndim != rank:
            raise ValueError(f"ref_sdpa: {name}: expected rank {rank} like q, got shape {t.shape}")
    q4, k4, v4 = (t.reshape((1,) * (4 - rank) + t.shape) for t in (q, k, v))
    B, H, Sq, D = q4.shape
    Hkv, Skv = k4.shape[1], k4.shape[2]
    if k4.shape[0] != B or k4.shape[3] != D or Hkv < 1 or H % Hkv:
        raise ValueError(f"ref_sdpa: k: expected [{B}, Hkv dividing {H}, Skv, {D}], got {k.shape}")
    if v4.shape != k4.shape:
        raise ValueError(f"ref_sdpa: v: expected k's shape {k.shape}, got {v.shape}")
    if not 1 <= D <= SDPA_MAX_HEAD_DIM:
        raise ValueError(f"ref_sdpa: q: head_dim {D} not in 1..{SDPA_MAX_HEAD_DIM}")
    if key_lengths is None:
        lens = np.full(B, Skv, np.int64)
    else:
        lens = np.asarray(key_lengths).reshape(-1).astype(np.int64)
        if lens.shape != (B,) or (lens < 0).any() or (lens > Skv).any():
            raise ValueError(f"ref_sdpa: key_lengths: expected {B} ints in 0..{Skv}, got {np.asarray(key_lengths)}")
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    g = H // Hkv
    kk, vv = np.repeat(k4, g, axis=1), np.repeat(v4, g, axis=1)  # head h -> kv head h // g
    i, j = np.arange(Sq)[:, None], np.arange(Skv)[None, :]
    L = lens[:, None, None, None]
    vis = np.broadcast_to(j < L, (B, H, Sq, Skv))
    if causal:
        vis = vis & (j <= i + L - Sq)
    if window:
        if int(window) < 0:
            raise ValueError(f"ref_sdpa: window: expected None, 0 or an int >= 1, got {window}")
        vis = vis & (j > i + L - Sq - int(window))
    s = (q4 @ kk.swapaxes(-1, -2)) * scale
    if attn_mask is not None:
        m = np.asarray(attn_mask)
        try:
            if m.ndim > 4:
                raise ValueError
            m = np.broadcast_to(m, (B, H, Sq, Skv))
        except ValueError:
            raise ValueError(f"ref_sdpa: attn_mask: shape {np.shape(attn_mask)} does not broadcast to "
                             f"{[B, H, Sq, Skv]}") from None
        if m.dtype == np.bool_:
            vis = vis & m
        else:
            s = s + _f64(m)
    vis = vis & ~(s == -np.inf)  # an additive -inf hides the key (its v is not read)
    s = np.where(vis, s, -np.inf)
    mx = s.max(axis=-1, keepdims=True)  # NaN propagates; -inf: no visible key
    empty = ~vis.any(axis=-1, keepdims=True)
    p = np.where(vis, np.exp(s - np.where(empty, 0.0, mx)), 0.0)
    den = p.sum(axis=-1, keepdims=True)
    fin = np.isfinite(vv)
    w = p / np.where(empty, 1.0, den)
    out = w @ np.where(fin, vv, 0.0)
    if not fin.all():  # a non-finite v entry reaches only the rows that see its key (0·inf there: NaN)
        seen = lambda cond: (vis.astype(F64) @ cond.astype(F64)) > 0  # noqa: E731
        zero_seen = ((vis & (w == 0)).astype(F64) @ np.isinf(vv).astype(F64)) > 0
        pos, neg = seen(vv == np.inf), seen(vv == -np.inf)
        out = np.where(np.isnan(out), out, np.where(pos, np.inf, np.where(neg, -np.inf, out)))
        out = np.where(seen(np.isnan(vv)) | (pos & neg) | zero_seen, np.nan, out)
    out = np.where(empty, 0.0, out)
    out = out.reshape(out.shape[4 - rank:])
    if not return_lse:
        return out
    lse = np.where(empty[..., 0], -np.inf, (mx + np.log(np.where(empty, 1.0, den)))[..., 0])
    return out, lse.reshape(lse.shape[4 - rank:])


def sdpa_tol(dtype, skv, head_dim=0) -> float:
    """The rel_err bound of an attention output of storage `dtype` (the compute dtype: float32 for float64
    inputs) against ref_sdpa of the same stored inputs, with Skv keys of head_dim D:

        tol = 2·u + 4·2^-24·sqrt(Skv + D),   u = unit_roundoff(dtype)

    Why: the reference reads the inputs as stored, so only the kernel's arithmetic counts. (1) The output
    is rounded once to the dtype: <= u relative per element. (2) 16-bit kernels may round the
    probabilities P (in [0, 1]) to the dtype before the P·V product (flash attention does): u per term,
    which averages over the keys to about u relative to the output; 2u covers both with margin. (3) The
    rest is float32 (scores, softmax, accumulation): the score dot products sum D terms and the softmax
    denominator and P·V sum Skv terms; float32 rounding errors of random sign grow like sqrt(n)·2^-24
    relative to the sums (exp2-based softmax adds a few 2^-24 per term, inside the constant 4). That gives
    ~8e-6 for float32 at Skv = 1000 (the issue's 1e-5 float32 accuracy) and is negligible next to 2u for
    float16/bfloat16. float64 inputs compute in float32 (the library's rule), hence float32's bound."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    u = unit_roundoff("float32" if name == "float64" else name)
    return 2.0 * u + 4.0 * 2.0 ** -24 * math.sqrt(float(skv) + float(head_dim))


# ---- LLM building blocks (issue 16) ---------------------------------------------------------------------
def as_host(x):
    """A result as a NumPy array (an lc.Tensor is downloaded)."""
    return np.asarray(x) if isinstance(x, np.ndarray) else x.numpy()


def check_sdpa(out, want, dt, skv, d):
    """Asserts that an attention result has dtype dt and q's shape and agrees with the float64 reference
    `want` within sdpa_tol(dt, skv, d) (NaN/inf exactly where the reference has them); returns the error."""
    out = as_host(out)
    assert out.dtype == np.dtype(dt) and out.shape == want.shape, (out.dtype, out.shape, want.shape)
    why = mismatch(out, want)
    assert why is None, why
    err, tol = rel_err(out, want), sdpa_tol(dt, skv, d)
    assert err < tol, f"rel_err {err:.3g} >= tol {tol:.3g}"
    return err


def ref_rms_norm(x, weight=None, eps=1e-6):
    """x / sqrt(mean(x**2, last axis) + eps) * weight, in float64."""
    x = _f64(x)
    y = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    return y if weight is None else y * _f64(weight)


def ref_softmax(x):
    """Softmax over the last axis in float64 (max-subtracted); a row holding NaN or +inf, or only -inf, is NaN
    everywhere (as torch and the library)."""
    x = _f64(x)
    with np.errstate(invalid="ignore"):
        m = np.max(np.where(np.isnan(x), -np.inf, x), axis=-1, keepdims=True)
        e = np.exp(x - m)
        s = e.sum(axis=-1, keepdims=True)
        return e / s


def ref_silu(x):
    """x * sigmoid(x) in float64 (written so that neither branch overflows)."""
    x = _f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x))
        return x * np.where(x >= 0, 1.0, e) / (1.0 + e)


def ref_silu_mul(a, b):
    return ref_silu(a) * _f64(b)


def ref_rope_inv_freq(rotary_dim, theta=10000.0, scaling=None):
    """inv_freq[i] = theta^(-2i/rotary_dim) in float64, then HF's rope_scaling: "linear" (/ factor) or "llama3"
    (transformers' _compute_llama3_parameters, evaluated in float64)."""
    inv = 1.0 / theta ** (np.arange(0, rotary_dim, 2, dtype=F64) / rotary_dim)
    kind = None if scaling is None else scaling.get("rope_type", scaling.get("type"))
    if kind in (None, "default"):
        return inv
    factor = float(scaling["factor"])
    if kind == "linear":
        return inv / factor
    if kind != "llama3":
        raise ValueError(f"ref_rope_inv_freq: unknown rope_type {kind!r}")
    low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    old = float(scaling["original_max_position_embeddings"])
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    llama = np.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * llama / factor + smooth * llama
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, llama)


def ref_rope(x, positions, theta=10000.0, rotary_dim=None, scaling=None):
    """Rotary embedding, half-split (rotate_half) layout, in float64: x [..., s, d] with positions [s] or
    [b, s] (broadcast against x's leading axes: [b, h, s, d] takes [b, s] as [b, 1, s]); the first rotary_dim
    channels rotate in pairs (i, i + rotary_dim/2) by position * inv_freq[i], the rest pass through."""
    x = _f64(x)
    d = x.shape[-1]
    rd = d if rotary_dim is None else int(rotary_dim)
    h2 = rd // 2
    pos = np.asarray(positions).astype(F64)
    ang = pos[..., None] * ref_rope_inv_freq(rd, theta, scaling)  # [(b,) s, h2]
    if pos.ndim == 2 and x.ndim == 4:
        ang = ang[:, None]
    elif pos.ndim == 2:
        ang = ang[0]
    c, s_ = np.cos(ang), np.sin(ang)
    x1, x2 = x[..., :h2], x[..., h2:rd]
    out = x.copy()
    out[..., :h2] = x1 * c - x2 * s_
    out[..., h2:rd] = x2 * c + x1 * s_
    return out


REF = types.SimpleNamespace(matmul=ref_matmul, attention=ref_attention, conv2d=ref_conv2d,
                            conv_out_size=conv_out_size, relu=ref_relu, gelu=ref_gelu, layer_norm=ref_layer_norm,
                            chain=ref_chain, sdpa=ref_sdpa, rms_norm=ref_rms_norm,
                            softmax=ref_softmax, silu=ref_silu, silu_mul=ref_silu_mul, rope=ref_rope)


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
    """max over the elements of |y - ref| / (u·|ref| + 2k·2^-24·(|a|@|b| + |bias|) + s/2), ref = a @ b (+ bias)
    in float64 from the inputs as stored (a [m,k], b [k,n], bias [n] or None), u = unit_roundoff(dtype), s the
    spacing of the dtype's subnormals (an output below the smallest normal rounds to a multiple of s): the
    bound of a product accumulated in float32 and rounded once to `dtype`. <= 1 passes. inf for a non-finite
    y or an element off where the bound is 0."""
    a64, b64, y64 = (np.asarray(t).astype(F64) for t in (a, b, y))
    ref, mag = a64 @ b64, np.abs(a64) @ np.abs(b64)
    if bias is not None:
        ref, mag = ref + np.asarray(bias).astype(F64), mag + np.abs(np.asarray(bias).astype(F64))
    if not np.all(np.isfinite(y64)):
        return float("inf")
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    half_sub = {"float16": 2.0 ** -25, "bfloat16": 2.0 ** -134, "float32": 2.0 ** -150}[name]
    err = np.abs(y64 - ref)
    bound = unit_roundoff(dtype) * np.abs(ref) + 2.0 * a64.shape[-1] * 2.0 ** -24 * mag + half_sub
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
