"""lightning_core.testing: the float64 NumPy references and the one relative-error / validator function,
shared by the Python tests (tests/python/conftest.py) and the benchmarks (lightning_core.bench).
The C tests keep their own references in src/backend/cpu/reference.c."""
from .refs import (REF, UNIT_ROUNDOFF, as_host, check_sdpa, conv_out_size, lowp_matmul_excess, max_abs_diff, mismatch, ref_attention,
                   ref_activation, ref_chain, ref_conv2d, ref_gelu, ref_layer_norm, ref_matmul, ref_relu, ref_rms_norm, ref_rope,
                   ref_rope_inv_freq, ref_sdpa, ref_silu, ref_silu_mul, ref_softmax, rel_err,
                   sdpa_tol, unit_roundoff, validate)

__all__ = ["REF", "UNIT_ROUNDOFF", "as_host", "check_sdpa", "conv_out_size", "lowp_matmul_excess", "unit_roundoff", "max_abs_diff", "mismatch", "ref_activation", "ref_attention", "ref_chain", "ref_conv2d", "ref_gelu",
           "ref_layer_norm", "ref_matmul", "ref_relu", "ref_rms_norm", "ref_rope", "ref_rope_inv_freq", "ref_sdpa",
           "ref_silu", "ref_silu_mul", "ref_softmax", "rel_err", "sdpa_tol", "validate"]
