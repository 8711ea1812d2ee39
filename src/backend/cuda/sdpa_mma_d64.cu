/* sdpa_mma_d64.cu — head_dim 64 instantiations of the tensor-core flash-attention forward (sdpa_mma.cuh:
 * kernel, fragment layouts, pipeline). Configuration: SDPA_MMA_D64_BN keys per tile, SDPA_MMA_D64_NW warps
 * (16 query rows each). Entry: lc_cuda_launch_sdpa_mma (sdpa_mma_cuda.cu). Tests: tests/c/test_sdpa_mma.c. */
#define LC_SDPA_MMA_KERNEL 1
#include "sdpa_mma.cuh"

#ifndef SDPA_MMA_D64_BN
#define SDPA_MMA_D64_BN 64
#endif
#ifndef SDPA_MMA_D64_NW
#define SDPA_MMA_D64_NW 4
#endif
#ifndef SDPA_MMA_D64_MINB /* resident blocks per SM asked of ptxas (register cap) */
#define SDPA_MMA_D64_MINB 3
#endif

cudaError_t lc_sdpa_mma_launch_d64(lc_sdpa_mma_params p, int bf16, int64_t bh, cudaStream_t stream, const char **path) {
    using namespace lc_sdpa_mma;
    if (bf16) {
        if (path) *path = "sdpa_mma_bf16_d64";
        return launch<64, SDPA_MMA_D64_BN, SDPA_MMA_D64_NW, SDPA_MMA_D64_MINB, true>(p, bh, stream);
    }
    if (path) *path = "sdpa_mma_f16_d64";
    return launch<64, SDPA_MMA_D64_BN, SDPA_MMA_D64_NW, SDPA_MMA_D64_MINB, false>(p, bh, stream);
}
