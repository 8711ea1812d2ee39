/* cuda_context.c — the CUDA backend's context (see cuda_context.h): lazy start-up that never fails a
 * process without a GPU, one non-blocking stream, the caching device allocator, pinned staging
 * buffers with chunked, overlapped host<->device copies, and CUDA error mapping.
 * Tests: tests/c/test_ops.c, tests/python (device "cuda", GPU machine); without a GPU every test sees
 * lc_device_available(LC_DEVICE_CUDA) == 0 and skips. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/cuda_graph.h"
#include "core/counters.h"
#include "core/internal.h"
#include "core/threadpool.h"

#define LC_LT_WORKSPACE_BYTES ((size_t)32 << 20)
#define LC_STAGE_SLOTS 4
#define LC_STAGE_BYTES ((size_t)4 << 20)
#define LC_PARALLEL_MEMCPY_MIN ((size_t)1 << 20)

static lc_cuda_ctx lc_ctx;
static int lc_ctx_ok;
static pthread_once_t lc_ctx_once = PTHREAD_ONCE_INIT;
static _Atomic(const char *) lc_last_op;
/* The device the context starts on: lc_set_cuda_device before start-up, else $LC_CUDA_DEVICE, else 0.
 * lc_dev_mu orders a setter against start-up (lc_dev_started: start-up has read the choice). */
static pthread_mutex_t lc_dev_mu = PTHREAD_MUTEX_INITIALIZER;
static int lc_dev_requested = -1;
static int lc_dev_started;
/* The CUDA runtime's current device is per host thread: each thread that reaches the context binds it. */
static _Thread_local int lc_dev_bound;

/* The device to start on: the setter's, else $LC_CUDA_DEVICE (a decimal index), else 0; -1 if invalid. */
static int lc_pick_device(int count) {
    pthread_mutex_lock(&lc_dev_mu);
    int dev = lc_dev_requested;
    lc_dev_started = 1;
    pthread_mutex_unlock(&lc_dev_mu);
    if (dev < 0) {
        const char *env = getenv("LC_CUDA_DEVICE");
        dev = 0;
        if (env && env[0]) {
            char *end = NULL;
            long v = strtol(env, &end, 10);
            dev = (end && *end == '\0' && v >= 0 && v < count) ? (int)v : -1;
        }
    }
    return dev < count ? dev : -1;
}

static void lc_ctx_init(void) {
    int count = 0;
    const char *off = getenv("LC_CUDA_DISABLE");
    if (off && strcmp(off, "1") == 0) return;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) {
        cudaGetLastError(); /* clear: no driver / no device is a normal state */
        return;
    }
    lc_ctx.device = lc_pick_device(count);
    if (lc_ctx.device < 0) return; /* LC_CUDA_DEVICE names no device here: CUDA is unusable, not a crash */
    if (cudaSetDevice(lc_ctx.device) != cudaSuccess ||
        cudaDeviceGetAttribute(&lc_ctx.num_sms, cudaDevAttrMultiProcessorCount, lc_ctx.device) != cudaSuccess ||
        cudaStreamCreateWithFlags(&lc_ctx.stream, cudaStreamNonBlocking) != cudaSuccess ||
        cudaStreamCreateWithFlags(&lc_ctx.capture_stream, cudaStreamNonBlocking) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    if (cublasLtCreate(&lc_ctx.lt) != CUBLAS_STATUS_SUCCESS) return;
    if (cudaMalloc(&lc_ctx.lt_workspace, LC_LT_WORKSPACE_BYTES) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    lc_ctx.lt_workspace_bytes = LC_LT_WORKSPACE_BYTES;
    lc_ctx_ok = 1;
}

const lc_cuda_ctx *lc_cuda_ctx_get(void) {
    pthread_once(&lc_ctx_once, lc_ctx_init);
    if (!lc_ctx_ok) return NULL;
    if (!lc_dev_bound) { /* device 0 is every thread's default; another one must be made current here */
        if (lc_ctx.device != 0 && cudaSetDevice(lc_ctx.device) != cudaSuccess) cudaGetLastError();
        lc_dev_bound = 1;
    }
    return &lc_ctx;
}

lc_status lc_set_cuda_device(int device) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) {
        cudaGetLastError();
        return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "set_cuda_device: no usable CUDA GPU");
    }
    if (device < 0 || device >= count)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "set_cuda_device: device: expected 0..%d (visible GPUs), got %d",
                        count - 1, device);
    pthread_mutex_lock(&lc_dev_mu);
    const int started = lc_dev_started;
    if (!started) lc_dev_requested = device;
    pthread_mutex_unlock(&lc_dev_mu);
    if (!started) return LC_OK;
    pthread_once(&lc_ctx_once, lc_ctx_init); /* wait for a start-up in flight on another thread */
    if (lc_ctx_ok && lc_ctx.device == device) return LC_OK;
    if (!lc_ctx_ok) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "set_cuda_device: the CUDA backend failed to start");
    return lc_error(LC_ERR_INVALID_ARGUMENT,
                    "set_cuda_device: device: the CUDA backend already runs on device %d, got %d (select the device "
                    "before the first CUDA work, or set LC_CUDA_DEVICE)", lc_ctx.device, device);
}

int lc_cuda_device_count(void) {
    int count = 0;
    const char *off = getenv("LC_CUDA_DISABLE");
    if (off && strcmp(off, "1") == 0) return 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return count;
}

int lc_cuda_device(void) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    return ctx ? ctx->device : -1;
}

int lc_cuda_available(void) { return lc_cuda_ctx_get() != NULL; }

void lc_cuda_note_op(const char *op) { atomic_store(&lc_last_op, op); }

lc_status lc_cuda_check(cudaError_t err, const char *what) {
    if (err == cudaSuccess) return LC_OK;
    cudaGetLastError(); /* clear a non-sticky error so the process stays usable */
    if (err == cudaErrorMemoryAllocation)
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: cuda: out of device memory (%s)", what, cudaGetErrorString(err));
    return lc_error(LC_ERR_BACKEND, "%s: cuda: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

lc_status lc_cuda_sync(void) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "cuda: no usable GPU");
    lc_status guard = lc_cuda_capture_guard("synchronize");
    if (guard != LC_OK) return guard;
    cudaError_t err = cudaStreamSynchronize(lc_cuda_stream(ctx));
    lc_counter_add(LC_COUNTER_SYNCS, 1);
    if (err == cudaSuccess) return LC_OK;
    const char *op = atomic_load(&lc_last_op);
    cudaGetLastError();
    return lc_error(err == cudaErrorMemoryAllocation ? LC_ERR_OUT_OF_MEMORY : LC_ERR_BACKEND,
                    "%s: cuda: work on the GPU failed: %s (%s)", op ? op : "cuda", cudaGetErrorString(err),
                    cudaGetErrorName(err));
}

/* ---- caching allocator ------------------------------------------------------------------------ */

typedef struct lc_block {
    void *ptr;
    size_t size;
    int in_use;
} lc_block;

static struct {
    pthread_mutex_t mu;
    lc_block *blocks;
    size_t count, cap;
} lc_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* 512-byte granularity below 1 MiB, 1 MiB above: bounded waste, good reuse of repeated shapes. */
static size_t lc_round_size(size_t bytes) {
    const size_t small = 512, big = (size_t)1 << 20;
    if (bytes == 0) bytes = 1;
    return bytes < big ? (bytes + small - 1) / small * small : (bytes + big - 1) / big * big;
}

static void lc_release_cached_locked(void) {
    size_t kept = 0;
    for (size_t i = 0; i < lc_cache.count; i++) {
        if (lc_cache.blocks[i].in_use)
            lc_cache.blocks[kept++] = lc_cache.blocks[i];
        else
            cudaFree(lc_cache.blocks[i].ptr);
    }
    lc_cache.count = kept;
}

void lc_cuda_release_cached(void) {
    pthread_mutex_lock(&lc_cache.mu);
    lc_release_cached_locked();
    pthread_mutex_unlock(&lc_cache.mu);
}

lc_status lc_cuda_alloc(size_t bytes, void **ptr) {
    *ptr = NULL;
    if (!lc_cuda_ctx_get()) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "cuda: no usable GPU");
    const size_t size = lc_round_size(bytes);
    pthread_mutex_lock(&lc_cache.mu);
    lc_block *best = NULL;
    for (size_t i = 0; i < lc_cache.count; i++) {
        lc_block *b = &lc_cache.blocks[i];
        if (!b->in_use && b->size >= size && b->size <= 2 * size && (!best || b->size < best->size)) best = b;
    }
    if (best) {
        best->in_use = 1;
        *ptr = best->ptr;
        pthread_mutex_unlock(&lc_cache.mu);
        return LC_OK;
    }
    if (lc_cache.count == lc_cache.cap) {
        size_t cap = lc_cache.cap ? 2 * lc_cache.cap : 64;
        lc_block *grown = realloc(lc_cache.blocks, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&lc_cache.mu);
            return lc_error(LC_ERR_OUT_OF_MEMORY, "cuda: could not grow the allocator's block table");
        }
        lc_cache.blocks = grown;
        lc_cache.cap = cap;
    }
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        lc_release_cached_locked(); /* give cached blocks back and try once more */
        err = cudaMalloc(&p, size);
    }
    if (err != cudaSuccess) {
        pthread_mutex_unlock(&lc_cache.mu);
        cudaGetLastError();
        return lc_error(err == cudaErrorMemoryAllocation ? LC_ERR_OUT_OF_MEMORY : LC_ERR_BACKEND,
                        "cuda: could not allocate %zu bytes of device memory (%s)", bytes, cudaGetErrorString(err));
    }
    lc_cache.blocks[lc_cache.count++] = (lc_block){p, size, 1};
    pthread_mutex_unlock(&lc_cache.mu);
    *ptr = p;
    return LC_OK;
}

void lc_cuda_free(void *ptr) {
    if (!ptr) return;
    if (lc_cuda_capture_keep_block(ptr)) return; /* a graph being captured may use it on every replay */
    pthread_mutex_lock(&lc_cache.mu);
    for (size_t i = 0; i < lc_cache.count; i++) {
        if (lc_cache.blocks[i].ptr == ptr) {
            lc_cache.blocks[i].in_use = 0; /* reusable at once: all work is ordered on one stream */
            break;
        }
    }
    pthread_mutex_unlock(&lc_cache.mu);
}

/* ---- pinned staging ---------------------------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    int ready;
    void *buf[LC_STAGE_SLOTS];
    cudaEvent_t done[LC_STAGE_SLOTS]; /* recorded after the last DMA that used the slot */
} lc_stage = {.mu = PTHREAD_MUTEX_INITIALIZER};

static lc_status lc_stage_ready_locked(void) {
    if (lc_stage.ready) return LC_OK;
    for (int i = 0; i < LC_STAGE_SLOTS; i++) {
        lc_status st = lc_cuda_check(cudaHostAlloc(&lc_stage.buf[i], LC_STAGE_BYTES, cudaHostAllocDefault),
                                     "cuda: pinned staging buffer");
        if (st == LC_OK) st = lc_cuda_check(cudaEventCreateWithFlags(&lc_stage.done[i], cudaEventDisableTiming),
                                            "cuda: staging event");
        if (st != LC_OK) return st;
    }
    lc_stage.ready = 1;
    return LC_OK;
}

typedef struct lc_memcpy_job {
    char *dst;
    const char *src;
} lc_memcpy_job;

static void lc_memcpy_range(void *ctx, int64_t begin, int64_t end) {
    lc_memcpy_job *job = ctx;
    memcpy(job->dst + begin, job->src + begin, (size_t)(end - begin));
}

/* Host memcpy spread over the CPU pool for large chunks (one core does ~10 GB/s). */
static void lc_memcpy_host(void *dst, const void *src, size_t bytes) {
    if (bytes < LC_PARALLEL_MEMCPY_MIN) {
        memcpy(dst, src, bytes);
        return;
    }
    lc_memcpy_job job = {dst, src};
    lc_parallel_for((int64_t)bytes, (int64_t)512 << 10, lc_memcpy_range, &job);
}

/* Bytes of the staging chunk that starts at `off` in a transfer of `bytes`. */
static size_t lc_chunk_bytes(size_t bytes, size_t off) {
    return bytes - off < LC_STAGE_BYTES ? bytes - off : LC_STAGE_BYTES;
}

/* Download chunk `i` out of its slot once its DMA is done (called with lc_stage.mu held). */
static lc_status lc_stage_drain(void *dst, size_t bytes, size_t i) {
    const int s = (int)(i % LC_STAGE_SLOTS);
    const size_t off = i * LC_STAGE_BYTES;
    lc_status st = lc_cuda_check(cudaEventSynchronize(lc_stage.done[s]), "cuda: download");
    if (st == LC_OK) lc_memcpy_host((char *)dst + off, lc_stage.buf[s], lc_chunk_bytes(bytes, off));
    return st;
}

lc_status lc_cuda_copy_h2d(void *dst, const void *src, size_t bytes) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "cuda: no usable GPU");
    lc_status guard = lc_cuda_capture_guard("upload to cuda");
    if (guard != LC_OK) return guard;
    lc_counter_add(LC_COUNTER_UPLOADS, 1);
    lc_counter_add(LC_COUNTER_H2D_BYTES, bytes);
    pthread_mutex_lock(&lc_stage.mu);
    lc_status st = lc_stage_ready_locked();
    for (size_t off = 0, i = 0; st == LC_OK && off < bytes; off += LC_STAGE_BYTES, i++) {
        const int s = (int)(i % LC_STAGE_SLOTS);
        const size_t chunk = lc_chunk_bytes(bytes, off);
        st = lc_cuda_check(cudaEventSynchronize(lc_stage.done[s]), "cuda: upload");
        if (st != LC_OK) break;
        lc_memcpy_host(lc_stage.buf[s], (const char *)src + off, chunk);
        st = lc_cuda_check(cudaMemcpyAsync((char *)dst + off, lc_stage.buf[s], chunk, cudaMemcpyHostToDevice, lc_cuda_stream(ctx)),
                           "cuda: upload");
        if (st == LC_OK) st = lc_cuda_check(cudaEventRecord(lc_stage.done[s], lc_cuda_stream(ctx)), "cuda: upload");
    }
    pthread_mutex_unlock(&lc_stage.mu);
    return st;
}

lc_status lc_cuda_copy_d2h(void *dst, const void *src, size_t bytes) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "cuda: no usable GPU");
    lc_status guard = lc_cuda_capture_guard("download from cuda");
    if (guard != LC_OK) return guard;
    lc_counter_add(LC_COUNTER_SYNCS, 1); /* the download waits for the stream's earlier work */
    lc_counter_add(LC_COUNTER_DOWNLOADS, 1);
    lc_counter_add(LC_COUNTER_D2H_BYTES, bytes);
    pthread_mutex_lock(&lc_stage.mu);
    lc_status st = lc_stage_ready_locked();
    const size_t nchunks = (bytes + LC_STAGE_BYTES - 1) / LC_STAGE_BYTES;
    size_t drained = 0;
    /* Keep up to LC_STAGE_SLOTS chunks in flight; copy each out of its slot once its DMA is done. */
    for (size_t i = 0; st == LC_OK && i < nchunks; i++) {
        const int s = (int)(i % LC_STAGE_SLOTS);
        for (; st == LC_OK && drained + LC_STAGE_SLOTS <= i; drained++) st = lc_stage_drain(dst, bytes, drained);
        if (st != LC_OK) break;
        st = lc_cuda_check(cudaEventSynchronize(lc_stage.done[s]), "cuda: download");
        const size_t off = i * LC_STAGE_BYTES;
        const size_t chunk = lc_chunk_bytes(bytes, off);
        if (st == LC_OK)
            st = lc_cuda_check(cudaMemcpyAsync(lc_stage.buf[s], (const char *)src + off, chunk, cudaMemcpyDeviceToHost,
                                               lc_cuda_stream(ctx)),
                               "cuda: download");
        if (st == LC_OK) st = lc_cuda_check(cudaEventRecord(lc_stage.done[s], lc_cuda_stream(ctx)), "cuda: download");
    }
    for (; st == LC_OK && drained < nchunks; drained++) st = lc_stage_drain(dst, bytes, drained);
    pthread_mutex_unlock(&lc_stage.mu);
    if (st != LC_OK) {
        lc_status fault = lc_cuda_sync(); /* names the op whose kernel failed, if one did */
        return fault != LC_OK ? fault : st;
    }
    return LC_OK;
}

lc_status lc_cuda_copy_d2d(void *dst, const void *src, size_t bytes) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "cuda: no usable GPU");
    return lc_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, lc_cuda_stream(ctx)), "cuda: device copy");
}
