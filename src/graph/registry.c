/* registry.c — the operator registry of the graph layer: one schema per op (inputs and their ranks,
 * dtypes, layout, shape relation, attributes and defaults, in-place permission, backend op), the
 * shared checks (arity, attributes, dtypes, ranks) and the shape-relation functions:
 *   matmul              a [m,k], b [k,n] -> [m,n]                       (float32, float64)
 *   bias_add            x [m,n], bias [n] -> [m,n]                       (runs as lc_linear's bias epilogue)
 *   vector_add, matrix_sub, matrix_div   a, b same shape -> that shape  (float32, float64)
 *   relu (f32, f64), gelu (f32, attr gelu_approx)   x -> x's shape
 *   layer_norm          x [..., d], gamma [d]?, beta [d]? -> x's shape   (attr eps)
 *   attention_forward   q, k, v [seq,d] -> [seq,d]                       (attr causal)
 *   conv2d_nchw         x [n,c,h,w], w [oc,c,kh,kw], bias [oc]? -> [n,oc,oh,ow], oh = (h+2ph-kh)/sh+1
 *   conv2d_nchw3x3      the same with kh = kw = 3;  conv2d_nchw3x3s1p1: also stride 1, pad 1
 *   attention_packed    qkv [3,seq,d] -> [seq,d]                        (attr causal)
 *   qkv_pack_repeat     src (any shape) -> [3, seq, head_dim]             (attrs seq, head_dim; flatten,
 *                                                                         then repeat/truncate)
 * Tests: tests/c/test_graph.c, tests/python/test_graph.py. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "graph/registry.h"

#define F32 (1u << LC_DTYPE_F32)
#define F64 (1u << LC_DTYPE_F64)
#define ANY LC_GRAPH_RANK_ANY
#define CONV_ATTRS (LC_GRAPH_ATTR_STRIDE_H | LC_GRAPH_ATTR_STRIDE_W | LC_GRAPH_ATTR_PAD_H | LC_GRAPH_ATTR_PAD_W)

void lc_graph_format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

void lc_graph_describe_input(char *buf, size_t size, const lc_graph_schema *s, const lc_graph_operands *in, int i) {
    const char *arg = (i < LC_GRAPH_MAX_INPUTS && s->info.input_names[i]) ? s->info.input_names[i] : "?";
    snprintf(buf, size, "input %d '%s' (value '%s')", i, arg, in->value_names[i] ? in->value_names[i] : "?");
}

/* ---- shape relations ------------------------------------------------------------------------- */

static lc_status lc_shape_err(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in, int i,
                              const char *expected) {
    char who[160], got[96];
    lc_graph_describe_input(who, sizeof who, s, in, i);
    lc_graph_format_shape(got, sizeof got, in->ndim[i], in->shape[i]);
    return lc_error(LC_ERR_SHAPE, "%s: %s: expected %s, got %s", prefix, who, expected, got);
}

static void lc_copy_shape(int ndim, const int64_t *shape, int *out_ndim, int64_t *out_shape) {
    *out_ndim = ndim;
    memcpy(out_shape, shape, (size_t)ndim * sizeof *shape);
}

static int lc_same_shape(const lc_graph_operands *in, int i, int j) {
    return in->ndim[i] == in->ndim[j] && memcmp(in->shape[i], in->shape[j], (size_t)in->ndim[i] * sizeof(int64_t)) == 0;
}

static lc_status lc_infer_matmul(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                                 const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape) {
    const int64_t *a = in->shape[0], *b = in->shape[1];
    if (b[0] != a[1]) {
        char exp[96];
        snprintf(exp, sizeof exp, "[k=%lld, n] with k matching a's dim 1", (long long)a[1]);
        return lc_shape_err(s, prefix, in, 1, exp);
    }
    *out_ndim = 2;
    out_shape[0] = a[0];
    out_shape[1] = b[1];
    return LC_OK;
}

static lc_status lc_infer_bias_add(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                                   const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape) {
    if (in->shape[1][0] != in->shape[0][1]) {
        char exp[96];
        snprintf(exp, sizeof exp, "[n=%lld] matching x's dim 1", (long long)in->shape[0][1]);
        return lc_shape_err(s, prefix, in, 1, exp);
    }
    lc_copy_shape(2, in->shape[0], out_ndim, out_shape);
    return LC_OK;
}

/* Every input the shape of input 0 (binary ops, attention). */
static lc_status lc_infer_same(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                               const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape) {
    for (int i = 1; i < in->n; i++) {
        if (!lc_same_shape(in, i, 0)) {
            char exp[128], ref[96];
            lc_graph_format_shape(ref, sizeof ref, in->ndim[0], in->shape[0]);
            snprintf(exp, sizeof exp, "%s (the shape of %s)", ref, s->info.input_names[0]);
            return lc_shape_err(s, prefix, in, i, exp);
        }
    }
    lc_copy_shape(in->ndim[0], in->shape[0], out_ndim, out_shape);
    return LC_OK;
}

static lc_status lc_infer_layer_norm(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                                     const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape) {
    const int64_t d = in->shape[0][in->ndim[0] - 1];
    for (int i = 1; i < in->n; i++) {
        if (in->shape[i][0] != d) {
            char exp[96];
            snprintf(exp, sizeof exp, "[d=%lld] (x's last dim)", (long long)d);
            return lc_shape_err(s, prefix, in, i, exp);
        }
    }
    lc_copy_shape(in->ndim[0], in->shape[0], out_ndim, out_shape);
    return LC_OK;
}

static lc_status lc_infer_conv2d(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                                 const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape) {
    const int64_t *x = in->shape[0], *w = in->shape[1];
    char exp[160];
    if (w[1] != x[1]) {
        snprintf(exp, sizeof exp, "[oc, c=%lld, kh, kw] with c matching x's channels (dim 1)", (long long)x[1]);
        return lc_shape_err(s, prefix, in, 1, exp);
    }
    if (strncmp(s->info.name, "conv2d_nchw3x3", 14) == 0 && (w[2] != 3 || w[3] != 3)) {
        snprintf(exp, sizeof exp, "a 3x3 kernel [oc, c, 3, 3] (%s)", s->info.name);
        return lc_shape_err(s, prefix, in, 1, exp);
    }
    if (in->n > 2 && in->shape[2][0] != w[0]) {
        snprintf(exp, sizeof exp, "[oc=%lld] (w's dim 0)", (long long)w[0]);
        return lc_shape_err(s, prefix, in, 2, exp);
    }
    const int64_t span_h = x[2] + 2 * (int64_t)attrs->pad_h - w[2];
    const int64_t span_w = x[3] + 2 * (int64_t)attrs->pad_w - w[3];
    if (span_h < 0 || span_w < 0) {
        const int h = span_h < 0;
        snprintf(exp, sizeof exp, "%s + 2*pad_%s >= kernel %s %lld (got %lld + 2*%d: no output positions)",
                 h ? "h" : "w", h ? "h" : "w", h ? "kh" : "kw", (long long)(h ? w[2] : w[3]),
                 (long long)(h ? x[2] : x[3]), h ? attrs->pad_h : attrs->pad_w);
        return lc_shape_err(s, prefix, in, 0, exp);
    }
    *out_ndim = 4;
    out_shape[0] = x[0];
    out_shape[1] = w[0];
    out_shape[2] = span_h / attrs->stride_h + 1;
    out_shape[3] = span_w / attrs->stride_w + 1;
    return LC_OK;
}

static lc_status lc_infer_qkv(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                              const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape) {
    *out_ndim = 3;
    out_shape[0] = 3;
    out_shape[1] = attrs->seq;
    out_shape[2] = attrs->head_dim;
    return LC_OK;
}

static const char *lc_attention_gpu_limit(const lc_graph_operands *in) {
    return in->shape[0][in->ndim[0] - 1] > 256 ? "the CUDA attention kernel takes head_dim <= 256" : NULL;
}

static lc_status lc_infer_attention_packed(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                                           const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape) {
    (void)attrs;
    if (in->shape[0][0] != 3) return lc_shape_err(s, prefix, in, 0, "[3, seq, head_dim] (q | k | v packed)");
    *out_ndim = 2;
    out_shape[0] = in->shape[0][1];
    out_shape[1] = in->shape[0][2];
    return LC_OK;
}

/* ---- the table ------------------------------------------------------------------------------- */

#define ROW "row-major"
#define NONE_ATTRS {0}

static const lc_graph_schema lc_schemas[] = {
    {{"matmul", NULL, 2, 2, {"a", "b"}, {2, 2}, 2, F32 | F64, ROW, "a [m,k], b [k,n] -> [m,n]", 0, 0, 0,
      "lc_matmul"},
     LC_OP_MATMUL, NONE_ATTRS, lc_infer_matmul, NULL},
    {{"bias_add", NULL, 2, 2, {"x", "bias"}, {2, 1}, 2, F32, ROW, "x [m,n], bias [n] -> [m,n] (bias broadcast over rows)",
      0, 0, 1,
      "no eager op of its own: runs as the bias epilogue of lc_linear (fused after a matmul) or a broadcast add; "
      "supported where linear is"},
     LC_OP_LINEAR, NONE_ATTRS, lc_infer_bias_add, NULL},
    {{"vector_add", NULL, 2, 2, {"a", "b"}, {ANY, ANY}, ANY, F32 | F64, ROW, "a, b same shape -> that shape", 0, 0, 1,
      "lc_vector_add"},
     LC_OP_BINARY, NONE_ATTRS, lc_infer_same, NULL},
    {{"matrix_sub", NULL, 2, 2, {"a", "b"}, {ANY, ANY}, ANY, F32 | F64, ROW, "a, b same shape -> that shape (a - b)", 0,
      0, 1, "lc_matrix_sub"},
     LC_OP_BINARY, NONE_ATTRS, lc_infer_same, NULL},
    {{"matrix_div", NULL, 2, 2, {"a", "b"}, {ANY, ANY}, ANY, F32 | F64, ROW, "a, b same shape -> that shape (a / b)", 0,
      0, 1, "lc_matrix_div"},
     LC_OP_BINARY, NONE_ATTRS, lc_infer_same, NULL},
    {{"relu", NULL, 1, 1, {"x"}, {ANY}, ANY, F32 | F64, ROW, "x -> x's shape", 0, 0, 1, "lc_relu"},
     LC_OP_RELU, NONE_ATTRS, lc_infer_same, NULL},
    {{"gelu", NULL, 1, 1, {"x"}, {ANY}, ANY, F32, ROW, "x -> x's shape", LC_GRAPH_ATTR_GELU_APPROX, 0, 1, "lc_gelu"},
     LC_OP_GELU, {.gelu_approx = LC_GELU_ERF}, lc_infer_same, NULL},
    {{"layer_norm", NULL, 1, 3, {"x", "gamma", "beta"}, {ANY, 1, 1}, ANY, F32, ROW,
      "x [..., d], gamma [d] (optional), beta [d] (optional, needs gamma) -> x's shape", LC_GRAPH_ATTR_EPS, 0, 1,
      "lc_layer_norm"},
     LC_OP_LAYER_NORM, {.eps = 1e-5}, lc_infer_layer_norm, NULL},
    {{"attention_forward", NULL, 3, 3, {"q", "k", "v"}, {2, 2, 2}, 2, F32, ROW, "q, k, v [seq,d] -> [seq,d]",
      LC_GRAPH_ATTR_CAUSAL, 0, 0, "lc_attention_forward (CUDA: head_dim <= 256)"},
     LC_OP_ATTENTION, {.causal = 0}, lc_infer_same, lc_attention_gpu_limit},
    {{"attention_packed", NULL, 1, 1, {"qkv"}, {3}, 2, F32, ROW,
      "qkv [3, seq, d] (q | k | v, e.g. from qkv_pack_repeat) -> [seq, d]", LC_GRAPH_ATTR_CAUSAL, 0, 0,
      "lc_attention_forward on views of qkv (CUDA: head_dim <= 256)"},
     LC_OP_ATTENTION, {.causal = 0}, lc_infer_attention_packed, lc_attention_gpu_limit},
    {{"conv2d_nchw", NULL, 2, 3, {"x", "w", "bias"}, {4, 4, 1}, 4, F32, "nchw",
      "x [n,c,h,w], w [oc,c,kh,kw], bias [oc] (optional) -> [n,oc,(h+2*pad_h-kh)/stride_h+1,(w+2*pad_w-kw)/stride_w+1]",
      CONV_ATTRS, 0, 0, "lc_conv2d_nchw"},
     LC_OP_CONV2D, {.stride_h = 1, .stride_w = 1, .pad_h = 0, .pad_w = 0}, lc_infer_conv2d, NULL},
    {{"conv2d_nchw3x3", "conv2d_nchw", 2, 3, {"x", "w", "bias"}, {4, 4, 1}, 4, F32, "nchw",
      "conv2d_nchw with a 3x3 kernel: w [oc,c,3,3]", CONV_ATTRS, 0, 0, "lc_conv2d_nchw (direct 3x3 kernels)"},
     LC_OP_CONV2D, {.stride_h = 1, .stride_w = 1, .pad_h = 0, .pad_w = 0}, lc_infer_conv2d, NULL},
    {{"conv2d_nchw3x3s1p1", "conv2d_nchw", 2, 3, {"x", "w", "bias"}, {4, 4, 1}, 4, F32, "nchw",
      "conv2d_nchw3x3 with stride 1 and pad 1 fixed -> [n,oc,h,w]", CONV_ATTRS, 0, 0,
      "lc_conv2d_nchw (direct 3x3 kernels); stride/pad may be given only as 1"},
     LC_OP_CONV2D, {.stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1}, lc_infer_conv2d, NULL},
    {{"qkv_pack_repeat", NULL, 1, 1, {"src"}, {ANY}, 3, F32, ROW,
      "src (any shape) -> [3, seq, head_dim]: src flattened, repeated or truncated to fill q|k|v",
      LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM, LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM, 0, "lc_qkv_pack_repeat"},
     LC_OP_QKV_PACK, NONE_ATTRS, lc_infer_qkv, NULL},
};

#define LC_NSCHEMAS ((int)(sizeof lc_schemas / sizeof lc_schemas[0]))

int lc_graph_schema_count(void) { return LC_NSCHEMAS; }

const lc_graph_schema *lc_graph_schema_at(int i) { return (i >= 0 && i < LC_NSCHEMAS) ? &lc_schemas[i] : NULL; }

const lc_graph_schema *lc_graph_schema_find(const char *name, int *index) {
    if (index) *index = -1;
    if (!name) return NULL;
    for (int i = 0; i < LC_NSCHEMAS; i++) {
        if (strcmp(lc_schemas[i].info.name, name) == 0) {
            if (index) *index = i;
            return &lc_schemas[i];
        }
    }
    return NULL;
}

int lc_graph_op_count(void) { return LC_NSCHEMAS; }

lc_status lc_graph_op_schema(int i, lc_graph_op_info *out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_op_schema: out: expected a pointer, got NULL");
    if (i < 0 || i >= LC_NSCHEMAS)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_op_schema: i: expected 0..%d, got %d", LC_NSCHEMAS - 1, i);
    *out = lc_schemas[i].info;
    return LC_OK;
}

int lc_graph_op_find(const char *name) {
    int i;
    lc_graph_schema_find(name, &i);
    return i;
}

int lc_graph_schema_supported(const lc_graph_schema *s, lc_device device, lc_dtype dtype) {
    if (!s || (int)dtype < 0 || dtype >= LC_DTYPE_COUNT || !(s->info.dtypes & (1u << dtype))) return 0;
    if (device != LC_DEVICE_CPU && device != LC_DEVICE_CUDA) return 0;
    const lc_backend *be = lc_backend_for(device);
    return be != NULL && be->supports(s->backend_op, dtype);
}

int lc_graph_op_supported(int i, lc_device device, lc_dtype dtype) {
    return lc_graph_schema_supported(lc_graph_schema_at(i), device, dtype);
}

/* ---- shared checks --------------------------------------------------------------------------- */

lc_status lc_graph_check_arity(const lc_graph_schema *s, const char *prefix, int ninputs) {
    if (ninputs >= s->info.min_inputs && ninputs <= s->info.max_inputs) return LC_OK;
    if (s->info.min_inputs == s->info.max_inputs)
        return lc_error(LC_ERR_SHAPE, "%s: inputs: expected %d input%s, got %d", prefix, s->info.min_inputs,
                        s->info.min_inputs == 1 ? "" : "s", ninputs);
    return lc_error(LC_ERR_SHAPE, "%s: inputs: expected %d to %d inputs, got %d", prefix, s->info.min_inputs,
                    s->info.max_inputs, ninputs);
}

static const char *const lc_attr_names[] = {"stride_h", "stride_w", "pad_h", "pad_w", "causal",
                                            "eps", "gelu_approx", "seq", "head_dim"};

const char *lc_graph_attr_name(unsigned bit) {
    for (unsigned i = 0; i < sizeof lc_attr_names / sizeof lc_attr_names[0]; i++)
        if (bit == (1u << i)) return lc_attr_names[i];
    return NULL;
}

void lc_graph_attrs_init(lc_graph_attrs *attrs) {
    if (attrs) memset(attrs, 0, sizeof *attrs);
}

/* An int attribute's value by bit (for uniform range checks). */
static int64_t lc_attr_int(const lc_graph_attrs *a, unsigned bit) {
    switch (bit) {
    case LC_GRAPH_ATTR_STRIDE_H: return a->stride_h;
    case LC_GRAPH_ATTR_STRIDE_W: return a->stride_w;
    case LC_GRAPH_ATTR_PAD_H: return a->pad_h;
    case LC_GRAPH_ATTR_PAD_W: return a->pad_w;
    case LC_GRAPH_ATTR_CAUSAL: return a->causal;
    case LC_GRAPH_ATTR_GELU_APPROX: return a->gelu_approx;
    case LC_GRAPH_ATTR_SEQ: return a->seq;
    case LC_GRAPH_ATTR_HEAD_DIM: return a->head_dim;
    default: return 0;
    }
}

lc_status lc_graph_check_attrs(const lc_graph_schema *s, const char *prefix, const lc_graph_attrs *given,
                               lc_graph_attrs *resolved) {
    lc_graph_attrs none, r;
    if (!given) {
        lc_graph_attrs_init(&none);
        given = &none;
    }
    const unsigned takes = s->info.attrs;
    const unsigned extra = given->set & ~takes;
    if (extra) {
        const unsigned bit = extra & (~extra + 1u);
        const char *an = lc_graph_attr_name(bit);
        if (!an)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: attrs: unknown attribute bit 0x%x", prefix, bit);
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: attrs: %s does not take attribute %s", prefix, s->info.name, an);
    }
    const unsigned missing = s->info.required_attrs & ~given->set;
    if (missing)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: attrs: %s needs attribute %s, got none", prefix, s->info.name,
                        lc_graph_attr_name(missing & (~missing + 1u)));
    /* defaults, then the given ones */
    r = s->defaults;
    r.set = given->set;
    if (given->set & LC_GRAPH_ATTR_STRIDE_H) r.stride_h = given->stride_h;
    if (given->set & LC_GRAPH_ATTR_STRIDE_W) r.stride_w = given->stride_w;
    if (given->set & LC_GRAPH_ATTR_PAD_H) r.pad_h = given->pad_h;
    if (given->set & LC_GRAPH_ATTR_PAD_W) r.pad_w = given->pad_w;
    if (given->set & LC_GRAPH_ATTR_CAUSAL) r.causal = given->causal;
    if (given->set & LC_GRAPH_ATTR_EPS) r.eps = given->eps;
    if (given->set & LC_GRAPH_ATTR_GELU_APPROX) r.gelu_approx = given->gelu_approx;
    if (given->set & LC_GRAPH_ATTR_SEQ) r.seq = given->seq;
    if (given->set & LC_GRAPH_ATTR_HEAD_DIM) r.head_dim = given->head_dim;
    /* ranges of what the op takes */
    static const struct {
        unsigned bit;
        int64_t lo, hi;
    } ranges[] = {
        {LC_GRAPH_ATTR_STRIDE_H, 1, INT32_MAX}, {LC_GRAPH_ATTR_STRIDE_W, 1, INT32_MAX},
        {LC_GRAPH_ATTR_PAD_H, 0, 1 << 20},      {LC_GRAPH_ATTR_PAD_W, 0, 1 << 20},
        {LC_GRAPH_ATTR_CAUSAL, 0, 1},           {LC_GRAPH_ATTR_GELU_APPROX, 0, LC_GELU_COUNT - 1},
        {LC_GRAPH_ATTR_SEQ, 1, INT32_MAX},      {LC_GRAPH_ATTR_HEAD_DIM, 1, INT32_MAX},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        if (!(takes & ranges[i].bit)) continue;
        const int64_t v = lc_attr_int(&r, ranges[i].bit);
        if (v < ranges[i].lo || v > ranges[i].hi)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: attrs: %s: expected %lld..%lld, got %lld", prefix,
                            lc_graph_attr_name(ranges[i].bit), (long long)ranges[i].lo, (long long)ranges[i].hi,
                            (long long)v);
    }
    if ((takes & LC_GRAPH_ATTR_EPS) && !(isfinite(r.eps) && r.eps > 0.0))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: attrs: eps: expected a finite value > 0, got %g", prefix, r.eps);
    if (strcmp(s->info.name, "conv2d_nchw3x3s1p1") == 0) {
        for (unsigned bit = LC_GRAPH_ATTR_STRIDE_H; bit <= LC_GRAPH_ATTR_PAD_W; bit <<= 1) {
            const int64_t v = lc_attr_int(&r, bit);
            if (v != 1)
                return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: attrs: %s: %s fixes it to 1, got %lld", prefix,
                                lc_graph_attr_name(bit), s->info.name, (long long)v);
        }
    }
    if (resolved) *resolved = r;
    return LC_OK;
}

lc_status lc_graph_check_dtypes(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in) {
    char who[160];
    for (int i = 0; i < in->n; i++) {
        const lc_dtype dt = in->dtype[i];
        const int ok_dtype = (int)dt >= 0 && dt < LC_DTYPE_COUNT && (s->info.dtypes & (1u << dt));
        if (!ok_dtype) {
            lc_graph_describe_input(who, sizeof who, s, in, i);
            return lc_error(LC_ERR_DTYPE, "%s: %s: expected %s, got %s", prefix, who,
                            (s->info.dtypes & F64) ? "float32 or float64" : "float32", lc_dtype_name(dt));
        }
        if (dt != in->dtype[0]) {
            lc_graph_describe_input(who, sizeof who, s, in, i);
            return lc_error(LC_ERR_DTYPE, "%s: %s: expected %s like input 0, got %s", prefix, who,
                            lc_dtype_name(in->dtype[0]), lc_dtype_name(dt));
        }
    }
    return LC_OK;
}

lc_status lc_graph_check_ranks(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in) {
    for (int i = 0; i < in->n && i < s->info.max_inputs; i++) {
        const int want = s->info.input_ranks[i];
        if (want == ANY || in->ndim[i] == want) continue;
        char who[160], got[96];
        lc_graph_describe_input(who, sizeof who, s, in, i);
        lc_graph_format_shape(got, sizeof got, in->ndim[i], in->shape[i]);
        const int nchw = strcmp(s->info.layout, "nchw") == 0;
        const char *hint = (nchw && i == 0)   ? " [n, c, h, w]"
                           : (nchw && i == 1) ? " [oc, c, kh, kw]"
                           : (want == 2)      ? " [rows, cols]"
                                              : "";
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected %d dimensions%s (layout %s), got %d: %s", prefix, who, want, hint,
                        s->info.layout, in->ndim[i], got);
    }
    return LC_OK;
}
