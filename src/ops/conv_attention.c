/* conv_attention.c — the fused conv -> qkv repeat -> attention op of the conv->attention session
 * (internal, ops/conv_attention.h): one op-table entry (LC_OP_CONV_ATTENTION: shape rule, work); routes
 * (the operands live on the device that has the fused kernel), asks the backend's fits entry, and calls
 * its kernels[LC_OP_CONV_ATTENTION]; capturable and traced like any op.
 * Tests: tests/python/test_sessions.py (ConvAttentionSession on cuda), tests/c/test_sessions.c. */
#include <string.h>

#include "ops/conv_attention.h"
#include "ops/dispatch.h"

/* The call (no data yet) for x, w, bias? -> out [seq, head_dim], unchecked. */
static void lc_fill_call(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, const lc_conv2d_params *p,
                         int64_t seq, int64_t head_dim, int causal, lc_call *c, lc_op_operands *in) {
    const lc_op_def *d = lc_op_get(LC_OP_CONV_ATTENTION);
    const lc_tensor_t *t[3] = {x, w, bias};
    memset(c, 0, sizeof *c);
    memset(in, 0, sizeof *in);
    in->prefix = d->name;
    in->n = c->nin = bias ? 3 : 2;
    for (int i = 0; i < in->n; i++) {
        c->ndim[i] = in->ndim[i] = lc_tensor_ndim(t[i]);
        c->shape[i] = in->shape[i] = lc_tensor_shape(t[i]);
        in->dtype[i] = lc_tensor_dtype(t[i]);
    }
    const lc_graph_attrs given = {.set = d->attrs, .stride_h = p->stride_h, .stride_w = p->stride_w, .pad_h = p->pad_h,
                                  .pad_w = p->pad_w, .causal = causal != 0, .seq = seq, .head_dim = head_dim};
    c->op = LC_OP_CONV_ATTENTION;
    c->apply_relu = 1;
    c->attrs = given;
    c->dtype = in->dtype[0];
    c->out_ndim = 2;
    c->out_shape[0] = seq;
    c->out_shape[1] = head_dim;
}

/* The table's checks of the call lc_fill_call made (attributes, dtypes, the shape rule). */
static lc_status lc_check_call(lc_call *c, const lc_op_operands *in) {
    const lc_op_def *d = lc_op_get(LC_OP_CONV_ATTENTION);
    const lc_graph_attrs given = c->attrs;
    lc_status st = lc_op_check_attrs(d, d->name, 0, &given, &c->attrs);
    if (st == LC_OK) st = lc_op_check_dtypes(d, in, &c->dtype);
    return st == LC_OK ? lc_op_infer(d, in, &c->attrs, &c->out_ndim, c->out_shape) : st;
}

int lc_conv_attention_fits(const lc_backend *be, const lc_tensor_t *x, const lc_tensor_t *w, const lc_conv2d_params *p,
                           int64_t seq, int64_t head_dim, int causal) {
    lc_call c;
    lc_op_operands in;
    lc_fill_call(x, w, NULL, p, seq, head_dim, causal, &c, &in);
    return lc_backend_fits(be, &c);
}

lc_status lc_conv_attention_fused(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_tensor_t *out,
                                  const lc_conv2d_params *p, int causal, lc_device device) {
    const lc_op_def *d = lc_op_get(LC_OP_CONV_ATTENTION);
    const char *op = d->name;
    const lc_tensor_t *operands[4] = {x, w, bias, out};
    lc_call call;
    lc_op_operands in;
    lc_fill_call(x, w, bias, p, lc_tensor_dim(out, 0), lc_tensor_dim(out, 1), causal, &call, &in);
    lc_status st = lc_check_call(&call, &in);
    if (st != LC_OK) return st;
    const lc_op_work ow = d->work(&in, &call.attrs, call.out_ndim, call.out_shape);
    const lc_work work = {ow.flops, ow.bytes, NULL, d->crossover};
    lc_route route;
    if ((st = lc_route_op(op, LC_OP_CONV_ATTENTION, call.dtype, device, operands, 4, work, &route)) != LC_OK) return st;
    const lc_backend *be = route.backend;
    if (lc_tensor_device(out) != be->device || lc_tensor_device(x) != be->device || !lc_backend_fits(be, &call))
        return lc_error(LC_ERR_UNSUPPORTED, "%s: %s has no fused kernel for this shape", op, be->name);
    call.in[0] = lc_tensor_data(x);
    call.in[1] = lc_tensor_data(w);
    if (bias) call.in[2] = lc_tensor_data(bias);
    call.out = lc_tensor_data(out);
    const char *path = "unknown";
    lc_output oo = {.data = call.out, .out = out, .backend = be};
    st = lc_output_commit(op, &oo, be->kernels[LC_OP_CONV_ATTENTION](&call, &path));
    if (st == LC_OK) lc_route_done(op, &route, path);
    return st;
}
