/* matmul_kernels_avx2.c — AVX2+FMA matmul kernels, float32 and float64 (compiled with -mavx2 -mfma;
 * called by matmul_cpu.c only when lc_cpu_caps_get()->avx2_fma).
 *
 *  - small kernels (lc_mm_small_*_avx2): c = a·b straight on the row-major inputs, no packing.
 *    c is walked in column blocks of two vectors (16 f32 / 8 f64 columns) and row blocks of up to 6
 *    rows; a register tile of up to 6x2 ymm accumulates over all of k, so every element of c is written
 *    exactly once. A ragged last vector uses vmaskmov loads/stores; the row count of the last row block
 *    is a compile-time variant (1..6). n == 1 (matrix-vector) is a vectorised dot product per row.
 *  - packed micro-kernels (lc_mm_ukr_*_avx2) for the blocked GEMM: 6x16 (f32) and 6x8 (f64) tiles,
 *    12 ymm accumulators; partial edge tiles go through a small stack tile.
 * Interface and packing layout: matmul_kernels.h. Tests: tests/c/test_ops.c,
 * tests/python/test_ops_matmul.py.
 */
#include <immintrin.h>
#include <stdint.h>

#include "backend/cpu/matmul_kernels.h"

#define LC_ALWAYS_INLINE static inline __attribute__((always_inline))

#define SMALL_MR 6

/* Lane mask with the first `count` (0..8) of 8 int32 lanes set. */
static inline __m256i lane_mask_32(int64_t count) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), idx);
}

/* Lane mask with the first `count` (0..4) of 4 int64 lanes set. */
static inline __m256i lane_mask_64(int64_t count) {
    const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), idx);
}

/* Dispatches a tile function on the (run-time) row count 1..6 with compile-time variants. */
#define SMALL_ROWS_SWITCH(TILE, NV, MASKED, mr, ...)                                                \
    switch (mr) {                                                                                   \
    case 1: TILE(1, NV, MASKED, __VA_ARGS__); break;                                                \
    case 2: TILE(2, NV, MASKED, __VA_ARGS__); break;                                                \
    case 3: TILE(3, NV, MASKED, __VA_ARGS__); break;                                                \
    case 4: TILE(4, NV, MASKED, __VA_ARGS__); break;                                                \
    case 5: TILE(5, NV, MASKED, __VA_ARGS__); break;                                                \
    default: TILE(6, NV, MASKED, __VA_ARGS__); break;                                               \
    }

/* ---------------------------------------------------------------------------------------------- */
/* float32                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* c[0..MR, 0..NV*8) = a[0..MR, 0..k) · b[0..k, same columns]; when MASKED, the last vector covers only
 * the lanes set in `mask`. MR, NV, MASKED are constants after inlining. */
LC_ALWAYS_INLINE void small_tile_f32(const int MR, const int NV, const int MASKED, int64_t k, const float *a,
                                     int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                                     __m256i mask) {
    __m256 acc[SMALL_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
    }
    for (int64_t p = 0; p < k; p++) {
        const float *brow = b + p * ldb;
        __m256 b0, b1 = _mm256_setzero_ps();
        if (NV == 1) {
            b0 = MASKED ? _mm256_maskload_ps(brow, mask) : _mm256_loadu_ps(brow);
        } else {
            b0 = _mm256_loadu_ps(brow);
            b1 = MASKED ? _mm256_maskload_ps(brow + 8, mask) : _mm256_loadu_ps(brow + 8);
        }
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 av = _mm256_broadcast_ss(a + i * lda + p);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            if (NV == 2) acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (NV == 1) {
            if (MASKED)
                _mm256_maskstore_ps(ci, mask, acc[i][0]);
            else
                _mm256_storeu_ps(ci, acc[i][0]);
        } else {
            _mm256_storeu_ps(ci, acc[i][0]);
            if (MASKED)
                _mm256_maskstore_ps(ci + 8, mask, acc[i][1]);
            else
                _mm256_storeu_ps(ci + 8, acc[i][1]);
        }
    }
}

static inline float hsum256_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* c[i] = dot(a[i, :], b[:]) for every row (n == 1). */
static void small_matvec_f32(int64_t m, int64_t k, const float *a, const float *b, float *c) {
    for (int64_t i = 0; i < m; i++) {
        const float *arow = a + i * k;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int64_t p = 0;
        for (; p + 16 <= k; p += 16) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(arow + p), _mm256_loadu_ps(b + p), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(arow + p + 8), _mm256_loadu_ps(b + p + 8), s1);
        }
        for (; p < k; p += 8) {
            const __m256i mk = lane_mask_32(k - p);
            s0 = _mm256_fmadd_ps(_mm256_maskload_ps(arow + p, mk), _mm256_maskload_ps(b + p, mk), s0);
        }
        c[i] = hsum256_ps(_mm256_add_ps(s0, s1));
    }
}

/* One column block [j, j+w) of c, w <= 16, over all rows. */
LC_ALWAYS_INLINE void small_colblock_f32(const int NV, const int MASKED, int64_t m, int64_t k, int64_t n,
                                         const float *a, const float *b, float *c, __m256i mask) {
    for (int64_t i = 0; i < m; i += SMALL_MR) {
        const int mr = (int)(m - i < SMALL_MR ? m - i : SMALL_MR);
        SMALL_ROWS_SWITCH(small_tile_f32, NV, MASKED, mr, k, a + i * k, k, b, n, c + i * n, n, mask)
    }
}

void lc_mm_small_f32_avx2(int64_t m, int64_t k, int64_t n, const float *a, const float *b, float *c) {
    if (n == 1) {
        small_matvec_f32(m, k, a, b, c);
        return;
    }
    const __m256i full = _mm256_set1_epi32(-1);
    for (int64_t j = 0; j < n; j += 16) {
        const int64_t w = n - j < 16 ? n - j : 16;
        if (w == 16)
            small_colblock_f32(2, 0, m, k, n, a, b + j, c + j, full);
        else if (w > 8)
            small_colblock_f32(2, 1, m, k, n, a, b + j, c + j, lane_mask_32(w - 8));
        else if (w == 8)
            small_colblock_f32(1, 0, m, k, n, a, b + j, c + j, full);
        else
            small_colblock_f32(1, 1, m, k, n, a, b + j, c + j, lane_mask_32(w));
    }
}

/* 6x16 float32 micro-kernel over packed panels. */
void lc_mm_ukr_f32_avx2(int64_t kc, const void *ap_, const void *bp_, void *c_, int64_t ldc, int mr, int nr,
                        int accumulate) {
    enum { MR = LC_MM_AVX2_F32_MR, NR = LC_MM_AVX2_F32_NR };
    const float *ap = (const float *)ap_;
    const float *bp = (const float *)bp_;
    float *c = (float *)c_;
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
        if (i < mr) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_load_ps(bp);
        const __m256 b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 av = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
        ap += MR;
        bp += NR;
    }
    if (mr == MR && nr == NR) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            __m256 r0 = acc[i][0], r1 = acc[i][1];
            if (accumulate) {
                r0 = _mm256_add_ps(r0, _mm256_loadu_ps(ci));
                r1 = _mm256_add_ps(r1, _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        }
        return;
    }
    float tile[MR * NR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(tile + i * NR, acc[i][0]);
        _mm256_storeu_ps(tile + i * NR + 8, acc[i][1]);
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
}

/* ---------------------------------------------------------------------------------------------- */
/* float64                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

LC_ALWAYS_INLINE void small_tile_f64(const int MR, const int NV, const int MASKED, int64_t k, const double *a,
                                     int64_t lda, const double *b, int64_t ldb, double *c, int64_t ldc,
                                     __m256i mask) {
    __m256d acc[SMALL_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm256_setzero_pd();
        acc[i][1] = _mm256_setzero_pd();
    }
    for (int64_t p = 0; p < k; p++) {
        const double *brow = b + p * ldb;
        __m256d b0, b1 = _mm256_setzero_pd();
        if (NV == 1) {
            b0 = MASKED ? _mm256_maskload_pd(brow, mask) : _mm256_loadu_pd(brow);
        } else {
            b0 = _mm256_loadu_pd(brow);
            b1 = MASKED ? _mm256_maskload_pd(brow + 4, mask) : _mm256_loadu_pd(brow + 4);
        }
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256d av = _mm256_broadcast_sd(a + i * lda + p);
            acc[i][0] = _mm256_fmadd_pd(av, b0, acc[i][0]);
            if (NV == 2) acc[i][1] = _mm256_fmadd_pd(av, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        double *ci = c + i * ldc;
        if (NV == 1) {
            if (MASKED)
                _mm256_maskstore_pd(ci, mask, acc[i][0]);
            else
                _mm256_storeu_pd(ci, acc[i][0]);
        } else {
            _mm256_storeu_pd(ci, acc[i][0]);
            if (MASKED)
                _mm256_maskstore_pd(ci + 4, mask, acc[i][1]);
            else
                _mm256_storeu_pd(ci + 4, acc[i][1]);
        }
    }
}

static inline double hsum256_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

static void small_matvec_f64(int64_t m, int64_t k, const double *a, const double *b, double *c) {
    for (int64_t i = 0; i < m; i++) {
        const double *arow = a + i * k;
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        int64_t p = 0;
        for (; p + 8 <= k; p += 8) {
            s0 = _mm256_fmadd_pd(_mm256_loadu_pd(arow + p), _mm256_loadu_pd(b + p), s0);
            s1 = _mm256_fmadd_pd(_mm256_loadu_pd(arow + p + 4), _mm256_loadu_pd(b + p + 4), s1);
        }
        for (; p < k; p += 4) {
            const __m256i mk = lane_mask_64(k - p);
            s0 = _mm256_fmadd_pd(_mm256_maskload_pd(arow + p, mk), _mm256_maskload_pd(b + p, mk), s0);
        }
        c[i] = hsum256_pd(_mm256_add_pd(s0, s1));
    }
}

LC_ALWAYS_INLINE void small_colblock_f64(const int NV, const int MASKED, int64_t m, int64_t k, int64_t n,
                                         const double *a, const double *b, double *c, __m256i mask) {
    for (int64_t i = 0; i < m; i += SMALL_MR) {
        const int mr = (int)(m - i < SMALL_MR ? m - i : SMALL_MR);
        SMALL_ROWS_SWITCH(small_tile_f64, NV, MASKED, mr, k, a + i * k, k, b, n, c + i * n, n, mask)
    }
}

void lc_mm_small_f64_avx2(int64_t m, int64_t k, int64_t n, const double *a, const double *b, double *c) {
    if (n == 1) {
        small_matvec_f64(m, k, a, b, c);
        return;
    }
    const __m256i full = _mm256_set1_epi64x(-1);
    for (int64_t j = 0; j < n; j += 8) {
        const int64_t w = n - j < 8 ? n - j : 8;
        if (w == 8)
            small_colblock_f64(2, 0, m, k, n, a, b + j, c + j, full);
        else if (w > 4)
            small_colblock_f64(2, 1, m, k, n, a, b + j, c + j, lane_mask_64(w - 4));
        else if (w == 4)
            small_colblock_f64(1, 0, m, k, n, a, b + j, c + j, full);
        else
            small_colblock_f64(1, 1, m, k, n, a, b + j, c + j, lane_mask_64(w));
    }
}

/* 6x8 float64 micro-kernel over packed panels. */
void lc_mm_ukr_f64_avx2(int64_t kc, const void *ap_, const void *bp_, void *c_, int64_t ldc, int mr, int nr,
                        int accumulate) {
    enum { MR = LC_MM_AVX2_F64_MR, NR = LC_MM_AVX2_F64_NR };
    const double *ap = (const double *)ap_;
    const double *bp = (const double *)bp_;
    double *c = (double *)c_;
    __m256d acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm256_setzero_pd();
        acc[i][1] = _mm256_setzero_pd();
        if (i < mr) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; p++) {
        const __m256d b0 = _mm256_load_pd(bp);
        const __m256d b1 = _mm256_load_pd(bp + 4);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256d av = _mm256_broadcast_sd(ap + i);
            acc[i][0] = _mm256_fmadd_pd(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_pd(av, b1, acc[i][1]);
        }
        ap += MR;
        bp += NR;
    }
    if (mr == MR && nr == NR) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            double *ci = c + i * ldc;
            __m256d r0 = acc[i][0], r1 = acc[i][1];
            if (accumulate) {
                r0 = _mm256_add_pd(r0, _mm256_loadu_pd(ci));
                r1 = _mm256_add_pd(r1, _mm256_loadu_pd(ci + 4));
            }
            _mm256_storeu_pd(ci, r0);
            _mm256_storeu_pd(ci + 4, r1);
        }
        return;
    }
    double tile[MR * NR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_pd(tile + i * NR, acc[i][0]);
        _mm256_storeu_pd(tile + i * NR + 4, acc[i][1]);
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
}
