"""float32 attention on tensor cores with 3xTF32 products (src/backend/cuda/sdpa_tf32.cu), through
lc.scaled_dot_product_attention on CUDA (skipped without a GPU).

LC_SDPA_F32=tc sends every float32 shape the kernel takes there (the default rule also asks that its 64-row
query tiles fill the GPU); each case checks the path (sdpa_tf32x3_*) and the float32 bound of
testing.sdpa_tol against the float64 reference on fresh random inputs (the issue's 1e-5 at S = 1k): head dims
64 and 128, awkward Sq/Skv (1, 17, 63, 65, 129, 1000), GQA and MQA, causal with Sq < Skv, Sq = Skv and
Sq > Skv (rows with no key: zeros, lse -inf), key_lengths int32/int64 including 0, 1 and Skv, return_lse, a
negative and a small scale, large scores, strided [B, S, H, D] views of one packed projection and a strided
out, NaN-poisoned out. Every variant of the kernel (LC_SDPA_TF32_VARIANT) runs the short cases. Non-finite
inputs take the kernel's CUDA-core tiles: NaN/Inf in v hidden by the diagonal across query tiles, visible Inf
in v (Inf, not NaN), NaN in one query row, a k entry of -inf whose scores are -inf (the key hidden, as in
the reference) — the output matches the reference's non-finite entries exactly. What the kernel does not
take (head_dim 96, a mask, a window, misaligned strides) runs the generic kernel (path checked), and
LC_SDPA_F32=simt gives the generic kernel the same call (both within the bound).
"""
import math

import numpy as np
import pytest

import lightning_core as lc
from conftest import CUDA
from lightning_core.testing import as_host as host
from lightning_core.testing import check_sdpa as check
from lightning_core.testing import mismatch, ref_sdpa, rel_err

pytestmark = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
F32 = np.float32
VARIANTS = {64: [0, 1, 5, 6, 7], 128: [2, 3, 4]}  # sdpa_tf32.cu's list, by head_dim


@pytest.fixture
def tc(monkeypatch):
    monkeypatch.setenv("LC_SDPA_F32", "tc")
    return monkeypatch


def rand(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(F32)


def run(q, k, v, lse=False, **kw):
    """sdpa on CUDA into a NaN-poisoned out (and lse); returns (out on the host, lse or None, path)."""
    tq, tk, tv = (lc.Tensor(x, device="cuda") if isinstance(x, np.ndarray) else x for x in (q, k, v))
    out = lc.Tensor(np.full(tq.shape, np.nan, F32), device="cuda")
    tl = lc.Tensor(np.full(tq.shape[:3], np.nan, F32), device="cuda") if lse else None
    lc.scaled_dot_product_attention_into(tq, tk, tv, out, device="cuda", lse=tl, **kw)
    path = lc.last_dispatch()["path"]
    return host(out), (host(tl) if lse else None), path


CASES = [  # b, h, hkv, sq, skv, d, causal
    (1, 2, 2, 17, 17, 64, False),
    (2, 4, 2, 65, 129, 64, True),  # GQA, Sq < Skv: the diagonal at the end of the keys
    (1, 4, 1, 129, 65, 128, True),  # MQA, Sq > Skv: the first 64 rows see no key
    (2, 2, 2, 63, 1000, 128, False),
    (1, 3, 3, 1000, 1000, 64, True),
    (1, 2, 1, 200, 200, 128, True),
]


def ids(c):
    return "x".join(map(str, c[:6])) + ("c" if c[6] else "")


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_matches_reference(rng, tc, case):
    b, h, hkv, sq, skv, d, causal = case
    q, k, v = rand(rng, (b, h, sq, d)), rand(rng, (b, hkv, skv, d)), rand(rng, (b, hkv, skv, d))
    out, lse, path = run(q, k, v, lse=True, causal=causal)
    assert path.startswith("sdpa_tf32x3_"), path
    want, wlse = ref_sdpa(q, k, v, causal=causal, return_lse=True)
    err = check(out, want, F32, skv, d)
    if sq >= 1000:
        assert err <= 1e-5, err  # the float32 accuracy
    assert np.array_equal(np.isneginf(lse), np.isneginf(wlse))
    fin = np.isfinite(wlse)
    np.testing.assert_allclose(lse[fin], wlse[fin], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("d", [64, 128])
def test_every_variant(rng, tc, d):
    q, k, v = rand(rng, (2, 4, 129, d)), rand(rng, (2, 2, 300, d)), rand(rng, (2, 2, 300, d))
    want = ref_sdpa(q, k, v, causal=True)
    names = set()
    for var in VARIANTS[d]:
        tc.setenv("LC_SDPA_TF32_VARIANT", str(var))
        out, _, path = run(q, k, v, causal=True)
        assert path.startswith("sdpa_tf32x3_d%d" % d), path
        names.add(path)
        check(out, want, F32, 300, d)
    assert len(names) == len(VARIANTS[d])
    tc.setenv("LC_SDPA_TF32_VARIANT", str(VARIANTS[128 if d == 64 else 64][0]))  # the other head_dim's
    with pytest.raises(RuntimeError):
        run(q, k, v, causal=True)
    tc.delenv("LC_SDPA_TF32_VARIANT")
    out, _, _ = run(q, k, v, causal=True)  # the process stays usable
    check(out, want, F32, 300, d)


@pytest.mark.parametrize("kl_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("causal", [False, True])
def test_key_lengths(rng, tc, kl_dtype, causal):
    b, h, sq, skv, d = 4, 2, 70, 130, 64
    q, k, v = rand(rng, (b, h, sq, d)), rand(rng, (b, h, skv, d)), rand(rng, (b, h, skv, d))
    lens = np.array([130, 1, 0, 77], kl_dtype)
    out, lse, path = run(q, k, v, lse=True, causal=causal, key_lengths=lens)
    assert path.startswith("sdpa_tf32x3_"), path
    want, wlse = ref_sdpa(q, k, v, causal=causal, key_lengths=lens, return_lse=True)
    check(out, want, F32, skv, d)
    assert np.array_equal(np.isneginf(lse), np.isneginf(wlse))
    assert np.all(out[2] == 0)  # length 0: every row sees nothing


@pytest.mark.parametrize("scale", [-0.3, 0.01, 0.5])
def test_custom_scale(rng, tc, scale):
    q, k, v = rand(rng, (1, 2, 100, 128)), rand(rng, (1, 2, 150, 128)), rand(rng, (1, 2, 150, 128))
    out, _, path = run(q, k, v, causal=True, scale=scale)
    assert path.startswith("sdpa_tf32x3_"), path
    check(out, ref_sdpa(q, k, v, causal=True, scale=scale), F32, 150, 128)


@pytest.mark.parametrize("d", [64, 128])
def test_large_scores(rng, tc, d):
    """Scores of several hundred (exp overflows without the max shift): q scaled by 8, as test_sdpa's case,
    within sdpa_tol. With q and k both scaled by 8 (|score| ~ 200) the 3xTF32 products' error (<= 2.5·2^-21 of
    |q_d·k_d| each, against float32's 2^-24) shows in the peaked softmax: the output stays within the issue's
    float32 accuracy of 1e-5, while it may exceed sdpa_tol's bound, which assumes float32 products."""
    q, k, v = rand(rng, (1, 2, 100, d), 8.0), rand(rng, (1, 2, 150, d)), rand(rng, (1, 2, 150, d))
    out, _, path = run(q, k, v, causal=True)
    assert path.startswith("sdpa_tf32x3_"), path
    check(out, ref_sdpa(q, k, v, causal=True), F32, 150, d)
    k8 = k * np.float32(8)
    out, _, _ = run(q, k8, v, causal=True, scale=0.3 / math.sqrt(d))
    want = ref_sdpa(q, k8, v, causal=True, scale=0.3 / math.sqrt(d))
    assert mismatch(out, want) is None and rel_err(out, want) <= 1e-5, rel_err(out, want)


def test_packed_views_and_strided_out(rng, tc):
    b, s, h, d = 2, 97, 4, 64
    packed = rand(rng, (b, s, 3, h, d))
    tp = lc.Tensor(packed, device="cuda")
    st = (s * 3 * h * d, d, 3 * h * d, 1)  # [B, H, S, D] over the packed storage
    q, k, v = (tp.view((b, h, s, d), st, offset=i * h * d) for i in range(3))
    big = lc.Tensor(np.full((b, s, h, 2 * d), np.nan, F32), device="cuda")
    out = big.view((b, h, s, d), (s * h * 2 * d, 2 * d, h * 2 * d, 1))  # heads merged into [B, S, H, 2D]
    lc.scaled_dot_product_attention_into(q, k, v, out, causal=True, device="cuda")
    assert lc.last_dispatch()["path"].startswith("sdpa_tf32x3_")
    want = ref_sdpa(*(np.ascontiguousarray(packed[:, :, i].transpose(0, 2, 1, 3)) for i in range(3)), causal=True)
    got = host(big)
    check(np.ascontiguousarray(got[..., :d].transpose(0, 2, 1, 3)), want, F32, s, d)
    assert np.isnan(got[..., d:]).all()  # the gaps of the strided out are untouched


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_v_hidden_by_the_diagonal(rng, tc, bad):
    q, k, v = rand(rng, (1, 2, 300, 64)), rand(rng, (1, 1, 300, 64)), rand(rng, (1, 1, 300, 64))
    v[0, 0, 150, 3] = bad
    out, _, path = run(q, k, v, causal=True)
    assert path.startswith("sdpa_tf32x3_"), path
    want = ref_sdpa(q, k, v, causal=True)
    assert np.all(np.isfinite(out[:, :, :150])), "a hidden non-finite v reached a row that cannot see it"
    check(out, want, F32, 300, 64)  # NaN / +-Inf exactly where the reference has them


def test_nonfinite_q_and_k(rng, tc):
    q, k, v = rand(rng, (1, 2, 130, 128)), rand(rng, (1, 2, 130, 128)), rand(rng, (1, 2, 130, 128))
    q[0, 0, 70, 5] = np.nan  # one query row
    k[0, 1, 40, :] = 0.0
    k[0, 1, 40, 0] = -np.inf  # its scores: -inf where q[.., 0] > 0 (key hidden), +inf or NaN elsewhere
    out, _, path = run(q, k, v)
    assert path.startswith("sdpa_tf32x3_"), path
    want = ref_sdpa(q, k, v)
    check(out, want, F32, 130, 128)
    assert np.isnan(out[0, 0, 70]).all() and np.isfinite(out[0, 0, :70]).all()


@pytest.mark.parametrize("d", [64, 128])
def test_same_call_on_the_generic_kernel(rng, monkeypatch, d):
    q, k, v = rand(rng, (2, 4, 257, d)), rand(rng, (2, 2, 257, d)), rand(rng, (2, 2, 257, d))
    want = ref_sdpa(q, k, v, causal=True)
    monkeypatch.setenv("LC_SDPA_F32", "tc")
    a, _, pa = run(q, k, v, causal=True)
    monkeypatch.setenv("LC_SDPA_F32", "simt")
    b, _, pb = run(q, k, v, causal=True)
    assert pa.startswith("sdpa_tf32x3_") and not pb.startswith("sdpa_tf32x3_"), (pa, pb)
    check(a, want, F32, 257, d)
    check(b, want, F32, 257, d)


def test_default_rule_takes_large_prefills(rng, monkeypatch):
    monkeypatch.delenv("LC_SDPA_F32", raising=False)
    q, k, v = rand(rng, (1, 32, 512, 64)), rand(rng, (1, 32, 512, 64)), rand(rng, (1, 32, 512, 64))
    out, _, path = run(q, k, v, causal=True)
    assert path.startswith("sdpa_tf32x3_"), path  # 8 x 32 = 256 blocks fill an H100/H200
    check(out, ref_sdpa(q, k, v, causal=True), F32, 512, 64)
    q1 = rand(rng, (1, 1, 64, 64))
    _, _, path = run(q1, k[:, :1], v[:, :1])
    assert not path.startswith("sdpa_tf32x3_"), path  # one block: the generic kernel splits the keys


@pytest.mark.parametrize("what", ["head_dim", "mask", "window", "stride"])
def test_what_it_does_not_take(rng, tc, what):
    d = 96 if what == "head_dim" else 64
    q, k, v = rand(rng, (1, 2, 70, d)), rand(rng, (1, 2, 70, d)), rand(rng, (1, 2, 70, d))
    kw = {"causal": True}
    if what == "mask":
        kw = {"attn_mask": rng.standard_normal((70, 70)).astype(F32)}
    if what == "window":
        kw["window"] = 9
    if what == "stride":  # rows of 66 floats: not 16-byte aligned
        tq = lc.Tensor(np.pad(q, ((0, 0), (0, 0), (0, 0), (0, 2))), device="cuda")
        q = tq.view(q.shape, (2 * 70 * 66, 70 * 66, 66, 1))
    out, _, path = run(q, k, v, **kw)
    assert not path.startswith("sdpa_tf32x3_"), path
    check(out, ref_sdpa(host(q), k, v, **kw), F32, 70, d)


@pytest.mark.parametrize("fused", [False, True])
def test_kv_cache_prefill_chunks(rng, tc, fused):
    """A float32 KVCache filled in chunks of > 16 tokens (each chunk's attention on the 3xTF32 kernel with the
    cache's device lengths as key_lengths; the append kernel first, or in the same call with k_new/v_new),
    then single-token decode steps, against full causal attention."""
    b, h, hkv, d, max_seq = 2, 4, 2, 64, 200
    chunks = [70, 33, 1, 65, 1]
    s = sum(chunks)
    q, k, v = rand(rng, (b, h, s, d)), rand(rng, (b, hkv, s, d)), rand(rng, (b, hkv, s, d))
    full = ref_sdpa(q, k, v, causal=True)
    cache = lc.KVCache(b, hkv, max_seq, d, dtype="float32", device="cuda")
    pos = 0
    for t in chunks:
        out = np.full((b, h, t, d), np.nan, F32)
        qc, kc, vc = q[:, :, pos:pos + t], k[:, :, pos:pos + t], v[:, :, pos:pos + t]
        if fused:
            cache.attention_into(qc, out, causal=True, k_new=kc, v_new=vc)
        else:
            cache.append(kc, vc)
            cache.attention_into(qc, out, causal=True)
        path = lc.last_dispatch()["path"]
        assert path.startswith("sdpa_tf32x3_") == (t > 16), (t, path)
        pos += t
        check(out, full[:, :, pos - t:pos], F32, pos, d)
