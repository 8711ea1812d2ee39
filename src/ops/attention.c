/* attention.c — lc_attention_forward: validate q, k, v, out [seq, head_dim] float32, route, gather
 * strided inputs, call the backend with scale 1/sqrt(head_dim).
 * Tests: tests/c/test_ops.c, tests/python/test_ops_attention.py. */
#include <math.h>

#include "ops/dispatch.h"

lc_status lc_attention_forward(const lc_tensor_t *q, const lc_tensor_t *k, const lc_tensor_t *v, lc_tensor_t *out,
                               int causal, lc_device device) {
    static const char *op = "attention_forward";
    lc_status st;
    if ((st = lc_check_tensor(op, "q", q)) != LC_OK || (st = lc_check_tensor(op, "k", k)) != LC_OK ||
        (st = lc_check_tensor(op, "v", v)) != LC_OK || (st = lc_check_rank(op, "q", q, 2)) != LC_OK ||
        (st = lc_check_dtype_is(op, "q", q, LC_DTYPE_F32)) != LC_OK ||
        (st = lc_check_dtype_is(op, "k", k, LC_DTYPE_F32)) != LC_OK ||
        (st = lc_check_dtype_is(op, "v", v, LC_DTYPE_F32)) != LC_OK)
        return st;
    const int64_t shape[2] = {lc_tensor_dim(q, 0), lc_tensor_dim(q, 1)};
    if ((st = lc_check_shape(op, "k", k, 2, shape)) != LC_OK || (st = lc_check_shape(op, "v", v, 2, shape)) != LC_OK ||
        (st = lc_check_out(op, out, LC_DTYPE_F32, 2, shape)) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "q", q, 0)) != LC_OK || (st = lc_check_no_overlap(op, out, "k", k, 0)) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "v", v, 0)) != LC_OK)
        return st;
    lc_route route;
    const lc_tensor_t *operands[4] = {q, k, v, out};
    const double s_ = (double)shape[0], d_ = (double)shape[1];
    const lc_work work = {4.0 * s_ * s_ * d_, 4.0 * s_ * d_ * sizeof(float),
                          shape[1] > 256 ? "the CUDA attention kernel takes head_dim <= 256" : NULL, LC_CROSSOVER_NONE};
    if ((st = lc_route_op(op, LC_OP_ATTENTION, LC_DTYPE_F32, device, operands, 4, work, &route)) != LC_OK) return st;
    lc_operand qo = {0}, ko = {0}, vo = {0};
    lc_output oo = {0};
    if ((st = lc_operand_acquire(op, "q", q, &route, &qo)) == LC_OK && (st = lc_operand_acquire(op, "k", k, &route, &ko)) == LC_OK &&
        (st = lc_operand_acquire(op, "v", v, &route, &vo)) == LC_OK && (st = lc_output_acquire(op, out, &route, &oo)) == LC_OK) {
        lc_attention_args args = {.seq = shape[0],
                                  .head_dim = shape[1],
                                  .causal = causal != 0,
                                  .scale = (float)(1.0 / sqrt((double)shape[1])),
                                  .q = qo.data,
                                  .k = ko.data,
                                  .v = vo.data,
                                  .out = oo.data};
        const char *path = "unknown";
        st = lc_output_commit(op, &oo, route.backend->attention(&args, &path));
        if (st == LC_OK) lc_route_done(op, &route, path);
    }
    lc_operand_release(&qo);
    lc_operand_release(&ko);
    lc_operand_release(&vo);
    return st;
}
