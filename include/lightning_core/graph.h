/* graph.h — the graph layer's core: the operator registry (one schema per op), the graph IR and its
 * builder, a stable structural hash, the validation passes and the seed's machine-readable reason codes.
 *
 * A graph holds values (tensors, identified by dense int32 ids 0, 1, 2, ...) and nodes (one op each,
 * one output value each), in program order. Values are graph inputs (fed at run time), constants
 * (weights bound at build time; the graph keeps its own view of the tensor) or intermediates (a node's
 * output); any value may be marked a graph output.
 *
 * Builder (lc_graph_add): checks the op's schema (input count, dtypes, ranks/layout, shape relations,
 * attributes) and infers the output shape; a refused node leaves the graph unchanged and
 * lc_last_error() names the node, the input and expected vs got, e.g.
 *   "graph.add: node 'mm' (matmul): input 1 'b' (value 'w'): expected [k=16, n] with k matching a, got [17, 8]".
 * A graph built by lc_graph_add alone is single-assignment and in topological order, so it always
 * validates clean of schema/topology/alias/layout errors. In-place execution is a planner decision,
 * never an IR construct.
 *
 * Raw mode (lc_graph_add_unchecked, lc_graph_rewire_unchecked) skips every check and may name a
 * value that does not exist, write an existing value again or close a cycle (of any length: a node
 * reading its own output is one): it exists to craft bad graphs for the validation passes (tests), and
 * for importers that validate afterwards. A raw node may read a later node's output without a cycle:
 * the graph is valid and runs in dependency order.
 *
 * Cost: building, name lookups, validation, topological order, hashing and planning are linear in the
 * node count (names are indexed; no pass scans the graph per node).
 *
 * Validation (lc_graph_validate): five passes, each reporting its own issues (pass, code, severity,
 * node name, value name, seed reason code where one applies, message), in a deterministic order
 * (pass order, then node order). Codes per pass: docs/design.md "Graph layer (core)".
 *
 * Layout: every tensor is row-major contiguous; conv2d ops read x as NCHW [n,c,h,w] and weights as
 * [oc,c,kh,kw]. Graphs are not thread-safe while being built; a finished graph may be read (queries,
 * hash, validate) from several threads at once.
 * Tests: tests/c/test_graph.c, tests/python/test_graph.py.
 */
#ifndef LIGHTNING_CORE_GRAPH_H
#define LIGHTNING_CORE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "lightning_core/status.h"
#include "lightning_core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lc_graph lc_graph_t;
typedef int32_t lc_value_id;

#define LC_GRAPH_MAX_INPUTS 4 /* per node (raw mode too); the registry's ops take at most 3 */

/* ---- seed reason codes ------------------------------------------------------------------------
 * The seed's graph/fallback reason codes (Phase B contract). A separate enum from runtime.h's
 * lc_reason (the per-op dispatch record), which holds the op-level subset; the two share spellings. */
typedef enum lc_graph_reason {
    LC_GRAPH_REASON_FALLBACK_PREFERRED_UNSUPPORTED = 0, /* preferred backend lacks the op/dtype */
    LC_GRAPH_REASON_FALLBACK_PREFERRED_UNAVAILABLE,     /* preferred backend not available now */
    LC_GRAPH_REASON_FALLBACK_PLANNER_OPTIMIZED,         /* planner chose another backend (fewer boundaries) */
    LC_GRAPH_REASON_GRAPH_ENGINE_NOT_LIGHTNING,         /* graph requested, engine resolved to non-lightning */
    LC_GRAPH_REASON_GRAPH_SHAPE_UNSUPPORTED,            /* graph requested, shape outside the graph path */
    LC_GRAPH_REASON_TORCH_UNAVAILABLE_FALLBACK,         /* torch route requested, torch missing */
    LC_GRAPH_REASON_COUNT
} lc_graph_reason;

/* "fallback_preferred_unsupported", ...; "invalid" out of range. */
const char *lc_graph_reason_code(lc_graph_reason reason);
/* One-line description (the seed's table); "invalid" out of range. */
const char *lc_graph_reason_description(lc_graph_reason reason);
/* Exact code string -> enum; LC_ERR_INVALID_ARGUMENT naming the text otherwise. */
lc_status lc_graph_reason_parse(const char *code, lc_graph_reason *out);

/* ---- attributes ------------------------------------------------------------------------------
 * Set a field and its bit in `set`; an unset attribute takes the op's default. An op given an
 * attribute it does not take is refused (schema_attr). Start from lc_graph_attrs_init (nothing set). */
enum {
    LC_GRAPH_ATTR_STRIDE_H = 1u << 0, /* conv2d*: >= 1, default 1 */
    LC_GRAPH_ATTR_STRIDE_W = 1u << 1,
    LC_GRAPH_ATTR_PAD_H = 1u << 2,    /* conv2d*: >= 0, default 0 (conv2d_nchw3x3s1p1: 1) */
    LC_GRAPH_ATTR_PAD_W = 1u << 3,
    LC_GRAPH_ATTR_CAUSAL = 1u << 4,   /* attention_forward: 0 or 1, default 0 */
    LC_GRAPH_ATTR_EPS = 1u << 5,      /* layer_norm: finite > 0, default 1e-5 */
    LC_GRAPH_ATTR_GELU_APPROX = 1u << 6, /* gelu: lc_gelu_approx (0 erf, 1 tanh), default erf */
    LC_GRAPH_ATTR_SEQ = 1u << 7,      /* qkv_pack_repeat: >= 1, required */
    LC_GRAPH_ATTR_HEAD_DIM = 1u << 8, /* qkv_pack_repeat: >= 1, required */
    LC_GRAPH_ATTR_ALL = (1u << 9) - 1
};

typedef struct lc_graph_attrs {
    unsigned set; /* LC_GRAPH_ATTR_* bits of the fields below that were given */
    int32_t stride_h, stride_w, pad_h, pad_w;
    int32_t causal;
    double eps;
    int32_t gelu_approx;
    int64_t seq, head_dim;
} lc_graph_attrs;

/* Zeroes *attrs (nothing set). */
void lc_graph_attrs_init(lc_graph_attrs *attrs);
/* "stride_h", ... for one LC_GRAPH_ATTR_* bit; NULL for anything else. */
const char *lc_graph_attr_name(unsigned bit);

/* ---- operator registry ------------------------------------------------------------------------ */

#define LC_GRAPH_RANK_ANY (-1) /* input_ranks entry: any rank 1..LC_MAX_DIMS */

typedef struct lc_graph_op_info {
    const char *name;          /* "matmul", ... */
    const char *alias_of;      /* canonical op for an alias ("conv2d_nchw" for conv2d_nchw3x3), else NULL */
    int min_inputs, max_inputs;
    const char *input_names[LC_GRAPH_MAX_INPUTS]; /* "a", "b", ...; NULL past max_inputs */
    int input_ranks[LC_GRAPH_MAX_INPUTS];         /* rank each input must have, or LC_GRAPH_RANK_ANY */
    int output_rank;           /* or LC_GRAPH_RANK_ANY (same as input 0) */
    unsigned dtypes;           /* bit (1u << lc_dtype) per accepted dtype; all inputs share one dtype */
    const char *layout;        /* "row-major" or "nchw" */
    const char *shape_rule;    /* e.g. "a [m,k], b [k,n] -> [m,n]" */
    unsigned attrs;            /* LC_GRAPH_ATTR_* it takes */
    unsigned required_attrs;   /* LC_GRAPH_ATTR_* without a default */
    int inplace_ok;            /* the eager op accepts out == input 0 exactly (planner buffer reuse) */
    const char *backend_note;  /* how the backends run it (e.g. bias_add through lc_linear) */
} lc_graph_op_info;

/* Ops in the registry (aliases included), listed in a fixed order. */
int lc_graph_op_count(void);
/* Schema of op i (0 <= i < lc_graph_op_count()). */
lc_status lc_graph_op_schema(int i, lc_graph_op_info *out);
/* Index of the op named `name`, or -1. */
int lc_graph_op_find(const char *name);
/* 1 when the backend built for `device` (cpu or cuda) has a kernel for op i at `dtype` (asks the backend
 * table; does not ask whether the device is available now); 0 otherwise (metal, auto, not built). */
int lc_graph_op_supported(int i, lc_device device, lc_dtype dtype);

/* The output shape of op `op` (any op of the library's op table: the graph ops above, "linear", ...)
 * for inputs of these shapes and `attrs` (NULL: defaults): the same rule the op applies when it runs,
 * written once (src/core/op_table.c). shapes[i] NULL: optional input i absent. `names` (may be NULL)
 * are the caller's argument names for the messages. out_shape has room for LC_MAX_DIMS. Errors:
 * LC_ERR_SHAPE (ranks, shape relations, an output whose element count overflows), LC_ERR_INVALID_ARGUMENT
 * (unknown op, attributes), each naming the argument, the expectation and what came. */
lc_status lc_op_infer_shape(const char *op, int ninputs, const char *const *names, const int *ndims,
                            const int64_t *const *shapes, const lc_graph_attrs *attrs, int *out_ndim,
                            int64_t *out_shape);
/* The work of one call of op `op` with inputs of these shapes at `dtype`: arithmetic (*flops) and bytes
 * read + written (*bytes), the same estimate routing and the planner's cost model use (src/core/op_table.c).
 * Errors as lc_op_infer_shape's. */
lc_status lc_op_work_of(const char *op, int ninputs, const int *ndims, const int64_t *const *shapes,
                        const lc_graph_attrs *attrs, lc_dtype dtype, double *flops, double *bytes);

/* The dtypes op `op` (any op of the op table, by name) takes, as a mask of (1u << lc_dtype) bits: on the
 * backend of `device` (LC_DEVICE_CPU, LC_DEVICE_CUDA) or, with LC_DEVICE_AUTO, on any backend. These are
 * the table's masks whether or not that backend is built here (lc_graph_op_supported asks the build).
 * 0 for an unknown op or for LC_DEVICE_METAL. The Python binding's compute-dtype rule reads it. */
unsigned lc_op_dtypes(const char *op, lc_device device);
/* 1 when op `op` takes `dtype` on some backend (lc_op_dtypes(op, LC_DEVICE_AUTO) has its bit), else 0. */
int lc_op_takes_dtype(const char *op, lc_dtype dtype);

/* ---- building --------------------------------------------------------------------------------- */

lc_status lc_graph_new(lc_graph_t **out);
/* Frees the graph and its constant views. NULL is allowed. */
void lc_graph_free(lc_graph_t *g);

/* A float32 graph input of `shape` named `name` (non-empty, unique among values and nodes). */
lc_status lc_graph_input(lc_graph_t *g, const char *name, int ndim, const int64_t *shape, lc_value_id *out);
/* Same with an explicit dtype (float32, float64, float16 or bfloat16; each reaches only ops whose op-table
 * dtype mask takes it: the builder and validation check). */
lc_status lc_graph_input_typed(lc_graph_t *g, const char *name, lc_dtype dtype, int ndim, const int64_t *shape,
                               lc_value_id *out);
/* A constant bound at build time: the graph keeps a view of `t` (its storage stays alive while the
 * graph lives; later writes into that storage are seen). `t` may live on the CPU or on a GPU and may be
 * strided (layout_flow reports that). */
lc_status lc_graph_constant(lc_graph_t *g, const char *name, const lc_tensor_t *t, lc_value_id *out);

/* Appends a node `op` over `inputs` (existing value ids; optional trailing inputs may be left out:
 * conv2d bias, layer_norm gamma/beta). `attrs` may be NULL (all defaults). `node_name` may be NULL
 * ("<op>_<node index>"); it also names the output value. The output's shape and dtype are inferred;
 * its id is written to *out. Errors: LC_ERR_INVALID_ARGUMENT (unknown op, bad id, bad/unknown
 * attribute, name taken), LC_ERR_SHAPE (input count, ranks, shape relations), LC_ERR_DTYPE. */
lc_status lc_graph_add(lc_graph_t *g, const char *op, const lc_value_id *inputs, int ninputs,
                       const lc_graph_attrs *attrs, const char *node_name, lc_value_id *out);

/* Raw mode: appends a node without any schema check. `op` may be any non-empty name; input ids are
 * stored as given (they may not exist); `attrs` are stored as given (no defaults filled).
 * With out_value < 0 a new intermediate value of out_shape/out_dtype is made; with out_value >= 0 the
 * node writes that existing value (an in-place write, for alias tests; out_shape is then ignored).
 * Only the node name must be unique. */
lc_status lc_graph_add_unchecked(lc_graph_t *g, const char *op, const lc_value_id *inputs, int ninputs,
                                 const lc_graph_attrs *attrs, const char *node_name, int out_ndim,
                                 const int64_t *out_shape, lc_dtype out_dtype, lc_value_id out_value,
                                 lc_value_id *out);
/* Raw mode: sets input `slot` (< the node's input count) of node `node` to `value` (any id; this is how
 * a cycle is made). */
lc_status lc_graph_rewire_unchecked(lc_graph_t *g, int32_t node, int slot, lc_value_id value);

/* Marks value v a graph output (outputs keep the order of their first marking; marking twice is a no-op). */
lc_status lc_graph_mark_output(lc_graph_t *g, lc_value_id v);

/* ---- queries ---------------------------------------------------------------------------------- */

typedef enum lc_graph_value_kind {
    LC_GRAPH_VALUE_INPUT = 0,
    LC_GRAPH_VALUE_CONSTANT,
    LC_GRAPH_VALUE_INTERMEDIATE,
    LC_GRAPH_VALUE_KIND_COUNT
} lc_graph_value_kind;

const char *lc_graph_value_kind_name(lc_graph_value_kind kind); /* "input", "constant", "intermediate" */

typedef struct lc_graph_value_info {
    const char *name;          /* owned by the graph */
    int ndim;
    int64_t shape[LC_MAX_DIMS];
    lc_dtype dtype;
    lc_graph_value_kind kind;
    int is_output;
    int32_t producer;          /* first node writing it, -1 for inputs and constants */
    const lc_tensor_t *tensor; /* a constant's view (borrowed from the graph), else NULL */
} lc_graph_value_info;

typedef struct lc_graph_node_info {
    const char *op;            /* as given (owned by the graph) */
    const char *name;
    int op_index;              /* registry index, -1 for an op the registry lacks (raw mode) */
    int ninputs;
    lc_value_id inputs[LC_GRAPH_MAX_INPUTS];
    lc_value_id output;
    lc_graph_attrs attrs;      /* checked nodes: defaults filled in, `set` = what the caller gave */
    int checked;               /* 1: built by lc_graph_add; 0: raw mode */
} lc_graph_node_info;

int32_t lc_graph_node_count(const lc_graph_t *g);
int32_t lc_graph_value_count(const lc_graph_t *g);
int32_t lc_graph_output_count(const lc_graph_t *g);
/* The i-th graph output's value id, or -1 when i is out of range. */
lc_value_id lc_graph_output(const lc_graph_t *g, int32_t i);
lc_status lc_graph_get_node(const lc_graph_t *g, int32_t node, lc_graph_node_info *out);
lc_status lc_graph_get_value(const lc_graph_t *g, lc_value_id v, lc_graph_value_info *out);
/* Value or node id by name, or -1 (O(1): an index of the names). */
lc_value_id lc_graph_find_value(const lc_graph_t *g, const char *name);
int32_t lc_graph_find_node(const lc_graph_t *g, const char *name);

/* A topological order of the nodes (data dependencies through each value's producer, a node reading its
 * own output included; ties kept in program order) into order[0 .. node_count). LC_ERR_INVALID_ARGUMENT
 * naming a node on the cycle, or a dangling input, when there is none. */
lc_status lc_graph_topo_order(const lc_graph_t *g, int32_t *order, int32_t capacity);

/* A stable 64-bit hash (FNV-1a, byte order fixed, equal across processes and machines) over the
 * structure: value kinds, dtypes, shapes, output marks, node ops, input/output ids and attributes.
 * Names and constant data are not hashed: equal hashes mean the same plan applies. 0 for NULL. */
uint64_t lc_graph_hash(const lc_graph_t *g);

/* A counter bumped by every change to g (a value or node appended, an input rewired, an output
 * marked): equal versions of one graph mean nothing changed in between, so a plan made of it still
 * describes it (python/lightning_core/graph.py keys Graph.run's plans on it). 0 for NULL. */
uint64_t lc_graph_version(const lc_graph_t *g);

/* ---- validation ------------------------------------------------------------------------------- */

typedef enum lc_graph_pass {
    LC_GRAPH_PASS_SCHEMA_CONTRACT = 0,
    LC_GRAPH_PASS_TOPOLOGY,
    LC_GRAPH_PASS_ALIAS_LIFETIME,
    LC_GRAPH_PASS_LAYOUT_FLOW,
    LC_GRAPH_PASS_BACKEND_CAPABILITY,
    LC_GRAPH_PASS_COUNT
} lc_graph_pass;

#define LC_GRAPH_PASSES_ALL ((1u << LC_GRAPH_PASS_COUNT) - 1)

const char *lc_graph_pass_name(lc_graph_pass pass); /* "schema_contract", ...; "invalid" */

typedef enum lc_graph_severity {
    LC_GRAPH_SEVERITY_WARNING = 0,
    LC_GRAPH_SEVERITY_ERROR,
    LC_GRAPH_SEVERITY_COUNT
} lc_graph_severity;

const char *lc_graph_severity_name(lc_graph_severity s); /* "warning", "error" */

typedef struct lc_graph_issue {
    const char *pass;      /* "schema_contract", "topology", "alias_lifetime", "layout_flow", "backend_capability" */
    const char *code;      /* machine-readable, e.g. "schema_shape", "topology_cycle" */
    lc_graph_severity severity;
    const char *node;      /* node name, or NULL for a graph-level issue */
    const char *value;     /* the value concerned, or NULL */
    const char *reason;    /* seed reason code (lc_graph_reason_code) where one applies, else NULL */
    const char *message;   /* human-readable, names node, input and expected vs got */
    int32_t node_index;    /* -1 for a graph-level issue */
} lc_graph_issue;

typedef struct lc_graph_report lc_graph_report;

/* Runs every pass for execution on `device` (cpu, cuda, metal or auto). The report is made even when
 * the graph has errors (that is what it is for); the call fails only on bad arguments or memory. */
lc_status lc_graph_validate(const lc_graph_t *g, lc_device device, lc_graph_report **out);
/* Same, running only the passes in `passes` (bits 1u << lc_graph_pass). */
lc_status lc_graph_validate_passes(const lc_graph_t *g, lc_device device, unsigned passes, lc_graph_report **out);

size_t lc_graph_report_count(const lc_graph_report *r);
/* Issue i; its strings live as long as the report. */
lc_status lc_graph_report_get(const lc_graph_report *r, size_t i, lc_graph_issue *out);
int lc_graph_report_has_errors(const lc_graph_report *r);
void lc_graph_report_free(lc_graph_report *r);

/* The catalogue of issue codes: pass, code, default severity, meaning. */
typedef struct lc_graph_issue_code_info {
    const char *pass;
    const char *code;
    lc_graph_severity severity; /* backend codes may be raised as warnings or errors (see meaning) */
    const char *meaning;
} lc_graph_issue_code_info;

int lc_graph_issue_code_count(void);
lc_status lc_graph_issue_code(int i, lc_graph_issue_code_info *out);

/* ---- planning and execution (src/graph/plan.c, fusion.c, execute.c) ----------------------------
 * lc_graph_plan_new validates the graph (errors refuse it), picks the device (capability-aware: every
 * op must have a kernel there, else the fallback device with its reason code), applies the fusion rules
 * (fusion.c; each candidate site is reported by lc_graph_plan_explain with estimated unfused/fused cost
 * and why a rule did not fire), and binds resident buffers on the device: graph inputs (filled by
 * lc_graph_plan_upload), constants (uploaded or folded once), intermediates and outputs. The analysis
 * part is cached process-wide by graph structure (lc_graph_hash + a structural key) + device + sync
 * policy + fusion flag; a hit skips validation and fusion analysis.
 * Steps run in dependency order (program order for a graph built by lc_graph_add); a dead node (its
 * result reaches no output) gets no step. Independently of validation, the planner checks every plan,
 * fresh or cached: a step that would read a value no graph input/constant or earlier step provides, an
 * out-of-range id, a second write or an output nothing writes refuses the plan (LC_ERR_INVALID_ARGUMENT),
 * so no plan ever reads an unwritten buffer.
 * lc_graph_plan_execute runs the steps on the resident inputs: eagerly on the CPU; on CUDA the first run
 * is eager and the second captures every step into one CUDA graph, so later runs cost one host dispatch
 * (one graph launch) each. It ends with one wait unless the sync policy is "never".
 * Threads: a plan serialises its calls (upload, execute, download, run, summary hold its mutex; a
 * second thread waits), so no call sees another's half-done state. lc_graph_plan_run is the atomic
 * upload + execute + download; a sequence of separate calls is one caller's protocol: two threads
 * interleaving theirs on one plan swap inputs between them (use lc_graph_plan_run, or a plan each).
 * The graph may change after planning (the plan keeps its own buffers and steps; constants given as
 * tensors stay shared); lc_graph_version tells whether it did. */

typedef struct lc_graph_plan lc_graph_plan_t;

typedef struct lc_graph_plan_options {
    lc_device device; /* cpu, cuda, metal (falls back) or auto */
    int sync_policy;  /* lc_sync_policy, or -1: the policy in force when executing */
    int fuse;         /* apply the fusion rules (1) or plan every node as its own step (0) */
} lc_graph_plan_options;

lc_status lc_graph_plan_new(const lc_graph_t *g, const lc_graph_plan_options *options, lc_graph_plan_t **out);
void lc_graph_plan_free(lc_graph_plan_t *p);

/* Graph inputs in value-id order (the order lc_graph_input created them). */
int lc_graph_plan_num_inputs(const lc_graph_plan_t *p);
int lc_graph_plan_num_outputs(const lc_graph_plan_t *p);
const lc_tensor_t *lc_graph_plan_input(const lc_graph_plan_t *p, int i);   /* resident buffer */
const lc_tensor_t *lc_graph_plan_output(const lc_graph_plan_t *p, int i);  /* resident buffer */
/* src: float32 with exactly the input's element count, host or device, any layout. */
lc_status lc_graph_plan_upload(lc_graph_plan_t *p, int i, const lc_tensor_t *src);
/* Every input in order, checked all before any is copied (a refused call changes no resident input),
 * under the plan's lock. */
lc_status lc_graph_plan_upload_all(lc_graph_plan_t *p, const lc_tensor_t *const *inputs, int ninputs);
lc_status lc_graph_plan_execute(lc_graph_plan_t *p, int64_t loops);
/* dst: float32, writable, contiguous, exactly the output's element count; a host dst waits. */
lc_status lc_graph_plan_download(lc_graph_plan_t *p, int i, lc_tensor_t *dst);
lc_status lc_graph_plan_synchronize(lc_graph_plan_t *p);
/* Uploads inputs[0 .. ninputs) (all the plan's inputs, in order), executes once and downloads output i
 * into outputs[i] for i < noutputs (NULL entries skipped; noutputs may be fewer than the plan's), all
 * under the plan's mutex: concurrent runs of one plan each get their own inputs' results. */
lc_status lc_graph_plan_run(lc_graph_plan_t *p, const lc_tensor_t *const *inputs, int ninputs, lc_tensor_t *const *outputs,
                            int noutputs);

typedef struct lc_graph_plan_summary {
    lc_device requested, device;
    lc_graph_reason reason;     /* why device != requested (valid when has_reason) */
    int has_reason;
    int nodes, steps, fused_steps, fusions_fired, fusions_rejected;
    int segments;               /* runs of steps on one device (1: the planner keeps everything on one) */
    int sync_boundaries;        /* waits inside one execute (0: one wait at its end) */
    int uses_graph;             /* steps replay as one captured CUDA graph */
    int host_dispatches_per_run;/* after the first two runs: 1 on CUDA (one graph launch), steps on the CPU */
    int cache_hit;              /* the analysis came from the plan cache */
    uint64_t key;               /* plan-cache key */
    int sync_policy;            /* as given (-1: runtime) */
    int64_t runs, replays;
} lc_graph_plan_summary;

lc_status lc_graph_plan_get_summary(const lc_graph_plan_t *p, lc_graph_plan_summary *out);

/* One fusion-rule site: the rule, the nodes it covers ("matmul_0+bias_add_1+relu_2"), whether it
 * fired, the cost model's estimates and, when it did not fire, why (a machine-readable reason). */
typedef struct lc_graph_fusion_record {
    const char *rule;      /* "conv_relu", "matmul_bias_act", "layer_norm_matmul", "attention_projection",
                              "conv_relu_qkv_attention" (all can fire; see fusion.c) */
    const char *nodes;
    int fired;
    double est_unfused_us, est_fused_us, expected_speedup;
    const char *reason;    /* "fired", or e.g. "intermediate_has_other_consumers", "no_fused_kernel_on_device" */
} lc_graph_fusion_record;

size_t lc_graph_plan_explain_count(const lc_graph_plan_t *p);
lc_status lc_graph_plan_explain(const lc_graph_plan_t *p, size_t i, lc_graph_fusion_record *out);
/* One line per step: "linear(matmul_0+bias_add_1+relu_2) cuda" (for summaries). */
const char *lc_graph_plan_step_label(const lc_graph_plan_t *p, int step);

typedef struct lc_graph_plan_cache_stats {
    uint64_t hits, misses;
    size_t entries, capacity;
} lc_graph_plan_cache_stats;

void lc_graph_plan_cache_get_stats(lc_graph_plan_cache_stats *out);
void lc_graph_plan_cache_clear(void); /* also zeroes the counters */

#ifdef __cplusplus
}
#endif
#endif
