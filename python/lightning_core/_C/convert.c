/* convert.c — argument handling shared by the bindings of lightning_core._C (see convert.h): the
 * keyword path of the fast-call parser, NumPy type numbers <-> library dtypes (ml_dtypes.bfloat16 looked
 * up lazily), ndarray input/`out` checks and conversion (float16/bfloat16 through lc_convert), int/bool/
 * float/device arguments, and lc_tensor_t wrappers over ndarray data.
 * Tests: tests/python/test_bad_inputs.py, tests/python/test_ops_*.py, tests/python/test_tensor.py. */
#include "convert.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- argument parser (keyword / unusual-count path) ------------------------------------------ */

static int lcpy_sig_init(lcpy_sig *s) {
    int n = 0;
    while (s->names[n] != NULL && n < LCPY_MAX_ARGS) {
        if (s->interned[n] == NULL) {
            s->interned[n] = PyUnicode_InternFromString(s->names[n]);
            if (s->interned[n] == NULL) return -1;
        }
        n++;
    }
    s->nargs = n; /* set last: the fast path takes nargs > 0 as "ready" */
    return 0;
}

int lcpy_parse_slow(lcpy_sig *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **v) {
    if (s->nargs == 0 && lcpy_sig_init(s) < 0) return -1;
    if (nargs > s->nargs) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d argument%s (%zd given)", s->fn, s->nargs,
                     s->nargs == 1 ? "" : "s", nargs);
        return -1;
    }
    for (int i = 0; i < s->nargs; i++) v[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, j);
        int found = -1;
        for (int i = 0; i < s->nargs; i++) {
            if (key == s->interned[i]) {
                found = i;
                break;
            }
        }
        if (found < 0) {
            for (int i = 0; i < s->nargs; i++) {
                if (PyUnicode_Check(key) && PyUnicode_Compare(key, s->interned[i]) == 0) {
                    found = i;
                    break;
                }
            }
            if (PyErr_Occurred()) return -1;
        }
        if (found < 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", s->fn, key);
            return -1;
        }
        if (v[found] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", s->fn, s->names[found]);
            return -1;
        }
        v[found] = args[nargs + j];
    }
    for (int i = 0; i < s->nreq; i++) {
        if (v[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %d)", s->fn, s->names[i],
                         i + 1);
            return -1;
        }
    }
    return 0;
}

/* ---- messages ------------------------------------------------------------------------------- */

/* ---- dtypes ---------------------------------------------------------------------------------- */

static int lcpy_bf16_num = -1; /* -1: not looked up yet (or ml_dtypes was not importable last time) */

int lcpy_bf16_typenum(void) {
    if (lcpy_bf16_num >= 0) return lcpy_bf16_num;
    PyObject *exc_type, *exc_value, *exc_tb; /* a lookup never disturbs an exception being raised */
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    int num = -1;
    PyObject *mod = PyImport_ImportModule("ml_dtypes");
    PyObject *ty = mod ? PyObject_GetAttrString(mod, "bfloat16") : NULL;
    PyArray_Descr *d = NULL;
    if (ty != NULL && PyArray_DescrConverter(ty, &d) == NPY_SUCCEED && d != NULL) {
        if (d->type_num >= NPY_USERDEF && PyDataType_ELSIZE(d) == 2) num = d->type_num;
        Py_DECREF(d);
    }
    Py_XDECREF(ty);
    Py_XDECREF(mod);
    PyErr_Clear();
    PyErr_Restore(exc_type, exc_value, exc_tb);
    if (num >= 0) lcpy_bf16_num = num;
    return num;
}

int lcpy_typenum_dtype_slow(int typenum, lc_dtype *out) {
    if (typenum < NPY_USERDEF) return -1; /* the builtin ones are in the inline switch */
    const int bf = lcpy_bf16_typenum();
    if (bf < 0 || typenum != bf) return -1;
    *out = LC_DTYPE_BF16;
    return 0;
}

int lcpy_dtype_typenum(const char *fn, lc_dtype dt) {
    switch (dt) {
    case LC_DTYPE_F32: return NPY_FLOAT;
    case LC_DTYPE_F64: return NPY_DOUBLE;
    case LC_DTYPE_F16: return NPY_HALF;
    case LC_DTYPE_I32: return NPY_INT32;
    case LC_DTYPE_I64: return NPY_INT64;
    case LC_DTYPE_BOOL: return NPY_BOOL;
    case LC_DTYPE_BF16: {
        const int bf = lcpy_bf16_typenum();
        if (bf < 0)
            PyErr_Format(PyExc_TypeError,
                         "%s: a bfloat16 array needs the ml_dtypes package (pip install ml_dtypes), which could not "
                         "be imported",
                         fn);
        return bf;
    }
    default:
        PyErr_Format(PyExc_TypeError, "%s: expected a float32, float64, float16 or bfloat16 dtype, got %s", fn,
                     lc_dtype_name(dt));
        return -1;
    }
}

int lcpy_dtype_arg(const char *fn, const char *name, PyObject *obj, lc_dtype *out) {
    lc_dtype dt = LC_DTYPE_COUNT;
    if (PyUnicode_Check(obj)) {
        const char *s = PyUnicode_AsUTF8(obj);
        if (s == NULL) PyErr_Clear();
        else if (lc_dtype_from_name(s, &dt) != LC_OK) dt = LC_DTYPE_COUNT;
        lc_clear_error();
    } else if (obj != Py_None) {
        PyArray_Descr *d = NULL;
        if (PyArray_DescrConverter2(obj, &d) == NPY_SUCCEED && d != NULL && lcpy_typenum_dtype(d->type_num, &dt) < 0)
            dt = LC_DTYPE_COUNT;
        Py_XDECREF(d);
        PyErr_Clear();
    }
    if (dt == LC_DTYPE_F32 || dt == LC_DTYPE_F64 || dt == LC_DTYPE_F16 || dt == LC_DTYPE_BF16) {
        *out = dt;
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "%s: %s: expected float32, float64, float16 or bfloat16 (a name, NumPy dtype or type), got %R", fn,
                 name, obj);
    return -1;
}

const char *lcpy_typenum_name(int typenum) {
    lc_dtype dt;
    return lcpy_typenum_dtype(typenum, &dt) == 0 ? lc_dtype_name(dt) : "unsupported";
}

void lcpy_format_shape(char *buf, size_t size, int ndim, const npy_intp *dims) {
    size_t pos = 0;
    int n = snprintf(buf, size, "(");
    if (n < 0) return;
    pos = (size_t)n;
    for (int i = 0; i < ndim && pos < size; i++) {
        n = snprintf(buf + pos, size - pos, i == 0 ? "%lld" : ", %lld", (long long)dims[i]);
        if (n < 0) return;
        pos += (size_t)n;
    }
    if (pos < size) snprintf(buf + pos, size - pos, ndim == 1 ? ",)" : ")");
}

/* ---- inputs --------------------------------------------------------------------------------- */

PyArrayObject *lcpy_input_arg(const char *fn, const char *name, PyObject *obj) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a numpy.ndarray, got %s", fn, name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    lc_dtype dt;
    if (lcpy_typenum_dtype(PyArray_TYPE(a), &dt) < 0) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a float32, float64, float16 or bfloat16 array, got dtype %S",
                     fn, name, (PyObject *)PyArray_DESCR(a));
        return NULL;
    }
    if (PyArray_SIZE(a) == 0) {
        char shp[160];
        lcpy_format_shape(shp, sizeof shp, PyArray_NDIM(a), PyArray_DIMS(a));
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a non-empty array, got shape %s", fn, name, shp);
        return NULL;
    }
    return a;
}

/* `a` (any layout) converted to `typenum` through lc_convert: float16/bfloat16 on either side. */
static PyArrayObject *lcpy_convert_lowp(PyArrayObject *a, lc_dtype sd, int typenum, lc_dtype dd) {
    PyArrayObject *src = lcpy_as_compute(a, PyArray_TYPE(a)); /* contiguous, aligned, native: same dtype */
    if (src == NULL) return NULL;
    PyArrayObject *dst = lcpy_new_array(PyArray_NDIM(src), PyArray_DIMS(src), typenum);
    if (dst == NULL) {
        Py_DECREF(src);
        return NULL;
    }
    const size_t n = (size_t)PyArray_SIZE(src);
    lc_status st = LC_OK;
    if (n > 0) {
        Py_BEGIN_ALLOW_THREADS
        st = lc_convert(dd, PyArray_DATA(dst), sd, PyArray_DATA(src), n);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(src);
    if (st != LC_OK) {
        Py_DECREF(dst);
        return (PyArrayObject *)lcpy_raise_status(st);
    }
    return dst;
}

PyArrayObject *lcpy_convert_slow(PyArrayObject *a, int typenum) {
    lc_dtype sd, dd;
    if (PyArray_TYPE(a) != typenum && lcpy_typenum_dtype(PyArray_TYPE(a), &sd) == 0 &&
        lcpy_typenum_dtype(typenum, &dd) == 0 && (lcpy_is_lowp(sd) || lcpy_is_lowp(dd)))
        return lcpy_convert_lowp(a, sd, typenum, dd);
    PyArray_Descr *descr = PyArray_DescrFromType(typenum); /* stolen below */
    if (descr == NULL) return NULL;
    return (PyArrayObject *)PyArray_FromArray(a, descr,
                                              NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
}

/* ---- out ------------------------------------------------------------------------------------ */

PyArrayObject *lcpy_out_arg(const char *fn, PyObject *obj, lc_dtype dt, int ndim, const npy_intp *shape,
                            const char *count_what) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: out: expected a numpy.ndarray, got %s", fn, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *o = (PyArrayObject *)obj;
    lc_dtype od;
    if (lcpy_typenum_dtype(PyArray_TYPE(o), &od) < 0 || od != dt || !PyArray_ISNOTSWAPPED(o)) {
        PyErr_Format(PyExc_TypeError, "%s: out: expected dtype %s, got %S", fn, lc_dtype_name(dt),
                     (PyObject *)PyArray_DESCR(o));
        return NULL;
    }
    if (!PyArray_ISWRITEABLE(o)) {
        PyErr_Format(PyExc_ValueError, "%s: out: expected a writable array, got a read-only array", fn);
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(o) || !PyArray_ISALIGNED(o)) {
        PyErr_Format(PyExc_ValueError, "%s: out: expected a C-contiguous, aligned array, got a %s array", fn,
                     PyArray_IS_C_CONTIGUOUS(o) ? "misaligned" : "non-contiguous");
        return NULL;
    }
    if (ndim >= 0) {
        int same = PyArray_NDIM(o) == ndim;
        for (int i = 0; same && i < ndim; i++) same = PyArray_DIM(o, i) == shape[i];
        if (!same) {
            char want[160], got[160];
            lcpy_format_shape(want, sizeof want, ndim, shape);
            lcpy_format_shape(got, sizeof got, PyArray_NDIM(o), PyArray_DIMS(o));
            PyErr_Format(PyExc_ValueError, "%s: out: expected shape %s, got %s", fn, want, got);
            return NULL;
        }
    } else if (PyArray_SIZE(o) != shape[0]) {
        char got[160];
        lcpy_format_shape(got, sizeof got, PyArray_NDIM(o), PyArray_DIMS(o));
        PyErr_Format(PyExc_ValueError, "%s: out: expected %lld elements (%s), got %lld (shape %s)", fn,
                     (long long)shape[0], count_what, (long long)PyArray_SIZE(o), got);
        return NULL;
    }
    return o;
}


/* ---- scalars -------------------------------------------------------------------------------- */

static void lcpy_int_range_error(const char *fn, const char *name, PyObject *obj, int64_t minval, int64_t maxval,
                                 int too_small) {
    if (minval == INT64_MIN && maxval == INT64_MAX)
        PyErr_Format(PyExc_ValueError, "%s: %s: expected an int that fits in 64 bits, got %R", fn, name, obj);
    else if (too_small || maxval == INT64_MAX)
        PyErr_Format(PyExc_ValueError, "%s: %s: expected an int >= %lld%s, got %R", fn, name, (long long)minval,
                     too_small ? "" : " that fits in 64 bits", obj);
    else
        PyErr_Format(PyExc_ValueError, "%s: %s: expected an int >= %lld and <= %lld, got %R", fn, name,
                     (long long)minval, (long long)maxval, obj);
}

int lcpy_int_arg(const char *fn, const char *name, PyObject *obj, int64_t minval, int64_t maxval, int64_t *out) {
    if (PyBool_Check(obj) || PyArray_IsScalar(obj, Bool) || !(PyLong_Check(obj) || PyIndex_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected an int, got %s", fn, name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *idx = PyLong_Check(obj) ? (Py_INCREF(obj), obj) : PyNumber_Index(obj);
    if (idx == NULL) return -1;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        Py_DECREF(idx);
        return -1;
    }
    if (overflow != 0 || v < minval || v > maxval) {
        lcpy_int_range_error(fn, name, idx, minval, maxval, overflow < 0 || (overflow == 0 && v < minval));
        Py_DECREF(idx);
        return -1;
    }
    Py_DECREF(idx);
    *out = (int64_t)v;
    return 0;
}

int lcpy_bool_arg(const char *fn, const char *name, PyObject *obj, int dflt, int *out) {
    if (obj == NULL) {
        *out = dflt;
        return 0;
    }
    if (obj == Py_True || obj == Py_False) {
        *out = obj == Py_True;
        return 0;
    }
    if (PyArray_IsScalar(obj, Bool) || PyLong_Check(obj)) {
        int r = PyObject_IsTrue(obj);
        if (r < 0) return -1;
        *out = r;
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s: %s: expected a bool, got %s", fn, name, Py_TYPE(obj)->tp_name);
    return -1;
}

static PyObject *lcpy_device_strs[LC_DEVICE_COUNT];

int lcpy_device_arg(const char *fn, PyObject *obj, lc_device *out) {
    if (obj == NULL) {
        *out = LC_DEVICE_CPU;
        return 0;
    }
    for (int d = 0; d < LC_DEVICE_COUNT; d++) {
        if (obj == lcpy_device_strs[d]) { /* interned literal: the common case */
            *out = (lc_device)d;
            return 0;
        }
    }
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: device: expected a str ('cpu', 'cuda', 'metal' or 'auto'), got %s", fn,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t len = 0;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &len);
    if (s == NULL) {
        PyErr_Clear(); /* e.g. lone surrogates: not a device name either */
    } else if ((size_t)len == strlen(s) && lc_device_parse(s, out) == LC_OK) {
        if (lcpy_device_strs[*out] == NULL) {
            lcpy_device_strs[*out] = PyUnicode_InternFromString(lc_device_name(*out));
            if (lcpy_device_strs[*out] == NULL) PyErr_Clear(); /* cache only */
        }
        return 0;
    }
    lc_clear_error();
    PyErr_Format(PyExc_ValueError, "%s: device: expected one of 'cpu', 'cuda', 'metal', 'auto', got %R", fn, obj);
    return -1;
}

int lcpy_positive_float_arg(const char *fn, const char *name, PyObject *obj, double dflt, double *out) {
    if (obj == NULL) {
        *out = dflt;
        return 0;
    }
    double v;
    if (PyFloat_CheckExact(obj)) {
        v = PyFloat_AS_DOUBLE(obj);
    } else {
        if (PyBool_Check(obj) || PyArray_IsScalar(obj, Bool) || PyUnicode_Check(obj) || PyBytes_Check(obj)) {
            PyErr_Format(PyExc_TypeError, "%s: %s: expected a float, got %s", fn, name, Py_TYPE(obj)->tp_name);
            return -1;
        }
        v = PyFloat_AsDouble(obj);
        if (v == -1.0 && PyErr_Occurred()) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "%s: %s: expected a float, got %s", fn, name, Py_TYPE(obj)->tp_name);
            } else if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "%s: %s: expected a finite float > 0, got %R", fn, name, obj);
            }
            return -1;
        }
    }
    if (!(v > 0.0) || !isfinite(v)) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a finite float > 0, got %R", fn, name, obj);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- tensors over ndarray data -------------------------------------------------------------- */

int lcpy_wrap(PyArrayObject *a, int ndim, const int64_t *shape, int writable, lc_tensor_t **out) {
    int64_t dims[LC_MAX_DIMS];
    if (shape == NULL) {
        ndim = PyArray_NDIM(a);
        if (ndim > LC_MAX_DIMS) {
            PyErr_Format(PyExc_ValueError, "expected at most %d dimensions, got %d", LC_MAX_DIMS, ndim);
            return -1;
        }
        for (int i = 0; i < ndim; i++) dims[i] = (int64_t)PyArray_DIM(a, i);
        shape = dims;
    }
    lc_dtype dt;
    if (lcpy_typenum_dtype(PyArray_TYPE(a), &dt) < 0) {
        PyErr_Format(PyExc_TypeError, "expected a float32, float64, float16 or bfloat16 array, got dtype %S",
                     (PyObject *)PyArray_DESCR(a));
        return -1;
    }
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(a), dt, ndim, shape, NULL, writable, out);
    if (st != LC_OK) {
        *out = NULL;
        lcpy_raise_status(st);
        return -1;
    }
    return 0;
}

PyObject *lcpy_result_new(const char *fn, int tensor_dev, lc_dtype dt, int ndim, const int64_t *shape, lc_tensor_t **t,
                               lc_tensor_t **own) {
    *own = NULL;
    if (tensor_dev >= 0) {
        lc_tensor_t *nt = NULL;
        lc_status st = lc_tensor_new(dt, (lc_device)tensor_dev, ndim, shape, &nt);
        if (st != LC_OK) return lcpy_raise_status_in(fn, st);
        *t = nt;
        return lcpy_tensor_adopt(nt);
    }
    npy_intp dims[LC_MAX_DIMS];
    for (int i = 0; i < ndim; i++) dims[i] = (npy_intp)shape[i];
    const int tn = lcpy_dtype_typenum(fn, dt);
    if (tn < 0) return NULL;
    PyArrayObject *a = lcpy_new_array(ndim, dims, tn);
    if (!a) return NULL;
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(a), dt, ndim, shape, NULL, 1, own);
    if (st != LC_OK) {
        Py_DECREF(a);
        return lcpy_raise_status_in(fn, st);
    }
    *t = *own;
    return (PyObject *)a;
}


int lcpy_out_take(const char *fn, const char *name, PyObject *obj, lc_dtype dt, lc_tensor_t **t, lc_tensor_t **own) {
    *own = NULL;
    lc_tensor_t *h = lcpy_tensor_handle(obj);
    if (h) {
        *t = h;
        return 0;
    }
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a numpy.ndarray or a lightning_core Tensor, got %s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    const int want = lcpy_dtype_typenum(fn, dt);
    if (want < 0) return -1;
    if (PyArray_TYPE(a) != want) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected dtype %s, got %S", fn, name, lc_dtype_name(dt),
                     (PyObject *)PyArray_DESCR(a));
        return -1;
    }
    if (!PyArray_ISWRITEABLE(a) || !PyArray_ISALIGNED(a) || !PyArray_ISNOTSWAPPED(a)) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected an aligned, writable array in native byte order", fn, name);
        return -1;
    }
    const int nd = PyArray_NDIM(a);
    if (nd > LC_MAX_DIMS || PyArray_SIZE(a) == 0) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a non-empty array of at most %d dimensions", fn, name, LC_MAX_DIMS);
        return -1;
    }
    /* contiguous, or a strided out (e.g. the [b, h, s, d] view of a [b, s, h, d] array): written in place; the library
     * checks that its elements do not overlap */
    const npy_intp item = PyArray_ITEMSIZE(a);
    int64_t shape[LC_MAX_DIMS], strides[LC_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        const npy_intp st = PyArray_STRIDE(a, i);
        shape[i] = PyArray_DIM(a, i);
        if (st < 0 || st % item != 0) {
            PyErr_Format(PyExc_ValueError, "%s: %s: expected non-negative strides that are multiples of the item size", fn,
                         name);
            return -1;
        }
        strides[i] = st / item;
    }
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(a), dt, nd, shape, strides, 1, own);
    if (st != LC_OK) {
        lcpy_raise_status_in(fn, st);
        return -1;
    }
    *t = *own;
    return 0;
}

