/* rope_cuda.cu — CUDA rotary position embedding (lc_rope_args, backend.h), half-split layout, templated on
 * the storage type S (float, __half, __nv_bfloat16). One thread per item of a (b, h, s) row: items
 * j < rotary_dim/2 rotate the pair (j, j + rotary_dim/2), the others copy a pass-through channel. A pair's
 * angle is position * inv_freq[j] in float64 (lc_rope_inv_freq of rope_freq.h, HF's scaling rules, computed
 * in the thread), reduced mod 2π in float64 (lc_rope_angle_reduce), then sincosf of the reduced float angle;
 * the rotation is float32, rounded once. x is read through its strides in place; out is contiguous. A
 * thread reads both elements of its pair before writing them, and no other thread touches them, so
 * out == x is safe.
 * Tests: tests/c/test_ops_llm.c and tests/python/test_ops_llm.py on device "cuda" (GPU machine). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/lowp.cuh"
#include "core/rope_freq.h"

#define ROPE_THREADS 256
#define ROPE_MAX_GRID (1 << 20)

template <typename S> __device__ __forceinline__ float rope_ld(const S *p) { return (float)Elem<S>::ld(*p); }
template <typename S> __device__ __forceinline__ void rope_st(S *p, float v) { *p = Elem<S>::st(v); }

template <typename S> __global__ void __launch_bounds__(ROPE_THREADS) rope_kernel(lc_rope_args a, int64_t items) {
    const S *x = (const S *)a.x;
    S *out = (S *)a.out;
    const int64_t h2 = a.rotary_dim / 2, D = a.head_dim, per_row = D - h2;
    for (int64_t it = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; it < items; it += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = it / per_row, j = it % per_row;
        const int64_t s = row % a.seq, bh = row / a.seq;
        const int64_t h = bh % a.heads, b = bh / a.heads;
        const S *xr = x + b * a.x_st[0] + h * a.x_st[1] + s * a.x_st[2];
        S *orow = out + row * D;
        if (j >= h2) { /* pass-through channel rotary_dim + (j - h2): a bit-exact copy */
            const int64_t d = j + h2;
            orow[d] = xr[d * a.x_st[3]];
            continue;
        }
        const int64_t poff = b * a.p_st[0] + s * a.p_st[1];
        const double pos = a.pos_dtype == LC_DTYPE_I32 ? (double)((const int32_t *)a.positions)[poff]
                                                       : (double)((const int64_t *)a.positions)[poff];
        const float r = (float)lc_rope_angle_reduce(pos * lc_rope_inv_freq(j, a.rotary_dim, &a.opt));
        float sn, cs;
        sincosf(r, &sn, &cs);
        const float x1 = rope_ld(xr + j * a.x_st[3]), x2 = rope_ld(xr + (j + h2) * a.x_st[3]);
        rope_st(orow + j, x1 * cs - x2 * sn);
        rope_st(orow + j + h2, x2 * cs + x1 * sn);
    }
}

template <typename S> static cudaError_t launch_rope(const lc_rope_args *a, int64_t items, cudaStream_t stream) {
    int64_t g = (items + ROPE_THREADS - 1) / ROPE_THREADS;
    if (g > ROPE_MAX_GRID) g = ROPE_MAX_GRID;
    rope_kernel<S><<<(unsigned)g, ROPE_THREADS, 0, stream>>>(*a, items);
    return cudaGetLastError();
}

extern "C" cudaError_t lc_cuda_launch_rope(const lc_rope_args *a, cudaStream_t stream) {
    if (!a || a->rotary_dim < 2 || a->rotary_dim % 2 || a->rotary_dim > a->head_dim || a->batch < 0 || a->heads < 0 ||
        a->seq < 0)
        return cudaErrorInvalidValue;
    const int64_t items = a->batch * a->heads * a->seq * (a->head_dim - a->rotary_dim / 2);
    if (items == 0) return cudaSuccess;
    if (!a->x || !a->out || !a->positions) return cudaErrorInvalidValue;
    switch (a->dtype) {
    case LC_DTYPE_F32: return launch_rope<float>(a, items, stream);
    case LC_DTYPE_F16: return launch_rope<__half>(a, items, stream);
    case LC_DTYPE_BF16: return launch_rope<__nv_bfloat16>(a, items, stream);
    default: return cudaErrorInvalidValue;
    }
}
