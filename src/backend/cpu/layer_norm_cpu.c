/* layer_norm_cpu.c — CPU layer norm over the last axis: per row of x[rows, cols] (float32),
 * out = (x - mean) / sqrt(var + eps) * gamma + beta, biased variance (divide by cols), gamma/beta [cols]
 * optional (NULL = 1 and 0). out may be exactly x (each element is read before it is written).
 *
 * Numerics: two passes per row with float64 accumulators (mean, then the sum of squared deviations), so
 * a row with a large mean (1e4 + small noise) keeps its variance; the output pass works in float32 with
 * the mean split into a float hi + lo part, so x - mean stays exact when x is near the mean.
 * The row body is compiled for AVX-512, AVX2+FMA and the baseline ISA (auto-vectorised; the variant is
 * picked per call from lc_cpu_caps_get()); rows are spread over the worker pool for large inputs.
 * Tests: tests/c/test_ops.c (layer_norm group).
 */
#include <math.h>
#include <stdint.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/cpu_features.h"
#include "core/internal.h"
#include "core/threadpool.h"

#define LC_LN_PARALLEL_MIN ((int64_t)1 << 16) /* elements; below this a call runs inline */
#define LC_LN_GRAIN_ELEMS ((int64_t)1 << 14)  /* elements per chunk handed to a worker, at least */
#define LC_LN_LANES 16                        /* independent accumulators (vectorised by SLP) */

#define LC_INLINE static inline __attribute__((always_inline))
#define LC_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define LC_TARGET_AVX2 __attribute__((target("avx2,fma")))

LC_INLINE double row_sum(const float *x, int64_t cols) {
    double acc[LC_LN_LANES] = {0};
    int64_t j = 0;
    for (; j + LC_LN_LANES <= cols; j += LC_LN_LANES)
        for (int l = 0; l < LC_LN_LANES; l++) acc[l] += (double)x[j + l];
    double s = 0.0;
    for (int l = 0; l < LC_LN_LANES; l++) s += acc[l];
    for (; j < cols; j++) s += (double)x[j];
    return s;
}

LC_INLINE double row_sq_dev(const float *x, int64_t cols, double mean) {
    double acc[LC_LN_LANES] = {0};
    int64_t j = 0;
    for (; j + LC_LN_LANES <= cols; j += LC_LN_LANES)
        for (int l = 0; l < LC_LN_LANES; l++) {
            double d = (double)x[j + l] - mean;
            acc[l] += d * d;
        }
    double s = 0.0;
    for (int l = 0; l < LC_LN_LANES; l++) s += acc[l];
    for (; j < cols; j++) {
        double d = (double)x[j] - mean;
        s += d * d;
    }
    return s;
}

/* One row; `affine` selects the gamma/beta combination at compile time after inlining. */
LC_INLINE void row_norm(const lc_layer_norm_args *args, int64_t r, int affine) {
    const int64_t cols = args->cols;
    const float *x = (const float *)args->x + r * cols;
    float *o = (float *)args->out + r * cols;
    const float *g = (const float *)args->gamma;
    const float *b = (const float *)args->beta;
    const double mean = row_sum(x, cols) / (double)cols;
    const double var = row_sq_dev(x, cols, mean) / (double)cols;
    const float rstd = (float)(1.0 / sqrt(var + args->eps));
    const float mh = (float)mean;
    const float ml = (float)(mean - (double)mh);
    switch (affine) {
    case 3:
        for (int64_t j = 0; j < cols; j++) o[j] = ((x[j] - mh) - ml) * rstd * g[j] + b[j];
        break;
    case 2:
        for (int64_t j = 0; j < cols; j++) o[j] = ((x[j] - mh) - ml) * rstd * g[j];
        break;
    case 1:
        for (int64_t j = 0; j < cols; j++) o[j] = ((x[j] - mh) - ml) * rstd + b[j];
        break;
    default:
        for (int64_t j = 0; j < cols; j++) o[j] = ((x[j] - mh) - ml) * rstd;
        break;
    }
}

LC_INLINE void rows_body(void *ctx, int64_t begin, int64_t end) {
    const lc_layer_norm_args *args = (const lc_layer_norm_args *)ctx;
    const int affine = (args->gamma ? 2 : 0) | (args->beta ? 1 : 0);
    for (int64_t r = begin; r < end; r++) {
        switch (affine) {
        case 3: row_norm(args, r, 3); break;
        case 2: row_norm(args, r, 2); break;
        case 1: row_norm(args, r, 1); break;
        default: row_norm(args, r, 0); break;
        }
    }
}

LC_TARGET_AVX512 static void rows_avx512(void *ctx, int64_t begin, int64_t end) { rows_body(ctx, begin, end); }
LC_TARGET_AVX2 static void rows_avx2(void *ctx, int64_t begin, int64_t end) { rows_body(ctx, begin, end); }
static void rows_base(void *ctx, int64_t begin, int64_t end) { rows_body(ctx, begin, end); }

lc_status lc_cpu_layer_norm(const lc_layer_norm_args *args, const char **path) {
    if (args && lc_cpu_is_lowp(args->dtype)) return lc_cpu_lowp_layer_norm(args, path);
    LC_CHECK_INVARIANT(args != NULL && args->rows >= 0 && args->cols >= 1 && args->dtype == LC_DTYPE_F32);
    LC_CHECK_INVARIANT(args->eps > 0.0);
    LC_CHECK_INVARIANT(args->rows == 0 || (args->x && args->out));
    if (path) *path = "layer_norm_f32";
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    lc_range_fn fn = rows_base;
    if (caps && caps->avx512f)
        fn = rows_avx512;
    else if (caps && caps->avx2_fma)
        fn = rows_avx2;
    int64_t total;
    if (args->rows > 1 && lc_mul_ok(args->rows, args->cols, &total) && total >= LC_LN_PARALLEL_MIN) {
        int64_t grain = LC_LN_GRAIN_ELEMS / args->cols;
        lc_parallel_for(args->rows, grain > 0 ? grain : 1, fn, (void *)args);
    } else {
        fn((void *)args, 0, args->rows);
    }
    return LC_OK;
}
