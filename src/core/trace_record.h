/* trace_record.h — internal: the ops layer's side of the runtime trace (trace.c): a clock and the
 * record call, used by src/ops/dispatch.c. Tests: tests/c/test_core.c. */
#ifndef LC_TRACE_RECORD_H
#define LC_TRACE_RECORD_H

#include <stdint.h>

#include "lightning_core/trace.h"

uint64_t lc_trace_now_ns(void);
void lc_trace_record(const lc_trace_event *event);
/* Records an event that began at start_ns (lc_trace_now_ns) and ends now; no-op while the trace is off.
 * op and path must be static strings. */
void lc_trace_span(const char *op, const char *path, lc_device requested, lc_device selected, lc_reason reason,
                   int synchronized, uint64_t bytes_moved, uint64_t start_ns);

#endif
