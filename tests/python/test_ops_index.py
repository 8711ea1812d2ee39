"""The index ops: embedding (rows of a float table gathered by int32/int64 ids) and argmax (int64 index of
the largest element over the last axis), every float dtype x device, against NumPy (both are exact: a copy
and a comparison, so equality is the check). Outputs are poisoned first; bad inputs raise errors naming
the argument and write nothing."""
import numpy as np
import pytest

import lightning_core as lc
from lightning_core.dtypes import numpy_dtype

FLOATS = ("float32", "float64", "float16", "bfloat16")


def _table(rng, v, d, dtype):
    return lc.cast(rng.standard_normal((v, d)).astype(np.float32), dtype) if dtype != "float64" else \
        rng.standard_normal((v, d))


def _on(x, device):
    return lc.Tensor(x, device=device, dtype=None if x.dtype.kind in "iu" else x.dtype.name) if device == "cuda" else x


def _host(x):
    return x.numpy() if hasattr(x, "numpy") else x


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 65), (2, 3, 5)])
def test_embedding_matches_numpy(rng, device, dtype, shape):
    if dtype == "float64" and device == "cuda":
        pytest.skip("float64 device tensors are Tensor64; covered on the CPU")
    for v, d in ((1, 1), (50, 63), (1000, 128)):
        w = _table(rng, v, d, dtype)
        for idt in (np.int32, np.int64):
            ids = rng.integers(0, v, shape).astype(idt)
            got = _host(lc.embedding(_on(w, device), _on(ids, device), device=device))
            assert got.dtype == w.dtype and got.shape == shape + (d,)
            assert got.view(np.uint8).tobytes() == w[ids].view(np.uint8).tobytes()
    w = _table(rng, 9, 4, dtype)
    out = np.full((2, 4), np.nan, w.dtype)
    assert lc.embedding_into(w, [8, 0], out) is out and np.array_equal(out.view(np.uint8), w[[8, 0]].view(np.uint8))


def test_embedding_bad_inputs(rng):
    w = rng.standard_normal((10, 4)).astype(np.float32)
    for ids, exc, what in (([10], ValueError, "ids"), ([-1], ValueError, "ids"), (np.ones(2, np.float32), TypeError, "ids"),
                           (np.ones(2, bool), TypeError, "ids"), ("3", TypeError, "ids")):
        with pytest.raises(exc, match=what):
            lc.embedding(w, ids)
    out = np.full((3, 4), np.nan, np.float32)
    with pytest.raises(ValueError, match="ids"):
        lc.embedding_into(w, [1, 2, 99], out)  # refused before any row is written
    assert np.all(np.isnan(out))
    with pytest.raises(ValueError, match="out"):
        lc.embedding_into(w, [1, 2], np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="weight"):
        lc.embedding(np.arange(6).reshape(3, 2), [1])
    with pytest.raises((TypeError, ValueError), match="weight"):
        lc.embedding(rng.standard_normal(5).astype(np.float32), [1])
    np.testing.assert_array_equal(lc.embedding(w, [3]), w[[3]])  # still usable


@pytest.mark.parametrize("dtype", FLOATS)
def test_argmax_matches_numpy(rng, device, dtype):
    if dtype == "float64" and device == "cuda":
        pytest.skip("float64 device tensors are Tensor64; covered on the CPU")
    for shape in ((1,), (5,), (1, 1), (7, 63), (3, 4097), (2, 3, 1000)):
        x = rng.standard_normal(shape).astype(np.float32)
        x = lc.cast(x, dtype) if dtype != "float64" else x.astype(np.float64)
        if x.size > 4:
            x.flat[3] = x.flat[1]  # ties: the first index wins
        got = _host(lc.argmax(_on(x, device), device=device))
        want = np.argmax(x.astype(np.float64), axis=-1).reshape(shape[:-1] if len(shape) > 1 else (1,))
        assert got.dtype == np.int64 and np.array_equal(got, want)
    x = np.array([[1.0, np.nan, 5.0, np.nan], [-np.inf, -np.inf, -1.0, 2.0], [3.0, 3.0, 3.0, 3.0]], np.float32)
    x = lc.cast(x, dtype) if dtype != "float64" else x.astype(np.float64)
    assert list(_host(lc.argmax(_on(x, device), device=device))) == [1, 3, 0]  # the first NaN, as NumPy
    out = np.full(3, -7, np.int64)
    if device == "cpu":
        assert lc.argmax_into(x, out) is out and list(out) == [1, 3, 0]


def test_argmax_bad_inputs():
    with pytest.raises(TypeError, match="x"):
        lc.argmax(np.arange(6))
    with pytest.raises(TypeError, match="out"):
        lc.argmax_into(np.ones((2, 3), np.float32), np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="out"):
        lc.argmax_into(np.ones((2, 3), np.float32), np.zeros(3, np.int64))


def test_embedding_out_of_range_on_cuda_is_a_zero_row(rng):
    if not lc.cuda_available():
        pytest.skip("CUDA")
    w = rng.standard_normal((5, 8)).astype(np.float32)
    got = lc.embedding(lc.Tensor(w, device="cuda"), lc.Tensor(np.array([2, 7, -1], np.int64), device="cuda"),
                       device="cuda").numpy()
    np.testing.assert_array_equal(got[0], w[2])
    assert not np.any(got[1:])
