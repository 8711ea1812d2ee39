/* linear.c — lc_linear: act(x [m,k] · w [k,n] + bias [n]) -> out [m,n] (bias optional; float32): the
 * activation is checked here, everything else comes from the op table entry (op_eager.c); the backends
 * run it as one fused GEMM + epilogue. Tests: tests/c/test_ops.c (linear group), tests/python/test_ops_linear.py. */
#include "ops/dispatch.h"

lc_status lc_linear(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act,
                    lc_tensor_t *out, lc_device device) {
    if ((int)act < 0 || act >= LC_ACT_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "linear: act: expected none, relu, gelu_erf or gelu_tanh, got code %d",
                        (int)act);
    const lc_tensor_t *in[3] = {x, w, bias};
    return lc_op_run(LC_OP_LINEAR, in, 3, out, NULL, act, 0, device);
}
