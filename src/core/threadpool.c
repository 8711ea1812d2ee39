/* threadpool.c — the persistent CPU worker pool behind lc_parallel_for (see threadpool.h).
 *
 * One submitter at a time owns the pool (try-lock; a second concurrent caller runs its loop inline).
 * A job is split into chunks. Chunks are claimed through one 64-bit ticket holding
 * (generation:32 | next chunk:16 | chunk count:16), so a claim is valid only for the job it names and
 * never past its last chunk. The submitter works too and returns once every chunk is done: it never
 * waits for a worker that has not woken up (important when the machine is oversubscribed), and a late
 * worker cannot touch a finished job, because a claim of the current generation cannot succeed then.
 * Idle workers spin briefly (cheap back-to-back jobs), then sleep on a condition variable.
 * Tests: tests/c/test_core.c. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/threadpool.h"
#include "lightning_core/runtime.h"

#define LC_POOL_MAX_THREADS 256
#define LC_POOL_MAX_CHUNKS 0xFFFF
#define LC_POOL_SPIN 4000

#define LC_TICKET(gen, next, count) (((uint64_t)(gen) << 32) | ((uint64_t)(next) << 16) | (uint64_t)(count))
#define LC_TICKET_GEN(t) ((uint32_t)((t) >> 32))
#define LC_TICKET_NEXT(t) ((uint32_t)(((t) >> 16) & 0xFFFF))
#define LC_TICKET_COUNT(t) ((uint32_t)((t)&0xFFFF))

typedef struct lc_job {
    lc_range_fn fn;
    void *ctx;
    int64_t n, chunk;
} lc_job;

static struct {
    pthread_mutex_t submit; /* held by the thread that owns the pool for one job */
    pthread_mutex_t lock;   /* sleep/wake */
    pthread_cond_t wake;
    _Atomic uint64_t ticket;
    atomic_int done;        /* chunks finished in the current generation */
    atomic_int stop;
    uint32_t generation;    /* written by the submitter only */
    lc_job job;             /* stable while any chunk of the current generation is unfinished */
    pthread_t workers[LC_POOL_MAX_THREADS];
    int nworkers;           /* running worker threads */
    int nthreads;           /* configured total, including the submitter */
    int started;
} lc_pool = {
    .submit = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

static pthread_once_t lc_pool_once = PTHREAD_ONCE_INIT;

static inline void lc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Runs chunks of generation `gen` until none is left to claim. */
static void lc_job_run_chunks(uint32_t gen) {
    for (;;) {
        uint64_t t = atomic_load_explicit(&lc_pool.ticket, memory_order_acquire);
        if (LC_TICKET_GEN(t) != gen || LC_TICKET_NEXT(t) >= LC_TICKET_COUNT(t)) return;
        if (!atomic_compare_exchange_weak_explicit(&lc_pool.ticket, &t, t + ((uint64_t)1 << 16),
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        const lc_job *job = &lc_pool.job;
        int64_t begin = (int64_t)LC_TICKET_NEXT(t) * job->chunk;
        int64_t end = begin + job->chunk < job->n ? begin + job->chunk : job->n;
        job->fn(job->ctx, begin, end);
        atomic_fetch_add_explicit(&lc_pool.done, 1, memory_order_release);
    }
}

static void *lc_worker_main(void *arg) {
    (void)arg;
    uint32_t seen = 0; /* generations start at 1: a job posted before this thread ran is still new */
    for (;;) {
        int spins = 0;
        while (LC_TICKET_GEN(atomic_load_explicit(&lc_pool.ticket, memory_order_acquire)) == seen &&
               !atomic_load(&lc_pool.stop) && spins < LC_POOL_SPIN) {
            lc_cpu_relax();
            spins++;
        }
        pthread_mutex_lock(&lc_pool.lock);
        while (LC_TICKET_GEN(atomic_load(&lc_pool.ticket)) == seen && !atomic_load(&lc_pool.stop))
            pthread_cond_wait(&lc_pool.wake, &lc_pool.lock);
        pthread_mutex_unlock(&lc_pool.lock);
        if (atomic_load(&lc_pool.stop)) return NULL;
        seen = LC_TICKET_GEN(atomic_load_explicit(&lc_pool.ticket, memory_order_acquire));
        lc_job_run_chunks(seen);
    }
}

static int lc_env_threads(void) {
    const char *env = getenv("LC_NUM_THREADS");
    if (env && *env) {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (end && *end == '\0' && v >= 1 && v <= LC_POOL_MAX_THREADS) return (int)v;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    if (cpus > LC_POOL_MAX_THREADS) cpus = LC_POOL_MAX_THREADS;
    return (int)cpus;
}

static void lc_pool_init_config(void) { lc_pool.nthreads = lc_env_threads(); }

/* Starts the workers; called with `submit` held. On a thread-creation failure the pool runs with
 * fewer workers (the submitter always participates, so work still completes). */
static void lc_pool_start_locked(void) {
    atomic_store(&lc_pool.stop, 0);
    lc_pool.nworkers = 0;
    for (int i = 0; i < lc_pool.nthreads - 1; i++) {
        if (pthread_create(&lc_pool.workers[i], NULL, lc_worker_main, NULL) != 0) break;
        lc_pool.nworkers++;
    }
    lc_pool.started = 1;
}

static void lc_pool_stop_locked(void) {
    if (!lc_pool.started) return;
    pthread_mutex_lock(&lc_pool.lock);
    atomic_store(&lc_pool.stop, 1);
    pthread_cond_broadcast(&lc_pool.wake);
    pthread_mutex_unlock(&lc_pool.lock);
    for (int i = 0; i < lc_pool.nworkers; i++) pthread_join(lc_pool.workers[i], NULL);
    lc_pool.nworkers = 0;
    lc_pool.started = 0;
}

int lc_pool_threads(void) {
    pthread_once(&lc_pool_once, lc_pool_init_config);
    return lc_pool.nthreads;
}

int lc_num_threads(void) { return lc_pool_threads(); }

lc_status lc_set_num_threads(int n) {
    if (n < 1 || n > LC_POOL_MAX_THREADS)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "set_num_threads: n: expected 1..%d, got %d",
                        LC_POOL_MAX_THREADS, n);
    pthread_once(&lc_pool_once, lc_pool_init_config);
    pthread_mutex_lock(&lc_pool.submit);
    lc_pool_stop_locked();
    lc_pool.nthreads = n;
    pthread_mutex_unlock(&lc_pool.submit);
    return LC_OK;
}

void lc_parallel_for(int64_t n, int64_t grain, lc_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int threads = lc_pool_threads();
    if (n <= grain || threads <= 1 || pthread_mutex_trylock(&lc_pool.submit) != 0) {
        fn(ctx, 0, n);
        return;
    }
    if (!lc_pool.started) lc_pool_start_locked();
    if (lc_pool.nworkers == 0) {
        pthread_mutex_unlock(&lc_pool.submit);
        fn(ctx, 0, n);
        return;
    }
    int64_t parts = (int64_t)(lc_pool.nworkers + 1) * 4; /* a few chunks per thread for balance */
    int64_t chunk = (n + parts - 1) / parts;
    if (chunk < grain) chunk = grain;
    int64_t nchunks = (n + chunk - 1) / chunk;
    if (nchunks > LC_POOL_MAX_CHUNKS) {
        chunk = (n + LC_POOL_MAX_CHUNKS - 1) / LC_POOL_MAX_CHUNKS;
        nchunks = (n + chunk - 1) / chunk;
    }
    lc_pool.job.fn = fn;
    lc_pool.job.ctx = ctx;
    lc_pool.job.n = n;
    lc_pool.job.chunk = chunk;
    atomic_store_explicit(&lc_pool.done, 0, memory_order_relaxed);
    uint32_t gen = ++lc_pool.generation;
    if (gen == 0) gen = ++lc_pool.generation; /* 0 means "none seen yet" to a new worker */
    pthread_mutex_lock(&lc_pool.lock);
    atomic_store_explicit(&lc_pool.ticket, LC_TICKET(gen, 0, nchunks), memory_order_release);
    pthread_cond_broadcast(&lc_pool.wake);
    pthread_mutex_unlock(&lc_pool.lock);
    lc_job_run_chunks(gen);
    for (int spins = 0; atomic_load_explicit(&lc_pool.done, memory_order_acquire) < nchunks; spins++) {
        if (spins < LC_POOL_SPIN) lc_cpu_relax();
        else sched_yield(); /* a worker holding a chunk was descheduled: give it the core */
    }
    pthread_mutex_unlock(&lc_pool.submit);
}
