"""Regression tests of defects the fuzzer (tests/python/fuzz/) found outside issue 12's list.

- layer_norm: an eps that float32 cannot hold (1e-300 rounds to 0: a constant row gave 0/0 = NaN) is a
  ValueError naming eps; the smallest float32 subnormal still works (src/ops/layer_norm.c).
- qkv_pack_repeat(_into): a 0-d src is its one element (was "shape: expected 1..8 dimensions, got 0",
  naming neither the op nor the argument) (python/lightning_core/_C/ops_py.c).
- Tensor.__dlpack__: stream / max_version / dl_device ints beyond 64 bits are ValueError, not
  OverflowError (python/lightning_core/_C/dlpack_py.c).
- lc.reshape: a float size (-inf gave OverflowError from int(); 2.0 and 2.7 were truncated to 2) or a bool is
  a TypeError naming shape; NumPy integers stay accepted (python/lightning_core/layout.py; fuzz seed
  152891134, case 31109).
"""
import numpy as np
import pytest

import lightning_core as lc


@pytest.mark.parametrize("eps", [1e-300, 1e-46, 1e39])
def test_layer_norm_eps_float32_cannot_hold(eps):
    x = np.ones((2, 3), np.float32)
    out = np.full((2, 3), np.nan, np.float32)
    with pytest.raises(ValueError, match="layer_norm: eps"):
        lc.layer_norm(x, eps=eps)
    with pytest.raises(ValueError, match="layer_norm_into: eps|layer_norm: eps"):
        lc.layer_norm_into(x, out, eps=eps)
    assert np.isnan(out).all()  # nothing written


def test_layer_norm_tiny_eps_constant_row_is_finite():
    x = np.full((3, 4), 2.5, np.float32)
    for eps in (1e-45, 1e-40, 1e-5):
        y = lc.layer_norm(x, eps=eps)
        assert np.isfinite(y).all() and np.array_equal(y, np.zeros_like(y))


def test_qkv_pack_repeat_0d_src():
    src = np.array(5.0, np.float32)
    assert np.array_equal(lc.qkv_pack_repeat(src, 2, 3), np.full((3, 2, 3), 5.0, np.float32))
    out = np.full((3, 2, 2), np.nan, np.float32)
    assert lc.qkv_pack_repeat_into(np.array(-1.5), out) is out
    assert np.array_equal(out, np.full((3, 2, 2), -1.5, np.float32))


@pytest.mark.parametrize("kw", [{"stream": 2**70}, {"stream": -(2**70)}, {"max_version": (2**64, 0)},
                                {"dl_device": (1, 2**80)}])
def test_dlpack_huge_ints_are_value_errors(kw):
    t = lc.Tensor(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="__dlpack__"):
        t.__dlpack__(**kw)


@pytest.mark.parametrize("shape", [float("-inf"), float("nan"), 2.7, (2.0, 2), (True, 4), "4"])
def test_reshape_non_integer_shape_is_type_error(shape):
    t = lc.Tensor(np.arange(4, dtype=np.float32).reshape(2, 2))
    with pytest.raises(TypeError, match="reshape: shape"):
        lc.reshape(t, shape)
    assert np.array_equal(lc.reshape(t, (np.int64(4),)).numpy(), np.arange(4, dtype=np.float32))
    assert lc.reshape(t, [1, -1]).shape == (1, 4)
