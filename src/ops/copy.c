/* copy.c — lc_copy (ops.h): a tensor (any strides, any dtype) into a tensor of the same shape and dtype on the
 * device the op runs on: the backends' gather kernel reads a strided view where it lives (no trip through the
 * host for a device view); a view on another device is staged first. out is contiguous, or a strided view
 * (a slice of a larger tensor: concat writes each input into its narrow view) living on the device the copy
 * runs on. Tests: tests/python/test_layout.py. */
#include <string.h>

#include "ops/dispatch.h"

static lc_status lc_k_copy(const lc_backend *be, const lc_gather_args *g) { return be->gather(g); }

lc_status lc_copy(const lc_tensor_t *x, lc_tensor_t *out, lc_device device) {
    const char *fn = "copy";
    lc_status st;
    if ((st = lc_check_tensor(fn, "x", x)) != LC_OK ||
        (st = lc_check_out_view(fn, out, lc_tensor_dtype(x), lc_tensor_ndim(x), lc_tensor_shape(x))) != LC_OK)
        return st;
    const int strided_out = !lc_tensor_is_contiguous(out); /* a view on its own device (checked below) */
    if ((st = lc_check_no_overlap(fn, out, "x", x, 0)) != LC_OK) return st;
    const double bytes = 2.0 * (double)lc_tensor_nbytes(x);
    const lc_work work = {0.0, bytes, NULL, LC_CROSSOVER_NONE};
    const lc_tensor_t *operands[2] = {x, out};
    lc_route route;
    if ((st = lc_route_op(fn, LC_OP_COPY, lc_tensor_dtype(x), device, operands, 2, work, &route)) != LC_OK) return st;
    if (strided_out && lc_tensor_device(out) != route.backend->device)
        return lc_error(LC_ERR_UNSUPPORTED, "copy: out: a strided view is written only where it lives (%s), and this "
                        "copy runs on %s", lc_device_name(lc_tensor_device(out)), route.backend->name);
    lc_output oo = {0};
    lc_operand staged;
    memset(&staged, 0, sizeof staged);
    lc_gather_args g;
    const int here = lc_tensor_device(x) == route.backend->device;
    if (!here) st = lc_operand_acquire(fn, "x", x, &route, &staged); /* contiguous on the route's device */
    if (st == LC_OK) st = lc_output_acquire(fn, out, &route, &oo);
    if (st == LC_OK) {
        lc_gather_args_of(x, &g);
        if (!here && !strided_out) { /* staged contiguous: a flat copy */
            g.ndim = 1;
            g.shape[0] = g.n;
            g.st[0] = 1;
            g.src = staged.data;
        } else if (!here) { /* staged contiguous into a strided view: row-major source strides */
            int64_t step = 1;
            for (int k = g.ndim - 1; k >= 0; k--) g.st[k] = step, step *= g.shape[k];
            g.src = staged.data;
        }
        if (strided_out) {
            g.dst_strided = 1;
            for (int k = 0; k < g.ndim; k++) g.dst_st[k] = lc_tensor_stride(out, k);
        }
        g.dst = oo.data;
        st = lc_output_commit(fn, &oo, lc_k_copy(route.backend, &g));
        if (st == LC_OK) lc_route_done(fn, &route, route.backend->device == LC_DEVICE_CPU ? "cpu_gather" : "cuda_gather");
    }
    lc_operand_release(&staged);
    return st;
}
