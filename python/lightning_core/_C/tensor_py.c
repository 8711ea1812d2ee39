/* tensor_py.c — the Tensor (float32, float16, bfloat16), Tensor64 (float64) and TensorView types of
 * lightning_core._C over the opaque lc_tensor_t (docs/python_api.md, "Tensors and the tensor contract"):
 * construction from an ndarray (copied, converted to `dtype`) or a shape (zero-filled), metadata
 * properties (strides and offset in elements), numpy() / copy_from() host copies, to(dtype) (a converted
 * copy: lc_convert on the CPU; CUDA tensors through the host), view() and validate(). A TensorView is a metadata alias
 * over its tensor's storage and keeps a reference to that Tensor object (`base`). The interop slots
 * (__dlpack__, __dlpack_device__, __cuda_array_interface__, the buffer protocol) live in dlpack_py.c.
 * Tests: tests/python/test_tensor.py, tests/python/test_dlpack.py. */
#include "convert.h"

#include <stdlib.h>
#include <string.h>

typedef struct LcTensorObject {
    PyObject_HEAD
    lc_tensor_t *t;
    PyObject *base; /* TensorView: the Tensor/Tensor64 object owning the storage; NULL for a tensor */
} LcTensorObject;

static PyTypeObject LcTensor_Type;
static PyTypeObject LcTensor64_Type;
static PyTypeObject LcTensorView_Type;

static int lcpy_is_tensor_obj(PyObject *o) {
    return PyObject_TypeCheck(o, &LcTensor_Type) || PyObject_TypeCheck(o, &LcTensor64_Type) ||
           PyObject_TypeCheck(o, &LcTensorView_Type);
}

lc_tensor_t *lcpy_tensor_handle(PyObject *obj) {
    return lcpy_is_tensor_obj(obj) ? ((LcTensorObject *)obj)->t : NULL;
}

static const char *lcpy_type_short(PyObject *self) {
    if (PyObject_TypeCheck(self, &LcTensorView_Type)) return "TensorView";
    if (PyObject_TypeCheck(self, &LcTensor64_Type)) return "Tensor64";
    return "Tensor";
}

static void tensor_dealloc(LcTensorObject *self) {
    lc_tensor_free(self->t);
    self->t = NULL;
    Py_CLEAR(self->base);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Zero-fills a new tensor's storage. */
static lc_status tensor_zero(lc_tensor_t *t) {
    size_t nbytes = lc_tensor_nbytes(t);
    if (lc_tensor_device(t) == LC_DEVICE_CPU) {
        memset(lc_tensor_data(t), 0, nbytes);
        return LC_OK;
    }
    void *zeros = calloc(1, nbytes);
    if (zeros == NULL) return LC_ERR_OUT_OF_MEMORY;
    lc_status st = lc_tensor_copy_from_host(t, zeros, nbytes);
    free(zeros);
    return st;
}

/* Tensor(data, device="cpu") / Tensor64(data, device="cpu") */
/* A Python Tensor object of `type` owning `t` (freed on failure). */
static PyObject *tensor_wrap(PyTypeObject *type, lc_tensor_t *t) {
    LcTensorObject *self = (LcTensorObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        lc_tensor_free(t);
        return NULL;
    }
    self->t = t;
    self->base = NULL;
    return (PyObject *)self;
}

static PyObject *tensor_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"data", "device", "dtype", NULL};
    const int is64 = type == &LcTensor64_Type;
    const char *fn = is64 ? "Tensor64" : "Tensor";
    lc_dtype dt = is64 ? LC_DTYPE_F64 : LC_DTYPE_F32;
    PyObject *data = NULL, *dev_obj = NULL, *dt_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, is64 ? "O|OO:Tensor64" : "O|OO:Tensor", kwlist, &data, &dev_obj,
                                     &dt_obj))
        return NULL;
    /* index tensors: int32 / int64 data (token ids, positions, lengths) keep their dtype (no arithmetic ops
     * take them; embedding/sdpa-style index arguments do) */
    int int_dt = 0;
    if (!is64 && PyArray_Check(data) && (dt_obj == NULL || dt_obj == Py_None)) {
        const int tn = PyArray_TYPE((PyArrayObject *)data);
        if (tn == NPY_INT32 || tn == NPY_INT64) {
            dt = tn == NPY_INT32 ? LC_DTYPE_I32 : LC_DTYPE_I64;
            int_dt = 1;
        }
    } else if (!is64 && dt_obj != NULL && dt_obj != Py_None) {
        int tn = -1;
        if (PyUnicode_Check(dt_obj)) {
            const char *nm = PyUnicode_AsUTF8(dt_obj);
            if (!nm) PyErr_Clear();
            else if (strcmp(nm, "int32") == 0) tn = NPY_INT32;
            else if (strcmp(nm, "int64") == 0) tn = NPY_INT64;
        } else {
            PyArray_Descr *d = NULL;
            if (PyArray_DescrConverter2(dt_obj, &d) == NPY_SUCCEED && d != NULL) tn = d->type_num;
            Py_XDECREF(d);
            PyErr_Clear();
        }
        if (tn == NPY_INT32 || tn == NPY_INT64) {
            dt = tn == NPY_INT32 ? LC_DTYPE_I32 : LC_DTYPE_I64;
            int_dt = 1;
        }
    }
    if (!int_dt && dt_obj != NULL && dt_obj != Py_None) {
        if (lcpy_dtype_arg(fn, "dtype", dt_obj, &dt) < 0) return NULL;
        if (is64 && dt != LC_DTYPE_F64) {
            PyErr_Format(PyExc_TypeError,
                         "Tensor64: dtype: expected float64 (Tensor64 is the float64 Tensor; use Tensor(data, "
                         "dtype=...)), got %s",
                         lc_dtype_name(dt));
            return NULL;
        }
    }
    lc_device dev;
    if (lcpy_device_arg(fn, dev_obj, &dev) < 0) return NULL;
    lc_tensor_t *t = NULL;
    lc_status st;
    if (PyArray_Check(data)) {
        lc_dtype probe;
        if (!is64 && !int_dt && lcpy_typenum_dtype(PyArray_TYPE((PyArrayObject *)data), &probe) < 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s: data: expected a float32, float64, float16, bfloat16, int32 or int64 array (the integer "
                         "ones make an index tensor), got dtype %S", fn, (PyObject *)PyArray_DESCR((PyArrayObject *)data));
            return NULL;
        }
        PyArrayObject *in = int_dt ? (PyArrayObject *)data : lcpy_input_arg(fn, "data", data);
        if (in == NULL) return NULL;
        if (int_dt && !PyTypeNum_ISINTEGER(PyArray_TYPE(in))) {
            PyErr_Format(PyExc_TypeError, "%s: data: expected an integer array for dtype %s, got %S", fn, lc_dtype_name(dt),
                         (PyObject *)PyArray_DESCR(in));
            return NULL;
        }
        if (PyArray_NDIM(in) < 1 || PyArray_NDIM(in) > LC_MAX_DIMS) {
            PyErr_Format(PyExc_ValueError, "%s: data: expected 1..%d dimensions, got %d", fn, LC_MAX_DIMS,
                         PyArray_NDIM(in));
            return NULL;
        }
        const int typenum = lcpy_dtype_typenum(fn, dt);
        PyArrayObject *arr = typenum < 0 ? NULL : lcpy_as_compute(in, typenum);
        if (arr == NULL) return NULL;
        int64_t dims[LC_MAX_DIMS];
        int nd = PyArray_NDIM(arr);
        for (int i = 0; i < nd; i++) dims[i] = PyArray_DIM(arr, i);
        size_t nbytes = (size_t)PyArray_NBYTES(arr);
        Py_BEGIN_ALLOW_THREADS
        st = lc_tensor_from_host(PyArray_DATA(arr), nbytes, dt, dev, nd, dims, &t);
        Py_END_ALLOW_THREADS
        Py_DECREF(arr);
        if (st != LC_OK) return lcpy_raise_status_in(fn, st);
    } else if (PyTuple_Check(data) || PyList_Check(data)) {
        int64_t dims[LC_MAX_DIMS];
        int nd = 0;
        if (lcpy_shape_arg(fn, "shape", data, dims, &nd) < 0) return NULL;
        st = lc_shape_validate("shape", nd, dims);
        if (st == LC_OK) st = lc_tensor_new(dt, dev, nd, dims, &t);
        if (st == LC_OK) {
            st = tensor_zero(t);
            if (st != LC_OK) {
                lc_tensor_free(t);
                if (st == LC_ERR_OUT_OF_MEMORY) return PyErr_NoMemory();
            }
        }
        if (st != LC_OK) return lcpy_raise_status_in(fn, st);
    } else {
        PyErr_Format(PyExc_TypeError, "%s: data: expected a numpy.ndarray or a shape tuple/list, got %s", fn,
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    return lcpy_tensor_adopt(t); /* Tensor64 for float64, Tensor otherwise */
}

PyObject *lcpy_tensor_adopt(lc_tensor_t *t) {
    return tensor_wrap(lc_tensor_dtype(t) == LC_DTYPE_F64 ? &LcTensor64_Type : &LcTensor_Type, t);
}

const char *lcpy_tensor_kind(PyObject *obj) { return lcpy_type_short(obj); }

/* A TensorView over src's storage (src may itself be a view: metadata is relative to the storage). */
static PyObject *make_view(const char *fn, LcTensorObject *src, PyObject *shape_obj, PyObject *strides_obj,
                           PyObject *offset_obj, PyObject *dev_obj) {
    int64_t shape[LC_MAX_DIMS], strides[LC_MAX_DIMS], offset = 0;
    int nd = 0, nds = 0;
    if (lcpy_shape_arg(fn, "shape", shape_obj, shape, &nd) < 0) return NULL;
    if (strides_obj == NULL || strides_obj == Py_None) {
        int64_t s = 1;
        for (int i = nd - 1; i >= 0; i--) {
            strides[i] = s;
            if (shape[i] > 0 && s <= INT64_MAX / shape[i]) s *= shape[i];
        }
        nds = nd;
    } else if (lcpy_shape_arg(fn, "strides", strides_obj, strides, &nds) < 0) {
        return NULL;
    }
    if (nds != nd) {
        PyErr_Format(PyExc_ValueError, "%s: strides: expected %d entries like shape, got %d", fn, nd, nds);
        return NULL;
    }
    if (offset_obj != NULL && lcpy_int_arg(fn, "offset", offset_obj, INT64_MIN, INT64_MAX, &offset) < 0) return NULL;
    lc_device dev = LC_DEVICE_AUTO; /* the base's device */
    if (dev_obj != NULL && dev_obj != Py_None && lcpy_device_arg(fn, dev_obj, &dev) < 0) return NULL;
    lc_tensor_t *t = NULL;
    lc_status st = lc_tensor_view(src->t, nd, shape, strides, offset, dev, &t);
    if (st != LC_OK) return lcpy_raise_status_in(fn, st);
    LcTensorObject *v = (LcTensorObject *)LcTensorView_Type.tp_alloc(&LcTensorView_Type, 0);
    if (v == NULL) {
        lc_tensor_free(t);
        return NULL;
    }
    v->t = t;
    v->base = src->base ? src->base : (PyObject *)src;
    Py_INCREF(v->base);
    return (PyObject *)v;
}

/* TensorView(tensor, shape, strides=None, offset=0, device=None) */
static PyObject *view_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"tensor", "shape", "strides", "offset", "device", NULL};
    PyObject *src = NULL, *shape = NULL, *strides = NULL, *offset = NULL, *dev = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OOO:TensorView", kwlist, &src, &shape, &strides, &offset, &dev))
        return NULL;
    if (!lcpy_is_tensor_obj(src)) {
        PyErr_Format(PyExc_TypeError, "TensorView: tensor: expected a Tensor, Tensor64 or TensorView, got %s",
                     Py_TYPE(src)->tp_name);
        return NULL;
    }
    return make_view("TensorView", (LcTensorObject *)src, shape, strides, offset, dev);
}

/* ---- methods -------------------------------------------------------------------------------- */

static PyObject *tensor_view(LcTensorObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"shape", "strides", "offset", "device", NULL};
    PyObject *shape = NULL, *strides = NULL, *offset = NULL, *dev = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO:view", kwlist, &shape, &strides, &offset, &dev)) return NULL;
    char fn[32];
    snprintf(fn, sizeof fn, "%s.view", lcpy_type_short((PyObject *)self));
    return make_view(fn, self, shape, strides, offset, dev);
}

/* contiguous(): a new contiguous Tensor with the same contents on the same device (lc_copy: a device view is
 * gathered on the device); a contiguous tensor returns itself. */
static PyObject *tensor_contiguous(LcTensorObject *self, PyObject *noargs) {
    if (lc_tensor_is_contiguous(self->t) && lc_tensor_offset(self->t) == 0 && !lc_tensor_is_view(self->t)) {
        Py_INCREF(self);
        return (PyObject *)self;
    }
    lc_tensor_t *out = NULL;
    lc_status st = lc_tensor_new(lc_tensor_dtype(self->t), lc_tensor_device(self->t), lc_tensor_ndim(self->t),
                                 lc_tensor_shape(self->t), &out);
    if (st == LC_OK) {
        Py_BEGIN_ALLOW_THREADS
        st = lc_copy(self->t, out, lc_tensor_device(self->t));
        Py_END_ALLOW_THREADS
    }
    if (st != LC_OK) {
        lc_tensor_free(out);
        return lcpy_raise_status_in("contiguous", st);
    }
    return lcpy_tensor_adopt(out);
}

static PyObject *tensor_numpy(LcTensorObject *self, PyObject *noargs) {
    int nd = lc_tensor_ndim(self->t);
    npy_intp dims[LC_MAX_DIMS];
    for (int i = 0; i < nd; i++) dims[i] = (npy_intp)lc_tensor_dim(self->t, i);
    char fn[32];
    snprintf(fn, sizeof fn, "%s.numpy", lcpy_type_short((PyObject *)self));
    const int typenum = lcpy_dtype_typenum(fn, lc_tensor_dtype(self->t));
    PyArrayObject *arr = typenum < 0 ? NULL : lcpy_new_array(nd, dims, typenum);
    if (arr == NULL) return NULL;
    size_t nbytes = (size_t)PyArray_NBYTES(arr);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_tensor_to_host(self->t, PyArray_DATA(arr), nbytes);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) {
        Py_DECREF(arr);
        return lcpy_raise_status_in(fn, st);
    }
    return (PyObject *)arr;
}

/* __array__(dtype=None, copy=None) (NumPy 2 protocol): a CPU tensor is viewed without a copy unless
 * copy=True (np.asarray goes through the buffer protocol first, same result); a CUDA tensor is
 * downloaded (a copy; copy=False raises ValueError). */
static PyObject *tensor_array(LcTensorObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"dtype", "copy", NULL};
    PyObject *dtype = Py_None, *copy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:__array__", kwlist, &dtype, &copy)) return NULL;
    if (lc_tensor_device(self->t) == LC_DEVICE_CPU && copy != Py_True) {
        PyObject *view = lcpy_tensor_host_ndarray((PyObject *)self);
        if (view == NULL || dtype == Py_None) return view;
        PyObject *res = NULL, *astype = PyObject_GetAttrString(view, "astype");
        PyObject *kw = astype ? Py_BuildValue("{s:O}", "copy", Py_False) : NULL;
        PyObject *targs = kw ? PyTuple_Pack(1, dtype) : NULL;
        if (targs) res = PyObject_Call(astype, targs, kw); /* astype(dtype, copy=False) */
        Py_XDECREF(targs);
        Py_XDECREF(kw);
        Py_XDECREF(astype);
        if (res != NULL && copy == Py_False && res != view) {
            Py_DECREF(res);
            res = NULL;
            PyErr_Format(PyExc_ValueError, "__array__: dtype=%R needs a copy of this %s (copy=False)", dtype,
                         lc_dtype_name(lc_tensor_dtype(self->t)));
        }
        Py_DECREF(view);
        return res;
    }
    if (copy == Py_False) {
        PyErr_SetString(PyExc_ValueError, "a CUDA tensor cannot be viewed as an ndarray without a copy");
        return NULL;
    }
    PyObject *arr = tensor_numpy(self, NULL);
    if (arr == NULL || dtype == Py_None) return arr;
    PyObject *res = PyObject_CallMethod(arr, "astype", "O", dtype);
    Py_DECREF(arr);
    return res;
}

/* copy_from(tensor): lc_copy on the device this tensor lives on (self may be a strided view: concat writes
 * each input into a narrow view of its output); same dtype and shape, else TypeError / ValueError. */
static PyObject *tensor_copy_from_tensor(LcTensorObject *self, const char *fn, lc_tensor_t *src) {
    lc_tensor_t *dst = self->t;
    if (lc_tensor_dtype(src) != lc_tensor_dtype(dst)) {
        PyErr_Format(PyExc_TypeError, "%s: src: expected dtype %s (the tensor's), got %s", fn,
                     lc_dtype_name(lc_tensor_dtype(dst)), lc_dtype_name(lc_tensor_dtype(src)));
        return NULL;
    }
    int same = lc_tensor_ndim(src) == lc_tensor_ndim(dst);
    for (int i = 0; same && i < lc_tensor_ndim(src); i++) same = lc_tensor_dim(src, i) == lc_tensor_dim(dst, i);
    if (!same) {
        char a[160], b[160];
        npy_intp ds[LC_MAX_DIMS], ss[LC_MAX_DIMS];
        for (int i = 0; i < lc_tensor_ndim(dst); i++) ds[i] = (npy_intp)lc_tensor_dim(dst, i);
        for (int i = 0; i < lc_tensor_ndim(src); i++) ss[i] = (npy_intp)lc_tensor_dim(src, i);
        lcpy_format_shape(a, sizeof a, lc_tensor_ndim(dst), ds);
        lcpy_format_shape(b, sizeof b, lc_tensor_ndim(src), ss);
        PyErr_Format(PyExc_ValueError, "%s: src: expected shape %s (the tensor's), got %s", fn, a, b);
        return NULL;
    }
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_copy(src, dst, lc_tensor_device(dst));
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status_in(fn, st);
    Py_RETURN_NONE;
}

static PyObject *tensor_copy_from(LcTensorObject *self, PyObject *obj) {
    char fn[40];
    snprintf(fn, sizeof fn, "%s.copy_from", lcpy_type_short((PyObject *)self));
    lc_tensor_t *src_t = lcpy_tensor_handle(obj);
    if (src_t) return tensor_copy_from_tensor(self, fn, src_t);
    const lc_dtype tdt = lc_tensor_dtype(self->t);
    PyArrayObject *in;
    if (tdt == LC_DTYPE_I32 || tdt == LC_DTYPE_I64) { /* an index tensor takes integer arrays only */
        if (!PyArray_Check(obj) || !PyTypeNum_ISINTEGER(PyArray_TYPE((PyArrayObject *)obj))) {
            PyErr_Format(PyExc_TypeError, "%s: array: expected an integer numpy.ndarray for this %s tensor, got %s", fn,
                         lc_dtype_name(tdt), PyArray_Check(obj) ? lcpy_typenum_name(PyArray_TYPE((PyArrayObject *)obj))
                                                                 : Py_TYPE(obj)->tp_name);
            return NULL;
        }
        in = (PyArrayObject *)obj;
    } else {
        in = lcpy_input_arg(fn, "array", obj);
    }
    if (in == NULL) return NULL;
    int64_t numel = lc_tensor_numel(self->t);
    if ((int64_t)PyArray_SIZE(in) != numel) {
        PyErr_Format(PyExc_ValueError, "%s: array: expected %lld elements like the tensor, got %lld", fn,
                     (long long)numel, (long long)PyArray_SIZE(in));
        return NULL;
    }
    const int typenum = lcpy_dtype_typenum(fn, lc_tensor_dtype(self->t));
    PyArrayObject *arr = typenum < 0 ? NULL : lcpy_as_compute(in, typenum);
    if (arr == NULL) return NULL;
    size_t nbytes = (size_t)PyArray_NBYTES(arr);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_tensor_copy_from_host(self->t, PyArray_DATA(arr), nbytes);
    Py_END_ALLOW_THREADS
    Py_DECREF(arr);
    if (st != LC_OK) return lcpy_raise_status_in(fn, st);
    Py_RETURN_NONE;
}

/* to(dtype): a new tensor (Tensor64 for float64) on the same device with the elements converted. */
static PyObject *tensor_to(LcTensorObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"dtype", NULL};
    PyObject *dt_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:to", kwlist, &dt_obj)) return NULL;
    char fn[32];
    snprintf(fn, sizeof fn, "%s.to", lcpy_type_short((PyObject *)self));
    lc_dtype dd;
    if (lcpy_dtype_arg(fn, "dtype", dt_obj, &dd) < 0) return NULL;
    lc_tensor_t *t = self->t, *o = NULL;
    const lc_dtype sd = lc_tensor_dtype(t);
    const lc_device dev = lc_tensor_device(t);
    const int nd = lc_tensor_ndim(t);
    const size_t n = (size_t)lc_tensor_numel(t);
    lc_status st;
    if (dev == LC_DEVICE_CPU && lc_tensor_is_contiguous(t)) {
        st = lc_tensor_new(dd, dev, nd, lc_tensor_shape(t), &o);
        if (st == LC_OK) {
            Py_BEGIN_ALLOW_THREADS
            st = lc_convert(dd, lc_tensor_data(o), sd, lc_tensor_data(t), n);
            Py_END_ALLOW_THREADS
        }
    } else { /* a strided view (gathered) or a CUDA tensor: through the host, no device converter yet */
        const size_t sbytes = n * lc_dtype_size(sd), dbytes = n * lc_dtype_size(dd);
        void *src = malloc(sbytes ? sbytes : 1);
        void *dst = sd == dd ? src : malloc(dbytes ? dbytes : 1);
        if (src == NULL || dst == NULL) {
            free(src);
            if (dst != src) free(dst);
            return PyErr_NoMemory();
        }
        Py_BEGIN_ALLOW_THREADS
        st = lc_tensor_to_host(t, src, sbytes);
        if (st == LC_OK && dst != src) st = lc_convert(dd, dst, sd, src, n);
        if (st == LC_OK) st = lc_tensor_from_host(dst, dbytes, dd, dev, nd, lc_tensor_shape(t), &o);
        Py_END_ALLOW_THREADS
        if (dst != src) free(dst);
        free(src);
    }
    if (st != LC_OK) {
        lc_tensor_free(o);
        return lcpy_raise_status_in(fn, st);
    }
    return lcpy_tensor_adopt(o);
}

static PyObject *tensor_validate(LcTensorObject *self, PyObject *noargs) {
    lc_status st = lc_tensor_validate(self->t);
    if (st != LC_OK) {
        char fn[40];
        snprintf(fn, sizeof fn, "%s.validate", lcpy_type_short((PyObject *)self));
        return lcpy_raise_status_in(fn, st);
    }
    Py_RETURN_NONE;
}

/* ---- properties ----------------------------------------------------------------------------- */

static PyObject *int64_tuple(int n, const int64_t *vals) {
    PyObject *tup = PyTuple_New(n);
    if (tup == NULL) return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLongLong((long long)vals[i]);
        if (v == NULL) {
            Py_DECREF(tup);
            return NULL;
        }
        PyTuple_SET_ITEM(tup, i, v);
    }
    return tup;
}

static PyObject *get_shape(LcTensorObject *self, void *c) {
    return int64_tuple(lc_tensor_ndim(self->t), lc_tensor_shape(self->t));
}
static PyObject *get_strides(LcTensorObject *self, void *c) {
    return int64_tuple(lc_tensor_ndim(self->t), lc_tensor_strides(self->t));
}
static PyObject *get_offset(LcTensorObject *self, void *c) { return PyLong_FromLongLong(lc_tensor_offset(self->t)); }
static PyObject *get_dtype(LcTensorObject *self, void *c) {
    return PyUnicode_FromString(lc_dtype_name(lc_tensor_dtype(self->t)));
}
static PyObject *get_device(LcTensorObject *self, void *c) {
    return PyUnicode_FromString(lc_device_name(lc_tensor_device(self->t)));
}
static PyObject *get_numel(LcTensorObject *self, void *c) { return PyLong_FromLongLong(lc_tensor_numel(self->t)); }
static PyObject *get_nbytes(LcTensorObject *self, void *c) {
    return PyLong_FromSize_t(lc_tensor_nbytes(self->t));
}
static PyObject *get_is_contiguous(LcTensorObject *self, void *c) {
    return PyBool_FromLong(lc_tensor_is_contiguous(self->t));
}
static PyObject *get_ndim(LcTensorObject *self, void *c) { return PyLong_FromLong(lc_tensor_ndim(self->t)); }
static PyObject *get_data_ptr(LcTensorObject *self, void *c) { return PyLong_FromVoidPtr(lc_tensor_data(self->t)); }
static PyObject *get_base(LcTensorObject *self, void *c) {
    PyObject *b = self->base ? self->base : Py_None;
    Py_INCREF(b);
    return b;
}

static PyObject *tensor_repr(LcTensorObject *self) {
    PyObject *shape = get_shape(self, NULL);
    if (shape == NULL) return NULL;
    PyObject *res;
    const char *dt = lc_dtype_name(lc_tensor_dtype(self->t));
    const char *dev = lc_device_name(lc_tensor_device(self->t));
    if (self->base != NULL) {
        PyObject *strides = get_strides(self, NULL);
        if (strides == NULL) {
            Py_DECREF(shape);
            return NULL;
        }
        res = PyUnicode_FromFormat("TensorView(shape=%R, strides=%R, offset=%lld, dtype='%s', device='%s')", shape,
                                   strides, (long long)lc_tensor_offset(self->t), dt, dev);
        Py_DECREF(strides);
    } else {
        res = PyUnicode_FromFormat("%s(shape=%R, dtype='%s', device='%s')", lcpy_type_short((PyObject *)self), shape,
                                   dt, dev);
    }
    Py_DECREF(shape);
    return res;
}

static PyMethodDef tensor_methods[] = {
    {"numpy", (PyCFunction)tensor_numpy, METH_NOARGS, "numpy() -> a copy of the contents as an ndarray."},
    {"contiguous", (PyCFunction)tensor_contiguous, METH_NOARGS,
     "contiguous() -> a contiguous Tensor with the same contents on the same device (itself when it already is)."},
    {"copy_from", (PyCFunction)tensor_copy_from, METH_O,
     "copy_from(src): copies an array of the same element count into the tensor (row-major), or a lightning_core "
     "tensor of the same dtype and shape (on this tensor's device; this tensor may be a strided view)."},
    {"view", (PyCFunction)(void (*)(void))tensor_view, METH_VARARGS | METH_KEYWORDS,
     "view(shape, strides=None, offset=0, device=None) -> TensorView over this storage."},
    {"validate", (PyCFunction)tensor_validate, METH_NOARGS, "validate(): re-checks the tensor contract (ValueError)."},
    {"to", (PyCFunction)(void (*)(void))tensor_to, METH_VARARGS | METH_KEYWORDS,
     "to(dtype) -> a new tensor on the same device with the elements converted to dtype (float32, float64, "
     "float16, bfloat16; round to nearest even, NaN/Inf kept; Tensor64 for float64). CPU tensors convert in "
     "place of the copy (SIMD, threads); CUDA tensors have no device converter yet and go through the host "
     "(download, convert, upload)."},
    {"__array__", (PyCFunction)(void (*)(void))tensor_array, METH_VARARGS | METH_KEYWORDS,
     "__array__(dtype=None, copy=None) -> ndarray: a CPU tensor zero-copy unless copy=True; a CUDA tensor "
     "downloaded (a copy)."},
    /* zero-copy interop (dlpack_py.c) */
    {"__dlpack__", LCPY_FASTCALL(lcpy_tensor_dlpack), METH_FASTCALL | METH_KEYWORDS,
     "__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None) -> a DLPack capsule sharing the "
     "storage (docs/python_api.md, Interop)."},
    {"__dlpack_device__", (PyCFunction)lcpy_tensor_dlpack_device, METH_NOARGS,
     "__dlpack_device__() -> (device_type, device_id): (1, 0) for the CPU, (2, id) for CUDA."},
    {NULL, NULL, 0, NULL},
};

#define LCPY_GETTERS_COMMON                                                                              \
    {"shape", (getter)get_shape, NULL, "shape tuple", NULL},                                             \
        {"strides", (getter)get_strides, NULL, "strides in elements", NULL},                             \
        {"offset", (getter)get_offset, NULL, "offset in elements", NULL},                                \
        {"dtype", (getter)get_dtype, NULL, "'float32', 'float64', 'float16' or 'bfloat16'", NULL},                              \
        {"device", (getter)get_device, NULL, "device name", NULL},                                       \
        {"numel", (getter)get_numel, NULL, "element count", NULL},                                       \
        {"nbytes", (getter)get_nbytes, NULL, "numel * element size", NULL},                              \
        {"ndim", (getter)get_ndim, NULL, "number of dimensions", NULL},                                  \
        {"is_contiguous", (getter)get_is_contiguous, NULL, "canonical row-major strides", NULL},          \
        {"data_ptr", (getter)get_data_ptr, NULL, "address of element 0 (host, or device for CUDA) as int", NULL}, \
        {"__cuda_array_interface__", (getter)lcpy_tensor_cuda_array_interface, NULL,                     \
         "CUDA array interface v3 (CUDA tensors only; AttributeError on the CPU)", NULL}

static PyGetSetDef tensor_getset[] = {LCPY_GETTERS_COMMON, {NULL, NULL, NULL, NULL, NULL}};
static PyGetSetDef view_getset[] = {
    LCPY_GETTERS_COMMON,
    {"base", (getter)get_base, NULL, "the Tensor whose storage this view aliases", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* The buffer protocol (CPU tensors; dlpack_py.c). */
static PyBufferProcs tensor_as_buffer = {
    .bf_getbuffer = lcpy_tensor_getbuffer,
    .bf_releasebuffer = lcpy_tensor_releasebuffer,
};

static PyTypeObject LcTensor_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lightning_core.Tensor",
    .tp_basicsize = sizeof(LcTensorObject),
    .tp_dealloc = (destructor)tensor_dealloc,
    .tp_repr = (reprfunc)tensor_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tensor(data, device='cpu', dtype='float32'): storage of dtype float32, float16 or bfloat16 (float64: "
              "a Tensor64) on a device; data is an ndarray (copied, converted to dtype) or a shape (zero-filled).",
    .tp_methods = tensor_methods,
    .tp_getset = tensor_getset,
    .tp_as_buffer = &tensor_as_buffer,
    .tp_new = tensor_new,
};

static PyTypeObject LcTensor64_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lightning_core.Tensor64",
    .tp_basicsize = sizeof(LcTensorObject),
    .tp_dealloc = (destructor)tensor_dealloc,
    .tp_repr = (reprfunc)tensor_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tensor64(data, device='cpu', dtype='float64'): float64 storage on a device (Tensor(data, "
              "dtype='float64') gives one too); data is an ndarray (copied) or a shape (zero-filled).",
    .tp_methods = tensor_methods,
    .tp_getset = tensor_getset,
    .tp_as_buffer = &tensor_as_buffer,
    .tp_new = tensor_new,
};

static PyTypeObject LcTensorView_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lightning_core.TensorView",
    .tp_basicsize = sizeof(LcTensorObject),
    .tp_dealloc = (destructor)tensor_dealloc,
    .tp_repr = (reprfunc)tensor_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TensorView(tensor, shape, strides=None, offset=0, device=None): a metadata alias over the "
              "tensor's storage (strides/offset in elements).",
    .tp_methods = tensor_methods,
    .tp_getset = view_getset,
    .tp_as_buffer = &tensor_as_buffer,
    .tp_new = view_new,
};

int lcpy_tensor_register(PyObject *module) {
    PyTypeObject *types[3] = {&LcTensor_Type, &LcTensor64_Type, &LcTensorView_Type};
    const char *names[3] = {"Tensor", "Tensor64", "TensorView"};
    for (int i = 0; i < 3; i++) {
        if (PyType_Ready(types[i]) < 0) return -1;
        Py_INCREF(types[i]);
        if (PyModule_AddObject(module, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            return -1;
        }
    }
    return 0;
}
