/* threadpool.h — the persistent CPU worker pool used by kernels (never a thread per call).
 *
 * lc_parallel_for(n, grain, fn, ctx) runs fn(ctx, begin, end) over chunks covering [0, n). It runs on
 * the calling thread alone when n <= grain, when the pool has one thread, or when another caller is
 * using the pool (so concurrent callers stay correct and never deadlock). Sized by LC_NUM_THREADS
 * (default: online CPUs), resizable with lc_set_num_threads. The caller returns after every chunk ran.
 * Tests: tests/c/test_core.c (coverage of all indices, concurrent callers).
 */
#ifndef LC_THREADPOOL_H
#define LC_THREADPOOL_H

#include <stdint.h>

typedef void (*lc_range_fn)(void *ctx, int64_t begin, int64_t end);

/* `grain`: the smallest chunk worth handing to another thread (>= 1). */
void lc_parallel_for(int64_t n, int64_t grain, lc_range_fn fn, void *ctx);

/* Number of threads a parallel_for may use now (>= 1). */
int lc_pool_threads(void);

#endif
