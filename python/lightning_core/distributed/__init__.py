"""lightning_core.distributed — NCCL process groups: one process per GPU, collectives on lc.Tensor.

    import lightning_core as lc
    lc.distributed.available(), lc.distributed.why_unavailable()
    g = lc.distributed.init(rank=None, world_size=None, init_method=None, device="cuda", timeout=300.0, check=True)
    g.all_reduce(t) -> t (sum, in place)     g.broadcast(t, src=0) -> t (in place)
    g.all_gather(t) -> [world*n, ...]        g.all_gather_into(out, t) -> out
    g.reduce_scatter(t) -> [n/world, ...]    g.reduce_scatter_into(out, t) -> out
    g.barrier(); g.synchronize(); g.destroy(); lc.distributed.get_group(); lc.distributed.destroy()

Defaults come from the environment the launcher (python -m lightning_core.launch) and torchrun set: RANK,
WORLD_SIZE, LOCAL_RANK (the CUDA device), MASTER_ADDR/MASTER_PORT (init_method "tcp://ADDR:PORT"). The
rendezvous (rendezvous.py) only passes NCCL's unique id; the collectives are the C library's (dist.h): on the
library's CUDA stream, ordered with the ops and recorded by lc.capture_graph.

Cross-rank argument check (check=True, skipped while capturing a graph): before each collective the ranks
exchange a header (op, dtype, shape, src, whether the local arguments were refused), so a rank with other
shapes or a refused argument makes every rank raise ValueError (nothing runs) instead of a hang or garbage.
compare_headers() is that comparison. Timeouts: init and every host wait give up after `timeout` seconds;
the group is then aborted (RuntimeError naming the rank and the timeout) and refuses later calls; the
process stays usable. Tests: tests/python/test_distributed.py, tests/python/test_distributed_multi.py.

The one-process simulation (threads.py: ThreadGroup, run_threads — ranks as threads of one process, the same
collectives through the host) serves the tensor-parallel runner's tests and CPU runs (tests/python/test_tp.py).
"""
from __future__ import annotations

import atexit
import os

from .. import _C
from .rendezvous import RendezvousTimeout, exchange_id, parse as parse_init_method
from .threads import ThreadGroup, run_threads  # noqa: F401  (the one-process simulation)

__all__ = ["available", "why_unavailable", "init", "get_group", "is_initialized", "destroy", "ProcessGroup",
           "compare_headers", "RendezvousTimeout", "ThreadGroup", "run_threads"]

OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast")
DTYPES = ("float32", "float64", "float16", "bfloat16", "int32", "int64")
_TENSOR_TYPES = (_C.Tensor, _C.Tensor64, _C.TensorView)
_MAX_DIMS = 8
HEADER_LEN = 4 + _MAX_DIMS + 1  # op, dtype, ndim, refused, shape[8], src

_default: "ProcessGroup | None" = None


def available() -> bool:
    """True when this build has the NCCL backend and a CUDA GPU is usable."""
    return bool(_C.dist_available())


def why_unavailable() -> str:
    """'' when available(), else the reason (no NCCL in this build, no GPU)."""
    return _C.dist_unavailable_reason()


def _env_int(name: str, value, what: str):
    if value is not None:
        return value
    text = os.environ.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what}: expected an int in ${name}, got {text!r}") from None


def _int_arg(name: str, value, lo: int, hi: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"init: {name}: expected an int, got {type(value).__name__}")
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"init: {name}: expected {rng}, got {value}")
    return value


def init(rank=None, world_size=None, init_method=None, device="cuda", timeout=300.0, check=True) -> "ProcessGroup":
    """Joins the process group (one GPU per process) and makes it the default group (get_group())."""
    global _default
    if _default is not None and _default.ok:
        raise RuntimeError("init: a default process group exists already; call lc.distributed.destroy() first")
    if _default is not None:  # a failed group: already aborted, free it
        destroy()
    world_size = _env_int("WORLD_SIZE", world_size, "init: world_size")
    world_size = _int_arg("world_size", 1 if world_size is None else world_size, 1, None)
    rank = _env_int("RANK", rank, "init: rank")
    if rank is None and world_size > 1:
        raise ValueError(f"init: rank: expected 0..{world_size - 1} (the argument or $RANK), got none")
    rank = _int_arg("rank", 0 if rank is None else rank, 0, world_size - 1)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 or timeout == float("inf"):
        raise ValueError(f"init: timeout: expected a finite number of seconds > 0, got {timeout!r}")
    if not isinstance(device, str):
        raise TypeError(f"init: device: expected 'cuda' or 'cuda:N', got {type(device).__name__}")
    local = _env_int("LOCAL_RANK", None, "init: LOCAL_RANK")
    if device.startswith("cuda:"):
        try:
            local = int(device[5:])
        except ValueError:
            local = -1
        if local < 0:
            raise ValueError(f"init: device: expected 'cuda' or 'cuda:N' (N >= 0), got {device!r}")
    elif device != "cuda":
        raise ValueError(f"init: device: expected 'cuda' or 'cuda:N' (NCCL runs on GPUs; lc.distributed.threads is "
                         f"the one-process simulation), got {device!r}")
    if local is None:
        local = rank
    if init_method is None:
        addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
        if addr and port:
            init_method = f"tcp://{addr}:{port}"
        elif world_size > 1:
            raise ValueError("init: init_method: expected 'tcp://HOST:PORT' or 'file:///PATH' (or MASTER_ADDR and "
                             f"MASTER_PORT in the environment) for world_size {world_size}, got none")
    if init_method is not None:
        parse_init_method(init_method)
    if not available():  # counts GPUs without starting the CUDA backend
        raise _C.DeviceUnavailableError(f"init: lightning_core.distributed is unavailable: {why_unavailable()}")
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")  # NVLink multicast off unless the user chose
    try:  # before anything starts the CUDA backend on another device
        _C.set_cuda_device(local)
    except ValueError as e:
        raise ValueError(f"init: LOCAL_RANK / device {local}: {e}") from None
    if init_method is None:  # world size 1 without an address: nothing to pass
        uid = _C.dist_unique_id()
    else:
        uid = exchange_id(init_method, rank, world_size, float(timeout), _C.dist_unique_id)
    comm = _C.DistComm(uid, world_size, rank, float(timeout))
    _default = ProcessGroup(comm, local, bool(check))
    return _default


@atexit.register
def _destroy_at_exit() -> None:
    """The default group is destroyed gracefully at exit (in-flight collectives finish, bounded by the timeout)."""
    try:
        destroy()
    except RuntimeError:
        pass


def is_initialized() -> bool:
    return _default is not None and _default.ok


def get_group() -> "ProcessGroup":
    """The default group made by init(); RuntimeError before init or after destroy()."""
    if _default is None:
        raise RuntimeError("get_group: no process group; call lc.distributed.init() first")
    return _default


def destroy() -> None:
    """Destroys the default group (no-op without one)."""
    global _default
    g, _default = _default, None
    if g is not None:
        g.destroy()


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def make_header(op: str, t, src: int = 0, refused: bool = False) -> list[int]:
    """The header exchanged before a collective: op, dtype, ndim, refused, shape (8 slots), src."""
    shape = tuple(t.shape) if isinstance(t, _TENSOR_TYPES) else ()
    dt = DTYPES.index(t.dtype) if isinstance(t, _TENSOR_TYPES) and t.dtype in DTYPES else -1
    dims = list(shape[:_MAX_DIMS]) + [0] * (_MAX_DIMS - len(shape[:_MAX_DIMS]))
    return [OPS.index(op), dt, len(shape), int(refused)] + dims + [int(src) if isinstance(src, int) else -1]


def _describe(h: list[int]) -> str:
    dt = DTYPES[h[1]] if 0 <= h[1] < len(DTYPES) else "an unsupported dtype"
    return f"shape {_shape_text(h[4:4 + h[2]])} {dt}"


def compare_headers(headers: list[list[int]], rank: int) -> str | None:
    """None when every rank's header agrees, else the message every rank raises (ValueError): rank 0's
    header is the reference, the first disagreeing rank is named with both shapes. `rank` is the caller's
    (a refused argument of its own is its own error, raised by the caller instead)."""
    ref = headers[0]
    op = OPS[ref[0]] if 0 <= ref[0] < len(OPS) else "?"
    for r, h in enumerate(headers):
        if h[0] != ref[0]:
            other = OPS[h[0]] if 0 <= h[0] < len(OPS) else "?"
            return f"collective mismatch: rank {r} called {other} while rank 0 called {op}; nothing ran"
    for r, h in enumerate(headers):
        if h[3] and r != rank:
            return f"{op}: rank {r} refused its arguments (its own error says why); nothing ran on any rank"
    for r, h in enumerate(headers):
        if h[1:3] + h[4:4 + _MAX_DIMS] != ref[1:3] + ref[4:4 + _MAX_DIMS]:
            return (f"{op}: t: rank {r} has {_describe(h)} but rank 0 has {_describe(ref)}: every rank must pass the "
                    f"same shape and dtype; nothing ran")
        if h[4 + _MAX_DIMS] != ref[4 + _MAX_DIMS]:
            return (f"{op}: src: rank {r} passed src={h[4 + _MAX_DIMS]} but rank 0 passed src={ref[4 + _MAX_DIMS]}; "
                    f"nothing ran")
    return None


class ProcessGroup:
    """A group of world_size processes (one GPU each) over one NCCL communicator (made by init())."""

    def __init__(self, comm, cuda_device: int, check: bool = True):
        self._comm = comm
        self.rank = comm.rank
        self.world_size = comm.world_size
        self.device = "cuda"
        self.cuda_device = cuda_device
        self.check = check

    def __repr__(self) -> str:
        state = "ok" if self.ok else "unusable"
        return f"ProcessGroup(rank={self.rank}, world_size={self.world_size}, device='cuda:{self.cuda_device}', {state})"

    @property
    def ok(self) -> bool:
        """False once destroyed, aborted or failed (error then says why)."""
        return self._comm.ok

    @property
    def error(self) -> str:
        return self._comm.error

    @property
    def timeout(self) -> float:
        return self._comm.timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._comm.timeout = seconds

    # ---- argument checks ----
    def _local_problem(self, op: str, t, out=None, src=0, out_shape=None):
        """The exception this rank's arguments deserve, or None (the C library checks again)."""
        def tensor_problem(name, x):
            if not isinstance(x, _TENSOR_TYPES):
                return TypeError(f"{op}: {name}: expected a lightning_core Tensor on cuda, got {type(x).__name__}")
            if x.device != "cuda":
                return ValueError(f"{op}: {name}: expected a tensor on cuda, got one on {x.device}")
            if not x.is_contiguous:
                return ValueError(f"{op}: {name}: expected a contiguous tensor, got a strided view")
            if x.dtype not in DTYPES:
                return TypeError(f"{op}: {name}: expected dtype {', '.join(DTYPES)}, got {x.dtype}")
            return None

        p = tensor_problem("t", t)
        if p is None and op == "broadcast":
            if isinstance(src, bool) or not isinstance(src, int):
                p = TypeError(f"broadcast: src: expected an int, got {type(src).__name__}")
            elif not 0 <= src < self.world_size:
                p = ValueError(f"broadcast: src: expected a rank 0..{self.world_size - 1}, got {src}")
        if p is None and op == "reduce_scatter" and t.shape[0] % self.world_size:
            p = ValueError(f"reduce_scatter: t: expected shape[0] divisible by world_size {self.world_size}, "
                           f"got {_shape_text(t.shape)}")
        if p is None and out is not None:
            p = tensor_problem("out", out)
            if p is None and out.dtype != t.dtype:
                p = TypeError(f"{op}: out: expected dtype {t.dtype} (t's), got {out.dtype}")
            if p is None and tuple(out.shape) != out_shape:
                p = ValueError(f"{op}: out: expected shape {_shape_text(out_shape)}, got {_shape_text(out.shape)}")
        return p

    def _prepare(self, op: str, t, out=None, src=0) -> None:
        out_shape = None
        if isinstance(t, _TENSOR_TYPES):
            s = tuple(t.shape)
            out_shape = ((s[0] * self.world_size,) + s[1:] if op == "all_gather"
                         else (s[0] // self.world_size,) + s[1:] if op == "reduce_scatter" else None)
        problem = self._local_problem(op, t, out, src, out_shape)
        if not self.check or _C.capture_active():
            if problem is not None:
                raise problem
            return
        headers = self._comm.exchange_header(make_header(op, t, src, problem is not None))
        if problem is not None:
            raise problem
        msg = compare_headers(headers, self.rank)
        if msg is not None:
            raise ValueError(msg)

    # ---- collectives ----
    def all_reduce(self, t):
        """Sum over the ranks, in place; returns t."""
        self._prepare("all_reduce", t)
        return self._comm.all_reduce(t)

    def all_gather(self, t):
        """A new [world_size * t.shape[0], ...] tensor: every rank's t in rank order."""
        self._prepare("all_gather", t)
        return self._comm.all_gather(t)

    def all_gather_into(self, out, t):
        self._prepare("all_gather", t, out)
        return self._comm.all_gather(t, out)

    def reduce_scatter(self, t):
        """A new [t.shape[0] // world_size, ...] tensor: this rank's slice of the sum."""
        self._prepare("reduce_scatter", t)
        return self._comm.reduce_scatter(t)

    def reduce_scatter_into(self, out, t):
        self._prepare("reduce_scatter", t, out)
        return self._comm.reduce_scatter(t, out)

    def broadcast(self, t, src: int = 0):
        """Rank src's t on every rank, in place; returns t."""
        self._prepare("broadcast", t, src=src)
        return self._comm.broadcast(t, src)

    def barrier(self) -> None:
        """Returns once every rank has reached it (RuntimeError after the timeout)."""
        self._comm.barrier()

    def synchronize(self) -> None:
        """Waits for the work enqueued on the library's stream, bounded by the timeout (lc.synchronize is not)."""
        self._comm.wait()

    def abort(self, reason: str = "by the caller") -> None:
        self._comm.abort(reason)

    def destroy(self) -> None:
        """Waits for this group's work, frees the communicator; a failed group is aborted. Idempotent."""
        global _default
        if _default is self:
            _default = None
        self._comm.destroy()
