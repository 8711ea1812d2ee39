/* cuda_graph.c — CUDA graph capture/replay and the CUDA-event timer (see cuda_graph.h). A capture
 * records on the context's capture stream, which only the capturing thread enqueues on (lc_cuda_stream);
 * other threads keep running on the backend stream meanwhile, and a second thread that wants to capture
 * waits for the first capture to end. Replays launch on the backend stream. Capture uses
 * cudaStreamCaptureModeRelaxed so that the caching allocator may still cudaMalloc inside it; blocks the
 * capturing thread frees during the capture (kernel workspaces) stay reserved until the graph is freed,
 * because replays keep using their addresses. lc_cuda_time_enqueues is the autotuners' timing loop.
 * Tests: tests/c/test_sessions.c, tests/python/test_sessions.py, tests/python/test_capture.py (GPU). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/cuda_graph.h"
#include "core/backend.h"
#include "core/counters.h"
#include "core/internal.h"

typedef struct lc_cuda_graph {
    cudaGraphExec_t exec;
    void **blocks; /* device blocks the graph's kernels use as workspace */
    size_t nblocks;
} lc_cuda_graph;

static _Thread_local int lc_cap_mine; /* this thread owns the capture in progress */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t ended;
    int active;
    pthread_t owner;
    void **blocks;
    size_t nblocks, cap;
} lc_cap = {.mu = PTHREAD_MUTEX_INITIALIZER, .ended = PTHREAD_COND_INITIALIZER};

cudaStream_t lc_cuda_stream(const lc_cuda_ctx *ctx) { return lc_cap_mine ? ctx->capture_stream : ctx->stream; }

int lc_cuda_capture_state(void) {
    pthread_mutex_lock(&lc_cap.mu);
    int state = !lc_cap.active ? LC_CAPTURE_NONE
                : pthread_equal(lc_cap.owner, pthread_self()) ? LC_CAPTURE_THIS_THREAD
                                                             : LC_CAPTURE_OTHER_THREAD;
    pthread_mutex_unlock(&lc_cap.mu);
    return state;
}

lc_status lc_cuda_capture_guard(const char *what) {
    switch (lc_cuda_capture_state()) {
    case LC_CAPTURE_THIS_THREAD:
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "%s: not allowed while capturing a graph (captured work must keep every operand on the "
                        "device and must not wait for the device)", what);
    default: return LC_OK; /* another thread's capture records on its own stream: nothing to guard */
    }
}

int lc_cuda_capture_keep_block(void *ptr) {
    int kept = 0;
    pthread_mutex_lock(&lc_cap.mu);
    if (lc_cap.active && lc_cap_mine) { /* only the capturing thread's frees can be under the graph */
        if (lc_cap.nblocks == lc_cap.cap) {
            size_t cap = lc_cap.cap ? 2 * lc_cap.cap : 8;
            void **grown = realloc(lc_cap.blocks, cap * sizeof *grown);
            if (grown) {
                lc_cap.blocks = grown;
                lc_cap.cap = cap;
            }
        }
        /* Without room the block is leaked rather than reused under a live graph. */
        if (lc_cap.nblocks < lc_cap.cap) lc_cap.blocks[lc_cap.nblocks++] = ptr;
        kept = 1;
    }
    pthread_mutex_unlock(&lc_cap.mu);
    return kept;
}

lc_status lc_cuda_capture_begin(void) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "capture: cuda: no usable GPU");
    pthread_mutex_lock(&lc_cap.mu);
    if (lc_cap_mine) {
        pthread_mutex_unlock(&lc_cap.mu);
        return lc_error(LC_ERR_INVALID_ARGUMENT, "capture: this thread is already capturing");
    }
    while (lc_cap.active) pthread_cond_wait(&lc_cap.ended, &lc_cap.mu); /* one capture at a time: wait */
    cudaError_t err = cudaStreamBeginCapture(ctx->capture_stream, cudaStreamCaptureModeRelaxed);
    if (err == cudaSuccess) {
        lc_cap.active = 1;
        lc_cap.owner = pthread_self();
        lc_cap.nblocks = 0;
        lc_cap_mine = 1;
    }
    pthread_mutex_unlock(&lc_cap.mu);
    return lc_cuda_check(err, "capture: begin");
}

/* Takes the blocks kept during the capture (capture mutex held). */
static void lc_take_blocks_locked(void ***blocks, size_t *n) {
    *blocks = NULL;
    *n = lc_cap.nblocks;
    if (lc_cap.nblocks) {
        *blocks = malloc(lc_cap.nblocks * sizeof **blocks);
        if (*blocks)
            for (size_t i = 0; i < lc_cap.nblocks; i++) (*blocks)[i] = lc_cap.blocks[i];
        else
            *n = 0; /* no host memory: the blocks stay reserved (leaked), never reused under a graph */
    }
    lc_cap.nblocks = 0;
}

static void lc_free_blocks(void **blocks, size_t n) {
    for (size_t i = 0; i < n; i++) lc_cuda_free(blocks[i]);
    free(blocks);
}

lc_status lc_cuda_capture_end(int keep, void **graph_out, int64_t *nodes) {
    if (graph_out) *graph_out = NULL;
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "capture: cuda: no usable GPU");
    pthread_mutex_lock(&lc_cap.mu);
    if (!lc_cap.active || !pthread_equal(lc_cap.owner, pthread_self())) {
        pthread_mutex_unlock(&lc_cap.mu);
        return lc_error(LC_ERR_INVALID_ARGUMENT, "capture: end: this thread has no capture in progress");
    }
    cudaGraph_t graph = NULL;
    cudaError_t err = cudaStreamEndCapture(ctx->capture_stream, &graph);
    lc_cap.active = 0;
    lc_cap_mine = 0;
    pthread_cond_broadcast(&lc_cap.ended);
    void **blocks;
    size_t nblocks;
    lc_take_blocks_locked(&blocks, &nblocks);
    pthread_mutex_unlock(&lc_cap.mu);

    lc_status st = lc_cuda_check(err, "capture: end");
    lc_cuda_graph *g = NULL;
    if (st == LC_OK && keep) {
        size_t count = 0;
        st = lc_cuda_check(cudaGraphGetNodes(graph, NULL, &count), "capture: graph nodes");
        if (st == LC_OK && count == 0) st = lc_error(LC_ERR_INVALID_ARGUMENT, "capture: no device work was captured");
        if (st == LC_OK && nodes) *nodes = (int64_t)count;
        g = st == LC_OK ? calloc(1, sizeof *g) : NULL;
        if (st == LC_OK && !g) st = lc_error(LC_ERR_OUT_OF_MEMORY, "capture: out of host memory");
        if (st == LC_OK) st = lc_cuda_check(cudaGraphInstantiate(&g->exec, graph, 0), "capture: instantiate");
        if (st == LC_OK) st = lc_cuda_check(cudaGraphUpload(g->exec, ctx->stream), "capture: upload");
        if (st != LC_OK && g) {
            if (g->exec) cudaGraphExecDestroy(g->exec);
            free(g);
            g = NULL;
        }
    }
    if (graph) cudaGraphDestroy(graph);
    if (!g) {
        /* Nothing of the capture ever ran: its blocks can be reused at once. */
        lc_free_blocks(blocks, nblocks);
        return st;
    }
    g->blocks = blocks;
    g->nblocks = nblocks;
    lc_counter_add(LC_COUNTER_GRAPH_CAPTURES, 1);
    *graph_out = g;
    return LC_OK;
}

lc_status lc_cuda_graph_launch(void *graph, int64_t loops) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "graph replay: cuda: no usable GPU");
    lc_status st = lc_cuda_capture_guard("graph replay");
    if (st != LC_OK) return st;
    lc_cuda_graph *g = graph;
    for (int64_t i = 0; i < loops; i++) {
        st = lc_cuda_check(cudaGraphLaunch(g->exec, ctx->stream), "graph replay");
        if (st != LC_OK) return st;
    }
    lc_counter_add(LC_COUNTER_GRAPH_LAUNCHES, (uint64_t)loops);
    return LC_OK;
}

void lc_cuda_graph_free(void *graph) {
    lc_cuda_graph *g = graph;
    if (!g) return;
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    /* Replays may still be running: wait before the workspace blocks go back to the allocator (the
     * backend stream can be waited on unless this thread is capturing). */
    if (ctx && !lc_cap_mine) cudaStreamSynchronize(ctx->stream);
    cudaGetLastError();
    cudaGraphExecDestroy(g->exec);
    lc_free_blocks(g->blocks, g->nblocks);
    free(g);
}

/* ---- event timer ------------------------------------------------------------------------------- */

typedef struct lc_cuda_timer {
    cudaEvent_t start, stop;
} lc_cuda_timer;

lc_status lc_cuda_timer_start(void **handle) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "device timer: cuda: no usable GPU");
    lc_status st = lc_cuda_capture_guard("device timer");
    if (st != LC_OK) return st;
    lc_cuda_timer *t = calloc(1, sizeof *t);
    if (!t) return lc_error(LC_ERR_OUT_OF_MEMORY, "device timer: out of host memory");
    st = lc_cuda_check(cudaEventCreate(&t->start), "device timer");
    if (st == LC_OK) st = lc_cuda_check(cudaEventCreate(&t->stop), "device timer");
    if (st == LC_OK) st = lc_cuda_check(cudaEventRecord(t->start, lc_cuda_stream(ctx)), "device timer");
    if (st != LC_OK) {
        if (t->start) cudaEventDestroy(t->start);
        if (t->stop) cudaEventDestroy(t->stop);
        free(t);
        return st;
    }
    *handle = t;
    return LC_OK;
}

lc_status lc_cuda_timer_stop(void *handle, double *elapsed_ms) {
    lc_cuda_timer *t = handle;
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    lc_status st = ctx ? lc_cuda_capture_guard("device timer") : lc_error(LC_ERR_DEVICE_UNAVAILABLE, "device timer: cuda: no usable GPU");
    float ms = 0.0f;
    if (st == LC_OK) st = lc_cuda_check(cudaEventRecord(t->stop, lc_cuda_stream(ctx)), "device timer");
    if (st == LC_OK) st = lc_cuda_check(cudaEventSynchronize(t->stop), "device timer");
    if (st == LC_OK) st = lc_cuda_check(cudaEventElapsedTime(&ms, t->start, t->stop), "device timer");
    if (st == LC_OK) lc_counter_add(LC_COUNTER_SYNCS, 1);
    cudaEventDestroy(t->start);
    cudaEventDestroy(t->stop);
    free(t);
    if (st == LC_OK) *elapsed_ms = (double)ms;
    return st;
}

lc_status lc_cuda_time_enqueues(int reps, lc_cuda_enqueue_fn enqueue, void *user, double *ms, int *enqueue_error) {
    *ms = INFINITY;
    *enqueue_error = enqueue(user); /* warm-up: first-run costs (module load, workspace) stay out */
    if (*enqueue_error) return LC_OK;
    void *timer = NULL;
    lc_status st = lc_cuda_timer_start(&timer);
    if (st != LC_OK) return st;
    for (int r = 0; r < reps && !*enqueue_error; r++) *enqueue_error = enqueue(user);
    double total = 0.0;
    st = lc_cuda_timer_stop(timer, &total); /* waits for what was enqueued, also after a failed enqueue */
    if (st == LC_OK && !*enqueue_error) *ms = total / (double)(reps > 0 ? reps : 1);
    return st;
}
