"""matmul2d / matmul2d_into / matmul / matmul_np_into (docs/python_api.md, "Ops").

Checks every API against a float64 NumPy reference on random inputs with awkward sizes, float32 and
float64 (and mixed) inputs with the output dtype, NaN-poisoned `out` buffers (every element written),
the flat API with flat and 2-D arrays, converted inputs (float16, float64, Fortran order, transposed,
sliced, byte-swapped), inputs left unmodified, and the device policy (metal / cuda without a GPU / auto
fall back to a correct CPU result and say so in last_dispatch(); strict mode raises and writes nothing).
"""
import numpy as np
import pytest

import lightning_core as lc
from conftest import FALLBACK, FALLBACK_DEVICE, check_dispatch, unavailable_devices


# (m, k, n): awkward sizes; 4096 appears in one dimension of a case only, to keep the run short.
SHAPES = [
    (1, 1, 1),
    (1, 7, 33),
    (7, 1, 255),
    (33, 255, 7),
    (255, 33, 1),
    (17, 1023, 9),
    (3, 4096, 5),
    (4096, 7, 3),
    (2, 33, 4096),
    (129, 130, 131),
]



def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul2d_matches_reference(rng, rel_err, tol, ref, device, m, k, n, dtype):
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    a0, b0 = a.copy(), b.copy()
    y = lc.matmul2d(a, b, device)
    assert isinstance(y, np.ndarray)
    assert y.shape == (m, n)
    assert y.dtype == dtype
    assert y.flags.c_contiguous
    assert rel_err(y, ref.matmul(a, b)) < tol(dtype, k)
    assert np.array_equal(a, a0) and np.array_equal(b, b0), "inputs were modified"


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul2d_into_writes_every_element(rng, rel_err, tol, ref, poison, device, m, k, n, dtype):
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    a0, b0 = a.copy(), b.copy()
    out = poison((m, n), dtype)
    ret = lc.matmul2d_into(a, b, out, device)
    assert ret is out
    assert not np.isnan(out).any(), "matmul2d_into left unwritten (NaN) elements in out"
    assert rel_err(out, ref.matmul(a, b)) < tol(dtype, k)
    assert np.array_equal(a, a0) and np.array_equal(b, b0), "inputs were modified"


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 33, 255), (33, 1023, 7), (5, 4096, 3)])
def test_matmul_alias_matches_matmul2d(rng, rel_err, tol, ref, m, k, n):
    a, b = rand(rng, (m, k)), rand(rng, (k, n))
    y = lc.matmul(a, b)
    assert y.shape == (m, n) and y.dtype == np.float32
    assert rel_err(y, ref.matmul(a, b)) < tol(np.float32, k)
    y64 = lc.matmul(a.astype(np.float64), b.astype(np.float64), device="cpu")
    assert y64.dtype == np.float64
    assert rel_err(y64, ref.matmul(a, b)) < 1e-12


def test_matmul_keyword_arguments(rng, rel_err, ref, poison):
    a, b = rand(rng, (7, 9)), rand(rng, (9, 5))
    assert rel_err(lc.matmul2d(a=a, b=b, device="cpu"), ref.matmul(a, b)) < 1e-5
    out = poison((7, 5))
    assert lc.matmul2d_into(a, b, out=out, device="cpu") is out
    assert rel_err(out, ref.matmul(a, b)) < 1e-5
    out = poison((7 * 5,))
    assert lc.matmul_np_into(a, b, out, m=7, k=9, n=5, device="cpu") is out
    assert rel_err(out.reshape(7, 5), ref.matmul(a, b)) < 1e-5


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 33, 1), (33, 7, 255), (9, 4096, 2), (255, 17, 33)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_np_into_flat_arrays(rng, rel_err, tol, ref, poison, device, m, k, n, dtype):
    a, b = rand(rng, m * k, dtype), rand(rng, k * n, dtype)
    a0, b0 = a.copy(), b.copy()
    out = poison(m * n, dtype)
    ret = lc.matmul_np_into(a, b, out, m, k, n, device)
    assert ret is out
    assert out.shape == (m * n,) and out.dtype == dtype
    assert not np.isnan(out).any()
    assert rel_err(out.reshape(m, n), ref.matmul(a.reshape(m, k), b.reshape(k, n))) < tol(dtype, k)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_np_into_2d_and_other_shapes(rng, rel_err, tol, ref, poison, dtype):
    m, k, n = 6, 35, 10
    a2, b2 = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    want = ref.matmul(a2, b2)
    # 2-D arrays of the natural shapes.
    out = poison((m, n), dtype)
    lc.matmul_np_into(a2, b2, out, m, k, n)
    assert rel_err(out, want) < tol(dtype)
    # Any shape with the right element count is read row-major.
    out = poison((n, m), dtype)
    lc.matmul_np_into(a2.reshape(k, m), b2.reshape(5, 2, 35), out, m, k, n)
    assert rel_err(out.reshape(m, n), want) < tol(dtype)
    out = poison((1, m * n), dtype)
    lc.matmul_np_into(a2.reshape(1, -1), b2.reshape(-1), out, m, k, n, "cpu")
    assert rel_err(out.reshape(m, n), want) < tol(dtype)


def test_matmul_np_into_same_arrays_other_factorisation(rng, rel_err, ref, poison):
    # The same 24-element buffers read as different (m, k, n): the sizes, not the array shapes, decide.
    a, b = rand(rng, 24), rand(rng, 24)
    for m, k, n in [(4, 6, 4), (2, 12, 2), (24, 1, 24), (1, 24, 1)]:
        out = poison(m * n)
        lc.matmul_np_into(a, b, out, m, k, n)
        assert rel_err(out.reshape(m, n), ref.matmul(a.reshape(m, k), b.reshape(k, n))) < 1e-5


@pytest.mark.parametrize(
    "da,db,want",
    [
        (np.float32, np.float64, np.float64),
        (np.float64, np.float32, np.float64),
    ],
)  # float16/bfloat16 (alone: computed in that dtype; mixed: TypeError): tests/python/test_dtype_ops.py
def test_matmul_mixed_dtypes(rng, rel_err, tol, ref, poison, da, db, want):
    m, k, n = 13, 31, 11
    a = rand(rng, (m, k), da)
    b = rand(rng, (k, n), db)
    y = lc.matmul2d(a, b)
    assert y.dtype == want
    assert rel_err(y, ref.matmul(a, b)) < tol(want)
    out = poison((m, n), want)
    assert lc.matmul2d_into(a, b, out) is out
    assert rel_err(out, ref.matmul(a, b)) < tol(want)
    flat = poison(m * n, want)
    lc.matmul_np_into(a.ravel(), b.ravel(), flat, m, k, n)
    assert rel_err(flat.reshape(m, n), ref.matmul(a, b)) < tol(want)


def _layouts(rng, m, k, n, dtype):
    """(name, a, b) pairs whose a is [m, k] and b is [k, n] in non-trivial layouts."""
    a = rand(rng, (m, k), dtype)
    b = rand(rng, (k, n), dtype)
    big_a = rand(rng, (2 * m, k + 3), dtype)
    big_b = rand(rng, (k, 3 * n), dtype)
    return [
        ("fortran", np.asfortranarray(a), np.asfortranarray(b)),
        ("transposed", rand(rng, (k, m), dtype).T, rand(rng, (n, k), dtype).T),
        ("sliced", big_a[::2, 1 : k + 1], big_b[:, ::3]),
        ("byteswapped", a.astype(a.dtype.newbyteorder()), b.astype(b.dtype.newbyteorder())),
        ("reversed", a[::-1, ::-1], b[::-1]),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["fortran", "transposed", "sliced", "byteswapped", "reversed"])
def test_matmul_converted_layouts(rng, rel_err, tol, ref, poison, dtype, layout):
    m, k, n = 17, 33, 7
    cases = {name: (a, b) for name, a, b in _layouts(rng, m, k, n, dtype)}
    a, b = cases[layout]
    assert not (a.flags.c_contiguous and a.dtype.isnative and b.flags.c_contiguous and b.dtype.isnative)
    a0, b0 = a.copy(), b.copy()
    want = ref.matmul(a, b)
    y = lc.matmul2d(a, b)
    assert y.dtype == dtype and y.shape == (m, n)
    assert rel_err(y, want) < tol(dtype)
    out = poison((m, n), dtype)
    lc.matmul2d_into(a, b, out)
    assert rel_err(out, want) < tol(dtype)
    flat = poison(m * n, dtype)
    lc.matmul_np_into(a, b, flat, m, k, n)
    assert rel_err(flat.reshape(m, n), want) < tol(dtype)
    for x, x0 in ((a, a0), (b, b0)):
        assert np.array_equal(x, x0) and x.dtype == x0.dtype, "input modified"


def test_matmul_float64_into_float32_out_is_not_converted(rng, poison):
    # float64 inputs compute in float64: a float32 out is the wrong dtype (outs are never converted).
    a, b = rand(rng, (4, 5), np.float64), rand(rng, (5, 3), np.float64)
    out = poison((4, 3), np.float32)
    with pytest.raises(TypeError, match="out"):
        lc.matmul2d_into(a, b, out)
    assert np.isnan(out).all()


def test_matmul_large_values_do_not_turn_into_nan(rng, rel_err, ref):
    # Large but finite float32 values (sums stay below float32 max): no spurious inf/NaN.
    a = rand(rng, (9, 70)) * 1e17
    b = rand(rng, (70, 5)) * 1e17
    assert rel_err(lc.matmul2d(a, b), ref.matmul(a, b)) < 1e-5


def test_matmul_propagates_nan_and_inf_from_inputs(rng):
    a, b = rand(rng, (5, 6)), rand(rng, (6, 4))
    a[2, 3] = np.nan
    b[1, 0] = np.inf
    y = lc.matmul2d(a, b)
    want = a.astype(np.float64) @ b.astype(np.float64)
    assert np.isnan(y[2]).all()
    assert np.array_equal(np.isfinite(y), np.isfinite(want))


# ---- device policy ---------------------------------------------------------------------------------



@pytest.mark.parametrize("dev", unavailable_devices())
def test_matmul_unavailable_device_falls_back_to_cpu(rng, rel_err, ref, poison, strict_off, dev):
    m, k, n = 33, 17, 9
    a, b = rand(rng, (m, k)), rand(rng, (k, n))
    want = ref.matmul(a, b)
    assert rel_err(lc.matmul2d(a, b, dev), want) < 1e-5
    check_dispatch("matmul", dev, FALLBACK_DEVICE, FALLBACK)
    out = poison((m, n))
    lc.matmul2d_into(a, b, out, dev)
    assert rel_err(out, want) < 1e-5
    check_dispatch("matmul", dev, FALLBACK_DEVICE, FALLBACK)
    flat = poison(m * n)
    lc.matmul_np_into(a, b, flat, m, k, n, dev)
    assert rel_err(flat.reshape(m, n), want) < 1e-5
    check_dispatch("matmul", dev, FALLBACK_DEVICE, FALLBACK)
    y = lc.matmul(a.astype(np.float64), b, device=dev)
    assert rel_err(y, want) < 1e-12
    check_dispatch("matmul", dev, FALLBACK_DEVICE, FALLBACK)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (64, 64, 64), (3, 4096, 5)])
def test_matmul_auto_device(rng, rel_err, tol, ref, poison, m, k, n):
    a, b = rand(rng, (m, k)), rand(rng, (k, n))
    out = poison((m, n))
    lc.matmul2d_into(a, b, out, "auto")
    assert rel_err(out, ref.matmul(a, b)) < tol(np.float32, k)
    d = check_dispatch("matmul", "auto", reason="auto_selected")
    assert d["selected"] in (["cpu", "cuda"] if lc.cuda_available() else ["cpu"])


def test_matmul_cpu_dispatch_is_direct(rng):
    a, b = rand(rng, (8, 8)), rand(rng, (8, 8))
    lc.matmul2d(a, b, "cpu")
    d = check_dispatch("matmul", "cpu", "cpu")
    assert d["reason"] not in (FALLBACK, "auto_selected")
    assert isinstance(d["path"], str) and d["path"]


@pytest.mark.parametrize("dev", unavailable_devices())
def test_matmul_strict_mode_raises_and_leaves_out_untouched(rng, poison, strict_off, dev):
    assert issubclass(lc.DeviceUnavailableError, RuntimeError)
    a, b = rand(rng, (6, 5)), rand(rng, (5, 4))
    lc.set_strict_device(True)
    try:
        assert lc.strict_device() is True
        out = poison((6, 4))
        with pytest.raises(lc.DeviceUnavailableError, match=dev):
            lc.matmul2d_into(a, b, out, dev)
        assert np.isnan(out).all(), "strict-mode refusal wrote into out"
        flat = poison(24)
        with pytest.raises(lc.DeviceUnavailableError):
            lc.matmul_np_into(a, b, flat, 6, 5, 4, dev)
        assert np.isnan(flat).all()
        with pytest.raises(lc.DeviceUnavailableError):
            lc.matmul2d(a, b, dev)
        with pytest.raises(RuntimeError):
            lc.matmul(a, b, dev)
        # cpu and auto still run in strict mode.
        y = lc.matmul2d(a, b, "cpu")
        assert np.allclose(y, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
        lc.matmul2d_into(a, b, out, "auto")
        assert np.allclose(out, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    finally:
        lc.set_strict_device(False)
    assert lc.strict_device() is False
    assert lc.matmul2d(a, b, dev).shape == (6, 4)


def test_cpu_small_m_float32_gemv(rng, rel_err, poison):
    """float32 with m <= 4 and k·n >= 65536 on an AVX-512 CPU streams b once through the in-place GEMV (path
    f32_gemv_avx512; each of its plans: whole rows with k parts, 2048-column chunks, the 4-row step for rows of
    8192+ columns); m = 5 and smaller products take the other kernels (test_cpu_medium_m_float32). Against float64,
    out poisoned, NaN reaching exactly its row and column."""
    feats = lc.cpu_features().split()
    gemv = "avx512f" in feats and "avx512bw" in feats
    for m in (1, 2, 3, 4, 5):
        for k, n in ((256, 256), (1000, 257), (130, 8193), (65, 20000), (3, 40000), (600, 2049)):
            a = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            out = poison((m, n))
            lc.matmul2d_into(a, b, out, "cpu")
            path = lc.last_dispatch()["path"]
            assert (path == "f32_gemv_avx512") == (gemv and m <= 4 and k * n >= 65536), (m, k, n, path)
            assert rel_err(out, a.astype(np.float64) @ b.astype(np.float64)) < 1e-5 * max(1.0, np.sqrt(k / 256))
    a = rng.standard_normal((2, 300)).astype(np.float32)
    b = rng.standard_normal((300, 1000)).astype(np.float32)
    a[1, 7] = np.nan
    b[20, 900] = np.nan
    y = lc.matmul2d(a, b, "cpu")
    assert np.all(np.isnan(y[1])) and np.isnan(y[0, 900]) and np.sum(np.isnan(y[0])) == 1


def test_cpu_medium_m_float32(rng, poison):
    """float32 at 4 < m <= 32 with k·n >= 2^18 on an AVX-512 CPU takes the medium-m kernel by default (path
    f32_mid_avx512: b copied slice by slice into panels, FMA micro-kernels; autotune off so the static rule
    decides); 33..64 rows and smaller products keep BLAS / the own kernels. Every element within k·2^-23·(|a|@|b|)
    of float64 (the accumulation's bound), out poisoned; a NaN reaches exactly its row and its column."""
    feats = lc.cpu_features().split()
    mid = "avx512f" in feats and "avx512bw" in feats
    was = lc.get_autotune()
    lc.set_autotune(False)
    try:
        for m in (5, 8, 17, 32, 33, 64):
            for k, n in ((512, 512), (1000, 300), (130, 8193), (65, 5000), (3, 100003), (700, 33)):
                a = rng.standard_normal((m, k)).astype(np.float32)
                b = rng.standard_normal((k, n)).astype(np.float32)
                out = poison((m, n))
                lc.matmul2d_into(a, b, out, "cpu")
                path = lc.last_dispatch()["path"]
                assert (path == "f32_mid_avx512") == (mid and m <= 32 and k * n >= 262144), (m, k, n, path)
                a64, b64 = a.astype(np.float64), b.astype(np.float64)
                bound = k * 2.0 ** -23 * (np.abs(a64) @ np.abs(b64))
                assert np.all(np.abs(out - a64 @ b64) <= bound), (m, k, n, path)
        a = rng.standard_normal((8, 300)).astype(np.float32)
        b = rng.standard_normal((300, 1000)).astype(np.float32)
        a[3, 7] = np.nan
        b[20, 900] = np.nan
        y = lc.matmul2d(a, b, "cpu")
        assert (lc.last_dispatch()["path"] == "f32_mid_avx512") == mid
        nan = np.isnan(y)
        assert np.all(nan[3]) and np.all(nan[:, 900]) and nan.sum() == 1000 + 8 - 1
    finally:
        lc.set_autotune(was)
