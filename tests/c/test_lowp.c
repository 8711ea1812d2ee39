/* test_lowp.c — float16 and bfloat16 matmul on the CPU through lc_matmul: awkward shapes (odd k, tails
 * of the 8x32 tile) against a float64 product of the rounded inputs, elementwise within
 * u_out·|ref| + 2k·2^-24·Σ|a||b| + half the dtype's smallest subnormal (u_out = 2^-8 bfloat16, 2^-11 float16;
 * float32 accumulation; a float16 result below 2^-14 is rounded to a multiple of 2^-24); the
 * output poisoned before each run; a NaN in a (or b) makes exactly its row (column) NaN; on the CPU and,
 * when there is a GPU, on CUDA (cuBLASLt, float32 accumulation). ctest runs it under each CPU mask, so
 * the AMX-BF16 tiles (where the CPU has them), the AVX-512 BF16 kernel and the float32 conversion path
 * are all judged; the CPU path must be the one the CPU and masks call for (lowp_cpu_matmul_path:
 * "amx_bf16" on an AMX machine, test_lowp_no_amx masks it; the medium-m kernels "avx512bf16",
 * "bf16_mid_avx512" and "f16_mid_avx512" at 4 < m <= 64).
 * Prints "N passed, N failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOWP_SEED 0x243f6a8885a308d3ull
#include "lowp_check.h"

static void run_case(lc_device dev, lc_dtype d, int64_t m, int64_t k, int64_t n, int nan_a, int nan_b) {
    uint16_t *a = malloc((size_t)(m * k) * 2), *b = malloc((size_t)(k * n) * 2), *c = malloc((size_t)(m * n) * 2);
    for (int64_t i = 0; i < m * k; i++) a[i] = to16(d, rnd(-1.0, 1.0));
    for (int64_t i = 0; i < k * n; i++) b[i] = to16(d, rnd(-1.0, 1.0));
    const int64_t ni = m / 2, nj = n / 3, nk = k - 1; /* NaN at a[ni][nk] and/or b[nk][nj] */
    if (nan_a) a[ni * k + nk] = nan16(d);
    if (nan_b) b[nk * n + nj] = nan16(d);
    lc_tensor_t *ta = NULL, *tb = NULL, *tc = NULL;
    const int64_t sa[2] = {m, k}, sb[2] = {k, n}, sc[2] = {m, n};
    CHECK_OK(lc_tensor_from_host(a, (size_t)(m * k) * 2, d, dev, 2, sa, &ta));
    CHECK_OK(lc_tensor_from_host(b, (size_t)(k * n) * 2, d, dev, 2, sb, &tb));
    for (int64_t i = 0; i < m * n; i++) c[i] = POISON;
    CHECK_OK(lc_tensor_from_host(c, (size_t)(m * n) * 2, d, dev, 2, sc, &tc));
    CHECK_OK(lc_matmul(ta, tb, tc, dev));
    if (dev == LC_DEVICE_CPU && !starts_with(last_path(), lowp_cpu_matmul_path(d, m, k, n))) {
        fprintf(stderr, "cpu %s matmul %lldx%lldx%lld ran %s, expected %s\n", lc_dtype_name(d), (long long)m, (long long)k,
                (long long)n, last_path(), lowp_cpu_matmul_path(d, m, k, n));
        CHECK(0);
    }
    CHECK_OK(lc_tensor_to_host(tc, c, (size_t)(m * n) * 2));
    const double u = unit(d);
    int bad = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double ref = 0, mag = 0;
            for (int64_t p = 0; p < k; p++) {
                const double x = from16(d, a[i * k + p]) * from16(d, b[p * n + j]);
                ref += x, mag += fabs(x);
            }
            const double got = from16(d, c[i * n + j]);
            const int want_nan = (nan_a && i == ni) || (nan_b && j == nj);
            if (want_nan) bad += !isnan(got);
            else bad += !(fabs(got - ref) <= u * fabs(ref) + 2.0 * (double)k * 0x1p-24 * mag + tiny(d));
        }
    if (bad) fprintf(stderr, "%s %s m=%lld k=%lld n=%lld nan_a=%d nan_b=%d: %d bad (path %s)\n", lc_device_name(dev), lc_dtype_name(d),
                     (long long)m, (long long)k, (long long)n, nan_a, nan_b, bad, last_path());
    CHECK(bad == 0);
    lc_tensor_free(ta), lc_tensor_free(tb), lc_tensor_free(tc);
    free(a), free(b), free(c);
}

int main(void) {
    static const int64_t shapes[][3] = {{1, 1, 1},    {1, 2, 1},     {7, 13, 5},   {6, 64, 32}, {12, 3, 64},
                                        {63, 65, 129}, {100, 257, 70}, {130, 1000, 33}, {49, 2, 97}, {5, 127, 200},
                                        /* AMX: 16/32-row, 32-k and 16/32-column tile edges, k slices of 512 */
                                        {17, 31, 33}, {16, 32, 16}, {33, 64, 31}, {32, 32, 32}, {70, 1537, 45},
                                        {1, 4096, 3}, {257, 40, 1}, {130, 1100, 300},
                                        /* AVX-512 BF16, 4 < m <= 64: several k slices (odd k), column chunks with a
                                         * tail, the row-block tails; m = 65: the whole-packing plan */
                                        {64, 601, 1100}, {9, 1031, 517}, {65, 300, 70},
                                        /* row tails of 3 (8 + 3; 64 + 3) */
                                        {11, 300, 77}, {67, 90, 40}};
    const int ndev = lc_device_available(LC_DEVICE_CUDA) ? 2 : 1;
    for (int dv = 0; dv < ndev; dv++) {
        const lc_device dev = dv ? LC_DEVICE_CUDA : LC_DEVICE_CPU;
        for (int di = 0; di < 2; di++) {
            const lc_dtype d = di ? LC_DTYPE_F16 : LC_DTYPE_BF16;
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                run_case(dev, d, shapes[s][0], shapes[s][1], shapes[s][2], 0, 0);
            run_case(dev, d, 63, 65, 129, 1, 0);
            run_case(dev, d, 63, 65, 129, 0, 1);
            run_case(dev, d, 13, 7, 40, 1, 1);
            run_case(dev, d, 300, 512, 260, 0, 0); /* large enough for the autotuned GEMM on cuda */
            printf("%s %s path: %s\n", lc_device_name(dev), lc_dtype_name(d), last_path());
        }
    }
    if (ndev == 1) printf("cuda not available: cpu only\n");
    /* mixed dtypes are refused, naming the operand */
    lc_tensor_t *a = NULL, *b = NULL, *c = NULL;
    const int64_t s2[2] = {2, 2};
    CHECK_OK(lc_tensor_new(LC_DTYPE_BF16, LC_DEVICE_CPU, 2, s2, &a));
    CHECK_OK(lc_tensor_new(LC_DTYPE_F16, LC_DEVICE_CPU, 2, s2, &b));
    CHECK_OK(lc_tensor_new(LC_DTYPE_BF16, LC_DEVICE_CPU, 2, s2, &c));
    CHECK(lc_matmul(a, b, c, LC_DEVICE_CPU) == LC_ERR_DTYPE && strstr(lc_last_error(), "b: expected dtype bfloat16 (a's), got float16"));
    lc_tensor_free(a), lc_tensor_free(b), lc_tensor_free(c);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
