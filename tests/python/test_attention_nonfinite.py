"""Causal attention with a NaN / +inf / -inf in one k or v row (docs/python_api.md, "causal"; issue 12 #6).

Query row i reads keys and values 0..i only: a non-finite value in row j of k or v must leave rows < j
exactly as they are without it (bit for bit the clean run's output, and the float64 reference of the clean
inputs), and rows >= j must show it as the float64 reference does (a NaN in v[j, c]: column c is NaN
from row j on; a NaN in k[j]: whole rows NaN; +-inf: as the reference says). A masked position is
skipped, never multiplied by p = 0 (0 * NaN = NaN), whatever the tiling: seq values straddle the
kernels' 64-row / 64-key tiles; on CUDA the key-split path of sdpa's generic kernel (its plan) runs for
the long sequences of test_cuda_key_split_masked_nonfinite.
Entry points: attention2d, attention_forward, AttentionSession, attention_forward_with_policy, the
planned graph's attention -> matmul (fused attention_projection and unfused), ConvAttentionSession and
the planned conv -> qkv -> attention_packed chain. "cuda" cases are skipped without a GPU.
"""
import math

import numpy as np
import pytest

import lightning_core as lc
from conftest import requires_cuda

SEQS = [1, 7, 63, 64, 65, 127, 128, 129, 257, 300]
KINDS = [("v", np.nan), ("v", np.inf), ("v", -np.inf), ("k", np.nan), ("k", np.inf), ("k", -np.inf)]
TOL = 1e-5


def _rows(seq):
    """Poisoned rows: the ends, the middle and the tile edges that exist at this seq."""
    return sorted({0, seq // 2, seq - 1} | {j for j in (40, 63, 64, 65, 128, 250) if j < seq})


def _inputs(rng, seq, d):
    return tuple(rng.standard_normal((seq, d)).astype(np.float32) for _ in range(3))


def _poisoned(q, k, v, which, j, col, val):
    k2, v2 = k.copy(), v.copy()
    (k2 if which == "k" else v2)[j, col] = val
    return q, k2, v2


def _check(out, clean, want, j, which, col, val, rel_err, tol=TOL):
    """out: the run on the poisoned inputs; clean: the same entry point on the clean inputs (checked
    against the reference by the caller); want: the float64 reference of the poisoned inputs."""
    out = np.asarray(out).reshape(clean.shape)
    assert np.isfinite(out[:j]).all(), f"{which}[{j}]={val}: non-finite values in rows before {j}"
    assert np.array_equal(out[:j], clean[:j]), f"{which}[{j}]={val}: rows before {j} changed"
    # rows >= j: finite elements close to the reference, non-finite ones exactly where it has them
    assert rel_err(out, want) < tol
    if which == "v" and math.isnan(val):
        assert np.isnan(out[j:, col]).all() and np.isfinite(np.delete(out[j:], col, axis=1)).all()
    if which == "k" and math.isnan(val):
        assert np.isnan(out[j:]).all()


def _sweep(run, rng, ref, rel_err, seq, d, rows=None, kinds=KINDS, tol=TOL):
    """run(q, k, v) -> [seq, d] causal attention through one entry point, on clean then poisoned inputs."""
    q, k, v = _inputs(rng, seq, d)
    clean = np.array(run(q, k, v), dtype=np.float32).reshape(seq, d)
    assert rel_err(clean, ref.attention(q, k, v, True)) < tol
    for which, val in kinds:
        for j in rows if rows is not None else _rows(seq):
            col = (7 * j + 3) % d
            qp, kp, vp = _poisoned(q, k, v, which, j, col, val)
            out = run(qp, kp, vp)
            _check(out, clean, ref.attention(qp, kp, vp, True), j, which, col, val, rel_err, tol)


# ---- the plain functions -----------------------------------------------------------------------------

@pytest.mark.parametrize("seq", SEQS)
@pytest.mark.parametrize("d", [7, 64, 100])
def test_attention2d_masked_nonfinite(device, rng, ref, rel_err, seq, d):
    _sweep(lambda q, k, v: lc.attention2d(q, k, v, True, device), rng, ref, rel_err, seq, d)


@pytest.mark.parametrize("d", [1, 16, 33, 48, 96, 128, 192, 256])
@pytest.mark.parametrize("seq", [65, 129, 300])
def test_attention2d_masked_nonfinite_head_dims(device, rng, ref, rel_err, seq, d):
    # every CUDA configuration (padded head_dim 16 .. 256) and CPU vector tail
    _sweep(lambda q, k, v: lc.attention2d(q, k, v, True, device), rng, ref, rel_err, seq, d,
           rows=sorted({0, 40, 64, seq - 1}))


@pytest.mark.parametrize("seq", [64, 257])
def test_attention_forward_flat_masked_nonfinite(device, rng, ref, rel_err, poison, seq):
    d = 16

    def run(q, k, v):
        out = poison(seq * d)
        assert lc.attention_forward_into(q.ravel(), k.ravel(), v.ravel(), out, seq, d, True, device) is out
        flat = lc.attention_forward(q.ravel(), k.ravel(), v.ravel(), seq, d, True, device)
        assert np.array_equal(flat, out, equal_nan=True)
        return out

    _sweep(run, rng, ref, rel_err, seq, d)


def test_issue_example_v40_seq64(rng, ref):
    # The reported case: v[40, 0] = NaN with seq 64 made all 64 rows NaN (and seq 257, v[250]: 58 rows
    # before 250).
    for seq, j in [(64, 40), (257, 250), (257, 128)]:
        q, k, v = _inputs(rng, seq, 16)
        v[j, 0] = np.nan
        y = lc.attention2d(q, k, v, True)
        assert not np.isnan(y[:j]).any()
        assert np.isnan(y[j:, 0]).all() and not np.isnan(y[j:, 1:]).any()


def test_unmasked_nonfinite_is_never_lost(rng):
    # Without the mask every row sees every key: one NaN in v or k reaches all rows.
    q, k, v = _inputs(rng, 70, 8)
    v[69, 2] = np.nan
    y = lc.attention2d(q, k, v, False)
    assert np.isnan(y[:, 2]).all() and not np.isnan(np.delete(y, 2, axis=1)).any()
    k[69, 0] = np.nan
    assert np.isnan(lc.attention2d(q, k, v, False)).all()
    # causal: the last row sees v[69]
    y = lc.attention2d(q, k, v * 1, True)
    assert np.isnan(y[69]).all() and not np.isnan(y[:69]).any()


@requires_cuda
@pytest.mark.parametrize("seq,d", [(1000, 64), (600, 16), (700, 128)])
def test_cuda_key_split_masked_nonfinite(rng, ref, rel_err, seq, d):
    # attention runs sdpa's generic kernel, whose plan (shapes and SM count only) splits the keys of these
    # shapes across blocks (few query tiles, >= 8 key tiles): the partials and their merge must not let a
    # masked v row in either.
    paths = []

    def run(q, k, v):
        y = lc.attention2d(q, k, v, True, "cuda")
        paths.append(lc.last_dispatch()["path"])
        return y

    _sweep(run, rng, ref, rel_err, seq, d, rows=sorted({0, 40, 63, 64, 65, seq // 2, seq - 1}))
    assert set(paths) == {"cuda_sdpa_split_f32"}, paths


@requires_cuda
def test_cuda_long_causal_masked_nonfinite(rng):
    # head_dim 64 from seq 8192 (causal: 4096 keys a row on average) runs sdpa's 128-row query tiles: their
    # last key tile is wholly masked for the tile's first 64 rows. No float64 reference at this size: rows
    # before j must be bit-identical to the clean run (the plan depends on the shapes only).
    seq, d = 8200, 64
    q, k, v = _inputs(rng, seq, d)
    clean = lc.attention2d(q, k, v, True, "cuda")
    assert np.isfinite(clean).all()
    for j in (100, 8064 + 64 + 5, seq - 1):
        for which in ("v", "k"):
            qp, kp, vp = _poisoned(q, k, v, which, j, 5, np.nan)
            out = lc.attention2d(qp, kp, vp, True, "cuda")
            assert np.array_equal(out[:j], clean[:j]), (which, j)
            if which == "v":
                assert np.isnan(out[j:, 5]).all() and np.isfinite(np.delete(out[j:], 5, axis=1)).all()
            else:
                assert np.isnan(out[j:]).all()


# ---- sessions ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seq", [7, 64, 65, 129, 257])
def test_attention_session_masked_nonfinite(device, rng, ref, rel_err, poison, seq):
    d = 16
    s = lc.AttentionSession(seq, d, True, device)

    def run(q, k, v):
        out = poison((seq * d,))
        s.forward_into(q.ravel(), k.ravel(), v.ravel(), out)
        return out

    _sweep(run, rng, ref, rel_err, seq, d)


@pytest.mark.parametrize("seq", [64, 129])
def test_attention_forward_with_policy_masked_nonfinite(device, rng, ref, rel_err, seq):
    d = 32
    _sweep(lambda q, k, v: lc.attention_forward_with_policy(q, k, v, seq, d, True, device), rng, ref, rel_err, seq, d)


# ---- planned graphs: attention -> matmul (attention_projection) ----------------------------------------

@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("seq,d,pn", [(64, 16, 24), (129, 32, 8), (257, 8, 130)])
def test_graph_attention_projection_masked_nonfinite(device, rng, ref, rel_err, fuse, seq, d, pn):
    wp = rng.standard_normal((d, pn)).astype(np.float32)
    g = lc.Graph()
    a = g.attention(g.input("q", (seq, d)), g.input("k", (seq, d)), g.input("v", (seq, d)), causal=True)
    g.output(g.matmul(a, g.constant("wp", wp)))
    p = g.plan(device=device, fuse=fuse)
    fired = [e["rule"] for e in p.explain() if e["fired"]]
    assert ("attention_projection" in fired) == (fuse and (device == "cpu" or pn <= 128))
    q, k, v = _inputs(rng, seq, d)
    clean = p.run(q, k, v)[0]
    assert rel_err(clean, ref.attention(q, k, v, True) @ wp) < 3e-5
    for which, val in KINDS:
        for j in sorted({j for j in (0, 40, 63, 64, 65, seq - 1) if j < seq}):
            col = (7 * j + 3) % d
            qp, kp, vp = _poisoned(q, k, v, which, j, col, val)
            out = p.run(qp, kp, vp)[0]
            assert np.isfinite(out[:j]).all() and np.array_equal(out[:j], clean[:j]), (which, j, val)
            with np.errstate(invalid="ignore"):
                want = ref.attention(qp, kp, vp, True) @ wp
            assert rel_err(out, want) < 3e-5
            if math.isnan(val):
                assert np.isnan(out[j:]).all()  # the NaN column reaches every output column


# ---- conv -> attention (ConvAttentionSession, planned conv -> qkv_pack_repeat -> attention_packed) ------

# batch 3 and out_ch·h·w = seq·d: the conv output of image 0 is q, of image 1 k, of image 2 v (no repeat).
CONV_SHAPES = [(64, 8, 2, 8, 8, 8), (65, 8, 2, 8, 5, 13), (129, 16, 2, 16, 3, 43)]  # seq, d, c, oc, h, w


def _conv_qkv(ref, x, w, b, seq, d):
    y = ref.conv2d(x, w, b, 1, 1, 1, 1, apply_relu=True).ravel()
    return tuple(y[i * seq * d:(i + 1) * seq * d].reshape(seq, d) for i in range(3))


@pytest.mark.parametrize("path", ["session", "graph"])
@pytest.mark.parametrize("seq,d,c,oc,h,w", CONV_SHAPES)
def test_conv_attention_masked_nonfinite(device, rng, ref, rel_err, poison, path, seq, d, c, oc, h, w):
    x = rng.random((3, c, h, w)).astype(np.float32)
    wt = (rng.random((oc, c, 3, 3)) - 0.5).astype(np.float32)
    bias = (rng.random(oc) - 0.5).astype(np.float32)
    if path == "session":
        s = lc.ConvAttentionSession(3, c, h, w, oc, seq, d, causal=True, device=device)

        def run(xx):
            out = poison((seq, d))
            s.start_into(xx, wt, bias, out)
            return out
    else:
        g = lc.Graph()
        conv = g.conv2d(g.input("x", x.shape), g.constant("w", wt), g.constant("b", bias), pad_h=1, pad_w=1)
        g.output(g.attention_packed(g.qkv_pack_repeat(g.relu(conv), seq, d), causal=True))
        plan = g.plan(device=device)

        def run(xx):
            return plan.run(xx)[0]

    clean = run(x)
    assert rel_err(clean, ref.attention(*_conv_qkv(ref, x, wt, bias, seq, d), True)) < 3e-5
    qc, kc, vc = _conv_qkv(ref, x, wt, bias, seq, d)
    for image in (1, 2):  # a non-finite pixel in image 1 reaches k rows, in image 2 v rows
        for val in (np.nan, np.inf):
            xp = x.copy()
            xp[image, 0, h // 2, w // 2] = val
            qp, kp, vp = _conv_qkv(ref, xp, wt, bias, seq, d)
            # The first row the poison changes at all: an Inf times a negative weight is -Inf, which the
            # ReLU turns into a finite 0, so a row can change without becoming non-finite.
            new, old = (kp, kc) if image == 1 else (vp, vc)
            poisoned = ~((new == old) | (np.isnan(new) & np.isnan(old)))
            j = int(np.argwhere(poisoned.any(axis=1))[0, 0]) if poisoned.any() else seq
            assert 0 < j < seq  # the shapes put the first poisoned row mid-sequence
            out = run(xp)
            assert np.isfinite(out[:j]).all() and np.array_equal(out[:j], clean[:j]), (image, val, j)
            assert rel_err(out, ref.attention(qp, kp, vp, True)) < 3e-5
