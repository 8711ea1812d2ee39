"""runtime_trace_timeline: the grouped report over the runtime trace (seed README section 26).

Events come from the C ring buffer (lightning_core._C.runtime_trace_events). Each event gets
`delta_next_ns`, the time from its start to the next event's start (for the last one, its duration):
what an op costs the host loop including the gap to the next dispatch. Groups are keyed by
`op`, `op_path` (`op|selected_device|direct_or_fallback`) or `selected_device`.
Tests: tests/python/test_trace.py.
"""
from __future__ import annotations

from . import _C

GROUP_KEYS = ("op", "op_path", "selected_device")
GROUP_FIELDS = ("count", "total_ns", "mean_ns", "max_ns", "total_delta_next_ns", "bytes_moved", "sync_count",
                "fallback_count")


def _key(event: dict, group_by: str) -> str:
    if group_by == "op":
        return event["op"]
    if group_by == "selected_device":
        return event["selected_device"]
    return f'{event["op"]}|{event["selected_device"]}|{"fallback" if event["fallback"] else "direct"}'


def runtime_trace_timeline(group_by: str = "op", group_sort_by: str = "total_ns", group_descending: bool = True,
                           hotspot_top_k: int = 8, events: list | None = None) -> dict:
    """Groups the trace: {"groups": [...], "hotspots": [...], "totals": {...}} (see module docstring)."""
    if group_by not in GROUP_KEYS:
        raise ValueError(f"runtime_trace_timeline: group_by: expected one of {GROUP_KEYS}, got {group_by!r}")
    if group_sort_by not in GROUP_FIELDS:
        raise ValueError(f"runtime_trace_timeline: group_sort_by: expected one of {GROUP_FIELDS}, got {group_sort_by!r}")
    if isinstance(hotspot_top_k, bool) or not isinstance(hotspot_top_k, int) or hotspot_top_k < 0:
        raise ValueError(f"runtime_trace_timeline: hotspot_top_k: expected an int >= 0, got {hotspot_top_k!r}")
    evs = [dict(e) for e in (_C.runtime_trace_events() if events is None else events)]
    for i, e in enumerate(evs):
        nxt = evs[i + 1]["start_ns"] if i + 1 < len(evs) else None
        e["delta_next_ns"] = (nxt - e["start_ns"]) if nxt is not None and nxt >= e["start_ns"] else e["duration_ns"]
        e["key"] = _key(e, group_by)
    groups: dict[str, dict] = {}
    for e in evs:
        g = groups.setdefault(e["key"], {"key": e["key"], "count": 0, "total_ns": 0, "max_ns": 0,
                                         "total_delta_next_ns": 0, "bytes_moved": 0, "sync_count": 0,
                                         "fallback_count": 0})
        g["count"] += 1
        g["total_ns"] += e["duration_ns"]
        g["max_ns"] = max(g["max_ns"], e["duration_ns"])
        g["total_delta_next_ns"] += e["delta_next_ns"]
        g["bytes_moved"] += e["bytes_moved"]
        g["sync_count"] += int(e["sync"])
        g["fallback_count"] += int(e["fallback"])
    for g in groups.values():
        g["mean_ns"] = g["total_ns"] / g["count"]
    ordered = sorted(groups.values(), key=lambda g: g[group_sort_by], reverse=bool(group_descending))
    hotspots = sorted(evs, key=lambda e: e["delta_next_ns"], reverse=True)[:hotspot_top_k]
    totals = {"events": len(evs), "groups": len(ordered), "total_ns": sum(e["duration_ns"] for e in evs),
              "span_ns": (evs[-1]["start_ns"] + evs[-1]["duration_ns"] - evs[0]["start_ns"]) if evs else 0,
              "bytes_moved": sum(e["bytes_moved"] for e in evs), "sync_count": sum(int(e["sync"]) for e in evs),
              "fallback_count": sum(int(e["fallback"]) for e in evs)}
    return {"group_by": group_by, "group_sort_by": group_sort_by, "group_descending": bool(group_descending),
            "groups": ordered, "hotspots": hotspots, "totals": totals}
