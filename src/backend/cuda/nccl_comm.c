/* nccl_comm.c — the NCCL communicator and collectives of dist.h (C11; NCCL + the CUDA runtime).
 * One non-blocking NCCL communicator per lc_dist_comm on the library's CUDA device; every collective
 * is enqueued on lc_cuda_stream(ctx) (the capture stream while this thread captures: NCCL supports stream
 * capture, and the capture layer keeps the operands alive). Host waits (init, the enqueue of a collective
 * while NCCL connects peers, lc_dist_wait, barrier, the header exchange, finalize) poll
 * ncclCommGetAsyncError and the stream's event with a deadline: past it the communicator is aborted
 * (ncclCommAbort stops its kernels) so a dead peer ends in an error, never a hang. Any NCCL failure marks
 * the communicator broken (first error kept); argument errors do not.
 * Built only with LC_HAVE_NCCL (CMake finds nccl.h / libnccl like cuBLASLt); dist_none.c otherwise. NCCL is
 * loaded at run time (dlopen of libnccl.so.2 at the first unique id / communicator / version query), not
 * linked: a linked libnccl.so.2 would be in every process that imports lightning_core, and a framework
 * imported afterwards with a newer NCCL of the same soname (torch: ncclCommResume) would then fail to load.
 * Loaded late, the process's NCCL is whichever came first (torch's, when torch was imported before).
 * Tests: tests/c/test_dist.c (no GPU: refusals), tests/python/test_distributed.py (world size 1, GPU),
 * tests/python/test_distributed_multi.py (>= 2 GPUs). */
#include <dlfcn.h>
#include <math.h>
#include <nccl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/cuda_graph.h"
#include "core/backend.h"
#include "core/counters.h"
#include "core/internal.h"
#include "lightning_core/dist.h"
#include "lightning_core/runtime.h"
#include "lightning_core/session.h"
#include "ops/capture.h"

_Static_assert(sizeof(ncclUniqueId) == LC_DIST_UNIQUE_ID_BYTES, "NCCL unique id size");

/* ---- NCCL, loaded at run time ------------------------------------------------------------------ */

#ifndef LC_NCCL_LIBDIR
#define LC_NCCL_LIBDIR "/usr/local/cuda/lib"
#endif
#define LC_NCCL_FNS(X)                                                                                         \
    X(GetUniqueId) X(CommInitRankConfig) X(CommGetAsyncError) X(CommAbort) X(CommDestroy) X(CommFinalize)     \
        X(AllReduce) X(AllGather) X(ReduceScatter) X(Broadcast) X(GetErrorString) X(GetLastError) X(GetVersion)

static struct {
#define LC_NCCL_PTR(n) __typeof__(&nccl##n) n;
    LC_NCCL_FNS(LC_NCCL_PTR)
#undef LC_NCCL_PTR
} lc_nccl;
static int lc_nccl_ok;
static char lc_nccl_why[512];
static pthread_once_t lc_nccl_once = PTHREAD_ONCE_INIT;

static void lc_nccl_load_once(void) {
    static const char *const names[] = {"libnccl.so.2", LC_NCCL_LIBDIR "/libnccl.so.2", "libnccl.so"};
    void *h = NULL;
    const char *err = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++) {
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) err = dlerror();
    }
    if (!h) {
        snprintf(lc_nccl_why, sizeof lc_nccl_why, "NCCL could not be loaded at run time (libnccl.so.2, %s): %s",
                 LC_NCCL_LIBDIR, err ? err : "?");
        return;
    }
#define LC_NCCL_SYM(n)                                                                                         \
    {                                                                                                          \
        void *sym = dlsym(h, "nccl" #n);                                                                       \
        if (!sym) {                                                                                            \
            snprintf(lc_nccl_why, sizeof lc_nccl_why, "the loaded libnccl.so.2 lacks nccl" #n " (NCCL >= 2.18)"); \
            return;                                                                                            \
        }                                                                                                      \
        memcpy(&lc_nccl.n, &sym, sizeof sym);                                                                  \
    }
    LC_NCCL_FNS(LC_NCCL_SYM)
#undef LC_NCCL_SYM
    lc_nccl_ok = 1;
}

/* 1 once NCCL is loaded (the first call loads it), else 0 with lc_nccl_why set. */
static int lc_nccl_loaded(void) {
    pthread_once(&lc_nccl_once, lc_nccl_load_once);
    return lc_nccl_ok;
}

static lc_status lc_nccl_require(const char *fn) {
    return lc_nccl_loaded() ? LC_OK : lc_error(LC_ERR_UNSUPPORTED, "%s: %s", fn, lc_nccl_why);
}

/* Every NCCL call below goes through the loaded table. */
#define ncclGetUniqueId lc_nccl.GetUniqueId
#define ncclCommInitRankConfig lc_nccl.CommInitRankConfig
#define ncclCommGetAsyncError lc_nccl.CommGetAsyncError
#define ncclCommAbort lc_nccl.CommAbort
#define ncclCommDestroy lc_nccl.CommDestroy
#define ncclCommFinalize lc_nccl.CommFinalize
#define ncclAllReduce lc_nccl.AllReduce
#define ncclAllGather lc_nccl.AllGather
#define ncclReduceScatter lc_nccl.ReduceScatter
#define ncclBroadcast lc_nccl.Broadcast
#define ncclGetErrorString lc_nccl.GetErrorString
#define ncclGetLastError lc_nccl.GetLastError
#define ncclGetVersion lc_nccl.GetVersion

struct lc_dist_comm {
    ncclComm_t nccl; /* NULL once aborted */
    int rank, size, device;
    double timeout;
    int broken;
    char error[640];
    int64_t *dev_buf;  /* device: LC_DIST_HEADER_MAX (own header) + size * LC_DIST_HEADER_MAX (gathered) */
    int64_t *host_buf; /* pinned host mirror of dev_buf */
    cudaEvent_t done;
};

/* ---- availability ------------------------------------------------------------------------------ */

/* Counting GPUs does not start the CUDA backend, so a process can still pick its device afterwards; nor does
 * it load NCCL (see the header: that waits for the first communicator). */
int lc_dist_available(void) { return lc_cuda_device_count() > 0; }

const char *lc_dist_unavailable_reason(void) {
    return lc_dist_available() ? "" : "no usable CUDA GPU (NCCL is built in, but every rank needs a GPU)";
}

int lc_dist_nccl_version(void) {
    int v = 0;
    return lc_nccl_loaded() && ncclGetVersion(&v) == ncclSuccess ? v : 0;
}

/* ---- time and failure -------------------------------------------------------------------------- */

static double lc_dist_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sleeps a little longer each round (10 us .. 1 ms): prompt for short waits, cheap for long ones. */
static void lc_dist_nap(long *ns) {
    struct timespec ts = {0, *ns};
    nanosleep(&ts, NULL);
    if (*ns < 1000000) *ns *= 2;
}

static void lc_dist_abort_nccl(lc_dist_comm_t *c) {
    if (c->nccl) {
        ncclCommAbort(c->nccl);
        c->nccl = NULL;
    }
}

/* Marks the communicator broken with the formatted text (the first error is kept), aborts it, and sets
 * the thread's error: "dist: rank r of n: <text>". */
static lc_status lc_dist_fail(lc_dist_comm_t *c, const char *fmt, ...) LC_PRINTF(2, 3);
static lc_status lc_dist_fail(lc_dist_comm_t *c, const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!c->broken) {
        c->broken = 1;
        snprintf(c->error, sizeof c->error, "rank %d of %d: %s", c->rank, c->size, text);
    }
    lc_dist_abort_nccl(c);
    return lc_error(LC_ERR_BACKEND, "dist: rank %d of %d: %s; the process group was aborted and is unusable", c->rank,
                    c->size, text);
}

static lc_status lc_dist_nccl_fail(lc_dist_comm_t *c, const char *what, ncclResult_t r) {
    const char *detail = c->nccl ? ncclGetLastError(c->nccl) : NULL;
    return lc_dist_fail(c, "%s: NCCL error: %s%s%.200s", what, ncclGetErrorString(r), detail && detail[0] ? ": " : "",
                        detail ? detail : "");
}

static lc_status lc_dist_timeout(lc_dist_comm_t *c, const char *what) {
    return lc_dist_fail(c, "%s timed out after %.3g s (a peer rank is missing, dead or did not make the same call)",
                        what, c->timeout);
}

/* Polls until NCCL's pending work for the communicator (init, a connecting enqueue, finalize) is done
 * (ncclCommGetAsyncError leaves ncclInProgress): ncclSuccess, NCCL's error, or ncclInProgress at the deadline. */
static ncclResult_t lc_dist_poll_raw(lc_dist_comm_t *c) {
    const double deadline = lc_dist_now() + c->timeout;
    long ns = 10000;
    for (;;) {
        ncclResult_t async = ncclSuccess;
        ncclResult_t r = ncclCommGetAsyncError(c->nccl, &async);
        if (r != ncclSuccess) return r;
        if (async != ncclInProgress) return async;
        if (lc_dist_now() > deadline) return ncclInProgress;
        lc_dist_nap(&ns);
    }
}

static lc_status lc_dist_poll_nccl(lc_dist_comm_t *c, const char *what) {
    ncclResult_t r = lc_dist_poll_raw(c);
    if (r == ncclSuccess) return LC_OK;
    return r == ncclInProgress ? lc_dist_timeout(c, what) : lc_dist_nccl_fail(c, what, r);
}

/* Result of an enqueue on the non-blocking communicator: in progress -> poll; an error -> broken. */
static lc_status lc_dist_enqueued(lc_dist_comm_t *c, const char *what, ncclResult_t r) {
    if (r == ncclSuccess) return LC_OK;
    if (r == ncclInProgress) return lc_dist_poll_nccl(c, what);
    return lc_dist_nccl_fail(c, what, r);
}

/* ---- argument checks --------------------------------------------------------------------------- */

static lc_status lc_dist_usable(const lc_dist_comm_t *c, const char *op) {
    if (!c) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: comm: expected a process group, got NULL", op);
    if (c->broken)
        return lc_error(LC_ERR_BACKEND, "%s: the process group is unusable after an earlier error (%s); destroy it and "
                        "initialise a new one", op, c->error);
    return LC_OK;
}

static int lc_dist_nccl_dtype(lc_dtype dt, ncclDataType_t *out) {
    switch (dt) {
    case LC_DTYPE_F32: *out = ncclFloat32; return 1;
    case LC_DTYPE_F64: *out = ncclFloat64; return 1;
    case LC_DTYPE_F16: *out = ncclFloat16; return 1;
    case LC_DTYPE_BF16: *out = ncclBfloat16; return 1;
    case LC_DTYPE_I32: *out = ncclInt32; return 1;
    case LC_DTYPE_I64: *out = ncclInt64; return 1;
    default: return 0;
    }
}

/* A collective's operand: on cuda, contiguous, of a dtype NCCL sums; `out` operands writable. */
static lc_status lc_dist_check_tensor(const char *op, const char *arg, const lc_tensor_t *t, int is_out,
                                      ncclDataType_t *dt) {
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a tensor, got NULL", op, arg);
    if (lc_tensor_device(t) != LC_DEVICE_CUDA)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a tensor on cuda, got one on %s", op, arg,
                        lc_device_name(lc_tensor_device(t)));
    if (!lc_tensor_is_contiguous(t))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a contiguous tensor, got a strided view", op, arg);
    if (!lc_dist_nccl_dtype(lc_tensor_dtype(t), dt))
        return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype float32, float64, float16, bfloat16, int32 or int64, got %s",
                        op, arg, lc_dtype_name(lc_tensor_dtype(t)));
    if (is_out && !lc_tensor_is_writable(t))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a writable tensor", op, arg);
    return LC_OK;
}

static void lc_dist_shape_text(const lc_tensor_t *t, char *buf, size_t cap) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < lc_tensor_ndim(t) && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)lc_tensor_dim(t, i));
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* big = [world * small.shape[0], small.shape[1:]] with small's dtype (all_gather's out, reduce_scatter's in). */
static lc_status lc_dist_check_pair(const char *op, const lc_dist_comm_t *c, const lc_tensor_t *small, const char *sname,
                                    const lc_tensor_t *big, const char *bname) {
    const lc_tensor_t *t = strcmp(sname, "t") == 0 ? small : big, *o = t == small ? big : small;
    if (lc_tensor_dtype(t) != lc_tensor_dtype(o))
        return lc_error(LC_ERR_DTYPE, "%s: out: expected dtype %s (t's), got %s", op, lc_dtype_name(lc_tensor_dtype(t)),
                        lc_dtype_name(lc_tensor_dtype(o)));
    int ok = lc_tensor_ndim(small) == lc_tensor_ndim(big) && lc_tensor_dim(big, 0) == (int64_t)c->size * lc_tensor_dim(small, 0);
    for (int i = 1; ok && i < lc_tensor_ndim(small); i++) ok = lc_tensor_dim(small, i) == lc_tensor_dim(big, i);
    if (ok) return LC_OK;
    char sb[160], bb[160];
    lc_dist_shape_text(small, sb, sizeof sb);
    lc_dist_shape_text(big, bb, sizeof bb);
    return lc_error(LC_ERR_SHAPE, "%s: %s has shape %s and %s %s: expected %s.shape[0] == world_size (%d) * %s.shape[0] "
                    "and equal other dims", op, sname, sb, bname, bb, bname, c->size, sname);
}

/* In-place use is allowed exactly as NCCL defines it (the small buffer is this rank's slice of the big one);
 * any other overlap is refused. */
static lc_status lc_dist_check_overlap(const char *op, const lc_dist_comm_t *c, const lc_tensor_t *small,
                                       const lc_tensor_t *big) {
    const char *s = lc_tensor_data(small), *b = lc_tensor_data(big);
    const size_t sn = lc_tensor_nbytes(small), bn = lc_tensor_nbytes(big);
    if (s + sn <= b || b + bn <= s) return LC_OK;
    if (s == b + (size_t)c->rank * sn) return LC_OK;
    return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: overlaps the input (only the in-place layout is allowed: the "
                    "smaller tensor is rank %d's slice of the larger one)", op, c->rank);
}

/* The stream to enqueue on, after the capture checks (operands on cuda; kept alive for the graph). */
static lc_status lc_dist_stream(const char *op, const lc_tensor_t *const *tensors, int n, cudaStream_t *stream) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: no usable CUDA GPU", op);
    lc_status st = lc_capture_check_route(op, lc_backend_for(LC_DEVICE_CUDA), tensors, n);
    if (st != LC_OK) return st;
    *stream = lc_cuda_stream(ctx);
    lc_cuda_note_op(op);
    return LC_OK;
}

/* ---- life cycle -------------------------------------------------------------------------------- */

lc_status lc_dist_unique_id(uint8_t id[LC_DIST_UNIQUE_ID_BYTES]) {
    if (!id) return lc_error(LC_ERR_INVALID_ARGUMENT, "dist_unique_id: id: expected a 128-byte buffer, got NULL");
    if (!lc_cuda_ctx_get()) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "dist_unique_id: no usable CUDA GPU");
    lc_status st = lc_nccl_require("dist_unique_id");
    if (st != LC_OK) return st;
    ncclUniqueId uid;
    ncclResult_t r = ncclGetUniqueId(&uid);
    if (r != ncclSuccess)
        return lc_error(LC_ERR_BACKEND, "dist_unique_id: NCCL error: %s: %s", ncclGetErrorString(r), ncclGetLastError(NULL));
    memcpy(id, &uid, sizeof uid);
    return LC_OK;
}

static lc_status lc_dist_check_timeout(const char *fn, double timeout_s) {
    if (!(timeout_s > 0) || !isfinite(timeout_s))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: timeout: expected a finite number of seconds > 0, got %g", fn,
                        timeout_s);
    return LC_OK;
}

static void lc_dist_free_buffers(lc_dist_comm_t *c) {
    (void)lc_cuda_ctx_get(); /* this thread's current device = the communicator's */
    if (c->done) cudaEventDestroy(c->done);
    if (c->dev_buf) cudaFree(c->dev_buf);
    if (c->host_buf) cudaFreeHost(c->host_buf);
    cudaGetLastError();
}

lc_status lc_dist_comm_init(const uint8_t id[LC_DIST_UNIQUE_ID_BYTES], int world_size, int rank, double timeout_s,
                            lc_dist_comm_t **out) {
    const char *fn = "dist_comm_init";
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", fn);
    *out = NULL;
    if (!id) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: id: expected the 128-byte unique id, got NULL", fn);
    if (world_size < 1) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: world_size: expected >= 1, got %d", fn, world_size);
    if (rank < 0 || rank >= world_size)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: rank: expected 0..%d (world_size %d), got %d", fn, world_size - 1,
                        world_size, rank);
    lc_status st = lc_dist_check_timeout(fn, timeout_s);
    if (st != LC_OK) return st;
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: no usable CUDA GPU", fn);
    if (lc_capture_active()) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: not while this thread captures a graph", fn);
    if ((st = lc_nccl_require(fn)) != LC_OK) return st;
    lc_dist_comm_t *c = calloc(1, sizeof *c);
    if (!c) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    c->rank = rank;
    c->size = world_size;
    c->device = ctx->device;
    c->timeout = timeout_s;
    const size_t bytes = (size_t)(world_size + 1) * LC_DIST_HEADER_MAX * sizeof(int64_t);
    st = lc_cuda_check(cudaMalloc((void **)&c->dev_buf, bytes), fn);
    if (st == LC_OK) st = lc_cuda_check(cudaMallocHost((void **)&c->host_buf, bytes), fn);
    if (st == LC_OK) st = lc_cuda_check(cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming), fn);
    if (st != LC_OK) {
        lc_dist_free_buffers(c);
        free(c);
        return st;
    }
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0; /* every wait is ours to bound */
    ncclResult_t r = ncclCommInitRankConfig(&c->nccl, world_size, uid, rank, &cfg);
    if (r != ncclSuccess && r != ncclInProgress) {
        st = c->nccl ? lc_dist_nccl_fail(c, "init", r)
                     : lc_error(LC_ERR_BACKEND, "dist: rank %d of %d: init: NCCL error: %s: %s", rank, world_size,
                                ncclGetErrorString(r), ncclGetLastError(NULL));
    } else {
        st = lc_dist_poll_nccl(c, "init (waiting for every rank to join)");
    }
    if (st != LC_OK) {
        lc_dist_abort_nccl(c);
        lc_dist_free_buffers(c);
        free(c);
        return st;
    }
    *out = c;
    return LC_OK;
}

void lc_dist_comm_abort(lc_dist_comm_t *c, const char *reason) {
    if (!c) return;
    if (!c->broken) {
        c->broken = 1;
        snprintf(c->error, sizeof c->error, "rank %d of %d: aborted: %.400s", c->rank, c->size,
                 reason && reason[0] ? reason : "by the caller");
    }
    lc_dist_abort_nccl(c);
}

lc_status lc_dist_comm_destroy(lc_dist_comm_t *c) {
    if (!c) return LC_OK;
    lc_status st = LC_OK;
    if (!c->broken && c->nccl) {
        /* this rank's work must finish (an error here is reported); finalize then waits for the peers to
         * finalize too: past the timeout nothing of ours is pending any more, so the communicator is just
         * aborted (its peers see that, as they would see this process exit) */
        st = lc_dist_wait(c);
        if (st == LC_OK) {
            ncclResult_t r = ncclCommFinalize(c->nccl);
            if ((r == ncclSuccess || r == ncclInProgress) && lc_dist_poll_raw(c) == ncclSuccess) {
                ncclCommDestroy(c->nccl);
                c->nccl = NULL;
            }
        }
    }
    lc_dist_abort_nccl(c);
    lc_dist_free_buffers(c);
    free(c);
    return st;
}

int lc_dist_comm_rank(const lc_dist_comm_t *c) { return c ? c->rank : -1; }
int lc_dist_comm_size(const lc_dist_comm_t *c) { return c ? c->size : 0; }
double lc_dist_comm_timeout(const lc_dist_comm_t *c) { return c ? c->timeout : 0.0; }
int lc_dist_comm_ok(const lc_dist_comm_t *c) { return c && !c->broken; }
const char *lc_dist_comm_error(const lc_dist_comm_t *c) { return c && c->broken ? c->error : ""; }

lc_status lc_dist_comm_set_timeout(lc_dist_comm_t *c, double timeout_s) {
    if (!c) return lc_error(LC_ERR_INVALID_ARGUMENT, "dist_set_timeout: comm: expected a process group, got NULL");
    lc_status st = lc_dist_check_timeout("dist_set_timeout", timeout_s);
    if (st == LC_OK) c->timeout = timeout_s;
    return st;
}

/* ---- collectives ------------------------------------------------------------------------------- */

/* The checks of an in-place collective on t: usable, the tensor; *dt and *s for the call. */
static lc_status lc_dist_prepare_one(const char *op, lc_dist_comm_t *c, lc_tensor_t *t, ncclDataType_t *dt,
                                     cudaStream_t *s) {
    lc_status st = lc_dist_usable(c, op);
    if (st == LC_OK) st = lc_dist_check_tensor(op, "t", t, 1, dt);
    const lc_tensor_t *ts[1] = {t};
    if (st == LC_OK) st = lc_dist_stream(op, ts, 1, s);
    return st;
}

lc_status lc_dist_all_reduce(lc_dist_comm_t *c, lc_tensor_t *t) {
    const char *op = "all_reduce";
    ncclDataType_t dt;
    cudaStream_t s = NULL;
    lc_status st = lc_dist_prepare_one(op, c, t, &dt, &s);
    if (st != LC_OK) return st;
    void *p = lc_tensor_data(t);
    return lc_dist_enqueued(c, op, ncclAllReduce(p, p, (size_t)lc_tensor_numel(t), dt, ncclSum, c->nccl, s));
}

/* The checks of a collective from t = in to out where one side is world_size times the other (all_gather: in
 * the small one, reduce_scatter: out): usable, both tensors, the shapes, the overlap; *dt and *s for the call. */
static lc_status lc_dist_prepare_pair(const char *op, lc_dist_comm_t *c, const lc_tensor_t *in, lc_tensor_t *out,
                                      int in_is_small, ncclDataType_t *dt, cudaStream_t *s) {
    ncclDataType_t dto;
    const lc_tensor_t *small = in_is_small ? in : out, *big = in_is_small ? out : in;
    const char *sname = in_is_small ? "t" : "out", *bname = in_is_small ? "out" : "t";
    lc_status st = lc_dist_usable(c, op);
    if (st == LC_OK) st = lc_dist_check_tensor(op, "t", in, 0, dt);
    if (st == LC_OK) st = lc_dist_check_tensor(op, "out", out, 1, &dto);
    if (st == LC_OK) st = lc_dist_check_pair(op, c, small, sname, big, bname);
    if (st == LC_OK) st = lc_dist_check_overlap(op, c, small, big);
    const lc_tensor_t *ts[2] = {in, out};
    if (st == LC_OK) st = lc_dist_stream(op, ts, 2, s);
    return st;
}

lc_status lc_dist_all_gather(lc_dist_comm_t *c, const lc_tensor_t *in, lc_tensor_t *out) {
    const char *op = "all_gather";
    ncclDataType_t dt;
    cudaStream_t s = NULL;
    lc_status st = lc_dist_prepare_pair(op, c, in, out, 1, &dt, &s);
    if (st != LC_OK) return st;
    return lc_dist_enqueued(c, op, ncclAllGather(lc_tensor_data(in), lc_tensor_data(out), (size_t)lc_tensor_numel(in),
                                                 dt, c->nccl, s));
}

lc_status lc_dist_reduce_scatter(lc_dist_comm_t *c, const lc_tensor_t *in, lc_tensor_t *out) {
    const char *op = "reduce_scatter";
    ncclDataType_t dt;
    cudaStream_t s = NULL;
    lc_status st = lc_dist_prepare_pair(op, c, in, out, 0, &dt, &s);
    if (st != LC_OK) return st;
    return lc_dist_enqueued(c, op, ncclReduceScatter(lc_tensor_data(in), lc_tensor_data(out),
                                                     (size_t)lc_tensor_numel(out), dt, ncclSum, c->nccl, s));
}

lc_status lc_dist_broadcast(lc_dist_comm_t *c, lc_tensor_t *t, int src) {
    const char *op = "broadcast";
    ncclDataType_t dt;
    cudaStream_t s = NULL;
    lc_status st = lc_dist_usable(c, op); /* before src: a destroyed communicator says so first */
    if (st == LC_OK && (src < 0 || src >= c->size))
        st = lc_error(LC_ERR_INVALID_ARGUMENT, "%s: src: expected a rank 0..%d, got %d", op, c->size - 1, src);
    if (st == LC_OK) st = lc_dist_prepare_one(op, c, t, &dt, &s);
    if (st != LC_OK) return st;
    void *p = lc_tensor_data(t);
    return lc_dist_enqueued(c, op, ncclBroadcast(p, p, (size_t)lc_tensor_numel(t), dt, src, c->nccl, s));
}

/* ---- host waits -------------------------------------------------------------------------------- */

static lc_status lc_dist_wait_named(lc_dist_comm_t *c, const char *what) {
    lc_status st = lc_dist_usable(c, what);
    if (st != LC_OK) return st;
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: no usable CUDA GPU", what);
    st = lc_cuda_capture_guard(what);
    if (st != LC_OK) return st;
    cudaError_t e = cudaEventRecord(c->done, lc_cuda_stream(ctx));
    if (e != cudaSuccess) return lc_dist_fail(c, "%s: cuda: %s", what, cudaGetErrorString(e));
    lc_counter_add(LC_COUNTER_SYNCS, 1);
    const double deadline = lc_dist_now() + c->timeout;
    long ns = 10000;
    for (;;) {
        e = cudaEventQuery(c->done);
        if (e == cudaSuccess) return LC_OK;
        if (e != cudaErrorNotReady) {
            cudaGetLastError();
            return lc_dist_fail(c, "%s: work on the GPU failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
        }
        ncclResult_t async = ncclSuccess;
        ncclResult_t r = ncclCommGetAsyncError(c->nccl, &async);
        if (r != ncclSuccess) return lc_dist_nccl_fail(c, what, r);
        if (async != ncclSuccess && async != ncclInProgress) return lc_dist_nccl_fail(c, what, async);
        if (lc_dist_now() > deadline) return lc_dist_timeout(c, what);
        lc_dist_nap(&ns);
    }
}

lc_status lc_dist_wait(lc_dist_comm_t *c) { return lc_dist_wait_named(c, "wait"); }

lc_status lc_dist_barrier(lc_dist_comm_t *c) {
    const char *op = "barrier";
    lc_status st = lc_dist_usable(c, op);
    if (st == LC_OK) st = lc_cuda_capture_guard(op);
    cudaStream_t s = NULL;
    if (st == LC_OK) st = lc_dist_stream(op, NULL, 0, &s);
    if (st != LC_OK) return st;
    st = lc_dist_enqueued(c, op, ncclAllReduce(c->dev_buf, c->dev_buf, 1, ncclInt64, ncclSum, c->nccl, s));
    return st == LC_OK ? lc_dist_wait_named(c, op) : st;
}

lc_status lc_dist_exchange_header(lc_dist_comm_t *c, const int64_t *mine, int n, int64_t *all) {
    const char *op = "exchange_header";
    lc_status st = lc_dist_usable(c, op);
    if (st != LC_OK) return st;
    if (!mine || !all) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: mine/all: expected buffers, got NULL", op);
    if (n < 1 || n > LC_DIST_HEADER_MAX)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: n: expected 1..%d, got %d", op, LC_DIST_HEADER_MAX, n);
    st = lc_cuda_capture_guard(op);
    cudaStream_t s = NULL;
    if (st == LC_OK) st = lc_dist_stream(op, NULL, 0, &s);
    if (st != LC_OK) return st;
    const size_t mine_bytes = (size_t)n * sizeof(int64_t), all_bytes = (size_t)c->size * mine_bytes;
    int64_t *dev_all = c->dev_buf + LC_DIST_HEADER_MAX, *host_all = c->host_buf + LC_DIST_HEADER_MAX;
    memcpy(c->host_buf, mine, mine_bytes);
    cudaError_t e = cudaMemcpyAsync(c->dev_buf, c->host_buf, mine_bytes, cudaMemcpyHostToDevice, s);
    if (e != cudaSuccess) return lc_dist_fail(c, "%s: cuda: %s", op, cudaGetErrorString(e));
    st = lc_dist_enqueued(c, op, ncclAllGather(c->dev_buf, dev_all, (size_t)n, ncclInt64, c->nccl, s));
    if (st != LC_OK) return st;
    e = cudaMemcpyAsync(host_all, dev_all, all_bytes, cudaMemcpyDeviceToHost, s);
    if (e != cudaSuccess) return lc_dist_fail(c, "%s: cuda: %s", op, cudaGetErrorString(e));
    st = lc_dist_wait_named(c, op);
    if (st == LC_OK) memcpy(all, host_all, all_bytes);
    return st;
}
