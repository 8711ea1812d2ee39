/* sample_cpu.c — the sample op on the CPU (lc_sample_args, core/backend.h): one token a row of logits
 * [rows, cols] (float32/float16/bfloat16/float64, each value rounded to float32 and divided by the
 * temperature in float32). Two passes over the pool's rows: the first finds each row's maximum and any NaN
 * (a NaN refuses the call, naming row and column, before out or the counter is touched); the second samples:
 *   top-k threshold: radix select of the k-th largest key (4 passes of 8-bit digits, counts),
 *   total kept weight (integers, sample_math.h), top-p threshold: the same radix select over weights,
 *   the draw: the first kept index whose running weight exceeds floor(u * kept total).
 * Every quantity is an exact integer or a correctly rounded float operation, so the tokens equal the CUDA
 * kernel's (sample_cuda.cu) and the NumPy reference's (lightning_core.testing.sample_ref). The row body is
 * compiled for AVX2+FMA (hardware fmaf) and the baseline ISA (libm fmaf: the same bits).
 * Tests: tests/python/test_sample.py. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/vecmath_cpu.h"
#include "core/cpu_features.h"
#include "core/internal.h"
#include "core/sample_math.h"
#include "core/threadpool.h"
#include "lightning_core/dtype.h"

typedef struct smp_ctx {
    const lc_sample_args *a;
    uint64_t step;
    float *rmax; /* pass 1 writes each row's maximum (NaN: the row holds one) */
} smp_ctx;

#define SMP_INLINE static inline __attribute__((always_inline))

SMP_INLINE float smp_load(const void *x, lc_dtype dt, int64_t i) {
    switch (dt) {
    case LC_DTYPE_F64: return (float)((const double *)x)[i];
    case LC_DTYPE_F16: return lc_f16_to_f32(((const uint16_t *)x)[i]);
    case LC_DTYPE_BF16: return lc_bf16_to_f32(((const uint16_t *)x)[i]);
    default: return ((const float *)x)[i];
    }
}

/* The scaled logit s_j of a row. */
SMP_INLINE float smp_s(const lc_sample_args *a, const void *row, int64_t j) {
    return smp_load(row, a->dtype, j) / a->temperature;
}

/* The largest key t with W(t) = sum of w_j over {key_j >= t, key_j >= floor} >= target, where w_j is 1 (mass
 * 0) or the weight (mass 1); *wt = W(t). Four passes of 8-bit digits from the top: the invariant is that the
 * keys under the current prefix plus `above` (the weight of keys above it) reach the target. */
SMP_INLINE uint32_t smp_select(const lc_sample_args *a, const void *row, float m, int mass, uint32_t floor_key,
                               uint64_t target, uint64_t *wt) {
    uint32_t prefix = 0, mask = 0;
    uint64_t above = 0, last = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        uint64_t hist[256] = {0};
        for (int64_t j = 0; j < a->cols; j++) {
            const float s = smp_s(a, row, j);
            const uint32_t k = lc_sample_key(s);
            if ((k & mask) != prefix || k < floor_key) continue;
            hist[(k >> shift) & 255u] += mass ? lc_sample_weight(s, m) : 1u;
        }
        int b = 255;
        for (; b > 0; b--) {
            if (above + hist[b] >= target) break;
            above += hist[b];
        }
        prefix |= (uint32_t)b << shift;
        mask |= 255u << shift;
        last = hist[b];
    }
    *wt = above + last;
    return prefix;
}

SMP_INLINE int64_t smp_row(const lc_sample_args *a, const void *row, float m, uint64_t bits) {
    const int64_t n = a->cols;
    uint32_t thr = 0;
    uint64_t unused;
    if (a->top_k > 0 && a->top_k < n) thr = smp_select(a, row, m, 0, 0, (uint64_t)a->top_k, &unused);
    uint64_t total = 0;
    for (int64_t j = 0; j < n; j++) {
        const float s = smp_s(a, row, j);
        if (lc_sample_key(s) >= thr) total += lc_sample_weight(s, m);
    }
    if (a->top_p < 1.0f) {
        uint64_t target = (uint64_t)ceil((double)a->top_p * (double)total);
        if (target > total) target = total;
        if (target < 1) target = 1;
        thr = smp_select(a, row, m, 1, thr, target, &total);
    }
    const uint64_t r = lc_sample_mulhi(bits, total);
    uint64_t acc = 0;
    for (int64_t j = 0; j < n; j++) {
        const float s = smp_s(a, row, j);
        if (lc_sample_key(s) < thr) continue;
        acc += lc_sample_weight(s, m);
        if (acc > r) return j;
    }
    return n - 1; /* unreachable: acc reaches total > r */
}

SMP_INLINE void smp_max_body(const smp_ctx *c, int64_t begin, int64_t end) {
    const lc_sample_args *a = c->a;
    const size_t rb = (size_t)a->cols * lc_dtype_size(a->dtype);
    for (int64_t r = begin; r < end; r++) {
        const void *row = (const char *)a->logits + (size_t)r * rb;
        float m = -INFINITY;
        for (int64_t j = 0; j < a->cols; j++) {
            const float s = smp_s(a, row, j);
            if (s != s) {
                m = NAN;
                break;
            }
            if (s > m) m = s;
        }
        c->rmax[r] = m;
    }
}

SMP_INLINE void smp_draw_body(const smp_ctx *c, int64_t begin, int64_t end) {
    const lc_sample_args *a = c->a;
    const size_t rb = (size_t)a->cols * lc_dtype_size(a->dtype);
    for (int64_t r = begin; r < end; r++)
        a->out[r] = smp_row(a, (const char *)a->logits + (size_t)r * rb, c->rmax[r],
                            lc_sample_bits(a->seed, c->step, (uint64_t)r));
}

LC_TARGET_AVX2 static void smp_max_avx2(void *c, int64_t b, int64_t e) { smp_max_body(c, b, e); }
static void smp_max_base(void *c, int64_t b, int64_t e) { smp_max_body(c, b, e); }
LC_TARGET_AVX2 static void smp_draw_avx2(void *c, int64_t b, int64_t e) { smp_draw_body(c, b, e); }
static void smp_draw_base(void *c, int64_t b, int64_t e) { smp_draw_body(c, b, e); }

lc_status lc_cpu_sample(const lc_sample_args *a, const char **path) {
    LC_CHECK_INVARIANT(a != NULL && a->rows >= 0 && a->cols >= 1 && a->temperature > 0.0f && a->top_k >= 0);
    LC_CHECK_INVARIANT(a->top_p > 0.0f && a->top_p <= 1.0f && (a->rows == 0 || (a->logits && a->out)));
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    const int use_fma = caps && caps->avx2_fma;
    smp_ctx c = {a, a->counter ? (uint64_t)*a->counter : 0u, NULL};
    if (a->rows > 0) {
        c.rmax = malloc((size_t)a->rows * sizeof *c.rmax);
        if (!c.rmax) return lc_error(LC_ERR_OUT_OF_MEMORY, "sample: %lld row maxima", (long long)a->rows);
        /* ~ 16k elements a task at least */
        const int64_t grain = a->cols >= (1 << 14) ? 1 : (1 << 14) / a->cols;
        lc_parallel_for(a->rows, grain, use_fma ? smp_max_avx2 : smp_max_base, &c);
        for (int64_t r = 0; r < a->rows; r++) {
            if (c.rmax[r] == c.rmax[r]) continue;
            const void *row = (const char *)a->logits + (size_t)r * (size_t)a->cols * lc_dtype_size(a->dtype);
            int64_t j = 0;
            while (j < a->cols - 1 && smp_load(row, a->dtype, j) == smp_load(row, a->dtype, j)) j++;
            free(c.rmax);
            return lc_error(LC_ERR_INVALID_ARGUMENT, "sample: logits: expected no NaN, got NaN at row %lld, column %lld",
                            (long long)r, (long long)j);
        }
        lc_parallel_for(a->rows, grain, use_fma ? smp_draw_avx2 : smp_draw_base, &c);
        free(c.rmax);
    }
    if (a->counter) *a->counter = (int64_t)(c.step + 1u);
    if (path) *path = use_fma ? "cpu_sample_avx2" : "cpu_sample_scalar";
    return LC_OK;
}
