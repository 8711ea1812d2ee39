/* index_py.c — bindings of the index ops (ops.h):
 *   embedding(weight, ids, device="cpu") -> [..., d]      embedding_into(weight, ids, out, device="cpu")
 *   argmax(x, device="cpu") -> int64 [...]                argmax_into(x, out, device="cpu")
 * weight/x: ndarrays (copied contiguous when they are not) or lightning_core tensors of a float dtype; ids:
 * integer ndarrays (int32 kept, other integers as int64), sequences of ints, or int32/int64 tensors. The
 * result is a new ndarray, or a new Tensor on the device of the first tensor argument.
 * Tests: tests/python/test_ops_index.py. */
#include "convert.h"
#include "internal.h"

typedef struct ix_arg {
    lc_tensor_t *t, *own;
    PyArrayObject *arr;
    int tensor_dev; /* -1: an ndarray */
} ix_arg;

static void ix_release(ix_arg *a) {
    lc_tensor_free(a->own);
    Py_XDECREF(a->arr);
    memset(a, 0, sizeof *a);
}

/* kind 0: a float array/tensor; kind 1: integer ids. */
static int ix_take(const char *fn, const char *name, PyObject *obj, int kind, ix_arg *o) {
    memset(o, 0, sizeof *o);
    o->tensor_dev = -1;
    lc_tensor_t *h = lcpy_tensor_handle(obj);
    if (h) {
        o->t = h;
        o->tensor_dev = (int)lc_tensor_device(h);
        return 0;
    }
    lc_dtype dt;
    if (kind == 1) {
        int want = NPY_INT64;
        if (PyArray_Check(obj)) {
            const int tn = PyArray_TYPE((PyArrayObject *)obj);
            if (!PyTypeNum_ISINTEGER(tn) || PyTypeNum_ISBOOL(tn)) {
                PyErr_Format(PyExc_TypeError, "%s: %s: expected integers (int32 or int64), got dtype %S", fn, name,
                             (PyObject *)PyArray_DESCR((PyArrayObject *)obj));
                return -1;
            }
            if (tn == NPY_INT32) want = NPY_INT32;
        } else if (!PyList_Check(obj) && !PyTuple_Check(obj)) {
            PyErr_Format(PyExc_TypeError, "%s: %s: expected an integer ndarray, a sequence of ints or an int Tensor, got %s",
                         fn, name, Py_TYPE(obj)->tp_name);
            return -1;
        }
        o->arr = (PyArrayObject *)PyArray_FromAny(obj, PyArray_DescrFromType(want), 1, LC_MAX_DIMS - 1,
                                                  NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST, NULL);
        if (!o->arr) {
            if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "%s: %s: expected integers with 1..%d dimensions", fn, name, LC_MAX_DIMS - 1);
            }
            return -1;
        }
        dt = want == NPY_INT32 ? LC_DTYPE_I32 : LC_DTYPE_I64;
    } else {
        if (!PyArray_Check(obj)) {
            PyErr_Format(PyExc_TypeError, "%s: %s: expected a numpy.ndarray or a lightning_core Tensor, got %s", fn, name,
                         Py_TYPE(obj)->tp_name);
            return -1;
        }
        if (lcpy_typenum_dtype(PyArray_TYPE((PyArrayObject *)obj), &dt) < 0) {
            PyErr_Format(PyExc_TypeError, "%s: %s: expected dtype float32, float64, float16 or bfloat16, got %S", fn, name,
                         (PyObject *)PyArray_DESCR((PyArrayObject *)obj));
            return -1;
        }
        o->arr = lcpy_as_compute((PyArrayObject *)obj, PyArray_TYPE((PyArrayObject *)obj));
        if (!o->arr) return -1;
    }
    const int nd = PyArray_NDIM(o->arr);
    if (nd < 1 || nd > LC_MAX_DIMS || PyArray_SIZE(o->arr) == 0) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a non-empty array with 1..%d dimensions", fn, name, LC_MAX_DIMS);
        return -1;
    }
    int64_t dims[LC_MAX_DIMS];
    for (int i = 0; i < nd; i++) dims[i] = PyArray_DIM(o->arr, i);
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(o->arr), dt, nd, dims, NULL, 0, &o->own);
    if (st != LC_OK) {
        lcpy_raise_status_in(fn, st);
        return -1;
    }
    o->t = o->own;
    return 0;
}

/* out: a Tensor or a C-contiguous writable ndarray of dtype dt (its shape is checked by the library). */
static int ix_out(const char *fn, PyObject *obj, lc_dtype dt, lc_tensor_t **t, lc_tensor_t **own) {
    *own = NULL;
    lc_tensor_t *h = lcpy_tensor_handle(obj);
    if (h) {
        *t = h;
        return 0;
    }
    const int tn = lcpy_dtype_typenum(fn, dt);
    if (tn < 0) return -1;
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != tn) {
        PyErr_Format(PyExc_TypeError, "%s: out: expected a %s numpy.ndarray or Tensor, got %s", fn, lc_dtype_name(dt),
                     PyArray_Check(obj) ? "another dtype" : Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISWRITEABLE(a) || !PyArray_ISALIGNED(a) || PyArray_NDIM(a) > LC_MAX_DIMS ||
        PyArray_NDIM(a) < 1) {
        PyErr_Format(PyExc_ValueError, "%s: out: expected a C-contiguous, aligned, writable array with 1..%d dimensions", fn,
                     LC_MAX_DIMS);
        return -1;
    }
    int64_t dims[LC_MAX_DIMS];
    for (int i = 0; i < PyArray_NDIM(a); i++) dims[i] = PyArray_DIM(a, i);
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(a), dt, PyArray_NDIM(a), dims, NULL, 1, own);
    if (st != LC_OK) {
        lcpy_raise_status_in(fn, st);
        return -1;
    }
    *t = *own;
    return 0;
}

static PyObject *ix_new_out(const char *fn, int dev, lc_dtype dt, int nd, const int64_t *shape, lc_tensor_t **t,
                            lc_tensor_t **own) {
    *own = NULL;
    if (dev >= 0) {
        lc_tensor_t *nt = NULL;
        lc_status st = lc_tensor_new(dt, (lc_device)dev, nd, shape, &nt);
        if (st != LC_OK) return lcpy_raise_status_in(fn, st);
        *t = nt;
        return lcpy_tensor_adopt(nt);
    }
    npy_intp d[LC_MAX_DIMS];
    for (int i = 0; i < nd; i++) d[i] = (npy_intp)shape[i];
    const int tn = lcpy_dtype_typenum(fn, dt);
    if (tn < 0) return NULL;
    PyArrayObject *a = lcpy_new_array(nd, d, tn);
    if (!a) return NULL;
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(a), dt, nd, shape, NULL, 1, own);
    if (st != LC_OK) {
        Py_DECREF(a);
        return lcpy_raise_status_in(fn, st);
    }
    *t = *own;
    return (PyObject *)a;
}

static PyObject *ix_finish(PyObject *result, lc_status st, ix_arg *args, int n, lc_tensor_t *out_own) {
    for (int i = 0; i < n; i++) ix_release(&args[i]);
    lc_tensor_free(out_own);
    if (st != LC_OK) {
        Py_XDECREF(result);
        return lcpy_raise_status(st);
    }
    return result;
}

static PyObject *embedding_impl(const char *fn, PyObject *const *v, int has_out) {
    lc_device dev;
    if (lcpy_device_arg(fn, v[2 + has_out], &dev) < 0) return NULL;
    ix_arg a[2];
    memset(a, 0, sizeof a);
    if (ix_take(fn, "weight", v[0], 0, &a[0]) < 0 || ix_take(fn, "ids", v[1], 1, &a[1]) < 0) {
        ix_release(&a[0]);
        ix_release(&a[1]);
        return NULL;
    }
    lc_tensor_t *out_t = NULL, *out_own = NULL;
    PyObject *result = NULL;
    const lc_dtype wdt = lc_tensor_dtype(a[0].t);
    if (has_out) {
        if (ix_out(fn, v[2], wdt, &out_t, &out_own) == 0) {
            Py_INCREF(v[2]);
            result = v[2];
        }
    } else {
        int64_t shape[LC_MAX_DIMS];
        const int nd = lc_tensor_ndim(a[1].t);
        if (nd >= LC_MAX_DIMS || lc_tensor_ndim(a[0].t) != 2) {
            PyErr_Format(PyExc_ValueError, "%s: %s: expected weight [vocab, d] and ids with at most %d dimensions", fn,
                         lc_tensor_ndim(a[0].t) != 2 ? "weight" : "ids", LC_MAX_DIMS - 1);
        } else {
            for (int i = 0; i < nd; i++) shape[i] = lc_tensor_shape(a[1].t)[i];
            shape[nd] = lc_tensor_shape(a[0].t)[1];
            const int tdev = a[0].tensor_dev >= 0 ? a[0].tensor_dev : a[1].tensor_dev;
            result = ix_new_out(fn, tdev, wdt, nd + 1, shape, &out_t, &out_own);
        }
    }
    if (!result) return ix_finish(NULL, LC_OK, a, 2, out_own);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_embedding(a[0].t, a[1].t, out_t, dev);
    Py_END_ALLOW_THREADS
    return ix_finish(result, st, a, 2, out_own);
}

static PyObject *argmax_impl(const char *fn, PyObject *const *v, int has_out) {
    lc_device dev;
    if (lcpy_device_arg(fn, v[1 + has_out], &dev) < 0) return NULL;
    ix_arg a[1];
    if (ix_take(fn, "x", v[0], 0, &a[0]) < 0) {
        ix_release(&a[0]);
        return NULL;
    }
    lc_tensor_t *out_t = NULL, *out_own = NULL;
    PyObject *result = NULL;
    if (has_out) {
        if (ix_out(fn, v[1], LC_DTYPE_I64, &out_t, &out_own) == 0) {
            Py_INCREF(v[1]);
            result = v[1];
        }
    } else {
        const int nd = lc_tensor_ndim(a[0].t);
        int64_t one = 1;
        result = ix_new_out(fn, a[0].tensor_dev, LC_DTYPE_I64, nd > 1 ? nd - 1 : 1, nd > 1 ? lc_tensor_shape(a[0].t) : &one,
                            &out_t, &out_own);
    }
    if (!result) return ix_finish(NULL, LC_OK, a, 1, out_own);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_argmax(a[0].t, out_t, dev);
    Py_END_ALLOW_THREADS
    return ix_finish(result, st, a, 1, out_own);
}

static lcpy_sig sig_embedding = LCPY_SIG("embedding", 2, "weight", "ids", "device");
static lcpy_sig sig_embedding_into = LCPY_SIG("embedding_into", 3, "weight", "ids", "out", "device");
static lcpy_sig sig_argmax = LCPY_SIG("argmax", 1, "x", "device");
static lcpy_sig sig_argmax_into = LCPY_SIG("argmax_into", 2, "x", "out", "device");

static PyObject *py_embedding(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[3];
    if (lcpy_parse(&sig_embedding, args, nargs, kw, v) < 0) return NULL;
    return embedding_impl("embedding", v, 0);
}

static PyObject *py_embedding_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[4];
    if (lcpy_parse(&sig_embedding_into, args, nargs, kw, v) < 0) return NULL;
    return embedding_impl("embedding_into", v, 1);
}

static PyObject *py_argmax(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[2];
    if (lcpy_parse(&sig_argmax, args, nargs, kw, v) < 0) return NULL;
    return argmax_impl("argmax", v, 0);
}

static PyObject *py_argmax_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[3];
    if (lcpy_parse(&sig_argmax_into, args, nargs, kw, v) < 0) return NULL;
    return argmax_impl("argmax_into", v, 1);
}

PyMethodDef lcpy_index_methods[] = {
    LCPY_METHOD(embedding, "($module, /, weight, ids, device='cpu')",
                "rows of weight [vocab, d] gathered by integer ids [...] -> [..., d]."),
    LCPY_METHOD(embedding_into, "($module, /, weight, ids, out, device='cpu')", "embedding into out; returns out."),
    LCPY_METHOD(argmax, "($module, /, x, device='cpu')",
                "int64 index of the largest element over the last axis (first on ties, NaN largest)."),
    LCPY_METHOD(argmax_into, "($module, /, x, out, device='cpu')", "argmax into an int64 out; returns out."),
    {NULL, NULL, 0, NULL},
};
