"""The short fuzz run of ``make test`` (fixed seed) and tests of the fuzzer itself (tests/python/fuzz/).

- ``test_fuzz_fixed_seed``: FUZZ_TEST_CASES (default 2500) cases of seed FUZZ_TEST_SEED (default 20240531),
  each batch in a subprocess (crash or hang = finding); fails on any finding not in fuzz/allow.py,
  printing the replay command of each. About 10-20 s on 2 cores.
- the driver really reports a crash (abort), a hang (timeout) and a bad exception, with the case index;
- the oracle's message checks (repeated prefix, printf leftovers) and exception families;
- the allow-list stays small and every entry names its issue 12 item.
The long run is ``make fuzz`` (docs/design.md, "Fuzzing").
"""
import os

import pytest

from fuzz import allow, driver, worker

SEED = int(os.environ.get("FUZZ_TEST_SEED", "20240531"))
CASES = int(os.environ.get("FUZZ_TEST_CASES", "2500"))


def test_fuzz_fixed_seed():
    recs = driver.run_cases(SEED, 0, CASES, case_timeout=20.0, batch=1250)
    assert len(recs) == CASES
    rep = driver.Report(SEED, recs)
    if rep.new:
        rep.confirm(case_timeout=20.0, limit=5)
    assert not rep.new, "\n" + rep.format()
    assert not [r for r in recs if r.get("kind") == "fuzzer_error"]


@pytest.mark.parametrize("what,kind", [("crash", "crash"), ("hang", "hang"), ("raise", "bad_exception")])
def test_driver_reports_crash_hang_and_bad_exception(monkeypatch, what, kind):
    monkeypatch.setenv("LC_FUZZ_SELFTEST", f"{what}:3")
    recs = driver.run_cases(5, 0, 6, case_timeout=3.0, batch=6)
    assert [r["done"] for r in recs] == list(range(6)), recs   # the run resumes after the bad case
    bad = [r for r in recs if r.get("kind") in ("crash", "hang", "bad_exception")]
    assert [(r["done"], r["kind"]) for r in bad] == [(3, kind)]
    assert bad[0]["call"] not in ("", "?")                     # the reproducer names the call
    rep = driver.Report(5, recs)
    assert rep.new and "seed 5, case 3" in rep.format()


def test_replay_gives_the_same_case():
    a = worker.render(worker.make_case(SEED, 17, None, "/tmp"))
    b = worker.render(worker.make_case(SEED, 17, None, "/tmp"))
    assert a == b


def test_message_checks():
    assert worker.garbled("matmul_session: a: matmul_session: a: t overflows at dim 1")
    assert worker.garbled("relu: x: expected %zu elements")
    assert worker.garbled("x\x00y")
    assert not worker.garbled("graph.add: node 'mm' (matmul): input 1 'b' (value 'w'): expected [k=8, n], got [7, 3]")
    assert not worker.garbled("matmul2d: a: expected a numpy.ndarray or a lightning_core Tensor, got list")
    assert worker.judge_exc(OverflowError("x: y"), "op")[0] == "bad_exception"
    assert worker.judge_exc(SystemError("x: y"), "lenient")[0] == "bad_exception"
    assert worker.judge_exc(IndexError("x: y"), "lenient")[0] == "bad_exception"
    assert worker.judge_exc(RuntimeError("x: y"), "op")[0] == "bad_exception"   # only documented subclasses
    assert worker.judge_exc(ValueError(""), "op")[0] == "empty_message"
    assert worker.judge_exc(ValueError("relu: x: expected float, got int32"), "op") is None


def test_allow_list_is_small_and_tied_to_issue_items():
    assert len(allow.ALLOW) <= 8
    for e in allow.ALLOW:
        assert isinstance(e["item"], int) and 1 <= e["item"] <= 15
    assert allow.match({"kind": "crash", "target": "matmul2d", "call": "", "detail": ""}) is None


def test_oracle_regressions():
    """Cases where the oracle, not the library, was wrong: seed 1455057754 case 36896 (a "weird" tensor source
    that is an int32 array takes an int64 copy_from; the oracle expected a refusal)."""
    recs = driver.run_cases(1455057754, 36896, 1, case_timeout=20.0, batch=1)
    assert len(recs) == 1 and recs[0].get("kind") in (None, "ok"), recs
