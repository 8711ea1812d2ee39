/* registry.c — the operator registry of the graph layer: the op table's graph ops (op_table.c holds the
 * records: inputs and ranks, dtypes, layout, shape rule, attributes and defaults, in-place permission,
 * limits), their public description (lc_graph_op_info), lookup by name, backend support (the table's
 * masks), and the graph form of the table's checks (prefix "node 'x' (op)", inputs named with their
 * values). Tests: tests/c/test_graph.c, tests/c/test_op_table.c, tests/python/test_graph.py. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "graph/registry.h"

void lc_graph_format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    lc_op_format_shape(buf, size, ndim, shape);
}

/* Graph ops come first in the table (op_table.h): their count is the first op without LC_OPF_GRAPH. */
int lc_graph_schema_count(void) {
    int n = 0;
    while (n < LC_OP_COUNT && (lc_op_get((lc_op)n)->flags & LC_OPF_GRAPH)) n++;
    return n;
}

const lc_graph_schema *lc_graph_schema_at(int i) {
    return (i >= 0 && i < lc_graph_schema_count()) ? lc_op_get((lc_op)i) : NULL;
}

const lc_graph_schema *lc_graph_schema_find(const char *name, int *index) {
    const lc_op_def *d = lc_op_find(name);
    if (d && !(d->flags & LC_OPF_GRAPH)) d = NULL;
    if (index) *index = d ? (int)d->op : -1;
    return d;
}

int lc_graph_op_count(void) { return lc_graph_schema_count(); }

lc_status lc_graph_op_schema(int i, lc_graph_op_info *out) {
    const int n = lc_graph_schema_count();
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_op_schema: out: expected a pointer, got NULL");
    if (i < 0 || i >= n) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_op_schema: i: expected 0..%d, got %d", n - 1, i);
    const lc_op_def *d = lc_op_get((lc_op)i);
    memset(out, 0, sizeof *out);
    out->name = d->name;
    out->alias_of = d->runs_as != d->op && !(d->flags & LC_OPF_COMPOSITE) ? lc_op_get(d->runs_as)->name : NULL;
    out->min_inputs = d->min_inputs;
    out->max_inputs = d->max_inputs;
    for (int k = 0; k < d->max_inputs && k < LC_GRAPH_MAX_INPUTS; k++) {
        out->input_names[k] = d->input_names[k];
        out->input_ranks[k] = d->input_ranks[k];
    }
    out->output_rank = d->output_rank;
    out->dtypes = lc_op_dtype_mask(d);
    out->layout = (d->flags & LC_OPF_NCHW) ? "nchw" : "row-major";
    out->shape_rule = d->shape_rule;
    out->attrs = d->attrs;
    out->required_attrs = d->required_attrs;
    out->inplace_ok = (d->inplace_inputs & 1u) != 0;
    out->backend_note = d->backend_note;
    return LC_OK;
}

int lc_graph_op_find(const char *name) {
    int i;
    lc_graph_schema_find(name, &i);
    return i;
}

int lc_graph_schema_supported(const lc_graph_schema *s, lc_device device, lc_dtype dtype) {
    return s != NULL && lc_op_supported(s->op, device, dtype);
}

int lc_graph_op_supported(int i, lc_device device, lc_dtype dtype) {
    return lc_graph_schema_supported(lc_graph_schema_at(i), device, dtype);
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

/* ---- the table's checks in their graph form -------------------------------------------------- */

static lc_graph_operands lc_graph_form(const char *prefix, const lc_graph_operands *in) {
    lc_graph_operands g = *in;
    g.prefix = prefix;
    g.graph = 1;
    return g;
}

lc_status lc_graph_check_arity(const lc_graph_schema *s, const char *prefix, int ninputs) {
    return lc_op_check_arity(s, prefix, ninputs);
}

lc_status lc_graph_check_attrs(const lc_graph_schema *s, const char *prefix, const lc_graph_attrs *given,
                               lc_graph_attrs *resolved) {
    return lc_op_check_attrs(s, prefix, 1, given, resolved);
}

lc_status lc_graph_check_dtypes(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in) {
    const lc_graph_operands g = lc_graph_form(prefix, in);
    return lc_op_check_dtypes(s, &g, NULL);
}

lc_status lc_graph_check_ranks(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in) {
    const lc_graph_operands g = lc_graph_form(prefix, in);
    return lc_op_check_ranks(s, &g);
}

lc_status lc_graph_infer(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                         const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape) {
    const lc_graph_operands g = lc_graph_form(prefix, in);
    return lc_op_infer(s, &g, attrs, out_ndim, out_shape);
}
