/* plan.c — the graph planner's public side (graph.h "planning and execution"): validation, the
 * capability-aware device choice (every op must have a kernel on the device, else the fallback device
 * with the seed's reason code; strict mode makes that an error), the process-wide plan cache of
 * analyses (steps + fusion records, fusion.c) keyed by structure + device + sync policy + fusion flag,
 * the planner's own check of every template (no step reads a value nothing wrote; independent of
 * validation), and upload / execute / download / summary / explain on a bound plan (execute.c).
 * Tests: tests/c/test_plan.c, tests/python/test_graph_plan.py. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/trace_record.h"
#include "graph/plan_internal.h"

/* ---- plan cache ---------------------------------------------------------------------------------- */

#define LC_PLAN_CACHE_CAP 64

static struct {
    pthread_mutex_t mu;
    lc_plan_template entries[LC_PLAN_CACHE_CAP];
    int count, next; /* next: the slot a new entry replaces once full (oldest first) */
    uint64_t hits, misses;
} lc_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void lc_template_free(lc_plan_template *t) {
    free(t->steps);
    free(t->records);
    free(t->folds);
    memset(t, 0, sizeof *t);
}

/* Deep copy (arrays duplicated); LC_ERR_OUT_OF_MEMORY leaves *dst empty. */
static lc_status lc_template_copy(lc_plan_template *dst, const lc_plan_template *src) {
    *dst = *src;
    dst->steps = NULL, dst->records = NULL, dst->folds = NULL;
    if (src->nsteps && !(dst->steps = malloc((size_t)src->nsteps * sizeof *dst->steps))) goto oom;
    if (src->nrecords && !(dst->records = malloc((size_t)src->nrecords * sizeof *dst->records))) goto oom;
    if (src->nfolds && !(dst->folds = malloc((size_t)src->nfolds * sizeof *dst->folds))) goto oom;
    if (src->nsteps) memcpy(dst->steps, src->steps, (size_t)src->nsteps * sizeof *dst->steps);
    if (src->nrecords) memcpy(dst->records, src->records, (size_t)src->nrecords * sizeof *dst->records);
    if (src->nfolds) memcpy(dst->folds, src->folds, (size_t)src->nfolds * sizeof *dst->folds);
    return LC_OK;
oom:
    lc_template_free(dst);
    return lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: out of host memory");
}

static int lc_cache_lookup(uint64_t key, lc_plan_template *out) {
    int hit = 0;
    pthread_mutex_lock(&lc_cache.mu);
    for (int i = 0; i < lc_cache.count && !hit; i++)
        if (lc_cache.entries[i].key == key) hit = lc_template_copy(out, &lc_cache.entries[i]) == LC_OK;
    if (hit) lc_cache.hits++;
    else lc_cache.misses++;
    pthread_mutex_unlock(&lc_cache.mu);
    return hit;
}

static void lc_cache_store(const lc_plan_template *t) {
    pthread_mutex_lock(&lc_cache.mu);
    int slot = lc_cache.count < LC_PLAN_CACHE_CAP ? lc_cache.count++ : lc_cache.next;
    if (lc_cache.count == LC_PLAN_CACHE_CAP && slot == lc_cache.next) lc_cache.next = (lc_cache.next + 1) % LC_PLAN_CACHE_CAP;
    lc_template_free(&lc_cache.entries[slot]);
    if (lc_template_copy(&lc_cache.entries[slot], t) != LC_OK) {
        /* not cached: keep the table consistent (an empty slot never matches a real key) */
        lc_cache.entries[slot].key = 0;
    }
    pthread_mutex_unlock(&lc_cache.mu);
}

void lc_graph_plan_cache_get_stats(lc_graph_plan_cache_stats *out) {
    if (!out) return;
    pthread_mutex_lock(&lc_cache.mu);
    *out = (lc_graph_plan_cache_stats){lc_cache.hits, lc_cache.misses, (size_t)lc_cache.count, LC_PLAN_CACHE_CAP};
    pthread_mutex_unlock(&lc_cache.mu);
}

void lc_graph_plan_cache_clear(void) {
    pthread_mutex_lock(&lc_cache.mu);
    for (int i = 0; i < lc_cache.count; i++) lc_template_free(&lc_cache.entries[i]);
    lc_cache.count = lc_cache.next = 0;
    lc_cache.hits = lc_cache.misses = 0;
    pthread_mutex_unlock(&lc_cache.mu);
}

/* ---- key ------------------------------------------------------------------------------------------ */

static uint64_t lc_mix(uint64_t h, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Structure (ops, wiring, value kinds/shapes/dtypes, outputs) on top of lc_graph_hash, and the
 * planning inputs: device asked, what is available, strict mode, sync policy, fusion. Constant data
 * is not part of it: a hit reuses the analysis, never the buffers. */
static uint64_t lc_plan_key(const lc_graph_t *g, const lc_graph_plan_options *o) {
    uint64_t h = lc_mix(0xcbf29ce484222325ull, lc_graph_hash(g));
    for (int32_t i = 0; i < g->nnodes; i++) {
        const lc_graph_node *n = &g->nodes[i];
        h = lc_mix(h, (uint64_t)(n->op_index + 7));
        for (int k = 0; k < n->ninputs; k++) h = lc_mix(h, (uint64_t)(uint32_t)n->inputs[k]);
        h = lc_mix(h, (uint64_t)(uint32_t)n->output);
    }
    for (int32_t v = 0; v < g->nvalues; v++) {
        h = lc_mix(h, ((uint64_t)g->values[v].kind << 8) | (uint64_t)g->values[v].dtype | ((uint64_t)g->values[v].is_output << 16));
        for (int d = 0; d < g->values[v].ndim; d++) h = lc_mix(h, (uint64_t)g->values[v].shape[d]);
    }
    h = lc_mix(h, (uint64_t)o->device);
    h = lc_mix(h, (uint64_t)lc_device_available(LC_DEVICE_CUDA));
    h = lc_mix(h, (uint64_t)lc_strict_device());
    h = lc_mix(h, (uint64_t)(o->sync_policy + 1));
    h = lc_mix(h, (uint64_t)(o->fuse != 0));
    return h ? h : 1;
}

/* ---- device choice -------------------------------------------------------------------------------- */

static lc_status lc_choose_device(const lc_graph_t *g, lc_plan_template *t) {
    const lc_device req = t->requested;
    t->has_reason = 0;
    if (req == LC_DEVICE_CPU) {
        t->device = LC_DEVICE_CPU;
        return LC_OK;
    }
    if (req != LC_DEVICE_CUDA && req != LC_DEVICE_METAL && req != LC_DEVICE_AUTO)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: device: expected cpu, cuda, metal or auto, got code %d", (int)req);
    const int cuda_ok = lc_device_available(LC_DEVICE_CUDA);
    const char *unsupported = NULL;
    for (int32_t i = 0; cuda_ok && i < g->nnodes && !unsupported; i++) {
        const lc_graph_node *n = &g->nodes[i];
        if (!lc_graph_schema_supported(n->schema, LC_DEVICE_CUDA, g->values[n->output].dtype) ||
            lc_graph_node_gpu_limit(g, n))
            unsupported = n->name;
    }
    const int strict = lc_strict_device() && req != LC_DEVICE_AUTO;
    if (!cuda_ok || unsupported) {
        if (strict)
            return lc_error(!cuda_ok ? LC_ERR_DEVICE_UNAVAILABLE : LC_ERR_UNSUPPORTED,
                            "graph_plan: device: '%s' was requested in strict device mode, but %s%s", lc_device_name(req),
                            !cuda_ok ? "it is not available" : "it has no kernel for node ", !cuda_ok ? "" : unsupported);
        t->device = LC_DEVICE_CPU;
        if (req != LC_DEVICE_AUTO || unsupported) {
            t->has_reason = 1;
            t->reason = !cuda_ok ? LC_GRAPH_REASON_FALLBACK_PREFERRED_UNAVAILABLE : LC_GRAPH_REASON_FALLBACK_PREFERRED_UNSUPPORTED;
        }
        return LC_OK;
    }
    t->device = LC_DEVICE_CUDA;
    if (req == LC_DEVICE_METAL) {
        if (lc_strict_device())
            return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "graph_plan: device: 'metal' was requested in strict device mode, but it is not available");
        t->has_reason = 1;
        t->reason = LC_GRAPH_REASON_FALLBACK_PREFERRED_UNAVAILABLE;
    }
    return LC_OK;
}

/* ---- the planner's own check (second line of defence, independent of validation) ------------------ */

/* Inputs every step of an op must have (in[0..n) >= 0): the op table's min_inputs; further slots are
 * optional (-1: absent). */
static int lc_step_required_inputs(lc_op op) {
    const lc_op_def *d = lc_op_get(op);
    return d ? d->min_inputs : 1;
}

lc_status lc_plan_check_steps(const lc_graph_t *g, const lc_plan_template *t) {
    const char *fn = "graph_plan: internal check";
    const int32_t nv = g->nvalues;
    if (t->nodes != g->nnodes)
        return lc_error(LC_ERR_INTERNAL, "%s: the analysis is of a graph of %d nodes, this graph has %d", fn, t->nodes,
                        (int)g->nnodes);
    if (t->nextra < 0 || t->nextra > 16 || t->nfolds < 0 || 2 * t->nfolds > t->nextra || t->nsteps < 0)
        return lc_error(LC_ERR_INTERNAL, "%s: %d folds / %d extra buffers out of range", fn, t->nfolds, t->nextra);
    char *have = malloc((size_t)nv + 1);
    if (!have) return lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: out of host memory");
    for (int32_t v = 0; v < nv; v++) have[v] = g->values[v].kind != LC_GRAPH_VALUE_INTERMEDIATE;
    char extra[16] = {0};
    lc_status st = LC_OK;
    /* folds read constants only and make the extra buffers */
    for (int i = 0; st == LC_OK && i < t->nfolds; i++) {
        const lc_plan_fold *f = &t->folds[i];
        const lc_value_id reads[4] = {f->gamma, f->w, f->beta, f->bias};
        for (int k = 0; st == LC_OK && k < 4; k++) {
            if (k >= 2 && reads[k] == -1) continue;
            if (!lc_graph_value_ok(g, reads[k]) || g->values[reads[k]].kind != LC_GRAPH_VALUE_CONSTANT || !g->values[reads[k]].tensor)
                st = lc_error(LC_ERR_INVALID_ARGUMENT, "%s: fold %d reads value id %d, which is not a graph constant", fn, i,
                              (int)reads[k]);
        }
        const lc_value_id made[2] = {f->out_w, f->out_b};
        for (int k = 0; st == LC_OK && k < 2; k++) {
            const int64_t e = (int64_t)made[k] - LC_PLAN_EXTRA_BASE;
            if (e < 0 || e >= t->nextra || extra[e])
                st = lc_error(LC_ERR_INTERNAL, "%s: fold %d writes buffer id %d, not a fresh extra buffer", fn, i, (int)made[k]);
            else extra[e] = 1;
        }
    }
    for (int i = 0; st == LC_OK && i < t->nsteps; i++) {
        const lc_plan_step *s = &t->steps[i];
        if (!lc_op_get(s->op) || s->nin < 1 || s->nin > 5) {
            st = lc_error(LC_ERR_INTERNAL, "%s: step %d %s: op %d with %d inputs", fn, i, s->label, (int)s->op, s->nin);
            break;
        }
        const int required = lc_step_required_inputs(s->op);
        for (int k = 0; st == LC_OK && k < 5; k++) {
            const lc_value_id v = s->in[k];
            if (v == -1 && k >= required) continue;
            if (v >= LC_PLAN_EXTRA_BASE) {
                const int64_t e = (int64_t)v - LC_PLAN_EXTRA_BASE;
                if (e >= t->nextra || !extra[e])
                    st = lc_error(LC_ERR_INTERNAL, "%s: step %d %s: input %d names buffer id %d, which no fold makes", fn, i,
                                  s->label, k, (int)v);
            } else if (!lc_graph_value_ok(g, v)) {
                st = lc_error(LC_ERR_INVALID_ARGUMENT,
                              "graph_plan: step %d %s: input %d names value id %d, which does not exist (the graph has %d "
                              "values): refused (it would read a buffer nothing writes)",
                              i, s->label, k, (int)v, (int)nv);
            } else if (!have[v]) {
                st = lc_error(LC_ERR_INVALID_ARGUMENT,
                              "graph_plan: step %d %s: input %d reads value '%s', which neither a graph input/constant nor an "
                              "earlier step provides: refused (it would read an unwritten buffer)",
                              i, s->label, k, g->values[v].name);
            }
        }
        if (st != LC_OK) break;
        const lc_value_id o = s->out;
        if (!lc_graph_value_ok(g, o))
            st = lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: step %d %s: writes value id %d, which does not exist", i,
                          s->label, (int)o);
        else if (g->values[o].kind != LC_GRAPH_VALUE_INTERMEDIATE)
            st = lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: step %d %s: writes graph %s '%s' (read-only)", i, s->label,
                          lc_graph_value_kind_name(g->values[o].kind), g->values[o].name);
        else if (have[o])
            st = lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: step %d %s: writes value '%s', which an earlier step wrote",
                          i, s->label, g->values[o].name);
        else have[o] = 1;
    }
    for (int32_t i = 0; st == LC_OK && i < g->noutputs; i++)
        if (!lc_graph_value_ok(g, g->outputs[i]) || !have[g->outputs[i]])
            st = lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: graph output '%s' is written by no step: refused",
                          lc_graph_value_ok(g, g->outputs[i]) ? g->values[g->outputs[i]].name : "?");
    free(have);
    return st;
}

/* ---- plan ----------------------------------------------------------------------------------------- */

static lc_status lc_validate_for_plan(const lc_graph_t *g, lc_device device) {
    lc_graph_report *rep = NULL;
    lc_status st = lc_graph_validate(g, device, &rep);
    if (st != LC_OK) return st;
    for (size_t i = 0; st == LC_OK && i < lc_graph_report_count(rep); i++) {
        lc_graph_issue is;
        if (lc_graph_report_get(rep, i, &is) == LC_OK && is.severity == LC_GRAPH_SEVERITY_ERROR)
            st = lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: the graph does not validate: %s: %s (node %s): %s", is.pass,
                          is.code, is.node ? is.node : "-", is.message);
    }
    lc_graph_report_free(rep);
    return st;
}

lc_status lc_graph_plan_new(const lc_graph_t *g, const lc_graph_plan_options *o, lc_graph_plan_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: out: expected a pointer, got NULL");
    *out = NULL;
    if (!g) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: graph: expected a graph, got NULL");
    lc_graph_plan_options opt = o ? *o : (lc_graph_plan_options){LC_DEVICE_AUTO, -1, 1};
    if (opt.sync_policy < -1 || opt.sync_policy >= LC_SYNC_POLICY_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: sync_policy: expected auto, always, never or -1, got %d", opt.sync_policy);
    if (g->noutputs == 0) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: graph: no output is marked (lc_graph_mark_output)");
    lc_graph_plan_t *p = calloc(1, sizeof *p);
    if (!p) return lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: out of host memory");
    pthread_mutex_init(&p->mu, NULL);
    const uint64_t key = lc_plan_key(g, &opt);
    lc_status st = LC_OK;
    p->cache_hit = lc_cache_lookup(key, &p->t);
    if (!p->cache_hit) {
        p->t.key = key;
        p->t.requested = opt.device;
        p->t.fuse = opt.fuse != 0;
        p->t.sync_policy = opt.sync_policy;
        p->t.nodes = g->nnodes;
        st = lc_choose_device(g, &p->t);
        if (st == LC_OK) st = lc_validate_for_plan(g, p->t.device);
        if (st == LC_OK) st = lc_plan_build_steps(g, &p->t);
        if (st == LC_OK) st = lc_plan_check_steps(g, &p->t);
        if (st == LC_OK) lc_cache_store(&p->t);
    } else {
        st = lc_plan_check_steps(g, &p->t); /* a cached analysis is checked against this graph too */
    }
    p->be = lc_backend_for(p->t.device);
    /* graph inputs in value-id order, outputs in marking order */
    p->inputs = malloc(((size_t)g->nvalues + 1) * sizeof *p->inputs);
    p->outputs = malloc(((size_t)g->noutputs + 1) * sizeof *p->outputs);
    if (st == LC_OK && (!p->inputs || !p->outputs)) st = lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: out of host memory");
    for (int32_t v = 0; st == LC_OK && v < g->nvalues; v++)
        if (g->values[v].kind == LC_GRAPH_VALUE_INPUT) p->inputs[p->ninputs++] = v;
    for (int32_t i = 0; st == LC_OK && i < g->noutputs; i++) p->outputs[p->noutputs++] = g->outputs[i];
    if (st == LC_OK && p->ninputs > 32) st = lc_error(LC_ERR_UNSUPPORTED, "graph_plan: graph: more than 32 inputs");
    if (st == LC_OK) st = lc_plan_bind(g, p);
    if (st != LC_OK) {
        lc_graph_plan_free(p);
        return st;
    }
    *out = p;
    return LC_OK;
}

void lc_graph_plan_free(lc_graph_plan_t *p) {
    if (!p) return;
    lc_plan_unbind(p);
    lc_template_free(&p->t);
    free(p->inputs);
    free(p->outputs);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int lc_graph_plan_num_inputs(const lc_graph_plan_t *p) { return p ? p->ninputs : 0; }
int lc_graph_plan_num_outputs(const lc_graph_plan_t *p) { return p ? p->noutputs : 0; }
const lc_tensor_t *lc_graph_plan_input(const lc_graph_plan_t *p, int i) {
    return (p && i >= 0 && i < p->ninputs) ? p->buf[p->inputs[i]] : NULL;
}
const lc_tensor_t *lc_graph_plan_output(const lc_graph_plan_t *p, int i) {
    return (p && i >= 0 && i < p->noutputs) ? p->buf[p->outputs[i]] : NULL;
}

lc_status lc_plan_upload_locked(lc_graph_plan_t *p, int i, const lc_tensor_t *src) {
    if (i < 0 || i >= p->ninputs)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: input index: expected 0..%d, got %d", p->ninputs - 1, i);
    lc_status st = lc_resident_upload(p->be, "graph_plan", "input", p->buf[p->inputs[i]], src);
    if (st == LC_OK) p->uploaded_mask_lo |= 1u << i;
    return st;
}

static int lc_plan_policy(const lc_graph_plan_t *p) {
    return p->t.sync_policy >= 0 ? p->t.sync_policy : (int)lc_effective_sync_policy();
}

lc_status lc_plan_execute_locked(lc_graph_plan_t *p, int64_t loops) {
    if (loops < 1) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: loops: expected >= 1, got %lld", (long long)loops);
    for (int i = 0; i < p->ninputs; i++)
        if (!(p->uploaded_mask_lo & (1u << i)))
            return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: input %d: no data on the device yet (upload every input before executing)", i);
    const uint64_t t0 = lc_trace_enabled() ? lc_trace_now_ns() : 0;
    int64_t replayed = 0;
    lc_status st = lc_plan_run(p, loops, &replayed);
    if (st != LC_OK) return st;
    p->runs += loops;
    p->replays += replayed;
    const int waited = p->t.device != LC_DEVICE_CPU && lc_plan_policy(p) != LC_SYNC_NEVER;
    if (waited && (st = p->be->sync()) != LC_OK) return st;
    if (t0 && lc_trace_enabled()) {
        const lc_reason reason =
            !p->t.has_reason ? (p->t.requested == LC_DEVICE_AUTO ? LC_REASON_AUTO_SELECTED : LC_REASON_DIRECT)
            : p->t.reason == LC_GRAPH_REASON_FALLBACK_PREFERRED_UNAVAILABLE ? LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE
                                                                             : LC_REASON_FALLBACK_PREFERRED_UNSUPPORTED;
        lc_trace_span("graph_plan", replayed ? "cuda_graph_replay" : "eager", p->t.requested, p->t.device, reason,
                      waited || p->t.device == LC_DEVICE_CPU, 0, t0);
    }
    return LC_OK;
}

lc_status lc_plan_download_locked(lc_graph_plan_t *p, int i, lc_tensor_t *dst) {
    if (i < 0 || i >= p->noutputs)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: output index: expected 0..%d, got %d", p->noutputs - 1, i);
    if (p->runs == 0) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan: out: nothing to download yet (execute first)");
    int waited = 0;
    return lc_resident_download(p->be, "graph_plan", p->buf[p->outputs[i]], dst, &waited);
}

lc_status lc_graph_plan_synchronize(lc_graph_plan_t *p) {
    if (!p) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan_synchronize: plan: expected a plan, got NULL");
    return p->t.device == LC_DEVICE_CPU ? LC_OK : p->be->sync();
}

lc_status lc_graph_plan_get_summary(const lc_graph_plan_t *p, lc_graph_plan_summary *out) {
    if (!p || !out) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan_summary: expected a plan and an out pointer");
    memset(out, 0, sizeof *out);
    out->requested = p->t.requested;
    out->device = p->t.device;
    out->has_reason = p->t.has_reason;
    out->reason = p->t.reason;
    out->nodes = p->t.nodes;
    out->steps = p->t.nsteps;
    int ops = 0;
    for (int i = 0; i < p->t.nsteps; i++) {
        out->fused_steps += p->t.steps[i].rule >= 0;
        ops += p->t.steps[i].op == LC_OP_BIAS_ADD ? 2 : 1;
    }
    for (int i = 0; i < p->t.nrecords; i++) {
        out->fusions_fired += p->t.records[i].fired;
        out->fusions_rejected += !p->t.records[i].fired;
    }
    out->segments = 1;
    out->sync_boundaries = 0;
    pthread_mutex_t *mu = (pthread_mutex_t *)&p->mu; /* runs/replay change under it (execute.c) */
    pthread_mutex_lock(mu);
    out->uses_graph = p->replay.graph != NULL;
    const int graphable = p->be->capture_begin != NULL && !p->replay.capture_failed;
    out->runs = p->runs;
    out->replays = p->replays;
    pthread_mutex_unlock(mu);
    out->host_dispatches_per_run = graphable ? 1 : ops;
    out->cache_hit = p->cache_hit;
    out->key = p->t.key;
    out->sync_policy = p->t.sync_policy;
    return LC_OK;
}

size_t lc_graph_plan_explain_count(const lc_graph_plan_t *p) { return p ? (size_t)p->t.nrecords : 0; }

lc_status lc_graph_plan_explain(const lc_graph_plan_t *p, size_t i, lc_graph_fusion_record *out) {
    if (!p || !out || i >= (size_t)p->t.nrecords)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan_explain: i: expected 0..%d", p ? p->t.nrecords - 1 : -1);
    const lc_plan_record *r = &p->t.records[i];
    *out = (lc_graph_fusion_record){r->rule, r->nodes, r->fired, r->est_unfused_us, r->est_fused_us,
                                    r->est_fused_us > 0 ? r->est_unfused_us / r->est_fused_us : 1.0, r->reason};
    return LC_OK;
}

const char *lc_graph_plan_step_label(const lc_graph_plan_t *p, int step) {
    return (p && step >= 0 && step < p->t.nsteps) ? p->t.steps[step].label : NULL;
}
