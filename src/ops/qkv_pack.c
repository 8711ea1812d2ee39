/* qkv_pack.c — lc_qkv_pack_repeat: out_flat[i] = src_flat[i % src.numel] (the seed's flatten, then
 * repeat or truncate a conv output into q|k|v). float32, any shapes (the eager form takes out's own
 * shape: LC_OPF_OUT_FREE); out contiguous. Checks and routing come from the op table (op_eager.c).
 * Tests: tests/c/test_ops.c, tests/python/test_sessions.py (qkv_pack_repeat and the conv->attention chain). */
#include "ops/dispatch.h"

lc_status lc_qkv_pack_repeat(const lc_tensor_t *src, lc_tensor_t *out, lc_device device) {
    const lc_tensor_t *in[1] = {src};
    /* seq/head_dim are the graph form's attributes; the eager form sizes by out */
    lc_graph_attrs attrs = {.set = LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM, .seq = 1, .head_dim = 1};
    return lc_op_run(LC_OP_QKV_PACK, in, 1, out, &attrs, LC_ACT_NONE, 0, device);
}
