/* dtype_internal.h — the float32 <-> 16-bit float row converters the CPU picks at run time (scalar,
 * F16C, AVX-512F), for lc_convert (dtype.c) and the CPU kernels that load or store 16-bit floats.
 * Tests: tests/c/test_dtype.c under every LC_CPU_DISABLE mask. */
#ifndef LC_DTYPE_INTERNAL_H
#define LC_DTYPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct lc_cvt_rows {
    void (*f16_f32)(const uint16_t *in, float *out, size_t n);
    void (*f32_f16)(const float *in, uint16_t *out, size_t n);
    void (*bf16_f32)(const uint16_t *in, float *out, size_t n);
    void (*f32_bf16)(const float *in, uint16_t *out, size_t n);
    const char *f16_path, *bf16_path; /* "avx512", "f16c"/"avx2", "scalar" */
} lc_cvt_rows;

/* The rows for this CPU (features and LC_CPU_DISABLE read once). */
const lc_cvt_rows *lc_cvt_rows_get(void);

/* dst[0, bytes) = src[0, bytes) with non-temporal stores where the CPU has them (x86-64: SSE2 streaming
 * stores from the first 16-byte boundary of dst; a plain copy for the head and the tail), for outputs that
 * would only evict useful cache lines and cost a read for ownership; lc_stream_fence() orders them before
 * the data is handed on (the caller's thread calls it once after its last stream store). */
void lc_stream_store(void *dst, const void *src, size_t bytes);
void lc_stream_fence(void);

void lc_cvt_f16_f32_scalar(const uint16_t *in, float *out, size_t n);
void lc_cvt_f32_f16_scalar(const float *in, uint16_t *out, size_t n);
void lc_cvt_bf16_f32_scalar(const uint16_t *in, float *out, size_t n);
void lc_cvt_f32_bf16_scalar(const float *in, uint16_t *out, size_t n);

#endif
