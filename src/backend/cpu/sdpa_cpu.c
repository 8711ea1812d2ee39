/* sdpa_cpu.c — CPU scaled-dot-product attention (lc_cpu_sdpa: the semantics of lc_sdpa_args in
 * core/backend.h) and the KV-cache append (lc_cpu_kv_append, lc_kv_append_args).
 *
 * q [batch, heads, sq, d], k and v [batch, kv_heads, skv, d], out [batch, heads, sq, d], any element strides;
 * float32, float16 or bfloat16 (16-bit tiles converted to float32 on load, out rounded once).
 * Work: one task per (query block of up to 64 rows, batch, head), handed to lc_parallel_for with the
 * blocks that see the most keys (causal) first; GQA decode (one query, several heads a kv head, no mask) has
 * one task per (batch, kv head) whose rows are that kv head's query heads, so the 16 query lanes hold heads
 * instead of one query and padding, and each k/v tile is read once for the group. A task walks the keys it may see in tiles of 64 with an
 * online softmax (running max m, sum l, accumulator rescaled by exp(m_old - m_new)); keys past
 * key_lengths[b] or past the causal diagonal of the whole block are never read, and tiles wholly left of
 * the diagonal skip the per-row test. A sliding window (lc_sdpa_args.window) is the mirror image: the task's
 * key range starts at the first key its first row sees (keys left of it are never read), and a tile that
 * reaches left of its last row's bound hides those keys per row (score -inf, weight 0). The block's queries are stored transposed and multiplied by
 * scale, so the score tile comes out as Sᵀ[key][query] from a micro-GEMM that broadcasts k and loads 16
 * queries per vector; the softmax is vertical SIMD (one lane per query) in natural units (the additive
 * mask is added as given; exp(x) = 2^(x·log2 e)); p·v broadcasts the weights against rows of v
 * (vectorised along d; whole vectors of v by plain loads, masked ones only for a d-tail: masked loads cost
 * ~4% of the call on Zen 5). float32 operands with unit d-stride are read in place; others (16-bit, strided d)
 * are converted into a packed [64][d] float32 tile first.
 * Hidden keys never reach a row: causal/length ones are not read, mask-hidden ones get score -inf
 * (whatever their k holds), and when a v tile holds a NaN/Inf the p·v step skips weights that are exactly
 * 0 (0·NaN would poison the row); on the AVX-512 paths that read v in place a key tile's finite test runs once
 * per call and is shared by every query block that reads the tile (sd_tile_finite). A row with no visible key
 * (or only -inf scores) gets zeros, lse -inf.
 * plain_nonfinite (attention_forward, no mask): such rows are NaN and zero weights are never skipped (the
 * fast p·v runs whatever v holds, so a NaN/Inf in a hidden v row leaves the other rows' bits unchanged).
 * Paths, picked at run time (LC_CPU_DISABLE masks them): "cpu_sdpa_avx512bf16" (bfloat16 with unit d-strides and
 * an even head_dim on AVX512_BF16, not for attention_forward: both products on VDPBF16PS, the weights rounded to
 * bfloat16; sdpa_cpu_bf16.h), "cpu_sdpa_avx512" (intrinsics, AVX-512F),
 * "cpu_sdpa_avx2" and "cpu_sdpa_generic": the portable tile of sdpa_cpu_tile.h (GCC/Clang vector
 * extensions) instantiated for AVX2 + FMA and for the baseline ISA.
 * lc_cpu_sdpa_rows (any of the dtypes): the same tasks, each one's normalised float32 rows handed to a sink instead of written out
 * (the fused attention_projection, attention_projection_cpu.c, projects them as they come).
 * Tests: tests/c/test_sdpa_cpu.c (against lc_ref_sdpa, reference.c; ctest runs it under the CPU masks); the sink
 * through attention_projection's tests (tests/python/test_graph_plan.py, test_attention_nonfinite.py).
 */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/cpu_features.h"
#include "core/dtype_internal.h"
#include "core/internal.h"
#include "core/threadpool.h"
#include "lightning_core/dtype.h"

#if defined(__x86_64__) || defined(__i386__)
#define SD_X86 1
#include <immintrin.h>
#define SD_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define SD_INLINE static inline __attribute__((always_inline))
#else
#define SD_X86 0
#endif

#define SD_BQ 64                /* most query rows in a task (a multiple of 16) */
#define SD_BK 64                /* keys per tile */
#define SD_LOG2E 1.44269504088896340736f
#define SD_GRAIN_FLOPS 2.0e6    /* least work worth handing to another thread */
#define SD_PAR_MIN_FLOPS 4.0e6  /* below this a call stays on the calling thread */
#define SD_STACK_FLOATS 16384   /* a range's scratch up to this many floats (64 KiB) lives on its stack */

enum { SD_GENERIC = 0, SD_ISA_AVX2, SD_ISA_AVX512 };

typedef struct sd_job {
    const lc_sdpa_args *a;
    const lc_cvt_rows *cvt;
    int isa;
    int k_direct, v_direct, o_direct; /* float32 with unit d-stride: read / written in place */
    int no_skip;                      /* plain_nonfinite without a mask: p·v never skips zero weights */
    int bf16;                         /* the AVX-512 BF16 tile (sdpa_cpu_bf16.h) */
    atomic_uchar *vfin;               /* NULL, or per (b, kv head, key tile): 0 unknown, 1 v finite, 2 not */
    int64_t nvt;                      /* key tiles per (b, kv head) in vfin */
    int gq;                           /* GQA decode: a task's rows are the heads of one kv head (sq == 1) */
    int64_t d, dp, bq, bk, nqb, group;
    size_t scratch_floats;
    atomic_int failed;
    lc_cpu_sdpa_sink sink; /* NULL, or each task's normalised rows go to it instead of out (lc_cpu_sdpa_rows) */
    void *sink_ctx;
} sd_job;

/* One thread's scratch: qt [d][bq] (scale·q, transposed), s [bk][bq] (scores, then weights), o [bq][dp]
 * (unnormalised output), m, l, alpha, tmp [bq], kt and vt [bk][dp] (packed tiles), row [dp]. */
typedef struct sd_scratch {
    float *qt, *s, *o, *m, *l, *alpha, *tmp, *kt, *vt, *row;
    uint32_t *pp; /* the BF16 tile's weight pairs [bk/2][bq] */
} sd_scratch;

static int64_t sd_round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
static int64_t sd_min(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---------------------------------------------------------------------------------------------------
 * Element access: rows of n elements at element offset `off`, element stride `st`, in the op's dtype.
 * ------------------------------------------------------------------------------------------------- */

static void sd_load_row(const sd_job *job, const void *base, int64_t off, int64_t st, int64_t n, float *out) {
    const lc_dtype dt = job->a->dtype;
    if (dt == LC_DTYPE_F32) {
        const float *p = (const float *)base + off;
        if (st == 1) memcpy(out, p, (size_t)n * sizeof(float));
        else
            for (int64_t i = 0; i < n; i++) out[i] = p[i * st];
        return;
    }
    const uint16_t *p = (const uint16_t *)base + off;
    if (st == 1) {
        (dt == LC_DTYPE_F16 ? job->cvt->f16_f32 : job->cvt->bf16_f32)(p, out, (size_t)n);
    } else if (dt == LC_DTYPE_F16) {
        for (int64_t i = 0; i < n; i++) out[i] = lc_f16_to_f32(p[i * st]);
    } else {
        for (int64_t i = 0; i < n; i++) out[i] = lc_bf16_to_f32(p[i * st]);
    }
}

static void sd_store_row(const sd_job *job, void *base, int64_t off, int64_t st, int64_t n, const float *in) {
    const lc_dtype dt = job->a->dtype;
    if (dt == LC_DTYPE_F32) {
        float *p = (float *)base + off;
        if (st == 1) memcpy(p, in, (size_t)n * sizeof(float));
        else
            for (int64_t i = 0; i < n; i++) p[i * st] = in[i];
        return;
    }
    uint16_t *p = (uint16_t *)base + off;
    if (st == 1) {
        (dt == LC_DTYPE_F16 ? job->cvt->f32_f16 : job->cvt->f32_bf16)(in, p, (size_t)n);
    } else if (dt == LC_DTYPE_F16) {
        for (int64_t i = 0; i < n; i++) p[i * st] = lc_f32_to_f16(in[i]);
    } else {
        for (int64_t i = 0; i < n; i++) p[i * st] = lc_f32_to_bf16(in[i]);
    }
}

/* L_b: key_lengths[b] clamped to [0, skv], or skv. */
static int64_t sd_length(const lc_sdpa_args *a, int64_t b) {
    if (!a->key_lengths) return a->skv;
    const int64_t L = a->key_lengths_dtype == LC_DTYPE_I64 ? ((const int64_t *)a->key_lengths)[b]
                                                           : (int64_t)((const int32_t *)a->key_lengths)[b];
    return L < 0 ? 0 : L > a->skv ? a->skv : L;
}

/* Keys [0, result) of a tile of nk keys that block row i sees: all nk off the diagonal, else those with
 * j <= i + qoff (clamped to [0, nk]). The p·v loops stop there, so a causally hidden v row is never read. */
static inline int64_t sd_visible(int diag, int64_t i, int64_t qoff, int64_t nk) {
    if (!diag) return nk;
    const int64_t n = i + qoff + 1;
    return n < 0 ? 0 : n > nk ? nk : n;
}

/* The additive or boolean mask on the score tile s[j][i], i < nq, j < nk. A -inf (or false) entry hides
 * the key whatever its score (a NaN from its k row included); a NaN entry propagates. */
static void sd_apply_mask(const sd_job *job, const sd_scratch *sc, int64_t b, int64_t h, int64_t i0, int64_t nq,
                          int64_t j0, int64_t nk) {
    const lc_sdpa_args *a = job->a;
    const int64_t *ms = a->m_st, bq = job->bq;
    for (int64_t i = 0; i < nq; i++) {
        const int64_t off = b * ms[0] + h * ms[1] + (i0 + i) * ms[2] + j0 * ms[3];
        float *s = sc->s + i;
        if (a->mask_kind == LC_SDPA_MASK_BOOL) {
            const uint8_t *m = (const uint8_t *)a->mask + off;
            for (int64_t j = 0; j < nk; j++)
                if (!m[j * ms[3]]) s[j * bq] = -INFINITY;
        } else if (a->mask_dtype == LC_DTYPE_F32) {
            const float *m = (const float *)a->mask + off;
            for (int64_t j = 0; j < nk; j++) {
                const float mv = m[j * ms[3]];
                s[j * bq] = mv == -INFINITY ? -INFINITY : s[j * bq] + mv;
            }
        } else {
            const uint16_t *m = (const uint16_t *)a->mask + off;
            const int f16 = a->mask_dtype == LC_DTYPE_F16;
            for (int64_t j = 0; j < nk; j++) {
                const uint16_t hv = m[j * ms[3]];
                const float mv = f16 ? lc_f16_to_f32(hv) : lc_bf16_to_f32(hv);
                s[j * bq] = mv == -INFINITY ? -INFINITY : s[j * bq] + mv;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------------
 * Portable kernels: the exp, finite test and softmax below are plain C along the query lanes that the
 * compiler vectorises; always_inline, they are compiled into each instantiation of sdpa_cpu_tile.h (the
 * micro-GEMMs, in vector extensions): the baseline ISA ("cpu_sdpa_generic") and, on x86, AVX2 + FMA
 * ("cpu_sdpa_avx2").
 * ------------------------------------------------------------------------------------------------- */
#define SD_BODY static inline __attribute__((always_inline))

/* exp(x) for x <= 0 (or -inf, NaN): 2^t, t = x·log2 e = n + r, n = round(t) (the 1.5·2^23 trick: round
 * to nearest), 2^r by the degree-6 polynomial of the AVX-512 kernels, 2^n built in the exponent field;
 * below 2^-126 the result is 0; NaN stays NaN. Branch-free, so loops of it vectorise. */
SD_BODY float sd_exp_c(float x) {
    const float t = x * SD_LOG2E;
    const float tc = t < -126.0f ? -126.0f : t; /* NaN: the comparison is false, tc = NaN */
    const float n = (tc + 12582912.0f) - 12582912.0f;
    const float r = tc - n;
    float p = 1.534579205e-04f;
    p = p * r + 1.339992974e-03f;
    p = p * r + 9.618489072e-03f;
    p = p * r + 5.550328642e-02f;
    p = p * r + 2.402264625e-01f;
    p = p * r + 6.931471825e-01f;
    p = p * r + 1.0f;
    const int32_t ni = (int32_t)(tc == tc ? n : 0.0f);
    const uint32_t bits = (uint32_t)(ni + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    const float e = p * scale;
    return t >= -126.0f ? e : t == t ? 0.0f : t;
}

/* 1 when the nk rows of d floats at v (row stride vrs) are all finite. */
SD_BODY int sd_finite_body(const float *v, int64_t vrs, int64_t nk, int64_t d) {
    uint32_t bad = 0;
    for (int64_t j = 0; j < nk; j++) {
        const float *restrict r = v + j * vrs;
        for (int64_t p = 0; p < d; p++) {
            uint32_t u;
            memcpy(&u, r + p, sizeof u);
            bad |= (u & 0x7f800000u) == 0x7f800000u;
        }
    }
    return bad == 0;
}

/* Online-softmax update of one tile (natural units), vectorised along the query lanes. m starts at
 * -FLT_MAX, so a row whose scores are all -inf keeps weights 0 and alpha 1 (no -inf - -inf). */
SD_BODY void sd_softmax_body(const sd_job *job, const sd_scratch *sc, int64_t ncol, int64_t nk, int diag,
                             int lwin, int64_t qoff) {
    const int64_t bq = job->bq, lo = qoff - job->a->window + 1; /* lwin: row i sees tile keys j >= i + lo */
    float *restrict mx = sc->alpha, *restrict sum = sc->tmp;
    for (int64_t i = 0; i < ncol; i++) mx[i] = sc->m[i], sum[i] = 0.0f;
    for (int64_t j = 0; j < nk; j++) {
        float *restrict srow = sc->s + j * bq;
        if (diag)
            for (int64_t i = 0; i < ncol; i++) srow[i] = j > i + qoff ? -INFINITY : srow[i];
        if (lwin)
            for (int64_t i = 0; i < ncol; i++) srow[i] = j < i + lo ? -INFINITY : srow[i];
        for (int64_t i = 0; i < ncol; i++) mx[i] = srow[i] > mx[i] ? srow[i] : mx[i];
    }
    for (int64_t j = 0; j < nk; j++) {
        float *restrict srow = sc->s + j * bq;
        for (int64_t i = 0; i < ncol; i++) {
            srow[i] = sd_exp_c(srow[i] - mx[i]);
            sum[i] += srow[i];
        }
    }
    for (int64_t i = 0; i < ncol; i++) {
        const float al = sd_exp_c(sc->m[i] - mx[i]);
        sc->m[i] = mx[i];
        sc->l[i] = sc->l[i] * al + sum[i];
        sc->alpha[i] = al;
    }
}

/* The vector-extension tile (sdpa_cpu_tile.h) for the baseline ISA (4-float vectors: 16 SSE registers)
 * and, on x86, for AVX2 + FMA (8-float vectors). */
#define SD_T_NAME sd_generic
#define SD_T_VW 4
#define SD_T_KB 2
#define SD_T_ATTR
#define SD_T_MADD(acc, a, b) ((acc) + (a) * (b))
#include "backend/cpu/sdpa_cpu_tile.h"
#if SD_X86
#define SD_T_NAME sd_avx2
#define SD_T_VW 8
#define SD_T_KB 4
#define SD_T_ATTR __attribute__((target("avx2,fma")))
#define SD_T_MADD(acc, a, b) _mm256_fmadd_ps((a), (b), (acc))
#include "backend/cpu/sdpa_cpu_tile.h"
#endif

#if SD_X86
/* ---------------------------------------------------------------------------------------------------
 * AVX-512 kernels: vectors of 16 queries (score tile, softmax) or 16 head_dim elements (p·v).
 * ------------------------------------------------------------------------------------------------- */

/* 2^x for x <= 0: x = n + r, n = round(x), |r| <= 1/2, 2^r by a degree-6 polynomial (relative error
 * about 2e-8 before float rounding); below -126 the result is 0; NaN stays NaN. */
SD_AVX512 SD_INLINE __m512 sd_exp2_512(__m512 x) {
    const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-150.0f), x); /* NaN x: max returns x */
    const __m512 n = _mm512_roundscale_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_sub_ps(xc, n);
    __m512 p = _mm512_set1_ps(1.534579205e-04f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.339992974e-03f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.618489072e-03f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.550328642e-02f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.402264625e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.931471825e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_NLT_UQ);
    return _mm512_maskz_scalef_ps(keep, p, n);
}

/* exp(a - b) for a <= b (natural units; -inf gives 0). */
SD_AVX512 SD_INLINE __m512 sd_expdiff_512(__m512 a, __m512 b) {
    return sd_exp2_512(_mm512_mul_ps(_mm512_sub_ps(a, b), _mm512_set1_ps(SD_LOG2E)));
}

static inline __mmask16 sd_mask16(int64_t rem) {
    return rem >= 16 ? (__mmask16)0xFFFF : rem <= 0 ? (__mmask16)0 : (__mmask16)((1u << rem) - 1u);
}

/* s[j..j+mr)[16v..] = sum_p k[j][p] · qt[p][16v..]: mr keys × nv query vectors in registers. */
SD_AVX512 SD_INLINE void sd_qk_512_blk(const float *qt, int64_t bq, const float *kr, int64_t krs, int64_t d,
                                       float *s, const int mr, const int nv) {
    __m512 acc[6][4];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();
    for (int64_t p = 0; p < d; p++) {
        __m512 qv[4];
        for (int v = 0; v < nv; v++) qv[v] = _mm512_loadu_ps(qt + p * bq + 16 * v);
        for (int r = 0; r < mr; r++) {
            const __m512 b = _mm512_set1_ps(kr[r * krs + p]);
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(b, qv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) _mm512_storeu_ps(s + r * bq + 16 * v, acc[r][v]);
}

/* The score tile for nk keys: blocks of 6 keys, then 4, then single keys. */
SD_AVX512 SD_INLINE void sd_qk_512_nv(const float *qt, int64_t bq, const float *k, int64_t krs, int64_t d, float *s,
                                      int64_t nk, const int nv) {
    int64_t j = 0;
    for (; j + 6 <= nk; j += 6) sd_qk_512_blk(qt, bq, k + j * krs, krs, d, s + j * bq, 6, nv);
    if (j + 4 <= nk) {
        sd_qk_512_blk(qt, bq, k + j * krs, krs, d, s + j * bq, 4, nv);
        j += 4;
    }
    for (; j < nk; j++) sd_qk_512_blk(qt, bq, k + j * krs, krs, d, s + j * bq, 1, nv);
}

SD_AVX512 static void sd_qk_512(const sd_job *job, const sd_scratch *sc, const float *kp, int64_t krs, int64_t ncol,
                                int64_t nk) {
    const int64_t d = job->d, bq = job->bq;
    switch (ncol / 16) {
    case 1: sd_qk_512_nv(sc->qt, bq, kp, krs, d, sc->s, nk, 1); break;
    case 2: sd_qk_512_nv(sc->qt, bq, kp, krs, d, sc->s, nk, 2); break;
    case 3: sd_qk_512_nv(sc->qt, bq, kp, krs, d, sc->s, nk, 3); break;
    default: sd_qk_512_nv(sc->qt, bq, kp, krs, d, sc->s, nk, 4); break;
    }
}

SD_AVX512 static void sd_softmax_512(const sd_job *job, const sd_scratch *sc, int64_t ncol, int64_t nk, int diag,
                                     int lwin, int64_t qoff) {
    const int64_t bq = job->bq;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t c = 0; c < ncol; c += 16) {
        float *s = sc->s + c;
        const __m512 mold = _mm512_loadu_ps(sc->m + c);
        __m512 mx0 = mold, mx1 = mold;
        if (diag || lwin) {
            /* key j visible to query c + lane iff j <= c + lane + qoff (diag) and j > c + lane + qoff - window (lwin) */
            const __m512i qi = _mm512_add_epi32(lane, _mm512_set1_epi32((int)(c + qoff)));
            const __m512i qlo = _mm512_sub_epi32(qi, _mm512_set1_epi32((int)(lwin ? job->a->window - 1 : 0)));
            const __m512 ninf = _mm512_set1_ps(-INFINITY);
            const __mmask16 use_r = diag ? (__mmask16)0xFFFF : 0, use_l = lwin ? (__mmask16)0xFFFF : 0;
            for (int64_t j = 0; j < nk; j++) {
                const __m512i jv = _mm512_set1_epi32((int)j);
                const __mmask16 hide = (__mmask16)((_mm512_cmpgt_epi32_mask(jv, qi) & use_r) |
                                                   (_mm512_cmplt_epi32_mask(jv, qlo) & use_l));
                const __m512 sv = _mm512_mask_mov_ps(_mm512_loadu_ps(s + j * bq), hide, ninf);
                _mm512_storeu_ps(s + j * bq, sv);
                mx0 = _mm512_max_ps(mx0, sv);
            }
        } else {
            int64_t j = 0;
            for (; j + 2 <= nk; j += 2) {
                mx0 = _mm512_max_ps(mx0, _mm512_loadu_ps(s + j * bq));
                mx1 = _mm512_max_ps(mx1, _mm512_loadu_ps(s + (j + 1) * bq));
            }
            if (j < nk) mx0 = _mm512_max_ps(mx0, _mm512_loadu_ps(s + j * bq));
        }
        const __m512 mx = _mm512_max_ps(mx0, mx1);
        const __m512 al = sd_expdiff_512(mold, mx);
        __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
        int64_t j = 0;
        for (; j + 2 <= nk; j += 2) {
            const __m512 p0 = sd_expdiff_512(_mm512_loadu_ps(s + j * bq), mx);
            const __m512 p1 = sd_expdiff_512(_mm512_loadu_ps(s + (j + 1) * bq), mx);
            _mm512_storeu_ps(s + j * bq, p0);
            _mm512_storeu_ps(s + (j + 1) * bq, p1);
            sum0 = _mm512_add_ps(sum0, p0);
            sum1 = _mm512_add_ps(sum1, p1);
        }
        if (j < nk) {
            const __m512 p0 = sd_expdiff_512(_mm512_loadu_ps(s + j * bq), mx);
            _mm512_storeu_ps(s + j * bq, p0);
            sum0 = _mm512_add_ps(sum0, p0);
        }
        _mm512_storeu_ps(sc->alpha + c, al);
        _mm512_storeu_ps(sc->m + c, mx);
        _mm512_storeu_ps(sc->l + c, _mm512_fmadd_ps(_mm512_loadu_ps(sc->l + c), al, _mm512_add_ps(sum0, sum1)));
    }
}

/* acc = rows i..i+3 of the accumulator o, columns p0 + 16u.., rescaled by alpha (the new running max). */
SD_AVX512 SD_INLINE void sd_o_rescaled_512(const sd_scratch *sc, int64_t i, int64_t dp, int64_t p0, const int nv,
                                           __m512 acc[4][4]) {
    for (int r = 0; r < 4; r++) {
        const __m512 al = _mm512_set1_ps(sc->alpha[i + r]);
        for (int u = 0; u < nv; u++) acc[r][u] = _mm512_mul_ps(_mm512_loadu_ps(sc->o + (i + r) * dp + p0 + 16 * u), al);
    }
}

SD_AVX512 SD_INLINE void sd_o_store_512(const sd_scratch *sc, int64_t i, int64_t dp, int64_t p0, const int nv,
                                        __m512 acc[4][4]) {
    for (int r = 0; r < 4; r++)
        for (int u = 0; u < nv; u++) _mm512_storeu_ps(sc->o + (i + r) * dp + p0 + 16 * u, acc[r][u]);
}

/* o[i][p0 + 16u..] = o·alpha[i] + sum_j s[j][i] · v[j][p0 + 16u..] for 4 rows at a time, over the keys each
 * row sees: keys [0, jall) are visible to all 4 rows, keys [jall, jany) to some (per-row test). */
SD_AVX512 SD_INLINE void sd_pv_512_nv(const sd_job *job, const sd_scratch *sc, const float *vp, int64_t vrs,
                                      int64_t nrow, int64_t nk, int diag, int64_t qoff, int64_t p0, const int nv,
                                      const int masked) {
    const int64_t d = job->d, dp = job->dp, bq = job->bq;
    __mmask16 mk[4];
    for (int u = 0; u < nv; u++) mk[u] = sd_mask16(d - p0 - 16 * u);
#define SD_VLD(u, j) (masked ? _mm512_maskz_loadu_ps(mk[u], vp + (j) * vrs + p0 + 16 * (u)) \
                             : _mm512_loadu_ps(vp + (j) * vrs + p0 + 16 * (u)))
    for (int64_t i = 0; i < nrow; i += 4) {
        __m512 acc[4][4];
        sd_o_rescaled_512(sc, i, dp, p0, nv, acc);
        const float *sp = sc->s + i;
        const int64_t jall = sd_visible(diag, i, qoff, nk), jany = sd_visible(diag, i + 3, qoff, nk);
        for (int64_t j = 0; j < jall; j++) {
            __m512 x[4];
            for (int u = 0; u < nv; u++) x[u] = SD_VLD(u, j);
            for (int r = 0; r < 4; r++) {
                const __m512 b = _mm512_set1_ps(sp[j * bq + r]);
                for (int u = 0; u < nv; u++) acc[r][u] = _mm512_fmadd_ps(b, x[u], acc[r][u]);
            }
        }
        for (int64_t j = jall; j < jany; j++) {
            __m512 x[4];
            for (int u = 0; u < nv; u++) x[u] = SD_VLD(u, j);
            for (int r = 0; r < 4; r++) {
                if (j > i + r + qoff) continue; /* hidden from row i + r */
                const __m512 b = _mm512_set1_ps(sp[j * bq + r]);
                for (int u = 0; u < nv; u++) acc[r][u] = _mm512_fmadd_ps(b, x[u], acc[r][u]);
            }
        }
        sd_o_store_512(sc, i, dp, p0, nv, acc);
    }
#undef SD_VLD
}

SD_AVX512 static void sd_pv_512(const sd_job *job, const sd_scratch *sc, const float *vp, int64_t vrs, int64_t nrow,
                                int64_t nk, int diag, int64_t qoff) {
    for (int64_t p0 = 0; p0 < job->dp; p0 += 64) {
        if (job->d - p0 >= 64) { /* four whole vectors of v: plain loads (masked ones cost more on Zen 5) */
            sd_pv_512_nv(job, sc, vp, vrs, nrow, nk, diag, qoff, p0, 4, 0);
            continue;
        }
        switch ((job->dp - p0) / 16) {
        case 1: sd_pv_512_nv(job, sc, vp, vrs, nrow, nk, diag, qoff, p0, 1, 1); break;
        case 2: sd_pv_512_nv(job, sc, vp, vrs, nrow, nk, diag, qoff, p0, 2, 1); break;
        case 3: sd_pv_512_nv(job, sc, vp, vrs, nrow, nk, diag, qoff, p0, 3, 1); break;
        default: sd_pv_512_nv(job, sc, vp, vrs, nrow, nk, diag, qoff, p0, 4, 1); break;
        }
    }
}

/* Every v[j][p] finite: x - x is 0 for a finite x and NaN for NaN/Inf (the adds run beside the FMA pipe; whole
 * vectors by plain loads, masked ones only for a d-tail). */
SD_AVX512 static int sd_finite_512(const float *v, int64_t vrs, int64_t nk, int64_t d) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    const __m512 zero = _mm512_setzero_ps();
    const int64_t dv = d / 16 * 16;
    for (int64_t j = 0; j < nk; j++) {
        const float *r = v + j * vrs;
        int64_t p = 0;
        for (; p + 32 <= dv; p += 32) {
            const __m512 x0 = _mm512_loadu_ps(r + p), x1 = _mm512_loadu_ps(r + p + 16);
            acc0 = _mm512_add_ps(acc0, _mm512_sub_ps(x0, x0));
            acc1 = _mm512_add_ps(acc1, _mm512_sub_ps(x1, x1));
        }
        for (; p < dv; p += 16) {
            const __m512 x = _mm512_loadu_ps(r + p);
            acc0 = _mm512_add_ps(acc0, _mm512_sub_ps(x, x));
        }
        if (p < d) {
            const __m512 x = _mm512_maskz_loadu_ps(sd_mask16(d - p), r + p);
            acc1 = _mm512_add_ps(acc1, _mm512_sub_ps(x, x));
        }
    }
    return _mm512_cmp_ps_mask(_mm512_add_ps(acc0, acc1), zero, _CMP_EQ_OQ) == 0xFFFF;
}
#include "backend/cpu/sdpa_cpu_bf16.h"

/* Whether v's key tile [j0, j0 + bk) of (b, hk) is finite (float32 rows at vp, or bfloat16 rows at vb; rs the
 * row stride). With job->vfin (v read in place) over all the tile's keys below L, worked out once per call and
 * shared by the query blocks that read the tile (each used to scan it again: 3.5% of a float32 call at
 * S = 1024); racing threads store the same value. A task reading fewer keys of the tile (causal) is finite
 * wherever the whole tile is, and otherwise takes the p·v that skips zero weights, correct for any data.
 * Without job->vfin: the nk rows at vp / vb (a packed tile holds only those). */
SD_AVX512 static int sd_tile_finite(const sd_job *job, int64_t b, int64_t hk, int64_t j0, int64_t nk, int64_t L,
                                    const float *vp, const uint16_t *vb, int64_t rs) {
    atomic_uchar *f = job->vfin ? &job->vfin[(b * job->a->kv_heads + hk) * job->nvt + j0 / job->bk] : NULL;
    const int64_t n = f ? sd_min(job->bk, L - j0) : nk;
    if (f) {
        const unsigned char known = atomic_load_explicit(f, memory_order_relaxed);
        if (known) return known == 1;
    }
    const int fin = job->bf16 ? sd_bf16_finite(vb, rs, n, job->d) : sd_finite_512(vp, rs, n, job->d);
    if (f) atomic_store_explicit(f, (unsigned char)(fin ? 1 : 2), memory_order_relaxed);
    return fin;
}
#endif /* SD_X86 */

/* ---------------------------------------------------------------------------------------------------
 * Driver: one task = one query block of one (batch, head) against the keys it may see.
 * ------------------------------------------------------------------------------------------------- */

static void sd_task(const sd_job *job, const sd_scratch *sc, int64_t t) {
    const lc_sdpa_args *a = job->a;
    const int64_t d = job->d, dp = job->dp, bq = job->bq;
    const int64_t *qs = a->q_st, *ks = a->k_st, *vs = a->v_st, *os = a->o_st;
    /* A task's rows: queries i0.. of head h (rows step qs[2] / os[2]), or with job->gq (one query, GQA
     * decode) heads h.. of one kv head (rows step qs[1] / os[1]), all at the same position. */
    int64_t b, h, hk, i0, nq, rq, ro, rl;
    if (job->gq) {
        const int64_t bg = a->batch * a->kv_heads, qb = t / bg;
        b = (t % bg) / a->kv_heads, hk = t % a->kv_heads;
        h = hk * job->group + qb * bq, i0 = 0, nq = sd_min(bq, job->group - qb * bq);
        rq = qs[1], ro = os[1], rl = a->sq;
    } else {
        const int64_t bh = a->batch * a->heads;
        const int64_t qb = job->nqb - 1 - t / bh; /* the blocks seeing the most keys (causal) go first */
        b = (t % bh) / a->heads, h = t % a->heads, hk = h / job->group;
        i0 = qb * bq, nq = sd_min(bq, a->sq - i0);
        rq = qs[2], ro = os[2], rl = 1;
    }
    const int64_t npos = job->gq ? 1 : nq; /* the rows' distinct positions */
    const int64_t ncol = sd_round_up(nq, 16), nrow = sd_round_up(nq, 4);
    const int64_t L = sd_length(a, b);
    const int64_t diag0 = i0 + L - a->sq; /* the last key the block's first row sees (causal) */
    const int64_t kend = a->causal ? sd_min(L, diag0 + npos) : L;
    /* window: the first key the block's first row sees; keys left of it are never read */
    const int64_t kbeg = a->window > 0 && diag0 - a->window + 1 > 0 ? diag0 - a->window + 1 : 0;

    for (int64_t i = 0; i < ncol; i++) {
        sc->m[i] = -FLT_MAX;
        sc->l[i] = 0.0f;
    }
    if (kend > 0) {
#if SD_X86
        if (job->bf16) {
            sd_bf16_qpairs(job, b * qs[0] + h * qs[1] + i0 * qs[2], rq, nq, ncol, (uint32_t *)sc->qt);
        } else
#endif
        {
            for (int64_t i = 0; i < nq; i++) {
                sd_load_row(job, a->q, b * qs[0] + h * qs[1] + i0 * qs[2] + i * rq, qs[3], d, sc->row);
                for (int64_t p = 0; p < d; p++) sc->qt[p * bq + i] = sc->row[p] * a->scale;
            }
            for (int64_t p = 0; p < d; p++)
                for (int64_t i = nq; i < ncol; i++) sc->qt[p * bq + i] = 0.0f;
        }
        memset(sc->o, 0, (size_t)(nrow * dp) * sizeof(float));
    }
    for (int64_t j0 = kbeg; j0 < kend; j0 += job->bk) {
        const int64_t nk = sd_min(job->bk, kend - j0);
        const int diag = a->causal && j0 + nk - 1 > diag0;
        const int lwin = a->window > 0 && j0 <= diag0 + npos - 1 - a->window; /* key j0 hidden from the last row */
        const int64_t qoff = diag0 - j0;
        const float *kp = sc->kt, *vp = sc->vt;
        int64_t krs = dp, vrs = dp;
        if (job->k_direct) {
            kp = (const float *)a->k + b * ks[0] + hk * ks[1] + j0 * ks[2];
            krs = ks[2];
        } else if (!job->bf16) { /* the BF16 tile reads k and v as they are */
            for (int64_t j = 0; j < nk; j++)
                sd_load_row(job, a->k, b * ks[0] + hk * ks[1] + (j0 + j) * ks[2], ks[3], d, sc->kt + j * dp);
        }
        if (job->v_direct) {
            vp = (const float *)a->v + b * vs[0] + hk * vs[1] + j0 * vs[2];
            vrs = vs[2];
        } else if (!job->bf16) {
            for (int64_t j = 0; j < nk; j++)
                sd_load_row(job, a->v, b * vs[0] + hk * vs[1] + (j0 + j) * vs[2], vs[3], d, sc->vt + j * dp);
        }
        switch (job->isa) {
#if SD_X86
        case SD_ISA_AVX512:
            if (job->bf16) {
                const uint16_t *kb = (const uint16_t *)a->k + b * ks[0] + hk * ks[1] + j0 * ks[2];
                const uint16_t *vb = (const uint16_t *)a->v + b * vs[0] + hk * vs[1] + j0 * vs[2];
                sd_bf16_qk(job, sc, kb, ks[2], ncol, nk);
                if (a->mask_kind != LC_SDPA_MASK_NONE) sd_apply_mask(job, sc, b, h, i0, nq, j0, nk);
                sd_softmax_512(job, sc, ncol, nk, diag, lwin, qoff);
                if (sd_tile_finite(job, b, hk, j0, nk, L, NULL, vb, vs[2])) {
                    sd_bf16_vpairs(job, vb, vs[2], nk, (uint16_t *)sc->kt);
                    sd_bf16_ppairs(job, sc, ncol, nk, sc->pp);
                    sd_bf16_pv(job, sc, sc->pp, (const uint16_t *)sc->kt, nrow, nk);
                } else { /* NaN/Inf in v: the float32 p·v, which keeps hidden keys and zero weights out */
                    for (int64_t j = 0; j < nk; j++)
                        sd_load_row(job, a->v, b * vs[0] + hk * vs[1] + (j0 + j) * vs[2], 1, d, sc->vt + j * dp);
                    sd_generic_pv(job, sc, sc->vt, dp, nrow, nk, diag, qoff, 1);
                }
                break;
            }
            sd_qk_512(job, sc, kp, krs, ncol, nk);
            if (a->mask_kind != LC_SDPA_MASK_NONE) sd_apply_mask(job, sc, b, h, i0, nq, j0, nk);
            sd_softmax_512(job, sc, ncol, nk, diag, lwin, qoff);
            /* (a packed v tile: job->vfin is NULL, so this scans the nk rows loaded) */
            if (job->no_skip || sd_tile_finite(job, b, hk, j0, nk, L, vp, NULL, vrs))
                sd_pv_512(job, sc, vp, vrs, nrow, nk, diag, qoff);
            else sd_generic_pv(job, sc, vp, vrs, nrow, nk, diag, qoff, 1);
            break;
        case SD_ISA_AVX2: sd_avx2_tile(job, sc, kp, krs, vp, vrs, b, h, i0, nq, j0, nk, diag, lwin, qoff); break;
#endif
        default: sd_generic_tile(job, sc, kp, krs, vp, vrs, b, h, i0, nq, j0, nk, diag, lwin, qoff); break;
        }
    }
    /* out_i = o_i / l_i; l_i == 0 (no visible key, or only -inf scores): zeros (NaN with plain_nonfinite), lse -inf.
     * With a sink the rows are normalised in place in o and handed over instead. */
    for (int64_t i = 0; i < nq; i++) {
        const float l = sc->l[i];
        const int none = kend <= 0 || l == 0.0f;
        const float inv = none ? 0.0f : 1.0f / l;
        const int64_t off = b * os[0] + h * os[1] + i0 * os[2] + i * ro;
        float *dst = job->sink ? sc->o + i * dp : job->o_direct ? (float *)a->out + off : sc->row;
        if (none)
            for (int64_t p = 0; p < d; p++) dst[p] = a->plain_nonfinite ? NAN : 0.0f;
        else
            for (int64_t p = 0; p < d; p++) dst[p] = sc->o[i * dp + p] * inv;
        if (!job->sink && !job->o_direct) sd_store_row(job, a->out, off, os[3], d, sc->row);
        if (a->lse) a->lse[(b * a->heads + h) * a->sq + i0 + i * rl] = none ? -INFINITY : sc->m[i] + logf(l);
    }
    if (job->sink) job->sink(job->sink_ctx, b, h, i0, nq, sc->o, dp);
}

/* Whether the tasks pack k / v tiles (kt, vt, pp): not when both are read in place (float32 with unit d-strides),
 * except by the BF16 tile. */
static int sd_packs_tiles(const sd_job *job) { return !(job->k_direct && job->v_direct) || job->bf16; }

/* The scratch's floats: qt, s, o, m, l, alpha, tmp, row; then kt, vt and pp where the tiles are packed. */
static size_t sd_scratch_floats(const sd_job *job) {
    const int64_t bq = job->bq, bk = job->bk, dp = job->dp;
    const int tiles = sd_packs_tiles(job);
    return (size_t)(dp * bq + bk * bq + bq * dp + 4 * bq + dp + (tiles ? 2 * bk * dp + (bk / 2 + 1) * bq : 0));
}

static void sd_range(void *ctx, int64_t begin, int64_t end) {
    sd_job *job = (sd_job *)ctx;
    _Alignas(64) float stack_buf[SD_STACK_FLOATS]; /* small calls: no allocation */
    float *buf = stack_buf;
    if (job->scratch_floats > SD_STACK_FLOATS && !(buf = (float *)lc_aligned_alloc(job->scratch_floats * sizeof(float)))) {
        atomic_store(&job->failed, 1);
        return;
    }
    const int64_t bq = job->bq, bk = job->bk, dp = job->dp;
    const int tiles = sd_packs_tiles(job);
    sd_scratch sc;
    float *p = buf;
    sc.qt = p, p += dp * bq;
    sc.s = p, p += bk * bq;
    sc.o = p, p += bq * dp;
    sc.m = p, p += bq;
    sc.l = p, p += bq;
    sc.alpha = p, p += bq;
    sc.tmp = p, p += bq;
    sc.row = p, p += dp;
    sc.kt = tiles ? p : NULL, p += tiles ? bk * dp : 0;
    sc.vt = tiles ? p : NULL, p += tiles ? bk * dp : 0;
    sc.pp = tiles ? (uint32_t *)p : NULL;
    for (int64_t t = begin; t < end && !atomic_load_explicit(&job->failed, memory_order_relaxed); t++)
        sd_task(job, &sc, t);
    if (buf != stack_buf) lc_aligned_free(buf);
}

static int sd_is_float(lc_dtype d) { return d == LC_DTYPE_F32 || d == LC_DTYPE_F16 || d == LC_DTYPE_BF16; }

static lc_status sd_run(const lc_sdpa_args *a, lc_cpu_sdpa_sink sink, void *sink_ctx, const char **path) {
    LC_CHECK_INVARIANT(a != NULL);
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    int isa = SD_GENERIC;
#if SD_X86
    if (caps->avx512f) isa = SD_ISA_AVX512;
    else if (caps->avx2_fma) isa = SD_ISA_AVX2;
#else
    (void)caps;
#endif
    if (path) *path = isa == SD_ISA_AVX512 ? "cpu_sdpa_avx512" : isa == SD_ISA_AVX2 ? "cpu_sdpa_avx2" : "cpu_sdpa_generic";
    if (!sd_is_float(a->dtype))
        return lc_error(LC_ERR_DTYPE, "sdpa: q: expected float32, float16 or bfloat16, got %s",
                        lc_dtype_name(a->dtype));
    if (a->batch < 0 || a->heads < 0 || a->kv_heads < 0 || a->sq < 0 || a->skv < 0 || a->head_dim < 0)
        return lc_error(LC_ERR_SHAPE, "sdpa: sizes must be >= 0");
    if (a->batch == 0 || a->heads == 0 || a->sq == 0) return LC_OK; /* nothing to write */
    if (a->kv_heads <= 0 || a->heads % a->kv_heads != 0)
        return lc_error(LC_ERR_SHAPE, "sdpa: k: expected kv_heads dividing heads (%lld), got %lld",
                        (long long)a->heads, (long long)a->kv_heads);
    if (a->sq > INT32_MAX / 4 || a->skv > INT32_MAX / 4)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "sdpa: sequence lengths must be at most %d, got sq %lld, skv %lld",
                        INT32_MAX / 4, (long long)a->sq, (long long)a->skv);
    if (a->mask_kind == LC_SDPA_MASK_ADD && a->mask_dtype != LC_DTYPE_F32 && a->mask_dtype != a->dtype)
        return lc_error(LC_ERR_DTYPE, "sdpa: attn_mask: expected float32 or %s, got %s", lc_dtype_name(a->dtype),
                        lc_dtype_name(a->mask_dtype));
    if (a->key_lengths && a->key_lengths_dtype != LC_DTYPE_I32 && a->key_lengths_dtype != LC_DTYPE_I64)
        return lc_error(LC_ERR_DTYPE, "sdpa: key_lengths: expected int32 or int64, got %s",
                        lc_dtype_name(a->key_lengths_dtype));
    if (a->window < 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "sdpa: window: expected 0 (none) or >= 1, got %lld", (long long)a->window);
    LC_CHECK_INVARIANT(a->q && (a->out || sink) && (a->skv == 0 || (a->k && a->v)) &&
                       (a->mask_kind == LC_SDPA_MASK_NONE || a->mask));
    sd_job job;
    job.a = a;
    job.sink = sink;
    job.sink_ctx = sink_ctx;
    job.cvt = lc_cvt_rows_get();
    job.isa = isa;
    job.d = a->head_dim;
    job.dp = sd_round_up(a->head_dim > 0 ? a->head_dim : 1, 16);
    /* one query per sequence and several heads a kv head, no mask (it may differ by head): the heads of a kv
     * head fill the vector lanes instead of one query and padding (GQA decode reads each k/v tile once for
     * the group) */
    job.gq = a->sq == 1 && a->heads / a->kv_heads > 1 && a->mask_kind == LC_SDPA_MASK_NONE;
    job.bq = sd_min(SD_BQ, sd_round_up(job.gq ? a->heads / a->kv_heads : a->sq, 16));
    job.bk = SD_BK;
    job.nqb = ((job.gq ? a->heads / a->kv_heads : a->sq) + job.bq - 1) / job.bq;
    job.group = a->heads / a->kv_heads;
    job.k_direct = a->dtype == LC_DTYPE_F32 && a->k_st[3] == 1;
    job.v_direct = a->dtype == LC_DTYPE_F32 && a->v_st[3] == 1;
    job.o_direct = a->dtype == LC_DTYPE_F32 && a->o_st[3] == 1 && !sink;
    job.no_skip = a->plain_nonfinite && a->mask_kind == LC_SDPA_MASK_NONE && a->window <= 0;
    job.bf16 = 0;
#if SD_X86
    /* not for attention_forward / attention2d (plain_nonfinite): their contract keeps the weights in float32 */
    job.bf16 = isa == SD_ISA_AVX512 && caps->avx512bf16 && a->dtype == LC_DTYPE_BF16 && a->head_dim % 2 == 0 &&
               a->q_st[3] == 1 && a->k_st[3] == 1 && a->v_st[3] == 1 && !a->plain_nonfinite;
    if (job.bf16 && path) *path = "cpu_sdpa_avx512bf16";
#endif
    job.scratch_floats = sd_scratch_floats(&job);
    atomic_init(&job.failed, 0);

    int64_t ntasks = 0;
    if (!lc_mul_ok(a->batch, job.gq ? a->kv_heads : a->heads, &ntasks) || !lc_mul_ok(ntasks, job.nqb, &ntasks))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "sdpa: batch x heads x query blocks overflows");
    double keys = a->causal && !job.gq ? 0.5 * (double)a->skv + 1.0 : (double)a->skv;
    if (a->window > 0 && (double)(a->window + job.bq) < keys) keys = (double)(a->window + job.bq);
    const double task_flops = 4.0 * (double)job.bq * keys * (double)(job.d + 1) + 1.0;
    const int64_t grain = (int64_t)(SD_GRAIN_FLOPS / task_flops) + 1;
    /* the finite flags of v's key tiles, shared by the tasks that read a tile (AVX-512 paths reading v in
     * place, no window: tiles start at multiples of bk; only when more than one task reads each tile) */
    job.vfin = NULL, job.nvt = (a->skv + job.bk - 1) / job.bk;
    const int64_t readers = job.gq ? job.nqb : job.nqb * job.group, nflags = a->batch * a->kv_heads * job.nvt;
    if (isa == SD_ISA_AVX512 && (job.v_direct || job.bf16) && !job.no_skip && a->window == 0 && readers > 1 &&
        nflags > 0 && nflags <= ((int64_t)1 << 24))
        job.vfin = calloc((size_t)nflags, sizeof(atomic_uchar)); /* NULL on failure: each task scans, as before */
    if (ntasks <= grain || task_flops * (double)ntasks < SD_PAR_MIN_FLOPS) sd_range(&job, 0, ntasks);
    else lc_parallel_for(ntasks, grain, sd_range, &job);
    free(job.vfin);
    if (atomic_load(&job.failed))
        return lc_error(LC_ERR_OUT_OF_MEMORY, "sdpa: could not allocate %zu bytes of scratch",
                        job.scratch_floats * sizeof(float));
    return LC_OK;
}

lc_status lc_cpu_sdpa(const lc_sdpa_args *a, const char **path) { return sd_run(a, NULL, NULL, path); }

lc_status lc_cpu_sdpa_rows(const lc_sdpa_args *a, lc_cpu_sdpa_sink sink, void *ctx, const char **path) {
    LC_CHECK_INVARIANT(sink != NULL && a != NULL);
    return sd_run(a, sink, ctx, path);
}

/* ---------------------------------------------------------------------------------------------------
 * KV-cache append (host memory): byte copies of elements at each sequence's current length.
 * ------------------------------------------------------------------------------------------------- */

static void kv_copy_rows(char *dst, const char *src, const int64_t *st, int64_t b, int64_t g, int64_t n, int64_t d,
                         size_t es) {
    for (int64_t t = 0; t < n; t++) {
        const char *s = src + (size_t)(b * st[0] + g * st[1] + t * st[2]) * es;
        char *o = dst + (size_t)(t * d) * es;
        if (st[3] == 1) memcpy(o, s, (size_t)d * es);
        else
            for (int64_t p = 0; p < d; p++) memcpy(o + (size_t)p * es, s + (size_t)(p * st[3]) * es, es);
    }
}

lc_status lc_cpu_kv_append(const lc_kv_append_args *a) {
    LC_CHECK_INVARIANT(a != NULL);
    if (a->dtype != LC_DTYPE_F32 && a->dtype != LC_DTYPE_F64 && a->dtype != LC_DTYPE_F16 &&
        a->dtype != LC_DTYPE_BF16)
        return lc_error(LC_ERR_DTYPE, "kv_append: k_cache: expected a float dtype, got %s", lc_dtype_name(a->dtype));
    if (a->batch < 0 || a->kv_heads < 0 || a->max_seq < 0 || a->head_dim < 0 || a->tokens < 0)
        return lc_error(LC_ERR_SHAPE, "kv_append: sizes must be >= 0");
    if (a->batch == 0) return LC_OK;
    LC_CHECK_INVARIANT(a->lengths != NULL);
    const size_t es = lc_dtype_size(a->dtype);
    int spilled = 0;
    for (int64_t b = 0; b < a->batch; b++) {
        int64_t L = a->lengths[b];
        L = L < 0 ? 0 : L > a->max_seq ? a->max_seq : L;
        const int64_t n = sd_min(a->tokens, a->max_seq - L);
        if (n < a->tokens) spilled = 1;
        if (n > 0 && a->kv_heads > 0 && a->head_dim > 0) {
            LC_CHECK_INVARIANT(a->k_cache && a->v_cache && a->k_new && a->v_new);
            for (int64_t g = 0; g < a->kv_heads; g++) {
                const size_t row0 = (size_t)(((b * a->kv_heads + g) * a->max_seq + L) * a->head_dim) * es;
                kv_copy_rows((char *)a->k_cache + row0, (const char *)a->k_new, a->kn_st, b, g, n, a->head_dim, es);
                kv_copy_rows((char *)a->v_cache + row0, (const char *)a->v_new, a->vn_st, b, g, n, a->head_dim, es);
            }
        }
        a->lengths[b] = (int32_t)(L + (n > 0 ? n : 0));
    }
    if (spilled && a->overflow) *a->overflow = 1;
    return LC_OK;
}
