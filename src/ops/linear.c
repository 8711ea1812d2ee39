/* linear.c — lc_linear / lc_linear_residual: act(x [m,k] · w [k,n] + bias [n]) (+ residual [m,n]) -> out
 * [m,n] (bias and residual optional; float32, float16, bfloat16), and the pre-norm forms lc_layer_norm_linear /
 * lc_rms_norm_linear (act(norm(x) · w + bias), their own op-table entries) and lc_silu_mul_linear (SwiGLU's down
 * projection: act(silu(gu[:, :k]) · gu[:, k:] · w + bias) + residual, its own entry), and the pre-norm forms with
 * argmax_out (lc_*_norm_linear_argmax: each row's argmax of out, folded into the backend's launch where it can, else
 * lc_argmax after the op; tests/python/test_norm_linear_argmax.py): the activation is checked here, everything
 * else comes from the op table entry (op_eager.c: shapes, dtypes, out may be exactly the residual); the
 * backends run it as one GEMM + fused epilogue. Tests: tests/c/test_ops.c (linear group),
 * tests/python/test_ops_linear.py (residual cases included), tests/python/test_norm_linear.py,
 * tests/python/test_silu_mul_linear.py. */
#include "ops/dispatch.h"

/* The linear family's one entry: the activation checked (the op's table name in the message), then the op. */
static lc_status lc_linear_family_run(lc_op op, const lc_tensor_t *const *in, int nin, const lc_graph_attrs *attrs,
                                      lc_activation act, const void *ext, lc_tensor_t *out, lc_device device) {
    if ((int)act < 0 || act >= LC_ACT_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: act: expected none, relu, gelu_erf or gelu_tanh, got code %d",
                        lc_op_get(op)->name, (int)act);
    return lc_op_run_ext(op, in, nin, out, attrs, act, 0, ext, device);
}

lc_status lc_linear_residual(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias,
                             const lc_tensor_t *residual, lc_activation act, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[4] = {x, w, bias, residual};
    return lc_linear_family_run(LC_OP_LINEAR, in, residual ? 4 : 3, NULL, act, NULL, out, device);
}

lc_status lc_linear(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act,
                    lc_tensor_t *out, lc_device device) {
    return lc_linear_residual(x, w, bias, NULL, act, out, device);
}

/* The pre-norm linears, with argmax_out (NULL: none) = lc_argmax(out): checked first (int64 [m], contiguous,
 * writable, apart from every operand), then folded into the op's launch where the backend can (lc_argmax_fold:
 * argmax_out on `device`, which is where out's op runs), else lc_argmax on out after the op. */
static lc_status lc_norm_linear_run(lc_op op, const lc_tensor_t *const *in, int nin, double eps, lc_activation act,
                                    lc_tensor_t *out, lc_tensor_t *argmax_out, lc_device device) {
    const char *fn = lc_op_get(op)->name;
    lc_graph_attrs attrs;
    lc_graph_attrs_init(&attrs);
    attrs.set = LC_GRAPH_ATTR_EPS;
    attrs.eps = eps;
    while (nin > 2 && !in[nin - 1]) nin--; /* trailing absent inputs */
    /* without argmax_out, or with an x the op refuses (its own error, nothing written) */
    if (!argmax_out || !in[0] || lc_tensor_ndim(in[0]) != 2)
        return lc_linear_family_run(op, in, nin, &attrs, act, NULL, out, device);
    const int64_t m = lc_tensor_dim(in[0], 0);
    lc_status st = lc_check_out_arg(fn, "argmax_out", argmax_out, LC_DTYPE_I64, 1, &m, 1);
    if (st != LC_OK) return st;
    for (int i = 0; i < nin; i++)
        if ((st = lc_check_no_overlap(fn, argmax_out, lc_op_get(op)->input_names[i], in[i], 0)) != LC_OK) return st;
    if (out && (st = lc_check_no_overlap(fn, argmax_out, "out", out, 0)) != LC_OK) return st;
    lc_argmax_fold fold = {NULL, 0};
    if (out && device != LC_DEVICE_AUTO && lc_tensor_device(argmax_out) == device && lc_tensor_device(out) == device)
        fold.idx = (int64_t *)lc_tensor_data(argmax_out);
    st = lc_linear_family_run(op, in, nin, &attrs, act, fold.idx ? &fold : NULL, out, device);
    return st != LC_OK || fold.done ? st : lc_argmax(out, argmax_out, device);
}

lc_status lc_layer_norm_linear_argmax(const lc_tensor_t *x, const lc_tensor_t *gamma, const lc_tensor_t *beta,
                                      double eps, const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act,
                                      lc_tensor_t *out, lc_tensor_t *argmax_out, lc_device device) {
    const lc_tensor_t *in[5] = {x, w, bias, gamma, beta};
    return lc_norm_linear_run(LC_OP_LAYER_NORM_LINEAR, in, 5, eps, act, out, argmax_out, device);
}

lc_status lc_rms_norm_linear_argmax(const lc_tensor_t *x, const lc_tensor_t *weight, double eps, const lc_tensor_t *w,
                                    const lc_tensor_t *bias, lc_activation act, lc_tensor_t *out,
                                    lc_tensor_t *argmax_out, lc_device device) {
    const lc_tensor_t *in[4] = {x, w, bias, weight};
    return lc_norm_linear_run(LC_OP_RMS_NORM_LINEAR, in, 4, eps, act, out, argmax_out, device);
}

lc_status lc_layer_norm_linear(const lc_tensor_t *x, const lc_tensor_t *gamma, const lc_tensor_t *beta, double eps,
                               const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act, lc_tensor_t *out,
                               lc_device device) {
    return lc_layer_norm_linear_argmax(x, gamma, beta, eps, w, bias, act, out, NULL, device);
}

lc_status lc_rms_norm_linear(const lc_tensor_t *x, const lc_tensor_t *weight, double eps, const lc_tensor_t *w,
                             const lc_tensor_t *bias, lc_activation act, lc_tensor_t *out, lc_device device) {
    return lc_rms_norm_linear_argmax(x, weight, eps, w, bias, act, out, NULL, device);
}

lc_status lc_silu_mul_linear(const lc_tensor_t *gu, const lc_tensor_t *w, const lc_tensor_t *bias,
                             const lc_tensor_t *residual, lc_activation act, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[4] = {gu, w, bias, residual};
    return lc_linear_family_run(LC_OP_SILU_MUL_LINEAR, in, residual ? 4 : 3, NULL, act, NULL, out, device);
}
