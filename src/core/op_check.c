/* op_check.c — the checks every reader of the op table (op_table.h) shares: arity, dtypes, ranks, attributes,
 * the shape rule and work estimate by op name for callers outside the table (lc_op_infer_shape, lc_op_work_of),
 * and the dtype sets per device. The table itself and its per-op rules: op_table.c.
 * Tests: tests/c/test_op_table.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/backend.h"
#include "core/internal.h"
#include "core/op_table.h"
#include "lightning_core/dtype.h"

/* ---- shared checks ------------------------------------------------------------------------------- */

lc_status lc_op_check_arity(const lc_op_def *d, const char *prefix, int ninputs) {
    if (ninputs >= d->min_inputs && ninputs <= d->max_inputs) return LC_OK;
    if (d->min_inputs == d->max_inputs)
        return lc_error(LC_ERR_SHAPE, "%s: inputs: expected %d input%s, got %d", prefix, d->min_inputs,
                        d->min_inputs == 1 ? "" : "s", ninputs);
    return lc_error(LC_ERR_SHAPE, "%s: inputs: expected %d to %d inputs, got %d", prefix, d->min_inputs,
                    d->max_inputs, ninputs);
}

/* The dtypes of mask as "float32, float64 or bfloat16". */
static void lc_dtype_list(char *buf, size_t size, unsigned mask) {
    size_t used = 0;
    int k = 0, total = 0;
    buf[0] = '\0';
    for (int t = 0; t < LC_DTYPE_COUNT; t++) total += (mask >> t) & 1u;
    for (int t = 0; t < LC_DTYPE_COUNT && used < size; t++) {
        if (!(mask & LC_DT(t))) continue;
        used += (size_t)snprintf(buf + used, size - used, "%s%s", k == 0 ? "" : k == total - 1 ? " or " : ", ",
                                 lc_dtype_name((lc_dtype)t));
        k++;
    }
}

lc_status lc_op_check_dtypes(const lc_op_def *d, const lc_op_operands *in, lc_dtype *dtype) {
    const unsigned mask = lc_op_dtype_mask(d);
    char who[160], ref[160], list[96];
    int first = -1;
    for (int i = 0; i < in->n; i++) {
        if (!in->shape[i]) continue;
        const lc_dtype dt = in->dtype[i];
        lc_op_describe_input(who, sizeof who, d, in, i);
        if ((int)dt < 0 || dt >= LC_DTYPE_COUNT || !(mask & LC_DT(dt))) {
            lc_dtype_list(list, sizeof list, mask);
            return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype %s, got %s", in->prefix, who, list, lc_dtype_name(dt));
        }
        if (first < 0) {
            first = i;
            continue;
        }
        if (dt != in->dtype[first] && !(d->flags & LC_OPF_MIXED_DTYPE)) {
            snprintf(ref, sizeof ref, "%s", lc_op_arg_name(d, in, first));
            return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype %s (%s's), got %s", in->prefix, who,
                            lc_dtype_name(in->dtype[first]), ref, lc_dtype_name(dt));
        }
    }
    if (dtype) *dtype = first >= 0 ? in->dtype[first] : LC_DTYPE_F32;
    return LC_OK;
}

lc_status lc_op_check_ranks(const lc_op_def *d, const lc_op_operands *in) {
    for (int i = 0; i < in->n && i < d->max_inputs; i++) {
        const int want = d->input_ranks[i];
        if (!in->shape[i] || want == LC_GRAPH_RANK_ANY || in->ndim[i] == want) continue;
        char who[160], got[96];
        lc_op_describe_input(who, sizeof who, d, in, i);
        lc_op_format_shape(got, sizeof got, in->ndim[i], in->shape[i]);
        const int nchw = (d->flags & LC_OPF_NCHW) != 0;
        const char *hint = (nchw && i == 0)   ? " [n, c, h, w]"
                           : (nchw && i == 1) ? " [oc, c, kh, kw]"
                           : (want == 2)      ? " [rows, cols]"
                                              : "";
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected %d dimensions%s (layout %s), got %d: %s", in->prefix, who, want,
                        hint, nchw ? "nchw" : "row-major", in->ndim[i], got);
    }
    return LC_OK;
}

lc_status lc_op_infer(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs, int *out_ndim,
                      int64_t *out_shape) {
    lc_status st = lc_op_check_ranks(d, in);
    if (st == LC_OK) st = d->infer(d, in, attrs, out_ndim, out_shape);
    if (st == LC_OK && lc_shape_validate("output shape", *out_ndim, out_shape) != LC_OK) {
        char shape[160];
        lc_op_format_shape(shape, sizeof shape, *out_ndim, out_shape);
        return lc_error(LC_ERR_SHAPE, "%s: out: expected an output shape whose element count fits in 64 bits, got %s",
                        in->prefix, shape);
    }
    return st;
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

lc_status lc_op_check_attrs(const lc_op_def *d, const char *prefix, int graph, const lc_graph_attrs *given,
                            lc_graph_attrs *resolved) {
    lc_graph_attrs none, r;
    const char *label = graph ? "attrs: " : "";
    if (!given) {
        memset(&none, 0, sizeof none);
        given = &none;
    }
    const unsigned takes = d->attrs;
    const unsigned extra = given->set & ~takes;
    if (extra) {
        const unsigned bit = extra & (~extra + 1u);
        const char *an = lc_graph_attr_name(bit);
        if (!an) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %sunknown attribute bit 0x%x", prefix, label, bit);
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s%s does not take attribute %s", prefix, label, d->name, an);
    }
    const unsigned missing = d->required_attrs & ~given->set;
    if (missing)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s%s needs attribute %s, got none", prefix, label, d->name,
                        lc_graph_attr_name(missing & (~missing + 1u)));
    /* defaults, then the given ones */
    r = d->defaults;
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
    /* ranges of what the op takes (pads: the conv rule is overflow-checked, lc_conv_out_extent) */
    static const struct {
        unsigned bit;
        int64_t lo, hi;
    } ranges[] = {
        {LC_GRAPH_ATTR_STRIDE_H, 1, INT32_MAX}, {LC_GRAPH_ATTR_STRIDE_W, 1, INT32_MAX},
        {LC_GRAPH_ATTR_PAD_H, 0, INT32_MAX},    {LC_GRAPH_ATTR_PAD_W, 0, INT32_MAX},
        {LC_GRAPH_ATTR_CAUSAL, 0, 1},           {LC_GRAPH_ATTR_GELU_APPROX, 0, LC_GELU_COUNT - 1},
        {LC_GRAPH_ATTR_SEQ, 1, INT32_MAX},      {LC_GRAPH_ATTR_HEAD_DIM, 1, INT32_MAX},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        if (!(takes & ranges[i].bit)) continue;
        const int64_t v = lc_attr_int(&r, ranges[i].bit);
        if (v < ranges[i].lo || v > ranges[i].hi)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s%s: expected %lld..%lld, got %lld", prefix, label,
                            lc_graph_attr_name(ranges[i].bit), (long long)ranges[i].lo, (long long)ranges[i].hi,
                            (long long)v);
    }
    /* The kernels add eps in float32: one that rounds to 0 there (e.g. 1e-300) would make a constant row 0/0 =
     * NaN, and one that overflows would be inf; both are refused (eager and graph alike). */
    if ((takes & LC_GRAPH_ATTR_EPS) && !(isfinite(r.eps) && r.eps > 0.0 && (float)r.eps > 0.0f && isfinite((float)r.eps)))
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "%s: %seps: expected a finite value > 0 that float32 holds (1.4e-45 .. 3.4e38), got %g", prefix,
                        label, r.eps);
    if (d->op == LC_OP_CONV2D_3X3S1P1) {
        for (unsigned bit = LC_GRAPH_ATTR_STRIDE_H; bit <= LC_GRAPH_ATTR_PAD_W; bit <<= 1) {
            const int64_t v = lc_attr_int(&r, bit);
            if (v != 1)
                return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s%s: %s fixes it to 1, got %lld", prefix, label,
                                lc_graph_attr_name(bit), d->name, (long long)v);
        }
    }
    if (resolved) *resolved = r;
    return LC_OK;
}

/* The operands of a caller's shapes (lc_op_infer_shape, lc_op_work_of): arity, ranks, optional inputs. */
static lc_status lc_op_caller_operands(const char *fn, const char *op, int ninputs, const char *const *names,
                                       const int *ndims, const int64_t *const *shapes, lc_dtype dtype,
                                       const lc_op_def **d, lc_op_operands *in) {
    lc_status st = lc_op_lookup(fn, op, d);
    if (st != LC_OK) return st;
    if (!ndims || !shapes || ninputs < 0 || ninputs > LC_OP_MAX_INPUTS)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: inputs: expected ndims and shapes for 0..%d inputs", (*d)->name,
                        LC_OP_MAX_INPUTS);
    if ((st = lc_op_check_arity(*d, (*d)->name, ninputs)) != LC_OK) return st;
    memset(in, 0, sizeof *in);
    in->prefix = (*d)->name;
    in->n = ninputs;
    for (int i = 0; i < ninputs; i++) {
        in->arg_names[i] = names ? names[i] : NULL;
        in->dtype[i] = dtype;
        if (!shapes[i]) {
            if (i < (*d)->min_inputs)
                return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a shape, got none", (*d)->name,
                                lc_op_arg_name(*d, in, i));
            continue;
        }
        if (ndims[i] < 1 || ndims[i] > LC_MAX_DIMS)
            return lc_error(LC_ERR_SHAPE, "%s: %s: expected 1..%d dimensions, got %d", (*d)->name,
                            lc_op_arg_name(*d, in, i), LC_MAX_DIMS, ndims[i]);
        in->ndim[i] = ndims[i];
        in->shape[i] = shapes[i];
    }
    return LC_OK;
}

lc_status lc_op_infer_shape(const char *op, int ninputs, const char *const *names, const int *ndims,
                            const int64_t *const *shapes, const lc_graph_attrs *attrs, int *out_ndim,
                            int64_t *out_shape) {
    const lc_op_def *d;
    lc_op_operands in;
    if (!out_ndim || !out_shape) return lc_error(LC_ERR_INVALID_ARGUMENT, "op_infer_shape: expected output pointers");
    lc_status st = lc_op_caller_operands("op_infer_shape", op, ninputs, names, ndims, shapes, LC_DTYPE_F32, &d, &in);
    if (st != LC_OK) return st;
    lc_graph_attrs resolved;
    if ((st = lc_op_check_attrs(d, d->name, 0, attrs, &resolved)) != LC_OK) return st;
    return lc_op_infer(d, &in, &resolved, out_ndim, out_shape);
}

lc_status lc_op_work_of(const char *op, int ninputs, const int *ndims, const int64_t *const *shapes,
                        const lc_graph_attrs *attrs, lc_dtype dtype, double *flops, double *bytes) {
    const lc_op_def *d;
    lc_op_operands in;
    if (!flops || !bytes) return lc_error(LC_ERR_INVALID_ARGUMENT, "op_work: expected output pointers");
    if (!lc_dtype_traits_of(dtype)) return lc_error(LC_ERR_DTYPE, "op_work: dtype: unknown code %d", (int)dtype);
    lc_status st = lc_op_caller_operands("op_work", op, ninputs, NULL, ndims, shapes, dtype, &d, &in);
    if (st != LC_OK) return st;
    lc_graph_attrs resolved;
    int ond = 0;
    int64_t os[LC_MAX_DIMS];
    if ((st = lc_op_check_attrs(d, d->name, 0, attrs, &resolved)) != LC_OK ||
        (st = lc_op_infer(d, &in, &resolved, &ond, os)) != LC_OK)
        return st;
    const lc_op_work w = d->work(&in, &resolved, ond, os);
    *flops = w.flops;
    *bytes = w.bytes;
    return LC_OK;
}

unsigned lc_op_dtypes(const char *op, lc_device device) {
    const lc_op_def *d = op ? lc_op_find(op) : NULL;
    if (!d) return 0;
    if (device == LC_DEVICE_AUTO) return lc_op_dtype_mask(d);
    if (device == LC_DEVICE_CPU) return d->dtypes[LC_OP_BACKEND_CPU];
    if (device == LC_DEVICE_CUDA) return d->dtypes[LC_OP_BACKEND_CUDA];
    return 0;
}

int lc_op_takes_dtype(const char *op, lc_dtype dtype) {
    if ((int)dtype < 0 || dtype >= LC_DTYPE_COUNT) return 0;
    return (lc_op_dtypes(op, LC_DEVICE_AUTO) & LC_DT(dtype)) != 0;
}
