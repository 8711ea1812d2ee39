/* op_call.c — the one call struct (lc_call, backend.h) turned into the kernels' own argument structs,
 * shared by the CPU and CUDA adapters, and lc_backend_fits. Shapes come from the call's operand shapes
 * (validated by the op table's rules before any kernel runs): matmul/linear a [m,k] · b [k,n];
 * elementwise over the output's element count; layer_norm rows x cols (last axis); conv x [n,c,h,w],
 * w [oc,c,kh,kw] -> out [n,oc,oh,ow]; attention [seq, d] with scale 1/sqrt(d) (as lc_attention_args for the
 * fused attention_projection, as a [1, 1, seq, d] lc_sdpa_args for attention_forward itself).
 * Tests: every op through tests/c/test_ops.c and tests/c/test_op_table.c. */
#include <math.h>
#include <string.h>

#include "core/backend.h"
#include "core/internal.h"

static int64_t lc_out_numel(const lc_call *c) {
    int64_t n = 1;
    for (int i = 0; i < c->out_ndim; i++) n *= c->out_shape[i];
    return n;
}

static int64_t lc_in_numel(const lc_call *c, int i) {
    int64_t n = 1;
    for (int d = 0; d < c->ndim[i]; d++) n *= c->shape[i][d];
    return n;
}

/* 1: the w of a linear-family op (input 1, LC_OPF_W_T) came as the storage of its transposed view (lc_call.in_t). */
static int lc_call_w_t(const lc_call *c) { return (int)((c->in_t >> 1) & 1u); }

void lc_call_matmul(const lc_call *c, lc_matmul_args *a) {
    *a = (lc_matmul_args){.dtype = c->dtype, .m = c->shape[0][0], .k = c->shape[0][1], .n = c->shape[1][1],
                          .a = c->in[0], .b = c->in[1], .c = c->out};
}

void lc_call_linear(const lc_call *c, lc_linear_args *a) {
    *a = (lc_linear_args){.dtype = c->dtype, .m = c->shape[0][0], .k = c->shape[0][1], .n = c->shape[1][1], .act = c->act,
                          .x = c->in[0], .w = c->in[1], .bias = c->nin > 2 ? c->in[2] : NULL,
                          .residual = c->nin > 3 ? c->in[3] : NULL, .out = c->out, .w_t = lc_call_w_t(c)};
}

/* in: x, w, bias, gamma, beta (layer_norm_linear), x, w, bias, weight (rms_norm_linear) or gu, w, bias,
 * residual (silu_mul_linear: k is w's rows, gu [m, 2k]); absent ones NULL */
void lc_call_norm_linear(const lc_call *c, lc_norm_linear_args *a) {
    lc_linear_args lin;
    const int rms = c->op == LC_OP_RMS_NORM_LINEAR, swiglu = c->op == LC_OP_SILU_MUL_LINEAR;
    lin = (lc_linear_args){.dtype = c->dtype, .m = c->shape[0][0], .k = c->shape[1][0], .n = c->shape[1][1],
                           .act = c->act, .x = c->in[0], .w = c->in[1], .bias = c->nin > 2 ? c->in[2] : NULL,
                           .residual = swiglu && c->nin > 3 ? c->in[3] : NULL, .out = c->out,
                           .w_t = lc_call_w_t(c)};
    if (!swiglu) lin.argmax = (lc_argmax_fold *)c->ext; /* the ops layer's object (lc_norm_linear_argmax_run) */
    if (swiglu) {
        *a = (lc_norm_linear_args){.lin = lin, .kind = LC_NORM_SWIGLU};
        return;
    }
    *a = (lc_norm_linear_args){.lin = lin, .kind = rms ? LC_NORM_RMS : LC_NORM_LAYER, .eps = c->attrs.eps,
                               .gamma = c->nin > 3 ? c->in[3] : NULL, .beta = !rms && c->nin > 4 ? c->in[4] : NULL};
}

void lc_call_attention(const lc_call *c, lc_attention_args *a) {
    const int64_t seq = c->shape[0][0], d = c->shape[0][1];
    *a = (lc_attention_args){.dtype = c->dtype, .seq = seq, .head_dim = d, .causal = c->attrs.causal != 0,
                             .scale = (float)(1.0 / sqrt((double)d)), .q = c->in[0], .k = c->in[1], .v = c->in[2],
                             .out = c->out};
}

/* An attention_forward-shaped call (lc_attention_args: q, k, v and out contiguous [seq, d]) as one sdpa call,
 * seen as [1, 1, seq, d] (strides over the added batch/head axes 0), no mask, no key_lengths, causal as given
 * (sq == skv, so the aligned diagonal is j <= i), its scale, plain_nonfinite set. attention_forward's entries
 * (lc_call_attention_sdpa) and the CPU attention_projection run sdpa's kernels on it. */
void lc_attention_as_sdpa(const lc_attention_args *at, lc_sdpa_args *a) {
    const int64_t seq = at->seq, d = at->head_dim;
    memset(a, 0, sizeof *a);
    a->dtype = at->dtype;
    a->batch = a->heads = a->kv_heads = 1;
    a->sq = a->skv = seq;
    a->head_dim = d;
    a->q = at->q;
    a->k = at->k;
    a->v = at->v;
    a->out = at->out;
    const int64_t st[4] = {0, 0, d, 1};
    memcpy(a->q_st, st, sizeof st);
    memcpy(a->k_st, st, sizeof st);
    memcpy(a->v_st, st, sizeof st);
    memcpy(a->o_st, st, sizeof st);
    a->mask_kind = LC_SDPA_MASK_NONE;
    a->causal = at->causal != 0;
    a->scale = at->scale;
    a->plain_nonfinite = 1; /* NaN/Inf as attention has always treated them (backend.h) */
}

void lc_call_attention_sdpa(const lc_call *c, lc_sdpa_args *a) {
    lc_attention_args at;
    lc_call_attention(c, &at);
    lc_attention_as_sdpa(&at, a);
}

/* The conv part of conv2d and conv_attention (outputs: y = c->out for conv2d, unused for the fused op). */
static void lc_conv_fill(const lc_call *c, lc_conv2d_args *a) {
    const int64_t *x = c->shape[0], *w = c->shape[1];
    const lc_graph_attrs *p = &c->attrs;
    *a = (lc_conv2d_args){.dtype = c->dtype, .n = x[0], .c = x[1], .h = x[2], .w = x[3], .oc = w[0], .kh = w[2], .kw = w[3],
                          .oh = lc_conv_out_extent(x[2], w[2], p->stride_h, p->pad_h),
                          .ow = lc_conv_out_extent(x[3], w[3], p->stride_w, p->pad_w),
                          .stride_h = p->stride_h, .stride_w = p->stride_w, .pad_h = p->pad_h, .pad_w = p->pad_w,
                          .apply_relu = c->apply_relu != 0, .x = c->in[0], .weight = c->in[1],
                          .bias = c->nin > 2 ? c->in[2] : NULL, .y = NULL};
}

void lc_call_conv2d(const lc_call *c, lc_conv2d_args *a) {
    lc_conv_fill(c, a);
    a->y = c->out;
}

void lc_call_binary(const lc_call *c, lc_binary_args *a) {
    const lc_binary_kind kind = c->op == LC_OP_MATRIX_SUB ? LC_BINARY_SUB
                                : c->op == LC_OP_MATRIX_DIV ? LC_BINARY_DIV
                                                            : LC_BINARY_ADD;
    *a = (lc_binary_args){.kind = kind, .dtype = c->dtype, .n = lc_out_numel(c), .a = c->in[0], .b = c->in[1],
                          .out = c->out};
}

void lc_call_relu(const lc_call *c, lc_relu_args *a) {
    *a = (lc_relu_args){.dtype = c->dtype, .n = lc_out_numel(c), .x = c->in[0], .out = c->out};
}

void lc_call_gelu(const lc_call *c, lc_gelu_args *a) {
    *a = (lc_gelu_args){.approx = (lc_gelu_approx)c->attrs.gelu_approx, .dtype = c->dtype, .n = lc_out_numel(c), .x = c->in[0],
                        .out = c->out};
}

void lc_call_layer_norm(const lc_call *c, lc_layer_norm_args *a) {
    const int64_t cols = c->shape[0][c->ndim[0] - 1];
    *a = (lc_layer_norm_args){.dtype = c->dtype, .rows = lc_in_numel(c, 0) / cols, .cols = cols, .eps = c->attrs.eps, .x = c->in[0],
                              .gamma = c->nin > 1 ? c->in[1] : NULL, .beta = c->nin > 2 ? c->in[2] : NULL,
                              .out = c->out};
}

void lc_call_rms_norm(const lc_call *c, lc_rms_norm_args *a) {
    const int64_t cols = c->shape[0][c->ndim[0] - 1];
    *a = (lc_rms_norm_args){.dtype = c->dtype, .rows = cols ? lc_in_numel(c, 0) / cols : 0, .cols = cols,
                            .eps = c->attrs.eps, .x = c->in[0], .weight = c->nin > 1 ? c->in[1] : NULL, .out = c->out};
}

void lc_call_softmax(const lc_call *c, lc_softmax_args *a) {
    const int64_t cols = c->shape[0][c->ndim[0] - 1];
    *a = (lc_softmax_args){.dtype = c->dtype, .rows = cols ? lc_in_numel(c, 0) / cols : 0, .cols = cols, .x = c->in[0],
                           .out = c->out};
}

void lc_call_silu(const lc_call *c, lc_silu_args *a) {
    *a = (lc_silu_args){.dtype = c->dtype, .n = lc_out_numel(c), .a = c->in[0],
                        .b = c->op == LC_OP_SILU_MUL ? c->in[1] : NULL, .out = c->out};
}

void lc_call_embedding(const lc_call *c, lc_embedding_args *a) {
    *a = (lc_embedding_args){.dtype = c->dtype, .ids_dtype = c->in_dtype[1], .sharded = c->ext != NULL,
                             .rows = lc_in_numel(c, 1), .vocab = c->shape[0][0], .dim = c->shape[0][1],
                             .offset = c->ext ? *(const int64_t *)c->ext : 0, .weight = c->in[0], .ids = c->in[1],
                             .out = c->out};
    if (c->nin > 3 && c->in[2] && c->in[3]) {
        a->pos_weight = c->in[2];
        a->positions = c->in[3];
        a->pos_dtype = c->in_dtype[3];
        a->pos_rows = c->shape[2][0];
    }
}

void lc_call_argmax(const lc_call *c, lc_argmax_args *a) {
    const int64_t cols = c->shape[0][c->ndim[0] - 1];
    *a = (lc_argmax_args){.dtype = c->dtype, .rows = cols ? lc_in_numel(c, 0) / cols : 0, .cols = cols, .x = c->in[0],
                          .out = (int64_t *)c->out};
}

/* Input i's element strides against the output's axes (right-aligned; 0 where it broadcasts). */
static void lc_bcast_strides(const lc_call *c, int i, int64_t *st) {
    const int r = c->out_ndim, ri = c->ndim[i];
    int64_t acc = 1;
    for (int k = r - 1; k >= 0; k--) {
        const int j = k - (r - ri);
        const int64_t e = j >= 0 ? c->shape[i][j] : 1;
        st[k] = e == 1 ? 0 : acc;
        acc *= e;
    }
}

void lc_call_bcast(const lc_call *c, lc_bcast_args *a) {
    int64_t sh[LC_MAX_DIMS], as[LC_MAX_DIMS], bs[LC_MAX_DIMS];
    memset(a, 0, sizeof *a);
    a->kind = c->op == LC_OP_MUL ? LC_BCAST_MUL : LC_BCAST_ADD;
    a->dtype = c->dtype;
    a->a = c->in[0];
    a->b = c->in[1];
    a->out = c->out;
    lc_bcast_strides(c, 0, as);
    lc_bcast_strides(c, 1, bs);
    /* drop axes of extent 1, merge an axis into the next where both inputs step through them as one */
    int n = 0;
    for (int k = 0; k < c->out_ndim; k++) {
        const int64_t e = c->out_shape[k];
        if (e == 1) continue;
        sh[n] = e, as[n] = as[k], bs[n] = bs[k];
        if (n > 0 && as[n - 1] == as[n] * e && bs[n - 1] == bs[n] * e) {
            sh[n - 1] *= e;
            as[n - 1] = as[n];
            bs[n - 1] = bs[n];
        } else {
            n++;
        }
    }
    /* right-aligned into 4 axes (more than 4 cannot remain: the rule caps the rank at 4) */
    for (int k = 0; k < 4; k++) {
        const int j = k - (4 - n);
        a->shape[k] = j >= 0 ? sh[j] : 1;
        a->a_st[k] = j >= 0 ? as[j] : 0;
        a->b_st[k] = j >= 0 ? bs[j] : 0;
    }
    int64_t acc = 1;
    int contig = 1;
    for (int k = 3; k >= 0; k--) {
        if (a->shape[k] != 1 && (a->a_st[k] != acc || a->b_st[k] != acc)) contig = 0;
        acc *= a->shape[k];
    }
    a->contig = contig;
}

void lc_call_qkv_pack(const lc_call *c, lc_qkv_pack_args *a) {
    *a = (lc_qkv_pack_args){.dtype = c->dtype, .src_n = lc_in_numel(c, 0), .dst_n = lc_out_numel(c), .src = c->in[0], .dst = c->out};
}

void lc_call_conv_attention(const lc_call *c, lc_conv_attention_args *a) {
    lc_conv_fill(c, &a->conv);
    a->conv.apply_relu = 1; /* the fused chain is conv -> relu -> repeat -> attention */
    a->seq = c->out_shape[0];
    a->head_dim = c->out_shape[1];
    a->causal = c->attrs.causal != 0;
    a->scale = (float)(1.0 / sqrt((double)a->head_dim));
    a->out = c->out;
}

void lc_call_attention_projection(const lc_call *c, lc_attention_projection_args *a) {
    lc_call_attention(c, &a->att);
    a->att.out = NULL;
    a->w = c->in[3];
    a->bias = c->nin > 4 ? c->in[4] : NULL;
    a->pn = c->shape[3][1];
    a->out = c->out;
}

int lc_backend_fits(const lc_backend *be, const lc_call *c) {
    const lc_op_def *d = lc_op_get(c->op);
    if (!be || !d || !be->kernels[d->runs_as]) return 0;
    if (!lc_op_supported(c->op, be->device, c->dtype)) return 0; /* e.g. a fused float32-only kernel, 16-bit call */
    return !be->fits[d->runs_as] || be->fits[d->runs_as](c);
}
