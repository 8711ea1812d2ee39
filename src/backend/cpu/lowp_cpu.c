/* lowp_cpu.c — float16 / bfloat16 storage for the elementwise ops, gelu, layer_norm, linear and conv2d
 * on the CPU: the arithmetic is the float32 kernels' own (elementwise_cpu.c, layer_norm_cpu.c,
 * the float32 epilogue of linear), on operands converted to float32 by lc_convert (F16C / AVX-512 /
 * scalar rows, picked at run time), and the float32 result is rounded once to the dtype (nearest even;
 * NaN stays NaN, Inf stays Inf). All operands are of the one dtype (the op table's rule).
 *
 *  - binary add/sub/div, relu, gelu: flat buffers of n elements in blocks of LOWP_BLOCK, each block
 *    converted into stack buffers, computed by the float32 kernel (inline: a block is below its
 *    threading threshold) and converted back; blocks are spread over the pool with the float32 kernels'
 *    thresholds. out may be exactly a, b or x (a block is read whole before it is written).
 *  - layer_norm [rows, cols]: gamma/beta converted once; rows in chunks of about LOWP_LN_CHUNK elements
 *    (at least one row) through a float32 workspace: convert (threaded), the float32 kernel (threaded,
 *    in place), convert back. So a 16-bit row is normalised exactly as its float32 image would be.
 *  - linear: the low-precision matmul leaves the float32 sums unrounded (lc_cpu_matmul_lowp_f32out:
 *    AMX-BF16 / AVX-512 BF16 tiles or the float32 path), then one row pass adds the bias (converted once), applies
 *    ReLU / GELU (the float32 gelu kernel) and rounds the row into out.
 *  - conv2d NCHW (bias, ReLU): the whole operands converted into one float32 workspace, the float32
 *    kernel (conv2d_cpu.c: float32 sums, bias and ReLU on them) into a float32 output there, rounded once
 *    into out. Simple and correct, one extra pass over the operands (speed later). (16-bit attention runs
 *    on sdpa's kernel, sdpa_cpu.c, which converts its tiles itself.)
 * Workspaces are allocated before anything is written; failure is LC_ERR_OUT_OF_MEMORY with out untouched.
 * Tests: tests/c/test_lowp_ops.c (every op x dtype, awkward sizes, NaN placement, under the CPU masks),
 * tests/c/test_lowp_attn.c (attention, conv2d, qkv_pack_repeat). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/internal.h"
#include "core/threadpool.h"
#include "lightning_core/dtype.h"

#define LOWP_BLOCK 1024                       /* elements a block (stack buffers) */
#define LOWP_EW_PARALLEL_MIN ((int64_t)1 << 17) /* as elementwise_cpu.c: add/sub/div/relu are memory-bound */
#define LOWP_EW_GRAIN ((int64_t)1 << 15)
#define LOWP_GELU_PARALLEL_MIN ((int64_t)1 << 15)
#define LOWP_GELU_GRAIN ((int64_t)1 << 13)
#define LOWP_LN_CHUNK ((int64_t)1 << 20)        /* elements of a layer_norm workspace chunk */
#define LOWP_LINEAR_GRAIN ((int64_t)1 << 16)    /* elements of linear's epilogue a task, at least */

static const char *lowp_tag(lc_dtype d) { return d == LC_DTYPE_BF16 ? "bf16" : "f16"; }

/* Runs fn over the blocks of n elements: inline below parallel_min, else over the pool. */
static void lowp_blocks(lc_range_fn fn, void *ctx, int64_t n, int64_t parallel_min, int64_t grain) {
    const int64_t nblocks = (n + LOWP_BLOCK - 1) / LOWP_BLOCK;
    if (n >= parallel_min)
        lc_parallel_for(nblocks, (grain + LOWP_BLOCK - 1) / LOWP_BLOCK, fn, ctx);
    else
        fn(ctx, 0, nblocks);
}

/* ---- binary, relu, gelu ------------------------------------------------------------------------------ */

/* One elementwise pass: a (and b, for the binary ops) converted block by block to float32, the float32
 * kernel (f32) run in place on a's block, rounded back into out. */
typedef struct lowp_ew {
    lc_dtype dtype;
    int64_t n;
    const void *a, *b; /* b: NULL for the unary ops */
    void *out;
    void (*f32)(const struct lowp_ew *e, float *a, const float *b, int64_t len);
    lc_binary_kind kind;
    lc_gelu_approx approx;
} lowp_ew;

/* The float32 kernels below are valid by construction here (float32, n >= 0, exact aliasing): they
 * cannot fail. */
static void ew_binary(const lowp_ew *e, float *a, const float *b, int64_t len) {
    const lc_binary_args f = {.kind = e->kind, .dtype = LC_DTYPE_F32, .n = len, .a = a, .b = b, .out = a};
    (void)lc_cpu_binary(&f, NULL);
}

static void ew_relu(const lowp_ew *e, float *a, const float *b, int64_t len) {
    (void)e, (void)b;
    const lc_relu_args f = {.dtype = LC_DTYPE_F32, .n = len, .x = a, .out = a};
    (void)lc_cpu_relu(&f, NULL);
}

static void ew_gelu(const lowp_ew *e, float *a, const float *b, int64_t len) {
    (void)b;
    const lc_gelu_args f = {.approx = e->approx, .dtype = LC_DTYPE_F32, .n = len, .x = a, .out = a};
    (void)lc_cpu_gelu(&f, NULL);
}

/* A block is below lc_convert's own threading threshold, so each conversion runs inline here. */
static void ew_blocks(void *vctx, int64_t begin, int64_t end) {
    const lowp_ew *e = vctx;
    float fa[LOWP_BLOCK], fb[LOWP_BLOCK];
    for (int64_t blk = begin; blk < end; blk++) {
        const int64_t i0 = blk * LOWP_BLOCK, len = e->n - i0 < LOWP_BLOCK ? e->n - i0 : LOWP_BLOCK;
        (void)lc_convert(LC_DTYPE_F32, fa, e->dtype, (const uint16_t *)e->a + i0, (size_t)len);
        if (e->b) (void)lc_convert(LC_DTYPE_F32, fb, e->dtype, (const uint16_t *)e->b + i0, (size_t)len);
        e->f32(e, fa, fb, len);
        (void)lc_convert(e->dtype, (uint16_t *)e->out + i0, LC_DTYPE_F32, fa, (size_t)len);
    }
}

lc_status lc_cpu_lowp_binary(const lc_binary_args *args, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && args->n >= 0 && lc_cpu_is_lowp(args->dtype));
    LC_CHECK_INVARIANT(args->kind >= LC_BINARY_ADD && args->kind < LC_BINARY_COUNT);
    LC_CHECK_INVARIANT(args->n == 0 || (args->a && args->b && args->out));
    if (path) *path = args->dtype == LC_DTYPE_BF16 ? "elementwise_bf16" : "elementwise_f16";
    lowp_ew e = {.dtype = args->dtype, .n = args->n, .a = args->a, .b = args->b, .out = args->out, .f32 = ew_binary,
                 .kind = args->kind};
    lowp_blocks(ew_blocks, &e, args->n, LOWP_EW_PARALLEL_MIN, LOWP_EW_GRAIN);
    return LC_OK;
}

lc_status lc_cpu_lowp_relu(const lc_relu_args *args, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && args->n >= 0 && lc_cpu_is_lowp(args->dtype));
    LC_CHECK_INVARIANT(args->n == 0 || (args->x && args->out));
    if (path) *path = args->dtype == LC_DTYPE_BF16 ? "relu_bf16" : "relu_f16";
    lowp_ew e = {.dtype = args->dtype, .n = args->n, .a = args->x, .out = args->out, .f32 = ew_relu};
    lowp_blocks(ew_blocks, &e, args->n, LOWP_EW_PARALLEL_MIN, LOWP_EW_GRAIN);
    return LC_OK;
}

lc_status lc_cpu_lowp_gelu(const lc_gelu_args *args, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && args->n >= 0 && lc_cpu_is_lowp(args->dtype));
    LC_CHECK_INVARIANT(args->approx == LC_GELU_ERF || args->approx == LC_GELU_TANH);
    LC_CHECK_INVARIANT(args->n == 0 || (args->x && args->out));
    if (path) {
        static const char *const names[2][2] = {{"gelu_erf_f16", "gelu_tanh_f16"}, {"gelu_erf_bf16", "gelu_tanh_bf16"}};
        *path = names[args->dtype == LC_DTYPE_BF16][args->approx == LC_GELU_TANH];
    }
    lowp_ew e = {.dtype = args->dtype, .n = args->n, .a = args->x, .out = args->out, .f32 = ew_gelu,
                 .approx = args->approx};
    lowp_blocks(ew_blocks, &e, args->n, LOWP_GELU_PARALLEL_MIN, LOWP_GELU_GRAIN);
    return LC_OK;
}

float *lc_cpu_f32_workspace(const char *op, lc_dtype d, const int64_t *parts, int nparts, lc_status *st) {
    int64_t total = 0;
    for (int i = 0; i < nparts; i++) {
        if (parts[i] < 0 || parts[i] > INT64_MAX - total) {
            *st = lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s workspace size overflows", op, lc_dtype_name(d));
            return NULL;
        }
        total += parts[i];
    }
    if ((uint64_t)total > SIZE_MAX / sizeof(float)) {
        *st = lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s workspace size overflows", op, lc_dtype_name(d));
        return NULL;
    }
    float *ws = lc_aligned_alloc((size_t)(total > 0 ? total : 1) * sizeof(float));
    if (!ws) *st = lc_error(LC_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes of float32 workspace", op, (long long)(total * 4));
    return ws;
}

/* ---- layer_norm ------------------------------------------------------------------------------------- */

lc_status lc_cpu_lowp_layer_norm(const lc_layer_norm_args *args, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && args->rows >= 0 && args->cols >= 1 && lc_cpu_is_lowp(args->dtype));
    LC_CHECK_INVARIANT(args->eps > 0.0);
    LC_CHECK_INVARIANT(args->rows == 0 || (args->x && args->out));
    if (path) *path = args->dtype == LC_DTYPE_BF16 ? "layer_norm_bf16" : "layer_norm_f16";
    if (args->rows == 0) return LC_OK;
    const int64_t cols = args->cols;
    int64_t chunk_rows = LOWP_LN_CHUNK / cols;
    if (chunk_rows < 1) chunk_rows = 1;
    if (chunk_rows > args->rows) chunk_rows = args->rows;
    int64_t ws_elems = 0;
    lc_status st = lc_mul_ok(chunk_rows, cols, &ws_elems)
                       ? LC_OK
                       : lc_error(LC_ERR_INVALID_ARGUMENT, "layer_norm: %s workspace size overflows", lc_dtype_name(args->dtype));
    if (st != LC_OK) return st;
    const int64_t parts[3] = {ws_elems, cols, cols}; /* x/out rows, gamma, beta */
    float *ws = lc_cpu_f32_workspace("layer_norm", args->dtype, parts, 3, &st);
    if (!ws) return st;
    float *gamma = args->gamma ? ws + ws_elems : NULL, *beta = args->beta ? ws + ws_elems + cols : NULL;
    if (gamma) st = lc_convert(LC_DTYPE_F32, gamma, args->dtype, args->gamma, (size_t)cols);
    if (st == LC_OK && beta) st = lc_convert(LC_DTYPE_F32, beta, args->dtype, args->beta, (size_t)cols);
    for (int64_t r0 = 0; st == LC_OK && r0 < args->rows; r0 += chunk_rows) {
        const int64_t nr = args->rows - r0 < chunk_rows ? args->rows - r0 : chunk_rows;
        const size_t off = (size_t)r0 * (size_t)cols, len = (size_t)nr * (size_t)cols;
        st = lc_convert(LC_DTYPE_F32, ws, args->dtype, (const uint16_t *)args->x + off, len);
        if (st != LC_OK) break;
        const lc_layer_norm_args f = {.dtype = LC_DTYPE_F32, .rows = nr, .cols = cols, .eps = args->eps, .x = ws,
                                      .gamma = gamma, .beta = beta, .out = ws};
        if ((st = lc_cpu_layer_norm(&f, NULL)) != LC_OK) break;
        st = lc_convert(args->dtype, (uint16_t *)args->out + off, LC_DTYPE_F32, ws, len);
    }
    lc_aligned_free(ws);
    return st;
}

/* ---- linear ----------------------------------------------------------------------------------------- */

typedef struct {
    const lc_linear_args *a;
    float *acc;        /* [m, n] float32 sums */
    const float *bias; /* [n] float32 or NULL */
    const float *res;  /* [m, n] the residual in float32 (converted before the product: out may be it) or NULL */
} linear_ctx;

static void linear_rows(void *vctx, int64_t begin, int64_t end) {
    const linear_ctx *x = vctx;
    const lc_linear_args *a = x->a;
    for (int64_t i = begin; i < end; i++) {
        float *row = x->acc + i * a->n;
        lc_cpu_linear_row_epilogue(row, a->n, x->bias, a->act, x->res ? x->res + i * a->n : NULL);
        (void)lc_convert(a->dtype, (uint16_t *)a->out + i * a->n, LC_DTYPE_F32, row, (size_t)a->n); /* valid: cannot fail */
    }
}

lc_status lc_cpu_lowp_linear(const lc_linear_args *args, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && args->x && args->w && args->out && lc_cpu_is_lowp(args->dtype));
    LC_CHECK_INVARIANT((int)args->act >= 0 && args->act < LC_ACT_COUNT && args->m >= 0 && args->n >= 1);
    int64_t mn = 0;
    lc_status st = lc_mul_ok(args->m, args->n, &mn)
                       ? LC_OK
                       : lc_error(LC_ERR_INVALID_ARGUMENT, "linear: %s workspace size overflows", lc_dtype_name(args->dtype));
    if (st != LC_OK) return st;
    const int64_t parts[3] = {mn, args->bias ? args->n : 0, args->residual ? mn : 0}; /* sums, bias, residual */
    float *ws = lc_cpu_f32_workspace("linear", args->dtype, parts, 3, &st);
    if (!ws) return st;
    float *const res = args->residual ? ws + mn + (args->bias ? args->n : 0) : NULL;
    linear_ctx x = {.a = args, .acc = ws, .bias = args->bias ? ws + mn : NULL, .res = res};
    if (args->bias) st = lc_convert(LC_DTYPE_F32, ws + mn, args->dtype, args->bias, (size_t)args->n);
    if (res && st == LC_OK) st = lc_convert(LC_DTYPE_F32, res, args->dtype, args->residual, (size_t)mn);
    const lc_matmul_args mm = {args->dtype, args->m, args->k, args->n, args->x, args->w, NULL, 0};
    const char *mm_path = NULL;
    if (st == LC_OK) st = lc_cpu_matmul_lowp_f32out(&mm, ws, &mm_path);
    if (st == LC_OK) {
        const int64_t grain = (LOWP_LINEAR_GRAIN + args->n - 1) / args->n;
        lc_parallel_for(args->m, grain, linear_rows, &x);
    }
    lc_aligned_free(ws);
    if (st == LC_OK && path) {
        static _Thread_local char name[96];
        snprintf(name, sizeof name, "%s+epilogue_f32_%s", mm_path ? mm_path : "?", lowp_tag(args->dtype));
        *path = name;
    }
    return st;
}

/* ---- conv2d ------------------------------------------------------------------------------------ */

/* path = the float32 kernel's path + "_f16" / "_bf16" (thread-local: names the last call's path). */
static const char *lowp_path(const char *f32_path, lc_dtype d) {
    static _Thread_local char name[64];
    snprintf(name, sizeof name, "%s_%s", f32_path ? f32_path : "?", lowp_tag(d));
    return name;
}

/* x, w, bias converted whole, the float32 direct kernel (bias and ReLU fused on the float32 sums) into
 * a float32 y, rounded once into y. */
lc_status lc_cpu_lowp_conv2d(const lc_conv2d_args *args, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && lc_cpu_is_lowp(args->dtype));
    int64_t nx = 0, nw = 0, ny = 0;
    const int ok = lc_mul_ok(args->n, args->c, &nx) && lc_mul_ok(nx, args->h, &nx) && lc_mul_ok(nx, args->w, &nx) &&
                   lc_mul_ok(args->oc, args->c, &nw) && lc_mul_ok(nw, args->kh, &nw) && lc_mul_ok(nw, args->kw, &nw) &&
                   lc_mul_ok(args->n, args->oc, &ny) && lc_mul_ok(ny, args->oh, &ny) && lc_mul_ok(ny, args->ow, &ny);
    if (!ok) return lc_error(LC_ERR_INVALID_ARGUMENT, "conv2d: %s workspace size overflows", lc_dtype_name(args->dtype));
    if (ny <= 0) {
        if (path) *path = lowp_path("direct", args->dtype);
        return LC_OK; /* nothing to write */
    }
    LC_CHECK_INVARIANT(args->x && args->weight && args->y);
    const int64_t nb = args->bias ? args->oc : 0;
    const int64_t parts[4] = {nx, nw, nb, ny};
    lc_status st = LC_OK;
    float *ws = lc_cpu_f32_workspace("conv2d", args->dtype, parts, 4, &st);
    if (!ws) return st;
    float *x = ws, *w = ws + nx, *b = args->bias ? ws + nx + nw : NULL, *y = ws + nx + nw + nb;
    st = lc_convert(LC_DTYPE_F32, x, args->dtype, args->x, (size_t)nx);
    if (st == LC_OK) st = lc_convert(LC_DTYPE_F32, w, args->dtype, args->weight, (size_t)nw);
    if (st == LC_OK && b) st = lc_convert(LC_DTYPE_F32, b, args->dtype, args->bias, (size_t)nb);
    const char *fpath = NULL;
    if (st == LC_OK) {
        lc_conv2d_args f = *args;
        f.dtype = LC_DTYPE_F32, f.x = x, f.weight = w, f.bias = b, f.y = y;
        st = lc_cpu_conv2d(&f, &fpath);
    }
    if (st == LC_OK) st = lc_convert(args->dtype, args->y, LC_DTYPE_F32, y, (size_t)ny);
    lc_aligned_free(ws);
    if (st == LC_OK && path) *path = lowp_path(fpath, args->dtype);
    return st;
}
