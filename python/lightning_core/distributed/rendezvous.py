"""Rendezvous: passes rank 0's 128-byte NCCL unique id to the other ranks, within a timeout.

  exchange_id(init_method, rank, world_size, timeout, make_id) -> bytes

init_method:
  "tcp://HOST:PORT"  rank 0 listens on HOST:PORT; every other rank connects (retrying until the deadline) and
                     says (rank, world_size); once all world_size - 1 have joined, rank 0 sends each the id.
                     A rank missing at the deadline: rank 0's TimeoutError names it; the others' name rank 0.
  "file:///PATH"     rank 0 writes the id to PATH atomically (a temporary file, then os.replace); the others
                     poll for it, read it and leave an acknowledgement PATH.ack<r>; rank 0 waits for every
                     acknowledgement (naming the missing ranks at the deadline) and removes the files, so a
                     later run does not read a stale id. Use a path on a file system every rank sees.
Messages carry a magic word and world_size, so a stranger on the port or a file of another job is refused
(ValueError) rather than misread. Pure Python (sockets, files): tested without a GPU by
tests/python/test_distributed.py (2-4 local processes, missing peers, bad addresses).
"""
from __future__ import annotations

import os
import socket
import struct
import time
from typing import Callable
from urllib.parse import urlparse

ID_BYTES = 128
_MAGIC = b"LCRDV1\0\0"
_HELLO = struct.Struct("<8sii")  # magic, rank, world_size
_FILE_HEAD = struct.Struct("<8si")  # magic, world_size


class RendezvousTimeout(RuntimeError):
    """A peer did not arrive within the timeout (the message names it)."""


def parse(init_method: str) -> tuple[str, object]:
    """("tcp", (host, port)) or ("file", path); ValueError naming init_method otherwise."""
    if not isinstance(init_method, str):
        raise TypeError(f"init_method: expected a str such as 'tcp://127.0.0.1:29500' or 'file:///tmp/rdv', "
                        f"got {type(init_method).__name__}")
    u = urlparse(init_method)
    if u.scheme == "tcp":
        try:
            port = u.port
        except ValueError:
            port = None
        if not u.hostname or port is None or not 0 < port < 65536:
            raise ValueError(f"init_method: expected 'tcp://HOST:PORT' with a port 1..65535, got {init_method!r}")
        return "tcp", (u.hostname, port)
    if u.scheme == "file":
        path = u.path
        if u.netloc and u.netloc != "localhost":
            path = "/" + u.netloc + u.path  # file://relative/... written without the third slash
        if not path or path.endswith("/"):
            raise ValueError(f"init_method: expected 'file:///PATH' naming a file, got {init_method!r}")
        return "file", path
    raise ValueError(f"init_method: expected 'tcp://HOST:PORT' or 'file:///PATH', got {init_method!r}")


def exchange_id(init_method: str, rank: int, world_size: int, timeout: float,
                make_id: Callable[[], bytes]) -> bytes:
    """Rank 0 calls make_id() and passes the bytes to the other ranks; every rank returns them."""
    kind, where = parse(init_method)
    deadline = time.monotonic() + timeout
    if world_size == 1:
        return _checked_id(make_id())
    if kind == "tcp":
        host, port = where
        if rank == 0:
            return _tcp_serve(host, port, world_size, deadline, timeout, _checked_id(make_id()), init_method)
        return _tcp_join(host, port, rank, world_size, deadline, timeout, init_method)
    if rank == 0:
        return _file_publish(where, world_size, deadline, timeout, _checked_id(make_id()))
    return _file_read(where, rank, world_size, deadline, timeout)


def _checked_id(uid: bytes) -> bytes:
    if not isinstance(uid, (bytes, bytearray)) or len(uid) != ID_BYTES:
        raise ValueError(f"rendezvous: unique id: expected {ID_BYTES} bytes, got {len(uid)}")
    return bytes(uid)


def _missing(world_size: int, seen) -> str:
    return ", ".join(str(r) for r in range(1, world_size) if r not in seen)


# ---- tcp ------------------------------------------------------------------------------------------

def _recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        buf += chunk
    return buf


def _tcp_serve(host, port, world_size, deadline, timeout, uid, where) -> bytes:
    srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    peers: dict[int, socket.socket] = {}
    try:
        try:
            srv.bind((host, port))
        except OSError as e:
            raise RuntimeError(f"rendezvous: rank 0 cannot listen on {where}: {e}") from None
        srv.listen(world_size)
        while len(peers) < world_size - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RendezvousTimeout(
                    f"rendezvous: rank 0 timed out after {timeout:g} s at {where} waiting for rank(s) "
                    f"{_missing(world_size, peers)} of world_size {world_size}")
            srv.settimeout(left)
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            try:
                magic, r, ws = _HELLO.unpack(_recv_exact(conn, _HELLO.size, min(deadline, time.monotonic() + 5)))
            except (OSError, ConnectionError, struct.error):
                conn.close()  # a stranger or a port scanner: ignore it
                continue
            problem = None
            if magic != _MAGIC:
                problem = "not a lightning_core rendezvous"
            elif ws != world_size:
                problem = f"rank {r} has world_size {ws}, rank 0 has {world_size}"
            elif not 0 < r < world_size:
                problem = f"rank {r} is out of range 1..{world_size - 1}"
            elif r in peers:
                problem = f"two processes claim rank {r}"
            if problem:
                try:
                    conn.sendall(b"E" + problem.encode()[:255].ljust(255, b" "))
                finally:
                    conn.close()
                if magic == _MAGIC:
                    raise ValueError(f"rendezvous: {problem} ({where})")
                continue
            peers[r] = conn
        for conn in peers.values():
            conn.settimeout(max(deadline - time.monotonic(), 1.0))
            conn.sendall(b"K" + uid + b" " * 127)
        return uid
    finally:
        for conn in peers.values():
            conn.close()
        srv.close()


def _tcp_join(host, port, rank, world_size, deadline, timeout, where) -> bytes:
    last = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RendezvousTimeout(f"rendezvous: rank {rank} timed out after {timeout:g} s: rank 0 did not answer "
                                    f"at {where} (last error: {last})")
        try:
            sock = socket.create_connection((host, port), timeout=min(left, 5.0))
        except OSError as e:
            last = e
            time.sleep(min(0.05, max(left, 0)))
            continue
        try:
            sock.sendall(_HELLO.pack(_MAGIC, rank, world_size))
            reply = _recv_exact(sock, 1 + 255, deadline)
        except socket.timeout:
            raise RendezvousTimeout(
                f"rendezvous: rank {rank} timed out after {timeout:g} s at {where}: rank 0 is up but not every "
                f"rank of world_size {world_size} joined") from None
        except (OSError, ConnectionError) as e:
            last = e
            sock.close()
            time.sleep(0.05)
            continue
        finally:
            sock.close()
        if reply[:1] == b"K":
            return reply[1:1 + ID_BYTES]
        raise ValueError(f"rendezvous: rank 0 refused rank {rank}: {reply[1:].decode(errors='replace').strip()}")


# ---- file -----------------------------------------------------------------------------------------

def _file_publish(path, world_size, deadline, timeout, uid) -> bytes:
    for r in range(1, world_size):  # acknowledgements a crashed earlier run left behind
        try:
            os.remove(f"{path}.ack{r}")
        except FileNotFoundError:
            pass
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(_FILE_HEAD.pack(_MAGIC, world_size) + uid)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    acked: set[int] = set()
    try:
        while len(acked) < world_size - 1:
            for r in range(1, world_size):
                if r not in acked and os.path.exists(f"{path}.ack{r}"):
                    acked.add(r)
            if len(acked) == world_size - 1:
                break
            if time.monotonic() > deadline:
                raise RendezvousTimeout(
                    f"rendezvous: rank 0 timed out after {timeout:g} s at file://{path} waiting for rank(s) "
                    f"{_missing(world_size, acked)} of world_size {world_size}")
            time.sleep(0.01)
    finally:
        for p in [path] + [f"{path}.ack{r}" for r in range(1, world_size)]:
            try:
                os.remove(p)
            except FileNotFoundError:
                pass
    return uid


def _file_read(path, rank, world_size, deadline, timeout) -> bytes:
    while True:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = None
        if data is not None:
            if len(data) != _FILE_HEAD.size + ID_BYTES or data[:8] != _MAGIC:
                raise ValueError(f"rendezvous: file://{path} is not a lightning_core rendezvous file")
            _, ws = _FILE_HEAD.unpack(data[:_FILE_HEAD.size])
            if ws != world_size:
                raise ValueError(f"rendezvous: file://{path} was written for world_size {ws}, rank {rank} has "
                                 f"{world_size}")
            with open(f"{path}.ack{rank}", "wb"):
                pass
            return data[_FILE_HEAD.size:]
        if time.monotonic() > deadline:
            raise RendezvousTimeout(f"rendezvous: rank {rank} timed out after {timeout:g} s: rank 0 did not write "
                                    f"file://{path}")
        time.sleep(0.01)
