/* sdpa_mma.cuh — the tensor-core flash-attention forward kernel (FlashAttention-2 style) for float16 and
 * bfloat16 on sm_80+ (built for sm_90): the kernel template, included by sdpa_mma_d64.cu and sdpa_mma_d128.cu
 * (one instantiation set per head_dim, so `make -j2` compiles them in parallel); the entry points
 * (lc_cuda_sdpa_mma_fits / lc_cuda_launch_sdpa_mma) are in sdpa_mma_cuda.cu.
 *
 * Semantics: lc_sdpa_args (src/core/backend.h) restricted to what lc_cuda_sdpa_mma_fits accepts: q, k, v,
 * out [b, h|hkv, s, D] with d-stride 1 and 16-byte aligned rows, no mask, causal or not (diagonal aligned to
 * the end of the valid keys), a sliding window or not, key_lengths int32/int64, GQA (query head h reads kv head h / group), lse
 * optional. Tests: tests/c/test_sdpa_mma.c (GPU machine only), tests/python/test_sdpa.py on "cuda".
 *
 * Block: NW warps, each with MT 16-row m-tiles (BM = 16·NW·MT query rows; m-tile mt of warp w = block rows
 * 16·NW·mt + 16w .. +15), key tiles of BN keys; the variants (sizes, Q in registers or re-read from shared
 * memory, F_* features) are listed in sdpa_mma_d64.cu / sdpa_mma_d128.cu and chosen at run time
 * (lc_cuda_sdpa_mma_set_variant, for A/B benchmarks; default per file). Shared memory: Q [BM][D],
 * K [2][BN][D], V [2][BN][D] (16-bit), each row of D elements stored as D/8 16-byte chunks
 * with chunk c of row r at position c ^ (r & 7) (the 8 row addresses of one ldmatrix 8x8 matrix are 8
 * consecutive rows at the same logical chunk: 8 different bank groups, no conflicts; the cp.async writes of
 * 8 consecutive threads fill one 128-byte span). Rows past the valid range are zero-filled by cp.async
 * (src-size 0), so keys >= the length never bring NaN/Inf into P·V.
 *
 * Pipeline (cp.async groups in order Q+K0, V0, K1, V1, ...): iteration t waits for K_t, syncs, starts K_t+1
 * into the other buffer (its previous tile was last read before this sync), computes S = Q·K_tᵀ and the
 * online softmax, waits for V_t, syncs, starts V_t+1, accumulates O += P·V_t. With F_ONEBAR (groups Q+K0, V0,
 * K1+V1, K2+V2, ...): iteration t waits for K_t and V_t, syncs once, starts K_t+1 and V_t+1, computes.
 *
 * mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16} fragments (lane = 4·g + c, g = lane>>2, c = lane&3):
 *   A (16x16, row-major; a0..a3, two 16-bit values each, the lower column in the low half):
 *     a0 = A[g][2c, 2c+1]  a1 = A[g+8][2c, 2c+1]  a2 = A[g][2c+8, 2c+9]  a3 = A[g+8][2c+8, 2c+9]
 *   B (16x8, k x n; b0, b1): b0 = B[2c, 2c+1][g]  b1 = B[2c+8, 2c+9][g]
 *   C (16x8 float32; c0..c3): c0, c1 = C[g][2c, 2c+1]  c2, c3 = C[g+8][2c, 2c+1]
 * ldmatrix.x4 (8x8 16-bit matrices m0..m3; lanes 8i..8i+7 give the row addresses of matrix i, rows 0..7 in
 * order; register ri receives matrix i): plain, lane gets M[g][2c, 2c+1]; .trans, lane gets M[2c, 2c+1][g].
 *   Q (A of S = Q·Kᵀ, d-chunk kk): m0 = Q[0..7][16kk..+7], m1 = Q[8..15][16kk..], m2 = Q[0..7][16kk+8..],
 *     m3 = Q[8..15][16kk+8..] -> a0..a3. Lane row = lane & 15, chunk = 2kk + (lane >> 4).
 *   K (B of S, B[d][key] = K[key][d], plain ldmatrix of K rows): keys n = 16np.., d-chunk kk:
 *     m0 = K[n..n+7][16kk..+7] = b0 of n-tile 2np, m1 = K[n..n+7][16kk+8..] = b1 of 2np,
 *     m2 = K[n+8..][16kk..] = b0 of 2np+1, m3 = K[n+8..][16kk+8..] = b1 of 2np+1.
 *     Lane key = 16np + (lane & 7) + 8·(lane >> 4), chunk = 2kk + ((lane >> 3) & 1).
 *   V (B of O = P·V, B[key][d] = V[key][d], ldmatrix.trans of V rows): keys 16kc.., d 16dp..:
 *     m0 = V[16kc..+7][16dp..+7] = b0 of d-tile 2dp, m1 = V[16kc+8..][16dp..] = b1 of 2dp,
 *     m2 = V[16kc..+7][16dp+8..] = b0 of 2dp+1, m3 = V[16kc+8..][16dp+8..] = b1 of 2dp+1.
 *     Lane key = 16kc + (lane & 7) + 8·((lane >> 3) & 1), chunk = 2dp + (lane >> 4).
 *   P (A of P·V, key chunk kc) from the S accumulators s[j] (n-tile j = keys 8j..8j+7):
 *     a0 = s[2kc][0,1], a1 = s[2kc][2,3], a2 = s[2kc+1][0,1], a3 = s[2kc+1][2,3] (rounded to 16 bits).
 * So a lane holds score/output rows g and g+8 of its warp; row max and sum reduce over the 4 lanes of a quad
 * (shfl_xor 1, 2); the sum is kept per lane and reduced once at the end.
 *
 * Softmax in the log2 domain: s' = score·scale·log2(e) (-inf where masked), m = running max, p = 2^(s'-m),
 * l = l·2^(m_old-m) + Σp; a row whose running max is still -inf uses 0 in place of m (p = 0, no NaN).
 * F_FOLD computes p = 2^(score·c - m) with one fma (c = |scale·log2 e|, Q negated once for a negative scale).
 * out = O / l rounded once (l = 0: zeros, lse -inf), lse = (m + log2 l)·ln 2.
 * Causal: the block's key loop stops at its last visible key; a warp skips tiles it cannot see and the P·V
 * chunks past its last visible key; scores are masked only in tiles that cross the diagonal or the length.
 * A sliding window is the mirror image: the key loop starts at the tile of the block's first visible key, a
 * warp skips tiles wholly left of its rows' windows and the P·V chunks before its first visible key, and
 * tiles that reach left of some row's window are masked (and vote) like diagonal tiles.
 * Such a tile's P·V would multiply p = 0 by a masked v row; the V barrier of such a tile also votes whether
 * the v tile holds a NaN/Inf (rare): then the block zeroes those values in shared memory, syncs, runs P·V as
 * usual and adds the visible ones separately (p·v per element, pv_correct, read from global memory), so a
 * masked NaN/Inf never reaches a row that cannot see it (the hot loop keeps one copy of P·V).
 * Grid: one block per (query tile, b·h), 1-D, heaviest (last) query tiles first for causal balance; causal
 * problems whose k/v fit in L2 run the tile index slowest (params.qt_major). */
#ifndef LC_CUDA_SDPA_MMA_CUH
#define LC_CUDA_SDPA_MMA_CUH

#include <cuda_runtime.h>
#include <stdint.h>

/* Kernel parameters (element strides; the 16-bit data as raw patterns; the float32 kernel of sdpa_tf32.cu
 * reads q, k, v and out as float). */
struct lc_sdpa_mma_params {
    const uint16_t *q, *k, *v;
    uint16_t *out;
    float *lse;                  /* NULL or [b, h, sq] */
    const void *key_lengths;     /* NULL or [b] int32 / int64 */
    int kl64;                    /* key_lengths is int64 */
    int64_t q_sb, q_sh, q_ss, k_sb, k_sh, k_ss, v_sb, v_sh, v_ss, o_sb, o_sh, o_ss;
    int heads, group;            /* group = heads / kv_heads */
    int sq, skv, causal, n_qt;   /* n_qt: query tiles per (b, h) */
    int window;                  /* 0: none; else row i sees keys j > i + L - sq - window (lc_sdpa_args) */
    int qt_major;                /* block order: 0 = (b·h, query tile) with the tile fastest (the blocks running at
                                    once share few heads' k/v in L2); 1 = (query tile, b·h), heaviest causal
                                    tiles of every head first (better balance when all k/v fits in L2) */
    int64_t bh;                  /* b · h (set by the launcher) */
    float scale_log2;            /* scale · log2(e) */
};

/* Per head_dim launchers (sdpa_mma_d64.cu, sdpa_mma_d128.cu): variant -1 = the file's default, else an index
 * below lc_sdpa_mma_variants_d*() (A/B benchmarking; cudaErrorInvalidValue past it); p.n_qt is set there. */
cudaError_t lc_sdpa_mma_launch_d64(lc_sdpa_mma_params p, int bf16, int variant, int64_t bh, cudaStream_t stream,
                                   const char **path);
cudaError_t lc_sdpa_mma_launch_d128(lc_sdpa_mma_params p, int bf16, int variant, int64_t bh, cudaStream_t stream,
                                    const char **path);
int lc_sdpa_mma_variants_d64(void);
int lc_sdpa_mma_variants_d128(void);
/* float32 3xTF32 kernel (sdpa_tf32.cu; reads q, k, v, out as float): variant -1 = head_dim's default, else an
 * index below lc_sdpa_tf32_variants() (one of another head_dim: cudaErrorInvalidValue). */
cudaError_t lc_sdpa_tf32_launch(lc_sdpa_mma_params p, int head_dim, int variant, int64_t bh, cudaStream_t stream,
                                const char **path);
int lc_sdpa_tf32_variants(void);
/* The variant a launch with variant -1 takes, and its query rows per block (rows may be NULL). */
int lc_sdpa_tf32_pick(int head_dim, int causal, int64_t sq, int *rows);

#ifdef LC_SDPA_MMA_KERNEL

#ifndef SDPA_MMA_FIXUP
#define SDPA_MMA_FIXUP 1
#endif

namespace lc_sdpa_mma {

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* c += a · b, m16n8k16, float32 accumulation. */
template <bool BF16> __device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    if (BF16) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                     "{%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    } else {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                     "{%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
}

__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* Two floats -> two 16-bit values in one register (lo in the low half), rounded to nearest even. */
template <bool BF16> __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    uint32_t r;
    if (BF16) asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    else asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

template <bool BF16> __device__ __forceinline__ float to_f32(uint32_t h16) {
    if (BF16) return __uint_as_float(h16 << 16);
    float f;
    asm("{ .reg .f16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }\n" : "=f"(f) : "h"((unsigned short)h16));
    return f;
}

/* 1 when either 16-bit half of x is Inf or NaN. */
template <bool BF16> __device__ __forceinline__ bool nonfinite2(uint32_t x) {
    const uint32_t e = BF16 ? 0x7f80u : 0x7c00u;
    return (x & e) == e || ((x >> 16) & e) == e;
}
/* x with its Inf/NaN halves replaced by 0. */
template <bool BF16> __device__ __forceinline__ uint32_t zero_nonfinite2(uint32_t x) {
    const uint32_t e = BF16 ? 0x7f80u : 0x7c00u;
    if ((x & e) == e) x &= 0xffff0000u;
    if (((x >> 16) & e) == e) x &= 0x0000ffffu;
    return x;
}

/* c ? a : b through PTX selp, opaque to the compiler (so a chain of them over a register array is never turned
 * back into a dynamically indexed array, which would live in local memory). */
__device__ __forceinline__ uint32_t selp(bool c, uint32_t a, uint32_t b) {
    uint32_t r;
    asm("{\n .reg .pred q;\n setp.ne.s32 q, %3, 0;\n selp.b32 %0, %1, %2, q;\n}\n" : "=r"(r) : "r"(a), "r"(b), "r"((int)c));
    return r;
}

/* The block's (b·h, query tile): heaviest causal tiles first, in the order p.qt_major picks. */
__device__ __forceinline__ void block_tile(const lc_sdpa_mma_params &p, int64_t &bh, int &qt) {
    if (p.qt_major) {
        const int64_t rank = blockIdx.x / p.bh;
        bh = blockIdx.x - rank * p.bh, qt = p.n_qt - 1 - (int)rank;
    } else {
        bh = blockIdx.x / p.n_qt, qt = p.n_qt - 1 - (int)(blockIdx.x - bh * p.n_qt);
    }
}

/* Valid keys of sequence b: key_lengths[b] clamped to [0, skv], else skv. */
__device__ __forceinline__ int key_len(const lc_sdpa_mma_params &p, int b) {
    int L = p.skv;
    if (p.key_lengths) {
        const int64_t x = p.kl64 ? ((const int64_t *)p.key_lengths)[b] : (int64_t)((const int32_t *)p.key_lengths)[b];
        L = x < 0 ? 0 : (x > p.skv ? p.skv : (int)x);
    }
    return L;
}

/* The end of the keys any row of a block sees (rows m0 .. m0 + bm - 1 of sequence length L, off = L - sq; keys
 * past it are hidden from every row): L, or with causal (row i sees keys j <= i + off) its last row's last key + 1. */
__device__ __forceinline__ int block_key_end(const lc_sdpa_mma_params &p, int L, int off, int m0, int bm) {
    int n_end = L;
    if (p.causal && min(m0 + bm, p.sq) + off < n_end) n_end = min(m0 + bm, p.sq) + off;
    return n_end;
}

/* A block no row of which sees a key: zeros in its rows (D elements of T each, as 16-byte chunks), lse -inf. */
template <typename T, int D, int NT>
__device__ __forceinline__ void write_empty(T *og, int64_t o_ss, float *lg, int m0, int rows, int tid) {
    constexpr int E = 16 / sizeof(T), CH = D / E;
    for (int i = tid; i < rows * CH; i += NT) {
        const int r = i / CH, c = i % CH;
        *reinterpret_cast<uint4 *>(og + (int64_t)(m0 + r) * o_ss + c * E) = make_uint4(0, 0, 0, 0);
    }
    if (lg)
        for (int r = tid; r < rows; r += NT) lg[m0 + r] = -INFINITY;
}

/* Element offset of (row r, 16-byte chunk c) in a [rows][D] swizzled tile. */
template <int D> __device__ __forceinline__ int swz(int r, int c) { return r * D + ((c ^ (r & 7)) << 3); }

/* ROWS rows of D elements from g (its row 0 = the tile's row 0; row stride st elements) into the swizzled
 * tile at shared address sb; rows >= nvalid are zero-filled without reading (their address is g's). Thread
 * tid moves chunk tid % CH of rows tid / CH + RS·it (RS = NT / CH, a multiple of 8, so the swizzle of a
 * thread's chunks is the same in every step and the shared addresses differ by immediates). The source
 * pointer advances by a step the compiler must treat as changing (empty asm), so it is not tempted to hold
 * ROWS / RS precomputed 64-bit addresses across the key loop. */
template <int D, int ROWS, int NT>
__device__ __forceinline__ void load_tile(uint32_t sb, const uint16_t *g, int64_t st, int nvalid, int tid) {
    constexpr int CH = D / 8, RS = NT / CH;
    static_assert(NT % CH == 0 && RS % 8 == 0 && ROWS % RS == 0, "tile chunks must divide among the threads");
    const int r0 = tid / CH, c = tid % CH;
    const uint32_t d0 = sb + 2u * (uint32_t)swz<D>(r0, c);
    const uint16_t *src = g + (int64_t)r0 * st + c * 8;
    int64_t step = RS * st;
#pragma unroll
    for (int it = 0; it < ROWS / RS; it++) {
        const bool ok = r0 + it * RS < nvalid;
        cp_async16(d0 + (uint32_t)(it * RS * D * 2), ok ? src : g, ok ? 16 : 0);
        asm volatile("" : "+l"(step));
        src += step;
    }
}

/* 1 when a chunk this thread loaded into the tile at t (load_tile's mapping) holds a NaN/Inf. */
template <int D, int ROWS, int NT, bool BF16> __device__ __forceinline__ bool tile_nonfinite(const uint16_t *t, int tid) {
    constexpr int CH = D / 8, RS = NT / CH;
    const int r0 = tid / CH, c = tid % CH;
    bool bad = false;
#pragma unroll
    for (int it = 0; it < ROWS / RS; it++) {
        const uint4 x = *reinterpret_cast<const uint4 *>(t + swz<D>(r0 + it * RS, c));
        bad |= nonfinite2<BF16>(x.x) || nonfinite2<BF16>(x.y) || nonfinite2<BF16>(x.z) || nonfinite2<BF16>(x.w);
    }
    return bad;
}

/* Replaces the NaN/Inf halves of the chunks this thread loaded into the tile at t by 0 (after a vote said the
 * tile holds some; a barrier must follow before other threads read the tile). */
template <int D, int ROWS, int NT, bool BF16> __device__ __forceinline__ void tile_zero_nonfinite(uint16_t *t, int tid) {
    constexpr int CH = D / 8, RS = NT / CH;
    const int r0 = tid / CH, c = tid % CH;
#pragma unroll
    for (int it = 0; it < ROWS / RS; it++) {
        uint4 *q = reinterpret_cast<uint4 *>(t + swz<D>(r0 + it * RS, c));
        uint4 x = *q;
        x.x = zero_nonfinite2<BF16>(x.x), x.y = zero_nonfinite2<BF16>(x.y);
        x.z = zero_nonfinite2<BF16>(x.z), x.w = zero_nonfinite2<BF16>(x.w);
        *q = x;
    }
}

/* Rare path after O += P·V of a tile that needs masking and held a NaN/Inf v value (block vote): the product
 * ran on the tile with those values zeroed (tile_zero_nonfinite), so p = 0 times NaN never reached a row
 * that cannot see the key; here p·v is added per element for the visible NaN/Inf values only, read from
 * global memory (vrow0 = V's row n0, row stride vst; rows j < jend, all below the block's key end). A lane's
 * outputs o[mt][t][e] are row LR(mt) + g + 8(e>>1), d = 8t + 2c4 + (e&1); P[row][j] (tile key j) lives in
 * lane 4g + ((j & 7) >> 1), register pa[mt][j >> 4][(row >= 8) + 2((j & 15) >= 8)], half j & 1. */
template <int D, int NW, int MT, int KC, int ND, bool BF16>
__device__ __forceinline__ void pv_correct(float (&o)[MT][ND][4], const uint32_t (&pa)[MT][KC][4], int jend,
                                           const uint16_t *vrow0, int64_t vst, int n0, int m0, int warp, int lane,
                                           int L, int off, int causal, int window) {
    const int g = lane >> 2, c4 = lane & 3;
#pragma unroll 1
    for (int j = 0; j < jend; j++) {
        const uint16_t *vrow = vrow0 + (int64_t)j * vst + 2 * c4;
        uint32_t w[ND];
        bool any = false;
#pragma unroll
        for (int t = 0; t < ND; t++) {
            w[t] = *reinterpret_cast<const uint32_t *>(vrow + 8 * t);
            any |= nonfinite2<BF16>(w[t]);
        }
        if (!__any_sync(0xffffffffu, any)) continue;
        const int src = (lane & ~3) | ((j & 7) >> 1), key = n0 + j;
        const bool hi = (j & 15) >= 8;
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            uint32_t a0 = 0, a1 = 0; /* pa[mt][j >> 4][hi + (0, 1)] (selp: no dynamic index, pa stays in registers) */
#pragma unroll
            for (int kc = 0; kc < KC; kc++) {
                a0 = selp(kc == (j >> 4), selp(hi, pa[mt][kc][2], pa[mt][kc][0]), a0);
                a1 = selp(kc == (j >> 4), selp(hi, pa[mt][kc][3], pa[mt][kc][1]), a1);
            }
            const uint32_t p0 = __shfl_sync(0xffffffffu, a0, src); /* row g */
            const uint32_t p1 = __shfl_sync(0xffffffffu, a1, src); /* row g + 8 */
            const float pr[2] = {to_f32<BF16>((j & 1) ? p0 >> 16 : p0 & 0xffffu),
                                 to_f32<BF16>((j & 1) ? p1 >> 16 : p1 & 0xffffu)};
#pragma unroll
            for (int t = 0; t < ND; t++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const uint32_t vv = (e & 1) ? w[t] >> 16 : w[t] & 0xffffu;
                    const uint32_t ex = BF16 ? 0x7f80u : 0x7c00u;
                    if ((vv & ex) != ex) continue; /* finite: already in the mma */
                    const int row = m0 + mt * 16 * NW + warp * 16 + g + ((e >> 1) << 3);
                    const bool vis = key < L && (!causal || key <= row + off) && (!window || key > row + off - window);
                    if (vis) o[mt][t][e] += pr[e >> 1] * to_f32<BF16>(vv);
                }
        }
    }
}

/* Feature bits of a variant (template parameter FL; each is exact: results are bit-identical with and
 * without it, except FOLD, which rounds s·scale - m once (fma) instead of twice). */
enum {
    F_SKIP = 1, /* skip the O rescale of an m-tile when no row max of the warp moved (alpha = 1 exactly) */
    F_FOLD = 2, /* scale folded into the exponent: p = 2^(s·scale - m), max over raw scores (Q negated in
                   shared memory for a negative scale; scale 0 or NaN falls back to scaling first) */
    F_SOUT = 4, /* output staged through the warp's own Q rows in shared memory, stored as 16-byte rows */
    F_ONEBAR = 8, /* one barrier per key tile: wait for K_t and V_t together, then start K_t+1 and V_t+1 (both
                     buffers were last read in iteration t-1); else K and V each get a wait and a barrier */
    F_ALL = F_SKIP | F_FOLD | F_SOUT | F_ONEBAR,
};

/* D: head dim; BN: keys per tile; NW: warps; MT: 16-row m-tiles per warp (block rows BM = 16·NW·MT; warp w's
 * m-tile mt holds block rows 16·NW·mt + 16w .. +15, so every warp has rows near both ends of the block and
 * causal work stays balanced between warps); QREG: Q fragments kept in registers for the whole key loop (else
 * re-read from shared memory per tile, as two m-tiles of D = 128 leave no registers for them); FL: F_* bits;
 * MINB: resident blocks per SM asked of ptxas (register cap). */
template <int D, int BN, int NW, int MT, bool QREG, int FL, int MINB, bool BF16>
__global__ void __launch_bounds__(NW * 32, MINB) sdpa_mma_kernel(const lc_sdpa_mma_params p) {
    constexpr int BM = NW * 16 * MT, NT = NW * 32;
    constexpr int KD = D / 16;  /* k16 steps of Q·Kᵀ */
    constexpr int NS = BN / 8;  /* n8 tiles of S */
    constexpr int KC = BN / 16; /* k16 steps of P·V */
    constexpr int ND = D / 8;   /* n8 tiles of O */
    constexpr bool SKIP = (FL & F_SKIP) != 0, FOLD = (FL & F_FOLD) != 0, SOUT = (FL & F_SOUT) != 0;
    constexpr bool ONEBAR = (FL & F_ONEBAR) != 0;
    static_assert(NS % 2 == 0 && ND % 2 == 0 && MT >= 1, "tile shape");
    extern __shared__ uint4 lc_sdpa_mma_smem[];
    uint16_t *Qs = reinterpret_cast<uint16_t *>(lc_sdpa_mma_smem);
    uint16_t *Ks = Qs + BM * D;
    uint16_t *Vs = Ks + 2 * BN * D;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, c4 = lane & 3;
    int64_t bh;
    int qt;
    block_tile(p, bh, qt);
    const int b = (int)(bh / p.heads), h = (int)(bh - (int64_t)b * p.heads), hk = h / p.group;
    const int m0 = qt * BM;
    /* block-relative first row of m-tile mt of this warp */
#define LR(mt) ((mt) * 16 * NW + warp * 16)
    const int wlo = m0 + LR(0), whi = m0 + LR(MT - 1) + 15; /* first and last row of the warp */

    int L = key_len(p, b);
    const int off = L - p.sq; /* causal: row i sees keys j <= i + off */
    const int n_end = block_key_end(p, L, off, m0, BM);
    const int ntiles = n_end > 0 ? (n_end + BN - 1) / BN : 0;
    /* window: keys before the block's first row's first key are hidden from every row; tiles from t_first */
    const int t_first = p.window ? min(max(0, m0 + off - p.window + 1) / BN, ntiles) : 0;

    const uint16_t *qg = p.q + b * p.q_sb + h * p.q_sh;
    const uint16_t *kg = p.k + b * p.k_sb + hk * p.k_sh;
    const uint16_t *vg = p.v + b * p.v_sb + hk * p.v_sh;
    uint16_t *og = p.out + b * p.o_sb + h * p.o_sh;
    float *lg = p.lse ? p.lse + bh * p.sq : nullptr;

    if (t_first >= ntiles) { /* no row of this block sees a key */
        write_empty<uint16_t, D, NT>(og, p.o_ss, lg, m0, min(BM, p.sq - m0), tid);
        return;
    }

    load_tile<D, BM, NT>(smem_u32(Qs), qg + (int64_t)m0 * p.q_ss, p.q_ss, p.sq - m0, tid);
    load_tile<D, BN, NT>(smem_u32(Ks), kg + (int64_t)t_first * BN * p.k_ss, p.k_ss, n_end - t_first * BN, tid);
    cp_commit();
    load_tile<D, BN, NT>(smem_u32(Vs), vg + (int64_t)t_first * BN * p.v_ss, p.v_ss, n_end - t_first * BN, tid);
    cp_commit();

    /* FOLD: sc > 0 multiplies raw scores inside the exponent (a negative scale negates Q instead); without
     * it (or for scale 0 / NaN) the scores are multiplied by pre first and sc = 1. */
    float sc = 1.f, pre = p.scale_log2;
    const bool negate_q = FOLD && p.scale_log2 < 0.f;
    if (FOLD && (p.scale_log2 > 0.f || negate_q)) sc = fabsf(p.scale_log2), pre = 1.f;
    const bool prescale = pre != 1.f;

    cp_wait<1>();
    if (negate_q) { /* this thread's own Q chunks (visible to it after the wait): flip the sign bits */
#pragma unroll
        for (int it = 0; it < BM * (D / 8) / NT; it++) {
            const int i = tid + it * NT;
            uint4 *q4 = reinterpret_cast<uint4 *>(Qs + swz<D>(i / (D / 8), i % (D / 8)));
            uint4 x = *q4;
            x.x ^= 0x80008000u, x.y ^= 0x80008000u, x.z ^= 0x80008000u, x.w ^= 0x80008000u;
            *q4 = x;
        }
    }
    __syncthreads();
    /* ldmatrix addresses: every lane's row r has r & 7 = lane & 7 = x, so chunk 2kk + hi of it sits at byte
     * ((32kk + 16hi) ^ 16x) = 128(kk >> 2) + ((32(kk & 3) + 16hi) ^ 16x) of the row (16x < 128 <= row bytes):
     * four per-lane offsets per operand, the rest are immediates (keeps ptxas from holding one address
     * register per ldmatrix of the unrolled loops). */
    constexpr uint32_t RB = D * 2; /* bytes per smem row */
    uint32_t qofs[4], kofs[4], vofs[4];
    {
        const uint32_t x16 = (uint32_t)(lane & 7) << 4, hi4 = (uint32_t)(lane >> 4), hi3 = (uint32_t)((lane >> 3) & 1);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            qofs[j] = smem_u32(Qs) + (uint32_t)(LR(0) + (lane & 15)) * RB + ((32u * j + 16u * hi4) ^ x16);
            kofs[j] = (uint32_t)((lane & 7) + (hi4 << 3)) * RB + ((32u * j + 16u * hi3) ^ x16);
            vofs[j] = (uint32_t)((lane & 7) + (hi3 << 3)) * RB + ((32u * j + 16u * hi4) ^ x16);
        }
    }
#define QADDR(mt, kk) (qofs[(kk) & 3] + (uint32_t)((mt) * 16 * NW * RB + 128 * ((kk) >> 2)))
    uint32_t qf[QREG ? MT : 1][QREG ? KD : 1][4];
    if (QREG) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int kk = 0; kk < KD; kk++) ldsm_x4(qf[QREG ? mt : 0][QREG ? kk : 0], QADDR(mt, kk));
    }

    float o[MT][ND][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int t = 0; t < ND; t++) o[mt][t][0] = o[mt][t][1] = o[mt][t][2] = o[mt][t][3] = 0.f;
    float mrow[MT][2], lrow[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) mrow[mt][0] = mrow[mt][1] = -INFINITY, lrow[mt][0] = lrow[mt][1] = 0.f;
    const bool warp_rows = wlo < p.sq; /* a warp wholly past sq computes nothing */

    for (int t = t_first; t < ntiles; t++) {
        const int n0 = t * BN, buf = (t - t_first) & 1;
        const uint16_t *Vt = Vs + buf * BN * D;
        const uint32_t kt_u = smem_u32(Ks) + (uint32_t)(buf * BN) * RB, vt_u = smem_u32(Vt);
        /* A tile that needs masking for some row of the block: its V barrier also votes whether V_t holds a
         * NaN/Inf (each thread checks the chunks it loaded, then zeroes those values there; pv_correct adds
         * them back for the rows that see them). */
        const bool vote = SDPA_MMA_FIXUP && (n0 + BN > L || (p.causal && n0 + BN - 1 > m0 + off) ||
                                             (p.window && n0 <= m0 + BM - 1 + off - p.window));
        bool vbad = false;
        if (ONEBAR) { /* K_t and V_t, one barrier, then K_t+1 and V_t+1 (buffers last read in iteration t-1) */
            cp_wait<0>();
            if (vote)
                vbad = __syncthreads_or(tile_nonfinite<D, BN, NT, BF16>(Vs + buf * BN * D, tid));
            else
                __syncthreads();
            if (vbad) tile_zero_nonfinite<D, BN, NT, BF16>(Vs + buf * BN * D, tid); /* barrier before P·V */
            if (t + 1 < ntiles) {
                load_tile<D, BN, NT>(smem_u32(Ks + (buf ^ 1) * BN * D), kg + (int64_t)(n0 + BN) * p.k_ss, p.k_ss, n_end - n0 - BN, tid);
                load_tile<D, BN, NT>(smem_u32(Vs + (buf ^ 1) * BN * D), vg + (int64_t)(n0 + BN) * p.v_ss, p.v_ss, n_end - n0 - BN, tid);
            }
            cp_commit();
        } else {
            cp_wait<1>(); /* K_t (V_t may still be in flight) */
            __syncthreads();
            if (t + 1 < ntiles) load_tile<D, BN, NT>(smem_u32(Ks + (buf ^ 1) * BN * D), kg + (int64_t)(n0 + BN) * p.k_ss, p.k_ss, n_end - n0 - BN, tid);
            cp_commit();
        }

        /* This warp's rows see some key of the tile (warp-uniform); an m-tile that sees none is computed anyway
         * (fully masked: p = 0), only the ldmatrix traffic of the warp is shared. */
        const bool active = warp_rows && (!p.causal || n0 <= whi + off) && (!p.window || n0 + BN - 1 > wlo + off - p.window);
        /* key chunks of P·V this warp needs: up to its last visible key (p = 0 and v = 0 past n_end) */
        int kc_end = n_end - n0 < BN ? (n_end - n0 + 15) / 16 : KC;
        if (p.causal) {
            const int last = whi + off - n0; /* last visible key of the warp, tile-relative */
            if (last < BN - 1 && last / 16 + 1 < kc_end) kc_end = last / 16 + 1;
        }
        int kc_begin = 0; /* window: key chunks before the warp's first visible key hold p = 0 for all its rows */
        if (p.window) {
            const int first = wlo + off - p.window + 1 - n0; /* first visible key of the warp, tile-relative */
            if (first > 0) kc_begin = first / 16;
        }
        uint32_t pa[MT][KC][4];
        if (active) {
            float s[MT][NS][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int j = 0; j < NS; j++) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < KD; kk++) {
                uint32_t qa[QREG ? 1 : MT][4];
                if (!QREG) {
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) ldsm_x4(qa[QREG ? 0 : mt], QADDR(mt, kk));
                }
#pragma unroll
                for (int np = 0; np < NS / 2; np++) {
                    uint32_t kb[4];
                    ldsm_x4(kb, kt_u + kofs[kk & 3] + (uint32_t)(np * 16 * RB + 128 * (kk >> 2)));
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        const uint32_t(&qm)[4] = QREG ? qf[QREG ? mt : 0][QREG ? kk : 0] : qa[QREG ? 0 : mt];
                        mma16816<BF16>(s[mt][2 * np], qm, kb[0], kb[1]);
                        mma16816<BF16>(s[mt][2 * np + 1], qm, kb[2], kb[3]);
                    }
                }
            }
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                const int rfirst = m0 + LR(mt);
                const bool need_mask = n0 + BN > L || (p.causal && n0 + BN - 1 > rfirst + off) ||
                                       (p.window && n0 <= rfirst + 15 + off - p.window);
                if (prescale) { /* to the log2 domain first (no FOLD, or scale 0 / NaN) */
#pragma unroll
                    for (int j = 0; j < NS; j++)
#pragma unroll
                        for (int e = 0; e < 4; e++) s[mt][j][e] *= pre;
                }
                if (need_mask) {
#pragma unroll
                    for (int j = 0; j < NS; j++)
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            const int col = n0 + 8 * j + 2 * c4 + (e & 1);
                            const int row = rfirst + g + ((e >> 1) << 3);
                            if (col >= L || (p.causal && col > row + off) || (p.window && col <= row + off - p.window))
                                s[mt][j][e] = -INFINITY;
                        }
                }
                /* online softmax, rows g (r = 0: elements 0, 1) and g + 8 (r = 1: elements 2, 3) */
                float alpha[2];
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    float mx = -INFINITY;
#pragma unroll
                    for (int j = 0; j < NS; j++) mx = fmaxf(mx, fmaxf(s[mt][j][2 * r], s[mt][j][2 * r + 1]));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                    const float m_new = fmaxf(mrow[mt][r], mx * sc); /* sc > 0: -inf stays -inf */
                    const float m_use = m_new == -INFINITY ? 0.f : m_new;
                    alpha[r] = ex2(mrow[mt][r] - m_use);
                    mrow[mt][r] = m_new;
                    float rs = 0.f;
#pragma unroll
                    for (int j = 0; j < NS; j++) {
                        s[mt][j][2 * r] = ex2(fmaf(s[mt][j][2 * r], sc, -m_use));
                        s[mt][j][2 * r + 1] = ex2(fmaf(s[mt][j][2 * r + 1], sc, -m_use));
                        rs += s[mt][j][2 * r] + s[mt][j][2 * r + 1];
                    }
                    lrow[mt][r] = lrow[mt][r] * alpha[r] + rs;
                }
                if (!SKIP || __any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
                    for (int d = 0; d < ND; d++) {
                        o[mt][d][0] *= alpha[0], o[mt][d][1] *= alpha[0];
                        o[mt][d][2] *= alpha[1], o[mt][d][3] *= alpha[1];
                    }
                }
#pragma unroll
                for (int kc = 0; kc < KC; kc++) {
                    pa[mt][kc][0] = pack2<BF16>(s[mt][2 * kc][0], s[mt][2 * kc][1]);
                    pa[mt][kc][1] = pack2<BF16>(s[mt][2 * kc][2], s[mt][2 * kc][3]);
                    pa[mt][kc][2] = pack2<BF16>(s[mt][2 * kc + 1][0], s[mt][2 * kc + 1][1]);
                    pa[mt][kc][3] = pack2<BF16>(s[mt][2 * kc + 1][2], s[mt][2 * kc + 1][3]);
                }
            }
        }

        if (!ONEBAR) {
            cp_wait<1>(); /* V_t (K_t+1 may still be in flight) */
            if (vote)
                vbad = __syncthreads_or(tile_nonfinite<D, BN, NT, BF16>(Vs + buf * BN * D, tid));
            else
                __syncthreads();
            if (vbad) tile_zero_nonfinite<D, BN, NT, BF16>(Vs + buf * BN * D, tid); /* barrier before P·V */
            if (t + 1 < ntiles) load_tile<D, BN, NT>(smem_u32(Vs + (buf ^ 1) * BN * D), vg + (int64_t)(n0 + BN) * p.v_ss, p.v_ss, n_end - n0 - BN, tid);
            cp_commit();
        }

        if (vbad) __syncthreads(); /* the zeroed V_t (block-uniform) */
        if (active) {
#pragma unroll
            for (int kc = 0; kc < KC; kc++) {
                if (kc >= kc_end) break; /* warp-uniform */
                if (kc < kc_begin) continue;
#pragma unroll
                for (int dp = 0; dp < ND / 2; dp++) {
                    uint32_t vb[4];
                    ldsm_x4_t(vb, vt_u + vofs[dp & 3] + (uint32_t)(kc * 16 * RB + 128 * (dp >> 2)));
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma16816<BF16>(o[mt][2 * dp], pa[mt][kc], vb[0], vb[1]);
                        mma16816<BF16>(o[mt][2 * dp + 1], pa[mt][kc], vb[2], vb[3]);
                    }
                }
            }
            if (vbad)
                pv_correct<D, NW, MT, KC, ND, BF16>(o, pa, min(kc_end * 16, n_end - n0), vg + (int64_t)n0 * p.v_ss, p.v_ss,
                                                    n0, m0, warp, lane, L, off, p.causal, p.window);
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
            const int lr = LR(mt) + g + 8 * r, row = m0 + lr;
            const float inv = l == 0.f ? 0.f : 1.f / l; /* NaN stays NaN */
            if (SOUT) { /* into this warp's own Q rows (only this warp reads them; its Q reads are done) */
#pragma unroll
                for (int d = 0; d < ND; d++)
                    *reinterpret_cast<uint32_t *>(Qs + swz<D>(lr, d) + 2 * c4) =
                        pack2<BF16>(o[mt][d][2 * r] * inv, o[mt][d][2 * r + 1] * inv);
            } else if (row < p.sq) {
                uint16_t *orow = og + (int64_t)row * p.o_ss + 2 * c4;
#pragma unroll
                for (int d = 0; d < ND; d++)
                    *reinterpret_cast<uint32_t *>(orow + 8 * d) = pack2<BF16>(o[mt][d][2 * r] * inv, o[mt][d][2 * r + 1] * inv);
            }
            if (lg && c4 == 0 && row < p.sq) {
                const float m_use = mrow[mt][r] == -INFINITY ? 0.f : mrow[mt][r];
                lg[row] = l == 0.f ? -INFINITY : (m_use + log2f(l)) * 0.69314718055994531f;
            }
        }
    if (SOUT) {
        __syncwarp();
        constexpr int CH = D / 8; /* 16-byte chunks per row; a warp stores 32 / CH rows per step */
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int i = lane; i < 16 * CH; i += 32) {
                const int rr = i / CH, c = i % CH, lr = LR(mt) + rr, row = m0 + lr;
                if (row < p.sq)
                    *reinterpret_cast<uint4 *>(og + (int64_t)row * p.o_ss + c * 8) =
                        *reinterpret_cast<const uint4 *>(Qs + swz<D>(lr, c));
            }
    }
#undef QADDR
#undef LR
}

/* Dynamic shared memory of a configuration. */
template <int D, int BN, int NW, int MT> constexpr size_t smem_bytes() { return (size_t)(NW * 16 * MT + 4 * BN) * D * 2; }

/* Opts kernel in to smem bytes of dynamic shared memory and all of L1 as shared memory (so its resident
 * blocks fit; the kernels use no L1 otherwise), once per device and instantiation (done: the caller's static
 * flags; idempotent, so a race only repeats it). */
template <typename K> cudaError_t prepare_once(K kernel, size_t smem, int (&done)[64]) {
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    if (dev >= 0 && dev < 64 && __atomic_load_n(&done[dev], __ATOMIC_RELAXED)) return cudaSuccess;
    if (smem > 48 * 1024) {
        e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
    }
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, (int)cudaSharedmemCarveoutMaxShared);
    if (e != cudaSuccess) return e;
    if (dev >= 0 && dev < 64) __atomic_store_n(&done[dev], 1, __ATOMIC_RELAXED);
    return cudaSuccess;
}

/* Launch one configuration: opts in to its shared memory once per device, 1-D grid of n_qt · bh blocks. */
template <int D, int BN, int NW, int MT, bool QREG, int FL, int MINB, bool BF16>
cudaError_t launch(lc_sdpa_mma_params p, int64_t bh, cudaStream_t stream) {
    constexpr size_t smem = smem_bytes<D, BN, NW, MT>();
    constexpr int BM = NW * 16 * MT;
    p.n_qt = (p.sq + BM - 1) / BM;
    p.bh = bh;
    const int64_t blocks = (int64_t)p.n_qt * bh;
    if (blocks < 1 || blocks > 0x7fffffff) return cudaErrorInvalidValue;
    static int done[64];
    const cudaError_t e = prepare_once(sdpa_mma_kernel<D, BN, NW, MT, QREG, FL, MINB, BF16>, smem, done);
    if (e != cudaSuccess) return e;
    sdpa_mma_kernel<D, BN, NW, MT, QREG, FL, MINB, BF16><<<(unsigned)blocks, NW * 32, smem, stream>>>(p);
    return cudaGetLastError();
}

} // namespace lc_sdpa_mma

#endif /* LC_SDPA_MMA_KERNEL */
#endif
