"""Layout views of lightning_core tensors: metadata only, no data moves (lc.permute, lc.transpose, lc.reshape,
lc.narrow), `t.contiguous()` (a device-side gather when a copy is needed), and lc.concat (one device-side copy
per input into its narrow view of the output).

Each function returns a TensorView sharing the tensor's storage (offsets and strides in elements, relative
to the storage). Ops read such views in place where they can (scaled_dot_product_attention, rope, KVCache,
copy) and otherwise gather them on the device they run on.
Tests: tests/python/test_layout.py.
"""
from __future__ import annotations

import math
import operator


def _tensor(t, fn):
    from . import Tensor, Tensor64, TensorView
    if not isinstance(t, (Tensor, Tensor64, TensorView)):
        raise TypeError(f"{fn}: t: expected a lightning_core Tensor, got {type(t).__name__}")
    return t


def _dims(t):
    return tuple(t.shape), tuple(t.strides)


def _axis(t, d, what):
    return _axis_nd(t.ndim, d, what)


def _axis_nd(nd, d, what):
    if not isinstance(d, int) or isinstance(d, bool):
        raise TypeError(f"{what}: expected an int axis, got {d!r}")
    if not -nd <= d < nd:
        raise ValueError(f"{what}: expected an axis in {-nd}..{nd - 1}, got {d!r}")
    return d % nd


def permute(t, *dims):
    """The view with axes reordered: result axis i is t's axis dims[i] (dims a permutation of 0..ndim-1)."""
    _tensor(t, "permute")
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    order = [_axis(t, d, "permute: dims") for d in dims]
    if sorted(order) != list(range(t.ndim)):
        raise ValueError(f"permute: dims: expected a permutation of 0..{t.ndim - 1}, got {dims}")
    shape, strides = _dims(t)
    return t.view(tuple(shape[i] for i in order), tuple(strides[i] for i in order), t.offset)


def transpose(t, a, b):
    """The view with axes a and b swapped."""
    order = list(range(_tensor(t, "transpose").ndim))
    a, b = _axis(t, a, "transpose: a"), _axis(t, b, "transpose: b")
    order[a], order[b] = order[b], order[a]
    return permute(t, order)


def reshape(t, shape):
    """A view of a contiguous tensor with another shape of the same size (one axis may be -1); a strided
    tensor raises ValueError (call .contiguous() first: the copy is explicit)."""
    _tensor(t, "reshape")
    dims = shape if isinstance(shape, (tuple, list)) else (shape,)
    if any(isinstance(s, bool) for s in dims):
        raise TypeError(f"reshape: shape: expected a tuple of ints, got {shape!r}")
    try:  # ints and NumPy integers only: a float (2.0, inf) is refused, not truncated
        shape = tuple(operator.index(s) for s in dims)
    except TypeError:
        raise TypeError(f"reshape: shape: expected a tuple of ints, got {shape!r}") from None
    n = t.numel
    if shape.count(-1) > 1 or any(s < -1 or s == 0 for s in shape):
        raise ValueError(f"reshape: shape: expected positive sizes and at most one -1, got {shape}")
    if -1 in shape:
        rest = math.prod(s for s in shape if s != -1)
        if n % rest:
            raise ValueError(f"reshape: shape: {shape} does not divide {n} elements")
        shape = tuple(n // rest if s == -1 else s for s in shape)
    if math.prod(shape) != n:
        raise ValueError(f"reshape: shape: expected {n} elements, got {shape} ({math.prod(shape)})")
    if not t.is_contiguous:
        raise ValueError("reshape: t: expected a contiguous tensor (call .contiguous() first), got a strided view")
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= s
    return t.view(shape, tuple(reversed(strides)), t.offset)


def narrow(t, dim, start, length):
    """The view of elements start..start+length-1 along axis dim."""
    d = _axis(_tensor(t, "narrow"), dim, "narrow: dim")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, length)):
        raise TypeError(f"narrow: start/length: expected ints, got {start!r}, {length!r}")
    shape, strides = _dims(t)
    if not (0 <= start and length >= 1 and start + length <= shape[d]):
        raise ValueError(f"narrow: start/length: expected 0 <= start, 1 <= length, start + length <= {shape[d]}, "
                         f"got {start}, {length}")
    new_shape = shape[:d] + (length,) + shape[d + 1:]
    return t.view(new_shape, strides, t.offset + start * strides[d])


def concat(tensors, dim=0):
    """The inputs joined along axis dim: lightning_core tensors of one dtype on one device (any strides; the
    result a new contiguous tensor there, each input copied by the device into its slice, no trip through the
    host), or NumPy arrays of one dtype (the result an ndarray). Shapes must agree except along dim. Bad input:
    TypeError / ValueError naming the input (tensors[i])."""
    from . import Tensor, Tensor64, TensorView
    import numpy as np
    if isinstance(tensors, (Tensor, Tensor64, TensorView, np.ndarray)) or not hasattr(tensors, "__len__"):
        raise TypeError(f"concat: tensors: expected a sequence of tensors or arrays, got {type(tensors).__name__}")
    items = list(tensors)
    if not items:
        raise ValueError("concat: tensors: expected at least one tensor, got an empty sequence")
    is_t = [isinstance(t, (Tensor, Tensor64, TensorView)) for t in items]
    is_a = [isinstance(t, np.ndarray) for t in items]
    for i, t in enumerate(items):
        if not (is_t[i] or is_a[i]):
            raise TypeError(f"concat: tensors[{i}]: expected a lightning_core tensor or a numpy.ndarray, "
                            f"got {type(t).__name__}")
        if is_t[i] != is_t[0]:
            raise TypeError(f"concat: tensors[{i}]: expected a {'tensor' if is_t[0] else 'numpy.ndarray'} like "
                            f"tensors[0] (tensors and arrays are not mixed), got {type(t).__name__}")
    first = items[0]
    nd = len(first.shape)
    if nd == 0:
        raise ValueError("concat: tensors[0]: expected at least one dimension, got a scalar")
    d = _axis_nd(nd, dim, "concat: dim")
    for i, t in enumerate(items[1:], 1):
        if str(t.dtype) != str(first.dtype):
            raise TypeError(f"concat: tensors[{i}]: expected dtype {first.dtype} (tensors[0]'s), got {t.dtype}")
        if is_t[0] and t.device != first.device:
            raise ValueError(f"concat: tensors[{i}]: expected device {first.device!r} (tensors[0]'s), got {t.device!r}")
        if len(t.shape) != nd or any(a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != d):
            want = tuple("*" if k == d else s for k, s in enumerate(first.shape))
            raise ValueError(f"concat: tensors[{i}]: expected shape {want} (tensors[0]'s but along dim {d}), "
                             f"got {tuple(t.shape)}")
    if is_a[0]:
        return np.concatenate(items, axis=d)
    shape = list(first.shape)
    shape[d] = sum(t.shape[d] for t in items)
    out = Tensor(tuple(shape), device=first.device, dtype=str(first.dtype))
    off = 0
    for t in items:
        n = t.shape[d]
        narrow(out, d, off, n).copy_from(t)
        off += n
    return out
