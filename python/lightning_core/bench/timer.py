"""The one timer of the benchmarks (and of lc.api's A/B report): time_call, time_pair and stats.

time_call(fn): warm-up, settle, repeats, median, CV, bounded wall time. Every side of every row of every
suite is timed by it (host clock around the whole call, warmed up first, median of repeated samples; tiny
calls in batches of `inner` calls per sample so the clock's own cost does not dominate). A suite that needs
the device's own clock passes sample_ms= (e.g. lc.time_device_ms around the call): the same warm-up,
settle and sample loop, each sample read from that clock instead of the host's.
time_pair(a, b): two sides interleaved (A B, B A, ...) so that drift hits both alike; per pair one
time_call of each side.
The clock and the sleep are parameters (tests drive them with a fake clock).
Tested by tests/python/test_bench_timer.py.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Iterable


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


def time_call(fn: Callable[[], object], *, warmup: int = 5, samples: int = 21, min_sample_s: float = 2e-4,
              max_inner: int = 20000, settle_s: float = 0.15, max_s: float | None = 2.0, min_samples: int = 5,
              inner: int | None = None, per: int = 1, sample_ms: Callable[[Callable], float] | None = None,
              clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Median seconds per call of fn() (divided by `per`: fn runs `per` iterations of a loop).

    settle_s: slept first (BLAS worker threads of NumPy and torch spin for a while after a call and would
    steal cores from whichever side is timed next). warmup: calls before the samples (0: none; then the
    first sample call also sizes inner). inner: calls per sample; None picks it so that one sample lasts
    >= min_sample_s (at most max_inner). max_s bounds a slow call's whole measurement: when warmup +
    samples would take longer, fewer warm-up calls (at least one) and fewer samples (at least
    min_samples) are taken; None: no bound. sample_ms(run) -> ms replaces the host clock for a sample
    (run() makes the inner calls; e.g. CUDA events around it).
    Returns {"median_s", "median_ms", "min_s", "mean_s", "cv", "inner", "samples"}; cv = stdev / mean of
    the per-call samples."""
    if settle_s > 0:
        sleep(settle_s)

    def timed(n: int) -> float:
        """Seconds of n calls."""
        run = (lambda: [fn() for _ in range(n)]) if n > 1 else fn
        if sample_ms is not None:
            return float(sample_ms(run)) / 1e3
        t0 = clock()
        run()
        return clock() - t0

    once = None
    if warmup > 0:
        first = max(timed(1), 1e-9)  # the first warm-up call, timed to size the rest
        more = warmup - 1
        if max_s is not None:
            more = min(more, int(0.2 * max_s / first))
        for _ in range(more):
            fn()
    if inner is None:
        if once is None:
            once = max(timed(1), 1e-9)
        inner = int(min(max_inner, max(1, math.ceil(min_sample_s / once))))
    n = max(1, samples)
    if max_s is not None:
        if once is None:
            once = max(timed(1), 1e-9)
        n = min(n, max(min(min_samples, n), int(0.8 * max_s / (once * inner))))
    per_call = [timed(inner) / inner / max(1, per) for _ in range(n)]
    st = stats(per_call)
    return {"median_s": st["median"], "median_ms": st["median"] * 1e3, "min_s": st["min"], "mean_s": st["mean"],
            "cv": st["cv"], "inner": inner, "samples": len(per_call)}


def time_pair(a: Callable[[], object], b: Callable[[], object], pairs: int, **kw) -> dict:
    """a and b timed alternately (A B in even pairs, B A in odd ones), one time_call(**kw) each per pair.
    Returns {"a_ms", "b_ms" (medians over the pairs), "b_over_a" (median of the per-pair ratios), "pairs"}."""
    times: tuple[list, list] = ([], [])
    for p in range(max(1, pairs)):
        for k in ((0, 1) if p % 2 == 0 else (1, 0)):
            times[k].append(time_call((a, b)[k], **kw)["median_s"])
    ta, tb = times
    sa, sb = stats(ta), stats(tb)
    return {"a_ms": sa["median"] * 1e3, "b_ms": sb["median"] * 1e3, "pairs": len(ta),
            "b_over_a": statistics.median(y / x for x, y in zip(ta, tb) if x > 0) if any(x > 0 for x in ta)
            else float("nan")}
