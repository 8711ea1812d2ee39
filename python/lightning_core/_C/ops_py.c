/* ops_py.c — the op bindings of lightning_core._C: matmul2d/matmul/matmul_np_into, attention2d/
 * attention_forward, conv2d_nchw, vector_add/matrix_sub/matrix_div, relu, gelu, layer_norm, linear,
 * layer_norm_linear / rms_norm_linear, silu_mul_linear and their *_into forms (docs/python_api.md). Each binding parses fast-call arguments, checks what the C ops
 * layer cannot see (argument types, flat element counts, `out` dtype/layout/aliasing, ints, device),
 * hands the C op an lc_tensor_t per operand (call.h: borrowed wrappers over ndarray buffers — zero copy
 * for contiguous float32/float64 — or a lightning_core tensor's own handle, CPU or CUDA, viewed with the
 * needed shape for the flat APIs), and calls the lc_* op with the GIL released. Shapes: row-major;
 * a [m,k] · b [k,n] -> [m,n]; q, k, v [seq, head_dim]; x [n,c,h,w] (*) w [oc,c,kh,kw] -> [n,oc,oh,ow].
 * Tests: tests/python/test_ops_*.py, tests/python/test_bad_inputs.py, tests/python/test_threads.py,
 * tests/python/test_device_tensors.py. */
#include "call.h"

#include <limits.h>

/* x*y with overflow check (both >= 1); names the product on failure. */
static int checked_mul(const char *fn, const char *what, int64_t x, int64_t y, int64_t *out) {
    if (x > INT64_MAX / y) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a product that fits in 64 bits, got %lld*%lld", fn, what,
                     (long long)x, (long long)y);
        return -1;
    }
    *out = x * y;
    return 0;
}

/* ---- matmul ------------------------------------------------------------------------------- */

static PyObject *matmul_impl(const char *fn, PyObject *const *v, int has_out, int flat) {
    /* v: a, b, [out], [m, k, n], device */
    lcpy_call c;
    call_init(&c, fn);
    PyObject *out_obj = has_out ? v[2] : NULL;
    PyObject *dev_obj = v[2 + has_out + 3 * flat];
    lc_device dev;
    if (lcpy_device_arg(fn, dev_obj, &dev) < 0) return NULL;
    if (call_input(&c, "a", v[0]) < 0 || call_input(&c, "b", v[1]) < 0 || call_dtype(&c, "matmul") < 0) return NULL;
    int64_t m, k, n, mn;
    if (!flat) {
        npy_intp mn_shape[2];
        if (call_infer_out(&c, "matmul", (const char *const[]){"a", "b"}, NULL, 2, mn_shape) < 0) return NULL;
        m = c.dims[0][0];
        k = c.dims[0][1];
        n = c.dims[1][1];
    } else {
        if (lcpy_int_arg(fn, "m", v[3], 1, INT64_MAX, &m) < 0 || lcpy_int_arg(fn, "k", v[4], 1, INT64_MAX, &k) < 0 ||
            lcpy_int_arg(fn, "n", v[5], 1, INT64_MAX, &n) < 0)
            return NULL;
        int ok = k <= INT64_MAX / m && m * k == c.size[0];
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "%s: m: expected m*k == a.size (%lld), got m=%lld, k=%lld", fn,
                         (long long)c.size[0], (long long)m, (long long)k);
            return NULL;
        }
        ok = n <= INT64_MAX / k && k * n == c.size[1];
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "%s: n: expected k*n == b.size (%lld), got k=%lld, n=%lld", fn,
                         (long long)c.size[1], (long long)k, (long long)n);
            return NULL;
        }
    }
    if (checked_mul(fn, "out", m, n, &mn) < 0) return NULL;
    npy_intp oshape[2] = {(npy_intp)m, (npy_intp)n};
    npy_intp ocount[1] = {(npy_intp)mn};
    if (flat && has_out) {
        if (call_out(&c, out_obj, -1, ocount, "m*n", 0) < 0) return call_fail(&c);
    } else if (call_out(&c, out_obj, 2, oshape, NULL, 0) < 0) {
        return call_fail(&c);
    }
    int64_t sa[2] = {m, k}, sb[2] = {k, n}, so[2] = {m, n};
    if (call_wrap_in(&c, 0, 2, sa) < 0 || call_wrap_in(&c, 1, 2, sb) < 0 || call_wrap_out(&c, 2, so) < 0)
        return call_fail(&c);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_matmul(c.tin[0], c.tin[1], c.tout, dev);
    Py_END_ALLOW_THREADS
    return call_finish(&c, st);
}

static lcpy_sig sig_matmul2d = LCPY_SIG("matmul2d", 2, "a", "b", "device");
static lcpy_sig sig_matmul = LCPY_SIG("matmul", 2, "a", "b", "device");
static lcpy_sig sig_matmul2d_into = LCPY_SIG("matmul2d_into", 3, "a", "b", "out", "device");
static lcpy_sig sig_matmul_np_into = LCPY_SIG("matmul_np_into", 6, "a", "b", "out", "m", "k", "n", "device");

LCPY_PARSED(matmul2d, sig_matmul2d, matmul_impl("matmul2d", v, 0, 0))

LCPY_PARSED(matmul, sig_matmul, matmul_impl("matmul", v, 0, 0))

LCPY_PARSED(matmul2d_into, sig_matmul2d_into, matmul_impl("matmul2d_into", v, 1, 0))

LCPY_PARSED(matmul_np_into, sig_matmul_np_into, matmul_impl("matmul_np_into", v, 1, 1))

/* ---- attention ---------------------------------------------------------------------------- */

static PyObject *attention_impl(const char *fn, PyObject *const *v, int has_out, int flat) {
    /* v: q, k, v, [out], [seq, head_dim], causal, device */
    lcpy_call c;
    call_init(&c, fn);
    int base = 3 + has_out + 2 * flat;
    PyObject *out_obj = has_out ? v[3] : NULL;
    int causal;
    lc_device dev;
    if (lcpy_bool_arg(fn, "causal", v[base], 0, &causal) < 0 || lcpy_device_arg(fn, v[base + 1], &dev) < 0)
        return NULL;
    if (call_input(&c, "q", v[0]) < 0 || call_input(&c, "k", v[1]) < 0 || call_input(&c, "v", v[2]) < 0 ||
        call_dtype(&c, "attention_forward") < 0)
        return NULL;
    int64_t seq, hd, count;
    if (!flat) {
        if (call_expect_ndim(&c, 0, 2, " (seq, head_dim)") < 0 || call_expect_same_shape(&c, 1, 0) < 0 ||
            call_expect_same_shape(&c, 2, 0) < 0)
            return NULL;
        seq = c.dims[0][0];
        hd = c.dims[0][1];
        count = seq * hd;
    } else {
        int b0 = 3 + has_out;
        if (lcpy_int_arg(fn, "seq", v[b0], 1, INT64_MAX, &seq) < 0 ||
            lcpy_int_arg(fn, "head_dim", v[b0 + 1], 1, INT64_MAX, &hd) < 0)
            return NULL;
        if (hd > INT64_MAX / seq || (count = seq * hd) != c.size[0]) {
            PyErr_Format(PyExc_ValueError,
                         "%s: seq: expected seq*head_dim == q.size (%lld), got seq=%lld, head_dim=%lld", fn,
                         (long long)c.size[0], (long long)seq, (long long)hd);
            return NULL;
        }
        for (int i = 1; i < 3; i++) {
            if (c.size[i] != count) {
                PyErr_Format(PyExc_ValueError, "%s: %s: expected seq*head_dim (%lld) elements like q, got %lld", fn,
                             c.name[i], (long long)count, (long long)c.size[i]);
                return NULL;
            }
        }
    }
    npy_intp oshape[2] = {(npy_intp)seq, (npy_intp)hd};
    npy_intp ocount[1] = {(npy_intp)count};
    int r;
    if (flat)
        r = has_out ? call_out(&c, out_obj, -1, ocount, "seq*head_dim", 0) : call_out(&c, NULL, 1, ocount, NULL, 0);
    else
        r = call_out(&c, out_obj, 2, oshape, NULL, 0);
    if (r < 0) return call_fail(&c);
    int64_t s2[2] = {seq, hd};
    for (int i = 0; i < 3; i++)
        if (call_wrap_in(&c, i, 2, s2) < 0) return call_fail(&c);
    if (call_wrap_out(&c, 2, s2) < 0) return call_fail(&c);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_attention_forward(c.tin[0], c.tin[1], c.tin[2], c.tout, causal, dev);
    Py_END_ALLOW_THREADS
    return call_finish(&c, st);
}

static lcpy_sig sig_attention2d = LCPY_SIG("attention2d", 3, "q", "k", "v", "causal", "device");
static lcpy_sig sig_attention2d_into = LCPY_SIG("attention2d_into", 4, "q", "k", "v", "out", "causal", "device");
static lcpy_sig sig_attention_forward =
    LCPY_SIG("attention_forward", 5, "q", "k", "v", "seq", "head_dim", "causal", "device");
static lcpy_sig sig_attention_forward_into =
    LCPY_SIG("attention_forward_into", 6, "q", "k", "v", "out", "seq", "head_dim", "causal", "device");

LCPY_PARSED(attention2d, sig_attention2d, attention_impl("attention2d", v, 0, 0))

LCPY_PARSED(attention2d_into, sig_attention2d_into, attention_impl("attention2d_into", v, 1, 0))

LCPY_PARSED(attention_forward, sig_attention_forward, attention_impl("attention_forward", v, 0, 1))

LCPY_PARSED(attention_forward_into, sig_attention_forward_into, attention_impl("attention_forward_into", v, 1, 1))

/* ---- conv2d ------------------------------------------------------------------------------- */

static PyObject *conv2d_impl(const char *fn, PyObject *const *v, int has_out) {
    /* v: x, w, b, [out], stride_h, stride_w, pad_h, pad_w, device, apply_relu */
    lcpy_call c;
    call_init(&c, fn);
    int base = 3 + has_out;
    PyObject *out_obj = has_out ? v[3] : NULL;
    static const char *const inames[4] = {"stride_h", "stride_w", "pad_h", "pad_w"};
    int64_t iv[4];
    for (int i = 0; i < 4; i++) {
        if (v[base + i] == NULL) {
            iv[i] = i < 2 ? 1 : 0;
        } else if (lcpy_int_arg(fn, inames[i], v[base + i], i < 2 ? 1 : 0, INT_MAX, &iv[i]) < 0) {
            return NULL;
        }
    }
    lc_device dev;
    int relu;
    if (lcpy_device_arg(fn, v[base + 4], &dev) < 0 || lcpy_bool_arg(fn, "apply_relu", v[base + 5], 0, &relu) < 0)
        return NULL;
    if (call_input(&c, "x", v[0]) < 0 || call_input(&c, "w", v[1]) < 0) return NULL;
    int has_bias = v[2] != Py_None;
    if ((has_bias && call_input(&c, "b", v[2]) < 0) || call_dtype(&c, "conv2d_nchw") < 0) return NULL;
    /* out's shape from the op's own rule (lc_op_infer_shape: ranks, channels, bias, the conv size) */
    npy_intp oshape[4];
    lc_graph_attrs attrs = {.set = LC_GRAPH_ATTR_STRIDE_H | LC_GRAPH_ATTR_STRIDE_W | LC_GRAPH_ATTR_PAD_H | LC_GRAPH_ATTR_PAD_W,
                            .stride_h = (int32_t)iv[0], .stride_w = (int32_t)iv[1], .pad_h = (int32_t)iv[2],
                            .pad_w = (int32_t)iv[3]};
    if (call_infer_out(&c, "conv2d_nchw", (const char *const[]){"x", "w", "b"}, &attrs, 4, oshape) < 0) return NULL;
    if (call_out(&c, out_obj, 4, oshape, NULL, 0) < 0) return call_fail(&c);
    for (int i = 0; i < c.n; i++)
        if (call_wrap_in(&c, i, 0, NULL) < 0) return call_fail(&c);
    if (call_wrap_out(&c, 0, NULL) < 0) return call_fail(&c);
    lc_conv2d_params p = {(int)iv[0], (int)iv[1], (int)iv[2], (int)iv[3], relu};
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_conv2d_nchw(c.tin[0], c.tin[1], has_bias ? c.tin[2] : NULL, c.tout, &p, dev);
    Py_END_ALLOW_THREADS
    return call_finish(&c, st);
}

static lcpy_sig sig_conv2d = LCPY_SIG("conv2d_nchw", 3, "x", "w", "b", "stride_h", "stride_w", "pad_h", "pad_w",
                                      "device", "apply_relu");
static lcpy_sig sig_conv2d_into = LCPY_SIG("conv2d_nchw_into", 4, "x", "w", "b", "out", "stride_h", "stride_w", "pad_h",
                                           "pad_w", "device", "apply_relu");

LCPY_PARSED(conv2d_nchw, sig_conv2d, conv2d_impl("conv2d_nchw", v, 0))

LCPY_PARSED(conv2d_nchw_into, sig_conv2d_into, conv2d_impl("conv2d_nchw_into", v, 1))

/* ---- linear ------------------------------------------------------------------------------- */

static int activation_arg(const char *fn, PyObject *obj, lc_activation *out) {
    static const char *const names[LC_ACT_COUNT] = {"none", "relu", "gelu", "gelu_tanh"};
    if (obj == NULL) {
        *out = LC_ACT_NONE;
        return 0;
    }
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: activation: expected a str, got %s", fn, Py_TYPE(obj)->tp_name);
        return -1;
    }
    const char *text = PyUnicode_AsUTF8(obj);
    if (!text) return -1;
    for (int i = 0; i < LC_ACT_COUNT; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (lc_activation)i;
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "%s: activation: expected 'none', 'relu', 'gelu' or 'gelu_tanh', got %R", fn, obj);
    return -1;
}

/* linear / linear_into and silu_mul_linear / silu_mul_linear_into: one argument order (x or gu, w, [out], bias,
 * activation, device, residual), the op table's shape rule over the slots (ValueError naming the argument), out
 * may be exactly the residual (x += f(...) in one call), nothing else. */
static PyObject *linear_family_impl(const char *fn, int swiglu, PyObject *const *v, int has_out) {
    static const char *const names[2][4] = {{"x", "w", "bias", "residual"}, {"gu", "w", "bias", "residual"}};
    const char *const *nm = names[swiglu != 0];
    const char *op = swiglu ? "silu_mul_linear" : "linear";
    const int base = 2 + has_out;
    PyObject *out_obj = has_out ? v[2] : NULL;
    PyObject *const ops[4] = {v[0], v[1], v[base], v[base + 3]};
    lcpy_call c;
    call_init(&c, fn);
    lc_activation act;
    lc_device dev;
    if (activation_arg(fn, v[base + 1], &act) < 0 || lcpy_device_arg(fn, v[base + 2], &dev) < 0) return NULL;
    int slot[4] = {-1, -1, -1, -1}; /* call input index of each slot, -1 absent */
    for (int i = 0; i < 4; i++) {
        if (ops[i] == NULL || (i >= 2 && ops[i] == Py_None)) continue;
        if (call_input(&c, nm[i], ops[i]) < 0) return NULL;
        slot[i] = c.n - 1;
    }
    if (call_dtype(&c, op) < 0) return NULL;
    npy_intp oshape[2];
    if (call_infer_out_slots(&c, op, nm, 4, slot, NULL, 2, oshape) < 0) return NULL;
    if (call_out(&c, out_obj, 2, oshape, NULL, slot[3] >= 0 ? 1u << slot[3] : 0u) < 0) return call_fail(&c);
    for (int i = 0; i < c.n; i++)
        if (call_wrap_in(&c, i, 0, NULL) < 0) return call_fail(&c);
    if (call_wrap_out(&c, 0, NULL) < 0) return call_fail(&c);
#define LF_IN(i) (slot[i] >= 0 ? c.tin[slot[i]] : NULL)
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = swiglu ? lc_silu_mul_linear(LF_IN(0), LF_IN(1), LF_IN(2), LF_IN(3), act, c.tout, dev)
                : lc_linear_residual(LF_IN(0), LF_IN(1), LF_IN(2), LF_IN(3), act, c.tout, dev);
    Py_END_ALLOW_THREADS
#undef LF_IN
    return call_finish(&c, st);
}

static lcpy_sig sig_linear = LCPY_SIG("linear", 2, "x", "w", "bias", "activation", "device", "residual");
static lcpy_sig sig_linear_into = LCPY_SIG("linear_into", 3, "x", "w", "out", "bias", "activation", "device", "residual");

LCPY_PARSED(linear, sig_linear, linear_family_impl("linear", 0, v, 0))

LCPY_PARSED(linear_into, sig_linear_into, linear_family_impl("linear_into", 0, v, 1))

/* ---- vector_add / matrix_sub / matrix_div ------------------------------------------------- */

static const char *const binary_op[3] = {"vector_add", "matrix_sub", "matrix_div"};

static PyObject *binary_impl(const char *fn, int kind, PyObject *const *v, int has_out, int matrix) {
    /* v: a, b, [out], [rows, cols], device */
    lcpy_call c;
    call_init(&c, fn);
    PyObject *out_obj = has_out ? v[2] : NULL;
    lc_device dev;
    if (lcpy_device_arg(fn, v[2 + has_out + 2 * matrix], &dev) < 0) return NULL;
    if (call_input(&c, "a", v[0]) < 0 || call_input(&c, "b", v[1]) < 0 || call_dtype(&c, binary_op[kind]) < 0) return NULL;
    int r;
    int64_t ws[2];
    int wnd;
    if (!matrix) {
        if (call_expect_same_shape(&c, 1, 0) < 0) return NULL;
        r = call_out(&c, out_obj, c.nd[0], c.dims[0], NULL, 3u);
        ws[0] = c.size[0];
        wnd = 1;
    } else {
        int64_t rows, cols, count;
        int b0 = 2 + has_out;
        if (lcpy_int_arg(fn, "rows", v[b0], 1, INT64_MAX, &rows) < 0 ||
            lcpy_int_arg(fn, "cols", v[b0 + 1], 1, INT64_MAX, &cols) < 0)
            return NULL;
        if (cols > INT64_MAX / rows || (count = rows * cols) != c.size[0]) {
            PyErr_Format(PyExc_ValueError, "%s: rows: expected rows*cols == a.size (%lld), got rows=%lld, cols=%lld",
                         fn, (long long)c.size[0], (long long)rows, (long long)cols);
            return NULL;
        }
        if (c.size[1] != count) {
            PyErr_Format(PyExc_ValueError, "%s: b: expected rows*cols (%lld) elements like a, got %lld", fn,
                         (long long)count, (long long)c.size[1]);
            return NULL;
        }
        npy_intp oshape[2] = {(npy_intp)rows, (npy_intp)cols};
        npy_intp ocount[1] = {(npy_intp)count};
        r = has_out ? call_out(&c, out_obj, -1, ocount, "rows*cols", 3u) : call_out(&c, NULL, 2, oshape, NULL, 0);
        ws[0] = rows;
        ws[1] = cols;
        wnd = 2;
    }
    if (r < 0) return call_fail(&c);
    const int64_t *wsp = ws;
    if (c.tensor_mode && !matrix) { /* tensors: every operand in its own (equal) shape */
        wnd = 0;
        wsp = NULL;
    }
    if (call_wrap_in(&c, 0, wnd, wsp) < 0 || call_wrap_in(&c, 1, wnd, wsp) < 0 || call_wrap_out(&c, wnd, wsp) < 0)
        return call_fail(&c);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    if (kind == 0)
        st = lc_vector_add(c.tin[0], c.tin[1], c.tout, dev);
    else if (kind == 1)
        st = lc_matrix_sub(c.tin[0], c.tin[1], c.tout, dev);
    else
        st = lc_matrix_div(c.tin[0], c.tin[1], c.tout, dev);
    Py_END_ALLOW_THREADS
    return call_finish(&c, st);
}

static lcpy_sig sig_vector_add = LCPY_SIG("vector_add", 2, "a", "b", "device");
static lcpy_sig sig_vector_add_into = LCPY_SIG("vector_add_into", 3, "a", "b", "out", "device");
static lcpy_sig sig_matrix_sub = LCPY_SIG("matrix_sub", 4, "a", "b", "rows", "cols", "device");
static lcpy_sig sig_matrix_sub_into = LCPY_SIG("matrix_sub_into", 5, "a", "b", "out", "rows", "cols", "device");
static lcpy_sig sig_matrix_div = LCPY_SIG("matrix_div", 4, "a", "b", "rows", "cols", "device");
static lcpy_sig sig_matrix_div_into = LCPY_SIG("matrix_div_into", 5, "a", "b", "out", "rows", "cols", "device");

#define LCPY_BINARY(pyname, sig, nv, kind, has_out, matrix)                                                  \
    static PyObject *py_##pyname(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {   \
        PyObject *v[nv];                                                                                    \
        if (lcpy_parse(&sig, args, nargs, kw, v) < 0) return NULL;                                          \
        return binary_impl(#pyname, kind, v, has_out, matrix);                                              \
    }
LCPY_BINARY(vector_add, sig_vector_add, 3, 0, 0, 0)
LCPY_BINARY(vector_add_into, sig_vector_add_into, 4, 0, 1, 0)
LCPY_BINARY(matrix_sub, sig_matrix_sub, 5, 1, 0, 1)
LCPY_BINARY(matrix_sub_into, sig_matrix_sub_into, 6, 1, 1, 1)
LCPY_BINARY(matrix_div, sig_matrix_div, 5, 2, 0, 1)
LCPY_BINARY(matrix_div_into, sig_matrix_div_into, 6, 2, 1, 1)

/* ---- relu / gelu -------------------------------------------------------------------------- */

static int gelu_approx_arg(const char *fn, PyObject *obj, lc_gelu_approx *out) {
    *out = LC_GELU_ERF;
    if (obj == NULL) return 0;
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: approximate: expected a str ('none' or 'tanh'), got %s", fn,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyUnicode_CompareWithASCIIString(obj, "none") == 0) return 0;
    if (PyUnicode_CompareWithASCIIString(obj, "tanh") == 0) {
        *out = LC_GELU_TANH;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "%s: approximate: expected 'none' or 'tanh', got %R", fn, obj);
    return -1;
}

/* relu (is_gelu 0) and gelu (1). v: x, [out], [approximate], device */
static PyObject *unary_impl(const char *fn, PyObject *const *v, int has_out, int is_gelu) {
    lcpy_call c;
    call_init(&c, fn);
    PyObject *out_obj = has_out ? v[1] : NULL;
    lc_gelu_approx approx = LC_GELU_ERF;
    lc_device dev;
    int b0 = 1 + has_out;
    if (is_gelu && gelu_approx_arg(fn, v[b0], &approx) < 0) return NULL;
    if (lcpy_device_arg(fn, v[b0 + is_gelu], &dev) < 0) return NULL;
    if (call_input(&c, "x", v[0]) < 0 || call_dtype(&c, is_gelu ? "gelu" : "relu") < 0) return NULL;
    if (call_out(&c, out_obj, c.nd[0], c.dims[0], NULL, 1u) < 0) return call_fail(&c);
    int64_t n1[1] = {c.size[0]};
    int wnd = c.tensor_mode ? 0 : 1; /* tensors: x and out in their own (equal) shape */
    const int64_t *wsp = c.tensor_mode ? NULL : n1;
    if (call_wrap_in(&c, 0, wnd, wsp) < 0 || call_wrap_out(&c, wnd, wsp) < 0) return call_fail(&c);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = is_gelu ? lc_gelu(c.tin[0], c.tout, approx, dev) : lc_relu(c.tin[0], c.tout, dev);
    Py_END_ALLOW_THREADS
    return call_finish(&c, st);
}

static lcpy_sig sig_relu = LCPY_SIG("relu", 1, "x", "device");
static lcpy_sig sig_relu_into = LCPY_SIG("relu_into", 2, "x", "out", "device");
static lcpy_sig sig_gelu = LCPY_SIG("gelu", 1, "x", "approximate", "device");
static lcpy_sig sig_gelu_into = LCPY_SIG("gelu_into", 2, "x", "out", "approximate", "device");

LCPY_PARSED(relu, sig_relu, unary_impl("relu", v, 0, 0))

LCPY_PARSED(relu_into, sig_relu_into, unary_impl("relu_into", v, 1, 0))

LCPY_PARSED(gelu, sig_gelu, unary_impl("gelu", v, 0, 1))

LCPY_PARSED(gelu_into, sig_gelu_into, unary_impl("gelu_into", v, 1, 1))

/* ---- qkv_pack_repeat ---------------------------------------------------------------------- */

/* v: src, seq_len, head_dim, device (has_out 0) | src, out, device (has_out 1) */
static PyObject *qkv_pack_impl(const char *fn, PyObject *const *v, int has_out) {
    lcpy_call c;
    call_init(&c, fn);
    lc_device dev;
    int64_t seq = 0, hd = 0;
    if (!has_out && (lcpy_int_arg(fn, "seq_len", v[1], 1, (int64_t)1 << 31, &seq) < 0 ||
                     lcpy_int_arg(fn, "head_dim", v[2], 1, (int64_t)1 << 31, &hd) < 0))
        return NULL;
    if (lcpy_device_arg(fn, v[has_out ? 2 : 3], &dev) < 0) return NULL;
    if (call_input(&c, "src", v[0]) < 0 || call_dtype(&c, "qkv_pack_repeat") < 0) return NULL;
    npy_intp shape[3] = {3, (npy_intp)seq, (npy_intp)hd};
    if (has_out) { /* any shape: only out's own element count is checked (>= 1) */
        lc_tensor_t *ot = lcpy_tensor_handle(v[1]);
        shape[0] = ot ? (npy_intp)lc_tensor_numel(ot) : PyArray_Check(v[1]) ? PyArray_SIZE((PyArrayObject *)v[1]) : 1;
        if (shape[0] < 1) shape[0] = 1;
    }
    if (call_out(&c, has_out ? v[1] : NULL, has_out ? -1 : 3, shape, "elements", 0u) < 0) return call_fail(&c);
    /* src is read flattened, so a 0-d array is its one element (the tensor contract has no 0-d tensors) */
    const int64_t one = 1;
    const int src_0d = c.in[0] != NULL && PyArray_NDIM(c.in[0]) == 0;
    if (call_wrap_in(&c, 0, src_0d ? 1 : 0, src_0d ? &one : NULL) < 0 || call_wrap_out(&c, 0, NULL) < 0)
        return call_fail(&c);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_qkv_pack_repeat(c.tin[0], c.tout, dev);
    Py_END_ALLOW_THREADS
    return call_finish(&c, st);
}

static lcpy_sig sig_qkv_pack_repeat = LCPY_SIG("qkv_pack_repeat", 3, "src", "seq_len", "head_dim", "device");
static lcpy_sig sig_qkv_pack_repeat_into = LCPY_SIG("qkv_pack_repeat_into", 2, "src", "out", "device");

LCPY_PARSED(qkv_pack_repeat, sig_qkv_pack_repeat, qkv_pack_impl("qkv_pack_repeat", v, 0))

LCPY_PARSED(qkv_pack_repeat_into, sig_qkv_pack_repeat_into, qkv_pack_impl("qkv_pack_repeat_into", v, 1))

/* ---- layer_norm_linear / rms_norm_linear -------------------------------------------------- */

static PyObject *norm_linear_impl(const char *fn, PyObject *const *v, int rms) {
    /* v: x, w, bias, gamma (rms: weight), [beta], eps, activation, device, argmax_out */
    static const char *const names[5] = {"x", "w", "bias", "gamma", "beta"};
    static const char *const rms_names[4] = {"x", "w", "bias", "weight"};
    const char *const *nm = rms ? rms_names : names;
    const int nslots = rms ? 4 : 5, ve = nslots;
    lcpy_call c;
    call_init(&c, fn);
    double eps;
    lc_activation act;
    lc_device dev;
    if (lcpy_positive_float_arg(fn, "eps", v[ve], rms ? 1e-6 : 1e-5, &eps) < 0 || activation_arg(fn, v[ve + 1], &act) < 0 ||
        lcpy_device_arg(fn, v[ve + 2], &dev) < 0)
        return NULL;
    int slot[5] = {-1, -1, -1, -1, -1}; /* call input index of each slot, -1 absent */
    for (int i = 0; i < nslots; i++) {
        if (v[i] == NULL || v[i] == Py_None) continue;
        if (call_input(&c, nm[i], v[i]) < 0) return NULL;
        slot[i] = c.n - 1;
    }
    if (call_dtype(&c, fn) < 0) return NULL;
    /* the op table's rule over the slots (absent ones NULL): ValueError naming the argument */
    lc_graph_attrs attrs = {.set = LC_GRAPH_ATTR_EPS, .eps = eps};
    npy_intp oshape[2];
    if (call_infer_out_slots(&c, rms ? "rms_norm_linear" : "layer_norm_linear", nm, nslots, slot, &attrs, 2, oshape) < 0)
        return NULL;
    if (call_out(&c, NULL, 2, oshape, NULL, 0u) < 0) return call_fail(&c);
    for (int i = 0; i < c.n; i++)
        if (call_wrap_in(&c, i, 0, NULL) < 0) return call_fail(&c);
    if (call_wrap_out(&c, 0, NULL) < 0) return call_fail(&c);
    /* argmax_out: an int64 array or device Tensor [m] written in place (the library checks its shape) */
    lc_tensor_t *am = NULL, *am_own = NULL;
    PyObject *am_obj = v[ve + 3];
    if (am_obj && am_obj != Py_None && lcpy_out_take(fn, "argmax_out", am_obj, LC_DTYPE_I64, &am, &am_own) < 0)
        return call_fail(&c);
#define NL_IN(i) (slot[i] >= 0 ? c.tin[slot[i]] : NULL)
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rms ? lc_rms_norm_linear_argmax(NL_IN(0), NL_IN(3), eps, NL_IN(1), NL_IN(2), act, c.tout, am, dev)
             : lc_layer_norm_linear_argmax(NL_IN(0), NL_IN(3), NL_IN(4), eps, NL_IN(1), NL_IN(2), act, c.tout, am, dev);
    Py_END_ALLOW_THREADS
#undef NL_IN
    lc_tensor_free(am_own);
    return call_finish(&c, st);
}

static lcpy_sig sig_layer_norm_linear =
    LCPY_SIG("layer_norm_linear", 2, "x", "w", "bias", "gamma", "beta", "eps", "activation", "device", "argmax_out");
static lcpy_sig sig_rms_norm_linear =
    LCPY_SIG("rms_norm_linear", 2, "x", "w", "bias", "weight", "eps", "activation", "device", "argmax_out");

LCPY_PARSED(layer_norm_linear, sig_layer_norm_linear, norm_linear_impl("layer_norm_linear", v, 0))

LCPY_PARSED(rms_norm_linear, sig_rms_norm_linear, norm_linear_impl("rms_norm_linear", v, 1))

/* ---- silu_mul_linear ---------------------------------------------------------------------- */

static lcpy_sig sig_silu_mul_linear = LCPY_SIG("silu_mul_linear", 2, "gu", "w", "bias", "activation", "device", "residual");
static lcpy_sig sig_silu_mul_linear_into =
    LCPY_SIG("silu_mul_linear_into", 3, "gu", "w", "out", "bias", "activation", "device", "residual");

LCPY_PARSED(silu_mul_linear, sig_silu_mul_linear, linear_family_impl("silu_mul_linear", 1, v, 0))

LCPY_PARSED(silu_mul_linear_into, sig_silu_mul_linear_into, linear_family_impl("silu_mul_linear_into", 1, v, 1))

/* ---- layer_norm --------------------------------------------------------------------------- */

static PyObject *layer_norm_impl(const char *fn, PyObject *const *v, int has_out) {
    /* v: x, [out], gamma, beta, eps, device */
    lcpy_call c;
    call_init(&c, fn);
    PyObject *out_obj = has_out ? v[1] : NULL;
    int b0 = 1 + has_out;
    double eps;
    lc_device dev;
    if (lcpy_positive_float_arg(fn, "eps", v[b0 + 2], 1e-5, &eps) < 0 || lcpy_device_arg(fn, v[b0 + 3], &dev) < 0)
        return NULL;
    if (call_input(&c, "x", v[0]) < 0) return NULL;
    int gi = -1, bi = -1;
    if (v[b0] != NULL && v[b0] != Py_None) {
        if (call_input(&c, "gamma", v[b0]) < 0) return NULL;
        gi = c.n - 1;
    }
    if (v[b0 + 1] != NULL && v[b0 + 1] != Py_None) {
        if (call_input(&c, "beta", v[b0 + 1]) < 0) return NULL;
        bi = c.n - 1;
    }
    if (call_dtype(&c, "layer_norm") < 0) return NULL;
    if (c.nd[0] < 1) {
        PyErr_Format(PyExc_ValueError, "%s: x: expected at least 1 dimension (..., d), got 0", fn);
        return NULL;
    }
    int64_t d = c.dims[0][c.nd[0] - 1];
    int64_t rows = c.size[0] / d;
    for (int i = 1; i < c.n; i++) {
        if (c.nd[i] != 1 || c.dims[i][0] != d) {
            char got[160];
            call_shape_str(got, sizeof got, &c, i);
            PyErr_Format(PyExc_ValueError,
                         "%s: %s: expected shape (%lld,) matching the last axis of x, or None, got %s", fn, c.name[i],
                         (long long)d, got);
            return NULL;
        }
    }
    if (call_out(&c, out_obj, c.nd[0], c.dims[0], NULL, 1u) < 0) return call_fail(&c);
    int64_t s2[2] = {rows, d}, s1[1] = {d};
    /* a tensor x or out: both in their own (equal, <= LC_MAX_DIMS) shape */
    const int64_t *xs = c.tt[0] != NULL || c.out_t != NULL ? NULL : s2;
    if (call_wrap_in(&c, 0, 2, xs) < 0 || call_wrap_out(&c, 2, xs) < 0) return call_fail(&c);
    for (int i = 1; i < c.n; i++)
        if (call_wrap_in(&c, i, 1, s1) < 0) return call_fail(&c);
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_layer_norm(c.tin[0], gi >= 0 ? c.tin[gi] : NULL, bi >= 0 ? c.tin[bi] : NULL, c.tout, eps, dev);
    Py_END_ALLOW_THREADS
    return call_finish(&c, st);
}

static lcpy_sig sig_layer_norm = LCPY_SIG("layer_norm", 1, "x", "gamma", "beta", "eps", "device");
static lcpy_sig sig_layer_norm_into = LCPY_SIG("layer_norm_into", 2, "x", "out", "gamma", "beta", "eps", "device");

LCPY_PARSED(layer_norm, sig_layer_norm, layer_norm_impl("layer_norm", v, 0))

LCPY_PARSED(layer_norm_into, sig_layer_norm_into, layer_norm_impl("layer_norm_into", v, 1))

/* ---- method table ------------------------------------------------------------------------- */

PyMethodDef lcpy_op_methods[] = {
    LCPY_METHOD(matmul2d, "($module, /, a, b, device='cpu')", "a [m,k] @ b [k,n] -> new [m,n] array."),
    LCPY_METHOD(matmul2d_into, "($module, /, a, b, out, device='cpu')",
                "a [m,k] @ b [k,n] into out [m,n]; returns out."),
    LCPY_METHOD(matmul, "($module, /, a, b, device='cpu')", "Same as matmul2d."),
    LCPY_METHOD(matmul_np_into, "($module, /, a, b, out, m, k, n, device='cpu')",
                "Row-major product of a (m*k elements) and b (k*n elements) into out (m*n elements); returns out."),
    LCPY_METHOD(attention2d, "($module, /, q, k, v, causal=False, device='cpu')",
                "softmax(q k^T / sqrt(head_dim) [+ causal mask]) v for q, k, v [seq, head_dim]."),
    LCPY_METHOD(attention2d_into, "($module, /, q, k, v, out, causal=False, device='cpu')",
                "attention2d into out [seq, head_dim]; returns out."),
    LCPY_METHOD(attention_forward, "($module, /, q, k, v, seq, head_dim, causal=False, device='cpu')",
                "Attention over arrays of seq*head_dim elements -> flat [seq*head_dim]."),
    LCPY_METHOD(attention_forward_into, "($module, /, q, k, v, out, seq, head_dim, causal=False, device='cpu')",
                "attention_forward into out (seq*head_dim elements); returns out."),
    LCPY_METHOD(conv2d_nchw,
                "($module, /, x, w, b, stride_h=1, stride_w=1, pad_h=0, pad_w=0, device='cpu', apply_relu=False)",
                "x [n,c,h,w] (*) w [oc,c,kh,kw] + b [oc] (or None) -> [n,oc,oh,ow]."),
    LCPY_METHOD(conv2d_nchw_into,
                "($module, /, x, w, b, out, stride_h=1, stride_w=1, pad_h=0, pad_w=0, device='cpu', "
                "apply_relu=False)",
                "conv2d_nchw into out [n,oc,oh,ow]; returns out."),
    LCPY_METHOD(linear, "($module, /, x, w, bias=None, activation='none', device='cpu', residual=None)",
                "act(x [m,k] @ w [k,n] + bias [n]) (+ residual [m,n]) fused; activation 'none', 'relu', 'gelu' (erf) "
                "or 'gelu_tanh'."),
    LCPY_METHOD(linear_into, "($module, /, x, w, out, bias=None, activation='none', device='cpu', residual=None)",
                "linear into out [m,n] (out may be the residual); returns out."),
    LCPY_METHOD(vector_add, "($module, /, a, b, device='cpu')", "a + b for equal shapes."),
    LCPY_METHOD(vector_add_into, "($module, /, a, b, out, device='cpu')",
                "a + b into out (may be a or b); returns out."),
    LCPY_METHOD(matrix_sub, "($module, /, a, b, rows, cols, device='cpu')",
                "a - b over rows*cols elements -> [rows, cols]."),
    LCPY_METHOD(matrix_sub_into, "($module, /, a, b, out, rows, cols, device='cpu')",
                "a - b into out (rows*cols elements; may be a or b); returns out."),
    LCPY_METHOD(matrix_div, "($module, /, a, b, rows, cols, device='cpu')",
                "a / b over rows*cols elements -> [rows, cols]."),
    LCPY_METHOD(matrix_div_into, "($module, /, a, b, out, rows, cols, device='cpu')",
                "a / b into out (rows*cols elements; may be a or b); returns out."),
    LCPY_METHOD(qkv_pack_repeat, "($module, /, src, seq_len, head_dim, device='cpu')",
                "The seed's qkv packing: src flattened, repeated or truncated into a (3, seq_len, head_dim) q|k|v."),
    LCPY_METHOD(qkv_pack_repeat_into, "($module, /, src, out, device='cpu')",
                "out.flat[i] = src.flat[i % src.size] for every element of out; returns out."),
    LCPY_METHOD(relu, "($module, /, x, device='cpu')", "max(x, 0), any shape."),
    LCPY_METHOD(relu_into, "($module, /, x, out, device='cpu')", "max(x, 0) into out (may be x); returns out."),
    LCPY_METHOD(gelu, "($module, /, x, approximate='none', device='cpu')",
                "GELU ('none': erf form, 'tanh': tanh form), any shape."),
    LCPY_METHOD(gelu_into, "($module, /, x, out, approximate='none', device='cpu')",
                "GELU into out (may be x); returns out."),
    LCPY_METHOD(layer_norm, "($module, /, x, gamma=None, beta=None, eps=1e-05, device='cpu')",
                "Layer norm over the last axis of x [..., d]; gamma, beta [d] or None."),
    LCPY_METHOD(layer_norm_into, "($module, /, x, out, gamma=None, beta=None, eps=1e-05, device='cpu')",
                "layer_norm into out (may be x); returns out."),
    LCPY_METHOD(layer_norm_linear,
                "($module, /, x, w, bias=None, gamma=None, beta=None, eps=1e-05, activation='none', device='cpu', "
                "argmax_out=None)",
                "act(layer_norm(x, gamma, beta, eps) @ w + bias) in one op: x [m,k], w [k,n] -> [m,n]; argmax_out "
                "(int64 [m]) also receives argmax(out) per row (on CUDA decode shapes in the same launch)."),
    LCPY_METHOD(rms_norm_linear,
                "($module, /, x, w, bias=None, weight=None, eps=1e-06, activation='none', device='cpu', argmax_out=None)",
                "act(rms_norm(x, weight, eps) @ w + bias) in one op: x [m,k], w [k,n] -> [m,n]; argmax_out as for "
                "layer_norm_linear."),
    LCPY_METHOD(silu_mul_linear, "($module, /, gu, w, bias=None, activation='none', device='cpu', residual=None)",
                "act(silu(gu[:, :k]) * gu[:, k:] @ w + bias) (+ residual) in one op: gu [m,2k], w [k,n] -> [m,n] "
                "(SwiGLU's down projection)."),
    LCPY_METHOD(silu_mul_linear_into,
                "($module, /, gu, w, out, bias=None, activation='none', device='cpu', residual=None)",
                "silu_mul_linear into out [m,n] (out may be the residual); returns out."),
    {NULL, NULL, 0, NULL},
};
