/* test_gemv_cuda.c — the small-m 16-bit linear (src/backend/cuda/gemv_cuda.cu) called directly through
 * lc_cuda_launch_gemv: float16 and bfloat16, m = 1..8, awkward k (1, 7, 63, 65, 1000, 4099, 16384) and n (8,
 * 24, 264, 2056, 50264), every activation, with and without bias, x at an odd address, unsplit plans (num_sms
 * 1) and split-k plans (the counter per tile: every case runs three times, then ten replays of a captured CUDA
 * graph, each result bit-identical to the first: deterministic and the counters back at 0), NaN in x reaching
 * exactly its row and NaN in w exactly its column. Reference: float64 from the same 16-bit inputs; bound per
 * element u·|ref| + 1.2·(2k·2^-24·(Σ|x||w| + |bias|)) + 1e-6·|ref| (one rounding, float32 sums, activation
 * Lipschitz <= 1.13, its float32 evaluation), outputs poisoned before every run. SwiGLU prologue cases
 * (lc_cuda_launch_gemv_norm, kind LC_NORM_SWIGLU; x is gu [m, 2k]): the reference's x is h = silu(g)·u in
 * float64, and the bound adds 1.2·((u + 8·2^-24)·Σ|h||w| + half a subnormal·Σ|w|) for h's rounding to the dtype
 * and its float32 evaluation. lc_cuda_gemv_fits refusals
 * are host checks (run without a GPU); the rest needs one (exit 77, skipped, otherwise).
 * LC_TEST_VERBOSE=1: a timing table (m = 1, bfloat16) of microseconds a call and GB/s of w read, lc_linear
 * through the GEMV vs LC_GEMV=0 (cuBLASLt + epilogue), each a captured graph cycling over enough weight copies
 * to leave the L2 cache behind, plus the direct launch at half and twice the SM count (the split plan's A/B)
 * and the [n, k] tile and ring kernels' (LC_GEMV_RING=0 / 1); informational, no thresholds. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOWP_SEED 0x6e3f1a2b9c0d7e55ull
#include "lowp_check.h"

#ifdef LC_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_kernels.h"
#include "lightning_core/session.h"

#define CUDA_OK(expr) CHECK((expr) == cudaSuccess)

static const char *act_name(lc_activation a) {
    static const char *const n[] = {"none", "relu", "gelu_erf", "gelu_tanh"};
    return (int)a >= 0 && a < LC_ACT_COUNT ? n[a] : "?";
}

static double act_ref(lc_activation a, double v) {
    switch (a) {
    case LC_ACT_RELU: return v < 0 ? 0 : v;
    case LC_ACT_GELU_ERF: return 0.5 * v * erfc(-v / sqrt(2.0));
    case LC_ACT_GELU_TANH: return 0.5 * v * (1 + tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v))); /* sqrt(2/pi) */
    default: return v;
    }
}

/* fits() is a host check: its refusals run without a GPU. */
static void test_fits(void) {
    static _Alignas(16) uint16_t buf[4096];
    lc_linear_args a = {.dtype = LC_DTYPE_BF16, .m = 1, .k = 16, .n = 64, .act = LC_ACT_NONE, .x = buf + 1,
                        .w = buf + 512, .bias = buf + 2048, .out = buf + 2560};
    CHECK(lc_cuda_gemv_fits(&a) == 1); /* x at any address */
    lc_linear_args r;
#define REFUSED(change)                                                                                        \
    do {                                                                                                       \
        r = a;                                                                                                 \
        change;                                                                                                \
        CHECK(lc_cuda_gemv_fits(&r) == 0);                                                                     \
        CHECK(lc_cuda_launch_gemv(&r, NULL, 0, 132, 0) == cudaErrorInvalidValue);                              \
    } while (0)
    REFUSED(r.dtype = LC_DTYPE_F32);
    REFUSED(r.m = 0);
    REFUSED(r.m = LC_GEMV_MAX_M + 1);
    REFUSED(r.k = 0);
    REFUSED(r.n = 60);
    REFUSED(r.n = 4);
    REFUSED(r.w = buf + 516);
    REFUSED(r.out = buf + 2562);
    REFUSED(r.bias = buf + 2049);
    REFUSED(r.act = LC_ACT_COUNT);
    REFUSED(r.x = NULL);
    /* w_t (w is the transpose of [n, k]): k a multiple of 8 and w 16-byte aligned; any n, out and bias element-wise */
    r = a, r.w_t = 1, r.n = 7, r.out = buf + 2561, r.bias = buf + 2049;
    CHECK(lc_cuda_gemv_fits(&r) == 1);
    REFUSED(r.w_t = 1; r.k = 12);
    REFUSED(r.w_t = 1; r.k = 4);
    REFUSED(r.w_t = 1; r.w = buf + 516);
    REFUSED(r.w_t = 1; r.m = LC_GEMV_MAX_M + 1);
    REFUSED(r.w_t = 1; r.dtype = LC_DTYPE_F32);
#undef REFUSED
    /* the prologue launch: a norm kind takes no residual and needs eps > 0; an unknown kind is refused */
    lc_norm_linear_args na = {.lin = a, .kind = LC_NORM_RMS, .eps = 1e-6};
    na.lin.residual = buf + 3072;
    CHECK(lc_cuda_launch_gemv_norm(&na, NULL, 0, 132, 0) == cudaErrorInvalidValue);
    na.lin.residual = NULL, na.eps = 0.0;
    CHECK(lc_cuda_launch_gemv_norm(&na, NULL, 0, 132, 0) == cudaErrorInvalidValue);
    na.kind = (lc_norm_kind)7, na.eps = 1e-6;
    CHECK(lc_cuda_launch_gemv_norm(&na, NULL, 0, 132, 0) == cudaErrorInvalidValue);
    na.kind = LC_NORM_SWIGLU, na.lin.n = 60; /* a SwiGLU launch still needs the GEMV's fit */
    CHECK(lc_cuda_launch_gemv_norm(&na, NULL, 0, 132, 0) == cudaErrorInvalidValue);
    r = a;
    r.bias = NULL, r.m = LC_GEMV_MAX_M, r.dtype = LC_DTYPE_F16, r.act = LC_ACT_GELU_TANH;
    CHECK(lc_cuda_gemv_fits(&r) == 1);
    /* the plan: no split when the tiles fill the GPU, a split (and a workspace) when they do not */
    int s = -1;
    CHECK(lc_cuda_gemv_workspace(1, 4096, 256 * 4096, 0, 132, &s) == 0 && s == 1);
    CHECK(lc_cuda_gemv_workspace(1, 4096, 256, 0, 132, &s) > 0 && s > 1);
    CHECK(lc_cuda_gemv_workspace(1, 7, 256, 0, 132, &s) == 0 && s == 1);
    CHECK(lc_cuda_gemv_workspace(0, 7, 256, 0, 132, &s) == 0 && s == 0);
    /* the [n, k] kernel (w_t) never splits k: no workspace, one split, where [k, n] would split */
    CHECK(lc_cuda_gemv_workspace(1, 4096, 256, 1, 132, &s) == 0 && s == 1);
    /* the one-wave split plan: a split grid never exceeds the resident blocks (3 a SM for m <= 3, 2 above: the
     * kernel's launch bounds), splits take >= 64 rows (all of k when shorter), the workspace holds one float32
     * [m, 256] partial per (tile, split); LLaMA 1.1B's gate+up (2048 x 11264) fills the 396 slots exactly */
    const int64_t shapes[][2] = {{768, 768}, {768, 2304}, {3072, 768}, {2048, 2560}, {2048, 11264}, {5632, 2048},
                                 {65, 264}, {4099, 2056}, {100000, 8}};
    const int smss[] = {1, 7, 132};
    int ndev = 0;
    const int have_gpu = cudaGetDeviceCount(&ndev) == cudaSuccess && ndev > 0;
    if (!have_gpu) (void)cudaGetLastError();
    const char *ce = getenv("LC_GEMV_CLUSTER");
    const int cluster_on = !(ce && strcmp(ce, "0") == 0);
    for (int64_t m = 1; m <= LC_GEMV_MAX_M; m++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (size_t j = 0; j < sizeof smss / sizeof smss[0]; j++) {
                const int64_t k = shapes[i][0], n = shapes[i][1], tiles = (n + 255) / 256;
                const int64_t slots = (int64_t)smss[j] * (m <= 3 ? 3 : 2);
                int sp = 0;
                const size_t ws = lc_cuda_gemv_workspace(m, k, n, 0, smss[j], &sp);
                CHECK(sp >= 1 && sp <= (k + 63) / 64);
                CHECK(sp == 1 || tiles * sp <= slots);
                /* 2..16 splits may add through a thread-block cluster (no workspace) unless LC_GEMV_CLUSTER=0;
                 * whether the clusters fit one wave depends on the device (none here: the workspace) */
                const int may_cluster = sp > 1 && sp <= 16 && cluster_on;
                const size_t full = sp > 1 ? (size_t)(tiles * sp * m * 256) * sizeof(float) : 0;
                CHECK(ws == full || (may_cluster && ws == 0));
                if (!have_gpu) CHECK(ws == full);
            }
    lc_cuda_gemv_workspace(1, 2048, 11264, 0, 132, &s);
    CHECK(44 * s == 396);
}

typedef struct {
    lc_dtype dt;
    int64_t m, k, n;
    lc_activation act;
    int bias;
    int sms;     /* num_sms given to the plan */
    int nan;     /* 1: a NaN in x row m-1 and in w column n/2 */
    int res;     /* residual: 0 none, 1 its own buffer, 2 out itself (out = act(x·w + b) + out) */
    int swiglu;  /* 1: x is gu [m, 2k], staged as silu(g)·u (the SwiGLU prologue) */
} gcase;

static double silu64(double v) { return v / (1.0 + exp(-v)); }

/* The GEMV launch of case c: plain, or with the SwiGLU prologue. */
static cudaError_t launch_case(const gcase *c, const lc_linear_args *a, void *ws, size_t ws_bytes, cudaStream_t st) {
    if (!c->swiglu) return lc_cuda_launch_gemv(a, ws, ws_bytes, c->sms, st);
    const lc_norm_linear_args na = {.lin = *a, .kind = LC_NORM_SWIGLU};
    return lc_cuda_launch_gemv_norm(&na, ws, ws_bytes, c->sms, st);
}

static int g_split_cases, g_plain_cases, g_nk_cases;
static int g_wt; /* 1: w uploaded as wᵀ [n, k] and launched with w_t (the [n, k] kernel) */

/* Runs one case: 3 direct launches and 10 replays of a captured graph; returns the number of bad elements. */
static int64_t run_case(const gcase *c) {
    const lc_dtype dt = c->dt;
    const int64_t m = c->m, k = c->k, n = c->n;
    const int64_t xk = c->swiglu ? 2 * k : k; /* x's row length */
    const int64_t nx = m * xk, nw = k * n, no = m * n;
    uint16_t *hx = malloc((size_t)nx * 2), *hw = malloc((size_t)nw * 2), *hb = malloc((size_t)n * 2);
    uint16_t *ho = malloc((size_t)no * 2), *first = malloc((size_t)no * 2), *pois = malloc((size_t)no * 2);
    double *x = malloc((size_t)nx * 8), *w = malloc((size_t)nw * 8), *b = malloc((size_t)n * 8);
    double *ref = malloc((size_t)no * 8), *mag = calloc((size_t)no, 8), *hmag = calloc((size_t)no, 8);
    double *wsum = calloc((size_t)n, 8);
    uint16_t *hr = malloc((size_t)no * 2);
    double *r = malloc((size_t)no * 8);
    fill(dt, no, -4, 4, hr, r);
    fill(dt, nx, -1, 1, hx, x);
    fill(dt, nw, -1, 1, hw, w);
    fill(dt, n, -2, 2, hb, b);
    if (c->nan) {
        hx[(m - 1) * xk + k / 2] = nan16(dt);
        hw[(k / 3) * n + n / 2] = nan16(dt);
        refresh(dt, nx, hx, x), refresh(dt, nw, hw, w);
    }
    for (int64_t i = 0; i < no; i++) pois[i] = POISON;
    for (int64_t p = 0; p < k; p++)
        for (int64_t j = 0; j < n; j++) wsum[j] += fabs(w[p * n + j]);
    for (int64_t i = 0; i < m; i++) {
        double *acc = ref + i * n, *mg = mag + i * n, *hm = hmag + i * n;
        for (int64_t j = 0; j < n; j++) acc[j] = c->bias ? b[j] : 0.0, mg[j] = c->bias ? fabs(b[j]) : 0.0;
        for (int64_t p = 0; p < k; p++) {
            const double xv = c->swiglu ? silu64(x[i * xk + p]) * x[i * xk + k + p] : x[i * k + p];
            const double *wr = w + p * n;
            for (int64_t j = 0; j < n; j++) acc[j] += xv * wr[j], mg[j] += fabs(xv * wr[j]);
            if (c->swiglu)
                for (int64_t j = 0; j < n; j++) hm[j] += fabs(xv * wr[j]);
        }
        for (int64_t j = 0; j < n; j++) {
            acc[j] = act_ref(c->act, acc[j]);
            if (c->res) acc[j] += r[i * n + j], mg[j] += fabs(r[i * n + j]);
        }
    }
    void *gx = NULL, *gw = NULL, *gb = NULL, *go = NULL, *gr = NULL, *ws = NULL;
    int splits = 1;
    const size_t ws_bytes = lc_cuda_gemv_workspace(m, k, n, g_wt, c->sms, &splits);
    CUDA_OK(cudaMalloc(&gx, (size_t)nx * 2 + 16));
    CUDA_OK(cudaMalloc(&gw, (size_t)nw * 2));
    CUDA_OK(cudaMalloc(&gb, (size_t)n * 2));
    CUDA_OK(cudaMalloc(&go, (size_t)no * 2));
    CUDA_OK(cudaMalloc(&gr, (size_t)no * 2));
    CUDA_OK(cudaMemcpy(gr, hr, (size_t)no * 2, cudaMemcpyHostToDevice));
    if (ws_bytes) CUDA_OK(cudaMalloc(&ws, ws_bytes));
    uint16_t *xin = (uint16_t *)gx + 1; /* x at an address 2 mod 16 */
    CUDA_OK(cudaMemcpy(xin, hx, (size_t)nx * 2, cudaMemcpyHostToDevice));
    if (g_wt) { /* wᵀ [n, k]: row j holds column j of w */
        uint16_t *ht = malloc((size_t)nw * 2);
        for (int64_t p = 0; p < k; p++)
            for (int64_t j = 0; j < n; j++) ht[j * k + p] = hw[p * n + j];
        CUDA_OK(cudaMemcpy(gw, ht, (size_t)nw * 2, cudaMemcpyHostToDevice));
        free(ht);
    } else {
        CUDA_OK(cudaMemcpy(gw, hw, (size_t)nw * 2, cudaMemcpyHostToDevice));
    }
    CUDA_OK(cudaMemcpy(gb, hb, (size_t)n * 2, cudaMemcpyHostToDevice));
    lc_linear_args a = {.dtype = dt, .m = m, .k = k, .n = n, .act = c->act, .x = xin, .w = gw,
                        .bias = c->bias ? gb : NULL, .residual = c->res == 1 ? gr : c->res == 2 ? go : NULL, .out = go,
                        .w_t = g_wt};
    CHECK(lc_cuda_gemv_fits(&a) == 1);
    if (ws_bytes) CHECK(launch_case(c, &a, NULL, 0, 0) == cudaErrorInvalidValue); /* no workspace */
    (void)cudaGetLastError();
    const double u = unit(dt);
    int64_t bad = 0, diff = 0;
    cudaStream_t st = NULL;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t ge = NULL;
    CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    for (int run = 0; run < (c->res == 2 ? 3 : 4); run++) { /* in place: no graph replays (each would add again) */
        CUDA_OK(cudaMemcpy(go, c->res == 2 ? hr : pois, (size_t)no * 2, cudaMemcpyHostToDevice));
        if (run < 3) {
            CUDA_OK(launch_case(c, &a, ws, ws_bytes, st));
        } else { /* a captured graph replayed 10 times (the counters must be back at 0 after each launch) */
            CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeRelaxed));
            CUDA_OK(launch_case(c, &a, ws, ws_bytes, st));
            CUDA_OK(cudaStreamEndCapture(st, &graph));
            CUDA_OK(cudaGraphInstantiate(&ge, graph, 0));
            for (int i = 0; i < 10; i++) CUDA_OK(cudaGraphLaunch(ge, st));
        }
        CUDA_OK(cudaStreamSynchronize(st));
        CUDA_OK(cudaMemcpy(ho, go, (size_t)no * 2, cudaMemcpyDeviceToHost));
        if (run == 0) {
            memcpy(first, ho, (size_t)no * 2);
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    const int64_t e = i * n + j;
                    const double y = from16(dt, ho[e]);
                    const int want_nan = c->nan && (i == m - 1 || j == n / 2);
                    int ok;
                    if (want_nan) ok = isnan(y);
                    else {
                        double bound = u * fabs(ref[e]) + 1.2 * 2.0 * (double)k * 0x1p-24 * mag[e] + 1e-6 * fabs(ref[e]) + tiny(dt);
                        if (c->swiglu) bound += 1.2 * ((u + 8 * 0x1p-24) * hmag[e] + tiny(dt) * wsum[j]);
                        ok = isfinite(y) && fabs(y - ref[e]) <= bound;
                    }
                    if (!ok && bad++ < 5)
                        fprintf(stderr, "  %s m=%lld k=%lld n=%lld %s: [%lld,%lld] got %.9g want %.9g\n",
                                dt == LC_DTYPE_BF16 ? "bf16" : "f16", (long long)m, (long long)k, (long long)n,
                                act_name(c->act), (long long)i, (long long)j, y, ref[e]);
                }
        } else {
            for (int64_t e = 0; e < no; e++) diff += ho[e] != first[e];
        }
    }
    if (ge) cudaGraphExecDestroy(ge);
    if (graph) cudaGraphDestroy(graph);
    cudaStreamDestroy(st);
    if (g_wt) g_nk_cases++;
    else if (splits > 1) g_split_cases++;
    else g_plain_cases++;
    printf("%-5s m=%lld k=%-5lld n=%-5lld %-9s %s%s sms=%-3d %s=%-3d %s\n", dt == LC_DTYPE_BF16 ? "bf16" : "f16",
           (long long)m, (long long)k, (long long)n, act_name(c->act), c->bias ? "bias" : "    ",
           c->swiglu ? " swiglu" : "", c->sms, g_wt ? "nk" : "splits", splits, bad || diff ? "FAIL" : "ok");
    if (diff) fprintf(stderr, "  %lld elements differ between repeated runs / graph replays\n", (long long)diff);
    CHECK(bad == 0 && diff == 0);
    cudaFree(gx), cudaFree(gw), cudaFree(gb), cudaFree(go), cudaFree(gr), cudaFree(ws);
    free(hx), free(hw), free(hb), free(ho), free(first), free(pois), free(x), free(w), free(b), free(ref), free(mag);
    free(hr), free(r), free(hmag), free(wsum);
    return bad + diff;
}

/* ---- timing (LC_TEST_VERBOSE=1) ------------------------------------------------------------------------ */

static int copies_for(int64_t wbytes) {
    int64_t c = (160ll << 20) / wbytes + 1; /* cycle through > 160 MB of weights: past the L2 cache */
    return (int)(c < 2 ? 2 : c > 48 ? 48 : c);
}

/* Microseconds a call of lc_linear (m = 1, bf16, bias, no act) from a captured graph; gemv: LC_GEMV on/off. */
static double time_linear(int64_t k, int64_t n, int gemv, const char **path) {
    const int64_t xs[2] = {1, k}, ws_[2] = {k, n}, os[2] = {1, n};
    const int nc = copies_for(k * n * 2);
    uint16_t *h = malloc((size_t)(k * n) * 2);
    for (int64_t i = 0; i < k * n; i++) h[i] = to16(LC_DTYPE_BF16, rnd(-0.05, 0.05));
    lc_tensor_t *x = up(LC_DEVICE_CUDA, LC_DTYPE_BF16, 2, xs, h), *o = poisoned(LC_DEVICE_CUDA, LC_DTYPE_BF16, 2, os);
    const int64_t bs[1] = {n};
    lc_tensor_t *b = up(LC_DEVICE_CUDA, LC_DTYPE_BF16, 1, bs, h); /* a bias: the GEMV takes only epilogues */
    lc_tensor_t *w[48] = {0};
    for (int c = 0; c < nc; c++) w[c] = up(LC_DEVICE_CUDA, LC_DTYPE_BF16, 2, ws_, h);
    free(h);
    setenv("LC_GEMV", gemv ? "1" : "0", 1);
    CHECK_OK(lc_linear(x, w[0], b, LC_ACT_NONE, o, LC_DEVICE_CUDA)); /* warm-up: plans, algorithms */
    *path = last_path();
    lc_device_graph_t *g = NULL;
    double us = NAN;
    if (lc_capture_begin(LC_DEVICE_CUDA) == LC_OK) {
        for (int c = 0; c < nc; c++) CHECK_OK(lc_linear(x, w[c], b, LC_ACT_NONE, o, LC_DEVICE_CUDA));
        CHECK_OK(lc_capture_end(1, &g));
    }
    if (g) {
        const int reps = 20;
        lc_device_timer_t *t = NULL;
        double ms = 0;
        CHECK_OK(lc_device_graph_replay(g, 2));
        CHECK_OK(lc_device_timer_start(LC_DEVICE_CUDA, &t));
        CHECK_OK(lc_device_graph_replay(g, reps));
        CHECK_OK(lc_device_timer_stop(t, &ms));
        us = ms * 1e3 / (reps * nc);
        lc_device_graph_free(g);
    }
    unsetenv("LC_GEMV");
    for (int c = 0; c < nc; c++) lc_tensor_free(w[c]);
    lc_tensor_free(x), lc_tensor_free(o), lc_tensor_free(b);
    return us;
}

/* Microseconds a direct launch (m = 1, bf16) with the plan for num_sms SMs (wt: the [n, k] kernel), from a
 * captured graph. */
static double time_direct(int64_t k, int64_t n, int sms, int wt) {
    const int nc = copies_for(k * n * 2);
    void *x = NULL, *o = NULL, *ws = NULL, *w[48] = {0};
    const size_t wsb = lc_cuda_gemv_workspace(1, k, n, wt, sms, NULL);
    int ok = cudaMalloc(&x, (size_t)k * 2) == cudaSuccess && cudaMalloc(&o, (size_t)n * 2) == cudaSuccess &&
             (!wsb || cudaMalloc(&ws, wsb) == cudaSuccess);
    for (int c = 0; ok && c < nc; c++) ok = cudaMalloc(&w[c], (size_t)(k * n) * 2) == cudaSuccess;
    for (int c = 0; ok && c < nc; c++) ok = cudaMemset(w[c], 0x11, (size_t)(k * n) * 2) == cudaSuccess;
    ok = ok && cudaMemset(x, 0x22, (size_t)k * 2) == cudaSuccess;
    double us = NAN;
    cudaStream_t st = NULL;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t ge = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    ok = ok && cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess;
    ok = ok && cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess;
    ok = ok && cudaStreamBeginCapture(st, cudaStreamCaptureModeRelaxed) == cudaSuccess;
    for (int c = 0; ok && c < nc; c++) {
        lc_linear_args a = {.dtype = LC_DTYPE_BF16, .m = 1, .k = k, .n = n, .act = LC_ACT_NONE, .x = x, .w = w[c], .out = o,
                            .w_t = wt};
        ok = lc_cuda_launch_gemv(&a, ws, wsb, sms, st) == cudaSuccess;
    }
    if (st && cudaStreamEndCapture(st, &graph) != cudaSuccess) ok = 0;
    ok = ok && cudaGraphInstantiate(&ge, graph, 0) == cudaSuccess;
    if (ok) {
        const int reps = 20;
        for (int i = 0; i < 2; i++) cudaGraphLaunch(ge, st);
        cudaEventRecord(e0, st);
        for (int i = 0; i < reps; i++) cudaGraphLaunch(ge, st);
        cudaEventRecord(e1, st);
        float ms = 0;
        if (cudaEventSynchronize(e1) == cudaSuccess && cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess)
            us = ms * 1e3 / (reps * nc);
    }
    CHECK(ok);
    (void)cudaGetLastError();
    if (ge) cudaGraphExecDestroy(ge);
    if (graph) cudaGraphDestroy(graph);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (st) cudaStreamDestroy(st);
    for (int c = 0; c < nc; c++) cudaFree(w[c]);
    cudaFree(x), cudaFree(o), cudaFree(ws);
    return us;
}

static void timing_table(void) {
    /* GPT-2 124M's and LLaMA 1.1B's decode linears (qkv, o, fc/gate+up, proj/down, lm_head), and two others */
    static const int64_t shapes[][2] = {{768, 768},   {768, 2304},   {768, 3072},  {3072, 768},  {2048, 2560},
                                        {2048, 2048}, {2048, 11264}, {5632, 2048}, {2048, 3072}, {2048, 5632},
                                        {768, 50264}, {2048, 32000}};
    int dev = 0, sms = 132;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    printf("\ntiming: m=1 bf16, lc_linear from a captured graph (us a call, GB/s of w read); LC_GEMV=0 is cuBLASLt;"
           " splits 'c': added in a thread-block cluster\n");
    printf("%-12s %7s %16s %7s %22s %7s %9s %9s %16s %16s\n", "k x n", "splits", "gemv us (GB/s)", "", "LC_GEMV=0 us (GB/s)",
           "ratio", "sms/2 us", "2sms us", "[n,k] us (GB/s)", "ring us (GB/s)");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t k = shapes[i][0], n = shapes[i][1];
        const double gb = (double)(k * n * 2) / 1e3; /* w bytes / 1e3: divided by us gives GB/s */
        int splits = 0;
        const int clustered = lc_cuda_gemv_workspace(1, k, n, 0, sms, &splits) == 0 && splits > 1;
        const char *p1 = "?", *p0 = "?";
        const double t1 = time_linear(k, n, 1, &p1), t0 = time_linear(k, n, 0, &p0);
        const double th = time_direct(k, n, sms / 2 > 0 ? sms / 2 : 1, 0), t2 = time_direct(k, n, 2 * sms, 0);
        setenv("LC_GEMV_RING", "0", 1);
        const double tt = time_direct(k, n, sms, 1);
        setenv("LC_GEMV_RING", "1", 1);
        const double tr = time_direct(k, n, sms, 1);
        unsetenv("LC_GEMV_RING");
        char shape[32];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)k, (long long)n);
        printf("%-12s %6d%c %8.2f (%5.0f) %-18s %8.2f (%5.0f) %-16s %5.2fx %9.2f %9.2f %8.2f (%5.0f) %8.2f (%5.0f)\n", shape,
               splits, clustered ? 'c' : ' ', t1, gb / t1, p1, t0, gb / t0, p0, t0 / t1, th, t2, tt, gb / tt, tr, gb / tr);
    }
}

int main(void) {
    test_fits();
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        (void)cudaGetLastError();
        printf("test_gemv_cuda: fits() checks %d passed, %d failed; no CUDA device: kernel runs skipped\n", g_pass, g_fail);
        return g_fail ? 1 : 77;
    }
    int dev = 0, sms = 132;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    const lc_dtype BF = LC_DTYPE_BF16, HF = LC_DTYPE_F16;
    const lc_activation A[4] = {LC_ACT_NONE, LC_ACT_RELU, LC_ACT_GELU_ERF, LC_ACT_GELU_TANH};
    const int64_t ks[] = {1, 7, 63, 65, 1000, 4099}, ns[] = {8, 24, 264, 2056};
    int64_t failed = 0;
    int idx = 0;
    for (int64_t m = 1; m <= LC_GEMV_MAX_M; m++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++, idx++) {
                if (ks[ki] * ns[ni] * m > 4099 * 264 * 2 && (idx % 3)) continue; /* the largest: a third of them */
                gcase c = {(idx / 8) & 1 ? BF : HF, m, ks[ki], ns[ni], A[idx % 4], (idx / 4) & 1, idx % 5 == 0 ? 1 : sms, 0,
                           idx % 3, 0};
                lc_set_static_weights(idx & 1); /* both GEMV entries: w loaded before / after the PDL wait */
                failed += run_case(&c) != 0;
            }
    const gcase extra[] = {
        {BF, 1, 16384, 264, LC_ACT_NONE, 0, 132, 0, 0, 0},      /* long k, split */
        {HF, 1, 16384, 2056, LC_ACT_GELU_TANH, 1, 1, 0, 0, 0},  /* long k, unsplit: several x chunks */
        {BF, 8, 16384, 24, LC_ACT_GELU_ERF, 1, 132, 0, 0, 0},   /* long k, m = 8, split */
        {HF, 8, 3000, 264, LC_ACT_RELU, 0, 1, 0, 0, 0},         /* m = 8 unsplit: x chunks of 1024 rows */
        {BF, 1, 768, 50264, LC_ACT_NONE, 0, 132, 0, 0, 0},      /* GPT-2 lm_head shape */
        {HF, 3, 1000, 50264, LC_ACT_GELU_TANH, 1, 132, 0, 0, 0},
        {BF, 2, 65, 264, LC_ACT_NONE, 1, 132, 1, 0, 0},         /* NaN propagation, split */
        {HF, 5, 1000, 2056, LC_ACT_RELU, 0, 1, 1, 0, 0},        /* NaN propagation, unsplit */
        {BF, 7, 4099, 24, LC_ACT_GELU_TANH, 1, 4 * 132, 1, 0, 0},
        {BF, 1, 768, 2304, LC_ACT_NONE, 1, 132, 0, 2, 0},    /* GPT-2 attention projection: x += linear(...) */
        {HF, 4, 3072, 768, LC_ACT_GELU_TANH, 1, 1, 0, 2, 0}, /* in place, unsplit */
        {BF, 2, 5632, 2056, LC_ACT_NONE, 0, 132, 1, 1, 0},   /* residual with a NaN row / column */
        /* the SwiGLU prologue (x = gu [m, 2k], silu(g)·u staged) */
        {BF, 1, 5632, 2048, LC_ACT_NONE, 0, 132, 0, 2, 1},      /* LLaMA-1.1B down projection, x += ..., split */
        {HF, 3, 1000, 264, LC_ACT_GELU_TANH, 1, 1, 0, 1, 1},    /* unsplit, residual */
        {BF, 8, 4099, 24, LC_ACT_RELU, 1, 132, 1, 0, 1},        /* m = 8, odd k, NaN in the gate half, split */
        {HF, 2, 7, 8, LC_ACT_NONE, 0, 132, 0, 0, 1},
        {BF, 5, 65, 2056, LC_ACT_GELU_ERF, 0, 1, 1, 1, 1},
        {HF, 1, 16384, 264, LC_ACT_NONE, 1, 132, 0, 0, 1},      /* long k: several x chunks a split */
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        lc_set_static_weights((int)(i & 1));
        failed += run_case(&extra[i]) != 0;
    }
    /* the [n, k] kernels (w given as wᵀ): k a multiple of 8 (several x chunks at m = 8, k = 16384), n of any size;
     * each case three times: with the ring kernel (gemv_ring_cuda.cu: LC_GEMV_RING=1, read at each launch) where
     * its plan fits, two blocks an SM where they fit (its default) and one (LC_GEMV_RING_BPS=1), and with the tile
     * kernel (LC_GEMV_RING=0) */
    g_wt = 1;
    for (int ring = 2; ring >= 0; ring--) {
        setenv("LC_GEMV_RING", ring ? "1" : "0", 1);
        setenv("LC_GEMV_RING_BPS", ring == 1 ? "1" : "2", 1);
        const int64_t kt[] = {8, 64, 1000, 4104}, nt[] = {1, 7, 264, 2057};
        idx = 0;
        for (int64_t m = 1; m <= LC_GEMV_MAX_M; m++)
            for (size_t ki = 0; ki < sizeof kt / sizeof kt[0]; ki++)
                for (size_t ni = 0; ni < sizeof nt / sizeof nt[0]; ni++, idx++) {
                    if (kt[ki] * nt[ni] * m > 4104 * 264 * 2 && (idx % 3)) continue;
                    gcase c = {(idx / 8) & 1 ? BF : HF, m, kt[ki], nt[ni], A[idx % 4], (idx / 4) & 1, sms, idx % 7 == 0,
                               idx % 3, (idx / 5) & 1};
                    lc_set_static_weights(idx & 1);
                    failed += run_case(&c) != 0;
                }
        const gcase extra_t[] = {
            {BF, 1, 2048, 2560, LC_ACT_NONE, 0, 132, 0, 0, 0},   /* LLaMA-1.1B qkv */
            {HF, 8, 16384, 24, LC_ACT_GELU_ERF, 1, 132, 0, 0, 0}, /* x in chunks */
            {BF, 1, 5632, 2048, LC_ACT_NONE, 0, 132, 0, 2, 1},   /* LLaMA-1.1B down projection, x += ... */
            {BF, 8, 5632, 264, LC_ACT_NONE, 0, 132, 1, 1, 1},    /* SwiGLU in chunks, NaN, residual */
            {HF, 3, 768, 50257, LC_ACT_NONE, 0, 132, 0, 0, 0},   /* GPT-2 lm_head's odd n */
            /* for the ring kernel: one block with more rows a stage than threads; one block cycling its ring ~250
             * times; the GPT-2 lm_head; the SwiGLU down projection */
            {HF, 1, 8, 2057, LC_ACT_RELU, 1, 1, 0, 1, 0},
            {BF, 1, 4104, 1003, LC_ACT_GELU_ERF, 1, 1, 1, 0, 0},
            {BF, 1, 768, 50257, LC_ACT_NONE, 0, 132, 0, 2, 0},
            {HF, 1, 5632, 2048, LC_ACT_NONE, 1, 132, 1, 2, 1},
        };
        for (size_t i = 0; i < sizeof extra_t / sizeof extra_t[0]; i++) {
            lc_set_static_weights((int)(i & 1));
            failed += run_case(&extra_t[i]) != 0;
        }
    }
    unsetenv("LC_GEMV_RING");
    unsetenv("LC_GEMV_RING_BPS");
    g_wt = 0;
    lc_set_static_weights(1); /* the timing table's weights are written once, before any GEMV */
    CHECK(g_split_cases > 0 && g_plain_cases > 0 && g_nk_cases > 0);
    const char *verbose = getenv("LC_TEST_VERBOSE");
    if (verbose && strcmp(verbose, "1") == 0) timing_table();
    printf("test_gemv_cuda: %d passed, %d failed (%lld cases failed; %d split-k, %d unsplit, %d [n, k])\n", g_pass,
           g_fail, (long long)failed, g_split_cases, g_plain_cases, g_nk_cases);
    return g_fail ? 1 : 0;
}

#else
int main(void) {
    printf("test_gemv_cuda: built without CUDA: skipped\n");
    return 77;
}
#endif
