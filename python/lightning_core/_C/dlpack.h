/* dlpack.h — the DLPack ABI (DLPack 1.0, https://dmlc.github.io/dlpack/latest/) as used by the
 * zero-copy interop of lightning_core._C (dlpack_py.c): the device and dtype descriptors, the plain
 * DLTensor, the legacy DLManagedTensor (capsule "dltensor") and the versioned DLManagedTensorVersioned
 * (capsule "dltensor_versioned"). Written from the public specification; only what we use.
 * Layout rules: shape/strides are in elements (strides NULL = compact row-major), byte_offset is added
 * to `data`, the deleter of a managed tensor frees the manager context and the struct itself.
 * Tests: tests/python/test_dlpack.py. */
#ifndef LCPY_DLPACK_H
#define LCPY_DLPACK_H

#include <stdint.h>

#define LCPY_DLPACK_MAJOR_VERSION 1
#define LCPY_DLPACK_MINOR_VERSION 0

/* Device types (the subset this library meets; values are fixed by the ABI). */
typedef enum {
    kDLCPU = 1,
    kDLCUDA = 2,
    kDLCUDAHost = 3,
    kDLOpenCL = 4,
    kDLVulkan = 7,
    kDLMetal = 8,
    kDLVPI = 9,
    kDLROCM = 10,
    kDLROCMHost = 11,
    kDLExtDev = 12,
    kDLCUDAManaged = 13,
    kDLOneAPI = 14,
} DLDeviceType;

typedef struct {
    DLDeviceType device_type; /* an int-sized enum */
    int32_t device_id;
} DLDevice;

/* Type codes of DLDataType.code. */
typedef enum {
    kDLInt = 0,
    kDLUInt = 1,
    kDLFloat = 2,
    kDLOpaqueHandle = 3,
    kDLBfloat = 4,
    kDLComplex = 5,
    kDLBool = 6,
} DLDataTypeCode;

typedef struct {
    uint8_t code;   /* DLDataTypeCode */
    uint8_t bits;   /* bits per lane: 32 for float32 */
    uint16_t lanes; /* 1 for scalars */
} DLDataType;

typedef struct {
    void *data;           /* CPU: host address; CUDA: device address (aligned base; add byte_offset) */
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;       /* [ndim] */
    int64_t *strides;     /* [ndim] in elements, or NULL for compact row-major */
    uint64_t byte_offset; /* bytes from data to element 0 */
} DLTensor;

/* Legacy (pre-1.0) managed tensor: capsule name "dltensor", renamed "used_dltensor" once consumed. */
typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

typedef struct {
    uint32_t major;
    uint32_t minor;
} DLPackVersion;

/* Flags of DLManagedTensorVersioned.flags. */
#define DLPACK_FLAG_BITMASK_READ_ONLY (UINT64_C(1) << 0)
#define DLPACK_FLAG_BITMASK_IS_COPIED (UINT64_C(1) << 1)
#define DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED (UINT64_C(1) << 2)

/* DLPack >= 1.0 managed tensor: capsule name "dltensor_versioned" ("used_dltensor_versioned" once
 * consumed). Everything before dl_tensor is ABI-stable across versions, so a consumer can read
 * `version` and call `deleter` of any producer version. */
typedef struct DLManagedTensorVersioned {
    DLPackVersion version;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned *self);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;

#endif
