"""Hostile checkpoint files (docs/python_api.md "Checkpoints", "Reading"): decompression bombs and zip
tricks, crafted byte by byte here, small on disk. Every one is refused with a CheckpointError (a
ValueError) naming the member or tensor, before its data is inflated: a load whose declared shapes do
not fit the module reads no tensor data, no member ever inflates past the size its zip header declares,
and peak memory stays small (measured in a subprocess with ru_maxrss). The target module is untouched.
Spec: python/lightning_core/checkpoint.py (_scan_members, _Member, _read)."""
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from collections import OrderedDict

import numpy as np
import pytest

from lightning_core import checkpoint as ckpt
from lightning_core.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_info

_STORED, _DEFLATED = 0, 8
_BOMB_FLOATS = 1 << 27  # 512 MiB of float32 zeros in ~0.5 MB of deflate


def _npy_header(shape, descr="<f4"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr)
    return buf.getvalue()


def _meta_npy(names, version="1"):
    meta = {"format": ckpt.FORMAT_NAME, "format_version": version, "library_version": "test", "metadata": {},
            "tensors": list(names)}
    return _npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def _member(name, payload, method=_STORED, usize=None, crc=None, same_as=None, local_name=None):
    """A member for _raw_zip. payload: the bytes as stored (deflated for method 8); usize/crc default to
    those of the payload (stored). same_as: index of an earlier member whose local data this directory
    entry points at (no data of its own: the overlap trick)."""
    return dict(name=name, payload=payload, method=method, usize=len(payload) if usize is None else usize,
                crc=zlib.crc32(payload) if crc is None else crc, same_as=same_as, local_name=local_name or name)


def _raw_zip(path, members):
    """Writes a zip by hand (no zip64): local headers + data, the central directory, the end record."""
    out, central, offsets = bytearray(), bytearray(), []
    for m in members:
        name = m["name"].encode()
        if m["same_as"] is not None:
            offset = offsets[m["same_as"]]
        else:
            offset = len(out)
            local = m["local_name"].encode()
            out += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, m["method"], 0, 0x21, m["crc"],
                               len(m["payload"]), m["usize"], len(local), 0) + local + m["payload"]
        offsets.append(offset)
        central += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, m["method"], 0, 0x21, m["crc"],
                               len(m["payload"]), m["usize"], len(name), 0, 0, 0, 0, 0, offset) + name
    n = len(members)
    path.write_bytes(bytes(out + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(central),
                                                       len(out), 0)))
    return path


def _deflate_zeros(prefix, nzeros, extra=b""):
    """Raw deflate of prefix + nzeros zero bytes (+ extra), built from one full-flush block of 1 MiB of
    zeros repeated (no big buffer); returns (stream, crc32 of prefix + zeros)."""
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = head.compress(prefix) + head.flush(zlib.Z_FULL_FLUSH)
    blk = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = blk.compress(bytes(1 << 20)) + blk.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream += block * (nzeros >> 20) + tail.compress(extra) + tail.flush()
    crc = zlib.crc32(prefix)
    zeros = bytes(1 << 20)
    for _ in range(nzeros >> 20):
        crc = zlib.crc32(zeros, crc)
    return stream, crc


def _bomb(path, declared_floats=_BOMB_FLOATS):
    """A valid v1 checkpoint (correct CRCs) whose tensor 'w' is declared_floats float32 zeros, deflated."""
    header = _npy_header((declared_floats,))
    stream, crc = _deflate_zeros(header, declared_floats * 4)
    return _raw_zip(path, [_member("__lc_meta__.npy", _meta_npy(["w", "b"])),
                           _member("w.npy", stream, _DEFLATED, usize=len(header) + declared_floats * 4, crc=crc),
                           _member("b.npy", _npy(np.ones(4, np.float32)))])


_PEAK = textwrap.dedent(r"""
    import json, resource, sys
    from collections import OrderedDict
    import numpy as np
    from lightning_core import checkpoint as ck

    class Target:
        loads = 0
        def __init__(self):
            self.p = OrderedDict(w=np.arange(16, dtype=np.float32).reshape(4, 4), b=np.full(4, 7, np.float32))
        def state_dict(self):
            return OrderedDict(self.p)
        def load_state_dict(self, sd, strict=True):
            type(self).loads += 1
            for k, v in sd.items():
                np.copyto(self.p[k], v)

    path, what = sys.argv[1], sys.argv[2]
    t = Target()
    before = {k: v.copy() for k, v in t.p.items()}
    peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = info = None
    try:
        if what == "info":
            r = ck.read_checkpoint_info(path)
            info = {k: [list(v["shape"]), v["dtype"]] for k, v in r["tensors"].items()}
        else:
            fn = getattr(ck, what.replace("_nonstrict", ""))
            fn(path, into=t, strict=not what.endswith("_nonstrict"))
    except Exception as e:
        err = [type(e).__name__, isinstance(e, ValueError), str(e)]
    peak1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(err=err, info=info, delta_mb=(peak1 - peak0) / 1024.0, loads=Target.loads,
                          unchanged=all(np.array_equal(t.p[k], v) for k, v in before.items()))))
""")


def _run_peak(path, what):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-c", _PEAK, str(path), what], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    path = _bomb(tmp_path_factory.mktemp("bomb") / "bomb.npz")
    assert path.stat().st_size < 1 << 20  # ~0.5 MB on disk, 512 MiB declared
    return path


@pytest.mark.parametrize("loader", ["load_checkpoint", "load_model_checkpoint"])
def test_bomb_refused_before_inflating(bomb, loader):
    r = _run_peak(bomb, loader)
    assert r["err"] is not None and r["err"][1], r
    assert "'w': checkpoint [134217728] float32, module [4, 4] float32" in r["err"][2]
    assert str(bomb) in r["err"][2] and "the module was not changed" in r["err"][2]
    assert r["delta_mb"] < 200, r
    assert r["unchanged"] and r["loads"] == 0


def test_bomb_info_streams_in_bounded_memory(bomb):
    """read_checkpoint_info validates the (valid) bomb's CRC by streaming it: bounded memory, no array."""
    r = _run_peak(bomb, "info")
    assert r["err"] is None, r
    assert r["info"] == {"w": [[_BOMB_FLOATS], "float32"], "b": [[4], "float32"]}
    assert r["delta_mb"] < 200, r


def test_bomb_as_unexpected_key_is_streamed_not_kept(tmp_path):
    """strict=False: a huge tensor the module does not have is checked (CRC) but never materialised."""
    header = _npy_header((_BOMB_FLOATS,))
    stream, crc = _deflate_zeros(header, _BOMB_FLOATS * 4)
    path = _raw_zip(tmp_path / "extra.npz", [
        _member("__lc_meta__.npy", _meta_npy(["w", "b", "huge"])),
        _member("w.npy", _npy(np.full((4, 4), 3, np.float32))), _member("b.npy", _npy(np.ones(4, np.float32))),
        _member("huge.npy", stream, _DEFLATED, usize=len(header) + _BOMB_FLOATS * 4, crc=crc)])
    r = _run_peak(path, "load_checkpoint_nonstrict")
    assert r["err"] is None and r["loads"] == 1 and not r["unchanged"], r
    assert r["delta_mb"] < 200, r
    strict = _run_peak(path, "load_checkpoint")
    assert "unexpected keys ['huge']" in strict["err"][2] and strict["unchanged"] and strict["delta_mb"] < 200


class _Tiny:
    def __init__(self):
        self.p = OrderedDict(w=np.arange(16, dtype=np.float32).reshape(4, 4), b=np.full(4, 7, np.float32))

    def state_dict(self):
        return OrderedDict(self.p)

    def load_state_dict(self, sd, strict=True):
        for k, v in sd.items():
            np.copyto(self.p[k], v)


def _refused(path, match):
    t = _Tiny()
    before = {k: v.copy() for k, v in t.p.items()}
    for call in (lambda: load_checkpoint(path, into=t), lambda: read_checkpoint_info(path)):
        with pytest.raises(CheckpointError, match=match) as ei:
            call()
        assert isinstance(ei.value, ValueError) and str(path) in str(ei.value)
    assert all(np.array_equal(t.p[k], v) for k, v in before.items())


def _good_members():
    return [_member("__lc_meta__.npy", _meta_npy(["w", "b"])), _member("w.npy", _npy(np.ones((4, 4), np.float32))),
            _member("b.npy", _npy(np.ones(4, np.float32)))]


def test_hand_made_zip_is_accepted(tmp_path):
    """The crafting helpers make valid files (so each refusal below is about its one trick)."""
    path = _raw_zip(tmp_path / "ok.npz", _good_members())
    t = _Tiny()
    load_checkpoint(path, into=t)
    assert np.array_equal(t.p["w"], np.ones((4, 4))) and np.array_equal(t.p["b"], np.ones(4))
    header = _npy_header((1 << 18,))
    stream, crc = _deflate_zeros(header, 1 << 20)
    m = _good_members()
    m[1] = _member("w.npy", stream, _DEFLATED, usize=len(header) + (1 << 20), crc=crc)
    path = _raw_zip(tmp_path / "deflated.npz", m)
    assert read_checkpoint_info(path)["tensors"]["w"]["shape"] == (1 << 18,)


def test_member_inflating_past_its_declared_size_refused(tmp_path):
    """The zip header says 80 bytes (a 4x4 float32 .npy after its header: consistent), the deflate stream
    holds 64 MiB more: refused after reading the declared bytes plus one, never inflated."""
    header = _npy_header((4, 4))
    stream, _ = _deflate_zeros(header + bytes(64), 64 << 20)
    m = _good_members()
    m[1] = _member("w.npy", stream, _DEFLATED, usize=len(header) + 64, crc=zlib.crc32(header + bytes(64)))
    path = _raw_zip(tmp_path / "liar.npz", m)
    _refused(path, r"member 'w.npy': its data inflates to more than the \d+ bytes its zip header declares")


def test_member_inflating_short_of_its_declared_size_refused(tmp_path):
    header = _npy_header((4, 4))
    stream, crc = _deflate_zeros(header, 0, extra=bytes(32))
    m = _good_members()
    m[1] = _member("w.npy", stream, _DEFLATED, usize=len(header) + 64, crc=crc)
    path = _raw_zip(tmp_path / "short.npz", m)
    _refused(path, r"member 'w.npy': its data ends after \d+ of the \d+ bytes its zip header declares")


def test_huge_declared_member_size_refused(tmp_path):
    """A deflated member whose zip directory declares ~4 GiB from 40 compressed bytes: beyond any real
    deflate ratio, refused from the directory alone."""
    m = _good_members()
    m[1] = _member("w.npy", zlib.compress(_npy(np.ones((4, 4), np.float32)))[2:-4], _DEFLATED, usize=0xFFFFFFF0)
    _refused(_raw_zip(tmp_path / "huge.npz", m), r"member 'w.npy': claims 4294967280 bytes from \d+")


def test_stored_member_larger_than_the_file_refused(tmp_path):
    m = _good_members()
    m[1] = _member("w.npy", _npy(np.ones((4, 4), np.float32)))
    path = _raw_zip(tmp_path / "st.npz", m)
    data = bytearray(path.read_bytes())
    cd = data.rindex(b"PK\x01\x02" + bytes([20, 3, 20, 0]) + b"\x00\x00", 0, data.index(b"PK\x05\x06"))
    # the directory entry of b.npy is the last one; give it a 1 GiB stored size (both size fields)
    struct.pack_into("<2L", data, cd + 20, 1 << 30, 1 << 30)
    path.write_bytes(bytes(data))
    _refused(path, r"member 'b.npy': its data runs past the start of the zip directory")


def test_header_declaring_huge_shape_with_small_data_refused(tmp_path):
    blob = _npy_header((1 << 29,)) + bytes(64)
    m = _good_members()
    m[1] = _member("w.npy", blob)
    _refused(_raw_zip(tmp_path / "hdr.npz", m),
             r"member 'w.npy': header says \(536870912,\) float32 \(2147483648 bytes\) but the member holds 64")


def test_overlapping_members_refused(tmp_path):
    """Several directory entries sharing one local data block (the overlap bomb)."""
    m = _good_members() + [_member("c.npy", _npy(np.ones((4, 4), np.float32)), same_as=1)]
    m[0] = _member("__lc_meta__.npy", _meta_npy(["w", "b", "c"]))
    _refused(_raw_zip(tmp_path / "overlap.npz", m), r"members 'w.npy' and 'c.npy' overlap in the file|"
                                                    r"members claim \d+ bytes|local header does not match")


def test_local_name_differing_from_directory_refused(tmp_path):
    m = _good_members()
    m[1] = _member("w.npy", _npy(np.ones((4, 4), np.float32)), local_name="x.npy")
    _refused(_raw_zip(tmp_path / "names.npz", m), r"member 'w.npy': its local header does not match the zip directory")


@pytest.mark.parametrize("name,match", [
    ("w.npy", r"duplicate member names"),
    ("a/b.npy", r"member 'a/b.npy' is not an escaped tensor name"),
    ("../../etc/x.npy", r"is not an escaped tensor name"),
    ("/abs.npy", r"is not an escaped tensor name"),
])
def test_duplicate_and_nested_names_refused(tmp_path, name, match):
    import warnings
    m = _good_members() + [_member(name, _npy(np.ones(2, np.float32)))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = _raw_zip(tmp_path / "names.npz", m)
    _refused(path, match)


def test_too_many_members_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "_MAX_MEMBERS", 8)
    names = [f"t{i}" for i in range(8)]
    m = [_member("__lc_meta__.npy", _meta_npy(names))] + [_member(f"{n}.npy", _npy(np.ones(1, np.float32)))
                                                         for n in names]
    _refused(_raw_zip(tmp_path / "many.npz", m), r"the zip archive has 9 members \(at most 8 are read\)")
    assert ckpt._MAX_MEMBERS == 8


def test_member_limit_is_documented():
    assert ckpt._MAX_MEMBERS == 1 << 16
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "python_api.md")).read()
    assert "65,536 members" in doc


def test_negative_and_deep_shapes_refused(tmp_path):
    m = _good_members()
    m[1] = _member("w.npy", _npy_header((-4, -4)) + bytes(64))
    _refused(_raw_zip(tmp_path / "neg.npz", m), r"member 'w.npy': bad shape \(-4, -4\)")


def test_module_errors_are_not_reported_as_corrupt_files(tmp_path):
    """An exception from into.state_dict() (called between the header checks and the data) is the
    module's own, not a 'corrupt checkpoint'."""
    path = _raw_zip(tmp_path / "ok.npz", _good_members())

    class Broken(_Tiny):
        def state_dict(self):
            raise KeyError("the module's own bug")

    with pytest.raises(KeyError, match="the module's own bug"):
        load_checkpoint(path, into=Broken())

    class NotMapping(_Tiny):
        def state_dict(self):
            return [1, 2]

    with pytest.raises(TypeError, match=r"into.state_dict\(\) must return a mapping, got list"):
        load_checkpoint(path, into=NotMapping())


def test_manifest_without_sha256_refused(tmp_path):
    class M(_Tiny):
        pass

    src = M()
    path = tmp_path / "v11.npz"
    ckpt.save_model_checkpoint(path, src)
    with np.load(path) as z:
        meta = json.loads(bytes(z["__lc_meta__"]).decode())
        members = {k: _npy(z[k]) for k in z.files if k != "__lc_meta__"}
    del meta["manifest"][0]["sha256"]
    blob = _npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    bad = _raw_zip(tmp_path / "nosha.npz", [_member("__lc_meta__.npy", blob)] +
                   [_member(k + ".npy", v) for k, v in members.items()])
    with pytest.raises(CheckpointError, match=r"tensor 'w': SHA-256 mismatch \(manifest None"):
        ckpt.load_model_checkpoint(bad, into=M())


# ---- the path itself: symlinks, FIFOs, devices ----------------------------------------------------

def _small_module():
    from lightning_core import nn
    return nn.Linear(3, 2, seed=5)


def test_save_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    m = _small_module()
    target = tmp_path / "run3.npz"
    ckpt.save_checkpoint(str(target), m)
    link = tmp_path / "latest.npz"
    link.symlink_to(target.name)
    m.weight[...] += 1.0
    ckpt.save_checkpoint(str(link), m)
    assert link.is_symlink() and os.readlink(link) == target.name
    back = _small_module()
    load_checkpoint(str(target), into=back)
    assert np.array_equal(back.weight, m.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.npz", "run3.npz"]  # no temp files left


def test_fifo_is_refused_for_save_and_load_without_waiting(tmp_path):
    # In a subprocess with a timeout: an open() of a FIFO would block forever waiting for the other end.
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    code = textwrap.dedent(f"""
        import numpy as np
        from lightning_core import checkpoint as ckpt, nn
        m = nn.Linear(3, 2, seed=5)
        try:
            ckpt.save_checkpoint({str(fifo)!r}, m)
        except ValueError as e:
            assert "expected a regular file" in str(e) and "FIFO" in str(e), e
        else:
            raise SystemExit("save accepted a FIFO")
        for call in (lambda: ckpt.load_checkpoint({str(fifo)!r}, into=m), lambda: ckpt.read_checkpoint_info({str(fifo)!r})):
            try:
                call()
            except ckpt.CheckpointError as e:
                assert "FIFO" in str(e), e
            else:
                raise SystemExit("load accepted a FIFO")
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    assert fifo.exists() and not fifo.is_file()  # still a FIFO, untouched
