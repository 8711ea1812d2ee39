/* conv_attention_cuda.cu — the seed's conv -> attention chain in one kernel, for the small shapes where
 * three launches (conv, qkv pack, attention) cost more than the work:
 *   y = relu(conv3x3(x [n,c,h,w], w [oc,c,3,3]) + bias [oc])        (stride/pad from the args)
 *   q|k|v element i = y_flat[i % y.size]                            (the seed's repeat/truncate)
 *   out [seq, d] = softmax(q kᵀ · scale (+ causal mask)) v
 * Each block (16 warps) stages x, w, bias in shared memory and recomputes y there (a few thousand outputs of 9·c MACs: cheaper
 * than a second launch), followed by its first d elements again so that no row of q, k or v wraps;
 * writes kᵀ [d][seq+1] into shared memory (padded: conflict-free both ways); then each warp owns one
 * query row: lanes score 32 keys at a time against the broadcast q row, a warp max/sum gives the
 * softmax, and the lanes accumulate out[row, j] for j = lane, lane + 32, ... (d <= 128) reading v
 * straight from y. q, k, v never go to global memory.
 * Tests: tests/python/test_sessions.py (ConvAttentionSession on cuda), tests/c/test_sessions.c. */
#include <math.h>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/row_attention.cuh"

#define CA_WARPS 16
#define CA_SMEM_MAX (160 * 1024)

struct lc_ca_params {
    const float *x, *w, *bias;
    float *out;
    int n, c, h, w_, oc, oh, ow, sh, sw, ph, pw;
    int F;            /* conv output elements */
    int seq, d, causal;
    float scale;
};

/* D > 0: head_dim known at compile time (the loops over j unroll, q stays in registers); D == 0: any
 * head_dim <= 128 at run time. */
template <int D>
__global__ void __launch_bounds__(CA_WARPS * 32) lc_conv_attention_kernel(lc_ca_params p) {
    extern __shared__ float sm[];
    const int d = D > 0 ? D : p.d;
    const int nx = p.n * p.c * p.h * p.w_, nw = p.oc * p.c * 9;
    float *xs = sm;                         /* x, w and bias staged once: the conv loop then reads */
    float *ws = xs + nx;                    /* shared memory instead of waiting on global loads */
    float *bs = ws + nw;
    float *y = bs + p.oc;                   /* F + d */
    float *kt = y + p.F + d;                /* d x (seq + 1) */
    const int ldk = p.seq + 1;
    float *scores = kt + (size_t)d * ldk;   /* CA_WARPS x seq */
    for (int i = threadIdx.x; i < nx; i += blockDim.x) xs[i] = p.x[i];
    for (int i = threadIdx.x; i < nw; i += blockDim.x) ws[i] = p.w[i];
    for (int i = threadIdx.x; i < p.oc; i += blockDim.x) bs[i] = p.bias ? p.bias[i] : 0.0f;
    __syncthreads();
    /* Output i = ((b·oc + o)·oh + oy)·ow + ox, walked with a mixed-radix increment of blockDim.x (one
     * division per digit up front instead of four per output). */
    int ox, oy, o, b, sx, sy, so, sb;
    {
        int t = threadIdx.x;
        ox = t % p.ow, t /= p.ow, oy = t % p.oh, t /= p.oh, o = t % p.oc, b = t / p.oc;
        t = blockDim.x;
        sx = t % p.ow, t /= p.ow, sy = t % p.oh, t /= p.oh, so = t % p.oc, sb = t / p.oc;
    }
    for (int i = threadIdx.x; i < p.F; i += blockDim.x) {
        float acc = bs[o];
        for (int ci = 0; ci < p.c; ci++) {
            const float *xc = xs + ((size_t)b * p.c + ci) * p.h * p.w_;
            const float *wc = ws + ((size_t)o * p.c + ci) * 9;
#pragma unroll
            for (int kh = 0; kh < 3; kh++) {
                const int iy = oy * p.sh - p.ph + kh;
                const bool row_ok = iy >= 0 && iy < p.h;
#pragma unroll
                for (int kw = 0; kw < 3; kw++) {
                    const int ix = ox * p.sw - p.pw + kw;
                    if (row_ok && ix >= 0 && ix < p.w_) acc = fmaf(xc[iy * p.w_ + ix], wc[kh * 3 + kw], acc);
                }
            }
        }
        y[i] = (acc > 0.0f || acc != acc) ? acc : 0.0f; /* ReLU; NaN stays NaN */
        int carry;
        ox += sx, carry = ox >= p.ow, ox -= carry ? p.ow : 0;
        oy += sy + carry, carry = oy >= p.oh, oy -= carry ? p.oh : 0;
        o += so + carry, carry = o >= p.oc, o -= carry ? p.oc : 0;
        b += sb + carry;
    }
    __syncthreads();
    for (int i = p.F + threadIdx.x; i < p.F + d; i += blockDim.x) y[i] = y[i % p.F];
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int dstep = d % p.F;
    const long long need = (long long)p.seq * d;
    /* kᵀ: warp w fills keys t = w, w + CA_WARPS, ...; lanes over j */
    {
        int kb = (int)((need + (long long)warp * d) % p.F);
        const int kstep = (int)(((long long)CA_WARPS * d) % p.F);
        for (int t = warp; t < p.seq; t += CA_WARPS) {
            for (int j = lane; j < d; j += 32) kt[(size_t)j * ldk + t] = y[kb + j];
            kb += kstep;
            if (kb >= p.F) kb -= p.F;
        }
    }
    __syncthreads();
    const int r = blockIdx.x * CA_WARPS + warp;
    if (r >= p.seq) return;
    float *s = scores + (size_t)warp * p.seq;
    const int keys = p.causal ? r + 1 : p.seq;
    const float *q = y + (int)(((long long)r * d) % p.F);
    const float mx = lc_row_scores<D>(q, kt, ldk, d, keys, p.scale, s, lane);
    const float sum = lc_row_softmax(s, keys, mx, lane);
    /* out[r, j] for j = lane + 32 i: four keys per step into separate accumulators */
    constexpr int NJ = D > 0 ? (D + 31) / 32 : 4;
    float acc[4][NJ];
#pragma unroll
    for (int u = 0; u < 4; u++)
#pragma unroll
        for (int i = 0; i < NJ; i++) acc[u][i] = 0.0f;
    int vb = (int)((2 * need) % p.F);
    int t = 0;
    for (; t + 4 <= keys; t += 4) {
        int off[4];
        off[0] = vb;
#pragma unroll
        for (int u = 1; u < 4; u++) {
            off[u] = off[u - 1] + dstep;
            if (off[u] >= p.F) off[u] -= p.F;
        }
        vb = off[3] + dstep;
        if (vb >= p.F) vb -= p.F;
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const float pu = s[t + u];
            const float *v = y + off[u];
#pragma unroll
            for (int i = 0; i < NJ; i++) {
                const int j = lane + 32 * i;
                if (j < d) acc[u][i] = fmaf(pu, v[j], acc[u][i]);
            }
        }
    }
    for (; t < keys; t++) {
        const float p0 = s[t];
#pragma unroll
        for (int i = 0; i < NJ; i++) {
            const int j = lane + 32 * i;
            if (j < d) acc[0][i] = fmaf(p0, y[vb + j], acc[0][i]);
        }
        vb += dstep;
        if (vb >= p.F) vb -= p.F;
    }
    const float inv = 1.0f / sum;
#pragma unroll
    for (int i = 0; i < NJ; i++) {
        const int j = lane + 32 * i;
        if (j < d) p.out[(size_t)r * d + j] = ((acc[0][i] + acc[1][i]) + (acc[2][i] + acc[3][i])) * inv;
    }
}

static size_t lc_ca_smem(const lc_conv_attention_args *a, long long *F) {
    *F = (long long)a->conv.n * a->conv.oc * a->conv.oh * a->conv.ow;
    const long long staged = a->conv.n * a->conv.c * a->conv.h * a->conv.w + a->conv.oc * a->conv.c * 9 + a->conv.oc;
    const long long floats = staged + *F + a->head_dim + a->head_dim * (a->seq + 1) + (long long)CA_WARPS * a->seq;
    return (size_t)floats * sizeof(float);
}

extern "C" int lc_cuda_conv_attention_fits(const lc_conv_attention_args *a) {
    long long F = 0;
    if (a->conv.dtype != LC_DTYPE_F32) return 0; /* float32 kernel */
    if (a->seq < 1 || a->seq > (1 << 20) || a->head_dim < 1 || a->head_dim > 128) return 0;
    const size_t smem = lc_ca_smem(a, &F);
    return a->conv.kh == 3 && a->conv.kw == 3 && a->conv.apply_relu && F >= 1 && F < (1LL << 30) &&
           smem <= CA_SMEM_MAX;
}

template <int D>
static cudaError_t lc_ca_launch(const lc_ca_params &p, unsigned blocks, size_t smem, cudaStream_t stream) {
    static int opted_in; /* once per instantiation and process; idempotent, so a race only repeats it */
    if (!opted_in) {
        cudaError_t e = cudaFuncSetAttribute(lc_conv_attention_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             CA_SMEM_MAX);
        if (e != cudaSuccess) return e;
        opted_in = 1;
    }
    lc_conv_attention_kernel<D><<<blocks, CA_WARPS * 32, smem, stream>>>(p);
    return cudaGetLastError();
}

extern "C" cudaError_t lc_cuda_launch_conv_attention(const lc_conv_attention_args *a, cudaStream_t stream) {
    if (!lc_cuda_conv_attention_fits(a)) return cudaErrorInvalidValue;
    long long F = 0;
    const size_t smem = lc_ca_smem(a, &F);
    lc_ca_params p;
    p.x = (const float *)a->conv.x; /* float32 only (the op table's mask) */
    p.w = (const float *)a->conv.weight;
    p.bias = (const float *)a->conv.bias;
    p.out = a->out;
    p.n = (int)a->conv.n, p.c = (int)a->conv.c, p.h = (int)a->conv.h, p.w_ = (int)a->conv.w;
    p.oc = (int)a->conv.oc, p.oh = (int)a->conv.oh, p.ow = (int)a->conv.ow;
    p.sh = a->conv.stride_h, p.sw = a->conv.stride_w, p.ph = a->conv.pad_h, p.pw = a->conv.pad_w;
    p.F = (int)F;
    p.seq = (int)a->seq, p.d = (int)a->head_dim, p.causal = a->causal;
    p.scale = a->scale;
    const unsigned blocks = (unsigned)((a->seq + CA_WARPS - 1) / CA_WARPS);
    switch (p.d) { /* the seed's head sizes get an unrolled kernel */
    case 8: return lc_ca_launch<8>(p, blocks, smem, stream);
    case 16: return lc_ca_launch<16>(p, blocks, smem, stream);
    case 32: return lc_ca_launch<32>(p, blocks, smem, stream);
    case 48: return lc_ca_launch<48>(p, blocks, smem, stream);
    case 64: return lc_ca_launch<64>(p, blocks, smem, stream);
    default: return lc_ca_launch<0>(p, blocks, smem, stream);
    }
}
