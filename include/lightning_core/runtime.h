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
/* cudnnGetVersion() of the cuDNN library the CUDA backend loaded for its fused-attention prefill (e.g. 91900;
 * loads it on the first call: $LC_CUDNN_LIB, else libcudnn.so.9), or 0: a build without CUDA or without
 * cuDNN's header, or no loadable cuDNN 9. */
int lc_cudnn_version(void);

/* The CUDA device (index among the visible GPUs) the library uses: chosen before the CUDA backend starts
 * (its first use) by lc_set_cuda_device, else $LC_CUDA_DEVICE, else 0; one per process. Setting it after
 * start-up succeeds only for the device already in use (else LC_ERR_INVALID_ARGUMENT). No GPU:
 * LC_ERR_DEVICE_UNAVAILABLE. lc_cuda_device(): the device in use (starts the backend), -1 without one.
 * lc_cuda_device_count(): the visible GPUs (0 without CUDA, a driver, or with LC_CUDA_DISABLE=1); starts nothing. */
lc_status lc_set_cuda_device(int device);
int lc_cuda_device(void);
int lc_cuda_device_count(void);

/* A developer's timeline of the CUDA kernels that wait through programmatic dependent launch, in a build with
 * cmake -DLC_TIMELINE=ON only (docs/design.md, "The timeline build"; scripts/device/timeline.py): up to cap
 * records of 4 values into dst, their number into *count: [the kernel's file (timeline.c's list), blocks << 32 |
 * last block << 16 | SM, %globaltimer ns before griddepcontrol.wait, ns after it], from thread 0 of the first
 * and the last block of each launch; reset empties the buffers. LC_ERR_UNSUPPORTED in other builds. */
lc_status lc_cuda_timeline(unsigned long long *dst, size_t cap, size_t *count, int reset);

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

/* The calling thread's promise that no kernel still in flight writes the weight operand of its linear-family
 * calls (a model's weights after loading): lets the CUDA decode GEMV start reading w before the kernel ahead of
 * it has finished (programmatic dependent launch), instead of after. Off by default; thread-local; a captured
 * graph keeps the choice made while capturing. With it off, results are the same, the GEMV just waits first. */
void lc_set_static_weights(int on);
int lc_get_static_weights(void);

/* Waits until all work enqueued on `device` (CPU: nothing; CUDA: the backend's stream) has finished.
 * Work on device-resident tensors is asynchronous; one-shot calls with host outputs return finished.
 * A fault raised by an earlier kernel is reported here (LC_ERR_BACKEND, naming that op). */
lc_status lc_device_synchronize(lc_device device);

/* Sync policy: when the library waits for a device (seed: auto / always / never).
 *  - LC_SYNC_AUTO (default): wait only where the host needs the data (a download to a host output) and
 *    at the end of session calls whose name promises it (run_batch_sync_*); work on device-resident
 *    outputs stays in flight.
 *  - LC_SYNC_ALWAYS: additionally wait after every op and session step on a device (errors surface at
 *    the call that caused them; trace durations are device-complete).
 *  - LC_SYNC_NEVER: wait only where a download to the host needs the data; session calls without a
 *    download return once their work is enqueued (call lc_device_synchronize before reading results).
 * The process default comes from LC_SYNC_POLICY (auto|always|never) at first use, or
 * lc_set_sync_policy. A per-thread override (lc_set_thread_sync_policy) wins over the default: that is
 * how a single call uses its own policy. The CPU backend is synchronous under every policy. */
typedef enum lc_sync_policy {
    LC_SYNC_AUTO = 0,
    LC_SYNC_ALWAYS,
    LC_SYNC_NEVER,
    LC_SYNC_POLICY_COUNT
} lc_sync_policy;

lc_status lc_set_sync_policy(lc_sync_policy policy);
lc_sync_policy lc_get_sync_policy(void);
/* policy < 0 removes the calling thread's override. */
lc_status lc_set_thread_sync_policy(int policy);
/* The calling thread's override, or -1 when it has none. */
int lc_get_thread_sync_policy(void);
/* The policy in force on the calling thread (its override, else the process default). */
lc_sync_policy lc_effective_sync_policy(void);
lc_status lc_sync_policy_parse(const char *text, lc_sync_policy *out);
const char *lc_sync_policy_name(lc_sync_policy policy); /* "auto", "always", "never" or "invalid" */

/* Process-wide counters of host<->device events, for tests and benchmarks ("a batch of N runs costs
 * one synchronization"). syncs counts every host wait on a device: stream synchronisations and
 * downloads (one per download, however many chunks). */
typedef struct lc_runtime_counters {
    uint64_t syncs;
    uint64_t downloads, d2h_bytes;
    uint64_t uploads, h2d_bytes;
    uint64_t graph_captures;
    uint64_t graph_launches;
    uint64_t dispatches;   /* ops dispatched through the ops layer (eager calls, any device) */
} lc_runtime_counters;

void lc_get_runtime_counters(lc_runtime_counters *out);
void lc_reset_runtime_counters(void);

/* Device time of the work enqueued between start and stop, measured with events on the backend's
 * stream (CUDA); wall time on the CPU. stop waits for the work and frees the timer. */
typedef struct lc_device_timer lc_device_timer_t;
lc_status lc_device_timer_start(lc_device device, lc_device_timer_t **out);
lc_status lc_device_timer_stop(lc_device_timer_t *timer, double *elapsed_ms);

/* The seed's backend capability matrix, answered truthfully for this build and machine. */
typedef struct lc_backend_caps {
    int built;             /* compiled into this build */
    int available;         /* usable on this machine now */
    int compute;           /* runs ops */
    int memory;            /* owns device memory (allocator, host<->device copies) */
    int sync;              /* work is asynchronous and lc_device_synchronize waits for it */
    int profiling;         /* device-side timing exposed (lc_device_timer_*: CUDA events) */
    int trace;             /* its ops are recorded by the runtime trace */
    int sync_policy;       /* honours the per-call/default sync policy (auto/always/never) */
    const char *memory_model; /* "host", "native-device" or "unavailable" */
} lc_backend_caps;

lc_status lc_backend_capabilities(lc_device device, lc_backend_caps *out);

typedef enum lc_reason {
    LC_REASON_DIRECT = 0,                      /* ran where asked */
    LC_REASON_AUTO_SELECTED,                   /* "auto" chose the device */
    LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE,  /* asked device not available; ran on the fallback */
    LC_REASON_FALLBACK_PREFERRED_UNSUPPORTED,  /* asked device lacks the op/dtype; ran on the fallback */
    /* decisions above the ops layer (graph planner, lc.api), recorded with lc_trace_note: */
    LC_REASON_FALLBACK_PLANNER_OPTIMIZED,      /* the planner chose another backend */
    LC_REASON_GRAPH_ENGINE_NOT_LIGHTNING,      /* graph requested, the engine is not lightning: eager */
    LC_REASON_GRAPH_SHAPE_UNSUPPORTED,         /* graph requested, shape outside the graph path: eager */
    LC_REASON_TORCH_UNAVAILABLE_FALLBACK,      /* torch engine requested, torch missing: lightning */
    LC_REASON_COUNT
} lc_reason;

/* The seed's machine-readable reason code ("direct", "auto_selected", "fallback_preferred_unavailable",
 * "fallback_preferred_unsupported", "fallback_planner_optimized", "graph_engine_not_lightning",
 * "graph_shape_unsupported", "torch_unavailable_fallback"). */
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
