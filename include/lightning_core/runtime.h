/* runtime.h — runtime queries and policy: version, backends, device strings and the fallback policy,
 * thread count, CPU features, and the per-thread record of the last op dispatch.
 *
 * Device policy (docs/design.md): "cpu", "cuda", "metal", "auto". A requested device that is not
 * available falls back to the best available one and the dispatch records the reason code
 * "fallback_preferred_unavailable"; in strict mode (LC_STRICT_DEVICE=1 or lc_set_strict_device(1)) the
 * call fails with LC_ERR_DEVICE_UNAVAILABLE instead.
 * Tests: tests/c/test_core.c, tests/python/test_runtime.py.
 */
#ifndef LIGHTNING_CORE_RUNTIME_H
#define LIGHTNING_CORE_RUNTIME_H

#include <stdint.h>

#include "lightning_core/status.h"
#include "lightning_core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

const char *lc_version(void);

/* Name of the best available backend: "cuda" when a CUDA device is usable, else "cpu". */
const char *lc_backend_name(void);

int lc_device_built(lc_device device);      /* compiled into this build */
int lc_device_available(lc_device device);  /* built and usable on this machine now */

/* Parses "cpu" | "cuda" | "metal" | "auto" (exact, lower case). */
lc_status lc_device_parse(const char *text, lc_device *out);
const char *lc_device_name(lc_device device);

/* Strict device mode: a request for an unavailable device fails instead of falling back.
 * Starts from the environment (LC_STRICT_DEVICE=1). */
void lc_set_strict_device(int strict);
int lc_strict_device(void);

/* CPU worker threads used by kernels (the persistent pool). Starts from LC_NUM_THREADS, else the
 * number of online CPUs. */
int lc_num_threads(void);
lc_status lc_set_num_threads(int n);

/* Space-separated CPU features the kernels use, as detected at run time ("avx2 fma avx512f"). */
const char *lc_cpu_features(void);

/* The BLAS library the CPU matmul large-shape path uses now: "openblas", or "none" (not built in, or
 * disabled with LC_MATMUL_NO_BLAS=1). */
const char *lc_blas_name(void);

/* Float32 matmul precision on the GPU: LC_PRECISION_HIGHEST (default) computes in exact float32;
 * LC_PRECISION_TF32 lets cuBLASLt use TF32 tensor cores (inputs rounded to 10-bit mantissas, relative
 * error ~1e-3). The CPU always computes exact float32. */
typedef enum lc_matmul_precision {
    LC_PRECISION_HIGHEST = 0,
    LC_PRECISION_TF32,
    LC_PRECISION_COUNT
} lc_matmul_precision;

lc_status lc_set_matmul_precision(lc_matmul_precision precision);
lc_matmul_precision lc_get_matmul_precision(void);

/* Waits until all work enqueued on `device` (CPU: nothing; CUDA: the backend's stream) has finished.
 * Work on device-resident tensors is asynchronous; one-shot calls with host outputs return finished.
 * A fault raised by an earlier kernel is reported here (LC_ERR_BACKEND, naming that op). */
lc_status lc_device_synchronize(lc_device device);

/* The seed's backend capability matrix, answered truthfully for this build and machine. */
typedef struct lc_backend_caps {
    int built;             /* compiled into this build */
    int available;         /* usable on this machine now */
    int compute;           /* runs ops */
    int memory;            /* owns device memory (allocator, host<->device copies) */
    int sync;              /* work is asynchronous and lc_device_synchronize waits for it */
    int profiling;         /* device-side timing exposed (not yet: the trace times on the host) */
    int trace;             /* its ops are recorded by the runtime trace */
    int sync_policy;       /* per-call/default sync policy (auto/always/never): comes with the sessions work */
    const char *memory_model; /* "host", "native-device" or "unavailable" */
} lc_backend_caps;

lc_status lc_backend_capabilities(lc_device device, lc_backend_caps *out);

typedef enum lc_reason {
    LC_REASON_DIRECT = 0,                      /* ran where asked */
    LC_REASON_AUTO_SELECTED,                   /* "auto" chose the device */
    LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE,  /* asked device not available; ran on the fallback */
    LC_REASON_FALLBACK_PREFERRED_UNSUPPORTED,  /* asked device lacks the op/dtype; ran on the fallback */
    LC_REASON_COUNT
} lc_reason;

/* The seed's machine-readable reason code ("direct", "auto_selected", "fallback_preferred_unavailable",
 * "fallback_preferred_unsupported"). */
const char *lc_reason_code(lc_reason reason);

typedef struct lc_dispatch_info {
    const char *op;        /* "matmul", "attention_forward", ...; NULL before the first op */
    lc_device requested;
    lc_device selected;
    lc_reason reason;
    const char *path;      /* kernel path taken, e.g. "avx512_small", "blas", "blocked", "flash_tiled" */
} lc_dispatch_info;

/* The last op dispatched successfully on the calling thread. */
void lc_last_dispatch(lc_dispatch_info *out);

#ifdef __cplusplus
}
#endif
#endif
