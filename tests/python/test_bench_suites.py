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
        want = ("float16", "bfloat16", "float32") if suite == "lowp" else ("float32",)  # lowp picks its dtypes
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
    assert {r["case"] for r in rows} == {"cpu prefill f32 B=1,H=12,S=256,D=64",
                                         "cpu prefill f32 B=1,H=12,S=256,D=64 causal"}
    for r in rows:
        assert r["family"] == "cpu_prefill" and r["status"] == "ok" and 0 <= r["rel_err"] < 1e-5, r
        assert r["flops"] > 0 and r["bytes"] > 0 and "TFLOP/s" in r["notes"], r
        if r["peer"] == "torch_cpu":
            assert "target" in r["notes"], r
    assert "numpy" in {r["peer"] for r in rows}
