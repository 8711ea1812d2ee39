/* dtype_py.c — lightning_core._C.convert_buffer: element conversion between two contiguous buffers
 * (float32/float64/float16/bfloat16 by name) through lc_convert, GIL released. The dtype story on the
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

PyMethodDef lcpy_dtype_methods[] = {
    LCPY_METHOD(convert_buffer, "($module, /, src, src_dtype, dst, dst_dtype)",
                "Converts the elements of the C-contiguous buffer src (dtype named src_dtype) into the writable "
                "buffer dst (dst_dtype): float32, float64, float16, bfloat16; round to nearest even."),
    {NULL, NULL, 0, NULL},
};
