/* matmul_kernels_avx512.c — AVX-512F matmul kernels, float32 and float64 (compiled with
 * -mavx512f -mavx2 -mfma; called by matmul_cpu.c only when lc_cpu_caps_get()->avx512f).
 *
 *  - small kernels (lc_mm_small_*_avx512): c = a·b straight on the row-major inputs, no packing.
 *    c is walked in column blocks of two vectors (32 f32 / 16 f64 columns) and row blocks of up to
 *    8 rows; a register tile of up to 8x2 vectors accumulates over all of k, so every element of c is
 *    written exactly once. The ragged last column block uses masked loads/stores, and a last block
 *    of at most 8 f32 / 4 f64 columns runs in 256-bit registers (half-width FMAs cost half on CPUs
 *    that split 512-bit ones); the row count of the last row block is a compile-time variant (1..8).
 *    n == 1 (matrix-vector) is a vectorised dot product per row.
 *  - packed micro-kernels (lc_mm_ukr_*_avx512) for the blocked GEMM: 14x32 (f32) and 14x16 (f64)
 *    tiles, 28 zmm accumulators, B loaded as two vectors per k step, A broadcast from memory.
 * Interface and packing layout: matmul_kernels.h. Tests: tests/c/test_ops.c,
 * tests/python/test_ops_matmul.py.
 */
#include <immintrin.h>
#include <stdint.h>

#include "backend/cpu/matmul_kernels.h"

#define LC_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Tile shape limits of the small kernels (rows, vectors across). */
#define SMALL_MR 8

/* ---------------------------------------------------------------------------------------------- */
/* float32                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* c[0..MR, 0..NV*16) (last vector limited by `last`) = a[0..MR, 0..k) · b[0..k, same columns].
 * MR and NV are constants after inlining, so acc[][] lives in registers. */
LC_ALWAYS_INLINE void small_tile_f32(const int MR, const int NV, int64_t k, const float *a, int64_t lda,
                                     const float *b, int64_t ldb, float *c, int64_t ldc, __mmask16 last) {
    __m512 acc[SMALL_MR][2];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    const __mmask16 m0 = NV == 1 ? last : (__mmask16)0xFFFF;
    for (int64_t p = 0; p < k; p++) {
        const float *brow = b + p * ldb;
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, brow);
        const __m512 b1 = NV == 2 ? _mm512_maskz_loadu_ps(last, brow + 16) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const __m512 av = _mm512_set1_ps(a[i * lda + p]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            if (NV == 2) acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, acc[i][0]);
        if (NV == 2) _mm512_mask_storeu_ps(c + i * ldc + 16, last, acc[i][1]);
    }
}

/* The same for a last column block of at most 8 columns, computed in 256-bit registers: where 512-bit
 * FMAs issue as two halves (e.g. Zen 4), a half-masked zmm tile costs twice as much. A ragged
 * block (MASKED) loads and stores through 512-bit masked moves, which never touch the masked lanes. */
LC_ALWAYS_INLINE void small_tile8_f32(const int MR, const int MASKED, int64_t k, const float *a, int64_t lda,
                                      const float *b, int64_t ldb, float *c, int64_t ldc, __mmask16 mask) {
    __m256 acc[SMALL_MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) acc[i] = _mm256_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        const float *brow = b + p * ldb;
        const __m256 b0 = MASKED ? _mm512_castps512_ps256(_mm512_maskz_loadu_ps(mask, brow)) : _mm256_loadu_ps(brow);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + i * lda + p), b0, acc[i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        if (MASKED)
            _mm512_mask_storeu_ps(c + i * ldc, mask, _mm512_castps256_ps512(acc[i]));
        else
            _mm256_storeu_ps(c + i * ldc, acc[i]);
    }
}

/* c[i] = dot(a[i, :], b[:]) for every row (n == 1). */
static void small_matvec_f32(int64_t m, int64_t k, const float *a, const float *b, float *c) {
    for (int64_t i = 0; i < m; i++) {
        const float *arow = a + i * k;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int64_t p = 0;
        for (; p + 32 <= k; p += 32) {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(arow + p), _mm512_loadu_ps(b + p), s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(arow + p + 16), _mm512_loadu_ps(b + p + 16), s1);
        }
        for (; p < k; p += 16) {
            const int64_t rem = k - p;
            const __mmask16 mk = rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, arow + p), _mm512_maskz_loadu_ps(mk, b + p), s0);
        }
        c[i] = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    }
}

#define SMALL_ROWS_SWITCH(TILE, NV, mr, ...)                                                        \
    switch (mr) {                                                                                   \
    case 1: TILE(1, NV, __VA_ARGS__); break;                                                        \
    case 2: TILE(2, NV, __VA_ARGS__); break;                                                        \
    case 3: TILE(3, NV, __VA_ARGS__); break;                                                        \
    case 4: TILE(4, NV, __VA_ARGS__); break;                                                        \
    case 5: TILE(5, NV, __VA_ARGS__); break;                                                        \
    case 6: TILE(6, NV, __VA_ARGS__); break;                                                        \
    case 7: TILE(7, NV, __VA_ARGS__); break;                                                        \
    default: TILE(8, NV, __VA_ARGS__); break;                                                       \
    }

void lc_mm_small_f32_avx512(int64_t m, int64_t k, int64_t n, const float *a, const float *b, float *c) {
    if (n == 1) {
        small_matvec_f32(m, k, a, b, c);
        return;
    }
    for (int64_t j = 0; j < n; j += 32) {
        const int64_t w = n - j < 32 ? n - j : 32;
        const int nv = w > 16 ? 2 : 1;
        const int64_t wl = w - (nv - 1) * 16; /* columns in the last vector, 1..16 */
        const __mmask16 last = wl == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << wl) - 1u);
        for (int64_t i = 0; i < m; i += SMALL_MR) {
            const int mr = (int)(m - i < SMALL_MR ? m - i : SMALL_MR);
            const float *ai = a + i * k;
            float *ci = c + i * n + j;
            if (w == 8) {
                SMALL_ROWS_SWITCH(small_tile8_f32, 0, mr, k, ai, k, b + j, n, ci, n, last)
            } else if (w < 8) {
                SMALL_ROWS_SWITCH(small_tile8_f32, 1, mr, k, ai, k, b + j, n, ci, n, last)
            } else if (nv == 2) {
                SMALL_ROWS_SWITCH(small_tile_f32, 2, mr, k, ai, k, b + j, n, ci, n, last)
            } else {
                SMALL_ROWS_SWITCH(small_tile_f32, 1, mr, k, ai, k, b + j, n, ci, n, last)
            }
        }
    }
}

/* 14x32 float32 micro-kernel over packed panels. */
void lc_mm_ukr_f32_avx512(int64_t kc, const void *ap_, const void *bp_, void *c_, int64_t ldc, int mr, int nr,
                          int accumulate) {
    enum { MR = LC_MM_AVX512_F32_MR };
    const float *ap = (const float *)ap_;
    const float *bp = (const float *)bp_;
    float *c = (float *)c_;
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
        if (i < mr) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_load_ps(bp);
        const __m512 b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512 av = _mm512_set1_ps(ap[i]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
        ap += MR;
        bp += 32;
    }
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1u);
    const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1u);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        if (i < mr) {
            float *ci = c + i * ldc;
            __m512 r0 = acc[i][0], r1 = acc[i][1];
            if (accumulate) {
                r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, ci));
                r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, ci + 16));
            }
            _mm512_mask_storeu_ps(ci, m0, r0);
            _mm512_mask_storeu_ps(ci + 16, m1, r1);
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* float64                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

LC_ALWAYS_INLINE void small_tile_f64(const int MR, const int NV, int64_t k, const double *a, int64_t lda,
                                     const double *b, int64_t ldb, double *c, int64_t ldc, __mmask8 last) {
    __m512d acc[SMALL_MR][2];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm512_setzero_pd();
        acc[i][1] = _mm512_setzero_pd();
    }
    const __mmask8 m0 = NV == 1 ? last : (__mmask8)0xFF;
    for (int64_t p = 0; p < k; p++) {
        const double *brow = b + p * ldb;
        const __m512d b0 = _mm512_maskz_loadu_pd(m0, brow);
        const __m512d b1 = NV == 2 ? _mm512_maskz_loadu_pd(last, brow + 8) : _mm512_setzero_pd();
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const __m512d av = _mm512_set1_pd(a[i * lda + p]);
            acc[i][0] = _mm512_fmadd_pd(av, b0, acc[i][0]);
            if (NV == 2) acc[i][1] = _mm512_fmadd_pd(av, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        _mm512_mask_storeu_pd(c + i * ldc, m0, acc[i][0]);
        if (NV == 2) _mm512_mask_storeu_pd(c + i * ldc + 8, last, acc[i][1]);
    }
}

/* Last column block of at most 4 columns in 256-bit registers (see small_tile8_f32). */
LC_ALWAYS_INLINE void small_tile4_f64(const int MR, const int MASKED, int64_t k, const double *a, int64_t lda,
                                      const double *b, int64_t ldb, double *c, int64_t ldc, __mmask8 mask) {
    __m256d acc[SMALL_MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) acc[i] = _mm256_setzero_pd();
    for (int64_t p = 0; p < k; p++) {
        const double *brow = b + p * ldb;
        const __m256d b0 = MASKED ? _mm512_castpd512_pd256(_mm512_maskz_loadu_pd(mask, brow)) : _mm256_loadu_pd(brow);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) acc[i] = _mm256_fmadd_pd(_mm256_broadcast_sd(a + i * lda + p), b0, acc[i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        if (MASKED)
            _mm512_mask_storeu_pd(c + i * ldc, mask, _mm512_castpd256_pd512(acc[i]));
        else
            _mm256_storeu_pd(c + i * ldc, acc[i]);
    }
}

static void small_matvec_f64(int64_t m, int64_t k, const double *a, const double *b, double *c) {
    for (int64_t i = 0; i < m; i++) {
        const double *arow = a + i * k;
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
        int64_t p = 0;
        for (; p + 16 <= k; p += 16) {
            s0 = _mm512_fmadd_pd(_mm512_loadu_pd(arow + p), _mm512_loadu_pd(b + p), s0);
            s1 = _mm512_fmadd_pd(_mm512_loadu_pd(arow + p + 8), _mm512_loadu_pd(b + p + 8), s1);
        }
        for (; p < k; p += 8) {
            const int64_t rem = k - p;
            const __mmask8 mk = rem >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << rem) - 1u);
            s0 = _mm512_fmadd_pd(_mm512_maskz_loadu_pd(mk, arow + p), _mm512_maskz_loadu_pd(mk, b + p), s0);
        }
        c[i] = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    }
}

void lc_mm_small_f64_avx512(int64_t m, int64_t k, int64_t n, const double *a, const double *b, double *c) {
    if (n == 1) {
        small_matvec_f64(m, k, a, b, c);
        return;
    }
    for (int64_t j = 0; j < n; j += 16) {
        const int64_t w = n - j < 16 ? n - j : 16;
        const int nv = w > 8 ? 2 : 1;
        const int64_t wl = w - (nv - 1) * 8; /* columns in the last vector, 1..8 */
        const __mmask8 last = wl == 8 ? (__mmask8)0xFF : (__mmask8)((1u << wl) - 1u);
        for (int64_t i = 0; i < m; i += SMALL_MR) {
            const int mr = (int)(m - i < SMALL_MR ? m - i : SMALL_MR);
            const double *ai = a + i * k;
            double *ci = c + i * n + j;
            if (w == 4) {
                SMALL_ROWS_SWITCH(small_tile4_f64, 0, mr, k, ai, k, b + j, n, ci, n, last)
            } else if (w < 4) {
                SMALL_ROWS_SWITCH(small_tile4_f64, 1, mr, k, ai, k, b + j, n, ci, n, last)
            } else if (nv == 2) {
                SMALL_ROWS_SWITCH(small_tile_f64, 2, mr, k, ai, k, b + j, n, ci, n, last)
            } else {
                SMALL_ROWS_SWITCH(small_tile_f64, 1, mr, k, ai, k, b + j, n, ci, n, last)
            }
        }
    }
}

/* 14x16 float64 micro-kernel over packed panels. */
void lc_mm_ukr_f64_avx512(int64_t kc, const void *ap_, const void *bp_, void *c_, int64_t ldc, int mr, int nr,
                          int accumulate) {
    enum { MR = LC_MM_AVX512_F64_MR };
    const double *ap = (const double *)ap_;
    const double *bp = (const double *)bp_;
    double *c = (double *)c_;
    __m512d acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm512_setzero_pd();
        acc[i][1] = _mm512_setzero_pd();
        if (i < mr) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; p++) {
        const __m512d b0 = _mm512_load_pd(bp);
        const __m512d b1 = _mm512_load_pd(bp + 8);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512d av = _mm512_set1_pd(ap[i]);
            acc[i][0] = _mm512_fmadd_pd(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_pd(av, b1, acc[i][1]);
        }
        ap += MR;
        bp += 16;
    }
    const __mmask8 m0 = nr >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << nr) - 1u);
    const __mmask8 m1 = nr >= 16 ? (__mmask8)0xFF : nr <= 8 ? (__mmask8)0 : (__mmask8)((1u << (nr - 8)) - 1u);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        if (i < mr) {
            double *ci = c + i * ldc;
            __m512d r0 = acc[i][0], r1 = acc[i][1];
            if (accumulate) {
                r0 = _mm512_add_pd(r0, _mm512_maskz_loadu_pd(m0, ci));
                r1 = _mm512_add_pd(r1, _mm512_maskz_loadu_pd(m1, ci + 8));
            }
            _mm512_mask_storeu_pd(ci, m0, r0);
            _mm512_mask_storeu_pd(ci + 8, m1, r1);
        }
    }
}
