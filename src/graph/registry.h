/* registry.h — the graph layer's operator registry (internal): the op table's graph ops (op_table.h,
 * LC_OPF_GRAPH; graph op index == op id) seen as schemas, with the checks shared by the builder
 * (graph.c) and the validation passes (validate.c): arity, attributes, dtypes, ranks/layout, shape
 * relations — all the table's, in their graph form.
 * Every check sets lc_error() with "<prefix>: input 1 'b' (value 'w'): expected ..., got ..." and
 * returns its status. Tests: tests/c/test_graph.c, tests/c/test_op_table.c, tests/python/test_graph.py. */
#ifndef LC_GRAPH_REGISTRY_H
#define LC_GRAPH_REGISTRY_H

#include "core/backend.h"
#include "core/op_table.h"
#include "lightning_core/graph.h"

/* A graph op's schema is its op-table entry. */
typedef lc_op_def lc_graph_schema;
/* What the checks see of a node's inputs (graph form: set graph = 1, value_names). */
typedef lc_op_operands lc_graph_operands;

int lc_graph_schema_count(void);
const lc_graph_schema *lc_graph_schema_at(int i);
/* The graph op named `name` (NULL when none; *index = its graph index or -1). */
const lc_graph_schema *lc_graph_schema_find(const char *name, int *index);

/* "[2, 3, 4]" into buf. */
void lc_graph_format_shape(char *buf, size_t size, int ndim, const int64_t *shape);

/* Input count within [min_inputs, max_inputs] (LC_ERR_SHAPE). */
lc_status lc_graph_check_arity(const lc_graph_schema *s, const char *prefix, int ninputs);
/* Attributes: only ones the op takes, required ones given, values in range (LC_ERR_INVALID_ARGUMENT).
 * `resolved` (may be NULL) receives `given` with defaults filled in. given may be NULL (nothing set). */
lc_status lc_graph_check_attrs(const lc_graph_schema *s, const char *prefix, const lc_graph_attrs *given,
                               lc_graph_attrs *resolved);
/* Every input of one dtype the op takes (LC_ERR_DTYPE). */
lc_status lc_graph_check_dtypes(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in);
/* Every input of the rank its layout needs (LC_ERR_SHAPE). */
lc_status lc_graph_check_ranks(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in);
/* The shape rule (ranks checked first) and the output shape. */
lc_status lc_graph_infer(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                         const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape);

/* 1 when the backend built for `device` has a kernel for the op at dtype (lc_op_supported). */
int lc_graph_schema_supported(const lc_graph_schema *s, lc_device device, lc_dtype dtype);

#endif
