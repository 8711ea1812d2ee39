/* trace_record.h — internal: the ops layer's side of the runtime trace (trace.c): a clock and the
 * record call, used by src/ops/dispatch.c. Tests: tests/c/test_core.c. */
#ifndef LC_TRACE_RECORD_H
#define LC_TRACE_RECORD_H

#include <stdint.h>

#include "lightning_core/trace.h"

uint64_t lc_trace_now_ns(void);
void lc_trace_record(const lc_trace_event *event);

#endif
