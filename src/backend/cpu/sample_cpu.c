/* sample_cpu.c — the sample op on the CPU (lc_sample_args, core/backend.h): one token a row of logits
 * [rows, cols] (float32/float16/bfloat16/float64, each value rounded to float32 and divided by the
 * temperature in float32), rows spread over the pool. Per row: the maximum (a NaN marks the row; any NaN
 * refuses the call, naming row and column, before out or the counter is touched: tokens go to a scratch
 * array first), then each key and weight once into a per-task cache (rows up to 2^18 columns; longer rows
 * recompute them in every pass), then
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
#include <string.h>

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
    int64_t *tok; /* each row's token, or -1 - (column of its first NaN) */
} smp_ctx;

#define SMP_INLINE static inline __attribute__((always_inline))
#define SMP_CACHE_MAX ((int64_t)1 << 18) /* columns a task caches (16 bytes each); above, values are recomputed */

SMP_INLINE float smp_load(const void *x, lc_dtype dt, int64_t i) {
    switch (dt) {
    case LC_DTYPE_F64: return (float)((const double *)x)[i];
    case LC_DTYPE_F16: return lc_f16_to_f32(((const uint16_t *)x)[i]);
    case LC_DTYPE_BF16: return lc_bf16_to_f32(((const uint16_t *)x)[i]);
    default: return ((const float *)x)[i];
    }
}

/* One row: its logits, maximum, and (when a cache was allocated) every key and weight. */
typedef struct smp_row {
    const lc_sample_args *a;
    const void *x;
    float m;
    uint32_t *key; /* NULL: recompute from x */
    uint64_t *w;
} smp_row;

SMP_INLINE float smp_s(const smp_row *R, int64_t j) { return smp_load(R->x, R->a->dtype, j) / R->a->temperature; }
SMP_INLINE uint32_t smp_key(const smp_row *R, int64_t j) { return R->key ? R->key[j] : lc_sample_key(smp_s(R, j)); }
SMP_INLINE uint64_t smp_w(const smp_row *R, int64_t j) { return R->key ? R->w[j] : lc_sample_weight(smp_s(R, j), R->m); }

/* The largest key t with W(t) = sum of w_j over {key_j >= t, key_j >= floor} >= target, where w_j is 1 (mass
 * 0) or the weight (mass 1); *wt = W(t). Four passes of 8-bit digits from the top: the invariant is that the
 * keys under the current prefix plus `above` (the weight of keys above it) reach the target. */
SMP_INLINE uint32_t smp_select(const smp_row *R, int mass, uint32_t floor_key, uint64_t target, uint64_t *wt) {
    uint32_t prefix = 0, mask = 0;
    uint64_t above = 0, last = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        uint64_t hist[256] = {0};
        for (int64_t j = 0; j < R->a->cols; j++) {
            const uint32_t k = smp_key(R, j);
            if ((k & mask) != prefix || k < floor_key) continue;
            hist[(k >> shift) & 255u] += mass ? smp_w(R, j) : 1u;
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

/* The token of a row without NaN (R->m set, the cache filled when present). */
SMP_INLINE int64_t smp_draw(const smp_row *R, uint64_t bits) {
    const lc_sample_args *a = R->a;
    const int64_t n = a->cols;
    uint32_t thr = 0;
    uint64_t unused;
    if (a->top_k > 0 && a->top_k < n) thr = smp_select(R, 0, 0, (uint64_t)a->top_k, &unused);
    uint64_t total = 0;
    for (int64_t j = 0; j < n; j++)
        if (smp_key(R, j) >= thr) total += smp_w(R, j);
    if (a->top_p < 1.0f) {
        uint64_t target = (uint64_t)ceil((double)a->top_p * (double)total);
        if (target > total) target = total;
        if (target < 1) target = 1;
        thr = smp_select(R, 1, thr, target, &total);
    }
    const uint64_t r = lc_sample_mulhi(bits, total);
    uint64_t acc = 0;
    for (int64_t j = 0; j < n; j++) {
        if (smp_key(R, j) < thr) continue;
        acc += smp_w(R, j);
        if (acc > r) return j;
    }
    return n - 1; /* unreachable: acc reaches total > r */
}

SMP_INLINE void smp_body(const smp_ctx *c, int64_t begin, int64_t end) {
    const lc_sample_args *a = c->a;
    const int64_t n = a->cols;
    const size_t rb = (size_t)n * lc_dtype_size(a->dtype);
    void *cache = n <= SMP_CACHE_MAX ? malloc((size_t)n * (sizeof(uint32_t) + sizeof(uint64_t))) : NULL;
    smp_row R = {a, NULL, 0.0f, NULL, NULL};
    for (int64_t r = begin; r < end; r++) {
        R.x = (const char *)a->logits + (size_t)r * rb;
        R.key = NULL;
        float m = -INFINITY;
        int64_t nan_at = -1;
        for (int64_t j = 0; j < n; j++) {
            const float s = smp_s(&R, j);
            if (s != s) {
                nan_at = j;
                break;
            }
            if (s > m) m = s;
        }
        if (nan_at >= 0) {
            c->tok[r] = -1 - nan_at;
            continue;
        }
        R.m = m;
        if (cache) {
            uint64_t *w = cache;
            uint32_t *key = (uint32_t *)(w + n);
            for (int64_t j = 0; j < n; j++) {
                const float s = smp_s(&R, j);
                key[j] = lc_sample_key(s);
                w[j] = lc_sample_weight(s, m);
            }
            R.key = key, R.w = w;
        }
        c->tok[r] = smp_draw(&R, lc_sample_bits(a->seed, c->step, (uint64_t)r));
    }
    free(cache);
}

LC_TARGET_AVX2 static void smp_avx2(void *c, int64_t b, int64_t e) { smp_body(c, b, e); }
static void smp_base(void *c, int64_t b, int64_t e) { smp_body(c, b, e); }

lc_status lc_cpu_sample(const lc_sample_args *a, const char **path) {
    LC_CHECK_INVARIANT(a != NULL && a->rows >= 0 && a->cols >= 1 && a->temperature > 0.0f && a->top_k >= 0);
    LC_CHECK_INVARIANT(a->top_p > 0.0f && a->top_p <= 1.0f && (a->rows == 0 || (a->logits && a->out)));
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    const int use_fma = caps && caps->avx2_fma;
    smp_ctx c = {a, a->counter ? (uint64_t)*a->counter : 0u, NULL};
    if (a->rows > 0) {
        c.tok = malloc((size_t)a->rows * sizeof *c.tok);
        if (!c.tok) return lc_error(LC_ERR_OUT_OF_MEMORY, "sample: %lld row results", (long long)a->rows);
        const int64_t grain = a->cols >= (1 << 14) ? 1 : (1 << 14) / a->cols; /* ~16k elements a task at least */
        lc_parallel_for(a->rows, grain, use_fma ? smp_avx2 : smp_base, &c);
        for (int64_t r = 0; r < a->rows; r++) {
            if (c.tok[r] >= 0) continue;
            const long long col = (long long)(-1 - c.tok[r]);
            free(c.tok);
            return lc_error(LC_ERR_INVALID_ARGUMENT, "sample: logits: expected no NaN, got NaN at row %lld, column %lld",
                            (long long)r, col);
        }
        memcpy(a->out, c.tok, (size_t)a->rows * sizeof *c.tok);
        free(c.tok);
    }
    if (a->counter) *a->counter = (int64_t)(c.step + 1u);
    if (path) *path = use_fma ? "cpu_sample_avx2" : "cpu_sample_scalar";
    return LC_OK;
}
