/* test_op_table.c — the op table (src/core/op_table.c): every lc_op has its entry (own id, unique name,
 * shape rule, work), the graph registry is exactly the table's graph ops by name and index, aliases and
 * composite ops resolve to kernels, support answers follow the masks, infer on edge cases (k mismatch,
 * conv sizes incl. stride/pad and kernels that do not fit, overflowing outputs, bad ranks), work numbers
 * for a few shapes, unknown names refused, and the dtype rule's message naming both operands.
 * Prints "N passed, N failed". */
#include <stdint.h>
#include <string.h>

#include "core/backend.h"
#include "core/op_table.h"
#include "lightning_core/lightning_core.h"
#include "check.h"

static int has(const char *text) { return strstr(lc_last_error(), text) != NULL; }

static lc_status infer(const char *op, int n, const int *nd, const int64_t *const *shapes, const lc_graph_attrs *a,
                       int *ond, int64_t *os) {
    return lc_op_infer_shape(op, n, NULL, nd, shapes, a, ond, os);
}

static void test_entries(void) {
    for (int i = 0; i < LC_OP_COUNT; i++) {
        const lc_op_def *d = lc_op_get((lc_op)i);
        CHECK(d != NULL && d->op == (lc_op)i && d->name && d->infer && d->work && d->shape_rule);
        CHECK(lc_op_find(d->name) == d);
        for (int j = 0; j < i; j++) CHECK(strcmp(lc_op_get((lc_op)j)->name, d->name) != 0);
        CHECK(d->min_inputs >= 1 && d->max_inputs <= LC_OP_MAX_INPUTS && d->min_inputs <= d->max_inputs);
        for (int k = 0; k < d->max_inputs; k++) CHECK(d->input_names[k] != NULL);
        CHECK(lc_op_dtype_mask(d) != 0);
        /* a backend whose mask takes the op has the kernel (or the op runs as others) */
        const lc_backend *cpu = lc_backend_for(LC_DEVICE_CPU);
        if (d->dtypes[LC_OP_BACKEND_CPU] && !(d->flags & LC_OPF_COMPOSITE)) CHECK(cpu->kernels[d->runs_as] != NULL);
        if (d->flags & LC_OPF_COMPOSITE) CHECK(cpu->kernels[d->op] == NULL);
    }
    CHECK(lc_op_get(LC_OP_COUNT) == NULL && lc_op_get((lc_op)-1) == NULL);
    CHECK(lc_op_find("qkv_pack") == NULL && lc_op_find(NULL) == NULL);
    const lc_op_def *d = NULL;
    CHECK(lc_op_lookup("test", "conv3d", &d) == LC_ERR_INVALID_ARGUMENT && d == NULL && has("'conv3d'") && has("matmul"));
    /* the graph registry is the table's graph ops, same names, index == id */
    CHECK(lc_graph_op_count() == LC_OP_MUL + 1);
    for (int i = 0; i < lc_graph_op_count(); i++) {
        lc_graph_op_info info;
        CHECK_OK(lc_graph_op_schema(i, &info));
        CHECK(strcmp(info.name, lc_op_get((lc_op)i)->name) == 0 && lc_graph_op_find(info.name) == i);
        CHECK(lc_op_get((lc_op)i)->flags & LC_OPF_GRAPH);
    }
    CHECK(lc_graph_op_find("linear") == -1 && lc_graph_op_find("attention_projection") == -1);
    lc_graph_op_info info;
    CHECK_OK(lc_graph_op_schema(LC_OP_CONV2D_3X3, &info));
    CHECK(info.alias_of && strcmp(info.alias_of, "conv2d_nchw") == 0 && strcmp(info.layout, "nchw") == 0);
    /* support follows the masks: matmul bf16 on the CPU, conv_attention nowhere but CUDA */
    CHECK(lc_op_supported(LC_OP_MATMUL, LC_DEVICE_CPU, LC_DTYPE_BF16));
    CHECK(!lc_op_supported(LC_OP_GELU, LC_DEVICE_CPU, LC_DTYPE_F64));
    CHECK(lc_op_supported(LC_OP_VECTOR_ADD, LC_DEVICE_CPU, LC_DTYPE_F64));
    CHECK(!lc_op_supported(LC_OP_CONV_ATTENTION, LC_DEVICE_CPU, LC_DTYPE_F32));
    CHECK(lc_op_supported(LC_OP_CONV2D_3X3S1P1, LC_DEVICE_CPU, LC_DTYPE_F32));
    CHECK(!lc_op_supported(LC_OP_MATMUL, LC_DEVICE_METAL, LC_DTYPE_F32));
}

static void test_infer(void) {
    int ond = 0;
    int64_t os[LC_MAX_DIMS];
    /* matmul: k rule, ranks */
    const int64_t a[2] = {3, 8}, b[2] = {8, 5}, b7[2] = {7, 5}, a3[3] = {2, 3, 8};
    const int nd22[2] = {2, 2}, nd32[2] = {3, 2};
    CHECK_OK(infer("matmul", 2, nd22, (const int64_t *const[]){a, b}, NULL, &ond, os));
    CHECK(ond == 2 && os[0] == 3 && os[1] == 5);
    CHECK(infer("matmul", 2, nd22, (const int64_t *const[]){a, b7}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("matmul: b: expected [k=8, n] with k matching a's dim 1, got [7, 5]"));
    CHECK(infer("matmul", 2, nd32, (const int64_t *const[]){a3, b}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("a: expected 2 dimensions") && has("got 3"));
    CHECK(infer("matmul", 1, nd22, (const int64_t *const[]){a}, NULL, &ond, os) == LC_ERR_SHAPE && has("2 inputs"));
    /* linear: bias [n] optional */
    const int64_t bias5[1] = {5}, bias4[1] = {4};
    const int nd221[3] = {2, 2, 1};
    CHECK_OK(infer("linear", 3, nd221, (const int64_t *const[]){a, b, bias5}, NULL, &ond, os));
    CHECK_OK(infer("linear", 3, nd221, (const int64_t *const[]){a, b, NULL}, NULL, &ond, os));
    CHECK(infer("linear", 3, nd221, (const int64_t *const[]){a, b, bias4}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("bias: expected [n=5]"));
    /* silu_mul_linear: gu [m, 2k] (columns even, twice w's rows), bias [n], residual [m, n] */
    {
        const int64_t gu[2] = {3, 16}, gu15[2] = {3, 15}, gu14[2] = {3, 14}, r35[2] = {3, 5}, r25[2] = {2, 5};
        const int nd2212[4] = {2, 2, 1, 2};
        CHECK_OK(infer("silu_mul_linear", 4, nd2212, (const int64_t *const[]){gu, b, bias5, r35}, NULL, &ond, os));
        CHECK(ond == 2 && os[0] == 3 && os[1] == 5);
        CHECK_OK(infer("silu_mul_linear", 2, nd2212, (const int64_t *const[]){gu, b}, NULL, &ond, os));
        CHECK(infer("silu_mul_linear", 2, nd2212, (const int64_t *const[]){gu15, b}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("silu_mul_linear: gu: expected [m, 2k] (gate | up halves: an even number of columns), got [3, 15]"));
        CHECK(infer("silu_mul_linear", 2, nd2212, (const int64_t *const[]){gu14, b}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("silu_mul_linear: w: expected [k=7, n] with k half of gu's dim 1 (gate | up), got [8, 5]"));
        CHECK(infer("silu_mul_linear", 2, nd2212, (const int64_t *const[]){a, b}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("w: expected [k=4, n]"));
        CHECK(infer("silu_mul_linear", 3, nd2212, (const int64_t *const[]){gu, b, bias4}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("bias: expected [n=5]"));
        CHECK(infer("silu_mul_linear", 4, nd2212, (const int64_t *const[]){gu, b, NULL, r25}, NULL, &ond, os) ==
                  LC_ERR_SHAPE && has("silu_mul_linear: residual: expected [3, 5] (the output's shape), got [2, 5]"));
        double fl = 0, by = 0;
        CHECK_OK(lc_op_work_of("silu_mul_linear", 2, nd2212, (const int64_t *const[]){gu, b}, NULL, LC_DTYPE_BF16, &fl,
                               &by));
        CHECK(fl == 2.0 * 15 * 8 + 4.5 * 48 && by == 2.0 * (48 + 40 + 15));
    }
    /* overflow: an output whose element count does not fit */
    const int64_t big_a[2] = {INT64_C(1) << 40, 2}, big_b[2] = {2, INT64_C(1) << 40};
    CHECK(infer("matmul", 2, nd22, (const int64_t *const[]){big_a, big_b}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("fits in 64 bits"));
    /* conv sizes: (h + 2p - k) / s + 1 */
    const int64_t x[4] = {2, 3, 7, 9}, w[4] = {4, 3, 3, 2}, w5[4] = {4, 3, 5, 5}, wc[4] = {4, 2, 3, 3}, cb[1] = {4};
    const int nd441[3] = {4, 4, 1};
    lc_graph_attrs at = {.set = LC_GRAPH_ATTR_STRIDE_H | LC_GRAPH_ATTR_STRIDE_W | LC_GRAPH_ATTR_PAD_H | LC_GRAPH_ATTR_PAD_W,
                         .stride_h = 2, .stride_w = 3, .pad_h = 1, .pad_w = 0};
    CHECK_OK(infer("conv2d_nchw", 3, nd441, (const int64_t *const[]){x, w, cb}, &at, &ond, os));
    CHECK(ond == 4 && os[0] == 2 && os[1] == 4 && os[2] == (7 + 2 - 3) / 2 + 1 && os[3] == (9 - 2) / 3 + 1);
    CHECK_OK(infer("conv2d_nchw", 2, nd441, (const int64_t *const[]){x, w}, NULL, &ond, os));
    CHECK(os[2] == 5 && os[3] == 8);
    const int64_t x4[4] = {1, 3, 4, 4};
    CHECK(infer("conv2d_nchw", 2, nd441, (const int64_t *const[]){x4, w5}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("no output positions"));
    CHECK(infer("conv2d_nchw", 2, nd441, (const int64_t *const[]){x, wc}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("c=3") && has("x's channels"));
    CHECK(infer("conv2d_nchw3x3", 2, nd441, (const int64_t *const[]){x, w}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("3x3 kernel"));
    lc_graph_attrs s2 = {.set = LC_GRAPH_ATTR_STRIDE_H, .stride_h = 2};
    CHECK(infer("conv2d_nchw3x3s1p1", 2, nd441, (const int64_t *const[]){x, w5}, &s2, &ond, os) == LC_ERR_INVALID_ARGUMENT &&
          has("fixes it to 1"));
    lc_graph_attrs s0 = {.set = LC_GRAPH_ATTR_STRIDE_W, .stride_w = 0};
    CHECK(infer("conv2d_nchw", 2, nd441, (const int64_t *const[]){x, w}, &s0, &ond, os) == LC_ERR_INVALID_ARGUMENT &&
          has("stride_w"));
    /* one conv rule: huge input + pad does not overflow, it is refused */
    CHECK(lc_conv_out_extent(INT64_MAX - 1, 3, 1, INT32_MAX) == -1 && lc_conv_out_extent(5, 3, 1, 1) == 5);
    CHECK(lc_conv_out_extent(2, 3, 1, 0) == -1 && lc_conv_out_extent(3, 3, 7, 0) == 1);
    /* conv output too large to count */
    const int64_t xh[4] = {INT64_C(1) << 20, 1, INT64_C(1) << 20, INT64_C(1) << 20}, w1[4] = {1 << 20, 1, 1, 1};
    CHECK(infer("conv2d_nchw", 2, nd441, (const int64_t *const[]){xh, w1}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("fits in 64 bits"));
    /* qkv_pack_repeat: required attributes */
    const int nd1[1] = {1};
    const int64_t src[1] = {10};
    CHECK(infer("qkv_pack_repeat", 1, nd1, (const int64_t *const[]){src}, NULL, &ond, os) == LC_ERR_INVALID_ARGUMENT &&
          has("needs attribute seq"));
    lc_graph_attrs qa = {.set = LC_GRAPH_ATTR_SEQ | LC_GRAPH_ATTR_HEAD_DIM, .seq = 4, .head_dim = 6};
    CHECK_OK(infer("qkv_pack_repeat", 1, nd1, (const int64_t *const[]){src}, &qa, &ond, os));
    CHECK(ond == 3 && os[0] == 3 && os[1] == 4 && os[2] == 6);
    /* attention_projection: [seq,d] x3, w [d,pn] -> [seq,pn] */
    const int64_t q[2] = {5, 4}, pw[2] = {4, 7}, pw3[2] = {3, 7};
    const int nd2222[4] = {2, 2, 2, 2};
    CHECK_OK(infer("attention_projection", 4, nd2222, (const int64_t *const[]){q, q, q, pw}, NULL, &ond, os));
    CHECK(os[0] == 5 && os[1] == 7);
    CHECK(infer("attention_projection", 4, nd2222, (const int64_t *const[]){q, q, q, pw3}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("w: expected [k=4, n]"));
    /* add / mul: NumPy broadcasting, rank <= 4 */
    {
        const int64_t m5[2] = {7, 5}, v5[1] = {5}, c7[2] = {7, 1}, r3[3] = {2, 1, 5}, v4[1] = {4}, five[5] = {1, 1, 1, 1, 2};
        const int nd21[2] = {2, 1}, nd12[2] = {1, 2}, nd23[2] = {2, 3}, nd51[2] = {5, 1};
        CHECK_OK(infer("add", 2, nd21, (const int64_t *const[]){m5, v5}, NULL, &ond, os));
        CHECK(ond == 2 && os[0] == 7 && os[1] == 5);
        CHECK_OK(infer("mul", 2, nd12, (const int64_t *const[]){v5, m5}, NULL, &ond, os)); /* a broadcasts */
        CHECK(ond == 2 && os[0] == 7 && os[1] == 5);
        CHECK_OK(infer("mul", 2, nd23, (const int64_t *const[]){c7, r3}, NULL, &ond, os)); /* both broadcast */
        CHECK(ond == 3 && os[0] == 2 && os[1] == 7 && os[2] == 5);
        CHECK(infer("add", 2, nd21, (const int64_t *const[]){m5, v4}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("add: b: expected a shape broadcastable with a's [7, 5]") && has("got [4]"));
        CHECK(infer("add", 2, nd51, (const int64_t *const[]){five, v5}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("add: a: expected at most 4 dimensions"));
        /* rms_norm: weight [d]; softmax / silu keep the shape; silu_mul needs equal shapes */
        const int64_t w4[1] = {4};
        CHECK(infer("rms_norm", 2, nd21, (const int64_t *const[]){m5, w4}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("rms_norm: weight: expected [d=5]"));
        CHECK_OK(infer("rms_norm", 2, nd21, (const int64_t *const[]){m5, NULL}, NULL, &ond, os));
        CHECK(infer("silu_mul", 2, (const int[]){2, 2}, (const int64_t *const[]){m5, c7}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("silu_mul: b: expected [7, 5]"));
        CHECK_OK(infer("softmax", 1, nd21, (const int64_t *const[]){r3}, NULL, &ond, os));
        lc_graph_attrs e0 = {.set = LC_GRAPH_ATTR_EPS, .eps = 0.0};
        CHECK(infer("rms_norm", 1, nd21, (const int64_t *const[]){m5}, &e0, &ond, os) == LC_ERR_INVALID_ARGUMENT && has("eps"));
        /* rope: x rank 2..4, positions [s] or [b, s] */
        const int64_t xr4[4] = {2, 3, 5, 8}, ps[1] = {5}, pbs[2] = {2, 5}, pbad[2] = {3, 5}, x1[1] = {8};
        const int nd41[2] = {4, 1}, nd42[2] = {4, 2}, nd11[2] = {1, 1};
        CHECK_OK(infer("rope", 2, nd41, (const int64_t *const[]){xr4, ps}, NULL, &ond, os));
        CHECK(ond == 4 && os[3] == 8);
        CHECK_OK(infer("rope", 2, nd42, (const int64_t *const[]){xr4, pbs}, NULL, &ond, os));
        CHECK(infer("rope", 2, nd42, (const int64_t *const[]){xr4, pbad}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("rope: positions: expected [seq=5] or [batch=2, seq=5]"));
        CHECK(infer("rope", 2, nd11, (const int64_t *const[]){x1, x1}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("rope: x: expected [batch, heads, seq, head_dim]"));
        /* sample: logits [B, V] -> [B]; V in 1..2^23; rank 2 only */
        const int64_t lg[2] = {3, 50257}, lg0[2] = {3, 0}, lgbig[2] = {1, ((int64_t)1 << 23) + 1}, lg3[3] = {1, 2, 3};
        CHECK_OK(infer("sample", 1, nd21, (const int64_t *const[]){lg}, NULL, &ond, os));
        CHECK(ond == 1 && os[0] == 3);
        CHECK(infer("sample", 1, nd21, (const int64_t *const[]){lg0}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("sample: logits: expected a vocabulary axis of 1..8388608 columns"));
        CHECK(infer("sample", 1, nd21, (const int64_t *const[]){lgbig}, NULL, &ond, os) == LC_ERR_SHAPE);
        CHECK(infer("sample", 1, (const int[]){3}, (const int64_t *const[]){lg3}, NULL, &ond, os) == LC_ERR_SHAPE &&
              has("sample: logits"));
        /* work: bytes of the inputs as they are (a broadcast bias counted once) */
        double fl = 0, by = 0;
        CHECK_OK(lc_op_work_of("add", 2, nd21, (const int64_t *const[]){m5, v5}, NULL, LC_DTYPE_F16, &fl, &by));
        CHECK(fl == 35.0 && by == 2.0 * (35 + 5 + 35));
    }
    /* unknown op */
    CHECK(infer("conv3d", 1, nd1, (const int64_t *const[]){src}, NULL, &ond, os) == LC_ERR_INVALID_ARGUMENT && has("conv3d"));
    /* caller names in messages */
    CHECK(lc_op_infer_shape("conv2d_nchw", 3, (const char *const[]){"x", "w", "b"}, nd441,
                            (const int64_t *const[]){x, w, bias5}, NULL, &ond, os) == LC_ERR_SHAPE &&
          has("conv2d_nchw: b: expected [oc=4] (w's dim 0), got [5]"));
}

static void test_work(void) {
    const lc_graph_attrs none = {0};
    lc_op_operands in;
    memset(&in, 0, sizeof in);
    in.prefix = "t";
    const int64_t a[2] = {3, 8}, b[2] = {8, 5}, o[2] = {3, 5};
    in.n = 2, in.ndim[0] = in.ndim[1] = 2, in.shape[0] = a, in.shape[1] = b;
    lc_op_work w = lc_op_get(LC_OP_MATMUL)->work(&in, &none, 2, o);
    CHECK(w.flops == 2.0 * 3 * 8 * 5 && w.gemm_flops == w.flops && w.bytes == 4.0 * (24 + 40 + 15));
    in.dtype[0] = in.dtype[1] = LC_DTYPE_F64;
    w = lc_op_get(LC_OP_MATMUL)->work(&in, &none, 2, o);
    CHECK(w.bytes == 8.0 * (24 + 40 + 15));
    /* conv: 2 * n*oc*oh*ow * c*kh*kw */
    const int64_t x[4] = {2, 3, 7, 9}, cw[4] = {4, 3, 3, 2}, co[4] = {2, 4, 5, 8};
    in.dtype[0] = in.dtype[1] = LC_DTYPE_F32;
    in.ndim[0] = in.ndim[1] = 4, in.shape[0] = x, in.shape[1] = cw;
    w = lc_op_get(LC_OP_CONV2D)->work(&in, &none, 4, co);
    CHECK(w.flops == 2.0 * (2 * 4 * 5 * 8) * (3 * 3 * 2) && w.gemm_flops == 0.0);
    /* attention: 4 seq^2 d; relu: one op and two passes per element */
    const int64_t q[2] = {16, 8};
    in.n = 3, in.ndim[0] = in.ndim[1] = in.ndim[2] = 2, in.shape[0] = in.shape[1] = in.shape[2] = q;
    w = lc_op_get(LC_OP_ATTENTION)->work(&in, &none, 2, q);
    CHECK(w.flops == 4.0 * 16 * 16 * 8 && w.bytes == 4.0 * 4 * 16 * 8);
    in.n = 1;
    w = lc_op_get(LC_OP_RELU)->work(&in, &none, 2, q);
    CHECK(w.flops == 128.0 && w.bytes == 2.0 * 128 * 4);
}

/* The dtype rule: one dtype for every operand, the mismatch names both operands and both dtypes. */
static void test_dtype_rule(void) {
    lc_tensor_t *a = NULL, *b = NULL, *c = NULL, *h = NULL;
    const int64_t s2[2] = {2, 2};
    CHECK_OK(lc_tensor_new(LC_DTYPE_F32, LC_DEVICE_CPU, 2, s2, &a));
    CHECK_OK(lc_tensor_new(LC_DTYPE_F64, LC_DEVICE_CPU, 2, s2, &b));
    CHECK_OK(lc_tensor_new(LC_DTYPE_F32, LC_DEVICE_CPU, 2, s2, &c));
    CHECK_OK(lc_tensor_new(LC_DTYPE_F16, LC_DEVICE_CPU, 2, s2, &h));
    CHECK(lc_matmul(a, b, c, LC_DEVICE_CPU) == LC_ERR_DTYPE && has("matmul: b: expected dtype float32 (a's), got float64"));
    CHECK(lc_vector_add(a, b, c, LC_DEVICE_CPU) == LC_ERR_DTYPE && has("vector_add: b: expected dtype float32 (a's)"));
    CHECK(lc_relu(h, c, LC_DEVICE_CPU) == LC_ERR_DTYPE && has("relu: out: expected dtype float16, got float32"));
    CHECK(lc_gelu(b, b, LC_GELU_ERF, LC_DEVICE_CPU) == LC_ERR_DTYPE &&
          has("gelu: x: expected dtype float32, float16 or bfloat16, got float64"));
    lc_tensor_t *i32 = NULL;
    CHECK_OK(lc_tensor_new(LC_DTYPE_I32, LC_DEVICE_CPU, 2, s2, &i32));
    CHECK(lc_relu(i32, i32, LC_DEVICE_CPU) == LC_ERR_DTYPE &&
          has("relu: x: expected dtype float32, float64, float16 or bfloat16, got int32"));
    lc_tensor_free(a), lc_tensor_free(b), lc_tensor_free(c), lc_tensor_free(h), lc_tensor_free(i32);
}

int main(void) {
    test_entries();
    test_infer();
    test_work();
    test_dtype_rule();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
