/* sdpa_mma_d64.cu — head_dim 64 instantiations of the tensor-core flash-attention forward (sdpa_mma.cuh:
 * kernel, fragment layouts, pipeline). Variants (runtime A/B through lc_cuda_sdpa_mma_set_variant, default
 * SDPA_MMA_D64_VARIANT); columns: keys per tile BN, warps NW, 16-row m-tiles per warp MT (block rows
 * 16·NW·MT), Q fragments in registers, F_* feature bits, resident blocks per SM asked of ptxas.
 * Entry: lc_cuda_launch_sdpa_mma (sdpa_mma_cuda.cu). Tests: tests/c/test_sdpa_mma.c. */
#define LC_SDPA_MMA_KERNEL 1
#include "sdpa_mma.cuh"

#ifndef SDPA_MMA_D64_VARIANT
#define SDPA_MMA_D64_VARIANT 3 /* H100 2026-12-05: 286 vs 269 TFLOP/s (variant 1) at S=4096, causal 215 vs 205 */
#endif

using namespace lc_sdpa_mma;
/* index, name, BN, NW, MT, QREG, FL, MINB */
#define SDPA_MMA_D64_LIST(X)                                                                                   \
    X(0, "m64w4q", 64, 4, 1, true, 0, 3)                  /* the first kernel: 64 rows, Q in registers */     \
    X(1, "m128w4q", 64, 4, 2, true, F_ALL, 2)             /* 128 rows: 2 m-tiles per warp */                  \
    X(2, "m128w4qb2", 64, 4, 2, true, F_ALL & ~F_ONEBAR, 2) /* variant 1 with two barriers per tile */       \
    X(3, "m128w4n128", 128, 4, 2, false, F_ALL, 2)        /* 128 rows x 128 keys, Q from smem */              \
    X(4, "m64w4qn128", 128, 4, 1, true, F_ALL, 3)         /* 64 rows x 128 keys */                            \
    X(5, "m128w8q", 64, 8, 1, true, F_ALL, 2)             /* 128 rows: 8 warps */                             \
    X(6, "m128w4b3", 64, 4, 2, false, F_ALL, 3)           /* 128 rows, Q from smem, 3 blocks per SM */

int lc_sdpa_mma_variants_d64(void) {
    int n = 0;
#define SDPA_MMA_COUNT(i, name, BN, NW, MT, QREG, FL, MINB) n = i + 1;
    SDPA_MMA_D64_LIST(SDPA_MMA_COUNT)
#undef SDPA_MMA_COUNT
    return n;
}

cudaError_t lc_sdpa_mma_launch_d64(lc_sdpa_mma_params p, int bf16, int variant, int64_t bh, cudaStream_t stream,
                                   const char **path) {
    switch (variant < 0 ? SDPA_MMA_D64_VARIANT : variant) {
#define SDPA_MMA_CASE(i, name, BN, NW, MT, QREG, FL, MINB)                                                     \
    case i:                                                                                                    \
        if (path) *path = bf16 ? "sdpa_mma_bf16_d64_" name : "sdpa_mma_f16_d64_" name;                         \
        return bf16 ? launch<64, BN, NW, MT, QREG, FL, MINB, true>(p, bh, stream)                              \
                    : launch<64, BN, NW, MT, QREG, FL, MINB, false>(p, bh, stream);
        SDPA_MMA_D64_LIST(SDPA_MMA_CASE)
#undef SDPA_MMA_CASE
    default:
        return cudaErrorInvalidValue;
    }
}
