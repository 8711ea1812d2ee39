/* dispatch.c — the ops layer's shared checks, device routing and operand preparation (dispatch.h).
 * Tests: tests/c/test_ops.c, tests/python/test_bad_inputs.py. */
#include <stdio.h>
#include <string.h>

#include "core/dispatch_record.h"
#include "ops/dispatch.h"

void lc_format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

static int lc_backend_takes(const lc_backend *be, lc_op kind, lc_dtype dtype) {
    return be && be->available() && be->supports(kind, dtype);
}

lc_status lc_route_op(const char *op, lc_op kind, lc_dtype dtype, lc_device requested, lc_route *out) {
    const lc_backend *cpu = lc_backend_for(LC_DEVICE_CPU);
    const lc_backend *cuda = lc_backend_for(LC_DEVICE_CUDA);
    out->requested = requested;
    switch (requested) {
    case LC_DEVICE_CPU:
        out->backend = cpu;
        out->reason = LC_REASON_DIRECT;
        break;
    case LC_DEVICE_CUDA:
    case LC_DEVICE_METAL: {
        /* Metal is never built on Linux: the request goes to the best available device. */
        if (requested == LC_DEVICE_CUDA && lc_backend_takes(cuda, kind, dtype)) {
            out->backend = cuda;
            out->reason = LC_REASON_DIRECT;
            break;
        }
        int unavailable = requested == LC_DEVICE_METAL || !lc_device_available(LC_DEVICE_CUDA);
        if (lc_strict_device())
            return lc_error(unavailable ? LC_ERR_DEVICE_UNAVAILABLE : LC_ERR_UNSUPPORTED,
                            "%s: device: '%s' was requested in strict device mode, but it is %s", op,
                            lc_device_name(requested), unavailable ? "not available on this machine/build"
                                                                   : "lacking this op/dtype");
        out->backend = lc_backend_takes(cuda, kind, dtype) ? cuda : cpu;
        out->reason = unavailable ? LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE : LC_REASON_FALLBACK_PREFERRED_UNSUPPORTED;
        break;
    }
    case LC_DEVICE_AUTO:
        /* Only the CPU backend exists in this build; the CUDA backend brings the crossover policy. */
        out->backend = cpu;
        out->reason = LC_REASON_AUTO_SELECTED;
        break;
    default:
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: device: expected cpu, cuda, metal or auto, got code %d", op,
                        (int)requested);
    }
    if (!out->backend->supports(kind, dtype))
        return lc_error(LC_ERR_UNSUPPORTED, "%s: no backend implements this op for %s", op, lc_dtype_name(dtype));
    /* Operands live on the host in this build; staging to a device backend comes with that backend. */
    LC_CHECK_INVARIANT(out->backend->device == LC_DEVICE_CPU);
    return LC_OK;
}

void lc_route_done(const char *op, const lc_route *route, const char *path) {
    lc_dispatch_record(op, route->requested, route->backend->device, route->reason, path);
}

lc_status lc_check_tensor(const char *op, const char *name, const lc_tensor_t *t) {
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a tensor, got NULL", op, name);
    if (lc_tensor_validate(t) != LC_OK)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: invalid tensor metadata (%s)", op, name, lc_last_error());
    if (lc_tensor_device(t) != LC_DEVICE_CPU)
        return lc_error(LC_ERR_UNSUPPORTED, "%s: %s: expected a host tensor, got one on %s", op, name,
                        lc_device_name(lc_tensor_device(t)));
    return LC_OK;
}

lc_status lc_check_dtype_is(const char *op, const char *name, const lc_tensor_t *t, lc_dtype dtype) {
    if (lc_tensor_dtype(t) != dtype)
        return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype %s, got %s", op, name, lc_dtype_name(dtype),
                        lc_dtype_name(lc_tensor_dtype(t)));
    return LC_OK;
}

lc_status lc_check_rank(const char *op, const char *name, const lc_tensor_t *t, int ndim) {
    if (lc_tensor_ndim(t) != ndim)
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected %d dimensions, got %d", op, name, ndim, lc_tensor_ndim(t));
    return LC_OK;
}

lc_status lc_check_shape(const char *op, const char *name, const lc_tensor_t *t, int ndim, const int64_t *expected) {
    int same = lc_tensor_ndim(t) == ndim;
    for (int i = 0; same && i < ndim; i++) same = lc_tensor_dim(t, i) == expected[i];
    if (!same) {
        char want[128], got[128];
        lc_format_shape(want, sizeof want, ndim, expected);
        lc_format_shape(got, sizeof got, lc_tensor_ndim(t), lc_tensor_shape(t));
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected shape %s, got %s", op, name, want, got);
    }
    return LC_OK;
}

lc_status lc_check_out(const char *op, const lc_tensor_t *out, lc_dtype dtype, int ndim, const int64_t *expected) {
    lc_status st;
    if ((st = lc_check_tensor(op, "out", out)) != LC_OK || (st = lc_check_dtype_is(op, "out", out, dtype)) != LC_OK ||
        (st = lc_check_shape(op, "out", out, ndim, expected)) != LC_OK)
        return st;
    if (!lc_tensor_is_writable(out))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a writable tensor, got a read-only one", op);
    if (!lc_tensor_is_contiguous(out))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a contiguous tensor, got a strided view", op);
    return LC_OK;
}

/* Byte range [lo, hi) a host tensor can address. */
static void lc_tensor_extent(const lc_tensor_t *t, const char **lo, const char **hi) {
    int64_t last = 0;
    for (int i = 0; i < lc_tensor_ndim(t); i++) last += (lc_tensor_dim(t, i) - 1) * lc_tensor_stride(t, i);
    *lo = (const char *)lc_tensor_data(t);
    *hi = *lo + (size_t)(last + 1) * lc_dtype_size(lc_tensor_dtype(t));
}

lc_status lc_check_no_overlap(const char *op, const lc_tensor_t *out, const char *in_name, const lc_tensor_t *in,
                              int allow_exact) {
    if (!in) return LC_OK;
    const char *olo, *ohi, *ilo, *ihi;
    lc_tensor_extent(out, &olo, &ohi);
    lc_tensor_extent(in, &ilo, &ihi);
    if (olo >= ihi || ilo >= ohi) return LC_OK;
    if (allow_exact && olo == ilo && ohi == ihi && lc_tensor_is_contiguous(in)) return LC_OK;
    return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected memory separate from %s, got an overlapping buffer%s",
                    op, in_name, allow_exact ? " (only an exact in-place alias is allowed)" : "");
}

lc_status lc_operand_acquire(const char *op, const char *name, const lc_tensor_t *t, lc_operand *out) {
    out->scratch = NULL;
    if (lc_tensor_is_contiguous(t)) {
        out->data = lc_tensor_data(t);
        return LC_OK;
    }
    size_t bytes = lc_tensor_nbytes(t);
    out->scratch = lc_aligned_alloc(bytes);
    if (!out->scratch)
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: %s: could not allocate %zu bytes to gather a strided view", op, name,
                        bytes);
    lc_status st = lc_tensor_to_host(t, out->scratch, bytes);
    if (st != LC_OK) {
        lc_aligned_free(out->scratch);
        out->scratch = NULL;
        return st;
    }
    out->data = out->scratch;
    return LC_OK;
}

void lc_operand_release(lc_operand *operand) {
    if (operand->scratch) lc_aligned_free(operand->scratch);
    operand->scratch = NULL;
    operand->data = NULL;
}
