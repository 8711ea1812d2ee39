/* dist.h — collectives between processes (one GPU each) over NCCL: a communicator made from NCCL's
 * 128-byte unique id (rank 0 makes it, the caller passes it to the others by any means), and sum
 * all_reduce, all_gather, reduce_scatter, broadcast and barrier on CUDA tensors. Every collective is
 * enqueued on the library's CUDA stream (the capture stream while this thread captures a graph), so it
 * orders with the ops and is recorded by lc_capture_begin/end.
 *
 * Timeouts: the communicator is non-blocking; init, the enqueue of a collective (NCCL connects peers
 * lazily), lc_dist_wait, lc_dist_barrier and lc_dist_exchange_header poll NCCL's async error and give up
 * after the communicator's timeout: the communicator is aborted (ncclCommAbort, which also stops its
 * kernels on the GPU) and LC_ERR_BACKEND names the rank and the timeout. After any failure the
 * communicator refuses every call but lc_dist_comm_destroy (the message names the first error); the
 * process and the library's other work stay usable.
 *
 * Shapes: all_gather: in [n, ...] -> out [world*n, ...]; reduce_scatter: in [world*n, ...] -> out [n, ...];
 * tensors contiguous, on cuda, of one dtype among float32, float64, float16, bfloat16, int32, int64.
 * A build without NCCL (or without CUDA) has the same functions; they return LC_ERR_UNSUPPORTED and
 * lc_dist_unavailable_reason() says why.
 * Tests: tests/c/test_dist.c (no GPU: refusals), tests/python/test_distributed.py (GPU: world size 1),
 * tests/python/test_distributed_multi.py (>= 2 GPUs). */
#ifndef LIGHTNING_CORE_DIST_H
#define LIGHTNING_CORE_DIST_H

#include <stdint.h>

#include "lightning_core/status.h"
#include "lightning_core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LC_DIST_UNIQUE_ID_BYTES 128
/* int64 entries of the header lc_dist_exchange_header passes (op, dtype, ndim, shape, extra). */
#define LC_DIST_HEADER_MAX 16

typedef struct lc_dist_comm lc_dist_comm_t;

/* 1 when this build has the NCCL backend and a CUDA GPU is visible, else 0 (starts nothing: the device
 * can still be chosen with lc_set_cuda_device afterwards). */
int lc_dist_available(void);
/* "" when available, else why not ("built without NCCL: ...", "no usable CUDA GPU"). Never NULL. */
const char *lc_dist_unavailable_reason(void);
/* The NCCL version (e.g. 22809) this build runs with; 0 without NCCL. */
int lc_dist_nccl_version(void);

/* A fresh NCCL unique id (rank 0 calls this once per communicator). */
lc_status lc_dist_unique_id(uint8_t id[LC_DIST_UNIQUE_ID_BYTES]);

/* Joins the communicator of `world_size` ranks named by `id` as `rank`, on the library's CUDA device
 * (lc_set_cuda_device). Blocks until every rank has joined or `timeout_s` (> 0) passes. */
lc_status lc_dist_comm_init(const uint8_t id[LC_DIST_UNIQUE_ID_BYTES], int world_size, int rank, double timeout_s,
                            lc_dist_comm_t **out);
/* Waits for this rank's work on the communicator (within the timeout: a failure or timeout is returned),
 * then finalizes it with the peers and frees it; a peer that does not finalize within the timeout gets the
 * communicator aborted (not an error: nothing of this rank is pending). A failed one is just aborted and
 * freed. NULL is a no-op. The communicator must outlive every device graph that captured it. */
lc_status lc_dist_comm_destroy(lc_dist_comm_t *comm);
/* Aborts the communicator (kernels stop, peers see an error); later calls fail naming `reason`. */
void lc_dist_comm_abort(lc_dist_comm_t *comm, const char *reason);

int lc_dist_comm_rank(const lc_dist_comm_t *comm);
int lc_dist_comm_size(const lc_dist_comm_t *comm);
double lc_dist_comm_timeout(const lc_dist_comm_t *comm);
lc_status lc_dist_comm_set_timeout(lc_dist_comm_t *comm, double timeout_s);
/* 1 while usable; 0 after an error/abort (lc_dist_comm_error() then holds the first error's text). */
int lc_dist_comm_ok(const lc_dist_comm_t *comm);
const char *lc_dist_comm_error(const lc_dist_comm_t *comm);

/* Sum in place. */
lc_status lc_dist_all_reduce(lc_dist_comm_t *comm, lc_tensor_t *t);
/* out [world * in.shape[0], in.shape[1:]] = every rank's `in` in rank order. */
lc_status lc_dist_all_gather(lc_dist_comm_t *comm, const lc_tensor_t *in, lc_tensor_t *out);
/* out [in.shape[0] / world, ...] = this rank's slice of the sum (in.shape[0] % world == 0). */
lc_status lc_dist_reduce_scatter(lc_dist_comm_t *comm, const lc_tensor_t *in, lc_tensor_t *out);
/* t = rank src's t on every rank. */
lc_status lc_dist_broadcast(lc_dist_comm_t *comm, lc_tensor_t *t, int src);

/* Waits (host) until the work enqueued so far on the library's stream has finished, polling the
 * communicator so a dead peer ends in a timeout instead of a hang. Not while capturing. */
lc_status lc_dist_wait(lc_dist_comm_t *comm);
/* Every rank reaches this point (a one-element all_reduce and lc_dist_wait). Not while capturing. */
lc_status lc_dist_barrier(lc_dist_comm_t *comm);
/* Passes n (1..LC_DIST_HEADER_MAX) int64 values from every rank: all[r * n + i] = rank r's mine[i]
 * (an all_gather through device buffers of the communicator, then lc_dist_wait). Not while capturing. */
lc_status lc_dist_exchange_header(lc_dist_comm_t *comm, const int64_t *mine, int n, int64_t *all);

#ifdef __cplusplus
}
#endif

#endif
