/* graph_internal.h — the graph IR's structs (internal), shared by the builder and queries (graph.c) and
 * the validation passes (validate.c). Values and nodes live in growable arrays indexed by id; nodes are
 * in program order. Tests: tests/c/test_graph.c. */
#ifndef LC_GRAPH_INTERNAL_H
#define LC_GRAPH_INTERNAL_H

#include "graph/registry.h"
#include "lightning_core/graph.h"

typedef struct lc_graph_value {
    char *name;
    int ndim;
    int64_t shape[LC_MAX_DIMS];
    lc_dtype dtype;
    lc_graph_value_kind kind;
    int is_output;
    int32_t producer;    /* first node writing it; -1 for inputs and constants */
    lc_tensor_t *tensor; /* constants: the graph's own view */
} lc_graph_value;

typedef struct lc_graph_node {
    char *name;
    char *op;
    const lc_graph_schema *schema; /* NULL: an op the registry lacks (raw mode) */
    int op_index;
    int ninputs;
    lc_value_id inputs[LC_GRAPH_MAX_INPUTS];
    lc_value_id output;
    lc_graph_attrs attrs;
    int checked;
} lc_graph_node;

struct lc_graph {
    lc_graph_value *values;
    int32_t nvalues, cap_values;
    lc_graph_node *nodes;
    int32_t nnodes, cap_nodes;
    lc_value_id *outputs;
    int32_t noutputs, cap_outputs;
    /* name -> id: open-addressing tables (linear probing, power-of-two capacity, at most half full; -1 empty)
     * over values[].name and nodes[].name, so that name checks and lookups take O(1), not a scan */
    int32_t *value_index, *node_index;
    uint32_t value_index_cap, node_index_cap;
    uint64_t version; /* bumped by every change above (graph.c); lc_graph_version */
};

static inline int lc_graph_value_ok(const lc_graph_t *g, lc_value_id v) { return v >= 0 && v < g->nvalues; }

/* The node's operands as the registry's checks see them, when every input id names a value (else 0). */
int lc_graph_node_operands(const lc_graph_t *g, const lc_graph_node *n, lc_graph_operands *in);

/* Why the CUDA kernels cannot take this node's operands (the schema's gpu_limit), or NULL: also NULL for a
 * node without a schema or with malformed operands (the validation passes report those). */
const char *lc_graph_node_gpu_limit(const lc_graph_t *g, const lc_graph_node *n);

/* Kahn's algorithm over producer edges (node j reads a value whose producer is node p: edge p -> j; a
 * node reading its own output is a self-loop, so it is never ordered), ties in program order, O(nodes +
 * edges): writes the ordered nodes to order[] and each node's unresolved in-degree to indegree[] (both
 * node_count long); returns how many nodes were ordered (< node_count: a cycle or a node downstream of
 * one), or -1 when out of memory. Input ids that name no value are skipped. */
int32_t lc_graph_topo_sort(const lc_graph_t *g, int32_t *order, int32_t *indegree);

/* After lc_graph_topo_sort left nodes unordered: one node on a cycle (the first unordered node's chain of
 * unordered producers, followed until it repeats), or -1 when every node was ordered. O(nodes). */
int32_t lc_graph_cycle_node(const lc_graph_t *g, const int32_t *indegree);

#endif
