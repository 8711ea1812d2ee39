"""Lightning Core dtypes on the Python side: names, NumPy dtypes and ``cast``.

float32, float64, float16 (NumPy's ``float16``) and bfloat16 (``ml_dtypes.bfloat16``, the NumPy
bfloat16 of JAX and TensorFlow). ``cast(x, dtype)`` converts a NumPy array through the C converters
(round to nearest even; NaN and Inf kept; bit-exact with NumPy and ml_dtypes; SIMD and threads on the
CPU). Rules: docs/python_api.md ("Dtypes"). Tests: tests/python/test_dtype.py.
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


def cast(x, dtype):
    """A new array with the elements of ``x`` (a NumPy array of float32/float64/float16/bfloat16)
    converted to ``dtype``, same shape; round to nearest even, NaN/Inf kept."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"cast: x: expected a NumPy array, got {type(x).__name__}")
    src = dtype_name(x.dtype, "cast: x")
    dst = dtype_name(dtype, "cast: dtype")
    out = np.empty(x.shape, dtype=numpy_dtype(dst))
    if x.size:
        xc = np.ascontiguousarray(x)
        _C.convert_buffer(xc.reshape(-1).view(np.uint8), src, out.reshape(-1).view(np.uint8), dst)
    return out
