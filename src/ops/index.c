/* index.c — lc_embedding, lc_embedding_offset, lc_embedding_pos and lc_argmax (ops.h): the index ops, each one
 * op-table entry run by lc_op_run (embedding mixes a float table with integer ids; argmax writes int64).
 * lc_embedding_offset (a vocabulary shard: ids outside [offset, offset + rows) give zero rows) hands its offset to
 * the kernel through lc_call.ext; lc_embedding_pos (GPT-2's token + learned position rows in one op) passes the
 * entry's optional inputs 2 and 3. Tests: tests/python/test_ops_index.py, tests/python/test_tp.py. */
#include "ops/dispatch.h"

lc_status lc_embedding(const lc_tensor_t *weight, const lc_tensor_t *ids, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[2] = {weight, ids};
    return lc_op_run(LC_OP_EMBEDDING, in, 2, out, NULL, LC_ACT_NONE, 0, device);
}

lc_status lc_embedding_offset(const lc_tensor_t *weight, const lc_tensor_t *ids, int64_t offset, lc_tensor_t *out,
                              lc_device device) {
    if (offset < 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "embedding: offset: expected >= 0 (the shard's first id), got %lld",
                        (long long)offset);
    const lc_tensor_t *in[2] = {weight, ids};
    return lc_op_run_ext(LC_OP_EMBEDDING, in, 2, out, NULL, LC_ACT_NONE, 0, &offset, device);
}

lc_status lc_embedding_pos(const lc_tensor_t *weight, const lc_tensor_t *ids, const lc_tensor_t *pos_weight,
                           const lc_tensor_t *positions, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[4] = {weight, ids, pos_weight, positions};
    return lc_op_run(LC_OP_EMBEDDING, in, 4, out, NULL, LC_ACT_NONE, 0, device);
}

lc_status lc_argmax(const lc_tensor_t *x, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[1] = {x};
    return lc_op_run(LC_OP_ARGMAX, in, 1, out, NULL, LC_ACT_NONE, 0, device);
}
