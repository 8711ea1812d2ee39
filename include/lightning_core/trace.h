/* trace.h — the runtime trace: a ring buffer of op events (op, requested and selected device,
 * direct/fallback reason code, kernel path, whether the call synchronized, bytes moved between host
 * and device, start time and duration in ns). Off by default; recording costs one relaxed atomic load
 * per op when off. Thread-safe. Python: runtime_trace_enable / _clear / _events / _timeline.
 * Tests: tests/c/test_core.c (ring semantics), tests/python/test_trace.py. */
#ifndef LIGHTNING_CORE_TRACE_H
#define LIGHTNING_CORE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "lightning_core/runtime.h"
#include "lightning_core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lc_trace_event {
    uint64_t seq;          /* 0, 1, 2, ... in record order since the last clear */
    const char *op;        /* static string */
    const char *path;      /* kernel path, static string */
    lc_device requested;
    lc_device selected;
    lc_reason reason;
    int synchronized;      /* the call returned with its work finished (CPU ops; GPU ops that downloaded
                              into host memory); 0 for asynchronous GPU work on device tensors */
    uint64_t bytes_moved;  /* host<->device bytes staged by the call */
    uint64_t start_ns;     /* CLOCK_MONOTONIC */
    uint64_t duration_ns;  /* host-observed: from routing to the end of the call */
} lc_trace_event;

void lc_trace_enable(int enabled);
int lc_trace_enabled(void);
/* Drops every recorded event (the capacity stays). */
void lc_trace_clear(void);
/* Ring capacity in events (default 65536); changing it clears the ring. */
lc_status lc_trace_set_capacity(size_t capacity);
size_t lc_trace_capacity(void);
/* Events currently held (at most the capacity) and how many were overwritten since the last clear. */
size_t lc_trace_count(void);
uint64_t lc_trace_dropped(void);
/* Records a decision made above the ops layer (the graph planner, the high-level API): an event with
 * no duration. `op` and `path` must be static strings. No-op while the trace is off. */
void lc_trace_note(const char *op, const char *path, lc_device requested, lc_device selected, lc_reason reason);
/* Copies up to `max` held events, oldest first, into out; returns how many were copied. */
size_t lc_trace_events(lc_trace_event *out, size_t max);

#ifdef __cplusplus
}
#endif
#endif
