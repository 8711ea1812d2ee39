/* graph.c — the graph IR (include/lightning_core/graph.h): the builder (inputs, constants, checked
 * nodes with shape inference through the registry, raw nodes and rewiring for crafted bad graphs,
 * outputs), the queries, the topological order, the stable structural hash, and the seed reason codes.
 * A refused lc_graph_add leaves the graph unchanged: every check and allocation happens before the
 * node is appended. Names are indexed (O(1) checks and lookups); the topological order is O(nodes +
 * edges) and counts a node reading its own output as a cycle.
 * Tests: tests/c/test_graph.c, tests/c/test_plan.c (linear-time guard), tests/python/test_graph.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "graph/graph_internal.h"

/* ---- reason codes ---------------------------------------------------------------------------- */

static const char *const lc_reason_codes[LC_GRAPH_REASON_COUNT][2] = {
    {"fallback_preferred_unsupported", "preferred backend is not supported by schema"},
    {"fallback_preferred_unavailable", "preferred backend is declared but not currently available"},
    {"fallback_planner_optimized", "planner selected non-preferred backend to reduce boundary/sync churn"},
    {"graph_engine_not_lightning",
     "graph execution requested but route_policy.graph resolved to non-lightning engine; deterministic eager fallback"},
    {"graph_shape_unsupported",
     "graph execution requested but shape/kernel contract is outside graph-supported path; deterministic eager fallback"},
    {"torch_unavailable_fallback", "torch route requested but torch runtime unavailable; deterministic lightning fallback"},
};

const char *lc_graph_reason_code(lc_graph_reason reason) {
    if ((int)reason < 0 || reason >= LC_GRAPH_REASON_COUNT) return "invalid";
    return lc_reason_codes[reason][0];
}

const char *lc_graph_reason_description(lc_graph_reason reason) {
    if ((int)reason < 0 || reason >= LC_GRAPH_REASON_COUNT) return "invalid";
    return lc_reason_codes[reason][1];
}

lc_status lc_graph_reason_parse(const char *code, lc_graph_reason *out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_reason_parse: out: expected a pointer, got NULL");
    if (!code) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_reason_parse: code: expected a string, got NULL");
    for (int r = 0; r < LC_GRAPH_REASON_COUNT; r++) {
        if (strcmp(code, lc_reason_codes[r][0]) == 0) {
            *out = (lc_graph_reason)r;
            return LC_OK;
        }
    }
    return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_reason_parse: code: expected a seed reason code, got '%.100s'", code);
}

const char *lc_graph_value_kind_name(lc_graph_value_kind kind) {
    switch (kind) {
    case LC_GRAPH_VALUE_INPUT: return "input";
    case LC_GRAPH_VALUE_CONSTANT: return "constant";
    case LC_GRAPH_VALUE_INTERMEDIATE: return "intermediate";
    default: return "invalid";
    }
}

/* ---- lifetime -------------------------------------------------------------------------------- */

lc_status lc_graph_new(lc_graph_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_new: out: expected a pointer, got NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return lc_error(LC_ERR_OUT_OF_MEMORY, "graph_new: out of host memory");
    return LC_OK;
}

void lc_graph_free(lc_graph_t *g) {
    if (!g) return;
    for (int32_t i = 0; i < g->nvalues; i++) {
        free(g->values[i].name);
        lc_tensor_free(g->values[i].tensor);
    }
    for (int32_t i = 0; i < g->nnodes; i++) {
        free(g->nodes[i].name);
        free(g->nodes[i].op);
    }
    free(g->values);
    free(g->nodes);
    free(g->outputs);
    free(g->value_index);
    free(g->node_index);
    free(g);
}

/* ---- helpers --------------------------------------------------------------------------------- */

static char *lc_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Room for one more element in a growable array. */
static int lc_grow(void **arr, int32_t *cap, int32_t count, size_t elem) {
    if (count < *cap) return 1;
    if (*cap >= INT32_MAX / 2) return 0;
    int32_t ncap = *cap ? 2 * *cap : 16;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p) return 0;
    *arr = p;
    *cap = ncap;
    return 1;
}

/* ---- name index (graph_internal.h): O(1) name checks and lookups ----------------------------- */

static uint32_t lc_name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return (uint32_t)(h ^ (h >> 32));
}

static const char *lc_index_name(const lc_graph_t *g, int nodes, int32_t i) {
    return nodes ? g->nodes[i].name : g->values[i].name;
}

static int32_t lc_index_find(const lc_graph_t *g, int nodes, const char *name) {
    const int32_t *slots = nodes ? g->node_index : g->value_index;
    const uint32_t mask = (nodes ? g->node_index_cap : g->value_index_cap) - 1;
    if (!slots) return -1;
    for (uint32_t h = lc_name_hash(name) & mask;; h = (h + 1) & mask) {
        if (slots[h] < 0) return -1;
        if (strcmp(lc_index_name(g, nodes, slots[h]), name) == 0) return slots[h];
    }
}

static void lc_index_put(int32_t *slots, uint32_t cap, const char *name, int32_t id) {
    uint32_t h = lc_name_hash(name) & (cap - 1);
    while (slots[h] >= 0) h = (h + 1) & (cap - 1);
    slots[h] = id;
}

/* Room in the table for `count` entries (rehashes every existing one, in id order, when it grows). */
static int lc_index_reserve(lc_graph_t *g, int nodes, int32_t count) {
    int32_t **slots = nodes ? &g->node_index : &g->value_index;
    uint32_t *cap = nodes ? &g->node_index_cap : &g->value_index_cap;
    if (*slots && (uint64_t)count * 2 <= *cap) return 1;
    uint64_t ncap = *cap ? *cap : 64;
    while ((uint64_t)count * 2 > ncap) ncap *= 2;
    if (ncap > (UINT32_MAX / 2 + 1u) || ncap > SIZE_MAX / sizeof(int32_t)) return 0;
    int32_t *grown = malloc((size_t)ncap * sizeof *grown);
    if (!grown) return 0;
    for (uint64_t i = 0; i < ncap; i++) grown[i] = -1;
    const int32_t n = nodes ? g->nnodes : g->nvalues;
    for (int32_t i = 0; i < n; i++) lc_index_put(grown, (uint32_t)ncap, lc_index_name(g, nodes, i), i);
    free(*slots);
    *slots = grown;
    *cap = (uint32_t)ncap;
    return 1;
}

/* Removes the most recently inserted entry `id` (undo of an append): with linear probing and no later
 * insertion, no other entry's probe sequence runs through its slot, so emptying it is exact. */
static void lc_index_drop_last(lc_graph_t *g, int nodes, int32_t id) {
    int32_t *slots = nodes ? g->node_index : g->value_index;
    const uint32_t mask = (nodes ? g->node_index_cap : g->value_index_cap) - 1;
    if (!slots) return;
    for (uint32_t h = lc_name_hash(lc_index_name(g, nodes, id)) & mask; slots[h] >= 0; h = (h + 1) & mask)
        if (slots[h] == id) {
            slots[h] = -1;
            return;
        }
}

/* Re-raises the last error with a prefix (the message is copied first: lc_error writes the same buffer). */
static lc_status lc_rewrap(lc_status st, const char *prefix) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lc_last_error());
    return lc_error(st, "%s: %s", prefix, msg);
}

static int lc_name_taken(const lc_graph_t *g, const char *name) {
    return lc_graph_find_value(g, name) >= 0 || lc_graph_find_node(g, name) >= 0;
}

static lc_status lc_check_graph(const char *fn, const lc_graph_t *g) {
    if (!g) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: g: expected a graph, got NULL", fn);
    return LC_OK;
}

static lc_status lc_check_new_name(const char *fn, const char *what, const lc_graph_t *g, const char *name) {
    if (!name || !name[0]) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a non-empty name, got %s", fn, what,
                                           name ? "\"\"" : "NULL");
    if (lc_name_taken(g, name))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: '%.100s' already names a value or node of this graph", fn, what,
                        name);
    return LC_OK;
}

/* Appends a value (name copied, indexed); *out its id. */
static lc_status lc_append_value(const char *fn, lc_graph_t *g, const char *name, lc_dtype dtype, int ndim,
                                 const int64_t *shape, lc_graph_value_kind kind, int32_t producer, lc_value_id *out) {
    if (!lc_grow((void **)&g->values, &g->cap_values, g->nvalues, sizeof *g->values) ||
        !lc_index_reserve(g, 0, g->nvalues + 1))
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    char *copy = lc_strdup(name);
    if (!copy) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    lc_graph_value *v = &g->values[g->nvalues];
    memset(v, 0, sizeof *v);
    v->name = copy;
    v->ndim = ndim;
    memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
    v->dtype = dtype;
    v->kind = kind;
    v->producer = producer;
    lc_index_put(g->value_index, g->value_index_cap, v->name, g->nvalues);
    *out = g->nvalues++;
    g->version++;
    return LC_OK;
}

/* ---- inputs, constants ----------------------------------------------------------------------- */

/* The dtypes a graph value may have: the four float dtypes (which op takes which: the op table). */
static int lc_graph_float_dtype(lc_dtype d) {
    return d == LC_DTYPE_F32 || d == LC_DTYPE_F64 || d == LC_DTYPE_F16 || d == LC_DTYPE_BF16;
}

lc_status lc_graph_input_typed(lc_graph_t *g, const char *name, lc_dtype dtype, int ndim, const int64_t *shape,
                               lc_value_id *out) {
    const char *fn = "graph.input";
    lc_status st;
    if ((st = lc_check_graph(fn, g)) != LC_OK) return st;
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", fn);
    if ((st = lc_check_new_name(fn, "name", g, name)) != LC_OK) return st;
    if (!lc_graph_float_dtype(dtype))
        return lc_error(LC_ERR_DTYPE, "%s: dtype: expected float32, float64, float16 or bfloat16, got code %d", fn, (int)dtype);
    if (ndim > 0 && !shape) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: shape: expected %d dims, got NULL", fn, ndim);
    if ((st = lc_shape_validate("shape", ndim, shape)) != LC_OK) {
        char prefix[160];
        snprintf(prefix, sizeof prefix, "%s: input '%.100s'", fn, name);
        return lc_rewrap(st, prefix);
    }
    return lc_append_value(fn, g, name, dtype, ndim, shape, LC_GRAPH_VALUE_INPUT, -1, out);
}

lc_status lc_graph_input(lc_graph_t *g, const char *name, int ndim, const int64_t *shape, lc_value_id *out) {
    return lc_graph_input_typed(g, name, LC_DTYPE_F32, ndim, shape, out);
}

lc_status lc_graph_constant(lc_graph_t *g, const char *name, const lc_tensor_t *t, lc_value_id *out) {
    const char *fn = "graph.constant";
    lc_status st;
    if ((st = lc_check_graph(fn, g)) != LC_OK) return st;
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", fn);
    if ((st = lc_check_new_name(fn, "name", g, name)) != LC_OK) return st;
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: t: expected a tensor, got NULL", fn);
    if ((st = lc_tensor_validate(t)) != LC_OK) return lc_rewrap(st, "graph.constant: t");
    lc_tensor_t *view = NULL;
    st = lc_tensor_view(t, lc_tensor_ndim(t), lc_tensor_shape(t), lc_tensor_strides(t), lc_tensor_offset(t),
                        LC_DEVICE_AUTO, &view);
    if (st != LC_OK) return lc_rewrap(st, "graph.constant: t");
    st = lc_append_value(fn, g, name, lc_tensor_dtype(t), lc_tensor_ndim(t), lc_tensor_shape(t), LC_GRAPH_VALUE_CONSTANT,
                         -1, out);
    if (st != LC_OK) {
        lc_tensor_free(view);
        return st;
    }
    g->values[*out].tensor = view;
    return LC_OK;
}

/* ---- nodes ----------------------------------------------------------------------------------- */

/* The node name into buf: the caller's, or "<op>_<index>" (with a suffix if taken). */
static lc_status lc_node_name(const char *fn, const lc_graph_t *g, const char *op, const char *given, char *buf,
                              size_t size) {
    if (given) {
        lc_status st = lc_check_new_name(fn, "node_name", g, given);
        if (st != LC_OK) return st;
        if (strlen(given) >= size)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: node_name: expected at most %zu characters, got %zu", fn,
                            size - 1, strlen(given));
        memcpy(buf, given, strlen(given) + 1);
        return LC_OK;
    }
    snprintf(buf, size, "%.100s_%d", op, (int)g->nnodes);
    for (int k = 1; lc_name_taken(g, buf); k++) snprintf(buf, size, "%.100s_%d_%d", op, (int)g->nnodes, k);
    return LC_OK;
}

/* Appends the node (names copied, indexed; the output value already exists; the caller reserved room in
 * g->nodes and the node index). */
static lc_status lc_append_node(const char *fn, lc_graph_t *g, const char *name, const char *op,
                                const lc_graph_schema *schema, int op_index, const lc_value_id *inputs, int ninputs,
                                lc_value_id output, const lc_graph_attrs *attrs, int checked) {
    char *ncopy = lc_strdup(name), *ocopy = lc_strdup(op);
    if (!ncopy || !ocopy) {
        free(ncopy);
        free(ocopy);
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    }
    lc_graph_node *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof *n);
    n->name = ncopy;
    n->op = ocopy;
    n->schema = schema;
    n->op_index = op_index;
    n->ninputs = ninputs;
    if (ninputs > 0) memcpy(n->inputs, inputs, (size_t)ninputs * sizeof *inputs);
    n->output = output;
    if (attrs) n->attrs = *attrs;
    n->checked = checked;
    lc_index_put(g->node_index, g->node_index_cap, n->name, g->nnodes);
    g->nnodes++;
    g->version++;
    return LC_OK;
}

/* Drops the value just appended (undo when appending its node failed). */
static void lc_pop_value(lc_graph_t *g) {
    lc_index_drop_last(g, 0, g->nvalues - 1);
    g->nvalues--;
    free(g->values[g->nvalues].name);
    g->version++;
}

static lc_status lc_check_node_args(const char *fn, const lc_graph_t *g, const char *op, const lc_value_id *inputs,
                                    int ninputs, lc_value_id *out) {
    lc_status st;
    if ((st = lc_check_graph(fn, g)) != LC_OK) return st;
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", fn);
    if (!op || !op[0]) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: op: expected an op name, got %s", fn, op ? "\"\"" : "NULL");
    if (ninputs < 0 || ninputs > LC_GRAPH_MAX_INPUTS)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: ninputs: expected 0..%d, got %d", fn, LC_GRAPH_MAX_INPUTS, ninputs);
    if (ninputs > 0 && !inputs)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: inputs: expected %d value ids, got NULL", fn, ninputs);
    return LC_OK;
}

lc_status lc_graph_add(lc_graph_t *g, const char *op, const lc_value_id *inputs, int ninputs,
                       const lc_graph_attrs *attrs, const char *node_name, lc_value_id *out) {
    const char *fn = "graph.add";
    lc_status st;
    if ((st = lc_check_node_args(fn, g, op, inputs, ninputs, out)) != LC_OK) return st;
    int op_index;
    const lc_graph_schema *s = lc_graph_schema_find(op, &op_index);
    if (!s) {
        char known[512];
        size_t used = 0;
        known[0] = '\0';
        for (int i = 0; i < lc_graph_schema_count() && used < sizeof known; i++)
            used += (size_t)snprintf(known + used, sizeof known - used, i ? ", %s" : "%s", lc_graph_schema_at(i)->name);
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: op: expected one of %s, got '%.100s'", fn, known, op);
    }
    char name[256], prefix[400];
    if ((st = lc_node_name(fn, g, op, node_name, name, sizeof name)) != LC_OK) return st;
    snprintf(prefix, sizeof prefix, "%s: node '%s' (%s)", fn, name, op);
    lc_graph_operands in = {.n = ninputs};
    for (int i = 0; i < ninputs; i++) {
        if (!lc_graph_value_ok(g, inputs[i]))
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: inputs[%d]: expected a value id 0..%d, got %d", prefix, i,
                            (int)g->nvalues - 1, (int)inputs[i]);
        const lc_graph_value *v = &g->values[inputs[i]];
        in.value_names[i] = v->name;
        in.ndim[i] = v->ndim;
        in.shape[i] = v->shape;
        in.dtype[i] = v->dtype;
    }
    lc_graph_attrs resolved;
    int out_ndim = 0;
    int64_t out_shape[LC_MAX_DIMS];
    if ((st = lc_graph_check_arity(s, prefix, ninputs)) != LC_OK ||
        (st = lc_graph_check_attrs(s, prefix, attrs, &resolved)) != LC_OK ||
        (st = lc_graph_check_dtypes(s, prefix, &in)) != LC_OK || (st = lc_graph_check_ranks(s, prefix, &in)) != LC_OK ||
        (st = lc_graph_infer(s, prefix, &in, &resolved, &out_ndim, out_shape)) != LC_OK)
        return st;
    if ((st = lc_shape_validate("output shape", out_ndim, out_shape)) != LC_OK)
        return lc_rewrap(LC_ERR_SHAPE, prefix);
    if (!lc_grow((void **)&g->nodes, &g->cap_nodes, g->nnodes, sizeof *g->nodes) || !lc_index_reserve(g, 1, g->nnodes + 1))
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    lc_value_id vid;
    if ((st = lc_append_value(fn, g, name, in.dtype[0], out_ndim, out_shape, LC_GRAPH_VALUE_INTERMEDIATE, g->nnodes,
                              &vid)) != LC_OK)
        return st;
    if ((st = lc_append_node(fn, g, name, op, s, op_index, inputs, ninputs, vid, &resolved, 1)) != LC_OK) {
        lc_pop_value(g);
        return st;
    }
    *out = vid;
    return LC_OK;
}

lc_status lc_graph_add_unchecked(lc_graph_t *g, const char *op, const lc_value_id *inputs, int ninputs,
                                 const lc_graph_attrs *attrs, const char *node_name, int out_ndim,
                                 const int64_t *out_shape, lc_dtype out_dtype, lc_value_id out_value,
                                 lc_value_id *out) {
    const char *fn = "graph.add_unchecked";
    lc_status st;
    if ((st = lc_check_node_args(fn, g, op, inputs, ninputs, out)) != LC_OK) return st;
    char name[256];
    if ((st = lc_node_name(fn, g, op, node_name, name, sizeof name)) != LC_OK) return st;
    if (out_value >= 0 && !lc_graph_value_ok(g, out_value))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out_value: expected an existing value id 0..%d or -1, got %d", fn,
                        (int)g->nvalues - 1, (int)out_value);
    if (out_value < 0) {
        if (out_ndim > 0 && !out_shape)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out_shape: expected %d dims, got NULL", fn, out_ndim);
        if ((st = lc_shape_validate("out_shape", out_ndim, out_shape)) != LC_OK)
            return lc_rewrap(st, fn);
        if (!lc_graph_float_dtype(out_dtype))
            return lc_error(LC_ERR_DTYPE, "%s: out_dtype: expected float32, float64, float16 or bfloat16, got code %d", fn,
                            (int)out_dtype);
    }
    if (!lc_grow((void **)&g->nodes, &g->cap_nodes, g->nnodes, sizeof *g->nodes) || !lc_index_reserve(g, 1, g->nnodes + 1))
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    int op_index;
    const lc_graph_schema *s = lc_graph_schema_find(op, &op_index);
    lc_value_id vid = out_value;
    if (out_value < 0 && (st = lc_append_value(fn, g, name, out_dtype, out_ndim, out_shape, LC_GRAPH_VALUE_INTERMEDIATE,
                                               g->nnodes, &vid)) != LC_OK)
        return st;
    if ((st = lc_append_node(fn, g, name, op, s, op_index, inputs, ninputs, vid, attrs, 0)) != LC_OK) {
        if (out_value < 0) lc_pop_value(g);
        return st;
    }
    if (g->values[vid].producer < 0 && g->values[vid].kind == LC_GRAPH_VALUE_INTERMEDIATE) g->values[vid].producer = g->nnodes - 1;
    *out = vid;
    return LC_OK;
}

lc_status lc_graph_rewire_unchecked(lc_graph_t *g, int32_t node, int slot, lc_value_id value) {
    const char *fn = "graph.rewire_unchecked";
    lc_status st;
    if ((st = lc_check_graph(fn, g)) != LC_OK) return st;
    if (node < 0 || node >= g->nnodes)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: node: expected a node index 0..%d (the graph has %d nodes), got %d", fn,
                        (int)g->nnodes - 1, (int)g->nnodes, (int)node);
    if (slot < 0 || slot >= g->nodes[node].ninputs)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: slot: expected 0..%d (node '%s' has %d inputs), got %d", fn,
                        g->nodes[node].ninputs - 1, g->nodes[node].name, g->nodes[node].ninputs, slot);
    g->nodes[node].inputs[slot] = value;
    g->version++;
    return LC_OK;
}

lc_status lc_graph_mark_output(lc_graph_t *g, lc_value_id v) {
    const char *fn = "graph.mark_output";
    lc_status st;
    if ((st = lc_check_graph(fn, g)) != LC_OK) return st;
    if (!lc_graph_value_ok(g, v))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: v: expected a value id 0..%d, got %d", fn, (int)g->nvalues - 1, (int)v);
    if (g->values[v].is_output) return LC_OK;
    if (!lc_grow((void **)&g->outputs, &g->cap_outputs, g->noutputs, sizeof *g->outputs))
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    g->outputs[g->noutputs++] = v;
    g->values[v].is_output = 1;
    g->version++;
    return LC_OK;
}

/* ---- queries --------------------------------------------------------------------------------- */

int32_t lc_graph_node_count(const lc_graph_t *g) { return g ? g->nnodes : 0; }
int32_t lc_graph_value_count(const lc_graph_t *g) { return g ? g->nvalues : 0; }
int32_t lc_graph_output_count(const lc_graph_t *g) { return g ? g->noutputs : 0; }
uint64_t lc_graph_version(const lc_graph_t *g) { return g ? g->version : 0; }

lc_value_id lc_graph_output(const lc_graph_t *g, int32_t i) {
    return (g && i >= 0 && i < g->noutputs) ? g->outputs[i] : -1;
}

lc_status lc_graph_get_node(const lc_graph_t *g, int32_t node, lc_graph_node_info *out) {
    const char *fn = "graph.node";
    lc_status st;
    if ((st = lc_check_graph(fn, g)) != LC_OK) return st;
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", fn);
    if (node < 0 || node >= g->nnodes)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: node: expected a node index 0..%d (the graph has %d nodes), got %d", fn,
                        (int)g->nnodes - 1, (int)g->nnodes, (int)node);
    const lc_graph_node *n = &g->nodes[node];
    memset(out, 0, sizeof *out);
    out->op = n->op;
    out->name = n->name;
    out->op_index = n->op_index;
    out->ninputs = n->ninputs;
    for (int i = 0; i < LC_GRAPH_MAX_INPUTS; i++) out->inputs[i] = i < n->ninputs ? n->inputs[i] : -1;
    out->output = n->output;
    out->attrs = n->attrs;
    out->checked = n->checked;
    return LC_OK;
}

lc_status lc_graph_get_value(const lc_graph_t *g, lc_value_id v, lc_graph_value_info *out) {
    const char *fn = "graph.value";
    lc_status st;
    if ((st = lc_check_graph(fn, g)) != LC_OK) return st;
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", fn);
    if (!lc_graph_value_ok(g, v))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: v: expected a value id 0..%d, got %d", fn, (int)g->nvalues - 1, (int)v);
    const lc_graph_value *val = &g->values[v];
    memset(out, 0, sizeof *out);
    out->name = val->name;
    out->ndim = val->ndim;
    memcpy(out->shape, val->shape, sizeof out->shape);
    out->dtype = val->dtype;
    out->kind = val->kind;
    out->is_output = val->is_output;
    out->producer = val->producer;
    out->tensor = val->tensor;
    return LC_OK;
}

lc_value_id lc_graph_find_value(const lc_graph_t *g, const char *name) {
    if (!g || !name) return -1;
    return lc_index_find(g, 0, name);
}

int32_t lc_graph_find_node(const lc_graph_t *g, const char *name) {
    if (!g || !name) return -1;
    return lc_index_find(g, 1, name);
}

/* ---- topological order ----------------------------------------------------------------------- */

/* Min-heap of node indices (ties in program order). */
static void lc_heap_push(int32_t *h, int32_t *n, int32_t v) {
    int32_t i = (*n)++;
    h[i] = v;
    while (i > 0 && h[(i - 1) / 2] > h[i]) {
        int32_t p = (i - 1) / 2, t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static int32_t lc_heap_pop(int32_t *h, int32_t *n) {
    int32_t top = h[0];
    h[0] = h[--(*n)];
    for (int32_t i = 0;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l] < h[m]) m = l;
        if (r < *n && h[r] < h[m]) m = r;
        if (m == i) break;
        int32_t t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
    return top;
}

/* The node a value read as an input depends on (its producer), or -1 (graph input/constant, bad id). */
static int32_t lc_dep(const lc_graph_t *g, lc_value_id v) { return lc_graph_value_ok(g, v) ? g->values[v].producer : -1; }

int32_t lc_graph_topo_sort(const lc_graph_t *g, int32_t *order, int32_t *indegree) {
    const int32_t n = g->nnodes;
    /* consumer lists as one CSR array: start[p]..start[p+1] are the edges p -> j (one per input slot) */
    size_t *start = calloc((size_t)n + 2, sizeof *start);
    if (!start) return -1;
    for (int32_t i = 0; i < n; i++) {
        indegree[i] = 0;
        const lc_graph_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->ninputs; k++) {
            const int32_t p = lc_dep(g, nd->inputs[k]);
            if (p < 0) continue;
            indegree[i]++; /* p == i (a node reading its own output) counts: a self-loop never resolves */
            start[p + 2]++;
        }
    }
    for (int32_t i = 0; i < n; i++) start[i + 2] += start[i + 1];
    int32_t *edge = malloc((start[n + 1] > 0 ? start[n + 1] : 1) * sizeof *edge);
    int32_t *heap = malloc((size_t)(n > 0 ? n : 1) * sizeof *heap);
    if (!edge || !heap) {
        free(start), free(edge), free(heap);
        return -1;
    }
    for (int32_t i = 0; i < n; i++) {
        const lc_graph_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->ninputs; k++) {
            const int32_t p = lc_dep(g, nd->inputs[k]);
            if (p >= 0) edge[start[p + 1]++] = i; /* start[p + 1] ends as the end of p's list */
        }
    }
    /* now start[p]..start[p + 1] is p's list */
    int32_t hn = 0, done = 0;
    for (int32_t i = 0; i < n; i++)
        if (indegree[i] == 0) lc_heap_push(heap, &hn, i);
    while (hn > 0) {
        const int32_t u = lc_heap_pop(heap, &hn);
        order[done++] = u;
        for (size_t e = start[u]; e < start[u + 1]; e++)
            if (--indegree[edge[e]] == 0) lc_heap_push(heap, &hn, edge[e]);
    }
    free(start), free(edge), free(heap);
    return done;
}

int32_t lc_graph_cycle_node(const lc_graph_t *g, const int32_t *indegree) {
    int32_t cur = 0;
    while (cur < g->nnodes && indegree[cur] == 0) cur++;
    if (cur == g->nnodes) return -1;
    char *seen = calloc((size_t)g->nnodes, 1);
    if (!seen) return cur; /* out of memory: a node downstream of a cycle at worst */
    while (!seen[cur]) {
        seen[cur] = 1;
        int32_t next = -1;
        const lc_graph_node *nd = &g->nodes[cur];
        for (int k = 0; k < nd->ninputs && next < 0; k++) {
            const int32_t p = lc_dep(g, nd->inputs[k]);
            if (p >= 0 && indegree[p] > 0) next = p;
        }
        if (next < 0) break; /* cannot happen: an unordered node has an unordered producer */
        cur = next;
    }
    free(seen);
    return cur;
}

lc_status lc_graph_topo_order(const lc_graph_t *g, int32_t *order, int32_t capacity) {
    const char *fn = "graph.topo_order";
    lc_status st;
    if ((st = lc_check_graph(fn, g)) != LC_OK) return st;
    if (capacity < g->nnodes || (g->nnodes > 0 && !order))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: order: expected room for %d node ids, got %d", fn, (int)g->nnodes,
                        order ? (int)capacity : 0);
    for (int32_t i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].ninputs; k++)
            if (!lc_graph_value_ok(g, g->nodes[i].inputs[k]))
                return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: node '%s': input %d names no value (id %d)", fn,
                                g->nodes[i].name, k, (int)g->nodes[i].inputs[k]);
    int32_t *indegree = malloc((size_t)(g->nnodes > 0 ? g->nnodes : 1) * sizeof *indegree);
    if (!indegree) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    const int32_t done = lc_graph_topo_sort(g, order, indegree);
    if (done < 0) {
        free(indegree);
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    }
    if (done < g->nnodes) {
        const int32_t stuck = lc_graph_cycle_node(g, indegree);
        free(indegree);
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: node '%s' depends on itself through a cycle (%d of %d nodes ordered)",
                        fn, g->nodes[stuck].name, (int)done, (int)g->nnodes);
    }
    free(indegree);
    return LC_OK;
}

/* ---- hash ------------------------------------------------------------------------------------ */

typedef struct lc_fnv {
    uint64_t h;
} lc_fnv;

static void lc_fnv_u64(lc_fnv *f, uint64_t x) {
    for (int i = 0; i < 8; i++) { /* little-endian byte order, whatever the host */
        f->h ^= (uint8_t)(x >> (8 * i));
        f->h *= 0x100000001b3ull;
    }
}

static void lc_fnv_str(lc_fnv *f, const char *s) {
    for (; *s; s++) {
        f->h ^= (uint8_t)*s;
        f->h *= 0x100000001b3ull;
    }
    lc_fnv_u64(f, 0xffu);
}

static void lc_fnv_attrs(lc_fnv *f, const lc_graph_attrs *a, int with_set) {
    uint64_t eps_bits;
    memcpy(&eps_bits, &a->eps, sizeof eps_bits);
    const uint64_t fields[] = {with_set ? a->set : 0u, (uint64_t)(int64_t)a->stride_h, (uint64_t)(int64_t)a->stride_w,
                               (uint64_t)(int64_t)a->pad_h, (uint64_t)(int64_t)a->pad_w, (uint64_t)(int64_t)a->causal,
                               eps_bits, (uint64_t)(int64_t)a->gelu_approx, (uint64_t)a->seq, (uint64_t)a->head_dim};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) lc_fnv_u64(f, fields[i]);
}

uint64_t lc_graph_hash(const lc_graph_t *g) {
    if (!g) return 0;
    lc_fnv f = {0xcbf29ce484222325ull};
    lc_fnv_str(&f, "lc_graph/1");
    lc_fnv_u64(&f, (uint64_t)g->nvalues);
    for (int32_t i = 0; i < g->nvalues; i++) {
        const lc_graph_value *v = &g->values[i];
        lc_fnv_u64(&f, (uint64_t)v->kind);
        lc_fnv_u64(&f, (uint64_t)v->dtype);
        lc_fnv_u64(&f, (uint64_t)v->ndim);
        for (int d = 0; d < v->ndim; d++) lc_fnv_u64(&f, (uint64_t)v->shape[d]);
    }
    lc_fnv_u64(&f, (uint64_t)g->nnodes);
    for (int32_t i = 0; i < g->nnodes; i++) {
        const lc_graph_node *n = &g->nodes[i];
        lc_fnv_str(&f, n->op);
        lc_fnv_u64(&f, (uint64_t)n->checked);
        lc_fnv_u64(&f, (uint64_t)n->ninputs);
        for (int k = 0; k < n->ninputs; k++) lc_fnv_u64(&f, (uint64_t)(int64_t)n->inputs[k]);
        lc_fnv_u64(&f, (uint64_t)(int64_t)n->output);
        /* checked nodes: the resolved attributes decide the plan (a default given explicitly hashes equal) */
        lc_fnv_attrs(&f, &n->attrs, !n->checked);
    }
    lc_fnv_u64(&f, (uint64_t)g->noutputs);
    for (int32_t i = 0; i < g->noutputs; i++) lc_fnv_u64(&f, (uint64_t)(int64_t)g->outputs[i]);
    return f.h;
}

int lc_graph_node_operands(const lc_graph_t *g, const lc_graph_node *n, lc_graph_operands *in) {
    memset(in, 0, sizeof *in);
    in->n = n->ninputs;
    for (int i = 0; i < n->ninputs; i++) {
        if (!lc_graph_value_ok(g, n->inputs[i])) return 0;
        const lc_graph_value *v = &g->values[n->inputs[i]];
        in->value_names[i] = v->name;
        in->ndim[i] = v->ndim;
        in->shape[i] = v->shape;
        in->dtype[i] = v->dtype;
    }
    return 1;
}

const char *lc_graph_node_gpu_limit(const lc_graph_t *g, const lc_graph_node *n) {
    const lc_graph_schema *s = n->schema;
    lc_graph_operands in;
    if (!s || !s->gpu_limit || !lc_graph_node_operands(g, n, &in) || in.n == 0) return NULL;
    /* shape limits are judged on well-formed operands only (the other passes report the rest) */
    return lc_graph_check_ranks(s, "backend_capability", &in) == LC_OK ? s->gpu_limit(&in, &n->attrs) : NULL;
}
