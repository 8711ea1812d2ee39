"""Shared benchmark harness: timing, environment capture and CSV/JSON/Markdown writers.

Timing rule: every side of a row is timed the same way (host wall clock around the whole call,
NumPy in -> NumPy out), warmed up first, reported as the median of repeated samples. Tiny calls are
timed in batches (`inner` calls per sample) so the clock's own cost does not dominate.
Used by quick_bench.py (and the later suites). Tested by tests/python/test_bench_harness.py.
"""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable


def time_call(fn: Callable[[], object], *, warmup: int = 5, samples: int = 21,
              min_sample_s: float = 2e-4, max_inner: int = 20000, settle_s: float = 0.15) -> dict:
    """Median seconds per call of fn(). Picks `inner` so one sample lasts >= min_sample_s.

    Sleeps `settle_s` first: BLAS libraries' worker threads (NumPy's OpenBLAS, torch's OpenMP) spin for
    a while after a call and would steal cores from whichever side is timed next.
    Returns {"median_s", "min_s", "cv", "inner", "samples"}; cv = stdev/mean of the per-call samples.
    """
    if settle_s > 0:
        time.sleep(settle_s)
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-9)
    inner = int(min(max_inner, max(1, math.ceil(min_sample_s / once))))
    per_call = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        per_call.append((time.perf_counter() - t0) / inner)
    mean = statistics.fmean(per_call)
    cv = statistics.pstdev(per_call) / mean if mean > 0 else float("nan")
    return {"median_s": statistics.median(per_call), "min_s": min(per_call), "cv": cv,
            "inner": inner, "samples": samples}


def ratio(peer_s: float | None, ours_s: float | None) -> float:
    """peer/ours: > 1 means we are faster. NaN when either side is missing."""
    if peer_s is None or ours_s is None or not (peer_s > 0 and ours_s > 0):
        return float("nan")
    return peer_s / ours_s


def environment(extra: dict | None = None) -> dict:
    """Machine and library versions for the report header."""
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpus_online": os.cpu_count(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        import numpy as np
        env["numpy"] = np.__version__
        try:
            from threadpoolctl import threadpool_info
            blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
            if blas:
                env["numpy_blas"] = f"{blas[0].get('internal_api')} {blas[0].get('version')} " \
                                    f"{blas[0].get('architecture')} threads={blas[0].get('num_threads')}"
        except Exception:
            pass
    except Exception:
        pass
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LC_NUM_THREADS", "OMP_NUM_THREADS"):
        if var in os.environ:
            env[f"env_{var}"] = os.environ[var]
    if extra:
        env.update(extra)
    return env


def gpu_info() -> dict:
    """{"nvidia_smi": "name, driver version" per GPU} from nvidia-smi; {} where there is none."""
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if smi.returncode == 0 and smi.stdout.strip():
            return {"nvidia_smi": smi.stdout.strip().replace("\n", " | ")}
    except Exception:  # noqa: BLE001  (no nvidia-smi, or it hangs: no GPU line)
        pass
    return {}


def json_safe(v):
    """v with NaN/inf floats as None and NumPy scalars as Python ones (strict JSON), recursively."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if hasattr(v, "item") and type(v).__module__ == "numpy":
        return v.item()
    return v


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def write_json(path: Path, env: dict, rows: list[dict], extra: dict | None = None) -> None:
    """{"environment": env, "rows": rows} plus the top-level keys of `extra` (e.g. "targets")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"environment": env, "rows": rows}
    payload.update(extra or {})
    path.write_text(json.dumps(payload, indent=2, default=_json_default), encoding="utf-8")


def _json_default(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    return str(x)


def fmt_ms(seconds: float | None) -> str:
    if seconds is None or not (seconds == seconds):
        return "n/a"
    ms = seconds * 1e3
    return f"{ms:.4f}" if ms < 1 else f"{ms:.3f}"


def fmt_ratio(r: float) -> str:
    return "n/a" if not (r == r) else f"{r:.2f}x"


def markdown_table(headers: Iterable[str], lines: Iterable[Iterable[str]]) -> str:
    headers = list(headers)
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    for line in lines:
        out.append("| " + " | ".join(str(c) for c in line) + " |")
    return "\n".join(out)


def summarize(ratios: list[float]) -> dict:
    """Win rate (> 1.0), median, min, max of finite ratios."""
    vals = [r for r in ratios if r == r]
    if not vals:
        return {"rows": 0, "win_rate": float("nan"), "median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"rows": len(vals), "win_rate": sum(1 for r in vals if r > 1.0) / len(vals),
            "median": statistics.median(vals), "min": min(vals), "max": max(vals)}


# ---- helpers of the sectioned reports (graph_eager_ab_bench.py, fusion_bench.py) ---------------------------
def max_abs_diff(a, b) -> float:
    """max |a - b| in float64 over arrays of the same element count; inf when either holds NaN/inf."""
    import numpy as np
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"max_abs_diff: {a.size} vs {b.size} elements")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def cell(row: dict, key: str, fmt: Callable[[object], str] = str) -> str:
    """row[key] formatted by fmt; 'n/a' for a missing key, None or a non-finite float."""
    v = row.get(key)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    try:
        return fmt(v)
    except Exception:  # noqa: BLE001  (an unexpected value type: show it as it is)
        return str(v)


def ms_cell(v) -> str:
    """A value already in milliseconds, formatted as fmt_ms does."""
    return fmt_ms(None if v is None else v / 1e3)


def write_sectioned_reports(out_dir: Path, stem: str, env: dict, sections: list, spec: list, targets: list,
                            intro: list[str] | None = None, list_keys: Iterable[str] = (),
                            json_only_keys: Iterable[str] = (), extra: dict | None = None) -> None:
    """OUT/<stem>.json ({"environment", "rows", "targets"} + extra), OUT/<stem>_<section>.csv and OUT/<stem>.md.

    sections: [(name, rows)]; spec: [(header, key, formatter)] for the Markdown tables (the status and
    rel err columns are added); targets: [[target, case, measured, verdict]]; list_keys: row keys holding
    lists, joined with '; ' in the CSV; json_only_keys: row keys left out of the CSV (nested data)."""
    list_keys, json_only_keys = set(list_keys), set(json_only_keys)
    rows = [r for _, rs in sections for r in rs]
    payload_extra = {"targets": targets}
    payload_extra.update(extra or {})
    write_json(out_dir / f"{stem}.json", env, [json_safe(r) for r in rows], extra=json_safe(payload_extra))
    for name, rs in sections:
        fields = []
        for r in rs:
            fields += [k for k in r if k not in fields and k not in json_only_keys]
        flat = [{k: ("; ".join(map(str, v)) if k in list_keys and isinstance(v, list) else v)
                 for k, v in json_safe(r).items()} for r in rs]
        write_csv(out_dir / f"{stem}_{name}.csv", flat, fields)
    md = [f"# {stem}", "", *[f"- {k}: {v}" for k, v in env.items()], "", *(intro or []), ""]
    for name, rs in sections:
        lines = [[cell(r, k, f) for _, k, f in spec]
                 + [r.get("status", "?") + (f" ({'; '.join(r['failed_checks'])})" if r.get("failed_checks") else ""),
                    cell(r, "max_rel_err", lambda v: f"{v:.1e}")] for r in rs]
        md += [f"## {name}", "", markdown_table([h for h, _, _ in spec] + ["status", "rel err"], lines), ""]
        notes = [f"- {r.get('case', '?')}: " + "; ".join(r.get("errors", []) + r.get("na", []) + r.get("notes", []))
                 for r in rs if r.get("errors") or r.get("na") or r.get("notes")]
        md += (["Errors, n/a columns and notes:", *notes, ""] if notes else [])
    if targets:
        md += ["## Targets", "", markdown_table(["target", "case", "measured", "verdict"], targets), ""]
    (out_dir / f"{stem}.md").write_text("\n".join(md), encoding="utf-8")
