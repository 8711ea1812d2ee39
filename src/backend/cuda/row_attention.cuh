/* row_attention.cuh — device helpers shared by the small fused attention kernels
 * (conv_attention_cuda.cu, attention_projection_cuda.cu), where one warp owns one query row and kᵀ
 * [d][ldk] sits in shared memory: warp reductions, the row's scores (lane per key, 32 keys at a time;
 * q in registers when the head size D is compiled in, D <= 64) and the softmax numerators in place.
 * Causal rows pass keys = row + 1: the score, softmax and p·v loops stop there, so masked k and v rows
 * are never read (a NaN/Inf in them cannot reach the row); NaN/Inf in visible keys propagate.
 * Tests: tests/python/test_attention_nonfinite.py, tests/python/test_sessions.py, tests/python/test_graph_plan.py (through both kernels). */
#ifndef LC_ROW_ATTENTION_CUH
#define LC_ROW_ATTENTION_CUH

#include <math.h>

__device__ __forceinline__ float lc_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float lc_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* s[t] = scale · q·k_t for t < keys; returns the row maximum (every lane). D > 0: d == D. */
template <int D>
__device__ __forceinline__ float lc_row_scores(const float *q, const float *kt, int ldk, int d, int keys, float scale,
                                               float *s, int lane) {
    constexpr int QR = (D > 0 && D <= 64) ? D : 1;
    float qr[QR];
    if (QR > 1) {
#pragma unroll
        for (int j = 0; j < QR; j++) qr[j] = q[j];
    }
    float mx = -INFINITY;
    for (int t = lane; t < keys; t += 32) {
        const float *kc = kt + t;
        float a0 = 0.0f, a1 = 0.0f; /* two chains: the loads of a step do not wait on the last FMA */
        if (QR > 1) {
#pragma unroll
            for (int j = 0; j < QR; j += 2) {
                a0 = fmaf(qr[j], kc[j * ldk], a0);
                if (j + 1 < QR) a1 = fmaf(qr[j + 1], kc[(j + 1) * ldk], a1);
            }
        } else {
            int j = 0;
            for (; j + 2 <= d; j += 2) {
                a0 = fmaf(q[j], kc[j * ldk], a0);
                a1 = fmaf(q[j + 1], kc[(j + 1) * ldk], a1);
            }
            if (j < d) a0 = fmaf(q[j], kc[j * ldk], a0);
        }
        const float acc = (a0 + a1) * scale;
        s[t] = acc;
        mx = fmaxf(mx, acc);
    }
    return lc_warp_max(mx);
}

/* s[t] = exp(s[t] - mx) for t < keys; returns their sum (every lane), the row visible to the warp. */
__device__ __forceinline__ float lc_row_softmax(float *s, int keys, float mx, int lane) {
    float sum = 0.0f;
    for (int t = lane; t < keys; t += 32) {
        const float e = expf(s[t] - mx);
        s[t] = e;
        sum += e;
    }
    sum = lc_warp_sum(sum);
    __syncwarp();
    return sum;
}

#endif
