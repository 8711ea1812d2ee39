"""conv2d_nchw / conv2d_nchw_into (docs/python_api.md): x [n,c,h,w], w [oc,c,kh,kw], b [oc] or None.

Against a float64 NumPy reference on random inputs: strides 1..3 and pads 0..2 (also unequal in h and w),
3x3 and non-3x3 kernels (1x1, 5x5, 2x3, 7x1), with and without bias and apply_relu, awkward sizes
(one case with a 4096-wide row); NaN-poisoned outs; float32-only op: float64 inputs are converted and
the output is float32 (float16/bfloat16: test_dtype_ops.py); Fortran/transposed/sliced/byte-swapped inputs; inputs never
modified; device fallback, auto, and strict mode.
"""
import numpy as np
import pytest

import lightning_core as lc
from conftest import FALLBACK, FALLBACK_DEVICE, check_dispatch, unavailable_devices


KERNELS = [(3, 3), (1, 1), (5, 5), (2, 3), (7, 1)]
STRIDES = [(1, 1), (2, 2), (3, 3), (1, 3), (2, 1)]
PADS = [(0, 0), (1, 1), (2, 2), (0, 2), (1, 0)]



def conv_inputs(rng, n, c, h, w, oc, kh, kw, dtype=np.float32, bias=True):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((oc, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(oc).astype(dtype) if bias else None
    return x, wt, b


def out_shape(ref, x, wt, sh, sw, ph, pw):
    return (
        x.shape[0],
        wt.shape[0],
        ref.conv_out_size(x.shape[2], wt.shape[2], sh, ph),
        ref.conv_out_size(x.shape[3], wt.shape[3], sw, pw),
    )


@pytest.mark.parametrize("kh,kw", KERNELS)
@pytest.mark.parametrize("sh,sw", STRIDES)
@pytest.mark.parametrize("ph,pw", PADS)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_strides_pads_kernels(rng, rel_err, ref, poison, device, kh, kw, sh, sw, ph, pw, bias):
    x, wt, b = conv_inputs(rng, 2, 3, 11, 9, 5, kh, kw, bias=bias)
    saved = [t.copy() for t in (x, wt) + ((b,) if bias else ())]
    shape = out_shape(ref, x, wt, sh, sw, ph, pw)
    for relu in (False, True):
        want = ref.conv2d(x, wt, b, sh, sw, ph, pw, relu)
        assert want.shape == shape
        y = lc.conv2d_nchw(x, wt, b, sh, sw, ph, pw, device, relu)
        assert isinstance(y, np.ndarray) and y.shape == shape and y.dtype == np.float32
        assert rel_err(y, want) < 1e-5
        if relu:
            assert (y >= 0).all()
        out = poison(shape)
        ret = lc.conv2d_nchw_into(x, wt, b, out, sh, sw, ph, pw, device, relu)
        assert ret is out
        assert not np.isnan(out).any()
        assert rel_err(out, want) < 1e-5
    for t, t0 in zip((x, wt) + ((b,) if bias else ()), saved):
        assert np.array_equal(t, t0), "input modified"


# (n, c, h, w, oc, kh, kw, stride, pad): awkward sizes; 4096 in one dimension only.
SIZES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0),
    (1, 1, 3, 3, 1, 3, 3, 1, 0),
    (1, 1, 1, 4096, 2, 1, 3, 1, 0),
    (2, 7, 33, 17, 16, 3, 3, 1, 1),
    (1, 33, 7, 7, 255, 3, 3, 2, 1),
    (3, 1, 255, 5, 1, 5, 5, 1, 2),
    (1, 255, 4, 4, 7, 1, 1, 1, 0),
    (1, 16, 16, 16, 33, 3, 3, 1, 1),
    (2, 5, 8, 8, 3, 2, 3, 3, 2),
]


@pytest.mark.parametrize("n,c,h,w,oc,kh,kw,s,p", SIZES)
def test_conv2d_awkward_sizes(rng, rel_err, ref, poison, device, n, c, h, w, oc, kh, kw, s, p):
    x, wt, b = conv_inputs(rng, n, c, h, w, oc, kh, kw)
    want = ref.conv2d(x, wt, b, s, s, p, p, True)
    out = poison(want.shape)
    lc.conv2d_nchw_into(x, wt, b, out, s, s, p, p, device, True)
    assert not np.isnan(out).any()
    assert rel_err(out, want) < 1e-5
    want = ref.conv2d(x, wt, None, s, s, p, p)
    y = lc.conv2d_nchw(x, wt, None, s, s, p, p, device)
    assert rel_err(y, want) < 1e-5


def test_conv2d_defaults_and_keywords(rng, rel_err, ref, poison):
    x, wt, b = conv_inputs(rng, 1, 2, 6, 7, 3, 3, 3)
    # Defaults: stride 1, pad 0, cpu, no relu.
    assert rel_err(lc.conv2d_nchw(x, wt, b), ref.conv2d(x, wt, b)) < 1e-5
    want = ref.conv2d(x, wt, b, 2, 1, 1, 2, True)
    y = lc.conv2d_nchw(x=x, w=wt, b=b, stride_h=2, stride_w=1, pad_h=1, pad_w=2, device="cpu", apply_relu=True)
    assert rel_err(y, want) < 1e-5
    out = poison(want.shape)
    lc.conv2d_nchw_into(x, wt, b, out, pad_w=2, pad_h=1, stride_h=2, apply_relu=True)
    assert rel_err(out, want) < 1e-5


def test_conv2d_relu_actually_clamps(rng, ref):
    x, wt, b = conv_inputs(rng, 1, 3, 8, 8, 4, 3, 3)
    y = lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1, "cpu", False)
    yr = lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1, "cpu", True)
    assert (y < 0).any(), "pick inputs with negative conv outputs"
    assert np.allclose(yr, np.maximum(y, 0), rtol=1e-6, atol=1e-6)
    assert (yr[y < -1e-3] == 0).all()


@pytest.mark.parametrize("dtype", [np.float64])  # float16/bfloat16: test_dtype_ops.py (table-driven)
def test_conv2d_converts_float64_and_float16(rng, rel_err, ref, poison, dtype):
    x, wt, b = conv_inputs(rng, 2, 3, 9, 10, 4, 3, 2, dtype=dtype)
    saved = [t.copy() for t in (x, wt, b)]
    want = ref.conv2d(x, wt, b, 2, 1, 1, 0, True)
    y = lc.conv2d_nchw(x, wt, b, 2, 1, 1, 0, "cpu", True)
    assert y.dtype == np.float32
    assert rel_err(y, want) < 1e-5
    out = poison(want.shape)
    lc.conv2d_nchw_into(x, wt, b, out, 2, 1, 1, 0, "cpu", True)
    assert rel_err(out, want) < 1e-5
    for t, t0 in zip((x, wt, b), saved):
        assert t.dtype == dtype and np.array_equal(t, t0)


def test_conv2d_mixed_input_dtypes(rng, rel_err, ref):
    x, wt, b = conv_inputs(rng, 1, 4, 7, 7, 3, 3, 3)
    wt = wt.astype(np.float64)
    y = lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1)
    assert y.dtype == np.float32
    assert rel_err(y, ref.conv2d(x, wt, b, 1, 1, 1, 1)) < 1e-5
    with pytest.raises(TypeError, match="x and b: .* got x of dtype float32 and b of dtype float16"):
        lc.conv2d_nchw(x, x[:, :, :3, :3].copy(), b.astype(np.float16))  # float16 never mixes


@pytest.mark.parametrize("layout", ["fortran", "transposed", "sliced", "byteswapped", "reversed"])
def test_conv2d_converted_layouts(rng, rel_err, ref, poison, layout):
    x, wt, b = conv_inputs(rng, 2, 3, 10, 8, 4, 3, 3)
    if layout == "fortran":
        x, wt, b = np.asfortranarray(x), np.asfortranarray(wt), np.asfortranarray(b)
    elif layout == "transposed":
        x = np.ascontiguousarray(x.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
        wt = np.ascontiguousarray(wt.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    elif layout == "sliced":
        xb = rng.standard_normal((4, 5, 20, 17)).astype(np.float32)
        wb = rng.standard_normal((8, 3, 3, 4)).astype(np.float32)
        bb = rng.standard_normal(12).astype(np.float32)
        x, wt, b = xb[::2, 1:4, ::2, 1:9], wb[::2, :, :, 1:], bb[::3]
    elif layout == "byteswapped":
        x, wt, b = (t.astype(t.dtype.newbyteorder()) for t in (x, wt, b))
    else:
        x, wt, b = x[:, :, ::-1, ::-1], wt[::-1], b[::-1]
    assert x.shape == (2, 3, 10, 8) and wt.shape == (4, 3, 3, 3) and b.shape == (4,)
    assert not (x.flags.c_contiguous and x.dtype.isnative)
    saved = [t.copy() for t in (x, wt, b)]
    want = ref.conv2d(x, wt, b, 1, 2, 1, 1, True)
    assert rel_err(lc.conv2d_nchw(x, wt, b, 1, 2, 1, 1, "cpu", True), want) < 1e-5
    out = poison(want.shape)
    lc.conv2d_nchw_into(x, wt, b, out, 1, 2, 1, 1, "cpu", True)
    assert rel_err(out, want) < 1e-5
    for t, t0 in zip((x, wt, b), saved):
        assert np.array_equal(t, t0) and t.dtype == t0.dtype


# ---- device policy ---------------------------------------------------------------------------------



@pytest.mark.parametrize("dev", unavailable_devices())
def test_conv2d_unavailable_device_falls_back(rng, rel_err, ref, poison, strict_off, dev):
    x, wt, b = conv_inputs(rng, 1, 3, 16, 16, 16, 3, 3)
    want = ref.conv2d(x, wt, b, 1, 1, 1, 1)
    assert rel_err(lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1, dev), want) < 1e-5
    check_dispatch("conv", dev, FALLBACK_DEVICE, FALLBACK)
    out = poison(want.shape)
    lc.conv2d_nchw_into(x, wt, b, out, 1, 1, 1, 1, dev)
    assert rel_err(out, want) < 1e-5
    check_dispatch("conv", dev, FALLBACK_DEVICE, FALLBACK)


def test_conv2d_auto_device(rng, rel_err, ref, poison):
    x, wt, b = conv_inputs(rng, 2, 4, 12, 12, 8, 3, 3)
    want = ref.conv2d(x, wt, b, 1, 1, 1, 1, True)
    out = poison(want.shape)
    lc.conv2d_nchw_into(x, wt, b, out, 1, 1, 1, 1, "auto", True)
    assert rel_err(out, want) < 1e-5
    d = check_dispatch("conv", "auto", reason="auto_selected")
    assert d["selected"] in (["cpu", "cuda"] if lc.cuda_available() else ["cpu"])


@pytest.mark.parametrize("dev", unavailable_devices())
def test_conv2d_strict_mode(rng, poison, ref, strict_off, dev):
    x, wt, b = conv_inputs(rng, 1, 2, 5, 5, 3, 3, 3)
    lc.set_strict_device(True)
    try:
        out = poison((1, 3, 5, 5))
        with pytest.raises(lc.DeviceUnavailableError, match=dev):
            lc.conv2d_nchw_into(x, wt, b, out, 1, 1, 1, 1, dev)
        assert np.isnan(out).all()
        with pytest.raises(lc.DeviceUnavailableError):
            lc.conv2d_nchw(x, wt, b, 1, 1, 1, 1, dev)
        lc.conv2d_nchw_into(x, wt, b, out, 1, 1, 1, 1, "cpu")
        assert np.allclose(out, ref.conv2d(x, wt, b, 1, 1, 1, 1), rtol=1e-5, atol=1e-5)
    finally:
        lc.set_strict_device(False)
