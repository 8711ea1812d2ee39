// prims.h — host emulation of the CUDA primitives the sdpa_mma kernel uses (warp collectives through barriers,
// ldmatrix / mma.sync per the PTX fragment layouts, cp.async as an immediate copy). Used by emu.cpp.
#include <barrier>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>
#include <algorithm>
struct dim3e { unsigned x, y, z; };
struct uint4 { unsigned x, y, z, w; };
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
thread_local dim3e threadIdx, blockIdx;
thread_local int my_warp, my_lane;
namespace lc_sdpa_mma { alignas(16) uint4 lc_sdpa_mma_smem[65536]; }
using lc_sdpa_mma::lc_sdpa_mma_smem;
static std::barrier<> *block_bar;
struct WarpX { std::barrier<> *bar; uint32_t u[32][8]; };
static WarpX warps[16];
using std::min;
using std::max;
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__
static inline void __syncthreads() { block_bar->arrive_and_wait(); }
static std::atomic<int> g_or{0};
static inline int __syncthreads_or(int pr) { if (pr) g_or = 1; block_bar->arrive_and_wait(); int r = g_or; block_bar->arrive_and_wait(); if (threadIdx.x == 0) g_or = 0; block_bar->arrive_and_wait(); return r; }
static inline float fmaxf_(float a, float b) { return std::fmax(a, b); }
static inline uint32_t xchg_u(uint32_t v, int src) {
    WarpX &w = warps[my_warp]; w.u[my_lane][0] = v; w.bar->arrive_and_wait();
    uint32_t r = w.u[src & 31][0]; w.bar->arrive_and_wait(); return r;
}
static inline float __shfl_xor_sync(unsigned, float v, int m) { uint32_t b; memcpy(&b, &v, 4); b = xchg_u(b, my_lane ^ m); float f; memcpy(&f, &b, 4); return f; }
static inline uint32_t __shfl_sync(unsigned, uint32_t v, int src) { return xchg_u(v, src); }
static inline void __syncwarp() { warps[my_warp].bar->arrive_and_wait(); }
static inline bool __any_sync(unsigned, bool p) {
    WarpX &w = warps[my_warp]; w.u[my_lane][0] = p; w.bar->arrive_and_wait();
    bool r = false; for (int i = 0; i < 32; i++) r |= w.u[i][0] != 0; w.bar->arrive_and_wait(); return r;
}
/* c += A·B, one m16n8kK mma of the warp: the lanes' a[4], b0, b1 are exchanged (u[lane][0..3], [4], [5]); fa(u, row,
 * k) and fb(u, col, k) read the operands from there by the type's PTX fragment layout; exact products and sum. */
template <int K, typename FA, typename FB>
static inline void mma_emu(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, FA fa, FB fb) {
    WarpX &w = warps[my_warp];
    for (int i = 0; i < 4; i++) w.u[my_lane][i] = a[i];
    w.u[my_lane][4] = b0, w.u[my_lane][5] = b1;
    w.bar->arrive_and_wait();
    const int g = my_lane >> 2, q = my_lane & 3;
    for (int e = 0; e < 4; e++) {
        const int row = g + 8 * (e >> 1), col = 2 * q + (e & 1);
        double acc = c[e];
        for (int k = 0; k < K; k++) acc += (double)fa(w.u, row, k) * fb(w.u, col, k);
        c[e] = (float)acc;
    }
    w.bar->arrive_and_wait();
}
static inline uint16_t sm16(uint32_t byteoff) { uint16_t v; memcpy(&v, (char *)lc_sdpa_mma_smem + byteoff, 2); return v; }
static inline float bf2f(uint32_t h) { uint32_t b = h << 16; float f; memcpy(&f, &b, 4); return f; }
static inline uint16_t f2bf(float f) { uint32_t b; memcpy(&b, &f, 4); if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0; b += 0x7fff + ((b >> 16) & 1); return b >> 16; }
static inline float hf2f(uint32_t h) { _Float16 x; uint16_t s = h; memcpy(&x, &s, 2); return (float)x; }
static inline uint16_t f2hf(float f) { _Float16 x = (_Float16)f; uint16_t s; memcpy(&s, &x, 2); return s; }
namespace lc_sdpa_mma {
static inline uint32_t smem_u32(const void *p) { return (uint32_t)((const char *)p - (const char *)lc_sdpa_mma_smem); }
static inline void cp_async16(uint32_t dst, const void *src, int bytes) {
    char *d = (char *)lc_sdpa_mma_smem + dst; memset(d, 0, 16); if (bytes) memcpy(d, src, bytes);
}
static inline void cp_commit() {}
template <int N> static inline void cp_wait() {}
static inline void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
    WarpX &w = warps[my_warp]; w.u[my_lane][0] = addr; w.bar->arrive_and_wait();
    const int g = my_lane >> 2, c = my_lane & 3;
    for (int i = 0; i < 4; i++) { uint32_t a = w.u[8 * i + g][0]; r[i] = sm16(a + 4 * c) | (uint32_t)sm16(a + 4 * c + 2) << 16; }
    w.bar->arrive_and_wait();
}
static inline void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
    WarpX &w = warps[my_warp]; w.u[my_lane][0] = addr; w.bar->arrive_and_wait();
    const int g = my_lane >> 2, c = my_lane & 3;
    for (int i = 0; i < 4; i++) r[i] = sm16(w.u[8 * i + 2 * c][0] + 2 * g) | (uint32_t)sm16(w.u[8 * i + 2 * c + 1][0] + 2 * g) << 16;
    w.bar->arrive_and_wait();
}
template <bool BF16> static inline float cv(uint32_t h) { return BF16 ? bf2f(h & 0xffff) : hf2f(h & 0xffff); }
template <bool BF16> static inline float half_of(uint32_t reg, int hi) { return cv<BF16>(hi ? reg >> 16 : reg & 0xffff); }
template <bool BF16> static inline void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    mma_emu<16>(c, a, b0, b1, [](const uint32_t (&u)[32][8], int row, int k) {
        return half_of<BF16>(u[4 * (row & 7) + ((k & 7) >> 1)][(row >= 8) + 2 * (k >= 8)], k & 1);
    }, [](const uint32_t (&u)[32][8], int col, int k) { return half_of<BF16>(u[4 * col + ((k & 7) >> 1)][4 + (k >= 8)], k & 1); });
}
static inline float ex2(float x) { return exp2f(x); }
template <bool BF16> static inline uint32_t pack2(float lo, float hi) {
    return BF16 ? (f2bf(lo) | (uint32_t)f2bf(hi) << 16) : (f2hf(lo) | (uint32_t)f2hf(hi) << 16);
}
template <bool BF16> static inline float to_f32(uint32_t h16) { return cv<BF16>(h16); }
}
#define fmaxf fmaxf_
