/* fusion.c — the planner's step builder: walks the graph's nodes in program order and turns each into a
 * step, or a chain of nodes into one fused step when a rule applies, recording every candidate site
 * with the cost model's estimates (lc_graph_plan_explain):
 *   conv_relu                conv2d -> relu                          conv with the ReLU epilogue
 *   conv_relu_qkv_attention  conv2d 3x3 -> relu -> qkv_pack_repeat -> attention_packed
 *                                                                    one fused kernel (CUDA, shapes that fit)
 *   matmul_bias_act          matmul -> bias_add and/or relu|gelu     lc_linear (cuBLASLt / CPU epilogue)
 *   layer_norm_matmul        layer_norm(x, gamma, beta) -> matmul (-> bias_add) (-> relu|gelu), constant
 *                            gamma/beta/w/bias: folded at bind time into w' = diag(gamma) w,
 *                            b' = beta w + b; runs as layer_norm without affine + lc_linear
 *   attention_projection     attention -> matmul (-> bias_add)        one fused kernel: the attention rows are
 *                            projected as they are produced (CPU: per query block; CUDA: per row, shapes
 *                            that fit)
 * A chain fuses only when each intermediate has exactly one consumer and is not a graph output, and
 * only when every other operand of the fused step is ready where the step runs (its head's place).
 * Steps follow the dependency order (lc_graph_topo_sort: program order for a graph built through
 * lc_graph_add; a raw graph whose node reads a later node's output runs in the order that computes it
 * first); dead nodes (their result reaches no output) get no step. O(nodes): no rule scans the graph.
 * Tests: tests/c/test_plan.c, tests/python/test_graph_plan.py (graph vs eager parity per rule). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/plan_internal.h"
#include "ops/attention_projection.h"

/* ---- cost model ---------------------------------------------------------------------------------- */

static const lc_graph_value *V(const lc_graph_t *g, lc_value_id v) { return v >= 0 && v < g->nvalues ? &g->values[v] : NULL; }

static const int64_t *lc_shape_of(const lc_graph_t *g, lc_value_id v) { return V(g, v) ? V(g, v)->shape : NULL; }

/* Rough device figures: FP32 arithmetic rate, memory bandwidth and the fixed cost of one kernel. */
typedef struct lc_device_figures {
    double gemm_gflops, other_gflops, gbps, launch_us;
} lc_device_figures;

static lc_device_figures lc_figures(lc_device d) {
    if (d == LC_DEVICE_CUDA) return (lc_device_figures){40000.0, 8000.0, 2500.0, 2.0};
    const double th = (double)lc_num_threads();
    return (lc_device_figures){50.0 * th, 10.0 * th, th * 10.0 < 60.0 ? th * 10.0 : 60.0, 0.5};
}

/* A step's operands as the op table sees them: graph values, or the plan's extra buffers (folds). */
static void lc_step_operands(const lc_graph_t *g, const lc_plan_template *t, const lc_plan_step *s, lc_op_operands *in) {
    memset(in, 0, sizeof *in);
    in->prefix = "graph_plan";
    in->n = s->nin;
    for (int i = 0; i < s->nin && i < LC_OP_MAX_INPUTS; i++) {
        const lc_value_id v = s->in[i];
        if (v >= LC_PLAN_EXTRA_BASE) {
            in->ndim[i] = t->extra_ndim[v - LC_PLAN_EXTRA_BASE];
            in->shape[i] = t->extra_shape[v - LC_PLAN_EXTRA_BASE];
            in->dtype[i] = LC_DTYPE_F32;
        } else if (V(g, v)) {
            in->ndim[i] = V(g, v)->ndim;
            in->shape[i] = V(g, v)->shape;
            in->dtype[i] = V(g, v)->dtype;
        }
    }
}

/* The step's attributes as the op table's rules read them. */
static lc_graph_attrs lc_step_attrs(const lc_plan_step *s) {
    lc_graph_attrs a;
    memset(&a, 0, sizeof a);
    a.stride_h = s->conv.stride_h, a.stride_w = s->conv.stride_w, a.pad_h = s->conv.pad_h, a.pad_w = s->conv.pad_w;
    a.causal = s->causal, a.eps = s->eps, a.gelu_approx = (int32_t)s->approx;
    return a;
}

/* The op table's work of the step (flops, GEMM-rate flops, bytes), priced with the device's figures. */
double lc_plan_step_cost_us(const lc_graph_t *g, const lc_plan_template *t, const lc_plan_step *s, lc_device device) {
    const lc_device_figures f = lc_figures(device);
    const lc_op_def *d = lc_op_get(s->op);
    const lc_graph_value *ov = V(g, s->out);
    if (!d || !ov || s->nin < d->min_inputs) return f.launch_us;
    lc_op_operands in;
    lc_step_operands(g, t, s, &in);
    for (int i = 0; i < d->min_inputs; i++)
        if (!in.shape[i]) return f.launch_us;
    const lc_graph_attrs a = lc_step_attrs(s);
    const lc_op_work w = d->work(&in, &a, ov->ndim, ov->shape);
    int kernels = 1;
    if (s->op == LC_OP_BIAS_ADD) kernels = 2; /* broadcast + add */
    if (s->op == LC_OP_LINEAR && device == LC_DEVICE_CUDA && s->act == LC_ACT_GELU_ERF) kernels = 2; /* + erf-GELU */
    const double compute_us = w.gemm_flops / (f.gemm_gflops * 1e3) + (w.flops - w.gemm_flops) / (f.other_gflops * 1e3);
    const double memory_us = w.bytes / (f.gbps * 1e3);
    return (double)kernels * f.launch_us + (compute_us > memory_us ? compute_us : memory_us);
}

/* ---- helpers ------------------------------------------------------------------------------------- */

typedef struct lc_fuse_ctx {
    const lc_graph_t *g;
    lc_plan_template *t;
    int *consumers;     /* per value: how many node inputs read it */
    int *first_reader;  /* per value: the first node reading it */
    int *done;          /* per node: already part of a step */
    char *ready;        /* per value: an input, a constant, or written by a step pushed already */
    int cap_steps, cap_records;
} lc_fuse_ctx;

/* A node's op table entry (NULL: an op the table lacks, raw mode; the builder refuses it). */
static const lc_op_def *def_of(const lc_fuse_ctx *c, int node) { return node >= 0 ? c->g->nodes[node].schema : NULL; }
static int is_op(const lc_fuse_ctx *c, int node, lc_op op) { return def_of(c, node) && def_of(c, node)->op == op; }
static int is_conv(const lc_fuse_ctx *c, int node) { return def_of(c, node) && def_of(c, node)->runs_as == LC_OP_CONV2D; }
static int is_constant(const lc_fuse_ctx *c, lc_value_id v) { return v >= 0 && c->g->values[v].kind == LC_GRAPH_VALUE_CONSTANT; }

/* The node reading node's output as input `slot` (any slot when slot < 0), when that output has exactly
 * one reader and is not a graph output; -1 otherwise with *why set. */
static int lc_sole_reader(const lc_fuse_ctx *c, int node, int slot, const char **why) {
    const lc_value_id v = c->g->nodes[node].output;
    if (c->g->values[v].is_output) {
        *why = "intermediate_is_graph_output";
        return -1;
    }
    if (c->consumers[v] != 1) {
        *why = c->consumers[v] == 0 ? "no_consumer" : "intermediate_has_other_consumers";
        return -1;
    }
    const int r = c->first_reader[v];
    if (r < 0 || c->done[r]) {
        *why = "consumer_already_fused";
        return -1;
    }
    if (slot >= 0 && c->g->nodes[r].inputs[slot] != v) {
        *why = "intermediate_not_in_fusable_slot";
        return -1;
    }
    return r;
}

static lc_status lc_push_step(lc_fuse_ctx *c, const lc_plan_step *s) {
    lc_plan_template *t = c->t;
    if (t->nsteps == c->cap_steps) {
        int cap = c->cap_steps ? 2 * c->cap_steps : 16;
        lc_plan_step *grown = realloc(t->steps, (size_t)cap * sizeof *grown);
        if (!grown) return lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: out of host memory");
        t->steps = grown;
        c->cap_steps = cap;
    }
    t->steps[t->nsteps++] = *s;
    if (s->out >= 0 && s->out < c->g->nvalues) c->ready[s->out] = 1;
    return LC_OK;
}

static void lc_join_names(const lc_fuse_ctx *c, const int *nodes, int n, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "+" : "", c->g->nodes[nodes[i]].name);
}

/* Records a site; returns its index (or -1 when out of memory, which only loses the record). */
static int lc_record(lc_fuse_ctx *c, const char *rule, const int *nodes, int n, int fired, double unfused,
                     double fused, const char *reason) {
    lc_plan_template *t = c->t;
    if (t->nrecords == c->cap_records) {
        int cap = c->cap_records ? 2 * c->cap_records : 8;
        lc_plan_record *grown = realloc(t->records, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        t->records = grown;
        c->cap_records = cap;
    }
    lc_plan_record *r = &t->records[t->nrecords];
    memset(r, 0, sizeof *r);
    snprintf(r->rule, sizeof r->rule, "%s", rule);
    lc_join_names(c, nodes, n, r->nodes, sizeof r->nodes);
    r->fired = fired;
    r->est_unfused_us = unfused;
    r->est_fused_us = fused;
    snprintf(r->reason, sizeof r->reason, "%s", fired ? "fired" : reason);
    return t->nrecords++;
}

/* The plain (unfused) step of one node (its op-table entry exists: lc_plan_build_steps checks). */
static lc_plan_step lc_node_step(const lc_fuse_ctx *c, int node) {
    const lc_graph_node *nd = &c->g->nodes[node];
    const lc_op_def *d = nd->schema;
    lc_plan_step s;
    memset(&s, 0, sizeof s);
    s.rule = -1;
    s.nin = nd->ninputs;
    for (int i = 0; i < 5; i++) s.in[i] = i < nd->ninputs ? nd->inputs[i] : -1;
    s.out = nd->output;
    s.eps = nd->attrs.eps;
    s.causal = nd->attrs.causal;
    s.approx = (lc_gelu_approx)nd->attrs.gelu_approx;
    s.conv = (lc_conv2d_params){nd->attrs.stride_h, nd->attrs.stride_w, nd->attrs.pad_h, nd->attrs.pad_w, 0};
    /* aliases run as their kernel's op; composite ops (bias_add, attention_packed) keep their own id */
    s.op = !d ? LC_OP_COUNT : (d->flags & LC_OPF_COMPOSITE) ? d->op : d->runs_as;
    snprintf(s.label, sizeof s.label, "%s(%s)", d ? d->name : nd->op, nd->name);
    return s;
}

static double lc_cost_nodes(const lc_fuse_ctx *c, const int *nodes, int n) {
    double us = 0.0;
    for (int i = 0; i < n; i++) {
        lc_plan_step s = lc_node_step(c, nodes[i]);
        us += lc_plan_step_cost_us(c->g, c->t, &s, c->t->device);
    }
    return us;
}

static lc_activation lc_act_of(const lc_fuse_ctx *c, int node) {
    if (is_op(c, node, LC_OP_RELU)) return LC_ACT_RELU;
    return c->g->nodes[node].attrs.gelu_approx == LC_GELU_TANH ? LC_ACT_GELU_TANH : LC_ACT_GELU_ERF;
}

static int lc_is_act(const lc_fuse_ctx *c, int node) { return is_op(c, node, LC_OP_RELU) || is_op(c, node, LC_OP_GELU); }

/* Fires or records a site: `fused` is the step when every precondition held (why == NULL). */
static lc_status lc_finish_site(lc_fuse_ctx *c, const char *rule, const int *nodes, int n, lc_plan_step *fused,
                                const char *why, int *fired) {
    *fired = 0;
    /* the fused step runs at its head's place: an operand a later node produces is not there yet */
    for (int k = 0; !why && k < fused->nin; k++)
        if (fused->in[k] >= 0 && fused->in[k] < c->g->nvalues && !c->ready[fused->in[k]]) why = "operand_not_ready";
    const double unfused = lc_cost_nodes(c, nodes, n);
    const double fcost = why ? 0.0 : lc_plan_step_cost_us(c->g, c->t, fused, c->t->device);
    if (!why && !c->t->fuse) why = "fusion_disabled";
    if (!why && fcost >= unfused) why = "cost_model_no_gain";
    const int rec = lc_record(c, rule, nodes, n, why == NULL, unfused, why && fcost == 0.0 ? unfused : fcost, why);
    if (why) return LC_OK;
    fused->rule = rec;
    char names[140];
    lc_join_names(c, nodes, n, names, sizeof names);
    const char *kind = fused->op == LC_OP_CONV2D ? "conv2d_relu" : lc_op_get(fused->op)->name;
    snprintf(fused->label, sizeof fused->label, "%s(%s)", kind, names);
    for (int i = 0; i < n; i++) c->done[nodes[i]] = 1;
    *fired = 1;
    return lc_push_step(c, fused);
}

/* ---- rules --------------------------------------------------------------------------------------- */

static lc_status lc_try_conv(lc_fuse_ctx *c, int node, int *fired) {
    const char *why = NULL;
    *fired = 0;
    const int relu = lc_sole_reader(c, node, 0, &why);
    if (relu < 0 || !is_op(c, relu, LC_OP_RELU)) return LC_OK; /* nothing to fuse: not a site */
    /* conv_relu_qkv_attention */
    int chain[4] = {node, relu, -1, -1};
    const char *why5 = NULL;
    int pack = lc_sole_reader(c, relu, 0, &why5);
    if (pack >= 0 && is_op(c, pack, LC_OP_QKV_PACK)) {
        chain[2] = pack;
        int att = lc_sole_reader(c, pack, 0, &why5);
        if (att >= 0 && is_op(c, att, LC_OP_ATTENTION_PACKED)) {
            chain[3] = att;
            lc_plan_step s = lc_node_step(c, node);
            s.op = LC_OP_CONV_ATTENTION;
            s.conv.apply_relu = 1;
            s.out = c->g->nodes[att].output;
            s.causal = c->g->nodes[att].attrs.causal;
            const lc_backend *be = lc_backend_for(c->t->device);
            const lc_graph_value *x = V(c->g, s.in[0]), *w = V(c->g, s.in[1]);
            /* the fused kernel's fits entry, asked with the shapes (no data) in the one call struct */
            int fits = 0;
            if (be && x && w && x->ndim == 4 && w->ndim == 4) {
                lc_call a;
                memset(&a, 0, sizeof a);
                a.op = LC_OP_CONV_ATTENTION;
                a.dtype = x->dtype;
                a.nin = 2;
                a.ndim[0] = a.ndim[1] = 4;
                a.shape[0] = x->shape;
                a.shape[1] = w->shape;
                a.attrs = lc_step_attrs(&s);
                a.attrs.seq = c->g->nodes[pack].attrs.seq;
                a.attrs.head_dim = c->g->nodes[pack].attrs.head_dim;
                a.apply_relu = 1;
                a.out_ndim = 2;
                a.out_shape[0] = a.attrs.seq;
                a.out_shape[1] = a.attrs.head_dim;
                fits = lc_backend_fits(be, &a);
            }
            const char *why_ca = !be || !be->kernels[LC_OP_CONV_ATTENTION] ? "no_fused_kernel_on_device"
                                 : !fits                                   ? "shape_outside_fused_kernel"
                                                                           : NULL;
            lc_status st = lc_finish_site(c, "conv_relu_qkv_attention", chain, 4, &s, why_ca, fired);
            if (st != LC_OK || *fired) return st;
        }
    }
    lc_plan_step s = lc_node_step(c, node);
    s.conv.apply_relu = 1;
    s.out = c->g->nodes[relu].output;
    return lc_finish_site(c, "conv_relu", chain, 2, &s, NULL, fired);
}

/* Extends chain[0..*n) (ending at a matmul) with the matmul's sole bias_add reader, then a relu/gelu
 * reader of that (or of the matmul): the epilogue lc_linear can take. *bias / *act: those nodes or -1. */
static void lc_follow_epilogue(lc_fuse_ctx *c, int *chain, int *n, int *bias, int *act) {
    const char *why = NULL;
    int next = lc_sole_reader(c, chain[*n - 1], 0, &why);
    *bias = *act = -1;
    if (next >= 0 && is_op(c, next, LC_OP_BIAS_ADD)) {
        *bias = next;
        chain[(*n)++] = next;
        next = lc_sole_reader(c, next, 0, &why);
    }
    if (next >= 0 && lc_is_act(c, next)) {
        *act = next;
        chain[(*n)++] = next;
    }
}

/* matmul (x [m,k] @ w) -> [bias_add] -> [relu|gelu] as one lc_linear. */
static lc_status lc_try_matmul(lc_fuse_ctx *c, int node, int *fired) {
    *fired = 0;
    int chain[3] = {node, -1, -1}, n = 1, bias, act;
    lc_follow_epilogue(c, chain, &n, &bias, &act);
    if (n == 1) return LC_OK;
    lc_plan_step s = lc_node_step(c, node);
    s.op = LC_OP_LINEAR;
    s.nin = 3;
    s.in[2] = bias >= 0 ? c->g->nodes[bias].inputs[1] : -1;
    s.act = act >= 0 ? lc_act_of(c, act) : LC_ACT_NONE;
    s.out = c->g->nodes[chain[n - 1]].output;
    return lc_finish_site(c, "matmul_bias_act", chain, n, &s, NULL, fired);
}

static lc_status lc_try_layer_norm(lc_fuse_ctx *c, int node, int *fired) {
    const char *why = NULL;
    *fired = 0;
    const lc_graph_node *ln = &c->g->nodes[node];
    const int mm = lc_sole_reader(c, node, 0, &why);
    if (mm < 0 || !is_op(c, mm, LC_OP_MATMUL)) return LC_OK;
    int chain[4] = {node, mm, -1, -1}, n = 2, bias, act;
    lc_follow_epilogue(c, chain, &n, &bias, &act);
    const lc_value_id gamma = ln->ninputs > 1 ? ln->inputs[1] : -1, beta = ln->ninputs > 2 ? ln->inputs[2] : -1;
    const lc_value_id w = c->g->nodes[mm].inputs[1], b = bias >= 0 ? c->g->nodes[bias].inputs[1] : -1;
    const lc_graph_value *lnv = V(c->g, ln->output);
    const char *why3 = gamma < 0                                         ? "no_affine_to_fold"
                       : !lnv || lnv->dtype != LC_DTYPE_F32               ? "fold_needs_float32"
                       : !is_constant(c, gamma) || (beta >= 0 && !is_constant(c, beta)) ? "affine_not_constant"
                       : !is_constant(c, w) || (b >= 0 && !is_constant(c, b))           ? "weights_not_constant"
                       : c->t->nextra + 2 > 16                                          ? "too_many_folds"
                                                                                        : NULL;
    /* The fused form: layer_norm without affine (into ln's output) + linear with the folded weights. */
    lc_plan_step s = lc_node_step(c, mm);
    s.op = LC_OP_LINEAR;
    s.nin = 3;
    s.act = act >= 0 ? lc_act_of(c, act) : LC_ACT_NONE;
    s.out = c->g->nodes[chain[n - 1]].output;
    int fired_here = 0;
    if (!why3) {
        const int e = c->t->nextra;
        s.in[1] = LC_PLAN_EXTRA_BASE + e;
        s.in[2] = LC_PLAN_EXTRA_BASE + e + 1;
    }
    /* cost: the fused pair is the affine-free layer_norm + linear; compare against the chain */
    lc_plan_step norm = lc_node_step(c, node);
    norm.nin = 1;
    norm.in[1] = norm.in[2] = -1;
    const double unfused = lc_cost_nodes(c, chain, n);
    if (!why3 && !c->t->fuse) why3 = "fusion_disabled";
    double fused_cost = unfused;
    if (!why3) {
        const int e = c->t->nextra;
        const lc_graph_value *wv = V(c->g, w);
        c->t->extra_ndim[e] = 2;
        c->t->extra_shape[e][0] = wv->shape[0];
        c->t->extra_shape[e][1] = wv->shape[1];
        c->t->extra_ndim[e + 1] = 1;
        c->t->extra_shape[e + 1][0] = wv->shape[1];
        fused_cost = lc_plan_step_cost_us(c->g, c->t, &norm, c->t->device) + lc_plan_step_cost_us(c->g, c->t, &s, c->t->device);
        if (fused_cost >= unfused) why3 = "cost_model_no_gain";
    }
    const int rec = lc_record(c, "layer_norm_matmul", chain, n, why3 == NULL, unfused, fused_cost, why3);
    if (why3) return LC_OK;
    lc_plan_fold *grown = realloc(c->t->folds, (size_t)(c->t->nfolds + 1) * sizeof *grown);
    if (!grown) return lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: out of host memory");
    c->t->folds = grown;
    c->t->folds[c->t->nfolds++] = (lc_plan_fold){gamma, beta, w, b, s.in[1], s.in[2]};
    c->t->nextra += 2;
    char names[140];
    lc_join_names(c, chain, n, names, sizeof names);
    norm.rule = s.rule = rec;
    snprintf(norm.label, sizeof norm.label, "layer_norm_unscaled(%s)", ln->name);
    snprintf(s.label, sizeof s.label, "linear_folded(%s)", names);
    for (int i = 0; i < n; i++) c->done[chain[i]] = 1;
    fired_here = 1;
    *fired = fired_here;
    lc_status st = lc_push_step(c, &norm);
    return st == LC_OK ? lc_push_step(c, &s) : st;
}

/* attention_forward -> matmul (x · w, attention output as x) (-> bias_add): one fused kernel where the
 * backend has it for the sizes (CPU: any; CUDA: kᵀ in shared memory). */
static lc_status lc_try_attention_projection(lc_fuse_ctx *c, int node, int *fired) {
    const char *why = NULL;
    *fired = 0;
    const int mm = lc_sole_reader(c, node, 0, &why);
    if (mm < 0 || !is_op(c, mm, LC_OP_MATMUL)) return LC_OK;
    int chain[3] = {node, mm, -1}, n = 2;
    const int next = lc_sole_reader(c, mm, 0, &why);
    if (next >= 0 && is_op(c, next, LC_OP_BIAS_ADD)) chain[n++] = next;
    const lc_graph_node *at = &c->g->nodes[node];
    const lc_value_id w = c->g->nodes[mm].inputs[1];
    const int64_t *qs = lc_shape_of(c->g, at->inputs[0]), *ws = lc_shape_of(c->g, w);
    const lc_graph_value *qv = V(c->g, at->inputs[0]);
    const char *why4 = is_op(c, node, LC_OP_ATTENTION_PACKED) ? "packed_qkv_not_supported"
                       : qv && !lc_op_supported(LC_OP_ATTENTION_PROJECTION, c->t->device, qv->dtype)
                           ? "dtype_outside_fused_kernel"
                       : !lc_attention_projection_fits(lc_backend_for(c->t->device), qs[0], qs[1], ws[1])
                           ? "shape_outside_fused_kernel"
                           : NULL;
    lc_plan_step s = lc_node_step(c, node);
    s.op = LC_OP_ATTENTION_PROJECTION;
    s.nin = 5;
    s.in[3] = w;
    s.in[4] = n == 3 ? c->g->nodes[chain[2]].inputs[1] : -1;
    s.out = c->g->nodes[chain[n - 1]].output;
    return lc_finish_site(c, "attention_projection", chain, n, &s, why4, fired);
}

lc_status lc_plan_build_steps(const lc_graph_t *g, lc_plan_template *t) {
    const int32_t nn = g->nnodes, nv = g->nvalues;
    lc_fuse_ctx c = {g, t, NULL, NULL, NULL, NULL, 0, 0};
    c.consumers = calloc((size_t)nv + 1, sizeof *c.consumers);
    c.first_reader = malloc(((size_t)nv + 1) * sizeof *c.first_reader);
    c.done = calloc((size_t)nn + 1, sizeof *c.done);
    c.ready = calloc((size_t)nv + 1, 1);
    int32_t *order = malloc(((size_t)nn + 1) * sizeof *order), *indeg = malloc(((size_t)nn + 1) * sizeof *indeg);
    char *live_v = calloc((size_t)nv + 1, 1), *live_n = calloc((size_t)nn + 1, 1);
    lc_status st = LC_OK;
    if (!c.consumers || !c.first_reader || !c.done || !c.ready || !order || !indeg || !live_v || !live_n)
        st = lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: out of host memory");
    const int32_t ordered = st == LC_OK ? lc_graph_topo_sort(g, order, indeg) : 0;
    if (st == LC_OK && ordered < 0) st = lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: out of host memory");
    if (st == LC_OK && ordered < nn) {
        const int32_t stuck = lc_graph_cycle_node(g, indeg);
        st = lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: node '%s' depends on itself through a cycle: no execution order exists",
                      g->nodes[stuck].name);
    }
    /* liveness in reverse dependency order: a node is live when its output is (a graph output or read by a
     * live node); a dead node gets no step and does not count as a consumer */
    for (int32_t i = 0; st == LC_OK && i < g->noutputs; i++) live_v[g->outputs[i]] = 1;
    for (int32_t r = nn - 1; st == LC_OK && r >= 0; r--) {
        const lc_graph_node *n = &g->nodes[order[r]];
        if (!lc_graph_value_ok(g, n->output) || !live_v[n->output]) continue;
        live_n[order[r]] = 1;
        for (int k = 0; k < n->ninputs; k++)
            if (lc_graph_value_ok(g, n->inputs[k])) live_v[n->inputs[k]] = 1;
    }
    for (int32_t v = 0; st == LC_OK && v < nv; v++) {
        c.first_reader[v] = -1;
        c.ready[v] = g->values[v].kind != LC_GRAPH_VALUE_INTERMEDIATE;
    }
    for (int32_t r = 0; st == LC_OK && r < nn; r++) {
        const int32_t i = order[r];
        if (!live_n[i]) continue;
        for (int k = 0; k < g->nodes[i].ninputs; k++) {
            const lc_value_id v = g->nodes[i].inputs[k];
            if (v < 0 || v >= nv) continue;
            if (c.consumers[v]++ == 0) c.first_reader[v] = i;
        }
    }
    for (int32_t r = 0; st == LC_OK && r < nn; r++) {
        const int32_t i = order[r];
        if (c.done[i] || !live_n[i]) continue;
        if (!g->nodes[i].schema) {
            st = lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: node '%s': op '%s' has no entry in the op table",
                          g->nodes[i].name, g->nodes[i].op);
            break;
        }
        int fired = 0;
        if (is_conv(&c, i)) st = lc_try_conv(&c, i, &fired);
        else if (is_op(&c, i, LC_OP_LAYER_NORM)) st = lc_try_layer_norm(&c, i, &fired);
        else if (is_op(&c, i, LC_OP_MATMUL)) st = lc_try_matmul(&c, i, &fired);
        else if (is_op(&c, i, LC_OP_ATTENTION) || is_op(&c, i, LC_OP_ATTENTION_PACKED))
            st = lc_try_attention_projection(&c, i, &fired);
        if (st == LC_OK && !fired) {
            lc_plan_step s = lc_node_step(&c, i);
            c.done[i] = 1;
            st = lc_push_step(&c, &s);
        }
    }
    free(c.consumers);
    free(c.first_reader);
    free(c.done);
    free(c.ready);
    free(order), free(indeg), free(live_v), free(live_n);
    return st;
}
