"""linear / linear_into: act(x @ w + bias) fused, against a float64 NumPy reference on random inputs with
awkward sizes, every activation, with and without bias, NaN-poisoned outputs, on every device present;
plus the bad inputs (wrong rank/shape/dtype, unknown activation, out of the wrong shape) leaving out
untouched."""
from math import erf

import numpy as np
import pytest

import lightning_core as lc

SHAPES = [(1, 1, 1), (7, 33, 5), (33, 255, 17), (128, 256, 300), (1, 1023, 7)]
ACTS = ["none", "relu", "gelu", "gelu_tanh"]


def ref_linear(x, w, b, act):
    y = x.astype(np.float64) @ w.astype(np.float64)
    if b is not None:
        y = y + b
    if act == "relu":
        y = np.maximum(y, 0)
    elif act == "gelu":
        y = 0.5 * y * (1 + np.vectorize(erf)(y / np.sqrt(2.0)))
    elif act == "gelu_tanh":
        y = 0.5 * y * (1 + np.tanh(np.sqrt(2 / np.pi) * (y + 0.044715 * y ** 3)))
    return y


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("with_bias", [False, True])
def test_linear_matches_reference(rng, rel_err, poison, device, m, k, n, act, with_bias):
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32) if with_bias else None
    want = ref_linear(x, w, b, act)
    # cuBLASLt's GELU epilogue evaluates tanh in a fast form.
    tol = (1e-4 if (act == "gelu_tanh" and device == "cuda") else 1e-5) * max(1.0, np.sqrt(k / 256))
    y = lc.linear(x, w, b, act, device)
    assert y.shape == (m, n) and y.dtype == np.float32
    assert rel_err(y, want) < tol
    out = poison((m, n))
    assert lc.linear_into(x, w, out, bias=b, activation=act, device=device) is out
    assert rel_err(out, want) < tol


def test_linear_bad_inputs(rng, poison):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    w = rng.standard_normal((6, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    out = poison((4, 3))
    cases = [
        (lambda: lc.linear_into(x, w.T.copy(), out), ValueError, "w"),
        (lambda: lc.linear_into(x[None], w, out), ValueError, "x"),
        (lambda: lc.linear_into(x, w, out, np.ones(4, np.float32)), ValueError, "bias"),
        (lambda: lc.linear_into(x, w, out, b, "swish"), ValueError, "activation"),
        (lambda: lc.linear_into(x, w, out, b, 3), TypeError, "activation"),
        (lambda: lc.linear_into(x.astype(np.int32), w, out), TypeError, "x"),
        (lambda: lc.linear_into(x, w, poison((3, 4))), ValueError, "out"),
        (lambda: lc.linear_into(x, w, out, device="gpu"), ValueError, "device"),
    ]
    for call, exc, word in cases:
        with pytest.raises(exc, match=word):
            call()
        assert np.isnan(out).all()
    assert lc.linear(x, w, b, "relu").shape == (4, 3)
