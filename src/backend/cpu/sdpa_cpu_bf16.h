/* sdpa_cpu_bf16.h — the AVX-512 BF16 tile of the CPU sdpa, included by sdpa_cpu.c (which owns sd_job and
 * sd_scratch). Taken for bfloat16 q, k, v with unit d-stride and an even head_dim on a CPU with AVX512_BF16
 * (path "cpu_sdpa_avx512bf16"; LC_CPU_DISABLE=avx512bf16 falls back to the float32 tile). Both products run
 * on VDPBF16PS (two products a lane and instruction, float32 accumulation):
 *  - scores: Sᵀ[key][query] = scale · Σ_p (k[key][2p], k[key][2p+1]) · (q[query][2p], q[query][2p+1]): k's
 *    pairs are broadcast from its rows in place, q's pairs are transposed once per task into qp[p][query]
 *    (32-bit words, in the scratch's qt area);
 *  - p·v: o[query][c] += Σ_j (P[query][2j], P[query][2j+1]) · (v[2j][c], v[2j+1][c]): P rounded to bfloat16
 *    (as flash attention does; sdpa_tol allows it; VCVTNE2PS2BF16 flushes weights below 2^-126 to 0) into
 *    pp[j][query] words, v's tile interleaved by word permutes into vp[j][c][2] (in the kt area); an odd
 *    key count pads the last pair with a zero weight and a zero row.
 * The masks, the softmax, m/l/alpha and the final normalisation are the float32 AVX-512 ones. Hidden keys
 * weigh exactly 0, so the pair products take every key of the tile for every row; a v tile holding NaN/Inf
 * (where 0·NaN would leak into rows that do not see it) goes through the float32 p·v on converted rows.
 * Tests: tests/c/test_sdpa_cpu.c (also under LC_CPU_DISABLE=avx512bf16), tests/python/test_sdpa*.py. */
#define SD_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

/* Word permute: the 16 words of a (low half) and b (high half) interleaved a0 b0 a1 b1 ... */
static const uint16_t sd_bf16_ilv[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                         8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

/* qp[p][i] = the pair (q[i][2p], q[i][2p+1]) as one word, rows i < nq of the block; 0 for nq <= i < ncol. */
static void sd_bf16_qpairs(const sd_job *job, int64_t off, int64_t rs, int64_t nq, int64_t ncol, uint32_t *qp) {
    const uint16_t *q = (const uint16_t *)job->a->q + off;
    const int64_t np = job->d / 2, bq = job->bq;
    for (int64_t i = 0; i < nq; i++)
        for (int64_t p = 0; p < np; p++) memcpy(&qp[p * bq + i], q + i * rs + 2 * p, 4);
    for (int64_t p = 0; p < np; p++)
        for (int64_t i = nq; i < ncol; i++) qp[p * bq + i] = 0;
}

/* s[r][16v..] = scale · Σ_p k-pair(r, p) · qp[p][16v..] for mr keys (rows of k, stride krs) x nv vectors. */
SD_BF16 SD_INLINE void sd_bf16_qk_blk(const uint32_t *qp, int64_t bq, const uint16_t *kr, int64_t krs, int64_t np,
                                      float *s, float scale, const int mr, const int nv) {
    __m512 acc[6][4];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();
    for (int64_t p = 0; p < np; p++) {
        __m512bh qv[4];
        for (int v = 0; v < nv; v++) qv[v] = (__m512bh)_mm512_loadu_si512((const void *)(qp + p * bq + 16 * v));
        for (int r = 0; r < mr; r++) {
            uint32_t w;
            memcpy(&w, kr + r * krs + 2 * p, 4);
            const __m512bh kb = (__m512bh)_mm512_set1_epi32((int)w);
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], kb, qv[v]);
        }
    }
    const __m512 sc = _mm512_set1_ps(scale);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) _mm512_storeu_ps(s + r * bq + 16 * v, _mm512_mul_ps(acc[r][v], sc));
}

SD_BF16 SD_INLINE void sd_bf16_qk_nv(const uint32_t *qp, int64_t bq, const uint16_t *k, int64_t krs, int64_t np,
                                     float *s, float scale, int64_t nk, const int nv) {
    int64_t j = 0;
    for (; j + 6 <= nk; j += 6) sd_bf16_qk_blk(qp, bq, k + j * krs, krs, np, s + j * bq, scale, 6, nv);
    if (j + 4 <= nk) {
        sd_bf16_qk_blk(qp, bq, k + j * krs, krs, np, s + j * bq, scale, 4, nv);
        j += 4;
    }
    for (; j < nk; j++) sd_bf16_qk_blk(qp, bq, k + j * krs, krs, np, s + j * bq, scale, 1, nv);
}

SD_BF16 static void sd_bf16_qk(const sd_job *job, const sd_scratch *sc, const uint16_t *kp, int64_t krs, int64_t ncol,
                               int64_t nk) {
    const uint32_t *qp = (const uint32_t *)sc->qt;
    const int64_t np = job->d / 2, bq = job->bq;
    const float scale = job->a->scale;
    switch (ncol / 16) {
    case 1: sd_bf16_qk_nv(qp, bq, kp, krs, np, sc->s, scale, nk, 1); break;
    case 2: sd_bf16_qk_nv(qp, bq, kp, krs, np, sc->s, scale, nk, 2); break;
    case 3: sd_bf16_qk_nv(qp, bq, kp, krs, np, sc->s, scale, nk, 3); break;
    default: sd_bf16_qk_nv(qp, bq, kp, krs, np, sc->s, scale, nk, 4); break;
    }
}

/* 1 when no element of the nk rows (stride rs, d values each) is NaN or Inf (exponent bits all ones). */
SD_BF16 static int sd_bf16_finite(const uint16_t *v, int64_t rs, int64_t nk, int64_t d) {
    uint16_t bad = 0;
    for (int64_t j = 0; j < nk; j++)
        for (int64_t c = 0; c < d; c++) bad |= (uint16_t)((v[j * rs + c] & 0x7f80u) == 0x7f80u);
    return bad == 0;
}

/* vp[j][c][2] = (v[2j][c], v[2j+1][c]) for c < dp (0 past d and for the pad row of an odd nk). */
SD_BF16 static void sd_bf16_vpairs(const sd_job *job, const uint16_t *v, int64_t rs, int64_t nk, uint16_t *vp) {
    const int64_t d = job->d, dp = job->dp;
    const __m512i idx = _mm512_loadu_si512((const void *)sd_bf16_ilv);
    for (int64_t j = 0; 2 * j < nk; j++) {
        const uint16_t *r0 = v + 2 * j * rs, *r1 = 2 * j + 1 < nk ? r0 + rs : NULL;
        for (int64_t c = 0; c < dp; c += 16) {
            const __mmask16 m = (__mmask16)(d - c >= 16 ? 0xffff : d - c <= 0 ? 0 : (1u << (d - c)) - 1u);
            const __m256i a = _mm256_maskz_loadu_epi16(m, r0 + c);
            const __m256i b = r1 ? _mm256_maskz_loadu_epi16(m, r1 + c) : _mm256_setzero_si256();
            const __m512i ab = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
            _mm512_storeu_si512((void *)(vp + (j * dp + c) * 2), _mm512_permutexvar_epi16(idx, ab));
        }
    }
}

/* pp[j][i] = (P[2j][i], P[2j+1][i]) in bfloat16 from the weights tile s (key-major), i < ncol. */
SD_BF16 static void sd_bf16_ppairs(const sd_job *job, const sd_scratch *sc, int64_t ncol, int64_t nk, uint32_t *pp) {
    const int64_t bq = job->bq;
    const __m512i idx = _mm512_loadu_si512((const void *)sd_bf16_ilv);
    for (int64_t j = 0; 2 * j < nk; j++) {
        const float *s0 = sc->s + 2 * j * bq, *s1 = 2 * j + 1 < nk ? s0 + bq : NULL;
        for (int64_t i = 0; i < ncol; i += 16) {
            const __m512 lo = _mm512_loadu_ps(s0 + i), hi = s1 ? _mm512_loadu_ps(s1 + i) : _mm512_setzero_ps();
            const __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* words 0-15: lo, 16-31: hi */
            _mm512_storeu_si512((void *)(pp + j * bq + i), _mm512_permutexvar_epi16(idx, ab));
        }
    }
}

/* o[i][p0 + 16u..] = o·alpha[i] + Σ_j pp[j][i] · vp[j][p0 + 16u..], 4 rows at a time over npair key pairs. */
SD_BF16 SD_INLINE void sd_bf16_pv_nv(const sd_job *job, const sd_scratch *sc, const uint32_t *pp, const uint16_t *vp,
                                     int64_t nrow, int64_t npair, int64_t p0, const int nv) {
    const int64_t dp = job->dp, bq = job->bq;
    for (int64_t i = 0; i < nrow; i += 4) {
        __m512 acc[4][4];
        sd_o_rescaled_512(sc, i, dp, p0, nv, acc);
        for (int64_t j = 0; j < npair; j++) {
            __m512bh x[4];
            for (int u = 0; u < nv; u++)
                x[u] = (__m512bh)_mm512_loadu_si512((const void *)(vp + (j * dp + p0 + 16 * u) * 2));
            for (int r = 0; r < 4; r++) {
                const __m512bh w = (__m512bh)_mm512_set1_epi32((int)pp[j * bq + i + r]);
                for (int u = 0; u < nv; u++) acc[r][u] = _mm512_dpbf16_ps(acc[r][u], w, x[u]);
            }
        }
        sd_o_store_512(sc, i, dp, p0, nv, acc);
    }
}

SD_BF16 static void sd_bf16_pv(const sd_job *job, const sd_scratch *sc, const uint32_t *pp, const uint16_t *vp,
                               int64_t nrow, int64_t nk) {
    const int64_t npair = (nk + 1) / 2;
    for (int64_t p0 = 0; p0 < job->dp; p0 += 64) {
        switch ((job->dp - p0) / 16) {
        case 1: sd_bf16_pv_nv(job, sc, pp, vp, nrow, npair, p0, 1); break;
        case 2: sd_bf16_pv_nv(job, sc, pp, vp, nrow, npair, p0, 2); break;
        case 3: sd_bf16_pv_nv(job, sc, pp, vp, nrow, npair, p0, 3); break;
        default: sd_bf16_pv_nv(job, sc, pp, vp, nrow, npair, p0, 4); break;
        }
    }
}
