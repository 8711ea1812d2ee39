/* internal.h — declarations shared by the files of the lightning_core._C extension (module.c,
 * convert.c, call.c, ops_py.c, tensor_py.c): Python/NumPy includes, the lc_status -> exception mapping, the
 * DeviceUnavailableError object, the op method table and the tensor type registration.
 * Tests: tests/python/test_runtime.py, tests/python/test_ops_*.py, tests/python/test_tensor.py. */
#ifndef LCPY_INTERNAL_H
#define LCPY_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* One NumPy C-API table for the whole extension; module.c imports it (import_array). */
#define PY_ARRAY_UNIQUE_SYMBOL lcpy_ARRAY_API
#ifndef LCPY_MODULE_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "lightning_core/lightning_core.h"

/* lightning_core.DeviceUnavailableError (a RuntimeError subclass); set by module init. */
extern PyObject *lcpy_DeviceUnavailableError;

/* Sets the Python exception for a failed lc_* call (message: lc_last_error(), else the status name)
 * and returns NULL. Must be called on the thread that made the failing call, with the GIL held. */
PyObject *lcpy_raise_status(lc_status status);

/* Same, with the message prefixed by "<fn>: " (for C messages that do not name the Python function). */
PyObject *lcpy_raise_status_in(const char *fn, lc_status status);

/* The Python exception type for a status (borrowed). */
PyObject *lcpy_exception_for(lc_status status);

/* Op bindings (ops_py.c), added to the module by module init. */
extern PyMethodDef lcpy_op_methods[];
extern PyMethodDef lcpy_trace_methods[]; /* trace_py.c */
extern PyMethodDef lcpy_tune_methods[];  /* tune_py.c */
extern PyMethodDef lcpy_dtype_methods[]; /* dtype_py.c */
extern PyMethodDef lcpy_sdpa_methods[];  /* sdpa_py.c */
extern PyMethodDef lcpy_index_methods[]; /* index_py.c */
extern PyMethodDef lcpy_llm_methods[];   /* llm_py.c */
extern PyMethodDef lcpy_decode_methods[]; /* decode_py.c */
/* HF's rope_scaling dict (or None) -> o->scaling and its parameters (llm_py.c) */
int lcpy_rope_scaling(const char *fn, const char *name, PyObject *obj, lc_rope_options *o);
/* rope's options from its arguments: theta (None: 10000; theta_name: the argument's name in messages),
 * rotary_dim (None: head_dim), scaling (lcpy_rope_scaling); -1 with the exception set. */
int lcpy_rope_options(const char *fn, const char *theta_name, PyObject *theta, PyObject *rotary_dim, PyObject *scaling,
                      lc_rope_options *o);
/* rope's positions: an integer tensor as is, or an int32/int64 ndarray / sequence of ints wrapped as a host
 * tensor *t (*own and *arr keep it; free / decref after the call); -1 with the exception set. */
int lcpy_rope_positions(const char *fn, PyObject *obj, lc_tensor_t **t, lc_tensor_t **own, PyArrayObject **arr);
extern PyMethodDef lcpy_session_methods[]; /* session_py.c */
extern PyMethodDef lcpy_graph_methods[];   /* graph_py.c */

/* Adds GraphCore to the module (graph_py.c); -1 with an exception on failure. */
int lcpy_graph_register(PyObject *module);
/* The lc_graph_t of a GraphCore object (borrowed), or NULL without an exception for anything else. */
lc_graph_t *lcpy_graph_handle(PyObject *obj);
/* GraphPlan's constructor marks the GraphCore as being read without the GIL (delta +1, then -1): its
 * mutators raise RuntimeError meanwhile (graph_py.c). Call with the GIL held. */
void lcpy_graph_planning(PyObject *obj, int delta);
/* A per-call sync policy argument (session_py.c): None/NULL -> -1, else 'auto' | 'always' | 'never'
 * (ValueError/TypeError naming `sync`). */
int lcpy_sync_policy_arg(const char *fn, PyObject *obj, int *out);
/* Adds GraphPlan (plan_py.c); -1 with an exception on failure. */
int lcpy_plan_register(PyObject *module);
extern PyMethodDef lcpy_plan_methods[]; /* plan_py.c */

/* dist_py.c: the NCCL functions and the DistComm type (-1 with an exception on failure). */
extern PyMethodDef lcpy_dist_methods[];
int lcpy_dist_register(PyObject *module);

/* Adds ResidentSession and DeviceGraph to the module (session_py.c); -1 with an exception on failure. */
int lcpy_session_register(PyObject *module);

/* Adds Tensor, Tensor64 and TensorView to the module (tensor_py.c); -1 with an exception on failure. */
int lcpy_tensor_register(PyObject *module);

/* The lc_tensor_t of a Tensor, Tensor64 or TensorView object (borrowed: valid while obj lives), or NULL
 * without an exception for any other object (a PyObject_TypeCheck against the three types). */
lc_tensor_t *lcpy_tensor_handle(PyObject *obj);

/* A new Tensor (float32) or Tensor64 (float64) object owning `t` (stolen; freed on failure). */
PyObject *lcpy_tensor_adopt(lc_tensor_t *t);

/* "Tensor", "Tensor64" or "TensorView" for a tensor object (for messages). */
const char *lcpy_tensor_kind(PyObject *obj);

/* Zero-copy interop (dlpack_py.c): Tensor.__dlpack__ / __dlpack_device__ methods, the
 * __cuda_array_interface__ getter, the buffer protocol of CPU tensors, a zero-copy ndarray over a CPU
 * tensor (NULL with ValueError for a CUDA one), and the module function from_dlpack. */
PyObject *lcpy_tensor_dlpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *lcpy_tensor_dlpack_device(PyObject *self, PyObject *noargs);
PyObject *lcpy_tensor_cuda_array_interface(PyObject *self, void *closure);
int lcpy_tensor_getbuffer(PyObject *self, Py_buffer *view, int flags);
void lcpy_tensor_releasebuffer(PyObject *self, Py_buffer *view);
PyObject *lcpy_tensor_host_ndarray(PyObject *self);
extern PyMethodDef lcpy_dlpack_methods[];

/* Casts a METH_FASTCALL|METH_KEYWORDS function for a PyMethodDef entry without a function-cast warning. */
#define LCPY_FASTCALL(fn) ((PyCFunction)(void (*)(void))(fn))

/* A METH_FASTCALL|METH_KEYWORDS entry for py_<name>, with a text signature ("($module, /, a, b)") for
 * inspect.signature() and help(). */
#define LCPY_NOARGS(name, ret) {#name, py_##name, METH_NOARGS, #name "($module, /)\n--\n\n" ret}
#define LCPY_METHOD(name, sig, doc) \
    {#name, LCPY_FASTCALL(py_##name), METH_FASTCALL | METH_KEYWORDS, #name sig "\n--\n\n" doc}

#endif
