"""Sync policy auto / always / never (include/lightning_core/runtime.h): process default, the per-call
form (sync= keyword, lc.sync_policy context), and what each waits for, seen through the runtime
counters and the trace. Tests: this file; spec: docs/python_api.md ("Sync policy")."""
import threading

import numpy as np
import pytest

import lightning_core as lc
from conftest import CUDA


@pytest.fixture(autouse=True)
def _restore_policy():
    before = lc.get_sync_policy()
    yield
    lc.set_sync_policy(before)
    lc._C._set_thread_sync_policy(None)


def test_default_and_setters():
    assert lc.get_sync_policy() in ("auto", "always", "never")
    for p in ("always", "never", "auto"):
        lc.set_sync_policy(p)
        assert lc.get_sync_policy() == p
    with pytest.raises(ValueError, match="sync"):
        lc.set_sync_policy("sometimes")
    with pytest.raises(TypeError, match="sync"):
        lc.set_sync_policy(1)
    with pytest.raises(TypeError):
        lc.set_sync_policy(None)


def test_context_is_per_thread_and_restores():
    assert lc._C._get_thread_sync_policy() is None
    seen = []
    with lc.sync_policy("always"):
        assert lc._C._get_thread_sync_policy() == "always"
        t = threading.Thread(target=lambda: seen.append(lc._C._get_thread_sync_policy()))
        t.start()
        t.join()
        with lc.sync_policy("never"):
            assert lc._C._get_thread_sync_policy() == "never"
        assert lc._C._get_thread_sync_policy() == "always"
    assert lc._C._get_thread_sync_policy() is None
    assert seen == [None]
    assert lc.get_sync_policy() == "auto" or lc.get_sync_policy() in ("always", "never")


@pytest.mark.skipif(not CUDA, reason="the CPU backend is synchronous under every policy")
def test_policies_on_cuda(rng):
    m = 64
    a = rng.standard_normal((m, m)).astype(np.float32)
    s = lc.MatMulResidentSession(m, m, m, "cuda")
    out = np.empty((m, m), np.float32)
    s.start_into(a, a, out)
    s.run_batch_sync_cached_no_download(2)

    def syncs(fn):
        lc.runtime_counters_reset()
        fn()
        return lc.runtime_counters()["syncs"]

    assert syncs(lambda: s.run_batch_sync_cached_no_download(4)) == 1             # auto
    assert syncs(lambda: s.run_batch_sync_cached_no_download(4, sync="never")) == 0
    assert syncs(lambda: s.run_into(a, a, out, sync="always")) == 1
    assert syncs(lambda: s.run_into(a, a, out)) == 0
    lc.synchronize("cuda")
    with lc.sync_policy("never"):
        assert syncs(lambda: s.run_batch_sync_cached_no_download(4)) == 0
        assert syncs(lambda: s.sync_into(a, a, out)) == 1  # a download always waits for its data
    lc.synchronize("cuda")
    # ops on device tensors: auto leaves them in flight; always waits after each op
    ta, tc = lc.Tensor(a, device="cuda"), lc.Tensor(np.empty((m, m), np.float32), device="cuda")
    assert syncs(lambda: lc.matmul2d_into(ta, ta, tc, device="cuda")) == 0
    lc.set_sync_policy("always")
    lc.runtime_trace_clear()
    lc.runtime_trace_enable(True)
    try:
        assert syncs(lambda: lc.relu_into(tc, tc, device="cuda")) == 1
    finally:
        lc.runtime_trace_enable(False)
    assert lc.runtime_trace_events()[-1]["sync"] is True
    np.testing.assert_allclose(tc.numpy(), np.maximum(a.astype(np.float64) @ a, 0), rtol=1e-4, atol=1e-3)
