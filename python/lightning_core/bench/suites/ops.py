"""The kernel, pipeline and ml suites: the CPU-peer rows (cpu_peers) and, on CUDA, the torch CUDA rows
(gpu_peers) of the same families. Tested by tests/python/test_bench_suites.py.
"""
from __future__ import annotations

from . import Ctx
from . import cpu_peers, gpu_peers


def _gpu(ctx: Ctx, suite: str, groups: set[str]) -> list[dict]:
    return gpu_peers.run_groups(ctx, suite, groups) if ctx.device == "cuda" else []


def kernel(ctx: Ctx) -> list[dict]:
    return cpu_peers.run_groups(ctx, "kernel", ["attention", "conv", "matmul"]) + \
        _gpu(ctx, "kernel", {"kernel", "gemm", "gemm_tf32"})


def pipeline(ctx: Ctx) -> list[dict]:
    if ctx.device == "cuda":
        return _gpu(ctx, "pipeline", {"pipeline", "model"})
    return cpu_peers.pipeline_cpu(ctx)


def ml(ctx: Ctx) -> list[dict]:
    return cpu_peers.run_groups(ctx, "ml", ["ml"]) + _gpu(ctx, "ml", {"ml"})
