"""The tensor contract of the Python surface (docs/python_api.md, "Tensors and the tensor contract").

Tensor (float32) / Tensor64 (float64): built from arrays (a copy: later changes to the source do not
show) or from shapes (zero-filled); properties; numpy() returns a copy; copy_from (element count and
dtype rules); views via Tensor.view and the TensorView constructor read the latest storage, write through
with copy_from, may be strided (a transposed view); views that would address outside the storage,
negative offsets/strides, zero or negative dims, or another device raise ValueError; a view outlives
its Tensor object; the validate_shape / validate_view module functions.
"""
import gc

import numpy as np
import pytest

import lightning_core as lc

TYPES = [(lc.Tensor, np.float32, "float32"), (lc.Tensor64, np.float64, "float64")]


@pytest.mark.parametrize("cls,np_dtype,name", TYPES)
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 4), (1, 1, 1, 33)])
def test_tensor_from_array_is_a_copy(rng, cls, np_dtype, name, shape):
    src = rng.standard_normal(shape).astype(np_dtype)
    expect = src.copy()
    t = cls(src)
    assert t.shape == shape
    assert t.dtype == name
    assert t.device == "cpu"
    assert t.numel == int(np.prod(shape))
    assert t.nbytes == t.numel * np.dtype(np_dtype).itemsize
    assert t.offset == 0
    assert t.is_contiguous is True
    assert t.strides == tuple(s // src.itemsize for s in src.strides)  # canonical, in elements
    assert t.validate() is None
    src[...] = -12345.0  # mutate the source: the tensor must not alias it
    got = t.numpy()
    assert isinstance(got, np.ndarray) and got.dtype == np_dtype and got.shape == shape
    assert np.array_equal(got, expect)


@pytest.mark.parametrize("cls,np_dtype,name", TYPES)
def test_tensor_from_shape_is_zero_filled(cls, np_dtype, name):
    for shape in ([4, 6], (3,), (2, 1, 5)):
        t = cls(shape)
        assert t.shape == tuple(shape) and t.dtype == name and t.device == "cpu"
        z = t.numpy()
        assert z.dtype == np_dtype and z.shape == tuple(shape)
        assert np.array_equal(z, np.zeros(tuple(shape), np_dtype))
    t = cls((2, 3), device="cpu")
    assert t.device == "cpu"


@pytest.mark.parametrize("cls,np_dtype,name", TYPES)
def test_numpy_returns_a_copy(rng, cls, np_dtype, name):
    src = rng.standard_normal((4, 5)).astype(np_dtype)
    t = cls(src)
    a = t.numpy()
    a[...] = 99.0  # modifying the returned array does not touch the tensor
    assert np.array_equal(t.numpy(), src)
    b = t.numpy()
    assert not np.shares_memory(a, b)


def test_tensor_converts_input_dtypes_and_layouts(rng):
    src64 = rng.standard_normal((6, 4))
    t = lc.Tensor(src64)  # float64 data into a float32 tensor
    assert t.dtype == "float32"
    assert np.array_equal(t.numpy(), src64.astype(np.float32))
    t64 = lc.Tensor64(src64.astype(np.float32))
    assert t64.dtype == "float64"
    assert np.array_equal(t64.numpy(), src64.astype(np.float32).astype(np.float64))
    t = lc.Tensor(src64.astype(np.float16))
    assert np.array_equal(t.numpy(), src64.astype(np.float16).astype(np.float32))
    for v in (src64.T, src64[::2, 1:], np.asfortranarray(src64), src64.astype(">f8"), src64[::-1]):
        t = lc.Tensor64(v)
        assert t.shape == v.shape and t.is_contiguous
        assert np.array_equal(t.numpy(), v)


@pytest.mark.parametrize("cls,np_dtype,name", TYPES)
def test_copy_from(rng, cls, np_dtype, name):
    t = cls((3, 4))
    a = rng.standard_normal((3, 4)).astype(np_dtype)
    assert t.copy_from(a) is None
    assert np.array_equal(t.numpy(), a)
    # Same element count, other shape: copied in row-major order.
    b = rng.standard_normal(12).astype(np_dtype)
    t.copy_from(b)
    assert np.array_equal(t.numpy(), b.reshape(3, 4))
    # A non-contiguous source is read in its logical (row-major) order.
    c = rng.standard_normal((4, 3)).astype(np_dtype)
    t.copy_from(c.T)
    assert np.array_equal(t.numpy(), c.T)
    # copy_from copies: changing the source afterwards changes nothing.
    c[...] = 7.0
    assert not np.array_equal(t.numpy(), c.T)


@pytest.mark.parametrize("cls,np_dtype,name", TYPES)
def test_copy_from_refuses_bad_arrays(rng, cls, np_dtype, name):
    a = rng.standard_normal((2, 5)).astype(np_dtype)
    t = cls(a)
    for bad in (np.zeros(9, np_dtype), np.zeros(11, np_dtype), np.zeros((5, 3), np_dtype)):
        with pytest.raises(ValueError, match="element|array|numel|size|count"):
            t.copy_from(bad)
    for bad in (np.arange(10, dtype=np.int32), np.ones(10, bool), np.ones(10, np.complex64), np.array([None] * 10)):
        with pytest.raises(TypeError, match="array|dtype"):
            t.copy_from(bad)
    for bad in (list(range(10)), None):
        with pytest.raises(TypeError, match="array|ndarray"):
            t.copy_from(bad)
    # a tensor source (lc_copy on the device): same dtype and shape, else TypeError / ValueError naming src
    with pytest.raises(ValueError, match="src: expected shape"):
        t.copy_from(cls(a.reshape(5, 2)))
    other = lc.Tensor(a.astype(np.float32)) if np_dtype == np.float64 else lc.Tensor64(a.astype(np.float64))
    with pytest.raises(TypeError, match="src: expected dtype"):
        t.copy_from(other)
    assert np.array_equal(t.numpy(), a), "a refused copy_from wrote into the tensor"
    b = rng.standard_normal((2, 5)).astype(np_dtype)
    t.copy_from(cls(b))
    assert np.array_equal(t.numpy(), b)


def test_copy_from_other_float_dtype(rng):
    # The spec converts float inputs to the compute dtype: a float64 array into a float32 tensor is
    # either converted (values rounded to float32) or refused with TypeError; never silently garbage.
    t = lc.Tensor((2, 3))
    src = rng.standard_normal((2, 3))
    try:
        t.copy_from(src)
    except TypeError as e:
        assert "dtype" in str(e) or "float" in str(e)
        assert np.array_equal(t.numpy(), np.zeros((2, 3), np.float32))
    else:
        assert np.array_equal(t.numpy(), src.astype(np.float32))


# ---- views -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls,np_dtype,name", TYPES)
def test_view_reads_latest_storage(rng, cls, np_dtype, name):
    rows, cols = 4, 6
    a = rng.standard_normal((rows, cols)).astype(np_dtype)
    t = cls(a)
    v = t.view((2, cols), offset=cols)  # rows 1..2
    assert isinstance(v, lc.TensorView)
    assert v.shape == (2, cols) and v.strides == (cols, 1) and v.offset == cols
    assert v.dtype == name and v.device == "cpu" and v.numel == 2 * cols
    assert v.is_contiguous is True
    assert v.base is t
    assert np.array_equal(v.numpy(), a[1:3])
    b = rng.standard_normal((rows, cols)).astype(np_dtype)
    t.copy_from(b)  # the view sees the tensor's new contents
    assert np.array_equal(v.numpy(), b[1:3])
    got = v.numpy()
    got[...] = 0  # numpy() of a view is a copy too
    assert np.array_equal(v.numpy(), b[1:3])


@pytest.mark.parametrize("cls,np_dtype,name", TYPES)
def test_tensorview_constructor(rng, cls, np_dtype, name):
    a = rng.standard_normal(24).astype(np_dtype)
    t = cls(a)
    v = lc.TensorView(t, (2, 3, 4))  # strides default to contiguous
    assert v.shape == (2, 3, 4) and v.strides == (12, 4, 1) and v.offset == 0
    assert v.base is t
    assert np.array_equal(v.numpy(), a.reshape(2, 3, 4))
    v = lc.TensorView(t, (5,), (4,), 3)  # elements 3, 7, 11, 15, 19
    assert v.is_contiguous is False
    assert np.array_equal(v.numpy(), a[3:20:4])
    v = lc.TensorView(t, shape=(3, 2), strides=(2, 1), offset=18, device="cpu")
    assert np.array_equal(v.numpy(), a[18:24].reshape(3, 2))
    assert v.validate() is None


@pytest.mark.parametrize("cls,np_dtype,name", TYPES)
def test_transposed_view(rng, cls, np_dtype, name):
    rows, cols = 5, 7
    m = rng.standard_normal((rows, cols)).astype(np_dtype)
    t = cls(m)
    vt = t.view((cols, rows), (1, cols))
    assert vt.shape == (cols, rows) and vt.strides == (1, cols)
    assert vt.is_contiguous is False
    assert vt.numel == rows * cols
    assert np.array_equal(vt.numpy(), m.T)
    # Write-through: copying into the transposed view scatters into the tensor.
    n = rng.standard_normal((cols, rows)).astype(np_dtype)
    vt.copy_from(n)
    assert np.array_equal(t.numpy(), n.T)
    assert np.array_equal(vt.numpy(), n)


@pytest.mark.parametrize("cls,np_dtype,name", TYPES)
def test_view_write_through_touches_only_the_view(rng, cls, np_dtype, name):
    a = rng.standard_normal((6, 8)).astype(np_dtype)
    t = cls(a)
    v = t.view((3, 4), (16, 2), 1)  # rows 0, 2, 4; columns 1, 3, 5, 7
    new = rng.standard_normal((3, 4)).astype(np_dtype)
    assert v.copy_from(new) is None
    want = a.copy()
    want[0::2, 1::2] = new
    assert np.array_equal(t.numpy(), want)
    assert np.array_equal(v.numpy(), new)
    # Another view over the same storage sees the write.
    w = lc.TensorView(t, (48,))
    assert np.array_equal(w.numpy(), want.ravel())
    with pytest.raises(ValueError):
        v.copy_from(np.zeros(11, np_dtype))
    assert np.array_equal(t.numpy(), want)


def test_view_outlives_its_tensor(rng):
    a = rng.standard_normal((4, 4)).astype(np.float32)
    t = lc.Tensor(a)
    v = t.view((4, 4), (1, 4))
    w = lc.TensorView(t, (2, 2), (4, 1), 5)
    del t
    gc.collect()
    assert np.array_equal(v.numpy(), a.T)
    assert np.array_equal(w.numpy(), a[1:3, 1:3])
    v.copy_from(np.arange(16, dtype=np.float32).reshape(4, 4) + 0.5)
    assert np.array_equal(w.numpy(), (np.arange(16, dtype=np.float32).reshape(4, 4).T + 0.5)[1:3, 1:3])
    del v
    gc.collect()
    assert w.numpy().shape == (2, 2)


@pytest.mark.parametrize(
    "shape,strides,offset,what",
    [
        ((3, 5), None, 0, "shape|storage|bounds|element"),  # 15 > 12 elements
        ((3, 4), None, 1, "offset|storage|bounds|element"),  # one past the end
        ((12,), (2,), 0, "strides|storage|bounds|element"),
        ((2, 2), (8, 5), 0, "strides|storage|bounds|element"),
        ((1,), None, 12, "offset|storage|bounds|element"),
        ((1,), None, -1, "offset"),
        ((2, 2), (-1, 1), 3, "strides"),
        ((2, 2), (2, -1), 2, "strides"),
        ((0, 3), None, 0, "shape"),
        ((3, -1), None, 0, "shape"),
        ((-2,), None, 0, "shape"),
        ((2, 2), (2, 2**62), 0, "strides|storage|bounds|overflow"),
        ((2**40, 2**40), None, 0, "shape|overflow|storage"),
    ],
)
def test_bad_views_raise_value_error(rng, shape, strides, offset, what):
    a = rng.standard_normal(12).astype(np.float32)
    t = lc.Tensor(a)
    with pytest.raises(ValueError, match=what):
        t.view(shape, strides, offset)
    with pytest.raises(ValueError, match=what):
        lc.TensorView(t, shape, strides, offset)
    assert np.array_equal(t.numpy(), a)


def test_view_bounds_edge_is_allowed(rng):
    a = rng.standard_normal(12).astype(np.float32)
    t = lc.Tensor(a)
    # The last addressable element is exactly the last storage element: valid.
    assert np.array_equal(t.view((3,), (4,), 3).numpy(), a[3:12:4])
    assert np.array_equal(t.view((1,), None, 11).numpy(), a[11:])
    assert np.array_equal(t.view((2, 3), (6, 2), 1).numpy(), a.reshape(2, 6)[:, 1::2])


def test_view_on_another_device_raises(rng):
    t = lc.Tensor(rng.standard_normal((2, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="device"):
        t.view((2, 3), device="cuda")
    with pytest.raises(ValueError, match="device"):
        lc.TensorView(t, (6,), None, 0, "cuda")
    # The tensor's own device is fine.
    assert t.view((3, 2), device="cpu").device == "cpu"


def test_view_bad_argument_types(rng):
    t = lc.Tensor(rng.standard_normal(8).astype(np.float32))
    with pytest.raises(TypeError, match="shape"):
        t.view("8")
    with pytest.raises(TypeError, match="shape"):
        t.view((2.0, 4))
    with pytest.raises(TypeError, match="strides"):
        t.view((2, 4), (4, "1"))
    with pytest.raises(TypeError, match="offset"):
        t.view((2, 2), None, 1.5)
    with pytest.raises(TypeError, match="tensor"):
        lc.TensorView(np.zeros(8, np.float32), (8,))
    with pytest.raises(ValueError, match="strides"):
        t.view((2, 4), (4,))  # strides of another rank
    with pytest.raises(ValueError, match="device"):
        t.view((8,), device="gpu")


def test_tensor_bad_constructor_arguments():
    with pytest.raises(ValueError, match="shape"):
        lc.Tensor((0, 3))
    with pytest.raises(ValueError, match="shape"):
        lc.Tensor64([2, -3])
    with pytest.raises(TypeError):
        lc.Tensor("3")
    with pytest.raises(TypeError):
        lc.Tensor(None)
    with pytest.raises(TypeError, match="data|dtype"):
        lc.Tensor(np.arange(6, dtype=np.int16))  # int32/int64 are index tensors; other integers are refused
    with pytest.raises(TypeError, match="data|dtype"):
        lc.Tensor64(np.ones(3, np.complex64))
    with pytest.raises(ValueError):
        lc.Tensor(np.zeros((0, 3), np.float32))
    with pytest.raises(ValueError, match="device"):
        lc.Tensor((2, 2), device="gpu")
    with pytest.raises(TypeError, match="device"):
        lc.Tensor((2, 2), device=1)


# ---- module-level contract validators --------------------------------------------------------------


def test_validate_shape():
    for good in [(1,), (3, 4), [2, 3, 4], (1, 1, 1, 1)]:
        assert lc.validate_shape(good) is None
    for bad, what in [((0,), "shape"), ((3, 0), "shape"), ((-1, 2), "shape"), ((2**40, 2**40), "shape|overflow"),
                      ((), "shape|dim")]:
        with pytest.raises(ValueError, match=what):
            lc.validate_shape(bad)
    with pytest.raises(TypeError, match="shape"):
        lc.validate_shape("34")
    with pytest.raises(TypeError):
        lc.validate_shape((2, 1.5))
    with pytest.raises((TypeError, ValueError)):
        lc.validate_shape((2, 2**70))


def test_validate_view():
    assert lc.validate_view(12, (3, 4), (4, 1), 0) is None
    assert lc.validate_view(12, (4, 3), (1, 4), 0) is None  # transposed
    assert lc.validate_view(12, (3,), (4,), 3) is None  # last element exactly at the end
    assert lc.validate_view(12, (1,), (1,), 11) is None
    cases = [
        ((12, (3, 4), (4, 1), 1), "offset|storage|bounds"),
        ((12, (3, 5), (5, 1), 0), "storage|bounds|shape"),
        ((12, (4, 3), (1, 4), 1), "storage|bounds|offset"),
        ((12, (2,), (12,), 0), "storage|bounds|strides"),
        ((12, (2, 2), (-1, 1), 2), "strides"),
        ((12, (2,), (1,), -1), "offset"),
        ((12, (0, 2), (2, 1), 0), "shape"),
        ((12, (2, -2), (2, 1), 0), "shape"),
        ((12, (2, 2), (2**62, 1), 0), "strides|storage|bounds|overflow"),
        ((2**62, (2**62, 4), (4, 1), 0), "shape|overflow|storage|bounds"),
        ((0, (1,), (1,), 0), "storage"),
        ((12, (2, 2), (2,), 0), "strides"),
    ]
    for args, what in cases:
        with pytest.raises(ValueError, match=what):
            lc.validate_view(*args)
    with pytest.raises(TypeError, match="storage_elems"):
        lc.validate_view("12", (3, 4), (4, 1), 0)
    with pytest.raises(TypeError, match="offset"):
        lc.validate_view(12, (3, 4), (4, 1), 0.0)
    with pytest.raises(TypeError, match="storage_elems"):
        lc.validate_view(True, (1,), (1,), 0)


def test_tensor_on_gpu_when_available(rng):
    if not lc.cuda_available():
        pytest.skip("no CUDA GPU here (lc.cuda_available() is False)")
    a = rng.standard_normal((3, 5)).astype(np.float32)
    t = lc.Tensor(a, device="cuda")
    assert t.device == "cuda"
    assert np.array_equal(t.numpy(), a)
    v = t.view((5, 3), (1, 5))
    assert v.device == "cuda" and np.array_equal(v.numpy(), a.T)
    with pytest.raises(ValueError, match="device"):
        t.view((15,), device="cpu")


@pytest.mark.parametrize("dt", [np.uint8, np.bool_, np.int8, np.int16, np.complex64])
def test_tensor_refuses_other_dtypes_naming_every_accepted_one(dt):
    with pytest.raises(TypeError, match=r"Tensor: data: expected a float32, float64, float16, bfloat16, int32 or int64 "
                                        r"array \(the integer ones make an index tensor\), got dtype"):
        lc.Tensor(np.ones(3, dt))
    assert lc.Tensor(np.ones(3, np.int32)).dtype == "int32"  # still usable; the integer ones are accepted
