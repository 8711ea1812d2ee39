"""lightning_core_integrated_api — the seed's block-style helper module, shipped in the wheel next to
``lightning_core`` (seed sections 18, 24, 26): engine selection shared with ``lightning_core.api``
(``set_engine`` / ``get_engine``, ``set_backend`` as the seed's alias), layers and models
(``Linear``, ``Sequential``, ``ReLU``, ``GELU``, ``LayerNorm``, ``Embedding``, ``Conv2d``, ``SGD``,
``TinyMLPModel``, ``TinyAutogradMLP``), the autograd bootstrap (``ag_matmul``, ``ag_add``, ``ag_relu``,
``ag_mse_loss``), checkpoints (``save_checkpoint`` / ``load_checkpoint`` v1,
``save_model_checkpoint`` / ``load_model_checkpoint`` v1.1), resident blocks (the resident sessions),
and the integrated pipeline helpers (``lightning_matmul``, ``conv_relu_nchw``,
``conv_attention_torchstrong_nchw`` and their seed-named twins). Everything here is the lightning_core
object itself, re-exported: no second implementation.
Tests: tests/python/test_seed_examples.py (sections 24 and 26), tests/python/test_integrated_api.py.
"""
from lightning_core import api as _api
from lightning_core.api import (
    conv_attention_torchstrong_nchw,
    conv_attention_torchstrong_nchw_ab_report,
    conv_attention_torchstrong_nchw_into,
    conv_relu_nchw,
    conv_relu_nchw_into,
    get_engine,
    get_route_policy,
    lightning_attention,
    lightning_attention_into,
    lightning_conv_attention_torchstrong_nchw,
    lightning_conv_attention_torchstrong_nchw_into,
    lightning_conv_relu_nchw,
    lightning_conv_relu_nchw_into,
    lightning_matmul,
    lightning_matmul_into,
    set_engine,
    set_route_policy,
)
from lightning_core.autograd import TinyAutogradMLP, Var, ag_add, ag_matmul, ag_mse_loss, ag_relu
from lightning_core.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
    save_model_checkpoint,
)
from lightning_core.nn import (
    GELU,
    SGD,
    Conv2d,
    Embedding,
    LayerNorm,
    Linear,
    Module,
    Parameter,
    ReLU,
    Sequential,
    TinyMLPModel,
)
from lightning_core.sessions import (
    AttentionSession,
    ConvAttentionSession,
    MatMulResidentSession,
    MatrixElemwiseResidentSession,
    matmul2d_resident_session,
)


def set_backend(engine):
    """The seed's alias of set_engine ('lightning', 'torch' or 'auto')."""
    _api.set_engine(engine)


def get_backend():
    return _api.get_engine()


__all__ = [name for name in dir() if not name.startswith("_")]
