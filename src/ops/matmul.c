/* matmul.c — lc_matmul: a [m,k] · b [k,n] -> out [m,n], one dtype for all (the op table's masks: CPU
 * float32/float64/float16/bfloat16, CUDA float32/float64); checks, routing and the kernel call come from
 * the table entry (op_eager.c). Tests: tests/c/test_ops.c, tests/c/test_lowp.c, tests/python/test_ops_matmul.py. */
#include "ops/dispatch.h"

lc_status lc_matmul(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[2] = {a, b};
    return lc_op_run(LC_OP_MATMUL, in, 2, out, NULL, LC_ACT_NONE, 0, device);
}
