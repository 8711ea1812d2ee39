/* op_table.c — the op table (op_table.h): one lc_op_def per lc_op, in enum order, with the shape rules
 * (infer), work estimates and device limits written once (the checks every reader shares: op_check.c):
 *   matmul              a [m,k], b [k,n] -> [m,n]
 *   bias_add            x [m,n], bias [n] -> [m,n]                   (graph; runs as linear's epilogue or an add)
 *   vector_add, matrix_sub, matrix_div   a, b same shape -> that shape
 *   relu, gelu          x -> x's shape                                (gelu: attr gelu_approx)
 *   layer_norm          x [..., d], gamma [d]?, beta [d]? -> x's shape (attr eps)
 *   attention_forward   q, k, v [seq,d] -> [seq,d]                    (attr causal; CUDA head_dim <= 256)
 *   attention_packed    qkv [3,seq,d] -> [seq,d]                      (graph; attention on views)
 *   conv2d_nchw (+ 3x3, 3x3s1p1 aliases)  x [n,c,h,w], w [oc,c,kh,kw], bias [oc]? -> [n,oc,oh,ow]
 *   qkv_pack_repeat     src (any shape) -> [3, seq, head_dim]          (attrs seq, head_dim)
 *   sdpa                q [(b,)(h,)sq,d], k, v [(b,)(hkv,)skv,d] -> q's shape (attr causal; h % hkv == 0, d <= 256)
 *   rms_norm            x [..., d], weight [d]? -> x's shape          (attr eps, default 1e-6)
 *   softmax, silu       x -> x's shape                                (softmax over the last axis)
 *   silu_mul            a, b same shape -> that shape                 (silu(a) * b)
 *   add, mul            a, b broadcastable (NumPy, rank <= 4) -> the broadcast shape
 *   linear              x [m,k], w [k,n], bias [n]? -> [m,n]            (eager; activation epilogue)
 *   conv_attention      x, w, bias? -> [seq, head_dim]                  (fused, internal)
 *   attention_projection  q, k, v [seq,d], w [d,pn], bias [pn]? -> [seq,pn]  (fused, internal)
 *   kv_append           k_new, v_new [b,hkv,t,d] -> into the cache      (internal: lc_kv_cache_append)
 *   embedding           weight [V,d], ids [...] int -> [..., d]          (eager; gather of rows)
 *   argmax              x [..., n] -> [...] int64                         (eager)
 *   sample              logits [B, V] -> [B] int64                         (eager: lc_sample, options outside attrs)
 *   rope                x [(b,)(h,)s,d], positions [(b,)s] -> x's shape (eager: lc_rope, options outside attrs)
 *   layer_norm_linear, rms_norm_linear  x [m,k], w [k,n], bias [n]?, gamma/beta/weight [k]? -> [m,n] (eager)
 *   silu_mul_linear     gu [m,2k], w [k,n], bias [n]?, residual [m,n]? -> [m,n]  (eager; SwiGLU + down proj)
 * Tests: tests/c/test_op_table.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/backend.h"
#include "core/internal.h"
#include "core/op_table.h"
#include "lightning_core/dtype.h"

#define ANY LC_GRAPH_RANK_ANY
#define F32 LC_DT_F32
#define F64 LC_DT_F64
#define F16 LC_DT_F16
#define BF16 LC_DT_BF16
#define CONV_ATTRS (LC_GRAPH_ATTR_STRIDE_H | LC_GRAPH_ATTR_STRIDE_W | LC_GRAPH_ATTR_PAD_H | LC_GRAPH_ATTR_PAD_W)

void lc_op_format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

const char *lc_op_arg_name(const lc_op_def *d, const lc_op_operands *in, int i) {
    if (i < 0 || i >= LC_OP_MAX_INPUTS) return "?";
    if (in->arg_names[i]) return in->arg_names[i];
    return d->input_names[i] ? d->input_names[i] : "?";
}

void lc_op_describe_input(char *buf, size_t size, const lc_op_def *d, const lc_op_operands *in, int i) {
    const char *arg = lc_op_arg_name(d, in, i);
    if (in->graph)
        snprintf(buf, size, "input %d '%s' (value '%s')", i, arg,
                 (i >= 0 && i < LC_OP_MAX_INPUTS && in->value_names[i]) ? in->value_names[i] : "?");
    else
        snprintf(buf, size, "%s", arg);
}

int64_t lc_conv_out_extent(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
    if (in < 0 || kernel < 1 || stride < 1 || pad < 0 || pad > INT32_MAX || in > INT64_MAX - 2 * pad) return -1;
    const int64_t span = in + 2 * pad - kernel;
    return span < 0 ? -1 : span / stride + 1;
}

/* ---- shape rules ------------------------------------------------------------------------------- */

static lc_status lc_shape_err(const lc_op_def *d, const lc_op_operands *in, int i, const char *expected) {
    char who[160], got[96];
    lc_op_describe_input(who, sizeof who, d, in, i);
    lc_op_format_shape(got, sizeof got, in->ndim[i], in->shape[i]);
    return lc_error(LC_ERR_SHAPE, "%s: %s: expected %s, got %s", in->prefix, who, expected, got);
}

static void lc_copy_shape(int ndim, const int64_t *shape, int *out_ndim, int64_t *out_shape) {
    *out_ndim = ndim;
    memcpy(out_shape, shape, (size_t)ndim * sizeof *shape);
}

/* b [k, n] after a [m, k] (matmul, linear, the projection of attention_projection): k must match. */
static lc_status lc_check_inner(const lc_op_def *d, const lc_op_operands *in, int ia, int ib) {
    const int64_t k = in->shape[ia][in->ndim[ia] - 1];
    if (in->shape[ib][0] == k) return LC_OK;
    char exp[128];
    snprintf(exp, sizeof exp, "[k=%lld, n] with k matching %s's dim %d", (long long)k, lc_op_arg_name(d, in, ia),
             in->ndim[ia] - 1);
    return lc_shape_err(d, in, ib, exp);
}

/* Optional input i of shape [n] where n is what `of` names. */
static lc_status lc_check_vector(const lc_op_def *d, const lc_op_operands *in, int i, int64_t n, const char *name,
                                 const char *of) {
    if (i >= in->n || !in->shape[i] || in->shape[i][0] == n) return LC_OK;
    char exp[96];
    snprintf(exp, sizeof exp, "[%s=%lld] (%s)", name, (long long)n, of);
    return lc_shape_err(d, in, i, exp);
}

/* The product rule of matmul / linear / the norm_linear ops: x [m,k] · w [k,n] (+ bias [n], input 2) -> [m,n]. */
static lc_status lc_infer_product(const lc_op_def *d, const lc_op_operands *in, int *out_ndim, int64_t *out_shape) {
    lc_status st = lc_check_inner(d, in, 0, 1);
    if (st == LC_OK) st = lc_check_vector(d, in, 2, in->shape[1][1], "n", "w's dim 1"); /* linear's bias */
    if (st != LC_OK) return st;
    *out_ndim = 2;
    out_shape[0] = in->shape[0][0];
    out_shape[1] = in->shape[1][1];
    return LC_OK;
}

/* Optional input 3 (linear's / silu_mul_linear's residual) of the output's shape [m, n]. */
static lc_status lc_check_residual(const lc_op_def *d, const lc_op_operands *in, int64_t m, int64_t n) {
    if (in->n <= 3 || !in->shape[3] || (in->shape[3][0] == m && in->shape[3][1] == n)) return LC_OK;
    char exp[96];
    snprintf(exp, sizeof exp, "[%lld, %lld] (the output's shape)", (long long)m, (long long)n);
    return lc_shape_err(d, in, 3, exp);
}

static lc_status lc_infer_matmul(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                 int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    lc_status st = lc_infer_product(d, in, out_ndim, out_shape);
    return st == LC_OK ? lc_check_residual(d, in, in->shape[0][0], in->shape[1][1]) : st;
}

/* silu_mul_linear: gu [m, 2k] (gate | up), w [k,n], bias [n]?, residual [m,n]? -> [m,n]. */
static lc_status lc_infer_silu_mul_linear(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                          int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    const int64_t h = in->shape[0][1] / 2, m = in->shape[0][0], n = in->shape[1][1];
    char exp[128];
    snprintf(exp, sizeof exp, in->shape[0][1] % 2 ? "[m, 2k] (gate | up halves: an even number of columns)"
             : "[k=%lld, n] with k half of gu's dim 1 (gate | up)", (long long)h);
    if (in->shape[0][1] % 2 || in->shape[1][0] != h) return lc_shape_err(d, in, in->shape[0][1] % 2 ? 0 : 1, exp);
    lc_status st = lc_check_vector(d, in, 2, n, "n", "w's dim 1");
    if (st == LC_OK) st = lc_check_residual(d, in, m, n);
    *out_ndim = 2, out_shape[0] = m, out_shape[1] = n;
    return st;
}

/* layer_norm_linear / rms_norm_linear: x [m,k], w [k,n], bias [n], gamma (weight) [k], beta [k] (layer only),
 * every one after w optional -> [m,n]. */
static lc_status lc_infer_norm_linear(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                      int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    lc_status st = lc_infer_product(d, in, out_ndim, out_shape);
    for (int i = 3; st == LC_OK && i < in->n; i++) st = lc_check_vector(d, in, i, in->shape[0][1], "k", "x's dim 1");
    return st;
}

static lc_status lc_infer_bias_add(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                   int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    lc_status st = lc_check_vector(d, in, 1, in->shape[0][1], "n", "matching x's dim 1");
    if (st != LC_OK) return st;
    lc_copy_shape(2, in->shape[0], out_ndim, out_shape);
    return LC_OK;
}

/* Input i has input ref's shape, else the shape error naming i ("expected [2, 3] (the shape of ids)"). */
static lc_status lc_expect_shape_of(const lc_op_def *d, const lc_op_operands *in, int i, int ref) {
    if (in->ndim[i] == in->ndim[ref] && !memcmp(in->shape[i], in->shape[ref], (size_t)in->ndim[ref] * sizeof(int64_t)))
        return LC_OK;
    char exp[128], rs[96];
    lc_op_format_shape(rs, sizeof rs, in->ndim[ref], in->shape[ref]);
    snprintf(exp, sizeof exp, "%s (the shape of %s)", rs, lc_op_arg_name(d, in, ref));
    return lc_shape_err(d, in, i, exp);
}

/* Every present input the shape of input 0 (elementwise ops, attention). */
static lc_status lc_infer_same(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                               int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    lc_status st;
    for (int i = 1; i < in->n; i++)
        if (in->shape[i] && (st = lc_expect_shape_of(d, in, i, 0)) != LC_OK) return st;
    lc_copy_shape(in->ndim[0], in->shape[0], out_ndim, out_shape);
    return LC_OK;
}

static lc_status lc_infer_layer_norm(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                     int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    const int64_t dim = in->shape[0][in->ndim[0] - 1];
    for (int i = 1; i < in->n; i++) {
        lc_status st = lc_check_vector(d, in, i, dim, "d", "x's last dim");
        if (st != LC_OK) return st;
    }
    lc_copy_shape(in->ndim[0], in->shape[0], out_ndim, out_shape);
    return LC_OK;
}

static lc_status lc_infer_attention_packed(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                           int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    if (in->shape[0][0] != 3) return lc_shape_err(d, in, 0, "[3, seq, head_dim] (q | k | v packed)");
    *out_ndim = 2;
    out_shape[0] = in->shape[0][1];
    out_shape[1] = in->shape[0][2];
    return LC_OK;
}

/* sdpa: q [(b,)(h,)sq,d], k and v [(b,)(hkv,)skv,d], one rank in 2..4 -> q's shape. k and v the same shape;
 * batch equal; h % hkv == 0 (GQA); d equal, 1..256. The one place this rule is written (the eager lc_sdpa
 * and the graph both read it). */
static lc_status lc_infer_sdpa(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs, int *out_ndim,
                               int64_t *out_shape) {
    (void)attrs;
    const int r = in->ndim[0];
    const int64_t *q = in->shape[0], *k = in->shape[1], *v = in->shape[2];
    char exp[192], qs[96];
    if (r < 2 || r > 4) return lc_shape_err(d, in, 0, "[batch, heads, seq, head_dim], [heads, seq, head_dim] or [seq, head_dim]");
    lc_op_format_shape(qs, sizeof qs, r, q);
    for (int i = 1; i < 3; i++)
        if (in->ndim[i] != r) {
            snprintf(exp, sizeof exp, "%d dimensions like q %s", r, qs);
            return lc_shape_err(d, in, i, exp);
        }
    const int64_t dq = q[r - 1];
    if (dq < 1 || dq > 256) return lc_shape_err(d, in, 0, "head_dim (last axis) in 1..256");
    if (k[r - 1] != dq) {
        snprintf(exp, sizeof exp, "head_dim %lld (q's last axis)", (long long)dq);
        return lc_shape_err(d, in, 1, exp);
    }
    if (r == 4 && k[0] != q[0]) {
        snprintf(exp, sizeof exp, "batch %lld (q's dim 0)", (long long)q[0]);
        return lc_shape_err(d, in, 1, exp);
    }
    if (r >= 3 && (k[r - 3] < 1 || q[r - 3] % k[r - 3] != 0)) {
        snprintf(exp, sizeof exp, "kv_heads dividing q's %lld heads (dim %d)", (long long)q[r - 3], r - 3);
        return lc_shape_err(d, in, 1, exp);
    }
    for (int i = 0; i < r; i++)
        if (v[i] != k[i]) {
            char ks[96];
            lc_op_format_shape(ks, sizeof ks, r, k);
            snprintf(exp, sizeof exp, "k's shape %s", ks);
            return lc_shape_err(d, in, 2, exp);
        }
    lc_copy_shape(r, q, out_ndim, out_shape);
    return LC_OK;
}

/* add, mul: NumPy broadcasting (shapes aligned from the right, each axis equal or 1 on one side), the result
 * of rank <= 4. */
static lc_status lc_infer_bcast(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    const int ra = in->ndim[0], rb = in->ndim[1], r = ra > rb ? ra : rb;
    char exp[192], as[96];
    if (r > 4) {
        const int i = ra >= rb ? 0 : 1;
        return lc_shape_err(d, in, i, "at most 4 dimensions (the broadcast rank limit)");
    }
    for (int k = 0; k < r; k++) {
        const int ia = k - (r - ra), ib = k - (r - rb);
        const int64_t ea = ia >= 0 ? in->shape[0][ia] : 1, eb = ib >= 0 ? in->shape[1][ib] : 1;
        if (ea != eb && ea != 1 && eb != 1) {
            lc_op_format_shape(as, sizeof as, ra, in->shape[0]);
            snprintf(exp, sizeof exp, "a shape broadcastable with %s's %s (axes aligned from the right, each equal or 1)",
                     lc_op_arg_name(d, in, 0), as);
            return lc_shape_err(d, in, 1, exp);
        }
        out_shape[k] = ea == 1 ? eb : ea;
    }
    *out_ndim = r;
    return LC_OK;
}

/* rope: x [b,h,s,d], [h,s,d] or [s,d]; positions [s] or [b,s] (b = x's batch, 1 below rank 4). The rotary_dim
 * (an option outside lc_graph_attrs) is checked by lc_rope. */
static lc_status lc_infer_rope(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                               int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    const int r = in->ndim[0];
    if (r < 2 || r > 4) return lc_shape_err(d, in, 0, "[batch, heads, seq, head_dim], [heads, seq, head_dim] or [seq, head_dim]");
    if (in->n > 1 && in->shape[1]) {
        const int64_t seq = in->shape[0][r - 2], batch = r == 4 ? in->shape[0][0] : 1;
        const int pr = in->ndim[1];
        const int64_t *p = in->shape[1];
        if (!((pr == 1 && p[0] == seq) || (pr == 2 && p[0] == batch && p[1] == seq))) {
            char exp[128];
            snprintf(exp, sizeof exp, "[seq=%lld] or [batch=%lld, seq=%lld] (%s's seq axis %d%s)", (long long)seq,
                     (long long)batch, (long long)seq, lc_op_arg_name(d, in, 0), r - 2, r == 4 ? " and batch axis 0" : "");
            return lc_shape_err(d, in, 1, exp);
        }
    }
    lc_copy_shape(r, in->shape[0], out_ndim, out_shape);
    return LC_OK;
}

/* embedding: weight [V, D] (a float dtype), ids [...] (int32/int64, rank < LC_MAX_DIMS) -> [..., D]. */
static lc_status lc_infer_embedding(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                    int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    char who[160];
    if (in->dtype[0] == LC_DTYPE_I32 || in->dtype[0] == LC_DTYPE_I64) {
        lc_op_describe_input(who, sizeof who, d, in, 0);
        return lc_error(LC_ERR_DTYPE, "%s: %s: expected a float dtype (the table), got %s", in->prefix, who,
                        lc_dtype_name(in->dtype[0]));
    }
    if (in->dtype[1] != LC_DTYPE_I32 && in->dtype[1] != LC_DTYPE_I64) {
        lc_op_describe_input(who, sizeof who, d, in, 1);
        return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype int32 or int64, got %s", in->prefix, who,
                        lc_dtype_name(in->dtype[1]));
    }
    if (in->ndim[1] >= LC_MAX_DIMS) return lc_shape_err(d, in, 1, "at most 7 dimensions (the output adds one)");
    /* learned positions (lc_embedding_pos): pos_weight [P, D] of weight's dtype and D, positions of ids' shape */
    const int pw = in->n > 2 && in->shape[2], pi = in->n > 3 && in->shape[3];
    if (pw != pi) {
        lc_op_describe_input(who, sizeof who, d, in, pw ? 2 : 3);
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected together with %s, got it alone", in->prefix, who,
                        pw ? "positions" : "pos_weight");
    }
    if (pw) {
        if (in->dtype[2] != in->dtype[0]) {
            lc_op_describe_input(who, sizeof who, d, in, 2);
            return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype %s (weight's), got %s", in->prefix, who,
                            lc_dtype_name(in->dtype[0]), lc_dtype_name(in->dtype[2]));
        }
        if (in->dtype[3] != LC_DTYPE_I32 && in->dtype[3] != LC_DTYPE_I64) {
            lc_op_describe_input(who, sizeof who, d, in, 3);
            return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype int32 or int64, got %s", in->prefix, who,
                            lc_dtype_name(in->dtype[3]));
        }
        if (in->shape[2][1] != in->shape[0][1]) {
            char exp[96];
            snprintf(exp, sizeof exp, "[positions, %lld] (weight's dim 1)", (long long)in->shape[0][1]);
            return lc_shape_err(d, in, 2, exp);
        }
        lc_status st = lc_expect_shape_of(d, in, 3, 1);
        if (st != LC_OK) return st;
    }
    *out_ndim = in->ndim[1] + 1;
    memcpy(out_shape, in->shape[1], (size_t)in->ndim[1] * sizeof(int64_t));
    out_shape[in->ndim[1]] = in->shape[0][1];
    return LC_OK;
}

/* argmax: x [..., n] (float) -> [...] (int64); a 1-D x gives [1]. */
static lc_status lc_infer_argmax(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs, int *out_ndim,
                                 int64_t *out_shape) {
    (void)d, (void)attrs;
    if (in->ndim[0] == 1) {
        *out_ndim = 1;
        out_shape[0] = 1;
        return LC_OK;
    }
    lc_copy_shape(in->ndim[0] - 1, in->shape[0], out_ndim, out_shape);
    return LC_OK;
}

/* sample: logits [B, V] (float, 1 <= V <= 2^23: the fixed-point weights' sum must fit) -> [B] (int64). */
static lc_status lc_infer_sample(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs, int *out_ndim,
                                 int64_t *out_shape) {
    (void)attrs;
    const int64_t v = in->shape[0][1];
    if (v < 1 || v > ((int64_t)1 << 23)) return lc_shape_err(d, in, 0, "a vocabulary axis of 1..8388608 columns");
    *out_ndim = 1;
    out_shape[0] = in->shape[0][0];
    return LC_OK;
}

/* x [n,c,h,w] * w [oc,c,kh,kw] (+ bias [oc]) -> [n, oc, oh, ow] (conv2d and its aliases, conv_attention). */
static lc_status lc_conv_shape(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                               int64_t out[4]) {
    const int64_t *x = in->shape[0], *w = in->shape[1];
    char exp[192];
    if (w[1] != x[1]) {
        snprintf(exp, sizeof exp, "[oc, c=%lld, kh, kw] with c matching x's channels (dim 1)", (long long)x[1]);
        return lc_shape_err(d, in, 1, exp);
    }
    if ((d->op == LC_OP_CONV2D_3X3 || d->op == LC_OP_CONV2D_3X3S1P1) && (w[2] != 3 || w[3] != 3)) {
        snprintf(exp, sizeof exp, "a 3x3 kernel [oc, c, 3, 3] (%s)", d->name);
        return lc_shape_err(d, in, 1, exp);
    }
    lc_status st = lc_check_vector(d, in, 2, w[0], "oc", "w's dim 0");
    if (st != LC_OK) return st;
    const int64_t oh = lc_conv_out_extent(x[2], w[2], attrs->stride_h, attrs->pad_h);
    const int64_t ow = lc_conv_out_extent(x[3], w[3], attrs->stride_w, attrs->pad_w);
    if (oh < 0 || ow < 0) {
        const int h = oh < 0;
        snprintf(exp, sizeof exp, "%s + 2*pad_%s >= kernel %s %lld (got %lld + 2*%d: no output positions)",
                 h ? "h" : "w", h ? "h" : "w", h ? "kh" : "kw", (long long)(h ? w[2] : w[3]),
                 (long long)(h ? x[2] : x[3]), h ? attrs->pad_h : attrs->pad_w);
        return lc_shape_err(d, in, 0, exp);
    }
    out[0] = x[0], out[1] = w[0], out[2] = oh, out[3] = ow;
    return LC_OK;
}

static lc_status lc_infer_conv2d(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                 int *out_ndim, int64_t *out_shape) {
    *out_ndim = 4;
    return lc_conv_shape(d, in, attrs, out_shape);
}

static lc_status lc_infer_qkv(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                              int *out_ndim, int64_t *out_shape) {
    (void)d, (void)in;
    *out_ndim = 3;
    out_shape[0] = 3;
    out_shape[1] = attrs->seq;
    out_shape[2] = attrs->head_dim;
    return LC_OK;
}

static lc_status lc_infer_conv_attention(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                         int *out_ndim, int64_t *out_shape) {
    int64_t conv[4];
    lc_status st = lc_conv_shape(d, in, attrs, conv);
    if (st != LC_OK) return st;
    *out_ndim = 2;
    out_shape[0] = attrs->seq;
    out_shape[1] = attrs->head_dim;
    return LC_OK;
}

static lc_status lc_infer_attention_projection(const lc_op_def *d, const lc_op_operands *in,
                                               const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape) {
    int nd;
    int64_t att[2];
    lc_op_operands qkv = *in;
    qkv.n = 3;
    lc_status st = lc_infer_same(d, &qkv, attrs, &nd, att);
    if (st == LC_OK) st = lc_check_inner(d, in, 0, 3);
    if (st == LC_OK) st = lc_check_vector(d, in, 4, in->shape[3][1], "pn", "w's dim 1");
    if (st != LC_OK) return st;
    *out_ndim = 2;
    out_shape[0] = att[0];
    out_shape[1] = in->shape[3][1];
    return LC_OK;
}

/* ---- work ---------------------------------------------------------------------------------------- */

static double lc_numel(int ndim, const int64_t *shape) {
    double n = 1.0;
    for (int i = 0; i < ndim; i++) n *= (double)shape[i];
    return n;
}

static double lc_esize(const lc_op_operands *in) { return (double)lc_dtype_size(in->dtype[0]); }

/* Bytes of the inputs in `mask` (present ones) and the output. */
static double lc_bytes(const lc_op_operands *in, unsigned mask, int ond, const int64_t *os) {
    double n = lc_numel(ond, os);
    for (int i = 0; i < in->n; i++)
        if ((mask & (1u << i)) && in->shape[i]) n += lc_numel(in->ndim[i], in->shape[i]);
    return n * lc_esize(in);
}

static lc_op_work lc_work_matmul(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    const double f = 2.0 * lc_numel(ond, os) * (double)in->shape[0][1];
    return (lc_op_work){f, lc_bytes(in, 3u, ond, os), f};
}

/* the product plus the norm (about 8 flops an element of x); bytes of x, w, bias, gamma, beta and out */
static lc_op_work lc_work_norm_linear(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    const double f = 2.0 * lc_numel(ond, os) * (double)in->shape[0][1];
    return (lc_op_work){f + 8.0 * lc_numel(in->ndim[0], in->shape[0]), lc_bytes(in, 0x1fu, ond, os), f};
}

/* the product plus silu(g)·u (about 9 flops an element of the [m,k] half); bytes of gu, w, bias, residual, out */
static lc_op_work lc_work_silu_mul_linear(const lc_op_operands *in, const lc_graph_attrs *a, int ond,
                                          const int64_t *os) {
    (void)a;
    const double f = 2.0 * lc_numel(ond, os) * (double)in->shape[1][0];
    return (lc_op_work){f + 4.5 * lc_numel(in->ndim[0], in->shape[0]), lc_bytes(in, 0xfu, ond, os), f};
}

static lc_op_work lc_work_elementwise(const lc_op_operands *in, double flops_per_element, int ond, const int64_t *os) {
    const double n = lc_numel(ond, os);
    return (lc_op_work){flops_per_element * n, (double)(in->n + 1) * n * lc_esize(in), 0.0};
}

static lc_op_work lc_work_binary(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    return lc_work_elementwise(in, 1.0, ond, os);
}

static lc_op_work lc_work_relu(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    return lc_work_elementwise(in, 1.0, ond, os);
}

static lc_op_work lc_work_gelu(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    return lc_work_elementwise(in, 20.0, ond, os);
}

static lc_op_work lc_work_layer_norm(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    const double n = lc_numel(ond, os);
    return (lc_op_work){8.0 * n, lc_bytes(in, 7u, ond, os), 0.0};
}

static lc_op_work lc_work_bias_add(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a; /* broadcast of bias into [m,n], then an add: 2 writes and 3 reads of [m,n] */
    const double n = lc_numel(ond, os);
    return (lc_op_work){n, 5.0 * n * lc_esize(in), 0.0};
}

/* softmax(q kᵀ) v over [seq, d] (out [seq, d]). */
static double lc_attention_flops(int64_t seq, int64_t d) { return 4.0 * (double)seq * (double)seq * (double)d; }

static lc_op_work lc_work_attention(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a, (void)ond;
    return (lc_op_work){lc_attention_flops(os[0], os[1]), 4.0 * lc_numel(2, os) * lc_esize(in), 0.0};
}

/* sdpa: 4·b·h·sq·skv·d (two products; causal not subtracted), bytes of q, k, v and out. */
static lc_op_work lc_work_sdpa(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    const int r = in->ndim[0];
    const double skv = (double)in->shape[1][r - 2];
    return (lc_op_work){4.0 * lc_numel(ond, os) * skv, lc_bytes(in, 7u, ond, os), 0.0};
}

/* kv_append: the new tokens read and written into the cache. */
static lc_op_work lc_work_kv_append(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a, (void)ond, (void)os;
    return (lc_op_work){0.0, 2.0 * (lc_numel(4, in->shape[0]) + lc_numel(4, in->shape[1])) * lc_esize(in), 0.0};
}

static lc_status lc_infer_kv_append(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                    int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    const lc_status st = lc_expect_shape_of(d, in, 1, 0);
    if (st != LC_OK) return st;
    lc_copy_shape(4, in->shape[0], out_ndim, out_shape);
    return LC_OK;
}

static double lc_conv_flops(const lc_op_operands *in, const int64_t conv_out[4]) {
    const int64_t *w = in->shape[1];
    return 2.0 * lc_numel(4, conv_out) * (double)w[1] * (double)w[2] * (double)w[3];
}

static lc_op_work lc_work_conv2d(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    return (lc_op_work){lc_conv_flops(in, os), lc_bytes(in, 3u, ond, os), 0.0};
}

static lc_op_work lc_work_qkv(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    return (lc_op_work){0.0, lc_bytes(in, 1u, ond, os) + lc_numel(ond, os) * lc_esize(in), 0.0};
}

static lc_op_work lc_work_conv_attention(const lc_op_operands *in, const lc_graph_attrs *a, int ond,
                                         const int64_t *os) {
    const int64_t *x = in->shape[0], *w = in->shape[1];
    const int64_t conv[4] = {x[0], w[0], lc_conv_out_extent(x[2], w[2], a->stride_h, a->pad_h),
                             lc_conv_out_extent(x[3], w[3], a->stride_w, a->pad_w)};
    return (lc_op_work){lc_conv_flops(in, conv) + lc_attention_flops(os[0], os[1]), lc_bytes(in, 3u, ond, os), 0.0};
}

static lc_op_work lc_work_attention_projection(const lc_op_operands *in, const lc_graph_attrs *a, int ond,
                                               const int64_t *os) {
    (void)a;
    const int64_t seq = in->shape[0][0], d = in->shape[0][1];
    const double gemm = 2.0 * (double)seq * (double)d * (double)os[1];
    return (lc_op_work){lc_attention_flops(seq, d) + gemm, lc_bytes(in, 0xfu, ond, os), gemm};
}

static lc_op_work lc_work_rms_norm(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    return (lc_op_work){4.0 * lc_numel(ond, os), lc_bytes(in, 3u, ond, os), 0.0};
}

static lc_op_work lc_work_softmax(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    return lc_work_elementwise(in, 10.0, ond, os); /* max, exp (~6), sum, scale */
}

static lc_op_work lc_work_silu(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    return lc_work_elementwise(in, in->n > 1 ? 9.0 : 8.0, ond, os); /* exp (~6), add, divide (, multiply) */
}

static lc_op_work lc_work_bcast(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a; /* each input read once (a broadcast one stays in cache), the output written */
    return (lc_op_work){lc_numel(ond, os), lc_bytes(in, 3u, ond, os), 0.0};
}

static lc_op_work lc_work_rope(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a; /* x read and out written in x's dtype, positions (up to 8 bytes each) read */
    const double n = lc_numel(ond, os);
    const double pos = in->n > 1 && in->shape[1] ? lc_numel(in->ndim[1], in->shape[1]) : 0.0;
    return (lc_op_work){6.0 * n, 2.0 * n * lc_esize(in) + 8.0 * pos, 0.0};
}

/* embedding: out rows copied (read + written), ids read; with positions a second row read, added, and the
 * positions read. */
static lc_op_work lc_work_embedding(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    const double ids = lc_numel(in->ndim[1], in->shape[1]), n = lc_numel(ond, os);
    const int pos = in->n > 3 && in->shape[3];
    return (lc_op_work){pos ? n : 0.0, (pos ? 3.0 : 2.0) * n * lc_esize(in) + (pos ? 16.0 : 8.0) * ids, 0.0};
}

/* copy: every element read and written once. */
static lc_op_work lc_work_copy(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a, (void)ond, (void)os;
    return (lc_op_work){0.0, 2.0 * lc_numel(in->ndim[0], in->shape[0]) * lc_esize(in), 0.0};
}

/* argmax: x read, one int64 per row written. */
static lc_op_work lc_work_argmax(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    const double n = lc_numel(in->ndim[0], in->shape[0]);
    return (lc_op_work){n, n * lc_esize(in) + 8.0 * lc_numel(ond, os), 0.0};
}

/* sample: up to ~11 passes over the logits (max, top-k and top-p selections, the draw), one int64 per row. */
static lc_op_work lc_work_sample(const lc_op_operands *in, const lc_graph_attrs *a, int ond, const int64_t *os) {
    (void)a;
    const double n = lc_numel(in->ndim[0], in->shape[0]);
    return (lc_op_work){20.0 * n, 11.0 * n * lc_esize(in) + 8.0 * lc_numel(ond, os), 0.0};
}

/* ---- device limits ------------------------------------------------------------------------------- */

static const char *lc_attention_gpu_limit(const lc_op_operands *in, const lc_graph_attrs *attrs) {
    (void)attrs;
    return in->shape[0][in->ndim[0] - 1] > 256 ? "the CUDA attention kernel takes head_dim <= 256" : NULL;
}

/* ---- the table (enum order; each entry names its own id) ------------------------------------------ */

#define NO_ATTRS {0}
#define CONV_DEFAULTS {.stride_h = 1, .stride_w = 1, .pad_h = 0, .pad_w = 0}
#define FP (F32 | F64)
#define LOWP (F32 | F16 | BF16)      /* float32 and the 16-bit floats (arithmetic in float32) */
#define ALL (F32 | F64 | F16 | BF16) /* the float types */

static const lc_op_def lc_ops[] = {
    {LC_OP_MATMUL, "matmul", LC_OP_MATMUL, LC_OPF_GRAPH, 2, 2, {"a", "b"}, {2, 2}, 2, 0,
     {ALL, ALL}, 0, 0, NO_ATTRS, LC_CROSSOVER_MATMUL_FLOPS, "a [m,k], b [k,n] -> [m,n]", "lc_matmul",
     lc_infer_matmul, lc_work_matmul, NULL},
    {LC_OP_BIAS_ADD, "bias_add", LC_OP_BIAS_ADD, LC_OPF_GRAPH | LC_OPF_COMPOSITE, 2, 2, {"x", "bias"}, {2, 1}, 2, 1u,
     {LOWP, LOWP}, 0, 0, NO_ATTRS, LC_CROSSOVER_NONE, "x [m,n], bias [n] -> [m,n] (bias broadcast over rows)",
     "no eager op of its own: runs as the bias epilogue of lc_linear (fused after a matmul) or a broadcast add; "
     "supported where linear is (float32, float16, bfloat16)",
     lc_infer_bias_add, lc_work_bias_add, NULL},
    {LC_OP_VECTOR_ADD, "vector_add", LC_OP_VECTOR_ADD, LC_OPF_GRAPH, 2, 2, {"a", "b"}, {ANY, ANY}, ANY, 3u, {ALL, ALL}, 0,
     0, NO_ATTRS, LC_CROSSOVER_NONE, "a, b same shape -> that shape", "lc_vector_add", lc_infer_same, lc_work_binary,
     NULL},
    {LC_OP_MATRIX_SUB, "matrix_sub", LC_OP_MATRIX_SUB, LC_OPF_GRAPH, 2, 2, {"a", "b"}, {ANY, ANY}, ANY, 3u, {ALL, ALL}, 0,
     0, NO_ATTRS, LC_CROSSOVER_NONE, "a, b same shape -> that shape (a - b)", "lc_matrix_sub", lc_infer_same,
     lc_work_binary, NULL},
    {LC_OP_MATRIX_DIV, "matrix_div", LC_OP_MATRIX_DIV, LC_OPF_GRAPH, 2, 2, {"a", "b"}, {ANY, ANY}, ANY, 3u, {ALL, ALL}, 0,
     0, NO_ATTRS, LC_CROSSOVER_NONE, "a, b same shape -> that shape (a / b)", "lc_matrix_div", lc_infer_same,
     lc_work_binary, NULL},
    {LC_OP_RELU, "relu", LC_OP_RELU, LC_OPF_GRAPH, 1, 1, {"x"}, {ANY}, ANY, 1u, {ALL, ALL}, 0, 0, NO_ATTRS,
     LC_CROSSOVER_NONE, "x -> x's shape", "lc_relu", lc_infer_same, lc_work_relu, NULL},
    {LC_OP_GELU, "gelu", LC_OP_GELU, LC_OPF_GRAPH, 1, 1, {"x"}, {ANY}, ANY, 1u, {LOWP, LOWP}, LC_GRAPH_ATTR_GELU_APPROX,
     0, {.gelu_approx = LC_GELU_ERF}, LC_CROSSOVER_NONE, "x -> x's shape", "lc_gelu", lc_infer_same, lc_work_gelu,
     NULL},
    {LC_OP_LAYER_NORM, "layer_norm", LC_OP_LAYER_NORM, LC_OPF_GRAPH, 1, 3, {"x", "gamma", "beta"}, {ANY, 1, 1}, ANY,
     1u, {LOWP, LOWP}, LC_GRAPH_ATTR_EPS, 0, {.eps = 1e-5}, LC_CROSSOVER_NONE,
     "x [..., d], gamma [d] (optional), beta [d] (optional, needs gamma) -> x's shape", "lc_layer_norm",
     lc_infer_layer_norm, lc_work_layer_norm, NULL},
    {LC_OP_ATTENTION, "attention_forward", LC_OP_ATTENTION, LC_OPF_GRAPH, 3, 3, {"q", "k", "v"}, {2, 2, 2}, 2, 0,
     {LOWP, LOWP}, LC_GRAPH_ATTR_CAUSAL, 0, {.causal = 0}, LC_CROSSOVER_NONE, "q, k, v [seq,d] -> [seq,d]",
     "lc_attention_forward (CUDA: head_dim <= 256)", lc_infer_same, lc_work_attention, lc_attention_gpu_limit},
    {LC_OP_ATTENTION_PACKED, "attention_packed", LC_OP_ATTENTION, LC_OPF_GRAPH | LC_OPF_COMPOSITE, 1, 1, {"qkv"}, {3},
     2, 0, {LOWP, LOWP}, LC_GRAPH_ATTR_CAUSAL, 0, {.causal = 0}, LC_CROSSOVER_NONE,
     "qkv [3, seq, d] (q | k | v, e.g. from qkv_pack_repeat) -> [seq, d]",
     "lc_attention_forward on views of qkv (CUDA: head_dim <= 256)", lc_infer_attention_packed, lc_work_attention,
     lc_attention_gpu_limit},
    {LC_OP_CONV2D, "conv2d_nchw", LC_OP_CONV2D, LC_OPF_GRAPH | LC_OPF_NCHW, 2, 3, {"x", "w", "bias"}, {4, 4, 1}, 4, 0,
     {LOWP, LOWP}, CONV_ATTRS, 0, CONV_DEFAULTS, LC_CROSSOVER_CONV2D_MACS,
     "x [n,c,h,w], w [oc,c,kh,kw], bias [oc] (optional) -> [n,oc,(h+2*pad_h-kh)/stride_h+1,(w+2*pad_w-kw)/stride_w+1]",
     "lc_conv2d_nchw", lc_infer_conv2d, lc_work_conv2d, NULL},
    {LC_OP_CONV2D_3X3, "conv2d_nchw3x3", LC_OP_CONV2D, LC_OPF_GRAPH | LC_OPF_NCHW, 2, 3, {"x", "w", "bias"}, {4, 4, 1},
     4, 0, {LOWP, LOWP}, CONV_ATTRS, 0, CONV_DEFAULTS, LC_CROSSOVER_CONV2D_MACS,
     "conv2d_nchw with a 3x3 kernel: w [oc,c,3,3]", "lc_conv2d_nchw (direct 3x3 kernels)", lc_infer_conv2d,
     lc_work_conv2d, NULL},
    {LC_OP_CONV2D_3X3S1P1, "conv2d_nchw3x3s1p1", LC_OP_CONV2D, LC_OPF_GRAPH | LC_OPF_NCHW, 2, 3, {"x", "w", "bias"},
     {4, 4, 1}, 4, 0, {LOWP, LOWP}, CONV_ATTRS, 0, {.stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1},
     LC_CROSSOVER_CONV2D_MACS, "conv2d_nchw3x3 with stride 1 and pad 1 fixed -> [n,oc,h,w]",
     "lc_conv2d_nchw (direct 3x3 kernels); stride/pad may be given only as 1", lc_infer_conv2d, lc_work_conv2d, NULL},
    {LC_OP_QKV_PACK, "qkv_pack_repeat", LC_OP_QKV_PACK, LC_OPF_GRAPH | LC_OPF_OUT_FREE, 1, 1, {"src"}, {ANY}, 3, 0,
     {LOWP, LOWP}, LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM, LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM, NO_ATTRS,
     LC_CROSSOVER_NONE, "src (any shape) -> [3, seq, head_dim]: src flattened, repeated or truncated to fill q|k|v",
     "lc_qkv_pack_repeat", lc_infer_qkv, lc_work_qkv, NULL},
    {LC_OP_SDPA, "sdpa", LC_OP_SDPA, LC_OPF_GRAPH, 3, 3, {"q", "k", "v"}, {ANY, ANY, ANY}, ANY, 0, {LOWP, LOWP},
     LC_GRAPH_ATTR_CAUSAL, 0, {.causal = 0}, LC_CROSSOVER_NONE,
     "q [b,h,sq,d], k, v [b,hkv,skv,d] (or without b, or without b and h) -> q's shape; h % hkv == 0, d <= 256",
     "lc_sdpa (CUDA: tensor-core flash for bf16/f16 d 64/128, else the generic and split-KV/decode kernels)",
     lc_infer_sdpa, lc_work_sdpa, NULL},
    {LC_OP_RMS_NORM, "rms_norm", LC_OP_RMS_NORM, LC_OPF_GRAPH, 1, 2, {"x", "weight"}, {ANY, 1}, ANY, 1u, {LOWP, LOWP},
     LC_GRAPH_ATTR_EPS, 0, {.eps = 1e-6}, LC_CROSSOVER_NONE, "x [..., d], weight [d] (optional) -> x's shape",
     "lc_rms_norm", lc_infer_layer_norm, lc_work_rms_norm, NULL},
    {LC_OP_SOFTMAX, "softmax", LC_OP_SOFTMAX, LC_OPF_GRAPH, 1, 1, {"x"}, {ANY}, ANY, 1u, {LOWP, LOWP}, 0, 0, NO_ATTRS,
     LC_CROSSOVER_NONE, "x [..., d] -> x's shape (softmax over the last axis)", "lc_softmax", lc_infer_same,
     lc_work_softmax, NULL},
    {LC_OP_SILU, "silu", LC_OP_SILU, LC_OPF_GRAPH, 1, 1, {"x"}, {ANY}, ANY, 1u, {LOWP, LOWP}, 0, 0, NO_ATTRS,
     LC_CROSSOVER_NONE, "x -> x's shape", "lc_silu", lc_infer_same, lc_work_silu, NULL},
    {LC_OP_SILU_MUL, "silu_mul", LC_OP_SILU_MUL, LC_OPF_GRAPH, 2, 2, {"a", "b"}, {ANY, ANY}, ANY, 3u, {LOWP, LOWP}, 0, 0,
     NO_ATTRS, LC_CROSSOVER_NONE, "a, b same shape -> that shape (silu(a) * b)", "lc_silu_mul", lc_infer_same,
     lc_work_silu, NULL},
    {LC_OP_ADD, "add", LC_OP_ADD, LC_OPF_GRAPH, 2, 2, {"a", "b"}, {ANY, ANY}, ANY, 3u, {ALL, ALL}, 0, 0, NO_ATTRS,
     LC_CROSSOVER_NONE, "a, b broadcastable (NumPy rules, rank <= 4) -> the broadcast shape (a + b)", "lc_add",
     lc_infer_bcast, lc_work_bcast, NULL},
    {LC_OP_MUL, "mul", LC_OP_MUL, LC_OPF_GRAPH, 2, 2, {"a", "b"}, {ANY, ANY}, ANY, 3u, {ALL, ALL}, 0, 0, NO_ATTRS,
     LC_CROSSOVER_NONE, "a, b broadcastable (NumPy rules, rank <= 4) -> the broadcast shape (a * b)", "lc_mul",
     lc_infer_bcast, lc_work_bcast, NULL},
    {LC_OP_LINEAR, "linear", LC_OP_LINEAR, LC_OPF_W_T, 2, 4, {"x", "w", "bias", "residual"}, {2, 2, 1, 2}, 2, 8u, {LOWP, LOWP}, 0,
     0, NO_ATTRS, LC_CROSSOVER_MATMUL_FLOPS,
     "x [m,k], w [k,n], bias [n] (optional) -> [m,n], then the activation, then + residual [m,n] (optional)",
     "lc_linear (CUDA: cuBLASLt epilogues)", lc_infer_matmul, lc_work_matmul, NULL},
    {LC_OP_CONV_ATTENTION, "conv_attention", LC_OP_CONV_ATTENTION, LC_OPF_FUSED | LC_OPF_NCHW, 2, 3,
     {"x", "w", "bias"}, {4, 4, 1}, 2, 0, {0, F32}, CONV_ATTRS | LC_GRAPH_ATTR_CAUSAL | LC_GRAPH_ATTR_SEQ |
     LC_GRAPH_ATTR_HEAD_DIM, LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM, CONV_DEFAULTS, LC_CROSSOVER_NONE,
     "x [n,c,h,w], w [oc,c,3,3], bias [oc]? -> [seq, head_dim]: relu(conv) repeated into q|k|v, then attention",
     "one CUDA kernel for shapes that fit (conv_attention_cuda.cu)", lc_infer_conv_attention,
     lc_work_conv_attention, NULL},
    {LC_OP_ATTENTION_PROJECTION, "attention_projection", LC_OP_ATTENTION_PROJECTION, LC_OPF_FUSED, 4, 5,
     {"q", "k", "v", "w", "bias"}, {2, 2, 2, 2, 1}, 2, 0, {LOWP, F32}, LC_GRAPH_ATTR_CAUSAL, 0, {.causal = 0},
     LC_CROSSOVER_NONE, "q, k, v [seq,d], w [d,pn], bias [pn]? -> [seq,pn]",
     "one kernel: attention rows projected as produced (CPU any size; CUDA sizes that fit)",
     lc_infer_attention_projection, lc_work_attention_projection, NULL},
    {LC_OP_KV_APPEND, "kv_append", LC_OP_KV_APPEND, LC_OPF_FUSED, 2, 2, {"k_new", "v_new"}, {4, 4}, 4, 0,
     {ALL, ALL}, 0, 0, NO_ATTRS, LC_CROSSOVER_NONE, "k_new, v_new [b,hkv,t,d] -> written into the cache at its lengths",
     "lc_kv_cache_append (internal)", lc_infer_kv_append, lc_work_kv_append, NULL},
    {LC_OP_ROPE, "rope", LC_OP_ROPE, 0, 2, 2, {"x", "positions"}, {ANY, ANY}, ANY, 1u, {LOWP, LOWP}, 0, 0, NO_ATTRS,
     LC_CROSSOVER_NONE, "x [b,h,s,d] (or [h,s,d], [s,d]), positions [b,s] or [s] (int32/int64) -> x's shape",
     "lc_rope (theta, rotary_dim and scaling in lc_rope_options; strided x read in place)", lc_infer_rope,
     lc_work_rope, NULL},
    {LC_OP_EMBEDDING, "embedding", LC_OP_EMBEDDING, LC_OPF_MIXED_DTYPE, 2, 4, {"weight", "ids", "pos_weight", "positions"},
     {2, ANY, 2, ANY}, ANY, 0, {ALL | LC_DT_IDX, ALL | LC_DT_IDX}, 0, 0, NO_ATTRS, LC_CROSSOVER_NONE,
     "weight [vocab, d] (float), ids [...] (int32/int64) (+ pos_weight [p, d], positions of ids' shape) -> [..., d]",
     "lc_embedding (CPU: ids checked, nothing written on a bad one; CUDA: an id out of range gives a zero row); "
     "lc_embedding_offset (a vocabulary shard: ids outside offset..offset+vocab-1 give zero rows everywhere); "
     "lc_embedding_pos (+ pos_weight[positions], added as lc_add adds, ids and positions checked as ids)",
     lc_infer_embedding, lc_work_embedding, NULL},
    {LC_OP_ARGMAX, "argmax", LC_OP_ARGMAX, LC_OPF_OUT_I64, 1, 1, {"x"}, {ANY}, ANY, 0, {ALL, ALL}, 0, 0, NO_ATTRS,
     LC_CROSSOVER_NONE, "x [..., n] -> [...] int64 (1-D x: [1]); the first maximum, NaN counting as the largest",
     "lc_argmax", lc_infer_argmax, lc_work_argmax, NULL},
    {LC_OP_COPY, "copy", LC_OP_COPY, LC_OPF_FUSED | LC_OPF_COMPOSITE, 1, 1, {"x"}, {ANY}, ANY, 0, {ALL | LC_DT_IDX, ALL | LC_DT_IDX}, 0, 0,
     NO_ATTRS, LC_CROSSOVER_NONE, "x (any strides) -> x's shape, contiguous", "lc_copy (the backends' gather)",
     lc_infer_same, lc_work_copy, NULL},
    {LC_OP_SAMPLE, "sample", LC_OP_SAMPLE, LC_OPF_OUT_I64, 1, 1, {"logits"}, {2}, 1, 0, {ALL, ALL}, 0, 0, NO_ATTRS,
     LC_CROSSOVER_NONE, "logits [B, V] -> [B] int64 (one token a row)",
     "lc_sample (temperature, top_k, top_p, seed, counter in lc_sample_options; CPU refuses NaN, CUDA returns its index)",
     lc_infer_sample, lc_work_sample, NULL},
    {LC_OP_LAYER_NORM_LINEAR, "layer_norm_linear", LC_OP_LAYER_NORM_LINEAR, LC_OPF_W_T, 2, 5, {"x", "w", "bias", "gamma", "beta"},
     {2, 2, 1, 1, 1}, 2, 0, {LOWP, LOWP}, LC_GRAPH_ATTR_EPS, 0, {.eps = 1e-5}, LC_CROSSOVER_MATMUL_FLOPS,
     "x [m,k], w [k,n], bias [n], gamma [k], beta [k] (all three optional) -> [m,n]: "
     "act(layer_norm(x, gamma, beta) · w + bias)",
     "lc_layer_norm_linear (CUDA 16-bit m <= 8: one GEMV launch normalising x as it is staged; else the norm into "
     "a workspace, then lc_linear)", lc_infer_norm_linear, lc_work_norm_linear, NULL},
    {LC_OP_RMS_NORM_LINEAR, "rms_norm_linear", LC_OP_RMS_NORM_LINEAR, LC_OPF_W_T, 2, 4, {"x", "w", "bias", "weight"},
     {2, 2, 1, 1}, 2, 0, {LOWP, LOWP}, LC_GRAPH_ATTR_EPS, 0, {.eps = 1e-6}, LC_CROSSOVER_MATMUL_FLOPS,
     "x [m,k], w [k,n], bias [n], weight [k] (both optional) -> [m,n]: act(rms_norm(x, weight) · w + bias)",
     "lc_rms_norm_linear (as layer_norm_linear)", lc_infer_norm_linear, lc_work_norm_linear, NULL},
    {LC_OP_SILU_MUL_LINEAR, "silu_mul_linear", LC_OP_SILU_MUL_LINEAR, LC_OPF_W_T, 2, 4, {"gu", "w", "bias", "residual"},
     {2, 2, 1, 2}, 2, 8u, {LOWP, LOWP}, 0, 0, NO_ATTRS, LC_CROSSOVER_MATMUL_FLOPS,
     "gu [m,2k], w [k,n], bias [n], residual [m,n] (both optional) -> [m,n]: "
     "act(silu_mul(gu[:, :k], gu[:, k:]) · w + bias) + residual",
     "lc_silu_mul_linear (CUDA 16-bit m <= 8: one GEMV launch computing silu(g)·u as it stages x; else silu_mul "
     "into a workspace, then lc_linear_residual)", lc_infer_silu_mul_linear, lc_work_silu_mul_linear, NULL},
};
_Static_assert(sizeof lc_ops / sizeof lc_ops[0] == LC_OP_COUNT, "op_table.c: one lc_op_def per lc_op");

const lc_op_def *lc_op_get(lc_op op) { return ((int)op >= 0 && op < LC_OP_COUNT) ? &lc_ops[op] : NULL; }

const lc_op_def *lc_op_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < LC_OP_COUNT; i++)
        if (strcmp(lc_ops[i].name, name) == 0) return &lc_ops[i];
    return NULL;
}

lc_status lc_op_lookup(const char *prefix, const char *name, const lc_op_def **out) {
    *out = lc_op_find(name);
    if (*out) return LC_OK;
    char known[512];
    size_t used = 0;
    known[0] = '\0';
    for (int i = 0; i < LC_OP_COUNT && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, i ? ", %s" : "%s", lc_ops[i].name);
    return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: op: expected one of %s, got '%.100s'", prefix, known,
                    name ? name : "(null)");
}

unsigned lc_op_dtype_mask(const lc_op_def *d) {
    unsigned m = 0;
    for (int b = 0; b < LC_OP_BACKEND_COUNT; b++) m |= d->dtypes[b];
    return m;
}

int lc_op_supported(lc_op op, lc_device device, lc_dtype dtype) {
    const lc_op_def *d = lc_op_get(op);
    if (!d || (int)dtype < 0 || dtype >= LC_DTYPE_COUNT) return 0;
    const int slot = device == LC_DEVICE_CPU ? LC_OP_BACKEND_CPU : device == LC_DEVICE_CUDA ? LC_OP_BACKEND_CUDA : -1;
    if (slot < 0 || !(d->dtypes[slot] & LC_DT(dtype))) return 0;
    const lc_backend *be = lc_backend_for(device);
    return be != NULL && ((d->flags & LC_OPF_COMPOSITE) || be->kernels[d->runs_as] != NULL);
}
