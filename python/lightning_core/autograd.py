"""lightning_core.autograd: the seed's autograd bootstrap (README section 18): a tiny reverse-mode tape over
NumPy arrays, with the forward math on lightning_core ops.

- ``Var(value, requires_grad=True)``: an ndarray value (float32 or float64; other real inputs become
  float32), a ``grad`` (None until ``backward`` reaches it) and the function that propagates it.
- ``ag_matmul(a, b)`` (``lc.matmul2d``: a [m,k] @ b [k,n]), ``ag_add(a, b)`` (``lc.vector_add`` for equal
  shapes; NumPy broadcasting otherwise, e.g. x [m,n] + bias [n]), ``ag_relu(x)`` (``lc.relu``) and
  ``ag_mse_loss(pred, target)`` (mean squared error, a 0-d Var). Arguments may be Vars or arrays (an
  array is a constant: no gradient). ``loss.backward()`` fills ``.grad`` of every Var that requires one;
  leaf grads accumulate across backward calls (``zero_grad()`` clears them), as in torch.
- ``TinyAutogradMLP(in, hidden, out, seed=None)``: Linear -> ReLU -> Linear on Vars, weights [in, out]
  (row-major ``x @ w``) initialised exactly as ``nn.TinyMLPModel`` with the same seed, state_dict keys
  "0.weight", "0.bias", "2.weight", "2.bias" (checkpoints load into either); ``train_step(x, y, lr)`` runs
  forward, MSE loss, backward and an SGD update and returns the loss (float, before the update).

Float64 values give a float64 tape (the lc ops compute float64 matmul/add/relu), which is what the
finite-difference tests use. Reference: docs/python_api.md ("nn and autograd").
Tests: tests/python/test_autograd.py.
"""

import math
from collections import OrderedDict

import numpy as np

from . import _C
from .nn import _check_device, _check_int, _check_real, _load_state, _rng

__all__ = ["Var", "ag_matmul", "ag_add", "ag_relu", "ag_mse_loss", "TinyAutogradMLP"]


def _as_value(who, name, v):
    a = v if isinstance(v, np.ndarray) else np.asarray(v)
    if a.dtype == np.float32 or a.dtype == np.float64:
        return a
    if a.dtype.kind in "iuf" and a.dtype != np.longdouble:
        return a.astype(np.float32)
    raise TypeError(f"{who}: {name}: expected a real-valued array (float32/float64), got "
                    f"{type(v).__name__} of dtype {a.dtype}")


class Var:
    """A node of the tape: ``value`` (ndarray), ``grad`` (ndarray or None), ``requires_grad``."""

    __slots__ = ("value", "grad", "requires_grad", "_parents", "_backward", "name")

    def __init__(self, value, requires_grad=True, name=None):
        if isinstance(value, Var):
            value = value.value
        self.value = _as_value("Var", "value", value)
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"Var: requires_grad: expected a bool, got {type(requires_grad).__name__}")
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._parents = ()
        self._backward = None
        self.name = name

    @classmethod
    def _node(cls, value, parents, backward):
        v = cls.__new__(cls)
        v.value = value
        v.grad = None
        v.requires_grad = any(p.requires_grad for p in parents)
        v._parents = parents if v.requires_grad else ()
        v._backward = backward if v.requires_grad else None
        v.name = None
        return v

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def ndim(self):
        return self.value.ndim

    @property
    def is_leaf(self):
        return self._backward is None

    def numpy(self):
        return self.value

    def item(self):
        return float(self.value)

    def zero_grad(self):
        self.grad = None

    def __repr__(self):
        tag = f" name={self.name!r}" if self.name else ""
        return f"Var(shape={self.value.shape}, dtype={self.value.dtype}, requires_grad={self.requires_grad}{tag})"

    def backward(self, grad=None):
        """Propagates d(self)/d(...) back through the tape. ``grad`` defaults to 1 for a one-element Var
        (a loss); a Var with more elements needs ``grad`` of its shape (ValueError otherwise)."""
        if not self.requires_grad:
            raise ValueError("Var.backward: this Var does not require grad (no input requires grad)")
        if grad is None:
            if self.value.size != 1:
                raise ValueError(f"Var.backward: grad: must be given for a Var of shape {self.value.shape} "
                                 "(only a one-element Var gets the implicit 1)")
            g = np.ones(self.value.shape, self.value.dtype)
        else:
            g = _as_value("Var.backward", "grad", grad)
            if g.shape != self.value.shape:
                raise ValueError(f"Var.backward: grad: expected shape {self.value.shape}, got {g.shape}")
        # Topological order (iterative DFS over the nodes that require grad).
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for p in node._parents:
                if p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
        grads = {id(self): g}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if g.dtype != node.value.dtype:
                g = g.astype(node.value.dtype)
            if node._backward is None:  # leaf: accumulate
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            node.grad = g
            for p, pg in zip(node._parents, node._backward(g)):
                if pg is None or not p.requires_grad:
                    continue
                prev = grads.get(id(p))
                grads[id(p)] = pg if prev is None else prev + pg


def _as_var(who, name, v):
    if isinstance(v, Var):
        return v
    return Var(_as_value(who, name, v), requires_grad=False)


def ag_matmul(a, b, device="cpu"):
    """a [m,k] @ b [k,n] (``lc.matmul2d``); grads: ga = g b^T, gb = a^T g."""
    A, B = _as_var("ag_matmul", "a", a), _as_var("ag_matmul", "b", b)
    value = _C.matmul2d(A.value, B.value, device)

    def backward(g):
        ga = _C.matmul2d(g, B.value.T, device) if A.requires_grad else None
        gb = _C.matmul2d(A.value.T, g, device) if B.requires_grad else None
        return ga, gb

    return Var._node(value, (A, B), backward)


def _unbroadcast(g, shape):
    """Sums g down to ``shape`` (the reverse of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def ag_add(a, b, device="cpu"):
    """a + b: ``lc.vector_add`` for equal shapes; NumPy broadcasting otherwise (x [m,n] + bias [n]: the
    bias gradient is g summed over the rows). Shapes that do not broadcast raise ValueError."""
    A, B = _as_var("ag_add", "a", a), _as_var("ag_add", "b", b)
    sa, sb = A.value.shape, B.value.shape
    if sa == sb:
        value = _C.vector_add(A.value, B.value, device)
    else:
        try:
            np.broadcast_shapes(sa, sb)
        except ValueError:
            raise ValueError(f"ag_add: b: shape {sb} does not broadcast with a's shape {sa}") from None
        value = A.value + B.value

    def backward(g):
        return (_unbroadcast(g, sa) if A.requires_grad else None,
                _unbroadcast(g, sb) if B.requires_grad else None)

    return Var._node(value, (A, B), backward)


def ag_relu(x, device="cpu"):
    """max(x, 0) (``lc.relu``); grad: g where the output is > 0."""
    X = _as_var("ag_relu", "x", x)
    value = _C.relu(X.value, device)

    def backward(g):
        return (np.where(value > 0, g, np.zeros((), g.dtype)),)

    return Var._node(value, (X,), backward)


def ag_mse_loss(pred, target):
    """mean((pred - target)^2) over all elements, a 0-d Var (accumulated in float64, returned in the
    inputs' dtype); grads: 2 (pred - target) / N and its negative for the target."""
    P, T = _as_var("ag_mse_loss", "pred", pred), _as_var("ag_mse_loss", "target", target)
    if P.value.shape != T.value.shape:
        raise ValueError(f"ag_mse_loss: target: expected shape {P.value.shape} (pred's), got {T.value.shape}")
    dt = np.result_type(P.value.dtype, T.value.dtype)
    diff = P.value.astype(np.float64) - T.value.astype(np.float64)
    n = diff.size
    value = np.asarray(np.mean(diff * diff), dtype=dt)

    def backward(g):
        gp = (diff * (2.0 * float(g) / n)).astype(dt)
        return (gp if P.requires_grad else None, -gp if T.requires_grad else None)

    return Var._node(value, (P, T), backward)


class TinyAutogradMLP:
    """Linear(in, hidden) -> ReLU -> Linear(hidden, out) on the tape. Parameters ``w1`` [in, hidden],
    ``b1`` [hidden], ``w2`` [hidden, out], ``b2`` [out] are float32 leaf Vars drawn as nn.Linear draws
    them (uniform(+-1/sqrt(fan_in)), weight then bias, both layers from one default_rng(seed))."""

    def __init__(self, in_features, hidden_features, out_features, seed=None, device="cpu"):
        who = "TinyAutogradMLP"
        self.in_features = _check_int(who, "in_features", in_features)
        self.hidden_features = _check_int(who, "hidden_features", hidden_features)
        self.out_features = _check_int(who, "out_features", out_features)
        self.device = _check_device(who, device)
        rng = _rng(who, seed)
        params = []
        for fan_in, fan_out in ((self.in_features, self.hidden_features),
                                (self.hidden_features, self.out_features)):
            bound = 1.0 / math.sqrt(fan_in)
            w = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
            b = rng.uniform(-bound, bound, (fan_out,)).astype(np.float32)
            params += [w, b]
        self.w1, self.b1, self.w2, self.b2 = (Var(p, name=n) for p, n in zip(params, ("w1", "b1", "w2", "b2")))

    def parameters(self):
        return [self.w1, self.b1, self.w2, self.b2]

    def named_parameters(self):
        return list(zip(("0.weight", "0.bias", "2.weight", "2.bias"), self.parameters()))

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def _check_x(self, x, who):
        X = _as_var(who, "x", x)
        if X.value.ndim != 2 or X.value.shape[1] != self.in_features:
            raise ValueError(f"{who}: x: expected shape (batch, {self.in_features}), got {X.value.shape}")
        return X

    def forward_var(self, x):
        """The output as a Var on the tape (x: [batch, in] array or Var)."""
        X = self._check_x(x, "TinyAutogradMLP.forward")
        h = ag_relu(ag_add(ag_matmul(X, self.w1, self.device), self.b1, self.device), self.device)
        return ag_add(ag_matmul(h, self.w2, self.device), self.b2, self.device)

    def forward(self, x):
        """The output [batch, out] as an ndarray."""
        return self.forward_var(x).value

    __call__ = forward

    def loss(self, x, y):
        """The MSE loss Var of the batch (not yet back-propagated)."""
        out = self.forward_var(x)
        Y = _as_var("TinyAutogradMLP.train_step", "y", y)
        if Y.value.shape != out.value.shape:
            raise ValueError(f"TinyAutogradMLP.train_step: y: expected shape {out.value.shape}, got {Y.value.shape}")
        return ag_mse_loss(out, Y)

    def train_step(self, x, y, lr):
        """One SGD step on the MSE loss of (x [batch, in], y [batch, out]); returns the loss before the
        update as a float."""
        lr = _check_real("TinyAutogradMLP.train_step", "lr", lr)
        self._check_x(x, "TinyAutogradMLP.train_step")
        self.zero_grad()
        loss = self.loss(x, y)
        loss.backward()
        for p in self.parameters():
            if p.grad is not None:
                np.subtract(p.value, lr * p.grad, out=p.value, casting="unsafe")
        return float(loss.value)

    def state_dict(self):
        return OrderedDict((n, np.array(p.value, dtype=np.float32, copy=True)) for n, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict=True):
        return _load_state("TinyAutogradMLP", OrderedDict((n, p.value) for n, p in self.named_parameters()),
                           state_dict, strict)
