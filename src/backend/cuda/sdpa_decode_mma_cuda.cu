/* sdpa_decode_mma_cuda.cu — the tensor-core decode path of the CUDA sdpa (sq <= 16 query rows against a
 * long key range, float16 / bfloat16, k and v rows 16-byte aligned with d-stride 1; semantics: lc_sdpa_args
 * in src/core/backend.h; plan and launcher in sdpa_cuda.cu, which falls back to sdpa_decode_cuda.cu for the
 * other decode shapes or with LC_SDPA_DECODE=simt).
 *
 * One block of 4 warps per (b, kv head, row group, key chunk). The rows of a (b, kv head) are the GQA
 * group's query heads × sq query rows (row r = g·sq + i reads head kvh·group + g); 16 of them (zero-padded)
 * are the M side of mma.sync m16n8k16, so each k/v byte of the chunk is read once for all of them. q (its
 * own 16-bit values, unscaled) is staged in shared memory (by cp.async with the first tile when its rows allow
 * 16-byte loads), then held as A fragments (DP <= 128) or reloaded
 * per k-step (DP 256). The chunk's keys stream through shared memory in tiles of 64 keys (k and v rows,
 * pitch DP + 8 elements so ldmatrix is conflict free) by cp.async, ST tiles in flight (ST = 4 for DP <= 64,
 * 3 above); columns >= head_dim and keys past the chunk are zero-filled, never read from global memory.
 * Warp w takes keys 16w..16w+15 of each tile: S = q·kᵀ on tensor cores (float32 accumulators), times
 * scale·log2(e) in float32, visibility (keys >= the chunk end, causal: key > i + L_b - sq, the window: key <=
 * i + L_b - sq - window, padded rows) and
 * the mask (ADD: + mask·log2 e; BOOL: -inf) per element (with a window the splits cut [kmin, kmax), kmin = the
 * block's first visible key from the device length, so one captured graph serves every step), an online softmax per row (the 4 lanes of a row
 * quad share its maximum), then O += P·V on tensor cores with P split in two 16-bit parts (p = hi + lo, both
 * multiplied: about 16 significant bits, so the result keeps float32-like accuracy). When keys can be hidden
 * inside the loaded range (a mask, or causal with sq > 1) a warp whose 16 v rows hold a non-finite value
 * does that tile's P·V in float32 on CUDA cores and skips p == 0, so a hidden NaN/Inf v cannot reach a row
 * (0·NaN would in an mma). At the end the warps merge (m, l, O) through shared memory; one split, or one
 * live split (the others hold no key: a cache far below its capacity) or keys spanning at most p.direct_keys
 * (split 0 takes them all; LC_SDPA_DECODE_DIRECT, 2 tiles by default) with the fold or the cluster: that
 * block writes out (and lse) and the others leave; with p.cluster the group's splits are one thread-block
 * cluster: each block leaves its
 * partial in its shared memory and, after a cluster barrier, merges outputs split·128 + tid, + nsplit·128, ...
 * of the group from every block's (distributed shared memory); else several splits write their unnormalised
 * partials (ws_o, ws_ml as sdpa_cuda.cuh describes), and with
 * p.fold the last block of the (b, kv head, row group) to finish (a device counter, put back to 0 by that
 * block; kernels of this path must not run concurrently on two streams) merges the partials and writes out,
 * else sd_combine runs after the kernel. Rows with no visible key: zeros (NaN with plain_nonfinite), lse -inf.
 * With the KV-cache append fused (p.tnew, the KV cache's attention with k_new / v_new; sd_params describes
 * it): the keys of this call's tokens are read from k_new / v_new, block (b, kv head, row group 0, split 0)
 * copies them into the caches, and the last block of each sequence advances its length (sdm_bctr), so a
 * decode step's append costs no launch of its own. With the rope fused as well (p.rd, the second kernel parameter
 * holding the inverse frequencies; KVCache.attention(positions=...)): q's rows and this call's keys are rotated in
 * shared memory as the rope op rotates them (rope.cuh; sdm_rope_rows, out of line), tile 0's keys together with
 * q, a later tile's at its turn, and the block holding the new keys (row group 0) writes them, rotated, into the
 * caches from its tile instead of the split-0 block.
 * Tests: tests/c/test_sdpa_cuda.c (GPU machine only; LC_SDPA_DECODE=simt runs the SIMT kernel instead),
 * tests/python/test_kv_cache_fused.py, tests/python/test_kv_cache_rope.py (the rope form against rope + append +
 * attention, bit for bit).
 */
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/sdpa_cuda.cuh"
#include "backend/cuda/lowp.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/rope.cuh"

#define SDM_NW 4
#define SDM_NT (SDM_NW * 32)
#define SDM_BK SD_DEC_MMA_BK
#define SDM_MAX_DEVICES 64

static_assert(SDM_BK == 16 * SDM_NW, "a warp takes 16 keys of a tile");

/* Finished splits per (b, kv head, row group) of the running launch; 0 between launches. */
__device__ unsigned sdm_ctr[SD_DEC_NCTR];
/* Fused append (p.tnew): blocks of sequence b that have read its length L0; 0 between launches. */
__device__ unsigned sdm_bctr[SD_DEC_NCTR];

/* Developer probe (scripts/device/decode_probe.sh builds with -DSDM_PROBE): thread 0 of each block stamps
 * %globaltimer at SDM_PROBE_SLOTS points of the kernel into sdm_probe (the last launch's), read back by
 * sdm_probe_read: 0 entry, 1 after the PDL wait, 8 the append's L0 known, 2 tiles issued, 3 first tile in shared
 * memory, 4 loop done, 9 the warps' partials in shared memory, 5 the block's partial, 6 after the cluster barrier,
 * 10 thread 0's outputs merged, 7 end. */
#ifdef SDM_PROBE
#define SDM_PROBE_BLOCKS 4096
#define SDM_PROBE_SLOTS 12
__device__ unsigned long long sdm_probe[SDM_PROBE_BLOCKS][SDM_PROBE_SLOTS];
#define SDM_STAMP(i)                                                                                           \
    do {                                                                                                       \
        if (threadIdx.x == 0 && blockIdx.x < SDM_PROBE_BLOCKS) {                                               \
            unsigned long long t_;                                                                             \
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t_));                                             \
            sdm_probe[blockIdx.x][i] = t_;                                                                     \
        }                                                                                                      \
    } while (0)
extern "C" int sdm_probe_read(unsigned long long *dst, size_t n) {
    return cudaMemcpyFromSymbol(dst, sdm_probe, n * SDM_PROBE_SLOTS * sizeof(unsigned long long)) == cudaSuccess ? 0 : -1;
}
#else
#define SDM_STAMP(i) ((void)0)
#endif

__host__ __device__ constexpr int sdm_stages(int dp) { return dp <= 64 ? 4 : 3; }
__host__ __device__ constexpr int sdm_pitch(int dp) { return dp + 8; }
/* q [16][pitch] + ST × (k, v) [64][pitch], 16-bit elements. */
__host__ __device__ constexpr size_t sdm_smem(int dp) {
    return (size_t)(16 + sdm_stages(dp) * 2 * SDM_BK) * (size_t)sdm_pitch(dp) * 2u;
}

__device__ __forceinline__ float sdm_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float sdm_f(__half x) { return __half2float(x); }

/* The second kernel parameter: nothing (a placeholder entry, never read: ROPE is false), or the fused rope's
 * inverse frequencies (p.rd / 2 used, float64). */
struct sdm_no_rope {
    double inv[1];
};
template <int N> struct sdm_rope_tab {
    double inv[N];
};
template <typename TAB> struct sdm_is_rope {
    static constexpr bool value = false;
};
template <int N> struct sdm_is_rope<sdm_rope_tab<N>> {
    static constexpr bool value = true;
};
#define SDM_MAX_SQ 16 /* sdpa_cuda.cu's SD_DEC_MAX_SQ: query rows (and fused tokens) of a decode call */

/* The fused rope's cos and sin of a pair (rope.cuh's lc_rope_cs, so the same bits as the rope op). Out of line: the
 * kernel's two rotation sites share one copy of sincosf (with its never-taken slow path). Code size on this path
 * costs time (measured on the H100: 8 rotations unrolled at three sites took a LLaMA decode attention from ~8 to
 * ~22 us; out of line and a pair an item, 11 us). */
__device__ __noinline__ float2 sdm_rope_cs(double pos, double inv) {
    float2 r;
    lc_rope_cs(pos, inv, &r.x, &r.y);
    return r;
}

/* The fused rope of a decode block: nq rows of q (staged in qs; row r is token (r0 + r) % sq) and this call's keys
 * in tile kt (keys [f0, f1) of the tile starting at key k0; key j is token j - L0) rotated in place, one pair an
 * item (a thread keeps its cos / sin while its (token, pair) repeats: at one token the q rows of a block share
 * them); then, when append (row group 0), those keys' rows (k rotated, v) from the tile into the caches (kc / vc:
 * the (b, kv head) rows, row strides k2 / v2). Block-uniform; a barrier after the rotation. Out of line: one copy
 * for its two call sites. */
template <typename T, int PITCH, int CPR>
__device__ __noinline__ void sdm_rope_rows(T *qs, T *kt, int nq, int r0, int sq, int k0, int f0, int f1, int L0, int h,
                                           int d, bool append, const double *pos, const double *inv, T *kc, T *vc,
                                           long long k2, long long v2) {
    const int nk = f1 > f0 ? f1 - f0 : 0, tid = threadIdx.x;
    if (nq + nk == 0) return;
    int li = -1, lj = -1;
    float2 cs = make_float2(1.0f, 0.0f);
    for (int idx = tid; idx < (nq + nk) * h; idx += SDM_NT) {
        const int r = idx / h, j = idx - r * h;
        const bool isq = r < nq;
        T *const row = isq ? qs + r * PITCH : kt + (f0 - k0 + r - nq) * PITCH;
        const int i = isq ? (r0 + r) % sq : f0 - L0 + r - nq;
        if (i != li || j != lj) {
            cs = sdm_rope_cs(pos[i], inv[j]);
            li = i;
            lj = j;
        }
        float o1, o2;
        lc_rope_apply(Elem<T>::ld(row[j]), Elem<T>::ld(row[j + h]), cs.x, cs.y, &o1, &o2);
        row[j] = Elem<T>::st(o1);
        row[j + h] = Elem<T>::st(o2);
    }
    __syncthreads();
    if (!append) return;
    for (int idx = tid; idx < 2 * nk * CPR; idx += SDM_NT) {
        const int w = idx / (nk * CPR), rem = idx - w * (nk * CPR), key = f0 + rem / CPR, c = (rem % CPR) * 8;
        if (c >= d) continue;
        T *const dst = (w ? vc : kc) + (long long)key * (w ? v2 : k2) + c;
        *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(kt + w * SDM_BK * PITCH + (key - k0) * PITCH + c);
    }
}

/* The fused append's count (thread 0 of each block, sd_params): `cnt`, the blocks of sequence b that had read L0
 * (sdm_l0, the block's shared copy; l0 here) before this one, as atomicAdd returned it (~0u: no count to finish).
 * The add is issued right after the read and its result awaited only when the block ends (sdm_count_finish), so
 * that its L2 round trip is off the path to the first tile's loads (p.count_now, LC_SDPA_DECODE_COUNT=now: awaited
 * at once, as before session 27, for A/B runs). The last block of b to count sets b's new length (and the overflow
 * flag) and puts the counter back to 0. */
__device__ __forceinline__ void sdm_count_finish(const sd_params &p, unsigned cnt, int l0) {
    sd_append_count_finish(p, sdm_bctr, (unsigned)p.kv_heads * (unsigned)p.nrg * (unsigned)p.nsplit, cnt, l0);
}

template <typename T, int DP, typename TAB>
__device__ __forceinline__ void sd_decode_mma_body(const sd_params &p, const TAB &tab, unsigned &cnt, int &sdm_l0);

template <typename T, int DP, typename TAB>
__global__ void __launch_bounds__(SDM_NT) sd_decode_mma(const sd_params p, const __grid_constant__ TAB tab) {
    __shared__ int sdm_l0; /* the fused append's L0 for the whole block */
    unsigned cnt = ~0u;
    sd_decode_mma_body<T, DP, TAB>(p, tab, cnt, sdm_l0);
    if (cnt != ~0u) sdm_count_finish(p, cnt, sdm_l0); /* every path of the body returns here */
}

template <typename T, int DP, typename TAB>
__device__ __forceinline__ void sd_decode_mma_body(const sd_params &p, const TAB &tab, unsigned &cnt, int &sdm_l0) {
    SDM_STAMP(0);
    constexpr bool ROPE = sdm_is_rope<TAB>::value;
    typedef SdVec<T> SV;
    typedef SdPair<T> SP;
    constexpr int ST = sdm_stages(DP);
    constexpr int PITCH = sdm_pitch(DP);
    constexpr int KS = DP / 16; /* k-steps of q·kᵀ */
    constexpr int NJ = DP / 8;  /* n-tiles of p·v */
    constexpr int CPR = DP / 8; /* 16-byte chunks per row */
    constexpr bool QREG = DP <= 128;
    static_assert(DP % 32 == 0 && DP <= 256, "DP");
    /* the merge (after the loop) and the fold reuse the tile buffers */
    static_assert((size_t)ST * 2 * SDM_BK * PITCH * 2 >= (size_t)(SDM_NW * 16 * DP + 2 * SDM_NW * 16 + 16 * DP + 32) * 4,
                  "merge space (with the cluster partial)");
    static_assert((size_t)ST * 2 * SDM_BK * PITCH * 2 >= (size_t)(2 * 16 * 256 + 32) * 4, "fold space");

    extern __shared__ float4 sdm_smem4[];
    T *const qs = reinterpret_cast<T *>(sdm_smem4); /* [16][PITCH] */
    T *const pipe = qs + 16 * PITCH;                /* [ST][2][BK][PITCH] */
    float *const red = reinterpret_cast<float *>(pipe);
    __shared__ int sdm_last;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, q4 = lane & 3;

    /* block -> (b, kv head, row group, split); 32-bit division (the planner keeps the grid below 2^31) */
    unsigned rest = blockIdx.x;
    const int split = (int)(rest % (unsigned)p.nsplit);
    rest /= (unsigned)p.nsplit;
    const unsigned grp_id = rest;
    const int rgi = (int)(rest % (unsigned)p.nrg);
    rest /= (unsigned)p.nrg;
    const int kvh = (int)(rest % (unsigned)p.kv_heads);
    const int b = (int)(rest / (unsigned)p.kv_heads);
    const int sq = p.sq, d = p.d;
    const int R = p.group * sq, r0 = rgi * 16;
    const int nr = min(16, R - r0); /* real rows of the block */

    lc_pdl_entry(); /* pdl.cuh */
    SDM_STAMP(1);

    /* a device read for a cache: its latency overlaps the q loads below */
    int L = p.tnew ? 0 : sd_key_len(p, b);
    int l0 = 0;
    if (p.tnew && tid == 0) l0 = *(volatile const int *)(p.kl_rw + b);

    /* the (b, kv head) rows of the caches (written by the fused append), read as kb / vb */
    T *const kc_b = static_cast<T *>(const_cast<void *>(p.k)) + (long long)b * p.k_st[0] + (long long)kvh * p.k_st[1];
    T *const vc_b = static_cast<T *>(const_cast<void *>(p.v)) + (long long)b * p.v_st[0] + (long long)kvh * p.v_st[1];
    const T *const kb = kc_b, *const vb = vc_b;
    const long long k2 = p.k_st[2], v2 = p.v_st[2];
    /* the new keys' rows (fused append) */
    const T *knb = p.tnew ? static_cast<const T *>(p.kn) + (long long)b * p.kn_st[0] + (long long)kvh * p.kn_st[1] : kb;
    const T *vnb = p.tnew ? static_cast<const T *>(p.vn) + (long long)b * p.vn_st[0] + (long long)kvh * p.vn_st[1] : vb;
    const long long kn2 = p.kn_st[2], vn2 = p.vn_st[2];
    /* A thread's 16-byte column of a k / v tile is fixed (SDM_NT is a multiple of CPR); its rows step by RSTEP */
    constexpr int RSTEP = SDM_NT / CPR;
    static_assert(SDM_NT % CPR == 0 && SDM_BK % RSTEP == 0, "a thread's column is fixed");
    const int lc = (tid % CPR) * 8, lr = tid / CPR;
    const bool cok = lc < d;
    const int cc = cok ? lc : 0; /* a zero-filled chunk still names an address inside the row */
    /* fused rope: token i's position (read by the first sq threads, seen after the barriers below) */
    __shared__ double sdm_pos[ROPE ? SDM_MAX_SQ : 1];
    if (ROPE && tid < sq) {
        const long long o = (long long)b * p.rp_st[0] + (long long)tid * p.rp_st[1];
        sdm_pos[tid] = p.rpos64 ? (double)static_cast<const long long *>(p.rpos)[o] : (double)static_cast<const int *>(p.rpos)[o];
    }

    /* q rows of the block (zero past the rows and head_dim), staged before anything that needs L: by cp.async
     * (joining the first tile's group, so the reads overlap L's and the tiles') when q allows 16-byte loads,
     * else element by element */
    const T *const qb = static_cast<const T *>(p.q) + (long long)b * p.q_st[0];
    if (p.vec_q) {
        for (int idx = tid; idx < 16 * CPR; idx += SDM_NT) {
            const int r = idx / CPR, c = (idx % CPR) * 8, gr = r0 + r;
            const bool ok = r < nr && c < d;
            const T *src = ok ? qb + (long long)(kvh * p.group + gr / sq) * p.q_st[1] + (long long)(gr % sq) * p.q_st[2] + c : qb;
            sd_cp_async16(qs + r * PITCH + c, src, ok ? 16 : 0);
        }
    } else
    for (int idx = tid; idx < 16 * DP; idx += SDM_NT) {
        const int r = idx / DP, c = idx % DP;
        const int gr = r0 + r;
        unsigned short x = 0;
        if (r < nr && c < d) {
            const int hq = kvh * p.group + gr / sq, i = gr % sq;
            x = (unsigned short)SV::bits(qb + (long long)hq * p.q_st[1] + (long long)i * p.q_st[2] + (long long)c * p.q_st[3]);
        }
        reinterpret_cast<unsigned short *>(qs)[r * PITCH + c] = x;
    }

    /* Fused append: L0 (the length before this call) and the new length; the bookkeeping of sd_params. */
    int L0 = L; /* keys >= L0 come from kn / vn (none without the append) */
    if (p.tnew) {
        if (tid == 0) { /* the read has returned (l0 is used), so the count cannot precede it */
            l0 = min(max(l0, 0), p.skv);
            sdm_l0 = l0;
            cnt = atomicAdd(&sdm_bctr[b], 1u);
            if (p.count_now) { /* the form before session 27 (A/B): awaited here */
                sdm_count_finish(p, cnt, l0);
                cnt = ~0u;
            }
        }
        __syncthreads();
        L0 = sdm_l0;
        L = min(L0 + p.tnew, p.skv);
        SDM_STAMP(8);
        if (!ROPE && rgi == 0 && split == 0) { /* the new rows into the caches (with rope: in the tile loop) */
            const int nt = L - L0;
            for (int idx = tid; idx < 2 * nt * CPR; idx += SDM_NT) {
                const int w = idx / (nt * CPR), rem = idx % (nt * CPR), t = rem / CPR, c = (rem % CPR) * 8;
                if (c >= d) continue;
                const T *src = w ? vnb + (long long)t * vn2 + c : knb + (long long)t * kn2 + c;
                T *dst = (w ? vc_b : kc_b) + (long long)(L0 + t) * (w ? v2 : k2) + c;
                *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
            }
        }
    }

    const int off = L - sq;
    int imax = 0, imin = sq;
    for (int r = 0; r < nr; r++) imax = max(imax, (r0 + r) % sq), imin = min(imin, (r0 + r) % sq);
    int kmax = L;
    if (p.causal) kmax = min(L, max(0, imax + off + 1));
    /* window: the block's keys start at its first row's first key (splits wholly left of it do not exist:
     * they cut [kmin, kmax), planned for the largest such range) */
    const int kmin = p.window ? min(kmax, max(0, imin + off - p.window + 1)) : 0;
    /* Splits that hold keys of this group (the grid is planned for the largest key range, e.g. a cache's
     * capacity, but the lengths are only known here). With the fold, the others leave at once and the
     * merge waits for the live ones only; one live split (or none) writes out directly. */
    const int live = p.nsplit > 1 ? min(p.nsplit, (kmax - kmin + p.chunk - 1) / p.chunk) : 1;
    /* with one live split (or none), or keys spanning at most p.direct_keys (a short cache: one block's few
     * tiles cost less than a merge), split 0 takes them all and writes out itself and the others leave (with
     * p.cluster every block of the cluster knows it: the same length); else a cluster's blocks all stay for its
     * barriers (a dead split merges as an empty partial: ntile 0 below) */
    const bool direct = p.nsplit == 1 || ((p.fold || p.cluster) && (live <= 1 || kmax - kmin <= p.direct_keys));
    const bool cmerge = p.cluster && !direct;
    if (!p.cluster && p.fold && !direct && split >= live) return;
    if (direct && split > 0) return;
    int c0 = kmin, c1 = kmax;
    if (!direct) {
        c0 = min(kmin + split * p.chunk, kmax);
        c1 = min(c0 + p.chunk, kmax);
    }
    const int ntile = (c1 - c0 + SDM_BK - 1) / SDM_BK;

    /* tile t of the chunk (keys c0 + 64t ..) into stage t % ST, one cp.async group per call site; the address
     * math is one row offset an element, and the loop is short enough to unroll (the kernel runs one or two tiles
     * a block in decode, so its prologue's instruction count is latency) */
    auto load_tile = [&](int t) {
        T *ks = pipe + (t % ST) * 2 * SDM_BK * PITCH + lr * PITCH + lc;
        T *vs = ks + SDM_BK * PITCH;
        const int j0 = c0 + t * SDM_BK + lr;
#pragma unroll
        for (int it = 0; it < SDM_BK / RSTEP; it++) {
            const int key = j0 + it * RSTEP;
            const bool ok = cok && key < c1;
            const int kk = ok ? key : 0;
            const bool fresh = p.tnew && kk >= L0; /* a key of this call's append */
            const T *ksrc = fresh ? knb + (long long)(kk - L0) * kn2 + cc : kb + (long long)kk * k2 + cc;
            const T *vsrc = fresh ? vnb + (long long)(kk - L0) * vn2 + cc : vb + (long long)kk * v2 + cc;
            sd_cp_async16(ks + it * RSTEP * PITCH, ksrc, ok ? 16 : 0);
            sd_cp_async16(vs + it * RSTEP * PITCH, vsrc, ok ? 16 : 0);
        }
    };
    SDM_STAMP(2);
#pragma unroll
    for (int s = 0; s < ST - 1; s++) {
        if (s < ntile) load_tile(s);
        sd_cp_async_commit();
    }

    int ri[2], rh[2];
    bool rv[2];
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        const int r = g + 8 * rr, gr = r0 + r;
        rv[rr] = r < nr;
        ri[rr] = rv[rr] ? gr % sq : 0;
        rh[rr] = rv[rr] ? kvh * p.group + gr / sq : 0;
    }
    if (p.vec_q || ROPE) sd_cp_async_wait<ST - 2>(); /* q's cp.async joined group 0 (with rope: tile 0 too) */
    __syncthreads();
    /* fused rope (sdm_rope_rows): q's rows and tile 0's new keys, then the append of those keys */
    auto rope_rows = [&](int nq, int t, int f0, int f1) {
        sdm_rope_rows<T, PITCH, CPR>(qs, pipe + (t % ST) * 2 * SDM_BK * PITCH, nq, r0, sq, c0 + t * SDM_BK, f0, f1, L0,
                                     p.rd / 2, d, rgi == 0, sdm_pos, tab.inv, kc_b, vc_b, k2, v2);
    };
    if (ROPE) rope_rows(nr, 0, ntile > 0 ? max(c0, L0) : 0, ntile > 0 ? min(c0 + SDM_BK, c1) : 0);
    SDM_STAMP(3);
    /* A fragments of q: rows lane % 8 (+8 for lanes 8-15, 24-31), columns +8 for lanes 16-31 */
    const T *qrow = qs + ((lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + (lane >> 4) * 8;
    unsigned qf[QREG ? KS : 1][4];
    if (QREG) {
#pragma unroll
        for (int k = 0; k < KS; k++) sd_ldsm_x4(qf[QREG ? k : 0], qrow + k * 16);
    }

    const bool masked = p.mask_kind != LC_SDPA_MASK_NONE;
    const bool guard = masked || ((p.causal || p.window) && sq > 1); /* keys inside [c0, c1) may be hidden from a row */
    const float qscale = p.qscale;
    float m[2] = {-FLT_MAX, -FLT_MAX}, l[2] = {0.0f, 0.0f};
    float o[NJ][4];
#pragma unroll
    for (int j = 0; j < NJ; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;

    /* ldmatrix row addresses inside a stage: k (B of q·kᵀ: keys +8 for lanes 16-31, columns +8 for lanes
     * 8-15, 24-31) and v (B of p·v, transposed: keys +8 for lanes 8-15, 24-31, columns +8 for lanes 16-31) */
    const int koff = (warp * 16 + (lane & 7) + (lane >> 4) * 8) * PITCH + ((lane >> 3) & 1) * 8;
    const int voff = (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * PITCH + (lane >> 4) * 8;

    for (int t = 0; t < ntile; t++) {
        sd_cp_async_wait<ST - 2>();
        __syncthreads(); /* tile t landed for every thread; stage (t - 1) % ST is free */
        if (t + ST - 1 < ntile) load_tile(t + ST - 1);
        sd_cp_async_commit();
        const T *ks = pipe + (t % ST) * 2 * SDM_BK * PITCH;
        const T *vs = ks + SDM_BK * PITCH;
        if (ROPE && t > 0) /* this call's keys in a later tile (tile 0's went with q) */
            rope_rows(0, t, max(c0 + t * SDM_BK, L0), min(c0 + t * SDM_BK + SDM_BK, c1));
        const int kw = c0 + t * SDM_BK + warp * 16; /* the warp's first key */
        if (kw >= c1) continue;                     /* warp-uniform */

        float s[2][4];
#pragma unroll
        for (int nt = 0; nt < 2; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
        for (int k = 0; k < KS; k++) {
            unsigned a[4], bk[4];
            if (QREG) {
#pragma unroll
                for (int x = 0; x < 4; x++) a[x] = qf[QREG ? k : 0][x];
            } else {
                sd_ldsm_x4(a, qrow + k * 16);
            }
            sd_ldsm_x4(bk, ks + koff + k * 16);
            sd_mma16816<T>(s[0], a, bk[0], bk[1]);
            sd_mma16816<T>(s[1], a, bk[2], bk[3]);
        }

        /* scores in log2 units; element (nt, e): row g + 8·(e / 2), key kw + 8·nt + 2·q4 + e % 2 */
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int rr = e >> 1, key = kw + nt * 8 + 2 * q4 + (e & 1);
                float x = s[nt][e] * qscale;
                const bool vis = key < c1 && rv[rr] && (!p.causal || key <= ri[rr] + off) &&
                                 (!p.window || key > ri[rr] + off - p.window);
                if (!vis) x = -INFINITY;
                else if (masked) x = sd_apply_mask(p, b, rh[rr], ri[rr], key, x);
                s[nt][e] = x;
            }

        /* online softmax per row (the row's quad shares m); s becomes p */
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            float mx = fmaxf(fmaxf(s[0][2 * rr], s[0][2 * rr + 1]), fmaxf(s[1][2 * rr], s[1][2 * rr + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mnew = fmaxf(m[rr], mx);
            const float alpha = exp2f(m[rr] - mnew);
            m[rr] = mnew;
            float sum = 0.0f;
#pragma unroll
            for (int nt = 0; nt < 2; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float pe = exp2f(s[nt][2 * rr + e] - mnew);
                    s[nt][2 * rr + e] = pe;
                    sum += pe;
                }
            l[rr] = fmaf(l[rr], alpha, sum);
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                o[j][2 * rr] *= alpha;
                o[j][2 * rr + 1] *= alpha;
            }
        }

        bool slow = false;
        if (guard) {
            /* a non-finite value among the warp's 16 v rows (keys past the chunk are zeros) */
            bool bad = false;
#pragma unroll
            for (int x = lane; x < 16 * CPR; x += 32) {
                const uint4 w = *reinterpret_cast<const uint4 *>(vs + (warp * 16 + x / CPR) * PITCH + (x % CPR) * 8);
                bad |= SP::nonfinite(w.x) | SP::nonfinite(w.y) | SP::nonfinite(w.z) | SP::nonfinite(w.w);
            }
            slow = __any_sync(0xffffffffu, bad);
        }
        if (!slow) {
            /* A fragments of p (hi and lo parts): a0 row g keys 2q4.., a1 row g+8, a2/a3 the same at keys +8 */
            unsigned ah[4], al[4];
#pragma unroll
            for (int x = 0; x < 4; x++) {
                const int nt = x >> 1, e = (x & 1) * 2;
                float h0, h1, u0, u1;
                ah[x] = SP::pack(s[nt][e], s[nt][e + 1], h0, h1);
                al[x] = SP::pack(s[nt][e] - h0, s[nt][e + 1] - h1, u0, u1);
            }
#pragma unroll
            for (int jj = 0; jj < NJ / 2; jj++) {
                unsigned bv[4];
                sd_ldsm_x4_t(bv, vs + voff + jj * 16);
                sd_mma16816<T>(o[2 * jj], ah, bv[0], bv[1]);
                sd_mma16816<T>(o[2 * jj], al, bv[0], bv[1]);
                sd_mma16816<T>(o[2 * jj + 1], ah, bv[2], bv[3]);
                sd_mma16816<T>(o[2 * jj + 1], al, bv[2], bv[3]);
            }
        } else {
            /* float32 p·v skipping p == 0 (p of key kk for rows g, g+8 lives in lane 4g + (kk % 8) / 2). Rare (a
             * non-finite v under a hidden key): the key loop stays rolled, which keeps the kernel's common path
             * short in instruction memory */
#pragma unroll 1
            for (int kk = 0; kk < 16; kk++) {
                const int src = (lane & ~3) | ((kk & 7) >> 1);
                const bool hi = kk >= 8, odd = kk & 1;
                const float s0 = hi ? (odd ? s[1][1] : s[1][0]) : (odd ? s[0][1] : s[0][0]);
                const float s1 = hi ? (odd ? s[1][3] : s[1][2]) : (odd ? s[0][3] : s[0][2]);
                const float p0 = __shfl_sync(0xffffffffu, s0, src);
                const float p1 = __shfl_sync(0xffffffffu, s1, src);
                const T *vrow = vs + (warp * 16 + kk) * PITCH + 2 * q4;
#pragma unroll
                for (int j = 0; j < NJ; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const float vv = sdm_f(vrow[j * 8 + e]);
                        o[j][e] = p0 != 0.0f ? fmaf(p0, vv, o[j][e]) : o[j][e];
                        o[j][2 + e] = p1 != 0.0f ? fmaf(p1, vv, o[j][2 + e]) : o[j][2 + e];
                    }
            }
        }
    }
    sd_cp_async_wait<0>();
    __syncthreads(); /* every warp is done with the tiles: their space becomes the merge buffers */
    SDM_STAMP(4);
    /* merge the warps: per warp m, l (rows) and O [16][DP] */
    float *const red_o = red;                       /* [NW][16][DP] */
    float *const red_m = red_o + SDM_NW * 16 * DP;  /* [NW][16] */
    float *const red_l = red_m + SDM_NW * 16;       /* [NW][16] */
    float *const cp_o = red_l + SDM_NW * 16;        /* cluster: the block's partial O [16][DP], m [16], l [16] */
    float *const cp_m = cp_o + 16 * DP;
    float *const cp_l = cp_m + 16;
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        float lr = l[rr];
        lr += __shfl_xor_sync(0xffffffffu, lr, 1);
        lr += __shfl_xor_sync(0xffffffffu, lr, 2);
        if (q4 == 0) {
            red_m[warp * 16 + g + 8 * rr] = m[rr];
            red_l[warp * 16 + g + 8 * rr] = lr;
        }
        if (g + 8 * rr >= nr) continue; /* the merge reads rows < nr only */
#pragma unroll
        for (int j = 0; j < NJ; j++)
            *reinterpret_cast<float2 *>(red_o + (warp * 16 + g + 8 * rr) * DP + j * 8 + 2 * q4) = make_float2(o[j][2 * rr], o[j][2 * rr + 1]);
    }
    __syncthreads();
    SDM_STAMP(9);
    for (int idx = tid; idx < nr * DP; idx += SDM_NT) {
        const int r = idx / DP, c = idx % DP;
        if (c >= d) continue;
        float mx = -FLT_MAX;
#pragma unroll
        for (int w = 0; w < SDM_NW; w++) mx = fmaxf(mx, red_m[w * 16 + r]);
        float den = 0.0f, num = 0.0f;
#pragma unroll
        for (int w = 0; w < SDM_NW; w++) {
            const float wt = exp2f(red_m[w * 16 + r] - mx);
            den = fmaf(wt, red_l[w * 16 + r], den);
            num = fmaf(wt, red_o[(w * 16 + r) * DP + c], num);
        }
        if (cmerge) {
            cp_o[r * DP + c] = num;
            if (c == 0) {
                cp_m[r] = mx;
                cp_l[r] = den;
            }
            continue;
        }
        const int gr = r0 + r, hq = kvh * p.group + gr / sq, i = gr % sq;
        const long long rowid = ((long long)b * p.heads + hq) * sq + i;
        if (direct) {
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
    if (cmerge) { /* rank = split: block s merges outputs s·NT + tid, + nsplit·NT, ... of the group */
        namespace cg = cooperative_groups;
        cg::cluster_group cl = cg::this_cluster();
        SDM_STAMP(5);
        cl.sync(); /* every block's partial is in its shared memory */
        SDM_STAMP(6);
        const int ns = p.cluster;
        for (int idx = split * SDM_NT + tid; idx < nr * d; idx += ns * SDM_NT) {
            const int r = idx / d, c = idx % d;
            float pm[SD_DEC_MAX_CLUSTER], pl[SD_DEC_MAX_CLUSTER], po[SD_DEC_MAX_CLUSTER];
#pragma unroll
            for (int s = 0; s < SD_DEC_MAX_CLUSTER; s++) /* all remote loads in flight, then the merge */
                if (s < ns) {
                    const float *rem = cl.map_shared_rank(cp_o, s);
                    po[s] = rem[r * DP + c];
                    pm[s] = rem[16 * DP + r];
                    pl[s] = rem[16 * DP + 16 + r];
                }
            float mx = -FLT_MAX;
#pragma unroll
            for (int s = 0; s < SD_DEC_MAX_CLUSTER; s++)
                if (s < ns) mx = fmaxf(mx, pm[s]);
            float den = 0.0f, num = 0.0f;
#pragma unroll
            for (int s = 0; s < SD_DEC_MAX_CLUSTER; s++)
                if (s < ns) {
                    const float wt = exp2f(pm[s] - mx);
                    den = fmaf(wt, pl[s], den);
                    num = fmaf(wt, po[s], num);
                }
            const int gr = r0 + r;
            sd_store<T>(p, b, kvh * p.group + gr / sq, gr % sq, c, num, mx, den);
        }
        SDM_STAMP(10);
        cl.sync(); /* the other blocks' shared memory stays alive until every block has read it */
        SDM_STAMP(7);
        return;
    }
    if (direct || !p.fold) return;

    /* fold: the last split of the group to finish merges the partials (threadFenceReduction pattern) */
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        const unsigned prev = atomicAdd(&sdm_ctr[grp_id], 1u);
        sdm_last = prev == (unsigned)(live - 1);
        if (sdm_last) atomicExch(&sdm_ctr[grp_id], 0u);
    }
    __syncthreads();
    if (!sdm_last) return;
    __threadfence();
    const int ns = live, stride = p.nsplit; /* the live partials; slots are laid out per p.nsplit */
    float *const cw = red;            /* [16][ns]: m, then the weights 2^(m - M) */
    float *const cl = cw + 16 * ns;   /* [16][ns]: l */
    float *const cden = cl + 16 * ns; /* [16] */
    float *const cmx = cden + 16;     /* [16] */
    for (int idx = tid; idx < nr * ns; idx += SDM_NT) {
        const int r = idx / ns, s = idx % ns;
        const int gr = r0 + r, hq = kvh * p.group + gr / sq, i = gr % sq;
        const long long slot = (((long long)b * p.heads + hq) * sq + i) * stride + s;
        const float2 ml = __ldcg(reinterpret_cast<const float2 *>(p.ws_ml) + slot);
        cw[r * ns + s] = ml.x;
        cl[r * ns + s] = ml.y;
    }
    __syncthreads();
    for (int r = warp; r < nr; r += SDM_NW) {
        float mx = -FLT_MAX;
        for (int s = lane; s < ns; s += 32) mx = fmaxf(mx, cw[r * ns + s]);
#pragma unroll
        for (int o2 = 16; o2 >= 1; o2 >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o2));
        float den = 0.0f;
        for (int s = lane; s < ns; s += 32) {
            const float wt = exp2f(cw[r * ns + s] - mx);
            cw[r * ns + s] = wt;
            den = fmaf(wt, cl[r * ns + s], den);
        }
#pragma unroll
        for (int o2 = 16; o2 >= 1; o2 >>= 1) den += __shfl_xor_sync(0xffffffffu, den, o2);
        if (lane == 0) {
            cden[r] = den;
            cmx[r] = mx;
        }
    }
    __syncthreads();
    /* 4 columns a thread (ws_ld is a multiple of 4, partial rows 16-byte aligned; columns >= d unused) */
    const int d4 = (d + 3) >> 2, ld4 = p.ws_ld >> 2;
    for (int idx = tid; idx < nr * d4; idx += SDM_NT) {
        const int r = idx / d4, c = (idx % d4) * 4;
        const int gr = r0 + r, hq = kvh * p.group + gr / sq, i = gr % sq;
        const long long rowid = ((long long)b * p.heads + hq) * sq + i;
        const float4 *src = reinterpret_cast<const float4 *>(p.ws_o + rowid * stride * p.ws_ld + c);
        const float *wr = cw + r * ns;
        float n[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 8
        for (int s = 0; s < ns; s++) {
            const float4 x = __ldcg(src + (long long)s * ld4);
            const float wt = wr[s];
            n[0] = fmaf(wt, x.x, n[0]);
            n[1] = fmaf(wt, x.y, n[1]);
            n[2] = fmaf(wt, x.z, n[2]);
            n[3] = fmaf(wt, x.w, n[3]);
        }
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (c + e < d) sd_store<T>(p, b, hq, i, c + e, n[e], cmx[r], cden[r]);
    }
}

int sd_decode_mma_occupancy(int dp) {
    const size_t smem = sdm_smem(dp <= 32 ? 32 : dp <= 64 ? 64 : dp <= 128 ? 128 : 256);
    const int occ = (int)((228u * 1024u) / (smem + 1024u));
    return occ < 1 ? 1 : occ;
}

static int sdm_attr_done[SDM_MAX_DEVICES][2][4][2];

/* The kernel's function attributes, once per device (pdl.cuh): its dynamic shared memory, and cluster sizes
 * past 8 (non-portable; sm_90 takes 16). */
template <typename T, int DP, typename TAB> static cudaError_t sdm_prepare(int dti, int dpi) {
    const int ri = sdm_is_rope<TAB>::value;
    return lc_once_per_device(SDM_MAX_DEVICES, [&](int dev) { return &sdm_attr_done[dev][dti][dpi][ri]; }, [] {
        if (sdm_smem(DP) > 48 * 1024) {
            const cudaError_t err = cudaFuncSetAttribute((const void *)sd_decode_mma<T, DP, TAB>,
                                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sdm_smem(DP));
            if (err != cudaSuccess) return err;
        }
        return cudaFuncSetAttribute((const void *)sd_decode_mma<T, DP, TAB>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    });
}

template <typename T, int DP> static int sdm_cluster_query(int dti, int dpi, int c) {
    if (sdm_prepare<T, DP, sdm_no_rope>(dti, dpi) != cudaSuccess) return 0;
    return lc_max_active_clusters(sd_decode_mma<T, DP, sdm_no_rope>, dim3((unsigned)c, 1, 1), SDM_NT, sdm_smem(DP)); /* pdl.cuh */
}

template <typename T> static int sdm_cluster_query_dp(int dti, int dp, int c) {
    switch (dp) {
    case 32: return sdm_cluster_query<T, 32>(dti, 0, c);
    case 64: return sdm_cluster_query<T, 64>(dti, 1, c);
    case 128: return sdm_cluster_query<T, 128>(dti, 2, c);
    default: return sdm_cluster_query<T, 256>(dti, 3, c);
    }
}

int sd_decode_mma_cluster_capacity(lc_dtype dtype, int dp, int c) {
    static int cache[SDM_MAX_DEVICES][2][4][SD_DEC_MAX_CLUSTER + 1]; /* capacity + 1; 0 not yet asked */
    if (c < 2 || c > SD_DEC_MAX_CLUSTER || (dtype != LC_DTYPE_F16 && dtype != LC_DTYPE_BF16)) return 0;
    const int dti = dtype == LC_DTYPE_BF16, dpi = dp <= 32 ? 0 : dp <= 64 ? 1 : dp <= 128 ? 2 : 3;
    /* pdl.cuh; a refused size takes the fold or the combine pass (the rope form: the same block size and dynamic
     * shared memory, 128 bytes more static, more registers at DP 128 (197 against 168): two blocks an SM either
     * way, so the capacity asked of the plain form serves it) */
    return lc_cluster_capacity_cached(
        SDM_MAX_DEVICES, [&](int dev) { return &cache[dev][dti][dpi][c]; },
        [&]() { return dti ? sdm_cluster_query_dp<__nv_bfloat16>(dti, dp, c) : sdm_cluster_query_dp<__half>(dti, dp, c); });
}

template <typename T, int DP, typename TAB>
static cudaError_t sdm_launch(int dti, int dpi, const sd_params &p, const TAB &tab, unsigned blocks, cudaStream_t stream) {
    const cudaError_t err = sdm_prepare<T, DP, TAB>(dti, dpi);
    if (err != cudaSuccess) return err;
    if (p.cluster > 1)
        (void)lc_pdl_launch_cluster(sd_decode_mma<T, DP, TAB>, blocks, SDM_NT, sdm_smem(DP), stream,
                                    dim3((unsigned)p.cluster, 1, 1), p, tab);
    else
        (void)lc_pdl_launch(sd_decode_mma<T, DP, TAB>, blocks, SDM_NT, sdm_smem(DP), stream, p, tab);
    return cudaGetLastError();
}

/* The rope form (head_dim padded to 64 or 128 only): the table's first p.rd / 2 entries from inv. */
template <typename T, int DP> static cudaError_t sdm_launch_rope(int dti, int dpi, const sd_params &p, const double *inv,
                                                                 unsigned blocks, cudaStream_t stream) {
    sdm_rope_tab<DP / 2> tab;
    for (int j = 0; j < DP / 2; j++) tab.inv[j] = j < p.rd / 2 ? inv[j] : 0.0;
    return sdm_launch<T, DP>(dti, dpi, p, tab, blocks, stream);
}

template <typename T>
static cudaError_t sdm_launch_dp(int dti, int dp, const sd_params &p, const double *inv, unsigned blocks, cudaStream_t stream) {
    const sdm_no_rope none = {{0.0}};
    if (inv) {
        if (dp == 64) return sdm_launch_rope<T, 64>(dti, 1, p, inv, blocks, stream);
        if (dp == 128) return sdm_launch_rope<T, 128>(dti, 2, p, inv, blocks, stream);
        return cudaErrorInvalidValue; /* lc_cuda_launch_sdpa (sd_rope_fits) refuses the other widths */
    }
    switch (dp) {
    case 32: return sdm_launch<T, 32>(dti, 0, p, none, blocks, stream);
    case 64: return sdm_launch<T, 64>(dti, 1, p, none, blocks, stream);
    case 128: return sdm_launch<T, 128>(dti, 2, p, none, blocks, stream);
    default: return sdm_launch<T, 256>(dti, 3, p, none, blocks, stream);
    }
}

cudaError_t sd_launch_decode_mma(lc_dtype dtype, int dp, const sd_params &p, const double *inv, unsigned blocks,
                                 cudaStream_t stream) {
    if (blocks == 0) return cudaSuccess;
    if ((inv != NULL) != (p.rd > 0)) return cudaErrorInvalidValue;
    if (dtype == LC_DTYPE_F16) return sdm_launch_dp<__half>(0, dp, p, inv, blocks, stream);
    if (dtype == LC_DTYPE_BF16) return sdm_launch_dp<__nv_bfloat16>(1, dp, p, inv, blocks, stream);
    return cudaErrorInvalidValue;
}

LC_TL_READER(lc_tl_read_sdpa_decode_mma_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
