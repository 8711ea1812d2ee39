"""Checkpoint IO v1 / v1.1 (seed section 26; docs/python_api.md "Checkpoints"): round trips, the file
format as plain NumPy/zip sees it, strict and non-strict key matching, model class checks, metadata
rules, atomic writes, and refusal of truncated, corrupt, foreign and mismatched files (every refusal is a
ValueError naming the path, and the target module stays byte-identical). No pickle is ever loaded.
Spec: python/lightning_core/checkpoint.py."""
import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from lightning_core import checkpoint as ckpt
from lightning_core.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
    save_model_checkpoint,
)

# ---- small fake modules (the module protocol: state_dict / load_state_dict) ---------------------------


class FakeModule:
    """Parameters in an ordered dict; state_dict returns live references (the strictest case for the
    loader: it must not mutate them), load_state_dict validates everything, then copies (atomic)."""

    def __init__(self, params):
        self.params = OrderedDict((k, np.array(v)) for k, v in params.items())

    def state_dict(self):
        return OrderedDict(self.params)

    def load_state_dict(self, sd, strict=True):
        if strict and set(sd) != set(self.params):
            raise ValueError(f"keys differ: {sorted(set(sd) ^ set(self.params))}")
        for k, v in sd.items():
            if k in self.params and (v.shape != self.params[k].shape or v.dtype != self.params[k].dtype):
                raise ValueError(f"{k}: shape/dtype")
        for k, v in sd.items():
            if k in self.params:
                np.copyto(self.params[k], v)


class FakeMLP(FakeModule):
    def __init__(self, rng, n_in=8, hidden=16, n_out=4, dtype=np.float32):
        super().__init__(OrderedDict([
            ("fc1.weight", rng.standard_normal((n_in, hidden)).astype(dtype)),
            ("fc1.bias", rng.standard_normal(hidden).astype(dtype)),
            ("fc2.weight", rng.standard_normal((hidden, n_out)).astype(dtype)),
            ("fc2.bias", rng.standard_normal(n_out).astype(dtype)),
        ]))


class OtherMLP(FakeMLP):
    pass


class NaiveModule(FakeModule):
    """A foreign module whose load_state_dict writes in place, key by key, with no checks at all."""

    def load_state_dict(self, sd, strict=True):
        for k, v in sd.items():
            self.params[k][...] = v


class HalfwayFailModule(FakeModule):
    """load_state_dict writes the first tensor, then raises (the first call only)."""

    calls = 0

    def load_state_dict(self, sd, strict=True):
        type(self).calls += 1
        first = True
        for k, v in sd.items():
            self.params[k][...] = v
            if first and type(self).calls == 1:
                raise RuntimeError("device lost halfway")
            first = False


def snapshot(module):
    return OrderedDict((k, np.array(v, copy=True)) for k, v in module.state_dict().items())


def assert_state_identical(module, snap):
    now = module.state_dict()
    assert list(now) == list(snap)
    for k, v in snap.items():
        assert now[k].dtype == v.dtype and now[k].shape == v.shape, k
        assert np.array_equal(now[k], v) and now[k].tobytes() == v.tobytes(), k


def scrambled(rng, module):
    """A same-shaped module with different values (the target of the corrupt-file loads)."""
    return FakeModule(OrderedDict((k, rng.standard_normal(v.shape).astype(v.dtype))
                                  for k, v in module.state_dict().items()))


def rewrite_npz(src, dst, replace=None, drop=(), add=None, meta=None):
    """Copies the zip ``src`` to ``dst`` member by member (all stored), replacing/dropping/adding raw
    member bytes; ``meta`` (a dict, str or bytes) replaces __lc_meta__.npy."""
    replace = dict(replace or {})
    if meta is not None:
        if isinstance(meta, dict):
            meta = json.dumps(meta)
        if isinstance(meta, str):
            meta = meta.encode("utf-8")
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.frombuffer(meta, dtype=np.uint8))
        replace["__lc_meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)))
        for name, data in (add or {}).items():
            zout.writestr(name, data)


def npy_bytes(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def read_meta(path):
    with np.load(path, allow_pickle=False) as z:
        return json.loads(bytes(z["__lc_meta__"]).decode("utf-8"))


# ---- round trips ------------------------------------------------------------------------------------

@pytest.mark.parametrize("save,load,version", [
    (save_checkpoint, load_checkpoint, "1"),
    (save_model_checkpoint, load_model_checkpoint, "1.1"),
])
def test_round_trip(tmp_path, rng, save, load, version):
    m = FakeMLP(rng)
    ref = snapshot(m)
    path = tmp_path / "m.npz"
    assert save(path, m, metadata={"kind": "mlp", "step": 7, "lr": 0.05, "tags": ["a", "b"]}) == str(path)
    for v in m.params.values():
        v.fill(0.0)
    info = load(str(path), into=m, strict=True)
    assert_state_identical(m, ref)
    assert info["format"] == "lightning_core.checkpoint"
    assert info["format_version"] == version
    assert info["metadata"] == {"kind": "mlp", "step": 7, "lr": 0.05, "tags": ["a", "b"]}
    assert info["missing"] == [] and info["unexpected"] == []
    assert info["loaded"] == list(ref)
    assert info["strict"] is True
    assert info["library_version"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_dtypes_and_odd_shapes(tmp_path, rng, dtype):
    m = FakeModule(OrderedDict([
        ("scalar", np.array(rng.standard_normal(), dtype=dtype)),
        ("empty", np.zeros((0, 3), dtype=dtype)),
        ("w", rng.standard_normal((3, 5, 2)).astype(dtype)),
        ("col", np.asfortranarray(rng.standard_normal((4, 6)).astype(dtype))),
        ("big_endian", rng.standard_normal(5).astype(np.dtype(dtype).newbyteorder(">"))),
    ]))
    ref = OrderedDict((k, np.array(v, copy=True)) for k, v in m.params.items())
    for save, load in ((save_checkpoint, load_checkpoint), (save_model_checkpoint, load_model_checkpoint)):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, m)
        for k, v in m.params.items():
            v[...] = 0
        load(path, into=m)
        for k, v in ref.items():
            assert np.array_equal(m.params[k], v) and m.params[k].shape == v.shape


def test_file_is_plain_uncompressed_npz(tmp_path, rng):
    m = FakeMLP(rng)
    path = tmp_path / "m.npz"
    save_model_checkpoint(path, m, metadata={"kind": "tiny"})
    with zipfile.ZipFile(path) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        names = set(zf.namelist())
    assert names == {"__lc_meta__.npy", "fc1.weight.npy", "fc1.bias.npy", "fc2.weight.npy", "fc2.bias.npy"}
    with np.load(path, allow_pickle=False) as z:
        for k, v in m.params.items():
            assert np.array_equal(z[k], v)
        assert z["__lc_meta__"].dtype == np.uint8 and z["__lc_meta__"].ndim == 1
    meta = read_meta(path)
    assert meta["format"] == ckpt.FORMAT_NAME == "lightning_core.checkpoint"
    assert meta["format_version"] == "1.1" and ckpt.SUPPORTED_VERSIONS == ("1", "1.1", "1.2")
    assert meta["model_class"] == "FakeMLP" and meta["checksum"] == "sha256"
    assert meta["metadata"] == {"kind": "tiny"}
    assert [e["name"] for e in meta["manifest"]] == list(m.params)
    e = meta["manifest"][0]
    assert e["shape"] == [8, 16] and e["dtype"] == "<f4" and e["nbytes"] == 8 * 16 * 4
    import hashlib
    assert e["sha256"] == hashlib.sha256(m.params["fc1.weight"].astype("<f4").tobytes()).hexdigest()

    save_checkpoint(tmp_path / "v1.npz", m)
    meta1 = read_meta(tmp_path / "v1.npz")
    assert meta1["format_version"] == "1" and meta1["tensors"] == list(m.params)
    assert "manifest" not in meta1 and "model_class" not in meta1


def test_names_are_escaped_and_round_trip(tmp_path, rng):
    names = ["layers.0.attn/q_proj", "%41", "a b", "ünï.cödé", "x.npy", "..", "__lc", "_lc_meta__", "-"]
    m = FakeModule(OrderedDict((n, rng.standard_normal(i + 1).astype(np.float32)) for i, n in enumerate(names)))
    ref = snapshot(m)
    path = tmp_path / "names.npz"
    save_model_checkpoint(path, m)
    with zipfile.ZipFile(path) as zf:
        members = zf.namelist()
    assert all("/" not in n and " " not in n for n in members)
    assert "layers.0.attn%2Fq_proj.npy" in members and "%2541.npy" in members
    assert list(read_checkpoint_info(path)["tensors"]) == names
    for v in m.params.values():
        v.fill(1.0)
    load_model_checkpoint(path, into=m)
    assert_state_identical(m, ref)


def test_v1_file_loads_under_v11_and_v11_under_v1(tmp_path, rng):
    m = FakeMLP(rng)
    ref = snapshot(m)
    save_checkpoint(tmp_path / "v1.npz", m, metadata={"kind": "linear"})
    save_model_checkpoint(tmp_path / "v11.npz", m)
    target = scrambled(rng, m)
    info = load_model_checkpoint(tmp_path / "v1.npz", into=target, strict=True)
    assert info["format_version"] == "1" and info["model_class"] is None
    assert info["model_class_matches"] is None and info["metadata"] == {"kind": "linear"}
    assert_state_identical(target, ref)
    target = scrambled(rng, m)  # a v1.1 file through the v1 loader: the class is not checked there
    info = load_checkpoint(tmp_path / "v11.npz", into=target, strict=True)
    assert info["format_version"] == "1.1" and info["model_class"] == "FakeMLP"
    assert info["model_class_matches"] is None
    assert_state_identical(target, ref)


def test_read_checkpoint_info(tmp_path, rng):
    m = FakeMLP(rng, dtype=np.float64)
    save_model_checkpoint(tmp_path / "a.npz", m, metadata={"epoch": 3})
    info = read_checkpoint_info(tmp_path / "a.npz")
    assert info["format_version"] == "1.1" and info["model_class"] == "FakeMLP"
    assert info["model_module"] == __name__ and info["metadata"] == {"epoch": 3}
    assert info["tensors"]["fc1.weight"]["shape"] == (8, 16)
    assert info["tensors"]["fc1.weight"]["dtype"] == "float64"
    assert len(info["tensors"]["fc2.bias"]["sha256"]) == 64
    assert info["total_bytes"] == sum(v.nbytes for v in m.params.values())
    save_checkpoint(tmp_path / "b.npz", m)
    info = read_checkpoint_info(tmp_path / "b.npz")
    assert info["format_version"] == "1" and info["model_class"] is None
    assert "sha256" not in info["tensors"]["fc1.bias"]


def test_empty_module_round_trips(tmp_path):
    m = FakeModule(OrderedDict())
    save_model_checkpoint(tmp_path / "e.npz", m)
    assert load_model_checkpoint(tmp_path / "e.npz", into=m)["loaded"] == []


def test_save_takes_a_snapshot_and_returns_path(tmp_path, rng):
    m = FakeMLP(rng)
    ref = snapshot(m)
    path = save_checkpoint(Path(tmp_path) / "s.npz", m)
    assert path == str(tmp_path / "s.npz")
    m.params["fc1.weight"] += 1.0
    target = scrambled(rng, m)
    load_checkpoint(path, into=target)
    assert_state_identical(target, ref)


def test_save_overwrites_and_leaves_no_temp_files(tmp_path, rng):
    m = FakeMLP(rng)
    path = tmp_path / "m.npz"
    save_checkpoint(path, m, metadata={"v": 1})
    save_model_checkpoint(path, m, metadata={"v": 2})
    assert read_checkpoint_info(path)["metadata"] == {"v": 2}
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


# ---- metadata and state rules on save ---------------------------------------------------------------

@pytest.mark.parametrize("metadata,exc,match", [
    ({"step": np.float32(1.0)}, TypeError, r"metadata\['step'\].*float32.*\.item\(\)"),
    ({"cfg": {"layers": [1, 2, object()]}}, TypeError, r"metadata\['cfg'\]\['layers'\]\[2\]"),
    ({"s": {1, 2}}, TypeError, r"metadata\['s'\].*set"),
    ({"arr": np.zeros(2)}, TypeError, r"metadata\['arr'\].*ndarray"),
    ({3: "x"}, TypeError, r"metadata key 3"),
    ({"d": {1: "x"}}, TypeError, r"metadata\['d'\].*key 1"),
    ({"lr": float("nan")}, ValueError, r"metadata\['lr'\].*nan"),
    (["kind"], TypeError, r"metadata must be a dict"),
])
def test_bad_metadata_refused_and_nothing_written(tmp_path, rng, metadata, exc, match):
    path = tmp_path / "m.npz"
    with pytest.raises(exc, match=match):
        save_checkpoint(path, FakeMLP(rng), metadata=metadata)
    with pytest.raises(exc, match=match):
        save_model_checkpoint(path, FakeMLP(rng), metadata=metadata)
    assert os.listdir(tmp_path) == []


def test_metadata_json_normalised(tmp_path, rng):
    md = {"t": (1, 2), "nested": {"ok": True, "none": None}, "uni": "héllo ✓"}
    save_checkpoint(tmp_path / "m.npz", FakeMLP(rng), metadata=md)
    assert read_checkpoint_info(tmp_path / "m.npz")["metadata"] == {
        "t": [1, 2], "nested": {"ok": True, "none": None}, "uni": "héllo ✓"}
    assert md["t"] == (1, 2)


@pytest.mark.parametrize("name,exc,match", [
    ("__lc_meta__", ValueError, "reserved"),
    ("__lc_other", ValueError, "reserved"),
    ("", ValueError, "empty"),
    (5, TypeError, "must be str"),
    ("bad\ud800", ValueError, "UTF-8"),
])
def test_bad_tensor_names_refused(tmp_path, name, exc, match):
    m = FakeModule(OrderedDict([("ok", np.ones(2, np.float32)), (name, np.ones(2, np.float32))]))
    with pytest.raises(exc, match=match):
        save_checkpoint(tmp_path / "m.npz", m)
    assert os.listdir(tmp_path) == []


def test_non_numeric_state_refused(tmp_path):
    for bad in (np.array([object()], dtype=object), np.array(["a"]), np.zeros(2, dtype="i4,f4")):
        m = FakeModule(OrderedDict([("w", bad)]))
        with pytest.raises(TypeError, match="w"):
            save_model_checkpoint(tmp_path / "m.npz", m)
    assert os.listdir(tmp_path) == []


def test_bad_arguments(tmp_path, rng):
    m = FakeMLP(rng)
    save_checkpoint(tmp_path / "m.npz", m)
    with pytest.raises(TypeError, match="state_dict"):
        save_checkpoint(tmp_path / "x.npz", object())
    class ReadOnly:
        def state_dict(self):
            return m.state_dict()

    with pytest.raises(TypeError, match="load_state_dict"):
        load_checkpoint(tmp_path / "m.npz", into=ReadOnly())
    with pytest.raises(TypeError, match="state_dict"):
        load_checkpoint(tmp_path / "m.npz", into=OrderedDict(m.params))
    with pytest.raises(TypeError, match="strict"):
        load_checkpoint(tmp_path / "m.npz", into=m, strict="yes")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.npz", into=m)
    with pytest.raises(IsADirectoryError):
        save_checkpoint(tmp_path, m)
    with pytest.raises(FileNotFoundError):
        save_checkpoint(tmp_path / "no_such_dir" / "m.npz", m)


def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, rng, monkeypatch):
    m = FakeMLP(rng)
    path = tmp_path / "m.npz"
    save_checkpoint(path, m, metadata={"v": "old"})
    before = path.read_bytes()
    real = np.lib.format.write_array
    calls = []

    def flaky(fp, arr, *a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(fp, arr, *a, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", flaky)
    with pytest.raises(OSError, match="disk full"):
        save_model_checkpoint(path, m, metadata={"v": "new"})
    monkeypatch.setattr(np.lib.format, "write_array", real)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


# ---- strict / non-strict key matching -----------------------------------------------------------------

def _modified(module, drop=(), add=None, reshape=None, dtype=None):
    p = OrderedDict((k, np.array(v, copy=True)) for k, v in module.params.items() if k not in drop)
    for k, v in (add or {}).items():
        p[k] = v
    if reshape:
        k, shape = reshape
        p[k] = np.zeros(shape, p[k].dtype)
    if dtype:
        k, dt = dtype
        p[k] = p[k].astype(dt)
    return FakeModule(p)


@pytest.mark.parametrize("loader", [load_checkpoint, load_model_checkpoint])
@pytest.mark.parametrize("case", ["missing", "unexpected", "shape", "dtype"])
def test_strict_key_problems_leave_module_unchanged(tmp_path, rng, loader, case):
    src = FakeMLP(rng)
    path = tmp_path / "m.npz"
    save_model_checkpoint(path, src) if loader is load_model_checkpoint else save_checkpoint(path, src)
    if case == "missing":  # the module has a key the file lacks
        target = _modified(scrambled(rng, src), add={"extra.weight": np.ones(3, np.float32)})
        match = r"missing keys \['extra.weight'\]"
    elif case == "unexpected":  # the file has a key the module lacks
        target = _modified(scrambled(rng, src), drop=("fc2.bias",))
        match = r"unexpected keys \['fc2.bias'\]"
    elif case == "shape":
        target = _modified(scrambled(rng, src), reshape=("fc1.weight", (16, 8)))
        match = r"'fc1.weight': checkpoint \[8, 16\] float32, module \[16, 8\]"
    else:
        target = _modified(scrambled(rng, src), dtype=("fc2.weight", np.float64))
        match = r"'fc2.weight': checkpoint \[16, 4\] float32, module \[16, 4\] float64"
    if loader is load_model_checkpoint:
        target.__class__ = FakeMLP  # same class name, so only the key problem is reported
    before = snapshot(target)
    with pytest.raises(ValueError, match=match) as ei:
        loader(path, into=target, strict=True)
    assert str(path) in str(ei.value) and "not changed" in str(ei.value)
    assert_state_identical(target, before)
    if case in ("shape", "dtype"):  # never allowed, strict or not
        with pytest.raises(ValueError, match=match):
            loader(path, into=target, strict=False)
        assert_state_identical(target, before)


def test_non_strict_loads_the_intersection(tmp_path, rng):
    src = FakeMLP(rng)
    save_checkpoint(tmp_path / "m.npz", src)
    target = _modified(scrambled(rng, src), drop=("fc2.bias",), add={"head.w": np.full(3, 7.0, np.float32)})
    info = load_checkpoint(tmp_path / "m.npz", into=target, strict=False)
    assert info["missing"] == ["head.w"] and info["unexpected"] == ["fc2.bias"]
    assert info["loaded"] == ["fc1.weight", "fc1.bias", "fc2.weight"] and info["strict"] is False
    for k in info["loaded"]:
        assert np.array_equal(target.params[k], src.params[k])
    assert np.array_equal(target.params["head.w"], np.full(3, 7.0, np.float32))


def test_model_class_checked_by_model_loader(tmp_path, rng):
    src = FakeMLP(rng)
    save_model_checkpoint(tmp_path / "m.npz", src)
    target = scrambled(rng, src)
    target.__class__ = OtherMLP
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"model class 'FakeMLP' != 'OtherMLP'"):
        load_model_checkpoint(tmp_path / "m.npz", into=target, strict=True)
    assert_state_identical(target, before)
    info = load_model_checkpoint(tmp_path / "m.npz", into=target, strict=False)
    assert info["model_class_matches"] is False and info["model_class"] == "FakeMLP"
    assert_state_identical(target, snapshot(src))


def test_naive_foreign_module_is_protected_by_loader_checks(tmp_path, rng):
    src = FakeMLP(rng)
    save_checkpoint(tmp_path / "m.npz", src)
    target = NaiveModule(OrderedDict((k, np.zeros(v.shape, v.dtype)) for k, v in src.params.items()))
    target.params["fc2.bias"] = np.zeros(5, np.float32)  # mis-shaped: the file's fc2.bias is [4]
    before = snapshot(target)
    with pytest.raises(ValueError, match="fc2.bias"):
        load_checkpoint(tmp_path / "m.npz", into=target)
    assert_state_identical(target, before)


def test_load_state_dict_failing_halfway_is_rolled_back(tmp_path, rng):
    src = FakeMLP(rng)
    save_checkpoint(tmp_path / "m.npz", src)
    HalfwayFailModule.calls = 0
    target = HalfwayFailModule(OrderedDict((k, np.full(v.shape, 3.0, v.dtype)) for k, v in src.params.items()))
    before = snapshot(target)
    with pytest.raises(ValueError, match="device lost halfway.*put back"):
        load_checkpoint(tmp_path / "m.npz", into=target)
    assert_state_identical(target, before)


# ---- corrupt, truncated and foreign files -------------------------------------------------------------

@pytest.fixture
def saved(tmp_path, rng):
    """(path, source module, target module, target snapshot) for a v1.1 checkpoint big enough that its
    middle is tensor data."""
    src = FakeMLP(rng, n_in=24, hidden=32, n_out=8)
    path = tmp_path / "good.npz"
    save_model_checkpoint(path, src, metadata={"kind": "tiny_mlp"})
    target = FakeMLP(rng, n_in=24, hidden=32, n_out=8)
    return path, src, target, snapshot(target)


def _refused(path, target, before, match=None, loaders=(load_checkpoint, load_model_checkpoint)):
    for loader in loaders:
        with pytest.raises(ValueError, match=match) as ei:
            loader(path, into=target, strict=True)
        assert str(path) in str(ei.value)
        assert isinstance(ei.value, CheckpointError)
        assert_state_identical(target, before)
    with pytest.raises(ValueError, match=match):
        read_checkpoint_info(path)


@pytest.mark.parametrize("frac", [0.0001, 0.05, 0.25, 0.5, 0.75, 0.95, 0.999])
def test_truncated_file_refused(saved, tmp_path, frac):
    path, _, target, before = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:max(1, int(len(data) * frac))])
    _refused(cut, target, before)


def test_every_truncation_refused(saved, tmp_path):
    path, _, target, before = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    for n in list(range(1, len(data), max(1, len(data) // 400))) + [len(data) - k for k in range(1, 30)]:
        cut.write_bytes(data[:n])
        with pytest.raises(ValueError):
            load_model_checkpoint(cut, into=target)
    assert_state_identical(target, before)


@pytest.mark.parametrize("where", [0.3, 0.5, 0.7])
def test_flipped_data_byte_refused(saved, tmp_path, where):
    path, _, target, before = saved
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    bad = tmp_path / "flip.npz"
    bad.write_bytes(bytes(data))
    _refused(bad, target, before)


@pytest.mark.parametrize("version", ["1", "1.1"])
def test_any_single_byte_flip_is_refused_or_harmless(tmp_path, rng, version):
    """Flips every byte of a small checkpoint in turn: each load either raises ValueError and leaves the
    module unchanged, or (a byte zip does not check, e.g. a timestamp) loads exactly the saved values."""
    src = FakeMLP(rng, n_in=3, hidden=4, n_out=2)
    path = tmp_path / "small.npz"
    (save_checkpoint if version == "1" else save_model_checkpoint)(path, src, metadata={"k": "v"})
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    target = scrambled(rng, src)
    target.__class__ = FakeMLP
    before = snapshot(target)
    refused = 0
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        try:
            load_model_checkpoint(bad, into=target)
        except ValueError:
            refused += 1
            assert_state_identical(target, before)
        else:
            assert_state_identical(target, snapshot(src))
            load_model_checkpoint(path, into=target)  # idempotent; then back to the scrambled values
            target.load_state_dict(before)
    assert refused > len(data) * 0.7  # ~80% here; the rest are local-header fields, times, attributes


def test_same_size_data_change_caught_by_checksum(saved, tmp_path):
    """A tensor replaced by other values of the same shape, with a valid zip CRC: only the v1.1 manifest
    checksum can tell."""
    path, src, target, before = saved
    bad = tmp_path / "swapped.npz"
    rewrite_npz(path, bad, replace={"fc1.bias.npy": npy_bytes(src.params["fc1.bias"][::-1].copy())})
    _refused(bad, target, before, match=r"'fc1.bias': SHA-256 mismatch")


@pytest.mark.parametrize("edit,match", [
    (lambda m: m.update(format="someone.else"), r"not a lightning_core checkpoint.*foreign format 'someone.else'"),
    (lambda m: m.pop("format"), r"foreign format None"),
    (lambda m: m.update(format_version="2"), r"format_version '2'.*newer"),
    (lambda m: m.update(format_version=1.1), r"format_version 1.1"),
    (lambda m: m.update(metadata=[1]), r"'metadata' must be a JSON object"),
    (lambda m: m["manifest"][1].update(shape=[32, 2]), r"'fc1.bias': manifest shape \[32, 2\] != stored shape \[32\]"),
    (lambda m: m["manifest"][0].update(dtype="<f8"), r"'fc1.weight': manifest dtype '<f8'"),
    (lambda m: m["manifest"][2].update(sha256="0" * 64), r"'fc2.weight': SHA-256 mismatch"),
    (lambda m: m["manifest"][2].update(nbytes=1), r"'fc2.weight': manifest nbytes"),
    (lambda m: m["manifest"].pop(), r"listed but absent \[\].*present but not listed \['fc2.bias'\]"),
    (lambda m: m["manifest"].append(dict(m["manifest"][0], name="ghost")), r"listed but absent \['ghost'\]"),
    (lambda m: m["manifest"].append(dict(m["manifest"][0])), r"names a tensor twice"),
    (lambda m: m.pop("manifest"), r"'manifest' must be a list"),
    (lambda m: m.pop("model_class"), r"'model_class' must be a string"),
    (lambda m: m.update(checksum="md5"), r"unknown checksum 'md5'"),
])
def test_edited_meta_refused(saved, tmp_path, edit, match):
    path, _, target, before = saved
    meta = read_meta(path)
    edit(meta)
    bad = tmp_path / "meta.npz"
    rewrite_npz(path, bad, meta=meta)
    _refused(bad, target, before, match=match)


def test_edited_v1_meta_refused(tmp_path, rng):
    src = FakeMLP(rng)
    path = tmp_path / "v1.npz"
    save_checkpoint(path, src)
    target = scrambled(rng, src)
    before = snapshot(target)
    meta = read_meta(path)
    meta["tensors"] = meta["tensors"][:-1]
    rewrite_npz(path, tmp_path / "a.npz", meta=meta)
    _refused(tmp_path / "a.npz", target, before, match=r"present but not listed \['fc2.bias'\]")
    meta.pop("tensors")
    rewrite_npz(path, tmp_path / "b.npz", meta=meta)
    _refused(tmp_path / "b.npz", target, before, match=r"'tensors' must be a list")
    rewrite_npz(path, tmp_path / "c.npz", drop=("fc1.weight.npy",))
    _refused(tmp_path / "c.npz", target, before, match=r"listed but absent \['fc1.weight'\]")


@pytest.mark.parametrize("meta,match", [
    (b"\xff\xfe not utf-8", r"not UTF-8 JSON"),
    ("{not json", r"not UTF-8 JSON"),
    ('{"format": NaN}', r"not UTF-8 JSON"),
    ("[1, 2, 3]", r"must be a JSON object"),
    ("", r"not UTF-8 JSON"),
])
def test_garbled_meta_refused(saved, tmp_path, meta, match):
    path, _, target, before = saved
    bad = tmp_path / "garbled.npz"
    rewrite_npz(path, bad, meta=meta)
    _refused(bad, target, before, match=match)


def test_meta_of_wrong_dtype_refused(saved, tmp_path):
    path, _, target, before = saved
    bad = tmp_path / "m.npz"
    rewrite_npz(path, bad, replace={"__lc_meta__.npy": npy_bytes(np.zeros(4, np.float32))})
    _refused(bad, target, before, match=r"__lc_meta__ must be a 1-D uint8 array")


def test_plain_npz_without_meta_refused(saved, tmp_path):
    path, src, target, before = saved
    plain = tmp_path / "plain.npz"
    np.savez(plain, **{k.replace(".", "_"): v for k, v in src.params.items()})
    _refused(plain, target, before, match=r"not a lightning_core checkpoint.*no __lc_meta__ member")
    comp = tmp_path / "comp.npz"
    np.savez_compressed(comp, w=np.ones(3))
    _refused(comp, target, before, match=r"no __lc_meta__ member")


_UNPICKLED = []


def _side_effect():
    _UNPICKLED.append("ran")
    return "boom"


class _Evil:
    def __reduce__(self):
        return (_side_effect, ())


def test_pickles_are_never_loaded(saved, tmp_path):
    path, _, target, before = saved
    _UNPICKLED.clear()
    pk = tmp_path / "state.pkl"
    with open(pk, "wb") as f:
        pickle.dump({"fc1.weight": _Evil()}, f)
    _refused(pk, target, before, match=r"not a .npz \(zip\) file: a pickle")
    # An object array inside a zip: np.savez pickles it; the loader must refuse without unpickling.
    obj = tmp_path / "obj.npz"
    rewrite_npz(path, obj, replace={"fc1.bias.npy": npy_bytes(np.array([_Evil()], dtype=object),
                                                             allow_pickle=True)})
    _refused(obj, target, before, match=r"object array")
    obj2 = tmp_path / "obj2.npz"
    np.savez(obj2, __lc_meta__=np.array([_Evil()], dtype=object))
    _refused(obj2, target, before, match=r"object array")
    assert _UNPICKLED == []


@pytest.mark.parametrize("kind", ["empty", "directory", "npy", "text", "zip_non_npy", "zip_dir_member",
                                  "reserved_member", "unescaped_member", "bad_header_size", "duplicate"])
def test_foreign_files_refused(saved, tmp_path, kind):
    path, src, target, before = saved
    bad = tmp_path / f"{kind}.npz"
    if kind == "empty":
        bad.write_bytes(b"")
        match = "the file is empty"
    elif kind == "directory":
        bad.mkdir()
        match = "it is a directory"
    elif kind == "npy":
        np.save(tmp_path / "x.npy", np.ones(3))
        bad = tmp_path / "x.npy"
        match = r"not a .npz \(zip\) file: a .npy file"
    elif kind == "text":
        bad.write_text("hello, world\n")
        match = r"not a .npz \(zip\) file: it starts with b'hell'"
    elif kind == "zip_non_npy":
        rewrite_npz(path, bad, add={"README.txt": b"hi"})
        match = r"member 'README.txt' is not a .npy array"
    elif kind == "zip_dir_member":
        rewrite_npz(path, bad, add={"sub/": b""})
        match = r"member 'sub/' is not a .npy array"
    elif kind == "reserved_member":
        rewrite_npz(path, bad, add={"__lc_extra__.npy": npy_bytes(np.ones(2))})
        match = r"unknown reserved member '__lc_extra__.npy'"
    elif kind == "unescaped_member":
        rewrite_npz(path, bad, add={"../evil.npy": npy_bytes(np.ones(2))})
        match = r"'../evil.npy' is not an escaped tensor name"
    elif kind == "bad_header_size":
        blob = npy_bytes(np.ones((4, 4), np.float32))
        blob = blob.replace(b"(4, 4)", b"(9, 9)")
        rewrite_npz(path, bad, replace={"fc1.bias.npy": blob})
        match = r"member 'fc1.bias.npy': header says \(9, 9\) float32 \(324 bytes\) but the member holds 64"
    else:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rewrite_npz(path, bad, add={"fc1.bias.npy": npy_bytes(np.ones(32, np.float32))})
        match = r"duplicate member names"
    _refused(bad, target, before, match=match)


def test_error_messages_are_clear(saved, tmp_path):
    path, _, target, _ = saved
    bad = tmp_path / "cut.npz"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"not a lightning_core checkpoint: '.*cut.npz': cannot open the zip "
                                         r"archive \(truncated or corrupt\?\): BadZipFile"):
        load_checkpoint(bad, into=target)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt lightning_core checkpoint '.*cut.npz': member 'fc1.weight.npy': "
                                         r"Bad CRC-32 \(zip directory [0-9a-f]{8}, data [0-9a-f]{8}\)"):
        load_checkpoint(bad, into=target)


# ---- the real nn modules (when lightning_core.nn is importable) ---------------------------------------

def _nn():
    nn = pytest.importorskip("lightning_core.nn")
    return nn


def test_seed_example_linear_v1(tmp_path):
    nn = _nn()
    if not hasattr(nn, "Linear"):
        pytest.skip("lightning_core.nn has no Linear yet")
    linear = nn.Linear(8, 4, bias=True)
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    ref = np.array(linear(x))
    path = str(tmp_path / "linear_v1.npz")
    save_checkpoint(path, linear, metadata={"kind": "linear"})
    linear.weight.fill(0.0)
    linear.bias.fill(0.0)
    info = load_checkpoint(path, into=linear, strict=True)
    assert info["metadata"] == {"kind": "linear"}
    assert np.allclose(ref, np.array(linear(x)), atol=1e-6, rtol=1e-6)


def test_seed_example_tiny_mlp_v11(tmp_path):
    nn = _nn()
    if not hasattr(nn, "TinyMLPModel"):
        pytest.skip("lightning_core.nn has no TinyMLPModel yet")
    model = nn.TinyMLPModel(8, 16, 4, seed=1)
    path = str(tmp_path / "tiny_mlp_v11.npz")
    save_model_checkpoint(path, model, metadata={"kind": "tiny_mlp"})
    other = nn.TinyMLPModel(8, 16, 4, seed=2)
    info = load_model_checkpoint(path, into=other, strict=True)
    assert info["model_class"] == "TinyMLPModel" and info["model_class_matches"] is True
    assert_state_identical(other, snapshot(model))
    # a v1 file of the same model loads under v1.1
    save_checkpoint(tmp_path / "v1.npz", model)
    third = nn.TinyMLPModel(8, 16, 4, seed=3)
    load_model_checkpoint(tmp_path / "v1.npz", into=third, strict=True)
    assert_state_identical(third, snapshot(model))
    # corrupt / mismatched files leave a real model unchanged
    before = snapshot(third)
    data = Path(path).read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        load_model_checkpoint(tmp_path / "cut.npz", into=third)
    wider = nn.TinyMLPModel(8, 32, 4, seed=4)
    save_model_checkpoint(tmp_path / "wide.npz", wider)
    with pytest.raises(ValueError, match="shape"):
        load_model_checkpoint(tmp_path / "wide.npz", into=third, strict=False)
    assert_state_identical(third, before)
