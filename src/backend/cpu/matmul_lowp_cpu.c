/* matmul_lowp_cpu.c — CPU matmul for float16 and bfloat16 storage: c[m,n] = a[m,k]·b[k,n], row-major,
 * contiguous, all three in the one dtype, products accumulated in float32, c rounded once (nearest even).
 *
 *  - bfloat16 on a CPU with AMX-BF16 that the OS lets us use ("amx_bf16"): matmul_amx_cpu.c (2x2 tiles of
 *    16x16 float32, a and b packed once into tile blocks; LC_CPU_DISABLE=amx skips it), except at m <= 16, or
 *    m <= 64 with k·n >= 2^24, which take the medium-m AVX-512 BF16 kernel below (b read once, not packed whole).
 *  - bfloat16 on a CPU with AVX-512 BF16 ("avx512bf16"): B is packed into 32-column panels of k pairs, the
 *    VDPBF16PS layout (b[2p][j], b[2p+1][j] side by side): once, whole and in parallel, when m > 64 (the
 *    row blocks share it), else slice by slice by the task that uses it (m <= 64: batched decode, where
 *    packing B whole cost more than the product); A is read in place (the
 *    pair a[i][2p], a[i][2p+1] is one 32-bit word of its row; B's rows are interleaved by word permutes). An
 *    8x32 micro-kernel keeps 16 float32 accumulators over a slice of k (an odd k's last pair gets a zero
 *    partner, so a NaN/Inf beside it can't leak in); a task (64 rows x 8 panels over slices of 1024 k when B
 *    is packed whole; its B slice stays in L2; 2 Zen 5 cores: 1024^3 at 0.99-1.03x torch's oneDNN, 2048^3
 *    at 1.03x) keeps its partial sums in a float32 tile between slices and rounds them to bfloat16 once,
 *    after the last. 4 < m <= 64 (batched decode, short prefills): a task owns a column chunk of B (up to
 *    512 columns) and packs it slice by slice (128 pairs) into L2 from two contiguous runs a pair, all m rows
 *    against each slice (bf16_mid_task). Tasks go to the pool. VDPBF16PS treats bfloat16 denormal inputs
 *    as zero (their products are below 2^-126 anyway).
 *  - 4 < m <= 64 on a CPU with AVX-512 (float16; bfloat16 without AVX-512 BF16): "<dtype>_mid_avx512", the
 *    plan above with B widened to float32 panels and FMA micro-kernels (lowp_mid_f32). float32 takes the same
 *    kernel with B copied ("f32_mid_avx512", lc_cpu_matmul_mid_f32: matmul_cpu.c's mode "mid").
 *  - otherwise (float16; bfloat16 without AVX-512 BF16): "<dtype>_via_f32" — a and b are
 *    converted to float32 in a workspace (SIMD converters), the float32 matmul runs (BLAS / own kernels,
 *    whose path is appended: "bf16_via_f32+blas"), and c is converted back.
 *  - m <= 4 (decode) on a CPU with AVX-512: "<dtype>_gemv_avx512", b read once in place (no packing),
 *    widened to float32 in registers, FMAs in k order over 2048-column chunks (long contiguous runs of b),
 *    k split into parts summed in order when the chunks alone would leave threads idle.
 * lc_cpu_matmul_lowp_f32out leaves the float32 sums unrounded in a float32 [m,n] buffer instead (all
 * paths, AMX included), for linear's bias/activation epilogue (lowp_cpu.c), so its output is rounded once.
 * Tests: tests/c/test_lowp.c, tests/c/test_lowp_ops.c (under the CPU masks; they check the path picked),
 * tests/c/test_amx_emu.c (the AMX driver, emulated tiles), tests/python/test_dtype_ops.py. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/matmul_amx.h"
#include "core/cpu_features.h"
#include "core/dtype_internal.h"
#include "core/internal.h"
#include "core/threadpool.h"
#include "lightning_core/dtype.h"

/* ---- conversion path ------------------------------------------------------------------------------ */
/* c_f32 non-NULL: the float32 product is written there (unrounded) and args->c is not touched. */
static lc_status lowp_via_f32(const lc_matmul_args *args, float *c_f32, const char **path) {
    const int64_t m = args->m, k = args->k, n = args->n;
    int64_t na = 0, nb = 0, nc = 0;
    if (!lc_mul_ok(m, k, &na) || !lc_mul_ok(k, n, &nb) || !lc_mul_ok(m, n, &nc))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "matmul: %s workspace size overflows", lc_dtype_name(args->dtype));
    const int64_t parts[3] = {na, nb, c_f32 ? 0 : nc}; /* a, b, and c unless the caller takes the float32 sums */
    lc_status st = LC_OK;
    float *ws = lc_cpu_f32_workspace("matmul", args->dtype, parts, 3, &st);
    if (!ws) return st;
    float *a = ws, *b = ws + na, *c = c_f32 ? c_f32 : ws + na + nb;
    st = lc_convert(LC_DTYPE_F32, a, args->dtype, args->a, (size_t)na);
    if (st == LC_OK) st = lc_convert(LC_DTYPE_F32, b, args->dtype, args->b, (size_t)nb);
    const char *inner = "?";
    if (st == LC_OK) {
        const lc_matmul_args f = {.dtype = LC_DTYPE_F32, .m = m, .k = k, .n = n, .a = a, .b = b, .c = c};
        st = lc_cpu_matmul(&f, &inner);
    }
    if (st == LC_OK && !c_f32) st = lc_convert(args->dtype, args->c, LC_DTYPE_F32, c, (size_t)nc);
    lc_aligned_free(ws);
    if (st == LC_OK) {
        static _Thread_local char name[64];
        snprintf(name, sizeof name, "%s_via_f32+%s", args->dtype == LC_DTYPE_BF16 ? "bf16" : "f16", inner);
        *path = name;
    }
    return st;
}

/* ---- AVX-512 BF16 path ------------------------------------------------------------------------------ */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "core/dtype_avx512.h"
#define LOWP_X86 1
#define TBF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define TAVX512 __attribute__((target("avx512f,avx512bw,avx512vl"))) /* the stores: every kernel calls them */

enum { NR = 32, MR = 8, PANELS_PER_TASK = 8 };

typedef struct {
    const uint16_t *a, *b;
    uint16_t *c;
    float *cf; /* non-NULL: the float32 sums go here (unrounded), c is not written */
    int64_t m, k, n, kp, npanels;
    int64_t mc, kcp; /* rows of a task, pairs of a k slice (bf16_compute) */
    int64_t nc;      /* bf16_mid_task: columns of a task's chunk (a multiple of NR, <= MID_NC) */
    uint16_t *bp; /* npanels x kp x (NR pairs) */
} bf16_ctx;

/* 32 columns of a pair of B's rows (v0: row 2p, v1: row 2p + 1) into dst as (v0[c], v1[c]) pairs: two word
 * permutes (lo, hi: bf16_perm_idx). */
TBF16 static inline void bf16_perm_idx(__m512i *lo, __m512i *hi) {
    static const uint16_t idx[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                     8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
    *lo = _mm512_loadu_si512((const void *)idx);
    *hi = _mm512_add_epi16(*lo, _mm512_set1_epi16(16));
}
TBF16 static inline void bf16_interleave(uint16_t *dst, __m512i v0, __m512i v1, __m512i lo, __m512i hi) {
    _mm512_storeu_si512((void *)dst, _mm512_permutex2var_epi16(v0, lo, v1));
    _mm512_storeu_si512((void *)(dst + NR), _mm512_permutex2var_epi16(v0, hi, v1));
}

/* Panel j, pairs [p0, p1) into dst: for each pair p, 32 columns x (b[2p][col], b[2p+1][col]); zeros past k and
 * past n. Whole pairs of full panels interleave two 64-byte rows with two word permutes; the rest goes element
 * by element. */
TBF16 static void bf16_pack_panel(const bf16_ctx *x, int64_t j, int64_t p0, int64_t p1, uint16_t *dst) {
    __m512i lo, hi;
    bf16_perm_idx(&lo, &hi);
    const int64_t c0 = j * NR, cols = x->n - c0 < NR ? x->n - c0 : NR;
    for (int64_t p = p0; p < p1; p++, dst += NR * 2) {
        const uint16_t *r0 = x->b + (size_t)(2 * p) * (size_t)x->n + (size_t)c0;
        const uint16_t *r1 = 2 * p + 1 < x->k ? r0 + x->n : NULL;
        if (cols == NR && r1) {
            bf16_interleave(dst, _mm512_loadu_si512((const void *)r0), _mm512_loadu_si512((const void *)r1), lo, hi);
            continue;
        }
        int64_t c = 0;
        for (; c < cols; c++) dst[2 * c] = r0[c], dst[2 * c + 1] = r1 ? r1[c] : 0;
        for (; c < NR; c++) dst[2 * c] = dst[2 * c + 1] = 0;
    }
}

/* The whole of B, panels [begin, end) (the pool's ranges). */
static void bf16_pack_b(void *vctx, int64_t begin, int64_t end) {
    const bf16_ctx *x = vctx;
    for (int64_t j = begin; j < end; j++) bf16_pack_panel(x, j, 0, x->kp, x->bp + (size_t)j * (size_t)x->kp * NR * 2);
}

/* The pair (a[i][2p], a[i][2p+1]) as one broadcastable word; the last pair of an odd k gets a zero. */
static inline uint32_t bf16_pair(const uint16_t *row, int64_t p, int64_t k) {
    if (2 * p + 1 < k) {
        uint32_t w;
        memcpy(&w, row + 2 * p, 4);
        return w;
    }
    return row[2 * p];
}

/* The first `left` of 16 lanes (none at left <= 0, all from 16): the tail masks of the stores and loads here. */
static inline __mmask16 mask16(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1u);
}

/* 32 16-bit results of a panel (l: columns 0-15, h: 16-31) into c, the first cols of them. */
TAVX512 static void store16x32(uint16_t *c, __m256i l, __m256i h, int cols) {
    if (cols == NR) {
        _mm256_storeu_si256((__m256i *)c, l);
        _mm256_storeu_si256((__m256i *)(c + 16), h);
    } else {
        _mm256_mask_storeu_epi16(c, mask16(cols), l);
        _mm256_mask_storeu_epi16(c + 16, mask16(cols - 16), h);
    }
}

TAVX512 static void bf16_store(uint16_t *c, __m512 lo, __m512 hi, int cols) {
    store16x32(c, lc_f32x16_to_bf16(_mm512_castps_si512(lo)), lc_f32x16_to_bf16(_mm512_castps_si512(hi)), cols);
}

TAVX512 static void f32_store(float *c, __m512 lo, __m512 hi, int cols) {
    if (cols == NR) {
        _mm512_storeu_ps(c, lo);
        _mm512_storeu_ps(c + 16, hi);
    } else {
        _mm512_mask_storeu_ps(c, mask16(cols), lo);
        _mm512_mask_storeu_ps(c + 16, mask16(cols - 16), hi);
    }
}

/* The 8x32 (or 7x32 .. 1x32) micro-kernel over the pairs [p0, p1) of panel j: acc (float32, row stride ald)
 * starts from zero on the first slice, else from the stored partial sums; on the last slice the sums
 * are rounded to bfloat16 into c, else stored back. MR is a compile-time row count (1 to 8). */
enum { ACC_LD = PANELS_PER_TASK * NR };

#define BF16_UKR(NAME, ROWS)                                                                                   \
    TBF16 static void NAME(const bf16_ctx *x, int64_t i0, int64_t j, const uint16_t *pp, int64_t p0, int64_t p1, \
                           float *acc_buf, int64_t ald, int first, int last) {                                 \
        const int cols = (int)(x->n - j * NR < NR ? x->n - j * NR : NR);                                       \
        __m512 acc[ROWS][2];                                                                                   \
        const uint16_t *row[ROWS];                                                                             \
        for (int r = 0; r < ROWS; r++) {                                                                       \
            row[r] = x->a + (size_t)(i0 + r) * (size_t)x->k;                                                   \
            acc[r][0] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc_buf + r * ald);                      \
            acc[r][1] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc_buf + r * ald + 16);                 \
        }                                                                                                      \
        const int64_t full = x->k / 2 < p1 ? x->k / 2 : p1;                                                    \
        int64_t p = p0;                                                                                        \
        for (; p < full; p++) {                                                                                \
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(pp + (p - p0) * NR * 2));         \
            const __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(pp + (p - p0) * NR * 2 + 32));    \
            for (int r = 0; r < ROWS; r++) {                                                                   \
                uint32_t w;                                                                                    \
                memcpy(&w, row[r] + 2 * p, 4);                                                                 \
                const __m512bh av = (__m512bh)_mm512_set1_epi32((int)w);                                       \
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);                                               \
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);                                               \
            }                                                                                                  \
        }                                                                                                      \
        for (; p < p1; p++) { /* the last pair of an odd k */                                                  \
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(pp + (p - p0) * NR * 2));         \
            const __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(pp + (p - p0) * NR * 2 + 32));    \
            for (int r = 0; r < ROWS; r++) {                                                                   \
                const __m512bh av = (__m512bh)_mm512_set1_epi32((int)bf16_pair(row[r], p, x->k));              \
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);                                               \
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);                                               \
            }                                                                                                  \
        }                                                                                                      \
        for (int r = 0; r < ROWS; r++) {                                                                       \
            if (last && x->cf) {                                                                               \
                f32_store(x->cf + (size_t)(i0 + r) * (size_t)x->n + (size_t)(j * NR), acc[r][0], acc[r][1], cols); \
            } else if (last) {                                                                                 \
                bf16_store(x->c + (size_t)(i0 + r) * (size_t)x->n + (size_t)(j * NR), acc[r][0], acc[r][1], cols); \
            } else {                                                                                           \
                _mm512_storeu_ps(acc_buf + r * ald, acc[r][0]);                                                \
                _mm512_storeu_ps(acc_buf + r * ald + 16, acc[r][1]);                                           \
            }                                                                                                  \
        }                                                                                                      \
    }
/* DEF(P1, 1) .. DEF(P8, 8): a micro-kernel for each row count (both kernel families), and their table. */
#define UKR_ROWS_1_TO_8(DEF, P) \
    DEF(P##1, 1) DEF(P##2, 2) DEF(P##3, 3) DEF(P##4, 4) DEF(P##5, 5) DEF(P##6, 6) DEF(P##7, 7) DEF(P##8, 8)
#define UKR_TABLE(P) {NULL, P##1, P##2, P##3, P##4, P##5, P##6, P##7, P##8}
UKR_ROWS_1_TO_8(BF16_UKR, bf16_ukr)
/* By row count: blocks of MR rows, then one block of the rest (m = 7 was 1.5x slower than m = 8 as 4 + 1 + 1 + 1). */
typedef void (*bf16_ukr_fn)(const bf16_ctx *, int64_t, int64_t, const uint16_t *, int64_t, int64_t, float *, int64_t, int, int);
static const bf16_ukr_fn bf16_ukrs[MR + 1] = UKR_TABLE(bf16_ukr);
#undef BF16_UKR

/* Task t: rows [mc*(t / groups), +mc) x panels [PANELS_PER_TASK*(t % groups), +PANELS_PER_TASK), k in
 * slices of kcp pairs (the slice of B the task's panels use stays in L2), B packed once, whole, up front (m >
 * MID_MAX_M: the row blocks share it); tasks of MC_WHOLE rows over slices of KCP_WHOLE pairs (k <= 1024 in one
 * slice: the partial sums never leave registers for the float32 tile). Tuned on 2 Zen 5 cores against MC 32 /
 * KCP 256 (the same process, alternating): 1024^3 2.205 -> 2.130 ms (torch's oneDNN 2.150), 2048^3 18.25 ->
 * 17.75 ms (18.36), 1024x768x3072 5.25 -> 5.02 ms (4.96). */
enum { MC_WHOLE = 64, KCP_WHOLE = 512 };

static void bf16_compute(void *vctx, int64_t begin, int64_t end) {
    const bf16_ctx *x = vctx;
    const int64_t groups = (x->npanels + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
    float acc[MC_WHOLE * ACC_LD] __attribute__((aligned(64)));
    const int64_t mc = x->mc, kcp = x->kcp;
    for (int64_t t = begin; t < end; t++) {
        const int64_t r0 = (t / groups) * mc, r1 = r0 + mc < x->m ? r0 + mc : x->m;
        const int64_t j0 = (t % groups) * PANELS_PER_TASK;
        const int64_t j1 = j0 + PANELS_PER_TASK < x->npanels ? j0 + PANELS_PER_TASK : x->npanels;
        for (int64_t p0 = 0; p0 < x->kp; p0 += kcp) {
            const int64_t p1 = p0 + kcp < x->kp ? p0 + kcp : x->kp;
            const int first = p0 == 0, last = p1 == x->kp;
            for (int64_t j = j0; j < j1; j++) {
                const uint16_t *pp = x->bp + ((size_t)j * (size_t)x->kp + (size_t)p0) * NR * 2;
                float *col = acc + (j - j0) * NR;
                for (int64_t i = r0; i < r1; i += MR)
                    bf16_ukrs[r1 - i < MR ? r1 - i : MR](x, i, j, pp, p0, p1, col + (i - r0) * ACC_LD, ACC_LD, first, last);
            }
        }
    }
}

/* Medium m (4 < m <= MID_MAX_M: batched decode, prompts of a few dozen tokens). Task t owns the columns [t·nc,
 * +nc) of B; it walks k in slices of MID_KS pairs, packs the slice of its chunk into mid_pack ([panel][MID_KS]
 * [NR pairs]: a pair's two rows read as contiguous runs of nc elements, which the prefetchers follow, where a
 * 32-column panel at a time read 64-byte pieces at a stride of a row), then runs the micro-kernels over it
 * panel by panel for all m rows (the panel's 16 KiB stay in L1 across the row blocks), the float32 sums in
 * mid_acc ([m][nc], L2) between slices, rounded once after the last; the next slice's rows are prefetched into
 * L2 as this one is packed. No B-sized buffer, B read once. Chunk and slice sizes from a scan on 2 Zen 5 cores
 * (nc 256-2048 x 32-256 pairs; GPT-2 / LLaMA-1B shapes, m = 8, 32, 64): 512 x 128 was best or within noise of
 * it at every shape. */
enum { MID_MAX_M = 64, MID_NC = 512, MID_KS = 128 };
/* On an AMX machine: rows up to which, and b sizes (k·n elements) from which, bfloat16 takes this kernel. */
enum { AMX_MID_MAX_M = 16 };
#define AMX_MID_MIN_KN 16777216.0
static _Thread_local uint16_t mid_pack[(size_t)MID_NC * MID_KS * 2] __attribute__((aligned(64)));
static _Thread_local float mid_acc[(size_t)MID_MAX_M * MID_NC] __attribute__((aligned(64)));

/* Pairs [p0, p1) of columns [c0, c0 + nc) into dst as [panel][MID_KS][NR pairs] (zeros past n and past k). */
TBF16 static void bf16_pack_chunk(const bf16_ctx *x, int64_t c0, int64_t nc, int64_t p0, int64_t p1, uint16_t *dst) {
    __m512i lo, hi;
    bf16_perm_idx(&lo, &hi);
    const int64_t npan = (nc + NR - 1) / NR, tail = nc - (npan - 1) * NR;
    const __mmask32 tm = tail == NR ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << tail) - 1u);
    for (int64_t p = p0; p < p1; p++) {
        const uint16_t *r0 = x->b + (size_t)(2 * p) * (size_t)x->n + (size_t)c0, *r1 = r0 + x->n;
        const int two = 2 * p + 1 < x->k; /* else the zero partner of an odd k */
        if (p + MID_KS < x->kp) { /* the same pair of the next slice into L2 while this slice is used */
            const char *f0 = (const char *)(r0 + (size_t)MID_KS * 2 * (size_t)x->n), *f1 = f0 + 2 * x->n;
            for (int64_t o = 0; o < nc * 2; o += 64) {
                _mm_prefetch(f0 + o, _MM_HINT_T1);
                if (2 * (p + MID_KS) + 1 < x->k) _mm_prefetch(f1 + o, _MM_HINT_T1);
            }
        }
        uint16_t *d = dst + (size_t)(p - p0) * NR * 2;
        for (int64_t q = 0; q < npan; q++, d += (size_t)MID_KS * NR * 2) {
            const __mmask32 mk = q == npan - 1 ? tm : (__mmask32)0xFFFFFFFFu;
            const __m512i v0 = _mm512_maskz_loadu_epi16(mk, r0 + q * NR);
            const __m512i v1 = two ? _mm512_maskz_loadu_epi16(mk, r1 + q * NR) : _mm512_setzero_si512();
            bf16_interleave(d, v0, v1, lo, hi);
        }
    }
}

/* The medium-m tasks' loop (both kernels): chunk t = columns [t·nc, +nc) of B, its k in slices of step units
 * (pairs or rows) out of total; slice(ctx, c0, nc, s0, s1, first, last) packs one and runs the micro-kernels. */
typedef void (*mid_slice_fn)(const void *ctx, int64_t c0, int64_t nc, int64_t s0, int64_t s1, int first, int last);
static void mid_chunks(int64_t begin, int64_t end, int64_t n, int64_t chunk, int64_t total, int64_t step,
                       mid_slice_fn slice, const void *ctx) {
    for (int64_t t = begin; t < end; t++) {
        const int64_t c0 = t * chunk, nc = n - c0 < chunk ? n - c0 : chunk;
        for (int64_t s0 = 0; s0 < total; s0 += step) {
            const int64_t s1 = s0 + step < total ? s0 + step : total;
            slice(ctx, c0, nc, s0, s1, s0 == 0, s1 == total);
        }
    }
}

static void bf16_mid_slice(const void *vctx, int64_t c0, int64_t nc, int64_t p0, int64_t p1, int first, int last) {
    const bf16_ctx *x = vctx;
    const int64_t m = x->m, ald = x->nc, npan = (nc + NR - 1) / NR;
    bf16_pack_chunk(x, c0, nc, p0, p1, mid_pack);
    for (int64_t q = 0; q < npan; q++) {
        const uint16_t *pp = mid_pack + (size_t)q * MID_KS * NR * 2;
        const int64_t j = c0 / NR + q;
        float *col = mid_acc + q * NR;
        for (int64_t i = 0; i < m; i += MR) bf16_ukrs[m - i < MR ? m - i : MR](x, i, j, pp, p0, p1, col + i * ald, ald, first, last);
    }
}

static void bf16_mid_task(void *vctx, int64_t begin, int64_t end) {
    const bf16_ctx *x = vctx;
    mid_chunks(begin, end, x->n, x->nc, x->kp, MID_KS, bf16_mid_slice, x);
}

/* Column chunks of at most MID_NC, at least 2 a thread, a multiple of the threads (both medium-m paths). */
static int64_t mid_chunk(int64_t n) {
    const int64_t th = lc_num_threads() > 0 ? lc_num_threads() : 1;
    int64_t tasks = (n + MID_NC - 1) / MID_NC;
    if (tasks < 2 * th) tasks = 2 * th;
    tasks = (tasks + th - 1) / th * th;
    return ((n + tasks - 1) / tasks + NR - 1) / NR * NR;
}

static lc_status lowp_bf16_avx512(const lc_matmul_args *args, float *c_f32, const char **path) {
    bf16_ctx x = {.a = args->a, .b = args->b, .c = args->c, .cf = c_f32, .m = args->m, .k = args->k, .n = args->n};
    x.kp = (x.k + 1) / 2;
    x.npanels = (x.n + NR - 1) / NR;
    *path = "avx512bf16";
    if (x.m <= MID_MAX_M) {
        x.nc = mid_chunk(x.n);
        lc_parallel_for((x.n + x.nc - 1) / x.nc, 1, bf16_mid_task, &x);
        return LC_OK;
    }
    x.mc = MC_WHOLE;
    x.kcp = KCP_WHOLE;
    const int64_t groups = (x.npanels + PANELS_PER_TASK - 1) / PANELS_PER_TASK, rblocks = (x.m + x.mc - 1) / x.mc;
    int64_t elems; /* B packed once, whole, and shared by the row blocks */
    if (!lc_mul_ok(x.npanels * NR * 2, x.kp, &elems) || (uint64_t)elems > SIZE_MAX / 2)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "matmul: bfloat16 packed-b size overflows");
    x.bp = lc_aligned_alloc((size_t)elems * 2);
    if (!x.bp) return lc_error(LC_ERR_OUT_OF_MEMORY, "matmul: cannot allocate %lld bytes for packed b", (long long)elems * 2);
    lc_parallel_for(x.npanels, 1, bf16_pack_b, &x);
    lc_parallel_for(groups * rblocks, 1, bf16_compute, &x);
    lc_aligned_free(x.bp);
    return LC_OK;
}
#endif

/* ---- small m (decode: one or a few rows) --------------------------------------------------------------
 * c[i, :] = a[i, :]·b for m <= GEMV_MAX_M: b read once, in place (no packing: at m = 1 the packing pass would
 * read and write b once more than the product itself), each 16-bit element widened to float32 in registers
 * (bfloat16: a shift; float16: VCVTPH2PS; float32 as is) and accumulated with FMAs. b is streamed in long
 * contiguous runs (was 256 columns = 512-byte runs at a stride of n·2 bytes, which the prefetchers followed
 * poorly: the GPT-2 lm_head read at 16 GB/s on 2 Zen 5 cores). A task owns a column chunk and a part of k:
 * while m·n <= GEMV_WHOLE_ROWS the chunk is the whole row (b read fully contiguously, k split into parts),
 * else GEMV_NC columns (its sums stay in L1), k split only while the chunks leave threads idle. With several
 * parts each part's sums go to a float32 workspace and a second pass adds the parts in order (deterministic)
 * and stores c. c rounded once (or the float32 sums left in c_f32). */
/* GEMV_WHOLE_ROWS: m·n up to which a task takes whole rows (its float32 sums, <= 256 KiB, stay in L2);
 * GEMV_MIN_KPART: fewest rows of a k part. */
enum { GEMV_MAX_M = 4, GEMV_NC = 2048, GEMV_WHOLE_ROWS = 65536, GEMV_MIN_KPART = 64, GEMV_UNROLL_MIN_N = 8192 };
/* float32: from this many elements of b (BLAS below: cache-resident small products) */
#define GEMV_F32_MIN_KN 65536.0

typedef struct {
    const lc_matmul_args *args;
    float *cf;      /* float32 sums out (lc_cpu_matmul_lowp_f32out) or NULL: c rounded */
    float *part;    /* [parts][m][ldp] partial sums when parts > 1 (rows 64-byte aligned) */
    int64_t ldp;    /* n rounded up to 16 */
    int64_t nc;     /* columns of a chunk (GEMV_NC, or n: whole rows) */
    int64_t nchunk; /* column chunks */
    int64_t parts, kpart;
    int64_t nred;   /* column ranges of the reduction */
} gemv_ctx;

#ifdef LOWP_X86
/* Stores the float32 sums of row i, columns [j0, j0 + nj): into cf or rounded into c. */
static void gemv_store(const gemv_ctx *g, int64_t i, int64_t j0, int64_t nj, const float *sums) {
    const lc_matmul_args *a = g->args;
    if (g->cf) {
        memcpy(g->cf + i * a->n + j0, sums, (size_t)nj * sizeof(float));
        return;
    }
    uint16_t *c = (uint16_t *)a->c + i * a->n + j0;
    const int bf16 = a->dtype == LC_DTYPE_BF16;
    for (int64_t j = 0; j < nj; j++) c[j] = bf16 ? lc_f32_to_bf16(sums[j]) : lc_f32_to_f16(sums[j]);
}

#define TGEMV __attribute__((target("avx512f,avx512bw,avx512vl,f16c")))
/* 16 elements of b at element offset i as float32: kind 0 float32, 1 bfloat16 (a shift), 2 float16 */
TGEMV static inline __m512 gemv_loadw(const void *b, int64_t i, int kind, __mmask16 mask) {
    if (kind == 0) return _mm512_maskz_loadu_ps(mask, (const float *)b + i);
    const __m256i h = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)b + i);
    return kind == 1 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}
static inline float gemv_a(const void *a, int64_t i, int kind) {
    return kind == 0 ? ((const float *)a)[i] : kind == 1 ? lc_bf16_to_f32(((const uint16_t *)a)[i])
                                                         : lc_f16_to_f32(((const uint16_t *)a)[i]);
}

/* One 16-wide vector of columns: U rows of b from element i (row pitch n) times a's broadcasts av, added into
 * the M sums at acc (row pitch ld). The full vectors pass the constant all-ones mask, which the compiler folds
 * into plain loads and stores (the prefetchers do not follow masked loads of b). */
TGEMV static inline __attribute__((always_inline)) void gemv_vec(const void *b, int64_t i, int64_t n, const int KIND,
                                                                  const int M, const int U,
                                                                  __m512 (*av)[4], float *acc, int64_t ld,
                                                                  __mmask16 mk) {
    __m512 w[4];
    for (int u = 0; u < U; u++) w[u] = gemv_loadw(b, i + u * n, KIND, mk);
    for (int r = 0; r < M; r++) {
        float *p = acc + r * ld;
        __m512 s = _mm512_maskz_loadu_ps(mk, p);
        for (int u = 0; u < U; u++) s = _mm512_fmadd_ps(av[r][u], w[u], s);
        _mm512_mask_storeu_ps(p, mk, s);
    }
}

/* Rows kk..kk+U-1 of b (columns j0 + [0, 16 nv), the last vector masked by tail) added into the sums acc
 * (row i at acc + i·ld): each sum loaded and stored once per U FMAs, added in k order (U = 4 gives the same
 * result as U = 1 four times). KIND (0 float32, 1 bfloat16, 2 float16), M (rows of a) and U are constants at
 * every call (gemv_task dispatches), so a's broadcasts stay in registers and the full vectors run unmasked:
 * the loop was ~25 instructions a vector with them as variables, and bound the decode step on 2 Zen 5 cores
 * (the GEMV streamed b at 6 GB/s a core from DRAM). */
TGEMV static inline __attribute__((always_inline)) void gemv_rows(const lc_matmul_args *a, const int KIND, const int M,
                                                                   int64_t kk, int64_t j0, int64_t nv, __mmask16 tail,
                                                                   float *acc, int64_t ld, const int U) {
    const int64_t n = a->n, row = kk * n + j0;
    const void *const bm = a->b;
    __m512 av[GEMV_MAX_M][4];
    for (int i = 0; i < M; i++)
        for (int u = 0; u < U; u++) av[i][u] = _mm512_set1_ps(gemv_a(a->a, i * a->k + kk + u, KIND));
    int64_t v = 0;
    for (; v < nv - 1; v++) gemv_vec(bm, row + 16 * v, n, KIND, M, U, av, acc + 16 * v, ld, (__mmask16)0xFFFF);
    gemv_vec(bm, row + 16 * v, n, KIND, M, U, av, acc + 16 * v, ld, tail); /* the last, masked by tail */
}

/* Tasks t = part * nchunk + chunk: the sums of rows k in the part for the chunk's columns, accumulated in the
 * part's slice of g->part (parts > 1) or in a thread-local L1 buffer (then stored). */
TGEMV static void gemv_task(void *vctx, int64_t begin, int64_t end) {
    const gemv_ctx *g = vctx;
    const lc_matmul_args *a = g->args;
    const int kind = a->dtype == LC_DTYPE_F32 ? 0 : a->dtype == LC_DTYPE_BF16 ? 1 : 2;
    const int64_t m = a->m, n = a->n;
    static _Thread_local float local[GEMV_MAX_M * GEMV_NC] __attribute__((aligned(64))); /* parts == 1: nc <= GEMV_NC */
    for (int64_t t = begin; t < end; t++) {
        const int64_t chunk = t % g->nchunk, part = t / g->nchunk;
        const int64_t j0 = chunk * g->nc, nj = n - j0 < g->nc ? n - j0 : g->nc;
        const int64_t k0 = part * g->kpart, k1 = k0 + g->kpart < a->k ? k0 + g->kpart : a->k;
        const int64_t nv = (nj + 15) / 16;
        const __mmask16 tail = (nj % 16) ? (__mmask16)((1u << (nj % 16)) - 1u) : (__mmask16)0xFFFF;
        float *const acc = g->parts > 1 ? g->part + part * m * g->ldp + j0 : local;
        const int64_t ld = g->parts > 1 ? g->ldp : GEMV_NC;
        for (int64_t i = 0; i < m; i++) memset(acc + i * ld, 0, (size_t)nj * sizeof(float));
        const int u4 = nj >= GEMV_UNROLL_MIN_N; /* 4 rows a step for wide rows */
#define GEMV_RUN(KIND, M)                                                                                          \
    do {                                                                                                           \
        int64_t kk = k0;                                                                                           \
        if (u4)                                                                                                    \
            for (; kk + 4 <= k1; kk += 4) gemv_rows(a, KIND, M, kk, j0, nv, tail, acc, ld, 4);                    \
        for (; kk < k1; kk++) gemv_rows(a, KIND, M, kk, j0, nv, tail, acc, ld, 1);                                 \
    } while (0)
#define GEMV_KIND(KIND)                                                                                            \
    switch (m) {                                                                                                   \
    case 1: GEMV_RUN(KIND, 1); break;                                                                              \
    case 2: GEMV_RUN(KIND, 2); break;                                                                              \
    case 3: GEMV_RUN(KIND, 3); break;                                                                              \
    case 4: GEMV_RUN(KIND, 4); break;                                                                              \
    default: break; /* m <= GEMV_MAX_M (the callers), m = 0: nothing */                                           \
    }
        if (kind == 0) GEMV_KIND(0) else if (kind == 1) GEMV_KIND(1) else GEMV_KIND(2)
#undef GEMV_KIND
#undef GEMV_RUN
        if (g->parts == 1)
            for (int64_t i = 0; i < m; i++) gemv_store(g, i, j0, nj, acc + i * ld);
    }
}

/* The parts' sums added in part order (into part 0's slice), then stored: row i, a column range per task. */
static void gemv_reduce(void *vctx, int64_t begin, int64_t end) {
    const gemv_ctx *g = vctx;
    const lc_matmul_args *a = g->args;
    for (int64_t t = begin; t < end; t++) {
        const int64_t i = t / g->nred, j0 = (t % g->nred) * GEMV_NC;
        const int64_t nj = a->n - j0 < GEMV_NC ? a->n - j0 : GEMV_NC;
        float *sums = g->part + i * g->ldp + j0;
        for (int64_t p = 1; p < g->parts; p++) {
            const float *src = g->part + (p * a->m + i) * g->ldp + j0;
            for (int64_t j = 0; j < nj; j++) sums[j] += src[j];
        }
        gemv_store(g, i, j0, nj, sums);
    }
}

static lc_status lowp_gemv(const lc_matmul_args *args, float *c_f32, const char **path) {
    gemv_ctx g = {args, c_f32, NULL, (args->n + 15) / 16 * 16, GEMV_NC, 1, 1, args->k, 1};
    const int64_t want = 2 * (int64_t)lc_num_threads(); /* tasks: at least 2 a thread */
    if (args->n * args->m <= GEMV_WHOLE_ROWS && args->k >= 2 * GEMV_MIN_KPART) {
        g.nc = args->n; /* whole rows of b, fully contiguous; k split into parts */
        g.parts = want;
    } else { /* column chunks; k split only while the chunks leave threads idle */
        g.nchunk = (args->n + GEMV_NC - 1) / GEMV_NC;
        while (g.nchunk * g.parts < want) g.parts *= 2;
    }
    if (g.parts > args->k / GEMV_MIN_KPART) g.parts = args->k / GEMV_MIN_KPART; /* whole rows: k >= 128, so >= 2 */
    if (g.parts < 1) g.parts = 1;
    g.kpart = (args->k + g.parts - 1) / g.parts;
    g.parts = (args->k + g.kpart - 1) / g.kpart;
    LC_CHECK_INVARIANT(g.nc <= GEMV_NC || g.parts > 1); /* whole rows accumulate in the partial buffer */
    if (g.parts > 1) {
        int64_t elems;
        if (!lc_mul_ok(g.parts * args->m, g.ldp, &elems) || (uint64_t)elems > SIZE_MAX / sizeof(float))
            return lc_error(LC_ERR_INVALID_ARGUMENT, "matmul: gemv partial sums size overflows");
        g.part = lc_aligned_alloc((size_t)elems * sizeof(float));
        if (!g.part) return lc_error(LC_ERR_OUT_OF_MEMORY, "matmul: gemv partial sums (%lld floats)", (long long)elems);
    }
    lc_parallel_for(g.nchunk * g.parts, 1, gemv_task, &g);
    if (g.parts > 1) {
        g.nred = (args->n + GEMV_NC - 1) / GEMV_NC;
        if (args->m * args->n * g.parts <= 65536) gemv_reduce(&g, 0, args->m * g.nred); /* small: no dispatch */
        else lc_parallel_for(args->m * g.nred, 1, gemv_reduce, &g);
    }
    lc_aligned_free(g.part);
    *path = args->dtype == LC_DTYPE_BF16 ? "bf16_gemv_avx512" : args->dtype == LC_DTYPE_F16 ? "f16_gemv_avx512"
                                                                                          : "f32_gemv_avx512";
    return LC_OK;
}
#endif

#ifdef LOWP_X86
/* ---- medium m without VDPBF16PS (float16; bfloat16 on AVX-512 CPUs without AVX512-BF16) -----------------
 * bf16_mid_task's plan with float32 panels: task t owns the columns [t·nc, +nc) of B and walks k in slices of
 * MIDF_KS rows; it widens the slice of its chunk into midf_pack ([panel][MIDF_KS][NR] float32, the next slice's
 * rows prefetched into L2 as it goes) and the slice of a's m rows into midf_a, then 8x32 (..1x32) FMA
 * micro-kernels over each panel for all m rows, the float32 sums in mid_acc between slices, rounded once after
 * the last (or left in cf). Replaces the float32 conversion path at these sizes, whose b-sized workspace was
 * allocated, first touched and written at every call (GPT-2 / LLaMA shapes: 10-28x slower than bfloat16's
 * kernel on 2 Zen 5 cores). */
enum { MIDF_KS = 128 };
static _Thread_local float midf_pack[(size_t)MID_NC * MIDF_KS] __attribute__((aligned(64)));
static _Thread_local float midf_a[(size_t)MID_MAX_M * MIDF_KS] __attribute__((aligned(64)));

typedef struct {
    const lc_matmul_args *args;
    float *cf;  /* non-NULL: the float32 sums go here (unrounded), c is not written */
    int64_t nc; /* columns of a task's chunk (a multiple of NR, <= MID_NC) */
    int kind;   /* gemv_loadw's: 0 float32 (c is cf), 1 bfloat16, 2 float16 */
} midf_ctx;

/* 32 float32 sums of row i, panel j (cols of them real) into cf, or rounded into c. */
TGEMV static void midf_store(const midf_ctx *x, int64_t i, int64_t j, __m512 lo, __m512 hi, int cols) {
    const size_t off = (size_t)i * (size_t)x->args->n + (size_t)(j * NR);
    uint16_t *c = (uint16_t *)x->args->c + off;
    const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    if (x->cf) f32_store(x->cf + off, lo, hi, cols);
    else if (x->kind == 1) bf16_store(c, lo, hi, cols);
    else store16x32(c, _mm512_cvtps_ph(lo, rn), _mm512_cvtps_ph(hi, rn), cols);
}

/* Rows i0.. (ROWS of them) x panel j over the slice's ks rows of k: pp the panel ([ks][NR]), the rows of a at
 * midf_a + row·MIDF_KS; acc (row stride ald) from zero on the first slice, else from the stored sums. */
#define MIDF_UKR(NAME, ROWS)                                                                                   \
    TGEMV static void NAME(const midf_ctx *x, int64_t i0, int64_t j, const float *pp, int64_t ks, float *acc_buf, \
                           int64_t ald, int first, int last) {                                                 \
        const int64_t n = x->args->n;                                                                          \
        const int cols = (int)(n - j * NR < NR ? n - j * NR : NR);                                             \
        __m512 acc[ROWS][2];                                                                                   \
        for (int r = 0; r < ROWS; r++) {                                                                       \
            acc[r][0] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc_buf + r * ald);                      \
            acc[r][1] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc_buf + r * ald + 16);                 \
        }                                                                                                      \
        const float *ar = midf_a + i0 * MIDF_KS;                                                               \
        for (int64_t kk = 0; kk < ks; kk++) {                                                                  \
            const __m512 b0 = _mm512_load_ps(pp + kk * NR), b1 = _mm512_load_ps(pp + kk * NR + 16);            \
            for (int r = 0; r < ROWS; r++) {                                                                   \
                const __m512 av = _mm512_set1_ps(ar[r * MIDF_KS + kk]);                                        \
                acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);                                                \
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);                                                \
            }                                                                                                  \
        }                                                                                                      \
        for (int r = 0; r < ROWS; r++) {                                                                       \
            if (last) {                                                                                        \
                midf_store(x, i0 + r, j, acc[r][0], acc[r][1], cols);                                          \
            } else {                                                                                           \
                _mm512_storeu_ps(acc_buf + r * ald, acc[r][0]);                                                \
                _mm512_storeu_ps(acc_buf + r * ald + 16, acc[r][1]);                                           \
            }                                                                                                  \
        }                                                                                                      \
    }
UKR_ROWS_1_TO_8(MIDF_UKR, midf_ukr)
typedef void (*midf_ukr_fn)(const midf_ctx *, int64_t, int64_t, const float *, int64_t, float *, int64_t, int, int);
static const midf_ukr_fn midf_ukrs[MR + 1] = UKR_TABLE(midf_ukr);
#undef MIDF_UKR

/* Rows [k0, k1) of B's columns [c0, c0 + nc) widened (float32: copied) into midf_pack; a's rows [k0, k1) into
 * midf_a. */
TGEMV static void midf_pack_slice(const midf_ctx *x, int64_t c0, int64_t nc, int64_t k0, int64_t k1) {
    const lc_matmul_args *a = x->args;
    const int64_t n = a->n, k = a->k, npan = (nc + NR - 1) / NR, ks = k1 - k0, es = x->kind == 0 ? 4 : 2;
    for (int64_t kk = k0; kk < k1; kk++) {
        if (kk + MIDF_KS < k) /* the same row of the next slice into L2 while this slice is used */
            for (int64_t o = 0; o < nc * es; o += 64) _mm_prefetch((const char *)a->b + ((kk + MIDF_KS) * n + c0) * es + o, _MM_HINT_T1);
        float *d = midf_pack + (kk - k0) * NR;
        for (int64_t q = 0; q < npan; q++, d += MIDF_KS * NR)
            for (int h = 0; h < 2; h++) {
                const int64_t col = q * NR + h * 16;
                _mm512_store_ps(d + h * 16, gemv_loadw(a->b, kk * n + c0 + col, x->kind, mask16(nc - col)));
            }
    }
    for (int64_t i = 0; i < a->m; i++)
        for (int64_t kk = 0; kk < ks; kk += 16) {
            const __mmask16 mk = mask16(ks - kk);
            _mm512_mask_storeu_ps(midf_a + i * MIDF_KS + kk, mk, gemv_loadw(a->a, i * k + k0 + kk, x->kind, mk));
        }
}

static void midf_slice(const void *vctx, int64_t c0, int64_t nc, int64_t k0, int64_t k1, int first, int last) {
    const midf_ctx *x = vctx;
    const int64_t m = x->args->m, ald = x->nc, npan = (nc + NR - 1) / NR;
    midf_pack_slice(x, c0, nc, k0, k1);
    for (int64_t q = 0; q < npan; q++) {
        const float *pp = midf_pack + q * MIDF_KS * NR;
        const int64_t j = c0 / NR + q;
        float *col = mid_acc + q * NR;
        for (int64_t i = 0; i < m; i += MR) midf_ukrs[m - i < MR ? m - i : MR](x, i, j, pp, k1 - k0, col + i * ald, ald, first, last);
    }
}

static void midf_task(void *vctx, int64_t begin, int64_t end) {
    const midf_ctx *x = vctx;
    mid_chunks(begin, end, x->args->n, x->nc, x->args->k, MIDF_KS, midf_slice, x);
}

static lc_status lowp_mid_f32(const lc_matmul_args *args, float *c_f32, const char **path) {
    const int kind = args->dtype == LC_DTYPE_F32 ? 0 : args->dtype == LC_DTYPE_BF16 ? 1 : 2;
    midf_ctx x = {args, kind == 0 ? (float *)args->c : c_f32, mid_chunk(args->n), kind};
    lc_parallel_for((args->n + x.nc - 1) / x.nc, 1, midf_task, &x);
    *path = kind == 0 ? "f32_mid_avx512" : kind == 1 ? "bf16_mid_avx512" : "f16_mid_avx512";
    return LC_OK;
}
#endif

int lc_cpu_mid_f32_fits(const lc_matmul_args *args) {
#ifdef LOWP_X86
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    return args->dtype == LC_DTYPE_F32 && args->m > GEMV_MAX_M && args->m <= MID_MAX_M && args->k >= 1 &&
           args->n >= 1 && caps->avx512f && caps->avx512bw;
#else
    (void)args;
    return 0;
#endif
}

lc_status lc_cpu_matmul_mid_f32(const lc_matmul_args *args, const char **path) {
    LC_CHECK_INVARIANT(lc_cpu_mid_f32_fits(args));
#ifdef LOWP_X86
    return lowp_mid_f32(args, NULL, path);
#else
    (void)path;
    return lc_error(LC_ERR_INTERNAL, "matmul: the medium-m float32 kernel is not built here");
#endif
}

static lc_status lowp_run(const lc_matmul_args *args, float *c_f32, const char **path) {
    if (args->dtype != LC_DTYPE_F16 && args->dtype != LC_DTYPE_BF16)
        return lc_error(LC_ERR_DTYPE, "matmul: low-precision cpu kernel takes float16 or bfloat16, got %s",
                        lc_dtype_name(args->dtype));
#ifdef LOWP_X86
    /* AVX-512 F + BW, and F16C for float16: what the in-place GEMV and the widening medium-m kernel need */
    const int avx512 = lc_cpu_caps_get()->avx512f && lc_cpu_caps_get()->avx512bw &&
                       (args->dtype == LC_DTYPE_BF16 || lc_cpu_caps_get()->f16c);
    if (args->m <= GEMV_MAX_M && args->k > 0 && avx512) return lowp_gemv(args, c_f32, path);
    /* AMX packs a and b whole at every call: at few rows, or a large b, the medium-m AVX-512 BF16 kernel reading
     * b once wins (16-core Xeon, session 20: m = 8 1.5-10x faster at GPT-2 / LLaMA-1B shapes; m = 32, 64 from
     * 2048 x 11264 up, AMX below) */
    const int amx_mid = args->dtype == LC_DTYPE_BF16 && lc_cpu_caps_get()->avx512bf16 && args->m <= MID_MAX_M &&
                        (args->m <= AMX_MID_MAX_M || (double)args->k * (double)args->n >= AMX_MID_MIN_KN);
    if (args->dtype == LC_DTYPE_BF16 && !amx_mid && lc_cpu_amx_ready()) return lc_cpu_matmul_amx_bf16(args, c_f32, path);
    if (args->dtype == LC_DTYPE_BF16 && lc_cpu_caps_get()->avx512bf16) return lowp_bf16_avx512(args, c_f32, path);
    if (args->m <= MID_MAX_M && avx512) return lowp_mid_f32(args, c_f32, path);
#endif /* (no AMX elsewhere) */
    return lowp_via_f32(args, c_f32, path);
}

lc_status lc_cpu_matmul_lowp(const lc_matmul_args *args, const char **path) { return lowp_run(args, NULL, path); }

lc_status lc_cpu_matmul_lowp_f32out(const lc_matmul_args *args, float *c_f32, const char **path) {
    LC_CHECK_INVARIANT(c_f32 != NULL);
    return lowp_run(args, c_f32, path);
}

/* float32 m <= 4 with AVX-512: the same GEMV (b streamed in place, float32 sums are c). Returns 1 when taken
 * (*st its status), 0 otherwise (the caller runs BLAS / its own kernels). */
int lc_cpu_gemv_f32_try(const lc_matmul_args *args, const char **path, lc_status *st) {
#ifdef LOWP_X86
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    if (args->dtype == LC_DTYPE_F32 && args->m >= 1 && args->m <= GEMV_MAX_M && args->k >= 1 && args->n >= 1 &&
        (double)args->k * (double)args->n >= GEMV_F32_MIN_KN && caps->avx512f && caps->avx512bw) {
        *st = lowp_gemv(args, (float *)args->c, path);
        return 1;
    }
#else
    (void)args, (void)path, (void)st;
#endif
    return 0;
}
