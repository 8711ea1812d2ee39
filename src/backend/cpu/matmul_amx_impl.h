/* matmul_amx_impl.h — the AMX-BF16 matmul driver: c[m,n] = a[m,k]·b[k,n] (bfloat16, row-major,
 * contiguous), float32 accumulation in the tiles, the sums rounded once to bfloat16 into c (nearest even,
 * NaN stays NaN) or left unrounded in a float32 [m,n] buffer (cf, for linear's epilogue).
 *
 * Included twice, so one text of the packing, blocking and edge logic is both shipped and tested:
 *  - src/backend/cpu/matmul_amx_cpu.c: with the real tile instructions (ldtilecfg, tileloadd, tdpbf16ps...);
 *  - tests/c/test_amx_emu.c: with the tile operations emulated in C (exact TDPBF16PS semantics), so the
 *    driver runs, and is judged against a float64 product, on CPUs without AMX.
 * The includer defines before including: AMX_FN (attributes of the function that issues tile ops),
 * AMX_LOADCONFIG(cfg), AMX_ZERO(t), AMX_LOAD(t, ptr, stride_bytes), AMX_DP(c, a, b), AMX_STORE(t, ptr,
 * stride_bytes), AMX_RELEASE(); the tile numbers are literal constants. Everything else here is AVX-512
 * (F, BW, VL): the caller checks the CPU has it.
 *
 * Design (m, n, k from 1 up; every edge by zero padding, so the tile loop has no special cases):
 *  - geometry: all eight tiles are 16 rows x 64 bytes (palette 1). tmm0-3 hold a 32x32 float32 block of
 *    c (2x2 tiles: [rows 0-15 | 16-31] x [cols 0-15 | 16-31]), tmm4-5 the two 16x32 bfloat16 tiles of a,
 *    tmm6-7 the two 16-pair x 16-column tiles of b; one k step is 32 (16 pairs), 4 TDPBF16PS.
 *  - packing (one parallel pass over both operands): a in 32x32 blocks, ap[mb][kt] = rows mb*32.. x
 *    k kt*32.. (1024 bfloat16, row stride 64 bytes; the two A tiles at +0 and +512 elements); b in the VNNI
 *    layout TDPBF16PS reads, bp[nb][kt][half][pair p][col][2] = b[kt*32 + 2p (+1)][nb*32 + half*16 + col]
 *    (again two 1 KiB tiles per block). Rows past m, columns past n and k past k are zeros (masked loads
 *    never touch memory past the operands), so a padded product is 0·0 and a NaN/Inf in a real element
 *    only reaches padded outputs, which are never written.
 *  - blocking: a task is up to AMX_TR rows x AMX_TC columns of c (in 32x32 micro blocks), fewer when that
 *    gives under two tasks per pool thread; k in slices of AMX_KC_TILES*32 (the slice of b a task uses
 *    stays in L2, one micro block's slice of a in L1); between slices the 32x32 sums wait in a float32
 *    scratch of the task (tileloadd'ed back), after the last slice they are written out with masks.
 *  - threads: the tasks go to lc_parallel_for; each chunk loads the tile configuration (ldtilecfg) before
 *    its first tile op and releases the tiles (tilerelease) after its last.
 * Tests: tests/c/test_amx_emu.c (this driver with emulated tiles: awkward shapes, NaN placement, both
 * outputs, tile protocol checks), tests/c/test_lowp.c and test_lowp_ops.c (the real path where AMX is). */
#ifndef LC_MATMUL_AMX_IMPL_H
#define LC_MATMUL_AMX_IMPL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype_avx512.h"
#include "core/threadpool.h"

#define AMX_AVX __attribute__((target("avx512f,avx512bw,avx512vl")))

enum {
    AMX_BLK = 32,                 /* micro block of c (2x2 tiles), k step of one tile pass */
    AMX_BLK_ELEMS = 1024,         /* bfloat16 elements of one packed 32x32 block of a or b (two 1 KiB tiles) */
    AMX_TR = 64,                  /* most rows of c per task */
    AMX_TC = 128,                 /* most columns of c per task (also the scratch row length) */
    AMX_KC_TILES = 16,            /* k steps per slice (512 k) */
    AMX_TILE_STRIDE = 64          /* bytes per row of an a or b tile */
};

/* The 64-byte tile configuration (palette 1): colsb and rows per tile. */
typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tilecfg;
_Static_assert(sizeof(amx_tilecfg) == 64, "the tile configuration is 64 bytes");

typedef struct {
    const uint16_t *a, *b;
    uint16_t *c; /* bfloat16 output, or */
    float *cf;   /* non-NULL: float32 output (unrounded sums), c not written */
    int64_t m, k, n;
    int64_t mblocks, nblocks, ktiles; /* ceil(m/32), ceil(n/32), ceil(k/32) */
    int64_t tr, tc, ctasks;           /* task size in micro blocks; tasks per row of tasks */
    uint16_t *ap, *bp;                /* packed a (mblocks x ktiles blocks), packed b (nblocks x ktiles) */
} amx_ctx;

static void amx_config(amx_tilecfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->palette = 1;
    for (int t = 0; t < 8; t++) cfg->colsb[t] = 64, cfg->rows[t] = 16;
}

static inline uint32_t amx_mask32(int64_t valid) { return valid >= 32 ? 0xffffffffu : (1u << valid) - 1u; }
static inline uint16_t amx_mask16(int64_t valid) {
    return (uint16_t)(valid >= 16 ? 0xffffu : valid <= 0 ? 0u : (1u << valid) - 1u);
}

/* Block (mb, kt) of a: 32 rows x 32 k, zeros past m and k. */
AMX_AVX static void amx_pack_a(const amx_ctx *x, int64_t mb, int64_t kt) {
    uint16_t *dst = x->ap + (size_t)(mb * x->ktiles + kt) * AMX_BLK_ELEMS;
    const int64_t k0 = kt * AMX_BLK;
    const __mmask32 km = amx_mask32(x->k - k0);
    for (int64_t r = 0; r < AMX_BLK; r++) {
        const int64_t i = mb * AMX_BLK + r;
        const __m512i v = i < x->m ? _mm512_maskz_loadu_epi16(km, x->a + (size_t)i * (size_t)x->k + (size_t)k0)
                                   : _mm512_setzero_si512();
        _mm512_store_si512((void *)(dst + r * AMX_BLK), v);
    }
}

/* Block (nb, kt) of b in the VNNI layout: for pair p, half h, column j: b[kt*32+2p][c], b[kt*32+2p+1][c]
 * with c = nb*32 + 16h + j; zeros past k and n. */
AMX_AVX static void amx_pack_b(const amx_ctx *x, int64_t nb, int64_t kt) {
    static const uint16_t lo_idx[32] = {0, 32, 1, 33, 2,  34, 3,  35, 4,  36, 5,  37, 6,  38, 7,  39,
                                        8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
    static const uint16_t hi_idx[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55,
                                        24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63};
    const __m512i lo = _mm512_loadu_si512((const void *)lo_idx), hi = _mm512_loadu_si512((const void *)hi_idx);
    uint16_t *dst = x->bp + (size_t)(nb * x->ktiles + kt) * AMX_BLK_ELEMS;
    const int64_t c0 = nb * AMX_BLK;
    const __mmask32 cm = amx_mask32(x->n - c0);
    for (int64_t p = 0; p < AMX_BLK / 2; p++) {
        const int64_t r = kt * AMX_BLK + 2 * p;
        const uint16_t *row = x->b + (size_t)r * (size_t)x->n + (size_t)c0;
        const __m512i r0 = r < x->k ? _mm512_maskz_loadu_epi16(cm, row) : _mm512_setzero_si512();
        const __m512i r1 = r + 1 < x->k ? _mm512_maskz_loadu_epi16(cm, row + x->n) : _mm512_setzero_si512();
        _mm512_store_si512((void *)(dst + p * AMX_BLK), _mm512_permutex2var_epi16(r0, lo, r1));
        _mm512_store_si512((void *)(dst + AMX_BLK_ELEMS / 2 + p * AMX_BLK), _mm512_permutex2var_epi16(r0, hi, r1));
    }
}

/* Units [0, mblocks*ktiles) pack a, the rest pack b. */
static void amx_pack(void *vctx, int64_t begin, int64_t end) {
    const amx_ctx *x = vctx;
    const int64_t na = x->mblocks * x->ktiles;
    for (int64_t u = begin; u < end; u++) {
        if (u < na) amx_pack_a(x, u / x->ktiles, u % x->ktiles);
        else amx_pack_b(x, (u - na) / x->ktiles, (u - na) % x->ktiles);
    }
}

/* The finished 32x32 sums of micro block (mb, nb), row stride AMX_TC floats, to c (rounded) or cf. */
AMX_AVX static void amx_write_block(const amx_ctx *x, const float *blk, int64_t mb, int64_t nb) {
    const int64_t i0 = mb * AMX_BLK, j0 = nb * AMX_BLK;
    const int64_t rows = x->m - i0 < AMX_BLK ? x->m - i0 : AMX_BLK, cols = x->n - j0;
    const __mmask16 m0 = amx_mask16(cols), m1 = amx_mask16(cols - 16);
    for (int64_t r = 0; r < rows; r++) {
        const __m512 lo = _mm512_load_ps(blk + r * AMX_TC), hi = _mm512_load_ps(blk + r * AMX_TC + 16);
        const size_t at = (size_t)(i0 + r) * (size_t)x->n + (size_t)j0;
        if (x->cf) {
            _mm512_mask_storeu_ps(x->cf + at, m0, lo);
            _mm512_mask_storeu_ps(x->cf + at + 16, m1, hi);
        } else {
            _mm256_mask_storeu_epi16(x->c + at, m0, lc_f32x16_to_bf16(_mm512_castps_si512(lo)));
            _mm256_mask_storeu_epi16(x->c + at + 16, m1, lc_f32x16_to_bf16(_mm512_castps_si512(hi)));
        }
    }
}

/* Task t: micro rows [tr*(t / ctasks), +tr) x micro columns [tc*(t % ctasks), +tc), k in slices. */
AMX_FN static void amx_compute(void *vctx, int64_t begin, int64_t end) {
    const amx_ctx *x = vctx;
    float acc[AMX_TR * AMX_TC] __attribute__((aligned(64)));
    amx_tilecfg cfg;
    amx_config(&cfg);
    AMX_LOADCONFIG(&cfg);
    const size_t cstride = AMX_TC * sizeof(float);
    for (int64_t t = begin; t < end; t++) {
        const int64_t mb0 = (t / x->ctasks) * x->tr, nb0 = (t % x->ctasks) * x->tc;
        const int64_t mb1 = mb0 + x->tr < x->mblocks ? mb0 + x->tr : x->mblocks;
        const int64_t nb1 = nb0 + x->tc < x->nblocks ? nb0 + x->tc : x->nblocks;
        for (int64_t kt0 = 0; kt0 < x->ktiles; kt0 += AMX_KC_TILES) {
            const int64_t kt1 = kt0 + AMX_KC_TILES < x->ktiles ? kt0 + AMX_KC_TILES : x->ktiles;
            const int first = kt0 == 0, last = kt1 == x->ktiles;
            for (int64_t mb = mb0; mb < mb1; mb++) {
                for (int64_t nb = nb0; nb < nb1; nb++) {
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
                    const uint16_t *ap = x->ap + (size_t)(mb * x->ktiles + kt0) * AMX_BLK_ELEMS;
                    const uint16_t *bp = x->bp + (size_t)(nb * x->ktiles + kt0) * AMX_BLK_ELEMS;
                    for (int64_t kt = kt0; kt < kt1; kt++, ap += AMX_BLK_ELEMS, bp += AMX_BLK_ELEMS) {
                        AMX_LOAD(4, ap, AMX_TILE_STRIDE);
                        AMX_LOAD(6, bp, AMX_TILE_STRIDE);
                        AMX_LOAD(7, bp + AMX_BLK_ELEMS / 2, AMX_TILE_STRIDE);
                        AMX_DP(0, 4, 6);
                        AMX_DP(1, 4, 7);
                        AMX_LOAD(5, ap + AMX_BLK_ELEMS / 2, AMX_TILE_STRIDE);
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
    }
    AMX_RELEASE();
}

/* Sizes the blocking into x (from m, k, n), for `threads` pool threads; 0 when a size overflows. */
static int amx_plan(amx_ctx *x, int threads, int64_t *ap_elems, int64_t *bp_elems) {
    x->mblocks = (x->m + AMX_BLK - 1) / AMX_BLK;
    x->nblocks = (x->n + AMX_BLK - 1) / AMX_BLK;
    x->ktiles = (x->k + AMX_BLK - 1) / AMX_BLK;
    if (x->ktiles > INT64_MAX / AMX_BLK_ELEMS / (x->mblocks > x->nblocks ? x->mblocks : x->nblocks)) return 0;
    *ap_elems = x->mblocks * x->ktiles * AMX_BLK_ELEMS;
    *bp_elems = x->nblocks * x->ktiles * AMX_BLK_ELEMS;
    if ((uint64_t)*ap_elems > SIZE_MAX / 4 || (uint64_t)*bp_elems > SIZE_MAX / 4) return 0;
    x->tr = x->mblocks < AMX_TR / AMX_BLK ? x->mblocks : AMX_TR / AMX_BLK;
    x->tc = x->nblocks < AMX_TC / AMX_BLK ? x->nblocks : AMX_TC / AMX_BLK;
    for (;;) { /* at least two tasks per thread where the sizes allow */
        const int64_t tasks = ((x->mblocks + x->tr - 1) / x->tr) * ((x->nblocks + x->tc - 1) / x->tc);
        if (tasks >= 2 * (int64_t)threads) break;
        if (x->tc > 1) x->tc /= 2;
        else if (x->tr > 1) x->tr /= 2;
        else break;
    }
    x->ctasks = (x->nblocks + x->tc - 1) / x->tc;
    return 1;
}

/* Packs (x->ap, x->bp allocated by the caller, 64-byte aligned) and computes. */
static void amx_run(amx_ctx *x) {
    const int64_t units = (x->mblocks + x->nblocks) * x->ktiles;
    lc_parallel_for(units, 8, amx_pack, x);
    const int64_t tasks = ((x->mblocks + x->tr - 1) / x->tr) * x->ctasks;
    lc_parallel_for(tasks, 1, amx_compute, x);
}

#endif
