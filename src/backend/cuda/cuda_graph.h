/* cuda_graph.h — CUDA graph capture and replay, and the event timer (internal; the backend table's
 * capture_* / graph_* / timer_* entries). One capture at a time, owned by the thread that began it and
 * recorded on the context's capture stream (lc_cuda_stream); a second capturer waits for it to end, and
 * other threads' work runs on the backend stream meanwhile. In the capturing thread, host copies and
 * synchronisation fail with an error (they would break the capture), and device blocks it frees during
 * the capture are kept for the graph's lifetime. Replays run on the backend stream.
 * Tests: tests/c/test_sessions.c, tests/python/test_sessions.py, tests/python/test_capture.py (GPU). */
#ifndef LC_CUDA_GRAPH_H
#define LC_CUDA_GRAPH_H

#include <stdint.h>

#include "lightning_core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* The autotuner's timing loop (gemm_cublaslt.c's lc_gemm_tune; any later tuner uses it too): one
 * warm-up enqueue(user), then `reps` enqueues between the device timer's events on the backend stream and
 * one host wait (counted in LC_COUNTER_SYNCS by lc_cuda_timer_stop). enqueue returns 0 when the candidate
 * was enqueued, else its own error code: the candidate stops there, *enqueue_error holds the code and *ms
 * is INFINITY (the status is still LC_OK: a candidate that cannot run is skipped, not an error). *ms: the
 * device time per enqueue. Returns the timer's error (events, the wait) otherwise. */
typedef int (*lc_cuda_enqueue_fn)(void *user);
lc_status lc_cuda_time_enqueues(int reps, lc_cuda_enqueue_fn enqueue, void *user, double *ms, int *enqueue_error);

#ifdef __cplusplus
}
#endif

#endif
