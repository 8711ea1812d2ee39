/* decode_fused_cuda.cu — one decode step of a batch-1 GPT-2 / LLaMA-family model as one persistent kernel
 * (lc_cuda_launch_decode_program; the program is core/decode_program.h's instruction list).
 * Grid: one 512-thread block per SM (its shared memory allows no second), all resident (a plain launch on an
 * otherwise idle device; a barrier that waits past ~2 s gives up and the step writes token -1).
 * Warp 0 lane 0 is the producer: it walks every GEMV of the program and bulk-copies this block's rows of each
 * weight ([r0, r1) of n, contiguous in the row-major [n, k] array) into a ring of 24 KiB slots (mbarrier
 * full/empty pairs), at most DP_INFLIGHT copies under way. Weights depend on nothing, so it runs ahead of the
 * grid barriers until the ring is full: DRAM keeps streaming while the grid synchronises and the attention runs.
 * Warps 1..15 consume: for a GEMV they stage the input vector (float32, shared; its norm vectors and the block's
 * bias slice were copied in by cp.async before the barrier ahead of it), normalise it, then take the ring's
 * slots in order: a slot's rows split into (row, group of 256-element segments) units, a warp a unit, a lane 8
 * weights (one 16-byte read) against 8 staged inputs, the warp's sum stored in the unit's shared slot; the
 * epilogue sums a row's units in order (deterministic) and writes the block's rows (its rows of the residual
 * stream also kept in shared memory). An ATTN instruction gives each block (head, key split) items; the
 * partials (max, sum, weighted values) are merged by the next GEMV's input staging.
 * Grid barrier: a global arrival counter (release add, acquire poll), reset by the last block to leave.
 * H100 (session 22): correct and deterministic, but slower than the op-by-op graph step (GPT-2 124M 0.51 against
 * 0.38 ms, LLaMA 1.1B 1.46 against 1.40): each barrier ~3 us and each L2 round trip of the critical path 1.5-2.5
 * us while the weights stream (dp_probe.py); the engine leaves it off by default (engine.FUSED_DEFAULT).
 * Tests: tests/python/test_decode_program.py (logits and tokens against the op-by-op decode and the float64
 * reference), GPU machine. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/argmax_key.cuh"
#include "backend/cuda/bulk.cuh"
#include "backend/cuda/cuda_kernels.h"
#include "core/decode_program.h"
#include "core/rope_freq.h"

#define DP_CW LC_DP_CONSUMER_WARPS       /* consumer warps */
#define DP_CT (DP_CW * 32)               /* consumer threads */
#define DP_SPIN_LIMIT (1u << 25)         /* ~2 s of 64 ns sleeps: a grid that is not resident gives up */
#define DP_L2AHEAD 0  /* LC_DP_L2AHEAD default (H100, session 22: 8 and 24 slowed LLaMA 1.1B 1.56 -> 2.1 ms a step) */
#define DP_INFLIGHT 1 /* LC_DP_INFLIGHT default (0: the ring's depth; H100, session 22: 1 the fastest, 1.46 vs 1.56) */

/* ---- PTX helpers ------------------------------------------------------------------------------------- */
__device__ __forceinline__ unsigned dp_ld_acquire(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void dp_consumer_sync() { asm volatile("bar.sync 1, %0;" ::"n"(DP_CT) : "memory"); }

__device__ __forceinline__ float dp_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ---- element types ----------------------------------------------------------------------------------- */
template <typename T> __device__ __forceinline__ float dp_f(T v);
template <> __device__ __forceinline__ float dp_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float dp_f<__half>(__half v) { return __half2float(v); }
template <typename T> __device__ __forceinline__ T dp_t(float v);
template <> __device__ __forceinline__ __nv_bfloat16 dp_t<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half dp_t<__half>(float v) { return __float2half_rn(v); }

/* two packed 16-bit values -> float2 */
template <typename T> __device__ __forceinline__ float2 dp_pair(unsigned u);
template <> __device__ __forceinline__ float2 dp_pair<__nv_bfloat16>(unsigned u) {
    return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
}
template <> __device__ __forceinline__ float2 dp_pair<__half>(unsigned u) {
    __half2 h = *reinterpret_cast<__half2 *>(&u);
    return __half22float2(h);
}

/* w: 8 weights; x: the segment's staged inputs at the lane's first float4 (dp_phys order: the second 128 on) */
template <typename T> __device__ __forceinline__ float dp_dot8(uint4 w, const float *x) {
    const float4 x0 = *reinterpret_cast<const float4 *>(x), x1 = *reinterpret_cast<const float4 *>(x + 128);
    const float2 a = dp_pair<T>(w.x), b = dp_pair<T>(w.y), c = dp_pair<T>(w.z), d = dp_pair<T>(w.w);
    float s = a.x * x0.x;
    s = fmaf(a.y, x0.y, s);
    s = fmaf(b.x, x0.z, s);
    s = fmaf(b.y, x0.w, s);
    s = fmaf(c.x, x1.x, s);
    s = fmaf(c.y, x1.y, s);
    s = fmaf(d.x, x1.z, s);
    return fmaf(d.y, x1.w, s);
}

/* where input element i sits in the staged vector: a lane's 8 inputs of a 256-element segment (the 8 weights of
 * its 16-byte read) as two float4 128 elements apart, so a warp's float4 reads are conflict-free */
__device__ __forceinline__ int dp_phys(int i) { return (i & ~255) | ((i & 4) << 5) | (((i >> 3) & 31) << 2) | (i & 3); }

__device__ __forceinline__ float dp_gelu_tanh(float x) {
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

/* the block's rows of an n-row GEMV: [n*b/G, n*(b+1)/G) */
__device__ __forceinline__ void dp_rows(int n, int b, int g, int &r0, int &r1) {
    r0 = (int)((long long)n * b / g);
    r1 = (int)((long long)n * (b + 1) / g);
}

/* the key splits a step uses: about DP_SPLIT_KEYS keys each, at most the plan's (the partials keep the plan's
 * stride; the merge reads only these) */
#define DP_SPLIT_KEYS 32
__device__ __forceinline__ int dp_splits(const lc_dp_prog *p, int pos) {
    const int len = pos + 1, span = p->window > 0 && len > p->window ? p->window : len;
    const int want = (span + DP_SPLIT_KEYS - 1) / DP_SPLIT_KEYS;
    return want < 1 ? 1 : want > p->splits ? p->splits : want;
}

/* probe (LC_DP_PROBE=1, launcher): globaltimer ns since the block's entry, as floats, for blocks 0 and grid-1 */
__device__ __forceinline__ unsigned long long dp_now() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void dp_stamp(float *pr, int slot, unsigned long long t0) {
    if (pr && threadIdx.x == 32) pr[slot] = (float)(dp_now() - t0);
}

struct dp_smem_t {
    unsigned char *ring;
    uint64_t *full, *empty;
    float *xs, *acc, *red, *own; /* own: this block's rows of the residual stream (its partition of d) */
    unsigned char *vec;          /* the next GEMV's norm weight, norm bias [norm_k] and bias slice (model dtype),
                                  * copied in (cp.async) before the barrier ahead of it */
    volatile int *abort_flag;
};

/* ---- producer ---------------------------------------------------------------------------------------- */
/* a walk over this block's weight chunks: every GEMV in order, rps rows at a time */
struct dp_cursor {
    int i, r, r1, k, rps;
    const unsigned char *w;
};
/* a small vector's bytes [lo, hi) into L2 (whole 16-byte pieces covering it) */
__device__ __forceinline__ void dp_l2_vector(const void *base, size_t lo, size_t hi) {
    if (!base || hi <= lo) return;
    const uintptr_t a = ((uintptr_t)base + lo) & ~(uintptr_t)15, e = ((uintptr_t)base + hi + 15) & ~(uintptr_t)15;
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(a), "r"((unsigned)(e - a)) : "memory");
}

/* the next GEMV from instruction i on with rows in this block; the producer (pf = 1) also requests its norm
 * vectors and this block's bias slice into L2, so the consumers' staging and epilogue find them there */
__device__ __forceinline__ void dp_cursor_seek(const lc_dp_prog *p, dp_cursor &c, int i, bool pf = false) {
    for (; i < p->n_instr; i++) {
        const lc_dp_instr *in = p->instr + i;
        if (in->kind != LC_DP_GEMV) continue;
        int r0, r1;
        dp_rows(in->n, blockIdx.x, p->grid, r0, r1);
        if (pf) {
            dp_l2_vector(in->norm_w, 0, (size_t)in->k * 2);
            dp_l2_vector(in->norm_b, 0, (size_t)in->k * 2);
            dp_l2_vector(in->bias, (size_t)r0 * 2, (size_t)r1 * 2);
        }
        if (r0 == r1) continue;
        c.i = i;
        c.r = r0;
        c.r1 = r1;
        c.k = in->k;
        c.rps = lc_dp_rows_per_slot(in->k);
        c.w = (const unsigned char *)in->w;
        return;
    }
    c.i = p->n_instr; /* done */
}
__device__ __forceinline__ void dp_cursor_next(const lc_dp_prog *p, dp_cursor &c, bool pf = false) {
    c.r += c.rps;
    if (c.r >= c.r1) dp_cursor_seek(p, c, c.i + 1, pf);
}
__device__ __forceinline__ unsigned dp_cursor_bytes(const dp_cursor &c) {
    return (unsigned)min(c.rps, c.r1 - c.r) * (unsigned)c.k * 2u;
}

/* Warp 0 lane 0: the chunks into the ring in order. With l2ahead > 0, the chunks that do not fit the ring yet
 * (up to l2ahead past it) are requested into L2 meanwhile (cp.async.bulk.prefetch.L2), so DRAM keeps streaming
 * while the ring is full during the barriers and the attention. */
__device__ void dp_producer(const lc_dp_prog *p, dp_smem_t &s, int l2ahead, int inflight) {
    const int ns = p->stages;
    int stage = 0;
    unsigned phase = 0;
    long long issued = 0, fetched = ns;
    dp_cursor cur, pf;
    dp_cursor_seek(p, cur, 0, true);
    pf = cur;
    for (int j = 0; j < ns && pf.i < p->n_instr; j++) dp_cursor_next(p, pf); /* the first ns chunks fill the ring */
    while (cur.i < p->n_instr) {
        unsigned spins = 0;
        for (;;) {
            while (l2ahead > 0 && pf.i < p->n_instr && fetched < issued + ns + l2ahead) {
                asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(pf.w + (size_t)pf.r * pf.k * 2),
                             "r"(dp_cursor_bytes(pf))
                             : "memory");
                dp_cursor_next(p, pf);
                fetched++;
            }
            /* at most `inflight` copies under way (0: the ring's depth): a deeper queue only lengthens every
             * load's latency on the consumers' critical path (staging, barriers) */
            const long long c = issued - inflight;
            const bool room = inflight <= 0 || c < 0 || lc_mbar_test(&s.full[c % ns], (unsigned)((c / ns) & 1));
            if (room && lc_mbar_test(&s.empty[stage], phase ^ 1u)) break;
            if (*s.abort_flag) return;
            if (++spins > 64) __nanosleep(32);
        }
        const unsigned bytes = dp_cursor_bytes(cur);
        lc_mbar_expect_tx(&s.full[stage], bytes);
        lc_bulk_g2s(s.ring + (size_t)stage * LC_DP_STAGE_BYTES, cur.w + (size_t)cur.r * cur.k * 2, bytes, &s.full[stage]);
        dp_cursor_next(p, cur, true);
        issued++;
        if (++stage == ns) {
            stage = 0;
            phase ^= 1u;
        }
    }
}

/* ---- consumer pieces --------------------------------------------------------------------------------- */
/* sum over the consumer threads (all must call); red holds DP_CW floats */
__device__ float dp_block_sum(float v, float *red) {
    const int t = threadIdx.x - 32, w = t >> 5, lane = t & 31;
    v = dp_warp_sum(v);
    dp_consumer_sync();
    if (lane == 0) red[w] = v;
    dp_consumer_sync();
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < DP_CW; i++) s += red[i];
    return s;
}

/* grid barrier number `count` (1-based) of this step; false: it waited too long (the step gives up). The arrivals
 * count in sync[0] and the waiters poll it (measured faster on the H100 than the other form, flags & 1: the last
 * to arrive publishes `count` in sync[32], a line of its own that only the waiters read). */
__device__ bool dp_grid_sync(const lc_dp_prog *p, dp_smem_t &s, unsigned count, int flags) {
    dp_consumer_sync();
    if (threadIdx.x == 32) {
        const unsigned target = count * (unsigned)p->grid;
        __threadfence();
        const unsigned old = atomicAdd(&p->sync[0], 1u);
        unsigned spins = 0;
        if (!(flags & 1)) {
            while (dp_ld_acquire(&p->sync[0]) < target) {
                if (++spins > DP_SPIN_LIMIT) {
                    *s.abort_flag = 1;
                    break;
                }
                __nanosleep(64);
            }
        } else if (old == target - 1) {
            asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(&p->sync[32]), "r"(count) : "memory");
        } else {
            while (dp_ld_acquire(&p->sync[32]) < count) {
                if (++spins > DP_SPIN_LIMIT) {
                    *s.abort_flag = 1;
                    break;
                }
                if (spins > 16) __nanosleep(32);
            }
        }
        __threadfence();
    }
    dp_consumer_sync();
    return *s.abort_flag == 0;
}

/* cp.async of n16 16-byte pieces from src into dst, spread over the consumer threads */
__device__ __forceinline__ void dp_async_copy(void *dst, const void *src, int n16) {
    for (int i = threadIdx.x - 32; i < n16; i += DP_CT)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(lc_smem_addr((const char *)dst + 16 * i)),
                     "l"((const char *)src + 16 * (size_t)i)
                     : "memory");
}

/* the small vectors of GEMV `in` (this block's part) into s.vec, asynchronously: issued before the barrier ahead
 * of the GEMV, waited for in its staging (so their L2 round trip overlaps the barrier): [0, 2 norm_k) the norm
 * weight, [2 norm_k, 4 norm_k) the norm bias, then the bias from row (r0 & ~7) on */
__device__ void dp_preload(const lc_dp_prog *p, const lc_dp_instr *in, dp_smem_t &s) {
    if (in->kind != LC_DP_GEMV) return;
    const int nk = p->d; /* norms are over d */
    if (in->norm != LC_DP_NORM_NONE) {
        if (in->norm_w) dp_async_copy(s.vec, in->norm_w, nk * 2 / 16);
        if (in->norm_b) dp_async_copy(s.vec + 2 * nk, in->norm_b, nk * 2 / 16);
    }
    if (in->bias) {
        int r0, r1;
        dp_rows(in->n, blockIdx.x, p->grid, r0, r1);
        const int a = r0 & ~7, e = min((r1 + 7) & ~7, in->n); /* n % 8 == 0 with a bias (checked) */
        if (e > a) dp_async_copy(s.vec + 4 * nk, (const char *)in->bias + 2 * (size_t)a, (e - a) * 2 / 16);
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
}

/* the input vector xs[0..k) of a GEMV (float32, shared), normalised if asked */
template <typename T>
__device__ void dp_stage_input(const lc_dp_prog *p, const lc_dp_instr *in, dp_smem_t &s, long long tok, int pos) {
    const int t = threadIdx.x - 32, k = in->k;
    float *xs = s.xs;
    switch (in->in) {
    case LC_DP_IN_EMBED: {
        const T *e = (const T *)p->wte + (size_t)tok * k;
        const T *pe = p->wpe ? (const T *)p->wpe + (size_t)pos * k : nullptr;
        int c0, c1; /* this block's share of the residual stream, written once */
        dp_rows(k, blockIdx.x, p->grid, c0, c1);
        for (int i = t; i < k; i += DP_CT) {
            float v = dp_f<T>(e[i]);
            if (pe) v += dp_f<T>(pe[i]);
            xs[dp_phys(i)] = v;
            if (i >= c0 && i < c1) {
                p->res[i] = v;
                s.own[i - c0] = v;
            }
        }
        break;
    }
    case LC_DP_IN_RES:
        for (int i = t; i < k; i += DP_CT) xs[dp_phys(i)] = __ldcg(p->res + i);
        break;
    case LC_DP_IN_BUF:
        for (int i = t; i < k; i += DP_CT) xs[dp_phys(i)] = __ldcg(p->mlp + i);
        break;
    case LC_DP_IN_SWIGLU:
        for (int i = t; i < k; i += DP_CT) {
            const float gt = __ldcg(p->mlp + i), up = __ldcg(p->mlp + k + i);
            xs[dp_phys(i)] = gt / (1.0f + __expf(-gt)) * up;
        }
        break;
    case LC_DP_IN_ATTN: { /* a head's split partials merged: every load of an element in one round */
        const int hd = p->head_dim, sp = p->splits, se = dp_splits(p, pos), stride = hd + 2;
        for (int i = t; i < k; i += DP_CT) {
            const int h = i / hd, c = i - h * hd;
            const float *pt = p->part + (size_t)h * sp * stride;
            float m = -INFINITY, mj[8], lj[8], aj[8];
            float num = 0.f, den = 0.f;
            for (int j0 = 0; j0 < se; j0 += 8) { /* 8 splits a round (se is at most the plan's splits) */
                const int nj = min(8, se - j0);
#pragma unroll
                for (int u = 0; u < 8; u++)
                    if (u < nj) {
                        mj[u] = __ldcg(pt + (j0 + u) * stride);
                        lj[u] = __ldcg(pt + (j0 + u) * stride + 1);
                        aj[u] = __ldcg(pt + (j0 + u) * stride + 2 + c);
                    }
                float mn = m;
#pragma unroll
                for (int u = 0; u < 8; u++)
                    if (u < nj && lj[u] > 0.f) mn = fmaxf(mn, mj[u]);
                const float corr = m == -INFINITY ? 0.f : __expf(m - mn);
                num *= corr;
                den *= corr;
#pragma unroll
                for (int u = 0; u < 8; u++)
                    if (u < nj && lj[u] > 0.f) {
                        const float f = __expf(mj[u] - mn);
                        num = fmaf(f, aj[u], num);
                        den = fmaf(f, lj[u], den);
                    }
                m = mn;
            }
            xs[dp_phys(i)] = den > 0.f ? num / den : 0.f;
        }
        break;
    }
    }
    if (in->norm == LC_DP_NORM_NONE) {
        asm volatile("cp.async.wait_all;" ::: "memory"); /* the bias slice, read in the epilogue */
        dp_consumer_sync();
        return;
    }
    asm volatile("cp.async.wait_all;" ::: "memory"); /* dp_preload's copies (this thread's) */
    dp_consumer_sync();
    const T *nw = in->norm_w ? (const T *)s.vec : nullptr, *nb = in->norm_b ? (const T *)(s.vec + 2 * p->d) : nullptr;
    if (in->norm == LC_DP_NORM_RMS) {
        float ss = 0.f;
        for (int i = t; i < k; i += DP_CT) ss += xs[i] * xs[i]; /* order-free: physical index */
        const float r = rsqrtf(dp_block_sum(ss, s.red) / (float)k + in->eps);
        for (int i = t; i < k; i += DP_CT) xs[dp_phys(i)] *= r * (nw ? dp_f<T>(nw[i]) : 1.f);
    } else {
        float sm = 0.f;
        for (int i = t; i < k; i += DP_CT) sm += xs[i]; /* order-free: physical index */
        const float mean = dp_block_sum(sm, s.red) / (float)k;
        float sv = 0.f;
        for (int i = t; i < k; i += DP_CT) {
            const float dlt = xs[i] - mean;
            sv += dlt * dlt;
        }
        const float rstd = rsqrtf(dp_block_sum(sv, s.red) / (float)k + in->eps);
        for (int i = t; i < k; i += DP_CT) {
            const int j = dp_phys(i);
            xs[j] = (xs[j] - mean) * rstd * (nw ? dp_f<T>(nw[i]) : 1.f) + (nb ? dp_f<T>(nb[i]) : 0.f);
        }
    }
    dp_consumer_sync();
}

template <typename T>
__device__ void dp_gemv(const lc_dp_prog *p, const lc_dp_instr *in, dp_smem_t &s, int &stage, unsigned &phase,
                        long long tok, int pos, float *logits, float *pr, unsigned long long t0) {
    const int t = threadIdx.x - 32, cw = t >> 5, lane = t & 31;
    const int n = in->n, k = in->k, rps = lc_dp_rows_per_slot(k), spr = k >> 8, G = lc_dp_groups(rps);
    int r0, r1;
    dp_rows(n, blockIdx.x, p->grid, r0, r1);
    dp_stage_input<T>(p, in, s, tok, pos); /* ends with a consumer sync */
    dp_stamp(pr, 1, t0);
    for (int r = r0; r < r1; r += rps) {
        const int nr = min(rps, r1 - r), units = nr * G;
        lc_mbar_wait(&s.full[stage], phase);
        const uint4 *slot = reinterpret_cast<const uint4 *>(s.ring + (size_t)stage * LC_DP_STAGE_BYTES);
        for (int u = cw; u < units; u += DP_CW) {
            const int rr = u / G, g = u - rr * G, sg0 = g * spr / G, sg1 = (g + 1) * spr / G;
            const uint4 *wrow = slot + (size_t)rr * (k >> 3) + lane;
            float a = 0.f;
            for (int sg = sg0; sg < sg1; sg++) a += dp_dot8<T>(wrow[sg * 32], s.xs + sg * 256 + lane * 4);
            a = dp_warp_sum(a);
            if (lane == 0) s.acc[(r - r0 + rr) * G + g] = a;
        }
        __syncwarp();
        if (lane == 0) lc_mbar_arrive(&s.empty[stage]);
        if (++stage == p->stages) {
            stage = 0;
            phase ^= 1u;
        }
    }
    dp_consumer_sync();
    dp_stamp(pr, 2, t0);
    /* epilogue: the block's rows */
    const T *bias = in->bias ? (const T *)(s.vec + 4 * p->d) - (r0 & ~7) : nullptr; /* indexed by row */
    unsigned long long best = 0ull;
    for (int i = t; i < r1 - r0; i += DP_CT) {
        const int row = r0 + i;
        float v = bias ? dp_f<T>(bias[row]) : 0.f;
        for (int g = 0; g < G; g++) v += s.acc[i * G + g];
        switch (in->out) {
        case LC_DP_OUT_QKV:
            p->qkv[row] = v;
            break;
        case LC_DP_OUT_MLP:
            p->mlp[row] = in->act == LC_DP_ACT_GELU_TANH ? dp_gelu_tanh(v)
                          : in->act == LC_DP_ACT_GELU_ERF  ? 0.5f * v * (1.0f + erff(v * 0.7071067811865476f))
                                                           : v;
            break;
        case LC_DP_OUT_RES: { /* n == d: the block's rows of the residual stream, kept in shared memory */
            const float r = s.own[i] + v;
            s.own[i] = r;
            p->res[row] = r;
            break;
        }
        default: { /* logits */
            if (logits) logits[row] = v;
            const unsigned long long key = lc_argmax_key(v, (unsigned)row);
            best = key > best ? key : best;
        }
        }
    }
    if (in->out == LC_DP_OUT_LOGITS) {
        for (int o = 16; o > 0; o >>= 1) {
            const unsigned long long other = __shfl_xor_sync(0xffffffffu, best, o);
            best = other > best ? other : best;
        }
        if (lane == 0 && best) atomicMax(p->amax, best);
    }
}

/* one layer's attention (batch 1): items (head, key split) over the blocks */
template <typename T>
__device__ void dp_attention(const lc_dp_prog *p, const lc_dp_instr *in, dp_smem_t &s, int pos) {
    const int t = threadIdx.x - 32, cw = t >> 5, lane = t & 31;
    const int H = p->heads, hkv = p->kv_heads, hd = p->head_dim, sp = dp_splits(p, pos), grp = H / hkv, dpl = hd >> 5;
    const int cap = p->cap, len = pos + 1, lo = p->window > 0 && len > p->window ? len - p->window : 0;
    const int span = len - lo, per = (span + sp - 1) / sp;
    const T *kc = (const T *)in->kc, *vc = (const T *)in->vc;
    float *wm = s.red + DP_CW, *wl = wm + DP_CW, *wacc = wl + DP_CW; /* [DP_CW], [DP_CW], [DP_CW][hd] */
    for (int item = blockIdx.x; item < H * sp; item += p->grid) {
        const int h = item / sp, sidx = item - h * sp, kvh = h / grp, slot = h * p->splits + sidx;
        const int j0 = lo + sidx * per, j1 = min(len, j0 + per);
        float q[4], kn[4], vn[4], acc[4];
#pragma unroll
        for (int c = 0; c < 4; c++) {
            q[c] = kn[c] = vn[c] = acc[c] = 0.f;
            if (c < dpl) {
                const int dim = lane + 32 * c;
                q[c] = __ldcg(p->qkv + h * hd + dim);
                kn[c] = __ldcg(p->qkv + (H + kvh) * hd + dim);
                vn[c] = __ldcg(p->qkv + (H + hkv + kvh) * hd + dim);
            }
        }
        if (p->rope) { /* half-split pairs (dim, dim + hd/2) are (c, c + dpl/2) of one lane */
#pragma unroll
            for (int c = 0; c < 2; c++) {
                if (c < dpl / 2) {
                    const int dim = lane + 32 * c;
                    const double ang = lc_rope_angle_reduce((double)pos * p->inv_freq[dim]);
                    float sn, cs;
                    sincosf((float)ang, &sn, &cs);
                    const int c2 = c + dpl / 2;
                    const float q1 = q[c], q2 = q[c2], k1 = kn[c], k2 = kn[c2];
                    q[c] = q1 * cs - q2 * sn;
                    q[c2] = q2 * cs + q1 * sn;
                    kn[c] = k1 * cs - k2 * sn;
                    kn[c2] = k2 * cs + k1 * sn;
                }
            }
        }
        float m = -INFINITY, l = 0.f;
        const T *kbase = kc + (size_t)kvh * cap * hd, *vbase = vc + (size_t)kvh * cap * hd;
        /* a warp's keys j0 + cw, + DP_CW, ...: four at a time, their loads issued together */
        for (int jb = j0 + cw; jb < j1; jb += 4 * DP_CW) {
            float kk[4][4], vv[4][4], dot[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int j = jb + u * DP_CW;
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    kk[u][c] = vv[u][c] = 0.f;
                    if (c < dpl && j < j1) {
                        if (j == pos) {
                            kk[u][c] = kn[c];
                            vv[u][c] = vn[c];
                        } else {
                            kk[u][c] = dp_f<T>(kbase[(size_t)j * hd + lane + 32 * c]);
                            vv[u][c] = dp_f<T>(vbase[(size_t)j * hd + lane + 32 * c]);
                        }
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                float d = 0.f;
#pragma unroll
                for (int c = 0; c < 4; c++) d = fmaf(q[c], kk[u][c], d);
                dot[u] = d;
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1)
#pragma unroll
                for (int u = 0; u < 4; u++) dot[u] += __shfl_xor_sync(0xffffffffu, dot[u], o);
#pragma unroll
            for (int u = 0; u < 4; u++) {
                if (jb + u * DP_CW >= j1) break;
                const float sc = dot[u] * p->scale, mn = fmaxf(m, sc), corr = __expf(m - mn), pr = __expf(sc - mn);
                l = l * corr + pr;
#pragma unroll
                for (int c = 0; c < 4; c++) acc[c] = acc[c] * corr + pr * vv[u][c];
                m = mn;
            }
        }
        if (lane == 0) {
            wm[cw] = m;
            wl[cw] = l;
        }
#pragma unroll
        for (int c = 0; c < 4; c++)
            if (c < dpl) wacc[cw * hd + lane + 32 * c] = acc[c];
        dp_consumer_sync();
        if (cw == 0) { /* merge the warps into this item's partial */
            float mm = -INFINITY;
            for (int w = 0; w < DP_CW; w++) mm = fmaxf(mm, wm[w]);
            float ll = 0.f, o[4] = {0.f, 0.f, 0.f, 0.f};
            for (int w = 0; w < DP_CW; w++) {
                if (wl[w] > 0.f) {
                    const float f = __expf(wm[w] - mm);
                    ll += f * wl[w];
#pragma unroll
                    for (int c = 0; c < 4; c++)
                        if (c < dpl) o[c] += f * wacc[w * hd + lane + 32 * c];
                }
            }
            float *pt = p->part + (size_t)slot * (hd + 2);
            if (lane == 0) {
                pt[0] = mm;
                pt[1] = ll;
            }
#pragma unroll
            for (int c = 0; c < 4; c++)
                if (c < dpl) pt[2 + lane + 32 * c] = o[c];
            if (h % grp == 0 && pos >= j0 && pos < j1) { /* the new key and value into the cache, once a kv head */
                T *kd = (T *)in->kc + ((size_t)kvh * cap + pos) * hd, *vd = (T *)in->vc + ((size_t)kvh * cap + pos) * hd;
#pragma unroll
                for (int c = 0; c < 4; c++)
                    if (c < dpl) {
                        kd[lane + 32 * c] = dp_t<T>(kn[c]);
                        vd[lane + 32 * c] = dp_t<T>(vn[c]);
                    }
            }
        }
        dp_consumer_sync();
    }
}

/* ---- the kernel -------------------------------------------------------------------------------------- */
template <typename T>
__global__ void __launch_bounds__(LC_DP_THREADS, 1)
    lc_decode_program_kernel(const lc_dp_prog *__restrict__ p, const int64_t *tok_in, int64_t *tok_out, float *logits,
                             float *probe, int flags, int l2ahead) {
    extern __shared__ __align__(128) unsigned char dp_sm[];
    const unsigned long long t0 = dp_now();
    float *pb = probe && (blockIdx.x == 0 || blockIdx.x == gridDim.x - 1)
                    ? probe + (blockIdx.x == 0 ? 0 : 4 * p->n_instr)
                    : nullptr;
    __shared__ int abort_flag;
    dp_smem_t s;
    const int ns = p->stages;
    s.ring = dp_sm;
    s.full = reinterpret_cast<uint64_t *>(dp_sm + (size_t)ns * LC_DP_STAGE_BYTES);
    s.empty = s.full + ns;
    s.vec = reinterpret_cast<unsigned char *>(s.empty + ns);
    s.xs = reinterpret_cast<float *>(s.vec + p->vec_bytes);
    s.acc = s.xs + p->max_k;
    s.red = s.acc + p->acc_words;
    s.own = s.red + LC_DP_RED_WORDS;
    s.abort_flag = &abort_flag;
    /* the step's position (the first layer's cache length) and token, read before anything is written */
    const int pos = *(volatile const int32_t *)p->len0;
    const long long tok = *(volatile const int64_t *)tok_in;
    const bool bad = pos < 0 || pos >= p->cap || (p->wpe && pos >= p->n_pos) || tok < 0 || tok >= p->vocab;
    if (threadIdx.x == 0) {
        abort_flag = bad ? 1 : 0;
        for (int i = 0; i < ns; i++) {
            lc_mbar_init(&s.full[i], 1);
            lc_mbar_init(&s.empty[i], DP_CW);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    if (bad) { /* a full cache or a bad token: nothing is written but the token -1 (and the overflow flags) */
        if (blockIdx.x == 0 && threadIdx.x == 0) {
            if (tok_out) *tok_out = -1;
            if (pos >= p->cap)
                for (int i = 0; i < p->n_instr; i++)
                    if (p->instr[i].kind == LC_DP_ATTN) *p->instr[i].overflow = 1;
        }
        return;
    }
    if (threadIdx.x < 32) {
        if (threadIdx.x == 0) dp_producer(p, s, l2ahead, flags >> 8);
        return;
    }
    int stage = 0;
    unsigned phase = 0, bars = 0;
    bool ok = true;
    dp_preload(p, p->instr, s);
    for (int i = 0; i < p->n_instr && ok; i++) {
        const lc_dp_instr *in = p->instr + i;
        float *pr = pb ? pb + 4 * i : nullptr; /* [start, staged, consumed, epilogue done] */
        dp_stamp(pr, 0, t0);
        if (in->kind == LC_DP_GEMV)
            dp_gemv<T>(p, in, s, stage, phase, tok, pos, logits, pr, t0);
        else
            dp_attention<T>(p, in, s, pos);
        dp_stamp(pr, 3, t0);
        if (i + 1 < p->n_instr) dp_preload(p, p->instr + i + 1, s); /* its L2 round trip overlaps the barrier */
        ok = dp_grid_sync(p, s, ++bars, flags);
    }
    if (!ok) {
        if (tok_out && threadIdx.x == 32) *tok_out = -1;
        return;
    }
    if (threadIdx.x == 32) {
        if (blockIdx.x == 0) { /* every block has passed the last barrier: the argmax is complete */
            const unsigned long long key = *(volatile unsigned long long *)p->amax;
            if (tok_out) *tok_out = lc_argmax_key_index(key);
            *p->amax = 0ull;
            for (int i = 0; i < p->n_instr; i++)
                if (p->instr[i].kind == LC_DP_ATTN) *p->instr[i].lengths = pos + 1;
        }
        __threadfence();
        if (atomicAdd(&p->sync[1], 1u) == (unsigned)p->grid - 1) { /* the last block out resets the barrier */
            p->sync[0] = 0;
            p->sync[1] = 0;
            p->sync[32] = 0;
            __threadfence();
        }
    }
}

/* shared memory of the plan: ring slots with their mbarriers, then lc_dp_smem_fixed's areas */
static size_t dp_smem_bytes(const lc_dp_prog *h) { return (size_t)h->stages * LC_DP_SLOT_BYTES + lc_dp_smem_fixed(h); }

extern "C" cudaError_t lc_cuda_decode_program_smem_max(size_t *bytes) {
    int dev = 0, v = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    /* less the static shared memory (the abort flag) and the runtime's reserve */
    *bytes = e == cudaSuccess && v > 2048 ? (size_t)v - 2048 : 0;
    return e;
}

/* the kernel's dynamic shared memory limit raised once to what the largest program so far needs (the call is a
 * host round trip; not repeated at every step) */
template <typename T> static cudaError_t dp_launch(const lc_dp_step_args *a, size_t smem, cudaStream_t stream) {
    static size_t raised = 0;
    if (smem > raised) {
        const cudaError_t e =
            cudaFuncSetAttribute(lc_decode_program_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
        raised = smem;
    }
    /* developer knobs, read once: LC_DP_PROBE=1 (scripts/device/dp_probe.py) the logits buffer receives
     * per-instruction timestamps of blocks 0 and grid-1 instead of logits; LC_DP_FLAGS (bit 0: the barrier's
     * release-word form); LC_DP_INFLIGHT (bulk copies under way a block, 0: the ring's depth; default
     * DP_INFLIGHT); LC_DP_L2AHEAD (weight chunks past the ring requested into L2, default DP_L2AHEAD) */
    static int probe = -1, flags = 0, l2ahead = 0;
    if (probe < 0) {
        const char *e = getenv("LC_DP_PROBE"), *f = getenv("LC_DP_FLAGS"), *l = getenv("LC_DP_L2AHEAD"),
                   *q = getenv("LC_DP_INFLIGHT");
        int inflight = q ? atoi(q) : DP_INFLIGHT;
        inflight = inflight < 0 ? 0 : inflight > 64 ? 64 : inflight;
        flags = (f ? atoi(f) & 0xff : 0) | inflight << 8;
        l2ahead = l ? atoi(l) : DP_L2AHEAD;
        l2ahead = l2ahead < 0 ? 0 : l2ahead > 64 ? 64 : l2ahead;
        probe = e && strcmp(e, "1") == 0;
    }
    float *logits = probe ? nullptr : a->logits, *pr = probe ? a->logits : nullptr;
    lc_decode_program_kernel<T><<<a->host->grid, LC_DP_THREADS, smem, stream>>>(a->prog, a->tok_in, a->tok_out, logits, pr,
                                                                                flags, l2ahead);
    return cudaGetLastError();
}

extern "C" cudaError_t lc_cuda_launch_decode_program(const lc_dp_step_args *a, cudaStream_t stream) {
    const size_t smem = dp_smem_bytes(a->host);
    return a->host->dtype == (int32_t)LC_DTYPE_BF16 ? dp_launch<__nv_bfloat16>(a, smem, stream)
                                                    : dp_launch<__half>(a, smem, stream);
}
