/* plan_py.c — Python bindings of planned graphs (include/lightning_core/graph.h "planning and
 * execution"): GraphPlan(graph_core, device='auto', sync=None, fuse=True) with upload(*inputs),
 * execute(loops=1, sync=None), run(*inputs) -> [ndarray per output], download_into(i, out),
 * synchronize(), summary() -> dict, explain() -> [dict per fusion site], steps() -> [label];
 * graph_plan_cache_stats() -> dict, graph_plan_cache_clear(). python/lightning_core/graph.py wraps
 * these as Graph.plan(...). Threads: the C plan serialises its calls (its mutex); run is one
 * lc_graph_plan_run (upload + execute + download under one lock), so threads sharing a plan each get
 * their own inputs' results. Tests: tests/python/test_graph_plan.py, tests/python/test_threads_hidden_state.py. */
#include <time.h>

#include "call.h"
#include "convert.h"
#include "internal.h"
#include "resident_args.h"

typedef struct {
    PyObject_HEAD
    lc_graph_plan_t *p;
} PlanObject;

static void plan_dealloc(PlanObject *self) {
    lc_graph_plan_t *p = self->p;
    self->p = NULL;
    if (p) {
        Py_BEGIN_ALLOW_THREADS
        lc_graph_plan_free(p);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int plan_init(PlanObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"graph", "device", "sync", "fuse", NULL};
    const char *fn = "GraphPlan";
    PyObject *graph = NULL, *device_obj = NULL, *sync_obj = NULL, *fuse_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO", kwlist, &graph, &device_obj, &sync_obj, &fuse_obj)) return -1;
    lc_graph_t *g = lcpy_graph_handle(graph);
    if (!g) {
        PyErr_Format(PyExc_TypeError, "%s: graph: expected a lightning_core GraphCore (Graph.core), got %s", fn,
                     Py_TYPE(graph)->tp_name);
        return -1;
    }
    if (self->p) {
        PyErr_Format(PyExc_RuntimeError, "%s: already initialised", fn);
        return -1;
    }
    lc_graph_plan_options opt = {LC_DEVICE_AUTO, -1, 1};
    if (device_obj && device_obj != Py_None && lcpy_device_arg(fn, device_obj, &opt.device) < 0) return -1;
    if (lcpy_sync_policy_arg(fn, sync_obj, &opt.sync_policy) < 0 || lcpy_bool_arg(fn, "fuse", fuse_obj, 1, &opt.fuse) < 0)
        return -1;
    lc_status st;
    lc_graph_plan_t *p = NULL;
    lcpy_graph_planning(graph, 1); /* no mutation while the graph is read without the GIL */
    Py_BEGIN_ALLOW_THREADS
    st = lc_graph_plan_new(g, &opt, &p);
    Py_END_ALLOW_THREADS
    lcpy_graph_planning(graph, -1);
    if (st != LC_OK) {
        lcpy_raise_status(st);
        return -1;
    }
    if (self->p) { /* another thread's __init__ finished first */
        lc_graph_plan_free(p);
        PyErr_Format(PyExc_RuntimeError, "%s: already initialised", fn);
        return -1;
    }
    self->p = p;
    return 0;
}

static int plan_ready(PlanObject *self, const char *fn) {
    if (self->p) return 0;
    PyErr_Format(PyExc_RuntimeError, "%s: the plan is not initialised", fn);
    return -1;
}

/* Uploads positional inputs args[0..n) (all the plan's inputs, in order). */
static int plan_upload_args(PlanObject *self, const char *fn, PyObject *const *args, Py_ssize_t nargs) {
    const int nin = lc_graph_plan_num_inputs(self->p);
    if (nargs != nin) {
        PyErr_Format(PyExc_TypeError, "%s: expected %d input%s (the graph's inputs in order), got %zd", fn, nin,
                     nin == 1 ? "" : "s", nargs);
        return -1;
    }
    /* Every argument converted, then all uploaded at once (checked before any copy): a refused call
     * changes no resident input. */
    lcpy_call *calls = PyMem_Calloc((size_t)(nin ? nin : 1), sizeof *calls);
    const lc_tensor_t **tins = PyMem_Calloc((size_t)(nin ? nin : 1), sizeof *tins);
    int ok = calls && tins, converted = 0;
    if (!ok) PyErr_NoMemory();
    for (int i = 0; ok && i < nin; i++, converted++) {
        call_init(&calls[i], fn);
        char name[32];
        snprintf(name, sizeof name, "input %d", i);
        if (call_input(&calls[i], name, args[i]) < 0 ||
            call_resident_dtype(&calls[i], lc_tensor_dtype(lc_graph_plan_input(self->p, i)), "the graph input's") < 0 ||
            call_wrap_in(&calls[i], 0, 0, NULL) < 0) {
            call_fail(&calls[i]);
            ok = 0;
            break;
        }
        tins[i] = calls[i].tin[0];
    }
    if (ok) {
        lc_status st;
        Py_BEGIN_ALLOW_THREADS
        st = lc_graph_plan_upload_all(self->p, tins, nin);
        Py_END_ALLOW_THREADS
        if (st != LC_OK) {
            lcpy_raise_status(st);
            ok = 0;
        }
    }
    for (int i = 0; i < converted; i++) call_release(&calls[i]);
    PyMem_Free(calls);
    PyMem_Free(tins);
    return ok ? 0 : -1;
}

static PyObject *plan_upload(PlanObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (plan_ready(self, "GraphPlan.upload") < 0 || plan_upload_args(self, "GraphPlan.upload", args, nargs) < 0) return NULL;
    Py_RETURN_NONE;
}

static lcpy_sig sig_execute = LCPY_SIG("GraphPlan.execute", 0, "loops", "sync");

/* Runs `loops` executions in chunks (the first of at most 64 loops, then sized to ~10 ms of work), so that
 * between chunks the GIL is taken back and Ctrl-C raises KeyboardInterrupt; every chunk but the last runs
 * under the "never" sync policy, so a call still waits at most once. */
static PyObject *plan_execute(PlanObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    const char *fn = "GraphPlan.execute";
    PyObject *v[2];
    int64_t loops = 1;
    int policy;
    if (plan_ready(self, fn) < 0 || lcpy_parse(&sig_execute, args, nargs, kw, v) < 0 ||
        (v[0] && lcpy_int_arg(fn, "loops", v[0], 1, LC_SESSION_MAX_LOOPS, &loops) < 0) ||
        lcpy_sync_policy_arg(fn, v[1], &policy) < 0)
        return NULL;
    lc_status st = LC_OK;
    int64_t done = 0, chunk = loops < 64 ? loops : 64;
    while (st == LC_OK && done < loops) {
        const int64_t n = chunk < loops - done ? chunk : loops - done;
        const int last = done + n == loops;
        struct timespec t0, t1;
        Py_BEGIN_ALLOW_THREADS
        const int saved = lc_get_thread_sync_policy();
        if (!last) lc_set_thread_sync_policy(LC_SYNC_NEVER);
        else if (policy >= 0) lc_set_thread_sync_policy(policy);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        st = lc_graph_plan_execute(self->p, n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        lc_set_thread_sync_policy(saved);
        Py_END_ALLOW_THREADS
        done += n;
        if (st == LC_OK && !last) {
            if (PyErr_CheckSignals() < 0) return NULL; /* the plan stays usable: runs so far are counted */
            const double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
            /* at most 256 runs between two signal checks: a chunk that grew while runs were fast must not
             * hold Ctrl-C off for long when they slow down (the CPU shared with other work) */
            if (ms < 5.0 && chunk < 256) chunk *= 2;
            else if (ms > 20.0 && chunk > 1) chunk /= 2;
        }
    }
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

/* Upload, execute once and download as one lc_graph_plan_run (the plan's mutex held throughout), so
 * threads sharing a plan each get the outputs of their own inputs. */
static PyObject *plan_run(PlanObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "GraphPlan.run";
    if (plan_ready(self, fn) < 0) return NULL;
    const int nin = lc_graph_plan_num_inputs(self->p), nout = lc_graph_plan_num_outputs(self->p);
    if (nargs != nin) {
        PyErr_Format(PyExc_TypeError, "%s: expected %d input%s (the graph's inputs in order), got %zd", fn, nin,
                     nin == 1 ? "" : "s", nargs);
        return NULL;
    }
    typedef struct {
        lcpy_call c;
        char name[24];
    } run_input;
    run_input *in = PyMem_Calloc((size_t)nin + 1, sizeof *in);
    const lc_tensor_t **tin = PyMem_Calloc((size_t)nin + 1, sizeof *tin);
    lc_tensor_t **tout = PyMem_Calloc((size_t)nout + 1, sizeof *tout);
    PyObject *list = PyList_New(nout);
    int ok = in && tin && tout && list, prepared = 0; /* prepared: inputs whose call needs call_release */
    if (!ok && !PyErr_Occurred()) PyErr_NoMemory();
    for (int i = 0; ok && i < nin; i++) {
        lcpy_call *c = &in[i].c;
        snprintf(in[i].name, sizeof in[i].name, "input %d", i);
        call_init(c, fn);
        ok = call_input(c, in[i].name, args[i]) == 0 &&
             call_resident_dtype(c, lc_tensor_dtype(lc_graph_plan_input(self->p, i)), "the graph input's") == 0 &&
             call_wrap_in(c, 0, 0, NULL) == 0;
        prepared++;
        if (ok) tin[i] = c->tin[0];
    }
    for (int i = 0; ok && i < nout; i++) {
        const lc_tensor_t *o = lc_graph_plan_output(self->p, i);
        npy_intp dims[LC_MAX_DIMS];
        for (int d = 0; d < lc_tensor_ndim(o); d++) dims[d] = (npy_intp)lc_tensor_dim(o, d);
        const int tn = lcpy_dtype_typenum(fn, lc_tensor_dtype(o));
        PyArrayObject *arr = tn < 0 ? NULL : lcpy_new_array(lc_tensor_ndim(o), dims, tn);
        ok = arr != NULL;
        if (ok) {
            PyList_SET_ITEM(list, i, (PyObject *)arr);
            ok = lcpy_wrap(arr, 0, NULL, 1, &tout[i]) == 0;
        }
    }
    lc_status st = LC_OK;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        st = lc_graph_plan_run(self->p, tin, nin, tout, nout);
        Py_END_ALLOW_THREADS
    }
    for (int i = 0; i < prepared; i++) call_release(&in[i].c);
    for (int i = 0; tout && i < nout; i++) lc_tensor_free(tout[i]);
    PyMem_Free(in);
    PyMem_Free((void *)tin);
    PyMem_Free(tout);
    if (ok && st == LC_OK) return list;
    Py_XDECREF(list);
    return st != LC_OK ? lcpy_raise_status(st) : NULL;
}

static lcpy_sig sig_download_into = LCPY_SIG("GraphPlan.download_into", 2, "i", "out");

static PyObject *plan_download_into(PlanObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    const char *fn = "GraphPlan.download_into";
    PyObject *v[2];
    int64_t i;
    if (plan_ready(self, fn) < 0 || lcpy_parse(&sig_download_into, args, nargs, kw, v) < 0 ||
        lcpy_int_arg(fn, "i", v[0], 0, lc_graph_plan_num_outputs(self->p) - 1, &i) < 0)
        return NULL;
    lcpy_call c;
    call_init(&c, fn);
    c.dtype = lc_tensor_dtype(lc_graph_plan_output(self->p, (int)i));
    if ((c.typenum = lcpy_dtype_typenum(fn, c.dtype)) < 0) return NULL;
    npy_intp count = (npy_intp)lc_tensor_numel(lc_graph_plan_output(self->p, (int)i));
    if (call_out(&c, v[1], -1, &count, "the output's elements", 0u) < 0 || call_wrap_out(&c, 0, NULL) < 0) return call_fail(&c);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_graph_plan_download(self->p, (int)i, c.tout);
    Py_END_ALLOW_THREADS
    return call_finish(&c, st);
}

static PyObject *plan_synchronize(PlanObject *self, PyObject *noargs) {
    (void)noargs;
    if (plan_ready(self, "GraphPlan.synchronize") < 0) return NULL;
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_graph_plan_synchronize(self->p);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *plan_summary(PlanObject *self, PyObject *noargs) {
    (void)noargs;
    if (plan_ready(self, "GraphPlan.summary") < 0) return NULL;
    lc_graph_plan_summary s;
    lc_graph_plan_get_summary(self->p, &s);
    char key[24];
    snprintf(key, sizeof key, "%016llx", (unsigned long long)s.key);
    return Py_BuildValue("{sssssNsisisisisisisisisOsOsssssLsL}", "requested", lc_device_name(s.requested), "device",
                         lc_device_name(s.device), "reason",
                         s.has_reason ? PyUnicode_FromString(lc_graph_reason_code(s.reason)) : (Py_INCREF(Py_None), Py_None),
                         "nodes", s.nodes, "steps", s.steps, "fused_steps", s.fused_steps, "fusions_fired",
                         s.fusions_fired, "fusions_rejected", s.fusions_rejected, "segments", s.segments,
                         "sync_boundaries", s.sync_boundaries, "host_dispatches_per_run", s.host_dispatches_per_run,
                         "uses_graph", s.uses_graph ? Py_True : Py_False, "cache_hit", s.cache_hit ? Py_True : Py_False,
                         "plan_key", key, "sync",
                         s.sync_policy < 0 ? "runtime" : lc_sync_policy_name((lc_sync_policy)s.sync_policy), "runs",
                         (long long)s.runs, "replays", (long long)s.replays);
}

static PyObject *plan_explain(PlanObject *self, PyObject *noargs) {
    (void)noargs;
    if (plan_ready(self, "GraphPlan.explain") < 0) return NULL;
    const size_t n = lc_graph_plan_explain_count(self->p);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        lc_graph_fusion_record r;
        lc_graph_plan_explain(self->p, i, &r);
        PyObject *d = Py_BuildValue("{sssssOsdsdsdss}", "rule", r.rule, "nodes", r.nodes, "fired", r.fired ? Py_True : Py_False,
                                    "est_unfused_us", r.est_unfused_us, "est_fused_us", r.est_fused_us,
                                    "expected_speedup", r.expected_speedup, "reason", r.reason);
        if (!d) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    return list;
}

static PyObject *plan_steps(PlanObject *self, PyObject *noargs) {
    (void)noargs;
    if (plan_ready(self, "GraphPlan.steps") < 0) return NULL;
    PyObject *list = PyList_New(0);
    for (int i = 0; list; i++) {
        const char *label = lc_graph_plan_step_label(self->p, i);
        if (!label) break;
        PyObject *s = PyUnicode_FromString(label);
        if (!s || PyList_Append(list, s) < 0) {
            Py_XDECREF(s);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(s);
    }
    return list;
}

static PyMethodDef plan_methods[] = {
    {"upload", LCPY_FASTCALL(plan_upload), METH_FASTCALL, "upload($self, *inputs)\n--\n\nCopies the inputs (graph-input order) into the resident buffers."},
    {"execute", LCPY_FASTCALL(plan_execute), METH_FASTCALL | METH_KEYWORDS,
     "execute($self, /, loops=1, sync=None)\n--\n\nRuns the plan loops times (1..2**24) on the resident inputs (CUDA: one graph launch per loop after the first two), then waits unless sync='never'. Ctrl-C interrupts a long run between launches."},
    {"run", LCPY_FASTCALL(plan_run), METH_FASTCALL, "run($self, *inputs)\n--\n\nUpload, execute once, download (atomically: threads sharing the plan each get their own result): a list with one ndarray per output, of the output's dtype."},
    {"download_into", LCPY_FASTCALL(plan_download_into), METH_FASTCALL | METH_KEYWORDS,
     "download_into($self, /, i, out)\n--\n\nCopies output i into out (an ndarray or tensor with its element count); returns out."},
    {"synchronize", (PyCFunction)plan_synchronize, METH_NOARGS, "synchronize($self, /)\n--\n\nWaits for the plan's device work."},
    {"summary", (PyCFunction)plan_summary, METH_NOARGS, "summary($self, /)\n--\n\nDict: device, reason, steps, fusions, host dispatches per run, cache hit, runs."},
    {"explain", (PyCFunction)plan_explain, METH_NOARGS, "explain($self, /)\n--\n\nList of fusion sites: rule, nodes, fired, est_unfused_us, est_fused_us, expected_speedup, reason."},
    {"steps", (PyCFunction)plan_steps, METH_NOARGS, "steps($self, /)\n--\n\nThe planned steps, one label each."},
    {NULL, NULL, 0, NULL},
};

static PyObject *plan_get_num_inputs(PlanObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLong(self->p ? lc_graph_plan_num_inputs(self->p) : 0);
}
static PyObject *plan_get_num_outputs(PlanObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLong(self->p ? lc_graph_plan_num_outputs(self->p) : 0);
}
static PyObject *plan_get_device(PlanObject *self, void *closure) {
    (void)closure;
    lc_graph_plan_summary s;
    if (!self->p || lc_graph_plan_get_summary(self->p, &s) != LC_OK) Py_RETURN_NONE;
    return PyUnicode_FromString(lc_device_name(s.device));
}

static PyGetSetDef plan_getset[] = {
    {"num_inputs", (getter)plan_get_num_inputs, NULL, "graph inputs (run/upload take them in this order)", NULL},
    {"num_outputs", (getter)plan_get_num_outputs, NULL, "graph outputs", NULL},
    {"device", (getter)plan_get_device, NULL, "'cpu' or 'cuda': where the plan runs", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Plan_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lightning_core.GraphPlan",
    .tp_basicsize = sizeof(PlanObject),
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "GraphPlan(graph_core, device='auto', sync=None, fuse=True): a validated, fused, device-bound plan of a "
              "graph (docs/python_api.md, 'Graph plans').",
    .tp_methods = plan_methods,
    .tp_getset = plan_getset,
    .tp_init = (initproc)plan_init,
    .tp_new = PyType_GenericNew,
};

static PyObject *py_graph_plan_cache_stats(PyObject *self, PyObject *noargs) {
    lc_graph_plan_cache_stats s;
    lc_graph_plan_cache_get_stats(&s);
    return Py_BuildValue("{sKsKsnsn}", "hits", (unsigned long long)s.hits, "misses", (unsigned long long)s.misses, "entries",
                         (Py_ssize_t)s.entries, "capacity", (Py_ssize_t)s.capacity);
}

static PyObject *py_graph_plan_cache_clear(PyObject *self, PyObject *noargs) {
    lc_graph_plan_cache_clear();
    Py_RETURN_NONE;
}

PyMethodDef lcpy_plan_methods[] = {
    LCPY_NOARGS(graph_plan_cache_stats, "Dict of the plan cache: hits, misses, entries, capacity."),
    LCPY_NOARGS(graph_plan_cache_clear, "Empties the plan cache and zeroes its counters."),
    {NULL, NULL, 0, NULL},
};

int lcpy_plan_register(PyObject *module) {
    if (PyType_Ready(&Plan_Type) < 0) return -1;
    Py_INCREF(&Plan_Type);
    if (PyModule_AddObject(module, "GraphPlan", (PyObject *)&Plan_Type) < 0) {
        Py_DECREF(&Plan_Type);
        return -1;
    }
    return 0;
}
