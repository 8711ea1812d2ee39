/* rope_cpu.c — CPU rotary position embedding (lc_rope_args, backend.h): the half-split layout of LLaMA /
 * GPT-NeoX over x [batch, heads, seq, head_dim] read through its strides, out contiguous.
 *
 * inv_freq (rotary_dim / 2 values, lc_rope_inv_freq of rope_freq.h: float64, HF's scaling rules) is made
 * once a call. Tasks are (batch, seq) positions, spread over the pool when the call is large: a task forms
 * the angles position * inv_freq[i] in float64, reduces them mod 2π (lc_rope_angle_reduce) and takes
 * float32 cos/sin of the reduced angle, ROPE_CHUNK pairs at a time, then applies them to every head of that
 * position: out[i] = x1 cos - x2 sin, out[i + h2] = x2 cos + x1 sin (float32, one rounding), channels
 * past rotary_dim copied bit for bit. A head's x values are loaded (converted for 16-bit; gathered when the
 * d-stride is not 1) before its out values are written, so out == x (in place, contiguous) is safe.
 * Tests: tests/c/test_ops_llm.c (against float64 loops), tests/python/test_ops_llm.py (refs.ref_rope). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/dtype_internal.h"
#include "core/internal.h"
#include "core/rope_freq.h"
#include "core/threadpool.h"

#define ROPE_CHUNK 256                      /* pairs a chunk (stack buffers) */
#define ROPE_PARALLEL_MIN ((int64_t)1 << 15) /* elements; below, a call runs inline */

typedef struct rope_job {
    const lc_rope_args *a;
    const double *inv_freq;
} rope_job;

/* n elements of dtype dt at p with element stride st, as float32 into dst. */
static void rope_load(lc_dtype dt, const void *p, int64_t st, int64_t n, float *dst) {
    if (dt == LC_DTYPE_F32) {
        const float *x = (const float *)p;
        if (st == 1)
            memcpy(dst, x, (size_t)n * sizeof(float));
        else
            for (int64_t i = 0; i < n; i++) dst[i] = x[i * st];
        return;
    }
    const lc_cvt_rows *cv = lc_cvt_rows_get();
    void (*cvt)(const uint16_t *, float *, size_t) = dt == LC_DTYPE_F16 ? cv->f16_f32 : cv->bf16_f32;
    const uint16_t *x = (const uint16_t *)p;
    if (st == 1) {
        cvt(x, dst, (size_t)n);
    } else {
        for (int64_t i = 0; i < n; i++) cvt(x + i * st, dst + i, 1);
    }
}

/* n float32 values rounded once into contiguous dtype dt at p. */
static void rope_store(lc_dtype dt, void *p, int64_t n, const float *src) {
    if (dt == LC_DTYPE_F32) {
        memcpy(p, src, (size_t)n * sizeof(float));
        return;
    }
    const lc_cvt_rows *cv = lc_cvt_rows_get();
    if (dt == LC_DTYPE_F16)
        cv->f32_f16(src, (uint16_t *)p, (size_t)n);
    else
        cv->f32_bf16(src, (uint16_t *)p, (size_t)n);
}

static int64_t rope_position(const lc_rope_args *a, int64_t b, int64_t s) {
    const int64_t off = b * a->p_st[0] + s * a->p_st[1];
    return a->pos_dtype == LC_DTYPE_I32 ? (int64_t)((const int32_t *)a->positions)[off]
                                        : ((const int64_t *)a->positions)[off];
}

static void rope_range(void *ctx, int64_t begin, int64_t end) {
    const rope_job *j = (const rope_job *)ctx;
    const lc_rope_args *a = j->a;
    const size_t es = lc_dtype_size(a->dtype);
    const int64_t h2 = a->rotary_dim / 2, D = a->head_dim;
    float cs[ROPE_CHUNK], sn[ROPE_CHUNK], x1[ROPE_CHUNK], x2[ROPE_CHUNK], o1[ROPE_CHUNK], o2[ROPE_CHUNK];
    for (int64_t t = begin; t < end; t++) {
        const int64_t b = t / a->seq, s = t % a->seq;
        const double pos = (double)rope_position(a, b, s);
        for (int64_t i0 = 0; i0 < h2; i0 += ROPE_CHUNK) {
            const int64_t n = h2 - i0 < ROPE_CHUNK ? h2 - i0 : ROPE_CHUNK;
            for (int64_t i = 0; i < n; i++) {
                const float r = (float)lc_rope_angle_reduce(pos * j->inv_freq[i0 + i]);
                cs[i] = cosf(r);
                sn[i] = sinf(r);
            }
            for (int64_t h = 0; h < a->heads; h++) {
                const char *xr = (const char *)a->x + (size_t)(b * a->x_st[0] + h * a->x_st[1] + s * a->x_st[2]) * es;
                char *orow = (char *)a->out + (size_t)(((b * a->heads + h) * a->seq + s) * D) * es;
                rope_load(a->dtype, xr + (size_t)(i0 * a->x_st[3]) * es, a->x_st[3], n, x1);
                rope_load(a->dtype, xr + (size_t)((i0 + h2) * a->x_st[3]) * es, a->x_st[3], n, x2);
                for (int64_t i = 0; i < n; i++) {
                    o1[i] = x1[i] * cs[i] - x2[i] * sn[i];
                    o2[i] = x2[i] * cs[i] + x1[i] * sn[i];
                }
                rope_store(a->dtype, orow + (size_t)i0 * es, n, o1);
                rope_store(a->dtype, orow + (size_t)(i0 + h2) * es, n, o2);
            }
        }
        if (a->rotary_dim == D) continue;
        for (int64_t h = 0; h < a->heads; h++) { /* pass-through channels: a bit-exact copy */
            const char *xr = (const char *)a->x + (size_t)(b * a->x_st[0] + h * a->x_st[1] + s * a->x_st[2]) * es;
            char *orow = (char *)a->out + (size_t)(((b * a->heads + h) * a->seq + s) * D) * es;
            if (a->x_st[3] == 1) {
                memmove(orow + (size_t)a->rotary_dim * es, xr + (size_t)a->rotary_dim * es,
                        (size_t)(D - a->rotary_dim) * es);
            } else {
                for (int64_t d = a->rotary_dim; d < D; d++)
                    memcpy(orow + (size_t)d * es, xr + (size_t)(d * a->x_st[3]) * es, es);
            }
        }
    }
}

lc_status lc_cpu_rope(const lc_rope_args *a, const char **path) {
    LC_CHECK_INVARIANT(a != NULL && (a->dtype == LC_DTYPE_F32 || a->dtype == LC_DTYPE_F16 || a->dtype == LC_DTYPE_BF16));
    LC_CHECK_INVARIANT(a->pos_dtype == LC_DTYPE_I32 || a->pos_dtype == LC_DTYPE_I64);
    LC_CHECK_INVARIANT(a->rotary_dim >= 2 && a->rotary_dim % 2 == 0 && a->rotary_dim <= a->head_dim);
    LC_CHECK_INVARIANT(a->batch >= 0 && a->heads >= 0 && a->seq >= 0 && a->opt.theta > 0.0);
    if (path) *path = a->dtype == LC_DTYPE_F32 ? "rope_f32" : a->dtype == LC_DTYPE_F16 ? "rope_f16" : "rope_bf16";
    int64_t positions, total;
    if (!lc_mul_ok(a->batch, a->seq, &positions) || !lc_mul_ok(positions, a->heads, &total) ||
        !lc_mul_ok(total, a->head_dim, &total))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "rope: x: element count overflows");
    if (total == 0) return LC_OK;
    LC_CHECK_INVARIANT(a->x && a->positions && a->out);
    const int64_t h2 = a->rotary_dim / 2;
    double *inv = malloc((size_t)h2 * sizeof(double));
    if (!inv) return lc_error(LC_ERR_OUT_OF_MEMORY, "rope: no memory for %lld frequencies", (long long)h2);
    for (int64_t i = 0; i < h2; i++) inv[i] = lc_rope_inv_freq(i, a->rotary_dim, &a->opt);
    rope_job j = {a, inv};
    const int64_t per = total / positions;
    if (positions > 1 && total >= ROPE_PARALLEL_MIN) {
        const int64_t grain = ROPE_PARALLEL_MIN / 2 / per;
        lc_parallel_for(positions, grain > 0 ? grain : 1, rope_range, &j);
    } else {
        rope_range(&j, 0, positions);
    }
    free(inv);
    return LC_OK;
}
