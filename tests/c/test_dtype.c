/* test_dtype.c — dtype traits and the float16/bfloat16 conversions: every one of the 65536 patterns of
 * each 16-bit type against an independent decoder, round-to-nearest-even at every midpoint between
 * neighbouring values (and one float32 ulp either side), NaN/Inf rules, float64 -> float16 rounding once,
 * and the SIMD rows of lc_convert bit-identical to the scalar reference at odd lengths and offsets.
 * ctest runs it under each LC_CPU_DISABLE mask (CMakeLists.txt). Prints "N passed, N failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype_internal.h"
#include "lightning_core/dtype.h"
#include "check.h"

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Independent decoder of a half: sign, exponent, significand by arithmetic (no bit tricks). */
static double half_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_traits(void) {
    CHECK(lc_dtype_size(LC_DTYPE_F16) == 2 && lc_dtype_size(LC_DTYPE_BF16) == 2 && lc_dtype_size(LC_DTYPE_I64) == 8);
    CHECK(strcmp(lc_dtype_name(LC_DTYPE_BF16), "bfloat16") == 0 && strcmp(lc_dtype_name((lc_dtype)99), "invalid") == 0);
    CHECK(lc_dtype_traits_of((lc_dtype)-1) == NULL && lc_dtype_traits_of(LC_DTYPE_COUNT) == NULL);
    CHECK(lc_dtype_traits_of(LC_DTYPE_BF16)->dlpack_code == LC_DLPACK_BFLOAT);
    CHECK(lc_dtype_traits_of(LC_DTYPE_I32)->is_float == 0 && lc_dtype_traits_of(LC_DTYPE_F16)->dlpack_bits == 16);
    lc_dtype d = LC_DTYPE_COUNT;
    CHECK_OK(lc_dtype_from_name("half", &d) && 0 == 0);
    CHECK(d == LC_DTYPE_F16);
    CHECK_OK(lc_dtype_from_name("bfloat16", &d));
    CHECK(d == LC_DTYPE_BF16);
    CHECK(lc_dtype_from_name("float8", &d) == LC_ERR_DTYPE && strstr(lc_last_error(), "float8"));
    uint16_t h[4];
    float f[4] = {1, 2, 3, 4};
    CHECK(lc_convert(LC_DTYPE_I32, h, LC_DTYPE_F32, f, 4) == LC_ERR_DTYPE);
    CHECK(lc_convert(LC_DTYPE_F16, (char *)f + 2, LC_DTYPE_F32, f, 4) == LC_ERR_INVALID_ARGUMENT); /* overlap */
    CHECK_OK(lc_convert(LC_DTYPE_F16, h, LC_DTYPE_F32, f, 0));
}

static void test_f16_patterns(void) {
    int bad_decode = 0, bad_trip = 0, bad_nan = 0;
    for (uint32_t p = 0; p < 65536; p++) {
        const uint16_t h = (uint16_t)p;
        const float f = lc_f16_to_f32(h);
        const int e = (h >> 10) & 31, m = h & 1023;
        if (e == 31 && m) { /* NaN: payload kept, sign kept */
            bad_nan += !isnan(f) || ((fbits(f) >> 13) & 1023) != (uint32_t)m || (fbits(f) >> 31) != (p >> 15);
        } else if (e == 31) {
            bad_decode += !isinf(f) || (signbit(f) != 0) != (p >> 15);
        } else {
            bad_decode += (double)f != half_value(h) || (signbit(f) != 0) != (p >> 15);
        }
        bad_trip += lc_f32_to_f16(f) != h || (!isnan(f) && lc_f64_to_f16((double)f) != h);
    }
    CHECK(bad_decode == 0 && bad_nan == 0 && bad_trip == 0);
    if (bad_decode || bad_nan || bad_trip) printf("decode %d nan %d trip %d\n", bad_decode, bad_nan, bad_trip);
    /* Midpoints between neighbours (exact in float32) round to the even one; one float32 ulp off, to the
     * nearer. 0x7bff..0x7c00 is the largest finite and the first overflow step. */
    int bad_round = 0;
    for (uint32_t p = 0; p < 0x7c00; p++) {
        for (int s = 0; s < 2; s++) {
            const uint16_t lo = (uint16_t)(p | (s << 15)), hi = (uint16_t)((p + 1) | (s << 15));
            const double mid = (half_value(lo) + (p + 1 == 0x7c00 ? (s ? -65536.0 : 65536.0) : half_value(hi))) / 2;
            const float fm = (float)mid;
            CHECK((double)fm == mid);
            const uint16_t even = (p & 1) ? hi : lo;
            const uint32_t away = fbits(fm) + 1, toward = fbits(fm) - 1; /* magnitude up / down */
            bad_round += lc_f32_to_f16(fm) != even || lc_f64_to_f16(mid) != even;
            bad_round += lc_f32_to_f16(bitsf(away)) != hi || lc_f32_to_f16(bitsf(toward)) != lo;
            /* float64 just above the midpoint rounds up once (through float32 it would tie to even) */
            bad_round += lc_f64_to_f16(s ? mid - fabs(mid) * 1e-12 : mid + fabs(mid) * 1e-12) != hi;
        }
    }
    CHECK(bad_round == 0);
    CHECK(lc_f32_to_f16(bitsf(0x7f800001u)) == 0x7c01 && lc_f32_to_f16(bitsf(0xffc00000u)) == 0xfe00);
    CHECK(lc_f32_to_f16(1e-8f) == 0 && lc_f32_to_f16(-1e-8f) == 0x8000 && lc_f32_to_f16(1e30f) == 0x7c00);
}

static void test_bf16_patterns(void) {
    int bad = 0;
    for (uint32_t p = 0; p < 65536; p++) {
        const uint16_t b = (uint16_t)p;
        const float f = lc_bf16_to_f32(b);
        bad += fbits(f) != (p << 16);
        const int nan = ((p >> 7) & 0xff) == 0xff && (p & 0x7f);
        const uint16_t want = nan ? (uint16_t)((p & 0x8000) | 0x7fc0) : b;
        bad += lc_f32_to_bf16(f) != want;
        if ((p & 0x7fff) < 0x7f80) { /* finite: midpoint to the next, and one ulp either side */
            const uint32_t mid = (p << 16) | 0x8000u;
            const uint16_t even = (p & 1) ? (uint16_t)(p + 1) : b;
            bad += lc_f32_to_bf16(bitsf(mid)) != even || lc_f32_to_bf16(bitsf(mid + 1)) != (uint16_t)(p + 1) ||
                   lc_f32_to_bf16(bitsf(mid - 1)) != b;
        }
    }
    CHECK(bad == 0);
}

/* lc_convert (SIMD rows, threads) bit-identical to the scalar functions on every pattern and on random
 * float32 bits, at odd lengths and unaligned offsets. */
static void test_rows(void) {
    const lc_cvt_rows *rows = lc_cvt_rows_get();
    printf("rows: float16 %s, bfloat16 %s\n", rows->f16_path, rows->bf16_path);
    const size_t n = 65536 + 37;
    uint16_t *h = malloc(n * 2), *h2 = malloc(n * 2);
    float *f = malloc(n * 4), *f2 = malloc(n * 4);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int bad = 0;
    for (int dt = 0; dt < 2; dt++) {
        const lc_dtype d = dt ? LC_DTYPE_BF16 : LC_DTYPE_F16;
        for (size_t i = 0; i < n; i++) h[i] = (uint16_t)(i * 40503u + 17);
        for (size_t off = 0; off < 3; off++) {
            memset(f, 0xff, n * 4);
            CHECK_OK(lc_convert(LC_DTYPE_F32, f + off, d, h + off, n - off - 5));
            for (size_t i = off; i < n - 5; i++) {
                const float r = dt ? lc_bf16_to_f32(h[i]) : lc_f16_to_f32(h[i]);
                bad += fbits(f[i]) != fbits(r);
            }
            bad += fbits(f[n - 5]) != 0xffffffffu; /* nothing past the end */
        }
        for (size_t i = 0; i < n; i++) { /* random bits, with midpoints, NaNs, denormals among them */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint32_t u = (uint32_t)x;
            if (i % 5 == 1) u = (u & 0xffff0000u) | 0x8000u;
            if (i % 5 == 2) u = (u & 0xffffe000u) | 0x1000u;
            if (i % 7 == 3) u &= 0x807fffffu;
            f[i] = bitsf(u);
        }
        for (size_t off = 0; off < 3; off++) {
            memset(h2, 0xee, n * 2);
            CHECK_OK(lc_convert(d, h2 + off, LC_DTYPE_F32, f + off, n - off - 3));
            for (size_t i = off; i < n - 3; i++) bad += h2[i] != (dt ? lc_f32_to_bf16(f[i]) : lc_f32_to_f16(f[i]));
            bad += h2[n - 3] != 0xeeee;
        }
        /* float64 in and out, and the 16-bit pair */
        double *g = malloc(n * 8);
        CHECK_OK(lc_convert(LC_DTYPE_F64, g, d, h, n));
        CHECK_OK(lc_convert(d, h2, LC_DTYPE_F64, g, n));
        for (size_t i = 0; i < n; i++) {
            const float r = dt ? lc_bf16_to_f32(h[i]) : lc_f16_to_f32(h[i]);
            uint64_t gb;
            memcpy(&gb, &g[i], 8);
            bad += !(g[i] == (double)r || (isnan(g[i]) && isnan(r)));
            if (!dt && isnan(r)) /* float16 NaN -> float64 keeps the payload, as NumPy */
                bad += gb != (((uint64_t)(h[i] & 0x8000u) << 48) | 0x7ff0000000000000ull | ((uint64_t)(h[i] & 0x3ffu) << 42));
            bad += h2[i] != (dt ? lc_f32_to_bf16(r) : lc_f64_to_f16(g[i]));
        }
        free(g);
        for (int inplace = 0; inplace < 2; inplace++) { /* between the two 16-bit types, then in place */
            if (inplace) memcpy(h2, h, n * 2);
            CHECK_OK(lc_convert(dt ? LC_DTYPE_F16 : LC_DTYPE_BF16, h2, d, inplace ? h2 : h, n));
            for (size_t i = 0; i < n; i++) {
                const float r = dt ? lc_bf16_to_f32(h[i]) : lc_f16_to_f32(h[i]);
                const uint16_t want = !dt ? lc_f32_to_bf16(r)
                                      : isnan(r) ? (uint16_t)((h[i] & 0x8000u) | 0x7e00u) : lc_f32_to_f16(r);
                bad += h2[i] != want;
            }
        }
    }
    CHECK(bad == 0);
    (void)f2;
    free(h), free(h2), free(f), free(f2);
}

/* Conversions with outputs of >= 16 MiB take the streamed path (an L1 chunk, then non-temporal stores):
 * every element against the scalar rule, misaligned destinations (the store's plain head), in place, and
 * nothing written past the end. */
static void test_streamed(void) {
    const size_t n = ((size_t)9 << 20) + 11;
    uint16_t *h = malloc((n + 8) * 2);
    float *f = malloc((n + 8) * 4);
    CHECK(h != NULL && f != NULL);
    if (!h || !f) return;
    int bad = 0;
    for (int dt = 0; dt < 2; dt++) {
        const lc_dtype d = dt ? LC_DTYPE_BF16 : LC_DTYPE_F16;
        for (size_t off = 0; off < 3; off++) {
            for (size_t i = 0; i < n + 8; i++) h[i] = (uint16_t)(i * 40503u + 17 + off);
            memset(f, 0xff, (n + 8) * 4);
            CHECK_OK(lc_convert(LC_DTYPE_F32, f + off, d, h, n));
            for (size_t i = 0; i < n; i++) bad += fbits(f[off + i]) != fbits(dt ? lc_bf16_to_f32(h[i]) : lc_f16_to_f32(h[i]));
            bad += fbits(f[off + n]) != 0xffffffffu;
            memset(h, 0xee, (n + 8) * 2);
            CHECK_OK(lc_convert(d, h + off, LC_DTYPE_F32, f + off, n));
            for (size_t i = 0; i < n; i++) bad += h[off + i] != (dt ? lc_f32_to_bf16(f[off + i]) : lc_f32_to_f16(f[off + i]));
            bad += h[off + n] != 0xeeee;
        }
        /* in place between the 16-bit types */
        for (size_t i = 0; i < n; i++) h[i] = (uint16_t)(i * 2654435761u >> 7);
        uint16_t *want = malloc(n * 2);
        CHECK(want != NULL);
        if (!want) break;
        for (size_t i = 0; i < n; i++) {
            const float r = dt ? lc_bf16_to_f32(h[i]) : lc_f16_to_f32(h[i]);
            want[i] = !dt ? lc_f32_to_bf16(r) : isnan(r) ? (uint16_t)((h[i] & 0x8000u) | 0x7e00u) : lc_f32_to_f16(r);
        }
        CHECK_OK(lc_convert(dt ? LC_DTYPE_F16 : LC_DTYPE_BF16, h, d, h, n));
        for (size_t i = 0; i < n; i++) bad += h[i] != want[i];
        free(want);
    }
    CHECK(bad == 0);
    free(h), free(f);
}

int main(void) {
    test_traits();
    test_f16_patterns();
    test_bf16_patterns();
    test_rows();
    test_streamed();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
