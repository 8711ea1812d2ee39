"""Layout views (lc.permute / transpose / reshape / narrow: metadata only) and the device-side gather:
Tensor.contiguous(), and ops given strided views (gathered on the device they run on, not through the host;
so a captured CUDA graph may read a strided view). Every result is compared with NumPy on the same data."""
import numpy as np
import pytest

import lightning_core as lc


def _t(a, device):
    return lc.Tensor(a, device=device, dtype=None if a.dtype.kind in "iu" else a.dtype.name)


@pytest.mark.parametrize("dt", [np.float32, np.float16, np.int32, np.int64])
def test_views_and_contiguous(device, dt):
    a = (np.arange(2 * 3 * 5 * 4) % 97).astype(dt).reshape(2, 3, 5, 4)
    t = _t(a, device)
    cases = [(lc.permute(t, 3, 1, 0, 2), a.transpose(3, 1, 0, 2)), (lc.transpose(t, 1, -1), a.swapaxes(1, 3)),
             (lc.narrow(t, 2, 1, 3), a[:, :, 1:4]), (lc.narrow(lc.permute(t, (0, 2, 1, 3)), 1, 4, 1), a.transpose(0, 2, 1, 3)[:, 4:5]),
             (lc.reshape(t, (6, -1)), a.reshape(6, -1))]
    for v, want in cases:
        assert tuple(v.shape) == want.shape
        c = v.contiguous()
        assert c.is_contiguous and c.device == device and c.dtype == np.dtype(dt).name
        np.testing.assert_array_equal(c.numpy(), want)
    assert t.contiguous() is t


def test_ops_read_strided_views(device):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 6, 8)).astype(np.float32)
    t = _t(a, device)
    v = lc.narrow(lc.transpose(t, 0, 2), 1, 1, 4)  # [8, 4, 4], strided
    want = np.maximum(a.transpose(2, 1, 0)[:, 1:5], 0)
    got = lc.relu(v, device=device)
    np.testing.assert_array_equal(got.numpy(), want)
    y = lc.layer_norm(v, None, None, 1e-5, device)
    x = a.transpose(2, 1, 0)[:, 1:5].astype(np.float64)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    assert np.max(np.abs(y.numpy() - ref)) < 1e-5


def test_bad_views():
    t = lc.Tensor(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="permute"):
        lc.permute(t, 0, 0, 1)
    with pytest.raises(ValueError, match="axis"):
        lc.transpose(t, 0, 3)
    with pytest.raises(ValueError, match="elements"):
        lc.reshape(t, (5, 5))
    with pytest.raises(ValueError, match="contiguous"):
        lc.reshape(lc.transpose(t, 0, 1), (24,))
    with pytest.raises(ValueError, match="narrow"):
        lc.narrow(t, 1, 2, 2)


def test_captured_graph_reads_a_strided_view():
    """A strided device view as an op's input inside lc.capture_graph: gathered on the device (a host trip
    would be refused inside a capture)."""
    if not lc.cuda_available():
        pytest.skip("CUDA")
    a = np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32)
    t = lc.Tensor(a, device="cuda")
    out = lc.Tensor((8, 16), device="cuda")
    g = lc.capture_graph(lambda: lc.relu_into(lc.transpose(t, 0, 1), out, device="cuda"))
    g.replay()
    lc.synchronize()
    np.testing.assert_array_equal(out.numpy(), np.maximum(a.T, 0))


@pytest.mark.parametrize("dt", [np.float32, np.float16, "bfloat16", np.float64, np.int32, np.int64])
def test_concat(device, dt):
    """lc.concat of tensors along every axis (negative too): 1 to 4 inputs of awkward lengths,
    strided views among them; equal to np.concatenate bit for bit, on the inputs' device."""
    import ml_dtypes  # noqa: F401  (bfloat16 arrays)
    npdt = np.dtype("bfloat16") if dt == "bfloat16" else np.dtype(dt)
    rng = np.random.default_rng(1)
    base = (3, 5, 7)
    for dim in (0, 1, 2, -1):
        d = dim % 3
        for lens in ((4,), (1, 6), (2, 1, 9), (5, 1, 3, 2)):
            arrs, ts = [], []
            for j, n in enumerate(lens):
                shape = tuple(n if k == d else s for k, s in enumerate(base))
                a = (rng.standard_normal(shape) * 50).astype(np.float32).astype(npdt)
                if j % 2 == 1 and n > 0:  # a strided view: the transpose of a transposed copy
                    t = lc.transpose(_t(np.ascontiguousarray(a.swapaxes(0, 2)), device), 0, 2)
                else:
                    t = _t(a, device)
                arrs.append(a)
                ts.append(t)
            got = lc.concat(ts, dim)
            assert got.device == device and got.dtype == npdt.name and got.is_contiguous
            want = np.concatenate(arrs, axis=d)
            np.testing.assert_array_equal(got.numpy(), want)
            np.testing.assert_array_equal(lc.concat(arrs, dim), want)  # arrays in, an array out


def test_copy_from_tensor_into_a_strided_view(device):
    a = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    t = _t(np.zeros((6, 4), np.float32), device)
    view = lc.transpose(t, 0, 1)  # [4, 6], strides (1, 4)
    view.copy_from(_t(a, device))
    np.testing.assert_array_equal(t.numpy(), a.T)
    lc.narrow(t, 1, 1, 2).copy_from(_t(np.full((6, 2), -1.0, np.float32), device))
    want = a.T.copy()
    want[:, 1:3] = -1
    np.testing.assert_array_equal(t.numpy(), want)
    with pytest.raises(TypeError, match="src: expected dtype float32"):
        view.copy_from(_t(a.astype(np.float16), device))
    with pytest.raises(ValueError, match=r"src: expected shape \(4, 6\)"):
        view.copy_from(_t(a[:3], device))
    np.testing.assert_array_equal(t.numpy(), want)  # nothing written by the refused calls


def test_concat_bad_inputs():
    a = lc.Tensor(np.zeros((2, 3), np.float32))
    cases = [
        (lambda: lc.concat([], 0), ValueError, r"tensors: expected at least one"),
        (lambda: lc.concat(a, 0), TypeError, r"tensors: expected a sequence"),
        (lambda: lc.concat([a, np.zeros((2, 3), np.float32)], 0), TypeError, r"tensors\[1\]: expected a tensor"),
        (lambda: lc.concat([a, lc.Tensor(np.zeros((2, 3), np.float16), dtype="float16")], 0), TypeError,
         r"tensors\[1\]: expected dtype float32"),
        (lambda: lc.concat([a, lc.Tensor(np.zeros((2, 4), np.float32))], 0), ValueError, r"tensors\[1\]: expected shape"),
        (lambda: lc.concat([a, lc.Tensor(np.zeros((2, 3, 1), np.float32))], 0), ValueError, r"tensors\[1\]"),
        (lambda: lc.concat([a, a], 2), ValueError, r"concat: dim: expected an axis in -2..1"),
        (lambda: lc.concat([a, a], 1.0), TypeError, r"concat: dim: expected an int"),
        (lambda: lc.concat([a, "x"], 0), TypeError, r"tensors\[1\]: expected a lightning_core tensor"),
    ]
    for call, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            call()
