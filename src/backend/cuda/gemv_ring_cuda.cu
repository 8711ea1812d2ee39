/* gemv_ring_cuda.cu — the [n, k] GEMV of a decode step (m <= LC_GEMV_MAX_M rows, w given as w_t [n, k]: torch's
 * Linear layout), out[m, n] = act(x[m, k] · w_tᵀ + bias) (+ residual), with the norm / SwiGLU prologues of gemv_cuda.cu
 * (gemv.cuh: the same staging, epilogue and rounding; the sums in another fixed order).
 * Why a third kernel: in a decode step each GEMV reads a few MB, so its time is mostly ramp (the weights' first
 * bytes arrive ~1-2 us after the kernel may start). Here each block streams one contiguous byte range of w
 * through a shared-memory ring with bulk copies, issued before the PDL wait under static weights, and its 8 warps
 * consume it at their own pace: measured on the H100 (session 24) 0.96-1.7x the [n, k] tile kernel's speed
 * on GPT-2 / LLaMA decode shapes, and the batch-1 step 14-17% shorter than with the kernels before it
 * (docs/benchmarks.md).
 * Plan: grid = min(2·SMs, n) blocks where two fit an SM (ring shrunk to <= GR_SMEM_2 a block), else min(SMs, n)
 * (LC_GEMV_RING_BPS); block b owns rows [b·n/grid, (b+1)·n/grid) of w_t, split into stages of R whole rows; a
 * ring of g.slots slots (LC_GEMV_RING_SLOTS, default GR_SLOTS; LC_GEMV_RING_KB of shared memory, default
 * GR_RING_KB). Thread 0 issues cp.async.bulk of the first stages (before the PDL wait when the caller promised
 * static weights, lc_set_static_weights; after it otherwise), under an L2 evict_first policy (LC_GEMV_RING_EVICT,
 * default GR_EVICT: a decode step reads each weight once, and without the hint the stream pushes the other
 * kernels' code, activations and caches out of L2; session 25 on the H100: GPT-2 B=1 -4.5%, LLaMA 1.1B -3.6%). The 8 warps stage x's m rows (gemv_stage_nk:
 * prologue applied, in the dtype); then warp w takes the block's rows w, w + 8, ...: a lane's 16-byte chunks
 * added in order (m sums), a shuffle tree, lane i writes row i's output (gemv_finish_with): no atomics,
 * deterministic. A warp waits on each stage's mbarrier and then counts itself done with the slot; the 8th to do so
 * refills it (fence.proxy.async, then the bulk copy of the stage a ring later): no block barrier in the loop.
 * Folded argmax (p.amax, from lc_layer_norm_linear_argmax / lc_rms_norm_linear_argmax: greedy decoding's lm_head):
 * the lane writing a row's output keeps the best (value, index) key of its rows (argmax_key.cuh: lc_argmax's order),
 * the block reduces them in shared memory and adds one atomicMax a row to __device__ state; the last block to finish
 * writes the indices and resets the state: the argmax launch after the GEMV is gone (one node of a decode step).
 * Taken by gemv_cuda.cu's launch (lc_cuda_gemv_ring_fits) when LC_GEMV_RING is on (GR_DEFAULT; the knobs are read
 * at each launch, for A/B runs), w_t, and x's rows fit beside the ring (at most GR_XS_MAX bytes) with a row of
 * w_t in each slot.
 * Tests: tests/c/test_gemv_cuda.c (its [n, k] cases run here wherever the plan fits, with two and one blocks an SM:
 * every m, shape, prologue and epilogue, against float64), tests/python/test_linear_wt.py, test_norm_linear.py,
 * test_norm_linear_argmax.py (the folded argmax), test_silu_mul_linear.py, the engine's decode tests (models stored
 * out_in). */
#include "backend/cuda/argmax_key.cuh"
#include "backend/cuda/bulk.cuh"
#include "backend/cuda/gemv.cuh"

#define GR_DEFAULT 1   /* LC_GEMV_RING unset: on */
#define GR_RING_KB 96  /* LC_GEMV_RING_KB default: the ring's shared memory */
#define GR_SLOTS 4     /* ring slots (stages in flight), LC_GEMV_RING_SLOTS default */
#define GR_MAX_SLOTS 8
#define GR_BPS 2       /* LC_GEMV_RING_BPS default: blocks an SM, where two fit (else one) */
#define GR_SMEM_MAX (220 * 1024) /* a block's dynamic shared memory, at most (sm_90: 227 KiB) */
#define GR_SMEM_2 (112 * 1024)   /* the same when two blocks share an SM (228 KiB, 1 KiB reserved a block) */
#define GR_XS_MAX (64 * 1024) /* staged x (with gamma / beta beside it for a norm at m = 1) at most */
#define GR_EVICT 1 /* LC_GEMV_RING_EVICT unset: the weights' bulk copies under L2 evict_first */

struct gr_geom {
    int grid;    /* blocks */
    int per;     /* rows a block, at most (ceil(n / grid)) */
    int slots;   /* ring slots (stages in flight): LC_GEMV_RING_SLOTS, default GR_SLOTS */
    int R;       /* rows a stage */
    int slot_b;  /* bytes a slot (R rows, rounded up to 128) */
    int xs_b;    /* bytes of staged x */
    int evict;   /* the bulk copies under L2 evict_first (LC_GEMV_RING_EVICT, default GR_EVICT) */
};

/* An integer knob of the environment (gemv.cuh's gemv_env_int; read at each launch, so that an A/B run can
 * capture several forms in one process): its value when set and within [lo, hi] (lo >= 1), else def. */
static int gr_env(const char *name, int lo, int hi, int def) {
    const int x = gemv_env_int(name, lo, hi);
    return x ? x : def;
}

/* An on / off knob of the environment: "0" off, any other value on, unset: def; read at each launch, so that an
 * A/B run can capture both forms in one process. LC_GEMV_RING=0 turns the kernel off (the [n, k] tile kernel then
 * runs; unset: GR_DEFAULT, whose Python copy engine.RING_DEFAULT decides the weight layout). */
static int gr_flag(const char *name, int def) {
    const char *e = getenv(name);
    return e ? !(e[0] == '0' && e[1] == 0) : def;
}

/* ring | staged x | mbarriers | the slots' done counters | the block's bias and residual elements [(1 + m)·per] */
static size_t gr_smem(const gr_geom &g, int64_t m) {
    return (size_t)g.slots * (size_t)g.slot_b + (size_t)g.xs_b + (size_t)g.slots * (sizeof(uint64_t) + sizeof(int)) +
           (size_t)(1 + m) * (size_t)g.per * 2u;
}

/* The geometry of `blocks` blocks (at most n) with a ring of `ring` bytes in g->slots slots; its shared memory. */
static size_t gr_geometry(int64_t m, int64_t rowb, int64_t xs, int64_t n, int64_t blocks, int64_t ring, gr_geom *g) {
    g->grid = (int)(n < blocks ? n : blocks);
    g->per = (int)((n + g->grid - 1) / g->grid);
    const int64_t R = ring / g->slots / rowb;
    g->R = (int)(R < g->per ? R : g->per);
    g->slot_b = (int)((g->R * rowb + 127) / 128 * 128);
    g->xs_b = (int)((xs + 127) / 128 * 128);
    return gr_smem(*g, m);
}

/* The plan of an [n, k] GEMV of m rows (w_t rows of 2k bytes; x's m rows staged, and at m = 1 with a norm its
 * gamma and beta beside them); 0 when the kernel does not take it. Two blocks an SM (GR_BPS) with the ring
 * shrunk so that two fit, where a slot still holds a row; else one block an SM with the whole ring. */
static int gr_plan(int64_t m, int64_t k, int64_t n, int num_sms, int norm, gr_geom *g) {
    if (!gr_flag("LC_GEMV_RING", GR_DEFAULT) || m < 1 || m > LC_GEMV_MAX_M || k < 8 || k % 8 != 0 || n < 1 || num_sms < 1) return 0;
    const int64_t rowb = 2 * k, ring = (int64_t)gr_env("LC_GEMV_RING_KB", 16, 200, GR_RING_KB) * 1024;
    g->slots = gr_env("LC_GEMV_RING_SLOTS", 2, GR_MAX_SLOTS, GR_SLOTS);
    g->evict = gr_flag("LC_GEMV_RING_EVICT", GR_EVICT);
    if (rowb * g->slots > ring) return 0; /* a slot holds at least one row */
    const int64_t xs = (m + (norm && m == 1 ? 2 : 0)) * rowb;
    if (xs > GR_XS_MAX) return 0;
    /* LC_GEMV_RING_SOLO_MB (an A/B knob, unset: off): a GEMV of at most that many MiB of weights takes one block an
     * SM, leaving room beside it for the next kernel's blocks to start and fill their rings early */
    const int solo = gemv_env_int("LC_GEMV_RING_SOLO_MB", 1, 1 << 20);
    int fits = 0;
    if (gr_env("LC_GEMV_RING_BPS", 1, 2, GR_BPS) == 2 && !(solo && n * rowb <= ((int64_t)solo << 20))) {
        const size_t sm = gr_geometry(m, rowb, xs, n, 2 * (int64_t)num_sms, ring, g);
        const int64_t r2 = sm <= GR_SMEM_2 ? ring : ring - (int64_t)(sm - GR_SMEM_2) - 128 * g->slots;
        fits = r2 >= rowb * g->slots && gr_geometry(m, rowb, xs, n, 2 * (int64_t)num_sms, r2, g) <= GR_SMEM_2;
    }
    if (!fits) fits = gr_geometry(m, rowb, xs, n, num_sms, ring, g) <= GR_SMEM_MAX;
    return fits;
}

/* The folded argmax (p.amax): each row's best key (argmax_key.cuh) over the blocks, and the blocks done; both 0
 * between launches (the last block puts them back, so a captured graph replays). Launches with p.amax must not
 * run concurrently on two streams of one device (as index_cuda.cu's split argmax). */
__device__ unsigned long long gr_am_key[LC_GEMV_MAX_M];
__device__ unsigned gr_am_done;

/* The block's keys (lane i of each warp: row i's best of the warp's rows) into am[M] (shared, zeroed at the start),
 * then one atomicMax a row into gr_am_key; the block that finishes last writes the indices and resets the state. */
template <int M>
__device__ __forceinline__ void gr_argmax_finish(const gemv_params &p, unsigned long long best, int lane, int tid,
                                                 unsigned long long *am) {
    if (lane < M && best) atomicMax(am + lane, best);
    __syncthreads();
    if (tid != 0) return;
#pragma unroll
    for (int i = 0; i < M; i++) atomicMax(gr_am_key + i, am[i]);
    __threadfence();
    if (atomicAdd(&gr_am_done, 1u) != gridDim.x - 1) return;
    __threadfence(); /* every block's keys are in */
#pragma unroll
    for (int i = 0; i < M; i++) p.amax[i] = lc_argmax_key_index(atomicExch(gr_am_key + i, 0ull));
    atomicExch(&gr_am_done, 0u);
}

template <typename T, int M>
__global__ void __launch_bounds__(GEMV_NT, 2) gemv_ring_kernel(const gemv_params p, const gr_geom g) {
    extern __shared__ float4 gr_smem4[];
    char *const ring = reinterpret_cast<char *>(gr_smem4);
    unsigned short *const xs = reinterpret_cast<unsigned short *>(ring + (size_t)g.slots * g.slot_b);
    uint64_t *const full = reinterpret_cast<uint64_t *>(ring + (size_t)g.slots * g.slot_b + g.xs_b);
    int *const done = reinterpret_cast<int *>(full + g.slots);   /* [slots]: warps done with the slot, ever */
    unsigned short *const bs = reinterpret_cast<unsigned short *>(done + g.slots); /* [per] */
    unsigned short *const rsd = bs + g.per;                                               /* [M][per] */
    __shared__ float gr_st[M][3];
    __shared__ double gr_ps[GEMV_NW][2];
    __shared__ unsigned long long gr_am[M]; /* p.amax: the block's best key a row */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t k = p.k, rowb = 2 * k;
    const int64_t r0 = (int64_t)blockIdx.x * p.n / g.grid, r1 = (int64_t)(blockIdx.x + 1) * p.n / g.grid;
    const int nr = (int)(r1 - r0), nst = (nr + g.R - 1) / g.R;
    const char *const wb = p.w + r0 * rowb;
    /* stage s into its slot: rows [s·R, min(s·R + R, nr)) of the block's range; the weights are read once a
     * step, so under evict_first they leave L2 before the code, activations and caches of the other kernels */
    const uint64_t pol = g.evict ? lc_l2_evict_first_policy() : 0;
    auto issue = [&](int s) {
        const int rows = nr - s * g.R < g.R ? nr - s * g.R : g.R;
        const unsigned bytes = (unsigned)(rows * rowb);
        uint64_t *const bar = full + s % g.slots;
        lc_mbar_expect_tx(bar, bytes);
        if (g.evict)
            lc_bulk_g2s_hint(ring + (size_t)(s % g.slots) * g.slot_b, wb + (int64_t)s * g.R * rowb, bytes, bar, pol);
        else
            lc_bulk_g2s(ring + (size_t)(s % g.slots) * g.slot_b, wb + (int64_t)s * g.R * rowb, bytes, bar);
    };
    lc_pdl_trigger();
    if (tid < M) gr_am[tid] = 0ull;
    if (tid == 0) {
        for (int i = 0; i < g.slots; i++) {
            lc_mbar_init(full + i, 1);
            done[i] = 0;
        }
        lc_mbar_init_fence();
    }
    __syncthreads();
    if (!p.prefetch) lc_pdl_wait(); /* w may come from a kernel still in flight */
    if (tid == 0)
        for (int s = 0; s < g.slots && s < nst; s++) issue(s);
    const int kch = (int)(k / 8);
    if (p.bias) /* a weight too: the block's slice before the wait when static */
        for (int r = tid; r < nr; r += GEMV_NT) bs[r] = p.bias[r0 + r];
    if (p.prefetch) lc_pdl_wait(); /* x, residual and out only after the previous kernel */
    if (p.res) /* requested now, so that the epilogue does not wait on L2 (read before any row of out is written) */
        for (int e = tid; e < M * nr; e += GEMV_NT) {
            const int i = e / nr, r = e - i * nr;
            rsd[i * g.per + r] = p.res[(int64_t)i * p.n + r0 + r];
        }
    gemv_stage_nk<T, M>(p, 0, kch, (int)k, true, xs, gr_st, gr_ps, warp, lane, tid); /* ends with a barrier */
    unsigned long long best = 0ull; /* p.amax: lane i's best key of row i over the warp's rows */
    /* each warp on rows j = warp, warp + 8, ... of the block's range, at its own pace */
    for (int s = 0; s < nst; s++) {
        const int rows = nr - s * g.R < g.R ? nr - s * g.R : g.R, sl = s % g.slots;
        const char *const slot = ring + (size_t)sl * g.slot_b;
        lc_mbar_wait(full + sl, (unsigned)(s / g.slots) & 1u); /* every warp, rows or not: parities stay in step */
        for (int r = (warp - s * g.R % GEMV_NW + GEMV_NW) % GEMV_NW; r < rows; r += GEMV_NW) {
            const char *const wr = slot + (int64_t)r * rowb;
            float acc[M];
#pragma unroll
            for (int i = 0; i < M; i++) acc[i] = -0.0f;
            const int rr = s * g.R + r; /* the row in the block's range */
#pragma unroll 2
            for (int c = lane; c < kch; c += 32) {
                float wf[8];
                lc_u4_to_f8(*reinterpret_cast<const uint4 *>(wr + (int64_t)c * 16), wf, T());
#pragma unroll
                for (int i = 0; i < M; i++) {
                    float xf[8];
                    lc_u4_to_f8(*reinterpret_cast<const uint4 *>(xs + i * k + 8 * c), xf, T());
#pragma unroll
                    for (int j = 0; j < 8; j++) acc[i] = fmaf(xf[j], wf[j], acc[i]);
                }
            }
#pragma unroll
            for (int i = 0; i < M; i++) {
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], o);
                if (lane == i) {
                    const unsigned short o = gemv_finish_with<T>(acc[i], p, p.bias ? bs[rr] : (unsigned short)0,
                                                                 p.res ? rsd[i * g.per + rr] : (unsigned short)0);
                    p.out[(int64_t)i * p.n + r0 + rr] = o;
                    if (p.amax) best = max(best, lc_argmax_key(Elem<T>::ldu(o), (unsigned)(r0 + rr)));
                }
            }
        }
        __syncwarp();
        if (lane == 0) { /* the warp is done with the slot; the last of the 8 refills it */
            __threadfence_block();
            if ((atomicAdd(done + sl, 1) + 1) % GEMV_NW == 0 && s + g.slots < nst) {
                lc_fence_proxy_async_smem();
                issue(s + g.slots);
            }
        }
    }
    if (p.amax) gr_argmax_finish<M>(p, best, lane, tid, gr_am);
}

/* 1 when the ring kernel takes this launch (w_t, m <= LC_GEMV_MAX_M, the plan fits); 0: the caller's other kernels. */
extern "C" int lc_cuda_gemv_ring_fits(int64_t m, int64_t k, int64_t n, int w_t, int num_sms, int norm) {
    gr_geom g;
    return w_t && gr_plan(m, k, n, num_sms, norm, &g);
}

/* The kernel's function attributes, once per device (pdl.cuh): the most dynamic shared memory a plan takes
 * (GR_SMEM_MAX), and the largest shared-memory carveout, so that the SM need not be reconfigured (drained) to
 * hold a block beside the kernel before it. */
template <typename T, int M> static cudaError_t gr_prepare() {
    static int done[GEMV_MAX_DEVICES];
    return lc_once_per_device(GEMV_MAX_DEVICES, [](int dev) { return &done[dev]; }, [] {
        cudaError_t e = cudaFuncSetAttribute(gemv_ring_kernel<T, M>, cudaFuncAttributeMaxDynamicSharedMemorySize, GR_SMEM_MAX);
        return e == cudaSuccess
                   ? cudaFuncSetAttribute(gemv_ring_kernel<T, M>, cudaFuncAttributePreferredSharedMemoryCarveout, 100)
                   : e;
    });
}

template <typename T, int M>
static cudaError_t gr_launch_m(const gemv_params &p, const gr_geom &g, cudaStream_t stream) {
    const cudaError_t e = gr_prepare<T, M>();
    if (e != cudaSuccess) return e;
    return lc_pdl_launch(gemv_ring_kernel<T, M>, dim3((unsigned)g.grid), dim3(GEMV_NT), gr_smem(g, M), stream, p, g);
}

template <typename T> static cudaError_t gr_launch_t(int64_t m, const gemv_params &p, const gr_geom &g, cudaStream_t stream) {
    return gemv_for_m(m, cudaErrorInvalidValue, [&](auto mc) { return gr_launch_m<T, decltype(mc)::value>(p, g, stream); });
}

/* p filled by gemv_cuda.cu's launch (w_t); p.kc is set to k here (x staged whole). One plan a launch. */
cudaError_t gemv_ring_launch(int64_t m, gemv_params p, int bf16, int num_sms, cudaStream_t stream, int *taken) {
    gr_geom g;
    *taken = gr_plan(m, p.k, p.n, num_sms, p.norm && p.norm != LC_NORM_SWIGLU, &g);
    if (!*taken) return cudaSuccess;
    p.kc = (int)p.k;
    return bf16 ? gr_launch_t<__nv_bfloat16>(m, p, g, stream) : gr_launch_t<__half>(m, p, g, stream);
}

LC_TL_READER(lc_tl_read_gemv_ring_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
