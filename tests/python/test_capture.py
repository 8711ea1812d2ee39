"""Device graphs (include/lightning_core/session.h; docs/python_api.md "Device graphs"): capture_graph
records lc ops on CUDA tensors without running them, replay runs them on the tensors' current
contents, the graph keeps its tensors alive, and anything that would break a capture (a host operand, a
synchronisation, an exception in fn) is a clean error that leaves the process usable.
GPU machine only, except the cpu/argument checks."""
import numpy as np
import pytest

import lightning_core as lc
from conftest import CUDA, requires_cuda


def test_capture_needs_cuda():
    with pytest.raises(ValueError if CUDA else (ValueError, lc.DeviceUnavailableError), match="device"):
        lc.capture_graph(lambda: None, device="cpu")
    with pytest.raises(TypeError, match="fn"):
        lc.capture_graph(42)
    if not CUDA:
        with pytest.raises(lc.DeviceUnavailableError):
            lc.capture_graph(lambda: None)


@requires_cuda
def test_capture_and_replay(rng, ref, rel_err):
    m, k, n = 33, 17, 45
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    ta, tb = lc.Tensor(a, device="cuda"), lc.Tensor(b, device="cuda")
    tc = lc.Tensor(np.full((m, n), np.nan, np.float32), device="cuda")

    def chain():
        lc.matmul2d_into(ta, tb, tc, device="cuda")
        lc.relu_into(tc, tc, device="cuda")

    g = lc.capture_graph(chain)
    assert isinstance(g, lc.DeviceGraph) and g.nodes >= 2
    assert np.isnan(tc.numpy()).all()  # capturing ran nothing
    lc.runtime_counters_reset()
    g.replay()
    assert lc.runtime_counters()["graph_launches"] == 1
    assert rel_err(tc.numpy(), np.maximum(ref.matmul(a, b), 0)) < 1e-5
    a2 = rng.standard_normal((m, k)).astype(np.float32)
    ta.copy_from(a2)  # replays read the tensors' current contents
    g.replay(loops=3)
    lc.synchronize("cuda")
    assert rel_err(tc.numpy(), np.maximum(ref.matmul(a2, b), 0)) < 1e-5
    g.release()
    with pytest.raises(RuntimeError, match="released"):
        g.replay()


@requires_cuda
def test_graph_keeps_its_tensors_alive(rng, rel_err):
    x = rng.standard_normal(4099).astype(np.float32)
    holder = {"t": lc.Tensor(x, device="cuda")}
    out = {}

    def fn():
        out["y"] = lc.relu(holder["t"], device="cuda")  # a new output tensor allocated during capture

    g = lc.capture_graph(fn)
    del holder["t"]  # only the graph references the input now
    junk = [lc.Tensor(np.full(4099, -7.0, np.float32), device="cuda") for _ in range(4)]  # reuse freed blocks
    g.replay()
    assert rel_err(out["y"].numpy(), np.maximum(x, 0).astype(np.float64)) < 1e-7
    del junk


@requires_cuda
def test_capture_errors_leave_process_usable(rng):
    a = rng.standard_normal((8, 8)).astype(np.float32)
    ta = lc.Tensor(a, device="cuda")
    tc = lc.Tensor(np.zeros((8, 8), np.float32), device="cuda")
    with pytest.raises(ValueError, match="capturing"):
        lc.capture_graph(lambda: lc.matmul2d_into(a, ta, tc, device="cuda"))  # host operand
    with pytest.raises(ValueError, match="capturing"):
        lc.capture_graph(lambda: lc.synchronize("cuda"))
    with pytest.raises(ValueError, match="no device work"):
        lc.capture_graph(lambda: None)

    def boom():
        lc.relu_into(ta, tc, device="cuda")
        raise KeyError("from fn")

    with pytest.raises(KeyError, match="from fn"):
        lc.capture_graph(boom)
    lc.matmul2d_into(ta, ta, tc, device="cuda")  # eager work still runs
    np.testing.assert_allclose(tc.numpy(), a.astype(np.float64) @ a, rtol=1e-4, atol=1e-4)
    s = lc.MatMulResidentSession(8, 8, 8, "cuda")
    with pytest.raises(ValueError, match="captur"):
        lc.capture_graph(lambda: s.run(1))


@requires_cuda
def test_time_device_ms(rng):
    t = lc.Tensor(rng.standard_normal((512, 512)).astype(np.float32), device="cuda")
    o = lc.Tensor(np.zeros((512, 512), np.float32), device="cuda")
    ms = lc.time_device_ms(lambda: [lc.matmul2d_into(t, t, o, device="cuda") for _ in range(4)])
    assert isinstance(ms, float) and ms > 0


def test_time_device_ms_cpu():
    ms = lc.time_device_ms(lambda: sum(range(1000)), device="cpu")
    assert isinstance(ms, float) and ms >= 0
    with pytest.raises(ZeroDivisionError):
        lc.time_device_ms(lambda: 1 / 0, device="cpu")
