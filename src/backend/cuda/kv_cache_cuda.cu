/* kv_cache_cuda.cu — the KV-cache append on the device (lc_kv_append_args in src/core/backend.h).
 *
 * Nothing is read on the host (so a captured graph replays the append at each step's current lengths).
 * Small appends (at most KV_SMALL_UNITS copy units per sequence, e.g. a decode step) take one launch:
 * kv_append_small, one block per sequence b, copies its rows at L_b as kv_copy does, then (after the
 * block's barrier, so every thread has read L_b) advances lengths[b] as kv_advance does. Larger appends
 * take two launches:
 *  1. kv_copy: k_cache[b, g, L_b + t, :] = k_new[b, g, t, :] (and v) for t < tokens with L_b + t < max_seq,
 *     L_b = lengths[b] clamped to [0, max_seq] (read on the device). Caches contiguous
 *     [batch, kv_heads, max_seq, head_dim]; k_new / v_new through their strides (elements). grid.y: 0 = k,
 *     1 = v. A row is copied in units of W bytes (16/8/4 when both new operands have d-stride 1 and
 *     W-aligned rows, and the cache rows are W-aligned), else element by element (W = element size).
 *  2. kv_advance: lengths[b] = min(L_b + tokens, max_seq); *overflow = 1 when a token did not fit.
 * Bit-exact copies of any dtype of 2, 4 or 8 bytes.
 * Tests: tests/c/test_sdpa_cuda.c (GPU machine only).
 */
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/pdl.cuh"
#include "lightning_core/tensor.h"

typedef struct kv_params {
    const char *src[2];
    char *dst[2];
    long long st[2][4]; /* new-token strides, elements */
    long long ustride[2]; /* source stride between units along d (units) */
    long long batch, kv_heads, max_seq, tokens, nu; /* nu: units per row */
    long long row_bytes, es;
    const int32_t *lengths;
} kv_params;

__device__ __forceinline__ long long kv_len(const int32_t *lengths, long long b, long long max_seq) {
    long long L = lengths[b];
    if (L < 0) L = 0;
    if (L > max_seq) L = max_seq;
    return L;
}

template <typename U>
__global__ void __launch_bounds__(256) kv_copy(const kv_params p) {
    lc_pdl_entry(); /* pdl.cuh */
    const int w = blockIdx.y;
    const long long total = p.batch * p.kv_heads * p.tokens * p.nu;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (long long)gridDim.x * blockDim.x) {
        const long long u = idx % p.nu;
        const long long row = idx / p.nu;
        const long long t = row % p.tokens;
        const long long bg = row / p.tokens;
        const long long g = bg % p.kv_heads, b = bg / p.kv_heads;
        const long long pos = kv_len(p.lengths, b, p.max_seq) + t;
        if (pos >= p.max_seq) continue;
        const U *s = reinterpret_cast<const U *>(p.src[w] + (b * p.st[w][0] + g * p.st[w][1] + t * p.st[w][2]) * p.es) + u * p.ustride[w];
        U *dd = reinterpret_cast<U *>(p.dst[w] + (bg * p.max_seq + pos) * p.row_bytes) + u;
        *dd = *s;
    }
}

__global__ void kv_advance(int32_t *lengths, int32_t *overflow, long long batch, long long max_seq, long long tokens) {
    lc_pdl_entry(); /* pdl.cuh */
    const long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= batch) return;
    long long n = kv_len(lengths, b, max_seq) + tokens;
    if (n > max_seq) {
        n = max_seq;
        if (overflow) *overflow = 1;
    }
    lengths[b] = (int32_t)n;
}

/* One block per sequence: copy (k: w = 0, v: w = 1) at L_b, then advance lengths[b]. */
template <typename U>
__global__ void __launch_bounds__(256) kv_append_small(const kv_params p, int32_t *lengths, int32_t *overflow) {
    lc_pdl_entry(); /* pdl.cuh */
    const long long b = blockIdx.x;
    const long long L = kv_len(lengths, b, p.max_seq);
    const long long per_w = p.kv_heads * p.tokens * p.nu;
    for (long long idx = threadIdx.x; idx < 2 * per_w; idx += blockDim.x) {
        const int w = idx >= per_w;
        const long long r = idx - w * per_w;
        const long long u = r % p.nu;
        const long long row = r / p.nu;
        const long long t = row % p.tokens, g = row / p.tokens;
        const long long pos = L + t;
        if (pos >= p.max_seq) continue;
        const U *s = reinterpret_cast<const U *>(p.src[w] + (b * p.st[w][0] + g * p.st[w][1] + t * p.st[w][2]) * p.es) + u * p.ustride[w];
        U *dd = reinterpret_cast<U *>(p.dst[w] + ((b * p.kv_heads + g) * p.max_seq + pos) * p.row_bytes) + u;
        *dd = *s;
    }
    __syncthreads(); /* every thread has read lengths[b] */
    if (threadIdx.x == 0) {
        long long n = L + p.tokens;
        if (n > p.max_seq) {
            n = p.max_seq;
            if (overflow) *overflow = 1;
        }
        lengths[b] = (int32_t)n;
    }
}

#define KV_SMALL_UNITS 4096

/* The widest unit (<= 16 bytes, >= es) both new operands and the caches allow. */
static long long kv_unit(const lc_kv_append_args *a, long long es) {
    const long long row_bytes = a->head_dim * es;
    const void *ptrs[4] = {a->k_new, a->v_new, a->k_cache, a->v_cache};
    for (long long w = 16; w > es; w >>= 1) {
        int ok = row_bytes % w == 0;
        for (int i = 0; i < 4; i++) ok &= ((uintptr_t)ptrs[i] % (uintptr_t)w) == 0;
        for (int x = 0; x < 2; x++) {
            const int64_t *st = x ? a->vn_st : a->kn_st;
            ok &= st[3] == 1 || a->head_dim == 1;
            for (int i = 0; i < 3; i++) ok &= ((st[i] * es) % w) == 0;
        }
        if (ok) return w;
    }
    return es;
}

extern "C" cudaError_t lc_cuda_launch_kv_append(const lc_kv_append_args *args, cudaStream_t stream) {
    if (!args) return cudaErrorInvalidValue;
    const long long es = (long long)lc_dtype_size(args->dtype);
    if (es != 2 && es != 4 && es != 8) return cudaErrorInvalidValue;
    if (args->batch < 0 || args->kv_heads < 0 || args->max_seq < 0 || args->head_dim < 1 || args->tokens < 0)
        return cudaErrorInvalidValue;
    for (int i = 0; i < 4; i++)
        if (args->kn_st[i] < 0 || args->vn_st[i] < 0) return cudaErrorInvalidValue;
    if (args->batch == 0) return cudaSuccess;
    if (!args->lengths) return cudaErrorInvalidValue;

    if (args->kv_heads > 0 && args->tokens > 0 && args->max_seq > 0) {
        if (!args->k_cache || !args->v_cache || !args->k_new || !args->v_new) return cudaErrorInvalidValue;
        kv_params p;
        p.src[0] = (const char *)args->k_new;
        p.src[1] = (const char *)args->v_new;
        p.dst[0] = (char *)args->k_cache;
        p.dst[1] = (char *)args->v_cache;
        for (int i = 0; i < 4; i++) {
            p.st[0][i] = args->kn_st[i];
            p.st[1][i] = args->vn_st[i];
        }
        const long long w = kv_unit(args, es);
        p.ustride[0] = w == es ? args->kn_st[3] : 1;
        p.ustride[1] = w == es ? args->vn_st[3] : 1;
        p.batch = args->batch;
        p.kv_heads = args->kv_heads;
        p.max_seq = args->max_seq;
        p.tokens = args->tokens;
        p.es = es;
        p.row_bytes = args->head_dim * es;
        p.nu = p.row_bytes / w;
        p.lengths = args->lengths;
        if (2 * p.kv_heads * p.tokens * p.nu <= KV_SMALL_UNITS && p.batch <= 0x7fffffffLL) {
            const unsigned grid = (unsigned)p.batch;
            switch (w) {
            case 16: (void)lc_pdl_launch(kv_append_small<uint4>, grid, 256, 0, stream, p, args->lengths, args->overflow); break;
            case 8: (void)lc_pdl_launch(kv_append_small<uint2>, grid, 256, 0, stream, p, args->lengths, args->overflow); break;
            case 4: (void)lc_pdl_launch(kv_append_small<unsigned>, grid, 256, 0, stream, p, args->lengths, args->overflow); break;
            default: (void)lc_pdl_launch(kv_append_small<unsigned short>, grid, 256, 0, stream, p, args->lengths, args->overflow); break;
            }
            return cudaGetLastError();
        }
        const long long total = p.batch * p.kv_heads * p.tokens * p.nu;
        long long blocks = (total + 255) / 256;
        if (blocks > (1 << 20)) blocks = 1 << 20;
        const dim3 grid((unsigned)blocks, 2, 1);
        switch (w) {
        case 16: (void)lc_pdl_launch(kv_copy<uint4>, grid, 256, 0, stream, p); break;
        case 8: (void)lc_pdl_launch(kv_copy<uint2>, grid, 256, 0, stream, p); break;
        case 4: (void)lc_pdl_launch(kv_copy<unsigned>, grid, 256, 0, stream, p); break;
        default: (void)lc_pdl_launch(kv_copy<unsigned short>, grid, 256, 0, stream, p); break;
        }
        const cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess) return err;
    }
    const unsigned ablocks = (unsigned)((args->batch + 255) / 256);
    (void)lc_pdl_launch(kv_advance, ablocks, 256, 0, stream, args->lengths, args->overflow, args->batch, args->max_seq, args->tokens);
    return cudaGetLastError();
}

LC_TL_READER(lc_tl_read_kv_cache_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
