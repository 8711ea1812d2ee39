/* layer_norm.c — lc_layer_norm: validate x [..., d] float32, optional gamma/beta [d], eps > 0 and out
 * (x's shape; may be exactly x), route, gather strided inputs, call the backend.
 * Tests: tests/c/test_ops.c, tests/python/test_ops_elementwise.py. */
#include <math.h>

#include "ops/dispatch.h"

lc_status lc_layer_norm(const lc_tensor_t *x, const lc_tensor_t *gamma, const lc_tensor_t *beta, lc_tensor_t *out,
                        double eps, lc_device device) {
    static const char *op = "layer_norm";
    lc_status st;
    /* The kernels add eps in float32: an eps that rounds to 0 there (e.g. 1e-300) would make a constant row
     * 0/0 = NaN, and one that overflows would be inf. Refuse both instead of computing garbage. */
    const float eps32 = (float)eps;
    if (!(eps > 0.0) || !isfinite(eps) || !(eps32 > 0.0f) || !isfinite(eps32))
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "%s: eps: expected a finite value > 0 that float32 holds (1.4e-45 .. 3.4e38), got %g", op, eps);
    if ((st = lc_check_tensor(op, "x", x)) != LC_OK || (st = lc_check_dtype_is(op, "x", x, LC_DTYPE_F32)) != LC_OK)
        return st;
    int ndim = lc_tensor_ndim(x);
    const int64_t cols = lc_tensor_dim(x, ndim - 1);
    const int64_t pshape[1] = {cols};
    const lc_tensor_t *params[2] = {gamma, beta};
    const char *names[2] = {"gamma", "beta"};
    for (int i = 0; i < 2; i++) {
        if (!params[i]) continue;
        if ((st = lc_check_tensor(op, names[i], params[i])) != LC_OK ||
            (st = lc_check_dtype_is(op, names[i], params[i], LC_DTYPE_F32)) != LC_OK ||
            (st = lc_check_shape(op, names[i], params[i], 1, pshape)) != LC_OK ||
            (st = lc_check_no_overlap(op, out, names[i], params[i], 0)) != LC_OK)
            return st;
    }
    if ((st = lc_check_out(op, out, LC_DTYPE_F32, ndim, lc_tensor_shape(x))) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "x", x, 1)) != LC_OK)
        return st;
    lc_route route;
    const lc_tensor_t *operands[4] = {x, gamma, beta, out};
    const lc_work work = {8.0 * (double)lc_tensor_numel(x), 2.0 * (double)lc_tensor_nbytes(x), NULL,
                          LC_CROSSOVER_NONE};
    if ((st = lc_route_op(op, LC_OP_LAYER_NORM, LC_DTYPE_F32, device, operands, 4, work, &route)) != LC_OK) return st;
    lc_operand xo = {0}, go = {0}, bo = {0};
    lc_output oo = {0};
    if ((st = lc_operand_acquire(op, "x", x, &route, &xo)) == LC_OK &&
        (!gamma || (st = lc_operand_acquire(op, "gamma", gamma, &route, &go)) == LC_OK) &&
        (!beta || (st = lc_operand_acquire(op, "beta", beta, &route, &bo)) == LC_OK) &&
        (st = lc_output_acquire(op, out, &route, &oo)) == LC_OK) {
        lc_layer_norm_args args = {.rows = lc_tensor_numel(x) / cols, .cols = cols, .eps = eps, .x = xo.data,
                                   .gamma = gamma ? go.data : NULL, .beta = beta ? bo.data : NULL,
                                   .out = oo.data};
        const char *path = "unknown";
        st = lc_output_commit(op, &oo, route.backend->layer_norm(&args, &path));
        if (st == LC_OK) lc_route_done(op, &route, path);
    }
    lc_operand_release(&xo);
    lc_operand_release(&go);
    lc_operand_release(&bo);
    return st;
}
