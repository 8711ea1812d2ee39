/* attention_projection_cpu.c — the CPU kernel of the fused attention_projection op (float32, float16, bfloat16):
 * out [seq, pn] = attention(q, k, v) [seq, d] · w [d, pn] (+ bias [pn]). The attention is sdpa's CPU kernel
 * (sdpa_cpu.c) on the call seen as [1, 1, seq, d] with attention_forward's rules (lc_attention_as_sdpa: its scale,
 * causal, plain_nonfinite), so its rows are attention_forward's float32 rows bit for bit; each task's normalised
 * query block is handed to att_project (lc_cpu_sdpa_rows), which takes it through w (+ bias) into out as it is
 * produced: the [seq, d] attention output never reaches memory. float16/bfloat16: w and bias are converted to
 * float32 once a call, the rows stay float32 (attention_forward would round them to the dtype: the fused op is
 * the more accurate of the two), each output element is summed in float32 (bias first, then p = 0..d-1, as
 * float32) and rounded once. Path "cpu_flash_projected".
 * Tests: tests/python/test_graph_plan.py, tests/python/test_attention_nonfinite.py (plans that fuse attention ->
 * matmul), tests/python/test_dtype_sessions_graph.py (16-bit plans), tests/c/test_lowp_attn.c (16-bit, against
 * float64), tests/c/test_op_table.c.
 */
#include <stdint.h>
#include <stdlib.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/dtype_internal.h"
#include "core/internal.h"

#define AP_CHUNK 256 /* 16-bit out: columns summed in a float32 stack buffer, then rounded */

typedef struct att_proj {
    const float *w, *bias; /* w [d, pn], bias [pn] or NULL: float32 (16-bit calls: converted copies) */
    void *out;             /* [seq, pn] in dtype */
    int64_t d, pn;
    lc_dtype dtype;
    const lc_cvt_rows *cvt;
} att_proj;

/* dst[0, n) = bias[c0, c0 + n) (or 0) + Σ_p t[p] · w[p, c0 + c]: the inner loop over columns vectorises. */
static void att_row(const att_proj *pj, const float *t, int64_t c0, int64_t n, float *restrict dst) {
    for (int64_t c = 0; c < n; c++) dst[c] = pj->bias ? pj->bias[c0 + c] : 0.0f;
    for (int64_t p = 0; p < pj->d; p++) {
        const float a = t[p];
        const float *restrict w = pj->w + p * pj->pn + c0;
        for (int64_t c = 0; c < n; c++) dst[c] += a * w[c];
    }
}

/* out rows [i0, i0 + nq) = rows · w (+ bias). */
static void att_project(void *ctx, int64_t b, int64_t h, int64_t i0, int64_t nq, const float *rows, int64_t stride) {
    const att_proj *pj = ctx;
    const int64_t pn = pj->pn;
    (void)b, (void)h; /* one batch entry and head */
    for (int64_t i = 0; i < nq; i++) {
        const float *t = rows + i * stride;
        if (pj->dtype == LC_DTYPE_F32) {
            att_row(pj, t, 0, pn, (float *)pj->out + (i0 + i) * pn);
            continue;
        }
        uint16_t *dst = (uint16_t *)pj->out + (i0 + i) * pn;
        float acc[AP_CHUNK];
        for (int64_t c0 = 0; c0 < pn; c0 += AP_CHUNK) {
            const int64_t n = pn - c0 < AP_CHUNK ? pn - c0 : AP_CHUNK;
            att_row(pj, t, c0, n, acc);
            (pj->dtype == LC_DTYPE_F16 ? pj->cvt->f32_f16 : pj->cvt->f32_bf16)(acc, dst + c0, (size_t)n);
        }
    }
}

lc_status lc_cpu_attention_projection(const lc_attention_projection_args *args, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && (args->att.dtype == LC_DTYPE_F32 || lc_cpu_is_lowp(args->att.dtype)));
    if (args->att.seq <= 0 || args->att.head_dim <= 0) return LC_OK; /* nothing to write */
    lc_sdpa_args a;
    lc_attention_as_sdpa(&args->att, &a);
    a.out = NULL;
    const int64_t d = args->att.head_dim, pn = args->pn;
    att_proj pj = {.w = args->w, .bias = args->bias, .out = args->out, .d = d, .pn = pn, .dtype = args->att.dtype,
                   .cvt = lc_cvt_rows_get()};
    float *wf = NULL; /* 16-bit: w [d, pn] then bias [pn] as float32 */
    if (pj.dtype != LC_DTYPE_F32) {
        const size_t nw = (size_t)(d * pn), n = nw + (args->bias ? (size_t)pn : 0);
        if (!(wf = malloc(n * sizeof *wf)))
            return lc_error(LC_ERR_OUT_OF_MEMORY, "attention_projection: out of host memory for w as float32 (%zu bytes)",
                            n * sizeof *wf);
        void (*to_f32)(const uint16_t *, float *, size_t) = pj.dtype == LC_DTYPE_F16 ? pj.cvt->f16_f32 : pj.cvt->bf16_f32;
        to_f32(args->w, wf, nw);
        if (args->bias) to_f32(args->bias, wf + nw, (size_t)pn);
        pj.w = wf;
        pj.bias = args->bias ? wf + nw : NULL;
    }
    const lc_status st = lc_cpu_sdpa_rows(&a, att_project, &pj, NULL);
    free(wf);
    if (st == LC_OK && path) *path = "cpu_flash_projected";
    return st;
}
