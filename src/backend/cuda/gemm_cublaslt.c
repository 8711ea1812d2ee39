/* gemm_cublaslt.c — lc_cuda_gemm (see gemm_cublaslt.h). Row-major c = a·b is computed as the
 * column-major product cᵀ[n,m] = bᵀ[n,k] · aᵀ[k,m]: the same memory, no transposes, and the bias of
 * the epilogue is per column of c (per output feature). With b_t (b given as bᵀ [n, k] contiguous, torch's
 * Linear layout) the first operand is that array read transposed (CUBLASLT_MATMUL_DESC_TRANSA = T). The chosen
 * algorithm is cached in process per (m, k, n, dtype, precision, epilogue, c dtype, b_t), so a repeated shape
 * costs one descriptor set-up only.
 *
 * Autotuning (include/lightning_core/tune.h): for m·k·n >= LC_GEMM_TUNE_MIN_WORK the first call of a
 * shape asks cuBLASLt for its top LC_GEMM_TUNE_ALGOS heuristic algorithms, times each on the real
 * operands with events on the backend stream (one warm-up, then LC_GEMM_TUNE_REPS runs), keeps the
 * fastest (and leaves its result in c), and stores its heuristic rank in the tune cache (mode
 * "algo=<rank>", key "matmul|cuda|<dtype>|m=..,k=..,n=..|prec=..|ep=..|gpu=<name>-sm<cc>|lt=<cuBLASLt
 * version>"), which later processes read back through the same heuristic query. Tuning waits for the
 * stream; it never runs while the stream is being captured into a CUDA graph (the heuristic's first
 * choice is used, not cached, and nothing waits). float16/bfloat16 operands (and bias, and c) accumulate in
 * float32 (CUBLAS_COMPUTE_32F, float32 alpha/beta); the bias of an epilogue is in c's dtype (cuBLASLt's
 * default bias type). With 16-bit c cuBLASLt rounds the product to c's dtype before it adds the bias (H100,
 * commit 52bcae9, session 31), so the 16-bit linear applies its bias itself: lc_cuda_gemm_ex stores c as float32 for 16-bit
 * operands, finished by an own kernel; lc_cuda_gemm_residual's C (beta 1) is added to the float32 sums, one
 * rounding. *path: "cublaslt_<f32|tf32|f64|f16|bf16>", with "_algo<r>"
 * appended when the tuned winner is not the heuristic's first choice.
 * Tests: tests/c/test_ops.c, tests/python/test_ops_matmul.py and test_tuning.py on "cuda". */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/cuda_graph.h"
#include "backend/cuda/gemm_cublaslt.h"
#include "core/internal.h"
#include "core/tune_cache.h"
#include "lightning_core/runtime.h"

#define LC_GEMM_CACHE_SIZE 256
/* Heuristic algorithms timed per shape, the timed runs of each, and the least m·k·n worth tuning
 * (256^3: a few µs of GPU time per run; smaller calls keep the heuristic's first choice). */
#define LC_GEMM_TUNE_ALGOS 4
#define LC_GEMM_TUNE_REPS 3
#define LC_GEMM_TUNE_MIN_WORK (256.0 * 256.0 * 256.0)

typedef struct lc_gemm_key {
    int64_t m, k, n;
    int dtype, precision, epilogue, c_dtype, b_t, res;
} lc_gemm_key;

typedef struct lc_gemm_entry {
    lc_gemm_key key;
    int valid;
    unsigned gen; /* lc_tune_generation() when chosen: a reset or an autotune switch drops the entry */
    int rank;     /* position of algo in the heuristic's list */
    cublasLtMatmulAlgo_t algo;
} lc_gemm_entry;

static struct {
    pthread_mutex_t mu;
    lc_gemm_entry entries[LC_GEMM_CACHE_SIZE];
} lc_gemm_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static lc_status lc_lt_check(cublasStatus_t st, const char *what) {
    if (st == CUBLAS_STATUS_SUCCESS) return LC_OK;
    if (st == CUBLAS_STATUS_ALLOC_FAILED)
        return lc_error(LC_ERR_OUT_OF_MEMORY, "matmul: cublasLt: %s: out of memory", what);
    return lc_error(LC_ERR_BACKEND, "matmul: cublasLt: %s failed (status %d)", what, (int)st);
}

static size_t lc_gemm_slot(const lc_gemm_key *key) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)key;
    for (size_t i = 0; i < sizeof *key; i++) h = (h ^ p[i]) * 1099511628211ull;
    return (size_t)(h % LC_GEMM_CACHE_SIZE);
}

static const cublasLtEpilogue_t lc_lt_epilogues[LC_GEMM_EPILOGUE_COUNT] = {
    CUBLASLT_EPILOGUE_DEFAULT, CUBLASLT_EPILOGUE_RELU,      CUBLASLT_EPILOGUE_GELU,
    CUBLASLT_EPILOGUE_BIAS,    CUBLASLT_EPILOGUE_RELU_BIAS, CUBLASLT_EPILOGUE_GELU_BIAS};

static int lc_epilogue_has_bias(lc_gemm_epilogue e) { return e >= LC_GEMM_EPILOGUE_BIAS; }

static const char *const lc_lt_epilogue_names[LC_GEMM_EPILOGUE_COUNT] = {"none", "relu", "gelu_tanh",
                                                                          "bias", "bias_relu", "bias_gelu_tanh"};

/* Kernel path per variant (f32, tf32, f64, f16, bf16) and heuristic rank. */
static const char *const lc_gemm_paths[5][LC_GEMM_TUNE_ALGOS] = {
    {"cublaslt_f32", "cublaslt_f32_algo1", "cublaslt_f32_algo2", "cublaslt_f32_algo3"},
    {"cublaslt_tf32", "cublaslt_tf32_algo1", "cublaslt_tf32_algo2", "cublaslt_tf32_algo3"},
    {"cublaslt_f64", "cublaslt_f64_algo1", "cublaslt_f64_algo2", "cublaslt_f64_algo3"},
    {"cublaslt_f16", "cublaslt_f16_algo1", "cublaslt_f16_algo2", "cublaslt_f16_algo3"},
    {"cublaslt_bf16", "cublaslt_bf16_algo1", "cublaslt_bf16_algo2", "cublaslt_bf16_algo3"},
};
static const char *const lc_gemm_variant_names[5] = {"f32", "f32", "f64", "f16", "bf16"};

/* "<device name>-sm<major><minor>" of the current device, once: heuristic ranks are only comparable on
 * the same GPU model (and cuBLASLt version, also in the key). */
static char lc_gemm_gpu[64] = "unknown";
static pthread_once_t lc_gemm_gpu_once = PTHREAD_ONCE_INIT;

static void lc_gemm_gpu_init(void) {
    int dev = 0;
    struct cudaDeviceProp prop;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return;
    }
    char name[40];
    size_t n = 0;
    for (; prop.name[n] && n + 1 < sizeof name; n++) {
        const char c = prop.name[n];
        name[n] = ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-') ? c : '_';
    }
    name[n] = '\0';
    snprintf(lc_gemm_gpu, sizeof lc_gemm_gpu, "%s-sm%d%d", name, prop.major, prop.minor);
}

/* 1 when the stream is being captured into a graph (or the query fails: then nothing may wait either). */
static int lc_gemm_capturing(cudaStream_t stream) {
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream, &cs) != cudaSuccess) {
        (void)cudaGetLastError();
        return 1;
    }
    return cs != cudaStreamCaptureStatusNone;
}

typedef struct lc_gemm_call {
    const lc_cuda_ctx *ctx;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    const void *alpha, *beta;
    const lc_matmul_args *args;
    const void *cin; /* cuBLASLt's C (beta 1): a residual, or args->c (beta 0) */
} lc_gemm_call;

/* One cublasLtMatmul enqueue at a time: an algorithm may be several kernels (e.g. split-K partial sums in the
 * one shared workspace, then their reduction), and two host threads enqueueing on the one stream at once
 * would interleave them (thread A's partials overwritten by thread B's before A's reduction runs: seen on the
 * H100 as wrong float32 results of two ranks of a ThreadGroup, 2026-12-06). Held, the calls' kernels land
 * contiguously in the stream, so the workspace is used by one GEMM at a time in stream order. */
static pthread_mutex_t lc_lt_enqueue_mu = PTHREAD_MUTEX_INITIALIZER;

static cublasStatus_t lc_gemm_enqueue(const lc_gemm_call *g, const cublasLtMatmulAlgo_t *algo) {
    pthread_mutex_lock(&lc_lt_enqueue_mu);
    const cublasStatus_t st = cublasLtMatmul(g->ctx->lt, g->desc, g->alpha, g->args->b, g->la, g->args->a, g->lb, g->beta,
                                             g->cin, g->lc, g->args->c, g->lc, algo, g->ctx->lt_workspace,
                                             g->ctx->lt_workspace_bytes, lc_cuda_stream(g->ctx));
    pthread_mutex_unlock(&lc_lt_enqueue_mu);
    return st;
}

typedef struct lc_gemm_candidate {
    const lc_gemm_call *g;
    const cublasLtMatmulAlgo_t *algo;
} lc_gemm_candidate;

static int lc_gemm_enqueue_candidate(void *user) {
    const lc_gemm_candidate *c = user;
    return (int)lc_gemm_enqueue(c->g, c->algo);
}

/* Times the `found` heuristic algorithms (lc_cuda_time_enqueues: warm-up + LC_GEMM_TUNE_REPS runs each,
 * device timer on the stream) and leaves the fastest one's result in c. Returns its rank in *rank and ms
 * per run in *ms; an algorithm that fails to run is skipped (LC_ERR_BACKEND when all do). */
static lc_status lc_gemm_tune(const lc_gemm_call *g, const cublasLtMatmulHeuristicResult_t *res, int found, int *rank,
                              double *ms) {
    lc_status st = LC_OK;
    int best = -1, last = -1;
    double best_ms = INFINITY;
    for (int i = 0; i < found && st == LC_OK; i++) {
        lc_gemm_candidate cand = {g, &res[i].algo};
        double t = INFINITY;
        int failed = 0;
        st = lc_cuda_time_enqueues(LC_GEMM_TUNE_REPS, lc_gemm_enqueue_candidate, &cand, &t, &failed);
        if (st != LC_OK || failed) continue;
        last = i;
        if (t < best_ms) {
            best_ms = t;
            best = i;
        }
    }
    if (st != LC_OK) return st;
    if (best < 0) return lc_error(LC_ERR_BACKEND, "matmul: cublasLt: no heuristic algorithm ran for this shape");
    if (last != best) st = lc_lt_check(lc_gemm_enqueue(g, &res[best].algo), "matmul");
    *rank = best;
    *ms = best_ms;
    return st;
}

static lc_status lc_gemm_run(const lc_matmul_args *args, lc_dtype c_dtype, const void *bias, lc_gemm_epilogue epilogue,
                             const void *residual, const char **path);

lc_status lc_cuda_gemm(const lc_matmul_args *args, const void *bias, lc_gemm_epilogue epilogue, const char **path) {
    return lc_gemm_run(args, args->dtype, bias, epilogue, NULL, path);
}

lc_status lc_cuda_gemm_ex(const lc_matmul_args *args, lc_dtype c_dtype, const void *bias, lc_gemm_epilogue epilogue,
                          const char **path) {
    return lc_gemm_run(args, c_dtype, bias, epilogue, NULL, path);
}

lc_status lc_cuda_gemm_residual(const lc_matmul_args *args, const void *residual, const char **path) {
    return lc_gemm_run(args, args->dtype, NULL, LC_GEMM_EPILOGUE_NONE, residual, path);
}

static lc_status lc_gemm_run(const lc_matmul_args *args, lc_dtype c_dtype, const void *bias, lc_gemm_epilogue epilogue,
                             const void *residual, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "matmul: cuda: no usable GPU");
    if ((int)epilogue < 0 || epilogue >= LC_GEMM_EPILOGUE_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "matmul: epilogue: unknown code %d", (int)epilogue);
    if (lc_epilogue_has_bias(epilogue) && !bias)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "matmul: bias: expected a bias vector for this epilogue, got NULL");
    const int f64 = args->dtype == LC_DTYPE_F64, half = args->dtype == LC_DTYPE_F16, bf16 = args->dtype == LC_DTYPE_BF16;
    if (!f64 && !half && !bf16 && args->dtype != LC_DTYPE_F32)
        return lc_error(LC_ERR_DTYPE, "matmul: cuda: expected float32, float64, float16 or bfloat16, got %s",
                        lc_dtype_name(args->dtype));
    const int c_f32 = c_dtype != args->dtype; /* 16-bit operands, float32 c */
    if (c_f32 && (!(half || bf16) || c_dtype != LC_DTYPE_F32 || lc_epilogue_has_bias(epilogue)))
        return lc_error(LC_ERR_INTERNAL, "matmul: cuda: c dtype %s with %s operands (epilogue %d) is not a GEMM variant",
                        lc_dtype_name(c_dtype), lc_dtype_name(args->dtype), (int)epilogue);
    const int tf32 = args->dtype == LC_DTYPE_F32 && lc_get_matmul_precision() == LC_PRECISION_TF32;
    /* Storage type of a, b, c (and bias); 16-bit inputs accumulate in float32 with float32 alpha/beta. */
    const cudaDataType_t dt = f64 ? CUDA_R_64F : half ? CUDA_R_16F : bf16 ? CUDA_R_16BF : CUDA_R_32F;
    const cudaDataType_t scale = f64 ? CUDA_R_64F : CUDA_R_32F;
    const cublasComputeType_t compute = f64 ? CUBLAS_COMPUTE_64F : (tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
    const int variant = f64 ? 2 : tf32 ? 1 : half ? 3 : bf16 ? 4 : 0; /* lc_gemm_paths row */
    if (args->m > INT32_MAX || args->k > INT32_MAX || args->n > INT32_MAX)
        return lc_error(LC_ERR_UNSUPPORTED, "matmul: cuda: dimensions above 2^31-1 are not supported");
    const uint64_t M = (uint64_t)args->n, N = (uint64_t)args->m, K = (uint64_t)args->k; /* column-major view */

    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lcl = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    lc_status st = lc_lt_check(cublasLtMatmulDescCreate(&desc, compute, scale), "descriptor");
    if (st == LC_OK) {
        cublasLtEpilogue_t ep = lc_lt_epilogues[epilogue];
        st = lc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep), "epilogue");
    }
    if (st == LC_OK && lc_epilogue_has_bias(epilogue))
        st = lc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                         "bias pointer");
    /* A_cm = b (M x K, ld n; b_t: bᵀ stored as K x M, ld k, read transposed), B_cm = a (K x N, ld k),
     * C_cm = c (M x N, ld n). */
    if (st == LC_OK && args->b_t) {
        const int32_t op_t = CUBLAS_OP_T;
        st = lc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof op_t), "transa");
    }
    if (st == LC_OK)
        st = lc_lt_check(args->b_t ? cublasLtMatrixLayoutCreate(&la, dt, K, M, (int64_t)K)
                                   : cublasLtMatrixLayoutCreate(&la, dt, M, K, (int64_t)M),
                         "layout b");
    if (st == LC_OK) st = lc_lt_check(cublasLtMatrixLayoutCreate(&lb, dt, K, N, (int64_t)K), "layout a");
    if (st == LC_OK) st = lc_lt_check(cublasLtMatrixLayoutCreate(&lcl, c_f32 ? CUDA_R_32F : dt, M, N, (int64_t)M), "layout c");

    lc_gemm_key key;
    memset(&key, 0, sizeof key); /* padding bytes take part in the hash */
    key.m = args->m;
    key.k = args->k;
    key.n = args->n;
    key.dtype = (int)args->dtype;
    key.precision = tf32;
    key.epilogue = (int)epilogue;
    key.c_dtype = (int)c_dtype;
    key.b_t = args->b_t != 0;
    key.res = residual != NULL;
    const size_t slot = lc_gemm_slot(&key);
    const unsigned gen = lc_tune_generation();
    cublasLtMatmulAlgo_t algo;
    int have_algo = 0, rank = 0, done = 0;
    pthread_mutex_lock(&lc_gemm_cache.mu);
    const lc_gemm_entry *hit = &lc_gemm_cache.entries[slot];
    if (hit->valid && hit->gen == gen && memcmp(&hit->key, &key, sizeof key) == 0) {
        algo = hit->algo;
        rank = hit->rank;
        have_algo = 1;
    }
    pthread_mutex_unlock(&lc_gemm_cache.mu);

    const double one64 = 1.0, zero64 = 0.0;
    const float one32 = 1.0f, zero32 = 0.0f;
    const void *const one = f64 ? (const void *)&one64 : (const void *)&one32;
    const lc_gemm_call call = {ctx, desc, la, lb, lcl, one, residual ? one : f64 ? (const void *)&zero64 : (const void *)&zero32,
                               args, residual ? residual : args->c};
    if (st == LC_OK && !have_algo) {
        cublasLtMatmulHeuristicResult_t results[LC_GEMM_TUNE_ALGOS];
        int found = 0;
        const double work = (double)args->m * (double)args->k * (double)args->n;
        /* not with c = residual (in place): each timed run would add the product again */
        const int tunable = lc_get_autotune() && work >= LC_GEMM_TUNE_MIN_WORK && residual != args->c;
        st = lc_lt_check(cublasLtMatmulPreferenceCreate(&pref), "preference");
        if (st == LC_OK)
            st = lc_lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                   &ctx->lt_workspace_bytes, sizeof ctx->lt_workspace_bytes),
                             "workspace preference");
        if (st == LC_OK && (half || bf16)) {
            /* Split-K partial sums are added in float32, never in the 16-bit output type (that would round
             * every partial sum: seen on the H100 at k = 1031 as ~2x the one-rounding bound). */
            const uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
            st = lc_lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                                   &schemes, sizeof schemes),
                             "reduction scheme preference");
        }
        if (st == LC_OK)
            st = lc_lt_check(cublasLtMatmulAlgoGetHeuristic(ctx->lt, desc, la, lb, lcl, lcl, pref,
                                                            tunable ? LC_GEMM_TUNE_ALGOS : 1, results, &found),
                             "heuristic");
        if (st == LC_OK && found < 1)
            st = lc_error(LC_ERR_UNSUPPORTED, "matmul: cublasLt found no algorithm for %lldx%lldx%lld",
                          (long long)args->m, (long long)args->k, (long long)args->n);
        int cache_it = 1;
        if (st == LC_OK && tunable && found > 1) {
            char tkey[LC_TUNE_KEY_MAX], mode[LC_TUNE_MODE_MAX];
            pthread_once(&lc_gemm_gpu_once, lc_gemm_gpu_init);
            snprintf(tkey, sizeof tkey, "matmul|cuda|%s%s%s%s|m=%lld,k=%lld,n=%lld|prec=%s|ep=%s|gpu=%s|lt=%zu",
                     lc_gemm_variant_names[variant], c_f32 ? "_c32" : "", args->b_t ? "_bt" : "", residual ? "_res" : "", (long long)args->m, (long long)args->k, (long long)args->n,
                     tf32 ? "tf32" : "highest", lc_lt_epilogue_names[epilogue], lc_gemm_gpu, cublasLtGetVersion());
            int stored = -1, used = 0;
            if (lc_tune_lookup(tkey, mode, sizeof mode, NULL) && sscanf(mode, "algo=%d%n", &stored, &used) == 1 &&
                mode[used] == '\0' && stored >= 0 && stored < found) {
                rank = stored;
            } else if (lc_gemm_capturing(lc_cuda_stream(ctx))) {
                cache_it = 0; /* heuristic's first choice now; tune at a call outside the capture */
            } else {
                double ms = 0.0;
                st = lc_gemm_tune(&call, results, found, &rank, &ms);
                if (st == LC_OK) {
                    snprintf(mode, sizeof mode, "algo=%d", rank);
                    (void)lc_tune_store(tkey, mode, ms);
                    done = 1;
                }
            }
        }
        if (st == LC_OK) {
            algo = results[rank].algo;
            have_algo = 1;
            if (cache_it) {
                pthread_mutex_lock(&lc_gemm_cache.mu);
                lc_gemm_cache.entries[slot] = (lc_gemm_entry){key, 1, gen, rank, algo};
                pthread_mutex_unlock(&lc_gemm_cache.mu);
            }
        }
    }
    if (st == LC_OK && !done)
        st = lc_lt_check(lc_gemm_enqueue(&call, have_algo ? &algo : NULL), "matmul");
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lcl) cublasLtMatrixLayoutDestroy(lcl);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (st == LC_OK && path) *path = lc_gemm_paths[variant][rank];
    return st;
}
