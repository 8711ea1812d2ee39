/* module.c — lightning_core._C module init (NumPy C API import), the runtime functions
 * (backend/device queries, strict mode, threads, CPU features, BLAS, last dispatch, synchronize, GPU
 * matmul precision), the tensor contract validators, DeviceUnavailableError and the lc_status -> Python
 * exception mapping.
 * Tests: tests/python/test_runtime.py, tests/python/test_tensor.py (validators),
 * tests/python/test_device_tensors.py (synchronize, precision). */
#define LCPY_MODULE_MAIN
#include "internal.h"

#include "convert.h"

PyObject *lcpy_DeviceUnavailableError = NULL;

/* ---- status -> exception -------------------------------------------------------------------- */

PyObject *lcpy_exception_for(lc_status status) {
    switch (status) {
    case LC_ERR_INVALID_ARGUMENT:
    case LC_ERR_SHAPE: return PyExc_ValueError;
    case LC_ERR_DTYPE: return PyExc_TypeError;
    case LC_ERR_OUT_OF_MEMORY: return PyExc_MemoryError;
    case LC_ERR_DEVICE_UNAVAILABLE:
        return lcpy_DeviceUnavailableError ? lcpy_DeviceUnavailableError : PyExc_RuntimeError;
    case LC_ERR_UNSUPPORTED: return PyExc_NotImplementedError;
    default: return PyExc_RuntimeError;
    }
}

PyObject *lcpy_raise_status(lc_status status) {
    const char *msg = lc_last_error();
    if (msg == NULL || msg[0] == '\0') msg = lc_status_str(status);
    PyErr_SetString(lcpy_exception_for(status), msg);
    return NULL;
}

/* ---- runtime functions ---------------------------------------------------------------------- */

static PyObject *lcpy_str_or_none(const char *s) {
    if (s == NULL) Py_RETURN_NONE;
    return PyUnicode_FromString(s);
}

static PyObject *py_backend_name(PyObject *self, PyObject *noargs) { return PyUnicode_FromString(lc_backend_name()); }

static PyObject *py_metal_available(PyObject *self, PyObject *noargs) {
    return PyBool_FromLong(lc_device_available(LC_DEVICE_METAL));
}

static PyObject *py_cuda_available(PyObject *self, PyObject *noargs) {
    return PyBool_FromLong(lc_device_available(LC_DEVICE_CUDA));
}

static PyObject *py_cudnn_version(PyObject *self, PyObject *noargs) { return PyLong_FromLong(lc_cudnn_version()); }

static lcpy_sig sig_set_strict_device = LCPY_SIG("set_strict_device", 1, "flag");

static PyObject *py_set_strict_device(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *flag;
    int on;
    if (lcpy_parse(&sig_set_strict_device, args, nargs, kw, &flag) < 0 ||
        lcpy_bool_arg("set_strict_device", "flag", flag, 0, &on) < 0)
        return NULL;
    lc_set_strict_device(on);
    Py_RETURN_NONE;
}

static PyObject *py_strict_device(PyObject *self, PyObject *noargs) { return PyBool_FromLong(lc_strict_device()); }

static PyObject *py_num_threads(PyObject *self, PyObject *noargs) { return PyLong_FromLong(lc_num_threads()); }

static lcpy_sig sig_set_num_threads = LCPY_SIG("set_num_threads", 1, "n");

static PyObject *py_set_num_threads(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *arg;
    if (lcpy_parse(&sig_set_num_threads, args, nargs, kw, &arg) < 0) return NULL;
    int64_t n;
    if (lcpy_int_arg("set_num_threads", "n", arg, 1, INT32_MAX, &n) < 0) return NULL;
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_set_num_threads((int)n);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *py_cpu_features(PyObject *self, PyObject *noargs) { return PyUnicode_FromString(lc_cpu_features()); }

static PyObject *py_blas_name(PyObject *self, PyObject *noargs) { return PyUnicode_FromString(lc_blas_name()); }

static PyObject *py_last_dispatch(PyObject *self, PyObject *noargs) {
    lc_dispatch_info info;
    lc_last_dispatch(&info);
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    const char *keys[5] = {"op", "requested", "selected", "reason", "path"};
    const char *vals[5] = {info.op, NULL, NULL, NULL, info.path};
    if (info.op != NULL) {
        vals[1] = lc_device_name(info.requested);
        vals[2] = lc_device_name(info.selected);
        vals[3] = lc_reason_code(info.reason);
    }
    for (int i = 0; i < 5; i++) {
        PyObject *v = lcpy_str_or_none(vals[i]);
        if (v == NULL || PyDict_SetItemString(d, keys[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

/* ---- device work and GPU matmul precision ---------------------------------------------------- */

static lcpy_sig sig_synchronize = LCPY_SIG("synchronize", 0, "device");

/* synchronize(device="cuda"): waits for the work enqueued on the device; reports an earlier kernel's
 * failure. "cpu" is a no-op; "auto"/"metal" are ValueError; an unavailable device DeviceUnavailableError. */
static PyObject *py_synchronize(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *arg = NULL;
    if (lcpy_parse(&sig_synchronize, args, nargs, kw, &arg) < 0) return NULL;
    lc_device dev = LC_DEVICE_CUDA;
    if (arg != NULL && lcpy_device_arg("synchronize", arg, &dev) < 0) return NULL;
    if (dev == LC_DEVICE_CPU) Py_RETURN_NONE;
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_device_synchronize(dev);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status(st);
    Py_RETURN_NONE;
}

static const char *const lcpy_precision_names[LC_PRECISION_COUNT] = {"highest", "tf32"};

static lcpy_sig sig_set_matmul_precision = LCPY_SIG("set_matmul_precision", 1, "precision");

static PyObject *py_set_matmul_precision(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *arg;
    if (lcpy_parse(&sig_set_matmul_precision, args, nargs, kw, &arg) < 0) return NULL;
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "set_matmul_precision: precision: expected a str ('highest' or 'tf32'), got %s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    for (int p = 0; p < LC_PRECISION_COUNT; p++) {
        if (PyUnicode_CompareWithASCIIString(arg, lcpy_precision_names[p]) == 0) {
            lc_status st = lc_set_matmul_precision((lc_matmul_precision)p);
            if (st != LC_OK) return lcpy_raise_status(st);
            Py_RETURN_NONE;
        }
    }
    PyErr_Format(PyExc_ValueError, "set_matmul_precision: precision: expected 'highest' or 'tf32', got %R", arg);
    return NULL;
}

static PyObject *py_set_static_weights(PyObject *self, PyObject *arg) {
    if (!PyBool_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "set_static_weights: on: expected a bool, got %s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    lc_set_static_weights(arg == Py_True);
    Py_RETURN_NONE;
}

/* prefetch(*tensors): lc_tensor_prefetch of up to 8 lightning_core tensors of one device (a hint; CPU: nothing). */
static PyObject *py_prefetch(PyObject *self, PyObject *args) {
    const Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n > 8) {
        PyErr_Format(PyExc_ValueError, "prefetch: tensors: expected at most 8 tensors, got %zd", n);
        return NULL;
    }
    const lc_tensor_t *ts[8];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(args, i);
        ts[i] = lcpy_tensor_handle(o);
        if (!ts[i]) {
            PyErr_Format(PyExc_TypeError, "prefetch: tensors[%zd]: expected a lightning_core Tensor, got %s", i,
                         Py_TYPE(o)->tp_name);
            return NULL;
        }
    }
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_tensor_prefetch(ts, (int)n);
    Py_END_ALLOW_THREADS
    if (st != LC_OK) return lcpy_raise_status_in("prefetch", st);
    Py_RETURN_NONE;
}

/* cuda_timeline(reset=False): the timeline build's records (lc_cuda_timeline) as bytes of uint64, 4 a record. */
static PyObject *py_cuda_timeline(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kw[] = {"reset", NULL};
    int reset = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:cuda_timeline", kw, &reset)) return NULL;
    const size_t cap = (size_t)1 << 20; /* records */
    unsigned long long *buf = PyMem_Malloc(cap * 4 * sizeof *buf);
    if (!buf) return PyErr_NoMemory();
    size_t n = 0;
    lc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lc_cuda_timeline(buf, cap, &n, reset);
    Py_END_ALLOW_THREADS
    PyObject *out = st == LC_OK ? PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)(n * 4 * sizeof *buf)) : NULL;
    PyMem_Free(buf);
    return st == LC_OK ? out : lcpy_raise_status(st);
}

static PyObject *py_get_static_weights(PyObject *self, PyObject *noargs) { return PyBool_FromLong(lc_get_static_weights()); }

static PyObject *py_get_matmul_precision(PyObject *self, PyObject *noargs) {
    int p = (int)lc_get_matmul_precision();
    if (p < 0 || p >= LC_PRECISION_COUNT) p = 0;
    return PyUnicode_FromString(lcpy_precision_names[p]);
}

/* ---- contract validators -------------------------------------------------------------------- */

/* A shape/strides argument (tuple or list of ints, or a bare int for 1-D) into dims[]; *ndim receives
 * its length. Values of any sign pass: the C validators judge them and name the offending entry. */
int lcpy_shape_arg(const char *fn, const char *name, PyObject *obj, int64_t *dims, int *ndim) {
    if (PyLong_Check(obj) && !PyBool_Check(obj)) {
        if (lcpy_int_arg(fn, name, obj, INT64_MIN, INT64_MAX, &dims[0]) < 0) return -1;
        *ndim = 1;
        return 0;
    }
    if (!PyTuple_Check(obj) && !PyList_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a tuple or list of ints, got %s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *tup = PySequence_Tuple(obj); /* a list may change under __index__ calls */
    if (tup == NULL) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(tup);
    if (n < 1 || n > LC_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: %s: expected 1..%d dimensions, got %zd", fn, name, LC_MAX_DIMS, n);
        Py_DECREF(tup);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(tup, i);
        char label[64];
        snprintf(label, sizeof label, "%s[%zd]", name, i);
        if (lcpy_int_arg(fn, label, item, INT64_MIN, INT64_MAX, &dims[i]) < 0) {
            Py_DECREF(tup);
            return -1;
        }
    }
    Py_DECREF(tup);
    *ndim = (int)n;
    return 0;
}

PyObject *lcpy_raise_status_in(const char *fn, lc_status st) {
    const char *msg = lc_last_error();
    if (msg == NULL || msg[0] == '\0') msg = lc_status_str(st);
    PyErr_Format(lcpy_exception_for(st), "%s: %s", fn, msg);
    return NULL;
}

static lcpy_sig sig_validate_shape = LCPY_SIG("validate_shape", 1, "shape");

static PyObject *py_validate_shape(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *arg;
    if (lcpy_parse(&sig_validate_shape, args, nargs, kw, &arg) < 0) return NULL;
    int64_t dims[LC_MAX_DIMS];
    int nd = 0;
    if (lcpy_shape_arg("validate_shape", "shape", arg, dims, &nd) < 0) return NULL;
    lc_status st = lc_shape_validate("shape", nd, dims);
    if (st != LC_OK) return lcpy_raise_status_in("validate_shape", st);
    Py_RETURN_NONE;
}

static lcpy_sig sig_validate_view = LCPY_SIG("validate_view", 4, "storage_elems", "shape", "strides", "offset");

static PyObject *py_validate_view(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    const char *fn = "validate_view";
    PyObject *v[4];
    if (lcpy_parse(&sig_validate_view, args, nargs, kwnames, v) < 0) return NULL;
    int64_t storage, offset, shape[LC_MAX_DIMS], strides[LC_MAX_DIMS];
    int nd = 0, nds = 0;
    if (lcpy_int_arg(fn, "storage_elems", v[0], INT64_MIN, INT64_MAX, &storage) < 0) return NULL;
    if (lcpy_shape_arg(fn, "shape", v[1], shape, &nd) < 0) return NULL;
    if (v[2] == Py_None) {
        int64_t s = 1;
        for (int i = nd - 1; i >= 0; i--) {
            strides[i] = s;
            if (shape[i] > 0 && s <= INT64_MAX / shape[i]) s *= shape[i];
        }
        nds = nd;
    } else if (lcpy_shape_arg(fn, "strides", v[2], strides, &nds) < 0) {
        return NULL;
    }
    if (nds != nd) {
        PyErr_Format(PyExc_ValueError, "%s: strides: expected %d entries like shape, got %d", fn, nd, nds);
        return NULL;
    }
    if (lcpy_int_arg(fn, "offset", v[3], INT64_MIN, INT64_MAX, &offset) < 0) return NULL;
    if (storage < 1) {
        PyErr_Format(PyExc_ValueError, "%s: storage_elems: expected an int >= 1, got %lld", fn, (long long)storage);
        return NULL;
    }
    lc_status st = lc_view_validate(storage, nd, shape, strides, offset);
    if (st != LC_OK) return lcpy_raise_status_in(fn, st);
    Py_RETURN_NONE;
}

/* ---- module --------------------------------------------------------------------------------- */


static PyMethodDef lcpy_runtime_methods[] = {
    LCPY_NOARGS(backend_name, "'cuda' when a CUDA GPU is usable, else 'cpu'."),
    LCPY_NOARGS(metal_available, "Always False on this Linux build."),
    LCPY_NOARGS(cuda_available, "True when the CUDA backend is built and a GPU is present."),
    LCPY_NOARGS(cudnn_version, "cuDNN's version number when the CUDA backend loaded it for sdpa's fused prefill "
                               "(e.g. 91900), else 0."),
    LCPY_METHOD(set_strict_device, "($module, /, flag)", "Strict device mode on/off (unavailable device -> error)."),
    LCPY_NOARGS(strict_device, "Whether strict device mode is on."),
    LCPY_NOARGS(num_threads, "CPU worker threads used by kernels."),
    LCPY_METHOD(set_num_threads, "($module, /, n)", "Sets the CPU worker threads (n >= 1)."),
    LCPY_NOARGS(cpu_features, "Run-time detected CPU features, e.g. 'avx2 fma avx512f'."),
    LCPY_NOARGS(blas_name, "'openblas' or 'none' (CPU large-matmul library)."),
    LCPY_NOARGS(last_dispatch, "Dict of the last op on this thread: op, requested, selected, reason, path."),
    LCPY_METHOD(synchronize, "($module, /, device='cuda')",
                "Waits for the work enqueued on the device ('cpu': no-op); raises an earlier GPU kernel's error."),
    LCPY_METHOD(set_matmul_precision, "($module, /, precision)",
                "Float32 GPU matmul precision: 'highest' (exact float32, default) or 'tf32' (tensor cores)."),
    LCPY_NOARGS(get_matmul_precision, "The float32 GPU matmul precision: 'highest' or 'tf32'."),
    {"set_static_weights", py_set_static_weights, METH_O,
     "set_static_weights($module, on, /)\n--\n\nThis thread's promise that no kernel in flight writes the weight of its "
     "linear-family calls (lets the CUDA decode GEMV load w before the previous kernel ends); see static_weights()."},
    {"prefetch", py_prefetch, METH_VARARGS,
     "prefetch($module, *tensors)\n--\n\nAsks the tensors' device (up to 8 tensors, one device) to bring their bytes "
     "into its cache ahead of the kernels that read them: on CUDA one kernel on the stream that waits for the work "
     "before it, then requests each tensor's span into L2 (captured in graphs like any launch); on the CPU nothing. "
     "A hint: no value changes."},
    {"cuda_timeline", (PyCFunction)(void (*)(void))py_cuda_timeline, METH_VARARGS | METH_KEYWORDS,
     "cuda_timeline($module, /, reset=False)\n--\n\nThe timeline build's records (cmake -DLC_TIMELINE=ON; "
     "lc_cuda_timeline in runtime.h) as bytes of uint64, 4 a record; NotImplementedError in other builds."},
    LCPY_NOARGS(get_static_weights, "This thread's static-weights promise (bool; default False)."),
    LCPY_METHOD(validate_shape, "($module, /, shape)", "None when the shape is valid, else ValueError."),
    LCPY_METHOD(validate_view, "($module, /, storage_elems, shape, strides, offset)",
              "None when the view fits a storage of storage_elems elements, else ValueError."),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef lcpy_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "lightning_core._C",
    .m_doc = "Lightning Core C extension: ops over NumPy arrays and CPU/CUDA tensors, tensors and runtime queries "
             "(docs/python_api.md).",
    .m_size = -1,
    .m_methods = lcpy_runtime_methods,
};

PyMODINIT_FUNC PyInit__C(void) {
    import_array();
    PyObject *m = PyModule_Create(&lcpy_module);
    if (m == NULL) return NULL;
    if (PyModule_AddFunctions(m, lcpy_op_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_trace_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_tune_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_dtype_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_sdpa_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_index_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_llm_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_decode_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_session_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_graph_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_plan_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_dlpack_methods) < 0) goto fail;
    if (PyModule_AddFunctions(m, lcpy_dist_methods) < 0) goto fail;
    if (lcpy_DeviceUnavailableError == NULL) {
        lcpy_DeviceUnavailableError = PyErr_NewExceptionWithDoc(
            "lightning_core.DeviceUnavailableError",
            "A requested device is not available and strict device mode is on.", PyExc_RuntimeError, NULL);
        if (lcpy_DeviceUnavailableError == NULL) goto fail;
    }
    Py_INCREF(lcpy_DeviceUnavailableError);
    if (PyModule_AddObject(m, "DeviceUnavailableError", lcpy_DeviceUnavailableError) < 0) {
        Py_DECREF(lcpy_DeviceUnavailableError);
        goto fail;
    }
    if (PyModule_AddStringConstant(m, "__version__", lc_version()) < 0) goto fail;
    if (lcpy_tensor_register(m) < 0) goto fail;
    if (lcpy_session_register(m) < 0) goto fail;
    if (lcpy_graph_register(m) < 0) goto fail;
    if (lcpy_plan_register(m) < 0) goto fail;
    if (lcpy_dist_register(m) < 0) goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
