"""Fuzz values: array/tensor makers, weird-value pools, describe() for reproducers, and argument mutations.

A ``Call`` holds a callable's arguments by name with a role each (``in``, ``opt_in``, ``out``, ``size``,
``flag``, ``dev``, ``eps``, ``choice``, ``any``). Mutations are drawn at generation time (all their
randomness captured), then applied in order where the case's mask keeps them, so dropping one never
changes another: that is what lets the driver shrink a finding. Each mutation is ``valid`` (the call
must still succeed and match the reference), ``invalid`` (it must raise an accepted exception, leaving
``out`` untouched) or ``either``. Used by ops.py and misc.py.
"""
import inspect
import math

import numpy as np

import lightning_core as lc

VALID, INVALID, EITHER = "valid", "invalid", "either"

EXTREME_INTS = [2**31 - 1, 2**31, 2**32, 2**32 + 1, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, 2**64 + 1,
                -1, -(2**31), -(2**63), -(2**63) - 1, 10**30]


class Mark:
    """A NaN/Inf marker kept with arrays the fuzzer made non-finite (decides which checks apply)."""


def mk_array(rng, shape, dtype=np.float32, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def describe(v, depth=0):
    """A short, reproducible-enough rendering of a value (arrays: dtype, shape, layout, flags, values)."""
    if isinstance(v, np.ndarray):
        flags = []
        if not v.flags.c_contiguous:
            flags.append("F" if v.flags.f_contiguous else "strided")
        if not v.flags.writeable:
            flags.append("readonly")
        if v.dtype.kind == "f" and v.size and not np.all(np.isfinite(v)):
            flags.append("nonfinite")
        if v.dtype.byteorder not in "=|" and v.dtype.byteorder != ("<" if np.little_endian else ">"):
            flags.append("byteswapped")
        s = f"ndarray({v.dtype.str}{list(v.shape)}{' ' + ','.join(flags) if flags else ''}"
        if v.size <= 8 and v.dtype.kind in "fiub":
            s += " " + np.array2string(v.ravel(), precision=3, separator=",")
        return s + ")"
    if isinstance(v, (lc.Tensor, lc.Tensor64, lc.TensorView)):
        return (f"{type(v).__name__}({v.dtype}{list(v.shape)} strides={list(v.strides)} off={v.offset} "
                f"{v.device})")
    if isinstance(v, (list, tuple)) and depth < 2:
        inner = ", ".join(describe(x, depth + 1) for x in list(v)[:6])
        more = ", ..." if len(v) > 6 else ""
        return ("[%s%s]" if isinstance(v, list) else "(%s%s)") % (inner, more)
    if isinstance(v, str) and len(v) > 40:
        return repr(v[:20]) + f"...(len {len(v)})"
    if isinstance(v, float) and not math.isfinite(v):
        return f"float({str(v)!r})"
    if callable(v) and getattr(v, "__name__", "") == "<lambda>":
        return "lambda: ..."
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def weird_values(rng):
    """A pool of values that are wrong for almost every argument."""
    pool = [None, True, False, 0, -1, 3, 2**63, 2**64, -(2**63) - 1, 1.5, float("nan"), float("inf"), -0.0,
            1e308, "", "cpu", "x" * 5000, b"cpu", "cpu\x00", [], [1.0, 2.0], [[1.0, 2.0]], (3,), (2, 2), {},
            {"a": 1}, object(), Ellipsis, slice(1, 2), 1 + 2j, np.float32(2.0), np.int64(4), np.bool_(True),
            np.array(5.0, np.float32), np.zeros((0, 3), np.float32), np.ones((2, 2), np.int32),
            np.ones((2, 2), np.float64), np.ones(3, np.complex64), np.array(["a"]), np.array([None]),
            lambda: None, lc.Tensor((2, 2)), lc.Tensor64((2,)), np.ones((2, 2), np.float16),
            np.ones((2, 2), np.longdouble), np.ones(4, np.float32)[::2], float("-inf"), 2**31, -(2**31)]
    return pool[int(rng.integers(len(pool)))]


class Call:
    """Arguments of one call by name: roles, order, and how they are passed."""

    def __init__(self, fn, name, order):
        self.fn, self.name, self.order = fn, name, list(order)
        self.vals, self.roles = {}, {}
        self.omit, self.extra_kw, self.extra_pos = set(), {}, []
        self.positional = False
        try:
            params = inspect.signature(fn).parameters.values()
            self.required = {p.name for p in params if p.default is p.empty and p.kind != p.VAR_POSITIONAL}
        except (TypeError, ValueError):
            self.required = set()

    def set(self, name, value, role):
        self.vals[name], self.roles[name] = value, role

    def args(self):
        if self.positional:
            pos, kw = [], {}
            for n in self.order:
                if n in self.omit:
                    break
                pos.append(self.vals[n])
            rest = [n for n in self.order[len(pos):] if n not in self.omit]
            kw = {n: self.vals[n] for n in rest}
            return pos + list(self.extra_pos), dict(kw, **self.extra_kw)
        kw = {n: self.vals[n] for n in self.order if n not in self.omit}
        return list(self.extra_pos), dict(kw, **self.extra_kw)

    def render(self):
        pos, kw = self.args()
        parts = [describe(p) for p in pos] + [f"{k}={describe(v)}" for k, v in kw.items()]
        return f"{self.name}({', '.join(parts)})"


# ---- mutations -------------------------------------------------------------------------------------
# Each maker: (rng, call, argname) -> (label, validity, apply(call)) or None when it does not apply.

def _arr_of(call, n):
    v = call.vals[n]
    return v if isinstance(v, np.ndarray) else None


def _m_dtype(rng, call, n, f64_ok):
    if _arr_of(call, n) is None:
        return None
    choice = ["float64", "float16", ">f4", "int32", "bool", "complex64", "longdouble", "object", "int64",
              "uint8"][int(rng.integers(10))]
    valid = {"float64": VALID, "float16": VALID, ">f4": VALID}.get(choice, INVALID)

    def apply(c):
        a = c.vals[n]
        if not isinstance(a, np.ndarray):
            return
        if choice == "object":
            b = np.empty(a.shape, object)
            b[...] = 1.0
        else:
            b = a.astype(np.dtype(choice))
        c.vals[n] = b
    return f"{n}: dtype {choice}", valid, apply


def _m_layout(rng, call, n, f64_ok):
    if _arr_of(call, n) is None:
        return None
    kind = ["fortran", "strided", "readonly", "negstride"][int(rng.integers(4))]

    def apply(c):
        a = c.vals[n]
        if not isinstance(a, np.ndarray):
            return
        if kind == "fortran":
            b = np.asfortranarray(a)
        elif kind == "readonly":
            b = a.copy()
            b.flags.writeable = False
        elif kind == "negstride":
            b = np.flip(np.ascontiguousarray(np.flip(a)))  # same values, negative strides
        else:
            big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,) if a.ndim else (2,), a.dtype)
            if a.ndim:
                big[..., ::2] = a
                b = big[..., ::2]
            else:
                b = a
        c.vals[n] = b
    return f"{n}: layout {kind}", VALID, apply


def _m_nonfinite(rng, call, n, f64_ok):
    a = _arr_of(call, n)
    if a is None or a.size == 0 or a.dtype.kind != "f":
        return None
    idx = int(rng.integers(a.size))
    val = [np.nan, np.inf, -np.inf][int(rng.integers(3))]

    def apply(c):
        if not isinstance(c.vals[n], np.ndarray) or c.vals[n].dtype.kind != "f":
            return
        b = np.array(c.vals[n], copy=True)
        if b.size > idx:
            b.reshape(-1)[idx] = val
        c.vals[n] = b
    return f"{n}: flat[{idx}] = {val}", VALID, apply


def _m_tensor(rng, call, n, f64_ok):
    a = _arr_of(call, n)
    if a is None or a.ndim == 0 or a.dtype not in (np.float32, np.float64):
        return None
    kind = ["tensor", "view_offset", "view_strided"][int(rng.integers(3))]

    def apply(c):
        if not isinstance(c.vals[n], np.ndarray):
            return
        x = np.ascontiguousarray(c.vals[n])
        if x.ndim == 0 or x.size == 0 or x.dtype not in (np.float32, np.float64):
            return
        T = lc.Tensor64 if x.dtype == np.float64 else lc.Tensor
        if kind == "tensor":
            c.vals[n] = T(x)
            return
        if kind == "view_offset":
            t = T(np.concatenate([np.zeros(3, x.dtype), x.ravel()]))
            c.vals[n] = t.view(x.shape, None, 3)
            return
        big = np.zeros(x.size * 2, x.dtype)
        big[::2] = x.ravel()
        t = T(big)
        strides = [2 * int(np.prod(x.shape[i + 1:])) for i in range(x.ndim)]
        c.vals[n] = t.view(x.shape, strides, 0)
    return f"{n}: as {kind}", VALID, apply


def _m_shape(rng, call, n, f64_ok):
    a = _arr_of(call, n)
    if a is None:
        return None
    kind = ["dim+1", "dim-1", "zero_dim", "ndim+1", "ndim-1", "scalar"][int(rng.integers(6))]
    d = int(rng.integers(max(a.ndim, 1)))
    seed = int(rng.integers(2**31))
    validity = INVALID if kind == "zero_dim" else EITHER

    def apply(c):
        x = c.vals[n]
        if not isinstance(x, np.ndarray):
            return
        shape = list(x.shape)
        if kind == "scalar":
            shape = []
        elif kind == "ndim+1":
            shape = [1] + shape if seed % 2 else shape + [2]
        elif kind == "ndim-1" and shape:
            shape = shape[1:]
        elif shape and d < len(shape):
            shape[d] = {"dim+1": shape[d] + 1, "dim-1": max(shape[d] - 1, 1), "zero_dim": 0}[kind]
        r = np.random.default_rng(seed)
        c.vals[n] = mk_array(r, tuple(shape), x.dtype if x.dtype.kind in "fc" else np.float32)
    return f"{n}: shape {kind} (axis {d})", validity, apply


def _m_replace(rng, call, n, f64_ok):
    v = weird_values(rng)
    validity = INVALID
    if call.roles.get(n) == "opt_in" and v is None:
        validity = VALID
    if call.roles.get(n) in ("in", "opt_in", "out") and isinstance(v, (lc.Tensor, lc.Tensor64, np.ndarray)):
        validity = EITHER

    def apply(c):
        c.vals[n] = v
    return f"{n} = {describe(v)}", validity, apply


def _m_list(rng, call, n, f64_ok):
    a = _arr_of(call, n)
    if a is None:
        return None

    def apply(c):
        x = c.vals[n]
        c.vals[n] = x.tolist() if isinstance(x, np.ndarray) else [x]
    return f"{n}: as nested list", INVALID, apply


def _m_out(rng, call, n, f64_ok):
    a = _arr_of(call, n)
    if a is None:
        return None
    ins = [k for k, r in call.roles.items() if r in ("in", "opt_in") and isinstance(call.vals[k], np.ndarray)]
    kind = ["readonly", "strided", "fortran", "f64", "f32", "int32", "alias_exact", "alias_partial",
            "tensor", "tensor_view", "shape+1", "flat", "tensor_strided"][int(rng.integers(13))]
    src = ins[int(rng.integers(len(ins)))] if ins else None
    validity = {"readonly": INVALID, "strided": INVALID, "int32": INVALID, "alias_partial": INVALID,
                "tensor_strided": INVALID, "shape+1": INVALID, "tensor": VALID, "tensor_view": VALID}.get(kind, EITHER)

    def apply(c):
        o = c.vals[n]
        if not isinstance(o, np.ndarray):
            return
        if kind == "readonly":
            o = o.copy()
            o.flags.writeable = False
        elif kind == "strided":
            big = np.full(o.shape[:-1] + (o.shape[-1] * 2,) if o.ndim else (2,), np.nan, o.dtype)
            o = big[..., ::2] if o.ndim else big[:1]
            if o.ndim and o.shape[-1] == 1 and o.flags.c_contiguous:
                o = np.full(o.shape + (2,), np.nan, o.dtype)[..., 0]
        elif kind == "fortran":
            o = np.asfortranarray(o)
        elif kind in ("f64", "f32", "int32"):
            o = np.full(o.shape, np.nan if kind != "int32" else 7,
                        {"f64": np.float64, "f32": np.float32, "int32": np.int32}[kind])
        elif kind == "alias_exact" and src is not None:
            o = c.vals[src]
        elif kind == "alias_partial" and src is not None:
            s = c.vals[src]
            if isinstance(s, np.ndarray) and s.size >= 2 and s.flags.c_contiguous and s.flags.writeable:
                base = np.empty(s.size + 1, s.dtype)
                base[:-1] = s.ravel()
                c.vals[src] = base[:-1].reshape(s.shape)
                o = np.full(o.size, np.nan, o.dtype)
                if o.dtype == base.dtype and o.size <= base.size - 1:
                    o = base[1:1 + o.size].reshape(c.vals[n].shape)
        elif kind == "shape+1":
            o = np.full(tuple(o.shape[:-1]) + (o.shape[-1] + 1,) if o.ndim else (2,), np.nan, o.dtype)
        elif kind == "flat":
            o = np.full(o.size, np.nan, o.dtype)
        elif kind in ("tensor", "tensor_view", "tensor_strided") and o.dtype in (np.float32, np.float64) and o.ndim:
            T = lc.Tensor64 if o.dtype == np.float64 else lc.Tensor
            if kind == "tensor":
                o = T(o)
            elif kind == "tensor_view":
                o = T(np.full(o.size + 2, np.nan, o.dtype)).view(o.shape, None, 2)
            else:
                strides = [2 * int(np.prod(o.shape[i + 1:])) for i in range(o.ndim)]
                o = T(np.full(o.size * 2, np.nan, o.dtype)).view(o.shape, strides, 0)
        c.vals[n] = o
    return f"{n}: out {kind}{' of ' + src if src and kind.startswith('alias') else ''}", validity, apply


def _m_size(rng, call, n, f64_ok):
    v = call.vals[n]
    if not isinstance(v, int) or isinstance(v, bool):
        return None
    kind = ["np.int64", "np.int32", "zero", "neg", "bool", "extreme", "wrap32", "wrap64", "float", "str",
            "None", "+1", "-1"][int(rng.integers(13))]
    ext = EXTREME_INTS[int(rng.integers(len(EXTREME_INTS)))]
    validity = {"np.int64": VALID, "np.int32": VALID, "+1": EITHER, "-1": EITHER}.get(kind, INVALID)

    def apply(c):
        x = c.vals[n]
        if not isinstance(x, (int, np.integer)):
            return
        x = int(x)
        if not -(2**31) <= x < 2**31:
            return
        c.vals[n] = {"np.int64": np.int64(x), "np.int32": np.int32(x), "zero": 0, "neg": -x, "bool": True,
                     "extreme": ext, "wrap32": x + 2**32, "wrap64": x + 2**64, "float": float(x), "str": str(x),
                     "None": None, "+1": x + 1, "-1": x - 1}[kind]
    label = f"{n}: {kind}" + (f" {ext}" if kind == "extreme" else "")
    if kind in ("-1",) and v == 1:
        validity = INVALID
    return label, validity, apply


def _m_flag(rng, call, n, f64_ok):
    opts = [(np.bool_(True), VALID), (1, VALID), (0, VALID), ("yes", INVALID), (None, INVALID), (2.5, INVALID),
            ([], INVALID), ("", INVALID), (2, EITHER)]
    v, validity = opts[int(rng.integers(len(opts)))]

    def apply(c):
        c.vals[n] = v
    return f"{n} = {v!r}", validity, apply


def _m_dev(rng, call, n, f64_ok):
    opts = [("auto", VALID), ("cpu", VALID), ("cuda", VALID), ("metal", VALID), ("gpu", INVALID),
            ("", INVALID), (None, INVALID), (0, INVALID), (b"cpu", INVALID), ("CPU", EITHER), ("cpu\x00", INVALID)]
    v, validity = opts[int(rng.integers(len(opts)))]

    def apply(c):
        c.vals[n] = v
    return f"{n} = {v!r}", validity, apply


def _m_eps(rng, call, n, f64_ok):
    opts = [(1e-3, VALID), (1, VALID), (0.0, INVALID), (-1e-5, INVALID), (float("nan"), INVALID),
            (float("inf"), INVALID), ("1e-5", INVALID), (None, INVALID), (1e-300, VALID), (True, EITHER),
            (np.float32(1e-5), VALID), (10**400, INVALID)]
    v, validity = opts[int(rng.integers(len(opts)))]

    def apply(c):
        c.vals[n] = v
    return f"{n} = {describe(v)}", validity, apply


def _m_choice(rng, call, n, f64_ok):
    opts = [("", INVALID), ("NONE", EITHER), (None, INVALID), (1, INVALID), ("tanh\x00", INVALID), ("gelu ", INVALID)]
    v, validity = opts[int(rng.integers(len(opts)))]

    def apply(c):
        c.vals[n] = v
    return f"{n} = {v!r}", validity, apply


def _m_call_shape(rng, call, n, f64_ok):
    kind = ["extra_kw", "extra_pos", "omit", "positional"][int(rng.integers(4))]
    req = [k for k in call.order if k in call.required]
    drop = req[int(rng.integers(len(req)))] if req else None

    def apply(c):
        if kind == "extra_kw":
            c.extra_kw["bogus_kw"] = 1
        elif kind == "extra_pos":
            c.positional = True
            c.extra_pos.append(None)
            c.extra_pos.append(None)
        elif kind == "omit" and drop:
            c.omit.add(drop)
        else:
            c.positional = True
    validity = VALID if kind == "positional" else (INVALID if kind != "omit" or drop else VALID)
    if kind == "extra_pos" and len(call.order) >= 8:
        validity = EITHER
    return f"call: {kind}{' ' + drop if kind == 'omit' and drop else ''}", validity, apply


ROLE_MUTATORS = {
    "in": [_m_dtype, _m_layout, _m_nonfinite, _m_tensor, _m_shape, _m_replace, _m_list],
    "opt_in": [_m_dtype, _m_layout, _m_tensor, _m_shape, _m_replace],
    "out": [_m_out, _m_out, _m_replace, _m_list],
    "size": [_m_size, _m_size, _m_replace],
    "flag": [_m_flag],
    "dev": [_m_dev],
    "eps": [_m_eps],
    "choice": [_m_choice],
}


def draw_mutations(rng, call, count, f64_ok=False):
    """Up to ``count`` mutations over ``call``'s arguments (randomness captured now)."""
    muts = []
    names = [n for n in call.order if call.roles.get(n) in ROLE_MUTATORS]
    for _ in range(count):
        if rng.random() < 0.08:
            m = _m_call_shape(rng, call, None, f64_ok)
        else:
            if not names:
                break
            n = names[int(rng.integers(len(names)))]
            makers = ROLE_MUTATORS[call.roles[n]]
            m = makers[int(rng.integers(len(makers)))](rng, call, n, f64_ok)
        if m is not None:
            muts.append(m)
    return muts
