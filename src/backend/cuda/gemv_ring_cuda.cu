/* gemv_ring_cuda.cu — the [n, k] GEMV of a decode step (m <= LC_GEMV_MAX_M rows, w given as w_t [n, k]: torch's
 * Linear layout), out[m, n] = act(x[m, k] · w_tᵀ + bias) (+ residual), with the norm / SwiGLU prologues of gemv_cuda.cu
 * (gemv.cuh: the same staging, epilogue and rounding; the sums in another fixed order).
 * Why a third kernel: in a decode step each GEMV reads a few MB, so its time is mostly ramp (the weights'
 * first bytes arrive ~1-2 us after the kernel may start) and the kernels before it keep the SMs full, so a
 * weight request placed before the PDL wait (gemv_cuda.cu's prefetch) is issued only when they leave. This
 * kernel is lean enough to be resident beside the kernel before it (one block an SM, 256 threads, <= 128
 * registers, ~100 KiB of shared memory), so under programmatic dependent launch its blocks start while that
 * kernel runs and bulk-copy their weights into shared memory before waiting for it: the weight stream of
 * kernel i + 1 overlaps the tail of kernel i.
 * Plan: grid = min(SMs, n) blocks; block b owns rows [b·n/grid, (b+1)·n/grid) of w_t, one contiguous range of
 * bytes, split into stages of R whole rows; a ring of NS slots (LC_GEMV_RING_KB of shared memory, default
 * GR_RING_KB). Thread 0 issues cp.async.bulk of the first NS stages (before the PDL wait when the caller
 * promised static weights, lc_set_static_weights; after it otherwise), then each stage's refill as soon as the
 * block has finished the stage in that slot. The 8 warps stage x's m rows (gemv_stage_nk: prologue applied, in the
 * dtype), then take each stage's (row, group) units: a row's 16-byte chunks split into G groups, a lane's chunks of
 * a group added in order (m sums), then a shuffle tree; after a block barrier a thread adds an output's G group
 * sums in group order and writes it (gemv_finish): no atomics, deterministic.
 * Taken by gemv_cuda.cu's launch (lc_cuda_gemv_ring_fits) when LC_GEMV_RING is on (opt-in: GR_DEFAULT; read at each
 * launch), w_t,
 * and x's rows fit beside the ring (at most GR_XS_MAX bytes) with a row of w_t in each slot.
 * Tests: tests/c/test_gemv_cuda.c (its [n, k] cases run here wherever the plan fits: every m, shape, prologue and epilogue,
 * against float64), tests/python/test_linear_wt.py, test_norm_linear.py, test_silu_mul_linear.py, the engine's
 * decode tests (models stored out_in). */
#include "backend/cuda/bulk.cuh"
#include "backend/cuda/gemv.cuh"

#define GR_DEFAULT 0   /* LC_GEMV_RING unset: off (not yet measured on a GPU: session 23 got no machine) */
#define GR_RING_KB 96  /* LC_GEMV_RING_KB default: the ring's shared memory */
#define GR_SLOTS 4     /* ring slots (stages in flight) */
#define GR_MAX_G 8     /* groups a row is split into, at most */
#define GR_SMEM_MAX (220 * 1024) /* a block's dynamic shared memory, at most (sm_90: 227 KiB) */
#define GR_XS_MAX (64 * 1024) /* staged x (with gamma / beta beside it for a norm at m = 1) at most */

struct gr_geom {
    int grid;    /* blocks */
    int per;     /* rows a block, at most (ceil(n / grid)) */
    int R;       /* rows a stage */
    int G;       /* groups a row */
    int slot_b;  /* bytes a slot (R rows, rounded up to 128) */
    int xs_b;    /* bytes of staged x */
};

/* The ring's bytes: LC_GEMV_RING_KB (16..200) or GR_RING_KB, read once. */
static int gr_ring_bytes(void) {
    static const int v = [] {
        const char *e = getenv("LC_GEMV_RING_KB");
        const int x = e ? atoi(e) : 0;
        return (x >= 16 && x <= 200 ? x : GR_RING_KB) * 1024;
    }();
    return v;
}

/* LC_GEMV_RING=0 turns the kernel off (the [n, k] tile kernel then runs), any other value on, unset: GR_DEFAULT
 * (engine.RING_DEFAULT is the Python side's copy, for the weight layout); read at each launch, so that an A/B
 * run can capture both forms in one process. */
static int gr_enabled(void) {
    const char *e = getenv("LC_GEMV_RING");
    return e ? !(e[0] == '0' && e[1] == 0) : GR_DEFAULT;
}

/* ring | staged x | mbarriers | group sums [2][R·G·m] floats | the block's bias and residual elements [(1 + m)·per] */
static size_t gr_smem(const gr_geom &g, int64_t m) {
    return (size_t)GR_SLOTS * (size_t)g.slot_b + (size_t)g.xs_b + GR_SLOTS * sizeof(uint64_t) +
           2u * (size_t)g.R * (size_t)g.G * (size_t)m * sizeof(float) + (size_t)(1 + m) * (size_t)g.per * 2u;
}

/* The plan of an [n, k] GEMV of m rows (w_t rows of 2k bytes; x's m rows staged, and at m = 1 with a norm its
 * gamma and beta beside them); 0 when the kernel does not take it. */
static int gr_plan(int64_t m, int64_t k, int64_t n, int num_sms, int norm, gr_geom *g) {
    if (!gr_enabled() || m < 1 || m > LC_GEMV_MAX_M || k < 8 || k % 8 != 0 || n < 1 || num_sms < 1) return 0;
    const int64_t rowb = 2 * k, ring = gr_ring_bytes();
    if (rowb * GR_SLOTS > ring) return 0; /* a slot holds at least one row */
    const int64_t xs = (m + (norm && m == 1 ? 2 : 0)) * rowb;
    if (xs > GR_XS_MAX) return 0;
    g->grid = (int)(n < num_sms ? n : num_sms);
    const int64_t per = (n + g->grid - 1) / g->grid; /* a block's rows, at most */
    g->per = (int)per;
    int64_t R = ring / GR_SLOTS / rowb;
    if (R > per) R = per;
    g->R = (int)R;
    const int64_t kch = k / 8;
    int64_t G = (GEMV_NW + R - 1) / R;
    const int64_t gmax = kch / 32 > 1 ? kch / 32 : 1; /* every lane has a chunk */
    if (G > gmax) G = gmax;
    if (G > GR_MAX_G) G = GR_MAX_G;
    g->G = (int)G;
    g->slot_b = (int)((R * rowb + 127) / 128 * 128);
    g->xs_b = (int)((xs + 127) / 128 * 128);
    return gr_smem(*g, m) <= GR_SMEM_MAX;
}

template <typename T, int M>
__global__ void __launch_bounds__(GEMV_NT, 2) gemv_ring_kernel(const gemv_params p, const gr_geom g) {
    extern __shared__ float4 gr_smem4[];
    char *const ring = reinterpret_cast<char *>(gr_smem4);
    unsigned short *const xs = reinterpret_cast<unsigned short *>(ring + (size_t)GR_SLOTS * g.slot_b);
    uint64_t *const full = reinterpret_cast<uint64_t *>(ring + (size_t)GR_SLOTS * g.slot_b + g.xs_b);
    float *const red = reinterpret_cast<float *>(full + GR_SLOTS); /* [2][R·G·M] */
    unsigned short *const bs = reinterpret_cast<unsigned short *>(red + 2 * g.R * g.G * M); /* [per] */
    unsigned short *const rsd = bs + g.per;                                               /* [M][per] */
    __shared__ float gr_st[M][3];
    __shared__ double gr_ps[GEMV_NW][2];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t k = p.k, rowb = 2 * k;
    const int64_t r0 = (int64_t)blockIdx.x * p.n / g.grid, r1 = (int64_t)(blockIdx.x + 1) * p.n / g.grid;
    const int nr = (int)(r1 - r0), nst = (nr + g.R - 1) / g.R;
    const char *const wb = p.w + r0 * rowb;
    /* stage s into its slot: rows [s·R, min(s·R + R, nr)) of the block's range */
    auto issue = [&](int s) {
        const int rows = nr - s * g.R < g.R ? nr - s * g.R : g.R;
        const unsigned bytes = (unsigned)(rows * rowb);
        uint64_t *const bar = full + s % GR_SLOTS;
        lc_mbar_expect_tx(bar, bytes);
        lc_bulk_g2s(ring + (size_t)(s % GR_SLOTS) * g.slot_b, wb + (int64_t)s * g.R * rowb, bytes, bar);
    };
    lc_pdl_trigger();
    if (tid == 0) {
        for (int i = 0; i < GR_SLOTS; i++) lc_mbar_init(full + i, 1);
        lc_mbar_init_fence();
    }
    __syncthreads();
    if (!p.prefetch) lc_pdl_wait(); /* w may come from a kernel still in flight */
    if (tid == 0)
        for (int s = 0; s < GR_SLOTS && s < nst; s++) issue(s);
    if (p.bias) /* a weight too: the block's slice before the wait when static */
        for (int r = tid; r < nr; r += GEMV_NT) bs[r] = p.bias[r0 + r];
    if (p.prefetch) lc_pdl_wait(); /* x, residual and out only after the previous kernel */
    if (p.res) /* requested now, so that the epilogue does not wait on L2 (read before any row of out is written) */
        for (int e = tid; e < M * nr; e += GEMV_NT) {
            const int i = e / nr, r = e - i * nr;
            rsd[i * g.per + r] = p.res[(int64_t)i * p.n + r0 + r];
        }
    const int kch = (int)(k / 8);
    gemv_stage_nk<T, M>(p, 0, kch, (int)k, true, xs, gr_st, gr_ps, warp, lane, tid); /* ends with a barrier */
    const int cpg = (kch + g.G - 1) / g.G; /* chunks a group */
    for (int s = 0; s < nst; s++) {
        const int rows = nr - s * g.R < g.R ? nr - s * g.R : g.R;
        const char *const slot = ring + (size_t)(s % GR_SLOTS) * g.slot_b;
        float *const rs = red + (s & 1) * g.R * g.G * M; /* [unit][i] */
        lc_mbar_wait(full + s % GR_SLOTS, (unsigned)(s / GR_SLOTS) & 1u);
        for (int u = warp; u < rows * g.G; u += GEMV_NW) {
            const int r = u / g.G, grp = u - r * g.G;
            const int cb = grp * cpg, ce = cb + cpg < kch ? cb + cpg : kch;
            const char *const wr = slot + (int64_t)r * rowb;
            float acc[M];
#pragma unroll
            for (int i = 0; i < M; i++) acc[i] = -0.0f;
            for (int c = cb + lane; c < ce; c += 32) {
                float wf[8];
                gemv_cvt(*reinterpret_cast<const uint4 *>(wr + (int64_t)c * 16), wf, T());
#pragma unroll
                for (int i = 0; i < M; i++) {
                    float xf[8];
                    gemv_cvt(*reinterpret_cast<const uint4 *>(xs + i * k + 8 * c), xf, T());
#pragma unroll
                    for (int j = 0; j < 8; j++) acc[i] = fmaf(xf[j], wf[j], acc[i]);
                }
            }
#pragma unroll
            for (int i = 0; i < M; i++) {
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], o);
                if (lane == 0) rs[u * M + i] = acc[i];
            }
        }
        __syncthreads(); /* the slot's reads and the group sums are done */
        if (tid == 0 && s + GR_SLOTS < nst) {
            lc_fence_proxy_async_smem();
            issue(s + GR_SLOTS);
        }
        for (int e = tid; e < rows * M; e += GEMV_NT) {
            const int r = e / M, i = e - r * M;
            float v = rs[r * g.G * M + i];
            for (int q = 1; q < g.G; q++) v += rs[(r * g.G + q) * M + i];
            const int rr = s * g.R + r; /* the row in the block's range */
            p.out[(int64_t)i * p.n + r0 + rr] = gemv_finish_with<T>(v, p, p.bias ? bs[rr] : (unsigned short)0,
                                                                    p.res ? rsd[i * g.per + rr] : (unsigned short)0);
        }
    }
}

/* 1 when the ring kernel takes this launch (w_t, m <= LC_GEMV_MAX_M, the plan fits); 0: the caller's other kernels. */
extern "C" int lc_cuda_gemv_ring_fits(int64_t m, int64_t k, int64_t n, int w_t, int num_sms, int norm) {
    gr_geom g;
    return w_t && gr_plan(m, k, n, num_sms, norm, &g);
}

template <typename T, int M>
static cudaError_t gr_launch_m(const gemv_params &p, const gr_geom &g, cudaStream_t stream) {
    const size_t smem = gr_smem(g, M);
    cudaError_t e = cudaFuncSetAttribute(gemv_ring_kernel<T, M>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return e;
    /* the largest shared-memory carveout, so that the SM need not be reconfigured (drained) to hold this block
     * beside the kernel before it */
    e = cudaFuncSetAttribute(gemv_ring_kernel<T, M>, cudaFuncAttributePreferredSharedMemoryCarveout, 100);
    if (e != cudaSuccess) return e;
    return lc_pdl_launch(gemv_ring_kernel<T, M>, dim3((unsigned)g.grid), dim3(GEMV_NT), smem, stream, p, g);
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
