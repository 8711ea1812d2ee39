/* validate.c — the graph validation passes and their report (include/lightning_core/graph.h):
 *   schema_contract     each node against its op's schema: known op, input count, attributes, dtypes,
 *                       shape relations, recorded output shape/dtype vs inferred
 *   topology            dangling inputs, cycles, no graph output, nodes/values that reach no output
 *   alias_lifetime      single assignment: no write into inputs/constants, no second writer of a value,
 *                       no read of a value after it was overwritten, no output that is an input/constant
 *   layout_flow         ranks each op's layout needs (NCHW for conv, [rows, cols] for matmul/attention),
 *                       strided constants, constants on a device the run does not use
 *   backend_capability  the requested device is available and has a kernel for every node at its
 *                       dtype/shape, else which device the node falls back to (seed reason codes)
 * Issues come out in pass order, then node order; every issue has its pass, code, severity, node
 * name (NULL: graph-level), value name, seed reason code where one applies, and a message.
 * Tests: tests/c/test_graph.c (a crafted bad graph per pass), tests/python/test_graph.py. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "graph/graph_internal.h"
#include "lightning_core/runtime.h"

/* ---- the code catalogue ---------------------------------------------------------------------- */

#define E LC_GRAPH_SEVERITY_ERROR
#define W LC_GRAPH_SEVERITY_WARNING

static const lc_graph_issue_code_info lc_codes[] = {
    {"schema_contract", "schema_unknown_op", E, "the op is not in the registry"},
    {"schema_contract", "schema_arity", E, "wrong number of inputs for the op"},
    {"schema_contract", "schema_attr", E, "an attribute the op does not take, a required one missing, or out of range"},
    {"schema_contract", "schema_dtype", E, "an input dtype the op does not take, or inputs of mixed dtypes"},
    {"schema_contract", "schema_shape", E, "input shapes break the op's shape relation"},
    {"schema_contract", "schema_output_shape", E, "the node's output value has another shape/dtype than the schema infers"},
    {"topology", "topology_dangling_input", E, "a node input names no value of the graph"},
    {"topology", "topology_cycle", E, "nodes depend on each other in a cycle"},
    {"topology", "topology_no_output", E, "the graph has no output"},
    {"topology", "topology_unused_node", W, "the node's result reaches no graph output (dead code)"},
    {"topology", "topology_unused_value", W, "a graph input or constant no node reads"},
    {"alias_lifetime", "alias_inplace_conflict", E,
     "a node writes a graph input or constant, or a value another node already produced; or a graph output is an "
     "input/constant itself"},
    {"alias_lifetime", "alias_lifetime", E, "a node reads a value after another node overwrote it"},
    {"layout_flow", "layout_rank", E, "an input's rank does not fit the op's layout (e.g. an NCHW op fed a 2-D value)"},
    {"layout_flow", "layout_noncontiguous", W, "a constant is a strided view: gathered into a contiguous copy each run"},
    {"layout_flow", "layout_device", E,
     "a constant lives on a device the run does not use (error for device cpu and a GPU constant; warning for a "
     "host constant uploaded on every cuda run)"},
    {"backend_capability", "backend_unavailable", W,
     "the requested device is not available: the graph runs on the fallback (error in strict device mode); reason "
     "fallback_preferred_unavailable"},
    {"backend_capability", "backend_unsupported", E,
     "the node's op/dtype/shape has no kernel on the requested device: warning with the fallback device named "
     "(reason fallback_preferred_unsupported), error when no built backend has one"},
};

#undef E
#undef W

int lc_graph_issue_code_count(void) { return (int)(sizeof lc_codes / sizeof lc_codes[0]); }

lc_status lc_graph_issue_code(int i, lc_graph_issue_code_info *out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_issue_code: out: expected a pointer, got NULL");
    if (i < 0 || i >= lc_graph_issue_code_count())
        return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_issue_code: i: expected 0..%d, got %d",
                        lc_graph_issue_code_count() - 1, i);
    *out = lc_codes[i];
    return LC_OK;
}

static const char *const lc_pass_names[LC_GRAPH_PASS_COUNT] = {"schema_contract", "topology", "alias_lifetime",
                                                               "layout_flow", "backend_capability"};

const char *lc_graph_pass_name(lc_graph_pass pass) {
    if ((int)pass < 0 || pass >= LC_GRAPH_PASS_COUNT) return "invalid";
    return lc_pass_names[pass];
}

const char *lc_graph_severity_name(lc_graph_severity s) {
    switch (s) {
    case LC_GRAPH_SEVERITY_WARNING: return "warning";
    case LC_GRAPH_SEVERITY_ERROR: return "error";
    default: return "invalid";
    }
}

/* ---- the report ------------------------------------------------------------------------------ */

struct lc_graph_report {
    lc_graph_issue *issues;
    size_t n, cap;
    int oom; /* an issue could not be stored */
};

size_t lc_graph_report_count(const lc_graph_report *r) { return r ? r->n : 0; }

lc_status lc_graph_report_get(const lc_graph_report *r, size_t i, lc_graph_issue *out) {
    if (!r) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_report_get: r: expected a report, got NULL");
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_report_get: out: expected a pointer, got NULL");
    if (i >= r->n)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_report_get: i: expected 0..%zu, got %zu", r->n ? r->n - 1 : 0, i);
    *out = r->issues[i];
    return LC_OK;
}

int lc_graph_report_has_errors(const lc_graph_report *r) {
    if (!r) return 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->issues[i].severity == LC_GRAPH_SEVERITY_ERROR) return 1;
    return 0;
}

void lc_graph_report_free(lc_graph_report *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) free((void *)r->issues[i].message); /* one block: message|node|value */
    free(r->issues);
    free(r);
}

/* The state of one validation run. */
typedef struct lc_vctx {
    const lc_graph_t *g;
    lc_graph_report *r;
    lc_device device;
    const char *pass;
} lc_vctx;

/* Adds an issue; the strings are copied into one block owned by the issue. */
static void lc_issue(lc_vctx *c, const char *code, lc_graph_severity sev, int32_t node, const char *value,
                     const char *reason, const char *fmt, ...) LC_PRINTF(7, 8);

static void lc_issue(lc_vctx *c, const char *code, lc_graph_severity sev, int32_t node, const char *value,
                     const char *reason, const char *fmt, ...) {
    lc_graph_report *r = c->r;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *node_name = node >= 0 ? c->g->nodes[node].name : NULL;
    const size_t lm = strlen(msg) + 1, ln = node_name ? strlen(node_name) + 1 : 0, lv = value ? strlen(value) + 1 : 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        lc_graph_issue *p = realloc(r->issues, cap * sizeof *p);
        if (!p) {
            r->oom = 1;
            return;
        }
        r->issues = p;
        r->cap = cap;
    }
    char *block = malloc(lm + ln + lv);
    if (!block) {
        r->oom = 1;
        return;
    }
    memcpy(block, msg, lm);
    if (ln) memcpy(block + lm, node_name, ln);
    if (lv) memcpy(block + lm + ln, value, lv);
    r->issues[r->n++] = (lc_graph_issue){.pass = c->pass,
                                         .code = code,
                                         .severity = sev,
                                         .node = ln ? block + lm : NULL,
                                         .value = lv ? block + lm + ln : NULL,
                                         .reason = reason,
                                         .message = block,
                                         .node_index = node};
}

/* Copies lc_last_error() (set by a registry check) into an issue. */
static void lc_issue_last(lc_vctx *c, const char *code, int32_t node, const char *value) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lc_last_error());
    lc_issue(c, code, LC_GRAPH_SEVERITY_ERROR, node, value, NULL, "%s", msg);
}

/* ---- schema_contract ------------------------------------------------------------------------- */

static void lc_pass_schema(lc_vctx *c) {
    const lc_graph_t *g = c->g;
    for (int32_t i = 0; i < g->nnodes; i++) {
        const lc_graph_node *n = &g->nodes[i];
        const lc_graph_schema *s = n->schema;
        const char *out_name = lc_graph_value_ok(g, n->output) ? g->values[n->output].name : NULL;
        if (!s) {
            lc_issue(c, "schema_unknown_op", LC_GRAPH_SEVERITY_ERROR, i, NULL, NULL,
                     "node '%s': op '%s' is not in the registry (lc_graph_op_count() ops)", n->name, n->op);
            continue;
        }
        char prefix[320];
        snprintf(prefix, sizeof prefix, "node '%s' (%s)", n->name, n->op);
        if (lc_graph_check_arity(s, prefix, n->ninputs) != LC_OK) {
            lc_issue_last(c, "schema_arity", i, NULL);
            continue;
        }
        lc_graph_attrs resolved;
        const int attrs_ok = lc_graph_check_attrs(s, prefix, &n->attrs, &resolved) == LC_OK;
        if (!attrs_ok) lc_issue_last(c, "schema_attr", i, NULL);
        lc_graph_operands in;
        if (!lc_graph_node_operands(g, n, &in)) continue; /* topology reports the dangling input */
        if (lc_graph_check_dtypes(s, prefix, &in) != LC_OK) {
            lc_issue_last(c, "schema_dtype", i, NULL);
            continue;
        }
        if (!attrs_ok || lc_graph_check_ranks(s, prefix, &in) != LC_OK) continue; /* layout_flow reports ranks */
        int ond = 0;
        int64_t oshape[LC_MAX_DIMS];
        if (lc_graph_infer(s, prefix, &in, &resolved, &ond, oshape) != LC_OK) {
            lc_issue_last(c, "schema_shape", i, NULL);
            continue;
        }
        if (!out_name) continue;
        const lc_graph_value *ov = &g->values[n->output];
        if (ov->ndim != ond || memcmp(ov->shape, oshape, (size_t)ond * sizeof *oshape) != 0 || ov->dtype != in.dtype[0]) {
            char want[96], got[96];
            lc_graph_format_shape(want, sizeof want, ond, oshape);
            lc_graph_format_shape(got, sizeof got, ov->ndim, ov->shape);
            lc_issue(c, "schema_output_shape", LC_GRAPH_SEVERITY_ERROR, i, ov->name, NULL,
                     "%s: output value '%s': expected %s %s, got %s %s", prefix, ov->name, lc_dtype_name(in.dtype[0]), want,
                     lc_dtype_name(ov->dtype), got);
        }
    }
}

/* ---- topology -------------------------------------------------------------------------------- */

static void lc_pass_topology(lc_vctx *c) {
    const lc_graph_t *g = c->g;
    const int32_t nn = g->nnodes, nv = g->nvalues;
    for (int32_t i = 0; i < nn; i++) {
        const lc_graph_node *n = &g->nodes[i];
        for (int k = 0; k < n->ninputs; k++) {
            if (lc_graph_value_ok(g, n->inputs[k])) continue;
            lc_issue(c, "topology_dangling_input", LC_GRAPH_SEVERITY_ERROR, i, NULL, NULL,
                     "node '%s' (%s): input %d names value id %d, which does not exist (the graph has %d values)", n->name,
                     n->op, k, (int)n->inputs[k], (int)nv);
        }
    }
    /* cycles: what Kahn's algorithm leaves over. Every stuck node has a stuck producer (itself, for a node
     * reading its own output), so following the first stuck producer from a stuck node must close a loop.
     * state[]: 0 unvisited, 1 on the current walk, 2 finished; a walk stops at a finished node (its cycle,
     * if any, is reported already), so every node is walked once: O(nodes). */
    int32_t *order = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *order);
    int32_t *indeg = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *indeg);
    char *state = calloc((size_t)(nn > 0 ? nn : 1), 1);
    int32_t *walk = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *walk);
    if (!order || !indeg || !state || !walk) {
        c->r->oom = 1;
        goto done;
    }
    const int32_t ordered = lc_graph_topo_sort(g, order, indeg);
    if (ordered < 0) {
        c->r->oom = 1;
        goto done;
    }
    for (int32_t s0 = 0; ordered < nn && s0 < nn; s0++) {
        if (indeg[s0] == 0 || state[s0]) continue;
        int32_t len = 0, cur = s0;
        while (cur >= 0 && state[cur] == 0) {
            state[cur] = 1;
            walk[len++] = cur;
            int32_t next = -1;
            const lc_graph_node *n = &g->nodes[cur];
            for (int k = 0; k < n->ninputs && next < 0; k++) {
                const lc_value_id v = n->inputs[k];
                if (!lc_graph_value_ok(g, v)) continue;
                const int32_t p = g->values[v].producer;
                if (p >= 0 && indeg[p] > 0) next = p; /* p == cur: a self-loop */
            }
            cur = next; /* -1 cannot happen: a stuck node has a stuck producer */
        }
        const int closed = cur >= 0 && state[cur] == 1; /* back on this walk: a new cycle from cur */
        for (int32_t k = 0; k < len; k++) state[walk[k]] = 2;
        if (!closed) continue;
        int32_t first = 0;
        while (walk[first] != cur) first++;
        int32_t at = first; /* the lowest node of the cycle */
        for (int32_t k = first; k < len; k++)
            if (walk[k] < walk[at]) at = k;
        const int32_t lowest = walk[at], cyc = len - first;
        char path[512];
        size_t used = 0;
        path[0] = '\0';
        /* walk runs consumer -> producer (walk[first] produces for walk[len - 1]); print producer -> consumer
         * from the lowest node round to it again */
        for (int32_t j = 0; j <= cyc && used < sizeof path; j++) {
            const int32_t k = first + (((at - first - j) % cyc) + cyc) % cyc;
            used += (size_t)snprintf(path + used, sizeof path - used, j ? " -> '%s'" : "'%s'", g->nodes[walk[k]].name);
        }
        lc_issue(c, "topology_cycle", LC_GRAPH_SEVERITY_ERROR, lowest, NULL, NULL,
                 "node '%s' (%s) is on a cycle%s: %s (no execution order exists)", g->nodes[lowest].name,
                 g->nodes[lowest].op, cyc == 1 ? " (it reads its own output)" : "", path);
    }
    if (g->noutputs == 0) {
        lc_issue(c, "topology_no_output", LC_GRAPH_SEVERITY_ERROR, -1, NULL, NULL,
                 "the graph has no output: mark at least one value with lc_graph_mark_output");
        goto done;
    }
    /* liveness from the outputs, a worklist over values: a node is live when a live value is its output
     * (writers[] lists each value's writing nodes, CSR); its inputs then are live. O(nodes + values). */
    {
        char *live_v = calloc((size_t)(nv > 0 ? nv : 1), 1);
        char *live_n = calloc((size_t)(nn > 0 ? nn : 1), 1);
        char *read = calloc((size_t)(nv > 0 ? nv : 1), 1);
        int32_t *wstart = calloc((size_t)nv + 2, sizeof *wstart);
        int32_t *writers = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *writers);
        int32_t *stack = malloc((size_t)(nv > 0 ? nv : 1) * sizeof *stack);
        if (!live_v || !live_n || !read || !wstart || !writers || !stack) {
            c->r->oom = 1;
            free(live_v), free(live_n), free(read), free(wstart), free(writers), free(stack);
            goto done;
        }
        for (int32_t i = 0; i < nn; i++)
            if (lc_graph_value_ok(g, g->nodes[i].output)) wstart[g->nodes[i].output + 2]++;
        for (int32_t v = 0; v < nv; v++) wstart[v + 2] += wstart[v + 1];
        for (int32_t i = 0; i < nn; i++)
            if (lc_graph_value_ok(g, g->nodes[i].output)) writers[wstart[g->nodes[i].output + 1]++] = i;
        int32_t sp = 0;
        for (int32_t i = 0; i < g->noutputs; i++)
            if (!live_v[g->outputs[i]]) live_v[g->outputs[i]] = 1, stack[sp++] = g->outputs[i];
        while (sp > 0) {
            const int32_t v = stack[--sp];
            for (int32_t w = wstart[v]; w < wstart[v + 1]; w++) {
                const lc_graph_node *n = &g->nodes[writers[w]];
                if (live_n[writers[w]]) continue;
                live_n[writers[w]] = 1;
                for (int k = 0; k < n->ninputs; k++) {
                    const lc_value_id u = n->inputs[k];
                    if (lc_graph_value_ok(g, u) && !live_v[u]) live_v[u] = 1, stack[sp++] = u;
                }
            }
        }
        for (int32_t i = 0; i < nn; i++) {
            const lc_graph_node *n = &g->nodes[i];
            for (int k = 0; k < n->ninputs; k++)
                if (lc_graph_value_ok(g, n->inputs[k])) read[n->inputs[k]] = 1;
            if (live_n[i]) continue;
            const char *vname = lc_graph_value_ok(g, n->output) ? g->values[n->output].name : NULL;
            lc_issue(c, "topology_unused_node", LC_GRAPH_SEVERITY_WARNING, i, vname, NULL,
                     "node '%s' (%s): its result '%s' reaches no graph output (dead code; the planner drops it)", n->name,
                     n->op, vname ? vname : "?");
        }
        for (int32_t v = 0; v < nv; v++) {
            const lc_graph_value *val = &g->values[v];
            if (val->kind == LC_GRAPH_VALUE_INTERMEDIATE || read[v] || val->is_output) continue;
            lc_issue(c, "topology_unused_value", LC_GRAPH_SEVERITY_WARNING, -1, val->name, NULL,
                     "graph %s '%s' is read by no node", lc_graph_value_kind_name(val->kind), val->name);
        }
        free(live_v), free(live_n), free(read), free(wstart), free(writers), free(stack);
    }
done:
    free(order);
    free(indeg);
    free(state);
    free(walk);
}

/* ---- alias_lifetime -------------------------------------------------------------------------- */

static void lc_pass_alias(lc_vctx *c) {
    const lc_graph_t *g = c->g;
    const int32_t nn = g->nnodes, nv = g->nvalues;
    /* first overwrite of each value: the first node, in program order, writing it other than its producer */
    int32_t *overwrite = malloc((size_t)(nv > 0 ? nv : 1) * sizeof *overwrite);
    if (!overwrite) {
        c->r->oom = 1;
        return;
    }
    for (int32_t v = 0; v < nv; v++) overwrite[v] = -1;
    for (int32_t i = 0; i < nn; i++) {
        const lc_graph_node *n = &g->nodes[i];
        const lc_value_id v = n->output;
        if (!lc_graph_value_ok(g, v)) continue;
        const lc_graph_value *val = &g->values[v];
        if (val->kind != LC_GRAPH_VALUE_INTERMEDIATE) {
            lc_issue(c, "alias_inplace_conflict", LC_GRAPH_SEVERITY_ERROR, i, val->name, NULL,
                     "node '%s' (%s) writes graph %s '%s' in place (inputs and constants are read-only)", n->name, n->op,
                     lc_graph_value_kind_name(val->kind), val->name);
        } else if (val->producer != i) {
            const char *first = val->producer >= 0 ? g->nodes[val->producer].name : "?";
            lc_issue(c, "alias_inplace_conflict", LC_GRAPH_SEVERITY_ERROR, i, val->name, NULL,
                     "node '%s' (%s) writes value '%s', already produced by node '%s' (values are single-assignment; "
                     "in-place buffer reuse is the planner's decision)",
                     n->name, n->op, val->name, first);
        } else {
            continue;
        }
        if (overwrite[v] < 0) overwrite[v] = i;
    }
    for (int32_t i = 0; i < g->noutputs; i++) {
        const lc_graph_value *val = &g->values[g->outputs[i]];
        if (val->kind == LC_GRAPH_VALUE_INTERMEDIATE) continue;
        lc_issue(c, "alias_inplace_conflict", LC_GRAPH_SEVERITY_ERROR, -1, val->name, NULL,
                 "graph output '%s' is a graph %s itself: an output must be produced by a node (it would alias the "
                 "caller's %s)",
                 val->name, lc_graph_value_kind_name(val->kind),
                 val->kind == LC_GRAPH_VALUE_INPUT ? "input buffer" : "weights");
    }
    for (int32_t j = 0; j < nn; j++) {
        const lc_graph_node *n = &g->nodes[j];
        for (int k = 0; k < n->ninputs; k++) {
            const lc_value_id v = n->inputs[k];
            if (!lc_graph_value_ok(g, v) || overwrite[v] < 0 || overwrite[v] >= j) continue;
            const lc_graph_value *val = &g->values[v];
            char origin[160];
            if (val->kind == LC_GRAPH_VALUE_INTERMEDIATE && val->producer >= 0)
                snprintf(origin, sizeof origin, "produced by node '%s'", g->nodes[val->producer].name);
            else
                snprintf(origin, sizeof origin, "a graph %s", lc_graph_value_kind_name(val->kind));
            lc_issue(c, "alias_lifetime", LC_GRAPH_SEVERITY_ERROR, j, val->name, NULL,
                     "node '%s' (%s): input %d reads '%s' (%s) after node '%s' overwrote it", n->name, n->op, k, val->name,
                     origin, g->nodes[overwrite[v]].name);
        }
    }
    free(overwrite);
}

/* ---- layout_flow ----------------------------------------------------------------------------- */

static void lc_pass_layout(lc_vctx *c) {
    const lc_graph_t *g = c->g;
    for (int32_t i = 0; i < g->nnodes; i++) {
        const lc_graph_node *n = &g->nodes[i];
        lc_graph_operands in;
        if (!n->schema || !lc_graph_node_operands(g, n, &in)) continue;
        if (n->ninputs < n->schema->min_inputs || n->ninputs > n->schema->max_inputs) continue; /* schema_arity */
        char prefix[320];
        snprintf(prefix, sizeof prefix, "node '%s' (%s)", n->name, n->op);
        if (lc_graph_check_ranks(n->schema, prefix, &in) != LC_OK) {
            /* name the offending value: the first input whose rank is off */
            const char *vname = NULL;
            for (int k = 0; k < in.n && k < LC_GRAPH_MAX_INPUTS && !vname; k++)
                if (n->schema->input_ranks[k] != LC_GRAPH_RANK_ANY && in.ndim[k] != n->schema->input_ranks[k])
                    vname = in.value_names[k];
            lc_issue_last(c, "layout_rank", i, vname);
        }
    }
    /* constants: layout and residence, reported at their first reader (first_reader: one pass over the
     * node inputs, not a scan of every node per constant) */
    int32_t *first_reader = malloc((size_t)(g->nvalues > 0 ? g->nvalues : 1) * sizeof *first_reader);
    if (!first_reader) {
        c->r->oom = 1;
        return;
    }
    for (int32_t v = 0; v < g->nvalues; v++) first_reader[v] = -1;
    for (int32_t i = g->nnodes - 1; i >= 0; i--)
        for (int k = 0; k < g->nodes[i].ninputs; k++)
            if (lc_graph_value_ok(g, g->nodes[i].inputs[k])) first_reader[g->nodes[i].inputs[k]] = i;
    for (int32_t v = 0; v < g->nvalues; v++) {
        const lc_graph_value *val = &g->values[v];
        if (val->kind != LC_GRAPH_VALUE_CONSTANT || !val->tensor) continue;
        const int32_t reader = first_reader[v];
        const char *rname = reader >= 0 ? g->nodes[reader].name : "no node";
        if (!lc_tensor_is_contiguous(val->tensor))
            lc_issue(c, "layout_noncontiguous", LC_GRAPH_SEVERITY_WARNING, reader, val->name, NULL,
                     "constant '%s' (read by '%s') is a strided view: it is gathered into a contiguous copy on every "
                     "run (bind a contiguous tensor)",
                     val->name, rname);
        const lc_device where = lc_tensor_device(val->tensor);
        if (c->device == LC_DEVICE_CPU && where != LC_DEVICE_CPU)
            lc_issue(c, "layout_device", LC_GRAPH_SEVERITY_ERROR, reader, val->name, NULL,
                     "constant '%s' (read by '%s') lives on %s, but the graph is validated for device cpu (an op with an "
                     "operand on the GPU runs there; cpu is then an error, never a silent copy)",
                     val->name, rname, lc_device_name(where));
        else if (c->device == LC_DEVICE_CUDA && where == LC_DEVICE_CPU)
            lc_issue(c, "layout_device", LC_GRAPH_SEVERITY_WARNING, reader, val->name, NULL,
                     "constant '%s' (read by '%s') lives on the host: it is uploaded on every cuda run (bind a cuda "
                     "tensor to keep it resident)",
                     val->name, rname);
    }
    free(first_reader);
}

/* ---- backend_capability ---------------------------------------------------------------------- */

static void lc_pass_backend(lc_vctx *c) {
    const lc_graph_t *g = c->g;
    const int cuda_avail = lc_device_available(LC_DEVICE_CUDA);
    const lc_device best = cuda_avail ? LC_DEVICE_CUDA : LC_DEVICE_CPU;
    lc_device target = c->device;
    if (target != LC_DEVICE_AUTO && !lc_device_available(target)) {
        const int strict = lc_strict_device();
        lc_issue(c, "backend_unavailable", strict ? LC_GRAPH_SEVERITY_ERROR : LC_GRAPH_SEVERITY_WARNING, -1, NULL,
                 lc_graph_reason_code(LC_GRAPH_REASON_FALLBACK_PREFERRED_UNAVAILABLE), "device %s is %s: %s%s",
                 lc_device_name(target),
                 lc_device_built(target) ? "built but not available on this machine" : "not built into this library",
                 strict ? "the graph fails (strict device mode is on)" : "the graph falls back to ",
                 strict ? "" : lc_device_name(best));
        target = best;
    }
    for (int32_t i = 0; i < g->nnodes; i++) {
        const lc_graph_node *n = &g->nodes[i];
        const lc_graph_schema *s = n->schema;
        if (!s) continue; /* schema_contract reports it */
        lc_graph_operands in;
        const int have_in = lc_graph_node_operands(g, n, &in) && in.n > 0;
        const lc_dtype dt = have_in ? in.dtype[0] : lc_graph_value_ok(g, n->output) ? g->values[n->output].dtype : LC_DTYPE_F32;
        /* shape limits are judged on well-formed operands only (the other passes report the rest) */
        const char *limit = lc_graph_node_gpu_limit(g, n);
        const int cpu_ok = lc_graph_schema_supported(s, LC_DEVICE_CPU, dt);
        const int cuda_kernel = lc_graph_schema_supported(s, LC_DEVICE_CUDA, dt);
        const int cuda_ok = cuda_kernel && !limit;
        if (!cpu_ok && !cuda_kernel) {
            lc_issue(c, "backend_unsupported", LC_GRAPH_SEVERITY_ERROR, i, NULL, NULL,
                     "node '%s' (%s): no backend in this build has a %s kernel for %s", n->name, n->op, s->name,
                     lc_dtype_name(dt));
            continue;
        }
        if (target == LC_DEVICE_AUTO) {
            if (cpu_ok || (cuda_ok && cuda_avail)) continue;
            lc_issue(c, "backend_unsupported", LC_GRAPH_SEVERITY_ERROR, i, NULL, NULL,
                     "node '%s' (%s): no available device has a %s kernel for %s%s%s", n->name, n->op, s->name,
                     lc_dtype_name(dt), limit ? " at this shape: " : "", limit ? limit : "");
        } else if (target == LC_DEVICE_CPU) {
            if (cpu_ok) continue;
            const int to_cuda = cuda_ok && cuda_avail;
            lc_issue(c, "backend_unsupported", to_cuda ? LC_GRAPH_SEVERITY_WARNING : LC_GRAPH_SEVERITY_ERROR, i, NULL,
                     to_cuda ? lc_graph_reason_code(LC_GRAPH_REASON_FALLBACK_PREFERRED_UNSUPPORTED) : NULL,
                     "node '%s' (%s): cpu has no %s kernel for %s; %s", n->name, n->op, s->name, lc_dtype_name(dt),
                     to_cuda ? "falls back to cuda" : "and no available device has one");
        } else { /* cuda, available */
            if (cuda_ok) continue;
            lc_issue(c, "backend_unsupported", cpu_ok ? LC_GRAPH_SEVERITY_WARNING : LC_GRAPH_SEVERITY_ERROR, i, NULL,
                     cpu_ok ? lc_graph_reason_code(LC_GRAPH_REASON_FALLBACK_PREFERRED_UNSUPPORTED) : NULL,
                     "node '%s' (%s): cuda has no %s kernel for %s%s%s; %s", n->name, n->op, s->name,
                     lc_dtype_name(dt), limit ? " at this shape: " : "", limit ? limit : "",
                     cpu_ok ? "falls back to cpu" : "and cpu has none either");
        }
    }
}

/* ---- entry ----------------------------------------------------------------------------------- */

lc_status lc_graph_validate_passes(const lc_graph_t *g, lc_device device, unsigned passes, lc_graph_report **out) {
    const char *fn = "graph.validate";
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", fn);
    *out = NULL;
    if (!g) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: g: expected a graph, got NULL", fn);
    if ((int)device < 0 || device >= LC_DEVICE_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: device: expected cpu, cuda, metal or auto, got code %d", fn,
                        (int)device);
    if (passes & ~LC_GRAPH_PASSES_ALL)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: passes: expected bits of LC_GRAPH_PASSES_ALL (0x%x), got 0x%x", fn,
                        LC_GRAPH_PASSES_ALL, passes);
    lc_graph_report *r = calloc(1, sizeof *r);
    if (!r) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    lc_vctx c = {g, r, device, NULL};
    static void (*const run[LC_GRAPH_PASS_COUNT])(lc_vctx *) = {lc_pass_schema, lc_pass_topology, lc_pass_alias,
                                                                 lc_pass_layout, lc_pass_backend};
    for (int p = 0; p < LC_GRAPH_PASS_COUNT; p++) {
        if (!(passes & (1u << p))) continue;
        c.pass = lc_pass_names[p];
        run[p](&c);
    }
    if (r->oom) {
        lc_graph_report_free(r);
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: out of host memory while building the report", fn);
    }
    *out = r;
    return LC_OK;
}

lc_status lc_graph_validate(const lc_graph_t *g, lc_device device, lc_graph_report **out) {
    return lc_graph_validate_passes(g, device, LC_GRAPH_PASSES_ALL, out);
}
