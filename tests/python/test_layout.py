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
