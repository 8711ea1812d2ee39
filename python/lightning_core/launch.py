"""python -m lightning_core.launch --nproc N [--master-addr A] [--master-port P] [--grace S] script.py [args...]

Starts N copies of `python script.py args...` (or `-m module args...`), one per GPU of this host, with the
environment torchrun sets — RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT — plus
LC_CUDA_DEVICE=LOCAL_RANK (the library's CUDA device even before lc.distributed.init) and NCCL_NVLS_ENABLE=0
(each only when not set already), so lc.distributed.init() needs no arguments; scripts written for torchrun
run unchanged, and `torchrun --nproc-per-node N script.py` works for lightning_core scripts too.
Each rank's output lines are prefixed with "[rank r] " (stdout to stdout, stderr to stderr). When a rank exits
non-zero the others are stopped (SIGTERM to their process groups, SIGKILL after --grace seconds) and the
launcher exits with that rank's code (128 + signal for a signal); all zero -> 0. SIGINT/SIGTERM to the launcher
are passed on to every rank. The master port defaults to $MASTER_PORT, else a free port.
Tests: tests/python/test_launch.py (CPU: env, prefixes, exit codes, a failing rank stopping the others).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def _free_port(addr: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def _parse(argv):
    p = argparse.ArgumentParser(prog="python -m lightning_core.launch",
                                description="Start one process per GPU with torchrun's environment.")
    p.add_argument("--nproc", "--nproc-per-node", dest="nproc", type=int, required=True, help="processes (ranks)")
    p.add_argument("--master-addr", default=None, help="rendezvous address (default $MASTER_ADDR or 127.0.0.1)")
    p.add_argument("--master-port", type=int, default=None, help="rendezvous port (default $MASTER_PORT or a free one)")
    p.add_argument("--grace", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL when stopping ranks")
    p.add_argument("-m", dest="module", action="store_true", help="run the target as a module (python -m target)")
    p.add_argument("target", help="script path (or module name with -m)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to every rank")
    a = p.parse_args(argv)
    if a.nproc < 1:
        p.error(f"--nproc: expected >= 1, got {a.nproc}")
    if a.master_port is not None and not 0 < a.master_port < 65536:
        p.error(f"--master-port: expected 1..65535, got {a.master_port}")
    if not a.grace >= 0:
        p.error(f"--grace: expected >= 0, got {a.grace}")
    return a


def rank_env(base: dict, rank: int, nproc: int, addr: str, port: int) -> dict:
    """The environment of one rank (torchrun's variables, LC_CUDA_DEVICE, NCCL_NVLS_ENABLE=0 unless set)."""
    env = dict(base)
    env.update(RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(nproc),
               GROUP_RANK="0", MASTER_ADDR=addr, MASTER_PORT=str(port), PYTHONUNBUFFERED="1")
    env.setdefault("NCCL_NVLS_ENABLE", "0")
    if "LC_CUDA_DEVICE" not in base:
        env["LC_CUDA_DEVICE"] = str(rank)
    return env


def _pump(stream, out, prefix: bytes, lock: threading.Lock) -> None:
    for line in iter(stream.readline, b""):
        if not line.endswith(b"\n"):
            line += b"\n"
        with lock:
            out.write(prefix + line)
            out.flush()
    stream.close()


def _signal_live(procs, sig) -> None:
    """Sends sig to the process group of every rank still running."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass


def _stop(procs, grace: float) -> None:
    _signal_live(procs, signal.SIGTERM)
    end = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(end - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            pass
    _signal_live(procs, signal.SIGKILL)
    for p in procs:
        p.wait()


def _code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc


def main(argv=None) -> int:
    a = _parse(sys.argv[1:] if argv is None else argv)
    addr = a.master_addr or os.environ.get("MASTER_ADDR") or "127.0.0.1"
    port = a.master_port or int(os.environ.get("MASTER_PORT") or 0) or _free_port(addr)
    cmd = [sys.executable] + (["-m", a.target] if a.module else [a.target]) + a.args
    lock = threading.Lock()
    procs, pumps = [], []
    stopping = {"signal": None}

    def forward(signum, frame):
        stopping["signal"] = signum
        _signal_live(procs, signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for r in range(a.nproc):
            p = subprocess.Popen(cmd, env=rank_env(os.environ, r, a.nproc, addr, port), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
            procs.append(p)
            for stream, out in ((p.stdout, sys.stdout.buffer), (p.stderr, sys.stderr.buffer)):
                t = threading.Thread(target=_pump, args=(stream, out, f"[rank {r}] ".encode(), lock), daemon=True)
                t.start()
                pumps.append(t)
        failed = None
        while failed is None and any(p.poll() is None for p in procs):
            for r, p in enumerate(procs):
                rc = p.poll()
                if rc is not None and rc != 0 and failed is None:
                    failed = (r, rc)
            time.sleep(0.05)
        if failed is None:
            failed = next(((r, p.returncode) for r, p in enumerate(procs) if p.returncode != 0), None)
        if failed is not None:
            r, rc = failed
            if any(p.poll() is None for p in procs):
                with lock:
                    sys.stderr.write(f"[launch] rank {r} exited with code {_code(rc)}; stopping the other ranks\n")
                    sys.stderr.flush()
            _stop(procs, a.grace)
        for t in pumps:
            t.join(timeout=5.0)
        if failed is None:
            return 0
        return _code(failed[1]) or 1
    finally:
        _stop(procs, a.grace)
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main())
