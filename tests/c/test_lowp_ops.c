/* test_lowp_ops.c — float16 and bfloat16 through the elementwise ops (vector_add, matrix_sub, matrix_div,
 * relu), gelu (erf, tanh), layer_norm (with/without gamma, beta) and linear (bias, none/relu/gelu_erf/
 * gelu_tanh) on the CPU and, when there is a GPU, on CUDA. Fresh random inputs (rounded to the dtype),
 * awkward sizes, the output poisoned before each run, judged against a float64 reference computed from
 * the rounded inputs. Tolerances (u = unit roundoff: 2^-8 bfloat16, 2^-11 float16; tiny = half the
 * dtype's smallest subnormal, the absolute error of rounding into its subnormal range):
 *   add/sub/div  |err| <= (u + 2^-23)·|ref| + tiny            (float32 op, one rounding to the dtype)
 *   relu         exact
 *   gelu         |err| <= (u + 2^-20)·|ref| + tiny            (CPU float32 kernels: ~4e-7 relative; CUDA: u + 2e-5,
 *                the 16-bit forms of activation.cuh)
 *   layer_norm   |err| <= u·|ref| + 2^-18·(|x̂·g| + |b|) + tiny  (float32 statistics: a few 2^-24)
 *   linear       |err| <= u·|ref| + 1.2·(2k·2^-24·Σ|x||w| + 2^-23·|bias|) + tiny (float32 accumulation;
 *                gelu's slope <= 1.13), + 2^-13·|pre-activation| for cuBLASLt's fast tanh (GELU-tanh on cuda)
 * NaN placed in an input reaches exactly the elements it should (elementwise: its element; layer_norm:
 * its row, or its column for gamma; linear: its row of x); ±Inf give what the float32 op gives on the same
 * device, rounded. Mixed dtypes are refused naming both operands, out untouched. ctest runs it under each
 * CPU mask (the AMX-BF16 tiles where present, the AVX-512 BF16 kernel and the float32 conversion path all
 * feed linear; the CPU bfloat16 and float16 linear must report the GEMM the CPU and masks call for).
 * Prints "N passed, N failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h" /* the float64 references (reference.c) */
#include "check.h"
#include "lightning_core/dtype.h"
#include "lightning_core/lightning_core.h"

#define LOWP_SEED 0x9e3779b97f4a7c15ull
#include "lowp_check.h"

/* A contiguous view of n elements at element offset `off` of a fresh tensor (off 1: the pointer is 2 bytes
 * past 16-byte alignment, so CUDA runs its vector head/tail or, mixed with off 0, its scalar path). */
static lc_tensor_t *up_at(lc_device dev, lc_dtype d, int64_t n, const uint16_t *h, int64_t off) {
    if (!off) return up(dev, d, 1, &n, h);
    uint16_t *buf = malloc((size_t)(n + off) * 2);
    for (int64_t i = 0; i < off; i++) buf[i] = POISON;
    memcpy(buf + off, h, (size_t)n * 2);
    const int64_t total = n + off, one = 1;
    lc_tensor_t *base = up(dev, d, 1, &total, buf), *v = NULL;
    CHECK_OK(lc_tensor_view(base, 1, &n, &one, off, LC_DEVICE_AUTO, &v));
    lc_tensor_free(base); /* the view keeps the storage */
    free(buf);
    return v;
}


/* ---- elementwise: add, sub, div, relu, gelu erf/tanh --------------------------------------------------- */

enum { E_ADD, E_SUB, E_DIV, E_RELU, E_GELU_ERF, E_GELU_TANH, E_COUNT };
static const char *const e_names[E_COUNT] = {"vector_add", "matrix_sub", "matrix_div", "relu", "gelu_erf", "gelu_tanh"};

static lc_status run_e(int op, lc_tensor_t *a, lc_tensor_t *b, lc_tensor_t *o, lc_device dev) {
    switch (op) {
    case E_ADD: return lc_vector_add(a, b, o, dev);
    case E_SUB: return lc_matrix_sub(a, b, o, dev);
    case E_DIV: return lc_matrix_div(a, b, o, dev);
    case E_RELU: return lc_relu(a, o, dev);
    case E_GELU_ERF: return lc_gelu(a, o, LC_GELU_ERF, dev);
    default: return lc_gelu(a, o, LC_GELU_TANH, dev);
    }
}

/* gelu on CUDA: the 16-bit forms of activation.cuh (float32 error < 2e-5); on the CPU the float32 kernels */
static double e_tol_rel(int op, lc_device dev) {
    return op <= E_DIV ? 0x1p-23 : op == E_RELU ? 0.0 : dev == LC_DEVICE_CUDA ? 2e-5 : 0x1p-20;
}

/* specials: NaN at a[n/3] (and b[2n/3] for binary ops), +Inf / -Inf at a[n/5], a[n/2] when n >= 10 */
static void elementwise_case(lc_device dev, lc_dtype d, int op, int64_t n, int specials, int inplace, int off_a,
                             int off_o) {
    const int binary = op <= E_DIV;
    uint16_t *ha = malloc((size_t)n * 2), *hb = malloc((size_t)n * 2), *ho = malloc((size_t)n * 2);
    double *a = malloc((size_t)n * 8), *b = malloc((size_t)n * 8), *ref = malloc((size_t)n * 8);
    const double lo = op >= E_GELU_ERF ? -6.0 : -1.0, hi = -lo;
    fill(d, n, lo, hi, ha, a);
    if (op == E_DIV) { /* |b| in [0.25, 2): no 16-bit overflow of the quotient */
        for (int64_t i = 0; i < n; i++) {
            hb[i] = to16(d, rnd(0.25, 2.0) * (rnd(0, 1) < 0.5 ? -1.0 : 1.0));
            b[i] = from16(d, hb[i]);
        }
    } else {
        fill(d, n, -1.0, 1.0, hb, b);
    }
    const int64_t nan_a = n / 3, nan_b = (2 * n) / 3, pinf = n / 5, ninf = n / 2;
    if (specials) {
        ha[nan_a] = nan16(d);
        if (binary) hb[nan_b] = nan16(d);
        if (n >= 10) ha[pinf] = inf16(d, 0), ha[ninf] = inf16(d, 1);
        refresh(d, n, ha, a);
        refresh(d, n, hb, b);
    }
    switch (op) {
    case E_ADD: lc_ref_binary(LC_BINARY_ADD, n, a, b, ref); break;
    case E_SUB: lc_ref_binary(LC_BINARY_SUB, n, a, b, ref); break;
    case E_DIV: lc_ref_binary(LC_BINARY_DIV, n, a, b, ref); break;
    case E_RELU: lc_ref_relu(n, a, ref); break;
    default: lc_ref_gelu(op == E_GELU_TANH ? LC_GELU_TANH : LC_GELU_ERF, n, a, ref); break;
    }
    const int64_t s1[1] = {n};
    lc_tensor_t *ta = up_at(dev, d, n, ha, off_a), *tb = binary ? up_at(dev, d, n, hb, off_a) : NULL;
    lc_tensor_t *to = NULL;
    if (inplace) {
        to = ta;
    } else {
        for (int64_t i = 0; i < n; i++) ho[i] = POISON;
        to = up_at(dev, d, n, ho, off_o);
    }
    CHECK_OK(run_e(op, ta, tb, to, dev));
    const char *path = last_path();
    down(to, ho, n);
    /* the float32 op on the same device, for the non-finite inputs */
    float *f32 = NULL;
    if (specials) {
        float *fa = malloc((size_t)n * 4), *fb = malloc((size_t)n * 4);
        f32 = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) fa[i] = (float)a[i], fb[i] = (float)b[i], f32[i] = NAN;
        lc_tensor_t *fta = NULL, *ftb = NULL, *fto = NULL;
        CHECK_OK(lc_tensor_from_host(fa, (size_t)n * 4, LC_DTYPE_F32, dev, 1, s1, &fta));
        CHECK_OK(lc_tensor_from_host(fb, (size_t)n * 4, LC_DTYPE_F32, dev, 1, s1, &ftb));
        CHECK_OK(lc_tensor_from_host(f32, (size_t)n * 4, LC_DTYPE_F32, dev, 1, s1, &fto));
        CHECK_OK(run_e(op, fta, binary ? ftb : NULL, fto, dev));
        CHECK_OK(lc_tensor_to_host(fto, f32, (size_t)n * 4));
        lc_tensor_free(fta), lc_tensor_free(ftb), lc_tensor_free(fto);
        free(fa), free(fb);
    }
    const double u = unit(d), rel = e_tol_rel(op, dev);
    int bad = 0;
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double got = from16(d, ho[i]);
        const int special = specials && (i == nan_a || (binary && i == nan_b) || (n >= 10 && (i == pinf || i == ninf)));
        if (special) {
            const double want = from16(d, to16(d, f32[i]));
            const int ok = isnan(want) ? isnan(got) : got == want;
            if (!ok) fprintf(stderr, "  special [%lld]: got %g, float32 op gives %g\n", (long long)i, got, want);
            bad += !ok;
            if (i == nan_a || (binary && i == nan_b)) bad += !isnan(got); /* NaN in -> NaN out */
            continue;
        }
        const double err = fabs(got - ref[i]);
        const double tol = op == E_RELU ? 0.0 : (u + rel) * fabs(ref[i]) + tiny(d);
        if (!(err <= tol)) {
            if (bad < 3) fprintf(stderr, "  [%lld] x=%g got %.9g ref %.9g\n", (long long)i, a[i], got, ref[i]);
            bad++;
        }
        if (fabs(ref[i]) > 0 && err / fabs(ref[i]) > worst) worst = err / fabs(ref[i]);
    }
    if (bad)
        fprintf(stderr, "%s %s %s n=%lld specials=%d inplace=%d offsets=%d,%d: %d bad (path %s, worst rel %.3g)\n",
                lc_device_name(dev), lc_dtype_name(d), e_names[op], (long long)n, specials, inplace, off_a, off_o, bad, path,
                worst);
    CHECK(bad == 0);
    if (to != ta) lc_tensor_free(to);
    lc_tensor_free(ta), lc_tensor_free(tb);
    free(ha), free(hb), free(ho), free(a), free(b), free(ref), free(f32);
}

/* ---- layer_norm -------------------------------------------------------------------------------------- */

static void layer_norm_case(lc_device dev, lc_dtype d, int64_t rows, int64_t cols, int with_g, int with_b, int nan_x,
                            int nan_g) {
    const int64_t n = rows * cols;
    uint16_t *hx = malloc((size_t)n * 2), *ho = malloc((size_t)n * 2), *hg = malloc((size_t)cols * 2),
             *hb = malloc((size_t)cols * 2);
    double *x = malloc((size_t)n * 8), *ref = malloc((size_t)n * 8), *g = malloc((size_t)cols * 8),
           *b = malloc((size_t)cols * 8), *xhat = malloc((size_t)n * 8);
    fill(d, n, -2.0, 3.0, hx, x);
    fill(d, cols, 0.5, 1.5, hg, g);
    fill(d, cols, -1.0, 1.0, hb, b);
    const int64_t nr = rows / 2, nc = cols / 2;
    if (nan_x) hx[nr * cols + cols / 3] = nan16(d), refresh(d, n, hx, x);
    if (nan_g) hg[nc] = nan16(d), refresh(d, cols, hg, g);
    const double eps = 1e-5;
    lc_ref_layer_norm(rows, cols, eps, x, with_g ? g : NULL, with_g && with_b ? b : NULL, ref);
    lc_ref_layer_norm(rows, cols, eps, x, NULL, NULL, xhat);
    const int64_t sx[2] = {rows, cols}, sg[1] = {cols};
    lc_tensor_t *tx = up(dev, d, 2, sx, hx), *tg = with_g ? up(dev, d, 1, sg, hg) : NULL;
    lc_tensor_t *tb = with_g && with_b ? up(dev, d, 1, sg, hb) : NULL, *to = poisoned(dev, d, 2, sx);
    CHECK_OK(lc_layer_norm(tx, tg, tb, to, eps, dev));
    const char *path = last_path();
    down(to, ho, n);
    const double u = unit(d);
    int bad = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) {
            const int64_t i = r * cols + j;
            const double got = from16(d, ho[i]);
            const int want_nan = (nan_x && r == nr) || (nan_g && with_g && j == nc);
            if (want_nan) {
                bad += !isnan(got);
                continue;
            }
            const double terms = fabs(xhat[i]) * (with_g ? fabs(g[j]) : 1.0) + (with_g && with_b ? fabs(b[j]) : 0.0);
            const double tol = u * fabs(ref[i]) + 0x1p-18 * terms + tiny(d);
            if (!(fabs(got - ref[i]) <= tol)) {
                if (bad < 3) fprintf(stderr, "  [%lld,%lld] got %.9g ref %.9g\n", (long long)r, (long long)j, got, ref[i]);
                bad++;
            }
        }
    if (bad)
        fprintf(stderr, "%s %s layer_norm %lldx%lld g=%d b=%d nan_x=%d nan_g=%d: %d bad (path %s)\n", lc_device_name(dev),
                lc_dtype_name(d), (long long)rows, (long long)cols, with_g, with_b, nan_x, nan_g, bad, path);
    CHECK(bad == 0);
    lc_tensor_free(tx), lc_tensor_free(tg), lc_tensor_free(tb), lc_tensor_free(to);
    free(hx), free(ho), free(hg), free(hb), free(x), free(ref), free(g), free(b), free(xhat);
}

/* ---- linear ------------------------------------------------------------------------------------------ */

static const char *const act_names[LC_ACT_COUNT] = {"none", "relu", "gelu_erf", "gelu_tanh"};

static void linear_case(lc_device dev, lc_dtype d, int64_t m, int64_t k, int64_t n, int with_bias, lc_activation act,
                        int nan_x) {
    uint16_t *hx = malloc((size_t)(m * k) * 2), *hw = malloc((size_t)(k * n) * 2), *hb = malloc((size_t)n * 2),
             *ho = malloc((size_t)(m * n) * 2);
    double *x = malloc((size_t)(m * k) * 8), *w = malloc((size_t)(k * n) * 8), *b = malloc((size_t)n * 8),
           *ref = malloc((size_t)(m * n) * 8);
    fill(d, m * k, -1.0, 1.0, hx, x);
    fill(d, k * n, -1.0, 1.0, hw, w);
    fill(d, n, -2.0, 2.0, hb, b);
    const int64_t ni = m / 2;
    if (nan_x) hx[ni * k + k / 2] = nan16(d), refresh(d, m * k, hx, x);
    lc_ref_linear(m, k, n, act, x, w, with_bias ? b : NULL, ref);
    const int64_t sx[2] = {m, k}, sw[2] = {k, n}, sb[1] = {n}, so[2] = {m, n};
    lc_tensor_t *tx = up(dev, d, 2, sx, hx), *tw = up(dev, d, 2, sw, hw);
    lc_tensor_t *tb = with_bias ? up(dev, d, 1, sb, hb) : NULL, *to = poisoned(dev, d, 2, so);
    CHECK_OK(lc_linear(tx, tw, tb, act, to, dev));
    const char *path = last_path();
    if (dev == LC_DEVICE_CPU && !starts_with(path, lowp_cpu_matmul_path(d, m, k, n))) {
        fprintf(stderr, "cpu %s linear ran %s, expected the %s GEMM\n", lc_dtype_name(d), path, lowp_cpu_matmul_path(d, m, k, n));
        CHECK(0);
    }
    down(to, ho, m * n);
    const double u = unit(d);
    const int fast_tanh = dev == LC_DEVICE_CUDA && act == LC_ACT_GELU_TANH;
    int bad = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            const double got = from16(d, ho[i * n + j]);
            if (nan_x && i == ni) {
                bad += !isnan(got);
                continue;
            }
            double mag = 0.0, pre = with_bias ? b[j] : 0.0;
            for (int64_t p = 0; p < k; p++) mag += fabs(x[i * k + p] * w[p * n + j]), pre += x[i * k + p] * w[p * n + j];
            const double r = ref[i * n + j];
            double tol = u * fabs(r) + 1.2 * (2.0 * (double)k * 0x1p-24 * mag + (with_bias ? 0x1p-23 * fabs(b[j]) : 0.0)) +
                         tiny(d);
            if (act == LC_ACT_GELU_ERF || act == LC_ACT_GELU_TANH) tol += 0x1p-20 * fabs(r);
            if (fast_tanh) tol += 0x1p-13 * fabs(pre);
            if (!(fabs(got - r) <= tol)) {
                if (bad < 3) fprintf(stderr, "  [%lld,%lld] got %.9g ref %.9g tol %.3g\n", (long long)i, (long long)j, got, r, tol);
                bad++;
            }
        }
    if (bad)
        fprintf(stderr, "%s %s linear %lldx%lldx%lld bias=%d act=%s nan_x=%d: %d bad (path %s)\n", lc_device_name(dev),
                lc_dtype_name(d), (long long)m, (long long)k, (long long)n, with_bias, act_names[act], nan_x, bad, path);
    CHECK(bad == 0);
    lc_tensor_free(tx), lc_tensor_free(tw), lc_tensor_free(tb), lc_tensor_free(to);
    free(hx), free(hw), free(hb), free(ho), free(x), free(w), free(b), free(ref);
}

/* ---- mixed dtypes ------------------------------------------------------------------------------------ */

static void mixed_dtypes(lc_device dev) {
    const int64_t s2[2] = {4, 8}, s1[1] = {8}, sw[2] = {8, 8};
    uint16_t h[64];
    for (int i = 0; i < 64; i++) h[i] = 0x3c00;
    lc_tensor_t *bf = up(dev, LC_DTYPE_BF16, 2, s2, h), *f16 = up(dev, LC_DTYPE_F16, 2, s2, h);
    lc_tensor_t *g16 = up(dev, LC_DTYPE_F16, 1, s1, h), *w16 = up(dev, LC_DTYPE_F16, 2, sw, h);
    lc_tensor_t *gbf = up(dev, LC_DTYPE_BF16, 1, s1, h), *out = poisoned(dev, LC_DTYPE_BF16, 2, s2);
    CHECK(lc_vector_add(bf, f16, out, dev) == LC_ERR_DTYPE && has("vector_add: b: expected dtype bfloat16 (a's), got float16"));
    CHECK(lc_matrix_div(f16, bf, out, dev) == LC_ERR_DTYPE && has("matrix_div: b: expected dtype float16 (a's), got bfloat16"));
    CHECK(lc_relu(f16, out, dev) == LC_ERR_DTYPE && has("relu: out: expected dtype float16, got bfloat16"));
    CHECK(lc_gelu(f16, out, LC_GELU_TANH, dev) == LC_ERR_DTYPE && has("gelu: out: expected dtype float16, got bfloat16"));
    CHECK(lc_layer_norm(bf, g16, NULL, out, 1e-5, dev) == LC_ERR_DTYPE &&
          has("layer_norm: gamma: expected dtype bfloat16 (x's), got float16"));
    CHECK(lc_linear(bf, w16, NULL, LC_ACT_RELU, out, dev) == LC_ERR_DTYPE &&
          has("linear: w: expected dtype bfloat16 (x's), got float16"));
    lc_tensor_t *o16 = poisoned(dev, LC_DTYPE_F16, 2, s2);
    CHECK(lc_linear(f16, w16, gbf, LC_ACT_NONE, o16, dev) == LC_ERR_DTYPE &&
          has("linear: bias: expected dtype float16 (x's), got bfloat16"));
    CHECK(untouched(out, 32) && untouched(o16, 32));
    lc_tensor_free(bf), lc_tensor_free(f16), lc_tensor_free(g16), lc_tensor_free(w16), lc_tensor_free(gbf);
    lc_tensor_free(out), lc_tensor_free(o16);
}

int main(void) {
    static const int64_t sizes[] = {1, 7, 63, 65, 1000, 4097, 200003};
    static const int64_t ln_shapes[][2] = {{1, 1},   {3, 7},     {65, 1000}, {4, 4096}, {5, 63},
                                           {2, 20000}, {300, 512}, {3, 1999},  {2, 9001}};
    static const int64_t lin_shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {63, 65, 129}, {100, 257, 70}, {5, 1000, 33}, {33, 600, 17}, {40, 533, 611}};
    const int ndev = lc_device_available(LC_DEVICE_CUDA) ? 2 : 1;
    for (int dv = 0; dv < ndev; dv++) {
        const lc_device dev = dv ? LC_DEVICE_CUDA : LC_DEVICE_CPU;
        for (int di = 0; di < 2; di++) {
            const lc_dtype d = di ? LC_DTYPE_F16 : LC_DTYPE_BF16;
            for (int op = 0; op < E_COUNT; op++) {
                for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                    elementwise_case(dev, d, op, sizes[s], 0, 0, 0, 0);
                elementwise_case(dev, d, op, 1000, 1, 0, 0, 0);
                elementwise_case(dev, d, op, 65, 0, 1, 0, 0);    /* out is exactly the input */
                elementwise_case(dev, d, op, 4097, 0, 0, 1, 1);  /* all 2 bytes past alignment */
                elementwise_case(dev, d, op, 4097, 0, 0, 1, 0);  /* misaligned against each other */
                elementwise_case(dev, d, op, 1000, 1, 0, 1, 1);
                printf("%s %s %s path: %s\n", lc_device_name(dev), lc_dtype_name(d), e_names[op], last_path());
            }
            for (size_t s = 0; s < sizeof ln_shapes / sizeof ln_shapes[0]; s++)
                for (int gb = 0; gb < 3; gb++) layer_norm_case(dev, d, ln_shapes[s][0], ln_shapes[s][1], gb > 0, gb > 1, 0, 0);
            layer_norm_case(dev, d, 9, 100, 1, 1, 1, 0);
            layer_norm_case(dev, d, 9, 100, 1, 1, 0, 1);
            printf("%s %s layer_norm path: %s\n", lc_device_name(dev), lc_dtype_name(d), last_path());
            for (size_t s = 0; s < sizeof lin_shapes / sizeof lin_shapes[0]; s++)
                for (int act = 0; act < LC_ACT_COUNT; act++)
                    for (int bias = 0; bias < 2; bias++)
                        linear_case(dev, d, lin_shapes[s][0], lin_shapes[s][1], lin_shapes[s][2], bias, (lc_activation)act, 0);
            /* a NaN in x: its row only (the ReLU / GELU-tanh epilogues of cuBLASLt are its own: cpu only) */
            for (int act = 0; act < LC_ACT_COUNT; act++)
                if (dev == LC_DEVICE_CPU || act == LC_ACT_NONE || act == LC_ACT_GELU_ERF)
                    linear_case(dev, d, 9, 33, 40, 1, (lc_activation)act, 1);
            linear_case(dev, d, 300, 512, 260, 1, LC_ACT_GELU_ERF, 0);
            printf("%s %s linear path: %s\n", lc_device_name(dev), lc_dtype_name(d), last_path());
        }
        mixed_dtypes(dev);
    }
    if (ndev == 1) printf("cuda not available: cpu only\n");
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
