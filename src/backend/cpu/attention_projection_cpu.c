/* attention_projection_cpu.c — the CPU kernel of the fused attention_projection op (float32):
 * out [seq, pn] = attention(q, k, v) [seq, d] · w [d, pn] (+ bias [pn]). The attention is sdpa's CPU kernel
 * (sdpa_cpu.c) on the call seen as [1, 1, seq, d] with attention_forward's rules (lc_attention_as_sdpa: its scale,
 * causal, plain_nonfinite), so its rows are attention_forward's bit for bit; each task's normalised query block is
 * handed to att_project (lc_cpu_sdpa_rows), which takes it through w (+ bias) into out as it is produced: the
 * [seq, d] attention output never reaches memory. Path "cpu_flash_projected".
 * Tests: tests/python/test_graph_plan.py, tests/python/test_attention_nonfinite.py (plans that fuse attention ->
 * matmul), tests/c/test_op_table.c.
 */
#include <stdint.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/internal.h"

typedef struct att_proj {
    const float *w, *bias; /* w [d, pn], bias [pn] or NULL */
    float *out;            /* [seq, pn] */
    int64_t d, pn;
} att_proj;

/* out rows [i0, i0 + nq) = rows · w (+ bias): row by row, the inner loop over pn vectorises. */
static void att_project(void *ctx, int64_t b, int64_t h, int64_t i0, int64_t nq, const float *rows, int64_t stride) {
    const att_proj *pj = ctx;
    const int64_t d = pj->d, pn = pj->pn;
    (void)b, (void)h; /* one batch entry and head */
    for (int64_t i = 0; i < nq; i++) {
        float *restrict dst = pj->out + (i0 + i) * pn;
        for (int64_t c = 0; c < pn; c++) dst[c] = pj->bias ? pj->bias[c] : 0.0f;
        const float *t = rows + i * stride;
        for (int64_t p = 0; p < d; p++) {
            const float a = t[p];
            const float *restrict w = pj->w + p * pn;
            for (int64_t c = 0; c < pn; c++) dst[c] += a * w[c];
        }
    }
}

lc_status lc_cpu_attention_projection(const lc_attention_projection_args *args, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && args->att.dtype == LC_DTYPE_F32); /* the table: float32 only */
    if (args->att.seq <= 0 || args->att.head_dim <= 0) return LC_OK;   /* nothing to write */
    lc_sdpa_args a;
    lc_attention_as_sdpa(&args->att, &a);
    a.out = NULL;
    att_proj pj = {.w = args->w, .bias = args->bias, .out = args->out, .d = args->att.head_dim, .pn = args->pn};
    const lc_status st = lc_cpu_sdpa_rows(&a, att_project, &pj, NULL);
    if (st == LC_OK && path) *path = "cpu_flash_projected";
    return st;
}
