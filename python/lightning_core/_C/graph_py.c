/* graph_py.c — the graph layer's core for Python (include/lightning_core/graph.h):
 *   GraphCore            a low-level graph over value ids: input(name, shape, dtype='float32'),
 *                        constant(name, value) (an ndarray, copied; or a Tensor/TensorView, shared),
 *                        add(op, inputs, node_name=None, **attrs), raw mode add_unchecked(op, inputs, shape,
 *                        node_name=None, out_value=None, dtype='float32', **attrs) and
 *                        rewire_unchecked(node, slot, value), mark_output(value), validate(device='cpu',
 *                        passes=None) -> list of issue dicts, hash(), topo_order(), node(node), value(v),
 *                        find_node(name), find_value(name), num_nodes, num_values, outputs, version
 *                        (bumped by every mutation: Graph.run's plan-cache key)
 *   graph_op_schemas()   the registry as a list of dicts
 *   graph_reason_codes() the seed reason codes [{code, description}]
 *   graph_issue_codes()  the validation code catalogue [{pass, code, severity, meaning}]
 * Attributes (keyword arguments): stride_h, stride_w, pad_h, pad_w, causal, eps, gelu_approx
 * ('erf' | 'none' | 'tanh' or 0/1), seq, head_dim. The Python builder on top: lightning_core/graph.py.
 * Tests: tests/python/test_graph.py. */
#include <math.h>

#include "convert.h"
#include "internal.h"

#include "lightning_core/dtype.h"

typedef struct {
    PyObject_HEAD
    lc_graph_t *g;
    int planning; /* GraphPlan constructors reading g with the GIL released (changed under the GIL) */
} GraphCoreObject;

/* A mutation while another thread plans the graph (which reads it without the GIL) would change arrays
 * under that reader: refused with RuntimeError. Checked right before each lc_graph_* mutation. */
static int gc_mutable(GraphCoreObject *self, const char *fn) {
    if (!self->planning) return 0;
    PyErr_Format(PyExc_RuntimeError, "%s: the graph is being planned by another thread (GraphPlan); change it after that returns", fn);
    return -1;
}

static void graphcore_dealloc(GraphCoreObject *self) {
    lc_graph_free(self->g);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int graphcore_init(GraphCoreObject *self, PyObject *args, PyObject *kw) {
    if (PyTuple_GET_SIZE(args) != 0 || (kw && PyDict_GET_SIZE(kw) != 0)) {
        PyErr_SetString(PyExc_TypeError, "GraphCore() takes no arguments");
        return -1;
    }
    if (self->g) return 0;
    lc_status st = lc_graph_new(&self->g);
    if (st != LC_OK) {
        lcpy_raise_status(st);
        return -1;
    }
    return 0;
}

/* ---- argument helpers ------------------------------------------------------------------------ */

static int gp_str(const char *fn, const char *name, PyObject *obj, const char **out) {
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a str, got %s", fn, name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t len;
    *out = PyUnicode_AsUTF8AndSize(obj, &len);
    if (*out == NULL) return -1;
    if ((size_t)len != strlen(*out)) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a str without NUL characters", fn, name);
        return -1;
    }
    return 0;
}

/* A value dtype: float32 (None/absent), float64, float16 or bfloat16, as a name ("float32", "bf16", ...),
 * NumPy dtype or scalar type; TypeError otherwise (the graph layer checks which op takes which). */
static int gp_dtype(const char *fn, PyObject *obj, lc_dtype *out) {
    *out = LC_DTYPE_F32;
    if (obj == NULL || obj == Py_None) return 0;
    return lcpy_dtype_arg(fn, "dtype", obj, out);
}

static int gp_id(const char *fn, const char *name, PyObject *obj, lc_value_id *out) {
    int64_t v;
    if (lcpy_int_arg(fn, name, obj, INT32_MIN, INT32_MAX, &v) < 0) return -1;
    *out = (lc_value_id)v;
    return 0;
}

/* A sequence of value ids (0..LC_GRAPH_MAX_INPUTS of them). */
static int gp_inputs(const char *fn, PyObject *obj, lc_value_id *ids, int *n) {
    if (!PyList_Check(obj) && !PyTuple_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: inputs: expected a list or tuple of value ids, got %s", fn, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *tup = PySequence_Tuple(obj);
    if (tup == NULL) return -1;
    const Py_ssize_t len = PyTuple_GET_SIZE(tup);
    if (len > LC_GRAPH_MAX_INPUTS) {
        PyErr_Format(PyExc_ValueError, "%s: inputs: expected at most %d value ids, got %zd", fn, LC_GRAPH_MAX_INPUTS, len);
        Py_DECREF(tup);
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        char label[32];
        snprintf(label, sizeof label, "inputs[%zd]", i);
        if (gp_id(fn, label, PyTuple_GET_ITEM(tup, i), &ids[i]) < 0) {
            Py_DECREF(tup);
            return -1;
        }
    }
    Py_DECREF(tup);
    *n = (int)len;
    return 0;
}

/* One attribute keyword into attrs; 1 when `key` is an attribute, 0 when it is not, -1 on error. */
static int gp_attr(const char *fn, PyObject *key, PyObject *val, lc_graph_attrs *a) {
    const char *k = PyUnicode_AsUTF8(key);
    if (k == NULL) return -1;
    int64_t v;
    if (strcmp(k, "causal") == 0) {
        int b;
        if (lcpy_bool_arg(fn, "causal", val, 0, &b) < 0) return -1;
        a->causal = b;
        a->set |= LC_GRAPH_ATTR_CAUSAL;
        return 1;
    }
    if (strcmp(k, "eps") == 0) {
        if (PyBool_Check(val) || !(PyFloat_Check(val) || PyLong_Check(val) || PyIndex_Check(val))) {
            PyErr_Format(PyExc_TypeError, "%s: eps: expected a float, got %s", fn, Py_TYPE(val)->tp_name);
            return -1;
        }
        double d = PyFloat_AsDouble(val);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s: eps: expected a finite float, got %R", fn, val);
            return -1;
        }
        a->eps = d;
        a->set |= LC_GRAPH_ATTR_EPS;
        return 1;
    }
    if (strcmp(k, "gelu_approx") == 0) {
        if (PyUnicode_Check(val)) {
            const char *s = PyUnicode_AsUTF8(val);
            if (s == NULL) return -1;
            if (strcmp(s, "erf") == 0 || strcmp(s, "none") == 0) a->gelu_approx = LC_GELU_ERF;
            else if (strcmp(s, "tanh") == 0) a->gelu_approx = LC_GELU_TANH;
            else {
                PyErr_Format(PyExc_ValueError, "%s: gelu_approx: expected 'erf', 'none' or 'tanh', got %R", fn, val);
                return -1;
            }
        } else {
            if (lcpy_int_arg(fn, "gelu_approx", val, INT32_MIN, INT32_MAX, &v) < 0) return -1;
            a->gelu_approx = (int32_t)v;
        }
        a->set |= LC_GRAPH_ATTR_GELU_APPROX;
        return 1;
    }
    static const struct {
        const char *name;
        unsigned bit;
        int wide;
    } ints[] = {{"stride_h", LC_GRAPH_ATTR_STRIDE_H, 0}, {"stride_w", LC_GRAPH_ATTR_STRIDE_W, 0},
                {"pad_h", LC_GRAPH_ATTR_PAD_H, 0},       {"pad_w", LC_GRAPH_ATTR_PAD_W, 0},
                {"seq", LC_GRAPH_ATTR_SEQ, 1},           {"head_dim", LC_GRAPH_ATTR_HEAD_DIM, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (strcmp(k, ints[i].name) != 0) continue;
        const int64_t lo = ints[i].wide ? INT64_MIN : INT32_MIN, hi = ints[i].wide ? INT64_MAX : INT32_MAX;
        if (lcpy_int_arg(fn, k, val, lo, hi, &v) < 0) return -1;
        switch (ints[i].bit) {
        case LC_GRAPH_ATTR_STRIDE_H: a->stride_h = (int32_t)v; break;
        case LC_GRAPH_ATTR_STRIDE_W: a->stride_w = (int32_t)v; break;
        case LC_GRAPH_ATTR_PAD_H: a->pad_h = (int32_t)v; break;
        case LC_GRAPH_ATTR_PAD_W: a->pad_w = (int32_t)v; break;
        case LC_GRAPH_ATTR_SEQ: a->seq = v; break;
        default: a->head_dim = v; break;
        }
        a->set |= ints[i].bit;
        return 1;
    }
    return 0;
}

/* Splits keyword arguments into the named ones (`names`, values into vals[], borrowed) and attributes. */
static int gp_kwargs(const char *fn, PyObject *kw, const char *const *names, PyObject **vals, int nnames,
                     lc_graph_attrs *attrs) {
    lc_graph_attrs_init(attrs);
    for (int i = 0; i < nnames; i++) vals[i] = NULL;
    if (kw == NULL) return 0;
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kw, &pos, &key, &val)) {
        const char *k = PyUnicode_AsUTF8(key);
        if (k == NULL) return -1;
        int named = 0;
        for (int i = 0; i < nnames && !named; i++) {
            if (strcmp(k, names[i]) == 0) {
                vals[i] = val;
                named = 1;
            }
        }
        if (named) continue;
        int r = gp_attr(fn, key, val, attrs);
        if (r < 0) return -1;
        if (r == 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s: unexpected keyword argument '%s' (attributes: stride_h, stride_w, pad_h, pad_w, causal, "
                         "eps, gelu_approx, seq, head_dim)",
                         fn, k);
            return -1;
        }
    }
    return 0;
}

/* Positional arguments: exactly between nmin and nmax of them. */
static int gp_positional(const char *fn, PyObject *args, int nmin, int nmax, PyObject **out) {
    const Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n < nmin || n > nmax) {
        PyErr_Format(PyExc_TypeError, "%s: expected %d to %d positional arguments, got %zd", fn, nmin, nmax, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nmax; i++) out[i] = i < n ? PyTuple_GET_ITEM(args, i) : NULL;
    return 0;
}

/* A named argument given both positionally and by keyword is a TypeError. */
static int gp_merge(const char *fn, const char *name, PyObject **slot, PyObject *kwval) {
    if (kwval == NULL) return 0;
    if (*slot != NULL) {
        PyErr_Format(PyExc_TypeError, "%s: got multiple values for argument '%s'", fn, name);
        return -1;
    }
    *slot = kwval;
    return 0;
}

/* ---- builder methods ------------------------------------------------------------------------- */

static PyObject *gc_input(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static lcpy_sig sig = LCPY_SIG("GraphCore.input", 2, "name", "shape", "dtype");
    PyObject *v[3];
    if (lcpy_parse(&sig, args, nargs, kw, v) < 0) return NULL;
    const char *name;
    int64_t dims[LC_MAX_DIMS];
    int nd = 0;
    lc_dtype dt;
    if (gp_str(sig.fn, "name", v[0], &name) < 0 || lcpy_shape_arg(sig.fn, "shape", v[1], dims, &nd) < 0 ||
        gp_dtype(sig.fn, v[2], &dt) < 0)
        return NULL;
    lc_value_id id;
    if (gc_mutable(self, sig.fn) < 0) return NULL;
    lc_status st = lc_graph_input_typed(self->g, name, dt, nd, dims, &id);
    if (st != LC_OK) return lcpy_raise_status(st);
    return PyLong_FromLong(id);
}

static PyObject *gc_constant(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static lcpy_sig sig = LCPY_SIG("GraphCore.constant", 2, "name", "value");
    PyObject *v[2];
    if (lcpy_parse(&sig, args, nargs, kw, v) < 0) return NULL;
    const char *name;
    if (gp_str(sig.fn, "name", v[0], &name) < 0) return NULL;
    lc_value_id id;
    lc_status st;
    lc_tensor_t *t = lcpy_tensor_handle(v[1]);
    if (t != NULL) { /* a lightning_core tensor: shared (the graph keeps a view) */
        if (gc_mutable(self, sig.fn) < 0) return NULL;
        st = lc_graph_constant(self->g, name, t, &id);
        if (st != LC_OK) return lcpy_raise_status(st);
        return PyLong_FromLong(id);
    }
    if (!PyArray_Check(v[1])) {
        PyErr_Format(PyExc_TypeError, "%s: value: expected a numpy.ndarray or a lightning_core Tensor, got %s", sig.fn,
                     Py_TYPE(v[1])->tp_name);
        return NULL;
    }
    PyArrayObject *a = lcpy_input_arg(sig.fn, "value", v[1]);
    if (a == NULL) return NULL;
    /* The constant keeps its array's dtype (float32, float64, float16 or bfloat16; lcpy_input_arg checked it). */
    lc_dtype cdt;
    if (lcpy_typenum_dtype(PyArray_TYPE(a), &cdt) < 0) return NULL; /* unreachable after lcpy_input_arg */
    const int typenum = PyArray_TYPE(a);
    PyArrayObject *c = lcpy_as_compute(a, typenum);
    if (c == NULL) return NULL;
    const int nd = PyArray_NDIM(c);
    if (nd < 1 || nd > LC_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: value: expected 1..%d dimensions, got %d", sig.fn, LC_MAX_DIMS, nd);
        Py_DECREF(c);
        return NULL;
    }
    int64_t dims[LC_MAX_DIMS];
    for (int i = 0; i < nd; i++) dims[i] = PyArray_DIM(c, i);
    lc_tensor_t *copy = NULL;
    st = lc_tensor_from_host(PyArray_DATA(c), (size_t)PyArray_NBYTES(c), cdt,
                             LC_DEVICE_CPU, nd, dims, &copy);
    Py_DECREF(c);
    if (st != LC_OK) return lcpy_raise_status(st);
    if (gc_mutable(self, sig.fn) < 0) {
        lc_tensor_free(copy);
        return NULL;
    }
    st = lc_graph_constant(self->g, name, copy, &id);
    lc_tensor_free(copy); /* the graph's view keeps the storage */
    if (st != LC_OK) return lcpy_raise_status(st);
    return PyLong_FromLong(id);
}

static PyObject *gc_add(GraphCoreObject *self, PyObject *args, PyObject *kw) {
    const char *fn = "GraphCore.add";
    PyObject *pos[3];
    if (gp_positional(fn, args, 0, 3, pos) < 0) return NULL;
    static const char *const names[3] = {"op", "inputs", "node_name"};
    PyObject *kv[3];
    lc_graph_attrs attrs;
    if (gp_kwargs(fn, kw, names, kv, 3, &attrs) < 0) return NULL;
    for (int i = 0; i < 3; i++)
        if (gp_merge(fn, names[i], &pos[i], kv[i]) < 0) return NULL;
    if (!pos[0] || !pos[1]) {
        PyErr_Format(PyExc_TypeError, "%s: missing required argument '%s'", fn, pos[0] ? "inputs" : "op");
        return NULL;
    }
    const char *op, *node_name = NULL;
    lc_value_id ids[LC_GRAPH_MAX_INPUTS];
    int n = 0;
    if (gp_str(fn, "op", pos[0], &op) < 0 || gp_inputs(fn, pos[1], ids, &n) < 0) return NULL;
    if (pos[2] && pos[2] != Py_None && gp_str(fn, "node_name", pos[2], &node_name) < 0) return NULL;
    lc_value_id out;
    if (gc_mutable(self, fn) < 0) return NULL;
    lc_status st = lc_graph_add(self->g, op, ids, n, &attrs, node_name, &out);
    if (st != LC_OK) return lcpy_raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *gc_add_unchecked(GraphCoreObject *self, PyObject *args, PyObject *kw) {
    const char *fn = "GraphCore.add_unchecked";
    PyObject *pos[6];
    if (gp_positional(fn, args, 0, 6, pos) < 0) return NULL;
    static const char *const names[6] = {"op", "inputs", "shape", "node_name", "out_value", "dtype"};
    PyObject *kv[6];
    lc_graph_attrs attrs;
    if (gp_kwargs(fn, kw, names, kv, 6, &attrs) < 0) return NULL;
    for (int i = 0; i < 6; i++)
        if (gp_merge(fn, names[i], &pos[i], kv[i]) < 0) return NULL;
    if (!pos[0] || !pos[1]) {
        PyErr_Format(PyExc_TypeError, "%s: missing required argument '%s'", fn, pos[0] ? "inputs" : "op");
        return NULL;
    }
    const char *op, *node_name = NULL;
    lc_value_id ids[LC_GRAPH_MAX_INPUTS], out_value = -1;
    int n = 0, nd = 0;
    int64_t dims[LC_MAX_DIMS];
    lc_dtype dt;
    if (gp_str(fn, "op", pos[0], &op) < 0 || gp_inputs(fn, pos[1], ids, &n) < 0) return NULL;
    if (pos[2] && pos[2] != Py_None && lcpy_shape_arg(fn, "shape", pos[2], dims, &nd) < 0) return NULL;
    if (pos[3] && pos[3] != Py_None && gp_str(fn, "node_name", pos[3], &node_name) < 0) return NULL;
    if (pos[4] && pos[4] != Py_None && gp_id(fn, "out_value", pos[4], &out_value) < 0) return NULL;
    if (gp_dtype(fn, pos[5], &dt) < 0) return NULL;
    if (out_value < 0 && nd == 0) {
        PyErr_Format(PyExc_TypeError, "%s: shape: expected the output shape (or out_value), got None", fn);
        return NULL;
    }
    lc_value_id out;
    if (gc_mutable(self, fn) < 0) return NULL;
    lc_status st = lc_graph_add_unchecked(self->g, op, ids, n, &attrs, node_name, nd, dims, dt, out_value, &out);
    if (st != LC_OK) return lcpy_raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *gc_rewire_unchecked(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static lcpy_sig sig = LCPY_SIG("GraphCore.rewire_unchecked", 3, "node", "slot", "value");
    PyObject *v[3];
    if (lcpy_parse(&sig, args, nargs, kw, v) < 0) return NULL;
    lc_value_id node, value;
    int64_t slot;
    if (gp_id(sig.fn, "node", v[0], &node) < 0 || lcpy_int_arg(sig.fn, "slot", v[1], INT32_MIN, INT32_MAX, &slot) < 0 ||
        gp_id(sig.fn, "value", v[2], &value) < 0)
        return NULL;
    if (gc_mutable(self, sig.fn) < 0) return NULL;
    lc_status st = lc_graph_rewire_unchecked(self->g, node, (int)slot, value);
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *gc_mark_output(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static lcpy_sig sig = LCPY_SIG("GraphCore.mark_output", 1, "value");
    PyObject *v[1];
    if (lcpy_parse(&sig, args, nargs, kw, v) < 0) return NULL;
    lc_value_id id;
    if (gp_id(sig.fn, "value", v[0], &id) < 0 || gc_mutable(self, sig.fn) < 0) return NULL;
    lc_status st = lc_graph_mark_output(self->g, id);
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

/* ---- queries --------------------------------------------------------------------------------- */

/* Builds a dict from alternating keys and new references (NULL values fail the build). */
static PyObject *gp_dict(int n, const char *const *keys, PyObject **vals) {
    PyObject *d = PyDict_New();
    int ok = d != NULL;
    for (int i = 0; i < n; i++) {
        if (ok && (vals[i] == NULL || PyDict_SetItemString(d, keys[i], vals[i]) < 0)) ok = 0;
        Py_XDECREF(vals[i]);
    }
    if (!ok) {
        Py_XDECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *gp_str_or_none(const char *s) {
    if (s == NULL) Py_RETURN_NONE;
    return PyUnicode_FromString(s);
}

static PyObject *gp_shape_tuple(int ndim, const int64_t *shape) {
    PyObject *t = PyTuple_New(ndim);
    if (t == NULL) return NULL;
    for (int i = 0; i < ndim; i++) {
        PyObject *x = PyLong_FromLongLong((long long)shape[i]);
        if (x == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, x);
    }
    return t;
}

static PyObject *gp_attrs_dict(const lc_graph_attrs *a) {
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    for (unsigned bit = 1; bit & LC_GRAPH_ATTR_ALL; bit <<= 1) {
        if (!(a->set & bit)) continue;
        PyObject *x;
        switch (bit) {
        case LC_GRAPH_ATTR_STRIDE_H: x = PyLong_FromLong(a->stride_h); break;
        case LC_GRAPH_ATTR_STRIDE_W: x = PyLong_FromLong(a->stride_w); break;
        case LC_GRAPH_ATTR_PAD_H: x = PyLong_FromLong(a->pad_h); break;
        case LC_GRAPH_ATTR_PAD_W: x = PyLong_FromLong(a->pad_w); break;
        case LC_GRAPH_ATTR_CAUSAL: x = PyBool_FromLong(a->causal); break;
        case LC_GRAPH_ATTR_EPS: x = PyFloat_FromDouble(a->eps); break;
        case LC_GRAPH_ATTR_GELU_APPROX:
            x = a->gelu_approx == LC_GELU_TANH ? PyUnicode_FromString("tanh")
                : a->gelu_approx == LC_GELU_ERF ? PyUnicode_FromString("erf")
                                                : PyLong_FromLong(a->gelu_approx);
            break;
        case LC_GRAPH_ATTR_SEQ: x = PyLong_FromLongLong((long long)a->seq); break;
        default: x = PyLong_FromLongLong((long long)a->head_dim); break;
        }
        if (x == NULL || PyDict_SetItemString(d, lc_graph_attr_name(bit), x) < 0) {
            Py_XDECREF(x);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(x);
    }
    return d;
}

static PyObject *gc_node(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static lcpy_sig sig = LCPY_SIG("GraphCore.node", 1, "node");
    PyObject *v[1];
    if (lcpy_parse(&sig, args, nargs, kw, v) < 0) return NULL;
    lc_value_id i;
    if (gp_id(sig.fn, "node", v[0], &i) < 0) return NULL;
    lc_graph_node_info ni;
    lc_status st = lc_graph_get_node(self->g, i, &ni);
    if (st != LC_OK) return lcpy_raise_status(st);
    PyObject *inputs = PyList_New(ni.ninputs);
    if (inputs == NULL) return NULL;
    for (int k = 0; k < ni.ninputs; k++) {
        PyObject *x = PyLong_FromLong(ni.inputs[k]);
        if (x == NULL) {
            Py_DECREF(inputs);
            return NULL;
        }
        PyList_SET_ITEM(inputs, k, x);
    }
    static const char *const keys[6] = {"op", "name", "inputs", "output", "attrs", "checked"};
    PyObject *vals[6] = {PyUnicode_FromString(ni.op), PyUnicode_FromString(ni.name), inputs, PyLong_FromLong(ni.output),
                         gp_attrs_dict(&ni.attrs), PyBool_FromLong(ni.checked)};
    return gp_dict(6, keys, vals);
}

static PyObject *gc_value(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static lcpy_sig sig = LCPY_SIG("GraphCore.value", 1, "v");
    PyObject *v[1];
    if (lcpy_parse(&sig, args, nargs, kw, v) < 0) return NULL;
    lc_value_id i;
    if (gp_id(sig.fn, "v", v[0], &i) < 0) return NULL;
    lc_graph_value_info vi;
    lc_status st = lc_graph_get_value(self->g, i, &vi);
    if (st != LC_OK) return lcpy_raise_status(st);
    PyObject *producer;
    if (vi.producer >= 0) producer = PyLong_FromLong(vi.producer);
    else {
        Py_INCREF(Py_None);
        producer = Py_None;
    }
    static const char *const keys[6] = {"name", "shape", "dtype", "kind", "is_output", "producer"};
    PyObject *vals[6] = {PyUnicode_FromString(vi.name), gp_shape_tuple(vi.ndim, vi.shape),
                         PyUnicode_FromString(lc_dtype_name(vi.dtype)), PyUnicode_FromString(lc_graph_value_kind_name(vi.kind)),
                         PyBool_FromLong(vi.is_output), producer};
    return gp_dict(6, keys, vals);
}

static PyObject *gc_find(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw, int node) {
    static lcpy_sig sig_n = LCPY_SIG("GraphCore.find_node", 1, "name");
    static lcpy_sig sig_v = LCPY_SIG("GraphCore.find_value", 1, "name");
    lcpy_sig *sig = node ? &sig_n : &sig_v;
    PyObject *v[1];
    if (lcpy_parse(sig, args, nargs, kw, v) < 0) return NULL;
    const char *name;
    if (gp_str(sig->fn, "name", v[0], &name) < 0) return NULL;
    const int32_t id = node ? lc_graph_find_node(self->g, name) : lc_graph_find_value(self->g, name);
    if (id < 0) Py_RETURN_NONE;
    return PyLong_FromLong(id);
}

static PyObject *gc_find_node(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    return gc_find(self, args, nargs, kw, 1);
}

static PyObject *gc_find_value(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    return gc_find(self, args, nargs, kw, 0);
}

static PyObject *gc_hash(GraphCoreObject *self, PyObject *noargs) {
    return PyLong_FromUnsignedLongLong((unsigned long long)lc_graph_hash(self->g));
}

static PyObject *gc_topo_order(GraphCoreObject *self, PyObject *noargs) {
    const int32_t n = lc_graph_node_count(self->g);
    int32_t *order = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (order == NULL) return PyErr_NoMemory();
    lc_status st = lc_graph_topo_order(self->g, order, n);
    if (st != LC_OK) {
        PyMem_Free(order);
        return lcpy_raise_status(st);
    }
    PyObject *list = PyList_New(n);
    for (int32_t i = 0; list && i < n; i++) {
        PyObject *x = PyLong_FromLong(order[i]);
        if (x == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, x);
    }
    PyMem_Free(order);
    return list;
}

static PyObject *gc_validate(GraphCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    static lcpy_sig sig = LCPY_SIG("GraphCore.validate", 0, "device", "passes");
    PyObject *v[2];
    if (lcpy_parse(&sig, args, nargs, kw, v) < 0) return NULL;
    lc_device dev;
    if (lcpy_device_arg(sig.fn, v[0], &dev) < 0) return NULL;
    unsigned passes = LC_GRAPH_PASSES_ALL;
    if (v[1] != NULL && v[1] != Py_None) {
        if (PyUnicode_Check(v[1]) || !PySequence_Check(v[1])) {
            PyErr_Format(PyExc_TypeError, "%s: passes: expected a list of pass names, got %s", sig.fn, Py_TYPE(v[1])->tp_name);
            return NULL;
        }
        PyObject *tup = PySequence_Tuple(v[1]);
        if (tup == NULL) return NULL;
        passes = 0;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tup); i++) {
            const char *name;
            if (gp_str(sig.fn, "passes", PyTuple_GET_ITEM(tup, i), &name) < 0) {
                Py_DECREF(tup);
                return NULL;
            }
            int found = -1;
            for (int p = 0; p < LC_GRAPH_PASS_COUNT; p++)
                if (strcmp(name, lc_graph_pass_name((lc_graph_pass)p)) == 0) found = p;
            if (found < 0) {
                PyErr_Format(PyExc_ValueError,
                             "%s: passes: expected names among 'schema_contract', 'topology', 'alias_lifetime', "
                             "'layout_flow', 'backend_capability', got %R",
                             sig.fn, PyTuple_GET_ITEM(tup, i));
                Py_DECREF(tup);
                return NULL;
            }
            passes |= 1u << found;
        }
        Py_DECREF(tup);
    }
    lc_graph_report *r = NULL;
    lc_status st = lc_graph_validate_passes(self->g, dev, passes, &r);
    if (st != LC_OK) return lcpy_raise_status(st);
    const size_t n = lc_graph_report_count(r);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        lc_graph_issue is;
        lc_graph_report_get(r, i, &is);
        static const char *const keys[8] = {"pass", "code", "severity", "node", "value", "reason", "message", "node_index"};
        PyObject *node_index;
        if (is.node_index >= 0) node_index = PyLong_FromLong(is.node_index);
        else {
            Py_INCREF(Py_None);
            node_index = Py_None;
        }
        PyObject *vals[8] = {PyUnicode_FromString(is.pass),   PyUnicode_FromString(is.code),
                             PyUnicode_FromString(lc_graph_severity_name(is.severity)),
                             gp_str_or_none(is.node),         gp_str_or_none(is.value),
                             gp_str_or_none(is.reason),       PyUnicode_FromString(is.message),
                             node_index};
        PyObject *d = gp_dict(8, keys, vals);
        if (d == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    lc_graph_report_free(r);
    return list;
}

static PyObject *gc_get_num_nodes(GraphCoreObject *self, void *closure) { return PyLong_FromLong(lc_graph_node_count(self->g)); }
static PyObject *gc_get_num_values(GraphCoreObject *self, void *closure) {
    return PyLong_FromLong(lc_graph_value_count(self->g));
}

static PyObject *gc_get_version(GraphCoreObject *self, void *closure) {
    return PyLong_FromUnsignedLongLong((unsigned long long)lc_graph_version(self->g));
}

static PyObject *gc_get_outputs(GraphCoreObject *self, void *closure) {
    const int32_t n = lc_graph_output_count(self->g);
    PyObject *list = PyList_New(n);
    for (int32_t i = 0; list && i < n; i++) {
        PyObject *x = PyLong_FromLong(lc_graph_output(self->g, i));
        if (x == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, x);
    }
    return list;
}

#define GC_FAST(name, sig, doc) {#name, LCPY_FASTCALL(gc_##name), METH_FASTCALL | METH_KEYWORDS, #name sig "\n--\n\n" doc}

static PyMethodDef graphcore_methods[] = {
    GC_FAST(input, "($self, /, name, shape, dtype='float32')", "A graph input; returns its value id."),
    GC_FAST(constant, "($self, /, name, value)",
            "A constant: an ndarray (copied, its dtype kept) or a Tensor/TensorView (shared); returns its value id."),
    {"add", (PyCFunction)(void (*)(void))gc_add, METH_VARARGS | METH_KEYWORDS,
     "add(op, inputs, node_name=None, **attrs)\n--\n\nAppends a checked node; returns its output value id."},
    {"add_unchecked", (PyCFunction)(void (*)(void))gc_add_unchecked, METH_VARARGS | METH_KEYWORDS,
     "add_unchecked(op, inputs, shape=None, node_name=None, out_value=None, dtype='float32', **attrs)\n--\n\n"
     "Raw mode (crafted bad graphs): appends a node without checks; out_value writes an existing value."},
    GC_FAST(rewire_unchecked, "($self, /, node, slot, value)", "Raw mode: sets a node's input slot to any value id."),
    GC_FAST(mark_output, "($self, /, value)", "Marks a value a graph output."),
    GC_FAST(validate, "($self, /, device='cpu', passes=None)",
            "Runs the validation passes; a list of issue dicts {pass, code, severity, node, value, reason, message, "
            "node_index}."),
    {"hash", (PyCFunction)gc_hash, METH_NOARGS, "hash($self, /)\n--\n\nStable 64-bit structural hash (names and constant data excluded)."},
    {"topo_order", (PyCFunction)gc_topo_order, METH_NOARGS, "topo_order($self, /)\n--\n\nNode indices in a topological order."},
    GC_FAST(node, "($self, /, node)", "Node dict {op, name, inputs, output, attrs, checked}."),
    GC_FAST(value, "($self, /, v)", "Value dict {name, shape, dtype, kind, is_output, producer}."),
    GC_FAST(find_node, "($self, /, name)", "Node index by name, or None."),
    GC_FAST(find_value, "($self, /, name)", "Value id by name, or None."),
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef graphcore_getset[] = {
    {"num_nodes", (getter)gc_get_num_nodes, NULL, "Number of nodes.", NULL},
    {"num_values", (getter)gc_get_num_values, NULL, "Number of values.", NULL},
    {"outputs", (getter)gc_get_outputs, NULL, "Output value ids, in marking order.", NULL},
    {"version", (getter)gc_get_version, NULL, "Mutation counter: every change to the graph bumps it (plans cached "
     "by Graph.run are keyed on it).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject GraphCore_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lightning_core._C.GraphCore",
    .tp_basicsize = sizeof(GraphCoreObject),
    .tp_dealloc = (destructor)graphcore_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "GraphCore(): the graph layer's IR over int value ids (docs/python_api.md, 'Graphs').",
    .tp_methods = graphcore_methods,
    .tp_getset = graphcore_getset,
    .tp_init = (initproc)graphcore_init,
    .tp_new = PyType_GenericNew,
};

/* ---- module functions ------------------------------------------------------------------------ */

static PyObject *gp_str_list(int n, const char *const *items) {
    PyObject *list = PyList_New(0);
    for (int i = 0; list && i < n; i++) {
        if (items[i] == NULL) continue;
        PyObject *s = PyUnicode_FromString(items[i]);
        if (s == NULL || PyList_Append(list, s) < 0) Py_CLEAR(list);
        Py_XDECREF(s);
    }
    return list;
}

static PyObject *gp_attr_list(unsigned bits) {
    const char *names[16];
    int n = 0;
    for (unsigned bit = 1; bit & LC_GRAPH_ATTR_ALL; bit <<= 1)
        if (bits & bit) names[n++] = lc_graph_attr_name(bit);
    return gp_str_list(n, names);
}

static PyObject *py_graph_op_schemas(PyObject *self, PyObject *noargs) {
    const int n = lc_graph_op_count();
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        lc_graph_op_info info;
        lc_graph_op_schema(i, &info);
        PyObject *inputs = PyList_New(info.max_inputs);
        for (int k = 0; inputs && k < info.max_inputs; k++) {
            PyObject *rank = info.input_ranks[k] == LC_GRAPH_RANK_ANY ? (Py_INCREF(Py_None), Py_None)
                                                                       : PyLong_FromLong(info.input_ranks[k]);
            static const char *const ikeys[3] = {"name", "rank", "optional"};
            PyObject *ivals[3] = {PyUnicode_FromString(info.input_names[k]), rank, PyBool_FromLong(k >= info.min_inputs)};
            PyObject *d = gp_dict(3, ikeys, ivals);
            if (d == NULL) {
                Py_CLEAR(inputs);
                break;
            }
            PyList_SET_ITEM(inputs, k, d);
        }
        const char *dts[4] = {(info.dtypes & (1u << LC_DTYPE_F32)) ? "float32" : NULL,
                              (info.dtypes & (1u << LC_DTYPE_F64)) ? "float64" : NULL,
                              (info.dtypes & (1u << LC_DTYPE_F16)) ? "float16" : NULL,
                              (info.dtypes & (1u << LC_DTYPE_BF16)) ? "bfloat16" : NULL};
        const char *bes[2] = {lc_graph_op_supported(i, LC_DEVICE_CPU, LC_DTYPE_F32) ? "cpu" : NULL,
                              lc_graph_op_supported(i, LC_DEVICE_CUDA, LC_DTYPE_F32) ? "cuda" : NULL};
        PyObject *out_rank = info.output_rank == LC_GRAPH_RANK_ANY ? (Py_INCREF(Py_None), Py_None)
                                                                    : PyLong_FromLong(info.output_rank);
        static const char *const keys[13] = {"name",      "alias_of", "inputs",         "min_inputs", "max_inputs",
                                             "output_rank", "dtypes", "layout",         "shape_rule", "attrs",
                                             "required_attrs", "inplace_ok", "backends"};
        PyObject *vals[13] = {PyUnicode_FromString(info.name), gp_str_or_none(info.alias_of), inputs,
                              PyLong_FromLong(info.min_inputs), PyLong_FromLong(info.max_inputs), out_rank,
                              gp_str_list(4, dts), PyUnicode_FromString(info.layout), PyUnicode_FromString(info.shape_rule),
                              gp_attr_list(info.attrs), gp_attr_list(info.required_attrs), PyBool_FromLong(info.inplace_ok),
                              gp_str_list(2, bes)};
        PyObject *d = gp_dict(13, keys, vals);
        if (d != NULL) {
            PyObject *note = PyUnicode_FromString(info.backend_note);
            if (note == NULL || PyDict_SetItemString(d, "backend_note", note) < 0) Py_CLEAR(d);
            Py_XDECREF(note);
        }
        if (d == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, d);
    }
    return list;
}

static PyObject *py_graph_reason_codes(PyObject *self, PyObject *noargs) {
    PyObject *list = PyList_New(LC_GRAPH_REASON_COUNT);
    for (int r = 0; list && r < LC_GRAPH_REASON_COUNT; r++) {
        static const char *const keys[2] = {"code", "description"};
        PyObject *vals[2] = {PyUnicode_FromString(lc_graph_reason_code((lc_graph_reason)r)),
                             PyUnicode_FromString(lc_graph_reason_description((lc_graph_reason)r))};
        PyObject *d = gp_dict(2, keys, vals);
        if (d == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, r, d);
    }
    return list;
}

static PyObject *py_graph_issue_codes(PyObject *self, PyObject *noargs) {
    const int n = lc_graph_issue_code_count();
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        lc_graph_issue_code_info info;
        lc_graph_issue_code(i, &info);
        static const char *const keys[4] = {"pass", "code", "severity", "meaning"};
        PyObject *vals[4] = {PyUnicode_FromString(info.pass), PyUnicode_FromString(info.code),
                             PyUnicode_FromString(lc_graph_severity_name(info.severity)), PyUnicode_FromString(info.meaning)};
        PyObject *d = gp_dict(4, keys, vals);
        if (d == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, d);
    }
    return list;
}

/* op_work(op, shapes, dtype='float32', **attrs) -> {"flops", "bytes"}: the op table's work estimate of one
 * call (lc_op_work_of), what routing and the planner's cost model use; benchmarks report it per row. */
static PyObject *py_op_work(PyObject *self, PyObject *args, PyObject *kw) {
    const char *fn = "op_work";
    PyObject *op_obj = NULL, *shapes_obj = NULL;
    if (!PyArg_UnpackTuple(args, fn, 2, 2, &op_obj, &shapes_obj)) return NULL;
    if (!PyUnicode_Check(op_obj)) {
        PyErr_Format(PyExc_TypeError, "%s: op: expected a str, got %s", fn, Py_TYPE(op_obj)->tp_name);
        return NULL;
    }
    static const char *const names[1] = {"dtype"};
    PyObject *kv[1];
    lc_graph_attrs attrs;
    if (gp_kwargs(fn, kw, names, kv, 1, &attrs) < 0) return NULL;
    lc_dtype dt = LC_DTYPE_F32;
    if (kv[0]) {
        const char *dn = PyUnicode_Check(kv[0]) ? PyUnicode_AsUTF8(kv[0]) : NULL;
        if (dn == NULL || lc_dtype_from_name(dn, &dt) != LC_OK) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: dtype: expected a dtype name such as 'float32' or 'bfloat16', got %R", fn, kv[0]);
            return NULL;
        }
    }
    if (!PyList_Check(shapes_obj) && !PyTuple_Check(shapes_obj)) {
        PyErr_Format(PyExc_TypeError, "%s: shapes: expected a list of shapes (None for an absent optional input), got %s",
                     fn, Py_TYPE(shapes_obj)->tp_name);
        return NULL;
    }
    const Py_ssize_t n = PySequence_Size(shapes_obj);
    if (n > LC_GRAPH_MAX_INPUTS) {
        PyErr_Format(PyExc_ValueError, "%s: shapes: expected at most %d shapes, got %zd", fn, LC_GRAPH_MAX_INPUTS, n);
        return NULL;
    }
    int64_t dims[LC_GRAPH_MAX_INPUTS][LC_MAX_DIMS];
    const int64_t *shp[LC_GRAPH_MAX_INPUTS];
    int nd[LC_GRAPH_MAX_INPUTS];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_GetItem(shapes_obj, i);
        if (item == NULL) return NULL;
        char label[32];
        snprintf(label, sizeof label, "shapes[%zd]", i);
        int r = 0;
        if (item == Py_None) shp[i] = NULL, nd[i] = 0;
        else if ((r = lcpy_shape_arg(fn, label, item, dims[i], &nd[i])) == 0) shp[i] = dims[i];
        Py_DECREF(item);
        if (r < 0) return NULL;
    }
    double flops = 0, bytes = 0;
    lc_status st = lc_op_work_of(PyUnicode_AsUTF8(op_obj), (int)n, nd, shp, &attrs, dt, &flops, &bytes);
    if (st != LC_OK) return lcpy_raise_status(st);
    return Py_BuildValue("{s:d,s:d}", "flops", flops, "bytes", bytes);
}

PyMethodDef lcpy_graph_methods[] = {
    LCPY_NOARGS(graph_op_schemas, "The operator registry: a list of schema dicts (docs/python_api.md, 'Graphs')."),
    LCPY_NOARGS(graph_reason_codes, "The seed's reason codes: a list of {code, description}."),
    LCPY_NOARGS(graph_issue_codes, "The validation issue codes: a list of {pass, code, severity, meaning}."),
    {"op_work", (PyCFunction)(void (*)(void))py_op_work, METH_VARARGS | METH_KEYWORDS,
     "op_work(op, shapes, dtype='float32', **attrs)\n--\n\nThe op table's work of one call: {'flops', 'bytes'} "
     "(bytes read + written at dtype). shapes: one per input (None: an absent optional input)."},
    {NULL, NULL, 0, NULL},
};

int lcpy_graph_register(PyObject *module) {
    if (PyType_Ready(&GraphCore_Type) < 0) return -1;
    Py_INCREF(&GraphCore_Type);
    if (PyModule_AddObject(module, "GraphCore", (PyObject *)&GraphCore_Type) < 0) {
        Py_DECREF(&GraphCore_Type);
        return -1;
    }
    return 0;
}

lc_graph_t *lcpy_graph_handle(PyObject *obj) {
    return (obj && PyObject_TypeCheck(obj, &GraphCore_Type)) ? ((GraphCoreObject *)obj)->g : NULL;
}

void lcpy_graph_planning(PyObject *obj, int delta) {
    if (obj && PyObject_TypeCheck(obj, &GraphCore_Type)) ((GraphCoreObject *)obj)->planning += delta;
}
