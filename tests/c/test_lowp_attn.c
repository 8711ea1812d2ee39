/* test_lowp_attn.c — float16 and bfloat16 through attention_forward (causal or not), conv2d_nchw (bias,
 * fused ReLU, stride/pad, awkward sizes) and qkv_pack_repeat on the CPU and, when there is a GPU, on CUDA.
 * Fresh random inputs rounded to the dtype, the output poisoned before each run, judged against a
 * float64 reference computed from the rounded inputs (reference.c). Tolerances (u = unit roundoff: 2^-8
 * bfloat16, 2^-11 float16; e = 2^-24 float32's; tiny = half the dtype's smallest subnormal):
 *   attention  |err| <= u·|ref| + (d·S_i + n_i + 16)·e·V_i + tiny, per output row i: S_i = scale·max_j
 *              Σ_c |q_ic·k_jc| (bounds the row's |scores|, whose float32 error is <= d·e·S_i and enters the
 *              softmax weights relatively), n_i the keys row i sees, V_i the largest |v| it sees (the
 *              weighted sum's float32 error); the +16 covers exp2 and the online-softmax rescaling.
 *   conv2d     |err| <= u·|ref| + (K + 2)·e·(Σ|w·x| + |bias|) + tiny, K = c·kh·kw (float32 sums;
 *              ReLU does not enlarge an error)
 *   qkv_pack   bit-exact (a copy; NaN payloads kept)
 *   attention_projection (CPU; the fused internal op): the attention bound carried through |w|, then the
 *              projection's float32 sums and one rounding (projection_case)
 * and, since the float32 error is almost always far below half an ulp of the dtype, at least 90% of the
 * elements of a case of >= 64 must be exactly the reference rounded to the dtype (catches a wrong
 * rounding mode or a double rounding that the worst-case bounds above would let through).
 * Causal attention with a NaN in a masked v (or k) row j: rows i < j never see it (finite, within the
 * tolerance); rows i >= j are NaN where the float64 reference is. Mixed dtypes are refused naming both
 * operands, out untouched. ctest runs it under each CPU mask. Prints "N passed, N failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h" /* the float64 references (reference.c) */
#include "ops/attention_projection.h"   /* the fused attention -> projection op (internal) */
#include "check.h"
#include "lightning_core/dtype.h"
#include "lightning_core/lightning_core.h"

#define LOWP_SEED 0x2545f4914f6cdd1dull
#include "lowp_check.h"
#define EPS32 0x1p-24

/* ---- attention --------------------------------------------------------------------------------------- */

/* The float32 error bound of attention row i beyond its rounding (the header's (d·S_i + n_i + 16)·e·V_i), from
 * the keys it sees: S_i = scale·max_j Σ_c |q_ic·k_jc|, V_i the largest finite |v| it sees. */
static double att_row_extra(const double *q, const double *k, const double *v, int64_t i, int64_t seen, int64_t hd) {
    const double scale = 1.0 / sqrt((double)hd);
    double s_max = 0.0, v_max = 0.0;
    for (int64_t j = 0; j < seen; j++) {
        double s = 0.0;
        for (int64_t c = 0; c < hd; c++) {
            const double t = fabs(q[i * hd + c] * k[j * hd + c]);
            if (isfinite(t)) s += t;
            if (isfinite(v[j * hd + c]) && fabs(v[j * hd + c]) > v_max) v_max = fabs(v[j * hd + c]);
        }
        if (scale * s > s_max) s_max = scale * s;
    }
    return ((double)hd * s_max + (double)seen + 16.0) * EPS32 * v_max;
}

/* nan_row >= 0: a NaN at v[nan_row][nan_row % d] (nan_k: at k[nan_row][0] instead); causal only. */
static void attention_case(lc_device dev, lc_dtype d, int64_t seq, int64_t hd, int causal, int64_t nan_row, int nan_k) {
    const int64_t n = seq * hd, shape[2] = {seq, hd};
    uint16_t *hq = malloc((size_t)n * 2), *hk = malloc((size_t)n * 2), *hv = malloc((size_t)n * 2), *ho = malloc((size_t)n * 2);
    double *q = malloc((size_t)n * 8), *k = malloc((size_t)n * 8), *v = malloc((size_t)n * 8), *ref = malloc((size_t)n * 8);
    fill(d, n, -2.0, 2.0, hq, q);
    fill(d, n, -2.0, 2.0, hk, k);
    fill(d, n, -1.0, 1.0, hv, v);
    if (nan_row >= 0) {
        if (nan_k) hk[nan_row * hd] = nan16(d), k[nan_row * hd] = NAN;
        else hv[nan_row * hd + nan_row % hd] = nan16(d), v[nan_row * hd + nan_row % hd] = NAN;
    }
    lc_ref_attention(seq, hd, causal, q, k, v, ref);
    lc_tensor_t *tq = up(dev, d, 2, shape, hq), *tk = up(dev, d, 2, shape, hk), *tv = up(dev, d, 2, shape, hv);
    lc_tensor_t *to = poisoned(dev, d, 2, shape);
    CHECK_OK(lc_attention_forward(tq, tk, tv, to, causal, dev));
    down(to, ho, n);
    const double u = unit(d);
    int bad = 0;
    int64_t finite = 0, exact = 0;
    double worst = 0.0;
    for (int64_t i = 0; i < seq; i++) {
        const double extra = att_row_extra(q, k, v, i, causal ? i + 1 : seq, hd) + tiny(d);
        for (int64_t c = 0; c < hd; c++) {
            const double got = from16(d, ho[i * hd + c]), r = ref[i * hd + c];
            int ok;
            if (isnan(r)) ok = isnan(got);
            else ok = fabs(got - r) <= u * fabs(r) + extra;
            if (nan_row >= 0 && i < nan_row) ok &= isfinite(got); /* the masked NaN never reaches row i */
            if (!ok) {
                if (bad < 3)
                    fprintf(stderr, "  [%lld,%lld] got %.9g ref %.9g tol %.3g\n", (long long)i, (long long)c, got, r,
                            u * fabs(r) + extra);
                bad++;
            }
            if (isfinite(r) && isfinite(got) && fabs(got - r) / (fabs(r) + 1e-30) > worst) worst = fabs(got - r) / (fabs(r) + 1e-30);
            if (isfinite(r)) finite++, exact += ho[i * hd + c] == to16(d, r);
        }
    }
    if (finite >= 64 && exact < finite * 9 / 10) { /* one rounding of a float32 result: nearly always ref's */
        fprintf(stderr, "  only %lld of %lld elements are the rounded reference\n", (long long)exact, (long long)finite);
        bad++;
    }
    if (bad)
        fprintf(stderr, "%s %s attention seq=%lld d=%lld causal=%d nan_row=%lld%s: %d bad (path %s, worst rel %.3g)\n",
                lc_device_name(dev), lc_dtype_name(d), (long long)seq, (long long)hd, causal, (long long)nan_row,
                nan_k ? " (k)" : "", bad, last_path(), worst);
    CHECK(bad == 0);
    lc_tensor_free(tq), lc_tensor_free(tk), lc_tensor_free(tv), lc_tensor_free(to);
    free(hq), free(hk), free(hv), free(ho), free(q), free(k), free(v), free(ref);
}

/* ---- the fused attention -> projection (internal op; the CPU kernel takes the 16-bit dtypes) ------------- */

/* out [seq, pn] = attention(q, k, v) · w (+ bias), against float64: the attention rows' float32 error as
 * attention_case bounds it (extra_i), carried through |w|, then the projection's float32 sums and one rounding:
 * |err| <= u·|ref| + (d + 2)·e·(Σ_p |A_ip·w_pc| + |bias_c|) + extra_i·Σ_p |w_pc| + tiny. */
static void projection_case(lc_dtype d, int64_t seq, int64_t hd, int64_t pn, int causal, int with_bias) {
    const lc_device dev = LC_DEVICE_CPU;
    const int64_t n = seq * hd, shape[2] = {seq, hd}, wshape[2] = {hd, pn}, bshape[1] = {pn}, oshape[2] = {seq, pn};
    uint16_t *hq = malloc((size_t)n * 2), *hk = malloc((size_t)n * 2), *hv = malloc((size_t)n * 2);
    uint16_t *hw = malloc((size_t)(hd * pn) * 2), *hb = malloc((size_t)pn * 2), *ho = malloc((size_t)(seq * pn) * 2);
    double *q = malloc((size_t)n * 8), *k = malloc((size_t)n * 8), *v = malloc((size_t)n * 8), *att = malloc((size_t)n * 8);
    double *w = malloc((size_t)(hd * pn) * 8), *b = malloc((size_t)pn * 8);
    fill(d, n, -2.0, 2.0, hq, q);
    fill(d, n, -2.0, 2.0, hk, k);
    fill(d, n, -1.0, 1.0, hv, v);
    fill(d, hd * pn, -0.5, 0.5, hw, w);
    fill(d, pn, -1.0, 1.0, hb, b);
    lc_ref_attention(seq, hd, causal, q, k, v, att);
    lc_tensor_t *tq = up(dev, d, 2, shape, hq), *tk = up(dev, d, 2, shape, hk), *tv = up(dev, d, 2, shape, hv);
    lc_tensor_t *tw = up(dev, d, 2, wshape, hw), *tb = with_bias ? up(dev, d, 1, bshape, hb) : NULL;
    lc_tensor_t *to = poisoned(dev, d, 2, oshape);
    CHECK_OK(lc_attention_projection_fused(tq, tk, tv, tw, tb, to, causal, dev));
    CHECK(strcmp(last_path(), "cpu_flash_projected") == 0);
    down(to, ho, seq * pn);
    const double u = unit(d);
    int bad = 0;
    for (int64_t i = 0; i < seq; i++) {
        const double extra = att_row_extra(q, k, v, i, causal ? i + 1 : seq, hd);
        for (int64_t c = 0; c < pn; c++) {
            double r = with_bias ? b[c] : 0.0, mag = with_bias ? fabs(b[c]) : 0.0, wsum = 0.0;
            for (int64_t p = 0; p < hd; p++) {
                r += att[i * hd + p] * w[p * pn + c];
                mag += fabs(att[i * hd + p] * w[p * pn + c]);
                wsum += fabs(w[p * pn + c]);
            }
            const double got = from16(d, ho[i * pn + c]);
            const double tol = u * fabs(r) + (double)(hd + 2) * EPS32 * mag + extra * wsum + tiny(d);
            if (!(fabs(got - r) <= tol)) {
                if (bad < 3)
                    fprintf(stderr, "  [%lld,%lld] got %.9g ref %.9g tol %.3g\n", (long long)i, (long long)c, got, r, tol);
                bad++;
            }
        }
    }
    if (bad)
        fprintf(stderr, "%s attention_projection seq=%lld d=%lld pn=%lld causal=%d bias=%d: %d bad\n", lc_dtype_name(d),
                (long long)seq, (long long)hd, (long long)pn, causal, with_bias, bad);
    CHECK(bad == 0);
    lc_tensor_free(tq), lc_tensor_free(tk), lc_tensor_free(tv), lc_tensor_free(tw), lc_tensor_free(tb), lc_tensor_free(to);
    free(hq), free(hk), free(hv), free(hw), free(hb), free(ho), free(q), free(k), free(v), free(att), free(w), free(b);
}

/* ---- conv2d ------------------------------------------------------------------------------------------- */

typedef struct {
    int64_t n, c, h, w, oc, kh, kw;
    int sh, sw, ph, pw;
} conv_shape;

static void conv2d_case(lc_device dev, lc_dtype d, const conv_shape *s, int bias, int relu) {
    const int64_t oh = (s->h + 2 * s->ph - s->kh) / s->sh + 1, ow = (s->w + 2 * s->pw - s->kw) / s->sw + 1;
    const int64_t xs[4] = {s->n, s->c, s->h, s->w}, ws[4] = {s->oc, s->c, s->kh, s->kw}, bs[1] = {s->oc},
                  ys[4] = {s->n, s->oc, oh, ow};
    const int64_t nx = numel(4, xs), nw = numel(4, ws), ny = numel(4, ys);
    uint16_t *hx = malloc((size_t)nx * 2), *hw = malloc((size_t)nw * 2), *hb = malloc((size_t)s->oc * 2), *hy = malloc((size_t)ny * 2);
    double *x = malloc((size_t)nx * 8), *w = malloc((size_t)nw * 8), *b = malloc((size_t)s->oc * 8);
    double *ax = malloc((size_t)nx * 8), *aw = malloc((size_t)nw * 8), *ab = malloc((size_t)s->oc * 8);
    double *ref = malloc((size_t)ny * 8), *mag = malloc((size_t)ny * 8);
    fill(d, nx, -1.0, 1.0, hx, x);
    fill(d, nw, -1.0, 1.0, hw, w);
    fill(d, s->oc, -1.0, 1.0, hb, b);
    for (int64_t i = 0; i < nx; i++) ax[i] = fabs(x[i]);
    for (int64_t i = 0; i < nw; i++) aw[i] = fabs(w[i]);
    for (int64_t i = 0; i < s->oc; i++) ab[i] = fabs(b[i]);
    lc_conv2d_args a = {.n = s->n, .c = s->c, .h = s->h, .w = s->w, .oc = s->oc, .kh = s->kh, .kw = s->kw, .oh = oh,
                        .ow = ow, .stride_h = s->sh, .stride_w = s->sw, .pad_h = s->ph, .pad_w = s->pw, .apply_relu = relu};
    lc_ref_conv2d(&a, x, w, bias ? b : NULL, ref);
    a.apply_relu = 0;
    lc_ref_conv2d(&a, ax, aw, bias ? ab : NULL, mag); /* Σ|w·x| + |bias| per output */
    lc_tensor_t *tx = up(dev, d, 4, xs, hx), *tw = up(dev, d, 4, ws, hw), *tb = bias ? up(dev, d, 1, bs, hb) : NULL;
    lc_tensor_t *ty = poisoned(dev, d, 4, ys);
    const lc_conv2d_params p = {s->sh, s->sw, s->ph, s->pw, relu};
    CHECK_OK(lc_conv2d_nchw(tx, tw, tb, ty, &p, dev));
    down(ty, hy, ny);
    const double u = unit(d), kk = (double)(s->c * s->kh * s->kw);
    int bad = 0;
    int64_t exact = 0;
    for (int64_t i = 0; i < ny; i++) {
        exact += hy[i] == to16(d, ref[i]);
        const double got = from16(d, hy[i]), tol = u * fabs(ref[i]) + (kk + 2.0) * EPS32 * mag[i] + tiny(d);
        if (!(fabs(got - ref[i]) <= tol) || (relu && got < 0.0)) {
            if (bad < 3) fprintf(stderr, "  [%lld] got %.9g ref %.9g tol %.3g\n", (long long)i, got, ref[i], tol);
            bad++;
        }
    }
    if (ny >= 64 && exact < ny * 9 / 10) { /* one rounding of a float32 result: nearly always ref's */
        fprintf(stderr, "  only %lld of %lld elements are the rounded reference\n", (long long)exact, (long long)ny);
        bad++;
    }
    if (bad)
        fprintf(stderr, "%s %s conv2d x[%lld,%lld,%lld,%lld] w[%lld,%lld,%lld,%lld] s%d,%d p%d,%d bias=%d relu=%d: %d bad (path %s)\n",
                lc_device_name(dev), lc_dtype_name(d), (long long)s->n, (long long)s->c, (long long)s->h, (long long)s->w,
                (long long)s->oc, (long long)s->c, (long long)s->kh, (long long)s->kw, s->sh, s->sw, s->ph, s->pw, bias,
                relu, bad, last_path());
    CHECK(bad == 0);
    lc_tensor_free(tx), lc_tensor_free(tw), lc_tensor_free(tb), lc_tensor_free(ty);
    free(hx), free(hw), free(hb), free(hy), free(x), free(w), free(b), free(ax), free(aw), free(ab), free(ref), free(mag);
}

/* ---- qkv_pack_repeat ---------------------------------------------------------------------------------- */

static void qkv_case(lc_device dev, lc_dtype d, int64_t src_n, int64_t seq, int64_t hd) {
    const int64_t os[3] = {3, seq, hd}, n = 3 * seq * hd;
    uint16_t *hs = malloc((size_t)src_n * 2), *ho = malloc((size_t)n * 2);
    for (int64_t i = 0; i < src_n; i++) hs[i] = (uint16_t)(rnd(0, 65536.0)); /* any pattern, NaNs included */
    hs[src_n / 2] = (uint16_t)(nan16(d) | 0x0013);                            /* a NaN with a payload */
    lc_tensor_t *ts = up(dev, d, 1, &src_n, hs), *to = poisoned(dev, d, 3, os);
    CHECK_OK(lc_qkv_pack_repeat(ts, to, dev));
    down(to, ho, n);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += ho[i] != hs[i % src_n];
    if (bad) fprintf(stderr, "%s %s qkv_pack_repeat src %lld -> [3,%lld,%lld]: %d bad\n", lc_device_name(dev),
                     lc_dtype_name(d), (long long)src_n, (long long)seq, (long long)hd, bad);
    CHECK(bad == 0);
    lc_tensor_free(ts), lc_tensor_free(to);
    free(hs), free(ho);
}

/* ---- mixed dtypes ------------------------------------------------------------------------------------ */

static void mixed_dtypes(lc_device dev) {
    const int64_t s2[2] = {4, 8}, xs[4] = {1, 2, 4, 4}, ws[4] = {3, 2, 3, 3}, bs[1] = {3}, ys[4] = {1, 3, 2, 2};
    const int64_t qs[3] = {3, 2, 4};
    uint16_t h[64];
    for (int i = 0; i < 64; i++) h[i] = 0x3c00;
    lc_tensor_t *bf = up(dev, LC_DTYPE_BF16, 2, s2, h), *f16 = up(dev, LC_DTYPE_F16, 2, s2, h);
    lc_tensor_t *abf = poisoned(dev, LC_DTYPE_BF16, 2, s2);
    CHECK(lc_attention_forward(bf, f16, bf, abf, 1, dev) == LC_ERR_DTYPE &&
          has("attention_forward: k: expected dtype bfloat16 (q's), got float16"));
    CHECK(lc_attention_forward(f16, f16, bf, abf, 0, dev) == LC_ERR_DTYPE &&
          has("attention_forward: v: expected dtype float16 (q's), got bfloat16"));
    CHECK(lc_attention_forward(f16, f16, f16, abf, 0, dev) == LC_ERR_DTYPE && has("attention_forward: out"));
    lc_tensor_t *x16 = up(dev, LC_DTYPE_F16, 4, xs, h), *wbf = up(dev, LC_DTYPE_BF16, 4, ws, h);
    lc_tensor_t *w16 = up(dev, LC_DTYPE_F16, 4, ws, h), *bbf = up(dev, LC_DTYPE_BF16, 1, bs, h);
    lc_tensor_t *y16 = poisoned(dev, LC_DTYPE_F16, 4, ys);
    const lc_conv2d_params p = {1, 1, 0, 0, 1};
    CHECK(lc_conv2d_nchw(x16, wbf, NULL, y16, &p, dev) == LC_ERR_DTYPE &&
          has("conv2d_nchw: w: expected dtype float16 (x's), got bfloat16"));
    CHECK(lc_conv2d_nchw(x16, w16, bbf, y16, &p, dev) == LC_ERR_DTYPE &&
          has("conv2d_nchw: bias: expected dtype float16 (x's), got bfloat16"));
    lc_tensor_t *qbf = poisoned(dev, LC_DTYPE_BF16, 3, qs);
    CHECK(lc_qkv_pack_repeat(f16, qbf, dev) == LC_ERR_DTYPE && has("qkv_pack_repeat: out"));
    CHECK(untouched(abf, 32) && untouched(y16, 12) && untouched(qbf, 24));
    lc_tensor_free(bf), lc_tensor_free(f16), lc_tensor_free(abf), lc_tensor_free(x16), lc_tensor_free(wbf);
    lc_tensor_free(w16), lc_tensor_free(bbf), lc_tensor_free(y16), lc_tensor_free(qbf);
}

int main(void) {
    static const int64_t seqs[] = {1, 7, 63, 65, 129, 300};
    static const int64_t dims[] = {8, 64, 100};
    static const conv_shape convs[] = {
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},   {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1},  {1, 5, 13, 11, 7, 3, 3, 2, 2, 1, 1},
        {3, 2, 9, 17, 5, 5, 3, 1, 2, 2, 0},  {1, 16, 8, 8, 33, 1, 1, 1, 1, 0, 0}, {2, 7, 15, 15, 9, 3, 3, 1, 1, 0, 0},
        {1, 3, 31, 29, 17, 7, 7, 3, 2, 3, 3}, {1, 64, 6, 5, 3, 3, 3, 1, 1, 1, 1},
    };
    const int ndev = lc_device_available(LC_DEVICE_CUDA) ? 2 : 1;
    for (int dv = 0; dv < ndev; dv++) {
        const lc_device dev = dv ? LC_DEVICE_CUDA : LC_DEVICE_CPU;
        for (int di = 0; di < 2; di++) {
            const lc_dtype d = di ? LC_DTYPE_F16 : LC_DTYPE_BF16;
            for (size_t s = 0; s < sizeof seqs / sizeof seqs[0]; s++)
                for (size_t h = 0; h < sizeof dims / sizeof dims[0]; h++)
                    for (int causal = 0; causal < 2; causal++) attention_case(dev, d, seqs[s], dims[h], causal, -1, 0);
            /* a NaN in a masked row: rows before it never see it */
            attention_case(dev, d, 65, 64, 1, 40, 0);
            attention_case(dev, d, 300, 8, 1, 150, 0);
            attention_case(dev, d, 129, 100, 1, 70, 1);
            printf("%s %s attention path: %s\n", lc_device_name(dev), lc_dtype_name(d), last_path());
            for (size_t s = 0; s < sizeof convs / sizeof convs[0]; s++)
                for (int bias = 0; bias < 2; bias++)
                    for (int relu = 0; relu < 2; relu++) conv2d_case(dev, d, &convs[s], bias, relu);
            printf("%s %s conv2d path: %s\n", lc_device_name(dev), lc_dtype_name(d), last_path());
            qkv_case(dev, d, 7, 4, 5);
            qkv_case(dev, d, 1000, 3, 8);
            qkv_case(dev, d, 1, 1, 1);
            printf("%s %s qkv_pack_repeat path: %s\n", lc_device_name(dev), lc_dtype_name(d), last_path());
            if (dev == LC_DEVICE_CPU) /* the fused op's 16-bit kernel is the CPU's (attention_projection_cpu.c) */
                for (int causal = 0; causal < 2; causal++) {
                    projection_case(d, 37, 24, 19, causal, 1);
                    projection_case(d, 1, 8, 300, causal, 0); /* out rows past the 256-column stack chunk */
                    projection_case(d, 130, 64, 33, causal, 1);
                }
        }
        mixed_dtypes(dev);
    }
    if (ndev == 1) printf("cuda not available: cpu only\n");
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
