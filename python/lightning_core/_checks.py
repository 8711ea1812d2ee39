"""_checks.py — argument checks of the Python layer, the same rules as the C bindings (docs/python_api.md,
"Input rules"), for calls that do not reach a C binding with the argument (lc.api's torch engine, graph
mode) or must check before any work:

- ``check_out(fn, out, shape=None, count=None, dtype=float32)``: the one ``out`` rule of every ``*_into``
  function the Python layer fills itself: a writable, C-contiguous, aligned ``numpy.ndarray`` of the dtype
  (native byte order) with exactly ``shape`` (or ``count`` elements), or a contiguous lightning_core
  Tensor/TensorView of that dtype; TypeError for another type or dtype, ValueError for layout, read-only
  or size. ``fill_out(out, result)`` then writes ``result`` into it (never through a reshaped copy).
- ``check_int``, ``check_device``, ``check_input``: sizes, device names and input arrays as the C
  bindings take them (TypeError for a wrong type, ValueError for a wrong value).
Tests: tests/python/test_api.py, tests/python/test_api_graph.py.
"""
import numpy as np

from . import _C

_TENSORS = (_C.Tensor, _C.Tensor64, _C.TensorView)
_FLOATS = (np.float16, np.float32, np.float64)
_DEVICES = ("cpu", "cuda", "metal", "auto")


def is_tensor(x):
    return isinstance(x, _TENSORS)


def check_int(fn, name, v, lo, hi=2**31):
    """``v`` as an int in [lo, hi] (any integer with __index__, never bool)."""
    if isinstance(v, (bool, np.bool_)) or not hasattr(v, "__index__"):
        raise TypeError(f"{fn}: {name}: expected an int, got {type(v).__name__}")
    v = v.__index__()
    if v < lo or v > hi:
        raise ValueError(f"{fn}: {name}: expected an int >= {lo} and <= {hi}, got {v}")
    return v


def check_device(fn, device):
    if not isinstance(device, str):
        raise TypeError(f"{fn}: device: expected a str ('cpu', 'cuda', 'metal' or 'auto'), got {type(device).__name__}")
    if device not in _DEVICES:
        raise ValueError(f"{fn}: device: expected one of 'cpu', 'cuda', 'metal', 'auto', got {device!r}")
    return device


def check_input(fn, name, x, ndim=None):
    """An input as the float32 ops take it: a non-empty float16/32/64 ndarray, or a float32 tensor.
    Returns its shape."""
    if isinstance(x, np.ndarray):
        if x.dtype.type not in _FLOATS:
            raise TypeError(f"{fn}: {name}: expected a float32, float64 or float16 array, got dtype {x.dtype}")
        if x.size == 0:
            raise ValueError(f"{fn}: {name}: expected a non-empty array, got shape {x.shape}")
    elif is_tensor(x):
        if x.dtype != "float32":
            raise TypeError(f"{fn}: {name}: expected a float32 tensor (this op computes in float32; tensors are not "
                            f"converted), got a {x.dtype} {type(x).__name__}")
    else:
        raise TypeError(f"{fn}: {name}: expected a numpy.ndarray or a lightning_core Tensor, got {type(x).__name__}")
    shape = tuple(x.shape)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{fn}: {name}: expected {ndim} dimensions, got shape {shape}")
    return shape


def check_one_lowp(fn, named):
    """The binding's 16-bit rule for ops that take several arrays ({name: array or None}): a float16 array is
    never mixed with another dtype (TypeError naming both, the C bindings' wording)."""
    items = [(n, x.dtype) for n, x in named.items() if isinstance(x, np.ndarray)]
    for i, (a, da) in enumerate(items):
        for b, db in items[i + 1:]:
            if da != db and np.float16 in (da, db):
                raise TypeError(f"{fn}: {a} and {b}: expected one dtype (float16 and bfloat16 are never mixed with "
                                f"other dtypes; convert first with lc.cast or Tensor.to), got {a} of dtype {da} and "
                                f"{b} of dtype {db}")


def check_out(fn, out, shape=None, count=None, dtype=np.float32, inputs=None):
    """Raises unless ``out`` can take the result in place (see the module docstring); returns out.
    ``inputs`` ({name: array}): an ndarray ``out`` must not share bytes with any of them (the library's rule:
    judged by byte range, as np.may_share_memory)."""
    dtype = np.dtype(dtype)
    if isinstance(out, np.ndarray):
        if out.dtype != dtype or not out.dtype.isnative:
            raise TypeError(f"{fn}: out: expected dtype {dtype}, got {out.dtype}")
        if not out.flags.writeable:
            raise ValueError(f"{fn}: out: expected a writable array, got a read-only array")
        if not out.flags.c_contiguous or not out.flags.aligned:
            what = "misaligned" if out.flags.c_contiguous else "non-contiguous"
            raise ValueError(f"{fn}: out: expected a C-contiguous, aligned array, got a {what} array")
        got_shape, got_count = out.shape, out.size
    elif is_tensor(out):
        if out.dtype != dtype.name:
            raise TypeError(f"{fn}: out: expected a {dtype} tensor, got a {out.dtype} {type(out).__name__}")
        if not out.is_contiguous:
            raise ValueError(f"{fn}: out: expected a contiguous tensor, got a strided {type(out).__name__}")
        got_shape, got_count = tuple(out.shape), out.numel
    else:
        raise TypeError(f"{fn}: out: expected a numpy.ndarray or a lightning_core Tensor, got {type(out).__name__}")
    if shape is not None and tuple(got_shape) != tuple(shape):
        raise ValueError(f"{fn}: out: expected shape {tuple(shape)}, got {tuple(got_shape)}")
    if count is not None and got_count != count:
        raise ValueError(f"{fn}: out: expected {count} elements, got {got_count} (shape {tuple(got_shape)})")
    if isinstance(out, np.ndarray):
        for name, arr in (inputs or {}).items():
            if isinstance(arr, np.ndarray) and np.may_share_memory(out, arr):
                raise ValueError(f"{fn}: out: expected memory separate from {name}, got an overlapping buffer")
    return out


def fill_out(out, result):
    """Writes ``result`` (an ndarray or tensor of out's element count) into a checked ``out``; returns out."""
    if is_tensor(result):
        result = np.asarray(result)
    if isinstance(out, np.ndarray):
        np.copyto(out, np.asarray(result, dtype=out.dtype).reshape(out.shape), casting="same_kind")
    else:
        out.copy_from(np.ascontiguousarray(result))
    return out
