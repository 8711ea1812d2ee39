"""layer_norm_linear / rms_norm_linear with argmax_out= (lc_layer_norm_linear_argmax / lc_rms_norm_linear_argmax):
greedy decoding's final norm + lm_head + argmax as one call. Checked, every dtype x device, w as given and as the
transposed view of an [n, k] array (torch's Linear layout), m in {1, 3, 8, 9}, awkward k and n:
- argmax_out (poisoned with -7 first) equals lc.argmax of the op's own output, and the output equals the call
  without argmax_out bit for bit; the chosen logit is the float64 reference's maximum within the op's tolerance
  (norm_linear_excess's bound: ref[i, chosen] >= max_j ref[i, j] - bound[i, chosen] - bound[i, j']);
- on CUDA the fold happens exactly where the ring GEMV runs the op (16-bit, m <= 8, w transposed, k % 8 == 0, the
  ring on: the last dispatch is the GEMV, no argmax launch after it); the tile kernel and every other path run
  lc.argmax after the op (last dispatch: the argmax);
- lc.argmax's order where the fold reduces over blocks: NaN largest (the first NaN wins), -0 == +0, ties to the
  first index (identical rows of w), all across block boundaries;
- bad argmax_out (dtype, shape, overlap, strided, not an array) raises naming argmax_out, nothing written.
Spec: docs/python_api.md (layer_norm_linear). """
import numpy as np
import pytest

import lightning_core as lc
from test_linear_wt import DT, _t, _wt, gemv_ring  # noqa: F401  (gemv_ring: the autouse kernel fixture)
from test_norm_linear import norm_linear_excess, ref_norm64

SHAPES = [(1, 64, 7), (1, 768, 5003), (3, 200, 1000), (8, 264, 2000), (9, 64, 300), (1, 2048, 4099), (2, 8, 1)]


def _call(rms, x, w, gamma, beta, device, argmax_out=None):
    if rms:
        return lc.rms_norm_linear(x, w, None, gamma, 1e-6, "none", device, argmax_out)
    return lc.layer_norm_linear(x, w, None, gamma, beta, 1e-5, "none", device, argmax_out)


def _ring(name, device, m, k, n, wt):
    """The CUDA ring GEMV runs the op (and folds the argmax): gemv_ring's LC_GEMV_RING=1 run."""
    import os
    return (device == "cuda" and name != "float32" and wt and m <= 8 and k % 8 == 0 and n > 1
            and os.environ.get("LC_GEMV_RING") == "1")


def _idx(device, m):
    return lc.Tensor(np.full(m, -7, np.int64), device=device) if device == "cuda" else np.full(m, -7, np.int64)


def _np(a):
    return a.numpy() if hasattr(a, "numpy") else np.asarray(a)


@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16"])
def test_argmax_out_is_argmax_of_out(rng, device, name, rms):
    dt = DT[name]
    for i, (m, k, n) in enumerate(SHAPES):
        wt = i % 4 != 3  # mostly torch's layout (the runner's), sometimes w [k, n] as given
        x = (rng.standard_normal((m, k)) * 2.0 + 1.0).astype(dt)
        if wt:
            wv, w = _wt(rng, k, n, dt, device, name)
        else:
            w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dt)
            wv = _t(w, device, name)
        gamma = (1.0 + 0.5 * rng.standard_normal(k)).astype(dt)
        beta = None if rms else rng.standard_normal(k).astype(dt)
        xs, gs, bs = _t(x, device, name), _t(gamma, device, name), _t(beta, device, name)
        idx = _idx(device, m)
        z = _call(rms, xs, wv, gs, bs, device, idx)
        path = lc.last_dispatch()["path"]
        assert ("argmax" not in path) == _ring(name, device, m, k, n, wt), (m, k, n, wt, path)
        got, zn = _np(idx), _np(z)
        assert np.array_equal(got, _np(lc.argmax(z, device))), (m, k, n, path)
        assert np.array_equal(_np(_call(rms, xs, wv, gs, bs, device)).view(np.uint8), zn.view(np.uint8))
        # the chosen logit is the reference maximum within the op's tolerance
        assert norm_linear_excess(zn, x, w, None, gamma, beta, 1e-6 if rms else 1e-5, "none", name, rms,
                                  device) <= 1.0
        xn, mag = ref_norm64(x, gamma, beta, 1e-6 if rms else 1e-5, rms)
        ref, slack = xn @ w.astype(np.float64), (mag @ np.abs(w.astype(np.float64))) * (2 * k + 8) * 2.0**-24
        slack += np.abs(ref) * {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}[name]
        best = ref.argmax(axis=1)
        r = np.arange(m)
        assert np.all(ref[r, got] >= ref[r, best] - slack[r, got] - slack[r, best]), (m, k, n)


def _special(device, name, n, k, rows):
    """rms_norm_linear of x = 1 (normalised: 1) with w_t rows given: logits = the row sums, exactly."""
    dt = DT[name]
    w_nk = np.zeros((n, k), dt)
    for r, v in rows.items():
        w_nk[r] = v
    wv = lc.transpose(_t(w_nk, device, name), 0, 1)
    x = _t(np.ones((1, k), dt), device, name)
    idx = _idx(device, 1)
    z = lc.rms_norm_linear(x, wv, None, None, 1e-6, "none", device, idx)
    return int(_np(idx)[0]), _np(z), lc.last_dispatch()["path"]


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32"])
def test_argmax_order_nan_zero_ties(device, name):
    n, k = 20000, 64  # rows over many blocks of the ring's grid
    # ties: the same largest value at three rows far apart -> the first
    got, z, path = _special(device, name, n, k, {17000: 0.5, 9000: 0.5, 12345: 0.5, 3: 0.25})
    assert got == 9000, path
    # NaN largest: the first NaN, even after a larger finite value and +inf
    got, z, path = _special(device, name, n, k, {100: np.inf, 15000: np.nan, 19999: np.nan, 50: 1.0})
    assert got == 15000 and np.isnan(z[0, 15000]), path
    # -0 == +0: every row 0 or -0 (a row of -0 weights sums to -0 where the kernel keeps the sign) -> index 0
    got, z, path = _special(device, name, n, k, {0: -0.0, 1: -0.0, 7000: 0.0})
    assert got == 0, path
    got, z, path = _special(device, name, n, k, {r: -0.0 for r in range(0, n, 3)})
    assert got == 0, path
    # all -inf but one -> that one; all -inf -> the first
    got, z, path = _special(device, name, n, k, {r: -np.inf for r in range(n) if r != 4321})
    assert got == 4321
    got, z, path = _special(device, name, n, k, {r: -np.inf for r in range(n)})
    assert got == 0


def test_argmax_repeats_and_captures(device):
    """The fold's cross-block state returns to zero after each launch: many calls (and, on CUDA, a captured graph
    replayed) keep giving the argmax."""
    rng = np.random.default_rng(5)
    name, dt, m, k, n = "bfloat16", DT["bfloat16"], 2, 256, 3001
    wv, w = _wt(rng, k, n, dt, device, name)
    xs = [_t(rng.standard_normal((m, k)).astype(dt), device, name) for _ in range(4)]
    idx = _idx(device, m)
    for x in xs * 3:
        z = lc.rms_norm_linear(x, wv, None, None, 1e-6, "none", device, idx)
        assert np.array_equal(_np(idx), _np(lc.argmax(z, device)))
    if device != "cuda":
        return
    src = lc.Tensor(xs[0].numpy(), device=device, dtype=name)
    g = lc.capture_graph(lambda: lc.rms_norm_linear(src, wv, None, None, 1e-6, "none", device, idx))
    for x in xs:
        src.copy_from(x.numpy())
        idx.copy_from(np.full(m, -7, np.int64))
        g.replay()
        want = _np(lc.argmax(lc.rms_norm_linear(x, wv, None, None, 1e-6, "none", device), device))
        assert np.array_equal(_np(idx), want)


def test_bad_argmax_out(device):
    dt = DT["bfloat16"]
    rng = np.random.default_rng(3)
    x = _t(rng.standard_normal((3, 16)).astype(dt), device, "bfloat16")
    wv, _ = _wt(rng, 16, 40, dt, device, "bfloat16")
    mk = (lambda a: lc.Tensor(a, device=device)) if device == "cuda" else (lambda a: a)
    # the argument named once, after the op (not "argmax_out: ...: out: ...")
    bad = [(mk(np.zeros(3, np.int32)), TypeError, r"^rms_norm_linear: argmax_out: expected dtype int64, got int32$"),
           (mk(np.zeros(4, np.int64)), ValueError, r"^rms_norm_linear: argmax_out: expected shape \[3\], got \[4\]$"),
           (mk(np.zeros((3, 1), np.int64)), ValueError,
            r"^rms_norm_linear: argmax_out: expected shape \[3\], got \[3, 1\]$"),
           ([0, 0, 0], TypeError, "argmax_out")]
    for obj, exc, word in bad:
        with pytest.raises(exc, match=word):
            lc.rms_norm_linear(x, wv, None, None, 1e-6, "none", device, obj)
    strided = np.full(6, -7, np.int64)[::2]
    if device == "cpu":
        with pytest.raises(ValueError, match="^rms_norm_linear: argmax_out: expected a contiguous tensor, got a strided view$"):
            lc.rms_norm_linear(x, wv, None, None, 1e-6, "none", device, strided)
        assert np.all(np.full(6, -7, np.int64)[::2] == strided)
    # still usable, and a good call after the refusals
    good = _idx(device, 3)
    z = lc.rms_norm_linear(x, wv, None, None, 1e-6, "none", device, good)
    assert np.array_equal(_np(good), _np(lc.argmax(z, device)))
