/* reference.c — float64 reference kernels that the tests judge every backend against (declared in
 * cpu_kernels.h). Same contracts and shapes as the ops in ops.h / the arg structs in core/backend.h:
 * matmul a[m,k]·b[k,n]; attention q,k,v,out [seq,d] with scale 1/sqrt(d) and an optional causal mask;
 * conv2d NCHW x[n,c,h,w] * w[oc,c,kh,kw] (+bias[oc]) (+ReLU); elementwise on n values; layer norm per
 * row of [rows, cols]; sdpa with the strides, masks, lengths and GQA of lc_sdpa_args.
 * Deliberately plain: simple loops in double, no threads, no SIMD, no allocation, no clever algebra,
 * so that they are easy to check by reading. Only the tests use them.
 * Tests: tests/c/test_ops.c, tests/c/test_sdpa_cpu.c.
 */
#include <math.h>
#include <stdint.h>

#include "backend/cpu/cpu_kernels.h"

void lc_ref_matmul(int64_t m, int64_t k, int64_t n, const double *a, const double *b, double *c) {
    for (int64_t i = 0; i < m; i++) {
        double *ci = c + i * n;
        for (int64_t j = 0; j < n; j++) ci[j] = 0.0;
        for (int64_t p = 0; p < k; p++) {
            const double aip = a[i * k + p];
            const double *bp = b + p * n;
            for (int64_t j = 0; j < n; j++) ci[j] += aip * bp[j];
        }
    }
}

static double dot(const double *x, const double *y, int64_t d) {
    double s = 0.0;
    for (int64_t t = 0; t < d; t++) s += x[t] * y[t];
    return s;
}

/* Full softmax per query row with max subtraction: pass 1 finds the row max of the scores, pass 2
 * recomputes each score, exponentiates and accumulates p·v; the row is divided by the sum at the end. */
void lc_ref_attention(int64_t seq, int64_t d, int causal, const double *q, const double *k, const double *v,
                      double *out) {
    const double scale = 1.0 / sqrt((double)d);
    for (int64_t i = 0; i < seq; i++) {
        const double *qi = q + i * d;
        double *oi = out + i * d;
        const int64_t last = causal ? i : seq - 1;
        double mx = -INFINITY;
        for (int64_t j = 0; j <= last; j++) {
            const double s = scale * dot(qi, k + j * d, d);
            if (s > mx) mx = s;
        }
        for (int64_t t = 0; t < d; t++) oi[t] = 0.0;
        double sum = 0.0;
        for (int64_t j = 0; j <= last; j++) {
            const double p = exp(scale * dot(qi, k + j * d, d) - mx);
            sum += p;
            for (int64_t t = 0; t < d; t++) oi[t] += p * v[j * d + t];
        }
        for (int64_t t = 0; t < d; t++) oi[t] /= sum;
    }
}

/* Key j's score for row (b, h, i) into *s: scale·q·k (+ its mask entry); 0 when the mask hides the key (a -inf
 * entry, or a false BOOL one). qi: the row's q; g: the kv head. */
static int ref_sdpa_score(const lc_sdpa_args *a, const double *qi, const double *k, const double *mask, int64_t b,
                          int64_t h, int64_t g, int64_t i, int64_t j, double *s) {
    const int64_t *qs = a->q_st, *ks = a->k_st, *ms = a->m_st;
    const double *kj = k + b * ks[0] + g * ks[1] + j * ks[2];
    double x = 0.0;
    for (int64_t t = 0; t < a->head_dim; t++) x += qi[t * qs[3]] * kj[t * ks[3]];
    x *= (double)a->scale;
    if (a->mask_kind != LC_SDPA_MASK_NONE) {
        const double mv = mask[b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]];
        if (a->mask_kind == LC_SDPA_MASK_BOOL ? mv == 0.0 : mv == -INFINITY) return 0;
        if (a->mask_kind == LC_SDPA_MASK_ADD) x += mv;
    }
    *s = x;
    return 1;
}

/* Per row (b, h, i): the visible keys (j < L_b, the causal bound, the window, the mask), their scores
 * scale·q·k (+ mask; a -inf mask entry or a false BOOL entry hides the key), then a plain two-pass softmax. */
void lc_ref_sdpa(const lc_sdpa_args *a, const double *q, const double *k, const double *v, const double *mask,
                 double *out, double *lse) {
    const int64_t d = a->head_dim, group = a->heads / a->kv_heads;
    const int64_t *qs = a->q_st, *vs = a->v_st, *os = a->o_st;
    for (int64_t b = 0; b < a->batch; b++) {
        int64_t L = a->skv;
        if (a->key_lengths)
            L = a->key_lengths_dtype == LC_DTYPE_I64 ? ((const int64_t *)a->key_lengths)[b]
                                                     : ((const int32_t *)a->key_lengths)[b];
        if (L < 0) L = 0;
        if (L > a->skv) L = a->skv;
        for (int64_t h = 0; h < a->heads; h++) {
            const int64_t g = h / group;
            for (int64_t i = 0; i < a->sq; i++) {
                const double *qi = q + b * qs[0] + h * qs[1] + i * qs[2];
                const int64_t oi = b * os[0] + h * os[1] + i * os[2];
                int64_t last = L - 1, first = 0; /* keys first..last: the length, causal and window bounds */
                if (a->causal && i + L - a->sq < last) last = i + L - a->sq;
                if (a->window > 0 && i + L - a->sq - a->window + 1 > first) first = i + L - a->sq - a->window + 1;
                double mx = -INFINITY;
                int nan = 0;
                for (int64_t j = first; j <= last; j++) { /* pass 1: the max score, NaN seen */
                    double s;
                    if (!ref_sdpa_score(a, qi, k, mask, b, h, g, i, j, &s)) continue;
                    if (isnan(s)) nan = 1;
                    else if (s > mx) mx = s;
                }
                for (int64_t t = 0; t < d; t++) out[oi + t * os[3]] = nan ? NAN : 0.0;
                double sum = 0.0;
                if (!nan && mx > -INFINITY) {
                    for (int64_t j = first; j <= last; j++) { /* pass 2: weights and p·v */
                        double s;
                        if (!ref_sdpa_score(a, qi, k, mask, b, h, g, i, j, &s)) continue;
                        const double p = exp(s - mx);
                        if (p == 0.0) continue;
                        sum += p;
                        const double *vj = v + b * vs[0] + g * vs[1] + j * vs[2];
                        for (int64_t t = 0; t < d; t++) out[oi + t * os[3]] += p * vj[t * vs[3]];
                    }
                    for (int64_t t = 0; t < d; t++) out[oi + t * os[3]] /= sum;
                }
                if (lse) lse[(b * a->heads + h) * a->sq + i] = nan || isnan(sum) ? NAN : sum > 0.0 ? mx + log(sum) : -INFINITY;
            }
        }
    }
}

void lc_ref_conv2d(const lc_conv2d_args *s, const double *x, const double *w, const double *bias, double *y) {
    for (int64_t b = 0; b < s->n; b++)
        for (int64_t o = 0; o < s->oc; o++)
            for (int64_t oy = 0; oy < s->oh; oy++)
                for (int64_t ox = 0; ox < s->ow; ox++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (int64_t ci = 0; ci < s->c; ci++)
                        for (int64_t ky = 0; ky < s->kh; ky++)
                            for (int64_t kx = 0; kx < s->kw; kx++) {
                                const int64_t iy = oy * s->stride_h - s->pad_h + ky;
                                const int64_t ix = ox * s->stride_w - s->pad_w + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue; /* zero pad */
                                acc += x[((b * s->c + ci) * s->h + iy) * s->w + ix] *
                                       w[((o * s->c + ci) * s->kh + ky) * s->kw + kx];
                            }
                    if (s->apply_relu && acc < 0.0) acc = 0.0;
                    y[((b * s->oc + o) * s->oh + oy) * s->ow + ox] = acc;
                }
}

void lc_ref_binary(lc_binary_kind kind, int64_t n, const double *a, const double *b, double *out) {
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case LC_BINARY_ADD: out[i] = a[i] + b[i]; break;
        case LC_BINARY_SUB: out[i] = a[i] - b[i]; break;
        default: out[i] = a[i] / b[i]; break;
        }
    }
}

void lc_ref_relu(int64_t n, const double *x, double *out) {
    for (int64_t i = 0; i < n; i++) out[i] = isnan(x[i]) ? x[i] : (x[i] > 0.0 ? x[i] : 0.0);
}

/* erf form as 0.5·x·erfc(-x/√2) (= 0.5·x·(1 + erf(x/√2)) without the cancellation for x << 0);
 * tanh form as 0.5·x·(1 + tanh(u)), with 1 + tanh(u) = 2e^{2u}/(1 + e^{2u}) for u < 0 for the same reason. */
void lc_ref_gelu(lc_gelu_approx approx, int64_t n, const double *x, double *out) {
    for (int64_t i = 0; i < n; i++) {
        const double xi = x[i];
        if (approx == LC_GELU_TANH) {
            const double u = 0.79788456080286535588 * (xi + 0.044715 * xi * xi * xi); /* √(2/π) */
            if (u < 0.0) {
                const double e = exp(2.0 * u);
                out[i] = xi * e / (1.0 + e);
            } else {
                out[i] = 0.5 * xi * (1.0 + tanh(u));
            }
        } else {
            out[i] = 0.5 * xi * erfc(-xi / sqrt(2.0));
        }
    }
}

void lc_ref_layer_norm(int64_t rows, int64_t cols, double eps, const double *x, const double *gamma,
                       const double *beta, double *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * cols;
        double *orow = out + r * cols;
        double mean = 0.0;
        for (int64_t j = 0; j < cols; j++) mean += xr[j];
        mean /= (double)cols;
        double var = 0.0;
        for (int64_t j = 0; j < cols; j++) var += (xr[j] - mean) * (xr[j] - mean);
        var /= (double)cols;
        const double rstd = 1.0 / sqrt(var + eps);
        for (int64_t j = 0; j < cols; j++) {
            double y = (xr[j] - mean) * rstd;
            if (gamma) y *= gamma[j];
            if (beta) y += beta[j];
            orow[j] = y;
        }
    }
}

void lc_ref_linear(int64_t m, int64_t k, int64_t n, lc_activation act, const double *x, const double *w,
                   const double *bias, double *out) {
    lc_ref_matmul(m, k, n, x, w, out);
    for (int64_t i = 0; i < m; i++) {
        double *row = out + i * n;
        for (int64_t j = 0; j < n; j++) {
            if (bias) row[j] += bias[j];
            if (act == LC_ACT_RELU) row[j] = row[j] < 0.0 ? 0.0 : row[j];
        }
        if (act == LC_ACT_GELU_ERF || act == LC_ACT_GELU_TANH)
            lc_ref_gelu(act == LC_ACT_GELU_TANH ? LC_GELU_TANH : LC_GELU_ERF, n, row, row);
    }
}
