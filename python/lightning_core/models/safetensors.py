"""safetensors files: our own reader (mmap, zero copy, everything validated first) and writer.

Format: 8 bytes little-endian unsigned header length N, then N bytes of UTF-8 JSON
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}``
(padded with spaces to a multiple of 8 by the writer), then the data section: each tensor's raw
little-endian C-order bytes at [begin, end) relative to the start of the data section.

- ``SafetensorsFile(path)``: a read-only Mapping name -> ndarray. The file is mmapped once; each array is
  a view of the mmap (``arr.base`` chain ends at the ``mmap.mmap``), never a host copy. The header is
  validated entirely in the constructor (lengths, JSON, dtypes, shapes, offsets, sizes, overlaps,
  truncation): a bad file is a ``SafetensorsError`` (a ``ValueError``) naming the file and the tensor or
  field, raised before any array exists.
- ``load_file(path)`` -> dict of those views; ``save_file(tensors, path, metadata=None)`` writes one
  (atomically: temporary file + rename); ``save_file_streaming(entries, path, metadata)`` writes tensors
  produced chunk by chunk (bounded memory for big random checkpoints).
- ``ShardedSafetensors(folder)``: a lazy Mapping over the shards of ``model.safetensors.index.json``;
  ``open_weights(folder_or_file)`` picks the single file or the index.

dtypes: F64 F32 F16 BF16 (``ml_dtypes.bfloat16``) F8_E4M3 F8_E5M2 I64 I32 I16 I8 U64 U32 U16 U8 BOOL.
Reference: docs/python_api.md ("Checkpoints: Hugging Face folders and safetensors").
Tests: tests/python/test_checkpoint_hf.py.
"""
from __future__ import annotations

import errno
import json
import math
import mmap
import os
import stat
import struct
import sys
from collections.abc import Mapping

import ml_dtypes
import numpy as np

from .._fileio import fspath as _fspath, write_atomic

HEADER_LIMIT = 100_000_000  # bytes of JSON header accepted (the reference implementation's bound)
MAX_RANK = 64
INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

# safetensors dtype name -> NumPy dtype (little-endian)
DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn), "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype(np.bool_),
}


def _st_name(dtype):
    """The safetensors name of a NumPy dtype (either byte order), or None."""
    dtype = np.dtype(dtype)
    if not dtype.isnative:
        dtype = dtype.newbyteorder("=")
    for name, dt in DTYPES.items():
        if dt == dtype:
            return name
    return None


class SafetensorsError(ValueError):
    """A malformed safetensors file or index (message names the file and the tensor or field)."""


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _no_duplicates(where):
    def hook(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise SafetensorsError(f"{where}: duplicate JSON key {k!r}")
            out[k] = v
        return out
    return hook


def _reject_constant(token):
    raise ValueError(f"non-standard JSON constant {token}")


def _pread(fd, n, offset):
    """Up to n bytes at offset (fewer only at the end of the file)."""
    parts = []
    while n > 0:
        if hasattr(os, "pread"):
            b = os.pread(fd, min(n, 1 << 30), offset)
        else:  # no pread (Windows): seek and read
            os.lseek(fd, offset, os.SEEK_SET)
            b = os.read(fd, min(n, 1 << 30))
        if not b:
            break
        parts.append(b)
        n -= len(b)
        offset += len(b)
    return b"".join(parts)


def _open_regular(path, what):
    """Opens ``path`` read-only without blocking (a FIFO is never waited on); it must be a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise SafetensorsError(f"{what} {path!r}: expected a regular file, got {kind}")
        return fd, st.st_size
    except BaseException:
        os.close(fd)
        raise


class _Info:
    __slots__ = ("name", "st_dtype", "dtype", "shape", "begin", "end")

    def __init__(self, name, st_dtype, shape, begin, end):
        self.name, self.st_dtype, self.dtype = name, st_dtype, DTYPES[st_dtype]
        self.shape, self.begin, self.end = shape, begin, end


def _parse_header(path, raw, data_len):
    """Validates the header bytes; returns (metadata dict, {name: _Info} in file order)."""
    where = f"safetensors file {path!r}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SafetensorsError(f"{where}: header is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    if not text.lstrip().startswith("{"):
        raise SafetensorsError(f"{where}: header is not a JSON object (starts with {text[:16]!r})")
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates(f"{where}: header"), parse_constant=_reject_constant)
    except SafetensorsError:
        raise
    except (ValueError, RecursionError) as e:
        raise SafetensorsError(f"{where}: header is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise SafetensorsError(f"{where}: header is not a JSON object")
    metadata = obj.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        raise SafetensorsError(f"{where}: field '__metadata__': expected an object of strings, got {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise SafetensorsError(f"{where}: field '__metadata__'[{k!r}]: expected a string, got {type(v).__name__}")
    infos = {}
    for name, e in obj.items():
        t = f"{where}: tensor {name!r}"
        if name == "":
            raise SafetensorsError(f"{where}: a tensor has an empty name")
        if not isinstance(e, dict):
            raise SafetensorsError(f"{t}: expected an object with dtype, shape, data_offsets, got {type(e).__name__}")
        missing = [k for k in ("dtype", "shape", "data_offsets") if k not in e]
        if missing:
            raise SafetensorsError(f"{t}: missing field(s) {', '.join(missing)}")
        extra = sorted(set(e) - {"dtype", "shape", "data_offsets"})
        if extra:
            raise SafetensorsError(f"{t}: unknown field(s) {', '.join(map(repr, extra))}")
        dt = e["dtype"]
        if not isinstance(dt, str) or dt not in DTYPES:
            raise SafetensorsError(f"{t}: field 'dtype': unknown dtype {dt!r} (known: {', '.join(DTYPES)})")
        shape = e["shape"]
        if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(_is_int(d) and d >= 0 for d in shape):
            raise SafetensorsError(f"{t}: field 'shape': expected a list of at most {MAX_RANK} non-negative "
                                   f"integers, got {str(shape)[:80]}")
        offs = e["data_offsets"]
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs)):
            raise SafetensorsError(f"{t}: field 'data_offsets': expected [begin, end] integers, got {str(offs)[:80]}")
        begin, end = offs
        if begin < 0 or end < begin:
            raise SafetensorsError(f"{t}: field 'data_offsets': expected 0 <= begin <= end, got [{begin}, {end}]")
        nbytes = math.prod(shape) * DTYPES[dt].itemsize
        if end - begin != nbytes:
            raise SafetensorsError(f"{t}: size mismatch: data_offsets [{begin}, {end}] hold {end - begin} bytes, "
                                   f"shape {shape} {dt} needs {nbytes}")
        if end > data_len:
            raise SafetensorsError(f"{t}: field 'data_offsets' [{begin}, {end}] past the end of the data section "
                                   f"({data_len} bytes): offsets out of range or file truncated")
        infos[name] = _Info(name, dt, tuple(shape), begin, end)
    spans = sorted((i for i in infos.values() if i.end > i.begin), key=lambda i: (i.begin, i.end))
    for a, b in zip(spans, spans[1:]):
        if b.begin < a.end:
            raise SafetensorsError(f"{where}: tensors {a.name!r} [{a.begin}, {a.end}] and {b.name!r} "
                                   f"[{b.begin}, {b.end}] overlap")
    return metadata, infos


class SafetensorsFile(Mapping):
    """SafetensorsFile(path): the validated tensors of one safetensors file as zero-copy mmap views.

    ``f[name]`` -> read-only ndarray (a view of the mmap); ``f.metadata`` -> dict of str;
    ``f.dtype_of(name)`` / ``f.shape_of(name)`` without creating the view; ``f.nbytes`` total data bytes.
    """

    def __init__(self, path):
        self.path = _fspath(path)
        fd, size = _open_regular(self.path, "safetensors file")
        try:
            where = f"safetensors file {self.path!r}"
            if size < 8:
                raise SafetensorsError(f"{where}: {size} bytes, too short for the 8-byte header length (truncated)")
            head = _pread(fd, 8, 0)
            if len(head) != 8:
                raise SafetensorsError(f"{where}: could not read the 8-byte header length (truncated)")
            (n,) = struct.unpack("<Q", head)
            if n > HEADER_LIMIT:
                raise SafetensorsError(f"{where}: header length {n} exceeds the limit of {HEADER_LIMIT} bytes")
            if n > size - 8:
                raise SafetensorsError(f"{where}: header length {n} runs past the end of the file "
                                       f"({size} bytes; truncated or not a safetensors file)")
            if n < 2:
                raise SafetensorsError(f"{where}: header length {n} is too short for a JSON object")
            raw = _pread(fd, n, 8)
            if len(raw) != n:
                raise SafetensorsError(f"{where}: header ends short of its {n} bytes (file changed while read)")
            self._data_start = 8 + n
            self.metadata, self._infos = _parse_header(self.path, raw, size - self._data_start)
            self._mm = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)  # the mmap keeps its own reference to the file

    def __getitem__(self, name):
        i = self._infos[name]
        if i.end == i.begin:
            a = np.zeros(i.shape, dtype=i.dtype)
            a.flags.writeable = False
            return a
        count = (i.end - i.begin) // i.dtype.itemsize
        return np.frombuffer(self._mm, dtype=i.dtype, count=count, offset=self._data_start + i.begin).reshape(i.shape)

    def __iter__(self):
        return iter(self._infos)

    def __len__(self):
        return len(self._infos)

    def __contains__(self, name):
        return name in self._infos

    def dtype_of(self, name):
        return self._infos[name].dtype

    def shape_of(self, name):
        return self._infos[name].shape

    @property
    def nbytes(self):
        return sum(i.end - i.begin for i in self._infos.values())

    def __repr__(self):
        return f"SafetensorsFile({self.path!r}, {len(self)} tensors)"


def load_file(path):
    """The tensors of one safetensors file: {name: read-only ndarray view of the mmap}, in file order."""
    f = SafetensorsFile(path)
    return {k: f[k] for k in f}


class ShardedSafetensors(Mapping):
    """ShardedSafetensors(folder, index_name="model.safetensors.index.json"): one lazy Mapping over the shards.

    The index (``{"weight_map": {name: shard file}, "metadata": {...}}``) is validated, every shard it names
    is opened and validated (headers only; data stay in the mmaps), and the names must agree both ways:
    a name whose shard lacks it, or a shard tensor the index does not list, is a ``SafetensorsError``.
    ``m[name]`` is the shard's mmap view; ``m.metadata`` is the index's ``metadata``.
    """

    def __init__(self, folder, index_name=INDEX_NAME):
        self.folder = _fspath(folder)
        self.path = os.path.join(self.folder, index_name)
        where = f"safetensors index {self.path!r}"
        fd, size = _open_regular(self.path, "safetensors index")
        try:
            if size > HEADER_LIMIT:
                raise SafetensorsError(f"{where}: {size} bytes exceeds the limit of {HEADER_LIMIT}")
            raw = _pread(fd, size, 0)
        finally:
            os.close(fd)
        try:
            obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates(where))
        except SafetensorsError:
            raise
        except (ValueError, RecursionError) as e:
            raise SafetensorsError(f"{where}: not valid UTF-8 JSON ({e})") from None
        if not isinstance(obj, dict):
            raise SafetensorsError(f"{where}: expected a JSON object")
        wm = obj.get("weight_map")
        if not isinstance(wm, dict) or not wm:
            raise SafetensorsError(f"{where}: field 'weight_map': expected a non-empty object name -> shard file")
        md = obj.get("metadata", {})
        self.metadata = md if isinstance(md, dict) else {}
        shards = {}
        for name, shard in wm.items():
            if (not isinstance(shard, str) or not shard or os.path.isabs(shard) or shard != os.path.basename(shard)
                    or shard in (".", "..")):
                raise SafetensorsError(f"{where}: field 'weight_map'[{name!r}]: expected a file name in the folder, "
                                       f"got {shard!r}")
            shards.setdefault(shard, []).append(name)
        self._files = {}
        for shard, names in shards.items():
            sp = os.path.join(self.folder, shard)
            if not os.path.exists(sp):
                raise SafetensorsError(f"{where}: shard {shard!r} (holding {names[0]!r}) does not exist")
            f = SafetensorsFile(sp)
            lacking = [n for n in names if n not in f]
            if lacking:
                raise SafetensorsError(f"{where}: tensor {lacking[0]!r} is mapped to shard {shard!r}, which lacks it")
            unlisted = [n for n in f if wm.get(n) != shard]
            if unlisted:
                raise SafetensorsError(f"{where}: shard {shard!r} holds tensor {unlisted[0]!r}, which the weight_map "
                                       f"does not map to it")
            self._files[shard] = f
        self._where = {name: self._files[shard] for name, shard in wm.items()}

    def __getitem__(self, name):
        return self._where[name][name]

    def __iter__(self):
        return iter(self._where)

    def __len__(self):
        return len(self._where)

    def __contains__(self, name):
        return name in self._where

    def dtype_of(self, name):
        return self._where[name].dtype_of(name)

    def shape_of(self, name):
        return self._where[name].shape_of(name)

    @property
    def shards(self):
        return dict(self._files)

    def __repr__(self):
        return f"ShardedSafetensors({self.folder!r}, {len(self)} tensors in {len(self._files)} shards)"


def open_weights(path):
    """A folder's weights: ``model.safetensors.index.json`` (sharded) if present, else ``model.safetensors``;
    or a path to one ``.safetensors`` file. Returns a Mapping with ``dtype_of``/``shape_of``."""
    p = _fspath(path)
    if os.path.isdir(p):
        if os.path.exists(os.path.join(p, INDEX_NAME)):
            return ShardedSafetensors(p)
        single = os.path.join(p, SINGLE_NAME)
        if os.path.exists(single):
            return SafetensorsFile(single)
        raise FileNotFoundError(errno.ENOENT, f"no {SINGLE_NAME} or {INDEX_NAME} in the model folder", p)
    return SafetensorsFile(p)


# ---------------------------------------------------------------------------------------------- writing

def _check_metadata(metadata):
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise TypeError(f"save_file: metadata: expected a dict of str -> str or None, got {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save_file: metadata[{k!r}]: expected str keys and str values, got {type(v).__name__}")
    return dict(metadata)


def _layout(entries, metadata):
    """entries: [(name, st_dtype, shape)] -> (header bytes padded to 8, [(name, begin, end)] in data order).
    Tensors are laid out by itemsize descending (then name) so each one starts aligned to its itemsize."""
    seen = set()
    for name, dt, shape in entries:
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError(f"save_file: tensor name: expected a non-empty str other than '__metadata__', got {name!r}")
        if name in seen:
            raise ValueError(f"save_file: tensor {name!r} given twice")
        seen.add(name)
    order = sorted(entries, key=lambda e: (-DTYPES[e[1]].itemsize, e[0]))
    header, spans, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, shape in order:
        n = math.prod(shape) * DTYPES[dt].itemsize
        header[name] = {"dtype": dt, "shape": [int(d) for d in shape], "data_offsets": [off, off + n]}
        spans.append((name, off, off + n))
        off += n
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw, spans


def _le_bytes(a):
    a = np.ascontiguousarray(a)
    if sys.byteorder == "big" and a.dtype.itemsize > 1:
        a = a.byteswap()
    return memoryview(a.reshape(-1).view(np.uint8)) if a.size else b""


def _write_atomic(path, write):
    return write_atomic(path, write, "save_file", "a safetensors file")


def save_file(tensors, path, metadata=None):
    """Writes ``tensors`` ({name: ndarray}) to ``path`` as safetensors (C order, little-endian; header padded
    to 8 bytes). ``metadata``: dict of str -> str or None. Returns the path written."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"save_file: tensors: expected a dict name -> ndarray, got {type(tensors).__name__}")
    entries, arrays = [], {}
    for name, a in tensors.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"save_file: tensor {name!r}: expected a NumPy array, got {type(a).__name__}")
        dt = _st_name(a.dtype)
        if dt is None:
            raise TypeError(f"save_file: tensor {name!r}: dtype {a.dtype} has no safetensors name "
                            f"(supported: {', '.join(str(d) for d in DTYPES.values())})")
        entries.append((name, dt, a.shape))
        arrays[name] = a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))
    header, spans = _layout(entries, _check_metadata(metadata))

    def write(f):
        f.write(header)
        for name, _, _ in spans:
            f.write(_le_bytes(arrays[name]))
    return _write_atomic(path, write)


def save_file_streaming(entries, path, metadata=None):
    """Writes tensors produced in chunks: ``entries`` is a list of (name, dtype, shape, produce) where
    ``produce()`` yields arrays of ``dtype`` whose elements, in C order, make up the tensor. Only one chunk
    is held at a time. A producer that yields the wrong dtype or a wrong total size is a ValueError and
    nothing is written at ``path``."""
    layout, produce = [], {}
    for name, dtype, shape, fn in entries:
        dt = _st_name(dtype)
        if dt is None:
            raise TypeError(f"save_file_streaming: tensor {name!r}: dtype {np.dtype(dtype)} has no safetensors name")
        layout.append((name, dt, tuple(int(d) for d in shape)))
        produce[name] = (np.dtype(DTYPES[dt]), fn)
    header, spans = _layout(layout, _check_metadata(metadata))

    def write(f):
        f.write(header)
        for name, begin, end in spans:
            dtype, fn = produce[name]
            got = 0
            for chunk in fn():
                chunk = np.asarray(chunk)
                if chunk.dtype != dtype:
                    raise ValueError(f"save_file_streaming: tensor {name!r}: a chunk has dtype {chunk.dtype}, "
                                     f"expected {dtype}")
                got += chunk.nbytes
                if got > end - begin:
                    break
                f.write(_le_bytes(chunk))
            if got != end - begin:
                raise ValueError(f"save_file_streaming: tensor {name!r}: chunks hold {got} bytes, expected {end - begin}")
    return _write_atomic(path, write)
