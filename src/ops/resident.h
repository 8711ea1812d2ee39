/* resident.h — internal: what resident sessions (session.c) and planned graphs (src/graph/execute.c)
 * share: copying a caller's tensor into a resident buffer and back (checks with "<owner>: <name>: ..."
 * messages), the resolution of a requested device to a backend, and the replay runner (a program's
 * first run is eager, the second captures it as a CUDA graph, later runs replay it).
 * Tests: tests/c/test_sessions.c, tests/c/test_plan.c, tests/python/test_sessions.py, test_graph_plan.py. */
#ifndef LC_OPS_RESIDENT_H
#define LC_OPS_RESIDENT_H

#include "lightning_core/session.h"
#include "ops/dispatch.h"

/* requested cpu/cuda/metal/auto -> the backend by the ops' fallback policy (strict mode: an error).
 * *fell_back (may be NULL) is set when the result is not what was asked (auto never falls back). */
lc_status lc_resident_device(const char *owner, lc_device requested, const lc_backend **out, int *fell_back);

/* dst (a resident buffer on be's device) <- src: dst's dtype and element count, host or device, any
 * layout. Returns once src has been read. */
/* The checks of lc_resident_upload without the copy: callers that upload several inputs check them all
 * first, so that a refused call leaves every resident input as it was. */
lc_status lc_resident_check_upload(const char *owner, const char *name, const lc_tensor_t *dst, const lc_tensor_t *src);
lc_status lc_resident_upload(const lc_backend *be, const char *owner, const char *name, lc_tensor_t *dst,
                             const lc_tensor_t *src);
/* dst (caller's: src's dtype, writable, contiguous, src's element count) <- src (resident). A host dst
 * waits for the data (*waited = 1); a device dst is an enqueued copy (waits under "always"). */
lc_status lc_resident_download(const lc_backend *be, const char *owner, const lc_tensor_t *src, lc_tensor_t *dst,
                               int *waited);

typedef lc_status (*lc_replay_fn)(void *ctx);

typedef struct lc_replay {
    lc_device_graph_t *graph;
    int eager_runs;
    int capture_failed;
} lc_replay;

/* Runs fn `loops` (>= 1) times on be: eagerly where be has no capture, for the first run, or when capture
 * failed; else captures fn once and enqueues graph launches. *replayed: launches enqueued. Applies no
 * sync policy (the caller waits). */
lc_status lc_replay_run(lc_replay *r, const lc_backend *be, lc_replay_fn fn, void *ctx, int64_t loops,
                        int64_t *replayed);
void lc_replay_free(lc_replay *r);

#endif
