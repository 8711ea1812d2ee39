"""python -m lightning_core.launch (lightning_core/launch.py) on the CPU: each rank's environment (torchrun's
variables, LC_CUDA_DEVICE, NCCL_NVLS_ENABLE=0 unless set), "[rank r] " prefixes on stdout and stderr, argument
passing, exit codes, and a failing rank stopping the others quickly (their output after the failure never
appears). GPU use of the launcher: tests/python/test_distributed_multi.py."""
import os
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent("""
    import os, sys, time
    keys = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "NCCL_NVLS_ENABLE", "LC_CUDA_DEVICE"]
    print(" ".join(f"{k}={os.environ.get(k)}" for k in keys))
    print("args", *sys.argv[1:])
    print("to stderr", file=sys.stderr)
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    rank = int(os.environ["RANK"])
    if mode == "fail" and rank == 1:
        sys.exit(3)
    if mode == "fail":
        time.sleep(60)
        print("rank survived")
""")


def launch(tmp_path, nproc, *args, env=None, timeout=120):
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT)
    e = dict(os.environ)
    for k in ("MASTER_PORT", "MASTER_ADDR", "NCCL_NVLS_ENABLE", "LC_CUDA_DEVICE"):
        e.pop(k, None)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "lightning_core.launch", "--nproc", str(nproc), "--grace", "2",
                        str(script), *args], capture_output=True, text=True, timeout=timeout, env=e)
    return p, time.monotonic() - t0


def test_env_prefixes_and_args(tmp_path):
    p, _ = launch(tmp_path, 3, "x", "--flag", "y")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for r in range(3):
        env_line = [ln for ln in lines if ln.startswith(f"[rank {r}] RANK=")]
        assert len(env_line) == 1, p.stdout
        f = dict(kv.split("=", 1) for kv in env_line[0].split("] ", 1)[1].split())
        assert f["RANK"] == f["LOCAL_RANK"] == f["LC_CUDA_DEVICE"] == str(r)
        assert f["WORLD_SIZE"] == f["LOCAL_WORLD_SIZE"] == "3"
        assert f["MASTER_ADDR"] == "127.0.0.1" and 0 < int(f["MASTER_PORT"]) < 65536
        assert f["NCCL_NVLS_ENABLE"] == "0"
        assert f"[rank {r}] args x --flag y" in lines
        assert f"[rank {r}] to stderr" in p.stderr.splitlines()
    ports = {ln.split("MASTER_PORT=")[1].split()[0] for ln in lines if "MASTER_PORT=" in ln}
    assert len(ports) == 1  # every rank meets at the same address


def test_user_settings_win(tmp_path):
    p, _ = launch(tmp_path, 2, env={"NCCL_NVLS_ENABLE": "1", "MASTER_PORT": "29517", "LC_CUDA_DEVICE": "0"})
    assert p.returncode == 0, p.stderr
    for r in range(2):
        line = next(ln for ln in p.stdout.splitlines() if ln.startswith(f"[rank {r}] RANK="))
        assert "NCCL_NVLS_ENABLE=1" in line and "MASTER_PORT=29517" in line and "LC_CUDA_DEVICE=0" in line


def test_failing_rank_stops_the_others(tmp_path):
    p, took = launch(tmp_path, 3, "fail")
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert took < 30  # not the 60 s the surviving ranks would sleep
    assert "rank survived" not in p.stdout
    assert "[launch] rank 1 exited with code 3; stopping the other ranks" in p.stderr


def test_bad_arguments(tmp_path):
    p = subprocess.run([sys.executable, "-m", "lightning_core.launch", "--nproc", "0", "x.py"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "--nproc: expected >= 1, got 0" in p.stderr


def test_rank_env_function():
    from lightning_core.launch import rank_env
    env = rank_env({"NCCL_NVLS_ENABLE": "1"}, 2, 4, "10.0.0.1", 1234)
    assert env["RANK"] == "2" and env["WORLD_SIZE"] == "4" and env["MASTER_ADDR"] == "10.0.0.1"
    assert env["MASTER_PORT"] == "1234" and env["NCCL_NVLS_ENABLE"] == "1" and env["LC_CUDA_DEVICE"] == "2"
