/* dispatch_record.h — internal: the ops layer records each successful dispatch here (runtime.c);
 * lc_last_dispatch() reads it back. The runtime trace (its own issue) will hook in at the same place.
 * Tests: tests/c/test_core.c. */
#ifndef LC_DISPATCH_RECORD_H
#define LC_DISPATCH_RECORD_H

#include "lightning_core/runtime.h"

void lc_dispatch_record(const char *op, lc_device requested, lc_device selected, lc_reason reason, const char *path);

#endif
