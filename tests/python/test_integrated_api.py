"""lightning_core_integrated_api (python/lightning_core_integrated_api): the seed's helper module
re-exports lightning_core's own objects (no second implementation), shares the engine with lc.api, and
set_backend is the seed's alias of set_engine."""
import numpy as np
import pytest

import lightning_core as lc
import lightning_core_integrated_api as lc_api


@pytest.fixture(autouse=True)
def _restore_engine():
    before = lc.api.get_engine()
    yield
    lc.api.set_engine(before)


def test_exports_are_the_library_objects():
    assert lc_api.Linear is lc.nn.Linear and lc_api.TinyAutogradMLP is lc.autograd.TinyAutogradMLP
    assert lc_api.save_checkpoint is lc.checkpoint.save_checkpoint
    assert lc_api.lightning_matmul is lc.lightning_matmul
    assert lc_api.MatMulResidentSession is lc.MatMulResidentSession
    for name in ("set_engine", "get_engine", "set_backend", "Linear", "TinyMLPModel", "TinyAutogradMLP", "save_checkpoint",
                 "load_checkpoint", "save_model_checkpoint", "load_model_checkpoint", "ag_matmul", "ag_add", "ag_relu",
                 "ag_mse_loss", "lightning_matmul", "conv_attention_torchstrong_nchw"):
        assert name in lc_api.__all__


def test_engine_is_shared_and_set_backend_aliases():
    lc_api.set_backend("auto")
    assert lc.api.get_engine() == "auto" == lc_api.get_engine() == lc_api.get_backend()
    lc.api.set_engine("lightning")
    assert lc_api.get_engine() == "lightning"
    with pytest.raises(ValueError, match="engine"):
        lc_api.set_backend("mps")


def test_resident_block_through_the_helper(rng, ref, rel_err):
    a = rng.standard_normal((20, 12)).astype(np.float32)
    b = rng.standard_normal((12, 9)).astype(np.float32)
    s = lc_api.matmul2d_resident_session(a, b, device="cpu")
    out = np.empty((20, 9), np.float32)
    s.start_into(a, b, out)
    assert rel_err(out, ref.matmul(a, b)) < 1e-5
