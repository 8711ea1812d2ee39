"""Multi-GPU lightning_core.distributed (runs only when >= 2 GPUs are visible and NCCL is built in): N ranks
through python -m lightning_core.launch, each checking every collective x dtype against NumPy, a captured
all_reduce and a cross-rank shape mismatch (tests/python/dist_worker.py collectives); and a rank that dies
(exits without a word) making the others' next collective raise RuntimeError within the timeout, with and
without the header check, their processes still usable (dist_worker.py die). NCCL_NVLS_ENABLE=0 (the launcher).
LC_TEST_DIST_NPROC limits the ranks (default: every visible GPU, at most 4)."""
import os
import subprocess
import sys
import time

import pytest

import lightning_core as lc
from lightning_core.launch import _free_port, rank_env

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "dist_worker.py")


def visible_gpus() -> int:
    return lc._C.cuda_device_count() if lc.distributed.available() else 0


NGPU = visible_gpus()
NPROC = min(NGPU, int(os.environ.get("LC_TEST_DIST_NPROC", "4")))
pytestmark = pytest.mark.skipif(NGPU < 2, reason=f"needs >= 2 GPUs with NCCL (visible: {NGPU}; "
                                f"{lc.distributed.why_unavailable() or 'one GPU'})")


@pytest.mark.parametrize("nproc", sorted({2, NPROC}))
def test_collectives_vs_numpy(nproc):
    p = subprocess.run([sys.executable, "-m", "lightning_core.launch", "--nproc", str(nproc), WORKER, "collectives"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    for r in range(nproc):
        assert f"[rank {r}] OK rank {r}" in p.stdout


@pytest.mark.parametrize("check", [True, False])
def test_rank_dies_others_raise(check):
    n = NPROC
    port = _free_port("127.0.0.1")
    args = [sys.executable, WORKER, "die"] + (["check"] if check else [])
    t0 = time.monotonic()
    envs = [rank_env(os.environ, r, n, "127.0.0.1", port) for r in range(n)]
    for e in envs:  # as torchrun: no LC_CUDA_DEVICE, so init() selects the device (LOCAL_RANK) itself
        e.pop("LC_CUDA_DEVICE", None)
    procs = [subprocess.Popen(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for e in envs]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert time.monotonic() - t0 < 200
    assert procs[-1].returncode == 17
    for r in range(n - 1):
        assert procs[r].returncode == 0 and f"OK rank {r}" in outs[r], outs[r][-4000:]
        assert "raised after" in outs[r]
