/* index_cuda.cu — the index ops on the GPU: embedding (one block row per gathered row, 16-byte copies when
 * the rows allow; an id outside 0..vocab-1 writes a zero row: a kernel cannot refuse the call) and argmax
 * over the last axis (one block per row, first maximum, NaN counting as the largest). Any float dtype
 * (embedding copies bytes). Tests: tests/python/test_ops_index.py (CUDA cases on the GPU machine). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "backend/cuda/cuda_kernels.h"

template <typename U>
__global__ void embedding_kernel(const U *__restrict__ w, const void *__restrict__ ids, int ids64, U *__restrict__ out,
                                 int64_t rows, int64_t vocab, int64_t units) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t id = ids64 ? ((const int64_t *)ids)[r] : (int64_t)((const int32_t *)ids)[r];
        U *o = out + r * units;
        if (id < 0 || id >= vocab) {
            for (int64_t i = threadIdx.x; i < units; i += blockDim.x) o[i] = U{};
        } else {
            const U *src = w + id * units;
            for (int64_t i = threadIdx.x; i < units; i += blockDim.x) o[i] = src[i];
        }
    }
}

cudaError_t lc_cuda_launch_embedding(const lc_embedding_args *a, cudaStream_t stream) {
    if (a->rows == 0) return cudaSuccess;
    const size_t row_bytes = (size_t)a->dim * lc_dtype_size(a->dtype);
    const int blocks = (int)(a->rows < 65535 ? a->rows : 65535);
    const int ids64 = a->ids_dtype == LC_DTYPE_I64;
    if (row_bytes % 16 == 0 && ((uintptr_t)a->weight % 16) == 0 && ((uintptr_t)a->out % 16) == 0) {
        const int64_t units = (int64_t)(row_bytes / 16);
        embedding_kernel<uint4><<<blocks, units >= 256 ? 256 : 64, 0, stream>>>(
            (const uint4 *)a->weight, a->ids, ids64, (uint4 *)a->out, a->rows, a->vocab, units);
    } else if (row_bytes % 4 == 0 && ((uintptr_t)a->weight % 4) == 0 && ((uintptr_t)a->out % 4) == 0) {
        embedding_kernel<uint32_t><<<blocks, 128, 0, stream>>>((const uint32_t *)a->weight, a->ids, ids64,
                                                               (uint32_t *)a->out, a->rows, a->vocab,
                                                               (int64_t)(row_bytes / 4));
    } else {
        embedding_kernel<uint16_t><<<blocks, 128, 0, stream>>>((const uint16_t *)a->weight, a->ids, ids64,
                                                               (uint16_t *)a->out, a->rows, a->vocab,
                                                               (int64_t)(row_bytes / 2));
    }
    return cudaGetLastError();
}

template <typename T> __device__ __forceinline__ double ix_load(const T *p, int64_t i) { return (double)p[i]; }
template <> __device__ __forceinline__ double ix_load<__half>(const __half *p, int64_t i) { return (double)__half2float(p[i]); }
template <> __device__ __forceinline__ double ix_load<__nv_bfloat16>(const __nv_bfloat16 *p, int64_t i) {
    return (double)__bfloat162float(p[i]);
}

/* (value, index) with NaN largest and ties to the smaller index. */
__device__ __forceinline__ bool ix_better(double v, int64_t i, double bv, int64_t bi) {
    const bool vn = v != v, bn = bv != bv;
    if (vn != bn) return vn;
    if (vn) return i < bi;
    return v > bv || (v == bv && i < bi);
}

template <typename T>
__global__ void argmax_kernel(const T *__restrict__ x, int64_t *__restrict__ out, int64_t rows, int64_t cols) {
    __shared__ double sv[32];
    __shared__ int64_t si[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *row = x + r * cols;
        double bv = 0.0;
        int64_t bi = INT64_MAX;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const double v = ix_load(row, j);
            if (bi == INT64_MAX || ix_better(v, j, bv, bi)) bv = v, bi = j;
        }
        for (int off = 16; off > 0; off >>= 1) {
            const double ov = __shfl_down_sync(0xffffffffu, bv, off);
            const int64_t oi = __shfl_down_sync(0xffffffffu, bi, off);
            if (oi != INT64_MAX && (bi == INT64_MAX || ix_better(ov, oi, bv, bi))) bv = ov, bi = oi;
        }
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        if (lane == 0) sv[warp] = bv, si[warp] = bi;
        __syncthreads();
        if (warp == 0) {
            const int nw = (blockDim.x + 31) >> 5;
            bv = lane < nw ? sv[lane] : 0.0;
            bi = lane < nw ? si[lane] : INT64_MAX;
            for (int off = 16; off > 0; off >>= 1) {
                const double ov = __shfl_down_sync(0xffffffffu, bv, off);
                const int64_t oi = __shfl_down_sync(0xffffffffu, bi, off);
                if (oi != INT64_MAX && (bi == INT64_MAX || ix_better(ov, oi, bv, bi))) bv = ov, bi = oi;
            }
            if (lane == 0) out[r] = bi;
        }
        __syncthreads();
    }
}

cudaError_t lc_cuda_launch_argmax(const lc_argmax_args *a, cudaStream_t stream) {
    if (a->rows == 0) return cudaSuccess;
    const int blocks = (int)(a->rows < 65535 ? a->rows : 65535);
    const int threads = a->cols >= 1024 ? 256 : a->cols >= 128 ? 128 : 32;
    switch (a->dtype) {
    case LC_DTYPE_F32: argmax_kernel<float><<<blocks, threads, 0, stream>>>((const float *)a->x, a->out, a->rows, a->cols); break;
    case LC_DTYPE_F64: argmax_kernel<double><<<blocks, threads, 0, stream>>>((const double *)a->x, a->out, a->rows, a->cols); break;
    case LC_DTYPE_F16: argmax_kernel<__half><<<blocks, threads, 0, stream>>>((const __half *)a->x, a->out, a->rows, a->cols); break;
    case LC_DTYPE_BF16:
        argmax_kernel<__nv_bfloat16><<<blocks, threads, 0, stream>>>((const __nv_bfloat16 *)a->x, a->out, a->rows, a->cols);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
