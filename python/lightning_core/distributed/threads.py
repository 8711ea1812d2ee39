"""The one-process simulation of a process group (issue 17): ``world_size`` threads of one process, each a
rank with a ``ThreadGroup`` that offers the NCCL group's interface on CPU (and CUDA) lightning_core tensors.

  groups = ThreadGroup.create(world_size, device="cpu", timeout=120.0)   # one per rank
  results = run_threads(world_size, fn, *args, device="cpu")             # [fn(g_0, *args), fn(g_1, *args), ...]

Interface (the same as lightning_core.distributed's NCCL group): g.rank, g.world_size, g.device,
g.all_reduce(t) (sum, in place; returns t), g.all_gather(t) -> a new Tensor [world * t.shape[0], ...] (rank
order), g.reduce_scatter(t) -> a new Tensor [t.shape[0] / world, ...] (rank r's block of the sum),
g.broadcast(t, src=0) (in place; returns t), g.barrier(). Every rank must call the same collectives in the
same order with tensors of one dtype and shape (else ValueError on every rank, and the group ends).

How: each rank posts a host copy of its tensor in a shared slot, waits at a barrier, computes the result from
all the slots (sums in float64 for floats, int64 for integers, rank 0 first, then one rounding to the tensor's
dtype: every rank computes the same bytes), writes it, and waits at a second barrier (so no slot is reused
while another rank reads it). World size 1 needs no exchange (all_reduce and broadcast return t untouched,
all_gather and reduce_scatter a device copy): that group is ``capturable`` inside lc.capture_graph; a larger
one copies through the host and is not. The lightning_core ops release the GIL while their kernels run, so
the ranks' ops overlap on a multi-core host.

Failures end the group instead of hanging: a barrier waits at most ``timeout`` seconds; a rank that raises
inside run_threads (or calls ``g.abort()``) breaks the barrier, and every other rank's pending or later
collective raises GroupError naming the failing rank; run_threads then re-raises the first failure (a note
names its rank).
Tests: tests/python/test_tp.py.
"""
from __future__ import annotations

import threading

import numpy as np

import lightning_core as lc

DEFAULT_TIMEOUT = 120.0
_INTS = ("int32", "int64")


class GroupError(RuntimeError):
    """A collective of a broken group: another rank failed, or the partners did not come within the timeout."""


class _Shared:
    def __init__(self, world_size, timeout):
        self.world_size = world_size
        self.timeout = timeout
        self.barrier = threading.Barrier(world_size, timeout=timeout)
        self.slots = [None] * world_size
        self.lock = threading.Lock()
        self.failure = None  # (rank, exception) of the first rank that failed

    def fail(self, rank, exc):
        with self.lock:
            if self.failure is None:
                self.failure = (rank, exc)
        self.barrier.abort()


def _check_tensor(fn, t):
    if not isinstance(t, (lc.Tensor, lc.Tensor64, lc.TensorView)):
        raise TypeError(f"{fn}: t: expected a lightning_core Tensor (Tensor, Tensor64 or TensorView), "
                        f"got {type(t).__name__}")


def _host_dtype(name):
    from ..dtypes import numpy_dtype  # noqa: PLC0415
    return np.dtype(name) if name in _INTS else numpy_dtype(name)


class ThreadGroup:
    """Rank ``rank`` of a group of threads (made by ``ThreadGroup.create`` or ``run_threads``); see the module
    docstring."""

    def __init__(self, shared, rank, device="cpu"):
        if device not in ("cpu", "cuda"):
            raise ValueError(f"ThreadGroup: device: expected 'cpu' or 'cuda', got {device!r}")
        self._s, self.rank, self.device = shared, int(rank), device
        self.world_size = shared.world_size

    @classmethod
    def create(cls, world_size, device="cpu", timeout=DEFAULT_TIMEOUT):
        """The groups of ranks 0..world_size-1 (one per thread), sharing their slots and barrier."""
        if not isinstance(world_size, int) or isinstance(world_size, bool) or world_size < 1:
            raise ValueError(f"ThreadGroup.create: world_size: expected an integer >= 1, got {world_size!r}")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout < float("inf"):
            raise ValueError(f"ThreadGroup.create: timeout: expected a positive number of seconds, got {timeout!r}")
        shared = _Shared(world_size, float(timeout))
        return [cls(shared, r, device) for r in range(world_size)]

    @property
    def capturable(self):
        """True when the collectives touch neither the host nor other threads (world size 1), so a decode step
        that calls them can be captured as a CUDA graph."""
        return self.world_size == 1

    def __repr__(self):
        return f"ThreadGroup(rank={self.rank}, world_size={self.world_size}, device={self.device!r})"

    # ---- the exchange ---------------------------------------------------------------------------------
    def abort(self, exc=None):
        """Ends the group: every rank's pending and later collectives raise GroupError."""
        self._s.fail(self.rank, exc or GroupError(f"rank {self.rank} aborted the group"))

    def _broken(self, fn, timed_out):
        f = self._s.failure
        if f is not None:
            r, e = f
            return GroupError(f"{fn}: rank {self.rank}: the group was ended by rank {r} "
                              f"({type(e).__name__}: {e})")
        if timed_out:
            err = GroupError(f"{fn}: rank {self.rank}: the other ranks did not reach this collective within "
                             f"{self._s.timeout:g} s (a rank stopped calling collectives, or called them in "
                             f"another order); the group is ended")
            self._s.fail(self.rank, err)
            return err
        return GroupError(f"{fn}: rank {self.rank}: the group is broken")

    def _wait(self, fn):
        if self._s.failure is not None or self._s.barrier.broken:
            raise self._broken(fn, False)
        try:
            self._s.barrier.wait()
        except threading.BrokenBarrierError:
            raise self._broken(fn, self._s.failure is None) from None

    def _exchange(self, fn, t, payload, meta):
        """Posts (fn, meta, payload) in this rank's slot and returns every rank's, after checking that all
        ranks called the same collective with the same meta (else ValueError on every rank; the group ends)."""
        self._s.slots[self.rank] = (fn, meta, payload)
        self._wait(fn)
        slots = list(self._s.slots)
        first = slots[0]
        for r, sl in enumerate(slots):
            if sl[0] != first[0] or sl[1] != first[1]:
                err = ValueError(f"{fn}: ranks disagree: rank 0 called {first[0]} with {_fmt(first[1])}, "
                                 f"rank {r} called {sl[0]} with {_fmt(sl[1])}")
                self._s.fail(self.rank, err)
                raise err
        return slots

    def _done(self, fn):
        self._wait(fn)  # nobody reuses the slots while another rank still reads them

    @staticmethod
    def _meta(t):
        return (t.dtype, tuple(int(n) for n in t.shape))

    @staticmethod
    def _host(t):
        return np.array(t.numpy(), copy=True)  # a copy: the rank may overwrite t before the others read it

    def _new(self, a, dtype):
        return lc.Tensor(np.ascontiguousarray(a), device=self.device, dtype=dtype)

    @staticmethod
    def _sum(arrays, dtype):
        """Sum of the ranks' arrays in rank order, accumulated in float64 (int64 for integers), one rounding."""
        acc = np.asarray(arrays[0]).astype(np.int64 if dtype in _INTS else np.float64)
        for a in arrays[1:]:
            acc = acc + np.asarray(a).astype(acc.dtype)
        return acc.astype(_host_dtype(dtype))

    def _check_device(self, fn, t):
        _check_tensor(fn, t)
        if t.device != self.device:
            raise ValueError(f"{fn}: t: expected a tensor on the group's device {self.device!r}, got one on "
                             f"{t.device!r}")

    # ---- collectives ----------------------------------------------------------------------------------
    def all_reduce(self, t):
        """t = the sum of every rank's t (in place); returns t."""
        fn = "ThreadGroup.all_reduce"
        self._check_device(fn, t)
        if self.world_size == 1:
            return t
        slots = self._exchange(fn, t, self._host(t), self._meta(t))
        try:
            t.copy_from(self._sum([s[2] for s in slots], t.dtype))
        finally:
            self._done(fn)
        return t

    def all_gather(self, t):
        """A new tensor [world * t.shape[0], ...]: every rank's t stacked along axis 0 in rank order."""
        fn = "ThreadGroup.all_gather"
        self._check_device(fn, t)
        if self.world_size == 1:
            return lc.concat([t], 0)
        slots = self._exchange(fn, t, self._host(t), self._meta(t))
        try:
            out = self._new(np.concatenate([s[2] for s in slots], axis=0), t.dtype)
        finally:
            self._done(fn)
        return out

    def reduce_scatter(self, t):
        """A new tensor [t.shape[0] / world, ...]: block `rank` (along axis 0) of the sum of every rank's t."""
        fn = "ThreadGroup.reduce_scatter"
        self._check_device(fn, t)
        n = int(t.shape[0]) if len(t.shape) else 0
        if n % self.world_size:
            raise ValueError(f"{fn}: t: expected a first axis divisible by the world size {self.world_size}, "
                             f"got shape {list(t.shape)}")
        if self.world_size == 1:
            return lc.concat([t], 0)
        slots = self._exchange(fn, t, self._host(t), self._meta(t))
        try:
            k = n // self.world_size
            part = self._sum([s[2][self.rank * k:(self.rank + 1) * k] for s in slots], t.dtype)
            out = self._new(part, t.dtype)
        finally:
            self._done(fn)
        return out

    def broadcast(self, t, src=0):
        """t = rank src's t (in place); returns t."""
        fn = "ThreadGroup.broadcast"
        self._check_device(fn, t)
        if not isinstance(src, int) or isinstance(src, bool) or not 0 <= src < self.world_size:
            raise ValueError(f"{fn}: src: expected a rank in 0..{self.world_size - 1}, got {src!r}")
        if self.world_size == 1:
            return t
        slots = self._exchange(fn, t, self._host(t) if self.rank == src else None, self._meta(t) + (src,))
        try:
            if self.rank != src:
                t.copy_from(slots[src][2])
        finally:
            self._done(fn)
        return t

    def barrier(self):
        """Returns once every rank has called barrier()."""
        fn = "ThreadGroup.barrier"
        if self.world_size > 1:
            self._exchange(fn, None, None, ())
            self._done(fn)


def _fmt(meta):
    if not meta:
        return "no tensor"
    s = f"{meta[0]} {list(meta[1])}"
    return s + (f", src {meta[2]}" if len(meta) > 2 else "")


def run_threads(world_size, fn, *args, device="cpu", timeout=DEFAULT_TIMEOUT):
    """Runs fn(group, *args) on world_size threads (rank r gets rank r's ThreadGroup) and returns the results
    in rank order. The first exception any rank raises ends the group (the others' collectives raise
    GroupError instead of waiting) and is re-raised here once every thread has finished."""
    if not callable(fn):
        raise TypeError(f"run_threads: fn: expected a callable, got {type(fn).__name__}")
    groups = ThreadGroup.create(world_size, device, timeout)
    shared = groups[0]._s
    results = [None] * world_size

    def body(r):
        try:
            results[r] = fn(groups[r], *args)
        except BaseException as e:  # noqa: BLE001  (re-raised by the caller's thread)
            shared.fail(r, e)

    threads = [threading.Thread(target=body, args=(r,), name=f"lc-rank-{r}", daemon=True) for r in range(world_size)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if shared.failure is not None:
        r, e = shared.failure
        if hasattr(e, "add_note"):
            e.add_note(f"(raised on rank {r} of {world_size} in run_threads)")
        raise e
    return results
