/* plan_internal.h — internal structs of the graph planner: steps (what execute.c runs, each one op or
 * one fused op over value ids), fusion records, the cached analysis ("template": device decision,
 * steps, records) and the plan (a template bound to resident buffers). Shared by plan.c (device choice,
 * cache, public API), fusion.c (rules + cost model) and execute.c (buffers, run, capture).
 * Tests: tests/c/test_plan.c, tests/python/test_graph_plan.py. */
#ifndef LC_GRAPH_PLAN_INTERNAL_H
#define LC_GRAPH_PLAN_INTERNAL_H

#include <pthread.h>

#include "graph/graph_internal.h"
#include "lightning_core/session.h"
#include "ops/resident.h"

/* A step runs one op of the op table (core/op_table.h), by id:
 *   LC_OP_MATMUL .. LC_OP_QKV_PACK   a node's own op (conv aliases run as LC_OP_CONV2D; conv.apply_relu set
 *                                    by conv_relu; LC_OP_LAYER_NORM without gamma/beta for layer_norm_matmul)
 *   LC_OP_BIAS_ADD                   standalone: bias broadcast (qkv_pack_repeat into scratch) + vector_add
 *   LC_OP_ATTENTION_PACKED           attention on q/k/v views of the packed input
 *   LC_OP_LINEAR                     matmul (+ bias) (+ relu/gelu): lc_linear; also layer_norm_matmul's second half
 *   LC_OP_CONV_ATTENTION             conv_relu_qkv_attention: one fused kernel
 *   LC_OP_ATTENTION_PROJECTION       attention_projection: q, k, v, w (, bias) -> one fused kernel */

/* A value id that is not in the graph: a buffer the plan makes (folded weights, scratch). */
#define LC_PLAN_EXTRA_BASE 0x40000000

typedef struct lc_plan_step {
    lc_op op;
    int nin;
    lc_value_id in[5];     /* -1: absent optional input */
    lc_value_id out;
    lc_activation act;
    lc_gelu_approx approx;
    double eps;
    int causal;
    lc_conv2d_params conv;
    int rule;              /* index into the records of the fusion that made it, or -1 */
    char label[160];       /* "linear(matmul_0+bias_add_1+relu_2)" */
} lc_plan_step;

/* Folds layer_norm_matmul makes at bind time: w' = diag(gamma) w, b' = beta w (+ b). */
typedef struct lc_plan_fold {
    lc_value_id gamma, beta, w, bias; /* graph constants (beta, bias may be -1) */
    lc_value_id out_w, out_b;         /* extra buffers (LC_PLAN_EXTRA_BASE + i) */
} lc_plan_fold;

typedef struct lc_plan_record {
    char rule[32];
    char nodes[160];
    int fired;
    double est_unfused_us, est_fused_us;
    char reason[64];
} lc_plan_record;

/* The cached analysis of one (structure, device, sync policy, fuse) key. */
typedef struct lc_plan_template {
    uint64_t key;
    lc_device requested, device;
    int has_reason;
    lc_graph_reason reason;
    int fuse, sync_policy;
    int nodes;
    int nsteps;
    lc_plan_step *steps;
    int nrecords;
    lc_plan_record *records;
    int nfolds;
    lc_plan_fold *folds;
    int nextra;            /* extra buffers: shapes below */
    int extra_ndim[16];
    int64_t extra_shape[16][LC_MAX_DIMS];
} lc_plan_template;

struct lc_graph_plan {
    lc_plan_template t;    /* own copy */
    int cache_hit;
    const lc_backend *be;
    int nvalues;
    lc_tensor_t **buf;     /* per graph value: resident tensor or NULL (unused or fused away) */
    lc_tensor_t *extra[16];
    lc_tensor_t *qkv_views[64][3]; /* attention_packed steps: q, k, v views (indexed by step, <= 64 used) */
    int ninputs, noutputs;
    lc_value_id *inputs, *outputs;
    unsigned uploaded_mask_lo;     /* inputs 0..31 uploaded at least once */
    lc_replay replay;      /* eager first run, then one captured CUDA graph of every step */
    int64_t runs, replays;
    pthread_mutex_t mu;    /* held by every public call that reads or writes the state above (execute.c) */
};

/* fusion.c: builds t->steps, t->records, t->folds for graph g planned on t->device (t->fuse decides
 * whether rules may fire; records are written either way). */
lc_status lc_plan_build_steps(const lc_graph_t *g, lc_plan_template *t);
/* plan.c: the planner's own check of a template against graph g, independent of validation: every id a
 * step reads is a graph input or constant, a value an earlier step wrote, or a buffer a fold makes; every
 * step writes an intermediate of g no earlier step wrote; every graph output is written; ids are in
 * range. LC_ERR_INVALID_ARGUMENT naming the step and the value otherwise: no plan reads an unwritten
 * buffer. O(steps + values). */
lc_status lc_plan_check_steps(const lc_graph_t *g, const lc_plan_template *t);
/* Estimated microseconds of one step on `device` (the cost model shared by the fusion records). */
double lc_plan_step_cost_us(const lc_graph_t *g, const lc_plan_template *t, const lc_plan_step *s, lc_device device);

/* execute.c: resident buffers for a plan whose template is set. */
lc_status lc_plan_bind(const lc_graph_t *g, lc_graph_plan_t *p);
void lc_plan_unbind(lc_graph_plan_t *p);
/* Runs every step `loops` times (eager / capture / replay); *replayed: graph launches enqueued. */
lc_status lc_plan_run(lc_graph_plan_t *p, int64_t loops, int64_t *replayed);

/* plan.c: the bodies of lc_graph_plan_upload / _execute / _download; the caller holds p->mu (execute.c
 * wraps each public entry in the lock, and lc_graph_plan_run holds it across all three). */
lc_status lc_plan_upload_locked(lc_graph_plan_t *p, int i, const lc_tensor_t *src);
lc_status lc_plan_execute_locked(lc_graph_plan_t *p, int64_t loops);
lc_status lc_plan_download_locked(lc_graph_plan_t *p, int i, lc_tensor_t *dst);

#endif
