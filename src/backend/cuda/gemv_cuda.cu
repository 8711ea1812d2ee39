/* gemv_cuda.cu — the small-m 16-bit linear (decode: m = batch rows, 1 <= m <= LC_GEMV_MAX_M):
 * out[m,n] = act(x[m,k] · w[k,n] + bias[n]) (+ residual[m,n], which may be out) for float16/bfloat16 in one
 * launch, reading w at full bandwidth.
 * Shapes: x [m,k] contiguous (any alignment), w [k,n] row-major (n contiguous, the lc_linear layout), bias [n]
 * or NULL, out [m,n]; n % 8 == 0 and w, bias, out 16-byte aligned (lc_cuda_gemv_fits). Arithmetic: float32
 * products and sums, the bias added to the float32 sum, then the activation (activation.cuh, the same
 * functions as linear's bias_act epilogue), one rounding: the contract of the cuBLASLt + epilogue path.
 *
 * Kernel: a block (8 warps) owns a 256-column tile and a range of k rows; each lane loads 16 bytes (8 columns)
 * of a w row per step (a warp: 512 consecutive bytes of one row), the warps take different rows, U rows per
 * warp per step in flight (U = 8 for m <= 2, else 4), loads marked no-L1-allocate (w is streamed once). x of
 * the block's rows is staged in shared memory as float (chunks of at most 8192 / m rows) and read as
 * broadcasts. Per lane m x 8 float32 accumulators; the 8 warps' sums are added through shared memory in warp
 * order. When the column tiles alone leave resident-block slots empty, k is split across blocks (gridDim.y)
 * into equal ranges, so that the grid is one full wave (gemv_make_plan): each block stores its float32
 * partial [m, 256] in the workspace, and the last block of a tile to finish (a device counter per tile,
 * atomicAdd ticket after __threadfence; that block resets the counter to 0, so a captured CUDA graph replays
 * correctly) adds the partials (warp w the splits w, w + 8, ... in split order, four 32-byte loads a lane in
 * flight; the warps' sums then in warp order: deterministic whoever finishes last), then bias, act, one
 * rounding. With 2..16 splits (GEMV_MAX_CLUSTER; LC_GEMV_CLUSTER=0
 * turns it off) a tile's splits are one thread-block cluster instead, when all the tiles' clusters are resident at
 * once (cudaOccupancyMaxActiveClusters, per device: a cluster lives in one GPC, so fewer fit than the slots): each
 * block leaves its partial in its shared memory, and after a cluster barrier rank 0 (= split 0) reads the
 * others' through distributed shared memory and adds them in split order, then a second barrier keeps them alive
 * until it has: no workspace, fence, ticket or counter, one DSMEM round trip instead of three L2 ones.
 * Empty splits never occur (the plan takes ceil(k / rows per split) splits).
 * Launched with programmatic dependent launch (pdl.cuh). Under the calling thread's static-weights promise
 * (lc_set_static_weights: no kernel in flight writes w, as in a model's decode step), a block's first U rows
 * of w per warp are requested before it waits for the previous kernel, so the weight stream starts under
 * that kernel's tail; without it the block waits before any load (PDL still hides the launch). LC_PDL=0:
 * plain launches.
 * Norm prologue (layer_norm_linear / rms_norm_linear, lc_cuda_launch_gemv_norm): x is normalised as it is
 * staged. In the first chunk, while the first w rows are in flight, the 8 / m warps of row i compute its
 * statistics over the whole row, one slice each, added in slice order (every block does: x is a few KiB from
 * L2): Σx and Σx² in float64 in one pass (for 16-bit x each square is exact in float64, so Σx² - (Σx)²/k
 * loses nothing a two-pass sum would keep), mean split into
 * float hi + lo as lc_layer_norm does, rstd = 1/sqrt(var + eps) (rms: 1/sqrt(Σx²/k + eps)); each staged
 * element is then ((x - hi) - lo)·rstd·gamma + beta (rms: x·rstd·weight), rounded to the dtype as the norm
 * op writes it, so the product sees the values the unfused norm + linear would.
 * SwiGLU prologue (silu_mul_linear, lc_cuda_launch_gemv_norm with kind LC_NORM_SWIGLU): x is gu [m, 2k] (row
 * pitch 2k, gate | up); the staged element (i, c) is OpSilu(g)·u of g = gu[i, c], u = gu[i, k + c] in float32,
 * rounded to the dtype: the formula and rounding of the silu_mul kernel (llm_cuda.cu), so the product sees the
 * values silu_mul + linear would. No statistics step; residual, bias and activation as for the plain GEMV.
 * The [n, k] kernel (gemv_nk_kernel, lc_linear_args.w_t): w arrives as the array wᵀ [n, k] (torch's Linear layout,
 * lc_linear's w being its transposed view), k % 8 == 0 and the array 16-byte aligned (n, out, bias any): a warp
 * owns one output column and streams its k weights, one contiguous row; no split of k, so no workspace, fence
 * or ticket. Why (session 18, H100, m = 1 bf16 from DRAM, scripts/probes/gemv_layout_probe.cu, one tile a block):
 * 0.3-3.0 us a call faster than the [k, n] tiles at the decode shapes of GPT-2 and LLaMA 1.1B. This kernel
 * (tiles taken in turn by a resident grid) measured GPT-2 124M's decode step 0.41 -> 0.37 ms and LLaMA 1.1B's
 * 1.40 -> 1.60 ms (benchmarks.md): the many-tile shapes are the suspects. A w_t launch whose plan fits runs
 * gemv_ring_cuda.cu's ring kernel instead (the default since session 24; LC_GEMV_RING=0: this kernel). Device
 * helpers shared with it: gemv.cuh.
 * Tests: tests/c/test_gemv_cuda.c (direct launches, split and unsplit plans, counter reset, SwiGLU prologue,
 * the [n, k] kernel's cases, timing table), tests/python/test_silu_mul_linear.py, test_linear_wt.py,
 * tests/python/test_dtype_ops.py::test_cuda_small_m_gemv (routing through lc_linear / lc_matmul),
 * tests/python/test_norm_linear.py (the norm prologue against the float64 reference, split and unsplit). */
#include "backend/cuda/gemv.cuh"

/* Finished splits per column tile of the running launch; 0 between launches. */
__device__ unsigned gemv_ctr[GEMV_NCTR];


template <typename T, int M>
__global__ void __launch_bounds__(GEMV_NT, gemv_resident(M)) gemv_kernel(const gemv_params p) {
    constexpr int U = gemv_unroll(M);
    extern __shared__ float4 gemv_smem[];
    float *const sm = reinterpret_cast<float *>(gemv_smem);
    __shared__ int gemv_last;
    __shared__ float gemv_st[M][3]; /* the norm prologue's per-row statistics */
    __shared__ double gemv_ps[GEMV_NW][2]; /* and its per-warp partial sums */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t tile = blockIdx.x;
    const int split = blockIdx.y;
    const int64_t col = tile * GEMV_TILE + lane * 8;
    const bool active = col < p.n; /* n % 8 == 0: a lane's 8 columns are all in or all out */
    const int64_t kb = (int64_t)split * p.ks;
    const int64_t ke = kb + p.ks < p.k ? kb + p.ks : p.k;
    const int kc = p.kc;
    const int64_t rowb = p.n * 2; /* bytes of a w row */
    const char *const wcol = p.w + col * 2;
    lc_pdl_trigger();
    if (!p.prefetch) lc_pdl_wait(); /* w may come from a kernel still in flight: nothing is read before it ends */

    float acc[M][8];
#pragma unroll
    for (int i = 0; i < M; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = -0.0f; /* the identity of IEEE addition */

    for (int64_t c0 = kb; c0 < ke; c0 += kc) {
        const int rows = (int)(ke - c0 < kc ? ke - c0 : kc);
        int r = warp * U;
        uint4 wv[U];
        /* the warp's first rows are requested before x is staged: the two latencies overlap */
        if (active) gemv_load<U>(wv, wcol + (c0 + r) * rowb, rowb, rows - r);
        /* static weights (lc_set_static_weights): the first rows of w load while the previous kernel runs;
         * x, res, out, ws and the counters only after it has finished (every thread passes here once) */
        if (c0 == kb && p.prefetch) lc_pdl_wait();
        gemv_stage<T, M>(p, c0, rows, kc, c0 == kb, sm, gemv_st, gemv_ps, warp, lane, tid);
        if (!active) continue;
        while (r < rows) {
            if (r + U <= rows) { /* every group but the last split's tail */
#pragma unroll
                for (int u = 0; u < U; u++) {
                    float wf[8];
                    lc_u4_to_f8(wv[u], wf, T());
#pragma unroll
                    for (int i = 0; i < M; i++) {
                        const float xs = sm[i * kc + r + u]; /* a broadcast read */
#pragma unroll
                        for (int j = 0; j < 8; j++) acc[i][j] = fmaf(xs, wf[j], acc[i][j]);
                    }
                }
            } else { /* the tail (warp-uniform guards) */
#pragma unroll
                for (int u = 0; u < U; u++) {
                    if (r + u >= rows) break;
                    float wf[8];
                    lc_u4_to_f8(wv[u], wf, T());
#pragma unroll
                    for (int i = 0; i < M; i++) {
                        const float xs = sm[i * kc + r + u];
#pragma unroll
                        for (int j = 0; j < 8; j++) acc[i][j] = fmaf(xs, wf[j], acc[i][j]);
                    }
                }
            }
            r += GEMV_NW * U;
            if (r < rows) gemv_load<U>(wv, wcol + (c0 + r) * rowb, rowb, rows - r);
        }
    }

    /* the warps' sums of row i, added in warp order: thread tid ends with column tile·256 + tid */
    float res[M];
#pragma unroll
    for (int i = 0; i < M; i++) res[i] = gemv_warp_order_sum(sm, acc[i], warp, lane, tid);
    const int64_t oc = tile * GEMV_TILE + tid;
    if (p.cluster > 1) { /* the tile's splits are the cluster's blocks, rank = split: rank 0 adds in rank order */
        namespace cg = cooperative_groups;
        cg::cluster_group cl = cg::this_cluster();
        __syncthreads(); /* the block reduction's reads of sm are done */
#pragma unroll
        for (int i = 0; i < M; i++) sm[i * GEMV_TILE + tid] = res[i];
        cl.sync();
        if (cl.block_rank() == 0) {
#pragma unroll 1
            for (int i = 0; i < M; i++) {
                float v[GEMV_MAX_CLUSTER];
#pragma unroll
                for (int r = 0; r < GEMV_MAX_CLUSTER; r++) /* all remote loads in flight, then the sum */
                    v[r] = r < p.cluster ? cl.map_shared_rank(sm, r)[i * GEMV_TILE + tid] : -0.0f;
                float a = v[0];
#pragma unroll
                for (int r = 1; r < GEMV_MAX_CLUSTER; r++) a += v[r];
                if (oc < p.n) p.out[(int64_t)i * p.n + oc] = gemv_finish<T>(a, p, i, oc);
            }
        }
        cl.sync(); /* the other blocks' shared memory stays alive until rank 0 has read it */
        return;
    }
    if (p.splits == 1) {
        if (oc < p.n)
#pragma unroll
            for (int i = 0; i < M; i++) p.out[(int64_t)i * p.n + oc] = gemv_finish<T>(res[i], p, i, oc);
        return;
    }
    float *const mine = p.ws + ((tile * p.splits + split) * M) * GEMV_TILE;
#pragma unroll
    for (int i = 0; i < M; i++) __stcg(mine + i * GEMV_TILE + tid, res[i]);
    /* the last split of the tile to finish adds the partials (threadFenceReduction pattern) */
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        const unsigned prev = atomicAdd(&gemv_ctr[tile], 1u);
        gemv_last = prev == (unsigned)(p.splits - 1);
        if (gemv_last) atomicExch(&gemv_ctr[tile], 0u); /* ready for the next launch / graph replay */
    }
    __syncthreads();
    if (!gemv_last) return;
    __threadfence();
    /* warp w adds splits w, w + 8, w + 16, ... (four in flight, 32 bytes a lane: the lane's 8 columns), in split
     * order; the 8 warps' sums are then added in warp order through shared memory: a fixed order whoever
     * finishes last, and about splits / 32 L2 round trips instead of splits / 8 */
    const float *const part = p.ws + tile * p.splits * M * GEMV_TILE + lane * 8;
#pragma unroll 1
    for (int i = 0; i < M; i++) {
        float a[8];
#pragma unroll
        for (int q = 0; q < 8; q++) a[q] = -0.0f;
        for (int s0 = warp; s0 < p.splits; s0 += GEMV_NW * 4) {
            float4 v[4][2];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int sp = s0 + u * GEMV_NW;
                if (sp < p.splits) {
                    const float4 *src = reinterpret_cast<const float4 *>(part + ((int64_t)sp * M + i) * GEMV_TILE);
                    v[u][0] = __ldcg(src);
                    v[u][1] = __ldcg(src + 1);
                } else { /* x + -0 = x */
                    v[u][0] = v[u][1] = make_float4(-0.0f, -0.0f, -0.0f, -0.0f);
                }
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                a[0] += v[u][0].x, a[1] += v[u][0].y, a[2] += v[u][0].z, a[3] += v[u][0].w;
                a[4] += v[u][1].x, a[5] += v[u][1].y, a[6] += v[u][1].z, a[7] += v[u][1].w;
            }
        }
        const float sum = gemv_warp_order_sum(sm, a, warp, lane, tid);
        if (oc < p.n) p.out[(int64_t)i * p.n + oc] = gemv_finish<T>(sum, p, i, oc);
    }
}

/* The [n, k] kernel (lc_linear_args.w_t: w is the transposed view of w_t [n, k], k contiguous: torch's Linear
 * layout). Output columns in tiles of GEMV_NW, warp w of a tile computing column o = tile·GEMV_NW + w, whose k
 * weights are one contiguous row of w_t: lane l reads its 16-byte chunks l, l + 32, ... (GEMV_NK_CH in flight),
 * adds them in order, then the warp's lanes add by a fixed shuffle tree: the sums are final (no split,
 * workspace or ticket). A block takes tiles blockIdx.x, + gridDim.x, ... (the grid fills the resident slots):
 * x is staged once (in the dtype, prologue applied) when it fits in one chunk (p.kc = k), else chunk by chunk
 * for each tile, and the first weights of the next chunk or tile are requested before the current ones are
 * used, so a block's weight stream does not stop between tiles. */
template <typename T, int M>
__global__ void __launch_bounds__(GEMV_NT, GEMV_NK_BPS) gemv_nk_kernel(const gemv_params p) {
    constexpr int CH = GEMV_NK_CH;
    extern __shared__ float4 gemv_smem[];
    unsigned short *const xs = reinterpret_cast<unsigned short *>(gemv_smem);
    __shared__ float gemv_st[M][3];
    __shared__ double gemv_ps[GEMV_NW][2];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t ntiles = (p.n + GEMV_NW - 1) / GEMV_NW, k = p.k, step = (int64_t)gridDim.x * GEMV_NW;
    const int kc = p.kc; /* a multiple of 8, as k is */
    const bool once = kc >= k;
    const int nch0 = (int)((k < kc ? k : kc) / 8);
    uint4 wv[CH]; /* slot u: chunk c + 32u of the lane's current step */
    /* the lane's first CH chunks of the range at c0 of column o */
    auto load_first = [&](int64_t o, int64_t c0, int nch) {
        const char *const wc = p.w + (o * k + c0) * 2;
#pragma unroll
        for (int u = 0; u < CH; u++)
            if (lane + 32 * u < nch) wv[u] = gemv_ld(wc + (int64_t)(lane + 32 * u) * 16);
    };
    lc_pdl_trigger();
    if (!p.prefetch) lc_pdl_wait();
    bool loaded = (int64_t)blockIdx.x * GEMV_NW + warp < p.n;
    if (loaded) load_first((int64_t)blockIdx.x * GEMV_NW + warp, 0, nch0);
    if (p.prefetch) lc_pdl_wait();
    for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
        const int64_t o = tile * GEMV_NW + warp;
        const bool next = once && o + step < p.n; /* the next tile's first chunks load during this one */
        float acc[M];
#pragma unroll
        for (int i = 0; i < M; i++) acc[i] = -0.0f;
        for (int64_t c0 = 0; c0 < k; c0 += kc) {
            const int nch = (int)((k - c0 < kc ? k - c0 : kc) / 8);
            if (!loaded && o < p.n) load_first(o, c0, nch);
            loaded = false;
            if (!once || tile == blockIdx.x) gemv_stage_nk<T, M>(p, c0, nch, kc, c0 == 0, xs, gemv_st, gemv_ps, warp, lane, tid);
            if (o >= p.n) continue;
            const char *const wc = p.w + (o * k + c0) * 2, *const wn = p.w + (o + step) * k * 2;
            for (int c = lane; c < nch; c += 32 * CH) {
#pragma unroll
                for (int u = 0; u < CH; u++) {
                    if (c + 32 * u >= nch) break;
                    float wf[8];
                    lc_u4_to_f8(wv[u], wf, T());
                    const int nx = c + 32 * (u + CH); /* slot u's next chunk: this range's, or the next tile's */
                    if (nx < nch) wv[u] = gemv_ld(wc + (int64_t)nx * 16);
                    else if (next && lane + 32 * u < nch0) wv[u] = gemv_ld(wn + (int64_t)(lane + 32 * u) * 16);
#pragma unroll
                    for (int i = 0; i < M; i++) {
                        float xf[8];
                        lc_u4_to_f8(*reinterpret_cast<const uint4 *>(xs + i * kc + (c + 32 * u) * 8), xf, T());
#pragma unroll
                        for (int j = 0; j < 8; j++) acc[i] = fmaf(xf[j], wf[j], acc[i]);
                    }
                }
            }
        }
        loaded = next;
        if (o >= p.n) continue; /* the whole warp: o depends on the warp only */
#pragma unroll
        for (int i = 0; i < M; i++)
#pragma unroll
            for (int s = 16; s > 0; s >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], s);
#pragma unroll
        for (int i = 0; i < M; i++)
            if (lane == i) p.out[(int64_t)i * p.n + o] = gemv_finish<T>(acc[i], p, i, o);
    }
}

/* ---- host side ------------------------------------------------------------------------------------------ */

struct gemv_plan {
    int64_t tiles, ks;
    int nk;   /* gemv_nk_kernel (w_t): tiles of GEMV_NW columns, no split */
    int splits, kc;
    int cluster; /* splits (2..GEMV_MAX_CLUSTER) when the tile's splits are one cluster, else 0 */
    size_t ws_bytes, smem;
};

/* Env knobs read once per process (A/B runs; the workspace size and the launches of a process always agree;
 * gemv_env_int: gemv.cuh): LC_GEMV_BPS (1..32) blocks per SM the split plan fills instead of gemv_resident(m);
 * LC_GEMV_MINKS (8..4096) the fewest k rows a split takes instead of GEMV_MIN_KS. */
static int gemv_blocks_per_sm(int64_t m) {
    static const int v = gemv_env_int("LC_GEMV_BPS", 1, 32);
    return v ? v : gemv_resident((int)m);
}
/* LC_GEMV_CLUSTER=0: split plans add their partials through the workspace even when a cluster could. */
static int gemv_cluster_enabled(void) {
    static const int v = [] {
        const char *e = getenv("LC_GEMV_CLUSTER");
        return !(e && e[0] == '0' && e[1] == 0);
    }();
    return v;
}
static int gemv_min_ks(void) {
    static const int v = gemv_env_int("LC_GEMV_MINKS", 8, 4096);
    return v ? v : GEMV_MIN_KS;
}
/* LC_GEMV_NK_GRID=all: the [n, k] kernel's grid is one block a tile (each stages x itself) instead of the
 * resident slots taking the tiles in turn (A/B runs; read once per process). */
static int gemv_nk_grid_all(void) {
    static const int v = [] {
        const char *e = getenv("LC_GEMV_NK_GRID");
        return e && strcmp(e, "all") == 0;
    }();
    return v;
}
/* Clusters of c blocks of gemv_kernel<*, m> that can be resident at once on the current device
 * (cudaOccupancyMaxActiveClusters: a cluster's blocks share one GPC, so fewer fit than SMs x resident / c),
 * cached per device, m and c; 0 without a device. Sizes past 8 are non-portable (sm_90 takes 16): the query
 * first allows them on both dtypes' kernels, once, so the launches need nothing more. Asked with the largest
 * dynamic shared memory a plan takes (32 KiB: never the limit at 3 blocks a SM). */
template <int M> static int gemv_cluster_query(int c) {
    if (c > 8) {
        if (cudaFuncSetAttribute(gemv_kernel<__nv_bfloat16, M>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) !=
                cudaSuccess ||
            cudaFuncSetAttribute(gemv_kernel<__half, M>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) !=
                cudaSuccess)
            return 0;
    }
    /* pdl.cuh; the cluster shape as the launch has it */
    return lc_max_active_clusters(gemv_kernel<__nv_bfloat16, M>, dim3(1, (unsigned)c, 1), GEMV_NT,
                                  GEMV_XS_FLOATS * sizeof(float));
}
static int gemv_cluster_capacity(int64_t m, int c) {
    static int cache[GEMV_MAX_DEVICES][LC_GEMV_MAX_M][GEMV_MAX_CLUSTER + 1]; /* capacity + 1; 0 not yet asked */
    if (c < 2 || c > GEMV_MAX_CLUSTER || m < 1 || m > LC_GEMV_MAX_M) return 0;
    /* pdl.cuh; a refused size takes the workspace path */
    return lc_cluster_capacity_cached(
        GEMV_MAX_DEVICES, [&](int dev) { return &cache[dev][m - 1][c]; },
        [&]() {
            return gemv_for_m(m, 0, [&](auto mc) { return gemv_cluster_query<decltype(mc)::value>(c); });
        });
}

/* One wave: when the column tiles alone leave resident-block slots (SMs x gemv_blocks_per_sm) empty, k is split
 * into floor(slots / tiles) ranges of equal length (a multiple of 8 rows, at least gemv_min_ks() rows), so that
 * every block streams the same bytes and none waits for a second wave. */
static gemv_plan gemv_make_plan(int64_t m, int64_t k, int64_t n, int num_sms) {
    gemv_plan pl;
    pl.nk = 0;
    pl.tiles = (n + GEMV_TILE - 1) / GEMV_TILE;
    const int64_t slots = (int64_t)(num_sms > 0 ? num_sms : 1) * gemv_blocks_per_sm(m);
    int64_t s = pl.tiles >= slots || pl.tiles > GEMV_NCTR ? 1 : slots / pl.tiles;
    const int64_t smax = (k + gemv_min_ks() - 1) / gemv_min_ks();
    if (s > smax) s = smax;
    if (s > GEMV_MAX_SPLITS) s = GEMV_MAX_SPLITS;
    if (s < 1) s = 1;
    int64_t ks = (k + s - 1) / s;
    ks = (ks + 7) / 8 * 8;
    pl.splits = (int)((k + ks - 1) / ks);
    pl.ks = pl.splits == 1 ? k : ks;
    int64_t kc = GEMV_XS_FLOATS / m / 4 * 4;
    if (kc > pl.ks) kc = (pl.ks + 3) / 4 * 4;
    pl.kc = (int)kc;
    const size_t xs = (size_t)m * (size_t)kc * sizeof(float), red = (size_t)GEMV_NW * GEMV_TILE * sizeof(float);
    pl.smem = xs > red ? xs : red;
    /* the splits of a tile as one cluster when all the tiles' clusters are resident at once (one wave) */
    pl.cluster = pl.splits > 1 && pl.splits <= GEMV_MAX_CLUSTER && gemv_cluster_enabled() &&
                         pl.tiles <= gemv_cluster_capacity(m, pl.splits)
                     ? pl.splits
                     : 0;
    pl.ws_bytes = pl.splits > 1 && !pl.cluster
                      ? (size_t)pl.tiles * (size_t)pl.splits * (size_t)m * GEMV_TILE * sizeof(float)
                      : 0;
    return pl;
}

/* The [n, k] kernel's plan: tiles of GEMV_NW columns, all of k, a grid of at most the resident slots (SMs x
 * GEMV_NK_BPS) taking them in turn; x staged in the dtype in chunks of at most 2·GEMV_XS_FLOATS / rows elements
 * (32 KiB; rows = m, + 2 for a norm's gamma and beta at m = 1), a multiple of 8 (one chunk, staged once a block,
 * for the decode shapes of the models: at m = 1 k <= 5456 with a norm, 16384 without). */
static gemv_plan gemv_make_plan_nk(int64_t m, int64_t k, int64_t n, int num_sms, int norm) {
    gemv_plan pl;
    pl.nk = 1;
    pl.tiles = (n + GEMV_NW - 1) / GEMV_NW;
    const int64_t slots = (int64_t)(num_sms > 0 ? num_sms : 1) * GEMV_NK_BPS;
    if (pl.tiles > slots && !gemv_nk_grid_all()) pl.tiles = slots; /* the grid; blocks loop over the tiles */
    pl.ks = k;
    pl.splits = 1;
    const int64_t rows = m + (norm && m == 1 ? 2 : 0); /* the one-pass norm staging keeps gamma and beta beside x */
    int64_t kc = 2 * GEMV_XS_FLOATS / rows / 8 * 8;
    if (kc > k) kc = k;
    pl.kc = (int)kc;
    pl.smem = (size_t)rows * (size_t)kc * 2;
    pl.cluster = 0;
    pl.ws_bytes = 0;
    return pl;
}

extern "C" int lc_cuda_gemv_fits(const lc_linear_args *a) {
    if (!a || (a->dtype != LC_DTYPE_F16 && a->dtype != LC_DTYPE_BF16)) return 0;
    if ((unsigned)a->act >= (unsigned)LC_ACT_COUNT) return 0;
    if (!a->x || !a->w || !a->out || a->m < 1 || a->m > LC_GEMV_MAX_M) return 0;
    if (a->w_t) /* w_t [n, k]: whole 16-byte chunks a row; out, bias, residual element-wise */
        return a->k >= 8 && a->k % 8 == 0 && a->n >= 1 && (uintptr_t)a->w % 16 == 0 &&
               a->n <= ((int64_t)INT32_MAX) * GEMV_NW;
    if (a->k < 1 || a->n < 8 || a->n % 8 != 0) return 0;
    if (((uintptr_t)a->w | (uintptr_t)a->out | (uintptr_t)a->bias) % 16 != 0) return 0;
    if (a->n > ((int64_t)INT32_MAX) * GEMV_TILE) return 0; /* grid.x */
    return 1;
}

extern "C" size_t lc_cuda_gemv_workspace(int64_t m, int64_t k, int64_t n, int w_t, int num_sms, int *splits) {
    if (m < 1 || m > LC_GEMV_MAX_M || k < 1 || n < 1) {
        if (splits) *splits = 0;
        return 0;
    }
    const gemv_plan pl = w_t ? gemv_make_plan_nk(m, k, n, num_sms, 0) : gemv_make_plan(m, k, n, num_sms);
    if (splits) *splits = pl.splits;
    return pl.ws_bytes;
}

/* The [k, n] kernel asks for the largest shared-memory carveout, once per device (pdl.cuh), as the ring kernel
 * does: a decode step's kernels then share one SM configuration, and under PDL a block of the next kernel need
 * not wait for the SM to drain and be reconfigured (session 24, H100: every PDL kernel at 100% took a LLaMA 1.1B
 * in_out step from 1.39 to 1.24 ms, three runs; no change where the ring already asked for it). */
template <typename T, int M> static cudaError_t gemv_prepare() {
    static int done[GEMV_MAX_DEVICES];
    return lc_once_per_device(GEMV_MAX_DEVICES, [](int dev) { return &done[dev]; }, [] {
        return cudaFuncSetAttribute(gemv_kernel<T, M>, cudaFuncAttributePreferredSharedMemoryCarveout, 100);
    });
}

template <typename T, int M> static cudaError_t gemv_launch_m(const gemv_params &p, const gemv_plan &pl,
                                                             cudaStream_t stream) {
    const dim3 grid((unsigned)pl.tiles, (unsigned)pl.splits);
    if (pl.nk) return lc_pdl_launch(gemv_nk_kernel<T, M>, grid, dim3(GEMV_NT), pl.smem, stream, p);
    const cudaError_t e = gemv_prepare<T, M>();
    if (e != cudaSuccess) return e;
    if (pl.cluster > 1) {
        return lc_pdl_launch_cluster(gemv_kernel<T, M>, grid, dim3(GEMV_NT), pl.smem, stream,
                                     dim3(1, (unsigned)pl.cluster, 1), p);
    }
    return lc_pdl_launch(gemv_kernel<T, M>, grid, dim3(GEMV_NT), pl.smem, stream, p);
}

template <typename T> static cudaError_t gemv_launch_t(int64_t m, const gemv_params &p, const gemv_plan &pl,
                                                      cudaStream_t stream) {
    return gemv_for_m(m, cudaErrorInvalidValue, [&](auto mc) { return gemv_launch_m<T, decltype(mc)::value>(p, pl, stream); });
}

/* The launch of a linear, with nrm's prologue (norm or SwiGLU) when nrm is not NULL. */
static cudaError_t gemv_launch(const lc_linear_args *a, const lc_norm_linear_args *nrm, void *workspace,
                               size_t workspace_bytes, int num_sms, cudaStream_t stream) {
    if (!lc_cuda_gemv_fits(a)) return cudaErrorInvalidValue;
    const gemv_plan pl = a->w_t ? gemv_make_plan_nk(a->m, a->k, a->n, num_sms, nrm && nrm->kind != LC_NORM_SWIGLU)
                                : gemv_make_plan(a->m, a->k, a->n, num_sms);
    if (pl.ws_bytes && (!workspace || workspace_bytes < pl.ws_bytes || (uintptr_t)workspace % 16 != 0))
        return cudaErrorInvalidValue;
    gemv_params p;
    p.x = static_cast<const unsigned short *>(a->x);
    p.bias = static_cast<const unsigned short *>(a->bias);
    p.res = static_cast<const unsigned short *>(a->residual);
    p.w = static_cast<const char *>(a->w);
    p.out = static_cast<unsigned short *>(a->out);
    p.ws = static_cast<float *>(workspace);
    p.k = a->k, p.n = a->n, p.ks = pl.ks, p.splits = pl.splits, p.kc = pl.kc, p.act = (int)a->act;
    p.xp = nrm && nrm->kind == LC_NORM_SWIGLU ? 2 * a->k : a->k;
    p.norm = nrm ? (int)nrm->kind : 0;
    p.ng = nrm && nrm->kind != LC_NORM_SWIGLU ? static_cast<const unsigned short *>(nrm->gamma) : NULL;
    p.nb = nrm && nrm->kind == LC_NORM_LAYER ? static_cast<const unsigned short *>(nrm->beta) : NULL;
    p.eps = nrm ? nrm->eps : 0.0;
    p.prefetch = lc_get_static_weights();
    p.cluster = pl.cluster;
    p.amax = NULL;
    if (a->w_t) { /* gemv_ring_cuda.cu, where its plan fits; it alone folds an argmax (the row index in 32 bits) */
        int taken = 0;
        gemv_params pr = p;
        if (a->argmax && a->n < INT32_MAX) pr.amax = a->argmax->idx;
        const cudaError_t e = gemv_ring_launch(a->m, pr, a->dtype == LC_DTYPE_BF16, num_sms, stream, &taken);
        if (taken && e == cudaSuccess && pr.amax) a->argmax->done = 1;
        if (taken) return e;
    }
    if (a->dtype == LC_DTYPE_BF16) return gemv_launch_t<__nv_bfloat16>(a->m, p, pl, stream);
    return gemv_launch_t<__half>(a->m, p, pl, stream);
}

extern "C" cudaError_t lc_cuda_launch_gemv(const lc_linear_args *a, void *workspace, size_t workspace_bytes,
                                           int num_sms, cudaStream_t stream) {
    return gemv_launch(a, NULL, workspace, workspace_bytes, num_sms, stream);
}

extern "C" cudaError_t lc_cuda_launch_gemv_norm(const lc_norm_linear_args *a, void *workspace, size_t workspace_bytes,
                                                int num_sms, cudaStream_t stream) {
    if (!a) return cudaErrorInvalidValue;
    if (a->kind == LC_NORM_SWIGLU) {
        if (a->lin.k > INT64_MAX / 2) return cudaErrorInvalidValue;
    } else if (a->lin.residual || (a->kind != LC_NORM_LAYER && a->kind != LC_NORM_RMS) || !(a->eps > 0.0)) {
        return cudaErrorInvalidValue;
    }
    return gemv_launch(&a->lin, a, workspace, workspace_bytes, num_sms, stream);
}

LC_TL_READER(lc_tl_read_gemv_cuda) /* pdl.cuh: the timeline build's reader of this file's kernels */
