/* dtype_py.c — lightning_core._C.convert_buffer: element conversion between two contiguous buffers
 * (float32/float64/float16/bfloat16 by name) through lc_convert, GIL released; op_dtypes(op, device):
 * the dtypes the op table says an op takes (the masks the binding's compute-dtype rule reads). The dtype story on the
 * Python side (NumPy float16, ml_dtypes.bfloat16, lc.cast) is python/lightning_core/dtypes.py.
 * Tests: tests/python/test_dtype.py. */
#include "internal.h"

#include "convert.h"

#include "lightning_core/dtype.h"

static lcpy_sig sig_convert_buffer = LCPY_SIG("convert_buffer", 4, "src", "src_dtype", "dst", "dst_dtype");

static int lcpy_dtype_named(const char *arg, PyObject *obj, lc_dtype *out) {
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "convert_buffer: %s: expected a dtype name (str), got %.80s", arg,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    const char *name = PyUnicode_AsUTF8(obj);
    if (name == NULL) return -1;
    lc_status st = lc_dtype_from_name(name, out);
    if (st != LC_OK) {
        PyErr_Format(PyExc_TypeError, "convert_buffer: %s: %s", arg, lc_last_error());
        return -1;
    }
    return 0;
}

/* convert_buffer(src, src_dtype, dst, dst_dtype): src any C-contiguous buffer, dst a writable one, of the
 * same element count. */
static PyObject *py_convert_buffer(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[4];
    if (lcpy_parse(&sig_convert_buffer, args, nargs, kw, v) < 0) return NULL;
    PyObject *src = v[0], *sname = v[1], *dst = v[2], *dname = v[3];
    lc_dtype sd, dd;
    if (lcpy_dtype_named("src_dtype", sname, &sd) < 0 || lcpy_dtype_named("dst_dtype", dname, &dd) < 0) return NULL;
    Py_buffer sb, db;
    if (PyObject_GetBuffer(src, &sb, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(dst, &db, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&sb);
        return NULL;
    }
    const size_t ss = lc_dtype_size(sd), ds = lc_dtype_size(dd);
    PyObject *ret = NULL;
    if ((size_t)sb.len % ss || (size_t)db.len % ds || (size_t)sb.len / ss != (size_t)db.len / ds) {
        PyErr_Format(PyExc_ValueError,
                     "convert_buffer: dst: expected room for %zd %s elements (%zd bytes), got %zd bytes", sb.len / (Py_ssize_t)ss,
                     lc_dtype_name(dd), (Py_ssize_t)((size_t)sb.len / ss * ds), db.len);
    } else {
        lc_status st;
        Py_BEGIN_ALLOW_THREADS
        st = lc_convert(dd, db.buf, sd, sb.buf, (size_t)sb.len / ss);
        Py_END_ALLOW_THREADS
        if (st != LC_OK) lcpy_raise_status(st);
        else {
            Py_INCREF(Py_None);
            ret = Py_None;
        }
    }
    PyBuffer_Release(&db);
    PyBuffer_Release(&sb);
    return ret;
}

static lcpy_sig sig_op_dtypes = LCPY_SIG("op_dtypes", 1, "op", "device");

/* op_dtypes(op, device="auto") -> tuple of dtype names, in lc_dtype order. */
static PyObject *py_op_dtypes(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[2];
    if (lcpy_parse(&sig_op_dtypes, args, nargs, kw, v) < 0) return NULL;
    if (!PyUnicode_Check(v[0])) {
        PyErr_Format(PyExc_TypeError, "op_dtypes: op: expected an op name (str), got %.80s", Py_TYPE(v[0])->tp_name);
        return NULL;
    }
    const char *name = PyUnicode_AsUTF8(v[0]);
    if (name == NULL) return NULL;
    lc_device dev = LC_DEVICE_AUTO;
    if (v[1] != NULL && lcpy_device_arg("op_dtypes", v[1], &dev) < 0) return NULL;
    if (lc_graph_op_find(name) < 0 && lc_op_dtypes(name, LC_DEVICE_AUTO) == 0) {
        PyErr_Format(PyExc_ValueError, "op_dtypes: op: expected an op of the op table, got %R", v[0]);
        return NULL;
    }
    const unsigned mask = lc_op_dtypes(name, dev);
    Py_ssize_t count = 0, k = 0;
    for (int d = 0; d < LC_DTYPE_COUNT; d++) count += (mask >> d) & 1u;
    PyObject *out = PyTuple_New(count);
    for (int d = 0; out != NULL && d < LC_DTYPE_COUNT; d++) {
        if (!(mask & (1u << d))) continue;
        PyObject *s = PyUnicode_FromString(lc_dtype_name((lc_dtype)d));
        if (s == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, k++, s);
    }
    return out;
}

PyMethodDef lcpy_dtype_methods[] = {
    LCPY_METHOD(op_dtypes, "($module, /, op, device='auto')",
                "The dtypes the op table says op (an op name: 'matmul', 'vector_add', 'linear', ...) takes on device "
                "('cpu', 'cuda'; 'auto': on any backend), as a tuple of names."),
    LCPY_METHOD(convert_buffer, "($module, /, src, src_dtype, dst, dst_dtype)",
                "Converts the elements of the C-contiguous buffer src (dtype named src_dtype) into the writable "
                "buffer dst (dst_dtype): float32, float64, float16, bfloat16; round to nearest even."),
    {NULL, NULL, 0, NULL},
};
