"""Fuzz driver: runs cases in worker subprocesses, turns crashes and hangs into findings, confirms each
finding alone in a fresh process, shrinks it to the fewest mutations/steps and formats the reproducer.

``run(seed, start, count, ...)`` -> ``Report``. A batch is one worker process over consecutive cases; the
driver reads its protocol lines with a per-case timeout: no "done" within ``case_timeout`` is a hang
(the process group is killed), an exit without "done" is a crash (signal or exit code, stderr tail).
The next batch resumes after the bad case. Used by run.py (``make fuzz``) and test_fuzz.py.
"""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import allow

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "worker.py")
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
STARTUP_S = 20.0


def _env():
    env = dict(os.environ)
    env.setdefault("LC_NUM_THREADS", "2")
    env.pop("LC_TUNE_CACHE_FILE", None)
    env.pop("CJ_MATMUL_TUNE_CACHE_FILE", None)
    env.pop("LC_STRICT_DEVICE", None)
    env["PYTHONFAULTHANDLER"] = "1"
    py = os.path.join(REPO, "python")
    env["PYTHONPATH"] = py + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _batch(seed, start, count, mask, case_timeout):
    """Run cases [start, start+count) in one worker; returns (records, next index)."""
    err = tempfile.TemporaryFile()
    cmd = [sys.executable, WORKER, str(seed), str(start), str(count), "-" if mask is None else str(mask)]
    # cwd: a scratch directory, so that a path argument such as "cpu" never writes into the checkout
    cwd = tempfile.mkdtemp(prefix="lc_fuzz_cwd_")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=_env(), start_new_session=True, text=True,
                         cwd=cwd)
    try:
        return _read(p, q_start(p), err, start, count, case_timeout)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


def q_start(p):
    q = queue.Queue()
    threading.Thread(target=lambda: ([q.put(line) for line in p.stdout], q.put(None)), daemon=True).start()
    return q


def _read(p, q, err, start, count, case_timeout):
    recs, cur, first = [], None, True
    while True:
        try:
            line = q.get(timeout=case_timeout + (STARTUP_S if first else 0.0))
        except queue.Empty:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            rec = dict(cur or {"done": start, "target": "?", "call": "?"}, done=(cur or {}).get("start", start))
            rec.pop("start", None)
            rec.update(kind="hang", detail=f"no result within {case_timeout:.0f} s")
            recs.append(rec)
            return recs, rec["done"] + 1
        if line is None:
            rc = p.wait()
            err.seek(0)
            tail = err.read().decode("utf-8", "replace")[-1500:]
            if cur is None and not recs:
                raise RuntimeError(f"fuzz worker failed to start (rc={rc}):\n{tail}")
            idx = cur["start"] if cur else (recs[-1]["done"] + 1)
            rec = dict(cur or {"target": "?", "call": "?"}, done=idx)
            rec.pop("start", None)
            how = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"
            rec.update(kind="crash", detail=f"worker died ({how}) during this case; stderr tail:\n{tail}")
            recs.append(rec)
            return recs, idx + 1
        first = False
        msg = json.loads(line)
        if "start" in msg:
            cur = msg
        elif "done" in msg:
            recs.append(msg)
            cur = None
        elif msg.get("end"):
            p.wait()
            return recs, start + count


def run_cases(seed, start, count, mask=None, case_timeout=10.0, batch=400, deadline=None):
    """All records of cases [start, start+count) (stops early at ``deadline``, a time.monotonic value)."""
    recs, i, end = [], start, start + count
    while i < end and (deadline is None or time.monotonic() < deadline):
        got, i = _batch(seed, i, min(batch, end - i), mask, case_timeout)
        recs.extend(got)
    return recs


def _same_finding(a, b):
    return b is not None and b.get("kind") == a.get("kind")


def shrink(seed, rec, case_timeout=10.0):
    """(reproduces alone, smallest mask that still gives the same finding kind, its record)."""
    alone = run_cases(seed, rec["done"], 1, None, case_timeout)
    one = alone[0] if alone else None
    if not _same_finding(rec, one):
        return False, None, rec
    parts = int(rec.get("parts") or 0)
    if parts == 0 or parts > 12:
        return True, None, one
    mask, best = (1 << parts) - 1, one
    for bit in range(parts):
        trial = mask & ~(1 << bit)
        got = run_cases(seed, rec["done"], 1, trial, case_timeout)
        if got and _same_finding(rec, got[0]):
            mask, best = trial, got[0]
    return True, mask, best


class Report:
    def __init__(self, seed, recs):
        self.seed, self.recs = seed, recs
        self.findings = [r for r in recs if r.get("kind")]
        self.known = [(r, allow.match(r)) for r in self.findings if allow.match(r)]
        self.new = [r for r in self.findings if not allow.match(r)]
        self.details = []   # (rec, alone, mask, shrunk record) for new findings after confirm()

    def confirm(self, case_timeout=10.0, limit=10):
        for r in self.new[:limit]:
            self.details.append((r,) + shrink(self.seed, r, case_timeout))

    def format(self):
        lines = [f"fuzz seed {self.seed}: {len(self.recs)} cases, {len(self.new)} new findings, "
                 f"{len(self.known)} known (allow-listed)"]
        by_item = {}
        for r, e in self.known:
            by_item.setdefault(e["item"], []).append(r)
        for item, rs in sorted(by_item.items()):
            lines.append(f"  known, issue 12 item {item}: {len(rs)} x {rs[0]['kind']} ({rs[0]['target']})")
        shown = {id(d[0]): d for d in self.details}
        for r in self.new:
            d = shown.get(id(r))
            lines.append(f"\nFINDING {r['kind']} in {r['target']} (seed {self.seed}, case {r['done']})")
            if d:
                _, alone, mask, best = d
                lines.append(f"  reproduces alone in a fresh process: {'yes' if alone else 'no (depends on earlier cases)'}")
                if alone:
                    r = best
                    mk = f" --mask {mask}" if mask is not None else ""
                    lines.append(f"  replay: python tests/python/fuzz/run.py --seed {self.seed} --case {r['done']}{mk}")
            lines.append(f"  call: {r.get('call', '?')}")
            lines.append("  " + str(r.get("detail", "")).replace("\n", "\n  "))
        return "\n".join(lines)
