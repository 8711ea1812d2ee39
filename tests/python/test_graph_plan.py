"""Planned graphs (include/lightning_core/graph.h "planning and execution"; docs/python_api.md "Graph
plans"): for every fusion rule, the planned graph (fused and unfused) against the float64 reference and
the eager ops on fresh random inputs with awkward sizes, on cpu and cuda; the explain report; the plan
cache; the device choice and its reason codes (also in the trace); one host dispatch per run on CUDA;
bad input; no plan reads an unwritten buffer (cycles incl. self-loops and dangling ids are refused, a node
reading a later node's output runs after it, a fused step whose operand comes later does not fire, dead
nodes get no step); build, validate and plan are linear in the node count (a 100k-node chain).
Tests of the builder and validation: test_graph.py."""
import math
import time

import numpy as np
import pytest

import lightning_core as lc
from conftest import CUDA

TOL = 3e-5


def _erf_gelu(h):
    return 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))


def _check_both(g, inputs, expect, device, rel_err, rule=None, tol=TOL):
    """Runs the plan fused and unfused; both must match; returns the fused plan."""
    plans = {}
    for fuse in (True, False):
        p = g.plan(device=device, fuse=fuse)
        outs = p.run(*inputs)
        assert len(outs) == len(expect)
        for o, e in zip(outs, expect):
            assert rel_err(o, e) < tol
        plans[fuse] = p
        assert p.device == device
    if rule is not None:
        fired = [e for e in plans[True].explain() if e["fired"]]
        assert rule in [e["rule"] for e in fired], plans[True].explain()
        assert all(e["reason"] == "fusion_disabled" for e in plans[False].explain())
        assert plans[False].summary()["fused_steps"] == 0 < plans[True].summary()["fused_steps"]
    return plans[True]


@pytest.mark.parametrize("act", ["relu", "gelu", "gelu_tanh", None])
def test_matmul_bias_act(device, act, rng, rel_err):
    m, k, n = 37, 53, 45
    X = rng.standard_normal((m, k)).astype(np.float32)
    W = rng.standard_normal((k, n)).astype(np.float32)
    B = rng.standard_normal(n).astype(np.float32)
    g = lc.Graph()
    x = g.input("x", (m, k))
    y = g.bias_add(g.matmul(x, g.constant("w", W)), g.constant("b", B))
    h = X.astype(np.float64) @ W + B
    if act == "relu":
        y, h = g.relu(y), np.maximum(h, 0)
    elif act == "gelu":
        y, h = g.gelu(y), _erf_gelu(h)
    elif act == "gelu_tanh":
        y = g.gelu(y, approximate="tanh")
        h = 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    g.output(y)
    p = _check_both(g, [X], [h], device, rel_err, rule="matmul_bias_act")
    assert len(p.steps()) == 1 and p.steps()[0].startswith("linear(")


def test_conv_relu(device, rng, ref, rel_err):
    X = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
    W = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    B = rng.standard_normal(5).astype(np.float32)
    g = lc.Graph()
    y = g.relu(g.conv2d(g.input("x", X.shape), g.constant("w", W), g.constant("b", B), stride_h=2, pad_h=1, pad_w=1))
    g.output(y)
    expect = ref.conv2d(X, W, B, 2, 1, 1, 1, apply_relu=True)
    _check_both(g, [X], [expect], device, rel_err, rule="conv_relu")


@pytest.mark.parametrize("with_bias,act", [(True, "gelu"), (False, None), (True, None)])
def test_layer_norm_matmul(device, with_bias, act, rng, ref, rel_err):
    m, d, n = 29, 40, 33
    X = rng.standard_normal((m, d)).astype(np.float32)
    G = (rng.random(d) + 0.5).astype(np.float32)
    Bt = rng.standard_normal(d).astype(np.float32)
    W = rng.standard_normal((d, n)).astype(np.float32)
    B = rng.standard_normal(n).astype(np.float32)
    g = lc.Graph()
    y = g.matmul(g.layer_norm(g.input("x", (m, d)), g.constant("g", G), g.constant("beta", Bt)), g.constant("w", W))
    h = ref.layer_norm(X, G, Bt) @ W
    if with_bias:
        y, h = g.bias_add(y, g.constant("b", B)), h + B
    if act == "gelu":
        y, h = g.gelu(y), _erf_gelu(h)
    g.output(y)
    p = _check_both(g, [X], [h], device, rel_err, rule="layer_norm_matmul", tol=1e-4)
    assert p.steps()[0].startswith("layer_norm_unscaled(")


def test_layer_norm_matmul_needs_constant_weights(rng, rel_err, ref):
    m, d, n = 8, 12, 6
    X = rng.standard_normal((m, d)).astype(np.float32)
    W = rng.standard_normal((d, n)).astype(np.float32)
    g = lc.Graph()
    y = g.matmul(g.layer_norm(g.input("x", (m, d)), g.constant("g", np.ones(d, np.float32))), g.input("w", (d, n)))
    g.output(y)
    p = g.plan("cpu")
    (out,) = p.run(X, W)
    assert rel_err(out, ref.layer_norm(X) @ W) < TOL
    rec = [e for e in p.explain() if e["rule"] == "layer_norm_matmul"]
    assert rec and not rec[0]["fired"] and rec[0]["reason"] == "weights_not_constant"


@pytest.mark.parametrize("seq,d", [(48, 48), (96, 48), (192, 8), (7, 5), (6, 130)])
def test_conv_relu_qkv_attention(device, seq, d, rng, ref, rel_err):
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    w = (rng.random((16, 3, 3, 3)) - 0.5).astype(np.float32)
    b = (rng.random(16) - 0.5).astype(np.float32)
    g = lc.Graph()
    y = g.attention_packed(g.qkv_pack_repeat(g.relu(g.conv2d(g.input("x", x.shape), g.constant("w", w),
                                                               g.constant("b", b), pad_h=1, pad_w=1)), seq, d))
    g.output(y)
    conv = ref.conv2d(x, w, b, 1, 1, 1, 1, apply_relu=True).ravel()
    flat = conv[np.arange(3 * seq * d) % conv.size]
    q, k, v = (flat[i * seq * d:(i + 1) * seq * d].reshape(seq, d) for i in range(3))
    p = _check_both(g, [x], [ref.attention(q, k, v)], device, rel_err)
    fired = {e["rule"]: e for e in p.explain()}
    fused_kernel = device == "cuda" and d <= 128
    assert fired["conv_relu_qkv_attention"]["fired"] == fused_kernel
    if not fused_kernel:
        assert fired["conv_relu_qkv_attention"]["reason"] in ("no_fused_kernel_on_device", "shape_outside_fused_kernel")
        assert fired["conv_relu"]["fired"]
    # the session and the plan run the same chain
    s = lc.ConvAttentionSession(1, 3, 8, 8, 16, seq, d, device=device)
    out = np.empty((seq, d), np.float32)
    s.start_into(x, w, b, out)
    assert rel_err(p.run(x)[0], out.astype(np.float64)) < TOL


@pytest.mark.parametrize("seq,d,pn,causal,bias", [(21, 16, 16, True, True), (70, 48, 24, False, False),
                                                   (9, 5, 130, False, True), (33, 100, 7, True, False)])
def test_attention_projection(device, seq, d, pn, causal, bias, rng, ref, rel_err):
    q, k, v = (rng.standard_normal((seq, d)).astype(np.float32) for _ in range(3))
    Wp = rng.standard_normal((d, pn)).astype(np.float32)
    Bp = rng.standard_normal(pn).astype(np.float32)
    g = lc.Graph()
    a = g.attention(g.input("q", (seq, d)), g.input("k", (seq, d)), g.input("v", (seq, d)), causal=causal)
    y = g.matmul(a, g.constant("wp", Wp))
    expect = ref.attention(q, k, v, causal=causal) @ Wp
    if bias:
        y, expect = g.bias_add(y, g.constant("bp", Bp)), expect + Bp
    g.output(y)
    fits = device == "cpu" or pn <= 128
    p = _check_both(g, [q, k, v], [expect], device, rel_err, rule="attention_projection" if fits else None)
    rec = [e for e in p.explain() if e["rule"] == "attention_projection"]
    assert rec and rec[0]["fired"] == fits
    if not fits:
        assert rec[0]["reason"] == "shape_outside_fused_kernel"
    else:
        assert p.steps()[0].startswith("attention_projection(")


def test_attention_projection_needs_the_attention_output_alone(rng, ref, rel_err):
    seq, d = 12, 8
    q = rng.standard_normal((seq, d)).astype(np.float32)
    Wp = rng.standard_normal((d, d)).astype(np.float32)
    g = lc.Graph()
    qi = g.input("q", (seq, d))
    a = g.attention(qi, qi, qi)
    g.output(g.matmul(a, g.constant("wp", Wp)), g.relu(a))  # a has two readers
    p = g.plan("cpu")
    out, r = p.run(q)
    att = ref.attention(q, q, q)
    assert rel_err(out, att @ Wp) < TOL and rel_err(r, np.maximum(att, 0)) < TOL
    rec = [e for e in p.explain() if e["rule"] == "attention_projection"]
    assert rec == [] or rec[0]["reason"] == "intermediate_has_other_consumers"


def test_chain_blocked_by_other_consumers_and_outputs(rng, rel_err):
    m, k, n = 9, 7, 5
    X = rng.standard_normal((m, k)).astype(np.float32)
    W = rng.standard_normal((k, n)).astype(np.float32)
    g = lc.Graph()
    mm = g.matmul(g.input("x", (m, k)), g.constant("w", W))
    r = g.relu(mm)
    g.output(r, mm)  # the matmul result is an output itself: no fusion
    p = g.plan("cpu")
    o_r, o_mm = p.run(X)
    h = X.astype(np.float64) @ W
    assert rel_err(o_mm, h) < TOL and rel_err(o_r, np.maximum(h, 0)) < TOL
    rec = [e for e in p.explain() if e["rule"] == "matmul_bias_act"]
    assert rec == [] or not rec[0]["fired"]
    assert p.summary()["fused_steps"] == 0


def test_plan_cache_hits(rng):
    lc.graph_plan_cache_clear()

    def build():
        g = lc.Graph()
        g.output(g.relu(g.matmul(g.input("x", (6, 4)), g.constant("w", rng.standard_normal((4, 3)).astype(np.float32)))))
        return g

    g1, g2 = build(), build()
    p1 = g1.plan("cpu")
    assert not p1.summary()["cache_hit"]
    p2 = g2.plan("cpu")  # same structure, other weights: the analysis is reused, not the buffers
    assert p2.summary()["cache_hit"] and p2.summary()["plan_key"] == p1.summary()["plan_key"]
    x = rng.standard_normal((6, 4)).astype(np.float32)
    assert not np.allclose(p1.run(x)[0], p2.run(x)[0])
    assert not g1.plan("cpu", fuse=False).summary()["cache_hit"]  # another key
    assert not g1.plan("cpu", sync="never").summary()["cache_hit"]
    st = lc.graph_plan_cache_stats()
    assert st["hits"] == 1 and st["misses"] == 3 and st["entries"] == 3
    lc.graph_plan_cache_clear()
    assert lc.graph_plan_cache_stats() == {"hits": 0, "misses": 0, "entries": 0, "capacity": 64}


def test_device_choice_and_reason_codes(rng, strict_off):
    g = lc.Graph()
    a = g.input("a", (5, 5))
    g.output(g.relu(a))
    x = rng.standard_normal((5, 5)).astype(np.float32)
    p = g.plan("metal")
    s = p.summary()
    assert s["device"] == ("cuda" if CUDA else "cpu") and s["reason"] == "fallback_preferred_unavailable"
    lc.runtime_trace_clear()
    lc.runtime_trace_enable(True)
    try:
        p.run(x)
    finally:
        lc.runtime_trace_enable(False)
    ev = [e for e in lc.runtime_trace_events() if e["op"] == "graph_plan"]
    assert ev and ev[-1]["reason"] == "fallback_preferred_unavailable" and ev[-1]["fallback"]
    assert g.plan("auto").summary()["reason"] is None
    # an op the GPU kernels cannot take: the plan falls back to the CPU with its reason
    g2 = lc.Graph()
    q = g2.input("q", (4, 300))
    g2.output(g2.attention(q, q, q))
    s2 = g2.plan("cuda").summary()
    assert s2["device"] == "cpu"
    assert s2["reason"] == ("fallback_preferred_unsupported" if CUDA else "fallback_preferred_unavailable")
    lc.set_strict_device(True)
    with pytest.raises((lc.DeviceUnavailableError, NotImplementedError)):
        g2.plan("cuda")


@pytest.mark.skipif(not CUDA, reason="host dispatches of a captured plan are a CUDA property")
def test_one_host_dispatch_per_run_on_cuda(rng):
    m, k, n = 64, 96, 80
    g = lc.Graph()
    y = g.relu(g.bias_add(g.matmul(g.input("x", (m, k)), g.constant("w", rng.standard_normal((k, n)).astype(np.float32))),
                          g.constant("b", rng.standard_normal(n).astype(np.float32))))
    g.output(g.matrix_sub(y, g.constant("c", rng.standard_normal((m, n)).astype(np.float32))))
    p = g.plan("cuda")
    p.upload(rng.standard_normal((m, k)).astype(np.float32))
    p.execute(2)  # eager first run, then capture + one replay
    lc.runtime_counters_reset()
    p.execute(10)
    c = lc.runtime_counters()
    assert c["graph_launches"] == 10 and c["dispatches"] == 0 and c["syncs"] == 1
    s = p.summary()
    assert s["uses_graph"] and s["host_dispatches_per_run"] == 1 and s["replays"] == 11


def test_plan_bad_input(rng):
    g = lc.Graph()
    a = g.input("a", (3, 4))
    with pytest.raises(ValueError, match="no output"):
        g.plan("cpu")
    g.output(g.relu(a))
    p = g.plan("cpu")
    with pytest.raises(ValueError, match="no data"):
        p.execute()
    with pytest.raises(TypeError, match="expected 1 input"):
        p.run()
    with pytest.raises(ValueError, match="expected 12 elements"):
        p.run(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="sync"):
        g.plan("cpu", sync="maybe")
    with pytest.raises(TypeError, match="GraphCore"):
        lc.GraphPlan(object())
    with pytest.raises(ValueError, match="loops"):
        p.execute(0)
    bad = lc.GraphCore()  # a graph that does not validate is refused with its first error's code
    v = bad.input("x", (4, 4))
    bad.mark_output(bad.add_unchecked("log_softmax", [v], (4, 4), node_name="sm"))
    with pytest.raises(ValueError, match="schema_unknown_op"):
        lc.GraphPlan(bad, "cpu")
    out = np.zeros((3, 4), np.float32)
    p.upload(rng.standard_normal((3, 4)).astype(np.float32))
    p.execute()
    p.download_into(0, out)
    assert (out >= 0).all()


# ---- no plan reads an unwritten buffer ---------------------------------------------------------------

def test_self_loop_and_cycles_are_refused_not_run():
    x = np.full((4,), -1.0, np.float32)
    core = lc.GraphCore()  # the adversarial run's case: relu reading its own output returned garbage
    v = core.input("x", (4,))
    a = core.add("relu", [v], node_name="self")
    core.mark_output(a)
    core.rewire_unchecked(0, 0, a)
    for fuse in (True, False):
        with pytest.raises(ValueError, match="topology_cycle.*'self'"):
            lc.GraphPlan(core, "cpu", None, fuse)
    core = lc.GraphCore()  # a 3-cycle behind a live tail
    v = core.input("x", (4,))
    c = [core.add("relu", [v], node_name=f"c{i}") for i in range(3)]
    core.mark_output(core.add("gelu", [c[2]], node_name="tail"))
    core.rewire_unchecked(0, 0, c[2])
    core.rewire_unchecked(1, 0, c[0])
    core.rewire_unchecked(2, 0, c[1])
    with pytest.raises(ValueError, match="topology_cycle"):
        lc.GraphPlan(core, "cpu")
    g = lc.Graph()  # through Graph.run as well
    y = g.relu(g.input("x", (4,)), name="r")
    g.output(y)
    g.core.rewire_unchecked(0, 0, y.id)
    with pytest.raises(ValueError, match="cycle"):
        g.run(x, device="cpu")


@pytest.mark.parametrize("bad", [99, -7, 2**31 - 1])
def test_dangling_ids_are_refused(bad):
    core = lc.GraphCore()
    core.input("x", (4,))
    core.mark_output(core.add_unchecked("relu", [bad], (4,), node_name="dangle"))
    with pytest.raises(ValueError, match="topology_dangling_input.*dangle"):
        lc.GraphPlan(core, "cpu")


@pytest.mark.parametrize("fuse", [True, False])
def test_node_reading_a_later_node_runs_after_it(fuse, rng, rel_err):
    core = lc.GraphCore()
    x = core.input("x", (5, 3))
    s = core.add("vector_add", [x, x], node_name="sum")  # node 0, rewired to read node 1: sum = relu(x) + x
    r = core.add("relu", [x], node_name="r")
    core.rewire_unchecked(0, 0, r)
    core.mark_output(s)
    p = lc.GraphPlan(core, "cpu", None, fuse)
    assert p.steps() == ["relu(r)", "vector_add(sum)"]
    xv = rng.standard_normal((5, 3)).astype(np.float32)
    assert rel_err(p.run(xv)[0], np.maximum(xv, 0).astype(np.float64) + xv) < 1e-6


def test_fusion_waits_for_operands_produced_later(rng, rel_err):
    # checked graph: the bias of matmul -> bias_add comes from a node after the matmul; the fused linear
    # would run at the matmul's place before the bias exists, so matmul_bias_act does not fire
    w = rng.standard_normal((6, 4)).astype(np.float32)
    b = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    g = lc.Graph()
    x = g.input("x", (3, 6))
    mm = g.matmul(x, g.constant("w", w), name="mm")
    rb = g.relu(g.constant("b", b), name="rb")
    g.output(g.bias_add(mm, rb, name="ba"))
    xv = rng.standard_normal((3, 6)).astype(np.float32)
    expect = xv.astype(np.float64) @ w + np.maximum(b, 0)
    p = g.plan("cpu")
    assert rel_err(p.run(xv)[0], expect) < TOL
    (rec,) = p.explain()
    assert rec["rule"] == "matmul_bias_act" and not rec["fired"] and rec["reason"] == "operand_not_ready"
    # the same chain with the bias ready before the matmul fuses
    g2 = lc.Graph()
    x2 = g2.input("x", (3, 6))
    rb2 = g2.relu(g2.constant("b", b), name="rb")
    g2.output(g2.bias_add(g2.matmul(x2, g2.constant("w", w), name="mm"), rb2, name="ba"))
    p2 = g2.plan("cpu")
    assert rel_err(p2.run(xv)[0], expect) < TOL and p2.explain()[0]["fired"]


def test_dead_nodes_get_no_step(rng):
    g = lc.Graph()
    x = g.input("x", (4, 4))
    g.gelu(x, name="dead")
    g.output(g.relu(x, name="live"))
    p = g.plan("cpu")
    assert p.steps() == ["relu(live)"] and p.summary()["nodes"] == 2 and p.summary()["steps"] == 1
    xv = rng.standard_normal((4, 4)).astype(np.float32)
    np.testing.assert_array_equal(p.run(xv)[0], np.maximum(xv, 0))


# ---- linear time -----------------------------------------------------------------------------------

def _chain_phases(n):
    """Build (Graph builder), validate, plan of an n-node relu chain: seconds per phase."""
    t0 = time.perf_counter()
    g = lc.Graph()
    v = g.input("x", (4,))
    for _ in range(n):
        v = g.relu(v)
    g.output(v)
    t1 = time.perf_counter()
    assert g.validate("cpu") == []
    t2 = time.perf_counter()
    p = g.plan("cpu", fuse=True)
    t3 = time.perf_counter()
    assert p.summary()["steps"] == n
    del p, g
    lc.graph_plan_cache_clear()  # the large analysis does not stay cached
    return [t1 - t0, t2 - t1, t3 - t2]


def test_build_validate_plan_are_linear_in_node_count():
    # a complexity guard, not a benchmark: each phase of a 100k-node chain under 5 s, and 10x the nodes
    # may cost at most 30x the time (linear: ~10-15x; quadratic: ~100x, 100k > 10 s) unless the 100k run
    # took under 0.5 s (a 10k time of a few ms is mostly noise on a loaded machine). Best of several runs.
    small = [min(t) for t in zip(*[_chain_phases(10_000) for _ in range(3)])]
    big = [min(t) for t in zip(*[_chain_phases(100_000) for _ in range(2)])]
    for phase, s, b in zip(("build", "validate", "plan"), small, big):
        assert b < 5.0, f"{phase}: 100k nodes took {b:.2f} s"
        assert b < 0.5 or b / max(s, 1e-3) < 30.0, f"{phase}: 10k {s:.4f} s -> 100k {b:.4f} s"


# ---- execute(loops): bounded and interruptible (issue 12 item 15's pattern) ------------------------

_PLAN_SIGINT_CHILD = r"""
import time
import numpy as np
import lightning_core as lc
g = lc.Graph()
x = g.input("x", (96, 96))
w = g.constant("w", (np.eye(96) * 0.5).astype(np.float32))
g.output(g.relu(g.matmul(x, w)))
p = g.plan("cpu")
xv = np.random.default_rng(3).standard_normal((96, 96)).astype(np.float32)
p.upload(xv)
print("ready", flush=True)
try:
    p.execute(loops=1 << 24)
    print("finished?!", flush=True)
except KeyboardInterrupt:
    runs = p.summary()["runs"]
    out = p.run(xv)[0]
    err = np.abs(out - np.maximum(xv * 0.5, 0)).max()
    print(f"interrupted runs={runs} err={err:.3g}", flush=True)
"""


def test_plan_execute_loops_bounded_and_interruptible():
    from conftest import interrupt_child
    g = lc.Graph()
    x = g.input("x", (4,))
    g.output(g.relu(x))
    p = g.plan("cpu")
    p.upload(np.ones(4, np.float32))
    with pytest.raises(ValueError, match="loops"):
        p.execute(loops=(1 << 24) + 1)
    with pytest.raises(TypeError, match="loops"):
        p.execute(loops=True)
    line, _, _, stderr = interrupt_child(_PLAN_SIGINT_CHILD)
    assert line.startswith("interrupted"), (line, stderr)
    fields = dict(kv.split("=") for kv in line.split()[1:])
    assert 1 <= int(fields["runs"]) < (1 << 24) and float(fields["err"]) < 1e-5, line
