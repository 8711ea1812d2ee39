"""The one row schema and the ratio / summary arithmetic of ``python -m lightning_core.bench``.

Timing: timer.time_call (one timer for every side of every row). References and the relative error:
lightning_core.testing.refs.
Row schema (one row = our side against one peer on one case in one mode), FIELDS:
  suite, family, case, shape, mode ("one_shot" | "resident" | "graph"), dtype ("float32", "float64", ...),
  device (where our side ran, e.g. "cpu", "cuda", "auto->cpu"), ours_ms, peer, peer_version, peer_ms,
  ratio (= peer_ms / ours_ms: > 1 means Lightning Core is faster), cv (coefficient of variation of
  ours_ms: across repeats once aggregated, else within the run), peer_cv, repeats, status ("ok" | "n/a" |
  "FAILED" | "error" | "unstable"), rel_err (the worse of both sides' relative error against the float64
  reference), path (our kernel path, lc.last_dispatch()), flops and bytes (work of one call; NaN where not
  counted), notes.
Summaries never mix modes or peers: they are grouped by (mode, peer), and per family inside that.
Tested by tests/python/test_bench_harness.py.
"""
from __future__ import annotations

import math
import statistics
from typing import Iterable

from .timer import finite, stats

FIELDS = ["suite", "family", "case", "shape", "mode", "dtype", "device", "ours_ms", "peer", "peer_version", "peer_ms",
          "ratio", "cv", "peer_cv", "repeats", "status", "rel_err", "path", "flops", "bytes", "notes"]
NUMERIC = ("ours_ms", "peer_ms", "ratio", "cv", "peer_cv", "rel_err", "flops", "bytes")
MODES = ("one_shot", "resident", "graph")
STATUS_RANK = {"ok": 0, "unstable": 1, "n/a": 2, "FAILED": 4, "error": 3}


def ratio(peer, ours) -> float:
    """peer / ours: > 1 means we are faster. NaN when either side is missing or not positive."""
    if not (finite(peer) and finite(ours) and peer > 0 and ours > 0):
        return float("nan")
    return float(peer) / float(ours)


def _num(v) -> float:
    return float(v) if finite(v) else float("nan")


def make_row(suite: str, family: str, case: str, mode: str, ours_ms, peer: str, peer_ms, *, shape: str = "",
             dtype: str = "float32", device: str = "", peer_version: str = "", cv=float("nan"), peer_cv=float("nan"),
             status: str = "", rel_err=float("nan"), path: str = "", flops=float("nan"), nbytes=float("nan"),
             notes: str = "", repeats: int = 1) -> dict:
    """A row of the schema (FIELDS); ratio computed; status 'n/a' where a side is missing (unless given)."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    ours_ms, peer_ms = _num(ours_ms), _num(peer_ms)
    r = ratio(peer_ms, ours_ms)
    if not status or (status == "ok" and not finite(r)):
        status = "ok" if finite(r) else "n/a"
    return {"suite": suite, "family": family, "case": case, "shape": shape, "mode": mode, "dtype": dtype,
            "device": device, "ours_ms": ours_ms, "peer": peer, "peer_version": peer_version, "peer_ms": peer_ms,
            "ratio": r, "cv": _num(cv), "peer_cv": _num(peer_cv), "repeats": int(repeats), "status": status,
            "rel_err": _num(rel_err), "path": path, "flops": _num(flops), "bytes": _num(nbytes), "notes": notes}


def check_row(row: dict) -> list[str]:
    """What is wrong with a row against the schema (an empty list when nothing). None stands for NaN in a
    numeric field (strict JSON)."""
    bad = [f"missing {k}" for k in FIELDS if k not in row]
    if row.get("mode") not in MODES:
        bad.append(f"mode {row.get('mode')!r}")
    if row.get("status") not in STATUS_RANK:
        bad.append(f"status {row.get('status')!r}")
    bad += [f"{k} is {type(row[k]).__name__}, not float" for k in NUMERIC
            if k in row and row[k] is not None and not isinstance(row[k], float)]
    if row.get("status") == "ok" and not (finite(row.get("ours_ms")) and finite(row.get("peer_ms"))):
        bad.append("status ok without both times")
    return bad


def summarize(ratios: Iterable[float]) -> dict:
    """rows (finite ratios), win rate (share of ratios > 1.0), median, avg, geomean, min, max."""
    vals = [float(r) for r in ratios if finite(r) and r > 0]
    if not vals:
        nan = float("nan")
        return {"rows": 0, "win_rate": nan, "median": nan, "avg": nan, "geomean": nan, "min": nan, "max": nan}
    return {"rows": len(vals), "win_rate": sum(1 for r in vals if r > 1.0) / len(vals),
            "median": statistics.median(vals), "avg": statistics.fmean(vals),
            "geomean": math.exp(statistics.fmean(math.log(r) for r in vals)), "min": min(vals), "max": max(vals)}


def group_summaries(rows: list[dict], by: tuple[str, ...] = ("mode", "peer")) -> list[dict]:
    """One summary per distinct value of the `by` keys (first-seen order), each {key: value, ...,
    "total": rows in the group incl. n/a, **summarize(ratios)}."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    out = []
    for key, rs in groups.items():
        s = summarize(r.get("ratio") for r in rs)
        out.append({**dict(zip(by, key)), "total": len(rs), **s})
    return out


def family_summaries(rows: list[dict]) -> list[dict]:
    """Per (mode, peer, family): the seed's 'family summary' (to avoid average distortion)."""
    return group_summaries(rows, ("mode", "peer", "family"))


def row_key(r: dict) -> tuple:
    return (r.get("suite"), r.get("case"), r.get("mode"), r.get("dtype"), r.get("peer"))


def aggregate_repeats(repeats: list[list[dict]], cv_threshold: float = 0.10) -> list[dict]:
    """Rows of N repeated runs -> one row per (suite, case, mode, peer): medians of ours_ms and peer_ms
    across repeats, ratio of those medians, cv / peer_cv across repeats (the stability gate), the worst
    status; 'unstable' where an ok row's cv exceeds cv_threshold. JSON-only lists ours_ms_repeats and
    peer_ms_repeats keep the per-repeat values. A single repeat keeps the within-run cv."""
    order: list[tuple] = []
    by: dict[tuple, list[dict]] = {}
    for rows in repeats:
        for r in rows:
            k = row_key(r)
            if k not in by:
                order.append(k)
                by[k] = []
            by[k].append(r)
    out = []
    n_rep = len(repeats)
    for k in order:
        rs = by[k]
        first = rs[0]
        ours = [r.get("ours_ms") for r in rs]
        peer = [r.get("peer_ms") for r in rs]
        so, sp = stats(ours), stats(peer)
        multi = n_rep > 1 and so["n"] > 1
        status = max((r.get("status") or "ok" for r in rs), key=lambda s: STATUS_RANK.get(s, 3))
        rels = [r.get("rel_err") for r in rs if finite(r.get("rel_err"))]
        notes = "; ".join(dict.fromkeys(n for r in rs for n in [r.get("notes")] if n))
        row = make_row(first["suite"], first.get("family", ""), first["case"], first["mode"], so["median"],
                       first["peer"], sp["median"], shape=first.get("shape", ""), dtype=first.get("dtype", "float32"),
                       device=first.get("device", ""), peer_version=first.get("peer_version", ""),
                       path=first.get("path", ""), flops=first.get("flops"), nbytes=first.get("bytes"),
                       cv=so["cv"] if multi else first.get("cv", float("nan")),
                       peer_cv=sp["cv"] if multi and sp["n"] > 1 else first.get("peer_cv", float("nan")),
                       status=status, rel_err=max(rels) if rels else float("nan"), notes=notes, repeats=len(rs))
        if len(rs) < n_rep and row["status"] == "ok":
            row["notes"] = "; ".join(filter(None, [row["notes"], f"measured in {len(rs)} of {n_rep} repeats"]))
        if multi and row["status"] == "ok" and finite(row["cv"]) and row["cv"] > cv_threshold:
            row["status"] = "unstable"
        row["ours_ms_repeats"] = [float(v) if finite(v) else None for v in ours]
        row["peer_ms_repeats"] = [float(v) if finite(v) else None for v in peer]
        out.append(row)
    return out


def stability(rows: list[dict], repeat_totals: list[float], cv_threshold: float = 0.10) -> dict:
    """The stability gate of one suite: cases with a cv, those above the threshold, the largest cv and the
    suite-total CV (CV across repeats of the sum of our per-case medians, the seed's gate quantity)."""
    seen: dict[tuple, dict] = {}  # our cv is per (case, mode): the same for every peer of that case
    for r in rows:
        if finite(r.get("cv")) and r.get("repeats", 1) > 1:
            seen.setdefault((r.get("case"), r.get("mode")), r)
    cvs = [(r["cv"], r) for r in seen.values()]
    unstable = [r for c, r in cvs if c > cv_threshold]
    tot = stats(repeat_totals)
    return {"cases_with_cv": len(cvs), "unstable": len(unstable),
            "unstable_cases": [f"{r['case']} [{r['mode']}] cv {r['cv'] * 100:.1f}%" for r in unstable],
            "max_cv": max((c for c, _ in cvs), default=float("nan")), "threshold": cv_threshold,
            "suite_total_cv": tot["cv"] if tot["n"] > 1 else float("nan"), "repeats": len(repeat_totals)}


def repeat_total_ms(rows: list[dict]) -> float:
    """Sum of our ms over the distinct (suite, case, mode) of one repeat (each case counted once, not
    once per peer)."""
    seen, total = set(), 0.0
    for r in rows:
        k = (r.get("suite"), r.get("case"), r.get("mode"))
        if k not in seen and finite(r.get("ours_ms")):
            seen.add(k)
            total += r["ours_ms"]
    return total


def fmt_ms(ms) -> str:
    if not finite(ms):
        return "n/a"
    return f"{ms:.4f}" if ms < 1 else f"{ms:.3f}"


def fmt_ratio(r) -> str:
    return f"{r:.2f}x" if finite(r) else "n/a"


def fmt_pct(v) -> str:
    return f"{v * 100:.1f}%" if finite(v) else "n/a"
