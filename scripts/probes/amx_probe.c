/* amx_probe.c — where the AMX-BF16 matmul's time goes, on an AMX host (the card's Xeon host, or an Intel
 * development machine with amx_bf16). Not part of the library or its build; it includes the shipped driver
 * (src/backend/cpu/matmul_amx_impl.h with the real tile instructions, matmul_amx_real.h) and times its pieces:
 *   gcc -O2 -I src -I include scripts/probes/amx_probe.c build/liblightning_core_static.a \
 *       $(sed -n 's/^LC_BLAS_LIBRARY:FILEPATH=//p' build/CMakeCache.txt) -lm -lpthread -o /tmp/amx_probe
 *   /tmp/amx_probe [threads ...]        (default: 1 and every online CPU)
 * For each thread count: (1) TDPBF16PS with its four accumulator tiles and A/B tiles resident, no loads (the
 * tile unit's ceiling, GFLOP/s a core); (2) the driver's k step on L1-resident packed blocks (2 A + 2 B tile
 * loads, 4 TDPBF16PS); (3) for issue 14's 1024^3 row and the model runner's shapes: the whole call
 * (lc_cpu_matmul_amx_bf16: allocation, packing, compute), its packing pass alone and its compute pass alone,
 * medians of 7 in ms and TFLOP/s; then B packed alone and the compute pass under other blockings (A's tiles
 * read in place, micro blocks column-major, taller tasks, other k slices: compute_variant), each variant's
 * output checked equal to the driver's. Written in session 32 (no AMX host that session): compiled, and run once
 * with test_amx_emu.c's emulated tiles in place of the instructions (define the AMX_* macros, AMX_PROBE_EMU,
 * PROBE_READY() 1, PROBE_ITERS and small PROBE_SHAPES before including this file): every variant's c equal,
 * no tile-protocol error;
 * issue 14's CPU row on the card's host stood at 0.24x torch's oneDNN (benchmarks.md, session 26). */
#define _GNU_SOURCE 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/matmul_amx.h"
#include "core/internal.h"
#include "lightning_core/runtime.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#ifndef AMX_PROBE_EMU /* the real instructions; a check build elsewhere defines the AMX_* macros as an emulation */
#include "backend/cpu/matmul_amx_real.h"
#define PROBE_READY() lc_cpu_amx_ready()
#define PROBE_ITERS 2000000L
#define PROBE_SHAPES {1024, 1024, 1024}, {2048, 2048, 2048}, {1024, 768, 3072}, {64, 2048, 11264}, {32, 2048, 11264}, {16, 768, 2304}
#endif
#include "backend/cpu/matmul_amx_impl.h"

#define FLOPS_PER_DP (16.0 * 16.0 * 32.0 * 2.0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    long iters;
    int with_loads;
    double secs[256]; /* per chunk (one a thread) */
} loop_ctx;

/* (1)/(2): each chunk runs `iters` k steps on its own thread, tiles configured as the driver does. */
AMX_FN static void tile_loop(void *vctx, int64_t begin, int64_t end) {
    loop_ctx *c = vctx;
    static _Thread_local uint16_t blk[4 * AMX_BLK_ELEMS] __attribute__((aligned(64)));
    for (int i = 0; i < 4 * AMX_BLK_ELEMS; i++) blk[i] = 0x3f80; /* 1.0 */
    amx_tilecfg cfg;
    amx_config(&cfg);
    for (int64_t t = begin; t < end; t++) {
        AMX_LOADCONFIG(&cfg);
        AMX_ZERO(0);
        AMX_ZERO(1);
        AMX_ZERO(2);
        AMX_ZERO(3);
        const uint16_t *ap = blk, *bp = blk + 2 * AMX_BLK_ELEMS;
        AMX_LOAD(4, ap, AMX_TILE_STRIDE);
        AMX_LOAD(5, ap + AMX_BLK_ELEMS / 2, AMX_TILE_STRIDE);
        AMX_LOAD(6, bp, AMX_TILE_STRIDE);
        AMX_LOAD(7, bp + AMX_BLK_ELEMS / 2, AMX_TILE_STRIDE);
        const double t0 = now();
        if (c->with_loads) {
            for (long i = 0; i < c->iters; i++) {
                AMX_LOAD(4, ap, AMX_TILE_STRIDE);
                AMX_LOAD(6, bp, AMX_TILE_STRIDE);
                AMX_LOAD(7, bp + AMX_BLK_ELEMS / 2, AMX_TILE_STRIDE);
                AMX_DP(0, 4, 6);
                AMX_DP(1, 4, 7);
                AMX_LOAD(5, ap + AMX_BLK_ELEMS / 2, AMX_TILE_STRIDE);
                AMX_DP(2, 5, 6);
                AMX_DP(3, 5, 7);
            }
        } else {
            for (long i = 0; i < c->iters; i++) {
                AMX_DP(0, 4, 6);
                AMX_DP(1, 4, 7);
                AMX_DP(2, 5, 6);
                AMX_DP(3, 5, 7);
            }
        }
        float sink[16 * 16] __attribute__((aligned(64)));
        AMX_STORE(0, sink, 64);
        c->secs[t < 256 ? t : 255] = now() - t0;
        AMX_RELEASE();
        if (sink[0] == -1.0f) printf("."); /* keeps the loop */
    }
}

static void loops(int threads) {
    for (int with_loads = 0; with_loads < 2; with_loads++) {
        loop_ctx c = {.iters = PROBE_ITERS, .with_loads = with_loads};
        lc_parallel_for(threads, 1, tile_loop, &c);
        double worst = 0.0;
        for (int t = 0; t < threads && t < 256; t++) worst = c.secs[t] > worst ? c.secs[t] : worst;
        printf("  %-44s %8.1f GFLOP/s a core (slowest of %d threads)\n",
               with_loads ? "k step (2 A + 2 B loads, 4 TDPBF16PS), L1" : "TDPBF16PS, 4 accumulators, no loads",
               4.0 * FLOPS_PER_DP * (double)c.iters / worst / 1e9, threads);
    }
}

/* Variants of amx_compute, to find what its blocking costs: A's tiles read in place from the row-major a (row
 * stride k·2 bytes; m and k multiples of 32) or from the packed copy, micro blocks walked row-major (the driver's
 * mb outer) or column-major (nb outer: a B panel stays in L1 across the rows), tasks of tr x tc micro blocks
 * (tc <= AMX_TC / 32), k slices of kc tiles. Same k order, so every variant's c must equal the driver's bit for bit
 * (checked). */
typedef struct {
    const char *name;
    int a_direct, nb_outer, tr, tc, kc;
} variant;

typedef struct {
    const amx_ctx *x;
    const variant *v;
    int64_t ctasks;
} var_ctx;

AMX_FN static void compute_variant(void *vctx, int64_t begin, int64_t end) {
    const var_ctx *vc = vctx;
    const amx_ctx *x = vc->x;
    const variant *v = vc->v;
    static _Thread_local float acc[256 * AMX_TC] __attribute__((aligned(64))); /* tr <= 8 micro rows */
    amx_tilecfg cfg;
    amx_config(&cfg);
    AMX_LOADCONFIG(&cfg);
    const size_t cstride = AMX_TC * sizeof(float), astride = v->a_direct ? (size_t)x->k * 2 : AMX_TILE_STRIDE;
    for (int64_t t = begin; t < end; t++) {
        const int64_t mb0 = (t / vc->ctasks) * v->tr, nb0 = (t % vc->ctasks) * v->tc;
        const int64_t mb1 = mb0 + v->tr < x->mblocks ? mb0 + v->tr : x->mblocks;
        const int64_t nb1 = nb0 + v->tc < x->nblocks ? nb0 + v->tc : x->nblocks;
        const int64_t nmb = mb1 - mb0, nnb = nb1 - nb0;
        for (int64_t kt0 = 0; kt0 < x->ktiles; kt0 += v->kc) {
            const int64_t kt1 = kt0 + v->kc < x->ktiles ? kt0 + v->kc : x->ktiles;
            const int first = kt0 == 0, last = kt1 == x->ktiles;
            for (int64_t u = 0; u < nmb * nnb; u++) {
                const int64_t mb = mb0 + (v->nb_outer ? u % nmb : u / nnb), nb = nb0 + (v->nb_outer ? u / nmb : u % nnb);
                float *blk = acc + (mb - mb0) * AMX_BLK * AMX_TC + (nb - nb0) * AMX_BLK;
                if (first) {
                    AMX_ZERO(0);
                    AMX_ZERO(1);
                    AMX_ZERO(2);
                    AMX_ZERO(3);
                } else {
                    AMX_LOAD(0, blk, cstride);
                    AMX_LOAD(1, blk + 16, cstride);
                    AMX_LOAD(2, blk + 16 * AMX_TC, cstride);
                    AMX_LOAD(3, blk + 16 * AMX_TC + 16, cstride);
                }
                const uint16_t *ap = v->a_direct ? x->a + (size_t)(mb * AMX_BLK) * (size_t)x->k + (size_t)(kt0 * AMX_BLK)
                                                 : x->ap + (size_t)(mb * x->ktiles + kt0) * AMX_BLK_ELEMS;
                const size_t astep = v->a_direct ? AMX_BLK : AMX_BLK_ELEMS;
                const size_t ahalf = v->a_direct ? (size_t)16 * (size_t)x->k : AMX_BLK_ELEMS / 2;
                const uint16_t *bp = x->bp + (size_t)(nb * x->ktiles + kt0) * AMX_BLK_ELEMS;
                for (int64_t kt = kt0; kt < kt1; kt++, ap += astep, bp += AMX_BLK_ELEMS) {
                    AMX_LOAD(4, ap, astride);
                    AMX_LOAD(6, bp, AMX_TILE_STRIDE);
                    AMX_LOAD(7, bp + AMX_BLK_ELEMS / 2, AMX_TILE_STRIDE);
                    AMX_DP(0, 4, 6);
                    AMX_DP(1, 4, 7);
                    AMX_LOAD(5, ap + ahalf, astride);
                    AMX_DP(2, 5, 6);
                    AMX_DP(3, 5, 7);
                }
                AMX_STORE(0, blk, cstride);
                AMX_STORE(1, blk + 16, cstride);
                AMX_STORE(2, blk + 16 * AMX_TC, cstride);
                AMX_STORE(3, blk + 16 * AMX_TC + 16, cstride);
                if (last) amx_write_block(x, blk, mb, nb);
            }
        }
    }
    AMX_RELEASE();
}

/* Packs B only (the units of amx_pack past A's). */
static void pack_b_only(void *vctx, int64_t begin, int64_t end) {
    const amx_ctx *x = vctx;
    for (int64_t u = begin; u < end; u++) amx_pack_b(x, u / x->ktiles, u % x->ktiles);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static void shape(int threads, int64_t m, int64_t k, int64_t n) {
    enum { REPS = 7 };
    uint16_t *a = lc_aligned_alloc((size_t)(m * k) * 2), *b = lc_aligned_alloc((size_t)(k * n) * 2);
    uint16_t *c = lc_aligned_alloc((size_t)(m * n) * 2);
    if (!a || !b || !c) {
        printf("  out of memory\n");
        return;
    }
    for (int64_t i = 0; i < m * k; i++) a[i] = (uint16_t)(0x3f80 + (i % 61));
    for (int64_t i = 0; i < k * n; i++) b[i] = (uint16_t)(0x3f00 + (i % 59));
    const lc_matmul_args args = {.dtype = LC_DTYPE_BF16, .m = m, .k = k, .n = n, .a = a, .b = b, .c = c};
    const char *path = "?";
    double whole[REPS], pack[REPS], comp[REPS];
    for (int r = -2; r < REPS; r++) {
        const double t0 = now();
        lc_cpu_matmul_amx_bf16(&args, NULL, &path);
        if (r >= 0) whole[r] = now() - t0;
    }
    amx_ctx x = {.a = a, .b = b, .c = c, .m = m, .k = k, .n = n};
    int64_t na = 0, nb = 0;
    amx_plan(&x, threads, &na, &nb);
    x.ap = lc_aligned_alloc((size_t)(na + nb) * 2);
    x.bp = x.ap + na;
    const int64_t units = (x.mblocks + x.nblocks) * x.ktiles, tasks = ((x.mblocks + x.tr - 1) / x.tr) * x.ctasks;
    for (int r = -2; r < REPS; r++) {
        double t0 = now();
        lc_parallel_for(units, 8, amx_pack, &x);
        const double t1 = now();
        lc_parallel_for(tasks, 1, amx_compute, &x);
        if (r >= 0) pack[r] = t1 - t0, comp[r] = now() - t1;
    }
    const double flops = 2.0 * (double)m * (double)k * (double)n;
    const double w = median(whole, REPS), p = median(pack, REPS), q = median(comp, REPS);
    printf("  %5lldx%5lldx%5lld  whole %8.3f ms %6.2f TFLOP/s | pack %7.3f ms | compute %8.3f ms %6.2f TFLOP/s"
           " (%lld tasks of %lldx%lld blocks) [%s]\n",
           (long long)m, (long long)k, (long long)n, w * 1e3, flops / w / 1e12, p * 1e3, q * 1e3, flops / q / 1e12,
           (long long)tasks, (long long)x.tr, (long long)x.tc, path);
    /* the variants (A's packed copy stays from the runs above; B packed alone is timed too) */
    uint16_t *c2 = lc_aligned_alloc((size_t)(m * n) * 2);
    amx_ctx y = x;
    y.c = c2;
    const int direct_ok = m % AMX_BLK == 0 && k % AMX_BLK == 0;
    const int tr0 = (int)x.tr, tc0 = (int)x.tc;
    const variant vars[] = {
        {"driver's blocking (check)", 0, 0, tr0, tc0, AMX_KC_TILES},
        {"A in place", 1, 0, tr0, tc0, AMX_KC_TILES},
        {"A in place, nb outer", 1, 1, tr0, tc0, AMX_KC_TILES},
        {"A packed, nb outer", 0, 1, tr0, tc0, AMX_KC_TILES},
        {"A in place, nb outer, tasks 4 blocks tall", 1, 1, 4, tc0, AMX_KC_TILES},
        {"A in place, nb outer, tasks 8 tall x 1", 1, 1, 8, 1, AMX_KC_TILES},
        {"A in place, nb outer, k slice 8 tiles", 1, 1, tr0, tc0, 8},
        {"A in place, nb outer, k slice 32 tiles", 1, 1, tr0, tc0, 32},
    };
    double pb[REPS];
    for (int r = 0; r < REPS; r++) {
        const double t0 = now();
        lc_parallel_for(x.nblocks * x.ktiles, 8, pack_b_only, &y);
        pb[r] = now() - t0;
    }
    printf("  %17s  B packed alone %7.3f ms\n", "", median(pb, REPS) * 1e3);
    for (size_t i = 0; c2 && i < sizeof vars / sizeof vars[0]; i++) {
        const variant *v = &vars[i];
        if (v->a_direct && !direct_ok) continue;
        var_ctx vc = {&y, v, (x.nblocks + v->tc - 1) / v->tc};
        const int64_t vtasks = ((x.mblocks + v->tr - 1) / v->tr) * vc.ctasks;
        double cd[REPS];
        memset(c2, 0xff, (size_t)(m * n) * 2);
        for (int r = -2; r < REPS; r++) {
            const double t0 = now();
            lc_parallel_for(vtasks, 1, compute_variant, &vc);
            if (r >= 0) cd[r] = now() - t0;
        }
        const double cdm = median(cd, REPS);
        printf("  %17s  %-44s compute %8.3f ms %6.2f TFLOP/s (%lld tasks) | c %s\n", "", v->name, cdm * 1e3,
               flops / cdm / 1e12, (long long)vtasks, memcmp(c, c2, (size_t)(m * n) * 2) == 0 ? "equals the driver's" : "DIFFERS");
    }
    lc_aligned_free(c2);
    lc_aligned_free(x.ap);
    lc_aligned_free(a);
    lc_aligned_free(b);
    lc_aligned_free(c);
}

int main(int argc, char **argv) {
    (void)amx_run; /* the driver's own sequence: lc_cpu_matmul_amx_bf16 runs it ("whole") */
    if (!PROBE_READY()) {
        printf("amx_probe: AMX-BF16 is not usable here (CPU, OS permission or LC_CPU_DISABLE)\n");
        return 77;
    }
    int counts[16], nc = 0;
    for (int i = 1; i < argc && nc < 16; i++) counts[nc++] = atoi(argv[i]);
    if (nc == 0) counts[nc++] = 1, counts[nc++] = lc_num_threads();
    static const int64_t shapes[][3] = {PROBE_SHAPES};
    for (int i = 0; i < nc; i++) {
        if (lc_set_num_threads(counts[i]) != LC_OK) continue;
        printf("threads %d\n", counts[i]);
        loops(counts[i]);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) shape(counts[i], shapes[s][0], shapes[s][1], shapes[s][2]);
    }
    return 0;
}
#else
int main(void) {
    printf("amx_probe: x86-64 with GCC or Clang only\n");
    return 77;
}
#endif
