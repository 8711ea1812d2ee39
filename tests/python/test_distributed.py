"""lightning_core.distributed (docs/python_api.md "Distributed"): what runs anywhere — availability and its
reason, init's argument validation, the rendezvous (file and tcp) between 2-4 local processes, missing peers
timing out with the rank named, the cross-rank header comparison and the check flow (a fake communicator
standing in for NCCL's header exchange) — and, on a GPU, world size 1: init through file and tcp, every
collective x dtype against NumPy with poisoned outputs, all_reduce captured in lc.capture_graph, argument
errors leaving the group usable, an NCCL init that times out (aborted, process still usable).
Multi-GPU runs: tests/python/test_distributed_multi.py."""
import multiprocessing as mp
import os
import socket
import time

import numpy as np
import pytest

import lightning_core as lc
from lightning_core import distributed as dist
from lightning_core.distributed import rendezvous as rdv

GPU = dist.available()
requires_dist = pytest.mark.skipif(not GPU, reason=f"lc.distributed unavailable: {dist.why_unavailable()}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    yield
    dist.destroy()


# ---- availability and init's arguments ---------------------------------------------------------

def test_nccl_is_loaded_at_run_time_not_linked():
    """Importing lightning_core (and asking available()) maps no libnccl: a framework imported afterwards with
    its own NCCL (torch) loads unharmed; the first version query loads it (builds with NCCL), and torch, when
    installed, still imports after lightning_core."""
    import subprocess
    import sys

    code = (
        "import lightning_core as lc\n"
        "maps = lambda: open('/proc/self/maps').read().count('libnccl')\n"
        "lc.distributed.available(); lc.distributed.why_unavailable()\n"
        "print(maps())\n"
        "try:\n    import torch  # noqa: F401\n    print('torch ok')\nexcept ImportError as e:\n"
        "    print('torch missing' if 'No module' in str(e) else 'torch broken: ' + str(e))\n"
        "v = lc._C.dist_nccl_version()\n"
        "print(v, maps() > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == "0", out.stdout  # nothing of NCCL mapped by import / available()
    assert lines[1] in ("torch ok", "torch missing"), out.stdout
    version, mapped = lines[2].split()
    built = "built without NCCL" not in dist.why_unavailable()
    if built and lines[1] == "torch missing":
        assert int(version) >= 21800 and mapped == "True", out.stdout  # loaded on demand
    elif not built:
        assert int(version) == 0, out.stdout


def test_available_and_reason():
    assert dist.available() == (dist.why_unavailable() == "")
    if not dist.available():
        assert "NCCL" in dist.why_unavailable() or "GPU" in dist.why_unavailable()
        with pytest.raises(RuntimeError, match="unavailable"):
            dist.init(rank=0, world_size=1)
        with pytest.raises(RuntimeError, match="no process group"):
            dist.get_group()
        assert not dist.is_initialized()


@pytest.mark.parametrize("kwargs, exc, text", [
    (dict(world_size=0), ValueError, "world_size: expected >= 1, got 0"),
    (dict(world_size=2), ValueError, "rank: expected 0..1"),
    (dict(rank=2, world_size=2, init_method="tcp://127.0.0.1:5"), ValueError, "rank: expected 0..1, got 2"),
    (dict(rank=-1, world_size=2, init_method="tcp://127.0.0.1:5"), ValueError, "rank: expected 0..1, got -1"),
    (dict(rank=True, world_size=2), TypeError, "rank: expected an int, got bool"),
    (dict(world_size="2"), TypeError, "world_size: expected an int, got str"),
    (dict(timeout=0), ValueError, "timeout: expected a finite number of seconds > 0"),
    (dict(timeout=float("inf")), ValueError, "timeout"),
    (dict(device="cpu"), ValueError, "device: expected 'cuda' or 'cuda:N'"),
    (dict(device="cuda:x"), ValueError, "device: expected 'cuda' or 'cuda:N'"),
    (dict(rank=0, world_size=2), ValueError, "init_method: expected 'tcp://HOST:PORT' or 'file:///PATH'"),
    (dict(init_method="udp://x:1"), ValueError, "init_method: expected 'tcp://HOST:PORT' or 'file:///PATH'"),
    (dict(init_method="tcp://127.0.0.1"), ValueError, "with a port 1..65535"),
    (dict(init_method="file:///tmp/"), ValueError, "naming a file"),
    (dict(init_method=5), TypeError, "init_method: expected a str"),
])
def test_init_argument_errors(kwargs, exc, text):
    with pytest.raises(exc, match=text.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        dist.init(**kwargs)


def test_init_env_errors(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match=r"\$WORLD_SIZE, got 'two'"):
        dist.init()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="rank: expected 0..3, got 4"):
        dist.init(init_method="tcp://127.0.0.1:5")


# ---- rendezvous ----------------------------------------------------------------------------------

def _rdv_worker(method, rank, world, timeout, q):
    try:
        uid = rdv.exchange_id(method, rank, world, timeout, lambda: bytes(range(128)) if rank == 0 else None)
        q.put((rank, "ok", uid))
    except Exception as e:  # reported to the parent
        q.put((rank, type(e).__name__, str(e)))


def _run_ranks(method, world, ranks, timeout):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_rdv_worker, args=(method, r, world, timeout, q)) for r in ranks]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    out = {}
    for _ in procs:
        r, kind, val = q.get(timeout=timeout + 60)
        out[r] = (kind, val)
    for p in procs:
        p.join(timeout=30)
    return out, time.monotonic() - t0


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("kind", ["tcp", "file"])
def test_rendezvous_passes_the_id(kind, world, tmp_path):
    method = f"tcp://127.0.0.1:{free_port()}" if kind == "tcp" else f"file://{tmp_path}/rdv"
    out, _ = _run_ranks(method, world, range(world), 30.0)
    assert set(out) == set(range(world))
    for r in range(world):
        assert out[r] == ("ok", bytes(range(128))), out[r]
    if kind == "file":  # rank 0 removed the id and the acknowledgements
        assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["tcp", "file"])
def test_rendezvous_missing_rank_times_out(kind, tmp_path):
    method = f"tcp://127.0.0.1:{free_port()}" if kind == "tcp" else f"file://{tmp_path}/rdv"
    out, took = _run_ranks(method, 3, [0, 1], 1.5)  # rank 2 never comes
    assert took < 30
    kind0, msg0 = out[0]
    assert kind0 == "RendezvousTimeout" and "rank(s) 2 of world_size 3" in msg0 and "1.5 s" in msg0
    if kind == "tcp":  # rank 1 is connected and waits for the id: it times out too
        assert out[1][0] == "RendezvousTimeout" and "timed out after 1.5 s" in out[1][1]


@pytest.mark.parametrize("kind", ["tcp", "file"])
def test_rendezvous_no_rank0_times_out(kind, tmp_path):
    method = f"tcp://127.0.0.1:{free_port()}" if kind == "tcp" else f"file://{tmp_path}/rdv"
    t0 = time.monotonic()
    with pytest.raises(rdv.RendezvousTimeout, match="rank 1 timed out after 0.5 s"):
        rdv.exchange_id(method, 1, 2, 0.5, lambda: None)
    assert time.monotonic() - t0 < 10
    assert issubclass(rdv.RendezvousTimeout, RuntimeError)


def test_rendezvous_world_size_mismatch(tmp_path):
    method = f"file://{tmp_path}/rdv"
    (tmp_path / "rdv").write_bytes(rdv._FILE_HEAD.pack(rdv._MAGIC, 3) + bytes(128))
    with pytest.raises(ValueError, match="written for world_size 3, rank 1 has 2"):
        rdv.exchange_id(method, 1, 2, 5.0, lambda: None)
    (tmp_path / "rdv").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a lightning_core rendezvous file"):
        rdv.exchange_id(method, 1, 2, 5.0, lambda: None)


def test_rendezvous_tcp_world_size_mismatch():
    method = f"tcp://127.0.0.1:{free_port()}"
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_rdv_worker, args=(method, 0, 2, 20.0, q))
    p.start()
    try:
        with pytest.raises(ValueError, match="rank 1 has world_size 3, rank 0 has 2"):
            rdv.exchange_id(method, 1, 3, 20.0, lambda: None)
        r, kind, msg = q.get(timeout=60)
        assert (r, kind) == (0, "ValueError") and "world_size 3" in msg
    finally:
        p.join(timeout=30)


def test_rendezvous_bad_id_and_world_one():
    assert rdv.exchange_id("tcp://127.0.0.1:1", 0, 1, 1.0, lambda: b"\1" * 128) == b"\1" * 128
    with pytest.raises(ValueError, match="expected 128 bytes, got 3"):
        rdv.exchange_id("tcp://127.0.0.1:1", 0, 1, 1.0, lambda: b"abc")


# ---- the cross-rank check ------------------------------------------------------------------------

class FakeComm:
    """Stands in for _C.DistComm's header exchange: the other ranks' headers are given; records calls."""

    def __init__(self, rank, world, others):
        self.rank, self.world_size, self.others, self.calls = rank, world, others, []
        self.ok, self.error, self.timeout = True, "", 1.0

    def exchange_header(self, mine):
        self.calls.append(("exchange", list(mine)))
        hs = list(self.others)
        hs.insert(self.rank, list(mine))
        return hs

    def all_reduce(self, t):
        self.calls.append(("all_reduce",))
        return t


def test_compare_headers():
    h = dist.make_header
    t = lc.Tensor((4, 8))
    u = lc.Tensor((4, 4))
    same = [h("all_reduce", t)] * 3
    assert dist.compare_headers(same, 1) is None
    msg = dist.compare_headers([h("all_reduce", t), h("all_reduce", t), h("all_reduce", u)], 0)
    assert msg == ("all_reduce: t: rank 2 has shape (4, 4) float32 but rank 0 has shape (4, 8) float32: every rank "
                   "must pass the same shape and dtype; nothing ran")
    msg = dist.compare_headers([h("all_reduce", t), h("all_gather", t)], 1)
    assert "rank 1 called all_gather while rank 0 called all_reduce" in msg
    msg = dist.compare_headers([h("broadcast", t, 0), h("broadcast", t, 1)], 0)
    assert "src: rank 1 passed src=1 but rank 0 passed src=0" in msg
    msg = dist.compare_headers([h("all_reduce", t), h("all_reduce", t, refused=True)], 0)
    assert "rank 1 refused its arguments" in msg
    assert dist.compare_headers([h("all_reduce", t), h("all_reduce", t, refused=True)], 1) is None  # its own error
    f16 = lc.Tensor(np.zeros((4, 8), np.float32), dtype="float16")
    msg = dist.compare_headers([h("all_reduce", t), h("all_reduce", f16)], 0)
    assert "rank 1 has shape (4, 8) float16 but rank 0 has shape (4, 8) float32" in msg


def test_check_flow_with_fake_comm():
    t = lc.Tensor((4, 8))  # a CPU tensor: refused locally (the NCCL side would refuse it too)
    g = dist.ProcessGroup(FakeComm(0, 2, [dist.make_header("all_reduce", t)]), 0)
    with pytest.raises(ValueError, match="all_reduce: t: expected a tensor on cuda, got one on cpu"):
        g.all_reduce(t)
    assert g._comm.calls[0][0] == "exchange" and g._comm.calls[0][1][3] == 1  # the refusal was announced
    assert len(g._comm.calls) == 1  # and nothing ran
    with pytest.raises(TypeError, match="all_gather: t: expected a lightning_core Tensor on cuda, got ndarray"):
        g.all_gather(np.zeros(3))
    g.check = False  # no exchange: the local error at once
    with pytest.raises(ValueError, match="broadcast: t: expected a tensor on cuda"):
        g.broadcast(t, src=1)
    assert [c[0] for c in g._comm.calls] == ["exchange", "exchange"]


def test_group_local_problems_cpu_free(monkeypatch):
    monkeypatch.setattr(dist, "_TENSOR_TYPES", dist._TENSOR_TYPES + (_Cuda,))
    g = dist.ProcessGroup(FakeComm(0, 2, []), 0, check=False)
    cpu = lc.Tensor((4, 8))
    assert "src: expected a rank 0..1, got 2" in str(g._local_problem("broadcast", _Cuda(cpu), src=2))
    assert "divisible by world_size 2" in str(g._local_problem("reduce_scatter", _Cuda(lc.Tensor((3, 2)))))
    p = g._local_problem("all_gather", _Cuda(cpu), _Cuda(lc.Tensor((4, 8))), out_shape=(8, 8))
    assert isinstance(p, ValueError) and "out: expected shape (8, 8), got (4, 8)" in str(p)
    p = g._local_problem("all_gather", _Cuda(cpu), _Cuda(lc.Tensor((8, 8), dtype="float64")), out_shape=(8, 8))
    assert isinstance(p, TypeError) and "out: expected dtype float32 (t's), got float64" in str(p)


class _Cuda:
    """A CPU tensor's metadata presented as on cuda (the local checks only read metadata)."""

    def __init__(self, t):
        self.shape, self.dtype, self.is_contiguous, self.device = t.shape, t.dtype, True, "cuda"


# ---- GPU: world size 1 ---------------------------------------------------------------------------

DT = ["float32", "float64", "float16", "bfloat16", "int32", "int64"]


def _tensor(a, dtype):
    if dtype in ("int32", "int64"):
        return lc.Tensor(a.astype(dtype), device="cuda")
    return lc.Tensor(a.astype(np.float32) if dtype != "float64" else a, device="cuda", dtype=dtype)


def _host(t):
    return np.asarray(t.numpy()).astype(np.float64)


def _data(rng, shape, dtype):
    if dtype.startswith("int"):
        return rng.integers(-1000, 1000, size=shape).astype(dtype)
    return rng.standard_normal(shape)


@requires_dist
@pytest.mark.parametrize("how", ["tcp", "file", "env", "none"])
def test_world_one_init(how, tmp_path, monkeypatch):
    kw = {}
    if how == "tcp":
        kw = dict(init_method=f"tcp://127.0.0.1:{free_port()}")
    elif how == "file":
        kw = dict(init_method=f"file://{tmp_path}/rdv")
    elif how == "env":
        monkeypatch.setenv("RANK", "0")
        monkeypatch.setenv("WORLD_SIZE", "1")
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", str(free_port()))
    g = dist.init(rank=0, world_size=1, timeout=60.0, **kw) if how != "env" else dist.init(timeout=60.0)
    assert (g.rank, g.world_size, g.device, g.ok) == (0, 1, "cuda", True)
    assert dist.get_group() is g and dist.is_initialized()
    with pytest.raises(RuntimeError, match="exists already"):
        dist.init(rank=0, world_size=1)
    g.barrier()
    dist.destroy()
    assert not g.ok
    with pytest.raises(RuntimeError, match="destroyed"):
        g.barrier()


@requires_dist
@pytest.mark.parametrize("dtype", DT)
def test_world_one_collectives(dtype, rng):
    g = dist.init(rank=0, world_size=1, timeout=60.0)
    a = _data(rng, (6, 5), dtype)
    ref = _host(_tensor(a, dtype))  # a rounded to the dtype, in float64
    t = _tensor(a, dtype)
    assert g.all_reduce(t) is t
    np.testing.assert_array_equal(_host(t), ref)
    out = g.all_gather(t)
    assert out.shape == (6, 5) and out.dtype == dtype
    np.testing.assert_array_equal(_host(out), ref)
    if not dtype.startswith("int"):
        for into in (g.all_gather_into, g.reduce_scatter_into):
            poisoned = _tensor(np.full((6, 5), np.nan), dtype)
            assert into(poisoned, t) is poisoned
            np.testing.assert_array_equal(_host(poisoned), ref)
    np.testing.assert_array_equal(_host(g.reduce_scatter(t)), ref)
    assert g.broadcast(t, src=0) is t
    np.testing.assert_array_equal(_host(t), ref)


@requires_dist
def test_world_one_capture_replays():
    g = dist.init(rank=0, world_size=1, timeout=60.0)
    x = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    t = lc.Tensor(x, device="cuda")

    def step():
        lc.add_into(t, t, t, device="cuda")  # t *= 2, then the (world size 1) sum
        g.all_reduce(t)

    graph = lc.capture_graph(step)
    np.testing.assert_array_equal(t.numpy(), x)  # recorded, not run
    graph.replay(loops=3)
    lc.synchronize()
    np.testing.assert_array_equal(t.numpy(), x * 8)
    g.synchronize()
    del graph


@requires_dist
def test_world_one_argument_errors_keep_the_group():
    g = dist.init(rank=0, world_size=1, timeout=60.0)
    t = lc.Tensor(np.ones((4, 6), np.float32), device="cuda")
    with pytest.raises(ValueError, match="all_reduce: t: expected a tensor on cuda, got one on cpu"):
        g.all_reduce(lc.Tensor((4, 6)))
    with pytest.raises(ValueError, match="expected a contiguous tensor"):
        g.all_reduce(t.view((4, 3), (6, 2), 0))
    with pytest.raises(ValueError, match=r"out: expected shape \(4, 6\), got \(8, 6\)"):
        g.all_gather_into(lc.Tensor((8, 6), device="cuda"), t)
    with pytest.raises(TypeError, match="out: expected dtype float32"):
        g.reduce_scatter_into(lc.Tensor((4, 6), device="cuda", dtype="float16"), t)
    with pytest.raises(ValueError, match="src: expected a rank 0..0, got 1"):
        g.broadcast(t, src=1)
    g.check = False  # the C library's own checks
    with pytest.raises(ValueError, match="all_gather: t has shape"):
        g._comm.all_gather(t, lc.Tensor((8, 6), device="cuda"))
    with pytest.raises(ValueError, match="src: expected a rank 0..0, got 3"):
        g._comm.broadcast(t, 3)
    assert g.ok
    g.all_reduce(t)
    np.testing.assert_array_equal(t.numpy(), np.ones((4, 6)))


@requires_dist
def test_nccl_init_timeout_aborts_and_process_stays_usable():
    uid = lc._C.dist_unique_id()
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"rank 0 of 2: init .* timed out after 2 s"):
        lc._C.DistComm(uid, 2, 0, 2.0)  # rank 1 never joins
    assert time.monotonic() - t0 < 60
    a = lc.Tensor(np.ones((2, 2), np.float32), device="cuda")
    lc.add_into(a, a, a, device="cuda")
    np.testing.assert_array_equal(a.numpy(), 2 * np.ones((2, 2)))
    g = dist.init(rank=0, world_size=1, timeout=30.0)  # a new group works
    g.barrier()
