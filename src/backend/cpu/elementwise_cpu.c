/* elementwise_cpu.c — CPU kernels for the elementwise ops: binary add/sub/div (float32, float64),
 * relu (float32, float64; NaN propagates) and gelu (float32; erf and tanh forms). float16/bfloat16
 * calls go to lowp_cpu.c, which runs these float32 loops on converted blocks.
 *
 * Shapes: flat buffers of n elements (the ops layer flattens and makes operands contiguous); `out` may
 * be exactly `a`, `b` or `x` (in place): every loop reads element i before it writes element i.
 * Each loop body is one always-inline function instantiated three times: for AVX-512, for AVX2+FMA and
 * for the baseline ISA, compiled by GCC's auto-vectoriser; the variant is picked per call from
 * lc_cpu_caps_get() (so LC_CPU_DISABLE masks it). The AVX2/AVX-512 variants fuse gelu's polynomial
 * multiply-adds (FMA; ~15% faster), so their gelu results may differ from the baseline's by an ulp.
 * Large n is split over the worker pool; small n runs inline on the caller.
 *
 * gelu: erf form x·Φ(x) with Φ from a polynomial erf(z)/z for z = |x|/√2 < 0.75 and, above, the upper
 * tail ½·erfc(z) = ½·t·P(t)·exp(-x²/2), t = 1/(1 + z/2), where x²/2 is split exactly (Dekker) so the
 * exponential keeps ~1e-7 relative accuracy in the tail; tanh form x·σ(2u) = x / (1 + exp(-2u)).
 * Coefficients were fitted for this file (weighted least squares towards minimax relative error).
 * Both forms saturate cleanly for large |x| (gelu(+big) = x, gelu(-big) = -0; results below ~1e-36 in
 * magnitude are flushed to ±0 rather than computed through slow subnormals) and keep NaN.
 * Measured (AMD EPYC, AVX-512, one thread): add/relu n=1024 ~50 ns; gelu ~1 ns per element for both
 * forms (vs ~6 ns calling erff/tanhf); max relative error vs float64 ~4e-7 (erf), ~2e-7 (tanh).
 * Tests: tests/c/test_ops.c (vector_add / matrix_sub / matrix_div / relu / gelu groups).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/cpu_features.h"
#include "core/internal.h"
#include "core/threadpool.h"

/* Below these counts a call runs inline on the caller (thread hand-off costs more than it saves).
 * add/sub/div/relu are memory-bound: on the 2-core dev machine two threads gain ~2x from 1M elements
 * on (when the other core is free) and little at 256K; on the 16-core GPU host one thread took 0.12 ms
 * for a 256K-element add that torch's threads do in 0.014 ms (the operands sit in L2/L3). So they split
 * from 128K elements on, in chunks of at least 32K (a 2-core machine gets two halves). gelu is
 * compute-bound (~1 ns/element) and splits much earlier. */
#define LC_EW_PARALLEL_MIN ((int64_t)1 << 17)
#define LC_EW_GRAIN ((int64_t)1 << 15)
#define LC_GELU_PARALLEL_MIN ((int64_t)1 << 15)
#define LC_GELU_GRAIN ((int64_t)1 << 13)

#include "backend/cpu/vecmath_cpu.h"

/* Φ(x) = P(X <= x) for a standard normal X, ~1e-7 relative, including the lower tail. */
LC_INLINE float normal_cdf(float x, int fma) {
    float ax = u2f(f2u(x) & 0x7fffffffu);
    /* Beyond 12.8 the lower tail x·Φ(x) is below ~1e-36 and is flushed to -0: computing it would go
     * through subnormals, which cost ~100 cycles each on x86. (NaN also lands here; x·Φ keeps it.) */
    ax = sel(ax < 12.8f, ax, 12.8f);
    float z = ax * 0.70710678118654752f;
    /* erf(z) = z * S(z^2) on [0, 0.75] */
    float s = z * z;
    float e = -0x1.61d614p-11f;
    e = mad(e, s, 0x1.4f2aecp-8f, fma);
    e = mad(e, s, -0x1.b7a85ep-6f, fma);
    e = mad(e, s, 0x1.ce2ac4p-4f, fma);
    e = mad(e, s, -0x1.81273ap-2f, fma);
    e = mad(e, s, 0x1.20dd74p+0f, fma);
    e = 0.5f * z * e;
    float phi_small = 0.5f + u2f(f2u(e) ^ (f2u(x) & 0x80000000u)); /* 0.5 ± e by the sign of x */
    /* ½ erfc(z) = ½ t P(t) exp(-z^2), t = 1/(1 + z/2) (P fitted on z in [0.75, 10]) */
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0x1.48cf9ap-4f;
    p = mad(p, t, -0x1.81afe4p-3f, fma);
    p = mad(p, t, 0x1.311b38p-5f, fma);
    p = mad(p, t, 0x1.7056e8p-4f, fma);
    p = mad(p, t, 0x1.583bcap-3f, fma);
    p = mad(p, t, 0x1.fe750cp-3f, fma);
    p = mad(p, t, 0x1.208adcp-2f, fma);
    p = mad(p, t, 0x1.20e198p-2f, fma);
    /* -z^2 = -ax^2/2 exactly as hi + lo: ah keeps the top 12 bits of ax so ah*ah is exact */
    float ah = u2f(f2u(ax) & 0xfffff000u);
    float al = ax - ah;
    float q = 0.5f * t * p * exp_split(-0.5f * (ah * ah), -0.5f * (al * (ax + ah)), fma);
    q = sel(ax < 12.8f, q, 0.0f);
    float phi_large = sel(x < 0.0f, q, 1.0f - q);
    return sel(z < 0.75f, phi_small, phi_large);
}

/* 0.5·x·(1 + tanh(u)) = x / (1 + exp(-2u)), u = √(2/π)(x + 0.044715 x³). The argument w = -2u and
 * its reduction w - k·ln2 are formed in double: in float their rounding alone would cost ~|w|·1e-7
 * relative in the far negative tail. */
LC_INLINE float gelu_tanh_1(float x, int fma) {
    double xd = (double)x;
    double w = xd * (-2.0 * 0.79788456080286536 - 2.0 * 0.79788456080286536 * 0.044715 * (xd * xd));
    double wc = seld(w > -87.0, w, -87.0); /* below, exp(w) << 1 ulp of 1 (also maps w = -inf) */
    wc = seld(wc < 87.0, wc, 87.0);
    double kd = wc * 1.4426950408889634 + 6755399441055744.0; /* 1.5 * 2^52: rounds to an integer */
    int32_t n = (int32_t)(d2u(kd) - d2u(6755399441055744.0));
    double k = kd - 6755399441055744.0;
    float r = (float)(wc - k * 0.69314718055994531);
    float sig = 1.0f / (1.0f + exp2_scale(exp_poly(r, fma), n));
    sig = sel(w > 87.0, 0.0f, sig); /* σ < 2e-38 (subnormal territory) is flushed: the result is ±0 */
    return x * sig;
}

/* ---- loop bodies ------------------------------------------------------------------------------ */

#define LC_BINARY_LOOP(T, kind, a, b, out, begin, end)                                              \
    do {                                                                                            \
        const T *pa_ = (const T *)(a);                                                              \
        const T *pb_ = (const T *)(b);                                                              \
        T *po_ = (T *)(out);                                                                        \
        switch (kind) {                                                                             \
        case LC_BINARY_ADD:                                                                         \
            for (int64_t i = (begin); i < (end); i++) po_[i] = pa_[i] + pb_[i];                     \
            break;                                                                                  \
        case LC_BINARY_SUB:                                                                         \
            for (int64_t i = (begin); i < (end); i++) po_[i] = pa_[i] - pb_[i];                     \
            break;                                                                                  \
        default:                                                                                    \
            for (int64_t i = (begin); i < (end); i++) po_[i] = pa_[i] / pb_[i];                     \
            break;                                                                                  \
        }                                                                                           \
    } while (0)

LC_INLINE void binary_body(const lc_binary_args *args, int64_t begin, int64_t end, int fma) {
    if (args->dtype == LC_DTYPE_F32)
        LC_BINARY_LOOP(float, args->kind, args->a, args->b, args->out, begin, end);
    else
        LC_BINARY_LOOP(double, args->kind, args->a, args->b, args->out, begin, end);
}

/* x < 0 ? 0 : x keeps NaN (the comparison is false) and -0. */
LC_INLINE void relu_body(const lc_relu_args *args, int64_t begin, int64_t end, int fma) {
    if (args->dtype == LC_DTYPE_F32) {
        const float *x = (const float *)args->x;
        float *o = (float *)args->out;
        for (int64_t i = begin; i < end; i++) o[i] = x[i] < 0.0f ? 0.0f : x[i];
    } else {
        const double *x = (const double *)args->x;
        double *o = (double *)args->out;
        for (int64_t i = begin; i < end; i++) o[i] = x[i] < 0.0 ? 0.0 : x[i];
    }
}

LC_INLINE void gelu_body(const lc_gelu_args *args, int64_t begin, int64_t end, int fma) {
    const float *x = (const float *)args->x;
    float *o = (float *)args->out;
    if (args->approx == LC_GELU_TANH) {
        for (int64_t i = begin; i < end; i++) o[i] = gelu_tanh_1(x[i], fma);
    } else {
        for (int64_t i = begin; i < end; i++) {
            float v = x[i];
            o[i] = v * normal_cdf(v, fma);
        }
    }
}

/* ---- ISA variants and run-time selection -------------------------------------------------------- */

#define LC_DEFINE_VARIANTS(name, args_t)                                                            \
    LC_TARGET_AVX512 static void name##_avx512(void *ctx, int64_t begin, int64_t end) {            \
        name##_body((const args_t *)ctx, begin, end, 1);                                            \
    }                                                                                               \
    LC_TARGET_AVX2 static void name##_avx2(void *ctx, int64_t begin, int64_t end) {                \
        name##_body((const args_t *)ctx, begin, end, 1);                                            \
    }                                                                                               \
    static void name##_base(void *ctx, int64_t begin, int64_t end) {                                \
        name##_body((const args_t *)ctx, begin, end, 0);                                            \
    }                                                                                               \
    static lc_range_fn name##_pick(void) {                                                          \
        const lc_cpu_caps *caps = lc_cpu_caps_get();                                                \
        if (caps && caps->avx512f) return name##_avx512;                                            \
        if (caps && caps->avx2_fma) return name##_avx2;                                             \
        return name##_base;                                                                         \
    }

LC_DEFINE_VARIANTS(binary, lc_binary_args)
LC_DEFINE_VARIANTS(relu, lc_relu_args)
LC_DEFINE_VARIANTS(gelu, lc_gelu_args)

static void run_range(lc_range_fn fn, void *ctx, int64_t n, int64_t parallel_min, int64_t grain) {
    if (n >= parallel_min)
        lc_parallel_for(n, grain, fn, ctx);
    else
        fn(ctx, 0, n);
}

static int is_real_dtype(lc_dtype d) { return d == LC_DTYPE_F32 || d == LC_DTYPE_F64; }

lc_status lc_cpu_binary(const lc_binary_args *args, const char **path) {
    if (args && lc_cpu_is_lowp(args->dtype)) return lc_cpu_lowp_binary(args, path);
    LC_CHECK_INVARIANT(args != NULL && args->n >= 0 && is_real_dtype(args->dtype));
    LC_CHECK_INVARIANT(args->kind >= LC_BINARY_ADD && args->kind < LC_BINARY_COUNT);
    LC_CHECK_INVARIANT(args->n == 0 || (args->a && args->b && args->out));
    if (path) *path = args->dtype == LC_DTYPE_F32 ? "elementwise_f32" : "elementwise_f64";
    run_range(binary_pick(), (void *)args, args->n, LC_EW_PARALLEL_MIN, LC_EW_GRAIN);
    return LC_OK;
}

lc_status lc_cpu_relu(const lc_relu_args *args, const char **path) {
    if (args && lc_cpu_is_lowp(args->dtype)) return lc_cpu_lowp_relu(args, path);
    LC_CHECK_INVARIANT(args != NULL && args->n >= 0 && is_real_dtype(args->dtype));
    LC_CHECK_INVARIANT(args->n == 0 || (args->x && args->out));
    if (path) *path = args->dtype == LC_DTYPE_F32 ? "relu_f32" : "relu_f64";
    run_range(relu_pick(), (void *)args, args->n, LC_EW_PARALLEL_MIN, LC_EW_GRAIN);
    return LC_OK;
}

lc_status lc_cpu_gelu(const lc_gelu_args *args, const char **path) {
    if (args && lc_cpu_is_lowp(args->dtype)) return lc_cpu_lowp_gelu(args, path);
    LC_CHECK_INVARIANT(args != NULL && args->n >= 0 && args->dtype == LC_DTYPE_F32);
    LC_CHECK_INVARIANT(args->approx == LC_GELU_ERF || args->approx == LC_GELU_TANH);
    LC_CHECK_INVARIANT(args->n == 0 || (args->x && args->out));
    if (path) *path = args->approx == LC_GELU_TANH ? "gelu_tanh_f32" : "gelu_erf_f32";
    run_range(gelu_pick(), (void *)args, args->n, LC_GELU_PARALLEL_MIN, LC_GELU_GRAIN);
    return LC_OK;
}
