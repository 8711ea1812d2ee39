/* index_cuda.cu — the index ops on the GPU: embedding (one block row per gathered row, 16-byte copies when
 * the rows allow; an id outside offset..offset+vocab-1 writes a zero row: a kernel cannot refuse the call, and
 * a vocabulary shard (lc_embedding_offset) wants exactly that; with learned positions, lc_embedding_pos, each
 * element the sum of the two rows in the dtype's arithmetic, an out-of-range id or position a zero row) and argmax
 * over the last axis (int64 out; the first maximum, NaN counting as the largest and the first NaN winning,
 * -0 == +0, as the CPU kernel and NumPy). Any float dtype (embedding copies bytes).
 * argmax reads each row as a scalar head up to a 16-byte boundary, 16-byte vectors, and a scalar tail, and
 * compares in float (float32 and the 16-bit floats) or double (float64). Few rows (rows x chunks about 2
 * blocks per SM, at most AM_MAX_ROWS rows and AM_MAX_PARTS partials): each row is split over a grid
 * (chunks, rows); every block writes its (value, index) partial to fixed __device__ arrays and the last
 * block of the row (a device counter ticket after __threadfence; that block puts the counter back to 0, so
 * a captured CUDA graph replays) reduces the partials. Kernels of this path must not run concurrently on
 * two streams of one device. Otherwise one block per row.
 * Tests: tests/python/test_ops_index.py (CUDA cases on the GPU machine), tests/c/test_ops_llm.c (CUDA part:
 * chunk boundaries, repeated launches, graph replay, timings with LC_TEST_VERBOSE=1). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/lowp.cuh"
#include "backend/cuda/pdl.cuh"

template <typename U>
__global__ void embedding_kernel(const U *__restrict__ w, const void *__restrict__ ids, int ids64, U *__restrict__ out,
                                 int64_t rows, int64_t vocab, int64_t offset, int64_t units) {
    lc_pdl_entry(); /* pdl.cuh */
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t id = ids64 ? ((const int64_t *)ids)[r] : (int64_t)((const int32_t *)ids)[r];
        U *o = out + r * units;
        if (id < offset || id - offset >= vocab) {
            for (int64_t i = threadIdx.x; i < units; i += blockDim.x) o[i] = U{};
        } else {
            const U *src = w + (id - offset) * units;
            for (int64_t i = threadIdx.x; i < units; i += blockDim.x) o[i] = src[i];
        }
    }
}

/* Learned positions (lc_embedding_pos): out row r = w[ids[r]] + pw[pos[r]] in T's arithmetic (Elem<T>::C: float
 * for the 16-bit dtypes, rounded once, as lc_add); an id or position out of range counts as a zero row. */
template <typename T>
__global__ void embedding_pos_kernel(const T *__restrict__ w, const void *__restrict__ ids, int ids64,
                                     const T *__restrict__ pw, const void *__restrict__ pos, int pos64,
                                     T *__restrict__ out, int64_t rows, int64_t vocab, int64_t prows, int64_t dim) {
    lc_pdl_entry(); /* pdl.cuh */
    typedef typename Elem<T>::C C;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t id = ids64 ? ((const int64_t *)ids)[r] : (int64_t)((const int32_t *)ids)[r];
        const int64_t p = pos64 ? ((const int64_t *)pos)[r] : (int64_t)((const int32_t *)pos)[r];
        const bool iv = id >= 0 && id < vocab, pv = p >= 0 && p < prows;
        const T *a = w + (iv ? id : 0) * dim, *b = pw + (pv ? p : 0) * dim;
        T *o = out + r * dim;
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
            o[i] = Elem<T>::st((iv ? Elem<T>::ld(a[i]) : (C)0) + (pv ? Elem<T>::ld(b[i]) : (C)0));
    }
}

template <typename T> static cudaError_t launch_embedding_pos(const lc_embedding_args *a, cudaStream_t stream) {
    const int blocks = (int)(a->rows < 65535 ? a->rows : 65535), threads = a->dim >= 512 ? 256 : 128;
    return lc_pdl_launch(embedding_pos_kernel<T>, blocks, threads, 0, stream, (const T *)a->weight, a->ids,
                         (int)(a->ids_dtype == LC_DTYPE_I64), (const T *)a->pos_weight, a->positions,
                         (int)(a->pos_dtype == LC_DTYPE_I64), (T *)a->out, a->rows, a->vocab, a->pos_rows, a->dim);
}

cudaError_t lc_cuda_launch_embedding(const lc_embedding_args *a, cudaStream_t stream) {
    if (a->rows == 0) return cudaSuccess;
    if (a->pos_weight) switch (a->dtype) {
        case LC_DTYPE_F32: return launch_embedding_pos<float>(a, stream);
        case LC_DTYPE_F64: return launch_embedding_pos<double>(a, stream);
        case LC_DTYPE_F16: return launch_embedding_pos<__half>(a, stream);
        case LC_DTYPE_BF16: return launch_embedding_pos<__nv_bfloat16>(a, stream);
        default: return cudaErrorInvalidValue;
        }
    const size_t row_bytes = (size_t)a->dim * lc_dtype_size(a->dtype);
    const int blocks = (int)(a->rows < 65535 ? a->rows : 65535);
    const int ids64 = a->ids_dtype == LC_DTYPE_I64;
    if (row_bytes % 16 == 0 && ((uintptr_t)a->weight % 16) == 0 && ((uintptr_t)a->out % 16) == 0) {
        const int64_t units = (int64_t)(row_bytes / 16);
        (void)lc_pdl_launch(embedding_kernel<uint4>, blocks, units >= 256 ? 256 : 64, 0, stream, (const uint4 *)a->weight,
                            a->ids, ids64, (uint4 *)a->out, a->rows, a->vocab, a->offset, units);
    } else if (row_bytes % 4 == 0 && ((uintptr_t)a->weight % 4) == 0 && ((uintptr_t)a->out % 4) == 0) {
        (void)lc_pdl_launch(embedding_kernel<uint32_t>, blocks, 128, 0, stream, (const uint32_t *)a->weight, a->ids, ids64,
                                                               (uint32_t *)a->out, a->rows, a->vocab,
                                                               a->offset, (int64_t)(row_bytes / 4));
    } else {
        (void)lc_pdl_launch(embedding_kernel<uint16_t>, blocks, 128, 0, stream, (const uint16_t *)a->weight, a->ids, ids64,
                                                               (uint16_t *)a->out, a->rows, a->vocab,
                                                               a->offset, (int64_t)(row_bytes / 2));
    }
    return cudaGetLastError();
}

/* ---- argmax ----------------------------------------------------------------------------------------- */

#define AM_THREADS 256
#define AM_UNROLL 4          /* 16-byte loads in flight per thread and iteration */
#define AM_MAX_ROWS 1024     /* split path: rows (one counter each) */
#define AM_MAX_PARTS 8192    /* split path: rows x chunks partials */
#define AM_EMPTY INT64_MAX   /* index of "no element seen" */

/* Split path state: finished chunks per row of the running launch (0 between launches: the last block of a
 * row puts it back), and each chunk's (value, index). Kernels of this path must not run concurrently on
 * two streams of one device. */
__device__ unsigned am_ctr[AM_MAX_ROWS];
__device__ double am_pv[AM_MAX_PARTS];
__device__ long long am_pi[AM_MAX_PARTS];

/* (value, index) with NaN largest and ties to the smaller index: a strict total order on distinct indices,
 * so any reduction order gives the same winner (the first maximum; the first NaN if any; -0 == +0). */
template <typename C> __device__ __forceinline__ bool ix_better(C v, int64_t i, C bv, int64_t bi) {
    const bool vn = v != v, bn = bv != bv;
    if (vn != bn) return vn;
    if (vn) return i < bi;
    return v > bv || (v == bv && i < bi);
}

template <typename C> __device__ __forceinline__ void am_take(C v, int64_t i, C &bv, int64_t &bi) {
    if (i != AM_EMPTY && (bi == AM_EMPTY || ix_better(v, i, bv, bi))) bv = v, bi = i;
}

template <typename V> __device__ __forceinline__ V am_down(V v, int off) { return __shfl_down_sync(0xffffffffu, v, off); }

/* The block's best (value, index) into thread 0's (bv, bi) (blockDim.x a multiple of 32); ends with a
 * barrier, so it may be called again right after. */
template <typename C> __device__ __forceinline__ void am_block_reduce(C &bv, int64_t &bi) {
    __shared__ C sv[32];
    __shared__ int64_t si[32];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) am_take(am_down(bv, off), am_down(bi, off), bv, bi);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) sv[warp] = bv, si[warp] = bi;
    __syncthreads();
    if (warp == 0) {
        bv = lane < nw ? sv[lane] : (C)0;
        bi = lane < nw ? si[lane] : AM_EMPTY;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) am_take(am_down(bv, off), am_down(bi, off), bv, bi);
    }
    __syncthreads();
}

/* Block (k, y) of a grid (nch, ·) scans chunk k of rows y, y + gridDim.y, ...: a row is a scalar head up to
 * its first 16-byte boundary (chunk 0), nv 16-byte vectors split into nch runs of ceil(nv / nch), and a
 * scalar tail (chunk nch - 1). Compares in Elem<T>::C (float for the 16-bit floats and float32, double for
 * float64; the conversions are exact). nch == 1 (!SPLIT): the block writes out[r]. SPLIT: the block writes
 * its partial; the last of the row's blocks to finish (ticket from am_ctr after __threadfence, which it
 * resets to 0 so a captured graph replays) reduces the row's partials and writes out[r]. */
template <typename T, bool SPLIT>
__global__ void __launch_bounds__(AM_THREADS)
    argmax_kernel(const T *__restrict__ x, int64_t *__restrict__ out, int64_t rows, int64_t cols) {
    lc_pdl_entry(); /* pdl.cuh */
    typedef typename Elem<T>::C C;
    constexpr int V = 16 / (int)sizeof(T);
    __shared__ int am_last;
    const int nch = (int)gridDim.x, k = (int)blockIdx.x, tid = (int)threadIdx.x, nt = (int)blockDim.x;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        const T *row = x + r * cols;
        const uintptr_t addr = (uintptr_t)row;
        int64_t h = addr % sizeof(T) ? cols : (int64_t)(((16u - (unsigned)(addr & 15u)) & 15u) / sizeof(T));
        if (h > cols) h = cols;
        const int64_t nv = (cols - h) / V, ts = h + nv * V, vpc = (nv + nch - 1) / nch;
        const int64_t v0 = min(nv, (int64_t)k * vpc), v1 = min(nv, v0 + vpc);
        C bv = (C)0;
        int64_t bi = AM_EMPTY;
        if (k == 0)
            for (int64_t j = tid; j < h; j += nt) am_take(Elem<T>::ld(row[j]), j, bv, bi);
        const uint4 *vp = reinterpret_cast<const uint4 *>(row + h);
        for (int64_t i = v0 + tid; i < v1; i += (int64_t)nt * AM_UNROLL) {
            uint4 q[AM_UNROLL];
#pragma unroll
            for (int u = 0; u < AM_UNROLL; u++) {
                const int64_t iu = i + (int64_t)u * nt;
                q[u] = iu < v1 ? __ldg(vp + iu) : make_uint4(0u, 0u, 0u, 0u);
            }
#pragma unroll
            for (int u = 0; u < AM_UNROLL; u++) {
                const int64_t iu = i + (int64_t)u * nt;
                if (iu < v1) {
                    const T *e = reinterpret_cast<const T *>(&q[u]);
#pragma unroll
                    for (int m = 0; m < V; m++) am_take(Elem<T>::ld(e[m]), h + iu * V + m, bv, bi);
                }
            }
        }
        if (k == nch - 1)
            for (int64_t j = ts + tid; j < cols; j += nt) am_take(Elem<T>::ld(row[j]), j, bv, bi);
        am_block_reduce<C>(bv, bi);
        if (!SPLIT) {
            if (tid == 0) out[r] = bi;
            continue;
        }
        const int64_t slot = r * nch;
        if (tid == 0) {
            am_pv[slot + k] = (double)bv;
            am_pi[slot + k] = (long long)bi;
            __threadfence();
            const unsigned prev = atomicAdd(&am_ctr[r], 1u);
            am_last = prev == (unsigned)(nch - 1);
            if (am_last) atomicExch(&am_ctr[r], 0u);
        }
        __syncthreads();
        if (!am_last) continue;
        __threadfence();
        double pv = 0.0;
        int64_t pi = AM_EMPTY;
        for (int c = tid; c < nch; c += nt) am_take(__ldcg(&am_pv[slot + c]), (int64_t)__ldcg(&am_pi[slot + c]), pv, pi);
        am_block_reduce<double>(pv, pi);
        if (tid == 0) out[r] = pi;
    }
}

/* Chunks per row of the split path (1: one block per row): enough that rows x chunks is about 2 blocks per
 * SM, no more than one 16-byte vector per thread needs, within the fixed counters and partials. */
static int am_chunks(int64_t rows, int64_t cols, size_t es, int sms) {
    if (rows < 1 || rows > AM_MAX_ROWS || es == 0 || es > 16) return 1;
    const int64_t nv = cols / (int64_t)(16 / es);
    int64_t nch = (nv + AM_THREADS - 1) / AM_THREADS;
    const int64_t target = 2 * (int64_t)(sms > 0 ? sms : 1) / rows;
    if (nch > target) nch = target;
    if (nch > AM_MAX_PARTS / rows) nch = AM_MAX_PARTS / rows;
    return nch < 2 ? 1 : (int)nch;
}

extern "C" int lc_cuda_argmax_chunks(int64_t rows, int64_t cols, lc_dtype dtype) {
    return am_chunks(rows, cols, lc_dtype_size(dtype), lc_cuda_sm_count());
}

template <typename T> static cudaError_t launch_argmax(const lc_argmax_args *a, cudaStream_t stream) {
    const int nch = am_chunks(a->rows, a->cols, sizeof(T), lc_cuda_sm_count());
    const T *x = (const T *)a->x;
    if (nch > 1) {
        (void)lc_pdl_launch(argmax_kernel<T, true>, dim3((unsigned)nch, (unsigned)a->rows), AM_THREADS, 0, stream, x, a->out, a->rows, a->cols);
    } else {
        const int64_t nv = a->cols / (16 / (int64_t)sizeof(T)) + 1;
        int threads = 32;
        while (threads < AM_THREADS && threads < nv) threads <<= 1;
        const unsigned gy = (unsigned)(a->rows < 65535 ? a->rows : 65535);
        (void)lc_pdl_launch(argmax_kernel<T, false>, dim3(1u, gy), threads, 0, stream, x, a->out, a->rows, a->cols);
    }
    return cudaGetLastError();
}

cudaError_t lc_cuda_launch_argmax(const lc_argmax_args *a, cudaStream_t stream) {
    if (!a || a->rows < 0) return cudaErrorInvalidValue;
    if (a->rows == 0) return cudaSuccess;
    if (a->cols < 1 || !a->x || !a->out) return cudaErrorInvalidValue;
    switch (a->dtype) {
    case LC_DTYPE_F32: return launch_argmax<float>(a, stream);
    case LC_DTYPE_F64: return launch_argmax<double>(a, stream);
    case LC_DTYPE_F16: return launch_argmax<__half>(a, stream);
    case LC_DTYPE_BF16: return launch_argmax<__nv_bfloat16>(a, stream);
    default: return cudaErrorInvalidValue;
    }
}

LC_TL_READER(lc_tl_read_index_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
