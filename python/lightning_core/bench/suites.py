"""The suite registry: name -> runner(ctx) -> rows of the common schema (harness.FIELDS).

Most suites wrap the existing scripts of benchmarks/python/ (found from this file: ../../../benchmarks/python,
or $LC_BENCH_SCRIPTS). Each wrapped script runs in a child process of the same interpreter with its own
--quick / --device / --out flags and writes its usual JSON into OUT/raw/<suite>/r<k>/; the runner reads that
JSON back and converts its rows. A child process (not an in-process call) because the scripts parse
sys.argv, set process-wide state (sync policy, matmul precision, torch threads) and may take a while: the
child isolates them, its stdout feeds the progress bar, and a hung script is killed at the time budget.
One child (lightning_core.bench.child) runs all the repeats of a script back to back, so the start-up
(interpreter, torch, CUDA context: 4-5 s on the GPU machine) is paid once per suite and script.
From an installed wheel (no benchmarks/python) these suites report "unavailable: run from a source checkout".

  kernel            quick_bench.py --only attention,conv,matmul (vs NumPy, torch CPU, one-shot; on a GPU
                    machine ours is device="auto", the cost model's pick per call);
                    + on CUDA gpu_bench.py --only kernel,gemm,gemm_tf32 (vs torch CUDA one-shot / resident /
                    CUDA graph)
  pipeline          CPU: native.pipeline_cpu (ffn, ln->proj, conv->attn one-shot vs NumPy, torch CPU);
                    CUDA: gpu_bench.py --only pipeline,model
  ml                quick_bench.py --only ml; + on CUDA gpu_bench.py --only ml
  large_gemm_sweep  session_bench.py --only large_gemm_sweep
  resident          session_bench.py --only mlp_resident,conv_attn_chain
  graph_eager_ab    graph_eager_ab_bench.py
  fusion            fusion_bench.py
  api_overhead      api_overhead_bench.py (ours = lc.api / nn call, peer = the direct C call)
  engine_split      native.engine_split (lc.api engine "lightning" vs "torch" on the same calls)
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import harness as H


class SuiteUnavailable(Exception):
    """The suite cannot run here (no source checkout, no torch, no CUDA): reported, not an error."""


class SuiteTimeout(Exception):
    """The suite hit the time budget (--max-seconds)."""


@dataclass
class Ctx:
    quick: bool = False
    device: str = "cpu"  # "cpu" | "cuda": the backend our side runs on
    seed: int = 20261126
    repeat: int = 1
    repeats: int = 1  # the stability gate's repeats of this run
    raw_dir: Path = Path("benchmark_results/raw")
    deadline: float = math.inf  # time.perf_counter() value
    progress: object = None
    python: str = sys.executable
    notes: list = field(default_factory=list)  # suite notes (unique), filled by runners

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def case(self, text: str) -> None:
        if self.progress is not None:
            self.progress.set_case(text)

    def set_repeat(self, k: int) -> None:
        """A batched child (run_script) has started repeat k of self.repeats: move the progress bar on."""
        if self.progress is not None and hasattr(self.progress, "set_repeat"):
            self.progress.set_repeat(k, self.repeats)

    def note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)


@dataclass
class Suite:
    name: str
    title: str
    run: Callable[[Ctx], list]
    doc: str = ""


REGISTRY: dict[str, Suite] = {}
DEFAULT_ORDER = ["kernel", "pipeline", "ml", "large_gemm_sweep", "resident", "graph_eager_ab", "fusion",
                 "api_overhead", "engine_split"]


def register(name: str, title: str, run: Callable[[Ctx], list], doc: str = "") -> Suite:
    REGISTRY[name] = s = Suite(name, title, run, doc)
    return s


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


# ---- running a script of benchmarks/python -----------------------------------------------------------------
def scripts_dir() -> Path | None:
    env = os.environ.get("LC_BENCH_SCRIPTS")
    d = Path(env) if env else Path(__file__).resolve().parents[3] / "benchmarks" / "python"
    return d if (d / "harness.py").is_file() else None


def _child_env() -> dict:
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])  # the directory holding lightning_core/
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    return env


OUT = "{out}"  # in a runner's script arguments: that repeat's output directory, OUT/raw/<tag>/r<k>
_BATCHES: dict = {}  # (OUT/raw/<tag>, script) -> {"killed", "rc", "log"} of the child started at repeat 1


def run_script(ctx: Ctx, script: str, args: list[str], stem: str, tag: str) -> dict:
    """benchmarks/python/<script> args, for repeat ctx.repeat; returns that repeat's OUT/raw/<tag>/r<k>/<stem>.json.

    At repeat 1 one child process (lightning_core.bench.child) runs the script ctx.repeats times in a row,
    each repeat writing into its own r<k> directory ("{out}" in args); later repeats read what it wrote.
    So the interpreter/torch/CUDA start-up is paid once per suite and script, not once per repeat."""
    sdir = scripts_dir()
    if sdir is None:
        raise SuiteUnavailable("run from a source checkout (benchmarks/python not found)")
    base = Path(ctx.raw_dir) / tag
    key = (str(base.resolve()), script)
    if ctx.repeat == 1 or key not in _BATCHES:
        n = max(1, ctx.repeats) if ctx.repeat == 1 else 1
        k = "{k}" if n > 1 else str(ctx.repeat)
        _BATCHES[key] = _launch(ctx, sdir, script, [a.replace(OUT, str(base / f"r{k}")) for a in args], n, base,
                                stem, tag)
    batch = _BATCHES[key]
    path = base / f"r{ctx.repeat}" / f"{stem}.json"
    if not path.is_file():
        if batch["killed"]:
            raise SuiteTimeout(f"{script} killed at the time budget (--max-seconds) before repeat {ctx.repeat} "
                               f"was written; log {batch['log']}")
        raise RuntimeError(f"{script} exited {batch['rc']} without r{ctx.repeat}/{path.name}; log {batch['log']}")
    return json.loads(path.read_text(encoding="utf-8"))


def _launch(ctx: Ctx, sdir: Path, script: str, args: list[str], n: int, base: Path, stem: str, tag: str) -> dict:
    """Runs `python -m lightning_core.bench.child n script args` to its end (or to the time budget)."""
    remaining = ctx.remaining()
    if remaining <= 1:
        raise SuiteTimeout("time budget (--max-seconds) used up before the suite started")
    base.mkdir(parents=True, exist_ok=True)
    for k in range(ctx.repeat, ctx.repeat + n):  # no stale JSON from an earlier run in the same OUT
        (base / f"r{k}" / f"{stem}.json").unlink(missing_ok=True)
    log_path = base / f"{stem}.log"
    cmd = [ctx.python, "-u", "-m", "lightning_core.bench.child", str(n), str(sdir / script), *args]
    log = log_path.open("w", encoding="utf-8")
    log.write("$ " + " ".join(cmd) + "\n")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            env=_child_env(), cwd=str(sdir.parents[1]))
    killed = []

    def kill():
        killed.append(True)
        proc.kill()

    timer = threading.Timer(remaining, kill) if math.isfinite(remaining) else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        for line in proc.stdout:
            log.write(line)
            s = line.strip()
            if s.startswith("[repeat ") and n > 1:
                ctx.set_repeat(int(s[8:].split("/")[0]))
            elif s and not s.startswith(("|", "environment:")) and (line[:1].isspace() or s.startswith("==")):
                ctx.case(s.strip("= ")[:100])
        rc = proc.wait()
    finally:
        if timer:
            timer.cancel()
        log.close()
    if rc != 0 and not killed:
        ctx.note(f"{script} exited {rc} (failed checks or rows not ok; see raw/{tag})")
    return {"killed": bool(killed), "rc": rc, "log": log_path}


# ---- row conversion helpers ----------------------------------------------------------------------------------
def _f(v) -> float:
    return float(v) if H.finite(v) else float("nan")


def _status(src: dict) -> str:
    st = src.get("status") or "ok"
    return st if st in ("ok", "FAILED", "error") else "error"


def _add(out: list, ctx_suite: str, family: str, case: str, mode: str, ours, peer: str, peer_ms, src: dict,
         **kw) -> None:
    """Appends a row when both sides were measured, or when the source row failed (so the failure shows)."""
    st = kw.pop("status", None) or _status(src)
    if not (H.finite(ours) and H.finite(peer_ms)) and st == "ok":
        return
    out.append(H.make_row(ctx_suite, family, case, mode, _f(ours), peer, _f(peer_ms), status=st, **kw))


def _na_notes(ctx: Ctx, rows: list[dict]) -> None:
    for r in rows:
        for reason in r.get("na") or []:
            ctx.note("n/a here: " + reason)
        for e in r.get("errors") or []:
            ctx.note(f"error in {r.get('row', '')} {r.get('case', '')}: {e}")


FAMILY = {"attention2d": "attention", "conv2d_relu": "conv", "conv2d_relu_3x3": "conv", "matmul2d": "gemm",
          "matmul2d_tf32": "gemm_tf32", "ffn_gelu": "ffn", "ln_proj": "ln->proj", "mlp_relu": "mlp",
          "conv_attn": "conv->attn", "conv_attn_chain": "conv->attn"}


# ---- quick_bench.py (CPU peers) ---------------------------------------------------------------------------------
def quick_rows(payload: dict, suite: str) -> list[dict]:
    env = payload.get("environment", {})
    torch_v = str(env.get("torch", "not installed"))
    out = []
    for r in payload.get("rows", []):
        err = _f(r.get("check_rel_err"))
        st = "ok" if err < 1e-3 else "FAILED"
        fam = FAMILY.get(r["bench"], r["bench"])
        case = f"{r['bench']} {r['shape']}"
        dev = r.get("device", "")
        note = f"LC path {r.get('lc_path', '?')}" + ("; ours: device='auto' (cost model)" if dev.startswith("auto") else "")
        kw = dict(shape=r["shape"], device=dev, cv=_f(r.get("lc_cv")), rel_err=err, notes=note, status=st)
        _add(out, suite, fam, case, "one_shot", r.get("lc_ms"), "numpy", r.get("numpy_ms"), r,
             peer_version=str(env.get("numpy", "")), **kw)
        if torch_v != "not installed":
            _add(out, suite, fam, case, "one_shot", r.get("lc_ms"), "torch_cpu", r.get("torch_cpu_ms"), r,
                 peer_version=torch_v, **kw)
    return out


def _quick(ctx: Ctx, suite: str, only: str) -> list[dict]:
    # Against the CPU peers (NumPy in, NumPy out) our side is what such a user calls on a GPU machine:
    # device="auto", the cost model's pick per call (tiny work stays on the CPU); the forced-CUDA one-shot
    # rows are gpu_bench's, against torch CUDA.
    args = ["--only", only, "--seed", str(ctx.seed), "--device", "route" if ctx.device == "cuda" else ctx.device,
            "--out-dir", OUT] + (["--quick"] if ctx.quick else [])
    return quick_rows(run_script(ctx, "quick_bench.py", args, "quick_bench", suite), suite)


# ---- gpu_bench.py (torch CUDA peers) -----------------------------------------------------------------------------
def gpu_rows(payload: dict, suite: str) -> list[dict]:
    env = payload.get("environment", {})
    tv = str(env.get("torch", ""))
    out = []
    for r in payload.get("rows", []):
        tf32 = r.get("suite") == "gemm_tf32"
        err = _f(r.get("check_rel_err"))
        st = "ok" if err < (5e-3 if tf32 else 1e-4) else "FAILED"
        fam = FAMILY.get(r["bench"], r["bench"])
        case = f"{r['bench']} {r['shape']}"
        base = "; ".join(filter(None, [r.get("note", ""), f"LC path {r.get('lc_path', '?')}"]))
        kw = dict(shape=r["shape"], device="cuda", rel_err=err, peer_version=tv, status=st)
        _add(out, suite, fam, case, "one_shot", r.get("lc_oneshot_ms"), "torch_cuda", r.get("torch_oneshot_ms"),
             r, notes=base, **kw)
        _add(out, suite, fam, case, "resident", r.get("lc_resident_ms"), "torch_cuda", r.get("torch_resident_ms"),
             r, notes=base, **kw)
        _add(out, suite, fam, case, "resident", r.get("lc_resident_ms"), "torch_cuda_graph", r.get("torch_graph_ms"),
             r, notes="ours: eager resident + sync; peer: CUDA graph replay + sync", **kw)
    return out


def _gpu(ctx: Ctx, suite: str, only: str) -> list[dict]:
    args = ["--only", only, "--out-dir", OUT]
    if ctx.quick:
        args.append("--quick")
    return gpu_rows(run_script(ctx, "gpu_bench.py", args, "gpu_bench", f"{suite}_gpu"), suite)


def _torch_cuda() -> bool:
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def _cpu_and_gpu(ctx: Ctx, suite: str, quick_only: str | None, gpu_only: str) -> list[dict]:
    rows = _quick(ctx, suite, quick_only) if quick_only else []
    if ctx.device == "cuda":
        if _torch_cuda():
            rows += _gpu(ctx, suite, gpu_only)
        else:
            ctx.note("gpu_bench.py skipped: torch with CUDA (the GPU peer) is not installed")
    return rows


# ---- session_bench.py ----------------------------------------------------------------------------------------------
def session_rows(payload: dict, suite: str) -> list[dict]:
    env = payload.get("environment", {})
    tv = str(env.get("torch", ""))
    out = []
    for r in payload.get("rows", []):
        td = r.get("torch_device", "n/a")
        peer, dev = f"torch_{td}", r.get("lc_device", "")
        err = _f(r.get("max_rel_err"))
        graph = r.get("lc_uses_graph") is True
        kw = dict(shape=r["case"], device=dev, rel_err=err, peer_version=tv)
        row = r.get("row")
        if row == "large_gemm_sweep":
            case = f"matmul {r['case']}"
            _add(out, suite, "gemm", case, "one_shot", r.get("lc_oneshot_ms"), peer, r.get("torch_oneshot_ms"), r,
                 notes="matmul_np_into vs torch from_numpy/.to/@/copy back", **kw)
            _add(out, suite, "gemm (session one-shot)", case + " session.sync_into", "one_shot",
                 r.get("lc_session_oneshot_ms"), peer, r.get("torch_oneshot_ms"), r, **kw)
            note = f"ours: session cached batch per iteration (uses_graph={r.get('lc_uses_graph')})"
            _add(out, suite, "gemm", case, "resident", r.get("lc_resident_ms"), peer, r.get("torch_resident_ms"), r,
                 notes=note, **kw)
            _add(out, suite, "gemm", case, "graph" if graph else "resident", r.get("lc_resident_ms"),
                 "torch_cuda_graph", r.get("torch_graph_ms"), r, notes=note, **kw)
        elif row == "mlp_resident":
            _add(out, suite, "mlp", f"mlp {r['case']}", "resident", r.get("lc_eager_ms"), peer,
                 r.get("torch_eager_ms"), r, notes=f"per iteration of {r.get('loops')} + one sync", **kw)
            _add(out, suite, "mlp", f"mlp {r['case']}", "graph", r.get("lc_graph_ms"), "torch_cuda_graph",
                 r.get("torch_graph_ms"), r, **kw)
        elif row == "conv_attn_chain":
            note = f"ours: ConvAttentionSession cached replay + sync (uses_graph={r.get('lc_uses_graph')})"
            _add(out, suite, "conv->attn", f"conv_attn {r['case']}", "resident", r.get("lc_latency_ms"), peer,
                 r.get("torch_eager_ms"), r, notes=note, **kw)
            _add(out, suite, "conv->attn", f"conv_attn {r['case']}", "graph" if graph else "resident",
                 r.get("lc_latency_ms"), "torch_cuda_graph", r.get("torch_graph_ms"), r, notes=note, **kw)
    return out


def _session(ctx: Ctx, suite: str, only: str) -> list[dict]:
    args = ["--only", only, "--device", ctx.device, "--out", OUT, "--max-seconds",
            f"{max(5.0, min(ctx.remaining(), 3600.0) * 0.9):.0f}"] + (["--quick"] if ctx.quick else [])
    payload = run_script(ctx, "session_bench.py", args, "session_bench", suite)
    _na_notes(ctx, payload.get("rows", []))
    return session_rows(payload, suite)


# ---- graph_eager_ab_bench.py and fusion_bench.py --------------------------------------------------------------------
def graph_ab_rows(payload: dict, suite: str) -> list[dict]:
    tv = str(payload.get("environment", {}).get("torch", ""))
    out = []
    for r in payload.get("rows", []):
        peer, fam = f"torch_{r.get('torch_device', 'n/a')}", FAMILY.get(r.get("row"), r.get("row", "?"))
        case = f"{r.get('row')} {r['case']}"
        kw = dict(shape=r["case"], device=r.get("lc_device", ""), rel_err=_f(r.get("max_rel_err")))
        disp = f"dispatches/it graph {r.get('lc_graph_dispatches_per_it')}, eager {r.get('lc_eager_dispatches_per_it')}"
        _add(out, suite, fam, case, "resident", r.get("lc_eager_ms"), peer, r.get("torch_eager_ms"), r,
             notes="ours: eager ops on device tensors + sync", peer_version=tv, **kw)
        _add(out, suite, fam, case, "graph", r.get("lc_graph_ms"), "lc_eager", r.get("lc_eager_ms"), r,
             notes="the A/B: ratio = eager / graph; " + disp, **kw)
        _add(out, suite, fam, case, "graph", r.get("lc_graph_ms"), peer, r.get("torch_eager_ms"), r,
             notes="peer eager resident + sync", peer_version=tv, **kw)
        _add(out, suite, fam, case, "graph", r.get("lc_graph_ms"), "torch_cuda_graph", r.get("torch_graph_ms"), r,
             peer_version=tv, **kw)
        _add(out, suite, fam, case, "one_shot", r.get("lc_graph_oneshot_ms"), peer, r.get("torch_oneshot_ms"), r,
             notes="ours: plan.run NumPy in/out; peer weights resident", peer_version=tv, **kw)
    return out


def fusion_rows(payload: dict, suite: str) -> list[dict]:
    tv = str(payload.get("environment", {}).get("torch", ""))
    out = []
    for r in payload.get("rows", []):
        peer, fam = f"torch_{r.get('torch_device', 'n/a')}", r.get("row", "?")
        case = f"{fam} {r['case']}"
        kw = dict(shape=r["case"], device=r.get("lc_device", ""), rel_err=_f(r.get("max_rel_err")))
        exp = r.get("expected_speedup")
        note = f"rules: {r.get('rules_fired', '?')}" + (f"; expected {exp:.2f}x" if H.finite(exp) else "")
        _add(out, suite, fam, case, "graph", r.get("lc_fused_ms"), "lc_unfused", r.get("lc_unfused_ms"), r,
             notes="fusion on vs off; " + note, **kw)
        _add(out, suite, fam, case, "graph", r.get("lc_fused_ms"), "lc_eager", r.get("lc_eager_ms"), r, **kw)
        _add(out, suite, fam, case, "graph", r.get("lc_fused_ms"), peer, r.get("torch_eager_ms"), r,
             notes="peer eager resident + sync", peer_version=tv, **kw)
        _add(out, suite, fam, case, "graph", r.get("lc_fused_ms"), "torch_cuda_graph", r.get("torch_graph_ms"), r,
             peer_version=tv, **kw)
        _add(out, suite, fam, case, "resident", r.get("lc_eager_ms"), peer, r.get("torch_eager_ms"), r,
             peer_version=tv, **kw)
    return out


def _sectioned(ctx: Ctx, suite: str, script: str, stem: str, convert) -> list[dict]:
    args = ["--device", ctx.device, "--out", OUT, "--max-seconds",
            f"{max(5.0, min(ctx.remaining(), 3600.0) * 0.9):.0f}"] + (["--quick"] if ctx.quick else [])
    payload = run_script(ctx, script, args, stem, suite)
    _na_notes(ctx, payload.get("rows", []))
    return convert(payload, suite)


# ---- api_overhead_bench.py -------------------------------------------------------------------------------------------
def api_rows(payload: dict, suite: str, device: str) -> list[dict]:
    out = []
    for r in payload.get("rows", []):
        if r.get("error"):
            continue
        verdict = str(r.get("verdict", ""))
        st = "FAILED" if verdict == "FAILED" else "ok"
        note = f"target API/direct {r.get('target', '?')}: {verdict}"
        if "same_pointer" in r:
            note += f"; same pointer {r['same_pointer']}"
        out.append(H.make_row(suite, r["case"].split()[0], r["case"], "one_shot", _f(r.get("api_ms")), "lc_direct",
                              _f(r.get("direct_ms")), device=device, notes=note, status=st if H.finite(
                                  r.get("direct_ms")) else "n/a"))
    return out


def _api(ctx: Ctx) -> list[dict]:
    args = ["--device", ctx.device, "--out", OUT] + (["--quick"] if ctx.quick else [])
    payload = run_script(ctx, "api_overhead_bench.py", args, "api_overhead", "api_overhead")
    for r in payload.get("rows", []):
        if r.get("error"):
            ctx.note(f"{r.get('case')}: {r['error']}")
    return api_rows(payload, "api_overhead", ctx.device)


def _native(name):
    def run(ctx):
        from . import native
        return getattr(native, name)(ctx)
    return run


def _pipeline(ctx: Ctx) -> list[dict]:
    if ctx.device == "cuda":
        return _cpu_and_gpu(ctx, "pipeline", None, "pipeline,model")
    return _native("pipeline_cpu")(ctx)


register("kernel", "Kernel (attention, conv, GEMM)",
         lambda c: _cpu_and_gpu(c, "kernel", "attention,conv,matmul", "kernel,gemm,gemm_tf32"),
         "quick_bench.py (NumPy, torch CPU); gpu_bench.py on CUDA (torch CUDA)")
register("pipeline", "Pipeline (ffn, ln->proj, conv->attn, mlp)", _pipeline,
         "native.pipeline_cpu on CPU; gpu_bench.py --only pipeline,model on CUDA")
register("ml", "ML (linear, matrix_sub, vector_add)", lambda c: _cpu_and_gpu(c, "ml", "ml", "ml"),
         "quick_bench.py --only ml; gpu_bench.py --only ml on CUDA")
register("large_gemm_sweep", "DL large GEMM sweep", lambda c: _session(c, "large_gemm_sweep", "large_gemm_sweep"),
         "session_bench.py --only large_gemm_sweep")
register("resident", "Resident sessions (mlp, conv->attn chain)",
         lambda c: _session(c, "resident", "mlp_resident,conv_attn_chain"),
         "session_bench.py --only mlp_resident,conv_attn_chain")
register("graph_eager_ab", "Graph / eager A/B",
         lambda c: _sectioned(c, "graph_eager_ab", "graph_eager_ab_bench.py", "graph_eager_ab", graph_ab_rows),
         "graph_eager_ab_bench.py")
register("fusion", "Fusion (fused vs unfused plans)",
         lambda c: _sectioned(c, "fusion", "fusion_bench.py", "fusion_bench", fusion_rows), "fusion_bench.py")
register("api_overhead", "API overhead (lc.api / nn vs direct C calls)", _api, "api_overhead_bench.py")
register("engine_split", "Engine split (lc.api lightning vs torch)", _native("engine_split"),
         "native.engine_split")
