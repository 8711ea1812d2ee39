/* index_py.c — bindings of the index ops (ops.h):
 *   embedding(weight, ids, device="cpu", offset=None) -> [..., d]
 *   embedding_into(weight, ids, out, device="cpu", offset=None)
 *     (offset: weight is a vocabulary shard holding ids offset..offset+vocab-1; other ids give zero rows)
 *   argmax(x, device="cpu") -> int64 [...]                argmax_into(x, out, device="cpu")
 *   sample(logits, temperature=1.0, top_k=0, top_p=1.0, seed=0, counter=None, device="cpu") -> int64 [B]
 *   sample_into(logits, out, temperature=1.0, top_k=0, top_p=1.0, seed=0, counter=None, device="cpu")
 * weight/x: ndarrays (copied contiguous when they are not) or lightning_core tensors of a float dtype; ids:
 * integer ndarrays (int32 kept, other integers as int64), sequences of ints, or int32/int64 tensors. The
 * result is a new ndarray, or a new Tensor on the device of the first tensor argument. sample's counter: None,
 * an int64 Tensor [1] (on the device the op runs on) or a writable int64 ndarray [1] (CPU); the call adds 1.
 * Tests: tests/python/test_ops_index.py, tests/python/test_sample.py. */
#include <math.h>

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
    PyObject *off_obj = v[3 + has_out];
    int64_t offset = -1; /* -1: no offset (ids checked against the table's rows) */
    if (off_obj && off_obj != Py_None && lcpy_int_arg(fn, "offset", off_obj, 0, INT64_MAX, &offset) < 0) return NULL;
    /* learned positions (lc_embedding_pos; the op table's rule names one given without the other), not with offset */
    PyObject *pw_obj = v[4 + has_out], *pos_obj = v[5 + has_out];
    const int has_pw = pw_obj && pw_obj != Py_None, has_pos = pos_obj && pos_obj != Py_None, npos = has_pw || has_pos;
    if (npos && offset >= 0) {
        PyErr_Format(PyExc_ValueError, "%s: offset: expected None with pos_weight / positions (a vocabulary shard "
                     "holds no positions), got %lld", fn, (long long)offset);
        return NULL;
    }
    ix_arg a[4];
    memset(a, 0, sizeof a);
    const int na = npos ? 4 : 2;
    if (ix_take(fn, "weight", v[0], 0, &a[0]) < 0 || ix_take(fn, "ids", v[1], 1, &a[1]) < 0 ||
        (has_pw && ix_take(fn, "pos_weight", pw_obj, 0, &a[2]) < 0) ||
        (has_pos && ix_take(fn, "positions", pos_obj, 1, &a[3]) < 0)) {
        for (int i = 0; i < 4; i++) ix_release(&a[i]);
        return NULL;
    }
    lc_tensor_t *out_t = NULL, *out_own = NULL;
    PyObject *result = NULL;
    const lc_dtype wdt = lc_tensor_dtype(a[0].t);
    if (has_out) {
        if (lcpy_out_take(fn, "out", v[2], wdt, &out_t, &out_own) == 0) {
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
            result = lcpy_result_new(fn, tdev, wdt, nd + 1, shape, &out_t, &out_own);
        }
    }
    if (!result) return ix_finish(NULL, LC_OK, a, na, out_own);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = npos         ? lc_embedding_pos(a[0].t, a[1].t, a[2].t, a[3].t, out_t, dev)
         : offset < 0 ? lc_embedding(a[0].t, a[1].t, out_t, dev)
                      : lc_embedding_offset(a[0].t, a[1].t, offset, out_t, dev);
    Py_END_ALLOW_THREADS
    return ix_finish(result, st, a, na, out_own);
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
        if (lcpy_out_take(fn, "out", v[1], LC_DTYPE_I64, &out_t, &out_own) == 0) {
            Py_INCREF(v[1]);
            result = v[1];
        }
    } else {
        const int nd = lc_tensor_ndim(a[0].t);
        int64_t one = 1;
        result = lcpy_result_new(fn, a[0].tensor_dev, LC_DTYPE_I64, nd > 1 ? nd - 1 : 1, nd > 1 ? lc_tensor_shape(a[0].t) : &one,
                            &out_t, &out_own);
    }
    if (!result) return ix_finish(NULL, LC_OK, a, 1, out_own);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_argmax(a[0].t, out_t, dev);
    Py_END_ALLOW_THREADS
    return ix_finish(result, st, a, 1, out_own);
}

/* A number (int or float, not bool) -> float32; ranges are the library's to judge (ValueError naming the arg). */
static int smp_float_arg(const char *fn, const char *name, PyObject *obj, float dflt, float *out) {
    if (!obj) {
        *out = dflt;
        return 0;
    }
    if (PyBool_Check(obj) || PyArray_IsScalar(obj, Bool) || !(PyFloat_Check(obj) || PyLong_Check(obj) ||
                                                              PyArray_IsScalar(obj, Number))) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a float, got %s", fn, name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    const double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a finite float, got %R", fn, name, obj);
        return -1;
    }
    *out = (float)v;
    if (v != 0.0 && isfinite(v) && (*out == 0.0f || !isfinite(*out))) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a value representable in float32, got %R", fn, name, obj);
        return -1;
    }
    return 0;
}

/* seed: an int in 0 .. 2^64 - 1. */
static int smp_seed_arg(const char *fn, PyObject *obj, uint64_t *out) {
    *out = 0;
    if (!obj) return 0;
    if (PyBool_Check(obj) || PyArray_IsScalar(obj, Bool) || !(PyLong_Check(obj) || PyIndex_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "%s: seed: expected an int, got %s", fn, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *idx = PyNumber_Index(obj);
    if (!idx) return -1;
    const unsigned long long v = PyLong_AsUnsignedLongLong(idx);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: seed: expected an int in 0..2**64-1, got %R", fn, idx);
        Py_DECREF(idx);
        return -1;
    }
    Py_DECREF(idx);
    *out = (uint64_t)v;
    return 0;
}

/* counter: None, a Tensor (checked by the library) or a writable, C-contiguous int64 ndarray (wrapped). */
static int smp_counter_arg(const char *fn, PyObject *obj, lc_tensor_t **t, lc_tensor_t **own) {
    *t = *own = NULL;
    if (!obj || obj == Py_None) return 0;
    lc_tensor_t *h = lcpy_tensor_handle(obj);
    if (h) {
        *t = h;
        return 0;
    }
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_INT64) {
        PyErr_Format(PyExc_TypeError, "%s: counter: expected None, an int64 Tensor [1] or an int64 numpy.ndarray [1], got %s",
                     fn, PyArray_Check(obj) ? "an ndarray of another dtype" : Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISWRITEABLE(a) || !PyArray_ISALIGNED(a) || PyArray_NDIM(a) != 1 ||
        PyArray_DIM(a, 0) != 1) {
        PyErr_Format(PyExc_ValueError, "%s: counter: expected a writable, C-contiguous int64 array of shape (1,)", fn);
        return -1;
    }
    const int64_t one = 1;
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(a), LC_DTYPE_I64, 1, &one, NULL, 1, own);
    if (st != LC_OK) {
        lcpy_raise_status_in(fn, st);
        return -1;
    }
    *t = *own;
    return 0;
}

/* v: logits, [out], temperature, top_k, top_p, seed, counter, device. */
static PyObject *sample_impl(const char *fn, PyObject *const *v, int has_out) {
    const int b0 = 1 + has_out;
    lc_device dev;
    lc_sample_options opt = {1.0f, 0, 1.0f, 0, NULL};
    if (lcpy_device_arg(fn, v[b0 + 5], &dev) < 0 || smp_float_arg(fn, "temperature", v[b0], 1.0f, &opt.temperature) < 0)
        return NULL;
    if (v[b0 + 1] && lcpy_int_arg(fn, "top_k", v[b0 + 1], INT64_MIN, INT64_MAX, &opt.top_k) < 0) return NULL;
    if (smp_float_arg(fn, "top_p", v[b0 + 2], 1.0f, &opt.top_p) < 0 || smp_seed_arg(fn, v[b0 + 3], &opt.seed) < 0)
        return NULL;
    lc_tensor_t *counter = NULL, *counter_own = NULL;
    if (smp_counter_arg(fn, v[b0 + 4], &counter, &counter_own) < 0) return NULL;
    opt.counter = counter;
    ix_arg a[1];
    if (ix_take(fn, "logits", v[0], 0, &a[0]) < 0) {
        ix_release(&a[0]);
        lc_tensor_free(counter_own);
        return NULL;
    }
    lc_tensor_t *out_t = NULL, *out_own = NULL;
    PyObject *result = NULL;
    if (has_out) {
        if (lcpy_out_take(fn, "out", v[1], LC_DTYPE_I64, &out_t, &out_own) == 0) {
            Py_INCREF(v[1]);
            result = v[1];
        }
    } else if (lc_tensor_ndim(a[0].t) != 2) {
        PyErr_Format(PyExc_ValueError, "%s: logits: expected 2 dimensions [batch, vocab], got %d", fn,
                     lc_tensor_ndim(a[0].t));
    } else {
        result = lcpy_result_new(fn, a[0].tensor_dev, LC_DTYPE_I64, 1, lc_tensor_shape(a[0].t), &out_t, &out_own);
    }
    lc_status st = LC_OK;
    if (result) {
        Py_BEGIN_ALLOW_THREADS
        st = lc_sample(a[0].t, out_t, &opt, dev);
        Py_END_ALLOW_THREADS
    }
    lc_tensor_free(counter_own);
    return ix_finish(result, st, a, 1, out_own);
}

static lcpy_sig sig_embedding = LCPY_SIG("embedding", 2, "weight", "ids", "device", "offset", "pos_weight", "positions");
static lcpy_sig sig_embedding_into =
    LCPY_SIG("embedding_into", 3, "weight", "ids", "out", "device", "offset", "pos_weight", "positions");
static lcpy_sig sig_argmax = LCPY_SIG("argmax", 1, "x", "device");
static lcpy_sig sig_argmax_into = LCPY_SIG("argmax_into", 2, "x", "out", "device");

static lcpy_sig sig_sample =
    LCPY_SIG("sample", 1, "logits", "temperature", "top_k", "top_p", "seed", "counter", "device");
static lcpy_sig sig_sample_into =
    LCPY_SIG("sample_into", 2, "logits", "out", "temperature", "top_k", "top_p", "seed", "counter", "device");

LCPY_PARSED(sample, sig_sample, sample_impl("sample", v, 0))

LCPY_PARSED(sample_into, sig_sample_into, sample_impl("sample_into", v, 1))

LCPY_PARSED(embedding, sig_embedding, embedding_impl("embedding", v, 0))

LCPY_PARSED(embedding_into, sig_embedding_into, embedding_impl("embedding_into", v, 1))

LCPY_PARSED(argmax, sig_argmax, argmax_impl("argmax", v, 0))

LCPY_PARSED(argmax_into, sig_argmax_into, argmax_impl("argmax_into", v, 1))

PyMethodDef lcpy_index_methods[] = {
    LCPY_METHOD(embedding, "($module, /, weight, ids, device='cpu', offset=None, pos_weight=None, positions=None)",
                "rows of weight [vocab, d] gathered by integer ids [...] -> [..., d]; offset (an int >= 0): weight "
                "holds the rows of ids offset..offset+vocab-1 (a vocabulary shard) and any other id gives a zero row; "
                "pos_weight [p, d] with positions (ids' shape): + pos_weight[positions], added as add adds (GPT-2's "
                "input in one op)."),
    LCPY_METHOD(embedding_into,
                "($module, /, weight, ids, out, device='cpu', offset=None, pos_weight=None, positions=None)",
                "embedding into out; returns out."),
    LCPY_METHOD(argmax, "($module, /, x, device='cpu')",
                "int64 index of the largest element over the last axis (first on ties, NaN largest)."),
    LCPY_METHOD(argmax_into, "($module, /, x, out, device='cpu')", "argmax into an int64 out; returns out."),
    LCPY_METHOD(sample, "($module, /, logits, temperature=1.0, top_k=0, top_p=1.0, seed=0, counter=None, device='cpu')",
                "one int64 token a row of logits [B, V]: temperature, top-k, top-p, Philox(seed, counter, row)."),
    LCPY_METHOD(sample_into,
                "($module, /, logits, out, temperature=1.0, top_k=0, top_p=1.0, seed=0, counter=None, device='cpu')",
                "sample into an int64 out [B]; returns out."),
    {NULL, NULL, 0, NULL},
};
