"""Shared fixtures and helpers for the lightning_core Python tests (spec: docs/python_api.md).

- ``rng``: a NumPy Generator seeded per test from one session seed (LC_TEST_SEED, default 20240531),
  printed in the pytest header so that any failure can be replayed.
- ``rel_err(out, ref)``: ||out - ref|| / ||ref|| in float64; fails the test on any NaN/inf in ``out``
  where ``ref`` is finite (NaN never passes), and on a shape mismatch.
- ``poison(shape, dtype)``: an array filled with NaN, used as ``out`` to check every element is written.
- ``devices``: "cpu" always, plus "cuda" when ``lc.cuda_available()``. A test that takes a ``device``
  argument runs for "cpu" and for "cuda"; the "cuda" run is skipped (cleanly, with a reason) where there
  is no GPU (CI has none).
- ``strict_off``: makes sure strict device mode is off before and after a test.
- ``ref``: float64 NumPy references of every op (matmul, attention, conv2d, relu, gelu, layer_norm, the
  conv->attention chain): lightning_core.testing.refs, shared with the benchmarks.
"""
import os
import zlib

import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import refs as _refs

SEED = int(os.environ.get("LC_TEST_SEED", "20240531"))

CUDA = bool(lc.cuda_available())
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])
requires_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA GPU here (lc.cuda_available() is False)")


def pytest_report_header(config):
    return [
        f"lightning_core {lc.__version__}: LC_TEST_SEED={SEED} (set LC_TEST_SEED to replay another seed)",
        f"lightning_core devices under test: {DEVICES}; cuda_available={CUDA}",
    ]


def pytest_generate_tests(metafunc):
    # A test argument named exactly "device" runs once per device: "cpu", and "cuda", which is reported
    # as skipped where there is no GPU.
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])


def _test_seed(nodeid):
    # One stream per test (independent of test order and selection), derived from the session seed.
    return (SEED * 1_000_003 + zlib.crc32(nodeid.encode())) % (2**63)


@pytest.fixture
def rng(request):
    return np.random.default_rng(_test_seed(request.node.nodeid))


@pytest.fixture
def devices():
    return list(DEVICES)


def rel_err(out, ref):
    """lightning_core.testing.rel_err (||out - ref|| / ||ref|| in float64), failing the test with the reason
    where out cannot be compared (shape mismatch, NaN/inf where the reference is finite)."""
    why = _refs.mismatch(out, ref)
    assert why is None, why
    return _refs.rel_err(out, ref)


def poison(shape, dtype=np.float32):
    """An array of ``shape`` filled with NaN (an ``out`` buffer that must be fully overwritten)."""
    return np.full(shape, np.nan, dtype=dtype)


def tol(dtype, k=None):
    """The relative-error bound for an output dtype (matmul with k >= 1024: scaled by sqrt(k/256))."""
    if np.dtype(dtype) == np.float64:
        return 1e-12
    t = 1e-5
    if k is not None and k >= 1024:
        t *= float(np.sqrt(k / 256.0))
    return t


@pytest.fixture(name="rel_err")
def _rel_err_fixture():
    return rel_err


@pytest.fixture(name="poison")
def _poison_fixture():
    return poison


@pytest.fixture(name="tol")
def _tol_fixture():
    return tol


@pytest.fixture
def strict_off():
    lc.set_strict_device(False)
    try:
        yield
    finally:
        lc.set_strict_device(False)


@pytest.fixture(autouse=True)
def _never_leave_strict_mode_on():
    # Strict mode is process-global (and may start on from LC_STRICT_DEVICE=1): every test starts with it
    # off, and a test that fails half-way must not leak it into the next test.
    lc.set_strict_device(False)
    yield
    if lc.strict_device():
        lc.set_strict_device(False)
        pytest.fail("test left strict device mode on")


# ---- gradient checks (test_nn.py, test_autograd.py) --------------------------------------------------
def interrupt_child(code, delay_s=1.0, timeout_s=30):
    """Runs ``code`` in a child Python; once it prints "ready", waits delay_s (well inside its long C call),
    sends SIGINT and reads its next line (waiting at most timeout_s for each line). Returns (line, latency_s
    from the signal to that line, returncode, stderr). The child is killed if it has not exited by timeout_s."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    def readline(timeout):  # "" after timeout s: a child that never answers fails the test, never hangs it
        got = []
        t = threading.Thread(target=lambda: got.append(p.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return got[0] if got else ""

    # Python leaves SIGINT ignored when it starts with it ignored (a test run started in the background by a
    # non-interactive shell): the child installs the KeyboardInterrupt handler itself
    code = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n" + code
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert readline(timeout_s).strip() == "ready"
        time.sleep(delay_s)
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        line = readline(timeout_s)
        latency = time.monotonic() - sent
        p.wait(timeout=timeout_s)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return line, latency, p.returncode, p.stderr.read()


def central_diff(f, arrays, eps=1e-6):
    """Central finite differences of the scalar f() with respect to every element of each float64 array
    in ``arrays`` (modified in place and restored)."""
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        it = np.nditer(a, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            old = a[i]
            a[i] = old + eps
            fp = f()
            a[i] = old - eps
            fm = f()
            a[i] = old
            g[i] = (fp - fm) / (2 * eps)
        grads.append(g)
    return grads


# ---- float64 NumPy references: lightning_core.testing.refs (one set for the tests and the benchmarks) ----
REF = _refs.REF
ref_matmul, ref_attention, ref_conv2d = _refs.ref_matmul, _refs.ref_attention, _refs.ref_conv2d
conv_out_size, ref_relu, ref_gelu, ref_layer_norm = _refs.conv_out_size, _refs.ref_relu, _refs.ref_gelu, _refs.ref_layer_norm


@pytest.fixture
def ref():
    return REF


# ---- device policy helpers shared by the op test files ---------------------------------------------
FALLBACK = "fallback_preferred_unavailable"
# Where an unavailable device ("metal", or "cuda" without a GPU) falls back to: the best available one.
FALLBACK_DEVICE = "cuda" if lc.cuda_available() else "cpu"


def unavailable_devices():
    """Device strings that must fall back to the CPU here: metal always, cuda without a GPU."""
    return ["metal"] + ([] if lc.cuda_available() else ["cuda"])


def check_dispatch(op, requested, selected=None, reason=None):
    """Asserts lc.last_dispatch() names `op` (substring) and the requested/selected device and reason."""
    d = lc.last_dispatch()
    assert isinstance(d, dict)
    assert op in str(d["op"])
    assert d["requested"] == requested
    if selected is not None:
        assert d["selected"] == selected
    if reason is not None:
        assert d["reason"] == reason
    return d


def replay_step(graph, inputs, out):
    """One replay of a captured step: each (device tensor, host array) of ``inputs`` copied in, ``out`` poisoned
    with NaN, the graph replayed; returns out on the host."""
    for t, a in inputs:
        t.copy_from(a)
    cur = out.numpy()
    out.copy_from(np.full(cur.shape, np.nan, cur.dtype))
    graph.replay()
    return out.numpy()
