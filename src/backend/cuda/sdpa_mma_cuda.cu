/* sdpa_mma_cuda.cu — entry points of the tensor-core (mma.sync, float32 accumulation) flash-attention forward
 * for float16/bfloat16: lc_cuda_sdpa_mma_fits (which lc_sdpa_args it computes exactly) and
 * lc_cuda_launch_sdpa_mma (one kernel launch, no allocation, no sync, no host read of device data: graph
 * capturable), and lc_cuda_sdpa_mma_set_variant (which kernel variant later launches use: A/B benchmarking).
 * The kernel is sdpa_mma.cuh, instantiated per head_dim in sdpa_mma_d64.cu / sdpa_mma_d128.cu.
 * Everything fits() refuses runs the generic kernel (sdpa_cuda.cu). Tests: tests/c/test_sdpa_mma.c (GPU). */
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/sdpa_mma.cuh"

/* d-stride 1, s/h/b strides >= 0 and multiples of 8 elements, base 16-byte aligned: every row start is
 * 16-byte aligned, as the 16-byte cp.async loads and stores need. */
static int sdpa_mma_rows_ok(const void *ptr, const int64_t st[4]) {
    if (!ptr || ((uintptr_t)ptr & 15u) != 0 || st[3] != 1) return 0;
    for (int i = 0; i < 3; i++)
        if (st[i] < 0 || st[i] % 8 != 0) return 0;
    return 1;
}

#ifndef SDPA_MMA_QT_MAJOR_BYTES
#define SDPA_MMA_QT_MAJOR_BYTES (24 << 20)
#endif

/* Kernel variant per head_dim (64, 128) for lc_cuda_launch_sdpa_mma: -1 = the built-in default; set only by
 * lc_cuda_sdpa_mma_set_variant (A/B benchmarking). */
static int g_variant[2] = {-1, -1};

extern "C" int lc_cuda_sdpa_mma_fits(const lc_sdpa_args *a) {
    if (!a) return 0;
    if (a->dtype != LC_DTYPE_F16 && a->dtype != LC_DTYPE_BF16) return 0;
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
    return sdpa_mma_rows_ok(a->q, a->q_st) && sdpa_mma_rows_ok(a->k, a->k_st) && sdpa_mma_rows_ok(a->v, a->v_st) &&
           sdpa_mma_rows_ok(a->out, a->o_st);
}

extern "C" cudaError_t lc_cuda_launch_sdpa_mma(const lc_sdpa_args *a, cudaStream_t stream, const char **path) {
    if (!lc_cuda_sdpa_mma_fits(a)) return cudaErrorInvalidValue;
    lc_sdpa_mma_params p;
    p.q = (const uint16_t *)a->q, p.k = (const uint16_t *)a->k, p.v = (const uint16_t *)a->v; /* 16-bit */
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
    p.n_qt = 0, p.bh = 0; /* set by the launcher of the configuration */
    /* causal: with all k and v (16-bit) within SDPA_MMA_QT_MAJOR_BYTES (well inside an H100's 50 MB L2), order
     * blocks tile-major so every head's heaviest tiles start first (short sequences: one wave, balance is all) */
    const double kv_bytes = 4.0 * (double)a->batch * (double)a->kv_heads * (double)a->skv * (double)a->head_dim;
    p.qt_major = a->causal && kv_bytes <= (double)SDPA_MMA_QT_MAJOR_BYTES;
    p.scale_log2 = a->scale * 1.4426950408889634f;
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
