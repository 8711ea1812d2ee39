"""Bad input for every public function of lightning_core (docs/python_api.md, "Input rules").

Each refused call must raise the documented exception type (TypeError for non-arrays, wrong dtypes,
non-int sizes and non-str devices; ValueError for ranks, shapes, sizes, layouts, read-only or aliased
outs and unknown device names) with a message that names the offending argument, and a refused *_into
call must leave its NaN-poisoned `out` bitwise unchanged. Covered: wrong rank, mismatched shapes, wrong
dtypes (int32, bool, complex64, object), non-array objects (list, None, a float), empty arrays,
`out` of the wrong shape / dtype / layout (Fortran, strided slice, byte-swapped, misaligned) / read-only /
not an array, `out` sharing memory with an input, sizes that lie about the arrays, zero and negative
sizes, overflowing sizes (2**62, 2**70), bool and non-int sizes, conv stride 0 / negative pad / no output
positions, unknown and non-str devices, bad gelu `approximate`, eps <= 0, bad argument counts and
keywords, and the runtime / tensor-contract functions. The last test checks the process still works.
"""
import re
from collections import OrderedDict

import numpy as np
import pytest

import lightning_core as lc

# ---- helpers ---------------------------------------------------------------------------------------


def named(*names):
    """A regex that matches a message naming any of `names` (as a word; for one-letter names only in an
    argument-like position such as "a:", "a=", "'a'", "m*k", "(k", "x.shape", so the article "a" does not
    count)."""
    parts = []
    for n in names:
        if len(n) == 1:
            e = re.escape(n)
            parts.append(rf"(?<![\w.]){e}(?=[:=\[\],)'\".*]|$)|(?<=[*(]){e}(?!\w)|'{e}'|`{e}`")
        else:
            parts.append(rf"(?<!\w){re.escape(n)}(?!\w)")
    return "|".join(parts)


def snapshot(args):
    """Bytes of every ndarray argument (out included): compared after a refused call."""
    return {k: (v.dtype, v.shape, v.tobytes()) for k, v in args.items() if isinstance(v, np.ndarray)}


def refuse(fn, args, exc, names, kwargs=None, watch=()):
    """fn(*args.values(), **kwargs) raises exc naming one of `names`; no array argument (in particular
    `out`) and no array in `watch` changes."""
    before = snapshot(args)
    extra = [(w, w.tobytes()) for w in watch]
    with pytest.raises(exc, match=named(*names)) as info:
        fn(*args.values(), **(kwargs or {}))
    after = snapshot(args)
    for k, (dt, shape, raw) in before.items():
        assert after[k][2] == raw, f"refused call modified {k!r}"
    for w, raw in extra:
        assert w.tobytes() == raw, "refused call modified a watched array"
    return info


def r(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def poison(shape, dtype=np.float32):
    return np.full(shape, np.nan, dtype)


def nonzero(rng, *shape):
    return (rng.choice([-1.0, 1.0], size=shape) * (0.5 + rng.random(shape))).astype(np.float32)


# ---- the op table ----------------------------------------------------------------------------------
# Each builder returns the positional arguments of a valid call (without device) in order.


def mk_matmul(rng):
    return OrderedDict(a=r(rng, 5, 7), b=r(rng, 7, 3))


def mk_matmul_into(rng):
    return OrderedDict(a=r(rng, 5, 7), b=r(rng, 7, 3), out=poison((5, 3)))


def mk_matmul_np_into(rng):
    return OrderedDict(a=r(rng, 35), b=r(rng, 21), out=poison(15), m=5, k=7, n=3)


def mk_attention2d(rng):
    return OrderedDict(q=r(rng, 6, 4), k=r(rng, 6, 4), v=r(rng, 6, 4))


def mk_attention2d_into(rng):
    return OrderedDict(q=r(rng, 6, 4), k=r(rng, 6, 4), v=r(rng, 6, 4), out=poison((6, 4)))


def mk_attention_forward(rng):
    return OrderedDict(q=r(rng, 24), k=r(rng, 24), v=r(rng, 24), seq=6, head_dim=4)


def mk_attention_forward_into(rng):
    return OrderedDict(q=r(rng, 24), k=r(rng, 24), v=r(rng, 24), out=poison(24), seq=6, head_dim=4)


def mk_conv(rng):
    return OrderedDict(x=r(rng, 1, 2, 5, 5), w=r(rng, 3, 2, 3, 3), b=r(rng, 3),
                       stride_h=1, stride_w=1, pad_h=1, pad_w=1)


def mk_conv_into(rng):
    return OrderedDict(x=r(rng, 1, 2, 5, 5), w=r(rng, 3, 2, 3, 3), b=r(rng, 3), out=poison((1, 3, 5, 5)),
                       stride_h=1, stride_w=1, pad_h=1, pad_w=1)


def mk_vector_add(rng):
    return OrderedDict(a=r(rng, 3, 5), b=r(rng, 3, 5))


def mk_vector_add_into(rng):
    return OrderedDict(a=r(rng, 3, 5), b=r(rng, 3, 5), out=poison((3, 5)))


def mk_matrix(rng):
    return OrderedDict(a=r(rng, 4, 6), b=nonzero(rng, 4, 6), rows=4, cols=6)


def mk_matrix_into(rng):
    return OrderedDict(a=r(rng, 4, 6), b=nonzero(rng, 4, 6), out=poison((4, 6)), rows=4, cols=6)


def mk_relu(rng):
    return OrderedDict(x=r(rng, 3, 5))


def mk_relu_into(rng):
    return OrderedDict(x=r(rng, 3, 5), out=poison((3, 5)))


def mk_gelu(rng):
    return OrderedDict(x=r(rng, 3, 5), approximate="none")


def mk_gelu_into(rng):
    return OrderedDict(x=r(rng, 3, 5), out=poison((3, 5)), approximate="tanh")


def mk_layer_norm(rng):
    return OrderedDict(x=r(rng, 3, 8), gamma=r(rng, 8), beta=r(rng, 8), eps=1e-5)


def mk_layer_norm_into(rng):
    return OrderedDict(x=r(rng, 3, 8), out=poison((3, 8)), gamma=r(rng, 8), beta=r(rng, 8), eps=1e-5)


# name -> (builder, array inputs, inputs that may be None, size arguments, supports float64, flat out)
OPS = {
    "matmul2d": (mk_matmul, ("a", "b"), (), (), True, False),
    "matmul": (mk_matmul, ("a", "b"), (), (), True, False),
    "matmul2d_into": (mk_matmul_into, ("a", "b"), (), (), True, False),
    "matmul_np_into": (mk_matmul_np_into, ("a", "b"), (), ("m", "k", "n"), True, True),
    "attention2d": (mk_attention2d, ("q", "k", "v"), (), (), False, False),
    "attention2d_into": (mk_attention2d_into, ("q", "k", "v"), (), (), False, False),
    "attention_forward": (mk_attention_forward, ("q", "k", "v"), (), ("seq", "head_dim"), False, True),
    "attention_forward_into": (mk_attention_forward_into, ("q", "k", "v"), (), ("seq", "head_dim"), False, True),
    "conv2d_nchw": (mk_conv, ("x", "w", "b"), ("b",), (), False, False),
    "conv2d_nchw_into": (mk_conv_into, ("x", "w", "b"), ("b",), (), False, False),
    "vector_add": (mk_vector_add, ("a", "b"), (), (), True, False),
    "vector_add_into": (mk_vector_add_into, ("a", "b"), (), (), True, False),
    "matrix_sub": (mk_matrix, ("a", "b"), (), ("rows", "cols"), True, True),
    "matrix_sub_into": (mk_matrix_into, ("a", "b"), (), ("rows", "cols"), True, True),
    "matrix_div": (mk_matrix, ("a", "b"), (), ("rows", "cols"), True, True),
    "matrix_div_into": (mk_matrix_into, ("a", "b"), (), ("rows", "cols"), True, True),
    "relu": (mk_relu, ("x",), (), (), True, False),
    "relu_into": (mk_relu_into, ("x",), (), (), True, False),
    "gelu": (mk_gelu, ("x",), (), (), False, False),
    "gelu_into": (mk_gelu_into, ("x",), (), (), False, False),
    "layer_norm": (mk_layer_norm, ("x", "gamma", "beta"), ("gamma", "beta"), (), False, False),
    "layer_norm_into": (mk_layer_norm_into, ("x", "gamma", "beta"), ("gamma", "beta"), (), False, False),
}
INTO_OPS = [name for name in OPS if name.endswith("_into")]
SIZE_OPS = [name for name in OPS if OPS[name][3]]


def fn_of(name):
    return getattr(lc, name)


def valid_call_works(name, rng):
    """Sanity: the builder's arguments make a valid call (so the refusals below are about the bad value)."""
    args = OPS[name][0](rng)
    res = fn_of(name)(*args.values())
    if "out" in args:
        assert res is args["out"]
        assert not np.isnan(args["out"]).any()
    else:
        assert isinstance(res, np.ndarray) and np.isfinite(res).all()


@pytest.mark.parametrize("name", list(OPS))
def test_builders_make_valid_calls(rng, name):
    valid_call_works(name, rng)


# ---- non-arrays, dtypes, empty arrays ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(OPS))
def test_non_array_inputs_raise_type_error(rng, name):
    builder, arrays, optional, _, _, _ = OPS[name]
    for arg in arrays + (("out",) if name in INTO_OPS else ()):
        proto = builder(rng)[arg]
        # lightning_core tensors are valid operands (tests/python/test_device_tensors.py)
        bads = [proto.tolist(), 1.5, tuple(proto.ravel().tolist()), "abc"]
        if arg not in optional:
            bads.append(None)
        for bad in bads:
            args = builder(rng)
            args[arg] = bad
            refuse(fn_of(name), args, TypeError, [arg])


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex64, object, "U3"])
def test_wrong_input_dtypes_raise_type_error(rng, name, dtype):
    builder, arrays, _, _, _, _ = OPS[name]
    for arg in arrays:
        args = builder(rng)
        src = args[arg]
        if dtype == np.complex64:
            bad = (src + 1j * src).astype(np.complex64)
        elif dtype is object:
            bad = np.empty(src.shape, dtype=object)
            bad[...] = src.astype(np.float64)  # float values, object dtype
        elif dtype == "U3":
            bad = np.full(src.shape, "1.0", dtype="U3")
        else:
            bad = (src * 3).astype(dtype)
        args[arg] = bad
        refuse(fn_of(name), args, TypeError, [arg])


@pytest.mark.parametrize("name", list(OPS))
def test_empty_input_arrays_raise_value_error(rng, name):
    builder, arrays, _, sizes, _, _ = OPS[name]
    for arg in arrays:
        args = builder(rng)
        args[arg] = np.empty((0,) + args[arg].shape[1:], np.float32)
        refuse(fn_of(name), args, ValueError, [arg])


# ---- rank and shape mismatches (per op) ----------------------------------------------------------------


def _set(**changes):
    def apply(args, rng):
        for k, f in changes.items():
            args[k] = f(args[k], rng)

    return apply


SHAPE_CASES = [
    # (op, change, names the message may use)
    ("matmul2d", _set(a=lambda a, g: a.ravel()), ["a"]),
    ("matmul2d", _set(a=lambda a, g: a[None]), ["a"]),
    ("matmul2d", _set(b=lambda b, g: b.ravel()), ["b"]),
    ("matmul2d", _set(b=lambda b, g: b[None, None]), ["b"]),
    ("matmul2d", _set(b=lambda b, g: r(g, 6, 3)), ["b", "a", "k"]),
    ("matmul2d", _set(b=lambda b, g: r(g, 3, 7)), ["b", "a", "k"]),
    ("matmul", _set(b=lambda b, g: r(g, 8, 3)), ["b", "a", "k"]),
    ("matmul", _set(a=lambda a, g: a.reshape(5, 7, 1)), ["a"]),
    ("matmul2d_into", _set(a=lambda a, g: a[None]), ["a"]),
    ("matmul2d_into", _set(b=lambda b, g: r(g, 6, 3)), ["b", "a", "k"]),
    ("matmul_np_into", _set(a=lambda a, g: r(g, 36)), ["a", "m", "k"]),
    ("matmul_np_into", _set(b=lambda b, g: r(g, 20)), ["b", "k", "n"]),
    ("attention2d", _set(q=lambda q, g: q.ravel()), ["q"]),
    ("attention2d", _set(q=lambda q, g: q[None]), ["q"]),
    ("attention2d", _set(k=lambda k, g: r(g, 7, 4)), ["k"]),
    ("attention2d", _set(v=lambda v, g: r(g, 6, 5)), ["v"]),
    ("attention2d", _set(k=lambda k, g: r(g, 4, 6)), ["k"]),
    ("attention2d", _set(v=lambda v, g: v[None]), ["v"]),
    ("attention2d_into", _set(k=lambda k, g: r(g, 6, 3)), ["k"]),
    ("attention2d_into", _set(q=lambda q, g: r(g, 24)), ["q"]),
    ("attention_forward", _set(q=lambda q, g: r(g, 25)), ["q", "seq", "head_dim"]),
    ("attention_forward", _set(v=lambda v, g: r(g, 23)), ["v", "seq", "head_dim"]),
    ("attention_forward_into", _set(k=lambda k, g: r(g, 12)), ["k", "seq", "head_dim"]),
    ("conv2d_nchw", _set(x=lambda x, g: x[0]), ["x"]),
    ("conv2d_nchw", _set(x=lambda x, g: x[None]), ["x"]),
    ("conv2d_nchw", _set(w=lambda w, g: w[0]), ["w"]),
    ("conv2d_nchw", _set(w=lambda w, g: r(g, 3, 4, 3, 3)), ["w", "x", "c"]),
    ("conv2d_nchw", _set(b=lambda b, g: r(g, 4)), ["b"]),
    ("conv2d_nchw", _set(b=lambda b, g: r(g, 3, 1)), ["b"]),
    ("conv2d_nchw_into", _set(w=lambda w, g: r(g, 3, 1, 3, 3)), ["w", "x", "c"]),
    ("conv2d_nchw_into", _set(b=lambda b, g: r(g, 2)), ["b"]),
    ("vector_add", _set(b=lambda b, g: r(g, 3, 6)), ["b", "a"]),
    ("vector_add", _set(b=lambda b, g: r(g, 5, 3)), ["b", "a"]),
    ("vector_add", _set(b=lambda b, g: r(g, 15)), ["b", "a"]),
    ("vector_add_into", _set(a=lambda a, g: r(g, 3, 4)), ["a", "b"]),
    ("matrix_sub", _set(a=lambda a, g: r(g, 25)), ["a", "rows", "cols"]),
    ("matrix_sub", _set(b=lambda b, g: r(g, 4, 5)), ["b", "rows", "cols"]),
    ("matrix_div", _set(b=lambda b, g: r(g, 23)), ["b", "rows", "cols"]),
    ("matrix_sub_into", _set(a=lambda a, g: r(g, 4, 7)), ["a", "rows", "cols"]),
    ("matrix_div_into", _set(b=lambda b, g: r(g, 6, 5)), ["b", "rows", "cols"]),
    ("layer_norm", _set(x=lambda x, g: np.array(2.0, np.float32)), ["x"]),
    ("layer_norm", _set(gamma=lambda t, g: r(g, 7)), ["gamma"]),
    ("layer_norm", _set(gamma=lambda t, g: r(g, 1, 8)), ["gamma"]),
    ("layer_norm", _set(beta=lambda t, g: r(g, 9)), ["beta"]),
    ("layer_norm", _set(beta=lambda t, g: r(g, 3, 8)), ["beta"]),
    ("layer_norm_into", _set(gamma=lambda t, g: r(g, 3)), ["gamma"]),
    ("layer_norm_into", _set(beta=lambda t, g: r(g, 8, 1)), ["beta"]),
]


@pytest.mark.parametrize("case", range(len(SHAPE_CASES)), ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPE_CASES)])
def test_rank_and_shape_mismatches(rng, case):
    name, change, names = SHAPE_CASES[case]
    args = OPS[name][0](rng)
    change(args, rng)
    refuse(fn_of(name), args, ValueError, names)


# ---- out checks ----------------------------------------------------------------------------------------


def _out_variants(out, flat):
    """(description, bad out, expected exception) for an `out` prototype."""
    shape = out.shape
    n = out.size
    bigger = poison((shape[0] + 1,) + shape[1:])
    v = [
        ("one row too many", bigger, ValueError),
        ("one element short", poison(n - 1), ValueError),
        ("int32", np.zeros(shape, np.int32), TypeError),
        ("float16", poison(shape, np.float16), TypeError),
        ("complex64", np.full(shape, np.nan, np.complex64), TypeError),
        ("strided slice", poison(shape[:-1] + (2 * shape[-1],))[..., ::2], ValueError),
    ]
    if not flat:
        v.append(("same count, other shape", poison(shape[::-1] if len(shape) > 1 else (1,) + shape), ValueError))
        v.append(("extra leading dim", poison((1,) + shape), ValueError))
    f_shape = shape if len(shape) > 1 and shape[-1] > 1 and shape[-2] > 1 else (3, n // 3)
    if f_shape[0] * f_shape[1] == n:
        v.append(("fortran order", np.asfortranarray(poison(f_shape)), ValueError))
    ro = poison(shape)
    ro.flags.writeable = False
    v.append(("read-only", ro, ValueError))
    return v


@pytest.mark.parametrize("name", INTO_OPS)
def test_bad_out_is_refused_and_untouched(rng, name):
    builder, _, _, _, f64, flat = OPS[name]
    proto = builder(rng)["out"]
    for desc, bad, exc in _out_variants(proto, flat):
        args = builder(rng)
        args["out"] = bad
        base = bad.base if bad.base is not None else bad
        refuse(fn_of(name), args, exc, ["out"], watch=[base])
    # out of the compute dtype only: float64 out for float32 inputs is a wrong dtype (never converted).
    args = builder(rng)
    args["out"] = poison(proto.shape, np.float64)
    refuse(fn_of(name), args, TypeError, ["out"])
    if f64:
        # float64 inputs compute in float64: a float32 out is the wrong dtype.
        args = builder(rng)
        for k in OPS[name][1]:
            args[k] = args[k].astype(np.float64)
        refuse(fn_of(name), args, TypeError, ["out"])


@pytest.mark.parametrize("name", INTO_OPS)
def test_non_native_or_misaligned_out(rng, name):
    builder = OPS[name][0]
    proto = builder(rng)["out"]
    # Byte-swapped out: the dtype is not the native compute dtype (TypeError) or a layout (ValueError).
    args = builder(rng)
    args["out"] = poison(proto.shape, np.dtype(np.float32).newbyteorder())
    before = args["out"].tobytes()
    with pytest.raises((TypeError, ValueError), match=named("out")):
        fn_of(name)(*args.values())
    assert args["out"].tobytes() == before
    # Misaligned out: refused as a layout problem, or (if accepted) fully and correctly written.
    raw = np.zeros(proto.nbytes + 1, np.uint8)
    mis = raw[1:].view(np.float32).reshape(proto.shape)
    mis[...] = np.nan
    args = builder(rng)
    args["out"] = mis
    if mis.flags.aligned:
        pytest.skip("numpy reports the offset buffer as aligned on this platform")
    try:
        fn_of(name)(*args.values())
    except ValueError as e:
        assert re.search(named("out"), str(e)), str(e)
        assert np.isnan(mis).all()
    else:
        good = builder(rng)
        for k in good:
            if k != "out":
                good[k] = args[k]
        fn_of(name)(*good.values())
        assert not np.isnan(mis).any()
        assert np.allclose(mis, good["out"], rtol=1e-5, atol=1e-6)


# ---- out sharing memory with an input --------------------------------------------------------------


def _alias_cases(rng):
    """(op, args) where out overlaps an input (not allowed for matmul / attention / conv)."""
    cases = []
    a = r(rng, 4, 4)
    cases.append(("matmul2d_into", "a", OrderedDict(a=a, b=r(rng, 4, 4), out=a)))
    b = r(rng, 4, 4)
    cases.append(("matmul2d_into", "b", OrderedDict(a=r(rng, 4, 4), b=b, out=b)))
    buf = r(rng, 40)
    cases.append(("matmul2d_into", "a", OrderedDict(a=buf[:16].reshape(4, 4), b=r(rng, 4, 4),
                                                     out=buf[8:24].reshape(4, 4))))
    buf = r(rng, 40)
    cases.append(("matmul2d_into", "b", OrderedDict(a=r(rng, 4, 4), b=buf[:16].reshape(4, 4)[:, ::-1],
                                                     out=buf[12:28].reshape(4, 4))))
    a = r(rng, 12)
    cases.append(("matmul_np_into", "a", OrderedDict(a=a, b=r(rng, 9), out=a, m=4, k=3, n=3)))
    buf = r(rng, 30)
    cases.append(("matmul_np_into", "b", OrderedDict(a=r(rng, 12), b=buf[:9], out=buf[5:17], m=4, k=3, n=3)))
    q = r(rng, 6, 4)
    cases.append(("attention2d_into", "q", OrderedDict(q=q, k=r(rng, 6, 4), v=r(rng, 6, 4), out=q)))
    v = r(rng, 6, 4)
    cases.append(("attention2d_into", "v", OrderedDict(q=r(rng, 6, 4), k=r(rng, 6, 4), v=v, out=v)))
    buf = r(rng, 48)
    cases.append(("attention2d_into", "k", OrderedDict(q=r(rng, 6, 4), k=buf[:24].reshape(6, 4), v=r(rng, 6, 4),
                                                        out=buf[20:44].reshape(6, 4))))
    k = r(rng, 24)
    cases.append(("attention_forward_into", "k", OrderedDict(q=r(rng, 24), k=k, v=r(rng, 24), out=k, seq=6,
                                                              head_dim=4)))
    x = r(rng, 1, 1, 4, 4)
    cases.append(("conv2d_nchw_into", "x", OrderedDict(x=x, w=r(rng, 1, 1, 1, 1), b=r(rng, 1), out=x,
                                                        stride_h=1, stride_w=1, pad_h=0, pad_w=0)))
    buf = r(rng, 3 + 75)
    cases.append(("conv2d_nchw_into", "b", OrderedDict(x=r(rng, 1, 2, 5, 5), w=r(rng, 3, 2, 3, 3), b=buf[:3],
                                                        out=buf[2:77].reshape(1, 3, 5, 5), stride_h=1, stride_w=1,
                                                        pad_h=1, pad_w=1)))
    buf = r(rng, 115)
    cases.append(("conv2d_nchw_into", "w", OrderedDict(x=r(rng, 1, 2, 5, 5), w=buf[:54].reshape(3, 2, 3, 3),
                                                        b=None, out=buf[40:115].reshape(1, 3, 5, 5),
                                                        stride_h=1, stride_w=1, pad_h=1, pad_w=1)))
    # Partial overlaps are refused for the elementwise ops too (only out *exactly* an input is in place).
    buf = r(rng, 20)
    cases.append(("vector_add_into", "a", OrderedDict(a=buf[:15].reshape(3, 5), b=r(rng, 3, 5),
                                                       out=buf[1:16].reshape(3, 5))))
    buf = r(rng, 20)
    cases.append(("vector_add_into", "b", OrderedDict(a=r(rng, 3, 5), b=buf[2:17].reshape(3, 5),
                                                       out=buf[:15].reshape(3, 5))))
    buf = r(rng, 30)
    cases.append(("matrix_sub_into", "a", OrderedDict(a=buf[:24], b=r(rng, 24), out=buf[3:27], rows=4, cols=6)))
    buf = nonzero(rng, 30)
    cases.append(("matrix_div_into", "b", OrderedDict(a=r(rng, 24), b=buf[6:30], out=buf[:24], rows=4, cols=6)))
    buf = r(rng, 20)
    cases.append(("relu_into", "x", OrderedDict(x=buf[:15].reshape(3, 5), out=buf[4:19].reshape(3, 5))))
    buf = r(rng, 20)
    cases.append(("relu_into", "x", OrderedDict(x=buf[:15].reshape(3, 5)[:, ::-1], out=buf[:15].reshape(3, 5))))
    buf = r(rng, 20)
    cases.append(("gelu_into", "x", OrderedDict(x=buf[1:16].reshape(3, 5), out=buf[:15].reshape(3, 5),
                                                 approximate="none")))
    buf = r(rng, 30)
    cases.append(("layer_norm_into", "x", OrderedDict(x=buf[:24].reshape(3, 8), out=buf[5:29].reshape(3, 8),
                                                       gamma=None, beta=None, eps=1e-5)))
    out = np.full((3, 8), np.nan, np.float32)
    cases.append(("layer_norm_into", "gamma", OrderedDict(x=r(rng, 3, 8), out=out, gamma=out[1], beta=None,
                                                           eps=1e-5)))
    return cases


ALIAS_IDS = [f"{name}-out~{arg}-{i}" for i, (name, arg, _) in enumerate(_alias_cases(np.random.default_rng(0)))]


def test_alias_cases_are_well_formed(rng):
    for name, arg, args in _alias_cases(rng):
        assert np.shares_memory(args["out"], args[arg]), (name, arg)
        assert args["out"].flags.c_contiguous and args["out"].flags.writeable


@pytest.mark.parametrize("i", range(len(ALIAS_IDS)), ids=ALIAS_IDS)
def test_out_sharing_memory_with_an_input_is_refused(rng, i):
    name, arg, args = _alias_cases(rng)[i]
    refuse(fn_of(name), args, ValueError, ["out"])


# ---- sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SIZE_OPS)
def test_bad_sizes(rng, name):
    builder, _, _, sizes, _, _ = OPS[name]
    for size in sizes:
        good = builder(rng)[size]
        for bad in (0, -1, -(2**62), 2**62, 2**63, 2**70, good + 1, good * 2):
            args = builder(rng)
            args[size] = bad
            refuse(fn_of(name), args, ValueError, [size])
        for bad in (True, False, 1.5, float(good), "3", None, [good], np.float32(good)):
            args = builder(rng)
            args[size] = bad
            refuse(fn_of(name), args, TypeError, [size])


def test_lying_sizes_with_consistent_products(rng):
    # m*k equals a.size, but k*n does not equal b.size: the lie about k is still caught.
    args = OrderedDict(a=r(rng, 12), b=r(rng, 20), out=poison(15), m=3, k=4, n=5)
    lc.matmul_np_into(*args.values())  # valid as given
    assert not np.isnan(args["out"]).any()
    args = OrderedDict(a=r(rng, 12), b=r(rng, 20), out=poison(10), m=2, k=6, n=5)
    refuse(lc.matmul_np_into, args, ValueError, ["k", "b", "n"])
    # seq*head_dim right, but another factorisation of the same count is valid (not a lie):
    out = poison(24)
    lc.attention_forward_into(r(rng, 24), r(rng, 24), r(rng, 24), out, 8, 3)
    assert not np.isnan(out).any()
    # rows*cols right for a and b, but out of another count.
    args = OrderedDict(a=r(rng, 24), b=r(rng, 24), out=poison(20), rows=4, cols=6)
    refuse(lc.matrix_sub_into, args, ValueError, ["out"])


@pytest.mark.parametrize("name", ["conv2d_nchw", "conv2d_nchw_into"])
def test_bad_conv_strides_and_pads(rng, name):
    builder = OPS[name][0]
    for arg, bad in [("stride_h", 0), ("stride_w", 0), ("stride_h", -1), ("stride_w", -2), ("pad_h", -1),
                     ("pad_w", -1), ("pad_h", 2**62), ("pad_w", 2**63), ("stride_h", 2**70), ("pad_w", 2**70),
                     ("stride_w", -(2**63))]:
        args = builder(rng)
        args[arg] = bad
        refuse(fn_of(name), args, ValueError, [arg])
    for arg, bad in [("stride_h", True), ("pad_w", False), ("stride_w", 1.0), ("pad_h", "1"), ("stride_h", None)]:
        args = builder(rng)
        args[arg] = bad
        refuse(fn_of(name), args, TypeError, [arg])


@pytest.mark.parametrize("name", ["conv2d_nchw", "conv2d_nchw_into"])
def test_conv_without_output_positions(rng, name):
    # 5x5 kernel on a 3x3 input with no padding: oh = (3 - 5) // 1 + 1 = -1 < 1.
    x, w, b = r(rng, 1, 2, 3, 3), r(rng, 4, 2, 5, 5), r(rng, 4)
    args = OrderedDict(x=x, w=w, b=b)
    if name.endswith("_into"):
        args["out"] = poison((1, 4, 1, 1))
    args.update(stride_h=1, stride_w=1, pad_h=0, pad_w=0)
    refuse(fn_of(name), args, ValueError, ["w", "x", "kh", "kw", "oh", "ow", "output", "kernel"])
    # Too tall only: kh = 7 > h + 2*pad_h = 5.
    args = OrderedDict(x=r(rng, 1, 2, 3, 9), w=r(rng, 4, 2, 7, 1), b=None)
    if name.endswith("_into"):
        args["out"] = poison((1, 4, 1, 9))
    args.update(stride_h=1, stride_w=1, pad_h=1, pad_w=0)
    refuse(fn_of(name), args, ValueError, ["w", "x", "kh", "oh", "output", "kernel"])


# ---- devices -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(OPS))
def test_bad_device_strings(rng, name):
    builder = OPS[name][0]
    for bad in ("gpu", "CPU", "", "cuda:0", " cpu", "metal\0", "Auto", "cpu\x00"):
        args = builder(rng)
        refuse(fn_of(name), args, ValueError, ["device"], kwargs={"device": bad})
    for bad in (1, None, b"cpu", ["cpu"], 0.0):
        args = builder(rng)
        refuse(fn_of(name), args, TypeError, ["device"], kwargs={"device": bad})


# ---- op-specific attributes ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gelu", "gelu_into"])
def test_bad_gelu_approximate(rng, name):
    builder = OPS[name][0]
    for bad in ("erf", "", "TANH", "exact", "tanh ", "None"):
        args = builder(rng)
        args["approximate"] = bad
        refuse(fn_of(name), args, ValueError, ["approximate"])
    for bad in (None, 1, True, b"tanh"):
        args = builder(rng)
        args["approximate"] = bad
        before = snapshot(args)
        with pytest.raises((TypeError, ValueError), match=named("approximate")):
            fn_of(name)(*args.values())
        assert snapshot(args) == before


@pytest.mark.parametrize("name", ["layer_norm", "layer_norm_into"])
def test_bad_layer_norm_eps(rng, name):
    builder = OPS[name][0]
    for bad in (0.0, -0.0, -1e-5, -1.0, float("nan"), float("inf"), float("-inf"), 0, -1):
        args = builder(rng)
        args["eps"] = bad
        refuse(fn_of(name), args, ValueError, ["eps"])
    for bad in ("1e-5", [1e-5], b"1"):
        args = builder(rng)
        args["eps"] = bad
        refuse(fn_of(name), args, TypeError, ["eps"])


# ---- calling conventions -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(OPS))
def test_bad_argument_counts_and_keywords(rng, name):
    fn = fn_of(name)
    args = OPS[name][0](rng)
    with pytest.raises(TypeError):
        fn()
    if name not in ("relu", "gelu", "layer_norm"):  # these need only their first argument
        with pytest.raises(TypeError):
            fn(*list(args.values())[:1])
    with pytest.raises(TypeError):
        fn(*args.values(), "cpu", False, False, 1, 2, 3, 4, 5, 6, 7, 8)
    with pytest.raises(TypeError, match="bogus"):
        fn(*args.values(), bogus=1)
    first = next(iter(args))
    with pytest.raises(TypeError, match=named(first)):
        fn(*args.values(), **{first: args[first]})  # given twice
    if "out" in args:
        assert np.isnan(args["out"]).all()


# ---- runtime and tensor-contract functions -------------------------------------------------------------


def test_runtime_functions_bad_inputs():
    n0 = lc.num_threads()
    for bad in (0, -3, 2**70):
        with pytest.raises(ValueError, match=r"\bn\b|thread"):
            lc.set_num_threads(bad)
    for bad in (True, 2.0, "2", None):
        with pytest.raises(TypeError, match=r"\bn\b|thread|int"):
            lc.set_num_threads(bad)
    assert lc.num_threads() == n0
    with pytest.raises(TypeError):
        lc.set_strict_device()
    with pytest.raises(TypeError):
        lc.set_strict_device(True, False)
    assert lc.strict_device() is False
    for fn in (lc.backend_name, lc.metal_available, lc.cuda_available, lc.strict_device, lc.num_threads,
               lc.cpu_features, lc.blas_name, lc.last_dispatch):
        with pytest.raises(TypeError):
            fn("x")


def test_validators_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        lc.validate_shape((3, 0))
    with pytest.raises(ValueError, match="shape"):
        lc.validate_shape((2**62, 8))
    with pytest.raises(TypeError, match="shape"):
        lc.validate_shape(None)
    with pytest.raises(TypeError, match="shape"):
        lc.validate_shape((True, 2))
    with pytest.raises(ValueError, match="offset"):
        lc.validate_view(10, (2,), (1,), -1)
    with pytest.raises(ValueError, match="strides"):
        lc.validate_view(10, (2, 2), (-2, 1), 4)
    with pytest.raises(ValueError, match="storage|bounds|offset"):
        lc.validate_view(10, (5, 2), (2, 1), 1)
    with pytest.raises(TypeError, match="strides"):
        lc.validate_view(10, (2,), "1", 0)
    with pytest.raises(TypeError, match="shape"):
        lc.validate_view(10, None, None, 0)
    with pytest.raises(TypeError):
        lc.validate_view(10, (2,))


def test_tensor_functions_bad_inputs(rng):
    a = r(rng, 3, 4)
    with pytest.raises(TypeError, match="data|shape"):
        lc.Tensor(a.tolist())  # a list is a shape; a nested list of floats is neither
    with pytest.raises(TypeError, match="data|dtype"):
        lc.Tensor64(np.arange(4))
    with pytest.raises(ValueError, match="shape"):
        lc.Tensor((3, -4))
    with pytest.raises(ValueError, match="shape|overflow"):
        lc.Tensor64((2**40, 2**40))
    with pytest.raises(TypeError, match="shape"):
        lc.Tensor((3, 4.0))
    with pytest.raises(ValueError, match="device"):
        lc.Tensor(a, "CPU")
    with pytest.raises(TypeError, match="device"):
        lc.Tensor(a, 0)
    t = lc.Tensor(a)
    with pytest.raises(ValueError):
        t.copy_from(r(rng, 13))
    with pytest.raises(TypeError):
        t.copy_from(a.tolist())
    with pytest.raises(TypeError, match="tensor"):
        lc.TensorView(a, (12,))
    with pytest.raises(TypeError, match="tensor"):
        lc.TensorView(None, (12,))
    with pytest.raises(ValueError):
        lc.TensorView(t, (13,))
    with pytest.raises(ValueError, match="offset"):
        t.view((2,), (1,), -5)
    with pytest.raises(ValueError, match="strides"):
        t.view((2, 2), (1, -1), 3)
    with pytest.raises(ValueError, match="shape"):
        t.view((0,))
    with pytest.raises(TypeError):
        t.view()
    assert np.array_equal(t.numpy(), a)


# ---- accepted conversions next to the refusals ---------------------------------------------------------


def test_misaligned_and_readonly_inputs_are_fine(rng):
    # Inputs (not outs) are converted when needed: misaligned or read-only inputs give the right answer.
    a, b = r(rng, 6, 5), r(rng, 5, 4)
    raw = np.zeros(a.nbytes + 1, np.uint8)
    a_mis = raw[1:].view(np.float32).reshape(6, 5)
    a_mis[...] = a
    b_ro = b.copy()
    b_ro.flags.writeable = False
    y = lc.matmul2d(a_mis, b_ro)
    assert np.allclose(y, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    y = lc.vector_add(a_mis, a)
    assert np.array_equal(y, a + a)


# ---- the process still works -------------------------------------------------------------------------


def test_zz_process_still_works_after_all_refusals(rng):
    assert lc.strict_device() is False
    a, b = r(rng, 33, 17), r(rng, 17, 9)
    out = poison((33, 9))
    assert lc.matmul2d_into(a, b, out) is out
    want = a.astype(np.float64) @ b
    assert np.linalg.norm(out - want) / np.linalg.norm(want) < 1e-5
    q, k, v = r(rng, 9, 4), r(rng, 9, 4), r(rng, 9, 4)
    y = lc.attention2d(q, k, v, True)
    assert np.allclose(y[0], v[0], atol=1e-6)
    x = r(rng, 1, 2, 6, 6)
    w = r(rng, 3, 2, 3, 3)
    assert lc.conv2d_nchw(x, w, None, 1, 1, 1, 1).shape == (1, 3, 6, 6)
    for name in OPS:
        valid_call_works(name, rng)
