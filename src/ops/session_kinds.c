/* session_kinds.c — the resident session kinds of session.h: each is a constructor (resident buffer
 * shapes) and a program that enqueues its work through the ops layer on the resident tensors (so it
 * is routed, traced and capturable like any op):
 *   matmul          a [m,k] · b [k,n] -> out [m,n]                              (float32, float16, bfloat16)
 *   elementwise     a, b [rows,cols] -> out = a + b | a - b | a / b (programs ADD, SUB, DIV; the same dtypes)
 *   attention       q, k, v [seq,d] -> out [seq,d]                              (the same dtypes)
 *   conv_attention  x [n,c,h,w], w [oc,c,3,3], bias [oc] -> conv+bias+ReLU -> qkv_pack_repeat into
 *                   [3,seq,d] -> attention(q, k, v) -> out [seq,d]; on CUDA, shapes that fit run the
 *                   whole chain as one fused kernel (conv_attention_cuda.cu; the table's mask says which
 *                   dtypes: float32 there), others the three ops (the same dtypes; intermediates in the dtype)
 * Tests: tests/c/test_sessions.c, tests/python/test_sessions.py. */
#include "lightning_core/graph.h"
#include "ops/conv_attention.h"
#include "ops/session_internal.h"

static lc_status lc_program_matmul(lc_session_t *s, int program) {
    (void)program;
    return lc_matmul(s->in[0], s->in[1], s->out, s->device);
}

/* The dtypes a session running the ops ops[0..nops) may keep: float32, or float16/bfloat16 where the op table
 * gives every one of them a kernel for it on some backend (float64 stays with the eager ops). */
static lc_status lc_session_dtype_ok(const char *name, const char *const *ops, int nops, lc_dtype dtype) {
    if (dtype == LC_DTYPE_F32) return LC_OK;
    for (int i = 0; i < nops; i++) {
        if ((dtype == LC_DTYPE_F16 || dtype == LC_DTYPE_BF16) && lc_op_takes_dtype(ops[i], dtype)) continue;
        return lc_error(LC_ERR_DTYPE, "%s: dtype: expected float32%s, got %s", name,
                        lc_op_takes_dtype(ops[i], LC_DTYPE_BF16) ? ", float16 or bfloat16"
                                                                 : " (the op has no float16/bfloat16 kernel)",
                        lc_dtype_name(dtype));
    }
    return LC_OK;
}

lc_status lc_session_new_matmul(int64_t m, int64_t k, int64_t n, lc_device device, lc_session_t **out) {
    return lc_session_new_matmul_typed(m, k, n, LC_DTYPE_F32, device, out);
}

lc_status lc_session_new_matmul_typed(int64_t m, int64_t k, int64_t n, lc_dtype dtype, lc_device device,
                                      lc_session_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "matmul_session: out: expected a pointer, got NULL");
    *out = NULL;
    static const char *const ops[1] = {"matmul"};
    lc_status st = lc_session_dtype_ok("matmul_session", ops, 1, dtype);
    if (st != LC_OK) return st;
    static const char *const names[2] = {"a", "b"};
    const int ndims[2] = {2, 2};
    const int64_t shapes[2][4] = {{m, k}, {k, n}};
    const int64_t out_shape[2] = {m, n};
    return lc_session_create("matmul_session", device, dtype, 2, names, ndims, shapes, 2, out_shape, 1, lc_program_matmul, out);
}

static lc_status lc_program_elemwise(lc_session_t *s, int program) {
    switch (program) {
    case LC_ELEMWISE_ADD: return lc_vector_add(s->in[0], s->in[1], s->out, s->device);
    case LC_ELEMWISE_SUB: return lc_matrix_sub(s->in[0], s->in[1], s->out, s->device);
    default: return lc_matrix_div(s->in[0], s->in[1], s->out, s->device);
    }
}

lc_status lc_session_new_elemwise(int64_t rows, int64_t cols, lc_device device, lc_session_t **out) {
    return lc_session_new_elemwise_typed(rows, cols, LC_DTYPE_F32, device, out);
}

lc_status lc_session_new_elemwise_typed(int64_t rows, int64_t cols, lc_dtype dtype, lc_device device, lc_session_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "matrix_elemwise_session: out: expected a pointer, got NULL");
    *out = NULL;
    static const char *const ops[3] = {"vector_add", "matrix_sub", "matrix_div"};
    lc_status st = lc_session_dtype_ok("matrix_elemwise_session", ops, 3, dtype);
    if (st != LC_OK) return st;
    static const char *const names[2] = {"a", "b"};
    const int ndims[2] = {2, 2};
    const int64_t shapes[2][4] = {{rows, cols}, {rows, cols}};
    const int64_t out_shape[2] = {rows, cols};
    return lc_session_create("matrix_elemwise_session", device, dtype, 2, names, ndims, shapes, 2, out_shape, 3,
                             lc_program_elemwise, out);
}

static lc_status lc_program_attention(lc_session_t *s, int program) {
    (void)program;
    return lc_attention_forward(s->in[0], s->in[1], s->in[2], s->out, s->causal, s->device);
}

lc_status lc_session_new_attention(int64_t seq, int64_t head_dim, int causal, lc_device device, lc_session_t **out) {
    return lc_session_new_attention_typed(seq, head_dim, causal, LC_DTYPE_F32, device, out);
}

lc_status lc_session_new_attention_typed(int64_t seq, int64_t head_dim, int causal, lc_dtype dtype, lc_device device,
                                         lc_session_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "attention_session: out: expected a pointer, got NULL");
    *out = NULL;
    static const char *const ops[1] = {"attention_forward"};
    lc_status st = lc_session_dtype_ok("attention_session", ops, 1, dtype);
    if (st != LC_OK) return st;
    static const char *const names[3] = {"q", "k", "v"};
    const int ndims[3] = {2, 2, 2};
    const int64_t shapes[3][4] = {{seq, head_dim}, {seq, head_dim}, {seq, head_dim}};
    const int64_t out_shape[2] = {seq, head_dim};
    st = lc_session_create("attention_session", device, dtype, 3, names, ndims, shapes, 2, out_shape, 1,
                           lc_program_attention, out);
    if (st == LC_OK) (*out)->causal = causal != 0;
    return st;
}

/* temp[0] = conv output [n,oc,oh,ow], temp[1] = packed q|k|v [3,seq,d], temp[2..4] = q, k, v views. */
static lc_status lc_program_conv_attention(lc_session_t *s, int program) {
    (void)program;
    if (s->fused) return lc_conv_attention_fused(s->in[0], s->in[1], s->in[2], s->out, &s->conv, s->causal, s->device);
    lc_status st = lc_conv2d_nchw(s->in[0], s->in[1], s->in[2], s->temp[0], &s->conv, s->device);
    if (st == LC_OK) st = lc_qkv_pack_repeat(s->temp[0], s->temp[1], s->device);
    if (st == LC_OK) st = lc_attention_forward(s->temp[2], s->temp[3], s->temp[4], s->out, s->causal, s->device);
    return st;
}

lc_status lc_session_new_conv_attention(const lc_conv_attention_shape *sh, lc_device device, lc_session_t **out) {
    return lc_session_new_conv_attention_typed(sh, LC_DTYPE_F32, device, out);
}

lc_status lc_session_new_conv_attention_typed(const lc_conv_attention_shape *sh, lc_dtype dtype, lc_device device,
                                              lc_session_t **out) {
    static const char *name = "conv_attention_session";
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", name);
    *out = NULL;
    if (!sh) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: shape: expected a pointer, got NULL", name);
    static const char *const ops[3] = {"conv2d_nchw", "qkv_pack_repeat", "attention_forward"};
    lc_status dst = lc_session_dtype_ok(name, ops, 3, dtype);
    if (dst != LC_OK) return dst;
    if (sh->stride_h < 1 || sh->stride_w < 1 || sh->pad_h < 0 || sh->pad_w < 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: stride/pad: expected stride >= 1 and pad >= 0, got stride (%d, %d), pad (%d, %d)",
                        name, sh->stride_h, sh->stride_w, sh->pad_h, sh->pad_w);
    const int64_t oh = sh->h > 0 ? (sh->h + 2 * (int64_t)sh->pad_h - 3) / sh->stride_h + 1 : 0;
    const int64_t ow = sh->w > 0 ? (sh->w + 2 * (int64_t)sh->pad_w - 3) / sh->stride_w + 1 : 0;
    if (sh->h + 2 * (int64_t)sh->pad_h < 3 || sh->w + 2 * (int64_t)sh->pad_w < 3 || oh < 1 || ow < 1)
        return lc_error(LC_ERR_SHAPE, "%s: x: a 3x3 kernel needs h + 2*pad_h >= 3 and w + 2*pad_w >= 3, got h=%lld w=%lld pad=(%d, %d)",
                        name, (long long)sh->h, (long long)sh->w, sh->pad_h, sh->pad_w);
    static const char *const names[3] = {"x", "w", "bias"};
    const int ndims[3] = {4, 4, 1};
    const int64_t shapes[3][4] = {{sh->n, sh->c, sh->h, sh->w}, {sh->oc, sh->c, 3, 3}, {sh->oc}};
    const int64_t out_shape[2] = {sh->seq, sh->head_dim};
    lc_session_t *s = NULL;
    lc_status st = lc_session_create(name, device, dtype, 3, names, ndims, shapes, 2, out_shape, 1, lc_program_conv_attention, &s);
    if (st != LC_OK) return st;
    s->causal = sh->causal != 0;
    s->conv = (lc_conv2d_params){sh->stride_h, sh->stride_w, sh->pad_h, sh->pad_w, 1};
    const int64_t conv_shape[4] = {sh->n, sh->oc, oh, ow};
    const int64_t qkv_shape[3] = {3, sh->seq, sh->head_dim};
    const int64_t one[2] = {sh->seq, sh->head_dim};
    const int64_t need = sh->seq * sh->head_dim;
    /* One fused kernel where the backend has one and the shape fits; else conv, pack, attention. */
    s->fused = lc_conv_attention_fits(s->backend, s->in[0], s->in[1], &s->conv, sh->seq, sh->head_dim, s->causal);
    lc_tensor_t *conv_out = NULL, *qkv = NULL, *view = NULL;
    if (!s->fused && (st = lc_session_add_temp(s, 4, conv_shape, &conv_out)) == LC_OK &&
        (st = lc_session_add_temp(s, 3, qkv_shape, &qkv)) == LC_OK)
        for (int i = 0; i < 3 && st == LC_OK; i++) st = lc_session_add_view(s, qkv, 2, one, i * need, &view);
    (void)view;
    if (st != LC_OK) {
        lc_session_free(s);
        return st;
    }
    *out = s;
    return LC_OK;
}
