/* linear.c — lc_linear: validate x [m,k], w [k,n], bias [n] (optional), the activation and out [m,n]
 * (float32), route, stage operands, call the backend's fused linear entry.
 * Tests: tests/c/test_ops.c (linear group), tests/python/test_ops_linear.py. */
#include "ops/dispatch.h"

lc_status lc_linear(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act,
                    lc_tensor_t *out, lc_device device) {
    static const char *op = "linear";
    lc_status st;
    if ((int)act < 0 || act >= LC_ACT_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: act: expected none, relu, gelu_erf or gelu_tanh, got code %d", op,
                        (int)act);
    if ((st = lc_check_tensor(op, "x", x)) != LC_OK || (st = lc_check_tensor(op, "w", w)) != LC_OK ||
        (st = lc_check_rank(op, "x", x, 2)) != LC_OK || (st = lc_check_rank(op, "w", w, 2)) != LC_OK ||
        (st = lc_check_dtype_is(op, "x", x, LC_DTYPE_F32)) != LC_OK ||
        (st = lc_check_dtype_is(op, "w", w, LC_DTYPE_F32)) != LC_OK)
        return st;
    const int64_t m = lc_tensor_dim(x, 0), k = lc_tensor_dim(x, 1), n = lc_tensor_dim(w, 1);
    if (lc_tensor_dim(w, 0) != k)
        return lc_error(LC_ERR_SHAPE, "%s: w: expected shape [%lld, n] (rows = x's %lld columns), got [%lld, %lld]", op,
                        (long long)k, (long long)k, (long long)lc_tensor_dim(w, 0), (long long)n);
    if (bias) {
        const int64_t bshape[1] = {n};
        if ((st = lc_check_tensor(op, "bias", bias)) != LC_OK ||
            (st = lc_check_dtype_is(op, "bias", bias, LC_DTYPE_F32)) != LC_OK ||
            (st = lc_check_shape(op, "bias", bias, 1, bshape)) != LC_OK)
            return st;
    }
    const int64_t out_shape[2] = {m, n};
    if ((st = lc_check_out(op, out, LC_DTYPE_F32, 2, out_shape)) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "x", x, 0)) != LC_OK || (st = lc_check_no_overlap(op, out, "w", w, 0)) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "bias", bias, 0)) != LC_OK)
        return st;
    lc_route route;
    const lc_tensor_t *operands[4] = {x, w, bias, out};
    const lc_work work = {2.0 * (double)m * (double)k * (double)n,
                          (double)(lc_tensor_nbytes(x) + lc_tensor_nbytes(w) + lc_tensor_nbytes(out)), NULL,
                          LC_CROSSOVER_MATMUL_FLOPS};
    if ((st = lc_route_op(op, LC_OP_LINEAR, LC_DTYPE_F32, device, operands, 4, work, &route)) != LC_OK) return st;
    lc_operand xo = {0}, wo = {0}, bo = {0};
    lc_output oo = {0};
    if ((st = lc_operand_acquire(op, "x", x, &route, &xo)) == LC_OK && (st = lc_operand_acquire(op, "w", w, &route, &wo)) == LC_OK &&
        (!bias || (st = lc_operand_acquire(op, "bias", bias, &route, &bo)) == LC_OK) &&
        (st = lc_output_acquire(op, out, &route, &oo)) == LC_OK) {
        lc_linear_args args = {.m = m, .k = k, .n = n, .act = act, .x = xo.data, .w = wo.data,
                               .bias = bias ? bo.data : NULL, .out = oo.data};
        const char *path = "unknown";
        st = lc_output_commit(op, &oo, route.backend->linear(&args, &path));
        if (st == LC_OK) lc_route_done(op, &route, path);
    }
    lc_operand_release(&xo);
    lc_operand_release(&wo);
    lc_operand_release(&bo);
    return st;
}
