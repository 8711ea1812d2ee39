/* dtype.h — dtype traits and element conversions of the Lightning Core C API.
 *
 * One traits record per lc_dtype (name, element size, NumPy name, DLPack code and bits). Conversions
 * between float32 and the 16-bit floats round to nearest even; NaN stays NaN and Inf stays Inf, bit-exact
 * with NumPy's float16 (payload kept, a NaN that would lose every payload bit becomes 0x7c01 / 0xfc01) and
 * with ml_dtypes' bfloat16 (every NaN becomes the quiet 0x7fc0 / 0xffc0 with its sign). float64 -> float16
 * rounds once (as NumPy); float64 -> bfloat16 goes through float32 (as ml_dtypes); a bfloat16 NaN
 * becomes the float16 NaN sign | 0x7e00 (as ml_dtypes). The CPU uses F16C,
 * AVX-512F and AVX-512 BF16 where the CPU has them (LC_CPU_DISABLE=f16c,avx512bf16,avx512,avx2 masks
 * them) and splits long rows over the thread pool.
 * Tests: tests/c/test_dtype.c (all 65536 patterns of each 16-bit type under every mask),
 * tests/python/test_dtype.py (against NumPy and ml_dtypes).
 */
#ifndef LIGHTNING_CORE_DTYPE_H
#define LIGHTNING_CORE_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "lightning_core/status.h"
#include "lightning_core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* DLPack type codes (dlpack.h's DLDataTypeCode). */
enum { LC_DLPACK_INT = 0, LC_DLPACK_UINT = 1, LC_DLPACK_FLOAT = 2, LC_DLPACK_BFLOAT = 4, LC_DLPACK_BOOL = 6 };

typedef struct lc_dtype_traits {
    lc_dtype dtype;
    const char *name;        /* "float32", "float64", "float16", "bfloat16", "int32", "int64", "bool" */
    size_t size;             /* bytes per element */
    int is_float;            /* 1 for the floating types */
    uint8_t dlpack_code;     /* LC_DLPACK_* */
    uint8_t dlpack_bits;     /* 8 * size */
} lc_dtype_traits;

/* The traits of `dtype`, or NULL for a value outside the enum. */
const lc_dtype_traits *lc_dtype_traits_of(lc_dtype dtype);

/* The dtype named `name` ("float32", "float16", "half", "bfloat16", ...) into *out. */
lc_status lc_dtype_from_name(const char *name, lc_dtype *out);

/* Converts `n` contiguous elements of `src` (dtype `src_dtype`) into `dst` (dtype `dst_dtype`); both
 * float types among float32/float64/float16/bfloat16 (same dtype: a copy). src and dst must not overlap
 * unless they are the same buffer and the dtypes have the same size. */
lc_status lc_convert(lc_dtype dst_dtype, void *dst, lc_dtype src_dtype, const void *src, size_t n);

/* Scalar conversions (the reference the vector paths are tested against). */
float lc_f16_to_f32(uint16_t h);
uint16_t lc_f32_to_f16(float f);
uint16_t lc_f64_to_f16(double d);
float lc_bf16_to_f32(uint16_t b);
uint16_t lc_f32_to_bf16(float f);

#ifdef __cplusplus
}
#endif

#endif
