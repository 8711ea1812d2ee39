"""One rank of the multi-GPU tests (tests/python/test_distributed_multi.py; not a test file itself).

  python dist_worker.py collectives   every collective x dtype x size vs NumPy (each rank knows every rank's
                                      data: seeded by rank), poisoned outputs, broadcast from the last rank,
                                      all_reduce captured in lc.capture_graph and replayed, a shape mismatch on
                                      rank 1 raising ValueError on every rank (the group stays usable)
  python dist_worker.py die [check]   the last rank exits after the first barrier; the others' next collective
                                      (header exchange with `check`, else all_reduce + synchronize) must raise
                                      RuntimeError within the timeout, and the process must stay usable
Prints "OK rank r" at the end; any failure is an exception (non-zero exit).
"""
import os
import sys
import time

import numpy as np

import lightning_core as lc
from lightning_core import distributed as dist

U = {"float32": 2.0**-24, "float64": 2.0**-53, "float16": 2.0**-11, "bfloat16": 2.0**-8}
DTYPES = ["float32", "float64", "float16", "bfloat16", "int32", "int64"]


def tensor(a, dtype):
    if dtype.startswith("int"):
        return lc.Tensor(a.astype(dtype), device="cuda")
    return lc.Tensor(a if dtype == "float64" else a.astype(np.float32), device="cuda", dtype=dtype)


def host(t):
    return np.asarray(t.numpy()).astype(np.float64)


def data(rank, shape, dtype, salt):
    rng = np.random.default_rng(1000 * salt + rank)
    if dtype.startswith("int"):
        return rng.integers(-1000, 1000, size=shape).astype(dtype)
    return rng.standard_normal(shape)


def rounded(a, dtype):
    """a as the dtype holds it, in float64 (what each rank really sends)."""
    return host(tensor(a, dtype))


def check_sum(got, parts, dtype, what):
    ref = np.sum(parts, axis=0)
    if dtype.startswith("int"):
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return
    # each partial sum may be rounded once per hop: bound n * u * sum|x_i| (+ the final rounding)
    bound = (len(parts) + 1) * U[dtype] * np.sum(np.abs(parts), axis=0) + 1e-300
    bad = np.abs(got - ref) > bound
    assert not np.isnan(got).any() and not bad.any(), f"{what}: max err {np.max(np.abs(got - ref))}"


def collectives(g):
    r, n = g.rank, g.world_size
    for salt, rows in enumerate([n * 3, n * 4096]):  # small, and ~1-4 MB to use several NCCL chunks
        shape = (rows, 64)
        for dtype in DTYPES:
            what = f"{dtype} {shape}"
            mine = data(r, shape, dtype, salt)
            parts = [rounded(data(q, shape, dtype, salt), dtype) for q in range(n)]
            t = tensor(mine, dtype)
            g.all_reduce(t)
            check_sum(host(t), parts, dtype, "all_reduce " + what)
            t = tensor(mine, dtype)
            out = g.all_gather(t)
            np.testing.assert_array_equal(host(out), np.concatenate(parts), err_msg="all_gather " + what)
            if not dtype.startswith("int"):
                out = tensor(np.full((rows * n, 64), np.nan), dtype)
                g.all_gather_into(out, t)
                np.testing.assert_array_equal(host(out), np.concatenate(parts), err_msg="all_gather_into " + what)
                rs = tensor(np.full((rows // n, 64), np.nan), dtype)
                g.reduce_scatter_into(rs, t)
            else:
                rs = g.reduce_scatter(t)
            sl = slice(r * rows // n, (r + 1) * rows // n)
            check_sum(host(rs), [p[sl] for p in parts], dtype, "reduce_scatter " + what)
            t = tensor(mine, dtype)
            g.broadcast(t, src=n - 1)
            np.testing.assert_array_equal(host(t), parts[n - 1], err_msg="broadcast " + what)
    # capture: t = 2 * t, then all_reduce; 3 replays = (2 * n)^3 * x
    x = np.full((8, 128), float(r + 1), np.float32)
    t = lc.Tensor(x, device="cuda")

    def step():
        lc.add_into(t, t, t, device="cuda")
        g.all_reduce(t)

    graph = lc.capture_graph(step)
    graph.replay(loops=3)
    g.synchronize()
    total = sum(q + 1 for q in range(n))  # first step: sum of 2 * (q + 1)
    want = 2.0 * total * (2.0 * n) ** 2
    np.testing.assert_array_equal(t.numpy(), np.full((8, 128), want, np.float32))
    del graph
    # shape mismatch: every rank raises ValueError naming rank 1; the group is still usable
    t = lc.Tensor(np.ones((4 + (r == 1), 8), np.float32), device="cuda")
    try:
        g.all_reduce(t)
    except ValueError as e:
        assert "rank 1 has shape (5, 8) float32 but rank 0 has shape (4, 8) float32" in str(e), str(e)
    else:
        raise AssertionError("a shape mismatch did not raise")
    assert g.ok
    g.barrier()


def die(g, check):
    g.barrier()
    if g.rank == g.world_size - 1:
        os._exit(17)  # no goodbye: as a crash
    g.check = check
    t = lc.Tensor(np.ones((1024,), np.float32), device="cuda")
    t0 = time.monotonic()
    try:
        g.all_reduce(t)
        g.synchronize()
    except RuntimeError as e:
        took = time.monotonic() - t0
        msg = str(e)
        assert f"rank {g.rank} of {g.world_size}" in msg and "timed out after" in msg or "NCCL error" in msg, msg
        assert took < g.timeout + 30, took
        print(f"raised after {took:.1f} s: {msg}")
    else:
        raise AssertionError("a dead peer did not raise")
    assert not g.ok
    try:
        g.barrier()
    except RuntimeError as e:
        assert "unusable" in str(e), str(e)
    else:
        raise AssertionError("an aborted group ran a barrier")
    a = lc.Tensor(np.ones((2, 2), np.float32), device="cuda")  # the process is still usable
    lc.add_into(a, a, a, device="cuda")
    np.testing.assert_array_equal(a.numpy(), np.full((2, 2), 2.0))
    g.destroy()


def main():
    mode = sys.argv[1]
    g = dist.init(timeout=10.0 if mode == "die" else 120.0)
    assert lc._C.cuda_device() == int(os.environ["LOCAL_RANK"])
    if mode == "collectives":
        collectives(g)
        g.destroy()
    elif mode == "die":
        die(g, len(sys.argv) > 2 and sys.argv[2] == "check")
    print(f"OK rank {g.rank}")


if __name__ == "__main__":
    main()
