"""lc.prefetch (lc_tensor_prefetch): the cache hint. It changes no value, so what is checked is that it takes
what it should (tensors, strided views, up to 8, one device), refuses what it should with a clear error,
leaves every byte as it was, runs inside a captured graph, and that the model runner's use of it (decode with
LC_MODELS_PREFETCH_MB / model.prefetch_mb) gives the tokens of a run without it. Its speed is judged by the
models benchmark (docs/benchmarks.md), never here."""
import numpy as np
import pytest

import lightning_core as lc
from lightning_core.models import load
from lightning_core.models.make_random import make_random


def _tensors(device):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((37, 129)).astype(np.float32)
    t = lc.Tensor(a, device=device)
    b = lc.Tensor(rng.standard_normal(1001).astype(np.float32), device=device)
    return a, t, b


def test_prefetch_takes_tensors_and_views(device):
    a, t, b = _tensors(device)
    before = t.numpy().copy()
    assert lc.prefetch(t) is None
    assert lc.prefetch() is None  # nothing to do
    # a transposed view, a strided slice (gaps in the span), a one-element view, 8 tensors at once
    lc.prefetch(lc.transpose(t, 0, 1), t.view((5, 3), (258, 2), 7), t.view((1,), None, 4000), b)
    lc.prefetch(*([t, b] * 4))
    if device == "cuda":
        lc.synchronize("cuda")
    np.testing.assert_array_equal(t.numpy(), before)
    np.testing.assert_array_equal(t.numpy(), a)


def test_prefetch_bad_inputs(device):
    _, t, _ = _tensors(device)
    with pytest.raises(TypeError, match=r"prefetch: tensors\[1\]: expected a lightning_core Tensor, got numpy.ndarray"):
        lc.prefetch(t, np.zeros(3))
    with pytest.raises(ValueError, match="prefetch: tensors: expected at most 8 tensors, got 9"):
        lc.prefetch(*([t] * 9))
    with pytest.raises(TypeError):
        lc.prefetch(t, device="cuda")  # no keywords
    lc.prefetch(t)  # still usable


@pytest.mark.skipif(not lc.cuda_available(), reason="needs a CUDA device")
def test_prefetch_devices_must_agree():
    c = lc.Tensor(np.ones(8, np.float32))
    g = lc.Tensor(np.ones(8, np.float32), device="cuda")
    with pytest.raises(ValueError, match=r"tensors\[1\]: expected device cuda"):
        lc.prefetch(g, c)


@pytest.mark.skipif(not lc.cuda_available(), reason="needs a CUDA device")
def test_prefetch_in_a_captured_graph():
    """Between two kernels of a captured graph (its PDL wait keeps their order): the result of the pair is the
    one without it, replay after replay."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((64, 96)).astype(np.float32)
    xt = lc.Tensor(x, device="cuda")
    w = lc.Tensor(rng.standard_normal((96, 40)).astype(np.float32), device="cuda")
    y = lc.Tensor((64, 96), device="cuda", dtype="float32")
    out = lc.Tensor((64, 40), device="cuda", dtype="float32")

    def step():
        lc.relu_into(xt, y, "cuda")
        lc.prefetch(w, xt)
        lc.linear_into(y, w, out, None, "none", "cuda")

    step()
    want = out.numpy().copy()
    g = lc.capture_graph(step)
    for _ in range(3):
        out.copy_from(np.full((64, 40), np.nan, np.float32))  # poisoned before each replay
        g.replay()
        np.testing.assert_array_equal(out.numpy(), want)
    ref = np.maximum(x.astype(np.float64), 0) @ w.numpy().astype(np.float64)
    assert np.max(np.abs(want - ref)) <= 1e-5 * np.max(np.abs(ref)) * 96 ** 0.5


@pytest.fixture(scope="module", params=("gpt2", "llama"))
def folder(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    make_random(str(d), arch=request.param, size="tiny", seed=5)
    return str(d)


def test_prefetch_budget_from_env(folder, monkeypatch):
    monkeypatch.setenv("LC_MODELS_PREFETCH_MB", "12.5")
    assert load(folder).prefetch_mb == 12.5
    monkeypatch.setenv("LC_MODELS_PREFETCH_MB", "lots")
    with pytest.raises(ValueError, match="LC_MODELS_PREFETCH_MB: expected a number of MiB, got 'lots'"):
        load(folder)


def test_prefetch_plan(folder):
    """The weights a layer's decode prefetches: those used after its attention, in order, whole tensors while the
    budget holds (the last layer has no next qkv)."""
    m = load(folder)
    mlp = ("w_fc", "w_proj") if m.arch == "gpt2" else ("w_gu", "w_down")
    n = len(m.layers)
    for mb, want in ((0, 0), (1e6, 4)):
        m.prefetch_mb = mb
        for i, L in enumerate(m.layers):
            got = m._prefetch_list(L)
            full = [L["w_o"], L[mlp[0]], L[mlp[1]]] + ([m.layers[i + 1]["w_qkv"]] if i + 1 < n else [])
            assert [id(t) for t in got] == [id(t) for t in full[:want]]
    m.prefetch_mb = (m.layers[0]["w_o"].nbytes + m.layers[0][mlp[0]].nbytes) / 2.0 ** 20  # exactly two fit
    assert len(m._prefetch_list(m.layers[0])) == 2
    third = m.layers[0][mlp[1]]
    es = third.nbytes // third.numel
    m.PREFETCH_MIN_PART = 4096 * es  # (the tiny model's weights are far below the 1 MiB default)
    m.prefetch_mb += 4096 * es * 1.5 / 2.0 ** 20  # and one and a half groups of 4096 elements of the third
    got = m._prefetch_list(m.layers[0])
    assert len(got) == 3 and got[2].shape == (4096,) and got[2].offset == third.offset
    m.prefetch_mb -= 4096 * es / 2.0 ** 20  # half a group: below the smallest part
    assert len(m._prefetch_list(m.layers[0])) == 2


@pytest.mark.skipif(not lc.cuda_available(), reason="needs a CUDA device")
def test_prefetch_decode_tokens_unchanged(folder):
    """CUDA decode with every following weight prefetched (eager and graph-replayed) gives the tokens of the run
    without prefetch."""
    prompts = [[1, 2, 3, 4, 5], [7, 8]]
    base = load(folder, device="cuda", dtype="bfloat16")
    want = base.generate(prompts, 12)
    m = load(folder, device="cuda", dtype="bfloat16")
    m.prefetch_mb = 1e6
    assert m.generate(prompts, 12, graph=False) == want
    assert m.generate(prompts, 12) == want
