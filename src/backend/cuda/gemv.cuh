/* gemv.cuh — what the small-m 16-bit GEMV kernels share (gemv_cuda.cu: the [k, n] split-k kernel and the
 * [n, k] tile kernel; gemv_ring_cuda.cu: the [n, k] ring kernel of decode): the launch parameters,
 * 16-byte weight loads and conversions, the epilogue (bias, activation, residual, one rounding), the norm and
 * SwiGLU prologues' statistics and staging of x. Contracts and tests: gemv_cuda.cu's header comment. */
#ifndef LC_GEMV_CUH
#define LC_GEMV_CUH

#include <cooperative_groups.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

#include <type_traits>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/lowp.cuh"
#include "backend/cuda/pdl.cuh"
#include "lightning_core/runtime.h"

#define GEMV_NW 8
#define GEMV_NT (GEMV_NW * 32)
#define GEMV_TILE 256         /* columns of a block: 32 lanes x 8 */
#define GEMV_NCTR 4096        /* tile counters; a split plan needs tiles <= GEMV_NCTR */
#define GEMV_XS_FLOATS 8192   /* staged x: at most m x (8192 / m) floats (32 KiB) */
#define GEMV_MIN_KS 64        /* the fewest k rows of a split (LC_GEMV_MINKS): fewer partials to add */
#define GEMV_MAX_CLUSTER 16   /* splits of a tile added in one thread-block cluster (16: non-portable size) */
#define GEMV_MAX_DEVICES 64
#define GEMV_MAX_SPLITS 1024
#define GEMV_NK_CH 8          /* 16-byte chunks of w_t a lane has in flight (gemv_nk_kernel) */
#define GEMV_NK_STAGE 2       /* 16-byte pieces of x a thread has in flight while staging (gemv_stage_nk) */
#define GEMV_NK_BPS 2         /* resident blocks a SM of gemv_nk_kernel (its __launch_bounds__) */

static_assert(GEMV_TILE == 32 * 8, "a lane owns 8 columns of a tile");

/* An integer env knob of the GEMV kernels (A/B runs): its value when set and within [lo, hi] (lo >= 1), else 0. */
static inline int gemv_env_int(const char *name, int lo, int hi) {
    const char *e = getenv(name);
    const int x = e ? atoi(e) : 0;
    return x >= lo && x <= hi ? x : 0;
}

static_assert(LC_GEMV_MAX_M <= GEMV_NW, "the norm prologue gives each row of x at least one warp");

struct gemv_params {
    const unsigned short *x, *bias, *res; /* res: the residual [m,n] or NULL (may be out) */
    const unsigned short *ng, *nb;        /* the norm's gamma / beta [k] (NULL: none) */
    double eps;
    int norm;                             /* 0, LC_NORM_LAYER, LC_NORM_RMS or LC_NORM_SWIGLU (the prologue kind) */
    const char *w;
    unsigned short *out;
    float *ws;
    int64_t k, n;
    int64_t xp;   /* x's row pitch in elements: k, or 2k for the SwiGLU prologue */
    int64_t ks;   /* rows per split (a multiple of 8, except that the last split takes the rest) */
    int splits;
    int kc;       /* rows of x staged at a time (a multiple of 4) */
    int act;
    int prefetch; /* lc_get_static_weights() at launch: w's first rows may load before the PDL wait */
    int cluster;  /* > 1: the splits of a tile are one thread-block cluster that adds its partials through
                   * distributed shared memory (no workspace, fence or ticket) */
    int64_t *amax; /* the ring kernel only (else NULL): out's rows' argmax [m], folded (lc_argmax_fold) */
};

__host__ __device__ constexpr int gemv_unroll(int m) { return m <= 2 ? 8 : 4; }
/* Blocks of gemv_kernel<T, M> resident on an SM: the __launch_bounds__ minimum, which the register counts meet
 * exactly (M <= 3: 80 registers, 3 x 256 threads; else 128, 2 x 256; smem <= 32 KiB a block never binds). */
__host__ __device__ constexpr int gemv_resident(int m) { return m <= 3 ? 3 : 2; }

/* 16 bytes of w, read-only for the kernel's life, not kept in L1 (each byte is read once). */
__device__ __forceinline__ uint4 gemv_ld(const char *p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p));
    return r;
}

/* U rows of w from p (row pitch rowb bytes), the first `left` of them when left < U (left <= 0: none). */
template <int U> __device__ __forceinline__ void gemv_load(uint4 (&wv)[U], const char *p, int64_t rowb, int left) {
    if (left >= U) {
#pragma unroll
        for (int u = 0; u < U; u++) wv[u] = gemv_ld(p + u * rowb);
    } else {
#pragma unroll
        for (int u = 0; u < U; u++)
            if (u < left) wv[u] = gemv_ld(p + u * rowb);
    }
}

/* The linear's activation on the float32 sum (activation.cuh: the epilogue's functions). */
template <typename T> __device__ __forceinline__ float gemv_act(float v, int act) {
    switch (act) {
    case LC_ACT_RELU: return OpRelu()(v);
    case LC_ACT_GELU_ERF: return typename GeluOps<T>::erf()(v);
    case LC_ACT_GELU_TANH: return typename GeluOps<T>::tanh()(v);
    default: return v;
    }
}

/* bias, activation, + residual, one rounding (bias_act_kernel's order: no bias leaves the sum, -0 included, as
 * is); the residual element is read before out's element (maybe the same) is written. */
template <typename T> __device__ __forceinline__ unsigned short gemv_finish(float v, const gemv_params &p, int64_t row,
                                                                          int64_t col) {
    if (p.bias) v += Elem<T>::ldu(p.bias[col]);
    v = gemv_act<T>(v, p.act);
    if (p.res) v += Elem<T>::ldu(p.res[row * p.n + col]);
    return Elem<T>::stu(v);
}
/* The same with the bias and residual elements given (b, r: their bits; used when p has them). */
template <typename T> __device__ __forceinline__ unsigned short gemv_finish_with(float v, const gemv_params &p,
                                                                               unsigned short b, unsigned short r) {
    if (p.bias) v += Elem<T>::ldu(b);
    v = gemv_act<T>(v, p.act);
    if (p.res) v += Elem<T>::ldu(r);
    return Elem<T>::stu(v);
}

__device__ __forceinline__ double gemv_warp_sum(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The norm prologue's statistics, in two steps. gemv_row_part: the GEMV_NW / M warps of row `row` each take one
 * slice of it (slice `part`, a multiple of 8 elements long, so 16-byte loads stay aligned) and lane 0 stores
 * its Σx and Σx² (float64, one pass, 16-byte loads when x allows, four in flight a lane) in ps[0..1]: one L2
 * round trip for a decode row instead of one warp walking the whole row. The whole warp calls it. */
template <typename T> __device__ __noinline__ void gemv_row_part(const gemv_params &p, int row, int part, int parts,
                                                                int lane, double *ps) {
    const unsigned short *xr = p.x + (int64_t)row * p.k;
    const int64_t len = ((p.k + parts - 1) / parts + 7) & ~(int64_t)7;
    const int64_t b = (int64_t)part * len < p.k ? (int64_t)part * len : p.k;
    const int64_t e = b + len < p.k ? b + len : p.k;
    double s = 0.0, s2 = 0.0;
    int64_t j0 = b;
    if (((uintptr_t)xr & 15) == 0) { /* whole 16-byte words (b is a multiple of 8 elements) */
        const int64_t nv = (e - b) / 8;
        const uint4 *xv = reinterpret_cast<const uint4 *>(xr + b);
        for (int64_t v = lane; v < nv; v += 32 * 4) {
            uint4 w[4];
#pragma unroll
            for (int u = 0; u < 4; u++)
                if (v + 32 * u < nv) w[u] = __ldg(xv + v + 32 * u);
#pragma unroll
            for (int u = 0; u < 4; u++) {
                if (v + 32 * u >= nv) break;
                float f[8];
                lc_u4_to_f8(w[u], f, T());
#pragma unroll
                for (int q = 0; q < 8; q++) s += (double)f[q], s2 = fma((double)f[q], (double)f[q], s2);
            }
        }
        j0 = b + nv * 8;
    }
    for (int64_t j = j0 + lane; j < e; j += 32) {
        const double f = (double)Elem<T>::ldu(xr[j]);
        s += f, s2 = fma(f, f, s2);
    }
    s = gemv_warp_sum(s);
    s2 = gemv_warp_sum(s2);
    if (lane == 0) ps[0] = s, ps[1] = s2;
}

/* gemv_row_finish: the parts of one row added in part order, then st = {mean hi, mean lo, rstd} (rms: {0, 0,
 * rstd}); for 16-bit x each square is exact in float64, so Σx² - (Σx)²/k loses nothing a two-pass sum would
 * keep. */
__device__ __forceinline__ void gemv_row_finish(const gemv_params &p, const double (*ps)[2], int parts, float *st) {
    double s = 0.0, s2 = 0.0;
    for (int q = 0; q < parts; q++) s += ps[q][0], s2 += ps[q][1];
    const double inv_k = 1.0 / (double)p.k;
    if (p.norm == LC_NORM_RMS) {
        st[0] = st[1] = 0.0f;
        st[2] = (float)rsqrt(s2 * inv_k + p.eps);
    } else {
        const double mean = s * inv_k;
        double var = (s2 - s * mean) * inv_k;
        if (var < 0.0) var = 0.0;
        const float mh = (float)mean;
        st[0] = mh;
        st[1] = (float)(mean - (double)mh);
        st[2] = (float)rsqrt(var + p.eps);
    }
}

/* One staged element of a row, normalised (st: that row's gemv_row_finish; g, b: gamma and beta at its column,
 * used when the op has them), in the dtype (its bits). */
template <typename T> __device__ __forceinline__ unsigned short gemv_norm_val(float v, const gemv_params &p, const float *st,
                                                                             float g, float b) {
    float y = p.norm == LC_NORM_RMS ? v * st[2] : ((v - st[0]) - st[1]) * st[2];
    if (p.ng) y *= g;
    if (p.nb) y += b;
    return Elem<T>::stu(y);
}
template <typename T> __device__ __forceinline__ unsigned short gemv_norm_elem(float v, const gemv_params &p, const float *st,
                                                                              int64_t c) {
    return gemv_norm_val<T>(v, p, st, p.ng ? Elem<T>::ldu(p.ng[c]) : 0.f, p.nb ? Elem<T>::ldu(p.nb[c]) : 0.f);
}

/* The norm prologue's statistics of x's M rows into st (the first chunk of a launch; the whole block calls it). */
template <int M, typename T>
__device__ __forceinline__ void gemv_stats(const gemv_params &p, float (*st)[3], double (*ps)[2], int warp, int lane, int tid) {
    constexpr int wpr = GEMV_NW / M; /* warps i·wpr .. i·wpr + wpr - 1: row i's slices */
    if (warp < M * wpr) gemv_row_part<T>(p, warp / wpr, warp % wpr, wpr, lane, ps[warp]);
    __syncthreads();
    if (tid < M) gemv_row_finish(p, ps + tid * wpr, wpr, st[tid]);
}

/* Rows c0 .. c0 + rows - 1 of x's M rows into sm[i·pitch + r] as float, the prologue applied (norm: the
 * statistics first, in the first chunk; SwiGLU: silu(g)·u rounded as the silu_mul kernel writes it). The whole
 * block calls it; it begins with a barrier (the previous chunk's readers are done) and ends with one. */
template <typename T, int M>
__device__ __forceinline__ void gemv_stage(const gemv_params &p, int64_t c0, int rows, int pitch, bool first, float *sm,
                                           float (*st)[3], double (*ps)[2], int warp, int lane, int tid) {
    if (p.norm && p.norm != LC_NORM_SWIGLU && first) gemv_stats<M, T>(p, st, ps, warp, lane, tid);
    __syncthreads(); /* the previous chunk's readers are done (and the statistics written) */
    for (int idx = tid; idx < M * rows; idx += GEMV_NT) {
        const int i = idx / rows, rr = idx - i * rows;
        const unsigned short *const xe = p.x + (int64_t)i * p.xp + c0 + rr;
        unsigned short v = xe[0];
        if (p.norm == LC_NORM_SWIGLU)
            v = Elem<T>::stu(OpSilu()(Elem<T>::ldu(v)) * Elem<T>::ldu(xe[p.k]));
        else if (p.norm)
            v = gemv_norm_elem<T>(Elem<T>::ldu(v), p, st[i], c0 + rr);
        sm[i * pitch + rr] = Elem<T>::ldu(v);
    }
    __syncthreads();
}

/* A lane's 8 column sums (columns lane·8 .. lane·8 + 7 of the tile) added over the 8 warps in warp order
 * through shared memory sm (GEMV_NW x GEMV_TILE floats): thread tid gets column tid. The whole block calls
 * it; it begins with a barrier, so sm may still be read by the previous caller. */
__device__ __forceinline__ float gemv_warp_order_sum(float *sm, const float a[8], int warp, int lane, int tid) {
    __syncthreads();
    float4 *const dst = reinterpret_cast<float4 *>(sm + warp * GEMV_TILE + lane * 8);
    dst[0] = make_float4(a[0], a[1], a[2], a[3]);
    dst[1] = make_float4(a[4], a[5], a[6], a[7]);
    __syncthreads();
    float s = sm[tid];
#pragma unroll
    for (int w = 1; w < GEMV_NW; w++) s += sm[w * GEMV_TILE + tid];
    return s;
}

/* 8 16-bit values (element j of the word: h[j]) as one 16-byte word, and element j of such a word. */
__device__ __forceinline__ uint4 gemv_pack8(const unsigned short h[8]) {
    return make_uint4(h[0] | (unsigned)h[1] << 16, h[2] | (unsigned)h[3] << 16, h[4] | (unsigned)h[5] << 16,
                      h[6] | (unsigned)h[7] << 16);
}
__device__ __forceinline__ unsigned short gemv_h(const uint4 &v, int j) {
    const unsigned w = j < 2 ? v.x : j < 4 ? v.y : j < 6 ? v.z : v.w;
    return (unsigned short)(j & 1 ? w >> 16 : w & 0xffffu);
}

/* 8 consecutive 16-bit elements at e (a multiple of 8 elements into a row): one 16-byte load when vec (the
 * array's base is 16-byte aligned), else 8 scalar loads. */
__device__ __forceinline__ uint4 gemv_ld8(const unsigned short *e, bool vec) {
    if (vec) return __ldg(reinterpret_cast<const uint4 *>(e));
    unsigned short h[8];
#pragma unroll
    for (int j = 0; j < 8; j++) h[j] = e[j];
    return gemv_pack8(h);
}

/* One pass of gemv_stage_nk in mode K (0 plain, 1 SwiGLU, 2 norm): Q pieces a thread, all requested first. */
template <typename T, int M, int K>
__device__ __forceinline__ void gemv_stage_nk_pass(const gemv_params &p, int64_t c0, int nch, int pitch,
                                                   unsigned short *xs, const float (*st)[3], int tid) {
    constexpr int Q = GEMV_NK_STAGE;
    const bool vx = (uintptr_t)p.x % 16 == 0, vg = (uintptr_t)p.ng % 16 == 0, vb = (uintptr_t)p.nb % 16 == 0;
    const int total = M * nch;
    for (int v0 = tid; v0 < total; v0 += GEMV_NT * Q) {
        uint4 a[Q], e1[Q], e2[Q]; /* x; SwiGLU: the up half; norm: gamma, beta */
#pragma unroll
        for (int q = 0; q < Q; q++) {
            const int idx = v0 + q * GEMV_NT;
            if (idx >= total) break;
            const int i = idx / nch, c = idx - i * nch;
            const unsigned short *const xe = p.x + (int64_t)i * p.xp + c0 + 8 * c;
            a[q] = gemv_ld8(xe, vx);
            if (K == 1) e1[q] = gemv_ld8(xe + p.k, vx);
            if (K == 2 && p.ng) e1[q] = gemv_ld8(p.ng + c0 + 8 * c, vg);
            if (K == 2 && p.nb) e2[q] = gemv_ld8(p.nb + c0 + 8 * c, vb);
        }
#pragma unroll
        for (int q = 0; q < Q; q++) {
            const int idx = v0 + q * GEMV_NT;
            if (idx >= total) break;
            const int i = idx / nch, c = idx - i * nch;
            uint4 r = a[q];
            if (K) {
                unsigned short h[8];
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const float v = Elem<T>::ldu(gemv_h(a[q], j));
                    if (K == 1) h[j] = Elem<T>::stu(OpSilu()(v) * Elem<T>::ldu(gemv_h(e1[q], j)));
                    else
                        h[j] = gemv_norm_val<T>(v, p, st[i], p.ng ? Elem<T>::ldu(gemv_h(e1[q], j)) : 0.f,
                                                p.nb ? Elem<T>::ldu(gemv_h(e2[q], j)) : 0.f);
                }
                r = gemv_pack8(h);
            }
            *reinterpret_cast<uint4 *>(xs + i * pitch + 8 * c) = r;
        }
    }
}

/* The norm prologue of gemv_nk_kernel at m = 1 (decode at batch 1; larger m: gemv_stats, then the staging pass)
 * when x fits in one range (p.kc = k): one pass over x. Row i's GEMV_NW / M warps stage its raw pieces (their
 * slice: pieces part·32 + lane, + wpr·32, ...) and sum Σx, Σx² in float64 (each lane in order, then a shuffle
 * tree; the slices in order by gemv_row_finish), while every thread stages its
 * pieces of gamma and beta (gs, bs: rows M and M + 1 of xs); then each staged element is normalised in place as
 * gemv_norm_val rounds it. One L2 round trip for x instead of two (statistics, then staging). */
template <typename T, int M>
__device__ __forceinline__ void gemv_stage_nk_norm(const gemv_params &p, int nch, int pitch, unsigned short *xs,
                                                   float (*st)[3], double (*ps)[2], int warp, int lane, int tid) {
    constexpr int wpr = GEMV_NW / M, Q = GEMV_NK_STAGE;
    const bool vx = (uintptr_t)p.x % 16 == 0, vg = (uintptr_t)p.ng % 16 == 0, vb = (uintptr_t)p.nb % 16 == 0;
    unsigned short *const gs = xs + M * pitch, *const bs = gs + pitch;
    uint4 g0, b0; /* gamma / beta piece tid, requested with x */
    if (p.ng && tid < nch) g0 = gemv_ld8(p.ng + 8 * tid, vg);
    if (p.nb && tid < nch) b0 = gemv_ld8(p.nb + 8 * tid, vb);
    __syncthreads(); /* the previous user of xs is done */
    if (warp < M * wpr) {
        const int i = warp / wpr, part = warp % wpr;
        const unsigned short *const xr = p.x + (int64_t)i * p.xp;
        double s = 0.0, s2 = 0.0;
        for (int cb = part * 32 + lane; cb < nch; cb += wpr * 32 * Q) {
            uint4 a[Q];
#pragma unroll
            for (int q = 0; q < Q; q++)
                if (cb + q * wpr * 32 < nch) a[q] = gemv_ld8(xr + 8 * (cb + q * wpr * 32), vx);
#pragma unroll
            for (int q = 0; q < Q; q++) {
                const int c = cb + q * wpr * 32;
                if (c >= nch) break;
                *reinterpret_cast<uint4 *>(xs + i * pitch + 8 * c) = a[q];
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const double f = (double)Elem<T>::ldu(gemv_h(a[q], j));
                    s += f, s2 = fma(f, f, s2);
                }
            }
        }
        s = gemv_warp_sum(s);
        s2 = gemv_warp_sum(s2);
        if (lane == 0) ps[warp][0] = s, ps[warp][1] = s2;
    }
    if (p.ng && tid < nch) *reinterpret_cast<uint4 *>(gs + 8 * tid) = g0;
    if (p.nb && tid < nch) *reinterpret_cast<uint4 *>(bs + 8 * tid) = b0;
    for (int c = tid + GEMV_NT; c < nch; c += GEMV_NT) { /* k > GEMV_NT·8: the rest of gamma / beta */
        if (p.ng) *reinterpret_cast<uint4 *>(gs + 8 * c) = gemv_ld8(p.ng + 8 * c, vg);
        if (p.nb) *reinterpret_cast<uint4 *>(bs + 8 * c) = gemv_ld8(p.nb + 8 * c, vb);
    }
    __syncthreads();
    if (tid < M) gemv_row_finish(p, ps + tid * wpr, wpr, st[tid]);
    __syncthreads();
    for (int idx = tid; idx < M * nch; idx += GEMV_NT) {
        const int i = idx / nch, c = idx - i * nch;
        uint4 *const e = reinterpret_cast<uint4 *>(xs + i * pitch + 8 * c);
        const uint4 a = *e, g = p.ng ? *reinterpret_cast<const uint4 *>(gs + 8 * c) : a,
                    b = p.nb ? *reinterpret_cast<const uint4 *>(bs + 8 * c) : a;
        unsigned short h[8];
#pragma unroll
        for (int j = 0; j < 8; j++)
            h[j] = gemv_norm_val<T>(Elem<T>::ldu(gemv_h(a, j)), p, st[i], Elem<T>::ldu(gemv_h(g, j)),
                                    Elem<T>::ldu(gemv_h(b, j)));
        *e = gemv_pack8(h);
    }
    __syncthreads();
}

/* Columns c0 .. c0 + 8·nch - 1 of x's M rows into xs[i·pitch + c] in the dtype, the prologue applied (norm: the
 * statistics first, when first; SwiGLU: silu(g)·u rounded as the silu_mul kernel writes it): 16-byte pieces,
 * GEMV_NK_STAGE of them a thread in flight (x, the up half, gamma, beta all requested before any is used). The
 * whole block calls it; it begins with a barrier and ends with one. */
template <typename T, int M>
__device__ __forceinline__ void gemv_stage_nk(const gemv_params &p, int64_t c0, int nch, int pitch, bool first,
                                              unsigned short *xs, float (*st)[3], double (*ps)[2], int warp,
                                              int lane, int tid) {
    const bool norm = p.norm && p.norm != LC_NORM_SWIGLU;
    if (M == 1 && norm && first && p.kc >= p.k) { /* batch 1, the whole row in one range: one pass */
        gemv_stage_nk_norm<T, M>(p, nch, pitch, xs, st, ps, warp, lane, tid);
        return;
    }
    if (norm && first) gemv_stats<M, T>(p, st, ps, warp, lane, tid);
    __syncthreads();
    if (norm) gemv_stage_nk_pass<T, M, 2>(p, c0, nch, pitch, xs, st, tid);
    else if (p.norm == LC_NORM_SWIGLU) gemv_stage_nk_pass<T, M, 1>(p, c0, nch, pitch, xs, st, tid);
    else gemv_stage_nk_pass<T, M, 0>(p, c0, nch, pitch, xs, st, tid);
    __syncthreads();
}
/* f(std::integral_constant<int, M>()) for the run-time m = M in 1..LC_GEMV_MAX_M (the kernels' template row count);
 * `bad` for any other m. Every per-m instantiation of the GEMV kernels goes through it. */
template <typename R, typename F> static inline R gemv_for_m(int64_t m, R bad, F f) {
    static_assert(LC_GEMV_MAX_M == 8, "gemv_for_m instantiates m = 1..8");
    switch (m) {
    case 1: return f(std::integral_constant<int, 1>());
    case 2: return f(std::integral_constant<int, 2>());
    case 3: return f(std::integral_constant<int, 3>());
    case 4: return f(std::integral_constant<int, 4>());
    case 5: return f(std::integral_constant<int, 5>());
    case 6: return f(std::integral_constant<int, 6>());
    case 7: return f(std::integral_constant<int, 7>());
    case 8: return f(std::integral_constant<int, 8>());
    default: return bad;
    }
}

/* gemv_ring_cuda.cu: the [n, k] ring kernel's launch for m rows (p as gemv_cuda.cu fills it for w_t) when its plan
 * fits (*taken = 1, the launch's error returned); *taken = 0 and nothing enqueued otherwise. */
cudaError_t gemv_ring_launch(int64_t m, gemv_params p, int bf16, int num_sms, cudaStream_t stream, int *taken);

#endif
