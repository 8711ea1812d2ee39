/* linear.c — lc_linear / lc_linear_residual: act(x [m,k] · w [k,n] + bias [n]) (+ residual [m,n]) -> out
 * [m,n] (bias and residual optional; float32, float16, bfloat16), and the pre-norm forms lc_layer_norm_linear /
 * lc_rms_norm_linear (act(norm(x) · w + bias), their own op-table entries) and lc_silu_mul_linear (SwiGLU's down
 * projection: act(silu(gu[:, :k]) · gu[:, k:] · w + bias) + residual, its own entry): the activation is checked here, everything
 * else comes from the op table entry (op_eager.c: shapes, dtypes, out may be exactly the residual); the
 * backends run it as one GEMM + fused epilogue. Tests: tests/c/test_ops.c (linear group),
 * tests/python/test_ops_linear.py (residual cases included), tests/python/test_norm_linear.py,
 * tests/python/test_silu_mul_linear.py. */
#include "ops/dispatch.h"

/* The linear family's one entry: the activation checked (the op's table name in the message), then the op. */
static lc_status lc_linear_family_run(lc_op op, const lc_tensor_t *const *in, int nin, const lc_graph_attrs *attrs,
                                      lc_activation act, lc_tensor_t *out, lc_device device) {
    if ((int)act < 0 || act >= LC_ACT_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: act: expected none, relu, gelu_erf or gelu_tanh, got code %d",
                        lc_op_get(op)->name, (int)act);
    return lc_op_run(op, in, nin, out, attrs, act, 0, device);
}

lc_status lc_linear_residual(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias,
                             const lc_tensor_t *residual, lc_activation act, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[4] = {x, w, bias, residual};
    return lc_linear_family_run(LC_OP_LINEAR, in, residual ? 4 : 3, NULL, act, out, device);
}

lc_status lc_linear(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act,
                    lc_tensor_t *out, lc_device device) {
    return lc_linear_residual(x, w, bias, NULL, act, out, device);
}

static lc_status lc_norm_linear_run(lc_op op, const lc_tensor_t *const *in, int nin, double eps, lc_activation act,
                                    lc_tensor_t *out, lc_device device) {
    lc_graph_attrs attrs;
    lc_graph_attrs_init(&attrs);
    attrs.set = LC_GRAPH_ATTR_EPS;
    attrs.eps = eps;
    while (nin > 2 && !in[nin - 1]) nin--; /* trailing absent inputs */
    return lc_linear_family_run(op, in, nin, &attrs, act, out, device);
}

lc_status lc_layer_norm_linear(const lc_tensor_t *x, const lc_tensor_t *gamma, const lc_tensor_t *beta, double eps,
                               const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act, lc_tensor_t *out,
                               lc_device device) {
    const lc_tensor_t *in[5] = {x, w, bias, gamma, beta};
    return lc_norm_linear_run(LC_OP_LAYER_NORM_LINEAR, in, 5, eps, act, out, device);
}

lc_status lc_rms_norm_linear(const lc_tensor_t *x, const lc_tensor_t *weight, double eps, const lc_tensor_t *w,
                             const lc_tensor_t *bias, lc_activation act, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[4] = {x, w, bias, weight};
    return lc_norm_linear_run(LC_OP_RMS_NORM_LINEAR, in, 4, eps, act, out, device);
}

lc_status lc_silu_mul_linear(const lc_tensor_t *gu, const lc_tensor_t *w, const lc_tensor_t *bias,
                             const lc_tensor_t *residual, lc_activation act, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[4] = {gu, w, bias, residual};
    return lc_linear_family_run(LC_OP_SILU_MUL_LINEAR, in, residual ? 4 : 3, NULL, act, out, device);
}
