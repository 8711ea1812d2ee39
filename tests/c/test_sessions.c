/* test_sessions.c — the C API of include/lightning_core/session.h and the sync policy / counters / device
 * timer of runtime.h, on every available device (cpu; cuda on the GPU machine): matmul and
 * conv->attention sessions against the float64 references with NaN-poisoned outputs, cached runs reading
 * the resident inputs, per-program graphs, capture refusals, and the error cases (each must fail with
 * the exact status and leave the session usable), and lc_session_run_polled stopping a maximal batch.
 * Seed: LC_TEST_SEED. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "lightning_core/lightning_core.h"
#include "check.h"


static uint64_t rng_state;
static double uniform(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53 * 2.0 - 1.0;
}

static void fill(float *f, double *d, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = f[i] = (float)uniform();
}

static double rel_err(const float *out, const double *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) return INFINITY;
        num += (out[i] - ref[i]) * (out[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static lc_tensor_t *host(float *data, int64_t n) {
    lc_tensor_t *t = NULL;
    const int64_t shape[1] = {n};
    lc_tensor_wrap_host(data, LC_DTYPE_F32, 1, shape, NULL, 1, &t);
    return t;
}

static void test_matmul_session(lc_device dev) {
    const int64_t m = 29, k = 41, n = 18;
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
    double *ad = malloc(sizeof(double) * m * k), *bd = malloc(sizeof(double) * k * n), *cd = malloc(sizeof(double) * m * n);
    fill(a, ad, m * k);
    fill(b, bd, k * n);
    lc_ref_matmul(m, k, n, ad, bd, cd);
    lc_tensor_t *ta = host(a, m * k), *tb = host(b, k * n), *tc = host(c, m * n);
    lc_session_t *s = NULL;
    CHECK(lc_session_new_matmul(m, k, n, dev, &s) == LC_OK && s);
    CHECK(lc_session_device(s) == dev && lc_session_num_inputs(s) == 2);
    CHECK(lc_session_run(s, 0, 1) == LC_ERR_INVALID_ARGUMENT); /* nothing uploaded yet */
    CHECK(lc_session_download(s, tc) == LC_ERR_INVALID_ARGUMENT); /* nothing computed yet */
    CHECK(lc_session_upload(s, 0, ta) == LC_OK && lc_session_upload(s, 1, tb) == LC_OK && lc_session_inputs_ready(s));
    CHECK(lc_session_upload(s, 2, ta) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_session_upload(s, 1, ta) == LC_ERR_SHAPE);
    CHECK(lc_session_run(s, 0, 0) == LC_ERR_INVALID_ARGUMENT && lc_session_run(s, 1, 1) == LC_ERR_INVALID_ARGUMENT);
    for (int64_t i = 0; i < m * n; i++) c[i] = NAN;
    CHECK(lc_session_run(s, 0, 3) == LC_OK && lc_session_sync(s) == LC_OK && lc_session_download(s, tc) == LC_OK);
    CHECK(rel_err(c, cd, m * n) < 1e-5);
    /* Cached runs read the resident inputs: changing the host array changes nothing. */
    for (int64_t i = 0; i < m * k; i++) a[i] = 0.0f;
    for (int64_t i = 0; i < m * n; i++) c[i] = NAN;
    CHECK(lc_session_run(s, 0, 5) == LC_OK && lc_session_download(s, tc) == LC_OK);
    CHECK(rel_err(c, cd, m * n) < 1e-5);
    CHECK(lc_session_runs(s) == 8);
    CHECK(lc_session_uses_graph(s, 0) == (dev == LC_DEVICE_CUDA));
    CHECK(lc_session_replays(s) == (dev == LC_DEVICE_CUDA ? 7 : 0));
    lc_session_free(s);
    lc_tensor_free(ta);
    lc_tensor_free(tb);
    lc_tensor_free(tc);
    free(a), free(b), free(c), free(ad), free(bd), free(cd);
}

static void test_conv_attention_session(lc_device dev) {
    lc_conv_attention_shape sh = {1, 3, 8, 8, 16, 1, 1, 1, 1, 40, 24, 1};
    const int64_t nx = 3 * 64, nw = 16 * 27, nb = 16, ny = 16 * 64, nq = 40 * 24;
    float x[3 * 64], w[16 * 27], bias[16], out[40 * 24];
    double xd[3 * 64], wd[16 * 27], bd[16], yd[16 * 64], qkv[3 * 40 * 24], ref[40 * 24];
    fill(x, xd, nx);
    fill(w, wd, nw);
    fill(bias, bd, nb);
    lc_conv2d_args ca = {.n = 1, .c = 3, .h = 8, .w = 8, .oc = 16, .kh = 3, .kw = 3, .oh = 8, .ow = 8,
                         .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1, .apply_relu = 1};
    lc_ref_conv2d(&ca, xd, wd, bd, yd);
    for (int64_t i = 0; i < 3 * nq; i++) qkv[i] = yd[i % ny];
    lc_ref_attention(40, 24, 1, qkv, qkv + nq, qkv + 2 * nq, ref);
    lc_session_t *s = NULL;
    CHECK(lc_session_new_conv_attention(&sh, dev, &s) == LC_OK);
    lc_tensor_t *tx = host(x, nx), *tw = host(w, nw), *tb = host(bias, nb), *to = host(out, nq);
    CHECK(lc_session_upload(s, 0, tx) == LC_OK && lc_session_upload(s, 1, tw) == LC_OK && lc_session_upload(s, 2, tb) == LC_OK);
    for (int rep = 0; rep < 3; rep++) { /* eager, then capture + replay on cuda */
        for (int64_t i = 0; i < nq; i++) out[i] = NAN;
        CHECK(lc_session_run(s, 0, 2) == LC_OK && lc_session_download(s, to) == LC_OK);
        CHECK(rel_err(out, ref, nq) < 1e-5);
    }
    lc_session_free(s);
    lc_conv_attention_shape bad = sh;
    bad.pad_h = bad.pad_w = 0;
    bad.h = bad.w = 2;
    CHECK(lc_session_new_conv_attention(&bad, dev, &s) == LC_ERR_SHAPE);
    lc_tensor_free(tx), lc_tensor_free(tw), lc_tensor_free(tb), lc_tensor_free(to);
}

static void test_policy_counters_timer(void) {
    lc_sync_policy p;
    CHECK(lc_sync_policy_parse("never", &p) == LC_OK && p == LC_SYNC_NEVER);
    CHECK(lc_sync_policy_parse("sometimes", &p) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "sometimes"));
    CHECK(lc_set_sync_policy((lc_sync_policy)7) == LC_ERR_INVALID_ARGUMENT);
    const lc_sync_policy before = lc_get_sync_policy();
    CHECK(lc_set_sync_policy(LC_SYNC_ALWAYS) == LC_OK && lc_effective_sync_policy() == LC_SYNC_ALWAYS);
    CHECK(lc_set_thread_sync_policy(LC_SYNC_NEVER) == LC_OK && lc_effective_sync_policy() == LC_SYNC_NEVER);
    CHECK(lc_get_thread_sync_policy() == LC_SYNC_NEVER);
    CHECK(lc_set_thread_sync_policy(-1) == LC_OK && lc_effective_sync_policy() == LC_SYNC_ALWAYS);
    CHECK(lc_set_sync_policy(before) == LC_OK);
    CHECK(strcmp(lc_sync_policy_name(LC_SYNC_AUTO), "auto") == 0);
    lc_reset_runtime_counters();
    lc_runtime_counters c;
    lc_get_runtime_counters(&c);
    CHECK(c.syncs == 0 && c.dispatches == 0 && c.graph_launches == 0);
    lc_device_timer_t *t = NULL;
    double ms = -1;
    CHECK(lc_device_timer_start(LC_DEVICE_CPU, &t) == LC_OK && lc_device_timer_stop(t, &ms) == LC_OK && ms >= 0);
    CHECK(lc_device_timer_start(LC_DEVICE_AUTO, &t) == LC_ERR_INVALID_ARGUMENT);
    /* capture is CUDA only */
    CHECK(lc_capture_begin(LC_DEVICE_CPU) == LC_ERR_INVALID_ARGUMENT && !lc_capture_active());
    CHECK(lc_capture_end(1, NULL) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_device_graph_replay(NULL, 1) == LC_ERR_INVALID_ARGUMENT);
}

static void test_qkv_pack(lc_device dev) {
    float src[7], dst[17];
    for (int i = 0; i < 7; i++) src[i] = (float)i + 0.5f;
    for (int i = 0; i < 17; i++) dst[i] = NAN;
    lc_tensor_t *ts = host(src, 7), *td = host(dst, 17);
    CHECK(lc_qkv_pack_repeat(ts, td, dev) == LC_OK);
    for (int i = 0; i < 17; i++) CHECK(dst[i] == src[i % 7]);
    CHECK(lc_qkv_pack_repeat(ts, ts, dev) == LC_ERR_INVALID_ARGUMENT); /* overlap */
    lc_tensor_free(ts), lc_tensor_free(td);
}

/* lc_session_run_polled: a poll that says stop ends a LC_SESSION_MAX_LOOPS batch early (done < loops,
 * runs == done, the result right, the session usable); loops beyond the maximum are refused. */
static int poll_calls;
static int poll_stop(void *ctx) {
    poll_calls++;
    return *(const int *)ctx;
}

static void test_polled_run(lc_device dev) {
    const int64_t m = 48;
    float *a = malloc(sizeof(float) * m * m), *c = malloc(sizeof(float) * m * m);
    double *ad = malloc(sizeof(double) * m * m), *cd = malloc(sizeof(double) * m * m);
    fill(a, ad, m * m);
    lc_ref_matmul(m, m, m, ad, ad, cd);
    lc_tensor_t *ta = host(a, m * m), *tc = host(c, m * m);
    lc_session_t *s = NULL;
    CHECK(lc_session_new_matmul(m, m, m, dev, &s) == LC_OK);
    CHECK(lc_session_upload(s, 0, ta) == LC_OK && lc_session_upload(s, 1, ta) == LC_OK);
    CHECK(lc_session_run(s, 0, LC_SESSION_MAX_LOOPS + 1) == LC_ERR_INVALID_ARGUMENT && lc_session_runs(s) == 0);
    int64_t done = -1;
    int stop = 1;
    poll_calls = 0;
    CHECK(lc_session_run_polled(s, 0, LC_SESSION_MAX_LOOPS, poll_stop, &stop, &done) == LC_OK);
    CHECK(poll_calls == 1 && done >= 1 && done < LC_SESSION_MAX_LOOPS && lc_session_runs(s) == done);
    for (int64_t i = 0; i < m * m; i++) c[i] = NAN;
    CHECK(lc_session_sync(s) == LC_OK && lc_session_download(s, tc) == LC_OK && rel_err(c, cd, m * m) < 1e-5);
    stop = 0;
    poll_calls = 0;
    const int64_t before = lc_session_runs(s);
    CHECK(lc_session_run_polled(s, 0, 3, poll_stop, &stop, &done) == LC_OK && done == 3 && poll_calls == 0);
    CHECK(lc_session_runs(s) == before + 3);
    lc_session_free(s);
    lc_tensor_free(ta);
    lc_tensor_free(tc);
    free(a);
    free(c);
    free(ad);
    free(cd);
}

int main(void) {
    const char *seed = getenv("LC_TEST_SEED");
    rng_state = seed ? strtoull(seed, NULL, 10) : 20240531ull;
    printf("test_sessions: LC_TEST_SEED=%llu\n", (unsigned long long)rng_state);
    lc_device devs[2] = {LC_DEVICE_CPU, LC_DEVICE_CUDA};
    for (int i = 0; i < 2; i++) {
        if (!lc_device_available(devs[i])) {
            printf("test_sessions: %s not available, skipped\n", lc_device_name(devs[i]));
            continue;
        }
        test_matmul_session(devs[i]);
        test_conv_attention_session(devs[i]);
        test_polled_run(devs[i]);
        test_qkv_pack(devs[i]);
        printf("test_sessions: %s done\n", lc_device_name(devs[i]));
    }
    test_policy_counters_timer();
    printf("test_sessions: %s (%d failure%s)\n", g_fail ? "FAILED" : "passed", g_fail, g_fail == 1 ? "" : "s");
    return g_fail ? 1 : 0;
}
