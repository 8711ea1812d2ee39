"""lightning_core.autograd (docs/python_api.md, "nn and autograd"): the tape's gradients (ag_matmul, ag_add,
ag_relu, ag_mse_loss and compositions) against central finite differences on a float64 tape and against
torch when it is importable, on every device present; accumulation and reuse rules; TinyAutogradMLP
(loss decreases on a fixed seed, same weights and outputs as nn.TinyMLPModel, gradients equal to nn's
backward, state_dict round trip and strict errors); bad arguments."""
import numpy as np
import pytest

import lightning_core.autograd as ag
import lightning_core.nn as nn
from conftest import central_diff
from lightning_core.autograd import Var, ag_add, ag_matmul, ag_mse_loss, ag_relu



def _mlp_loss(x, w1, b1, w2, b2, y, device):
    h = ag_relu(ag_add(ag_matmul(x, w1, device), b1, device), device)
    return ag_mse_loss(ag_add(ag_matmul(h, w2, device), b2, device), y)


# ---- gradients against finite differences (float64 tape) ----------------------------------------------

@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 2), (7, 4, 6)])
def test_matmul_add_mse_grads_vs_finite_differences(rng, rel_err, device, m, k, n):
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    c = rng.standard_normal(n)
    t = rng.standard_normal((m, n))
    A, B, C = Var(a), Var(b), Var(c)
    loss = ag_mse_loss(ag_add(ag_matmul(A, B, device), C, device), t)
    assert loss.value.shape == () and loss.value.dtype == np.float64
    assert abs(loss.item() - np.mean((a @ b + c - t) ** 2)) < 1e-12
    loss.backward()
    fd = central_diff(lambda: float(np.mean((a @ b + c - t) ** 2)), [a, b, c])
    for v, want in zip((A, B, C), fd):
        assert v.grad.shape == v.value.shape and v.grad.dtype == np.float64
        assert rel_err(v.grad, want) < 1e-7


def test_relu_and_mlp_grads_vs_finite_differences(rng, rel_err, device):
    x = rng.standard_normal((6, 4))
    y = rng.standard_normal((6, 3))
    ps = [rng.standard_normal((4, 5)), rng.standard_normal(5), rng.standard_normal((5, 3)), rng.standard_normal(3)]
    vs = [Var(p) for p in ps]
    loss = _mlp_loss(x, *vs, y, device)
    loss.backward()

    def f():
        h = np.maximum(x @ ps[0] + ps[1], 0)
        return float(np.mean((h @ ps[2] + ps[3] - y) ** 2))

    fd = central_diff(f, ps)
    for v, want in zip(vs, fd):
        assert rel_err(v.grad, want) < 1e-7
    # gradient with respect to the input and the target too
    X, Y = Var(x), Var(y)
    _mlp_loss(X, *[Var(p) for p in ps], Y, device).backward()
    fdx, fdy = central_diff(f, [x, y])
    assert rel_err(X.grad, fdx) < 1e-7 and rel_err(Y.grad, fdy) < 1e-7


def test_relu_grad_is_masked(device):
    x = Var(np.array([[-2.0, -0.5, 0.5, 3.0]]))
    r = ag_relu(x, device)
    assert np.array_equal(r.value, [[0.0, 0.0, 0.5, 3.0]])
    r.backward(np.array([[1.0, 2.0, 3.0, 4.0]]))
    assert np.array_equal(x.grad, [[0.0, 0.0, 3.0, 4.0]])


def test_add_broadcasts(rng, device):
    a = Var(rng.standard_normal((4, 3)))
    col = Var(rng.standard_normal((4, 1)))
    bias = Var(rng.standard_normal(3))
    out = ag_add(ag_add(bias, a, device), col, device)  # bias first: broadcasting either way round
    np.testing.assert_allclose(out.value, a.value + bias.value + col.value)
    g = rng.standard_normal((4, 3))
    out.backward(g)
    np.testing.assert_allclose(a.grad, g)
    np.testing.assert_allclose(bias.grad, g.sum(0))
    np.testing.assert_allclose(col.grad, g.sum(1, keepdims=True))


def test_float32_tape(rng, rel_err, device):
    a = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    A, B = Var(a), Var(b)
    loss = ag_mse_loss(ag_matmul(A, B, device), np.zeros((5, 3), np.float32))
    assert loss.value.dtype == np.float32
    loss.backward()
    assert A.grad.dtype == np.float32 and B.grad.dtype == np.float32
    g = 2 * (a.astype(np.float64) @ b) / 15
    assert rel_err(A.grad, g @ b.T.astype(np.float64)) < 1e-5
    assert rel_err(B.grad, a.T.astype(np.float64) @ g) < 1e-5


def test_grads_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    ps = [rng.standard_normal(s).astype(np.float32) for s in ((5, 7), (7,), (7, 2), (2,))]
    vs = [Var(p) for p in ps]
    loss = _mlp_loss(x, *vs, y, "cpu")
    loss.backward()
    tps = [torch.tensor(p, requires_grad=True) for p in ps]
    h = torch.relu(torch.from_numpy(x) @ tps[0] + tps[1])
    tl = torch.nn.functional.mse_loss(h @ tps[2] + tps[3], torch.from_numpy(y))
    tl.backward()
    assert abs(loss.item() - tl.item()) <= 1e-6 * abs(tl.item()) + 1e-7
    for v, tp in zip(vs, tps):
        np.testing.assert_allclose(v.grad, tp.grad.numpy(), rtol=1e-4, atol=1e-6)


# ---- tape rules -----------------------------------------------------------------------------------------

def test_reuse_and_accumulation(rng):
    a = Var(rng.standard_normal((3, 3)))
    s = ag_add(a, a)  # a used twice: grad 2
    s.backward(np.ones((3, 3)))
    assert np.array_equal(a.grad, np.full((3, 3), 2.0))
    ag_matmul(a, a).backward(np.ones((3, 3)))  # leaf grads accumulate across backward calls
    ones = np.ones((3, 3))
    np.testing.assert_allclose(a.grad, 2.0 + ones @ a.value.T + a.value.T @ ones)
    a.zero_grad()
    assert a.grad is None
    # diamond: l = mse(relu(a) + relu(a) @ I, 0); the shared node's grads add up
    b = Var(rng.standard_normal((2, 2)))
    r = ag_relu(b)
    out = ag_add(r, ag_matmul(r, np.eye(2)))
    out.backward(np.ones((2, 2)))
    np.testing.assert_allclose(b.grad, 2.0 * (b.value > 0))
    assert out.grad is not None and not out.is_leaf and b.is_leaf


def test_constants_and_requires_grad(rng):
    x = rng.standard_normal((2, 3))
    w = Var(rng.standard_normal((3, 2)))
    frozen = Var(rng.standard_normal(2), requires_grad=False)
    out = ag_add(ag_matmul(x, w), frozen)
    out.backward(np.ones((2, 2)))
    assert w.grad is not None and frozen.grad is None
    const = ag_matmul(x, rng.standard_normal((3, 2)))
    assert not const.requires_grad
    with pytest.raises(ValueError, match="does not require grad"):
        const.backward(np.ones((2, 2)))
    assert Var([1, 2]).dtype == np.float32 and Var(np.ones(2)).dtype == np.float64
    assert Var(np.ones(2, np.float16)).dtype == np.float32
    assert "Var(shape=(2,)" in repr(Var(np.ones(2), name="v"))


def test_tape_bad_arguments(rng):
    a = Var(rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match="grad: must be given"):
        ag_relu(a).backward()
    with pytest.raises(ValueError, match=r"Var.backward: grad: expected shape \(2, 3\)"):
        ag_relu(a).backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="ag_add: b"):
        ag_add(a, np.ones(2))
    with pytest.raises(ValueError, match="ag_mse_loss: target"):
        ag_mse_loss(a, np.ones((3, 2)))
    with pytest.raises(ValueError, match="matmul2d"):
        ag_matmul(a, np.ones((2, 3)))
    with pytest.raises(TypeError, match="ag_matmul: b"):
        ag_matmul(a, np.ones((3, 2), complex))
    with pytest.raises(TypeError, match="Var: value"):
        Var(np.array(["x"]))
    with pytest.raises(TypeError, match="Var: requires_grad"):
        Var(np.ones(2), requires_grad="yes")
    with pytest.raises(ValueError, match="device"):
        ag_matmul(a, np.ones((3, 2)), device="gpu")


# ---- TinyAutogradMLP -----------------------------------------------------------------------------------

def test_tiny_mlp_loss_decreases(rng, device):
    mlp = ag.TinyAutogradMLP(8, 16, 4, seed=20260411, device=device)
    x = rng.standard_normal((32, 8)).astype(np.float32)
    y = rng.standard_normal((32, 4)).astype(np.float32)
    losses = [mlp.train_step(x, y, lr=5e-2) for _ in range(20)]
    assert all(isinstance(v, float) and np.isfinite(v) for v in losses)
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.95 * losses[0]
    assert abs(losses[0] - float(np.mean((ag.TinyAutogradMLP(8, 16, 4, seed=20260411)(x) - y) ** 2))) < 1e-6


def test_tiny_mlp_seed_readme_example():
    # seed README section 26, the autograd half (verbatim apart from the module path)
    np.random.seed(26)
    train = ag.TinyAutogradMLP(8, 16, 4, seed=20260411)
    x = np.random.randn(32, 8).astype(np.float32)
    y = np.random.randn(32, 4).astype(np.float32)
    loss = train.train_step(x, y, lr=5e-2)
    assert isinstance(loss, float) and loss > 0


def test_tiny_mlp_deterministic_and_matches_nn_model(rng):
    a = ag.TinyAutogradMLP(5, 7, 3, seed=42)
    b = ag.TinyAutogradMLP(5, 7, 3, seed=42)
    c = ag.TinyAutogradMLP(5, 7, 3, seed=43)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert list(sa) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not any(np.array_equal(sa[k], sc[k]) for k in sa)
    model = nn.TinyMLPModel(5, 7, 3, seed=42)
    sm = model.state_dict()
    assert list(sm) == list(sa) and all(np.array_equal(sa[k], sm[k]) for k in sa)
    x = rng.standard_normal((9, 5)).astype(np.float32)
    np.testing.assert_allclose(a.forward(x), model(x), rtol=1e-6, atol=1e-7)
    assert [p.shape for p in a.parameters()] == [(5, 7), (7,), (7, 3), (3,)]


def test_tiny_mlp_grads_equal_nn_backward(rng, device):
    mlp = ag.TinyAutogradMLP(6, 10, 3, seed=7, device=device)
    model = nn.TinyMLPModel(6, 10, 3, seed=7, device=device)
    x = rng.standard_normal((12, 6)).astype(np.float32)
    y = rng.standard_normal((12, 3)).astype(np.float32)
    mlp.loss(x, y).backward()
    pred = model(x)
    model.backward((2.0 / pred.size) * (pred - y))
    for v, p in zip(mlp.parameters(), model.parameters()):
        np.testing.assert_allclose(v.grad, p.grad, rtol=1e-5, atol=1e-7)
    # one train_step equals one nn SGD step
    before = mlp.state_dict()
    mlp.train_step(x, y, lr=0.1)
    opt = nn.SGD(model, lr=0.1)
    opt.step()
    for k, v in mlp.state_dict().items():
        np.testing.assert_allclose(v, model.state_dict()[k], rtol=1e-5, atol=1e-7)
        assert not np.array_equal(v, before[k])


def test_nn_sgd_updates_autograd_vars(rng):
    mlp = ag.TinyAutogradMLP(3, 4, 2, seed=1)
    ref = ag.TinyAutogradMLP(3, 4, 2, seed=1)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    y = rng.standard_normal((5, 2)).astype(np.float32)
    opt = nn.SGD(mlp, lr=0.05)
    w_obj = mlp.w1.value
    opt.zero_grad()
    mlp.loss(x, y).backward()
    opt.step()
    ref.train_step(x, y, lr=0.05)
    assert mlp.w1.value is w_obj
    for k, v in mlp.state_dict().items():
        np.testing.assert_allclose(v, ref.state_dict()[k], rtol=1e-6, atol=1e-8)


def test_tiny_mlp_state_dict_round_trip_and_strict_errors(rng):
    a = ag.TinyAutogradMLP(4, 6, 2, seed=1)
    b = ag.TinyAutogradMLP(4, 6, 2, seed=2)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    b.load_state_dict(a.state_dict())
    assert np.array_equal(a(x), b(x))
    # checkpoints are interchangeable with nn.TinyMLPModel
    m = nn.TinyMLPModel(4, 6, 2, seed=3)
    m.load_state_dict(a.state_dict())
    np.testing.assert_allclose(m(x), a(x), rtol=1e-6, atol=1e-7)
    before = b.state_dict()
    sd = a.state_dict()
    del sd["2.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['2.bias'\]"):
        b.load_state_dict(sd)
    sd = dict(a.state_dict(), extra=np.ones(1))
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        b.load_state_dict(sd)
    sd = dict(a.state_dict(), **{"0.weight": np.ones((6, 4))})
    with pytest.raises(ValueError, match="'0.weight': expected shape"):
        b.load_state_dict(sd)
    assert all(np.array_equal(before[k], v) for k, v in b.state_dict().items())
    res = b.load_state_dict({"0.bias": np.zeros(6)}, strict=False)
    assert res.missing_keys == ["0.weight", "2.weight", "2.bias"]
    assert np.array_equal(b.b1.value, np.zeros(6))


def test_tiny_mlp_bad_arguments(rng):
    mlp = ag.TinyAutogradMLP(4, 6, 2, seed=1)
    x = np.ones((3, 4), np.float32)
    y = np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match="train_step: lr"):
        mlp.train_step(x, y, lr=-1.0)
    with pytest.raises(TypeError, match="train_step: lr"):
        mlp.train_step(x, y, lr="0.1")
    with pytest.raises(ValueError, match=r"train_step: x: expected shape \(batch, 4\)"):
        mlp.train_step(np.ones((3, 5), np.float32), y, lr=0.1)
    with pytest.raises(ValueError, match="train_step: y"):
        mlp.train_step(x, np.ones((3, 3), np.float32), lr=0.1)
    with pytest.raises(ValueError, match="forward: x"):
        mlp(np.ones(4, np.float32))
    with pytest.raises(ValueError, match="TinyAutogradMLP: hidden_features"):
        ag.TinyAutogradMLP(4, 0, 2)
    with pytest.raises(TypeError, match="TinyAutogradMLP: seed"):
        ag.TinyAutogradMLP(4, 3, 2, seed=1.5)
    with pytest.raises(ValueError, match="TinyAutogradMLP: device"):
        ag.TinyAutogradMLP(4, 3, 2, device="gpu")
