/* cuda_graph.h — CUDA graph capture and replay on the backend stream, and the event timer (internal;
 * the backend table's capture_* / graph_* / timer_* entries). One capture at a time, owned by the
 * thread that began it; while it runs, host copies and synchronisation fail with an error (they would
 * break the capture), and device blocks freed during capture are kept for the graph's lifetime.
 * Tests: tests/c/test_sessions.c, tests/python/test_sessions.py, tests/python/test_capture.py (GPU). */
#ifndef LC_CUDA_GRAPH_H
#define LC_CUDA_GRAPH_H

#include <stdint.h>

#include "lightning_core/status.h"

lc_status lc_cuda_capture_begin(void);
lc_status lc_cuda_capture_end(int keep, void **graph, int64_t *nodes);
lc_status lc_cuda_graph_launch(void *graph, int64_t loops);
void lc_cuda_graph_free(void *graph);
/* LC_CAPTURE_NONE / LC_CAPTURE_THIS_THREAD / LC_CAPTURE_OTHER_THREAD (core/backend.h). */
int lc_cuda_capture_state(void);
/* Called by the allocator on free: during a capture the block goes to the capture (returns 1). */
int lc_cuda_capture_keep_block(void *ptr);
/* LC_OK, or the error for `what` (a host copy or a sync) attempted while a capture is running. */
lc_status lc_cuda_capture_guard(const char *what);

lc_status lc_cuda_timer_start(void **handle);
lc_status lc_cuda_timer_stop(void *handle, double *elapsed_ms);

#endif
