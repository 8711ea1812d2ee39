"""Graph layer core from Python (spec: docs/python_api.md, "Graphs"): the builder for every registry op
(inferred shapes, errors naming node/input/expected/got, graph unchanged after a refusal), the registry
listing, the seed reason codes, the stable hash, and the validation passes on crafted bad graphs made in
GraphCore's raw mode (add_unchecked / rewire_unchecked): each reports its exact code at the right node.
Bad arguments raise TypeError/ValueError naming the argument."""
import numpy as np
import pytest

import lightning_core as lc
from lightning_core.graph import Value

SEED_REASONS = [
    "fallback_preferred_unsupported",
    "fallback_preferred_unavailable",
    "fallback_planner_optimized",
    "graph_engine_not_lightning",
    "graph_shape_unsupported",
    "torch_unavailable_fallback",
]
PASSES = ["schema_contract", "topology", "alias_lifetime", "layout_flow", "backend_capability"]
OPS = [
    "matmul", "bias_add", "vector_add", "matrix_sub", "matrix_div", "relu", "gelu", "layer_norm",
    "attention_forward", "attention_packed", "conv2d_nchw", "conv2d_nchw3x3", "conv2d_nchw3x3s1p1", "qkv_pack_repeat", "sdpa",
    "rms_norm", "softmax", "silu", "silu_mul", "add", "mul",
]


def issues_with(report, code):
    return [i for i in report if i["code"] == code]


def errors(report):
    return [i for i in report if i["severity"] == "error"]


# ---- registry, reason codes ------------------------------------------------------------------

def test_op_schemas_list_every_op():
    schemas = lc.graph_op_schemas()
    assert [s["name"] for s in schemas] == OPS
    by = {s["name"]: s for s in schemas}
    assert by["matmul"]["inputs"] == [{"name": "a", "rank": 2, "optional": False}, {"name": "b", "rank": 2, "optional": False}]
    assert by["matmul"]["dtypes"] == ["float32", "float64", "float16", "bfloat16"]
    assert by["gelu"]["dtypes"] == ["float32", "float16", "bfloat16"] and by["gelu"]["attrs"] == ["gelu_approx"]
    assert by["conv2d_nchw"]["layout"] == "nchw" and by["conv2d_nchw"]["inputs"][2] == {"name": "bias", "rank": 1, "optional": True}
    assert by["conv2d_nchw"]["attrs"] == ["stride_h", "stride_w", "pad_h", "pad_w"]
    assert by["conv2d_nchw3x3s1p1"]["alias_of"] == "conv2d_nchw"
    assert by["qkv_pack_repeat"]["required_attrs"] == ["seq", "head_dim"] and by["qkv_pack_repeat"]["output_rank"] == 3
    assert by["layer_norm"]["inputs"][0]["rank"] is None and by["layer_norm"]["min_inputs"] == 1
    assert "linear" in by["bias_add"]["backend_note"]
    for s in schemas:
        assert "cpu" in s["backends"]  # the CPU backend runs every op
        assert s["shape_rule"] and s["layout"] in ("row-major", "nchw")
        assert set(s["backends"]) <= {"cpu", "cuda"}


def test_reason_codes_and_issue_catalogue():
    codes = lc.graph_reason_codes()
    assert [c["code"] for c in codes] == SEED_REASONS
    assert all(len(c["description"]) > 10 for c in codes)
    cat = lc.graph_issue_codes()
    assert {c["pass"] for c in cat} == set(PASSES)
    names = {c["code"] for c in cat}
    for code in ["schema_arity", "schema_shape", "schema_attr", "schema_dtype", "topology_cycle",
                 "topology_dangling_input", "topology_unused_node", "topology_no_output", "alias_inplace_conflict",
                 "alias_lifetime", "layout_rank", "layout_noncontiguous", "backend_unsupported", "backend_unavailable"]:
        assert code in names
    assert all(c["severity"] in ("error", "warning") for c in cat)


# ---- builder ---------------------------------------------------------------------------------

def test_builder_every_op(rng):
    g = lc.Graph()
    a = g.input("a", (4, 8))
    b = g.constant("b", rng.standard_normal((8, 3)).astype(np.float32))
    mm = g.matmul(a, b, name="mm")
    assert isinstance(mm, Value) and mm.shape == (4, 3) and mm.name == "mm" and mm.kind == "intermediate"
    ba = g.bias_add(mm, g.constant("bias", rng.standard_normal(3).astype(np.float32)))
    assert ba.shape == (4, 3)
    c = g.input("c", (4, 3))
    assert g.add(ba, c).shape == (4, 3) and g.sub(ba, c).shape == (4, 3) and g.div(ba, c).shape == (4, 3)
    assert g.relu(ba).shape == (4, 3)
    ge = g.gelu(ba, approximate="tanh", name="ge")
    assert ge.shape == (4, 3) and g.core.node(g.core.find_node("ge"))["attrs"] == {"gelu_approx": "tanh"}
    gamma = g.constant("gamma", np.ones(3, np.float32))
    beta = g.constant("beta", np.zeros(3, np.float32))
    ln = g.layer_norm(ge, gamma, beta, eps=1e-6, name="ln")
    assert ln.shape == (4, 3) and g.core.node(g.core.find_node("ln"))["attrs"] == {"eps": 1e-6}
    assert g.layer_norm(ge).shape == (4, 3)
    q = g.input("q", (16, 8))
    assert g.attention(q, q, q, causal=True).shape == (16, 8)
    x = g.input("x", (2, 3, 9, 9))
    w = g.constant("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    cb = g.constant("cb", rng.standard_normal(4).astype(np.float32))
    assert g.conv2d(x, w, cb, stride_h=2, stride_w=2, pad_h=1, pad_w=1).shape == (2, 4, 5, 5)
    assert g.conv2d(x, w).shape == (2, 4, 7, 7)
    assert g.conv2d(x, w, cb, op="conv2d_nchw3x3").shape == (2, 4, 7, 7)
    y = g.conv2d(x, w, cb, op="conv2d_nchw3x3s1p1", name="conv")
    assert y.shape == (2, 4, 9, 9)
    qkv = g.qkv_pack_repeat(g.relu(y), seq=16, head_dim=8, name="pack")
    assert qkv.shape == (3, 16, 8)
    assert g.output(qkv, mm) == (qkv, mm)
    assert [v.name for v in g.outputs] == ["pack", "mm"]
    report = g.validate("cpu")
    assert errors(report) == []
    # the unused side nodes are reported as dead code (warnings), nothing else
    assert {i["code"] for i in report} <= {"topology_unused_node", "topology_unused_value"}
    assert g.check("cpu") == report
    assert len(g) == g.core.num_nodes == len(g.nodes)
    assert g.core.topo_order() == list(range(len(g)))


def test_builder_float64_and_dtype_errors():
    g = lc.Graph()
    a = g.input("a", (2, 3), dtype="float64")
    b = g.input("b", (3, 2), dtype="float64")
    assert g.matmul(a, b).dtype == "float64"
    f = g.input("f", (3, 2))
    with pytest.raises(TypeError, match=r"input 1 'b' \(value 'f'\): expected dtype float64 \(a's\), got float32"):
        g.matmul(a, f)
    with pytest.raises(TypeError, match="expected dtype float32, float16 or bfloat16, got float64"):
        g.gelu(a)
    with pytest.raises(TypeError, match="dtype: expected float32, float64, float16 or bfloat16 .*got .int8."):
        g.input("z", (2,), dtype="int8")


def test_builder_errors_name_node_input_and_leave_graph_unchanged():
    g = lc.Graph()
    a = g.input("a", (4, 8))
    w = g.input("w", (7, 3))
    before = (g.core.num_nodes, g.core.num_values, g.hash())
    with pytest.raises(ValueError, match=r"node 'mm' \(matmul\): input 1 'b' \(value 'w'\): expected \[k=8, n\].*got \[7, 3\]"):
        g.matmul(a, w, name="mm")
    x = g.input("x", (1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"input 0 'x' \(value 'a'\): expected 4 dimensions \[n, c, h, w\]"):
        g.conv2d(a, x)
    w5 = g.input("w5", (4, 3, 5, 5))
    with pytest.raises(ValueError, match="3x3 kernel"):
        g.conv2d(x, w5, op="conv2d_nchw3x3")
    w3 = g.input("w3", (4, 3, 3, 3))
    with pytest.raises(ValueError, match="stride_h: conv2d_nchw3x3s1p1 fixes it to 1, got 2"):
        g.conv2d(x, w3, op="conv2d_nchw3x3s1p1", stride_h=2)
    with pytest.raises(ValueError, match="stride_w: expected 1..2147483647, got 0"):
        g.conv2d(x, w3, stride_w=0)
    with pytest.raises(ValueError, match="qkv_pack_repeat needs attribute seq"):
        g.core.add("qkv_pack_repeat", [x.id], head_dim=4)
    with pytest.raises(ValueError, match="eps: expected a finite value > 0"):
        g.layer_norm(a, eps=0.0)
    with pytest.raises(ValueError, match="matmul does not take attribute causal"):
        g.core.add("matmul", [a.id, a.id], causal=True)
    with pytest.raises(ValueError, match="gelu_approx: expected 'erf', 'none' or 'tanh'"):
        g.gelu(a, approximate="fast")
    with pytest.raises(ValueError, match="op: expected one of matmul"):
        g.op("log_softmax", a)
    with pytest.raises(ValueError, match="beta: given without gamma"):
        g.layer_norm(a, beta=a)
    with pytest.raises(ValueError, match="'a' already names"):
        g.relu(a, name="a")
    assert (g.core.num_nodes, g.hash()) == (before[0], g.hash())
    assert g.core.num_nodes == 0  # every refused node left nothing behind


def test_bad_arguments_raise_type_and_value_errors():
    g = lc.Graph()
    a = g.input("a", (4, 4))
    with pytest.raises(TypeError, match="name: expected a str"):
        g.input(3, (4, 4))
    with pytest.raises(ValueError, match="shape: expected every dimension > 0"):
        g.input("z", (4, 0))
    with pytest.raises(TypeError, match="shape: expected a tuple or list of ints"):
        g.input("z", "44")
    with pytest.raises(TypeError, match="value: expected a numpy.ndarray or a lightning_core Tensor"):
        g.constant("c", [1.0, 2.0])
    with pytest.raises(TypeError, match="value: expected"):
        g.constant("c", np.arange(4))  # int64 array
    with pytest.raises(TypeError, match=r"inputs\[0\]: expected a Value of this graph"):
        g.relu(a.id)
    other = lc.Graph().input("o", (4, 4))
    with pytest.raises(ValueError, match="belongs to another graph"):
        g.relu(other)
    core = g.core
    with pytest.raises(TypeError, match="unexpected keyword argument 'stride'"):
        core.add("relu", [a.id], stride=2)
    with pytest.raises(TypeError, match="inputs: expected a list or tuple"):
        core.add("relu", a.id)
    with pytest.raises(TypeError, match=r"inputs\[0\]: expected an int"):
        core.add("relu", ["a"])
    with pytest.raises(ValueError, match=r"inputs\[0\]: expected a value id 0..0, got 5"):
        core.add("relu", [5])
    with pytest.raises(TypeError, match="causal: expected a bool"):
        core.add("attention_forward", [a.id] * 3, causal="yes")
    with pytest.raises(TypeError, match="missing required argument 'inputs'"):
        core.add("relu")
    with pytest.raises(TypeError, match="multiple values for argument 'op'"):
        core.add("relu", [a.id], op="gelu")
    with pytest.raises(ValueError, match="v: expected a value id"):
        core.mark_output(9)
    with pytest.raises(ValueError, match="device: expected one of"):
        g.validate("tpu")
    with pytest.raises(ValueError, match="passes: expected names among"):
        g.validate("cpu", passes=["typo"])
    with pytest.raises(TypeError, match="passes: expected a list of pass names"):
        g.validate("cpu", passes="topology")
    with pytest.raises(ValueError, match="v: expected a value id 0..0, got -5"):
        core.value(-5)
    with pytest.raises(ValueError, match=r"node: expected a node index 0..-1 \(the graph has 0 nodes\), got 0"):
        core.node(0)
    with pytest.raises(TypeError):
        lc.GraphCore(1)
    assert core.find_node("nope") is None and core.find_value("a") == a.id


def test_constants_from_arrays_and_tensors(rng):
    g = lc.Graph()
    data = rng.standard_normal((4, 4)).astype(np.float32)
    c = g.constant("c", data)
    data[:] = 0  # the graph copied the array
    t = lc.Tensor(rng.standard_normal((4, 4)).astype(np.float32))
    ct = g.constant("ct", t)
    h16 = g.constant("h16", np.ones((2, 2), np.float16))
    assert c.kind == "constant" and ct.kind == "constant" and h16.dtype == "float16"  # constants keep their dtype
    assert g.constant("d64", np.ones(3)).dtype == "float64"
    x = g.input("x", (4, 4))
    g.output(g.matmul(x, ct))
    report = g.validate("cpu")
    assert errors(report) == []
    assert {i["value"] for i in issues_with(report, "topology_unused_value")} == {"c", "h16", "d64"}


def test_hash_stable_and_sensitive(rng):
    def build(h=8, stride=None, name="conv", wdata=None, mark=True):
        g = lc.Graph()
        x = g.input("x", (1, 3, h, 8))
        w = g.constant("w", wdata if wdata is not None else rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
        kw = {} if stride is None else {"stride_h": stride}
        y = g.relu(g.conv2d(x, w, name=name, **kw))
        if mark:
            g.output(y)
        return g.hash()

    base = build()
    assert isinstance(base, int) and 0 < base < 2**64
    assert build() == base  # other constant data
    assert build(name="other") == base  # names are not hashed
    assert build(stride=1) == base  # an explicit default is the default
    assert build(h=10) != base
    assert build(stride=2) != base
    assert build(mark=False) != base


# ---- validation: crafted bad graphs ------------------------------------------------------------

def raw(shape=(4, 4)):
    core = lc.GraphCore()
    return core, core.input("x", shape)


def expect(core, code, node, severity="error", device="cpu", reason=None):
    report = core.validate(device)
    hits = [i for i in report if i["code"] == code and i["node"] == node]
    assert hits, f"no {code} at {node!r} in {report}"
    hit = hits[0]
    assert hit["severity"] == severity and hit["reason"] == reason and hit["message"]
    assert hit["pass"] in PASSES
    return report


def test_schema_contract_codes():
    core, x = raw()
    core.mark_output(core.add_unchecked("log_softmax", [x], (4, 4), node_name="sm"))
    expect(core, "schema_unknown_op", "sm")
    core, x = raw()
    core.mark_output(core.add_unchecked("relu", [x, x], (4, 4), node_name="r2"))
    r = expect(core, "schema_arity", "r2")
    assert [i["code"] for i in errors(r)] == ["schema_arity"]
    core, x = raw()
    core.mark_output(core.add_unchecked("conv2d_nchw", [x, x], (1, 1, 1, 1), node_name="c", stride_h=0))
    expect(core, "schema_attr", "c")
    core, x = raw()
    d = core.input("d", (4, 4), dtype="float64")
    core.mark_output(core.add_unchecked("vector_add", [x, d], (4, 4), node_name="mix"))
    expect(core, "schema_dtype", "mix")
    core, x = raw()
    w = core.input("w", (5, 3))
    core.mark_output(core.add_unchecked("matmul", [x, w], (4, 3), node_name="mm"))
    r = expect(core, "schema_shape", "mm")
    assert "expected [k=4, n]" in issues_with(r, "schema_shape")[0]["message"]
    core, x = raw()
    core.mark_output(core.add_unchecked("relu", [x], (2, 8), node_name="wrong_out"))
    r = expect(core, "schema_output_shape", "wrong_out")
    assert issues_with(r, "schema_output_shape")[0]["value"] == "wrong_out"


def test_topology_codes():
    core, x = raw()
    core.mark_output(core.add_unchecked("vector_add", [x, 42], (4, 4), node_name="dangle"))
    r = expect(core, "topology_dangling_input", "dangle")
    assert "value id 42" in issues_with(r, "topology_dangling_input")[0]["message"]
    # cycle: n1 = relu(x), n2 = relu(n1), then n1 reads n2
    core, x = raw()
    v1 = core.add("relu", [x], node_name="n1")
    v2 = core.add("relu", [v1], node_name="n2")
    core.mark_output(v2)
    assert core.validate("cpu") == []
    core.rewire_unchecked(0, 0, v2)
    r = expect(core, "topology_cycle", "n1")
    assert "'n1' -> 'n2' -> 'n1'" in issues_with(r, "topology_cycle")[0]["message"] or \
        "'n2' -> 'n1' -> 'n2'" in issues_with(r, "topology_cycle")[0]["message"]
    with pytest.raises(ValueError, match="cycle"):
        core.topo_order()
    with pytest.raises(ValueError, match="slot"):
        core.rewire_unchecked(0, 3, v2)
    # no output
    core, x = raw()
    core.add("relu", [x], node_name="r")
    expect(core, "topology_no_output", None)
    # dead code and an unused input: warnings only
    core, x = raw()
    core.input("spare", (2, 2))
    core.mark_output(core.add("relu", [x], node_name="live"))
    core.add("gelu", [x], node_name="dead")
    r = expect(core, "topology_unused_node", "dead", severity="warning")
    assert errors(r) == []
    assert issues_with(r, "topology_unused_value")[0]["value"] == "spare"


def test_cycles_of_any_length_self_loops_included():
    # the adversarial run's case: relu rewired to read its own output validated with only a warning
    core, x = raw()
    a = core.add("relu", [x], node_name="self")
    core.mark_output(a)
    core.rewire_unchecked(0, 0, a)
    r = expect(core, "topology_cycle", "self")
    msg = issues_with(r, "topology_cycle")[0]["message"]
    assert "'self' -> 'self'" in msg and "its own output" in msg
    with pytest.raises(ValueError, match="cycle.*'self'|'self'.*cycle"):
        core.topo_order()
    # a self-loop made by an input id equal to the id the node's own output gets
    core, x = raw()
    own = core.num_values
    assert core.add_unchecked("gelu", [own], (4, 4), node_name="ouroboros") == own
    core.mark_output(own)
    expect(core, "topology_cycle", "ouroboros")
    # a 4-cycle and a self-loop, with nodes downstream of them: two cycles, each reported at its lowest node
    core, x = raw()
    ids = [core.add("relu", [x], node_name=f"c{i}") for i in range(4)]
    s = core.add("relu", [x], node_name="s")
    core.mark_output(core.add("vector_add", [ids[3], s], node_name="tail"))
    assert errors(core.validate("cpu")) == []
    core.rewire_unchecked(0, 0, ids[3])  # c0 reads c3: c0 -> c1 -> c2 -> c3 -> c0
    for i in range(1, 4):
        core.rewire_unchecked(i, 0, ids[i - 1])
    core.rewire_unchecked(4, 0, s)
    cycles = issues_with(core.validate("cpu"), "topology_cycle")
    assert sorted(c["node"] for c in cycles) == ["c0", "s"]
    assert "'c0' -> 'c1' -> 'c2' -> 'c3' -> 'c0'" in [c for c in cycles if c["node"] == "c0"][0]["message"]
    # acyclic, but a node reads a later node's output: valid, ordered by dependency
    core, x = raw()
    a = core.add("relu", [x], node_name="reader")
    b = core.add("gelu", [x], node_name="later")
    core.mark_output(a)
    core.rewire_unchecked(0, 0, b)
    assert core.validate("cpu") == []
    assert core.topo_order() == [1, 0]


def test_name_lookups_stay_exact_at_scale():
    # names are indexed (O(1) checks and lookups): uniqueness, auto names and lookups keep their meaning
    core, x = raw()
    v = x
    for _ in range(3000):
        v = core.add("relu", [v])
    assert core.find_node("relu_2999") == 2999 and core.find_value("relu_2999") == v == 3000
    assert core.find_node("x") is None and core.find_value("x") == 0 and core.find_value("relu_3000") is None
    with pytest.raises(ValueError, match="already names"):
        core.add("relu", [v], node_name="relu_17")
    with pytest.raises(ValueError, match="already names"):
        core.input("relu_0", (2,))
    named = core.add("relu", [v], node_name="relu_3001")  # takes the name the next auto name would have
    assert core.find_node("relu_3001") == 3000
    auto = core.add("relu", [named])
    assert core.node(3001)["name"] == "relu_3001_1" and core.find_value("relu_3001_1") == auto
    assert core.num_nodes == 3002 and core.num_values == 3003


def test_alias_lifetime_codes():
    core, x = raw()
    v = core.add("relu", [x], node_name="r")
    core.add_unchecked("gelu", [v], None, node_name="into_x", out_value=x)
    core.mark_output(v)
    r = expect(core, "alias_inplace_conflict", "into_x")
    assert issues_with(r, "alias_inplace_conflict")[0]["value"] == "x"
    core, x = raw()
    v = core.add("relu", [x], node_name="p1")
    core.add_unchecked("gelu", [x], node_name="clobber", out_value=v)
    core.mark_output(core.add("vector_add", [v, x], node_name="reader"))
    expect(core, "alias_inplace_conflict", "clobber")
    r = expect(core, "alias_lifetime", "reader")
    msg = issues_with(r, "alias_lifetime")[0]["message"]
    assert "after node 'clobber' overwrote it" in msg and "produced by node 'p1'" in msg
    assert [i["pass"] for i in r if i["code"].startswith("alias")] == ["alias_lifetime"] * 2
    core, x = raw()
    core.mark_output(core.add("relu", [x], node_name="r"))
    core.mark_output(x)
    r = expect(core, "alias_inplace_conflict", None)
    assert issues_with(r, "alias_inplace_conflict")[0]["value"] == "x"


def test_layout_flow_codes():
    core, x = raw()
    w = core.input("w", (2, 4, 3, 3))
    core.mark_output(core.add_unchecked("conv2d_nchw", [x, w], (1, 2, 2, 2), node_name="conv_2d_input"))
    r = expect(core, "layout_rank", "conv_2d_input")
    hit = issues_with(r, "layout_rank")[0]
    assert hit["pass"] == "layout_flow" and hit["value"] == "x" and "expected 4 dimensions [n, c, h, w]" in hit["message"]
    assert issues_with(r, "schema_shape") == []  # ranks are layout_flow's to report
    g = lc.Graph()
    x = g.input("x", (4, 4))
    t = lc.Tensor(np.arange(16, dtype=np.float32).reshape(4, 4))
    tv = t.view((4, 4), (1, 4), 0) if hasattr(t, "view") else None
    if tv is None:
        pytest.skip("no strided Tensor views in this build")
    g.output(g.matmul(x, g.constant("wt", tv), name="mm"))
    r = g.validate("cpu")
    hit = issues_with(r, "layout_noncontiguous")[0]
    assert hit["node"] == "mm" and hit["value"] == "wt" and hit["severity"] == "warning"


def test_backend_capability_codes():
    core, x = raw()
    d = core.input("d", (4, 4), dtype="float64")
    core.mark_output(core.add_unchecked("gelu", [d], (4, 4), node_name="gelu64", dtype="float64"))
    r = expect(core, "backend_unsupported", "gelu64")
    assert "no backend in this build" in issues_with(r, "backend_unsupported")[0]["message"]
    core, x = raw()
    core.mark_output(core.add("relu", [x], node_name="r"))
    strict = lc.strict_device()
    try:
        lc.set_strict_device(False)
        r = expect(core, "backend_unavailable", None, severity="warning", device="metal",
                   reason="fallback_preferred_unavailable")
        assert "falls back to" in issues_with(r, "backend_unavailable")[0]["message"]
        lc.set_strict_device(True)
        expect(core, "backend_unavailable", None, severity="error", device="metal", reason="fallback_preferred_unavailable")
    finally:
        lc.set_strict_device(strict)
    assert core.validate("auto") == []
    if lc.cuda_available():
        g = lc.Graph()
        q = g.input("q", (8, 300))
        g.output(g.attention(q, q, q, name="big"))
        hit = issues_with(g.validate("cuda"), "backend_unsupported")[0]
        assert hit["node"] == "big" and hit["severity"] == "warning" and hit["reason"] == "fallback_preferred_unsupported"


def test_validate_passes_subset_and_report_fields():
    core, x = raw()
    core.add("relu", [x], node_name="r")  # no output
    assert core.validate("cpu", passes=["schema_contract"]) == []
    r = core.validate("cpu", passes=["topology"])
    assert [i["code"] for i in r] == ["topology_no_output"]
    assert set(r[0]) == {"pass", "code", "severity", "node", "value", "reason", "message", "node_index"}
    assert r[0]["node_index"] is None and r[0]["node"] is None


def test_op_work_from_the_op_table():
    # The one work estimate (routing, the cost model and the benchmarks' flops/bytes columns).
    w = lc.op_work("matmul", [(64, 32), (32, 16)])
    assert w == {"flops": 2.0 * 64 * 32 * 16, "bytes": 4.0 * (64 * 32 + 32 * 16 + 64 * 16)}
    assert lc.op_work("matmul", [(64, 32), (32, 16)], dtype="bfloat16")["bytes"] == w["bytes"] / 2
    conv = lc.op_work("conv2d_nchw", [(2, 3, 8, 8), (4, 3, 3, 3), (4,)], pad_h=1, pad_w=1)
    assert conv["flops"] >= 2.0 * 2 * 4 * 8 * 8 * 3 * 9
    assert lc.op_work("linear", [(8, 4), (4, 2), None])["flops"] >= 2.0 * 8 * 4 * 2
    with pytest.raises(ValueError, match="matmul: b: expected"):
        lc.op_work("matmul", [(4, 5), (6, 7)])
    with pytest.raises(ValueError, match="op: expected one of"):
        lc.op_work("nope", [(1,)])
    with pytest.raises(TypeError, match="dtype"):
        lc.op_work("relu", [(4,)], dtype="float8")
    with pytest.raises(TypeError, match="shapes"):
        lc.op_work("relu", "x")
