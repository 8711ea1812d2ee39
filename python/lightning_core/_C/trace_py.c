/* trace_py.c — Python bindings of the runtime introspection: the runtime trace
 * (include/lightning_core/trace.h) and the backend capability matrix (runtime.h):
 * runtime_trace_enable(flag=True), runtime_trace_clear(), runtime_trace_events() -> list of dicts,
 * runtime_trace_set_capacity(n), runtime_trace_stats() -> dict. The grouped report
 * (runtime_trace_timeline) is built on runtime_trace_events in python/lightning_core/trace.py;
 * runtime_backend_capabilities(device), runtime_active_backend_capabilities().
 * Tests: tests/python/test_trace.py. */
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "internal.h"

static lcpy_sig sig_runtime_trace_enable = LCPY_SIG("runtime_trace_enable", 0, "flag");
static lcpy_sig sig_runtime_trace_set_capacity = LCPY_SIG("runtime_trace_set_capacity", 1, "n");

static PyObject *py_runtime_trace_enable(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[1];
    int flag;
    if (lcpy_parse(&sig_runtime_trace_enable, args, nargs, kw, v) < 0 ||
        lcpy_bool_arg("runtime_trace_enable", "flag", v[0], 1, &flag) < 0)
        return NULL;
    lc_trace_enable(flag);
    Py_RETURN_NONE;
}

static PyObject *py_runtime_trace_clear(PyObject *self, PyObject *noargs) {
    lc_trace_clear();
    Py_RETURN_NONE;
}

static PyObject *py_runtime_trace_set_capacity(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                               PyObject *kw) {
    PyObject *v[1];
    int64_t n;
    if (lcpy_parse(&sig_runtime_trace_set_capacity, args, nargs, kw, v) < 0 ||
        lcpy_int_arg("runtime_trace_set_capacity", "n", v[0], 1, (int64_t)1 << 26, &n) < 0)
        return NULL;
    lc_status st = lc_trace_set_capacity((size_t)n);
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *py_runtime_trace_stats(PyObject *self, PyObject *noargs) {
    return Py_BuildValue("{s:O,s:n,s:n,s:K}", "enabled", lc_trace_enabled() ? Py_True : Py_False, "capacity",
                         (Py_ssize_t)lc_trace_capacity(), "events", (Py_ssize_t)lc_trace_count(), "dropped",
                         (unsigned long long)lc_trace_dropped());
}

static PyObject *event_dict(const lc_trace_event *e) {
    return Py_BuildValue("{s:K,s:s,s:s,s:s,s:s,s:s,s:O,s:O,s:K,s:K,s:K}", "seq", (unsigned long long)e->seq, "op",
                         e->op ? e->op : "", "path", e->path ? e->path : "", "requested_device",
                         lc_device_name(e->requested), "selected_device", lc_device_name(e->selected), "reason",
                         lc_reason_code(e->reason), "fallback",
                         (e->reason != LC_REASON_DIRECT && e->reason != LC_REASON_AUTO_SELECTED) ? Py_True : Py_False,
                         "sync", e->synchronized ? Py_True : Py_False, "bytes_moved",
                         (unsigned long long)e->bytes_moved, "start_ns", (unsigned long long)e->start_ns,
                         "duration_ns", (unsigned long long)e->duration_ns);
}

static PyObject *py_runtime_trace_events(PyObject *self, PyObject *noargs) {
    size_t held = lc_trace_count();
    lc_trace_event *buf = held ? malloc(held * sizeof *buf) : NULL;
    if (held && !buf) return PyErr_NoMemory();
    size_t n = held ? lc_trace_events(buf, held) : 0;
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *d = event_dict(&buf[i]);
        if (!d) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    free(buf);
    return list;
}

static lcpy_sig sig_runtime_backend_capabilities = LCPY_SIG("runtime_backend_capabilities", 1, "device");

static PyObject *caps_dict(lc_device dev) {
    lc_backend_caps c;
    lc_status st = lc_backend_capabilities(dev, &c);
    if (st != LC_OK) return lcpy_raise_status(st);
    return Py_BuildValue("{s:s,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:s}", "device", lc_device_name(dev), "built",
                         c.built ? Py_True : Py_False, "available", c.available ? Py_True : Py_False, "compute",
                         c.compute ? Py_True : Py_False, "memory", c.memory ? Py_True : Py_False, "sync",
                         c.sync ? Py_True : Py_False, "profiling", c.profiling ? Py_True : Py_False, "trace",
                         c.trace ? Py_True : Py_False, "sync_policy", c.sync_policy ? Py_True : Py_False,
                         "memory_model", c.memory_model);
}

static PyObject *py_runtime_backend_capabilities(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                                 PyObject *kw) {
    PyObject *v[1];
    lc_device dev;
    if (lcpy_parse(&sig_runtime_backend_capabilities, args, nargs, kw, v) < 0 ||
        lcpy_device_arg("runtime_backend_capabilities", v[0], &dev) < 0)
        return NULL;
    if (dev == LC_DEVICE_AUTO) {
        PyErr_SetString(PyExc_ValueError,
                        "runtime_backend_capabilities: device: expected 'cpu', 'cuda' or 'metal', got 'auto'");
        return NULL;
    }
    return caps_dict(dev);
}

static PyObject *py_runtime_active_backend_capabilities(PyObject *self, PyObject *noargs) {
    return caps_dict(lc_device_available(LC_DEVICE_CUDA) ? LC_DEVICE_CUDA : LC_DEVICE_CPU);
}


/* _trace_note(op, path, requested, selected, reason): the high-level Python API's decisions (lc.api).
 * op/path come from a fixed vocabulary because the trace keeps static strings. */
static const char *const lcpy_note_words[] = {"conv_attention_torchstrong_nchw", "conv_relu_nchw", "matmul", "attention",
                                              "graph", "eager", "eager_fallback", "torch", "lightning", NULL};

static const char *lcpy_note_word(PyObject *obj) {
    const char *s = PyUnicode_Check(obj) ? PyUnicode_AsUTF8(obj) : NULL;
    for (int i = 0; s && lcpy_note_words[i]; i++)
        if (strcmp(s, lcpy_note_words[i]) == 0) return lcpy_note_words[i];
    return NULL;
}

static lcpy_sig sig__trace_note = LCPY_SIG("_trace_note", 5, "op", "path", "requested", "selected", "reason");

static PyObject *py__trace_note(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[5];
    lc_device req, sel;
    if (lcpy_parse(&sig__trace_note, args, nargs, kw, v) < 0 || lcpy_device_arg("_trace_note", v[2], &req) < 0 ||
        lcpy_device_arg("_trace_note", v[3], &sel) < 0)
        return NULL;
    const char *op = lcpy_note_word(v[0]), *path = lcpy_note_word(v[1]);
    const char *rs = PyUnicode_Check(v[4]) ? PyUnicode_AsUTF8(v[4]) : NULL;
    int reason = -1;
    for (int r = 0; rs && r < LC_REASON_COUNT; r++)
        if (strcmp(rs, lc_reason_code((lc_reason)r)) == 0) reason = r;
    if (!op || !path || reason < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "_trace_note: op/path/reason: expected words of the trace vocabulary, got %R, %R, %R",
                     v[0], v[1], v[4]);
        return NULL;
    }
    lc_trace_note(op, path, req, sel, (lc_reason)reason);
    Py_RETURN_NONE;
}

PyMethodDef lcpy_trace_methods[] = {
    LCPY_METHOD(_trace_note, "($module, /, op, path, requested, selected, reason)",
                "Internal: records a high-level API decision in the runtime trace."),
    LCPY_METHOD(runtime_backend_capabilities, "($module, /, device)",
                "Capability matrix of a backend: built, available, compute, memory, sync, profiling, trace, "
                "sync_policy, memory_model."),
    LCPY_NOARGS(runtime_active_backend_capabilities, "runtime_backend_capabilities of the active backend."),
    LCPY_METHOD(runtime_trace_enable, "($module, /, flag=True)", "Turns the runtime trace on or off."),
    LCPY_NOARGS(runtime_trace_clear, "Drops every recorded trace event."),
    LCPY_METHOD(runtime_trace_set_capacity, "($module, /, n)", "Ring capacity in events (clears the trace)."),
    LCPY_NOARGS(runtime_trace_stats, "Dict: enabled, capacity, events held, dropped (overwritten)."),
    LCPY_NOARGS(runtime_trace_events,
                "List of dicts, oldest first: seq, op, path, requested_device, selected_device, reason, fallback, "
                "sync, bytes_moved, start_ns, duration_ns."),
    {NULL, NULL, 0, NULL},
};
