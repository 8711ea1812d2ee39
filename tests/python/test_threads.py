"""Concurrency: lightning_core calls from several Python threads.

- 8 threads, each with its own inputs and float64 references, mix matmul2d, attention2d, conv2d_nchw,
  vector_add and layer_norm (plus *_into forms and a fallback device) for ~50 iterations each; every
  result must be correct and each thread's last_dispatch() must describe its own last call.
- The GIL is released while kernels run: during a long matmul in one thread a pure-Python counter thread
  keeps advancing. No timing bounds are asserted (timing targets live in benchmarks/), only that the
  counter advanced while the call was in flight.
"""
import sys
import threading
import time

import numpy as np
import pytest

import lightning_core as lc

N_THREADS = 8
ITERS = 50


def _make_work(rng, ref, tid):
    """The op mix for thread tid: (name, call, reference) with inputs owned by this thread only."""
    f32 = np.float32
    m, k, n = 17 + tid, 33 + 2 * tid, 9 + tid
    a, b = rng.standard_normal((m, k)).astype(f32), rng.standard_normal((k, n)).astype(f32)
    seq, hd = 7 + tid, 8 + tid
    q, kk, v = (rng.standard_normal((seq, hd)).astype(f32) for _ in range(3))
    x = rng.standard_normal((1, 3, 9 + tid, 8)).astype(f32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(f32)
    bias = rng.standard_normal(4).astype(f32)
    u, t = rng.standard_normal(255 + tid).astype(f32), rng.standard_normal(255 + tid).astype(f32)
    ln_x = rng.standard_normal((5, 33 + tid)).astype(f32)
    gamma, beta = rng.standard_normal(33 + tid).astype(f32), rng.standard_normal(33 + tid).astype(f32)
    a64 = a.astype(np.float64)
    mm_ref = ref.matmul(a, b)
    mm_out = np.empty((m, n), f32)
    at_out = np.empty((seq, hd), f32)

    def mm_into():
        mm_out.fill(np.nan)
        return lc.matmul2d_into(a, b, mm_out, "cpu")

    def at_into():
        at_out.fill(np.nan)
        return lc.attention2d_into(q, kk, v, at_out, True, "cpu")

    return [
        ("matmul2d", lambda: lc.matmul2d(a, b, "cpu"), mm_ref, "matmul"),
        ("matmul2d_into", mm_into, mm_ref, "matmul"),
        ("matmul2d f64 metal", lambda: lc.matmul2d(a64, b, "metal"), mm_ref, "matmul"),
        ("attention2d", lambda: lc.attention2d(q, kk, v, False, "cpu"), ref.attention(q, kk, v, False), "attention"),
        ("attention2d_into causal", at_into, ref.attention(q, kk, v, True), "attention"),
        ("conv2d_nchw", lambda: lc.conv2d_nchw(x, w, bias, 1, 2, 1, 0, "cpu", True),
         ref.conv2d(x, w, bias, 1, 2, 1, 0, True), "conv"),
        ("vector_add", lambda: lc.vector_add(u, t, "cpu"), u.astype(np.float64) + t, None),
        ("layer_norm", lambda: lc.layer_norm(ln_x, gamma, beta, 1e-5, "cpu"),
         ref.layer_norm(ln_x, gamma, beta), None),
    ]


def test_concurrent_calls_are_correct(rng, ref, rel_err):
    seeds = rng.integers(0, 2**63, size=N_THREADS)
    work = [_make_work(np.random.default_rng(int(s)), ref, tid) for tid, s in enumerate(seeds)]
    failures = []
    errors = []
    barrier = threading.Barrier(N_THREADS)

    def run(tid):
        try:
            barrier.wait()
            order = np.random.default_rng(int(seeds[tid]) + 1)
            for it in range(ITERS):
                for j in order.permutation(len(work[tid])):
                    name, call, want, op = work[tid][j]
                    y = call()
                    e = rel_err(y, want)
                    if not e < 1e-5:
                        failures.append((tid, it, name, e))
                    if op is not None:
                        d = lc.last_dispatch()
                        if op not in str(d["op"]):
                            failures.append((tid, it, name, f"last_dispatch op {d['op']!r}"))
                        elif "metal" in name and d["requested"] != "metal":
                            failures.append((tid, it, name, f"last_dispatch requested {d['requested']!r}"))
                        elif "metal" not in name and d["requested"] != "cpu":
                            failures.append((tid, it, name, f"last_dispatch requested {d['requested']!r}"))
        except BaseException as exc:  # noqa: BLE001 - report any failure from the thread
            errors.append((tid, repr(exc)))

    threads = [threading.Thread(target=run, args=(tid,)) for tid in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a worker thread hung"
    assert not errors, errors[:5]
    assert not failures, failures[:10]


def test_concurrent_into_calls_on_shared_inputs(rng, ref, rel_err):
    # Inputs are only read: many threads may share them; each writes its own out.
    a = rng.standard_normal((64, 96)).astype(np.float32)
    b = rng.standard_normal((96, 48)).astype(np.float32)
    a0, b0 = a.copy(), b.copy()
    want = ref.matmul(a, b)
    outs = [np.full((64, 48), np.nan, np.float32) for _ in range(N_THREADS)]
    errors = []

    def run(i):
        try:
            for _ in range(20):
                outs[i].fill(np.nan)
                lc.matmul2d_into(a, b, outs[i])
                if not rel_err(outs[i], want) < 1e-5:
                    errors.append(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors[:5]
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


def _progress_inside_calls(call, attempts=8):
    """Runs call() repeatedly while a pure-Python thread counts. Returns (calls whose middle half saw the
    counter advance, calls made, longest call in s). Only *where* the counter advanced is judged: if the
    GIL were held for the whole call, the counter could run only at the call's edges (before the C code
    takes over and after it returns; the switch interval is set to 0.1 ms to keep those edges short), never
    in the middle of it."""
    stamps = []
    stop = threading.Event()
    started = threading.Event()

    def counter():
        started.set()
        i = 0
        while not stop.is_set():
            i += 1
            if i % 64 == 0:
                stamps.append(time.perf_counter())

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    th = threading.Thread(target=counter)
    hits = calls = 0
    longest = 0.0
    try:
        th.start()
        started.wait()
        for _ in range(attempts):
            t0 = time.perf_counter()
            call()
            t1 = time.perf_counter()
            calls += 1
            dur = t1 - t0
            longest = max(longest, dur)
            lo, hi = t0 + 0.25 * dur, t1 - 0.25 * dur
            if dur > 2e-3 and any(lo < t < hi for t in stamps[-200000:]):
                hits += 1
                break
    finally:
        stop.set()
        th.join()
        sys.setswitchinterval(old)
    return hits, calls, longest


def _one_thread():
    n0 = lc.num_threads()
    lc.set_num_threads(1)
    return n0


@pytest.mark.parametrize("fn", ["matmul2d", "attention2d", "conv2d_nchw"])
def test_gil_is_released_during_long_calls(rng, fn):
    # Work big enough to take a while on one core (tens of ms); grown if a call turns out too short
    # to have a "middle" to observe.
    n0 = _one_thread()
    try:
        for scale in (1, 2, 4):
            if fn == "matmul2d":
                n = 768 * scale
                a = rng.standard_normal((n, n)).astype(np.float32)
                b = rng.standard_normal((n, n)).astype(np.float32)
                lc.matmul2d(a[:4], b)  # warm-up outside the observed calls

                def call():
                    return lc.matmul2d(a, b)
            elif fn == "attention2d":
                q, k, v = (rng.standard_normal((1024 * scale, 64)).astype(np.float32) for _ in range(3))

                def call():
                    return lc.attention2d(q, k, v, False)
            else:
                x = rng.standard_normal((scale, 32, 64, 64)).astype(np.float32)
                w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)

                def call():
                    return lc.conv2d_nchw(x, w, None, 1, 1, 1, 1)

            hits, calls, longest = _progress_inside_calls(call)
            if hits or longest > 0.05:
                break
    finally:
        lc.set_num_threads(n0)
    assert hits > 0, (
        f"{fn}: a pure-Python thread never advanced in the middle of {calls} calls "
        f"(longest {longest * 1e3:.1f} ms): the GIL is held while the kernel runs"
    )
