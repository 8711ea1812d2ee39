/* layer_norm.c — lc_layer_norm: x [..., d] (float32), optional gamma/beta [d], eps > 0, out of x's shape
 * (may be exactly x); checks, routing and the kernel call come from the op table entry (op_eager.c).
 * Tests: tests/c/test_ops.c, tests/python/test_ops_elementwise.py. */
#include "ops/dispatch.h"

lc_status lc_layer_norm(const lc_tensor_t *x, const lc_tensor_t *gamma, const lc_tensor_t *beta, lc_tensor_t *out,
                        double eps, lc_device device) {
    const lc_tensor_t *in[3] = {x, gamma, beta};
    lc_graph_attrs attrs = {.set = LC_GRAPH_ATTR_EPS, .eps = eps};
    return lc_op_run(LC_OP_LAYER_NORM, in, 3, out, &attrs, LC_ACT_NONE, 0, device);
}
