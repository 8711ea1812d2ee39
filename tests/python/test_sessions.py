"""Resident sessions (seed section 23; docs/python_api.md "Resident sessions"): every method's exact
semantics — what it uploads, computes, downloads, and when `out` changes — on cpu and cuda, against
float64 references on awkward sizes with poisoned outputs; the synchronisation counts of batches; the
conv -> attention chain session; AttentionIoPolicy; qkv_pack_repeat; bad input.
Spec: include/lightning_core/session.h, python/lightning_core/sessions.py."""
import numpy as np
import pytest

import lightning_core as lc
from conftest import CUDA

TOL = 2e-5


def _mats(rng, m, k, n):
    return (rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32))


def test_matmul_session_method_semantics(device, rng, ref, rel_err, poison):
    m, k, n = 37, 53, 29
    s = lc.MatMulResidentSession(m, k, n, device)
    assert s.device == device and s.num_inputs == 2 and s.output_shape == (m, n)
    a, b = _mats(rng, m, k, n)

    out = poison((m, n))
    s.start_into(a, b, out)  # upload, compute, download
    assert rel_err(out, ref.matmul(a, b)) < TOL

    a2, b2 = _mats(rng, m, k, n)
    out2 = poison((m, n))
    s.run_into(a2, b2, out2)  # upload + compute, no download: out2 untouched
    assert np.isnan(out2).all()
    s.download_into(out2)
    assert rel_err(out2, ref.matmul(a2, b2)) < TOL

    a3, b3 = _mats(rng, m, k, n)
    out3 = poison((m * n,))  # flat outputs are accepted (the seed passes them)
    s.sync_into(a3, b3, out3)
    assert rel_err(out3.reshape(m, n), ref.matmul(a3, b3)) < TOL

    a4, b4 = _mats(rng, m, k, n)
    out4 = poison((m, n))
    s.run_batch_sync_into(a4, b4, out4, 5)
    assert rel_err(out4, ref.matmul(a4, b4)) < TOL

    a5, b5 = _mats(rng, m, k, n)
    out5 = poison((m, n))
    s.run_batch_sync_no_download_into(a5, b5, out5, 3)
    assert np.isnan(out5).all()  # no download
    s.download_into(out5)
    assert rel_err(out5, ref.matmul(a5, b5)) < TOL

    # Cached: no upload. Changing the host arrays afterwards must not change the result.
    a5_before = a5.copy()
    a5 *= 3.0
    s.run_batch_sync_cached_no_download(4)
    out6 = poison((m, n))
    s.download_into(out6)
    assert rel_err(out6, ref.matmul(a5_before, b5)) < TOL
    assert s.runs == 1 + 1 + 1 + 5 + 3 + 4
    if device == "cuda":
        assert s.uses_graph and s.replays == s.runs - 1  # the first run is eager, the rest replay one graph
    else:
        assert not s.uses_graph and s.replays == 0


def test_matmul_session_accepts_tensors_and_other_dtypes(device, rng, ref, rel_err, poison):
    m, k, n = 19, 8, 33
    a, b = _mats(rng, m, k, n)
    s = lc.MatMulMetalResidentSession(m, k, n, device)  # the seed's alias
    out = poison((m, n))
    s.start_into(lc.Tensor(a, device=device), b.astype(np.float64), out)  # float64 converted to float32
    assert rel_err(out, ref.matmul(a, b)) < TOL
    t_out = lc.Tensor(poison((m, n)), device=device)
    s.start_into(a, lc.Tensor(b, device=device), t_out)
    assert rel_err(t_out.numpy(), ref.matmul(a, b)) < TOL
    # Strided (transposed) input: gathered
    at = np.asfortranarray(a)
    s.sync_into(at, b, out)
    assert rel_err(out, ref.matmul(a, b)) < TOL


def test_matmul2d_resident_session_seed_example(device, rng, ref, rel_err, poison):
    # Seed section 23, at an awkward size (the seed uses 1024).
    a = rng.random((65, 31)).astype(np.float32)
    b = rng.random((31, 47)).astype(np.float32)
    out = poison((65, 47))
    sess = lc.matmul2d_resident_session(a, b, device=device)
    sess.start_into(a, b, out)
    sess.run_batch_sync_no_download_into(a, b, out, 8)
    assert rel_err(out, ref.matmul(a, b)) < TOL
    with pytest.raises(ValueError, match="b"):
        lc.matmul2d_resident_session(a, a)


@pytest.mark.skipif(not CUDA, reason="counts host<->device synchronisations of the CUDA backend")
def test_batch_costs_one_synchronisation(rng):
    m, k, n = 64, 48, 80
    a, b = _mats(rng, m, k, n)
    s = lc.MatMulResidentSession(m, k, n, "cuda")
    out = np.empty((m, n), np.float32)
    s.start_into(a, b, out)
    s.run_batch_sync_cached_no_download(2)  # captures the graph
    lc.runtime_counters_reset()
    s.run_batch_sync_cached_no_download(16)
    c = lc.runtime_counters()
    assert c["syncs"] == 1 and c["graph_launches"] == 16 and c["uploads"] == 0 and c["downloads"] == 0
    lc.runtime_counters_reset()
    s.run_batch_sync_into(a, b, out, 10)
    c = lc.runtime_counters()
    assert c["syncs"] == 1 and c["downloads"] == 1 and c["uploads"] == 2 and c["graph_launches"] == 10
    assert c["h2d_bytes"] == a.nbytes + b.nbytes and c["d2h_bytes"] == out.nbytes
    lc.runtime_counters_reset()
    s.run_into(a, b, out)  # no wait under the default policy
    c = lc.runtime_counters()
    assert c["syncs"] == 0 and c["downloads"] == 0
    s.synchronize()
    assert lc.runtime_counters()["syncs"] == 1


def test_cpu_session_counts_no_device_traffic(rng):
    a, b = _mats(rng, 9, 10, 11)
    s = lc.MatMulResidentSession(9, 10, 11, "cpu")
    lc.runtime_counters_reset()
    s.run_batch_sync_into(a, b, np.empty((9, 11), np.float32), 3)
    c = lc.runtime_counters()
    assert c["syncs"] == 0 and c["uploads"] == 0 and c["graph_launches"] == 0
    assert c["dispatches"] == 3  # each run is one matmul through the ops layer


@pytest.mark.parametrize("op", ["add", "sub", "div"])
def test_elemwise_session(device, op, rng, rel_err, poison):
    rows, cols = 23, 41
    a = rng.standard_normal((rows, cols)).astype(np.float32)
    b = (rng.random((rows, cols)) + 0.5).astype(np.float32)
    ref = {"add": np.add, "sub": np.subtract, "div": np.divide}[op](a.astype(np.float64), b.astype(np.float64))
    s = lc.MatrixElemwiseResidentSession(rows, cols, device)
    out = poison((rows, cols))
    getattr(s, f"{op}_start_into")(a, b, out)
    assert rel_err(out, ref) < 1e-6
    a2 = rng.standard_normal((rows, cols)).astype(np.float32)
    out2 = poison((rows, cols))
    getattr(s, f"{op}_run_into")(a2, b, out2)  # no download
    assert np.isnan(out2).all()
    s.download_into(out2)
    ref2 = {"add": np.add, "sub": np.subtract, "div": np.divide}[op](a2.astype(np.float64), b.astype(np.float64))
    assert rel_err(out2, ref2) < 1e-6
    assert lc.MatrixElemwiseMetalResidentSession is lc.MatrixElemwiseResidentSession


def test_elemwise_session_programs_keep_their_own_graphs(device, rng, rel_err, poison):
    a = rng.standard_normal((7, 5)).astype(np.float32)
    b = (rng.random((7, 5)) + 0.5).astype(np.float32)
    s = lc.MatrixElemwiseResidentSession(7, 5, device)
    out = poison((7, 5))
    for _ in range(3):  # interleaved programs: each result is its own op's
        s.sub_start_into(a, b, out)
        assert rel_err(out, a.astype(np.float64) - b) < 1e-6
        s.add_start_into(a, b, out)
        assert rel_err(out, a.astype(np.float64) + b) < 1e-6


@pytest.mark.parametrize("causal", [False, True])
def test_attention_session(device, causal, rng, ref, rel_err, poison):
    seq, d = 45, 24
    s = lc.AttentionSession(seq, d, causal, device)
    for _ in range(3):  # fresh inputs each time: forward_into uploads, computes and downloads
        q, k, v = (rng.standard_normal((seq, d)).astype(np.float32) for _ in range(3))
        out = poison((seq * d,))
        s.forward_into(q.ravel(), k.ravel(), v.ravel(), out)
        assert rel_err(out.reshape(seq, d), ref.attention(q, k, v, causal)) < TOL


def _chain_ref(x, w, b, seq, d, ref):
    y = ref.conv2d(x, w, b, 1, 1, 1, 1, apply_relu=True).ravel()
    flat = y[np.arange(3 * seq * d) % y.size]
    q, k, v = (flat[i * seq * d:(i + 1) * seq * d].reshape(seq, d) for i in range(3))
    return ref.attention(q, k, v)


@pytest.mark.parametrize("seq,d", [(48, 48), (96, 48), (192, 8), (5, 3), (6, 130), (33, 64), (21, 32), (9, 16), (70, 100)])
def test_conv_attention_session_chain(device, seq, d, rng, ref, rel_err, poison):
    # The seed's torchstrong chain: x (1,3,8,8), w (16,3,3,3); conv output 1024 elements, so q|k|v
    # repeats it ((48,48): 6912 > 1024) or truncates it ((5,3): 45 < 1024).
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    w = (rng.random((16, 3, 3, 3)) - 0.5).astype(np.float32)
    b = (rng.random(16) - 0.5).astype(np.float32)
    s = lc.ConvAttentionSession(1, 3, 8, 8, 16, seq, d, device=device)
    out = poison((seq, d))
    s.start_into(x, w, b, out)
    assert rel_err(out, _chain_ref(x, w, b, seq, d, ref)) < TOL
    # cuda: one fused kernel where the shape fits it (head_dim <= 128), else conv, pack and attention
    expect_op = "conv_attention" if device == "cuda" and d <= 128 else "attention_forward"
    assert lc.last_dispatch()["op"] == expect_op
    x2 = rng.random((1, 3, 8, 8)).astype(np.float32)
    out2 = poison((seq, d))
    s.run_batch_sync_into(x2, w, b, out2, 4)
    assert rel_err(out2, _chain_ref(x2, w, b, seq, d, ref)) < TOL
    s.run_batch_sync_cached_no_download(3)
    out3 = poison((seq, d))
    s.download_into(out3)
    assert rel_err(out3, _chain_ref(x2, w, b, seq, d, ref)) < TOL
    if device == "cuda":
        assert s.uses_graph


def test_qkv_pack_repeat(device, rng):
    src = rng.standard_normal((2, 3, 5)).astype(np.float32)  # 30 elements
    q, k, v = lc.qkv_pack_repeat(src, 4, 4, device=device)  # 48 > 30: repeats
    flat = src.ravel()[np.arange(48) % 30]
    np.testing.assert_array_equal(np.concatenate([q.ravel(), k.ravel(), v.ravel()]), flat)
    small = lc.qkv_pack_repeat(src, 2, 3, device=device)  # 18 < 30: truncates
    np.testing.assert_array_equal(small.ravel(), src.ravel()[:18])
    out = np.full((7, 11), np.nan, np.float32)
    lc.qkv_pack_repeat_into(src, out, device=device)
    np.testing.assert_array_equal(out.ravel(), src.ravel()[np.arange(77) % 30])
    with pytest.raises(ValueError, match="seq_len"):
        lc.qkv_pack_repeat(src, 0, 4)


def test_attention_io_policy(device, rng, ref, rel_err):
    seq, d = 33, 16
    q, k, v = (rng.standard_normal((seq, d)).astype(np.float32) for _ in range(3))
    expect = ref.attention(q, k, v)
    out = lc.attention_forward_with_policy(q, k, v, seq, d, False, device, lc.AttentionIoPolicy())
    assert rel_err(out, expect) < TOL
    # upload=False: the resident q, k, v of the previous call are used, not the new arrays
    q2 = rng.standard_normal((seq, d)).astype(np.float32)
    out = lc.attention_forward_with_policy(q2, k, v, seq, d, False, device, lc.AttentionIoPolicy(upload=False))
    assert rel_err(out, expect) < TOL
    # download=False: nothing returned; the session holds the result
    p = lc.AttentionIoPolicy(download=False, synchronize=False)
    assert lc.attention_forward_with_policy(q2, k, v, seq, d, False, device, p) is None
    res = np.full((seq, d), np.nan, np.float32)
    lc.attention_policy_session(seq, d, False, device).download_into(res)
    assert rel_err(res, ref.attention(q2, k, v)) < TOL
    assert repr(p) == "AttentionIoPolicy(upload=True, download=False, synchronize=False)"
    with pytest.raises(ValueError, match="upload=False"):
        lc.attention_forward_with_policy(q, k, v, 7, 3, True, device, lc.AttentionIoPolicy(upload=False))
    with pytest.raises(TypeError, match="policy"):
        lc.attention_forward_with_policy(q, k, v, seq, d, False, device, {"upload": True})


def test_session_bad_input(device, rng, poison):
    s = lc.MatMulResidentSession(4, 5, 6, device)
    a, b = _mats(rng, 4, 5, 6)
    with pytest.raises(ValueError, match="a: no data"):
        s.run_batch_sync_cached_no_download(1)
    with pytest.raises(ValueError, match="nothing to download"):
        s.download_into(poison((4, 6)))
    with pytest.raises(ValueError, match="b: expected 30 elements"):
        s.start_into(a, b[:, :5], poison((4, 6)))
    with pytest.raises(ValueError, match="out"):
        s.start_into(a, b, poison((4, 7)))
    with pytest.raises(TypeError, match="positional"):
        s.start_into(a, b)
    with pytest.raises(TypeError, match="input 0"):
        s.start_into([[1.0]], b, poison((4, 6)))
    with pytest.raises(ValueError, match="loops"):
        s.run_batch_sync_into(a, b, poison((4, 6)), 0)
    with pytest.raises(ValueError, match="sync"):
        s.start_into(a, b, poison((4, 6)), sync="sometimes")
    with pytest.raises(ValueError, match="dim 1"):
        lc.MatMulResidentSession(4, 0, 6, device)
    with pytest.raises(TypeError, match="dims"):
        lc._C.ResidentSession("matmul", 5)
    with pytest.raises(ValueError, match="kind"):
        lc._C.ResidentSession("fft", (1, 2))
    with pytest.raises(ValueError, match="3x3"):
        lc.ConvAttentionSession(1, 1, 1, 1, 2, 4, 4, pad_h=0, pad_w=0, device=device)
    # the session stays usable after every error
    out = poison((4, 6))
    s.start_into(a, b, out)
    assert np.isfinite(out).all()


def test_session_device_fallback(strict_off):
    s = lc.MatMulResidentSession(3, 3, 3, "metal")
    assert s.device == ("cuda" if CUDA else "cpu")
    if not CUDA:
        assert lc.MatMulResidentSession(3, 3, 3, "cuda").device == "cpu"
        lc.set_strict_device(True)
        with pytest.raises(lc.DeviceUnavailableError):
            lc.MatMulResidentSession(3, 3, 3, "cuda")
    assert lc.MatMulResidentSession(3, 3, 3).device == ("cuda" if CUDA else "cpu")


def test_session_trace_events(device, rng):
    a, b = _mats(rng, 8, 8, 8)
    s = lc.MatMulResidentSession(8, 8, 8, device)
    out = np.empty((8, 8), np.float32)
    lc.runtime_trace_clear()
    lc.runtime_trace_enable(True)
    try:
        s.start_into(a, b, out)
        s.run_batch_sync_cached_no_download(3)
    finally:
        lc.runtime_trace_enable(False)
    ops = [e["op"] for e in lc.runtime_trace_events()]
    assert ops.count("session.upload") == 2 and ops.count("session.download") == 1
    # cpu: one matmul event per run; cuda: the eager first run and the capture pass, then graph replays
    assert ops.count("matmul") == (2 if device == "cuda" else 4)
    assert ops.count("matmul_session") == 2


# ---- integer arguments of every session constructor and method (one checker: lcpy_int_arg) -----------

_CONV = (1, 2, 8, 8, 4, 16, 8)


@pytest.mark.parametrize("kw,exc,match", [
    ({"stride_h": True}, TypeError, r"ConvAttentionSession: stride_h: expected an int, got bool"),
    ({"stride_w": False}, TypeError, r"ConvAttentionSession: stride_w: expected an int, got bool"),
    ({"pad_h": True}, TypeError, r"ConvAttentionSession: pad_h: expected an int, got bool"),
    ({"pad_w": False}, TypeError, r"ConvAttentionSession: pad_w: expected an int, got bool"),
    ({"pad_h": 2 ** 31}, ValueError, r"pad_h: expected an int >= 0 and <= 2147483647, got 2147483648"),
    ({"stride_w": 2 ** 64}, ValueError, r"stride_w: expected an int >= 1 and <= 2147483647, got 18446744073709551616"),
    ({"pad_w": -1}, ValueError, r"pad_w: expected an int >= 0, got -1"),
    ({"stride_h": 0}, ValueError, r"stride_h: expected an int >= 1, got 0"),
    ({"stride_h": 1.0}, TypeError, r"stride_h: expected an int, got float"),
    ({"pad_h": "1"}, TypeError, r"pad_h: expected an int, got str"),
    ({"pad_h": np.bool_(True)}, TypeError, r"pad_h: expected an int, got numpy.bool"),
])
def test_conv_attention_session_geometry_arguments(device, kw, exc, match):
    with pytest.raises(exc, match=match):
        lc.ConvAttentionSession(*_CONV, device=device, **kw)


def test_conv_attention_session_geometry_takes_index_ints(device, rng, ref, rel_err, poison):
    """np.int64 geometry is an int; the session computes with it (checked against the float64 chain)."""
    s = lc.ConvAttentionSession(*_CONV, stride_h=np.int64(2), stride_w=np.int32(1), pad_h=np.int64(0), pad_w=1,
                                device=device)
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out = poison((16, 8))
    s.start_into(x, w, b, out)
    twin = lc.ConvAttentionSession(*_CONV, stride_h=2, stride_w=1, pad_h=0, pad_w=1, device=device)
    out2 = poison((16, 8))
    twin.start_into(x, w, b, out2)
    assert np.array_equal(out, out2) and np.isfinite(out).all()


@pytest.mark.parametrize("arg", ["stride_h", "pad_w"])
def test_geometry_only_for_conv_attention(arg):
    with pytest.raises(TypeError, match=rf"ResidentSession: {arg}: only kind 'conv_attention' takes"):
        lc._C.ResidentSession("matmul", (2, 2, 2), "cpu", False, **{arg: 1})


@pytest.mark.parametrize("ctor", [
    lambda v: lc.MatMulResidentSession(4, v, 4, "cpu"),
    lambda v: lc.MatrixElemwiseResidentSession(v, 4, "cpu"),
    lambda v: lc.AttentionSession(v, 4, device="cpu"),
    lambda v: lc.ConvAttentionSession(1, 2, 8, 8, v, 16, 8, device="cpu"),
])
def test_session_sizes_refuse_bool_and_huge(ctor):
    with pytest.raises(TypeError, match=r"expected an int, got bool"):
        ctor(True)
    with pytest.raises(ValueError, match=r"dim \d: expected an int >= 1 and <= 1099511627776, got 36893488147419103232"):
        ctor(2 ** 65)
    with pytest.raises(ValueError, match=r"dim \d: expected an int >= 1"):
        ctor(-3)


def test_session_loops_and_program_bounds(rng, poison):
    s = lc.MatrixElemwiseResidentSession(4, 4, "cpu")
    a, b = rng.standard_normal((2, 4, 4)).astype(np.float32)
    out = poison((4, 4))
    for call in (lambda n: s.run_batch_sync_into(a, b, out, n), lambda n: s.run_batch_sync_no_download_into(a, b, out, n),
                 lambda n: s.run_batch_sync_cached_no_download(n), lambda n: s.run(n)):
        with pytest.raises(ValueError, match=r"loops: expected an int >= 1 and <= 16777216, got 2147483648"):
            call(2 ** 31)
        with pytest.raises(ValueError, match=r"loops: expected an int >= 1 and <= 16777216, got 16777217"):
            call(lc.sessions.SESSION_MAX_LOOPS + 1)
        with pytest.raises(TypeError, match=r"loops: expected an int, got bool"):
            call(True)
    with pytest.raises(TypeError, match=r"program: expected an int, got bool"):
        s.start_into(a, b, out, program=True)
    with pytest.raises(ValueError, match=r"program: expected an int >= 0 and <= 2, got 3"):
        s.start_into(a, b, out, program=3)
    assert np.isnan(out).all()  # every refusal wrote nothing
    assert s.runs == 0
    s.run_batch_sync_into(a, b, out, 3, program=1)
    np.testing.assert_array_equal(out, a - b)
    assert s.runs == 3 and lc.sessions.SESSION_MAX_LOOPS == 1 << 24


# ---- long batches are interruptible (Ctrl-C reaches Python between launches) -----------------------------

_SIGINT_CHILD = r"""
import sys, time
import numpy as np
import lightning_core as lc
rng = np.random.default_rng(5)
a = rng.standard_normal((128, 128)).astype(np.float32)
b = rng.standard_normal((128, 128)).astype(np.float32)
s = lc.MatMulResidentSession(128, 128, 128, "cpu")
out = np.full((128, 128), np.nan, np.float32)
print("ready", flush=True)
t0 = time.monotonic()
try:
    s.run_batch_sync_into(a, b, out, lc.sessions.SESSION_MAX_LOOPS)  # hours of work on a CPU
    print("finished?!", flush=True)
except KeyboardInterrupt:
    t1 = time.monotonic()
    runs = s.runs
    assert np.isnan(out).all(), "an interrupted batch downloads nothing"
    s.run_batch_sync_into(a, b, out, 2)  # the session is usable
    err = np.abs(out - (a.astype(np.float64) @ b.astype(np.float64))).max()
    print(f"interrupted after={t1 - t0:.3f} runs={runs} then={s.runs} err={err:.3g}", flush=True)
"""


def test_long_batch_is_interruptible():
    from conftest import interrupt_child
    line, latency, returncode, stderr = interrupt_child(_SIGINT_CHILD)
    assert line.startswith("interrupted"), (line, stderr)
    fields = dict(kv.split("=") for kv in line.split()[1:])
    runs, then = int(fields["runs"]), int(fields["then"])
    assert 1 <= runs < lc.sessions.SESSION_MAX_LOOPS and then == runs + 2, line  # stopped inside the batch
    assert float(fields["err"]) < 1e-3, line
    assert latency < 5.0, latency  # polled about every 10 ms; generous for a loaded 2-core machine
    assert returncode == 0


def test_refused_upload_changes_no_resident_input():
    # A call refused for its third input must not have replaced the first two (found by the fuzzer).
    rng = np.random.default_rng(9)
    a = [rng.standard_normal((4, 2)).astype(np.float32) for _ in range(3)]
    b = [rng.standard_normal((4, 2)).astype(np.float32) for _ in range(2)]
    s = lc.AttentionSession(4, 2, False, "cpu")
    out = np.full((4, 2), np.nan, np.float32)
    s.sync_into(*a, out)
    with pytest.raises(ValueError, match="expected 8 elements"):
        s.sync_into(b[0], b[1], np.ones(9, np.float32), out)
    o2 = np.full((4, 2), np.nan, np.float32)
    s.run(1)
    s.download_into(o2)
    assert np.array_equal(o2, out)  # still a's result


def test_refused_plan_upload_changes_no_resident_input():
    g = lc.Graph()
    x, y = g.input("x", (3, 3)), g.input("y", (3, 3))
    g.output(g.vector_add(x, y))
    p = g.plan("cpu")
    one, two = np.ones((3, 3), np.float32), np.full((3, 3), 2.0, np.float32)
    p.upload(one, two)
    for bad in (np.ones(5, np.float32), "not an array"):
        with pytest.raises((ValueError, TypeError)):
            p.upload(np.full((3, 3), 7.0, np.float32), bad)
    p.execute()
    out = np.full((3, 3), np.nan, np.float32)
    p.download_into(0, out)
    assert np.array_equal(out, one + two)
