/* elementwise.c — lc_vector_add, lc_matrix_sub, lc_matrix_div (equal shapes, float32/float64), lc_relu
 * (float32/float64) and lc_gelu (float32): validate, route, gather strided inputs, call the backend.
 * out may be exactly an input (in place). Tests: tests/c/test_ops.c, tests/python/test_ops_elementwise.py. */
#include "ops/dispatch.h"

static lc_status lc_binary(const char *op, lc_binary_kind kind, const lc_tensor_t *a, const lc_tensor_t *b,
                           lc_tensor_t *out, lc_device device) {
    lc_status st;
    if ((st = lc_check_tensor(op, "a", a)) != LC_OK || (st = lc_check_tensor(op, "b", b)) != LC_OK) return st;
    lc_dtype dtype = lc_tensor_dtype(a);
    int ndim = lc_tensor_ndim(a);
    const int64_t *shape = lc_tensor_shape(a);
    if ((st = lc_check_dtype_is(op, "b", b, dtype)) != LC_OK || (st = lc_check_shape(op, "b", b, ndim, shape)) != LC_OK ||
        (st = lc_check_out(op, out, dtype, ndim, shape)) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "a", a, 1)) != LC_OK || (st = lc_check_no_overlap(op, out, "b", b, 1)) != LC_OK)
        return st;
    lc_route route;
    const lc_tensor_t *operands[3] = {a, b, out};
    const lc_work work = {(double)lc_tensor_numel(a), 3.0 * (double)lc_tensor_nbytes(a), NULL, LC_CROSSOVER_NONE};
    if ((st = lc_route_op(op, LC_OP_BINARY, dtype, device, operands, 3, work, &route)) != LC_OK) return st;
    lc_operand ao = {0}, bo = {0};
    lc_output oo = {0};
    if ((st = lc_operand_acquire(op, "a", a, &route, &ao)) == LC_OK && (st = lc_operand_acquire(op, "b", b, &route, &bo)) == LC_OK &&
        (st = lc_output_acquire(op, out, &route, &oo)) == LC_OK) {
        lc_binary_args args = {.kind = kind, .dtype = dtype, .n = lc_tensor_numel(a), .a = ao.data, .b = bo.data,
                               .out = oo.data};
        const char *path = "unknown";
        st = lc_output_commit(op, &oo, route.backend->binary(&args, &path));
        if (st == LC_OK) lc_route_done(op, &route, path);
    }
    lc_operand_release(&ao);
    lc_operand_release(&bo);
    return st;
}

lc_status lc_vector_add(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    return lc_binary("vector_add", LC_BINARY_ADD, a, b, out, device);
}

lc_status lc_matrix_sub(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    return lc_binary("matrix_sub", LC_BINARY_SUB, a, b, out, device);
}

lc_status lc_matrix_div(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    return lc_binary("matrix_div", LC_BINARY_DIV, a, b, out, device);
}

/* Checks for a unary op over x -> out of x's shape and dtype, then routes it and acquires x and out. */
static lc_status lc_unary_prepare(const char *op, lc_op kind, double flops_per_element, const lc_tensor_t *x,
                                  lc_tensor_t *out, lc_device device, lc_route *route, lc_operand *xo, lc_output *oo) {
    lc_status st;
    if ((st = lc_check_tensor(op, "x", x)) != LC_OK) return st;
    if (kind == LC_OP_GELU && (st = lc_check_dtype_is(op, "x", x, LC_DTYPE_F32)) != LC_OK) return st;
    const lc_tensor_t *operands[2] = {x, out};
    const lc_work work = {flops_per_element * (double)lc_tensor_numel(x), 2.0 * (double)lc_tensor_nbytes(x), NULL,
                          LC_CROSSOVER_NONE};
    if ((st = lc_check_out(op, out, lc_tensor_dtype(x), lc_tensor_ndim(x), lc_tensor_shape(x))) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "x", x, 1)) != LC_OK ||
        (st = lc_route_op(op, kind, lc_tensor_dtype(x), device, operands, 2, work, route)) != LC_OK ||
        (st = lc_operand_acquire(op, "x", x, route, xo)) != LC_OK)
        return st;
    if ((st = lc_output_acquire(op, out, route, oo)) != LC_OK) lc_operand_release(xo);
    return st;
}

lc_status lc_relu(const lc_tensor_t *x, lc_tensor_t *out, lc_device device) {
    static const char *op = "relu";
    lc_route route;
    lc_operand xo = {0};
    lc_output oo = {0};
    lc_status st = lc_unary_prepare(op, LC_OP_RELU, 1.0, x, out, device, &route, &xo, &oo);
    if (st != LC_OK) return st;
    lc_relu_args args = {.dtype = lc_tensor_dtype(x), .n = lc_tensor_numel(x), .x = xo.data, .out = oo.data};
    const char *path = "unknown";
    st = lc_output_commit(op, &oo, route.backend->relu(&args, &path));
    lc_operand_release(&xo);
    if (st == LC_OK) lc_route_done(op, &route, path);
    return st;
}

lc_status lc_gelu(const lc_tensor_t *x, lc_tensor_t *out, lc_gelu_approx approx, lc_device device) {
    static const char *op = "gelu";
    if ((int)approx < 0 || approx >= LC_GELU_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: approx: expected LC_GELU_ERF or LC_GELU_TANH, got code %d", op,
                        (int)approx);
    lc_route route;
    lc_operand xo = {0};
    lc_output oo = {0};
    lc_status st = lc_unary_prepare(op, LC_OP_GELU, 20.0, x, out, device, &route, &xo, &oo);
    if (st != LC_OK) return st;
    lc_gelu_args args = {.approx = approx, .n = lc_tensor_numel(x), .x = xo.data, .out = oo.data};
    const char *path = "unknown";
    st = lc_output_commit(op, &oo, route.backend->gelu(&args, &path));
    lc_operand_release(&xo);
    if (st == LC_OK) lc_route_done(op, &route, path);
    return st;
}
