"""Timing, the common row schema and the ratio / summary arithmetic of ``python -m lightning_core.bench``.

Timing rule (DESIGN.md section 6): every side of a row is timed the same way (host clock around the whole
call, warmed up first), reported as the median of repeated samples; tiny calls are timed in batches
(``inner`` calls per sample) so the clock's own cost does not dominate.

Row schema (one row = our side against one peer on one case in one mode):
  suite, family, case, shape, mode ("one_shot" | "resident" | "graph"), device, ours_ms, peer,
  peer_version, peer_ms, ratio (= peer_ms / ours_ms: > 1 means Lightning Core is faster), cv (coefficient
  of variation of ours_ms: across repeats once aggregated, else within the run), peer_cv, repeats,
  status ("ok" | "n/a" | "FAILED" | "error" | "unstable"), rel_err, notes.
Summaries never mix modes or peers: they are grouped by (mode, peer), and per family inside that.
Tested by tests/python/test_bench_harness.py.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Iterable

FIELDS = ["suite", "family", "case", "shape", "mode", "device", "ours_ms", "peer", "peer_version", "peer_ms",
          "ratio", "cv", "peer_cv", "repeats", "status", "rel_err", "notes"]
MODES = ("one_shot", "resident", "graph")
STATUS_RANK = {"ok": 0, "unstable": 1, "n/a": 2, "FAILED": 4, "error": 3}


def time_call(fn: Callable[[], object], *, warmup: int = 5, samples: int = 21, min_sample_s: float = 2e-4,
              max_inner: int = 20000, settle_s: float = 0.15, max_s: float | None = 2.0,
              min_samples: int = 5) -> dict:
    """Median seconds per call of fn(). Picks `inner` so one sample lasts >= min_sample_s.

    Sleeps `settle_s` first: BLAS libraries' worker threads (NumPy's OpenBLAS, torch's OpenMP) spin for a
    while after a call and would steal cores from whichever side is timed next.
    max_s bounds the whole measurement of a slow call: the first warm-up call is timed, and when warmup +
    samples would take longer than max_s, fewer warm-up calls (at least that first one) and fewer samples
    (at least min_samples) are taken, so one 300 ms call costs about 2 s instead of 20 s. Fast calls are
    not affected. None: no bound.
    Returns {"median_s", "min_s", "mean_s", "cv", "inner", "samples"}; cv = stdev/mean of the per-call
    samples."""
    if settle_s > 0:
        time.sleep(settle_s)
    t0 = time.perf_counter()
    fn()  # the first warm-up call, timed to size the rest
    first = max(time.perf_counter() - t0, 1e-9)
    more_warmup = max(0, warmup - 1)
    if max_s is not None:
        more_warmup = min(more_warmup, int(0.2 * max_s / first))
    for _ in range(more_warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-9)
    inner = int(min(max_inner, max(1, math.ceil(min_sample_s / once))))
    n = max(1, samples)
    if max_s is not None:
        n = min(n, max(min(min_samples, n), int(0.8 * max_s / (once * inner))))
    per_call = []
    for _ in range(n):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        per_call.append((time.perf_counter() - t0) / inner)
    st = stats(per_call)
    return {"median_s": st["median"], "min_s": st["min"], "mean_s": st["mean"], "cv": st["cv"],
            "inner": inner, "samples": len(per_call)}


def finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def stats(values: Iterable[float]) -> dict:
    """median / min / max / mean / cv (population stdev over mean) of the finite values; NaN when empty."""
    vals = [float(v) for v in values if finite(v)]
    if not vals:
        nan = float("nan")
        return {"n": 0, "median": nan, "min": nan, "max": nan, "mean": nan, "cv": nan}
    mean = statistics.fmean(vals)
    cv = statistics.pstdev(vals) / mean if mean > 0 and len(vals) > 1 else (0.0 if len(vals) == 1 else float("nan"))
    return {"n": len(vals), "median": statistics.median(vals), "min": min(vals), "max": max(vals), "mean": mean,
            "cv": cv}


def ratio(peer, ours) -> float:
    """peer / ours: > 1 means we are faster. NaN when either side is missing or not positive."""
    if not (finite(peer) and finite(ours) and peer > 0 and ours > 0):
        return float("nan")
    return float(peer) / float(ours)


def make_row(suite: str, family: str, case: str, mode: str, ours_ms, peer: str, peer_ms, *, shape: str = "",
             device: str = "", peer_version: str = "", cv=float("nan"), peer_cv=float("nan"), status: str = "",
             rel_err=float("nan"), notes: str = "", repeats: int = 1) -> dict:
    """A row of the common schema; ratio computed; status 'n/a' where a side is missing (unless given)."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    ours_ms = float(ours_ms) if finite(ours_ms) else float("nan")
    peer_ms = float(peer_ms) if finite(peer_ms) else float("nan")
    r = ratio(peer_ms, ours_ms)
    if not status or (status == "ok" and not finite(r)):
        status = "ok" if finite(r) else "n/a"
    return {"suite": suite, "family": family, "case": case, "shape": shape, "mode": mode, "device": device,
            "ours_ms": ours_ms, "peer": peer, "peer_version": peer_version, "peer_ms": peer_ms, "ratio": r,
            "cv": float(cv) if finite(cv) else float("nan"),
            "peer_cv": float(peer_cv) if finite(peer_cv) else float("nan"), "repeats": int(repeats),
            "status": status, "rel_err": float(rel_err) if finite(rel_err) else float("nan"), "notes": notes}


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
    return (r.get("suite"), r.get("case"), r.get("mode"), r.get("peer"))


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
                       first["peer"], sp["median"], shape=first.get("shape", ""), device=first.get("device", ""),
                       peer_version=first.get("peer_version", ""),
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
