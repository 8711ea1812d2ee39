/* tune.h — per-shape autotuning and the CPU/GPU crossover thresholds.
 *
 * Kernels with real alternatives (CPU matmul: own small / own blocked / BLAS; CUDA matmul: the top
 * cuBLASLt heuristic algorithms; attention runs on sdpa's kernels, planned from the shape, untuned) time each
 * candidate on the real operands at the first call of a shape with enough work, keep the winner in a
 * process-wide table (key -> mode, measured ms), and use it for later calls of that shape.
 *
 * Persistence: with LC_TUNE_CACHE_FILE (seed alias CJ_MATMUL_TUNE_CACHE_FILE) set to a path, the
 * table is loaded from that file at first use and every new entry is merged into it (flock on the file
 * itself, at most 10 s; re-read, write a temp file in the same directory, fsync, rename). Without it
 * the table lives in memory only. Only a file of ours (first line "lightning_core-tune v1"), an empty
 * file or no file is written; a damaged one of ours is replaced. Anything else (other content or
 * version, over 64 MiB, symlink, directory, FIFO, device, unreadable) is never modified, locked or
 * waited on. Each problem prints one "lightning_core: warning: ..." line on stderr per path and
 * process, never a failure. File format: docs/design.md ("Tuning").
 *
 * Autotuning is on by default; LC_AUTOTUNE=0 or lc_set_autotune(0) turns it off: no measurements, and
 * stored entries are not consulted (the built-in heuristics choose).
 *
 * Crossover ("auto" device, host operands): conv2d below lc_conv2d_cpu_crossover_macs() multiply-adds
 * runs on the CPU, at or above on the GPU (LC_CONV2D_CPU_CROSSOVER_MACS, alias
 * CJ_CONV2D_CPU_CROSSOVER_MACS); matmul likewise with lc_matmul_cpu_crossover_flops()
 * (LC_MATMUL_CPU_CROSSOVER_FLOPS). A negative value hands the choice back to the cost model.
 *
 * Thread-safe. Tests: tests/c/test_tune.c, tests/python/test_tuning.py. */
#ifndef LIGHTNING_CORE_TUNE_H
#define LIGHTNING_CORE_TUNE_H

#include <stddef.h>

#include "lightning_core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LC_TUNE_KEY_MAX 192 /* bytes of a key, terminating NUL included */
#define LC_TUNE_MODE_MAX 64 /* bytes of a mode, terminating NUL included */

typedef struct lc_tune_entry {
    char key[LC_TUNE_KEY_MAX];   /* e.g. "matmul|cpu|f32|m=512,k=512,n=512|thr=16|isa=avx512|blas=1" */
    char mode[LC_TUNE_MODE_MAX]; /* the winner, e.g. "blas", "algo=2", "chunk=8" */
    double ms;                   /* its measured time per call, milliseconds */
} lc_tune_entry;

/* Forgets every entry and the cache file path; the next use reads LC_TUNE_CACHE_FILE (and the
 * crossover variables) again and loads that file. The file itself is left alone. The seed's
 * matmul_reset_tuning(). */
void lc_tune_reset(void);

/* Autotuning on (default) or off. Starts from LC_AUTOTUNE ("0", "off" or "false": off). */
void lc_set_autotune(int on);
int lc_get_autotune(void);

/* The cache file in use, or NULL when the table is in memory only. The string stays valid for the
 * life of the process. Loads the table when it has not been loaded yet. */
const char *lc_tune_cache_path(void);

/* Entries held now, and a copy of up to `max` of them in key order; returns how many were copied. */
size_t lc_tune_entry_count(void);
size_t lc_tune_entries(lc_tune_entry *out, size_t max);

/* Crossover thresholds in force (environment, else the compiled-in defaults measured by
 * benchmarks/python/crossover_sweep.py). Negative: no threshold, the "auto" cost model decides. */
double lc_conv2d_cpu_crossover_macs(void);
double lc_matmul_cpu_crossover_flops(void);

#ifdef __cplusplus
}
#endif
#endif
