"""A --quick run of every suite on the CPU, each in its own child process (python -m lightning_core.bench.child,
as the command runs them): the rows it streams are well formed (harness.check_row), carry the run's dtype and
device, pass their result checks, and a suite that cannot run here says so cleanly (no torch, no CUDA)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_core.bench import harness as H
from lightning_core.bench.child import parse
from lightning_core.bench.suites import order
from lightning_core.testing import sdpa_tol

PKG_ROOT = str(Path(__file__).resolve().parents[2] / "python")


def run_child(suite, *extra):
    env = dict(os.environ, PYTHONPATH=PKG_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "lightning_core.bench.child", suite, "--quick", "--device", "cpu",
                        *extra], capture_output=True, text=True, timeout=300, env=env)
    msgs = [m for m in map(parse, p.stdout.splitlines()) if m is not None]
    return p, msgs


@pytest.mark.parametrize("suite", order(True))
def test_quick_run_of_each_suite_on_cpu(suite):
    p, msgs = run_child(suite)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    rows = [m["row"] for m in msgs if "row" in m]
    unavailable = [m["unavailable"] for m in msgs if "unavailable" in m]
    assert not [m for m in msgs if "error" in m]
    if unavailable:
        assert not rows and unavailable[0]
        return
    assert msgs[0] == {"repeat": 1, "of": 1} and any("case" in m for m in msgs)
    for r in rows:
        assert H.check_row(r) == [], r
        want = ("float16", "bfloat16", "float32") if suite in ("lowp", "models", "sdpa") else ("float32",)  # theirs
        assert r["suite"] == suite and r["dtype"] in want and r["device"].endswith("cpu")
        assert r["status"] == "ok", r
    if suite in ("kernel", "ml", "pipeline", "graph_eager_ab", "fusion", "api_overhead"):
        assert rows, f"{suite}: no rows on the CPU"


def test_float64_rows_carry_the_dtype_and_other_suites_say_unavailable():
    _, msgs = run_child("ml", "--dtype", "float64")
    rows = [m["row"] for m in msgs if "row" in m]
    assert rows and all(r["dtype"] == "float64" and r["rel_err"] < 1e-10 for r in rows)
    _, msgs = run_child("fusion", "--dtype", "float64")
    assert [m for m in msgs if "unavailable" in m] and not [m for m in msgs if "row" in m]


def test_sdpa_suite_rows_or_clean_skip():
    """The sdpa suite (issue 15): without the binding it says unavailable and sends nothing; with it, the CPU
    rows are validated against float64 (float32 accuracy), carry work counts and the throughput and target
    in their notes."""
    import lightning_core as lc
    p, msgs = run_child("sdpa")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    rows = [m["row"] for m in msgs if "row" in m]
    unavailable = [m["unavailable"] for m in msgs if "unavailable" in m]
    assert not [m for m in msgs if "error" in m]
    if not hasattr(lc, "scaled_dot_product_attention"):
        assert unavailable and "scaled_dot_product_attention" in unavailable[0] and not rows
        return
    assert not unavailable and rows
    assert {r["case"] for r in rows} == {f"cpu prefill {t} B=1,H=12,S=256,D=64{c}" for t in ("f32", "bf16")
                                         for c in ("", " causal")}
    for r in rows:
        bound = 1e-5 if r["dtype"] == "float32" else sdpa_tol("bfloat16", 256, 64)
        assert r["family"] == "cpu_prefill" and r["status"] == "ok" and 0 <= r["rel_err"] < bound, r
        assert r["flops"] > 0 and r["bytes"] > 0 and "TFLOP/s" in r["notes"], r
        if r["peer"] == "torch_cpu" and r["dtype"] == "float32":
            assert "target" in r["notes"], r
    assert "numpy" in {r["peer"] for r in rows}


def _torch_importable():
    try:
        import torch  # noqa: F401,PLC0415
        return True
    except Exception:  # noqa: BLE001
        return False


def test_models_suite_quick_rows_on_cpu():
    """The models suite (issue 16) on the CPU, --quick (tiny GPT-2, float32 and bfloat16): decode rows at
    batch 1 and 32 against the weight-bandwidth limit (and the torch / transformers peers where importable,
    else a note saying so), tokens/s in the notes consistent with ours_ms, the correctness checks passed;
    our prefill in a suite note."""
    import re
    import lightning_core as lc
    p, msgs = run_child("models")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert not [m for m in msgs if "error" in m]
    rows = [m["row"] for m in msgs if "row" in m]
    notes = [m["note"] for m in msgs if "note" in m]
    if not hasattr(lc, "models") or not hasattr(lc, "KVCache"):
        assert [m for m in msgs if "unavailable" in m] and not rows
        return
    cases = {r["case"] for r in rows}
    assert cases >= {f"GPT-2 tiny {dt} decode B={b}" for dt in ("float32", "bfloat16") for b in (1, 32)}, cases
    if not _torch_importable():
        assert {r["peer"] for r in rows} == {"weight_bw"}
        assert any("torch is not installed" in n and "no transformers / torch peer rows" in n for n in notes), notes
    for r in rows:
        assert H.check_row(r) == [], r
        assert r["suite"] == "models" and r["device"] == "cpu" and r["mode"] in ("resident", "one_shot"), r
        assert r["status"] == "ok", r
        assert 0 < r["ours_ms"] < float("inf") and 0 < r["peer_ms"] < float("inf") and r["ratio"] > 0, r
        assert 0 <= r["rel_err"] <= (1e-3 if r["dtype"] == "float32" else 0.1), r
        if r["family"] != "decode":
            continue
        b = int(re.search(r"B=(\d+)", r["case"]).group(1))
        tps = float(re.search(r"ours (\d+) tokens/s", r["notes"]).group(1))
        assert tps > 0 and abs(tps - b * 1e3 / r["ours_ms"]) <= 1.0, (tps, r)
        assert "weight-bandwidth limit" in r["notes"] and "targets apply at the full sizes" in r["notes"], r
        if r["dtype"] == "float32":
            assert "greedy tokens equal to" in r["notes"], r
        if r["peer"] == "weight_bw":
            assert r["bytes"] > 0 and r["ratio"] < 50, r  # our fraction of the limit (a ratio > 1 can't be)
    for dt in ("float32", "bfloat16"):
        assert any(n.startswith(f"GPT-2 tiny {dt} on cpu: ours prefill S=64") for n in notes), notes


def test_models_suite_helpers():
    """Weight bytes of the decode step (the embedding gathers excluded) and the targets' PASS / MISS text."""
    from lightning_core.bench.suites.models import _weight_bytes
    from lightning_core.bench.suites.lowp import _target
    from lightning_core.models import parse_config
    from lightning_core.models.make_random import config_dict
    gpt2 = parse_config(config_dict("gpt2", "124m"), "gpt2")
    assert _weight_bytes(gpt2, "float32") == 4.0 * (124439808 - 1024 * 768)  # GPT-2 small without wpe
    llama = parse_config(config_dict("llama", "1b"), "llama")
    assert _weight_bytes(llama, "bfloat16") == 2.0 * (1100048384 - 32000 * 2048)  # without embed_tokens
    assert _target(0.6, 0.75, "fraction") == "target fraction >= 0.75: MISS by 20% (0.60)"
    assert _target(1.3, 1.2, "vs b").endswith("PASS (1.30)")


def test_models_torch_peer_matches_reference():
    """Peer (b) of the models suite (plain torch, static cache; eager on the CPU): logits against the float64
    reference and greedy tokens equal to it and to our runner, GPT-2 and LLaMA (GQA) tiny configs."""
    torch = pytest.importorskip("torch")
    import numpy as np
    import torch.nn.functional as F  # noqa: N812
    import lightning_core as lc
    from lightning_core.bench.suites.models_torch import TorchLM
    from lightning_core.models.make_random import make_random
    from lightning_core.testing.ref_models import ref_forward, ref_generate
    import tempfile
    for arch in ("gpt2", "llama"):
        with tempfile.TemporaryDirectory() as d:
            make_random(d, arch, "tiny", seed=3)
            cfg, t = lc.models.load_checkpoint(d)
            ids = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, 12))
            lm = TorchLM(torch, F, cfg, t, device="cpu", dtype="float32")
            ref = ref_forward(cfg, t, ids)
            got = lm.logits(ids)
            assert np.max(np.abs(got - ref)) <= 1e-4 * np.max(np.abs(ref)), arch
            dec = lm.decoder(2, 32, graph=False)
            tm = {}
            toks = dec.generate(ids[:, :6], 6, tm)
            assert tm["decode_steps"] == 5 and tm["decode_ms"] > 0
            for i in range(2):
                want = ref_generate(cfg, t, ids[i, :6], 6)[6:]
                assert toks[i].tolist() == want, (arch, i)
            ours = lc.models.load(d).generate([list(ids[0, :6])], 6)[0][6:]
            assert ours == toks[0].tolist()


def test_torch_graph_time_captures_once_and_divides_by_per():
    """suites.common.torch_graph_time with a stand-in for torch (the real one needs CUDA): step runs once eagerly,
    once under capture, then only replays are timed, each sample's ms divided by per (time_call's contract)."""
    from contextlib import contextmanager
    from types import SimpleNamespace

    from lightning_core.bench.suites.common import torch_graph_time

    log = []

    class Graph:
        def replay(self):
            log.append("replay")

    @contextmanager
    def capture(g):
        log.append("capture-begin")
        yield
        log.append("capture-end")

    @contextmanager
    def inference_mode():
        log.append("inference")
        yield

    fake = SimpleNamespace(inference_mode=inference_mode,
                           cuda=SimpleNamespace(synchronize=lambda: log.append("sync"), CUDAGraph=Graph, graph=capture))
    calls = []

    def sample_ms(run):
        n0 = log.count("replay")
        run()
        calls.append(log.count("replay") - n0)
        return 8.0 * calls[-1]  # 8 ms a replay

    t = torch_graph_time(fake, lambda: log.append("step"), 4, sample_ms,
                         dict(warmup=1, samples=3, inner=2, settle_s=0.0, max_s=None, min_samples=3))
    first_replay = log.index("replay")
    assert log[:first_replay] == ["inference", "step", "sync", "capture-begin", "step", "capture-end"]
    assert log.count("step") == 2 and calls[-3:] == [2, 2, 2]  # the 3 samples of inner 2 (after the warm-up's 1)
    assert abs(t["median_ms"] - 2.0) < 1e-9  # 8 ms a replay / per 4
