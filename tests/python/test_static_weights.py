"""lc.static_weights / set_static_weights / get_static_weights: the thread-local promise that lets the CUDA
decode GEMV load w before the previous kernel ends (src/backend/cuda/gemv_cuda.cu, pdl.cuh). Here: the
setting's semantics (default, restore, nesting, exceptions, per thread, bad input) on any machine, and on a
GPU that results are bit-identical with and without it, eager and in a captured graph."""
import threading

import ml_dtypes
import numpy as np
import pytest

import lightning_core as lc

requires_cuda = pytest.mark.skipif(not lc.cuda_available(), reason="no CUDA device")


def test_default_off_and_restored():
    assert lc.get_static_weights() is False
    with lc.static_weights():
        assert lc.get_static_weights() is True
        with lc.static_weights(False):
            assert lc.get_static_weights() is False
        assert lc.get_static_weights() is True
    assert lc.get_static_weights() is False


def test_restored_after_an_exception():
    with pytest.raises(RuntimeError, match="inside"):
        with lc.static_weights():
            raise RuntimeError("inside")
    assert lc.get_static_weights() is False


def test_thread_local():
    seen = []
    with lc.static_weights():
        th = threading.Thread(target=lambda: seen.append(lc.get_static_weights()))
        th.start()
        th.join()
        assert lc.get_static_weights() is True
    assert seen == [False]


def test_bad_input():
    with pytest.raises(TypeError, match="static_weights: on: expected a bool, got int"):
        with lc.static_weights(1):
            pass
    with pytest.raises(TypeError, match="set_static_weights: on: expected a bool, got str"):
        lc.set_static_weights("yes")
    assert lc.get_static_weights() is False


@requires_cuda
@pytest.mark.parametrize("m", [1, 3, 8])
def test_cuda_gemv_identical_with_and_without(rng, m):
    k, n = 1000, 264
    x = lc.Tensor(rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16), device="cuda", dtype="bfloat16")
    w = lc.Tensor((rng.standard_normal((k, n)) / 30).astype(ml_dtypes.bfloat16), device="cuda", dtype="bfloat16")
    b = lc.Tensor(rng.standard_normal(n).astype(ml_dtypes.bfloat16), device="cuda", dtype="bfloat16")
    plain = lc.linear(x, w, b, "gelu_tanh", "cuda").numpy()
    assert "gemv" in lc.last_dispatch()["path"]
    with lc.static_weights():
        eager = lc.linear(x, w, b, "gelu_tanh", "cuda").numpy()
        out = lc.Tensor(np.zeros((m, n), ml_dtypes.bfloat16), device="cuda", dtype="bfloat16")
        g = lc.capture_graph(lambda: lc.linear_into(x, w, out, bias=b, activation="gelu_tanh", device="cuda"))
    out.copy_from(np.full((m, n), np.nan, ml_dtypes.bfloat16))
    g.replay()
    assert np.array_equal(plain.view(np.uint16), eager.view(np.uint16))
    assert np.array_equal(plain.view(np.uint16), out.numpy().view(np.uint16))
