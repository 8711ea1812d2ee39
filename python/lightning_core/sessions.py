"""Resident sessions, the attention IO policy and the sync-policy context (seed sections 6, 9 and 23).

The session classes are thin subclasses of the C type ``lightning_core._C.ResidentSession``: their
constructors give the seed's signatures, and every method runs in C. What each method uploads,
computes, downloads and waits for is in docs/python_api.md ("Resident sessions"):

========================================  ========  ============  ==========  ===============
method                                    upload    compute       download    waits
========================================  ========  ============  ==========  ===============
start_into(*inputs, out)                  yes       once          into out    yes
run_into(*inputs, out)                    yes       once          no          no (policy)
sync_into(*inputs, out)                   yes       once          into out    yes
run_batch_sync_into(*inputs, out, n)      once      n times       once        once
run_batch_sync_no_download_into(..., n)   once      n times       no          once (policy)
run_batch_sync_cached_no_download(n)      no        n times       no          once (policy)
download_into(out)                        no        no            into out    host out: yes
========================================  ========  ============  ==========  ===============

attention_forward_with_policy caches its sessions per thread (LRU, set_policy_session_capacity).
Tests: tests/python/test_sessions.py, tests/python/test_sync_policy.py, tests/python/test_threads_hidden_state.py,
tests/python/test_dtype_sessions_graph.py (float16/bfloat16 sessions).
"""

import threading
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from . import _C
from ._checks import check_device as _check_device, check_int as _check_int
from ._pool import check_capacity as _check_capacity

__all__ = [
    "SESSION_MAX_LOOPS",
    "MatMulResidentSession",
    "MatMulMetalResidentSession",
    "MatrixElemwiseResidentSession",
    "MatrixElemwiseMetalResidentSession",
    "AttentionSession",
    "ConvAttentionSession",
    "AttentionIoPolicy",
    "attention_forward_with_policy",
    "attention_policy_session",
    "set_policy_session_capacity",
    "policy_session_cache_info",
    "matmul2d_resident_session",
    "sync_policy",
]


#: The most ``loops`` one batch method (run, run_batch_*) or DeviceGraph.replay takes: 2**24.
SESSION_MAX_LOOPS = _C.SESSION_MAX_LOOPS


class MatMulResidentSession(_C.ResidentSession):
    """out [m, n] = a [m, k] @ b [k, n] with resident device buffers of ``dtype`` (float32, float16 or
    bfloat16: storage in the dtype, float32 accumulation); inputs and ``out`` of a float16/bfloat16
    session must have its dtype (TypeError otherwise)."""

    def __init__(self, m, k, n, device="auto", dtype="float32"):
        super().__init__("matmul", (m, k, n), device, dtype=dtype)
        self.m, self.k, self.n = m, k, n

    def __repr__(self):
        return f"MatMulResidentSession(m={self.m}, k={self.k}, n={self.n}, device={self.device!r}, dtype={self.dtype!r})"


MatMulMetalResidentSession = MatMulResidentSession


def matmul2d_resident_session(a, b, device="auto", dtype=None):
    """A MatMulResidentSession sized for a [m, k] @ b [k, n] (seed section 23); ``dtype`` None: a's dtype
    when it is float16 or bfloat16, else float32."""
    a_shape, b_shape = getattr(a, "shape", None), getattr(b, "shape", None)
    if a_shape is None or len(a_shape) != 2:
        raise ValueError(f"matmul2d_resident_session: a: expected a 2-D array, got shape {a_shape}")
    if b_shape is None or len(b_shape) != 2 or b_shape[0] != a_shape[1]:
        raise ValueError(
            f"matmul2d_resident_session: b: expected shape ({a_shape[1]}, n) to match a {tuple(a_shape)}, got {b_shape}")
    if dtype is None:
        name = str(getattr(a, "dtype", "float32"))
        dtype = name if name in ("float16", "bfloat16") else "float32"
    return MatMulResidentSession(int(a_shape[0]), int(a_shape[1]), int(b_shape[1]), device, dtype)


_ADD, _SUB, _DIV = 0, 1, 2


class MatrixElemwiseResidentSession(_C.ResidentSession):
    """out [rows, cols] = a (+|-|/) b with resident buffers of ``dtype`` (float32, float16 or bfloat16, as
    MatMulResidentSession); one captured graph per operation."""

    def __init__(self, rows, cols, device="auto", dtype="float32"):
        super().__init__("elemwise", (rows, cols), device, dtype=dtype)
        self.rows, self.cols = rows, cols

    def add_start_into(self, a, b, out):
        self.start_into(a, b, out, program=_ADD)

    def add_run_into(self, a, b, out):
        self.run_into(a, b, out, program=_ADD)

    def sub_start_into(self, a, b, out):
        self.start_into(a, b, out, program=_SUB)

    def sub_run_into(self, a, b, out):
        self.run_into(a, b, out, program=_SUB)

    def div_start_into(self, a, b, out):
        self.start_into(a, b, out, program=_DIV)

    def div_run_into(self, a, b, out):
        self.run_into(a, b, out, program=_DIV)

    def __repr__(self):
        return f"MatrixElemwiseResidentSession(rows={self.rows}, cols={self.cols}, device={self.device!r}, dtype={self.dtype!r})"


MatrixElemwiseMetalResidentSession = MatrixElemwiseResidentSession


class AttentionSession(_C.ResidentSession):
    """Single-head attention [seq, head_dim] with resident q, k, v and output of ``dtype`` (float32, float16
    or bfloat16: float32 scores, softmax and accumulation, out rounded once); forward_into(q, k, v, out)."""

    def __init__(self, seq, head_dim, causal=False, device="auto", dtype="float32"):
        super().__init__("attention", (seq, head_dim), device, causal, dtype=dtype)
        self.seq, self.head_dim, self.causal = seq, head_dim, bool(causal)

    def __repr__(self):
        return (f"AttentionSession(seq={self.seq}, head_dim={self.head_dim}, causal={self.causal}, "
                f"device={self.device!r}, dtype={self.dtype!r})")


class ConvAttentionSession(_C.ResidentSession):
    """The seed's conv -> attention chain as one resident session (one CUDA graph replay per run):
    relu(conv2d 3x3(x, w) + bias) -> flatten, repeat/truncate into q|k|v [seq_len, head_dim] ->
    attention. Inputs x [batch, in_ch, h, w], w [out_ch, in_ch, 3, 3], bias [out_ch]; out [seq_len, head_dim];
    every buffer of ``dtype`` (float32, float16 or bfloat16; a 16-bit chain runs as the three ops, each rounding
    its output once, where the fused CUDA kernel has no kernel for the dtype)."""

    def __init__(self, batch, in_ch, h, w, out_ch, seq_len, head_dim, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
                 causal=False, device="auto", dtype="float32"):
        super().__init__("conv_attention", (batch, in_ch, h, w, out_ch, seq_len, head_dim), device, causal,
                         stride_h, stride_w, pad_h, pad_w, dtype=dtype)
        self.seq_len, self.head_dim = seq_len, head_dim


class AttentionIoPolicy:
    """Per-call IO policy of attention_forward_with_policy (seed): upload the inputs, download the result,
    synchronize. upload=False reuses the q/k/v resident from the previous call of the same shape;
    download=False leaves the result on the device and returns None; synchronize=False (with
    download=False) returns once the work is enqueued. A download always waits for its data."""

    __slots__ = ("upload", "download", "synchronize")

    def __init__(self, upload=True, download=True, synchronize=True):
        self.upload = bool(upload)
        self.download = bool(download)
        self.synchronize = bool(synchronize)

    def __repr__(self):
        return f"AttentionIoPolicy(upload={self.upload}, download={self.download}, synchronize={self.synchronize})"


# attention_forward_with_policy's sessions: per thread (threading.local, dropped with the thread), an LRU of
# at most _policy_capacity[0] shapes each, so a thread never meets another thread's session in use and
# upload=False / download=False refer to this thread's own previous call.
_policy_local = threading.local()
_policy_capacity = [64]


def set_policy_session_capacity(n):
    """attention_forward_with_policy keeps at most ``n`` sessions per thread (default 64; the least
    recently used shape is dropped first, with its resident q/k/v and result)."""
    _policy_capacity[0] = _check_capacity("set_policy_session_capacity", n)
    sessions = getattr(_policy_local, "sessions", None)
    while sessions is not None and len(sessions) > _policy_capacity[0]:
        sessions.popitem(last=False)


def policy_session_cache_info():
    """This thread's attention_forward_with_policy sessions: {'entries': cached shapes, 'capacity'}."""
    return {"entries": len(getattr(_policy_local, "sessions", ())), "capacity": _policy_capacity[0]}


def attention_forward_with_policy(q, k, v, seq, head_dim, causal=False, device="auto", policy=None):
    """attention_forward(q, k, v, seq, head_dim, causal, device) under an AttentionIoPolicy, through a
    resident AttentionSession cached per (seq, head_dim, causal, device) and per thread (an LRU of
    set_policy_session_capacity() shapes). Returns the [seq, head_dim] float32 result, or None when
    policy.download is False (read it later, on the same thread, with
    attention_policy_session(...).download_into(out))."""
    if policy is None:
        policy = AttentionIoPolicy()
    elif not isinstance(policy, AttentionIoPolicy):
        raise TypeError(f"attention_forward_with_policy: policy: expected an AttentionIoPolicy or None, "
                        f"got {type(policy).__name__}")
    sess = attention_policy_session(seq, head_dim, causal, device)
    if policy.upload:
        sess.upload(q, k, v)
    elif not sess.inputs_ready:
        raise ValueError("attention_forward_with_policy: policy: upload=False needs q, k, v uploaded by an earlier "
                         f"call on this thread with seq={seq}, head_dim={head_dim}, causal={bool(causal)}, "
                         f"device={device!r}")
    sess.run(1)
    if policy.download:
        out = np.empty((seq, head_dim), dtype=np.float32)
        sess.download_into(out)
        return out
    if policy.synchronize:
        sess.synchronize()
    return None


def attention_policy_session(seq, head_dim, causal=False, device="auto"):
    """The AttentionSession that attention_forward_with_policy uses for this shape on this thread (created
    on first use; the least recently used beyond set_policy_session_capacity() is dropped)."""
    sessions = getattr(_policy_local, "sessions", None)
    if sessions is None:
        sessions = _policy_local.sessions = OrderedDict()
    fn = "attention_policy_session"
    if not isinstance(causal, (bool, int, np.bool_, np.integer)):
        raise TypeError(f"{fn}: causal: expected a bool, got {type(causal).__name__}")
    # checked before the lookup, so a hit never lets an argument through that the session would refuse
    key = (_check_int(fn, "seq", seq, 1), _check_int(fn, "head_dim", head_dim, 1), bool(causal), _check_device(fn, device))
    sess = sessions.get(key)
    if sess is None:
        sess = AttentionSession(seq, head_dim, causal, device)  # checks every argument
        sessions[key] = sess
        while len(sessions) > _policy_capacity[0]:
            sessions.popitem(last=False)
    else:
        sessions.move_to_end(key)
    return sess


@contextmanager
def _thread_setting(get, set_, value):
    """Sets a per-thread runtime setting to `value` for the block, then restores the previous value."""
    previous = get()
    set_(value)
    try:
        yield
    finally:
        set_(previous)


def sync_policy(policy):
    """Runs the block under `policy` ('auto', 'always', 'never') on this thread, then restores the
    previous per-thread setting: the per-call form of set_sync_policy."""
    return _thread_setting(_C._get_thread_sync_policy, _C._set_thread_sync_policy, policy)


def static_weights(on=True):
    """Runs the block with this thread's static-weights promise set to `on`, then restores the previous
    value. The promise: no kernel still in flight writes the weight operand of the block's linear-family
    calls (true of a model's weights once loaded). Under it the CUDA 16-bit decode GEMV starts reading w
    before the kernel ahead of it ends (programmatic dependent launch); without it the GEMV waits first.
    Results are identical either way; a CUDA graph captured inside the block keeps the promise. The model
    runner's decode steps run under it."""
    if not isinstance(on, bool):
        raise TypeError(f"static_weights: on: expected a bool, got {type(on).__name__}")
    return _thread_setting(_C.get_static_weights, _C.set_static_weights, on)
