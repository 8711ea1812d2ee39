"""Dtype names and lc.cast: every float16 and bfloat16 bit pattern, and a million random float32 and
float64 bit patterns (NaN payloads, subnormals, midpoints among them), bit-exact against NumPy's
float16 and ml_dtypes' bfloat16, under each CPU path (LC_CPU_DISABLE masks, in subprocesses); bad
dtypes and arguments. The C-level tests of the same converters: tests/c/test_dtype.c."""

import os
import subprocess
import sys

import numpy as np
import pytest

import lightning_core as lc
from lightning_core import dtypes

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)


def _bits(a):
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _random_f32(n, seed):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    u[1::5] = (u[1::5] & 0xFFFF0000) | 0x8000          # bfloat16 midpoints
    u[2::5] = (u[2::5] & 0xFFFFE000) | 0x1000          # float16 midpoints
    u[3::7] &= 0x807FFFFF                              # float32 subnormals
    u[4::11] = (u[4::11] & 0x80FFFFFF) | 0x38000000    # float16 subnormal range
    u[5::13] |= 0x7F800000                             # NaN (signalling and quiet) and Inf
    return u.view(np.float32)


def _check_all(seed=0):
    all16 = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    h, b = all16.view(np.float16), all16.view(BF16)
    f = _random_f32(1_000_003, seed)
    with np.errstate(all="ignore"):
        d = np.concatenate([f.astype(np.float64), np.random.default_rng(seed).standard_normal(1001) * 1e-5])
    cases = [(h, "float32"), (b, "float32"), (h, "float64"), (f, "float16"), (f, "bfloat16"),
             (h.astype(np.float32), "float16"), (b.astype(np.float32), "bfloat16"), (d, "float16"), (d, "bfloat16"),
             (h, "bfloat16"), (b, "float16")]
    for x, name in cases:
        with np.errstate(all="ignore"):
            want = x.astype(dtypes.numpy_dtype(name))
        got = lc.cast(x, name)
        assert got.dtype == want.dtype and got.shape == x.shape
        bad = np.flatnonzero(_bits(got) != _bits(want))
        assert bad.size == 0, (f"{x.dtype}->{name}: {bad.size} differ, e.g. in {_bits(x)[bad[:4]]} "
                               f"got {_bits(got)[bad[:4]]} want {_bits(want)[bad[:4]]}")


def test_cast_bit_exact_all_patterns():
    _check_all()


@pytest.mark.parametrize("mask", ["avx512", "avx512,avx2", "f16c"])
def test_cast_bit_exact_under_cpu_masks(mask):
    code = "import sys; sys.path.insert(0, %r); import test_dtype as t; t._check_all(seed=3); print('ok')" % (
        os.path.dirname(__file__))
    r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, LC_CPU_DISABLE=mask),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_cast_shapes_views_and_copies():
    x = np.random.default_rng(1).standard_normal((6, 9)).astype(np.float32)
    v = x[::2, 1::3]                                   # strided view: cast reads it, returns a new array
    got = lc.cast(v, "bfloat16")
    assert got.shape == v.shape and got.flags.c_contiguous
    assert np.array_equal(_bits(got), _bits(v.astype(BF16)))
    same = lc.cast(x, np.float32)
    assert same is not x and np.array_equal(same, x)
    assert lc.cast(np.zeros((0, 3), np.float16), "float32").shape == (0, 3)
    assert lc.cast(np.full((), 2.5, np.float32), "float16").shape == ()
    assert lc.cast(x, ml_dtypes.bfloat16).dtype == BF16 and lc.cast(x, "half").dtype == np.float16


def test_cast_into_out():
    """cast(x, dtype, out=): written in place of a new array (poisoned first), exact in-place aliasing of equal
    element sizes allowed, every bad out refused before anything is written; a large cast (the streamed path of
    lc_convert) into a sliced out."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 33)).astype(np.float32)
    out = np.full((7, 33), np.nan, BF16)
    assert lc.cast(x, "bfloat16", out=out) is out
    assert np.array_equal(_bits(out), _bits(x.astype(BF16)))
    b = rng.standard_normal(65).astype(BF16)
    want = b.astype(np.float16)
    alias = b.view(np.float16)
    assert lc.cast(b, "float16", out=alias) is alias and np.array_equal(_bits(alias), _bits(want))
    big = rng.standard_normal(5_000_003).astype(np.float32)
    store = np.full(5_000_003 + 3, np.nan, BF16)
    assert lc.cast(big, "bfloat16", out=store[1:-2]) is not None
    assert np.array_equal(_bits(store[1:-2]), _bits(big.astype(BF16)))
    assert np.isnan(store[0].astype(np.float32)) and np.isnan(store[-2:].astype(np.float32)).all()
    with pytest.raises(TypeError, match="cast: out: expected dtype float16, got float32"):
        lc.cast(np.ones(4, np.float32), "float16", out=np.empty(4, np.float32))
    with pytest.raises(ValueError, match=r"cast: out: expected a writable C-contiguous array of shape \(4,\)"):
        lc.cast(np.ones(4, np.float32), "float16", out=np.empty(8, np.float16)[::2])
    with pytest.raises(ValueError, match="overlaps"):
        y = np.ones(8, np.float32)
        lc.cast(y[:4], "float16", out=y.view(np.float16)[:4])
    with pytest.raises(TypeError, match="cast: out: expected a NumPy array"):
        lc.cast(np.ones(4, np.float32), "float16", out=[0.0] * 4)


def test_cast_bad_arguments():
    x = np.ones(4, np.float32)
    with pytest.raises(TypeError, match="cast: x: expected a NumPy array"):
        lc.cast([1.0, 2.0], "float16")
    with pytest.raises(TypeError, match="cast: dtype: expected one of .*got 'float8'"):
        lc.cast(x, "float8")
    with pytest.raises(TypeError, match="cast: x: expected float32, float64, float16 or bfloat16, got dtype int32"):
        lc.cast(np.ones(3, np.int32), "float32")
    with pytest.raises(TypeError, match="cast: dtype"):
        lc.cast(x, 3.5)
    with pytest.raises(TypeError, match="src_dtype"):
        lc._C.convert_buffer(x, "int8", np.empty(4, np.float16), "float16")
    with pytest.raises(ValueError, match="dst: expected room for 4 float16"):
        lc._C.convert_buffer(x, "float32", np.empty(3, np.float16), "float16")
    with pytest.raises((TypeError, BufferError, ValueError)):
        lc._C.convert_buffer(x, "float32", np.empty(4, np.float16)[::-1], "float16")
    ro = np.empty(4, np.float16)
    ro.flags.writeable = False
    with pytest.raises((TypeError, BufferError, ValueError)):
        lc._C.convert_buffer(x, "float32", ro, "float16")
    assert lc.cast(x, "float16").tolist() == [1.0] * 4      # still usable
