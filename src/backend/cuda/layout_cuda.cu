/* layout_cuda.cu — data-movement kernels: qkv_pack_repeat, dst[i] = src[i % src_n] for i < dst_n
 * (float32; the seed's flatten-then-repeat-or-truncate of a conv output into q|k|v).
 * Tests: tests/c/test_ops.c (qkv_pack cases), tests/python/test_sessions.py (conv->attention chain), GPU machine. */
#include "backend/cuda/cuda_kernels.h"

__global__ void lc_qkv_pack_kernel(const float *__restrict__ src, float *__restrict__ dst, long long src_n,
                                   long long dst_n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < dst_n; i += stride)
        dst[i] = src[i % src_n];
}

extern "C" cudaError_t lc_cuda_launch_qkv_pack(const lc_qkv_pack_args *args, cudaStream_t stream) {
    if (args->dst_n <= 0 || args->src_n <= 0) return cudaErrorInvalidValue;
    const int threads = 256;
    long long blocks = (args->dst_n + threads - 1) / threads;
    if (blocks > 4096) blocks = 4096;
    lc_qkv_pack_kernel<<<(unsigned)blocks, threads, 0, stream>>>(args->src, args->dst, (long long)args->src_n,
                                                                   (long long)args->dst_n);
    return cudaGetLastError();
}
