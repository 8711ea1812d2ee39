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
- ``ref``: float64 NumPy references of every op (matmul, attention, conv2d, relu, gelu, layer_norm).
"""
import math
import os
import types
import zlib

import numpy as np
import pytest

import lightning_core as lc

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
    """||out - ref|| / ||ref|| computed in float64 (||out|| when ref is all zeros). Fails on NaN/inf in
    ``out`` where ``ref`` is finite."""
    out = np.asarray(out)
    ref = np.asarray(ref)
    assert out.shape == ref.shape, f"shape {out.shape} != reference shape {ref.shape}"
    o = out.astype(np.float64)
    r = ref.astype(np.float64)
    finite_ref = np.isfinite(r)
    bad = ~np.isfinite(o) & finite_ref
    assert not bad.any(), (
        f"{int(bad.sum())} non-finite value(s) in the output where the reference is finite "
        f"(first at index {np.argwhere(bad)[0].tolist()})"
    )
    # Where the reference itself is inf/NaN the output must match it exactly.
    if not finite_ref.all():
        assert np.array_equal(o[~finite_ref], r[~finite_ref], equal_nan=True)
    o = o[finite_ref]
    r = r[finite_ref]
    denom = np.linalg.norm(r)
    if denom == 0:  # an all-zero reference (e.g. relu of negatives): the absolute error must be tiny
        return float(np.linalg.norm(o))
    return float(np.linalg.norm(o - r) / denom)


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


# ---- float64 NumPy references -------------------------------------------------------------------

def ref_matmul(a, b):
    return np.asarray(a, np.float64) @ np.asarray(b, np.float64)


def ref_attention(q, k, v, causal=False):
    """Causal: row i reads keys and values 0..i only. Masked scores are replaced (np.where, so a NaN/Inf
    from a masked k row is dropped) and masked v rows are sliced away, never multiplied by p = 0
    (0 * NaN would be NaN). NaN/Inf in what a row sees propagate."""
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf and the like are meant (NaN out)
        return _ref_attention(q, k, v, causal)


def _ref_attention(q, k, v, causal):
    s = (q @ k.T) / math.sqrt(q.shape[1])
    if causal:
        s = np.where(np.tril(np.ones((q.shape[0], k.shape[0]), dtype=bool)), s, -np.inf)
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    if not causal:
        return p @ v
    return np.stack([p[i, : i + 1] @ v[: i + 1] for i in range(q.shape[0])]).reshape(q.shape[0], v.shape[1])


def ref_conv2d(x, w, b=None, stride_h=1, stride_w=1, pad_h=0, pad_w=0, apply_relu=False):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    kh, kw = w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride_h, ::stride_w]
    y = np.einsum("ncijab,ocab->noij", win, w)
    if b is not None:
        y = y + np.asarray(b, np.float64)[None, :, None, None]
    if apply_relu:
        y = np.maximum(y, 0.0)
    return y


def conv_out_size(h, k, stride, pad):
    return (h + 2 * pad - k) // stride + 1


def ref_relu(x):
    return np.maximum(np.asarray(x, np.float64), 0.0)


_erf = np.frompyfunc(math.erf, 1, 1)


def ref_gelu(x, approximate="none"):
    x = np.asarray(x, np.float64)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def ref_layer_norm(x, gamma=None, beta=None, eps=1e-5):
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * np.asarray(gamma, np.float64)
    if beta is not None:
        y = y + np.asarray(beta, np.float64)
    return y


REF = types.SimpleNamespace(
    matmul=ref_matmul,
    attention=ref_attention,
    conv2d=ref_conv2d,
    conv_out_size=conv_out_size,
    relu=ref_relu,
    gelu=ref_gelu,
    layer_norm=ref_layer_norm,
)


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
