"""Checkpoint IO v1 / v1.1 (seed section 26): module state to and from ``.npz`` files, never via pickle.

- ``save_checkpoint(path, module, metadata=None)`` writes format version "1";
  ``save_model_checkpoint(path, model, metadata=None)`` writes "1.1" (adds the model class and a
  per-tensor manifest: shape, dtype, byte size and SHA-256 of every array).
- ``load_checkpoint(path, into, strict=True)`` / ``load_model_checkpoint(path, into, strict=True)``
  read either version (a v1 file loads under v1.1) and return an info dict; ``read_checkpoint_info(path)``
  validates a file and describes it without touching any module.

A module is anything with ``state_dict()`` (ordered mapping name -> ndarray) and
``load_state_dict(state, strict=True)``. The loader reads and validates the whole file, checks names,
shapes and dtypes against ``into.state_dict()``, builds the complete new state and only then calls
``load_state_dict`` once (and puts the old state back if that call raises), so a refused load leaves the
module exactly as it was. Files are written to a temporary file in the same directory and renamed over
the target (``os.replace``): a crash never leaves a half-written checkpoint at ``path``.

File format (full description: docs/python_api.md, "Checkpoints"): an uncompressed zip laid out as
``np.savez`` writes it, one ``<escaped name>.npy`` member per tensor plus ``__lc_meta__.npy``, a uint8
array holding UTF-8 JSON (format name, format version, user metadata, tensor list or manifest).

Tests: tests/python/test_checkpoint.py.
"""

import errno
import hashlib
import json
import math
import os
import secrets
import string
import zipfile
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from . import _C

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
SUPPORTED_VERSIONS = (VERSION_V1, VERSION_V1_1)
META_MEMBER = "__lc_meta__"
RESERVED_PREFIX = "__lc_"

_SAFE_CHARS = frozenset(string.ascii_letters + string.digits + "_.-")
_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex: everything .npy stores without pickle
_MAX_META_BYTES = 64 << 20
_MAX_DEFLATE_RATIO = 1100  # deflate cannot expand more than ~1032:1; anything beyond is a lie or a bomb
_MAX_JSON_DEPTH = 64


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
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
        raise TypeError(f"state_dict[{name!r}]: dtype {dtype} cannot be stored (numeric dtypes only; "
                        "object arrays would need pickle)")


def _native(arr):
    """A C-contiguous, native-byte-order copy of ``arr`` (a snapshot that the caller owns)."""
    dt = arr.dtype.newbyteorder("=")
    return np.array(arr, dtype=dt, order="C", copy=True)


def _sha256(arr):
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

def _fspath(path):
    p = os.fspath(path)
    return os.fsdecode(p) if isinstance(p, bytes) else p


def _write_atomic(path, members):
    """Writes ``members`` [(member stem, ndarray)] as an uncompressed .npz to a temporary file next to
    ``path``, fsyncs it and renames it over ``path``."""
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "cannot write a checkpoint over a directory", path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{base[:200]}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask applies, as for any new file
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for stem, arr in members:
                    with zf.open(stem + ".npy", "w", force_zip64=True) as mf:
                        np.lib.format.write_array(mf, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (best effort; not every platform can open a directory)
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _save(path, module, metadata, version):
    path = _fspath(path)
    _require_module(module, "model" if version == VERSION_V1_1 else "module")
    meta_user = _check_metadata(metadata)
    state = _module_state(module, "model" if version == VERSION_V1_1 else "module")
    meta = OrderedDict(format=FORMAT_NAME, format_version=version, library_version=str(_C.__version__))
    members = []
    manifest = []
    for name, value in state.items():
        arr = _native(value)
        stem = _escape(name)
        members.append((stem, arr))
        if version == VERSION_V1_1:
            manifest.append(OrderedDict(name=name, member=stem + ".npy", shape=list(arr.shape),
                                        dtype=arr.dtype.newbyteorder("<").str, nbytes=int(arr.nbytes),
                                        sha256=_sha256(arr)))
    if version == VERSION_V1_1:
        cls = type(module)
        meta["model_class"] = cls.__qualname__
        meta["model_module"] = cls.__module__
        meta["checksum"] = "sha256"
        meta["manifest"] = manifest
    else:
        meta["tensors"] = list(state.keys())
    meta["metadata"] = meta_user
    blob = json.dumps(meta, allow_nan=False, ensure_ascii=False).encode("utf-8")
    members.insert(0, (META_MEMBER, np.frombuffer(blob, dtype=np.uint8).copy()))
    _write_atomic(path, members)
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


def _read_header(zf, info):
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version} is not supported")
        return tuple(int(d) for d in shape), dtype, f.tell()


class _Checkpoint:
    __slots__ = ("path", "meta", "arrays", "headers")

    def __init__(self, path, meta, arrays, headers):
        self.path, self.meta, self.arrays, self.headers = path, meta, arrays, headers


def _read(path):
    """Reads and validates the whole checkpoint; raises CheckpointError (a ValueError) on any problem."""
    p = _fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(errno.ENOENT, "checkpoint file not found", p)
    if os.path.isdir(p):
        raise _not_ckpt(p, "it is a directory")
    size = os.path.getsize(p)
    if size == 0:
        raise _not_ckpt(p, "the file is empty")
    with open(p, "rb") as f:
        head = f.read(4)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        kind = "a pickle (pickles are never loaded)" if head[:1] == b"\x80" else (
            "a .npy file" if head == b"\x93NUM" else f"it starts with {head!r}")
        raise _not_ckpt(p, f"not a .npz (zip) file: {kind}")
    try:
        npz = np.load(p, allow_pickle=False)
    except MemoryError:
        raise
    except Exception as e:
        raise _not_ckpt(p, f"cannot open the zip archive (truncated or corrupt?): {type(e).__name__}: {e}") from e
    try:
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise _not_ckpt(p, "np.load did not see a .npz archive")
        return _read_npz(p, size, npz)
    except (CheckpointError, MemoryError):
        raise
    except Exception as e:  # zipfile.BadZipFile (bad CRC, truncated), zlib.error, EOFError, bad headers...
        raise _corrupt(p, f"{type(e).__name__}: {e}") from e
    finally:
        if isinstance(npz, np.lib.npyio.NpzFile):
            npz.close()


def _read_npz(p, size, npz):
    zf = npz.zip
    infos = zf.infolist()
    filenames = [i.filename for i in infos]
    if len(set(filenames)) != len(filenames):
        raise _corrupt(p, "duplicate member names in the zip archive")
    headers = {}
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
        shape, dtype, offset = _read_header(zf, info)
        if dtype.hasobject:
            raise _not_ckpt(p, f"member {fn!r} holds an object array (loading it would need pickle)")
        if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
            raise _not_ckpt(p, f"member {fn!r} has dtype {dtype} (numeric arrays only)")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise _corrupt(p, f"member {fn!r}: header says {shape} {dtype} ({nbytes} bytes) but the member "
                              f"holds {info.file_size - offset} data bytes")
        headers[fn[:-4]] = (shape, dtype)
    if stored_total > size:
        raise _corrupt(p, f"members claim {stored_total} bytes but the file has {size}")

    if META_MEMBER not in headers:
        raise _not_ckpt(p, f"no {META_MEMBER} member (a plain .npz, not written by save_checkpoint)")
    mshape, mdtype = headers.pop(META_MEMBER)
    if mdtype != np.uint8 or len(mshape) != 1 or mshape[0] > _MAX_META_BYTES:
        raise _not_ckpt(p, f"{META_MEMBER} must be a 1-D uint8 array of UTF-8 JSON, got {mshape} {mdtype}")
    raw = npz[META_MEMBER]
    try:
        meta = json.loads(bytes(raw).decode("utf-8"), parse_constant=_reject_constant)
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
        if not isinstance(meta.get("model_class"), str):
            raise _corrupt(p, f"{META_MEMBER}: 'model_class' must be a string")
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

    arrays = OrderedDict()
    for i, name in enumerate(order):
        stem = by_name[name]
        shape, dtype = headers[stem]
        if manifest is not None:
            e = manifest[i]
            if e.get("member") != stem + ".npy":
                raise _corrupt(p, f"manifest entry {name!r}: member {e.get('member')!r} != {stem + '.npy'!r}")
            mshape = e.get("shape")
            if not isinstance(mshape, list) or tuple(mshape) != shape:
                raise _corrupt(p, f"tensor {name!r}: manifest shape {mshape} != stored shape {list(shape)}")
            try:
                mdt = np.dtype(e.get("dtype"))
            except TypeError:
                mdt = None
            if not isinstance(e.get("dtype"), str) or mdt is None or mdt != dtype:
                raise _corrupt(p, f"tensor {name!r}: manifest dtype {e.get('dtype')!r} != stored dtype {dtype.str}")
        arr = npz[stem]
        if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != dtype:
            raise _corrupt(p, f"tensor {name!r}: could not be read back as {shape} {dtype}")
        if not (arr.flags.c_contiguous and arr.dtype.isnative):
            arr = _native(arr)
        if manifest is not None:
            digest = _sha256(arr)
            if e.get("nbytes") != arr.nbytes:
                raise _corrupt(p, f"tensor {name!r}: manifest nbytes {e.get('nbytes')!r} != {arr.nbytes}")
            if e.get("sha256") != digest:
                raise _corrupt(p, f"tensor {name!r}: SHA-256 mismatch (manifest {e.get('sha256')!r}, "
                                  f"data {digest})")
        arrays[name] = arr
    return _Checkpoint(p, meta, arrays, headers)


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
    ckpt = _read(path)
    p, meta, file_state = ckpt.path, ckpt.meta, ckpt.arrays

    current = into.state_dict()
    if not isinstance(current, Mapping):
        raise TypeError(f"into.state_dict() must return a mapping, got {type(current).__name__}")
    current = OrderedDict((k, np.asarray(v)) for k, v in current.items())

    missing = [k for k in current if k not in file_state]
    unexpected = [k for k in file_state if k not in current]
    problems = []
    mismatched = []
    for k, cur in current.items():
        if k in file_state:
            got = file_state[k]
            if got.shape != cur.shape or got.dtype != cur.dtype.newbyteorder("="):
                mismatched.append(f"{k!r}: checkpoint {list(got.shape)} {got.dtype}, "
                                  f"module {list(cur.shape)} {cur.dtype}")
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
        "model_class": stored_class,
        "model_class_matches": class_matches,
        "strict": strict,
        "loaded": [k for k in current if k in file_state],
        "missing": missing,
        "unexpected": unexpected,
    }


def load_checkpoint(path, into, strict=True):
    """Loads a checkpoint (format version "1" or "1.1") into the module ``into``; returns an info dict
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
    ckpt = _read(path)
    meta = ckpt.meta
    manifest = {e["name"]: e for e in meta.get("manifest", [])}
    tensors = OrderedDict()
    for name, arr in ckpt.arrays.items():
        entry = {"shape": tuple(arr.shape), "dtype": arr.dtype.name, "nbytes": int(arr.nbytes)}
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
