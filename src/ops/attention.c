/* attention.c — lc_attention_forward: softmax(q kᵀ / sqrt(head_dim) (+ causal mask)) v for q, k, v, out
 * [seq, head_dim] (float32, float16, bfloat16); checks, the CUDA head_dim limit, routing and the kernel call
 * come from the op table entry (op_eager.c). The backends' LC_OP_ATTENTION entries run sdpa's kernels on
 * the call as [1, 1, seq, head_dim] (lc_call_attention_sdpa, op_call.c). Tests: tests/c/test_ops.c,
 * tests/c/test_lowp_attn.c, tests/python/test_ops_attention.py, tests/python/test_attention_nonfinite.py. */
#include "ops/dispatch.h"

lc_status lc_attention_forward(const lc_tensor_t *q, const lc_tensor_t *k, const lc_tensor_t *v, lc_tensor_t *out,
                               int causal, lc_device device) {
    const lc_tensor_t *in[3] = {q, k, v};
    lc_graph_attrs attrs = {.set = LC_GRAPH_ATTR_CAUSAL, .causal = causal != 0};
    return lc_op_run(LC_OP_ATTENTION, in, 3, out, &attrs, LC_ACT_NONE, 0, device);
}
