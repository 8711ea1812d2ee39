/* llm.c — lc_rms_norm, lc_softmax, lc_silu, lc_silu_mul, lc_add, lc_mul (ops.h): each one op-table entry
 * (dtypes, shape rule incl. NumPy broadcasting for add/mul, in-place aliases, work); checks, routing, operand
 * staging and the kernel call come from the table (op_eager.c). lc_rope is in rope.c.
 * Tests: tests/c/test_ops_llm.c, tests/c/test_op_table.c, tests/python/test_ops_llm.py. */
#include "ops/dispatch.h"

lc_status lc_rms_norm(const lc_tensor_t *x, const lc_tensor_t *weight, lc_tensor_t *out, double eps, lc_device device) {
    const lc_tensor_t *in[2] = {x, weight};
    lc_graph_attrs attrs = {.set = LC_GRAPH_ATTR_EPS, .eps = eps};
    return lc_op_run(LC_OP_RMS_NORM, in, 2, out, &attrs, LC_ACT_NONE, 0, device);
}

static lc_status lc_unary(lc_op op, const lc_tensor_t *x, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[1] = {x};
    return lc_op_run(op, in, 1, out, NULL, LC_ACT_NONE, 0, device);
}

static lc_status lc_binary2(lc_op op, const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[2] = {a, b};
    return lc_op_run(op, in, 2, out, NULL, LC_ACT_NONE, 0, device);
}

lc_status lc_softmax(const lc_tensor_t *x, lc_tensor_t *out, lc_device device) {
    return lc_unary(LC_OP_SOFTMAX, x, out, device);
}

lc_status lc_silu(const lc_tensor_t *x, lc_tensor_t *out, lc_device device) {
    return lc_unary(LC_OP_SILU, x, out, device);
}

lc_status lc_silu_mul(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    return lc_binary2(LC_OP_SILU_MUL, a, b, out, device);
}

lc_status lc_add(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    return lc_binary2(LC_OP_ADD, a, b, out, device);
}

lc_status lc_mul(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    return lc_binary2(LC_OP_MUL, a, b, out, device);
}
