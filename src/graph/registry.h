/* registry.h — the graph layer's operator registry (internal): one schema per op with its public
 * description (lc_graph_op_info), the backend op it runs as, its attribute defaults and its
 * shape-relation function, and the checks shared by the builder (graph.c) and the validation passes
 * (validate.c): arity, attributes, dtypes, ranks/layout, shape relations.
 * Every check sets lc_error() with "<prefix>: input 1 'b' (value 'w'): expected ..., got ..." and
 * returns its status. Tests: tests/c/test_graph.c, tests/python/test_graph.py. */
#ifndef LC_GRAPH_REGISTRY_H
#define LC_GRAPH_REGISTRY_H

#include "core/backend.h"
#include "lightning_core/graph.h"

/* What the checks see of a node's inputs. */
typedef struct lc_graph_operands {
    int n;
    const char *value_names[LC_GRAPH_MAX_INPUTS];
    int ndim[LC_GRAPH_MAX_INPUTS];
    const int64_t *shape[LC_GRAPH_MAX_INPUTS];
    lc_dtype dtype[LC_GRAPH_MAX_INPUTS];
} lc_graph_operands;

typedef struct lc_graph_schema lc_graph_schema;

/* Checks the shape relations (ranks already checked) and writes the output shape. */
typedef lc_status (*lc_graph_infer_fn)(const lc_graph_schema *s, const char *prefix, const lc_graph_operands *in,
                                       const lc_graph_attrs *attrs, int *out_ndim, int64_t *out_shape);

struct lc_graph_schema {
    lc_graph_op_info info;
    lc_op backend_op;
    lc_graph_attrs defaults; /* values of the attributes it takes when unset */
    lc_graph_infer_fn infer;
    /* Why the CUDA kernels cannot take these operands (NULL: they can); the op then runs on the CPU
     * (mirrors the ops layer's gpu_limit). NULL function: no shape limit. */
    const char *(*gpu_limit)(const lc_graph_operands *in);
};

int lc_graph_schema_count(void);
const lc_graph_schema *lc_graph_schema_at(int i);
const lc_graph_schema *lc_graph_schema_find(const char *name, int *index);

/* "input 1 'b' (value 'w')" into buf. */
void lc_graph_describe_input(char *buf, size_t size, const lc_graph_schema *s, const lc_graph_operands *in, int i);
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

/* 1 when the backend built for `device` supports the schema's backend op at dtype. */
int lc_graph_schema_supported(const lc_graph_schema *s, lc_device device, lc_dtype dtype);

#endif
