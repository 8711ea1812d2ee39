"""Runtime queries of lightning_core (docs/python_api.md, "Runtime"): backend_name, metal_available,
cuda_available, strict mode, num_threads / set_num_threads (results do not depend on the thread count),
cpu_features, blas_name, last_dispatch (keys, per-thread record) and __version__.
"""
import os
import pathlib
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import lightning_core as lc
from conftest import FALLBACK_DEVICE


def test_backend_name():
    name = lc.backend_name()
    assert name in ("cpu", "cuda")
    assert name == ("cuda" if lc.cuda_available() else "cpu")


def test_metal_is_never_available():
    assert lc.metal_available() is False


def test_cuda_available_is_a_bool():
    assert isinstance(lc.cuda_available(), bool)
    assert lc.cuda_available() == lc.cuda_available()  # stable across calls


def test_strict_device_toggle(strict_off):
    assert lc.strict_device() is False
    try:
        assert lc.set_strict_device(True) is None
        assert lc.strict_device() is True
        lc.set_strict_device(False)
        assert lc.strict_device() is False
        for bad in ("no", None, 2.0, [1]):  # a flag is a bool (or an int), never any truthy object
            with pytest.raises(TypeError, match="set_strict_device: flag: expected a bool"):
                lc.set_strict_device(bad)
            assert lc.strict_device() is False
    finally:
        lc.set_strict_device(False)


def test_device_unavailable_error_type():
    assert issubclass(lc.DeviceUnavailableError, RuntimeError)
    assert lc.DeviceUnavailableError is not RuntimeError


def test_num_threads_roundtrip(rng):
    n0 = lc.num_threads()
    assert isinstance(n0, int) and n0 >= 1
    env = os.environ.get("LC_NUM_THREADS")
    if env and env.isdigit() and int(env) >= 1:
        assert n0 == int(env)
    a = rng.standard_normal((70, 300)).astype(np.float32)
    b = rng.standard_normal((300, 90)).astype(np.float32)
    want = a.astype(np.float64) @ b
    try:
        for n in (1, 2, 3, 7):
            assert lc.set_num_threads(n) is None
            assert lc.num_threads() == n
            y = lc.matmul2d(a, b)
            assert np.linalg.norm(y - want) / np.linalg.norm(want) < 1e-5
    finally:
        lc.set_num_threads(n0)
    assert lc.num_threads() == n0


def test_set_num_threads_refuses_bad_values():
    n0 = lc.num_threads()
    for bad in (0, -1):
        with pytest.raises(ValueError, match=r"\bn\b|thread"):
            lc.set_num_threads(bad)
    for bad in (1.5, "2", None, True):
        with pytest.raises(TypeError, match=r"\bn\b|thread|int"):
            lc.set_num_threads(bad)
    assert lc.num_threads() == n0


def test_cpu_features():
    f = lc.cpu_features()
    assert isinstance(f, str)
    words = f.split()
    assert len(words) == len(set(words)), "duplicated feature names"
    assert all(re.fullmatch(r"[a-z0-9_.]+", w) for w in words), f
    # Cross-check with the kernel's view of the CPU where it is readable (x86 Linux).
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split()
    except (OSError, IndexError):
        flags = None
    if flags is not None:
        for w in words:
            if w in ("avx2", "fma", "avx512f", "avx", "f16c", "avx512bw", "avx512_bf16", "avx512_fp16", "amx_bf16"):
                assert w in flags, f"cpu_features() reports {w} but /proc/cpuinfo does not"
        if "avx2" in flags and "fma" in flags:
            assert "avx2" in words, "the CPU has AVX2 but cpu_features() does not report it"
            for w in ("f16c", "avx512_bf16"):
                if w in flags and "avx512f" in flags and "avx512bw" in flags and "avx512vl" in flags:
                    assert w in words, f"the CPU has {w} but cpu_features() does not report it"


def test_cpu_features_masks():
    # LC_CPU_DISABLE masks a feature and what builds on it (the converters and kernels then take the
    # next path), in a fresh process since the features are read once.
    code = "import lightning_core as lc; print(lc.cpu_features())"
    env = dict(os.environ, LC_CPU_DISABLE="avx512")
    words = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert not any(w.startswith("avx512") for w in words), words
    env["LC_CPU_DISABLE"] = "avx2"
    words = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert words == ["scalar"], words


def test_blas_name():
    assert lc.blas_name() in ("openblas", "none")


def test_last_dispatch_keys_and_values(rng):
    a = rng.standard_normal((5, 6)).astype(np.float32)
    b = rng.standard_normal((6, 3)).astype(np.float32)
    lc.matmul2d(a, b, "cpu")
    d = lc.last_dispatch()
    assert isinstance(d, dict)
    assert {"op", "requested", "selected", "reason", "path"} <= set(d)
    assert "matmul" in d["op"]
    assert d["requested"] == "cpu" and d["selected"] == "cpu"
    assert isinstance(d["reason"], str) and d["reason"]
    assert isinstance(d["path"], str) and d["path"]
    # The record follows the latest op.
    lc.relu(a, "metal")
    d = lc.last_dispatch()
    assert d["requested"] == "metal" and d["selected"] == FALLBACK_DEVICE
    assert d["reason"] == "fallback_preferred_unavailable"
    assert "matmul" not in d["op"]
    # The dict is a snapshot, not a live object.
    d["op"] = "x"
    assert lc.last_dispatch()["op"] != "x"


def test_last_dispatch_refused_call_does_not_record(rng):
    a = rng.standard_normal((4, 4)).astype(np.float32)
    lc.matmul2d(a, a, "metal")
    before = lc.last_dispatch()
    with pytest.raises(ValueError):
        lc.matmul2d(a, a[:3], "cpu")
    assert lc.last_dispatch() == before


def test_last_dispatch_is_per_thread(rng):
    a = rng.standard_normal((4, 4)).astype(np.float32)
    lc.matmul2d(a, a, "metal")
    seen = {}

    def worker():
        lc.attention2d(a, a, a, False, "auto")
        seen["d"] = lc.last_dispatch()

    th = threading.Thread(target=worker)
    th.start()
    th.join()
    assert "attention" in seen["d"]["op"] and seen["d"]["requested"] == "auto"
    mine = lc.last_dispatch()
    assert "matmul" in mine["op"] and mine["requested"] == "metal"


def test_last_dispatch_in_a_fresh_thread_has_no_op():
    seen = {}
    th = threading.Thread(target=lambda: seen.setdefault("d", lc.last_dispatch()))
    th.start()
    th.join()
    assert set(seen["d"]) >= {"op", "requested", "selected", "reason", "path"}
    assert seen["d"]["op"] is None


def _run_fresh(code, **env):
    """Runs `code` in a fresh interpreter that imports this same lightning_core, with extra env vars."""
    pkg_root = str(pathlib.Path(lc.__file__).resolve().parents[1])
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]), **env)
    res = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_environment_knobs():
    # LC_NUM_THREADS sets the starting thread count; LC_STRICT_DEVICE=1 starts in strict mode.
    code = (
        "import numpy as np, lightning_core as lc\n"
        "a = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5\n"
        "try:\n"
        "    lc.relu(a, 'metal'); r = 'ran'\n"
        "except lc.DeviceUnavailableError as e:\n"
        "    r = 'raised'\n"
        "print(lc.num_threads(), lc.strict_device(), r, lc.relu(a, 'cpu').sum())\n"
    )
    assert _run_fresh(code, LC_NUM_THREADS="3", LC_STRICT_DEVICE="1") == "3 True raised 4.5"
    assert _run_fresh(code, LC_NUM_THREADS="1", LC_STRICT_DEVICE="0") == "1 False ran 4.5"


def test_version():
    v = lc.__version__
    assert isinstance(v, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-]?[0-9A-Za-z.]+)?", v), v
    pyproject = pathlib.Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.exists():
        m = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
        assert m and m.group(1) == v, f"__version__ {v} != pyproject version {m and m.group(1)}"


def test_public_names_exist():
    names = """backend_name metal_available cuda_available set_strict_device strict_device num_threads
    set_num_threads cpu_features blas_name last_dispatch matmul2d matmul2d_into matmul matmul_np_into
    attention2d attention2d_into attention_forward attention_forward_into conv2d_nchw conv2d_nchw_into
    vector_add vector_add_into matrix_sub matrix_div matrix_sub_into matrix_div_into relu relu_into gelu
    gelu_into layer_norm layer_norm_into Tensor Tensor64 TensorView validate_shape validate_view
    DeviceUnavailableError""".split()
    missing = [n for n in names if not hasattr(lc, n)]
    assert not missing, missing
    for n in names:
        assert callable(getattr(lc, n)), n


def test_no_arg_functions_refuse_arguments():
    for fn in (lc.backend_name, lc.metal_available, lc.cuda_available, lc.strict_device, lc.num_threads,
               lc.cpu_features, lc.blas_name, lc.last_dispatch):
        with pytest.raises(TypeError):
            fn(1)


def test_error_text_is_not_formatted_into_itself():
    # Issue 12 item 8: a wrapped error names its context once, then the callee's message.
    with pytest.raises(ValueError) as e:
        lc.MatMulResidentSession(2**40, 2**40, 2**40, "cpu")
    msg = str(e.value)
    assert msg.startswith("matmul_session: a: ") and msg.count("matmul_session") == 1, msg
    assert "overflows" in msg


def test_cuda_timeline_only_in_its_build():
    """The kernel timeline is a developer build's (cmake -DLC_TIMELINE=ON, docs/design.md "The timeline build"):
    elsewhere cuda_timeline raises NotImplementedError naming what is missing, and a bad reset is a TypeError."""
    from lightning_core import _C
    with pytest.raises(NotImplementedError, match="LC_TIMELINE|no CUDA backend"):
        _C.cuda_timeline()
    with pytest.raises(TypeError):
        _C.cuda_timeline(reset=True, extra=1)
