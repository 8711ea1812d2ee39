/* cuda_context.h — the CUDA backend's process-wide context (internal): lazy, thread-safe start-up,
 * the stream all work is enqueued on, device properties, the caching device allocator, pinned host
 * staging for host<->device copies, error mapping, and the name of the last op enqueued (so that a
 * fault found at a later synchronisation names the op that caused it).
 * Tests: tests/c/test_ops.c and tests/python on "cuda" (GPU machine), tests/c/test_core.c (no GPU:
 * the backend reports itself unavailable and nothing fails). */
#ifndef LC_CUDA_CONTEXT_H
#define LC_CUDA_CONTEXT_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <stddef.h>

#include "lightning_core/status.h"

typedef struct lc_cuda_ctx {
    int device;
    int num_sms;
    cudaStream_t stream;         /* all work, except what a capturing thread enqueues */
    cudaStream_t capture_stream; /* the one capture at a time records here (cuda_graph.c) */
    cublasLtHandle_t lt;
    void *lt_workspace;
    size_t lt_workspace_bytes;
} lc_cuda_ctx;

/* The context, starting it on first use; NULL when no usable GPU/driver (never an error). */
const lc_cuda_ctx *lc_cuda_ctx_get(void);
int lc_cuda_available(void);

/* The stream the calling thread enqueues on: the capture stream while this thread captures a graph,
 * else ctx->stream. Other threads keep running on ctx->stream during a capture (cuda_graph.c). */
cudaStream_t lc_cuda_stream(const lc_cuda_ctx *ctx);

/* Maps a CUDA runtime error to LC_ERR_OUT_OF_MEMORY / LC_ERR_BACKEND with "<what>: <cuda message>". */
lc_status lc_cuda_check(cudaError_t err, const char *what);

/* Records the op whose work was just enqueued (thread-safe; for fault messages at sync). */
void lc_cuda_note_op(const char *op);

/* Caching device allocator: blocks are kept for reuse (stream-ordered on the single backend stream). */
lc_status lc_cuda_alloc(size_t bytes, void **ptr);
void lc_cuda_free(void *ptr);
/* Returns every cached free block to the driver (also done automatically when an allocation fails). */
void lc_cuda_release_cached(void);

/* Copies through pinned staging buffers, chunked so host memcpy and DMA overlap. h2d returns once the
 * source has been read (the device copy may still be in flight on the stream); d2h returns when the
 * data is in host memory. d2d is enqueued. */
lc_status lc_cuda_copy_h2d(void *dst, const void *src, size_t bytes);
lc_status lc_cuda_copy_d2h(void *dst, const void *src, size_t bytes);
lc_status lc_cuda_copy_d2d(void *dst, const void *src, size_t bytes);
lc_status lc_cuda_sync(void);

#endif
