/* dist_py.c — the binding of dist.h: module functions dist_available, dist_unavailable_reason,
 * dist_nccl_version, dist_unique_id, set_cuda_device, cuda_device, cuda_device_count, capture_active, and the DistComm type (one NCCL
 * communicator: all_reduce, all_gather, reduce_scatter, broadcast, wait, barrier, exchange_header, abort,
 * destroy). The GIL is released around every library call that may wait; a communicator is used by one
 * thread at a time (another thread's call meanwhile is a RuntimeError, never a data race).
 * lightning_core.distributed (Python) builds the process group, the rendezvous and the checks on this.
 * Tests: tests/python/test_distributed.py, tests/python/test_distributed_multi.py. */
#include "convert.h"
#include "lightning_core/dist.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    lc_dist_comm_t *comm; /* NULL after destroy() */
    int busy;             /* a call is running with the GIL released */
} LcDistCommObject;

static PyTypeObject LcDistComm_Type;

/* ---- module functions -------------------------------------------------------------------------- */

static PyObject *py_dist_available(PyObject *self, PyObject *noargs) { return PyBool_FromLong(lc_dist_available()); }

static PyObject *py_dist_unavailable_reason(PyObject *self, PyObject *noargs) {
    return PyUnicode_FromString(lc_dist_unavailable_reason());
}

static PyObject *py_dist_nccl_version(PyObject *self, PyObject *noargs) {
    return PyLong_FromLong(lc_dist_nccl_version());
}

static PyObject *py_dist_unique_id(PyObject *self, PyObject *noargs) {
    uint8_t id[LC_DIST_UNIQUE_ID_BYTES];
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_dist_unique_id(id);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status(st);
    return PyBytes_FromStringAndSize((const char *)id, LC_DIST_UNIQUE_ID_BYTES);
}

static lcpy_sig sig_set_cuda_device = LCPY_SIG("set_cuda_device", 1, "device");

static PyObject *py_set_cuda_device(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *arg;
    int64_t dev;
    if (lcpy_parse(&sig_set_cuda_device, args, nargs, kw, &arg) < 0 ||
        lcpy_int_arg("set_cuda_device", "device", arg, 0, INT32_MAX, &dev) < 0)
        return NULL;
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_set_cuda_device((int)dev);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *py_cuda_device_count(PyObject *self, PyObject *noargs) {
    int n;
    Py_BEGIN_ALLOW_THREADS
    n = lc_cuda_device_count();
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(n);
}

static PyObject *py_capture_active(PyObject *self, PyObject *noargs) { return PyBool_FromLong(lc_capture_active()); }

static PyObject *py_cuda_device(PyObject *self, PyObject *noargs) {
    int d;
    Py_BEGIN_ALLOW_THREADS
    d = lc_cuda_device();
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(d);
}

/* ---- DistComm ---------------------------------------------------------------------------------- */

/* The communicator of self for method `fn`, or NULL with RuntimeError (destroyed, or busy in another thread). */
static lc_dist_comm_t *comm_enter(LcDistCommObject *self, const char *fn) {
    if (self->comm == NULL) {
        PyErr_Format(PyExc_RuntimeError, "%s: the process group was destroyed", fn);
        return NULL;
    }
    if (self->busy) {
        PyErr_Format(PyExc_RuntimeError, "%s: the process group is in use by another thread (one call at a time)", fn);
        return NULL;
    }
    self->busy = 1;
    return self->comm;
}

/* A tensor argument (Tensor, Tensor64 or TensorView) or NULL with TypeError naming it. */
static lc_tensor_t *tensor_arg(const char *fn, const char *name, PyObject *obj) {
    lc_tensor_t *t = lcpy_tensor_handle(obj);
    if (t == NULL)
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a lightning_core Tensor on cuda, got %s", fn, name,
                     Py_TYPE(obj)->tp_name);
    return t;
}

static PyObject *comm_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"unique_id", "world_size", "rank", "timeout", NULL};
    const char *fn = "DistComm";
    PyObject *id_obj, *ws_obj, *rank_obj, *to_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO:DistComm", kwlist, &id_obj, &ws_obj, &rank_obj, &to_obj))
        return NULL;
    if (!PyBytes_Check(id_obj)) {
        PyErr_Format(PyExc_TypeError, "%s: unique_id: expected bytes (dist_unique_id()), got %s", fn,
                     Py_TYPE(id_obj)->tp_name);
        return NULL;
    }
    if (PyBytes_GET_SIZE(id_obj) != LC_DIST_UNIQUE_ID_BYTES) {
        PyErr_Format(PyExc_ValueError, "%s: unique_id: expected %d bytes, got %zd", fn, LC_DIST_UNIQUE_ID_BYTES,
                     PyBytes_GET_SIZE(id_obj));
        return NULL;
    }
    int64_t ws, rank;
    double timeout;
    if (lcpy_int_arg(fn, "world_size", ws_obj, 1, INT32_MAX, &ws) < 0 ||
        lcpy_int_arg(fn, "rank", rank_obj, 0, INT32_MAX, &rank) < 0 ||
        lcpy_positive_float_arg(fn, "timeout", to_obj, 0.0, &timeout) < 0)
        return NULL;
    if (rank >= ws) {
        PyErr_Format(PyExc_ValueError, "%s: rank: expected 0..%lld (world_size %lld), got %lld", fn, (long long)ws - 1,
                     (long long)ws, (long long)rank);
        return NULL;
    }
    uint8_t id[LC_DIST_UNIQUE_ID_BYTES];
    memcpy(id, PyBytes_AS_STRING(id_obj), LC_DIST_UNIQUE_ID_BYTES);
    lc_dist_comm_t *comm = NULL;
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_dist_comm_init(id, (int)ws, (int)rank, timeout, &comm);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status(st);
    LcDistCommObject *self = (LcDistCommObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        lc_dist_comm_abort(comm, "out of memory");
        lc_dist_comm_destroy(comm);
        return NULL;
    }
    self->comm = comm;
    return (PyObject *)self;
}

static void comm_dealloc(LcDistCommObject *self) {
    if (self->comm) { /* not destroyed explicitly: the same graceful destroy (in-flight work finishes; the wait is
                         bounded by the timeout, so a dead peer cannot hang it) */
        lc_dist_comm_t *c = self->comm;
        self->comm = NULL;
        Py_BEGIN_ALLOW_THREADS
        lc_dist_comm_destroy(c);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Runs `call` without the GIL on the entered communicator; raises on failure. */
#define COMM_CALL(self, st, call)      \
    do {                               \
        Py_BEGIN_ALLOW_THREADS         \
        st = (call);                   \
        Py_END_ALLOW_THREADS           \
        (self)->busy = 0;              \
    } while (0)

static lcpy_sig sig_all_reduce = LCPY_SIG("all_reduce", 1, "t");

static PyObject *comm_all_reduce(LcDistCommObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *t_obj;
    if (lcpy_parse(&sig_all_reduce, args, nargs, kw, &t_obj) < 0) return NULL;
    lc_tensor_t *t = tensor_arg("all_reduce", "t", t_obj);
    if (t == NULL) return NULL;
    lc_dist_comm_t *c = comm_enter(self, "all_reduce");
    if (c == NULL) return NULL;
    lc_status st;
    COMM_CALL(self, st, lc_dist_all_reduce(c, t));
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_INCREF(t_obj);
    return t_obj;
}

/* all_gather / reduce_scatter: out given (checked by the library) or a new cuda tensor of the result shape. */
static PyObject *comm_gather_scatter(LcDistCommObject *self, const char *fn, int gather, PyObject *t_obj,
                                     PyObject *out_obj) {
    lc_tensor_t *t = tensor_arg(fn, "t", t_obj);
    if (t == NULL) return NULL;
    lc_tensor_t *out = NULL, *own = NULL;
    if (out_obj != NULL && out_obj != Py_None) {
        if ((out = tensor_arg(fn, "out", out_obj)) == NULL) return NULL;
    } else {
        if (self->comm == NULL) {
            PyErr_Format(PyExc_RuntimeError, "%s: the process group was destroyed", fn);
            return NULL;
        }
        const int ws = lc_dist_comm_size(self->comm);
        int64_t shape[LC_MAX_DIMS];
        const int nd = lc_tensor_ndim(t);
        for (int i = 0; i < nd; i++) shape[i] = lc_tensor_dim(t, i);
        if (gather) {
            if (shape[0] > INT64_MAX / ws) {
                PyErr_Format(PyExc_ValueError, "%s: t: shape[0] %lld times world_size %d overflows", fn,
                             (long long)shape[0], ws);
                return NULL;
            }
            shape[0] *= ws;
        } else {
            if (shape[0] % ws != 0) {
                PyErr_Format(PyExc_ValueError, "%s: t: expected shape[0] divisible by world_size %d, got %lld", fn, ws,
                             (long long)shape[0]);
                return NULL;
            }
            shape[0] /= ws;
        }
        if (lc_tensor_device(t) != LC_DEVICE_CUDA) {
            PyErr_Format(PyExc_ValueError, "%s: t: expected a tensor on cuda, got one on %s", fn,
                         lc_device_name(lc_tensor_device(t)));
            return NULL;
        }
        lc_status st = lc_tensor_new(lc_tensor_dtype(t), LC_DEVICE_CUDA, nd, shape, &own);
        if (st != LC_OK) return lcpy_raise_status_in(fn, st);
        out = own;
    }
    lc_dist_comm_t *c = comm_enter(self, fn);
    if (c == NULL) {
        lc_tensor_free(own);
        return NULL;
    }
    lc_status st;
    COMM_CALL(self, st, gather ? lc_dist_all_gather(c, t, out) : lc_dist_reduce_scatter(c, t, out));
    if (st != LC_OK) {
        lc_tensor_free(own);
        return lcpy_raise_status(st);
    }
    if (own) return lcpy_tensor_adopt(own);
    Py_INCREF(out_obj);
    return out_obj;
}

static lcpy_sig sig_all_gather = LCPY_SIG("all_gather", 1, "t", "out");
static lcpy_sig sig_reduce_scatter = LCPY_SIG("reduce_scatter", 1, "t", "out");

static PyObject *comm_all_gather(LcDistCommObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[2];
    if (lcpy_parse(&sig_all_gather, args, nargs, kw, v) < 0) return NULL;
    return comm_gather_scatter(self, "all_gather", 1, v[0], v[1]);
}

static PyObject *comm_reduce_scatter(LcDistCommObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[2];
    if (lcpy_parse(&sig_reduce_scatter, args, nargs, kw, v) < 0) return NULL;
    return comm_gather_scatter(self, "reduce_scatter", 0, v[0], v[1]);
}

static lcpy_sig sig_broadcast = LCPY_SIG("broadcast", 1, "t", "src");

static PyObject *comm_broadcast(LcDistCommObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[2];
    int64_t src = 0;
    if (lcpy_parse(&sig_broadcast, args, nargs, kw, v) < 0) return NULL;
    lc_tensor_t *t = tensor_arg("broadcast", "t", v[0]);
    if (t == NULL) return NULL;
    if (v[1] != NULL && lcpy_int_arg("broadcast", "src", v[1], INT32_MIN, INT32_MAX, &src) < 0) return NULL;
    lc_dist_comm_t *c = comm_enter(self, "broadcast");
    if (c == NULL) return NULL;
    lc_status st;
    COMM_CALL(self, st, lc_dist_broadcast(c, t, (int)src));
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_INCREF(v[0]);
    return v[0];
}

static PyObject *comm_wait_common(LcDistCommObject *self, const char *fn, int barrier) {
    lc_dist_comm_t *c = comm_enter(self, fn);
    if (c == NULL) return NULL;
    lc_status st;
    COMM_CALL(self, st, barrier ? lc_dist_barrier(c) : lc_dist_wait(c));
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *comm_wait(LcDistCommObject *self, PyObject *noargs) { return comm_wait_common(self, "wait", 0); }
static PyObject *comm_barrier(LcDistCommObject *self, PyObject *noargs) { return comm_wait_common(self, "barrier", 1); }

static lcpy_sig sig_exchange = LCPY_SIG("exchange_header", 1, "values");

/* values: a sequence of 1..LC_DIST_HEADER_MAX ints -> a list (one per rank) of lists of ints. */
static PyObject *comm_exchange_header(LcDistCommObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    const char *fn = "exchange_header";
    PyObject *vals;
    if (lcpy_parse(&sig_exchange, args, nargs, kw, &vals) < 0) return NULL;
    PyObject *seq = PySequence_Fast(vals, "exchange_header: values: expected a sequence of ints");
    if (seq == NULL) return NULL;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int64_t mine[LC_DIST_HEADER_MAX];
    if (n < 1 || n > LC_DIST_HEADER_MAX) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "%s: values: expected 1..%d ints, got %zd", fn, LC_DIST_HEADER_MAX, n);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (lcpy_int_arg(fn, "values[i]", PySequence_Fast_GET_ITEM(seq, i), INT64_MIN, INT64_MAX, &mine[i]) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    lc_dist_comm_t *c = comm_enter(self, fn);
    if (c == NULL) return NULL;
    const int ws = lc_dist_comm_size(c);
    int64_t *all = PyMem_Malloc((size_t)ws * (size_t)n * sizeof(int64_t));
    if (all == NULL) {
        self->busy = 0;
        return PyErr_NoMemory();
    }
    lc_status st;
    COMM_CALL(self, st, lc_dist_exchange_header(c, mine, (int)n, all));
    if (st != LC_OK) {
        PyMem_Free(all);
        return lcpy_raise_status(st);
    }
    PyObject *res = PyList_New(ws);
    for (int r = 0; res && r < ws; r++) {
        PyObject *row = PyList_New(n);
        if (row == NULL) {
            Py_CLEAR(res);
            break;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = PyLong_FromLongLong(all[(size_t)r * (size_t)n + (size_t)i]);
            if (x == NULL) {
                Py_DECREF(row);
                row = NULL;
                break;
            }
            PyList_SET_ITEM(row, i, x);
        }
        if (row == NULL) {
            Py_CLEAR(res);
            break;
        }
        PyList_SET_ITEM(res, r, row);
    }
    PyMem_Free(all);
    return res;
}

static lcpy_sig sig_abort = LCPY_SIG("abort", 0, "reason");

static PyObject *comm_abort(LcDistCommObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *reason = NULL;
    if (lcpy_parse(&sig_abort, args, nargs, kw, &reason) < 0) return NULL;
    const char *text = "by the caller";
    if (reason != NULL && reason != Py_None) {
        if (!PyUnicode_Check(reason)) {
            PyErr_Format(PyExc_TypeError, "abort: reason: expected a str, got %s", Py_TYPE(reason)->tp_name);
            return NULL;
        }
        if ((text = PyUnicode_AsUTF8(reason)) == NULL) return NULL;
    }
    lc_dist_comm_t *c = comm_enter(self, "abort");
    if (c == NULL) return NULL;
    Py_BEGIN_ALLOW_THREADS
    lc_dist_comm_abort(c, text);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    Py_RETURN_NONE;
}

static PyObject *comm_destroy(LcDistCommObject *self, PyObject *noargs) {
    if (self->comm == NULL) Py_RETURN_NONE; /* idempotent */
    lc_dist_comm_t *c = comm_enter(self, "destroy");
    if (c == NULL) return NULL;
    self->comm = NULL;
    lc_status st;
    COMM_CALL(self, st, lc_dist_comm_destroy(c));
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *comm_get_int(LcDistCommObject *self, void *which) {
    if (self->comm == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "DistComm: the process group was destroyed");
        return NULL;
    }
    return PyLong_FromLong(which ? lc_dist_comm_size(self->comm) : lc_dist_comm_rank(self->comm));
}

static PyObject *comm_get_ok(LcDistCommObject *self, void *c) {
    return PyBool_FromLong(self->comm != NULL && lc_dist_comm_ok(self->comm));
}

static PyObject *comm_get_error(LcDistCommObject *self, void *c) {
    if (self->comm == NULL) return PyUnicode_FromString("the process group was destroyed");
    return PyUnicode_FromString(lc_dist_comm_error(self->comm));
}

static PyObject *comm_get_timeout(LcDistCommObject *self, void *c) {
    return PyFloat_FromDouble(self->comm ? lc_dist_comm_timeout(self->comm) : 0.0);
}

static int comm_set_timeout(LcDistCommObject *self, PyObject *value, void *c) {
    double t;
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "DistComm: timeout cannot be deleted");
        return -1;
    }
    if (lcpy_positive_float_arg("DistComm", "timeout", value, 0.0, &t) < 0) return -1;
    if (self->comm == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "DistComm: the process group was destroyed");
        return -1;
    }
    lc_status st = lc_dist_comm_set_timeout(self->comm, t);
    if (st != LC_OK) {
        lcpy_raise_status(st);
        return -1;
    }
    return 0;
}

#define COMM_FAST(name, doc) {#name, LCPY_FASTCALL(comm_##name), METH_FASTCALL | METH_KEYWORDS, doc}

static PyMethodDef comm_methods[] = {
    COMM_FAST(all_reduce, "all_reduce(t): sum over ranks, in place on the library's stream; returns t."),
    COMM_FAST(all_gather, "all_gather(t, out=None): every rank's t in rank order along axis 0; returns out."),
    COMM_FAST(reduce_scatter, "reduce_scatter(t, out=None): this rank's slice (axis 0) of the sum; returns out."),
    COMM_FAST(broadcast, "broadcast(t, src=0): rank src's t everywhere, in place; returns t."),
    {"wait", (PyCFunction)comm_wait, METH_NOARGS, "Waits (bounded by the timeout) for the enqueued work."},
    {"barrier", (PyCFunction)comm_barrier, METH_NOARGS, "Every rank reaches this point (bounded by the timeout)."},
    COMM_FAST(exchange_header, "exchange_header(values): every rank's list of ints (1..16), in rank order."),
    COMM_FAST(abort, "abort(reason=None): aborts the communicator; later calls fail naming reason."),
    {"destroy", (PyCFunction)comm_destroy, METH_NOARGS, "Waits for the work, frees the communicator (idempotent)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef comm_getset[] = {
    {"rank", (getter)comm_get_int, NULL, "This process's rank.", NULL},
    {"world_size", (getter)comm_get_int, NULL, "Number of ranks.", (void *)1},
    {"ok", (getter)comm_get_ok, NULL, "False once destroyed, aborted or failed.", NULL},
    {"error", (getter)comm_get_error, NULL, "The first error's text ('' while ok).", NULL},
    {"timeout", (getter)comm_get_timeout, (setter)comm_set_timeout, "Seconds every blocking wait may take.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LcDistComm_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lightning_core.DistComm",
    .tp_basicsize = sizeof(LcDistCommObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "DistComm(unique_id, world_size, rank, timeout): one NCCL communicator on the library's CUDA "
              "device (lightning_core.distributed wraps it).",
    .tp_new = comm_new,
    .tp_dealloc = (destructor)comm_dealloc,
    .tp_methods = comm_methods,
    .tp_getset = comm_getset,
};

PyMethodDef lcpy_dist_methods[] = {
    LCPY_NOARGS(dist_available, "True when this build has NCCL and a CUDA GPU is usable."),
    LCPY_NOARGS(dist_unavailable_reason, "'' when dist_available(), else why not."),
    LCPY_NOARGS(dist_nccl_version, "NCCL's version code (e.g. 22809), 0 without NCCL."),
    LCPY_NOARGS(dist_unique_id, "A fresh 128-byte NCCL unique id (rank 0 makes it, the others receive it)."),
    LCPY_METHOD(set_cuda_device, "($module, /, device)",
                "Selects the CUDA device the library uses; before its first CUDA work (or the device in use)."),
    LCPY_NOARGS(cuda_device, "The CUDA device the library uses (starts the backend), -1 without one."),
    LCPY_NOARGS(cuda_device_count, "The number of visible CUDA GPUs (0 without CUDA); starts nothing."),
    LCPY_NOARGS(capture_active, "True while this thread captures a device graph (capture_graph)."),
    {NULL, NULL, 0, NULL},
};

int lcpy_dist_register(PyObject *module) {
    if (PyType_Ready(&LcDistComm_Type) < 0) return -1;
    Py_INCREF(&LcDistComm_Type);
    if (PyModule_AddObject(module, "DistComm", (PyObject *)&LcDistComm_Type) < 0) {
        Py_DECREF(&LcDistComm_Type);
        return -1;
    }
    return 0;
}
