/* call.h — the operands of one op binding call (ops_py.c): inputs that are ndarrays or lightning_core
 * tensors (Tensor/Tensor64/TensorView, on the CPU or on CUDA), the compute dtype (one rule, call_dtype:
 * asks the op table which dtypes the op takes), the output (a caller's
 * ndarray or tensor `out`, else a new ndarray — or a new Tensor on the first tensor input's device when
 * any input is a tensor), shape queries that work for both kinds, and the lc_tensor_t handed to the C op
 * (borrowed wrappers over ndarray data, a tensor's own handle, or a contiguous view of it for the flat
 * APIs). Rules: docs/python_api.md ("Input rules", "Device tensors").
 * The all-ndarray path is the fast path: it costs one PyArray_Check per input and a couple of
 * predictable branches more than a plain ndarray binding; tensor handling lives out of line (call.c).
 * Tests: tests/python/test_ops_*.py, tests/python/test_bad_inputs.py, tests/python/test_device_tensors.py. */
#ifndef LCPY_CALL_H
#define LCPY_CALL_H

#include "convert.h"

#define LCPY_MAX_IN 5 /* LC_OP_MAX_INPUTS: layer_norm_linear takes five */

#if defined(__GNUC__)
#define LCPY_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define LCPY_LIKELY(x) (x)
#endif

typedef struct lcpy_call {
    const char *fn;
    int n;          /* inputs taken so far */
    lc_dtype dtype; /* compute dtype (call_dtype) */
    int typenum;    /* its NumPy type number (-1: bfloat16 while ml_dtypes is not importable) */
    int first_tensor; /* 1 + index of the first tensor input; 0 when every input is an ndarray */
    int tensor_mode;  /* any input or `out` is a tensor */
    /* per input (index order of call_input) */
    const char *name[LCPY_MAX_IN];
    PyObject *obj[LCPY_MAX_IN];         /* as passed (borrowed) */
    PyArrayObject *in[LCPY_MAX_IN];     /* the ndarray as passed, NULL for a tensor (borrowed) */
    lc_tensor_t *tt[LCPY_MAX_IN];       /* the tensor's own handle, NULL for an ndarray (borrowed) */
    lc_dtype indt[LCPY_MAX_IN];         /* float32, float64, float16 or bfloat16 */
    int nd[LCPY_MAX_IN];
    const npy_intp *dims[LCPY_MAX_IN];
    npy_intp size[LCPY_MAX_IN];
    PyArrayObject *arr[LCPY_MAX_IN];    /* compute-ready arrays (owned) */
    const lc_tensor_t *tin[LCPY_MAX_IN]; /* what the op gets */
    lc_tensor_t *tfree[LCPY_MAX_IN];    /* wrappers/views made here (owned) */
    /* output */
    PyObject *out;          /* the result object (owned): ndarray or tensor */
    lc_tensor_t *out_t;     /* out's own handle when it is a tensor (borrowed from `out`) */
    lc_tensor_t *tout;      /* what the op gets */
    lc_tensor_t *tout_free; /* wrapper/view made here (owned) */
    npy_intp tdims[LCPY_MAX_IN][LC_MAX_DIMS]; /* tensor inputs' shapes as npy_intp */
} lcpy_call;

/* Starts a call (cheaper than zero-filling the struct: call_input sets each input's fields). */
static inline void call_init(lcpy_call *c, const char *fn) {
    c->fn = fn;
    c->n = 0;
    c->dtype = LC_DTYPE_F32; /* until call_dtype (callers that never ask compute in float32) */
    c->typenum = NPY_FLOAT;
    c->first_tensor = 0;
    c->tensor_mode = 0;
    c->out = NULL;
    c->out_t = NULL;
    c->tout = NULL;
    c->tout_free = NULL;
}

/* Out of line (call.c): a tensor input, or the TypeError/ValueError for anything else. */
int call_input_other(lcpy_call *c, const char *name, PyObject *obj);

/* Takes input `obj` (an ndarray or a tensor) named `name`. 0, or -1 with the exception set. */
static inline int call_input(lcpy_call *c, const char *name, PyObject *obj) {
    int i = c->n;
    if (i >= LCPY_MAX_IN) {
        PyErr_Format(PyExc_SystemError, "%s: %s: more than %d inputs", c->fn, name, LCPY_MAX_IN);
        return -1;
    }
    if (LCPY_LIKELY(PyArray_Check(obj))) {
        PyArrayObject *a = (PyArrayObject *)obj;
        lc_dtype dt;
        npy_intp size = PyArray_SIZE(a);
        if (!LCPY_LIKELY(lcpy_typenum_dtype(PyArray_TYPE(a), &dt) == 0 && size != 0))
            return lcpy_input_arg(c->fn, name, obj) == NULL ? -1 : 0; /* raises */
        c->name[i] = name;
        c->obj[i] = obj;
        c->in[i] = a;
        c->tt[i] = NULL;
        c->indt[i] = dt;
        c->nd[i] = PyArray_NDIM(a);
        c->dims[i] = PyArray_DIMS(a);
        c->size[i] = size;
        c->arr[i] = NULL;
        c->tfree[i] = NULL;
        c->n = i + 1;
        return 0;
    }
    return call_input_other(c, name, obj);
}

/* Out of line: the rule below for inputs that are not all float32. */
int call_dtype_rule(lcpy_call *c, const char *op);

/* The compute dtype of library op `op` (its op-table name: "matmul", "vector_add", ...) for the inputs
 * taken so far — the one rule of docs/python_api.md ("Input rules"), the table's dtype masks deciding:
 * - a float16 or bfloat16 input: every input must have that dtype (TypeError naming both arguments and
 *   both dtypes otherwise: no silent cast); the op computes in it when it takes it on some backend
 *   (lc_op_takes_dtype), else in float32 (float32 result) until it has a low-precision kernel;
 * - else float64 when an input is float64 and the op takes float64, else float32.
 * Tensor inputs must already have the compute dtype (they are never converted): TypeError naming the
 * argument otherwise. op NULL: a caller that computes in float32 only (sessions, plans). Sets c->dtype and
 * c->typenum; 0, or -1 with the exception set. */
static inline int call_dtype(lcpy_call *c, const char *op) {
    int all_f32 = 1;
    for (int i = 0; i < c->n; i++) all_f32 &= c->indt[i] == LC_DTYPE_F32;
    if (LCPY_LIKELY(all_f32)) {
        c->dtype = LC_DTYPE_F32;
        c->typenum = NPY_FLOAT;
        return 0;
    }
    return call_dtype_rule(c, op);
}

/* Takes the caller's `out` (an ndarray or a tensor: dtype, layout, shape or — ndim < 0 — element count
 * shape[0] named `count_what`, and aliasing with the inputs checked; exact aliasing allowed for inputs
 * in exact_mask) or, with out_obj NULL, makes the result: a new ndarray of `shape`, or a new tensor on the
 * first tensor input's device when any input is a tensor. 0, or -1 with the exception set. */
int call_out(lcpy_call *c, PyObject *out_obj, int ndim, const npy_intp *shape, const char *count_what,
             unsigned exact_mask);

/* Converts input i (an ndarray) to the compute dtype/layout and wraps it with `shape` (NULL: its own);
 * a tensor input is passed as is when it already has `shape`, else viewed with it (contiguous tensors
 * only: ValueError otherwise). */
int call_wrap_in_other(lcpy_call *c, int i, int ndim, const int64_t *shape);
static inline int call_wrap_in(lcpy_call *c, int i, int ndim, const int64_t *shape) {
    if (LCPY_LIKELY(c->in[i] != NULL)) {
        c->arr[i] = lcpy_as_compute(c->in[i], c->typenum);
        if (c->arr[i] == NULL) return -1;
        if (lcpy_wrap(c->arr[i], ndim, shape, 0, &c->tfree[i]) < 0) return -1;
        c->tin[i] = c->tfree[i];
        return 0;
    }
    return call_wrap_in_other(c, i, ndim, shape);
}

/* The output tensor handed to the op, with `shape` (NULL: out's own). */
int call_wrap_out_other(lcpy_call *c, int ndim, const int64_t *shape);
static inline int call_wrap_out(lcpy_call *c, int ndim, const int64_t *shape) {
    if (LCPY_LIKELY(c->out_t == NULL)) {
        if (lcpy_wrap((PyArrayObject *)c->out, ndim, shape, 1, &c->tout_free) < 0) return -1;
        c->tout = c->tout_free;
        return 0;
    }
    return call_wrap_out_other(c, ndim, shape);
}

static inline void call_release(lcpy_call *c) {
    for (int i = 0; i < c->n; i++) {
        lc_tensor_free(c->tfree[i]);
        Py_XDECREF(c->arr[i]);
    }
    lc_tensor_free(c->tout_free);
}

static inline PyObject *call_fail(lcpy_call *c) {
    call_release(c);
    Py_XDECREF(c->out);
    return NULL;
}

/* Releases everything; returns the output (new reference) on LC_OK, else raises. */
static inline PyObject *call_finish(lcpy_call *c, lc_status st) {
    call_release(c);
    if (st != LC_OK) {
        Py_XDECREF(c->out);
        return lcpy_raise_status(st);
    }
    return c->out;
}

/* ---- shape queries over ndarray and tensor inputs (messages: "(4, 8)") ----------------------- */

void call_shape_str(char *buf, size_t size, const lcpy_call *c, int i);

/* Input i has `ndim` dimensions, else ValueError "fn: name: expected 2 dimensions<hint>, got 3". */
int call_expect_ndim(const lcpy_call *c, int i, int ndim, const char *dims_hint);
/* The output shape of library op `op` for the inputs taken so far (their own shapes; `names`: the
 * binding's argument names) by the op's one rule (lc_op_infer_shape): writes `ndim` dims to oshape; -1
 * with the op's ValueError (prefixed with c->fn) when the rule refuses them or gives another rank. */
int call_infer_out(const lcpy_call *c, const char *op, const char *const *names, const lc_graph_attrs *attrs, int ndim,
                   npy_intp *oshape);
/* The same over the op's nslots operand slots: slot[i] is the input taken for slot i, or -1 for an optional
 * operand not given (its shape is absent to the rule); call_infer_out is this with slot i = input i. */
int call_infer_out_slots(const lcpy_call *c, const char *op, const char *const *names, int nslots, const int *slot,
                         const lc_graph_attrs *attrs, int ndim, npy_intp *oshape);

/* Input i has the shape of input ref, else ValueError. */
int call_expect_same_shape(const lcpy_call *c, int i, int ref);

#endif
