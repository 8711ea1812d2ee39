/* sdpa_cuda.cu — CUDA scaled-dot-product attention for every case of lc_sdpa_args (src/core/backend.h):
 * batched multi-head q [B,H,Sq,D], k/v [B,Hkv,Skv,D] with any strides, GQA (query head h reads kv head
 * h / (H/Hkv)), causal aligned to the end of the valid keys, key_lengths (int32/int64, clamped), ADD masks
 * (float32 or the operands' dtype) and BOOL masks read through their strides, head_dim 1..256, float32 /
 * float16 / bfloat16 storage with float32 scores, softmax and accumulation, optional lse.
 *
 * Paths (the launcher picks from the shapes and num_sms only, never from device data):
 *  - sd_fwd (this file): flash-style, one block per (query tile, b, h, key split). The seed's float32 attention
 *    kernel generalised (attention_forward runs here now): qᵀ [DP][BQ] (pre-scaled by scale·log2 e) and K/V
 *    tiles of BK keys in shared memory as float (float32 with 16-byte aligned rows: cp.async; 16-bit: 16-byte
 *    loads converted in registers; anything else: element loads through the strides), register tiles of TR rows
 *    × BK/NCG score columns and TR rows × DP/NCG output columns, online softmax in log2 units. DP = head_dim
 *    rounded up to 32/64/128/256; (BQ×BK, TR, stages): 32, 64: 64×64, 4, 2; 128: 64×32, 4, 2;
 *    256: 32×32, 4, 1; float32 head_dim 49..64 without a mask, sq >= 1024 and >= 4096 keys a row
 *    (causal: on average): 128×64, 8, 1. Causal: tiles past the block's last visible key are skipped, keys past a row are
 *    -inf and the p·v loop stops at each row's last key (hidden v rows are never read, so a NaN there
 *    cannot reach the row). Keys >= L_b are never loaded. A sliding window (p.window) is the mirror image: tiles
 *    left of the block's first visible key are skipped, keys left of a row's window are -inf and the p·v loop
 *    starts at each row's first key. With a mask, p·v skips p == 0 (a key hidden by
 *    the mask may hold NaN in v). Rows with no visible key: zeros (NaN with plain_nonfinite), lse -inf.
 *    plain_nonfinite (attention_forward) runs every sq here, never the decode kernels (they skip p == 0
 *    under causal, where a NaN v behind a visible zero weight must still reach the row).
 *  - split (this file): when the (tile, b, h) blocks don't fill the GPU, the key tiles are cut into nsplit
 *    chunks, each block writes its unnormalised partial (m, l, acc) to the workspace and sd_combine merges
 *    them: out = Σ 2^(m_s-M) acc_s / Σ 2^(m_s-M) l_s (a split that saw nothing has l = 0, m = -FLT_MAX).
 *  - decode: sq <= 16, one block per (b, kv head, group of rows, key chunk) that serves all query heads of
 *    the GQA group, so k/v are read once; split over keys. float16/bfloat16 with 16-byte k/v rows (d-stride
 *    1, head_dim % 8 == 0, aligned): the tensor-core kernel (sdpa_decode_mma_cuda.cu; splits sized to fill
 *    ~2 blocks per SM, partials merged by the last block of a group unless LC_SDPA_DECODE_FOLD=0, then
 *    sd_combine); every other decode shape, or LC_SDPA_DECODE=simt: the SIMT kernel (sdpa_decode_cuda.cu)
 *    + sd_combine. The workspace query covers both plans (it does not see the pointers' alignment).
 *
 * Tests: tests/c/test_sdpa_cuda.c (float64 reference; GPU machine only).
 */
#include <cuda_runtime.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/sdpa_cuda.cuh"
#include "backend/cuda/pdl.cuh"

#define SD_MAX_D 256
#define SD_SM_SMEM (228 * 1024) /* shared memory per SM (sm_90), for the occupancy estimate */
#define SD_BLOCK_RESERVED 1024
#define SD_MAX_DEVICES 64
#define SD_MAX_SPLIT 64       /* generic path */
#define SD_DEC_MAX_SPLIT 256  /* decode path */
#define SD_DEC_MIN_CHUNK 64   /* decode: fewest keys per split */
#define SD_DEC_MAX_SQ 16

/* ---------------------------------------------------------------------------------------------------
 * Generic forward kernel. T: storage type; DP: padded head_dim; BQ query rows per block; BK keys per
 * tile; NT threads; TR rows per thread; ST: K/V stages (1 or 2); MINB: blocks per SM.
 * Block index: ((qbi · B·H) + b·H + h) · nsplit + split (causal: qb = nqb-1-qbi, long rows first).
 * ------------------------------------------------------------------------------------------------- */

template <typename T, int DP, int BQ, int BK, int NT, int TR, int ST, int MINB, bool MASKS>
__global__ void __launch_bounds__(NT, MINB) sd_fwd(const sd_params p) {
    typedef SdVec<T> SV;
    constexpr int VW = 4;
    constexpr int NRG = BQ / TR;
    constexpr int NCG = NT / NRG;
    constexpr int TC = BK / NCG;
    constexpr int NVO = DP / (NCG * VW);
    constexpr int TO = NVO * VW;
    constexpr int KS = DP + 4;
    constexpr int PS = BQ + 4;
    constexpr int C4 = DP / 4;
    constexpr int CN = DP / SV::N; /* 16-byte chunks per row */
    static_assert(NRG * NCG == NT && NCG <= 32 && (NCG & (NCG - 1)) == 0, "thread layout");
    static_assert(TC * NCG == BK && NVO * NCG * VW == DP, "tile layout");
    static_assert((TR == 4 || TR == 8) && NCG >= 2 && NCG <= 16, "thread layout");
    static_assert(DP % 8 == 0, "DP");
    constexpr int RH = TR / 4;

    extern __shared__ float4 sd_smem4[];
    float *const Qt = reinterpret_cast<float *>(sd_smem4); /* [DP][BQ] */
    float *const Ks = Qt + DP * BQ;                        /* [ST][BK][KS] */
    float *const Vs = Ks + ST * BK * KS;                   /* [ST][BK][DP] */
    float *const Pt = Vs + ST * BK * DP;                   /* [BK][PS] */

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int cg = (lane >> 1) & (NCG - 1);
    const int rg = (tid >> 5) * (32 / NCG) + (((lane >> 1) / NCG) << 1) + (lane & 1);

    /* block -> (query tile, b, h, split) */
    const long long bid = blockIdx.x;
    const int split = (int)(bid % p.nsplit);
    const long long rest = bid / p.nsplit;
    const int bh = (int)(rest % ((long long)p.batch * p.heads));
    const int qbi = (int)(rest / ((long long)p.batch * p.heads));
    const int b = bh / p.heads, h = bh % p.heads;
    const int kvh = h / p.group;
    const int qb = p.causal ? p.nqb - 1 - qbi : qbi;
    const int q0 = qb * BQ;
    const int sq = p.sq, d = p.d;

    const int L = sd_key_len(p, b);
    const int off = L - sq; /* causal: row i sees keys j <= i + off */
    const int window = MASKS ? p.window : 0; /* !MASKS (config 4): never given a window (sd_cfg_index) */
    int kend = L;           /* keys any row of the block sees are < kend */
    if (p.causal) kend = min(L, max(0, min(q0 + BQ, sq) - 1 + off + 1));
    /* window: keys any row of the block sees are >= kbeg (the first row's first key) */
    const int kbeg = window ? max(0, q0 + off - window + 1) : 0;
    const int ntiles = (kend + BK - 1) / BK;
    const int t0 = min(kbeg / BK, ntiles);
    int t_begin = t0, t_end = ntiles;
    if (p.nsplit > 1) { /* the splits cut [t0, ntiles): the plan's chunk covers the largest such range */
        t_begin = min(t0 + split * p.chunk, ntiles);
        t_end = min(t_begin + p.chunk, ntiles);
    }

    const T *qbase = static_cast<const T *>(p.q) + (long long)b * p.q_st[0] + (long long)h * p.q_st[1];
    const T *kbase = static_cast<const T *>(p.k) + (long long)b * p.k_st[0] + (long long)kvh * p.k_st[1];
    const T *vbase = static_cast<const T *>(p.v) + (long long)b * p.v_st[0] + (long long)kvh * p.v_st[1];

    /* K or V tile t ([BK][stride] floats at dst) as one cp.async group; keys >= kend and columns >= d
     * are zero. */
    auto load_tile = [&](const T *base, long long st2, long long st3, int vec, float *dst, int stride, int t) {
        const int j0 = t * BK;
        if (vec) {
            for (int idx = tid; idx < BK * CN; idx += NT) {
                const int r = idx / CN, c = (idx % CN) * SV::N;
                const int key = j0 + r;
                const bool ok = key < kend && c < d;
                const T *src = base + (ok ? (long long)key * st2 + c : 0);
                if constexpr (sizeof(T) == 4) {
                    sd_cp_async16(dst + r * stride + c, src, ok ? 16 : 0);
                } else {
                    float f[8];
                    SV::to_f(ok ? SV::ld16(src) : SV::zero(), f);
                    *reinterpret_cast<float4 *>(dst + r * stride + c) = make_float4(f[0], f[1], f[2], f[3]);
                    *reinterpret_cast<float4 *>(dst + r * stride + c + 4) = make_float4(f[4], f[5], f[6], f[7]);
                }
            }
        } else {
            for (int idx = tid; idx < BK * DP; idx += NT) {
                const int r = idx / DP, c = idx % DP;
                const int key = j0 + r;
                dst[r * stride + c] = (key < kend && c < d) ? SV::ld1(base + (long long)key * st2 + (long long)c * st3) : 0.0f;
            }
        }
        sd_cp_async_commit();
    };
    auto load_k = [&](int t, int s) { load_tile(kbase, p.k_st[2], p.k_st[3], p.vec_k, Ks + s * BK * KS, KS, t); };
    auto load_v = [&](int t, int s) { load_tile(vbase, p.v_st[2], p.v_st[3], p.vec_v, Vs + s * BK * DP, DP, t); };

    if (t_begin < t_end) {
        load_k(t_begin, 0);
        load_v(t_begin, 0);
    }

    /* qᵀ scaled by scale·log2(e); rows >= sq and columns >= d are zero. */
    {
        const float qs = p.qscale;
        if (p.vec_q) {
            for (int idx = tid; idx < BQ * CN; idx += NT) {
                const int r = idx % BQ, c = (idx / BQ) * SV::N;
                const int row = q0 + r;
                float f[SV::N];
                SV::to_f((row < sq && c < d) ? SV::ld16(qbase + (long long)row * p.q_st[2] + c) : SV::zero(), f);
#pragma unroll
                for (int e = 0; e < SV::N; e++) Qt[(c + e) * BQ + r] = f[e] * qs;
            }
        } else {
            for (int idx = tid; idx < BQ * DP; idx += NT) {
                const int r = idx % BQ, c = idx / BQ;
                const int row = q0 + r;
                Qt[c * BQ + r] = (row < sq && c < d)
                                     ? SV::ld1(qbase + (long long)row * p.q_st[2] + (long long)c * p.q_st[3]) * qs
                                     : 0.0f;
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
    const bool masked = MASKS && p.mask_kind != LC_SDPA_MASK_NONE; /* !MASKS: only called without a mask */

    for (int t = t_begin; t < t_end; t++) {
        const int s = ST == 2 ? ((t - t_begin) & 1) : 0;
        if (ST == 2) sd_cp_async_wait_all();
        else sd_cp_async_wait_1();
        __syncthreads();
        if (ST == 2 && t + 1 < t_end) {
            load_k(t + 1, s ^ 1);
            load_v(t + 1, s ^ 1);
        }
        const float *ks = Ks + s * BK * KS;
        const float *vs = Vs + s * BK * DP;
        const int j0 = t * BK;

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
                for (int hh = 0; hh < RH; hh++) {
                    const float4 x = *reinterpret_cast<const float4 *>(Qt + (d4 * 4 + e) * BQ + rg * TR + hh * 4);
                    qv[e][hh * 4 + 0] = x.x;
                    qv[e][hh * 4 + 1] = x.y;
                    qv[e][hh * 4 + 2] = x.z;
                    qv[e][hh * 4 + 3] = x.w;
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

        /* visibility: keys >= L, causal keys past the row, keys left of the row's window, the mask */
        if (masked || j0 + BK > L || (p.causal && j0 + BK - 1 > q0 + off) || (window && j0 <= q0 + BQ - 1 + off - window)) {
#pragma unroll
            for (int r = 0; r < TR; r++) {
                const int row = q0 + rg * TR + r;
#pragma unroll
                for (int i = 0; i < TC; i++) {
                    const int key = j0 + i * NCG + cg;
                    const bool vis = key < L && row < sq && (!p.causal || key <= row + off) &&
                                     (!window || key > row + off - window);
                    if (!vis) sc[r][i] = -INFINITY;
                    else if (masked) sc[r][i] = sd_apply_mask(p, b, h, row, key, sc[r][i]);
                }
            }
        }

        /* online softmax; p to shared memory (transposed) */
#pragma unroll
        for (int r = 0; r < TR; r++) {
            float mx = sc[r][0];
#pragma unroll
            for (int i = 1; i < TC; i++) mx = fmaxf(mx, sc[r][i]);
#pragma unroll
            for (int o2 = NCG / 2; o2 >= 1; o2 >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o2 << 1));
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
            l[r] = fmaf(l[r], alpha, sum);
#pragma unroll
            for (int c = 0; c < TO; c++) o[r][c] *= alpha;
        }
#pragma unroll
        for (int i = 0; i < TC; i++)
#pragma unroll
            for (int hh = 0; hh < RH; hh++)
                *reinterpret_cast<float4 *>(Pt + (i * NCG + cg) * PS + rg * TR + hh * 4) =
                    make_float4(sc[hh * 4][i], sc[hh * 4 + 1][i], sc[hh * 4 + 2][i], sc[hh * 4 + 3][i]);
        if (ST == 1) sd_cp_async_wait_all();
        __syncthreads();
        if (ST == 1 && t + 1 < t_end) load_k(t + 1, 0);

        /* o += p · v over the keys each row may see: keys >= kend, (causal) past the row and (window) left of
         * the row's window are never read; with a mask, keys with p == 0 are skipped (a masked-out v row may
         * hold NaN). Rows rmin..rmax of the thread take part in step j. */
        const int jn = min(BK, kend - j0);
        const int last0 = p.causal ? q0 + rg * TR + off - j0 : BK; /* the thread's first row sees j <= last0 */
        const int jall = min(jn, max(0, last0 + 1));
        auto pv_step = [&](auto guard, int j, int rmin, int rmax) {
            float pr[TR];
#pragma unroll
            for (int hh = 0; hh < RH; hh++) {
                const float4 x = *reinterpret_cast<const float4 *>(Pt + j * PS + rg * TR + hh * 4);
                pr[hh * 4 + 0] = x.x;
                pr[hh * 4 + 1] = x.y;
                pr[hh * 4 + 2] = x.z;
                pr[hh * 4 + 3] = x.w;
            }
#pragma unroll
            for (int u = 0; u < NVO; u++) {
                const float4 x = *reinterpret_cast<const float4 *>(vs + j * DP + u * NCG * VW + cg * VW);
                const float vv[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
                for (int r = 0; r < TR; r++) {
                    if (r < rmin || r > rmax) continue;
#pragma unroll
                    for (int e = 0; e < VW; e++) {
                        if constexpr (decltype(guard)::value)
                            o[r][u * VW + e] = pr[r] != 0.0f ? fmaf(pr[r], vv[e], o[r][u * VW + e]) : o[r][u * VW + e];
                        else
                            o[r][u * VW + e] = fmaf(pr[r], vv[e], o[r][u * VW + e]);
                    }
                }
            }
        };
        if (window) {
            /* row r of the thread sees tile keys first0 + r <= j <= last0 + r: [jlo, jmid) reaches left of some
             * row's window, [jmid, jall) is seen by all rows, then the causal tail */
            const int first0 = q0 + rg * TR + off - window + 1 - j0;
            const int jlo = max(0, first0), jmid = min(jn, max(jlo, first0 + TR - 1));
            auto pv_win = [&](auto guard) {
#pragma unroll 1
                for (int j = jlo; j < jmid; j++) pv_step(guard, j, j - last0, j - first0);
#pragma unroll 4
                for (int j = jmid; j < jall; j++) pv_step(guard, j, 0, TR);
#pragma unroll 1
                for (int j = max(jmid, jall); j < min(jn, last0 + TR); j++) pv_step(guard, j, j - last0, TR);
            };
            if (masked) pv_win(std::true_type());
            else pv_win(std::false_type());
        } else if (masked) {
#pragma unroll 4
            for (int j = 0; j < jall; j++) pv_step(std::true_type(), j, 0, TR);
#pragma unroll 1
            for (int j = jall; j < min(jn, last0 + TR); j++) pv_step(std::true_type(), j, j - last0, TR);
        } else {
#pragma unroll(BK <= 64 ? 16 : 8)
            for (int j = 0; j < jall; j++) pv_step(std::false_type(), j, 0, TR);
#pragma unroll 1
            for (int j = jall; j < min(jn, last0 + TR); j++) pv_step(std::false_type(), j, j - last0, TR);
        }

        if (ST == 1 && t + 1 < t_end) {
            __syncthreads();
            load_v(t + 1, 0);
        }
    }

#pragma unroll
    for (int r = 0; r < TR; r++)
#pragma unroll
        for (int o2 = NCG / 2; o2 >= 1; o2 >>= 1) l[r] += __shfl_xor_sync(0xffffffffu, l[r], o2 << 1);

#pragma unroll
    for (int r = 0; r < TR; r++) {
        const int row = q0 + rg * TR + r;
        if (row >= sq) continue;
        const long long rowid = (long long)bh * sq + row;
        if (p.nsplit == 1) {
            const bool empty = l[r] == 0.0f;
            const float inv = empty ? 0.0f : 1.0f / l[r];
            T *dst = static_cast<T *>(p.out) + (long long)b * p.o_st[0] + (long long)h * p.o_st[1] + (long long)row * p.o_st[2];
#pragma unroll
            for (int u = 0; u < NVO; u++) {
                const int c = u * NCG * VW + cg * VW;
#pragma unroll
                for (int e = 0; e < VW; e++)
                    if (c + e < d) dst[(long long)(c + e) * p.o_st[3]] = SV::st1(empty ? sd_empty(p) : o[r][u * VW + e] * inv);
            }
            if (cg == 0 && p.lse) p.lse[rowid] = sd_lse(m[r], l[r]);
        } else {
            const long long slot = rowid * p.nsplit + split;
            float *dst = p.ws_o + slot * p.ws_ld;
#pragma unroll
            for (int u = 0; u < NVO; u++) {
                const int c = u * NCG * VW + cg * VW;
#pragma unroll
                for (int e = 0; e < VW; e++)
                    if (c + e < d) dst[c + e] = o[r][u * VW + e];
            }
            if (cg == 0) {
                p.ws_ml[2 * slot] = m[r];
                p.ws_ml[2 * slot + 1] = l[r];
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------------
 * Combine pass: one thread per (query row (b, h, i), column c < d) over the nsplit partials.
 * ------------------------------------------------------------------------------------------------- */

template <typename T>
__global__ void __launch_bounds__(256) sd_combine(const sd_params p) {
    lc_pdl_entry(); /* pdl.cuh */
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long rows = (long long)p.batch * p.heads * p.sq;
    if (idx >= rows * p.d) return;
    const long long row = idx / p.d;
    const int c = (int)(idx % p.d);
    const long long slot0 = row * p.nsplit;
    float mx = -FLT_MAX;
    for (int s = 0; s < p.nsplit; s++) mx = fmaxf(mx, p.ws_ml[2 * (slot0 + s)]);
    float den = 0.0f, num = 0.0f;
    for (int s = 0; s < p.nsplit; s++) {
        const float w = exp2f(p.ws_ml[2 * (slot0 + s)] - mx);
        den = fmaf(w, p.ws_ml[2 * (slot0 + s) + 1], den);
        num = fmaf(w, p.ws_o[(slot0 + s) * p.ws_ld + c], num);
    }
    const int i = (int)(row % p.sq);
    const long long bh = row / p.sq;
    const int h = (int)(bh % p.heads), b = (int)(bh / p.heads);
    sd_store<T>(p, b, h, i, c, num, mx, den);
}

cudaError_t sd_launch_combine(lc_dtype dtype, const sd_params &p, cudaStream_t stream) {
    const long long work = (long long)p.batch * p.heads * p.sq * p.d;
    if (work <= 0) return cudaSuccess;
    const unsigned blocks = (unsigned)((work + 255) / 256);
    if (dtype == LC_DTYPE_F32) (void)lc_pdl_launch(sd_combine<float>, blocks, 256, 0, stream, p);
    else if (dtype == LC_DTYPE_F16) (void)lc_pdl_launch(sd_combine<__half>, blocks, 256, 0, stream, p);
    else (void)lc_pdl_launch(sd_combine<__nv_bfloat16>, blocks, 256, 0, stream, p);
    return cudaGetLastError();
}

/* ---------------------------------------------------------------------------------------------------
 * Configurations, the plan and the launcher
 * ------------------------------------------------------------------------------------------------- */

typedef void (*sd_kernel_fn)(sd_params);

typedef struct sd_config {
    int dp, bq, bk, nt, st, minb;
    sd_kernel_fn fn;
} sd_config;

/* Per dtype: DP 32, 64, 128, 256, and (float32 only; the 16-bit entry repeats DP 64) DP 64 with 8 rows per
 * thread (BQ 128, one stage) for long unmasked float32 rows (the seed attention kernel's measured choice: 4096 keys
 * a row, causal on average; compiled without the mask code, which would make it spill). */
#define SD_NCFG 5
#define SD_CFG(T, DP, BQ, BK, TR, ST, MINB, MASKS) {DP, BQ, BK, 128, ST, MINB, sd_fwd<T, DP, BQ, BK, 128, TR, ST, MINB, MASKS>}
#define SD_CFGS(T, BIG64)                                                                                             \
    {SD_CFG(T, 32, 64, 64, 4, 2, 2, true), SD_CFG(T, 64, 64, 64, 4, 2, 2, true),                                     \
     SD_CFG(T, 128, 64, 32, 4, 2, 2, true), SD_CFG(T, 256, 32, 32, 4, 1, 2, true), BIG64}
#define SD_BIG64_MIN_KEYS 4096

static const sd_config sd_configs[3][SD_NCFG] = {SD_CFGS(float, SD_CFG(float, 64, 128, 64, 8, 1, 2, false)),
                                                 SD_CFGS(__half, SD_CFG(__half, 64, 64, 64, 4, 2, 2, true)),
                                                 SD_CFGS(__nv_bfloat16, SD_CFG(__nv_bfloat16, 64, 64, 64, 4, 2, 2, true))};

static int sd_dtype_index(lc_dtype dt) { return dt == LC_DTYPE_F32 ? 0 : dt == LC_DTYPE_F16 ? 1 : 2; }
/* The configuration of a generic-path call. */
static int sd_cfg_index(const lc_sdpa_args *a) {
    const int64_t d = a->head_dim;
    if (d <= 32) return 0;
    if (d <= 64) {
        const int64_t keys = a->causal ? a->skv / 2 : a->skv;
        return a->dtype == LC_DTYPE_F32 && d > 48 && keys >= SD_BIG64_MIN_KEYS && a->sq >= 1024 &&
                       a->mask_kind == LC_SDPA_MASK_NONE && a->window == 0
                   ? 4
                   : 1;
    }
    return d <= 128 ? 2 : 3;
}

static size_t sd_smem_bytes(const sd_config *c) {
    const size_t floats = (size_t)c->dp * c->bq + (size_t)c->st * c->bk * (c->dp + 4) + (size_t)c->st * c->bk * c->dp +
                          (size_t)c->bk * (c->bq + 4);
    return floats * sizeof(float);
}

enum { SD_PATH_FLASH = 0, SD_PATH_DECODE = 1 };

typedef struct sd_plan {
    int path;
    int mma;           /* decode: the tensor-core kernel (rows per block 16) */
    int dp, rt;        /* decode: padded head_dim and rows per block */
    int nqb, nrg;      /* generic query tiles / decode row groups */
    int nsplit, chunk; /* nsplit 1: no split */
    int ws_ld;
    long long base_blocks; /* blocks without the split */
    size_t ws_bytes;
} sd_plan;

static int sd_args_ok(const lc_sdpa_args *a) {
    if (!a) return 0;
    if (a->dtype != LC_DTYPE_F32 && a->dtype != LC_DTYPE_F16 && a->dtype != LC_DTYPE_BF16) return 0;
    if (a->batch < 0 || a->heads < 0 || a->kv_heads < 0 || a->sq < 0 || a->skv < 0) return 0;
    if (a->head_dim < 1 || a->head_dim > SD_MAX_D) return 0;
    if (a->batch > INT32_MAX || a->heads > INT32_MAX || a->sq > INT32_MAX / 2 || a->skv > INT32_MAX / 2) return 0;
    if (a->heads > 0 && (a->kv_heads < 1 || a->heads % a->kv_heads != 0)) return 0;
    if (a->mask_kind != LC_SDPA_MASK_NONE && a->mask_kind != LC_SDPA_MASK_ADD && a->mask_kind != LC_SDPA_MASK_BOOL) return 0;
    if (a->mask_kind == LC_SDPA_MASK_ADD && a->mask_dtype != LC_DTYPE_F32 && a->mask_dtype != a->dtype) return 0;
    if (a->mask_kind != LC_SDPA_MASK_NONE && !a->mask) return 0;
    if (a->key_lengths && a->key_lengths_dtype != LC_DTYPE_I32 && a->key_lengths_dtype != LC_DTYPE_I64) return 0;
    if (a->window < 0 || a->window > INT32_MAX / 2) return 0;
    for (int i = 0; i < 4; i++)
        if (a->q_st[i] < 0 || a->k_st[i] < 0 || a->v_st[i] < 0 || a->o_st[i] < 0 || a->m_st[i] < 0) return 0;
    return 1;
}

static int64_t sd_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The most keys one block's rows see together (the span its splits cut): skv, or with causal and a window
 * window + rows - 1 (rows: the block's query rows; a window without causal bounds the left side only). */
static int64_t sd_key_span(const lc_sdpa_args *a, int64_t rows) {
    if (a->window <= 0 || !a->causal) return a->skv;
    const int64_t span = a->window + rows - 1;
    return span < a->skv ? span : a->skv;
}

/* LC_SDPA_DECODE_MINTILES=N (1..64): every split of the tensor-core decode takes at least N key tiles (default
 * 1; A/B runs of fewer, longer splits, whose blocks overlap a tile's load with the previous tile's math; read
 * at each call). */
static int64_t sd_dec_min_tiles(void) {
    const char *e = getenv("LC_SDPA_DECODE_MINTILES");
    const long v = e ? strtol(e, NULL, 10) : 1;
    return v < 1 ? 1 : v > 64 ? 64 : v;
}

/* The tensor-core decode's split: the fewest splits (chunks of whole 64-key tiles, at least
 * sd_dec_min_tiles() each) whose blocks fill the resident slots (num_sms × min(occupancy, 2)) within 85% of
 * the best fill; none when the (b, kv head, row group) blocks alone nearly fill them. Sets pl->nsplit,
 * pl->chunk. */
static void sd_plan_mma_split(int64_t skv, int num_sms, sd_plan *pl) {
    const int64_t ntiles = sd_cdiv(skv, SD_DEC_MMA_BK), min_tiles = sd_dec_min_tiles();
    int occ = sd_decode_mma_occupancy(pl->dp);
    if (occ > 2) occ = 2;
    const int64_t slots = (int64_t)num_sms * occ, base = pl->base_blocks;
    if (num_sms <= 0 || base <= 0 || ntiles <= 1 || base * 10 >= slots * 9) return;
    double eff[SD_DEC_MAX_SPLIT + 1];
    double best = 0.0;
    for (int64_t ns = 1; ns <= SD_DEC_MAX_SPLIT; ns++) {
        eff[ns] = 0.0;
        if (ns > ntiles || sd_cdiv(ntiles, sd_cdiv(ntiles, ns)) != ns) continue; /* not a count whole chunks give */
        if (ns > 1 && sd_cdiv(ntiles, ns) < min_tiles) continue;
        const int64_t blocks = base * ns;
        eff[ns] = (double)blocks / (double)(sd_cdiv(blocks, slots) * slots);
        if (eff[ns] > best) best = eff[ns];
    }
    for (int64_t ns = 1; ns <= SD_DEC_MAX_SPLIT; ns++)
        if (eff[ns] > 0.0 && eff[ns] >= 0.85 * best) {
            if (ns > 1) {
                pl->chunk = (int)(sd_cdiv(ntiles, ns) * SD_DEC_MMA_BK);
                pl->nsplit = (int)ns;
            }
            return;
        }
}

/* LC_SDPA_DECODE_DIRECT=N (0..64): with the fold or the cluster merge, a tensor-core decode group whose visible keys
 * span at most N tiles of 64 is done by one block, no merge (sd_params.direct_keys; default SD_DEC_DIRECT_TILES;
 * read at each call, for A/B runs). */
#define SD_DEC_DIRECT_TILES 2
static int sd_dec_direct_keys(void) {
    const char *e = getenv("LC_SDPA_DECODE_DIRECT");
    const long v = e ? strtol(e, NULL, 10) : SD_DEC_DIRECT_TILES;
    return (int)((v < 0 ? 0 : v > 64 ? 64 : v) * SD_DEC_MMA_BK);
}

/* LC_SDPA_DECODE=simt: the SIMT decode kernel for every decode shape; LC_SDPA_DECODE_FOLD=0: the
 * tensor-core decode leaves its split partials to sd_combine (both for A/B runs; read at each call). */
static int sd_env_is(const char *name, const char *value) {
    const char *e = getenv(name);
    return e && strcmp(e, value) == 0;
}

/* Whether the tensor-core decode takes the shapes (pointers not looked at: sd_dec_mma_ptrs_ok). */
static int sd_dec_mma_shapes_ok(const lc_sdpa_args *a) {
    if (a->dtype != LC_DTYPE_F16 && a->dtype != LC_DTYPE_BF16) return 0;
    if (a->head_dim % 8 != 0 || a->k_st[3] != 1 || a->v_st[3] != 1) return 0;
    for (int i = 0; i < 3; i++)
        if ((a->k_st[i] * 2) % 16 != 0 || (a->v_st[i] * 2) % 16 != 0) return 0;
    return !sd_env_is("LC_SDPA_DECODE", "simt");
}
static int sd_dec_mma_ptrs_ok(const lc_sdpa_args *a) {
    return ((uintptr_t)a->k % 16) == 0 && ((uintptr_t)a->v % 16) == 0;
}

/* The plan from the shapes and num_sms only (mma: the decode path takes the tensor-core kernel, which the
 * caller has checked it may). Returns 0, or -1 on arguments out of range. */
static int sd_make_plan(const lc_sdpa_args *a, int num_sms, int mma, sd_plan *pl) {
    if (!sd_args_ok(a)) return -1;
    pl->mma = 0;
    const int64_t d = a->head_dim;
    pl->nsplit = 1;
    pl->chunk = 0;
    pl->ws_ld = (int)((d + 3) / 4 * 4);
    pl->ws_bytes = 0;
    pl->nqb = pl->nrg = 0;
    pl->dp = d <= 32 ? 32 : d <= 64 ? 64 : d <= 128 ? 128 : 256;
    pl->rt = 0;
    const int64_t rows = a->batch * a->heads * a->sq;
    if (num_sms > 4096) num_sms = 4096;
    if (a->sq <= SD_DEC_MAX_SQ && !a->plain_nonfinite) { /* plain_nonfinite: the generic kernel, which never skips */
        pl->path = SD_PATH_DECODE;
        const int64_t R = (a->heads > 0 ? a->heads / a->kv_heads : 0) * a->sq; /* rows per (b, kv head) */
        if (mma) {
            pl->mma = 1;
            pl->rt = 16;
            pl->nrg = (int)sd_cdiv(R, 16);
            pl->base_blocks = a->batch * a->kv_heads * pl->nrg;
            sd_plan_mma_split(sd_key_span(a, a->sq), num_sms, pl);
        } else {
            pl->rt = R <= 4 ? 4 : 8;
            pl->nrg = (int)sd_cdiv(R, pl->rt);
            pl->base_blocks = a->batch * a->kv_heads * pl->nrg;
            const int64_t span = sd_key_span(a, a->sq);
            if (num_sms > 0 && pl->base_blocks > 0 && span > SD_DEC_MIN_CHUNK) {
                int64_t ns = sd_cdiv(4 * (int64_t)num_sms, pl->base_blocks);
                const int64_t ns_max = sd_cdiv(span, SD_DEC_MIN_CHUNK);
                if (ns > ns_max) ns = ns_max;
                if (ns > SD_DEC_MAX_SPLIT) ns = SD_DEC_MAX_SPLIT;
                if (ns > 1) {
                    const int64_t chunk = sd_cdiv(sd_cdiv(span, ns), 32) * 32;
                    pl->chunk = (int)chunk;
                    pl->nsplit = (int)sd_cdiv(span, chunk);
                }
            }
        }
    } else {
        pl->path = SD_PATH_FLASH;
        const sd_config *cfg = &sd_configs[sd_dtype_index(a->dtype)][sd_cfg_index(a)];
        pl->nqb = (int)sd_cdiv(a->sq, cfg->bq);
        pl->base_blocks = a->batch * a->heads * pl->nqb;
        /* key tiles of one block: with causal and a window, those from its first row's first key (unaligned:
         * one more) to its last row's last key */
        int64_t maxwork = sd_cdiv(a->skv, cfg->bk);
        if (a->window > 0 && a->causal && sd_cdiv(sd_key_span(a, cfg->bq), cfg->bk) + 1 < maxwork)
            maxwork = sd_cdiv(sd_key_span(a, cfg->bq), cfg->bk) + 1;
        if (num_sms > 0 && pl->base_blocks > 0) {
            int occ = (int)(SD_SM_SMEM / (sd_smem_bytes(cfg) + SD_BLOCK_RESERVED));
            if (occ > cfg->minb) occ = cfg->minb;
            if (occ < 1) occ = 1;
            const int64_t slots = (int64_t)num_sms * occ;
            if (pl->base_blocks < slots) {
                int64_t ns = sd_cdiv(slots, pl->base_blocks);
                if (ns > maxwork / 4) ns = maxwork / 4; /* at least 4 key tiles per split */
                if (ns > SD_MAX_SPLIT) ns = SD_MAX_SPLIT;
                if (ns > 1) {
                    pl->chunk = (int)sd_cdiv(maxwork, ns);
                    pl->nsplit = (int)sd_cdiv(maxwork, pl->chunk);
                }
            }
        }
    }
    if (pl->base_blocks * pl->nsplit > INT32_MAX) return -1;
    if (pl->nsplit > 1) pl->ws_bytes = (size_t)rows * (size_t)pl->nsplit * (size_t)(pl->ws_ld + 2) * sizeof(float);
    return 0;
}

/* The workspace covers both decode kernels when the shapes allow the tensor-core one (the launcher also
 * looks at the pointers' alignment, which a workspace query may not know). */
extern "C" size_t lc_cuda_sdpa_workspace(const lc_sdpa_args *args, int num_sms) {
    sd_plan pl, pm;
    if (sd_make_plan(args, num_sms, 0, &pl) != 0) return 0;
    if (pl.path == SD_PATH_DECODE && sd_dec_mma_shapes_ok(args) && sd_make_plan(args, num_sms, 1, &pm) == 0 &&
        pm.ws_bytes > pl.ws_bytes)
        return pm.ws_bytes;
    return pl.ws_bytes;
}

static int sd_smem_attr_done[SD_MAX_DEVICES][3][SD_NCFG];

/* The configuration's dynamic shared memory past 48 KiB, once per device (pdl.cuh). */
static cudaError_t sd_prepare(int dti, int ci, size_t smem) {
    if (smem <= 48 * 1024) return cudaSuccess;
    return lc_once_per_device(SD_MAX_DEVICES, [&](int dev) { return &sd_smem_attr_done[dev][dti][ci]; }, [&] {
        return cudaFuncSetAttribute((const void *)sd_configs[dti][ci].fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)smem);
    });
}

/* Whether an operand allows 16-byte loads of n-element chunks along d: d-stride 1, head_dim a multiple of
 * n, the base and the other strides 16-byte aligned. */
static int sd_vec_ok(const void *ptr, const int64_t *st, int64_t d, int n, size_t esize) {
    if (st[3] != 1 || d % n != 0 || ((uintptr_t)ptr % 16) != 0) return 0;
    for (int i = 0; i < 3; i++)
        if (((uint64_t)st[i] * esize) % 16 != 0) return 0;
    return 1;
}

/* fused: the tensor-core decode with the KV append in its launch (2: and the rotary embedding) */
static const char *sd_path_name(int path, int mma, int fused, int split, int lean, lc_dtype dt) {
    static const char *names[9][3] = {
        {"cuda_sdpa_flash_f32", "cuda_sdpa_flash_f16", "cuda_sdpa_flash_bf16"},
        {"cuda_sdpa_split_f32", "cuda_sdpa_split_f16", "cuda_sdpa_split_bf16"},
        {"cuda_sdpa_decode_f32", "cuda_sdpa_decode_f16", "cuda_sdpa_decode_bf16"},
        {"cuda_sdpa_decode_f32", "cuda_sdpa_decode_mma_f16", "cuda_sdpa_decode_mma_bf16"},
        {"cuda_sdpa_decode_f32", "cuda_sdpa_decode_mma_append_f16", "cuda_sdpa_decode_mma_append_bf16"},
        {"cuda_sdpa_decode_f32", "cuda_sdpa_decode_mma_rope_append_f16", "cuda_sdpa_decode_mma_rope_append_bf16"},
        {"cuda_sdpa_decode_f32", "cuda_sdpa_decode_lean_f16", "cuda_sdpa_decode_lean_bf16"},
        {"cuda_sdpa_decode_f32", "cuda_sdpa_decode_lean_append_f16", "cuda_sdpa_decode_lean_append_bf16"},
        {"cuda_sdpa_decode_f32", "cuda_sdpa_decode_lean_rope_append_f16", "cuda_sdpa_decode_lean_rope_append_bf16"},
    };
    const int row = fused == 2 ? 5 : fused ? 4 : path == SD_PATH_DECODE ? (mma ? 3 : 2) : split ? 1 : 0;
    return names[lean ? 6 + (row >= 4 ? row - 3 : 0) : row][sd_dtype_index(dt)];
}

/* Whether the tensor-core decode of plan pl may take args->append into its launch (sd_params: tnew): the
 * append is the cache these args attend to (k, v, int32 key_lengths, skv = max_seq), at most SD_DEC_MAX_SQ
 * tokens, the counters cover the batch, k_new / v_new give 16-byte rows with d-stride 1. LC_KV_FUSE=0 runs
 * the append kernel first instead (A/B). */
static int sd_append_fuses(const lc_sdpa_args *a, const sd_plan *pl) {
    const lc_kv_append_args *ap = a->append;
    if (!ap || pl->path != SD_PATH_DECODE || !pl->mma || sd_env_is("LC_KV_FUSE", "0")) return 0;
    if (ap->k_cache != a->k || ap->v_cache != a->v || (const void *)ap->lengths != a->key_lengths ||
        a->key_lengths_dtype != LC_DTYPE_I32 || ap->max_seq != a->skv || ap->dtype != a->dtype || ap->tokens < 1 ||
        ap->tokens > SD_DEC_MAX_SQ || a->batch > SD_DEC_NCTR || a->batch < 1 || a->heads < 1 || a->sq < 1)
        return 0;
    return sd_vec_ok(ap->k_new, ap->kn_st, a->head_dim, 8, 2) && sd_vec_ok(ap->v_new, ap->vn_st, a->head_dim, 8, 2);
}

/* Whether the fused append of plan pl may also take args->rope: q's tokens are the append's, the padded
 * head_dim has a rope form of the kernel (64, 128), and the pairs (j, j + rd/2) fall on 16-byte chunks. */
static int sd_rope_fits(const lc_sdpa_args *a, const sd_plan *pl) {
    const lc_rope_args *r = a->rope;
    return r && a->append && a->append->tokens == a->sq && (pl->dp == 64 || pl->dp == 128) && r->rotary_dim >= 16 &&
           r->rotary_dim % 16 == 0 && r->rotary_dim <= a->head_dim && r->positions &&
           (r->pos_dtype == LC_DTYPE_I32 || r->pos_dtype == LC_DTYPE_I64);
}

/* Whether the short-path decode (sdpa_decode_lean_cuda.cu) takes plan pl's call: a cache of at most N keys
 * (LC_SDPA_DECODE_LEAN=N, 0: never; unset: SD_LEAN_KEYS, below which it was measured faster on the H100 at GPT-2's
 * and LLaMA 1.1B's heads, B = 1 to 32; docs/benchmarks.md, session 30), the tensor-core decode's operands, one query
 * row, head_dim 64, a GQA group of at most 8, no mask or window, at most one fused new token, a fused rope only over
 * all 64 columns, q rows with 16-byte loads. */
#define SD_LEAN_KEYS 256
static int sd_lean_fits(const lc_sdpa_args *a, const sd_plan *pl, int fuse, const double *rinv) {
    const char *e = getenv("LC_SDPA_DECODE_LEAN");
    const long n = e && *e ? atol(e) : SD_LEAN_KEYS;
    if (n < 1 || a->skv > n || pl->path != SD_PATH_DECODE || !pl->mma || a->sq != 1 || a->head_dim != 64) return 0;
    if (a->heads / a->kv_heads > 8 || a->mask_kind != LC_SDPA_MASK_NONE || a->window != 0) return 0;
    if ((fuse && a->append->tokens > 1) || (rinv && a->rope->rotary_dim != 64)) return 0;
    return sd_vec_ok(a->q, a->q_st, a->head_dim, 8, 2);
}

static thread_local int sd_last_merge = LC_SDPA_MERGE_NONE;
extern "C" int lc_cuda_sdpa_last_merge(void) { return sd_last_merge; }

extern "C" cudaError_t lc_cuda_launch_sdpa(const lc_sdpa_args *args, void *workspace, size_t workspace_bytes, int num_sms,
                                           cudaStream_t stream, const char **path) {
    sd_last_merge = LC_SDPA_MERGE_NONE;
    sd_plan pl;
    if (sd_make_plan(args, num_sms, 0, &pl) != 0) return cudaErrorInvalidValue;
    if (pl.path == SD_PATH_DECODE && sd_dec_mma_shapes_ok(args) && sd_dec_mma_ptrs_ok(args) &&
        sd_make_plan(args, num_sms, 1, &pl) != 0)
        return cudaErrorInvalidValue;
    if (pl.nsplit > 1 && (!workspace || workspace_bytes < pl.ws_bytes || ((uintptr_t)workspace % 16) != 0)) {
        /* not the workspace this plan needs: run unsplit (correct, slower) */
        pl.nsplit = 1;
        pl.chunk = 0;
        pl.ws_bytes = 0;
    }
    const int fuse = sd_append_fuses(args, &pl);
    const double *rinv = args->rope && fuse && sd_rope_fits(args, &pl) ? lc_cuda_rope_inv_freq(args->rope) : NULL;
    if (args->rope && !rinv) return cudaErrorNotSupported; /* before any launch: the caller runs rope first */
    if (args->append && !fuse) { /* the append kernel, then the attention at the advanced lengths */
        const cudaError_t err = lc_cuda_launch_kv_append(args->append, stream);
        if (err != cudaSuccess) return err;
    }
    const int lean = sd_lean_fits(args, &pl, fuse, rinv);
    if (path) *path = sd_path_name(pl.path, pl.mma, rinv ? 2 : fuse, pl.nsplit > 1, lean, args->dtype);
    if (args->batch == 0 || args->heads == 0 || args->sq == 0) return cudaSuccess; /* nothing to write */
    if (!args->q || !args->k || !args->v || !args->out) return cudaErrorInvalidValue;

    sd_params p;
    p.q = args->q;
    p.k = args->k;
    p.v = args->v;
    p.out = args->out;
    p.lse = args->lse;
    for (int i = 0; i < 4; i++) {
        p.q_st[i] = args->q_st[i];
        p.k_st[i] = args->k_st[i];
        p.v_st[i] = args->v_st[i];
        p.o_st[i] = args->o_st[i];
        p.m_st[i] = args->m_st[i];
    }
    p.mask = args->mask_kind != LC_SDPA_MASK_NONE ? args->mask : NULL;
    p.mask_kind = (int)args->mask_kind;
    p.mask_dt = args->mask_dtype == LC_DTYPE_F16 ? SD_MDT_F16 : args->mask_dtype == LC_DTYPE_BF16 ? SD_MDT_BF16 : SD_MDT_F32;
    p.kl = args->key_lengths;
    p.kl64 = args->key_lengths_dtype == LC_DTYPE_I64;
    p.batch = (int)args->batch;
    p.heads = (int)args->heads;
    p.kv_heads = (int)args->kv_heads;
    p.group = (int)(args->heads / args->kv_heads);
    p.sq = (int)args->sq;
    p.skv = (int)args->skv;
    p.d = (int)args->head_dim;
    p.causal = args->causal != 0;
    p.window = (int)args->window;
    p.qscale = args->scale * SD_LOG2E;
    const size_t es = args->dtype == LC_DTYPE_F32 ? 4 : 2;
    const int vn = args->dtype == LC_DTYPE_F32 ? 4 : 8;
    p.vec_q = sd_vec_ok(args->q, args->q_st, args->head_dim, vn, es);
    p.vec_k = sd_vec_ok(args->k, args->k_st, args->head_dim, vn, es);
    p.vec_v = sd_vec_ok(args->v, args->v_st, args->head_dim, vn, es);
    p.nqb = pl.nqb;
    p.nrg = pl.nrg;
    p.nsplit = pl.nsplit;
    p.chunk = pl.chunk;
    p.ws_ld = pl.ws_ld;
    p.ws_o = p.ws_ml = NULL;
    p.plain_nonfinite = args->plain_nonfinite != 0;
    p.kn = p.vn = NULL;
    p.tnew = 0;
    p.kl_rw = p.ovf = NULL;
    p.count_now = sd_env_is("LC_SDPA_DECODE_COUNT", "now");
    p.direct_keys = sd_dec_direct_keys();
    for (int i = 0; i < 3; i++) p.kn_st[i] = p.vn_st[i] = 0;
    if (fuse) {
        const lc_kv_append_args *ap = args->append;
        p.kn = ap->k_new;
        p.vn = ap->v_new;
        for (int i = 0; i < 3; i++) {
            p.kn_st[i] = ap->kn_st[i];
            p.vn_st[i] = ap->vn_st[i];
        }
        p.tnew = (int)ap->tokens;
        p.kl_rw = ap->lengths;
        p.ovf = ap->overflow;
    }
    p.rpos = NULL;
    p.rpos64 = 0;
    p.rp_st[0] = p.rp_st[1] = 0;
    p.rd = 0;
    if (rinv) {
        p.rpos = args->rope->positions;
        p.rpos64 = args->rope->pos_dtype == LC_DTYPE_I64;
        p.rp_st[0] = args->rope->p_st[0];
        p.rp_st[1] = args->rope->p_st[1];
        p.rd = (int)args->rope->rotary_dim;
    }
    /* the splits of a group as one cluster when every group's cluster is resident at once (one wave), else the
     * fold (the last split to finish merges), else the combine pass */
    p.cluster = pl.mma && pl.nsplit > 1 && pl.nsplit <= SD_DEC_MAX_CLUSTER && !sd_env_is("LC_SDPA_DECODE_CLUSTER", "0") &&
                        pl.base_blocks <= sd_decode_mma_cluster_capacity(args->dtype, pl.dp, pl.nsplit)
                    ? pl.nsplit
                    : 0;
    p.fold = pl.mma && pl.nsplit > 1 && !p.cluster && pl.base_blocks <= SD_DEC_NCTR && !sd_env_is("LC_SDPA_DECODE_FOLD", "0");
    if (pl.nsplit > 1) {
        const size_t nslots = (size_t)args->batch * args->heads * args->sq * pl.nsplit;
        p.ws_o = (float *)workspace;
        p.ws_ml = p.ws_o + nslots * (size_t)pl.ws_ld;
    }

    if (lean) /* no merge: sd_last_merge stays NONE; a block a head unless that is over 4 waves of blocks */
        return sd_launch_decode_lean(args->dtype, p, rinv,
                                     (long long)args->batch * args->heads <= 4LL * num_sms && !sd_env_is("LC_SDPA_DECODE_LEAN_KV", "1"),
                                     stream);
    const unsigned blocks = (unsigned)(pl.base_blocks * pl.nsplit);
    sd_last_merge = pl.nsplit == 1 ? LC_SDPA_MERGE_NONE
                    : p.cluster    ? LC_SDPA_MERGE_CLUSTER
                    : p.fold       ? LC_SDPA_MERGE_FOLD
                                   : LC_SDPA_MERGE_COMBINE;
    cudaError_t err;
    if (pl.path == SD_PATH_DECODE && pl.mma) {
        err = sd_launch_decode_mma(args->dtype, pl.dp, p, rinv, blocks, stream);
    } else if (pl.path == SD_PATH_DECODE) {
        err = sd_launch_decode(args->dtype, pl.dp, pl.rt, p, blocks, stream);
    } else {
        const int dti = sd_dtype_index(args->dtype), ci = sd_cfg_index(args);
        const sd_config *cfg = &sd_configs[dti][ci];
        const size_t smem = sd_smem_bytes(cfg);
        err = sd_prepare(dti, ci, smem);
        if (err != cudaSuccess) return err;
        cfg->fn<<<blocks, cfg->nt, smem, stream>>>(p);
        err = cudaGetLastError();
    }
    if (err != cudaSuccess || pl.nsplit == 1 || p.fold || p.cluster) return err;
    return sd_launch_combine(args->dtype, p, stream);
}

LC_TL_READER(lc_tl_read_sdpa_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
