/* test_plan.c — the C API of graph planning and execution (include/lightning_core/graph.h): a
 * matmul -> bias_add -> relu graph and a layer_norm -> matmul graph planned fused and unfused on every
 * available device against float64 references with NaN-poisoned outputs, the explain records, the plan
 * cache counters, the summary, and the error cases (each with its exact status); lc_graph_version
 * (bumped by every mutation) and one plan shared by threads through lc_graph_plan_run (every result
 * checked against its own inputs' reference). Seed: LC_TEST_SEED. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lightning_core/lightning_core.h"
#include "check.h"


static uint64_t rng_state;
static float urand(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (float)((double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static lc_tensor_t *host_tensor(float *data, int ndim, const int64_t *shape) {
    lc_tensor_t *t = NULL;
    lc_tensor_wrap_host(data, LC_DTYPE_F32, ndim, shape, NULL, 1, &t);
    return t;
}

enum { M = 23, K = 19, N = 17 };

static void test_linear_chain(lc_device dev) {
    static float x[M * K], w[K * N], b[N], out[M * N];
    double ref[M * N];
    for (int i = 0; i < M * K; i++) x[i] = urand();
    for (int i = 0; i < K * N; i++) w[i] = urand();
    for (int i = 0; i < N; i++) b[i] = urand();
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = b[j];
            for (int p = 0; p < K; p++) acc += (double)x[i * K + p] * w[p * N + j];
            ref[i * N + j] = acc > 0 ? acc : 0;
        }
    const int64_t xs[2] = {M, K}, ws[2] = {K, N}, bs[1] = {N}, os[2] = {M, N};
    lc_tensor_t *tw = host_tensor(w, 2, ws), *tb = host_tensor(b, 1, bs), *tx = host_tensor(x, 2, xs), *to = host_tensor(out, 2, os);
    lc_graph_t *g = NULL;
    CHECK(lc_graph_new(&g) == LC_OK);
    lc_value_id vx, vw, vb, mm, ba, r;
    CHECK(lc_graph_input(g, "x", 2, xs, &vx) == LC_OK && lc_graph_constant(g, "w", tw, &vw) == LC_OK &&
          lc_graph_constant(g, "b", tb, &vb) == LC_OK);
    lc_value_id in1[2] = {vx, vw};
    CHECK(lc_graph_add(g, "matmul", in1, 2, NULL, "mm", &mm) == LC_OK);
    lc_value_id in2[2] = {mm, vb};
    CHECK(lc_graph_add(g, "bias_add", in2, 2, NULL, "ba", &ba) == LC_OK);
    CHECK(lc_graph_add(g, "relu", &ba, 1, NULL, "r", &r) == LC_OK);
    lc_graph_plan_t *p = NULL;
    lc_graph_plan_options opt = {dev, -1, 1};
    CHECK(lc_graph_plan_new(g, &opt, &p) == LC_ERR_INVALID_ARGUMENT && !p); /* no output marked */
    CHECK(lc_graph_mark_output(g, r) == LC_OK);
    for (int fuse = 1; fuse >= 0; fuse--) {
        opt.fuse = fuse;
        CHECK(lc_graph_plan_new(g, &opt, &p) == LC_OK);
        if (!p) continue;
        CHECK(lc_graph_plan_num_inputs(p) == 1 && lc_graph_plan_num_outputs(p) == 1);
        CHECK(lc_graph_plan_execute(p, 1) == LC_ERR_INVALID_ARGUMENT); /* nothing uploaded */
        CHECK(lc_graph_plan_download(p, 0, to) == LC_ERR_INVALID_ARGUMENT); /* nothing computed */
        CHECK(lc_graph_plan_upload(p, 0, tx) == LC_OK);
        CHECK(lc_graph_plan_upload(p, 1, tx) == LC_ERR_INVALID_ARGUMENT);
        for (int i = 0; i < M * N; i++) out[i] = NAN;
        CHECK(lc_graph_plan_execute(p, 3) == LC_OK && lc_graph_plan_download(p, 0, to) == LC_OK);
        double err = 0;
        for (int i = 0; i < M * N; i++) err = fmax(err, isnan(out[i]) ? INFINITY : fabs(out[i] - ref[i]));
        CHECK(err < 1e-4);
        lc_graph_plan_summary s;
        CHECK(lc_graph_plan_get_summary(p, &s) == LC_OK && s.device == dev && s.runs == 3);
        CHECK(s.steps == (fuse ? 1 : 3) && s.fused_steps == (fuse ? 1 : 0));
        CHECK(s.uses_graph == (dev == LC_DEVICE_CUDA) && s.replays == (dev == LC_DEVICE_CUDA ? 2 : 0));
        lc_graph_fusion_record rec;
        CHECK(lc_graph_plan_explain_count(p) == 1 && lc_graph_plan_explain(p, 0, &rec) == LC_OK);
        CHECK(strcmp(rec.rule, "matmul_bias_act") == 0 && rec.fired == fuse && strcmp(rec.nodes, "mm+ba+r") == 0);
        CHECK(rec.est_unfused_us > 0 && (!fuse || rec.expected_speedup > 1.0));
        CHECK(strcmp(rec.reason, fuse ? "fired" : "fusion_disabled") == 0);
        CHECK(lc_graph_plan_explain(p, 1, &rec) == LC_ERR_INVALID_ARGUMENT);
        lc_graph_plan_free(p);
        p = NULL;
    }
    lc_graph_free(g);
    lc_tensor_free(tw), lc_tensor_free(tb), lc_tensor_free(tx), lc_tensor_free(to);
}

static void test_cache(void) {
    lc_graph_plan_cache_clear();
    lc_graph_plan_cache_stats st;
    const int64_t s2[2] = {4, 4};
    for (int round = 0; round < 2; round++) {
        lc_graph_t *g = NULL;
        lc_value_id a, r;
        CHECK(lc_graph_new(&g) == LC_OK && lc_graph_input(g, "a", 2, s2, &a) == LC_OK &&
              lc_graph_add(g, "relu", &a, 1, NULL, NULL, &r) == LC_OK && lc_graph_mark_output(g, r) == LC_OK);
        lc_graph_plan_t *p = NULL;
        lc_graph_plan_options opt = {LC_DEVICE_CPU, -1, 1};
        CHECK(lc_graph_plan_new(g, &opt, &p) == LC_OK);
        lc_graph_plan_summary s;
        CHECK(p && lc_graph_plan_get_summary(p, &s) == LC_OK && s.cache_hit == round);
        lc_graph_plan_free(p);
        lc_graph_free(g);
    }
    lc_graph_plan_cache_get_stats(&st);
    CHECK(st.hits == 1 && st.misses == 1 && st.entries == 1);
    lc_graph_plan_options bad = {LC_DEVICE_CPU, 7, 1};
    lc_graph_plan_t *p = NULL;
    lc_graph_t *g = NULL;
    CHECK(lc_graph_new(&g) == LC_OK);
    CHECK(lc_graph_plan_new(g, &bad, &p) == LC_ERR_INVALID_ARGUMENT && !p);
    CHECK(lc_graph_plan_new(NULL, NULL, &p) == LC_ERR_INVALID_ARGUMENT);
    lc_graph_free(g);
    lc_graph_plan_cache_clear();
    lc_graph_plan_cache_get_stats(&st);
    CHECK(st.hits == 0 && st.misses == 0 && st.entries == 0);
}

static void test_version(void) {
    lc_graph_t *g = NULL;
    CHECK(lc_graph_version(NULL) == 0 && lc_graph_new(&g) == LC_OK && lc_graph_version(g) == 0);
    const int64_t s2[2] = {3, 3};
    lc_value_id a, c, r, q;
    uint64_t v = lc_graph_version(g);
    CHECK(lc_graph_input(g, "a", 2, s2, &a) == LC_OK && lc_graph_version(g) > v);
    v = lc_graph_version(g);
    CHECK(lc_graph_input(g, "a", 2, s2, &c) == LC_ERR_INVALID_ARGUMENT && lc_graph_version(g) == v); /* refused: unchanged */
    static float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    lc_tensor_t *t = host_tensor(ones, 2, s2);
    CHECK(lc_graph_constant(g, "c", t, &c) == LC_OK && lc_graph_version(g) > v);
    v = lc_graph_version(g);
    CHECK(lc_graph_add(g, "relu", &a, 1, NULL, NULL, &r) == LC_OK && lc_graph_version(g) > v);
    v = lc_graph_version(g);
    CHECK(lc_graph_mark_output(g, r) == LC_OK && lc_graph_version(g) > v);
    v = lc_graph_version(g);
    CHECK(lc_graph_mark_output(g, r) == LC_OK && lc_graph_version(g) == v); /* already an output */
    CHECK(lc_graph_add_unchecked(g, "relu", &a, 1, NULL, NULL, 2, s2, LC_DTYPE_F32, -1, &q) == LC_OK && lc_graph_version(g) > v);
    v = lc_graph_version(g);
    CHECK(lc_graph_rewire_unchecked(g, 0, 0, c) == LC_OK && lc_graph_version(g) > v);
    v = lc_graph_version(g);
    (void)lc_graph_hash(g);
    CHECK(lc_graph_node_count(g) == 2 && lc_graph_version(g) == v); /* queries leave it */
    lc_graph_free(g);
    lc_tensor_free(t);
}

/* One plan, relu(x @ w), run by THREADS threads at once through lc_graph_plan_run with their own x. */
enum { PN = 24, THREADS = 4, RUNS = 150 };
static float shared_w[PN * PN];
static lc_graph_plan_t *shared_plan;

static void *plan_worker(void *arg) {
    const int tid = (int)(intptr_t)arg;
    static const int64_t s2[2] = {PN, PN};
    float x[PN * PN], out[PN * PN];
    long bad = 0;
    uint64_t st = 0x1234567ull * (uint64_t)(tid + 1);
    for (int it = 0; it < RUNS; it++) {
        for (int i = 0; i < PN * PN; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)((double)(st >> 11) * 0x1.0p-53 - 0.5);
            out[i] = NAN;
        }
        lc_tensor_t *tx = host_tensor(x, 2, s2), *to = host_tensor(out, 2, s2);
        const lc_tensor_t *ins[1] = {tx};
        lc_tensor_t *outs[1] = {to};
        if (lc_graph_plan_run(shared_plan, ins, 1, outs, 1) != LC_OK) bad++;
        for (int i = 0; i < PN; i++)
            for (int j = 0; j < PN; j++) {
                double acc = 0;
                for (int p = 0; p < PN; p++) acc += (double)x[i * PN + p] * shared_w[p * PN + j];
                if (acc < 0) acc = 0;
                if (!(fabs(out[i * PN + j] - acc) <= 1e-4)) bad++;
            }
        lc_tensor_free(tx), lc_tensor_free(to);
    }
    return (void *)(intptr_t)bad;
}

static void test_shared_plan_threads(void) {
    const int64_t s2[2] = {PN, PN};
    for (int i = 0; i < PN * PN; i++) shared_w[i] = urand();
    lc_tensor_t *tw = host_tensor(shared_w, 2, s2);
    lc_graph_t *g = NULL;
    lc_value_id x, w, mm, r;
    CHECK(lc_graph_new(&g) == LC_OK && lc_graph_input(g, "x", 2, s2, &x) == LC_OK && lc_graph_constant(g, "w", tw, &w) == LC_OK);
    lc_value_id in[2] = {x, w};
    CHECK(lc_graph_add(g, "matmul", in, 2, NULL, NULL, &mm) == LC_OK && lc_graph_add(g, "relu", &mm, 1, NULL, NULL, &r) == LC_OK &&
          lc_graph_mark_output(g, r) == LC_OK);
    lc_graph_plan_options opt = {LC_DEVICE_CPU, -1, 0};
    CHECK(lc_graph_plan_new(g, &opt, &shared_plan) == LC_OK);
    /* argument errors: wrong input count, too many outputs, NULL input */
    const lc_tensor_t *none[1] = {NULL};
    CHECK(lc_graph_plan_run(shared_plan, NULL, 0, NULL, 0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_graph_plan_run(shared_plan, none, 1, NULL, 0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_graph_plan_run(shared_plan, none, 1, NULL, 2) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_graph_plan_run(NULL, none, 1, NULL, 0) == LC_ERR_INVALID_ARGUMENT);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) CHECK(pthread_create(&th[t], NULL, plan_worker, (void *)(intptr_t)t) == 0);
    long bad = 0;
    for (int t = 0; t < THREADS; t++) {
        void *ret = NULL;
        pthread_join(th[t], &ret);
        bad += (long)(intptr_t)ret;
    }
    CHECK(bad == 0);
    lc_graph_plan_summary s;
    CHECK(lc_graph_plan_get_summary(shared_plan, &s) == LC_OK && s.runs == THREADS * RUNS);
    lc_graph_plan_free(shared_plan);
    lc_graph_free(g);
    lc_tensor_free(tw);
}

int main(void) {
    const char *seed = getenv("LC_TEST_SEED");
    rng_state = seed ? strtoull(seed, NULL, 10) : 20240531ull;
    printf("test_plan: LC_TEST_SEED=%llu\n", (unsigned long long)rng_state);
    test_linear_chain(LC_DEVICE_CPU);
    if (lc_device_available(LC_DEVICE_CUDA)) test_linear_chain(LC_DEVICE_CUDA);
    else printf("test_plan: cuda not available, skipped\n");
    test_cache();
    test_version();
    test_shared_plan_threads();
    printf("test_plan: %s (%d failure%s)\n", g_fail ? "FAILED" : "passed", g_fail, g_fail == 1 ? "" : "s");
    return g_fail ? 1 : 0;
}
