/* session_py.c — Python bindings of sessions, device graphs and execution policy (session.h, runtime.h):
 *   ResidentSession(kind, dims, device='auto', causal=False, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
 *     dtype='float32' (or float16, bfloat16; inputs and out then of that dtype only)):
 *     the base type of lightning_core's MatMulResidentSession, MatrixElemwiseResidentSession,
 *     AttentionSession and ConvAttentionSession (python/lightning_core/sessions.py), with the seed's
 *     methods start_into / run_into / sync_into / run_batch_sync_into / run_batch_sync_no_download_into /
 *     run_batch_sync_cached_no_download plus upload / download_into / synchronize; every method takes
 *     keywords program= (elementwise: 0 add, 1 sub, 2 div) and sync= (a per-call sync policy);
 *   `loops` is 1..SESSION_MAX_LOOPS (2^24); a run of many loops polls for signals about every 10 ms
 *   (lc_session_run_polled), so Ctrl-C raises KeyboardInterrupt mid-batch and the session stays usable;
 *   integer arguments (dims, stride_h/w, pad_h/w, loops, program) all go through lcpy_int_arg (bool refused,
 *   ValueError out of range);
 *   capture_graph(fn, device='cuda') -> DeviceGraph with replay(loops=1, sync=None);
 *   set_sync_policy / get_sync_policy / _set_thread_sync_policy / _get_thread_sync_policy;
 *   runtime_counters() / runtime_counters_reset(); time_device_ms(fn, device=None).
 * What each method uploads, computes, downloads and waits for: docs/python_api.md ("Resident sessions").
 * Tests: tests/python/test_sessions.py, tests/python/test_capture.py, tests/python/test_sync_policy.py. */
#include <limits.h>
#include <stdatomic.h>
#include <string.h>

#include "call.h"
#include "convert.h"
#include "internal.h"
#include "resident_args.h"

/* ---- sync policy arguments ---------------------------------------------------------------------- */

/* obj NULL or None -> *out = -1 (no per-call policy); else 'auto' / 'always' / 'never'. */
int lcpy_sync_policy_arg(const char *fn, PyObject *obj, int *out) {
    *out = -1;
    if (obj == NULL || obj == Py_None) return 0;
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: sync: expected None or a str ('auto', 'always', 'never'), got %s", fn,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    const char *s = PyUnicode_AsUTF8(obj);
    lc_sync_policy p;
    if (s == NULL || lc_sync_policy_parse(s, &p) != LC_OK) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: sync: expected 'auto', 'always' or 'never', got %R", fn, obj);
        return -1;
    }
    *out = (int)p;
    return 0;
}

/* ---- ResidentSession ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    lc_session_t *s;
    atomic_int busy;
} SessionObject;

static void session_dealloc(SessionObject *self) {
    lc_session_t *s = self->s;
    self->s = NULL;
    if (s) {
        Py_BEGIN_ALLOW_THREADS
        lc_session_free(s);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int dims_arg(const char *fn, PyObject *obj, int n, int64_t *dims) {
    if (!PyTuple_Check(obj) && !PyList_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: dims: expected a tuple of %d ints, got %s", fn, n, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PySequence_Size(obj) != n) {
        PyErr_Format(PyExc_ValueError, "%s: dims: expected %d ints, got %zd", fn, n, PySequence_Size(obj));
        return -1;
    }
    static const char *const names[] = {"dim 0", "dim 1", "dim 2", "dim 3", "dim 4", "dim 5", "dim 6"};
    for (int i = 0; i < n; i++) {
        PyObject *item = PySequence_GetItem(obj, i);
        if (!item) return -1;
        int rc = lcpy_int_arg(fn, names[i], item, 1, (int64_t)1 << 40, &dims[i]);
        Py_DECREF(item);
        if (rc < 0) return -1;
    }
    return 0;
}

static int session_init(SessionObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"kind", "dims", "device", "causal", "stride_h", "stride_w", "pad_h", "pad_w", "dtype", NULL};
    const char *fn = "ResidentSession";
    const char *kind = NULL;
    PyObject *dims_obj = NULL, *device_obj = NULL, *causal_obj = NULL, *geo_obj[4] = {NULL, NULL, NULL, NULL};
    PyObject *dtype_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sO|OOOOOOO", kwlist, &kind, &dims_obj, &device_obj, &causal_obj,
                                     &geo_obj[0], &geo_obj[1], &geo_obj[2], &geo_obj[3], &dtype_obj))
        return -1;
    if (self->s) {
        PyErr_Format(PyExc_RuntimeError, "%s: already initialised", fn);
        return -1;
    }
    lc_device dev = LC_DEVICE_AUTO;
    int causal = 0;
    if (device_obj && device_obj != Py_None && lcpy_device_arg(fn, device_obj, &dev) < 0) return -1;
    if (lcpy_bool_arg(fn, "causal", causal_obj, 0, &causal) < 0) return -1;
    /* dtype: float32 (default), float16 or bfloat16 (each kind's constructor checks its ops take it) */
    lc_dtype dtype = LC_DTYPE_F32;
    if (dtype_obj && dtype_obj != Py_None && lcpy_dtype_arg(fn, "dtype", dtype_obj, &dtype) < 0) return -1;
    int64_t d[7];
    lc_status st;
    if (strcmp(kind, "conv_attention") != 0) {
        for (int i = 0; i < 4; i++)
            if (geo_obj[i]) {
                PyErr_Format(PyExc_TypeError, "%s: %s: only kind 'conv_attention' takes stride_h, stride_w, pad_h, pad_w",
                             fn, kwlist[4 + i]);
                return -1;
            }
    }
    if (strcmp(kind, "matmul") == 0) {
        if (dims_arg("MatMulResidentSession", dims_obj, 3, d) < 0) return -1;
        st = lc_session_new_matmul_typed(d[0], d[1], d[2], dtype, dev, &self->s);
    } else if (strcmp(kind, "elemwise") == 0) {
        if (dims_arg("MatrixElemwiseResidentSession", dims_obj, 2, d) < 0) return -1;
        st = lc_session_new_elemwise_typed(d[0], d[1], dtype, dev, &self->s);
    } else if (strcmp(kind, "attention") == 0) {
        if (dims_arg("AttentionSession", dims_obj, 2, d) < 0) return -1;
        st = lc_session_new_attention_typed(d[0], d[1], causal, dtype, dev, &self->s);
    } else if (strcmp(kind, "conv_attention") == 0) {
        if (dims_arg("ConvAttentionSession", dims_obj, 7, d) < 0) return -1;
        /* stride_h, stride_w >= 1, pad_h, pad_w >= 0; ints only (bool refused), ValueError beyond int. */
        static const char *const geo_names[4] = {"stride_h", "stride_w", "pad_h", "pad_w"};
        int64_t geo[4] = {1, 1, 1, 1};
        for (int i = 0; i < 4; i++)
            if (geo_obj[i] && lcpy_int_arg("ConvAttentionSession", geo_names[i], geo_obj[i], i < 2 ? 1 : 0, INT_MAX,
                                           &geo[i]) < 0)
                return -1;
        lc_conv_attention_shape shape = {d[0], d[1], d[2], d[3], d[4], (int)geo[0], (int)geo[1], (int)geo[2], (int)geo[3],
                                         d[5], d[6], causal};
        st = lc_session_new_conv_attention_typed(&shape, dtype, dev, &self->s);
    } else {
        PyErr_Format(PyExc_ValueError, "%s: kind: expected 'matmul', 'elemwise', 'attention' or 'conv_attention', got '%s'",
                     fn, kind);
        return -1;
    }
    if (st != LC_OK) {
        lcpy_raise_status(st); /* LC_ERR_DTYPE: TypeError */
        return -1;
    }
    return 0;
}

/* Between launches of a long run (lc_session_run_polled, about every 10 ms): takes the GIL back and runs
 * the pending signal handlers, so Ctrl-C reaches Python during a batch; a handler that raises (SIGINT's
 * KeyboardInterrupt) stops the run there, with its exception pending. */
typedef struct {
    PyThreadState *ts;
    int raised;
} session_poll_ctx;

static int session_poll(void *arg) {
    session_poll_ctx *p = arg;
    PyEval_RestoreThread(p->ts);
    p->raised = PyErr_CheckSignals() < 0;
    p->ts = PyEval_SaveThread();
    return p->raised;
}

/* What a method does (see the file comment and docs/python_api.md). */
enum { S_UPLOAD = 1, S_RUN = 2, S_DOWNLOAD = 4, S_SYNC = 8, S_OUT = 16, S_LOOPS = 32, S_INPUTS = 64 };

static PyObject *session_method(SessionObject *self, const char *fn, int flags, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames) {
    if (!self->s) {
        PyErr_Format(PyExc_RuntimeError, "%s: the session is not initialised", fn);
        return NULL;
    }
    const int nin = (flags & S_INPUTS) ? lc_session_num_inputs(self->s) : 0;
    const Py_ssize_t npos = nin + ((flags & S_OUT) ? 1 : 0) + ((flags & S_LOOPS) ? 1 : 0);
    PyObject *loops_obj = NULL, *program_obj = NULL, *sync_obj = NULL;
    Py_ssize_t given = nargs;
    if (kwnames) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, i), *val = args[nargs + i];
            if (PyUnicode_CompareWithASCIIString(key, "program") == 0) program_obj = val;
            else if (PyUnicode_CompareWithASCIIString(key, "sync") == 0) sync_obj = val;
            else if ((flags & S_LOOPS) && PyUnicode_CompareWithASCIIString(key, "loops") == 0 && nargs == npos - 1) {
                loops_obj = val;
                given++;
            } else {
                PyErr_Format(PyExc_TypeError, "%s: unexpected keyword argument %R", fn, key);
                return NULL;
            }
        }
    }
    if (given != npos) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd positional arguments (%s%s%s), got %zd", fn, npos,
                     nin == 3 ? "three inputs" : nin == 2 ? "two inputs" : nin ? "inputs" : "",
                     (flags & S_OUT) ? (nin ? ", out" : "out") : "", (flags & S_LOOPS) ? (npos > 1 ? ", loops" : "loops") : "",
                     given);
        return NULL;
    }
    if ((flags & S_LOOPS) && !loops_obj) loops_obj = args[npos - 1];
    int64_t loops = 1, program = 0;
    int policy = -1;
    if ((loops_obj && lcpy_int_arg(fn, "loops", loops_obj, 1, LC_SESSION_MAX_LOOPS, &loops) < 0) ||
        (program_obj && lcpy_int_arg(fn, "program", program_obj, 0, 2, &program) < 0) ||
        lcpy_sync_policy_arg(fn, sync_obj, &policy) < 0)
        return NULL;

    static const char *const in_names[3] = {"input 0", "input 1", "input 2"};
    lcpy_call c;
    call_init(&c, fn);
    for (int i = 0; i < nin; i++) {
        if (call_input(&c, in_names[i], args[i]) < 0) return call_fail(&c);
    }
    const lc_dtype sdt = lc_session_dtype(self->s);
    if (nin && call_resident_dtype(&c, sdt, "the session's") < 0) return call_fail(&c);
    for (int i = 0; i < nin; i++)
        if (call_wrap_in(&c, i, 0, NULL) < 0) return call_fail(&c);
    if (flags & S_OUT) {
        npy_intp count = (npy_intp)lc_tensor_numel(lc_session_output(self->s));
        c.dtype = sdt;
        if ((c.typenum = lcpy_dtype_typenum(fn, sdt)) < 0) return call_fail(&c);
        if (call_out(&c, args[nin], -1, &count, "the output's elements", 0x7u) < 0) return call_fail(&c);
        if (call_wrap_out(&c, 0, NULL) < 0) return call_fail(&c);
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong(&self->busy, &expected, 1)) {
        PyErr_Format(PyExc_RuntimeError, "%s: the session is in use by another thread", fn);
        return call_fail(&c);
    }
    lc_session_t *s = self->s;
    const int device_out = (flags & S_OUT) && lc_tensor_device(c.tout) != LC_DEVICE_CPU;
    lc_status st = LC_OK;
    session_poll_ctx poll = {PyEval_SaveThread(), 0};
    const int saved = lc_get_thread_sync_policy();
    if (policy >= 0) lc_set_thread_sync_policy(policy);
    if (flags & S_UPLOAD) { /* all checked before any is copied: a refused call changes no resident input */
        for (int i = 0; i < nin && st == LC_OK; i++) st = lc_session_check_upload(s, i, c.tin[i]);
        for (int i = 0; i < nin && st == LC_OK; i++) st = lc_session_upload(s, i, c.tin[i]);
    }
    if (st == LC_OK && (flags & S_RUN)) {
        int64_t done = 0;
        st = lc_session_run_polled(s, (int)program, loops, session_poll, &poll, &done);
    }
    /* Interrupted (a signal handler raised, e.g. KeyboardInterrupt): no download, no wait. */
    if (st == LC_OK && !poll.raised && (flags & S_DOWNLOAD)) st = lc_session_download(s, c.tout);
    /* A device-resident `out` is filled by an enqueued copy: methods that promise a finished result wait. */
    if (st == LC_OK && !poll.raised && ((flags & S_SYNC) || ((flags & S_DOWNLOAD) && device_out && (flags & S_RUN))))
        st = lc_session_sync(s);
    lc_set_thread_sync_policy(saved);
    PyEval_RestoreThread(poll.ts);
    atomic_store(&self->busy, 0);
    if (poll.raised) return call_fail(&c); /* the handler's exception */
    if (st != LC_OK) return call_finish(&c, st); /* raises */
    Py_XDECREF(call_finish(&c, LC_OK));
    Py_RETURN_NONE;
}

#define SESSION_METHOD(name, flags)                                                                              \
    static PyObject *py_s_##name(SessionObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {    \
        return session_method(self, #name, (flags), args, nargs, kw);                                          \
    }
SESSION_METHOD(start_into, S_INPUTS | S_OUT | S_UPLOAD | S_RUN | S_DOWNLOAD)
SESSION_METHOD(run_into, S_INPUTS | S_OUT | S_UPLOAD | S_RUN)
SESSION_METHOD(sync_into, S_INPUTS | S_OUT | S_UPLOAD | S_RUN | S_DOWNLOAD)
SESSION_METHOD(forward_into, S_INPUTS | S_OUT | S_UPLOAD | S_RUN | S_DOWNLOAD)
SESSION_METHOD(run_batch_sync_into, S_INPUTS | S_OUT | S_LOOPS | S_UPLOAD | S_RUN | S_DOWNLOAD)
SESSION_METHOD(run_batch_sync_no_download_into, S_INPUTS | S_OUT | S_LOOPS | S_UPLOAD | S_RUN | S_SYNC)
SESSION_METHOD(run_batch_sync_cached_no_download, S_LOOPS | S_RUN | S_SYNC)
SESSION_METHOD(upload, S_INPUTS | S_UPLOAD)
SESSION_METHOD(run, S_LOOPS | S_RUN)
SESSION_METHOD(download_into, S_OUT | S_DOWNLOAD)
SESSION_METHOD(synchronize, S_SYNC)

#define SESSION_DEF(name, sig, doc) {#name, LCPY_FASTCALL(py_s_##name), METH_FASTCALL | METH_KEYWORDS, #name sig "\n--\n\n" doc}
static PyMethodDef session_methods[] = {
    SESSION_DEF(start_into, "($self, *inputs, out, program=0, sync=None)",
                "Uploads the inputs, computes once, downloads into out; out holds the result on return."),
    SESSION_DEF(run_into, "($self, *inputs, out, program=0, sync=None)",
                "Uploads the inputs and enqueues one computation; no download (out is not touched), no wait."),
    SESSION_DEF(sync_into, "($self, *inputs, out, program=0, sync=None)",
                "Uploads, computes once, waits and downloads into out."),
    SESSION_DEF(forward_into, "($self, *inputs, out, sync=None)", "Same as sync_into (the AttentionSession name)."),
    SESSION_DEF(run_batch_sync_into, "($self, *inputs, out, loops, program=0, sync=None)",
                "Uploads once, computes loops times, one wait, downloads once into out."),
    SESSION_DEF(run_batch_sync_no_download_into, "($self, *inputs, out, loops, program=0, sync=None)",
                "Uploads once, computes loops times, one wait; out is not touched (download_into reads it)."),
    SESSION_DEF(run_batch_sync_cached_no_download, "($self, loops, program=0, sync=None)",
                "No upload (the resident inputs), computes loops times, one wait, no download."),
    SESSION_DEF(upload, "($self, *inputs, sync=None)", "Copies the inputs into the resident buffers."),
    SESSION_DEF(run, "($self, loops, program=0, sync=None)", "Enqueues loops computations on the resident inputs."),
    SESSION_DEF(download_into, "($self, out, sync=None)", "Copies the resident result into out (host: waits)."),
    SESSION_DEF(synchronize, "($self, sync=None)", "Waits for the session's device work (not under sync='never')."),
    {NULL, NULL, 0, NULL},
};

static PyObject *session_get_dtype(SessionObject *self, void *closure) {
    (void)closure;
    if (!self->s) {
        PyErr_SetString(PyExc_RuntimeError, "ResidentSession: the session is not initialised");
        return NULL;
    }
    return PyUnicode_FromString(lc_dtype_name(lc_session_dtype(self->s)));
}

static PyObject *session_get_device(SessionObject *self, void *closure) {
    (void)closure;
    return PyUnicode_FromString(self->s ? lc_device_name(lc_session_device(self->s)) : "none");
}
static PyObject *session_get_uses_graph(SessionObject *self, void *closure) {
    (void)closure;
    int any = 0;
    for (int p = 0; self->s && p < 3; p++) any |= lc_session_uses_graph(self->s, p);
    return PyBool_FromLong(any);
}
static PyObject *session_get_runs(SessionObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLongLong(self->s ? lc_session_runs(self->s) : 0);
}
static PyObject *session_get_replays(SessionObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLongLong(self->s ? lc_session_replays(self->s) : 0);
}
static PyObject *session_get_num_inputs(SessionObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLong(self->s ? lc_session_num_inputs(self->s) : 0);
}
static PyObject *session_get_inputs_ready(SessionObject *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->s ? lc_session_inputs_ready(self->s) : 0);
}
static PyObject *session_get_output_shape(SessionObject *self, void *closure) {
    (void)closure;
    if (!self->s) Py_RETURN_NONE;
    const lc_tensor_t *o = lc_session_output(self->s);
    PyObject *t = PyTuple_New(lc_tensor_ndim(o));
    for (int i = 0; t && i < lc_tensor_ndim(o); i++) PyTuple_SET_ITEM(t, i, PyLong_FromLongLong(lc_tensor_dim(o, i)));
    return t;
}

static PyGetSetDef session_getset[] = {
    {"device", (getter)session_get_device, NULL, "'cpu' or 'cuda': where the resident buffers live", NULL},
    {"dtype", (getter)session_get_dtype, NULL, "the resident buffers' dtype: 'float32', 'float16' or 'bfloat16'", NULL},
    {"uses_graph", (getter)session_get_uses_graph, NULL, "True once a program replays a captured CUDA graph", NULL},
    {"runs", (getter)session_get_runs, NULL, "computations run so far (loops counted)", NULL},
    {"replays", (getter)session_get_replays, NULL, "how many of them were CUDA graph replays", NULL},
    {"num_inputs", (getter)session_get_num_inputs, NULL, "number of inputs", NULL},
    {"inputs_ready", (getter)session_get_inputs_ready, NULL, "every input has been uploaded", NULL},
    {"output_shape", (getter)session_get_output_shape, NULL, "shape of the result", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Session_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lightning_core._C.ResidentSession",
    .tp_basicsize = sizeof(SessionObject),
    .tp_dealloc = (destructor)session_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "ResidentSession(kind, dims, device='auto', causal=False, stride_h=1, stride_w=1, pad_h=1, pad_w=1): "
              "resident buffers + programs (docs/python_api.md, 'Resident sessions').",
    .tp_methods = session_methods,
    .tp_getset = session_getset,
    .tp_init = (initproc)session_init,
    .tp_new = PyType_GenericNew,
};

/* ---- DeviceGraph ---------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    lc_device_graph_t *g;
} GraphObject;

static void graph_dealloc(GraphObject *self) {
    lc_device_graph_t *g = self->g;
    self->g = NULL;
    if (g) {
        Py_BEGIN_ALLOW_THREADS
        lc_device_graph_free(g);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static lcpy_sig sig_replay = LCPY_SIG("DeviceGraph.replay", 0, "loops", "sync");

static PyObject *graph_replay(GraphObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[2];
    int64_t loops = 1;
    int policy;
    if (lcpy_parse(&sig_replay, args, nargs, kw, v) < 0 ||
        (v[0] && lcpy_int_arg("DeviceGraph.replay", "loops", v[0], 1, LC_SESSION_MAX_LOOPS, &loops) < 0) ||
        lcpy_sync_policy_arg("DeviceGraph.replay", v[1], &policy) < 0)
        return NULL;
    if (!self->g) {
        PyErr_SetString(PyExc_RuntimeError, "DeviceGraph.replay: the graph was released");
        return NULL;
    }
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    const int saved = lc_get_thread_sync_policy();
    if (policy >= 0) lc_set_thread_sync_policy(policy);
    st = lc_device_graph_replay(self->g, loops);
    lc_set_thread_sync_policy(saved);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *graph_release(GraphObject *self, PyObject *noargs) {
    (void)noargs;
    lc_device_graph_t *g = self->g;
    self->g = NULL;
    Py_BEGIN_ALLOW_THREADS
    lc_device_graph_free(g);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *graph_get_nodes(GraphObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLongLong(self->g ? lc_device_graph_nodes(self->g) : 0);
}

static PyMethodDef graph_methods[] = {
    {"replay", LCPY_FASTCALL(graph_replay), METH_FASTCALL | METH_KEYWORDS,
     "replay($self, /, loops=1, sync=None)\n--\n\nEnqueues loops replays (waits only under sync='always')."},
    {"release", (PyCFunction)graph_release, METH_NOARGS,
     "release($self, /)\n--\n\nWaits for the replays and frees the graph and the tensors it kept alive."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef graph_getset[] = {
    {"nodes", (getter)graph_get_nodes, NULL, "number of device nodes (kernels, copies) in the graph", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Graph_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lightning_core.DeviceGraph",
    .tp_basicsize = sizeof(GraphObject),
    .tp_dealloc = (destructor)graph_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A captured CUDA graph (made by capture_graph); replay(loops=1, sync=None).",
    .tp_methods = graph_methods,
    .tp_getset = graph_getset,
};

static lcpy_sig sig_capture_graph = LCPY_SIG("capture_graph", 1, "fn", "device");

static PyObject *py_capture_graph(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[2];
    lc_device dev = LC_DEVICE_CUDA;
    if (lcpy_parse(&sig_capture_graph, args, nargs, kw, v) < 0) return NULL;
    if (v[1] && lcpy_device_arg("capture_graph", v[1], &dev) < 0) return NULL;
    if (!PyCallable_Check(v[0])) {
        PyErr_Format(PyExc_TypeError, "capture_graph: fn: expected a callable, got %s", Py_TYPE(v[0])->tp_name);
        return NULL;
    }
    lc_status st = lc_capture_begin(dev);
    if (st != LC_OK) return lcpy_raise_status(st);
    PyObject *r = PyObject_CallNoArgs(v[0]);
    lc_device_graph_t *g = NULL;
    if (r == NULL) {
        lc_capture_end(0, NULL); /* keep the fn's exception */
        return NULL;
    }
    Py_DECREF(r);
    st = lc_capture_end(1, &g);
    if (st != LC_OK) return lcpy_raise_status(st);
    GraphObject *obj = PyObject_New(GraphObject, &Graph_Type);
    if (!obj) {
        lc_device_graph_free(g);
        return NULL;
    }
    obj->g = g;
    return (PyObject *)obj;
}

/* ---- policy, counters, timer ------------------------------------------------------------------------ */

static lcpy_sig sig_set_sync_policy = LCPY_SIG("set_sync_policy", 1, "policy");
static lcpy_sig sig_set_thread_sync_policy = LCPY_SIG("_set_thread_sync_policy", 1, "policy");

static PyObject *py_set_sync_policy(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[1];
    int p;
    if (lcpy_parse(&sig_set_sync_policy, args, nargs, kw, v) < 0) return NULL;
    if (v[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, "set_sync_policy: policy: expected 'auto', 'always' or 'never', got None");
        return NULL;
    }
    if (lcpy_sync_policy_arg("set_sync_policy", v[0], &p) < 0) return NULL;
    lc_set_sync_policy((lc_sync_policy)p);
    Py_RETURN_NONE;
}

static PyObject *py_get_sync_policy(PyObject *self, PyObject *noargs) {
    return PyUnicode_FromString(lc_sync_policy_name(lc_get_sync_policy()));
}

static PyObject *py__set_thread_sync_policy(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[1];
    int p;
    if (lcpy_parse(&sig_set_thread_sync_policy, args, nargs, kw, v) < 0 ||
        lcpy_sync_policy_arg("_set_thread_sync_policy", v[0], &p) < 0)
        return NULL;
    lc_set_thread_sync_policy(p);
    Py_RETURN_NONE;
}

static PyObject *py__get_thread_sync_policy(PyObject *self, PyObject *noargs) {
    int p = lc_get_thread_sync_policy();
    if (p < 0) Py_RETURN_NONE;
    return PyUnicode_FromString(lc_sync_policy_name((lc_sync_policy)p));
}

static PyObject *py_runtime_counters(PyObject *self, PyObject *noargs) {
    lc_runtime_counters c;
    lc_get_runtime_counters(&c);
    return Py_BuildValue("{sKsKsKsKsKsKsKsK}", "syncs", (unsigned long long)c.syncs, "downloads",
                         (unsigned long long)c.downloads, "d2h_bytes", (unsigned long long)c.d2h_bytes, "uploads",
                         (unsigned long long)c.uploads, "h2d_bytes", (unsigned long long)c.h2d_bytes, "graph_captures",
                         (unsigned long long)c.graph_captures, "graph_launches", (unsigned long long)c.graph_launches,
                         "dispatches", (unsigned long long)c.dispatches);
}

static PyObject *py_runtime_counters_reset(PyObject *self, PyObject *noargs) {
    lc_reset_runtime_counters();
    Py_RETURN_NONE;
}

static lcpy_sig sig_time_device_ms = LCPY_SIG("time_device_ms", 1, "fn", "device");

static PyObject *py_time_device_ms(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[2];
    if (lcpy_parse(&sig_time_device_ms, args, nargs, kw, v) < 0) return NULL;
    lc_device dev = lc_device_available(LC_DEVICE_CUDA) ? LC_DEVICE_CUDA : LC_DEVICE_CPU;
    if (v[1] && v[1] != Py_None && lcpy_device_arg("time_device_ms", v[1], &dev) < 0) return NULL;
    if (!PyCallable_Check(v[0])) {
        PyErr_Format(PyExc_TypeError, "time_device_ms: fn: expected a callable, got %s", Py_TYPE(v[0])->tp_name);
        return NULL;
    }
    lc_device_timer_t *t = NULL;
    lc_status st = lc_device_timer_start(dev, &t);
    if (st != LC_OK) return lcpy_raise_status_in("time_device_ms", st);
    PyObject *r = PyObject_CallNoArgs(v[0]);
    double ms = 0.0;
    Py_BEGIN_ALLOW_THREADS
    st = lc_device_timer_stop(t, &ms);
    Py_END_ALLOW_THREADS
    if (r == NULL) return NULL;
    Py_DECREF(r);
    if (st != LC_OK) return lcpy_raise_status_in("time_device_ms", st);
    return PyFloat_FromDouble(ms);
}

PyMethodDef lcpy_session_methods[] = {
    LCPY_METHOD(capture_graph, "($module, /, fn, device='cuda')",
                "Runs fn() under CUDA graph capture (lc ops on device tensors only) and returns a DeviceGraph."),
    LCPY_METHOD(set_sync_policy, "($module, /, policy)", "Process default sync policy: 'auto', 'always' or 'never'."),
    LCPY_NOARGS(get_sync_policy, "The process default sync policy."),
    LCPY_METHOD(_set_thread_sync_policy, "($module, /, policy)",
                "This thread's sync policy override (None removes it); see lightning_core.sync_policy()."),
    LCPY_NOARGS(_get_thread_sync_policy, "This thread's override, or None."),
    LCPY_NOARGS(runtime_counters, "Dict of process-wide counters: syncs, downloads, d2h_bytes, uploads, h2d_bytes, "
                                  "graph_captures, graph_launches, dispatches."),
    LCPY_NOARGS(runtime_counters_reset, "Sets every runtime counter to 0."),
    LCPY_METHOD(time_device_ms, "($module, /, fn, device=None)",
                "Device milliseconds of the work fn() enqueues (CUDA events on the library stream; CPU: wall time)."),
    {NULL, NULL, 0, NULL},
};

int lcpy_session_register(PyObject *module) {
    if (PyType_Ready(&Session_Type) < 0 || PyType_Ready(&Graph_Type) < 0) return -1;
    if (PyModule_AddIntConstant(module, "SESSION_MAX_LOOPS", (long)LC_SESSION_MAX_LOOPS) < 0) return -1;
    Py_INCREF(&Session_Type);
    if (PyModule_AddObject(module, "ResidentSession", (PyObject *)&Session_Type) < 0) {
        Py_DECREF(&Session_Type);
        return -1;
    }
    Py_INCREF(&Graph_Type);
    if (PyModule_AddObject(module, "DeviceGraph", (PyObject *)&Graph_Type) < 0) {
        Py_DECREF(&Graph_Type);
        return -1;
    }
    return 0;
}
