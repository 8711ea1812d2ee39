// prims_tf32.h — what the float32 3xTF32 sdpa kernel (src/backend/cuda/sdpa_tf32.cu) needs on top of prims.h for
// the host emulation (emu_tf32.cpp): float2/float4, bit casts, a float __shfl_sync, and mma.sync m16n8k8 .tf32
// per the PTX fragment layouts, its operands truncated to tf32 (the low 13 mantissa bits dropped) and the products
// summed exactly (the card's float32 accumulation is not round-to-nearest; that is not emulated).
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
static inline float2 make_float2(float a, float b) { return {a, b}; }
static inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
static inline uint32_t __float_as_uint(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline float __shfl_sync(unsigned m, float v, int src) { return __uint_as_float(__shfl_sync(m, __float_as_uint(v), src)); }
namespace lc_sdpa_tf32 {
/* c += A·B: A 16x8 (a0 = A[g][c], a1 = A[g+8][c], a2 = A[g][c+4], a3 = A[g+8][c+4]), B 8x8 (b0 = B[c][g],
 * b1 = B[c+4][g]), C (c0, c1 = C[g][2c, 2c+1], c2, c3 = C[g+8][2c, 2c+1]); lane = 4g + c. */
static inline void mma_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    mma_emu<8>(c, a, b0, b1, [](const uint32_t (&u)[32][8], int row, int k) {
        return __uint_as_float(u[4 * (row & 7) + (k & 3)][(row >= 8) + 2 * (k >= 4)] & 0xffffe000u);
    }, [](const uint32_t (&u)[32][8], int col, int k) { return __uint_as_float(u[4 * col + (k & 3)][4 + (k >= 4)] & 0xffffe000u); });
}
}
