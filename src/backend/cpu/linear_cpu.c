/* linear_cpu.c — lc_cpu_linear: out[m,n] = act(x[m,k] · w[k,n] + bias[n]) (+ residual[m,n], copied before the
 * product since out may be it) on the CPU: the product by
 * lc_cpu_matmul (own kernels or BLAS), then one pass over out per row block adding the bias and
 * applying the activation (GELU through the elementwise kernel, so both forms match lc_gelu exactly).
 * float16/bfloat16 go to lc_cpu_lowp_linear (lowp_cpu.c). lc_cpu_norm_linear (layer_norm_linear /
 * rms_norm_linear): the norm kernel into a workspace of x's dtype, then lc_cpu_linear on it (on the CPU the
 * normed rows are produced and consumed from cache; the fused op saves the caller a tensor, not a pass); the same
 * for silu_mul_linear (silu_mul of gu's gate | up halves row by row into the workspace, then the linear with its
 * residual: bit-identical to lc_silu_mul then lc_linear_residual; tests/python/test_silu_mul_linear.py).
 * Tests: tests/c/test_ops.c (linear group), tests/python/test_ops_linear.py, tests/c/test_lowp_ops.c. */
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/internal.h"
#include "core/threadpool.h"

typedef struct {
    const lc_linear_args *a;
    const float *res; /* [m, n]: a copy of the residual taken before the product (out may be it), or NULL */
} lc_linear_ctx;

void lc_cpu_linear_row_epilogue(float *row, int64_t n, const float *bias, lc_activation act, const float *res) {
    if (bias)
        for (int64_t j = 0; j < n; j++) row[j] += bias[j];
    if (act == LC_ACT_RELU) {
        for (int64_t j = 0; j < n; j++) row[j] = row[j] < 0.0f ? 0.0f : row[j]; /* NaN stays NaN */
    } else if (act == LC_ACT_GELU_ERF || act == LC_ACT_GELU_TANH) {
        lc_gelu_args g = {act == LC_ACT_GELU_TANH ? LC_GELU_TANH : LC_GELU_ERF, LC_DTYPE_F32, n, row, row};
        (void)lc_cpu_gelu(&g, NULL);
    }
    if (res)
        for (int64_t j = 0; j < n; j++) row[j] += res[j];
}

static void lc_linear_rows(void *ctx, int64_t begin, int64_t end) {
    const lc_linear_args *a = ((const lc_linear_ctx *)ctx)->a;
    const float *res = ((const lc_linear_ctx *)ctx)->res;
    for (int64_t i = begin; i < end; i++)
        lc_cpu_linear_row_epilogue((float *)a->out + i * a->n, a->n, (const float *)a->bias, a->act,
                                   res ? res + i * a->n : NULL);
}

lc_status lc_cpu_linear(const lc_linear_args *args, const char **path) {
    LC_CHECK_INVARIANT(args && args->x && args->w && args->out && (int)args->act >= 0 && args->act < LC_ACT_COUNT && !args->w_t);
    if (lc_cpu_is_lowp(args->dtype)) return lc_cpu_lowp_linear(args, path);
    LC_CHECK_INVARIANT(args->dtype == LC_DTYPE_F32);
    lc_linear_ctx ctx = {args, NULL};
    float *res = NULL;
    if (args->residual) { /* copied first: the product overwrites out, which may be the residual */
        int64_t mn;
        if (!lc_mul_ok(args->m, args->n, &mn) || (uint64_t)mn > SIZE_MAX / sizeof(float))
            return lc_error(LC_ERR_INVALID_ARGUMENT, "linear: residual copy size overflows");
        res = lc_aligned_alloc((size_t)(mn > 0 ? mn : 1) * sizeof(float));
        if (!res) return lc_error(LC_ERR_OUT_OF_MEMORY, "linear: residual copy (%lld floats)", (long long)mn);
        memcpy(res, args->residual, (size_t)mn * sizeof(float));
        ctx.res = res;
    }
    lc_matmul_args mm = {LC_DTYPE_F32, args->m, args->k, args->n, args->x, args->w, args->out, 0};
    const char *mm_path = NULL;
    lc_status st = lc_cpu_matmul(&mm, &mm_path);
    if (st == LC_OK && (args->bias || args->act != LC_ACT_NONE || res)) {
        /* Rows of >= 64K elements per task: the epilogue is memory-bound. */
        int64_t grain = (65536 + args->n - 1) / args->n;
        lc_parallel_for(args->m, grain, lc_linear_rows, &ctx);
    }
    lc_aligned_free(res);
    if (st == LC_OK && path) *path = mm_path;
    return st;
}

typedef struct {
    const lc_norm_linear_args *a;
    void *h;
} lc_swiglu_ctx;

/* Rows [begin, end) of h [m,k] = silu(gu[:, :k]) · gu[:, k:], each row one flat silu_mul call (elementwise, so
 * bit-identical to lc_silu_mul over the two halves; the call runs inline on a pool worker). */
static void lc_swiglu_rows(void *ctx, int64_t begin, int64_t end) {
    const lc_swiglu_ctx *c = ctx;
    const lc_linear_args *l = &c->a->lin;
    const size_t es = lc_dtype_size(l->dtype);
    for (int64_t i = begin; i < end; i++) {
        const char *g = (const char *)l->x + (size_t)(i * 2 * l->k) * es;
        lc_silu_args s = {.dtype = l->dtype, .n = l->k, .a = g, .b = g + (size_t)l->k * es,
                          .out = (char *)c->h + (size_t)(i * l->k) * es};
        (void)lc_cpu_silu(&s, NULL); /* its checks hold: dtype from the table, pointers set */
    }
}

/* layer_norm_linear / rms_norm_linear / silu_mul_linear: the prologue (norm, or silu_mul of gu's halves) into a
 * workspace of x's dtype, then lc_cpu_linear on it (with silu_mul_linear's residual). */
lc_status lc_cpu_norm_linear(const lc_norm_linear_args *args, const char **path) {
    const lc_linear_args *l = &args->lin;
    LC_CHECK_INVARIANT(args && l->x && l->w && l->out && (!l->residual || args->kind == LC_NORM_SWIGLU));
    const char *op = args->kind == LC_NORM_SWIGLU ? "silu_mul_linear" : "norm_linear";
    int64_t mk;
    const size_t es = lc_dtype_size(l->dtype);
    if (!lc_mul_ok(l->m, l->k, &mk) || es == 0 || (uint64_t)mk > SIZE_MAX / es)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: prologue workspace size overflows", op);
    void *xn = lc_aligned_alloc((size_t)(mk > 0 ? mk : 1) * es);
    if (!xn) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: prologue workspace (%lld elements)", op, (long long)mk);
    lc_status st = LC_OK;
    if (args->kind == LC_NORM_SWIGLU) {
        lc_swiglu_ctx c = {args, xn};
        lc_parallel_for(l->m, l->k > 0 ? (16384 + l->k - 1) / l->k : l->m + 1, lc_swiglu_rows, &c);
    } else if (args->kind == LC_NORM_RMS) {
        lc_rms_norm_args r = {l->dtype, l->m, l->k, args->eps, l->x, args->gamma, xn};
        st = lc_cpu_rms_norm(&r, NULL);
    } else {
        lc_layer_norm_args n = {l->dtype, l->m, l->k, args->eps, l->x, args->gamma, args->beta, xn};
        st = lc_cpu_layer_norm(&n, NULL);
    }
    if (st == LC_OK) {
        lc_linear_args lin = *l;
        lin.x = xn;
        st = lc_cpu_linear(&lin, path);
    }
    lc_aligned_free(xn);
    return st;
}
