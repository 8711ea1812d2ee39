/* trace.c — the runtime trace ring buffer (see include/lightning_core/trace.h). A mutex guards the
 * ring (recording is already the slow path: only when enabled); the enabled flag is an atomic read on
 * every op. Tests: tests/c/test_core.c, tests/python/test_trace.py. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "core/trace_record.h"
#include "lightning_core/trace.h"

#define LC_TRACE_DEFAULT_CAPACITY 65536

static struct {
    pthread_mutex_t mu;
    lc_trace_event *ring;
    size_t capacity;
    uint64_t next_seq; /* events recorded since the last clear */
} lc_trace = {.mu = PTHREAD_MUTEX_INITIALIZER};

static atomic_int lc_trace_on;

uint64_t lc_trace_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lc_trace_enable(int enabled) { atomic_store_explicit(&lc_trace_on, enabled ? 1 : 0, memory_order_relaxed); }

int lc_trace_enabled(void) { return atomic_load_explicit(&lc_trace_on, memory_order_relaxed); }

static int lc_trace_ready_locked(void) {
    if (lc_trace.ring) return 1;
    if (!lc_trace.capacity) lc_trace.capacity = LC_TRACE_DEFAULT_CAPACITY;
    lc_trace.ring = calloc(lc_trace.capacity, sizeof *lc_trace.ring);
    return lc_trace.ring != NULL;
}

void lc_trace_clear(void) {
    pthread_mutex_lock(&lc_trace.mu);
    lc_trace.next_seq = 0;
    pthread_mutex_unlock(&lc_trace.mu);
}

lc_status lc_trace_set_capacity(size_t capacity) {
    if (capacity < 1 || capacity > ((size_t)1 << 26))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "trace_set_capacity: capacity: expected 1..%zu events, got %zu",
                        (size_t)1 << 26, capacity);
    lc_trace_event *ring = calloc(capacity, sizeof *ring);
    if (!ring)
        return lc_error(LC_ERR_OUT_OF_MEMORY, "trace_set_capacity: could not allocate %zu events", capacity);
    pthread_mutex_lock(&lc_trace.mu);
    free(lc_trace.ring);
    lc_trace.ring = ring;
    lc_trace.capacity = capacity;
    lc_trace.next_seq = 0;
    pthread_mutex_unlock(&lc_trace.mu);
    return LC_OK;
}

size_t lc_trace_capacity(void) {
    pthread_mutex_lock(&lc_trace.mu);
    size_t c = lc_trace.capacity ? lc_trace.capacity : LC_TRACE_DEFAULT_CAPACITY;
    pthread_mutex_unlock(&lc_trace.mu);
    return c;
}

void lc_trace_record(const lc_trace_event *event) {
    pthread_mutex_lock(&lc_trace.mu);
    if (lc_trace_ready_locked()) {
        lc_trace_event *slot = &lc_trace.ring[lc_trace.next_seq % lc_trace.capacity];
        *slot = *event;
        slot->seq = lc_trace.next_seq++;
    }
    pthread_mutex_unlock(&lc_trace.mu);
}

void lc_trace_span(const char *op, const char *path, lc_device requested, lc_device selected, lc_reason reason,
                   int synchronized, uint64_t bytes_moved, uint64_t start_ns) {
    if (!lc_trace_enabled()) return;
    lc_trace_event ev = {.op = op, .path = path, .requested = requested, .selected = selected, .reason = reason,
                         .synchronized = synchronized, .bytes_moved = bytes_moved, .start_ns = start_ns};
    ev.duration_ns = lc_trace_now_ns() - start_ns;
    lc_trace_record(&ev);
}

void lc_trace_note(const char *op, const char *path, lc_device requested, lc_device selected, lc_reason reason) {
    if (lc_trace_enabled()) lc_trace_span(op, path, requested, selected, reason, 1, 0, lc_trace_now_ns());
}

static size_t lc_trace_count_locked(void) {
    size_t cap = lc_trace.capacity ? lc_trace.capacity : LC_TRACE_DEFAULT_CAPACITY;
    return lc_trace.next_seq < cap ? (size_t)lc_trace.next_seq : cap;
}

size_t lc_trace_count(void) {
    pthread_mutex_lock(&lc_trace.mu);
    size_t n = lc_trace_count_locked();
    pthread_mutex_unlock(&lc_trace.mu);
    return n;
}

uint64_t lc_trace_dropped(void) {
    pthread_mutex_lock(&lc_trace.mu);
    uint64_t dropped = lc_trace.next_seq - lc_trace_count_locked();
    pthread_mutex_unlock(&lc_trace.mu);
    return dropped;
}

size_t lc_trace_events(lc_trace_event *out, size_t max) {
    pthread_mutex_lock(&lc_trace.mu);
    size_t held = lc_trace.ring ? lc_trace_count_locked() : 0;
    size_t n = held < max ? held : max;
    uint64_t first = lc_trace.next_seq - held;
    for (size_t i = 0; i < n; i++) out[i] = lc_trace.ring[(first + i) % lc_trace.capacity];
    pthread_mutex_unlock(&lc_trace.mu);
    return n;
}
