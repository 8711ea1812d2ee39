/* cpu_features.h — run-time CPU feature detection, so one build runs on CPUs with and without AVX-512.
 * Kernels compiled for AVX2/AVX-512 are called only when the flag here says the CPU has them.
 * LC_CPU_DISABLE=avx512 (or "avx512,avx2") masks features, to test the fallbacks on any CPU.
 * Tests: tests/c/test_ops.c runs the harness under each mask. */
#ifndef LC_CPU_FEATURES_H
#define LC_CPU_FEATURES_H

typedef struct lc_cpu_caps {
    int avx2_fma;   /* AVX2 + FMA */
    int avx512f;    /* AVX-512 Foundation (with AVX2 + FMA) */
} lc_cpu_caps;

const lc_cpu_caps *lc_cpu_caps_get(void);

#endif
