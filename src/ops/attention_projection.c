/* attention_projection.c — the fused attention -> projection op (internal, ops/attention_projection.h):
 * one op-table entry (LC_OP_ATTENTION_PROJECTION: shape rule, work); routes (operands on one device),
 * checks the backend has the fused kernel for the sizes (its fits entry), calls kernels[op]; capturable
 * and traced like any op. The CPU kernel projects each query block as it is produced (attention_projection_cpu.c);
 * the CUDA kernel one query row per warp (attention_projection_cuda.cu).
 * Tests: tests/python/test_graph_plan.py, tests/c/test_plan.c. */
#include <string.h>

#include "ops/attention_projection.h"
#include "ops/dispatch.h"

int lc_attention_projection_fits(const lc_backend *be, int64_t seq, int64_t head_dim, int64_t pn) {
    const int64_t qs[2] = {seq, head_dim}, ws[2] = {head_dim, pn};
    lc_call c;
    memset(&c, 0, sizeof c);
    c.op = LC_OP_ATTENTION_PROJECTION;
    c.nin = 4;
    for (int i = 0; i < 3; i++) c.ndim[i] = 2, c.shape[i] = qs;
    c.ndim[3] = 2, c.shape[3] = ws;
    c.out_ndim = 2, c.out_shape[0] = seq, c.out_shape[1] = pn;
    return lc_backend_fits(be, &c);
}

lc_status lc_attention_projection_fused(const lc_tensor_t *q, const lc_tensor_t *k, const lc_tensor_t *v,
                                        const lc_tensor_t *w, const lc_tensor_t *bias, lc_tensor_t *out, int causal,
                                        lc_device device) {
    const lc_op_def *d = lc_op_get(LC_OP_ATTENTION_PROJECTION);
    const char *op = d->name;
    const lc_tensor_t *operands[6] = {q, k, v, w, bias, out};
    lc_op_operands in;
    lc_call call;
    memset(&in, 0, sizeof in);
    memset(&call, 0, sizeof call);
    in.prefix = op;
    in.n = call.nin = bias ? 5 : 4;
    for (int i = 0; i < in.n; i++) {
        call.ndim[i] = in.ndim[i] = lc_tensor_ndim(operands[i]);
        call.shape[i] = in.shape[i] = lc_tensor_shape(operands[i]);
        in.dtype[i] = lc_tensor_dtype(operands[i]);
    }
    const lc_graph_attrs given = {.set = LC_GRAPH_ATTR_CAUSAL, .causal = causal != 0};
    lc_status st = lc_op_check_attrs(d, op, 0, &given, &call.attrs);
    if (st == LC_OK) st = lc_op_check_dtypes(d, &in, &call.dtype);
    if (st == LC_OK) st = lc_op_infer(d, &in, &call.attrs, &call.out_ndim, call.out_shape);
    if (st != LC_OK) return st;
    const lc_op_work ow = d->work(&in, &call.attrs, call.out_ndim, call.out_shape);
    const lc_work work = {ow.flops, ow.bytes, NULL, d->crossover};
    lc_route route;
    if ((st = lc_route_op(op, LC_OP_ATTENTION_PROJECTION, call.dtype, device, operands, 6, work, &route)) != LC_OK)
        return st;
    const lc_backend *be = route.backend;
    for (int i = 0; i < 6; i++)
        if (operands[i] && (lc_tensor_device(operands[i]) != be->device || !lc_tensor_is_contiguous(operands[i])))
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: operand %d: expected a contiguous buffer on %s", op, i, be->name);
    call.op = LC_OP_ATTENTION_PROJECTION;
    if (!lc_backend_fits(be, &call))
        return lc_error(LC_ERR_UNSUPPORTED, "%s: %s has no fused kernel for seq=%lld, head_dim=%lld, pn=%lld", op,
                        be->name, (long long)call.shape[0][0], (long long)call.shape[0][1], (long long)call.out_shape[1]);
    for (int i = 0; i < in.n; i++) call.in[i] = lc_tensor_data(operands[i]);
    call.out = lc_tensor_data(out);
    const char *path = "unknown";
    lc_output oo = {.data = call.out, .out = out, .backend = be};
    st = lc_output_commit(op, &oo, be->kernels[LC_OP_ATTENTION_PROJECTION](&call, &path));
    if (st == LC_OK) lc_route_done(op, &route, path);
    return st;
}
