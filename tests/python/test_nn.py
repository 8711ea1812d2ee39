"""lightning_core.nn (docs/python_api.md, "nn and autograd"): forward of every module against float64 NumPy
references on awkward sizes (NaN-poisoned outputs for forward_into), on every device present; backward of
Linear/ReLU/GELU/LayerNorm/Embedding against central finite differences of the same math in float64 and
against torch when it is importable; deterministic initialisation; state_dict round trips and every
strict-mode error (module unchanged afterwards); SGD with momentum and weight decay against a hand
computation; bad arguments."""
import math

import numpy as np
import pytest

import lightning_core as lc
import lightning_core.nn as nn
from conftest import central_diff


def f64(a):
    return np.asarray(a, np.float64)



def state_equal(a, b):
    return list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


# ---- forward ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 33, 5), (33, 65, 17), (5, 300, 129)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_matches_reference(rng, rel_err, poison, device, m, k, n, bias):
    lin = nn.Linear(k, n, bias=bias, seed=int(rng.integers(1 << 30)), device=device)
    assert lin.weight.shape == (k, n) and lin.weight.dtype == np.float32 and lin.weight.flags.c_contiguous
    assert (lin.bias is not None) == bias
    x = rng.standard_normal((m, k)).astype(np.float32)
    want = f64(x) @ f64(lin.weight) + (f64(lin.bias) if bias else 0.0)
    y = lin(x)
    assert type(y) is np.ndarray and y.shape == (m, n) and y.dtype == np.float32
    assert rel_err(y, want) < 1e-5
    assert rel_err(lin.forward(x), want) < 1e-5
    out = poison((m, n))
    assert lin.forward_into(x, out) is out
    assert rel_err(out, want) < 1e-5


def test_linear_forward_is_the_fused_op(rng):
    lin = nn.Linear(6, 4, seed=3)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    assert np.array_equal(lin(x), lc.linear(x, np.array(lin.weight), np.array(lin.bias)))
    assert lc.last_dispatch()["op"] is not None and "linear" in str(lc.last_dispatch()["op"])


@pytest.mark.parametrize("shape", [(6,), (2, 3, 6), (2, 1, 2, 6)])
def test_linear_forward_other_ranks(rng, rel_err, device, shape):
    lin = nn.Linear(6, 3, seed=1, device=device)
    x = rng.standard_normal(shape).astype(np.float32)
    y = lin(x)
    assert y.shape == shape[:-1] + (3,)
    assert rel_err(y, f64(x) @ f64(lin.weight) + f64(lin.bias)) < 1e-5
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = lin.backward(g)
    assert gx.shape == shape
    g2 = f64(g).reshape(-1, 3)
    assert rel_err(gx, (g2 @ f64(lin.weight).T).reshape(shape)) < 1e-5
    assert rel_err(lin.weight.grad, f64(x).reshape(-1, 6).T @ g2) < 1e-5


def test_linear_takes_lc_tensors(rng, rel_err):
    lin = nn.Linear(5, 3, seed=2)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = lin(lc.Tensor(x))
    assert isinstance(y, lc.Tensor)
    assert rel_err(y.numpy(), f64(x) @ f64(lin.weight) + f64(lin.bias)) < 1e-5
    gx = lin.backward(lc.Tensor(np.ones((4, 3), np.float32)))
    assert rel_err(gx, np.ones((4, 3)) @ f64(lin.weight).T) < 1e-5


@pytest.mark.parametrize("shape", [(1,), (3, 17), (2, 5, 33)])
def test_relu_gelu_forward(rng, rel_err, poison, ref, device, shape):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    r = nn.ReLU(device=device)
    assert rel_err(r(x), ref.relu(x)) == 0.0
    out = poison(shape)
    assert r.forward_into(x, out) is out and rel_err(out, ref.relu(x)) == 0.0
    for approx in ("none", "tanh"):
        gm = nn.GELU(approximate=approx, device=device)
        assert rel_err(gm(x), ref.gelu(x, approx)) < 1e-5
        out = poison(shape)
        assert gm.forward_into(x, out) is out and rel_err(out, ref.gelu(x, approx)) < 1e-5


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (2, 3, 65)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_forward(rng, rel_err, poison, ref, device, shape, affine):
    d = shape[-1]
    ln = nn.LayerNorm(d, eps=1e-4, elementwise_affine=affine, device=device)
    if affine:
        assert np.array_equal(ln.weight, np.ones(d)) and np.array_equal(ln.bias, np.zeros(d))
        ln.load_state_dict({"weight": rng.standard_normal(d), "bias": rng.standard_normal(d)})
    else:
        assert ln.state_dict() == {} and ln.weight is None
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    want = ref.layer_norm(x, ln.weight if affine else None, ln.bias if affine else None, eps=1e-4)
    assert rel_err(ln(x), want) < 1e-5
    out = poison(shape)
    assert ln.forward_into(x, out) is out and rel_err(out, want) < 1e-5
    with pytest.raises(ValueError, match="LayerNorm: x"):
        ln(np.ones(shape[:-1] + (d + 1,), np.float32))


def test_embedding_forward(rng):
    emb = nn.Embedding(11, 6, seed=5)
    assert emb.weight.shape == (11, 6) and emb.weight.dtype == np.float32
    idx = rng.integers(0, 11, (3, 4))
    y = emb(idx)
    assert type(y) is np.ndarray and y.shape == (3, 4, 6) and y.dtype == np.float32
    assert np.array_equal(y, np.asarray(emb.weight)[idx])
    assert emb(np.array(10, np.uint8)).shape == (6,)
    assert emb([0, 1, 1]).shape == (3, 6)


@pytest.mark.parametrize("cfg", [
    dict(n=1, c=3, h=8, w=8, oc=4, k=3, s=1, p=1),
    dict(n=2, c=2, h=9, w=7, oc=5, k=(2, 3), s=2, p=(0, 1)),
    dict(n=1, c=1, h=5, w=5, oc=1, k=5, s=1, p=0),
])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_forward(rng, rel_err, poison, ref, device, cfg, bias):
    conv = nn.Conv2d(cfg["c"], cfg["oc"], cfg["k"], stride=cfg["s"], padding=cfg["p"], bias=bias, seed=9,
                     device=device)
    kh, kw = conv.kernel_size
    assert conv.weight.shape == (cfg["oc"], cfg["c"], kh, kw)
    assert np.abs(conv.weight).max() <= 1 / math.sqrt(cfg["c"] * kh * kw)
    x = rng.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"])).astype(np.float32)
    (sh, sw), (ph, pw) = conv.stride, conv.padding
    want = ref.conv2d(x, conv.weight, conv.bias, sh, sw, ph, pw)
    y = conv(x)
    # float32 accumulation error scales with the magnitude of the summed terms, not with the result
    # (one output of a 1-channel 5x5 conv can nearly cancel): bound the error by the terms' scale too
    scale = np.abs(x).max() * np.abs(conv.weight).sum(axis=(1, 2, 3)).max() + (np.abs(conv.bias).max() if bias else 0)
    def close(got):
        return rel_err(got, want) < 1e-5 or np.abs(got - want).max() < 1e-6 * scale

    assert y.shape == want.shape and close(y)
    out = poison(want.shape)
    assert conv.forward_into(x, out) is out and close(out)
    with pytest.raises(NotImplementedError, match="Conv2d.backward"):
        conv.backward(y)


def test_sequential_forward(rng, rel_err, ref, device):
    model = nn.Sequential(nn.Linear(9, 16, seed=1, device=device), nn.GELU(device=device),
                          nn.LayerNorm(16, device=device), nn.Linear(16, 3, seed=2, device=device),
                          nn.ReLU(device=device))
    x = rng.standard_normal((7, 9)).astype(np.float32)
    h = ref.gelu(f64(x) @ f64(model[0].weight) + f64(model[0].bias))
    h = ref.layer_norm(h, model[2].weight, model[2].bias)
    want = ref.relu(h @ f64(model[3].weight) + f64(model[3].bias))
    assert rel_err(model(x), want) < 1e-5
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"]


def test_sequential_container_api():
    a, b, c = nn.Linear(2, 3, seed=0), nn.ReLU(), nn.Linear(3, 1, seed=1)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3 and s[0] is a and s[-1] is c and list(s) == [a, b, c]
    assert s.modules == [a, b, c] and s.children() == [a, b, c]
    s.modules.append(nn.ReLU())  # a copy: the Sequential is unchanged
    assert len(s) == 3
    tail = s[1:]
    assert isinstance(tail, nn.Sequential) and tail[1] is c and list(tail.state_dict()) == ["1.weight", "1.bias"]
    assert len(list(s.parameters())) == 4
    assert s.to("auto") is s and a.device == "auto" and b.device == "auto" and c.device == "auto"
    s.append(nn.GELU())
    assert len(s) == 4 and s[3].device == "cpu"
    assert "Linear(in_features=2" in repr(s)
    with pytest.raises(TypeError, match=r"Sequential: modules\[1\]"):
        nn.Sequential(a, "relu")
    with pytest.raises(TypeError, match="Sequential.append: module"):
        s.append(np.ones(3))


# ---- backward -----------------------------------------------------------------------------------------

def _mlp_f64(x, w1, b1, w2, b2, r, act):
    h = x @ w1 + b1
    if act == "relu":
        h = np.maximum(h, 0)
    elif act == "gelu":
        h = 0.5 * h * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))
    elif act == "gelu_tanh":
        h = 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
    return float(np.sum((h @ w2 + b2) * r))


@pytest.mark.parametrize("act", ["relu", "gelu", "gelu_tanh", None])
def test_sequential_backward_vs_finite_differences(rng, rel_err, device, act):
    k, hdim, n, m = 5, 7, 3, 6
    mods = [nn.Linear(k, hdim, seed=11, device=device)]
    if act == "relu":
        mods.append(nn.ReLU(device=device))
    elif act is not None:
        mods.append(nn.GELU("tanh" if act == "gelu_tanh" else "none", device=device))
    mods.append(nn.Linear(hdim, n, seed=12, device=device))
    model = nn.Sequential(*mods)
    x = rng.standard_normal((m, k)).astype(np.float32)
    r = rng.standard_normal((m, n)).astype(np.float32)  # loss = sum(y * r), so dL/dy = r
    y = model(x)
    gx = model.backward(r)
    first, last = model[0], model[-1]
    xs = [f64(x), f64(first.weight), f64(first.bias), f64(last.weight), f64(last.bias)]
    fd = central_diff(lambda: _mlp_f64(*xs, f64(r), act), xs)
    got = [gx, first.weight.grad, first.bias.grad, last.weight.grad, last.bias.grad]
    for name, g, want in zip(["x", "w1", "b1", "w2", "b2"], got, fd):
        assert g.dtype == np.float32 and g.shape == want.shape, name
        assert rel_err(g, want) < 1e-5, name
    assert y.shape == (m, n)


def test_linear_backward_accumulates_and_zero_grad(rng):
    lin = nn.Linear(4, 3, seed=0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    g = rng.standard_normal((5, 3)).astype(np.float32)
    lin(x)
    lin.backward(g)
    w1, b1 = lin.weight.grad.copy(), lin.bias.grad.copy()
    lin(x)
    lin.backward(g)
    np.testing.assert_allclose(lin.weight.grad, 2 * w1, rtol=1e-6)
    np.testing.assert_allclose(lin.bias.grad, 2 * b1, rtol=1e-6)
    lin.zero_grad(set_to_none=False)
    assert np.array_equal(lin.weight.grad, np.zeros((4, 3)))
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_linear_without_bias_backward(rng, rel_err):
    lin = nn.Linear(4, 2, bias=False, seed=0)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    lin(x)
    g = rng.standard_normal((3, 2)).astype(np.float32)
    lin.backward(g)
    assert rel_err(lin.weight.grad, f64(x).T @ f64(g)) < 1e-6
    assert list(lin.state_dict()) == ["weight"]


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_backward_vs_finite_differences(rng, rel_err, affine):
    d = 6
    ln = nn.LayerNorm(d, eps=1e-3, elementwise_affine=affine)
    if affine:
        ln.load_state_dict({"weight": rng.standard_normal(d), "bias": rng.standard_normal(d)})
    x = rng.standard_normal((2, 3, d)).astype(np.float32)
    r = rng.standard_normal((2, 3, d))
    ln(x)
    gx = ln.backward(r.astype(np.float32))
    xs = [f64(x)] + ([f64(ln.weight), f64(ln.bias)] if affine else [])

    def f():
        xx = xs[0]
        mu = xx.mean(-1, keepdims=True)
        y = (xx - mu) / np.sqrt(((xx - mu) ** 2).mean(-1, keepdims=True) + 1e-3)
        if affine:
            y = y * xs[1] + xs[2]
        return float(np.sum(y * r.astype(np.float32)))

    fd = central_diff(f, xs)
    assert rel_err(gx, fd[0]) < 1e-5
    if affine:
        assert rel_err(ln.weight.grad, fd[1]) < 1e-5
        assert rel_err(ln.bias.grad, fd[2]) < 1e-5


def test_in_place_forward_into_keeps_the_input_for_backward(rng, rel_err):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    g = rng.standard_normal((3, 5)).astype(np.float32)
    for make in (lambda: nn.GELU(), lambda: nn.GELU("tanh"), lambda: nn.LayerNorm(5), lambda: nn.ReLU()):
        a, b = make(), make()
        a(x)
        want = a.backward(g)
        buf = x.copy()
        assert b.forward_into(buf, buf) is buf  # in place: buf now holds the output
        assert rel_err(b.backward(g), want) < 1e-6


def test_embedding_backward(rng):
    emb = nn.Embedding(5, 3, seed=1)
    idx = np.array([[0, 2], [2, 4]])
    emb(idx)
    g = rng.standard_normal((2, 2, 3)).astype(np.float32)
    assert emb.backward(g) is None
    want = np.zeros((5, 3))
    want[0] = g[0, 0]
    want[2] = g[0, 1] + g[1, 0]
    want[4] = g[1, 1]
    np.testing.assert_allclose(emb.weight.grad, want, rtol=1e-6)
    with pytest.raises(ValueError, match="Embedding.backward: grad_out"):
        emb.backward(np.ones((2, 3), np.float32))


def test_backward_matches_torch(rng):
    torch = pytest.importorskip("torch")
    model = nn.Sequential(nn.Linear(6, 8, seed=1), nn.GELU(), nn.Linear(8, 5, seed=2), nn.ReLU(),
                          nn.Linear(5, 4, seed=3), nn.LayerNorm(4))
    model[5].load_state_dict({"weight": rng.standard_normal(4), "bias": rng.standard_normal(4)})
    x = rng.standard_normal((7, 6)).astype(np.float32)
    r = rng.standard_normal((7, 4)).astype(np.float32)
    y = model(x)
    gx = model.backward(r)

    tm = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.Linear(8, 5), torch.nn.ReLU(),
                             torch.nn.Linear(5, 4), torch.nn.LayerNorm(4)).double()
    with torch.no_grad():
        for i in (0, 2, 4):  # our weight is [in, out]: torch's is its transpose
            tm[i].weight.copy_(torch.from_numpy(f64(model[i].weight).T))
            tm[i].bias.copy_(torch.from_numpy(f64(model[i].bias)))
        tm[5].weight.copy_(torch.from_numpy(f64(model[5].weight)))
        tm[5].bias.copy_(torch.from_numpy(f64(model[5].bias)))
    tx = torch.from_numpy(f64(x)).requires_grad_(True)
    ty = tm(tx)
    (ty * torch.from_numpy(f64(r))).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for i in (0, 2, 4):
        np.testing.assert_allclose(model[i].weight.grad, tm[i].weight.grad.numpy().T, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model[i].bias.grad, tm[i].bias.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model[5].weight.grad, tm[5].weight.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_backward_errors(rng):
    for m in (nn.Linear(3, 2), nn.ReLU(), nn.GELU(), nn.LayerNorm(3), nn.Embedding(3, 2)):
        with pytest.raises(RuntimeError, match=f"{type(m).__name__}.backward: .*forward first"):
            m.backward(np.ones((2, 2), np.float32))
    lin = nn.Linear(3, 2)
    lin(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"Linear.backward: grad_out: expected shape \(4, 2\)"):
        lin.backward(np.ones((4, 3), np.float32))
    relu = nn.ReLU()
    relu(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="ReLU.backward: grad_out"):
        relu.backward(np.ones((3, 2), np.float32))
    with pytest.raises(NotImplementedError, match="Sequential|Module|backward"):
        nn.Sequential(nn.Conv2d(1, 1, 1)).backward(np.ones((1, 1, 1, 1), np.float32))


# ---- initialisation ---------------------------------------------------------------------------------

def test_deterministic_init():
    for make in (lambda s: nn.Linear(13, 7, seed=s), lambda s: nn.Conv2d(3, 4, 3, seed=s),
                 lambda s: nn.Embedding(9, 4, seed=s), lambda s: nn.TinyMLPModel(8, 16, 4, seed=s)):
        a, b, c = make(123), make(123), make(124)
        assert state_equal(a.state_dict(), b.state_dict())
        assert not any(np.array_equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())
    lin = nn.Linear(13, 7, seed=5)
    bound = 1 / math.sqrt(13)
    assert np.abs(lin.weight).max() <= bound and np.abs(lin.bias).max() <= bound
    assert np.abs(lin.weight).max() > 0.5 * bound and lin.weight.std() > 0.2 * bound  # not degenerate
    rng = np.random.default_rng(7)
    w = rng.uniform(-bound, bound, (13, 7)).astype(np.float32)
    assert np.array_equal(nn.Linear(13, 7, seed=7).weight, w)  # documented draw order: weight first
    # a Generator is used as is (successive layers draw successive numbers)
    g1, g2 = np.random.default_rng(1), np.random.default_rng(1)
    assert np.array_equal(nn.Linear(3, 3, seed=g1).weight, nn.Linear(3, 3, seed=g2).weight)
    assert not np.array_equal(nn.Linear(3, 3, seed=g1).weight, nn.Linear(3, 3, seed=1).weight)
    # seed=None draws fresh entropy
    assert not np.array_equal(nn.Linear(8, 8).weight, nn.Linear(8, 8).weight)


def test_parameter_semantics():
    lin = nn.Linear(3, 2, seed=0)
    w = lin.weight
    assert isinstance(w, nn.Parameter) and isinstance(w, np.ndarray) and w.grad is None
    w -= 1.0
    assert lin.weight is w and isinstance(w, nn.Parameter)
    assert type(w * 2) is np.ndarray and type(w + w) is np.ndarray
    assert isinstance(w.sum(), np.floating)
    p = nn.Parameter([[1, 2], [3, 4]])
    assert p.dtype == np.float32 and p.flags.c_contiguous and p.grad is None
    assert repr(p).startswith("Parameter(")
    import pickle
    q = pickle.loads(pickle.dumps(p))
    assert isinstance(q, nn.Parameter) and np.array_equal(q, p)


# ---- state_dict --------------------------------------------------------------------------------------

def test_state_dict_round_trip(rng):
    a = nn.TinyMLPModel(8, 16, 4, seed=1)
    b = nn.TinyMLPModel(8, 16, 4, seed=2)
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert sd["0.weight"].shape == (8, 16) and sd["2.weight"].shape == (16, 4)
    assert all(type(v) is np.ndarray and v.dtype == np.float32 for v in sd.values())
    sd["0.weight"][0, 0] = 99.0  # a copy: the model is unchanged
    assert a[0].weight[0, 0] != 99.0
    sd = a.state_dict()
    w_obj = b[0].weight
    res = b.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert b[0].weight is w_obj  # loaded in place
    assert state_equal(a.state_dict(), b.state_dict())
    x = rng.standard_normal((5, 8)).astype(np.float32)
    assert np.array_equal(a(x), b(x))
    # float64 / int values and lc tensors are converted to float32
    b.load_state_dict({k: f64(v) for k, v in sd.items()})
    assert state_equal(a.state_dict(), b.state_dict())
    lin = nn.Linear(2, 2, seed=0)
    lin.load_state_dict({"weight": lc.Tensor(np.eye(2, dtype=np.float32)), "bias": np.array([1, 2])})
    assert np.array_equal(lin.weight, np.eye(2)) and np.array_equal(lin.bias, [1.0, 2.0])


def test_seed_readme_checkpoint_example(rng):
    # seed README section 26, the model checkpoint half (save/load through state_dict)
    linear = nn.Linear(8, 4, bias=True)
    x = rng.standard_normal((2, 8)).astype(np.float32)
    ref = linear(x)
    sd = linear.state_dict()
    linear.weight.fill(0.0)
    linear.bias.fill(0.0)
    assert not np.allclose(linear(x), ref)
    linear.load_state_dict(sd, strict=True)
    assert np.allclose(ref, linear(x), atol=1e-6, rtol=1e-6)
    model = nn.TinyMLPModel(8, 16, 4)
    model.load_state_dict(model.state_dict(), strict=True)


@pytest.mark.parametrize("case", ["missing", "unexpected", "misshaped", "mixed"])
def test_load_state_dict_strict_errors_leave_module_unchanged(case):
    m = nn.TinyMLPModel(3, 4, 2, seed=1)
    before = m.state_dict()
    sd = nn.TinyMLPModel(3, 4, 2, seed=2).state_dict()
    if case == "missing":
        del sd["2.bias"]
        keys = ["2.bias"]
    elif case == "unexpected":
        sd["1.weight"] = np.ones(3, np.float32)
        keys = ["1.weight"]
    elif case == "misshaped":
        sd["2.weight"] = np.ones((2, 4), np.float32)  # torch's [out, in] layout: rejected
        keys = ["2.weight"]
    else:
        del sd["0.bias"]
        sd["extra"] = np.ones(1)
        sd["0.weight"] = np.ones((3, 5))
        keys = ["0.bias", "extra", "0.weight"]
    with pytest.raises(ValueError) as ei:
        m.load_state_dict(sd)
    for k in keys:
        assert repr(k) in str(ei.value) or k in str(ei.value)
    assert "nothing was loaded" in str(ei.value)
    assert state_equal(m.state_dict(), before)


def test_load_state_dict_non_strict_and_type_errors():
    m = nn.TinyMLPModel(3, 4, 2, seed=1)
    before = m.state_dict()
    src = nn.TinyMLPModel(3, 4, 2, seed=2).state_dict()
    sd = {"0.weight": src["0.weight"], "bogus": np.ones(2)}
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["0.bias", "2.weight", "2.bias"] and res.unexpected_keys == ["bogus"]
    assert np.array_equal(m[0].weight, src["0.weight"]) and np.array_equal(m[2].bias, before["2.bias"])
    before = m.state_dict()
    with pytest.raises(ValueError, match="'0.bias': expected shape"):
        m.load_state_dict({"0.bias": np.ones(5)}, strict=False)  # shape errors even when not strict
    with pytest.raises(TypeError, match="'0.bias'"):
        m.load_state_dict(dict(src, **{"0.bias": "zeros"}))
    with pytest.raises(TypeError, match="'0.bias'"):
        m.load_state_dict(dict(src, **{"0.bias": np.ones(4, complex)}))
    with pytest.raises(TypeError, match="state_dict: expected a mapping"):
        m.load_state_dict([("0.weight", src["0.weight"])])
    with pytest.raises(TypeError, match="strict"):
        m.load_state_dict(src, strict="yes")
    assert state_equal(m.state_dict(), before)


# ---- SGD ---------------------------------------------------------------------------------------------

def test_sgd_momentum_weight_decay_vs_hand_computation(rng):
    lin = nn.Linear(3, 2, seed=4)
    opt = nn.SGD(lin.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    w = f64(lin.weight)
    buf = None
    for step in range(3):
        g = rng.standard_normal((3, 2))
        opt.zero_grad()
        lin.weight.grad = g.astype(np.float32)  # bias has no grad this time: skipped
        opt.step()
        gg = f64(g.astype(np.float32)) + 0.01 * w
        buf = gg if buf is None else 0.9 * buf + gg
        w = w - 0.1 * buf
        np.testing.assert_allclose(lin.weight, w, rtol=1e-5, atol=1e-6)
    assert opt.state_dict()["momentum"] == 0.9


def test_sgd_plain_and_training_loop(rng):
    lin = nn.Linear(2, 2, seed=0)
    w0, b0 = f64(lin.weight), f64(lin.bias)
    lin.weight.grad = np.ones((2, 2), np.float32)
    lin.bias.grad = np.full(2, 2.0, np.float32)
    opt = nn.SGD(lin, lr=0.5)  # a Module is taken as its parameters()
    w_obj = lin.weight
    opt.step()
    assert lin.weight is w_obj
    np.testing.assert_allclose(lin.weight, w0 - 0.5, rtol=1e-6)
    np.testing.assert_allclose(lin.bias, b0 - 1.0, rtol=1e-6)
    opt.zero_grad()
    assert lin.weight.grad is None

    # a regression fit with forward/backward/step
    model = nn.TinyMLPModel(4, 16, 2, seed=3)
    opt = nn.SGD(model.parameters(), lr=0.05, momentum=0.5)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = (x @ rng.standard_normal((4, 2))).astype(np.float32)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        pred = model(x)
        losses.append(float(np.mean((pred - y) ** 2)))
        model.backward((2.0 / pred.size) * (pred - y))
        opt.step()
    assert losses[-1] < 0.5 * losses[0]


def test_sgd_bad_arguments():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="SGD: lr"):
        nn.SGD(lin.parameters(), lr="0.1")
    with pytest.raises(ValueError, match="SGD: lr"):
        nn.SGD(lin.parameters(), lr=-0.1)
    with pytest.raises(ValueError, match="SGD: lr"):
        nn.SGD(lin.parameters(), lr=float("nan"))
    with pytest.raises(ValueError, match="SGD: momentum"):
        nn.SGD(lin.parameters(), lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match="SGD: params: got an empty"):
        nn.SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: params\[1\]"):
        nn.SGD([lin.weight, np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match="SGD: params"):
        nn.SGD(3, lr=0.1)
    with pytest.raises(ValueError, match=r"SGD: params\[1\]: the same parameter"):
        nn.SGD([lin.weight, lin.weight], lr=0.1)
    opt = nn.SGD(lin.parameters(), lr=0.1)
    lin.weight.grad = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"SGD.step: params\[0\].grad"):
        opt.step()


# ---- bad arguments -------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,exc,pattern", [
    (lambda: nn.Linear(0, 3), ValueError, "Linear: in_features"),
    (lambda: nn.Linear(3, -1), ValueError, "Linear: out_features"),
    (lambda: nn.Linear(2.0, 3), TypeError, "Linear: in_features"),
    (lambda: nn.Linear(True, 3), TypeError, "Linear: in_features"),
    (lambda: nn.Linear(2**70, 4), ValueError, "Linear: in_features: expected an int >= 1 and <= 2147483647"),
    (lambda: nn.Linear(2, 3, bias="yes"), TypeError, "Linear: bias"),
    (lambda: nn.Linear(2, 3, seed="x"), TypeError, "Linear: seed"),
    (lambda: nn.Linear(2, 3, seed=-1), ValueError, "Linear: seed"),
    (lambda: nn.Linear(2, 3, device="gpu"), ValueError, "Linear: device"),
    (lambda: nn.Linear(2, 3, device=None), TypeError, "Linear: device"),
    (lambda: nn.ReLU(device=0), TypeError, "ReLU: device"),
    (lambda: nn.GELU(approximate="fast"), ValueError, "GELU: approximate"),
    (lambda: nn.GELU(approximate=None), TypeError, "GELU: approximate"),
    (lambda: nn.LayerNorm(0), ValueError, "LayerNorm: normalized_shape"),
    (lambda: nn.LayerNorm((2, 3)), ValueError, "LayerNorm: normalized_shape"),
    (lambda: nn.LayerNorm(4, eps=0.0), ValueError, "LayerNorm: eps"),
    (lambda: nn.LayerNorm(4, eps="1e-5"), TypeError, "LayerNorm: eps"),
    (lambda: nn.LayerNorm(4, elementwise_affine=1), TypeError, "LayerNorm: elementwise_affine"),
    (lambda: nn.Embedding(0, 3), ValueError, "Embedding: num_embeddings"),
    (lambda: nn.Embedding(3, 2.5), TypeError, "Embedding: embedding_dim"),
    (lambda: nn.Conv2d(1, 1, (1, 2, 3)), ValueError, "Conv2d: kernel_size"),
    (lambda: nn.Conv2d(1, 1, 3, stride=0), ValueError, "Conv2d: stride"),
    (lambda: nn.Conv2d(1, 1, 3, padding=-1), ValueError, "Conv2d: padding"),
    (lambda: nn.Conv2d(1, 1, "3"), TypeError, "Conv2d: kernel_size"),
    (lambda: nn.TinyMLPModel(3, 0, 2), ValueError, "TinyMLPModel: hidden_features"),
    (lambda: nn.TinyMLPModel(3, 4, 2, device="tpu"), ValueError, "TinyMLPModel: device"),
    (lambda: nn.Linear(2, 2).to("gpu"), ValueError, "Linear.to: device"),
], ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", None) if isinstance(v, type) else None)
def test_bad_constructor_arguments(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_bad_forward_inputs():
    lin = nn.Linear(4, 3, seed=0)
    with pytest.raises(ValueError, match="linear: w"):
        lin(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError):
        lin(np.ones((2, 3, 5), np.float32))
    with pytest.raises(TypeError, match="linear: x"):
        lin([[1.0, 2.0, 3.0, 4.0]])
    out = np.full((2, 2), np.nan, np.float32)
    with pytest.raises(ValueError):
        lin.forward_into(np.ones((2, 4), np.float32), out)
    assert np.isnan(out).all()  # a refused call writes nothing
    emb = nn.Embedding(4, 2)
    with pytest.raises(TypeError, match="Embedding: indices"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"Embedding: indices: .*\[0, 4\), got 4"):
        emb(np.array([0, 4]))
    with pytest.raises(ValueError, match="Embedding: indices"):
        emb(np.array([-1]))


def test_device_auto_and_fallback(rng, rel_err):
    # "auto" and "metal" (which falls back here) run and give the reference numbers
    x = rng.standard_normal((3, 5)).astype(np.float32)
    for dev in ("auto", "metal"):
        lin = nn.Linear(5, 2, seed=1, device=dev)
        assert rel_err(lin(x), f64(x) @ f64(lin.weight) + f64(lin.bias)) < 1e-5
