/* index_cpu.c — the index ops on the CPU: embedding (rows of weight [vocab, dim] gathered by int32/int64
 * ids; every id is checked before anything is written; a vocabulary shard (sharded, offset) writes zero rows
 * for the ids it does not hold; with learned positions each row adds pos_weight[positions[r]] through the add's
 * own loop, lc_cpu_add_row) and argmax over the last axis (int64 out; the first maximum, NaN counting as the
 * largest, as NumPy). Any float dtype: embedding copies bytes, argmax compares in float32/float64. Rows split
 * over the pool. Tests: tests/python/test_ops_index.py. */
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
