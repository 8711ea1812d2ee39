/* sdpa_mma_d128.cu — head_dim 128 instantiations of the tensor-core flash-attention forward (sdpa_mma.cuh:
 * kernel, fragment layouts, pipeline). Variants (runtime A/B through lc_cuda_sdpa_mma_set_variant, default
 * SDPA_MMA_D128_VARIANT); columns: keys per tile BN, warps NW, 16-row m-tiles per warp MT (block rows
 * 16·NW·MT), Q fragments in registers, F_* feature bits, resident blocks per SM asked of ptxas.
 * Entry: lc_cuda_launch_sdpa_mma (sdpa_mma_cuda.cu). Tests: tests/c/test_sdpa_mma.c. */
#define LC_SDPA_MMA_KERNEL 1
#include "sdpa_mma.cuh"

#ifndef SDPA_MMA_D128_VARIANT
#define SDPA_MMA_D128_VARIANT 1
#endif

using namespace lc_sdpa_mma;
/* index, name, BN, NW, MT, QREG, FL, MINB */
#define SDPA_MMA_D128_LIST(X)                                                                                  \
    X(0, "m64w4q", 64, 4, 1, true, 0, 2)                 /* the first kernel: 64 rows, Q in registers */      \
    X(1, "m128w4", 64, 4, 2, false, F_ALL, 2)            /* 128 rows: 2 m-tiles per warp, Q from smem */      \
    X(2, "m128w4b2", 64, 4, 2, false, F_ALL & ~F_ONEBAR, 2) /* variant 1 with two barriers per tile */        \
    X(3, "m128w8q", 64, 8, 1, true, F_ALL, 1)            /* 128 rows: 8 warps, Q in registers */              \
    X(4, "m64w4q+", 64, 4, 1, true, F_ALL, 2)            /* variant 0 + the F_* features */            \
    X(5, "m128w4n32", 32, 4, 2, false, F_ALL, 2)         /* variant 1 with 32-key tiles (fewer registers) */

int lc_sdpa_mma_variants_d128(void) {
    int n = 0;
#define SDPA_MMA_COUNT(i, name, BN, NW, MT, QREG, FL, MINB) n = i + 1;
    SDPA_MMA_D128_LIST(SDPA_MMA_COUNT)
#undef SDPA_MMA_COUNT
    return n;
}

cudaError_t lc_sdpa_mma_launch_d128(lc_sdpa_mma_params p, int bf16, int variant, int64_t bh, cudaStream_t stream,
                                    const char **path) {
    switch (variant < 0 ? SDPA_MMA_D128_VARIANT : variant) {
#define SDPA_MMA_CASE(i, name, BN, NW, MT, QREG, FL, MINB)                                                     \
    case i:                                                                                                    \
        if (path) *path = bf16 ? "sdpa_mma_bf16_d128_" name : "sdpa_mma_f16_d128_" name;                       \
        return bf16 ? launch<128, BN, NW, MT, QREG, FL, MINB, true>(p, bh, stream)                             \
                    : launch<128, BN, NW, MT, QREG, FL, MINB, false>(p, bh, stream);
        SDPA_MMA_D128_LIST(SDPA_MMA_CASE)
#undef SDPA_MMA_CASE
    default:
        return cudaErrorInvalidValue;
    }
}
