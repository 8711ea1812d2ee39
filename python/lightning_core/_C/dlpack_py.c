/* dlpack_py.c — zero-copy interop of lightning_core tensors (docs/python_api.md, "Interop: DLPack, CUDA
 * array interface, buffer protocol"):
 *  - Tensor.__dlpack__(*, stream, max_version, dl_device, copy) / __dlpack_device__(): export as a
 *    DLPack capsule ("dltensor", or "dltensor_versioned" for max_version >= (1, 0)) whose manager
 *    context holds a reference to the tensor object; shape/strides in elements, byte_offset = offset.
 *  - from_dlpack(x): import any __dlpack__ producer (torch, CuPy, JAX, NumPy, our own tensors) or a raw
 *    capsule without copying, through lc_tensor_wrap_external (the producer's deleter runs when the
 *    last lightning_core tensor over the memory is freed).
 *  - __cuda_array_interface__ (v3) of CUDA tensors; the buffer protocol (and a zero-copy __array__) of
 *    CPU tensors.
 * Stream rules: all library GPU work runs on one non-blocking stream S (src/backend/cuda/cuda_context.h).
 * Export with stream=C: an event recorded on S after the work enqueued so far, and C waits on it
 * (None = the legacy default stream, -1 = no ordering). Import: the producer is handed S as the
 * consumer stream; a raw capsule is assumed ready on the legacy default stream (S waits on it).
 * Tests: tests/python/test_dlpack.py. */
#include "convert.h"
#include "dlpack.h"

#include <stdlib.h>
#include <string.h>

#ifdef LC_HAVE_CUDA
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/cuda_graph.h"
#include "core/backend.h"
#endif

/* ---- the library's CUDA stream and event ordering ------------------------------------------- */

#ifdef LC_HAVE_CUDA
static cudaEvent_t lcpy_order_event; /* reused: used only with the GIL held, record + wait back to back */

/* Makes `waiter` wait for the work enqueued on `signaller` so far. 0, or -1 with RuntimeError. */
static int lcpy_cuda_order(const char *fn, cudaStream_t waiter, cudaStream_t signaller) {
    if (waiter == signaller) return 0;
    if (lc_cuda_capture_guard("DLPack stream ordering") != LC_OK) { /* an event would join the capture */
        PyErr_Format(PyExc_BufferError, "%s: %s", fn, lc_last_error());
        return -1;
    }
    cudaError_t err = cudaSuccess;
    if (lcpy_order_event == NULL) err = cudaEventCreateWithFlags(&lcpy_order_event, cudaEventDisableTiming);
    if (err == cudaSuccess) err = cudaEventRecord(lcpy_order_event, signaller);
    if (err == cudaSuccess) err = cudaStreamWaitEvent(waiter, lcpy_order_event, 0);
    if (err != cudaSuccess) {
        PyErr_Format(PyExc_RuntimeError, "%s: could not order the CUDA streams: %s", fn, cudaGetErrorString(err));
        return -1;
    }
    return 0;
}

/* The library context, starting it; NULL without an exception when there is no usable GPU. */
static const lc_cuda_ctx *lcpy_cuda(void) { return lc_cuda_available() ? lc_cuda_ctx_get() : NULL; }
#endif

/* The DLPack device of a tensor. */
static DLDevice lcpy_dl_device_of(const lc_tensor_t *t) {
    DLDevice d = {kDLCPU, 0};
#ifdef LC_HAVE_CUDA
    if (lc_tensor_device(t) == LC_DEVICE_CUDA) {
        const lc_cuda_ctx *ctx = lcpy_cuda();
        d.device_type = kDLCUDA;
        d.device_id = ctx ? ctx->device : 0;
    }
#endif
    return d;
}

/* ---- export: __dlpack__ / __dlpack_device__ ------------------------------------------------- */

typedef struct lcpy_export {
    union {
        DLManagedTensor legacy;
        DLManagedTensorVersioned versioned;
    } m; /* first: the managed tensor's address is the export's */
    PyObject *owner; /* the tensor object whose storage is exported (strong reference) */
    int64_t shape[LC_MAX_DIMS];
    int64_t strides[LC_MAX_DIMS];
} lcpy_export;

static void lcpy_export_free(lcpy_export *e) {
    /* A consumer may call the deleter from any thread, with or without the GIL. */
    if (Py_IsInitialized()) {
        PyGILState_STATE g = PyGILState_Ensure();
        Py_XDECREF(e->owner);
        PyGILState_Release(g);
    }
    free(e);
}
static void lcpy_export_deleter_legacy(DLManagedTensor *self) { lcpy_export_free((lcpy_export *)self); }
static void lcpy_export_deleter_versioned(DLManagedTensorVersioned *self) { lcpy_export_free((lcpy_export *)self); }

/* An unconsumed capsule owns its managed tensor: release it (a consumed one was renamed "used_..."). */
static void lcpy_capsule_destructor(PyObject *cap) {
    if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
        DLManagedTensorVersioned *m = PyCapsule_GetPointer(cap, "dltensor_versioned");
        if (m && m->deleter) m->deleter(m);
    } else if (PyCapsule_IsValid(cap, "dltensor")) {
        DLManagedTensor *m = PyCapsule_GetPointer(cap, "dltensor");
        if (m && m->deleter) m->deleter(m);
    }
}

/* A (device_type, device_id) pair of ints; -1 with TypeError. */
static int lcpy_int_pair(const char *fn, const char *name, PyObject *obj, long long *a, long long *b) {
    PyObject *tup = PySequence_Check(obj) && !PyUnicode_Check(obj) ? PySequence_Tuple(obj) : NULL;
    if (tup == NULL || PyTuple_GET_SIZE(tup) != 2 || !PyLong_Check(PyTuple_GET_ITEM(tup, 0)) ||
        !PyLong_Check(PyTuple_GET_ITEM(tup, 1))) {
        Py_XDECREF(tup);
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s: expected a tuple of two ints, got %R", fn, name, obj);
        return -1;
    }
    int over_a = 0, over_b = 0;
    *a = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(tup, 0), &over_a);
    *b = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(tup, 1), &over_b);
    Py_DECREF(tup);
    if (PyErr_Occurred()) return -1;
    if (over_a || over_b) { /* no device type, id or version is that large: a value error, not OverflowError */
        PyErr_Format(PyExc_ValueError, "%s: %s: %R is out of range (each int must fit in 64 bits)", fn, name, obj);
        return -1;
    }
    return 0;
}

/* A copy of `t` (gathered contiguous) on `dev`, as a new tensor object; NULL with an exception. */
static PyObject *lcpy_tensor_copy_to(const char *fn, const lc_tensor_t *t, lc_device dev) {
    lc_tensor_t *c = NULL;
    lc_status st = lc_tensor_new(lc_tensor_dtype(t), dev, lc_tensor_ndim(t), lc_tensor_shape(t), &c);
    if (st != LC_OK) return lcpy_raise_status_in(fn, st);
    size_t nbytes = lc_tensor_nbytes(t);
    const lc_device src_dev = lc_tensor_device(t);
    void *tmp = NULL;
    int nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    if (dev == LC_DEVICE_CPU) {
        st = lc_tensor_to_host(t, lc_tensor_data(c), nbytes); /* gathers; waits for a GPU source */
    } else if (src_dev == LC_DEVICE_CPU && lc_tensor_is_contiguous(t)) {
        st = lc_tensor_copy_from_host(c, lc_tensor_data(t), nbytes);
#ifdef LC_HAVE_CUDA
    } else if (src_dev == LC_DEVICE_CUDA && lc_tensor_is_contiguous(t)) {
        st = lc_cuda_copy_d2d(lc_tensor_data(c), lc_tensor_data(t), nbytes); /* enqueued on the stream */
#endif
    } else { /* strided source to the GPU: through a host copy */
        tmp = malloc(nbytes ? nbytes : 1);
        if (tmp == NULL) nomem = 1, st = LC_ERR_OUT_OF_MEMORY;
        if (st == LC_OK) st = lc_tensor_to_host(t, tmp, nbytes);
        if (st == LC_OK) st = lc_tensor_copy_from_host(c, tmp, nbytes);
    }
    Py_END_ALLOW_THREADS
    free(tmp);
    if (st != LC_OK) {
        lc_tensor_free(c);
        if (nomem) return PyErr_NoMemory();
        return lcpy_raise_status_in(fn, st);
    }
    return lcpy_tensor_adopt(c);
}

static lcpy_sig sig_dlpack = LCPY_SIG("__dlpack__", 0, "stream", "max_version", "dl_device", "copy");

PyObject *lcpy_tensor_dlpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    const char *fn = "__dlpack__";
    lc_tensor_t *t = lcpy_tensor_handle(self);
    if (t == NULL) {
        PyErr_SetString(PyExc_TypeError, "__dlpack__: expected a lightning_core tensor");
        return NULL;
    }
    if (nargs > 0) {
        PyErr_Format(PyExc_TypeError, "__dlpack__() takes keyword-only arguments (%zd positional given)", nargs);
        return NULL;
    }
    PyObject *v[4];
    if (lcpy_parse(&sig_dlpack, args, 0, kwnames, v) < 0) return NULL;
    PyObject *stream_obj = v[0], *maxv_obj = v[1], *dldev_obj = v[2], *copy_obj = v[3];

    /* copy: None (only if needed) | True (always) | False (never) */
    int copy = -1;
    if (copy_obj != NULL && copy_obj != Py_None) {
        if (!PyBool_Check(copy_obj)) {
            PyErr_Format(PyExc_TypeError, "%s: copy: expected None, True or False, got %R", fn, copy_obj);
            return NULL;
        }
        copy = copy_obj == Py_True;
    }
    /* max_version: (major, minor) the consumer supports; versioned capsule from 1.0 */
    int versioned = 0;
    if (maxv_obj != NULL && maxv_obj != Py_None) {
        long long major, minor;
        if (lcpy_int_pair(fn, "max_version", maxv_obj, &major, &minor) < 0) return NULL;
        versioned = major >= 1;
    }
    /* dl_device: the device the consumer wants the capsule on (default: the tensor's) */
    DLDevice have = lcpy_dl_device_of(t);
    lc_device target = lc_tensor_device(t);
    if (dldev_obj != NULL && dldev_obj != Py_None) {
        long long dt, did;
        if (lcpy_int_pair(fn, "dl_device", dldev_obj, &dt, &did) < 0) return NULL;
        if (dt == have.device_type && did == have.device_id) {
            /* same device */
        } else if (dt == kDLCPU && did == 0) {
            target = LC_DEVICE_CPU;
        } else if (dt == kDLCUDA) {
#ifdef LC_HAVE_CUDA
            const lc_cuda_ctx *ctx = lcpy_cuda();
            if (ctx == NULL || did != ctx->device) {
                PyErr_Format(PyExc_BufferError, "%s: dl_device: (%lld, %lld) is not this library's CUDA device (%s)",
                             fn, dt, did, ctx ? "another id" : "no usable GPU here");
                return NULL;
            }
            target = LC_DEVICE_CUDA;
#else
            PyErr_Format(PyExc_BufferError, "%s: dl_device: (%lld, %lld): this build has no CUDA backend", fn, dt, did);
            return NULL;
#endif
        } else {
            PyErr_Format(PyExc_BufferError,
                         "%s: dl_device: expected (1, 0) for the CPU or (2, id) for CUDA, got (%lld, %lld)", fn, dt,
                         did);
            return NULL;
        }
    }
    if (target != lc_tensor_device(t) && copy == 0) {
        PyErr_Format(PyExc_BufferError, "%s: the tensor lives on %s; dl_device asks for %s, which needs a copy "
                     "(copy=False)", fn, lc_device_name(lc_tensor_device(t)), lc_device_name(target));
        return NULL;
    }
    /* stream: CUDA target: None (legacy default stream) | -1 (no ordering) | 1 | 2 | a cudaStream_t;
     * CPU target: None only. */
    long long stream = 0;
    int stream_none = stream_obj == NULL || stream_obj == Py_None;
    if (!stream_none) {
        if (!PyLong_Check(stream_obj) || PyBool_Check(stream_obj)) {
            PyErr_Format(PyExc_TypeError, "%s: stream: expected None or an int, got %s", fn, Py_TYPE(stream_obj)->tp_name);
            return NULL;
        }
        int over = 0;
        stream = PyLong_AsLongLongAndOverflow(stream_obj, &over);
        if (stream == -1 && PyErr_Occurred()) return NULL;
        if (over) { /* no stream handle is that large: ValueError (as for other bad values), not OverflowError */
            PyErr_Format(PyExc_ValueError, "%s: stream: %R is out of range (a cudaStream_t fits in 64 bits)", fn,
                         stream_obj);
            return NULL;
        }
        if (target == LC_DEVICE_CPU) {
            PyErr_Format(PyExc_ValueError, "%s: stream: a CPU capsule takes stream=None only, got %lld", fn, stream);
            return NULL;
        }
        if (stream == 0 || stream < -1) {
            PyErr_Format(PyExc_ValueError,
                         "%s: stream: expected None, -1, 1 (legacy default), 2 (per-thread default) or a "
                         "cudaStream_t, got %lld%s", fn, stream, stream == 0 ? " (0 is ambiguous)" : "");
            return NULL;
        }
    }

    PyObject *owner = self;
    Py_INCREF(owner);
    int copied = 0;
    if (copy == 1 || target != lc_tensor_device(t)) {
        Py_DECREF(owner);
        owner = lcpy_tensor_copy_to(fn, t, target);
        if (owner == NULL) return NULL;
        t = lcpy_tensor_handle(owner);
        copied = 1;
    }
    const int writable = lc_tensor_is_writable(t) || copied;
    if (!writable && !versioned) {
        Py_DECREF(owner);
        PyErr_Format(PyExc_BufferError,
                     "%s: the tensor is read-only and a legacy (unversioned) capsule cannot say so; ask for "
                     "max_version=(1, 0) or copy=True", fn);
        return NULL;
    }
#ifdef LC_HAVE_CUDA
    if (target == LC_DEVICE_CUDA && stream != -1) {
        /* The consumer's stream waits for the work enqueued on ours (that writes the tensor or the copy). */
        const lc_cuda_ctx *ctx = lcpy_cuda();
        cudaStream_t consumer = stream_none ? cudaStreamLegacy : (cudaStream_t)(intptr_t)stream;
        if (ctx == NULL || lcpy_cuda_order(fn, consumer, ctx->stream) < 0) {
            if (ctx == NULL) PyErr_Format(PyExc_BufferError, "%s: no usable GPU", fn);
            Py_DECREF(owner);
            return NULL;
        }
    }
#endif

    lcpy_export *e = calloc(1, sizeof *e);
    if (e == NULL) {
        Py_DECREF(owner);
        return PyErr_NoMemory();
    }
    e->owner = owner;
    const int nd = lc_tensor_ndim(t);
    for (int i = 0; i < nd; i++) {
        e->shape[i] = lc_tensor_dim(t, i);
        e->strides[i] = lc_tensor_stride(t, i);
    }
    const size_t es = lc_dtype_size(lc_tensor_dtype(t));
    const uint64_t byte_offset = (uint64_t)lc_tensor_offset(t) * es;
    DLTensor dl;
    dl.data = (char *)lc_tensor_data(t) - byte_offset; /* the storage base */
    dl.device = lcpy_dl_device_of(t);
    dl.ndim = nd;
    const lc_dtype_traits *tr = lc_dtype_traits_of(lc_tensor_dtype(t)); /* (kDLFloat, 32/64/16), (kDLBfloat, 16) */
    dl.dtype.code = tr ? tr->dlpack_code : (uint8_t)kDLFloat;
    dl.dtype.bits = tr ? tr->dlpack_bits : (uint8_t)(es * 8);
    dl.dtype.lanes = 1;
    dl.shape = e->shape;
    dl.strides = e->strides;
    dl.byte_offset = byte_offset;
    const char *name;
    if (versioned) {
        e->m.versioned.version.major = LCPY_DLPACK_MAJOR_VERSION;
        e->m.versioned.version.minor = LCPY_DLPACK_MINOR_VERSION;
        e->m.versioned.manager_ctx = e;
        e->m.versioned.deleter = lcpy_export_deleter_versioned;
        e->m.versioned.flags = (writable ? 0 : DLPACK_FLAG_BITMASK_READ_ONLY) | (copied ? DLPACK_FLAG_BITMASK_IS_COPIED : 0);
        e->m.versioned.dl_tensor = dl;
        name = "dltensor_versioned";
    } else {
        e->m.legacy.manager_ctx = e;
        e->m.legacy.deleter = lcpy_export_deleter_legacy;
        e->m.legacy.dl_tensor = dl;
        name = "dltensor";
    }
    PyObject *cap = PyCapsule_New(e, name, lcpy_capsule_destructor);
    if (cap == NULL) {
        Py_DECREF(owner);
        free(e);
        return NULL;
    }
    return cap;
}

PyObject *lcpy_tensor_dlpack_device(PyObject *self, PyObject *noargs) {
    lc_tensor_t *t = lcpy_tensor_handle(self);
    if (t == NULL) {
        PyErr_SetString(PyExc_TypeError, "__dlpack_device__: expected a lightning_core tensor");
        return NULL;
    }
    DLDevice d = lcpy_dl_device_of(t);
    return Py_BuildValue("(ii)", (int)d.device_type, (int)d.device_id);
}

/* ---- import: from_dlpack -------------------------------------------------------------------- */

typedef struct lcpy_import {
    void *managed; /* DLManagedTensor or DLManagedTensorVersioned */
    int versioned;
    int cuda;      /* device memory: lc kernels may still be queued on it at release */
} lcpy_import;

#ifdef LC_HAVE_CUDA
/* Before device memory goes back to its producer (whose allocator may hand it to work on another
 * stream at once), let the lc work queued on our stream finish. Free when the stream is idle; never
 * during a graph capture (a query would break it). The GIL, if held, is released while waiting. */
static void lcpy_cuda_drain(void) {
    const lc_cuda_ctx *ctx = lcpy_cuda();
    if (ctx == NULL || lc_cuda_capture_state() != LC_CAPTURE_NONE) return;
    if (cudaStreamQuery(ctx->stream) != cudaErrorNotReady) return;
    PyThreadState *ts = (Py_IsInitialized() && PyGILState_Check()) ? PyEval_SaveThread() : NULL;
    (void)cudaStreamSynchronize(ctx->stream); /* a kernel fault stays for the next lc synchronize */
    if (ts != NULL) PyEval_RestoreThread(ts);
}
#endif

/* Storage deleter (lc_tensor_wrap_external): hands the memory back to its producer. */
static void lcpy_import_release(void *p) {
    lcpy_import *imp = p;
#ifdef LC_HAVE_CUDA
    if (imp->cuda) lcpy_cuda_drain();
#endif
    int py = Py_IsInitialized();
    PyGILState_STATE g = PyGILState_UNLOCKED;
    if (py) g = PyGILState_Ensure(); /* producers' deleters may touch Python objects (NumPy's do) */
    if (imp->versioned) {
        DLManagedTensorVersioned *m = imp->managed;
        if (m->deleter) m->deleter(m);
    } else {
        DLManagedTensor *m = imp->managed;
        if (m->deleter) m->deleter(m);
    }
    if (py) PyGILState_Release(g);
    free(imp);
}

/* "float16", "int64", "bfloat16", "complex64", "bool", "float32x4" ... for messages. */
static void lcpy_dl_dtype_name(DLDataType d, char *buf, size_t size) {
    const char *base;
    switch (d.code) {
    case kDLInt: base = "int"; break;
    case kDLUInt: base = "uint"; break;
    case kDLFloat: base = "float"; break;
    case kDLBfloat: base = "bfloat"; break;
    case kDLComplex: base = "complex"; break;
    case kDLBool: base = "bool"; break;
    case kDLOpaqueHandle: base = "opaque"; break;
    default: base = "code"; break;
    }
    if (d.code == kDLBool && d.bits == 8)
        snprintf(buf, size, "bool");
    else if (d.code > kDLBool)
        snprintf(buf, size, "dtype code %u, %u bits", (unsigned)d.code, (unsigned)d.bits);
    else
        snprintf(buf, size, "%s%u", base, (unsigned)d.bits);
    if (d.lanes != 1) {
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, "x%u", (unsigned)d.lanes);
    }
}

static const char *lcpy_dl_device_name(int32_t type) {
    switch (type) {
    case kDLCPU: return "cpu";
    case kDLCUDA: return "cuda";
    case kDLCUDAHost: return "cuda_host";
    case kDLOpenCL: return "opencl";
    case kDLVulkan: return "vulkan";
    case kDLMetal: return "metal";
    case kDLROCM: return "rocm";
    case kDLROCMHost: return "rocm_host";
    case kDLCUDAManaged: return "cuda_managed";
    case kDLOneAPI: return "oneapi";
    default: return "unknown";
    }
}

/* Wraps the capsule's tensor without a copy and marks the capsule used. `wait_legacy`: the producer made
 * the data ready for the legacy default stream (no stream was negotiated), so our stream waits on it. */
static PyObject *lcpy_consume_capsule(const char *fn, PyObject *cap, int wait_legacy) {
    const char *name = PyCapsule_GetName(cap);
    if (name == NULL && PyErr_Occurred()) return NULL;
    int versioned;
    void *managed;
    DLTensor *dl;
    uint64_t flags = 0;
    if (name != NULL && strcmp(name, "dltensor_versioned") == 0) {
        DLManagedTensorVersioned *m = PyCapsule_GetPointer(cap, name);
        if (m == NULL) return NULL;
        if (m->version.major > LCPY_DLPACK_MAJOR_VERSION) {
            PyErr_Format(PyExc_BufferError, "%s: the capsule is DLPack %u.%u; this library reads DLPack 1.x", fn,
                         (unsigned)m->version.major, (unsigned)m->version.minor);
            return NULL;
        }
        versioned = 1;
        managed = m;
        dl = &m->dl_tensor;
        flags = m->flags;
    } else if (name != NULL && strcmp(name, "dltensor") == 0) {
        DLManagedTensor *m = PyCapsule_GetPointer(cap, name);
        if (m == NULL) return NULL;
        versioned = 0;
        managed = m;
        dl = &m->dl_tensor;
    } else if (name != NULL && strncmp(name, "used_dltensor", 13) == 0) {
        PyErr_Format(PyExc_ValueError, "%s: the DLPack capsule was already consumed (a capsule can be consumed "
                     "once; call x.__dlpack__() again for a new one)", fn);
        return NULL;
    } else {
        PyErr_Format(PyExc_TypeError, "%s: expected a DLPack capsule named 'dltensor' or 'dltensor_versioned', "
                     "got a capsule named %s", fn, name ? name : "NULL");
        return NULL;
    }

    /* dtype */
    lc_dtype dtype = LC_DTYPE_COUNT;
    static const lc_dtype importable[6] = {LC_DTYPE_F32, LC_DTYPE_F64, LC_DTYPE_F16, LC_DTYPE_BF16, LC_DTYPE_I32,
                                           LC_DTYPE_I64};
    for (int i = 0; i < 6 && dl->dtype.lanes == 1; i++) {
        const lc_dtype_traits *tr = lc_dtype_traits_of(importable[i]);
        if (tr && dl->dtype.code == tr->dlpack_code && dl->dtype.bits == tr->dlpack_bits) dtype = importable[i];
    }
    if (dtype == LC_DTYPE_COUNT) {
        char dn[48];
        lcpy_dl_dtype_name(dl->dtype, dn, sizeof dn);
        PyErr_Format(PyExc_TypeError, "%s: x: expected float32, float64, float16, bfloat16, int32 or int64 data, got %s; "
                     "convert it first (a zero-copy import cannot change the dtype)", fn, dn);
        return NULL;
    }
    /* device */
    lc_device dev;
    const int32_t dt = (int32_t)dl->device.device_type;
    if (dt == kDLCPU || dt == kDLCUDAHost) {
        dev = LC_DEVICE_CPU;
    } else if (dt == kDLCUDA || dt == kDLCUDAManaged) {
#ifdef LC_HAVE_CUDA
        const lc_cuda_ctx *ctx = lcpy_cuda();
        if (ctx == NULL) {
            PyErr_Format(PyExc_BufferError, "%s: x lives on %s:%d but there is no usable GPU here", fn,
                         lcpy_dl_device_name(dt), (int)dl->device.device_id);
            return NULL;
        }
        if (dl->device.device_id != ctx->device) {
            PyErr_Format(PyExc_BufferError, "%s: x lives on cuda:%d; lightning_core runs on cuda:%d (no "
                         "cross-device import)", fn, (int)dl->device.device_id, ctx->device);
            return NULL;
        }
        dev = LC_DEVICE_CUDA;
#else
        PyErr_Format(PyExc_BufferError, "%s: x lives on %s:%d but this build has no CUDA backend", fn,
                     lcpy_dl_device_name(dt), (int)dl->device.device_id);
        return NULL;
#endif
    } else {
        PyErr_Format(PyExc_BufferError, "%s: x lives on a %s device (DLPack device type %d); lightning_core "
                     "takes cpu and cuda memory", fn, lcpy_dl_device_name(dt), (int)dt);
        return NULL;
    }
    /* shape and strides (elements) */
    const int nd = dl->ndim;
    if (nd < 1 || nd > LC_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: x: expected 1..%d dimensions (the tensor contract), got %d", fn,
                     LC_MAX_DIMS, nd);
        return NULL;
    }
    int64_t shape[LC_MAX_DIMS], strides[LC_MAX_DIMS];
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        shape[i] = dl->shape[i];
        if (shape[i] <= 0) {
            PyErr_Format(PyExc_ValueError, "%s: x: expected every dimension > 0 (the tensor contract), got "
                         "%lld at dim %d", fn, (long long)shape[i], i);
            return NULL;
        }
        /* a size-1 dimension's stride is meaningless (producers put anything there): canonical */
        strides[i] = (dl->strides == NULL || shape[i] == 1) ? s : dl->strides[i];
        if (strides[i] < 0) {
            PyErr_Format(PyExc_BufferError, "%s: x has a negative stride (%lld at dim %d), which lightning_core "
                         "tensors cannot express; pass a copy with non-negative strides (e.g. x.copy())", fn,
                         (long long)strides[i], i);
            return NULL;
        }
        if (s <= INT64_MAX / shape[i]) s *= shape[i];
    }
    const size_t es = lc_dtype_size(dtype);
    char *data = (char *)dl->data + dl->byte_offset;
    if (dl->data == NULL || ((uintptr_t)data % es) != 0) {
        PyErr_Format(PyExc_BufferError, "%s: x: expected a non-NULL %zu-byte aligned data pointer, got %p", fn, es,
                     (void *)data);
        return NULL;
    }
    const int writable = !(flags & DLPACK_FLAG_BITMASK_READ_ONLY);

    lcpy_import *imp = malloc(sizeof *imp);
    if (imp == NULL) return PyErr_NoMemory();
    imp->managed = managed;
    imp->versioned = versioned;
    imp->cuda = dev == LC_DEVICE_CUDA;
    lc_tensor_t *t = NULL;
    lc_status st = lc_tensor_wrap_external(data, dtype, dev, nd, shape, strides, writable, lcpy_import_release, imp, &t);
    if (st != LC_OK) {
        free(imp); /* not consumed: the capsule's destructor hands the memory back */
        return lcpy_raise_status_in(fn, st);
    }
    /* consumed: from here the memory is ours until the storage's deleter runs */
    if (PyCapsule_SetName(cap, versioned ? "used_dltensor_versioned" : "used_dltensor") < 0) {
        lc_tensor_free(t);
        return NULL;
    }
#ifdef LC_HAVE_CUDA
    if (wait_legacy && dev == LC_DEVICE_CUDA) {
        const lc_cuda_ctx *ctx = lcpy_cuda();
        if (lcpy_cuda_order(fn, ctx->stream, cudaStreamLegacy) < 0) {
            lc_tensor_free(t);
            return NULL;
        }
    }
#else
    (void)wait_legacy;
#endif
    return lcpy_tensor_adopt(t); /* frees t (so hands the memory back) on failure */
}

static PyObject *lcpy_str_max_version, *lcpy_str_stream, *lcpy_str_dlpack, *lcpy_str_dlpack_device;
static PyObject *lcpy_max_version_1_0;
static PyObject *lcpy_kw_max_version, *lcpy_kw_stream_max_version;

static int lcpy_dlpack_init_names(void) {
    if (lcpy_kw_stream_max_version != NULL) return 0;
    lcpy_str_max_version = PyUnicode_InternFromString("max_version");
    lcpy_str_stream = PyUnicode_InternFromString("stream");
    lcpy_str_dlpack = PyUnicode_InternFromString("__dlpack__");
    lcpy_str_dlpack_device = PyUnicode_InternFromString("__dlpack_device__");
    lcpy_max_version_1_0 = Py_BuildValue("(ii)", LCPY_DLPACK_MAJOR_VERSION, LCPY_DLPACK_MINOR_VERSION);
    if (!lcpy_str_max_version || !lcpy_str_stream || !lcpy_str_dlpack || !lcpy_str_dlpack_device ||
        !lcpy_max_version_1_0)
        return -1;
    lcpy_kw_max_version = PyTuple_Pack(1, lcpy_str_max_version);
    if (lcpy_kw_max_version == NULL) return -1;
    lcpy_kw_stream_max_version = PyTuple_Pack(2, lcpy_str_stream, lcpy_str_max_version);
    return lcpy_kw_stream_max_version ? 0 : -1;
}

static lcpy_sig sig_from_dlpack = LCPY_SIG("from_dlpack", 1, "x");

static PyObject *py_from_dlpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    const char *fn = "from_dlpack";
    PyObject *x;
    if (lcpy_parse(&sig_from_dlpack, args, nargs, kwnames, &x) < 0) return NULL;
    if (PyCapsule_CheckExact(x)) return lcpy_consume_capsule(fn, x, 1);
    if (lcpy_dlpack_init_names() < 0) return NULL;
    if (!PyObject_HasAttr(x, lcpy_str_dlpack)) {
        PyErr_Format(PyExc_TypeError, "%s: x: expected an object with __dlpack__ (a torch/CuPy/JAX/NumPy array, a "
                     "lightning_core tensor) or a DLPack capsule, got %s", fn, Py_TYPE(x)->tp_name);
        return NULL;
    }
    /* Where the data lives decides the stream argument. */
    long long dev_type = kDLCPU, dev_id = 0;
    int have_device = 0;
    if (PyObject_HasAttr(x, lcpy_str_dlpack_device)) {
        PyObject *d = PyObject_CallMethodNoArgs(x, lcpy_str_dlpack_device);
        if (d == NULL) return NULL;
        int rc = lcpy_int_pair(fn, "x.__dlpack_device__()", d, &dev_type, &dev_id);
        Py_DECREF(d);
        if (rc < 0) return NULL;
        have_device = 1;
    }
    PyObject *stream = NULL;
    if (have_device && (dev_type == kDLCUDA || dev_type == kDLCUDAManaged)) {
#ifdef LC_HAVE_CUDA
        const lc_cuda_ctx *ctx = lcpy_cuda();
        if (ctx == NULL) {
            PyErr_Format(PyExc_BufferError, "%s: x lives on %s:%lld but there is no usable GPU here", fn,
                         lcpy_dl_device_name((int32_t)dev_type), dev_id);
            return NULL;
        }
        /* our stream is the consumer stream: the producer orders its pending writes before it */
        stream = PyLong_FromVoidPtr((void *)ctx->stream);
        if (stream == NULL) return NULL;
#else
        PyErr_Format(PyExc_BufferError, "%s: x lives on %s:%lld but this build has no CUDA backend", fn,
                     lcpy_dl_device_name((int32_t)dev_type), dev_id);
        return NULL;
#endif
    }
    PyObject *cargs[3] = {x, NULL, NULL};
    PyObject *cap;
    if (stream != NULL) {
        cargs[1] = stream;
        cargs[2] = lcpy_max_version_1_0;
        cap = PyObject_VectorcallMethod(lcpy_str_dlpack, cargs, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                        lcpy_kw_stream_max_version);
    } else {
        cargs[1] = lcpy_max_version_1_0;
        cap = PyObject_VectorcallMethod(lcpy_str_dlpack, cargs, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                        lcpy_kw_max_version);
    }
    if (cap == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {
        /* a pre-DLPack-1.0 producer without max_version */
        PyErr_Clear();
        cargs[0] = x;
        if (stream != NULL) {
            cargs[1] = stream;
            PyObject *kw = PyTuple_Pack(1, lcpy_str_stream);
            cap = kw ? PyObject_VectorcallMethod(lcpy_str_dlpack, cargs, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, kw) : NULL;
            Py_XDECREF(kw);
        } else {
            cap = PyObject_CallMethodNoArgs(x, lcpy_str_dlpack);
        }
    }
    Py_XDECREF(stream);
    if (cap == NULL) return NULL;
    if (!PyCapsule_CheckExact(cap)) {
        PyErr_Format(PyExc_TypeError, "%s: x.__dlpack__() returned %s, expected a PyCapsule", fn, Py_TYPE(cap)->tp_name);
        Py_DECREF(cap);
        return NULL;
    }
    /* without __dlpack_device__ no stream was negotiated: assume the legacy default stream */
    PyObject *res = lcpy_consume_capsule(fn, cap, !have_device);
    Py_DECREF(cap);
    return res;
}

PyMethodDef lcpy_dlpack_methods[] = {
    LCPY_METHOD(from_dlpack, "($module, /, x)",
                "from_dlpack(x) -> Tensor | Tensor64 sharing x's memory (no copy): x is any object with "
                "__dlpack__/__dlpack_device__ (torch, CuPy, JAX, NumPy, lightning_core tensors) or a DLPack "
                "capsule; float32 -> Tensor, float64 -> Tensor64, CPU or CUDA. The producer's memory is kept "
                "alive until the last tensor over it is freed."),
    {NULL, NULL, 0, NULL},
};

/* ---- __cuda_array_interface__ --------------------------------------------------------------- */

PyObject *lcpy_tensor_cuda_array_interface(PyObject *self, void *closure) {
    lc_tensor_t *t = lcpy_tensor_handle(self);
    if (t == NULL || lc_tensor_device(t) != LC_DEVICE_CUDA) {
        PyErr_Format(PyExc_AttributeError, "__cuda_array_interface__: only CUDA tensors have it; this %s lives on "
                     "%s (use the buffer protocol, __dlpack__ or numpy())", lcpy_tensor_kind(self),
                     t ? lc_device_name(lc_tensor_device(t)) : "?");
        return NULL;
    }
    if (lc_tensor_dtype(t) == LC_DTYPE_BF16) {
        PyErr_Format(PyExc_AttributeError, "__cuda_array_interface__: bfloat16 has no typestr in the CUDA array "
                     "interface; use __dlpack__ (kDLBfloat, 16)");
        return NULL;
    }
#ifdef LC_HAVE_CUDA
    const lc_cuda_ctx *ctx = lcpy_cuda();
    const int nd = lc_tensor_ndim(t);
    const size_t es = lc_dtype_size(lc_tensor_dtype(t));
    PyObject *shape = PyTuple_New(nd), *strides = NULL;
    if (shape == NULL) return NULL;
    for (int i = 0; i < nd; i++) PyTuple_SET_ITEM(shape, i, PyLong_FromLongLong(lc_tensor_dim(t, i)));
    if (lc_tensor_is_contiguous(t)) {
        strides = Py_None;
        Py_INCREF(strides);
    } else {
        strides = PyTuple_New(nd);
        if (strides == NULL) {
            Py_DECREF(shape);
            return NULL;
        }
        for (int i = 0; i < nd; i++)
            PyTuple_SET_ITEM(strides, i, PyLong_FromLongLong(lc_tensor_stride(t, i) * (long long)es));
    }
    if (PyErr_Occurred()) {
        Py_DECREF(shape);
        Py_DECREF(strides);
        return NULL;
    }
    /* stream: consumers synchronise with (or enqueue on) our stream before touching the data (CAI v3) */
    return Py_BuildValue("{s:N,s:s,s:(NO),s:i,s:N,s:N}", "shape", shape, "typestr",
                         lc_tensor_dtype(t) == LC_DTYPE_F64   ? "<f8"
                         : lc_tensor_dtype(t) == LC_DTYPE_F16 ? "<f2"
                                                              : "<f4",
                         "data",
                         PyLong_FromVoidPtr(lc_tensor_data(t)), lc_tensor_is_writable(t) ? Py_False : Py_True,
                         "version", 3, "strides", strides, "stream",
                         PyLong_FromVoidPtr(ctx ? (void *)ctx->stream : NULL));
#else
    PyErr_SetString(PyExc_AttributeError, "__cuda_array_interface__: this build has no CUDA backend");
    return NULL;
#endif
}

/* ---- buffer protocol (CPU tensors) ---------------------------------------------------------- */

int lcpy_tensor_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    lc_tensor_t *t = lcpy_tensor_handle(self);
    if (view == NULL) {
        PyErr_SetString(PyExc_BufferError, "lightning_core tensor: NULL view in getbuffer");
        return -1;
    }
    view->obj = NULL;
    if (t == NULL) {
        PyErr_SetString(PyExc_BufferError, "lightning_core tensor: not a tensor");
        return -1;
    }
    if (lc_tensor_device(t) != LC_DEVICE_CPU) {
        PyErr_Format(PyExc_BufferError, "%s on %s: the buffer protocol exposes host memory only; use __dlpack__, "
                     "__cuda_array_interface__ or numpy() (a copy)", lcpy_tensor_kind(self),
                     lc_device_name(lc_tensor_device(t)));
        return -1;
    }
    if (lc_tensor_dtype(t) == LC_DTYPE_BF16) { /* np.asarray then goes through __array__ (ml_dtypes.bfloat16) */
        PyErr_Format(PyExc_BufferError, "%s: bfloat16 has no buffer-protocol format; use np.asarray(t) (an "
                     "ml_dtypes.bfloat16 view), __dlpack__ or numpy()", lcpy_tensor_kind(self));
        return -1;
    }
    const int writable = lc_tensor_is_writable(t);
    if ((flags & PyBUF_WRITABLE) == PyBUF_WRITABLE && !writable) {
        PyErr_Format(PyExc_BufferError, "%s: the tensor is read-only (a writable buffer was requested)",
                     lcpy_tensor_kind(self));
        return -1;
    }
    const int nd = lc_tensor_ndim(t);
    const size_t es = lc_dtype_size(lc_tensor_dtype(t));
    const int contig = lc_tensor_is_contiguous(t);
    if (!contig && (flags & PyBUF_STRIDES) != PyBUF_STRIDES) {
        PyErr_Format(PyExc_BufferError, "%s: the tensor is strided (not contiguous); the consumer must accept "
                     "strides (PyBUF_STRIDES)", lcpy_tensor_kind(self));
        return -1;
    }
    Py_ssize_t *arrays = PyMem_Malloc(sizeof(Py_ssize_t) * 2 * (size_t)nd);
    if (arrays == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < nd; i++) {
        arrays[i] = (Py_ssize_t)lc_tensor_dim(t, i);
        arrays[nd + i] = (Py_ssize_t)(lc_tensor_stride(t, i) * (int64_t)es);
    }
    view->buf = lc_tensor_data(t);
    view->len = (Py_ssize_t)lc_tensor_nbytes(t);
    view->readonly = !writable;
    view->itemsize = (Py_ssize_t)es;
    const lc_dtype vdt = lc_tensor_dtype(t);
    const char *fmt = vdt == LC_DTYPE_F64 ? "d" : vdt == LC_DTYPE_F16 ? "e" : vdt == LC_DTYPE_I32 ? "i"
                    : vdt == LC_DTYPE_I64 ? "q" : vdt == LC_DTYPE_BOOL ? "?" : "f";
    view->format = (flags & PyBUF_FORMAT) ? (char *)fmt : NULL;
    view->ndim = nd;
    view->shape = (flags & PyBUF_ND) ? arrays : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? arrays + nd : NULL;
    view->suboffsets = NULL;
    view->internal = arrays;
    const char order = (flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS   ? 'F'
                       : (flags & PyBUF_C_CONTIGUOUS) == PyBUF_C_CONTIGUOUS ? 'C'
                       : (flags & PyBUF_ANY_CONTIGUOUS) == PyBUF_ANY_CONTIGUOUS ? 'A'
                                                                                : 0;
    if (order) {
        /* judge with the full metadata */
        Py_buffer probe = *view;
        probe.shape = arrays;
        probe.strides = arrays + nd;
        if (!PyBuffer_IsContiguous(&probe, order)) {
            PyMem_Free(arrays);
            view->internal = NULL;
            PyErr_Format(PyExc_BufferError, "%s: the tensor is not %s-contiguous", lcpy_tensor_kind(self),
                         order == 'F' ? "Fortran" : order == 'C' ? "C" : "C- or Fortran");
            return -1;
        }
    }
    view->obj = self;
    Py_INCREF(self);
    return 0;
}

void lcpy_tensor_releasebuffer(PyObject *self, Py_buffer *view) {
    PyMem_Free(view->internal);
    view->internal = NULL;
}

/* A zero-copy ndarray over a CPU tensor (keeps the tensor object alive); NULL with an exception. */
PyObject *lcpy_tensor_host_ndarray(PyObject *self) {
    lc_tensor_t *t = lcpy_tensor_handle(self);
    if (t == NULL || lc_tensor_device(t) != LC_DEVICE_CPU) {
        PyErr_SetString(PyExc_ValueError, "a CUDA tensor cannot be viewed as an ndarray without a copy");
        return NULL;
    }
    const int nd = lc_tensor_ndim(t);
    const size_t es = lc_dtype_size(lc_tensor_dtype(t));
    npy_intp dims[LC_MAX_DIMS], strides[LC_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        dims[i] = (npy_intp)lc_tensor_dim(t, i);
        strides[i] = (npy_intp)(lc_tensor_stride(t, i) * (int64_t)es);
    }
    const int typenum = lcpy_dtype_typenum("__array__", lc_tensor_dtype(t));
    if (typenum < 0) return NULL;
    PyObject *arr = PyArray_New(&PyArray_Type, nd, dims, typenum, strides,
                                lc_tensor_data(t), (int)es, lc_tensor_is_writable(t) ? NPY_ARRAY_WRITEABLE : 0, NULL);
    if (arr == NULL) return NULL;
    Py_INCREF(self);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, self) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}
