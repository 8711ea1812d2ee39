/* tune_cache.h — the autotuner's table as the kernels see it (internal; public side:
 * include/lightning_core/tune.h). Keys and modes are printable ASCII without tabs (at most
 * LC_TUNE_KEY_MAX-1 / LC_TUNE_MODE_MAX-1 bytes); keys are built by the callers as
 * "<op>|<device>|<dtype>|<shape>|<what else decides the winner>".
 * Usable from C and CUDA C++ (.cu) files.
 * Tests: tests/c/test_tune.c. */
#ifndef LC_TUNE_CACHE_H
#define LC_TUNE_CACHE_H

#include <stddef.h>

#include "lightning_core/status.h"
#include "lightning_core/tune.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 and the stored mode (and its ms, when ms is not NULL) when `key` is in the table, else 0. Loads
 * the cache file at first use. Does not look at the autotune flag: callers check lc_get_autotune(). */
int lc_tune_lookup(const char *key, char *mode, size_t mode_size, double *ms);

/* Stores key -> (mode, ms) in the table (replacing an older entry) and, when a cache file is in use,
 * merges the table into it. Failing to write the file is a warning, not an error: the entry stays in
 * memory and LC_OK is returned. LC_ERR_INVALID_ARGUMENT for a key or mode that is empty, too long or
 * holds a tab, newline or other control character; LC_ERR_OUT_OF_MEMORY. */
lc_status lc_tune_store(const char *key, const char *mode, double ms);

/* Bumped by lc_tune_reset() and by a change of the autotune flag: in-process caches of tuned choices
 * (e.g. the cuBLASLt algorithm cache) drop entries made under another generation. */
unsigned lc_tune_generation(void);

/* Monotonic clock in milliseconds, for timing candidates on the host. */
double lc_tune_now_ms(void);

/* Warnings printed so far by the tune cache (tests). */
unsigned lc_tune_warning_count(void);

/* Longest wait for another writer's lock on the cache file (tests; 0: the default, 10 s). */
void lc_tune_set_lock_timeout_ms(unsigned ms);

#ifdef __cplusplus
}
#endif
#endif
