"""Tests of per-shape autotuning, the tune cache file and the crossover thresholds (spec: docs/python_api.md
"Tuning", include/lightning_core/tune.h).

- The API: matmul_reset_tuning, set_autotune/get_autotune, tune_cache_path, tune_cache_entries,
  conv2d_cpu_crossover_macs, matmul_cpu_crossover_flops; bad arguments.
- The cache file in fresh processes: LC_TUNE_CACHE_FILE (and the seed's CJ_MATMUL_TUNE_CACHE_FILE) is
  honoured, a second process reads the first one's choices back, reset re-reads the variable; corrupt,
  truncated and foreign-version files give exactly one warning line and no crash; processes running at
  once all land in the file.
- Files that are not ours (text, binary, larger than 64 MiB, another version, directory, symlink to a cache
  and dangling, FIFO, unreadable) are left byte-identical with one warning and no ".lock" next to them,
  and never make a process wait (each child runs under a timeout); ours (valid, absent, empty, damaged)
  are rewritten.
- Results stay right with tuning on (shapes above the tuning threshold, float64 NumPy reference, poisoned
  outputs), on "cpu" always and on "cuda" where there is a GPU, for the tuning call and the calls after.
- The conv2d / matmul crossover for device "auto" follows the environment.
No timing assertions: which candidate wins is the machine's business.
"""
import os
import pathlib
import re
import stat
import subprocess
import sys
import zlib

import numpy as np
import pytest

import lightning_core as lc

from conftest import CUDA, requires_cuda

WARNING = "lightning_core: warning:"


@pytest.fixture(autouse=True)
def _fresh_tuning(monkeypatch):
    # Every test starts and ends with an in-memory table (unless it sets a variable itself) and tuning on.
    monkeypatch.delenv("LC_TUNE_CACHE_FILE", raising=False)
    monkeypatch.delenv("CJ_MATMUL_TUNE_CACHE_FILE", raising=False)
    lc.set_autotune(True)
    lc.matmul_reset_tuning()
    yield
    monkeypatch.undo()
    lc.set_autotune(True)
    lc.matmul_reset_tuning()


def _run_fresh(code, _timeout=120, **env):
    """Runs `code` in a fresh interpreter importing this lightning_core; returns (stdout, stderr). A child
    still running after `_timeout` seconds is killed and the test fails (a hang is a failure)."""
    pkg_root = str(pathlib.Path(lc.__file__).resolve().parents[1])
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]))
    for k in ("LC_TUNE_CACHE_FILE", "CJ_MATMUL_TUNE_CACHE_FILE", "LC_AUTOTUNE"):
        full.pop(k, None)
    full.update(env)
    try:
        res = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=_timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the child process hung for {_timeout} s (killed); stderr so far: {e.stderr!r}")
    assert res.returncode == 0, res.stderr
    return res.stdout.strip(), res.stderr


def _warnings(stderr):
    return [line for line in stderr.splitlines() if line.startswith(WARNING)]


# A CPU matmul big enough to be tuned (m*k*n > 2^22), checked against float64 in the child.
TUNED_MATMUL = (
    "import numpy as np, lightning_core as lc\n"
    "rng = np.random.default_rng(7)\n"
    "a = rng.standard_normal((256, 200)).astype(np.float32)\n"
    "b = rng.standard_normal((200, 300)).astype(np.float32)\n"
    "y = lc.matmul2d(a, b, 'cpu')\n"
    "ref = a.astype(np.float64) @ b.astype(np.float64)\n"
    "assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 1e-5\n"
    "d = lc.last_dispatch()\n"
    "e = [x for x in lc.tune_cache_entries() if x['key'].startswith('matmul|cpu|f32|m=256,k=200,n=300|')]\n"
    "print(lc.tune_cache_path(), len(e), e[0]['mode'] if e else None, d['path'])\n"
)


def _path_matches_mode(path, mode):
    if mode == "mid":  # float32 at 4 < m <= 64 on AVX-512: the medium-m kernel
        return path == "f32_mid_avx512"
    return path == "blas" if mode == "blas" else path.endswith("_" + mode)


# ---- API -------------------------------------------------------------------------------------------

def test_api_and_defaults():
    assert lc.get_autotune() is True
    lc.set_autotune(False)
    assert lc.get_autotune() is False
    lc.set_autotune(flag=True)
    assert lc.get_autotune() is True
    assert lc.tune_cache_path() is None
    assert lc.tune_cache_entries() == []
    assert lc.matmul_reset_tuning() is None
    assert isinstance(lc.conv2d_cpu_crossover_macs(), float) and lc.conv2d_cpu_crossover_macs() > 0
    assert isinstance(lc.matmul_cpu_crossover_flops(), float) and lc.matmul_cpu_crossover_flops() > 0
    for name in ("matmul_reset_tuning", "set_autotune", "get_autotune", "tune_cache_path", "tune_cache_entries",
                 "conv2d_cpu_crossover_macs", "matmul_cpu_crossover_flops"):
        assert name in lc.__all__ and callable(getattr(lc, name)), name


def test_bad_arguments():
    with pytest.raises(TypeError, match="set_autotune"):
        lc.set_autotune("yes")
    with pytest.raises(TypeError):
        lc.set_autotune()
    with pytest.raises(TypeError):
        lc.set_autotune(True, False)
    for fn in (lc.matmul_reset_tuning, lc.get_autotune, lc.tune_cache_path, lc.tune_cache_entries,
               lc.conv2d_cpu_crossover_macs, lc.matmul_cpu_crossover_flops):
        with pytest.raises(TypeError):
            fn(1)
    assert lc.get_autotune() is True


def test_entries_in_memory_and_reset(rng, rel_err, poison):
    a, b = rng.standard_normal((256, 256)).astype(np.float32), rng.standard_normal((256, 256)).astype(np.float32)
    out = poison((256, 256))
    lc.matmul2d_into(a, b, out, "cpu")
    assert rel_err(out, a.astype(np.float64) @ b.astype(np.float64)) < 1e-5
    entries = lc.tune_cache_entries()
    assert len(entries) == 1
    e = entries[0]
    assert set(e) == {"key", "mode", "ms"}
    assert e["key"].startswith("matmul|cpu|f32|m=256,k=256,n=256|thr=")
    assert e["mode"] in ("small", "blas", "blocked", "mid") and isinstance(e["ms"], float) and e["ms"] >= 0
    assert _path_matches_mode(lc.last_dispatch()["path"], e["mode"])
    lc.matmul2d_into(a, b, out, "cpu")  # the stored choice, no new entry
    assert _path_matches_mode(lc.last_dispatch()["path"], e["mode"]) and len(lc.tune_cache_entries()) == 1
    lc.matmul_reset_tuning()
    assert lc.tune_cache_entries() == []


def test_small_shapes_and_autotune_off_add_nothing(rng):
    for m, k, n in [(1, 1, 1), (65, 63, 66), (129, 130, 131), (3, 4096, 5)]:
        lc.matmul2d(rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32), "cpu")
    assert lc.tune_cache_entries() == []
    lc.set_autotune(False)
    lc.matmul2d(rng.standard_normal((300, 300)).astype(np.float32), rng.standard_normal((300, 300)).astype(np.float32),
                "cpu")
    assert lc.tune_cache_entries() == []


# ---- correctness with tuning on ---------------------------------------------------------------------

TUNED_SHAPES = [(256, 256, 256), (300, 200, 500), (517, 129, 263), (8, 4096, 200)]


@pytest.mark.parametrize("m,k,n", TUNED_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_right_with_tuning(rng, rel_err, tol, poison, device, m, k, n, dtype):
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    for call in range(3):  # the tuning call, then calls taking the stored choice
        out = poison((m, n), dtype)
        lc.matmul2d_into(a, b, out, device)
        assert rel_err(out, want) < tol(dtype, k), (call, lc.last_dispatch())
        assert lc.last_dispatch()["selected"] == device
    keys = [e for e in lc.tune_cache_entries() if e["key"].startswith(f"matmul|{device}|")]
    if device == "cpu":
        assert len(keys) == 1 and _path_matches_mode(lc.last_dispatch()["path"], keys[0]["mode"])
    for e in keys:
        assert re.fullmatch(r"small|blas|blocked|mid|algo=\d+", e["mode"]), e


def test_linear_right_with_tuning(rng, rel_err, poison, device):
    x, w = rng.standard_normal((300, 256)).astype(np.float32), rng.standard_normal((256, 310)).astype(np.float32)
    bias = rng.standard_normal(310).astype(np.float32)
    want = np.maximum(x.astype(np.float64) @ w.astype(np.float64) + bias, 0.0)
    for _ in range(2):
        out = poison((300, 310))
        lc.linear_into(x, w, out, bias=bias, activation="relu", device=device)
        assert rel_err(out, want) < 1e-5


@requires_cuda
@pytest.mark.parametrize("seq,hd,causal", [(1024, 64, False), (1024, 64, True), (777, 48, True), (2048, 128, False)])
def test_cuda_attention_right_with_tuning(rng, rel_err, ref, poison, seq, hd, causal):
    # attention runs on sdpa's kernels, planned from the shapes: nothing to tune, nothing stored
    q, k, v = (rng.standard_normal((seq, hd)).astype(np.float32) for _ in range(3))
    want = ref.attention(q, k, v, causal)
    for _ in range(3):
        out = poison((seq, hd))
        lc.attention2d_into(q, k, v, out, causal, "cuda")
        assert rel_err(out, want) < 1e-5
    assert not [e for e in lc.tune_cache_entries() if e["key"].startswith("attention|")], lc.tune_cache_entries()


@requires_cuda
def test_cuda_attention_never_waits(rng):
    # No tuner: on device tensors attention never waits on the host, its first call of a shape included
    # (runtime_counters()["syncs"] would count a tuner's waits).
    seq, hd = 2048, 64
    tq, tk, tv = (lc.Tensor(rng.standard_normal((seq, hd)).astype(np.float32), device="cuda") for _ in range(3))
    out = lc.Tensor(np.zeros((seq, hd), np.float32), device="cuda")
    lc.synchronize("cuda")

    def syncs():
        lc.runtime_counters_reset()
        lc.attention2d_into(tq, tk, tv, out, False, "cuda")
        n = lc.runtime_counters()["syncs"]
        lc.synchronize("cuda")
        return n

    assert syncs() == 0
    assert syncs() == 0


@requires_cuda
def test_cuda_resident_operands_with_tuning(rng, rel_err):
    a, b = rng.standard_normal((512, 384)).astype(np.float32), rng.standard_normal((384, 640)).astype(np.float32)
    ta, tb = lc.Tensor(a, device="cuda"), lc.Tensor(b, device="cuda")
    want = a.astype(np.float64) @ b.astype(np.float64)
    for _ in range(2):
        y = lc.matmul(ta, tb, device="cuda")
        lc.synchronize("cuda")
        assert rel_err(y.numpy(), want) < 1e-5


# ---- the cache file across processes -------------------------------------------------------------

def test_env_path_round_trip_across_processes(tmp_path):
    path = tmp_path / "tune.cache"
    out, err = _run_fresh(TUNED_MATMUL, LC_TUNE_CACHE_FILE=str(path))
    got_path, count, mode, kpath = out.split()
    assert got_path == str(path) and count == "1" and _path_matches_mode(kpath, mode)
    assert not _warnings(err)
    text = path.read_text()
    assert text.startswith("lightning_core-tune v1\n") and re.search(r"\nend\t\d+\t[0-9a-f]{8}\n\Z", text)
    assert f"\t{mode}\t" in text
    # a second process reads it back before any op, and uses that mode
    out2, err2 = _run_fresh(
        "import lightning_core as lc\n"
        "print(len(lc.tune_cache_entries()), lc.tune_cache_entries()[0]['mode'])\n" + TUNED_MATMUL,
        LC_TUNE_CACHE_FILE=str(path))
    first, second = out2.splitlines()
    assert first == f"1 {mode}"
    assert second.split()[1:3] == ["1", mode] and _path_matches_mode(second.split()[3], mode)
    assert not _warnings(err2)


def test_seed_alias_and_reset_rereads_the_variable(tmp_path):
    a_path, b_path = tmp_path / "a.tune", tmp_path / "b.tune"
    code = (
        "import os, lightning_core as lc\n"
        "print(lc.tune_cache_path())\n"
        f"os.environ['CJ_MATMUL_TUNE_CACHE_FILE'] = {str(b_path)!r}\n"
        "print(lc.tune_cache_path())\n"  # read once: unchanged until a reset
        "lc.matmul_reset_tuning()\n"
        "print(lc.tune_cache_path())\n"
        "del os.environ['CJ_MATMUL_TUNE_CACHE_FILE']\n"
        "lc.matmul_reset_tuning()\n"
        "print(lc.tune_cache_path())\n"
    )
    out, _ = _run_fresh(code, CJ_MATMUL_TUNE_CACHE_FILE=str(a_path))
    assert out.splitlines() == [str(a_path), str(a_path), str(b_path), "None"]
    # LC_ wins over the seed's name
    out, _ = _run_fresh("import lightning_core as lc; print(lc.tune_cache_path())",
                        LC_TUNE_CACHE_FILE=str(a_path), CJ_MATMUL_TUNE_CACHE_FILE=str(b_path))
    assert out == str(a_path)


def _valid_file(entries):
    body = "lightning_core-tune v1\n" + "".join(f"{k}\t{m}\t{ms}\n" for k, m, ms in entries)
    return body + f"end\t{len(entries)}\t{zlib.crc32(body.encode()):08x}\n"


def test_hand_written_file_is_read(tmp_path):
    path = tmp_path / "hand.tune"
    path.write_text(_valid_file([("alpha|x", "m1", 0.5), ("beta|y", "m2", 1.25)]))
    out, err = _run_fresh("import lightning_core as lc; print(lc.tune_cache_entries())", LC_TUNE_CACHE_FILE=str(path))
    assert out == str([{"key": "alpha|x", "mode": "m1", "ms": 0.5}, {"key": "beta|y", "mode": "m2", "ms": 1.25}])
    assert not _warnings(err)


GOOD = _valid_file([("alpha|x", "m1", 0.5), ("beta|y", "m2", 1.25)])
DAMAGED = {
    "truncated_mid_line": GOOD[:30],
    "truncated_before_end": GOOD[: GOOD.index("end\t")],
    "checksum": GOOD.replace("m2", "m3"),
    "foreign_version": "lightning_core-tune v9\nwhatever\tthe\tfuture\nend\t1\t00000000\n",
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_file_one_warning_no_crash(tmp_path, case):
    path = tmp_path / f"{case}.tune"
    path.write_text(DAMAGED[case])
    code = "import lightning_core as lc\nprint(len(lc.tune_cache_entries()))\nlc.matmul_reset_tuning()\n" + TUNED_MATMUL
    out, err = _run_fresh(code, LC_TUNE_CACHE_FILE=str(path))
    loaded, last = out.splitlines()
    assert loaded == "0"  # never half a table
    warnings = _warnings(err)
    assert len(warnings) == 1, err
    assert str(path) in warnings[0]
    assert last.split()[1] == "1"  # tuning still ran, in memory at least
    text = path.read_text()
    if case == "foreign_version":
        assert text == DAMAGED[case]  # another format's file is never overwritten
    else:
        assert text.startswith("lightning_core-tune v1\n") and "matmul|cpu|f32|m=256,k=200,n=300|" in text
    assert not _lock_or_temp_files(tmp_path)


def _lock_or_temp_files(directory):
    return sorted(p.name for p in pathlib.Path(directory).iterdir() if p.name.endswith(".lock") or ".tmp." in p.name)


def _state(path):
    """What `path` is now: type and mode, inode, size, mtime, first 64 KiB, symlink target."""
    st = os.lstat(path)
    head = link = None
    if stat.S_ISREG(st.st_mode):
        try:
            with open(path, "rb") as f:
                head = f.read(1 << 16)
        except PermissionError:
            head = "unreadable"
    if stat.S_ISLNK(st.st_mode):
        link = os.readlink(path)
    return (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, head, link)


def _make_not_ours(tmp_path, kind):
    """Makes a file that is not a tune cache of ours; returns (path, the symlink's target or None)."""
    path = tmp_path / f"{kind}.thing"
    if kind == "text":
        path.write_text("my notes\nplease keep them\n")
    elif kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    elif kind == "large":  # 64 MiB + 4 KiB (sparse), even with our header line at the start
        with open(path, "wb") as f:
            f.write(b"lightning_core-tune v1\n")
            f.truncate((64 << 20) + 4096)
    elif kind == "large_exact":  # 64 MiB + 1 byte of text
        with open(path, "wb") as f:
            f.write(b"x" * 4096)
            f.truncate((64 << 20) + 1)
    elif kind == "other_version":
        path.write_text("lightning_core-tune v3\nfuture\tstuff\t1\nend\t1\t00000000\n")
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink_to_cache":
        target = tmp_path / "real.tune"
        target.write_text(_valid_file([("alpha|x", "m1", 0.5)]))
        path.symlink_to(target)
        return path, target
    elif kind == "dangling_symlink":
        path.symlink_to(tmp_path / "nowhere.tune")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "unreadable":
        path.write_text(_valid_file([("alpha|x", "m1", 0.5)]))
        path.chmod(0)
    return path, None


NOT_OURS = ["text", "binary", "large", "large_exact", "other_version", "directory", "symlink_to_cache",
            "dangling_symlink", "fifo", "unreadable"]


@pytest.mark.parametrize("kind", NOT_OURS)
def test_file_not_ours_is_left_untouched(tmp_path, kind):
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads a file of mode 000")
    path, target = _make_not_ours(tmp_path, kind)
    before = _state(path)
    target_before = _state(target) if target else None
    # path and entries first (the FIFO hang was at both), then the first tuned matmul stores a choice
    code = ("import lightning_core as lc\nprint(lc.tune_cache_path())\nprint(len(lc.tune_cache_entries()))\n"
            "lc.matmul_reset_tuning()\n" + TUNED_MATMUL +
            "lc.matmul2d(np.ones((300, 300), np.float32), np.ones((300, 300), np.float32), 'cpu')\n"
            "print(len(lc.tune_cache_entries()))\n")
    out, err = _run_fresh(code, _timeout=60, LC_TUNE_CACHE_FILE=str(path))
    got_path, loaded, tuned, count = out.splitlines()
    assert got_path == str(path) and loaded == "0"
    assert tuned.split()[1] == "1" and count == "2"  # tuning ran, in memory
    warnings = _warnings(err)
    assert len(warnings) == 1 and str(path) in warnings[0] and "left untouched" in warnings[0], err
    assert _state(path) == before  # byte-identical, same inode, same type
    if target:
        assert _state(target) == target_before
    assert not (tmp_path / "nowhere.tune").exists()
    assert not _lock_or_temp_files(tmp_path)
    if kind == "unreadable":
        path.chmod(0o600)


@pytest.mark.parametrize("kind", ["valid", "absent", "empty", "damaged"])
def test_file_of_ours_is_rewritten(tmp_path, kind):
    path = tmp_path / "ours.tune"
    old = [("alpha|x", "m1", 0.5)]
    if kind == "valid":
        path.write_text(_valid_file(old))
    elif kind == "empty":
        path.write_text("")
    elif kind == "damaged":
        path.write_text(_valid_file(old)[:-3])
    out, err = _run_fresh(TUNED_MATMUL, _timeout=60, LC_TUNE_CACHE_FILE=str(path))
    assert out.split()[1] == "1"
    assert len(_warnings(err)) == (1 if kind == "damaged" else 0), err
    text = path.read_text()
    assert text.startswith("lightning_core-tune v1\n") and re.search(r"\nend\t\d+\t[0-9a-f]{8}\n\Z", text)
    assert "matmul|cpu|f32|m=256,k=200,n=300|" in text
    assert ("alpha|x\tm1\t0.5\n" in text) == (kind == "valid")
    assert not _lock_or_temp_files(tmp_path)


def test_unwritable_path_warns_once(tmp_path):
    path = tmp_path / "missing_dir" / "x.tune"
    code = TUNED_MATMUL + "lc.matmul2d(np.ones((300, 300), np.float32), np.ones((300, 300), np.float32), 'cpu')\n"
    out, err = _run_fresh(code, LC_TUNE_CACHE_FILE=str(path))
    assert out.split()[1] == "1"
    warnings = _warnings(err)
    assert len(warnings) == 1 and str(path) in warnings[0]
    assert not path.parent.exists()  # nothing created on the way


def test_processes_at_once_all_land_in_the_file(tmp_path):
    path = tmp_path / "shared.tune"
    pkg_root = str(pathlib.Path(lc.__file__).resolve().parents[1])
    env = dict(os.environ, LC_TUNE_CACHE_FILE=str(path),
               PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]))
    env.pop("LC_AUTOTUNE", None)
    sizes = [256 + 8 * i for i in range(6)]
    procs = [
        subprocess.Popen([sys.executable, "-c",
                          "import numpy as np, lightning_core as lc\n"
                          f"n = {s}\n"
                          "for _ in range(3): lc.matmul2d(np.ones((n, n), np.float32), np.ones((n, n), np.float32), 'cpu')\n"],
                         env=env, stderr=subprocess.PIPE, text=True)
        for s in sizes
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert not _warnings(err), err
    out, err = _run_fresh("import lightning_core as lc; print('\\n'.join(e['key'] for e in lc.tune_cache_entries()))",
                          LC_TUNE_CACHE_FILE=str(path))
    assert not _warnings(err)
    for s in sizes:
        assert f"matmul|cpu|f32|m={s},k={s},n={s}|" in out, out


# ---- crossover ---------------------------------------------------------------------------------------

def _auto_conv(rng, n=1, c=3, h=16, w=16, oc=8):
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((oc, c, 3, 3)).astype(np.float32)
    y = lc.conv2d_nchw(x, wt, None, 1, 1, 1, 1, "auto")
    return y, lc.last_dispatch()


def test_conv2d_crossover_from_environment(rng, monkeypatch):
    monkeypatch.setenv("LC_CONV2D_CPU_CROSSOVER_MACS", "1e18")
    lc.matmul_reset_tuning()
    assert lc.conv2d_cpu_crossover_macs() == 1e18
    _, d = _auto_conv(rng)
    assert d["selected"] == "cpu" and d["reason"] == "auto_selected"
    monkeypatch.delenv("LC_CONV2D_CPU_CROSSOVER_MACS")
    monkeypatch.setenv("CJ_CONV2D_CPU_CROSSOVER_MACS", "0")  # the seed's name
    lc.matmul_reset_tuning()
    assert lc.conv2d_cpu_crossover_macs() == 0.0
    _, d = _auto_conv(rng)
    assert d["selected"] == ("cuda" if CUDA else "cpu") and d["reason"] == "auto_selected"


def test_matmul_crossover_from_environment(rng, monkeypatch):
    a, b = rng.standard_normal((16, 16)).astype(np.float32), rng.standard_normal((16, 16)).astype(np.float32)
    monkeypatch.setenv("LC_MATMUL_CPU_CROSSOVER_FLOPS", "0")
    lc.matmul_reset_tuning()
    lc.matmul2d(a, b, "auto")
    assert lc.last_dispatch()["selected"] == ("cuda" if CUDA else "cpu")
    monkeypatch.setenv("LC_MATMUL_CPU_CROSSOVER_FLOPS", "1e18")
    lc.matmul_reset_tuning()
    lc.matmul2d(a, b, "auto")
    assert lc.last_dispatch()["selected"] == "cpu"


def test_bad_crossover_value_warns_once_and_keeps_the_default():
    code = (
        "import lightning_core as lc\n"
        "a = lc.conv2d_cpu_crossover_macs(); lc.matmul_reset_tuning(); b = lc.conv2d_cpu_crossover_macs()\n"
        "print(a == b and a > 0)\n"
    )
    out, err = _run_fresh(code, LC_CONV2D_CPU_CROSSOVER_MACS="many")
    assert out == "True"
    w = _warnings(err)
    assert len(w) == 1 and "LC_CONV2D_CPU_CROSSOVER_MACS" in w[0]
