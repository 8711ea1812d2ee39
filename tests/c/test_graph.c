/* test_graph.c — tests of the graph layer's core (include/lightning_core/graph.h, src/graph/): the
 * registry (every op listed, backend support asked of the backend table), the seed reason codes, the
 * builder (shape inference per op; each refused node names node, input and expected vs got and leaves
 * the graph unchanged), queries, topological order, the structural hash (stable, blind to names and
 * constant data, sensitive to shapes and attributes), and the validation passes: a clean graph reports
 * nothing, and a crafted bad graph per issue code reports exactly that code at the right node.
 * The run ends by checking that every code of the catalogue was raised by some test (layout_device and
 * the CUDA shape limit only where a GPU is present). Run by ctest; prints "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lightning_core/lightning_core.h"
#include "check.h"



/* The last error contains every given fragment. */
static int err_has(const char *a, const char *b, const char *c) {
    const char *e = lc_last_error();
    return strstr(e, a) && (!b || strstr(e, b)) && (!c || strstr(e, c));
}

/* Codes raised by validation anywhere in this run (for the catalogue coverage check). */
static const char *g_seen[64];
static int g_nseen;

static void note_codes(const lc_graph_report *r) {
    for (size_t i = 0; i < lc_graph_report_count(r); i++) {
        lc_graph_issue is;
        if (lc_graph_report_get(r, i, &is) != LC_OK) continue;
        int known = 0;
        for (int k = 0; k < g_nseen; k++) known |= strcmp(g_seen[k], is.code) == 0;
        if (!known && g_nseen < 64) g_seen[g_nseen++] = is.code; /* static strings */
    }
}

static void dump(const lc_graph_report *r) {
    for (size_t i = 0; i < lc_graph_report_count(r); i++) {
        lc_graph_issue is;
        lc_graph_report_get(r, i, &is);
        fprintf(stderr, "    [%s] %s/%s node=%s value=%s reason=%s: %s\n", lc_graph_severity_name(is.severity), is.pass,
                is.code, is.node ? is.node : "-", is.value ? is.value : "-", is.reason ? is.reason : "-", is.message);
    }
}

/* Validates g on device and checks that an issue (pass, code, node (NULL: graph-level), severity) is
 * reported; returns 1 when found. With only != 0, no other error may be reported. */
static int expect_issue(const lc_graph_t *g, lc_device dev, const char *pass, const char *code, const char *node,
                        lc_graph_severity sev, const char *reason, int only) {
    lc_graph_report *r = NULL;
    if (lc_graph_validate(g, dev, &r) != LC_OK) return 0;
    note_codes(r);
    int found = 0, others = 0;
    for (size_t i = 0; i < lc_graph_report_count(r); i++) {
        lc_graph_issue is;
        lc_graph_report_get(r, i, &is);
        const int match = strcmp(is.pass, pass) == 0 && strcmp(is.code, code) == 0 &&
                          (node ? (is.node && strcmp(is.node, node) == 0) : is.node == NULL) && is.severity == sev &&
                          (reason ? (is.reason && strcmp(is.reason, reason) == 0) : is.reason == NULL) &&
                          is.message && is.message[0];
        if (match) found = 1;
        else if (is.severity == LC_GRAPH_SEVERITY_ERROR) others++;
    }
    const int ok = found && (!only || others == 0) && (sev != LC_GRAPH_SEVERITY_ERROR || lc_graph_report_has_errors(r));
    if (!ok) {
        fprintf(stderr, "  expected %s/%s at %s (%s), report:\n", pass, code, node ? node : "graph",
                lc_graph_severity_name(sev));
        dump(r);
    }
    lc_graph_report_free(r);
    return ok;
}

static size_t error_count(const lc_graph_t *g, lc_device dev, size_t *all) {
    lc_graph_report *r = NULL;
    if (lc_graph_validate(g, dev, &r) != LC_OK) return 999;
    note_codes(r);
    size_t n = 0;
    for (size_t i = 0; i < lc_graph_report_count(r); i++) {
        lc_graph_issue is;
        lc_graph_report_get(r, i, &is);
        n += is.severity == LC_GRAPH_SEVERITY_ERROR;
    }
    if (all) *all = lc_graph_report_count(r);
    if (n || (all && *all)) dump(r);
    lc_graph_report_free(r);
    return n;
}

static lc_value_id input(lc_graph_t *g, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    const int64_t shape[4] = {d0, d1, d2, d3};
    lc_value_id v = -1;
    CHECK_OK(lc_graph_input(g, name, ndim, shape, &v));
    return v;
}

static int shape_is(const lc_graph_t *g, lc_value_id v, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    lc_graph_value_info vi;
    if (lc_graph_get_value(g, v, &vi) != LC_OK || vi.ndim != ndim) return 0;
    const int64_t want[4] = {d0, d1, d2, d3};
    for (int i = 0; i < ndim; i++)
        if (vi.shape[i] != want[i]) return 0;
    return 1;
}

static lc_status add(lc_graph_t *g, const char *op, lc_value_id a, lc_value_id b, lc_value_id c,
                     const lc_graph_attrs *attrs, const char *name, lc_value_id *out) {
    const lc_value_id ins[3] = {a, b, c};
    const int n = c >= 0 ? 3 : b >= 0 ? 2 : 1;
    return lc_graph_add(g, op, ins, n, attrs, name, out);
}

/* ---- registry, reason codes ----------------------------------------------------------------- */

static void test_registry(void) {
    static const char *const ops[] = {"matmul", "bias_add", "vector_add", "matrix_sub", "matrix_div",
                                      "relu", "gelu", "layer_norm", "attention_forward", "attention_packed", "conv2d_nchw",
                                      "conv2d_nchw3x3", "conv2d_nchw3x3s1p1", "qkv_pack_repeat", "sdpa", "rms_norm",
                                      "softmax", "silu", "silu_mul", "add", "mul"};
    CHECK(lc_graph_op_count() == (int)(sizeof ops / sizeof ops[0]));
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        const int k = lc_graph_op_find(ops[i]);
        lc_graph_op_info info;
        CHECK(k >= 0 && lc_graph_op_schema(k, &info) == LC_OK && strcmp(info.name, ops[i]) == 0);
        CHECK(info.min_inputs >= 1 && info.max_inputs <= 3 && info.min_inputs <= info.max_inputs);
        CHECK(info.shape_rule && info.layout && info.backend_note && (info.dtypes & (1u << LC_DTYPE_F32)));
        CHECK(lc_graph_op_supported(k, LC_DEVICE_CPU, LC_DTYPE_F32) == 1); /* the CPU runs every op */
        CHECK(lc_graph_op_supported(k, LC_DEVICE_METAL, LC_DTYPE_F32) == 0);
    }
    lc_graph_op_info info;
    CHECK(lc_graph_op_find("conv2d") == -1 && lc_graph_op_find(NULL) == -1);
    CHECK(lc_graph_op_schema(-1, &info) == LC_ERR_INVALID_ARGUMENT && err_has("i:", NULL, NULL));
    CHECK(lc_graph_op_schema(lc_graph_op_count(), &info) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_graph_op_schema(0, NULL) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_graph_op_supported(lc_graph_op_find("matmul"), LC_DEVICE_CPU, LC_DTYPE_F64) == 1);
    CHECK(lc_graph_op_supported(lc_graph_op_find("gelu"), LC_DEVICE_CPU, LC_DTYPE_F64) == 0);
    CHECK(lc_graph_op_supported(lc_graph_op_find("gelu"), LC_DEVICE_AUTO, LC_DTYPE_F32) == 0);
    CHECK(lc_graph_op_supported(99, LC_DEVICE_CPU, LC_DTYPE_F32) == 0);
    CHECK(lc_graph_op_supported(lc_graph_op_find("relu"), LC_DEVICE_CUDA, LC_DTYPE_F32) == lc_device_built(LC_DEVICE_CUDA));
    lc_graph_op_schema(lc_graph_op_find("conv2d_nchw3x3"), &info);
    CHECK(info.alias_of && strcmp(info.alias_of, "conv2d_nchw") == 0 && strcmp(info.layout, "nchw") == 0);
    CHECK(info.input_ranks[0] == 4 && info.input_ranks[2] == 1 && info.min_inputs == 2 && info.max_inputs == 3);
    lc_graph_op_schema(lc_graph_op_find("qkv_pack_repeat"), &info);
    CHECK(info.required_attrs == (LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM) && info.output_rank == 3);
    lc_graph_op_schema(lc_graph_op_find("bias_add"), &info);
    CHECK(strstr(info.backend_note, "linear") != NULL);
    CHECK(strcmp(lc_graph_attr_name(LC_GRAPH_ATTR_HEAD_DIM), "head_dim") == 0 && lc_graph_attr_name(3u) == NULL);
}

static void test_reason_codes(void) {
    static const char *const codes[LC_GRAPH_REASON_COUNT] = {
        "fallback_preferred_unsupported", "fallback_preferred_unavailable", "fallback_planner_optimized",
        "graph_engine_not_lightning", "graph_shape_unsupported", "torch_unavailable_fallback"};
    for (int r = 0; r < LC_GRAPH_REASON_COUNT; r++) {
        CHECK(strcmp(lc_graph_reason_code((lc_graph_reason)r), codes[r]) == 0);
        CHECK(strlen(lc_graph_reason_description((lc_graph_reason)r)) > 10);
        lc_graph_reason back = LC_GRAPH_REASON_COUNT;
        CHECK(lc_graph_reason_parse(codes[r], &back) == LC_OK && back == (lc_graph_reason)r);
    }
    CHECK(strcmp(lc_graph_reason_code(LC_GRAPH_REASON_COUNT), "invalid") == 0);
    CHECK(strcmp(lc_graph_reason_code((lc_graph_reason)-1), "invalid") == 0);
    lc_graph_reason r;
    CHECK(lc_graph_reason_parse("direct", &r) == LC_ERR_INVALID_ARGUMENT && err_has("code", "direct", NULL));
    CHECK(lc_graph_reason_parse(NULL, &r) == LC_ERR_INVALID_ARGUMENT);
    /* the op-level reason codes of runtime.h share the spellings */
    CHECK(strcmp(lc_reason_code(LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE),
                 lc_graph_reason_code(LC_GRAPH_REASON_FALLBACK_PREFERRED_UNAVAILABLE)) == 0);
    CHECK(strcmp(lc_reason_code(LC_REASON_FALLBACK_PREFERRED_UNSUPPORTED),
                 lc_graph_reason_code(LC_GRAPH_REASON_FALLBACK_PREFERRED_UNSUPPORTED)) == 0);
}

/* ---- builder --------------------------------------------------------------------------------- */

/* The graph is unchanged since (nodes, values) was taken. */
#define UNCHANGED(g, nn, nv) CHECK(lc_graph_node_count(g) == (nn) && lc_graph_value_count(g) == (nv))

static void test_builder_ops(void) {
    lc_graph_t *g = NULL;
    CHECK_OK(lc_graph_new(&g));
    lc_graph_attrs at;
    lc_value_id v, out;
    /* matmul */
    const lc_value_id a = input(g, "a", 2, 4, 8, 0, 0), b = input(g, "b", 2, 8, 3, 0, 0), bad_b = input(g, "w", 2, 7, 3, 0, 0);
    CHECK_OK(add(g, "matmul", a, b, -1, NULL, NULL, &v));
    CHECK(shape_is(g, v, 2, 4, 3, 0, 0));
    lc_graph_node_info ni;
    CHECK_OK(lc_graph_get_node(g, 0, &ni));
    CHECK(strcmp(ni.name, "matmul_0") == 0 && strcmp(ni.op, "matmul") == 0 && ni.ninputs == 2 && ni.inputs[0] == a &&
          ni.inputs[1] == b && ni.output == v && ni.checked == 1 && ni.inputs[2] == -1);
    int32_t nn = lc_graph_node_count(g), nv = lc_graph_value_count(g);
    CHECK(add(g, "matmul", a, bad_b, -1, NULL, "mm", &out) == LC_ERR_SHAPE &&
          err_has("node 'mm' (matmul)", "input 1 'b' (value 'w')", "expected [k=8, n] with k matching a's dim 1, got [7, 3]"));
    UNCHANGED(g, nn, nv);
    CHECK(add(g, "matmul", a, -1, -1, NULL, "mm", &out) == LC_ERR_SHAPE && err_has("inputs", "expected 2 inputs, got 1", NULL));
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_STRIDE_H;
    at.stride_h = 2;
    CHECK(add(g, "matmul", a, b, -1, &at, "mm", &out) == LC_ERR_INVALID_ARGUMENT &&
          err_has("matmul does not take attribute stride_h", NULL, NULL));
    at.set = 1u << 12;
    CHECK(add(g, "matmul", a, b, -1, &at, "mm", &out) == LC_ERR_INVALID_ARGUMENT && err_has("unknown attribute", NULL, NULL));
    UNCHANGED(g, nn, nv);
    /* bias_add */
    const lc_value_id bias = input(g, "bias", 1, 3, 0, 0, 0), bias4 = input(g, "bias4", 1, 4, 0, 0, 0);
    CHECK_OK(add(g, "bias_add", v, bias, -1, NULL, "ba", &out));
    CHECK(shape_is(g, out, 2, 4, 3, 0, 0));
    CHECK(add(g, "bias_add", v, bias4, -1, NULL, NULL, &out) == LC_ERR_SHAPE &&
          err_has("input 1 'bias' (value 'bias4')", "expected [n=3]", "got [4]"));
    /* elementwise */
    const lc_value_id m1 = input(g, "m1", 3, 2, 3, 4, 0), m2 = input(g, "m2", 3, 2, 3, 4, 0), m3 = input(g, "m3", 3, 2, 4, 3, 0);
    static const char *const bins[3] = {"vector_add", "matrix_sub", "matrix_div"};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(add(g, bins[i], m1, m2, -1, NULL, NULL, &out));
        CHECK(shape_is(g, out, 3, 2, 3, 4, 0));
        CHECK(add(g, bins[i], m1, m3, -1, NULL, NULL, &out) == LC_ERR_SHAPE &&
              err_has("input 1 'b' (value 'm3')", "expected [2, 3, 4] (the shape of a), got [2, 4, 3]", NULL));
    }
    /* relu, gelu */
    CHECK_OK(add(g, "relu", m1, -1, -1, NULL, NULL, &out));
    CHECK(shape_is(g, out, 3, 2, 3, 4, 0));
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_GELU_APPROX;
    at.gelu_approx = LC_GELU_TANH;
    CHECK_OK(add(g, "gelu", m1, -1, -1, &at, "gelu_t", &out));
    CHECK_OK(lc_graph_get_node(g, lc_graph_find_node(g, "gelu_t"), &ni));
    CHECK(ni.attrs.gelu_approx == LC_GELU_TANH && ni.attrs.set == LC_GRAPH_ATTR_GELU_APPROX);
    at.gelu_approx = 7;
    CHECK(add(g, "gelu", m1, -1, -1, &at, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("gelu_approx", "got 7", NULL));
    /* layer_norm */
    const lc_value_id x3 = input(g, "x3", 3, 2, 5, 6, 0), gam = input(g, "gamma", 1, 6, 0, 0, 0), bet = input(g, "beta", 1, 6, 0, 0, 0);
    CHECK_OK(add(g, "layer_norm", x3, gam, bet, NULL, "ln", &out));
    CHECK(shape_is(g, out, 3, 2, 5, 6, 0));
    CHECK_OK(lc_graph_get_node(g, lc_graph_find_node(g, "ln"), &ni));
    CHECK(ni.attrs.eps == 1e-5 && ni.attrs.set == 0);
    CHECK_OK(add(g, "layer_norm", x3, -1, -1, NULL, NULL, &out));
    CHECK(add(g, "layer_norm", x3, bias4, -1, NULL, "ln2", &out) == LC_ERR_SHAPE &&
          err_has("input 1 'gamma' (value 'bias4')", "expected [d=6]", NULL));
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_EPS;
    at.eps = 0.0;
    CHECK(add(g, "layer_norm", x3, -1, -1, &at, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("eps", "> 0", NULL));
    /* attention */
    const lc_value_id q = input(g, "q", 2, 16, 8, 0, 0), k = input(g, "k", 2, 16, 8, 0, 0), vv = input(g, "v", 2, 16, 4, 0, 0);
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_CAUSAL;
    at.causal = 1;
    CHECK_OK(add(g, "attention_forward", q, k, q, &at, "attn", &out));
    CHECK(shape_is(g, out, 2, 16, 8, 0, 0));
    CHECK(add(g, "attention_forward", q, k, vv, NULL, NULL, &out) == LC_ERR_SHAPE &&
          err_has("input 2 'v' (value 'v')", "expected [16, 8] (the shape of q), got [16, 4]", NULL));
    at.causal = 2;
    CHECK(add(g, "attention_forward", q, k, q, &at, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("causal", "0..1", NULL));
    CHECK(add(g, "attention_forward", x3, x3, x3, NULL, "attn3", &out) == LC_ERR_SHAPE &&
          err_has("node 'attn3'", "expected 2 dimensions [rows, cols]", "got 3"));
    /* conv2d */
    const lc_value_id x = input(g, "x", 4, 1, 3, 8, 8), w3 = input(g, "w3", 4, 4, 3, 3, 3), w5 = input(g, "w5", 4, 4, 3, 5, 5),
                      wc = input(g, "wc", 4, 4, 2, 3, 3), cb = input(g, "cb", 1, 4, 0, 0, 0);
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_STRIDE_H | LC_GRAPH_ATTR_STRIDE_W | LC_GRAPH_ATTR_PAD_H | LC_GRAPH_ATTR_PAD_W;
    at.stride_h = at.stride_w = 2;
    at.pad_h = at.pad_w = 1;
    CHECK_OK(add(g, "conv2d_nchw", x, w3, cb, &at, "conv_s2", &out));
    CHECK(shape_is(g, out, 4, 1, 4, 4, 4)); /* (8 + 2 - 3) / 2 + 1 */
    CHECK_OK(add(g, "conv2d_nchw", x, w5, -1, NULL, NULL, &out));
    CHECK(shape_is(g, out, 4, 1, 4, 4, 4)); /* 8 - 5 + 1 */
    CHECK(add(g, "conv2d_nchw", x, wc, -1, NULL, "cc", &out) == LC_ERR_SHAPE &&
          err_has("input 1 'w' (value 'wc')", "c=3", "got [4, 2, 3, 3]"));
    CHECK(add(g, "conv2d_nchw", x, w3, bias, NULL, NULL, &out) == LC_ERR_SHAPE && err_has("input 2 'bias'", "[oc=4]", NULL));
    CHECK(add(g, "conv2d_nchw", q, w3, -1, NULL, "c2d", &out) == LC_ERR_SHAPE &&
          err_has("node 'c2d'", "input 0 'x' (value 'q'): expected 4 dimensions [n, c, h, w] (layout nchw)", NULL));
    const lc_value_id tiny = input(g, "tiny", 4, 1, 3, 2, 2);
    CHECK(add(g, "conv2d_nchw", tiny, w5, -1, NULL, NULL, &out) == LC_ERR_SHAPE && err_has("no output positions", NULL, NULL));
    at.stride_h = 0;
    CHECK(add(g, "conv2d_nchw", x, w3, -1, &at, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("stride_h", "got 0", NULL));
    at.stride_h = 2;
    at.pad_w = -1;
    CHECK(add(g, "conv2d_nchw", x, w3, -1, &at, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("pad_w", "got -1", NULL));
    CHECK_OK(add(g, "conv2d_nchw3x3", x, w3, cb, NULL, NULL, &out));
    CHECK(shape_is(g, out, 4, 1, 4, 6, 6));
    CHECK(add(g, "conv2d_nchw3x3", x, w5, -1, NULL, NULL, &out) == LC_ERR_SHAPE && err_has("3x3 kernel", "got [4, 3, 5, 5]", NULL));
    lc_value_id c11;
    CHECK_OK(add(g, "conv2d_nchw3x3s1p1", x, w3, cb, NULL, "c11", &c11));
    CHECK(shape_is(g, c11, 4, 1, 4, 8, 8));
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_STRIDE_W;
    at.stride_w = 2;
    CHECK(add(g, "conv2d_nchw3x3s1p1", x, w3, cb, &at, NULL, &out) == LC_ERR_INVALID_ARGUMENT &&
          err_has("stride_w", "fixes it to 1", "got 2"));
    at.stride_w = 1; /* given as 1: accepted */
    CHECK_OK(add(g, "conv2d_nchw3x3s1p1", x, w3, cb, &at, NULL, &out));
    /* qkv_pack_repeat */
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM;
    at.seq = 16;
    at.head_dim = 8;
    CHECK_OK(add(g, "qkv_pack_repeat", c11, -1, -1, &at, "qkv", &out));
    CHECK(shape_is(g, out, 3, 3, 16, 8, 0));
    at.set = LC_GRAPH_ATTR_SEQ;
    CHECK(add(g, "qkv_pack_repeat", c11, -1, -1, &at, NULL, &out) == LC_ERR_INVALID_ARGUMENT &&
          err_has("qkv_pack_repeat needs attribute head_dim", NULL, NULL));
    at.set = LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM;
    at.seq = INT32_MAX;
    at.head_dim = INT32_MAX; /* 3 * seq * head_dim elements: too many */
    nn = lc_graph_node_count(g);
    nv = lc_graph_value_count(g);
    CHECK(add(g, "qkv_pack_repeat", c11, -1, -1, &at, NULL, &out) == LC_ERR_SHAPE && err_has("output shape", NULL, NULL));
    UNCHANGED(g, nn, nv);
    /* dtypes */
    const int64_t s2[2] = {4, 8}, s2b[2] = {8, 3};
    lc_value_id d64a, d64b;
    CHECK_OK(lc_graph_input_typed(g, "d64a", LC_DTYPE_F64, 2, s2, &d64a));
    CHECK_OK(lc_graph_input_typed(g, "d64b", LC_DTYPE_F64, 2, s2b, &d64b));
    CHECK_OK(add(g, "matmul", d64a, d64b, -1, NULL, NULL, &out));
    lc_graph_value_info vi;
    CHECK(lc_graph_get_value(g, out, &vi) == LC_OK && vi.dtype == LC_DTYPE_F64);
    CHECK(add(g, "matmul", a, d64b, -1, NULL, NULL, &out) == LC_ERR_DTYPE &&
          err_has("input 1 'b' (value 'd64b')", "expected dtype float32 (a's), got float64", NULL));
    CHECK(add(g, "gelu", d64a, -1, -1, NULL, NULL, &out) == LC_ERR_DTYPE && err_has("expected dtype float32, float16 or bfloat16, got float64", NULL, NULL));
    /* argument errors */
    nn = lc_graph_node_count(g);
    nv = lc_graph_value_count(g);
    CHECK(add(g, "conv", x, w3, -1, NULL, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("op: expected one of matmul", "'conv'", NULL));
    CHECK(add(g, "relu", 999, -1, -1, NULL, "r", &out) == LC_ERR_INVALID_ARGUMENT && err_has("inputs[0]", "got 999", NULL));
    CHECK(add(g, "relu", a, -1, -1, NULL, "mm", &out) == LC_OK);
    CHECK(add(g, "relu", a, -1, -1, NULL, "mm", &out) == LC_ERR_INVALID_ARGUMENT && err_has("node_name", "'mm'", "already"));
    CHECK(add(g, "relu", a, -1, -1, NULL, "a", &out) == LC_ERR_INVALID_ARGUMENT && err_has("node_name", "'a'", NULL));
    CHECK(lc_graph_add(g, "relu", NULL, 1, NULL, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("inputs", NULL, NULL));
    CHECK(lc_graph_add(g, "relu", &a, 5, NULL, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("ninputs", NULL, NULL));
    CHECK(lc_graph_add(g, NULL, &a, 1, NULL, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("op", NULL, NULL));
    CHECK(lc_graph_add(g, "relu", &a, 1, NULL, NULL, NULL) == LC_ERR_INVALID_ARGUMENT && err_has("out", NULL, NULL));
    CHECK(lc_graph_add(NULL, "relu", &a, 1, NULL, NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("g:", NULL, NULL));
    UNCHANGED(g, nn + 1, nv + 1);
    const int64_t bad[2] = {4, 0};
    CHECK(lc_graph_input(g, "z", 2, bad, &out) == LC_ERR_SHAPE && err_has("graph.input: input 'z'", "shape", NULL));
    CHECK(lc_graph_input(g, "", 2, s2, &out) == LC_ERR_INVALID_ARGUMENT && err_has("name", "non-empty", NULL));
    CHECK(lc_graph_input(g, "q", 2, s2, &out) == LC_ERR_INVALID_ARGUMENT && err_has("'q' already", NULL, NULL));
    CHECK(lc_graph_input_typed(g, "z", LC_DTYPE_COUNT, 2, s2, &out) == LC_ERR_DTYPE);
    CHECK(lc_graph_constant(g, "z", NULL, &out) == LC_ERR_INVALID_ARGUMENT && err_has("t:", NULL, NULL));
    CHECK(lc_graph_mark_output(g, 12345) == LC_ERR_INVALID_ARGUMENT && err_has("v:", "12345", NULL));
    UNCHANGED(g, nn + 1, nv + 1);
    lc_graph_free(g);
    lc_graph_free(NULL);
    CHECK(lc_graph_new(NULL) == LC_ERR_INVALID_ARGUMENT);
}

/* x [1,3,8,8] --conv3x3s1p1(w, b)--> relu --> qkv_pack_repeat(16, 8) --> attention_forward(q, k, v)
 * with constants w, b (data given) and the pack split by matmul-free slicing done in attention's
 * inputs: the chain the seed's integrated conv->attention path builds. */
static lc_graph_t *build_chain(const float *wdata, int64_t x_h, int stride, lc_tensor_t **w_out, lc_tensor_t **b_out,
                               const char *conv_name) {
    lc_graph_t *g = NULL;
    lc_graph_new(&g);
    const int64_t xs[4] = {1, 3, x_h, 8}, ws[4] = {4, 3, 3, 3}, bs[1] = {4};
    lc_tensor_t *w = NULL, *b = NULL;
    lc_tensor_from_host(wdata, 108 * sizeof(float), LC_DTYPE_F32, LC_DEVICE_CPU, 4, ws, &w);
    lc_tensor_from_host(wdata, 4 * sizeof(float), LC_DTYPE_F32, LC_DEVICE_CPU, 1, bs, &b);
    lc_value_id x, wv, bv, c, r, qkv, q, k, v, att;
    lc_graph_input(g, "x", 4, xs, &x);
    lc_graph_constant(g, "w", w, &wv);
    lc_graph_constant(g, "b", b, &bv);
    lc_graph_attrs at;
    lc_graph_attrs_init(&at);
    if (stride != 1) {
        at.set = LC_GRAPH_ATTR_STRIDE_H;
        at.stride_h = stride;
    }
    const lc_value_id cin[3] = {x, wv, bv};
    CHECK_OK(lc_graph_add(g, "conv2d_nchw3x3", cin, 3, &at, conv_name, &c));
    CHECK_OK(lc_graph_add(g, "relu", &c, 1, NULL, "relu", &r));
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM;
    at.seq = 16;
    at.head_dim = 8;
    CHECK_OK(lc_graph_add(g, "qkv_pack_repeat", &r, 1, &at, "pack", &qkv));
    /* the attention reads q, k, v: three separate [16, 8] inputs here (slicing is the planner's) */
    const int64_t qs[2] = {16, 8};
    lc_graph_input(g, "q", 2, qs, &q);
    lc_graph_input(g, "k", 2, qs, &k);
    lc_graph_input(g, "v", 2, qs, &v);
    const lc_value_id ain[3] = {q, k, v};
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_CAUSAL;
    at.causal = 1;
    CHECK_OK(lc_graph_add(g, "attention_forward", ain, 3, &at, "attn", &att));
    lc_graph_mark_output(g, qkv);
    lc_graph_mark_output(g, att);
    if (w_out) *w_out = w;
    else lc_tensor_free(w);
    if (b_out) *b_out = b;
    else lc_tensor_free(b);
    return g;
}

static void test_queries_and_hash(void) {
    float d1[108], d2[108];
    for (int i = 0; i < 108; i++) {
        d1[i] = 0.01f * (float)i - 0.3f;
        d2[i] = -d1[i];
    }
    lc_tensor_t *w = NULL, *b = NULL;
    lc_graph_t *g1 = build_chain(d1, 8, 1, &w, &b, "conv");
    lc_graph_t *g2 = build_chain(d2, 8, 1, NULL, NULL, "other_name"); /* other constant data, other node name */
    lc_graph_t *g3 = build_chain(d1, 10, 1, NULL, NULL, "conv");     /* other input shape */
    lc_graph_t *g4 = build_chain(d1, 8, 2, NULL, NULL, "conv");      /* other stride */
    CHECK(lc_graph_hash(g1) != 0 && lc_graph_hash(g1) == lc_graph_hash(g1));
    CHECK(lc_graph_hash(g1) == lc_graph_hash(g2));
    CHECK(lc_graph_hash(g1) != lc_graph_hash(g3));
    CHECK(lc_graph_hash(g1) != lc_graph_hash(g4));
    CHECK(lc_graph_hash(NULL) == 0);
    /* stride given explicitly as its default hashes like the default */
    lc_graph_t *g5 = build_chain(d1, 8, 1, NULL, NULL, "conv");
    CHECK(lc_graph_hash(g5) == lc_graph_hash(g1));
    CHECK_OK(lc_graph_mark_output(g5, lc_graph_find_value(g5, "relu")));
    CHECK(lc_graph_hash(g5) != lc_graph_hash(g1));
    /* queries */
    CHECK(lc_graph_node_count(g1) == 4 && lc_graph_value_count(g1) == 10 && lc_graph_output_count(g1) == 2);
    CHECK(lc_graph_output(g1, 0) == lc_graph_find_value(g1, "pack") && lc_graph_output(g1, 1) == lc_graph_find_value(g1, "attn"));
    CHECK(lc_graph_output(g1, 2) == -1 && lc_graph_output(NULL, 0) == -1);
    CHECK_OK(lc_graph_mark_output(g1, lc_graph_find_value(g1, "pack"))); /* again: no-op */
    CHECK(lc_graph_output_count(g1) == 2);
    lc_graph_value_info vi;
    CHECK_OK(lc_graph_get_value(g1, lc_graph_find_value(g1, "w"), &vi));
    CHECK(vi.kind == LC_GRAPH_VALUE_CONSTANT && vi.tensor != NULL && vi.tensor != w && vi.producer == -1 && !vi.is_output);
    CHECK(vi.ndim == 4 && vi.shape[0] == 4 && vi.shape[3] == 3 && vi.dtype == LC_DTYPE_F32);
    /* the graph keeps its own view: the storage outlives the caller's handle */
    lc_tensor_free(w);
    lc_tensor_free(b);
    float back[108];
    CHECK(lc_tensor_to_host(vi.tensor, back, sizeof back) == LC_OK && back[5] == d1[5]);
    CHECK_OK(lc_graph_get_value(g1, lc_graph_find_value(g1, "x"), &vi));
    CHECK(vi.kind == LC_GRAPH_VALUE_INPUT && vi.tensor == NULL && strcmp(vi.name, "x") == 0);
    CHECK_OK(lc_graph_get_value(g1, lc_graph_find_value(g1, "pack"), &vi));
    CHECK(vi.kind == LC_GRAPH_VALUE_INTERMEDIATE && vi.is_output && vi.producer == lc_graph_find_node(g1, "pack"));
    CHECK(strcmp(lc_graph_value_kind_name(LC_GRAPH_VALUE_INTERMEDIATE), "intermediate") == 0);
    CHECK(lc_graph_get_value(g1, 10, &vi) == LC_ERR_INVALID_ARGUMENT && err_has("v:", "0..9", "got 10"));
    lc_graph_node_info ni;
    CHECK(lc_graph_get_node(g1, 4, &ni) == LC_ERR_INVALID_ARGUMENT && err_has("node:", NULL, NULL));
    CHECK_OK(lc_graph_get_node(g1, 0, &ni));
    CHECK(ni.op_index == lc_graph_op_find("conv2d_nchw3x3") && ni.attrs.stride_h == 1 && ni.attrs.pad_h == 0);
    CHECK(lc_graph_find_node(g1, "nope") == -1 && lc_graph_find_value(g1, NULL) == -1);
    /* topological order: the builder's program order */
    int32_t order[4];
    CHECK_OK(lc_graph_topo_order(g1, order, 4));
    CHECK(order[0] == 0 && order[1] == 1 && order[2] == 2 && order[3] == 3);
    CHECK(lc_graph_topo_order(g1, order, 3) == LC_ERR_INVALID_ARGUMENT && err_has("order", NULL, NULL));
    /* the chain validates clean on the CPU: no issue at all */
    size_t all = 99;
    CHECK(error_count(g1, LC_DEVICE_CPU, &all) == 0 && all == 0);
    CHECK(error_count(g1, LC_DEVICE_AUTO, &all) == 0 && all == 0);
    lc_graph_free(g1);
    lc_graph_free(g2);
    lc_graph_free(g3);
    lc_graph_free(g4);
    lc_graph_free(g5);
}

/* ---- validation: a crafted bad graph per code ------------------------------------------------ */

static const int64_t S44[2] = {4, 4};
#define F32 LC_DTYPE_F32
#define ERR LC_GRAPH_SEVERITY_ERROR
#define WARN LC_GRAPH_SEVERITY_WARNING

static lc_graph_t *fresh(lc_value_id *x) {
    lc_graph_t *g = NULL;
    lc_graph_new(&g);
    lc_graph_input(g, "x", 2, S44, x);
    return g;
}

static void test_schema_contract(void) {
    lc_value_id x, v, o;
    lc_graph_t *g = fresh(&x);
    CHECK_OK(lc_graph_add_unchecked(g, "log_softmax", &x, 1, NULL, "sm", 2, S44, F32, -1, &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "schema_contract", "schema_unknown_op", "sm", ERR, NULL, 1));
    lc_graph_free(g);

    g = fresh(&x);
    const lc_value_id two[2] = {x, x};
    CHECK_OK(lc_graph_add_unchecked(g, "relu", two, 2, NULL, "r2", 2, S44, F32, -1, &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "schema_contract", "schema_arity", "r2", ERR, NULL, 1));
    lc_graph_free(g);

    g = fresh(&x);
    lc_graph_attrs at;
    lc_graph_attrs_init(&at);
    at.set = LC_GRAPH_ATTR_CAUSAL;
    at.causal = 1;
    CHECK_OK(lc_graph_add_unchecked(g, "relu", &x, 1, &at, "r_attr", 2, S44, F32, -1, &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "schema_contract", "schema_attr", "r_attr", ERR, NULL, 1));
    lc_graph_free(g);

    g = fresh(&x);
    lc_value_id x64;
    lc_graph_input_typed(g, "x64", LC_DTYPE_F64, 2, S44, &x64);
    const lc_value_id mixed[2] = {x, x64};
    CHECK_OK(lc_graph_add_unchecked(g, "vector_add", mixed, 2, NULL, "mix", 2, S44, F32, -1, &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "schema_contract", "schema_dtype", "mix", ERR, NULL, 1));
    lc_graph_free(g);

    g = fresh(&x);
    const int64_t s53[2] = {5, 3};
    lc_value_id w;
    lc_graph_input(g, "w", 2, s53, &w);
    const lc_value_id mm[2] = {x, w};
    CHECK_OK(lc_graph_add_unchecked(g, "matmul", mm, 2, NULL, "mm_bad", 2, s53, F32, -1, &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "schema_contract", "schema_shape", "mm_bad", ERR, NULL, 1));
    lc_graph_free(g);

    g = fresh(&x);
    CHECK_OK(lc_graph_add_unchecked(g, "relu", &x, 1, NULL, "r_out", 2, s53, F32, -1, &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "schema_contract", "schema_output_shape", "r_out", ERR, NULL, 1));
    /* the raw builder refuses only what it cannot store */
    CHECK(lc_graph_add_unchecked(g, "relu", &x, 1, NULL, "r_out", 2, S44, F32, -1, &o) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_graph_add_unchecked(g, "relu", &x, 1, NULL, NULL, 2, S44, F32, 77, &o) == LC_ERR_INVALID_ARGUMENT &&
          err_has("out_value", NULL, NULL));
    CHECK(lc_graph_add_unchecked(g, "", &x, 1, NULL, NULL, 2, S44, F32, -1, &o) == LC_ERR_INVALID_ARGUMENT);
    lc_graph_free(g);
}

static void test_topology(void) {
    lc_value_id x, v, r1, r2;
    lc_graph_t *g = fresh(&x);
    const lc_value_id dangling[2] = {x, 99};
    CHECK_OK(lc_graph_add_unchecked(g, "vector_add", dangling, 2, NULL, "add_dangling", 2, S44, F32, -1, &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "topology", "topology_dangling_input", "add_dangling", ERR, NULL, 1));
    int32_t order[4];
    CHECK(lc_graph_topo_order(g, order, 4) == LC_ERR_INVALID_ARGUMENT && err_has("add_dangling", "no value", NULL));
    lc_graph_free(g);

    /* cycle: r1 = relu(x); r2 = relu(r1); then r1's input rewired to r2 */
    g = fresh(&x);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "n1", &r1));
    CHECK_OK(lc_graph_add(g, "relu", &r1, 1, NULL, "n2", &r2));
    CHECK_OK(lc_graph_add(g, "gelu", &r2, 1, NULL, "n3", &v));
    lc_graph_mark_output(g, v);
    CHECK(error_count(g, LC_DEVICE_CPU, NULL) == 0);
    CHECK_OK(lc_graph_rewire_unchecked(g, 0, 0, r2));
    CHECK(lc_graph_rewire_unchecked(g, 0, 1, r2) == LC_ERR_INVALID_ARGUMENT && err_has("slot", "n1", NULL));
    CHECK(lc_graph_rewire_unchecked(g, 7, 0, r2) == LC_ERR_INVALID_ARGUMENT && err_has("node", NULL, NULL));
    CHECK(expect_issue(g, LC_DEVICE_CPU, "topology", "topology_cycle", "n1", ERR, NULL, 1));
    CHECK(lc_graph_topo_order(g, order, 4) == LC_ERR_INVALID_ARGUMENT && err_has("cycle", "'n1'", NULL));
    lc_graph_report *r = NULL;
    CHECK_OK(lc_graph_validate(g, LC_DEVICE_CPU, &r));
    int cycles = 0;
    for (size_t i = 0; i < lc_graph_report_count(r); i++) {
        lc_graph_issue is;
        lc_graph_report_get(r, i, &is);
        if (strcmp(is.code, "topology_cycle") == 0) {
            cycles++;
            CHECK(strstr(is.message, "'n1' -> 'n2' -> 'n1'") != NULL || strstr(is.message, "'n2' -> 'n1' -> 'n2'") != NULL);
        }
    }
    CHECK(cycles == 1); /* n3 is only downstream of the cycle */
    lc_graph_report_free(r);
    lc_graph_free(g);

    /* no output */
    g = fresh(&x);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "lonely", &v));
    CHECK(expect_issue(g, LC_DEVICE_CPU, "topology", "topology_no_output", NULL, ERR, NULL, 1));
    lc_graph_free(g);

    /* unused node (dead code) and unused input: warnings, no error */
    g = fresh(&x);
    lc_value_id y, dead;
    lc_graph_input(g, "unused_in", 2, S44, &y);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "live", &v));
    CHECK_OK(lc_graph_add(g, "gelu", &x, 1, NULL, "dead", &dead));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "topology", "topology_unused_node", "dead", WARN, NULL, 1));
    CHECK(expect_issue(g, LC_DEVICE_CPU, "topology", "topology_unused_value", NULL, WARN, NULL, 1));
    lc_graph_report *rep = NULL;
    CHECK_OK(lc_graph_validate(g, LC_DEVICE_CPU, &rep));
    CHECK(!lc_graph_report_has_errors(rep) && lc_graph_report_count(rep) == 2);
    lc_graph_issue is;
    CHECK(lc_graph_report_get(rep, 1, &is) == LC_OK && is.value && strcmp(is.value, "unused_in") == 0 && is.node_index == -1);
    CHECK(lc_graph_report_get(rep, 2, &is) == LC_ERR_INVALID_ARGUMENT);
    lc_graph_report_free(rep);
    lc_graph_free(g);
}

/* Cycles of any length are cycles (a self-loop included, closed by a rewire or by an input id that names
 * the node's own future output), each reported once at its lowest node; an acyclic graph whose node reads
 * a later node's output is not one (its dependency order differs from program order). */
static void test_cycles_any_length(void) {
    lc_value_id x, r, v, a, b, c;
    int32_t order[8];
    /* self-loop by rewire: relu reads its own output */
    lc_graph_t *g = fresh(&x);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "self", &r));
    lc_graph_mark_output(g, r);
    CHECK_OK(lc_graph_rewire_unchecked(g, 0, 0, r));
    CHECK(expect_issue(g, LC_DEVICE_CPU, "topology", "topology_cycle", "self", ERR, NULL, 1));
    CHECK(lc_graph_topo_order(g, order, 8) == LC_ERR_INVALID_ARGUMENT && err_has("cycle", "'self'", NULL));
    lc_graph_report *rep = NULL;
    CHECK_OK(lc_graph_validate(g, LC_DEVICE_CPU, &rep));
    lc_graph_issue is;
    CHECK(lc_graph_report_get(rep, 0, &is) == LC_OK && strcmp(is.code, "topology_cycle") == 0 &&
          strstr(is.message, "'self' -> 'self'") && strstr(is.message, "its own output"));
    lc_graph_report_free(rep);
    lc_graph_free(g);

    /* self-loop by an input id equal to the id the node's output value gets */
    g = fresh(&x);
    const lc_value_id own = lc_graph_value_count(g);
    CHECK_OK(lc_graph_add_unchecked(g, "relu", &own, 1, NULL, "ouroboros", 2, S44, F32, -1, &v));
    CHECK(v == own);
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "topology", "topology_cycle", "ouroboros", ERR, NULL, 1));
    lc_graph_free(g);

    /* two disjoint cycles (3 nodes; 1 node) and a node downstream of the first, lower in program order */
    g = fresh(&x);
    lc_value_id down, s1;
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "down", &down)); /* node 0: rewired below to read c */
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "a", &a));       /* node 1 */
    CHECK_OK(lc_graph_add(g, "gelu", &a, 1, NULL, "b", &b));       /* node 2 */
    CHECK_OK(lc_graph_add(g, "relu", &b, 1, NULL, "c", &c));       /* node 3 */
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "s1", &s1));     /* node 4 */
    const lc_value_id ab[2] = {down, s1};
    CHECK_OK(lc_graph_add(g, "vector_add", ab, 2, NULL, "out", &v));
    lc_graph_mark_output(g, v);
    CHECK(error_count(g, LC_DEVICE_CPU, NULL) == 0);
    CHECK_OK(lc_graph_rewire_unchecked(g, 0, 0, c)); /* down = relu(c) */
    CHECK_OK(lc_graph_rewire_unchecked(g, 1, 0, c)); /* a = relu(c): a -> b -> c -> a */
    CHECK_OK(lc_graph_rewire_unchecked(g, 4, 0, s1)); /* s1 = relu(s1) */
    CHECK(lc_graph_topo_order(g, order, 8) == LC_ERR_INVALID_ARGUMENT && err_has("cycle", NULL, NULL) &&
          !err_has("'down'", NULL, NULL) && !err_has("'out'", NULL, NULL)); /* names a node on a cycle */
    CHECK_OK(lc_graph_validate(g, LC_DEVICE_CPU, &rep));
    int cycles = 0, at_a = 0, at_s1 = 0;
    for (size_t i = 0; i < lc_graph_report_count(rep); i++) {
        lc_graph_report_get(rep, i, &is);
        if (strcmp(is.code, "topology_cycle") != 0) continue;
        cycles++;
        at_a += strcmp(is.node, "a") == 0 && strstr(is.message, "'a' -> 'b' -> 'c' -> 'a'") != NULL;
        at_s1 += strcmp(is.node, "s1") == 0 && strstr(is.message, "'s1' -> 's1'") != NULL;
    }
    CHECK(cycles == 2 && at_a == 1 && at_s1 == 1);
    lc_graph_report_free(rep);
    lc_graph_free(g);

    /* a node reading a later node's output, acyclic: valid; the dependency order puts the later node first */
    g = fresh(&x);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "reader", &a)); /* node 0 */
    CHECK_OK(lc_graph_add(g, "gelu", &x, 1, NULL, "later", &b));  /* node 1 */
    lc_graph_mark_output(g, a);
    CHECK_OK(lc_graph_rewire_unchecked(g, 0, 0, b));
    size_t all = 0;
    CHECK(error_count(g, LC_DEVICE_CPU, &all) == 0 && all == 0);
    CHECK(lc_graph_topo_order(g, order, 8) == LC_OK && order[0] == 1 && order[1] == 0);
    lc_graph_free(g);
}

static void test_alias_lifetime(void) {
    lc_value_id x, v, r1, r2, o;
    /* a node writing a graph input in place */
    lc_graph_t *g = fresh(&x);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "r", &v));
    CHECK_OK(lc_graph_add_unchecked(g, "gelu", &v, 1, NULL, "into_x", 0, NULL, F32, x, &o));
    CHECK(o == x);
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "alias_lifetime", "alias_inplace_conflict", "into_x", ERR, NULL, 0));
    lc_graph_free(g);

    /* a second writer of an intermediate, and a read after that overwrite */
    g = fresh(&x);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "p1", &r1));          /* r1 = relu(x) */
    CHECK_OK(lc_graph_add_unchecked(g, "gelu", &x, 1, NULL, "clobber", 0, NULL, F32, r1, &o)); /* r1 = gelu(x) again */
    CHECK_OK(lc_graph_add(g, "vector_add", (lc_value_id[]){r1, x}, 2, NULL, "reader", &r2)); /* reads r1 after clobber */
    lc_graph_mark_output(g, r2);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "alias_lifetime", "alias_inplace_conflict", "clobber", ERR, NULL, 0));
    CHECK(expect_issue(g, LC_DEVICE_CPU, "alias_lifetime", "alias_lifetime", "reader", ERR, NULL, 0));
    lc_graph_report *r = NULL;
    CHECK_OK(lc_graph_validate_passes(g, LC_DEVICE_CPU, 1u << LC_GRAPH_PASS_ALIAS_LIFETIME, &r));
    CHECK(lc_graph_report_count(r) == 2);
    lc_graph_issue is;
    CHECK(lc_graph_report_get(r, 1, &is) == LC_OK && strstr(is.message, "after node 'clobber' overwrote it") &&
          strstr(is.message, "produced by node 'p1'") && strcmp(is.value, "p1") == 0);
    lc_graph_report_free(r);
    lc_graph_free(g);

    /* a graph output that is a graph input itself */
    g = fresh(&x);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "r", &v));
    lc_graph_mark_output(g, v);
    lc_graph_mark_output(g, x);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "alias_lifetime", "alias_inplace_conflict", NULL, ERR, NULL, 1));
    lc_graph_free(g);
}

static void test_layout_flow(void) {
    lc_value_id x, v, w, o;
    /* an NCHW op fed a 2-D value */
    lc_graph_t *g = fresh(&x);
    const int64_t ws[4] = {2, 4, 3, 3}, os[4] = {1, 2, 2, 2};
    lc_graph_input(g, "w", 4, ws, &w);
    CHECK_OK(lc_graph_add_unchecked(g, "conv2d_nchw", (lc_value_id[]){x, w}, 2, NULL, "conv_on_matrix", 4, os, F32, -1, &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "layout_flow", "layout_rank", "conv_on_matrix", ERR, NULL, 1));
    lc_graph_report *r = NULL;
    CHECK_OK(lc_graph_validate_passes(g, LC_DEVICE_CPU, 1u << LC_GRAPH_PASS_LAYOUT_FLOW, &r));
    lc_graph_issue is;
    CHECK(lc_graph_report_count(r) == 1 && lc_graph_report_get(r, 0, &is) == LC_OK && strcmp(is.value, "x") == 0 &&
          strstr(is.message, "expected 4 dimensions [n, c, h, w]") != NULL);
    lc_graph_report_free(r);
    lc_graph_free(g);

    /* a strided constant: the transposed view of a [4, 4] tensor */
    g = fresh(&x);
    float data[16];
    for (int i = 0; i < 16; i++) data[i] = (float)i;
    lc_tensor_t *base = NULL, *tview = NULL;
    CHECK_OK(lc_tensor_from_host(data, sizeof data, F32, LC_DEVICE_CPU, 2, S44, &base));
    const int64_t tstrides[2] = {1, 4};
    CHECK_OK(lc_tensor_view(base, 2, S44, tstrides, 0, LC_DEVICE_AUTO, &tview));
    CHECK_OK(lc_graph_constant(g, "wt", tview, &w));
    CHECK_OK(lc_graph_add(g, "matmul", (lc_value_id[]){x, w}, 2, NULL, "mm", &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "layout_flow", "layout_noncontiguous", "mm", WARN, NULL, 1));
    lc_tensor_free(tview);
    lc_tensor_free(base);
    lc_graph_free(g);

    /* a GPU constant validated for the CPU (only where a GPU is present) */
    if (lc_device_available(LC_DEVICE_CUDA)) {
        g = fresh(&x);
        lc_tensor_t *dev = NULL;
        CHECK_OK(lc_tensor_from_host(data, sizeof data, F32, LC_DEVICE_CUDA, 2, S44, &dev));
        CHECK_OK(lc_graph_constant(g, "wd", dev, &w));
        CHECK_OK(lc_graph_add(g, "matmul", (lc_value_id[]){x, w}, 2, NULL, "mm", &v));
        lc_graph_mark_output(g, v);
        CHECK(expect_issue(g, LC_DEVICE_CPU, "layout_flow", "layout_device", "mm", ERR, NULL, 1));
        CHECK(error_count(g, LC_DEVICE_CUDA, NULL) == 0);
        lc_tensor_free(dev);
        lc_graph_free(g);
    }
    (void)o;
}

static void test_backend_capability(void) {
    lc_value_id x, v, x64;
    /* gelu over float64: no backend has the kernel */
    lc_graph_t *g = fresh(&x);
    lc_graph_input_typed(g, "x64", LC_DTYPE_F64, 2, S44, &x64);
    CHECK_OK(lc_graph_add_unchecked(g, "gelu", &x64, 1, NULL, "gelu64", 2, S44, LC_DTYPE_F64, -1, &v));
    lc_graph_mark_output(g, v);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "r", &v));
    lc_graph_mark_output(g, v);
    CHECK(expect_issue(g, LC_DEVICE_CPU, "backend_capability", "backend_unsupported", "gelu64", ERR, NULL, 0));
    CHECK(expect_issue(g, LC_DEVICE_AUTO, "backend_capability", "backend_unsupported", "gelu64", ERR, NULL, 0));
    lc_graph_free(g);

    /* metal is never built: the graph falls back (warning), or fails in strict mode (error) */
    g = fresh(&x);
    CHECK_OK(lc_graph_add(g, "relu", &x, 1, NULL, "r", &v));
    lc_graph_mark_output(g, v);
    const char *unavail = lc_graph_reason_code(LC_GRAPH_REASON_FALLBACK_PREFERRED_UNAVAILABLE);
    const int strict = lc_strict_device();
    lc_set_strict_device(0);
    CHECK(expect_issue(g, LC_DEVICE_METAL, "backend_capability", "backend_unavailable", NULL, WARN, unavail, 1));
    lc_set_strict_device(1);
    CHECK(expect_issue(g, LC_DEVICE_METAL, "backend_capability", "backend_unavailable", NULL, ERR, unavail, 1));
    lc_set_strict_device(strict);
    if (!lc_device_available(LC_DEVICE_CUDA)) {
        lc_set_strict_device(0);
        CHECK(expect_issue(g, LC_DEVICE_CUDA, "backend_capability", "backend_unavailable", NULL, WARN, unavail, 1));
        lc_set_strict_device(strict);
    }
    lc_graph_free(g);

    /* attention with head_dim 300: the CUDA kernel takes <= 256, so it falls back to the CPU */
    if (lc_device_available(LC_DEVICE_CUDA)) {
        lc_graph_new(&g);
        const int64_t qs[2] = {8, 300};
        lc_value_id q;
        lc_graph_input(g, "q", 2, qs, &q);
        CHECK_OK(lc_graph_add(g, "attention_forward", (lc_value_id[]){q, q, q}, 3, NULL, "big_attn", &v));
        lc_graph_mark_output(g, v);
        CHECK(expect_issue(g, LC_DEVICE_CUDA, "backend_capability", "backend_unsupported", "big_attn", WARN,
                           lc_graph_reason_code(LC_GRAPH_REASON_FALLBACK_PREFERRED_UNSUPPORTED), 1));
        CHECK(error_count(g, LC_DEVICE_CPU, NULL) == 0);
        lc_graph_free(g);
    }
}

static void test_validate_args(void) {
    lc_value_id x;
    lc_graph_t *g = fresh(&x);
    lc_graph_report *r = (lc_graph_report *)&x;
    CHECK(lc_graph_validate(NULL, LC_DEVICE_CPU, &r) == LC_ERR_INVALID_ARGUMENT && r == NULL && err_has("g:", NULL, NULL));
    CHECK(lc_graph_validate(g, LC_DEVICE_CPU, NULL) == LC_ERR_INVALID_ARGUMENT && err_has("out:", NULL, NULL));
    CHECK(lc_graph_validate(g, (lc_device)17, &r) == LC_ERR_INVALID_ARGUMENT && err_has("device", NULL, NULL));
    CHECK(lc_graph_validate_passes(g, LC_DEVICE_CPU, 1u << 9, &r) == LC_ERR_INVALID_ARGUMENT && err_has("passes", NULL, NULL));
    CHECK_OK(lc_graph_validate_passes(g, LC_DEVICE_CPU, 0, &r));
    CHECK(lc_graph_report_count(r) == 0 && !lc_graph_report_has_errors(r));
    lc_graph_report_free(r);
    lc_graph_report_free(NULL);
    CHECK(lc_graph_report_count(NULL) == 0 && !lc_graph_report_has_errors(NULL));
    lc_graph_issue is;
    CHECK(lc_graph_report_get(NULL, 0, &is) == LC_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(lc_graph_pass_name(LC_GRAPH_PASS_LAYOUT_FLOW), "layout_flow") == 0 &&
          strcmp(lc_graph_pass_name(LC_GRAPH_PASS_COUNT), "invalid") == 0);
    CHECK(strcmp(lc_graph_severity_name(LC_GRAPH_SEVERITY_ERROR), "error") == 0);
    /* an empty graph: no output */
    CHECK(expect_issue(g, LC_DEVICE_CPU, "topology", "topology_no_output", NULL, ERR, NULL, 1));
    lc_graph_free(g);
}

/* Every code of the catalogue was raised by some crafted graph above. */
static void test_catalogue_covered(void) {
    const int gpu = lc_device_available(LC_DEVICE_CUDA);
    static const char *const passes[] = {"schema_contract", "topology", "alias_lifetime", "layout_flow", "backend_capability"};
    int per_pass[5] = {0};
    for (int i = 0; i < lc_graph_issue_code_count(); i++) {
        lc_graph_issue_code_info info;
        CHECK_OK(lc_graph_issue_code(i, &info));
        for (int p = 0; p < 5; p++) per_pass[p] += strcmp(info.pass, passes[p]) == 0;
        if (!gpu && strcmp(info.code, "layout_device") == 0) continue;
        int seen = 0;
        for (int k = 0; k < g_nseen; k++) seen |= strcmp(g_seen[k], info.code) == 0;
        if (!seen) fprintf(stderr, "  code %s was never raised\n", info.code);
        CHECK(seen);
    }
    for (int p = 0; p < 5; p++) CHECK(per_pass[p] >= 2);
    lc_graph_issue_code_info info;
    CHECK(lc_graph_issue_code(-1, &info) == LC_ERR_INVALID_ARGUMENT);
}

int main(void) {
    test_registry();
    test_reason_codes();
    test_builder_ops();
    test_queries_and_hash();
    test_schema_contract();
    test_topology();
    test_cycles_any_length();
    test_alias_lifetime();
    test_layout_flow();
    test_backend_capability();
    test_validate_args();
    test_catalogue_covered();
    printf("test_graph: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
