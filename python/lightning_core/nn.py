"""lightning_core.nn: small torch-style modules over the lightning_core ops (seed README sections 18, 26).

Modules hold their parameters as ``Parameter`` objects: C-contiguous NumPy arrays (an ndarray subclass)
of the module's ``dtype`` (float32 default, float16, bfloat16) with a ``.grad`` slot (float32). Forward passes call the C ops directly (``Linear`` is one call into
``lightning_core._C.linear``); backward passes are NumPy/lc-matmul code for ``Linear``, ``ReLU``, ``GELU``,
``LayerNorm`` and ``Embedding`` (``Conv2d`` has a forward only). Conventions:

- ``Linear`` stores ``weight`` as ``[in_features, out_features]`` (row-major ``x @ weight``, the library's
  matmul convention) -- the transpose of torch's ``[out, in]``; its state_dict uses that layout too.
- 16-bit modules run forward in their dtype (Linear, LayerNorm); backward is float32; SGD updates a
  16-bit parameter in float32 and rounds once.
- ``state_dict()`` is an ordered dict name -> ndarray copy (the parameter's dtype) with torch's names (``"weight"``,
  ``"bias"``, ``"0.weight"`` for the first child of a ``Sequential``); ``load_state_dict(sd, strict=True)``
  validates every key, shape and dtype before writing anything and copies into the existing arrays in
  place (optimizer state keyed by parameter stays valid).
- Gradients accumulate into ``param.grad`` across backward calls (as in torch) until ``zero_grad()``.
- ``device`` ("cpu", "cuda", "metal" or "auto", default "cpu") is where the forward ops (and the matmuls of
  ``Linear.backward``) run; parameters stay NumPy arrays on the host.

Reference: docs/python_api.md ("nn and autograd"). Tests: tests/python/test_nn.py, tests/python/test_dtype_nn.py.
"""

import math
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np

from . import _C
from . import dtypes as _dtypes
from ._checks import check_device as _checks_device, check_int as _checks_int

__all__ = [
    "Parameter",
    "Module",
    "Linear",
    "ReLU",
    "GELU",
    "LayerNorm",
    "Embedding",
    "Conv2d",
    "Sequential",
    "TinyMLPModel",
    "SGD",
    "IncompatibleKeys",
]

_linear = _C.linear
_linear_into = _C.linear_into

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


# ---- argument checks (messages name the caller and the argument) ---------------------------------

def _check_int(who, name, v, minimum=1):
    """A size argument: an int (never bool) in [minimum, 2**31 - 1]; the one integer checker (_checks)."""
    return _checks_int(who, name, v, minimum, 2**31 - 1)


def _check_pair(who, name, v, minimum):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{who}: {name}: expected an int or a pair of ints, got {len(v)} values")
        return (_check_int(who, name, v[0], minimum), _check_int(who, name, v[1], minimum))
    v = _check_int(who, name, v, minimum)
    return (v, v)


def _check_bool(who, name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{who}: {name}: expected a bool, got {type(v).__name__}")
    return bool(v)


def _check_real(who, name, v, minimum=0.0, strict=False):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, Real):
        raise TypeError(f"{who}: {name}: expected a float, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v < minimum or (strict and v == minimum):
        rel = ">" if strict else ">="
        raise ValueError(f"{who}: {name}: expected a finite number {rel} {minimum:g}, got {v!r}")
    return v


_check_device = _checks_device


def _rng(who, seed):
    """np.random.default_rng(seed) for seed None, an int >= 0, a SeedSequence or a Generator (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, Integral):
        raise TypeError(f"{who}: seed: expected None, an int or a numpy Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{who}: seed: expected an int >= 0, got {int(seed)}")
    return np.random.default_rng(int(seed))


_PARAM_DTYPES = ("float32", "float16", "bfloat16")


def _check_dtype(who, dtype):
    """A parameter dtype argument: float32 (default), float16 or bfloat16 (names, NumPy dtypes or types, as
    lc.cast takes) -> its NumPy dtype; TypeError naming ``who`` and the argument otherwise."""
    name = _dtypes.dtype_name(dtype, f"{who}: dtype")
    if name not in _PARAM_DTYPES:
        raise TypeError(f"{who}: dtype: expected float32, float16 or bfloat16, got {name}")
    return _dtypes.numpy_dtype(name)


def _is_lowp(dtype):
    return dtype.name in ("float16", "bfloat16")


def _f32(a):
    """A float32 host view/copy of ``a`` (float16/bfloat16 widened exactly) for the float32 backward code."""
    a = _host(a)
    return a.astype(np.float32) if _is_lowp(a.dtype) else a


def _host(a):
    """A NumPy view of an ndarray/Parameter, or a host copy of a lightning_core tensor."""
    if isinstance(a, np.ndarray):
        return a.view(np.ndarray) if type(a) is not np.ndarray else a
    return np.asarray(a)


# ---- Parameter --------------------------------------------------------------------------------------

class Parameter(np.ndarray):
    """A C-contiguous ndarray of float32 (default), float16 or bfloat16 owned by a module, with a ``grad``
    slot (None or a float32 ndarray of the same shape). ``Parameter(data, dtype="float32")`` copies ``data``
    (converted to ``dtype`` with round to nearest even, as lc.cast). Arithmetic on a parameter returns plain
    ndarrays; in-place updates (``p -= lr * p.grad``, ``p.fill(0)``, ``np.copyto(p, ...)``) keep it a
    parameter."""

    def __new__(cls, data, dtype="float32"):
        dt = _check_dtype("Parameter", dtype)
        if dt == np.float32:
            arr = np.array(data, dtype=np.float32, order="C", copy=True)
        else:
            src = data if isinstance(data, np.ndarray) and data.dtype.name in _dtypes.FLOAT_DTYPES else \
                np.asarray(data, dtype=np.float64)
            arr = _dtypes.cast(src, dt) if src.dtype != dt else np.array(src, order="C", copy=True)
        obj = arr.view(cls)
        obj.grad = None
        return obj

    def __array_finalize__(self, obj):
        self.grad = None

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        # Results of ufuncs are plain arrays (the parameter itself where it was the out= operand).
        if return_scalar:
            return arr[()]
        return arr

    def __reduce__(self):  # pickles as a plain array wrapped back into a Parameter of its dtype
        return (Parameter, (np.asarray(self.view(np.ndarray)), self.dtype.name))

    def __repr__(self):
        return "Parameter(" + repr(self.view(np.ndarray))[6:]


def _saved_input(x, out):
    """The input to keep for backward when the op writes ``out``: a host copy where ``out`` may overwrite
    ``x`` (the in-place ``*_into`` form), else ``x`` itself."""
    if x is out or (isinstance(x, np.ndarray) and isinstance(out, np.ndarray) and np.may_share_memory(x, out)):
        return np.array(_host(x), copy=True)
    return x


def _accumulate(p, g):
    g = np.asarray(g)
    if g.dtype != np.float32:
        g = g.astype(np.float32)
    if p.grad is None:
        p.grad = np.ascontiguousarray(g) if g.base is None else g.copy()
    else:
        p.grad += g


# ---- state_dict loading, shared with lightning_core.autograd ---------------------------------------

def _load_state(who, targets, state_dict, strict):
    """Checks ``state_dict`` against ``targets`` (ordered name -> float32 ndarray) and copies the values in.
    Everything is validated before anything is written; errors name every offending key."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"{who}.load_state_dict: state_dict: expected a mapping (dict), got "
                        f"{type(state_dict).__name__}")
    strict = _check_bool(f"{who}.load_state_dict", "strict", strict)
    missing = [k for k in targets if k not in state_dict]
    unexpected = [k for k in state_dict if k not in targets]
    problems = []
    if strict and missing:
        problems.append(f"missing keys {missing}")
    if strict and unexpected:
        problems.append(f"unexpected keys {unexpected}")
    values = {}
    bad_type = []
    dtype_errors = []
    shape_errors = []
    for name, dst in targets.items():
        if name not in state_dict:
            continue
        v = state_dict[name]
        try:
            arr = v if isinstance(v, np.ndarray) else np.asarray(v)
        except Exception:  # noqa: BLE001 -- an object NumPy cannot read is a type error for that key
            arr = None
        lowp = arr is not None and (_is_lowp(arr.dtype) or _is_lowp(dst.dtype))
        if arr is None or (arr.dtype.kind not in "fiu" and not lowp):
            bad_type.append(f"{name!r} ({type(v).__name__}"
                            f"{'' if arr is None else ', dtype ' + str(arr.dtype)})")
            continue
        if lowp and arr.dtype != dst.dtype:  # float16/bfloat16 are never converted silently
            dtype_errors.append(f"{name!r}: expected dtype {dst.dtype.name}, got {arr.dtype.name}")
            continue
        if arr.shape != dst.shape:
            shape_errors.append(f"{name!r}: expected shape {dst.shape}, got {arr.shape}")
            continue
        values[name] = arr
    if bad_type:
        raise TypeError(f"{who}.load_state_dict: values that are not real-valued arrays for keys "
                        f"{', '.join(bad_type)}; nothing was loaded")
    if dtype_errors:
        raise TypeError(f"{who}.load_state_dict: dtype mismatch for keys " + "; ".join(dtype_errors)
                        + " (float16/bfloat16 values load only into parameters of that dtype: convert with "
                        "lc.cast); nothing was loaded")
    if shape_errors:
        problems.append("mis-shaped keys " + "; ".join(shape_errors))
    if problems:
        raise ValueError(f"{who}.load_state_dict: " + "; ".join(problems) + "; nothing was loaded")
    for name, arr in values.items():
        np.copyto(targets[name], arr, casting="unsafe")
    return IncompatibleKeys(missing, unexpected)


# ---- Module ---------------------------------------------------------------------------------------

class Module:
    """Base class. A module has parameters (names in ``_param_names``, attributes holding a Parameter or
    None), children (``_children``: ordered (name, module) pairs) and a ``device`` for its forward ops.
    ``module(x)`` is ``module.forward(x)`` (bound directly, no extra Python frame)."""

    _param_names = ()
    dtype = "float32"  # the parameters' dtype name (modules without parameters run in their input's dtype)

    def __init__(self, device="cpu"):
        self.device = _check_device(type(self).__name__, device)
        self._children = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fwd = cls.__dict__.get("forward")
        if fwd is not None and "__call__" not in cls.__dict__:
            cls.__call__ = fwd

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, grad_out):
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented "
                                  "(nn backward covers Linear, ReLU, GELU, LayerNorm, Embedding)")

    # parameters and children
    def named_parameters(self, prefix=""):
        for n in self._param_names:
            p = getattr(self, n)
            if p is not None:
                yield prefix + n, p
        for cname, child in self._children:
            yield from child.named_parameters(prefix + cname + ".")

    def parameters(self):
        for _, p in self.named_parameters():
            yield p

    def children(self):
        return [m for _, m in self._children]

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.fill(0.0)

    def to(self, device):
        """Sets the device of this module and every child (parameters stay host arrays); returns self."""
        device = _check_device(f"{type(self).__name__}.to", device)
        if self.device is not None:
            self.device = device
        for _, child in self._children:
            child.to(device)
        return self

    # checkpoints
    def state_dict(self):
        """name -> a copy of each parameter, in its dtype (float32, float16 or bfloat16)."""
        return OrderedDict((n, np.array(p.view(np.ndarray), copy=True)) for n, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict=True):
        """Copies ``state_dict`` into the parameters. ``strict`` (default) rejects missing and unexpected
        keys; mis-shaped values are always rejected (ValueError naming the keys), non-numeric values are
        a TypeError. On any error nothing is written. Returns ``IncompatibleKeys(missing, unexpected)``."""
        return _load_state(type(self).__name__, OrderedDict(self.named_parameters()), state_dict, strict)

    def __repr__(self):
        inner = self.extra_repr()
        if not self._children:
            return f"{type(self).__name__}({inner})"
        lines = [f"  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._children]
        return f"{type(self).__name__}({inner}\n" + "\n".join(lines) + "\n)"

    def extra_repr(self):
        return ""


# ---- leaf modules -------------------------------------------------------------------------------------

class Linear(Module):
    """y = x @ weight + bias with ``weight`` [in_features, out_features] (the transpose of torch's
    [out, in]: row-major ``x @ w``, as everywhere in lightning_core) and ``bias`` [out_features] or None.
    Initialisation: uniform(-1/sqrt(in), 1/sqrt(in)) for both, drawn (weight, then bias) from
    ``np.random.default_rng(seed)`` (``seed`` may also be a Generator, used as is).

    ``forward(x)`` is one call to ``lightning_core._C.linear(x, weight, bias, "none", device)`` for 2-D x
    [m, in] (ndarray or lc tensor, returns the op's result); x [..., in] of another rank is reshaped to 2-D
    around the same call. The last input is kept for ``backward(grad_out)``, which accumulates
    ``weight.grad = x^T g``, ``bias.grad = sum(g, 0)`` and returns ``grad_x = g weight^T`` (float32
    host arrays; the matmuls run on ``device``)."""

    _param_names = ("weight", "bias")

    def __init__(self, in_features, out_features, bias=True, seed=None, device="cpu", dtype="float32"):
        super().__init__(device)
        self.in_features = _check_int("Linear", "in_features", in_features)
        self.out_features = _check_int("Linear", "out_features", out_features)
        bias = _check_bool("Linear", "bias", bias)
        dt = _check_dtype("Linear", dtype)
        self.dtype = dt.name
        rng = _rng("Linear", seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, (self.in_features, self.out_features)), dt)
        self.bias = Parameter(rng.uniform(-bound, bound, (self.out_features,)), dt) if bias else None
        self._x = None

    def forward(self, x):
        try:
            y = _linear(x, self.weight, self.bias, "none", self.device)
        except ValueError:
            if isinstance(x, np.ndarray) and x.ndim != 2 and x.ndim >= 1:
                return self._forward_nd(x)
            raise
        self._x = x
        return y

    def _forward_nd(self, x):
        x2 = x.reshape(-1, x.shape[-1])
        y = _linear(x2, self.weight, self.bias, "none", self.device)
        self._x = x2
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def forward_into(self, x, out):
        """Writes the forward result into ``out`` [m, out_features] (``linear_into``); returns ``out``."""
        _linear_into(x, self.weight, out, self.bias, "none", self.device)
        self._x = x
        return out

    def backward(self, grad_out):
        if self._x is None:
            raise RuntimeError("Linear.backward: no forward input recorded (call forward first)")
        x = _f32(self._x)
        if x.ndim != 2:
            x = x.reshape(-1, self.in_features)
        g = _f32(grad_out)
        lead = g.shape[:-1]
        if g.ndim != 2:
            g = g.reshape(-1, g.shape[-1]) if g.ndim >= 1 else g.reshape(1, 1)
        if g.shape != (x.shape[0], self.out_features):
            raise ValueError(f"Linear.backward: grad_out: expected shape ({x.shape[0]}, {self.out_features}) "
                             f"(the forward output), got {_host(grad_out).shape}")
        _accumulate(self.weight, _C.matmul2d(x.T, g, self.device))
        if self.bias is not None:
            _accumulate(self.bias, g.sum(axis=0, dtype=np.float64 if g.dtype == np.float64 else np.float32))
        gx = _C.matmul2d(g, _f32(self.weight).T, self.device)
        if gx.dtype != np.float32:
            gx = gx.astype(np.float32)
        return gx.reshape(lead + (self.in_features,))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, device={self.device!r}"
                + (f", dtype={self.dtype!r}" if self.dtype != "float32" else ""))


class ReLU(Module):
    """max(x, 0) through ``lc.relu``; ``backward(g)`` = g where the output is > 0, else 0."""

    def __init__(self, device="cpu"):
        super().__init__(device)
        self._y = None

    def forward(self, x):
        y = _C.relu(x, self.device)
        self._y = y
        return y

    def forward_into(self, x, out):
        _C.relu_into(x, out, self.device)
        self._y = out
        return out

    def backward(self, grad_out):
        if self._y is None:
            raise RuntimeError("ReLU.backward: no forward output recorded (call forward first)")
        y = _f32(self._y)
        g = _f32(grad_out)
        if g.shape != y.shape:
            raise ValueError(f"ReLU.backward: grad_out: expected shape {y.shape}, got {g.shape}")
        return np.where(y > 0, g, np.zeros((), g.dtype))

    def extra_repr(self):
        return f"device={self.device!r}"


_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_grad(x, approximate):
    """d gelu(x) / dx in float64."""
    x = np.asarray(x, np.float64)
    if approximate == "tanh":
        u = _SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)
        t = np.tanh(u)
        du = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return cdf + x * pdf


class GELU(Module):
    """gelu(x) through ``lc.gelu`` (``approximate="none"``: erf form, ``"tanh"``: tanh form)."""

    def __init__(self, approximate="none", device="cpu"):
        super().__init__(device)
        if not isinstance(approximate, str):
            raise TypeError(f"GELU: approximate: expected a str, got {type(approximate).__name__}")
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self._x = None

    def forward(self, x):
        y = _C.gelu(x, self.approximate, self.device)
        self._x = x
        return y

    def forward_into(self, x, out):
        saved = _saved_input(x, out)
        _C.gelu_into(x, out, self.approximate, self.device)
        self._x = saved
        return out

    def backward(self, grad_out):
        if self._x is None:
            raise RuntimeError("GELU.backward: no forward input recorded (call forward first)")
        x = _f32(self._x)
        g = _f32(grad_out)
        if g.shape != x.shape:
            raise ValueError(f"GELU.backward: grad_out: expected shape {x.shape}, got {g.shape}")
        return (g * _gelu_grad(x, self.approximate)).astype(np.float32)

    def extra_repr(self):
        return f"approximate={self.approximate!r}, device={self.device!r}"


class LayerNorm(Module):
    """Layer norm over the last axis (``lc.layer_norm``): ``normalized_shape`` is d (an int or a 1-tuple);
    with ``elementwise_affine`` it has ``weight`` (ones) and ``bias`` (zeros) of shape [d]."""

    _param_names = ("weight", "bias")

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, device="cpu", dtype="float32"):
        super().__init__(device)
        dt = _check_dtype("LayerNorm", dtype)
        self.dtype = dt.name
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError("LayerNorm: normalized_shape: only the last axis is normalised "
                                 f"(an int or a 1-tuple), got {tuple(normalized_shape)}")
            normalized_shape = normalized_shape[0]
        self.normalized_shape = (_check_int("LayerNorm", "normalized_shape", normalized_shape),)
        self.eps = _check_real("LayerNorm", "eps", eps, 0.0, strict=True)
        self.elementwise_affine = _check_bool("LayerNorm", "elementwise_affine", elementwise_affine)
        d = self.normalized_shape[0]
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(d, np.float32), dt)
            self.bias = Parameter(np.zeros(d, np.float32), dt)
        else:
            self.weight = None
            self.bias = None
        self._x = None

    def _check_x(self, x):
        shape = getattr(x, "shape", None)
        if shape is not None and (len(shape) == 0 or shape[-1] != self.normalized_shape[0]):
            raise ValueError(f"LayerNorm: x: expected a last dimension of {self.normalized_shape[0]}, "
                             f"got shape {tuple(shape)}")

    def forward(self, x):
        self._check_x(x)
        y = _C.layer_norm(x, self.weight, self.bias, self.eps, self.device)
        self._x = x
        return y

    def forward_into(self, x, out):
        self._check_x(x)
        saved = _saved_input(x, out)
        _C.layer_norm_into(x, out, self.weight, self.bias, self.eps, self.device)
        self._x = saved
        return out

    def backward(self, grad_out):
        if self._x is None:
            raise RuntimeError("LayerNorm.backward: no forward input recorded (call forward first)")
        x = np.asarray(_f32(self._x), np.float64)
        g = np.asarray(_f32(grad_out), np.float64)
        if g.shape != x.shape:
            raise ValueError(f"LayerNorm.backward: grad_out: expected shape {x.shape}, got {g.shape}")
        mean = x.mean(axis=-1, keepdims=True)
        xc = x - mean
        rstd = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)
        xhat = xc * rstd
        if self.weight is not None:
            lead = tuple(range(x.ndim - 1))
            _accumulate(self.weight, (g * xhat).sum(axis=lead))
            _accumulate(self.bias, g.sum(axis=lead))
            dxhat = g * _f32(self.weight).astype(np.float64)
        else:
            dxhat = g
        dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                     - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
        return dx.astype(np.float32)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps:g}, elementwise_affine={self.elementwise_affine}, "
                f"device={self.device!r}" + (f", dtype={self.dtype!r}" if self.dtype != "float32" else ""))


class Embedding(Module):
    """A lookup table ``weight`` [num_embeddings, embedding_dim] (initialised N(0, 1) from the seed, as in
    torch). ``forward(indices)`` takes an integer array of any shape with values in [0, num_embeddings)
    and returns float32 [..., embedding_dim] (a NumPy gather; ``device`` is not used).
    ``backward(grad_out)`` accumulates ``weight.grad`` (scatter-add) and returns None."""

    _param_names = ("weight",)

    def __init__(self, num_embeddings, embedding_dim, seed=None, device="cpu", dtype="float32"):
        super().__init__(device)
        self.num_embeddings = _check_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _check_int("Embedding", "embedding_dim", embedding_dim)
        dt = _check_dtype("Embedding", dtype)
        self.dtype = dt.name
        rng = _rng("Embedding", seed)
        self.weight = Parameter(rng.standard_normal((self.num_embeddings, self.embedding_dim)), dt)
        self._idx = None

    def forward(self, indices):
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding: indices: expected an integer array, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            bad = idx[(idx < 0) | (idx >= self.num_embeddings)].ravel()[0]
            raise ValueError(f"Embedding: indices: values must lie in [0, {self.num_embeddings}), got {int(bad)}")
        self._idx = idx
        return self.weight.view(np.ndarray)[idx]

    def backward(self, grad_out):
        if self._idx is None:
            raise RuntimeError("Embedding.backward: no forward input recorded (call forward first)")
        g = _f32(grad_out)
        want = self._idx.shape + (self.embedding_dim,)
        if g.shape != want:
            raise ValueError(f"Embedding.backward: grad_out: expected shape {want}, got {g.shape}")
        gw = np.zeros(self.weight.shape, np.float32)
        np.add.at(gw, self._idx.ravel(), g.reshape(-1, self.embedding_dim).astype(np.float32))
        _accumulate(self.weight, gw)
        return None

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Conv2d(Module):
    """NCHW convolution through ``lc.conv2d_nchw``: ``weight`` [out_channels, in_channels, kh, kw] (torch's
    layout), ``bias`` [out_channels] or None, both uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    fan_in = in_channels*kh*kw. ``kernel_size``, ``stride`` (>= 1) and ``padding`` (>= 0) are ints or
    (h, w) pairs. Forward only (``backward`` raises NotImplementedError)."""

    _param_names = ("weight", "bias")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, seed=None,
                 device="cpu", dtype="float32"):
        super().__init__(device)
        dt = _check_dtype("Conv2d", dtype)
        self.dtype = dt.name
        self.in_channels = _check_int("Conv2d", "in_channels", in_channels)
        self.out_channels = _check_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = _check_pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = _check_pair("Conv2d", "stride", stride, 1)
        self.padding = _check_pair("Conv2d", "padding", padding, 0)
        bias = _check_bool("Conv2d", "bias", bias)
        rng = _rng("Conv2d", seed)
        kh, kw = self.kernel_size
        bound = 1.0 / math.sqrt(self.in_channels * kh * kw)
        self.weight = Parameter(rng.uniform(-bound, bound, (self.out_channels, self.in_channels, kh, kw)), dt)
        self.bias = Parameter(rng.uniform(-bound, bound, (self.out_channels,)), dt) if bias else None

    def forward(self, x):
        return _C.conv2d_nchw(x, self.weight, self.bias, self.stride[0], self.stride[1],
                              self.padding[0], self.padding[1], self.device)

    def forward_into(self, x, out):
        return _C.conv2d_nchw_into(x, self.weight, self.bias, out, self.stride[0], self.stride[1],
                                   self.padding[0], self.padding[1], self.device)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


# ---- containers -------------------------------------------------------------------------------------

class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... (state_dict keys "0.weight", ...).
    ``backward(grad_out)`` runs the children's backward in reverse (Linear, ReLU, GELU, LayerNorm)."""

    def __init__(self, *modules):
        self.device = None  # a container: its children have devices (to() sets them all)
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: modules[{i}]: expected a lightning_core.nn.Module, "
                                f"got {type(m).__name__}")
        self._children = [(str(i), m) for i, m in enumerate(modules)]
        self._seq = tuple(modules)

    @property
    def modules(self):
        """The child modules, in order (a list; editing it does not change the Sequential)."""
        return list(self._seq)

    def __len__(self):
        return len(self._seq)

    def __iter__(self):
        return iter(self._seq)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(*self._seq[i])
        return self._seq[i]

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append: module: expected a lightning_core.nn.Module, "
                            f"got {type(module).__name__}")
        self._children.append((str(len(self._seq)), module))
        self._seq = self._seq + (module,)
        return self

    def forward(self, x):
        for m in self._seq:
            x = m(x)
        return x

    def backward(self, grad_out):
        g = grad_out
        for m in reversed(self._seq):
            g = m.backward(g)
        return g


class TinyMLPModel(Sequential):
    """Linear(in, hidden) -> ReLU -> Linear(hidden, out), seeded (the seed README's checkpoint example).
    Both Linear layers draw from one ``np.random.default_rng(seed)`` (first layer first); state_dict keys
    are "0.weight" [in, hidden], "0.bias", "2.weight" [hidden, out], "2.bias" -- the same keys and values
    as ``lightning_core.autograd.TinyAutogradMLP`` with the same seed."""

    def __init__(self, in_features, hidden_features, out_features, seed=None, device="cpu", dtype="float32"):
        rng = _rng("TinyMLPModel", seed)
        _check_device("TinyMLPModel", device)
        dt = _check_dtype("TinyMLPModel", dtype)
        super().__init__(
            Linear(_check_int("TinyMLPModel", "in_features", in_features),
                   _check_int("TinyMLPModel", "hidden_features", hidden_features), seed=rng, device=device, dtype=dt),
            ReLU(device=device),
            Linear(hidden_features, _check_int("TinyMLPModel", "out_features", out_features), seed=rng,
                   device=device, dtype=dt),
        )
        self.dtype = dt.name


# ---- optimiser ----------------------------------------------------------------------------------------

class SGD:
    """Stochastic gradient descent with optional momentum and weight decay (torch's update rule):
    g = grad + weight_decay * p; buf = g (first step) or momentum * buf + g; p -= lr * buf (momentum 0:
    p -= lr * g). ``params`` is a Module or an iterable of Parameters (or autograd ``Var`` leaves, whose
    ``value`` is updated); updates are in place. Parameters whose grad is None are skipped."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        if isinstance(params, Module) or hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        if isinstance(params, (np.ndarray, str, bytes)) or not hasattr(params, "__iter__"):
            raise TypeError(f"SGD: params: expected an iterable of Parameters or a Module, "
                            f"got {type(params).__name__}")
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD: params: got an empty parameter list")
        self._targets = []
        seen = set()
        for i, p in enumerate(self.params):
            if isinstance(p, Parameter):
                t = p
            elif hasattr(p, "value") and hasattr(p, "grad") and isinstance(getattr(p, "value"), np.ndarray):
                t = p.value
            else:
                raise TypeError(f"SGD: params[{i}]: expected a Parameter (or an autograd Var), "
                                f"got {type(p).__name__}")
            if id(t) in seen:
                raise ValueError(f"SGD: params[{i}]: the same parameter appears more than once")
            seen.add(id(t))
            self._targets.append(t)
        self.lr = _check_real("SGD", "lr", lr)
        self.momentum = _check_real("SGD", "momentum", momentum)
        self.weight_decay = _check_real("SGD", "weight_decay", weight_decay)
        self._bufs = [None] * len(self.params)

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.fill(0.0)

    def step(self):
        lr, mom, wd = self.lr, self.momentum, self.weight_decay
        for i, (p, t) in enumerate(zip(self.params, self._targets)):
            g = p.grad
            if g is None:
                continue
            g = np.asarray(g)
            if g.shape != t.shape:
                raise ValueError(f"SGD.step: params[{i}].grad: expected shape {t.shape}, got {g.shape}")
            if _is_lowp(t.dtype):
                self._step_lowp(i, t, g, lr, mom, wd)
                continue
            if wd:
                g = g + wd * t
            if mom:
                buf = self._bufs[i]
                if buf is None:
                    buf = self._bufs[i] = np.array(g, dtype=t.dtype, copy=True)
                else:
                    buf *= mom
                    buf += g
                g = buf
            np.subtract(t, lr * g, out=t, casting="unsafe")

    def _step_lowp(self, i, t, g, lr, mom, wd):
        """A float16/bfloat16 parameter: the update is computed in float32 from the widened parameter and a
        float32 grad (momentum buffer float32), and the new value is rounded once to the parameter's dtype
        (nearest even, lc.cast)."""
        t32 = t.view(np.ndarray).astype(np.float32)
        g = _f32(g).astype(np.float32, copy=False)
        if wd:
            g = g + np.float32(wd) * t32
        if mom:
            buf = self._bufs[i]
            if buf is None:
                buf = self._bufs[i] = np.array(g, dtype=np.float32, copy=True)
            else:
                buf *= np.float32(mom)
                buf += g
            g = buf
        new = t32 - np.float32(lr) * g
        np.copyto(t.view(np.ndarray), _dtypes.cast(new, t.dtype))

    def state_dict(self):
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "momentum_buffers": [None if b is None else b.copy() for b in self._bufs]}
