/* dispatch.c — the ops layer's shared checks, device routing and operand preparation (dispatch.h).
 * Tests: tests/c/test_ops.c, tests/python/test_bad_inputs.py. */
#include <stdio.h>
#include <string.h>

#include "core/counters.h"
#include "core/dispatch_record.h"
#include "core/trace_record.h"
#include "ops/capture.h"
#include "ops/dispatch.h"

void lc_format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

static int lc_backend_takes(const lc_backend *be, lc_op kind, lc_dtype dtype) {
    return be && be->available() && lc_op_supported(kind, be->device, dtype);
}

/* Rough throughput figures of the "auto" cost model (one-shot calls: host operands). The GPU side
 * pays a fixed launch/sync/staging cost and the PCIe transfer of every byte; the CPU side pays its
 * arithmetic and memory traffic. Deliberately simple; the tuning issue replaces it with measurements. */
#define LC_AUTO_CPU_GFLOPS_PER_THREAD 50.0
#define LC_AUTO_CPU_GBPS_PER_THREAD 10.0
#define LC_AUTO_CPU_GBPS_MAX 60.0
#define LC_AUTO_GPU_FIXED_S 25e-6
#define LC_AUTO_GPU_LINK_GBPS 20.0
#define LC_AUTO_GPU_TFLOPS 20.0

/* The measured crossover of an op that has one, and the amount compared with it (conv2d: MACs, matmul:
 * flops); negative when the op has none or it is switched off (a negative setting). */
static double lc_crossover_threshold(lc_work work, double *amount) {
    switch (work.crossover) {
    case LC_CROSSOVER_CONV2D_MACS: *amount = work.flops / 2.0; return lc_conv2d_cpu_crossover_macs();
    case LC_CROSSOVER_MATMUL_FLOPS: *amount = work.flops; return lc_matmul_cpu_crossover_flops();
    default: *amount = 0.0; return -1.0;
    }
}

static int lc_auto_prefers_gpu(lc_work work) {
    double amount = 0.0;
    const double threshold = lc_crossover_threshold(work, &amount);
    if (threshold >= 0.0) return amount >= threshold; /* below: CPU; at or above: GPU */
    const double threads = (double)lc_num_threads();
    double cpu_bw = threads * LC_AUTO_CPU_GBPS_PER_THREAD;
    if (cpu_bw > LC_AUTO_CPU_GBPS_MAX) cpu_bw = LC_AUTO_CPU_GBPS_MAX;
    const double cpu_s = work.flops / (threads * LC_AUTO_CPU_GFLOPS_PER_THREAD * 1e9) + work.bytes / (cpu_bw * 1e9);
    const double gpu_s = LC_AUTO_GPU_FIXED_S + work.bytes / (LC_AUTO_GPU_LINK_GBPS * 1e9) + work.flops / (LC_AUTO_GPU_TFLOPS * 1e12);
    return gpu_s < cpu_s;
}

/* Host<->device bytes staged by the current op on this thread, and whether it waited for the device:
 * reset by lc_route_op, read by lc_route_done for the trace. */
static _Thread_local uint64_t lc_op_bytes_moved;
static _Thread_local int lc_op_synchronized;

static lc_status lc_route_pick(const char *op, lc_op kind, lc_dtype dtype, lc_device requested,
                               const lc_tensor_t *const *tensors, int ntensors, lc_work work, lc_route *out) {
    lc_op_bytes_moved = 0;
    lc_op_synchronized = 0;
    out->start_ns = lc_trace_enabled() ? lc_trace_now_ns() : 0;
    const lc_backend *cpu = lc_backend_for(LC_DEVICE_CPU);
    const lc_backend *cuda = lc_backend_for(LC_DEVICE_CUDA);
    const int cuda_takes = lc_backend_takes(cuda, kind, dtype) && !work.gpu_limit;
    int on_gpu = 0;
    for (int i = 0; i < ntensors; i++)
        if (tensors[i] && lc_tensor_device(tensors[i]) == LC_DEVICE_CUDA) on_gpu = 1;
    out->requested = requested;
    if ((int)requested < 0 || requested >= LC_DEVICE_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: device: expected cpu, cuda, metal or auto, got code %d", op,
                        (int)requested);
    if (on_gpu) {
        /* Operands on the GPU: the op runs there. */
        if (requested == LC_DEVICE_CPU)
            return lc_error(LC_ERR_INVALID_ARGUMENT,
                            "%s: device: 'cpu' was requested but an operand lives on cuda (pass device='cuda' or "
                            "'auto', or copy it to the host first)", op);
        if (!cuda_takes)
            return lc_error(LC_ERR_UNSUPPORTED, "%s: the cuda backend does not implement this op for %s%s%s", op,
                            lc_dtype_name(dtype), work.gpu_limit ? " at this shape: " : "",
                            work.gpu_limit ? work.gpu_limit : "");
        if (requested == LC_DEVICE_METAL && lc_strict_device())
            return lc_error(LC_ERR_DEVICE_UNAVAILABLE,
                            "%s: device: 'metal' was requested in strict device mode, but it is not available", op);
        out->backend = cuda;
        out->reason = requested == LC_DEVICE_CUDA ? LC_REASON_DIRECT
                      : requested == LC_DEVICE_AUTO ? LC_REASON_AUTO_SELECTED
                                                    : LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE;
        return LC_OK;
    }
    switch (requested) {
    case LC_DEVICE_CPU:
        out->backend = cpu;
        out->reason = LC_REASON_DIRECT;
        break;
    case LC_DEVICE_CUDA:
    case LC_DEVICE_METAL: {
        /* Metal is never built on Linux: the request goes to the best available device. */
        if (requested == LC_DEVICE_CUDA && cuda_takes) {
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
        out->backend = cuda_takes ? cuda : cpu;
        out->reason = unavailable ? LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE : LC_REASON_FALLBACK_PREFERRED_UNSUPPORTED;
        break;
    }
    default: /* LC_DEVICE_AUTO */
        out->backend = cuda_takes && lc_auto_prefers_gpu(work) ? cuda : cpu;
        out->reason = LC_REASON_AUTO_SELECTED;
        break;
    }
    if (!lc_op_supported(kind, out->backend->device, dtype))
        return lc_error(LC_ERR_UNSUPPORTED, "%s: no backend implements this op for %s", op, lc_dtype_name(dtype));
    return LC_OK;
}

lc_status lc_route_op(const char *op, lc_op kind, lc_dtype dtype, lc_device requested, const lc_tensor_t *const *tensors,
                      int ntensors, lc_work work, lc_route *out) {
    lc_status st = lc_route_pick(op, kind, dtype, requested, tensors, ntensors, work, out);
    if (st == LC_OK) st = lc_capture_check_route(op, out->backend, tensors, ntensors);
    return st;
}

void lc_route_done(const char *op, const lc_route *route, const char *path) {
    lc_counter_add(LC_COUNTER_DISPATCHES, 1);
    lc_dispatch_record(op, route->requested, route->backend->device, route->reason, path);
    if (route->start_ns && lc_trace_enabled()) {
        lc_trace_span(op, path, route->requested, route->backend->device, route->reason,
                      lc_op_synchronized || route->backend->device == LC_DEVICE_CPU, lc_op_bytes_moved, route->start_ns);
    }
}

lc_status lc_check_tensor(const char *op, const char *name, const lc_tensor_t *t) {
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a tensor, got NULL", op, name);
    if (lc_tensor_validate(t) != LC_OK)
        return lc_error_wrap(LC_ERR_INVALID_ARGUMENT, "%s: %s: invalid tensor metadata", op, name);
    return LC_OK;
}

lc_status lc_check_dtype_is(const char *op, const char *name, const lc_tensor_t *t, lc_dtype dtype) {
    if (lc_tensor_dtype(t) != dtype)
        return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype %s, got %s", op, name, lc_dtype_name(dtype),
                        lc_dtype_name(lc_tensor_dtype(t)));
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

lc_status lc_check_out_arg(const char *op, const char *name, const lc_tensor_t *out, lc_dtype dtype, int ndim,
                           const int64_t *expected, int contiguous) {
    lc_status st;
    if ((st = lc_check_tensor(op, name, out)) != LC_OK || (st = lc_check_dtype_is(op, name, out, dtype)) != LC_OK ||
        (st = lc_check_shape(op, name, out, ndim, expected)) != LC_OK)
        return st;
    if (!lc_tensor_is_writable(out))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a writable tensor, got a read-only one", op, name);
    if (contiguous && !lc_tensor_is_contiguous(out))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a contiguous tensor, got a strided view", op, name);
    return LC_OK;
}

lc_status lc_check_out_view(const char *op, const lc_tensor_t *out, lc_dtype dtype, int ndim, const int64_t *expected) {
    return lc_check_out_arg(op, "out", out, dtype, ndim, expected, 0);
}

lc_status lc_check_out(const char *op, const lc_tensor_t *out, lc_dtype dtype, int ndim, const int64_t *expected) {
    return lc_check_out_arg(op, "out", out, dtype, ndim, expected, 1);
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
    if (!in || lc_tensor_device(in) != lc_tensor_device(out)) return LC_OK;
    const char *olo, *ohi, *ilo, *ihi;
    lc_tensor_extent(out, &olo, &ohi);
    lc_tensor_extent(in, &ilo, &ihi);
    if (olo >= ihi || ilo >= ohi) return LC_OK;
    if (allow_exact && olo == ilo && ohi == ihi && lc_tensor_is_contiguous(in)) return LC_OK;
    return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected memory separate from %s, got an overlapping buffer%s",
                    op, in_name, allow_exact ? " (only an exact in-place alias is allowed)" : "");
}

void lc_gather_args_of(const lc_tensor_t *t, lc_gather_args *g) {
    memset(g, 0, sizeof *g);
    g->elem = lc_dtype_size(lc_tensor_dtype(t));
    g->ndim = lc_tensor_ndim(t);
    g->n = lc_tensor_numel(t);
    for (int i = 0; i < g->ndim; i++) {
        g->shape[i] = lc_tensor_dim(t, i);
        g->st[i] = lc_tensor_stride(t, i);
    }
    g->src = lc_tensor_data(t);
}

lc_status lc_operand_acquire(const char *op, const char *name, const lc_tensor_t *t, const lc_route *route,
                             lc_operand *out) {
    out->scratch = NULL;
    out->scratch_owner = NULL;
    const lc_backend *be = route->backend;
    const lc_device where = lc_tensor_device(t);
    if (where == be->device && lc_tensor_is_contiguous(t)) {
        out->data = lc_tensor_data(t);
        return LC_OK;
    }
    const size_t bytes = lc_tensor_nbytes(t);
    if (where == be->device && be->gather) {
        /* a strided view on the route's own device: gathered there by the backend's kernel */
        lc_gather_args g;
        lc_gather_args_of(t, &g);
        void *dst = NULL;
        lc_status st = be->alloc(bytes ? bytes : 1, &dst);
        if (st != LC_OK) return lc_error_wrap(st, "%s: %s: gather of a strided view", op, name);
        g.dst = dst;
        if ((st = be->gather(&g)) != LC_OK) {
            be->free(dst);
            return lc_error_wrap(st, "%s: %s: gather of a strided view", op, name);
        }
        out->data = out->scratch = dst;
        out->scratch_owner = be;
        return LC_OK;
    }
    /* Otherwise gather on the host (a host view, or a device view for a CPU op), then upload when the op
     * runs on a device. */
    const void *host = lc_tensor_data(t);
    void *gathered = NULL;
    if (!lc_tensor_is_contiguous(t) || where != LC_DEVICE_CPU) {
        gathered = lc_aligned_alloc(bytes);
        if (!gathered)
            return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: %s: could not allocate %zu bytes to gather a strided view", op,
                            name, bytes);
        lc_status st = lc_tensor_to_host(t, gathered, bytes);
        if (st != LC_OK) {
            lc_aligned_free(gathered);
            return st;
        }
        host = gathered;
    }
    if (be->device == LC_DEVICE_CPU) {
        out->data = out->scratch = gathered;
        out->scratch_owner = lc_backend_for(LC_DEVICE_CPU);
        return LC_OK;
    }
    void *dev = NULL;
    lc_status st = be->alloc(bytes, &dev);
    if (st == LC_OK) st = be->copy_h2d(dev, host, bytes);
    lc_aligned_free(gathered);
    if (st != LC_OK) {
        if (dev) be->free(dev);
        return lc_error_wrap(st, "%s: %s: upload of %zu bytes to %s failed", op, name, bytes, be->name);
    }
    out->data = out->scratch = dev;
    out->scratch_owner = be;
    lc_op_bytes_moved += bytes;
    return LC_OK;
}

void lc_operand_release(lc_operand *operand) {
    if (operand->scratch) operand->scratch_owner->free(operand->scratch);
    operand->scratch = NULL;
    operand->data = NULL;
}

lc_status lc_output_acquire(const char *op, lc_tensor_t *out, const lc_route *route, lc_output *o) {
    o->out = out;
    o->backend = route->backend;
    o->scratch = NULL;
    if (lc_tensor_device(out) == route->backend->device) {
        o->data = lc_tensor_data(out);
        return LC_OK;
    }
    if (lc_tensor_device(out) != LC_DEVICE_CPU)
        return lc_error(LC_ERR_UNSUPPORTED, "%s: out: a %s output of a %s op is not supported", op,
                        lc_device_name(lc_tensor_device(out)), route->backend->name);
    const size_t bytes = lc_tensor_nbytes(out);
    lc_status st = route->backend->alloc(bytes, &o->scratch);
    if (st != LC_OK) return lc_error_wrap(st, "%s: out", op);
    o->data = o->scratch;
    return LC_OK;
}

lc_status lc_output_commit(const char *op, lc_output *o, lc_status kernel_status) {
    lc_status st = kernel_status;
    if (o->scratch) {
        if (st == LC_OK) {
            st = o->backend->copy_d2h(lc_tensor_data(o->out), o->scratch, lc_tensor_nbytes(o->out));
            if (st != LC_OK) st = lc_error_wrap(st, "%s", op);
            lc_op_bytes_moved += lc_tensor_nbytes(o->out);
            lc_op_synchronized = 1; /* the download waited for the device */
        }
        o->backend->free(o->scratch);
        o->scratch = NULL;
    } else if (st == LC_OK && o->backend->device != LC_DEVICE_CPU && lc_effective_sync_policy() == LC_SYNC_ALWAYS &&
               !lc_capture_active()) {
        /* Sync policy "always": a device-resident result is waited for here (errors surface at this op). */
        st = o->backend->sync();
        lc_op_synchronized = 1;
    }
    return st;
}
