"""Shared benchmark harness: timing, environment capture and CSV/JSON/Markdown writers.

Timing rule: every side of a row is timed the same way (host wall clock around the whole call,
NumPy in -> NumPy out), warmed up first, reported as the median of repeated samples. Tiny calls are
timed in batches (`inner` calls per sample) so the clock's own cost does not dominate.
Used by the scripts here; time_call, environment, gpu_info and json_safe come from lightning_core.bench
(one implementation, tested by tests/python/test_bench_harness.py).
"""
from __future__ import annotations

import csv
import json
import math
import statistics
import sys
import traceback
from pathlib import Path
from typing import Callable, Iterable

# One implementation of timing and of the environment block: the installed package's benchmark harness
# (python -m lightning_core.bench). The names below stay importable from here for the suite scripts.
from lightning_core.bench.harness import time_call  # noqa: F401,E402
from lightning_core.bench.report import cpu_model, environment, gpu_info, json_safe  # noqa: F401,E402


def ratio(peer_s: float | None, ours_s: float | None) -> float:
    """peer/ours: > 1 means we are faster. NaN when either side is missing."""
    if peer_s is None or ours_s is None or not (peer_s > 0 and ours_s > 0):
        return float("nan")
    return peer_s / ours_s


_cpu_model = cpu_model  # the old private name


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


# ---- the section loop of session_bench.py, graph_eager_ab_bench.py and fusion_bench.py --------------------------
def run_sections(row_names: list[str], plans: dict, name: str, report: Callable[[list], None],
                 decorate: Callable[[dict], dict] = lambda r: r,
                 after_section: Callable[[str, list], None] | None = None) -> list[dict]:
    """Runs plans[section] (zero-argument callables, each returning one row dict) for every selected section,
    printing each row's status and rewriting the reports (report(sections)) after every section. A callable
    that raises gives an 'error' row and the run goes on. Returns every row."""
    sections = []
    for sec in row_names:
        print(f"\n== {sec} ==", flush=True)
        rows = []
        sections.append((sec, rows))
        for make_row in plans[sec]:
            try:
                r = make_row()
            except Exception as e:  # noqa: BLE001  (a bug outside the columns: keep going)
                r = {"row": sec, "case": "?", "status": "error", "failed_checks": [], "na": [], "notes": [],
                     "errors": [f"{type(e).__name__}: {e}"], "max_rel_err": float("nan")}
                traceback.print_exc(limit=4)
            rows.append(decorate(r))
            extra = "; ".join(r["failed_checks"] + r["errors"] + r["na"])
            print(f"  {r['case']}: {r['status']}" + (f" [{extra}]" if extra else ""), flush=True)
        if after_section is not None:
            after_section(sec, rows)
        try:
            report(sections)
        except Exception as e:  # noqa: BLE001
            print(f"{name}: could not write reports: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(limit=4)
    return [r for _, rs in sections for r in rs]


def finish_run(stem: str, out_dir, rows: list[dict], targets: list) -> int:
    """Prints the targets table, where the reports (OUT/<stem>.*) are and the rows not ok; the exit status
    (1: some not ok)."""
    if targets:
        print("\n" + markdown_table(["target", "case", "measured", "verdict"], targets))
    print(f"\nreports: {out_dir}/{stem}.json, {stem}.md, {stem}_<row>.csv")
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        print(f"{stem}: rows not ok: " + ", ".join(f"{r['row']} {r['case']} ({r['status']})" for r in bad))
    return 1 if bad else 0
