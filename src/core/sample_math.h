/* sample_math.h — the arithmetic of the sample op (lc_sample), written once for the CPU kernel
 * (sample_cpu.c) and the CUDA kernel (sample_cuda.cu, as __host__ __device__) so both pick the same token:
 *   - lc_philox4x32_10: the counter-based generator of Salmon et al. (SC'11), 10 rounds; the draw of row r at
 *     step t with seed s is lc_sample_bits(s, t, r) = out[0] | out[1] << 32 of counter (r lo, r hi, t lo,
 *     t hi) and key (s lo, s hi): stateless, so rows and steps need no shared state.
 *   - lc_sample_key: a float32 scaled logit as an unsigned key of the same order (-0 and +0 one key).
 *   - lc_sample_weight: exp(s - max) in fixed point, floor(e * 2^40) (the row's maximum weighs exactly 2^40; a
 *     weight below 2^-40 of it is 0), from a polynomial built only of fmaf/rintf (correctly rounded on both
 *     sides, so the weights are bit-identical on the CPU and CUDA). All sums over weights are integers:
 *     exact and independent of the summation order.
 *   - lc_sample_mulhi: floor(a * b / 2^64), the draw's target floor(u * total) with u = bits / 2^64.
 * Tests: tests/python/test_sample.py (Philox known-answer vectors through the NumPy reference,
 * lightning_core.testing.sample_ref, which the kernels' tokens are checked against). */
#ifndef LC_CORE_SAMPLE_MATH_H
#define LC_CORE_SAMPLE_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define LC_SAMPLE_HD __host__ __device__ __forceinline__
#else
#define LC_SAMPLE_HD static inline __attribute__((always_inline)) /* into each ISA variant */
#endif

#define LC_SAMPLE_ONE ((uint64_t)1 << 40) /* the weight of the row's maximum */

LC_SAMPLE_HD void lc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
        const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0, hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* 64 random bits for (seed, step, row). */
LC_SAMPLE_HD uint64_t lc_sample_bits(uint64_t seed, uint64_t step, uint64_t row) {
    const uint32_t ctr[4] = {(uint32_t)row, (uint32_t)(row >> 32), (uint32_t)step, (uint32_t)(step >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t o[4];
    lc_philox4x32_10(ctr, key, o);
    return (uint64_t)o[0] | ((uint64_t)o[1] << 32);
}

/* floor(a * b / 2^64). */
LC_SAMPLE_HD uint64_t lc_sample_mulhi(uint64_t a, uint64_t b) {
    const uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
    const uint64_t p0 = al * bl, p1 = al * bh, p2 = ah * bl, p3 = ah * bh;
    const uint64_t mid = (p0 >> 32) + (uint32_t)p1 + (uint32_t)p2;
    return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

/* The order key of a (non-NaN) float: larger float, larger key; -0 and +0 share one key. */
LC_SAMPLE_HD uint32_t lc_sample_key(float s) {
    uint32_t b;
    memcpy(&b, &s, sizeof b);
    if (b == 0x80000000u) b = 0;
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* floor(exp(s - m) * 2^40) for s <= m (m the row's maximum; s == m, infinities included, weighs 2^40).
 * exp(d) = p(r) * 2^n, n = rint(d / ln2), r = d - n ln2 (two-part ln2), p the degree-7 Taylor polynomial
 * (|r| <= 0.35: relative error ~1e-7, the float32 rounding). Only fmaf, rintf and exact scalings: the same
 * bits on every IEEE machine. */
LC_SAMPLE_HD uint64_t lc_sample_weight(float s, float m) {
    if (s == m) return LC_SAMPLE_ONE;
    const float d = s - m;
    if (!(d >= -28.0f)) return 0; /* exp(-28) < 2^-40 (and -inf, NaN) */
    const float n = rintf(d * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, d); /* exact: n has 6 bits, 0.693359375 has 9 */
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.98412698e-4f; /* 1/5040 */
    p = fmaf(p, r, 1.38888889e-3f);
    p = fmaf(p, r, 8.33333333e-3f);
    p = fmaf(p, r, 4.16666667e-2f);
    p = fmaf(p, r, 1.66666667e-1f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    const int e = (int)n + 40 + 127; /* n >= -41: a normal power of two */
    const uint32_t sb = (uint32_t)e << 23;
    float scale;
    memcpy(&scale, &sb, sizeof scale);
    return (uint64_t)(p * scale); /* p * 2^(n+40) < 2^41: exact scaling, truncated */
}

#endif
