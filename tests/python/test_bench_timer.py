"""The one timer (lightning_core.bench.timer): time_call's warm-up, settle, sizing, samples, median/CV and
wall-time bound, driven by a fake clock (each call of fn advances it by a scripted cost); time_pair's
interleaving; lc.api's A/B report goes through it."""
import math

import pytest

from lightning_core.bench import timer as T


class FakeClock:
    """now() reads the fake time; a fake call advances it by the next scripted cost (the last one repeats)."""

    def __init__(self, costs):
        self.t, self.costs, self.calls, self.slept = 0.0, list(costs), 0, []

    def now(self):
        return self.t

    def sleep(self, s):
        self.slept.append(s)

    def fn(self):
        self.t += self.costs[min(self.calls, len(self.costs) - 1)]
        self.calls += 1


def test_median_cv_inner_and_call_count_on_a_fake_clock():
    c = FakeClock([1e-3, 1e-3, 1e-5])  # two slow warm-up calls, then 10 us per call
    t = T.time_call(c.fn, warmup=2, samples=5, min_sample_s=1e-4, settle_s=0.3, max_s=None, clock=c.now,
                    sleep=c.sleep)
    assert c.slept == [0.3]
    assert t["inner"] == 10 and t["samples"] == 5  # sized on the warm call: 1e-4 / 1e-5
    assert c.calls == 2 + 1 + 5 * 10  # warm-up, the sizing call, the samples
    assert t["median_s"] == pytest.approx(1e-5) and t["median_ms"] == pytest.approx(1e-2) and t["cv"] == 0.0


def test_cv_of_uneven_samples_and_per():
    c = FakeClock([1.0, 1.0, 1.0, 2.0, 1.0, 3.0])  # warm-up 1, sizing 1, samples 1, 2, 1, 3 (then 3s)
    t = T.time_call(c.fn, warmup=1, samples=4, inner=None, min_sample_s=0.0, settle_s=0.0, max_s=None, per=2,
                    clock=c.now, sleep=c.sleep)
    assert t["samples"] == 4 and t["inner"] == 1
    vals = [0.5, 1.0, 0.5, 1.5]  # per call / per
    assert t["median_s"] == pytest.approx(0.75) and t["min_s"] == pytest.approx(0.5)
    mean = sum(vals) / 4
    assert t["cv"] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in vals) / 4) / mean)


def test_max_s_bounds_slow_calls_only():
    c = FakeClock([0.02])  # 20 ms a call, 0.1 s budget
    t = T.time_call(c.fn, warmup=20, samples=41, settle_s=0.0, max_s=0.1, min_samples=3, clock=c.now, sleep=c.sleep)
    # the first warm-up call + int(0.2 * 0.1 / 0.02) = 1 more, the sizing call, max(3, int(0.8*0.1/0.02)) = 4 samples
    assert t["inner"] == 1 and t["samples"] == 4 and c.calls == 2 + 1 + 4
    c = FakeClock([0.02])
    T.time_call(c.fn, warmup=3, samples=4, settle_s=0.0, max_s=None, clock=c.now, sleep=c.sleep)
    assert c.calls == 3 + 1 + 4  # no bound: every call asked for
    c = FakeClock([1e-6])
    t = T.time_call(c.fn, warmup=2, samples=9, settle_s=0.0, max_s=0.5, clock=c.now, sleep=c.sleep)
    assert t["samples"] == 9  # fast calls keep every sample


def test_no_warmup_with_a_fixed_inner_makes_only_the_sample_calls():
    c = FakeClock([0.5])
    t = T.time_call(c.fn, warmup=0, samples=3, inner=1, settle_s=0.0, max_s=None, clock=c.now, sleep=c.sleep)
    assert c.calls == 3 and t["median_s"] == 0.5


def test_sample_ms_replaces_the_host_clock():
    c = FakeClock([1.0])
    runs = []

    def device_ms(run):
        runs.append(run)
        run()
        return 7.0  # the device clock says 7 ms whatever the host clock does

    t = T.time_call(c.fn, warmup=1, samples=3, inner=1, settle_s=0.0, max_s=None, sample_ms=device_ms,
                    clock=c.now, sleep=c.sleep)
    assert t["median_ms"] == pytest.approx(7.0) and len(runs) == 1 + 3 and c.calls == 4


def test_time_pair_interleaves_and_gives_the_per_pair_ratio():
    order = []
    clock = [0.0]

    def side(name, cost):
        def f():
            order.append(name)
            clock[0] += cost
        return f

    t = T.time_pair(side("a", 1.0), side("b", 2.0), 3, warmup=0, samples=1, inner=1, settle_s=0.0, max_s=None,
                    clock=lambda: clock[0])
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert t["a_ms"] == pytest.approx(1e3) and t["b_ms"] == pytest.approx(2e3) and t["b_over_a"] == pytest.approx(2.0)


def test_stats():
    s = T.stats([1.0, 2.0, 3.0, 4.0, float("nan")])
    assert s["n"] == 4 and s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 4.0
    assert math.isnan(T.stats([])["median"]) and T.stats([5.0])["cv"] == 0.0


def test_api_ab_report_uses_the_bench_timer(monkeypatch):
    import numpy as np
    import lightning_core as lc
    seen = []
    real = T.time_call

    def spy(fn, **kw):
        seen.append(kw)
        return real(fn, **kw)
    monkeypatch.setattr(T, "time_call", spy)
    assert not hasattr(lc.api, "_median_ms")
    rng = np.random.default_rng(0)
    x, w, b = rng.random((1, 3, 8, 8), np.float32), rng.random((16, 3, 3, 3), np.float32), rng.random(16, np.float32)
    rep = lc.api.conv_attention_torchstrong_nchw_ab_report(x, w, b, 48, 48, device="cpu", warmup=1, iters=3)
    assert len(seen) == 2 and all(k["samples"] == 3 and k["warmup"] == 1 for k in seen)
    assert rep["eager_ms"] > 0 and rep["graph_ms"] > 0
