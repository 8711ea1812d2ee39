/* sdpa_tf32.cu — float32 flash-attention forward on tensor cores with 3xTF32 products (float32 accuracy):
 * every product a·b of S = Q·Kᵀ and O = P·V runs as hi(a)·hi(b) + hi(a)·lo(b) + lo(a)·hi(b) on
 * mma.sync.m16n8k8.tf32 with float32 accumulation, where hi(x) = x rounded to tf32 (exact in tf32) and
 * lo(x) = x - hi(x) (exact in float32, |lo| <= 2^-11·|x|, truncated to tf32 by the mma). The dropped lo·lo
 * term and lo's truncation leave <= 2.5·2^-21 of |a·b| per product; the measured error is ~2e-6 of the
 * output (the SIMT kernel's ~7e-7), inside testing.sdpa_tol's float32 bound (tests/python/test_sdpa_tf32.py).
 *
 * Semantics: lc_sdpa_args restricted to what lc_cuda_sdpa_tf32_fits (sdpa_mma_cuda.cu) accepts: float32
 * q, k, v, out [b, h|hkv, s, D], D 64 or 128, d-stride 1, 16-byte aligned rows, no mask, no window, causal or
 * not (diagonal aligned to the end of the valid keys), key_lengths int32/int64, GQA, lse optional. Rows
 * with no visible key: zeros, lse -inf.
 *
 * Block: NW warps of MT 16-row m-tiles (BM = 16·NW·MT query rows), key tiles of BN keys; smem (float32, rows
 * padded so the fragment loads are conflict-free): Q [BM][D+8], K [2][BN][D+8], V [2][BN][D+4]. cp.async
 * groups: Q+K0+V0, then per key tile t one wait, one barrier (which also votes whether K_t or V_t holds a
 * NaN/Inf), the loads of K_t+1 and V_t+1 into the other buffers, S = Q·K_tᵀ, online softmax (log2 domain),
 * O = O·alpha + P·V_t (P·V_t in fresh accumulators; key chunks past the warp's last visible key skipped).
 * Skipping S's n-tiles past the diagonal the same way (a warp-uniform break in the unrolled loop) made every
 * shape 14-53% slower on the H100 (it breaks the interleaving of the mma chains), so S is computed whole.
 *
 * Fragments (PTX m16n8k8 .tf32; lane = 4g + c): A a0 = A[g][c], a1 = A[g+8][c], a2 = A[g][c+4],
 * a3 = A[g+8][c+4]; B b0 = B[c][g], b1 = B[c+4][g]; C c0, c1 = C[g][2c, 2c+1], c2, c3 = C[g+8][2c, 2c+1].
 * The reduction index k is permuted (k = c <-> element 2c, k = c+4 <-> 2c+1 of each group of 8), which a sum
 * does not see: Q·Kᵀ step kk reads float2 Q[g][8kk+2c..] (a0, a2), Q[g+8][..] (a1, a3) and K[key g][8kk+2c..]
 * (b0, b1); P·V's A is then the S accumulator as it lies (a0..a3 = s0, s2, s1, s3 of n-tile kc) with
 * b0 = V[8kc+2c][8t+g], b1 = V[8kc+2c+1][8t+g]: no shuffles.
 *
 * Non-finite inputs: the hi/lo split would turn an Inf into NaN (Inf - Inf), so a block whose Q tile holds a
 * NaN/Inf, or a key tile whose K or V does (block vote, x·0 summed per thread), computes that tile on CUDA
 * cores instead: exact float32 dot products for S, and P·V adding p·v only where p != 0 (a key hidden by
 * the mask or the lengths has p = 0, so a NaN/Inf v it holds never reaches a row that cannot see it).
 * Grid: as sdpa_mma.cuh (1-D, heaviest causal query tiles first; qt_major when k/v fit in L2).
 * Tests: tests/python/test_sdpa_tf32.py (GPU), tests/c/test_sdpa_mma.c (fits checks, host); without a GPU,
 * scripts/sdpa_mma_emu/run_tf32.sh runs this kernel's source on the host (lanes as threads) against float64. */
#define LC_SDPA_MMA_KERNEL 1
#include "sdpa_mma.cuh"

namespace lc_sdpa_tf32 {
using lc_sdpa_mma::block_tile;
using lc_sdpa_mma::block_key_end;
using lc_sdpa_mma::cp_async16;
using lc_sdpa_mma::cp_commit;
using lc_sdpa_mma::cp_wait;
using lc_sdpa_mma::ex2;
using lc_sdpa_mma::key_len;
using lc_sdpa_mma::prepare_once;
using lc_sdpa_mma::smem_u32;
using lc_sdpa_mma::write_empty;

/* hi/lo split of one float32 (see the header): hi = x rounded to tf32 (to nearest, ties away from zero, on the
 * magnitude bits), so |lo| <= 2^-11·|x|. A non-finite x is never split (its tile runs on CUDA cores); a finite
 * x within 2^-11 of FLT_MAX would round to inf (scores of such inputs overflow float32 anyway). */
__device__ __forceinline__ void split(float x, uint32_t &hi, uint32_t &lo) {
    hi = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
    lo = __float_as_uint(x - __uint_as_float(hi));
}

__device__ __forceinline__ void mma_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* c += a·b in 3xTF32: the small terms first. */
__device__ __forceinline__ void mma3(float (&c)[4], const uint32_t (&ah)[4], const uint32_t (&al)[4], uint32_t bh0,
                                     uint32_t bh1, uint32_t bl0, uint32_t bl1) {
    mma_tf32(c, al, bh0, bh1);
    mma_tf32(c, ah, bl0, bl1);
    mma_tf32(c, ah, bh0, bh1);
}

/* ROWS rows of D floats from g (row stride st) into smem rows of LD floats at sb; rows >= nvalid are
 * zero-filled without reading. Thread tid moves 16-byte chunk tid % CH of rows tid / CH + RS·it. */
template <int D, int LD, int ROWS, int NT>
__device__ __forceinline__ void load_rows(uint32_t sb, const float *g, int64_t st, int nvalid, int tid) {
    constexpr int CH = D / 4, RS = NT / CH;
    static_assert(NT % CH == 0 && ROWS % RS == 0, "tile chunks must divide among the threads");
    const int r0 = tid / CH, c = tid % CH;
    const uint32_t d0 = sb + 4u * (uint32_t)(r0 * LD + 4 * c);
    const float *src = g + (int64_t)r0 * st + 4 * c;
#pragma unroll
    for (int it = 0; it < ROWS / RS; it++) {
        const bool ok = r0 + it * RS < nvalid;
        cp_async16(d0 + (uint32_t)(it * RS * LD * 4), ok ? (const void *)(src + (int64_t)it * RS * st) : (const void *)g,
                   ok ? 16 : 0);
    }
}

/* x·0 summed over the chunks this thread loaded (load_rows' mapping): 0, or NaN when one is NaN/Inf. */
template <int D, int LD, int ROWS, int NT> __device__ __forceinline__ float rows_probe(const float *t, int tid) {
    constexpr int CH = D / 4, RS = NT / CH;
    const int r0 = tid / CH, c = tid % CH;
    float acc = 0.f;
#pragma unroll
    for (int it = 0; it < ROWS / RS; it++) {
        const float4 x = *reinterpret_cast<const float4 *>(t + (r0 + it * RS) * LD + 4 * c);
        acc = fmaf(x.x, 0.f, acc), acc = fmaf(x.y, 0.f, acc), acc = fmaf(x.z, 0.f, acc), acc = fmaf(x.w, 0.f, acc);
    }
    return acc;
}

/* D: head dim; BN: keys per tile; NW: warps; MT: 16-row m-tiles per warp (block rows BM = 16·NW·MT; m-tile
 * mt of warp w holds block rows 16·NW·mt + 16w .. +15, so causal work stays balanced between the warps; each
 * K/V fragment loaded and split serves the MT m-tiles); QREG: the split Q fragments held in registers for
 * the whole key loop (else re-read and split per tile); MINB: resident blocks per SM asked of ptxas. */
template <int D, int BN, int NW, int MT, bool QREG, int MINB>
__global__ void __launch_bounds__(NW * 32, MINB) sdpa_tf32_kernel(const lc_sdpa_mma_params p) {
    constexpr int BM = 16 * NW * MT, NT = NW * 32;
    constexpr int QLD = D + 8, KLD = D + 8, VLD = D + 4; /* padded rows: conflict-free fragment loads */
    constexpr int KD = D / 8, NS = BN / 8, ND = D / 8;
    constexpr int QM = QREG ? MT : 1, QK = QREG ? KD : 1;
    extern __shared__ float4 lc_sdpa_tf32_smem[];
    float *Qs = reinterpret_cast<float *>(lc_sdpa_tf32_smem);
    float *Ks = Qs + BM * QLD;
    float *Vs = Ks + 2 * BN * KLD;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, c4 = lane & 3;
    int64_t bh;
    int qt;
    block_tile(p, bh, qt);
    const int b = (int)(bh / p.heads), h = (int)(bh - (int64_t)b * p.heads), hk = h / p.group;
    const int m0 = qt * BM; /* the block's first row */
#define LR(mt) ((mt) * 16 * NW + warp * 16) /* block-relative first row of m-tile mt of this warp */
    const int wlo = m0 + LR(0), whi = m0 + LR(MT - 1) + 15;

    const int L = key_len(p, b);
    const int off = L - p.sq; /* causal: row i sees keys j <= i + off */
    const int n_end = block_key_end(p, L, off, m0, BM); /* sdpa_mma.cuh */
    const int ntiles = n_end > 0 ? (n_end + BN - 1) / BN : 0;

    const float *qg = reinterpret_cast<const float *>(p.q) + b * p.q_sb + h * p.q_sh;
    const float *kg = reinterpret_cast<const float *>(p.k) + b * p.k_sb + hk * p.k_sh;
    const float *vg = reinterpret_cast<const float *>(p.v) + b * p.v_sb + hk * p.v_sh;
    float *og = reinterpret_cast<float *>(p.out) + b * p.o_sb + h * p.o_sh;
    float *lg = p.lse ? p.lse + bh * p.sq : nullptr;

    if (ntiles == 0) { /* no row of this block sees a key */
        write_empty<float, D, NT>(og, p.o_ss, lg, m0, min(BM, p.sq - m0), tid);
        return;
    }

    load_rows<D, QLD, BM, NT>(smem_u32(Qs), qg + (int64_t)m0 * p.q_ss, p.q_ss, p.sq - m0, tid);
    load_rows<D, KLD, BN, NT>(smem_u32(Ks), kg, p.k_ss, n_end, tid);
    load_rows<D, VLD, BN, NT>(smem_u32(Vs), vg, p.v_ss, n_end, tid);
    cp_commit();

    const float pre = p.scale_log2;
    float o[MT][ND][4];
    float mrow[MT][2], lrow[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int d = 0; d < ND; d++) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.f;
        mrow[mt][0] = mrow[mt][1] = -INFINITY, lrow[mt][0] = lrow[mt][1] = 0.f;
    }
    const bool warp_rows = wlo < p.sq; /* a warp wholly past sq computes nothing */
    /* this lane's Q row g of m-tile mt (row g + 8: + 8·QLD), at its d offset 2c */
#define QW(mt) (Qs + (LR(mt) + g) * QLD + 2 * c4)
    uint32_t qh[QM][QK][4], ql[QM][QK][4];
    bool qbad = false;

    for (int t = 0; t < ntiles; t++) {
        const int n0 = t * BN, buf = t & 1;
        const float *Kt = Ks + buf * BN * KLD, *Vt = Vs + buf * BN * VLD;
        cp_wait<0>();
        float probe = rows_probe<D, KLD, BN, NT>(Kt, tid) + rows_probe<D, VLD, BN, NT>(Vt, tid);
        if (t == 0) probe += rows_probe<D, QLD, BM, NT>(Qs, tid);
        /* one barrier: K_t and V_t (and Q) visible to the block, and whether one of them holds a NaN/Inf */
        const int bad = __syncthreads_or(probe != probe);
        if (t == 0) {
            /* which one: Q (every tile then runs on CUDA cores), or only this key tile (block-uniform call) */
            if (bad) qbad = __syncthreads_or(rows_probe<D, QLD, BM, NT>(Qs, tid) != 0.f) != 0;
            if (QREG && !qbad) {
#pragma unroll
                for (int mt = 0; mt < QM; mt++)
#pragma unroll
                    for (int kk = 0; kk < QK; kk++) {
                        const float2 x0 = *reinterpret_cast<const float2 *>(QW(mt) + 8 * kk);
                        const float2 x1 = *reinterpret_cast<const float2 *>(QW(mt) + 8 * QLD + 8 * kk);
                        split(x0.x, qh[mt][kk][0], ql[mt][kk][0]), split(x1.x, qh[mt][kk][1], ql[mt][kk][1]);
                        split(x0.y, qh[mt][kk][2], ql[mt][kk][2]), split(x1.y, qh[mt][kk][3], ql[mt][kk][3]);
                    }
            }
        }
        const bool slow = bad != 0 || qbad; /* this tile on CUDA cores (block-uniform) */
        if (t + 1 < ntiles) { /* the other buffers were last read in iteration t - 1, before this barrier */
            load_rows<D, KLD, BN, NT>(smem_u32(Ks + (buf ^ 1) * BN * KLD), kg + (int64_t)(n0 + BN) * p.k_ss, p.k_ss, n_end - n0 - BN, tid);
            load_rows<D, VLD, BN, NT>(smem_u32(Vs + (buf ^ 1) * BN * VLD), vg + (int64_t)(n0 + BN) * p.v_ss, p.v_ss, n_end - n0 - BN, tid);
        }
        cp_commit();

        /* an m-tile that sees no key of the tile is computed anyway (fully masked: p = 0) */
        const bool active = warp_rows && (!p.causal || n0 <= whi + off);
        if (!active) continue; /* no barrier below: the warp may move on */
        int kc_end = n_end - n0 < BN ? (n_end - n0 + 7) / 8 : NS; /* 8-key chunks of P·V this warp needs */
        if (p.causal) {
            const int last = whi + off - n0;
            if (last < BN - 1 && last / 8 + 1 < kc_end) kc_end = last / 8 + 1;
        }

        float s[MT][NS][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int j = 0; j < NS; j++) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
        if (!slow) {
#pragma unroll
            for (int kk = 0; kk < KD; kk++) {
                uint32_t ah[MT][4], al[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    if (QREG) {
#pragma unroll
                        for (int i = 0; i < 4; i++) ah[mt][i] = qh[QREG ? mt : 0][QREG ? kk : 0][i], al[mt][i] = ql[QREG ? mt : 0][QREG ? kk : 0][i];
                    } else {
                        const float2 x0 = *reinterpret_cast<const float2 *>(QW(mt) + 8 * kk);
                        const float2 x1 = *reinterpret_cast<const float2 *>(QW(mt) + 8 * QLD + 8 * kk);
                        split(x0.x, ah[mt][0], al[mt][0]), split(x1.x, ah[mt][1], al[mt][1]);
                        split(x0.y, ah[mt][2], al[mt][2]), split(x1.y, ah[mt][3], al[mt][3]);
                    }
                }
#pragma unroll
                for (int j = 0; j < NS; j++) {
                    const float2 kx = *reinterpret_cast<const float2 *>(Kt + (8 * j + g) * KLD + 8 * kk + 2 * c4);
                    uint32_t bh0, bl0, bh1, bl1;
                    split(kx.x, bh0, bl0), split(kx.y, bh1, bl1);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) mma3(s[mt][j], ah[mt], al[mt], bh0, bh1, bl0, bl1);
                }
            }
        } else { /* exact float32 dot products: s[mt][j][e] = Q[row g + 8(e>>1)] · K[key 8j + 2c + (e&1)] */
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int j = 0; j < NS; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const float *qr = QW(mt) - 2 * c4 + (e >> 1) * 8 * QLD;
                        const float *kr = Kt + (8 * j + 2 * c4 + (e & 1)) * KLD;
                        float acc = 0.f;
#pragma unroll 8
                        for (int d = 0; d < D; d++) acc = fmaf(qr[d], kr[d], acc);
                        s[mt][j][e] = acc;
                    }
        }

        /* scale to the log2 domain, mask, online softmax (rows g: elements 0, 1; g + 8: elements 2, 3) */
        float alpha[MT][2];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            const int rfirst = m0 + LR(mt);
            const bool need_mask = n0 + BN > L || (p.causal && n0 + BN - 1 > rfirst + off);
#pragma unroll
            for (int j = 0; j < NS; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    s[mt][j][e] *= pre;
                    if (need_mask) {
                        const int col = n0 + 8 * j + 2 * c4 + (e & 1), row = rfirst + g + ((e >> 1) << 3);
                        if (col >= L || (p.causal && col > row + off)) s[mt][j][e] = -INFINITY;
                    }
                }
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float mx = -INFINITY;
#pragma unroll
                for (int j = 0; j < NS; j++) mx = fmaxf(mx, fmaxf(s[mt][j][2 * r], s[mt][j][2 * r + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float m_new = fmaxf(mrow[mt][r], mx);
                const float m_use = m_new == -INFINITY ? 0.f : m_new;
                alpha[mt][r] = ex2(mrow[mt][r] - m_use);
                mrow[mt][r] = m_new;
                float rs = 0.f;
#pragma unroll
                for (int j = 0; j < NS; j++) {
                    s[mt][j][2 * r] = ex2(s[mt][j][2 * r] - m_use);
                    s[mt][j][2 * r + 1] = ex2(s[mt][j][2 * r + 1] - m_use);
                    rs += s[mt][j][2 * r] + s[mt][j][2 * r + 1];
                }
                lrow[mt][r] = lrow[mt][r] * alpha[mt][r] + rs;
            }
        }

        if (!slow) {
            /* O = O·alpha + P·V_t, P·V_t accumulated in fresh registers and added on CUDA cores: the tensor core's
             * float32 accumulation is not round-to-nearest, and a running O fed through it for every key tile
             * drifted by ~S/8·3 such additions (measured: 3e-5 relative at S = 4096 against ~1e-6 so). The
             * d-tiles are the inner loop: ND·MT independent accumulator chains per key chunk. */
            float pv[MT][ND][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int d = 0; d < ND; d++) pv[mt][d][0] = pv[mt][d][1] = pv[mt][d][2] = pv[mt][d][3] = 0.f;
#pragma unroll
            for (int kc = 0; kc < NS; kc++) {
                if (kc >= kc_end) break; /* warp-uniform */
                uint32_t ph[MT][4], pl[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    split(s[mt][kc][0], ph[mt][0], pl[mt][0]), split(s[mt][kc][2], ph[mt][1], pl[mt][1]);
                    split(s[mt][kc][1], ph[mt][2], pl[mt][2]), split(s[mt][kc][3], ph[mt][3], pl[mt][3]);
                }
                const float *v0 = Vt + (8 * kc + 2 * c4) * VLD + g, *v1 = v0 + VLD;
#pragma unroll
                for (int d = 0; d < ND; d++) {
                    uint32_t bh0, bl0, bh1, bl1;
                    split(v0[8 * d], bh0, bl0), split(v1[8 * d], bh1, bl1);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) mma3(pv[mt][d], ph[mt], pl[mt], bh0, bh1, bl0, bl1);
                }
            }
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int d = 0; d < ND; d++) {
                    o[mt][d][0] = fmaf(o[mt][d][0], alpha[mt][0], pv[mt][d][0]);
                    o[mt][d][1] = fmaf(o[mt][d][1], alpha[mt][0], pv[mt][d][1]);
                    o[mt][d][2] = fmaf(o[mt][d][2], alpha[mt][1], pv[mt][d][2]);
                    o[mt][d][3] = fmaf(o[mt][d][3], alpha[mt][1], pv[mt][d][3]);
                }
        } else { /* p·v on CUDA cores where p != 0; P[row][key 8j + 2cc + hb] is s[j][hb (+2)] of lane 4g + cc */
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
#pragma unroll
                for (int d = 0; d < ND; d++) {
                    o[mt][d][0] *= alpha[mt][0], o[mt][d][1] *= alpha[mt][0];
                    o[mt][d][2] *= alpha[mt][1], o[mt][d][3] *= alpha[mt][1];
                }
#pragma unroll
                for (int j = 0; j < NS; j++)
#pragma unroll
                    for (int hb = 0; hb < 2; hb++)
#pragma unroll 1
                        for (int cc = 0; cc < 4; cc++) {
                            const int src = (lane & ~3) | cc;
                            const float p0 = __shfl_sync(0xffffffffu, s[mt][j][hb], src);     /* row g */
                            const float p1 = __shfl_sync(0xffffffffu, s[mt][j][hb + 2], src); /* row g + 8 */
                            const float *vr = Vt + (8 * j + 2 * cc + hb) * VLD + 2 * c4;
#pragma unroll
                            for (int d = 0; d < ND; d++) {
                                const float va = vr[8 * d], vb = vr[8 * d + 1];
                                if (p0 != 0.f) o[mt][d][0] = fmaf(p0, va, o[mt][d][0]), o[mt][d][1] = fmaf(p0, vb, o[mt][d][1]);
                                if (p1 != 0.f) o[mt][d][2] = fmaf(p1, va, o[mt][d][2]), o[mt][d][3] = fmaf(p1, vb, o[mt][d][3]);
                            }
                        }
            }
        }
    }
    cp_wait<0>();

    if (!warp_rows) return;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float l = lrow[mt][r];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            const int row = m0 + LR(mt) + g + 8 * r;
            if (row >= p.sq) continue;
            const float inv = l == 0.f ? 0.f : 1.f / l; /* NaN stays NaN */
            float *orow = og + (int64_t)row * p.o_ss + 2 * c4;
#pragma unroll
            for (int d = 0; d < ND; d++)
                *reinterpret_cast<float2 *>(orow + 8 * d) = make_float2(o[mt][d][2 * r] * inv, o[mt][d][2 * r + 1] * inv);
            if (lg && c4 == 0) {
                const float m_use = mrow[mt][r] == -INFINITY ? 0.f : mrow[mt][r];
                lg[row] = l == 0.f ? -INFINITY : (m_use + log2f(l)) * 0.69314718055994531f;
            }
        }
#undef QW
#undef LR
}

template <int D, int BN, int NW, int MT> constexpr size_t smem_bytes() {
    return (size_t)(16 * NW * MT * (D + 8) + 2 * BN * (D + 8) + 2 * BN * (D + 4)) * 4;
}

template <int D, int BN, int NW, int MT, bool QREG, int MINB>
cudaError_t launch(lc_sdpa_mma_params p, int64_t bh, cudaStream_t stream) {
    constexpr size_t smem = smem_bytes<D, BN, NW, MT>();
    constexpr int BM = 16 * NW * MT;
    p.n_qt = (p.sq + BM - 1) / BM;
    p.bh = bh;
    const int64_t blocks = (int64_t)p.n_qt * bh;
    if (blocks < 1 || blocks > 0x7fffffff) return cudaErrorInvalidValue;
    static int done[64];
    const cudaError_t e = prepare_once(sdpa_tf32_kernel<D, BN, NW, MT, QREG, MINB>, smem, done);
    if (e != cudaSuccess) return e;
    sdpa_tf32_kernel<D, BN, NW, MT, QREG, MINB><<<(unsigned)blocks, NW * 32, smem, stream>>>(p);
    return cudaGetLastError();
}

} // namespace lc_sdpa_tf32

using namespace lc_sdpa_tf32;

/* Variants (runtime A/B through LC_SDPA_TF32_VARIANT, sdpa_mma_cuda.cu): index, name, D, BN, NW, MT, QREG, MINB.
 * H100 2026-12-06 (B·H = 32, S 1k/4k, causal and not; scripts/device/f32_sdpa.py): D 64: v7 54-60 TFLOP/s
 * (non-causal, causal S = 4k: 47.5), v0 best for causal S = 1k, 2k (40.5 / 39.8 against v7's 37.5 / 37.2: 64-row blocks balance
 * the short causal rows better); D 128: v4 30.7-56.0, v2 / v3 up to 9% slower. lc_sdpa_tf32_pick chooses.
 * scripts/sdpa_mma_emu/emu_tf32.cpp mirrors this list (keep them in step). */
#define SDPA_TF32_LIST(X)                                                                                      \
    X(0, "d64_m64n64q", 64, 64, 4, 1, true, 2)      /* D 64 causal S < 3k: Q split once, in registers */           \
    X(1, "d64_m64n64", 64, 64, 4, 1, false, 2)      /* Q re-read and split per tile */                         \
    X(2, "d128_m64n32", 128, 32, 4, 1, false, 2)    /* 64 rows x 32 keys, 2 blocks per SM */                   \
    X(3, "d128_m128n32", 128, 32, 8, 1, false, 1)   /* 128 rows, 8 warps */                                    \
    X(4, "d128_m128n64", 128, 64, 8, 1, false, 1)   /* D 128 default: 128 rows x 64 keys, 8 warps, 207 KB */   \
    X(5, "d64_m64n32b3", 64, 32, 4, 1, false, 3)    /* 64 x 32 keys, 3 blocks per SM (<= 170 registers) */     \
    X(6, "d64_m128n32w4x2", 64, 32, 4, 2, false, 2) /* 2 m-tiles a warp: each K/V fragment serves both */      \
    X(7, "d64_m128n64w4x2", 64, 64, 4, 2, false, 2) /* D 64 default: as v6 with 64-key tiles (109 KB) */

/* The default variant of a call, and its query rows per block (16·NW·MT of the list; the dispatcher's fill rule). */
int lc_sdpa_tf32_pick(int head_dim, int causal, int64_t sq, int *rows) {
    const int v = head_dim == 128 ? 4 : (causal && sq < 3072 ? 0 : 7);
    if (rows) {
        switch (v) {
#define SDPA_TF32_ROWS(i, name, D, BN, NW, MT, QREG, MINB)                                                        \
    case i:                                                                                                    \
        *rows = 16 * NW * MT;                                                                                  \
        break;
            SDPA_TF32_LIST(SDPA_TF32_ROWS)
#undef SDPA_TF32_ROWS
        }
    }
    return v;
}

int lc_sdpa_tf32_variants(void) {
    int n = 0;
#define SDPA_TF32_COUNT(i, name, D, BN, NW, MT, QREG, MINB) n = i + 1;
    SDPA_TF32_LIST(SDPA_TF32_COUNT)
#undef SDPA_TF32_COUNT
    return n;
}

/* variant -1: lc_sdpa_tf32_pick's; a variant of another head_dim is cudaErrorInvalidValue. */
cudaError_t lc_sdpa_tf32_launch(lc_sdpa_mma_params p, int head_dim, int variant, int64_t bh, cudaStream_t stream,
                                const char **path) {
    if (variant < 0) variant = lc_sdpa_tf32_pick(head_dim, p.causal, p.sq, NULL);
    switch (variant) {
#define SDPA_TF32_CASE(i, name, D, BN, NW, MT, QREG, MINB)                                                        \
    case i:                                                                                                    \
        if (head_dim != D) return cudaErrorInvalidValue;                                                       \
        if (path) *path = "sdpa_tf32x3_" name;                                                                 \
        return launch<D, BN, NW, MT, QREG, MINB>(p, bh, stream);
        SDPA_TF32_LIST(SDPA_TF32_CASE)
#undef SDPA_TF32_CASE
    default:
        return cudaErrorInvalidValue;
    }
}
