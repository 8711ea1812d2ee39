/* index_cpu.c — the index ops on the CPU: embedding (rows of weight [vocab, dim] gathered by int32/int64
 * ids; every id is checked before anything is written; a vocabulary shard (sharded, offset) writes zero rows
 * for the ids it does not hold; with learned positions each row adds pos_weight[positions[r]] through the add's
 * own loop, lc_cpu_add_row) and argmax over the last axis (int64 out; the first maximum, NaN counting as the
 * largest, as NumPy). Any float dtype: embedding copies bytes, argmax compares in float32/float64 (path
 * "cpu_argmax"; float32/float16/bfloat16 rows on a CPU with AVX-512F 16 at a time, "cpu_argmax_avx512", the same
 * answers). Rows split over the pool. Tests: tests/python/test_ops_index.py (both paths), tests/c/test_ops_llm.c
 * (test_argmax_cpu, run under the CPU masks and the sanitizer). */
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/cpu_features.h"
#include "core/internal.h"
#include "core/threadpool.h"
#include "lightning_core/dtype.h"

static int64_t ix_id(const void *ids, lc_dtype dt, int64_t r) {
    return dt == LC_DTYPE_I32 ? (int64_t)((const int32_t *)ids)[r] : ((const int64_t *)ids)[r];
}

typedef struct {
    const lc_embedding_args *a;
    size_t row_bytes;
} emb_ctx;

static void emb_range(void *vctx, int64_t begin, int64_t end) {
    const emb_ctx *c = vctx;
    const lc_embedding_args *a = c->a;
    const char *w = a->weight;
    char *o = a->out;
    const int64_t off = a->offset, vocab = a->vocab;
    for (int64_t r = begin; r < end; r++) {
        const int64_t id = ix_id(a->ids, a->ids_dtype, r);
        char *orow = o + (size_t)r * c->row_bytes;
        if (id < off || id - off >= vocab) /* only a shard (sharded) gets here: the others were checked */
            memset(orow, 0, c->row_bytes);
        else if (a->pos_weight) /* positions checked too */
            lc_cpu_add_row(a->dtype, w + (size_t)(id - off) * c->row_bytes,
                           (const char *)a->pos_weight + (size_t)ix_id(a->positions, a->pos_dtype, r) * c->row_bytes,
                           orow, a->dim);
        else
            memcpy(orow, w + (size_t)(id - off) * c->row_bytes, c->row_bytes);
    }
}

/* Every index of one operand within 0..rows-1, else the error naming it (nothing written yet). */
static lc_status emb_check(const void *idx, lc_dtype dt, int64_t n, int64_t rows, const char *name, const char *what) {
    for (int64_t r = 0; r < n; r++) {
        const int64_t id = ix_id(idx, dt, r);
        if (id < 0 || id >= rows)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "embedding: %s: expected values in 0..%lld (%s), got %lld at flat index %lld",
                            name, (long long)(rows - 1), what, (long long)id, (long long)r);
    }
    return LC_OK;
}

lc_status lc_cpu_embedding(const lc_embedding_args *a, const char **path) {
    lc_status st;
    if (!a->sharded && (st = emb_check(a->ids, a->ids_dtype, a->rows, a->vocab, "ids", "the table's rows")) != LC_OK)
        return st;
    if (a->pos_weight && (st = emb_check(a->positions, a->pos_dtype, a->rows, a->pos_rows, "positions",
                                         "pos_weight's rows")) != LC_OK)
        return st;
    emb_ctx c = {a, (size_t)a->dim * lc_dtype_size(a->dtype)};
    lc_parallel_for(a->rows, c.row_bytes >= 4096 ? 16 : 256, emb_range, &c);
    if (path) *path = a->pos_weight ? "cpu_embedding_pos" : "cpu_embedding";
    return LC_OK;
}

static double ix_get(const void *x, lc_dtype dt, int64_t i) {
    switch (dt) {
    case LC_DTYPE_F64: return ((const double *)x)[i];
    case LC_DTYPE_F16: return lc_f16_to_f32(((const uint16_t *)x)[i]);
    case LC_DTYPE_BF16: return lc_bf16_to_f32(((const uint16_t *)x)[i]);
    default: return ((const float *)x)[i];
    }
}

/* The row's argmax, element by element (any dtype). */
static int64_t argmax_row_scalar(const char *row, lc_dtype dt, int64_t cols) {
    int64_t best = 0;
    double bv = ix_get(row, dt, 0);
    if (bv != bv) return 0;
    for (int64_t j = 1; j < cols; j++) {
        const double v = ix_get(row, dt, j);
        if (v != v) return j; /* the first NaN wins */
        if (v > bv) {
            bv = v;
            best = j;
        }
    }
    return best;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define IX_AVX512 __attribute__((target("avx512f")))
#define IX_HAVE_AVX512 1

/* 16 elements from j as float32 (float16 and bfloat16 exactly); lanes past cols read as -inf. */
IX_AVX512 static inline __m512 ix_load16(const char *row, lc_dtype dt, int64_t j, int64_t cols) {
    const int64_t left = cols - j;
    if (dt == LC_DTYPE_F32) {
        const __mmask16 k = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        return _mm512_mask_loadu_ps(_mm512_set1_ps(-__builtin_inff()), k, (const float *)row + j);
    }
    const uint16_t *p = (const uint16_t *)row + j;
    uint16_t tail[16];
    if (left < 16) { /* the row's last elements, then -inf (bfloat16 0xff80, float16 0xfc00) */
        for (int i = 0; i < 16; i++) tail[i] = i < left ? p[i] : (dt == LC_DTYPE_BF16 ? 0xff80u : 0xfc00u);
        p = tail;
    }
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    if (dt == LC_DTYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The same answer as argmax_row_scalar (float32, float16, bfloat16): a pass that stops at the first block with a
 * NaN (its first NaN is the answer) and otherwise keeps the lanes' maxima, then a pass for the first element equal
 * to the maximum (-0 and +0 compare equal, as in the scalar loop, whose strict > keeps the first of them). */
IX_AVX512 static int64_t argmax_row_avx512(const char *row, lc_dtype dt, int64_t cols) {
    __m512 mx = _mm512_set1_ps(-__builtin_inff());
    for (int64_t j = 0; j < cols; j += 16) {
        const __m512 v = ix_load16(row, dt, j, cols);
        const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        if (nan) return j + __builtin_ctz((unsigned)nan);
        mx = _mm512_max_ps(mx, v);
    }
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    for (int64_t j = 0; j < cols; j += 16) {
        const __mmask16 eq = _mm512_cmp_ps_mask(ix_load16(row, dt, j, cols), m, _CMP_EQ_OQ);
        if (eq) return j + __builtin_ctz((unsigned)eq);
    }
    return 0; /* not reached: the maximum is one of the row's elements */
}
#else
#define IX_HAVE_AVX512 0
#endif

typedef struct {
    const lc_argmax_args *a;
    int avx512; /* the AVX-512 rows (float32, float16, bfloat16 on a CPU with AVX-512F after the masks) */
} argmax_ctx;

static void argmax_range(void *vctx, int64_t begin, int64_t end) {
    const argmax_ctx *c = vctx;
    const lc_argmax_args *a = c->a;
    const size_t es = lc_dtype_size(a->dtype);
    for (int64_t r = begin; r < end; r++) {
        const char *row = (const char *)a->x + (size_t)r * (size_t)a->cols * es;
#if IX_HAVE_AVX512
        if (c->avx512) {
            a->out[r] = argmax_row_avx512(row, a->dtype, a->cols);
            continue;
        }
#endif
        a->out[r] = argmax_row_scalar(row, a->dtype, a->cols);
    }
}

lc_status lc_cpu_argmax(const lc_argmax_args *a, const char **path) {
    argmax_ctx c = {a, IX_HAVE_AVX512 && a->dtype != LC_DTYPE_F64 && lc_cpu_caps_get()->avx512f};
    lc_parallel_for(a->rows, a->cols >= 4096 ? 1 : 64, argmax_range, &c);
    if (path) *path = c.avx512 ? "cpu_argmax_avx512" : "cpu_argmax";
    return LC_OK;
}
