"""Fuzz worker: runs cases [start, start+count) of a seed in this process and judges each (the oracle).

Protocol: one JSON line per event on the original stdout (fd 1 is redirected to stderr so that stray
prints cannot corrupt it): ``{"start": i}`` before case i, ``{"done": i, ...}`` after it. A crash or a
hang therefore shows as a "start" without its "done" (the driver judges those).

Oracle (per case): accepted outcomes are a normal return (checked against the float64 reference where the
arguments are valid: values, shape, dtype, ``out`` returned and written, inputs untouched) or an accepted
exception type for the callable's family with a clean message (non-empty, no repeated "op: " prefix, no
printf leftovers) and ``out`` untouched. Everything else is a finding; so is a sanity op that fails
after the case (the process left unusable). Usage: ``python worker.py SEED START COUNT [MASK]``.
"""
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import lightning_core as lc  # noqa: E402
from lightning_core import api  # noqa: E402

from fuzz import misc, ops, scen  # noqa: E402
from fuzz.values import EITHER, INVALID, VALID  # noqa: E402

CATEGORIES = [("op", 0.42), ("generic", 0.15), ("methods", 0.1), ("session", 0.09), ("graph", 0.1),
              ("tensor", 0.06), ("checkpoint", 0.04), ("nn", 0.04)]
BASE_OK = (ValueError, TypeError, MemoryError)
FAMILY_OK = {
    "op": BASE_OK + (lc.DeviceUnavailableError, NotImplementedError),
    "session": BASE_OK + (lc.DeviceUnavailableError, NotImplementedError),
    "lenient": BASE_OK + (RuntimeError, OSError, BufferError),
    "checkpoint": BASE_OK + (OSError,),
    "tensor": BASE_OK + (BufferError, lc.DeviceUnavailableError),
}
NAME_OK = {"lc.from_dlpack": (BufferError,), "lc.Tensor": (lc.DeviceUnavailableError,)}
NUM_THREADS = lc.num_threads()


def make_case(seed, idx, mask=None, tmp=None):
    rng = np.random.default_rng([seed, idx])
    r, acc = rng.random(), 0.0
    cat = CATEGORIES[-1][0]
    for name, w in CATEGORIES:
        acc += w
        if r < acc:
            cat = name
            break
    if cat == "op":
        return ops.make_op_case(rng, ops.OP_NAMES[int(rng.integers(len(ops.OP_NAMES)))], mask)
    if cat == "generic":
        return misc.make_generic(rng, mask, tmp)
    if cat == "methods":
        return misc.make_methods(rng, mask, tmp)
    if cat == "session":
        return misc.make_session(rng, mask)
    if cat == "graph":
        return scen.make_graph(rng, mask)
    if cat == "tensor":
        return scen.make_tensor(rng, mask)
    if cat == "checkpoint":
        return scen.make_checkpoint(rng, mask, tmp)
    return scen.make_nn(rng, mask)


def render(case):
    return case.call.render() if case.kind == "op" else case.render()


def n_parts(case):
    return len(case.muts) if case.kind == "op" else len(case.all_steps)


# ---- exception judgement ------------------------------------------------------------------------

_PRINTF = re.compile(r"%(?:[-+ 0#]?\d*(?:\.\d+)?(?:zu|zd|lld|llu|ld|lu|d|u|s|g|f|p|x))\b")


def garbled(msg):
    toks = msg.split(": ")
    if len(toks) >= 3 and toks[0] and len(toks[0]) >= 3 and toks[0] in toks[1:-1] + [toks[-1].split(" ")[0]]:
        return f"message repeats its prefix {toks[0]!r}"
    if "\x00" in msg:
        return "message contains NUL"
    if _PRINTF.search(msg):
        return "message contains an unformatted printf conversion"
    return None


def _user_raised(exc):
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame
        tb = tb.tb_next
    return last is not None and last.f_code.co_name == "<lambda>" and last.f_code.co_filename.startswith(HERE)


def judge_exc(exc, family, name="", call_text=""):
    """None when ``exc`` is an accepted refusal, else (kind, detail)."""
    ok = FAMILY_OK[family] + NAME_OK.get(name, ())
    text = f"{type(exc).__name__}: {exc}"
    if _user_raised(exc):
        return None
    if isinstance(exc, SystemError) or not isinstance(exc, ok):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
        return "bad_exception", f"{text[:400]}\n{tb[-800:]}"
    msg = str(exc)
    if not msg.strip() and not isinstance(exc, MemoryError):
        return "empty_message", text
    g = garbled(msg.replace("\x00", "") if "\\x00" in call_text else msg)
    if g:
        return "garbled_message", f"{g}: {msg[:300]!r}"
    return None


# ---- op cases -------------------------------------------------------------------------------------

def _snap(v):
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, ops.TENSORS):
        try:
            return v.numpy()
        except Exception:
            return None
    return None


def _same(a, b):
    try:
        return a.shape == b.shape and (np.array_equal(a, b, equal_nan=a.dtype.kind == "f") or
                                       a.tobytes() == b.tobytes())
    except Exception:
        return a.tobytes() == b.tobytes()


def _finite_class(vals, names):
    nan = inf = False
    for n in names:
        v = vals.get(n)
        a = _snap(v)
        if a is not None and a.dtype.kind == "f":
            nan |= bool(np.isnan(a).any())
            inf |= bool(np.isinf(a).any())
    return nan, inf


def run_op(case):
    exp, info = ops.expectation(case)
    call = case.call
    pos, kw = call.args()
    into = case.name.endswith("_into")
    out = call.vals.get("out") if into else None
    out_snap = _snap(out)
    in_names = [n for n, r in call.roles.items() if r in ("in", "opt_in")]
    in_snaps = {}
    for n in in_names:
        v = call.vals[n]
        if v is out or (isinstance(v, np.ndarray) and isinstance(out, np.ndarray) and np.shares_memory(v, out)):
            continue
        in_snaps[n] = _snap(v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _judge_op(case, exp, info, call, pos, kw, into, out, out_snap, in_names, in_snaps)


def _judge_op(case, exp, info, call, pos, kw, into, out, out_snap, in_names, in_snaps):
    if True:
        try:
            res = call.fn(*pos, **kw)
        except Exception as e:  # noqa: BLE001 (judged below)
            bad = judge_exc(e, "op", call.name, call.render())
            if bad:
                return bad
            if out_snap is not None and not _same(_snap(out), out_snap):
                return "half_written", f"out changed by a refused call ({type(e).__name__}: {str(e)[:200]})"
            if exp == VALID:
                return "refused_valid", f"{type(e).__name__}: {str(e)[:300]}"
            return None
    if exp == INVALID:
        return "accepted_invalid", f"expected a refusal ({info}); returned {type(res).__name__}"
    for n, s in in_snaps.items():
        if s is not None and not _same(_snap(call.vals[n]), s):
            return "input_modified", f"input {n} changed"
    if exp == EITHER:
        return None
    ref, cdt, _ = info
    if into and res is not out:
        return "into_return", f"returned {type(res).__name__}, not out"
    got = _snap(res)
    if got is None:
        return "bad_return", f"returned {type(res).__name__}"
    if (got.size != ref.size) if into else (got.shape != ref.shape):
        return "bad_shape", f"result shape {got.shape}, expected {ref.shape}"
    if not into and isinstance(res, np.ndarray) and res.dtype != cdt:
        return "bad_dtype", f"result dtype {res.dtype}, expected {np.dtype(cdt)}"
    got = got.astype(np.float64).reshape(ref.shape)
    nan, inf = _finite_class(call.vals, in_names)
    if inf:
        return None
    tol = (1e-9 if cdt == np.float64 else 3e-4) * (1.0 + (np.nanmax(np.abs(ref)) if np.isfinite(ref).any() else 0.0))
    if nan:
        wrong = np.isnan(got) != np.isnan(ref)
        if wrong.any():
            where = np.argwhere(wrong)[:4].tolist()
            return "nan_pattern", (f"NaN pattern differs from the reference at {int(wrong.sum())} of {ref.size} "
                                   f"elements, e.g. {where} (got {got[tuple(where[0])]}, ref {ref[tuple(where[0])]})")
    with np.errstate(invalid="ignore"):
        if not nan and not np.isfinite(got).all() and np.isfinite(ref).all():
            return "nonfinite_output", f"{int((~np.isfinite(got)).sum())} non-finite of {got.size} (finite inputs)"
        err = np.nanmax(np.abs(got - ref)) if got.size else 0.0
    if err > tol:
        i = np.unravel_index(np.nanargmax(np.abs(got - ref)), ref.shape)
        return "wrong_value", f"max abs error {err:.3g} > {tol:.3g} at {tuple(map(int, i))}: got {got[i]}, ref {ref[i]}"
    return None


# ---- scenarios --------------------------------------------------------------------------------------

def run_scenario(case, tmp):
    st = {"tmp": tmp}
    for k, step in enumerate(case.steps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = step.fn(st)
            except misc.Skip:
                continue
            except Exception as e:  # noqa: BLE001
                name = case.name.split(" ", 1)[1] if case.name.startswith("generic ") else ""
                bad = judge_exc(e, case.family, name, step.label)
                if bad and ".__getitem__(" in step.label and isinstance(e, (IndexError, KeyError)):
                    bad = None  # the sequence/mapping protocol's own exceptions
                if bad:
                    return bad[0], f"step {k} `{step.label}`: {bad[1]}"
                if step.on_error:
                    m = step.on_error(st)
                    if m:
                        return "half_written", f"step {k} `{step.label}`: {m}"
                if step.expect == VALID:
                    return "refused_valid", f"step {k} `{step.label}`: {type(e).__name__}: {str(e)[:300]}"
                continue
            if step.expect == INVALID:
                return "accepted_invalid", f"step {k} `{step.label}` returned {type(res).__name__}"
            if step.check:
                try:
                    m = step.check(st, res)
                except Exception as e:  # noqa: BLE001
                    m = f"checker raised {type(e).__name__}: {e}"
                if m:
                    return "wrong_result", f"step {k} `{step.label}`: {m}"
    return None


# ---- state reset and sanity -------------------------------------------------------------------------

def reset_state():
    for f in (lambda: lc.set_strict_device(False), lambda: lc.set_sync_policy("auto"),
              lambda: lc.set_matmul_precision("highest"), lambda: lc.set_num_threads(NUM_THREADS),
              lambda: lc.runtime_trace_enable(False), lambda: lc.set_autotune(True),
              lambda: api.set_engine("lightning"), lambda: api.set_route_policy(None, None, None)):
        try:
            f()
        except Exception as e:  # noqa: BLE001
            return f"state reset failed: {type(e).__name__}: {e}"
    return None


_A = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
_B = np.arange(8, dtype=np.float32).reshape(4, 2) / 5


def sanity():
    try:
        r = lc.matmul2d(_A, _B)
        if not np.allclose(r, _A.astype(np.float64) @ _B, atol=1e-5):
            return f"sanity matmul2d wrong: {r.tolist()}"
        s = lc.vector_add(_A, _A)
        if not np.array_equal(s, _A + _A):
            return "sanity vector_add wrong"
        q = _A[:, :2].copy()
        a = lc.attention2d(q, q, q, True)
        if not np.allclose(a, ops._attention(q.astype(np.float64), q, q, True), atol=1e-5):
            return "sanity attention2d wrong"
        if not isinstance(lc.last_dispatch(), dict):
            return "last_dispatch() is not a dict"
    except Exception as e:  # noqa: BLE001
        return f"sanity op raised {type(e).__name__}: {e}"
    return None


def _selftest(idx):
    """LC_FUZZ_SELFTEST=crash:I | hang:I | raise:I makes case I misbehave (tests of the driver itself)."""
    spec = os.environ.get("LC_FUZZ_SELFTEST", "")
    if ":" in spec:
        what, at = spec.split(":", 1)
        if int(at) == idx:
            if what == "crash":
                os.abort()
            if what == "hang":
                time.sleep(3600)
            if what == "raise":
                return "bad_exception", "OverflowError: injected by LC_FUZZ_SELFTEST"
    return None


def run_one(seed, idx, mask, tmp_root, announce):
    tmp = tempfile.mkdtemp(dir=tmp_root)
    try:
        case = make_case(seed, idx, mask, tmp)
        target, text, parts = case.name, render(case)[:2000], n_parts(case)
        announce({"start": idx, "target": target, "call": text, "parts": parts})
        t0 = time.perf_counter()
        bad = _selftest(idx) or (run_op(case) if case.kind == "op" else run_scenario(case, tmp))
        dt = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r = reset_state()
    s = sanity()
    if bad is None and (r or s):
        bad = ("unusable_after", r or s)
    rec = {"done": idx, "target": target, "call": text, "parts": parts, "ms": round(dt * 1e3, 2)}
    if bad:
        rec["kind"], rec["detail"] = bad[0], bad[1][:1500]
    return rec


def main(argv):
    seed, start, count = int(argv[1]), int(argv[2]), int(argv[3])
    mask = int(argv[4]) if len(argv) > 4 and argv[4] != "-" else None
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    try:
        import resource
        lim = int(os.environ.get("LC_FUZZ_MEM_BYTES", str(4 << 30)))
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    except (ImportError, ValueError, OSError):
        pass
    tmp_root = tempfile.mkdtemp(prefix="lc_fuzz_")
    try:
        for idx in range(start, start + count):
            try:
                rec = run_one(seed, idx, mask, tmp_root, lambda d: proto.write(json.dumps(d, default=str) + "\n"))
            except MemoryError as e:
                rec = {"done": idx, "target": "?", "call": "?", "parts": 0, "kind": "fuzzer_error", "detail": f"MemoryError {e}"}
            except Exception as e:  # noqa: BLE001 (a fuzzer bug: reported, never hidden)
                rec = {"done": idx, "target": "?", "call": "?", "parts": 0, "kind": "fuzzer_error",
                       "detail": "".join(traceback.format_exception(type(e), e, e.__traceback__))[-1500:]}
            proto.write(json.dumps(rec, default=str) + "\n")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    proto.write(json.dumps({"end": True}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
