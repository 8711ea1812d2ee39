/* call.c — the out-of-line half of the op-call machinery (call.h): tensor inputs, the compute-dtype rule
 * (call_dtype_rule: the op table's masks through lc_op_takes_dtype),
 * `out` (ndarray or tensor) checks and result allocation (ndarray, or a Tensor on the first tensor
 * input's device), tensor views for the flat APIs, aliasing across ndarrays and tensors, and shape
 * messages. Rules: docs/python_api.md ("Input rules", "Device tensors").
 * Tests: tests/python/test_device_tensors.py, tests/python/test_bad_inputs.py, tests/python/test_ops_*.py. */
#include "call.h"

#include <string.h>

#include <stdio.h>


/* ---- inputs --------------------------------------------------------------------------------- */

int call_input_other(lcpy_call *c, const char *name, PyObject *obj) {
    lc_tensor_t *t = lcpy_tensor_handle(obj);
    if (t == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a numpy.ndarray or a lightning_core Tensor, got %s", c->fn,
                     name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    int i = c->n;
    int nd = lc_tensor_ndim(t);
    c->name[i] = name;
    c->obj[i] = obj;
    c->in[i] = NULL;
    c->tt[i] = t;
    c->indt[i] = lc_tensor_dtype(t);
    c->nd[i] = nd;
    for (int d = 0; d < nd; d++) c->tdims[i][d] = (npy_intp)lc_tensor_dim(t, d);
    c->dims[i] = c->tdims[i];
    c->size[i] = (npy_intp)lc_tensor_numel(t);
    c->arr[i] = NULL;
    c->tfree[i] = NULL;
    if (c->first_tensor == 0) c->first_tensor = i + 1;
    c->tensor_mode = 1;
    c->n = i + 1;
    return 0;
}

/* A tensor input of another dtype than the compute dtype: TypeError naming it (tensors are not converted). */
static int call_check_tensor_dtypes(lcpy_call *c, const char *op) {
    const char *want = lc_dtype_name(c->dtype);
    const char *label = op ? op : c->fn;
    for (int i = 0; i < c->n; i++) {
        if (c->tt[i] == NULL || c->indt[i] == c->dtype) continue;
        const char *kind = lcpy_tensor_kind(c->obj[i]), *got = lc_dtype_name(c->indt[i]);
        if (lcpy_is_lowp(c->indt[i]))
            PyErr_Format(PyExc_TypeError,
                         "%s: %s: expected a %s tensor (%s computes %s in %s until it has a low-precision kernel; "
                         "tensors are not converted: use Tensor.to), got a %s %s",
                         c->fn, c->name[i], want, label, got, want, got, kind);
        else if (lc_op_takes_dtype(op, LC_DTYPE_F64))
            PyErr_Format(PyExc_TypeError,
                         "%s: %s: expected a %s tensor (the call computes in %s because an input is; tensors are "
                         "not converted), got a %s %s",
                         c->fn, c->name[i], want, want, got, kind);
        else
            PyErr_Format(PyExc_TypeError,
                         "%s: %s: expected a %s tensor (this op computes in %s; tensors are not converted), got a "
                         "%s %s",
                         c->fn, c->name[i], want, want, got, kind);
        return -1;
    }
    return 0;
}

int call_dtype_rule(lcpy_call *c, const char *op) {
    int lo = -1, any_f64 = 0;
    for (int i = 0; i < c->n; i++) {
        if (lo < 0 && lcpy_is_lowp(c->indt[i])) lo = i;
        any_f64 |= c->indt[i] == LC_DTYPE_F64;
    }
    if (lo >= 0) {
        for (int i = 0; i < c->n; i++) {
            if (c->indt[i] == c->indt[lo]) continue;
            const int a = i < lo ? i : lo, b = i < lo ? lo : i;
            PyErr_Format(PyExc_TypeError,
                         "%s: %s and %s: expected one dtype (float16 and bfloat16 are never mixed with other "
                         "dtypes; convert first with lc.cast or Tensor.to), got %s of dtype %s and %s of dtype %s",
                         c->fn, c->name[a], c->name[b], c->name[a], lc_dtype_name(c->indt[a]), c->name[b],
                         lc_dtype_name(c->indt[b]));
            return -1;
        }
        c->dtype = lc_op_takes_dtype(op, c->indt[lo]) ? c->indt[lo] : LC_DTYPE_F32;
    } else {
        c->dtype = any_f64 && lc_op_takes_dtype(op, LC_DTYPE_F64) ? LC_DTYPE_F64 : LC_DTYPE_F32;
    }
    c->typenum = lcpy_dtype_typenum(c->fn, c->dtype);
    if (c->typenum < 0) PyErr_Clear(); /* bfloat16 tensors without ml_dtypes: needed only for an ndarray result */
    if (c->first_tensor) return call_check_tensor_dtypes(c, op);
    return 0;
}

/* ---- shapes --------------------------------------------------------------------------------- */

void call_shape_str(char *buf, size_t size, const lcpy_call *c, int i) {
    lcpy_format_shape(buf, size, c->nd[i], c->dims[i]);
}

int call_expect_ndim(const lcpy_call *c, int i, int ndim, const char *dims_hint) {
    if (c->nd[i] == ndim) return 0;
    PyErr_Format(PyExc_ValueError, "%s: %s: expected %d dimension%s%s, got %d", c->fn, c->name[i], ndim,
                 ndim == 1 ? "" : "s", dims_hint, c->nd[i]);
    return -1;
}

int call_infer_out_slots(const lcpy_call *c, const char *op, const char *const *names, int nslots, const int *slot,
                         const lc_graph_attrs *attrs, int ndim, npy_intp *oshape) {
    int64_t dims[LCPY_MAX_IN][LC_MAX_DIMS];
    const int64_t *shapes[LCPY_MAX_IN];
    int nd[LCPY_MAX_IN];
    if (nslots > LCPY_MAX_IN) {
        PyErr_Format(PyExc_SystemError, "%s: %d operand slots, at most %d", c->fn, nslots, LCPY_MAX_IN);
        return -1;
    }
    for (int i = 0; i < nslots; i++) {
        const int k = slot ? slot[i] : i;
        shapes[i] = NULL, nd[i] = 0;
        if (k < 0) continue;
        nd[i] = c->nd[k];
        for (int d = 0; d < c->nd[k] && d < LC_MAX_DIMS; d++) dims[i][d] = (int64_t)c->dims[k][d];
        shapes[i] = dims[i];
    }
    int ond = 0;
    int64_t os[LC_MAX_DIMS];
    lc_status st = lc_op_infer_shape(op, nslots, names, nd, shapes, attrs, &ond, os);
    if (st == LC_OK && ond != ndim) {
        PyErr_Format(PyExc_SystemError, "%s: out: the rule of %s gave %d dimensions, the binding expects %d", c->fn, op,
                     ond, ndim);
        return -1;
    }
    if (st != LC_OK) {
        const char *msg = lc_last_error();
        const size_t len = strlen(op);
        if (strncmp(msg, op, len) == 0 && msg[len] == ':' && msg[len + 1] == ' ') msg += len + 2; /* c->fn instead */
        PyErr_Format(lcpy_exception_for(st), "%s: %s", c->fn, msg);
        return -1;
    }
    for (int d = 0; d < ndim; d++) oshape[d] = (npy_intp)os[d];
    return 0;
}

int call_infer_out(const lcpy_call *c, const char *op, const char *const *names, const lc_graph_attrs *attrs, int ndim,
                   npy_intp *oshape) {
    return call_infer_out_slots(c, op, names, c->n, NULL, attrs, ndim, oshape);
}

int call_expect_same_shape(const lcpy_call *c, int i, int ref) {
    int same = c->nd[i] == c->nd[ref];
    for (int d = 0; same && d < c->nd[i]; d++) same = c->dims[i][d] == c->dims[ref][d];
    if (same) return 0;
    char want[160], got[160];
    call_shape_str(want, sizeof want, c, ref);
    call_shape_str(got, sizeof got, c, i);
    PyErr_Format(PyExc_ValueError, "%s: %s: expected shape %s like %s, got %s", c->fn, c->name[i], want, c->name[ref],
                 got);
    return -1;
}

/* ---- aliasing ------------------------------------------------------------------------------- */

/* What the overlap rule needs to know about an ndarray or a tensor. */
typedef struct lcpy_span {
    int device;        /* lc_device; ndarrays live on the CPU */
    uintptr_t lo, hi;  /* addressable byte range */
    uintptr_t data;    /* first element */
    npy_intp nbytes;   /* numel * itemsize */
    int dtype;         /* lc_dtype, -1 for an ndarray of another dtype */
    int exact_ok;      /* C-contiguous (and, for an ndarray, native byte order) */
} lcpy_span;

static void span_of(PyObject *obj, lcpy_span *s) {
    lc_tensor_t *t = PyArray_Check(obj) ? NULL : lcpy_tensor_handle(obj);
    if (t == NULL) {
        PyArrayObject *a = (PyArrayObject *)obj;
        uintptr_t base = (uintptr_t)PyArray_DATA(a);
        intptr_t low = 0, high = 0;
        int empty = 0;
        for (int d = 0; d < PyArray_NDIM(a); d++) {
            npy_intp n = PyArray_DIM(a, d);
            if (n == 0) empty = 1;
            intptr_t span = (intptr_t)PyArray_STRIDE(a, d) * (intptr_t)(n - 1);
            if (span < 0)
                low += span;
            else
                high += span;
        }
        s->device = LC_DEVICE_CPU;
        s->lo = base + (uintptr_t)low;
        s->hi = empty ? s->lo : base + (uintptr_t)high + (uintptr_t)PyArray_ITEMSIZE(a);
        s->data = base;
        s->nbytes = PyArray_NBYTES(a);
        lc_dtype dt;
        s->dtype = lcpy_typenum_dtype(PyArray_TYPE(a), &dt) == 0 ? (int)dt : -1;
        s->exact_ok = PyArray_IS_C_CONTIGUOUS(a) && PyArray_ISNOTSWAPPED(a);
        return;
    }
    size_t es = lc_dtype_size(lc_tensor_dtype(t));
    uintptr_t base = (uintptr_t)lc_tensor_data(t);
    uintptr_t high = 0; /* tensor strides are >= 0 */
    for (int d = 0; d < lc_tensor_ndim(t); d++)
        high += (uintptr_t)lc_tensor_stride(t, d) * (uintptr_t)(lc_tensor_dim(t, d) - 1);
    s->device = (int)lc_tensor_device(t);
    s->lo = base;
    s->hi = base + (high + 1) * es;
    s->data = base;
    s->nbytes = (npy_intp)lc_tensor_nbytes(t);
    s->dtype = (int)lc_tensor_dtype(t);
    s->exact_ok = lc_tensor_is_contiguous(t);
}

/* The aliasing rule of docs/python_api.md, for any mix of ndarrays and tensors: memory on different
 * devices never overlaps; "exactly an input" means the same address, bytes and dtype, both contiguous. */
static int check_alias_any(const char *fn, const lcpy_span *out, PyObject *in, const char *in_name, int allow_exact) {
    lcpy_span s;
    span_of(in, &s);
    const lcpy_span o = *out;
    if (o.device != s.device || !(o.lo < s.hi && s.lo < o.hi)) return 0;
    if (allow_exact && o.data == s.data && o.dtype == s.dtype && o.dtype >= 0 && o.exact_ok && s.exact_ok && o.nbytes == s.nbytes)
        return 0;
    if (allow_exact)
        PyErr_Format(PyExc_ValueError,
                     "%s: out: expected memory not shared with %s (only out being exactly %s, in place, is "
                     "allowed), got a partial overlap",
                     fn, in_name, in_name);
    else
        PyErr_Format(PyExc_ValueError, "%s: out: expected memory not shared with %s, got an overlap", fn, in_name);
    return -1;
}

/* ---- out ------------------------------------------------------------------------------------ */

/* A caller's tensor `out`: compute dtype (TypeError), writable and contiguous (ValueError), exact shape
 * or element count (ValueError). */
static int check_out_tensor(const lcpy_call *c, PyObject *obj, lc_tensor_t *t, int ndim, const npy_intp *shape,
                            const char *count_what) {
    const char *fn = c->fn;
    if (lc_tensor_dtype(t) != c->dtype) {
        PyErr_Format(PyExc_TypeError, "%s: out: expected dtype %s, got a %s %s", fn, lc_dtype_name(c->dtype),
                     lc_dtype_name(lc_tensor_dtype(t)), lcpy_tensor_kind(obj));
        return -1;
    }
    if (!lc_tensor_is_writable(t)) {
        PyErr_Format(PyExc_ValueError, "%s: out: expected a writable tensor, got a read-only one", fn);
        return -1;
    }
    if (!lc_tensor_is_contiguous(t)) {
        PyErr_Format(PyExc_ValueError, "%s: out: expected a contiguous tensor, got a strided %s", fn,
                     lcpy_tensor_kind(obj));
        return -1;
    }
    int nd = lc_tensor_ndim(t);
    npy_intp dims[LC_MAX_DIMS];
    for (int d = 0; d < nd; d++) dims[d] = (npy_intp)lc_tensor_dim(t, d);
    char want[160], got[160];
    if (ndim >= 0) {
        int same = nd == ndim;
        for (int d = 0; same && d < ndim; d++) same = dims[d] == shape[d];
        if (!same) {
            lcpy_format_shape(want, sizeof want, ndim, shape);
            lcpy_format_shape(got, sizeof got, nd, dims);
            PyErr_Format(PyExc_ValueError, "%s: out: expected shape %s, got %s", fn, want, got);
            return -1;
        }
    } else if ((npy_intp)lc_tensor_numel(t) != shape[0]) {
        lcpy_format_shape(got, sizeof got, nd, dims);
        PyErr_Format(PyExc_ValueError, "%s: out: expected %lld elements (%s), got %lld (shape %s)", fn,
                     (long long)shape[0], count_what, (long long)lc_tensor_numel(t), got);
        return -1;
    }
    return 0;
}

/* A new tensor result of `shape` on the first tensor input's device. */
static int new_tensor_out(lcpy_call *c, int ndim, const npy_intp *shape) {
    if (ndim < 1 || ndim > LC_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: expected a result of 1..%d dimensions for a tensor, got %d", c->fn,
                     LC_MAX_DIMS, ndim);
        return -1;
    }
    int64_t dims[LC_MAX_DIMS];
    for (int d = 0; d < ndim; d++) dims[d] = (int64_t)shape[d];
    lc_device dev = lc_tensor_device(c->tt[c->first_tensor - 1]);
    lc_dtype dt = c->dtype;
    lc_tensor_t *t = NULL;
    lc_status st;
    if (dev == LC_DEVICE_CPU) {
        st = lc_tensor_new(dt, dev, ndim, dims, &t);
    } else {
        Py_BEGIN_ALLOW_THREADS
        st = lc_tensor_new(dt, dev, ndim, dims, &t);
        Py_END_ALLOW_THREADS
    }
    if (st != LC_OK) {
        lcpy_raise_status_in(c->fn, st);
        return -1;
    }
    c->out = lcpy_tensor_adopt(t);
    if (c->out == NULL) return -1;
    c->out_t = t;
    return 0;
}

int call_out(lcpy_call *c, PyObject *out_obj, int ndim, const npy_intp *shape, const char *count_what,
             unsigned exact_mask) {
    if (out_obj == NULL) {
        if (c->first_tensor) return new_tensor_out(c, ndim, shape);
        if (c->typenum < 0 && (c->typenum = lcpy_dtype_typenum(c->fn, c->dtype)) < 0) return -1;
        c->out = (PyObject *)lcpy_new_array(ndim, shape, c->typenum);
        return c->out == NULL ? -1 : 0;
    }
    lc_tensor_t *t = NULL;
    if (PyArray_Check(out_obj)) {
        if (lcpy_out_arg(c->fn, out_obj, c->dtype, ndim, shape, count_what) == NULL) return -1;
    } else if ((t = lcpy_tensor_handle(out_obj)) != NULL) {
        if (check_out_tensor(c, out_obj, t, ndim, shape, count_what) < 0) return -1;
        c->tensor_mode = 1;
    } else {
        PyErr_Format(PyExc_TypeError, "%s: out: expected a numpy.ndarray or a lightning_core Tensor, got %s", c->fn,
                     Py_TYPE(out_obj)->tp_name);
        return -1;
    }
    lcpy_span ospan;
    span_of(out_obj, &ospan);
    for (int i = 0; i < c->n; i++)
        if (check_alias_any(c->fn, &ospan, c->obj[i], c->name[i], (exact_mask >> i) & 1u) < 0) return -1;
    Py_INCREF(out_obj);
    c->out = out_obj;
    c->out_t = t;
    return 0;
}

/* ---- handles for the C op ------------------------------------------------------------------- */

/* `t` as the op should see it: itself when it already has `shape` (NULL: any), else a contiguous view. */
static int tensor_as(const char *fn, const char *name, PyObject *obj, lc_tensor_t *t, int ndim, const int64_t *shape,
                     lc_tensor_t **use, lc_tensor_t **owned) {
    *owned = NULL;
    int same = shape == NULL || lc_tensor_ndim(t) == ndim;
    for (int d = 0; same && shape != NULL && d < ndim; d++) same = lc_tensor_dim(t, d) == shape[d];
    if (same) {
        *use = t;
        return 0;
    }
    if (!lc_tensor_is_contiguous(t)) {
        npy_intp want[LC_MAX_DIMS];
        for (int d = 0; d < ndim; d++) want[d] = (npy_intp)shape[d];
        char buf[160];
        lcpy_format_shape(buf, sizeof buf, ndim, want);
        PyErr_Format(PyExc_ValueError,
                     "%s: %s: expected a contiguous tensor (it is viewed with shape %s), got a strided %s", fn, name,
                     buf, lcpy_tensor_kind(obj));
        return -1;
    }
    lc_status st = lc_tensor_view(t, ndim, shape, NULL, lc_tensor_offset(t), LC_DEVICE_AUTO, owned);
    if (st != LC_OK) {
        *owned = NULL;
        lcpy_raise_status_in(fn, st);
        return -1;
    }
    *use = *owned;
    return 0;
}

int call_wrap_in_other(lcpy_call *c, int i, int ndim, const int64_t *shape) {
    lc_tensor_t *use = NULL;
    if (tensor_as(c->fn, c->name[i], c->obj[i], c->tt[i], ndim, shape, &use, &c->tfree[i]) < 0) return -1;
    c->tin[i] = use;
    return 0;
}

int call_wrap_out_other(lcpy_call *c, int ndim, const int64_t *shape) {
    return tensor_as(c->fn, "out", c->out, c->out_t, ndim, shape, &c->tout, &c->tout_free);
}
