/* cpu_features.h — run-time CPU feature detection, so one build runs on CPUs with and without AVX-512.
 * Kernels compiled for AVX2/AVX-512 are called only when the flag here says the CPU has them.
 * LC_CPU_DISABLE (comma separated: avx512, avx2, f16c, avx512bf16, avx512fp16, amx) masks features, to
 * test the fallbacks on any CPU; masking a base ISA masks what builds on it (avx2 -> f16c and avx512...).
 * Tests: tests/c/test_ops.c and tests/c/test_dtype.c run under the masks. */
#ifndef LC_CPU_FEATURES_H
#define LC_CPU_FEATURES_H

typedef struct lc_cpu_caps {
    int avx2_fma;   /* AVX2 + FMA */
    int avx512f;    /* AVX-512 Foundation (with AVX2 + FMA) */
    int f16c;       /* F16C half conversions (with AVX2) */
    int avx512bw;   /* AVX-512 BW + VL (with AVX-512F) */
    int avx512bf16; /* AVX-512 BF16 dot products and conversions (with AVX-512 BW + VL) */
    int avx512fp16; /* AVX-512 FP16 arithmetic (with AVX-512 BW + VL) */
    int amx_bf16;   /* AMX tiles with BF16 (the OS must still grant the tile state before use) */
} lc_cpu_caps;

const lc_cpu_caps *lc_cpu_caps_get(void);

#endif
