"""The float64 reference forward of the model runner (lightning_core.testing.ref_models) on make_random
checkpoints: shapes, causality (a prefix's logits do not depend on later tokens), RoPE's relative-position
property (LLaMA logits unchanged when every position shifts), GPT-2's learned positions (they do change),
greedy generation consistent with the forward, and — when `transformers` is installed — equality with
Hugging Face's own forward on the same folder."""
import numpy as np
import pytest

from lightning_core.models import load_checkpoint
from lightning_core.models.make_random import make_random
from lightning_core.testing.ref_models import ref_forward, ref_generate

ARCHS = ("gpt2", "llama", "qwen2", "mistral")


@pytest.fixture(scope="module", params=ARCHS)
def model(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    make_random(str(d), arch=request.param, size="tiny", seed=3)
    cfg, tensors = load_checkpoint(str(d))
    return request.param, str(d), cfg, tensors


def _vocab(cfg):
    return cfg.vocab_size


def test_shapes_and_finite(model):
    _, _, cfg, t = model
    ids = np.random.default_rng(0).integers(0, _vocab(cfg), (2, 9))
    logits = ref_forward(cfg, t, ids)
    assert logits.shape == (2, 9, _vocab(cfg)) and logits.dtype == np.float64
    assert np.all(np.isfinite(logits))
    assert np.std(logits) > 1e-3  # not a constant: the weights reach the output
    np.testing.assert_allclose(ref_forward(cfg, t, ids[1]), logits[1], rtol=1e-12, atol=1e-12)


def test_causal_prefix(model):
    _, _, cfg, t = model
    ids = np.random.default_rng(1).integers(0, _vocab(cfg), 12)
    full = ref_forward(cfg, t, ids)
    for s in (1, 5, 11):
        np.testing.assert_allclose(ref_forward(cfg, t, ids[:s]), full[:s], rtol=1e-10, atol=1e-10)
    other = ids.copy()
    other[7] = (other[7] + 1) % _vocab(cfg)
    changed = ref_forward(cfg, t, other)
    np.testing.assert_allclose(changed[:7], full[:7], rtol=1e-10, atol=1e-10)
    assert not np.allclose(changed[7:], full[7:])


def test_positions(model):
    arch, _, cfg, t = model
    ids = np.random.default_rng(2).integers(0, _vocab(cfg), 6)
    base = ref_forward(cfg, t, ids)
    shifted = ref_forward(cfg, t, ids, positions=np.arange(6) + 37)
    if arch == "gpt2":  # learned absolute positions
        assert not np.allclose(shifted, base)
    else:  # RoPE: scores depend on relative positions only
        np.testing.assert_allclose(shifted, base, rtol=1e-8, atol=1e-8)


def test_greedy_matches_forward(model):
    _, _, cfg, t = model
    prompt = [3, 1, 4, 1, 5]
    out = ref_generate(cfg, t, prompt, 4)
    assert out[:5] == prompt and len(out) == 9
    for i in range(5, 9):
        assert out[i] == int(np.argmax(ref_forward(cfg, t, np.asarray(out[:i]))[-1]))
    stop = ref_generate(cfg, t, prompt, 4, stop_ids=(out[5],))
    assert stop == out[:6]


def test_bad_ids(model):
    _, _, cfg, t = model
    with pytest.raises(ValueError, match="ids"):
        ref_forward(cfg, t, np.zeros((2, 3), np.float32))


def test_against_transformers(model):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    arch, path, cfg, t = model
    hf = transformers.AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float64, attn_implementation="eager")
    ids = np.random.default_rng(4).integers(0, _vocab(cfg), (2, 10))
    with torch.no_grad():
        want = hf(torch.from_numpy(ids)).logits.numpy()
    # transformers computes LLaMA's rotary angles in float32 whatever the model dtype (position · inv_freq, then
    # cos/sin): angles up to ~10 rad carry ~2^-24 · 10 of error, which reaches the logits at ~1e-7 absolute
    atol = 1e-9 if arch == "gpt2" else 1e-6
    np.testing.assert_allclose(ref_forward(cfg, t, ids), want, rtol=1e-9, atol=atol)
