/* lowp.cuh — storage-type traits of the CUDA kernels templated on float / double / __half /
 * __nv_bfloat16: Elem<T>::ld loads an element as its compute type C (float for the 16-bit floats, else T),
 * Elem<T>::st stores a C rounded once to nearest even (__float2half_rn / __float2bfloat16_rn; NaN stays
 * NaN, Inf stays Inf); ldu/stu do the same on the raw 16-bit pattern (for 16-byte vector bodies).
 * Used by elementwise_cuda.cu and layer_norm_cuda.cu; lc_u4_to_f8 by the GEMVs and the short-path decode.
 * Tests: tests/c/test_lowp_ops.c on a GPU machine. */
#ifndef LC_CUDA_LOWP_CUH
#define LC_CUDA_LOWP_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

/* Element type T is loaded as Elem<T>::C (float for the 16-bit floats, else T itself), the op runs in C,
 * and the result is stored rounded once to nearest even (__float2half_rn / __float2bfloat16_rn; NaN
 * stays NaN, Inf stays Inf). */
template <typename T> struct Elem {
    typedef T C;
    static __device__ __forceinline__ T ld(T x) { return x; }
    static __device__ __forceinline__ T st(T x) { return x; }
};
template <> struct Elem<__half> {
    typedef float C;
    static __device__ __forceinline__ float ld(__half x) { return __half2float(x); }
    static __device__ __forceinline__ __half st(float x) { return __float2half_rn(x); }
    static __device__ __forceinline__ float ldu(unsigned short u) { return __half2float(__ushort_as_half(u)); }
    static __device__ __forceinline__ unsigned short stu(float x) { return __half_as_ushort(__float2half_rn(x)); }
};
template <> struct Elem<__nv_bfloat16> {
    typedef float C;
    static __device__ __forceinline__ float ld(__nv_bfloat16 x) { return __bfloat162float(x); }
    static __device__ __forceinline__ __nv_bfloat16 st(float x) { return __float2bfloat16_rn(x); }
    static __device__ __forceinline__ float ldu(unsigned short u) { return __bfloat162float(__ushort_as_bfloat16(u)); }
    static __device__ __forceinline__ unsigned short stu(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }
};

/* The 8 16-bit values of a 16-byte word (element j: bits 16·j..) as floats, exactly: the vector bodies of the GEMV
 * (gemv.cuh) and of the short-path decode (sdpa_decode_lean_cuda.cu). */
__device__ __forceinline__ void lc_u4_to_f8(const uint4 v, float f[8], __nv_bfloat16) {
    const unsigned u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        f[2 * j] = __uint_as_float(u[j] << 16);
        f[2 * j + 1] = __uint_as_float(u[j] & 0xffff0000u);
    }
}
__device__ __forceinline__ void lc_u4_to_f8(const uint4 v, float f[8], __half) {
    const unsigned u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const float2 t = __half22float2(*reinterpret_cast<const __half2 *>(&u[j]));
        f[2 * j] = t.x;
        f[2 * j + 1] = t.y;
    }
}

#endif
