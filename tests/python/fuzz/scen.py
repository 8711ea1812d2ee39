"""Fuzz scenarios for the Graph builder and plans, checkpoints, Tensor/DLPack and nn modules (see misc.py).

Each ``make_*`` draws every random choice up front and returns a ``Scenario`` of ``Step``s; the worker
runs the steps in order (a step whose prerequisite is missing is skipped) and judges each one.
"""
import os

import numpy as np

import lightning_core as lc
from lightning_core import checkpoint, nn

from . import ops
from .misc import Scenario, Skip, Step, _close, need
from .values import EITHER, INVALID, VALID, describe, mk_array, weird_values


# ---- graph ---------------------------------------------------------------------------------------

def _graph_plan(rng):
    """A random op chain: list of (op, params) drawn now, realised by the steps."""
    start4 = rng.random() < 0.3
    cur = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(3, 9)), int(rng.integers(3, 9))) \
        if start4 else (int(rng.integers(1, 20)), int(rng.integers(1, 20)))
    plan = [("input", {"shape": cur})]
    for _ in range(int(rng.integers(1, 6))):
        bad = rng.random() < 0.12
        const = rng.random() < 0.6
        if len(cur) == 4:
            op = ["conv2d", "relu", "qkv", "add"][int(rng.integers(4))]
        else:
            op = ["matmul", "bias_add", "add", "sub", "div", "relu", "gelu", "layer_norm", "attention", "qkv"][int(rng.integers(10))]
        p = {"bad": bad, "const": const, "seed": int(rng.integers(2**31))}
        if op == "conv2d":
            kh = 3 if rng.random() < 0.6 else int(rng.integers(1, 4))
            p.update(oc=int(rng.integers(1, 5)), kh=kh, s=int(rng.integers(1, 3)), pad=int(rng.integers(0, 2)),
                     bias=rng.random() < 0.7, relu=rng.random() < 0.5)
            oh = (cur[2] + 2 * p["pad"] - kh) // p["s"] + 1
            ow = (cur[3] + 2 * p["pad"] - kh) // p["s"] + 1
            if oh < 1 or ow < 1:
                continue
            cur = (cur[0], p["oc"], oh, ow)
        elif op == "matmul":
            p["n"] = int(rng.integers(1, 20))
            cur = (cur[0], p["n"])
        elif op == "qkv":
            p.update(seq=int(rng.integers(1, 17)), d=int(rng.integers(1, 17)), causal=rng.random() < 0.5)
            cur = (p["seq"], p["d"])
        elif op == "attention":
            p.update(causal=rng.random() < 0.5, same=rng.random() < 0.3)
        elif op == "gelu":
            p["approx"] = ["none", "tanh"][int(rng.integers(2))]
        elif op == "layer_norm":
            p["affine"] = rng.random() < 0.6
        if op in ("relu", "gelu", "qkv") or (op == "layer_norm" and not p["affine"]) or (op == "attention" and p["same"]):
            p["bad"] = False
        plan.append((op, p))
    extra_out = rng.random() < 0.2 and len(plan) > 2
    return plan, extra_out


def _realise(g, plan, inputs, evals):
    """Build the graph from the plan; returns (value, numpy-evaluation closure) pairs."""
    op0, p0 = plan[0]
    x = g.input("x0", p0["shape"])
    inputs.append(mk_array(np.random.default_rng(1), p0["shape"]))
    evals.append(lambda ins: ins[0].astype(np.float64))
    cur, ev, shape = x, evals[0], p0["shape"]
    built = [(cur, ev)]
    for i, (op, p) in enumerate(plan[1:]):
        r = np.random.default_rng(p["seed"])
        off = 1 if p["bad"] else 0

        def operand(shp, name, r=r, p=p, positive=False):
            a = mk_array(r, shp)
            if positive:
                a = np.abs(a) + 0.5
            if p["const"]:
                return g.constant(name, a), (lambda ins, a=a: a.astype(np.float64))
            k = len(inputs)
            inputs.append(a)
            return g.input(name, shp), (lambda ins, k=k: ins[k].astype(np.float64))
        if op == "conv2d":
            w, wev = operand((p["oc"], shape[1] + off, p["kh"], p["kh"]), f"w{i}")
            b, bev = operand((p["oc"],), f"b{i}") if p["bias"] else (None, None)
            y = g.conv2d(cur, w, b, stride_h=p["s"], stride_w=p["s"], pad_h=p["pad"], pad_w=p["pad"])
            nev = (lambda ins, ev=ev, wev=wev, bev=bev, p=p:
                   ops._conv(ev(ins), wev(ins), None if bev is None else bev(ins), p["s"], p["s"], p["pad"], p["pad"]))
        elif op == "matmul":
            w, wev = operand((shape[1] + off, p["n"]), f"w{i}")
            y = g.matmul(cur, w)
            nev = lambda ins, ev=ev, wev=wev: ev(ins) @ wev(ins)  # noqa: E731
        elif op == "bias_add":
            b, bev = operand((shape[-1] + off,), f"b{i}")
            y = g.bias_add(cur, b)
            nev = lambda ins, ev=ev, bev=bev: ev(ins) + bev(ins)  # noqa: E731
        elif op in ("add", "sub", "div"):
            b, bev = operand(tuple(shape[:-1]) + (shape[-1] + off,), f"o{i}", positive=op == "div")
            y = getattr(g, op)(cur, b)
            f = {"add": np.add, "sub": np.subtract, "div": np.divide}[op]
            nev = lambda ins, ev=ev, bev=bev, f=f: f(ev(ins), bev(ins))  # noqa: E731
        elif op == "relu":
            y = g.relu(cur)
            nev = lambda ins, ev=ev: np.maximum(ev(ins), 0)  # noqa: E731
        elif op == "gelu":
            y = g.gelu(cur, approximate=p["approx"])
            nev = lambda ins, ev=ev, a=p["approx"]: ops._gelu(ev(ins), a)  # noqa: E731
        elif op == "layer_norm":
            gm, gev = operand((shape[-1] + off,), f"g{i}") if p["affine"] else (None, None)
            bt, btev = operand((shape[-1],), f"be{i}") if p["affine"] else (None, None)
            y = g.layer_norm(cur, gm, bt)
            nev = (lambda ins, ev=ev, gev=gev, btev=btev:
                   ops._layer_norm(ev(ins), None if gev is None else gev(ins), None if btev is None else btev(ins), 1e-5))
        elif op == "attention":
            if p["same"] and not off:
                k, kev, v, vev = cur, ev, cur, ev
            else:
                k, kev = operand((shape[0] + off, shape[1]), f"k{i}")
                v, vev = operand(tuple(shape), f"v{i}")
            y = g.attention(cur, k, v, causal=p["causal"])
            nev = lambda ins, ev=ev, kev=kev, vev=vev, c=p["causal"]: ops._attention(ev(ins), kev(ins), vev(ins), c)  # noqa: E731
        elif op == "qkv":
            pk = g.qkv_pack_repeat(cur, seq=p["seq"], head_dim=p["d"] + off)
            y = g.attention_packed(pk, causal=p["causal"])

            def nev(ins, ev=ev, p=p):
                src = ev(ins).ravel()
                qkv = src[np.arange(3 * p["seq"] * p["d"]) % src.size].reshape(3, p["seq"], p["d"])
                return ops._attention(qkv[0], qkv[1], qkv[2], p["causal"])
        cur, ev = y, nev
        shape = tuple(y.shape)
        built.append((cur, ev))
    return built


def make_graph(rng, mask):
    plan, extra_out = _graph_plan(rng)
    dev = ["cpu", "auto", "cuda", "metal"][int(rng.integers(4))]
    fuse = bool(rng.random() < 0.7)
    bad_build = any(p.get("bad") for _, p in plan[1:])
    steps = []

    def build(st):
        g = lc.Graph()
        inputs, evals = [], []
        st["g"], st["inputs"] = g, inputs
        before = len(g)
        try:
            built = _realise(g, plan, inputs, evals)
        except (ValueError, TypeError):
            st["build_failed"] = True
            if st["g"].nodes and len(st["g"].nodes) < before:
                raise AssertionError("graph lost nodes")
            raise
        outs = [built[-1]] + ([built[len(built) // 2]] if extra_out else [])
        g.output(*[o for o, _ in outs])
        st["evals"] = [e for _, e in outs]
    steps.append(Step(f"g = chain {[(op, {k: v for k, v in p.items() if k != 'seed'}) for op, p in plan]}", build,
                      INVALID if bad_build else EITHER))
    steps.append(Step(f"g.validate({dev!r})", lambda st: need(st, "evals") and need(st, "g").validate(dev), VALID))

    def plan_step(st):
        need(st, "evals")
        st["plan"] = need(st, "g").plan(device=dev, fuse=fuse)
    steps.append(Step(f"plan = g.plan({dev!r}, fuse={fuse})", plan_step, EITHER))
    for rep in range(int(rng.integers(1, 4))):
        new_inputs = rng.random() < 0.5
        seed = int(rng.integers(2**31))

        def run_step(st, new_inputs=new_inputs, seed=seed):
            p = need(st, "plan")
            if new_inputs:
                r = np.random.default_rng(seed)
                st["inputs"] = [(a * r.uniform(0.5, 1.5, a.shape)).astype(np.float32) for a in st["inputs"]]
            return p.run(*st["inputs"])

        def check(st, res):
            refs = [e(st["inputs"]) for e in st["evals"]]
            if len(res) != len(refs):
                return f"plan.run returned {len(res)} outputs, expected {len(refs)}"
            for o, rf in zip(res, refs):
                err = _close(o, rf, 1e-3) if np.size(o) == rf.size else f"shape {np.shape(o)} vs {rf.shape}"
                if err:
                    return err
            return None
        steps.append(Step(f"plan.run(*inputs{' (new values)' if new_inputs else ''})", run_step, VALID, check))
    k = int(rng.integers(3))
    if k == 0:
        idx, bad_out = int(rng.integers(-1, 3)), rng.random() < 0.5

        def dl(st, idx=idx, bad_out=bad_out):
            p = need(st, "plan")
            shp = st["evals"][0](st["inputs"]).shape
            out = np.full(shp if not bad_out else (1,), np.nan, np.float32)
            return p.download_into(idx, out)
        steps.append(Step(f"plan.download_into({idx}, out{' wrong size' if bad_out else ''})", dl, EITHER))
    elif k == 1:
        loops = [1, 2, 0, -1, 2**63, None, True][int(rng.integers(7))]
        steps.append(Step(f"plan.execute({describe(loops)})", lambda st, lp=loops: need(st, "plan").execute(lp),
                          VALID if loops in (1, 2) and loops is not True else EITHER))
    else:
        wrong = rng.random() < 0.5

        def grun(st, wrong=wrong):
            ins = need(st, "inputs")
            need(st, "evals")
            args = ins[:-1] if wrong and ins else ins
            return st["g"].run(*args, device=dev, fuse=fuse)
        steps.append(Step(f"g.run(*inputs{'[:-1]' if wrong else ''})", grun, INVALID if wrong else VALID,
                          None if wrong else (lambda st, res: _close(res[0], st["evals"][0](st["inputs"]), 1e-3))))
    return Scenario("graph", "lenient", steps, mask)


# ---- checkpoints --------------------------------------------------------------------------------

def _params(m):
    return {k: np.array(v, copy=True) for k, v in m.state_dict().items()}


def make_checkpoint(rng, mask, tmp):
    i, h, o = (int(rng.integers(1, 6)) for _ in range(3))
    arch = int(rng.integers(3))
    mk = [lambda s: nn.TinyMLPModel(i, h, o, seed=s), lambda s: nn.Linear(i, o, seed=s),
          lambda s: nn.Sequential(nn.Linear(i, h, seed=s), nn.ReLU())][arch]
    v11 = rng.random() < 0.5
    meta = [None, {"epoch": 3, "cfg": {"lr": 0.1}}, {"x": float("nan")}, {"k": {1, 2}}, {1: "a"}, "meta"][int(rng.integers(6))]
    path_kind = ["file", "file", "file", "dir", "missing_parent"][int(rng.integers(5))]
    corrupt = ["none", "none", "truncate", "flip", "junk", "zeros", "empty"][int(rng.integers(7))]
    cut, nflip, cseed = rng.random(), int(rng.integers(1, 6)), int(rng.integers(2**31))
    target_kind = ["same", "same", "other_shape", "other_arch"][int(rng.integers(4))]
    strict = bool(rng.random() < 0.7)
    model_level = rng.random() < 0.5
    path = {"file": os.path.join(tmp, "m.ckpt"), "dir": tmp,
            "missing_parent": os.path.join(tmp, "nope", "m.ckpt")}[path_kind]
    valid_save = meta is None or meta == {"epoch": 3, "cfg": {"lr": 0.1}}
    steps = []

    def save(st):
        m = mk(1)
        st["saved"] = _params(m)
        (checkpoint.save_model_checkpoint if v11 else checkpoint.save_checkpoint)(path, m, metadata=meta)
        st["path"] = path
    steps.append(Step(f"save_{'model_' if v11 else ''}checkpoint({path_kind}, {type(mk(0)).__name__}, metadata={describe(meta)})",
                      save, VALID if valid_save and path_kind == "file" else INVALID))

    def corrupt_step(st):
        p = need(st, "path")
        data = bytearray(open(p, "rb").read())
        r = np.random.default_rng(cseed)
        if corrupt == "truncate":
            data = data[:int(len(data) * cut)]
        elif corrupt == "flip":
            for _ in range(nflip):
                data[int(r.integers(len(data)))] ^= 1 << int(r.integers(8))
        elif corrupt == "junk":
            data += bytes(r.integers(0, 256, 100, dtype=np.uint8))
        elif corrupt == "zeros":
            a = int(len(data) * cut)
            data[a:a + 64] = bytes(len(data[a:a + 64]))
        elif corrupt == "empty":
            data = bytearray()
        open(p, "wb").write(bytes(data))
        st["corrupt"] = corrupt
    if corrupt != "none":
        steps.append(Step(f"corrupt file: {corrupt} (cut {cut:.2f}, flips {nflip})", corrupt_step, VALID))

    def load(st):
        p = need(st, "path")
        tgt = mk(2) if target_kind == "same" else (nn.Linear(i + 1, o, seed=2) if target_kind == "other_shape"
                                                    else nn.TinyMLPModel(i, h + 1, o, seed=2))
        st["tgt"], st["tgt_before"] = tgt, _params(tgt)
        fn = checkpoint.load_model_checkpoint if model_level else checkpoint.load_checkpoint
        return fn(p, tgt, strict=strict)

    def check(st, res):
        if not isinstance(res, dict):
            return f"load returned {type(res).__name__}, not a dict"
        got = _params(st["tgt"])
        saved = st["saved"]
        if st.get("corrupt") and not v11:
            return None
        for k2, v in got.items():
            if k2 in saved and saved[k2].shape == v.shape and not np.array_equal(saved[k2], v):
                return f"loaded tensor {k2!r} differs from the saved one" + (" (corrupted file accepted)" if st.get("corrupt") else "")
        return None

    def unchanged(st):
        if "tgt" in st:
            now = _params(st["tgt"])
            if any(not np.array_equal(now[k2], st["tgt_before"][k2]) for k2 in now):
                return "a refused load changed the module"
        return None
    ok_load = corrupt == "none" and (target_kind == "same" or (arch == 1 and target_kind == "other_shape" and False))
    steps.append(Step(f"load_{'model_' if model_level else ''}checkpoint(path, {target_kind} model, strict={strict})",
                      load, VALID if ok_load else EITHER, check, unchanged))
    steps.append(Step("read_checkpoint_info(path)", lambda st: checkpoint.read_checkpoint_info(need(st, "path")),
                      VALID if corrupt == "none" else EITHER))
    return Scenario("checkpoint", "checkpoint", steps, mask)


# ---- tensors and DLPack ----------------------------------------------------------------------------

def make_tensor(rng, mask):
    steps = []
    f64 = rng.random() < 0.3
    T = lc.Tensor64 if f64 else lc.Tensor
    shape = tuple(int(rng.integers(1, 6)) for _ in range(int(rng.integers(1, 4))))
    src_kind = ["array", "array", "shape", "weird", "f16", "int"][int(rng.integers(6))]
    data = mk_array(rng, shape, np.float64 if f64 else np.float32)
    arg = {"array": data, "shape": shape, "weird": weird_values(rng), "f16": data.astype(np.float16),
           "int": data.astype(np.int32)}[src_kind]

    def make(st):
        st["t"] = T(arg)
        st["data"] = (np.asarray(arg, np.float64) if src_kind in ("array", "f16") or (src_kind == "int" and not f64) else
                      np.zeros(shape) if src_kind == "shape" else None)

    def check_make(st, res):
        if st["data"] is not None and not np.array_equal(st["t"].numpy().astype(np.float64), st["data"]):
            return "Tensor contents differ from the data"
        return None
    steps.append(Step(f"t = {T.__name__}({describe(arg)})", make,
                      VALID if src_kind in ("array", "shape", "f16") or (src_kind == "int" and not f64)  # int32 index tensor
                      else (INVALID if src_kind == "int" else EITHER), check_make))
    for _ in range(int(rng.integers(1, 5))):
        kind = ["view", "copy_from", "dlpack", "from_dlpack", "asarray", "memoryview", "validate", "numpy"][int(rng.integers(8))]
        if kind == "view":
            n = int(np.prod(shape))
            vshape = tuple(int(rng.integers(0, 4)) for _ in range(int(rng.integers(1, 4))))
            strides = None if rng.random() < 0.4 else tuple(int(rng.integers(-1, 4)) for _ in vshape)
            if rng.random() < 0.1:
                strides = tuple([2**62] * len(vshape))
            offset = int(rng.integers(0, n + 1)) if rng.random() < 0.9 else [-1, 2**63, 2**62][int(rng.integers(3))]

            def view(st, vshape=vshape, strides=strides, offset=offset):
                return need(st, "t").view(vshape, strides, offset)

            def check_view(st, res, vshape=vshape, strides=strides, offset=offset):
                if st.get("data") is None:
                    return None
                base = st["t"].numpy().ravel()
                stv = strides if strides is not None else tuple(int(np.prod(vshape[i + 1:])) for i in range(len(vshape)))
                idx = np.full(vshape, offset, np.int64)
                for ax, (d, s) in enumerate(zip(vshape, stv)):
                    sh = [1] * len(vshape)
                    sh[ax] = d
                    idx = idx + (np.arange(d) * s).reshape(sh)
                if idx.size and (idx.min() < 0 or idx.max() >= base.size):
                    return f"view accepted out-of-storage elements (indices {idx.min()}..{idx.max()} of {base.size})"
                if not np.array_equal(res.numpy(), base[idx]):
                    return "view contents differ from the storage elements"
                return None
            steps.append(Step(f"t.view({vshape}, {strides}, {offset})", view, EITHER, check_view))
        elif kind == "copy_from":
            size_bad = rng.random() < 0.4
            as_int = rng.random() < 0.2
            cseed = int(rng.integers(2**31))
            int_t = src_kind == "int" and not f64  # an int32 index tensor takes integer arrays only
            # "weird" sources may make a tensor of any dtype (an int32 one among them): only the size decides
            bad = size_bad or (src_kind != "weird" and as_int != int_t)

            def cf(st, bad=bad, as_int=as_int, cseed=cseed, size_bad=size_bad):
                t = need(st, "t")
                a = mk_array(np.random.default_rng(cseed), (t.numel + (1 if size_bad else 0),), np.float32)
                if as_int:
                    a = a.astype(np.int64)
                t.copy_from(a)
                st["data"] = a.astype(np.float32 if not f64 else np.float64).astype(np.float64).reshape(st["t"].shape)
            steps.append(Step(f"t.copy_from(float32 array of t.numel{' + 1' if size_bad else ''} elements"
                              f"{' as int64' if as_int else ''})", cf, INVALID if bad else EITHER,
                              lambda st, res: None if np.array_equal(st["t"].numpy().astype(np.float64), st["data"])
                              else "copy_from did not write the data"))
        elif kind == "dlpack":
            kw = {}
            if rng.random() < 0.5:
                kw["max_version"] = [(1, 0), (0, 8), (2, 0), None, "x", (1,)][int(rng.integers(6))]
            if rng.random() < 0.3:
                kw["copy"] = [True, False, None, 2][int(rng.integers(4))]
            if rng.random() < 0.3:
                kw["dl_device"] = [(1, 0), (2, 0), (3, 0), (1,), None][int(rng.integers(5))]
            if rng.random() < 0.3:
                kw["stream"] = [None, 0, 1, -1, -2, 2**70, "s"][int(rng.integers(7))]

            def dl(st, kw=kw):
                cap = need(st, "t").__dlpack__(**kw)
                st["cap"] = cap
                return cap
            steps.append(Step(f"t.__dlpack__(**{kw!r})", dl, EITHER))
        elif kind == "from_dlpack":
            which = ["t", "cap", "cap_twice", "ndarray", "weird", "neg"][int(rng.integers(6))]
            w = weird_values(rng)

            def fd(st, which=which, w=w):
                if which == "t":
                    return lc.from_dlpack(need(st, "t"))
                if which in ("cap", "cap_twice"):
                    cap = need(st, "cap")
                    if which == "cap_twice":
                        lc.from_dlpack(cap)
                    return lc.from_dlpack(cap)
                if which == "ndarray":
                    return lc.from_dlpack(data)
                if which == "neg":
                    return lc.from_dlpack(data[::-1])
                return lc.from_dlpack(w)

            def check_fd(st, res, which=which):
                if which == "ndarray" and not np.array_equal(res.numpy(), data):
                    return "from_dlpack(ndarray) contents differ"
                if which == "t" and st.get("data") is not None and not np.array_equal(res.numpy().astype(np.float64),
                                                                                   st["t"].numpy().astype(np.float64)):
                    return "from_dlpack(t) contents differ"
                return None
            steps.append(Step(f"from_dlpack({which if which != 'weird' else describe(w)})", fd,
                              VALID if which in ("t", "ndarray") else EITHER, check_fd))
        elif kind == "asarray":
            steps.append(Step("np.asarray(t)", lambda st: np.asarray(need(st, "t")), VALID,
                              lambda st, res: None if st.get("data") is None or np.array_equal(res.astype(np.float64), st["data"])
                              else "np.asarray(t) differs from the data"))
        elif kind == "memoryview":
            steps.append(Step("memoryview(t).tobytes()", lambda st: memoryview(need(st, "t")).tobytes(), VALID))
        elif kind == "validate":
            shp = [weird_values(rng), (2, 3), (0, 2), [2**62, 2**62], (-1,)][int(rng.integers(5))]
            strd = [None, (1, 1), (2**62, 1), (-1, 1), "x"][int(rng.integers(5))]
            off = [0, -1, 2**63, 3][int(rng.integers(4))]
            stor = [6, 0, -1, 2**63, 2**64][int(rng.integers(5))]
            steps.append(Step(f"validate_view({stor}, {describe(shp)}, {strd}, {off})",
                              lambda st, a=(stor, shp, strd, off): lc.validate_view(*a), EITHER))
            steps.append(Step(f"validate_shape({describe(shp)})", lambda st, s=shp: lc.validate_shape(s), EITHER))
        else:
            steps.append(Step("t.numpy()", lambda st: need(st, "t").numpy(), VALID))
    return Scenario("tensor", "tensor", steps, mask)


# ---- nn --------------------------------------------------------------------------------------------

def make_nn(rng, mask):
    i, o = int(rng.integers(1, 8)), int(rng.integers(1, 8))
    kind = ["Linear", "ReLU", "GELU", "LayerNorm", "Embedding", "Conv2d", "TinyMLPModel"][int(rng.integers(7))]
    bad = rng.random() < 0.2
    badv = [0, -1, True, 2.5, "3", None, 2**63][int(rng.integers(7))]
    ctor_args = {"Linear": (i, o), "ReLU": (), "GELU": (), "LayerNorm": (o,), "Embedding": (i, o),
                 "Conv2d": (i, o, 3), "TinyMLPModel": (i, 4, o)}[kind]
    if bad and ctor_args:
        j = int(rng.integers(len(ctor_args)))
        ctor_args = ctor_args[:j] + (badv,) + ctor_args[j + 1:]
    bad = bad and bool(ctor_args)
    xshape = {"Linear": (3, i), "ReLU": (3, o), "GELU": (3, o), "LayerNorm": (2, o), "Embedding": (4,),
              "Conv2d": (1, i, 5, 5), "TinyMLPModel": (3, i)}[kind]
    xbad = rng.random() < 0.2
    steps = [Step(f"m = nn.{kind}{describe(ctor_args)}",
                  lambda st: st.__setitem__("m", getattr(nn, kind)(*ctor_args)), INVALID if bad else VALID)]
    r = np.random.default_rng(int(rng.integers(2**31)))
    if kind == "Embedding":
        x = r.integers(0, i + (1 if xbad else 0), xshape)
        if xbad:
            x.reshape(-1)[0] = i
    else:
        x = mk_array(r, xshape if not xbad else xshape[:-1] + (xshape[-1] + 1,))
    xbad = xbad and kind not in ("ReLU", "GELU", "Conv2d")

    def fwd(st):
        return need(st, "m")(x)

    def check(st, res):
        m = st["m"]
        if kind == "Linear":
            return _close(res, x.astype(np.float64) @ m.weight.astype(np.float64) + m.bias)
        if kind == "ReLU":
            return _close(res, np.maximum(x, 0))
        return None
    if rng.random() < 0.2:
        steps.append(Step("m.backward(g) before forward", lambda st: need(st, "m").backward(np.ones(1, np.float32)), EITHER))
    steps.append(Step(f"m({describe(x)})", fwd, INVALID if xbad else VALID, check))
    if kind in ("Linear", "ReLU", "GELU", "LayerNorm", "TinyMLPModel") and rng.random() < 0.6:
        gbad = rng.random() < 0.3

        def bwd(st):
            y = need(st, "m")(x)
            g = np.ones(y.shape if not gbad else (y.size + 1,), np.float32)
            return st["m"].backward(g)
        steps.append(Step(f"m.backward(grad{' of wrong shape' if gbad else ''})", bwd, INVALID if gbad else EITHER))
        lr = [0.1, 0.0, -1.0, float("nan"), "x"][int(rng.integers(5))]

        def sgd(st):
            m = need(st, "m")
            ps = list(m.parameters())
            if not ps:
                raise Skip("no parameters")
            opt = nn.SGD(m, lr=lr)
            opt.step()
        steps.append(Step(f"nn.SGD(m, lr={describe(lr)}).step()", sgd, VALID if lr in (0.1, 0.0) else EITHER))
    return Scenario("nn " + kind, "lenient", steps, mask)
