/* sdpa_decode_lean_cuda.cu — a short-path decode attention for the model runner's step (chosen in sdpa_cuda.cu by
 * sd_lean_fits: by default caches of at most 256 keys, LC_SDPA_DECODE_LEAN=N: at most N, 0: never): one query row a
 * head (sq = 1), head_dim 64, float16 / bfloat16, GQA group <= 8, no mask, no window, the KV cache's append (tnew <= 1)
 * and the rope (full rotary_dim) fused as in the tensor-core decode (sdpa_decode_mma_cuda.cu), whose semantics and bits
 * it keeps for the rope and the append (the attention's sums run in another order).
 * Why: at the runner's shapes (a few dozen to a few hundred keys) the tensor-core decode spends ~6 us on a chain of
 * stages (session 27/29 stamps: ~2 us to the tile loads, 1.3-1.7 us a 64-key tile, the warps' merge). Here a block of
 * 128 threads takes 128 keys a pass, one key a thread: its k and v rows load straight into registers (16-byte loads,
 * v's requested with k's), the scores of the block's rows come from q in shared memory (float, scaled), one block
 * reduction a pass gives the rows' maxima (online softmax across passes), and p·v runs with a thread on 8 keys × 8
 * columns; the 16 slices add up through shuffles and shared memory once at the end. No tensor cores, no cp.async
 * pipeline, no split merge. Two forms (template R): a block a (b, head) (R = 1; the group's blocks read their kv
 * head's rows, mostly from L2; its passes pipelined: the next pass's rows requested before this one's are used), or a
 * block a (b, kv head) with the group's rows (R = 8), which the launch takes above 4 waves of the first form's blocks
 * (LC_SDPA_DECODE_LEAN_KV=1: always). Session 30 (H100): 0.6-0.9x the tensor-core decode's time up to ~256 keys at
 * GPT-2's and LLaMA 1.1B's heads, slower from ~480 (a pass costs ~1.7 us), hence the default's 256.
 * Append (p.tnew = 1): the group's first block writes the new token's k (rotated with the rope) and v rows into the
 * caches at L0 = the length before the call (read from kl_rw; every block takes key L0 from knew / the new value, never
 * from the cache), and the last block of sequence b to count itself sets its new length (sdl_bctr, as the tensor-core
 * decode's sdm_bctr). Rows with no key: zeros (NaN with plain_nonfinite), lse -inf.
 * Tests: tests/c/test_sdpa_cuda.c (the 16-bit decode cases and the KV append + decode case under the knob, both
 * forms), tests/python/test_kv_cache_fused.py and test_kv_cache_rope.py (fused against append + attention and rope +
 * append + attention bit for bit, the float64 reference; by default and under the knobs) — GPU machine only. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/lowp.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/sdpa_cuda.cuh"

#define SDL_NT 128   /* threads a block: keys a pass */
#define SDL_D 64     /* head_dim */
#define SDL_G 8      /* the GQA group, at most */
#define SDL_CH 8     /* 16-byte chunks a row */

/* Blocks of sequence b that have read its length (the fused append); 0 between launches. */
__device__ unsigned sdl_bctr[SD_DEC_NCTR];

/* The rope's inverse frequencies (pairs j, j + 32), with the launch. */
struct sdl_rope {
    double inv[SDL_D / 2];
};

/* This thread's share of the pass at key k0: its k row (key k0 + tid) and its v chunks (keys k0 + slice·8 + i,
 * columns pc..pc+7), the new token's row (key L0 when fresh) from knew / vnb instead of the cache. */
template <typename T>
__device__ __forceinline__ void sdl_load(const T *kb, const T *vb, long long k2, long long v2, const T *knew, const T *vnb,
                                         bool fresh_row, int L0, int L, int k0, int tid, int slice, int pc, uint4 (&kr)[SDL_CH],
                                         uint4 (&vv)[8]) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int key = k0 + slice * 8 + i;
        if (key < L) {
            const T *src = fresh_row && key == L0 ? vnb : vb + (long long)key * v2;
            vv[i] = *reinterpret_cast<const uint4 *>(src + pc);
        } else {
            vv[i] = make_uint4(0u, 0u, 0u, 0u);
        }
    }
    const int key = k0 + tid;
    if (key < L) {
        const T *src = fresh_row && key == L0 ? knew : kb + (long long)key * k2;
#pragma unroll
        for (int c = 0; c < SDL_CH; c++) kr[c] = *reinterpret_cast<const uint4 *>(src + 8 * c);
    }
}

/* R: query rows a block (1: a block a head, the group's blocks sharing their kv head's rows through L2; SDL_G: a
 * block a kv head with the whole group). */
template <typename T, bool ROPE, int R>
__global__ void __launch_bounds__(SDL_NT) sd_decode_lean(const sd_params p, const __grid_constant__ sdl_rope rt) {
    __shared__ __align__(16) float qs[R][SDL_D];          /* q rows, float, times qscale */
    __shared__ float ps[R][SDL_NT];                       /* a pass's weights */
    __shared__ float red[SDL_NT / 32][R];                 /* the warps' row maxima, then sums */
    __shared__ __align__(16) float acc_s[SDL_NT / 32][R][SDL_D]; /* the warps' p·v */
    __shared__ __align__(16) T qraw[R][SDL_D];            /* q as given, then rotated (rope) */
    __shared__ __align__(16) T knew[SDL_D];               /* the new key, rotated (rope) */
    __shared__ float2 cs_s[SDL_D / 2];                    /* rope: cos, sin of each pair */
    __shared__ int l0_s;
    __shared__ double pos_s;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    /* block = ((b · kv_heads + kvh) · nsub + rs): rows r0 .. r0 + nr - 1 of the group (sq = 1: row r is head
     * kvh·group + r) */
    const int nsub = R == 1 ? p.group : 1, nr = R == 1 ? 1 : p.group;
    const unsigned rest = blockIdx.x / (unsigned)nsub;
    const int rs = (int)(blockIdx.x % (unsigned)nsub), r0 = R == 1 ? rs : 0;
    const int kvh = (int)(rest % (unsigned)p.kv_heads), b = (int)(rest / (unsigned)p.kv_heads);
    const T *const kb = static_cast<const T *>(p.k) + (long long)b * p.k_st[0] + (long long)kvh * p.k_st[1];
    const T *const vb = static_cast<const T *>(p.v) + (long long)b * p.v_st[0] + (long long)kvh * p.v_st[1];
    const long long k2 = p.k_st[2], v2 = p.v_st[2];
    lc_pdl_entry(); /* pdl.cuh */

    int L = p.tnew ? 0 : sd_key_len(p, b), l0 = 0;
    if (p.tnew && tid == 0) l0 = *(volatile const int *)(p.kl_rw + b);
    if (ROPE && tid == 0) {
        const long long o = (long long)b * p.rp_st[0];
        pos_s = p.rpos64 ? (double)static_cast<const long long *>(p.rpos)[o] : (double)static_cast<const int *>(p.rpos)[o];
    }
    /* q's rows, 16 bytes a thread (nr · 8 <= 64 chunks) */
    if (tid < nr * SDL_CH) {
        const int r = tid / SDL_CH, c = (tid % SDL_CH) * 8;
        const T *src = static_cast<const T *>(p.q) + (long long)b * p.q_st[0] + (long long)(kvh * p.group + r0 + r) * p.q_st[1] + c;
        *reinterpret_cast<uint4 *>(&qraw[r][c]) = *reinterpret_cast<const uint4 *>(src);
    }
    unsigned cnt = ~0u;
    if (p.tnew && tid == 0) {
        l0 = min(max(l0, 0), p.skv);
        l0_s = l0;
        cnt = atomicAdd(&sdl_bctr[b], 1u);
    }
    __syncthreads();
    const int L0 = p.tnew ? l0_s : L;
    if (p.tnew) L = min(L0 + p.tnew, p.skv);
    const T *const knb = p.tnew ? static_cast<const T *>(p.kn) + (long long)b * p.kn_st[0] + (long long)kvh * p.kn_st[1] : kb;
    const T *const vnb = p.tnew ? static_cast<const T *>(p.vn) + (long long)b * p.vn_st[0] + (long long)kvh * p.vn_st[1] : vb;
    const bool fresh_row = p.tnew && L0 < L; /* the new token's row is key L0 */

    if (ROPE) { /* the pairs' cos / sin (one a thread), then q's rows and the new key rotated in T (the rope op's bits) */
        if (tid < SDL_D / 2) {
            float c, s;
            lc_rope_cs(pos_s, rt.inv[tid], &c, &s);
            cs_s[tid] = make_float2(c, s);
        }
        __syncthreads();
        for (int idx = tid; idx < (nr + 1) * (SDL_D / 2); idx += SDL_NT) {
            const int r = idx / (SDL_D / 2), j = idx % (SDL_D / 2);
            const float2 cs = cs_s[j];
            float o1, o2;
            if (r < nr) {
                lc_rope_apply(Elem<T>::ld(qraw[r][j]), Elem<T>::ld(qraw[r][j + SDL_D / 2]), cs.x, cs.y, &o1, &o2);
                qraw[r][j] = Elem<T>::st(o1);
                qraw[r][j + SDL_D / 2] = Elem<T>::st(o2);
            } else if (fresh_row) {
                lc_rope_apply(Elem<T>::ld(knb[j]), Elem<T>::ld(knb[j + SDL_D / 2]), cs.x, cs.y, &o1, &o2);
                knew[j] = Elem<T>::st(o1);
                knew[j + SDL_D / 2] = Elem<T>::st(o2);
            }
        }
    } else if (fresh_row && tid < SDL_CH) {
        *reinterpret_cast<uint4 *>(&knew[tid * 8]) = *reinterpret_cast<const uint4 *>(knb + tid * 8);
    }
    __syncthreads();
    for (int idx = tid; idx < nr * SDL_D; idx += SDL_NT) {
        const int r = idx / SDL_D, j = idx % SDL_D;
        qs[r][j] = Elem<T>::ld(qraw[r][j]) * p.qscale;
    }
    /* the append (the group's first block): the new rows into the caches at L0 (k rotated with the rope); no block
     * reads them there (key L0 comes from knew / vnb) */
    if (fresh_row && rs == 0 && tid < 2 * SDL_CH) {
        const int c = (tid % SDL_CH) * 8;
        if (tid < SDL_CH)
            *reinterpret_cast<uint4 *>(const_cast<T *>(kb) + (long long)L0 * k2 + c) = *reinterpret_cast<const uint4 *>(&knew[c]);
        else
            *reinterpret_cast<uint4 *>(const_cast<T *>(vb) + (long long)L0 * v2 + c) = *reinterpret_cast<const uint4 *>(vnb + c);
    }
    __syncthreads();

    /* p·v layout: thread = slice (16: keys slice·8 .. +7 of a pass) × chunk (8 columns) */
    const int pc = (lane & 7) * 8, slice = (lane >> 3) + 4 * warp;
    float m[R], lsum[R], acc[R][8];
#pragma unroll
    for (int r = 0; r < R; r++) {
        m[r] = -FLT_MAX;
        lsum[r] = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) acc[r][e] = 0.0f;
    }
    /* one row a block: the passes pipelined (the next pass's rows requested before this one's are used; with the
     * group's rows the registers do not hold both) */
    constexpr bool PIPE = R == 1;
    uint4 vv[8], kr[SDL_CH];
    if (PIPE) sdl_load<T>(kb, vb, k2, v2, knew, vnb, fresh_row, L0, L, 0, tid, slice, pc, kr, vv);
    for (int k0 = 0; k0 < L; k0 += SDL_NT) {
        const bool more = PIPE && k0 + SDL_NT < L;
        uint4 nv[8], nk[SDL_CH];
        if (more) sdl_load<T>(kb, vb, k2, v2, knew, vnb, fresh_row, L0, L, k0 + SDL_NT, tid, slice, pc, nk, nv);
        if (!PIPE) sdl_load<T>(kb, vb, k2, v2, knew, vnb, fresh_row, L0, L, k0, tid, slice, pc, kr, vv);
        const int key = k0 + tid;
        /* scores (log2 units) and the rows' maxima over the pass */
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (r >= nr) break;
            float s = -INFINITY;
            if (key < L) {
                float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
                for (int c = 0; c < SDL_CH; c++) {
                    float kf[8];
                    lc_u4_to_f8(kr[c], kf, T());
                    const float4 a = *reinterpret_cast<const float4 *>(&qs[r][8 * c]);
                    const float4 e = *reinterpret_cast<const float4 *>(&qs[r][8 * c + 4]);
                    s0 = fmaf(a.x, kf[0], s0), s0 = fmaf(a.y, kf[1], s0), s0 = fmaf(a.z, kf[2], s0), s0 = fmaf(a.w, kf[3], s0);
                    s1 = fmaf(e.x, kf[4], s1), s1 = fmaf(e.y, kf[5], s1), s1 = fmaf(e.z, kf[6], s1), s1 = fmaf(e.w, kf[7], s1);
                }
                s = s0 + s1;
            }
            ps[r][tid] = s;
            float mx = s;
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
            if (lane == 0) red[warp][r] = mx;
        }
        __syncthreads();
        /* the rows' new maxima; p·v over the thread's 8 keys (weights exp2(s - m): 0 for keys >= L, s = -inf);
         * one thread of each slice (chunk 0) counts the slice's weights into the row's sum */
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (r >= nr) break;
            const float mb = fmaxf(fmaxf(red[0][r], red[1][r]), fmaxf(red[2][r], red[3][r]));
            const float mn = fmaxf(m[r], mb), alpha = exp2f(m[r] - mn);
            m[r] = mn;
            float a8[8];
#pragma unroll
            for (int e = 0; e < 8; e++) a8[e] = acc[r][e] * alpha;
            float ls = lsum[r] * alpha;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const float w = exp2f(ps[r][slice * 8 + i] - mn);
                if ((lane & 7) == 0) ls += w;
                float vf[8];
                lc_u4_to_f8(vv[i], vf, T());
#pragma unroll
                for (int e = 0; e < 8; e++) a8[e] = fmaf(w, vf[e], a8[e]);
            }
            lsum[r] = ls;
#pragma unroll
            for (int e = 0; e < 8; e++) acc[r][e] = a8[e];
        }
        if (more) {
#pragma unroll
            for (int i = 0; i < 8; i++) vv[i] = nv[i], kr[i] = nk[i];
        }
        __syncthreads(); /* ps and red are rewritten by the next pass */
    }

    /* the 16 slices added: the warp's 4 by shuffles (lanes 8 apart), then the 4 warps in shared memory */
#pragma unroll
    for (int r = 0; r < R; r++) {
        if (r >= nr) break;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            float v = acc[r][e];
            v += __shfl_xor_sync(0xffffffffu, v, 8);
            v += __shfl_xor_sync(0xffffffffu, v, 16);
            acc[r][e] = v;
        }
        float ls = lsum[r];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) ls += __shfl_xor_sync(0xffffffffu, ls, o);
        if (lane < 8) {
            *reinterpret_cast<float4 *>(&acc_s[warp][r][pc]) = make_float4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
            *reinterpret_cast<float4 *>(&acc_s[warp][r][pc + 4]) = make_float4(acc[r][4], acc[r][5], acc[r][6], acc[r][7]);
        }
        if (lane == 0) red[warp][r] = ls;
    }
    __syncthreads();
    for (int idx = tid; idx < nr * SDL_D; idx += SDL_NT) {
        const int r = idx / SDL_D, c = idx % SDL_D;
        float num = 0.0f, den = 0.0f;
#pragma unroll
        for (int w = 0; w < SDL_NT / 32; w++) num += acc_s[w][r][c], den += red[w][r];
        float mr = -FLT_MAX; /* the row's maximum: every thread holds it (m[r] for r = its row) */
#pragma unroll
        for (int r2 = 0; r2 < R; r2++)
            if (r2 == r) mr = m[r2];
        sd_store<T>(p, b, kvh * p.group + r0 + r, 0, c, num, mr, den);
    }
    /* the fused append's count: the last block of sequence b sets its new length */
    if (cnt != ~0u) sd_append_count_finish(p, sdl_bctr, (unsigned)p.kv_heads * (unsigned)nsub, cnt, l0);
}

template <typename T, bool ROPE>
static cudaError_t sdl_launch_r(const sd_params &p, const sdl_rope &rt, bool per_head, cudaStream_t stream) {
    const unsigned kvb = (unsigned)p.batch * (unsigned)p.kv_heads;
    if (per_head) return lc_pdl_launch(sd_decode_lean<T, ROPE, 1>, dim3(kvb * (unsigned)p.group), dim3(SDL_NT), 0, stream, p, rt);
    return lc_pdl_launch(sd_decode_lean<T, ROPE, SDL_G>, dim3(kvb), dim3(SDL_NT), 0, stream, p, rt);
}

template <typename T>
static cudaError_t sdl_launch_t(const sd_params &p, const double *inv, bool per_head, cudaStream_t stream) {
    sdl_rope rt;
    for (int j = 0; j < SDL_D / 2; j++) rt.inv[j] = inv ? inv[j] : 0.0;
    if (inv) return sdl_launch_r<T, true>(p, rt, per_head, stream);
    return sdl_launch_r<T, false>(p, rt, per_head, stream);
}

/* sdpa_cuda.cuh: one block a (b, head) when per_head, else a (b, kv head); p as lc_cuda_launch_sdpa fills it (sq 1,
 * head_dim 64, group <= 8, no mask or window, tnew <= 1, rope with rotary_dim 64 when inv). */
cudaError_t sd_launch_decode_lean(lc_dtype dtype, const sd_params &p, const double *inv, bool per_head, cudaStream_t stream) {
    if (p.batch == 0 || p.kv_heads == 0) return cudaSuccess;
    if (p.sq != 1 || p.d != SDL_D || p.group > SDL_G || p.tnew > 1 || (inv != NULL) != (p.rd > 0)) return cudaErrorInvalidValue;
    if (dtype == LC_DTYPE_F16) return sdl_launch_t<__half>(p, inv, per_head, stream);
    if (dtype == LC_DTYPE_BF16) return sdl_launch_t<__nv_bfloat16>(p, inv, per_head, stream);
    return cudaErrorInvalidValue;
}

LC_TL_READER(lc_tl_read_sdpa_decode_lean_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
