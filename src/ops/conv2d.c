/* conv2d.c — lc_conv2d_nchw: x [n,c,h,w] (*) w [oc,c,kh,kw] + bias [oc] (optional) -> out [n,oc,oh,ow]
 * (float32; oh/ow by the table's one conv rule, lc_conv_out_extent), optional fused ReLU. The stride/pad
 * parameters become the op's attributes; checks, routing and the kernel call come from the op table
 * entry (op_eager.c). Tests: tests/c/test_ops.c, tests/python/test_ops_conv.py. */
#include "ops/dispatch.h"

lc_status lc_conv2d_nchw(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_tensor_t *out,
                         const lc_conv2d_params *params, lc_device device) {
    if (!params) return lc_error(LC_ERR_INVALID_ARGUMENT, "conv2d_nchw: params: expected conv parameters, got NULL");
    const lc_tensor_t *in[3] = {x, w, bias};
    lc_graph_attrs attrs = {.set = LC_GRAPH_ATTR_STRIDE_H | LC_GRAPH_ATTR_STRIDE_W | LC_GRAPH_ATTR_PAD_H | LC_GRAPH_ATTR_PAD_W,
                            .stride_h = params->stride_h, .stride_w = params->stride_w,
                            .pad_h = params->pad_h, .pad_w = params->pad_w};
    return lc_op_run(LC_OP_CONV2D, in, 3, out, &attrs, LC_ACT_NONE, params->apply_relu != 0, device);
}
