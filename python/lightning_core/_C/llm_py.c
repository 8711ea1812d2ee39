/* llm_py.c — bindings of the LLM building blocks (ops.h, issue 16):
 *   rms_norm(x, weight=None, eps=1e-6, device='cpu')          rms_norm_into(x, out, weight=None, ...)
 *   softmax(x, device='cpu')                                   softmax_into(x, out, device='cpu')
 *   silu(x, device='cpu')                                      silu_into(x, out, device='cpu')
 *   silu_mul(a, b, device='cpu')                               silu_mul_into(a, b, out, device='cpu')
 *   add(a, b, device='cpu'), mul(a, b, device='cpu')           add_into / mul_into(a, b, out, device='cpu')
 *   rope(x, positions, theta=10000.0, rotary_dim=None, scaling=None, device='cpu')
 *   rope_into(x, positions, out, theta=10000.0, rotary_dim=None, scaling=None, device='cpu')
 * Float operands follow call.h (ndarrays or lightning_core tensors; call_dtype's rule: a 16-bit input makes
 * every input that dtype or TypeError naming both; float64 computes in float64 where the op takes it —
 * add, mul — else float32); shapes by the op table's rule (call_infer_out: ValueError naming the argument).
 * rope's positions: an int32/int64 ndarray or sequence of ints ([seq] or [batch, seq]) or an integer tensor;
 * scaling: None or HF's rope_scaling dict ({'rope_type' (or 'type'): 'linear' | 'llama3' | 'default',
 * 'factor', and for llama3 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'}).
 * The *_into forms write `out` and return it; out may be exactly an input where the op allows it (rms_norm,
 * softmax, silu, rope: x; silu_mul: a or b; add, mul: an input of the output's shape).
 * Tests: tests/python/test_ops_llm.py. */
#include <math.h>

#include "call.h"
#include "internal.h"

/* ---- the table-driven ops: every float input through call.h, out by the op's shape rule --------------- */

typedef struct llm_op {
    const char *op;        /* op-table name */
    int nin;               /* float inputs taken (rms_norm: x and an optional weight) */
    const char *names[2];
    unsigned exact;        /* inputs out may alias exactly */
} llm_op;

static const llm_op OP_RMS = {"rms_norm", 2, {"x", "weight"}, 1u};
static const llm_op OP_SOFTMAX = {"softmax", 1, {"x", NULL}, 1u};
static const llm_op OP_SILU = {"silu", 1, {"x", NULL}, 1u};
static const llm_op OP_SILU_MUL = {"silu_mul", 2, {"a", "b"}, 3u};
static const llm_op OP_ADD = {"add", 2, {"a", "b"}, 3u};
static const llm_op OP_MUL = {"mul", 2, {"a", "b"}, 3u};

/* v: inputs (nin; rms_norm's weight may be None/NULL), [out], then eps (rms_norm only), device. */
static PyObject *llm_impl(const char *fn, const llm_op *op, PyObject *const *v, int has_out) {
    lcpy_call c;
    call_init(&c, fn);
    const int b0 = op->nin + has_out;
    const int is_rms = op == &OP_RMS;
    PyObject *out_obj = has_out ? v[op->nin] : NULL;
    double eps = 1e-6;
    lc_device dev;
    if (is_rms && lcpy_positive_float_arg(fn, "eps", v[b0], 1e-6, &eps) < 0) return NULL;
    if (lcpy_device_arg(fn, v[b0 + is_rms], &dev) < 0) return NULL;
    for (int i = 0; i < op->nin; i++) {
        if (is_rms && i == 1 && (v[1] == NULL || v[1] == Py_None)) break;
        if (call_input(&c, op->names[i], v[i]) < 0) return NULL;
    }
    if (call_dtype(&c, op->op) < 0) return NULL;
    int ond = c.nd[0];
    if (op == &OP_ADD || op == &OP_MUL) {
        ond = c.nd[0] > c.nd[1] ? c.nd[0] : c.nd[1];
        if (ond > 4) {
            PyErr_Format(PyExc_ValueError, "%s: %s: expected at most 4 dimensions (the broadcast rank limit), got %d", fn,
                         c.nd[0] >= ond ? op->names[0] : op->names[1], ond);
            return NULL;
        }
    }
    if (ond > LC_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected at most %d dimensions, got %d", fn, op->names[0], LC_MAX_DIMS, ond);
        return NULL;
    }
    npy_intp oshape[LC_MAX_DIMS];
    lc_graph_attrs attrs = {.set = is_rms ? LC_GRAPH_ATTR_EPS : 0u, .eps = eps};
    if (call_infer_out(&c, op->op, op->names, &attrs, ond, oshape) < 0) return NULL;
    if (call_out(&c, out_obj, ond, oshape, NULL, op->exact) < 0) return call_fail(&c);
    for (int i = 0; i < c.n; i++)
        if (call_wrap_in(&c, i, c.nd[i], NULL) < 0) return call_fail(&c);
    if (call_wrap_out(&c, ond, NULL) < 0) return call_fail(&c);
    lc_status st;
    const lc_tensor_t *a = c.tin[0], *b = c.n > 1 ? c.tin[1] : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_rms) st = lc_rms_norm(a, b, c.tout, eps, dev);
    else if (op == &OP_SOFTMAX) st = lc_softmax(a, c.tout, dev);
    else if (op == &OP_SILU) st = lc_silu(a, c.tout, dev);
    else if (op == &OP_SILU_MUL) st = lc_silu_mul(a, b, c.tout, dev);
    else if (op == &OP_ADD) st = lc_add(a, b, c.tout, dev);
    else st = lc_mul(a, b, c.tout, dev);
    Py_END_ALLOW_THREADS
    return call_finish(&c, st);
}

#define LLM_BINDING(pyname, opdef, nargs_plain, sigplain, siginto)                                           \
    static lcpy_sig sig_##pyname = sigplain;                                                                 \
    static lcpy_sig sig_##pyname##_into = siginto;                                                           \
    static PyObject *py_##pyname(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {    \
        PyObject *v[nargs_plain];                                                                            \
        (void)self;                                                                                          \
        if (lcpy_parse(&sig_##pyname, args, nargs, kw, v) < 0) return NULL;                                  \
        return llm_impl(#pyname, &opdef, v, 0);                                                              \
    }                                                                                                        \
    static PyObject *py_##pyname##_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) { \
        PyObject *v[nargs_plain + 1];                                                                        \
        (void)self;                                                                                          \
        if (lcpy_parse(&sig_##pyname##_into, args, nargs, kw, v) < 0) return NULL;                           \
        return llm_impl(#pyname "_into", &opdef, v, 1);                                                      \
    }

static lcpy_sig sig_rms_norm = LCPY_SIG("rms_norm", 1, "x", "weight", "eps", "device");
static lcpy_sig sig_rms_norm_into = LCPY_SIG("rms_norm_into", 2, "x", "out", "weight", "eps", "device");

LCPY_PARSED(rms_norm, sig_rms_norm, llm_impl("rms_norm", &OP_RMS, v, 0))

static PyObject *py_rms_norm_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *p[5];
    (void)self;
    if (lcpy_parse(&sig_rms_norm_into, args, nargs, kw, p) < 0) return NULL;
    PyObject *v[5] = {p[0], p[2], p[1], p[3], p[4]}; /* x, weight, out, eps, device */
    return llm_impl("rms_norm_into", &OP_RMS, v, 1);
}

LLM_BINDING(softmax, OP_SOFTMAX, 2, LCPY_SIG("softmax", 1, "x", "device"), LCPY_SIG("softmax_into", 2, "x", "out", "device"))
LLM_BINDING(silu, OP_SILU, 2, LCPY_SIG("silu", 1, "x", "device"), LCPY_SIG("silu_into", 2, "x", "out", "device"))
LLM_BINDING(silu_mul, OP_SILU_MUL, 3, LCPY_SIG("silu_mul", 2, "a", "b", "device"),
            LCPY_SIG("silu_mul_into", 3, "a", "b", "out", "device"))
LLM_BINDING(add, OP_ADD, 3, LCPY_SIG("add", 2, "a", "b", "device"), LCPY_SIG("add_into", 3, "a", "b", "out", "device"))
LLM_BINDING(mul, OP_MUL, 3, LCPY_SIG("mul", 2, "a", "b", "device"), LCPY_SIG("mul_into", 3, "a", "b", "out", "device"))

/* ---- rope -------------------------------------------------------------------------------------------- */

/* positions: an integer tensor (passed as is: the library checks dtype and shape), or an int32/int64 ndarray
 * or a (nested) sequence of ints -> a host tensor wrapping a contiguous int32/int64 array (*arr keeps it). */
int lcpy_rope_positions(const char *fn, PyObject *obj, lc_tensor_t **t, lc_tensor_t **own, PyArrayObject **arr) {
    lc_tensor_t *h = lcpy_tensor_handle(obj);
    if (h) {
        *t = h;
        return 0;
    }
    PyArrayObject *a = NULL;
    if (PyArray_Check(obj)) {
        Py_INCREF(obj);
        a = (PyArrayObject *)obj;
    } else if (PyList_Check(obj) || PyTuple_Check(obj) || PyLong_Check(obj)) {
        a = (PyArrayObject *)PyArray_FROMANY(obj, NPY_INT64, 0, 0, NPY_ARRAY_DEFAULT);
        if (!a) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: positions: expected integers (a sequence of ints), got %s", fn,
                         Py_TYPE(obj)->tp_name);
            return -1;
        }
    } else {
        PyErr_Format(PyExc_TypeError,
                     "%s: positions: expected an int32/int64 ndarray, a sequence of ints or a lightning_core tensor, got %s",
                     fn, Py_TYPE(obj)->tp_name);
        return -1;
    }
    const int tn = PyArray_TYPE(a);
    if (!PyTypeNum_ISINTEGER(tn) || PyTypeNum_ISBOOL(tn)) {
        PyErr_Format(PyExc_TypeError, "%s: positions: expected dtype int32 or int64, got %S", fn,
                     (PyObject *)PyArray_DESCR(a));
        Py_DECREF(a);
        return -1;
    }
    const int nd = PyArray_NDIM(a);
    if (nd < 1 || nd > 2 || PyArray_SIZE(a) == 0) {
        char got[96];
        lcpy_format_shape(got, sizeof got, nd, PyArray_DIMS(a));
        PyErr_Format(PyExc_ValueError, "%s: positions: expected a non-empty [seq] or [batch, seq], got shape %s", fn, got);
        Py_DECREF(a);
        return -1;
    }
    const int want = tn == NPY_INT32 ? NPY_INT32 : NPY_INT64;
    *arr = (PyArrayObject *)PyArray_FromAny((PyObject *)a, PyArray_DescrFromType(want), 0, 0,
                                            NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST, NULL);
    Py_DECREF(a);
    if (!*arr) return -1;
    int64_t shape[2] = {(int64_t)PyArray_DIM(*arr, 0), nd == 2 ? (int64_t)PyArray_DIM(*arr, 1) : 0};
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(*arr), want == NPY_INT32 ? LC_DTYPE_I32 : LC_DTYPE_I64, nd, shape,
                                       NULL, 0, own);
    if (st != LC_OK) {
        lcpy_raise_status_in(fn, st);
        return -1;
    }
    *t = *own;
    return 0;
}

/* A number of the scaling dict (key required). */
static int rope_num(const char *fn, const char *name, PyObject *d, const char *key, const char *type, double *out) {
    PyObject *v = PyDict_GetItemString(d, key); /* borrowed */
    if (!v || v == Py_None) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected key '%s' for rope_type '%s', got none", fn, name, key, type);
        return -1;
    }
    if (PyBool_Check(v) || !(PyFloat_Check(v) || PyLong_Check(v) || PyArray_IsScalar(v, Number))) {
        PyErr_Format(PyExc_TypeError, "%s: %s: '%s': expected a number, got %s", fn, name, key, Py_TYPE(v)->tp_name);
        return -1;
    }
    *out = PyFloat_AsDouble(v);
    return PyErr_Occurred() ? -1 : 0;
}

/* scaling: None or HF's rope_scaling dict -> o->scaling and its parameters (ranges: the library's check). */
int lcpy_rope_scaling(const char *fn, const char *name, PyObject *obj, lc_rope_options *o) {
    o->scaling = LC_ROPE_SCALING_NONE;
    if (!obj || obj == Py_None) return 0;
    if (!PyDict_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected None or a dict (HF rope_scaling), got %s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *t = PyDict_GetItemString(obj, "rope_type");
    if (!t) t = PyDict_GetItemString(obj, "type");
    if (!t || !PyUnicode_Check(t)) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a 'rope_type' string ('linear', 'llama3' or 'default')", fn, name);
        return -1;
    }
    const char *type = PyUnicode_AsUTF8(t);
    if (!type) return -1;
    if (strcmp(type, "default") == 0) return 0;
    if (strcmp(type, "linear") == 0) {
        o->scaling = LC_ROPE_SCALING_LINEAR;
        return rope_num(fn, name, obj, "factor", type, &o->factor);
    }
    if (strcmp(type, "llama3") == 0) {
        o->scaling = LC_ROPE_SCALING_LLAMA3;
        if (rope_num(fn, name, obj, "factor", type, &o->factor) < 0 ||
            rope_num(fn, name, obj, "low_freq_factor", type, &o->low_freq_factor) < 0 ||
            rope_num(fn, name, obj, "high_freq_factor", type, &o->high_freq_factor) < 0 ||
            rope_num(fn, name, obj, "original_max_position_embeddings", type, &o->original_max_position_embeddings) < 0)
            return -1;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "%s: %s: expected rope_type 'linear', 'llama3' or 'default', got '%s'", fn, name, type);
    return -1;
}

/* theta (NULL or None: 10000; theta_name names it), rotary_dim (None: head_dim), scaling -> *o. */
int lcpy_rope_options(const char *fn, const char *theta_name, PyObject *theta, PyObject *rotary_dim, PyObject *scaling,
                      lc_rope_options *o) {
    memset(o, 0, sizeof *o);
    if (lcpy_positive_float_arg(fn, theta_name, theta == Py_None ? NULL : theta, 10000.0, &o->theta) < 0) return -1;
    if (rotary_dim && rotary_dim != Py_None && lcpy_int_arg(fn, "rotary_dim", rotary_dim, 1, INT64_MAX, &o->rotary_dim) < 0)
        return -1;
    return lcpy_rope_scaling(fn, strcmp(theta_name, "theta") == 0 ? "scaling" : "rope_scaling", scaling, o);
}

/* v: x, positions, [out], theta, rotary_dim, scaling, device. */
static PyObject *rope_impl(const char *fn, PyObject *const *v, int has_out) {
    lcpy_call c;
    call_init(&c, fn);
    const int b0 = 2 + has_out;
    PyObject *out_obj = has_out ? v[2] : NULL;
    lc_rope_options opt;
    lc_device dev;
    if (lcpy_rope_options(fn, "theta", v[b0], v[b0 + 1], v[b0 + 2], &opt) < 0 || lcpy_device_arg(fn, v[b0 + 3], &dev) < 0)
        return NULL;
    if (call_input(&c, "x", v[0]) < 0 || call_dtype(&c, "rope") < 0) return NULL;
    if (c.nd[0] < 2 || c.nd[0] > 4) {
        char got[160];
        call_shape_str(got, sizeof got, &c, 0);
        PyErr_Format(PyExc_ValueError, "%s: x: expected [batch, heads, seq, head_dim], [heads, seq, head_dim] or [seq, head_dim], got %s",
                     fn, got);
        return NULL;
    }
    lc_tensor_t *pt = NULL, *pown = NULL;
    PyArrayObject *parr = NULL;
    if (lcpy_rope_positions(fn, v[1], &pt, &pown, &parr) < 0) return NULL;
    lc_status st = LC_OK;
    PyObject *res = NULL;
    if (call_out(&c, out_obj, c.nd[0], c.dims[0], NULL, 1u) < 0 || call_wrap_in(&c, 0, c.nd[0], NULL) < 0 ||
        call_wrap_out(&c, c.nd[0], NULL) < 0) {
        res = call_fail(&c);
    } else {
        Py_BEGIN_ALLOW_THREADS
        st = lc_rope(c.tin[0], pt, c.tout, &opt, dev);
        Py_END_ALLOW_THREADS
        res = call_finish(&c, st);
    }
    lc_tensor_free(pown);
    Py_XDECREF(parr);
    return res;
}

static lcpy_sig sig_rope = LCPY_SIG("rope", 2, "x", "positions", "theta", "rotary_dim", "scaling", "device");
static lcpy_sig sig_rope_into =
    LCPY_SIG("rope_into", 3, "x", "positions", "out", "theta", "rotary_dim", "scaling", "device");

LCPY_PARSED(rope, sig_rope, rope_impl("rope", v, 0))

LCPY_PARSED(rope_into, sig_rope_into, rope_impl("rope_into", v, 1))

/* ---- method table ------------------------------------------------------------------------------------ */

PyMethodDef lcpy_llm_methods[] = {
    LCPY_METHOD(rms_norm, "($module, /, x, weight=None, eps=1e-06, device='cpu')",
                "RMS norm over the last axis: x / sqrt(mean(x**2) + eps) * weight; weight [d] or None."),
    LCPY_METHOD(rms_norm_into, "($module, /, x, out, weight=None, eps=1e-06, device='cpu')",
                "rms_norm into out (may be x); returns out."),
    LCPY_METHOD(softmax, "($module, /, x, device='cpu')",
                "Softmax over the last axis (max-subtracted; a row with NaN, +inf or only -inf gives NaN, as torch)."),
    LCPY_METHOD(softmax_into, "($module, /, x, out, device='cpu')", "softmax into out (may be x); returns out."),
    LCPY_METHOD(silu, "($module, /, x, device='cpu')", "x * sigmoid(x), any shape."),
    LCPY_METHOD(silu_into, "($module, /, x, out, device='cpu')", "silu into out (may be x); returns out."),
    LCPY_METHOD(silu_mul, "($module, /, a, b, device='cpu')", "silu(a) * b for a, b of one shape (SwiGLU)."),
    LCPY_METHOD(silu_mul_into, "($module, /, a, b, out, device='cpu')",
                "silu_mul into out (may be a or b); returns out."),
    LCPY_METHOD(add, "($module, /, a, b, device='cpu')", "a + b with NumPy broadcasting (rank <= 4)."),
    LCPY_METHOD(add_into, "($module, /, a, b, out, device='cpu')",
                "a + b into out of the broadcast shape (may be an input of that shape); returns out."),
    LCPY_METHOD(mul, "($module, /, a, b, device='cpu')", "a * b with NumPy broadcasting (rank <= 4)."),
    LCPY_METHOD(mul_into, "($module, /, a, b, out, device='cpu')",
                "a * b into out of the broadcast shape (may be an input of that shape); returns out."),
    LCPY_METHOD(rope, "($module, /, x, positions, theta=10000.0, rotary_dim=None, scaling=None, device='cpu')",
                "Rotary position embedding (half-split layout) of x [b,h,s,d], [h,s,d] or [s,d] at positions [b,s] or "
                "[s]; scaling: None or HF's rope_scaling dict ('linear' or 'llama3')."),
    LCPY_METHOD(rope_into,
                "($module, /, x, positions, out, theta=10000.0, rotary_dim=None, scaling=None, device='cpu')",
                "rope into out (may be x: in place); returns out."),
    {NULL, NULL, 0, NULL},
};
