"""The model runner (lightning_core.models.engine) against the float64 reference forward
(lightning_core.testing.ref_models) on make_random checkpoints: logits of the full forward and of a
cached forward (prefill + token-by-token), greedy generation token-identical to the reference in float32,
a batch of prompts of different lengths equal to one-by-one generation, bfloat16 within its tolerance, a
sliding window (Mistral; cache-less, cached prefill + decode and generation far past the window exact), and
bad inputs. Tolerance: logits are sums over d (and the vocabulary projection) of float32 products, several
layers deep; 2e-4 relative to the logits' scale covers float32 with a wide margin and still fails on any
layout, scaling or masking mistake (those move logits by O(1)). bfloat16 (u = 2^-8 per stored weight and
activation) gets 0.1 of the scale."""
import numpy as np
import pytest

import lightning_core as lc
from lightning_core.models import load
from lightning_core.models.make_random import make_random
from lightning_core.testing.ref_models import ref_forward, ref_generate

ARCHS = ("gpt2", "llama", "qwen2")


@pytest.fixture(scope="module", params=ARCHS)
def folder(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    make_random(str(d), arch=request.param, size="tiny", seed=5)
    return request.param, str(d)


def _host(t):
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def _close(got, want, rel):
    scale = np.max(np.abs(want))
    err = np.max(np.abs(got.astype(np.float64) - want))
    assert np.all(np.isfinite(got)) and err <= rel * scale, (err, scale)


def test_forward_matches_reference(folder, device):
    arch, path = folder
    model = load(path, device=device)
    ref_model = lc.models.load_checkpoint(path)
    ids = np.random.default_rng(0).integers(0, model.vocab, (2, 11))
    got = _host(model(ids))
    _close(got, ref_forward(*ref_model, ids), 2e-4)


def test_cached_forward_matches_full(folder, device):
    _, path = folder
    model = load(path, device=device)
    cfg, t = lc.models.load_checkpoint(path)
    ids = np.random.default_rng(1).integers(0, model.vocab, (2, 9))
    want = ref_forward(cfg, t, ids)
    cache = model.new_cache(2, 16)
    parts = [_host(model.forward(ids[:, :5], cache=cache))]
    for j in range(5, 9):
        parts.append(_host(model.forward(ids[:, j:j + 1], cache=cache)))
    _close(np.concatenate(parts, axis=1), want, 2e-4)
    assert list(cache[0].lengths) == [9, 9]


def test_greedy_generation_token_identical(folder, device):
    _, path = folder
    model = load(path, device=device)
    cfg, t = lc.models.load_checkpoint(path)
    prompt = [5, 17, 3, 99, 42]
    assert model.generate(prompt, 12) == ref_generate(cfg, t, prompt, 12)


def test_batched_generation_equals_one_by_one(folder, device):
    _, path = folder
    model = load(path, device=device)
    prompts = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [4, 4, 4, 1]]
    batched = model.generate(prompts, 6)
    assert batched == [model.generate(p, 6) for p in prompts]
    seen = []
    model.generate(prompts, 3, stream=lambda step, toks: seen.append((step, toks)))
    assert [s for s, _ in seen] == [0, 1, 2] and all(len(t) == 3 for _, t in seen)


def test_stop_ids(folder):
    _, path = folder
    model = load(path)
    full = model.generate([3, 1, 4], 8)
    new = full[3:]
    k = next((i for i in range(1, len(new)) if new[i] not in new[:i]), None)  # a token first seen at step k
    if k is None:
        pytest.skip("the greedy continuation repeats one token")
    assert model.generate([3, 1, 4], 8, stop_ids=(new[k],)) == full[:3 + k + 1]
    assert model.generate([3, 1, 4], 8, stop_ids=(new[0],)) == full[:4]


def test_bfloat16(folder, device):
    _, path = folder
    model = load(path, device=device, dtype="bfloat16")
    cfg, t = lc.models.load_checkpoint(path)
    ids = np.random.default_rng(2).integers(0, model.vocab, (1, 8))
    got = lc.cast(_host(model(ids)), "float32")
    _close(got, ref_forward(cfg, t, ids), 0.1)


def test_bad_inputs(folder):
    _, path = folder
    model = load(path)
    with pytest.raises(ValueError, match="ids"):
        model(np.array([[model.vocab]]))
    with pytest.raises(ValueError, match="ids"):
        model(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="prompts"):
        model.generate([[]], 3)
    with pytest.raises(ValueError, match="device"):
        load(path, device="tpu")
    for bad in (0, 65, True, 2.5, "8"):
        with pytest.raises(ValueError, match="graph_steps"):
            model.generate([1, 2], 3, graph_steps=bad)
    for bad in ("kn", "", 1):
        with pytest.raises(ValueError, match="weight_layout"):
            load(path, weight_layout=bad)
    assert len(model.generate([1, 2], 2)) == 4  # still usable


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_weight_layouts(folder, device, layout, monkeypatch):
    """Both weight layouts give the reference logits and the same greedy tokens; out_in keeps [out, in] arrays
    passed as transposed views (a tied lm_head: the embedding's own array). The default: out_in on CUDA for a
    16-bit model (the ring GEMV's layout) with LC_GEMV_RING=1, in_out on the CPU; otherwise (LC_GEMV_RING=0, or
    float32) out_in for GPT-2 on CUDA only (engine.RING_DEFAULT: whether the ring is on when it is unset)."""
    arch, path = folder
    model = load(path, device=device, weight_layout=layout)
    assert model.weight_layout == layout
    gpt2_only = "out_in" if device == "cuda" and arch == "gpt2" else "in_out"
    monkeypatch.setenv("LC_GEMV_RING", "1")
    assert load(path, device=device, dtype="bfloat16").weight_layout == ("out_in" if device == "cuda" else "in_out")
    assert load(path, device=device, dtype="float32").weight_layout == gpt2_only
    monkeypatch.setenv("LC_GEMV_RING", "0")
    assert load(path, device=device, dtype="bfloat16").weight_layout == gpt2_only
    monkeypatch.delenv("LC_GEMV_RING", raising=False)
    w = model.layers[0]["w_qkv"]
    assert w.shape[0] == model.d and w.is_contiguous == (layout == "in_out")
    ids = np.random.default_rng(4).integers(0, model.vocab, (2, 7))
    _close(_host(model(ids)), ref_forward(*lc.models.load_checkpoint(path), ids), 2e-4)
    other = load(path, device=device, weight_layout="in_out" if layout == "out_in" else "out_in")
    assert model.generate([3, 1, 4], 6) == other.generate([3, 1, 4], 6)


@pytest.mark.parametrize("knob", ["LC_MODELS_ARGMAX_FUSE", "LC_MODELS_EMBED_FUSE", "LC_MODELS_ROPE_FUSE"])
def test_fusion_knobs_change_nothing_but_the_ops(folder, device, knob, monkeypatch):
    """The engine's folds (the argmax into lm_head, GPT-2's embeddings as one op, the rope into the decode
    attention) give the tokens and logits of the ops they replace: greedy batches (graph-replayed on CUDA) equal
    with the knob off and on, and the forward's logits within the reference's tolerance, float32 and bfloat16."""
    _, path = folder
    cfg_t = lc.models.load_checkpoint(path)
    prompts = [[5, 17, 3, 99, 42], [7, 8], [1]]
    ids = np.random.default_rng(6).integers(0, 50, (2, 6))
    got = {}
    for on in ("0", "1"):
        monkeypatch.setenv(knob, on)
        for dtype in ("float32", "bfloat16"):
            model = load(path, device=device, dtype=dtype)
            got[on, dtype] = model.generate(prompts, 8)
            if dtype == "float32":
                _close(_host(model(ids)), ref_forward(*cfg_t, ids), 2e-4)
    assert got["0", "float32"] == got["1", "float32"]
    assert got["1", "float32"][0] == ref_generate(*cfg_t, prompts[0], 8)
    assert got["0", "bfloat16"] == got["1", "bfloat16"]


def test_graph_decode_equals_eager(folder):
    """CUDA: the decode step replayed as one captured graph gives the eager tokens (greedy, a batch of
    prompts of different lengths). On the CPU graph=True is refused naming graph."""
    _, path = folder
    if not lc.cuda_available():
        with pytest.raises(ValueError, match="graph"):
            load(path).generate([1, 2], 3, graph=True)
        return
    model = load(path, device="cuda")
    prompts = [[1, 2, 3, 4, 5], [7, 8], [9]]
    eager = model.generate(prompts, 10, graph=False)
    assert model.generate(prompts, 10, graph=True) == eager
    assert model.generate(prompts, 10, graph=True) == eager  # the kept graph, replayed with reset caches
    assert len(model._graphs) == 1
    kw = dict(temperature=0.8, top_k=30, seed=11)
    assert model.generate(prompts, 9, graph=True, **kw) == model.generate(prompts, 9, graph=True, **kw)
    assert model.generate(prompts, 9, graph=True, **kw) == model.generate(prompts, 9, graph=False, **kw)


def test_graph_steps(folder, device):
    """Several decode steps a run (graph_steps; on CUDA a captured graph's replay, on the CPU the same steps
    uncaptured) give the one-step-at-a-time tokens (graph=False) for every split of the new tokens into runs
    (a tail shorter than graph_steps, one step, more steps than tokens), sampled too, with a stop id met inside
    a run (the steps after it are discarded), and stream() sees every step once, in order; timings count the
    steps run (a stop inside a run runs it to its end)."""
    _, path = folder
    model = load(path, device=device)
    prompts = [[1, 2, 3, 4, 5], [7, 8], [9]]
    for n in (1, 2, 9, 17):
        eager = model.generate(prompts, n, graph=False)
        for g in (1, 3, 8, 64):
            seen, tm = [], {}
            got = model.generate(prompts, n, graph_steps=g, timings=tm,
                                 stream=lambda step, toks: seen.append((step, toks)))
            assert got == eager, (n, g)
            assert [s for s, _ in seen] == list(range(n))
            assert [t for _, t in seen] == [[row[len(p) + s] for row, p in zip(eager, prompts)] for s in range(n)]
            assert tm["decode_steps"] == n - 1
    kw = dict(temperature=0.8, top_k=30, seed=11)
    for g in (1, 4):
        assert model.generate(prompts, 9, graph_steps=g, **kw) == model.generate(prompts, 9, graph=False, **kw)
    full = model.generate([3, 1, 4], 12, graph=False, **kw)  # sampled: a varied continuation
    new = full[3:]
    k = next(i for i in range(2, len(new)) if new[i] not in new[:i])  # a token first seen at step k
    tm = {}
    assert model.generate([3, 1, 4], 12, stop_ids=(new[k],), graph_steps=8, timings=tm, **kw) == full[:3 + k + 1]
    assert tm["decode_steps"] == min(8 * -(-k // 8), 11)


def test_sampled_generation_is_seeded(folder, device):
    """temperature > 0 draws through lc.sample: the same seed gives the same tokens, the tokens stay in the
    vocabulary, top_k=1 is greedy (the one kept token), and a bad temperature names temperature."""
    _, path = folder
    model = load(path, device=device)
    a = model.generate([[3, 1, 4], [1, 5]], 8, temperature=0.9, top_k=20, top_p=0.95, seed=7)
    assert a == model.generate([[3, 1, 4], [1, 5]], 8, temperature=0.9, top_k=20, top_p=0.95, seed=7)
    assert all(0 <= t < model.vocab for seq in a for t in seq)
    assert model.generate([3, 1, 4], 6, temperature=1.3, top_k=1, seed=3) == model.generate([3, 1, 4], 6)
    with pytest.raises(ValueError, match="temperature"):
        model.generate([1], 2, temperature=-1.0)


def _windowed_model(tmp_path, device, window):
    """A random Mistral (LLaMA-family) checkpoint with sliding_window = window, loaded in float32."""
    import json
    make_random(str(tmp_path), arch="mistral", size="tiny", seed=7)
    cfg_path = tmp_path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["sliding_window"] = window
    cfg_path.write_text(json.dumps(cfg))
    model = load(str(tmp_path), device=device)
    ref_model = lc.models.load_checkpoint(str(tmp_path))
    assert ref_model[0].sliding_window == window and model.window == window
    return model, ref_model


def test_sliding_window_forward(tmp_path, device):
    """Sliding window 5 (query position p sees keys p-4..p): the cache-less forward past the window, and a
    cached prefill + token-by-token decode far beyond it, equal the float64 reference (which applies the window
    too); without the window the last positions differ from the reference by O(1)."""
    model, ref_model = _windowed_model(tmp_path, device, 5)
    ids = np.random.default_rng(3).integers(0, model.vocab, (2, 16))
    want = ref_forward(*ref_model, ids)
    _close(_host(model(ids)), want, 2e-4)
    no_window = ref_forward(ref_model[0].__class__(**{**ref_model[0].__dict__, "sliding_window": None}),
                            ref_model[1], ids)
    assert np.max(np.abs(no_window[:, -1] - want[:, -1])) > 1e-3
    cache = model.new_cache(2, 24)
    parts = [_host(model.forward(ids[:, :7], cache=cache))]  # a prefill longer than the window
    for j in range(7, 16):
        parts.append(_host(model.forward(ids[:, j:j + 1], cache=cache)))
    _close(np.concatenate(parts, axis=1), want, 2e-4)
    assert list(cache[0].lengths) == [16, 16]


def test_sliding_window_generate(tmp_path, device):
    """Greedy generation of 12 tokens from a prompt of 4 with sliding window 5, with the KV cache (a captured
    decode graph on CUDA): at each step the token equals the argmax of the cache-less forward of everything so
    far (float32) and the float64 reference's; a batch of prompts of different lengths equals one by one."""
    model, ref_model = _windowed_model(tmp_path, device, 5)
    prompt = [int(t) for t in np.random.default_rng(4).integers(0, model.vocab, 4)]
    got = model.generate(prompt, 12)
    assert len(got) == 16 and got[:4] == prompt
    for n in range(4, 16):
        logits = _host(model(np.asarray([got[:n]])))
        assert got[n] == int(np.argmax(logits[0, -1])), n
    assert got == ref_generate(*ref_model, prompt, 12)
    prompts = [prompt, prompt[:2] + [7, 9, 11, 2, 5], [3]]
    assert model.generate(prompts, 9) == [model.generate(p, 9) for p in prompts]
