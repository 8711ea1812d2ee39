/* sdpa_decode_cuda.cu — the decode path of the CUDA sdpa (sq <= 16 query rows against a long key range;
 * semantics: lc_sdpa_args in src/core/backend.h, launcher and plan in sdpa_cuda.cu).
 *
 * One block of 4 warps per (b, kv head, group of RT rows, key chunk). The rows of a (b, kv head) are the
 * heads/kv_heads query heads of its GQA group × sq query rows (row r = g·sq + i, head kvh·group + g), so
 * every k/v byte of the chunk is read by one block for all of them (RT = 4 or 8 rows; more rows: more row
 * groups). q (pre-scaled by scale·log2 e) sits in shared memory as float [RT][DP].
 * Inside the block, a lane group of LPK lanes owns one key at a time: lane gl holds the 16-byte chunks
 * (ch·LPK + gl)·VEC .. +VEC of the key's k and v row (VEC = 4 float32 or 8 16-bit elements; DP = head_dim
 * rounded up to 32/64/128/256, LPK = min(32, DP/VEC)), loaded straight from global memory with 16-byte
 * loads (d-stride 1, aligned rows; element loads otherwise), U keys per group in flight. The NG = 4·32/LPK
 * groups walk the chunk's keys interleaved (key = base + u·NG + group: neighbouring groups read
 * neighbouring rows). Each group keeps its own online softmax state (m, l, acc over its lanes' columns) per
 * row; the dot products reduce over the group's lanes by shuffles. At the end the groups merge (shuffles
 * within the warp, shared memory across warps) and the block writes out / lse (one chunk) or its partial
 * (m, l, acc) for sd_combine.
 * Visibility as the generic kernel: keys >= L_b or past the chunk are never loaded; causal (row i sees
 * j <= i + L_b - sq), the sliding window (row i sees j > i + L_b - sq - window: the key range starts at the
 * block's first visible key, computed here from the device length, so a captured graph stays exact) and
 * masks give -inf scores and, with them, p·v skips p == 0 so a hidden NaN v cannot reach a row. Rows with no visible key: zeros (NaN with plain_nonfinite), lse -inf.
 * Tests: tests/c/test_sdpa_cuda.c (GPU machine only).
 */
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/sdpa_cuda.cuh"
#include "backend/cuda/pdl.cuh"

#define SDD_NW 4
#define SDD_NT (SDD_NW * 32)

template <typename T, int DP, int RT>
__global__ void __launch_bounds__(SDD_NT) sd_decode(const sd_params p) {
    lc_pdl_entry(); /* pdl.cuh */
    typedef SdVec<T> SV;
    typedef typename SV::V VT;
    constexpr int VEC = SV::N;
    constexpr int LPK = (DP / VEC) < 32 ? DP / VEC : 32;
    constexpr int NCH = DP / (VEC * LPK);
    constexpr int EPL = NCH * VEC;
    constexpr int KPW = 32 / LPK;
    constexpr int NG = SDD_NW * KPW;
    constexpr int U = NCH * RT >= 16 ? 2 : 4;
    static_assert(NCH * VEC * LPK == DP && LPK * KPW == 32 && VEC % 4 == 0, "decode layout");

    extern __shared__ float4 sdd_smem4[];
    float *const qs = reinterpret_cast<float *>(sdd_smem4); /* [RT][DP] */
    float *const red_m = qs + RT * DP;                      /* [NW][RT] */
    float *const red_l = red_m + SDD_NW * RT;               /* [NW][RT] */
    float *const red_o = red_l + SDD_NW * RT;               /* [NW][RT][DP] */

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int grp = warp * KPW + lane / LPK, gl = lane % LPK;

    /* block -> (b, kv head, row group, split) */
    long long rest = blockIdx.x;
    const int split = (int)(rest % p.nsplit);
    rest /= p.nsplit;
    const int rgi = (int)(rest % p.nrg);
    rest /= p.nrg;
    const int kvh = (int)(rest % p.kv_heads);
    const int b = (int)(rest / p.kv_heads);
    const int sq = p.sq, d = p.d;
    const int R = p.group * sq;
    const int r0 = rgi * RT;

    const int L = sd_key_len(p, b);
    const int off = L - sq;
    int ri[RT], rh[RT]; /* query row i (-1: past the rows) and head of each row */
    int imax = 0, imin = sq;
#pragma unroll
    for (int r = 0; r < RT; r++) {
        const int gr = r0 + r;
        ri[r] = gr < R ? gr % sq : -1;
        rh[r] = gr < R ? kvh * p.group + gr / sq : 0;
        imax = max(imax, ri[r]);
        if (ri[r] >= 0) imin = min(imin, ri[r]);
    }
    int kmax = L;
    if (p.causal) kmax = min(L, max(0, imax + off + 1));
    /* window: the block's keys start at its first row's first key (the splits cut [kmin, kmax)) */
    const int kmin = p.window ? min(kmax, max(0, imin + off - p.window + 1)) : 0;
    int c0 = kmin, c1 = kmax;
    if (p.nsplit > 1) {
        c0 = min(kmin + split * p.chunk, kmax);
        c1 = min(c0 + p.chunk, kmax);
    }

    for (int idx = tid; idx < RT * DP; idx += SDD_NT) {
        const int r = idx / DP, c = idx % DP;
        const int gr = r0 + r;
        float x = 0.0f;
        if (gr < R && c < d) {
            const int hq = kvh * p.group + gr / sq, i = gr % sq;
            const T *src = static_cast<const T *>(p.q) + (long long)b * p.q_st[0] + (long long)hq * p.q_st[1] +
                           (long long)i * p.q_st[2] + (long long)c * p.q_st[3];
            x = SV::ld1(src) * p.qscale;
        }
        qs[idx] = x;
    }
    __syncthreads();

    const T *kb = static_cast<const T *>(p.k) + (long long)b * p.k_st[0] + (long long)kvh * p.k_st[1];
    const T *vb = static_cast<const T *>(p.v) + (long long)b * p.v_st[0] + (long long)kvh * p.v_st[1];
    const long long k2 = p.k_st[2], k3 = p.k_st[3], v2 = p.v_st[2], v3 = p.v_st[3];
    const bool masked = p.mask_kind != LC_SDPA_MASK_NONE;
    const bool guard = masked || p.causal || p.window;

    float m[RT], l[RT], acc[RT][EPL];
#pragma unroll
    for (int r = 0; r < RT; r++) {
        m[r] = -FLT_MAX;
        l[r] = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; e++) acc[r][e] = 0.0f;
    }

    for (int base = c0; base < c1; base += NG * U) {
        VT kr[U][NCH], vr[U][NCH];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int key = base + u * NG + grp;
            const bool ok = key < c1;
#pragma unroll
            for (int ch = 0; ch < NCH; ch++) {
                const int d0 = (ch * LPK + gl) * VEC;
                kr[u][ch] = SV::zero();
                vr[u][ch] = SV::zero();
                if (ok && d0 < d) {
                    kr[u][ch] = p.vec_k ? SV::ld16(kb + (long long)key * k2 + d0) : SV::ldn(kb + (long long)key * k2 + (long long)d0 * k3, k3, d - d0);
                    vr[u][ch] = p.vec_v ? SV::ld16(vb + (long long)key * v2 + d0) : SV::ldn(vb + (long long)key * v2 + (long long)d0 * v3, v3, d - d0);
                }
            }
        }

        /* scores (log2 units) of the group's U keys for the RT rows */
        float s[U][RT];
#pragma unroll
        for (int u = 0; u < U; u++) {
            float kf[EPL];
#pragma unroll
            for (int ch = 0; ch < NCH; ch++) SV::to_f(kr[u][ch], kf + ch * VEC);
#pragma unroll
            for (int r = 0; r < RT; r++) {
                float a0 = 0.0f, a1 = 0.0f;
#pragma unroll
                for (int ch = 0; ch < NCH; ch++)
#pragma unroll
                    for (int e4 = 0; e4 < VEC / 4; e4++) {
                        const float4 qv = *reinterpret_cast<const float4 *>(qs + r * DP + (ch * LPK + gl) * VEC + e4 * 4);
                        const float *kk = kf + ch * VEC + e4 * 4;
                        a0 = fmaf(qv.x, kk[0], a0);
                        a1 = fmaf(qv.y, kk[1], a1);
                        a0 = fmaf(qv.z, kk[2], a0);
                        a1 = fmaf(qv.w, kk[3], a1);
                    }
                float a = a0 + a1;
#pragma unroll
                for (int o = LPK / 2; o >= 1; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
                s[u][r] = a;
            }
        }

        /* visibility and mask */
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int key = base + u * NG + grp;
#pragma unroll
            for (int r = 0; r < RT; r++) {
                const bool vis = key < c1 && ri[r] >= 0 && (!p.causal || key <= ri[r] + off) &&
                                 (!p.window || key > ri[r] + off - p.window);
                if (!vis) s[u][r] = -INFINITY;
                else if (masked) s[u][r] = sd_apply_mask(p, b, rh[r], ri[r], key, s[u][r]);
            }
        }

        /* online softmax per row over the U keys */
#pragma unroll
        for (int r = 0; r < RT; r++) {
            float mx = s[0][r];
#pragma unroll
            for (int u = 1; u < U; u++) mx = fmaxf(mx, s[u][r]);
            const float mnew = fmaxf(m[r], mx);
            const float alpha = exp2f(m[r] - mnew);
            m[r] = mnew;
            float sum = 0.0f;
#pragma unroll
            for (int u = 0; u < U; u++) {
                const float e = exp2f(s[u][r] - mnew);
                s[u][r] = e;
                sum += e;
            }
            l[r] = fmaf(l[r], alpha, sum);
#pragma unroll
            for (int e = 0; e < EPL; e++) acc[r][e] *= alpha;
        }

        /* acc += p · v */
#pragma unroll
        for (int u = 0; u < U; u++) {
            float vf[EPL];
#pragma unroll
            for (int ch = 0; ch < NCH; ch++) SV::to_f(vr[u][ch], vf + ch * VEC);
            if (guard) {
#pragma unroll
                for (int r = 0; r < RT; r++) {
                    const float pr = s[u][r];
#pragma unroll
                    for (int e = 0; e < EPL; e++) acc[r][e] = pr != 0.0f ? fmaf(pr, vf[e], acc[r][e]) : acc[r][e];
                }
            } else {
#pragma unroll
                for (int r = 0; r < RT; r++)
#pragma unroll
                    for (int e = 0; e < EPL; e++) acc[r][e] = fmaf(s[u][r], vf[e], acc[r][e]);
            }
        }
    }

    /* merge the groups of the warp (shuffles), then the warps (shared memory) */
#pragma unroll
    for (int r = 0; r < RT; r++) {
        float mw = m[r];
#pragma unroll
        for (int o = LPK; o < 32; o <<= 1) mw = fmaxf(mw, __shfl_xor_sync(0xffffffffu, mw, o));
        const float sc = exp2f(m[r] - mw);
        float lw = l[r] * sc;
#pragma unroll
        for (int o = LPK; o < 32; o <<= 1) lw += __shfl_xor_sync(0xffffffffu, lw, o);
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            float a = acc[r][e] * sc;
#pragma unroll
            for (int o = LPK; o < 32; o <<= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
            acc[r][e] = a;
        }
        if (lane == 0) {
            red_m[warp * RT + r] = mw;
            red_l[warp * RT + r] = lw;
        }
        if (lane < LPK) {
#pragma unroll
            for (int ch = 0; ch < NCH; ch++)
#pragma unroll
                for (int e = 0; e < VEC; e++) red_o[(warp * RT + r) * DP + (ch * LPK + lane) * VEC + e] = acc[r][ch * VEC + e];
        }
    }
    __syncthreads();

    for (int idx = tid; idx < RT * DP; idx += SDD_NT) {
        const int r = idx / DP, c = idx % DP;
        const int gr = r0 + r;
        if (gr >= R || c >= d) continue;
        float mx = -FLT_MAX;
#pragma unroll
        for (int w = 0; w < SDD_NW; w++) mx = fmaxf(mx, red_m[w * RT + r]);
        float den = 0.0f, num = 0.0f;
#pragma unroll
        for (int w = 0; w < SDD_NW; w++) {
            const float wt = exp2f(red_m[w * RT + r] - mx);
            den = fmaf(wt, red_l[w * RT + r], den);
            num = fmaf(wt, red_o[(w * RT + r) * DP + c], num);
        }
        const int hq = kvh * p.group + gr / sq, i = gr % sq;
        const long long rowid = ((long long)b * p.heads + hq) * sq + i;
        if (p.nsplit == 1) {
            sd_store<T>(p, b, hq, i, c, num, mx, den);
        } else {
            const long long slot = rowid * p.nsplit + split;
            p.ws_o[slot * p.ws_ld + c] = num;
            if (c == 0) {
                p.ws_ml[2 * slot] = mx;
                p.ws_ml[2 * slot + 1] = den;
            }
        }
    }
}

size_t sd_decode_smem(int dp, int rt) {
    return (size_t)(rt * dp + 2 * SDD_NW * rt + SDD_NW * rt * dp) * sizeof(float);
}

template <typename T, int DP, int RT>
static cudaError_t sdd_launch(const sd_params &p, unsigned blocks, cudaStream_t stream) {
    const size_t smem = sd_decode_smem(DP, RT);
    if (smem > 48 * 1024) {
        const cudaError_t err = cudaFuncSetAttribute((const void *)sd_decode<T, DP, RT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (err != cudaSuccess) return err;
    }
    (void)lc_pdl_launch(sd_decode<T, DP, RT>, blocks, SDD_NT, smem, stream, p);
    return cudaGetLastError();
}

template <typename T, int DP>
static cudaError_t sdd_launch_rt(int rt, const sd_params &p, unsigned blocks, cudaStream_t stream) {
    return rt == 4 ? sdd_launch<T, DP, 4>(p, blocks, stream) : sdd_launch<T, DP, 8>(p, blocks, stream);
}

template <typename T>
static cudaError_t sdd_launch_dp(int dp, int rt, const sd_params &p, unsigned blocks, cudaStream_t stream) {
    switch (dp) {
    case 32: return sdd_launch_rt<T, 32>(rt, p, blocks, stream);
    case 64: return sdd_launch_rt<T, 64>(rt, p, blocks, stream);
    case 128: return sdd_launch_rt<T, 128>(rt, p, blocks, stream);
    default: return sdd_launch_rt<T, 256>(rt, p, blocks, stream);
    }
}

cudaError_t sd_launch_decode(lc_dtype dtype, int dp, int rt, const sd_params &p, unsigned blocks, cudaStream_t stream) {
    if (blocks == 0) return cudaSuccess;
    if (dtype == LC_DTYPE_F32) return sdd_launch_dp<float>(dp, rt, p, blocks, stream);
    if (dtype == LC_DTYPE_F16) return sdd_launch_dp<__half>(dp, rt, p, blocks, stream);
    return sdd_launch_dp<__nv_bfloat16>(dp, rt, p, blocks, stream);
}

LC_TL_READER(lc_tl_read_sdpa_decode_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
