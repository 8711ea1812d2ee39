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
#include "ops/resident.h"
#include "ops/session_internal.h"

lc_status lc_session_create(const char *name, lc_device device, lc_dtype dtype, int ninputs, const char *const *input_names,
                            const int *input_ndims, const int64_t (*input_shapes)[4], int out_ndim,
                            const int64_t *out_shape, int nprograms, lc_session_program_fn program,
                            lc_session_t **out) {
    *out = NULL;
    const lc_backend *be = NULL;
    lc_status st = lc_resident_device(name, device, &be, NULL);
    if (st != LC_OK) return st;
    lc_session_t *s = calloc(1, sizeof *s);
    if (!s) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", name);
    s->name = name;
    s->backend = be;
    s->device = be->device;
    s->dtype = dtype;
    s->ninputs = ninputs;
    s->nprograms = nprograms;
    s->program = program;
    for (int i = 0; i < ninputs && st == LC_OK; i++) {
        s->input_names[i] = input_names[i];
        st = lc_tensor_new(dtype, s->device, input_ndims[i], input_shapes[i], &s->in[i]);
        if (st != LC_OK) st = lc_error_wrap(st, "%s: %s", name, input_names[i]);
    }
    if (st == LC_OK) {
        st = lc_tensor_new(dtype, s->device, out_ndim, out_shape, &s->out);
        if (st != LC_OK) st = lc_error_wrap(st, "%s: out", name);
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
    lc_status st = lc_tensor_new(s->dtype, s->device, ndim, shape, &s->temp[s->ntemps]);
    if (st != LC_OK) return lc_error_wrap(st, "%s: intermediate", s->name);
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
    for (int p = 0; p < LC_SESSION_MAX_PROGRAMS; p++) lc_replay_free(&s->replay[p]);
    for (int i = 0; i < LC_SESSION_MAX_INPUTS; i++) lc_tensor_free(s->in[i]);
    for (int i = 0; i < LC_SESSION_MAX_TEMPS; i++) lc_tensor_free(s->temp[i]);
    lc_tensor_free(s->out);
    free(s);
}

lc_device lc_session_device(const lc_session_t *s) { return s ? s->device : LC_DEVICE_COUNT; }
lc_dtype lc_session_dtype(const lc_session_t *s) { return s ? s->dtype : LC_DTYPE_F32; }
int lc_session_num_inputs(const lc_session_t *s) { return s ? s->ninputs : 0; }
const lc_tensor_t *lc_session_input(const lc_session_t *s, int i) { return (s && i >= 0 && i < s->ninputs) ? s->in[i] : NULL; }
const lc_tensor_t *lc_session_output(const lc_session_t *s) { return s ? s->out : NULL; }
int lc_session_uses_graph(const lc_session_t *s, int p) {
    return (s && p >= 0 && p < s->nprograms) ? s->replay[p].graph != NULL : 0;
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
    lc_trace_span(op, path, s->device, s->device, LC_REASON_DIRECT, synchronized || s->device == LC_DEVICE_CPU, bytes,
                  start_ns);
}

static uint64_t lc_session_clock(void) { return lc_trace_enabled() ? lc_trace_now_ns() : 0; }

lc_status lc_session_check_upload(const lc_session_t *s, int index, const lc_tensor_t *src) {
    if (!s) return lc_error(LC_ERR_INVALID_ARGUMENT, "session_upload: session: expected a session, got NULL");
    if (index < 0 || index >= s->ninputs)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: input index: expected 0..%d, got %d", s->name, s->ninputs - 1, index);
    return lc_resident_check_upload(s->name, s->input_names[index], s->in[index], src);
}

lc_status lc_session_upload(lc_session_t *s, int index, const lc_tensor_t *src) {
    if (!s) return lc_error(LC_ERR_INVALID_ARGUMENT, "session_upload: session: expected a session, got NULL");
    if (index < 0 || index >= s->ninputs)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: input index: expected 0..%d, got %d", s->name, s->ninputs - 1, index);
    const char *name = s->input_names[index];
    const uint64_t t0 = lc_session_clock();
    lc_tensor_t *dst = s->in[index];
    lc_status st = lc_resident_upload(s->backend, s->name, name, dst, src);
    if (st != LC_OK) return st;
    s->uploaded |= 1u << index;
    lc_session_trace(s, "session.upload", s->name, t0, lc_tensor_device(src) == s->device ? 0 : lc_tensor_nbytes(dst), 0);
    return LC_OK;
}

/* The replay runner's view of one program. */
typedef struct lc_program_call {
    lc_session_t *s;
    int program;
} lc_program_call;

static lc_status lc_session_program_call(void *ctx) {
    lc_program_call *c = ctx;
    return c->s->program(c->s, c->program);
}

lc_status lc_session_run(lc_session_t *s, int p, int64_t loops) {
    int64_t done = 0;
    return lc_session_run_polled(s, p, loops, NULL, NULL, &done);
}

/* How often a polled run asks whether to stop, and the most launches it makes between two clock reads: few,
 * so that a run that slows down after its chunks grew (the CPU suddenly shared with other work: a launch of
 * microseconds then takes milliseconds) still polls within a fraction of a second. A clock read costs tens of
 * nanoseconds against at least a microsecond per launch. */
#define LC_POLL_NS 10000000ull
#define LC_POLL_MAX_CHUNK ((int64_t)64)

lc_status lc_session_run_polled(lc_session_t *s, int p, int64_t loops, int (*poll)(void *ctx), void *ctx,
                                int64_t *done) {
    if (done) *done = 0;
    if (!s) return lc_error(LC_ERR_INVALID_ARGUMENT, "session_run: session: expected a session, got NULL");
    if (p < 0 || p >= s->nprograms)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: program: expected 0..%d, got %d", s->name, s->nprograms - 1, p);
    if (loops < 1 || loops > LC_SESSION_MAX_LOOPS)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: loops: expected >= 1 and <= %lld, got %lld", s->name,
                        (long long)LC_SESSION_MAX_LOOPS, (long long)loops);
    if (lc_capture_active())
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: cannot run a session while this thread captures a graph", s->name);
    for (int i = 0; i < s->ninputs; i++)
        if (!(s->uploaded & (1u << i)))
            return lc_error(LC_ERR_INVALID_ARGUMENT,
                            "%s: %s: no data on the device yet (upload every input once, e.g. with start_into, before a "
                            "cached run)", s->name, s->input_names[i]);
    const uint64_t t0 = lc_session_clock();
    lc_program_call call = {s, p};
    int64_t replayed = 0, ran = 0;
    lc_status st = LC_OK;
    if (!poll) {
        st = lc_replay_run(&s->replay[p], s->backend, lc_session_program_call, &call, loops, &replayed);
        if (st == LC_OK) ran = loops;
    } else {
        /* Chunks of launches that double while a chunk takes under 1/8 of the poll interval (so the clock
         * and the poll cost nothing next to the work), and a poll whenever the interval has passed. */
        int64_t chunk = 1;
        uint64_t last_poll = lc_trace_now_ns();
        while (ran < loops) {
            const int64_t n = chunk < loops - ran ? chunk : loops - ran;
            const uint64_t c0 = lc_trace_now_ns();
            int64_t r = 0;
            st = lc_replay_run(&s->replay[p], s->backend, lc_session_program_call, &call, n, &r);
            replayed += r;
            if (st != LC_OK) break;
            ran += n;
            if (ran == loops) break;
            const uint64_t now = lc_trace_now_ns();
            if (now - c0 < LC_POLL_NS / 8 && chunk < LC_POLL_MAX_CHUNK) chunk *= 2;
            else if (now - c0 > LC_POLL_NS && chunk > 1) chunk /= 2;
            if (now - last_poll >= LC_POLL_NS) {
                if (poll(ctx)) break;
                last_poll = lc_trace_now_ns();
            }
        }
    }
    s->replays += replayed;
    s->runs += ran;
    if (ran) s->have_result = 1;
    if (done) *done = ran;
    if (st != LC_OK) return st;
    /* "always": eager ops waited each; replays wait here, once. */
    const int waited = replayed && lc_effective_sync_policy() == LC_SYNC_ALWAYS;
    if (waited && (st = s->backend->sync()) != LC_OK) return st;
    lc_session_trace(s, s->name, replayed ? "graph_replay" : "eager", t0, 0, waited);
    return LC_OK;
}

lc_status lc_session_sync(lc_session_t *s) {
    if (!s) return lc_error(LC_ERR_INVALID_ARGUMENT, "session_sync: session: expected a session, got NULL");
    if (s->device == LC_DEVICE_CPU || lc_effective_sync_policy() == LC_SYNC_NEVER) return LC_OK;
    return s->backend->sync();
}

lc_status lc_session_download(lc_session_t *s, lc_tensor_t *dst) {
    if (!s) return lc_error(LC_ERR_INVALID_ARGUMENT, "session_download: session: expected a session, got NULL");
    if (!s->have_result)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: nothing to download yet (no run has computed a result)", s->name);
    const uint64_t t0 = lc_session_clock();
    int waited = 0;
    lc_status st = lc_resident_download(s->backend, s->name, s->out, dst, &waited);
    if (st != LC_OK) return st;
    const lc_device where = dst ? lc_tensor_device(dst) : s->device;
    const size_t bytes = lc_tensor_nbytes(dst);
    lc_session_trace(s, "session.download", s->name, t0, where == s->device ? 0 : bytes, waited);
    return LC_OK;
}
