/* convert.h — argument handling shared by the bindings of lightning_core._C: a small fast-call
 * argument parser, the NumPy side of the dtypes (float32, float64, float16 and ml_dtypes.bfloat16, whose
 * type number is looked up once), ndarray inputs -> contiguous aligned native arrays of the compute dtype
 * (the input rules of docs/python_api.md; float16/bfloat16 <-> float32/float64 through lc_convert),
 * `out` checks (dtype, layout, shape, writability, aliasing), size/bool/device arguments, and borrowed
 * lc_tensor_t wrappers over ndarray data.
 * Every function that fails sets a Python exception whose message reads
 * "<function>: <argument>: expected ..., got ...".
 * Tests: tests/python/test_bad_inputs.py, tests/python/test_ops_*.py, tests/python/test_tensor.py. */
#ifndef LCPY_CONVERT_H
#define LCPY_CONVERT_H

#include <stdint.h>

#include "internal.h"

#include "lightning_core/dtype.h"

#define LCPY_MAX_ARGS 12

/* A Python-visible signature: the function name and its parameter names in positional order (NULL
 * terminated). Parameters [0, nreq) are required. Keep it static; the parser fills the rest lazily. */
typedef struct lcpy_sig {
    const char *fn;
    const char *names[LCPY_MAX_ARGS + 1];
    int nreq;
    int nargs;                          /* filled on first use */
    PyObject *interned[LCPY_MAX_ARGS];  /* interned names, filled on first use */
} lcpy_sig;

/* LCPY_SIG("matmul2d", 2, "a", "b", "device"): a signature with 2 required parameters. */
#define LCPY_SIG(fname, required, ...) {.fn = (fname), .names = {__VA_ARGS__, NULL}, .nreq = (required)}

int lcpy_parse_slow(lcpy_sig *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **v);

/* Parses fast-call arguments into v[0..nargs of the signature); a missing optional argument is NULL.
 * Values are borrowed. Returns 0, or -1 with TypeError. */
static inline int lcpy_parse(lcpy_sig *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                             PyObject **v) {
    if (kwnames == NULL && s->nargs > 0 && nargs >= s->nreq && nargs <= s->nargs) {
        Py_ssize_t i = 0;
        for (; i < nargs; i++) v[i] = args[i];
        for (; i < s->nargs; i++) v[i] = NULL;
        return 0;
    }
    return lcpy_parse_slow(s, args, nargs, kwnames, v);
}

/* Defines py_<name>, a METH_FASTCALL|METH_KEYWORDS function that parses its arguments with the lcpy_sig
 * `sig` into PyObject *v[] and returns `call` (an expression over v): the wrapper of every op whose body
 * is one call of its _impl (LCPY_PARSED(linear, sig_linear, linear_impl("linear", v, 0))). */
#define LCPY_PARSED(name, sig, call)                                                                     \
    static PyObject *py_##name(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) { \
        PyObject *v[LCPY_MAX_ARGS];                                                                      \
        (void)self;                                                                                      \
        if (lcpy_parse(&(sig), args, nargs, kw, v) < 0) return NULL;                                     \
        return call;                                                                                     \
    }

/* NumPy's type number of ml_dtypes.bfloat16 (a user dtype): looked up once, lazily, by importing ml_dtypes
 * (the first time an array of a user dtype or a bfloat16 result is seen); -1 when ml_dtypes cannot be
 * imported (no exception set; tried again next time). */
int lcpy_bf16_typenum(void);

/* The library dtype of NumPy type number `typenum`: float32, float64, float16 or bfloat16 into *out and 0;
 * -1 for anything else (no exception set). */
int lcpy_typenum_dtype_slow(int typenum, lc_dtype *out);
static inline int lcpy_typenum_dtype(int typenum, lc_dtype *out) {
    switch (typenum) {
    case NPY_FLOAT: *out = LC_DTYPE_F32; return 0;
    case NPY_DOUBLE: *out = LC_DTYPE_F64; return 0;
    case NPY_HALF: *out = LC_DTYPE_F16; return 0;
    default: return lcpy_typenum_dtype_slow(typenum, out);
    }
}

/* The NumPy type number of library dtype `dt` (bfloat16: ml_dtypes'), or -1 with TypeError naming `fn`
 * (bfloat16 without ml_dtypes, or a dtype NumPy arrays here do not carry). */
int lcpy_dtype_typenum(const char *fn, lc_dtype dt);

/* A dtype argument: a name ("float32", "float16"/"half", "bfloat16"/"bf16", ...), a NumPy dtype or a
 * scalar type (np.float16, ml_dtypes.bfloat16) of float32/float64/float16/bfloat16 into *out; TypeError
 * naming `fn` and `name` otherwise. */
int lcpy_dtype_arg(const char *fn, const char *name, PyObject *obj, lc_dtype *out);

/* 1 for float16 and bfloat16. */
static inline int lcpy_is_lowp(lc_dtype dt) { return dt == LC_DTYPE_F16 || dt == LC_DTYPE_BF16; }

/* "float32", "float64", "float16", "bfloat16", or "unsupported" (for messages). */
const char *lcpy_typenum_name(int typenum);

/* Writes "(4, 8)" / "(5,)" / "()" into buf. */
void lcpy_format_shape(char *buf, size_t size, int ndim, const npy_intp *dims);

/* Checks an input argument: a numpy.ndarray (TypeError otherwise) of dtype float32/float64/float16/
 * bfloat16 (TypeError otherwise, naming the dtype) with at least one element (ValueError otherwise).
 * Returns the array (borrowed) or NULL. */
PyArrayObject *lcpy_input_arg(const char *fn, const char *name, PyObject *obj);

/* An ndarray of `typenum` (float32, float64, float16 or bfloat16's) that is C-contiguous, aligned and in
 * native byte order: `a` itself (new reference) when it already is, else a converted copy (to or from
 * float16/bfloat16 through lc_convert: round to nearest even, GIL released). NULL on failure. */
static inline int lcpy_is_ready(PyArrayObject *a, int typenum) {
    return PyArray_TYPE(a) == typenum &&
           (PyArray_FLAGS(a) & (NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED)) ==
               (NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED) &&
           PyArray_ISNOTSWAPPED(a);
}
PyArrayObject *lcpy_convert_slow(PyArrayObject *a, int typenum);
static inline PyArrayObject *lcpy_as_compute(PyArrayObject *a, int typenum) {
    if (lcpy_is_ready(a, typenum)) {
        Py_INCREF(a);
        return a;
    }
    return lcpy_convert_slow(a, typenum);
}

/* Checks `out`: an ndarray (TypeError), of dtype `dt` in native byte order (TypeError), writable,
 * C-contiguous and aligned (ValueError), and either of exactly `shape` (ndim >= 0) or, when ndim < 0,
 * of exactly shape[0] elements, `count_what` naming the product in the message ("m*n").
 * Returns the array (borrowed) or NULL. */
PyArrayObject *lcpy_out_arg(const char *fn, PyObject *obj, lc_dtype dt, int ndim, const npy_intp *shape,
                            const char *count_what);

/* A Python int (not bool; objects with __index__ such as numpy integers are accepted) in
 * [minval, maxval]: TypeError for a non-int, ValueError naming the argument when out of range or too
 * large. Returns 0 or -1. */
int lcpy_int_arg(const char *fn, const char *name, PyObject *obj, int64_t minval, int64_t maxval, int64_t *out);

/* A flag: bool, numpy.bool_ or int (else TypeError). obj NULL -> dflt. */
int lcpy_bool_arg(const char *fn, const char *name, PyObject *obj, int dflt, int *out);

/* The device string (obj NULL -> "cpu"): ValueError for an unknown name, TypeError for a non-str. */
int lcpy_device_arg(const char *fn, PyObject *obj, lc_device *out);

/* A float (int or float, not bool) that is finite and > 0. */
int lcpy_positive_float_arg(const char *fn, const char *name, PyObject *obj, double dflt, double *out);

/* A shape/strides argument: a tuple or list of 1..LC_MAX_DIMS ints (or a bare int, 1-D) into dims[];
 * any sign passes (the C validators judge values). Returns 0 or -1 (TypeError/ValueError). */
int lcpy_shape_arg(const char *fn, const char *name, PyObject *obj, int64_t *dims, int *ndim);

/* A borrowed tensor over the array's data (the array must be C-contiguous; the caller keeps it alive).
 * shape NULL = the array's own shape. Returns 0, or -1 with the mapped exception. */
int lcpy_wrap(PyArrayObject *a, int ndim, const int64_t *shape, int writable, lc_tensor_t **out);

/* A new uninitialised C-contiguous ndarray, or NULL with MemoryError. */
static inline PyArrayObject *lcpy_new_array(int ndim, const npy_intp *dims, int typenum) {
    return (PyArrayObject *)PyArray_EMPTY(ndim, (npy_intp *)dims, typenum, 0);
}

/* A new result of `ndim`/`shape` and dtype `dt` for the strided-argument bindings (sdpa_py.c, index_py.c):
 * a new Tensor on device `tensor_dev` (>= 0: a tensor argument's device) or a new ndarray wrapped in *own;
 * *t is what the op gets. NULL with an exception on failure. */
PyObject *lcpy_result_new(const char *fn, int tensor_dev, lc_dtype dt, int ndim, const int64_t *shape, lc_tensor_t **t,
                          lc_tensor_t **own);
/* A caller's out (named `name`): a Tensor (its handle) or an aligned writable native-order ndarray of dtype
 * `dt` (C-contiguous, or strided with non-negative element-multiple strides: the op decides whether it takes
 * a strided out). 0, or -1 with the exception set. */
int lcpy_out_take(const char *fn, const char *name, PyObject *obj, lc_dtype dt, lc_tensor_t **t, lc_tensor_t **own);

#endif
