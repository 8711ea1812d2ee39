/* counters.h — internal: bumps the process-wide runtime counters (policy.c; read with
 * lc_get_runtime_counters). Called by the ops layer and the backends. Tests: tests/c/test_sessions.c. */
#ifndef LC_COUNTERS_H
#define LC_COUNTERS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lc_counter {
    LC_COUNTER_SYNCS = 0,
    LC_COUNTER_DOWNLOADS,
    LC_COUNTER_D2H_BYTES,
    LC_COUNTER_UPLOADS,
    LC_COUNTER_H2D_BYTES,
    LC_COUNTER_GRAPH_CAPTURES,
    LC_COUNTER_GRAPH_LAUNCHES,
    LC_COUNTER_DISPATCHES,
    LC_COUNTER_COUNT
} lc_counter;

void lc_counter_add(lc_counter which, uint64_t amount);

#ifdef __cplusplus
}
#endif

#endif
