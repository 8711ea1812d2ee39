"""Checkpoint IO v1 / v1.1 / v1.2 (seed section 26): module state to and from ``.npz`` files, never via pickle.

- ``save_checkpoint(path, module, metadata=None)`` writes format version "1";
  ``save_model_checkpoint(path, model, metadata=None)`` writes "1.1" (adds the model class and a
  per-tensor manifest: shape, dtype, byte size and SHA-256 of every array). Either writes "1.2" when a
  tensor is bfloat16: the "1.1" layout (model class null for save_checkpoint), the bfloat16 tensor stored
  as its raw 16-bit patterns in a '<u2' member whose manifest dtype is "bfloat16" (float16 is '<f2').
- ``load_checkpoint(path, into, strict=True)`` / ``load_model_checkpoint(path, into, strict=True)``
  read any of these versions (a v1 file loads under v1.1) bit-exactly and return an info dict; ``read_checkpoint_info(path)``
  validates a file and describes it without touching any module.

A module is anything with ``state_dict()`` (ordered mapping name -> ndarray) and
``load_state_dict(state, strict=True)``. The loader validates the file's structure and headers, checks
names, shapes and dtypes against ``into.state_dict()`` before reading any tensor data (a small file
declaring a huge tensor is refused without inflating it), reads the data through bounded readers (no
member yields more than its zip header declares; what is not loaded is streamed and kept nowhere),
builds the complete new state and only then calls
``load_state_dict`` once (and puts the old state back if that call raises), so a refused load leaves the
module exactly as it was. Files are written to a temporary file in the same directory and renamed over
the target (``os.replace``): a crash never leaves a half-written checkpoint at ``path``.

File format (full description: docs/python_api.md, "Checkpoints"): an uncompressed zip laid out as
``np.savez`` writes it, one ``<escaped name>.npy`` member per tensor plus ``__lc_meta__.npy``, a uint8
array holding UTF-8 JSON (format name, format version, user metadata, tensor list or manifest).

Tests: tests/python/test_checkpoint.py, tests/python/test_checkpoint_hostile.py (bombs, zip tricks).
"""

import errno
import hashlib
import json
import math
import os
import stat
import string
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from . import _C
from ._fileio import file_kind as _file_kind, fspath as _fspath, write_atomic

__all__ = [
    "CheckpointError",
    "FORMAT_NAME",
    "SUPPORTED_VERSIONS",
    "save_checkpoint",
    "load_checkpoint",
    "save_model_checkpoint",
    "load_model_checkpoint",
    "read_checkpoint_info",
]

FORMAT_NAME = "lightning_core.checkpoint"
VERSION_V1 = "1"
VERSION_V1_1 = "1.1"
VERSION_V1_2 = "1.2"  # "1.1"'s layout; written when a tensor is bfloat16 (stored as its raw '<u2' bits)
SUPPORTED_VERSIONS = (VERSION_V1, VERSION_V1_1, VERSION_V1_2)
META_MEMBER = "__lc_meta__"
RESERVED_PREFIX = "__lc_"

_SAFE_CHARS = frozenset(string.ascii_letters + string.digits + "_.-")
_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex: everything .npy stores without pickle
_MAX_META_BYTES = 64 << 20
_MAX_DEFLATE_RATIO = 1100  # deflate cannot expand more than ~1032:1; anything beyond is a lie or a bomb
_MAX_JSON_DEPTH = 64
_MAX_MEMBERS = 1 << 16  # tensors + the meta member a file may hold
_MAX_NDIM = 32
_CHUNK = 1 << 20  # bytes per bounded read (streamed data, inflate output)


# bfloat16 (ml_dtypes.bfloat16, NumPy kind 'V') has no .npy type: its tensors are stored as the raw 16-bit
# patterns in a '<u2' member, and the "1.2" manifest names the dtype "bfloat16".
_BF16_NAME = "bfloat16"
_BF16_STORED = np.dtype("<u2")


def _is_bf16(dtype):
    return dtype.kind == "V" and dtype.name == _BF16_NAME and dtype.itemsize == 2 and dtype.fields is None


def _bf16_dtype():
    try:
        import ml_dtypes
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    return np.dtype(ml_dtypes.bfloat16)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or that does not fit the module it is loaded into."""


# ---- names ------------------------------------------------------------------------------------------

def _escape(name):
    """Tensor name -> zip member stem: [A-Za-z0-9_.-] kept, every other character as %XX of its UTF-8
    bytes (so '/' never makes a zip directory and the mapping is one to one)."""
    out = []
    for ch in name:
        if ch in _SAFE_CHARS:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def _unescape(stem):
    """Inverse of _escape; None when ``stem`` is not exactly what _escape would write."""
    raw = bytearray()
    i = 0
    while i < len(stem):
        ch = stem[i]
        if ch == "%":
            hexpart = stem[i + 1:i + 3]
            if len(hexpart) != 2 or any(c not in "0123456789ABCDEF" for c in hexpart):
                return None
            raw.append(int(hexpart, 16))
            i += 3
        elif ch in _SAFE_CHARS:
            raw.append(ord(ch))
            i += 1
        else:
            return None
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return name if _escape(name) == stem else None


def _check_name(name):
    if not isinstance(name, str):
        raise TypeError(f"state_dict key {name!r}: tensor names must be str, got {type(name).__name__}")
    if not name:
        raise ValueError("state_dict key '': tensor names must not be empty")
    if name.startswith(RESERVED_PREFIX):
        raise ValueError(f"state_dict key {name!r}: names starting with {RESERVED_PREFIX!r} are reserved "
                         "for the checkpoint format")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"state_dict key {name!r}: not encodable as UTF-8 ({e})") from None


# ---- metadata ---------------------------------------------------------------------------------------

def _check_json(value, where, depth=0):
    if depth > _MAX_JSON_DEPTH:
        raise ValueError(f"{where}: nested deeper than {_MAX_JSON_DEPTH} levels (a cycle?)")
    if value is None or isinstance(value, (bool, str, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not valid JSON (only finite floats are stored)")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is {type(k).__name__}; JSON object keys must be str")
            _check_json(item, f"{where}[{k!r}]", depth + 1)
        return
    hint = " (use .item() or .tolist())" if isinstance(value, (np.generic, np.ndarray)) else ""
    raise TypeError(f"{where}: a {type(value).__name__} is not JSON-serialisable{hint}")


def _check_metadata(metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict (or None), got {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str):
            raise TypeError(f"metadata key {k!r} is {type(k).__name__}; metadata keys must be str")
        _check_json(v, f"metadata[{k!r}]")
    # Round trip through JSON now, so the caller's dict is never aliased and the stored form is final.
    return json.loads(json.dumps(metadata, allow_nan=False))


# ---- module state -----------------------------------------------------------------------------------

def _require_module(obj, what):
    for attr in ("state_dict", "load_state_dict") if what == "into" else ("state_dict",):
        if not callable(getattr(obj, attr, None)):
            raise TypeError(f"{what}: expected a module with {attr}(), got {type(obj).__name__}")


def _check_dtype(name, dtype):
    if _is_bf16(dtype):
        return
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
        raise TypeError(f"state_dict[{name!r}]: dtype {dtype} cannot be stored (numeric dtypes only; "
                        "object arrays would need pickle; bfloat16 is stored as its 16-bit patterns)")


def _native(arr):
    """A C-contiguous, native-byte-order copy of ``arr`` (a snapshot that the caller owns)."""
    dt = arr.dtype.newbyteorder("=")
    return np.array(arr, dtype=dt, order="C", copy=True)


def _sha256(arr):
    if _is_bf16(arr.dtype):
        arr = np.ascontiguousarray(arr).view(np.uint16)  # the raw patterns, as stored
    le = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return hashlib.sha256(le.reshape(-1).view(np.uint8).data if le.size else b"").hexdigest()


def _module_state(module, what):
    state = module.state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(f"{what}.state_dict() must return a mapping, got {type(state).__name__}")
    out = OrderedDict()
    for name, value in state.items():
        _check_name(name)
        arr = np.asarray(value)
        _check_dtype(name, arr.dtype)
        out[name] = arr
    return out


# ---- writing ----------------------------------------------------------------------------------------

def _write_npz(f, members):
    """``members`` [(member stem, ndarray)] as an uncompressed .npz into the open file ``f``."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for stem, arr in members:
            with zf.open(stem + ".npy", "w", force_zip64=True) as mf:
                np.lib.format.write_array(mf, arr, allow_pickle=False)


def _save(path, module, metadata, version):
    path = _fspath(path)
    _require_module(module, "model" if version == VERSION_V1_1 else "module")
    meta_user = _check_metadata(metadata)
    state = _module_state(module, "model" if version == VERSION_V1_1 else "module")
    model_level = version == VERSION_V1_1
    if any(_is_bf16(a.dtype) for a in state.values()):
        version = VERSION_V1_2  # bfloat16 needs the manifest's dtype names; older readers refuse the file
    meta = OrderedDict(format=FORMAT_NAME, format_version=version, library_version=str(_C.__version__))
    members = []
    manifest = []
    for name, value in state.items():
        arr = _native(value)
        stem = _escape(name)
        bf16 = _is_bf16(arr.dtype)
        stored = arr.view(_BF16_STORED) if bf16 else arr
        members.append((stem, stored))
        if version != VERSION_V1:
            manifest.append(OrderedDict(name=name, member=stem + ".npy", shape=list(arr.shape),
                                        dtype=_BF16_NAME if bf16 else arr.dtype.newbyteorder("<").str,
                                        nbytes=int(arr.nbytes), sha256=_sha256(stored)))
    if version != VERSION_V1:
        cls = type(module)
        meta["model_class"] = cls.__qualname__ if model_level else None
        meta["model_module"] = cls.__module__ if model_level else None
        meta["checksum"] = "sha256"
        meta["manifest"] = manifest
    else:
        meta["tensors"] = list(state.keys())
    meta["metadata"] = meta_user
    blob = json.dumps(meta, allow_nan=False, ensure_ascii=False).encode("utf-8")
    members.insert(0, (META_MEMBER, np.frombuffer(blob, dtype=np.uint8).copy()))
    write_atomic(path, lambda f: _write_npz(f, members), "save_checkpoint", "a checkpoint")
    return path


def save_checkpoint(path, module, metadata=None):
    """Writes ``module.state_dict()`` to ``path`` as a format-version "1" checkpoint (.npz); returns the
    path. ``metadata`` is a JSON-serialisable dict (str keys), stored as is."""
    return _save(path, module, metadata, VERSION_V1)


def save_model_checkpoint(path, model, metadata=None):
    """Writes ``model.state_dict()`` to ``path`` as a format-version "1.1" (model-level) checkpoint: also
    the model class and a manifest with the shape, dtype, byte size and SHA-256 of every tensor."""
    return _save(path, model, metadata, VERSION_V1_1)


# ---- reading ----------------------------------------------------------------------------------------

def _not_ckpt(path, problem):
    return CheckpointError(f"not a lightning_core checkpoint: {path!r}: {problem}")


def _corrupt(path, problem):
    return CheckpointError(f"corrupt lightning_core checkpoint {path!r}: {problem}")


class _Member:
    """The bytes of one zip member, read straight from the open file with hard bounds: never more than
    ``info.file_size`` bytes (the size the central directory declares) come out, whatever the data holds;
    ``finish()`` then requires the member to end exactly there (a deflate stream that would inflate to
    more, or ends early, is an error) with the CRC-32 the directory records. Memory: one chunk."""

    __slots__ = ("p", "fn", "f", "pos", "cleft", "uleft", "size", "crc", "crc_want", "z")

    def __init__(self, p, f, entry):
        info = entry.info
        self.p, self.fn, self.f = p, info.filename, f
        self.pos, self.cleft = entry.data_start, info.compress_size
        self.uleft = self.size = info.file_size
        self.crc, self.crc_want = 0, info.CRC
        self.z = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None

    def _fail(self, problem):
        return _corrupt(self.p, f"member {self.fn!r}: {problem}")

    def _raw(self, n):
        n = min(n, self.cleft)
        if n <= 0:
            return b""
        self.f.seek(self.pos)
        data = self.f.read(n)
        if len(data) != n:
            raise self._fail("the file ends inside the member's data (truncated?)")
        self.pos += n
        self.cleft -= n
        return data

    def read(self, n):
        """Up to ``n`` bytes of the member (fewer only at its declared end, b'' there)."""
        n = min(n, self.uleft)
        if n <= 0:
            return b""
        if self.z is None:
            out = self._raw(n)
        else:
            out = b""
            while not out:
                data = self.z.unconsumed_tail or self._raw(_CHUNK)
                if self.z.eof or not data:
                    raise self._fail(f"its data ends after {self.size - self.uleft} of the {self.size} bytes its "
                                     "zip header declares")
                out = self.z.decompress(data, n)  # n >= 1: never more than n bytes
        self.uleft -= len(out)
        self.crc = zlib.crc32(out, self.crc)
        return out

    def readinto(self, buf):
        """Fills the writable byte memoryview ``buf`` (len(buf) <= what is left) from the member."""
        done, total = 0, len(buf)
        while done < total:
            if self.z is None:
                n = min(total - done, _CHUNK << 4)
                self.f.seek(self.pos)
                got = self.f.readinto(buf[done:done + n])
                if got != n:
                    raise self._fail("the file ends inside the member's data (truncated?)")
                self.crc = zlib.crc32(buf[done:done + n], self.crc)
                self.pos += n
                self.cleft -= n
                self.uleft -= n
            else:
                chunk = self.read(min(total - done, _CHUNK))
                n = len(chunk)
                buf[done:done + n] = chunk
            done += n

    def finish(self):
        """The member must end exactly at its declared size, with the CRC-32 of the zip directory."""
        if self.uleft:
            raise self._fail(f"{self.uleft} of its {self.size} bytes were not read")
        if self.z is not None:
            while not self.z.eof:
                data = self.z.unconsumed_tail or self._raw(_CHUNK)
                if not data:
                    raise self._fail("its deflate stream does not end (truncated?)")
                if self.z.decompress(data, 1):
                    raise self._fail(f"its data inflates to more than the {self.size} bytes its zip header declares")
            if self.z.unused_data or self.cleft:
                raise self._fail("bytes follow the end of its deflate stream")
        if self.crc != self.crc_want:
            raise self._fail(f"Bad CRC-32 (zip directory {self.crc_want:08x}, data {self.crc:08x})")


class _Entry:
    """One .npy member: its zip info, where its data starts in the file, and its validated .npy header."""

    __slots__ = ("info", "data_start", "shape", "dtype", "fortran", "offset")

    def __init__(self, info, data_start):
        self.info, self.data_start = info, data_start
        self.shape = self.dtype = self.fortran = self.offset = None

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # the zip local file header (30 bytes)


def _scan_members(p, size, f, zf):
    """Checks every member from the zip directory and the local headers alone (no data is read):
    count, names, kinds, sizes, ranges in the file. Returns {member name: _Entry}."""
    infos = zf.infolist()
    if len(infos) > _MAX_MEMBERS:
        raise _not_ckpt(p, f"the zip archive has {len(infos)} members (at most {_MAX_MEMBERS} are read)")
    filenames = [i.filename for i in infos]
    if len(set(filenames)) != len(filenames):
        raise _corrupt(p, "duplicate member names in the zip archive")
    dir_start = getattr(zf, "start_dir", size)
    entries, ranges = {}, []
    stored_total = 0
    for info in infos:
        fn = info.filename
        if info.is_dir() or not fn.endswith(".npy"):
            raise _not_ckpt(p, f"member {fn!r} is not a .npy array")
        if info.flag_bits & 0x1:
            raise _not_ckpt(p, f"member {fn!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _not_ckpt(p, f"member {fn!r} uses zip compression method {info.compress_type}")
        stored_total += info.compress_size
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _corrupt(p, f"member {fn!r}: stored size {info.compress_size} != size {info.file_size}")
        if info.file_size > _MAX_DEFLATE_RATIO * max(info.compress_size, 1):
            raise _corrupt(p, f"member {fn!r}: claims {info.file_size} bytes from {info.compress_size}")
        f.seek(info.header_offset)
        raw = f.read(_LOCAL_HEADER.size)
        if len(raw) != _LOCAL_HEADER.size:
            raise _corrupt(p, f"member {fn!r}: its local header lies past the end of the file")
        sig, _, _, flags, method, _, _, crc, _, _, name_len, extra_len = _LOCAL_HEADER.unpack(raw)
        local_name = f.read(name_len)
        if sig != b"PK\x03\x04" or method != info.compress_type or \
                local_name.decode("utf-8" if flags & 0x800 else "cp437", "replace") != info.orig_filename or \
                (not flags & 0x8 and crc != info.CRC):
            raise _corrupt(p, f"member {fn!r}: its local header does not match the zip directory")
        data_start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        if data_start + info.compress_size > dir_start:
            raise _corrupt(p, f"member {fn!r}: its data runs past the start of the zip directory")
        ranges.append((info.header_offset, data_start + info.compress_size, fn))
        entries[fn] = _Entry(info, data_start)
    if stored_total > size:
        raise _corrupt(p, f"members claim {stored_total} bytes but the file has {size}")
    ranges.sort()
    for (_, end, a), (start, _, b) in zip(ranges, ranges[1:]):
        if start < end:
            raise _corrupt(p, f"members {a!r} and {b!r} overlap in the file")
    return entries


def _read_headers(p, f, entries):
    """Reads and checks the .npy header of every member (a bounded read of its first bytes)."""
    for fn, e in entries.items():
        m = _Member(p, f, e)
        version = np.lib.format.read_magic(m)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(m)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(m)
        else:
            raise _corrupt(p, f"member {fn!r}: .npy format version {version} is not supported")
        if dtype.hasobject:
            raise _not_ckpt(p, f"member {fn!r} holds an object array (loading it would need pickle)")
        if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
            raise _not_ckpt(p, f"member {fn!r} has dtype {dtype} (numeric arrays only)")
        if len(shape) > _MAX_NDIM or any(int(d) < 0 for d in shape):
            raise _corrupt(p, f"member {fn!r}: bad shape {shape} in its .npy header")
        e.shape, e.fortran, e.dtype = tuple(int(d) for d in shape), bool(fortran), dtype
        e.offset = m.size - m.uleft
        if e.offset + e.nbytes != e.info.file_size:
            raise _corrupt(p, f"member {fn!r}: header says {e.shape} {dtype} ({e.nbytes} bytes) but the member "
                              f"holds {e.info.file_size - e.offset} data bytes")


def _read_data(p, f, e, keep, hash_it):
    """The data of entry ``e``: a C-ordered native ndarray when ``keep``, else streamed (None); the zip
    CRC-32 is checked before anything is returned. Returns (array or None, SHA-256 hex digest of the C-order
    little-endian bytes when ``hash_it``, else None)."""
    m = _Member(p, f, e)
    while m.size - m.uleft < e.offset:  # the header again (it was checked by _read_headers)
        m.read(e.offset - (m.size - m.uleft))
    arr = None
    h = hashlib.sha256() if hash_it else None
    if keep:
        arr = np.empty(e.shape[::-1] if e.fortran else e.shape, dtype=e.dtype)
        if arr.size:
            m.readinto(memoryview(arr.reshape(-1).view(np.uint8)))
        if e.fortran:
            arr = arr.T
        m.finish()
        if not (arr.flags.c_contiguous and arr.dtype.isnative):
            arr = _native(arr)
        digest = _sha256(arr) if h is not None else None
    else:
        while m.uleft:
            chunk = m.read(_CHUNK)
            if h is not None:
                h.update(chunk)
        m.finish()
        digest = h.hexdigest() if h is not None else None
    return arr, digest


class _Checkpoint:
    """A validated checkpoint: ``meta``, ``tensors`` (ordered name -> (shape, dtype) from the .npy
    headers) and ``arrays`` (name -> ndarray, only the tensors the caller asked to keep)."""

    __slots__ = ("path", "meta", "tensors", "arrays")

    def __init__(self, path, meta, tensors):
        self.path, self.meta, self.tensors, self.arrays = path, meta, tensors, OrderedDict()


def _read(path, plan=None):
    """Reads and validates the whole checkpoint; raises CheckpointError (a ValueError) on any problem.

    In order: the zip directory and local headers, every .npy header and the meta member (bounded reads,
    no tensor data); then ``plan(ckpt)`` (which may raise: the loader checks names, shapes and dtypes
    against its module there, before a byte of tensor data is read) returns the names whose arrays to
    keep; then every tensor's data is read with a bounded reader and checked (CRC-32, SHA-256 for "1.1"):
    kept tensors into arrays of their (already checked) declared size, the others streamed in chunks."""
    p = _fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(errno.ENOENT, "checkpoint file not found", p)
    if os.path.isdir(p):
        raise _not_ckpt(p, "it is a directory")
    # Opened once without blocking (a FIFO would wait for a writer) and judged on the descriptor itself,
    # so what was checked is what is read.
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_ckpt(p, f"it is {_file_kind(st)}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        size = st.st_size
        if size == 0:
            raise _not_ckpt(p, "the file is empty")
        head = f.read(4)
        if head not in (b"PK\x03\x04", b"PK\x05\x06"):
            kind = "a pickle (pickles are never loaded)" if head[:1] == b"\x80" else (
                "a .npy file" if head == b"\x93NUM" else f"it starts with {head!r}")
            raise _not_ckpt(p, f"not a .npz (zip) file: {kind}")
        f.seek(0)
        try:
            zf = zipfile.ZipFile(f)
        except MemoryError:
            raise
        except Exception as e:
            raise _not_ckpt(p, f"cannot open the zip archive (truncated or corrupt?): {type(e).__name__}: {e}") from e
        try:
            ckpt, data = _guarded(p, _read_structure, p, size, f, zf)
            keep = plan(ckpt) if plan is not None else ()  # the caller's exceptions pass through as they are
            _guarded(p, _read_tensors, p, f, ckpt, data, keep)
            return ckpt
        finally:
            zf.close()


def _guarded(p, fn, *args):
    """fn(*args), with any error that is not already a CheckpointError reported as a corrupt file."""
    try:
        return fn(*args)
    except (CheckpointError, MemoryError):
        raise
    except Exception as e:  # zipfile.BadZipFile, zlib.error, EOFError, bad .npy headers...
        raise _corrupt(p, f"{type(e).__name__}: {e}") from e


def _read_structure(p, size, f, zf):
    """Everything but the tensor data: returns (ckpt, [(name, entry, has a checksum, manifest sha256)])."""
    entries = _scan_members(p, size, f, zf)
    _read_headers(p, f, entries)
    headers = {fn[:-4]: e for fn, e in entries.items()}

    if META_MEMBER not in headers:
        raise _not_ckpt(p, f"no {META_MEMBER} member (a plain .npz, not written by save_checkpoint)")
    me = headers.pop(META_MEMBER)
    if me.dtype != np.uint8 or len(me.shape) != 1 or me.shape[0] > _MAX_META_BYTES:
        raise _not_ckpt(p, f"{META_MEMBER} must be a 1-D uint8 array of UTF-8 JSON, got {me.shape} {me.dtype}")
    raw, _ = _read_data(p, f, me, True, None)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise _not_ckpt(p, f"{META_MEMBER} is not UTF-8 JSON ({e})") from e
    if not isinstance(meta, dict):
        raise _not_ckpt(p, f"{META_MEMBER} must be a JSON object, got {type(meta).__name__}")
    fmt = meta.get("format")
    if fmt != FORMAT_NAME:
        raise _not_ckpt(p, f"foreign format {fmt!r} (expected {FORMAT_NAME!r})")
    version = meta.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise CheckpointError(f"unsupported lightning_core checkpoint {p!r}: format_version {version!r} "
                              f"(this build reads {', '.join(SUPPORTED_VERSIONS)}; written by a newer version?)")
    if not isinstance(meta.get("metadata", None), dict):
        raise _corrupt(p, f"{META_MEMBER}: 'metadata' must be a JSON object")

    by_name = OrderedDict()
    for stem in headers:
        if stem.startswith(RESERVED_PREFIX):
            raise _corrupt(p, f"unknown reserved member {stem + '.npy'!r}")
        name = _unescape(stem)
        if name is None:
            raise _corrupt(p, f"member {stem + '.npy'!r} is not an escaped tensor name")
        by_name[name] = stem

    if version == VERSION_V1:
        order = meta.get("tensors")
        if not isinstance(order, list) or not all(isinstance(n, str) for n in order):
            raise _corrupt(p, f"{META_MEMBER}: 'tensors' must be a list of names")
        manifest = None
    else:
        manifest = meta.get("manifest")
        mc = meta.get("model_class")
        if not (isinstance(mc, str) or (version == VERSION_V1_2 and mc is None)):
            raise _corrupt(p, f"{META_MEMBER}: 'model_class' must be a string" + (" or null" if version == VERSION_V1_2 else ""))
        if meta.get("checksum") != "sha256":
            raise _corrupt(p, f"{META_MEMBER}: unknown checksum {meta.get('checksum')!r}")
        if not isinstance(manifest, list) or not all(isinstance(e, dict) for e in manifest):
            raise _corrupt(p, f"{META_MEMBER}: 'manifest' must be a list of objects")
        order = [e.get("name") for e in manifest]
        if not all(isinstance(n, str) for n in order):
            raise _corrupt(p, f"{META_MEMBER}: every manifest entry needs a string 'name'")
    if len(set(order)) != len(order):
        raise _corrupt(p, "the tensor list names a tensor twice")
    if set(order) != set(by_name):
        listed, present = set(order), set(by_name)
        raise _corrupt(p, f"tensor list and archive members disagree: listed but absent "
                          f"{_names(listed - present)}, present but not listed {_names(present - listed)}")

    tensors = OrderedDict()
    digests = {}
    for i, name in enumerate(order):
        stem = by_name[name]
        h = headers[stem]
        logical = None  # the tensor's dtype when it differs from the member's (bfloat16 stored as '<u2')
        if manifest is not None:
            e = manifest[i]
            if e.get("member") != stem + ".npy":
                raise _corrupt(p, f"manifest entry {name!r}: member {e.get('member')!r} != {stem + '.npy'!r}")
            mshape = e.get("shape")
            if not isinstance(mshape, list) or tuple(mshape) != h.shape:
                raise _corrupt(p, f"tensor {name!r}: manifest shape {mshape} != stored shape {list(h.shape)}")
            if version == VERSION_V1_2 and e.get("dtype") == _BF16_NAME:
                # raw bfloat16 patterns: the member must be '<u2' (checked before any data is read)
                if h.dtype != _BF16_STORED:
                    raise _corrupt(p, f"tensor {name!r}: manifest dtype 'bfloat16' needs a '<u2' member of its 16-bit "
                                      f"patterns, got stored dtype {h.dtype.str}")
                logical = _bf16_dtype()
                if logical is None:  # pragma: no cover - ml_dtypes is a declared dependency
                    raise CheckpointError(f"checkpoint {p!r}: tensor {name!r} is bfloat16, which needs ml_dtypes")
            else:
                try:
                    mdt = np.dtype(e.get("dtype"))
                except TypeError:
                    mdt = None
                if not isinstance(e.get("dtype"), str) or mdt is None or mdt != h.dtype:
                    raise _corrupt(p, f"tensor {name!r}: manifest dtype {e.get('dtype')!r} != stored dtype {h.dtype.str}")
            if h.fortran or h.dtype.byteorder == ">":
                raise _corrupt(p, f"tensor {name!r}: a \"1.1\" member must hold C-order little-endian data")
            if e.get("nbytes") != h.nbytes:
                raise _corrupt(p, f"tensor {name!r}: manifest nbytes {e.get('nbytes')!r} != {h.nbytes}")
            digests[name] = e.get("sha256")
        tensors[name] = (h.shape, logical if logical is not None else h.dtype.newbyteorder("="))
    data = [(name, headers[by_name[name]], manifest is not None, digests.get(name)) for name in order]
    return _Checkpoint(p, meta, tensors), data


def _read_tensors(p, f, ckpt, data, keep):
    """Reads (names in ``keep``) or streams (the others) every tensor's data, checking CRC-32 and SHA-256."""
    for name, entry, checked, want in data:
        arr, digest = _read_data(p, f, entry, name in keep, checked)
        if checked and want != digest:
            raise _corrupt(p, f"tensor {name!r}: SHA-256 mismatch (manifest {want!r}, data {digest})")
        if arr is not None:
            dtype = ckpt.tensors[name][1]
            ckpt.arrays[name] = arr.view(dtype) if dtype != arr.dtype else arr  # bfloat16: the raw bits as read


def _reject_constant(token):
    raise ValueError(f"non-standard JSON constant {token}")


def _names(names, limit=8):
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)})" if names else "[]"


# ---- loading into a module --------------------------------------------------------------------------

def _load(path, into, strict, model_level):
    _require_module(into, "into")
    if not isinstance(strict, (bool, np.bool_)):
        raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
    strict = bool(strict)
    fit = {}

    def plan(ckpt):
        """Runs after the file's structure, meta and headers are validated and before any tensor data is
        read: every name, shape and dtype is checked against the module here, so a file that does not
        fit (a huge declared tensor included) is refused without reading its data."""
        p, meta, declared = ckpt.path, ckpt.meta, ckpt.tensors
        current = into.state_dict()
        if not isinstance(current, Mapping):
            raise TypeError(f"into.state_dict() must return a mapping, got {type(current).__name__}")
        current = OrderedDict((k, np.asarray(v)) for k, v in current.items())
        missing = [k for k in current if k not in declared]
        unexpected = [k for k in declared if k not in current]
        problems = []
        mismatched = []
        for k, cur in current.items():
            if k in declared:
                shape, dtype = declared[k]
                if shape != cur.shape or dtype != cur.dtype.newbyteorder("="):
                    mismatched.append(f"{k!r}: checkpoint {list(shape)} {dtype}, module {list(cur.shape)} {cur.dtype}")
        if mismatched:
            more = f" (+{len(mismatched) - 8} more)" if len(mismatched) > 8 else ""
            problems.append("shape/dtype mismatch " + "; ".join(mismatched[:8]) + more)
        if strict and missing:
            problems.append(f"missing keys {_names(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys {_names(unexpected)}")
        stored_class = meta.get("model_class")
        class_matches = None
        if model_level and stored_class is not None:
            class_matches = stored_class == type(into).__qualname__
            if strict and not class_matches:
                problems.append(f"model class {stored_class!r} != {type(into).__qualname__!r}")
        if problems:
            raise CheckpointError(f"checkpoint {p!r} does not fit {type(into).__qualname__} (strict={strict}): "
                                  + "; ".join(problems) + "; the module was not changed")
        fit.update(current=current, missing=missing, unexpected=unexpected, stored_class=stored_class,
                   class_matches=class_matches)
        return {k for k in current if k in declared}

    ckpt = _read(path, plan)
    p, meta, file_state = ckpt.path, ckpt.meta, ckpt.arrays
    current = fit["current"]

    snapshot = OrderedDict((k, np.array(v, copy=True)) for k, v in current.items())
    # Values from the file take the module's exact dtype (only the byte order can differ here).
    new_state = OrderedDict((k, file_state[k].astype(v.dtype, copy=False) if k in file_state
                             else np.array(v, copy=True)) for k, v in current.items())
    try:
        into.load_state_dict(new_state, strict=True)
    except Exception as e:
        try:
            into.load_state_dict(snapshot, strict=True)
            after = "the previous state was put back"
        except Exception as e2:  # pragma: no cover - a module that can neither load nor restore
            after = f"putting the previous state back also failed ({type(e2).__name__}: {e2})"
        raise CheckpointError(f"checkpoint {p!r}: {type(into).__qualname__}.load_state_dict refused the "
                              f"state ({type(e).__name__}: {e}); {after}") from e

    return {
        "path": p,
        "format": FORMAT_NAME,
        "format_version": meta["format_version"],
        "library_version": meta.get("library_version"),
        "metadata": meta["metadata"],
        "model_class": fit["stored_class"],
        "model_class_matches": fit["class_matches"],
        "strict": strict,
        "loaded": [k for k in current if k in file_state],
        "missing": fit["missing"],
        "unexpected": fit["unexpected"],
    }


def load_checkpoint(path, into, strict=True):
    """Loads a checkpoint (format version "1", "1.1" or "1.2") into the module ``into``; returns an info dict
    (``format_version``, ``metadata``, ``loaded``, ``missing``, ``unexpected``, ...). strict=True requires
    the exact key set; strict=False loads the keys both sides have and reports the rest. A shape or dtype
    mismatch is always an error. Any error leaves ``into`` unchanged."""
    return _load(path, into, strict, model_level=False)


def load_model_checkpoint(path, into, strict=True):
    """Like load_checkpoint, for model-level checkpoints: reads "1.1" (manifest and checksums verified)
    and "1" files; with strict=True a "1.1" file must also name ``type(into).__qualname__`` as its class
    (info["model_class_matches"] reports it either way)."""
    return _load(path, into, strict, model_level=True)


def read_checkpoint_info(path):
    """Reads and fully validates a checkpoint (checksums included for "1.1") without loading it into
    anything; returns format, format_version, library_version, metadata, model_class and ``tensors``
    (ordered name -> {shape, dtype, nbytes[, sha256]})."""
    ckpt = _read(path)  # streams every tensor's data (bounded memory), keeps none
    meta = ckpt.meta
    manifest = {e["name"]: e for e in meta.get("manifest", [])}
    tensors = OrderedDict()
    for name, (shape, dtype) in ckpt.tensors.items():
        entry = {"shape": shape, "dtype": dtype.name, "nbytes": math.prod(shape) * dtype.itemsize}
        if name in manifest:
            entry["sha256"] = manifest[name]["sha256"]
        tensors[name] = entry
    return {
        "path": ckpt.path,
        "format": meta["format"],
        "format_version": meta["format_version"],
        "library_version": meta.get("library_version"),
        "metadata": meta["metadata"],
        "model_class": meta.get("model_class"),
        "model_module": meta.get("model_module"),
        "tensors": tensors,
        "total_bytes": sum(e["nbytes"] for e in tensors.values()),
    }
