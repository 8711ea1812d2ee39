"""Environment block, CSV + JSON per suite, the Markdown report (the seed's summary shape) and the PNGs.

Output layout under OUT (default benchmark_results/):
  <suite>.csv           the suite's aggregated rows (harness.FIELDS, one row per case x mode x peer)
  <suite>.json          {"environment", "suite", "rows"}: suite = status, wall_s, repeats, summary (per mode
                        and peer), families, stability; rows add ours_ms_repeats / peer_ms_repeats
  summary.json          {"environment", "run", "suites": {name: suite block without rows}}
  report.md             A. suite summary, B. family summary, C. stability gate, D. full case tables, totals
  charts/<suite>.png    speedup per case, log scale (charts.py)
  raw/<suite>.log       the suite's child process: its command line and its own output
summary_text(blocks) is the suite summary table (section A) that the command prints at its end.
"""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

from . import harness as H

ENV_KEYS = ("python", "platform", "machine", "cpu", "cpus_online", "time_utc", "numpy", "lightning_core",
            "lc_backend", "lc_threads", "lc_blas", "lc_cpu_features", "lc_matmul_precision", "torch", "torch_cuda",
            "gpu", "driver", "flags")


# ---- environment -------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(extra: dict | None = None) -> dict:
    """Machine and library versions for a report header (python, platform, cpu, NumPy + its BLAS, env flags)."""
    env = {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
           "cpu": cpu_model(), "cpus_online": os.cpu_count(),
           "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        import numpy as np
        env["numpy"] = np.__version__
        try:
            from threadpoolctl import threadpool_info
            blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
            if blas:
                env["numpy_blas"] = f"{blas[0].get('internal_api')} {blas[0].get('version')} " \
                                    f"{blas[0].get('architecture')} threads={blas[0].get('num_threads')}"
        except Exception:  # noqa: BLE001  (threadpoolctl is optional)
            pass
    except Exception:  # noqa: BLE001
        pass
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LC_NUM_THREADS", "OMP_NUM_THREADS", "LC_SYNC_POLICY"):
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


def _try(fn, default="n/a"):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        return f"{default} ({type(e).__name__})"


def full_environment(flags: str = "", probe_torch: bool = True) -> dict:
    """environment() plus every key of ENV_KEYS: lightning_core build/runtime, torch, card and driver."""
    extra: dict = {}
    try:
        import lightning_core as lc
        extra.update({"lightning_core": lc.__version__, "lc_backend": _try(lc.backend_name),
                      "lc_threads": _try(lc.num_threads), "lc_blas": _try(lc.blas_name),
                      "lc_cpu_features": _try(lc.cpu_features), "lc_matmul_precision": _try(lc.get_matmul_precision),
                      "lc_cuda_available": _try(lc.cuda_available)})
    except Exception as e:  # noqa: BLE001
        extra["lightning_core"] = f"not importable ({e})"
    extra["torch"] = "not installed"
    if probe_torch:
        try:
            import torch
            extra["torch"] = torch.__version__
            extra["torch_cuda"] = str(torch.version.cuda) if torch.cuda.is_available() else "no CUDA"
            if torch.cuda.is_available():
                extra["gpu"] = _try(torch.cuda.get_device_name)
        except Exception:  # noqa: BLE001  (torch is an optional peer)
            pass
    smi = gpu_info()
    if smi:
        extra["nvidia_smi"] = smi["nvidia_smi"]
        parts = [p.strip() for p in smi["nvidia_smi"].split("|")[0].split(",")]
        if extra.get("gpu") in (None, "n/a") and parts:
            extra["gpu"] = parts[0]
        if len(parts) > 1:
            extra["driver"] = parts[1]
    extra["flags"] = flags or "n/a"
    env = environment(extra)
    for k in ENV_KEYS:  # every key present, "n/a" where this machine has nothing to say
        env.setdefault(k, "n/a")
    return env


# ---- JSON / CSV ----------------------------------------------------------------------------------------------
def json_safe(v):
    """v with NaN/inf floats as None and NumPy scalars as Python ones (strict JSON), recursively."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if hasattr(v, "item") and type(v).__module__ == "numpy":
        return json_safe(v.item())
    return v


def write_suite(out_dir: Path, name: str, env: dict, block: dict, rows: list[dict]) -> tuple[Path, Path]:
    """OUT/<name>.csv (harness.FIELDS) and OUT/<name>.json ({"environment", "suite", "rows"})."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / f"{name}.csv", out_dir / f"{name}.json"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=H.FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in json_safe(r).items()})
    payload = {"environment": env, "suite": block, "rows": rows}
    json_path.write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False), encoding="utf-8")
    return csv_path, json_path


def read_csv_rows(path: Path) -> list[dict]:
    """CSV rows back with numbers as floats (empty cells as NaN) and repeats as int."""
    num = set(H.NUMERIC)
    out = []
    with Path(path).open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            for k in num:
                r[k] = float(r[k]) if r.get(k) not in (None, "") else float("nan")
            r["repeats"] = int(r["repeats"]) if r.get("repeats") else 0
            out.append(r)
    return out


# ---- Markdown --------------------------------------------------------------------------------------------------
def md_table(headers, lines, align=None) -> str:
    headers = list(headers)
    align = align or ["---"] * len(headers)
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in line) + " |" for line in lines]
    return "\n".join(out)


def _num_align(n_text, n_num):
    return ["---"] * n_text + ["---:"] * n_num


def _summary_cells(s):
    return [s["rows"], H.fmt_pct(s["win_rate"]), H.fmt_ratio(s["median"]), H.fmt_ratio(s["geomean"]),
            H.fmt_ratio(s["avg"]), H.fmt_ratio(s["min"]), H.fmt_ratio(s["max"])]


def summary_text(suites: list[dict]) -> str:
    """The suite summary table (Markdown): one line per suite, mode and peer of the suites with rows."""
    lines = [[s["name"], g["mode"], g["peer"], *_summary_cells(g)] for s in suites if s.get("rows")
             for g in s["summary"]]
    if not lines:
        return "(no rows)"
    return md_table(["Suite", "Mode", "Peer", "Rows", "Win Rate (>1.0)", "Median", "Geomean", "Avg", "Min", "Max"],
                    lines, _num_align(3, 7))


def render_markdown(env: dict, run: dict, suites: list[dict]) -> str:
    """suites: [{"name", "title", "status", "notes", "wall_s", "rows", "summary", "families", "stability",
    "chart"}] in run order. Returns the report text."""
    md = [f"# Lightning Core benchmark report ({run.get('mode', 'full')})", ""]
    md += [f"- {k}: {v}" for k, v in env.items()]
    md += ["", f"Run: `{run.get('command', 'python -m lightning_core.bench')}`; device {run.get('device')}; "
               f"dtype {run.get('dtype', 'float32')}; "
               f"repeats {run.get('repeats')}; seed {run.get('seed')}; CV threshold "
               f"{H.fmt_pct(run.get('cv_threshold'))}; wall time {run.get('wall_s', float('nan')):.1f} s.", "",
           "Result key: ratio = peer ms / ours ms, so `> 1.0` means Lightning Core is faster on that row. One-shot "
           "(NumPy in, NumPy out), resident (device data, call + sync) and graph (captured graph / plan replay) rows "
           "are summarised separately per peer and never averaged together. Times are medians of repeated samples, "
           "then the median across repeats.", ""]
    ran = [s for s in suites if s.get("rows")]
    md += ["## A. Suite summary (all rows)", "", summary_text(suites), ""]
    md += ["## B. Family summary (to avoid average distortion)", ""]
    for s in ran:
        fl = [[g["family"], g["mode"], g["peer"], *_summary_cells(g)] for g in s["families"]]
        md += [f"{s['name']} families:", "", md_table(["Family", "Mode", "Peer", "Rows", "Win Rate", "Median",
                                                       "Geomean", "Avg", "Min", "Max"], fl, _num_align(3, 7)), ""]
    md += ["## C. Stability gate", "",
           f"Each suite ran {run.get('repeats')} time(s) with seed {run.get('seed')} (its repeats back to back in one "
           "child process, each from fresh inputs); cv = stdev / mean of our "
           f"per-case medians across repeats; rows above {H.fmt_pct(run.get('cv_threshold'))} are marked unstable. "
           "Suite-total CV: CV across repeats of the sum of our per-case times (the seed's gate quantity).", ""]
    sl = []
    for s in suites:
        st = s.get("stability") or {}
        sl.append([s["name"], s.get("status", "?"), st.get("repeats", 0), st.get("cases_with_cv", 0),
                   st.get("unstable", 0), H.fmt_pct(st.get("max_cv")), H.fmt_pct(st.get("suite_total_cv")),
                   f"{s.get('wall_s', 0.0):.1f}"])
    md += [md_table(["Suite", "Status", "Repeats", "Cases (case x mode)", "Unstable", "Max CV", "Suite-total CV",
                     "Wall s"], sl, _num_align(2, 6)), ""]
    uns = [f"- {s['name']}: {c}" for s in suites for c in (s.get("stability") or {}).get("unstable_cases", [])]
    md += (["Unstable rows:", *uns, ""] if uns else ["No unstable rows.", ""])
    md += ["## D. Full case tables (all results)", ""]
    for s in ran:
        rows = s["rows"]
        lines = [[r["case"], r["mode"], r.get("device", ""), H.fmt_ms(r["ours_ms"]), r["peer"],
                  H.fmt_ms(r["peer_ms"]), H.fmt_ratio(r["ratio"]), H.fmt_pct(r["cv"]), r["status"],
                  f"{r['rel_err']:.1e}" if H.finite(r.get("rel_err")) else "n/a",
                  "; ".join(filter(None, [f"path {r['path']}" if r.get("path") else "", r.get("notes", "")]))]
                 for r in rows]
        md += ["<details>", f"<summary>{s.get('title', s['name'])} ({len(rows)} rows)</summary>", "",
               md_table(["Case", "Mode", "Device", "Ours ms", "Peer", "Peer ms", "Peer/Ours", "CV", "Status",
                         "rel err", "Notes"], lines, _num_align(3, 0) + ["---:", "---", "---:", "---:", "---:",
                                                                        "---", "---:", "---"]),
               "", "</details>", ""]
        if s.get("notes"):
            md += [f"Notes ({s['name']}): {s['notes']}", ""]
        if s.get("chart"):
            md += [f"![{s['name']} speedup]({s['chart']})", ""]
    other = [s for s in suites if not s.get("rows")]
    if other:
        md += ["## E. Suites without rows", ""]
        md += [f"- {s['name']}: {s.get('status', '?')}" + (f" ({s['notes']})" if s.get("notes") else "")
               for s in other]
        md += [""]
    md += ["## Totals", "", md_table(["Suite", "Status", "Rows", "Wall s"],
                                     [[s["name"], s.get("status", "?"), len(s.get("rows") or []),
                                       f"{s.get('wall_s', 0.0):.1f}"] for s in suites]
                                     + [["all", "", sum(len(s.get("rows") or []) for s in suites),
                                         f"{run.get('wall_s', float('nan')):.1f}"]], _num_align(2, 2)), ""]
    return "\n".join(md)


def write_report(out_dir: Path, env: dict, run: dict, suites: list[dict]) -> Path:
    """OUT/report.md and OUT/summary.json (the suite blocks without their rows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.md"
    path.write_text(render_markdown(env, run, suites), encoding="utf-8")
    blocks = {s["name"]: {k: v for k, v in s.items() if k != "rows"} | {"row_count": len(s.get("rows") or [])}
              for s in suites}
    (out_dir / "summary.json").write_text(json.dumps(json_safe({"environment": env, "run": run, "suites": blocks}),
                                                     indent=2, allow_nan=False), encoding="utf-8")
    return path
