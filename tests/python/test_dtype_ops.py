"""float16 and bfloat16 through the op bindings (docs/python_api.md, "Input rules" and "Dtypes and cast").

- matmul (matmul2d, matmul2d_into, matmul_np_into) with float16 and ml_dtypes.bfloat16 NumPy inputs, on the
  CPU and on CUDA (skipped without a GPU), against a float64 reference from the rounded inputs with the
  bound |y - ref| <= u·|ref| + 2k·2^-24·Σ|a||b| (u = 2^-11 float16, 2^-8 bfloat16; accumulation in
  float32), the output dtype checked, `out` poisoned with NaN before the run; converted layouts.
- every op of the binding with all-float16 / all-bfloat16 inputs: the compute dtype comes from the op
  table (lc.op_dtypes): the op's own dtype where it takes it, else float32 (lc.float32_fallback_ops),
  and the list in docs/python_api.md must be the table's (so the docs cannot drift).
- float16/bfloat16 mixed with any other dtype: TypeError naming both arguments and both dtypes, nothing
  written to `out`; `out` of another dtype than the compute dtype: TypeError naming the expected one.
- other NumPy user dtypes (ml_dtypes' float8) are refused by name.
"""
import re
from pathlib import Path

import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import UNIT_ROUNDOFF, lowp_matmul_excess, ref_activation

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
LOWP = {"float16": F16, "bfloat16": BF16}
UNIT = UNIT_ROUNDOFF
DOCS = Path(__file__).resolve().parents[2] / "docs" / "python_api.md"


def rounded(rng, shape, dt, scale=1.0, shift=0.0):
    """Random values already representable in dt (so the float64 reference sees the same inputs)."""
    return (rng.standard_normal(shape) * scale + shift).astype(dt)


def f64(x):
    return np.asarray(x).astype(np.float64)


def poison(shape, dt):
    return np.full(shape, np.nan, dtype=dt)


def check_matmul_bound(y, a, b, name):
    """|y - a@b| <= u·|ref| + 2k·2^-24·(|a|@|b|), elementwise, in float64 from the rounded inputs."""
    assert np.all(np.isfinite(f64(y))), "non-finite output"
    excess = lowp_matmul_excess(y, a, b, name)
    assert excess <= 1.0, (name, excess)


# ---- matmul in float16 / bfloat16 -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize("mkn", [(1, 1, 1), (37, 300, 29), (64, 64, 64), (5, 1031, 3)])
def test_matmul_lowp_in_lowp_out(rng, device, name, mkn):
    dt = LOWP[name]
    assert name in lc.op_dtypes("matmul"), "the op table says matmul takes float16/bfloat16"
    m, k, n = mkn
    a, b = rounded(rng, (m, k), dt), rounded(rng, (k, n), dt)
    a0, b0 = a.copy(), b.copy()
    y = lc.matmul2d(a, b, device)
    assert y.dtype == dt and y.shape == (m, n)
    check_matmul_bound(y, a, b, name)
    out = poison((m, n), dt)
    assert lc.matmul2d_into(a, b, out, device) is out
    check_matmul_bound(out, a, b, name)
    flat = poison(m * n, dt)
    assert lc.matmul_np_into(a.ravel(), b.ravel(), flat, m, k, n, device) is flat
    check_matmul_bound(flat.reshape(m, n), a, b, name)
    assert np.array_equal(a.view(np.uint16), a0.view(np.uint16)) and np.array_equal(b.view(np.uint16), b0.view(np.uint16))


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_matmul_lowp_converted_layouts(rng, name):
    dt = LOWP[name]
    m, k, n = 13, 40, 9
    big_a, big_b = rounded(rng, (2 * m, k + 3), dt), rounded(rng, (k, 3 * n), dt)
    cases = [
        ("fortran", np.asfortranarray(rounded(rng, (m, k), dt)), np.asfortranarray(rounded(rng, (k, n), dt))),
        ("transposed", rounded(rng, (k, m), dt).T, rounded(rng, (n, k), dt).T),
        ("sliced", big_a[::2, 1 : k + 1], big_b[:, ::3]),
    ]
    if name == "float16":
        a, b = rounded(rng, (m, k), dt), rounded(rng, (k, n), dt)
        cases.append(("byteswapped", a.astype(a.dtype.newbyteorder()), b))
    for what, a, b in cases:
        y = lc.matmul2d(a, b)
        assert y.dtype == dt, what
        check_matmul_bound(y, np.ascontiguousarray(a), np.ascontiguousarray(b), name)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_matmul_lowp_nonfinite_propagates(rng, name):
    dt = LOWP[name]
    a, b = rounded(rng, (4, 6), dt), rounded(rng, (6, 5), dt)
    a[1, 2] = np.nan
    a[2, 0] = np.inf
    y = f64(lc.matmul2d(a, b))
    assert np.all(np.isnan(y[1]))
    assert np.all(~np.isfinite(y[2]))
    assert np.all(np.isfinite(y[[0, 3]]))


def _bf16_cpu_kernel(m, k, n):
    """The kernel the CPU bfloat16 matmul of m rows must pick here (after LC_CPU_DISABLE masks): the in-place
    GEMV for m <= 4 on a CPU with AVX-512 (F + BW), else AVX-512 BF16 dot products at m <= 16 (or m <= 64 with
    k·n >= 2^24), else AMX tiles on a CPU with AMX-BF16 (its packing needs
    AVX-512 BW; the OS grant is assumed, as on any Linux >= 5.16), else AVX-512 BF16 dot products, else (4 < m
    <= 64 with AVX-512) the widening medium-m kernel, else the float32 conversion path."""
    feats = lc.cpu_features().split()
    avx512 = "avx512f" in feats and "avx512bw" in feats
    if m <= 4 and avx512:
        return "bf16_gemv_avx512"
    if "avx512_bf16" in feats and m <= 64 and (m <= 16 or k * n >= 2**24):
        return "avx512bf16"
    if "amx_bf16" in feats and "avx512bw" in feats:
        return "amx_bf16"
    if "avx512_bf16" in feats:
        return "avx512bf16"
    return "bf16_mid_avx512" if m <= 64 and avx512 else "bf16_via_f32"


@pytest.mark.parametrize("mkn", [(1, 1, 1), (17, 31, 33), (64, 600, 48), (130, 1100, 70), (20, 4097, 4096)])
def test_bfloat16_cpu_matmul_and_linear_take_the_best_kernel(rng, mkn):
    """On an AMX machine this is where the Python path proves the tiles ran (path "amx_bf16"); the shapes
    cross the 16/32 tile edges and the 512-k slices of that kernel, and (20, 4097, 4096) is a b of >= 2^24
    elements, which takes the AVX-512 BF16 kernel there instead."""
    m, k, n = mkn
    want = _bf16_cpu_kernel(m, k, n)
    a, b, bias = rounded(rng, (m, k), BF16), rounded(rng, (k, n), BF16), rounded(rng, n, BF16)
    y = lc.matmul2d(a, b, "cpu")
    path = lc.last_dispatch()["path"]
    assert path.startswith(want), (path, want)
    check_matmul_bound(y, a, b, "bfloat16")
    z = lc.linear(a, b, bias, "none", "cpu")
    path = lc.last_dispatch()["path"]
    assert path.startswith(want) and path.endswith("+epilogue_f32_bf16"), (path, want)
    ref = f64(a) @ f64(b) + f64(bias)
    bound = UNIT["bfloat16"] * np.abs(ref) + 1.2 * (2 * k * 2.0**-24 * (np.abs(f64(a)) @ np.abs(f64(b))) + 2.0**-23 * np.abs(f64(bias)))
    assert np.all(np.abs(f64(z) - ref) <= bound + 2.0**-133)


# ---- every op: the table decides the compute dtype ----------------------------------------------------


def _op_case(op, dt, rng):
    """(call(out=None) -> result, float64 reference, whether the result of a low-precision kernel is a
    k-term reduction (k) or elementwise (None), result shape)."""
    from lightning_core.testing import refs

    if op == "matmul":
        a, b = rounded(rng, (9, 33), dt), rounded(rng, (33, 7), dt)
        return (lambda out=None: lc.matmul2d(a, b) if out is None else lc.matmul2d_into(a, b, out)), f64(a) @ f64(b)
    if op == "linear":
        x, w, bias = rounded(rng, (9, 33), dt), rounded(rng, (33, 7), dt), rounded(rng, 7, dt)
        ref = np.maximum(f64(x) @ f64(w) + f64(bias), 0)
        return (lambda out=None: lc.linear(x, w, bias, "relu") if out is None else lc.linear_into(x, w, out, bias, "relu")), ref
    if op in ("vector_add", "matrix_sub", "matrix_div"):
        a = rounded(rng, (6, 11), dt)
        b = rounded(rng, (6, 11), dt, 0.25, 1.5) if op == "matrix_div" else rounded(rng, (6, 11), dt)
        if op == "vector_add":
            return (lambda out=None: lc.vector_add(a, b) if out is None else lc.vector_add_into(a, b, out)), f64(a) + f64(b)
        fn, fn_into = getattr(lc, op), getattr(lc, op + "_into")
        ref = f64(a) - f64(b) if op == "matrix_sub" else f64(a) / f64(b)
        return (lambda out=None: fn(a, b, 6, 11) if out is None else fn_into(a, b, out, 6, 11)), ref
    if op == "relu":
        x = rounded(rng, (5, 13), dt)
        return (lambda out=None: lc.relu(x) if out is None else lc.relu_into(x, out)), np.maximum(f64(x), 0)
    if op == "gelu":
        x = rounded(rng, (5, 13), dt, 2.0)
        return (lambda out=None: lc.gelu(x) if out is None else lc.gelu_into(x, out)), refs.ref_gelu(f64(x), "none")
    if op == "layer_norm":
        x, g, b = rounded(rng, (4, 24), dt), rounded(rng, 24, dt), rounded(rng, 24, dt)
        ref = refs.ref_layer_norm(f64(x), f64(g), f64(b))
        return (lambda out=None: lc.layer_norm(x, g, b) if out is None else lc.layer_norm_into(x, out, g, b)), ref
    if op == "attention_forward":
        q, k, v = (rounded(rng, (10, 8), dt) for _ in range(3))
        ref = refs.ref_attention(f64(q), f64(k), f64(v))
        return (lambda out=None: lc.attention2d(q, k, v) if out is None else lc.attention2d_into(q, k, v, out)), ref
    if op == "conv2d_nchw":
        x, w, b = rounded(rng, (1, 3, 7, 6), dt), rounded(rng, (4, 3, 3, 3), dt), rounded(rng, 4, dt)
        ref = refs.ref_conv2d(f64(x), f64(w), f64(b), 1, 1, 0, 0)
        return (lambda out=None: lc.conv2d_nchw(x, w, b) if out is None else lc.conv2d_nchw_into(x, w, b, out)), ref
    if op == "qkv_pack_repeat":
        src = rounded(rng, 7, dt)
        ref = np.resize(f64(src), 3 * 4 * 5).reshape(3, 4, 5)
        return (lambda out=None: lc.qkv_pack_repeat(src, 4, 5) if out is None else lc.qkv_pack_repeat_into(src, out)), ref
    raise AssertionError(f"no case for op {op}: add one (every op of lc.dtypes.BINDING_OPS)")


def _check_result(y, ref, name, op, rel_err):
    if y.dtype == np.float32:  # computed in float32 from the (exactly converted) low-precision inputs
        assert rel_err(y, ref) < 1e-5, op
    else:  # computed in the low-precision dtype: storage rounding (u) plus float32 accumulation
        assert rel_err(f64(y), ref) < 4 * UNIT[name], op


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize("op", sorted(lc.dtypes.BINDING_OPS))
def test_every_op_computes_in_the_tables_dtype(rng, rel_err, name, op):
    dt = LOWP[name]
    takes = name in lc.op_dtypes(op)
    want = dt if takes else np.dtype(np.float32)
    assert (op in lc.float32_fallback_ops(name)) == (not takes)
    call, ref = _op_case(op, dt, rng)
    y = call()
    assert y.dtype == want, (op, y.dtype, want)
    assert y.shape == ref.shape
    _check_result(y, ref, name, op, rel_err)
    out = poison(ref.shape, want)
    assert call(out) is out
    _check_result(out, ref, name, op, rel_err)
    # out of any other dtype: TypeError naming the expected one, nothing written
    for other in {F16, BF16, np.dtype(np.float32), np.dtype(np.float64)} - {want}:
        bad = poison(ref.shape, other)
        with pytest.raises(TypeError, match=f"out: expected dtype {want.name}"):
            call(bad)
        assert np.all(np.isnan(f64(bad)))


def test_fallback_list_is_the_tables_and_the_docs():
    """The docs' list of ops computed in float32 until they have a low-precision kernel is the op table's."""
    text = DOCS.read_text()
    for name in ("float16", "bfloat16"):
        table = sorted(lc.float32_fallback_ops(name))
        print(f"{name} computed in float32 (no low-precision kernel yet): {', '.join(table) or 'none'}")
        m = re.search(rf"^- {name}: computed in float32 until the op has a low-precision kernel: (.*)$", text, re.M)
        assert m, f"docs/python_api.md: missing the line '- {name}: computed in float32 until the op has a ...'"
        listed = sorted(re.findall(r"`([a-z0-9_]+)`", m.group(1)))
        assert listed == table, (
            f"docs/python_api.md lists {listed} for {name}; the op table says {table}: update the docs line to "
            + ", ".join(f"`{op}`" for op in table)
        )
    assert "matmul" not in lc.float32_fallback_ops("float16")  # the table's matmul takes both (CPU and CUDA)
    assert lc.op_dtypes("matmul", "cpu") == ("float32", "float64", "float16", "bfloat16")


def test_op_dtypes_arguments():
    with pytest.raises(ValueError, match="op_dtypes: op: expected an op of the op table, got 'nope'"):
        lc.op_dtypes("nope")
    with pytest.raises(TypeError, match="op_dtypes: op"):
        lc.op_dtypes(3)
    with pytest.raises(TypeError, match="float32_fallback_ops: dtype: expected float16 or bfloat16"):
        lc.float32_fallback_ops("float32")
    assert lc.op_dtypes("matmul", "metal") == ()


# ---- mixes are refused ------------------------------------------------------------------------------------

MIXES = [(F16, np.float32), (BF16, np.float32), (F16, BF16), (BF16, np.float64), (np.float64, F16), (np.float32, BF16)]


@pytest.mark.parametrize("da,db", MIXES, ids=lambda d: np.dtype(d).name)
def test_lowp_mixed_with_another_dtype_is_refused(rng, da, db):
    da, db = np.dtype(da), np.dtype(db)
    msg = f"got a of dtype {da.name} and b of dtype {db.name}"
    a, b = rounded(rng, (5, 6), da), rounded(rng, (6, 5), db)
    for call in (lambda: lc.matmul2d(a, b), lambda: lc.matmul(a, b)):
        with pytest.raises(TypeError, match=f"a and b: expected one dtype .*{msg}"):
            call()
    for odt in (da, db, np.float32):
        out = poison((5, 5), odt)
        with pytest.raises(TypeError, match=msg):
            lc.matmul2d_into(a, b, out)
        assert np.all(np.isnan(f64(out)))
    x, y = rounded(rng, (4, 5), da), rounded(rng, (4, 5), db)
    with pytest.raises(TypeError, match=msg):
        lc.vector_add(x, y)
    with pytest.raises(TypeError, match=msg):
        lc.matrix_sub(x, y, 4, 5)
    x, w, bias = rounded(rng, (3, 4), da), rounded(rng, (4, 2), da), rounded(rng, 2, db)
    with pytest.raises(TypeError, match=f"x and bias: .*got x of dtype {da.name} and bias of dtype {db.name}"):
        lc.linear(x, w, bias)
    x, g = rounded(rng, (3, 4), da), rounded(rng, 4, db)
    with pytest.raises(TypeError, match=f"x and gamma: .*got x of dtype {da.name} and gamma of dtype {db.name}"):
        lc.layer_norm(x, g)
    q, k = rounded(rng, (3, 4), da), rounded(rng, (3, 4), db)
    with pytest.raises(TypeError, match=f"q and k: .*got q of dtype {da.name} and k of dtype {db.name}"):
        lc.attention2d(q, k, q)


def test_other_user_dtypes_are_refused_by_name(rng):
    f8 = np.dtype(ml_dtypes.float8_e4m3fn)
    a = rng.standard_normal((3, 3)).astype(f8)
    with pytest.raises(TypeError, match="matmul2d: a: expected a float32, float64, float16 or bfloat16 array, got dtype float8_e4m3fn"):
        lc.matmul2d(a, a)
    with pytest.raises(TypeError, match="out: expected dtype bfloat16, got float8_e4m3fn"):
        b = rounded(rng, (3, 3), BF16)
        lc.matmul2d_into(b, b, np.zeros((3, 3), f8))


def test_bfloat16_out_of_a_float32_call_is_refused(rng):
    a = rounded(rng, (3, 4), np.float32)
    out = poison((3, 3), BF16)
    with pytest.raises(TypeError, match="matmul2d_into: out: expected dtype float32, got bfloat16"):
        lc.matmul2d_into(a, a.T.copy(), out)
    assert np.all(np.isnan(f64(out)))


# ---- tensors of every dtype ---------------------------------------------------------------------------

NAMES = ["float32", "float64", "float16", "bfloat16"]


def np_dtype(name):
    return LOWP.get(name, np.dtype(name))


def special_values(rng, name):
    """Rounded random values plus NaN, ±Inf, ±0 and (for the 16-bit types) subnormals, in dtype `name`."""
    x = rng.standard_normal(40) * 3
    x[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0]
    if name == "float16":
        x[6:8] = [2.0**-20, -(2.0**-24)]
    if name == "bfloat16":
        x[6:8] = [2.0**-130, -(2.0**-133)]
    return x.astype(np_dtype(name)).reshape(5, 8)


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


@pytest.mark.parametrize("name", NAMES)
def test_tensor_dtype_round_trip_is_bit_exact(rng, device, name):
    a = special_values(rng, name)
    t = lc.Tensor(a, device=device, dtype=name)
    assert type(t) is (lc.Tensor64 if name == "float64" else lc.Tensor)
    assert t.dtype == name and t.shape == a.shape and t.nbytes == a.nbytes and t.device == device
    back = t.numpy()
    assert back.dtype == np_dtype(name) and np.array_equal(bits(back), bits(a))
    assert np.array_equal(bits(np.asarray(t)), bits(a)) and np.asarray(t).dtype == np_dtype(name)
    for dt in (np_dtype(name), np_dtype(name).type):  # NumPy dtype or scalar type as dtype=
        assert lc.Tensor(a, device=device, dtype=dt).dtype == name
    z = lc.Tensor((2, 3), device=device, dtype=name)
    assert z.dtype == name and np.array_equal(f64(z.numpy()), np.zeros((2, 3)))
    z.copy_from(a[:2, :3].astype(np.float32))  # converted to the tensor's dtype like lc.cast
    assert np.array_equal(bits(z.numpy()), bits(lc.cast(a[:2, :3].astype(np.float32), name)))


@pytest.mark.parametrize("src", NAMES)
def test_tensor_to_and_cast_match_lc_cast(rng, device, src):
    a = special_values(rng, src)
    t = lc.Tensor(a, device=device, dtype=src)
    for dst in NAMES:
        want = lc.cast(a, dst)
        for u in (t.to(dst), lc.cast(t, dst), t.to(np_dtype(dst))):
            assert u.dtype == dst and u.device == device and u.shape == a.shape
            assert np.array_equal(bits(u.numpy()), bits(want)), (src, dst)
        v = t.view((5, 3), (8, 2), 1)  # a strided view: gathered, then converted
        assert np.array_equal(bits(v.to(dst).numpy()), bits(lc.cast(a[:, 1:7:2], dst)))
    assert t.to(src).data_ptr != t.data_ptr  # always a new tensor


def test_tensor_dtype_arguments_are_checked():
    x = np.ones((2, 2), np.float32)
    for bad in ("int16", "float8", np.uint8, 3, object):
        with pytest.raises(TypeError, match="Tensor: dtype: expected float32, float64, float16 or bfloat16"):
            lc.Tensor(x, dtype=bad)
    with pytest.raises(TypeError, match="Tensor64: dtype: expected float64 .*got float16"):
        lc.Tensor64(x, dtype="float16")
    assert type(lc.Tensor64(x, dtype="float64")) is lc.Tensor64
    assert lc.Tensor(x).dtype == "float32" and lc.Tensor(x.astype(BF16)).dtype == "float32"  # default float32
    with pytest.raises(TypeError, match="Tensor.to: dtype: expected float32"):
        lc.Tensor(x).to("int64")


def test_index_tensors_int32_int64():
    """Tensors of int32/int64 (token ids, positions, lengths): kept as given, round-trip exactly, refused by
    arithmetic ops (TypeError naming the argument), accepted where an op takes indices (sdpa key_lengths)."""
    for dt in (np.int32, np.int64):
        a = np.array([[3, -1, 2**31 - 1 if dt is np.int32 else 2**40]], dt)
        t = lc.Tensor(a)
        assert t.dtype == np.dtype(dt).name and t.numpy().dtype == dt and np.array_equal(t.numpy(), a)
        assert lc.Tensor(a.astype(np.int64), dtype=dt).dtype == np.dtype(dt).name
    with pytest.raises(TypeError, match="data: expected an integer array"):
        lc.Tensor(np.ones(3, np.float32), dtype="int32")
    with pytest.raises(TypeError, match="x"):
        lc.relu(lc.Tensor(np.arange(4, dtype=np.int32)))
    q = np.random.default_rng(0).standard_normal((2, 2, 5, 8)).astype(np.float32)
    full = lc.scaled_dot_product_attention(q, q, q, key_lengths=[3, 5])
    via_t = lc.scaled_dot_product_attention(q, q, q, key_lengths=lc.Tensor(np.array([3, 5], np.int32)))
    assert np.array_equal(full, via_t)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_ops_on_lowp_tensors(rng, device, name):
    dt = LOWP[name]
    a, b = rounded(rng, (7, 20), dt), rounded(rng, (20, 5), dt)
    ta, tb = lc.Tensor(a, device=device, dtype=name), lc.Tensor(b, device=device, dtype=name)
    y = lc.matmul2d(ta, tb, device=device)
    assert isinstance(y, lc.Tensor) and y.dtype == name and y.device == device
    check_matmul_bound(y.numpy(), a, b, name)
    out = lc.Tensor(poison((7, 5), dt), device=device, dtype=name)
    assert lc.matmul2d_into(ta, tb, out, device=device) is out
    check_matmul_bound(out.numpy(), a, b, name)
    check_matmul_bound(lc.matmul2d(ta, b, device=device).numpy(), a, b, name)  # tensor and ndarray of one dtype
    with pytest.raises(TypeError, match=f"out: expected dtype {name}, got a float32 Tensor"):
        lc.matmul2d_into(ta, tb, lc.Tensor((7, 5), device=device), device=device)
    with pytest.raises(TypeError, match=f"a and b: .*got a of dtype {name} and b of dtype float32"):
        lc.matmul2d(ta, lc.Tensor(b.astype(np.float32), device=device), device=device)
    for op in lc.float32_fallback_ops(name):  # tensors are never converted: the op says how to proceed
        if op == "relu":
            with pytest.raises(TypeError, match=f"relu: x: expected a float32 tensor .*computes {name} in float32"):
                lc.relu(ta, device=device)


def test_buffer_protocol_and_dlpack_of_lowp_tensors(rng):
    a16 = rounded(rng, (3, 4), F16)
    t16 = lc.Tensor(a16, dtype="float16")
    m = memoryview(t16)
    assert m.format == "e" and m.itemsize == 2 and np.array_equal(np.asarray(m), a16)
    tb = lc.Tensor(rounded(rng, (3, 4), BF16), dtype="bfloat16")
    with pytest.raises(BufferError, match="bfloat16 has no buffer-protocol format"):
        memoryview(tb)
    vb = np.asarray(tb)  # through __array__: a zero-copy ml_dtypes.bfloat16 view
    assert vb.dtype == BF16 and vb.ctypes.data == tb.data_ptr
    # DLPack: NumPy float16 both ways, zero copy; lightning_core bfloat16 both ways, zero copy
    imp = lc.from_dlpack(a16)
    assert imp.dtype == "float16" and imp.data_ptr == a16.ctypes.data
    exp = np.from_dlpack(t16)
    assert exp.dtype == F16 and exp.ctypes.data == t16.data_ptr
    again = lc.from_dlpack(tb)
    assert again.dtype == "bfloat16" and again.data_ptr == tb.data_ptr
    assert np.array_equal(bits(again.numpy()), bits(tb.numpy()))


def test_dlpack_with_torch_lowp():
    torch = pytest.importorskip("torch")
    for tdt, name in ((torch.float16, "float16"), (torch.bfloat16, "bfloat16")):
        x = torch.randn(4, 6).to(tdt)
        t = lc.from_dlpack(x)
        assert t.dtype == name and t.data_ptr == x.data_ptr()
        assert np.array_equal(bits(t.numpy()), x.view(torch.int16).numpy().view(np.uint16))
        y = torch.from_dlpack(lc.Tensor(t.numpy(), dtype=name))
        assert y.dtype == tdt and torch.equal(y, x)


# ---- attention and conv2d in the 16-bit dtypes: awkward shapes, causal masking with a NaN ----------------


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize("seq,d", [(1, 8), (65, 64), (129, 100)])
def test_attention2d_lowp_against_float64(rng, name, device, seq, d):
    from lightning_core.testing import refs

    dt = LOWP[name]
    q, k, v = (rounded(rng, (seq, d), dt) for _ in range(3))
    for causal in (False, True):
        y = lc.attention2d(q, k, v, causal, device)
        assert y.dtype == dt and y.shape == (seq, d)
        ref = refs.ref_attention(f64(q), f64(k), f64(v), causal=causal)
        # one rounding (u) plus the float32 arithmetic (far below u at these sizes)
        assert np.all(np.abs(f64(y) - ref) <= 2 * UNIT[name] * np.abs(ref) + 1e-4 * np.max(np.abs(f64(v))))


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_attention2d_lowp_causal_nan_in_masked_row(rng, name, device):
    from lightning_core.testing import refs

    dt = LOWP[name]
    seq, d, j = 70, 16, 40
    q, k, v = (rounded(rng, (seq, d), dt) for _ in range(3))
    v[j, 3] = np.nan
    y = f64(lc.attention2d(q, k, v, True, device))
    assert np.all(np.isfinite(y[:j]))  # rows before j never read v row j
    assert np.all(np.isnan(y[j:, 3]))
    ref = refs.ref_attention(f64(q), f64(k), f64(v), causal=True)
    assert np.allclose(y[:j], ref[:j], rtol=2 * UNIT[name], atol=1e-4)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_nchw_lowp_bias_relu_stride_pad(rng, name, device, relu):
    from lightning_core.testing import refs

    dt = LOWP[name]
    x, w, b = rounded(rng, (2, 5, 13, 11), dt), rounded(rng, (7, 5, 3, 3), dt), rounded(rng, 7, dt)
    y = lc.conv2d_nchw(x, w, b, 2, 2, 1, 1, device, relu)
    ref = refs.ref_conv2d(f64(x), f64(w), f64(b), 2, 2, 1, 1, apply_relu=relu)
    assert y.dtype == dt and y.shape == ref.shape
    mag = refs.ref_conv2d(np.abs(f64(x)), np.abs(f64(w)), np.abs(f64(b)), 2, 2, 1, 1)
    # one rounding (u) plus float32 sums over K = 45 taps: (K + 2) 2^-24 sum|w x|
    assert np.all(np.abs(f64(y) - ref) <= UNIT[name] * np.abs(ref) + 47 * 2.0**-24 * mag)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_small_m_gemv_path(rng, dtype):
    """m <= 4 (decode) takes the in-place GEMV on AVX-512 CPUs: each of its plans (whole rows with k split into
    parts and summed in order; 2048-column chunks, with and without parts; the 4-row step for rows of 8192+
    columns and its k tail), column edges of the 16-wide vectors and chunks, k = 1, the float32-sum form linear
    uses, and NaN reaching exactly its row and column."""
    npdt = BF16 if dtype == "bfloat16" else np.float16
    feats = lc.cpu_features().split()
    gemv = "avx512f" in feats and "avx512bw" in feats and (dtype == "bfloat16" or "f16c" in feats)
    shapes = [(1, 1), (2, 15), (300, 16), (7, 17), (64, 63), (33, 65), (5, 255), (128, 256), (9, 257), (200, 1000),
              (70, 2049), (130, 8193), (127, 4100)]
    big = [(257, 40000), (1001, 17000)]  # m·n past the whole-row limit (chunks + parts) for m >= 2
    for m in (1, 2, 3, 4, 5):
        for k, n in shapes + (big if m in (1, 2, 4) else []):
            a, b = rounded(rng, (m, k), npdt), rounded(rng, (k, n), npdt)
            y = lc.matmul2d(a, b, "cpu")
            path = lc.last_dispatch()["path"]
            assert (path.endswith("gemv_avx512")) == (gemv and m <= 4), (m, path)
            check_matmul_bound(y, a, b, dtype)
            bias = rounded(rng, n, npdt)
            z = lc.linear(a, b, bias, "gelu_tanh", "cpu")
            assert z.dtype == npdt and np.all(np.isfinite(f64(z)))
    a, b = rounded(rng, (2, 70), npdt), rounded(rng, (70, 300), npdt)
    a[1, 5] = np.nan
    b[9, 280] = np.nan
    y = f64(lc.matmul2d(a, b, "cpu"))
    assert np.all(np.isnan(y[1])) and np.isnan(y[0, 280]) and np.sum(np.isnan(y[0])) == 1


# ---- CUDA small-m linear / matmul: the fused GEMV (gemv_cuda.cu) -------------------------------------------


def _linear_excess(z, x, w, bias, act, name, residual=None):
    """max |z - (act(x@w + bias) + residual)| / bound, bound = u|ref| + 1.2·2k·2^-24·(|x|@|w| + |bias| +
    |residual|) + 1e-6|ref| (float32 sums, the activation's Lipschitz constant <= 1.13 and its float32
    evaluation, the residual added in float32, one rounding); <= 1 passes."""
    x64, w64 = f64(x), f64(w)
    pre, mag = x64 @ w64, np.abs(x64) @ np.abs(w64)
    if bias is not None:
        pre, mag = pre + f64(bias), mag + np.abs(f64(bias))
    ref = ref_activation(pre, act)
    if residual is not None:
        ref, mag = ref + f64(residual), mag + np.abs(f64(residual))
    z64 = f64(z)
    if not np.all(np.isfinite(z64)):
        return float("inf")
    # the last term: half the spacing of the dtype's subnormals (an output below its smallest normal)
    half_sub = {"float16": 2.0**-25, "bfloat16": 2.0**-134, "float32": 2.0**-150}[name]
    bound = UNIT[name] * np.abs(ref) + 1.2 * 2 * x64.shape[1] * 2.0**-24 * mag + 1e-6 * np.abs(ref) + half_sub
    return float(np.max(np.abs(z64 - ref) / bound))


GEMV_ACTS = ["none", "relu", "gelu", "gelu_tanh"]


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_cuda_small_m_gemv(rng, name, monkeypatch):
    """lc.linear on CUDA with 16-bit operands, m <= 8 and an epilogue (bias or activation) takes the fused GEMV
    (path cuda_gemv_<dtype>); m = 9, n % 8 != 0, a bare product (lc.matmul2d, or linear with neither) and
    LC_GEMV=0 take the cuBLASLt path; every result within the
    float32-sum bound, outputs poisoned, every activation with and without bias, awkward k and n (split-k and
    unsplit plans, partial column tiles), NaN in x reaching exactly its row."""
    if not lc.cuda_available():
        pytest.skip("no CUDA GPU here")
    dt = LOWP[name]
    gemv_path = "cuda_gemv_bf16" if name == "bfloat16" else "cuda_gemv_f16"
    ks, ns = (1, 7, 63, 65, 1000, 4099), (8, 24, 264, 2056, 20, 50264)
    i = 0
    for m in range(1, 10):
        for k in ks:
            for n in ns:
                if n == 50264 and (k, m) not in ((1000, 1), (63, 8), (65, 9)):
                    continue  # the vocabulary-sized n: a few cases
                act, with_bias = GEMV_ACTS[i % 4], (i // 4) % 2 == 1
                i += 1
                x, w = rounded(rng, (m, k), dt), rounded(rng, (k, n), dt)
                bias = rounded(rng, n, dt) if with_bias else None
                out = poison((m, n), dt)
                assert lc.linear_into(x, w, out, bias, act, "cuda") is out
                path = lc.last_dispatch()["path"]
                epilogue = with_bias or act != "none"
                want_gemv = m <= 8 and n % 8 == 0 and epilogue
                assert (path == gemv_path) == want_gemv, (m, k, n, path)
                assert out.dtype == dt
                ex = _linear_excess(out, x, w, bias, act, name)
                assert ex <= 1.0, (m, k, n, act, with_bias, path, ex)
                if act == "none" and not with_bias:
                    y = lc.matmul2d(x, w, "cuda")
                    path = lc.last_dispatch()["path"]
                    assert path != gemv_path, (m, k, n, path)
                    assert np.all(np.isfinite(f64(y))) and lowp_matmul_excess(y, x, w, name) <= 1.0, (m, k, n, path)
    # NaN in x: exactly its row (the split-k and the unsplit plan)
    for m, k, n in ((3, 4099, 264), (2, 65, 50264)):
        x, w, bias = rounded(rng, (m, k), dt), rounded(rng, (k, n), dt), rounded(rng, n, dt)
        x[1, k // 2] = np.nan
        y = f64(lc.linear(x, w, bias, "gelu_tanh", "cuda"))
        assert lc.last_dispatch()["path"] == gemv_path
        assert np.all(np.isnan(y[1])) and np.all(np.isfinite(np.delete(y, 1, axis=0)))
    # LC_GEMV=0: the cuBLASLt path, the same bound
    monkeypatch.setenv("LC_GEMV", "0")
    x, w, bias = rounded(rng, (1, 768), dt), rounded(rng, (768, 2304), dt), rounded(rng, 2304, dt)
    z = lc.linear(x, w, bias, "gelu_tanh", "cuda")
    assert lc.last_dispatch()["path"] != gemv_path
    assert _linear_excess(z, x, w, bias, "gelu_tanh", name) <= 1.0
    monkeypatch.delenv("LC_GEMV")
    z2 = lc.linear(x, w, bias, "gelu_tanh", "cuda")
    assert lc.last_dispatch()["path"] == gemv_path
    assert _linear_excess(z2, x, w, bias, "gelu_tanh", name) <= 1.0


# ---- linear with a residual: out = act(x @ w + bias) + residual, out may be the residual ----------------------


@pytest.mark.parametrize("name", ["float32", "bfloat16", "float16"])
def test_linear_residual(rng, device, name):
    """lc.linear(..., residual=r) and lc.linear_into(..., out=r, residual=r) (the transformer block's x += f(x))
    against float64 act(x@w + b) + r on every device: m = 1..3 and 9 (CUDA: the GEMV and the cuBLASLt +
    epilogue paths), awkward k and n, every activation, bias or not; out poisoned; a NaN in the residual
    reaches exactly its element; a residual of another shape or dtype is refused naming it, nothing written."""
    dt = np.float32 if name == "float32" else LOWP[name]
    i = 0
    for m in (1, 2, 3, 9):
        for k, n in ((1, 8), (65, 24), (1000, 264), (300, 20)):
            act, with_bias = GEMV_ACTS[i % 4], i % 3 != 0
            i += 1
            x, w, r = rounded(rng, (m, k), dt), rounded(rng, (k, n), dt), rounded(rng, (m, n), dt, 4.0)
            bias = rounded(rng, n, dt) if with_bias else None
            out = poison((m, n), dt)
            assert lc.linear_into(x, w, out, bias, act, device, residual=r) is out
            assert _linear_excess(out, x, w, bias, act, name, r) <= 1.0, (m, k, n, act, lc.last_dispatch()["path"])
            y = lc.linear(x, w, bias, act, device, residual=r)
            assert _linear_excess(y, x, w, bias, act, name, r) <= 1.0
            inplace = r.copy()
            assert lc.linear_into(x, w, inplace, bias, act, device, residual=inplace) is inplace
            assert _linear_excess(inplace, x, w, bias, act, name, r) <= 1.0, (m, k, n, act, "in place")
    if device == "cuda":  # device tensors, in place (the model runner's use)
        x, w, r = rounded(rng, (1, 768), dt), rounded(rng, (768, 2304), dt), rounded(rng, (1, 2304), dt)
        tr = lc.Tensor(r, device="cuda", dtype=name)
        lc.linear_into(lc.Tensor(x, device="cuda", dtype=name), lc.Tensor(w, device="cuda", dtype=name), tr,
                       None, "none", "cuda", residual=tr)
        assert _linear_excess(tr.numpy(), x, w, None, "none", name, r) <= 1.0
    x, w, r = rounded(rng, (2, 65), dt), rounded(rng, (65, 24), dt), rounded(rng, (2, 24), dt)
    r[1, 3] = np.nan
    y = f64(lc.linear(x, w, None, "relu", device, residual=r))
    assert np.isnan(y[1, 3]) and np.sum(np.isnan(y)) == 1
    out = poison((2, 24), dt)
    for bad, exc in ((rounded(rng, (2, 23), dt), ValueError), (rounded(rng, (24,), dt), ValueError),
                     (np.ones((2, 24), np.float64 if name != "float32" else np.int32), TypeError)):
        with pytest.raises(exc, match="residual"):
            lc.linear_into(x, w, out, None, "none", device, residual=bad)
        assert np.all(np.isnan(f64(out)))


# ---- bias / residual cancelling the product: one rounding, not two ----------------------------------------


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
@pytest.mark.parametrize("lt", ["0", "default"])
def test_linear_epilogue_rounds_once(rng, device, name, lt, monkeypatch):
    """bias (or the residual) = -(x@w rounded to the dtype), so act(x@w + bias) is the product's rounding error,
    far below the product: an epilogue that rounded the product to the dtype first would give 0 or the wrong
    residue (cuBLASLt's own 16-bit bias epilogue does that: float16's failed here on the H100). m = 64 and 9
    (CUDA: past the GEMV; by default the residual alone as cuBLASLt's C, a bias through our epilogue kernel;
    LC_LINEAR_LT=0 both through our kernel), k = 1031 (split-K plans), bias, ReLU, residual in place; within the
    float32-sum bound."""
    if lt == "default":
        monkeypatch.delenv("LC_LINEAR_LT", raising=False)
    else:
        monkeypatch.setenv("LC_LINEAR_LT", lt)
    dt = LOWP[name]
    for m, k, n in ((64, 1031, 264), (9, 65, 40)):
        x, w = rounded(rng, (m, k), dt), rounded(rng, (k, n), dt)
        cancel = -(f64(x) @ f64(w)).astype(dt)  # the product rounded once to the dtype, negated
        bias = cancel[0].copy()
        for act in ("none", "relu"):
            out = poison((m, n), dt)
            lc.linear_into(x, w, out, bias, act, device)
            assert _linear_excess(out, x, w, bias, act, name) <= 1.0, (m, k, n, act, lc.last_dispatch()["path"])
            assert np.count_nonzero(f64(out)[0]) > n // 4, "row 0 should hold the product's rounding residues"
        r = cancel.copy()
        lc.linear_into(x, w, r, None, "none", device, residual=r)
        assert _linear_excess(r, x, w, None, "none", name, cancel) <= 1.0, (m, k, n, "residual", lc.last_dispatch()["path"])
        assert np.count_nonzero(f64(r)) > m * n // 4
