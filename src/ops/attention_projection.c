/* attention_projection.c — the fused attention -> projection op (internal, ops/attention_projection.h):
 * routes (operands on one device), checks the backend has the fused kernel for the sizes, calls it;
 * capturable and traced like any op. The CPU kernel projects each query block as it is produced
 * (attention_cpu.c); the CUDA kernel one query row per warp (attention_projection_cuda.cu).
 * Tests: tests/python/test_graph_plan.py, tests/c/test_plan.c. */
#include <math.h>

#include "ops/attention_projection.h"
#include "ops/dispatch.h"

int lc_attention_projection_fits(const lc_backend *be, int64_t seq, int64_t head_dim, int64_t pn) {
    if (!be || !be->attention_projection) return 0;
    if (!be->attention_projection_fits) return 1;
    lc_attention_projection_args a = {{.seq = seq, .head_dim = head_dim}, NULL, NULL, pn, NULL};
    return be->attention_projection_fits(&a);
}

lc_status lc_attention_projection_fused(const lc_tensor_t *q, const lc_tensor_t *k, const lc_tensor_t *v,
                                        const lc_tensor_t *w, const lc_tensor_t *bias, lc_tensor_t *out, int causal,
                                        lc_device device) {
    static const char *op = "attention_projection";
    const lc_tensor_t *operands[6] = {q, k, v, w, bias, out};
    const int64_t seq = lc_tensor_dim(q, 0), d = lc_tensor_dim(q, 1), pn = lc_tensor_dim(w, 1);
    const lc_work work = {4.0 * (double)seq * (double)seq * (double)d + 2.0 * (double)seq * (double)d * (double)pn,
                          (double)(3 * lc_tensor_nbytes(q) + lc_tensor_nbytes(w) + lc_tensor_nbytes(out)), NULL,
                          LC_CROSSOVER_NONE};
    lc_route route;
    lc_status st = lc_route_op(op, LC_OP_ATTENTION_PROJECTION, LC_DTYPE_F32, device, operands, 6, work, &route);
    if (st != LC_OK) return st;
    const lc_backend *be = route.backend;
    for (int i = 0; i < 6; i++)
        if (operands[i] && (lc_tensor_device(operands[i]) != be->device || !lc_tensor_is_contiguous(operands[i])))
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: operand %d: expected a contiguous buffer on %s", op, i, be->name);
    if (!lc_attention_projection_fits(be, seq, d, pn))
        return lc_error(LC_ERR_UNSUPPORTED, "%s: %s has no fused kernel for seq=%lld, head_dim=%lld, pn=%lld", op,
                        be->name, (long long)seq, (long long)d, (long long)pn);
    lc_attention_projection_args args = {{.seq = seq, .head_dim = d, .causal = causal != 0,
                                          .scale = (float)(1.0 / sqrt((double)d)), .q = lc_tensor_data(q),
                                          .k = lc_tensor_data(k), .v = lc_tensor_data(v), .out = NULL},
                                         lc_tensor_data(w), bias ? lc_tensor_data(bias) : NULL, pn, lc_tensor_data(out)};
    const char *path = "unknown";
    lc_output oo = {.data = args.out, .out = out, .backend = be};
    st = lc_output_commit(op, &oo, be->attention_projection(&args, &path));
    if (st == LC_OK) lc_route_done(op, &route, path);
    return st;
}
