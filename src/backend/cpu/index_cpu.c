/* index_cpu.c — the index ops on the CPU: embedding (rows of weight [vocab, dim] gathered by int32/int64
 * ids; every id is checked before anything is written; a vocabulary shard (sharded, offset) writes zero rows
 * for the ids it does not hold) and argmax over the last axis (int64 out; the first
 * maximum, NaN counting as the largest, as NumPy). Any float dtype: embedding copies bytes, argmax compares
 * in float32/float64. Rows split over the pool. Tests: tests/python/test_ops_index.py. */
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
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
    const char *w = c->a->weight;
    char *o = c->a->out;
    const int64_t off = c->a->offset, vocab = c->a->vocab;
    for (int64_t r = begin; r < end; r++) {
        const int64_t id = ix_id(c->a->ids, c->a->ids_dtype, r);
        if (id < off || id - off >= vocab) /* only a shard (sharded) gets here: the others were checked */
            memset(o + (size_t)r * c->row_bytes, 0, c->row_bytes);
        else
            memcpy(o + (size_t)r * c->row_bytes, w + (size_t)(id - off) * c->row_bytes, c->row_bytes);
    }
}

lc_status lc_cpu_embedding(const lc_embedding_args *a, const char **path) {
    for (int64_t r = 0; !a->sharded && r < a->rows; r++) {
        const int64_t id = ix_id(a->ids, a->ids_dtype, r);
        if (id < 0 || id >= a->vocab)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "embedding: ids: expected values in 0..%lld (the table's rows), got %lld at flat index %lld",
                            (long long)(a->vocab - 1), (long long)id, (long long)r);
    }
    emb_ctx c = {a, (size_t)a->dim * lc_dtype_size(a->dtype)};
    lc_parallel_for(a->rows, c.row_bytes >= 4096 ? 16 : 256, emb_range, &c);
    if (path) *path = "cpu_embedding";
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

static void argmax_range(void *vctx, int64_t begin, int64_t end) {
    const lc_argmax_args *a = vctx;
    const size_t es = lc_dtype_size(a->dtype);
    for (int64_t r = begin; r < end; r++) {
        const char *row = (const char *)a->x + (size_t)r * (size_t)a->cols * es;
        int64_t best = 0;
        double bv = ix_get(row, a->dtype, 0);
        if (bv == bv) {
            for (int64_t j = 1; j < a->cols; j++) {
                const double v = ix_get(row, a->dtype, j);
                if (v != v) { /* the first NaN wins */
                    best = j;
                    break;
                }
                if (v > bv) {
                    bv = v;
                    best = j;
                }
            }
        }
        a->out[r] = best;
    }
}

lc_status lc_cpu_argmax(const lc_argmax_args *a, const char **path) {
    lc_argmax_args copy = *a;
    lc_parallel_for(a->rows, a->cols >= 4096 ? 1 : 64, argmax_range, &copy);
    if (path) *path = "cpu_argmax";
    return LC_OK;
}
