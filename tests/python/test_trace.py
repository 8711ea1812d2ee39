"""Runtime trace: runtime_trace_enable/clear/events/stats/set_capacity and runtime_trace_timeline
(grouping by op, op_path and selected_device, sorting, hotspots, totals), including the seed README
section 26 example, unchanged."""
import numpy as np
import pytest

import lightning_core as lc
from conftest import FALLBACK_DEVICE


@pytest.fixture(autouse=True)
def _clean_trace():
    lc.runtime_trace_enable(False)
    lc.runtime_trace_clear()
    yield
    lc.runtime_trace_enable(False)
    lc.runtime_trace_clear()
    lc.runtime_trace_set_capacity(65536)


def test_events_record_each_op_in_order(rng):
    a = rng.standard_normal((33, 17)).astype(np.float32)
    b = rng.standard_normal((17, 9)).astype(np.float32)
    lc.matmul2d(a, b, "cpu")  # off: not recorded
    assert lc.runtime_trace_events() == []
    lc.runtime_trace_enable(True)
    lc.matmul2d(a, b, "cpu")
    lc.relu(a, "metal")
    with pytest.raises(ValueError):
        lc.matmul2d(a, a, "cpu")  # refused: no event
    ev = lc.runtime_trace_events()
    assert [e["op"] for e in ev] == ["matmul", "relu"]
    assert [e["seq"] for e in ev] == [0, 1]
    m, r = ev
    assert m["requested_device"] == "cpu" and m["selected_device"] == "cpu" and m["reason"] == "direct"
    assert not m["fallback"] and m["sync"] and m["bytes_moved"] == 0 and m["path"]
    assert r["requested_device"] == "metal" and r["selected_device"] == FALLBACK_DEVICE and r["fallback"]
    assert r["reason"] == "fallback_preferred_unavailable"
    assert m["duration_ns"] > 0 and r["start_ns"] >= m["start_ns"] + m["duration_ns"]
    st = lc.runtime_trace_stats()
    assert st["enabled"] and st["events"] == 2 and st["dropped"] == 0
    lc.runtime_trace_clear()
    assert lc.runtime_trace_events() == [] and lc.runtime_trace_stats()["events"] == 0


def test_ring_keeps_the_newest_events(rng):
    lc.runtime_trace_set_capacity(5)
    lc.runtime_trace_enable(True)
    x = rng.standard_normal(64).astype(np.float32)
    for _ in range(12):
        lc.relu(x, "cpu")
    ev = lc.runtime_trace_events()
    assert [e["seq"] for e in ev] == list(range(7, 12))
    assert lc.runtime_trace_stats()["dropped"] == 7
    with pytest.raises(ValueError, match="n"):
        lc.runtime_trace_set_capacity(0)


def test_timeline_groups_sorts_and_finds_hotspots(rng):
    lc.runtime_trace_enable(True)
    # 512^3 on the CPU (~1 ms even on 16 cores) stays well above a tiny relu that falls back to cuda
    a = rng.standard_normal((512, 512)).astype(np.float32)
    x = rng.standard_normal(16).astype(np.float32)
    for _ in range(5):
        lc.matmul2d(a, a, "cpu")
    for _ in range(3):
        lc.relu(x, "metal")
    lc.runtime_trace_enable(False)
    rep = lc.runtime_trace_timeline(group_by="op", group_sort_by="count", group_descending=True, hotspot_top_k=3)
    assert [(g["key"], g["count"]) for g in rep["groups"]] == [("matmul", 5), ("relu", 3)]
    assert rep["totals"]["events"] == 8 and rep["totals"]["fallback_count"] == 3
    assert len(rep["hotspots"]) == 3 and all(h["op"] == "matmul" for h in rep["hotspots"])
    for g in rep["groups"]:
        assert g["mean_ns"] == pytest.approx(g["total_ns"] / g["count"])
        assert g["total_delta_next_ns"] >= g["total_ns"] * 0.5
    path = lc.runtime_trace_timeline(group_by="op_path", group_sort_by="total_ns", group_descending=False)
    keys = [g["key"] for g in path["groups"]]
    assert set(keys) == {"matmul|cpu|direct", f"relu|{FALLBACK_DEVICE}|fallback"}
    assert path["groups"][0]["total_ns"] <= path["groups"][1]["total_ns"]
    dev = lc.runtime_trace_timeline(group_by="selected_device")
    assert sum(g["count"] for g in dev["groups"]) == 8
    with pytest.raises(ValueError, match="group_by"):
        lc.runtime_trace_timeline(group_by="device")
    with pytest.raises(ValueError, match="group_sort_by"):
        lc.runtime_trace_timeline(group_sort_by="speed")
    with pytest.raises(ValueError, match="hotspot_top_k"):
        lc.runtime_trace_timeline(hotspot_top_k=-1)


def test_seed_section_26_timeline_example(capsys):
    # --- verbatim from the seed README, section 26 ---
    import numpy as np
    import lightning_core as lc

    lc.runtime_trace_clear()
    lc.runtime_trace_enable(True)

    a = np.random.rand(256, 256).astype(np.float32)
    b = np.random.rand(256, 256).astype(np.float32)
    for _ in range(40):
        lc.matmul2d(a, b, "metal")

    lc.runtime_trace_enable(False)
    report = lc.runtime_trace_timeline(
        group_by="op_path",                  # op|selected_device|direct_or_fallback
        group_sort_by="total_delta_next_ns", # bottleneck-first
        group_descending=True,
        hotspot_top_k=8,
    )

    print(report["groups"][:3])    # aggregated bottleneck paths
    print(report["hotspots"][:5])  # top single-event hotspots
    # --- end of the verbatim block ---
    assert report["totals"]["events"] == 40
    assert [g["key"] for g in report["groups"]] == [f"matmul|{FALLBACK_DEVICE}|fallback"]
    assert len(report["hotspots"]) == 8
    assert "matmul" in capsys.readouterr().out


def test_backend_capability_matrix():
    keys = {"device", "built", "available", "compute", "memory", "sync", "profiling", "trace", "sync_policy",
            "memory_model"}
    cpu = lc.runtime_backend_capabilities("cpu")
    assert set(cpu) == keys and cpu["built"] and cpu["available"] and cpu["compute"] and cpu["trace"]
    assert cpu["memory_model"] == "host" and not cpu["sync"]
    metal = lc.runtime_backend_capabilities("metal")
    assert not metal["built"] and not metal["available"] and metal["memory_model"] == "unavailable"
    cuda = lc.runtime_backend_capabilities("cuda")
    assert cuda["available"] == lc.cuda_available() and cuda["compute"] == lc.cuda_available()
    if cuda["built"]:
        assert cuda["memory_model"] == "native-device"
    active = lc.runtime_active_backend_capabilities()
    assert active["device"] == lc.backend_name() and active["available"]
    with pytest.raises(ValueError, match="device"):
        lc.runtime_backend_capabilities("auto")
    with pytest.raises(ValueError, match="device"):
        lc.runtime_backend_capabilities("gpu")
