/* index.c — lc_embedding and lc_argmax (ops.h): the index ops, each one op-table entry run by lc_op_run
 * (embedding mixes a float table with integer ids; argmax writes int64). Tests: tests/python/test_ops_index.py. */
#include "ops/dispatch.h"

lc_status lc_embedding(const lc_tensor_t *weight, const lc_tensor_t *ids, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[2] = {weight, ids};
    return lc_op_run(LC_OP_EMBEDDING, in, 2, out, NULL, LC_ACT_NONE, 0, device);
}

lc_status lc_argmax(const lc_tensor_t *x, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[1] = {x};
    return lc_op_run(LC_OP_ARGMAX, in, 1, out, NULL, LC_ACT_NONE, 0, device);
}
