/* sdpa_cuda.cuh — what the generic scaled-dot-product attention kernels share (sdpa_cuda.cu: the
 * flash-style kernel, the split combine pass and the launcher; sdpa_decode_cuda.cu: the SIMT decode kernel;
 * sdpa_decode_mma_cuda.cu: the tensor-core decode kernel): the kernel parameters, the 16-byte vector loads
 * of the storage types, cp.async / ldmatrix / mma.sync m16n8k16 wrappers, the output and lse of a merged row,
 * the key length of a sequence and the mask element of (b, h, i, j). Semantics: lc_sdpa_args in src/core/backend.h.
 *
 * Scores are kept in log2 units (q pre-scaled by scale·log2(e), an additive mask multiplied by log2(e)) so
 * the softmax uses exp2; the running maximum starts at -FLT_MAX, so a row without a visible key keeps
 * m = -FLT_MAX, l = 0 (its output is zeros, its lse -inf).
 * Split partials (workspace): per query row slot = ((b·heads + h)·sq + i)·nsplit + s, the unnormalised
 * accumulator ws_o[slot·ws_ld + c] (c < head_dim) and ws_ml[2·slot] = m, ws_ml[2·slot + 1] = l.
 * Tests: tests/c/test_sdpa_cuda.c (GPU machine only).
 */
#ifndef LC_SDPA_CUDA_CUH
#define LC_SDPA_CUDA_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <stdint.h>

#include "core/backend.h"

#define SD_LOG2E 1.44269504088896340736f
#define SD_LN2 0.69314718055994530942f

/* Mask encodings in sd_params.mask_dt. */
enum { SD_MDT_F32 = 0, SD_MDT_F16 = 1, SD_MDT_BF16 = 2 };

typedef struct sd_params {
    const void *q, *k, *v;
    void *out;
    float *lse;
    long long q_st[4], k_st[4], v_st[4], o_st[4], m_st[4];
    const void *mask;
    int mask_kind; /* lc_sdpa_mask_kind */
    int mask_dt;   /* SD_MDT_* (ADD masks) */
    const void *kl;
    int kl64;
    int batch, heads, kv_heads, group; /* group = heads / kv_heads */
    int sq, skv, d;
    int causal;
    int window;   /* 0: none; else row i sees keys j > i + L_b - sq - window (lc_sdpa_args.window, < skv) */
    float qscale; /* scale · log2(e) */
    int vec_q, vec_k, vec_v; /* 16-byte loads allowed for the operand */
    /* generic kernel */
    int nqb;
    /* decode kernel */
    int nrg; /* row groups of RT rows per (b, kv head) */
    /* split (nsplit 1: none, the kernel writes out and lse itself) */
    int nsplit;
    int chunk; /* generic: key tiles per split; decode: keys per split */
    int ws_ld; /* floats per partial row */
    float *ws_o, *ws_ml;
    /* tensor-core decode: with a split and fold set, the last block of each (b, kv head, row group) to
     * finish merges the partials itself (a device counter per blockIdx.x / nsplit < SD_DEC_NCTR counts the
     * finished splits; it starts at 0 and the merging block puts it back to 0); fold 0: sd_combine runs
     * after the kernel. */
    int fold;
    /* tensor-core decode: > 1 (then = nsplit, fold 0): the splits of each (b, kv head, row group) are one
     * thread-block cluster; each block leaves its partial (m, l, unnormalised O) in its shared memory and,
     * after a cluster barrier, every block merges a slice of the group's outputs from all of them (no
     * workspace, no counter, no second kernel). */
    int cluster;
    int plain_nonfinite; /* lc_sdpa_args.plain_nonfinite: a row with no softmax weight is NaN, not zeros (sd_empty) */
    /* tensor-core decode with the KV-cache append fused (lc_sdpa_args.append; tnew 0: none). L0 = kl_rw[b] (the
     * cache's int32 lengths, clamped to [0, skv]) before the call; the keys [L0, min(L0 + tnew, skv)) come from
     * kn / vn (element strides over b, kv head, token; d-stride 1, 16-byte rows), the others from k / v (the
     * caches). Block (b, kv head, row group 0, split 0) copies the new rows into the caches at L0.. (no block of
     * the launch reads the caches there); every block of b reads L0, then counts itself in sdm_bctr[b], and the
     * last one sets kl_rw[b] = min(L0 + tnew, skv) (and *ovf = 1 when tokens did not fit) and puts the
     * counter back to 0. */
    const void *kn, *vn;
    long long kn_st[3], vn_st[3];
    int tnew;
    int *kl_rw, *ovf;
    int count_now; /* the count's result awaited where it is taken, not at the block's end (A/B: sdm_count) */
    /* tensor-core decode with fold or cluster: a (b, kv head, row group) whose visible keys span at most this
     * many is done by its split 0 alone, which writes out (no merge); 0: only when one split holds them all */
    int direct_keys;
    /* tensor-core decode with the rotary embedding fused (lc_sdpa_args.rope; rd 0: none; only with tnew = sq):
     * q's rows and the new keys rotated as the rope op rotates them (rope.cuh), token i of sequence b at
     * position rpos[b·rp_st[0] + i·rp_st[1]] (int64 when rpos64, else int32), pairs (j, j + rd/2), j < rd/2;
     * the inverse frequencies come with the launch (sd_launch_decode_mma's inv). */
    const void *rpos;
    int rpos64;
    long long rp_st[2];
    int rd;
} sd_params;

/* What a row with no softmax weight (l = 0) holds: 0, or NaN with p.plain_nonfinite (attention_forward). */
__device__ __forceinline__ float sd_empty(const sd_params &p) { return p.plain_nonfinite ? __int_as_float(0x7fc00000) : 0.0f; }

/* cp.async (16 bytes; src_bytes 0 writes zeros), ldmatrix and mma.sync m16n8k16 (float32 accumulators). */
__device__ __forceinline__ void sd_cp_async16(void *smem_dst, const void *gsrc, int src_bytes) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem_dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gsrc), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void sd_cp_async_commit(void) { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void sd_cp_async_wait_all(void) { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
__device__ __forceinline__ void sd_cp_async_wait_1(void) { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void sd_cp_async_wait(void) { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

/* Four 8x8 16-bit matrices; lane l gives the address of row l % 8 of matrix l / 8. */
__device__ __forceinline__ void sd_ldsm_x4(unsigned r[4], const void *smem_row) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}
__device__ __forceinline__ void sd_ldsm_x4_t(unsigned r[4], const void *smem_row) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}
/* c += a (16x16, row) · b (16x8, col); T __half or __nv_bfloat16. */
template <typename T> __device__ __forceinline__ void sd_mma16816(float c[4], const unsigned a[4], unsigned b0, unsigned b1);
template <> __device__ __forceinline__ void sd_mma16816<__nv_bfloat16>(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <> __device__ __forceinline__ void sd_mma16816<__half>(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
/* Two floats as a 16-bit pair (x0 in the low half), rounded to nearest even, and the rounded values back. */
template <typename T> struct SdPair;
template <> struct SdPair<__nv_bfloat16> {
    static __device__ __forceinline__ unsigned pack(float x0, float x1, float &r0, float &r1) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(x0, x1);
        r0 = __low2float(h);
        r1 = __high2float(h);
        return *reinterpret_cast<const unsigned *>(&h);
    }
    /* the exponent field all ones (Inf or NaN) in either half of a pair */
    static __device__ __forceinline__ bool nonfinite(unsigned w) {
        return (w & 0x7f80u) == 0x7f80u || (w & 0x7f800000u) == 0x7f800000u;
    }
};
template <> struct SdPair<__half> {
    static __device__ __forceinline__ unsigned pack(float x0, float x1, float &r0, float &r1) {
        const __half2 h = __floats2half2_rn(x0, x1);
        r0 = __low2float(h);
        r1 = __high2float(h);
        return *reinterpret_cast<const unsigned *>(&h);
    }
    static __device__ __forceinline__ bool nonfinite(unsigned w) {
        return (w & 0x7c00u) == 0x7c00u || (w & 0x7c000000u) == 0x7c000000u;
    }
};

/* 16-byte chunks of the storage types: N elements, loaded whole (ld16: aligned, contiguous) or element by
 * element with a stride (ldn: the first min(n, N) elements, the rest zero); to_f converts a chunk to float. */
template <typename T> struct SdVec;
template <> struct SdVec<float> {
    typedef float4 V;
    static constexpr int N = 4;
    static __device__ __forceinline__ V zero() { return make_float4(0.0f, 0.0f, 0.0f, 0.0f); }
    static __device__ __forceinline__ V ld16(const float *p) { return __ldg(reinterpret_cast<const float4 *>(p)); }
    static __device__ __forceinline__ V ldn(const float *p, long long st, int n) {
        V x = zero();
        if (n > 0) x.x = __ldg(p);
        if (n > 1) x.y = __ldg(p + st);
        if (n > 2) x.z = __ldg(p + 2 * st);
        if (n > 3) x.w = __ldg(p + 3 * st);
        return x;
    }
    static __device__ __forceinline__ void to_f(V x, float *f) {
        f[0] = x.x;
        f[1] = x.y;
        f[2] = x.z;
        f[3] = x.w;
    }
    static __device__ __forceinline__ float ld1(const float *p) { return __ldg(p); }
    static __device__ __forceinline__ float st1(float x) { return x; }
};
template <typename T> struct SdVec16 {
    typedef uint4 V;
    static constexpr int N = 8;
    static __device__ __forceinline__ V zero() { return make_uint4(0u, 0u, 0u, 0u); }
    static __device__ __forceinline__ V ld16(const T *p) { return __ldg(reinterpret_cast<const uint4 *>(p)); }
    static __device__ __forceinline__ unsigned bits(const T *p) {
        return (unsigned)__ldg(reinterpret_cast<const unsigned short *>(p));
    }
    static __device__ __forceinline__ V ldn(const T *p, long long st, int n) {
        unsigned e[8];
#pragma unroll
        for (int i = 0; i < 8; i++) e[i] = i < n ? bits(p + i * st) : 0u;
        return make_uint4(e[0] | (e[1] << 16), e[2] | (e[3] << 16), e[4] | (e[5] << 16), e[6] | (e[7] << 16));
    }
};
template <> struct SdVec<__half> : SdVec16<__half> {
    static __device__ __forceinline__ float h(unsigned u) { return __half2float(__ushort_as_half((unsigned short)u)); }
    static __device__ __forceinline__ void to_f(V x, float *f) {
        const unsigned w[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            f[2 * i] = h(w[i] & 0xffffu);
            f[2 * i + 1] = h(w[i] >> 16);
        }
    }
    static __device__ __forceinline__ float ld1(const __half *p) { return h(bits(p)); }
    static __device__ __forceinline__ __half st1(float x) { return __float2half_rn(x); }
};
template <> struct SdVec<__nv_bfloat16> : SdVec16<__nv_bfloat16> {
    static __device__ __forceinline__ void to_f(V x, float *f) {
        const unsigned w[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            f[2 * i] = __uint_as_float(w[i] << 16);
            f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
        }
    }
    static __device__ __forceinline__ float ld1(const __nv_bfloat16 *p) { return __uint_as_float(bits(p) << 16); }
    static __device__ __forceinline__ __nv_bfloat16 st1(float x) { return __float2bfloat16_rn(x); }
};

/* The lse of a merged row from its maximum m (log2 units) and softmax denominator l: -inf when l = 0 (no key
 * reached the row). */
__device__ __forceinline__ float sd_lse(float m, float l) { return l == 0.0f ? -INFINITY : (m + log2f(l)) * SD_LN2; }

/* The end of a merged row (b, h, i) at column c: out = num / l (sd_empty when l = 0), and with c == 0 its lse. */
template <typename T>
__device__ __forceinline__ void sd_store(const sd_params &p, int b, int h, int i, int c, float num, float m, float l) {
    T *dst = static_cast<T *>(p.out) + (long long)b * p.o_st[0] + (long long)h * p.o_st[1] + (long long)i * p.o_st[2] +
             (long long)c * p.o_st[3];
    *dst = SdVec<T>::st1(l == 0.0f ? sd_empty(p) : num / l);
    if (c == 0 && p.lse) p.lse[((long long)b * p.heads + h) * p.sq + i] = sd_lse(m, l);
}

/* L_b: key_lengths[b] clamped to [0, skv], or skv without key_lengths. */
__device__ __forceinline__ int sd_key_len(const sd_params &p, int b) {
    if (!p.kl) return p.skv;
    long long L = p.kl64 ? __ldg(static_cast<const long long *>(p.kl) + b) : (long long)__ldg(static_cast<const int *>(p.kl) + b);
    if (L < 0) L = 0;
    if (L > p.skv) L = p.skv;
    return (int)L;
}

/* The fused KV append's length update (thread 0 of a block that counted itself in ctr[b], sequence b's blocks, cnt
 * being what its atomicAdd returned; per_b blocks a sequence, consecutive in the grid): the last to count sets
 * kl_rw[b] = min(l0 + tnew, skv) (and *ovf = 1 when the tokens did not fit) and puts the counter back to 0. */
__device__ __forceinline__ void sd_append_count_finish(const sd_params &p, unsigned *ctr, unsigned per_b, unsigned cnt,
                                                       int l0) {
    if (cnt != per_b - 1u) return;
    const int b = (int)(blockIdx.x / per_b);
    atomicExch(&ctr[b], 0u);
    p.kl_rw[b] = min(l0 + p.tnew, p.skv);
    if (l0 + p.tnew > p.skv && p.ovf) *p.ovf = 1;
}

/* The mask of (b, h, i, j) applied to score s (log2 units): BOOL 0 hides the key (-inf), ADD adds
 * mask·log2(e) (-inf hides, NaN propagates). Only called for visible (b, h, i < sq, j < L_b). */
__device__ __forceinline__ float sd_apply_mask(const sd_params &p, int b, int h, int i, int j, float s) {
    const long long off = (long long)b * p.m_st[0] + (long long)h * p.m_st[1] + (long long)i * p.m_st[2] +
                          (long long)j * p.m_st[3];
    if (p.mask_kind == LC_SDPA_MASK_BOOL) return __ldg(static_cast<const unsigned char *>(p.mask) + off) ? s : -INFINITY;
    float mv;
    if (p.mask_dt == SD_MDT_F32) mv = __ldg(static_cast<const float *>(p.mask) + off);
    else if (p.mask_dt == SD_MDT_F16) mv = SdVec<__half>::ld1(static_cast<const __half *>(p.mask) + off);
    else mv = SdVec<__nv_bfloat16>::ld1(static_cast<const __nv_bfloat16 *>(p.mask) + off);
    return fmaf(mv, SD_LOG2E, s);
}

/* tensor-core decode (sdpa_decode_mma_cuda.cu): 16-bit dtype, k and v with 16-byte loads (vec_k, vec_v),
 * dp 32/64/128/256; blocks per SM its shared memory allows (for the split plan); the launch (p.nrg row
 * groups of 16 rows; keys per split p.chunk a multiple of SD_DEC_MMA_BK). */
#define SD_DEC_MMA_BK 64
#define SD_DEC_NCTR 16384
int sd_decode_mma_occupancy(int dp);
/* Clusters of c (2..SD_DEC_MAX_CLUSTER) tensor-core decode blocks resident at once on the current device
 * (cudaOccupancyMaxActiveClusters), cached; 0 when the size is refused or there is no device. */
#define SD_DEC_MAX_CLUSTER 16
int sd_decode_mma_cluster_capacity(lc_dtype dtype, int dp, int c);
/* inv: p.rd / 2 inverse frequencies of the fused rope (float64; p.rd 0: NULL); dp 64 or 128 with rope. */
cudaError_t sd_launch_decode_mma(lc_dtype dtype, int dp, const sd_params &p, const double *inv, unsigned blocks,
                                 cudaStream_t stream);
/* the short-path decode (sdpa_decode_lean_cuda.cu; sdpa_cuda.cu's sd_lean_fits says when): one block a (b, head) when
 * per_head, else a (b, kv head); inv: the fused rope's 32 inverse frequencies (NULL without). */
cudaError_t sd_launch_decode_lean(lc_dtype dtype, const sd_params &p, const double *inv, bool per_head, cudaStream_t stream);
/* decode launcher (sdpa_decode_cuda.cu): RT rows per block (4 or 8); smem bytes for it. */
size_t sd_decode_smem(int dp, int rt);
cudaError_t sd_launch_decode(lc_dtype dtype, int dp, int rt, const sd_params &p, unsigned blocks, cudaStream_t stream);
/* the combine pass of the split partials (sdpa_cuda.cu). */
cudaError_t sd_launch_combine(lc_dtype dtype, const sd_params &p, cudaStream_t stream);

#endif
