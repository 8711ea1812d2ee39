"""Hand-written argument schemas of the core ops, with float64 NumPy references that also decide validity.

``make_op_case(rng, name)`` builds a valid call of op ``name`` (small random shapes, sometimes tiled
sizes), draws mutations (values.py) and returns ``OpCase``. ``reference(case)`` recomputes the expected
result from the arguments as finally passed, raising ``Invalid`` where docs/python_api.md says the call
must be refused (dtype, shape, size ints, out rules, aliasing). The worker (oracle) compares the two.
"""
import math
import operator

import numpy as np

import lightning_core as lc
from lightning_core import api
from lightning_core.testing.refs import ref_gelu as _gelu  # the one float64 gelu reference

from .values import EITHER, INVALID, VALID, Call, draw_mutations, mk_array

TENSORS = (lc.Tensor, lc.Tensor64, lc.TensorView)


class Invalid(Exception):
    """The arguments are invalid per the docs: the call must raise."""


class Unjudged(Exception):
    """The docs do not decide (or the reference cannot afford it): any accepted outcome passes."""


def _dim(rng):
    r = rng.random()
    if r < 0.7:
        return int(rng.integers(1, 9))
    if r < 0.95:
        return int(rng.integers(9, 41))
    return int(rng.integers(41, 131))


# ---- argument conversion as the docs define it ------------------------------------------------------

def _is_f64(v):
    return (isinstance(v, np.ndarray) and v.dtype == np.float64) or (isinstance(v, TENSORS) and v.dtype == "float64")


def _compute_dtype(vals, names, f64_ok):
    if f64_ok and any(_is_f64(vals[n]) for n in names if vals.get(n) is not None):
        return np.float64
    return np.float32


def _arr(v, name, cdt):
    """The float64 values of input ``v`` after the library's conversion to ``cdt``, or Invalid."""
    if isinstance(v, TENSORS):
        if np.dtype(v.dtype) != cdt:
            raise Invalid(f"{name}: tensor dtype {v.dtype} != {np.dtype(cdt)}")
        x = v.numpy()
    elif isinstance(v, np.ndarray):
        if v.dtype.kind != "f" or v.dtype.itemsize > 8:
            raise Invalid(f"{name}: dtype {v.dtype}")
        x = v.astype(cdt)
    else:
        raise Invalid(f"{name}: not an array ({type(v).__name__})")
    if any(d == 0 for d in x.shape):
        raise Invalid(f"{name}: empty")
    return x.astype(np.float64)


def _flat_view_ok(vals, names, shape):
    """Flat APIs view a tensor of another shape with ``shape``: that needs a contiguous tensor."""
    for n in names:
        v = vals.get(n)
        if isinstance(v, TENSORS) and tuple(v.shape) != tuple(shape) and not v.is_contiguous:
            raise Invalid(f"{n}: strided tensor of another shape")


def _int_at_least(v, name, lo):
    """v as an int >= lo (the model of the library's integer arguments); Invalid otherwise."""
    if isinstance(v, (bool, np.bool_)) or not hasattr(v, "__index__"):
        raise Invalid(f"{name}: not an int")
    try:
        v = operator.index(v)
    except TypeError:
        raise Invalid(f"{name}: not an int")
    if v < lo or v >= 2**63:
        raise Invalid(f"{name}: < {lo} or overflows")
    return v


def _size(v, name):
    return _int_at_least(v, name, 1)


def _stride(v, name):
    v = _size(v, name)
    if v >= 2**31:
        raise Unjudged(f"{name}: huge")
    return v


def _nonneg(v, name):
    v = _int_at_least(v, name, 0)
    if v >= 2**31:
        raise Unjudged(f"{name}: huge")
    return v


def _flag(v, name):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, int):
        return bool(v)
    raise Invalid(f"{name}: not a bool")


def _device(v):
    if v not in ("cpu", "cuda", "metal", "auto"):
        raise Invalid(f"device {v!r}")


def _check_out(out, shape, cdt, flat, alias_ok, inputs):
    """Invalid unless ``out`` is acceptable (docs: *_into outputs are never converted)."""
    if isinstance(out, TENSORS):
        if np.dtype(out.dtype) != cdt:
            raise Invalid("out: tensor dtype")
        if not out.is_contiguous:
            raise Invalid("out: tensor not contiguous")
        got = tuple(out.shape)
    elif isinstance(out, np.ndarray):
        if out.dtype != cdt or not out.dtype.isnative:
            raise Invalid("out: dtype")
        if not out.flags.c_contiguous or not out.flags.writeable or not out.flags.aligned:
            raise Invalid("out: layout/readonly")
        got = out.shape
    else:
        raise Invalid("out: not an array")
    if (math.prod(got) != math.prod(shape)) if flat else (tuple(got) != tuple(shape)):
        raise Invalid(f"out: shape {got} != {shape}")
    for name, v in inputs.items():
        if v is None:
            continue
        if v is out and not (alias_ok is True or (alias_ok and name in alias_ok)):
            raise Invalid(f"out is {name}")
        if isinstance(out, TENSORS) and isinstance(v, TENSORS) and out.device == v.device:
            if v.data_ptr == out.data_ptr and not (alias_ok is True or (alias_ok and name in alias_ok)):
                raise Invalid(f"out shares {name}'s storage")
        if isinstance(out, np.ndarray) and isinstance(v, np.ndarray) and np.shares_memory(out, v):
            exact = ((alias_ok is True or (alias_ok and name in alias_ok)) and v.ctypes.data == out.ctypes.data and v.nbytes == out.nbytes
                     and v.dtype == out.dtype and v.flags.c_contiguous)
            if not exact:
                raise Invalid(f"out overlaps {name}")


# ---- float64 references --------------------------------------------------------------------------

def _attention(q, k, v, causal):
    seq, d = q.shape
    out = np.empty((seq, v.shape[1]))
    with np.errstate(all="ignore"):
        for i in range(seq):
            n = i + 1 if causal else k.shape[0]
            s = k[:n] @ q[i] / math.sqrt(d)
            p = np.exp(s - np.max(s))
            out[i] = (p / p.sum()) @ v[:n]
    return out


def _conv(x, w, b, sh, sw, ph, pw):
    n, c, h, wd = x.shape
    oc, c2, kh, kw = w.shape
    if c2 != c:
        raise Invalid("conv: channels")
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise Invalid("conv: output size")
    if (h + 2 * ph) * (wd + 2 * pw) > 10**7:
        raise Unjudged("conv: padding too large to check")
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    out = np.zeros((n, oc, oh, ow))
    with np.errstate(all="ignore"):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    if b is not None:
        out += b.reshape(1, oc, 1, 1)
    return out


def _layer_norm(x, g, b, eps):
    with np.errstate(all="ignore"):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + eps)
    return y * (1 if g is None else g) + (0 if b is None else b)


def _eps(v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise Invalid("eps type")
    try:
        v = float(v)
    except OverflowError:
        raise Invalid("eps overflow")
    if not math.isfinite(v) or v <= 0 or not 0 < np.float32(v) < np.inf:
        raise Invalid("eps value (float32 must hold it)")
    return v


def _lowp_rule(vals):
    """The float16/bfloat16 rule (docs/python_api.md, "Input rules"): such an input mixed with any other
    dtype is refused; all inputs of one such dtype compute in it or in float32, as the op table says
    (judged by tests/python/test_dtype_ops.py, not here)."""
    dts = {n: np.dtype(v.dtype).name if isinstance(v, np.ndarray) else v.dtype
           for n, v in vals.items() if n != "out" and isinstance(v, (np.ndarray,) + TENSORS)}
    low = [n for n, d in dts.items() if d in ("float16", "bfloat16")]
    if not low:
        return
    if any(d != dts[low[0]] for d in dts.values()):
        raise Invalid(f"{low[0]}: {dts[low[0]]} mixed with another dtype")
    raise Unjudged("float16/bfloat16 inputs: tests/python/test_dtype_ops.py")


def ref_for(name, vals):
    """(expected float64 array, compute dtype, out rules) for op ``name`` with arguments ``vals``."""
    _lowp_rule(vals)
    base = name[:-5] if name.endswith("_into") else name
    base = base.replace("api.", "").replace("lightning_", "")
    into = name.endswith("_into")
    _device(vals.get("device", "cpu"))
    alias_ok = False
    flat = False
    if base in ("matmul2d", "matmul", "matmul_np"):
        cdt = _compute_dtype(vals, ["a", "b"], True)
        a, b = _arr(vals["a"], "a", cdt), _arr(vals["b"], "b", cdt)
        if base == "matmul_np":
            m, k, n = (_size(vals[x], x) for x in "mkn")
            if a.size != m * k or b.size != k * n:
                raise Invalid("counts")
            _flat_view_ok(vals, ["a"], (m, k))
            _flat_view_ok(vals, ["b"], (k, n))
            _flat_view_ok(vals, ["out"], (m, n))
            a, b, flat = a.reshape(m, k), b.reshape(k, n), True
        elif a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            raise Invalid("matmul shapes")
        ins, ref = {"a": vals["a"], "b": vals["b"]}, a @ b
    elif base in ("linear", "silu_mul_linear"):
        cdt = np.float32
        first = "gu" if base == "silu_mul_linear" else "x"
        x, w = _arr(vals[first], first, cdt), _arr(vals["w"], "w", cdt)
        if base == "silu_mul_linear":  # x = silu(gate) * up of gu's halves, rounded to float32 as silu_mul writes it
            if x.ndim != 2 or x.shape[1] % 2:
                raise Invalid("gu shape")
            g, u = x[:, :x.shape[1] // 2].astype(np.float64), x[:, x.shape[1] // 2:].astype(np.float64)
            x = (g / (1.0 + np.exp(-g)) * u).astype(cdt)
        bias = None if vals.get("bias") is None else _arr(vals["bias"], "bias", cdt)
        res = None if vals.get("residual") is None else _arr(vals["residual"], "residual", cdt)
        if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0] or (bias is not None and bias.shape != (w.shape[1],)):
            raise Invalid("linear shapes")
        if res is not None and res.shape != (x.shape[0], w.shape[1]):
            raise Invalid("residual shape")
        act = vals.get("activation", "none")
        if act not in ("none", "relu", "gelu", "gelu_tanh"):
            raise Invalid("activation")
        y = x @ w + (0 if bias is None else bias)
        ref = {"none": y, "relu": np.maximum(y, 0), "gelu": _gelu(y, "none"), "gelu_tanh": _gelu(y, "tanh")}[act]
        if res is not None:
            ref = ref + res
        ins = {first: vals[first], "w": vals["w"], "bias": vals.get("bias"), "residual": vals.get("residual")}
        alias_ok = {"residual"}  # out may be exactly the residual
    elif base in ("attention2d", "attention_forward", "attention"):
        cdt = np.float32
        q, k, v = (_arr(vals[x], x, cdt) for x in "qkv")
        causal = _flag(vals.get("causal", False), "causal")
        if base == "attention2d":
            if q.ndim != 2 or q.shape != k.shape or q.shape != v.shape:
                raise Invalid("attention shapes")
        else:
            seq, d = _size(vals["seq"], "seq"), _size(vals["head_dim"], "head_dim")
            if any(t.size != seq * d for t in (q, k, v)):
                raise Invalid("counts")
            _flat_view_ok(vals, ["q", "k", "v", "out"], (seq, d))
            q, k, v = (t.reshape(seq, d) for t in (q, k, v))
            flat = True
        ref = _attention(q, k, v, causal)
        if base != "attention2d":
            ref = ref.reshape(-1)
        ins = {x: vals[x] for x in "qkv"}
    elif base in ("conv2d_nchw", "conv_relu_nchw"):
        cdt = np.float32
        x, w = _arr(vals["x"], "x", cdt), _arr(vals["w"], "w", cdt)
        b = None if vals.get("b") is None else _arr(vals["b"], "b", cdt)
        if x.ndim != 4 or w.ndim != 4 or (b is not None and b.shape != (w.shape[0],)):
            raise Invalid("conv shapes")
        st = [_stride(vals.get(s, 1), s) for s in ("stride_h", "stride_w")]
        pd = [_nonneg(vals.get(s, 0), s) for s in ("pad_h", "pad_w")]
        ref = _conv(x, w, b, st[0], st[1], pd[0], pd[1])
        if base == "conv_relu_nchw" or _flag(vals.get("apply_relu", False), "apply_relu"):
            ref = np.maximum(ref, 0)
        ins = {"x": vals["x"], "w": vals["w"], "b": vals.get("b")}
    elif base == "conv_attention_torchstrong_nchw":
        cdt = np.float32
        if any(isinstance(vals.get(n), TENSORS) for n in ("x", "w", "b", "out")):
            raise Unjudged("lc.api conv->attention documents ndarrays only")
        x, w = _arr(vals["x"], "x", cdt), _arr(vals["w"], "w", cdt)
        b = None if vals.get("b") is None else _arr(vals["b"], "b", cdt)
        if x.ndim != 4 or w.ndim != 4 or (b is not None and b.shape != (w.shape[0],)):
            raise Invalid("conv shapes")
        st = [_stride(vals.get(s, 1), s) for s in ("stride_h", "stride_w")]
        pd = [_nonneg(vals.get(s, 1), s) for s in ("pad_h", "pad_w")]
        seq, d = _size(vals["seq_len"], "seq_len"), _size(vals["head_dim"], "head_dim")
        if vals.get("execution_mode", "eager") not in ("eager", "graph"):
            raise Invalid("execution_mode")
        if seq * d > 10**6:
            raise Unjudged("output too large to check")
        y = np.maximum(_conv(x, w, b, st[0], st[1], pd[0], pd[1]), 0).ravel()
        qkv = y[np.arange(3 * seq * d) % y.size].reshape(3, seq, d)
        ref = _attention(qkv[0], qkv[1], qkv[2], False)
        ins = {"x": vals["x"], "w": vals["w"], "b": vals.get("b")}
        flat = True  # lc.api checks out's element count (seed behaviour)
    elif base in ("vector_add", "matrix_sub", "matrix_div"):
        cdt = _compute_dtype(vals, ["a", "b"], True)
        a, b = _arr(vals["a"], "a", cdt), _arr(vals["b"], "b", cdt)
        if base == "vector_add":
            if a.shape != b.shape:
                raise Invalid("shapes")
        else:
            r, c = _size(vals["rows"], "rows"), _size(vals["cols"], "cols")
            if a.size != r * c or b.size != r * c:
                raise Invalid("counts")
            _flat_view_ok(vals, ["a", "b", "out"], (r, c))
            a, b, flat = a.reshape(r, c), b.reshape(r, c), True
        with np.errstate(all="ignore"):
            ref = {"vector_add": np.add, "matrix_sub": np.subtract, "matrix_div": np.divide}[base](a, b)
        ins, alias_ok = {"a": vals["a"], "b": vals["b"]}, True
    elif base in ("relu", "gelu"):
        cdt = _compute_dtype(vals, ["x"], base == "relu")
        x = _arr(vals["x"], "x", cdt)
        if base == "gelu":
            appr = vals.get("approximate", "none")
            if appr not in ("none", "tanh"):
                raise Invalid("approximate")
            with np.errstate(all="ignore"):
                ref = _gelu(x, appr)
        else:
            ref = np.where(np.isnan(x), np.nan, np.maximum(x, 0))
        ins, alias_ok = {"x": vals["x"]}, True
    elif base == "layer_norm":
        cdt = np.float32
        x = _arr(vals["x"], "x", cdt)
        if x.ndim < 1:
            raise Invalid("layer_norm: 0-d")
        g = None if vals.get("gamma") is None else _arr(vals["gamma"], "gamma", cdt)
        b = None if vals.get("beta") is None else _arr(vals["beta"], "beta", cdt)
        for t in (g, b):
            if t is not None and t.shape != (x.shape[-1],):
                raise Invalid("gamma/beta shape")
        ref = _layer_norm(x, g, b, _eps(vals.get("eps", 1e-5)))
        ins, alias_ok = {"x": vals["x"], "gamma": vals.get("gamma"), "beta": vals.get("beta")}, {"x"}
    elif base == "qkv_pack_repeat":
        cdt = np.float32
        src = _arr(vals["src"], "src", cdt).ravel()
        if into:
            o = vals["out"]
            shape = tuple(getattr(o, "shape", ()))
            if not shape:
                raise Invalid("out: 0-d")
            n = math.prod(shape)
            ref = src[np.arange(n) % src.size].reshape(shape) if n else None
            if ref is None:
                raise Invalid("empty out")
        else:
            seq, d = _size(vals["seq_len"], "seq_len"), _size(vals["head_dim"], "head_dim")
            if seq * d > 10**6:
                raise Unjudged("output too large to check")
            ref = src[np.arange(3 * seq * d) % src.size].reshape(3, seq, d)
        ins = {"src": vals["src"]}
    else:
        raise KeyError(name)
    if into:
        _check_out(vals["out"], ref.shape, cdt, flat, alias_ok, ins)
    return ref, cdt, ins


# ---- schemas -------------------------------------------------------------------------------------

def _arrays(rng, call, shapes, role="in"):
    for n, s in shapes.items():
        call.set(n, mk_array(rng, s), role)


def _finish(rng, call, out_shape, device_default):
    if "out" in call.order:
        call.set("out", np.full(out_shape, np.nan, np.float32), "out")
    if rng.random() < 0.6:
        call.set("device", ["cpu", "auto"][int(rng.integers(2))] if device_default == "cpu" else "auto", "dev")
    elif "device" in call.order:
        call.omit.add("device")
        call.vals["device"] = device_default


def _build(rng, name):
    fn = eval(name.replace("api.", "api.") if name.startswith("api.") else "lc." + name)
    base = name[:-5] if name.endswith("_into") else name
    base = base.replace("api.", "").replace("lightning_", "")
    into = name.endswith("_into")
    dev_default = "auto" if (name.startswith("api.") or name.startswith("lightning_")) else "cpu"
    order_of = {
        "matmul2d": ["a", "b", "out", "device"], "matmul": ["a", "b", "out", "device"],
        "matmul_np": ["a", "b", "out", "m", "k", "n", "device"],
        "linear": ["x", "w", "out", "bias", "activation", "device", "residual"],
        "silu_mul_linear": ["gu", "w", "out", "bias", "activation", "device", "residual"],
        "attention2d": ["q", "k", "v", "out", "causal", "device"],
        "attention_forward": ["q", "k", "v", "out", "seq", "head_dim", "causal", "device"],
        "attention": ["q", "k", "v", "out", "seq", "head_dim", "causal", "device"],
        "conv2d_nchw": ["x", "w", "b", "out", "stride_h", "stride_w", "pad_h", "pad_w", "device", "apply_relu"],
        "conv_relu_nchw": ["x", "w", "b", "out", "stride_h", "stride_w", "pad_h", "pad_w", "device"],
        "conv_attention_torchstrong_nchw": ["x", "w", "b", "out", "seq_len", "head_dim", "stride_h", "stride_w",
                                            "pad_h", "pad_w", "device", "execution_mode"],
        "vector_add": ["a", "b", "out", "device"], "matrix_sub": ["a", "b", "out", "rows", "cols", "device"],
        "matrix_div": ["a", "b", "out", "rows", "cols", "device"], "relu": ["x", "out", "device"],
        "gelu": ["x", "out", "approximate", "device"], "layer_norm": ["x", "out", "gamma", "beta", "eps", "device"],
        "qkv_pack_repeat": ["src", "out", "seq_len", "head_dim", "device"],
    }
    order = [o for o in order_of[base] if into or o != "out"]
    if into and base == "qkv_pack_repeat":
        order = [o for o in order if o not in ("seq_len", "head_dim")]
    call = Call(fn, name if name.startswith("api.") else "lc." + name, order)
    m, k, n = _dim(rng), _dim(rng), _dim(rng)
    if base in ("matmul2d", "matmul"):
        _arrays(rng, call, {"a": (m, k), "b": (k, n)})
        out = (m, n)
    elif base == "matmul_np":
        _arrays(rng, call, {"a": (m * k,), "b": (k, n)})
        for x, v in zip("mkn", (m, k, n)):
            call.set(x, v, "size")
        out = (m * n,)
    elif base in ("linear", "silu_mul_linear"):
        first = {"x": (m, k)} if base == "linear" else {"gu": (m, 2 * k)}
        _arrays(rng, call, {**first, "w": (k, n), "bias": (n,), "residual": (m, n)})
        call.roles["bias"] = "opt_in"
        call.roles["residual"] = "opt_in"
        call.set("activation", ["none", "relu", "gelu", "gelu_tanh"][int(rng.integers(4))], "choice")
        out = (m, n)
    elif base in ("attention2d", "attention_forward", "attention"):
        seq, d = _dim(rng), min(_dim(rng), 64)
        shp = (seq, d) if base == "attention2d" else ((seq * d,) if rng.random() < 0.7 else (seq, d))
        _arrays(rng, call, {"q": shp, "k": shp, "v": shp})
        if base != "attention2d":
            call.set("seq", seq, "size")
            call.set("head_dim", d, "size")
        call.set("causal", bool(rng.random() < 0.5), "flag")
        out = (seq, d) if base == "attention2d" else (seq * d,)
    elif base in ("conv2d_nchw", "conv_relu_nchw", "conv_attention_torchstrong_nchw"):
        bn, c, oc = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 6))
        kh = 3 if rng.random() < 0.6 else int(rng.integers(1, 6))
        kw = kh if rng.random() < 0.7 else int(rng.integers(1, 6))
        h, w = int(rng.integers(kh, kh + 12)), int(rng.integers(kw, kw + 12))
        _arrays(rng, call, {"x": (bn, c, h, w), "w": (oc, c, kh, kw), "b": (oc,)})
        call.roles["b"] = "opt_in"
        sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        ph, pw = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        if base == "conv_attention_torchstrong_nchw" and rng.random() < 0.5:
            kh = kw = 3
            call.set("w", mk_array(rng, (oc, c, 3, 3)), "in")
            sh = sw = ph = pw = 1
        for s, v in zip(("stride_h", "stride_w", "pad_h", "pad_w"), (sh, sw, ph, pw)):
            call.set(s, v, "size")
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        out = (bn, oc, oh, ow)
        if base == "conv2d_nchw":
            call.set("apply_relu", bool(rng.random() < 0.5), "flag")
        if base == "conv_attention_torchstrong_nchw":
            seq, d = _dim(rng), min(_dim(rng), 32)
            call.set("seq_len", seq, "size")
            call.set("head_dim", d, "size")
            out = (seq, d)
            if not into or rng.random() < 0.5:
                call.set("execution_mode", "graph" if rng.random() < 0.5 else "eager", "choice")
            else:
                call.order.remove("execution_mode")
    elif base == "vector_add":
        shp = tuple(_dim(rng) for _ in range(int(rng.integers(0, 4))))
        _arrays(rng, call, {"a": shp, "b": shp})
        out = shp
    elif base in ("matrix_sub", "matrix_div"):
        _arrays(rng, call, {"a": (m * n,) if rng.random() < 0.5 else (m, n), "b": (m, n)})
        call.set("rows", m, "size")
        call.set("cols", n, "size")
        out = (m, n)
    elif base in ("relu", "gelu", "layer_norm"):
        shp = tuple(_dim(rng) for _ in range(int(rng.integers(0 if base != "layer_norm" else 1, 4))))
        _arrays(rng, call, {"x": shp})
        out = shp
        if base == "gelu":
            call.set("approximate", ["none", "tanh"][int(rng.integers(2))], "choice")
        if base == "layer_norm":
            _arrays(rng, call, {"gamma": (shp[-1],), "beta": (shp[-1],)}, "opt_in")
            call.set("eps", 1e-5, "eps")
    elif base == "qkv_pack_repeat":
        _arrays(rng, call, {"src": (_dim(rng), _dim(rng))})
        seq, d = _dim(rng), _dim(rng)
        if not into:
            call.set("seq_len", seq, "size")
            call.set("head_dim", d, "size")
        out = (3, seq, d)
    else:
        raise KeyError(name)
    for x in ("bias", "gamma", "beta", "b"):
        if x in call.vals and rng.random() < 0.25:
            call.vals[x] = None
    _finish(rng, call, out, dev_default)
    return call


OP_NAMES = ["matmul2d", "matmul2d_into", "matmul", "matmul_np_into", "linear", "linear_into", "silu_mul_linear",
            "silu_mul_linear_into", "attention2d",
            "attention2d_into", "attention_forward", "attention_forward_into", "conv2d_nchw", "conv2d_nchw_into",
            "vector_add", "vector_add_into", "matrix_sub", "matrix_sub_into", "matrix_div", "matrix_div_into",
            "relu", "relu_into", "gelu", "gelu_into", "layer_norm", "layer_norm_into", "qkv_pack_repeat",
            "qkv_pack_repeat_into", "api.matmul", "api.matmul_into", "api.attention", "api.attention_into",
            "api.conv_relu_nchw", "api.conv_relu_nchw_into", "api.conv_attention_torchstrong_nchw",
            "api.conv_attention_torchstrong_nchw_into", "lightning_matmul_into", "lightning_attention",
            "lightning_conv_relu_nchw_into", "lightning_conv_attention_torchstrong_nchw_into"]


class OpCase:
    kind = "op"

    def __init__(self, name, call, muts):
        self.name, self.call, self.muts = name, call, muts


def make_op_case(rng, name, mask):
    call = _build(rng, name)
    r = rng.random()
    count = 0 if r < 0.3 else (1 if r < 0.75 else int(rng.integers(2, 4)))
    muts = draw_mutations(rng, call, count, True)
    applied = []
    for i, (label, validity, apply) in enumerate(muts):
        if mask is None or (mask >> i) & 1:
            try:
                apply(call)
            except (TypeError, ValueError, OverflowError):  # the mutation does not fit the value any more
                continue
            applied.append((label, validity))
    return OpCase(name, call, applied)


def expectation(case):
    """'valid' (with ref), 'invalid' or 'either' for an op case, plus (ref, cdt, ins) or the reason."""
    try:
        ref = ref_for(case.name, case.call.vals)
        omitted_req = [n for n in case.call.omit if n in case.call.required]
        if omitted_req or case.call.extra_kw or case.call.extra_pos:
            return INVALID, "bad call shape"
    except Invalid as e:
        return INVALID, str(e)
    except Unjudged as e:
        return EITHER, str(e)
    if any(v == INVALID for _, v in case.muts):
        return EITHER, "a mutation the reference accepts"
    return VALID, ref
