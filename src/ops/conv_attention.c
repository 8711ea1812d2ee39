/* conv_attention.c — the fused conv -> qkv repeat -> attention op of the conv->attention session
 * (internal, ops/conv_attention.h): fills the kernel arguments from the resident tensors, routes (the
 * operands live on the device that has the fused kernel), and calls the backend's conv_attention
 * entry; capturable and traced like any op.
 * Tests: tests/python/test_sessions.py (ConvAttentionSession on cuda), tests/c/test_sessions.c. */
#include <math.h>

#include "ops/conv_attention.h"
#include "ops/dispatch.h"

static void lc_fill_args(const lc_tensor_t *x, const lc_tensor_t *w, const lc_conv2d_params *p, int64_t seq,
                         int64_t head_dim, int causal, lc_conv_attention_args *a) {
    lc_conv2d_args *c = &a->conv;
    c->n = lc_tensor_dim(x, 0), c->c = lc_tensor_dim(x, 1), c->h = lc_tensor_dim(x, 2), c->w = lc_tensor_dim(x, 3);
    c->oc = lc_tensor_dim(w, 0), c->kh = lc_tensor_dim(w, 2), c->kw = lc_tensor_dim(w, 3);
    c->stride_h = p->stride_h, c->stride_w = p->stride_w, c->pad_h = p->pad_h, c->pad_w = p->pad_w;
    c->oh = (c->h + 2 * (int64_t)p->pad_h - c->kh) / p->stride_h + 1;
    c->ow = (c->w + 2 * (int64_t)p->pad_w - c->kw) / p->stride_w + 1;
    c->apply_relu = p->apply_relu;
    a->seq = seq, a->head_dim = head_dim, a->causal = causal != 0;
    a->scale = (float)(1.0 / sqrt((double)head_dim));
}

int lc_conv_attention_fits(const lc_backend *be, const lc_tensor_t *x, const lc_tensor_t *w, const lc_conv2d_params *p,
                           int64_t seq, int64_t head_dim, int causal) {
    if (!be || !be->conv_attention || !be->conv_attention_fits) return 0;
    lc_conv_attention_args a = {0};
    lc_fill_args(x, w, p, seq, head_dim, causal, &a);
    return be->conv_attention_fits(&a);
}

lc_status lc_conv_attention_fused(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_tensor_t *out,
                                  const lc_conv2d_params *p, int causal, lc_device device) {
    static const char *op = "conv_attention";
    const lc_tensor_t *operands[4] = {x, w, bias, out};
    const int64_t seq = lc_tensor_dim(out, 0), head_dim = lc_tensor_dim(out, 1);
    lc_conv_attention_args args = {0};
    lc_fill_args(x, w, p, seq, head_dim, causal, &args);
    const double convs = (double)(args.conv.n * args.conv.oc * args.conv.oh * args.conv.ow);
    const lc_work work = {2.0 * convs * 9.0 * (double)args.conv.c + 4.0 * (double)seq * (double)seq * (double)head_dim,
                          (double)(lc_tensor_nbytes(x) + lc_tensor_nbytes(w) + lc_tensor_nbytes(out)), NULL,
                          LC_CROSSOVER_NONE};
    lc_route route;
    lc_status st = lc_route_op(op, LC_OP_CONV_ATTENTION, LC_DTYPE_F32, device, operands, 4, work, &route);
    if (st != LC_OK) return st;
    const lc_backend *be = route.backend;
    if (!be->conv_attention || lc_tensor_device(out) != be->device || lc_tensor_device(x) != be->device ||
        !be->conv_attention_fits(&args))
        return lc_error(LC_ERR_UNSUPPORTED, "%s: %s has no fused kernel for this shape", op, be->name);
    args.conv.x = lc_tensor_data(x);
    args.conv.weight = lc_tensor_data(w);
    args.conv.bias = bias ? lc_tensor_data(bias) : NULL;
    args.out = lc_tensor_data(out);
    const char *path = "unknown";
    lc_output oo = {.data = args.out, .out = out, .backend = be};
    st = lc_output_commit(op, &oo, be->conv_attention(&args, &path));
    if (st == LC_OK) lc_route_done(op, &route, path);
    return st;
}
