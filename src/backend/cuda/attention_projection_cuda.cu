/* attention_projection_cuda.cu — attention followed by its output projection in one kernel, for the
 * small shapes where the [seq, d] intermediate and a second launch cost more than the work:
 *   out [seq, pn] = softmax(q kᵀ · scale (+ causal mask)) v · w [d, pn] (+ bias [pn])
 * Each block (8 warps) stages kᵀ [d][seq+1] in shared memory (padded: conflict-free both ways); each
 * warp owns one query row: lanes score 32 keys at a time against the q row (registers for the head
 * sizes 8/16/32/48/64, compiled in), a warp max/sum gives the softmax, lanes accumulate the row's
 * attention output over j = lane + 32 i reading v from global memory (coalesced), then the row is
 * projected in registers: each lane forms out[row, c] for c = lane + 32 i2 (pn <= 128) with the
 * attention values broadcast by warp shuffles. Fits when kᵀ and the score rows take <= 160 KiB
 * (lc_cuda_attention_projection_fits). Tests: tests/python/test_graph_plan.py (attention_projection). */
#include <math.h>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/row_attention.cuh"

#define AP_WARPS 8
#define AP_SMEM_MAX (160 * 1024)

struct lc_ap_params {
    const float *q, *k, *v, *w, *bias;
    float *out;
    int seq, d, pn, causal;
    float scale;
};

template <int D>
__global__ void __launch_bounds__(AP_WARPS * 32) lc_attention_projection_kernel(lc_ap_params p) {
    extern __shared__ float sm[];
    const int d = D > 0 ? D : p.d;
    const int ldk = p.seq + 1;
    float *kt = sm;                               /* d x (seq + 1) */
    float *scores = kt + (size_t)d * ldk;         /* AP_WARPS x seq */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int t = warp; t < p.seq; t += AP_WARPS)
        for (int j = lane; j < d; j += 32) kt[(size_t)j * ldk + t] = p.k[(size_t)t * d + j];
    __syncthreads();
    const int r = blockIdx.x * AP_WARPS + warp;
    if (r >= p.seq) return;
    float *s = scores + (size_t)warp * p.seq;
    const int keys = p.causal ? r + 1 : p.seq;
    const float *q = p.q + (size_t)r * d;
    const float mx = lc_row_scores<D>(q, kt, ldk, d, keys, p.scale, s, lane);
    const float sum = lc_row_softmax(s, keys, mx, lane);
    constexpr int NJ = D > 0 ? (D + 31) / 32 : 4;
    float o[NJ], o2[NJ];
#pragma unroll
    for (int i = 0; i < NJ; i++) o[i] = o2[i] = 0.0f;
    int t = 0;
    for (; t + 2 <= keys; t += 2) {
        const float p0 = s[t], p1 = s[t + 1];
        const float *v0 = p.v + (size_t)t * d, *v1 = v0 + d;
#pragma unroll
        for (int i = 0; i < NJ; i++) {
            const int j = lane + 32 * i;
            if (j < d) {
                o[i] = fmaf(p0, v0[j], o[i]);
                o2[i] = fmaf(p1, v1[j], o2[i]);
            }
        }
    }
    if (t < keys) {
        const float p0 = s[t];
        const float *v0 = p.v + (size_t)t * d;
#pragma unroll
        for (int i = 0; i < NJ; i++) {
            const int j = lane + 32 * i;
            if (j < d) o[i] = fmaf(p0, v0[j], o[i]);
        }
    }
    const float inv = 1.0f / sum;
#pragma unroll
    for (int i = 0; i < NJ; i++) o[i] = (o[i] + o2[i]) * inv;
    /* projection: lanes over output columns, attention values broadcast from their lanes */
    float y[4];
#pragma unroll
    for (int i2 = 0; i2 < 4; i2++) {
        const int c = lane + 32 * i2;
        y[i2] = (p.bias && c < p.pn) ? p.bias[c] : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < NJ; i++) {
        for (int src = 0; src < 32; src++) {
            const int j = 32 * i + src;
            const float oj = __shfl_sync(0xffffffffu, o[i], src);
            if (j >= d) break; /* uniform across the warp */
            const float *wr = p.w + (size_t)j * p.pn;
#pragma unroll
            for (int i2 = 0; i2 < 4; i2++) {
                const int c = lane + 32 * i2;
                if (c < p.pn) y[i2] = fmaf(oj, wr[c], y[i2]);
            }
        }
    }
#pragma unroll
    for (int i2 = 0; i2 < 4; i2++) {
        const int c = lane + 32 * i2;
        if (c < p.pn) p.out[(size_t)r * p.pn + c] = y[i2];
    }
}

static size_t lc_ap_smem(const lc_attention_projection_args *a) {
    return (size_t)(a->att.head_dim * (a->att.seq + 1) + (int64_t)AP_WARPS * a->att.seq) * sizeof(float);
}

extern "C" int lc_cuda_attention_projection_fits(const lc_attention_projection_args *a) {
    if (a->att.dtype != LC_DTYPE_F32) return 0; /* float32 kernel */
    if (a->att.seq < 1 || a->att.seq > (1 << 20) || a->att.head_dim < 1 || a->att.head_dim > 128 || a->pn < 1 ||
        a->pn > 128)
        return 0;
    return lc_ap_smem(a) <= AP_SMEM_MAX;
}

template <int D>
static cudaError_t lc_ap_launch(const lc_ap_params &p, unsigned blocks, size_t smem, cudaStream_t stream) {
    static int opted_in; /* once per instantiation and process; idempotent, so a race only repeats it */
    if (!opted_in) {
        cudaError_t e = cudaFuncSetAttribute(lc_attention_projection_kernel<D>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, AP_SMEM_MAX);
        if (e != cudaSuccess) return e;
        opted_in = 1;
    }
    lc_attention_projection_kernel<D><<<blocks, AP_WARPS * 32, smem, stream>>>(p);
    return cudaGetLastError();
}

extern "C" cudaError_t lc_cuda_launch_attention_projection(const lc_attention_projection_args *a, cudaStream_t stream) {
    if (!lc_cuda_attention_projection_fits(a)) return cudaErrorInvalidValue;
    lc_ap_params p;
    p.q = (const float *)a->att.q, p.k = (const float *)a->att.k, p.v = (const float *)a->att.v, p.w = (const float *)a->w, /* float32 (fits) */
    p.bias = (const float *)a->bias, p.out = (float *)a->out;
    p.seq = (int)a->att.seq, p.d = (int)a->att.head_dim, p.pn = (int)a->pn, p.causal = a->att.causal;
    p.scale = a->att.scale;
    const unsigned blocks = (unsigned)((p.seq + AP_WARPS - 1) / AP_WARPS);
    const size_t smem = lc_ap_smem(a);
    switch (p.d) {
    case 8: return lc_ap_launch<8>(p, blocks, smem, stream);
    case 16: return lc_ap_launch<16>(p, blocks, smem, stream);
    case 32: return lc_ap_launch<32>(p, blocks, smem, stream);
    case 48: return lc_ap_launch<48>(p, blocks, smem, stream);
    case 64: return lc_ap_launch<64>(p, blocks, smem, stream);
    default: return lc_ap_launch<0>(p, blocks, smem, stream);
    }
}
