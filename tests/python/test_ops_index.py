"""The index ops: embedding (rows of a float table gathered by int32/int64 ids) and argmax (int64 index of
the largest element over the last axis), every float dtype x device, against NumPy (both are exact: a copy
and a comparison, so equality is the check). Outputs are poisoned first; bad inputs raise errors naming
the argument and write nothing."""
import json
import os
import subprocess
import sys

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


# ---- argmax on CUDA: few long rows split over many blocks (index_cuda.cu) ---------------------------------
# Rows of 1..3 and lengths across the 16-byte vector and block edges up to the vocabularies of GPT-2
# (50257) and LLaMA (32000) and beyond (100003); every dtype (float64 as a device Tensor64). The winner is
# planted at random and at awkward places (ties across the row: the first wins; +inf; NaN: the first NaN
# wins; -0 before +0), the output is poisoned first by fresh allocation and checked against NumPy's
# argmax of the float64 values; each case runs twice (the split path's counters reset themselves).

ARGMAX_COLS = (1, 7, 255, 256, 257, 4097, 32000, 50257, 100003)


def _argmax_dev(x, dtype):
    t = lc.Tensor(x, device="cuda", dtype=dtype)
    return _host(lc.argmax(t, device="cuda"))


def _argmax_cases(rng, rows, cols, dtype):
    """(name, array) pairs of shape [rows, cols] in dtype (NumPy: ml_dtypes for bfloat16)."""
    def conv(a):
        return lc.cast(a.astype(np.float32), dtype) if dtype != "float64" else a.astype(np.float64)

    base = rng.standard_normal((rows, cols))
    out = [("random", conv(base))]
    x = base.copy()  # ties: the maximum planted at several places of each row, the first must win
    for r in range(rows):
        where = np.unique(np.concatenate([rng.integers(0, cols, 3), [cols - 1, cols // 2, (cols * 7) // 8]]))
        x[r, where] = 10.0
    out.append(("ties", conv(x)))
    x = base.copy()  # +inf twice late in the row, then NaN in one row after them and before them in another
    for r in range(rows):
        x[r, max(cols - 2, 0)] = np.inf
        x[r, cols - 1] = np.inf
    if cols > 3:
        x[0, cols - 3] = np.nan
        x[rows - 1, 1] = np.nan
        x[rows - 1, cols - 1] = np.nan
    out.append(("inf_nan", conv(x)))
    x = np.full((rows, cols), -np.inf)  # all -inf: index 0
    out.append(("all_-inf", conv(x)))
    x = np.zeros((rows, cols))  # -0 first, +0 later: equal, so index 0
    x[:, 0] = -0.0
    out.append(("signed_zero", conv(x)))
    x = base.copy()  # one NaN per row at a random place, a NaN-free maximum elsewhere
    for r in range(rows):
        x[r, rng.integers(0, cols)] = np.nan
        x[r, rng.integers(0, cols)] = 50.0
    out.append(("one_nan", conv(x)))
    return out


# ---- argmax on the CPU: the AVX-512 rows (16 at a time, two passes) and the scalar loop -------------------
ARGMAX_CPU_COLS = (1, 7, 15, 16, 17, 31, 33, 255, 4097, 50257)


def _cpu_argmax_path(dtype):
    return "cpu_argmax_avx512" if dtype != "float64" and "avx512f" in lc.cpu_features().split() else "cpu_argmax"


@pytest.mark.parametrize("dtype", FLOATS)
def test_argmax_cpu_cases(rng, dtype):
    for rows in (1, 3):
        for cols in ARGMAX_CPU_COLS:
            for name, x in _argmax_cases(rng, rows, cols, dtype):
                want = np.argmax(np.asarray(x, np.float64), axis=-1)
                got = lc.argmax(x, device="cpu")
                assert lc.last_dispatch()["path"] == _cpu_argmax_path(dtype)
                assert got.dtype == np.int64 and np.array_equal(got, want), (dtype, rows, cols, name, got, want)


def test_argmax_cpu_scalar_path_agrees(rng, tmp_path):
    """The scalar loop (AVX-512 masked off, in a subprocess) gives the same indices on the same cases."""
    cases = []
    for dtype in FLOATS:
        for cols in ARGMAX_CPU_COLS:
            for name, x in _argmax_cases(rng, 2, cols, dtype):
                cases.append((dtype, name, np.asarray(x)))
    np.savez(tmp_path / "cases.npz", *[c[2].view(np.uint16) if c[0] in ("float16", "bfloat16") else c[2] for c in cases])
    dtypes = [c[0] for c in cases]
    code = ("import sys, json, numpy as np, lightning_core as lc\n"
            "from lightning_core.dtypes import numpy_dtype\n"
            "z = np.load(sys.argv[1]); dts = json.loads(sys.argv[2]); out = []\n"
            "for i, dt in enumerate(dts):\n"
            "    a = z[f'arr_{i}']\n"
            "    a = a.view(numpy_dtype(dt)) if dt in ('float16', 'bfloat16') else a\n"
            "    out.append(lc.argmax(a, device='cpu').tolist())\n"
            "print(json.dumps([out, lc.last_dispatch()['path']]))\n")
    env = dict(os.environ, LC_CPU_DISABLE="avx512")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cases.npz"), json.dumps(dtypes)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    scalar, path = json.loads(r.stdout)
    assert path == "cpu_argmax"
    for (dtype, name, x), got in zip(cases, scalar):
        want = np.argmax(np.asarray(x, np.float64), axis=-1)
        assert got == want.tolist() == lc.argmax(x, device="cpu").tolist(), (dtype, name, x.shape)


@pytest.mark.parametrize("dtype", FLOATS)
def test_argmax_cuda_few_long_rows(rng, dtype):
    if not lc.cuda_available():
        pytest.skip("CUDA")
    for rows in (1, 2, 3):
        for cols in ARGMAX_COLS:
            for name, x in _argmax_cases(rng, rows, cols, dtype):
                want = np.argmax(np.asarray(x, np.float64), axis=-1)
                for rep in range(2):
                    got = _argmax_dev(x, dtype)
                    assert got.dtype == np.int64 and np.array_equal(got, want), (dtype, rows, cols, name, rep, got, want)


def test_argmax_cuda_sequence_of_shapes(rng):
    # shapes taking the split path with different chunk counts, then one block per row, then split again:
    # a counter left over by an earlier launch would make a later row finish early
    if not lc.cuda_available():
        pytest.skip("CUDA")
    for rows, cols in ((1, 50257), (3, 100003), (2, 32000), (600, 300), (1, 1 << 20), (1, 50257), (2000, 4097)):
        x = lc.cast(rng.standard_normal((rows, cols)).astype(np.float32), "bfloat16")
        want = np.argmax(np.asarray(x, np.float64), axis=-1)
        assert np.array_equal(_argmax_dev(x, "bfloat16"), want), (rows, cols)


def test_argmax_cuda_unaligned_rows(rng):
    # rows of an odd length: rows after the first start off a 16-byte boundary (the scalar head)
    if not lc.cuda_available():
        pytest.skip("CUDA")
    for dtype in FLOATS:
        for cols in (50257, 4099, 33):
            x = rng.standard_normal((3, cols))
            x[1, min(3, cols - 1)] = 99.0  # inside row 1's head or first vector
            x[2, cols - 1] = 99.0  # the tail
            x = lc.cast(x.astype(np.float32), dtype) if dtype != "float64" else x
            want = np.argmax(np.asarray(x, np.float64), axis=-1)
            assert np.array_equal(_argmax_dev(x, dtype), want), (dtype, cols)


@pytest.mark.parametrize("dtype", FLOATS)
def test_embedding_offset_is_a_vocabulary_shard(rng, device, dtype):
    """offset: weight holds rows offset..offset+rows-1 of a larger table; other ids give zero rows (also ids
    below 0 and past the whole table: a shard cannot tell them apart), so the shards' lookups sum to the whole
    table's lookup (tensor parallelism). NaN-poisoned outs prove every row is written."""
    if dtype == "float64" and device == "cuda":
        pytest.skip("float64 device tensors are Tensor64; covered on the CPU")
    v, d = 23, 9
    full = _table(rng, v, d, dtype)
    for idt in (np.int32, np.int64):
        ids = np.concatenate([rng.integers(0, v, 40), [0, v - 1, -1, v, 10**6]]).astype(idt).reshape(5, 9)
        total = np.zeros(ids.shape + (d,), np.float64)
        for lo, hi in ((0, 8), (8, 16), (16, 23)):
            shard = np.ascontiguousarray(full[lo:hi])
            out = np.full(ids.shape + (d,), np.nan, np.float32)
            out = lc.cast(out, dtype) if dtype not in ("float32", "float64") else out.astype(full.dtype)
            got = lc.embedding_into(_on(shard, device), _on(ids, device), _on(out, device), device=device, offset=lo)
            got = _host(got)
            inside = (ids >= lo) & (ids < hi)
            want = np.zeros_like(got)
            want[inside] = full[ids[inside]]
            assert got.view(np.uint8).tobytes() == want.view(np.uint8).tobytes()
            total += got.astype(np.float64)
        ok = (ids >= 0) & (ids < v)
        np.testing.assert_array_equal(total[ok], full[ids[ok]].astype(np.float64))
        assert not np.any(total[~ok])
    # offset 0 with a shard of the whole table equals the plain lookup; the plain lookup still checks ids
    ids = rng.integers(0, v, 12)
    assert _host(lc.embedding(_on(full, device), _on(ids, device), device=device, offset=0)).tobytes() == \
        full[ids].tobytes()


def test_embedding_offset_bad_inputs(rng):
    w = rng.standard_normal((4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="offset"):
        lc.embedding(w, [1], offset=-1)
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match="offset"):
            lc.embedding(w, [1], offset=bad)
    out = np.full((1, 3), np.nan, np.float32)
    with pytest.raises(ValueError, match="offset"):
        lc.embedding_into(w, [1], out, offset=-3)
    assert np.all(np.isnan(out))
    with pytest.raises(ValueError, match="ids"):
        lc.embedding(w, [9], offset=None)  # None: the checked lookup


# ---- embedding with learned positions (lc_embedding_pos: GPT-2's input in one op) -----------------------------
# out = weight[ids] + pos_weight[positions], bit-identical to the composition embedding, embedding, add on the same
# device (the add's arithmetic: float32 for the 16-bit dtypes, rounded once), and within half an ulp of the float64
# sum of the two rows: u|sum| (the dtype's rounding; for 16 bits after float32's, 2^-24 more) + half a subnormal.
U = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11 + 2.0**-24, "bfloat16": 2.0**-8 + 2.0**-24}
HALF_SUB = {"float64": 2.0**-1075, "float32": 2.0**-150, "float16": 2.0**-25, "bfloat16": 2.0**-134}

@pytest.mark.parametrize("dtype", FLOATS)
def test_embedding_pos_is_the_sum_of_two_lookups(rng, device, dtype):
    if dtype == "float64" and device == "cuda":
        pytest.skip("float64 device tensors are Tensor64; covered on the CPU")
    for (v, p, d), shape in (((50, 20, 63), (7,)), ((1000, 1024, 768), (3, 5)), ((3, 1, 1), (1,)), ((9, 9, 1030), (2, 1, 2))):
        w, pw = _table(rng, v, d, dtype), _table(rng, p, d, dtype)
        for idt, pdt in ((np.int32, np.int64), (np.int64, np.int32), (np.int64, np.int64)):
            ids, pos = rng.integers(0, v, shape).astype(idt), rng.integers(0, p, shape).astype(pdt)
            got = _host(lc.embedding(_on(w, device), _on(ids, device), device=device, pos_weight=_on(pw, device),
                                     positions=_on(pos, device)))
            assert lc.last_dispatch()["path"].endswith("embedding_pos")
            assert got.dtype == w.dtype and got.shape == shape + (d,)
            two = lc.add(lc.embedding(_on(w, device), _on(ids, device), device=device),
                         lc.embedding(_on(pw, device), _on(pos, device), device=device), device)
            assert got.view(np.uint8).tobytes() == _host(two).view(np.uint8).tobytes()
            exact = w[ids].astype(np.float64) + pw[pos].astype(np.float64)
            assert np.all(np.abs(got.astype(np.float64) - exact) <= U[dtype] * np.abs(exact) + HALF_SUB[dtype])
    w, pw = _table(rng, 9, 4, dtype), _table(rng, 3, 4, dtype)
    out = np.full((2, 4), np.nan, w.dtype)
    assert lc.embedding_into(w, [8, 0], out, pos_weight=pw, positions=[2, 0]) is out
    assert not np.any(np.isnan(out.astype(np.float64)))


def test_embedding_pos_bad_inputs(rng):
    w, pw = rng.standard_normal((10, 4)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    out = np.full((2, 4), np.nan, np.float32)
    for kw, exc, what in (
            (dict(pos_weight=pw, positions=[1, 6]), ValueError, "positions"),   # out of pos_weight's rows
            (dict(pos_weight=pw, positions=[-1, 0]), ValueError, "positions"),
            (dict(pos_weight=pw), ValueError, "pos_weight"),                     # alone
            (dict(positions=[1, 2]), ValueError, "positions"),
            (dict(pos_weight=pw, positions=[1, 2, 3]), ValueError, "positions"),  # not ids' shape
            (dict(pos_weight=pw[:, :3].copy(), positions=[1, 2]), ValueError, "pos_weight"),
            (dict(pos_weight=pw.astype(np.float64), positions=[1, 2]), TypeError, "pos_weight"),
            (dict(pos_weight=pw, positions=np.ones(2, np.float32)), TypeError, "positions"),
            (dict(pos_weight=pw, positions=[1, 2], offset=0), ValueError, "offset")):
        with pytest.raises(exc, match=what):
            lc.embedding_into(w, [3, 4], out, **kw)
        assert np.all(np.isnan(out))  # nothing written
    with pytest.raises(ValueError, match="ids"):
        lc.embedding_into(w, [3, 10], out, pos_weight=pw, positions=[1, 2])
    assert np.all(np.isnan(out))
    np.testing.assert_array_equal(lc.embedding(w, [3], pos_weight=pw, positions=[5]), w[[3]] + pw[[5]])


def test_embedding_pos_out_of_range_on_cuda_is_a_zero_row(rng):
    if not lc.cuda_available():
        pytest.skip("CUDA")
    w, pw = rng.standard_normal((5, 8)).astype(np.float32), rng.standard_normal((4, 8)).astype(np.float32)
    t = lambda a: lc.Tensor(a, device="cuda")  # noqa: E731
    got = lc.embedding(t(w), t(np.array([2, 7, 1], np.int64)), device="cuda", pos_weight=t(pw),
                       positions=t(np.array([3, 0, 9], np.int64))).numpy()
    np.testing.assert_array_equal(got[0], w[2] + pw[3])
    np.testing.assert_array_equal(got[1], pw[0])
    np.testing.assert_array_equal(got[2], w[1])
