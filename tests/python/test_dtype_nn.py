"""lc.nn modules with dtype= and checkpoints of float16/bfloat16 tensors (issue 14, item 4; docs/python_api.md
"nn and autograd", "Checkpoints").

Tolerances from the unit roundoff u of the dtype (2^-8 bfloat16, 2^-11 float16): a forward op rounds its
float32-accumulated result once, so Linear is checked per element against the float64 reference of the
rounded parameters and input with |y - ref| <= u |ref| + k 2^-23 (|x| @ |w| + |b|), LayerNorm normwise
<= 2u. Checkpoints are checked bit for bit (every 16-bit pattern, NaN payloads included). Outputs written
through *_into are poisoned with NaN first.
"""
import json
import os
import zipfile

import ml_dtypes
import numpy as np
import pytest

import lightning_core as lc
from lightning_core.testing import UNIT_ROUNDOFF, lowp_matmul_excess
import lightning_core.nn as nn
from lightning_core.checkpoint import (CheckpointError, load_checkpoint, load_model_checkpoint,
                                       read_checkpoint_info, save_checkpoint, save_model_checkpoint)

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
LOWP = [pytest.param(BF16, id="bfloat16"), pytest.param(F16, id="float16")]


def _f64(a):
    return np.asarray(a).astype(np.float32).astype(np.float64)


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint16)


# ---- nn ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dt", LOWP)
def test_linear_layer_norm_forward_in_dtype(rng, dt, device):
    u = UNIT_ROUNDOFF[dt.name]
    lin = nn.Linear(24, 10, seed=3, device=device, dtype=dt)
    assert lin.weight.dtype == dt and lin.bias.dtype == dt and isinstance(lin.weight, nn.Parameter)
    ref32 = nn.Linear(24, 10, seed=3)  # the same draws, rounded once to dt (nearest even)
    assert np.array_equal(_bits(lin.weight), _bits(lc.cast(np.asarray(ref32.weight), dt)))
    x = rng.standard_normal((7, 24)).astype(np.float32).astype(dt)
    y = lin(x)
    assert y.dtype == dt
    assert lowp_matmul_excess(y, x, lin.weight, dt, bias=lin.bias) <= 1.0
    out = np.full((7, 10), np.nan, np.float32).astype(dt)
    lin.forward_into(x, out)
    assert np.array_equal(_bits(out), _bits(y))

    ln = nn.LayerNorm(10, dtype=dt.name, device=device)
    assert ln.weight.dtype == dt
    z = ln(y)
    assert z.dtype == dt
    yv = _f64(y)
    zref = (yv - yv.mean(-1, keepdims=True)) / np.sqrt(yv.var(-1, keepdims=True) + 1e-5)
    assert np.linalg.norm(_f64(z) - zref) / np.linalg.norm(zref) <= 2 * u


@pytest.mark.parametrize("dt", LOWP)
def test_other_modules_and_sequential(rng, dt):
    emb = nn.Embedding(9, 4, seed=1, dtype=dt)
    idx = np.array([[0, 8], [3, 3]])
    e = emb(idx)
    assert e.dtype == dt and np.array_equal(_bits(e), _bits(np.asarray(emb.weight)[idx]))
    conv = nn.Conv2d(2, 3, 3, padding=1, seed=2, dtype=dt)
    assert conv.weight.dtype == dt and conv.bias.dtype == dt
    xc = rng.standard_normal((1, 2, 5, 5)).astype(np.float32).astype(dt)
    yc = conv(xc)
    # every op has a 16-bit kernel now: nothing falls back to float32
    assert lc.float32_fallback_ops(dt) == ()
    assert yc.dtype == dt and yc.shape == (1, 3, 5, 5)
    model = nn.TinyMLPModel(6, 8, 3, seed=5, dtype=dt)
    assert {v.dtype for v in model.state_dict().values()} == {dt}
    y = model(rng.standard_normal((4, 6)).astype(np.float32).astype(dt))
    assert y.dtype == dt and np.all(np.isfinite(_f64(y)))
    seq = nn.Sequential(nn.Linear(6, 8, dtype=dt), nn.GELU(), nn.ReLU())
    assert seq(rng.standard_normal((2, 6)).astype(dt)).dtype == dt
    # an input of another dtype is refused by the op (no silent cast)
    with pytest.raises(TypeError, match=f"got x of dtype float32 and w of dtype {dt.name}"):
        model(rng.standard_normal((4, 6)).astype(np.float32))
    with pytest.raises(TypeError, match="Linear: dtype: expected float32, float16 or bfloat16, got float64"):
        nn.Linear(2, 2, dtype="float64")
    with pytest.raises(TypeError, match="LayerNorm: dtype"):
        nn.LayerNorm(2, dtype="int8")


@pytest.mark.parametrize("dt", LOWP)
def test_state_dict_carries_dtype_and_refuses_mismatch(rng, dt):
    a, b = nn.TinyMLPModel(4, 5, 2, seed=1, dtype=dt), nn.TinyMLPModel(4, 5, 2, seed=2, dtype=dt)
    sd = a.state_dict()
    assert all(v.dtype == dt and type(v) is np.ndarray for v in sd.values())
    b.load_state_dict(sd)
    assert all(np.array_equal(_bits(p), _bits(q)) for p, q in zip(a.parameters(), b.parameters()))
    before = [p.copy() for p in b.parameters()]
    bad = dict(sd)
    bad["2.bias"] = sd["2.bias"].astype(np.float32)
    with pytest.raises(TypeError, match=rf"'2.bias': expected dtype {dt.name}, got float32.*nothing was loaded"):
        b.load_state_dict(bad)
    f32 = nn.TinyMLPModel(4, 5, 2, seed=2)
    with pytest.raises(TypeError, match=rf"'0.weight': expected dtype float32, got {dt.name}"):
        f32.load_state_dict(sd)
    assert all(np.array_equal(_bits(p), _bits(q)) for p, q in zip(before, b.parameters()))


@pytest.mark.parametrize("dt", LOWP)
def test_backward_float32_and_sgd_rounds_once(rng, dt):
    model = nn.Sequential(nn.Linear(5, 6, seed=0, dtype=dt), nn.GELU(), nn.LayerNorm(6, dtype=dt),
                          nn.Linear(6, 3, seed=1, dtype=dt))
    x = rng.standard_normal((4, 5)).astype(np.float32).astype(dt)
    model(x)
    gx = model.backward(np.ones((4, 3), np.float32))
    assert gx.dtype == np.float32
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and g.dtype == np.float32 for g in grads)
    # backward of the float32 model over the widened parameters gives the same grads up to the rounding
    # of the forward activations (each op rounds to dt; LayerNorm amplifies): normwise <= 16u
    ref = nn.Sequential(nn.Linear(5, 6), nn.GELU(), nn.LayerNorm(6), nn.Linear(6, 3))
    ref.load_state_dict({k: v.astype(np.float32) for k, v in model.state_dict().items()})
    ref(x.astype(np.float32))
    ref.backward(np.ones((4, 3), np.float32))
    for g, r in zip(grads, (p.grad for p in ref.parameters())):
        assert np.linalg.norm(g - r) <= 16 * UNIT_ROUNDOFF[dt.name] * np.linalg.norm(r)
    old = [np.asarray(p).astype(np.float32) for p in model.parameters()]
    opt = nn.SGD(model, lr=0.05, momentum=0.9, weight_decay=0.01)
    opt.step()
    for p, o, g in zip(model.parameters(), old, grads):
        assert p.dtype == dt
        g32 = g + np.float32(0.01) * o
        want = lc.cast(o - np.float32(0.05) * g32, dt)  # float32 update, rounded once
        assert np.array_equal(_bits(p), _bits(want))
    assert all(b.dtype == np.float32 for b in opt.state_dict()["momentum_buffers"])


# ---- checkpoints -------------------------------------------------------------------------------------

class _Bag:
    """A module over a dict of arrays (any dtype): state_dict copies, load_state_dict copies in."""

    def __init__(self, **arrays):
        self.arrays = arrays

    def state_dict(self):
        return {k: v.copy() for k, v in self.arrays.items()}

    def load_state_dict(self, state, strict=True):
        for k, v in state.items():
            np.copyto(self.arrays[k], v)


ALL_BITS = np.arange(65536, dtype=np.uint16)


@pytest.mark.parametrize("save", [save_checkpoint, save_model_checkpoint])
def test_checkpoint_every_16_bit_pattern_round_trips(tmp_path, save):
    src = _Bag(bf=ALL_BITS.view(BF16).reshape(256, 256).copy(), h=ALL_BITS.view(F16).copy(),
               f=np.linspace(-1, 1, 5, dtype=np.float32))
    path = save(tmp_path / "c.lc", src)
    info = read_checkpoint_info(path)
    assert info["format_version"] == "1.2"
    assert {k: v["dtype"] for k, v in info["tensors"].items()} == {"bf": "bfloat16", "h": "float16", "f": "float32"}
    assert info["tensors"]["bf"]["nbytes"] == 2 * 65536
    dst = _Bag(bf=np.zeros((256, 256), BF16), h=np.full(65536, np.nan, F16), f=np.zeros(5, np.float32))
    got = (load_model_checkpoint if save is save_model_checkpoint else load_checkpoint)(path, dst)
    assert got["format_version"] == "1.2" and got["loaded"] == ["bf", "h", "f"]
    assert np.array_equal(_bits(dst.arrays["bf"]).ravel(), ALL_BITS)   # NaN payloads and -0 included
    assert np.array_equal(_bits(dst.arrays["h"]), ALL_BITS)
    assert np.array_equal(dst.arrays["f"], src.arrays["f"])
    # the file: bfloat16 as a '<u2' member of its patterns, named in the manifest; np.load opens it
    with np.load(path, allow_pickle=False) as z:
        assert z["bf"].dtype == np.dtype("<u2") and np.array_equal(z["bf"].ravel(), ALL_BITS)
        meta = json.loads(z["__lc_meta__"].tobytes())
    entry = {e["name"]: e for e in meta["manifest"]}
    assert entry["bf"]["dtype"] == "bfloat16" and entry["h"]["dtype"] == "<f2"
    assert meta["model_class"] == ("_Bag" if save is save_model_checkpoint else None)


def test_checkpoint_float16_only_keeps_old_versions(tmp_path):
    m = _Bag(h=ALL_BITS.view(F16).copy())
    assert read_checkpoint_info(save_checkpoint(tmp_path / "a", m))["format_version"] == "1"
    assert read_checkpoint_info(save_model_checkpoint(tmp_path / "b", m))["format_version"] == "1.1"
    dst = _Bag(h=np.zeros(65536, F16))
    load_checkpoint(tmp_path / "b", dst)
    assert np.array_equal(_bits(dst.arrays["h"]), ALL_BITS)


@pytest.mark.parametrize("dt", LOWP)
def test_checkpoint_nn_module_round_trip_and_mismatch(tmp_path, dt):
    a = nn.TinyMLPModel(3, 4, 2, seed=7, dtype=dt)
    path = save_model_checkpoint(tmp_path / "m.ckpt", a, metadata={"dtype": dt.name})
    b = nn.TinyMLPModel(3, 4, 2, seed=8, dtype=dt)
    load_model_checkpoint(path, b)
    assert all(np.array_equal(_bits(p), _bits(q)) for p, q in zip(a.parameters(), b.parameters()))
    for other in (nn.TinyMLPModel(3, 4, 2, seed=9), nn.TinyMLPModel(3, 4, 2, seed=9, dtype=F16 if dt == BF16 else BF16)):
        before = [p.copy() for p in other.parameters()]
        with pytest.raises(CheckpointError, match=rf"'0.weight': checkpoint \[3, 4\] {dt.name}, module \[3, 4\] "
                                                  rf"{other.dtype}.*the module was not changed"):
            load_model_checkpoint(path, other)
        assert all(np.array_equal(_bits(p) if p.dtype.itemsize == 2 else p, _bits(q) if q.dtype.itemsize == 2 else q)
                   for p, q in zip(before, other.parameters()))


def _rewrite_meta(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "__lc_meta__.npy":
                import io
                meta = json.loads(np.load(io.BytesIO(data)).tobytes())
                edit(meta)
                buf = io.BytesIO()
                np.save(buf, np.frombuffer(json.dumps(meta).encode(), np.uint8))
                data = buf.getvalue()
            zout.writestr(info.filename, data)


def test_checkpoint_bf16_hostile_manifests(tmp_path):
    src = _Bag(w=ALL_BITS[:64].view(BF16).reshape(8, 8).copy())
    good = save_model_checkpoint(tmp_path / "good", src)
    target = _Bag(w=np.zeros((8, 8), BF16))

    def set_dtype(value, version=None):
        def edit(meta):
            meta["manifest"][0]["dtype"] = value
            if version:
                meta["format_version"] = version
        return edit

    cases = {
        "1.1 cannot name bfloat16": (set_dtype("bfloat16", "1.1"), "manifest dtype 'bfloat16'"),
        "bfloat16 as <f2": (set_dtype("<f2"), "manifest dtype '<f2' != stored dtype <u2"),
        "unknown name": (set_dtype("bfloat8"), "manifest dtype 'bfloat8'"),
    }
    for name, (edit, msg) in cases.items():
        p = tmp_path / name.replace(" ", "_")
        _rewrite_meta(good, p, edit)
        with pytest.raises(CheckpointError, match=msg):
            load_checkpoint(p, target)
        assert not _bits(target.arrays["w"]).any(), name  # nothing half-loaded
    # a bfloat16 manifest entry over a member that is not '<u2' is refused before any data is read
    with zipfile.ZipFile(good) as z:
        meta_bytes = z.read("__lc_meta__.npy")
    p = tmp_path / "f4member"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as z:
        z.writestr("__lc_meta__.npy", meta_bytes)
        import io
        buf = io.BytesIO()
        np.save(buf, np.zeros((8, 8), np.float32))
        z.writestr("w.npy", buf.getvalue())
    with pytest.raises(CheckpointError, match="needs a '<u2' member"):
        read_checkpoint_info(p)
    # a newer reader's version is refused as unsupported
    p = tmp_path / "v9"
    _rewrite_meta(good, p, lambda meta: meta.update(format_version="1.9"))
    with pytest.raises(CheckpointError, match="unsupported.*1.9"):
        load_checkpoint(p, target)
    assert os.path.getsize(good) > 0
