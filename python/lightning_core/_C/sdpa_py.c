/* sdpa_py.c — bindings of lc_sdpa and the KV cache (ops.h):
 *   scaled_dot_product_attention(q, k, v, attn_mask=None, causal=False, scale=None, key_lengths=None,
 *                                device="cpu", return_lse=False, window=None)
 *   scaled_dot_product_attention_into(q, k, v, out, attn_mask=None, causal=False, scale=None,
 *                                     key_lengths=None, device="cpu", lse=None, window=None)
 *   _kv_cache_new / _append / _attention / _lengths / _reset / _overflowed / _storage (lightning_core.KVCache,
 *   kv_cache.py, is the class over them).
 * q, k, v, attn_mask: ndarrays (any non-negative element-multiple strides are read in place; others are copied
 * contiguous) or lightning_core tensors (views included, read in place on their device). dtypes float32,
 * float16, bfloat16 (float64 arrays are computed in float32, the library's rule for ops without a float64
 * kernel); attn_mask bool or float; key_lengths a sequence or integer ndarray. The result is a new ndarray of
 * the compute dtype, or a new Tensor on the inputs' device when any of q, k, v is a tensor. window (sdpa and
 * KVCache.attention): None or 0 = no sliding window, else an int >= 1 (lc_sdpa_args.window).
 * Tests: tests/python/test_sdpa.py, tests/python/test_kv_cache.py. */
#include <math.h>

#include "call.h"
#include "internal.h"

typedef struct sd_in {
    lc_tensor_t *t;       /* what the op gets (borrowed or own) */
    lc_tensor_t *own;     /* a wrapper made here */
    PyArrayObject *arr;   /* an array made here (a copy), kept alive while `own` wraps it */
    int is_tensor;
    lc_dtype dt;
} sd_in;

static void sd_release(sd_in *x) {
    lc_tensor_free(x->own);
    Py_XDECREF(x->arr);
    x->own = NULL;
    x->arr = NULL;
}

/* Wraps an ndarray in place when its strides allow (non-negative multiples of the item size, aligned data),
 * else wraps a C-contiguous copy. */
static int sd_wrap_array(const char *fn, const char *name, PyArrayObject *a, lc_dtype dt, sd_in *o) {
    const int nd = PyArray_NDIM(a);
    if (nd > LC_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected at most %d dimensions, got %d", fn, name, LC_MAX_DIMS, nd);
        return -1;
    }
    if (PyArray_SIZE(a) == 0) {
        char got[96];
        lcpy_format_shape(got, sizeof got, nd, PyArray_DIMS(a));
        PyErr_Format(PyExc_ValueError, "%s: %s: expected a non-empty array, got shape %s", fn, name, got);
        return -1;
    }
    const npy_intp item = PyArray_ITEMSIZE(a);
    int64_t shape[LC_MAX_DIMS], strides[LC_MAX_DIMS];
    int in_place = PyArray_ISNOTSWAPPED(a) && ((uintptr_t)PyArray_DATA(a) % (uintptr_t)item) == 0;
    for (int i = 0; i < nd && in_place; i++) {
        const npy_intp s = PyArray_STRIDE(a, i);
        shape[i] = PyArray_DIM(a, i);
        if (s < 0 || s % item != 0) in_place = 0;
        strides[i] = shape[i] == 1 ? 0 : s / item;
    }
    if (!in_place) {
        o->arr = (PyArrayObject *)PyArray_NewCopy(a, NPY_CORDER);
        if (!o->arr) return -1;
        a = o->arr;
        for (int i = 0; i < nd; i++) shape[i] = PyArray_DIM(a, i);
    }
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(a), dt, nd, shape, in_place ? strides : NULL, 0, &o->own);
    if (st != LC_OK) {
        lcpy_raise_status_in(fn, st);
        return -1;
    }
    o->t = o->own;
    o->dt = dt;
    return 0;
}

/* q, k, v (kind 0) or attn_mask (kind 1). float64 arrays become float32 copies. */
static int sd_take(const char *fn, const char *name, PyObject *obj, int kind, sd_in *o) {
    memset(o, 0, sizeof *o);
    lc_tensor_t *h = lcpy_tensor_handle(obj);
    if (h) {
        o->t = h;
        o->is_tensor = 1;
        o->dt = lc_tensor_dtype(h);
        return 0;
    }
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a numpy.ndarray or a lightning_core Tensor, got %s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    lc_dtype dt;
    if (kind == 1 && PyArray_TYPE(a) == NPY_BOOL) return sd_wrap_array(fn, name, a, LC_DTYPE_BOOL, o);
    if (lcpy_typenum_dtype(PyArray_TYPE(a), &dt) < 0) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected dtype %s, got %S", fn, name,
                     kind == 1 ? "bool, float32, float16 or bfloat16" : "float32, float16 or bfloat16",
                     (PyObject *)PyArray_DESCR(a));
        return -1;
    }
    if (dt == LC_DTYPE_F64) {
        o->arr = (PyArrayObject *)PyArray_FromAny(obj, PyArray_DescrFromType(NPY_FLOAT), 0, 0,
                                                  NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST, NULL);
        if (!o->arr) return -1;
        PyArrayObject *c = o->arr;
        o->arr = NULL;
        int r = sd_wrap_array(fn, name, c, LC_DTYPE_F32, o);
        if (r == 0 && !o->arr) o->arr = c; /* keep the copy alive under the wrapper */
        else Py_DECREF(c);
        return r;
    }
    return sd_wrap_array(fn, name, a, dt, o);
}

/* key_lengths: a sequence of ints or an integer ndarray -> an int32/int64 host tensor [n]. */
static int sd_take_lengths(const char *fn, PyObject *obj, sd_in *o) {
    memset(o, 0, sizeof *o);
    if (lcpy_tensor_handle(obj)) {
        o->t = lcpy_tensor_handle(obj);
        o->is_tensor = 1;
        o->dt = lc_tensor_dtype(o->t);
        return 0;
    }
    PyArrayObject *a = NULL;
    if (PyArray_Check(obj)) {
        const int tn = PyArray_TYPE((PyArrayObject *)obj);
        if (!PyTypeNum_ISINTEGER(tn) || PyTypeNum_ISBOOL(tn)) {
            PyErr_Format(PyExc_TypeError, "%s: key_lengths: expected integers (int32 or int64), got dtype %S", fn,
                         (PyObject *)PyArray_DESCR((PyArrayObject *)obj));
            return -1;
        }
        const int want = tn == NPY_INT32 ? NPY_INT32 : NPY_INT64;
        a = (PyArrayObject *)PyArray_FromAny(obj, PyArray_DescrFromType(want), 1, 1,
                                             NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST, NULL);
    } else if (PyList_Check(obj) || PyTuple_Check(obj)) {
        const Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *it = PySequence_Fast_GET_ITEM(obj, i);
            if (!PyLong_Check(it) && !PyArray_IsScalar(it, Integer)) {
                PyErr_Format(PyExc_TypeError, "%s: key_lengths: expected a sequence of ints, got %s at %zd", fn,
                             Py_TYPE(it)->tp_name, i);
                return -1;
            }
        }
        a = (PyArrayObject *)PyArray_FromAny(obj, PyArray_DescrFromType(NPY_INT64), 1, 1,
                                             NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
    } else {
        PyErr_Format(PyExc_TypeError, "%s: key_lengths: expected a sequence of ints or an integer ndarray, got %s", fn,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (!a) {
        if (PyErr_ExceptionMatches(PyExc_ValueError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s: key_lengths: expected one dimension [batch]", fn);
        }
        return -1;
    }
    o->arr = a;
    const int64_t n = (int64_t)PyArray_DIM(a, 0);
    if (n == 0) {
        PyErr_Format(PyExc_ValueError, "%s: key_lengths: expected one length per batch entry, got none", fn);
        return -1;
    }
    o->dt = PyArray_TYPE(a) == NPY_INT32 ? LC_DTYPE_I32 : LC_DTYPE_I64;
    lc_status st = lc_tensor_wrap_host(PyArray_DATA(a), o->dt, 1, &n, NULL, 0, &o->own);
    if (st != LC_OK) {
        lcpy_raise_status_in(fn, st);
        return -1;
    }
    o->t = o->own;
    return 0;
}

/* scale: None -> 0 (the library's 1/sqrt(d)); else a finite nonzero float. */
static int sd_scale(const char *fn, PyObject *obj, double *out) {
    *out = 0.0;
    if (!obj || obj == Py_None) return 0;
    if (PyBool_Check(obj) || !(PyFloat_Check(obj) || PyLong_Check(obj) || PyArray_IsScalar(obj, Number))) {
        PyErr_Format(PyExc_TypeError, "%s: scale: expected a float or None, got %s", fn, Py_TYPE(obj)->tp_name);
        return -1;
    }
    double s = PyFloat_AsDouble(obj);
    if (s == -1.0 && PyErr_Occurred()) return -1;
    if (!isfinite(s) || s == 0.0) {
        PyObject *r = PyObject_Repr(obj); /* PyErr_Format has no %g */
        const char *rs = r ? PyUnicode_AsUTF8(r) : NULL;
        PyErr_Format(PyExc_ValueError, "%s: scale: expected a finite nonzero number (or None: 1/sqrt(head_dim)), got %s", fn,
                     rs ? rs : "?");
        Py_XDECREF(r);
        return -1;
    }
    *out = s;
    return 0;
}

/* window: None -> 0 (none); else an int >= 0 (0: none; bool and float refused: TypeError; negative: ValueError). */
static int sd_window(const char *fn, PyObject *obj, int64_t *out) {
    *out = 0;
    if (!obj || obj == Py_None) return 0;
    return lcpy_int_arg(fn, "window", obj, 0, INT64_MAX, out);
}

/* The compute dtype of q, k, v as given: a 16-bit input decides (the library then checks they all match,
 * TypeError naming both); else float32 (float64 arrays were made float32 copies). */
static lc_dtype sd_dtype(const sd_in *x) {
    for (int i = 0; i < 3; i++)
        if (x[i].dt == LC_DTYPE_F16 || x[i].dt == LC_DTYPE_BF16) return x[i].dt;
    return x[0].dt == LC_DTYPE_F64 ? LC_DTYPE_F64 : LC_DTYPE_F32;
}

static PyObject *sdpa_impl(const char *fn, PyObject *const *v, int has_out) {
    /* v: q, k, v, [out], attn_mask, causal, scale, key_lengths, device, return_lse | lse, window */
    const int b0 = 3 + has_out;
    sd_in x[5];
    memset(x, 0, sizeof x);
    PyObject *result = NULL, *lse_obj = NULL;
    lc_tensor_t *out_t = NULL, *out_own = NULL, *lse_t = NULL, *lse_own = NULL;
    int causal = 0, want_lse = 0;
    double scale;
    int64_t window;
    lc_device dev;
    if (lcpy_bool_arg(fn, "causal", v[b0 + 1], 0, &causal) < 0 || sd_scale(fn, v[b0 + 2], &scale) < 0 ||
        lcpy_device_arg(fn, v[b0 + 4], &dev) < 0 || sd_window(fn, v[b0 + 6], &window) < 0)
        return NULL;
    if (!has_out && lcpy_bool_arg(fn, "return_lse", v[b0 + 5], 0, &want_lse) < 0) return NULL;
    static const char *const names[3] = {"q", "k", "v"};
    int tensor_dev = -1;
    for (int i = 0; i < 3; i++) {
        if (sd_take(fn, names[i], v[i], 0, &x[i]) < 0) goto done;
        if (x[i].is_tensor && tensor_dev < 0) tensor_dev = (int)lc_tensor_device(x[i].t);
    }
    if (v[b0] && v[b0] != Py_None && sd_take(fn, "attn_mask", v[b0], 1, &x[3]) < 0) goto done;
    if (v[b0 + 3] && v[b0 + 3] != Py_None && sd_take_lengths(fn, v[b0 + 3], &x[4]) < 0) goto done;
    const lc_dtype dt = sd_dtype(x);
    for (int i = 1; i < 3; i++)
        if (x[i].dt != x[0].dt) { /* no silent casts between the 16-bit types and float32 */
            PyErr_Format(PyExc_TypeError, "%s: %s: expected dtype %s (q's), got %s", fn, names[i], lc_dtype_name(x[0].dt),
                         lc_dtype_name(x[i].dt));
            goto done;
        }
    const int r = lc_tensor_ndim(x[0].t);
    const int64_t *qs = lc_tensor_shape(x[0].t);
    if (r < 2 || r > 4) {
        char got[96];
        npy_intp d[LC_MAX_DIMS];
        for (int i = 0; i < r; i++) d[i] = (npy_intp)qs[i];
        lcpy_format_shape(got, sizeof got, r, d);
        PyErr_Format(PyExc_ValueError, "%s: q: expected [batch, heads, seq, head_dim], [heads, seq, head_dim] or [seq, head_dim], got %s",
                     fn, got);
        goto done;
    }
    if (has_out) {
        if (lcpy_out_take(fn, "out", v[3], dt, &out_t, &out_own) < 0) goto done;
        PyObject *lo = v[b0 + 5];
        if (lo && lo != Py_None && lcpy_out_take(fn, "lse", lo, LC_DTYPE_F32, &lse_t, &lse_own) < 0) goto done;
        Py_INCREF(v[3]);
        result = v[3];
    } else {
        result = lcpy_result_new(fn, tensor_dev, dt, r, qs, &out_t, &out_own);
        if (!result) goto done;
        if (want_lse) {
            lse_obj = lcpy_result_new(fn, tensor_dev, LC_DTYPE_F32, r - 1, qs, &lse_t, &lse_own);
            if (!lse_obj) goto done;
        }
    }
    {
        lc_sdpa_options opt = {x[3].t, x[4].t, causal, scale, lse_t, window};
        lc_status st;
        Py_BEGIN_ALLOW_THREADS
        st = lc_sdpa(x[0].t, x[1].t, x[2].t, out_t, &opt, dev);
        Py_END_ALLOW_THREADS
        if (st != LC_OK) {
            lcpy_raise_status(st);
            Py_CLEAR(result);
            Py_CLEAR(lse_obj);
            goto done;
        }
    }
    if (lse_obj) {
        PyObject *tup = PyTuple_Pack(2, result, lse_obj);
        Py_DECREF(result);
        Py_CLEAR(lse_obj);
        result = tup;
    }
done:
    for (int i = 0; i < 5; i++) sd_release(&x[i]);
    lc_tensor_free(out_own);
    lc_tensor_free(lse_own);
    Py_XDECREF(lse_obj);
    return result;
}

static lcpy_sig sig_sdpa = LCPY_SIG("scaled_dot_product_attention", 3, "q", "k", "v", "attn_mask", "causal", "scale",
                                    "key_lengths", "device", "return_lse", "window");
static lcpy_sig sig_sdpa_into = LCPY_SIG("scaled_dot_product_attention_into", 4, "q", "k", "v", "out", "attn_mask",
                                         "causal", "scale", "key_lengths", "device", "lse", "window");

LCPY_PARSED(scaled_dot_product_attention, sig_sdpa, sdpa_impl("scaled_dot_product_attention", v, 0))

LCPY_PARSED(scaled_dot_product_attention_into, sig_sdpa_into, sdpa_impl("scaled_dot_product_attention_into", v, 1))

/* ---- KV cache ------------------------------------------------------------------------------------ */

static const char *const KV_CAPSULE = "lightning_core.kv_cache";

static void kv_capsule_free(PyObject *cap) {
    lc_kv_cache_free((lc_kv_cache_t *)PyCapsule_GetPointer(cap, KV_CAPSULE));
}

static lc_kv_cache_t *kv_get(PyObject *cap) { return (lc_kv_cache_t *)PyCapsule_GetPointer(cap, KV_CAPSULE); }

static lcpy_sig sig_kv_new = LCPY_SIG("KVCache", 4, "batch", "kv_heads", "max_seq", "head_dim", "dtype", "device");

static PyObject *py__kv_cache_new(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[6];
    if (lcpy_parse(&sig_kv_new, args, nargs, kw, v) < 0) return NULL;
    static const char *const names[4] = {"batch", "kv_heads", "max_seq", "head_dim"};
    int64_t d[4];
    for (int i = 0; i < 4; i++)
        if (lcpy_int_arg("KVCache", names[i], v[i], 1, INT32_MAX, &d[i]) < 0) return NULL;
    lc_dtype dt = LC_DTYPE_F32;
    lc_device dev;
    if (v[4] && v[4] != Py_None && lcpy_dtype_arg("KVCache", "dtype", v[4], &dt) < 0) return NULL;
    if (lcpy_device_arg("KVCache", v[5], &dev) < 0) return NULL;
    lc_kv_cache_t *c = NULL;
    lc_status st = lc_kv_cache_new(d[0], d[1], d[2], d[3], dt, dev, &c);
    if (st != LC_OK) return lcpy_raise_status(st);
    PyObject *cap = PyCapsule_New(c, KV_CAPSULE, kv_capsule_free);
    if (!cap) lc_kv_cache_free(c);
    return cap;
}

static lcpy_sig sig_kv_append = LCPY_SIG("KVCache.append", 3, "cache", "k_new", "v_new");

static PyObject *py__kv_cache_append(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[3];
    if (lcpy_parse(&sig_kv_append, args, nargs, kw, v) < 0) return NULL;
    lc_kv_cache_t *c = kv_get(v[0]);
    if (!c) return NULL;
    sd_in x[2];
    memset(x, 0, sizeof x);
    PyObject *r = NULL;
    if (sd_take("KVCache.append", "k_new", v[1], 0, &x[0]) == 0 && sd_take("KVCache.append", "v_new", v[2], 0, &x[1]) == 0) {
        lc_status st;
        Py_BEGIN_ALLOW_THREADS
        st = lc_kv_cache_append(c, x[0].t, x[1].t);
        Py_END_ALLOW_THREADS
        if (st == LC_OK) {
            Py_INCREF(Py_None);
            r = Py_None;
        } else {
            lcpy_raise_status(st);
        }
    }
    sd_release(&x[0]);
    sd_release(&x[1]);
    return r;
}

static lcpy_sig sig_kv_attention = LCPY_SIG("KVCache.attention", 2, "cache", "q", "out", "causal", "scale", "window", "k_new",
                                            "v_new", "positions", "rope_theta", "rotary_dim", "rope_scaling");

static PyObject *py__kv_cache_attention(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    const char *fn = "KVCache.attention";
    PyObject *v[12];
    if (lcpy_parse(&sig_kv_attention, args, nargs, kw, v) < 0) return NULL;
    lc_kv_cache_t *c = kv_get(v[0]);
    if (!c) return NULL;
    int causal = 1;
    double scale;
    int64_t window;
    if (lcpy_bool_arg(fn, "causal", v[3], 1, &causal) < 0 || sd_scale(fn, v[4], &scale) < 0 ||
        sd_window(fn, v[5], &window) < 0)
        return NULL;
    const int has_k = v[6] && v[6] != Py_None, has_v = v[7] && v[7] != Py_None;
    if (has_k != has_v) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected k_new and v_new together (both or neither), got only %s", fn,
                     has_k ? "v_new" : "k_new", has_k ? "k_new" : "v_new");
        return NULL;
    }
    /* positions: the rotary embedding of q and k_new first (lc_kv_cache_append_attention_rope) */
    const int has_pos = v[8] && v[8] != Py_None;
    if (has_pos && !has_k) {
        PyErr_Format(PyExc_ValueError, "%s: positions: expected k_new and v_new with it (the rotary embedding rotates q and k_new), got neither", fn);
        return NULL;
    }
    if (!has_pos && ((v[9] && v[9] != Py_None) || (v[10] && v[10] != Py_None) || (v[11] && v[11] != Py_None))) {
        PyErr_Format(PyExc_ValueError, "%s: positions: expected positions with rope_theta / rotary_dim / rope_scaling, got none", fn);
        return NULL;
    }
    lc_rope_options ropt;
    if (has_pos && lcpy_rope_options(fn, "rope_theta", v[9], v[10], v[11], &ropt) < 0) return NULL;
    sd_in q, kn, vn;
    memset(&kn, 0, sizeof kn);
    memset(&vn, 0, sizeof vn);
    if (has_k && (sd_take(fn, "k_new", v[6], 0, &kn) < 0 || sd_take(fn, "v_new", v[7], 0, &vn) < 0)) {
        sd_release(&kn);
        sd_release(&vn);
        return NULL;
    }
    lc_tensor_t *pt = NULL, *pown = NULL;
    PyArrayObject *parr = NULL;
    if (has_pos && lcpy_rope_positions(fn, v[8], &pt, &pown, &parr) < 0) {
        sd_release(&kn);
        sd_release(&vn);
        return NULL;
    }
    if (sd_take(fn, "q", v[1], 0, &q) < 0) {
        sd_release(&kn);
        sd_release(&vn);
        lc_tensor_free(pown);
        Py_XDECREF(parr);
        return NULL;
    }
    PyObject *result = NULL;
    lc_tensor_t *out_t = NULL, *out_own = NULL;
    const lc_dtype dt = lc_tensor_dtype(lc_kv_cache_k(c));
    if (v[2] && v[2] != Py_None) {
        if (lcpy_out_take(fn, "out", v[2], dt, &out_t, &out_own) == 0) {
            Py_INCREF(v[2]);
            result = v[2];
        }
    } else {
        result = lcpy_result_new(fn, q.is_tensor ? (int)lc_tensor_device(q.t) : -1, dt, lc_tensor_ndim(q.t),
                               lc_tensor_shape(q.t), &out_t, &out_own);
    }
    if (result) {
        lc_status st;
        Py_BEGIN_ALLOW_THREADS
        st = has_pos ? lc_kv_cache_append_attention_rope(c, kn.t, vn.t, q.t, out_t, causal, scale, window, pt, &ropt)
             : has_k ? lc_kv_cache_append_attention(c, kn.t, vn.t, q.t, out_t, causal, scale, window)
                     : lc_kv_cache_attention(c, q.t, out_t, causal, scale, window);
        Py_END_ALLOW_THREADS
        if (st != LC_OK) {
            lcpy_raise_status(st);
            Py_CLEAR(result);
        }
    }
    sd_release(&q);
    sd_release(&kn);
    sd_release(&vn);
    lc_tensor_free(out_own);
    lc_tensor_free(pown);
    Py_XDECREF(parr);
    return result;
}

static PyObject *py__kv_cache_lengths(PyObject *self, PyObject *cap) {
    lc_kv_cache_t *c = kv_get(cap);
    if (!c) return NULL;
    const npy_intp n = (npy_intp)lc_tensor_shape(lc_kv_cache_k(c))[0];
    PyArrayObject *a = lcpy_new_array(1, &n, NPY_INT64);
    if (!a) return NULL;
    lc_status st = lc_kv_cache_lengths(c, (int64_t *)PyArray_DATA(a));
    if (st != LC_OK) {
        Py_DECREF(a);
        return lcpy_raise_status(st);
    }
    return (PyObject *)a;
}

static lcpy_sig sig_kv_set_lengths = LCPY_SIG("KVCache.set_lengths", 2, "cache", "lengths");

static PyObject *py__kv_cache_set_lengths(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[2];
    if (lcpy_parse(&sig_kv_set_lengths, args, nargs, kw, v) < 0) return NULL;
    lc_kv_cache_t *c = kv_get(v[0]);
    if (!c) return NULL;
    sd_in x;
    if (sd_take_lengths("KVCache.set_lengths", v[1], &x) < 0) return NULL;
    PyObject *r = NULL;
    if (x.is_tensor) {
        PyErr_SetString(PyExc_TypeError, "KVCache.set_lengths: lengths: expected a sequence of ints or an integer ndarray");
    } else {
        const int64_t n = (int64_t)PyArray_DIM(x.arr, 0);
        int64_t *tmp = PyMem_Malloc((size_t)n * sizeof(int64_t) + 8);
        if (!tmp) {
            PyErr_NoMemory();
        } else {
            for (int64_t i = 0; i < n; i++)
                tmp[i] = x.dt == LC_DTYPE_I32 ? (int64_t)((const int32_t *)PyArray_DATA(x.arr))[i]
                                             : ((const int64_t *)PyArray_DATA(x.arr))[i];
            lc_status st = lc_kv_cache_set_lengths(c, tmp, n);
            PyMem_Free(tmp);
            if (st == LC_OK) {
                Py_INCREF(Py_None);
                r = Py_None;
            } else {
                lcpy_raise_status(st);
            }
        }
    }
    sd_release(&x);
    return r;
}

static PyObject *py__kv_cache_reset(PyObject *self, PyObject *cap) {
    lc_kv_cache_t *c = kv_get(cap);
    if (!c) return NULL;
    lc_status st = lc_kv_cache_reset(c);
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *py__kv_cache_overflowed(PyObject *self, PyObject *cap) {
    lc_kv_cache_t *c = kv_get(cap);
    if (!c) return NULL;
    const int f = lc_kv_cache_overflowed(c);
    if (f < 0) return lcpy_raise_status(LC_ERR_DEVICE_UNAVAILABLE);
    return PyBool_FromLong(f);
}

/* (k, v): new Tensors viewing the cache's storage (the storage lives while any of them does). */
static PyObject *py__kv_cache_storage(PyObject *self, PyObject *cap) {
    lc_kv_cache_t *c = kv_get(cap);
    if (!c) return NULL;
    const lc_tensor_t *src[2] = {lc_kv_cache_k(c), lc_kv_cache_v(c)};
    PyObject *t[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        lc_tensor_t *view = NULL;
        lc_status st = lc_tensor_view(src[i], 4, lc_tensor_shape(src[i]), lc_tensor_strides(src[i]), 0,
                                      lc_tensor_device(src[i]), &view);
        if (st != LC_OK) {
            Py_XDECREF(t[0]);
            return lcpy_raise_status(st);
        }
        t[i] = lcpy_tensor_adopt(view);
        if (!t[i]) {
            Py_XDECREF(t[0]);
            return NULL;
        }
    }
    PyObject *r = PyTuple_Pack(2, t[0], t[1]);
    Py_DECREF(t[0]);
    Py_DECREF(t[1]);
    return r;
}

PyMethodDef lcpy_sdpa_methods[] = {
    LCPY_METHOD(scaled_dot_product_attention,
                "($module, /, q, k, v, attn_mask=None, causal=False, scale=None, key_lengths=None, device='cpu', "
                "return_lse=False)",
                "softmax(scale * q k^T (+ mask)) v over the visible keys; q [B,H,Sq,D], k, v [B,Hkv,Skv,D] (or rank 3/2)."),
    LCPY_METHOD(scaled_dot_product_attention_into,
                "($module, /, q, k, v, out, attn_mask=None, causal=False, scale=None, key_lengths=None, device='cpu', "
                "lse=None)",
                "scaled_dot_product_attention into out (and lse); returns out."),
    LCPY_METHOD(_kv_cache_new, "($module, /, batch, kv_heads, max_seq, head_dim, dtype='float32', device='cpu')",
                "internal: a KV cache capsule (lightning_core.KVCache)."),
    LCPY_METHOD(_kv_cache_append, "($module, /, cache, k_new, v_new)", "internal: KVCache.append."),
    LCPY_METHOD(_kv_cache_attention, "($module, /, cache, q, out=None, causal=True, scale=None, window=None, k_new=None, v_new=None, positions=None, rope_theta=None, rotary_dim=None, rope_scaling=None)",
                "internal: KVCache.attention."),
    LCPY_METHOD(_kv_cache_set_lengths, "($module, /, cache, lengths)", "internal: KVCache.set_lengths."),
    {"_kv_cache_lengths", py__kv_cache_lengths, METH_O, "internal: the current lengths (int64 ndarray)."},
    {"_kv_cache_reset", py__kv_cache_reset, METH_O, "internal: lengths to 0."},
    {"_kv_cache_overflowed", py__kv_cache_overflowed, METH_O, "internal: whether a replayed append did not fit."},
    {"_kv_cache_storage", py__kv_cache_storage, METH_O, "internal: (k, v) tensors over the storage."},
    {NULL, NULL, 0, NULL},
};
