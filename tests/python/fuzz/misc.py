"""Generic and stateful fuzz cases: every public callable by introspection, and scenarios of steps.

- ``generic``: a public callable of lightning_core / lc.api / lc.nn / lc.autograd / lc.checkpoint /
  lc.sessions / lc.graph, arguments from its signature: plausible-by-name values or weird ones.
- scenarios (lists of ``Step``, all randomness drawn at generation; the mask drops steps for shrinking):
  ``session`` (resident sessions: constructor + methods, outputs vs float64 references),
  ``graph`` (random Graph chains, almost-valid builder calls, plan/run vs a NumPy evaluation),
  ``checkpoint`` (save, corrupt, load on temp files; a refused load leaves the module unchanged),
  ``tensor`` (Tensor/TensorView/DLPack/buffer protocol), ``nn`` (modules, forward/backward, SGD).
Judged by worker.py.
"""
import inspect
import os

import numpy as np

import lightning_core as lc
from lightning_core import api, autograd, checkpoint, nn, sessions
from lightning_core.dtypes import numpy_dtype
from lightning_core.testing import unit_roundoff

from . import ops
from .values import EITHER, EXTREME_INTS, INVALID, VALID, describe, mk_array, weird_values


class Skip(Exception):
    """A step whose prerequisite was dropped by the mask or failed: not run."""


def need(st, key):
    if key not in st:
        raise Skip(key)
    return st[key]


class Step:
    def __init__(self, label, fn, expect=EITHER, check=None, on_error=None):
        self.label, self.fn, self.expect, self.check, self.on_error = label, fn, expect, check, on_error


class Scenario:
    kind = "scenario"

    def __init__(self, name, family, steps, mask):
        self.name, self.family = name, family
        self.all_steps = steps
        self.steps = [s for i, s in enumerate(steps) if mask is None or (mask >> i) & 1]

    def render(self):
        return f"[{self.name}] " + "; ".join(s.label for s in self.steps)


def _close(out, ref, tol=2e-4):
    out = np.asarray(out, np.float64).reshape(np.shape(ref))
    if np.isnan(out).any() and not np.isnan(ref).any():
        return f"NaN in output where the reference is finite ({int(np.isnan(out).sum())} of {out.size})"
    err = np.nanmax(np.abs(out - ref)) if out.size else 0.0
    bound = tol * (1.0 + np.nanmax(np.abs(ref)))
    return None if err <= bound else f"max abs error {err:.3g} > {bound:.3g}"


# ---- generic: every public callable ---------------------------------------------------------------

def _public():
    out = []
    seen = set()
    for modname, mod, names in [("lc", lc, lc.__all__), ("lc.api", api, [n for n in dir(api) if not n.startswith("_")]),
                                ("lc.nn", nn, [n for n in dir(nn) if n[:1].isupper() or n in ("SGD",)]),
                                ("lc.autograd", autograd, [n for n in dir(autograd) if not n.startswith("_")]),
                                ("lc.checkpoint", checkpoint, ["read_checkpoint_info", "CheckpointError"])]:
        for n in sorted(names):
            obj = getattr(mod, n, None)
            if not callable(obj) or getattr(obj, "__module__", "lightning_core").split(".")[0] not in ("lightning_core",):
                continue
            if n in ("Mapping", "OrderedDict", "Integral", "Real", "namedtuple", "contextmanager"):
                continue
            if id(obj) in seen and modname != "lc":
                continue
            seen.add(id(obj))
            out.append((f"{modname}.{n}", obj))
    return out


PUBLIC = _public()
ARRAY_NAMES = {"a", "b", "x", "q", "k", "v", "w", "src", "out", "gamma", "beta", "bias", "data", "pred", "target",
               "value", "grad_out", "grad", "tensor", "storage", "k_new", "v_new", "lengths"}
INT_NAMES = {"m", "k", "n", "seq", "head_dim", "rows", "cols", "seq_len", "stride_h", "stride_w", "pad_h", "pad_w",
             "batch", "in_ch", "out_ch", "h", "in_features", "out_features", "hidden_features", "num_embeddings",
             "embedding_dim", "kernel_size", "stride", "padding", "storage_elems", "offset", "hotspot_top_k",
             "normalized_shape"}
SMALL_LOOP_NAMES = {"warmup", "iters", "loops", "capacity"}


def _plausible(rng, pname, tmp):
    r = rng.random()
    if pname in ("k_new", "v_new") and r < 0.5:  # KVCache (2, 2, 8, 4): often the right [batch, kv_heads, t, d]
        return mk_array(rng, (2, 2, int(rng.integers(1, 4)), 4))
    if pname in ARRAY_NAMES:
        shape = tuple(int(rng.integers(1, 6)) for _ in range(int(rng.integers(1, 5))))
        return mk_array(rng, shape)
    if pname in INT_NAMES:
        return int(rng.integers(0, 9)) if r < 0.8 else EXTREME_INTS[int(rng.integers(len(EXTREME_INTS)))]
    if pname in SMALL_LOOP_NAMES:
        return int(rng.integers(0, 4))
    table = {
        "device": ["cpu", "auto", "cuda", "metal", "gpu"], "dl_device": [(1, 0), (2, 0), None],
        "causal": [True, False], "flag": [True, False], "apply_relu": [True, False], "bias": [True, False],
        "eps": [1e-5, 0.0, -1.0], "policy": ["auto", "always", "never", None, sessions.AttentionIoPolicy(False)],
        "precision": ["highest", "tf32", "x"], "engine": ["lightning", "torch", "auto", "x"],
        "shape": [(2, 3), [4], 5, (0,), (2**40, 2**40), (-1,)], "strides": [(3, 1), None, (1,), (-1, 1)],
        "fn": [lambda: None, lambda: lc.relu(np.ones(3, np.float32)), lambda: 1 / 0],
        "path": [os.path.join(tmp, "f.ckpt"), tmp, os.path.join(tmp, "missing", "x")],
        "module": [nn.TinyMLPModel(2, 3, 2, seed=0), nn.Linear(2, 2, seed=1)],
        "execution_mode": ["eager", "graph", "x"], "activation": ["none", "relu", "gelu", "gelu_tanh", "x"],
        "approximate": ["none", "tanh", "x"], "group_by": ["op", "op_path", "selected_device", "x"],
        "metadata": [None, {"a": 1}, {"a": float("nan")}, {1: 2}], "lr": [0.1, -1.0, float("nan")],
        "seed": [None, 0, -1, 2**70], "conv": [None, "torch", "lightning"], "attention": [None, "torch"],
        "sync": [None, "auto", "never", "x"], "strict": [True, False],
    }
    table["model"] = table["into"] = table["module"]
    if pname in table:
        opts = table[pname]
        return opts[int(rng.integers(len(opts)))]
    return weird_values(rng)


def make_generic(rng, mask, tmp):
    from .allow import defer_huge_loops
    qname, obj = PUBLIC[int(rng.integers(len(PUBLIC)))]
    try:
        sig = inspect.signature(obj)
        params = list(sig.parameters.values())
    except (TypeError, ValueError):
        params = [inspect.Parameter(f"arg{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(int(rng.integers(0, 4)))]
    pos, kw = [], {}
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            pos.extend(_plausible(rng, "x", tmp) for _ in range(int(rng.integers(0, 3))))
            continue
        if p.kind == p.VAR_KEYWORD:
            if rng.random() < 0.2:
                kw["bogus"] = weird_values(rng)
            continue
        if p.default is not p.empty and rng.random() < 0.4:
            continue
        v = _plausible(rng, p.name, tmp) if rng.random() < 0.65 else weird_values(rng)
        v = defer_huge_loops(p.name, v)
        if p.kind == p.POSITIONAL_ONLY or (p.kind == p.POSITIONAL_OR_KEYWORD and rng.random() < 0.5 and not kw):
            pos.append(v)
        else:
            kw[p.name] = v
    family = "op" if qname.startswith("lc.") and qname.count(".") == 1 and isinstance(obj, type(lc.relu)) else "lenient"
    label = f"{qname}({', '.join([describe(x) for x in pos] + [f'{k}={describe(v)}' for k, v in kw.items()])})"
    return Scenario("generic " + qname, family, [Step(label, lambda st: obj(*pos, **kw))], mask)


# ---- sessions ----------------------------------------------------------------------------------

def _maybe_bad_size(rng, v, pad=False):
    r = rng.random()
    if r < 0.85:
        return v, VALID
    bad = [0, -1, True, 2**31, 2**32 + v, 2**63, 2**64, 2.0, "3", None][int(rng.integers(10))]
    if pad and bad == 0 and not isinstance(bad, bool):
        return bad, VALID
    return bad, INVALID


def make_session(rng, mask):
    kind = ["matmul", "elemwise", "attention", "conv_attention", "policy"][int(rng.integers(5))]
    dev = ["cpu", "auto", "cuda"][int(rng.integers(3))]
    steps, bad = [], False
    # a float16/bfloat16 session a third of the time: inputs and out of its dtype, references from the rounded
    # inputs, tolerances at the dtype's rounding (the conv chain rounds its intermediate: no reference there)
    sdt = [None, None, None, None, "bfloat16", "float16"][int(rng.integers(6))] if kind != "policy" else None
    npdt = numpy_dtype(sdt or "float32")
    dkw = {} if sdt is None else {"dtype": sdt}
    dlab = "" if sdt is None else f", dtype={sdt!r}"
    tol = 2e-4 if sdt is None else 16 * unit_roundoff(sdt)
    if kind == "matmul":
        m, k, n = (int(rng.integers(1, 24)) for _ in range(3))
        args = []
        for v in (m, k, n):
            x, val = _maybe_bad_size(rng, v)
            args.append(x)
            bad |= val == INVALID
        ins = [(m, k), (k, n)]
        out_shape = (m, n)
        ctor = lambda st: st.__setitem__("s", sessions.MatMulResidentSession(*args, dev, **dkw))  # noqa: E731
        ref = lambda a, b: a @ b  # noqa: E731
        label = f"s = MatMulResidentSession({', '.join(map(describe, args))}, {dev!r}{dlab})"
    elif kind == "elemwise":
        r_, c_ = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        args = []
        for v in (r_, c_):
            x, val = _maybe_bad_size(rng, v)
            args.append(x)
            bad |= val == INVALID
        ins, out_shape = [(r_, c_), (r_, c_)], (r_, c_)
        ctor = lambda st: st.__setitem__("s", sessions.MatrixElemwiseResidentSession(*args, dev, **dkw))  # noqa: E731
        ref = None
        label = f"s = MatrixElemwiseResidentSession({', '.join(map(describe, args))}, {dev!r}{dlab})"
    elif kind in ("attention", "policy"):
        seq, d = int(rng.integers(1, 40)), int(rng.integers(1, 33))
        causal = bool(rng.random() < 0.5)
        args = []
        for v in (seq, d):
            x, val = _maybe_bad_size(rng, v)
            args.append(x)
            bad |= val == INVALID
        ins, out_shape = [(seq, d)] * 3, (seq, d)
        ref = lambda q, k, v: ops._attention(q, k, v, causal)  # noqa: E731
        if kind == "policy":
            pol = sessions.AttentionIoPolicy(*(bool(rng.random() < 0.7) for _ in range(3)))
            arrs = [mk_array(rng, (seq * d,)) for _ in range(3)]
            exp = INVALID if bad else EITHER

            def run(st):
                return sessions.attention_forward_with_policy(*arrs, args[0], args[1], causal, dev, pol)

            def check(st, res):
                if res is None:
                    return None
                return _close(res, ops._attention(*(a.astype(np.float64).reshape(seq, d) for a in arrs), causal).ravel())
            lab = (f"attention_forward_with_policy(q, k, v, {describe(args[0])}, {describe(args[1])}, {causal}, {dev!r}, "
                   f"AttentionIoPolicy{(pol.upload, pol.download, pol.synchronize)})")
            steps = [Step(lab, run, exp, check if pol.upload and pol.download else None) for _ in range(2)]
            return Scenario("session policy", "session", steps, mask)
        ctor = lambda st: st.__setitem__("s", sessions.AttentionSession(*args, causal, dev, **dkw))  # noqa: E731
        label = f"s = AttentionSession({', '.join(map(describe, args))}, {causal}, {dev!r}{dlab})"
    else:
        b, c, h, w, oc = 1, int(rng.integers(1, 4)), int(rng.integers(3, 10)), int(rng.integers(3, 10)), int(rng.integers(1, 5))
        seq, d = int(rng.integers(1, 20)), int(rng.integers(1, 17))
        sh, sw, ph, pw = 1, 1, 1, 1
        vals = [b, c, h, w, oc, seq, d, sh, sw, ph, pw]
        args = []
        for j, v in enumerate(vals):
            x, val = _maybe_bad_size(rng, v, pad=j >= 9)
            args.append(x)
            bad |= val == INVALID
        ins, out_shape = [(b, c, h, w), (oc, c, 3, 3), (oc,)], (seq, d)

        def chain_ref(x, wt, bias, pads=(args[9], args[10])):
            y = np.maximum(ops._conv(x, wt, bias, 1, 1, pads[0], pads[1]), 0).ravel()
            qkv = y[np.arange(3 * seq * d) % y.size].reshape(3, seq, d)
            return ops._attention(qkv[0], qkv[1], qkv[2], False)
        # 16-bit: q|k|v are the conv output rounded to the dtype, which softmax amplifies: no reference
        ref = chain_ref if sdt is None else None
        ctor = lambda st: st.__setitem__("s", sessions.ConvAttentionSession(*args, device=dev, **dkw))  # noqa: E731
        label = f"s = ConvAttentionSession({', '.join(map(describe, args))}, device={dev!r}{dlab})"
    steps.append(Step(label, ctor, INVALID if bad else VALID))
    for _ in range(int(rng.integers(1, 5))):
        arrs = [mk_array(rng, s).astype(npdt) for s in ins]
        mut = rng.random()
        mut_label = ""
        if mut < 0.15:
            i = int(rng.integers(len(arrs)))
            arrs[i] = mk_array(rng, (arrs[i].size + 1,)).astype(npdt)
            mut_label = f" (input {i} has one element too many)"
        elif mut < 0.2 and sdt is not None:
            i = int(rng.integers(len(arrs)))
            arrs[i] = arrs[i].astype(np.float32)
            mut_label = f" (input {i} float32 to a {sdt} session)"
        out = np.full(out_shape, np.nan, np.float32).astype(npdt)
        okind = rng.random()
        if okind < 0.1:
            out = np.full(out_shape + (2,), np.nan, np.float32)[..., 0]
            mut_label += " (out strided)"
        elif okind < 0.15:
            out.flags.writeable = False
            mut_label += " (out read-only)"
        elif okind < 0.2:
            out = out.astype(np.float64)
            mut_label += " (out float64)"
        elif okind < 0.23 and sdt is not None:
            out = out.astype(np.float32)
            mut_label += f" (out float32 for a {sdt} session)"
        valid_io = not mut_label
        loops = int(rng.integers(1, 4)) if rng.random() < 0.85 else [0, -1, True, 2.0, None][int(rng.integers(5))]
        if kind == "elemwise":
            meth = ["add", "sub", "div"][int(rng.integers(3))] + ["_start_into", "_run_into"][int(rng.integers(2))]
            np_op = {"add": np.add, "sub": np.subtract, "div": np.divide}[meth[:3]]
            steps.append(_sess_step(f"s.{meth}(a, b, out){mut_label}", lambda st, m=meth, a=arrs, o=out:
                                    getattr(need(st, "s"), m)(*a, o), out, valid_io,
                                    (lambda a=arrs, f=np_op: f(*(x.astype(np.float64) for x in a)))
                                    if meth.endswith("start_into") else None, tol=tol))
            continue
        meth = ["start_into", "sync_into", "run_into", "run_batch_sync_into", "run_batch_sync_no_download_into",
                "run_batch_sync_cached_no_download", "upload", "run", "download_into", "synchronize",
                "forward_into"][int(rng.integers(11))]
        if meth == "forward_into" and kind != "attention":
            meth = "sync_into"
        writes = meth in ("start_into", "sync_into", "run_batch_sync_into", "forward_into")
        with_loops = meth.startswith("run_batch") or meth == "run"
        valid = valid_io and (not with_loops or (isinstance(loops, int) and not isinstance(loops, bool) and loops >= 1))

        def fn(st, m=meth, a=arrs, o=out, lp=loops):
            s = need(st, "s")
            if m in ("upload",):
                r = s.upload(*a)
                st["uploaded"] = a
                return r
            if m == "run":
                need(st, "uploaded")
                r = s.run(lp)
                st["ran"] = st["uploaded"]
                return r
            if m == "download_into":
                need(st, "ran")
                return s.download_into(o)
            if m == "synchronize":
                return s.synchronize()
            if m == "run_batch_sync_cached_no_download":
                need(st, "uploaded")
                r = s.run_batch_sync_cached_no_download(lp)
                st["ran"] = st["uploaded"]
                return r
            extra = (lp,) if m.startswith("run_batch") else ()
            r = getattr(s, m)(*a, o, *extra)
            st["uploaded"] = st["ran"] = a
            return r
        if meth == "download_into":
            refn = (lambda st, r=ref: r(*(x.astype(np.float64).reshape(s) for x, s in zip(st["ran"], ins)))) if ref else None
        else:
            refn = (lambda st, r=ref, a=arrs: r(*(x.astype(np.float64).reshape(s) for x, s in zip(a, ins)))) if ref else None
        arg_l = "(q, k, v, out)" if not with_loops else f"(..., loops={describe(loops)})"
        steps.append(_sess_step(f"s.{meth}{arg_l}{mut_label}", fn, out, valid, refn if writes or meth == "download_into" else None,
                                takes_st=True, tol=tol))
    return Scenario("session " + kind, "session", steps, mask)


def _sess_step(label, fn, out, valid, refn, takes_st=False, tol=2e-4):
    before = out.copy()

    def check(st, res):
        if refn is None or not valid:
            return None
        try:
            ref = refn(st) if takes_st else refn()
        except (KeyError, ops.Invalid):
            return None
        return _close(out, ref, tol)

    def on_error(st):
        if not np.array_equal(out, before, equal_nan=True):
            return "out was written by a refused call"
        return None
    return Step(label, fn, VALID if valid else EITHER, check, on_error)


# ---- methods of live objects ------------------------------------------------------------------------

def _graph():
    g = lc.Graph()
    x = g.input("x", (2, 3))
    g.output(g.relu(x))
    return g


def _objects():
    """name -> (factory of a fresh object, exception family); fresh, so no case sees another's changes."""
    def t():
        return lc.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    return {
        "Tensor": (t, "tensor"), "TensorView": (lambda: t().view((3,), (2,), 0), "tensor"),
        "Tensor64": (lambda: lc.Tensor64((2, 2)), "tensor"),
        "MatMulResidentSession": (lambda: sessions.MatMulResidentSession(2, 3, 4, "cpu"), "session"),
        "AttentionSession": (lambda: sessions.AttentionSession(4, 2, True, "cpu"), "session"),
        "MatrixElemwiseResidentSession": (lambda: sessions.MatrixElemwiseResidentSession(2, 2, "cpu"), "session"),
        "Graph": (_graph, "lenient"), "GraphCore": (lambda: _graph().core, "lenient"),
        "GraphPlan": (lambda: _graph().plan("cpu"), "lenient"), "Linear": (lambda: nn.Linear(3, 2, seed=0), "lenient"),
        "Sequential": (lambda: nn.Sequential(nn.Linear(3, 2, seed=0), nn.ReLU()), "lenient"),
        "SGD": (lambda: nn.SGD(nn.Linear(3, 2, seed=0), lr=0.1), "lenient"),
        "Var": (lambda: autograd.Var(np.ones((2, 2), np.float32)), "lenient"),
        "KVCache": (lambda: lc.KVCache(2, 2, 8, 4), "session"),
    }


OBJECTS = _objects()
SKIP_METHODS = {"__init__", "__new__", "__init_subclass__", "__subclasshook__", "__reduce__", "__reduce_ex__",
                "__getstate__", "__setattr__", "__delattr__", "__class__", "__dir__", "__sizeof__", "__format__"}


def make_methods(rng, mask, tmp):
    from .allow import defer_huge_loops
    oname = sorted(OBJECTS)[int(rng.integers(len(OBJECTS)))]
    factory, family = OBJECTS[oname]
    probe = factory()
    names = sorted(n for n in dir(probe) if (not n.startswith("_") or n in ("__dlpack__", "__dlpack_device__",
                   "__array__", "__getitem__", "__len__", "__call__", "__repr__")) and n not in SKIP_METHODS)
    steps = [Step(f"o = {oname}(...)", lambda st: st.__setitem__("o", factory()), VALID)]
    for _ in range(int(rng.integers(1, 5))):
        mname = names[int(rng.integers(len(names)))]
        attr = getattr(probe, mname, None)
        pos, kw = [], {}
        if callable(attr):
            try:
                params = [p for p in inspect.signature(attr).parameters.values()]
            except (TypeError, ValueError):
                params = [inspect.Parameter(f"x{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(int(rng.integers(0, 3)))]
            for p in params:
                if p.kind == p.VAR_KEYWORD or (p.default is not p.empty and rng.random() < 0.5):
                    continue
                n_ = 1 if p.kind != p.VAR_POSITIONAL else int(rng.integers(0, 4))
                for _ in range(n_):
                    v = _plausible(rng, p.name, tmp) if rng.random() < 0.6 else weird_values(rng)
                    v = defer_huge_loops(p.name, v)
                    if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL) or (p.kind == p.POSITIONAL_OR_KEYWORD and not kw):
                        pos.append(v)
                    else:
                        kw[p.name] = v

        def call(st, mname=mname, pos=pos, kw=kw):
            a = getattr(need(st, "o"), mname)
            return a(*pos, **kw) if callable(a) else a
        label = f"o.{mname}" + (f"({', '.join([describe(x) for x in pos] + [f'{k}={describe(v)}' for k, v in kw.items()])})"
                                if callable(attr) else "")
        steps.append(Step(label, call, EITHER))
    return Scenario(f"methods {oname}", family, steps, mask)
