/* backend_cpu.c — the CPU backend table: host memory (64-byte aligned), copies, no-op sync, the op
 * support matrix, and the kernel entries of the files in src/backend/cpu/. Always built; the universal fallback.
 * Tests: tests/c/test_ops.c. */
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/internal.h"

static int lc_cpu_available(void) { return 1; }

static lc_status lc_cpu_alloc(size_t bytes, void **ptr) {
    *ptr = lc_aligned_alloc(bytes);
    if (!*ptr) return lc_error(LC_ERR_OUT_OF_MEMORY, "cpu: could not allocate %zu bytes", bytes);
    return LC_OK;
}

static lc_status lc_cpu_copy(void *dst, const void *src, size_t bytes) {
    memmove(dst, src, bytes);
    return LC_OK;
}

static lc_status lc_cpu_sync(void) { return LC_OK; }

static int lc_cpu_supports(lc_op op, lc_dtype dtype) {
    switch (op) {
    case LC_OP_MATMUL: return dtype == LC_DTYPE_F32 || dtype == LC_DTYPE_F64 || dtype == LC_DTYPE_F16 || dtype == LC_DTYPE_BF16;
    case LC_OP_BINARY:
    case LC_OP_RELU: return dtype == LC_DTYPE_F32 || dtype == LC_DTYPE_F64;
    case LC_OP_ATTENTION:
    case LC_OP_CONV2D:
    case LC_OP_GELU:
    case LC_OP_LAYER_NORM:
    case LC_OP_LINEAR:
    case LC_OP_QKV_PACK:
    case LC_OP_ATTENTION_PROJECTION: return dtype == LC_DTYPE_F32;
    default: return 0;
    }
}

const lc_backend lc_cpu_backend = {
    .name = "cpu",
    .device = LC_DEVICE_CPU,
    .available = lc_cpu_available,
    .alloc = lc_cpu_alloc,
    .free = lc_aligned_free,
    .copy_h2d = lc_cpu_copy,
    .copy_d2h = lc_cpu_copy,
    .copy_d2d = lc_cpu_copy,
    .sync = lc_cpu_sync,
    .supports = lc_cpu_supports,
    .matmul = lc_cpu_matmul,
    .attention = lc_cpu_attention,
    .conv2d = lc_cpu_conv2d,
    .binary = lc_cpu_binary,
    .relu = lc_cpu_relu,
    .gelu = lc_cpu_gelu,
    .layer_norm = lc_cpu_layer_norm,
    .linear = lc_cpu_linear,
    .qkv_pack = lc_cpu_qkv_pack,
    .attention_projection = lc_cpu_attention_projection,
};
