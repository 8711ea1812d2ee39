/* resident.c — the machinery shared by resident sessions and planned graphs (resident.h): device
 * resolution, uploads into and downloads out of resident buffers, and the eager -> capture -> replay
 * runner. Tests: tests/c/test_sessions.c, tests/c/test_plan.c, tests/python/test_sessions.py. */
#include <stdio.h>

#include "ops/capture.h"
#include "ops/resident.h"

lc_status lc_resident_device(const char *owner, lc_device requested, const lc_backend **out, int *fell_back) {
    const lc_backend *cuda = lc_backend_for(LC_DEVICE_CUDA);
    const int cuda_ok = cuda && cuda->available();
    if (fell_back) *fell_back = 0;
    switch (requested) {
    case LC_DEVICE_CPU: *out = lc_backend_for(LC_DEVICE_CPU); return LC_OK;
    case LC_DEVICE_AUTO: *out = cuda_ok ? cuda : lc_backend_for(LC_DEVICE_CPU); return LC_OK;
    case LC_DEVICE_CUDA:
    case LC_DEVICE_METAL:
        if (requested == LC_DEVICE_CUDA && cuda_ok) {
            *out = cuda;
            return LC_OK;
        }
        if (lc_strict_device())
            return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: device: '%s' was requested in strict device mode, but it is not available",
                            owner, lc_device_name(requested));
        *out = cuda_ok ? cuda : lc_backend_for(LC_DEVICE_CPU); /* the fallback policy of the ops */
        if (fell_back) *fell_back = 1;
        return LC_OK;
    default:
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: device: expected cpu, cuda, metal or auto, got code %d", owner,
                        (int)requested);
    }
}

lc_status lc_resident_check_upload(const char *owner, const char *name, const lc_tensor_t *dst, const lc_tensor_t *src) {
    lc_status st;
    if ((st = lc_check_tensor(owner, name, src)) != LC_OK || (st = lc_check_dtype_is(owner, name, src, lc_tensor_dtype(dst))) != LC_OK)
        return st;
    if (lc_tensor_numel(src) != lc_tensor_numel(dst)) {
        char want[96];
        lc_format_shape(want, sizeof want, lc_tensor_ndim(dst), lc_tensor_shape(dst));
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected %lld elements (shape %s), got %lld", owner, name,
                        (long long)lc_tensor_numel(dst), want, (long long)lc_tensor_numel(src));
    }
    return LC_OK;
}

lc_status lc_resident_upload(const lc_backend *be, const char *owner, const char *name, lc_tensor_t *dst,
                             const lc_tensor_t *src) {
    lc_status st = lc_resident_check_upload(owner, name, dst, src);
    if (st != LC_OK) return st;
    const size_t bytes = lc_tensor_nbytes(dst);
    void *dp = lc_tensor_data(dst);
    const lc_device where = lc_tensor_device(src);
    if (lc_tensor_is_contiguous(src) && where == LC_DEVICE_CPU) {
        st = be->copy_h2d(dp, lc_tensor_data(src), bytes);
    } else if (lc_tensor_is_contiguous(src) && where == be->device) {
        st = be->copy_d2d(dp, lc_tensor_data(src), bytes);
    } else {
        /* Strided, or on the other device: gather through the host. */
        void *host = lc_aligned_alloc(bytes);
        if (!host) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: %s: could not allocate %zu bytes", owner, name, bytes);
        st = lc_tensor_to_host(src, host, bytes);
        if (st == LC_OK) st = be->copy_h2d(dp, host, bytes);
        lc_aligned_free(host);
    }
    if (st != LC_OK) return lc_error_wrap(st, "%s: %s: upload failed", owner, name);
    return LC_OK;
}

lc_status lc_resident_download(const lc_backend *be, const char *owner, const lc_tensor_t *src, lc_tensor_t *dst,
                               int *waited) {
    lc_status st;
    *waited = 0;
    if ((st = lc_check_tensor(owner, "out", dst)) != LC_OK || (st = lc_check_dtype_is(owner, "out", dst, lc_tensor_dtype(src))) != LC_OK)
        return st;
    if (!lc_tensor_is_writable(dst) || !lc_tensor_is_contiguous(dst))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a writable contiguous tensor, got a %s one", owner,
                        lc_tensor_is_writable(dst) ? "strided" : "read-only");
    if (lc_tensor_numel(dst) != lc_tensor_numel(src))
        return lc_error(LC_ERR_SHAPE, "%s: out: expected %lld elements, got %lld", owner,
                        (long long)lc_tensor_numel(src), (long long)lc_tensor_numel(dst));
    const size_t bytes = lc_tensor_nbytes(dst);
    const lc_device where = lc_tensor_device(dst);
    if (where == LC_DEVICE_CPU) {
        st = be->copy_d2h(lc_tensor_data(dst), lc_tensor_data(src), bytes);
        *waited = 1;
    } else if (where == be->device) {
        st = be->copy_d2d(lc_tensor_data(dst), lc_tensor_data(src), bytes);
        if (st == LC_OK && lc_effective_sync_policy() == LC_SYNC_ALWAYS) {
            st = be->sync();
            *waited = 1;
        }
    } else {
        st = lc_tensor_copy_from_host(dst, lc_tensor_data(src), bytes); /* a CPU buffer into a device tensor */
    }
    if (st != LC_OK) return lc_error_wrap(st, "%s: out: download failed", owner);
    return LC_OK;
}

static lc_status lc_replay_capture(lc_replay *r, const lc_backend *be, lc_replay_fn fn, void *ctx) {
    lc_status st = lc_capture_begin(be->device);
    if (st != LC_OK) return st;
    st = fn(ctx);
    char why[256] = "";
    if (st != LC_OK) snprintf(why, sizeof why, "%s", lc_last_error());
    lc_status end = lc_capture_end(st == LC_OK, &r->graph);
    if (st != LC_OK) return lc_error(st, "%s", why);
    return end;
}

lc_status lc_replay_run(lc_replay *r, const lc_backend *be, lc_replay_fn fn, void *ctx, int64_t loops,
                        int64_t *replayed) {
    *replayed = 0;
    if (lc_capture_active())
        return lc_error(LC_ERR_INVALID_ARGUMENT, "cannot run resident work while this thread captures a graph");
    const int can_graph = be->capture_begin != NULL;
    lc_status st = LC_OK;
    int64_t done = 0;
    /* The first run is eager (it warms the allocator and the autotuner, which never tunes inside a
     * capture), then the work is captured once; work that cannot be captured keeps running eagerly. */
    while (st == LC_OK && done < loops && (!can_graph || r->capture_failed || r->eager_runs == 0)) {
        st = fn(ctx);
        r->eager_runs++;
        done++;
    }
    if (st == LC_OK && done < loops && !r->graph && lc_replay_capture(r, be, fn, ctx) != LC_OK) {
        r->capture_failed = 1;
        for (; st == LC_OK && done < loops; done++) st = fn(ctx);
    }
    if (st == LC_OK && done < loops) {
        st = lc_device_graph_launch(r->graph, loops - done);
        if (st == LC_OK) *replayed = loops - done;
    }
    return st;
}

void lc_replay_free(lc_replay *r) {
    lc_device_graph_free(r->graph);
    r->graph = NULL;
}
