/* sdpa_mma_cuda.cu — entry points of the tensor-core (mma.sync, float32 accumulation) flash-attention
 * forwards: for float16/bfloat16, lc_cuda_sdpa_mma_fits (which lc_sdpa_args it computes exactly),
 * lc_cuda_launch_sdpa_mma and lc_cuda_sdpa_mma_set_variant (A/B benchmarking); for float32 (3xTF32, float32
 * accuracy), lc_cuda_sdpa_tf32_fits, lc_cuda_sdpa_tf32_blocks and lc_cuda_launch_sdpa_tf32 (variant from
 * LC_SDPA_TF32_VARIANT). A launch is one
 * kernel, no allocation, no sync, no host read of device data: graph capturable. The kernels are
 * sdpa_mma.cuh (instantiated per head_dim in sdpa_mma_d64.cu / sdpa_mma_d128.cu) and sdpa_tf32.cu.
 * Everything fits() refuses runs the generic kernel (sdpa_cuda.cu). Tests: tests/c/test_sdpa_mma.c (fits
 * checks on the host, kernels on a GPU), tests/python/test_sdpa_tf32.py. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/sdpa_mma.cuh"

/* d-stride 1, s/h/b strides >= 0 and multiples of 16 bytes (el = elements per 16 bytes), base 16-byte
 * aligned: every row start is 16-byte aligned, as the 16-byte cp.async loads and stores need. */
static int sdpa_mma_rows_ok(const void *ptr, const int64_t st[4], int el) {
    if (!ptr || ((uintptr_t)ptr & 15u) != 0 || st[3] != 1) return 0;
    for (int i = 0; i < 3; i++)
        if (st[i] < 0 || st[i] % el != 0) return 0;
    return 1;
}

/* The checks both tensor-core kernels share (el: elements per 16 bytes of the dtype). */
static int sdpa_tc_fits(const lc_sdpa_args *a, int el) {
    if (a->head_dim != 64 && a->head_dim != 128) return 0;
    if (a->mask_kind != LC_SDPA_MASK_NONE || a->plain_nonfinite) return 0;
    if (a->batch < 1 || a->heads < 1 || a->kv_heads < 1 || a->heads % a->kv_heads != 0) return 0;
    if (a->batch > INT32_MAX || a->heads > INT32_MAX) return 0;
    /* int row/key arithmetic in the kernel (row + L - sq, m0 + BM) stays far from overflow */
    if (a->sq < 1 || a->skv < 1 || a->sq > (1 << 28) || a->skv > (1 << 28)) return 0;
    /* 1-D grid of query tiles (>= 64 rows each) x batch·heads */
    if ((a->sq + 63) / 64 > INT32_MAX / a->batch / a->heads) return 0;
    if (a->key_lengths && a->key_lengths_dtype != LC_DTYPE_I32 && a->key_lengths_dtype != LC_DTYPE_I64) return 0;
    if (a->lse && ((uintptr_t)a->lse & 3u) != 0) return 0;
    if (a->window < 0 || a->window > (1 << 28)) return 0;
    return sdpa_mma_rows_ok(a->q, a->q_st, el) && sdpa_mma_rows_ok(a->k, a->k_st, el) &&
           sdpa_mma_rows_ok(a->v, a->v_st, el) && sdpa_mma_rows_ok(a->out, a->o_st, el);
}

#ifndef SDPA_MMA_QT_MAJOR_BYTES
#define SDPA_MMA_QT_MAJOR_BYTES (24 << 20)
#endif

/* Kernel variant per head_dim (64, 128) for lc_cuda_launch_sdpa_mma: -1 = the built-in default; set only by
 * lc_cuda_sdpa_mma_set_variant (A/B benchmarking). */
static int g_variant[2] = {-1, -1};

extern "C" int lc_cuda_sdpa_mma_fits(const lc_sdpa_args *a) {
    if (!a || (a->dtype != LC_DTYPE_F16 && a->dtype != LC_DTYPE_BF16)) return 0;
    return sdpa_tc_fits(a, 8);
}

/* The kernel parameters of a call both kernels share (n_qt, bh: set by the launcher of the configuration). */
static lc_sdpa_mma_params sdpa_tc_params(const lc_sdpa_args *a, int elem_bytes) {
    lc_sdpa_mma_params p;
    p.q = (const uint16_t *)a->q, p.k = (const uint16_t *)a->k, p.v = (const uint16_t *)a->v; /* raw */
    p.out = (uint16_t *)a->out;
    p.lse = a->lse;
    p.key_lengths = a->key_lengths;
    p.kl64 = a->key_lengths_dtype == LC_DTYPE_I64;
    p.q_sb = a->q_st[0], p.q_sh = a->q_st[1], p.q_ss = a->q_st[2];
    p.k_sb = a->k_st[0], p.k_sh = a->k_st[1], p.k_ss = a->k_st[2];
    p.v_sb = a->v_st[0], p.v_sh = a->v_st[1], p.v_ss = a->v_st[2];
    p.o_sb = a->o_st[0], p.o_sh = a->o_st[1], p.o_ss = a->o_st[2];
    p.heads = (int)a->heads;
    p.group = (int)(a->heads / a->kv_heads);
    p.sq = (int)a->sq, p.skv = (int)a->skv, p.causal = a->causal != 0;
    p.window = (int)a->window;
    p.n_qt = 0, p.bh = 0;
    /* causal: with all k and v within SDPA_MMA_QT_MAJOR_BYTES (well inside an H100's 50 MB L2), order
     * blocks tile-major so every head's heaviest tiles start first (short sequences: one wave, balance is all) */
    const double kv_bytes = 2.0 * elem_bytes * (double)a->batch * (double)a->kv_heads * (double)a->skv * (double)a->head_dim;
    p.qt_major = a->causal && kv_bytes <= (double)SDPA_MMA_QT_MAJOR_BYTES;
    p.scale_log2 = a->scale * 1.4426950408889634f;
    return p;
}

extern "C" cudaError_t lc_cuda_launch_sdpa_mma(const lc_sdpa_args *a, cudaStream_t stream, const char **path) {
    if (!lc_cuda_sdpa_mma_fits(a)) return cudaErrorInvalidValue;
    const lc_sdpa_mma_params p = sdpa_tc_params(a, 2);
    const int bf16 = a->dtype == LC_DTYPE_BF16;
    const int64_t bh = a->batch * a->heads;
    return a->head_dim == 64 ? lc_sdpa_mma_launch_d64(p, bf16, __atomic_load_n(&g_variant[0], __ATOMIC_RELAXED), bh, stream, path)
                             : lc_sdpa_mma_launch_d128(p, bf16, __atomic_load_n(&g_variant[1], __ATOMIC_RELAXED), bh, stream, path);
}

extern "C" int lc_cuda_sdpa_mma_set_variant(int64_t head_dim, int variant) {
    if (head_dim != 64 && head_dim != 128) return -1;
    const int n = head_dim == 64 ? lc_sdpa_mma_variants_d64() : lc_sdpa_mma_variants_d128();
    if (variant < -1 || variant >= n) return -1;
    __atomic_store_n(&g_variant[head_dim == 128], variant, __ATOMIC_RELAXED);
    return n;
}

/* float32 on tensor cores (sdpa_tf32.cu): head_dim 64 / 128, no window. */
extern "C" int lc_cuda_sdpa_tf32_fits(const lc_sdpa_args *a) {
    if (!a || a->dtype != LC_DTYPE_F32 || a->window != 0) return 0;
    return sdpa_tc_fits(a, 4);
}

extern "C" int64_t lc_cuda_sdpa_tf32_blocks(const lc_sdpa_args *a) {
    int rows = 64;
    lc_sdpa_tf32_pick((int)a->head_dim, a->causal != 0, a->sq, &rows);
    return (a->sq + rows - 1) / rows * a->batch * a->heads;
}

/* LC_SDPA_TF32_VARIANT=<index> (read at each call; A/B runs and tests): a variant of sdpa_tf32.cu's list, which
 * must be of the call's head_dim (else the launch fails with cudaErrorInvalidValue); unset: the default. */
extern "C" cudaError_t lc_cuda_launch_sdpa_tf32(const lc_sdpa_args *a, cudaStream_t stream, const char **path) {
    if (!lc_cuda_sdpa_tf32_fits(a)) return cudaErrorInvalidValue;
    const char *e = getenv("LC_SDPA_TF32_VARIANT");
    int variant = -1;
    if (e && *e) {
        char *end = NULL;
        const long v = strtol(e, &end, 10);
        if (*end != '\0' || v < 0 || v >= lc_sdpa_tf32_variants()) return cudaErrorInvalidValue;
        variant = (int)v;
    }
    return lc_sdpa_tf32_launch(sdpa_tc_params(a, 4), (int)a->head_dim, variant, a->batch * a->heads, stream, path);
}
