/* sdpa_cpu_tile.h — the portable CPU sdpa tile (scores, mask, online softmax, p·v) of sdpa_cpu.c, written
 * with GCC/Clang vector extensions. sdpa_cpu.c includes it once per instantiation, after defining
 *   SD_T_NAME  prefix of the functions it defines: <name>_tile, <name>_pv
 *   SD_T_VW    floats per vector (4: the baseline's SSE/NEON registers; 8: AVX2)
 *   SD_T_KB    keys per register block of the score micro-GEMM (blocks of SD_T_KB keys × 16 query lanes)
 *   SD_T_ATTR  the target attribute of the instantiation (empty for the baseline)
 *   SD_T_MADD(acc, a, b)  acc + a·b on vectors (a fused multiply-add where the instantiation has one)
 * and undefines them at its end. Layout and semantics: the comments of sdpa_cpu.c (Sᵀ[key][query] score tile,
 * qt [d][bq], o [bq][dp]). Not a public header; no include guard on purpose.
 * Tests: tests/c/test_sdpa_cpu.c (LC_CPU_DISABLE=avx512 runs the AVX2 instantiation, avx512,avx2 the baseline). */

#define SD_T_CAT2(a, b) a##b
#define SD_T_CAT(a, b) SD_T_CAT2(a, b)
#define SD_T_V SD_T_CAT(SD_T_NAME, _vec)
#define SD_T_VU SD_T_CAT(SD_T_NAME, _vecu)
#define SD_T_NV (16 / SD_T_VW) /* vectors per 16 query lanes */
#define SD_T_FN static inline __attribute__((always_inline)) SD_T_ATTR

typedef float SD_T_V __attribute__((vector_size(4 * SD_T_VW)));
typedef float SD_T_VU __attribute__((vector_size(4 * SD_T_VW), aligned(4), may_alias)); /* unaligned view */
#define SD_T_LD(p) (*(const SD_T_VU *)(p))
#define SD_T_ST(p, x) (*(SD_T_VU *)(p) = (x))
#define SD_T_BC(x) ((SD_T_V){0.0f} + (x)) /* the scalar in every lane */

/* s[j][i] = sum_p k[j][p] · qt[p][i] for j < nk, i < ncol (a multiple of 16); k row j at kp + j·krs. */
SD_T_FN void SD_T_CAT(SD_T_NAME, _qk)(const sd_job *job, const sd_scratch *sc, const float *kp, int64_t krs,
                                      int64_t ncol, int64_t nk) {
    const int64_t d = job->d, bq = job->bq;
    for (int64_t c = 0; c < ncol; c += 16) {
        int64_t j = 0;
        for (; j + SD_T_KB <= nk; j += SD_T_KB) {
            SD_T_V acc[SD_T_KB][SD_T_NV], q[SD_T_NV];
            for (int r = 0; r < SD_T_KB; r++)
                for (int u = 0; u < SD_T_NV; u++) acc[r][u] = SD_T_BC(0.0f);
            const float *k0 = kp + j * krs;
            for (int64_t p = 0; p < d; p++) {
                for (int u = 0; u < SD_T_NV; u++) q[u] = SD_T_LD(sc->qt + p * bq + c + SD_T_VW * u);
                for (int r = 0; r < SD_T_KB; r++) {
                    const SD_T_V b = SD_T_BC(k0[r * krs + p]);
                    for (int u = 0; u < SD_T_NV; u++) acc[r][u] = SD_T_MADD(acc[r][u], b, q[u]);
                }
            }
            for (int r = 0; r < SD_T_KB; r++)
                for (int u = 0; u < SD_T_NV; u++) SD_T_ST(sc->s + (j + r) * bq + c + SD_T_VW * u, acc[r][u]);
        }
        for (; j < nk; j++) {
            SD_T_V acc[SD_T_NV];
            for (int u = 0; u < SD_T_NV; u++) acc[u] = SD_T_BC(0.0f);
            const float *kr = kp + j * krs;
            for (int64_t p = 0; p < d; p++) {
                const SD_T_V b = SD_T_BC(kr[p]);
                for (int u = 0; u < SD_T_NV; u++) acc[u] = SD_T_MADD(acc[u], b, SD_T_LD(sc->qt + p * bq + c + SD_T_VW * u));
            }
            for (int u = 0; u < SD_T_NV; u++) SD_T_ST(sc->s + j * bq + c + SD_T_VW * u, acc[u]);
        }
    }
}

/* o[i] = o[i]·alpha[i] + sum_j s[j][i] · v[j] for i < nrow, over the keys row i sees; with `skip_zero` (the
 * tile's v holds a NaN/Inf) weights exactly 0 are skipped, row by row. Otherwise blocks of 4 rows × 2 vectors
 * of columns accumulate in registers (keys [0, jall) seen by all 4 rows, [jall, jany) by some); the columns
 * past the last full block go row by row. */
SD_T_ATTR __attribute__((unused)) static void SD_T_CAT(SD_T_NAME, _pv)(const sd_job *job, const sd_scratch *sc,
                                                                       const float *vp, int64_t vrs, int64_t nrow,
                                                                       int64_t nk, int diag, int64_t qoff,
                                                                       int skip_zero) {
    const int64_t d = job->d, dp = job->dp, bq = job->bq, cw = 2 * SD_T_VW;
    const int64_t dfull = skip_zero ? 0 : d / cw * cw;
    for (int64_t i = 0; i < nrow; i += 4) {
        const int64_t jall = sd_visible(diag, i, qoff, nk), jany = sd_visible(diag, i + 3, qoff, nk);
        for (int64_t c = 0; c < dfull; c += cw) {
            SD_T_V acc[4][2];
            for (int r = 0; r < 4; r++) {
                const SD_T_V al = SD_T_BC(sc->alpha[i + r]);
                for (int u = 0; u < 2; u++) acc[r][u] = SD_T_LD(sc->o + (i + r) * dp + c + SD_T_VW * u) * al;
            }
            for (int64_t j = 0; j < jall; j++) {
                const SD_T_V x0 = SD_T_LD(vp + j * vrs + c), x1 = SD_T_LD(vp + j * vrs + c + SD_T_VW);
                const float *sp = sc->s + j * bq + i;
                for (int r = 0; r < 4; r++) {
                    const SD_T_V b = SD_T_BC(sp[r]);
                    acc[r][0] = SD_T_MADD(acc[r][0], b, x0), acc[r][1] = SD_T_MADD(acc[r][1], b, x1);
                }
            }
            for (int64_t j = jall; j < jany; j++) {
                const SD_T_V x0 = SD_T_LD(vp + j * vrs + c), x1 = SD_T_LD(vp + j * vrs + c + SD_T_VW);
                for (int r = 0; r < 4; r++) {
                    if (j > i + r + qoff) continue; /* hidden from row i + r */
                    const SD_T_V b = SD_T_BC(sc->s[j * bq + i + r]);
                    acc[r][0] = SD_T_MADD(acc[r][0], b, x0), acc[r][1] = SD_T_MADD(acc[r][1], b, x1);
                }
            }
            for (int r = 0; r < 4; r++)
                for (int u = 0; u < 2; u++) SD_T_ST(sc->o + (i + r) * dp + c + SD_T_VW * u, acc[r][u]);
        }
        for (int64_t r = i; r < i + 4 && r < nrow; r++) { /* columns [dfull, d) */
            float *restrict orow = sc->o + r * dp;
            const float al = sc->alpha[r];
            for (int64_t p = dfull; p < d; p++) orow[p] *= al;
            const int64_t jn = sd_visible(diag, r, qoff, nk);
            for (int64_t j = 0; j < jn; j++) {
                const float pj = sc->s[j * bq + r];
                if (skip_zero && pj == 0.0f) continue;
                const float *restrict vr = vp + j * vrs;
                for (int64_t p = dfull; p < d; p++) orow[p] += pj * vr[p];
            }
        }
    }
}

/* One tile: scores, mask, softmax, p·v. */
SD_T_ATTR static void SD_T_CAT(SD_T_NAME, _tile)(const sd_job *job, const sd_scratch *sc, const float *kp,
                                                 int64_t krs, const float *vp, int64_t vrs, int64_t b, int64_t h,
                                                 int64_t i0, int64_t nq, int64_t j0, int64_t nk, int diag,
                                                 int lwin, int64_t qoff) {
    const int64_t ncol = sd_round_up(nq, 16), nrow = sd_round_up(nq, 4);
    SD_T_CAT(SD_T_NAME, _qk)(job, sc, kp, krs, ncol, nk);
    if (job->a->mask_kind != LC_SDPA_MASK_NONE) sd_apply_mask(job, sc, b, h, i0, nq, j0, nk);
    sd_softmax_body(job, sc, ncol, nk, diag, lwin, qoff);
    const int skip_zero = !job->no_skip && !sd_finite_body(vp, vrs, nk, job->d);
    SD_T_CAT(SD_T_NAME, _pv)(job, sc, vp, vrs, nrow, nk, diag, qoff, skip_zero);
}

#undef SD_T_FN
#undef SD_T_BC
#undef SD_T_ST
#undef SD_T_LD
#undef SD_T_NV
#undef SD_T_VU
#undef SD_T_V
#undef SD_T_CAT
#undef SD_T_CAT2
#undef SD_T_ATTR
#undef SD_T_KB
#undef SD_T_VW
#undef SD_T_NAME
#undef SD_T_MADD
