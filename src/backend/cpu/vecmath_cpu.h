/* vecmath_cpu.h — scalar float helpers written to auto-vectorise inside the CPU kernels' loops (bit casts, a
 * branch-free select, optional FMA, exp with ~1e-7 relative error and exp_split for an argument carried
 * in two parts), and the ISA target attributes the kernels instantiate their loop bodies with.
 * Shared by elementwise_cpu.c (gelu) and llm_cpu.c (silu, softmax).
 * Tests: tests/c/test_ops.c (gelu), tests/c/test_ops_llm.c (silu, softmax), under each LC_CPU_DISABLE mask. */
#ifndef LC_CPU_VECMATH_H
#define LC_CPU_VECMATH_H

#include <stdint.h>
#include <string.h>

#define LC_INLINE static inline __attribute__((always_inline))
#define LC_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define LC_TARGET_AVX2 __attribute__((target("avx2,fma")))

/* ---- scalar helpers (inlined into the vectorised loops) ------------------------------------------ */

LC_INLINE uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

LC_INLINE uint64_t d2u(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

LC_INLINE float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* c ? a : b without a branch (both operands are already computed), so that loops if-convert on
 * every ISA: GCC keeps a branch around trapping float code unless the target has masked ops. */
LC_INLINE float sel(int c, float a, float b) {
    uint32_t m = 0u - (uint32_t)(c != 0);
    return u2f((f2u(a) & m) | (f2u(b) & ~m));
}

LC_INLINE double seld(int c, double a, double b) {
    uint64_t m = 0u - (uint64_t)(c != 0);
    uint64_t r = (d2u(a) & m) | (d2u(b) & ~m);
    memcpy(&a, &r, sizeof a);
    return a;
}

/* a*b + c, fused on the AVX2/AVX-512 variants (fma is a compile-time constant after inlining). */
LC_INLINE float mad(float a, float b, float c, int fma) { return fma ? __builtin_fmaf(a, b, c) : a * b + c; }

/* 2^n for n in [-252, 254] as a product of two normal powers (so results may be subnormal). */
LC_INLINE float exp2_scale(float p, int32_t n) {
    int32_t n1 = n / 2;
    int32_t n2 = n - n1;
    return p * u2f((uint32_t)(n1 + 127) << 23) * u2f((uint32_t)(n2 + 127) << 23);
}

/* exp(r) for |r| <= ln2/2, ~2e-8 relative before rounding. */
LC_INLINE float exp_poly(float r, int fma) {
    float p = 0x1.6c6a72p-10f;
    p = mad(p, r, 0x1.120b1cp-7f, fma);
    p = mad(p, r, 0x1.5555bap-5f, fma);
    p = mad(p, r, 0x1.5554dep-3f, fma);
    p = mad(p, r, 0.5f, fma);
    return 1.0f + mad(r * r, p, r, fma);
}

#define LC_LOG2E 1.44269504088896341f
#define LC_LN2_HI 0.693145751953125f        /* 15 significant bits: n * LC_LN2_HI is exact */
#define LC_LN2_LO 1.42860682030941723e-06f
#define LC_ROUND_MAGIC 12582912.0f          /* 1.5 * 2^23: adding it rounds to an integer */

/* exp(a + b) where a is exact and |b| is tiny against |a| (b carries the low part of the argument);
 * a + b must lie in [-104, 88]. Relative error ~1e-7. */
LC_INLINE float exp_split(float a, float b, int fma) {
    float kf = (a + b) * LC_LOG2E + LC_ROUND_MAGIC;
    int32_t n = (int32_t)(f2u(kf) - f2u(LC_ROUND_MAGIC));
    float k = kf - LC_ROUND_MAGIC;
    float r = ((a - k * LC_LN2_HI) + b) - k * LC_LN2_LO; /* a - k*ln2hi is exact (Sterbenz) */
    return exp2_scale(exp_poly(r, fma), n);
}


/* exp(x) for x <= 88 (NaN stays NaN); arguments below -104 give exactly 0. */
LC_INLINE float exp_f(float x, int fma) {
    float c = sel(x < -104.0f, -104.0f, x);
    c = sel(c > 88.0f, 88.0f, c);
    float e = exp_split(c, 0.0f, fma);
    e = sel(x < -104.0f, 0.0f, e);
    return sel(x > 88.0f, __builtin_inff(), e);
}

#endif
