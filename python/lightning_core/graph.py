"""Graph builder: ``g = lc.Graph(); x = g.input("x", (1, 3, 8, 8)); y = g.conv2d(x, w, b, pad_h=1, pad_w=1)``.

A thin layer over ``lightning_core._C.GraphCore`` (the C graph IR, include/lightning_core/graph.h): every
op method appends a node whose output shape the C registry infers and checks (a bad shape raises
ValueError naming the node, the input and expected vs got; the graph is left unchanged) and returns a
:class:`Value` handle. ``validate(device)`` runs the five validation passes (schema_contract, topology,
alias_lifetime, layout_flow, backend_capability) and returns a list of issue dicts. Execution (planner,
fusion): ``plan()`` / ``run()`` (cached plans keyed on the graph's mutation counter ``core.version``,
one per concurrent caller). Reference: docs/python_api.md, "Graphs".
Tests: tests/python/test_graph.py, tests/python/test_graph_plan.py, tests/python/test_threads_hidden_state.py.
"""
from ._C import GraphCore, GraphPlan, graph_issue_codes, graph_op_schemas, graph_reason_codes
from ._pool import ObjectPool

__all__ = ["Graph", "Value", "GraphCore", "GraphPlan", "graph_op_schemas", "graph_reason_codes", "graph_issue_codes"]


class Value:
    """A value of a :class:`Graph` (graph input, constant or a node's output): ``id``, ``name``, ``shape``,
    ``dtype``, ``kind`` ('input' | 'constant' | 'intermediate')."""

    __slots__ = ("graph", "id")

    def __init__(self, graph, vid):
        self.graph = graph
        self.id = vid

    def _info(self):
        return self.graph.core.value(self.id)

    @property
    def name(self):
        return self._info()["name"]

    @property
    def shape(self):
        return self._info()["shape"]

    @property
    def dtype(self):
        return self._info()["dtype"]

    @property
    def kind(self):
        return self._info()["kind"]

    def __repr__(self):
        info = self._info()
        return f"Value({info['name']!r}, shape={info['shape']}, kind={info['kind']!r})"


class Graph:
    """A graph of lightning_core ops over float32 values, or float64/float16/bfloat16 where the op table's
    dtype masks take them (inputs by ``dtype=``, constants keep their array's dtype; plans run and return
    each value's dtype)."""

    def __init__(self):
        self.core = GraphCore()

    # ---- values ----------------------------------------------------------------------------------
    def input(self, name, shape, dtype="float32"):
        """A graph input of ``shape`` fed at run time; ``dtype`` float32 (default), float64, float16 or
        bfloat16 (a name, NumPy dtype or type)."""
        return Value(self, self.core.input(name, shape, dtype))

    def constant(self, name, value):
        """A constant (weights): a NumPy array (copied) or a lightning_core Tensor (shared)."""
        return Value(self, self.core.constant(name, value))

    def _id(self, fn, arg, v):
        if isinstance(v, Value):
            if v.graph is not self:
                raise ValueError(f"Graph.{fn}: {arg}: the value {v.name!r} belongs to another graph")
            return v.id
        raise TypeError(f"Graph.{fn}: {arg}: expected a Value of this graph, got {type(v).__name__}")

    def op(self, op, *inputs, name=None, **attrs):
        """Appends any registry op (``lc.graph_op_schemas()``) over ``inputs``; ``None`` inputs at the end
        (optional bias/gamma/beta) are dropped."""
        args = list(inputs)
        while args and args[-1] is None:
            args.pop()
        ids = [self._id(op, f"inputs[{i}]", v) for i, v in enumerate(args)]
        return Value(self, self.core.add(op, ids, node_name=name, **attrs))

    # ---- ops -------------------------------------------------------------------------------------
    def matmul(self, a, b, name=None):
        """a [m,k] @ b [k,n] -> [m,n]."""
        return self.op("matmul", a, b, name=name)

    def bias_add(self, x, bias, name=None):
        """x [m,n] + bias [n] (broadcast over rows)."""
        return self.op("bias_add", x, bias, name=name)

    def add(self, a, b, name=None):
        """vector_add: a + b, equal shapes."""
        return self.op("vector_add", a, b, name=name)

    def sub(self, a, b, name=None):
        """matrix_sub: a - b, equal shapes."""
        return self.op("matrix_sub", a, b, name=name)

    def div(self, a, b, name=None):
        """matrix_div: a / b, equal shapes."""
        return self.op("matrix_div", a, b, name=name)

    def relu(self, x, name=None):
        return self.op("relu", x, name=name)

    def gelu(self, x, approximate="none", name=None):
        """GELU: approximate 'none' (erf) or 'tanh'."""
        return self.op("gelu", x, name=name, gelu_approx=approximate)

    def layer_norm(self, x, gamma=None, beta=None, eps=1e-5, name=None):
        """Layer norm over the last axis of x [..., d]; gamma, beta [d] optional (beta needs gamma)."""
        if beta is not None and gamma is None:
            raise ValueError("Graph.layer_norm: beta: given without gamma (pass gamma too)")
        return self.op("layer_norm", x, gamma, beta, name=name, eps=eps)

    def rms_norm(self, x, weight=None, eps=1e-6, name=None):
        """RMS norm over the last axis of x [..., d]; weight [d] optional."""
        return self.op("rms_norm", x, weight, name=name, eps=eps)

    def softmax(self, x, name=None):
        """Softmax over the last axis."""
        return self.op("softmax", x, name=name)

    def silu(self, x, name=None):
        return self.op("silu", x, name=name)

    def silu_mul(self, a, b, name=None):
        """silu(a) * b, equal shapes (SwiGLU)."""
        return self.op("silu_mul", a, b, name=name)

    def add_bcast(self, a, b, name=None):
        """add: a + b with NumPy broadcasting (rank <= 4); ``add`` is the equal-shape vector_add."""
        return self.op("add", a, b, name=name)

    def mul(self, a, b, name=None):
        """mul: a * b with NumPy broadcasting (rank <= 4)."""
        return self.op("mul", a, b, name=name)

    def attention(self, q, k, v, causal=False, name=None):
        """attention_forward: q, k, v [seq, d] -> [seq, d]."""
        return self.op("attention_forward", q, k, v, name=name, causal=causal)

    def sdpa(self, q, k, v, causal=False, name=None):
        """sdpa: q [b,h,sq,d], k, v [b,hkv,skv,d] (or rank 3 / 2) -> q's shape; scale 1/sqrt(d), GQA when
        h > hkv, the causal diagonal aligned to the end of the keys (lc.scaled_dot_product_attention)."""
        return self.op("sdpa", q, k, v, name=name, causal=causal)

    def attention_packed(self, qkv, causal=False, name=None):
        """attention over a packed qkv [3, seq, d] (e.g. qkv_pack_repeat's output) -> [seq, d]."""
        return self.op("attention_packed", qkv, name=name, causal=causal)

    def conv2d(self, x, w, b=None, stride_h=None, stride_w=None, pad_h=None, pad_w=None, name=None, op="conv2d_nchw"):
        """conv2d_nchw: x [n,c,h,w], w [oc,c,kh,kw], b [oc] optional -> [n,oc,oh,ow]; stride 1 and pad 0
        unless given. ``op`` may name the seed's aliases 'conv2d_nchw3x3' (3x3 kernels) or
        'conv2d_nchw3x3s1p1' (stride 1, pad 1 fixed)."""
        given = {"stride_h": stride_h, "stride_w": stride_w, "pad_h": pad_h, "pad_w": pad_w}
        return self.op(op, x, w, b, name=name, **{k: v for k, v in given.items() if v is not None})

    def qkv_pack_repeat(self, src, seq, head_dim, name=None):
        """src (any shape) flattened and repeated/truncated into [3, seq, head_dim] (q | k | v)."""
        return self.op("qkv_pack_repeat", src, name=name, seq=seq, head_dim=head_dim)

    # seed spellings
    vector_add = add
    matrix_sub = sub
    matrix_div = div
    attention_forward = attention

    # ---- outputs, checks, introspection ----------------------------------------------------------
    def output(self, *values):
        """Marks values as graph outputs (in order); returns them (one value: that value)."""
        for i, v in enumerate(values):
            self.core.mark_output(self._id("output", f"values[{i}]", v))
        return values[0] if len(values) == 1 else values

    @property
    def outputs(self):
        return [Value(self, i) for i in self.core.outputs]

    def plan(self, device="auto", sync=None, fuse=True):
        """A :class:`GraphPlan`: validated, fused (``fuse``), bound to ``device`` ('cpu', 'cuda', 'metal',
        'auto'); ``sync`` ('auto' | 'always' | 'never' | None = the runtime policy) decides whether
        ``execute`` waits. Plans of graphs with the same structure share the cached analysis."""
        return GraphPlan(self.core, device, sync, fuse)

    def run(self, *inputs, device="auto", fuse=True):
        """One-shot: plan, upload, execute, download. Plans are cached on this graph per device/fuse and
        keyed on ``core.version`` (every change to the graph, through this builder or ``g.core``, makes a
        new plan); concurrent calls each borrow their own plan (_pool.py), so threads may share a graph."""
        core = self.core
        version = core.version
        pool = self.__dict__.get("_run_plans")
        if pool is None:
            pool = self.__dict__.setdefault("_run_plans", ObjectPool(capacity=8, per_key=8))
        pool.renew((core, version))  # a changed graph drops the plans of its old state
        fuse = bool(fuse)
        with pool.borrow((core, version, device, fuse), lambda: GraphPlan(core, device, None, fuse)) as plan:
            return plan.run(*inputs)

    def validate(self, device="cpu", passes=None):
        """The validation report: a list of {pass, code, severity, node, value, reason, message, node_index}."""
        return self.core.validate(device, passes)

    def check(self, device="cpu"):
        """Raises ValueError listing every error-level issue; returns the warnings."""
        issues = self.validate(device)
        errors = [i for i in issues if i["severity"] == "error"]
        if errors:
            lines = "; ".join(f"{i['code']}: {i['message']}" for i in errors)
            raise ValueError(f"Graph.check: {len(errors)} error(s): {lines}")
        return issues

    def hash(self):
        """Stable 64-bit structural hash (names and constant data excluded): the plan-cache key."""
        return self.core.hash()

    @property
    def nodes(self):
        return [self.core.node(i) for i in range(self.core.num_nodes)]

    @property
    def values(self):
        return [Value(self, i) for i in range(self.core.num_values)]

    def __len__(self):
        return self.core.num_nodes

    def __repr__(self):
        return f"Graph(nodes={self.core.num_nodes}, values={self.core.num_values}, outputs={len(self.core.outputs)})"
