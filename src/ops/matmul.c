/* matmul.c — lc_matmul: validate a [m,k] · b [k,n] -> out [m,n] (float32 or float64, same dtype for all),
 * route by device policy, gather strided inputs, call the backend.
 * Tests: tests/c/test_ops.c, tests/python/test_ops_matmul.py. */
#include "ops/dispatch.h"

lc_status lc_matmul(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    static const char *op = "matmul";
    lc_status st;
    if ((st = lc_check_tensor(op, "a", a)) != LC_OK || (st = lc_check_tensor(op, "b", b)) != LC_OK ||
        (st = lc_check_rank(op, "a", a, 2)) != LC_OK || (st = lc_check_rank(op, "b", b, 2)) != LC_OK)
        return st;
    lc_dtype dtype = lc_tensor_dtype(a);
    if ((st = lc_check_dtype_is(op, "b", b, dtype)) != LC_OK) return st;
    int64_t m = lc_tensor_dim(a, 0), k = lc_tensor_dim(a, 1), n = lc_tensor_dim(b, 1);
    if (lc_tensor_dim(b, 0) != k)
        return lc_error(LC_ERR_SHAPE, "%s: b: expected shape [%lld, n] (rows = a's %lld columns), got [%lld, %lld]", op,
                        (long long)k, (long long)k, (long long)lc_tensor_dim(b, 0), (long long)n);
    const int64_t out_shape[2] = {m, n};
    if ((st = lc_check_out(op, out, dtype, 2, out_shape)) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "a", a, 0)) != LC_OK || (st = lc_check_no_overlap(op, out, "b", b, 0)) != LC_OK)
        return st;
    lc_route route;
    const lc_tensor_t *operands[3] = {a, b, out};
    const lc_work work = {2.0 * (double)m * (double)k * (double)n,
                          (double)(lc_tensor_nbytes(a) + lc_tensor_nbytes(b) + lc_tensor_nbytes(out)), NULL,
                          LC_CROSSOVER_MATMUL_FLOPS};
    if ((st = lc_route_op(op, LC_OP_MATMUL, dtype, device, operands, 3, work, &route)) != LC_OK) return st;
    lc_operand ao = {0}, bo = {0};
    lc_output oo = {0};
    if ((st = lc_operand_acquire(op, "a", a, &route, &ao)) == LC_OK && (st = lc_operand_acquire(op, "b", b, &route, &bo)) == LC_OK &&
        (st = lc_output_acquire(op, out, &route, &oo)) == LC_OK) {
        lc_matmul_args args = {.dtype = dtype, .m = m, .k = k, .n = n, .a = ao.data, .b = bo.data, .c = oo.data};
        const char *path = "unknown";
        st = lc_output_commit(op, &oo, route.backend->matmul(&args, &path));
        if (st == LC_OK) lc_route_done(op, &route, path);
    }
    lc_operand_release(&ao);
    lc_operand_release(&bo);
    return st;
}
