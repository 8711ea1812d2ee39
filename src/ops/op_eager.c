/* op_eager.c — lc_op_run (dispatch.h): one eager op from its op-table entry. The table gives the
 * argument names, ranks, dtypes, attributes, the shape rule, which inputs `out` may alias, the work
 * estimate and the CUDA shape limit; this file applies them in one order (inputs, attributes, dtypes,
 * ranks + shape rule, out, overlap), routes by the device policy, stages the operands on the chosen
 * device and calls the backend's kernels[op] with one lc_call (lc_op_run_ext: with the op's own options in
 * lc_call.ext, e.g. embedding's offset). A linear-family op's w that is the transposed view of a contiguous
 * [n, k] array reaches a backend with takes_w_t as that array (lc_call.in_t), elsewhere it is gathered.
 * Nothing is written before every check has passed. Tests: tests/c/test_ops.c, tests/c/test_op_table.c,
 * tests/python/test_bad_inputs.py, tests/python/test_linear_wt.py. */
#include <string.h>

#include "ops/dispatch.h"

/* t (2-D [r, c], strides (1, r)) is the transpose of a contiguous [c, r] array on the route's device, and the
 * route's backend takes such operands (lc_backend.takes_w_t). */
static int lc_is_transposed_storage(const lc_tensor_t *t, const lc_route *route) {
    if (!route->backend->takes_w_t || lc_tensor_device(t) != route->backend->device || lc_tensor_ndim(t) != 2) return 0;
    const int64_t r = lc_tensor_dim(t, 0), c = lc_tensor_dim(t, 1);
    return r > 1 && c > 1 && lc_tensor_stride(t, 0) == 1 && lc_tensor_stride(t, 1) == r;
}

lc_status lc_op_run(lc_op op, const lc_tensor_t *const *inputs, int ninputs, lc_tensor_t *out,
                    const lc_graph_attrs *given, lc_activation act, int apply_relu, lc_device device) {
    return lc_op_run_ext(op, inputs, ninputs, out, given, act, apply_relu, NULL, device);
}

lc_status lc_op_run_ext(lc_op op, const lc_tensor_t *const *inputs, int ninputs, lc_tensor_t *out,
                        const lc_graph_attrs *given, lc_activation act, int apply_relu, const void *ext,
                        lc_device device) {
    const lc_op_def *d = lc_op_get(op);
    if (!d) return lc_error(LC_ERR_INTERNAL, "op %d: no entry in the op table", (int)op);
    const char *name = d->name;
    lc_status st;
    if (ninputs < d->min_inputs || ninputs > d->max_inputs) return lc_op_check_arity(d, name, ninputs);
    lc_op_operands in;
    memset(&in, 0, sizeof in);
    in.prefix = name;
    in.n = ninputs;
    for (int i = 0; i < ninputs; i++) {
        if (!inputs[i] && i >= d->min_inputs) continue; /* an optional input left out */
        if ((st = lc_check_tensor(name, d->input_names[i], inputs[i])) != LC_OK) return st;
        in.ndim[i] = lc_tensor_ndim(inputs[i]);
        in.shape[i] = lc_tensor_shape(inputs[i]);
        in.dtype[i] = lc_tensor_dtype(inputs[i]);
    }
    lc_graph_attrs attrs;
    lc_dtype dtype;
    if ((st = lc_op_check_attrs(d, name, 0, given, &attrs)) != LC_OK || (st = lc_op_check_dtypes(d, &in, &dtype)) != LC_OK)
        return st;
    lc_call call;
    memset(&call, 0, sizeof call);
    if (d->flags & LC_OPF_OUT_FREE) {
        /* out's own shape (only its element count matters to the op) */
        if ((st = lc_check_tensor(name, "out", out)) != LC_OK || (st = lc_op_check_ranks(d, &in)) != LC_OK) return st;
        call.out_ndim = lc_tensor_ndim(out);
        memcpy(call.out_shape, lc_tensor_shape(out), (size_t)call.out_ndim * sizeof(int64_t));
    } else if ((st = lc_op_infer(d, &in, &attrs, &call.out_ndim, call.out_shape)) != LC_OK) {
        return st;
    }
    if ((st = lc_check_out(name, out, (d->flags & LC_OPF_OUT_I64) ? LC_DTYPE_I64 : dtype, call.out_ndim,
                           call.out_shape)) != LC_OK)
        return st;
    for (int i = 0; i < ninputs; i++)
        if ((st = lc_check_no_overlap(name, out, d->input_names[i], inputs[i], (d->inplace_inputs >> i) & 1u)) != LC_OK)
            return st;
    const lc_op_work w = d->work(&in, &attrs, call.out_ndim, call.out_shape);
    const lc_work work = {w.flops, w.bytes, d->gpu_limit ? d->gpu_limit(&in, &attrs) : NULL, d->crossover};
    const lc_tensor_t *operands[LC_OP_MAX_INPUTS + 1];
    for (int i = 0; i < ninputs; i++) operands[i] = inputs[i];
    operands[ninputs] = out;
    lc_route route;
    if ((st = lc_route_op(name, op, dtype, device, operands, ninputs + 1, work, &route)) != LC_OK) return st;
    lc_operand staged[LC_OP_MAX_INPUTS];
    memset(staged, 0, sizeof staged);
    lc_output oo = {0};
    for (int i = 0; st == LC_OK && i < ninputs; i++) {
        if (!inputs[i]) continue;
        if (i == 1 && (d->flags & LC_OPF_W_T) && lc_is_transposed_storage(inputs[i], &route)) {
            /* w [k, n] as the transpose of a contiguous [n, k] array on the route's device: passed as that array */
            staged[i].data = lc_tensor_data(inputs[i]);
            call.in_t |= 1u << i;
            continue;
        }
        st = lc_operand_acquire(name, d->input_names[i], inputs[i], &route, &staged[i]);
    }
    if (st == LC_OK) st = lc_output_acquire(name, out, &route, &oo);
    if (st == LC_OK) {
        call.op = op;
        call.dtype = dtype;
        call.nin = ninputs;
        for (int i = 0; i < ninputs; i++) {
            call.in[i] = inputs[i] ? staged[i].data : NULL;
            call.ndim[i] = in.ndim[i];
            call.shape[i] = in.shape[i];
            call.in_dtype[i] = in.dtype[i];
        }
        call.out = oo.data;
        call.attrs = attrs;
        call.act = act;
        call.apply_relu = apply_relu;
        call.ext = ext;
        const char *path = "unknown";
        st = lc_output_commit(name, &oo, route.backend->kernels[d->runs_as](&call, &path));
        if (st == LC_OK) lc_route_done(name, &route, path);
    }
    for (int i = 0; i < ninputs; i++) lc_operand_release(&staged[i]);
    return st;
}
