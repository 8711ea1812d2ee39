"""lightning_core tensors as op operands (docs/python_api.md, "Device tensors").

CPU (runs everywhere): every op takes Tensor / Tensor64 / TensorView objects wherever it takes an
ndarray (inputs and `out`), alone or mixed with ndarrays; results equal the ndarray path and the float64
reference; the non-_into forms return a Tensor (Tensor64 for float64) on the first tensor input's
device with the ndarray version's shape; `out` tensors (and contiguous TensorViews) are written in place
and returned; tensors are never converted (a dtype other than the compute dtype is a TypeError naming
the argument); the flat APIs view a contiguous tensor of exactly the element count with the 2-D shape
they need (strided views of another shape: ValueError); `out` checks and aliasing across tensors; a
refused call writes nothing; synchronize(); set_matmul_precision()/get_matmul_precision().

CUDA (skipped unless lc.cuda_available(); they run on the GPU machine): every op on CUDA tensors
against the float64 NumPy reference with fresh random inputs and awkward sizes, `out` on the GPU or in
host memory, mixed CUDA tensors / CPU tensors / ndarrays, asynchronous work + synchronize(), device='cpu'
with a CUDA operand -> ValueError naming the devices, TF32 vs highest matmul precision, and CUDA tensor
round trips (numpy(), copy_from(), views).
"""
import numpy as np
import pytest

import lightning_core as lc
from conftest import CUDA, REF, requires_cuda, tol

# ---- op table ---------------------------------------------------------------------------------------


def _r(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _nonzero(rng, *shape, dtype=np.float32):
    return (rng.choice([-1.0, 1.0], size=shape) * (0.5 + rng.random(shape))).astype(dtype)


def _case(inputs, extra, ref, out_shape):
    return {"inputs": inputs, "extra": extra, "ref": ref, "out_shape": out_shape}


def b_matmul(rng, big, dt):
    m, k, n = (67, 131, 45) if big else (13, 29, 7)
    a, b = _r(rng, m, k, dtype=dt), _r(rng, k, n, dtype=dt)
    return _case({"a": a, "b": b}, {}, REF.matmul(a, b), (m, n))


def b_matmul_np(rng, big, dt):
    m, k, n = (37, 101, 23) if big else (5, 11, 3)
    a, b = _r(rng, m * k, dtype=dt), _r(rng, k, n, dtype=dt)  # a flat, b 2-D
    return _case({"a": a, "b": b}, {"m": m, "k": k, "n": n}, REF.matmul(a.reshape(m, k), b).ravel(), (m * n,))


def b_attention2d(rng, big, dt):
    seq, hd = (133, 40) if big else (11, 6)
    q, k, v = (_r(rng, seq, hd, dtype=dt) for _ in range(3))
    return _case({"q": q, "k": k, "v": v}, {"causal": True}, REF.attention(q, k, v, True), (seq, hd))


def b_attention_forward(rng, big, dt):
    seq, hd = (97, 24) if big else (9, 5)
    q, k, v = _r(rng, seq * hd, dtype=dt), _r(rng, seq, hd, dtype=dt), _r(rng, seq * hd, dtype=dt)
    ref = REF.attention(q.reshape(seq, hd), k, v.reshape(seq, hd)).ravel()
    return _case({"q": q, "k": k, "v": v}, {"seq": seq, "head_dim": hd}, ref, (seq * hd,))


def b_conv(rng, big, dt):
    xs, ws = ((2, 5, 17, 19), (7, 5, 3, 3)) if big else ((2, 3, 9, 8), (4, 3, 3, 2))
    x, w, b = _r(rng, *xs, dtype=dt), _r(rng, *ws, dtype=dt), _r(rng, ws[0], dtype=dt)
    p = {"stride_h": 2, "stride_w": 1, "pad_h": 1, "pad_w": 0, "apply_relu": True}
    ref = REF.conv2d(x, w, b, 2, 1, 1, 0, True)
    return _case({"x": x, "w": w, "b": b}, p, ref, ref.shape)


def b_vector_add(rng, big, dt):
    shape = (37, 1001) if big else (3, 5, 7)
    a, b = _r(rng, *shape, dtype=dt), _r(rng, *shape, dtype=dt)
    return _case({"a": a, "b": b}, {}, a.astype(np.float64) + b, shape)


def _b_matrix(op):
    def build(rng, big, dt):
        rows, cols = (33, 67) if big else (6, 9)
        a, b = _r(rng, rows * cols, dtype=dt), _nonzero(rng, rows, cols, dtype=dt)
        a64, b64 = a.astype(np.float64).reshape(rows, cols), b.astype(np.float64)
        ref = a64 - b64 if op == "sub" else a64 / b64
        return _case({"a": a, "b": b}, {"rows": rows, "cols": cols}, ref, (rows * cols,))

    return build


def b_relu(rng, big, dt):
    x = _r(rng, *((3, 1111) if big else (4, 33)), dtype=dt)
    return _case({"x": x}, {}, REF.relu(x), x.shape)


def b_gelu(rng, big, dt):
    x = _r(rng, *((5003,) if big else (4, 33)), dtype=dt)
    return _case({"x": x}, {"approximate": "tanh"}, REF.gelu(x, "tanh"), x.shape)


def b_gelu_erf(rng, big, dt):
    x = _r(rng, *((7, 9, 13) if big else (2, 17)), dtype=dt)
    return _case({"x": x}, {"approximate": "none"}, REF.gelu(x), x.shape)


def b_layer_norm(rng, big, dt):
    shape = (7, 9, 513) if big else (3, 5, 17)
    x, g, b = _r(rng, *shape, dtype=dt), _r(rng, shape[-1], dtype=dt), _r(rng, shape[-1], dtype=dt)
    return _case({"x": x, "gamma": g, "beta": b}, {"eps": 1e-5}, REF.layer_norm(x, g, b), shape)


# name -> (builder, function, *_into function, takes float64)
OPS = {
    "matmul2d": (b_matmul, lc.matmul2d, lc.matmul2d_into, True),
    "matmul": (b_matmul, lc.matmul, None, True),
    "matmul_np_into": (b_matmul_np, None, lc.matmul_np_into, True),
    "attention2d": (b_attention2d, lc.attention2d, lc.attention2d_into, False),
    "attention_forward": (b_attention_forward, lc.attention_forward, lc.attention_forward_into, False),
    "conv2d_nchw": (b_conv, lc.conv2d_nchw, lc.conv2d_nchw_into, False),
    "vector_add": (b_vector_add, lc.vector_add, lc.vector_add_into, True),
    "matrix_sub": (_b_matrix("sub"), lc.matrix_sub, lc.matrix_sub_into, True),
    "matrix_div": (_b_matrix("div"), lc.matrix_div, lc.matrix_div_into, True),
    "relu": (b_relu, lc.relu, lc.relu_into, True),
    "gelu": (b_gelu, lc.gelu, lc.gelu_into, False),
    "gelu_erf": (b_gelu_erf, lc.gelu, lc.gelu_into, False),
    "layer_norm": (b_layer_norm, lc.layer_norm, lc.layer_norm_into, False),
}
PLAIN = [n for n, spec in OPS.items() if spec[1] is not None]
INTO = [n for n, spec in OPS.items() if spec[2] is not None]
F32_ONLY = [n for n, spec in OPS.items() if not spec[3]]
F64_OK = [n for n, spec in OPS.items() if spec[3]]
TENSOR_TYPES = (lc.Tensor, lc.Tensor64, lc.TensorView)


def T(x, device="cpu"):
    """A Tensor (float32) or Tensor64 (float64) holding a copy of x."""
    return (lc.Tensor64 if np.asarray(x).dtype == np.float64 else lc.Tensor)(x, device=device)


def host(x):
    return x.numpy() if isinstance(x, TENSOR_TYPES) else np.asarray(x)


def nan_tensor(shape, dtype=np.float32, device="cpu"):
    return T(np.full(shape, np.nan, dtype), device)


def build(name, rng, big=False, dt=np.float32):
    return OPS[name][0](rng, big, dt)


def call(name, case, device, tensors=(), tdev="cpu", out=None):
    """Calls op `name` with case's inputs, those named in `tensors` as tensors on `tdev`."""
    _, fn, into, _ = OPS[name]
    args = {k: (T(v, tdev) if k in tensors else v) for k, v in case["inputs"].items()}
    args.update(case["extra"])
    if out is None:
        return fn(**args, device=device)
    return into(**args, out=out, device=device)


def check_close(got, want, rel_err, bound):
    got = host(got)
    assert rel_err(got.reshape(np.shape(want)), want) < bound


def bound_for(name, case, dt=np.float32):
    # float32 against the float64 reference; every k here is < 1024 (tol() scales beyond)
    return tol(dt)


# ---- CPU tensors through every op ------------------------------------------------------------------


@pytest.mark.parametrize("name", PLAIN)
def test_cpu_tensor_inputs_give_a_tensor_equal_to_the_ndarray_path(rng, rel_err, name):
    case = build(name, rng)
    want = call(name, case, "cpu")
    assert isinstance(want, np.ndarray)
    got = call(name, case, "cpu", tensors=tuple(case["inputs"]))
    assert type(got) is lc.Tensor
    assert got.device == "cpu" and got.dtype == "float32" and got.shape == want.shape
    assert got.is_contiguous
    assert rel_err(got.numpy(), want) < 1e-6
    assert rel_err(got.numpy(), case["ref"]) < 1e-5


@pytest.mark.parametrize("name", PLAIN)
def test_one_tensor_mixed_with_ndarrays(rng, rel_err, name):
    case = build(name, rng)
    want = call(name, case, "cpu")
    for arg in case["inputs"]:
        before = {k: v.copy() for k, v in case["inputs"].items()}
        got = call(name, case, "cpu", tensors=(arg,))
        assert type(got) is lc.Tensor, arg
        assert got.shape == want.shape
        assert rel_err(got.numpy(), want) < 1e-6, arg
        for k, v in case["inputs"].items():
            assert np.array_equal(v, before[k]), f"input {k} modified"


@pytest.mark.parametrize("name", INTO)
@pytest.mark.parametrize("which", ["ndarray-inputs", "tensor-inputs", "mixed"])
def test_out_tensor_is_written_in_place(rng, rel_err, name, which):
    case = build(name, rng)
    names = list(case["inputs"])
    tensors = {"ndarray-inputs": (), "tensor-inputs": tuple(names), "mixed": tuple(names[:1])}[which]
    out = nan_tensor(case["out_shape"])
    res = call(name, case, "cpu", tensors=tensors, out=out)
    assert res is out
    got = out.numpy()
    assert not np.isnan(got).any(), "every element of out must be written"
    check_close(got, case["ref"], rel_err, bound_for(name, case))


@pytest.mark.parametrize("name", INTO)
def test_ndarray_out_with_tensor_inputs(rng, rel_err, poison, name):
    case = build(name, rng)
    out = poison(case["out_shape"])
    res = call(name, case, "cpu", tensors=tuple(case["inputs"]), out=out)
    assert res is out
    check_close(out, case["ref"], rel_err, bound_for(name, case))


@pytest.mark.parametrize("name", INTO)
def test_out_tensor_view_writes_through_to_its_base(rng, rel_err, name):
    case = build(name, rng)
    shape = case["out_shape"]
    count = int(np.prod(shape))
    base = nan_tensor((count + 5,))
    view = base.view(shape, offset=3)  # a contiguous view in the middle of the storage
    assert call(name, case, "cpu", tensors=tuple(case["inputs"]), out=view) is view
    full = base.numpy()
    assert np.isnan(full[:3]).all() and np.isnan(full[3 + count:]).all(), "wrote outside the view"
    check_close(full[3:3 + count], case["ref"], rel_err, bound_for(name, case))


@pytest.mark.parametrize("name", F64_OK)
def test_float64_tensors_compute_in_float64(rng, rel_err, name):
    case = build(name, rng, dt=np.float64)
    if OPS[name][1] is not None:
        got = call(name, case, "cpu", tensors=tuple(case["inputs"]))
        assert type(got) is lc.Tensor64 and got.dtype == "float64"
        check_close(got, case["ref"], rel_err, 1e-12)
    if OPS[name][2] is not None:
        out = nan_tensor(case["out_shape"], np.float64)
        assert call(name, case, "cpu", tensors=tuple(case["inputs"])[:1], out=out) is out
        check_close(out, case["ref"], rel_err, 1e-12)


@pytest.mark.parametrize("name", F32_ONLY)
def test_float64_tensor_into_float32_op_is_a_type_error(rng, name):
    case = build(name, rng)
    for arg in case["inputs"]:
        args = dict(case["inputs"])
        args[arg] = lc.Tensor64(args[arg])
        args.update(case["extra"])
        fn = OPS[name][1] or OPS[name][2]
        if OPS[name][1] is None:
            args["out"] = np.zeros(case["out_shape"], np.float32)
        with pytest.raises(TypeError, match=rf"\b{arg}\b.*float32.*float64"):
            fn(**args)
    # ...whereas a float64 ndarray is still converted
    args = {k: v.astype(np.float64) for k, v in case["inputs"].items()}
    args.update(case["extra"])
    if OPS[name][1] is not None:
        assert isinstance(OPS[name][1](**args), np.ndarray)


@pytest.mark.parametrize("name", F64_OK)
def test_float32_tensor_with_a_float64_ndarray_is_a_type_error(rng, name):
    case = build(name, rng)
    names = list(case["inputs"])
    if len(names) < 2:  # relu: a float32 tensor out with a float64 input
        out = nan_tensor(case["out_shape"])
        with pytest.raises(TypeError, match=r"\bout\b.*float64"):
            lc.relu_into(case["inputs"]["x"].astype(np.float64), out)
        assert np.isnan(out.numpy()).all()
        return
    args = {names[0]: T(case["inputs"][names[0]]), names[1]: case["inputs"][names[1]].astype(np.float64)}
    args.update(case["extra"])
    fn = OPS[name][1] or OPS[name][2]
    if OPS[name][1] is None:
        args["out"] = np.zeros(case["out_shape"], np.float64)
    with pytest.raises(TypeError, match=rf"\b{names[0]}\b.*float64.*not converted"):
        fn(**args)


@pytest.mark.parametrize("name", INTO)
def test_bad_out_tensors_are_refused_and_left_untouched(rng, name):
    case = build(name, rng)
    shape = case["out_shape"]
    count = int(np.prod(shape))
    bad = [
        (nan_tensor(shape, np.float64), TypeError, r"\bout\b.*float32"),  # wrong dtype
        (nan_tensor((count + 1,)), ValueError, r"\bout\b"),  # wrong shape / count
        (nan_tensor((count, 2)).view((count,), (2,)), ValueError, r"\bout\b.*contiguous"),  # strided view
    ]
    for out, exc, pattern in bad:
        before = out.numpy()
        with pytest.raises(exc, match=pattern):
            call(name, case, "cpu", tensors=tuple(case["inputs"]), out=out)
        assert np.array_equal(out.numpy(), before, equal_nan=True), "a refused call wrote to out"


def test_flat_apis_view_tensors_of_the_exact_count(rng, rel_err, poison):
    m, k, n = 4, 6, 5
    a, b = _r(rng, m, k), _r(rng, k, n)
    want = REF.matmul(a, b)
    # tensors of other shapes with exactly m*k / k*n / m*n elements
    ta, tb = lc.Tensor(a.reshape(2, 3, 4)), lc.Tensor(b.ravel())
    out = nan_tensor((2, m * n // 2))
    assert lc.matmul_np_into(ta, tb, out, m, k, n) is out
    assert rel_err(out.numpy().reshape(m, n), want) < 1e-5
    assert ta.shape == (2, 3, 4) and out.shape == (2, m * n // 2), "tensors keep their own shape"
    # a contiguous view at an offset
    store = lc.Tensor(np.concatenate([np.zeros(3, np.float32), a.ravel()]))
    out2 = poison((m * n,))
    lc.matmul_np_into(store.view((m * k,), offset=3), b, out2, m, k, n)
    assert rel_err(out2.reshape(m, n), want) < 1e-5
    # a strided view of another shape cannot be viewed: ValueError naming it
    strided = lc.Tensor(np.repeat(a.ravel(), 2)).view((m * k,), (2,))
    with pytest.raises(ValueError, match=r"\ba\b.*contiguous"):
        lc.matmul_np_into(strided, b, poison((m * n,)), m, k, n)
    # ...but one that already has the needed shape is used as is (gathered by the C layer)
    t_ab = lc.Tensor(np.ascontiguousarray(a.T))  # [k, m]
    y = lc.matrix_sub(t_ab.view((m, k), (1, m)), a, m, k)
    assert np.array_equal(y.numpy(), np.zeros((m, k), np.float32))
    # wrong element counts name the size argument (as for ndarrays)
    with pytest.raises(ValueError, match=r"\bm\b"):
        lc.matmul_np_into(lc.Tensor(a.ravel()[:-1]), tb, poison((m * n,)), m, k, n)
    with pytest.raises(ValueError, match=r"\bn\b"):
        lc.matmul_np_into(ta, lc.Tensor(b.ravel()[:-1]), poison((m * n,)), m, k, n)
    with pytest.raises(ValueError, match=r"\bseq\b"):
        lc.attention_forward(lc.Tensor(a.ravel()), a, a, 5, 5)
    with pytest.raises(ValueError, match=r"\brows\b"):
        lc.matrix_div(lc.Tensor(a.ravel()), a, 5, 5)
    with pytest.raises(ValueError, match=r"\bout\b.*elements"):
        lc.matrix_sub_into(a, ta, nan_tensor((m * k + 1,)), m, k)


def test_attention_forward_returns_a_flat_tensor(rng, rel_err):
    seq, hd = 7, 4
    q, k, v = (_r(rng, seq, hd) for _ in range(3))
    y = lc.attention_forward(lc.Tensor(q), k, v, seq, hd, causal=True)
    assert type(y) is lc.Tensor and y.shape == (seq * hd,)
    assert rel_err(y.numpy().reshape(seq, hd), REF.attention(q, k, v, True)) < 1e-5


def test_shape_errors_with_tensors_match_the_ndarray_messages(rng):
    a, b = _r(rng, 4, 5), _r(rng, 6, 3)
    with pytest.raises(ValueError) as e_arr:
        lc.matmul2d(a, b)
    with pytest.raises(ValueError) as e_t:
        lc.matmul2d(lc.Tensor(a), lc.Tensor(b))
    assert str(e_arr.value) == str(e_t.value)
    with pytest.raises(ValueError, match=r"\bk\b.*like q"):
        lc.attention2d(lc.Tensor(a), lc.Tensor(a[:3]), a)
    with pytest.raises(ValueError, match=r"\bb\b.*like a"):
        lc.vector_add(lc.Tensor(a), a.ravel())
    with pytest.raises(ValueError, match=r"\bgamma\b"):
        lc.layer_norm(lc.Tensor(a), gamma=lc.Tensor(_r(rng, 4)))
    with pytest.raises(ValueError, match=r"\bx\b.*4 dimensions"):
        lc.conv2d_nchw(lc.Tensor(a), _r(rng, 1, 1, 1, 1), None)


def test_non_tensor_objects_still_raise_type_error(rng):
    a = _r(rng, 3, 3)
    with pytest.raises(TypeError, match=r"matmul2d: a: expected a numpy.ndarray or a lightning_core Tensor, got list"):
        lc.matmul2d(a.tolist(), a)
    with pytest.raises(TypeError, match=r"\bout\b.*got list"):
        lc.relu_into(lc.Tensor(a), [0.0] * 9)


def test_aliasing_between_tensors(rng, rel_err):
    a = _r(rng, 6, 6)
    t = lc.Tensor(a)
    # matmul: out must not share memory with an input, whatever the objects
    with pytest.raises(ValueError, match=r"\bout\b.*\ba\b"):
        lc.matmul2d_into(t, a, t)
    with pytest.raises(ValueError, match=r"\bout\b.*\bb\b"):
        lc.matmul2d_into(a, t.view((6, 6)), t)
    before = t.numpy()
    # elementwise: exactly an input is in place; a partial overlap is refused
    assert lc.relu_into(t, t) is t
    assert np.array_equal(t.numpy(), np.maximum(before, 0))
    same = t.view((6, 6))
    assert lc.vector_add_into(t, same, same) is same
    assert np.array_equal(t.numpy(), 2 * np.maximum(before, 0))
    big = lc.Tensor(_r(rng, 40))
    with pytest.raises(ValueError, match=r"\bout\b.*partial overlap"):
        lc.relu_into(big.view((36,)), big.view((36,), offset=2))
    with pytest.raises(ValueError, match=r"\bout\b.*\bx\b"):
        lc.layer_norm_into(big.view((6, 6)), big.view((6, 6), offset=4))
    # separate tensors never alias; layer_norm in place on a tensor
    x = lc.Tensor(a)
    assert lc.layer_norm_into(x, x) is x
    assert rel_err(x.numpy(), REF.layer_norm(a)) < 1e-5


def test_strided_cpu_views_as_inputs(rng, rel_err):
    a, b = _r(rng, 9, 7), _r(rng, 9, 5)
    ta, tb = lc.Tensor(a), lc.Tensor(b)
    at = ta.view((7, 9), (1, 7))  # the transpose of a
    y = lc.matmul2d(at, tb)
    assert type(y) is lc.Tensor and y.shape == (7, 5)
    assert rel_err(y.numpy(), REF.matmul(a.T, b)) < 1e-5
    assert rel_err(lc.relu(at).numpy(), REF.relu(a.T)) < 1e-7
    col = ta.view((9,), (7,), offset=2)  # column 2
    assert np.array_equal(lc.vector_add(col, col).numpy(), 2 * a[:, 2])
    # a TensorView result keeps its base alive
    z = lc.vector_add(col, a[:, 2].copy())
    del ta, col
    assert np.array_equal(z.numpy(), 2 * a[:, 2])


def test_tensor_results_are_independent_tensors(rng):
    a = _r(rng, 4, 4)
    t = lc.Tensor(a)
    y = lc.relu(t)
    assert y is not t and not hasattr(y, "base")
    y.copy_from(np.zeros(16, np.float32))
    assert np.array_equal(t.numpy(), a), "the result must not share storage with the input"
    assert repr(y) == "Tensor(shape=(4, 4), dtype='float32', device='cpu')"


def test_cpu_tensors_record_the_dispatch(rng):
    a = lc.Tensor(_r(rng, 3, 4))
    lc.matmul2d(a, _r(rng, 4, 2))
    d = lc.last_dispatch()
    assert d["op"] == "matmul" and d["requested"] == "cpu" and d["selected"] == "cpu"


@pytest.mark.parametrize("name", PLAIN)
def test_cpu_tensors_on_each_device(rng, rel_err, device, name):
    # Host tensors run where asked ("cuda" uploads them); the result stays on the CPU.
    case = build(name, rng)
    got = call(name, case, device, tensors=tuple(case["inputs"]))
    assert type(got) is lc.Tensor and got.device == "cpu"
    check_close(got, case["ref"], rel_err, bound_for(name, case))


# ---- runtime: synchronize and matmul precision --------------------------------------------------------


@pytest.fixture
def precision():
    lc.set_matmul_precision("highest")
    try:
        yield
    finally:
        lc.set_matmul_precision("highest")


def test_synchronize_cpu_is_a_no_op():
    assert lc.synchronize("cpu") is None
    assert lc.synchronize(device="cpu") is None


@pytest.mark.skipif(CUDA, reason="checks the no-GPU behaviour")
def test_synchronize_without_a_gpu_raises_device_unavailable():
    with pytest.raises(lc.DeviceUnavailableError, match="cuda"):
        lc.synchronize()
    with pytest.raises(lc.DeviceUnavailableError):
        lc.synchronize("cuda")
    with pytest.raises(lc.DeviceUnavailableError):
        lc.Tensor((2, 2), device="cuda")


def test_synchronize_bad_arguments():
    with pytest.raises(ValueError, match="device"):
        lc.synchronize("gpu")
    for dev in ("auto", "metal"):
        with pytest.raises(ValueError, match="device"):
            lc.synchronize(dev)
    for bad in (None, 0, b"cuda"):
        with pytest.raises(TypeError, match="device"):
            lc.synchronize(bad)
    with pytest.raises(TypeError):
        lc.synchronize("cpu", "cpu")


def test_matmul_precision_round_trip(precision):
    assert lc.get_matmul_precision() == "highest"
    assert lc.set_matmul_precision("tf32") is None
    assert lc.get_matmul_precision() == "tf32"
    lc.set_matmul_precision(precision="highest")
    assert lc.get_matmul_precision() == "highest"
    for bad in ("TF32", "high", "medium", ""):
        with pytest.raises(ValueError, match="precision"):
            lc.set_matmul_precision(bad)
    for bad in (None, 1, 32.0, b"tf32"):
        with pytest.raises(TypeError, match="precision"):
            lc.set_matmul_precision(bad)
    assert lc.get_matmul_precision() == "highest"
    with pytest.raises(TypeError):
        lc.get_matmul_precision("tf32")


def test_cpu_matmul_ignores_tf32(rng, precision):
    a, b = _r(rng, 33, 257), _r(rng, 257, 17)
    exact = lc.matmul2d(a, b)
    lc.set_matmul_precision("tf32")
    assert np.array_equal(lc.matmul2d(a, b), exact)
    assert np.array_equal(lc.matmul2d(lc.Tensor(a), b).numpy(), exact)


# ---- CUDA tensors (skipped without a GPU) ---------------------------------------------------------------


@requires_cuda
@pytest.mark.parametrize("name", PLAIN)
def test_cuda_tensors_match_the_reference(rng, rel_err, precision, name):
    case = build(name, rng, big=True)
    got = call(name, case, "cuda", tensors=tuple(case["inputs"]), tdev="cuda")
    assert type(got) is lc.Tensor and got.device == "cuda"
    assert got.shape == tuple(np.shape(case["ref"]))
    check_close(got, case["ref"], rel_err, bound_for(name, case))  # numpy(): a synchronous download
    d = lc.last_dispatch()
    assert d["selected"] == "cuda"


@requires_cuda
@pytest.mark.parametrize("name", INTO)
def test_cuda_out_tensors(rng, rel_err, precision, name):
    case = build(name, rng, big=True)
    out = nan_tensor(case["out_shape"], device="cuda")
    assert call(name, case, "cuda", tensors=tuple(case["inputs"]), tdev="cuda", out=out) is out
    lc.synchronize()
    got = out.numpy()
    assert not np.isnan(got).any()
    check_close(got, case["ref"], rel_err, bound_for(name, case))
    # ndarray inputs into a CUDA out (uploaded by the library)
    out2 = nan_tensor(case["out_shape"], device="cuda")
    call(name, case, "cuda", out=out2)
    check_close(out2, case["ref"], rel_err, bound_for(name, case))


@requires_cuda
@pytest.mark.parametrize("name", INTO)
def test_cuda_inputs_into_host_out_return_finished(rng, rel_err, poison, precision, name):
    case = build(name, rng, big=True)
    out = poison(case["out_shape"])
    assert call(name, case, "cuda", tensors=tuple(case["inputs"]), tdev="cuda", out=out) is out
    check_close(out, case["ref"], rel_err, bound_for(name, case))  # no synchronize(): host out is finished
    cpu_out = nan_tensor(case["out_shape"])
    call(name, case, "cuda", tensors=tuple(case["inputs"]), tdev="cuda", out=cpu_out)
    check_close(cpu_out, case["ref"], rel_err, bound_for(name, case))


@requires_cuda
@pytest.mark.parametrize("name", PLAIN)
def test_cuda_tensor_mixed_with_ndarrays_and_cpu_tensors(rng, rel_err, precision, name):
    case = build(name, rng, big=True)
    names = list(case["inputs"])
    # one CUDA tensor, the rest ndarrays: the result lives on the CUDA tensor's device
    got = call(name, case, "cuda", tensors=(names[-1],), tdev="cuda")
    assert got.device == "cuda"
    check_close(got, case["ref"], rel_err, bound_for(name, case))
    if len(names) > 1:  # first tensor input on the CPU, another on CUDA: the result follows the first
        args = {k: v for k, v in case["inputs"].items()}
        args[names[0]] = T(args[names[0]], "cpu")
        args[names[1]] = T(args[names[1]], "cuda")
        got = OPS[name][1](**args, **case["extra"], device="cuda")
        assert got.device == "cpu"
        check_close(got, case["ref"], rel_err, bound_for(name, case))


@requires_cuda
@pytest.mark.parametrize("name", PLAIN)
def test_cuda_float64_tensors(rng, rel_err, name):
    if name in F32_ONLY:
        case = build(name, rng, big=True)
        arg = next(iter(case["inputs"]))
        args = dict(case["inputs"], **case["extra"])
        args[arg] = lc.Tensor64(args[arg], device="cuda")
        with pytest.raises(TypeError, match=rf"\b{arg}\b"):
            OPS[name][1](**args, device="cuda")
        return
    case = build(name, rng, big=True, dt=np.float64)
    got = call(name, case, "cuda", tensors=tuple(case["inputs"]), tdev="cuda")
    assert type(got) is lc.Tensor64 and got.device == "cuda"
    check_close(got, case["ref"], rel_err, 1e-12)


@requires_cuda
@pytest.mark.parametrize("name", PLAIN)
def test_cuda_operand_with_device_cpu_is_a_value_error(rng, name):
    case = build(name, rng)
    for dev in ("cpu", None):  # None: the device argument left out (its default is "cpu")
        args = {k: T(v, "cuda") for k, v in case["inputs"].items()}
        args.update(case["extra"])
        if dev is not None:
            args["device"] = dev
        with pytest.raises(ValueError, match=r"(?s)cpu.*cuda"):
            OPS[name][1](**args)


@requires_cuda
def test_cuda_work_is_asynchronous_until_synchronize(rng, rel_err, precision):
    n = 1024
    a = _r(rng, n, n) / np.float32(np.sqrt(n))
    ta = lc.Tensor(a, device="cuda")
    x = lc.Tensor(_r(rng, n, n), device="cuda")
    tmp = lc.Tensor((n, n), device="cuda")
    want = x.numpy().astype(np.float64)
    for _ in range(8):  # a chain of dependent kernels, enqueued without waiting
        lc.matmul2d_into(ta, x, tmp, device="cuda")
        lc.relu_into(tmp, tmp, device="cuda")
        x, tmp = tmp, x
        want = np.maximum(a.astype(np.float64) @ want, 0.0)
    assert lc.synchronize() is None
    assert lc.synchronize("cuda") is None
    assert rel_err(x.numpy(), want) < 1e-4
    # numpy() alone also waits for the work that writes the tensor
    y = lc.matmul2d(ta, x, device="cuda")
    assert rel_err(y.numpy(), a.astype(np.float64) @ want) < 1e-4


@requires_cuda
def test_cuda_matmul_precision(rng, rel_err, precision):
    m, k, n = 256, 1024, 192
    a, b = _r(rng, m, k), _r(rng, k, n)
    want = REF.matmul(a, b)
    ta, tb = lc.Tensor(a, device="cuda"), lc.Tensor(b, device="cuda")
    lc.set_matmul_precision("tf32")
    assert lc.get_matmul_precision() == "tf32"
    err_tf32 = rel_err(lc.matmul2d(ta, tb, device="cuda").numpy(), want)
    err_tf32_host = rel_err(lc.matmul2d(a, b, device="cuda"), want)
    lc.set_matmul_precision("highest")
    err_highest = rel_err(lc.matmul2d(ta, tb, device="cuda").numpy(), want)
    assert err_tf32 < 5e-3 and err_tf32_host < 5e-3
    assert err_highest < 1e-5
    # float64 is never affected
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    lc.set_matmul_precision("tf32")
    y = lc.matmul2d(lc.Tensor64(a64, device="cuda"), lc.Tensor64(b64, device="cuda"), device="cuda")
    assert rel_err(y.numpy(), want) < 1e-12


@requires_cuda
@pytest.mark.parametrize("cls,dt", [(lc.Tensor, np.float32), (lc.Tensor64, np.float64)])
def test_cuda_tensor_round_trips(rng, cls, dt):
    src = _r(rng, 37, 53, dtype=dt)
    t = cls(src, device="cuda")
    assert t.device == "cuda" and t.shape == (37, 53) and t.dtype == np.dtype(dt).name
    assert t.numel == src.size and t.nbytes == src.nbytes and t.is_contiguous
    assert repr(t) == f"{cls.__name__}(shape=(37, 53), dtype='{np.dtype(dt).name}', device='cuda')"
    assert t.validate() is None
    src_copy = src.copy()
    src[...] = 0
    got = t.numpy()
    assert got.dtype == dt and np.array_equal(got, src_copy)
    assert np.array_equal(np.asarray(t), src_copy)
    new = _r(rng, 37 * 53, dtype=dt)
    assert t.copy_from(new) is None
    assert np.array_equal(t.numpy(), new.reshape(37, 53))
    z = cls((5, 7), device="cuda")
    assert np.array_equal(z.numpy(), np.zeros((5, 7), dt))
    # a contiguous view (at an offset) reads and writes the range; a strided one goes through the host
    v = t.view((10, 53), offset=53 * 3)
    assert v.device == "cuda" and v.base is t
    assert np.array_equal(v.numpy(), new.reshape(37, 53)[3:13])
    v.copy_from(np.ones((10, 53), dt))
    assert np.array_equal(t.numpy()[3:13], np.ones((10, 53), dt))
    s = t.view((53, 37), (1, 53))
    assert s.device == "cuda" and not s.is_contiguous
    assert np.array_equal(s.numpy(), t.numpy().T)
    before = t.numpy()
    s.copy_from(np.arange(53 * 37, dtype=dt))
    assert np.array_equal(t.numpy(), np.arange(53 * 37, dtype=dt).reshape(53, 37).T)
    assert not np.array_equal(before, t.numpy())
    with pytest.raises(ValueError):
        t.view((2, 2), device="cpu")


@requires_cuda
def test_cuda_views_as_operands(rng, rel_err, precision):
    a = _r(rng, 12, 10)
    t = lc.Tensor(np.concatenate([np.zeros(7, np.float32), a.ravel()]), device="cuda")
    v = t.view((12, 10), offset=7)  # contiguous view at an offset
    y = lc.relu(v, device="cuda")
    assert y.device == "cuda"
    assert rel_err(y.numpy(), REF.relu(a)) < 1e-7
    out = nan_tensor((12 * 10 + 3,), device="cuda")
    lc.vector_add_into(v, v, out.view((12, 10), offset=3), device="cuda")
    assert np.array_equal(out.numpy()[3:].reshape(12, 10), 2 * a)
    s = t.view((10, 12), (1, 10), offset=7)  # strided: gathered by the C layer
    y = lc.matmul2d(s, lc.Tensor(a, device="cuda"), device="cuda")
    assert rel_err(y.numpy(), REF.matmul(a.T, a)) < 1e-5
    # out [0, 60) of the storage overlaps v's [7, 127): refused (same device, byte ranges)
    with pytest.raises(ValueError, match=r"\bout\b.*overlap"):
        lc.matmul2d_into(v, lc.Tensor(_r(rng, 10, 5), device="cuda"), t.view((12, 5)), device="cuda")


@requires_cuda
def test_cuda_in_place_elementwise(rng, rel_err):
    x = _r(rng, 1001)
    t = lc.Tensor(x, device="cuda")
    assert lc.relu_into(t, t, device="cuda") is t
    assert lc.gelu_into(t, t, device="cuda") is t
    assert lc.vector_add_into(t, t, t, device="cuda") is t
    lc.synchronize()
    assert rel_err(t.numpy(), 2 * REF.gelu(REF.relu(x))) < 1e-5


@requires_cuda
def test_cuda_out_of_memory_is_a_memory_error_and_the_process_stays_usable(rng, rel_err):
    # 2^40 floats = 4 TiB: more than any card has. The allocator returns its cache and retries once,
    # then reports the byte count.
    with pytest.raises(MemoryError, match="bytes"):
        lc.Tensor((1 << 40,), device="cuda")
    a = rng.standard_normal((33, 65)).astype(np.float32)
    t = lc.Tensor(a, device="cuda")
    assert rel_err(lc.relu(t, device="cuda").numpy(), np.maximum(a, 0)) < 1e-7
