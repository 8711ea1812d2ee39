/* lowp_check.h — helpers shared by the float16/bfloat16 C tests: the
 * 16-bit <-> double conversions of the library (the reference reads what the op reads), unit roundoff per
 * dtype, a seeded xorshift, poisoned outputs, host <-> tensor copies and error-text checks. Define
 * LOWP_SEED before including it to pick a file's random stream. bf16_cpu_matmul_path (f16_, lowp_): the kernel the CPU
 * bfloat16 (float16) matmul must pick here (so on an AMX machine the tests prove the AMX tiles ran). Only test files include this (static state).
 * Used by test_lowp.c, test_lowp_ops.c, test_lowp_attn.c. */
#ifndef LC_TEST_LOWP_CHECK_H
#define LC_TEST_LOWP_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "backend/cpu/matmul_amx.h"
#include "check.h"
#include "core/cpu_features.h"
#include "lightning_core/dtype.h"
#include "lightning_core/lightning_core.h"

#ifndef LOWP_SEED
#define LOWP_SEED 0x9e3779b97f4a7c15ull
#endif
#define POISON 0x7d01 /* a float16 NaN, a large bfloat16: never a right answer */

static inline const char *last_path(void) {
    static lc_dispatch_info info;
    lc_last_dispatch(&info);
    return info.path ? info.path : "?";
}

/* The path prefix lc_matmul (and linear's GEMM) must report for bfloat16 on the CPU with m rows, after the
 * masks: the in-place GEMV for m <= 4 with AVX-512, else AMX tiles where the CPU and OS allow, else AVX-512
 * BF16 dot products, else the float32 conversion. */
static inline const char *bf16_cpu_matmul_path(int64_t m, int64_t k, int64_t n) {
    const int avx512 = lc_cpu_caps_get()->avx512f && lc_cpu_caps_get()->avx512bw, dot = lc_cpu_caps_get()->avx512bf16;
    if (m <= 4 && avx512) return "bf16_gemv_avx512";
    if (dot && m <= 64 && (m <= 16 || (double)k * (double)n >= 16777216.0)) return "avx512bf16"; /* before AMX */
    if (lc_cpu_amx_ready()) return "amx_bf16";
    if (dot) return "avx512bf16";
    return m <= 64 && avx512 ? "bf16_mid_avx512" : "bf16_via_f32";
}
/* The same for float16 (no AMX or dot-product kernel: widened to float32). */
static inline const char *f16_cpu_matmul_path(int64_t m) {
    const int avx512 = lc_cpu_caps_get()->avx512f && lc_cpu_caps_get()->avx512bw && lc_cpu_caps_get()->f16c;
    if (m <= 4 && avx512) return "f16_gemv_avx512";
    return m <= 64 && avx512 ? "f16_mid_avx512" : "f16_via_f32";
}
static inline const char *lowp_cpu_matmul_path(lc_dtype d, int64_t m, int64_t k, int64_t n) {
    return d == LC_DTYPE_BF16 ? bf16_cpu_matmul_path(m, k, n) : f16_cpu_matmul_path(m);
}
static inline int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static inline uint16_t to16(lc_dtype d, double f) { return d == LC_DTYPE_BF16 ? lc_f32_to_bf16((float)f) : lc_f64_to_f16(f); }
static inline double from16(lc_dtype d, uint16_t h) { return d == LC_DTYPE_BF16 ? lc_bf16_to_f32(h) : lc_f16_to_f32(h); }
static inline double unit(lc_dtype d) { return d == LC_DTYPE_BF16 ? 0x1p-8 : 0x1p-11; }         /* unit roundoff */
static inline double tiny(lc_dtype d) { return d == LC_DTYPE_BF16 ? 0x1p-134 : 0x1p-25; }      /* half a subnormal */
static inline uint16_t nan16(lc_dtype d) { return d == LC_DTYPE_BF16 ? 0x7fc0 : 0x7e00; }
static inline uint16_t inf16(lc_dtype d, int neg) {
    return (uint16_t)((d == LC_DTYPE_BF16 ? 0x7f80 : 0x7c00) | (neg ? 0x8000 : 0));
}

static uint64_t lowp_rng = LOWP_SEED;
static inline double rnd(double lo, double hi) {
    lowp_rng ^= lowp_rng << 13, lowp_rng ^= lowp_rng >> 7, lowp_rng ^= lowp_rng << 17;
    return lo + (hi - lo) * ((double)(lowp_rng >> 11) / 9007199254740992.0);
}

/* n random elements in [lo, hi) rounded to d: the 16-bit patterns and their values. */
static inline void fill(lc_dtype d, int64_t n, double lo, double hi, uint16_t *h, double *v) {
    for (int64_t i = 0; i < n; i++) {
        h[i] = to16(d, rnd(lo, hi));
        v[i] = from16(d, h[i]);
    }
}

static inline void refresh(lc_dtype d, int64_t n, const uint16_t *h, double *v) {
    for (int64_t i = 0; i < n; i++) v[i] = from16(d, h[i]);
}

static inline int64_t numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

static inline lc_tensor_t *up(lc_device dev, lc_dtype d, int ndim, const int64_t *shape, const uint16_t *h) {
    lc_tensor_t *t = NULL;
    CHECK_OK(lc_tensor_from_host(h, (size_t)numel(ndim, shape) * 2, d, dev, ndim, shape, &t));
    return t;
}

static inline lc_tensor_t *poisoned(lc_device dev, lc_dtype d, int ndim, const int64_t *shape) {
    const int64_t n = numel(ndim, shape);
    uint16_t *p = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) p[i] = POISON;
    lc_tensor_t *t = up(dev, d, ndim, shape, p);
    free(p);
    return t;
}

static inline void down(lc_tensor_t *t, uint16_t *h, int64_t n) { CHECK_OK(lc_tensor_to_host(t, h, (size_t)n * 2)); }

static inline int has(const char *s) { return strstr(lc_last_error(), s) != NULL; }

/* 1 when the n elements of t still hold POISON (a refused call wrote nothing). */
static inline int untouched(lc_tensor_t *t, int64_t n) {
    uint16_t *h = malloc((size_t)n * 2);
    down(t, h, n);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) ok &= h[i] == POISON;
    free(h);
    return ok;
}

#endif
