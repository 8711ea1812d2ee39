/* conv2d.c — lc_conv2d_nchw: validate x [n,c,h,w], w [oc,c,kh,kw], bias [oc] (optional), the
 * stride/pad attributes and out [n,oc,oh,ow] (float32), route, gather strided inputs, call the backend.
 * Tests: tests/c/test_ops.c, tests/python/test_ops_conv.py. */
#include "ops/dispatch.h"

/* Output extent along one axis, or an error naming the attribute. */
static lc_status lc_conv_out_dim(const char *op, const char *axis, int64_t in, int64_t kernel, int stride, int pad,
                                 int64_t *out) {
    int64_t span = in + 2 * (int64_t)pad - kernel;
    if (span < 0)
        return lc_error(LC_ERR_SHAPE,
                        "%s: %s: expected input %s + 2*pad >= kernel size %lld, got %lld + 2*%d (no output positions)",
                        op, axis, axis, (long long)kernel, (long long)in, pad);
    *out = span / stride + 1;
    return LC_OK;
}

lc_status lc_conv2d_nchw(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_tensor_t *out,
                         const lc_conv2d_params *params, lc_device device) {
    static const char *op = "conv2d_nchw";
    lc_status st;
    if (!params) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: params: expected conv parameters, got NULL", op);
    if (params->stride_h < 1 || params->stride_w < 1)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected >= 1, got %d", op,
                        params->stride_h < 1 ? "stride_h" : "stride_w",
                        params->stride_h < 1 ? params->stride_h : params->stride_w);
    if (params->pad_h < 0 || params->pad_w < 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected >= 0, got %d", op,
                        params->pad_h < 0 ? "pad_h" : "pad_w", params->pad_h < 0 ? params->pad_h : params->pad_w);
    if ((st = lc_check_tensor(op, "x", x)) != LC_OK || (st = lc_check_tensor(op, "w", w)) != LC_OK ||
        (st = lc_check_rank(op, "x", x, 4)) != LC_OK || (st = lc_check_rank(op, "w", w, 4)) != LC_OK ||
        (st = lc_check_dtype_is(op, "x", x, LC_DTYPE_F32)) != LC_OK ||
        (st = lc_check_dtype_is(op, "w", w, LC_DTYPE_F32)) != LC_OK)
        return st;
    const int64_t n = lc_tensor_dim(x, 0), c = lc_tensor_dim(x, 1), h = lc_tensor_dim(x, 2), wd = lc_tensor_dim(x, 3);
    const int64_t oc = lc_tensor_dim(w, 0), kh = lc_tensor_dim(w, 2), kw = lc_tensor_dim(w, 3);
    if (lc_tensor_dim(w, 1) != c)
        return lc_error(LC_ERR_SHAPE, "%s: w: expected %lld input channels (x's dim 1) at dim 1, got %lld", op,
                        (long long)c, (long long)lc_tensor_dim(w, 1));
    if (bias) {
        const int64_t bshape[1] = {oc};
        if ((st = lc_check_tensor(op, "bias", bias)) != LC_OK ||
            (st = lc_check_dtype_is(op, "bias", bias, LC_DTYPE_F32)) != LC_OK ||
            (st = lc_check_shape(op, "bias", bias, 1, bshape)) != LC_OK)
            return st;
    }
    int64_t oh = 0, ow = 0;
    if ((st = lc_conv_out_dim(op, "h", h, kh, params->stride_h, params->pad_h, &oh)) != LC_OK ||
        (st = lc_conv_out_dim(op, "w", wd, kw, params->stride_w, params->pad_w, &ow)) != LC_OK)
        return st;
    const int64_t out_shape[4] = {n, oc, oh, ow};
    if ((st = lc_check_out(op, out, LC_DTYPE_F32, 4, out_shape)) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "x", x, 0)) != LC_OK || (st = lc_check_no_overlap(op, out, "w", w, 0)) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "bias", bias, 0)) != LC_OK)
        return st;
    lc_route route;
    const lc_tensor_t *operands[4] = {x, w, bias, out};
    const lc_work work = {2.0 * (double)n * (double)oc * (double)oh * (double)ow * (double)c * (double)kh * (double)kw,
                          (double)(lc_tensor_nbytes(x) + lc_tensor_nbytes(w) + lc_tensor_nbytes(out)), NULL,
                          LC_CROSSOVER_CONV2D_MACS};
    if ((st = lc_route_op(op, LC_OP_CONV2D, LC_DTYPE_F32, device, operands, 4, work, &route)) != LC_OK) return st;
    lc_operand xo = {0}, wo = {0}, bo = {0};
    lc_output oo = {0};
    if ((st = lc_operand_acquire(op, "x", x, &route, &xo)) == LC_OK && (st = lc_operand_acquire(op, "w", w, &route, &wo)) == LC_OK &&
        (!bias || (st = lc_operand_acquire(op, "bias", bias, &route, &bo)) == LC_OK) &&
        (st = lc_output_acquire(op, out, &route, &oo)) == LC_OK) {
        lc_conv2d_args args = {.n = n, .c = c, .h = h, .w = wd, .oc = oc, .kh = kh, .kw = kw, .oh = oh, .ow = ow,
                               .stride_h = params->stride_h, .stride_w = params->stride_w,
                               .pad_h = params->pad_h, .pad_w = params->pad_w, .apply_relu = params->apply_relu != 0,
                               .x = xo.data, .weight = wo.data, .bias = bias ? bo.data : NULL,
                               .y = oo.data};
        const char *path = "unknown";
        st = lc_output_commit(op, &oo, route.backend->conv2d(&args, &path));
        if (st == LC_OK) lc_route_done(op, &route, path);
    }
    lc_operand_release(&xo);
    lc_operand_release(&wo);
    lc_operand_release(&bo);
    return st;
}
