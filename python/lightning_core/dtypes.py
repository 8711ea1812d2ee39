"""Lightning Core dtypes on the Python side: names, NumPy dtypes, ``cast`` and what the op table says.

float32, float64, float16 (NumPy's ``float16``) and bfloat16 (``ml_dtypes.bfloat16``, the NumPy
bfloat16 of JAX and TensorFlow). ``cast(x, dtype)`` converts a NumPy array (or a lightning_core tensor,
through ``Tensor.to``) through the C converters (round to nearest even; NaN and Inf kept; bit-exact with
NumPy and ml_dtypes; SIMD and threads on the CPU). ``op_dtypes(op)`` is the op table's answer to "which
dtypes does this op take" — the masks the binding's compute-dtype rule reads — and
``float32_fallback_ops(dtype)`` lists the ops that compute float16/bfloat16 inputs in float32 until they
have a low-precision kernel. Rules: docs/python_api.md ("Input rules", "Dtypes and cast").
Tests: tests/python/test_dtype.py, tests/python/test_dtype_ops.py.
"""

import numpy as np

from . import _C

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")

_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "bf16": "bfloat16",
            "f32": "float32", "f64": "float64", "f16": "float16"}


def _bfloat16():
    try:
        import ml_dtypes
    except ImportError as e:  # a declared dependency; say so plainly if it is missing
        raise TypeError("bfloat16 needs the ml_dtypes package (pip install ml_dtypes)") from e
    return np.dtype(ml_dtypes.bfloat16)


def dtype_name(dtype, arg="dtype"):
    """The Lightning Core name ('float32', 'float64', 'float16', 'bfloat16') of a name, NumPy dtype
    or scalar type (``np.float16``, ``ml_dtypes.bfloat16``); TypeError naming ``arg`` otherwise."""
    if isinstance(dtype, str):
        name = _ALIASES.get(dtype, dtype)
        if name in FLOAT_DTYPES:
            return name
        raise TypeError(f"{arg}: expected one of float32, float64, float16, bfloat16, got {dtype!r}")
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{arg}: expected a dtype (name, NumPy dtype or type), got {type(dtype).__name__}") from None
    if d.name in FLOAT_DTYPES and (d.kind == "f" or d.name == "bfloat16"):
        return d.name
    raise TypeError(f"{arg}: expected float32, float64, float16 or bfloat16, got dtype {d}")


def numpy_dtype(name):
    """The NumPy dtype of a Lightning Core dtype name."""
    name = dtype_name(name)
    return _bfloat16() if name == "bfloat16" else np.dtype(name)


# The op-table ops behind the binding's functions (each function's compute dtype is asked of its op).
BINDING_OPS = {
    "matmul": ("matmul", "matmul2d", "matmul2d_into", "matmul_np_into"),
    "linear": ("linear", "linear_into"),
    "vector_add": ("vector_add", "vector_add_into"),
    "matrix_sub": ("matrix_sub", "matrix_sub_into"),
    "matrix_div": ("matrix_div", "matrix_div_into"),
    "relu": ("relu", "relu_into"),
    "gelu": ("gelu", "gelu_into"),
    "layer_norm": ("layer_norm", "layer_norm_into"),
    "attention_forward": ("attention2d", "attention2d_into", "attention_forward", "attention_forward_into"),
    "conv2d_nchw": ("conv2d_nchw", "conv2d_nchw_into"),
    "qkv_pack_repeat": ("qkv_pack_repeat", "qkv_pack_repeat_into"),
}


def op_dtypes(op, device="auto"):
    """The dtype names op ``op`` (an op-table name: 'matmul', 'vector_add', 'linear', ...) takes on
    ``device`` ('cpu', 'cuda'; 'auto': on any backend), from the op table."""
    return _C.op_dtypes(op, device)


def float32_fallback_ops(dtype="bfloat16"):
    """The ops (op-table names, keys of ``BINDING_OPS``) whose ``dtype`` (float16 or bfloat16) inputs are
    computed in float32, with a float32 result, because no backend has a kernel for that dtype yet."""
    name = dtype_name(dtype)
    if name not in ("float16", "bfloat16"):
        raise TypeError(f"float32_fallback_ops: dtype: expected float16 or bfloat16, got {name}")
    return tuple(op for op in BINDING_OPS if name not in _C.op_dtypes(op))


def cast(x, dtype, out=None):
    """A new array with the elements of ``x`` (a NumPy array of float32/float64/float16/bfloat16)
    converted to ``dtype``, same shape; round to nearest even, NaN/Inf kept. ``out``: a C-contiguous,
    writable ndarray of x's shape in ``dtype`` to write instead (returned; it may be ``x`` itself when the
    element sizes match). A lightning_core tensor gives a new tensor on its device (``x.to(dtype)``)."""
    if isinstance(x, (_C.Tensor, _C.Tensor64, _C.TensorView)):
        if out is not None:
            raise TypeError("cast: out: expected None for a lightning_core tensor (use x.to(dtype))")
        return x.to(dtype_name(dtype, "cast: dtype"))
    if not isinstance(x, np.ndarray):
        raise TypeError(f"cast: x: expected a NumPy array or a lightning_core tensor, got {type(x).__name__}")
    src = dtype_name(x.dtype, "cast: x")
    dst = dtype_name(dtype, "cast: dtype")
    if out is None:
        out = np.empty(x.shape, dtype=numpy_dtype(dst))
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"cast: out: expected a NumPy array, got {type(out).__name__}")
        if out.dtype != numpy_dtype(dst):
            raise TypeError(f"cast: out: expected dtype {dst}, got {out.dtype}")
        if out.shape != x.shape or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(f"cast: out: expected a writable C-contiguous array of shape {x.shape}, got shape "
                             f"{out.shape} (contiguous {out.flags.c_contiguous}, writable {out.flags.writeable})")
    if x.size:
        xc = np.ascontiguousarray(x)
        _C.convert_buffer(xc.reshape(-1).view(np.uint8), src, out.reshape(-1).view(np.uint8), dst)
    return out
