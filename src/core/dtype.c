/* dtype.c — the dtype traits table, lc_dtype_size/name, and element conversions between float32,
 * float64, float16 and bfloat16 (scalar reference here, SIMD rows in dtype_x86.c, long rows split over
 * the thread pool). Rounding and NaN rules: include/lightning_core/dtype.h.
 * Tests: tests/c/test_dtype.c, tests/python/test_dtype.py. */
#include <string.h>

#include "core/dtype_internal.h"
#include "core/internal.h"
#include "core/threadpool.h"
#include "lightning_core/dtype.h"

static const lc_dtype_traits lc_traits[LC_DTYPE_COUNT] = {
    [LC_DTYPE_F32] = {LC_DTYPE_F32, "float32", 4, 1, LC_DLPACK_FLOAT, 32},
    [LC_DTYPE_F64] = {LC_DTYPE_F64, "float64", 8, 1, LC_DLPACK_FLOAT, 64},
    [LC_DTYPE_F16] = {LC_DTYPE_F16, "float16", 2, 1, LC_DLPACK_FLOAT, 16},
    [LC_DTYPE_BF16] = {LC_DTYPE_BF16, "bfloat16", 2, 1, LC_DLPACK_BFLOAT, 16},
    [LC_DTYPE_I32] = {LC_DTYPE_I32, "int32", 4, 0, LC_DLPACK_INT, 32},
    [LC_DTYPE_I64] = {LC_DTYPE_I64, "int64", 8, 0, LC_DLPACK_INT, 64},
    [LC_DTYPE_BOOL] = {LC_DTYPE_BOOL, "bool", 1, 0, LC_DLPACK_BOOL, 8},
};
_Static_assert(LC_DTYPE_COUNT == 7, "a new dtype needs a traits row");

const lc_dtype_traits *lc_dtype_traits_of(lc_dtype dtype) {
    return ((int)dtype >= 0 && dtype < LC_DTYPE_COUNT) ? &lc_traits[dtype] : NULL;
}

size_t lc_dtype_size(lc_dtype dtype) {
    const lc_dtype_traits *t = lc_dtype_traits_of(dtype);
    return t ? t->size : 0;
}

const char *lc_dtype_name(lc_dtype dtype) {
    const lc_dtype_traits *t = lc_dtype_traits_of(dtype);
    return t ? t->name : "invalid";
}

lc_status lc_dtype_from_name(const char *name, lc_dtype *out) {
    static const struct { const char *alias; lc_dtype dtype; } aliases[] = {
        {"float", LC_DTYPE_F32}, {"double", LC_DTYPE_F64}, {"half", LC_DTYPE_F16}, {"bf16", LC_DTYPE_BF16},
        {"f32", LC_DTYPE_F32}, {"f64", LC_DTYPE_F64}, {"f16", LC_DTYPE_F16},
    };
    if (!name || !out) return lc_error(LC_ERR_INVALID_ARGUMENT, "dtype: expected a name, got NULL");
    for (int i = 0; i < LC_DTYPE_COUNT; i++)
        if (strcmp(name, lc_traits[i].name) == 0) return *out = (lc_dtype)i, LC_OK;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].alias) == 0) return *out = aliases[i].dtype, LC_OK;
    return lc_error(LC_ERR_DTYPE, "dtype: expected float32, float64, float16, bfloat16, int32 or int64, got '%.64s'",
                    name);
}

/* ---- scalar conversions --------------------------------------------------------------------------- */
static uint32_t lc_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float lc_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float lc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = h & 0x7c00u, sig = h & 0x03ffu;
    if (exp == 0x7c00u) return lc_bits_f32(sign | 0x7f800000u | (sig << 13)); /* Inf, NaN (payload kept) */
    if (exp != 0) return lc_bits_f32(sign | (((uint32_t)(h & 0x7fffu) + 0x1c000u) << 13));
    if (sig == 0) return lc_bits_f32(sign);
    uint32_t e = 0; /* subnormal: normalise */
    while (!(sig & 0x0400u)) sig <<= 1, e++;
    return lc_bits_f32(sign | ((113u - e) << 23) | ((sig & 0x03ffu) << 13));
}

uint16_t lc_f32_to_f16(float f) {
    const uint32_t u = lc_f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t exp = u & 0x7f800000u, sig = u & 0x007fffffu;
    if (exp == 0x7f800000u && sig) { /* NaN: keep the top payload bits, never become Inf */
        uint16_t r = (uint16_t)(0x7c00u | (sig >> 13));
        return (uint16_t)(sign | (r == 0x7c00u ? 0x7c01u : r));
    }
    if (exp >= 0x47800000u) return (uint16_t)(sign | 0x7c00u); /* Inf, or >= 2^16: overflow */
    if (exp <= 0x38000000u) {                                    /* half subnormal or zero */
        if (exp < 0x33000000u) return sign;                      /* below half the smallest subnormal */
        const uint32_t e = exp >> 23, full = 0x00800000u | sig, shift = 126u - e; /* 14..24 */
        uint32_t r = full >> shift;
        const uint32_t rest = full & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rest > half || (rest == half && (r & 1u))) r++;
        return (uint16_t)(sign | r); /* a carry into the exponent gives the smallest normal: right */
    }
    uint32_t r = ((exp - 0x38000000u) >> 13) | (sig >> 13);
    const uint32_t rest = sig & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (r & 1u))) r++; /* a carry may round up to Inf: right */
    return (uint16_t)(sign | r);
}

uint16_t lc_f64_to_f16(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    const uint16_t sign = (uint16_t)((u >> 48) & 0x8000u);
    const uint64_t exp = u & 0x7ff0000000000000ull, sig = u & 0x000fffffffffffffull;
    if (exp == 0x7ff0000000000000ull && sig) {
        uint16_t r = (uint16_t)(0x7c00u | (sig >> 42));
        return (uint16_t)(sign | (r == 0x7c00u ? 0x7c01u : r));
    }
    if (exp >= 0x40f0000000000000ull) return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0x3f00000000000000ull) {
        if (exp < 0x3e60000000000000ull) return sign;
        const uint64_t e = exp >> 52, full = 0x0010000000000000ull | sig, shift = 1051u - e; /* 43..53 */
        uint64_t r = full >> shift;
        const uint64_t rest = full & ((1ull << shift) - 1u), half = 1ull << (shift - 1u);
        if (rest > half || (rest == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint64_t r = ((exp - 0x3f00000000000000ull) >> 42) | (sig >> 42);
    const uint64_t rest = sig & 0x3ffffffffffull;
    if (rest > 0x20000000000ull || (rest == 0x20000000000ull && (r & 1u))) r++;
    return (uint16_t)(sign | r);
}

float lc_bf16_to_f32(uint16_t b) { return lc_bits_f32((uint32_t)b << 16); }

uint16_t lc_f32_to_bf16(float f) {
    const uint32_t u = lc_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(((u >> 16) & 0x8000u) | 0x7fc0u); /* NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Scalar rows: the fallback and the tails of the SIMD rows. */
void lc_cvt_f16_f32_scalar(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = lc_f16_to_f32(in[i]);
}
void lc_cvt_f32_f16_scalar(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = lc_f32_to_f16(in[i]);
}
void lc_cvt_bf16_f32_scalar(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = lc_bf16_to_f32(in[i]);
}
void lc_cvt_f32_bf16_scalar(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = lc_f32_to_bf16(in[i]);
}

/* ---- rows by pair ----------------------------------------------------------------------------------- */
typedef void (*lc_row_fn)(const void *in, void *out, size_t n);

static void row_f64_f32(const void *in, void *out, size_t n) {
    const double *a = in;
    float *b = out;
    for (size_t i = 0; i < n; i++) b[i] = (float)a[i];
}
static void row_f32_f64(const void *in, void *out, size_t n) {
    const float *a = in;
    double *b = out;
    for (size_t i = 0; i < n; i++) b[i] = a[i];
}
static void row_f64_f16(const void *in, void *out, size_t n) {
    const double *a = in;
    uint16_t *b = out;
    for (size_t i = 0; i < n; i++) b[i] = lc_f64_to_f16(a[i]);
}
static void row_f64_bf16(const void *in, void *out, size_t n) { /* through float32, as ml_dtypes */
    const double *a = in;
    uint16_t *b = out;
    for (size_t i = 0; i < n; i++) b[i] = lc_f32_to_bf16((float)a[i]);
}
static void row_f16_f64(const void *in, void *out, size_t n) { /* NaN payload kept, as NumPy */
    const uint16_t *a = in;
    double *b = out;
    for (size_t i = 0; i < n; i++) {
        if ((a[i] & 0x7fffu) > 0x7c00u) {
            const uint64_t u = ((uint64_t)(a[i] & 0x8000u) << 48) | 0x7ff0000000000000ull | ((uint64_t)(a[i] & 0x3ffu) << 42);
            memcpy(&b[i], &u, 8);
        } else {
            b[i] = lc_f16_to_f32(a[i]);
        }
    }
}
static void row_bf16_f64(const void *in, void *out, size_t n) {
    const uint16_t *a = in;
    double *b = out;
    for (size_t i = 0; i < n; i++) b[i] = lc_bf16_to_f32(a[i]);
}
static void row_f16_bf16(const void *in, void *out, size_t n) {
    const uint16_t *a = in;
    uint16_t *b = out;
    for (size_t i = 0; i < n; i++) b[i] = lc_f32_to_bf16(lc_f16_to_f32(a[i]));
}
static void row_bf16_f16(const void *in, void *out, size_t n) { /* NaN -> sign | 0x7e00, as ml_dtypes */
    const uint16_t *a = in;
    uint16_t *b = out;
    for (size_t i = 0; i < n; i++)
        b[i] = (a[i] & 0x7fffu) > 0x7f80u ? (uint16_t)((a[i] & 0x8000u) | 0x7e00u) : lc_f32_to_f16(lc_bf16_to_f32(a[i]));
}

static lc_row_fn lc_row_for(lc_dtype dst, lc_dtype src) {
    const lc_cvt_rows *v = lc_cvt_rows_get();
    if (src == LC_DTYPE_F32) {
        if (dst == LC_DTYPE_F16) return (lc_row_fn)v->f32_f16;
        if (dst == LC_DTYPE_BF16) return (lc_row_fn)v->f32_bf16;
        if (dst == LC_DTYPE_F64) return row_f32_f64;
    } else if (src == LC_DTYPE_F16) {
        if (dst == LC_DTYPE_F32) return (lc_row_fn)v->f16_f32;
        if (dst == LC_DTYPE_F64) return row_f16_f64;
        if (dst == LC_DTYPE_BF16) return row_f16_bf16;
    } else if (src == LC_DTYPE_BF16) {
        if (dst == LC_DTYPE_F32) return (lc_row_fn)v->bf16_f32;
        if (dst == LC_DTYPE_F64) return row_bf16_f64;
        if (dst == LC_DTYPE_F16) return row_bf16_f16;
    } else if (src == LC_DTYPE_F64) {
        if (dst == LC_DTYPE_F32) return row_f64_f32;
        if (dst == LC_DTYPE_F16) return row_f64_f16;
        if (dst == LC_DTYPE_BF16) return row_f64_bf16;
    }
    return NULL;
}

typedef struct {
    lc_row_fn fn;
    const char *in;
    char *out;
    size_t in_size, out_size;
} lc_convert_job;

static void lc_convert_range(void *ctx, int64_t begin, int64_t end) {
    const lc_convert_job *j = ctx;
    j->fn(j->in + (size_t)begin * j->in_size, j->out + (size_t)begin * j->out_size, (size_t)(end - begin));
}

#define LC_CONVERT_GRAIN ((int64_t)1 << 17) /* elements worth another thread (~0.5 MB of float32) */
#define LC_CONVERT_STREAM_BYTES ((size_t)16 << 20) /* outputs at least this large bypass the caches */
#define LC_CONVERT_CHUNK 2048                       /* elements a time through an L1 buffer */

/* A long conversion: each chunk is converted into a buffer that stays in L1, then streamed out with
 * non-temporal stores (lc_stream_store), so the output costs one write instead of a read for ownership and
 * a write (measured on the 2-core Zen 5: bfloat16 -> float32 of 64M elements went from ~0.7 to ~0.9 of the
 * copy bandwidth). In place, each chunk is read before it is written. */
static void lc_convert_range_stream(void *ctx, int64_t begin, int64_t end) {
    const lc_convert_job *j = ctx;
    _Alignas(64) unsigned char buf[LC_CONVERT_CHUNK * 8];
    for (int64_t i = begin; i < end; i += LC_CONVERT_CHUNK) {
        const size_t m = (size_t)(end - i < LC_CONVERT_CHUNK ? end - i : LC_CONVERT_CHUNK);
        j->fn(j->in + (size_t)i * j->in_size, buf, m);
        lc_stream_store(j->out + (size_t)i * j->out_size, buf, m * j->out_size);
    }
    lc_stream_fence();
}

lc_status lc_convert(lc_dtype dst_dtype, void *dst, lc_dtype src_dtype, const void *src, size_t n) {
    const lc_dtype_traits *dt = lc_dtype_traits_of(dst_dtype), *st = lc_dtype_traits_of(src_dtype);
    if (!dt || !st || !dt->is_float || !st->is_float)
        return lc_error(LC_ERR_DTYPE, "convert: expected float32, float64, float16 or bfloat16 on both sides, got %s -> %s",
                        lc_dtype_name(src_dtype), lc_dtype_name(dst_dtype));
    if (n == 0) return LC_OK;
    if (!src || !dst) return lc_error(LC_ERR_INVALID_ARGUMENT, "convert: expected data pointers, got NULL");
    if (n > (size_t)INT64_MAX / 8) return lc_error(LC_ERR_INVALID_ARGUMENT, "convert: element count %zu too large", n);
    if (src_dtype == dst_dtype) {
        if (src != dst) memmove(dst, src, n * st->size);
        return LC_OK;
    }
    const char *s = src, *d = dst;
    const int same = s == d && st->size == dt->size;
    if (!same && s < d + n * dt->size && d < s + n * st->size)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "convert: dst overlaps src (only an exact in-place alias of equal element size is allowed)");
    lc_convert_job job = {lc_row_for(dst_dtype, src_dtype), src, dst, st->size, dt->size};
    LC_CHECK_INVARIANT(job.fn != NULL);
    /* In place (equal sizes) each element is read before it is written, by the one thread that owns it. */
    lc_parallel_for((int64_t)n, LC_CONVERT_GRAIN,
                    n * dt->size >= LC_CONVERT_STREAM_BYTES ? lc_convert_range_stream : lc_convert_range, &job);
    return LC_OK;
}
