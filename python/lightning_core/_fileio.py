"""Shared file helpers: path normalisation, file-kind names and the atomic write (temporary file next to the
target, fsync, rename over it, then a best-effort fsync of the directory), used by checkpoint.py,
models/safetensors.py and models/make_random.py.
Tests: tests/python/test_checkpoint.py, test_checkpoint_hostile.py, test_checkpoint_hf.py (special files,
directories, links, interrupted writes)."""

import errno
import os
import secrets
import stat


def fspath(path):
    """``path`` as a str (bytes paths decoded with the file-system encoding)."""
    p = os.fspath(path)
    return os.fsdecode(p) if isinstance(p, bytes) else p


def file_kind(st):
    """What a stat result that is not a regular file is, in words ("a FIFO", "a directory", ...)."""
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(st.st_mode):
            return kind
    return "not a regular file"


def write_atomic(path, write, op, what):
    """Calls ``write(f)`` on a new temporary file next to ``path``, fsyncs it and renames it over ``path``.
    A symbolic link is followed (its target is replaced and the link kept); only a regular file or nothing
    may be there: a directory raises IsADirectoryError, a FIFO, socket or device a ValueError naming ``op``'s
    path argument, before anything is written (never opened, so nothing waits on it). On any exception the
    temporary file is removed and ``path`` is untouched. Returns the resolved path."""
    path = os.path.realpath(fspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"cannot write {what} over a directory", path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{op}: path: expected a regular file or a new name, got {file_kind(st)} at {path!r}; "
                         "nothing was written")
    directory, base = os.path.dirname(path), os.path.basename(path)
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
            write(f)
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
        return path
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
    return path
