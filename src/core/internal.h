/* internal.h — helpers shared by the library's own files (not installed): error setting, the
 * always-on invariant check, checked size arithmetic.
 * Tests: tests/c/test_core.c. */
#ifndef LC_INTERNAL_H
#define LC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lightning_core/status.h"

#if defined(__GNUC__)
#define LC_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define LC_PRINTF(fmt_idx, arg_idx)
#endif

/* Sets the calling thread's last-error message and returns `status` (so: `return lc_error(...)`). */
lc_status lc_error(lc_status status, const char *fmt, ...) LC_PRINTF(2, 3);
/* Prefixes the calling thread's current message with the formatted context ("<context>: <message>") and
 * returns `status`: how a caller adds its name to a callee's error. Never pass lc_last_error() as an
 * argument to either setter; wrap instead. */
lc_status lc_error_wrap(lc_status status, const char *fmt, ...) LC_PRINTF(2, 3);

/* Internal invariant that stays on in release builds; reports and returns LC_ERR_INTERNAL from the
 * enclosing function instead of aborting. */
#define LC_CHECK_INVARIANT(cond)                                                                    \
    do {                                                                                            \
        if (!(cond))                                                                                \
            return lc_error(LC_ERR_INTERNAL, "internal invariant failed: %s (%s:%d)", #cond,       \
                            __FILE__, __LINE__);                                                    \
    } while (0)

/* a*b into *out; returns 0 on overflow of int64 (operands must be >= 0). */
static inline int lc_mul_ok(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0) return 0;
    if (a != 0 && b > INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* Allocation aligned to 64 bytes (for SIMD kernels); NULL on failure or bytes == 0. */
void *lc_aligned_alloc(size_t bytes);
void lc_aligned_free(void *p);

#endif
