/* decode_py.c — the fused decode step's bindings (ops.h lc_decode_program_*; used by lightning_core.models'
 * engine through models/fused.py, which keeps the tensors and caches alive):
 *   _decode_program_new(arch, config, tensors, layers, caches) -> capsule
 *     arch 'gpt2' | 'llama'; config (heads, kv_heads, eps, act, window, rope_theta, rope_scaling): act
 *     'gelu_tanh' | 'gelu' (GPT-2) or None, rope_scaling None or HF's dict; tensors (embed, pos_embed, final_w,
 *     final_b, lm_head);
 *     layers: a sequence of 12-tuples (norm1_w, norm1_b, w_qkv, b_qkv, w_o, b_o, norm2_w, norm2_b, w_up, b_up,
 *     w_down, b_down), Tensors or None; caches: KVCache capsules, one a layer.
 *   _decode_program_step(program, token, next_token=None, logits=None)
 * Tests: tests/python/test_decode_program.py. */
#include <string.h>

#include "call.h"
#include "internal.h"

static const char *const DP_CAPSULE = "lightning_core.decode_program";
static const char *const DP_FN = "decode_program";

static void dp_capsule_free(PyObject *cap) {
    lc_decode_program_free((lc_decode_program_t *)PyCapsule_GetPointer(cap, DP_CAPSULE));
}

/* a Tensor (or None where optional) -> its handle */
static int dp_tensor(const char *name, PyObject *obj, int optional, const lc_tensor_t **out) {
    *out = NULL;
    if (obj == NULL || obj == Py_None) {
        if (optional) return 0;
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a lightning_core Tensor, got None", DP_FN, name);
        return -1;
    }
    lc_tensor_t *t = lcpy_tensor_handle(obj);
    if (!t) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a lightning_core Tensor, got %s", DP_FN, name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = t;
    return 0;
}

static lcpy_sig sig_dp_new = LCPY_SIG("_decode_program_new", 5, "arch", "config", "tensors", "layers", "caches");

/* a tuple argument of exactly n items */
static int dp_tuple(const char *name, PyObject *obj, Py_ssize_t n, const char *what) {
    if (PyTuple_Check(obj) && PyTuple_GET_SIZE(obj) == n) return 0;
    PyErr_Format(PyExc_TypeError, "%s: %s: expected a %zd-tuple %s, got %s", DP_FN, name, n, what, Py_TYPE(obj)->tp_name);
    return -1;
}

static PyObject *py__decode_program_new(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    (void)self;
    PyObject *v[5];
    if (lcpy_parse(&sig_dp_new, args, nargs, kw, v) < 0) return NULL;
    lc_decode_model m;
    memset(&m, 0, sizeof m);
    const char *arch = PyUnicode_Check(v[0]) ? PyUnicode_AsUTF8(v[0]) : NULL;
    if (!arch || (strcmp(arch, "gpt2") != 0 && strcmp(arch, "llama") != 0)) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: arch: expected 'gpt2' or 'llama', got %R", DP_FN, v[0]);
        return NULL;
    }
    m.arch = strcmp(arch, "gpt2") == 0 ? LC_DECODE_GPT2 : LC_DECODE_LLAMA;
    if (dp_tuple("config", v[1], 7, "(heads, kv_heads, eps, act, window, rope_theta, rope_scaling)") < 0 ||
        dp_tuple("tensors", v[2], 5, "(embed, pos_embed, final_w, final_b, lm_head)") < 0)
        return NULL;
    PyObject *const *cf = &PyTuple_GET_ITEM(v[1], 0), *const *ts = &PyTuple_GET_ITEM(v[2], 0);
    if (lcpy_int_arg(DP_FN, "heads", cf[0], 1, 4096, &m.heads) < 0 || lcpy_int_arg(DP_FN, "kv_heads", cf[1], 1, 4096, &m.kv_heads) < 0 ||
        lcpy_positive_float_arg(DP_FN, "eps", cf[2], 1e-5, &m.eps) < 0 || lcpy_int_arg(DP_FN, "window", cf[4], 0, INT64_MAX, &m.window) < 0)
        return NULL;
    m.act = LC_ACT_NONE;
    if (cf[3] != Py_None) {
        const char *a = PyUnicode_Check(cf[3]) ? PyUnicode_AsUTF8(cf[3]) : NULL;
        if (!a || (strcmp(a, "gelu_tanh") != 0 && strcmp(a, "gelu") != 0)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s: act: expected 'gelu_tanh', 'gelu' or None, got %R", DP_FN, cf[3]);
            return NULL;
        }
        m.act = strcmp(a, "gelu") == 0 ? LC_ACT_GELU_ERF : LC_ACT_GELU_TANH;
    }
    lc_rope_options ro;
    memset(&ro, 0, sizeof ro);
    if (lcpy_positive_float_arg(DP_FN, "rope_theta", cf[5], 10000.0, &ro.theta) < 0 ||
        lcpy_rope_scaling(DP_FN, "rope_scaling", cf[6], &ro) < 0)
        return NULL;
    m.rope = &ro;
    if (dp_tensor("embed", ts[0], 0, &m.embed) < 0 || dp_tensor("pos_embed", ts[1], 1, &m.pos_embed) < 0 ||
        dp_tensor("final_w", ts[2], 0, &m.final_w) < 0 || dp_tensor("final_b", ts[3], 1, &m.final_b) < 0 ||
        dp_tensor("lm_head", ts[4], 0, &m.lm_head) < 0)
        return NULL;
    PyObject *layers = PySequence_Fast(v[3], "decode_program: layers: expected a sequence of 12-tuples");
    if (!layers) return NULL;
    PyObject *caches = PySequence_Fast(v[4], "decode_program: caches: expected a sequence of KVCache capsules");
    if (!caches) {
        Py_DECREF(layers);
        return NULL;
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(layers);
    lc_decode_layer *ls = NULL;
    PyObject *r = NULL;
    if (n < 1 || PySequence_Fast_GET_SIZE(caches) != n) {
        PyErr_Format(PyExc_ValueError, "%s: layers, caches: expected one cache a layer (>= 1 layer), got %zd layers and %zd caches",
                     DP_FN, n, PySequence_Fast_GET_SIZE(caches));
        goto done;
    }
    ls = calloc((size_t)n, sizeof *ls);
    if (!ls) {
        PyErr_NoMemory();
        goto done;
    }
    static const char *const fields[12] = {"norm1_w", "norm1_b", "w_qkv", "b_qkv", "w_o",    "b_o",
                                           "norm2_w", "norm2_b", "w_up",  "b_up",  "w_down", "b_down"};
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(layers, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 12) {
            PyErr_Format(PyExc_TypeError, "%s: layers[%zd]: expected a 12-tuple of Tensors or None, got %s", DP_FN, i,
                         Py_TYPE(t)->tp_name);
            goto done;
        }
        const lc_tensor_t **slot[12] = {&ls[i].norm1_w, &ls[i].norm1_b, &ls[i].w_qkv,   &ls[i].b_qkv,
                                        &ls[i].w_o,     &ls[i].b_o,     &ls[i].norm2_w, &ls[i].norm2_b,
                                        &ls[i].w_up,    &ls[i].b_up,    &ls[i].w_down,  &ls[i].b_down};
        for (int f = 0; f < 12; f++) {
            char name[48];
            snprintf(name, sizeof name, "layers[%zd].%s", i, fields[f]);
            if (dp_tensor(name, PyTuple_GET_ITEM(t, f), 1, slot[f]) < 0) goto done;
        }
        PyObject *c = PySequence_Fast_GET_ITEM(caches, i);
        ls[i].cache = PyCapsule_CheckExact(c) ? PyCapsule_GetPointer(c, "lightning_core.kv_cache") : NULL;
        if (!ls[i].cache) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: caches[%zd]: expected a KVCache's capsule, got %s", DP_FN, i, Py_TYPE(c)->tp_name);
            goto done;
        }
    }
    m.n_layers = n;
    m.layers = ls;
    lc_decode_program_t *p = NULL;
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_decode_program_new(&m, &p);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) {
        lcpy_raise_status(st);
        goto done;
    }
    r = PyCapsule_New(p, DP_CAPSULE, dp_capsule_free);
    if (!r) lc_decode_program_free(p);
done:
    free(ls);
    Py_DECREF(layers);
    Py_DECREF(caches);
    return r;
}

static lcpy_sig sig_dp_step = LCPY_SIG("_decode_program_step", 2, "program", "token", "next_token", "logits");

static PyObject *py__decode_program_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    (void)self;
    PyObject *v[4];
    if (lcpy_parse(&sig_dp_step, args, nargs, kw, v) < 0) return NULL;
    lc_decode_program_t *p = PyCapsule_GetPointer(v[0], DP_CAPSULE);
    if (!p) return NULL;
    const lc_tensor_t *tok, *nxt, *lg;
    if (dp_tensor("token", v[1], 0, &tok) < 0 || dp_tensor("next_token", v[2], 1, &nxt) < 0 ||
        dp_tensor("logits", v[3], 1, &lg) < 0)
        return NULL;
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_decode_program_step(p, tok, (lc_tensor_t *)nxt, (lc_tensor_t *)lg);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

PyMethodDef lcpy_decode_methods[] = {
    LCPY_METHOD(_decode_program_new,
                "($module, /, arch, config, tensors, layers, caches)",
                "internal: a fused decode step's program (lightning_core.models.fused)."),
    LCPY_METHOD(_decode_program_step, "($module, /, program, token, next_token=None, logits=None)",
                "internal: one fused decode step."),
    {NULL, NULL, 0, NULL},
};
