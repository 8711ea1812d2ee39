"""lightning_core.testing: the float64 references shared by the tests and the benchmarks, and the one
relative-error / validator function."""
import math

import numpy as np
import pytest

from lightning_core.testing import refs as R


def test_rel_err_values_and_nonfinite_handling():
    ref = np.array([3.0, 4.0])
    assert R.rel_err(ref, ref) == 0.0
    assert R.rel_err(np.array([3.0, 4.5]), ref) == pytest.approx(0.1)
    assert R.rel_err(np.array([np.nan, 4.0]), ref) == math.inf  # NaN never passes
    assert R.rel_err(np.array([1e-9, 0.0]), np.zeros(2)) == pytest.approx(1e-9)  # all-zero reference: ||out||
    assert R.rel_err(np.array([np.inf, 1.0]), np.array([np.inf, 1.0])) == 0.0  # non-finite ref matched exactly
    assert R.rel_err(np.array([1.0, 1.0]), np.array([np.inf, 1.0])) == math.inf
    with pytest.raises(ValueError, match="shape"):
        R.rel_err(np.zeros(3), np.zeros(2))
    assert "non-finite" in R.mismatch(np.array([np.nan, 1.0]), np.ones(2)) and R.mismatch(ref, ref) is None


def test_validate_reshapes_flat_outputs_and_applies_the_tolerance():
    ref = np.arange(6.0).reshape(2, 3) + 1
    assert R.validate(ref.ravel().astype(np.float32), ref, 1e-6) == (0.0, True)
    err, ok = R.validate(ref.ravel() * 1.01, ref, 1e-3)
    assert err == pytest.approx(0.01) and not ok
    assert R.validate(np.zeros(5), ref, 1.0) == (math.inf, False)
    assert R.max_abs_diff([1.0, 2.0], [1.5, 2.0]) == 0.5 and R.max_abs_diff([np.nan], [0.0]) == math.inf


def test_causal_attention_never_reads_masked_positions():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((5, 4)) for _ in range(3))
    full = R.ref_attention(q, k, v, causal=True)
    for i in range(5):  # row i is plain attention over the first i+1 keys
        np.testing.assert_allclose(full[i], R.ref_attention(q[i:i + 1], k[:i + 1], v[:i + 1])[0], rtol=1e-12)
    k2, v2 = k.copy(), v.copy()
    k2[3], v2[3] = np.nan, np.nan  # a NaN in a later row cannot reach rows 0..2
    out = R.ref_attention(q, k2, v2, causal=True)
    np.testing.assert_array_equal(out[:3], full[:3])
    assert np.isnan(out[3:]).all()


def test_references_against_direct_formulas():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 5))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    y = R.ref_conv2d(x, w, b, 2, 1, 1, 0, True)
    assert y.shape == (2, 4, R.conv_out_size(5, 3, 2, 1), R.conv_out_size(5, 3, 1, 0))
    direct = sum(x[1, c, 2 * 1 - 1 + i, 2 + j] * w[2, c, i, j] for c in range(3) for i in range(3) for j in range(3))
    assert y[1, 2, 1, 2] == pytest.approx(max(direct + b[2], 0.0))
    assert R.ref_gelu(np.array([1.0]))[0] == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))))
    # a 0-d input (the fuzzer's scalar case; without SciPy the erfc fallback gives a Python float for it)
    assert float(R.ref_gelu(np.float64(-1.5))) == pytest.approx(-0.75 * math.erfc(1.5 / math.sqrt(2)))
    ln = R.ref_layer_norm(np.array([[1.0, 3.0]]), eps=0.0)
    np.testing.assert_allclose(ln, [[-1.0, 1.0]])
    # the NumPy peers call the same formulas in the inputs' dtype
    assert R.ref_attention(*(rng.random((4, 2), np.float32) for _ in range(3)), dtype=None).dtype == np.float32
    xs, ws, bs = rng.random((1, 3, 8, 8)), rng.random((16, 3, 3, 3)) - 0.5, rng.random(16)
    chain = R.ref_chain(xs, ws, bs, 4, 8)
    flat = R.ref_conv2d(xs, ws, bs, 1, 1, 1, 1, True).ravel()
    np.testing.assert_allclose(chain, R.ref_attention(flat[:32].reshape(4, 8), flat[32:64].reshape(4, 8),
                                                      flat[64:96].reshape(4, 8)))


def test_lowp_matmul_excess():
    from lightning_core.testing import UNIT_ROUNDOFF, lowp_matmul_excess, unit_roundoff
    assert unit_roundoff("bfloat16") == UNIT_ROUNDOFF["bfloat16"] == 2.0 ** -8 and unit_roundoff(np.float16) == 2.0 ** -11
    a = np.array([[1.0, 2.0], [0.0, 0.0]])
    b = np.array([[3.0], [4.0]])
    exact = a @ b
    assert lowp_matmul_excess(exact, a, b, "bfloat16") == 0.0
    bound = 2.0 ** -8 * 11.0 + 2 * 2 * 2.0 ** -24 * 11.0  # row 0: |ref| = |a|@|b| = 11
    off = exact.copy()
    off[0, 0] += 0.5 * bound
    assert abs(lowp_matmul_excess(off, a, b, "bfloat16") - 0.5) < 1e-12
    off[0, 0] = exact[0, 0] + 2 * bound
    assert lowp_matmul_excess(off, a, b, "bfloat16") > 1.0
    zero_row = exact.copy()
    zero_row[1, 0] = 1e-30  # the bound there is half bfloat16's subnormal spacing (2^-134): 1e-30 is far past it
    assert lowp_matmul_excess(zero_row, a, b, "bfloat16") > 1e9
    tiny = exact.copy()
    tiny[1, 0] = 2.0 ** -135  # within half a subnormal step of 0: what rounding to bfloat16 may leave
    assert lowp_matmul_excess(tiny, a, b, "bfloat16") <= 1.0
    nan = exact.copy()
    nan[0, 0] = np.nan
    assert lowp_matmul_excess(nan, a, b, "bfloat16") == np.inf
    assert lowp_matmul_excess(exact + 1.0, a, b, "bfloat16", bias=np.array([1.0])) == 0.0  # bias on every row
