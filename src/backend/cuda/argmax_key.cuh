/* argmax_key.cuh — a (value, index) pair as one 64-bit key whose unsigned order is lc_argmax's order (the larger
 * value first, every NaN above +Inf, -0 == +0, ties to the smaller index), so that the argmax of many blocks is
 * an atomicMax of their keys in any order, and key 0 is below every pair (the reset value). Used where an
 * argmax is folded into the kernel writing the values: gemv_ring_cuda.cu (lc_layer_norm_linear_argmax /
 * lc_rms_norm_linear_argmax) and decode_fused_cuda.cu (the fused step's lm_head). Index below 2^32 - 1.
 * Tests: tests/python/test_norm_linear_argmax.py (NaN, ±0 and ties against lc.argmax), test_decode_program.py. */
#ifndef LC_BACKEND_CUDA_ARGMAX_KEY_CUH
#define LC_BACKEND_CUDA_ARGMAX_KEY_CUH

#include <stdint.h>

__device__ __forceinline__ unsigned long long lc_argmax_key(float v, unsigned idx) {
    unsigned u = __float_as_uint(v);
    if (v != v)
        u = 0xffffffffu; /* every NaN: above +Inf (0xff800000), ties among them to the first */
    else if (v == 0.0f)
        u = 0x80000000u; /* -0 as +0 */
    else
        u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((unsigned long long)u << 32) | (unsigned long long)(0xffffffffu - idx);
}

__device__ __forceinline__ int64_t lc_argmax_key_index(unsigned long long key) {
    return (int64_t)(0xffffffffu - (unsigned)(key & 0xffffffffull));
}

#endif
