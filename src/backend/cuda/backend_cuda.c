/* backend_cuda.c — the CUDA backend table: device memory (caching allocator), pinned-staged copies,
 * stream sync, and the kernel entries (indexed by op id, thin adapters over lc_call) (cuBLASLt GEMM, the small-m
 * 16-bit GEMV for a linear with an epilogue (gemv_cuda.cu); own kernels for sdpa (which attention_forward also
 * runs on), conv2d, elementwise, gelu, layer_norm; float16/bfloat16 conv2d through a float32 image,
 * lc_cuda_images below). Entries receive device pointers and only enqueue work on the
 * backend stream; launch errors are returned at once, faults inside kernels at the next sync (naming
 * the op, see cuda_context.c).
 * Tests: tests/c/test_ops.c, tests/python/test_ops_*.py on "cuda" (GPU machine; skipped without GPU). */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/cuda_graph.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/gemm_cublaslt.h"
#include "backend/cuda/sdpa_cudnn.h"
#include "core/internal.h"

static int lc_cuda_backend_available(void) { return lc_cuda_available(); }

/* Maps a launch result; records the op for fault reports at the next sync. */
static lc_status lc_launched(const char *op, cudaError_t err) {
    lc_cuda_note_op(op);
    return lc_cuda_check(err, op);
}

/* One launch of the GEMV (nrm: with the norm prologue), its split-k workspace from the stream-ordered pool
 * (capturable; freed stream-ordered: the next user of the block runs after this kernel). */
static lc_status lc_cuda_gemv_run(const lc_cuda_ctx *ctx, const lc_linear_args *a, const lc_norm_linear_args *nrm,
                                  const char *op, const char **path) {
    const size_t ws_bytes = lc_cuda_gemv_workspace(a->m, a->k, a->n, a->w_t, ctx->num_sms, NULL);
    void *ws = NULL;
    if (ws_bytes) {
        lc_status st = lc_cuda_alloc(ws_bytes, &ws);
        if (st != LC_OK) return lc_error_wrap(st, "%s: gemv workspace", op);
    }
    const cudaStream_t stream = lc_cuda_stream(ctx);
    lc_status st = lc_launched(op, nrm ? lc_cuda_launch_gemv_norm(nrm, ws, ws_bytes, ctx->num_sms, stream)
                                       : lc_cuda_launch_gemv(a, ws, ws_bytes, ctx->num_sms, stream));
    lc_cuda_free(ws);
    static const char *const names[3][3][2] = {{{"cuda_gemv_f16", "cuda_gemv_bf16"},
                                                {"cuda_norm_gemv_f16", "cuda_norm_gemv_bf16"},
                                                {"cuda_swiglu_gemv_f16", "cuda_swiglu_gemv_bf16"}},
                                               {{"cuda_gemv_nk_f16", "cuda_gemv_nk_bf16"},
                                                {"cuda_norm_gemv_nk_f16", "cuda_norm_gemv_nk_bf16"},
                                                {"cuda_swiglu_gemv_nk_f16", "cuda_swiglu_gemv_nk_bf16"}},
                                               {{"cuda_gemv_nk_ring_f16", "cuda_gemv_nk_ring_bf16"},
                                                {"cuda_norm_gemv_nk_ring_f16", "cuda_norm_gemv_nk_ring_bf16"},
                                                {"cuda_swiglu_gemv_nk_ring_f16", "cuda_swiglu_gemv_nk_ring_bf16"}}};
    if (st == LC_OK && path) { /* the kernel the launch took (the ring's plan asked again only for the name) */
        const int kind = !nrm ? 0 : nrm->kind == LC_NORM_SWIGLU ? 2 : 1;
        const int form = !a->w_t ? 0 : lc_cuda_gemv_ring_fits(a->m, a->k, a->n, 1, ctx->num_sms, kind == 1) ? 2 : 1;
        *path = names[form][kind][a->dtype == LC_DTYPE_BF16];
    }
    return st;
}

/* The small-m 16-bit GEMV (gemv_cuda.cu) for a linear with an epilogue (bias, activation or residual): taken
 * when lc_cuda_gemv_fits and the env LC_GEMV is not "0" (read at each call, for A/B timing against the cuBLASLt
 * path). A bare product with w row-major stays on cuBLASLt: on the H100 (2026-12-05, m = 1, w from DRAM) its GEMV
 * read w at 0.82-1.13x the speed of ours, while ours saves the epilogue kernel (2-3 us in a decode step) when there
 * is one. A w given as the transpose of [n, k] (w_t: the [n, k] kernel, whole rows a warp, no split) takes the GEMV
 * for bare products too.
 * *taken = 0: not taken, nothing enqueued (the caller runs its cuBLASLt path). The split-k workspace comes from
 * the stream-ordered pool (capturable). */
static lc_status lc_cuda_try_gemv(const lc_linear_args *a, const char *op, const char **path, int *taken) {
    *taken = 0;
    const char *env = getenv("LC_GEMV");
    if ((env && strcmp(env, "0") == 0) || !lc_cuda_gemv_fits(a)) return LC_OK;
    if (!a->w_t && !a->bias && a->act == LC_ACT_NONE && !a->residual) return LC_OK; /* a bare product: cuBLASLt */
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: cuda: no usable GPU", op);
    *taken = 1;
    return lc_cuda_gemv_run(ctx, a, NULL, op, path);
}

static lc_status lc_cuda_matmul(const lc_matmul_args *args, const char **path) {
    lc_cuda_note_op("matmul");
    return lc_cuda_gemm(args, NULL, LC_GEMM_EPILOGUE_NONE, path);
}

static int lc_cuda_lowp(lc_dtype d) { return d == LC_DTYPE_F16 || d == LC_DTYPE_BF16; }

/* float16/bfloat16 conv2d runs the float32 kernels on a float32 image of the operands in one device
 * workspace (lc_cuda_launch_cast in: exact; out: one rounding to nearest even), allocated before anything
 * is enqueued: correct, one extra pass over the operands (templated kernels later). */
static lc_status lc_cuda_images(const char *op, lc_dtype d, const void *const *src, const int64_t *n, int count,
                                size_t head_bytes, void **mem, float **img) {
    size_t bytes = (head_bytes + 255) & ~(size_t)255;
    for (int i = 0; i < count; i++) {
        if (n[i] < 0 || (uint64_t)n[i] > (SIZE_MAX - bytes) / sizeof(float) - 64)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s workspace size overflows", op, lc_dtype_name(d));
        bytes += ((size_t)n[i] * sizeof(float) + 255) & ~(size_t)255;
    }
    lc_status st = lc_cuda_alloc(bytes ? bytes : 256, mem);
    if (st != LC_OK) return lc_error_wrap(st, "%s: %s workspace", op, lc_dtype_name(d));
    char *p = (char *)*mem + ((head_bytes + 255) & ~(size_t)255);
    for (int i = 0; i < count; i++) {
        img[i] = src[i] || i == count - 1 ? (float *)p : NULL; /* the last image is the output's */
        p += ((size_t)n[i] * sizeof(float) + 255) & ~(size_t)255;
    }
    return LC_OK;
}

/* Enqueues the casts of the present inputs (all but the last image) into their float32 images. */
static cudaError_t lc_cuda_cast_in(lc_dtype d, const void *const *src, const int64_t *n, float *const *img, int count,
                                   cudaStream_t stream) {
    cudaError_t err = cudaSuccess;
    for (int i = 0; err == cudaSuccess && i < count - 1; i++)
        if (src[i]) err = lc_cuda_launch_cast(LC_DTYPE_F32, img[i], d, src[i], n[i], stream);
    return err;
}

static lc_status lc_cuda_conv2d(const lc_conv2d_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "conv2d_nchw: cuda: no usable GPU");
    const int lowp = lc_cuda_lowp(args->dtype);
    if (!lowp && args->dtype != LC_DTYPE_F32)
        return lc_error(LC_ERR_INTERNAL, "conv2d_nchw: cuda: dtype %s has no kernel", lc_dtype_name(args->dtype));
    const int k3 = args->kh == 3 && args->kw == 3;
    const int di = lowp ? (args->dtype == LC_DTYPE_F16 ? 1 : 2) : 0;
    static const char *const names[2][3] = {{"cuda_direct", "cuda_direct_f32img_f16", "cuda_direct_f32img_bf16"},
                                            {"cuda_direct3x3", "cuda_direct3x3_f32img_f16", "cuda_direct3x3_f32img_bf16"}};
    if (!lowp) {
        lc_status st = lc_launched("conv2d_nchw", lc_cuda_launch_conv2d(args, lc_cuda_stream(ctx)));
        if (st == LC_OK && path) *path = names[k3][0];
        return st;
    }
    int64_t nx = 0, nw = 0, ny = 0;
    if (!lc_mul_ok(args->n, args->c, &nx) || !lc_mul_ok(nx, args->h, &nx) || !lc_mul_ok(nx, args->w, &nx) ||
        !lc_mul_ok(args->oc, args->c, &nw) || !lc_mul_ok(nw, args->kh, &nw) || !lc_mul_ok(nw, args->kw, &nw) ||
        !lc_mul_ok(args->n, args->oc, &ny) || !lc_mul_ok(ny, args->oh, &ny) || !lc_mul_ok(ny, args->ow, &ny))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "conv2d_nchw: %s workspace size overflows", lc_dtype_name(args->dtype));
    if (ny <= 0) {
        if (path) *path = names[k3][di];
        return LC_OK; /* nothing to write */
    }
    const void *src[4] = {args->x, args->weight, args->bias, NULL};
    const int64_t ns[4] = {nx, nw, args->bias ? args->oc : 0, ny};
    float *img[4];
    void *ws = NULL;
    lc_status st = lc_cuda_images("conv2d_nchw", args->dtype, src, ns, 4, 0, &ws, img);
    if (st != LC_OK) return st;
    const cudaStream_t stream = lc_cuda_stream(ctx);
    lc_conv2d_args f = *args;
    f.dtype = LC_DTYPE_F32, f.x = img[0], f.weight = img[1], f.bias = img[2], f.y = img[3];
    cudaError_t err = lc_cuda_cast_in(args->dtype, src, ns, img, 4, stream);
    if (err == cudaSuccess) err = lc_cuda_launch_conv2d(&f, stream);
    if (err == cudaSuccess) err = lc_cuda_launch_cast(args->dtype, args->y, LC_DTYPE_F32, img[3], ny, stream);
    st = lc_launched("conv2d_nchw", err);
    lc_cuda_free(ws);
    if (st == LC_OK && path) *path = names[k3][di];
    return st;
}

static const char *lc_dtype_path(const char *const *names, size_t count, lc_dtype d) {
    return ((size_t)d < count && names[d]) ? names[d] : "cuda_unknown_dtype";
}

static lc_status lc_cuda_binary(const lc_binary_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "elementwise: cuda: no usable GPU");
    lc_status st = lc_launched("elementwise", lc_cuda_launch_binary(args, lc_cuda_stream(ctx)));
    if (st == LC_OK && path) {
        static const char *const names[] = {[LC_DTYPE_F32] = "cuda_elementwise_f32", [LC_DTYPE_F64] = "cuda_elementwise_f64",
                                            [LC_DTYPE_F16] = "cuda_elementwise_f16", [LC_DTYPE_BF16] = "cuda_elementwise_bf16"};
        *path = lc_dtype_path(names, sizeof names / sizeof names[0], args->dtype);
    }
    return st;
}

static lc_status lc_cuda_relu(const lc_relu_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "relu: cuda: no usable GPU");
    lc_status st = lc_launched("relu", lc_cuda_launch_relu(args, lc_cuda_stream(ctx)));
    if (st == LC_OK && path) {
        static const char *const names[] = {[LC_DTYPE_F32] = "cuda_relu_f32", [LC_DTYPE_F64] = "cuda_relu_f64",
                                            [LC_DTYPE_F16] = "cuda_relu_f16", [LC_DTYPE_BF16] = "cuda_relu_bf16"};
        *path = lc_dtype_path(names, sizeof names / sizeof names[0], args->dtype);
    }
    return st;
}

static lc_status lc_cuda_gelu(const lc_gelu_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "gelu: cuda: no usable GPU");
    lc_status st = lc_launched("gelu", lc_cuda_launch_gelu(args, lc_cuda_stream(ctx)));
    if (st == LC_OK && path) {
        static const char *const names[3][2] = {{"cuda_gelu_erf", "cuda_gelu_tanh"},
                                                {"cuda_gelu_erf_f16", "cuda_gelu_tanh_f16"},
                                                {"cuda_gelu_erf_bf16", "cuda_gelu_tanh_bf16"}};
        *path = names[args->dtype == LC_DTYPE_F16 ? 1 : args->dtype == LC_DTYPE_BF16 ? 2 : 0][args->approx == LC_GELU_TANH];
    }
    return st;
}

static lc_status lc_cuda_layer_norm(const lc_layer_norm_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "layer_norm: cuda: no usable GPU");
    lc_status st = lc_launched("layer_norm", lc_cuda_launch_layer_norm(args, lc_cuda_stream(ctx)));
    if (st == LC_OK && path)
        *path = args->dtype == LC_DTYPE_F16 ? "cuda_layer_norm_f16" : args->dtype == LC_DTYPE_BF16 ? "cuda_layer_norm_bf16"
                                                                                                 : "cuda_layer_norm";
    return st;
}

static lc_status lc_cuda_qkv_pack(const lc_qkv_pack_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "qkv_pack_repeat: cuda: no usable GPU");
    lc_status st = lc_launched("qkv_pack_repeat", lc_cuda_launch_qkv_pack(args, lc_cuda_stream(ctx)));
    if (st == LC_OK && path) *path = args->dtype == LC_DTYPE_F32 ? "cuda_qkv_pack" : "cuda_qkv_pack16";
    return st;
}

static lc_status lc_cuda_conv_attention(const lc_conv_attention_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "conv_attention: cuda: no usable GPU");
    lc_status st = lc_launched("conv_attention", lc_cuda_launch_conv_attention(args, lc_cuda_stream(ctx)));
    if (st == LC_OK && path) *path = "cuda_fused_conv_attention";
    return st;
}

static lc_status lc_cuda_attention_projection(const lc_attention_projection_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "attention_projection: cuda: no usable GPU");
    lc_status st = lc_launched("attention_projection", lc_cuda_launch_attention_projection(args, lc_cuda_stream(ctx)));
    if (st == LC_OK && path) *path = "cuda_fused_attention_projection";
    return st;
}

/* float16/bfloat16 with 1 <= m <= LC_GEMV_MAX_M (decode) and the GEMV's alignment: gemv_cuda.cu, one launch
 * (path cuda_gemv_bf16 / cuda_gemv_f16; LC_GEMV=0 turns it off). Otherwise:
 * float32: bias and ReLU / GELU-tanh run in the cuBLASLt epilogue; GELU-erf (not a cuBLASLt epilogue) as the
 * bias epilogue followed by the own gelu kernel in place. float16/bfloat16 with + residual alone (no bias, no
 * activation): one cuBLASLt call (lc_cuda_linear_lt, below). With a bias or an activation: a GEMM storing the
 * float32 sums in a workspace, then one kernel adding the bias, applying the activation, adding the residual and
 * rounding once (cuBLASLt's 16-bit bias epilogue rounds the product to the dtype before it adds the bias: commit
 * 52bcae9 saw it, session 31 confirmed it for both dtypes with the split-K partials kept in float32). */
/* The residual as cuBLASLt's C with beta 1 (alpha·sums + C in float32, one rounding; split-K partials never reduced
 * in the 16-bit type: gemm_cublaslt.c) instead of float32 sums in a workspace and our epilogue kernel: a 16-bit
 * linear with + residual and neither bias nor activation (LLaMA's o_proj and down projection in a prefill; session
 * 31 on the H100: LLaMA 1.1B's 1,024-token prefill 5.78 -> 5.24 ms). Checked where residual and product cancel
 * (test_linear_epilogue_rounds_once). LC_LINEAR_LT=0 (A/B knob, read at each call): the workspace form for these too.
 * (cuBLASLt's epilogue for a bias and ReLU as well failed the one-rounding bound on the H100 in both dtypes,
 * test_lowp_ops: bfloat16 426-1,275 elements of a case, float16 the cancelling cases; removed.) */
static int lc_cuda_linear_lt(const lc_linear_args *a) {
    const char *e = getenv("LC_LINEAR_LT");
    if (e && strcmp(e, "0") == 0) return 0;
    return a->residual && !a->bias && a->act == LC_ACT_NONE;
}

static lc_status lc_cuda_linear(const lc_linear_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "linear: cuda: no usable GPU");
    const int lowp = args->dtype == LC_DTYPE_F16 || args->dtype == LC_DTYPE_BF16;
    if (!lowp && args->dtype != LC_DTYPE_F32)
        return lc_error(LC_ERR_DTYPE, "linear: cuda: expected float32, float16 or bfloat16, got %s",
                        lc_dtype_name(args->dtype));
    const int b = args->bias != NULL;
    lc_gemm_epilogue ep;
    switch (args->act) {
    case LC_ACT_RELU: ep = b ? LC_GEMM_EPILOGUE_BIAS_RELU : LC_GEMM_EPILOGUE_RELU; break;
    case LC_ACT_GELU_TANH: ep = b ? LC_GEMM_EPILOGUE_BIAS_GELU_TANH : LC_GEMM_EPILOGUE_GELU_TANH; break;
    default: ep = b ? LC_GEMM_EPILOGUE_BIAS : LC_GEMM_EPILOGUE_NONE; break;
    }
    lc_cuda_note_op("linear");
    if (lowp) { /* small m (decode): one fused GEMV launch */
        int taken = 0;
        lc_status st = lc_cuda_try_gemv(args, "linear", path, &taken);
        if (taken || st != LC_OK) return st;
    }
    if (lowp && lc_cuda_linear_lt(args)) { /* + residual as cuBLASLt's C, one rounding (see above) */
        lc_matmul_args mm = {args->dtype, args->m, args->k, args->n, args->x, args->w, args->out, args->w_t};
        return lc_cuda_gemm_residual(&mm, args->residual, path);
    }
    if ((lowp && (b || args->act != LC_ACT_NONE)) || args->residual) {
        /* 16-bit with an epilogue, or a residual: float32 sums, then our epilogue kernel (bias, act, + residual,
         * one rounding; it reads each residual element before writing that element of out, so out may be it) */
        int64_t mn;
        if (!lc_mul_ok(args->m, args->n, &mn) || (uint64_t)mn > SIZE_MAX / sizeof(float))
            return lc_error(LC_ERR_INVALID_ARGUMENT, "linear: cuda: float32 workspace size overflows");
        void *acc = NULL;
        lc_status st = lc_cuda_alloc((size_t)(mn > 0 ? mn : 1) * sizeof(float), &acc);
        if (st != LC_OK) return lc_error_wrap(st, "linear: float32 workspace");
        lc_matmul_args mm = {args->dtype, args->m, args->k, args->n, args->x, args->w, acc, args->w_t};
        st = lc_cuda_gemm_ex(&mm, LC_DTYPE_F32, NULL, LC_GEMM_EPILOGUE_NONE, NULL);
        if (st == LC_OK)
            st = lc_launched("linear", lc_cuda_launch_bias_act(args->dtype, acc, args->bias, args->residual, args->out,
                                                             args->m, args->n, args->act, lc_cuda_stream(ctx)));
        lc_cuda_free(acc); /* stream-ordered: the next user of the block runs after this kernel */
        if (st == LC_OK && path)
            *path = args->dtype == LC_DTYPE_BF16 ? "cublaslt_bf16_c32+epilogue"
                    : args->dtype == LC_DTYPE_F16 ? "cublaslt_f16_c32+epilogue" : "cublaslt_f32+epilogue";
        return st;
    }
    lc_matmul_args mm = {args->dtype, args->m, args->k, args->n, args->x, args->w, args->out, args->w_t};
    lc_status st = lc_cuda_gemm(&mm, args->bias, ep, path);
    if (st == LC_OK && args->act == LC_ACT_GELU_ERF) {
        lc_gelu_args g = {LC_GELU_ERF, LC_DTYPE_F32, args->m * args->n, args->out, args->out};
        st = lc_launched("linear", lc_cuda_launch_gelu(&g, lc_cuda_stream(ctx)));
        if (st == LC_OK && path) *path = "cublaslt_f32+gelu_erf";
    }
    return st;
}

/* layer_norm_linear / rms_norm_linear / silu_mul_linear: float16/bfloat16 with m <= LC_GEMV_MAX_M and the GEMV's
 * alignment (a decode step's pre-norm projection, or SwiGLU's down projection): one GEMV launch that applies the
 * prologue (the norm, or silu(g)·u) as it stages x (paths cuda_norm_gemv_<dtype>, cuda_swiglu_gemv_<dtype>;
 * LC_GEMV=0 turns it off, as for linear, LC_GEMV=nonorm these fused paths alone, for A/B timing). Otherwise the
 * prologue kernel (norm, or silu_mul over gu's pitched halves) into a stream-ordered workspace of x's dtype,
 * then lc_cuda_linear on it (with silu_mul_linear's residual). */
static lc_status lc_cuda_norm_linear(const lc_norm_linear_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    const char *op = args->kind == LC_NORM_SWIGLU ? "silu_mul_linear"
                     : args->kind == LC_NORM_RMS  ? "rms_norm_linear"
                                                  : "layer_norm_linear";
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: cuda: no usable GPU", op);
    lc_cuda_note_op(op);
    const lc_linear_args *l = &args->lin;
    const char *env = getenv("LC_GEMV");
    const int off = env && (strcmp(env, "0") == 0 || strcmp(env, "nonorm") == 0);
    if (lc_cuda_lowp(l->dtype) && !off && lc_cuda_gemv_fits(l) && ((uintptr_t)args->gamma | (uintptr_t)args->beta) % 2 == 0)
        return lc_cuda_gemv_run(ctx, l, args, op, path);
    int64_t mk;
    const size_t es = lc_dtype_size(l->dtype);
    if (!lc_mul_ok(l->m, l->k, &mk) || es == 0 || (uint64_t)mk > SIZE_MAX / es)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: prologue workspace size overflows", op);
    void *xn = NULL;
    lc_status st = lc_cuda_alloc((size_t)(mk > 0 ? mk : 1) * es, &xn);
    if (st != LC_OK) return lc_error_wrap(st, "%s: prologue workspace", op);
    if (args->kind == LC_NORM_SWIGLU) { /* h [m,k] = silu(gu[:, :k]) · gu[:, k:], rows at pitch 2k */
        lc_silu_args sa = {.dtype = l->dtype, .n = mk, .a = l->x, .b = (const char *)l->x + (size_t)l->k * es,
                           .out = xn, .cols = l->k, .pitch = 2 * l->k};
        st = lc_launched(op, lc_cuda_launch_silu(&sa, lc_cuda_stream(ctx)));
    } else if (args->kind == LC_NORM_RMS) {
        lc_rms_norm_args r = {l->dtype, l->m, l->k, args->eps, l->x, args->gamma, xn};
        st = lc_launched(op, lc_cuda_launch_rms_norm(&r, lc_cuda_stream(ctx)));
    } else {
        lc_layer_norm_args n = {l->dtype, l->m, l->k, args->eps, l->x, args->gamma, args->beta, xn};
        st = lc_launched(op, lc_cuda_launch_layer_norm(&n, lc_cuda_stream(ctx)));
    }
    if (st == LC_OK) {
        lc_linear_args lin = *l;
        lin.x = xn;
        st = lc_cuda_linear(&lin, path);
    }
    lc_cuda_free(xn); /* stream-ordered */
    return st;
}

/* float32 prefill on tensor cores (3xTF32, sdpa_tf32.cu) where it takes the call and its blocks (query tiles x
 * batch·heads) fill the GPU (else the generic kernel, which also splits keys); LC_SDPA_F32=simt keeps float32 on the
 * generic kernel, LC_SDPA_F32=tc sends every shape the kernel takes there (A/B runs, tests; read at each call). */
static int sdpa_f32_tensor_cores(const lc_sdpa_args *a, int num_sms) {
    if (a->sq <= 16 || !lc_cuda_sdpa_tf32_fits(a)) return 0;
    const char *e = getenv("LC_SDPA_F32");
    if (e && strcmp(e, "simt") == 0) return 0;
    if (e && strcmp(e, "tc") == 0) return 1; /* every shape it takes (tests) */
    return lc_cuda_sdpa_tf32_blocks(a) >= num_sms;
}

/* sdpa: cuDNN's fused flash attention for the large 16-bit prefills and long decodes it takes (sdpa_cudnn.c),
 * else the tensor-core kernels (sdpa_mma_cuda.cu) for the 16-bit prefill shapes they take and for float32
 * prefills (3xTF32, sdpa_f32_tensor_cores), else the generic
 * flash / split-KV / decode kernels (sdpa_cuda.cu, sdpa_decode_cuda.cu), which also take every decode shape
 * (sq <= 16: sdpa_decode_mma_cuda.cu on tensor cores for 16-bit, else sdpa_decode_cuda.cu; each k/v byte read
 * once per GQA group). Scratch from the stream-ordered pool. */
static lc_status lc_cuda_k_sdpa(const lc_call *c, const char **path) {
    const lc_sdpa_args *a = c->ext;
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "scaled_dot_product_attention: cuda: no usable GPU");
    lc_cuda_note_op("sdpa");
    const cudaStream_t stream = lc_cuda_stream(ctx);
    /* a fused rope (a->rope) goes only to lc_cuda_launch_sdpa, which takes it or launches nothing */
    if (!a->rope) { /* cuDNN's fused engine where it takes the call (sdpa_cudnn.c has the rule) */
        int taken = 0;
        lc_status st = lc_cuda_sdpa_cudnn(a, stream, ctx->device, lc_cuda_capture_state() == LC_CAPTURE_THIS_THREAD,
                                          path, &taken);
        if (st != LC_OK || taken) return st;
    }
    const int mma16 = !a->rope && a->sq > 16 && lc_cuda_sdpa_mma_fits(a);
    if (mma16 || (!a->rope && sdpa_f32_tensor_cores(a, ctx->num_sms))) {
        if (a->append) { /* the KV cache's append + attention: the append kernel first */
            lc_status st = lc_launched("KVCache.append", lc_cuda_launch_kv_append(a->append, stream));
            if (st != LC_OK) return st;
        }
        return lc_launched("scaled_dot_product_attention",
                           mma16 ? lc_cuda_launch_sdpa_mma(a, stream, path) : lc_cuda_launch_sdpa_tf32(a, stream, path));
    }
    const size_t ws_bytes = lc_cuda_sdpa_workspace(a, ctx->num_sms);
    void *ws = NULL;
    if (ws_bytes) {
        lc_status st = lc_cuda_alloc(ws_bytes, &ws);
        if (st != LC_OK) return lc_error_wrap(st, "scaled_dot_product_attention: workspace");
    }
    const cudaError_t err = lc_cuda_launch_sdpa(a, ws, ws_bytes, ctx->num_sms, stream, path);
    lc_cuda_free(ws); /* stream-ordered: the next user of the block runs after these kernels */
    if (a->rope && err == cudaErrorNotSupported) /* nothing launched: the KV cache runs rope first */
        return lc_error(LC_ERR_UNSUPPORTED, "KVCache.attention: cuda: the rotary embedding fuses only into the tensor-core decode");
    return lc_launched("scaled_dot_product_attention", err);
}

/* attention_forward: the call as a [1, 1, seq, d] sdpa (lc_call_attention_sdpa) on sdpa's generic kernels
 * (sdpa_cuda.cu: flash, key split, decode; path "cuda_sdpa_<flash|split|decode...>_<dtype>"), float32 scores,
 * softmax and accumulation for every dtype, 16-bit operands converted in registers, out rounded once: the
 * contract attention_forward has always had. Not the tensor-core prefill (sdpa_mma_cuda.cu), which rounds the
 * probabilities to 16 bits before P·V. */
static lc_status lc_cuda_k_attention(const lc_call *c, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "attention_forward: cuda: no usable GPU");
    lc_sdpa_args a;
    lc_call_attention_sdpa(c, &a);
    if (a.head_dim == 0) a.sq = a.skv = 0, a.head_dim = 1; /* nothing to write: the launcher names its path, returns */
    const size_t ws_bytes = lc_cuda_sdpa_workspace(&a, ctx->num_sms);
    void *ws = NULL;
    if (ws_bytes) {
        lc_status st = lc_cuda_alloc(ws_bytes, &ws);
        if (st != LC_OK) return lc_error_wrap(st, "attention_forward: workspace");
    }
    lc_status st = lc_launched("attention_forward",
                               lc_cuda_launch_sdpa(&a, ws, ws_bytes, ctx->num_sms, lc_cuda_stream(ctx), path));
    lc_cuda_free(ws); /* stream-ordered: the next user of the block runs after these kernels */
    return st;
}

static lc_status lc_cuda_k_kv_append(const lc_call *c, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "KVCache.append: cuda: no usable GPU");
    lc_cuda_note_op("kv_append");
    if (path) *path = "cuda_kv_append";
    return lc_launched("KVCache.append", lc_cuda_launch_kv_append(c->ext, lc_cuda_stream(ctx)));
}

/* The LLM building blocks (llm_cuda.cu, rope_cuda.cu): path "cuda_<op>_<dtype>". */
static const char *lc_llm_path(const char *const names[4], lc_dtype d) {
    return names[d == LC_DTYPE_F16 ? 1 : d == LC_DTYPE_BF16 ? 2 : d == LC_DTYPE_F64 ? 3 : 0];
}
#define LC_LLM_NAMES(op) {"cuda_" op "_f32", "cuda_" op "_f16", "cuda_" op "_bf16", "cuda_" op "_f64"}

static lc_status lc_cuda_rms_norm(const lc_rms_norm_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "rms_norm: cuda: no usable GPU");
    lc_status st = lc_launched("rms_norm", lc_cuda_launch_rms_norm(args, lc_cuda_stream(ctx)));
    static const char *const names[4] = LC_LLM_NAMES("rms_norm");
    if (st == LC_OK && path) *path = lc_llm_path(names, args->dtype);
    return st;
}

static lc_status lc_cuda_softmax(const lc_softmax_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "softmax: cuda: no usable GPU");
    lc_status st = lc_launched("softmax", lc_cuda_launch_softmax(args, lc_cuda_stream(ctx)));
    static const char *const names[4] = LC_LLM_NAMES("softmax");
    if (st == LC_OK && path) *path = lc_llm_path(names, args->dtype);
    return st;
}

static lc_status lc_cuda_silu(const lc_silu_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    const char *op = args->b ? "silu_mul" : "silu";
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: cuda: no usable GPU", op);
    lc_status st = lc_launched(op, lc_cuda_launch_silu(args, lc_cuda_stream(ctx)));
    static const char *const names[2][4] = {LC_LLM_NAMES("silu"), LC_LLM_NAMES("silu_mul")};
    if (st == LC_OK && path) *path = lc_llm_path(names[args->b != NULL], args->dtype);
    return st;
}

static lc_status lc_cuda_embedding(const lc_embedding_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "embedding: cuda: no usable GPU");
    lc_status st = lc_launched("embedding", lc_cuda_launch_embedding(args, lc_cuda_stream(ctx)));
    if (st == LC_OK && path) *path = args->pos_weight ? "cuda_embedding_pos" : "cuda_embedding";
    return st;
}

static lc_status lc_cuda_argmax(const lc_argmax_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "argmax: cuda: no usable GPU");
    lc_status st = lc_launched("argmax", lc_cuda_launch_argmax(args, lc_cuda_stream(ctx)));
    if (st == LC_OK && path) *path = "cuda_argmax";
    return st;
}

static lc_status lc_cuda_bcast(const lc_bcast_args *args, const char **path) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    const char *op = args->kind == LC_BCAST_MUL ? "mul" : "add";
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: cuda: no usable GPU", op);
    lc_status st = lc_launched(op, lc_cuda_launch_bcast(args, lc_cuda_stream(ctx)));
    static const char *const names[2][2][4] = {{LC_LLM_NAMES("add"), LC_LLM_NAMES("add_bcast")},
                                               {LC_LLM_NAMES("mul"), LC_LLM_NAMES("mul_bcast")}};
    if (st == LC_OK && path) *path = lc_llm_path(names[args->kind == LC_BCAST_MUL][!args->contig], args->dtype);
    return st;
}

static lc_status lc_cuda_k_rope(const lc_call *c, const char **path) {
    const lc_rope_args *a = c->ext;
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "rope: cuda: no usable GPU");
    lc_status st = lc_launched("rope", lc_cuda_launch_rope(a, lc_cuda_stream(ctx)));
    static const char *const names[4] = LC_LLM_NAMES("rope");
    if (st == LC_OK && path) *path = lc_llm_path(names, a->dtype);
    return st;
}

static lc_status lc_cuda_gather(const lc_gather_args *g) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "gather: cuda: no usable GPU");
    return lc_launched("gather", lc_cuda_launch_gather(g, lc_cuda_stream(ctx)));
}

static lc_status lc_cuda_prefetch(const lc_prefetch_args *a) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "prefetch: cuda: no usable GPU");
    return lc_launched("prefetch", lc_cuda_launch_prefetch(a, ctx->num_sms, lc_cuda_stream(ctx)));
}

static lc_status lc_cuda_decode_program(const struct lc_dp_step_args *a, int *grid, size_t *smem_max) {
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "decode_program: cuda: no usable GPU");
    if (!a) {
        if (grid) *grid = ctx->num_sms;
        return smem_max ? lc_cuda_check(lc_cuda_decode_program_smem_max(smem_max), "decode_program") : LC_OK;
    }
    return lc_launched("decode_program", lc_cuda_launch_decode_program(a, lc_cuda_stream(ctx)));
}

static lc_status lc_cuda_k_sample(const lc_call *c, const char **path) {
    const lc_sample_args *a = c->ext;
    const lc_cuda_ctx *ctx = lc_cuda_ctx_get();
    if (!ctx) return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "sample: cuda: no usable GPU");
    lc_status st = lc_launched("sample", lc_cuda_launch_sample(a, lc_cuda_stream(ctx)));
    static const char *const names[4] = LC_LLM_NAMES("sample");
    if (st == LC_OK && path) *path = lc_llm_path(names, a->dtype);
    return st;
}

/* Thin adapters: the one call struct -> each entry's own arguments (op_call.c). */
LC_KERNEL_ADAPTER(lc_cuda_k_matmul, lc_matmul_args, lc_call_matmul, lc_cuda_matmul)
LC_KERNEL_ADAPTER(lc_cuda_k_conv2d, lc_conv2d_args, lc_call_conv2d, lc_cuda_conv2d)
LC_KERNEL_ADAPTER(lc_cuda_k_binary, lc_binary_args, lc_call_binary, lc_cuda_binary)
LC_KERNEL_ADAPTER(lc_cuda_k_relu, lc_relu_args, lc_call_relu, lc_cuda_relu)
LC_KERNEL_ADAPTER(lc_cuda_k_gelu, lc_gelu_args, lc_call_gelu, lc_cuda_gelu)
LC_KERNEL_ADAPTER(lc_cuda_k_layer_norm, lc_layer_norm_args, lc_call_layer_norm, lc_cuda_layer_norm)
LC_KERNEL_ADAPTER(lc_cuda_k_linear, lc_linear_args, lc_call_linear, lc_cuda_linear)
LC_KERNEL_ADAPTER(lc_cuda_k_norm_linear, lc_norm_linear_args, lc_call_norm_linear, lc_cuda_norm_linear)
LC_KERNEL_ADAPTER(lc_cuda_k_qkv_pack, lc_qkv_pack_args, lc_call_qkv_pack, lc_cuda_qkv_pack)
LC_KERNEL_ADAPTER(lc_cuda_k_conv_attention, lc_conv_attention_args, lc_call_conv_attention, lc_cuda_conv_attention)
LC_KERNEL_ADAPTER(lc_cuda_k_attention_projection, lc_attention_projection_args, lc_call_attention_projection,
                lc_cuda_attention_projection)
LC_KERNEL_ADAPTER(lc_cuda_k_rms_norm, lc_rms_norm_args, lc_call_rms_norm, lc_cuda_rms_norm)
LC_KERNEL_ADAPTER(lc_cuda_k_softmax, lc_softmax_args, lc_call_softmax, lc_cuda_softmax)
LC_KERNEL_ADAPTER(lc_cuda_k_silu, lc_silu_args, lc_call_silu, lc_cuda_silu)
LC_KERNEL_ADAPTER(lc_cuda_k_embedding, lc_embedding_args, lc_call_embedding, lc_cuda_embedding)
LC_KERNEL_ADAPTER(lc_cuda_k_argmax, lc_argmax_args, lc_call_argmax, lc_cuda_argmax)
LC_KERNEL_ADAPTER(lc_cuda_k_bcast, lc_bcast_args, lc_call_bcast, lc_cuda_bcast)
LC_FITS_ADAPTER(lc_cuda_fits_conv_attention, lc_conv_attention_args, lc_call_conv_attention, lc_cuda_conv_attention_fits)
LC_FITS_ADAPTER(lc_cuda_fits_attention_projection, lc_attention_projection_args, lc_call_attention_projection,
             lc_cuda_attention_projection_fits)

/* Which dtypes each entry takes is the op table's cuda mask (op_table.c). */
const lc_backend lc_cuda_backend = {
    .name = "cuda",
    .device = LC_DEVICE_CUDA,
    .available = lc_cuda_backend_available,
    .alloc = lc_cuda_alloc,
    .free = lc_cuda_free,
    .copy_h2d = lc_cuda_copy_h2d,
    .copy_d2h = lc_cuda_copy_d2h,
    .copy_d2d = lc_cuda_copy_d2d,
    .sync = lc_cuda_sync,
    .gather = lc_cuda_gather,
    .prefetch = lc_cuda_prefetch,
    .decode_program = lc_cuda_decode_program,
    .kernels =
        {
            [LC_OP_MATMUL] = lc_cuda_k_matmul,
            [LC_OP_VECTOR_ADD] = lc_cuda_k_binary,
            [LC_OP_MATRIX_SUB] = lc_cuda_k_binary,
            [LC_OP_MATRIX_DIV] = lc_cuda_k_binary,
            [LC_OP_RELU] = lc_cuda_k_relu,
            [LC_OP_GELU] = lc_cuda_k_gelu,
            [LC_OP_LAYER_NORM] = lc_cuda_k_layer_norm,
            [LC_OP_ATTENTION] = lc_cuda_k_attention,
            [LC_OP_CONV2D] = lc_cuda_k_conv2d,
            [LC_OP_QKV_PACK] = lc_cuda_k_qkv_pack,
            [LC_OP_LINEAR] = lc_cuda_k_linear,
            [LC_OP_LAYER_NORM_LINEAR] = lc_cuda_k_norm_linear,
            [LC_OP_RMS_NORM_LINEAR] = lc_cuda_k_norm_linear,
            [LC_OP_SILU_MUL_LINEAR] = lc_cuda_k_norm_linear,
            [LC_OP_CONV_ATTENTION] = lc_cuda_k_conv_attention,
            [LC_OP_ATTENTION_PROJECTION] = lc_cuda_k_attention_projection,
            [LC_OP_SDPA] = lc_cuda_k_sdpa,
            [LC_OP_KV_APPEND] = lc_cuda_k_kv_append,
            [LC_OP_RMS_NORM] = lc_cuda_k_rms_norm,
            [LC_OP_SOFTMAX] = lc_cuda_k_softmax,
            [LC_OP_SILU] = lc_cuda_k_silu,
            [LC_OP_EMBEDDING] = lc_cuda_k_embedding,
            [LC_OP_ARGMAX] = lc_cuda_k_argmax,
            [LC_OP_SAMPLE] = lc_cuda_k_sample,
            [LC_OP_SILU_MUL] = lc_cuda_k_silu,
            [LC_OP_ADD] = lc_cuda_k_bcast,
            [LC_OP_MUL] = lc_cuda_k_bcast,
            [LC_OP_ROPE] = lc_cuda_k_rope,
        },
    .fits =
        {
            [LC_OP_CONV_ATTENTION] = lc_cuda_fits_conv_attention,
            [LC_OP_ATTENTION_PROJECTION] = lc_cuda_fits_attention_projection,
        },
    .capture_begin = lc_cuda_capture_begin,
    .capture_end = lc_cuda_capture_end,
    .graph_launch = lc_cuda_graph_launch,
    .graph_free = lc_cuda_graph_free,
    .capture_state = lc_cuda_capture_state,
    .timer_start = lc_cuda_timer_start,
    .timer_stop = lc_cuda_timer_stop,
    .takes_w_t = 1,
};
