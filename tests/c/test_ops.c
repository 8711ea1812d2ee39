/* test_ops.c — the table-driven op harness: every op of ops.h, on every available device, through the
 * public C API, judged against the float64 references (src/backend/cpu/reference.c).
 *
 * Each case is (op, shapes, dtype, attributes, input layout). Inputs are random from a printed seed
 * (LC_TEST_SEED overrides it); outputs are poisoned with NaN first, so every element must be written and
 * a NaN never passes. Error: ||out - ref|| / ||ref|| over the elements where the reference is finite
 * (non-finite reference elements must match exactly). Tolerances: float32 elementwise / layer_norm /
 * attention / conv2d 1e-5, matmul 2e-5·max(1, sqrt(k/256)); float64 1e-12.
 * Inputs are also given as strided views (a transposed or padded slice of a larger NaN-filled tensor) and
 * in place where the op allows it. Causal attention also runs with one NaN/+inf/-inf in a k or v row
 * (rows before it must be untouched, rows from it on as the reference says). The bad-input group checks each refused call for its exact status, a
 * message naming the argument, and `out` left untouched.
 * Output: one line per case group, then "N passed, N failed[, N skipped]"; exit status 1 on any failure.
 * LC_TEST_VERBOSE=1 prints every case with its kernel path (lc_last_dispatch). CMake runs it plain, with
 * LC_CPU_DISABLE=avx512, with LC_CPU_DISABLE=avx512,avx2 and with LC_NUM_THREADS=1.
 * Machinery: tests/c/harness.h.
 */
#include "harness.h"

#define ARRAY_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define TOL32 1e-5
#define TOL64 1e-12

static double tol_for(lc_dtype dt) { return dt == LC_DTYPE_F32 ? TOL32 : TOL64; }

/* ---- matmul ------------------------------------------------------------------------------------- */

typedef struct mm_case {
    int64_t m, k, n;
    h_layout la, lb;
} mm_case;

static const mm_case MM_CASES[] = {
    {1, 1, 1, L_CONTIG, L_CONTIG},        {1, 7, 1, L_CONTIG, L_CONTIG},      {7, 7, 7, L_CONTIG, L_CONTIG},
    {1, 33, 7, L_CONTIG, L_CONTIG},       {7, 1, 33, L_CONTIG, L_CONTIG},     {33, 255, 1, L_CONTIG, L_CONTIG},
    {255, 33, 7, L_CONTIG, L_CONTIG},     {1, 1023, 1, L_CONTIG, L_CONTIG},   {7, 1023, 33, L_CONTIG, L_CONTIG},
    {33, 7, 1023, L_CONTIG, L_CONTIG},    {1, 4096, 7, L_CONTIG, L_CONTIG},   {4096, 33, 1, L_CONTIG, L_CONTIG},
    {7, 4096, 1, L_CONTIG, L_CONTIG},     {1, 7, 4096, L_CONTIG, L_CONTIG},   {8, 16, 8, L_CONTIG, L_CONTIG},
    {64, 64, 64, L_CONTIG, L_CONTIG},     {65, 63, 66, L_CONTIG, L_CONTIG},   {255, 255, 255, L_CONTIG, L_CONTIG},
    {256, 256, 256, L_CONTIG, L_CONTIG},  {513, 1024, 257, L_CONTIG, L_CONTIG},
    /* float32's medium-m kernel (4 < m <= 32, k·n >= 2^18 on AVX-512; a tuning candidate up to 64 rows) */
    {8, 300, 1000, L_CONTIG, L_CONTIG},   {17, 520, 700, L_CONTIG, L_CONTIG}, {32, 601, 449, L_CONTIG, L_CONTIG},
    /* strided views: a transposed / column-sliced, b likewise */
    {33, 255, 7, L_TRANSPOSED, L_PADDED}, {64, 64, 64, L_PADDED, L_TRANSPOSED}, {1, 33, 7, L_PADDED, L_CONTIG},
    {256, 256, 256, L_TRANSPOSED, L_TRANSPOSED},
};

static int mm_small_seen, mm_large_seen;

static void mm_run(h_group *g, lc_dtype dt, const mm_case *c) {
    const int64_t m = c->m, k = c->k, n = c->n;
    const int64_t sa[2] = {m, k}, sb[2] = {k, n}, so[2] = {m, n};
    double *a = h_alloc((size_t)(m * k) * sizeof(double)), *b = h_alloc((size_t)(k * n) * sizeof(double));
    double *ref = h_alloc((size_t)(m * n) * sizeof(double));
    h_fill(a, m * k, -1.0, 1.0, dt);
    h_fill(b, k * n, -1.0, 1.0, dt);
    lc_ref_matmul(m, k, n, a, b, ref);
    char desc[128];
    snprintf(desc, sizeof desc, "%s %lldx%lldx%lld a:%s b:%s", lc_dtype_name(dt), (long long)m, (long long)k,
             (long long)n, h_layout_name(c->la), h_layout_name(c->lb));
    const double tol = dt == LC_DTYPE_F32 ? 2e-5 * fmax(1.0, sqrt((double)k / 256.0)) : TOL64;
    for (int d = 0; d < H.ndevices; d++) {
        const lc_device dev = H.devices[d];
        lc_tensor_t *ta = h_make(dev, dt, 2, sa, a, c->la), *tb = h_make(dev, dt, 2, sb, b, c->lb);
        lc_tensor_t *to = h_out(dev, dt, 2, so);
        const char *path = NULL;
        h_judge(g, dev, desc, "matmul", lc_matmul(ta, tb, to, dev), to, ref, tol, -1.0, &path);
        if (path && dev == LC_DEVICE_CPU) {
            if (strstr(path, "small"))
                mm_small_seen = 1;
            else
                mm_large_seen = 1;
        }
        lc_tensor_free(ta);
        lc_tensor_free(tb);
        lc_tensor_free(to);
    }
    free(a);
    free(b);
    free(ref);
}

static void group_matmul(lc_dtype dt) {
    h_group g;
    h_group_begin(&g, dt == LC_DTYPE_F32 ? "matmul float32" : "matmul float64");
    for (int i = 0; i < ARRAY_LEN(MM_CASES); i++) mm_run(&g, dt, &MM_CASES[i]);
    h_group_end(&g);
}

/* Both CPU matmul paths (the unpacked small kernel and the large BLAS/blocked one) must have run. */
static void check_matmul_paths(void) {
    int cpu_ran = 0;
    for (int i = 0; i < H.ndevices; i++) cpu_ran |= H.devices[i] == LC_DEVICE_CPU;
    if (!cpu_ran) return; /* LC_TEST_DEVICES excluded the CPU */
    h_group g;
    h_group_begin(&g, "matmul paths");
    char why[128];
    snprintf(why, sizeof why, "small path %s, large path %s", mm_small_seen ? "ran" : "never ran",
             mm_large_seen ? "ran" : "never ran");
    h_record(&g, LC_DEVICE_CPU, "small and large cpu paths", mm_small_seen && mm_large_seen ? H_PASS : H_FAIL, -1.0,
             0.0, NULL, why);
    h_group_end(&g);
}

/* ---- linear (matmul + bias + activation, fused) ------------------------------------------------------ */

static void linear_run(h_group *g, int64_t m, int64_t k, int64_t n, int with_bias, lc_activation act) {
    static const char *act_names[LC_ACT_COUNT] = {"none", "relu", "gelu_erf", "gelu_tanh"};
    const int64_t sx[2] = {m, k}, sw[2] = {k, n}, sb[1] = {n}, so[2] = {m, n};
    double *x = h_alloc((size_t)(m * k) * sizeof(double)), *w = h_alloc((size_t)(k * n) * sizeof(double));
    double *b = h_alloc((size_t)n * sizeof(double)), *ref = h_alloc((size_t)(m * n) * sizeof(double));
    h_fill(x, m * k, -1.0, 1.0, LC_DTYPE_F32);
    h_fill(w, k * n, -1.0, 1.0, LC_DTYPE_F32);
    h_fill(b, n, -2.0, 2.0, LC_DTYPE_F32);
    lc_ref_linear(m, k, n, act, x, w, with_bias ? b : NULL, ref);
    char desc[128];
    snprintf(desc, sizeof desc, "%lldx%lldx%lld bias:%d act:%s", (long long)m, (long long)k, (long long)n, with_bias,
             act_names[act]);
    /* cuBLASLt's GELU epilogue evaluates tanh in a fast form: a looser bound for that row only. */
    const double tol = (act == LC_ACT_GELU_TANH ? 1e-4 : 2e-5) * fmax(1.0, sqrt((double)k / 256.0));
    for (int d = 0; d < H.ndevices; d++) {
        const lc_device dev = H.devices[d];
        lc_tensor_t *tx = h_make(dev, LC_DTYPE_F32, 2, sx, x, L_CONTIG), *tw = h_make(dev, LC_DTYPE_F32, 2, sw, w, L_CONTIG);
        lc_tensor_t *tb = with_bias ? h_make(dev, LC_DTYPE_F32, 1, sb, b, L_CONTIG) : NULL;
        lc_tensor_t *to = h_out(dev, LC_DTYPE_F32, 2, so);
        h_judge(g, dev, desc, "linear", lc_linear(tx, tw, tb, act, to, dev), to, ref, tol, -1.0, NULL);
        lc_tensor_free(tx);
        lc_tensor_free(tw);
        lc_tensor_free(tb);
        lc_tensor_free(to);
    }
    free(x);
    free(w);
    free(b);
    free(ref);
}

static void group_linear(void) {
    static const int64_t shapes[][3] = {{1, 1, 1}, {7, 33, 5}, {33, 255, 17}, {128, 256, 300}, {255, 64, 1024}};
    h_group g;
    h_group_begin(&g, "linear");
    for (int i = 0; i < ARRAY_LEN(shapes); i++)
        for (int act = 0; act < LC_ACT_COUNT; act++)
            for (int bias = 0; bias < 2; bias++) linear_run(&g, shapes[i][0], shapes[i][1], shapes[i][2], bias, (lc_activation)act);
    h_group_end(&g);
}

/* ---- attention ------------------------------------------------------------------------------------ */

typedef struct att_case {
    int64_t seq, d;
    int causal;
    double qscale; /* q drawn from [-qscale, qscale]: larger = sharper softmax */
    h_layout lq, lk, lv;
} att_case;

static void att_run(h_group *g, const att_case *c) {
    const int64_t seq = c->seq, d = c->d, n = seq * d;
    const int64_t shape[2] = {seq, d};
    double *q = h_alloc((size_t)n * sizeof(double)), *k = h_alloc((size_t)n * sizeof(double));
    double *v = h_alloc((size_t)n * sizeof(double)), *ref = h_alloc((size_t)n * sizeof(double));
    h_fill(q, n, -c->qscale, c->qscale, LC_DTYPE_F32);
    h_fill(k, n, -1.0, 1.0, LC_DTYPE_F32);
    h_fill(v, n, -1.0, 1.0, LC_DTYPE_F32);
    lc_ref_attention(seq, d, c->causal, q, k, v, ref);
    char desc[128];
    snprintf(desc, sizeof desc, "seq=%lld d=%lld%s q~%g q:%s k:%s v:%s", (long long)seq, (long long)d,
             c->causal ? " causal" : "", c->qscale, h_layout_name(c->lq), h_layout_name(c->lk), h_layout_name(c->lv));
    for (int i = 0; i < H.ndevices; i++) {
        const lc_device dev = H.devices[i];
        lc_tensor_t *tq = h_make(dev, LC_DTYPE_F32, 2, shape, q, c->lq);
        lc_tensor_t *tk = h_make(dev, LC_DTYPE_F32, 2, shape, k, c->lk);
        lc_tensor_t *tv = h_make(dev, LC_DTYPE_F32, 2, shape, v, c->lv);
        lc_tensor_t *to = h_out(dev, LC_DTYPE_F32, 2, shape);
        h_judge(g, dev, desc, "attention_forward", lc_attention_forward(tq, tk, tv, to, c->causal, dev), to, ref, TOL32,
                -1.0, NULL);
        lc_tensor_free(tq);
        lc_tensor_free(tk);
        lc_tensor_free(tv);
        lc_tensor_free(to);
    }
    free(q);
    free(k);
    free(v);
    free(ref);
}

static void group_attention(void) {
    static const int64_t seqs[] = {1, 7, 8, 33, 96, 255, 1023};
    static const int64_t dims[] = {1, 7, 16, 48, 64};
    h_group g;
    h_group_begin(&g, "attention float32");
    for (int s = 0; s < ARRAY_LEN(seqs); s++)
        for (int d = 0; d < ARRAY_LEN(dims); d++)
            for (int causal = 0; causal < 2; causal++) {
                const att_case c = {seqs[s], dims[d], causal, 1.0, L_CONTIG, L_CONTIG, L_CONTIG};
                att_run(&g, &c);
            }
    static const att_case extra[] = {
        {96, 64, 1, 8.0, L_CONTIG, L_CONTIG, L_CONTIG},    /* sharp softmax */
        {255, 16, 0, 8.0, L_CONTIG, L_CONTIG, L_CONTIG},
        {33, 16, 0, 1.0, L_PADDED, L_TRANSPOSED, L_PADDED}, /* strided views (q/v sliced, k transposed) */
        {96, 48, 1, 1.0, L_TRANSPOSED, L_PADDED, L_TRANSPOSED},
        {255, 64, 1, 1.0, L_PADDED, L_PADDED, L_PADDED},
    };
    for (int i = 0; i < ARRAY_LEN(extra); i++) att_run(&g, &extra[i]);
    h_group_end(&g);
}

/* Causal attention with one NaN/+inf/-inf in k or v row j (column col): row i reads keys and values
 * 0..i only, so rows < j must match the clean result (a masked value is skipped, never multiplied by
 * p = 0, which would give NaN) and rows >= j must show it as the float64 reference does (a NaN in v:
 * that column NaN; a NaN in k: the whole row). Sizes straddle the kernels' 64-row/64-key tiles. */
static void att_nonfinite_run(h_group *g, int64_t seq, int64_t d, const double *q, const double *k, const double *v) {
    static const double vals[] = {NAN, INFINITY, -INFINITY};
    const int64_t n = seq * d, shape[2] = {seq, d};
    const int64_t rows[] = {0, seq / 2, seq - 1, 40, 63, 64, 65, 128, 250};
    double *pk = h_alloc((size_t)n * sizeof(double)), *pv = h_alloc((size_t)n * sizeof(double));
    double *ref = h_alloc((size_t)n * sizeof(double));
    for (int which = 0; which < 2; which++)
        for (int vi = 0; vi < ARRAY_LEN(vals); vi++)
            for (int ri = 0; ri < ARRAY_LEN(rows); ri++) {
                const int64_t j = rows[ri];
                if (j >= seq || (ri > 2 && (j == 0 || j == seq / 2 || j == seq - 1))) continue; /* out of range or seen */
                const int64_t col = (j * 7 + 3) % d;
                memcpy(pk, k, (size_t)n * sizeof(double));
                memcpy(pv, v, (size_t)n * sizeof(double));
                (which ? pk : pv)[j * d + col] = vals[vi];
                lc_ref_attention(seq, d, 1, q, pk, pv, ref);
                char desc[128];
                snprintf(desc, sizeof desc, "seq=%lld d=%lld causal %s[%lld,%lld]=%g", (long long)seq, (long long)d,
                         which ? "k" : "v", (long long)j, (long long)col, vals[vi]);
                for (int i = 0; i < H.ndevices; i++) {
                    const lc_device dev = H.devices[i];
                    lc_tensor_t *tq = h_make(dev, LC_DTYPE_F32, 2, shape, q, L_CONTIG);
                    lc_tensor_t *tk = h_make(dev, LC_DTYPE_F32, 2, shape, pk, L_CONTIG);
                    lc_tensor_t *tv = h_make(dev, LC_DTYPE_F32, 2, shape, pv, L_CONTIG);
                    lc_tensor_t *to = h_out(dev, LC_DTYPE_F32, 2, shape);
                    h_judge(g, dev, desc, "attention_forward", lc_attention_forward(tq, tk, tv, to, 1, dev), to, ref,
                            TOL32, -1.0, NULL);
                    lc_tensor_free(tq);
                    lc_tensor_free(tk);
                    lc_tensor_free(tv);
                    lc_tensor_free(to);
                }
            }
    free(pk);
    free(pv);
    free(ref);
}

static void group_attention_nonfinite(void) {
    static const int64_t seqs[] = {1, 7, 63, 64, 65, 127, 128, 129, 257, 300};
    static const int64_t dims[] = {7, 64, 100};
    h_group g;
    h_group_begin(&g, "attention causal, NaN/inf in a k or v row");
    for (int s = 0; s < ARRAY_LEN(seqs); s++)
        for (int di = 0; di < ARRAY_LEN(dims); di++) {
            const int64_t seq = seqs[s], d = dims[di], n = seq * d;
            double *q = h_alloc((size_t)n * sizeof(double)), *k = h_alloc((size_t)n * sizeof(double));
            double *v = h_alloc((size_t)n * sizeof(double));
            h_fill(q, n, -1.0, 1.0, LC_DTYPE_F32);
            h_fill(k, n, -1.0, 1.0, LC_DTYPE_F32);
            h_fill(v, n, -1.0, 1.0, LC_DTYPE_F32);
            att_nonfinite_run(&g, seq, d, q, k, v);
            free(q);
            free(k);
            free(v);
        }
    h_group_end(&g);
}

/* ---- conv2d --------------------------------------------------------------------------------------- */

typedef struct conv_case {
    int64_t n, c, h, w, oc, kh, kw;
    int sh, sw, ph, pw, bias, relu;
    h_layout lx;
} conv_case;

static void conv_run(h_group *g, const conv_case *cc) {
    lc_conv2d_args s = {.n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .oc = cc->oc, .kh = cc->kh, .kw = cc->kw,
                        .stride_h = cc->sh, .stride_w = cc->sw, .pad_h = cc->ph, .pad_w = cc->pw,
                        .apply_relu = cc->relu};
    s.oh = (cc->h + 2 * cc->ph - cc->kh) / cc->sh + 1;
    s.ow = (cc->w + 2 * cc->pw - cc->kw) / cc->sw + 1;
    const int64_t xs[4] = {s.n, s.c, s.h, s.w}, ws[4] = {s.oc, s.c, s.kh, s.kw}, bs[1] = {s.oc};
    const int64_t ys[4] = {s.n, s.oc, s.oh, s.ow};
    const int64_t nx = h_numel(4, xs), nw = h_numel(4, ws), ny = h_numel(4, ys);
    double *x = h_alloc((size_t)nx * sizeof(double)), *w = h_alloc((size_t)nw * sizeof(double));
    double *b = h_alloc((size_t)s.oc * sizeof(double)), *ref = h_alloc((size_t)ny * sizeof(double));
    h_fill(x, nx, -1.0, 1.0, LC_DTYPE_F32);
    h_fill(w, nw, -1.0, 1.0, LC_DTYPE_F32);
    h_fill(b, s.oc, -1.0, 1.0, LC_DTYPE_F32);
    lc_ref_conv2d(&s, x, w, cc->bias ? b : NULL, ref);
    char desc[160];
    snprintf(desc, sizeof desc, "x[%lld,%lld,%lld,%lld] w[%lld,%lld,%lld,%lld] s=%d,%d p=%d,%d%s%s x:%s",
             (long long)s.n, (long long)s.c, (long long)s.h, (long long)s.w, (long long)s.oc, (long long)s.c,
             (long long)s.kh, (long long)s.kw, cc->sh, cc->sw, cc->ph, cc->pw, cc->bias ? " bias" : "",
             cc->relu ? " relu" : "", h_layout_name(cc->lx));
    const lc_conv2d_params params = {cc->sh, cc->sw, cc->ph, cc->pw, cc->relu};
    for (int i = 0; i < H.ndevices; i++) {
        const lc_device dev = H.devices[i];
        lc_tensor_t *tx = h_make(dev, LC_DTYPE_F32, 4, xs, x, cc->lx);
        lc_tensor_t *tw = h_make(dev, LC_DTYPE_F32, 4, ws, w, L_CONTIG);
        lc_tensor_t *tb = cc->bias ? h_make(dev, LC_DTYPE_F32, 1, bs, b, L_CONTIG) : NULL;
        lc_tensor_t *ty = h_out(dev, LC_DTYPE_F32, 4, ys);
        h_judge(g, dev, desc, "conv2d_nchw", lc_conv2d_nchw(tx, tw, tb, ty, &params, dev), ty, ref, TOL32, -1.0, NULL);
        lc_tensor_free(tx);
        lc_tensor_free(tw);
        lc_tensor_free(tb);
        lc_tensor_free(ty);
    }
    free(x);
    free(w);
    free(b);
    free(ref);
}

static void group_conv2d(void) {
    static const int64_t cs[] = {1, 3, 5}, ocs[] = {1, 16, 17}, hws[] = {3, 7, 16, 33};
    /* kernel, stride and pad combinations: every 3x3 stride 1..3 x pad 0..2, then other kernel sizes with
     * square and asymmetric strides/pads */
    static const int kernels[][6] = {
        /* kh kw sh sw ph pw */
        {3, 3, 1, 1, 0, 0}, {3, 3, 1, 1, 1, 1}, {3, 3, 1, 1, 2, 2}, {3, 3, 2, 2, 0, 0}, {3, 3, 2, 2, 1, 1},
        {3, 3, 2, 2, 2, 2}, {3, 3, 3, 3, 0, 0}, {3, 3, 3, 3, 1, 1}, {3, 3, 3, 3, 2, 2}, {3, 3, 1, 2, 0, 1},
        {3, 3, 3, 1, 2, 0}, {1, 1, 1, 1, 0, 0}, {1, 1, 2, 2, 0, 0}, {1, 1, 1, 1, 1, 1}, {5, 5, 1, 1, 2, 2},
        {5, 5, 2, 2, 0, 0}, {5, 5, 3, 3, 1, 1}, {2, 3, 1, 1, 0, 0}, {2, 3, 2, 1, 1, 0}, {2, 3, 1, 3, 0, 2},
    };
    h_group g;
    h_group_begin(&g, "conv2d float32");
    int idx = 0;
    for (int k = 0; k < ARRAY_LEN(kernels); k++) {
        for (int variant = 0; variant < 2; variant++, idx++) {
            conv_case c = {.n = 1 + idx % 2, .c = cs[idx % 3], .oc = ocs[(idx / 3) % 3], .kh = kernels[k][0],
                           .kw = kernels[k][1], .sh = kernels[k][2], .sw = kernels[k][3], .ph = kernels[k][4],
                           .pw = kernels[k][5], .bias = (idx / 2) % 2 == 0, .relu = variant == 1, .lx = L_CONTIG};
            c.h = hws[idx % 4];
            c.w = hws[(idx + idx / 4 + 1) % 4]; /* every (h, w) pair over 16 cases */
            /* at least one output position */
            for (int j = 0; c.h + 2 * c.ph < c.kh && j < 4; j++) c.h = hws[j];
            for (int j = 0; c.w + 2 * c.pw < c.kw && j < 4; j++) c.w = hws[j];
            if (idx % 7 == 3) c.lx = L_PADDED; /* x as a channel/width slice of a larger tensor */
            conv_run(&g, &c);
        }
    }
    /* the largest listed sizes together */
    const conv_case big = {2, 5, 33, 33, 17, 3, 3, 1, 1, 1, 1, 1, 1, L_PADDED};
    conv_run(&g, &big);
    h_group_end(&g);
}

/* ---- elementwise ---------------------------------------------------------------------------------- */

static const int64_t EW_SIZES[][2] = {{1, 1}, {1, 7}, {3, 11}, {15, 17}, {31, 33}, {64, 64}, {1024, 1024}};

enum { INPLACE_NONE = 0, INPLACE_A, INPLACE_B };

static const char *binary_op_name(lc_binary_kind kind) {
    return kind == LC_BINARY_ADD ? "vector_add" : kind == LC_BINARY_SUB ? "matrix_sub" : "matrix_div";
}

static lc_status call_binary(lc_binary_kind kind, const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out,
                             lc_device dev) {
    if (kind == LC_BINARY_ADD) return lc_vector_add(a, b, out, dev);
    if (kind == LC_BINARY_SUB) return lc_matrix_sub(a, b, out, dev);
    return lc_matrix_div(a, b, out, dev);
}

/* vector_add runs on 1-D tensors of rows*cols elements, matrix_sub/div on 2-D [rows, cols]. */
static void binary_run(h_group *g, lc_binary_kind kind, lc_dtype dt, int64_t rows, int64_t cols, h_layout la,
                       h_layout lb, int inplace) {
    const int64_t n = rows * cols;
    const int ndim = kind == LC_BINARY_ADD ? 1 : 2;
    const int64_t shape[2] = {kind == LC_BINARY_ADD ? n : rows, cols};
    double *a = h_alloc((size_t)n * sizeof(double)), *b = h_alloc((size_t)n * sizeof(double));
    double *ref = h_alloc((size_t)n * sizeof(double));
    h_fill(a, n, -10.0, 10.0, dt);
    for (int64_t i = 0; i < n; i++) /* denominators kept away from 0: |b| in [0.5, 2] */
        b[i] = h_round(dt, (h_next() & 1 ? 1.0 : -1.0) * h_uniform(0.5, 2.0));
    lc_ref_binary(kind, n, a, b, ref);
    char desc[128];
    snprintf(desc, sizeof desc, "%s n=%lld%s a:%s b:%s%s", lc_dtype_name(dt), (long long)n,
             ndim == 2 ? "" : " (1-D)", h_layout_name(la), h_layout_name(lb),
             inplace == INPLACE_A ? " out=a" : inplace == INPLACE_B ? " out=b" : "");
    for (int i = 0; i < H.ndevices; i++) {
        const lc_device dev = H.devices[i];
        lc_tensor_t *ta = h_make(dev, dt, ndim, shape, a, la), *tb = h_make(dev, dt, ndim, shape, b, lb);
        lc_tensor_t *to = inplace == INPLACE_A ? ta : inplace == INPLACE_B ? tb : h_out(dev, dt, ndim, shape);
        h_judge(g, dev, desc, binary_op_name(kind), call_binary(kind, ta, tb, to, dev), to, ref, tol_for(dt), -1.0,
                NULL);
        if (!inplace) lc_tensor_free(to);
        lc_tensor_free(ta);
        lc_tensor_free(tb);
    }
    free(a);
    free(b);
    free(ref);
}

static void group_binary(lc_binary_kind kind) {
    static char names[LC_BINARY_COUNT][32];
    snprintf(names[kind], sizeof names[kind], "%s", binary_op_name(kind));
    h_group g;
    h_group_begin(&g, names[kind]);
    for (int dti = 0; dti < 2; dti++) {
        const lc_dtype dt = dti ? LC_DTYPE_F64 : LC_DTYPE_F32;
        for (int s = 0; s < ARRAY_LEN(EW_SIZES); s++)
            binary_run(&g, kind, dt, EW_SIZES[s][0], EW_SIZES[s][1], L_CONTIG, L_CONTIG, INPLACE_NONE);
        /* strided views (1-D: stride 2; 2-D: transposed / column slice) and in place */
        binary_run(&g, kind, dt, 31, 33, L_PADDED, L_CONTIG, INPLACE_NONE);
        binary_run(&g, kind, dt, 31, 33, kind == LC_BINARY_ADD ? L_CONTIG : L_TRANSPOSED, L_PADDED, INPLACE_NONE);
        binary_run(&g, kind, dt, 64, 64, L_CONTIG, L_CONTIG, INPLACE_A);
        binary_run(&g, kind, dt, 1024, 1024, L_CONTIG, L_CONTIG, kind == LC_BINARY_DIV ? INPLACE_B : INPLACE_A);
    }
    h_group_end(&g);
}

/* Unary ops (relu float32/float64, gelu float32) share one runner; `specials` (may be NULL) overwrite the
 * first values, and per_elem_atol >= 0 adds an element-by-element check. */
typedef enum { U_RELU = 0, U_GELU_ERF, U_GELU_TANH } unary_kind;

static void unary_run(h_group *g, unary_kind kind, lc_dtype dt, int ndim, const int64_t *shape, double lo, double hi,
                      const double *specials, int nspecial, h_layout lx, int inplace, double per_elem_atol) {
    const int64_t n = h_numel(ndim, shape);
    double *x = h_alloc((size_t)n * sizeof(double)), *ref = h_alloc((size_t)n * sizeof(double));
    h_fill(x, n, lo, hi, dt);
    for (int i = 0; i < nspecial && i < n; i++) x[i] = h_round(dt, specials[i]);
    if (kind == U_RELU)
        lc_ref_relu(n, x, ref);
    else
        lc_ref_gelu(kind == U_GELU_TANH ? LC_GELU_TANH : LC_GELU_ERF, n, x, ref);
    char desc[128];
    snprintf(desc, sizeof desc, "%s n=%lld [%g, %g]%s x:%s%s", lc_dtype_name(dt), (long long)n, lo, hi,
             nspecial ? " +specials" : "", h_layout_name(lx), inplace ? " out=x" : "");
    for (int i = 0; i < H.ndevices; i++) {
        const lc_device dev = H.devices[i];
        lc_tensor_t *tx = h_make(dev, dt, ndim, shape, x, lx);
        lc_tensor_t *to = inplace ? tx : h_out(dev, dt, ndim, shape);
        lc_status st = kind == U_RELU ? lc_relu(tx, to, dev)
                                      : lc_gelu(tx, to, kind == U_GELU_TANH ? LC_GELU_TANH : LC_GELU_ERF, dev);
        h_judge(g, dev, desc, kind == U_RELU ? "relu" : "gelu", st, to, ref, tol_for(dt), per_elem_atol, NULL);
        if (!inplace) lc_tensor_free(to);
        lc_tensor_free(tx);
    }
    free(x);
    free(ref);
}

static const int64_t UNARY_SIZES[] = {1, 7, 33, 255, 1023, 4096, 1 << 20};

static void group_relu(void) {
    const double specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e-40, -1e-40, -NAN, 3.0e38, -3.0e38, 1.0, -1.0};
    h_group g;
    h_group_begin(&g, "relu");
    for (int dti = 0; dti < 2; dti++) {
        const lc_dtype dt = dti ? LC_DTYPE_F64 : LC_DTYPE_F32;
        for (int s = 0; s < ARRAY_LEN(UNARY_SIZES); s++)
            unary_run(&g, U_RELU, dt, 1, &UNARY_SIZES[s], -5.0, 5.0, NULL, 0, L_CONTIG, 0, -1.0);
        const int64_t n33[1] = {33}, m2d[2] = {31, 33}, big[1] = {1 << 20};
        unary_run(&g, U_RELU, dt, 1, n33, -5.0, 5.0, specials, ARRAY_LEN(specials), L_CONTIG, 0, -1.0);
        unary_run(&g, U_RELU, dt, 2, m2d, -5.0, 5.0, specials, ARRAY_LEN(specials), L_TRANSPOSED, 0, -1.0);
        unary_run(&g, U_RELU, dt, 1, big, -5.0, 5.0, specials, ARRAY_LEN(specials), L_CONTIG, 1, -1.0);
        unary_run(&g, U_RELU, dt, 1, n33, -5.0, 5.0, NULL, 0, L_PADDED, 0, -1.0);
    }
    h_group_end(&g);
}

static void group_gelu(void) {
    /* large |x| must neither overflow nor turn into NaN; NaN stays NaN; the tails keep relative accuracy */
    const double specials[] = {0.0,  -0.0,  100.0, -100.0, 1e30,  -1e30, 1e-30, -1e-30, 3.0e38, -3.0e38,
                               -5.0, -9.0,  -13.0, 5.0,    9.0,   0.5,   -0.5,  1e-45,  NAN,    INFINITY,
                               -1.0, 1.0,   -3.0,  3.0,    -0.75, 0.75,  -1.06, 1.06,   -20.0,  20.0};
    h_group g;
    h_group_begin(&g, "gelu float32");
    for (int form = 0; form < 2; form++) {
        const unary_kind kind = form ? U_GELU_TANH : U_GELU_ERF;
        for (int s = 0; s < ARRAY_LEN(UNARY_SIZES); s++)
            unary_run(&g, kind, LC_DTYPE_F32, 1, &UNARY_SIZES[s], -8.0, 8.0, NULL, 0, L_CONTIG, 0, -1.0);
        const int64_t n64[1] = {64}, m2d[2] = {31, 33}, big[1] = {1 << 20}, n4k[1] = {4096};
        /* element by element: |out - ref| <= 1e-5·|ref| + 1e-36 (results that small may be flushed to 0) */
        unary_run(&g, kind, LC_DTYPE_F32, 1, n64, -6.0, 6.0, specials, ARRAY_LEN(specials), L_CONTIG, 0, 1e-36);
        unary_run(&g, kind, LC_DTYPE_F32, 1, n4k, -12.0, 12.0, NULL, 0, L_CONTIG, 0, 1e-36);
        unary_run(&g, kind, LC_DTYPE_F32, 2, m2d, -4.0, 4.0, NULL, 0, L_PADDED, 0, -1.0);
        unary_run(&g, kind, LC_DTYPE_F32, 1, big, -4.0, 4.0, NULL, 0, L_CONTIG, 1, -1.0);
    }
    h_group_end(&g);
}

/* ---- layer norm ----------------------------------------------------------------------------------- */

static void ln_run(h_group *g, int ndim, const int64_t *shape, int affine, double mean, double spread, h_layout lx,
                   int inplace) {
    const int64_t n = h_numel(ndim, shape), cols = shape[ndim - 1], rows = n / cols;
    const double eps = 1e-5;
    double *x = h_alloc((size_t)n * sizeof(double)), *ref = h_alloc((size_t)n * sizeof(double));
    double *gm = h_alloc((size_t)cols * sizeof(double)), *bt = h_alloc((size_t)cols * sizeof(double));
    h_fill(x, n, mean - spread, mean + spread, LC_DTYPE_F32);
    h_fill(gm, cols, 0.5, 1.5, LC_DTYPE_F32);
    h_fill(bt, cols, -0.5, 0.5, LC_DTYPE_F32);
    const double *gp = affine & 2 ? gm : NULL, *bp = affine & 1 ? bt : NULL;
    lc_ref_layer_norm(rows, cols, eps, x, gp, bp, ref);
    char desc[128];
    snprintf(desc, sizeof desc, "%lldx%lld%s%s mean=%g±%g x:%s%s", (long long)rows, (long long)cols,
             gp ? " gamma" : "", bp ? " beta" : "", mean, spread, h_layout_name(lx), inplace ? " out=x" : "");
    const int64_t ps[1] = {cols};
    for (int i = 0; i < H.ndevices; i++) {
        const lc_device dev = H.devices[i];
        lc_tensor_t *tx = h_make(dev, LC_DTYPE_F32, ndim, shape, x, lx);
        lc_tensor_t *tg = gp ? h_make(dev, LC_DTYPE_F32, 1, ps, gm, L_CONTIG) : NULL;
        lc_tensor_t *tb = bp ? h_make(dev, LC_DTYPE_F32, 1, ps, bt, L_CONTIG) : NULL;
        lc_tensor_t *to = inplace ? tx : h_out(dev, LC_DTYPE_F32, ndim, shape);
        h_judge(g, dev, desc, "layer_norm", lc_layer_norm(tx, tg, tb, to, eps, dev), to, ref, TOL32, -1.0, NULL);
        if (!inplace) lc_tensor_free(to);
        lc_tensor_free(tx);
        lc_tensor_free(tg);
        lc_tensor_free(tb);
    }
    free(x);
    free(ref);
    free(gm);
    free(bt);
}

static void group_layer_norm(void) {
    static const int64_t shapes[][2] = {{1, 1}, {7, 33}, {255, 1023}, {3, 4096}};
    h_group g;
    h_group_begin(&g, "layer_norm float32");
    for (int s = 0; s < ARRAY_LEN(shapes); s++)
        for (int affine = 0; affine < 4; affine += 3) ln_run(&g, 2, shapes[s], affine, 0.0, 2.0, L_CONTIG, 0);
    const int64_t s733[2] = {7, 33}, s3d[3] = {2, 5, 33}, wide[2] = {4, 1000}, s255[2] = {255, 1023};
    ln_run(&g, 2, s733, 2, 0.0, 2.0, L_CONTIG, 0); /* gamma only */
    ln_run(&g, 2, s733, 1, 0.0, 2.0, L_CONTIG, 0); /* beta only */
    ln_run(&g, 3, s3d, 3, 0.5, 1.0, L_CONTIG, 0);  /* 3-D x: normalised over the last axis */
    ln_run(&g, 2, wide, 3, 1e4, 0.5, L_CONTIG, 0); /* large mean, small spread */
    ln_run(&g, 2, wide, 0, 1e4, 1e-2, L_CONTIG, 0);
    ln_run(&g, 2, s733, 3, 0.0, 2.0, L_PADDED, 0);     /* column slice */
    ln_run(&g, 2, s733, 3, 0.0, 2.0, L_TRANSPOSED, 0); /* transposed */
    ln_run(&g, 2, s255, 3, 1.0, 3.0, L_CONTIG, 1);     /* in place */
    h_group_end(&g);
}

/* ---- bad input ------------------------------------------------------------------------------------ */

static lc_tensor_t *bad_t(lc_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    const int64_t shape[4] = {d0, d1, d2, d3};
    lc_tensor_t *t = h_make(LC_DEVICE_CPU, dt, ndim, shape, NULL, L_CONTIG);
    if (h_fill_tensor(t, 0.25) != LC_OK) exit(2);
    return t;
}

static lc_tensor_t *bad_out(lc_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    const int64_t shape[4] = {d0, d1, d2, d3};
    return h_out(LC_DEVICE_CPU, dt, ndim, shape);
}

/* Runs one refused call: snapshots `out`, clears the error, checks status/message/out, frees `out`. */
#define EXPECT_ERROR(g, desc, want, names, out, call)                                                        \
    do {                                                                                                    \
        lc_tensor_t *out_ = (out);                                                                          \
        double *before_ = out_ ? h_read(out_) : NULL;                                                       \
        lc_clear_error();                                                                                   \
        lc_status st_ = (call);                                                                             \
        h_expect_error((g), (desc), st_, (want), (names), out_, before_);                                   \
        free(before_);                                                                                      \
    } while (0)

static void group_bad_input(void) {
    const lc_dtype F32 = LC_DTYPE_F32, F64 = LC_DTYPE_F64;
    const lc_device CPU = LC_DEVICE_CPU;
    h_group g;
    h_group_begin(&g, "bad input");
    lc_tensor_t *a45 = bad_t(F32, 2, 4, 5, 0, 0), *b53 = bad_t(F32, 2, 5, 3, 0, 0), *b63 = bad_t(F32, 2, 6, 3, 0, 0);
    lc_tensor_t *b53d = bad_t(F64, 2, 5, 3, 0, 0), *o43 = bad_out(F32, 2, 4, 3, 0, 0);

    /* matmul */
    EXPECT_ERROR(&g, "matmul inner dims 5 vs 6", LC_ERR_SHAPE, "b|a", o43, lc_matmul(a45, b63, o43, CPU));
    EXPECT_ERROR(&g, "matmul mixed float32/float64", LC_ERR_DTYPE, "b", o43, lc_matmul(a45, b53d, o43, CPU));
    lc_tensor_t *a3d = bad_t(F32, 3, 4, 5, 1, 0);
    EXPECT_ERROR(&g, "matmul a rank 3", LC_ERR_SHAPE, "a", o43, lc_matmul(a3d, b53, o43, CPU));
    lc_tensor_t *o44 = bad_out(F32, 2, 4, 4, 0, 0), *o43d = bad_out(F64, 2, 4, 3, 0, 0);
    EXPECT_ERROR(&g, "matmul out of the wrong shape", LC_ERR_SHAPE, "out", o44, lc_matmul(a45, b53, o44, CPU));
    EXPECT_ERROR(&g, "matmul out of the wrong dtype", LC_ERR_DTYPE, "out", o43d, lc_matmul(a45, b53, o43d, CPU));
    {   /* an activation code out of range: every linear-family entry refuses it, naming act, nothing written */
        lc_tensor_t *gu410 = bad_t(F32, 2, 4, 10, 0, 0);
        const lc_activation bad = LC_ACT_COUNT;
        EXPECT_ERROR(&g, "linear act out of range", LC_ERR_INVALID_ARGUMENT, "act", o43,
                     lc_linear(a45, b53, NULL, bad, o43, CPU));
        EXPECT_ERROR(&g, "rms_norm_linear act out of range", LC_ERR_INVALID_ARGUMENT, "act", o43,
                     lc_rms_norm_linear(a45, NULL, 1e-6, b53, NULL, bad, o43, CPU));
        EXPECT_ERROR(&g, "silu_mul_linear act out of range", LC_ERR_INVALID_ARGUMENT, "act", o43,
                     lc_silu_mul_linear(gu410, b53, NULL, NULL, bad, o43, CPU));
        lc_tensor_free(gu410);
    }
    {   /* argmax_out of the pre-norm linears: int64 [m], checked before anything runs (out stays NaN) */
        int32_t i4[4] = {0};
        int64_t l5[5] = {0};
        const int64_t s4[1] = {4}, s5[1] = {5};
        lc_tensor_t *am32 = NULL, *am5 = NULL;
        if (lc_tensor_wrap_host(i4, LC_DTYPE_I32, 1, s4, NULL, 1, &am32) != LC_OK ||
            lc_tensor_wrap_host(l5, LC_DTYPE_I64, 1, s5, NULL, 1, &am5) != LC_OK)
            exit(2);
        EXPECT_ERROR(&g, "rms_norm_linear argmax_out int32", LC_ERR_DTYPE, "argmax_out", o43,
                     lc_rms_norm_linear_argmax(a45, NULL, 1e-6, b53, NULL, LC_ACT_NONE, o43, am32, CPU));
        EXPECT_ERROR(&g, "layer_norm_linear argmax_out [5] for 4 rows", LC_ERR_SHAPE, "argmax_out", o43,
                     lc_layer_norm_linear_argmax(a45, NULL, NULL, 1e-5, b53, NULL, LC_ACT_NONE, o43, am5, CPU));
        /* an output argument is named once, after the op (lc_check_out_arg): the whole message */
        struct { const char *desc, *want; lc_status st; } named[2];
        lc_clear_error();
        named[0].st = lc_rms_norm_linear_argmax(a45, NULL, 1e-6, b53, NULL, LC_ACT_NONE, o43, am32, CPU);
        named[0].desc = "argmax_out's message", named[0].want = "rms_norm_linear: argmax_out: expected dtype int64, got int32";
        char got0[256];
        snprintf(got0, sizeof got0, "%s", lc_last_error());
        lc_tensor_t *q = bad_t(F32, 4, 1, 2, 3, 4), *o = bad_out(F32, 4, 1, 2, 3, 4), *lse = bad_out(F64, 3, 1, 2, 3, 0);
        lc_sdpa_options so = {0};
        so.lse = lse;
        lc_clear_error();
        named[1].st = lc_sdpa(q, q, q, o, &so, CPU);
        named[1].desc = "sdpa lse's message", named[1].want = "scaled_dot_product_attention: lse: expected dtype float32, got float64";
        const char *got[2] = {got0, lc_last_error()};
        for (int i = 0; i < 2; i++) {
            char why[512] = "";
            if (named[i].st == LC_OK || strcmp(got[i], named[i].want) != 0)
                snprintf(why, sizeof why, "got \"%s\", expected \"%s\"", got[i], named[i].want);
            h_record(&g, LC_DEVICE_CPU, named[i].desc, why[0] ? H_FAIL : H_PASS, -1.0, 0.0, NULL, why[0] ? why : got[i]);
        }
        lc_tensor_free(q);
        lc_tensor_free(o);
        lc_tensor_free(lse);
        lc_tensor_free(am32);
        lc_tensor_free(am5);
    }
    {
        const int64_t s43[2] = {4, 3};
        lc_tensor_t *ot = h_make(CPU, F32, 2, s43, NULL, L_TRANSPOSED); /* NaN-filled strided view */
        EXPECT_ERROR(&g, "matmul out non-contiguous", LC_ERR_INVALID_ARGUMENT, "out", ot, lc_matmul(a45, b53, ot, CPU));
        lc_tensor_free(ot);
        float host[12];
        for (int i = 0; i < 12; i++) host[i] = NAN;
        lc_tensor_t *ro = NULL;
        if (lc_tensor_wrap_host(host, F32, 2, s43, NULL, 0, &ro) != LC_OK) exit(2);
        EXPECT_ERROR(&g, "matmul out read-only", LC_ERR_INVALID_ARGUMENT, "out", ro, lc_matmul(a45, b53, ro, CPU));
        lc_tensor_free(ro);
    }
    {
        /* out overlapping an input: exactly a (m = k = n), and half-overlapping a */
        const int64_t s44[2] = {4, 4}, st44[2] = {4, 1}, s32[1] = {32};
        lc_tensor_t *sq = bad_t(F32, 2, 4, 4, 0, 0), *sq2 = bad_t(F32, 2, 4, 4, 0, 0);
        EXPECT_ERROR(&g, "matmul out is a", LC_ERR_INVALID_ARGUMENT, "out", sq, lc_matmul(sq, sq2, sq, CPU));
        lc_tensor_t *base = h_make(CPU, F32, 1, s32, NULL, L_CONTIG), *va = NULL, *vo = NULL;
        if (h_fill_tensor(base, 0.5) != LC_OK || lc_tensor_view(base, 2, s44, st44, 0, LC_DEVICE_AUTO, &va) != LC_OK ||
            lc_tensor_view(base, 2, s44, st44, 8, LC_DEVICE_AUTO, &vo) != LC_OK)
            exit(2);
        EXPECT_ERROR(&g, "matmul out overlaps a", LC_ERR_INVALID_ARGUMENT, "out", vo, lc_matmul(va, sq2, vo, CPU));
        EXPECT_ERROR(&g, "vector_add out overlaps a (not exactly)", LC_ERR_INVALID_ARGUMENT, "out", vo,
                     lc_vector_add(va, sq2, vo, CPU));
        lc_tensor_free(base);
        lc_tensor_free(va);
        lc_tensor_free(vo);
        lc_tensor_free(sq);
        lc_tensor_free(sq2);
    }
    EXPECT_ERROR(&g, "matmul a NULL", LC_ERR_INVALID_ARGUMENT, "a", o43, lc_matmul(NULL, b53, o43, CPU));
    EXPECT_ERROR(&g, "matmul b NULL", LC_ERR_INVALID_ARGUMENT, "b", o43, lc_matmul(a45, NULL, o43, CPU));
    EXPECT_ERROR(&g, "matmul out NULL", LC_ERR_INVALID_ARGUMENT, "out", NULL, lc_matmul(a45, b53, NULL, CPU));
    EXPECT_ERROR(&g, "matmul unknown device code", LC_ERR_INVALID_ARGUMENT, "device", o43,
                 lc_matmul(a45, b53, o43, (lc_device)42));

    /* attention */
    lc_tensor_t *q = bad_t(F32, 2, 8, 4, 0, 0), *k = bad_t(F32, 2, 8, 4, 0, 0), *v = bad_t(F32, 2, 8, 4, 0, 0);
    lc_tensor_t *k9 = bad_t(F32, 2, 9, 4, 0, 0), *ao = bad_out(F32, 2, 8, 4, 0, 0);
    lc_tensor_t *qd = bad_t(F64, 2, 8, 4, 0, 0), *kd = bad_t(F64, 2, 8, 4, 0, 0), *vd = bad_t(F64, 2, 8, 4, 0, 0);
    lc_tensor_t *aod = bad_out(F64, 2, 8, 4, 0, 0);
    EXPECT_ERROR(&g, "attention float64", LC_ERR_DTYPE, "q", aod, lc_attention_forward(qd, kd, vd, aod, 0, CPU));
    EXPECT_ERROR(&g, "attention k of another seq", LC_ERR_SHAPE, "k", ao, lc_attention_forward(q, k9, v, ao, 1, CPU));
    EXPECT_ERROR(&g, "attention out is q", LC_ERR_INVALID_ARGUMENT, "out", q, lc_attention_forward(q, k, v, q, 0, CPU));
    EXPECT_ERROR(&g, "attention k NULL", LC_ERR_INVALID_ARGUMENT, "k", ao, lc_attention_forward(q, NULL, v, ao, 0, CPU));

    /* conv2d */
    const lc_conv2d_params p1 = {1, 1, 0, 0, 0};
    lc_tensor_t *cx = bad_t(F32, 4, 1, 2, 3, 3), *cw = bad_t(F32, 4, 4, 2, 3, 3), *cw5 = bad_t(F32, 4, 4, 2, 5, 5);
    lc_tensor_t *cw3c = bad_t(F32, 4, 4, 3, 3, 3), *cb = bad_t(F32, 1, 4, 0, 0, 0), *cb5 = bad_t(F32, 1, 5, 0, 0, 0);
    lc_tensor_t *co = bad_out(F32, 4, 1, 4, 1, 1);
    EXPECT_ERROR(&g, "conv2d 5x5 kernel on 3x3 input (oh < 1)", LC_ERR_SHAPE, "h|x|w|oh|kh", co,
                 lc_conv2d_nchw(cx, cw5, NULL, co, &p1, CPU));
    const lc_conv2d_params pneg = {-1, 1, 0, 0, 0}, pnegw = {1, 0, 0, 0, 0}, ppad = {1, 1, 0, -1, 0};
    EXPECT_ERROR(&g, "conv2d negative stride_h", LC_ERR_INVALID_ARGUMENT, "stride_h", co,
                 lc_conv2d_nchw(cx, cw, NULL, co, &pneg, CPU));
    EXPECT_ERROR(&g, "conv2d zero stride_w", LC_ERR_INVALID_ARGUMENT, "stride_w", co,
                 lc_conv2d_nchw(cx, cw, NULL, co, &pnegw, CPU));
    EXPECT_ERROR(&g, "conv2d negative pad_w", LC_ERR_INVALID_ARGUMENT, "pad_w", co,
                 lc_conv2d_nchw(cx, cw, NULL, co, &ppad, CPU));
    EXPECT_ERROR(&g, "conv2d NULL params", LC_ERR_INVALID_ARGUMENT, "params", co,
                 lc_conv2d_nchw(cx, cw, NULL, co, NULL, CPU));
    EXPECT_ERROR(&g, "conv2d w channels 3 vs x 2", LC_ERR_SHAPE, "w", co, lc_conv2d_nchw(cx, cw3c, NULL, co, &p1, CPU));
    EXPECT_ERROR(&g, "conv2d bias [5] for oc 4", LC_ERR_SHAPE, "bias", co, lc_conv2d_nchw(cx, cw, cb5, co, &p1, CPU));
    EXPECT_ERROR(&g, "conv2d x NULL", LC_ERR_INVALID_ARGUMENT, "x", co, lc_conv2d_nchw(NULL, cw, cb, co, &p1, CPU));
    {
        /* out (4 values) aliasing x: x [1,1,2,2], w [1,1,1,1] -> out [1,1,2,2] = x */
        lc_tensor_t *x4 = bad_t(F32, 4, 1, 1, 2, 2), *w1 = bad_t(F32, 4, 1, 1, 1, 1);
        EXPECT_ERROR(&g, "conv2d out is x", LC_ERR_INVALID_ARGUMENT, "out", x4, lc_conv2d_nchw(x4, w1, NULL, x4, &p1, CPU));
        lc_tensor_free(x4);
        lc_tensor_free(w1);
    }

    /* elementwise, relu, gelu */
    lc_tensor_t *e7 = bad_t(F32, 1, 7, 0, 0, 0), *e8 = bad_t(F32, 1, 8, 0, 0, 0), *e7d = bad_t(F64, 1, 7, 0, 0, 0);
    lc_tensor_t *eo = bad_out(F32, 1, 7, 0, 0, 0), *eod = bad_out(F64, 1, 7, 0, 0, 0);
    EXPECT_ERROR(&g, "vector_add shapes 7 vs 8", LC_ERR_SHAPE, "b", eo, lc_vector_add(e7, e8, eo, CPU));
    EXPECT_ERROR(&g, "matrix_sub mixed dtypes", LC_ERR_DTYPE, "b", eo, lc_matrix_sub(e7, e7d, eo, CPU));
    EXPECT_ERROR(&g, "matrix_div out float64 for float32", LC_ERR_DTYPE, "out", eod, lc_matrix_div(e7, e7, eod, CPU));
    EXPECT_ERROR(&g, "relu out of the wrong shape", LC_ERR_SHAPE, "out", eo, lc_relu(e8, eo, CPU));
    EXPECT_ERROR(&g, "relu x NULL", LC_ERR_INVALID_ARGUMENT, "x", eo, lc_relu(NULL, eo, CPU));
    EXPECT_ERROR(&g, "gelu float64", LC_ERR_DTYPE, "x", eod, lc_gelu(e7d, eod, LC_GELU_ERF, CPU));
    EXPECT_ERROR(&g, "gelu unknown approx", LC_ERR_INVALID_ARGUMENT, "gelu_approx", eo,
                 lc_gelu(e7, eo, (lc_gelu_approx)7, CPU));

    /* layer norm */
    lc_tensor_t *lx = bad_t(F32, 2, 3, 8, 0, 0), *lg = bad_t(F32, 1, 8, 0, 0, 0), *lg7 = bad_t(F32, 1, 7, 0, 0, 0);
    lc_tensor_t *lo = bad_out(F32, 2, 3, 8, 0, 0);
    EXPECT_ERROR(&g, "layer_norm eps = 0", LC_ERR_INVALID_ARGUMENT, "eps", lo, lc_layer_norm(lx, lg, lg, lo, 0.0, CPU));
    EXPECT_ERROR(&g, "layer_norm eps < 0", LC_ERR_INVALID_ARGUMENT, "eps", lo, lc_layer_norm(lx, lg, lg, lo, -1e-5, CPU));
    EXPECT_ERROR(&g, "layer_norm gamma [7] for d 8", LC_ERR_SHAPE, "gamma", lo,
                 lc_layer_norm(lx, lg7, NULL, lo, 1e-5, CPU));
    lc_tensor_t *lbd = bad_t(F64, 1, 8, 0, 0, 0);
    EXPECT_ERROR(&g, "layer_norm beta float64", LC_ERR_DTYPE, "beta", lo, lc_layer_norm(lx, NULL, lbd, lo, 1e-5, CPU));
    EXPECT_ERROR(&g, "layer_norm x NULL", LC_ERR_INVALID_ARGUMENT, "x", lo, lc_layer_norm(NULL, lg, lg, lo, 1e-5, CPU));

    lc_tensor_t *all[] = {a45, b53, b63, b53d, o43, o44, o43d, q, k, v, k9, ao, qd, kd, vd, aod, cx, cw, cw5, cw3c,
                          cb, cb5, co, e7, e8, e7d, eo, eod, lx, lg, lg7, lo, a3d, lbd};
    for (int i = 0; i < ARRAY_LEN(all); i++) lc_tensor_free(all[i]);
    h_group_end(&g);
}

int main(void) {
    const char *seed = getenv("LC_TEST_SEED");
    const char *verbose = getenv("LC_TEST_VERBOSE");
    H.seed = seed && seed[0] ? strtoull(seed, NULL, 0) : 20240917ull;
    H.rng = H.seed;
    H.verbose = verbose && verbose[0] && strcmp(verbose, "0") != 0;
    /* LC_TEST_DEVICES=cuda (or cpu) restricts the run, e.g. under compute-sanitizer. */
    const char *only = getenv("LC_TEST_DEVICES");
    const lc_device candidates[2] = {LC_DEVICE_CPU, LC_DEVICE_CUDA};
    for (int i = 0; i < 2; i++)
        if (lc_device_available(candidates[i]) && (!only || !only[0] || strstr(only, lc_device_name(candidates[i]))))
            H.devices[H.ndevices++] = candidates[i];
    printf("test_ops: seed %llu (set LC_TEST_SEED to replay), devices:", (unsigned long long)H.seed);
    for (int i = 0; i < H.ndevices; i++) printf(" %s", lc_device_name(H.devices[i]));
    printf(", cpu features \"%s\", %d threads, blas %s\n", lc_cpu_features(), lc_num_threads(), lc_blas_name());
    fflush(stdout);
    const double t0 = h_now();

    group_matmul(LC_DTYPE_F32);
    group_matmul(LC_DTYPE_F64);
    check_matmul_paths();
    group_linear();
    group_attention();
    group_attention_nonfinite();
    group_conv2d();
    group_binary(LC_BINARY_ADD);
    group_binary(LC_BINARY_SUB);
    group_binary(LC_BINARY_DIV);
    group_relu();
    group_gelu();
    group_layer_norm();
    group_bad_input();

    printf("(%.2f s)\n", h_now() - t0);
    printf("%d passed, %d failed", H.passed, H.failed);
    if (H.skipped) printf(", %d skipped", H.skipped);
    printf("\n");
    return H.failed ? 1 : 0;
}
