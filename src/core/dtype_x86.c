/* dtype_x86.c — SIMD rows for float32 <-> float16/bfloat16 (dtype_internal.h): AVX-512F (16 lanes) and
 * F16C/AVX2 (8 lanes), compiled per function with target attributes and picked at run time.
 * float16 uses the hardware conversions (round to nearest even) and then rewrites NaN lanes in integer
 * arithmetic, because the hardware quiets signalling NaNs while NumPy keeps their payload. bfloat16 is
 * integer arithmetic: VCVTNEPS2BF16 (AVX-512 BF16) flushes denormal inputs and outputs to zero, so it
 * cannot be bit-exact with ml_dtypes; the integer form is as fast here (the rows are memory-bound).
 * Tests: tests/c/test_dtype.c (all 65536 patterns per mask). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/cpu_features.h"
#include "core/dtype_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "core/dtype_avx512.h"
#define LC_X86 1
#define T512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))

T512 static void f16_f32_avx512(const uint16_t *in, float *out, size_t n) {
    size_t i = 0;
    const __m512i m7fff = _mm512_set1_epi32(0x7fff), m7c00 = _mm512_set1_epi32(0x7c00);
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(in + i));
        __m512 f = _mm512_cvtph_ps(h);
        __m512i hx = _mm512_cvtepu16_epi32(h);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(hx, m7fff), m7c00);
        if (nan) {
            __m512i fix = _mm512_or_si512(
                _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(hx, _mm512_set1_epi32(0x8000)), 16),
                                _mm512_set1_epi32(0x7f800000)),
                _mm512_slli_epi32(_mm512_and_si512(hx, _mm512_set1_epi32(0x3ff)), 13));
            f = _mm512_mask_mov_ps(f, nan, _mm512_castsi512_ps(fix));
        }
        _mm512_storeu_ps(out + i, f);
    }
    lc_cvt_f16_f32_scalar(in + i, out + i, n - i);
}

T512 static void f32_f16_avx512(const float *in, uint16_t *out, size_t n) {
    size_t i = 0;
    const __m512i abs = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    for (; i + 16 <= n; i += 16) {
        __m512 f = _mm512_loadu_ps(in + i);
        __m256i h = _mm512_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512i u = _mm512_castps_si512(f);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs), inf);
        if (nan) {
            __m512i sig = _mm512_srli_epi32(_mm512_and_si512(u, _mm512_set1_epi32(0x007fffff)), 13);
            sig = _mm512_mask_mov_epi32(sig, _mm512_cmpeq_epi32_mask(sig, _mm512_setzero_si512()),
                                        _mm512_set1_epi32(1));
            __m512i fix = _mm512_or_si512(_mm512_or_si512(
                                              _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x8000)),
                                              _mm512_set1_epi32(0x7c00)),
                                          sig);
            __m512i hx = _mm512_mask_mov_epi32(_mm512_cvtepu16_epi32(h), nan, fix);
            h = _mm512_cvtepi32_epi16(hx);
        }
        _mm256_storeu_si256((__m256i *)(out + i), h);
    }
    lc_cvt_f32_f16_scalar(in + i, out + i, n - i);
}

T512 static void bf16_f32_avx512(const uint16_t *in, float *out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i x = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(in + i)));
        _mm512_storeu_si512((void *)(out + i), _mm512_slli_epi32(x, 16));
    }
    lc_cvt_bf16_f32_scalar(in + i, out + i, n - i);
}

T512 static void f32_bf16_avx512(const float *in, uint16_t *out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), lc_f32x16_to_bf16(_mm512_loadu_si512((const void *)(in + i))));
    lc_cvt_f32_bf16_scalar(in + i, out + i, n - i);
}

/* 8 lanes: AVX2 has no unsigned compare; the values compared are below 2^31, so signed is right. */
T256 static void f16_f32_f16c(const uint16_t *in, float *out, size_t n) {
    size_t i = 0;
    const __m256i m7fff = _mm256_set1_epi32(0x7fff), m7c00 = _mm256_set1_epi32(0x7c00);
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(in + i));
        __m256 f = _mm256_cvtph_ps(h);
        __m256i hx = _mm256_cvtepu16_epi32(h);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(hx, m7fff), m7c00);
        if (!_mm256_testz_si256(nan, nan)) {
            __m256i fix = _mm256_or_si256(
                _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(hx, _mm256_set1_epi32(0x8000)), 16),
                                _mm256_set1_epi32(0x7f800000)),
                _mm256_slli_epi32(_mm256_and_si256(hx, _mm256_set1_epi32(0x3ff)), 13));
            f = _mm256_blendv_ps(f, _mm256_castsi256_ps(fix), _mm256_castsi256_ps(nan));
        }
        _mm256_storeu_ps(out + i, f);
    }
    lc_cvt_f16_f32_scalar(in + i, out + i, n - i);
}

T256 static void f32_f16_f16c(const float *in, uint16_t *out, size_t n) {
    size_t i = 0;
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= n; i += 8) {
        __m256 f = _mm256_loadu_ps(in + i);
        __m256i u = _mm256_castps_si256(f);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
        __m128i h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(out + i), h);
        if (!_mm256_testz_si256(nan, nan)) /* rare: redo the NaN lanes with the scalar rule */
            for (int l = 0; l < 8; l++)
                if ((((const uint32_t *)(in + i))[l] & 0x7fffffffu) > 0x7f800000u)
                    lc_cvt_f32_f16_scalar(in + i + l, out + i + l, 1);
    }
    lc_cvt_f32_f16_scalar(in + i, out + i, n - i);
}

T256 static void bf16_f32_avx2(const uint16_t *in, float *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i x = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(in + i)));
        _mm256_storeu_si256((__m256i *)(out + i), _mm256_slli_epi32(x, 16));
    }
    lc_cvt_bf16_f32_scalar(in + i, out + i, n - i);
}

T256 static void f32_bf16_avx2(const float *in, uint16_t *out, size_t n) {
    size_t i = 0;
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000),
                  one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(in + i));
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), 16);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
        __m256i fix = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x8000)),
                                      _mm256_set1_epi32(0x7fc0));
        r = _mm256_blendv_epi8(r, fix, nan);
        /* pack 8 x u32 (each < 2^16) to 8 x u16: packus works per 128-bit lane, then fix the order */
        __m256i p = _mm256_packus_epi32(r, r);
        p = _mm256_permute4x64_epi64(p, 0x08);
        _mm_storeu_si128((__m128i *)(out + i), _mm256_castsi256_si128(p));
    }
    lc_cvt_f32_bf16_scalar(in + i, out + i, n - i);
}
#endif

#if defined(__x86_64__)
#include <emmintrin.h>

void lc_stream_store(void *dst, const void *src, size_t bytes) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    size_t head = (size_t)(-(uintptr_t)d & 15u);
    if (head > bytes) head = bytes;
    memcpy(d, s, head);
    d += head, s += head, bytes -= head;
    for (; bytes >= 64; d += 64, s += 64, bytes -= 64) {
        const __m128i a = _mm_loadu_si128((const __m128i *)s), b = _mm_loadu_si128((const __m128i *)(s + 16));
        const __m128i c = _mm_loadu_si128((const __m128i *)(s + 32)), e = _mm_loadu_si128((const __m128i *)(s + 48));
        _mm_stream_si128((__m128i *)d, a);
        _mm_stream_si128((__m128i *)(d + 16), b);
        _mm_stream_si128((__m128i *)(d + 32), c);
        _mm_stream_si128((__m128i *)(d + 48), e);
    }
    for (; bytes >= 16; d += 16, s += 16, bytes -= 16) _mm_stream_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
    memcpy(d, s, bytes);
}

void lc_stream_fence(void) { _mm_sfence(); }
#else
void lc_stream_store(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void lc_stream_fence(void) {}
#endif

static lc_cvt_rows lc_rows;
static pthread_once_t lc_rows_once = PTHREAD_ONCE_INIT;

static void lc_rows_pick(void) {
    lc_rows = (lc_cvt_rows){lc_cvt_f16_f32_scalar, lc_cvt_f32_f16_scalar, lc_cvt_bf16_f32_scalar,
                            lc_cvt_f32_bf16_scalar, "scalar", "scalar"};
#ifdef LC_X86
    const lc_cpu_caps *c = lc_cpu_caps_get();
    if (c->avx512f && c->f16c) {
        lc_rows.f16_f32 = f16_f32_avx512, lc_rows.f32_f16 = f32_f16_avx512, lc_rows.f16_path = "avx512";
    } else if (c->f16c) {
        lc_rows.f16_f32 = f16_f32_f16c, lc_rows.f32_f16 = f32_f16_f16c, lc_rows.f16_path = "f16c";
    }
    if (c->avx512f) {
        lc_rows.bf16_f32 = bf16_f32_avx512, lc_rows.f32_bf16 = f32_bf16_avx512, lc_rows.bf16_path = "avx512";
    } else if (c->avx2_fma) {
        lc_rows.bf16_f32 = bf16_f32_avx2, lc_rows.f32_bf16 = f32_bf16_avx2, lc_rows.bf16_path = "avx2";
    }
#endif
}

const lc_cvt_rows *lc_cvt_rows_get(void) {
    pthread_once(&lc_rows_once, lc_rows_pick);
    return &lc_rows;
}
