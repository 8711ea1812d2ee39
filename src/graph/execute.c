/* execute.c — a plan's resident buffers and its run: binds every value the steps touch to a float32
 * tensor on the plan's device (inputs and intermediates allocated, constants shared when they already
 * live there contiguously, else copied; layer_norm_matmul folds computed in float64 on the host), runs
 * the steps through the public ops (so they are routed, traced and capturable), and replays them as one
 * CUDA graph from the second run on (ops/resident.h). The public upload / execute / download / run
 * entries hold the plan's mutex, so a plan shared by threads serialises their calls (graph.h).
 * Tests: tests/c/test_plan.c, tests/python/test_graph_plan.py, tests/python/test_threads_hidden_state.py. */
#include <stdlib.h>
#include <string.h>

#include "graph/plan_internal.h"
#include "ops/attention_projection.h"
#include "ops/conv_attention.h"
#include "ops/resident.h"

static lc_tensor_t *lc_buf(const lc_graph_plan_t *p, lc_value_id v) {
    if (v < 0) return NULL;
    if (v >= LC_PLAN_EXTRA_BASE) return p->extra[v - LC_PLAN_EXTRA_BASE];
    return p->buf[v];
}

/* A copy of `src` (any device/layout) as a new contiguous tensor on `device`. */
static lc_status lc_copy_to(const lc_tensor_t *src, lc_device device, lc_tensor_t **out) {
    const size_t bytes = lc_tensor_nbytes(src);
    void *host = lc_aligned_alloc(bytes);
    if (!host) return lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: could not allocate %zu bytes", bytes);
    lc_status st = lc_tensor_to_host(src, host, bytes);
    if (st == LC_OK) st = lc_tensor_from_host(host, bytes, lc_tensor_dtype(src), device, lc_tensor_ndim(src), lc_tensor_shape(src), out);
    lc_aligned_free(host);
    return st;
}

static lc_status lc_host_copy(const lc_tensor_t *t, double **out) {
    const int64_t n = lc_tensor_numel(t);
    float *f = lc_aligned_alloc((size_t)n * sizeof(float));
    double *d = malloc((size_t)n * sizeof(double));
    lc_status st = f && d ? lc_tensor_to_host(t, f, (size_t)n * sizeof(float)) : lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: fold: out of host memory");
    for (int64_t i = 0; st == LC_OK && i < n; i++) d[i] = f[i];
    lc_aligned_free(f);
    if (st != LC_OK) {
        free(d);
        return st;
    }
    *out = d;
    return LC_OK;
}

/* w' [d,n] = diag(gamma) w ; b' [n] = beta w + bias, in float64, then float32 on the plan device. */
static lc_status lc_fold(const lc_graph_t *g, lc_graph_plan_t *p, const lc_plan_fold *f) {
    const lc_tensor_t *tg = g->values[f->gamma].tensor, *tw = g->values[f->w].tensor;
    const int64_t d = lc_tensor_dim(tw, 0), n = lc_tensor_dim(tw, 1);
    double *gamma = NULL, *beta = NULL, *w = NULL, *bias = NULL;
    lc_status st = lc_host_copy(tg, &gamma);
    if (st == LC_OK) st = lc_host_copy(tw, &w);
    if (st == LC_OK && f->beta >= 0) st = lc_host_copy(g->values[f->beta].tensor, &beta);
    if (st == LC_OK && f->bias >= 0) st = lc_host_copy(g->values[f->bias].tensor, &bias);
    float *wf = lc_aligned_alloc((size_t)(d * n) * sizeof(float)), *bf = lc_aligned_alloc((size_t)n * sizeof(float));
    if (st == LC_OK && (!wf || !bf)) st = lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: fold: out of host memory");
    if (st == LC_OK) {
        for (int64_t j = 0; j < n; j++) {
            double acc = bias ? bias[j] : 0.0;
            for (int64_t i = 0; i < d; i++) {
                wf[i * n + j] = (float)(gamma[i] * w[i * n + j]);
                if (beta) acc += beta[i] * w[i * n + j];
            }
            bf[j] = (float)acc;
        }
        const int64_t ws[2] = {d, n}, bs[1] = {n};
        st = lc_tensor_from_host(wf, (size_t)(d * n) * sizeof(float), LC_DTYPE_F32, p->t.device, 2, ws,
                                 &p->extra[f->out_w - LC_PLAN_EXTRA_BASE]);
        if (st == LC_OK)
            st = lc_tensor_from_host(bf, (size_t)n * sizeof(float), LC_DTYPE_F32, p->t.device, 1, bs,
                                     &p->extra[f->out_b - LC_PLAN_EXTRA_BASE]);
    }
    free(gamma), free(beta), free(w), free(bias);
    lc_aligned_free(wf);
    lc_aligned_free(bf);
    return st;
}

static lc_status lc_bind_value(const lc_graph_t *g, lc_graph_plan_t *p, lc_value_id v) {
    if (v < 0 || v >= LC_PLAN_EXTRA_BASE || p->buf[v]) return LC_OK;
    const lc_graph_value *val = &g->values[v];
    const lc_device dev = p->t.device;
    if (val->kind == LC_GRAPH_VALUE_CONSTANT) {
        const lc_tensor_t *t = val->tensor;
        if (lc_tensor_device(t) == dev && lc_tensor_is_contiguous(t))
            return lc_tensor_view(t, lc_tensor_ndim(t), lc_tensor_shape(t), NULL, lc_tensor_offset(t), LC_DEVICE_AUTO, &p->buf[v]);
        return lc_copy_to(t, dev, &p->buf[v]);
    }
    return lc_tensor_new(val->dtype, dev, val->ndim, val->shape, &p->buf[v]);
}

lc_status lc_plan_bind(const lc_graph_t *g, lc_graph_plan_t *p) {
    p->nvalues = g->nvalues;
    p->buf = calloc((size_t)g->nvalues + 1, sizeof *p->buf);
    if (!p->buf) return lc_error(LC_ERR_OUT_OF_MEMORY, "graph_plan: out of host memory");
    lc_status st = LC_OK;
    for (int i = 0; st == LC_OK && i < p->t.nsteps; i++) {
        const lc_plan_step *s = &p->t.steps[i];
        for (int k = 0; st == LC_OK && k < s->nin; k++) st = lc_bind_value(g, p, s->in[k]);
        if (st == LC_OK) st = lc_bind_value(g, p, s->out);
    }
    for (int i = 0; st == LC_OK && i < p->ninputs; i++) st = lc_bind_value(g, p, p->inputs[i]);
    for (int i = 0; st == LC_OK && i < p->noutputs; i++) st = lc_bind_value(g, p, p->outputs[i]);
    for (int i = 0; st == LC_OK && i < p->t.nfolds; i++) st = lc_fold(g, p, &p->t.folds[i]);
    /* scratch: standalone bias_add broadcasts into a [m,n] buffer; attention_packed needs q/k/v views */
    for (int i = 0; st == LC_OK && i < p->t.nsteps; i++) {
        const lc_plan_step *s = &p->t.steps[i];
        if (i >= 64 && (s->op == LC_OP_BIAS_ADD || s->op == LC_OP_ATTENTION_PACKED))
            return lc_error(LC_ERR_UNSUPPORTED, "graph_plan: more than 64 steps before a bias_add/attention_packed step");
        if (s->op == LC_OP_BIAS_ADD) {
            const lc_tensor_t *o = p->buf[s->out];
            st = lc_tensor_new(lc_tensor_dtype(o), p->t.device, lc_tensor_ndim(o), lc_tensor_shape(o), &p->qkv_views[i][0]);
        } else if (s->op == LC_OP_ATTENTION_PACKED) {
            const lc_tensor_t *qkv = p->buf[s->in[0]];
            const int64_t one[2] = {lc_tensor_dim(qkv, 1), lc_tensor_dim(qkv, 2)};
            for (int k = 0; st == LC_OK && k < 3; k++)
                st = lc_tensor_view(qkv, 2, one, NULL, k * one[0] * one[1], LC_DEVICE_AUTO, &p->qkv_views[i][k]);
        }
    }
    return st;
}

void lc_plan_unbind(lc_graph_plan_t *p) {
    lc_replay_free(&p->replay);
    for (int i = 0; p->buf && i < p->nvalues; i++) lc_tensor_free(p->buf[i]);
    free(p->buf);
    p->buf = NULL;
    for (int i = 0; i < 16; i++) lc_tensor_free(p->extra[i]), p->extra[i] = NULL;
    for (int i = 0; i < 64; i++)
        for (int k = 0; k < 3; k++) lc_tensor_free(p->qkv_views[i][k]), p->qkv_views[i][k] = NULL;
}

static lc_status lc_run_step(lc_graph_plan_t *p, int i) {
    const lc_plan_step *s = &p->t.steps[i];
    const lc_device d = p->t.device;
    lc_tensor_t *o = lc_buf(p, s->out);
    lc_tensor_t *a = lc_buf(p, s->in[0]), *b = s->nin > 1 ? lc_buf(p, s->in[1]) : NULL, *c = s->nin > 2 ? lc_buf(p, s->in[2]) : NULL;
    switch (s->op) {
    case LC_OP_MATMUL: return lc_matmul(a, b, o, d);
    case LC_OP_LINEAR: return lc_linear_residual(a, b, c, s->nin > 3 ? lc_buf(p, s->in[3]) : NULL, s->act, o, d);
    case LC_OP_BIAS_ADD: {
        lc_status st = lc_qkv_pack_repeat(b, p->qkv_views[i][0], d); /* bias broadcast over rows */
        return st == LC_OK ? lc_vector_add(a, p->qkv_views[i][0], o, d) : st;
    }
    case LC_OP_VECTOR_ADD: return lc_vector_add(a, b, o, d);
    case LC_OP_MATRIX_SUB: return lc_matrix_sub(a, b, o, d);
    case LC_OP_MATRIX_DIV: return lc_matrix_div(a, b, o, d);
    case LC_OP_RELU: return lc_relu(a, o, d);
    case LC_OP_GELU: return lc_gelu(a, o, s->approx, d);
    case LC_OP_LAYER_NORM: return lc_layer_norm(a, b, c, o, s->eps, d);
    case LC_OP_ATTENTION: return lc_attention_forward(a, b, c, o, s->causal, d);
    case LC_OP_ATTENTION_PACKED:
        return lc_attention_forward(p->qkv_views[i][0], p->qkv_views[i][1], p->qkv_views[i][2], o, s->causal, d);
    case LC_OP_CONV2D: return lc_conv2d_nchw(a, b, c, o, &s->conv, d);
    case LC_OP_QKV_PACK: return lc_qkv_pack_repeat(a, o, d);
    case LC_OP_SDPA: {
        const lc_sdpa_options opt = {.causal = s->causal};
        return lc_sdpa(a, b, c, o, &opt, d);
    }
    case LC_OP_RMS_NORM: return lc_rms_norm(a, b, o, s->eps, d);
    case LC_OP_SOFTMAX: return lc_softmax(a, o, d);
    case LC_OP_SILU: return lc_silu(a, o, d);
    case LC_OP_SILU_MUL: return lc_silu_mul(a, b, o, d);
    case LC_OP_ADD: return lc_add(a, b, o, d);
    case LC_OP_MUL: return lc_mul(a, b, o, d);
    case LC_OP_CONV_ATTENTION: return lc_conv_attention_fused(a, b, c, o, &s->conv, s->causal, d);
    case LC_OP_ATTENTION_PROJECTION:
        return lc_attention_projection_fused(a, b, c, lc_buf(p, s->in[3]), s->nin > 4 ? lc_buf(p, s->in[4]) : NULL, o,
                                             s->causal, d);
    case LC_OP_CONV2D_3X3:
    case LC_OP_CONV2D_3X3S1P1:
    case LC_OP_KV_APPEND: /* not graph ops */
    case LC_OP_ROPE:
    case LC_OP_EMBEDDING:
    case LC_OP_ARGMAX:
    case LC_OP_COPY:
    case LC_OP_SAMPLE:
    case LC_OP_LAYER_NORM_LINEAR:
    case LC_OP_RMS_NORM_LINEAR:
    case LC_OP_SILU_MUL_LINEAR:
    case LC_OP_COUNT: break; /* aliases run as LC_OP_CONV2D (fusion.c); no entry: refused by the builder */
    }
    return lc_error(LC_ERR_INTERNAL, "graph_plan: step %d: op %d has no runner", i, (int)s->op);
}

static lc_status lc_run_steps(void *ctx) {
    lc_graph_plan_t *p = ctx;
    lc_status st = LC_OK;
    for (int i = 0; st == LC_OK && i < p->t.nsteps; i++) {
        st = lc_run_step(p, i);
        if (st != LC_OK) st = lc_error_wrap(st, "graph_plan: step %d %s", i, p->t.steps[i].label);
    }
    return st;
}

lc_status lc_plan_run(lc_graph_plan_t *p, int64_t loops, int64_t *replayed) {
    return lc_replay_run(&p->replay, p->be, lc_run_steps, p, loops, replayed);
}

/* ---- public entries: one call at a time per plan ------------------------------------------------- */

lc_status lc_graph_plan_upload(lc_graph_plan_t *p, int i, const lc_tensor_t *src) {
    if (!p) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan_upload: plan: expected a plan, got NULL");
    pthread_mutex_lock(&p->mu);
    const lc_status st = lc_plan_upload_locked(p, i, src);
    pthread_mutex_unlock(&p->mu);
    return st;
}

/* Checks every input, then uploads them (caller holds the plan's mutex): a refused call changes nothing. */
static lc_status lc_plan_upload_all_locked(lc_graph_plan_t *p, const lc_tensor_t *const *inputs, int ninputs) {
    lc_status st = LC_OK;
    for (int i = 0; st == LC_OK && i < ninputs; i++)
        st = lc_resident_check_upload("graph_plan", "input", p->buf[p->inputs[i]], inputs[i]);
    for (int i = 0; st == LC_OK && i < ninputs; i++) st = lc_plan_upload_locked(p, i, inputs[i]);
    return st;
}

static lc_status lc_plan_check_inputs_arg(const char *fn, const lc_graph_plan_t *p, const lc_tensor_t *const *inputs,
                                          int ninputs) {
    if (ninputs != p->ninputs || (ninputs > 0 && !inputs))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: inputs: expected %d (the graph's inputs in order), got %d", fn,
                        p->ninputs, ninputs);
    for (int i = 0; i < ninputs; i++)
        if (!inputs[i]) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: input %d: expected a tensor, got NULL", fn, i);
    return LC_OK;
}

lc_status lc_graph_plan_upload_all(lc_graph_plan_t *p, const lc_tensor_t *const *inputs, int ninputs) {
    if (!p) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan_upload_all: plan: expected a plan, got NULL");
    lc_status st = lc_plan_check_inputs_arg("graph_plan_upload_all", p, inputs, ninputs);
    if (st != LC_OK) return st;
    pthread_mutex_lock(&p->mu);
    st = lc_plan_upload_all_locked(p, inputs, ninputs);
    pthread_mutex_unlock(&p->mu);
    return st;
}

lc_status lc_graph_plan_execute(lc_graph_plan_t *p, int64_t loops) {
    if (!p) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan_execute: plan: expected a plan, got NULL");
    pthread_mutex_lock(&p->mu);
    const lc_status st = lc_plan_execute_locked(p, loops);
    pthread_mutex_unlock(&p->mu);
    return st;
}

lc_status lc_graph_plan_download(lc_graph_plan_t *p, int i, lc_tensor_t *dst) {
    if (!p) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan_download: plan: expected a plan, got NULL");
    pthread_mutex_lock(&p->mu);
    const lc_status st = lc_plan_download_locked(p, i, dst);
    pthread_mutex_unlock(&p->mu);
    return st;
}

lc_status lc_graph_plan_run(lc_graph_plan_t *p, const lc_tensor_t *const *inputs, int ninputs, lc_tensor_t *const *outputs,
                            int noutputs) {
    if (!p) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan_run: plan: expected a plan, got NULL");
    lc_status st = lc_plan_check_inputs_arg("graph_plan_run", p, inputs, ninputs);
    if (st != LC_OK) return st;
    if (noutputs < 0 || noutputs > p->noutputs || (noutputs > 0 && !outputs))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_plan_run: outputs: expected 0..%d, got %d", p->noutputs, noutputs);
    pthread_mutex_lock(&p->mu);
    st = lc_plan_upload_all_locked(p, inputs, ninputs);
    if (st == LC_OK) st = lc_plan_execute_locked(p, 1);
    for (int i = 0; st == LC_OK && i < noutputs; i++)
        if (outputs[i]) st = lc_plan_download_locked(p, i, outputs[i]);
    pthread_mutex_unlock(&p->mu);
    return st;
}
