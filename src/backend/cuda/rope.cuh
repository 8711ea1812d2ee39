/* rope.cuh — one rotary pair's rotation on the device, shared by the rope op (rope_cuda.cu) and the rope fused
 * into the tensor-core decode (sdpa_decode_mma_cuda.cu), so that the two give the same bits: the angle
 * position · inv_freq in float64, reduced mod 2π (rope_freq.h), sincosf of the reduced float angle, then
 * (x1·cos − x2·sin, x2·cos + x1·sin) in float32 with explicit roundings (no contraction left to the compiler).
 * Tests: tests/python/test_ops_llm.py (the op), tests/python/test_kv_cache_rope.py (fused against the op). */
#ifndef LC_BACKEND_CUDA_ROPE_CUH
#define LC_BACKEND_CUDA_ROPE_CUH

#include "core/rope_freq.h"

/* cos and sin of a pair's angle position · inv (float64, reduced mod 2π, then sincosf of the float angle). */
__device__ __forceinline__ void lc_rope_cs(double pos, double inv, float *cs, float *sn) {
    const float r = (float)lc_rope_angle_reduce(pos * inv);
    sincosf(r, sn, cs);
}
/* The pair (x1, x2) rotated by (cs, sn). */
__device__ __forceinline__ void lc_rope_apply(float x1, float x2, float cs, float sn, float *o1, float *o2) {
    *o1 = __fmaf_rn(x1, cs, -__fmul_rn(x2, sn));
    *o2 = __fmaf_rn(x2, cs, __fmul_rn(x1, sn));
}
__device__ __forceinline__ void lc_rope_rotate(float x1, float x2, double pos, double inv, float *o1, float *o2) {
    float cs, sn;
    lc_rope_cs(pos, inv, &cs, &sn);
    lc_rope_apply(x1, x2, cs, sn, o1, o2);
}

#endif
