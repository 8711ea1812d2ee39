/* rope_cuda.cu — CUDA rotary position embedding (lc_rope_args, backend.h), half-split layout, templated on
 * the storage type S (float, __half, __nv_bfloat16). One thread per item of a (b, h, s) row: items
 * j < rotary_dim/2 rotate the pair (j, j + rotary_dim/2), the others copy a pass-through channel; the item
 * index is decomposed in 32-bit arithmetic when the counts fit. A pair's angle is position * inv_freq[j] in
 * float64: inv_freq from lc_rope_inv_freq (rope_freq.h, HF's scaling rules) computed once on the host per
 * (rotary_dim, options) and passed with the launch (rotary_dim <= 256; else computed in the thread), so no
 * thread runs a float64 pow; the angle is reduced mod 2π in float64 (lc_rope_angle_reduce), then sincosf of
 * the reduced float angle; the rotation is float32, rounded once (rope.cuh's lc_rope_rotate, which the
 * tensor-core decode's fused rope shares, so the two give the same bits). x is read through its strides in place;
 * out is contiguous. A thread reads both elements of its pair before writing them, and no other thread
 * touches them, so out == x is safe.
 * Tests: tests/c/test_ops_llm.c and tests/python/test_ops_llm.py on device "cuda" (GPU machine). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/lowp.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/rope.cuh"

#define ROPE_THREADS 128
#define ROPE_MAX_GRID (1 << 20)
#define ROPE_TAB LC_ROPE_TAB /* inverse frequencies passed with the launch: rotary_dim <= 256 */

/* The launch's inverse frequencies, computed on the host by lc_rope_inv_freq (the same function and
 * float64 pow as the CPU kernel), read by the kernel from the constant bank. */
struct rope_tab {
    double inv[ROPE_TAB];
};

template <typename S> __device__ __forceinline__ float rope_ld(const S *p) { return (float)Elem<S>::ld(*p); }
template <typename S> __device__ __forceinline__ void rope_st(S *p, float v) { *p = Elem<S>::st(v); }

/* I: the index type of the item decomposition (uint32 when every count fits, else int64). TAB: inv_freq
 * from tab, else computed in the thread (rotary_dim > 256). */
template <typename S, typename I, bool TAB>
__global__ void __launch_bounds__(ROPE_THREADS)
    rope_kernel(const __grid_constant__ lc_rope_args a, const __grid_constant__ rope_tab tab, int64_t items) {
    lc_pdl_entry(); /* pdl.cuh */
    const S *x = (const S *)a.x;
    S *out = (S *)a.out;
    const I h2 = (I)(a.rotary_dim / 2), D = (I)a.head_dim, per_row = D - h2, seq = (I)a.seq, heads = (I)a.heads;
    for (int64_t it = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; it < items; it += (int64_t)gridDim.x * blockDim.x) {
        const I row = (I)it / per_row, j = (I)it % per_row;
        const I s = row % seq, bh = row / seq;
        const I h = bh % heads, b = bh / heads;
        const S *xr = x + (int64_t)b * a.x_st[0] + (int64_t)h * a.x_st[1] + (int64_t)s * a.x_st[2];
        S *orow = out + (int64_t)row * (int64_t)D;
        if (j >= h2) { /* pass-through channel rotary_dim + (j - h2): a bit-exact copy */
            const int64_t d = (int64_t)j + (int64_t)h2;
            orow[d] = xr[d * a.x_st[3]];
            continue;
        }
        const float x1 = rope_ld(xr + (int64_t)j * a.x_st[3]), x2 = rope_ld(xr + ((int64_t)j + (int64_t)h2) * a.x_st[3]);
        const int64_t poff = (int64_t)b * a.p_st[0] + (int64_t)s * a.p_st[1];
        const double pos = a.pos_dtype == LC_DTYPE_I32 ? (double)((const int32_t *)a.positions)[poff]
                                                       : (double)((const int64_t *)a.positions)[poff];
        const double inv = TAB ? tab.inv[j] : lc_rope_inv_freq((int64_t)j, a.rotary_dim, &a.opt);
        float o1, o2;
        lc_rope_rotate(x1, x2, pos, inv, &o1, &o2); /* rope.cuh: the tensor-core decode's fused rope uses it too */
        rope_st(orow + j, o1);
        rope_st(orow + j + h2, o2);
    }
}

/* The last table built on this host thread, reused while rotary_dim and the options are the same. */
static bool rope_same(const lc_rope_options *p, const lc_rope_options *q) {
    return p->theta == q->theta && p->scaling == q->scaling && p->factor == q->factor &&
           p->low_freq_factor == q->low_freq_factor && p->high_freq_factor == q->high_freq_factor &&
           p->original_max_position_embeddings == q->original_max_position_embeddings;
}

static const rope_tab *rope_table(const lc_rope_args *a) {
    static thread_local rope_tab tab;
    static thread_local lc_rope_options opt;
    static thread_local int64_t rd = 0;
    if (rd != a->rotary_dim || !rope_same(&opt, &a->opt)) {
        for (int64_t j = 0; j < a->rotary_dim / 2; j++) tab.inv[j] = lc_rope_inv_freq(j, a->rotary_dim, &a->opt);
        opt = a->opt;
        rd = a->rotary_dim;
    }
    return &tab;
}

extern "C" const double *lc_cuda_rope_inv_freq(const lc_rope_args *a) {
    return a->rotary_dim / 2 <= ROPE_TAB ? rope_table(a)->inv : NULL;
}

template <typename S> static cudaError_t launch_rope(const lc_rope_args *a, int64_t items, cudaStream_t stream) {
    int64_t g = (items + ROPE_THREADS - 1) / ROPE_THREADS;
    if (g > ROPE_MAX_GRID) g = ROPE_MAX_GRID;
    const bool tabled = a->rotary_dim / 2 <= ROPE_TAB;
    static const rope_tab none = {};
    const rope_tab &tab = tabled ? *rope_table(a) : none;
    const int64_t rows = a->batch * a->heads * a->seq;
    const bool small = items <= (int64_t)UINT32_MAX && rows * a->head_dim <= (int64_t)UINT32_MAX;
    const unsigned grid = (unsigned)g;
    if (small && tabled) (void)lc_pdl_launch(rope_kernel<S, uint32_t, true>, grid, ROPE_THREADS, 0, stream, *a, tab, items);
    else if (small) (void)lc_pdl_launch(rope_kernel<S, uint32_t, false>, grid, ROPE_THREADS, 0, stream, *a, tab, items);
    else if (tabled) (void)lc_pdl_launch(rope_kernel<S, int64_t, true>, grid, ROPE_THREADS, 0, stream, *a, tab, items);
    else (void)lc_pdl_launch(rope_kernel<S, int64_t, false>, grid, ROPE_THREADS, 0, stream, *a, tab, items);
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

LC_TL_READER(lc_tl_read_rope_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
