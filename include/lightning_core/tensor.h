/* tensor.h — dtypes, devices and the opaque tensor of the Lightning Core C API.
 *
 * Contract (the seed's tensor contract):
 *  - shape: 1..LC_MAX_DIMS dims, each > 0, element count and byte size must not overflow.
 *  - layout: row-major; strides and offset are in elements. A contiguous tensor has canonical strides;
 *    a view may be strided, and every element it can address must lie inside its storage.
 *  - lifetime: lc_tensor_from_host / lc_tensor_to_host copy; a tensor never aliases a caller buffer,
 *    except one made by lc_tensor_wrap_host or lc_tensor_wrap_external, which borrow the caller's
 *    memory by definition (wrap_external with a deleter that runs when the storage is released).
 *  - alias: a view shares its base's storage (refcounted: freeing the base keeps the storage alive
 *    while views exist) and lives on the base's device; asking for a view on another device fails.
 * Tests: tests/c/test_core.c, tests/python/test_tensor.py.
 */
#ifndef LIGHTNING_CORE_TENSOR_H
#define LIGHTNING_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "lightning_core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LC_MAX_DIMS 8

/* Element types; their traits (size, names, DLPack codes) and conversions are in dtype.h. */
typedef enum lc_dtype {
    LC_DTYPE_F32 = 0,
    LC_DTYPE_F64,
    LC_DTYPE_F16,  /* IEEE binary16 (NumPy float16) */
    LC_DTYPE_BF16, /* bfloat16 (ml_dtypes.bfloat16) */
    LC_DTYPE_I32,
    LC_DTYPE_I64,
    LC_DTYPE_BOOL, /* one byte, nonzero = true (NumPy bool): attention masks */
    LC_DTYPE_COUNT
} lc_dtype;

/* Where work runs. LC_DEVICE_METAL is accepted for seed compatibility and is never built here;
 * LC_DEVICE_AUTO lets the runtime choose. Tensors only ever live on CPU or CUDA. */
typedef enum lc_device {
    LC_DEVICE_CPU = 0,
    LC_DEVICE_CUDA,
    LC_DEVICE_METAL,
    LC_DEVICE_AUTO,
    LC_DEVICE_COUNT
} lc_device;

typedef struct lc_tensor lc_tensor_t;

size_t lc_dtype_size(lc_dtype dtype);          /* 0 for an invalid dtype */
const char *lc_dtype_name(lc_dtype dtype);     /* "float32", "float16", ..., or "invalid" */

/* Checks a shape against the contract; `what` names it in the error message (e.g. "shape"). */
lc_status lc_shape_validate(const char *what, int ndim, const int64_t *shape);

/* Checks a strided view against a storage of `storage_elems` elements: shape valid, strides >= 0,
 * offset >= 0, and offset + sum((shape[i]-1)*strides[i]) < storage_elems. */
lc_status lc_view_validate(int64_t storage_elems, int ndim, const int64_t *shape, const int64_t *strides,
                           int64_t offset);

/* A new contiguous tensor that owns uninitialised storage on `device` (CPU or CUDA). */
lc_status lc_tensor_new(lc_dtype dtype, lc_device device, int ndim, const int64_t *shape, lc_tensor_t **out);

/* A new tensor on `device` holding a copy of `nbytes` bytes of contiguous host data; nbytes must equal
 * numel * dtype size. */
lc_status lc_tensor_from_host(const void *data, size_t nbytes, lc_dtype dtype, lc_device device, int ndim,
                              const int64_t *shape, lc_tensor_t **out);

/* A tensor that borrows caller-owned host memory (no copy). `strides` in elements, NULL = contiguous.
 * The caller keeps `data` alive and unchanged in size for the tensor's lifetime. */
lc_status lc_tensor_wrap_host(void *data, lc_dtype dtype, int ndim, const int64_t *shape,
                              const int64_t *strides, int writable, lc_tensor_t **out);

/* A tensor over external memory that someone else owns (zero-copy import, e.g. DLPack): `data` is a
 * host (device CPU) or device (CUDA) address of element 0, `strides` in elements (NULL = contiguous,
 * each >= 0). The library never frees `data`: when the last tensor/view over this storage is freed,
 * `deleter(ctx)` runs once (deleter may be NULL), on the thread that frees it. On failure nothing is
 * wrapped and the deleter is NOT called (the caller still owns the memory). CUDA needs a usable GPU. */
lc_status lc_tensor_wrap_external(void *data, lc_dtype dtype, lc_device device, int ndim, const int64_t *shape,
                                  const int64_t *strides, int writable, void (*deleter)(void *ctx), void *ctx,
                                  lc_tensor_t **out);

/* Copies the tensor's elements (gathering a strided view) into contiguous host memory of exactly
 * numel * dtype size bytes. */
lc_status lc_tensor_to_host(const lc_tensor_t *t, void *dst, size_t dst_bytes);

/* Copies contiguous host data of exactly numel * dtype size bytes into the tensor (scattering into a
 * strided view). Fails on a read-only tensor. */
lc_status lc_tensor_copy_from_host(lc_tensor_t *t, const void *src, size_t src_bytes);

/* A view sharing base's storage; shape/strides/offset are relative to the base's storage (elements).
 * `device` must be the base's device (LC_DEVICE_AUTO = the base's), else LC_ERR_INVALID_ARGUMENT. */
lc_status lc_tensor_view(const lc_tensor_t *base, int ndim, const int64_t *shape, const int64_t *strides,
                         int64_t offset, lc_device device, lc_tensor_t **out);

/* Frees the handle; storage is released when its last tensor/view is freed. NULL is allowed. */
void lc_tensor_free(lc_tensor_t *t);

int lc_tensor_ndim(const lc_tensor_t *t);
int64_t lc_tensor_dim(const lc_tensor_t *t, int i);      /* 0 when i is out of range */
int64_t lc_tensor_stride(const lc_tensor_t *t, int i);   /* elements; 0 when i is out of range */
const int64_t *lc_tensor_shape(const lc_tensor_t *t);
const int64_t *lc_tensor_strides(const lc_tensor_t *t);
int64_t lc_tensor_offset(const lc_tensor_t *t);
int64_t lc_tensor_numel(const lc_tensor_t *t);
size_t lc_tensor_nbytes(const lc_tensor_t *t);
int64_t lc_tensor_storage_elems(const lc_tensor_t *t);
lc_dtype lc_tensor_dtype(const lc_tensor_t *t);
lc_device lc_tensor_device(const lc_tensor_t *t);
int lc_tensor_is_contiguous(const lc_tensor_t *t);
int lc_tensor_is_writable(const lc_tensor_t *t);
int lc_tensor_is_view(const lc_tensor_t *t);
/* Address of the first element (storage + offset); for a CUDA tensor a device address. */
void *lc_tensor_data(const lc_tensor_t *t);

/* Asks the device to bring the bytes of n tensors (0..8, one device; each tensor's span from its lowest to its
 * highest element, a strided view's gaps included) into its cache ahead of the kernels that read them: a hint
 * that changes no value. CUDA: one kernel enqueued on the calling thread's stream (captured in a graph like
 * any launch) that waits for the work before it, then requests the spans into L2 and ends without waiting for
 * the data, so the loads overlap the kernels after it; the kernel after it still waits for its grid (~1 us, and
 * ~0.2 us a MiB of issue time past 4 MiB on the H100: in a decode step's chain it cost more than it saved,
 * docs/benchmarks.md session 21). The CPU: nothing (LC_OK). */
lc_status lc_tensor_prefetch(const lc_tensor_t *const *tensors, int n);

/* Re-checks a tensor's metadata against the contract (shape, strides, offset vs storage). */
lc_status lc_tensor_validate(const lc_tensor_t *t);

#ifdef __cplusplus
}
#endif
#endif
