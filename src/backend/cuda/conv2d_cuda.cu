/* conv2d_cuda.cu — CUDA 2-D convolution, NCHW, float32, direct (no im2col buffer, no tensor cores).
 *
 * y[n,oc,oh,ow] = sum_{c,ky,kx} w[oc,c,ky,kx] · x[n,c,oy·sh+ky-ph, ox·sw+kx-pw] + bias[oc] (bias may be
 * NULL), optional fused ReLU (NaN kept); zeros outside the image; any stride >= 1, padding >= 0.
 *
 * 3x3 path (kh = kw = 3, tiles that fit in shared memory): a block computes an output tile of
 * TY rows × TX·PX columns for OCB = OCG·OCT output channels of one image. Per chunk of input channels it
 * stages the input tile plus halo ((TY-1)·sh+3 rows × (TX·PX-1)·sw+3 columns, zero-padded at the image
 * border) and the chunk's weights, transposed to [c][ky·3+kx][OCB], in shared memory, with 8 loads in
 * flight per thread (staging one load at a time cost ~8 µs of latency at 16x16x32x32). Each thread then
 * computes OCT channels × PX adjacent columns of one output row: per (channel, ky) it reads its input
 * row segment once (16- or 8-byte shared loads where aligned) and its weights as warp-uniform
 * broadcast vectors, and does OCT·PX·3 FMAs from registers. Bias and ReLU are applied at the store
 * (16-byte stores where aligned). The horizontal stride is a template parameter (1, 2, other);
 * the tile shape and thread split are picked per call from a small table (conv3_pick).
 * General path (other kernel sizes, or tiles that would not fit): one thread per output pixel for 4
 * output channels, reading input and (warp-uniform) weights through the read-only cache.
 * Offsets into x and y are 64-bit; grids loop where the shape could exceed a grid dimension.
 * Tests: tests/c/test_ops.c (conv2d group) and tests/python/test_ops_conv.py on device "cuda";
 * devcheck/kernels (GPU machine) against float64 references, with timings against torch.
 */
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

#define CONV3_MAX_THREADS 256
#define CONV3_SMEM_FLOATS (48 * 1024 / 4) /* default dynamic shared memory limit, no attribute needed */
#define CONV3_STAGE 8                     /* staging loads in flight per thread */
#define CONV_GEN_THREADS 256
#define CONV_GEN_OCT 4

typedef struct conv_params {
    const float *x, *w, *bias;
    float *y;
    int64_t n;
    int c, h, wd, oc, oh, ow;
    int sh, sw, ph, pw, kh, kw, relu;
    /* 3x3 tiling */
    int tx, ty, ocg, ocb, tiles_x, tiles_y, cc, ih, iw, iwp;
    unsigned m_iw, m_ih; /* ceil(2^32 / iw), ceil(2^32 / ih): index splits by __umulhi */
} conv_params;

__device__ __forceinline__ float conv_out(float v, int relu) { return relu && v < 0.0f ? 0.0f : v; }

/* ---- 3x3 path --------------------------------------------------------------------------------------- */

/* N consecutive floats from shared memory at p; p is 16-byte aligned when ALIGN == 4, 8-byte when 2. */
template <int N, int ALIGN> __device__ __forceinline__ void lds_row(float *dst, const float *p) {
    int i = 0;
    if (ALIGN == 4) {
#pragma unroll
        for (; i + 4 <= N; i += 4) {
            const float4 q = *(const float4 *)(p + i);
            dst[i] = q.x;
            dst[i + 1] = q.y;
            dst[i + 2] = q.z;
            dst[i + 3] = q.w;
        }
    }
    if (ALIGN >= 2) {
#pragma unroll
        for (; i + 2 <= N; i += 2) {
            const float2 q = *(const float2 *)(p + i);
            dst[i] = q.x;
            dst[i + 1] = q.y;
        }
    }
#pragma unroll
    for (; i < N; i++) dst[i] = p[i];
}

/* OCT weights at p (16-byte aligned when OCT % 4 == 0, 8-byte when OCT == 2). */
template <int OCT> __device__ __forceinline__ void lds_w(float *dst, const float *p) {
    if (OCT % 4 == 0) {
#pragma unroll
        for (int o = 0; o < OCT; o += 4) {
            const float4 q = *(const float4 *)(p + o);
            dst[o] = q.x;
            dst[o + 1] = q.y;
            dst[o + 2] = q.z;
            dst[o + 3] = q.w;
        }
    } else if (OCT % 2 == 0) {
#pragma unroll
        for (int o = 0; o < OCT; o += 2) {
            const float2 q = *(const float2 *)(p + o);
            dst[o] = q.x;
            dst[o + 1] = q.y;
        }
    } else {
#pragma unroll
        for (int o = 0; o < OCT; o++) dst[o] = p[o];
    }
}

/* S = horizontal stride (1 or 2), or 0 for any stride (read per output column). */
template <int OCT, int PX, int S>
__global__ void __launch_bounds__(CONV3_MAX_THREADS) conv3x3_kernel(const conv_params p) {
    extern __shared__ float4 conv_smem4[];
    float *s_in = (float *)conv_smem4;
    const int s_w_off = p.cc * p.ih * p.iwp; /* iwp % 4 == 0: the weights stay 16-byte aligned */
    float *s_w = s_in + s_w_off;
    const int sw = S ? S : p.sw;
    const int sp = p.tx * p.ty; /* a multiple of 32: og is uniform per warp */
    const int tid = (int)threadIdx.x;
    const int og = tid / sp;
    const int r = tid - og * sp;
    const int ty = r / p.tx;
    const int tx = r - ty * p.tx;
    const int tiles = p.tiles_x * p.tiles_y;
    const int64_t img = (int64_t)(blockIdx.x / (unsigned)tiles);
    const int tile = (int)(blockIdx.x - (unsigned)img * (unsigned)tiles);
    const int tyi = tile / p.tiles_x;
    const int txi = tile - tyi * p.tiles_x;
    const int oy0 = tyi * p.ty, ox0 = txi * p.tx * PX;
    const int iy0 = oy0 * p.sh - p.ph, ix0 = ox0 * sw - p.pw;
    const int ocbase = (int)blockIdx.y * p.ocb;
    const float *ximg = p.x + img * (int64_t)p.c * (int64_t)p.h * (int64_t)p.wd;
    const int nthreads = (int)blockDim.x;

    float acc[OCT][PX];
#pragma unroll
    for (int o = 0; o < OCT; o++)
#pragma unroll
        for (int q = 0; q < PX; q++) acc[o][q] = 0.0f;

    for (int c0 = 0; c0 < p.c; c0 += p.cc) {
        const int ncc = min(p.cc, p.c - c0);
        if (c0 > 0) __syncthreads(); /* the previous chunk's reads are done */
        /* Stage the chunk: input tile + halo (zeros outside the image), then the weights, transposed
         * from global [oc][c][9] to shared [cc][9][ocb] (zeros beyond oc), as one flat index space.
         * CONV3_STAGE loads a thread are issued before any is stored, so their latencies overlap;
         * indices are split with multiply-high divisions (exact: every index·divisor < 2^32). */
        const int n_in = ncc * p.ih * p.iw;
        const int nwk = ncc * 9;
        const int n_all = n_in + p.ocb * nwk;
        const unsigned m_nwk = 0xffffffffu / (unsigned)nwk + 1u;
        for (int i0 = tid; i0 < n_all; i0 += nthreads * CONV3_STAGE) {
            float v[CONV3_STAGE];
            int dst[CONV3_STAGE];
#pragma unroll
            for (int k = 0; k < CONV3_STAGE; k++) {
                const int i = i0 + k * nthreads;
                v[k] = 0.0f;
                dst[k] = -1;
                if (i < n_in) {
                    const int row = (int)__umulhi((unsigned)i, p.m_iw); /* cc·ih + ry */
                    const int col = i - row * p.iw;
                    const int cc = (int)__umulhi((unsigned)row, p.m_ih);
                    const int gy = iy0 + row - cc * p.ih;
                    const int gx = ix0 + col;
                    dst[k] = row * p.iwp + col;
                    if (gy >= 0 && gy < p.h && gx >= 0 && gx < p.wd)
                        v[k] = __ldg(ximg + ((int64_t)(c0 + cc) * p.h + gy) * (int64_t)p.wd + gx);
                } else if (i < n_all) {
                    const int j0 = i - n_in;
                    const int o = (int)__umulhi((unsigned)j0, m_nwk);
                    const int j = j0 - o * nwk;
                    const int goc = ocbase + o;
                    dst[k] = s_w_off + j * p.ocb + o;
                    if (goc < p.oc) v[k] = __ldg(p.w + ((int64_t)goc * p.c + c0) * 9 + j);
                }
            }
#pragma unroll
            for (int k = 0; k < CONV3_STAGE; k++)
                if (dst[k] >= 0) s_in[dst[k]] = v[k];
        }
        __syncthreads();
        for (int cc = 0; cc < ncc; cc++) {
#pragma unroll
            for (int ky = 0; ky < 3; ky++) {
                const float *row = s_in + (cc * p.ih + ty * p.sh + ky) * p.iwp + tx * PX * sw;
                const float *wr = s_w + (cc * 9 + ky * 3) * p.ocb + og * OCT;
                float wv[3][OCT];
#pragma unroll
                for (int kx = 0; kx < 3; kx++) lds_w<OCT>(wv[kx], wr + kx * p.ocb);
                if (S > 0) {
                    const int NIN = (PX - 1) * (S > 0 ? S : 1) + 3;
                    float in[NIN];
                    lds_row<NIN, (PX * S) % 4 == 0 ? 4 : ((PX * S) % 2 == 0 ? 2 : 1)>(in, row);
#pragma unroll
                    for (int kx = 0; kx < 3; kx++)
#pragma unroll
                        for (int o = 0; o < OCT; o++)
#pragma unroll
                            for (int q = 0; q < PX; q++)
                                acc[o][q] = fmaf(wv[kx][o], in[q * (S > 0 ? S : 1) + kx], acc[o][q]);
                } else {
#pragma unroll
                    for (int q = 0; q < PX; q++) {
                        float in[3];
#pragma unroll
                        for (int kx = 0; kx < 3; kx++) in[kx] = row[q * sw + kx];
#pragma unroll
                        for (int kx = 0; kx < 3; kx++)
#pragma unroll
                            for (int o = 0; o < OCT; o++) acc[o][q] = fmaf(wv[kx][o], in[kx], acc[o][q]);
                    }
                }
            }
        }
    }

    const int oy = oy0 + ty;
    const int ox = ox0 + tx * PX;
    if (oy >= p.oh || ox >= p.ow) return;
#pragma unroll
    for (int o = 0; o < OCT; o++) {
        const int goc = ocbase + og * OCT + o;
        if (goc >= p.oc) break;
        const float b = p.bias ? __ldg(p.bias + goc) : 0.0f;
        float *dst = p.y + ((img * p.oc + goc) * (int64_t)p.oh + oy) * (int64_t)p.ow + ox;
        float v[PX];
#pragma unroll
        for (int q = 0; q < PX; q++) v[q] = conv_out(acc[o][q] + b, p.relu);
        if (PX == 4 && ox + 4 <= p.ow && ((uintptr_t)dst & 15u) == 0) {
            *(float4 *)dst = make_float4(v[0], v[1], v[2], v[3]);
        } else if (PX == 2 && ox + 2 <= p.ow && ((uintptr_t)dst & 7u) == 0) {
            *(float2 *)dst = make_float2(v[0], v[1]);
        } else {
#pragma unroll
            for (int q = 0; q < PX; q++)
                if (ox + q < p.ow) dst[q] = v[q];
        }
    }
}

/* ---- general path ----------------------------------------------------------------------------------- */

__global__ void __launch_bounds__(CONV_GEN_THREADS) conv_generic_kernel(const conv_params p) {
    const int64_t ohw = (int64_t)p.oh * p.ow;
    const int64_t npix = p.n * ohw;
    const int64_t khw = (int64_t)p.kh * p.kw;
    const int64_t plane = (int64_t)p.h * p.wd;
    const int nog = (p.oc + CONV_GEN_OCT - 1) / CONV_GEN_OCT;
    for (int ogi = (int)blockIdx.y; ogi < nog; ogi += (int)gridDim.y) {
        const int oc0 = ogi * CONV_GEN_OCT;
        const float *wo[CONV_GEN_OCT]; /* weight rows of the group's channels (clamped to the last) */
#pragma unroll
        for (int o = 0; o < CONV_GEN_OCT; o++) wo[o] = p.w + (int64_t)min(oc0 + o, p.oc - 1) * p.c * khw;
        for (int64_t pix = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; pix < npix;
             pix += (int64_t)gridDim.x * blockDim.x) {
            const int64_t img = pix / ohw;
            const int64_t f = pix - img * ohw;
            const int oy = (int)(f / p.ow);
            const int ox = (int)(f - (int64_t)oy * p.ow);
            const int iy0 = oy * p.sh - p.ph, ix0 = ox * p.sw - p.pw;
            const int ky0 = max(0, -iy0), ky1 = min(p.kh, p.h - iy0);
            const int kx0 = max(0, -ix0), kx1 = min(p.kw, p.wd - ix0);
            float acc[CONV_GEN_OCT];
#pragma unroll
            for (int o = 0; o < CONV_GEN_OCT; o++) acc[o] = 0.0f;
            const float *ximg = p.x + img * (int64_t)p.c * plane;
            for (int ci = 0; ci < p.c; ci++) {
                const float *xc = ximg + ci * plane;
                const int64_t wc = (int64_t)ci * khw;
                for (int ky = ky0; ky < ky1; ky++) {
                    const float *xr = xc + (int64_t)(iy0 + ky) * p.wd + ix0;
                    const int64_t wk = wc + (int64_t)ky * p.kw;
                    for (int kx = kx0; kx < kx1; kx++) {
                        const float xv = __ldg(xr + kx);
#pragma unroll
                        for (int o = 0; o < CONV_GEN_OCT; o++) acc[o] = fmaf(__ldg(wo[o] + wk + kx), xv, acc[o]);
                    }
                }
            }
            float *dst = p.y + (img * p.oc + oc0) * ohw + f;
#pragma unroll
            for (int o = 0; o < CONV_GEN_OCT; o++) {
                if (oc0 + o >= p.oc) break;
                const float b = p.bias ? __ldg(p.bias + oc0 + o) : 0.0f;
                dst[(int64_t)o * ohw] = conv_out(acc[o] + b, p.relu);
            }
        }
    }
}

/* ---- launcher --------------------------------------------------------------------------------------- */

/* A 3x3 configuration: OCT channels × PX columns a thread, at most OCG_MAX channel groups a block (the
 * block's channels OCB = OCG·OCT), SP threads per channel group laid out TX (columns) × TY (rows). */
typedef struct conv3_cfg {
    int oct, px, ocg_max, sp;
} conv3_cfg;

static const conv3_cfg CONV3_CFGS[] = {
    {8, 4, 2, 64},  /* 0 */
    {4, 4, 4, 64},  /* 1 */
    {4, 4, 1, 128}, /* 2 */
    {4, 2, 4, 64},  /* 3 */
    {4, 2, 1, 128}, /* 4 */
    {8, 2, 2, 128}, /* 5 */
    {2, 2, 8, 32},  /* 6 */
    {8, 4, 1, 64},  /* 7 */
    {4, 2, 2, 64},  /* 8 */
    {4, 4, 4, 32},  /* 9 */
    {8, 2, 2, 64},  /* 10 */
    {4, 4, 2, 32},  /* 11 */
};
#define CONV3_NCFG ((int)(sizeof(CONV3_CFGS) / sizeof(CONV3_CFGS[0])))

static int conv_pow2_at_least(int v) {
    int q = 1;
    while (q < v) q <<= 1;
    return q;
}

/* Fills the tiling fields of *p for configuration cfg; 0 if it does not fit (shared memory, grid). */
static int conv3_plan(conv_params *p, const conv3_cfg *cfg, unsigned *grid_x, unsigned *grid_y, size_t *smem) {
    int ocg = (p->oc + cfg->oct - 1) / cfg->oct;
    if (ocg > cfg->ocg_max) ocg = cfg->ocg_max;
    int tx = conv_pow2_at_least((p->ow + cfg->px - 1) / cfg->px);
    if (tx > 32) tx = 32;
    if (tx > cfg->sp) tx = cfg->sp;
    const int ty = cfg->sp / tx;
    p->tx = tx;
    p->ty = ty;
    p->ocg = ocg;
    p->ocb = ocg * cfg->oct;
    p->tiles_x = (p->ow + tx * cfg->px - 1) / (tx * cfg->px);
    p->tiles_y = (p->oh + ty - 1) / ty;
    const int64_t ih = (int64_t)(ty - 1) * p->sh + 3;
    const int64_t iw = (int64_t)(tx * cfg->px - 1) * p->sw + 3;
    const int64_t iwp = (iw + 3) / 4 * 4;
    const int64_t per_c = ih * iwp + 9 * (int64_t)p->ocb;
    if (per_c > CONV3_SMEM_FLOATS) return 0;
    int64_t cc = CONV3_SMEM_FLOATS / per_c;
    if (cc > p->c) cc = p->c;
    p->ih = (int)ih;
    p->iw = (int)iw;
    p->iwp = (int)iwp;
    p->m_iw = 0xffffffffu / (unsigned)iw + 1u; /* iw, ih >= 3: no overflow */
    p->m_ih = 0xffffffffu / (unsigned)ih + 1u;
    p->cc = (int)cc;
    const int64_t gx = p->n * (int64_t)p->tiles_x * p->tiles_y;
    const int64_t gy = (p->oc + p->ocb - 1) / p->ocb;
    if (gx > 0x7fffffff || gy > 65535) return 0;
    *grid_x = (unsigned)gx;
    *grid_y = (unsigned)gy;
    *smem = (size_t)(cc * per_c) * sizeof(float);
    return 1;
}

template <int OCT, int PX>
static void conv3_launch_t(const conv_params *p, unsigned gx, unsigned gy, size_t smem, cudaStream_t s) {
    const dim3 grid(gx, gy);
    const int threads = p->ocg * p->tx * p->ty;
    if (p->sw == 1) conv3x3_kernel<OCT, PX, 1><<<grid, threads, smem, s>>>(*p);
    else if (p->sw == 2) conv3x3_kernel<OCT, PX, 2><<<grid, threads, smem, s>>>(*p);
    else conv3x3_kernel<OCT, PX, 0><<<grid, threads, smem, s>>>(*p);
}

static void conv3_launch(const conv_params *p, const conv3_cfg *cfg, unsigned gx, unsigned gy, size_t smem,
                         cudaStream_t s) {
    switch (cfg->oct * 10 + cfg->px) {
    case 84: conv3_launch_t<8, 4>(p, gx, gy, smem, s); break;
    case 82: conv3_launch_t<8, 2>(p, gx, gy, smem, s); break;
    case 44: conv3_launch_t<4, 4>(p, gx, gy, smem, s); break;
    case 42: conv3_launch_t<4, 2>(p, gx, gy, smem, s); break;
    default: conv3_launch_t<2, 2>(p, gx, gy, smem, s); break;
    }
}


/* The 3x3 configuration for a shape, from timings of all configurations on an H200 (devcheck/kernels,
 * 10 shapes n 1..16, c 3..16, oc 16, 16..64 square): cfg 1 (4 channels × 4 columns a thread) is the
 * fastest once it gives the GPU >= 6 warps per multiprocessor (e.g. 8x16x64x64: 11.0 µs back to back
 * against 15.5 for the next pick); below that, cfg 6 (2 × 2 a thread, more and smaller blocks) is the
 * fastest or within noise of it on every shape measured (16x16x32x32: 8.9 µs, launch floor ~3.6).
 * -1: no configuration fits (the general path runs). */
static int conv3_pick(const conv_params *p) {
    static const int order[] = {1, 6, 3, 8, 5, 0};
    const int64_t want_warps = (int64_t)lc_cuda_sm_count() * 6;
    for (int i = 0; i < (int)(sizeof(order) / sizeof(order[0])); i++) {
        const conv3_cfg *cfg = &CONV3_CFGS[order[i]];
        conv_params q = *p;
        unsigned gx, gy;
        size_t smem;
        if (!conv3_plan(&q, cfg, &gx, &gy, &smem)) continue;
        if (order[i] == 1) { /* only when the layer has >= 4 channels and the grid fills the GPU */
            const int64_t warps = (int64_t)gx * gy * ((q.ocg * q.tx * q.ty) / 32);
            if (p->oc < 4 || warps < want_warps) continue;
        }
        return order[i];
    }
    return -1;
}

static cudaError_t conv_launch_generic(const conv_params *p, cudaStream_t s) {
    const int64_t npix = p->n * (int64_t)p->oh * p->ow;
    int64_t gx = (npix + CONV_GEN_THREADS - 1) / CONV_GEN_THREADS;
    const int64_t cap = (int64_t)lc_cuda_sm_count() * 16;
    if (gx > cap) gx = cap;
    int64_t gy = (p->oc + CONV_GEN_OCT - 1) / CONV_GEN_OCT;
    if (gy > 65535) gy = 65535;
    conv_generic_kernel<<<dim3((unsigned)gx, (unsigned)gy), CONV_GEN_THREADS, 0, s>>>(*p);
    return cudaGetLastError();
}

/* Validates and converts the arguments; 0 = nothing to do, -1 = invalid, 1 = launch. */
static int conv_setup(const lc_conv2d_args *a, conv_params *p) {
    if (!a) return -1;
    if (a->n < 0 || a->oc < 0 || a->oh < 0 || a->ow < 0) return -1;
    if (a->n == 0 || a->oc == 0 || a->oh == 0 || a->ow == 0) return 0;
    if (a->c < 1 || a->h < 1 || a->w < 1 || a->kh < 1 || a->kw < 1 || a->stride_h < 1 || a->stride_w < 1 ||
        a->pad_h < 0 || a->pad_w < 0)
        return -1;
    const int64_t lim = 0x7fffffff;
    if (a->c > lim || a->h > lim || a->w > lim || a->oc > lim || a->oh > lim || a->ow > lim || a->kh > lim ||
        a->kw > lim)
        return -1;
    if (!a->x || !a->weight || !a->y || a->dtype != LC_DTYPE_F32) return -1; /* 16-bit: backend_cuda.c */
    p->x = (const float *)a->x;
    p->w = (const float *)a->weight;
    p->bias = (const float *)a->bias;
    p->y = (float *)a->y;
    p->n = a->n;
    p->c = (int)a->c;
    p->h = (int)a->h;
    p->wd = (int)a->w;
    p->oc = (int)a->oc;
    p->oh = (int)a->oh;
    p->ow = (int)a->ow;
    p->kh = (int)a->kh;
    p->kw = (int)a->kw;
    p->sh = a->stride_h;
    p->sw = a->stride_w;
    p->ph = a->pad_h;
    p->pw = a->pad_w;
    p->relu = a->apply_relu != 0;
    /* output coordinates times the stride must stay in int range (3x3 tile origins, generic indices) */
    if ((int64_t)p->oh * p->sh + p->kh > lim || (int64_t)p->ow * p->sw + p->kw > lim) return -1;
    return 1;
}

static cudaError_t conv_run(const lc_conv2d_args *a, int cfg_index, cudaStream_t stream) {
    conv_params p = {};
    const int st = conv_setup(a, &p);
    if (st < 0) return cudaErrorInvalidValue;
    if (st == 0) return cudaSuccess;
    if (p.kh == 3 && p.kw == 3 && cfg_index != -2) {
        const int ci = cfg_index >= 0 && cfg_index < CONV3_NCFG ? cfg_index : conv3_pick(&p);
        unsigned gx, gy;
        size_t smem;
        if (ci >= 0 && conv3_plan(&p, &CONV3_CFGS[ci], &gx, &gy, &smem)) {
            conv3_launch(&p, &CONV3_CFGS[ci], gx, gy, smem, stream);
            return cudaGetLastError();
        }
    }
    return conv_launch_generic(&p, stream);
}

extern "C" cudaError_t lc_cuda_launch_conv2d(const lc_conv2d_args *args, cudaStream_t stream) {
    return conv_run(args, -1, stream);
}

#ifdef LC_CUDA_DEVCHECK
/* devcheck only: cfg >= 0 forces a 3x3 configuration (CONV3_CFGS index), -2 the general path,
 * -1 the launcher's choice. Returns the number of 3x3 configurations when args is NULL. */
extern "C" cudaError_t lc_cuda_conv2d_forced(const lc_conv2d_args *args, int cfg, cudaStream_t stream) {
    if (!args) return (cudaError_t)CONV3_NCFG;
    return conv_run(args, cfg, stream);
}
extern "C" int lc_cuda_conv2d_pick(const lc_conv2d_args *args) {
    conv_params p = {};
    if (conv_setup(args, &p) != 1 || p.kh != 3 || p.kw != 3) return -2;
    return conv3_pick(&p);
}
#endif
