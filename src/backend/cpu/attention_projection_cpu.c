/* attention_projection_cpu.c — the CPU kernel of the fused attention_projection op (float32):
 * out [seq, pn] = attention(q, k, v) [seq, d] · w [d, pn] (+ bias [pn]), each query block's attention rows
 * projected as they are produced, so the [seq, d] attention output never reaches memory. (attention_forward
 * itself runs on sdpa's kernel, sdpa_cpu.c, through backend_cpu.c.)
 *
 * Attention part, flash style, with q, k, v contiguous [seq, d], scale 1/sqrt(d) (+ causal mask).
 * Query rows go in blocks of up to 64 (one block = one unit of lc_parallel_for work). A block walks
 * the keys in tiles of 64 with an online softmax: running max m, running sum l, and the accumulator
 * rescaled by 2^(m_old - m_new) per tile; so the scratch is O(block · head_dim) per thread whatever
 * seq is. The block's queries are stored transposed and pre-multiplied by scale·log2(e): the score
 * tile then comes out as Sᵀ[key][query] from a micro-GEMM that broadcasts k and loads q vectors, the
 * softmax bookkeeping is vertical SIMD (one lane per query, no horizontal reductions) and exp is 2^x.
 * The p·v step broadcasts Sᵀ[key][query] against rows of v (vectorised along head_dim, masked tail).
 * Causal: key tiles past the block are never visited; in a tile on the diagonal, masked scores are
 * replaced by -inf (a NaN/Inf from a masked k row never reaches the softmax) and the p·v loops stop
 * at each row's last visible key, so a masked v row is never read (p = 0 times a NaN in it would
 * make the row NaN). NaN/Inf in visible keys or values propagate as in the float64 reference.
 * The block's normalised rows go to a [bq][d] tile, then through w (+ bias) into out.
 * ISA picked at run time (lc_cpu_caps_get): AVX-512, AVX2 + FMA, or scalar; path "cpu_flash_projected".
 * Tests: tests/python/test_graph_plan.py, tests/python/test_attention_nonfinite.py (plans that fuse attention ->
 * matmul), tests/c/test_op_table.c.
 */
#include <float.h>
#include <math.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/cpu_features.h"
#include "core/internal.h"
#include "core/threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#define ATT_X86 1
#include <immintrin.h>
#define ATT_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define ATT_AVX2 __attribute__((target("avx2,fma")))
#define ATT_INLINE static inline __attribute__((always_inline))
#else
#define ATT_X86 0
#endif

#define ATT_BQ 64            /* most query rows in a block (a multiple of 16) */
#define ATT_BK 64            /* keys per tile */
#define ATT_STACK_FLOATS 4096 /* scratch up to this many floats lives on the stack (tiny problems) */
#define ATT_LOG2E 1.44269504088896340736f
#define ATT_GRAIN_FLOPS 2.0e6 /* least work worth handing to another thread */
#define ATT_PAR_MIN_FLOPS 4.0e6 /* below this a call stays on the calling thread (pool hand-off cost) */

enum { ATT_SCALAR = 0, ATT_ISA_AVX2, ATT_ISA_AVX512 };

typedef struct att_job {
    const float *q, *k, *v;
    const float *pw, *pb; /* out [seq, pn] = attn · pw [d, pn] (+ pb [pn]; pb may be NULL) */
    float *pout;
    int64_t pn;
    int64_t seq, d, dp;   /* dp: d rounded up to 16 */
    int64_t bq, bk;       /* block rows (multiple of 16), rows of the score tile */
    int64_t nblocks;
    int causal;
    int isa;
    float qscale;         /* scale · log2(e) */
    size_t scratch_floats;
    atomic_int failed;    /* a worker could not get scratch memory */
} att_job;

/* One thread's scratch: qt [d][bq] (scaled queries, transposed), s [bk][bq] (scores, then
 * probabilities), o [bq][dp] (unnormalised output), m, l, alpha [bq]. */
typedef struct att_scratch {
    float *qt, *s, *o, *m, *l, *alpha;
    float *tile; /* the block's attention rows [bq][d] */
} att_scratch;

static int64_t att_round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* ---------------------------------------------------------------------------------------------------
 * Scalar kernels (any CPU). Same layout as the SIMD ones; the loops along the query axis are simple
 * enough for the compiler's baseline auto-vectorisation.
 * ------------------------------------------------------------------------------------------------- */

/* s[j][i] = sum_p k[j][p] · qt[p][i] for j < nk, i < ncol. */
static void att_qk_scalar(const att_job *job, const att_scratch *sc, int64_t ncol, int64_t j0, int64_t nk) {
    const int64_t d = job->d, bq = job->bq;
    for (int64_t j = 0; j < nk; j++) {
        float *srow = sc->s + j * bq;
        const float *kr = job->k + (j0 + j) * d;
        for (int64_t i = 0; i < ncol; i++) srow[i] = 0.0f;
        for (int64_t p = 0; p < d; p++) {
            const float kv = kr[p];
            const float *qr = sc->qt + p * bq;
            for (int64_t i = 0; i < ncol; i++) srow[i] += kv * qr[i];
        }
    }
}

/* Online-softmax update of one tile; `qoff` = first query index - first key index (causal mask:
 * key j visible to query i iff j <= i + qoff). */
static void att_softmax_scalar(const att_job *job, const att_scratch *sc, int64_t ncol, int64_t nk, int diag,
                               int64_t qoff) {
    const int64_t bq = job->bq;
    for (int64_t i = 0; i < ncol; i++) {
        float mx = sc->m[i];
        for (int64_t j = 0; j < nk; j++) {
            float *sv = sc->s + j * bq + i;
            if (diag && j > i + qoff) *sv = -INFINITY;
            if (*sv > mx) mx = *sv;
        }
        const float al = exp2f(sc->m[i] - mx);
        float sum = 0.0f;
        for (int64_t j = 0; j < nk; j++) {
            float *sv = sc->s + j * bq + i;
            *sv = exp2f(*sv - mx);
            sum += *sv;
        }
        sc->alpha[i] = al;
        sc->m[i] = mx;
        sc->l[i] = sc->l[i] * al + sum;
    }
}

/* Keys [0, result) of a tile of nk keys that query i of the block sees: all nk off the diagonal, else
 * those with j <= i + qoff (clamped to [0, nk]). The p·v loops stop there, so a masked key's v row is
 * never read: p = 0 times a NaN/Inf in it would poison the row (0 · NaN = NaN). */
static inline int64_t att_visible(int diag, int64_t i, int64_t qoff, int64_t nk) {
    if (!diag) return nk;
    const int64_t n = i + qoff + 1;
    return n < 0 ? 0 : n > nk ? nk : n;
}

/* o[i] = o[i]·alpha[i] + sum_j s[j][i] · v[j0 + j] for i < nrow, over the keys row i sees. */
static void att_pv_scalar(const att_job *job, const att_scratch *sc, int64_t nrow, int64_t j0, int64_t nk, int diag,
                          int64_t qoff) {
    const int64_t d = job->d, dp = job->dp, bq = job->bq;
    for (int64_t i = 0; i < nrow; i++) {
        float *orow = sc->o + i * dp;
        const float al = sc->alpha[i];
        for (int64_t p = 0; p < d; p++) orow[p] *= al;
        const int64_t jn = att_visible(diag, i, qoff, nk);
        for (int64_t j = 0; j < jn; j++) {
            const float pj = sc->s[j * bq + i];
            const float *vr = job->v + (j0 + j) * d;
            for (int64_t p = 0; p < d; p++) orow[p] += pj * vr[p];
        }
    }
}

static void att_finish_scalar(const att_job *job, const att_scratch *sc, float *out, int64_t i0, int64_t nq) {
    const int64_t d = job->d, dp = job->dp;
    for (int64_t i = 0; i < nq; i++) {
        const float inv = 1.0f / sc->l[i];
        float *dst = out + (i0 + i) * d;
        for (int64_t p = 0; p < d; p++) dst[p] = sc->o[i * dp + p] * inv;
    }
}

#if ATT_X86
/* ---------------------------------------------------------------------------------------------------
 * 2^x for x <= 0 (the only arguments here): x = n + r, n = round(x), |r| <= 1/2, 2^r by a degree-6
 * polynomial (relative error about 2e-8 before float rounding). Below -126 the result is 0 (no
 * denormals); NaN stays NaN.
 * ------------------------------------------------------------------------------------------------- */
#define ATT_EXP2_C1 6.931471825e-01f
#define ATT_EXP2_C2 2.402264625e-01f
#define ATT_EXP2_C3 5.550328642e-02f
#define ATT_EXP2_C4 9.618489072e-03f
#define ATT_EXP2_C5 1.339992974e-03f
#define ATT_EXP2_C6 1.534579205e-04f

ATT_AVX512 ATT_INLINE __m512 att_exp2_512(__m512 x) {
    const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-150.0f), x); /* NaN x: max returns x */
    const __m512 n = _mm512_roundscale_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_sub_ps(xc, n);
    __m512 p = _mm512_set1_ps(ATT_EXP2_C6);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ATT_EXP2_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ATT_EXP2_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ATT_EXP2_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ATT_EXP2_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ATT_EXP2_C1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_NLT_UQ);
    return _mm512_maskz_scalef_ps(keep, p, n);
}

ATT_AVX2 ATT_INLINE __m256 att_exp2_256(__m256 x) {
    const __m256 xc = _mm256_max_ps(_mm256_set1_ps(-127.0f), x);
    const __m256 n = _mm256_round_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_sub_ps(xc, n);
    __m256 p = _mm256_set1_ps(ATT_EXP2_C6);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ATT_EXP2_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ATT_EXP2_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ATT_EXP2_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ATT_EXP2_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ATT_EXP2_C1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    /* 2^n with n in [-127, 0] built in the exponent field (n = -127 gives +0). */
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 res = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    res = _mm256_and_ps(res, _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_NLT_UQ));
    return _mm256_or_ps(res, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)); /* NaN in, NaN out */
}

/* ---------------------------------------------------------------------------------------------------
 * AVX-512 kernels: vectors of 16 queries (score tile) or 16 head_dim elements (p·v).
 * ------------------------------------------------------------------------------------------------- */

/* s[j..j+mr)[16v..] = sum_p k[j][p] · qt[p][16v..]: mr keys × nv query vectors in registers. */
ATT_AVX512 ATT_INLINE void att_qk_512_blk(const float *qt, int64_t bq, const float *kr, int64_t d, float *s,
                                          const int mr, const int nv) {
    __m512 acc[6][4];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();
    for (int64_t p = 0; p < d; p++) {
        __m512 qv[4];
        for (int v = 0; v < nv; v++) qv[v] = _mm512_loadu_ps(qt + p * bq + 16 * v);
        for (int r = 0; r < mr; r++) {
            const __m512 b = _mm512_set1_ps(kr[r * d + p]);
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(b, qv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) _mm512_storeu_ps(s + r * bq + 16 * v, acc[r][v]);
}

/* The score tile for nk keys: blocks of 6 keys, then 4, then single keys. */
ATT_AVX512 ATT_INLINE void att_qk_512_nv(const float *qt, int64_t bq, const float *k, int64_t d, float *s,
                                         int64_t nk, const int nv) {
    int64_t j = 0;
    for (; j + 6 <= nk; j += 6) att_qk_512_blk(qt, bq, k + j * d, d, s + j * bq, 6, nv);
    if (j + 4 <= nk) {
        att_qk_512_blk(qt, bq, k + j * d, d, s + j * bq, 4, nv);
        j += 4;
    }
    for (; j < nk; j++) att_qk_512_blk(qt, bq, k + j * d, d, s + j * bq, 1, nv);
}

ATT_AVX512 static void att_qk_512(const att_job *job, const att_scratch *sc, int64_t ncol, int64_t j0, int64_t nk) {
    const float *k = job->k + j0 * job->d;
    const int64_t d = job->d, bq = job->bq;
    switch (ncol / 16) {
    case 1: att_qk_512_nv(sc->qt, bq, k, d, sc->s, nk, 1); break;
    case 2: att_qk_512_nv(sc->qt, bq, k, d, sc->s, nk, 2); break;
    case 3: att_qk_512_nv(sc->qt, bq, k, d, sc->s, nk, 3); break;
    default: att_qk_512_nv(sc->qt, bq, k, d, sc->s, nk, 4); break;
    }
}

ATT_AVX512 static void att_softmax_512(const att_job *job, const att_scratch *sc, int64_t ncol, int64_t nk,
                                       int diag, int64_t qoff) {
    const int64_t bq = job->bq;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t c = 0; c < ncol; c += 16) {
        float *s = sc->s + c;
        const __m512 mold = _mm512_loadu_ps(sc->m + c);
        __m512 mx0 = mold, mx1 = mold;
        if (diag) {
            /* key j visible to query c+lane iff j <= c + lane + qoff */
            const __m512i qi = _mm512_add_epi32(lane, _mm512_set1_epi32((int)(c + qoff)));
            const __m512 ninf = _mm512_set1_ps(-INFINITY);
            for (int64_t j = 0; j < nk; j++) {
                const __mmask16 hide = _mm512_cmpgt_epi32_mask(_mm512_set1_epi32((int)j), qi);
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
        const __m512 al = att_exp2_512(_mm512_sub_ps(mold, mx));
        __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
        int64_t j = 0;
        for (; j + 2 <= nk; j += 2) {
            const __m512 p0 = att_exp2_512(_mm512_sub_ps(_mm512_loadu_ps(s + j * bq), mx));
            const __m512 p1 = att_exp2_512(_mm512_sub_ps(_mm512_loadu_ps(s + (j + 1) * bq), mx));
            _mm512_storeu_ps(s + j * bq, p0);
            _mm512_storeu_ps(s + (j + 1) * bq, p1);
            sum0 = _mm512_add_ps(sum0, p0);
            sum1 = _mm512_add_ps(sum1, p1);
        }
        if (j < nk) {
            const __m512 p0 = att_exp2_512(_mm512_sub_ps(_mm512_loadu_ps(s + j * bq), mx));
            _mm512_storeu_ps(s + j * bq, p0);
            sum0 = _mm512_add_ps(sum0, p0);
        }
        _mm512_storeu_ps(sc->alpha + c, al);
        _mm512_storeu_ps(sc->m + c, mx);
        _mm512_storeu_ps(sc->l + c, _mm512_fmadd_ps(_mm512_loadu_ps(sc->l + c), al, _mm512_add_ps(sum0, sum1)));
    }
}

static inline __mmask16 att_mask16(int64_t rem) { return rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u); }

/* o[i][p0 + 16v..] = o·alpha[i] + sum_j s[j][i] · v[j][p0 + 16v..] for 4 rows at a time, over the keys
 * each row sees: keys [0, jall) are visible to all 4 rows, keys [jall, jany) to some (per-row test). */
ATT_AVX512 ATT_INLINE void att_pv_512_nv(const att_job *job, const att_scratch *sc, int64_t nrow, const float *v,
                                         int64_t nk, int diag, int64_t qoff, int64_t p0, const int nv) {
    const int64_t d = job->d, dp = job->dp, bq = job->bq;
    __mmask16 mk[4];
    for (int u = 0; u < nv; u++) mk[u] = att_mask16(d - p0 - 16 * u);
    for (int64_t i = 0; i < nrow; i += 4) {
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++) {
            const __m512 al = _mm512_set1_ps(sc->alpha[i + r]);
            for (int u = 0; u < nv; u++)
                acc[r][u] = _mm512_mul_ps(_mm512_loadu_ps(sc->o + (i + r) * dp + p0 + 16 * u), al);
        }
        const float *sp = sc->s + i;
        const int64_t jall = att_visible(diag, i, qoff, nk), jany = att_visible(diag, i + 3, qoff, nk);
        for (int64_t j = 0; j < jall; j++) {
            __m512 x[4];
            for (int u = 0; u < nv; u++) x[u] = _mm512_maskz_loadu_ps(mk[u], v + j * d + p0 + 16 * u);
            for (int r = 0; r < 4; r++) {
                const __m512 b = _mm512_set1_ps(sp[j * bq + r]);
                for (int u = 0; u < nv; u++) acc[r][u] = _mm512_fmadd_ps(b, x[u], acc[r][u]);
            }
        }
        for (int64_t j = jall; j < jany; j++) {
            __m512 x[4];
            for (int u = 0; u < nv; u++) x[u] = _mm512_maskz_loadu_ps(mk[u], v + j * d + p0 + 16 * u);
            for (int r = 0; r < 4; r++) {
                if (j > i + r + qoff) continue; /* masked for row i + r */
                const __m512 b = _mm512_set1_ps(sp[j * bq + r]);
                for (int u = 0; u < nv; u++) acc[r][u] = _mm512_fmadd_ps(b, x[u], acc[r][u]);
            }
        }
        for (int r = 0; r < 4; r++)
            for (int u = 0; u < nv; u++) _mm512_storeu_ps(sc->o + (i + r) * dp + p0 + 16 * u, acc[r][u]);
    }
}

ATT_AVX512 static void att_pv_512(const att_job *job, const att_scratch *sc, int64_t nrow, int64_t j0, int64_t nk,
                                  int diag, int64_t qoff) {
    const float *v = job->v + j0 * job->d;
    for (int64_t p0 = 0; p0 < job->dp; p0 += 64) {
        switch ((job->dp - p0) / 16) {
        case 1: att_pv_512_nv(job, sc, nrow, v, nk, diag, qoff, p0, 1); break;
        case 2: att_pv_512_nv(job, sc, nrow, v, nk, diag, qoff, p0, 2); break;
        case 3: att_pv_512_nv(job, sc, nrow, v, nk, diag, qoff, p0, 3); break;
        default: att_pv_512_nv(job, sc, nrow, v, nk, diag, qoff, p0, 4); break;
        }
    }
}

ATT_AVX512 static void att_finish_512(const att_job *job, const att_scratch *sc, float *out, int64_t i0, int64_t nq) {
    const int64_t d = job->d, dp = job->dp;
    for (int64_t i = 0; i < nq; i++) {
        const __m512 inv = _mm512_set1_ps(1.0f / sc->l[i]);
        float *dst = out + (i0 + i) * d;
        for (int64_t p = 0; p < d; p += 16)
            _mm512_mask_storeu_ps(dst + p, att_mask16(d - p), _mm512_mul_ps(_mm512_loadu_ps(sc->o + i * dp + p), inv));
    }
}

/* ---------------------------------------------------------------------------------------------------
 * AVX2 kernels: vectors of 8.
 * ------------------------------------------------------------------------------------------------- */

/* s[j][0..16) for 6 keys × 2 query vectors per register block. */
ATT_AVX2 static void att_qk_256(const att_job *job, const att_scratch *sc, int64_t ncol, int64_t j0, int64_t nk) {
    const int64_t d = job->d, bq = job->bq;
    const float *k = job->k + j0 * d;
    for (int64_t c = 0; c < ncol; c += 16) {
        const float *qt = sc->qt + c;
        float *s = sc->s + c;
        int64_t j = 0;
        for (; j + 6 <= nk; j += 6) {
            __m256 acc[6][2];
            for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
            const float *kr = k + j * d;
            for (int64_t p = 0; p < d; p++) {
                const __m256 q0 = _mm256_loadu_ps(qt + p * bq), q1 = _mm256_loadu_ps(qt + p * bq + 8);
                for (int r = 0; r < 6; r++) {
                    const __m256 b = _mm256_broadcast_ss(kr + r * d + p);
                    acc[r][0] = _mm256_fmadd_ps(b, q0, acc[r][0]);
                    acc[r][1] = _mm256_fmadd_ps(b, q1, acc[r][1]);
                }
            }
            for (int r = 0; r < 6; r++) {
                _mm256_storeu_ps(s + (j + r) * bq, acc[r][0]);
                _mm256_storeu_ps(s + (j + r) * bq + 8, acc[r][1]);
            }
        }
        for (; j < nk; j++) {
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            const float *kr = k + j * d;
            for (int64_t p = 0; p < d; p++) {
                const __m256 b = _mm256_broadcast_ss(kr + p);
                a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(qt + p * bq), a0);
                a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(qt + p * bq + 8), a1);
            }
            _mm256_storeu_ps(s + j * bq, a0);
            _mm256_storeu_ps(s + j * bq + 8, a1);
        }
    }
}

ATT_AVX2 static void att_softmax_256(const att_job *job, const att_scratch *sc, int64_t ncol, int64_t nk, int diag,
                                     int64_t qoff) {
    const int64_t bq = job->bq;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t c = 0; c < ncol; c += 8) {
        float *s = sc->s + c;
        const __m256 mold = _mm256_loadu_ps(sc->m + c);
        __m256 mx0 = mold, mx1 = mold;
        if (diag) {
            const __m256i qi = _mm256_add_epi32(lane, _mm256_set1_epi32((int)(c + qoff)));
            const __m256 ninf = _mm256_set1_ps(-INFINITY);
            for (int64_t j = 0; j < nk; j++) {
                const __m256 hide = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)j), qi));
                const __m256 sv = _mm256_blendv_ps(_mm256_loadu_ps(s + j * bq), ninf, hide);
                _mm256_storeu_ps(s + j * bq, sv);
                mx0 = _mm256_max_ps(mx0, sv);
            }
        } else {
            int64_t j = 0;
            for (; j + 2 <= nk; j += 2) {
                mx0 = _mm256_max_ps(mx0, _mm256_loadu_ps(s + j * bq));
                mx1 = _mm256_max_ps(mx1, _mm256_loadu_ps(s + (j + 1) * bq));
            }
            if (j < nk) mx0 = _mm256_max_ps(mx0, _mm256_loadu_ps(s + j * bq));
        }
        const __m256 mx = _mm256_max_ps(mx0, mx1);
        const __m256 al = att_exp2_256(_mm256_sub_ps(mold, mx));
        __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j + 2 <= nk; j += 2) {
            const __m256 p0 = att_exp2_256(_mm256_sub_ps(_mm256_loadu_ps(s + j * bq), mx));
            const __m256 p1 = att_exp2_256(_mm256_sub_ps(_mm256_loadu_ps(s + (j + 1) * bq), mx));
            _mm256_storeu_ps(s + j * bq, p0);
            _mm256_storeu_ps(s + (j + 1) * bq, p1);
            sum0 = _mm256_add_ps(sum0, p0);
            sum1 = _mm256_add_ps(sum1, p1);
        }
        if (j < nk) {
            const __m256 p0 = att_exp2_256(_mm256_sub_ps(_mm256_loadu_ps(s + j * bq), mx));
            _mm256_storeu_ps(s + j * bq, p0);
            sum0 = _mm256_add_ps(sum0, p0);
        }
        _mm256_storeu_ps(sc->alpha + c, al);
        _mm256_storeu_ps(sc->m + c, mx);
        _mm256_storeu_ps(sc->l + c, _mm256_fmadd_ps(_mm256_loadu_ps(sc->l + c), al, _mm256_add_ps(sum0, sum1)));
    }
}

/* Lane mask for a masked load/store of the first `rem` floats of 8 (rem >= 1). */
ATT_AVX2 ATT_INLINE __m256i att_mask8(int64_t rem) {
    const int64_t n = rem >= 8 ? 8 : rem;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* As att_pv_512_nv with vectors of 8. */
ATT_AVX2 ATT_INLINE void att_pv_256_nv(const att_job *job, const att_scratch *sc, int64_t nrow, const float *v,
                                       int64_t nk, int diag, int64_t qoff, int64_t p0, const int nv) {
    const int64_t d = job->d, dp = job->dp, bq = job->bq;
    __m256i mk[3];
    for (int u = 0; u < nv; u++) mk[u] = att_mask8(d - p0 - 8 * u);
    for (int64_t i = 0; i < nrow; i += 4) {
        __m256 acc[4][3];
        for (int r = 0; r < 4; r++) {
            const __m256 al = _mm256_set1_ps(sc->alpha[i + r]);
            for (int u = 0; u < nv; u++)
                acc[r][u] = _mm256_mul_ps(_mm256_loadu_ps(sc->o + (i + r) * dp + p0 + 8 * u), al);
        }
        const float *sp = sc->s + i;
        const int64_t jall = att_visible(diag, i, qoff, nk), jany = att_visible(diag, i + 3, qoff, nk);
        for (int64_t j = 0; j < jall; j++) {
            __m256 x[3];
            for (int u = 0; u < nv; u++) x[u] = _mm256_maskload_ps(v + j * d + p0 + 8 * u, mk[u]);
            for (int r = 0; r < 4; r++) {
                const __m256 b = _mm256_broadcast_ss(sp + j * bq + r);
                for (int u = 0; u < nv; u++) acc[r][u] = _mm256_fmadd_ps(b, x[u], acc[r][u]);
            }
        }
        for (int64_t j = jall; j < jany; j++) {
            __m256 x[3];
            for (int u = 0; u < nv; u++) x[u] = _mm256_maskload_ps(v + j * d + p0 + 8 * u, mk[u]);
            for (int r = 0; r < 4; r++) {
                if (j > i + r + qoff) continue; /* masked for row i + r */
                const __m256 b = _mm256_broadcast_ss(sp + j * bq + r);
                for (int u = 0; u < nv; u++) acc[r][u] = _mm256_fmadd_ps(b, x[u], acc[r][u]);
            }
        }
        for (int r = 0; r < 4; r++)
            for (int u = 0; u < nv; u++) _mm256_storeu_ps(sc->o + (i + r) * dp + p0 + 8 * u, acc[r][u]);
    }
}

ATT_AVX2 static void att_pv_256(const att_job *job, const att_scratch *sc, int64_t nrow, int64_t j0, int64_t nk,
                                int diag, int64_t qoff) {
    const float *v = job->v + j0 * job->d;
    /* p0 - d can be >= 8 in the padded tail (dp rounds to 16): skip vectors wholly past d. */
    const int64_t nvec = (job->d + 7) / 8;
    for (int64_t u0 = 0; u0 < nvec; u0 += 3) {
        switch (nvec - u0) {
        case 1: att_pv_256_nv(job, sc, nrow, v, nk, diag, qoff, 8 * u0, 1); break;
        case 2: att_pv_256_nv(job, sc, nrow, v, nk, diag, qoff, 8 * u0, 2); break;
        default: att_pv_256_nv(job, sc, nrow, v, nk, diag, qoff, 8 * u0, 3); break;
        }
    }
}

ATT_AVX2 static void att_finish_256(const att_job *job, const att_scratch *sc, float *out, int64_t i0, int64_t nq) {
    const int64_t d = job->d, dp = job->dp;
    for (int64_t i = 0; i < nq; i++) {
        const __m256 inv = _mm256_set1_ps(1.0f / sc->l[i]);
        float *dst = out + (i0 + i) * d;
        for (int64_t p = 0; p < d; p += 8)
            _mm256_maskstore_ps(dst + p, att_mask8(d - p), _mm256_mul_ps(_mm256_loadu_ps(sc->o + i * dp + p), inv));
    }
}
#endif /* ATT_X86 */

/* ---------------------------------------------------------------------------------------------------
 * Driver: one query block against all (visible) keys.
 * ------------------------------------------------------------------------------------------------- */

/* pout rows [i0, i0 + nq) = tile · pw (+ pb): row by row, the inner loop over pn vectorises. */
static void att_project(const att_job *job, const att_scratch *sc, int64_t i0, int64_t nq) {
    const int64_t d = job->d, pn = job->pn;
    for (int64_t i = 0; i < nq; i++) {
        float *restrict dst = job->pout + (i0 + i) * pn;
        for (int64_t c = 0; c < pn; c++) dst[c] = job->pb ? job->pb[c] : 0.0f;
        const float *t = sc->tile + i * d;
        for (int64_t p = 0; p < d; p++) {
            const float a = t[p];
            const float *restrict w = job->pw + p * pn;
            for (int64_t c = 0; c < pn; c++) dst[c] += a * w[c];
        }
    }
}

static void att_block(const att_job *job, const att_scratch *sc, int64_t i0) {
    const int64_t d = job->d, dp = job->dp, bq = job->bq;
    const int64_t nq = job->seq - i0 < bq ? job->seq - i0 : bq;
    const int64_t ncol = att_round_up(nq, 16); /* query lanes computed (the rest of the block is unused) */
    const int64_t nrow = att_round_up(nq, 4);  /* accumulator rows updated */
    const float *q = job->q + i0 * d;

    for (int64_t p = 0; p < d; p++) {
        float *dst = sc->qt + p * bq;
        for (int64_t i = 0; i < nq; i++) dst[i] = q[i * d + p] * job->qscale;
        for (int64_t i = nq; i < ncol; i++) dst[i] = 0.0f;
    }
    for (int64_t i = 0; i < ncol; i++) {
        sc->m[i] = -FLT_MAX;
        sc->l[i] = 0.0f;
    }
    memset(sc->o, 0, (size_t)(nrow * dp) * sizeof(float));

    const int64_t kend = job->causal ? i0 + nq : job->seq;
    for (int64_t j0 = 0; j0 < kend; j0 += job->bk) {
        const int64_t nk = kend - j0 < job->bk ? kend - j0 : job->bk;
        const int diag = job->causal && j0 + nk - 1 > i0;
        switch (job->isa) {
#if ATT_X86
        case ATT_ISA_AVX512:
            att_qk_512(job, sc, ncol, j0, nk);
            att_softmax_512(job, sc, ncol, nk, diag, i0 - j0);
            att_pv_512(job, sc, nrow, j0, nk, diag, i0 - j0);
            break;
        case ATT_ISA_AVX2:
            att_qk_256(job, sc, ncol, j0, nk);
            att_softmax_256(job, sc, ncol, nk, diag, i0 - j0);
            att_pv_256(job, sc, nrow, j0, nk, diag, i0 - j0);
            break;
#endif
        default:
            att_qk_scalar(job, sc, ncol, j0, nk);
            att_softmax_scalar(job, sc, ncol, nk, diag, i0 - j0);
            att_pv_scalar(job, sc, nrow, j0, nk, diag, i0 - j0);
            break;
        }
    }
    /* The block's rows go to the tile and straight on through pw: the [seq, d] attention output never
     * reaches memory. */
    switch (job->isa) {
#if ATT_X86
    case ATT_ISA_AVX512: att_finish_512(job, sc, sc->tile, 0, nq); break;
    case ATT_ISA_AVX2: att_finish_256(job, sc, sc->tile, 0, nq); break;
#endif
    default: att_finish_scalar(job, sc, sc->tile, 0, nq); break;
    }
    att_project(job, sc, i0, nq);
}

static void att_range(void *ctx, int64_t begin, int64_t end) {
    att_job *job = (att_job *)ctx;
    alignas(64) float stack_buf[ATT_STACK_FLOATS];
    float *buf = stack_buf;
    if (job->scratch_floats > ATT_STACK_FLOATS) {
        buf = (float *)lc_aligned_alloc(job->scratch_floats * sizeof(float));
        if (!buf) {
            atomic_store(&job->failed, 1);
            return;
        }
    }
    const int64_t bq = job->bq;
    att_scratch sc;
    sc.qt = buf;
    sc.s = sc.qt + job->d * bq;
    sc.o = sc.s + job->bk * bq;
    sc.m = sc.o + bq * job->dp;
    sc.l = sc.m + bq;
    sc.alpha = sc.l + bq;
    sc.tile = sc.alpha + bq;
    for (int64_t t = begin; t < end; t++) {
        /* causal: the last blocks see the most keys; hand them out first for balance */
        const int64_t b = job->causal ? job->nblocks - 1 - t : t;
        att_block(job, &sc, b * bq);
    }
    if (buf != stack_buf) lc_aligned_free(buf);
}

/* The flash attention of args, each query block's rows projected through pw (+ pb) into pout [seq, pn]
 * (args->out unused). */
static lc_status att_run(const lc_attention_args *args, const float *pw, const float *pb, float *pout, int64_t pn) {
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    int isa = ATT_SCALAR;
#if ATT_X86
    if (caps->avx512f) isa = ATT_ISA_AVX512;
    else if (caps->avx2_fma) isa = ATT_ISA_AVX2;
#else
    (void)caps;
#endif
    const int64_t seq = args->seq, d = args->head_dim;
    if (seq <= 0 || d <= 0) return LC_OK; /* nothing to write */
    if (seq > INT32_MAX / 2)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "attention_projection: seq: expected at most %d, got %lld", INT32_MAX / 2,
                        (long long)seq);

    att_job job;
    job.q = args->q;
    job.k = args->k;
    job.v = args->v;
    job.pw = pw;
    job.pb = pb;
    job.pout = pout;
    job.pn = pn;
    job.seq = seq;
    job.d = d;
    job.dp = att_round_up(d, 16);
    job.bq = att_round_up(seq, 16) < ATT_BQ ? att_round_up(seq, 16) : ATT_BQ;
    job.bk = seq < ATT_BK ? seq : ATT_BK;
    job.nblocks = (seq + job.bq - 1) / job.bq;
    job.causal = args->causal != 0;
    job.isa = isa;
    job.qscale = args->scale * ATT_LOG2E;
    job.scratch_floats = (size_t)(d * job.bq + job.bk * job.bq + job.bq * job.dp + 3 * job.bq + job.bq * d);
    atomic_init(&job.failed, 0);

    /* Grain: enough blocks per chunk that a chunk is worth a thread (tiny problems stay inline). */
    const double keys = job.causal ? 0.5 * (double)seq : (double)seq;
    const double block_flops = 4.0 * (double)job.bq * keys * (double)d;
    const int64_t grain = (int64_t)(ATT_GRAIN_FLOPS / block_flops) + 1;
    if (job.nblocks <= grain || block_flops * (double)job.nblocks < ATT_PAR_MIN_FLOPS) att_range(&job, 0, job.nblocks);
    else lc_parallel_for(job.nblocks, grain, att_range, &job);

    if (atomic_load(&job.failed))
        return lc_error(LC_ERR_OUT_OF_MEMORY, "attention_projection: could not allocate %zu bytes of scratch",
                        job.scratch_floats * sizeof(float));
    return LC_OK;
}

lc_status lc_cpu_attention_projection(const lc_attention_projection_args *args, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && args->att.dtype == LC_DTYPE_F32); /* the table: float32 only */
    lc_status st = att_run(&args->att, args->w, args->bias, args->out, args->pn);
    if (st == LC_OK && path) *path = "cpu_flash_projected";
    return st;
}
