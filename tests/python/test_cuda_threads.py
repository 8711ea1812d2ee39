"""Ops called from two host threads at once on one CUDA device (the ThreadGroup simulation of tensor
parallelism, issue 17, does this): every result equals, bit for bit, the same call made alone.

Each thread runs a op repeatedly on its own inputs while the other does the same; the outputs are compared
with single-thread results computed first. Regression: cuBLASLt algorithms of several kernels (split-K into the
one shared workspace, then a reduction) interleaved across threads on the shared stream and gave wrong
float32 results (H100, 2026-12-06; fixed by enqueueing each cublasLtMatmul under a lock). CUDA only.
"""
import threading

import numpy as np
import pytest

import lightning_core as lc
from conftest import requires_cuda

pytestmark = requires_cuda


def _cases(rng):
    def t(shape, dt):
        return lc.Tensor(rng.standard_normal(shape).astype(np.float32), device="cuda", dtype=dt)
    out = []
    for dt in ("float32", "bfloat16"):
        for m, k, n in ((1, 64, 96), (6, 128, 64), (4, 48, 256), (37, 200, 72)):
            w, b, g = t((k, n), dt), t((n,), dt), t((k,), dt)
            out.append((f"linear {dt} {m}x{k}x{n}", lambda m=m, k=k, dt=dt: t((m, k), dt),
                        lambda x, w=w, b=b: lc.linear(x, w, b, "none", "cuda")))
            out.append((f"rms_norm_linear {dt} {m}x{k}x{n}", lambda m=m, k=k, dt=dt: t((m, k), dt),
                        lambda x, w=w, b=b, g=g: lc.rms_norm_linear(x, w, b, g, 1e-5, "none", "cuda")))
            out.append((f"matmul {dt} {m}x{k}x{n}", lambda m=m, k=k, dt=dt: t((m, k), dt),
                        lambda x, w=w: lc.matmul(x, w, "cuda")))
    return out


@pytest.mark.parametrize("static", [False, True], ids=["plain", "static_weights"])
def test_two_threads_same_results(rng, static):
    ctx = lc.static_weights if static else (lambda: __import__("contextlib").nullcontext())
    bad = []
    for name, make, fn in _cases(rng):
        ins = [[make() for _ in range(4)] for _ in range(2)]
        with ctx():
            want = [[np.array(fn(x).numpy()) for x in row] for row in ins]
        got = [[None] * 4 for _ in range(2)]
        errors = []

        def body(r):
            try:
                with ctx():
                    for it in range(24):
                        got[r][it % 4] = fn(ins[r][it % 4])
                for j in range(4):
                    got[r][j] = np.array(got[r][j].numpy())
            except Exception as e:  # noqa: BLE001  (reported by the main thread)
                errors.append(e)

        threads = [threading.Thread(target=body, args=(r,)) for r in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, (name, errors)
        if not all(np.array_equal(got[r][j].view(np.uint8), want[r][j].view(np.uint8)) for r in range(2) for j in range(4)):
            bad.append(name)
    assert not bad, f"results differ when two threads run at once: {bad}"
