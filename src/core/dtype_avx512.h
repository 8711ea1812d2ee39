/* dtype_avx512.h — 16-lane float32 -> bfloat16 rounding (nearest even, NaN -> quiet 0x7fc0 with sign)
 * for AVX-512F code: the one definition used by the conversion rows (dtype_x86.c) and by kernels that
 * store bfloat16 results (matmul_lowp_cpu.c). Include only from files compiled for x86-64.
 * Tests: tests/c/test_dtype.c, tests/c/test_lowp.c. */
#ifndef LC_DTYPE_AVX512_H
#define LC_DTYPE_AVX512_H

#include <immintrin.h>

__attribute__((target("avx512f"))) static inline __m256i lc_f32x16_to_bf16(__m512i u) {
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x8000)),
                                                      _mm512_set1_epi32(0x7fc0)));
    return _mm512_cvtepi32_epi16(r);
}

#endif
