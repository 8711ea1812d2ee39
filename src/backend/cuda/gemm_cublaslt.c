/* gemm_cublaslt.c — lc_cuda_gemm (see gemm_cublaslt.h). Row-major c = a·b is computed as the
 * column-major product cᵀ[n,m] = bᵀ[n,k] · aᵀ[k,m]: the same memory, no transposes, and the bias of
 * the epilogue is per column of c (per output feature). Heuristic results are cached per
 * (m, k, n, dtype, precision, epilogue), so a repeated shape costs one descriptor set-up only.
 * Tests: tests/c/test_ops.c, tests/python/test_ops_matmul.py on "cuda". */
#include <pthread.h>
#include <string.h>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/gemm_cublaslt.h"
#include "core/internal.h"
#include "lightning_core/runtime.h"

#define LC_GEMM_CACHE_SIZE 256

typedef struct lc_gemm_key {
    int64_t m, k, n;
    int dtype, precision, epilogue;
} lc_gemm_key;

typedef struct lc_gemm_entry {
    lc_gemm_key key;
    int valid;
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

lc_status lc_cuda_gemm(const lc_matmul_args *args, const void *bias, lc_gemm_epilogue epilogue, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "matmul: cuda: no usable GPU");
    if ((int)epilogue < 0 || epilogue >= LC_GEMM_EPILOGUE_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "matmul: epilogue: unknown code %d", (int)epilogue);
    if (lc_epilogue_has_bias(epilogue) && !bias)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "matmul: bias: expected a bias vector for this epilogue, got NULL");
    const int f64 = args->dtype == LC_DTYPE_F64;
    const int tf32 = !f64 && lc_get_matmul_precision() == LC_PRECISION_TF32;
    const cudaDataType_t dt = f64 ? CUDA_R_64F : CUDA_R_32F;
    const cublasComputeType_t compute = f64 ? CUBLAS_COMPUTE_64F : (tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
    if (args->m > INT32_MAX || args->k > INT32_MAX || args->n > INT32_MAX)
        return lc_error(LC_ERR_UNSUPPORTED, "matmul: cuda: dimensions above 2^31-1 are not supported");
    const uint64_t M = (uint64_t)args->n, N = (uint64_t)args->m, K = (uint64_t)args->k; /* column-major view */

    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lcl = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    lc_status st = lc_lt_check(cublasLtMatmulDescCreate(&desc, compute, dt), "descriptor");
    if (st == LC_OK) {
        cublasLtEpilogue_t ep = lc_lt_epilogues[epilogue];
        st = lc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep), "epilogue");
    }
    if (st == LC_OK && lc_epilogue_has_bias(epilogue))
        st = lc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                         "bias pointer");
    /* A_cm = b (M x K, ld n), B_cm = a (K x N, ld k), C_cm = c (M x N, ld n). */
    if (st == LC_OK) st = lc_lt_check(cublasLtMatrixLayoutCreate(&la, dt, M, K, (int64_t)M), "layout b");
    if (st == LC_OK) st = lc_lt_check(cublasLtMatrixLayoutCreate(&lb, dt, K, N, (int64_t)K), "layout a");
    if (st == LC_OK) st = lc_lt_check(cublasLtMatrixLayoutCreate(&lcl, dt, M, N, (int64_t)M), "layout c");

    lc_gemm_key key;
    memset(&key, 0, sizeof key); /* padding bytes take part in the hash */
    key.m = args->m;
    key.k = args->k;
    key.n = args->n;
    key.dtype = (int)args->dtype;
    key.precision = tf32;
    key.epilogue = (int)epilogue;
    const size_t slot = lc_gemm_slot(&key);
    cublasLtMatmulAlgo_t algo;
    int have_algo = 0;
    pthread_mutex_lock(&lc_gemm_cache.mu);
    if (lc_gemm_cache.entries[slot].valid && memcmp(&lc_gemm_cache.entries[slot].key, &key, sizeof key) == 0) {
        algo = lc_gemm_cache.entries[slot].algo;
        have_algo = 1;
    }
    pthread_mutex_unlock(&lc_gemm_cache.mu);
    if (st == LC_OK && !have_algo) {
        cublasLtMatmulHeuristicResult_t result;
        int found = 0;
        st = lc_lt_check(cublasLtMatmulPreferenceCreate(&pref), "preference");
        if (st == LC_OK)
            st = lc_lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                   &ctx->lt_workspace_bytes, sizeof ctx->lt_workspace_bytes),
                             "workspace preference");
        if (st == LC_OK)
            st = lc_lt_check(cublasLtMatmulAlgoGetHeuristic(ctx->lt, desc, la, lb, lcl, lcl, pref, 1, &result, &found),
                             "heuristic");
        if (st == LC_OK && found < 1)
            st = lc_error(LC_ERR_UNSUPPORTED, "matmul: cublasLt found no algorithm for %lldx%lldx%lld",
                          (long long)args->m, (long long)args->k, (long long)args->n);
        if (st == LC_OK) {
            algo = result.algo;
            have_algo = 1;
            pthread_mutex_lock(&lc_gemm_cache.mu);
            lc_gemm_cache.entries[slot] = (lc_gemm_entry){key, 1, algo};
            pthread_mutex_unlock(&lc_gemm_cache.mu);
        }
    }
    if (st == LC_OK) {
        const double one64 = 1.0, zero64 = 0.0;
        const float one32 = 1.0f, zero32 = 0.0f;
        const void *alpha = f64 ? (const void *)&one64 : (const void *)&one32;
        const void *beta = f64 ? (const void *)&zero64 : (const void *)&zero32;
        st = lc_lt_check(cublasLtMatmul(ctx->lt, desc, alpha, args->b, la, args->a, lb, beta, args->c, lcl, args->c, lcl,
                                        have_algo ? &algo : NULL, ctx->lt_workspace, ctx->lt_workspace_bytes,
                                        ctx->stream),
                         "matmul");
    }
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lcl) cublasLtMatrixLayoutDestroy(lcl);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (st == LC_OK && path) *path = f64 ? "cublaslt_f64" : (tf32 ? "cublaslt_tf32" : "cublaslt_f32");
    return st;
}
