/* matmul_kernels.h — private interface between the CPU matmul dispatcher (matmul_cpu.c: paths,
 * packing, the blocked driver, the scalar code) and the ISA kernel files matmul_kernels_avx2.c
 * (compiled -mavx2 -mfma) and matmul_kernels_avx512.c (-mavx512f -mavx2 -mfma). Nothing here may be
 * called unless lc_cpu_caps_get() reports the ISA.
 *
 * Two kernel kinds:
 *  - small kernels: c[m,n] = a[m,k]·b[k,n] on the caller's row-major buffers (lda = k, ldb = ldc = n),
 *    no packing, single-threaded, any m,k,n >= 1 (edges by masks). c is fully overwritten.
 *  - packed micro-kernels for the blocked GEMM: one MR x NR tile of c from a packed A micro-panel
 *    (ap[p*MR + i] = A[i][p]) and a packed B micro-panel (bp[p*NR + j] = B[p][j]), both zero-padded to
 *    full MR / NR and 64-byte aligned, kc >= 1. Only the leading mr x nr part of the tile is written;
 *    accumulate == 0 overwrites it, != 0 adds to it.
 * Tests: tests/c/test_ops.c, tests/python/test_ops_matmul.py.
 */
#ifndef LC_MATMUL_KERNELS_H
#define LC_MATMUL_KERNELS_H

#include <stdint.h>

/* Register-tile shapes of the packed micro-kernels (rows x columns of c per call). */
#define LC_MM_AVX512_F32_MR 14
#define LC_MM_AVX512_F32_NR 32
#define LC_MM_AVX512_F64_MR 14
#define LC_MM_AVX512_F64_NR 16
#define LC_MM_AVX2_F32_MR 6
#define LC_MM_AVX2_F32_NR 16
#define LC_MM_AVX2_F64_MR 6
#define LC_MM_AVX2_F64_NR 8

/* Packed micro-kernel signature (element type given by the kernel's name). */
typedef void (*lc_mm_ukernel_fn)(int64_t kc, const void *ap, const void *bp, void *c, int64_t ldc, int mr, int nr,
                                 int accumulate);

/* matmul_kernels_avx512.c */
void lc_mm_small_f32_avx512(int64_t m, int64_t k, int64_t n, const float *a, const float *b, float *c);
void lc_mm_small_f64_avx512(int64_t m, int64_t k, int64_t n, const double *a, const double *b, double *c);
void lc_mm_ukr_f32_avx512(int64_t kc, const void *ap, const void *bp, void *c, int64_t ldc, int mr, int nr,
                          int accumulate);
void lc_mm_ukr_f64_avx512(int64_t kc, const void *ap, const void *bp, void *c, int64_t ldc, int mr, int nr,
                          int accumulate);

/* matmul_kernels_avx2.c */
void lc_mm_small_f32_avx2(int64_t m, int64_t k, int64_t n, const float *a, const float *b, float *c);
void lc_mm_small_f64_avx2(int64_t m, int64_t k, int64_t n, const double *a, const double *b, double *c);
void lc_mm_ukr_f32_avx2(int64_t kc, const void *ap, const void *bp, void *c, int64_t ldc, int mr, int nr,
                        int accumulate);
void lc_mm_ukr_f64_avx2(int64_t kc, const void *ap, const void *bp, void *c, int64_t ldc, int mr, int nr,
                        int accumulate);

#endif
