"""The suite registry: name -> Suite(title, module, doc); a suite module's run(ctx) yields rows of the schema
(harness.FIELDS). Modules are imported when a suite runs (torch is imported inside them, never here).

  kernel            attention, conv, GEMM: vs NumPy and torch CPU one-shot (cpu_peers; on a GPU machine our
                    side is device="auto"), + on CUDA vs torch CUDA one-shot / resident / CUDA graph (gpu_peers,
                    GEMM fp32 and TF32)
  pipeline          ffn, ln->proj, conv->attn (CPU: vs NumPy, torch CPU); on CUDA ffn, ln->proj, mlp vs torch CUDA
  ml                linear, matrix_sub, vector_add: CPU peers, + torch CUDA on CUDA
  large_gemm_sweep  GEMM one-shot / session one-shot / session resident vs torch (+ CUDA graph)
  resident          MLP eager / graph and the conv->attention chain session vs torch eager / CUDA graph;
                    the runtime trace's overhead (trace on vs off)
  graph_eager_ab    the same work as an lc.Graph plan and as eager ops, vs torch eager / CUDA graph
  fusion            plans with fusion on vs off, vs eager ops, torch eager / CUDA graph
  api_overhead      lc.api / lc.nn calls vs the direct calls they wrap; DLPack round trip
  engine_split      lc.api engine "lightning" vs "torch" on the same calls
  lowp              float16/bfloat16: CPU matmul vs our float32 and torch CPU, casts vs copy bandwidth; on CUDA
                    GEMM and linear+GELU vs torch (issue 14's targets, each note with its shortfall)
  sdpa              scaled_dot_product_attention / KVCache: CPU f32 vs torch CPU and NumPy; on CUDA bf16/f16/f32
                    prefill, GQA decode vs torch and the measured read bandwidth, graph-replayed decode step, GQA
                    traffic (issue 15's targets, each note with its shortfall)
  models            (not in the default run: minutes) the model runner (lc.models): GPT-2 124M and the LLaMA 1.1B
                    config, prefill 1024 and decode at batch 1 / 32 in tokens/s vs transformers eager (SDPA), a
                    plain-torch static-cache CUDA-graph decode (models_torch) and the weight-bandwidth limit
                    (issue 16's targets, each note with its shortfall); CPU: GPT-2 float32 / bfloat16
  crossover         (not in the default run) one-shot conv2d / matmul on "cuda" vs "cpu": the crossover points
  dist              all_reduce bus bandwidth (64 MB, 1 GB; bf16, f32) of lc.distributed vs torch.distributed on every
                    GPU of the host (issue 17's target >= 90%); fewer than 2 GPUs: "needs >= 2 GPUs" (unavailable)
Tested by tests/python/test_bench_harness.py and tests/python/test_bench_suites.py.
"""
from __future__ import annotations

import importlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable


class SuiteUnavailable(Exception):
    """The suite cannot run here (no torch, no CUDA, a dtype it does not take): reported, not an error."""


class SuiteTimeout(Exception):
    """The suite hit the time budget (--max-seconds)."""


DTYPES = ("float32", "float64")


@dataclass
class Ctx:
    quick: bool = False
    device: str = "cpu"  # "cpu" | "cuda": the backend our side runs on
    dtype: str = "float32"
    seed: int = 20261126
    repeat: int = 1
    repeats: int = 1
    deadline: float = math.inf  # time.perf_counter() value
    on_case: Callable[[str], None] | None = None
    notes: list = field(default_factory=list)  # suite notes (unique), filled by the suite

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def case(self, text: str) -> None:
        if self.on_case is not None:
            self.on_case(text)

    def note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)

    def need_dtype(self, *supported: str) -> None:
        if self.dtype not in supported:
            raise SuiteUnavailable(f"--dtype {self.dtype}: this suite runs {', '.join(supported)}")


@dataclass
class Suite:
    name: str
    title: str
    run: Callable[[Ctx], object]
    doc: str = ""
    default: bool = True  # part of a run without --suite


REGISTRY: dict[str, Suite] = {}
DEFAULT_ORDER = ["kernel", "pipeline", "ml", "large_gemm_sweep", "resident", "graph_eager_ab", "fusion",
                 "api_overhead", "engine_split", "lowp", "sdpa", "models", "crossover", "dist"]


def register(name: str, title: str, run: Callable[[Ctx], object], doc: str = "", default: bool = True) -> Suite:
    REGISTRY[name] = s = Suite(name, title, run, doc, default)
    return s


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def _module_run(module: str, fn: str = "run") -> Callable[[Ctx], object]:
    def run(ctx: Ctx):
        return getattr(importlib.import_module(f"{__name__}.{module}"), fn)(ctx)
    run.__qualname__ = f"{module}.{fn}"
    return run


def _builtin() -> None:
    for name, module, fn, title, doc, default in [
        ("kernel", "ops", "kernel", "Kernel (attention, conv, GEMM)", "cpu_peers + gpu_peers on CUDA", True),
        ("pipeline", "ops", "pipeline", "Pipeline (ffn, ln->proj, conv->attn, mlp)",
         "pipeline_cpu on CPU; gpu_peers pipeline + model on CUDA", True),
        ("ml", "ops", "ml", "ML (linear, matrix_sub, vector_add)", "cpu_peers ml + gpu_peers ml on CUDA", True),
        ("large_gemm_sweep", "sessions", "large_gemm_sweep", "DL large GEMM sweep", "sessions.large_gemm_sweep", True),
        ("resident", "sessions", "resident", "Resident sessions (mlp, conv->attn chain, trace overhead)",
         "sessions.resident", True),
        ("graph_eager_ab", "graph_eager_ab", "run", "Graph / eager A/B", "graph_eager_ab", True),
        ("fusion", "fusion", "run", "Fusion (fused vs unfused plans)", "fusion", True),
        ("api_overhead", "api_overhead", "run", "API overhead (lc.api / nn vs direct C calls)", "api_overhead", True),
        ("engine_split", "engine_split", "run", "Engine split (lc.api lightning vs torch)", "engine_split", True),
        ("lowp", "lowp", "run", "Low precision (float16/bfloat16 GEMM, linear, casts)", "lowp", True),
        ("sdpa", "sdpa", "run", "Attention (scaled_dot_product_attention, KV-cache decode)", "sdpa", True),
        ("models", "models", "run", "Model runner (GPT-2 / LLaMA prefill and decode tokens/s)", "models", False),
        ("crossover", "crossover", "run", "CPU/GPU crossover sweep (cuda vs cpu, one-shot)", "crossover (CUDA only)",
         False),
        ("dist", "dist", "run", "Distributed (NCCL all_reduce bus bandwidth vs torch.distributed)",
         "dist (>= 2 GPUs; ranks started through lightning_core.launch)", True),
    ]:
        register(name, title, _module_run(module, fn), doc, default)


_builtin()


def order(all_suites: bool = False) -> list[str]:
    names = [s for s in DEFAULT_ORDER if s in REGISTRY] + [s for s in REGISTRY if s not in DEFAULT_ORDER]
    return names if all_suites else [s for s in names if REGISTRY[s].default]




def load_plugins() -> None:
    """Imports the modules named in $LC_BENCH_PLUGINS (comma list): each registers more suites (register()),
    in the parent and, through the inherited environment, in the child processes (the tests' fake suites)."""
    import os
    for mod in filter(None, (m.strip() for m in os.environ.get("LC_BENCH_PLUGINS", "").split(","))):
        importlib.import_module(mod)


load_plugins()
