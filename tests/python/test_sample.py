"""lc.sample / lc.sample_into: temperature, top-k, top-p and the seeded draw (docs/python_api.md, "Index ops").

- Tokens against the NumPy reference (lightning_core.testing.sample_ref: Philox-4x32-10 bits, float64
  probabilities): equal in every row except draws within 1e-6 of a cumulative boundary (the kernels use
  2^-40 fixed point), which must be rare. This checks the RNG bits, the row index and the step exactly.
- Distributions: 20000 draws (one [n, V] call a step, the rows drawing different numbers, over several
  counter values) against the expected probabilities by a chi-square bound (the 99.9% quantile; the tests
  are deterministic), and tokens outside the kept set never drawn; each test also shows the bound rejects a
  wrong distribution.
- The counter adds exactly one per call; bad inputs raise ValueError/TypeError naming the argument and
  write nothing (out poisoned, counter unchanged). CUDA: tokens equal to the CPU's, device counter, NaN
  row, graph replay (skipped without a GPU).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import sample_ref as sr

CUDA = bool(lc.cuda_available())
requires_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA GPU here")
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46, 7: 24.32}  # 99.9% quantiles


def _counter(value, device="cpu"):
    c = np.array([value], np.int64)
    return lc.Tensor(c, device="cuda") if device == "cuda" else c


def _val(c):
    return int((c.numpy() if hasattr(c, "numpy") else c)[0])


def _host(x):
    return x.numpy() if hasattr(x, "numpy") else x


def _draws(row, n=20000, calls=4, device="cpu", **kw):
    """Counts of n draws of one distribution: `calls` calls of an [n / calls, V] batch, counter 0, 1, ..."""
    x = np.tile(np.asarray(row, np.float32), (n // calls, 1))
    xd = lc.Tensor(x, device="cuda") if device == "cuda" else x
    c = _counter(0, device)
    toks = [_host(lc.sample(xd, counter=c, device=device, **kw)) for _ in range(calls)]
    assert _val(c) == calls
    return np.bincount(np.concatenate(toks), minlength=x.shape[1])


def _chi2(counts, p):
    """Chi-square statistic over the tokens of p > 0 (and its degrees of freedom); a draw of a p == 0 token
    makes it infinite."""
    p = np.asarray(p, np.float64)
    n = counts.sum()
    if np.any(counts[p == 0] > 0):
        return np.inf, 1
    e = n * p[p > 0]
    return float(((counts[p > 0] - e) ** 2 / e).sum()), int((p > 0).sum()) - 1


def _softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def _check_dist(counts, p):
    stat, df = _chi2(counts, p)
    assert stat < CHI2_999[df], f"chi-square {stat:.1f} >= {CHI2_999[df]} (df {df}): {counts} vs {np.round(p * counts.sum())}"


def _rejects(counts, p):
    stat, df = _chi2(counts, p)
    return stat > 5 * CHI2_999[df]


P8 = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02])
L8 = np.log(P8) + 1.7  # softmax(L8) == P8


def test_philox_known_answers():
    # Random123's published known-answer vectors of Philox-4x32-10.
    kat = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
           ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
           ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for ctr, key, want in kat:
        assert tuple(int(v) for v in sr.philox4x32_10(np.array(ctr, np.uint32), key)) == want


CONFIGS = [dict(), dict(temperature=0.7, top_k=5), dict(temperature=1.3, top_p=0.9),
           dict(temperature=0.8, top_k=10, top_p=0.8), dict(top_k=1), dict(top_p=0.3), dict(temperature=3.0, top_k=36)]


def _match_reference(got, logits, kw, seed, step, min_clear=0.99):
    want, margin = sr.reference_tokens(logits, seed=seed, step=step, **kw)
    clear = margin > 1e-6
    assert clear.mean() >= min_clear, "too many draws near a boundary: the test's inputs need changing"
    bad = np.nonzero((got != want) & clear)[0]
    assert bad.size == 0, f"{kw}: rows {bad[:8]} got {got[bad[:8]]}, reference {want[bad[:8]]}"


@pytest.mark.parametrize("kw", CONFIGS)
def test_tokens_match_reference(rng, kw):
    logits = (rng.standard_normal((300, 37)) * 2).astype(np.float32)
    seed, step = int(rng.integers(0, 2**64, dtype=np.uint64)), int(rng.integers(0, 2**40))
    c = _counter(step)
    out = np.full(300, -7, np.int64)
    assert lc.sample_into(logits, out, seed=seed, counter=c, **kw) is out
    assert _val(c) == step + 1
    _match_reference(out, logits, kw, seed, step)
    # the same seed and step: the same tokens (a Tensor counter too); another step or seed: other tokens
    again = lc.sample(logits, seed=seed, counter=lc.Tensor(np.array([step], np.int64)), **kw)
    np.testing.assert_array_equal(again, out)
    if kw.get("top_k") != 1 and kw.get("top_p", 1.0) > 0.5:
        assert np.mean(lc.sample(logits, seed=seed, counter=_counter(step + 1), **kw) != out) > 0.2
        assert np.mean(lc.sample(logits, seed=seed ^ 1, counter=_counter(step), **kw) != out) > 0.2


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_dtypes_match_reference(rng, dtype):
    x32 = (rng.standard_normal((200, 50)) * 3).astype(np.float32)
    x = x32.astype(np.float64) * (1 + 1e-9) if dtype == "float64" else lc.cast(x32, dtype)
    ref_in = x if dtype == "float64" else lc.cast(x, "float32")  # the values the kernel sees (widening is exact)
    for kw in (dict(temperature=0.9), dict(top_k=7, top_p=0.85)):
        got = lc.sample(x, seed=11, counter=_counter(3), **kw)
        _match_reference(got, ref_in, kw, 11, 3)


@pytest.mark.parametrize("v,kw", [(50257, dict(temperature=0.8, top_k=50, top_p=0.9)), (50257, dict(top_p=0.95)),
                                  (70001, dict(temperature=1.2)), (4099, dict(top_k=1000, top_p=0.5)),
                                  (300007, dict(top_k=100, top_p=0.9)), (300007, dict())])  # > 2^18: no CPU cache
def test_large_vocab_matches_reference(rng, v, kw):
    logits = rng.standard_normal((12, v)).astype(np.float32)
    logits[:, rng.integers(0, v, 20)] += 12.0  # a few likely tokens, as a language model's (most draws far from a boundary)
    got = lc.sample(logits, seed=5, counter=_counter(9), **kw)
    _match_reference(got, logits, kw, 5, 9, min_clear=0.5)  # a draw in the long tail is near a boundary


def test_plain_distribution():
    counts = _draws(L8, seed=1)
    _check_dist(counts, P8)
    assert _rejects(counts, np.full(8, 1 / 8)) and _rejects(counts, _softmax(L8 / 2))


@pytest.mark.parametrize("t", [0.5, 2.0, 0.25])
def test_temperature_scaling(t):
    counts = _draws(L8, temperature=t, seed=2)
    _check_dist(counts, _softmax(L8 / t))
    assert _rejects(counts, P8)


def test_top_k():
    counts = _draws(L8, top_k=3, seed=3)
    assert counts[3:].sum() == 0
    _check_dist(counts, np.r_[P8[:3], np.zeros(5)] / P8[:3].sum())
    assert _rejects(counts, P8)
    # ties at the k-th value: every token equal to it is kept (here 4 tokens for k = 2)
    z = np.array([2.0, 1.0, 0.0, 1.0, 1.0, -1.0, 0.5, -3.0], np.float32)
    counts = _draws(z, top_k=2, seed=4)
    p = np.where(z >= 1.0, np.exp(z), 0.0)
    _check_dist(counts, p / p.sum())
    assert set(np.nonzero(counts)[0]) == {0, 1, 3, 4}
    # top_k >= V and top_k = 0 are off
    _check_dist(_draws(L8, top_k=8, seed=5), P8)
    _check_dist(_draws(L8, top_k=100, seed=5), P8)
    assert list(np.nonzero(_draws(L8, top_k=1, seed=6))[0]) == [0]


def _kept(p, idx):
    q = np.zeros(len(p))
    q[idx] = np.asarray(p)[idx]
    return q / q.sum()


def test_top_p():
    # p = .3 .2 .15 .1 .1 .08 .05 .02: top_p .45 -> {0, 1} (.5 >= .45 and .3 < .45)
    counts = _draws(L8, top_p=0.45, seed=7)
    _check_dist(counts, _kept(P8, [0, 1]))
    assert _rejects(counts, _kept(P8, [0, 1, 2]))
    # .6 -> {0, 1, 2} (.65); .7 needs one of the two .1 tokens, which tie: both kept (.85, not a minimal .75)
    _check_dist(_draws(L8, top_p=0.6, seed=8), _kept(P8, [0, 1, 2]))
    counts = _draws(L8, top_p=0.7, seed=9)
    _check_dist(counts, _kept(P8, [0, 1, 2, 3, 4]))
    assert _rejects(counts, _kept(P8, [0, 1, 2, 3]))
    # at least one token: top_p below the largest probability keeps only it
    assert list(np.nonzero(_draws(L8, top_p=0.05, seed=10))[0]) == [0]
    # a tie at the top: both kept even though one would reach top_p
    z = np.log(np.array([0.3, 0.3, 0.2, 0.2]))
    counts = _draws(z, top_p=0.1, seed=11)
    _check_dist(counts, np.array([0.5, 0.5, 0, 0]))
    _check_dist(_draws(L8, top_p=1.0, seed=12), P8)


def test_top_k_then_top_p():
    # top-p is measured on the top-k renormalised probabilities (HF order): k = 2 gives .6 / .4; top_p .55
    # keeps token 0 alone, while top_p .55 on all eight keeps {0, 1, 2}
    assert list(np.nonzero(_draws(L8, top_k=2, top_p=0.55, seed=13))[0]) == [0]
    _check_dist(_draws(L8, top_p=0.55, seed=13), _kept(P8, [0, 1, 2]))
    # and temperature first: at T = 0.5 the largest probability is .495, so top_p .45 keeps one token (at T = 1,
    # {0, 1})
    assert list(np.nonzero(_draws(L8, temperature=0.5, top_p=0.45, seed=14))[0]) == [0]


def test_rows_and_counter(rng):
    z = rng.standard_normal(1000).astype(np.float32) * 0.1
    x = np.tile(z, (64, 1))
    a = lc.sample(x, seed=21)
    assert len(set(a.tolist())) > 40  # rows draw different numbers
    np.testing.assert_array_equal(a, lc.sample(x, seed=21, counter=_counter(0)))  # no counter: step 0
    c = _counter(0)
    seen = []
    for i in range(5):
        seen.append(lc.sample(x, seed=21, counter=c))
        assert _val(c) == i + 1
    np.testing.assert_array_equal(seen[0], a)
    for i in range(4):
        assert np.mean(seen[i] != seen[i + 1]) > 0.8
    np.testing.assert_array_equal(seen[3], lc.sample(x, seed=21, counter=_counter(3)))
    # the row index: row r of a batch draws what the reference's row r draws, whatever the other rows hold
    y = x.copy()
    y[1:] = rng.standard_normal((63, 1000))
    assert lc.sample(y, seed=21)[0] == a[0]


def test_extreme_logits():
    inf = np.inf
    # +inf logits share the whole mass equally; -inf tokens are never drawn
    counts = _draws(np.array([1.0, inf, 0.0, inf, -inf, 5.0, 2.0, inf]), seed=31)
    _check_dist(counts, np.array([0, 1, 0, 1, 0, 0, 0, 1]) / 3)
    counts = _draws(np.array([-inf, 0.0, -inf, 1.0, -inf, -inf, -inf, -inf]), seed=32)
    _check_dist(counts, np.r_[0, _softmax([0.0, 1.0])[0], 0, _softmax([0.0, 1.0])[1], 0, 0, 0, 0])
    # a row of -inf only: every token weighs as the maximum (uniform)
    _check_dist(_draws(np.full(8, -inf), seed=33), np.full(8, 1 / 8))
    # a tiny temperature: the argmax (the others are below 2^-40 of it)
    assert list(np.nonzero(_draws(L8, temperature=1e-3, seed=34))[0]) == [0]
    # huge logits over a small temperature overflow to +inf: the maximum only
    assert list(np.nonzero(_draws(np.array([3e38, 1e38, 0, 0, 0, 0, 0, 0]), temperature=0.5, seed=35))[0]) == [0]
    assert list(lc.sample(np.zeros((3, 1), np.float32), seed=36)) == [0, 0, 0]  # V = 1


def test_bad_inputs():
    x = np.zeros((4, 8), np.float32)
    out = np.full(4, -7, np.int64)
    c = _counter(5)
    cases = [
        (dict(temperature=0.0), ValueError, "temperature.*argmax"),
        (dict(temperature=-1.0), ValueError, "temperature"),
        (dict(temperature=float("nan")), ValueError, "temperature"),
        (dict(temperature=float("inf")), ValueError, "temperature"),
        (dict(temperature=1e-60), ValueError, "temperature"),
        (dict(temperature="1"), TypeError, "temperature"),
        (dict(temperature=True), TypeError, "temperature"),
        (dict(top_p=0.0), ValueError, "top_p"),
        (dict(top_p=1.5), ValueError, "top_p"),
        (dict(top_p=float("nan")), ValueError, "top_p"),
        (dict(top_p=None), TypeError, "top_p"),
        (dict(top_k=-1), ValueError, "top_k"),
        (dict(top_k=2.0), TypeError, "top_k"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=2**64), ValueError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
    ]
    for kw, exc, what in cases:
        with pytest.raises(exc, match=what):
            lc.sample_into(x, out, counter=c, **kw)
    for bad_counter, exc in ((np.array([0], np.int32), TypeError), (np.array([0, 0], np.int64), ValueError),
                             (lc.Tensor(np.array([0], np.int32)), TypeError), (lc.Tensor(np.array([0, 1], np.int64)), ValueError),
                             (np.zeros(1, np.int64)[::1].view(np.int64).reshape(1, 1), ValueError), ("0", TypeError)):
        with pytest.raises(exc, match="counter"):
            lc.sample_into(x, out, counter=bad_counter)
    ro = np.zeros(1, np.int64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="counter"):
        lc.sample_into(x, out, counter=ro)
    with pytest.raises(ValueError, match="logits"):
        lc.sample(np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="logits"):
        lc.sample(np.zeros((2, 3, 8), np.float32))
    with pytest.raises(ValueError, match="logits"):
        lc.sample_into(np.zeros((2, 3, 8), np.float32), np.zeros(2, np.int64))
    with pytest.raises(TypeError, match="logits"):
        lc.sample(np.zeros((2, 8), np.int64))
    with pytest.raises(TypeError, match="out"):
        lc.sample_into(x, np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="out"):
        lc.sample_into(x, np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="out"):
        lc.sample_into(x, np.zeros((4, 1), np.int64))
    buf = np.zeros(5, np.int64)
    with pytest.raises(ValueError, match="counter"):  # out and counter sharing memory
        lc.sample_into(x, buf[:4], counter=buf[3:4])
    # NaN on the CPU: refused, naming logits, the row and the column
    xn = np.zeros((4, 8), np.float32)
    xn[2, 5] = np.nan
    with pytest.raises(ValueError, match=r"logits.*row 2, column 5"):
        lc.sample_into(xn, out, counter=c)
    assert list(out) == [-7] * 4 and _val(c) == 5  # nothing written by any refused call
    lc.sample_into(x, out, counter=c)  # still usable
    assert _val(c) == 6 and np.all((out >= 0) & (out < 8))


def test_isa_variants_pick_the_same_tokens(rng, tmp_path):
    """The row body runs as AVX2+FMA (hardware fmaf) or baseline (libm fmaf) code: the same bits, so the same
    tokens (here against a process with AVX2 masked)."""
    x = (rng.standard_normal((64, 3000)) * 2).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    kw = dict(temperature=0.9, top_k=200, top_p=0.9, seed=123)
    here = lc.sample(x, **kw)
    path_here = lc.last_dispatch()["path"]
    code = ("import sys, numpy as np, lightning_core as lc; x = np.load(sys.argv[1]); "
            f"np.save(sys.argv[2], lc.sample(x, **{kw!r})); print(lc.last_dispatch()['path'])")
    env = dict(os.environ, LC_CPU_DISABLE="avx2,avx512")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"), str(tmp_path / "t.npy")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "cpu_sample_scalar" and path_here in ("cpu_sample_avx2", "cpu_sample_scalar")
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), here)


@requires_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_cuda_matches_cpu(rng, dtype):
    for rows, v, kw in ((500, 37, dict(temperature=0.9)), (300, 1000, dict(top_k=40, top_p=0.9)),
                        (8, 50257, dict(temperature=0.7, top_k=50, top_p=0.95)), (4, 131072, dict(top_p=0.8)),
                        (4, 32000, dict(top_k=32000)), (2000, 8, dict(top_k=3))):
        x = lc.cast((rng.standard_normal((rows, v)) * 2).astype(np.float32), dtype)
        cpu = lc.sample(x, seed=77, counter=_counter(4), **kw)
        c = _counter(4, "cuda")
        gpu = lc.sample(lc.Tensor(x, device="cuda", dtype=dtype), seed=77, counter=c, device="cuda", **kw).numpy()
        assert _val(c) == 5
        np.testing.assert_array_equal(gpu, cpu)
        np.testing.assert_array_equal(lc.sample(x, seed=77, counter=None, device="cuda", **kw),
                                      lc.sample(x, seed=77, **kw))  # host arrays staged; step 0 without counter


@requires_cuda
def test_cuda_distribution_nan_and_counter():
    _check_dist(_draws(L8, top_p=0.7, seed=9, device="cuda"), _kept(P8, [0, 1, 2, 3, 4]))
    xn = np.zeros((3, 300), np.float32)
    xn[1, [200, 17, 250]] = np.nan
    got = lc.sample(lc.Tensor(xn, device="cuda"), device="cuda").numpy()
    assert got[1] == 17 and 0 <= got[0] < 300  # a NaN row gets its first NaN's index
    with pytest.raises(ValueError, match="counter"):  # a host counter for a CUDA op
        lc.sample(lc.Tensor(xn, device="cuda"), counter=_counter(0), device="cuda")


@requires_cuda
def test_cuda_graph_replay_draws_fresh_tokens(rng):
    x = (rng.standard_normal((16, 4096)) * 2).astype(np.float32)
    xt, out, c = lc.Tensor(x, device="cuda"), lc.Tensor(np.zeros(16, np.int64), device="cuda"), _counter(10, "cuda")
    g = lc.capture_graph(lambda: lc.sample_into(xt, out, temperature=0.8, top_k=100, seed=9, counter=c, device="cuda"))
    assert _val(c) == 10  # recorded, not run
    for step in range(10, 13):
        g.replay()
        lc.synchronize()
        np.testing.assert_array_equal(out.numpy(), lc.sample(x, temperature=0.8, top_k=100, seed=9, counter=_counter(step)))
    assert _val(c) == 13
    g.release()
