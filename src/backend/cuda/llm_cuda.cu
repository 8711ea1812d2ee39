/* llm_cuda.cu — CUDA kernels of the LLM building blocks (backend.h argument structs): rms_norm and softmax
 * per row of the last axis, silu / silu_mul, add / mul with broadcasting. Templates on the storage type S
 * (float, __half, __nv_bfloat16; add / mul also double): 16-bit elements are loaded as float (lowp.cuh),
 * the arithmetic is float32 and each result is rounded once to S.
 *  - rms_norm: one block a row, Σx² in float per thread, reduced through warp shuffles and shared memory
 *    in float64; rstd = rsqrt(Σx²/cols + eps) in float64; out = (x*rstd)*w. Register path (x, w, out
 *    16-byte aligned, cols a multiple of 16 bytes, up to 2048 16-byte vectors): 32..512 threads a row hold
 *    up to 4 vectors of x and of w each, all loaded before the reduction (one pass, one round of load
 *    latency: the decode case of 1 row x 2048); otherwise 32..1024 scalar threads, two passes over x.
 *  - softmax: one block a row; max, Σ exp(x - max) (float64 reduction), then exp(x - max) / Σ. NaN / +inf
 *    / all -inf rows give NaN everywhere (fmaxf skips NaN, which then reaches Σ), as the CPU kernel.
 *  - silu: σ from e = expf(-|x|) (x >= 0: 1/(1+e), else e/(1+e)) (OpSilu, activation.cuh), grid-stride over
 *    elements (silu_mul_linear's fallback: rows of a pitched [m, 2k] gate | up).
 *  - add / mul: grid-stride over out's elements; the contiguous case (equal shapes) is flat, the others
 *    decompose the index over the 4 normalised axes (zero strides on broadcast axes).
 * Every row's reads of x come before its writes (reductions end in barriers), so out == x is safe; the
 * elementwise kernels read element i before writing it.
 * Tests: tests/c/test_ops_llm.c and tests/python/test_ops_llm.py on device "cuda" (GPU machine). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/lowp.cuh"
#include "backend/cuda/pdl.cuh"

#define LLM_MAX_GRID (1 << 20)
#define RMS_REG_THREADS 512 /* rms_norm register path: threads a row at most (up to 8 vectors each) */

template <typename S> __device__ __forceinline__ float ldf(const S *p, int64_t i) { return (float)Elem<S>::ld(p[i]); }
template <> __device__ __forceinline__ float ldf<float>(const float *p, int64_t i) { return p[i]; }
template <typename S> __device__ __forceinline__ void stf(S *p, int64_t i, float v) { p[i] = Elem<S>::st(v); }
template <> __device__ __forceinline__ void stf<float>(float *p, int64_t i, float v) { p[i] = v; }

/* Block-wide reductions (blockDim.x a multiple of 32, <= 1024); every thread gets the result; `sh` may be
 * reused after the call (it ends with a barrier). */
__device__ __forceinline__ double block_sum_d(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    return v;
}

__device__ __forceinline__ float block_max_f(float v, float *sh) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    return v;
}

/* ---- rms_norm ----------------------------------------------------------------------------------------- */

template <typename S>
__global__ void rms_norm_kernel(const S *x, const S *w, S *out, int64_t rows, int64_t cols, double eps) {
    lc_pdl_entry(); /* pdl.cuh */
    __shared__ double sh[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const S *xr = x + r * cols;
        S *orow = out + r * cols;
        float ss = 0.0f;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const float v = ldf(xr, j);
            ss = fmaf(v, v, ss);
        }
        const double tot = block_sum_d((double)ss, sh);
        const float rstd = (float)rsqrt(tot / (double)cols + eps);
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            float y = ldf(xr, j) * rstd;
            if (w) y *= ldf(w, j);
            stf(orow, j, y);
        }
    }
}

/* The register path: 16-byte aligned x, w and out, cols a multiple of V = 16 / sizeof(S). Thread t of a
 * row's block holds vectors t, t + T, ..., N <= 4 of them (T = blockDim.x), of x and of w, all loaded before the
 * reduction: one pass over device memory, one round of load latency. Same arithmetic as rms_norm_kernel
 * (a thread's Σx² in float in element order, the block's sum and rstd in float64). */
template <typename S, int N>
__global__ void __launch_bounds__(RMS_REG_THREADS) rms_reg_kernel(const S *x, const S *w, S *out, int64_t rows, int cols, double eps) {
    lc_pdl_entry(); /* pdl.cuh */
    constexpr int V = 16 / (int)sizeof(S);
    __shared__ double sh[32];
    const int nv = cols / V, nt = (int)blockDim.x, t = (int)threadIdx.x;
    uint4 wv[N];
#pragma unroll
    for (int i = 0; i < N; i++) {
        const int c = t + i * nt;
        wv[i] = w && c < nv ? __ldg(reinterpret_cast<const uint4 *>(w) + c) : make_uint4(0u, 0u, 0u, 0u);
    }
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const uint4 *xr = reinterpret_cast<const uint4 *>(x + r * (int64_t)cols);
        uint4 xv[N];
#pragma unroll
        for (int i = 0; i < N; i++) {
            const int c = t + i * nt;
            xv[i] = c < nv ? xr[c] : make_uint4(0u, 0u, 0u, 0u); /* zero padding adds nothing to Σx² */
        }
        float ss = 0.0f;
#pragma unroll
        for (int i = 0; i < N; i++) {
            const S *e = reinterpret_cast<const S *>(&xv[i]);
#pragma unroll
            for (int m = 0; m < V; m++) {
                const float v = ldf(e, m);
                ss = fmaf(v, v, ss);
            }
        }
        const double tot = block_sum_d((double)ss, sh);
        const float rstd = (float)rsqrt(tot / (double)cols + eps);
        uint4 *orow = reinterpret_cast<uint4 *>(out + r * (int64_t)cols);
#pragma unroll
        for (int i = 0; i < N; i++) {
            const int c = t + i * nt;
            if (c >= nv) continue;
            const S *e = reinterpret_cast<const S *>(&xv[i]);
            const S *g = reinterpret_cast<const S *>(&wv[i]);
            uint4 o;
            S *y = reinterpret_cast<S *>(&o);
#pragma unroll
            for (int m = 0; m < V; m++) {
                float v = ldf(e, m) * rstd;
                if (w) v *= ldf(g, m);
                stf(y, m, v);
            }
            orow[c] = o;
        }
    }
}

/* ---- softmax ------------------------------------------------------------------------------------------ */

template <typename S> __global__ void softmax_kernel(const S *x, S *out, int64_t rows, int64_t cols) {
    __shared__ double shd[32];
    __shared__ float shf[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const S *xr = x + r * cols;
        S *orow = out + r * cols;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, ldf(xr, j));
        m = block_max_f(m, shf);
        float s = 0.0f;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += expf(ldf(xr, j) - m);
        const double tot = block_sum_d((double)s, shd);
        const float inv = (float)(1.0 / tot);
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) stf(orow, j, expf(ldf(xr, j) - m) * inv);
    }
}

/* ---- silu / silu_mul ---------------------------------------------------------------------------------- */

/* silu(x) is OpSilu (activation.cuh), shared with the GEMV's SwiGLU prologue (bit-identical results). cols > 0:
 * a and b are rows of cols elements at row pitch `pitch` (silu_mul_linear's gate | up halves), out contiguous. */
template <typename S> __global__ void silu_kernel(const S *a, const S *b, S *out, int64_t n, int64_t cols, int64_t pitch) {
    lc_pdl_entry(); /* pdl.cuh */
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t src = cols > 0 ? (i / cols) * pitch + i % cols : i;
        float y = OpSilu()(ldf(a, src));
        if (b) y *= ldf(b, src);
        stf(out, i, y);
    }
}

/* ---- add / mul ---------------------------------------------------------------------------------------- */

template <typename S> __device__ __forceinline__ typename Elem<S>::C ldc(const S *p, int64_t i) { return Elem<S>::ld(p[i]); }

struct bc_shape {
    int64_t s[4], as[4], bs[4];
};

template <typename S, bool CONTIG, bool MUL>
__global__ void bcast_kernel(const S *a, const S *b, S *out, int64_t n, bc_shape sh) {
    lc_pdl_entry(); /* pdl.cuh */
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ia = i, ib = i;
        if (!CONTIG) {
            int64_t t = i;
            const int64_t i3 = t % sh.s[3];
            t /= sh.s[3];
            const int64_t i2 = t % sh.s[2];
            t /= sh.s[2];
            const int64_t i1 = t % sh.s[1], i0 = t / sh.s[1];
            ia = i0 * sh.as[0] + i1 * sh.as[1] + i2 * sh.as[2] + i3 * sh.as[3];
            ib = i0 * sh.bs[0] + i1 * sh.bs[1] + i2 * sh.bs[2] + i3 * sh.bs[3];
        }
        const typename Elem<S>::C x = ldc(a, ia), y = ldc(b, ib);
        out[i] = Elem<S>::st(MUL ? x * y : x + y);
    }
}

/* ---- launchers ---------------------------------------------------------------------------------------- */

static unsigned grid_for(int64_t units, int threads) {
    int64_t g = (units + threads - 1) / threads;
    if (g > LLM_MAX_GRID) g = LLM_MAX_GRID;
    return (unsigned)(g < 1 ? 1 : g);
}

static unsigned grid_rows(int64_t rows) { return (unsigned)(rows > LLM_MAX_GRID ? LLM_MAX_GRID : rows < 1 ? 1 : rows); }

/* Threads of a row's block: about 8 elements a thread, a multiple of 32 in 32..1024. */
static int row_threads(int64_t cols) {
    int64_t t = (cols + 7) / 8;
    t = (t + 31) / 32 * 32;
    return (int)(t < 32 ? 32 : t > 1024 ? 1024 : t);
}

template <typename S> static cudaError_t launch_rms(const lc_rms_norm_args *a, cudaStream_t s) {
    const int64_t V = 16 / (int64_t)sizeof(S), nv = a->cols / V;
    const int aligned = ((uintptr_t)a->x % 16) == 0 && ((uintptr_t)a->out % 16) == 0 && ((uintptr_t)a->weight % 16) == 0;
    if (aligned && a->cols % V == 0 && nv <= 4 * RMS_REG_THREADS) {
        /* vectors a thread: the smallest N in 1, 2, 4 with nv <= RMS_REG_THREADS·N; threads to cover nv */
        const int n = nv <= RMS_REG_THREADS ? 1 : nv <= 2 * RMS_REG_THREADS ? 2 : 4;
        int64_t t = (nv + n - 1) / n;
        t = (t + 31) / 32 * 32;
        const unsigned g = grid_rows(a->rows);
        const int threads = (int)t, cols = (int)a->cols;
        const S *x = (const S *)a->x, *w = (const S *)a->weight;
        S *o = (S *)a->out;
        switch (n) {
        case 1: (void)lc_pdl_launch(rms_reg_kernel<S, 1>, g, threads, 0, s, x, w, o, a->rows, cols, a->eps); break;
        case 2: (void)lc_pdl_launch(rms_reg_kernel<S, 2>, g, threads, 0, s, x, w, o, a->rows, cols, a->eps); break;
        default: (void)lc_pdl_launch(rms_reg_kernel<S, 4>, g, threads, 0, s, x, w, o, a->rows, cols, a->eps); break;
        }
        return cudaGetLastError();
    }
    (void)lc_pdl_launch(rms_norm_kernel<S>, grid_rows(a->rows), row_threads(a->cols), 0, s, (const S *)a->x, (const S *)a->weight,
                                                                          (S *)a->out, a->rows, a->cols, a->eps);
    return cudaGetLastError();
}

extern "C" cudaError_t lc_cuda_launch_rms_norm(const lc_rms_norm_args *a, cudaStream_t stream) {
    if (!a || a->rows < 0 || a->cols < 1 || !(a->eps > 0.0)) return cudaErrorInvalidValue;
    if (a->rows == 0) return cudaSuccess;
    if (!a->x || !a->out) return cudaErrorInvalidValue;
    switch (a->dtype) {
    case LC_DTYPE_F32: return launch_rms<float>(a, stream);
    case LC_DTYPE_F16: return launch_rms<__half>(a, stream);
    case LC_DTYPE_BF16: return launch_rms<__nv_bfloat16>(a, stream);
    default: return cudaErrorInvalidValue;
    }
}

template <typename S> static cudaError_t launch_softmax(const lc_softmax_args *a, cudaStream_t s) {
    softmax_kernel<S><<<grid_rows(a->rows), row_threads(a->cols), 0, s>>>((const S *)a->x, (S *)a->out, a->rows, a->cols);
    return cudaGetLastError();
}

extern "C" cudaError_t lc_cuda_launch_softmax(const lc_softmax_args *a, cudaStream_t stream) {
    if (!a || a->rows < 0 || a->cols < 1) return cudaErrorInvalidValue;
    if (a->rows == 0) return cudaSuccess;
    if (!a->x || !a->out) return cudaErrorInvalidValue;
    switch (a->dtype) {
    case LC_DTYPE_F32: return launch_softmax<float>(a, stream);
    case LC_DTYPE_F16: return launch_softmax<__half>(a, stream);
    case LC_DTYPE_BF16: return launch_softmax<__nv_bfloat16>(a, stream);
    default: return cudaErrorInvalidValue;
    }
}

template <typename S> static cudaError_t launch_silu(const lc_silu_args *a, cudaStream_t s) {
    (void)lc_pdl_launch(silu_kernel<S>, grid_for(a->n, 256), 256, 0, s, (const S *)a->a, (const S *)a->b, (S *)a->out, a->n,
                        a->cols, a->pitch);
    return cudaGetLastError();
}

extern "C" cudaError_t lc_cuda_launch_silu(const lc_silu_args *a, cudaStream_t stream) {
    if (!a || a->n < 0 || a->cols < 0 || (a->cols > 0 && (a->n % a->cols != 0 || a->pitch < a->cols)))
        return cudaErrorInvalidValue;
    if (a->n == 0) return cudaSuccess;
    if (!a->a || !a->out) return cudaErrorInvalidValue;
    switch (a->dtype) {
    case LC_DTYPE_F32: return launch_silu<float>(a, stream);
    case LC_DTYPE_F16: return launch_silu<__half>(a, stream);
    case LC_DTYPE_BF16: return launch_silu<__nv_bfloat16>(a, stream);
    default: return cudaErrorInvalidValue;
    }
}

template <typename S> static cudaError_t launch_bcast(const lc_bcast_args *a, int64_t n, cudaStream_t s) {
    bc_shape sh;
    for (int k = 0; k < 4; k++) sh.s[k] = a->shape[k], sh.as[k] = a->a_st[k], sh.bs[k] = a->b_st[k];
    const unsigned g = grid_for(n, 256);
    const S *x = (const S *)a->a, *y = (const S *)a->b;
    S *o = (S *)a->out;
    const bool mul = a->kind == LC_BCAST_MUL;
    if (a->contig) {
        if (mul) (void)lc_pdl_launch(bcast_kernel<S, true, true>, g, 256, 0, s, x, y, o, n, sh);
        else (void)lc_pdl_launch(bcast_kernel<S, true, false>, g, 256, 0, s, x, y, o, n, sh);
    } else {
        if (mul) (void)lc_pdl_launch(bcast_kernel<S, false, true>, g, 256, 0, s, x, y, o, n, sh);
        else (void)lc_pdl_launch(bcast_kernel<S, false, false>, g, 256, 0, s, x, y, o, n, sh);
    }
    return cudaGetLastError();
}

extern "C" cudaError_t lc_cuda_launch_bcast(const lc_bcast_args *a, cudaStream_t stream) {
    if (!a) return cudaErrorInvalidValue;
    int64_t n = 1;
    for (int k = 0; k < 4; k++) {
        if (a->shape[k] < 0) return cudaErrorInvalidValue;
        n *= a->shape[k];
    }
    if (n == 0) return cudaSuccess;
    if (!a->a || !a->b || !a->out) return cudaErrorInvalidValue;
    switch (a->dtype) {
    case LC_DTYPE_F32: return launch_bcast<float>(a, n, stream);
    case LC_DTYPE_F64: return launch_bcast<double>(a, n, stream);
    case LC_DTYPE_F16: return launch_bcast<__half>(a, n, stream);
    case LC_DTYPE_BF16: return launch_bcast<__nv_bfloat16>(a, n, stream);
    default: return cudaErrorInvalidValue;
    }
}

LC_TL_READER(lc_tl_read_llm_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
