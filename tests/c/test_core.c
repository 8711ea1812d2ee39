/* test_core.c — tests of the core runtime: status/last-error, the tensor contract (shape, layout/view
 * bounds, copy-based host transfers, view aliasing and device rule, refcounted storage), the thread
 * pool (coverage, concurrent callers, resizing), device strings and the fallback/strict policy, the prefetch
 * hint's argument checks (lc_tensor_prefetch; its CUDA kernel: tests/python/test_prefetch.py).
 * Run by ctest; prints "N passed, N failed". */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "core/threadpool.h"
#include "lightning_core/lightning_core.h"
#include "check.h"


static void test_status(void) {
    CHECK(strcmp(lc_status_str(LC_OK), "ok") == 0);
    CHECK(strcmp(lc_status_str(LC_ERR_SHAPE), "shape_mismatch") == 0);
    CHECK(strcmp(lc_status_str((lc_status)999), "unknown_status") == 0);
    for (int s = 0; s < LC_STATUS_COUNT; s++) CHECK(lc_status_str((lc_status)s)[0] != '\0');
    lc_clear_error();
    CHECK(lc_last_error()[0] == '\0');
    /* The setters read their arguments before writing: the thread-local text as an argument is safe. */
    CHECK(lc_error(LC_ERR_SHAPE, "inner %d", 7) == LC_ERR_SHAPE);
    CHECK(lc_error(LC_ERR_SHAPE, "outer: %s", lc_last_error()) == LC_ERR_SHAPE);
    CHECK(strcmp(lc_last_error(), "outer: inner 7") == 0);
    CHECK(lc_error_wrap(LC_ERR_BACKEND, "op %s", "x") == LC_ERR_BACKEND);
    CHECK(strcmp(lc_last_error(), "op x: outer: inner 7") == 0);
    char longer[600];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    lc_error(LC_ERR_SHAPE, "%s", longer); /* cut to the capacity, still terminated */
    CHECK(strlen(lc_last_error()) == 511);
    lc_error_wrap(LC_ERR_SHAPE, "ctx");
    CHECK(strncmp(lc_last_error(), "ctx: aaa", 8) == 0 && strlen(lc_last_error()) == 511);
    lc_clear_error();
    lc_error_wrap(LC_ERR_SHAPE, "alone"); /* nothing to wrap: just the context */
    CHECK(strcmp(lc_last_error(), "alone") == 0);
    lc_clear_error();
}

static void test_shape_contract(void) {
    int64_t ok[2] = {3, 4}, zero[2] = {3, 0}, neg[2] = {-1, 4}, huge[3] = {INT64_MAX / 2, 4, 4};
    CHECK(lc_shape_validate("shape", 2, ok) == LC_OK);
    CHECK(lc_shape_validate("shape", 2, zero) == LC_ERR_SHAPE);
    CHECK(strstr(lc_last_error(), "dim 1") != NULL);
    CHECK(lc_shape_validate("shape", 2, neg) == LC_ERR_SHAPE);
    CHECK(lc_shape_validate("shape", 3, huge) == LC_ERR_SHAPE);
    CHECK(strstr(lc_last_error(), "overflow") != NULL);
    CHECK(lc_shape_validate("shape", 0, ok) == LC_ERR_SHAPE);
    CHECK(lc_shape_validate("shape", LC_MAX_DIMS + 1, ok) == LC_ERR_SHAPE);
    lc_tensor_t *t = NULL;
    CHECK(lc_tensor_new(LC_DTYPE_F32, LC_DEVICE_CPU, 2, zero, &t) == LC_ERR_SHAPE && t == NULL);
    CHECK(lc_tensor_new(LC_DTYPE_COUNT, LC_DEVICE_CPU, 2, ok, &t) == LC_ERR_DTYPE && t == NULL);
    CHECK(lc_tensor_new(LC_DTYPE_F32, LC_DEVICE_METAL, 2, ok, &t) != LC_OK && t == NULL);
}

static void test_views(void) {
    float host[12];
    for (int i = 0; i < 12; i++) host[i] = (float)i * 1.5f - 3.0f;
    int64_t shape[2] = {3, 4};
    lc_tensor_t *t = NULL, *v = NULL;
    CHECK(lc_tensor_from_host(host, sizeof host, LC_DTYPE_F32, LC_DEVICE_CPU, 2, shape, &t) == LC_OK);
    /* lifetime: a copy, the caller buffer can change freely */
    host[0] = 1000.0f;
    float back[12];
    CHECK(lc_tensor_to_host(t, back, sizeof back) == LC_OK && back[0] == -3.0f && back[11] == 11 * 1.5f - 3.0f);
    CHECK(lc_tensor_is_contiguous(t) && !lc_tensor_is_view(t) && lc_tensor_numel(t) == 12);
    /* a transposed view [4,3] with strides [1,4] */
    int64_t vshape[2] = {4, 3}, vstrides[2] = {1, 4};
    CHECK(lc_tensor_view(t, 2, vshape, vstrides, 0, LC_DEVICE_AUTO, &v) == LC_OK);
    CHECK(v && lc_tensor_is_view(v) && !lc_tensor_is_contiguous(v) && lc_tensor_validate(v) == LC_OK);
    float tv[12];
    CHECK(lc_tensor_to_host(v, tv, sizeof tv) == LC_OK);
    CHECK(tv[1] == back[4] && tv[3] == back[1] && tv[11] == back[11]);
    /* alias: writes through the base are seen through the view (latest storage) */
    float fresh[12];
    for (int i = 0; i < 12; i++) fresh[i] = (float)(100 + i);
    CHECK(lc_tensor_copy_from_host(t, fresh, sizeof fresh) == LC_OK);
    CHECK(lc_tensor_to_host(v, tv, sizeof tv) == LC_OK && tv[1] == 104.0f);
    /* scatter into the strided view, read back through the base */
    float scat[12];
    for (int i = 0; i < 12; i++) scat[i] = (float)(-i);
    CHECK(lc_tensor_copy_from_host(v, scat, sizeof scat) == LC_OK);
    CHECK(lc_tensor_to_host(t, back, sizeof back) == LC_OK && back[4] == -1.0f && back[1] == -3.0f);
    /* refcounted storage: the view outlives its base */
    lc_tensor_free(t);
    CHECK(lc_tensor_to_host(v, tv, sizeof tv) == LC_OK && tv[1] == -1.0f);
    /* bounds: a view reaching past the storage fails; offset must be >= 0; strides >= 0 */
    lc_tensor_t *bad = NULL;
    int64_t off_shape[2] = {3, 4};
    CHECK(lc_tensor_view(v, 2, off_shape, NULL, 1, LC_DEVICE_AUTO, &bad) == LC_ERR_INVALID_ARGUMENT && !bad);
    CHECK(strstr(lc_last_error(), "inside the storage") != NULL);
    CHECK(lc_tensor_view(v, 2, off_shape, NULL, -1, LC_DEVICE_AUTO, &bad) == LC_ERR_INVALID_ARGUMENT && !bad);
    int64_t neg_strides[2] = {-1, 1};
    CHECK(lc_tensor_view(v, 2, off_shape, neg_strides, 0, LC_DEVICE_AUTO, &bad) == LC_ERR_INVALID_ARGUMENT && !bad);
    int64_t row_shape[1] = {4};
    CHECK(lc_tensor_view(v, 1, row_shape, NULL, 8, LC_DEVICE_CPU, &bad) == LC_OK && bad);
    lc_tensor_free(bad);
    bad = NULL;
    /* views live on their tensor's device */
    CHECK(lc_tensor_view(v, 1, row_shape, NULL, 0, LC_DEVICE_CUDA, &bad) == LC_ERR_INVALID_ARGUMENT && !bad);
    CHECK(strstr(lc_last_error(), "device") != NULL);
    /* size checks on transfers */
    CHECK(lc_tensor_to_host(v, tv, sizeof tv - 4) == LC_ERR_INVALID_ARGUMENT);
    lc_tensor_free(v);
    lc_tensor_free(NULL);
}

static void test_wrap_host(void) {
    double data[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    lc_tensor_t *t = NULL;
    CHECK(lc_tensor_wrap_host(data, LC_DTYPE_F64, 2, shape, NULL, 0, &t) == LC_OK);
    CHECK(lc_tensor_data(t) == data && !lc_tensor_is_writable(t));
    double src[6] = {0};
    CHECK(lc_tensor_copy_from_host(t, src, sizeof src) == LC_ERR_INVALID_ARGUMENT && data[0] == 1.0);
    lc_tensor_free(t);
}

typedef struct {
    atomic_int *hits;
    int64_t n;
} cover_ctx;

static void cover_fn(void *p, int64_t begin, int64_t end) {
    cover_ctx *c = p;
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&c->hits[i], 1);
}

static int pool_covers_once(int64_t n, int64_t grain) {
    static atomic_int hits[100000];
    for (int64_t i = 0; i < n; i++) atomic_store(&hits[i], 0);
    cover_ctx c = {hits, n};
    lc_parallel_for(n, grain, cover_fn, &c);
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&hits[i]) != 1) return 0;
    return 1;
}

typedef struct {
    double sum;
    pthread_mutex_t mu;
} sum_ctx;

static void sum_fn(void *p, int64_t begin, int64_t end) {
    sum_ctx *c = p;
    double local = 0;
    for (int64_t i = begin; i < end; i++) local += (double)i;
    pthread_mutex_lock(&c->mu);
    c->sum += local;
    pthread_mutex_unlock(&c->mu);
}

static void *concurrent_caller(void *arg) {
    int *ok = arg;
    *ok = 1;
    for (int rep = 0; rep < 200; rep++) {
        sum_ctx c = {0, PTHREAD_MUTEX_INITIALIZER};
        int64_t n = 1000 + rep;
        lc_parallel_for(n, 7, sum_fn, &c);
        if (c.sum != (double)n * (double)(n - 1) / 2.0) *ok = 0;
    }
    return NULL;
}

static void test_pool(void) {
    CHECK(lc_num_threads() >= 1);
    CHECK(pool_covers_once(1, 1));
    CHECK(pool_covers_once(7, 1));
    CHECK(pool_covers_once(1000, 3));
    CHECK(pool_covers_once(99999, 64));
    CHECK(pool_covers_once(5, 100));
    pthread_t th[4];
    int ok[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, concurrent_caller, &ok[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(ok[i]);
    }
    int before = lc_num_threads();
    CHECK(lc_set_num_threads(3) == LC_OK && lc_num_threads() == 3);
    CHECK(pool_covers_once(50000, 10));
    CHECK(lc_set_num_threads(1) == LC_OK && pool_covers_once(5000, 1));
    CHECK(lc_set_num_threads(0) == LC_ERR_INVALID_ARGUMENT);
    /* Regression: the first job after a (re)start must reach workers that start after it was posted
     * (a lost wake-up once hung the submitter). */
    int restarts_ok = 1;
    for (int i = 0; i < 300 && restarts_ok; i++) {
        lc_set_num_threads(2 + i % 3);
        restarts_ok = pool_covers_once(4096, 1);
    }
    CHECK(restarts_ok);
    CHECK(lc_set_num_threads(before) == LC_OK);
}

static void test_devices_and_policy(void) {
    lc_device d;
    CHECK(lc_device_parse("cpu", &d) == LC_OK && d == LC_DEVICE_CPU);
    CHECK(lc_device_parse("metal", &d) == LC_OK && d == LC_DEVICE_METAL);
    CHECK(lc_device_parse("auto", &d) == LC_OK && d == LC_DEVICE_AUTO);
    CHECK(lc_device_parse("gpu", &d) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "'gpu'") != NULL);
    CHECK(lc_device_parse("CPU", &d) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_device_available(LC_DEVICE_CPU) && !lc_device_built(LC_DEVICE_METAL));
    CHECK(strcmp(lc_backend_name(), lc_device_available(LC_DEVICE_CUDA) ? "cuda" : "cpu") == 0);
    CHECK(strlen(lc_cpu_features()) > 0 && strlen(lc_version()) > 0);

    float x[5] = {-1.0f, 2.0f, -3.0f, 4.0f, 0.5f}, y[5];
    int64_t shape[1] = {5};
    lc_tensor_t *tx = NULL, *ty = NULL;
    CHECK(lc_tensor_wrap_host(x, LC_DTYPE_F32, 1, shape, NULL, 0, &tx) == LC_OK);
    CHECK(lc_tensor_wrap_host(y, LC_DTYPE_F32, 1, shape, NULL, 1, &ty) == LC_OK);
    lc_dispatch_info info;
    lc_set_strict_device(0);
    CHECK(lc_relu(tx, ty, LC_DEVICE_METAL) == LC_OK && y[0] == 0.0f && y[3] == 4.0f);
    lc_last_dispatch(&info);
    CHECK(info.op && strcmp(info.op, "relu") == 0 && info.requested == LC_DEVICE_METAL);
    CHECK(info.reason == LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE);
    CHECK(strcmp(lc_reason_code(info.reason), "fallback_preferred_unavailable") == 0);
    CHECK(lc_relu(tx, ty, LC_DEVICE_CPU) == LC_OK);
    lc_last_dispatch(&info);
    CHECK(info.reason == LC_REASON_DIRECT && info.selected == LC_DEVICE_CPU);
    lc_set_strict_device(1);
    for (int i = 0; i < 5; i++) y[i] = NAN;
    CHECK(lc_relu(tx, ty, LC_DEVICE_METAL) == LC_ERR_DEVICE_UNAVAILABLE && isnan(y[0]));
    CHECK(strstr(lc_last_error(), "strict") != NULL);
    if (!lc_device_available(LC_DEVICE_CUDA)) CHECK(lc_relu(tx, ty, LC_DEVICE_CUDA) == LC_ERR_DEVICE_UNAVAILABLE);
    CHECK(lc_relu(tx, ty, LC_DEVICE_CPU) == LC_OK);
    lc_set_strict_device(0);
    lc_tensor_free(tx);
    lc_tensor_free(ty);
}

static void test_trace(void) {
    float x[5] = {-1.0f, 2.0f, -3.0f, 4.0f, 0.5f}, y[5];
    int64_t shape[1] = {5};
    lc_tensor_t *tx = NULL, *ty = NULL;
    lc_tensor_wrap_host(x, LC_DTYPE_F32, 1, shape, NULL, 0, &tx);
    lc_tensor_wrap_host(y, LC_DTYPE_F32, 1, shape, NULL, 1, &ty);
    CHECK(lc_trace_set_capacity(0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_trace_set_capacity(4) == LC_OK && lc_trace_capacity() == 4);
    lc_trace_enable(0);
    lc_relu(tx, ty, LC_DEVICE_CPU);
    CHECK(lc_trace_count() == 0); /* off: nothing recorded */
    lc_trace_enable(1);
    for (int i = 0; i < 6; i++) CHECK(lc_relu(tx, ty, i % 2 ? LC_DEVICE_METAL : LC_DEVICE_CPU) == LC_OK);
    CHECK(lc_relu(tx, NULL, LC_DEVICE_CPU) != LC_OK); /* refused calls are not events */
    lc_trace_event ev[8];
    CHECK(lc_trace_count() == 4 && lc_trace_dropped() == 2);
    size_t n = lc_trace_events(ev, 8);
    CHECK(n == 4);
    for (size_t i = 0; i < n; i++) {
        CHECK(ev[i].seq == 2 + i && strcmp(ev[i].op, "relu") == 0 && ev[i].path != NULL);
        /* "metal" falls back to the best available device: with a GPU the host tensors are staged
         * (20 bytes up, 20 down) and the download makes the call synchronous. */
        const int staged = (i % 2) && lc_device_available(LC_DEVICE_CUDA);
        CHECK(ev[i].selected == (staged ? LC_DEVICE_CUDA : LC_DEVICE_CPU) && ev[i].synchronized);
        CHECK(ev[i].bytes_moved == (staged ? 40u : 0u));
        CHECK(ev[i].requested == (i % 2 ? LC_DEVICE_METAL : LC_DEVICE_CPU));
        CHECK(ev[i].reason == (i % 2 ? LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE : LC_REASON_DIRECT));
        if (i) CHECK(ev[i].start_ns >= ev[i - 1].start_ns + ev[i - 1].duration_ns);
    }
    CHECK(lc_trace_events(ev, 2) == 2 && ev[0].seq == 2);
    lc_trace_clear();
    CHECK(lc_trace_count() == 0 && lc_trace_events(ev, 8) == 0);
    lc_trace_enable(0);
    CHECK(lc_trace_set_capacity(65536) == LC_OK);
    lc_tensor_free(tx);
    lc_tensor_free(ty);
}

/* lc_tensor_wrap_external: zero-copy over external host memory, the deleter runs exactly once when the
 * last tensor/view over the storage is freed, never on a refused wrap. */
static int g_ext_deletes;
static void *g_ext_ctx_seen;
static void ext_deleter(void *ctx) {
    g_ext_deletes++;
    g_ext_ctx_seen = ctx;
}

static void test_wrap_external(void) {
    float buf[12];
    for (int i = 0; i < 12; i++) buf[i] = (float)i;
    int64_t shape[2] = {3, 4}, tshape[2] = {4, 3}, tstrides[2] = {1, 4};
    int tag = 7;
    g_ext_deletes = 0;
    lc_tensor_t *t = NULL, *v = NULL;
    CHECK(lc_tensor_wrap_external(buf, LC_DTYPE_F32, LC_DEVICE_CPU, 2, shape, NULL, 1, ext_deleter, &tag, &t) == LC_OK);
    CHECK(t && lc_tensor_data(t) == (void *)buf && lc_tensor_is_contiguous(t) && lc_tensor_is_writable(t));
    CHECK(lc_tensor_device(t) == LC_DEVICE_CPU && lc_tensor_storage_elems(t) == 12 && lc_tensor_validate(t) == LC_OK);
    CHECK(lc_tensor_view(t, 2, tshape, tstrides, 0, LC_DEVICE_AUTO, &v) == LC_OK); /* transposed alias */
    float got[12];
    CHECK(lc_tensor_to_host(v, got, sizeof got) == LC_OK && got[1] == 4.0f && got[3] == 1.0f);
    float ones[12];
    for (int i = 0; i < 12; i++) ones[i] = -1.0f;
    CHECK(lc_tensor_copy_from_host(t, ones, sizeof ones) == LC_OK && buf[11] == -1.0f); /* writes through */
    lc_tensor_free(t);
    CHECK(g_ext_deletes == 0); /* the view keeps the storage */
    lc_tensor_free(v);
    CHECK(g_ext_deletes == 1 && g_ext_ctx_seen == &tag);
    /* strided import (every other column): extent = (3-1)*4 + (2-1)*2 + 1 = 11 elements */
    int64_t sshape[2] = {3, 2}, sstrides[2] = {4, 2};
    CHECK(lc_tensor_wrap_external(buf, LC_DTYPE_F32, LC_DEVICE_CPU, 2, sshape, sstrides, 0, ext_deleter, NULL, &t) == LC_OK);
    CHECK(!lc_tensor_is_contiguous(t) && !lc_tensor_is_writable(t) && lc_tensor_storage_elems(t) == 11);
    CHECK(lc_tensor_copy_from_host(t, ones, 6 * sizeof(float)) == LC_ERR_INVALID_ARGUMENT); /* read-only */
    lc_tensor_free(t);
    CHECK(g_ext_deletes == 2 && g_ext_ctx_seen == NULL);
    /* a NULL deleter is allowed */
    CHECK(lc_tensor_wrap_external(buf, LC_DTYPE_F64, LC_DEVICE_CPU, 1, shape, NULL, 1, NULL, NULL, &t) == LC_OK);
    lc_tensor_free(t);
    /* refused wraps: nothing is wrapped and the deleter does not run */
    int64_t neg[2] = {4, -1}, bad_shape[2] = {3, 0};
    CHECK(lc_tensor_wrap_external(buf, LC_DTYPE_F32, LC_DEVICE_CPU, 2, shape, neg, 1, ext_deleter, NULL, &t) ==
              LC_ERR_INVALID_ARGUMENT && t == NULL);
    CHECK(lc_tensor_wrap_external(buf, LC_DTYPE_F32, LC_DEVICE_CPU, 2, bad_shape, NULL, 1, ext_deleter, NULL, &t) ==
          LC_ERR_SHAPE);
    CHECK(lc_tensor_wrap_external(NULL, LC_DTYPE_F32, LC_DEVICE_CPU, 2, shape, NULL, 1, ext_deleter, NULL, &t) ==
          LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_tensor_wrap_external(buf, LC_DTYPE_COUNT, LC_DEVICE_CPU, 2, shape, NULL, 1, ext_deleter, NULL, &t) ==
          LC_ERR_DTYPE);
    CHECK(lc_tensor_wrap_external(buf, LC_DTYPE_F32, LC_DEVICE_METAL, 2, shape, NULL, 1, ext_deleter, NULL, &t) !=
          LC_OK);
    if (!lc_device_available(LC_DEVICE_CUDA))
        CHECK(lc_tensor_wrap_external(buf, LC_DTYPE_F32, LC_DEVICE_CUDA, 2, shape, NULL, 1, ext_deleter, NULL, &t) ==
              LC_ERR_DEVICE_UNAVAILABLE);
    CHECK(g_ext_deletes == 2);
}

/* lc_tensor_prefetch: a hint, so what can be checked on any machine is its contract: 0..8 tensors, no NULL, LC_OK
 * and nothing changed for CPU tensors and views, errors named and the runtime usable after them. */
/* lc_decode_program_*'s argument contract (the model checks run in tests/python/test_decode_program.py): NULLs
 * and empty models are named errors, nothing is allocated, free(NULL) is a no-op */
static void test_decode_program_contract(void) {
    lc_decode_program_t *p = (lc_decode_program_t *)&p; /* poisoned: must come back NULL */
    CHECK(lc_decode_program_new(NULL, &p) == LC_ERR_INVALID_ARGUMENT && p == NULL);
    CHECK(strstr(lc_last_error(), "model") != NULL);
    lc_decode_model m;
    memset(&m, 0, sizeof m);
    CHECK(lc_decode_program_new(&m, NULL) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_decode_program_new(&m, &p) == LC_ERR_INVALID_ARGUMENT && p == NULL); /* no layers */
    CHECK(strstr(lc_last_error(), "layers") != NULL);
    m.arch = (lc_decode_arch)7;
    CHECK(lc_decode_program_new(&m, &p) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "arch") != NULL);
    lc_decode_layer layer;
    memset(&layer, 0, sizeof layer);
    m.arch = LC_DECODE_LLAMA;
    m.n_layers = 1;
    m.layers = &layer;
    CHECK(lc_decode_program_new(&m, &p) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "embed") != NULL);
    CHECK(lc_decode_program_step(NULL, NULL, NULL, NULL) == LC_ERR_INVALID_ARGUMENT);
    lc_decode_program_free(NULL);
}

static void test_prefetch(void) {
    float host[12];
    for (int i = 0; i < 12; i++) host[i] = (float)i;
    int64_t shape[2] = {3, 4}, vshape[2] = {4, 3}, vstrides[2] = {1, 4};
    lc_tensor_t *t = NULL, *v = NULL;
    CHECK(lc_tensor_from_host(host, sizeof host, LC_DTYPE_F32, LC_DEVICE_CPU, 2, shape, &t) == LC_OK);
    CHECK(lc_tensor_view(t, 2, vshape, vstrides, 0, LC_DEVICE_AUTO, &v) == LC_OK);
    const lc_tensor_t *ts[9] = {t, v, t, v, t, v, t, v, t};
    CHECK(lc_tensor_prefetch(ts, 2) == LC_OK && lc_tensor_prefetch(ts, 8) == LC_OK && lc_tensor_prefetch(NULL, 0) == LC_OK);
    CHECK(lc_tensor_prefetch(ts, 9) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "expected 0..8 tensors, got 9"));
    CHECK(lc_tensor_prefetch(ts, -1) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_tensor_prefetch(NULL, 1) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "tensors: expected an array"));
    const lc_tensor_t *holes[2] = {t, NULL};
    CHECK(lc_tensor_prefetch(holes, 2) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "tensors[1]: expected a tensor"));
    float back[12];
    CHECK(lc_tensor_to_host(t, back, sizeof back) == LC_OK && memcmp(back, host, sizeof back) == 0);
    lc_tensor_free(v);
    lc_tensor_free(t);
}

int main(void) {
    test_status();
    test_prefetch();
    test_decode_program_contract();
    test_shape_contract();
    test_views();
    test_wrap_host();
    test_pool();
    test_devices_and_policy();
    test_trace();
    test_wrap_external();
    printf("test_core: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
