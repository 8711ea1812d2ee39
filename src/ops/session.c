/* session.c — the generic resident session (session.h): device resolution, resident buffers,
 * upload / run / sync / download, per-program CUDA graph capture (first run eager, then one capture,
 * then replays), the sync policy, and trace events ("<kind>.upload", "<kind>", "<kind>.download").
 * The kinds (matmul, elementwise, attention, conv->attention) are in session_kinds.c.
 * Tests: tests/c/test_sessions.c, tests/python/test_sessions.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/trace_record.h"
#include "ops/capture.h"
#include "ops/session_internal.h"

static lc_status lc_session_resolve_device(const char *name, lc_device requested, const lc_backend **out) {
    const lc_backend *cuda = lc_backend_for(LC_DEVICE_CUDA);
    const int cuda_ok = cuda && cuda->available();
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
                            name, lc_device_name(requested));
        *out = cuda_ok ? cuda : lc_backend_for(LC_DEVICE_CPU); /* the fallback policy of the ops */
        return LC_OK;
    default:
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: device: expected cpu, cuda, metal or auto, got code %d", name,
                        (int)requested);
    }
}

lc_status lc_session_create(const char *name, lc_device device, int ninputs, const char *const *input_names,
                            const int *input_ndims, const int64_t (*input_shapes)[4], int out_ndim,
                            const int64_t *out_shape, int nprograms, lc_session_program_fn program,
                            lc_session_t **out) {
    *out = NULL;
    const lc_backend *be = NULL;
    lc_status st = lc_session_resolve_device(name, device, &be);
    if (st != LC_OK) return st;
    lc_session_t *s = calloc(1, sizeof *s);
    if (!s) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", name);
    s->name = name;
    s->backend = be;
    s->device = be->device;
    s->ninputs = ninputs;
    s->nprograms = nprograms;
    s->program = program;
    for (int i = 0; i < ninputs && st == LC_OK; i++) {
        s->input_names[i] = input_names[i];
        st = lc_tensor_new(LC_DTYPE_F32, s->device, input_ndims[i], input_shapes[i], &s->in[i]);
        if (st != LC_OK) st = lc_error(st, "%s: %s: %s", name, input_names[i], lc_last_error());
    }
    if (st == LC_OK) {
        st = lc_tensor_new(LC_DTYPE_F32, s->device, out_ndim, out_shape, &s->out);
        if (st != LC_OK) st = lc_error(st, "%s: out: %s", name, lc_last_error());
    }
    if (st != LC_OK) {
        lc_session_free(s);
        return st;
    }
    *out = s;
    return LC_OK;
}

lc_status lc_session_add_temp(lc_session_t *s, int ndim, const int64_t *shape, lc_tensor_t **out) {
    LC_CHECK_INVARIANT(s->ntemps < LC_SESSION_MAX_TEMPS);
    lc_status st = lc_tensor_new(LC_DTYPE_F32, s->device, ndim, shape, &s->temp[s->ntemps]);
    if (st != LC_OK) return lc_error(st, "%s: intermediate: %s", s->name, lc_last_error());
    *out = s->temp[s->ntemps++];
    return LC_OK;
}

lc_status lc_session_add_view(lc_session_t *s, const lc_tensor_t *base, int ndim, const int64_t *shape, int64_t offset,
                              lc_tensor_t **out) {
    LC_CHECK_INVARIANT(s->ntemps < LC_SESSION_MAX_TEMPS);
    lc_status st = lc_tensor_view(base, ndim, shape, NULL, offset, LC_DEVICE_AUTO, &s->temp[s->ntemps]);
    if (st != LC_OK) return st;
    *out = s->temp[s->ntemps++];
    return LC_OK;
}

void lc_session_free(lc_session_t *s) {
    if (!s) return;
    for (int p = 0; p < LC_SESSION_MAX_PROGRAMS; p++) lc_device_graph_free(s->graph[p]);
    for (int i = 0; i < LC_SESSION_MAX_INPUTS; i++) lc_tensor_free(s->in[i]);
    for (int i = 0; i < LC_SESSION_MAX_TEMPS; i++) lc_tensor_free(s->temp[i]);
    lc_tensor_free(s->out);
    free(s);
}

lc_device lc_session_device(const lc_session_t *s) { return s ? s->device : LC_DEVICE_COUNT; }
int lc_session_num_inputs(const lc_session_t *s) { return s ? s->ninputs : 0; }
const lc_tensor_t *lc_session_input(const lc_session_t *s, int i) { return (s && i >= 0 && i < s->ninputs) ? s->in[i] : NULL; }
const lc_tensor_t *lc_session_output(const lc_session_t *s) { return s ? s->out : NULL; }
int lc_session_uses_graph(const lc_session_t *s, int p) {
    return (s && p >= 0 && p < s->nprograms) ? s->graph[p] != NULL : 0;
}
int64_t lc_session_runs(const lc_session_t *s) { return s ? s->runs : 0; }
int64_t lc_session_replays(const lc_session_t *s) { return s ? s->replays : 0; }
int lc_session_inputs_ready(const lc_session_t *s) {
    return s && s->uploaded == (1u << s->ninputs) - 1u;
}

/* One trace event for a session step (when the trace is on). */
static void lc_session_trace(const lc_session_t *s, const char *op, const char *path, uint64_t start_ns,
                             uint64_t bytes, int synchronized) {
    if (!start_ns || !lc_trace_enabled()) return;
    lc_trace_event ev = {.op = op,
                         .path = path,
                         .requested = s->device,
                         .selected = s->device,
                         .reason = LC_REASON_DIRECT,
                         .synchronized = synchronized || s->device == LC_DEVICE_CPU,
                         .bytes_moved = bytes,
                         .start_ns = start_ns};
    ev.duration_ns = lc_trace_now_ns() - start_ns;
    lc_trace_record(&ev);
}

static uint64_t lc_session_clock(void) { return lc_trace_enabled() ? lc_trace_now_ns() : 0; }

lc_status lc_session_upload(lc_session_t *s, int index, const lc_tensor_t *src) {
    if (!s) return lc_error(LC_ERR_INVALID_ARGUMENT, "session_upload: session: expected a session, got NULL");
    if (index < 0 || index >= s->ninputs)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: input index: expected 0..%d, got %d", s->name, s->ninputs - 1, index);
    const char *name = s->input_names[index];
    lc_status st;
    if ((st = lc_check_tensor(s->name, name, src)) != LC_OK || (st = lc_check_dtype_is(s->name, name, src, LC_DTYPE_F32)) != LC_OK)
        return st;
    lc_tensor_t *dst = s->in[index];
    if (lc_tensor_numel(src) != lc_tensor_numel(dst)) {
        char want[96];
        lc_format_shape(want, sizeof want, lc_tensor_ndim(dst), lc_tensor_shape(dst));
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected %lld elements (shape %s), got %lld", s->name, name,
                        (long long)lc_tensor_numel(dst), want, (long long)lc_tensor_numel(src));
    }
    const uint64_t t0 = lc_session_clock();
    const size_t bytes = lc_tensor_nbytes(dst);
    void *dp = lc_tensor_data(dst);
    const lc_device where = lc_tensor_device(src);
    if (lc_tensor_is_contiguous(src) && where == LC_DEVICE_CPU) {
        st = s->backend->copy_h2d(dp, lc_tensor_data(src), bytes);
    } else if (lc_tensor_is_contiguous(src) && where == s->device) {
        st = s->backend->copy_d2d(dp, lc_tensor_data(src), bytes);
    } else {
        /* Strided, or on the other device: gather through the host. */
        void *host = lc_aligned_alloc(bytes);
        if (!host) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: %s: could not allocate %zu bytes", s->name, name, bytes);
        st = lc_tensor_to_host(src, host, bytes);
        if (st == LC_OK) st = s->backend->copy_h2d(dp, host, bytes);
        lc_aligned_free(host);
    }
    if (st != LC_OK) return lc_error(st, "%s: %s: upload failed: %s", s->name, name, lc_last_error());
    s->uploaded |= 1u << index;
    lc_session_trace(s, "session.upload", s->name, t0, where == s->device ? 0 : bytes, 0);
    return LC_OK;
}

/* Runs program p once through the ops layer (eager) or captures it as a graph. */
static lc_status lc_session_capture(lc_session_t *s, int p) {
    lc_status st = lc_capture_begin(s->device);
    if (st != LC_OK) return st;
    st = s->program(s, p);
    char why[256] = "";
    if (st != LC_OK) snprintf(why, sizeof why, "%s", lc_last_error());
    lc_status end = lc_capture_end(st == LC_OK, &s->graph[p]);
    if (st != LC_OK) return lc_error(st, "%s", why);
    return end;
}

lc_status lc_session_run(lc_session_t *s, int p, int64_t loops) {
    if (!s) return lc_error(LC_ERR_INVALID_ARGUMENT, "session_run: session: expected a session, got NULL");
    if (p < 0 || p >= s->nprograms)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: program: expected 0..%d, got %d", s->name, s->nprograms - 1, p);
    if (loops < 1) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: loops: expected >= 1, got %lld", s->name, (long long)loops);
    if (lc_capture_active())
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: cannot run a session while this thread captures a graph", s->name);
    for (int i = 0; i < s->ninputs; i++)
        if (!(s->uploaded & (1u << i)))
            return lc_error(LC_ERR_INVALID_ARGUMENT,
                            "%s: %s: no data on the device yet (upload every input once, e.g. with start_into, before a "
                            "cached run)", s->name, s->input_names[i]);
    const uint64_t t0 = lc_session_clock();
    const int can_graph = s->backend->capture_begin != NULL;
    lc_status st = LC_OK;
    int64_t done = 0;
    /* The first run of a program is eager (it warms the allocator and the autotuner), then it is
     * captured once; a program that cannot be captured keeps running eagerly. */
    while (st == LC_OK && done < loops && (!can_graph || s->capture_failed[p] || s->eager_runs[p] == 0)) {
        st = s->program(s, p);
        s->eager_runs[p]++;
        done++;
    }
    if (st == LC_OK && done < loops && !s->graph[p]) {
        if (lc_session_capture(s, p) != LC_OK) {
            s->capture_failed[p] = 1; /* stays eager; lc_session_uses_graph tells */
            for (; st == LC_OK && done < loops; done++) st = s->program(s, p);
        }
    }
    int64_t replayed = 0;
    if (st == LC_OK && done < loops) {
        st = lc_device_graph_launch(s->graph[p], loops - done);
        if (st == LC_OK) s->replays += replayed = loops - done;
        done = loops;
    }
    if (st != LC_OK) return st;
    s->runs += loops;
    s->have_result = 1;
    /* "always": eager ops waited each; replays wait here, once. */
    const int waited = replayed && lc_effective_sync_policy() == LC_SYNC_ALWAYS;
    if (waited && (st = s->backend->sync()) != LC_OK) return st;
    lc_session_trace(s, s->name, s->graph[p] ? "graph_replay" : "eager", t0, 0, waited);
    return LC_OK;
}

lc_status lc_session_sync(lc_session_t *s) {
    if (!s) return lc_error(LC_ERR_INVALID_ARGUMENT, "session_sync: session: expected a session, got NULL");
    if (s->device == LC_DEVICE_CPU || lc_effective_sync_policy() == LC_SYNC_NEVER) return LC_OK;
    return s->backend->sync();
}

lc_status lc_session_download(lc_session_t *s, lc_tensor_t *dst) {
    if (!s) return lc_error(LC_ERR_INVALID_ARGUMENT, "session_download: session: expected a session, got NULL");
    lc_status st;
    if ((st = lc_check_tensor(s->name, "out", dst)) != LC_OK || (st = lc_check_dtype_is(s->name, "out", dst, LC_DTYPE_F32)) != LC_OK)
        return st;
    if (!lc_tensor_is_writable(dst) || !lc_tensor_is_contiguous(dst))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a writable contiguous tensor, got a %s one", s->name,
                        lc_tensor_is_writable(dst) ? "strided" : "read-only");
    if (lc_tensor_numel(dst) != lc_tensor_numel(s->out))
        return lc_error(LC_ERR_SHAPE, "%s: out: expected %lld elements, got %lld", s->name,
                        (long long)lc_tensor_numel(s->out), (long long)lc_tensor_numel(dst));
    if (!s->have_result)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: nothing to download yet (no run has computed a result)", s->name);
    const uint64_t t0 = lc_session_clock();
    const size_t bytes = lc_tensor_nbytes(dst);
    const lc_device where = lc_tensor_device(dst);
    int waited = 0;
    if (where == LC_DEVICE_CPU) {
        st = s->backend->copy_d2h(lc_tensor_data(dst), lc_tensor_data(s->out), bytes);
        waited = 1;
    } else if (where == s->device) {
        st = s->backend->copy_d2d(lc_tensor_data(dst), lc_tensor_data(s->out), bytes);
        if (st == LC_OK && lc_effective_sync_policy() == LC_SYNC_ALWAYS) {
            st = s->backend->sync();
            waited = 1;
        }
    } else {
        st = lc_tensor_copy_from_host(dst, lc_tensor_data(s->out), bytes); /* cpu session into a device tensor */
    }
    if (st != LC_OK) return lc_error(st, "%s: out: download failed: %s", s->name, lc_last_error());
    lc_session_trace(s, "session.download", s->name, t0, where == s->device ? 0 : bytes, waited);
    return LC_OK;
}
