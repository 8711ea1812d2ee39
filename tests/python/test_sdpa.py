"""lc.scaled_dot_product_attention / scaled_dot_product_attention_into (issue 15; docs/python_api.md).

Every feature x dtype (float32, float16, bfloat16) x device (cpu; cuda skipped without a GPU) against the
float64 reference lightning_core.testing.ref_sdpa on fresh random inputs, relative error within
testing.sdpa_tol(dtype, Skv, D): shapes from awkward sizes (1, 7, 63, 65, 129, 1000; D up to 256), GQA and
MQA, Sq != Skv with the causal diagonal aligned to the end of the keys (also Sq > Skv: rows with no key),
rank 3 and rank 2 inputs, masks (bool, float32 additive, additive in q's 16-bit dtype; shapes [Skv],
[Sq,Skv], [B,1,1,Skv], [H,1,Skv], rank 4), key_lengths (list, int32, int64; 0, 1 and Skv), custom scale,
strided NumPy views (a packed [B,S,3,H,D] projection sliced and transposed, reversed and stepped axes,
Fortran order) and strided TensorViews, Tensor inputs returning Tensors, `_into` with NaN-poisoned out and
lse, return_lse, NaN in one query row / one key staying where it is seen, fully hidden rows -> zeros
(lse -inf), float64 inputs -> float32, the seed wrappers attention2d / attention_forward (same results),
and bad inputs (ValueError / TypeError naming the argument, nothing written, the process still usable).
The first tests check ref_sdpa itself against direct loops and ref_attention (they need no binding).
"""
import math
import re

import numpy as np
import pytest

import lightning_core as lc
from conftest import CUDA
from lightning_core.testing import as_host as host
from lightning_core.testing import check_sdpa as check
from lightning_core.testing import ref_attention, ref_sdpa, rel_err, sdpa_tol

ml_dtypes = pytest.importorskip("ml_dtypes")
DT = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
DTYPES = list(DT)
NAME = "scaled_dot_product_attention"


def sdpa(*a, **kw):
    return lc.scaled_dot_product_attention(*a, **kw)


def sdpa_into(*a, **kw):
    return lc.scaled_dot_product_attention_into(*a, **kw)


def rand(rng, shape, dt, scale=1.0):
    """Random values rounded to dt (the reference reads the same stored values)."""
    return (rng.standard_normal(shape) * scale).astype(dt)


def qkv(rng, b, h, hkv, sq, skv, d, dt):
    return rand(rng, (b, h, sq, d), dt), rand(rng, (b, hkv, skv, d), dt), rand(rng, (b, hkv, skv, d), dt)






def check_lse(lse, want):
    lse = host(lse)
    assert lse.dtype == np.float32 and lse.shape == want.shape
    assert np.array_equal(np.isneginf(lse), np.isneginf(want)) and np.array_equal(np.isnan(lse), np.isnan(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(lse[fin], want[fin], rtol=1e-5, atol=1e-5)


def named(*names):
    """A regex matching a message that names one of `names` as an argument ("k:", "k_new", "'k'", ...)."""
    return "|".join(rf"(?<![\w.]){re.escape(n)}(?![\w])" for n in names)


# ---- the reference itself (no binding needed) ---------------------------------------------------------


def test_ref_sdpa_against_direct_loops():
    rng = np.random.default_rng(5)
    b, h, hkv, sq, skv, d = 2, 6, 3, 4, 7, 5
    q, k, v = (rng.standard_normal(s) for s in ((b, h, sq, d), (b, hkv, skv, d), (b, hkv, skv, d)))
    mask = rng.standard_normal((h, 1, skv))
    lens = [5, 7]
    out, lse = ref_sdpa(q, k, v, attn_mask=mask, causal=True, scale=0.7, key_lengths=lens, return_lse=True)
    assert out.shape == q.shape and lse.shape == (b, h, sq)
    for bi in range(b):
        for hi in range(h):
            g = hi // (h // hkv)
            for i in range(sq):
                js = [j for j in range(skv) if j < lens[bi] and j <= i + lens[bi] - sq]
                s = np.array([0.7 * q[bi, hi, i] @ k[bi, g, j] + mask[hi, 0, j] for j in js])
                p = np.exp(s - s.max())
                np.testing.assert_allclose(out[bi, hi, i], (p / p.sum()) @ v[bi, g, js], rtol=1e-12, atol=1e-14)
                assert lse[bi, hi, i] == pytest.approx(s.max() + math.log(p.sum()), rel=1e-12)


def test_ref_sdpa_rank2_equals_ref_attention_and_edge_rows():
    rng = np.random.default_rng(6)
    q, k, v = (rng.standard_normal((9, 4)) for _ in range(3))
    for causal in (False, True):
        np.testing.assert_allclose(ref_sdpa(q, k, v, causal=causal), ref_attention(q, k, v, causal), rtol=1e-12)
    # Sq > Skv causal: the first Sq - Skv rows see no key -> zeros, lse -inf
    out, lse = ref_sdpa(q, k[:4], v[:4], causal=True, return_lse=True)
    assert np.all(out[:5] == 0) and np.all(np.isneginf(lse[:5])) and np.all(np.isfinite(lse[5:]))
    # a NaN in a hidden key is never read; an inf in v reaches only the rows (and the column) that see it
    k2 = k.copy()
    k2[8] = np.nan
    o2 = ref_sdpa(q, k2, v, causal=True)
    assert np.isfinite(o2[:8]).all() and np.isnan(o2[8]).all()
    v2 = v.copy()
    v2[3, 1] = np.inf
    o3 = ref_sdpa(q, k, v2, causal=True)
    assert np.isfinite(o3[:3]).all() and not np.isfinite(o3[3:, 1]).any() and np.isfinite(o3[:, 0]).all()
    with pytest.raises(ValueError, match="k:"):
        ref_sdpa(q[None], k[None][..., :3], v[None])


def test_sdpa_tol_formula():
    assert sdpa_tol("float32", 1000, 64) < 1e-5  # the float32 accuracy at S = 1k
    assert sdpa_tol("float64", 1000, 64) == sdpa_tol("float32", 1000, 64)  # float64 inputs compute in float32
    assert 2 * 2.0 ** -8 < sdpa_tol(DT["bfloat16"], 7) < 2.1 * 2.0 ** -8
    assert sdpa_tol(np.float16, 16000, 128) < sdpa_tol(np.float16, 160000, 128)


# ---- shapes x dtypes x devices ----------------------------------------------------------------------
# (B, H, Hkv, Sq, Skv, D, causal): awkward sizes, GQA and MQA, Sq != Skv both ways, a few larger ones.
CASES = [
    (1, 1, 1, 1, 1, 1, False),
    (2, 3, 3, 7, 7, 63, True),
    (1, 4, 2, 65, 65, 65, False),      # GQA
    (2, 7, 1, 7, 129, 7, True),        # MQA, Sq < Skv causal (bottom-right)
    (1, 2, 1, 129, 63, 129, True),     # Sq > Skv causal: the first 66 rows see no key
    (1, 8, 2, 1, 1000, 128, False),    # decode against a long cache
    (3, 2, 2, 63, 1000, 7, True),
    (1, 2, 2, 65, 129, 256, False),    # the largest head_dim
    (1, 1, 1, 1000, 1000, 64, True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:6])) + ("c" if c[6] else ""))
def test_matches_reference(rng, device, dtype, case):
    b, h, hkv, sq, skv, d, causal = case
    dt = DT[dtype]
    q, k, v = qkv(rng, b, h, hkv, sq, skv, d, dt)
    saved = [t.copy() for t in (q, k, v)]
    out = sdpa(q, k, v, causal=causal, device=device)
    assert isinstance(out, np.ndarray) and out.shape == (b, h, sq, d)
    check(out, ref_sdpa(q, k, v, causal=causal), dt, skv, d)
    for t, t0 in zip((q, k, v), saved):
        assert np.array_equal(t.view(np.uint8), t0.view(np.uint8)), "input modified"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_rank3_and_rank2(rng, device, dtype, causal):
    dt = DT[dtype]
    q, k, v = rand(rng, (4, 7, 33), dt), rand(rng, (2, 65, 33), dt), rand(rng, (2, 65, 33), dt)
    out, lse = sdpa(q, k, v, causal=causal, device=device, return_lse=True)
    want, wlse = ref_sdpa(q, k, v, causal=causal, return_lse=True)
    assert host(out).shape == (4, 7, 33) and host(lse).shape == (4, 7)
    check(out, want, dt, 65, 33)
    check_lse(lse, wlse)
    q2, k2, v2 = q[1], k[0], v[0]
    out2, lse2 = sdpa(q2, k2, v2, causal=causal, device=device, return_lse=True)
    want2, wlse2 = ref_sdpa(q2, k2, v2, causal=causal, return_lse=True)
    assert host(out2).shape == (7, 33) and host(lse2).shape == (7,)
    check(out2, want2, dt, 65, 33)
    check_lse(lse2, wlse2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_return_lse_and_custom_scale(rng, device, dtype):
    dt = DT[dtype]
    q, k, v = qkv(rng, 2, 4, 2, 9, 65, 16, dt)
    for scale in (None, 0.3, 2.0):
        out, lse = sdpa(q, k, v, causal=True, scale=scale, device=device, return_lse=True)
        want, wlse = ref_sdpa(q, k, v, causal=True, scale=scale, return_lse=True)
        check(out, want, dt, 65, 16)
        check_lse(lse, wlse)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_scores_are_stable(rng, device, dtype):
    dt = DT[dtype]
    q, k, v = qkv(rng, 1, 2, 1, 7, 129, 32, dt)
    q = (q.astype(np.float32) * 8).astype(dt)  # scores of several hundred: exp overflows without the max shift
    out = sdpa(q, k, v, device=device)
    check(out, ref_sdpa(q, k, v), dt, 129, 32)


# ---- masks ------------------------------------------------------------------------------------------
B, H, HKV, SQ, SKV, D = 2, 4, 2, 7, 65, 16
MASK_SHAPES = [(SKV,), (SQ, SKV), (B, 1, 1, SKV), (H, 1, SKV), (1, H, SQ, 1), (B, H, SQ, SKV)]


def make_mask(rng, kind, shape, dt):
    if kind == "bool":
        m = rng.random(shape) < 0.7
        m.reshape(-1, shape[-1])[0, :] = shape[-1] == 1  # some row of the mask keeps no key (or all)
        return m
    mdt = np.float32 if kind == "float32" else dt
    m = rng.standard_normal(shape).astype(np.float32)
    m[rng.random(shape) < 0.2] = -np.inf
    return m.astype(mdt)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["bool", "float32", "qdtype"])
@pytest.mark.parametrize("shape", MASK_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_masks(rng, device, dtype, kind, shape):
    dt = DT[dtype]
    q, k, v = qkv(rng, B, H, HKV, SQ, SKV, D, dt)
    m = make_mask(rng, kind, shape, dt)
    for causal in (False, True):
        out, lse = sdpa(q, k, v, attn_mask=m, causal=causal, device=device, return_lse=True)
        want, wlse = ref_sdpa(q, k, v, attn_mask=m, causal=causal, return_lse=True)
        check(out, want, dt, SKV, D)
        check_lse(lse, wlse)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_with_key_lengths_and_causal(rng, device, dtype):
    dt = DT[dtype]
    q, k, v = qkv(rng, 3, 2, 1, 5, 63, 7, dt)
    m = make_mask(rng, "float32", (3, 1, 5, 63), dt)
    lens = [63, 1, 40]
    out = sdpa(q, k, v, attn_mask=m, causal=True, key_lengths=lens, device=device)
    check(out, ref_sdpa(q, k, v, attn_mask=m, causal=True, key_lengths=lens), dt, 63, 7)


# ---- key_lengths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["list", "int32", "int64"])
@pytest.mark.parametrize("causal", [False, True])
def test_key_lengths(rng, device, dtype, form, causal):
    dt = DT[dtype]
    skv = 129
    lens = [0, 1, skv, 64, 7]
    q, k, v = qkv(rng, len(lens), 4, 2, 9, skv, 33, dt)
    kl = lens if form == "list" else np.array(lens, dtype=form)
    k[1, :, 1:] = np.nan  # keys past a sequence's length are never read
    v[1, :, 1:] = np.inf
    out, lse = sdpa(q, k, v, causal=causal, key_lengths=kl, device=device, return_lse=True)
    want, wlse = ref_sdpa(q, k, v, causal=causal, key_lengths=lens, return_lse=True)
    check(out, want, dt, skv, 33)
    check_lse(lse, wlse)
    assert np.all(host(out)[0] == 0) and np.all(np.isneginf(host(lse)[0]))  # length 0: zeros, lse -inf
    assert np.isfinite(host(out)[1:].astype(np.float32)).all()


# ---- strided inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_packed_qkv_views(rng, device, dtype):
    dt = DT[dtype]
    b, s, h, d = 2, 65, 3, 16
    packed = rand(rng, (b, s, 3, h, d), dt)  # one qkv projection [B, S, 3, H, D]
    q, k, v = (packed[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # [B, H, S, D] views
    assert not q.flags.c_contiguous and np.shares_memory(q, packed)
    saved = packed.copy()
    for causal in (False, True):
        out = sdpa(q, k, v, causal=causal, device=device)
        check(out, ref_sdpa(*(np.ascontiguousarray(t) for t in (q, k, v)), causal=causal), dt, s, d)
    assert np.array_equal(packed.view(np.uint8), saved.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["reversed", "stepped", "fortran", "broadcast_heads"])
def test_other_strides(rng, device, dtype, layout):
    dt = DT[dtype]
    q, k, v = qkv(rng, 2, 4, 2, 7, 63, 24, dt)
    if layout == "reversed":  # negative strides on the sequence and head_dim axes
        q, k, v = q[:, :, ::-1, ::-1], k[:, ::-1, ::-1], v[:, :, ::-1]
    elif layout == "stepped":  # non-multiple strides: every other element of wider arrays
        q = rand(rng, (2, 4, 14, 48), dt)[:, :, ::2, ::2]
        k = rand(rng, (2, 5, 63, 72), dt)[:, ::2][:, :2, :, ::3]
        v = rand(rng, (2, 2, 126, 24), dt)[:, :, 1::2]
    elif layout == "fortran":
        q, k, v = (np.asfortranarray(t) for t in (q, k, v))
    else:  # a zero-stride axis: one k/v head shared by reading it twice
        k = np.broadcast_to(k[:, :1], k.shape)
    out = sdpa(q, k, v, causal=True, device=device)
    check(out, ref_sdpa(*(np.ascontiguousarray(t) for t in (q, k, v)), causal=True), dt, k.shape[2], q.shape[3])


# ---- tensors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_inputs_return_tensors(rng, device, dtype):
    dt = DT[dtype]
    q, k, v = qkv(rng, 2, 4, 1, 7, 65, 16, dt)
    tq, tk, tv = (lc.Tensor(t, device=device, dtype=dtype) for t in (q, k, v))
    out, lse = sdpa(tq, tk, tv, causal=True, device=device, return_lse=True)
    assert isinstance(out, (lc.Tensor, lc.TensorView)) and out.device == device and out.dtype == dtype
    assert tuple(out.shape) == (2, 4, 7, 16)
    want, wlse = ref_sdpa(q, k, v, causal=True, return_lse=True)
    check(out, want, dt, 65, 16)
    check_lse(lse, wlse)
    # mixed: a tensor q with ndarray k, v (host operands of a GPU op are uploaded)
    check(sdpa(tq, k, v, causal=True, device=device), want, dt, 65, 16)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_tensor_views(rng, device, dtype):
    dt = DT[dtype]
    b, s, h, d = 2, 33, 4, 8
    packed = rand(rng, (b, s, 3, h, d), dt)
    tp = lc.Tensor(packed, device=device, dtype=dtype)
    st = (s * 3 * h * d, d, 3 * h * d, 1)  # [B, H, S, D] over the packed storage
    views = [tp.view((b, h, s, d), st, offset=i * h * d) for i in range(3)]
    assert not views[0].is_contiguous
    out = sdpa(*views, causal=True, device=device)
    want = ref_sdpa(*(np.ascontiguousarray(packed[:, :, i].transpose(0, 2, 1, 3)) for i in range(3)), causal=True)
    check(out, want, dt, s, d)


# ---- _into ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tensor_out", [False, True])
def test_into_writes_every_element(rng, device, dtype, tensor_out):
    dt = DT[dtype]
    q, k, v = qkv(rng, 2, 6, 3, 9, 63, 20, dt)
    lens = np.array([63, 30], np.int64)
    out = np.full(q.shape, np.nan, dt)
    lse = np.full(q.shape[:3], np.nan, np.float32)
    if tensor_out:
        out, lse = lc.Tensor(out, device=device, dtype=dtype), lc.Tensor(lse, device=device)
        q, k, v = (lc.Tensor(t, device=device, dtype=dtype) for t in (q, k, v))
    ret = sdpa_into(q, k, v, out, causal=True, key_lengths=lens, device=device, lse=lse)
    assert ret is out
    want, wlse = ref_sdpa(*(host(t) for t in (q, k, v)), causal=True, key_lengths=lens, return_lse=True)
    check(out, want, dt, 63, 20)
    check_lse(lse, wlse)
    out2 = np.full(want.shape, np.nan, dt)  # lse is optional
    sdpa_into(*(host(t) for t in (q, k, v)), out2, causal=True, key_lengths=lens, device=device)
    check(out2, want, dt, 63, 20)


# ---- non-finite values and hidden rows ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_stays_in_the_rows_that_see_it(rng, device, dtype):
    dt = DT[dtype]
    q, k, v = qkv(rng, 2, 4, 2, 9, 9, 16, dt)
    q[1, 3, 4, 5] = np.nan  # one query row
    k[0, 1, 6, 0] = np.nan  # one key: seen by causal rows >= 6 of heads 2, 3 of batch 0
    v[1, 0, 2, 7] = np.nan  # one value entry: seen by rows >= 2 of heads 0, 1 of batch 1, column 7
    out = host(sdpa(q, k, v, causal=True, device=device))
    want = ref_sdpa(q, k, v, causal=True)
    check(out, want, dt, 9, 16)
    bad = np.isnan(out.astype(np.float32))
    assert bad[1, 3, 4].all() and bad[0, 2:, 6:].all() and bad[1, :2, 2:, 7].all()
    assert bad.sum() == 16 + 2 * 3 * 16 + 2 * 7, "NaN reached rows that do not see it"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_v_across_query_blocks(rng, device, dtype, bad):
    """Sq = Skv = 200, D = 64, causal (four 64-row query blocks on the CPU; on CUDA the tensor-core kernels' vote
    on a diagonal tile's v for 16-bit, several tiles of the generic kernel for float32): v row 100 holds
    a NaN / Inf in column 3. Rows < 100 cannot see it and stay finite and within the bound, whichever block
    first learns that its key tile is not finite (the CPU caches that per call); rows >= 100 see it."""
    dt = DT[dtype]
    q, k, v = qkv(rng, 1, 2, 1, 200, 200, 64, dt)
    v[0, 0, 100, 3] = bad
    out = host(sdpa(q, k, v, causal=True, device=device))
    want = ref_sdpa(q, k, v, causal=True)
    o32 = out.astype(np.float32)
    assert np.all(np.isfinite(o32[:, :, :100])), "a hidden non-finite v reached a row that cannot see it"
    check(out[:, :, :100], want[:, :, :100], dt, 200, 64)
    assert np.all(~np.isfinite(o32[:, :, 100:, 3]))
    cols = [c for c in range(64) if c != 3]
    check(out[:, :, 100:][..., cols], want[:, :, 100:][..., cols], dt, 200, 64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fully_hidden_rows_are_zero(rng, device, dtype):
    dt = DT[dtype]
    q, k, v = qkv(rng, 2, 2, 2, 6, 10, 8, dt)
    m = np.ones((2, 1, 6, 10), bool)
    m[0, 0, 2] = False  # a bool-masked row
    add = np.zeros((2, 1, 6, 10), np.float32)
    add[1, 0, 3] = -np.inf  # a row of -inf scores
    for kw in (dict(attn_mask=m), dict(attn_mask=add), dict(key_lengths=[0, 10]),
               dict(causal=True, key_lengths=[3, 10])):  # causal rows i < Sq - L see nothing
        out, lse = sdpa(q, k, v, device=device, return_lse=True, **kw)
        want, wlse = ref_sdpa(q, k, v, return_lse=True, **kw)
        check(out, want, dt, 10, 8)
        check_lse(lse, wlse)
        zero_rows = np.isneginf(wlse)
        assert zero_rows.any() and np.all(host(out)[zero_rows] == 0)


@pytest.mark.parametrize("causal", [False, True])
def test_float64_inputs_compute_in_float32(rng, device, causal):
    q, k, v = qkv(rng, 1, 2, 1, 7, 33, 8, np.float64)
    out = sdpa(q, k, v, causal=causal, device=device)
    check(out, ref_sdpa(q, k, v, causal=causal), np.float32, 33, 8)


# ---- the seed wrappers ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq,hd", [(1, 1), (7, 33), (65, 64), (129, 7)])
@pytest.mark.parametrize("causal", [False, True])
def test_seed_wrappers_unchanged(rng, device, dtype, seq, hd, causal):
    dt = DT[dtype]
    q, k, v = (rand(rng, (seq, hd), dt) for _ in range(3))
    want = ref_attention(q, k, v, causal)
    a = lc.attention2d(q, k, v, causal, device)
    assert isinstance(a, np.ndarray) and a.shape == (seq, hd)
    check(a, want, dt, seq, hd)
    f = lc.attention_forward(q.ravel(), k.ravel(), v.ravel(), seq, hd, causal, device)
    assert f.shape == (seq * hd,)
    check(f.reshape(seq, hd), want, dt, seq, hd)
    out = np.full((seq, hd), np.nan, dt)
    assert lc.attention2d_into(q, k, v, out, causal, device) is out
    check(out, want, dt, seq, hd)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_seed_wrappers_agree_with_sdpa(rng, device, dtype, causal):
    dt = DT[dtype]
    q, k, v = (rand(rng, (65, 33), dt) for _ in range(3))
    a = lc.attention2d(q, k, v, causal, device)
    s = host(sdpa(q, k, v, causal=causal, device=device))  # the same op through the new API (rank 2)
    assert s.dtype == a.dtype and rel_err(a, s) <= 2 * sdpa_tol(dt, 65, 33)


# ---- bad inputs -------------------------------------------------------------------------------------


def _bad_cases(dt):
    q, k, v = (np.ones(s, dt) for s in ((2, 4, 5, 8), (2, 2, 6, 8), (2, 2, 6, 8)))
    other = np.float16 if dt != np.float16 else np.float32
    return [
        ("H % Hkv", ValueError, ("k", "q"), (q, np.ones((2, 3, 6, 8), dt), np.ones((2, 3, 6, 8), dt)), {}),
        ("k head_dim", ValueError, ("k",), (q, np.ones((2, 2, 6, 7), dt), v), {}),
        ("v head_dim", ValueError, ("v",), (q, k, np.ones((2, 2, 6, 7), dt)), {}),
        ("v seq", ValueError, ("v",), (q, k, np.ones((2, 2, 5, 8), dt)), {}),
        ("k batch", ValueError, ("k",), (q, np.ones((3, 2, 6, 8), dt), np.ones((3, 2, 6, 8), dt)), {}),
        ("D > 256", ValueError, ("q",), (np.ones((1, 1, 2, 257), dt),) + (np.ones((1, 1, 2, 257), dt),) * 2, {}),
        ("rank k", ValueError, ("k",), (q, k[0], v), {}),
        ("rank 5", ValueError, ("q",), (q[None], k[None], v[None]), {}),
        ("rank 1", ValueError, ("q",), (q[0, 0, 0], k[0, 0, 0], v[0, 0, 0]), {}),
        ("mask shape", ValueError, ("attn_mask",), (q, k, v), dict(attn_mask=np.ones((5, 7), bool))),
        ("mask rank", ValueError, ("attn_mask",), (q, k, v), dict(attn_mask=np.ones((1, 1, 1, 1, 6), bool))),
        ("mask heads", ValueError, ("attn_mask",), (q, k, v), dict(attn_mask=np.zeros((2, 3, 5, 6), np.float32))),
        ("mask dtype", TypeError, ("attn_mask",), (q, k, v), dict(attn_mask=np.zeros((5, 6), np.int32))),
        ("lengths count", ValueError, ("key_lengths",), (q, k, v), dict(key_lengths=[1, 2, 3])),
        ("lengths negative", ValueError, ("key_lengths",), (q, k, v), dict(key_lengths=[-1, 2])),
        ("lengths > Skv", ValueError, ("key_lengths",), (q, k, v), dict(key_lengths=np.array([7, 2], np.int32))),
        ("lengths float", TypeError, ("key_lengths",), (q, k, v), dict(key_lengths=np.array([1.0, 2.0]))),
        ("mixed k", TypeError, ("q", "k"), (q, k.astype(other), v), {}),
        ("mixed v", TypeError, ("q", "v"), (q, k, v.astype(other)), {}),
        ("list q", TypeError, ("q",), (q.tolist(), k, v), {}),
        ("int k", TypeError, ("k",), (q, k.astype(np.int32), v), {}),
        ("device", ValueError, ("device",), (q, k, v), dict(device="tpu")),
        ("scale nan", ValueError, ("scale",), (q, k, v), dict(scale=float("nan"))),
        ("scale 0", ValueError, ("scale",), (q, k, v), dict(scale=0.0)),
        ("scale str", TypeError, ("scale",), (q, k, v), dict(scale="1")),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_bad_inputs_name_the_argument(rng, dtype):
    dt = DT[dtype]
    for what, exc, names, args, kw in _bad_cases(dt):
        with pytest.raises(exc, match=named(*names)) as info:
            sdpa(*args, **kw)
        msg = str(info.value)
        assert NAME in msg or what == "device", (what, msg)
        assert "%" not in msg, (what, msg)  # every printf conversion formatted
        if what.startswith("mixed"):  # both arguments named
            assert all(re.search(named(n), msg) for n in names), (what, msg)
        out = np.full(np.shape(args[0]), np.nan, dt)
        with pytest.raises(exc, match=named(*names)):
            sdpa_into(*args, out, **kw)
        assert np.isnan(out.astype(np.float32)).all(), f"{what}: a refused call wrote to out"
    # the process stays usable
    q, k, v = qkv(rng, 1, 2, 1, 3, 5, 4, dt)
    check(sdpa(q, k, v, causal=True), ref_sdpa(q, k, v, causal=True), dt, 5, 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bad_out_and_lse(rng, dtype):
    dt = DT[dtype]
    q, k, v = qkv(rng, 1, 2, 1, 3, 5, 4, dt)
    good = np.full(q.shape, np.nan, dt)
    bad = [
        ("out", ValueError, np.full((1, 2, 3, 5), np.nan, dt), {}),
        ("out", TypeError, np.full(q.shape, np.nan, np.float64), {}),
        ("out", ValueError, np.lib.stride_tricks.as_strided(np.full(8, np.nan, dt), (1, 2, 3, 4), (0, 0, 0, dt.itemsize)),
         {}),  # elements overlap (a strided out that does not overlap is fine: test_strided_out_merges_heads)
        ("out", TypeError, [[0.0]], {}),
        ("lse", ValueError, good, dict(lse=np.full((1, 2, 4), np.nan, np.float32))),
        ("lse", TypeError, good, dict(lse=np.full((1, 2, 3), np.nan, np.float64))),
    ]
    for name, exc, out, kw in bad:
        with pytest.raises(exc, match=named(name)):
            sdpa_into(q, k, v, out, **kw)
        for buf in (out, kw.get("lse")):
            if isinstance(buf, np.ndarray):
                assert np.isnan(buf.astype(np.float64)).all(), f"{name}: a refused call wrote"
    sdpa_into(q, k, v, good)
    check(good, ref_sdpa(q, k, v), dt, 5, 4)


@pytest.mark.skipif(not CUDA, reason="no CUDA GPU here (lc.cuda_available() is False)")
def test_cuda_tensor_with_cpu_device_is_refused(rng):
    q, k, v = qkv(rng, 1, 2, 1, 3, 5, 4, np.float32)
    tq = lc.Tensor(q, device="cuda")
    with pytest.raises(ValueError, match="cuda"):
        sdpa(tq, k, v, device="cpu")
    check(sdpa(tq, k, v, device="cuda"), ref_sdpa(q, k, v), np.float32, 5, 4)


def test_graph_sdpa_op(rng, device):
    """The graph's sdpa op (op table entry, registry, planner, executor) against the reference."""
    q = rng.standard_normal((2, 4, 9, 32)).astype(np.float32)
    k = rng.standard_normal((2, 2, 13, 32)).astype(np.float32)
    v = rng.standard_normal((2, 2, 13, 32)).astype(np.float32)
    g = lc.Graph()
    g.output(g.sdpa(g.input("q", q.shape), g.input("k", k.shape), g.input("v", v.shape), causal=True))
    got = g.plan(device=device).run(q, k, v)[0]
    ref = ref_sdpa(q, k, v, causal=True)
    assert np.max(np.abs(got - ref)) <= sdpa_tol("float32", 13, 32) * max(1.0, np.max(np.abs(ref)))
    g2 = lc.Graph()
    with pytest.raises(ValueError, match="kv_heads"):
        g2.sdpa(g2.input("q", (2, 3, 9, 32)), g2.input("k", (2, 2, 13, 32)), g2.input("v", (2, 2, 13, 32)))


def test_strided_out_merges_heads(rng, device):
    """out may be the [B, H, S, D] view of a [B, S, H, D] buffer (heads merged for the output projection):
    written in place, gaps untouched; an overlapping view is refused naming out."""
    q = rng.standard_normal((2, 4, 7, 16)).astype(np.float32)
    k = rng.standard_normal((2, 2, 9, 16)).astype(np.float32)
    v = rng.standard_normal((2, 2, 9, 16)).astype(np.float32)
    ref = ref_sdpa(q, k, v, causal=True)
    buf = np.full((2, 7, 4 * 16 + 3), np.nan, np.float32)  # 3 poisoned columns after each row
    view = np.lib.stride_tricks.as_strided(buf, shape=(2, 4, 7, 16), strides=(buf.strides[0], 16 * 4, buf.strides[1], 4))
    if device == "cuda":
        tq, tk, tv = (lc.Tensor(x, device="cuda") for x in (q, k, v))
        tb = lc.Tensor(buf, device="cuda")
        tout = tb.view((2, 4, 7, 16), (7 * 67, 16, 67, 1), 0)
        lc.scaled_dot_product_attention_into(tq, tk, tv, tout, causal=True, device="cuda")
        got_buf = tb.numpy()
    else:
        lc.scaled_dot_product_attention_into(q, k, v, view, causal=True, device="cpu")
        got_buf = buf
    got = np.lib.stride_tricks.as_strided(got_buf, shape=(2, 4, 7, 16),
                                          strides=(got_buf.strides[0], 64, got_buf.strides[1], 4))
    assert np.max(np.abs(got - ref)) <= sdpa_tol("float32", 9, 16)
    assert np.all(np.isnan(got_buf[:, :, 64:]))
    bad = np.lib.stride_tricks.as_strided(np.zeros(64, np.float32), shape=(2, 4, 7, 16), strides=(0, 0, 0, 4))
    with pytest.raises(ValueError, match="out"):
        lc.scaled_dot_product_attention_into(q, k, v, bad, causal=True)
