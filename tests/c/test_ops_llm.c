/* test_ops_llm.c — kernel checks of the LLM building blocks on the CPU (llm_cpu.c, rope_cpu.c) through the
 * public ops (lc_rms_norm, lc_softmax, lc_silu, lc_silu_mul, lc_add, lc_mul, lc_rope) against float64 loops
 * written here, for float32 / float16 / bfloat16 (add, mul also float64): references of the rounded inputs,
 * outputs poisoned with NaN first, sizes across the block edges (1, 63, 1023, 1025, 4097 columns) and large
 * enough to thread, in place, broadcasting shapes, strided rope input (a view), rope at position 100000 and
 * with llama3 scaling, NaN rows of softmax. Tolerance: the max abs error over max |ref| within k·u, u the
 * dtype's unit roundoff (2^-24, 2^-11, 2^-8; 2^-53 for float64). CMake runs it under each LC_CPU_DISABLE
 * mask and with one thread. Prints "N passed, N failed". */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rope_freq.h"
#include "lightning_core/dtype.h"
#include "lightning_core/lightning_core.h"
#include "check.h"

static const lc_dtype DTS[3] = {LC_DTYPE_F32, LC_DTYPE_F16, LC_DTYPE_BF16};

static double unit(lc_dtype d) {
    return d == LC_DTYPE_F16 ? 0x1p-11 : d == LC_DTYPE_BF16 ? 0x1p-8 : d == LC_DTYPE_F64 ? 0x1p-53 : 0x1p-24;
}

/* Half the smallest subnormal of d: the absolute error a correctly rounded result may have near 0. */
static double tiny(lc_dtype d) {
    return d == LC_DTYPE_F16 ? 0x1p-25 : d == LC_DTYPE_BF16 ? 0x1p-134 : d == LC_DTYPE_F64 ? 0x1p-1074 : 0x1p-150;
}

static uint64_t g_rng = 88172645463325252ull;
static double rnd(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1p-52 - 1.0;
}

/* A host tensor of dtype d holding vals (rounded to d), and vals overwritten with the rounded values. */
static lc_tensor_t *make(lc_dtype d, int nd, const int64_t *shape, double *vals) {
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    lc_tensor_t *t = NULL;
    CHECK_OK(lc_tensor_new(d, LC_DEVICE_CPU, nd, shape, &t));
    if (!t) return NULL;
    CHECK_OK(lc_convert(d, lc_tensor_data(t), LC_DTYPE_F64, vals, (size_t)n));
    CHECK_OK(lc_convert(LC_DTYPE_F64, vals, d, lc_tensor_data(t), (size_t)n));
    return t;
}

static lc_tensor_t *make_out(lc_dtype d, int nd, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    double *nan = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) nan[i] = NAN;
    lc_tensor_t *t = make(d, nd, shape, nan);
    free(nan);
    return t;
}

/* max |got - ref| / max |ref| (NaN anywhere in got where ref is finite: +inf). */
static double err(const lc_tensor_t *t, const double *ref, int64_t n) {
    double *got = malloc((size_t)n * sizeof(double)), num = 0.0, den = 0.0;
    CHECK_OK(lc_convert(LC_DTYPE_F64, got, lc_tensor_dtype(t), lc_tensor_data(t), (size_t)n));
    for (int64_t i = 0; i < n; i++) {
        if (isnan(ref[i])) {
            if (!isnan(got[i])) num = INFINITY;
            continue;
        }
        if (isnan(got[i])) num = INFINITY;
        const double e = fabs(got[i] - ref[i]);
        if (e > num) num = e;
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    free(got);
    return den > 0 ? num / den : num;
}

static double *fill(int64_t n, double scale) {
    double *v = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) v[i] = scale * rnd();
    return v;
}

static void test_rms_softmax(void) {
    const int64_t shapes[][2] = {{1, 1}, {7, 63}, {3, 1023}, {5, 1025}, {2, 4097}, {300, 257}};
    for (int di = 0; di < 3; di++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const lc_dtype d = DTS[di];
            const int64_t rows = shapes[si][0], cols = shapes[si][1], n = rows * cols;
            double *x = fill(n, 3.0), *w = fill(cols, 1.0), *ref = malloc((size_t)n * sizeof(double));
            lc_tensor_t *tx = make(d, 2, shapes[si], x), *tw = make(d, 1, &cols, w), *to = make_out(d, 2, shapes[si]);
            /* rms_norm */
            for (int64_t r = 0; r < rows; r++) {
                double ss = 0.0;
                for (int64_t j = 0; j < cols; j++) ss += x[r * cols + j] * x[r * cols + j];
                const double rs = 1.0 / sqrt(ss / (double)cols + 1e-6);
                for (int64_t j = 0; j < cols; j++) ref[r * cols + j] = x[r * cols + j] * rs * w[j];
            }
            CHECK_OK(lc_rms_norm(tx, tw, to, 1e-6, LC_DEVICE_CPU));
            double e = err(to, ref, n);
            CHECK(e <= 4 * unit(d));
            if (e > 4 * unit(d)) fprintf(stderr, "  rms_norm %s %lldx%lld: %g\n", lc_dtype_name(d), (long long)rows, (long long)cols, e);
            /* softmax, in place on a copy */
            for (int64_t r = 0; r < rows; r++) {
                double m = -INFINITY, s = 0.0;
                for (int64_t j = 0; j < cols; j++) m = fmax(m, x[r * cols + j]);
                for (int64_t j = 0; j < cols; j++) s += exp(x[r * cols + j] - m);
                for (int64_t j = 0; j < cols; j++) ref[r * cols + j] = exp(x[r * cols + j] - m) / s;
            }
            CHECK_OK(lc_softmax(tx, tx, LC_DEVICE_CPU));
            e = err(tx, ref, n);
            /* relative to the row maximum of each row would be tighter; normwise over the tensor is enough */
            CHECK(e <= 8 * unit(d));
            if (e > 8 * unit(d)) fprintf(stderr, "  softmax %s %lldx%lld: %g\n", lc_dtype_name(d), (long long)rows, (long long)cols, e);
            lc_tensor_free(tx), lc_tensor_free(tw), lc_tensor_free(to);
            free(x), free(w), free(ref);
        }
    /* softmax rows: all -inf -> NaN, one NaN -> NaN row, -inf entries -> exactly 0 */
    const int64_t s3[2] = {3, 4};
    double v[12] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, 1, NAN, 2, 3, 0, -INFINITY, 0, -INFINITY};
    lc_tensor_t *t = make(LC_DTYPE_F32, 2, s3, v), *o = make_out(LC_DTYPE_F32, 2, s3);
    CHECK_OK(lc_softmax(t, o, LC_DEVICE_CPU));
    const float *p = lc_tensor_data(o);
    for (int j = 0; j < 8; j++) CHECK(isnan(p[j]));
    CHECK(p[8] == 0.5f && p[9] == 0.0f && p[10] == 0.5f && p[11] == 0.0f);
    lc_tensor_free(t), lc_tensor_free(o);
}

static double silu_ref(double x) { return x / (1.0 + exp(-x)); }

static void test_silu(void) {
    const int64_t ns[] = {1, 1023, 1025, 300000};
    for (int di = 0; di < 3; di++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            const lc_dtype d = DTS[di];
            const int64_t n = ns[k];
            double *a = fill(n, 12.0), *b = fill(n, 2.0), *ref = malloc((size_t)n * sizeof(double));
            if (n > 4) a[0] = -95.0, a[1] = 95.0, a[2] = -0.0, a[3] = NAN;
            lc_tensor_t *ta = make(d, 1, &n, a), *tb = make(d, 1, &n, b), *to = make_out(d, 1, &n);
            for (int64_t i = 0; i < n; i++) ref[i] = silu_ref(a[i]);
            CHECK_OK(lc_silu(ta, to, LC_DEVICE_CPU));
            CHECK(err(to, ref, n) <= 4 * unit(d));
            /* elementwise relative check where the result is normal */
            double *got = malloc((size_t)n * sizeof(double));
            lc_convert(LC_DTYPE_F64, got, d, lc_tensor_data(to), (size_t)n);
            int bad = 0;
            for (int64_t i = 0; i < n; i++)
                if (!isnan(ref[i]) && fabs(ref[i]) > 1e-30 && fabs(got[i] - ref[i]) > 4 * unit(d) * fabs(ref[i]) + tiny(d)) {
                    if (!bad) fprintf(stderr, "  silu %s x=%g: got %g, want %g\n", lc_dtype_name(d), a[i], got[i], ref[i]);
                    bad++;
                }
            CHECK(bad == 0);
            if (n > 4) CHECK(isnan(got[3]));
            for (int64_t i = 0; i < n; i++) ref[i] = silu_ref(a[i]) * b[i];
            CHECK_OK(lc_silu_mul(ta, tb, tb, LC_DEVICE_CPU)); /* in place into b */
            CHECK(err(tb, ref, n) <= 6 * unit(d));
            lc_tensor_free(ta), lc_tensor_free(tb), lc_tensor_free(to);
            free(a), free(b), free(ref), free(got);
        }
}

/* a [sa] (op) b [sb] -> out [so] (rank 4 each, right-aligned already). */
static void bcast_case(lc_dtype d, int mul, int nda, const int64_t *sa, int ndb, const int64_t *sb) {
    int64_t A[4] = {1, 1, 1, 1}, B[4] = {1, 1, 1, 1}, O[4], na = 1, nb = 1, no = 1;
    for (int i = 0; i < nda; i++) A[4 - nda + i] = sa[i], na *= sa[i];
    for (int i = 0; i < ndb; i++) B[4 - ndb + i] = sb[i], nb *= sb[i];
    for (int i = 0; i < 4; i++) O[i] = A[i] > B[i] ? A[i] : B[i], no *= O[i];
    const int ndo = nda > ndb ? nda : ndb;
    double *a = fill(na, 2.0), *b = fill(nb, 2.0), *ref = malloc((size_t)no * sizeof(double));
    lc_tensor_t *ta = make(d, nda, sa, a), *tb = make(d, ndb, sb, b), *to = make_out(d, ndo, O + 4 - ndo);
    for (int64_t i0 = 0; i0 < O[0]; i0++)
        for (int64_t i1 = 0; i1 < O[1]; i1++)
            for (int64_t i2 = 0; i2 < O[2]; i2++)
                for (int64_t i3 = 0; i3 < O[3]; i3++) {
                    const int64_t ia = (((A[0] > 1 ? i0 : 0) * A[1] + (A[1] > 1 ? i1 : 0)) * A[2] + (A[2] > 1 ? i2 : 0)) * A[3] + (A[3] > 1 ? i3 : 0);
                    const int64_t ib = (((B[0] > 1 ? i0 : 0) * B[1] + (B[1] > 1 ? i1 : 0)) * B[2] + (B[2] > 1 ? i2 : 0)) * B[3] + (B[3] > 1 ? i3 : 0);
                    ref[((i0 * O[1] + i1) * O[2] + i2) * O[3] + i3] = mul ? a[ia] * b[ib] : a[ia] + b[ib];
                }
    CHECK_OK((mul ? lc_mul : lc_add)(ta, tb, to, LC_DEVICE_CPU));
    /* one rounding of an exact sum/product of the rounded inputs: within u of each element */
    double *got = malloc((size_t)no * sizeof(double));
    lc_convert(LC_DTYPE_F64, got, d, lc_tensor_data(to), (size_t)no);
    int bad = 0;
    for (int64_t i = 0; i < no; i++)
        if (!(fabs(got[i] - ref[i]) <= unit(d) * fabs(ref[i]) + tiny(d))) bad++;
    CHECK(bad == 0);
    if (bad) fprintf(stderr, "  %s %s: %d of %lld wrong\n", mul ? "mul" : "add", lc_dtype_name(d), bad, (long long)no);
    lc_tensor_free(ta), lc_tensor_free(tb), lc_tensor_free(to);
    free(a), free(b), free(ref), free(got);
}

static void test_bcast(void) {
    const lc_dtype all[4] = {LC_DTYPE_F32, LC_DTYPE_F16, LC_DTYPE_BF16, LC_DTYPE_F64};
    for (int di = 0; di < 4; di++)
        for (int mul = 0; mul < 2; mul++) {
            const lc_dtype d = all[di];
            bcast_case(d, mul, 2, (const int64_t[]){7, 1025}, 2, (const int64_t[]){7, 1025}); /* residual */
            bcast_case(d, mul, 2, (const int64_t[]){7, 1025}, 1, (const int64_t[]){1025});    /* bias */
            bcast_case(d, mul, 1, (const int64_t[]){63}, 2, (const int64_t[]){5, 63});        /* a broadcasts */
            bcast_case(d, mul, 2, (const int64_t[]){5, 1}, 2, (const int64_t[]){1, 9});       /* outer product */
            bcast_case(d, mul, 4, (const int64_t[]){2, 3, 1, 5}, 3, (const int64_t[]){3, 4, 1});
            bcast_case(d, mul, 1, (const int64_t[]){1}, 3, (const int64_t[]){3, 200, 700}); /* scalar, threaded */
        }
    /* in place: out is a (a has the output shape) */
    const int64_t s[2] = {4, 6}, sb[1] = {6};
    double a[24], b[6], ref[24];
    for (int i = 0; i < 24; i++) a[i] = rnd();
    for (int i = 0; i < 6; i++) b[i] = rnd();
    lc_tensor_t *ta = make(LC_DTYPE_F32, 2, s, a), *tb = make(LC_DTYPE_F32, 1, sb, b);
    for (int i = 0; i < 24; i++) ref[i] = (double)(float)(a[i] + b[i % 6]);
    CHECK_OK(lc_add(ta, tb, ta, LC_DEVICE_CPU));
    CHECK(err(ta, ref, 24) == 0.0);
    /* out may not be a broadcast input */
    CHECK(lc_add(tb, ta, tb, LC_DEVICE_CPU) != LC_OK);
    lc_tensor_free(ta), lc_tensor_free(tb);
}

/* float64 reference of rope on contiguous double x [B,H,S,D]. */
static void rope_ref(const double *x, const int64_t *pos, int64_t B, int64_t H, int64_t S, int64_t D, int64_t rd,
                     const lc_rope_options *o, double *out) {
    const int64_t h2 = rd / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t s = 0; s < S; s++) {
                const double *xr = x + ((b * H + h) * S + s) * D;
                double *orow = out + ((b * H + h) * S + s) * D;
                for (int64_t i = 0; i < h2; i++) {
                    const double ang = (double)pos[b * S + s] * lc_rope_inv_freq(i, rd, o);
                    const double c = cos(ang), sn = sin(ang);
                    orow[i] = xr[i] * c - xr[i + h2] * sn;
                    orow[i + h2] = xr[i + h2] * c + xr[i] * sn;
                }
                for (int64_t j = rd; j < D; j++) orow[j] = xr[j];
            }
}

static void rope_case(lc_dtype d, int64_t B, int64_t H, int64_t S, int64_t D, int64_t rd, int64_t pos0,
                      const lc_rope_options *o, int strided, int inplace) {
    const int64_t n = B * H * S * D, shape[4] = {B, H, S, D};
    double *x = fill(n, 1.0), *ref = malloc((size_t)n * sizeof(double));
    int64_t *pos = malloc((size_t)(B * S) * sizeof(int64_t));
    for (int64_t i = 0; i < B * S; i++) pos[i] = pos0 + (i * 7919) % (S + 3);
    lc_tensor_t *tx = NULL, *base = NULL, *tp = NULL, *to = NULL;
    if (strided) { /* x as a [B,S,H,D] buffer viewed as [B,H,S,D] (the layout after a q projection) */
        const int64_t bs[4] = {B, S, H, D};
        double *xb = malloc((size_t)n * sizeof(double));
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t s = 0; s < S; s++)
                    for (int64_t j = 0; j < D; j++) xb[((b * S + s) * H + h) * D + j] = x[((b * H + h) * S + s) * D + j];
        base = make(d, 4, bs, xb);
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t s = 0; s < S; s++)
                    for (int64_t j = 0; j < D; j++) x[((b * H + h) * S + s) * D + j] = xb[((b * S + s) * H + h) * D + j];
        const int64_t st[4] = {S * H * D, D, H * D, 1};
        CHECK_OK(lc_tensor_view(base, 4, shape, st, 0, LC_DEVICE_AUTO, &tx));
        free(xb);
    } else {
        tx = make(d, 4, shape, x);
    }
    const int64_t ps[2] = {B, S};
    CHECK_OK(lc_tensor_from_host(pos, (size_t)(B * S) * sizeof(int64_t), LC_DTYPE_I64, LC_DEVICE_CPU, 2, ps, &tp));
    to = inplace ? tx : make_out(d, 4, shape);
    rope_ref(x, pos, B, H, S, D, rd, o, ref);
    lc_rope_options oo = *o;
    oo.rotary_dim = rd;
    CHECK_OK(lc_rope(tx, tp, to, &oo, LC_DEVICE_CPU));
    const double e = err(to, ref, n);
    /* the angle costs ~1e-6 relative at 1e5 in float32 cos/sin of the reduced angle; 16-bit: the rounding */
    const double tol = d == LC_DTYPE_F32 ? 2e-6 : 4 * unit(d);
    CHECK(e <= tol);
    if (e > tol) fprintf(stderr, "  rope %s pos0 %lld rd %lld strided %d: %g\n", lc_dtype_name(d), (long long)pos0, (long long)rd, strided, e);
    lc_tensor_free(tx), lc_tensor_free(tp), lc_tensor_free(base);
    if (!inplace) lc_tensor_free(to);
    free(x), free(ref), free(pos);
}

static void test_rope(void) {
    lc_rope_options plain = {.theta = 10000.0};
    lc_rope_options l3 = {.theta = 500000.0, .scaling = LC_ROPE_SCALING_LLAMA3, .factor = 8.0, .low_freq_factor = 1.0,
                          .high_freq_factor = 4.0, .original_max_position_embeddings = 8192.0};
    lc_rope_options lin = {.theta = 10000.0, .scaling = LC_ROPE_SCALING_LINEAR, .factor = 4.0};
    for (int di = 0; di < 3; di++) {
        const lc_dtype d = DTS[di];
        rope_case(d, 2, 3, 5, 8, 8, 0, &plain, 0, 0);
        rope_case(d, 1, 4, 9, 64, 32, 3, &plain, 1, 0);   /* partial rotary, strided x */
        rope_case(d, 2, 2, 3, 128, 128, 100000, &l3, 0, 1); /* large positions, llama3, in place */
        rope_case(d, 1, 8, 40, 64, 64, 17, &lin, 1, 0);   /* threaded */
    }
    /* bad options */
    const int64_t s[2] = {3, 6}, ps[1] = {3};
    double x[18] = {0};
    lc_tensor_t *tx = make(LC_DTYPE_F32, 2, s, x), *to = make_out(LC_DTYPE_F32, 2, s), *tp = NULL;
    int64_t pos[3] = {0, 1, 2};
    CHECK_OK(lc_tensor_from_host(pos, sizeof pos, LC_DTYPE_I64, LC_DEVICE_CPU, 1, ps, &tp));
    lc_rope_options bad = {.rotary_dim = 3};
    CHECK(lc_rope(tx, tp, to, &bad, LC_DEVICE_CPU) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "rotary_dim"));
    bad = (lc_rope_options){.scaling = LC_ROPE_SCALING_LLAMA3, .factor = 8, .low_freq_factor = 4, .high_freq_factor = 1,
                            .original_max_position_embeddings = 8192};
    CHECK(lc_rope(tx, tp, to, &bad, LC_DEVICE_CPU) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "high_freq_factor"));
    CHECK(lc_rope(tx, tx, to, NULL, LC_DEVICE_CPU) == LC_ERR_DTYPE && strstr(lc_last_error(), "positions"));
    const int64_t ps4[1] = {4};
    lc_tensor_t *tp4 = NULL;
    int64_t pos4[4] = {0};
    CHECK_OK(lc_tensor_from_host(pos4, sizeof pos4, LC_DTYPE_I64, LC_DEVICE_CPU, 1, ps4, &tp4));
    CHECK(lc_rope(tx, tp4, to, NULL, LC_DEVICE_CPU) == LC_ERR_SHAPE && strstr(lc_last_error(), "positions: expected [seq=3]"));
    lc_tensor_free(tx), lc_tensor_free(to), lc_tensor_free(tp), lc_tensor_free(tp4);
}

int main(void) {
    test_rms_softmax();
    test_silu();
    test_bcast();
    test_rope();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
