/* layer_norm_cuda.cu — CUDA layer norm over the last axis: per row of x[rows, cols] (float32, float16 or
 * bfloat16: the kernels are templates on the storage type S; 16-bit elements are loaded as float, every
 * statistic and the output are computed as for float32, and the output is rounded once to S),
 * out = (x - mean) / sqrt(var + eps) * gamma + beta, biased variance (divide by cols), gamma/beta [cols]
 * optional (NULL = 1 and 0); out may be exactly x.
 *
 * Paths (picked per call from rows, cols and the pointers' alignment; 4 elements a load — float4, or 8 bytes
 * of 16-bit floats — when cols % 4 == 0 and every pointer is aligned to 4 elements, scalar otherwise):
 *   warp:  cols <= 1024 — one warp per row (4 rows per 128-thread block), the row held in registers
 *          (up to 8 float4 or 32 floats a lane); reductions by warp shuffles only.
 *   block: cols <= 16384 (float4) / 8192 (scalar) — one block of up to 1024 threads per row, the row
 *          in registers (4 float4 or 8 floats a thread); warp shuffles + shared memory.
 *   big:   larger rows — one 512-thread block per row, three passes over the row in device memory.
 *   few:   rows <= 2 per SM with the vector loads and cols <= 8192 (the decode case, 1 row x 768): the
 *          block kernel with one float4 item a thread up to 512 threads (2 above), gamma and beta
 *          loaded with x before the first reduction, so the call costs one round of load latency.
 * Every path loops over rows grid-stride; row offsets are 64-bit.
 * Numerics (as the CPU kernel): the mean is accumulated in float64 (a row of 1e4 + small noise keeps
 * its variance); the deviations d = (x - mean_hi) - mean_lo are formed in float with the mean split into
 * a float hi + lo part, and the variance is the corrected two-pass sum (Σd² - (Σd)²/cols) / cols
 * (float sums of at most 32 terms a thread in the register paths, float64 in the big path).
 * All of a row's loads come before its first reduction and all its stores after the last, so out == x
 * is safe.
 * Tests: tests/c/test_ops.c (layer_norm group) and tests/python/test_ops_*.py on device "cuda";
 * devcheck/kernels (GPU machine) against float64 references.
 */
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/lowp.cuh"
#include "backend/cuda/pdl.cuh"

#define LN_WARP_THREADS 128 /* warp path: 4 rows per block */
#define LN_BIG_THREADS 512
#define LN_MAX_BLOCKS (1 << 20)
#define LN_FEW_ROWS_PER_SM 2 /* few-rows path up to this many rows per SM */

/* ---- reductions ------------------------------------------------------------------------------------- */

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_sum_f(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over the row's threads: the warp (WARP) or the whole block (blockDim.x a multiple of 32). Every
 * thread gets the total. The block variant ends with a barrier, so `sh` may be reused right after. */
template <bool WARP> __device__ __forceinline__ double row_sum_d(double v, double *sh) {
    v = warp_sum_d(v);
    if (!WARP) {
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
        if (lane == 0) sh[warp] = v;
        __syncthreads();
        v = warp_sum_d(lane < nw ? sh[lane] : 0.0);
        __syncthreads();
    }
    return v;
}

template <bool WARP> __device__ __forceinline__ void row_sum_f2(float &a, float &b, float2 *sh) {
    a = warp_sum_f(a);
    b = warp_sum_f(b);
    if (!WARP) {
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
        if (lane == 0) sh[warp] = make_float2(a, b);
        __syncthreads();
        const float2 p = lane < nw ? sh[lane] : make_float2(0.0f, 0.0f);
        a = warp_sum_f(p.x);
        b = warp_sum_f(p.y);
        __syncthreads();
    }
}

/* ---- register paths (warp per row / block per row) -------------------------------------------------- */

/* Loads VEC elements at p as floats (VEC == 4: one 16-byte float4 or one 8-byte word of four 16-bit
 * floats; the caller checked the alignment). */
template <int VEC> __device__ __forceinline__ void load_vec(float *dst, const float *p) {
    if (VEC == 4) {
        const float4 q = *(const float4 *)p;
        dst[0] = q.x;
        dst[1] = q.y;
        dst[2] = q.z;
        dst[3] = q.w;
    } else {
#pragma unroll
        for (int k = 0; k < VEC; k++) dst[k] = p[k];
    }
}

template <int VEC, typename S> __device__ __forceinline__ void load_vec(float *dst, const S *p) {
    if (VEC == 4) {
        const uint2 q = *(const uint2 *)p;
        dst[0] = Elem<S>::ldu((unsigned short)(q.x & 0xffffu));
        dst[1] = Elem<S>::ldu((unsigned short)(q.x >> 16));
        dst[2] = Elem<S>::ldu((unsigned short)(q.y & 0xffffu));
        dst[3] = Elem<S>::ldu((unsigned short)(q.y >> 16));
    } else {
#pragma unroll
        for (int k = 0; k < VEC; k++) dst[k] = Elem<S>::ld(p[k]);
    }
}

template <int VEC> __device__ __forceinline__ void store_vec(float *p, const float *src) {
    if (VEC == 4) {
        *(float4 *)p = make_float4(src[0], src[1], src[2], src[3]);
    } else {
#pragma unroll
        for (int k = 0; k < VEC; k++) p[k] = src[k];
    }
}

/* Stores VEC floats rounded once to S (nearest even). */
template <int VEC, typename S> __device__ __forceinline__ void store_vec(S *p, const float *src) {
    if (VEC == 4) {
        *(uint2 *)p = make_uint2((unsigned)Elem<S>::stu(src[0]) | ((unsigned)Elem<S>::stu(src[1]) << 16),
                                 (unsigned)Elem<S>::stu(src[2]) | ((unsigned)Elem<S>::stu(src[3]) << 16));
    } else {
#pragma unroll
        for (int k = 0; k < VEC; k++) p[k] = Elem<S>::st(src[k]);
    }
}

/* Item i of thread t covers elements [(i·RT + t)·VEC, +VEC), RT = threads per row (coalesced). */
/* PRE: gamma and beta are loaded before the first reduction too (the few-rows path: their load latency
 * overlaps x's instead of following the reductions). */
template <typename S, int VEC, int ITEMS, bool WARP, bool PRE = false>
__global__ void __launch_bounds__(WARP ? LN_WARP_THREADS : 1024, 1)
    ln_reg_kernel(const S *x, const S *gamma, const S *beta, S *out, int64_t rows, int cols, double eps) {
    lc_pdl_entry(); /* pdl.cuh */
    __shared__ double sh_d[32];
    __shared__ float2 sh_f[32];
    const int rt = WARP ? 32 : (int)blockDim.x;
    const int t = WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
    const int rows_per_block = WARP ? (int)(blockDim.x >> 5) : 1;
    int64_t row = (int64_t)blockIdx.x * rows_per_block + (WARP ? (threadIdx.x >> 5) : 0);
    const int64_t rstep = (int64_t)gridDim.x * rows_per_block;
    const double inv_cols = 1.0 / (double)cols;
    for (; row < rows; row += rstep) { /* uniform per warp (WARP) or per block */
        const S *xr = x + row * (int64_t)cols;
        S *orow = out + row * (int64_t)cols;
        float v[ITEMS * VEC], pg[PRE ? ITEMS * VEC : 1], pb[PRE ? ITEMS * VEC : 1];
#pragma unroll
        for (int i = 0; i < ITEMS; i++) {
            const int e = (i * rt + t) * VEC;
            if (e < cols) {
                load_vec<VEC>(&v[i * VEC], xr + e);
                if (PRE && gamma) load_vec<VEC>(&pg[i * VEC], gamma + e);
                if (PRE && beta) load_vec<VEC>(&pb[i * VEC], beta + e);
            } else {
#pragma unroll
                for (int k = 0; k < VEC; k++) v[i * VEC + k] = 0.0f;
            }
        }
        double s = 0.0;
#pragma unroll
        for (int i = 0; i < ITEMS * VEC; i++) s += (double)v[i]; /* padding slots are 0 */
        s = row_sum_d<WARP>(s, sh_d);
        const double mean = s * inv_cols;
        const float mh = (float)mean;
        const float ml = (float)(mean - (double)mh);
        float sq = 0.0f, sd = 0.0f;
#pragma unroll
        for (int i = 0; i < ITEMS; i++) {
            const int e = (i * rt + t) * VEC;
#pragma unroll
            for (int k = 0; k < VEC; k++) {
                const float d = (v[i * VEC + k] - mh) - ml;
                v[i * VEC + k] = d;
                if (e < cols) {
                    sq = fmaf(d, d, sq);
                    sd += d;
                }
            }
        }
        row_sum_f2<WARP>(sq, sd, sh_f);
        double var = ((double)sq - (double)sd * (double)sd * inv_cols) * inv_cols;
        if (var < 0.0) var = 0.0;
        const float rstd = (float)rsqrt(var + eps);
#pragma unroll
        for (int i = 0; i < ITEMS; i++) {
            const int e = (i * rt + t) * VEC;
            if (e < cols) {
                float y[VEC], g[VEC], b[VEC];
#pragma unroll
                for (int k = 0; k < VEC; k++) y[k] = v[i * VEC + k] * rstd;
                if (gamma) {
                    if (PRE) {
#pragma unroll
                        for (int k = 0; k < VEC; k++) g[k] = pg[i * VEC + k];
                    } else {
                        load_vec<VEC>(g, gamma + e);
                    }
#pragma unroll
                    for (int k = 0; k < VEC; k++) y[k] *= g[k];
                }
                if (beta) {
                    if (PRE) {
#pragma unroll
                        for (int k = 0; k < VEC; k++) b[k] = pb[i * VEC + k];
                    } else {
                        load_vec<VEC>(b, beta + e);
                    }
#pragma unroll
                    for (int k = 0; k < VEC; k++) y[k] += b[k];
                }
                store_vec<VEC>(orow + e, y);
            }
        }
    }
}

/* ---- big rows: three passes over device memory ------------------------------------------------------ */

template <typename S, int VEC>
__global__ void __launch_bounds__(LN_BIG_THREADS)
    ln_big_kernel(const S *x, const S *gamma, const S *beta, S *out, int64_t rows, int64_t cols, double eps) {
    __shared__ double sh_d[32];
    const int64_t nvec = cols / VEC;
    const double inv_cols = 1.0 / (double)cols;
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const S *xr = x + row * cols;
        S *orow = out + row * cols;
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < nvec; j += blockDim.x) {
            float q[VEC];
            load_vec<VEC>(q, xr + j * VEC);
#pragma unroll
            for (int k = 0; k < VEC; k++) s += (double)q[k];
        }
        s = row_sum_d<false>(s, sh_d);
        const double mean = s * inv_cols;
        const float mh = (float)mean;
        const float ml = (float)(mean - (double)mh);
        double sq = 0.0, sd = 0.0;
        for (int64_t j = threadIdx.x; j < nvec; j += blockDim.x) {
            float q[VEC];
            load_vec<VEC>(q, xr + j * VEC);
#pragma unroll
            for (int k = 0; k < VEC; k++) {
                const float d = (q[k] - mh) - ml;
                sq += (double)d * (double)d;
                sd += (double)d;
            }
        }
        sq = row_sum_d<false>(sq, sh_d);
        sd = row_sum_d<false>(sd, sh_d);
        double var = (sq - sd * sd * inv_cols) * inv_cols;
        if (var < 0.0) var = 0.0;
        const float rstd = (float)rsqrt(var + eps);
        for (int64_t j = threadIdx.x; j < nvec; j += blockDim.x) {
            float q[VEC], g[VEC], b[VEC];
            load_vec<VEC>(q, xr + j * VEC);
#pragma unroll
            for (int k = 0; k < VEC; k++) q[k] = ((q[k] - mh) - ml) * rstd;
            if (gamma) {
                load_vec<VEC>(g, gamma + j * VEC);
#pragma unroll
                for (int k = 0; k < VEC; k++) q[k] *= g[k];
            }
            if (beta) {
                load_vec<VEC>(b, beta + j * VEC);
#pragma unroll
                for (int k = 0; k < VEC; k++) q[k] += b[k];
            }
            store_vec<VEC>(orow + j * VEC, q);
        }
    }
}

/* ---- launcher --------------------------------------------------------------------------------------- */

static unsigned ln_grid(int64_t blocks) {
    if (blocks > LN_MAX_BLOCKS) blocks = LN_MAX_BLOCKS;
    return (unsigned)(blocks < 1 ? 1 : blocks);
}

/* p aligned to `bytes` (a power of two); NULL is aligned. */
static int aligned_to(const void *p, unsigned bytes) { return ((uintptr_t)p & (bytes - 1u)) == 0; }

/* Smallest power of two >= v (v >= 1). */
static int pow2_at_least(int64_t v) {
    int p = 1;
    while (p < v) p <<= 1;
    return p;
}

template <typename S, int VEC, int ITEMS>
static void launch_warp(const lc_layer_norm_args *a, cudaStream_t s) {
    const int rpb = LN_WARP_THREADS / 32;
    (void)lc_pdl_launch(ln_reg_kernel<S, VEC, ITEMS, true>, ln_grid((a->rows + rpb - 1) / rpb), LN_WARP_THREADS, 0, s, (const S *)a->x, (const S *)a->gamma, (const S *)a->beta, (S *)a->out, a->rows, (int)a->cols, a->eps);
}

template <typename S, int VEC, int ITEMS, bool PRE = false>
static void launch_block(const lc_layer_norm_args *a, int threads, cudaStream_t s) {
    (void)lc_pdl_launch(ln_reg_kernel<S, VEC, ITEMS, false, PRE>, ln_grid(a->rows), threads, 0, s, (const S *)a->x, (const S *)a->gamma, (const S *)a->beta, (S *)a->out, a->rows, (int)a->cols, a->eps);
}

template <typename S, int VEC> static void launch_big(const lc_layer_norm_args *a, cudaStream_t s) {
    ln_big_kernel<S, VEC><<<ln_grid(a->rows), LN_BIG_THREADS, 0, s>>>(
        (const S *)a->x, (const S *)a->gamma, (const S *)a->beta, (S *)a->out, a->rows, a->cols, a->eps);
}

/* Threads per row for `units` items of work, `per` a thread: a multiple of 32, at least 64. */
static int block_threads(int64_t units, int per) {
    int64_t t = (units + per - 1) / per;
    t = (t + 31) / 32 * 32;
    return (int)(t < 64 ? 64 : t);
}

/* Vector path (4 elements a load) when cols % 4 == 0 and every pointer is aligned to 4 elements. */
template <typename S> static int ln_vec_ok(const lc_layer_norm_args *a) {
    const unsigned b = 4u * (unsigned)sizeof(S);
    return a->cols % 4 == 0 && aligned_to(a->x, b) && aligned_to(a->out, b) && aligned_to(a->gamma, b) &&
           aligned_to(a->beta, b);
}

template <typename S> static cudaError_t launch_ln(const lc_layer_norm_args *a, cudaStream_t stream) {
    const int64_t cols = a->cols;
    if (ln_vec_ok<S>(a)) {
        const int64_t nv = cols / 4;
        if (a->rows <= LN_FEW_ROWS_PER_SM * (int64_t)lc_cuda_sm_count() && nv <= 1024 * 2) {
            /* few rows: a block per row, one item a thread while that fits 512 threads, gamma/beta prefetched
             * (ITEMS 4 with gamma and beta held would spill at 1024 threads: wider rows take the block path) */
            if (nv <= 512) launch_block<S, 4, 1, true>(a, block_threads(nv, 1), stream);
            else launch_block<S, 4, 2, true>(a, block_threads(nv, 2), stream);
        } else if (nv <= 32 * 8) {
            switch (pow2_at_least((nv + 31) / 32)) {
            case 1: launch_warp<S, 4, 1>(a, stream); break;
            case 2: launch_warp<S, 4, 2>(a, stream); break;
            case 4: launch_warp<S, 4, 4>(a, stream); break;
            default: launch_warp<S, 4, 8>(a, stream); break;
            }
        } else if (nv <= 1024 * 4) {
            launch_block<S, 4, 4>(a, block_threads(nv, 4), stream);
        } else {
            launch_big<S, 4>(a, stream);
        }
    } else {
        if (cols <= 32 * 32) {
            switch (pow2_at_least((cols + 31) / 32)) {
            case 1: launch_warp<S, 1, 1>(a, stream); break;
            case 2: launch_warp<S, 1, 2>(a, stream); break;
            case 4: launch_warp<S, 1, 4>(a, stream); break;
            case 8: launch_warp<S, 1, 8>(a, stream); break;
            case 16: launch_warp<S, 1, 16>(a, stream); break;
            default: launch_warp<S, 1, 32>(a, stream); break;
            }
        } else if (cols <= 1024 * 8) {
            launch_block<S, 1, 8>(a, block_threads(cols, 8), stream);
        } else {
            launch_big<S, 1>(a, stream);
        }
    }
    return cudaGetLastError();
}

extern "C" cudaError_t lc_cuda_launch_layer_norm(const lc_layer_norm_args *a, cudaStream_t stream) {
    if (!a || a->rows < 0 || a->cols < 1 || !(a->eps > 0.0)) return cudaErrorInvalidValue;
    if (a->rows == 0) return cudaSuccess;
    if (!a->x || !a->out) return cudaErrorInvalidValue;
    switch (a->dtype) {
    case LC_DTYPE_F32: return launch_ln<float>(a, stream);
    case LC_DTYPE_F16: return launch_ln<__half>(a, stream);
    case LC_DTYPE_BF16: return launch_ln<__nv_bfloat16>(a, stream);
    default: return cudaErrorInvalidValue;
    }
}

#ifdef LC_CUDA_DEVCHECK
/* devcheck only (float32): force a path. mode 0 = the launcher's choice, 1 = big (three passes), 2 = block
 * path with `threads` threads per row (float4, ITEMS chosen to fit; falls back to the choice if impossible). */
extern "C" cudaError_t lc_cuda_layer_norm_forced(const lc_layer_norm_args *a, int mode, int threads,
                                                 cudaStream_t stream) {
    if (a->dtype != LC_DTYPE_F32) return lc_cuda_launch_layer_norm(a, stream);
    if (mode == 1) {
        if (ln_vec_ok<float>(a))
            launch_big<float, 4>(a, stream);
        else
            launch_big<float, 1>(a, stream);
        return cudaGetLastError();
    }
    if (mode == 2 && a->cols % 4 == 0 && threads % 32 == 0 && threads >= 64 && threads <= 1024) {
        const int64_t nv = a->cols / 4;
        if (nv <= (int64_t)threads) launch_block<float, 4, 1>(a, threads, stream);
        else if (nv <= 2 * (int64_t)threads) launch_block<float, 4, 2>(a, threads, stream);
        else if (nv <= 4 * (int64_t)threads) launch_block<float, 4, 4>(a, threads, stream);
        else return lc_cuda_launch_layer_norm(a, stream);
        return cudaGetLastError();
    }
    return lc_cuda_launch_layer_norm(a, stream);
}
#endif

LC_TL_READER(lc_tl_read_layer_norm_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
