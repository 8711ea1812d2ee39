/* sample_cuda.cu — the sample op on the GPU (lc_sample_args, core/backend.h): one block a row of logits
 * [rows, cols] (float32/float16/bfloat16/float64), the same arithmetic as the CPU kernel (sample_cpu.c) from
 * core/sample_math.h, so both pick the same token:
 *   pass 1: the row's maximum of s = (float)x / temperature, and its first NaN (a row with a NaN gets that
 *           index: a kernel cannot refuse the call);
 *   top-k:  the k-th largest key by radix select, 4 passes of 8-bit digits (shared 256-bin histograms; each
 *           thread adds runs of one bin once, so the few busy bins of the top digit see few atomics; a warp
 *           scans the bins);
 *   total:  the kept weights summed (integers: exact, any order);
 *   top-p:  the same radix select over weights;
 *   draw:   each thread sums its own contiguous slice, a block scan of the slice sums, and the thread whose
 *           slice holds floor(u * kept total) walks it in index order.
 * The step is read from *counter on the device; a second one-thread launch adds 1 to it after every row
 * read it. No allocation, no host read, no sync: the call can be captured in a CUDA graph.
 * Tests: tests/python/test_sample.py (CUDA cases on the GPU machine: tokens equal to the CPU's). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <limits.h>
#include <stdint.h>

#include "backend/cuda/cuda_kernels.h"
#include "core/sample_math.h"

template <typename T> __device__ __forceinline__ float smp_load(const T *p, int64_t i) { return (float)p[i]; }
template <> __device__ __forceinline__ float smp_load<__half>(const __half *p, int64_t i) { return __half2float(p[i]); }
template <> __device__ __forceinline__ float smp_load<__nv_bfloat16>(const __nv_bfloat16 *p, int64_t i) {
    return __bfloat162float(p[i]);
}
template <> __device__ __forceinline__ float smp_load<double>(const double *p, int64_t i) { return __double2float_rn(p[i]); }

struct smp_shared {
    unsigned long long hist[256];
    unsigned long long red[32];
    float redf[32];
    long long redi[32];
    uint32_t prefix;
    unsigned long long above, last;
};

/* Block sum of unsigned 64-bit values (every thread gets it). */
__device__ __forceinline__ unsigned long long smp_sum(smp_shared &sh, unsigned long long v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (int)(blockDim.x >> 5);
    __syncthreads();
    if (lane == 0) sh.red[warp] = v;
    __syncthreads();
    unsigned long long t = 0;
    for (int i = 0; i < nw; i++) t += sh.red[i];
    return t;
}

template <typename T>
__device__ __forceinline__ float smp_s(const T *row, int64_t j, float temperature) {
    return smp_load(row, j) / temperature;
}

/* The largest key t with W(t) = sum of w over {key >= t, key >= floor_key} >= target (w: 1, or the weight when
 * MASS), and W(t) in *wt; uniform across the block. */
template <typename T, bool MASS>
__device__ uint32_t smp_select(smp_shared &sh, const T *row, int64_t cols, float temperature, float m, uint32_t floor_key,
                               unsigned long long target, unsigned long long *wt) {
    uint32_t prefix = 0, mask = 0;
    unsigned long long above = 0, last = 0;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) sh.hist[i] = 0;
        __syncthreads();
        int run_bin = -1;
        unsigned long long run = 0;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const float s = smp_s(row, j, temperature);
            const uint32_t k = lc_sample_key(s);
            if ((k & mask) != prefix || k < floor_key) continue;
            const unsigned long long w = MASS ? lc_sample_weight(s, m) : 1ull;
            if (w == 0) continue;
            const int b = (int)((k >> shift) & 255u);
            if (b != run_bin) {
                if (run) atomicAdd(&sh.hist[run_bin], run);
                run_bin = b, run = 0;
            }
            run += w;
        }
        if (run) atomicAdd(&sh.hist[run_bin], run);
        __syncthreads();
        if (warp == 0) {
            /* lane l holds bins 255 - 8l .. 248 - 8l (high to low) */
            unsigned long long v[8], sum = 0;
            for (int i = 0; i < 8; i++) v[i] = sh.hist[255 - (lane * 8 + i)], sum += v[i];
            unsigned long long inc = sum;
            for (int off = 1; off < 32; off <<= 1) {
                const unsigned long long o = __shfl_up_sync(0xffffffffu, inc, off);
                if (lane >= off) inc += o;
            }
            const unsigned long long need = target - above; /* > 0 by the invariant */
            const unsigned ballot = __ballot_sync(0xffffffffu, inc >= need);
            const int first = ballot ? __ffs(ballot) - 1 : 31;
            if (lane == first) {
                unsigned long long acc = inc - sum;
                int sel = 255 - (lane * 8 + 7);
                unsigned long long selw = v[7];
                for (int i = 0; i < 8; i++) {
                    if (acc + v[i] >= need || i == 7) {
                        sel = 255 - (lane * 8 + i), selw = v[i];
                        break;
                    }
                    acc += v[i];
                }
                sh.prefix = prefix | ((uint32_t)sel << shift);
                sh.above = above + acc;
                sh.last = selw;
            }
        }
        __syncthreads();
        prefix = sh.prefix;
        above = sh.above;
        last = sh.last;
        mask |= 255u << shift;
        __syncthreads(); /* before the next level clears the histogram */
    }
    *wt = above + last;
    return prefix;
}

template <typename T>
__global__ void sample_kernel(const T *__restrict__ x, int64_t *__restrict__ out, int64_t rows, int64_t cols,
                              float temperature, int64_t top_k, float top_p, uint64_t seed,
                              const int64_t *__restrict__ counter) {
    __shared__ smp_shared sh;
    const uint64_t step = counter ? (uint64_t)*counter : 0u;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (int)(blockDim.x >> 5);
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *row = x + r * cols;
        /* pass 1: maximum and the first NaN */
        float m = -INFINITY;
        long long nan_at = LLONG_MAX;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const float s = smp_s(row, j, temperature);
            if (s != s) {
                nan_at = j;
                break;
            }
            m = fmaxf(m, s);
        }
        for (int off = 16; off > 0; off >>= 1) {
            m = fmaxf(m, __shfl_down_sync(0xffffffffu, m, off));
            const long long o = __shfl_down_sync(0xffffffffu, nan_at, off);
            nan_at = o < nan_at ? o : nan_at;
        }
        __syncthreads();
        if (lane == 0) sh.redf[warp] = m, sh.redi[warp] = nan_at;
        __syncthreads();
        m = -INFINITY;
        nan_at = LLONG_MAX;
        for (int i = 0; i < nw; i++) {
            m = fmaxf(m, sh.redf[i]);
            nan_at = sh.redi[i] < nan_at ? sh.redi[i] : nan_at;
        }
        if (nan_at != LLONG_MAX) {
            if (threadIdx.x == 0) out[r] = nan_at;
            continue;
        }
        /* top-k, total, top-p */
        uint32_t thr = 0;
        unsigned long long total;
        if (top_k > 0 && top_k < cols) thr = smp_select<T, false>(sh, row, cols, temperature, m, 0, (unsigned long long)top_k, &total);
        unsigned long long part = 0;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const float s = smp_s(row, j, temperature);
            if (lc_sample_key(s) >= thr) part += lc_sample_weight(s, m);
        }
        total = smp_sum(sh, part);
        if (top_p < 1.0f) {
            unsigned long long target = (unsigned long long)ceil((double)top_p * (double)total);
            if (target > total) target = total;
            if (target < 1) target = 1;
            thr = smp_select<T, true>(sh, row, cols, temperature, m, thr, target, &total);
        }
        const unsigned long long goal = lc_sample_mulhi(lc_sample_bits(seed, step, (uint64_t)r), total);
        /* draw: contiguous slices, a block scan of their sums */
        const int64_t per = (cols + blockDim.x - 1) / blockDim.x;
        const int64_t j0 = (int64_t)threadIdx.x * per, j1 = j0 + per < cols ? j0 + per : cols;
        unsigned long long mine = 0;
        for (int64_t j = j0; j < j1; j++) {
            const float s = smp_s(row, j, temperature);
            if (lc_sample_key(s) >= thr) mine += lc_sample_weight(s, m);
        }
        unsigned long long inc = mine;
        for (int off = 1; off < 32; off <<= 1) {
            const unsigned long long o = __shfl_up_sync(0xffffffffu, inc, off);
            if (lane >= off) inc += o;
        }
        __syncthreads();
        if (lane == 31) sh.red[warp] = inc;
        __syncthreads();
        unsigned long long base = 0;
        for (int i = 0; i < warp; i++) base += sh.red[i];
        const unsigned long long excl = base + inc - mine;
        if (mine > 0 && excl <= goal && goal < excl + mine) {
            unsigned long long acc = excl;
            for (int64_t j = j0; j < j1; j++) {
                const float s = smp_s(row, j, temperature);
                if (lc_sample_key(s) < thr) continue;
                acc += lc_sample_weight(s, m);
                if (acc > goal) {
                    out[r] = j;
                    break;
                }
            }
        }
        __syncthreads(); /* shared state is reused by the next row */
    }
}

__global__ void sample_counter_kernel(int64_t *counter) { *counter = (int64_t)((uint64_t)*counter + 1u); }

template <typename T>
static void smp_launch(const lc_sample_args *a, const T *x, int blocks, int threads, cudaStream_t stream) {
    sample_kernel<T><<<blocks, threads, 0, stream>>>(x, a->out, a->rows, a->cols, a->temperature, a->top_k, a->top_p,
                                                     a->seed, a->counter);
}

cudaError_t lc_cuda_launch_sample(const lc_sample_args *a, cudaStream_t stream) {
    if (a->rows > 0) {
        const int blocks = (int)(a->rows < 65535 ? a->rows : 65535);
        const int threads = a->cols >= 8192 ? 1024 : a->cols >= 1024 ? 256 : 64;
        switch (a->dtype) {
        case LC_DTYPE_F32: smp_launch(a, (const float *)a->logits, blocks, threads, stream); break;
        case LC_DTYPE_F64: smp_launch(a, (const double *)a->logits, blocks, threads, stream); break;
        case LC_DTYPE_F16: smp_launch(a, (const __half *)a->logits, blocks, threads, stream); break;
        case LC_DTYPE_BF16: smp_launch(a, (const __nv_bfloat16 *)a->logits, blocks, threads, stream); break;
        default: return cudaErrorInvalidValue;
        }
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    if (a->counter) sample_counter_kernel<<<1, 1, 0, stream>>>(a->counter);
    return cudaGetLastError();
}
