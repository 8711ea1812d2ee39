"""python -m lightning_core.generate on a make_random checkpoint: the printed tokens are the runner's greedy
generation, the timing line is there, --bench prints medians, --batch runs B copies, bad arguments end with
a clear message (SystemExit), and the module runs as a subprocess."""
import subprocess
import sys

import pytest

from lightning_core.generate import main
from lightning_core.models import load
from lightning_core.models.make_random import make_random


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama")
    make_random(str(d), arch="llama", size="tiny", seed=1)
    return str(d)


def test_prints_the_generation(folder, capsys):
    assert main(["--model", folder, "--ids", "5,6,7", "--max-new-tokens", "6"]) == 0
    out = capsys.readouterr().out.splitlines()
    want = load(folder).generate([5, 6, 7], 6)
    assert out[0].split() == [str(t) for t in want]
    assert "prefill" in out[1] and "ms/token" in out[1] and "tokens/s" in out[1]


def test_bench_and_batch(folder, capsys):
    assert main(["--model", folder, "--ids", "1,2", "--max-new-tokens", "4", "--bench", "2", "--batch", "3",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "median of 2" in out and "batch 3" in out
    assert main(["--model", folder, "--ids", "1,2", "--max-new-tokens", "5", "--graph-steps", "2", "--quiet"]) == 0


def test_weight_layout(folder, capsys):
    """--weight-layout out_in (the checkpoint's [out, in] arrays passed as transposed views) prints the same tokens."""
    want = load(folder).generate([5, 6, 7], 6)
    assert main(["--model", folder, "--ids", "5,6,7", "--max-new-tokens", "6", "--weight-layout", "out_in"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == [str(t) for t in want]


@pytest.mark.parametrize("argv, what", [
    (["--ids", "1,x"], "--ids"),
    (["--ids", "1", "--batch", "0"], "--batch"),
    (["--ids", "100000"], "prompt ids"),
    (["--prompt", "hello"], "tokenizers"),
    (["--ids", "1", "--graph-steps", "0"], "--graph-steps"),
    (["--ids", "1", "--graph-steps", "65"], "--graph-steps"),
])
def test_bad_arguments(folder, argv, what):
    with pytest.raises(SystemExit, match=what):
        main(["--model", folder] + argv)


def test_bad_weight_layout(folder, capsys):
    with pytest.raises(SystemExit):
        main(["--model", folder, "--ids", "1", "--weight-layout", "kn"])
    assert "--weight-layout" in capsys.readouterr().err


def test_bad_model(tmp_path):
    with pytest.raises(SystemExit, match="--model"):
        main(["--model", str(tmp_path), "--ids", "1"])


def test_module_runs(folder):
    r = subprocess.run([sys.executable, "-m", "lightning_core.generate", "--model", folder, "--ids", "3,4",
                        "--max-new-tokens", "3"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "tokens/s" in r.stdout, r.stderr


def test_progress_line(folder, capsys):
    """Runs that do not stream report their progress on stderr when asked (--progress on: plain lines, as into a
    log); the default stays silent where stderr is not a terminal, and the tokens and timing line are unchanged."""
    argv = ["--model", folder, "--ids", "1,2", "--max-new-tokens", "5", "--batch", "2", "--bench", "1"]
    assert main(argv + ["--progress", "on"]) == 0
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.startswith("generate: ")]
    assert any("warm-up, token 5/5" in ln for ln in lines) and any("run 1/1, token 5/5" in ln for ln in lines)
    assert all("tokens/s" in ln for ln in lines if "token 1/" not in ln) and "median of 1" in cap.out
    assert main(argv) == 0  # auto: stderr is not a terminal here
    assert "generate: " not in capsys.readouterr().err
    assert main(argv + ["--progress", "off"]) == 0
    assert "generate: " not in capsys.readouterr().err
