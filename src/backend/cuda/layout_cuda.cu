/* layout_cuda.cu — data-movement kernels:
 *  - lc_cuda_launch_prefetch (lc_tensor_prefetch): byte ranges of device memory requested into L2 by a kernel
 *    that first waits for the work before it in the stream (PDL), so the requests fill the DRAM time of the
 *    kernels after it (a decode step's attention streams little: the next projections' weights can load
 *    meanwhile). Forms (LC_PREFETCH_MODE, read once; A/B runs): "line" (default) one prefetch.global.L2 a
 *    128-byte line a thread, "last" the same with the evict_last priority, "bulk" one cp.async.bulk.prefetch.L2
 *    of up to 4 KiB a warp. Every address requested lies inside a range, widened to 16 bytes at most (bulk).
 *    H100 (session 21): ~1 us a call with nothing to fetch, 2.9 us at 10 MiB (issue time), both forms; in the
 *    decode step slower than without (the attention waits for the grid), so the model runner leaves it off.
 *    Tests: tests/python/test_prefetch.py (ranges, views, capture, values and decode tokens unchanged).
 *  - qkv_pack_repeat, dst[i] = src[i % src_n] for i < dst_n (the seed's flatten-then-repeat-or-truncate
 *    of a conv output into q|k|v): a copy of elements of lc_dtype_size(dtype) bytes (float32 as 4-byte,
 *    float16/bfloat16 as 2-byte words: bit-exact, NaN payloads kept);
 *  - lc_cuda_launch_cast: n elements float16/bfloat16 <-> float32 (to float32 exact; from float32 rounded
 *    once to nearest even with __float2half_rn / __float2bfloat16_rn, lowp.cuh), used by the 16-bit
 *    attention and conv2d paths (backend_cuda.c) to run the float32 kernels on a float32 image.
 * Tests: tests/c/test_ops.c (qkv_pack cases), tests/c/test_lowp_attn.c (16-bit), GPU machine. */
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/lowp.cuh"
#include "backend/cuda/pdl.cuh"

template <typename W>
__global__ void lc_qkv_pack_kernel(const W *__restrict__ src, W *__restrict__ dst, long long src_n, long long dst_n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < dst_n; i += stride)
        dst[i] = src[i % src_n];
}

static unsigned lc_grid(long long n, int threads) {
    long long blocks = (n + threads - 1) / threads;
    return (unsigned)(blocks > 4096 ? 4096 : blocks);
}

extern "C" cudaError_t lc_cuda_launch_qkv_pack(const lc_qkv_pack_args *args, cudaStream_t stream) {
    if (args->dst_n <= 0 || args->src_n <= 0) return cudaErrorInvalidValue;
    const int threads = 256;
    const unsigned blocks = lc_grid(args->dst_n, threads);
    switch (args->dtype) {
    case LC_DTYPE_F32:
        lc_qkv_pack_kernel<unsigned int><<<blocks, threads, 0, stream>>>(
            (const unsigned int *)args->src, (unsigned int *)args->dst, (long long)args->src_n, (long long)args->dst_n);
        break;
    case LC_DTYPE_F16:
    case LC_DTYPE_BF16:
        lc_qkv_pack_kernel<unsigned short><<<blocks, threads, 0, stream>>>(
            (const unsigned short *)args->src, (unsigned short *)args->dst, (long long)args->src_n,
            (long long)args->dst_n);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

template <typename T> __global__ void lc_to_f32_kernel(const T *__restrict__ src, float *__restrict__ dst, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = Elem<T>::ld(src[i]);
}

template <typename T> __global__ void lc_from_f32_kernel(const float *__restrict__ src, T *__restrict__ dst, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = Elem<T>::st(src[i]);
}

extern "C" cudaError_t lc_cuda_launch_cast(lc_dtype dst_dtype, void *dst, lc_dtype src_dtype, const void *src, int64_t n,
                                           cudaStream_t stream) {
    if (n < 0 || (n > 0 && (!dst || !src))) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    const int threads = 256;
    const unsigned blocks = lc_grid(n, threads);
    if (dst_dtype == LC_DTYPE_F32 && src_dtype == LC_DTYPE_F16)
        lc_to_f32_kernel<__half><<<blocks, threads, 0, stream>>>((const __half *)src, (float *)dst, (long long)n);
    else if (dst_dtype == LC_DTYPE_F32 && src_dtype == LC_DTYPE_BF16)
        lc_to_f32_kernel<__nv_bfloat16><<<blocks, threads, 0, stream>>>((const __nv_bfloat16 *)src, (float *)dst, (long long)n);
    else if (src_dtype == LC_DTYPE_F32 && dst_dtype == LC_DTYPE_F16)
        lc_from_f32_kernel<__half><<<blocks, threads, 0, stream>>>((const float *)src, (__half *)dst, (long long)n);
    else if (src_dtype == LC_DTYPE_F32 && dst_dtype == LC_DTYPE_BF16)
        lc_from_f32_kernel<__nv_bfloat16><<<blocks, threads, 0, stream>>>((const float *)src, (__nv_bfloat16 *)dst, (long long)n);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}

/* The backend's gather entry: a strided view into a contiguous buffer, one thread per element (the
 * element's source offset from its row-major index, innermost axis first); 1/2/4/8-byte elements. */
template <typename E>
__global__ void gather_kernel(const E *__restrict__ src, E *__restrict__ dst, int64_t n, lc_gather_args g) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = i, off = 0;
        for (int k = g.ndim - 1; k >= 0; k--) {
            const int64_t q = rem / g.shape[k];
            off += (rem - q * g.shape[k]) * g.st[k];
            rem = q;
        }
        dst[i] = src[off];
    }
}

/* Into a strided view (concat): the destination offset from the same index decomposition (dst_st). */
template <typename E>
__global__ void scatter_kernel(const E *__restrict__ src, E *__restrict__ dst, int64_t n, lc_gather_args g) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = i, off = 0, doff = 0;
        for (int k = g.ndim - 1; k >= 0; k--) {
            const int64_t q = rem / g.shape[k], r = rem - q * g.shape[k];
            off += r * g.st[k];
            doff += r * g.dst_st[k];
            rem = q;
        }
        dst[doff] = src[off];
    }
}

cudaError_t lc_cuda_launch_gather(const lc_gather_args *g, cudaStream_t stream) {
    if (g->n == 0) return cudaSuccess;
    const int64_t want = (g->n + 255) / 256;
    const int blocks = (int)(want < 65535 ? want : 65535);
    if (g->dst_strided) {
        switch (g->elem) {
        case 1: scatter_kernel<uint8_t><<<blocks, 256, 0, stream>>>((const uint8_t *)g->src, (uint8_t *)g->dst, g->n, *g); break;
        case 2: scatter_kernel<uint16_t><<<blocks, 256, 0, stream>>>((const uint16_t *)g->src, (uint16_t *)g->dst, g->n, *g); break;
        case 4: scatter_kernel<uint32_t><<<blocks, 256, 0, stream>>>((const uint32_t *)g->src, (uint32_t *)g->dst, g->n, *g); break;
        case 8: scatter_kernel<uint64_t><<<blocks, 256, 0, stream>>>((const uint64_t *)g->src, (uint64_t *)g->dst, g->n, *g); break;
        default: return cudaErrorInvalidValue;
        }
        return cudaGetLastError();
    }
    switch (g->elem) {
    case 1: gather_kernel<uint8_t><<<blocks, 256, 0, stream>>>((const uint8_t *)g->src, (uint8_t *)g->dst, g->n, *g); break;
    case 2: gather_kernel<uint16_t><<<blocks, 256, 0, stream>>>((const uint16_t *)g->src, (uint16_t *)g->dst, g->n, *g); break;
    case 4: gather_kernel<uint32_t><<<blocks, 256, 0, stream>>>((const uint32_t *)g->src, (uint32_t *)g->dst, g->n, *g); break;
    case 8: gather_kernel<uint64_t><<<blocks, 256, 0, stream>>>((const uint64_t *)g->src, (uint64_t *)g->dst, g->n, *g); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

/* ---- L2 prefetch ------------------------------------------------------------------------------------------ */

enum { LC_PF_LINE = 0, LC_PF_LAST = 1, LC_PF_BULK = 2 };

static int lc_prefetch_mode() {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("LC_PREFETCH_MODE");
        v = e && strcmp(e, "bulk") == 0 ? LC_PF_BULK : e && strcmp(e, "last") == 0 ? LC_PF_LAST : LC_PF_LINE;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* Units (128-byte lines, or 4 KiB pieces for bulk) are numbered across the ranges in order; thread (warp, for
 * bulk) t takes units t, t + T, ... Each waits first: its requests follow the previous kernel's traffic. */
__global__ void __launch_bounds__(256) lc_prefetch_kernel(const lc_prefetch_args a, int mode) {
    lc_pdl_entry();
    const int bulk = mode == LC_PF_BULK;
    const int64_t unit = bulk ? 4096 : 128;
    int64_t first[LC_PREFETCH_MAX + 1];
    first[0] = 0;
    for (int r = 0; r < a.n; r++) {
        const uintptr_t p = (uintptr_t)a.ptr[r], lo = p & ~(uintptr_t)(unit - 1);
        first[r + 1] = first[r] + (int64_t)((p + a.bytes[r] - lo + unit - 1) / unit);
    }
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (bulk && (threadIdx.x & 31)) return;
    const int64_t id = bulk ? tid / 32 : tid, step = (int64_t)gridDim.x * blockDim.x / (bulk ? 32 : 1);
    int r = 0;
    for (int64_t u = id; u < first[a.n]; u += step) {
        while (u >= first[r + 1]) r++;
        const uintptr_t p = (uintptr_t)a.ptr[r], base = (p & ~(uintptr_t)(unit - 1)) + (uintptr_t)(u - first[r]) * unit;
        if (bulk) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
            const uintptr_t a0 = base > (p & ~(uintptr_t)15) ? base : (p & ~(uintptr_t)15),
                            e = (p + a.bytes[r] + 15) & ~(uintptr_t)15, a1 = base + unit < e ? base + unit : e;
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(a0), "r"((unsigned)(a1 - a0)) : "memory");
#endif
        } else {
            const uintptr_t q = base > p ? base : p;
            if (mode == LC_PF_LAST) asm volatile("prefetch.global.L2::evict_last [%0];" ::"l"(q));
            else asm volatile("prefetch.global.L2 [%0];" ::"l"(q));
        }
    }
}

extern "C" cudaError_t lc_cuda_launch_prefetch(const lc_prefetch_args *a, int num_sms, cudaStream_t stream) {
    if (!a || a->n < 1 || a->n > LC_PREFETCH_MAX) return cudaErrorInvalidValue;
    size_t total = 0;
    for (int r = 0; r < a->n; r++) {
        if (!a->ptr[r] || a->bytes[r] == 0) return cudaErrorInvalidValue;
        total += a->bytes[r];
    }
    /* 128 KiB a block (four lines a thread, four 4 KiB pieces a warp), at most one block an SM: few blocks to
     * schedule in the chain of a decode step, each issuing a few requests */
    const size_t cap = (size_t)(num_sms > 0 ? num_sms : 1), want = (total + 131071) / 131072;
    const unsigned blocks = (unsigned)(want < 1 ? 1 : want > cap ? cap : want);
    return lc_pdl_launch(lc_prefetch_kernel, dim3(blocks), dim3(256), 0, stream, *a, lc_prefetch_mode());
}

LC_TL_READER(lc_tl_read_layout_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
