/* elementwise_cuda.cu — CUDA kernels of the elementwise ops: binary add/sub/div (float32, float64,
 * float16, bfloat16), relu (the same four; NaN propagates) and gelu (float32, float16, bfloat16; erf and
 * tanh forms). The kernels are templates on the storage type: float16/bfloat16 elements are loaded as
 * float, computed by the float32 op and stored rounded once to nearest even (Elem<T>); 16-byte vectors
 * hold 8 of them (V8). Only the dtypes dispatched are instantiated.
 *
 * Shapes: flat device buffers of n elements (n may exceed 2^31: all indexing is 64-bit); `out` may be
 * exactly `a`, `b` or `x` (each thread reads element i before it writes element i, nothing else).
 * Kernels: one grid-stride kernel per op family, templated on the element type and the operation.
 * When every pointer has the same offset modulo 16 bytes, the body runs on 16-byte vectors (float4 /
 * double2), four per thread per iteration so that several loads are in flight; the few elements before
 * the first aligned vector (head) and after the last full one (tail) are done by the first threads of
 * the grid. Otherwise (pointers misaligned against each other) a scalar grid-stride loop runs.
 * Launch: 256 threads a block, one block per 256 vectors (one vector a thread); float32 gelu's pipelined
 * kernel at most 8 blocks per multiprocessor (the SM count is read once per device and cached), its
 * grid-stride loop covering the rest (ew_blocks).
 *
 * gelu: erf form x·Φ(x) with CUDA's normcdff (accurate in the lower tail, unlike 0.5x(1 + erf(x/√2)));
 * tanh form x / (1 + exp(w)), w = -2√(2/π)(x + 0.044715x³) evaluated as a float pair (error-free
 * products and sums: in plain float the rounding of w alone costs ~|w|·6e-8 relative in the negative
 * tail), exp from the CPU kernel's polynomial. Both saturate cleanly (gelu(+big) = x, gelu(-big) = -0;
 * tanh form results below ~1e-37 flushed to ±0, as the CPU kernel), keep NaN and never overflow
 * (±1e30, ±3e38). For float16 / bfloat16 storage the cheaper forms of activation.cuh (GeluOps: branch-free,
 * a fitted erfc for the erf form, plain-float tanh argument; float32 error < 2e-5, absorbed by the 16-bit
 * rounding; every 16-bit value checked in tests/python/test_ops_elementwise.py::test_gelu_16bit_every_value).
 * gelu runs the pipelined kernel (one vector a thread, the next prefetched before the current one is
 * computed, 32 registers): float32, compute-heavy (~35-60 instructions an element), on a capped grid with
 * a grid-stride loop; the 16-bit forms (~18 instructions an element) on the full grid.
 * Max relative error vs float64 on an H200 (dense sweep of 4M points over [-15, 15] plus ±1e-30..1e30,
 * devcheck/kernels): erf 3.6e-7, tanh 2.0e-7.
 * Tests: tests/c/test_ops.c (vector_add / matrix_sub / matrix_div / relu / gelu groups) and
 * tests/python/test_ops_elementwise.py on device "cuda".
 */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/lowp.cuh"

#define EW_THREADS 256
#define EW_UNROLL 4
#define EW_BLOCKS_PER_SM 8

/* ---- launch configuration --------------------------------------------------------------------------- */

/* Blocks per SM of the cap, read once per process: LC_EW_BPS (1..1024; "0": no cap) for A/B runs, else -1
 * (the kernel's default below). */
static int64_t ew_env_bps(void) {
    static const int64_t v = [] {
        const char *e = getenv("LC_EW_BPS");
        if (!e) return (int64_t)-1;
        const int x = atoi(e);
        return x == 0 && e[0] == '0' ? (int64_t)0 : x >= 1 && x <= 1024 ? (int64_t)x : (int64_t)-1;
    }();
    return v;
}

/* The unary launch's kernel, fixed per op and dtype at compile time (only the kernel a launch can take is
 * instantiated): the unrolled one (4 vectors a thread in flight, the memory-bound ops), or the pipelined one
 * (one vector a thread and the next prefetched: few registers, for arithmetic-heavy ops) on the full grid or
 * capped at EW_BLOCKS_PER_SM. */
enum ew_unary_kind { EW_PLAIN, EW_PIPELINED, EW_PIPELINED_CAPPED };

/* Blocks for `work` items of one thread each. The memory-bound kernels take one block per 256 items, no
 * cap (each thread one vector, every load of the grid issued at once: bf16 vector_add of 64M elements on the
 * H100, session 13, 142.7 -> 133.6 us, 0.94x -> 1.01x torch.add, against a cap of 8 blocks a SM);
 * `capped` (float32 gelu: its pipelined kernel overlaps a thread's next load with the current vector's
 * arithmetic) stays at one resident wave of EW_BLOCKS_PER_SM, the grid-stride loop doing the rest. */
static unsigned ew_blocks(int64_t work, bool capped = false) {
    int64_t b = (work + EW_THREADS - 1) / EW_THREADS;
    const int64_t env = ew_env_bps(), bps = env >= 0 ? env : capped ? EW_BLOCKS_PER_SM : 0;
    const int64_t cap = bps ? (int64_t)lc_cuda_sm_count() * bps : (int64_t)INT32_MAX;
    if (b > cap) b = cap;
    if (b < 1) b = 1;
    return (unsigned)b;
}

/* ---- operations ------------------------------------------------------------------------------------- */

struct OpAdd {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct OpSub {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a - b; }
};
struct OpDiv { /* IEEE division (the build does not use -use_fast_math) */
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a / b; }
};

/* OpRelu, OpGeluErf, OpGeluTanh, OpIdentity: activation.cuh (shared with gemv_cuda.cu). */

/* ---- storage types ------------------------------------------------------------------------------------ */

template <typename T, class Op> __device__ __forceinline__ T ew_apply(Op op, T a, T b) {
    return Elem<T>::st(op(Elem<T>::ld(a), Elem<T>::ld(b)));
}
template <typename T, class Op> __device__ __forceinline__ T ew_apply(Op op, T x) {
    return Elem<T>::st(op(Elem<T>::ld(x)));
}

/* ---- 16-byte vectors -------------------------------------------------------------------------------- */

/* Eight 16-bit floats of type T in one 16-byte word (the tag keeps the two 16-bit types apart). */
template <typename T> struct __align__(16) V8 {
    uint4 u;
};

template <typename T> struct Vec16;
template <> struct Vec16<__half> {
    typedef V8<__half> type;
    static const int n = 8;
};
template <> struct Vec16<__nv_bfloat16> {
    typedef V8<__nv_bfloat16> type;
    static const int n = 8;
};
template <> struct Vec16<float> {
    typedef float4 type;
    static const int n = 4;
};
template <> struct Vec16<double> {
    typedef double2 type;
    static const int n = 2;
};

template <class Op> __device__ __forceinline__ float4 vbin(Op op, float4 a, float4 b) {
    return make_float4(op(a.x, b.x), op(a.y, b.y), op(a.z, b.z), op(a.w, b.w));
}
template <class Op> __device__ __forceinline__ double2 vbin(Op op, double2 a, double2 b) {
    return make_double2(op(a.x, b.x), op(a.y, b.y));
}
template <class Op> __device__ __forceinline__ float4 vun(Op op, float4 a) {
    return make_float4(op(a.x), op(a.y), op(a.z), op(a.w));
}
template <class Op> __device__ __forceinline__ double2 vun(Op op, double2 a) { return make_double2(op(a.x), op(a.y)); }

/* The two lanes of a 32-bit word of 16-bit floats: op on their float32 values, each result rounded once. */
template <typename T, class Op> __device__ __forceinline__ unsigned w2bin(Op op, unsigned a, unsigned b) {
    const unsigned lo = Elem<T>::stu(op(Elem<T>::ldu((unsigned short)(a & 0xffffu)), Elem<T>::ldu((unsigned short)(b & 0xffffu))));
    const unsigned hi = Elem<T>::stu(op(Elem<T>::ldu((unsigned short)(a >> 16)), Elem<T>::ldu((unsigned short)(b >> 16))));
    return lo | (hi << 16);
}
template <typename T, class Op> __device__ __forceinline__ unsigned w2un(Op op, unsigned a) {
    const unsigned lo = Elem<T>::stu(op(Elem<T>::ldu((unsigned short)(a & 0xffffu))));
    const unsigned hi = Elem<T>::stu(op(Elem<T>::ldu((unsigned short)(a >> 16))));
    return lo | (hi << 16);
}
template <typename T, class Op> __device__ __forceinline__ V8<T> vbin(Op op, V8<T> a, V8<T> b) {
    V8<T> r;
    r.u = make_uint4(w2bin<T>(op, a.u.x, b.u.x), w2bin<T>(op, a.u.y, b.u.y), w2bin<T>(op, a.u.z, b.u.z),
                     w2bin<T>(op, a.u.w, b.u.w));
    return r;
}
template <typename T, class Op> __device__ __forceinline__ V8<T> vun(Op op, V8<T> a) {
    V8<T> r;
    r.u = make_uint4(w2un<T>(op, a.u.x), w2un<T>(op, a.u.y), w2un<T>(op, a.u.z), w2un<T>(op, a.u.w));
    return r;
}

/* ---- kernels ---------------------------------------------------------------------------------------- */

/* Vector body over [head, head + nv·VW), then the scalar head [0, head) and tail [head + nv·VW, n). */
template <typename T, class Op>
__global__ void __launch_bounds__(EW_THREADS) binary_vec_kernel(const T *a, const T *b, T *out, int64_t n, int head,
                                                                  Op op) {
    typedef typename Vec16<T>::type V;
    const int VW = Vec16<T>::n;
    const int64_t nv = (n - head) / VW;
    const V *av = (const V *)(a + head);
    const V *bv = (const V *)(b + head);
    V *ov = (V *)(out + head);
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i = tid;
    for (; i + (EW_UNROLL - 1) * stride < nv; i += EW_UNROLL * stride) {
        V x[EW_UNROLL], y[EW_UNROLL];
#pragma unroll
        for (int u = 0; u < EW_UNROLL; u++) {
            x[u] = av[i + u * stride];
            y[u] = bv[i + u * stride];
        }
#pragma unroll
        for (int u = 0; u < EW_UNROLL; u++) ov[i + u * stride] = vbin(op, x[u], y[u]);
    }
    for (; i < nv; i += stride) ov[i] = vbin(op, av[i], bv[i]);
    const int64_t tail0 = head + nv * VW;
    if (tid < head) {
        out[tid] = ew_apply(op, a[tid], b[tid]);
    } else if (tid - head < n - tail0) {
        const int64_t j = tail0 + (tid - head);
        out[j] = ew_apply(op, a[j], b[j]);
    }
}

template <typename T, class Op>
__global__ void __launch_bounds__(EW_THREADS) binary_scalar_kernel(const T *a, const T *b, T *out, int64_t n, Op op) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + (EW_UNROLL - 1) * stride < n; i += EW_UNROLL * stride) {
        T x[EW_UNROLL], y[EW_UNROLL];
#pragma unroll
        for (int u = 0; u < EW_UNROLL; u++) {
            x[u] = a[i + u * stride];
            y[u] = b[i + u * stride];
        }
#pragma unroll
        for (int u = 0; u < EW_UNROLL; u++) out[i + u * stride] = ew_apply(op, x[u], y[u]);
    }
    for (; i < n; i += stride) out[i] = ew_apply(op, a[i], b[i]);
}

template <typename T, class Op>
__global__ void __launch_bounds__(EW_THREADS) unary_vec_kernel(const T *x, T *out, int64_t n, int head, Op op) {
    typedef typename Vec16<T>::type V;
    const int VW = Vec16<T>::n;
    const int64_t nv = (n - head) / VW;
    const V *xv = (const V *)(x + head);
    V *ov = (V *)(out + head);
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i = tid;
    for (; i + (EW_UNROLL - 1) * stride < nv; i += EW_UNROLL * stride) {
        V v[EW_UNROLL];
#pragma unroll
        for (int u = 0; u < EW_UNROLL; u++) v[u] = xv[i + u * stride];
#pragma unroll
        for (int u = 0; u < EW_UNROLL; u++) ov[i + u * stride] = vun(op, v[u]);
    }
    for (; i < nv; i += stride) ov[i] = vun(op, xv[i]);
    const int64_t tail0 = head + nv * VW;
    if (tid < head) {
        out[tid] = ew_apply(op, x[tid]);
    } else if (tid - head < n - tail0) {
        const int64_t j = tail0 + (tid - head);
        out[j] = ew_apply(op, x[j]);
    }
}

/* As unary_vec_kernel, one vector a thread per iteration with the next one prefetched: for ops whose
 * arithmetic is comparable to the memory time (gelu), so both overlap within a thread. */
template <typename T, class Op>
__global__ void __launch_bounds__(EW_THREADS) unary_vec_pipelined_kernel(const T *x, T *out, int64_t n, int head,
                                                                           Op op) {
    typedef typename Vec16<T>::type V;
    const int VW = Vec16<T>::n;
    const int64_t nv = (n - head) / VW;
    const V *xv = (const V *)(x + head);
    V *ov = (V *)(out + head);
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i = tid;
    V cur;
    if (i < nv) cur = xv[i];
    for (; i < nv; i += stride) {
        V nxt = cur;
        if (i + stride < nv) nxt = xv[i + stride];
        ov[i] = vun(op, cur);
        cur = nxt;
    }
    const int64_t tail0 = head + nv * VW;
    if (tid < head) {
        out[tid] = ew_apply(op, x[tid]);
    } else if (tid - head < n - tail0) {
        const int64_t j = tail0 + (tid - head);
        out[j] = ew_apply(op, x[j]);
    }
}

template <typename T, class Op>
__global__ void __launch_bounds__(EW_THREADS) unary_scalar_kernel(const T *x, T *out, int64_t n, Op op) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + (EW_UNROLL - 1) * stride < n; i += EW_UNROLL * stride) {
        T v[EW_UNROLL];
#pragma unroll
        for (int u = 0; u < EW_UNROLL; u++) v[u] = x[i + u * stride];
#pragma unroll
        for (int u = 0; u < EW_UNROLL; u++) out[i + u * stride] = ew_apply(op, v[u]);
    }
    for (; i < n; i += stride) out[i] = ew_apply(op, x[i]);
}

/* ---- launchers -------------------------------------------------------------------------------------- */

/* Elements before the first 16-byte boundary of p (p is element-aligned). */
template <typename T> static int head_of(const void *p) {
    const unsigned mis = (unsigned)((uintptr_t)p & 15u);
    return mis ? (int)((16u - mis) / sizeof(T)) : 0;
}

template <typename T, class Op>
static cudaError_t launch_binary_t(const T *a, const T *b, T *out, int64_t n, Op op, cudaStream_t stream) {
    const uintptr_t ma = (uintptr_t)a & 15u, mb = (uintptr_t)b & 15u, mo = (uintptr_t)out & 15u;
    if (ma == mb && ma == mo && ma % sizeof(T) == 0) {
        int head = head_of<T>(a);
        if (head > n) head = (int)n;
        const int64_t nv = (n - head) / Vec16<T>::n;
        const int64_t rest = n - nv * Vec16<T>::n; /* head + tail, done one per thread */
        const int64_t work = nv > rest ? nv : rest;
        binary_vec_kernel<T, Op><<<ew_blocks(work), EW_THREADS, 0, stream>>>(a, b, out, n, head, op);
    } else {
        binary_scalar_kernel<T, Op><<<ew_blocks(n), EW_THREADS, 0, stream>>>(a, b, out, n, op);
    }
    return cudaGetLastError();
}

template <ew_unary_kind K, typename T, class Op>
static cudaError_t launch_unary_t(const T *x, T *out, int64_t n, Op op, cudaStream_t stream) {
    const uintptr_t mx = (uintptr_t)x & 15u, mo = (uintptr_t)out & 15u;
    if (mx == mo && mx % sizeof(T) == 0) {
        int head = head_of<T>(x);
        if (head > n) head = (int)n;
        const int64_t nv = (n - head) / Vec16<T>::n;
        const int64_t rest = n - nv * Vec16<T>::n;
        const int64_t work = nv > rest ? nv : rest;
        if constexpr (K != EW_PLAIN) /* gelu (launch_gelu_t) */
            unary_vec_pipelined_kernel<T, Op>
                <<<ew_blocks(work, K == EW_PIPELINED_CAPPED), EW_THREADS, 0, stream>>>(x, out, n, head, op);
        else
            unary_vec_kernel<T, Op><<<ew_blocks(work), EW_THREADS, 0, stream>>>(x, out, n, head, op);
    } else {
        unary_scalar_kernel<T, Op><<<ew_blocks(n), EW_THREADS, 0, stream>>>(x, out, n, op);
    }
    return cudaGetLastError();
}

template <typename T>
static cudaError_t launch_binary_kind(const lc_binary_args *args, cudaStream_t stream) {
    const T *a = (const T *)args->a;
    const T *b = (const T *)args->b;
    T *out = (T *)args->out;
    switch (args->kind) {
    case LC_BINARY_ADD: return launch_binary_t<T>(a, b, out, args->n, OpAdd(), stream);
    case LC_BINARY_SUB: return launch_binary_t<T>(a, b, out, args->n, OpSub(), stream);
    case LC_BINARY_DIV: return launch_binary_t<T>(a, b, out, args->n, OpDiv(), stream);
    default: return cudaErrorInvalidValue;
    }
}

template <typename T> static cudaError_t launch_relu_t(const lc_relu_args *args, cudaStream_t stream) {
    return launch_unary_t<EW_PLAIN, T>((const T *)args->x, (T *)args->out, args->n, OpRelu(), stream);
}

/* The pipelined kernel (32 registers: the unrolled one takes 45 for the erf form, 5 blocks an SM instead of 8);
 * float32 capped (its forms are ~35-60 instructions an element), float16 / bfloat16 on the full grid, one vector a
 * thread (the branch-free 16-bit forms, ~18 instructions an element). H100, session 17, bf16 64M: capped erf
 * 104.5 us, tanh 101.3 us; full grid 92.6 / 92.5 us (1.00 of the device copy); the unrolled kernel erf 100.3 us. */
template <typename T> static cudaError_t launch_gelu_t(const lc_gelu_args *args, cudaStream_t stream) {
    constexpr ew_unary_kind K = sizeof(T) == 4 ? EW_PIPELINED_CAPPED : EW_PIPELINED;
    if (args->approx == LC_GELU_TANH)
        return launch_unary_t<K, T>((const T *)args->x, (T *)args->out, args->n, typename GeluOps<T>::tanh(), stream);
    return launch_unary_t<K, T>((const T *)args->x, (T *)args->out, args->n, typename GeluOps<T>::erf(), stream);
}

/* linear's epilogue (16-bit outputs, or any dtype with a residual): out[i,j] = S(act(acc[i,j] + bias[j]) +
 * res[i,j]) from the float32 sums of the GEMM, one rounding (cuBLASLt's own 16-bit epilogues round the product
 * first: seen on the H100).
 * Threads run over columns (bias[j] loaded once), blocks over rows, both grid-stride. */
template <typename S, class Op>
__global__ void __launch_bounds__(EW_THREADS) bias_act_kernel(const float *acc, const S *bias, const S *res, S *out,
                                                                int64_t m, int64_t n, Op op) {
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (int64_t)gridDim.x * blockDim.x) {
        const float b = bias ? (float)Elem<S>::ld(bias[j]) : 0.0f;
        for (int64_t i = blockIdx.y; i < m; i += gridDim.y) {
            float v = acc[i * n + j];
            if (bias) v += b; /* no bias: -0 stays -0 */
            v = op(v);
            if (res) v += (float)Elem<S>::ld(res[i * n + j]); /* read before out[i,j] (maybe the same) is written */
            out[i * n + j] = Elem<S>::st(v);
        }
    }
}

template <typename S, class Op>
static cudaError_t launch_bias_act_t(const float *acc, const void *bias, const void *res, void *out, int64_t m,
                                     int64_t n, Op op, cudaStream_t stream) {
    int64_t bx = (n + EW_THREADS - 1) / EW_THREADS;
    if (bx > 1024) bx = 1024;
    int64_t by = ((int64_t)lc_cuda_sm_count() * EW_BLOCKS_PER_SM * 4) / bx;
    if (by < 1) by = 1;
    if (by > m) by = m;
    if (by > 65535) by = 65535;
    bias_act_kernel<S, Op><<<dim3((unsigned)bx, (unsigned)by), EW_THREADS, 0, stream>>>(acc, (const S *)bias,
                                                                                        (const S *)res, (S *)out, m, n, op);
    return cudaGetLastError();
}

template <typename S>
static cudaError_t launch_bias_act_s(const float *acc, const void *bias, const void *res, void *out, int64_t m,
                                     int64_t n, lc_activation act, cudaStream_t stream) {
    switch (act) {
    case LC_ACT_NONE: return launch_bias_act_t<S>(acc, bias, res, out, m, n, OpIdentity(), stream);
    case LC_ACT_RELU: return launch_bias_act_t<S>(acc, bias, res, out, m, n, OpRelu(), stream);
    case LC_ACT_GELU_ERF: return launch_bias_act_t<S>(acc, bias, res, out, m, n, typename GeluOps<S>::erf(), stream);
    case LC_ACT_GELU_TANH: return launch_bias_act_t<S>(acc, bias, res, out, m, n, typename GeluOps<S>::tanh(), stream);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t lc_cuda_launch_bias_act(lc_dtype dtype, const float *acc, const void *bias, const void *residual,
                                               void *out, int64_t m, int64_t n, lc_activation act, cudaStream_t stream) {
    if (m < 0 || n < 0) return cudaErrorInvalidValue;
    if (m == 0 || n == 0) return cudaSuccess;
    if (!acc || !out) return cudaErrorInvalidValue;
    if (dtype == LC_DTYPE_F32) return launch_bias_act_s<float>(acc, bias, residual, out, m, n, act, stream);
    if (dtype == LC_DTYPE_F16) return launch_bias_act_s<__half>(acc, bias, residual, out, m, n, act, stream);
    if (dtype == LC_DTYPE_BF16) return launch_bias_act_s<__nv_bfloat16>(acc, bias, residual, out, m, n, act, stream);
    return cudaErrorInvalidValue;
}

extern "C" cudaError_t lc_cuda_launch_binary(const lc_binary_args *args, cudaStream_t stream) {
    if (!args || args->n < 0) return cudaErrorInvalidValue;
    if (args->n == 0) return cudaSuccess;
    if (!args->a || !args->b || !args->out) return cudaErrorInvalidValue;
    switch (args->dtype) {
    case LC_DTYPE_F32: return launch_binary_kind<float>(args, stream);
    case LC_DTYPE_F64: return launch_binary_kind<double>(args, stream);
    case LC_DTYPE_F16: return launch_binary_kind<__half>(args, stream);
    case LC_DTYPE_BF16: return launch_binary_kind<__nv_bfloat16>(args, stream);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t lc_cuda_launch_relu(const lc_relu_args *args, cudaStream_t stream) {
    if (!args || args->n < 0) return cudaErrorInvalidValue;
    if (args->n == 0) return cudaSuccess;
    if (!args->x || !args->out) return cudaErrorInvalidValue;
    switch (args->dtype) {
    case LC_DTYPE_F32: return launch_relu_t<float>(args, stream);
    case LC_DTYPE_F64: return launch_relu_t<double>(args, stream);
    case LC_DTYPE_F16: return launch_relu_t<__half>(args, stream);
    case LC_DTYPE_BF16: return launch_relu_t<__nv_bfloat16>(args, stream);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t lc_cuda_launch_gelu(const lc_gelu_args *args, cudaStream_t stream) {
    if (!args || args->n < 0) return cudaErrorInvalidValue;
    if (args->n == 0) return cudaSuccess;
    if (!args->x || !args->out) return cudaErrorInvalidValue;
    if (args->approx != LC_GELU_ERF && args->approx != LC_GELU_TANH) return cudaErrorInvalidValue;
    switch (args->dtype) {
    case LC_DTYPE_F32: return launch_gelu_t<float>(args, stream);
    case LC_DTYPE_F16: return launch_gelu_t<__half>(args, stream);
    case LC_DTYPE_BF16: return launch_gelu_t<__nv_bfloat16>(args, stream);
    default: return cudaErrorInvalidValue;
    }
}
