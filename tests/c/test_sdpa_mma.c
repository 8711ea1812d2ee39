/* test_sdpa_mma.c — the tensor-core flash-attention forward (src/backend/cuda/sdpa_mma*.cu) called directly
 * through lc_cuda_launch_sdpa_mma on awkward shapes (float16 and bfloat16, head_dim 64/128, GQA/MQA, causal
 * with sq < skv, sq == skv and sq > skv, key_lengths int32/int64 including 0 and 1, lse, sq = 1, skv = 1,
 * strided [B, S, H, D] views, a 4k causal sequence, NaN/Inf in v rows hidden by the causal mask) against a
 * float64 reference computed here from the same 16-bit inputs (local: lc_ref_sdpa in reference.c is being
 * written in parallel). Outputs and lse are poisoned before each run; the gaps of a strided out must stay
 * poisoned. Tolerance per element: 2.5·u·Σp|v|/l + u·|ref| (u = 16-bit unit roundoff; P·V runs on P
 * rounded to 16 bits, everything else in float32), lse 1e-4·(1 + |lse|). Every kernel variant
 * (lc_cuda_sdpa_mma_set_variant) runs the short cases; prints TFLOP/s of every variant for B·H = 32,
 * S = 4096, D = 64/128, bf16, causal and not, then of the defaults (informational). lc_cuda_sdpa_mma_fits and
 * lc_cuda_sdpa_tf32_fits (float32 kernel, tested on the GPU in tests/python/test_sdpa_tf32.py) refusals are
 * checked without a GPU; the
 * rest needs one (exit 77, skipped, otherwise). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOWP_SEED 0x5d9a3c11f00dbeefull
#include "lowp_check.h"

#ifdef LC_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_kernels.h"

#define CUDA_OK(expr) CHECK((expr) == cudaSuccess)

typedef struct {
    const char *name;
    lc_dtype dt;
    int64_t B, H, Hkv, Sq, Skv, D;
    int causal;
    int kl_kind;             /* 0 none, 1 int32, 2 int64 */
    int64_t kl[4];           /* key lengths (may be out of [0, skv]: clamped) */
    int lse;
    int packed;              /* q/out as [B, S, H, D(·2)] views, k/v from one [B, S, 2, Hkv, D] buffer */
    double qk_range;         /* q, k uniform in [-qk_range, qk_range) */
    double scale_mul;        /* scale = scale_mul / sqrt(D) */
    int nan_row;             /* >= 0: v row nan_row of every head NaN, row nan_row + 1 +Inf (causal tests) */
} mcase;

/* Visible-key rule of lc_sdpa_args. */
static int visible(const mcase *c, int64_t L, int64_t i, int64_t j) {
    return j < L && (!c->causal || j <= i + L - c->Sq);
}

static int64_t clamp_len(const mcase *c, int64_t b) {
    if (!c->kl_kind) return c->Skv;
    const int64_t x = c->kl[b];
    return x < 0 ? 0 : (x > c->Skv ? c->Skv : x);
}

/* Returns the number of mismatching elements (printing the first few). */
static int64_t run_case(const mcase *c) {
    const lc_dtype dt = c->dt;
    const int64_t B = c->B, H = c->H, G = c->Hkv, Sq = c->Sq, Skv = c->Skv, D = c->D;
    /* element strides */
    int64_t qs[4], ks[4], vs[4], os[4], qn, kvn, on;
    if (c->packed) {
        qs[0] = Sq * H * D, qs[1] = D, qs[2] = H * D, qs[3] = 1, qn = B * Sq * H * D;
        ks[0] = Skv * 2 * G * D, ks[1] = D, ks[2] = 2 * G * D, ks[3] = 1, kvn = B * Skv * 2 * G * D;
        memcpy(vs, ks, sizeof vs);
        os[0] = Sq * H * 2 * D, os[1] = 2 * D, os[2] = H * 2 * D, os[3] = 1, on = B * Sq * H * 2 * D;
    } else {
        qs[0] = H * Sq * D, qs[1] = Sq * D, qs[2] = D, qs[3] = 1, qn = B * H * Sq * D;
        ks[0] = G * Skv * D, ks[1] = Skv * D, ks[2] = D, ks[3] = 1, kvn = B * G * Skv * D;
        memcpy(vs, ks, sizeof vs);
        memcpy(os, qs, sizeof os), on = qn;
    }
    const int64_t kvtot = c->packed ? kvn : 2 * kvn; /* k then v (unpacked), or the one packed buffer */
    const int64_t voff = c->packed ? G * D : kvn;    /* v's first element in the kv buffer */
    uint16_t *hq = malloc((size_t)qn * 2), *hkv = malloc((size_t)kvtot * 2), *ho = malloc((size_t)on * 2);
    double *dq = malloc((size_t)qn * 8), *dkv = malloc((size_t)kvtot * 8);
    fill(dt, qn, -c->qk_range, c->qk_range, hq, dq);
    fill(dt, kvtot, -c->qk_range, c->qk_range, hkv, dkv);
    /* v values in [-1, 1) */
    for (int64_t b = 0; b < B; b++)
        for (int64_t g = 0; g < G; g++)
            for (int64_t j = 0; j < Skv; j++)
                for (int64_t d = 0; d < D; d++) {
                    const int64_t e = voff + b * vs[0] + g * vs[1] + j * vs[2] + d;
                    hkv[e] = to16(dt, rnd(-1, 1));
                    if (c->nan_row >= 0 && j == c->nan_row) hkv[e] = nan16(dt);
                    if (c->nan_row >= 0 && j == c->nan_row + 1) hkv[e] = inf16(dt, 0);
                    dkv[e] = from16(dt, hkv[e]);
                }
    for (int64_t i = 0; i < on; i++) ho[i] = POISON;
    const int64_t lsen = B * H * Sq;
    float *hl = malloc((size_t)lsen * 4);
    for (int64_t i = 0; i < lsen; i++) hl[i] = NAN;
    int32_t kl32[4];
    for (int i = 0; i < 4; i++) kl32[i] = (int32_t)c->kl[i];

    void *gq = NULL, *gkv = NULL, *go = NULL, *gl = NULL, *gkl = NULL;
    CUDA_OK(cudaMalloc(&gq, (size_t)qn * 2));
    CUDA_OK(cudaMalloc(&gkv, (size_t)kvtot * 2));
    CUDA_OK(cudaMalloc(&go, (size_t)on * 2));
    CUDA_OK(cudaMalloc(&gl, (size_t)lsen * 4));
    CUDA_OK(cudaMalloc(&gkl, 64));
    CUDA_OK(cudaMemcpy(gq, hq, (size_t)qn * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(gkv, hkv, (size_t)kvtot * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(go, ho, (size_t)on * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(gl, hl, (size_t)lsen * 4, cudaMemcpyHostToDevice));
    if (c->kl_kind == 1) CUDA_OK(cudaMemcpy(gkl, kl32, sizeof kl32, cudaMemcpyHostToDevice));
    if (c->kl_kind == 2) CUDA_OK(cudaMemcpy(gkl, c->kl, sizeof c->kl, cudaMemcpyHostToDevice));

    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = dt, a.batch = B, a.heads = H, a.kv_heads = G, a.sq = Sq, a.skv = Skv, a.head_dim = D;
    a.q = gq, a.k = gkv, a.v = (uint16_t *)gkv + voff, a.out = go;
    memcpy(a.q_st, qs, sizeof qs), memcpy(a.k_st, ks, sizeof ks), memcpy(a.v_st, vs, sizeof vs);
    memcpy(a.o_st, os, sizeof os);
    a.mask_kind = LC_SDPA_MASK_NONE;
    a.key_lengths = c->kl_kind ? gkl : NULL;
    a.key_lengths_dtype = c->kl_kind == 2 ? LC_DTYPE_I64 : LC_DTYPE_I32;
    a.causal = c->causal;
    a.scale = (float)(c->scale_mul / sqrt((double)D));
    a.lse = c->lse ? (float *)gl : NULL;
    CHECK(lc_cuda_sdpa_mma_fits(&a) == 1);
    const char *path = NULL;
    CUDA_OK(lc_cuda_launch_sdpa_mma(&a, 0, &path));
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(ho, go, (size_t)on * 2, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(hl, gl, (size_t)lsen * 4, cudaMemcpyDeviceToHost));

    /* float64 reference and comparison */
    const double u = unit(dt);
    const double scale = (double)a.scale; /* the float the kernel got */
    int64_t bad = 0;
    double *sc = malloc((size_t)Skv * 8);
    double *ref = malloc((size_t)D * 8), *mag = malloc((size_t)D * 8);
    for (int64_t b = 0; b < B; b++) {
        const int64_t L = clamp_len(c, b);
        for (int64_t h = 0; h < H; h++) {
            const int64_t g = h / (H / G);
            for (int64_t i = 0; i < Sq; i++) {
                const double *qi = dq + b * qs[0] + h * qs[1] + i * qs[2];
                double m = -INFINITY;
                for (int64_t j = 0; j < Skv; j++) {
                    if (!visible(c, L, i, j)) continue;
                    const double *kj = dkv + b * ks[0] + g * ks[1] + j * ks[2];
                    double s = 0;
                    for (int64_t d = 0; d < D; d++) s += qi[d] * kj[d];
                    sc[j] = s * scale;
                    if (sc[j] > m) m = sc[j];
                }
                double l = 0;
                for (int64_t d = 0; d < D; d++) ref[d] = 0, mag[d] = 0;
                for (int64_t j = 0; j < Skv; j++) {
                    if (!visible(c, L, i, j)) continue;
                    const double p = exp(sc[j] - m);
                    l += p;
                    const double *vj = dkv + voff + b * vs[0] + g * vs[1] + j * vs[2];
                    for (int64_t d = 0; d < D; d++) ref[d] += p * vj[d], mag[d] += p * fabs(vj[d]);
                }
                const double lse_ref = l > 0 ? m + log(l) : -INFINITY;
                for (int64_t d = 0; d < D; d++) {
                    const double r = l > 0 ? ref[d] / l : 0.0;
                    const double A = l > 0 ? mag[d] / l : 0.0;
                    const double got = from16(dt, ho[b * os[0] + h * os[1] + i * os[2] + d]);
                    const double tol = 2.5 * u * A + u * fabs(r);
                    const int ok = (isnan(r) && isnan(got)) || (isinf(r) && got == r) || fabs(got - r) <= tol;
                    if (!ok && bad++ < 5)
                        fprintf(stderr, "  %s: out[b=%lld,h=%lld,i=%lld,d=%lld] = %.6g, want %.6g (tol %.3g)\n", c->name,
                                (long long)b, (long long)h, (long long)i, (long long)d, got, r, tol);
                }
                if (c->lse) {
                    const double got = hl[(b * H + h) * Sq + i];
                    const int ok = (isinf(lse_ref) && got == lse_ref) || (isnan(lse_ref) && isnan(got)) ||
                                   fabs(got - lse_ref) <= 1e-4 * (1 + fabs(lse_ref));
                    if (!ok && bad++ < 5)
                        fprintf(stderr, "  %s: lse[b=%lld,h=%lld,i=%lld] = %.8g, want %.8g\n", c->name, (long long)b,
                                (long long)h, (long long)i, got, lse_ref);
                }
            }
        }
    }
    if (c->packed) /* the gaps of the strided out (d in [D, 2D)) stay poisoned */
        for (int64_t i = 0; i < on; i++)
            if (i % (2 * D) >= D && ho[i] != POISON && bad++ < 5) fprintf(stderr, "  %s: gap %lld written\n", c->name, (long long)i);
    if (!c->lse)
        for (int64_t i = 0; i < lsen; i++)
            if (!isnan(hl[i]) && bad++ < 5) fprintf(stderr, "  %s: lse written though not asked\n", c->name);
    printf("%-34s %-18s %s\n", c->name, path ? path : "?", bad ? "FAIL" : "ok");
    CHECK(bad == 0);
    free(sc), free(ref), free(mag);
    free(hq), free(hkv), free(ho), free(dq), free(dkv), free(hl);
    cudaFree(gq), cudaFree(gkv), cudaFree(go), cudaFree(gl), cudaFree(gkl);
    return bad;
}

/* TFLOP/s of B·H = 32, S = 4096 (informational). */
static void bench(lc_dtype dt, int64_t D, int causal) {
    const int64_t B = 2, H = 16, S = 4096, n = B * H * S * D;
    void *q = NULL, *k = NULL, *v = NULL, *o = NULL;
    if (cudaMalloc(&q, (size_t)n * 2) != cudaSuccess || cudaMalloc(&k, (size_t)n * 2) != cudaSuccess ||
        cudaMalloc(&v, (size_t)n * 2) != cudaSuccess || cudaMalloc(&o, (size_t)n * 2) != cudaSuccess) {
        CHECK(0);
        return;
    }
    uint16_t *h = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) h[i] = to16(dt, rnd(-1, 1));
    CUDA_OK(cudaMemcpy(q, h, (size_t)n * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(k, h, (size_t)n * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(v, h, (size_t)n * 2, cudaMemcpyHostToDevice));
    free(h);
    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = dt, a.batch = B, a.heads = H, a.kv_heads = H, a.sq = S, a.skv = S, a.head_dim = D;
    a.q = q, a.k = k, a.v = v, a.out = o;
    const int64_t st[4] = {H * S * D, S * D, D, 1};
    memcpy(a.q_st, st, sizeof st), memcpy(a.k_st, st, sizeof st), memcpy(a.v_st, st, sizeof st);
    memcpy(a.o_st, st, sizeof st);
    a.causal = causal;
    a.scale = (float)(1.0 / sqrt((double)D));
    const char *path = NULL;
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    for (int i = 0; i < 3; i++) CUDA_OK(lc_cuda_launch_sdpa_mma(&a, 0, &path));
    const int reps = 20;
    CUDA_OK(cudaEventRecord(e0, 0));
    for (int i = 0; i < reps; i++) CUDA_OK(lc_cuda_launch_sdpa_mma(&a, 0, &path));
    CUDA_OK(cudaEventRecord(e1, 0));
    CUDA_OK(cudaEventSynchronize(e1));
    float ms = 0;
    CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
    const double flops = 4.0 * (double)B * H * S * S * D * (causal ? 0.5 : 1.0);
    printf("bench %-5s D=%-3lld B*H=32 S=4096 %-10s %8.3f ms  %6.1f TFLOP/s  (%s)\n", dt == LC_DTYPE_BF16 ? "bf16" : "f16",
           (long long)D, causal ? "causal" : "non-causal", ms / reps, flops / (ms / reps * 1e-3) / 1e12, path ? path : "?");
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(o);
}

/* fits() is a host check: its refusals are tested without a GPU. */
static void test_fits(void) {
    static _Alignas(16) uint16_t buf[4096];
    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = LC_DTYPE_BF16, a.batch = 1, a.heads = 4, a.kv_heads = 2, a.sq = 3, a.skv = 5, a.head_dim = 64;
    a.q = a.k = a.v = buf, a.out = buf + 2048;
    const int64_t st[4] = {4 * 3 * 64, 3 * 64, 64, 1};
    memcpy(a.q_st, st, sizeof st), memcpy(a.k_st, st, sizeof st), memcpy(a.v_st, st, sizeof st);
    memcpy(a.o_st, st, sizeof st);
    a.scale = 0.125f;
    CHECK(lc_cuda_sdpa_mma_fits(&a) == 1);
    lc_sdpa_args r;
#define REFUSED(field_change)                                                                                  \
    do {                                                                                                       \
        r = a;                                                                                                 \
        field_change;                                                                                          \
        CHECK(lc_cuda_sdpa_mma_fits(&r) == 0);                                                                 \
        CHECK(lc_cuda_launch_sdpa_mma(&r, 0, NULL) == cudaErrorInvalidValue);                                  \
    } while (0)
    REFUSED(r.dtype = LC_DTYPE_F32);
    REFUSED(r.head_dim = 96);
    REFUSED(r.head_dim = 32);
    REFUSED(r.mask_kind = LC_SDPA_MASK_ADD);
    REFUSED(r.mask_kind = LC_SDPA_MASK_BOOL);
    REFUSED(r.kv_heads = 3);
    REFUSED(r.q_st[3] = 2);
    REFUSED(r.v_st[2] = 68);
    REFUSED(r.o_st[1] = 100);
    REFUSED(r.k = buf + 1);
    REFUSED(r.out = buf + 4);
    REFUSED(r.sq = 0);
    REFUSED(r.skv = 0);
    REFUSED(r.key_lengths = buf; r.key_lengths_dtype = LC_DTYPE_F32);
#undef REFUSED
    r = a;
    r.causal = 1, r.dtype = LC_DTYPE_F16, r.head_dim = 128, r.kv_heads = 1;
    CHECK(lc_cuda_sdpa_mma_fits(&r) == 1);
    r.k_st[1] = 0; /* broadcast kv head axis */
    CHECK(lc_cuda_sdpa_mma_fits(&r) == 1);
    /* float32 (3xTF32 kernel): the same rules with 16-byte rows of 4 floats, and no window */
    r = a;
    r.dtype = LC_DTYPE_F32;
    CHECK(lc_cuda_sdpa_tf32_fits(&r) == 1);
    CHECK(lc_cuda_sdpa_tf32_fits(&a) == 0); /* bf16 */
    r.q_st[2] = 68, r.o_st[1] = 4 * 68;     /* multiples of 4 floats: 16-byte rows */
    CHECK(lc_cuda_sdpa_tf32_fits(&r) == 1);
#define REFUSED32(field_change)                                                                                \
    do {                                                                                                       \
        r = a;                                                                                                 \
        r.dtype = LC_DTYPE_F32;                                                                                \
        field_change;                                                                                          \
        CHECK(lc_cuda_sdpa_tf32_fits(&r) == 0);                                                                \
        CHECK(lc_cuda_launch_sdpa_tf32(&r, 0, NULL) == cudaErrorInvalidValue);                                 \
    } while (0)
    REFUSED32(r.window = 4);
    REFUSED32(r.head_dim = 96);
    REFUSED32(r.mask_kind = LC_SDPA_MASK_ADD);
    REFUSED32(r.plain_nonfinite = 1);
    REFUSED32(r.kv_heads = 3);
    REFUSED32(r.k_st[2] = 66);
    REFUSED32(r.v_st[3] = 2);
    REFUSED32(r.q = buf + 2); /* 4-byte aligned only */
    REFUSED32(r.sq = 0);
    REFUSED32(r.key_lengths = buf; r.key_lengths_dtype = LC_DTYPE_F16);
#undef REFUSED32
    /* the variant hook: head_dim 64 / 128 only, index -1 (default) .. n - 1 */
    const int n64 = lc_cuda_sdpa_mma_set_variant(64, -1), n128 = lc_cuda_sdpa_mma_set_variant(128, -1);
    CHECK(n64 >= 1 && n128 >= 1);
    CHECK(lc_cuda_sdpa_mma_set_variant(96, 0) == -1);
    CHECK(lc_cuda_sdpa_mma_set_variant(64, n64) == -1);
    CHECK(lc_cuda_sdpa_mma_set_variant(128, -2) == -1);
    CHECK(lc_cuda_sdpa_mma_set_variant(128, n128 - 1) == n128);
    CHECK(lc_cuda_sdpa_mma_set_variant(128, -1) == n128);
}

int main(void) {
    test_fits();
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        (void)cudaGetLastError();
        printf("test_sdpa_mma: fits() checks %d passed, %d failed; no CUDA device: kernel runs skipped\n", g_pass, g_fail);
        return g_fail ? 1 : 77;
    }
    const lc_dtype BF = LC_DTYPE_BF16, HF = LC_DTYPE_F16;
    /* name, dtype, B, H, Hkv, Sq, Skv, D, causal, kl_kind, kl, lse, packed, qk_range, scale_mul, nan_row */
    const mcase cases[] = {
        {"sq=skv=1 bf16 d64", BF, 1, 1, 1, 1, 1, 64, 0, 0, {0}, 1, 0, 1.0, 1.0, -1},
        {"sq=skv=1 causal f16 d128", HF, 2, 2, 1, 1, 1, 128, 1, 0, {0}, 1, 0, 1.0, 1.0, -1},
        {"sq1 skv1000 mqa f16 d128 len", HF, 2, 8, 1, 1, 1000, 128, 0, 1, {1000, 333}, 1, 0, 1.0, 1.0, -1},
        {"gqa causal sq<skv f16 d128", HF, 2, 4, 2, 65, 129, 128, 1, 0, {0}, 1, 0, 1.0, 1.0, -1},
        {"causal sq=skv bf16 d64", BF, 2, 2, 1, 129, 129, 64, 1, 0, {0}, 0, 0, 2.0, 1.0, -1},
        {"len i32 {0,1,137} f16 d64", HF, 3, 4, 4, 100, 200, 64, 0, 1, {0, 1, 137}, 1, 0, 1.0, 1.0, -1},
        {"causal len i64 bf16 d128", BF, 3, 8, 2, 63, 300, 128, 1, 2, {300, 5, 64}, 1, 0, 1.0, 1.0, -1},
        {"causal sq>skv f16 d128", HF, 1, 2, 2, 300, 70, 128, 1, 0, {0}, 1, 0, 1.0, 1.0, -1},
        {"causal len clamp f16 d64", HF, 2, 2, 2, 257, 257, 64, 1, 2, {-5, 400}, 1, 0, 1.0, 1.0, -1},
        {"packed views causal bf16 d64", BF, 2, 4, 2, 77, 77, 64, 1, 0, {0}, 1, 1, 1.0, 1.0, -1},
        {"packed views len f16 d128", HF, 2, 2, 1, 130, 190, 128, 0, 1, {190, 64}, 0, 1, 1.0, 1.0, -1},
        {"peaky scores bf16 d128", BF, 1, 2, 2, 199, 199, 128, 0, 0, {0}, 1, 0, 3.0, 2.0, -1},
        {"negative scale f16 d64", HF, 1, 2, 1, 70, 135, 64, 0, 0, {0}, 1, 0, 2.0, -1.5, -1},
        {"nan/inf v masked causal f16", HF, 1, 2, 2, 80, 80, 64, 1, 0, {0}, 1, 0, 1.0, 1.0, 40},
        {"nan/inf v masked causal bf16", BF, 1, 2, 1, 150, 150, 128, 1, 0, {0}, 1, 0, 1.0, 1.0, 70},
        {"scale 0 causal len bf16 d128", BF, 2, 2, 1, 140, 140, 128, 1, 1, {140, 77}, 1, 0, 1.0, 0.0, -1},
        {"scale 0 f16 d64", HF, 1, 2, 2, 70, 90, 64, 0, 0, {0}, 1, 0, 1.0, 0.0, -1},
        {"neg scale causal sq<skv bf16 d128", BF, 1, 2, 1, 200, 260, 128, 1, 0, {0}, 1, 0, 2.0, -1.2, -1},
        {"multi-tile causal f16 d64", HF, 2, 2, 2, 700, 700, 64, 1, 0, {0}, 1, 0, 1.0, 1.0, -1},
        {"multi-tile len bf16 d128", BF, 2, 2, 2, 600, 650, 128, 0, 1, {650, 333}, 1, 0, 1.0, 1.0, -1},
        /* the long cases run with the default variants only (their float64 reference is slow) */
        {"long causal 4k bf16 d128", BF, 1, 1, 1, 4096, 4096, 128, 1, 0, {0}, 1, 0, 1.0, 1.0, -1},
        {"long 2k f16 d64", HF, 1, 1, 1, 2048, 2048, 64, 0, 0, {0}, 1, 0, 1.0, 1.0, -1},
    };
    const size_t ncases = sizeof cases / sizeof cases[0], nshort = ncases - 2;
    const int nv64 = lc_cuda_sdpa_mma_set_variant(64, -1), nv128 = lc_cuda_sdpa_mma_set_variant(128, -1);
    int64_t failed = 0;
    for (size_t i = 0; i < ncases; i++) failed += run_case(&cases[i]) != 0;
    /* every variant must be exact too (the path printed names it), so any can become the default */
    for (int v = 0; v < (nv64 > nv128 ? nv64 : nv128); v++) {
        CHECK(lc_cuda_sdpa_mma_set_variant(64, v < nv64 ? v : -1) == nv64);
        CHECK(lc_cuda_sdpa_mma_set_variant(128, v < nv128 ? v : -1) == nv128);
        for (size_t i = 0; i < nshort; i++) failed += run_case(&cases[i]) != 0;
    }
    lc_cuda_sdpa_mma_set_variant(64, -1), lc_cuda_sdpa_mma_set_variant(128, -1);
    /* TFLOP/s of every variant (A/B), then the defaults (the last lines; f16 with its default only) */
    for (int causal = 0; causal < 2; causal++) {
        for (int v = 0; v < nv128; v++) {
            lc_cuda_sdpa_mma_set_variant(128, v);
            bench(BF, 128, causal);
        }
        for (int v = 0; v < nv64; v++) {
            lc_cuda_sdpa_mma_set_variant(64, v);
            bench(BF, 64, causal);
        }
        lc_cuda_sdpa_mma_set_variant(64, -1), lc_cuda_sdpa_mma_set_variant(128, -1);
    }
    for (int causal = 0; causal < 2; causal++) {
        bench(BF, 128, causal);
        bench(BF, 64, causal);
        bench(HF, 128, causal);
        bench(HF, 64, causal);
    }
    printf("test_sdpa_mma: %d passed, %d failed (%lld cases failed)\n", g_pass, g_fail, (long long)failed);
    return g_fail ? 1 : 0;
}

#else
int main(void) {
    printf("test_sdpa_mma: built without CUDA: skipped\n");
    return 77;
}
#endif
