/* matmul_cpu.c — the CPU matmul entry (lc_cpu_matmul): c[m,n] = a[m,k]·b[k,n], row-major, contiguous,
 * float32 or float64, c fully overwritten. Picks one of three paths and names it through *path:
 *
 *  1. small: "avx512_small" / "avx2_small" / "scalar_small" — unpacked register-tiled kernels on the
 *     row-major inputs, single-threaded (ISA ones in matmul_kernels_avx*.c, the scalar one here). The
 *     latency path: an 8x16 @ 16x8 float32 product takes a few tens of ns.
 *  2. BLAS (built with LC_HAVE_CBLAS and every dimension <= INT_MAX): "blas" — cblas_sgemm/dgemm,
 *     the name prefixed by LC_CBLAS_PREFIX (scipy_cblas_sgemm from the scipy-openblas32 wheel).
 *     OpenBLAS is set single-threaded; the product is split into one row (or column) block per pool
 *     thread, each a BLAS call, so the process has one set of worker threads.
 *  2b. mid (float32, 4 < m <= 64, AVX-512 F + BW): "f32_mid_avx512" — the medium-m kernel of matmul_lowp_cpu.c
 *     (a task owns a column chunk of B and copies it slice by slice into L2-resident panels; 8x32 FMA micro-kernels
 *     over all m rows), the default where LC_MM_MID_* says, a tuning candidate at every such shape.
 *  3. blocked (no BLAS, or a dimension too large for a 32-bit blasint): "avx512_blocked" /
 *     "avx2_blocked" / "scalar_blocked" — packed, cache-blocked GEMM. For each NC column block and each
 *     slab of k (as many KC slices as fit 8 MiB of packed B), B is packed into NR-wide, KC-deep panels
 *     (in parallel), then tasks of (MC rows x a range of panels) are handed to the pool through an
 *     atomic counter. A task owns its block of c: for each KC slice it packs its A rows into the
 *     worker's buffer as MR-row panels and runs the MR x NR micro-kernel, so tasks never wait on each
 *     other and a slab costs two pool synchronisations. The first KC slice overwrites c, later ones add.
 *
 * Crossover (m·k·n multiply-adds; measured on the 2-core Zen 5 dev machine):
 *   - with BLAS: small up to 64^3 (the unpacked AVX-512 kernel is on par with single-threaded OpenBLAS
 *     there and much faster for tiny shapes; OpenBLAS starts threading above 64^3), BLAS above.
 *   - without BLAS (or with LC_MATMUL_NO_BLAS=1): small up to 128^3 (the unpacked kernel stays near the packed one's single-core
 *     speed while the operands sit in L2), blocked and threaded above; n == 1 and m <= 4 stay on the
 *     small path at any size, as the blocked tiles (4..14 rows) would mostly compute padding.
 * Autotuning (include/lightning_core/tune.h): for LC_MM_TUNE_MIN_WORK < m·k·n <= LC_MM_TUNE_MAX_WORK
 * the thresholds above are only the fallback. The first call of such a shape times the candidates
 * that make sense for it on the real operands — small (skinny, or up to LC_MM_TUNE_SMALL_MAX_WORK on one thread),
 * BLAS (when active), blocked (unless skinny), mid (float32 at 4 < m <= 64 on AVX-512) — in interleaved rounds
 * (mm_tune), keeps the candidate with the fastest run (the static choice unless beaten by LC_MM_TUNE_MARGIN) in the
 * tune cache (mode "small" / "blas" / "blocked" / "mid", key
 * "matmul|cpu|<dtype>|m=..,k=..,n=..|thr=<pool threads>|isa=<isa>|blas=<0|1>") and leaves the winner's
 * result in c (it runs again if it was not the last one timed). Later calls take the stored mode;
 * *path names the kernel that ran, as always.
 * ISA kernels run only after lc_cpu_caps_get() reports the ISA (LC_CPU_DISABLE masks it).
 * Tests: tests/c/test_ops.c, tests/python/test_ops_matmul.py, tests/python/test_tuning.py.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/matmul_kernels.h"
#include "core/cpu_features.h"
#include "core/internal.h"
#include "core/threadpool.h"
#include "core/tune_cache.h"

#if defined(LC_HAVE_CBLAS)
#include <cblas.h>
#ifndef LC_CBLAS_PREFIX
#define LC_CBLAS_PREFIX
#endif
#define LC_CBLAS_CAT2(p, name) p##name
#define LC_CBLAS_CAT(p, name) LC_CBLAS_CAT2(p, name)
#define LC_CBLAS(name) LC_CBLAS_CAT(LC_CBLAS_PREFIX, name)
#endif

/* Largest m·k·n (multiply-adds) that takes the small, unpacked, single-threaded path: with BLAS, up to
 * where OpenBLAS starts threading; without, up to where the threaded blocked path wins. */
#define LC_MM_SMALL_MAX_WORK_BLAS (64.0 * 64.0 * 64.0)
#define LC_MM_SMALL_MAX_WORK_OWN (128.0 * 128.0 * 128.0)

/* Shapes the blocked path would mostly waste (its tiles are 4..14 rows tall): matrix-vector (n == 1)
 * and a few rows (m <= this) stay on the small path at any size when BLAS is not taken. */
#define LC_MM_SKINNY_MAX_M 4

/* BLAS takes 32-bit dimensions (OpenBLAS blasint); larger ones go to the blocked path. */
#ifndef LC_MM_BLAS_MAX_DIM
#define LC_MM_BLAS_MAX_DIM INT_MAX
#endif

/* float32 at 4 < m <= LC_MM_MID_MAX_M with k·n >= LC_MM_MID_MIN_KN on AVX-512 takes the medium-m kernel ("mid",
 * lc_cpu_matmul_mid_f32: b copied slice by slice into L2-resident panels) by default: against the threaded BLAS
 * split with b not in cache (2 Zen 5 cores, session 32) m = 8 1.06-1.29x, m = 32 0.96-1.14x at GPT-2 / LLaMA-1B
 * shapes; at m = 64 0.95-1.06x and at 33x300x200 0.74x, so up to 64 rows it is a tuning candidate only. */
#define LC_MM_MID_MAX_M 32
#define LC_MM_MID_MIN_KN 262144.0

/* Packed B of the blocked path: up to this many bytes (several kc slices, one synchronisation each). */
#define LC_MM_BPACK_BYTES ((size_t)8 << 20)

/* Autotuned range of m·k·n: below, a tuning run would cost more than it can win back (and the tests'
 * small awkward shapes never pay for it); above, BLAS (or blocked) is the sure choice and one timing
 * run costs tens of ms. The small kernel (single-threaded) is a candidate for skinny shapes, and up to
 * LC_MM_TUNE_SMALL_MAX_WORK when the pool has a single thread. */
#define LC_MM_TUNE_MIN_WORK (4.0 * 1024.0 * 1024.0)          /* 2^22, ~161^3 */
#define LC_MM_TUNE_MAX_WORK (1024.0 * 1024.0 * 1024.0)       /* 2^30 = 1024^3 */
#define LC_MM_TUNE_SMALL_MAX_WORK (16.0 * 1024.0 * 1024.0)   /* 2^24 = 256^3 */
/* Tuning runs (mm_tune): a candidate whose warm-up run is this many times slower than the best one
 * (and longer than LC_MM_TUNE_BUDGET_MS) is dropped; the others run in rounds for about
 * LC_MM_TUNE_BUDGET_MS each (at least 2, at most LC_MM_TUNE_MAX_REPS rounds) and count their fastest
 * run: short runs are noisy (pool workers waking up take ~0.1 ms). */

#define LC_MM_TUNE_LOSER_FACTOR 3.0
#define LC_MM_TUNE_BUDGET_MS 2.0
#define LC_MM_TUNE_MAX_REPS 16
/* The static choice (mm_heuristic) stays unless a candidate's fastest run beats it by this fraction: one
 * tuning burst on a busy machine is noisier than the steady state it decides (on the 2-core dev VM a
 * burst once ranked the single-threaded kernel ahead of the threaded BLAS split that is 1.7x faster
 * in a loop). */
#define LC_MM_TUNE_MARGIN 0.15

/* Below this many multiply-adds the blocked path stays on the calling thread. */
#define LC_MM_PARALLEL_MIN_WORK (128.0 * 128.0 * 128.0)

/* ---------------------------------------------------------------------------------------------- */
/* Scalar (portable) kernels — plain C, compiled for baseline x86-64.                             */
/* ---------------------------------------------------------------------------------------------- */

/* The plain triple loop (small problems) and the packed micro-kernel (same contract as the ISA ones in
 * matmul_kernels.h) for one element type: T, the MR x NR register block, the functions' suffix. */
#define LC_MM_SCALAR_KERNELS(T, MR_, NR_, SUF)                                                                   \
    static void small_##SUF##_scalar(int64_t m, int64_t k, int64_t n, const T *a, const T *b, T *c) {            \
        for (int64_t i = 0; i < m; i++) {                                                                        \
            T *ci = c + i * n;                                                                                   \
            for (int64_t j = 0; j < n; j++) ci[j] = 0;                                                           \
            for (int64_t p = 0; p < k; p++) {                                                                    \
                const T av = a[i * k + p];                                                                       \
                const T *bp = b + p * n;                                                                         \
                for (int64_t j = 0; j < n; j++) ci[j] += av * bp[j];                                             \
            }                                                                                                    \
        }                                                                                                        \
    }                                                                                                            \
    static void ukr_##SUF##_scalar(int64_t kc, const void *ap_, const void *bp_, void *c_, int64_t ldc, int mr,  \
                                   int nr, int accumulate) {                                                     \
        enum { MR = MR_, NR = NR_ };                                                                             \
        const T *ap = (const T *)ap_;                                                                            \
        const T *bp = (const T *)bp_;                                                                            \
        T *c = (T *)c_;                                                                                          \
        T acc[MR][NR] = {{0}};                                                                                   \
        for (int64_t p = 0; p < kc; p++) {                                                                       \
            for (int i = 0; i < MR; i++)                                                                         \
                for (int j = 0; j < NR; j++) acc[i][j] += ap[i] * bp[j];                                         \
            ap += MR;                                                                                            \
            bp += NR;                                                                                            \
        }                                                                                                        \
        for (int i = 0; i < mr; i++)                                                                             \
            for (int j = 0; j < nr; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];   \
    }

#define SCALAR_F32_MR 4
#define SCALAR_F32_NR 8
#define SCALAR_F64_MR 4
#define SCALAR_F64_NR 4
LC_MM_SCALAR_KERNELS(float, SCALAR_F32_MR, SCALAR_F32_NR, f32)
LC_MM_SCALAR_KERNELS(double, SCALAR_F64_MR, SCALAR_F64_NR, f64)
#undef LC_MM_SCALAR_KERNELS

/* ---------------------------------------------------------------------------------------------- */
/* Packing                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* A[rows, kc] (leading dimension lda) -> MR-row micro-panels: dst[panel][p*MR + i]; rows past `rows`
 * are zero. One function per element type T (pack_a_<SUF>). */
#define LC_MM_PACK_A(T, SUF)                                                                                     \
    static void pack_a_##SUF(const void *src_, int64_t lda, int64_t rows, int64_t kc, int mr, void *dst_) {     \
        const T *src = (const T *)src_;                                                                          \
        T *dst = (T *)dst_;                                                                                      \
        for (int64_t r0 = 0; r0 < rows; r0 += mr, dst += (int64_t)mr * kc) {                                    \
            const int64_t h = rows - r0 < mr ? rows - r0 : mr;                                                   \
            for (int64_t i = 0; i < h; i++) {                                                                    \
                const T *s = src + (r0 + i) * lda;                                                               \
                for (int64_t p = 0; p < kc; p++) dst[p * mr + i] = s[p];                                         \
            }                                                                                                    \
            for (int64_t i = h; i < mr; i++)                                                                     \
                for (int64_t p = 0; p < kc; p++) dst[p * mr + i] = 0;                                            \
        }                                                                                                        \
    }
LC_MM_PACK_A(float, f32)
LC_MM_PACK_A(double, f64)
#undef LC_MM_PACK_A

/* One NR-wide B micro-panel: dst[p*NR + j] = B[p][j] for j < cols, zero for cols <= j < NR. */
static void pack_b_panel(const char *src, int64_t ldb_bytes, int64_t kc, int64_t cols, int nr, size_t elt,
                         char *dst) {
    const size_t row = (size_t)nr * elt, used = (size_t)cols * elt;
    for (int64_t p = 0; p < kc; p++, src += ldb_bytes, dst += row) {
        memcpy(dst, src, used);
        if (used < row) memset(dst + used, 0, row - used);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Blocked GEMM driver                                                                             */
/* ---------------------------------------------------------------------------------------------- */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

typedef struct mm_blocked_kernel {
    const char *path;
    int mr, nr;
    size_t elt;
    int64_t kc, mc, nc; /* cache blocking: mc multiple of mr, nc multiple of nr */
    lc_mm_ukernel_fn ukr;
    void (*pack_a)(const void *src, int64_t lda, int64_t rows, int64_t kc, int mr, void *dst);
} mm_blocked_kernel;

/* Blocking: a kc x nr B micro-panel stays in L1, an mc x kc A block in L2, the packed B slab in L3. */
static const mm_blocked_kernel mm_avx512_f32 = {"avx512_blocked", LC_MM_AVX512_F32_MR, LC_MM_AVX512_F32_NR, 4,
                                                256, 14 * 12, 2048, lc_mm_ukr_f32_avx512, pack_a_f32};
static const mm_blocked_kernel mm_avx512_f64 = {"avx512_blocked", LC_MM_AVX512_F64_MR, LC_MM_AVX512_F64_NR, 8,
                                                256, 14 * 6, 1024, lc_mm_ukr_f64_avx512, pack_a_f64};
static const mm_blocked_kernel mm_avx2_f32 = {"avx2_blocked", LC_MM_AVX2_F32_MR, LC_MM_AVX2_F32_NR, 4,
                                              256, 6 * 24, 2048, lc_mm_ukr_f32_avx2, pack_a_f32};
static const mm_blocked_kernel mm_avx2_f64 = {"avx2_blocked", LC_MM_AVX2_F64_MR, LC_MM_AVX2_F64_NR, 8,
                                              256, 6 * 12, 1024, lc_mm_ukr_f64_avx2, pack_a_f64};
static const mm_blocked_kernel mm_scalar_f32 = {"scalar_blocked", SCALAR_F32_MR, SCALAR_F32_NR, 4,
                                                256, 4 * 32, 1024, ukr_f32_scalar, pack_a_f32};
static const mm_blocked_kernel mm_scalar_f64 = {"scalar_blocked", SCALAR_F64_MR, SCALAR_F64_NR, 8,
                                                256, 4 * 16, 1024, ukr_f64_scalar, pack_a_f64};

typedef struct mm_blocked_ctx {
    const mm_blocked_kernel *kr;
    const char *a, *b;
    char *c;
    int64_t m, k, n;
    int64_t mc;            /* rows per task (multiple of mr, <= kr->mc) */
    int64_t mblocks;       /* row blocks of mc rows */
    /* current column block and k range ("slab": consecutive kc slices whose packed B fits bpack) */
    int64_t jc, ncur, panels;
    int64_t k0, klen;
    int64_t splits;        /* column ranges per row block (tasks = mblocks * splits) */
    int64_t split_panels;  /* B micro-panels per column range */
    char *bpack;           /* per kc slice s of the slab: `panels` micro-panels of kc_s x nr */
    char *apack;           /* one mc x kc buffer per worker */
    size_t apack_stride;
    atomic_llong next;     /* next B panel (packing) or next task (compute) */
} mm_blocked_ctx;

/* Packed B of the slab: slice at k offset pc starts at (pc - k0) * panels * nr elements, and its panel
 * jp at jp * kc_s * nr elements further. */
static char *mm_bpanel(const mm_blocked_ctx *ctx, int64_t pc, int64_t kc_s, int64_t jp) {
    const int64_t nr = ctx->kr->nr;
    return ctx->bpack + (size_t)((pc - ctx->k0) * ctx->panels * nr + jp * kc_s * nr) * ctx->kr->elt;
}

static void mm_pack_b_worker(void *vctx, int64_t begin, int64_t end) {
    mm_blocked_ctx *ctx = (mm_blocked_ctx *)vctx;
    const mm_blocked_kernel *kr = ctx->kr;
    const size_t elt = kr->elt;
    const int64_t tasks = ceil_div(ctx->klen, kr->kc) * ctx->panels;
    for (;;) {
        const int64_t t = (int64_t)atomic_fetch_add_explicit(&ctx->next, 1, memory_order_relaxed);
        if (t >= tasks) break;
        const int64_t pc = ctx->k0 + (t / ctx->panels) * kr->kc, jp = t % ctx->panels;
        const int64_t kc_s = ctx->k0 + ctx->klen - pc < kr->kc ? ctx->k0 + ctx->klen - pc : kr->kc;
        const int64_t j0 = jp * kr->nr;
        const int64_t cols = ctx->ncur - j0 < kr->nr ? ctx->ncur - j0 : kr->nr;
        const char *src = ctx->b + ((size_t)pc * (size_t)ctx->n + (size_t)(ctx->jc + j0)) * elt;
        pack_b_panel(src, ctx->n * (int64_t)elt, kc_s, cols, kr->nr, elt, mm_bpanel(ctx, pc, kc_s, jp));
    }
}

/* A task owns c[ic : ic+mc, its column range] and runs every kc slice of the slab over it, so tasks
 * never wait on each other. */
static void mm_compute_worker(void *vctx, int64_t begin, int64_t end) {
    mm_blocked_ctx *ctx = (mm_blocked_ctx *)vctx;
    const mm_blocked_kernel *kr = ctx->kr;
    const size_t elt = kr->elt;
    char *abuf = ctx->apack + (size_t)begin * ctx->apack_stride; /* chunks are disjoint: begin is unique */
    const int64_t tasks = ctx->mblocks * ctx->splits;
    for (;;) {
        const int64_t t = (int64_t)atomic_fetch_add_explicit(&ctx->next, 1, memory_order_relaxed);
        if (t >= tasks) break;
        const int64_t mb = t / ctx->splits, sp = t % ctx->splits;
        const int64_t ic = mb * ctx->mc;
        const int64_t mc = ctx->m - ic < ctx->mc ? ctx->m - ic : ctx->mc;
        const int64_t p0 = sp * ctx->split_panels;
        const int64_t p1 = p0 + ctx->split_panels < ctx->panels ? p0 + ctx->split_panels : ctx->panels;
        for (int64_t pc = ctx->k0; pc < ctx->k0 + ctx->klen; pc += kr->kc) {
            const int64_t kc = ctx->k0 + ctx->klen - pc < kr->kc ? ctx->k0 + ctx->klen - pc : kr->kc;
            const size_t a_panel_bytes = (size_t)kc * (size_t)kr->mr * elt;
            const int accumulate = pc > 0;
            kr->pack_a(ctx->a + ((size_t)ic * (size_t)ctx->k + (size_t)pc) * elt, ctx->k, mc, kc, kr->mr, abuf);
            for (int64_t jp = p0; jp < p1; jp++) {
                const int64_t jr = jp * kr->nr;
                const int nr = (int)(ctx->ncur - jr < kr->nr ? ctx->ncur - jr : kr->nr);
                const char *bp = mm_bpanel(ctx, pc, kc, jp);
                char *cj = ctx->c + ((size_t)ic * (size_t)ctx->n + (size_t)(ctx->jc + jr)) * elt;
                const char *ap = abuf;
                for (int64_t ir = 0; ir < mc; ir += kr->mr, ap += a_panel_bytes) {
                    const int mr = (int)(mc - ir < kr->mr ? mc - ir : kr->mr);
                    kr->ukr(kc, ap, bp, cj + (size_t)ir * (size_t)ctx->n * elt, ctx->n, mr, nr, accumulate);
                }
            }
        }
    }
}

static void mm_run(int64_t workers, lc_range_fn fn, mm_blocked_ctx *ctx) {
    atomic_store_explicit(&ctx->next, 0, memory_order_relaxed);
    if (workers > 1)
        lc_parallel_for(workers, 1, fn, ctx);
    else
        fn(ctx, 0, 1);
}

static lc_status mm_blocked(const mm_blocked_kernel *kr, const lc_matmul_args *args) {
    const int64_t m = args->m, k = args->k, n = args->n;
    const size_t elt = kr->elt;

    /* Workers: one per pool thread, but never more than there are tiles, and none for small work. */
    int64_t workers = 1;
    if ((double)m * (double)k * (double)n >= LC_MM_PARALLEL_MIN_WORK) {
        workers = lc_pool_threads();
        const int64_t tiles = ceil_div(m, kr->mr) * ceil_div(n < kr->nc ? n : kr->nc, kr->nr);
        if (workers > tiles) workers = tiles;
        if (workers < 1) workers = 1;
    }
    /* Row blocks: at most kr->mc rows, and small enough for about 4 tasks per worker. */
    int64_t mc = kr->mc;
    if (workers > 1) {
        const int64_t want = ceil_div(ceil_div(m, 4 * workers), kr->mr) * kr->mr;
        if (want < mc) mc = want;
    }
    if (mc > ceil_div(m, kr->mr) * kr->mr) mc = ceil_div(m, kr->mr) * kr->mr;
    const int64_t kc_max = k < kr->kc ? k : kr->kc;
    const int64_t nc_pad = ceil_div(n < kr->nc ? n : kr->nc, kr->nr) * kr->nr;
    /* Slab: as many kc slices of packed B as fit LC_MM_BPACK_BYTES (at least one). */
    int64_t slab = kr->kc * (int64_t)(LC_MM_BPACK_BYTES / ((size_t)kr->kc * (size_t)nc_pad * elt));
    if (slab < kr->kc) slab = kr->kc;
    const int64_t slab_max = k < slab ? k : slab;

    const size_t b_bytes = (((size_t)slab_max * (size_t)nc_pad * elt) + 63) & ~(size_t)63;
    const size_t a_stride = ((size_t)mc * (size_t)kc_max * elt + 63) & ~(size_t)63;
    const size_t total = b_bytes + (size_t)workers * a_stride;
    char *buf = (char *)lc_aligned_alloc(total);
    if (!buf) return lc_error(LC_ERR_OUT_OF_MEMORY, "matmul: could not allocate %zu bytes of packing buffers", total);

    mm_blocked_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.kr = kr;
    ctx.a = (const char *)args->a;
    ctx.b = (const char *)args->b;
    ctx.c = (char *)args->c;
    ctx.m = m;
    ctx.k = k;
    ctx.n = n;
    ctx.mc = mc;
    ctx.mblocks = ceil_div(m, mc);
    ctx.bpack = buf;
    ctx.apack = buf + b_bytes;
    ctx.apack_stride = a_stride;

    for (int64_t jc = 0; jc < n; jc += kr->nc) {
        ctx.jc = jc;
        ctx.ncur = n - jc < kr->nc ? n - jc : kr->nc;
        ctx.panels = ceil_div(ctx.ncur, kr->nr);
        /* Few row blocks (small m): split the columns too, so every worker gets tasks. */
        ctx.splits = 1;
        if (workers > 1 && ctx.mblocks < 2 * workers) {
            ctx.splits = ceil_div(4 * workers, ctx.mblocks);
            if (ctx.splits > ctx.panels) ctx.splits = ctx.panels;
        }
        ctx.split_panels = ceil_div(ctx.panels, ctx.splits);
        ctx.splits = ceil_div(ctx.panels, ctx.split_panels);
        for (int64_t k0 = 0; k0 < k; k0 += slab) {
            ctx.k0 = k0;
            ctx.klen = k - k0 < slab ? k - k0 : slab;
            mm_run(workers, mm_pack_b_worker, &ctx);
            mm_run(workers, mm_compute_worker, &ctx);
        }
    }
    lc_aligned_free(buf);
    return LC_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Dispatcher                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

#if defined(LC_HAVE_CBLAS)
/* OpenBLAS runs single-threaded and our pool splits the product: one set of worker threads in the
 * process. OpenBLAS's own idle workers spin for a while after each call and steal the cores our pool
 * needs for the next op (seen on the 2-core machine: 2x slower elementwise right after a matmul). */
static pthread_once_t lc_blas_threads_once = PTHREAD_ONCE_INIT;
static void lc_blas_single_thread(void) { LC_CBLAS(openblas_set_num_threads)(1); }

/* One BLAS call on rows [r0, r1) (split_rows) or columns [r0, r1) of c. */
static void mm_blas_part(const lc_matmul_args *args, int split_rows, int64_t r0, int64_t r1) {
    const int64_t k = args->k, n = args->n;
    const int64_t mm = split_rows ? r1 - r0 : args->m, nn = split_rows ? n : r1 - r0;
    const int64_t a_off = split_rows ? r0 * k : 0, b_off = split_rows ? 0 : r0, c_off = split_rows ? r0 * n : r0;
    if (args->dtype == LC_DTYPE_F32)
        LC_CBLAS(cblas_sgemm)(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mm, (int)nn, (int)k, 1.0f,
                              (const float *)args->a + a_off, (int)k, (const float *)args->b + b_off, (int)n, 0.0f,
                              (float *)args->c + c_off, (int)n);
    else
        LC_CBLAS(cblas_dgemm)(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mm, (int)nn, (int)k, 1.0,
                              (const double *)args->a + a_off, (int)k, (const double *)args->b + b_off, (int)n, 0.0,
                              (double *)args->c + c_off, (int)n);
}

static void mm_blas_rows(void *ctx, int64_t begin, int64_t end) { mm_blas_part(ctx, 1, begin, end); }
static void mm_blas_cols(void *ctx, int64_t begin, int64_t end) { mm_blas_part(ctx, 0, begin, end); }

/* Splits the longer of m and n into about two parts per pool thread (of >= 32 rows/columns), so that a
 * worker that wakes late (an idle vCPU can take 100+ us) still finds a part left to take. */
static void mm_blas(const lc_matmul_args *args) {
    pthread_once(&lc_blas_threads_once, lc_blas_single_thread);
    const int split_rows = args->m >= args->n;
    const int64_t dim = split_rows ? args->m : args->n;
    const int64_t threads = lc_pool_threads();
    int64_t part = (dim + 2 * threads - 1) / (2 * threads);
    if (part < 32) part = 32;
    lc_parallel_for(dim, part, split_rows ? mm_blas_rows : mm_blas_cols, (void *)args);
}
#endif

/* BLAS is used when built in, unless LC_MATMUL_NO_BLAS=1 (read once): lets the tests and benchmarks run
 * the own blocked kernels in a BLAS build. */
#if defined(LC_HAVE_CBLAS)
static atomic_int lc_mm_blas_state = -1;
#endif

int lc_cpu_matmul_blas_active(void) {
#if defined(LC_HAVE_CBLAS)
    int state = atomic_load(&lc_mm_blas_state);
    if (state < 0) {
        const char *env = getenv("LC_MATMUL_NO_BLAS");
        state = !(env && strcmp(env, "1") == 0);
        atomic_store(&lc_mm_blas_state, state);
    }
    return state;
#else
    return 0;
#endif
}

typedef enum mm_mode { MM_SMALL = 0, MM_BLAS, MM_BLOCKED, MM_MID, MM_MODE_COUNT } mm_mode;

static const char *const mm_mode_names[MM_MODE_COUNT] = {"small", "blas", "blocked", "mid"};

static int mm_skinny(const lc_matmul_args *args) { return args->n == 1 || args->m <= LC_MM_SKINNY_MAX_M; }

static int mm_blas_fits(const lc_matmul_args *args) {
    return args->m <= LC_MM_BLAS_MAX_DIM && args->k <= LC_MM_BLAS_MAX_DIM && args->n <= LC_MM_BLAS_MAX_DIM;
}

/* The fixed thresholds of the header comment. */
static mm_mode mm_heuristic(const lc_matmul_args *args, int blas) {
    const double work = (double)args->m * (double)args->k * (double)args->n;
    const int small = work <= (blas ? LC_MM_SMALL_MAX_WORK_BLAS : LC_MM_SMALL_MAX_WORK_OWN);
    if (!small && args->m <= LC_MM_MID_MAX_M && (double)args->k * (double)args->n >= LC_MM_MID_MIN_KN &&
        lc_cpu_mid_f32_fits(args)) /* fits: float32, 4 < m <= 64, AVX-512 */
        return MM_MID;
    if (blas && !small && mm_blas_fits(args)) return MM_BLAS;
    return small || mm_skinny(args) ? MM_SMALL : MM_BLOCKED;
}

static void mm_small(const lc_cpu_caps *caps, const lc_matmul_args *args, const char **path) {
    const int64_t m = args->m, k = args->k, n = args->n;
    const int f64 = args->dtype == LC_DTYPE_F64;
    if (caps->avx512f) {
        *path = "avx512_small";
        if (f64)
            lc_mm_small_f64_avx512(m, k, n, (const double *)args->a, (const double *)args->b, (double *)args->c);
        else
            lc_mm_small_f32_avx512(m, k, n, (const float *)args->a, (const float *)args->b, (float *)args->c);
    } else if (caps->avx2_fma) {
        *path = "avx2_small";
        if (f64)
            lc_mm_small_f64_avx2(m, k, n, (const double *)args->a, (const double *)args->b, (double *)args->c);
        else
            lc_mm_small_f32_avx2(m, k, n, (const float *)args->a, (const float *)args->b, (float *)args->c);
    } else {
        *path = "scalar_small";
        if (f64)
            small_f64_scalar(m, k, n, (const double *)args->a, (const double *)args->b, (double *)args->c);
        else
            small_f32_scalar(m, k, n, (const float *)args->a, (const float *)args->b, (float *)args->c);
    }
}

static lc_status mm_run_mode(mm_mode mode, const lc_cpu_caps *caps, const lc_matmul_args *args, const char **path) {
    const int f64 = args->dtype == LC_DTYPE_F64;
    switch (mode) {
    case MM_SMALL: mm_small(caps, args, path); return LC_OK;
#if defined(LC_HAVE_CBLAS)
    case MM_BLAS:
        *path = "blas";
        mm_blas(args);
        return LC_OK;
#endif
    case MM_MID: return lc_cpu_matmul_mid_f32(args, path);
    case MM_BLOCKED: {
        const mm_blocked_kernel *kr;
        if (caps->avx512f)
            kr = f64 ? &mm_avx512_f64 : &mm_avx512_f32;
        else if (caps->avx2_fma)
            kr = f64 ? &mm_avx2_f64 : &mm_avx2_f32;
        else
            kr = f64 ? &mm_scalar_f64 : &mm_scalar_f32;
        *path = kr->path;
        return mm_blocked(kr, args);
    }
    default: return lc_error(LC_ERR_INTERNAL, "matmul: cpu: mode %d is not available in this build", (int)mode);
    }
}

/* Candidates for this shape (see the header comment); returns how many. */
static int mm_candidates(const lc_matmul_args *args, int blas, mm_mode *out) {
    const double work = (double)args->m * (double)args->k * (double)args->n;
    int n = 0;
    /* The small kernel is single-threaded: with a pool of several threads it is a candidate only for
     * skinny shapes. A tuning burst that ranks it ahead of a threaded path on a square shape was
     * measured under contention: on the 16-core GPU host, other libraries' spinning BLAS/OpenMP threads
     * made it win 256^3 at 0.33 ms, 5x slower than the threaded BLAS split in a loop. */
    if (mm_skinny(args) || (work <= LC_MM_TUNE_SMALL_MAX_WORK && lc_pool_threads() <= 1)) out[n++] = MM_SMALL;
    if (blas && mm_blas_fits(args)) out[n++] = MM_BLAS;
    if (!mm_skinny(args)) out[n++] = MM_BLOCKED;
    if (lc_cpu_mid_f32_fits(args)) out[n++] = MM_MID;
    return n;
}

static void mm_tune_key(char *key, size_t size, const lc_matmul_args *args, const lc_cpu_caps *caps, int blas) {
    snprintf(key, size, "matmul|cpu|%s|m=%lld,k=%lld,n=%lld|thr=%d|isa=%s|blas=%d",
             args->dtype == LC_DTYPE_F64 ? "f64" : "f32", (long long)args->m, (long long)args->k, (long long)args->n,
             lc_pool_threads(), caps->avx512f ? "avx512" : caps->avx2_fma ? "avx2" : "scalar", blas);
}

/* The CPU tuner's one timed run: one run of candidate `mode`, *ms = its wall time (the tune cache's clock,
 * lc_tune_now_ms, the same clock as the CPU side of lc_device_timer). */
static lc_status mm_timed_run(mm_mode mode, const lc_cpu_caps *caps, const lc_matmul_args *args, const char **path,
                              double *ms) {
    const double t0 = lc_tune_now_ms();
    const lc_status st = mm_run_mode(mode, caps, args, path);
    *ms = lc_tune_now_ms() - t0;
    return st;
}

/* Times the candidates on the real operands in interleaved rounds (a passing load on the machine then
 * hits them all alike): one warm-up run each, dropping a candidate whose warm-up was clearly beaten,
 * then rounds until about LC_MM_TUNE_BUDGET_MS per candidate has passed (at least 2, at most
 * LC_MM_TUNE_MAX_REPS); a candidate's time is its fastest run. Stores the winner and leaves its result
 * in c. */
static lc_status mm_tune(const char *key, const mm_mode *cand, int ncand, mm_mode fallback, const lc_cpu_caps *caps,
                         const lc_matmul_args *args, const char **path) {
    double best_run[MM_MODE_COUNT], spent = 0.0, first_best = INFINITY;
    int alive[MM_MODE_COUNT], last = -1;
    const char *paths[MM_MODE_COUNT];
    lc_status st = LC_OK, last_err = LC_OK;
    for (int i = 0; i < ncand; i++) { /* warm-up round: the first run pays page faults and cold caches */
        st = mm_timed_run(cand[i], caps, args, &paths[i], &best_run[i]);
        alive[i] = st == LC_OK; /* e.g. no memory for packing buffers: not a candidate */
        if (st != LC_OK) last_err = st;
        if (alive[i]) last = i;
        if (alive[i] && best_run[i] < first_best) first_best = best_run[i];
    }
    int nalive = 0;
    for (int i = 0; i < ncand; i++) {
        if (alive[i] && best_run[i] > LC_MM_TUNE_LOSER_FACTOR * first_best && best_run[i] > LC_MM_TUNE_BUDGET_MS)
            alive[i] = 0; /* clearly beaten, and long enough to be sure */
        nalive += alive[i];
    }
    if (!nalive) return last_err;
    for (int r = 0; r < LC_MM_TUNE_MAX_REPS && (r < 2 || spent < LC_MM_TUNE_BUDGET_MS * nalive); r++)
        for (int i = 0; i < ncand; i++) {
            if (!alive[i]) continue;
            double t = 0.0;
            st = mm_timed_run(cand[i], caps, args, &paths[i], &t);
            if (st != LC_OK) {
                alive[i] = 0;
                last_err = st;
                continue;
            }
            last = i;
            spent += t;
            if (t < best_run[i]) best_run[i] = t;
        }
    int winner = -1, keep = -1;
    for (int i = 0; i < ncand; i++) {
        if (alive[i] && (winner < 0 || best_run[i] < best_run[winner])) winner = i;
        if (alive[i] && cand[i] == fallback) keep = i;
    }
    if (winner < 0) return last_err;
    if (keep >= 0 && best_run[winner] * (1.0 + LC_MM_TUNE_MARGIN) > best_run[keep]) winner = keep;
    if (last != winner) {
        st = mm_run_mode(cand[winner], caps, args, &paths[winner]);
        if (st != LC_OK) return st;
    }
    (void)lc_tune_store(key, mm_mode_names[cand[winner]], best_run[winner]); /* a failed store only forgets */
    *path = paths[winner];
    return LC_OK;
}

lc_status lc_cpu_matmul(const lc_matmul_args *args, const char **path) {
    const char *unused_path;
    if (!path) path = &unused_path;
    if (args->dtype == LC_DTYPE_F16 || args->dtype == LC_DTYPE_BF16) return lc_cpu_matmul_lowp(args, path);
    if (args->dtype != LC_DTYPE_F32 && args->dtype != LC_DTYPE_F64)
        return lc_error(LC_ERR_DTYPE, "matmul: cpu kernel takes float32 or float64, got dtype %d", (int)args->dtype);
    LC_CHECK_INVARIANT(args->m >= 1 && args->k >= 1 && args->n >= 1);
    lc_status gst;
    if (lc_cpu_gemv_f32_try(args, path, &gst)) return gst; /* decode-sized m: b streamed once (matmul_lowp_cpu.c) */
    const int64_t m = args->m, k = args->k, n = args->n;
    const lc_cpu_caps *caps = lc_cpu_caps_get();

    const int blas = lc_cpu_matmul_blas_active();
    mm_mode mode = mm_heuristic(args, blas);
    const double work = (double)m * (double)k * (double)n;
    if (work > LC_MM_TUNE_MIN_WORK && work <= LC_MM_TUNE_MAX_WORK && lc_get_autotune()) {
        mm_mode cand[MM_MODE_COUNT];
        const int ncand = mm_candidates(args, blas, cand);
        if (ncand > 1) {
            char key[LC_TUNE_KEY_MAX], stored[LC_TUNE_MODE_MAX];
            mm_tune_key(key, sizeof key, args, caps, blas);
            int found = -1;
            if (lc_tune_lookup(key, stored, sizeof stored, NULL))
                for (int i = 0; i < ncand; i++)
                    if (strcmp(stored, mm_mode_names[cand[i]]) == 0) found = i;
            if (found < 0) return mm_tune(key, cand, ncand, mode, caps, args, path); /* new, or not valid here */
            mode = cand[found];
        }
    }
    return mm_run_mode(mode, caps, args, path);
}
