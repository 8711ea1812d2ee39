/* cpu_peak.c — this CPU's arithmetic ceilings for the CPU targets (one core; run two at once for two):
 * 512-bit and 256-bit FMA and AVX512-BF16 VDPBF16PS, 16 independent accumulator chains each, ~1 s a form.
 * Build and run: gcc -O2 scripts/probes/cpu_peak.c -o /tmp/cpu_peak && /tmp/cpu_peak
 * (docs/benchmarks.md, session 30: the float32 attention and bf16 matmul rows against these ceilings). */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define N (4000000000L / 16)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

__attribute__((target("avx512f"))) static float sum512(__m512 v) { return _mm512_reduce_add_ps(v); }
__attribute__((target("avx2"))) static float sum256(__m256 v) {
    float t[8], s = 0.0f;
    _mm256_storeu_ps(t, v);
    for (int j = 0; j < 8; j++) s += t[j];
    return s;
}

/* NAME(sink): GFLOP/s of 16 chains a[i] = OP(a[i], b, c) (FLOPS an instruction) over N rounds; a[i] starts at
 * SET1(1 + i/1000), b and c (type BT) at BV and CV. */
#define PEAK(NAME, TGT, T, SET1, SUM, FLOPS, BT, BV, CV, OP)                                                   \
    __attribute__((target(TGT))) static double NAME(float *sink) {                                           \
        const BT b = BV, c = CV;                                                                             \
        T a[16];                                                                                             \
        for (int i = 0; i < 16; i++) a[i] = SET1(1.0f + (float)i * 1e-3f);                                  \
        const double t0 = now();                                                                             \
        for (long it = 0; it < N; it++)                                                                      \
            _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++) a[i] = OP(a[i], b, c);                     \
        const double s = now() - t0;                                                                         \
        for (int i = 0; i < 16; i++) *sink += SUM(a[i]);                                                     \
        return (double)N * 16 * FLOPS / s / 1e9;                                                             \
    }
PEAK(fma512, "avx512f", __m512, _mm512_set1_ps, sum512, 32, __m512, _mm512_set1_ps(0.999999f), _mm512_set1_ps(1e-7f),
     _mm512_fmadd_ps)
PEAK(fma256, "avx2,fma", __m256, _mm256_set1_ps, sum256, 16, __m256, _mm256_set1_ps(0.999999f), _mm256_set1_ps(1e-7f),
     _mm256_fmadd_ps)
PEAK(dpbf16, "avx512f,avx512bf16", __m512, _mm512_set1_ps, sum512, 64, __m512bh,
     (__m512bh)_mm512_set1_epi32(0x3f803f80), (__m512bh)_mm512_set1_epi32(0x33d633d6), _mm512_dpbf16_ps)

int main(void) {
    float sink = 0.0f;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) printf("FMA 512-bit:  %6.1f GFLOP/s a core\n", fma512(&sink));
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        printf("FMA 256-bit:  %6.1f GFLOP/s a core\n", fma256(&sink));
    if (__builtin_cpu_supports("avx512bf16")) printf("VDPBF16PS:    %6.1f GFLOP/s a core\n", dpbf16(&sink));
    return sink == 12345.0f; /* keeps the sums live */
}
