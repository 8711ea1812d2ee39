/* test_ops_llm.c — kernel checks of the LLM building blocks on the CPU (llm_cpu.c, rope_cpu.c) through the
 * public ops (lc_rms_norm, lc_softmax, lc_silu, lc_silu_mul, lc_add, lc_mul, lc_rope; lc_embedding_offset's
 * zero rows outside the shard) against float64 loops
 * written here, for float32 / float16 / bfloat16 (add, mul also float64): references of the rounded inputs,
 * outputs poisoned with NaN first, sizes across the block edges (1, 63, 1023, 1025, 4097 columns) and large
 * enough to thread, in place, broadcasting shapes, strided rope input (a view), rope at position 100000 and
 * with llama3 scaling, NaN rows of softmax. Tolerance: the max abs error over max |ref| within k·u, u the
 * dtype's unit roundoff (2^-24, 2^-11, 2^-8; 2^-53 for float64). CMake runs it under each LC_CPU_DISABLE
 * mask and with one thread. Prints "N passed, N failed".
 * CUDA part (built with LC_TEST_CUDA; skipped without a device or when LC_TEST_DEVICES excludes cuda), the
 * launchers called directly on a stream: argmax (every dtype, 1..3 rows of 1..100003 columns, rows starting
 * on and off a 16-byte boundary) with ties, +inf, NaN planted on both sides of each chunk start of the split
 * path (lc_cuda_argmax_chunks), all -inf and signed-zero rows, each launch twice (the self-resetting
 * counters), many rows, a 4M row, and replays of a captured CUDA graph with new data; rms_norm,
 * layer_norm (1 x 768, 2048, 8192) and rope (q and k of one qkv row, two option sets) in bfloat16 against
 * float64 within 2u of the largest |ref|. LC_TEST_VERBOSE=1 prints us per call (200 launches, cudaEvent;
 * stream and captured graph) of argmax 1x50257 and 1x32000, rms_norm 1x2048, layer_norm 1x768, rope
 * [1,32,1,64] (bfloat16). */
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

/* ---- CUDA (LC_TEST_CUDA builds; skipped without a device or with LC_TEST_DEVICES=cpu) ------------------- */
/* First maximum, the first NaN winning (the CPU kernel's and NumPy's rule; -0 == +0). */
static int64_t argmax_ref(const double *r, int64_t cols) {
    int64_t b = 0;
    for (int64_t j = 0; j < cols; j++) {
        if (isnan(r[j])) return j;
        if (r[j] > r[b]) b = j;
    }
    return b;
}

/* argmax on the CPU (index_cpu.c: 16 elements at a time on AVX-512, element by element under the masks): rows
 * of lengths across the 16-element vector edges, each dtype, planted ties (the first wins), +inf twice, NaN after
 * an inf (the first NaN wins), all -inf, alternating -0/+0 (equal: index 0); out poisoned. */
static void test_argmax_cpu(void) {
    const lc_dtype dts[4] = {LC_DTYPE_F32, LC_DTYPE_F64, LC_DTYPE_F16, LC_DTYPE_BF16};
    const int64_t lens[] = {1, 15, 16, 17, 31, 33, 255, 4097, 50257};
    for (int di = 0; di < 4; di++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (int kind = 0; kind < 6; kind++) {
                const int64_t rows = 3, cols = lens[li], shape[2] = {rows, cols}, oshape[1] = {rows};
                double *v = fill(rows * cols, 1.0);
                for (int64_t r = 0; r < rows; r++) {
                    double *row = v + r * cols;
                    const int64_t a = (r * 7 + 3) % cols, b = (r * 13 + cols / 2) % cols;
                    if (kind == 1) row[a] = row[b] = row[cols - 1] = 4.0;
                    if (kind == 2) row[a] = INFINITY, row[b] = INFINITY;
                    if (kind == 3) row[a] = INFINITY, row[b] = NAN, row[cols - 1] = NAN;
                    if (kind == 4)
                        for (int64_t j = 0; j < cols; j++) row[j] = -INFINITY;
                    if (kind == 5)
                        for (int64_t j = 0; j < cols; j++) row[j] = (j + r) % 2 ? 0.0 : -0.0;
                }
                lc_tensor_t *x = make(dts[di], 2, shape, v), *out = NULL;
                CHECK_OK(lc_tensor_new(LC_DTYPE_I64, LC_DEVICE_CPU, 1, oshape, &out));
                int64_t *o = lc_tensor_data(out);
                for (int64_t r = 0; r < rows; r++) o[r] = -7;
                CHECK_OK(lc_argmax(x, out, LC_DEVICE_CPU));
                for (int64_t r = 0; r < rows; r++) {
                    const int64_t want = argmax_ref(v + r * cols, cols);
                    CHECK(o[r] == want);
                    if (o[r] != want)
                        fprintf(stderr, "  cpu argmax %s %lldx%lld kind %d row %lld: got %lld want %lld\n",
                                lc_dtype_name(dts[di]), (long long)rows, (long long)cols, kind, (long long)r,
                                (long long)o[r], (long long)want);
                }
                lc_tensor_free(x), lc_tensor_free(out);
                free(v);
            }
}

#ifdef LC_TEST_CUDA
#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_kernels.h"

#define CUDA_OK(e) CHECK((e) == cudaSuccess)

/* vals rounded to d (in place) and copied to the device buffer dst of n elements of d. */
static void dev_put(lc_dtype d, double *vals, int64_t n, void *dst) {
    const size_t es = lc_dtype_size(d);
    void *h = malloc((size_t)n * es + 1);
    CHECK_OK(lc_convert(d, h, LC_DTYPE_F64, vals, (size_t)n));
    CHECK_OK(lc_convert(LC_DTYPE_F64, vals, d, h, (size_t)n));
    CUDA_OK(cudaMemcpy(dst, h, (size_t)n * es, cudaMemcpyHostToDevice));
    free(h);
}

static void *dev_alloc(size_t bytes) {
    void *p = NULL;
    CUDA_OK(cudaMalloc(&p, bytes + 16)); /* 256-byte aligned */
    return p;
}

/* Device values of dtype d -> float64. */
static void dev_get(lc_dtype d, const void *src, int64_t n, double *vals) {
    const size_t es = lc_dtype_size(d);
    void *h = malloc((size_t)n * es + 1);
    CUDA_OK(cudaMemcpy(h, src, (size_t)n * es, cudaMemcpyDeviceToHost));
    CHECK_OK(lc_convert(LC_DTYPE_F64, vals, d, h, (size_t)n));
    free(h);
}

/* Chunk k's first element in row r when the data starts `off` elements after a 256-byte aligned address
 * (index_cuda.cu's split: a scalar head to the first 16-byte boundary, then ceil(nv / nch) vectors a chunk). */
static int64_t chunk_start(lc_dtype d, int off, int64_t r, int64_t cols, int nch, int k) {
    const int64_t es = (int64_t)lc_dtype_size(d), V = 16 / es;
    const int64_t a = (off + r * cols) * es;
    int64_t h = ((16 - (a & 15)) & 15) / es;
    if (h > cols) h = cols;
    const int64_t nv = (cols - h) / V, vpc = (nv + nch - 1) / nch;
    const int64_t p = h + (int64_t)k * vpc * V;
    return p < cols ? p : cols - 1;
}

enum { AM_RANDOM, AM_TIES, AM_NAN, AM_INF, AM_ALL_NEG_INF, AM_ZEROS, AM_KINDS };

/* One argmax case: the kind's values planted on both sides of each chunk start of each row, run twice on
 * stream st (the output poisoned before each run), against argmax_ref. */
static void argmax_case(lc_dtype d, int64_t rows, int64_t cols, int off, int kind, cudaStream_t st) {
    const int64_t n = rows * cols;
    const size_t es = lc_dtype_size(d);
    const int nch = lc_cuda_argmax_chunks(rows, cols, d);
    double *v = fill(n, 1.0);
    for (int64_t r = 0; r < rows; r++) {
        double *row = v + r * cols;
        for (int k = 1; k <= (nch > 1 ? nch - 1 : 1); k++) {
            const int64_t b = nch > 1 ? chunk_start(d, off, r, cols, nch, k) : cols / 2;
            const int64_t bm = b > 0 ? b - 1 : 0;
            if (kind == AM_TIES) row[bm] = row[b] = row[cols - 1] = 4.0; /* the first (end of chunk k-1) wins */
            if (kind == AM_INF) row[b] = INFINITY;
            if (kind == AM_NAN && (k == 1 + (int)(r % 2) || k == nch - 1)) row[b] = NAN, row[bm] = INFINITY;
        }
        if (kind == AM_INF)
            for (int64_t j = 0; j < cols; j++) row[j] = row[j] == INFINITY ? INFINITY : -INFINITY;
        if (kind == AM_NAN && r == 2) row[cols - 1] = NAN; /* NaN in the tail */
        if (kind == AM_ALL_NEG_INF)
            for (int64_t j = 0; j < cols; j++) row[j] = -INFINITY;
        if (kind == AM_ZEROS)
            for (int64_t j = 0; j < cols; j++) row[j] = (j + r) % 2 ? 0.0 : -0.0;
    }
    char *base = dev_alloc((size_t)(n + off) * es);
    void *x = base + (size_t)off * es;
    dev_put(d, v, n, x);
    int64_t *out = dev_alloc((size_t)rows * sizeof(int64_t));
    int64_t *got = malloc((size_t)rows * sizeof(int64_t)), *poison = malloc((size_t)rows * sizeof(int64_t));
    for (int64_t r = 0; r < rows; r++) poison[r] = -7;
    const lc_argmax_args a = {.dtype = d, .rows = rows, .cols = cols, .x = x, .out = out};
    for (int rep = 0; rep < 2; rep++) {
        CUDA_OK(cudaMemcpy(out, poison, (size_t)rows * sizeof(int64_t), cudaMemcpyHostToDevice));
        CUDA_OK(lc_cuda_launch_argmax(&a, st));
        CUDA_OK(cudaStreamSynchronize(st));
        CUDA_OK(cudaMemcpy(got, out, (size_t)rows * sizeof(int64_t), cudaMemcpyDeviceToHost));
        for (int64_t r = 0; r < rows; r++) {
            const int64_t want = argmax_ref(v + r * cols, cols);
            CHECK(got[r] == want);
            if (got[r] != want)
                fprintf(stderr, "  argmax %s %lldx%lld off %d kind %d chunks %d row %lld rep %d: got %lld want %lld\n",
                        lc_dtype_name(d), (long long)rows, (long long)cols, off, kind, nch, (long long)r, rep,
                        (long long)got[r], (long long)want);
        }
    }
    cudaFree(base), cudaFree(out);
    free(v), free(got), free(poison);
}

/* argmax captured once in a CUDA graph and replayed with new data in the same buffer: the winner moves
 * between chunks (and ties across them) from replay to replay. */
static void argmax_graph(cudaStream_t st) {
    const int64_t cols = 50257;
    const lc_dtype d = LC_DTYPE_BF16;
    double *v = malloc((size_t)cols * sizeof(double));
    void *x = dev_alloc((size_t)cols * 2);
    int64_t *out = dev_alloc(sizeof(int64_t)), got = -1;
    const lc_argmax_args a = {.dtype = d, .rows = 1, .cols = cols, .x = x, .out = out};
    cudaGraph_t g = NULL;
    cudaGraphExec_t ge = NULL;
    CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    CUDA_OK(lc_cuda_launch_argmax(&a, st));
    CUDA_OK(cudaStreamEndCapture(st, &g));
    CUDA_OK(cudaGraphInstantiate(&ge, g, 0));
    const int64_t at[6] = {cols - 1, 0, 2048, 2047, 31000, 12345};
    for (int i = 0; i < 6; i++) {
        for (int64_t j = 0; j < cols; j++) v[j] = rnd();
        v[at[i]] = 8.0;
        if (i == 4) v[40000] = 8.0; /* a tie in a later chunk */
        if (i == 5) v[50000] = NAN; /* NaN beats the maximum */
        dev_put(d, v, cols, x);
        const int64_t poison = -7;
        CUDA_OK(cudaMemcpy(out, &poison, sizeof poison, cudaMemcpyHostToDevice));
        CUDA_OK(cudaGraphLaunch(ge, st));
        CUDA_OK(cudaStreamSynchronize(st));
        CUDA_OK(cudaMemcpy(&got, out, sizeof got, cudaMemcpyDeviceToHost));
        CHECK(got == argmax_ref(v, cols));
        if (got != argmax_ref(v, cols)) fprintf(stderr, "  argmax graph replay %d: got %lld\n", i, (long long)got);
    }
    cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
    cudaFree(x), cudaFree(out);
    free(v);
}

static void test_argmax_cuda(cudaStream_t st) {
    const lc_dtype dts[4] = {LC_DTYPE_F32, LC_DTYPE_F64, LC_DTYPE_F16, LC_DTYPE_BF16};
    const int64_t cols[] = {1, 7, 255, 256, 257, 4097, 32000, 50257, 100003};
    for (int di = 0; di < 4; di++)
        for (int64_t rows = 1; rows <= 3; rows++)
            for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++)
                for (int kind = 0; kind < AM_KINDS; kind++)
                    for (int off = 0; off < 2; off++) /* off 1: every row starts off a 16-byte boundary */
                        argmax_case(dts[di], rows, cols[ci], off, kind, st);
    /* many rows (one block a row), a long single row (many chunks), then the split again */
    argmax_case(LC_DTYPE_BF16, 3000, 300, 0, AM_TIES, st);
    argmax_case(LC_DTYPE_F32, 1, 1 << 22, 1, AM_NAN, st);
    argmax_case(LC_DTYPE_BF16, 64, 50257, 0, AM_TIES, st);
    argmax_case(LC_DTYPE_BF16, 1, 50257, 0, AM_TIES, st);
    argmax_graph(st);
}

/* rms_norm 1 x cols, layer_norm 1 x cols and rope [1, H, 1, 64] of a qkv row (bfloat16) on the device
 * against float64 references: the decode shapes the timings below run. */
static void test_decode_shapes_cuda(cudaStream_t st) {
    const lc_dtype d = LC_DTYPE_BF16;
    const int64_t cs[3] = {2048, 768, 8192};
    for (int i = 0; i < 3; i++) {
        const int64_t c = cs[i];
        double *x = fill(c, 3.0), *w = fill(c, 1.0), *b = fill(c, 1.0), *ref = malloc((size_t)c * sizeof(double));
        double *got = malloc((size_t)c * sizeof(double));
        void *dx = dev_alloc((size_t)c * 2), *dw = dev_alloc((size_t)c * 2), *db = dev_alloc((size_t)c * 2);
        void *dout = dev_alloc((size_t)c * 2);
        dev_put(d, x, c, dx), dev_put(d, w, c, dw), dev_put(d, b, c, db);
        double ss = 0.0, mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < c; j++) ss += x[j] * x[j], mean += x[j];
        mean /= (double)c;
        for (int64_t j = 0; j < c; j++) var += (x[j] - mean) * (x[j] - mean);
        var /= (double)c;
        const lc_rms_norm_args ra = {.dtype = d, .rows = 1, .cols = c, .eps = 1e-6, .x = dx, .weight = dw, .out = dout};
        CUDA_OK(cudaMemset(dout, 0xff, (size_t)c * 2)); /* NaN */
        CUDA_OK(lc_cuda_launch_rms_norm(&ra, st));
        CUDA_OK(cudaStreamSynchronize(st));
        dev_get(d, dout, c, got);
        for (int64_t j = 0; j < c; j++) ref[j] = x[j] / sqrt(ss / (double)c + 1e-6) * w[j];
        double e = 0.0, m = 0.0;
        for (int64_t j = 0; j < c; j++) e = fmax(e, isnan(got[j]) ? INFINITY : fabs(got[j] - ref[j])), m = fmax(m, fabs(ref[j]));
        CHECK(e <= 2 * unit(d) * m);
        if (e > 2 * unit(d) * m) fprintf(stderr, "  cuda rms_norm 1x%lld: %g\n", (long long)c, e / m);
        const lc_layer_norm_args la = {.dtype = d, .rows = 1, .cols = c, .eps = 1e-5, .x = dx, .gamma = dw, .beta = db, .out = dout};
        CUDA_OK(cudaMemset(dout, 0xff, (size_t)c * 2));
        CUDA_OK(lc_cuda_launch_layer_norm(&la, st));
        CUDA_OK(cudaStreamSynchronize(st));
        dev_get(d, dout, c, got);
        for (int64_t j = 0; j < c; j++) ref[j] = (x[j] - mean) / sqrt(var + 1e-5) * w[j] + b[j];
        e = 0.0, m = 0.0;
        for (int64_t j = 0; j < c; j++) e = fmax(e, isnan(got[j]) ? INFINITY : fabs(got[j] - ref[j])), m = fmax(m, fabs(ref[j]));
        CHECK(e <= 2 * unit(d) * m);
        if (e > 2 * unit(d) * m) fprintf(stderr, "  cuda layer_norm 1x%lld: %g\n", (long long)c, e / m);
        cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dout);
        free(x), free(w), free(b), free(ref), free(got);
    }
    /* rope: q [1, 32, 1, 64] and k [1, 4, 1, 64] of one qkv row (32 + 2·4 heads of 64), positions [1, 1] */
    const int64_t row = 40 * 64, D = 64;
    double *x = fill(row, 1.0), *got = malloc((size_t)row * sizeof(double)), *ref = malloc((size_t)row * sizeof(double));
    void *dx = dev_alloc((size_t)row * 2), *dout = dev_alloc((size_t)row * 2);
    int64_t *dpos = dev_alloc(sizeof(int64_t)), pos = 4321;
    dev_put(d, x, row, dx);
    CUDA_OK(cudaMemcpy(dpos, &pos, sizeof pos, cudaMemcpyHostToDevice));
    const lc_rope_options opts[2] = {{.theta = 10000.0}, {.theta = 500000.0, .scaling = LC_ROPE_SCALING_LLAMA3, .factor = 8.0,
                                                          .low_freq_factor = 1.0, .high_freq_factor = 4.0,
                                                          .original_max_position_embeddings = 8192.0}};
    for (int oi = 0; oi < 2; oi++)
        for (int kv = 0; kv < 2; kv++) {
            const int64_t H = kv ? 4 : 32, h0 = kv ? 32 : 0;
            lc_rope_args a = {.dtype = d, .batch = 1, .heads = H, .seq = 1, .head_dim = D, .rotary_dim = D,
                              .x = (const char *)dx + h0 * D * 2, .x_st = {row, D, row, 1}, .positions = dpos,
                              .pos_dtype = LC_DTYPE_I64, .p_st = {1, 1}, .opt = opts[oi], .out = dout};
            a.opt.rotary_dim = D;
            CUDA_OK(cudaMemset(dout, 0xff, (size_t)row * 2));
            CUDA_OK(lc_cuda_launch_rope(&a, st));
            CUDA_OK(cudaStreamSynchronize(st));
            dev_get(d, dout, H * D, got);
            rope_ref(x + h0 * D, &pos, 1, H, 1, D, D, &opts[oi], ref);
            double e = 0.0, m = 0.0;
            for (int64_t j = 0; j < H * D; j++) e = fmax(e, isnan(got[j]) ? INFINITY : fabs(got[j] - ref[j])), m = fmax(m, fabs(ref[j]));
            CHECK(e <= 2 * unit(d) * m);
            if (e > 2 * unit(d) * m) fprintf(stderr, "  cuda rope heads %lld options %d: %g\n", (long long)H, oi, e / m);
        }
    cudaFree(dx), cudaFree(dout), cudaFree(dpos);
    free(x), free(got), free(ref);
}

typedef cudaError_t (*launch_fn)(const void *args, cudaStream_t st);
static cudaError_t l_argmax(const void *a, cudaStream_t st) { return lc_cuda_launch_argmax(a, st); }
static cudaError_t l_rms(const void *a, cudaStream_t st) { return lc_cuda_launch_rms_norm(a, st); }
static cudaError_t l_ln(const void *a, cudaStream_t st) { return lc_cuda_launch_layer_norm(a, st); }
static cudaError_t l_rope(const void *a, cudaStream_t st) { return lc_cuda_launch_rope(a, st); }

/* us per call of 200 launches: back to back on the stream, and the same 200 captured in one CUDA graph
 * (as a decode step replays them); cudaEvent timing. Informational, no threshold. */
static void time_launch(const char *name, launch_fn f, const void *args, cudaStream_t st) {
    enum { N = 200 };
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    for (int i = 0; i < 20; i++) CUDA_OK(f(args, st));
    float ms_stream = 0.0f, ms_graph = 0.0f;
    CUDA_OK(cudaEventRecord(e0, st));
    for (int i = 0; i < N; i++) CUDA_OK(f(args, st));
    CUDA_OK(cudaEventRecord(e1, st));
    CUDA_OK(cudaEventSynchronize(e1));
    CUDA_OK(cudaEventElapsedTime(&ms_stream, e0, e1));
    cudaGraph_t g = NULL;
    cudaGraphExec_t ge = NULL;
    CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < N; i++) CUDA_OK(f(args, st));
    CUDA_OK(cudaStreamEndCapture(st, &g));
    CUDA_OK(cudaGraphInstantiate(&ge, g, 0));
    CUDA_OK(cudaGraphLaunch(ge, st)); /* warm */
    CUDA_OK(cudaEventRecord(e0, st));
    CUDA_OK(cudaGraphLaunch(ge, st));
    CUDA_OK(cudaEventRecord(e1, st));
    CUDA_OK(cudaEventSynchronize(e1));
    CUDA_OK(cudaEventElapsedTime(&ms_graph, e0, e1));
    printf("  timing %-34s %7.2f us/call (stream)  %7.2f us/call (graph)\n", name, 1e3 * ms_stream / N, 1e3 * ms_graph / N);
    cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
}

static void timings_cuda(cudaStream_t st) {
    const lc_dtype d = LC_DTYPE_BF16;
    double *v = fill(50257, 1.0);
    void *x = dev_alloc(50257 * 2), *w = dev_alloc(50257 * 2), *b = dev_alloc(50257 * 2), *o = dev_alloc(50257 * 2);
    int64_t *idx = dev_alloc(4 * sizeof(int64_t)), pos = 100;
    dev_put(d, v, 50257, x), dev_put(d, v, 50257, w), dev_put(d, v, 50257, b);
    CUDA_OK(cudaMemcpy(idx + 2, &pos, sizeof pos, cudaMemcpyHostToDevice));
    lc_argmax_args am = {.dtype = d, .rows = 1, .cols = 50257, .x = x, .out = idx};
    time_launch("argmax 1x50257 bf16", l_argmax, &am, st);
    am.cols = 32000;
    time_launch("argmax 1x32000 bf16", l_argmax, &am, st);
    const lc_rms_norm_args rm = {.dtype = d, .rows = 1, .cols = 2048, .eps = 1e-6, .x = x, .weight = w, .out = o};
    time_launch("rms_norm 1x2048 bf16", l_rms, &rm, st);
    const lc_layer_norm_args ln = {.dtype = d, .rows = 1, .cols = 768, .eps = 1e-5, .x = x, .gamma = w, .beta = b, .out = o};
    time_launch("layer_norm 1x768 bf16", l_ln, &ln, st);
    lc_rope_args rp = {.dtype = d, .batch = 1, .heads = 32, .seq = 1, .head_dim = 64, .rotary_dim = 64, .x = x,
                       .x_st = {40 * 64, 64, 40 * 64, 1}, .positions = idx + 2, .pos_dtype = LC_DTYPE_I64, .p_st = {1, 1},
                       .opt = {.theta = 10000.0, .rotary_dim = 64}, .out = o};
    time_launch("rope [1,32,1,64] of a qkv row bf16", l_rope, &rp, st);
    cudaFree(x), cudaFree(w), cudaFree(b), cudaFree(o), cudaFree(idx);
    free(v);
}

static void test_cuda(void) {
    if (getenv("LC_CPU_DISABLE") || getenv("LC_NUM_THREADS")) { /* the CPU-variant runs of this program */
        printf("test_ops_llm: CUDA part skipped (a CPU-variant run)\n");
        return;
    }
    const char *only = getenv("LC_TEST_DEVICES");
    int ndev = 0;
    if ((only && !strstr(only, "cuda")) || cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        (void)cudaGetLastError();
        printf("test_ops_llm: CUDA part skipped (no device, or LC_TEST_DEVICES excludes cuda)\n");
        return;
    }
    cudaStream_t st = NULL;
    CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    test_argmax_cuda(st);
    test_decode_shapes_cuda(st);
    const char *verbose = getenv("LC_TEST_VERBOSE");
    if (verbose && strcmp(verbose, "0") != 0) timings_cuda(st);
    CUDA_OK(cudaStreamDestroy(st));
}
#endif

/* lc_embedding_offset (a vocabulary shard): ids inside offset..offset+rows-1 give weight[id - offset], every
 * other id (below, above, negative) a zero row; lc_embedding on the same table still refuses them; a negative
 * offset is refused before anything is written. */
static void test_embedding_offset(void) {
    const int64_t wshape[2] = {5, 3}, ishape[1] = {8}, oshape[2] = {8, 3};
    const int64_t ids_v[8] = {0, 4, 5, 7, 9, 10, -1, 6};
    lc_tensor_t *w = NULL, *ids = NULL, *out = NULL;
    CHECK_OK(lc_tensor_new(LC_DTYPE_F32, LC_DEVICE_CPU, 2, wshape, &w));
    CHECK_OK(lc_tensor_new(LC_DTYPE_I64, LC_DEVICE_CPU, 1, ishape, &ids));
    CHECK_OK(lc_tensor_new(LC_DTYPE_F32, LC_DEVICE_CPU, 2, oshape, &out));
    if (!w || !ids || !out) return;
    float *wd = lc_tensor_data(w), *od = lc_tensor_data(out);
    for (int i = 0; i < 15; i++) wd[i] = (float)(i + 1);
    memcpy(lc_tensor_data(ids), ids_v, sizeof ids_v);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 24; i++) od[i] = NAN;
        if (pass == 0) {
            CHECK_OK(lc_embedding_offset(w, ids, 5, out, LC_DEVICE_CPU));
        } else {
            CHECK(lc_embedding_offset(w, ids, -1, out, LC_DEVICE_CPU) == LC_ERR_INVALID_ARGUMENT);
            CHECK(strstr(lc_last_error(), "offset") != NULL);
        }
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 3; c++) {
                const int64_t id = ids_v[r];
                const float want = pass ? NAN : (id >= 5 && id < 10) ? wd[(id - 5) * 3 + c] : 0.0f;
                CHECK(pass ? isnan(od[r * 3 + c]) : od[r * 3 + c] == want);
            }
    }
    CHECK(lc_embedding(w, ids, out, LC_DEVICE_CPU) == LC_ERR_INVALID_ARGUMENT); /* id 5 of a 5-row table */
    lc_tensor_free(w), lc_tensor_free(ids), lc_tensor_free(out);
}

int main(void) {
    test_embedding_offset();
    test_rms_softmax();
    test_silu();
    test_bcast();
    test_rope();
    test_argmax_cpu();
#ifdef LC_TEST_CUDA
    test_cuda();
#endif
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
