"""Zero-copy interop (docs/python_api.md, "Interop: DLPack, CUDA array interface, buffer protocol").

CPU (runs everywhere): NumPy round trips both ways share memory (writes through one are seen by the
other) for float32/float64, contiguous, sliced, transposed and offset data; lc.from_dlpack of a
non-float dtype is a TypeError naming it, negative strides a BufferError, 0-d/empty a ValueError;
lifetimes (the producer's memory lives until the last lightning_core tensor over it dies; an exported
capsule keeps our tensor alive until the consumer's deleter runs); capsule protocol (legacy "dltensor"
vs "dltensor_versioned" by max_version, "used_" after consumption, a used capsule cannot be consumed
twice, an unconsumed capsule releases the tensor); __dlpack__ arguments (stream, copy, dl_device,
max_version); read-only data; the buffer protocol (memoryview shape/strides/format/readonly,
np.asarray zero-copy, __array__ semantics); lc ops writing into imported memory; torch CPU when torch is
installed.

CUDA (skipped without a GPU; torch/CuPy cases skipped when they are not installed): torch <-> lc on the
GPU with the same device pointer both ways, stream ordering without explicit synchronisation in both
directions, an lc op writing into a torch-owned tensor, __cuda_array_interface__ v3 fields, the buffer
protocol refused for CUDA tensors, dl_device=CPU copies, CuPy.
"""
import ctypes
import gc
import sys
import weakref

import numpy as np
import pytest

import lightning_core as lc
from conftest import requires_cuda


def _r(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _capsule_name(cap):
    get = ctypes.pythonapi.PyCapsule_GetName
    get.restype = ctypes.c_char_p
    get.argtypes = [ctypes.py_object]
    return get(cap).decode()


class Producer:
    """A third-party __dlpack__ producer wrapping an ndarray (its finalizer tells when it is freed)."""

    def __init__(self, arr):
        self.arr = arr

    def __dlpack__(self, **kw):
        return self.arr.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.arr.__dlpack_device__()


class NoDeviceProducer:
    """A producer without __dlpack_device__ (the capsule tells where the data lives)."""

    def __init__(self, arr):
        self.arr = arr

    def __dlpack__(self, **kw):
        return self.arr.__dlpack__(**kw)


class OldProducer(Producer):
    """A pre-1.0 producer: __dlpack__ takes only `stream` (no max_version)."""

    def __dlpack__(self, stream=None):
        assert stream is None
        return self.arr.__dlpack__()


# ---- NumPy, both ways -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls,dt", [(lc.Tensor, np.float32), (lc.Tensor64, np.float64)])
def test_numpy_from_lc_shares_memory(rng, cls, dt):
    src = _r(rng, 7, 9, dtype=dt)
    t = cls(src)
    assert t.__dlpack_device__() == (1, 0)
    a = np.from_dlpack(t)
    assert a.dtype == dt and a.shape == (7, 9) and a.ctypes.data == t.data_ptr
    assert np.array_equal(a, src)
    a[2, 3] = 123.0  # numpy -> lc
    assert t.numpy()[2, 3] == 123.0
    t.copy_from(np.full((7, 9), -2.0, dt))  # lc -> numpy
    assert np.all(a == -2.0)


@pytest.mark.parametrize("cls,dt", [(lc.Tensor, np.float32), (lc.Tensor64, np.float64)])
def test_lc_from_numpy_shares_memory(rng, cls, dt):
    x = _r(rng, 5, 6, dtype=dt)
    t = lc.from_dlpack(x)
    assert type(t) is cls and t.shape == (5, 6) and t.device == "cpu" and t.is_contiguous
    assert t.data_ptr == x.ctypes.data
    assert np.array_equal(t.numpy(), x)
    x[1, 1] = 99.0
    assert t.numpy()[1, 1] == 99.0
    t.copy_from(np.arange(30, dtype=dt))
    assert np.array_equal(x, np.arange(30, dtype=dt).reshape(5, 6))


def test_lc_from_lc_shares_storage(rng):
    t = lc.Tensor(_r(rng, 4, 4))
    u = lc.from_dlpack(t)
    assert type(u) is lc.Tensor and u.data_ptr == t.data_ptr
    u.copy_from(np.ones(16, np.float32))
    assert np.all(t.numpy() == 1.0)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_strided_and_offset_imports(rng, dt):
    base = _r(rng, 6, 8, dtype=dt)
    for x in (base[:, ::2], base.T, base[1:, 2:], base[::2, 1::3], base[2:3, :], base[:, 5:6], base[3]):
        t = lc.from_dlpack(x)
        assert t.shape == x.shape and t.data_ptr == x.ctypes.data
        assert t.is_contiguous == x.flags.c_contiguous
        assert np.array_equal(t.numpy(), x)
        if not x.flags.c_contiguous:
            assert t.strides == tuple(s // x.itemsize for s in x.strides)
    # writes through a strided import land in the right elements of the producer
    t = lc.from_dlpack(base[:, ::2])
    t.copy_from(np.zeros((6, 4), dt))
    assert np.all(base[:, ::2] == 0) and np.all(base[:, 1::2] != 0)
    # an lc op reads the strided import (gathered) and writes a contiguous import in place
    x = _r(rng, 6, 8, dtype=dt)
    out = np.zeros((8, 6), dt)
    lc.relu_into(lc.from_dlpack(x.T), lc.from_dlpack(out))
    assert np.array_equal(out, np.maximum(x.T, 0))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_strided_exports(rng, dt):
    cls = lc.Tensor64 if dt == np.float64 else lc.Tensor
    src = _r(rng, 6, 8, dtype=dt)
    t = cls(src)
    for v in (t.view((8, 6), (1, 8)), t.view((3, 8), offset=16), t.view((3, 4), (8, 2), 17)):
        a = np.from_dlpack(v)
        assert np.array_equal(a, v.numpy())
        assert a.ctypes.data == v.data_ptr
        assert a.strides == tuple(s * src.itemsize for s in v.strides)
    v = t.view((8, 6), (1, 8))
    np.from_dlpack(v)[0, 5] = 7.0
    assert t.numpy()[5, 0] == 7.0


def test_size_one_dims_with_odd_strides():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    x = base[1:2, ::2]  # a size-1 dim: its stride does not matter
    t = lc.from_dlpack(x)
    assert t.shape == (1, 3) and np.array_equal(t.numpy(), x)
    y = np.lib.stride_tricks.as_strided(base, shape=(1, 6), strides=(-24, 4))  # negative but size 1
    assert np.array_equal(lc.from_dlpack(y).numpy(), y)


def test_refused_imports():
    for good in (np.arange(6, dtype=np.int32), np.arange(6, dtype=np.int64)):  # index tensors import zero-copy
        t = lc.from_dlpack(good)
        assert t.dtype == good.dtype.name and t.data_ptr == good.ctypes.data and np.array_equal(t.numpy(), good)
    for bad, name in ((np.ones(6, bool), "bool"),
                      (np.ones(6, np.complex64), "complex64"), (np.ones(6, np.uint8), "uint8")):
        with pytest.raises(TypeError, match=name):
            lc.from_dlpack(bad)
    with pytest.raises(BufferError, match="negative stride"):
        lc.from_dlpack(np.arange(6, dtype=np.float32)[::-1])
    with pytest.raises(ValueError, match="dimensions"):
        lc.from_dlpack(np.array(1.0, np.float32))
    with pytest.raises(ValueError, match="dimension > 0"):
        lc.from_dlpack(np.zeros((3, 0), np.float32))
    with pytest.raises(TypeError, match="__dlpack__"):
        lc.from_dlpack([1.0, 2.0])
    with pytest.raises(TypeError):
        lc.from_dlpack()
    # a refused import leaves the capsule unconsumed (its destructor hands the memory back)
    x = np.ones(6, np.uint8)
    cap = x.__dlpack__()
    with pytest.raises(TypeError):
        lc.from_dlpack(cap)
    assert _capsule_name(cap) == "dltensor"


def test_old_producer_and_producer_without_device(rng):
    x = _r(rng, 3, 4)
    t = lc.from_dlpack(OldProducer(x))
    assert t.data_ptr == x.ctypes.data and np.array_equal(t.numpy(), x)
    assert lc.from_dlpack(NoDeviceProducer(x)).data_ptr == x.ctypes.data


# ---- lifetimes --------------------------------------------------------------------------------------


def test_import_keeps_producer_memory_alive(rng):
    arr = _r(rng, 64, 32)
    want = arr.copy()
    freed = []
    weakref.finalize(arr, freed.append, True)
    p = Producer(arr)
    t = lc.from_dlpack(p)
    del p, arr
    gc.collect()
    assert not freed  # our tensor holds the producer's memory
    assert np.array_equal(t.numpy(), want)
    v = t.view((32, 64))
    del t
    gc.collect()
    assert not freed  # a view keeps the storage
    assert np.array_equal(v.numpy(), want.reshape(32, 64))
    del v
    gc.collect()
    assert freed == [True]  # the producer's deleter ran when the last tensor died


def test_export_keeps_tensor_alive(rng):
    src = _r(rng, 16, 16)
    t = lc.Tensor(src)
    refs = sys.getrefcount(t)
    a = np.from_dlpack(t)
    assert sys.getrefcount(t) == refs + 1  # the capsule's manager context holds the tensor
    b = np.from_dlpack(t.view((256,)))
    assert sys.getrefcount(t) == refs + 2  # the view (held by the second export) holds it too
    del t
    gc.collect()
    assert np.array_equal(a, src) and np.array_equal(b, src.ravel())
    alive = a.copy()
    a[...] = 0  # still our storage, shared by both exports
    assert np.all(b == 0)
    del alive


def test_export_releases_tensor(rng):
    t = lc.Tensor(_r(rng, 16, 16))
    refs = sys.getrefcount(t)
    a = np.from_dlpack(t)
    b = memoryview(t)
    c = np.asarray(t)
    del a, b, c
    gc.collect()
    assert sys.getrefcount(t) == refs  # the consumer's deleter / buffer release dropped the reference


# ---- capsule protocol -------------------------------------------------------------------------------


def test_capsule_names_and_consumption(rng):
    t = lc.Tensor(_r(rng, 3, 5))
    assert _capsule_name(t.__dlpack__()) == "dltensor"
    assert _capsule_name(t.__dlpack__(max_version=(1, 0))) == "dltensor_versioned"
    assert _capsule_name(t.__dlpack__(max_version=(1, 3))) == "dltensor_versioned"
    assert _capsule_name(t.__dlpack__(max_version=(0, 8))) == "dltensor"
    for mv, used in (((1, 0), "used_dltensor_versioned"), (None, "used_dltensor")):
        cap = t.__dlpack__(max_version=mv)
        u = lc.from_dlpack(cap)
        assert _capsule_name(cap) == used
        assert u.data_ptr == t.data_ptr and np.array_equal(u.numpy(), t.numpy())
        with pytest.raises(ValueError, match="already consumed"):
            lc.from_dlpack(cap)
    # NumPy consumes our capsules too (np.from_dlpack asks for max_version=(1, 0))
    cap = t.__dlpack__(max_version=(1, 0))
    lc.from_dlpack(cap)


def test_unconsumed_capsule_releases_tensor(rng):
    t = lc.Tensor(_r(rng, 4))
    refs = sys.getrefcount(t)
    caps = [t.__dlpack__(), t.__dlpack__(max_version=(1, 0))]
    assert sys.getrefcount(t) == refs + 2
    del caps
    gc.collect()
    assert sys.getrefcount(t) == refs
    cap = t.__dlpack__()
    u = lc.from_dlpack(cap)  # consumed: now u's storage owns the reference, not the capsule
    del cap
    gc.collect()
    assert sys.getrefcount(t) == refs + 1
    del u
    gc.collect()
    assert sys.getrefcount(t) == refs


def test_dlpack_arguments(rng):
    src = _r(rng, 4, 6)
    t = lc.Tensor(src)
    with pytest.raises(TypeError):
        t.__dlpack__(None)  # keyword-only
    with pytest.raises(TypeError):
        t.__dlpack__(bogus=1)
    with pytest.raises(ValueError, match="stream"):
        t.__dlpack__(stream=5)  # CPU: None only
    with pytest.raises(TypeError, match="stream"):
        t.__dlpack__(stream="x")
    with pytest.raises(TypeError, match="max_version"):
        t.__dlpack__(max_version=1)
    with pytest.raises(TypeError, match="copy"):
        t.__dlpack__(copy=1)
    with pytest.raises(TypeError, match="dl_device"):
        t.__dlpack__(dl_device="cpu")
    with pytest.raises(BufferError):
        t.__dlpack__(dl_device=(7, 0))
    if not lc.cuda_available():
        with pytest.raises(BufferError):
            t.__dlpack__(dl_device=(2, 0))
    assert _capsule_name(t.__dlpack__(dl_device=(1, 0), copy=False)) == "dltensor"
    # copy=True: an independent copy (numpy passes copy through)
    c = np.from_dlpack(t, copy=True)
    assert c.ctypes.data != t.data_ptr and np.array_equal(c, src)
    c[0, 0] = 1e6
    assert t.numpy()[0, 0] == src[0, 0]
    s = np.from_dlpack(t, copy=False)
    assert s.ctypes.data == t.data_ptr
    # a copy of a strided view is contiguous
    v = t.view((6, 4), (1, 6))
    assert np.array_equal(np.from_dlpack(v, copy=True), src.T)


def test_read_only_data(rng):
    x = _r(rng, 3, 4)
    x.flags.writeable = False
    t = lc.from_dlpack(x)  # a versioned capsule with the read-only flag
    assert t.data_ptr == x.ctypes.data
    with pytest.raises(ValueError, match="read-only"):
        t.copy_from(np.zeros(12, np.float32))
    with pytest.raises(ValueError):
        lc.relu_into(t, t)
    assert memoryview(t).readonly
    assert not np.asarray(t).flags.writeable
    a = np.from_dlpack(t)  # versioned: read-only flag carried over
    assert not a.flags.writeable and a.ctypes.data == x.ctypes.data
    with pytest.raises(BufferError, match="read-only"):
        t.__dlpack__()  # a legacy capsule cannot say read-only
    c = np.from_dlpack(t, copy=True)
    assert c.flags.writeable


# ---- buffer protocol, __array__ -----------------------------------------------------------------------


@pytest.mark.parametrize("cls,dt,fmt", [(lc.Tensor, np.float32, "f"), (lc.Tensor64, np.float64, "d")])
def test_buffer_protocol(rng, cls, dt, fmt):
    src = _r(rng, 3, 5, dtype=dt)
    t = cls(src)
    m = memoryview(t)
    isz = np.dtype(dt).itemsize
    assert m.format == fmt and m.itemsize == isz and m.shape == (3, 5) and m.strides == (5 * isz, isz)
    assert not m.readonly and m.c_contiguous and m.nbytes == src.nbytes
    assert bytes(t) == src.tobytes()
    m.release()
    v = t.view((5, 3), (1, 5))
    mv = memoryview(v)
    assert mv.shape == (5, 3) and mv.strides == (isz, 5 * isz) and not mv.c_contiguous
    assert np.array_equal(np.asarray(mv), src.T)
    # np.asarray is zero-copy for CPU tensors; np.array copies
    a = np.asarray(t)
    assert a.ctypes.data == t.data_ptr and a.dtype == dt
    a[0, 0] = 5.0
    assert t.numpy()[0, 0] == 5.0
    b = np.array(t)
    assert b.ctypes.data != t.data_ptr
    # __array__: zero-copy unless copy=True; numpy() is always a copy
    assert t.__array__().ctypes.data == t.data_ptr
    assert t.__array__(copy=False).ctypes.data == t.data_ptr
    assert t.__array__(copy=True).ctypes.data != t.data_ptr
    assert t.numpy().ctypes.data != t.data_ptr
    other = np.float64 if dt == np.float32 else np.float32
    assert t.__array__(dtype=other).dtype == other
    with pytest.raises(ValueError):
        t.__array__(dtype=other, copy=False)
    # the buffer keeps the tensor alive
    del a, m, mv, v
    gc.collect()
    refs = sys.getrefcount(t)
    keep = np.asarray(t)
    assert sys.getrefcount(t) > refs
    del keep
    gc.collect()
    assert sys.getrefcount(t) == refs


def test_cpu_tensor_has_no_cuda_array_interface(rng):
    t = lc.Tensor(_r(rng, 2, 2))
    assert not hasattr(t, "__cuda_array_interface__")
    with pytest.raises(AttributeError, match="CUDA"):
        t.__cuda_array_interface__


def test_lc_op_into_imported_memory(rng):
    x = _r(rng, 33, 17)
    out = np.full((33, 17), np.nan, np.float32)
    y = lc.relu(lc.from_dlpack(x))
    assert isinstance(y, lc.Tensor)
    lc.relu_into(lc.from_dlpack(x), lc.from_dlpack(out))
    assert np.array_equal(out, np.maximum(x, 0)) and np.array_equal(y.numpy(), out)
    a, b = _r(rng, 9, 11), _r(rng, 11, 5)
    res = np.zeros((9, 5), np.float32)
    lc.matmul2d_into(lc.from_dlpack(a), lc.from_dlpack(b), lc.from_dlpack(res))
    assert np.allclose(res, a @ b, rtol=1e-5, atol=1e-5)


# ---- torch (CPU) ------------------------------------------------------------------------------------


def test_torch_cpu_round_trips(rng):
    torch = pytest.importorskip("torch")
    src = _r(rng, 6, 10)
    t = lc.Tensor(src)
    tt = torch.from_dlpack(t)
    assert tt.data_ptr() == t.data_ptr and tt.dtype == torch.float32
    assert np.array_equal(tt.numpy(), src)
    tt[0, 0] = 42.0
    assert t.numpy()[0, 0] == 42.0
    v = t.view((3, 4), (10, 2), 13)  # strided, at an offset (byte_offset in the capsule)
    tv = torch.from_dlpack(v)
    assert tv.data_ptr() == v.data_ptr and np.array_equal(tv.numpy(), v.numpy())
    x = torch.randn(8, 12, dtype=torch.float64)
    u = lc.from_dlpack(x)
    assert type(u) is lc.Tensor64 and u.data_ptr == x.data_ptr()
    xt = x.t()
    v = lc.from_dlpack(xt)
    assert not v.is_contiguous and np.array_equal(v.numpy(), xt.numpy())
    w = torch.from_dlpack(lc.from_dlpack(x))  # round trip: same memory
    assert w.data_ptr() == x.data_ptr()
    for tdt, name in ((torch.float16, "float16"), (torch.bfloat16, "bfloat16")):  # zero copy both ways
        h = torch.arange(6, dtype=tdt)
        lh = lc.from_dlpack(h)
        assert lh.dtype == name and lh.data_ptr == h.data_ptr()
        assert torch.from_dlpack(lh).data_ptr() == h.data_ptr() and torch.from_dlpack(lh).dtype == tdt
    # lifetime: the torch storage lives while our tensor does
    y = torch.arange(10, dtype=torch.float32)
    ly = lc.from_dlpack(y)
    del y
    gc.collect()
    assert np.array_equal(ly.numpy(), np.arange(10, dtype=np.float32))


# ---- CUDA -------------------------------------------------------------------------------------------


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


@requires_cuda
@pytest.mark.parametrize("cls,dt", [(lc.Tensor, np.float32), (lc.Tensor64, np.float64)])
def test_cuda_torch_from_lc_same_pointer(rng, cls, dt):
    torch = _torch_cuda()
    src = _r(rng, 129, 65, dtype=dt)
    t = cls(src, device="cuda")
    dev = t.__dlpack_device__()
    assert dev[0] == 2
    tt = torch.from_dlpack(t)
    assert tt.is_cuda and tt.data_ptr() == t.data_ptr and tt.device.index == dev[1]
    assert np.array_equal(tt.cpu().numpy(), src)
    # views (strides, offset) export as they are
    v = t.view((65, 129), (1, 65))
    tv = torch.from_dlpack(v)
    assert tv.data_ptr() == v.data_ptr and np.array_equal(tv.cpu().numpy(), v.numpy())
    v2 = t.view((10, 65), offset=65 * 7)
    assert np.array_equal(torch.from_dlpack(v2).cpu().numpy(), src[7:17])
    # torch writes, lc reads (after torch's work is done)
    tt.mul_(2.0)
    torch.cuda.synchronize()
    assert np.array_equal(t.numpy(), src * 2)


@requires_cuda
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_cuda_lc_from_torch_same_pointer(rng, dt):
    torch = _torch_cuda()
    x = torch.randn(257, 31, dtype=getattr(torch, dt), device="cuda")
    t = lc.from_dlpack(x)
    assert t.device == "cuda" and t.data_ptr == x.data_ptr() and t.dtype == dt
    assert np.array_equal(t.numpy(), x.cpu().numpy())
    xs = x[3:, 1::2]
    ts = lc.from_dlpack(xs)
    assert ts.data_ptr == xs.data_ptr() and not ts.is_contiguous
    assert np.array_equal(ts.numpy(), xs.cpu().numpy())
    # round trip torch -> lc -> torch keeps the pointer
    assert torch.from_dlpack(lc.from_dlpack(x)).data_ptr() == x.data_ptr()
    # lifetime: torch's memory lives while our tensor does
    y = torch.arange(1000, dtype=torch.float32, device="cuda")
    ly = lc.from_dlpack(y)
    del y
    gc.collect()
    torch.cuda.empty_cache()
    assert np.array_equal(ly.numpy(), np.arange(1000, dtype=np.float32))
    h = torch.ones(4, dtype=torch.bfloat16, device="cuda")
    lh = lc.from_dlpack(h)
    assert lh.dtype == "bfloat16" and lh.device == "cuda" and lh.data_ptr == h.data_ptr()


@requires_cuda
def test_cuda_lc_op_writes_torch_tensor(rng):
    torch = _torch_cuda()
    n = 1 << 22
    x = torch.randn(n, device="cuda")
    out = torch.full((n,), float("nan"), device="cuda")
    lc.relu_into(lc.from_dlpack(x), lc.from_dlpack(out), device="cuda")
    lc.synchronize("cuda")
    assert torch.equal(out, torch.relu(x))
    # chain on the GPU with no host round trip: torch -> lc -> lc -> torch
    a = torch.randn(512, 256, device="cuda")
    b = torch.randn(256, 128, device="cuda")
    y = lc.matmul2d(lc.from_dlpack(a), lc.from_dlpack(b), device="cuda")
    z = lc.relu(y, device="cuda")
    assert isinstance(z, lc.Tensor) and z.device == "cuda"
    tz = torch.from_dlpack(z)  # torch's stream waits for ours: no explicit synchronize
    assert torch.allclose(tz, torch.relu(a @ b), rtol=1e-4, atol=1e-4)


@requires_cuda
def test_cuda_stream_ordering_without_sync(rng):
    torch = _torch_cuda()
    n = 1 << 24
    for _ in range(3):
        # torch writes on its stream, lc reads on its own: from_dlpack hands our stream to torch
        x = torch.empty(n, device="cuda")
        x.fill_(-1.0)
        for _ in range(20):
            x.add_(0.5)  # long queue on torch's stream
        out = lc.relu(lc.from_dlpack(x), device="cuda")
        assert np.all(out.numpy() == 9.0)
        # lc writes on its stream, torch reads on its stream after torch.from_dlpack
        t = lc.Tensor((n,), device="cuda")
        src = lc.from_dlpack(torch.full((n,), 3.0, device="cuda"))
        for _ in range(20):
            lc.vector_add_into(src, src, t, device="cuda")
        tt = torch.from_dlpack(t)
        assert torch.all(tt == 6.0).item()
    # a temporary torch input is handed back (and reusable by torch) only after the lc kernel reading it ran
    for _ in range(5):
        y = lc.relu(lc.from_dlpack(torch.full((n,), 2.0, device="cuda")), device="cuda")
        junk = torch.full((n,), -7.0, device="cuda")  # likely the same block, written on torch's stream
        assert np.all(y.numpy() == 2.0)
        del junk
    # explicit streams: a side torch stream as the consumer
    s = torch.cuda.Stream()
    t = lc.Tensor(np.ones(n, np.float32), device="cuda")
    lc.vector_add_into(t, t, t, device="cuda")
    with torch.cuda.stream(s):
        tt = torch.from_dlpack(t)
        total = tt.sum()
    s.synchronize()
    assert total.item() == 2.0 * n


@requires_cuda
def test_cuda_dlpack_arguments(rng):
    src = _r(rng, 40, 30)
    t = lc.Tensor(src, device="cuda")
    for st in (None, -1, 1, 2):
        cap = t.__dlpack__(stream=st)
        assert _capsule_name(cap) == "dltensor"
    with pytest.raises(ValueError, match="ambiguous"):
        t.__dlpack__(stream=0)
    with pytest.raises(ValueError, match="stream"):
        t.__dlpack__(stream=-2)
    # to the host: a copy (synchronous), refused with copy=False
    with pytest.raises(BufferError, match="copy"):
        t.__dlpack__(dl_device=(1, 0), copy=False)
    h = np.from_dlpack(t, device="cpu")
    assert np.array_equal(h, src)
    cap = t.__dlpack__(dl_device=(1, 0), max_version=(1, 0))
    h2 = np.from_dlpack(_Capsule(cap, (1, 0)))
    assert np.array_equal(h2, src)
    # copy=True on the GPU: another device buffer
    c = lc.from_dlpack(_Capsule(t.__dlpack__(copy=True, max_version=(1, 0)), t.__dlpack_device__()))
    assert c.device == "cuda" and c.data_ptr != t.data_ptr and np.array_equal(c.numpy(), src)
    # a CPU tensor to the GPU (copy)
    cpu = lc.Tensor(src)
    g = lc.from_dlpack(_Capsule(cpu.__dlpack__(dl_device=t.__dlpack_device__()), t.__dlpack_device__()))
    assert g.device == "cuda" and np.array_equal(g.numpy(), src)
    # a raw capsule from another producer is assumed ready on the legacy default stream
    raw = lc.from_dlpack(t.__dlpack__(stream=-1))
    assert raw.data_ptr == t.data_ptr


class _Capsule:
    """Hands out a prepared capsule (to feed np.from_dlpack / lc.from_dlpack a chosen capsule)."""

    def __init__(self, cap, dev):
        self.cap, self.dev = cap, dev

    def __dlpack__(self, **kw):
        return self.cap

    def __dlpack_device__(self):
        return self.dev


@requires_cuda
def test_cuda_array_interface(rng):
    src = _r(rng, 12, 20)
    t = lc.Tensor(src, device="cuda")
    cai = t.__cuda_array_interface__
    assert cai["version"] == 3 and cai["shape"] == (12, 20) and cai["typestr"] == "<f4"
    assert cai["data"] == (t.data_ptr, False) and cai["strides"] is None
    assert isinstance(cai["stream"], int) and cai["stream"] not in (0,)
    v = t.view((20, 12), (1, 20))
    assert v.__cuda_array_interface__["strides"] == (4, 80)
    t64 = lc.Tensor64(src.astype(np.float64), device="cuda")
    assert t64.__cuda_array_interface__["typestr"] == "<f8"
    with pytest.raises(BufferError, match="cuda"):
        memoryview(t)
    assert np.array_equal(np.asarray(t), src)  # falls back to __array__: a download
    with pytest.raises(ValueError):
        t.__array__(copy=False)
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        tt = torch.as_tensor(t, device="cuda")  # torch reads the CUDA array interface
        assert tt.data_ptr() == t.data_ptr and np.array_equal(tt.cpu().numpy(), src)


@requires_cuda
def test_cuda_cupy(rng):
    cp = pytest.importorskip("cupy")
    src = _r(rng, 16, 24)
    t = lc.Tensor(src, device="cuda")
    a = cp.asarray(t)  # __cuda_array_interface__
    assert a.data.ptr == t.data_ptr and np.array_equal(cp.asnumpy(a), src)
    b = cp.from_dlpack(t)
    assert b.data.ptr == t.data_ptr
    x = cp.arange(64, dtype=cp.float32).reshape(8, 8)
    u = lc.from_dlpack(x)
    assert u.data_ptr == x.data.ptr and np.array_equal(u.numpy(), cp.asnumpy(x))


@requires_cuda
def test_cuda_round_trip_64mb_no_copy():
    torch = _torch_cuda()
    x = torch.empty(16 * 1024 * 1024, device="cuda")  # 64 MB float32
    before = torch.cuda.memory_allocated()
    y = torch.from_dlpack(lc.from_dlpack(x))
    assert y.data_ptr() == x.data_ptr()
    assert torch.cuda.memory_allocated() == before
