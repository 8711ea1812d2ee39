/* elementwise.c — lc_vector_add, lc_matrix_sub, lc_matrix_div (equal shapes), lc_relu and lc_gelu:
 * each one op-table entry (dtypes: float32/float64, gelu float32); checks, routing and the kernel call
 * come from the table (op_eager.c). out may be exactly an input (in place: the entry's inplace_inputs).
 * Tests: tests/c/test_ops.c, tests/python/test_ops_elementwise.py. */
#include "ops/dispatch.h"

static lc_status lc_binary(lc_op op, const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[2] = {a, b};
    return lc_op_run(op, in, 2, out, NULL, LC_ACT_NONE, 0, device);
}

lc_status lc_vector_add(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    return lc_binary(LC_OP_VECTOR_ADD, a, b, out, device);
}

lc_status lc_matrix_sub(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    return lc_binary(LC_OP_MATRIX_SUB, a, b, out, device);
}

lc_status lc_matrix_div(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    return lc_binary(LC_OP_MATRIX_DIV, a, b, out, device);
}

lc_status lc_relu(const lc_tensor_t *x, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[1] = {x};
    return lc_op_run(LC_OP_RELU, in, 1, out, NULL, LC_ACT_NONE, 0, device);
}

lc_status lc_gelu(const lc_tensor_t *x, lc_tensor_t *out, lc_gelu_approx approx, lc_device device) {
    const lc_tensor_t *in[1] = {x};
    lc_graph_attrs attrs = {.set = LC_GRAPH_ATTR_GELU_APPROX, .gelu_approx = (int32_t)approx};
    return lc_op_run(LC_OP_GELU, in, 1, out, &attrs, LC_ACT_NONE, 0, device);
}
