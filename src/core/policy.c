/* policy.c — the sync policy (process default from LC_SYNC_POLICY or lc_set_sync_policy, and a
 * per-thread override), the runtime counters, and the device timer (CUDA events on the backend
 * stream through the backend table; wall time on the CPU), and the thread-local static-weights promise.
 * Tests: tests/c/test_sessions.c, tests/python/test_sessions.py, tests/python/test_sync_policy.py. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/counters.h"
#include "core/internal.h"
#include "core/tune_cache.h"
#include "lightning_core/runtime.h"

static const char *const lc_sync_names[LC_SYNC_POLICY_COUNT] = {"auto", "always", "never"};

const char *lc_sync_policy_name(lc_sync_policy policy) {
    return ((int)policy >= 0 && policy < LC_SYNC_POLICY_COUNT) ? lc_sync_names[policy] : "invalid";
}

lc_status lc_sync_policy_parse(const char *text, lc_sync_policy *out) {
    if (text)
        for (int p = 0; p < LC_SYNC_POLICY_COUNT; p++)
            if (strcmp(text, lc_sync_names[p]) == 0) {
                if (out) *out = (lc_sync_policy)p;
                return LC_OK;
            }
    return lc_error(LC_ERR_INVALID_ARGUMENT, "sync policy: expected one of 'auto', 'always', 'never', got %s%.64s%s",
                    text ? "'" : "", text ? text : "NULL", text ? "'" : "");
}

/* -1: not yet read from LC_SYNC_POLICY. */
static atomic_int lc_sync_default = -1;
static _Thread_local int lc_sync_thread = -1;

lc_sync_policy lc_get_sync_policy(void) {
    int p = atomic_load(&lc_sync_default);
    if (p >= 0) return (lc_sync_policy)p;
    lc_sync_policy parsed = LC_SYNC_AUTO;
    const char *env = getenv("LC_SYNC_POLICY");
    if (env && *env && lc_sync_policy_parse(env, &parsed) != LC_OK) parsed = LC_SYNC_AUTO;
    int expected = -1;
    atomic_compare_exchange_strong(&lc_sync_default, &expected, (int)parsed);
    return (lc_sync_policy)atomic_load(&lc_sync_default);
}

lc_status lc_set_sync_policy(lc_sync_policy policy) {
    if ((int)policy < 0 || policy >= LC_SYNC_POLICY_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "set_sync_policy: policy: expected auto, always or never, got code %d",
                        (int)policy);
    atomic_store(&lc_sync_default, (int)policy);
    return LC_OK;
}

lc_status lc_set_thread_sync_policy(int policy) {
    if (policy >= LC_SYNC_POLICY_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "set_thread_sync_policy: policy: expected auto, always, never or < 0 (none), got code %d", policy);
    lc_sync_thread = policy < 0 ? -1 : policy;
    return LC_OK;
}

int lc_get_thread_sync_policy(void) { return lc_sync_thread; }

lc_sync_policy lc_effective_sync_policy(void) {
    return lc_sync_thread >= 0 ? (lc_sync_policy)lc_sync_thread : lc_get_sync_policy();
}

/* ---- the static-weights promise (thread-local; read by the CUDA GEMV launch) ---- */
static _Thread_local int lc_static_weights;

void lc_set_static_weights(int on) { lc_static_weights = on != 0; }

int lc_get_static_weights(void) { return lc_static_weights; }

/* ---- counters ---------------------------------------------------------------------------------- */

static _Atomic uint64_t lc_counters[LC_COUNTER_COUNT];

void lc_counter_add(lc_counter which, uint64_t amount) {
    if ((int)which >= 0 && which < LC_COUNTER_COUNT) atomic_fetch_add_explicit(&lc_counters[which], amount, memory_order_relaxed);
}

void lc_get_runtime_counters(lc_runtime_counters *out) {
    if (!out) return;
    out->syncs = atomic_load(&lc_counters[LC_COUNTER_SYNCS]);
    out->downloads = atomic_load(&lc_counters[LC_COUNTER_DOWNLOADS]);
    out->d2h_bytes = atomic_load(&lc_counters[LC_COUNTER_D2H_BYTES]);
    out->uploads = atomic_load(&lc_counters[LC_COUNTER_UPLOADS]);
    out->h2d_bytes = atomic_load(&lc_counters[LC_COUNTER_H2D_BYTES]);
    out->graph_captures = atomic_load(&lc_counters[LC_COUNTER_GRAPH_CAPTURES]);
    out->graph_launches = atomic_load(&lc_counters[LC_COUNTER_GRAPH_LAUNCHES]);
    out->dispatches = atomic_load(&lc_counters[LC_COUNTER_DISPATCHES]);
}

void lc_reset_runtime_counters(void) {
    for (int i = 0; i < LC_COUNTER_COUNT; i++) atomic_store(&lc_counters[i], 0);
}

/* ---- device timer ------------------------------------------------------------------------------ */

struct lc_device_timer {
    const lc_backend *backend;
    void *events;      /* backend's timer handle (NULL on the CPU) */
    double t0_ms;      /* CPU: wall clock (lc_tune_now_ms, the CPU tuner's clock) */
};

lc_status lc_device_timer_start(lc_device device, lc_device_timer_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "device_timer_start: out: expected a pointer, got NULL");
    *out = NULL;
    if (device != LC_DEVICE_CPU && device != LC_DEVICE_CUDA)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "device_timer_start: device: expected cpu or cuda, got %s",
                        lc_device_name(device));
    const lc_backend *be = lc_backend_for(device);
    if (!be || !be->available())
        return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "device_timer_start: device: %s is not available", lc_device_name(device));
    lc_device_timer_t *t = calloc(1, sizeof *t);
    if (!t) return lc_error(LC_ERR_OUT_OF_MEMORY, "device_timer_start: out of host memory");
    t->backend = be;
    lc_status st = be->timer_start ? be->timer_start(&t->events) : LC_OK;
    if (st != LC_OK) {
        free(t);
        return st;
    }
    t->t0_ms = lc_tune_now_ms();
    *out = t;
    return LC_OK;
}

lc_status lc_device_timer_stop(lc_device_timer_t *t, double *elapsed_ms) {
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "device_timer_stop: timer: expected a started timer, got NULL");
    double ms = 0.0;
    lc_status st = LC_OK;
    if (t->backend->timer_stop) {
        st = t->backend->timer_stop(t->events, &ms);
    } else {
        ms = lc_tune_now_ms() - t->t0_ms;
    }
    free(t);
    if (st == LC_OK && elapsed_ms) *elapsed_ms = ms;
    return st;
}
