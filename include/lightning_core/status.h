/* status.h — status codes and the thread-local last-error message of the Lightning Core C API.
 *
 * Every fallible call returns an lc_status. On failure, lc_last_error() returns a message for the
 * calling thread that names the argument, what was expected and what came, e.g.
 *   "matmul: b: expected shape [k=16, n] with k matching a, got [17, 8]".
 * The library never calls exit() or abort() on user input.
 * Tests: tests/c/test_core.c.
 */
#ifndef LIGHTNING_CORE_STATUS_H
#define LIGHTNING_CORE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lc_status {
    LC_OK = 0,
    LC_ERR_INVALID_ARGUMENT,   /* a value is out of range or inconsistent (Python: ValueError) */
    LC_ERR_SHAPE,              /* ranks/shapes do not match the op contract (ValueError) */
    LC_ERR_DTYPE,              /* a dtype the op does not take (TypeError) */
    LC_ERR_OUT_OF_MEMORY,      /* an allocation failed (MemoryError) */
    LC_ERR_DEVICE_UNAVAILABLE, /* strict device mode and the device is not available (RuntimeError) */
    LC_ERR_UNSUPPORTED,        /* no backend implements this op/dtype (NotImplementedError) */
    LC_ERR_BACKEND,            /* a backend/library call failed (RuntimeError) */
    LC_ERR_INTERNAL,           /* a broken internal invariant (RuntimeError) */
    LC_STATUS_COUNT
} lc_status;

/* Short, stable name of a status ("ok", "invalid_argument", ...). Never NULL. */
const char *lc_status_str(lc_status status);

/* The message of the last failure on this thread ("" if none). Valid until the next failing call on
 * the same thread. */
const char *lc_last_error(void);

/* Clears the calling thread's last-error message. */
void lc_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
