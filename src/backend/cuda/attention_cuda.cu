/* attention_cuda.cu — CUDA single-head attention forward, flash style, exact float32 (FFMA, no TF32).
 *
 * out[seq,d] = softmax(scale · q kᵀ (+ causal mask)) · v; q, k, v, out are float32 [seq, head_dim]
 * row-major contiguous device buffers; head_dim 1..256 (else cudaErrorInvalidValue), any seq >= 1.
 *
 * Forward kernel (att_fwd, 128 threads): one block owns BQ query rows and walks the key tiles of BK
 * keys with an online softmax (running max m, running sum l, accumulator rescaled by 2^(m_old-m_new)).
 * Shared memory holds qᵀ [DP][BQ] (pre-scaled by scale·log2(e), so exp is 2^x), the K tile [BK][DP+4]
 * and V tile [BK][DP] (cp.async; double-buffered, or with one buffer each K of the next tile loads
 * during p·v and V during q·kᵀ) and pᵀ [BK][BQ+4]. Register tiling: a thread owns TR (4 or 8) query
 * rows × BK/NCG score columns (column i·NCG + cg) and TR rows × DP/NCG output columns (chunks of VW
 * contiguous columns): 64 FFMA per 16-byte shared load pair at TR = 8, the loads of paired lanes shared
 * (lane layout in att_fwd). Row maxima reduce by shuffles per tile, row sums once at the end. DP is
 * head_dim rounded up to 16/32/48/64/96/128/192/256 (zero padding keeps every size exact); d % 4 == 0
 * with 16-byte aligned buffers uses 16-byte copies, anything else a scalar loader.
 * Configurations (DP: BQ×BK, TR, stages): <=64: 64×64, 4, 2 (d 49..64 from seq 4096, causal 8192:
 * 128×64, 8, 1); 96/128: 64×32, 4, 2; 192/256: 32×32, 4, 1.
 * Causal: key tiles wholly above the diagonal are skipped; masked scores are -inf (selected, so a
 * NaN/Inf from a masked k row never reaches the softmax); m starts at -FLT_MAX, so a fully masked row
 * stays finite (alpha = 1, p = 0). Keys past seq are masked. The p·v loop stops at seq and, on the
 * diagonal, at each row's last visible key (per-row predicates for the thread's TR rows): a masked v
 * row is never read, so a NaN/Inf there cannot poison earlier rows (p = 0 times NaN is NaN). NaN/Inf
 * in visible keys or values propagate as in the float64 reference.
 *
 * Key split (flash-decoding): when the query blocks alone don't fill the GPU (fewer than
 * num_sms × resident blocks per SM), each query block's key tiles are cut into near-equal chunks, one
 * block each (grid y; chunk size from the cost model in att_make_plan); a block writes its
 * unnormalised accumulator and (m, l) per row to the workspace and att_combine merges them:
 * out = Σ 2^(m_s-M)·o_s / Σ 2^(m_s-M)·l_s over the splits that hold a key the row sees (causal: a
 * split wholly past the row is skipped). lc_cuda_attention_workspace() gives the bytes (0 when the
 * plan has no split); with a smaller or misaligned (not 16-byte) workspace the launch falls back to
 * the cost model's split if that fits, else to no split.
 *
 * Autotuning (include/lightning_core/tune.h, section "Autotuning of the key split" below): the split
 * (none, or the chunk of key tiles per block) is timed per shape at its first call and stored.
 *
 * Tests: devcheck/attention (float64 reference, sanitizer, timing vs torch; GPU machine only),
 * tests/c/test_ops.c, tests/python/test_ops_attention.py and test_tuning.py on device "cuda".
 */
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/cuda/cuda_graph.h"
#include "backend/cuda/cuda_kernels.h"
#include "core/counters.h"
#include "core/tune_cache.h"

#define ATT_LOG2E 1.44269504088896340736f
#define ATT_MAX_D 256
#define ATT_SM_SMEM (228 * 1024) /* shared memory per SM (sm_90), for the occupancy estimate */
#define ATT_BLOCK_RESERVED 1024  /* shared memory the runtime reserves per block */
#define ATT_MAX_SMS 1024         /* num_sms is clamped to this (keeps grid.y small) */

/* Pipeline depth of the K/V tiles for head_dim <= 64 (2: double-buffered, 2 blocks/SM at d=64;
 * 1: single buffer, 3 blocks/SM). Overridable for experiments. */
#ifndef ATT_SMALL_ST
#define ATT_SMALL_ST 2
#endif
/* Lane layout that lets paired lanes share 16-byte shared-memory loads (see att_fwd). */
#ifndef ATT_SWIZZLE
#define ATT_SWIZZLE 1
#endif
/* head_dim 49..64: from this seq on (causal: twice this), the 8-rows-per-thread kernel (BQ = 128)
 * replaces the 4-row one. */
#ifndef ATT_D64_BIG_SEQ
#define ATT_D64_BIG_SEQ 4096
#endif
/* A split must save at least this many key-tile times over no split (the combine pass and the
 * second launch cost about that). */
#ifndef ATT_SPLIT_MIN_GAIN
#define ATT_SPLIT_MIN_GAIN 2
#endif

typedef struct att_params {
    const float *q, *k, *v;
    float *out;
    float *ws_o, *ws_m, *ws_l; /* split partials (NULL when no split) */
    int seq, d, nqb;
    int causal, vec_ok;
    int chunk;      /* split: most key tiles per split block (0: no split) */
    int nsplit_max; /* split: grid.y and the partials' stride */
    float qscale;   /* scale · log2(e) */
} att_params;

/* ---------------------------------------------------------------------------------------------------
 * Small device helpers
 * ------------------------------------------------------------------------------------------------- */

__device__ __forceinline__ void att_cp_async16(void *smem_dst, const void *gsrc, int src_bytes) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem_dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gsrc), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void att_cp_async_commit(void) { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void att_cp_async_wait_all(void) { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
__device__ __forceinline__ void att_cp_async_wait_1(void) { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

/* Key tiles query block qb sees (causal: up to its last row), and its split count. Host and device
 * use the same formulas, so the combine pass knows each block's splits. */
__host__ __device__ __forceinline__ int att_visible_tiles(int qb, int bq, int bk, int seq, int causal) {
    int kend = seq;
    if (causal && (qb + 1) * bq < seq) kend = (qb + 1) * bq;
    return (kend + bk - 1) / bk;
}
__host__ __device__ __forceinline__ int att_nsplit(int ntiles, int chunk) { return (ntiles + chunk - 1) / chunk; }

/* ---------------------------------------------------------------------------------------------------
 * Forward kernel. DP: padded head_dim; BQ query rows per block; BK keys per tile; NT threads;
 * VW: width of an output column chunk (2 or 4); ST: K/V pipeline stages (1 or 2); MINB: blocks/SM.
 * ------------------------------------------------------------------------------------------------- */

template <int DP, int BQ, int BK, int NT, int TR, int VW, int ST, int MINB>
__global__ void __launch_bounds__(NT, MINB) att_fwd(const att_params p) {
    constexpr int NRG = BQ / TR;     /* row groups (TR query rows each) */
    constexpr int NCG = NT / NRG;    /* threads per row group (one warp's lanes) */
    constexpr int TC = BK / NCG;     /* score columns per thread */
    constexpr int NVO = DP / (NCG * VW); /* output chunks per thread */
    constexpr int TO = NVO * VW;     /* output columns per thread */
    constexpr int KS = DP + 4;       /* K tile row stride (conflict-free column reads) */
    constexpr int PS = BQ + 4;       /* pᵀ row stride */
    constexpr int C4 = DP / 4;
    static_assert(NRG * NCG == NT && NCG <= 32 && (NCG & (NCG - 1)) == 0, "thread layout");
    static_assert(TC * NCG == BK && NVO * NCG * VW == DP && (VW == 2 || VW == 4), "tile layout");
    static_assert((TR == 4 || TR == 8) && NCG >= 2 && NCG <= 16, "thread layout");
    constexpr int RH = TR / 4;       /* float4s per TR rows */

    extern __shared__ float4 att_smem4[];
    float *const Qt = reinterpret_cast<float *>(att_smem4); /* [DP][BQ] */
    float *const Ks = Qt + DP * BQ;                         /* [ST][BK][KS] */
    float *const Vs = Ks + ST * BK * KS;                    /* [ST][BK][DP] */
    float *const Pt = Vs + ST * BK * DP;                    /* [BK][PS] */

    /* Lanes: bit 0 = low row-group bit, the next log2(NCG) bits = cg, the rest = high row-group
     * bits. Lanes n and n^1 then read the same k / v addresses and lanes n and n^2 the same q / p
     * addresses, which halves the shared-memory return cycles of those 16-byte loads. */
    const int tid = threadIdx.x;
#if ATT_SWIZZLE
    constexpr int SH = 1; /* shuffle distances within a row group are NCG/2..1 shifted by SH */
    const int lane = tid & 31;
    const int cg = (lane >> 1) & (NCG - 1);
    const int rg = (tid >> 5) * (32 / NCG) + (((lane >> 1) / NCG) << 1) + (lane & 1);
#else
    constexpr int SH = 0;
    const int cg = tid % NCG;
    const int rg = tid / NCG;
#endif
    const int seq = p.seq, d = p.d;
    const int qb = p.causal ? p.nqb - 1 - (int)blockIdx.x : (int)blockIdx.x; /* causal: long rows first */
    const int q0 = qb * BQ;
    const int ntiles = att_visible_tiles(qb, BQ, BK, seq, p.causal);
    int t_begin = 0, t_end = ntiles;
    const int split = (int)blockIdx.y;
    if (p.chunk > 0) {
        const int ns = att_nsplit(ntiles, p.chunk);
        if (split >= ns) return; /* whole block */
        t_begin = (int)((long long)split * ntiles / ns);
        t_end = (int)((long long)(split + 1) * ntiles / ns);
    }

    /* K or V tile t ([BK][stride] at dst) as one cp.async group; rows past seq and columns past d are
     * zero (p·v must see finite zeros). */
    auto load_tile = [&](const float *src, float *dst, int stride, int t) {
        const int j0 = t * BK;
        if (p.vec_ok) {
            for (int idx = tid; idx < BK * C4; idx += NT) {
                const int r = idx / C4, c = (idx % C4) * 4;
                const int key = j0 + r;
                const bool ok = key < seq && c < d;
                const size_t off = ok ? (size_t)key * (size_t)d + (size_t)c : 0;
                att_cp_async16(dst + r * stride + c, src + off, ok ? 16 : 0);
            }
        } else {
            for (int idx = tid; idx < BK * DP; idx += NT) {
                const int r = idx / DP, c = idx % DP;
                const int key = j0 + r;
                const bool ok = key < seq && c < d;
                dst[r * stride + c] = ok ? __ldg(src + (size_t)key * (size_t)d + (size_t)c) : 0.0f;
            }
        }
        att_cp_async_commit();
    };
    auto load_k = [&](int t, int s) { load_tile(p.k, Ks + s * BK * KS, KS, t); };
    auto load_v = [&](int t, int s) { load_tile(p.v, Vs + s * BK * DP, DP, t); };

    load_k(t_begin, 0);
    load_v(t_begin, 0);

    /* qᵀ, scaled by scale·log2(e); rows past seq and columns past d are zero. */
    {
        const float qs = p.qscale;
        if (p.vec_ok) {
            for (int idx = tid; idx < BQ * C4; idx += NT) {
                const int r = idx % BQ, c = (idx / BQ) * 4;
                const int row = q0 + r;
                float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (row < seq && c < d) x = __ldg(reinterpret_cast<const float4 *>(p.q + (size_t)row * d + c));
                Qt[(c + 0) * BQ + r] = x.x * qs;
                Qt[(c + 1) * BQ + r] = x.y * qs;
                Qt[(c + 2) * BQ + r] = x.z * qs;
                Qt[(c + 3) * BQ + r] = x.w * qs;
            }
        } else {
            for (int idx = tid; idx < BQ * DP; idx += NT) {
                const int r = idx % BQ, c = idx / BQ;
                const int row = q0 + r;
                Qt[c * BQ + r] = (row < seq && c < d) ? __ldg(p.q + (size_t)row * d + c) * qs : 0.0f;
            }
        }
    }

    float o[TR][TO];
    float m[TR], l[TR];
#pragma unroll
    for (int r = 0; r < TR; r++) {
        m[r] = -FLT_MAX;
        l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < TO; c++) o[r][c] = 0.0f;
    }

    /* Pipeline. ST == 2: tile t+1 (K and V) loads into the other stage while tile t is computed.
     * ST == 1: one buffer each; K of tile t+1 loads during p·v of tile t, V of tile t+1 during q·kᵀ
     * of tile t+1 (cp.async groups in order K, V, K, V, ...). */
    for (int t = t_begin; t < t_end; t++) {
        const int s = ST == 2 ? ((t - t_begin) & 1) : 0;
        if (ST == 2) att_cp_async_wait_all();
        else att_cp_async_wait_1(); /* K of tile t; V of tile t may still be in flight */
        __syncthreads(); /* tile t (and qᵀ) visible; everyone is past the previous tile */
        if (ST == 2 && t + 1 < t_end) {
            load_k(t + 1, s ^ 1);
            load_v(t + 1, s ^ 1);
        }

        const float *ks = Ks + s * BK * KS;
        const float *vs = Vs + s * BK * DP;
        const int j0 = t * BK;

        /* ---- scores: sc[r][i] = q[row r] · k[j0 + i·NCG + cg] (already in log2 units) ---- */
        float sc[TR][TC];
#pragma unroll
        for (int r = 0; r < TR; r++)
#pragma unroll
            for (int i = 0; i < TC; i++) sc[r][i] = 0.0f;

#pragma unroll(C4 <= 16 ? C4 : 4)
        for (int d4 = 0; d4 < C4; d4++) {
            float qv[4][TR];
#pragma unroll
            for (int e = 0; e < 4; e++)
#pragma unroll
                for (int h = 0; h < RH; h++) {
                    const float4 x = *reinterpret_cast<const float4 *>(Qt + (d4 * 4 + e) * BQ + rg * TR + h * 4);
                    qv[e][h * 4 + 0] = x.x;
                    qv[e][h * 4 + 1] = x.y;
                    qv[e][h * 4 + 2] = x.z;
                    qv[e][h * 4 + 3] = x.w;
                }
#pragma unroll
            for (int i = 0; i < TC; i++) {
                const float4 kv = *reinterpret_cast<const float4 *>(ks + (i * NCG + cg) * KS + d4 * 4);
#pragma unroll
                for (int r = 0; r < TR; r++) {
                    float a = sc[r][i];
                    a = fmaf(qv[0][r], kv.x, a);
                    a = fmaf(qv[1][r], kv.y, a);
                    a = fmaf(qv[2][r], kv.z, a);
                    a = fmaf(qv[3][r], kv.w, a);
                    sc[r][i] = a;
                }
            }
        }

        /* ---- mask (keys past seq; causal keys past the row) ---- */
        if (j0 + BK > seq || (p.causal && j0 + BK - 1 > q0)) {
#pragma unroll
            for (int r = 0; r < TR; r++) {
                const int row = q0 + rg * TR + r;
#pragma unroll
                for (int i = 0; i < TC; i++) {
                    const int key = j0 + i * NCG + cg;
                    if (key >= seq || (p.causal && key > row)) sc[r][i] = -INFINITY;
                }
            }
        }

        /* ---- online softmax; p to shared memory (transposed) ---- */
#pragma unroll
        for (int r = 0; r < TR; r++) {
            float mx = sc[r][0];
#pragma unroll
            for (int i = 1; i < TC; i++) mx = fmaxf(mx, sc[r][i]);
#pragma unroll
            for (int off = NCG / 2; off >= 1; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off << SH));
            const float mnew = fmaxf(m[r], mx);
            const float alpha = exp2f(m[r] - mnew);
            m[r] = mnew;
            float sum = 0.0f;
#pragma unroll
            for (int i = 0; i < TC; i++) {
                const float e = exp2f(sc[r][i] - mnew);
                sc[r][i] = e;
                sum += e;
            }
            l[r] = fmaf(l[r], alpha, sum); /* this thread's columns only; reduced at the end */
#pragma unroll
            for (int c = 0; c < TO; c++) o[r][c] *= alpha;
        }
#pragma unroll
        for (int i = 0; i < TC; i++)
#pragma unroll
            for (int h = 0; h < RH; h++)
                *reinterpret_cast<float4 *>(Pt + (i * NCG + cg) * PS + rg * TR + h * 4) =
                    make_float4(sc[h * 4][i], sc[h * 4 + 1][i], sc[h * 4 + 2][i], sc[h * 4 + 3][i]);
        if (ST == 1) att_cp_async_wait_all(); /* V of tile t */
        __syncthreads(); /* pᵀ (and V) visible; everyone is done with K of tile t */
        if (ST == 1 && t + 1 < t_end) load_k(t + 1, 0);

        /* ---- o += p · v over the keys each row sees: keys past seq and (causal) past the row are
         * never read (p = 0 times a NaN/Inf in such a v row would poison the row). Keys [0, jall) are
         * visible to all TR rows of the thread, the next TR - 1 to some: those FMAs are predicated per row. */
        const int jn = seq - j0 < BK ? seq - j0 : BK;
        const int last0 = p.causal ? q0 + rg * TR - j0 : BK; /* the thread's first row sees keys j <= last0 */
        const int jall = min(jn, max(0, last0 + 1));
        auto pv_step = [&](int j, int rmin) { /* rows r >= rmin see key j0 + j */
            float pr[TR];
#pragma unroll
            for (int h = 0; h < RH; h++) {
                const float4 x = *reinterpret_cast<const float4 *>(Pt + j * PS + rg * TR + h * 4);
                pr[h * 4 + 0] = x.x;
                pr[h * 4 + 1] = x.y;
                pr[h * 4 + 2] = x.z;
                pr[h * 4 + 3] = x.w;
            }
#pragma unroll
            for (int u = 0; u < NVO; u++) {
                const float *src = vs + j * DP + u * NCG * VW + cg * VW;
                float vv[VW];
                if constexpr (VW == 4) {
                    const float4 x = *reinterpret_cast<const float4 *>(src);
                    vv[0] = x.x;
                    vv[1] = x.y;
                    vv[2] = x.z;
                    vv[3] = x.w;
                } else {
                    const float2 x = *reinterpret_cast<const float2 *>(src);
                    vv[0] = x.x;
                    vv[1] = x.y;
                }
#pragma unroll
                for (int r = 0; r < TR; r++) {
                    if (r < rmin) continue;
#pragma unroll
                    for (int e = 0; e < VW; e++) o[r][u * VW + e] = fmaf(pr[r], vv[e], o[r][u * VW + e]);
                }
            }
        };
#pragma unroll(BK <= 64 ? 16 : 8)
        for (int j = 0; j < jall; j++) pv_step(j, 0);
#pragma unroll 1
        for (int j = jall; j < min(jn, last0 + TR); j++) pv_step(j, j - last0);

        if (ST == 1 && t + 1 < t_end) {
            __syncthreads(); /* everyone is done with V and pᵀ of tile t */
            load_v(t + 1, 0);
        }
    }

    /* ---- row sums over the row group ---- */
#pragma unroll
    for (int r = 0; r < TR; r++)
#pragma unroll
        for (int off = NCG / 2; off >= 1; off >>= 1) l[r] += __shfl_xor_sync(0xffffffffu, l[r], off << SH);

    if (p.chunk == 0) {
        /* final output: o / l, rows < seq, columns < d */
#pragma unroll
        for (int r = 0; r < TR; r++) {
            const int row = q0 + rg * TR + r;
            if (row >= seq) continue;
            const float inv = 1.0f / l[r];
            float *dst = p.out + (size_t)row * d;
#pragma unroll
            for (int u = 0; u < NVO; u++) {
                const int c = u * NCG * VW + cg * VW;
                if (p.vec_ok && c + VW <= d) {
                    if constexpr (VW == 4)
                        *reinterpret_cast<float4 *>(dst + c) = make_float4(o[r][u * VW] * inv, o[r][u * VW + 1] * inv,
                                                                           o[r][u * VW + 2] * inv, o[r][u * VW + 3] * inv);
                    else
                        *reinterpret_cast<float2 *>(dst + c) = make_float2(o[r][u * VW] * inv, o[r][u * VW + 1] * inv);
                } else {
#pragma unroll
                    for (int e = 0; e < VW; e++)
                        if (c + e < d) dst[c + e] = o[r][u * VW + e] * inv;
                }
            }
        }
    } else {
        /* split partial: unnormalised o [BQ][DP], m and l [BQ] */
        const size_t slot = (size_t)qb * (size_t)p.nsplit_max + (size_t)split;
        float *po = p.ws_o + slot * (size_t)(BQ * DP);
#pragma unroll
        for (int r = 0; r < TR; r++) {
            const int rr = rg * TR + r;
#pragma unroll
            for (int u = 0; u < NVO; u++) {
                float *dst = po + rr * DP + u * NCG * VW + cg * VW;
                if constexpr (VW == 4)
                    *reinterpret_cast<float4 *>(dst) =
                        make_float4(o[r][u * VW], o[r][u * VW + 1], o[r][u * VW + 2], o[r][u * VW + 3]);
                else
                    *reinterpret_cast<float2 *>(dst) = make_float2(o[r][u * VW], o[r][u * VW + 1]);
            }
            if (cg == 0) {
                p.ws_m[slot * BQ + rr] = m[r];
                p.ws_l[slot * BQ + rr] = l[r];
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------------
 * Combine pass: one thread per (row, group of W columns), W = 4 when vectorised, else 1.
 * ------------------------------------------------------------------------------------------------- */

__global__ void __launch_bounds__(256) att_combine(const att_params p, int bq, int bk, int dp) {
    const int w = p.vec_ok ? 4 : 1;
    const int ngroups = p.d / w;
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)p.seq * ngroups) return;
    const int row = (int)(idx / ngroups);
    const int c = (int)(idx % ngroups) * w;
    const int qb = row / bq, rr = row % bq;
    const int ns = att_nsplit(att_visible_tiles(qb, bq, bk, p.seq, p.causal), p.chunk);
    const size_t slot0 = (size_t)qb * (size_t)p.nsplit_max;

    /* causal: splits whose first key is past the row saw no key of it; they are skipped, not weighted
     * by 0 (splits cover the key tiles in order, so the row's splits are a prefix). */
    int nvis = ns;
    if (p.causal) {
        const int ntiles = att_visible_tiles(qb, bq, bk, p.seq, p.causal);
        while (nvis > 1 && (long long)((long long)(nvis - 1) * ntiles / ns) * bk > row) nvis--;
    }
    float mx = -FLT_MAX;
    for (int s = 0; s < nvis; s++) mx = fmaxf(mx, p.ws_m[(slot0 + s) * bq + rr]);
    float den = 0.0f;
    float num[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int s = 0; s < nvis; s++) {
        const size_t slot = slot0 + s;
        const float wgt = exp2f(p.ws_m[slot * bq + rr] - mx);
        den = fmaf(wgt, p.ws_l[slot * bq + rr], den);
        const float *src = p.ws_o + slot * (size_t)bq * dp + (size_t)rr * dp + c;
        if (w == 4) {
            const float4 x = *reinterpret_cast<const float4 *>(src);
            num[0] = fmaf(wgt, x.x, num[0]);
            num[1] = fmaf(wgt, x.y, num[1]);
            num[2] = fmaf(wgt, x.z, num[2]);
            num[3] = fmaf(wgt, x.w, num[3]);
        } else {
            num[0] = fmaf(wgt, src[0], num[0]);
        }
    }
    const float inv = 1.0f / den;
    float *dst = p.out + (size_t)row * p.d + c;
    if (w == 4) *reinterpret_cast<float4 *>(dst) = make_float4(num[0] * inv, num[1] * inv, num[2] * inv, num[3] * inv);
    else dst[0] = num[0] * inv;
}

/* ---------------------------------------------------------------------------------------------------
 * Configurations and the plan
 * ------------------------------------------------------------------------------------------------- */

typedef void (*att_kernel_fn)(att_params);

typedef struct att_config {
    int dp, min_seq, bq, bk, nt, st, minb;
    att_kernel_fn fn;
} att_config;

#define ATT_CFG(DP, MIN_SEQ, BQ, BK, NT, TR, VW, ST, MINB) \
    {DP, MIN_SEQ, BQ, BK, NT, ST, MINB, att_fwd<DP, BQ, BK, NT, TR, VW, ST, MINB>}

/* Per padded head_dim (ascending); for one dp, the entry with the largest min_seq <= seq wins
 * (causal: seq / 2, the average keys per row). */
static const att_config att_configs[] = {
    ATT_CFG(16, 0, 64, 64, 128, 4, 2, ATT_SMALL_ST, 4),
    ATT_CFG(32, 0, 64, 64, 128, 4, 4, ATT_SMALL_ST, 3),
    ATT_CFG(48, 0, 64, 64, 128, 4, 2, ATT_SMALL_ST, 3),
    ATT_CFG(64, 0, 64, 64, 128, 4, 4, ATT_SMALL_ST, ATT_SMALL_ST == 2 ? 2 : 3),
    ATT_CFG(64, ATT_D64_BIG_SEQ, 128, 64, 128, 8, 4, 1, 2),
    ATT_CFG(96, 0, 64, 32, 128, 4, 4, 2, 2),
    ATT_CFG(128, 0, 64, 32, 128, 4, 4, 2, 2),
    ATT_CFG(192, 0, 32, 32, 128, 4, 4, 1, 2),
    ATT_CFG(256, 0, 32, 32, 128, 4, 4, 1, 2),
};
#define ATT_NCONFIGS ((int)(sizeof(att_configs) / sizeof(att_configs[0])))

static int att_config_for(int64_t d, int64_t seq) {
    int best = -1;
    for (int i = 0; i < ATT_NCONFIGS; i++) {
        if (d > att_configs[i].dp) continue;
        if (best >= 0 && att_configs[i].dp != att_configs[best].dp) break;
        if (seq >= att_configs[i].min_seq) best = i;
    }
    return best;
}

static size_t att_smem_bytes(const att_config *c) {
    const size_t floats = (size_t)c->dp * c->bq + (size_t)c->st * c->bk * (c->dp + 4) + (size_t)c->st * c->bk * c->dp +
                          (size_t)c->bk * (c->bq + 4);
    return floats * sizeof(float);
}

typedef struct att_plan {
    int cfg;
    int nqb, chunk, nsplit_max; /* chunk 0: no split */
    size_t ws_bytes;
    int maxwork;     /* key tiles of the longest query block */
    int64_t slots;   /* blocks resident at once (0: SM count unknown) */
    int heur_chunk;  /* the cost model's split (0: none) */
} att_plan;

/* Picks the kernel and the key split; num_sms × (resident blocks per SM) slots run at once.
 * Without causal all blocks are equal: cost = (waves of blocks) × (tiles per block + 1/2 for the
 * block's fixed part), in quarter tiles. Causal (measured better than a finer load-balancing model):
 * cost = (waves) × (largest chunk), and no split costs 1.5 × the largest block (uneven finish).
 * The cheapest split factor (blocks up to two waves) wins, fewer splits on ties, and only if it
 * saves ATT_SPLIT_MIN_GAIN tiles. Returns 0 on success, -1 on arguments out of range. */
static int64_t att_plan_cost(const att_config *cfg, int s, int causal, int nqb, int64_t slots, int chunk, int maxwork) {
    if (!causal) {
        const int64_t blocks = (int64_t)nqb * att_nsplit(maxwork, chunk);
        return (blocks + slots - 1) / slots * (4 * (int64_t)chunk + 2);
    }
    if (chunk >= maxwork) return 6 * (int64_t)maxwork;
    int64_t blocks = 0;
    for (int qb = 0; qb < nqb; qb++) blocks += att_nsplit(att_visible_tiles(qb, cfg->bq, cfg->bk, s, 1), chunk);
    return (blocks + slots - 1) / slots * 4 * (int64_t)chunk;
}

/* Sets the plan's split to `chunk` key tiles per block (0, or >= maxwork: no split) and its workspace. */
static void att_set_chunk(att_plan *pl, int chunk) {
    const att_config *cfg = &att_configs[pl->cfg];
    if (chunk <= 0 || chunk >= pl->maxwork) {
        pl->chunk = 0;
        pl->nsplit_max = 1;
        pl->ws_bytes = 0;
        return;
    }
    pl->chunk = chunk;
    pl->nsplit_max = att_nsplit(pl->maxwork, chunk);
    const size_t slots_ws = (size_t)pl->nqb * (size_t)pl->nsplit_max * (size_t)cfg->bq;
    pl->ws_bytes = slots_ws * (size_t)(cfg->dp + 2) * sizeof(float);
}

static int att_make_plan(int64_t seq, int64_t d, int causal, int num_sms, att_plan *pl) {
    if (seq < 1 || seq > INT32_MAX / 2 || d < 1 || d > ATT_MAX_D) return -1;
    pl->cfg = att_config_for(d, causal ? seq / 2 : seq);
    const att_config *cfg = &att_configs[pl->cfg];
    const int s = (int)seq;
    const int nqb = (s + cfg->bq - 1) / cfg->bq;
    pl->nqb = nqb;
    pl->maxwork = att_visible_tiles(nqb - 1, cfg->bq, cfg->bk, s, causal);
    pl->slots = 0;
    pl->heur_chunk = 0;
    att_set_chunk(pl, 0);
    if (num_sms <= 0) return 0;
    if (num_sms > ATT_MAX_SMS) num_sms = ATT_MAX_SMS;

    int occ = (int)(ATT_SM_SMEM / (att_smem_bytes(cfg) + ATT_BLOCK_RESERVED));
    if (occ > cfg->minb) occ = cfg->minb;
    if (occ < 1) occ = 1;
    const int64_t slots = (int64_t)num_sms * occ;
    pl->slots = slots;
    if (nqb >= slots) return 0; /* query blocks alone fill the GPU */

    const int maxwork = pl->maxwork;
    const int64_t base_cost = att_plan_cost(cfg, s, causal, nqb, slots, maxwork, maxwork); /* no split */
    int64_t best_cost = base_cost;
    int best_chunk = 0, prev_chunk = maxwork;
    for (int ns = 2; ns <= maxwork && (int64_t)nqb * ns <= 2 * slots; ns++) {
        const int chunk = (maxwork + ns - 1) / ns;
        if (chunk == prev_chunk) continue;
        prev_chunk = chunk;
        const int64_t cost = att_plan_cost(cfg, s, causal, nqb, slots, chunk, maxwork);
        if (cost < best_cost) {
            best_cost = cost;
            best_chunk = chunk;
        }
    }
    if (best_chunk == 0 || base_cost - best_cost < 4 * ATT_SPLIT_MIN_GAIN) return 0;
    pl->heur_chunk = best_chunk;
    att_set_chunk(pl, best_chunk);
    return 0;
}

/* ---------------------------------------------------------------------------------------------------
 * Autotuning of the key split (include/lightning_core/tune.h). Shapes with ATT_TUNE_MIN_WORK <=
 * seq·seq·d (causal: half) <= ATT_TUNE_MAX_WORK whose query blocks leave the GPU room to split time up
 * to ATT_TUNE_MAX_CAND splits — none, the cost model's, half and twice its split count (or 2 and 4
 * when it picks none) — on the real operands at their first call (one warm-up, ATT_TUNE_REPS timed
 * runs, events on the stream; never while the stream is captured into a graph), run the winner last
 * and store it as mode "chunk=<key tiles per split block>" (0: no split) under
 * "attention|cuda|f32|seq=..,d=..,causal=..|sms=..|sm=<cc>". A stored chunk must be one of the
 * candidates, else the shape is tuned again. While tuning is pending, lc_cuda_attention_workspace
 * returns the largest candidate's workspace.
 * ------------------------------------------------------------------------------------------------- */

#define ATT_TUNE_MIN_WORK (16.0 * 1024.0 * 1024.0) /* 512^2 x 64 */
#define ATT_TUNE_MAX_WORK (68719476736.0)          /* 2^36 */
#define ATT_TUNE_MAX_CAND 4
#define ATT_TUNE_REPS 3

typedef struct att_choice {
    att_plan plan;                /* the plan in force: stored or cost model */
    int pending;                  /* tuning should run */
    int ncand;
    int chunks[ATT_TUNE_MAX_CAND];
    char key[LC_TUNE_KEY_MAX];
} att_choice;

/* Whether the calling thread's last successful launch split the keys (for the kernel path name). */
static thread_local int att_last_split;

static void att_add_chunk(att_choice *c, int chunk, int maxwork) {
    if (chunk >= maxwork) chunk = 0;
    for (int i = 0; i < c->ncand; i++)
        if (c->chunks[i] == chunk) return;
    if (c->ncand < ATT_TUNE_MAX_CAND) c->chunks[c->ncand++] = chunk;
}

static int att_capturing(cudaStream_t stream) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream, &cs) != cudaSuccess) {
        (void)cudaGetLastError();
        return 1; /* unknown: behave as if capturing (nothing waits) */
    }
    return cs != cudaStreamCaptureStatusNone;
}

/* The plan for this call: the stored split when there is a valid one, else the cost model's (and
 * pending = 1 when it should be tuned). Returns -1 on arguments out of range. */
static int att_choose(int64_t seq, int64_t d, int causal, int num_sms, att_choice *c) {
    if (att_make_plan(seq, d, causal, num_sms, &c->plan) != 0) return -1;
    c->pending = 0;
    c->ncand = 0;
    const att_plan *pl = &c->plan;
    const double work = (double)seq * (double)seq * (double)d * (causal ? 0.5 : 1.0);
    if (!lc_get_autotune() || work < ATT_TUNE_MIN_WORK || work > ATT_TUNE_MAX_WORK || pl->slots <= 0 ||
        pl->nqb >= pl->slots || pl->maxwork < 2)
        return 0;
    att_add_chunk(c, 0, pl->maxwork);
    att_add_chunk(c, pl->heur_chunk, pl->maxwork);
    const int ns_h = pl->heur_chunk ? att_nsplit(pl->maxwork, pl->heur_chunk) : 1;
    const int tries[4] = {ns_h / 2, ns_h * 2, 2, 4};
    for (int i = 0; i < 4; i++) {
        const int ns = tries[i];
        if (ns < 2 || ns > pl->maxwork || (int64_t)pl->nqb * ns > 4 * pl->slots) continue;
        att_add_chunk(c, (pl->maxwork + ns - 1) / ns, pl->maxwork);
    }
    if (c->ncand < 2) return 0;
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
        (void)cudaGetLastError();
    snprintf(c->key, sizeof c->key, "attention|cuda|f32|seq=%lld,d=%lld,causal=%d|sms=%d|sm=%d%d", (long long)seq,
             (long long)d, causal, num_sms, major, minor);
    char mode[LC_TUNE_MODE_MAX];
    int chunk = -1, used = 0;
    if (lc_tune_lookup(c->key, mode, sizeof mode, NULL) && sscanf(mode, "chunk=%d%n", &chunk, &used) == 1 &&
        mode[used] == '\0')
        for (int i = 0; i < c->ncand; i++)
            if (c->chunks[i] == chunk) {
                att_set_chunk(&c->plan, chunk);
                return 0;
            }
    c->pending = 1;
    return 0;
}

/* The kernel's dynamic shared-memory limit, raised once per configuration and device. */
#define ATT_MAX_DEVICES 64
static int att_smem_attr_done[ATT_MAX_DEVICES][ATT_NCONFIGS];

static cudaError_t att_prepare(int cfg_index, size_t smem) {
    if (smem <= 48 * 1024) return cudaSuccess;
    int dev = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err != cudaSuccess) return err;
    if (dev >= 0 && dev < ATT_MAX_DEVICES && att_smem_attr_done[dev][cfg_index]) return cudaSuccess;
    err = cudaFuncSetAttribute((const void *)att_configs[cfg_index].fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)smem);
    if (err == cudaSuccess && dev >= 0 && dev < ATT_MAX_DEVICES) att_smem_attr_done[dev][cfg_index] = 1; /* idempotent */
    return err;
}

extern "C" size_t lc_cuda_attention_workspace(int64_t seq, int64_t head_dim, int causal, int num_sms) {
    att_choice c;
    if (att_choose(seq, head_dim, causal != 0, num_sms, &c) != 0) return 0;
    size_t bytes = c.plan.ws_bytes;
    for (int i = 0; c.pending && i < c.ncand; i++) {
        att_plan alt = c.plan;
        att_set_chunk(&alt, c.chunks[i]);
        if (alt.ws_bytes > bytes) bytes = alt.ws_bytes;
    }
    return bytes;
}

static int att_ws_fits(const att_plan *pl, const void *workspace, size_t workspace_bytes) {
    return pl->chunk == 0 || (workspace && workspace_bytes >= pl->ws_bytes && ((uintptr_t)workspace % 16) == 0);
}

/* Enqueues the forward kernel (and the combine pass when split) of one plan. */
static cudaError_t att_enqueue(const lc_attention_args *args, const att_plan *pl, void *workspace, cudaStream_t stream) {
    const att_config *cfg = &att_configs[pl->cfg];
    att_params p;
    p.q = (const float *)args->q; /* float32 here: 16-bit calls run on a float32 image (backend_cuda.c) */
    p.k = (const float *)args->k;
    p.v = (const float *)args->v;
    p.out = (float *)args->out;
    p.seq = (int)args->seq;
    p.d = (int)args->head_dim;
    p.nqb = pl->nqb;
    p.causal = args->causal != 0;
    const uintptr_t align = (uintptr_t)args->q | (uintptr_t)args->k | (uintptr_t)args->v | (uintptr_t)args->out;
    p.vec_ok = (p.d % 4 == 0) && (align % 16 == 0);
    p.chunk = pl->chunk;
    p.nsplit_max = pl->nsplit_max;
    p.qscale = args->scale * ATT_LOG2E;
    p.ws_o = p.ws_m = p.ws_l = NULL;
    if (pl->chunk > 0) {
        const size_t nslots = (size_t)pl->nqb * (size_t)pl->nsplit_max * (size_t)cfg->bq;
        p.ws_o = (float *)workspace;
        p.ws_m = p.ws_o + nslots * (size_t)cfg->dp;
        p.ws_l = p.ws_m + nslots;
    }

    const size_t smem = att_smem_bytes(cfg);
    cudaError_t err = att_prepare(pl->cfg, smem);
    if (err != cudaSuccess) return err;
    const dim3 grid((unsigned)pl->nqb, (unsigned)pl->nsplit_max, 1);
    cfg->fn<<<grid, cfg->nt, smem, stream>>>(p);
    err = cudaGetLastError();
    if (err != cudaSuccess || pl->chunk == 0) return err;

    const int w = p.vec_ok ? 4 : 1;
    const long long work = (long long)p.seq * (p.d / w);
    const unsigned blocks = (unsigned)((work + 255) / 256);
    att_combine<<<blocks, 256, 0, stream>>>(p, cfg->bq, cfg->bk, cfg->dp);
    return cudaGetLastError();
}

/* One tuning candidate for lc_cuda_time_enqueues (cuda_graph.h): enqueue returns its cudaError_t. */
struct att_candidate {
    const lc_attention_args *args;
    const att_plan *plan;
    void *workspace;
    cudaStream_t stream;
};

static int att_enqueue_candidate(void *user) {
    const att_candidate *c = (const att_candidate *)user;
    return (int)att_enqueue(c->args, c->plan, c->workspace, c->stream);
}

/* Times the candidates (all fit the workspace) with the backend's tuner timing loop (warm-up, ATT_TUNE_REPS
 * enqueues, one counted host wait each), leaves the winner's result in out and stores it. */
static cudaError_t att_tune(const lc_attention_args *args, att_choice *c, void *workspace, size_t workspace_bytes,
                            cudaStream_t stream) {
    cudaError_t err = cudaSuccess;
    int best = -1, last = -1;
    double best_ms = INFINITY;
    att_plan plans[ATT_TUNE_MAX_CAND];
    for (int i = 0; i < c->ncand && err == cudaSuccess; i++) {
        plans[i] = c->plan;
        att_set_chunk(&plans[i], c->chunks[i]);
        att_candidate cand = {args, &plans[i], workspace, stream};
        double t = INFINITY;
        int enqueue_err = 0;
        if (lc_cuda_time_enqueues(ATT_TUNE_REPS, att_enqueue_candidate, &cand, &t, &enqueue_err) != LC_OK)
            err = cudaErrorUnknown; /* the timer's events or wait failed (its lc_error text names the call) */
        else if (enqueue_err)
            err = (cudaError_t)enqueue_err;
        if (err != cudaSuccess) break;
        last = i;
        if (t < best_ms) {
            best_ms = t;
            best = i;
        }
    }
    if (err != cudaSuccess) return err;
    if (best < 0) return cudaErrorInvalidValue; /* no candidates: cannot happen (att_choose gives >= 2) */
    if (last != best) err = att_enqueue(args, &plans[best], workspace, stream);
    if (err == cudaSuccess) {
        att_last_split = plans[best].chunk > 0;
        char mode[LC_TUNE_MODE_MAX];
        snprintf(mode, sizeof mode, "chunk=%d", plans[best].chunk);
        (void)lc_tune_store(c->key, mode, best_ms);
    }
    return err;
}

extern "C" int lc_cuda_attention_last_split(void) { return att_last_split; }

static cudaError_t att_launch(const lc_attention_args *args, void *workspace, size_t workspace_bytes, int num_sms,
                              cudaStream_t stream);

extern "C" cudaError_t lc_cuda_launch_attention(const lc_attention_args *args, void *workspace, size_t workspace_bytes,
                                                int num_sms, cudaStream_t stream) {
    att_last_split = 0;
    return att_launch(args, workspace, workspace_bytes, num_sms, stream);
}

static cudaError_t att_launch(const lc_attention_args *args, void *workspace, size_t workspace_bytes, int num_sms,
                              cudaStream_t stream) {
    if (!args || args->head_dim < 1 || args->head_dim > ATT_MAX_D) return cudaErrorInvalidValue;
    if (args->seq <= 0) return cudaSuccess; /* nothing to write */
    if (!args->q || !args->k || !args->v || !args->out || args->dtype != LC_DTYPE_F32) return cudaErrorInvalidValue;
    att_choice c;
    if (att_choose(args->seq, args->head_dim, args->causal != 0, num_sms, &c) != 0) return cudaErrorInvalidValue;
    if (c.pending && !att_capturing(stream)) {
        int all_fit = 1; /* a workspace sized before a reset may not take every candidate: tune later */
        for (int i = 0; i < c.ncand; i++) {
            att_plan alt = c.plan;
            att_set_chunk(&alt, c.chunks[i]);
            all_fit &= att_ws_fits(&alt, workspace, workspace_bytes);
        }
        if (all_fit) return att_tune(args, &c, workspace, workspace_bytes, stream);
    }
    if (!att_ws_fits(&c.plan, workspace, workspace_bytes)) {
        /* The workspace was sized for another choice (a tuning or reset in between, or a caller's
         * mistake): the cost model's split if it fits, else none — both correct, neither needs more. */
        att_set_chunk(&c.plan, c.plan.heur_chunk);
        if (!att_ws_fits(&c.plan, workspace, workspace_bytes)) att_set_chunk(&c.plan, 0);
    }
    const cudaError_t err = att_enqueue(args, &c.plan, workspace, stream);
    if (err == cudaSuccess) att_last_split = c.plan.chunk > 0;
    return err;
}
