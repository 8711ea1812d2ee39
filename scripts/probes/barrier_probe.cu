// scripts/probes/barrier_probe.cu — not part of the library or its build; run on a GPU machine:
//   nvcc -arch=sm_90 -O3 -std=c++17 -o /tmp/bp scripts/probes/barrier_probe.cu && /tmp/bp
// Probe for the persistent-decode design note (docs/design.md): what a grid-wide barrier costs on the card,
// and whether phases of a persistent kernel separated by barriers stream distinct weights (DRAM) faster than
// the same phases as one kernel each in a CUDA graph. Each phase reads S bytes of its own buffer (16-byte
// loads, 8 in flight a thread) and reduces them to one value a thread. Prints us per phase.
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e_), __LINE__); return 1; } } while (0)
__device__ unsigned g_count;
__device__ volatile unsigned g_gen;
__device__ __forceinline__ void grid_barrier(unsigned nb) {
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned gen = g_gen;
        __threadfence();
        if (atomicAdd(&g_count, 1u) == nb - 1) { g_count = 0; __threadfence(); g_gen = gen + 1; }
        else while (g_gen == gen) { }
        __threadfence();
    }
    __syncthreads();
}
__device__ __forceinline__ float phase_read(const uint4 *p, size_t n16, float acc) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x, st = (size_t)gridDim.x * blockDim.x;
    for (size_t i = t; i < n16; i += 8 * st) {
        uint4 v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) v[u] = i + u * st < n16 ? __ldcs(p + i + u * st) : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int u = 0; u < 8; u++) acc += __uint_as_float(v[u].x ^ v[u].y ^ v[u].z ^ v[u].w);
    }
    return acc;
}
__device__ __forceinline__ void phase_prefetch(const char *p, size_t bytes) { /* this block's share into L2 */
    const size_t per = (bytes / gridDim.x + 127) & ~(size_t)127, b0 = per * blockIdx.x;
    for (size_t o = b0 + threadIdx.x * 128; o < b0 + per && o < bytes; o += blockDim.x * 128)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(p + o));
}
__global__ void persistent(const uint4 *buf, size_t n16, int phases, int prefetch, float *out) {
    float acc = 0.f;
    for (int ph = 0; ph < phases; ph++) {
        acc = phase_read(buf + (size_t)ph * n16, n16, acc);
        if (prefetch && ph + 1 < phases) phase_prefetch((const char *)(buf + (size_t)(ph + 1) * n16), n16 * 16);
        grid_barrier(gridDim.x);
    }
    if (acc == 12345.f) out[0] = acc;
}
__global__ void one_phase(const uint4 *buf, size_t n16, float *out) {
    const float acc = phase_read(buf, n16, 0.f);
    if (acc == 12345.f) out[0] = acc;
}
int main() {
    int sms = 0; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    int occ = 0; CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, persistent, 256, 0));
    const int phases = 48;
    const size_t sizes[] = {1179648, 3538944, 10485760, 23068672}; /* 768x768, 768x2304 bf16, 10 MB, 22 MB */
    float *out; CK(cudaMalloc(&out, 4));
    cudaStream_t s; CK(cudaStreamCreate(&s));
    cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    printf("SMs %d, resident blocks of 256 threads per SM %d\n", sms, occ);
    for (size_t bytes : sizes) {
        const size_t n16 = bytes / 16;
        uint4 *buf; CK(cudaMalloc(&buf, bytes * phases)); CK(cudaMemset(buf, 1, bytes * phases));
        for (int bps = 1; bps <= 2; bps++) {
            const int grid = sms * (bps < occ ? bps : occ);
            for (int pf = 0; pf <= 1; pf++) {
                persistent<<<grid, 256, 0, s>>>(buf, n16, phases, pf, out); CK(cudaStreamSynchronize(s));
                CK(cudaEventRecord(e0, s));
                for (int r = 0; r < 10; r++) persistent<<<grid, 256, 0, s>>>(buf, n16, phases, pf, out);
                CK(cudaEventRecord(e1, s)); CK(cudaEventSynchronize(e1));
                float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
                const double us = ms * 1e3 / (10.0 * phases);
                printf("%6.2f MB/phase persistent grid %4d prefetch %d: %6.2f us/phase (%5.0f GB/s)\n", bytes / 1e6, grid, pf, us, bytes / us / 1e3);
            }
        }
        /* the same phases as one kernel each, captured in a graph */
        const int grid = sms * 2;
        cudaGraph_t g; cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
        for (int ph = 0; ph < phases; ph++) one_phase<<<grid, 256, 0, s>>>(buf + (size_t)ph * n16, n16, out);
        CK(cudaStreamEndCapture(s, &g)); CK(cudaGraphInstantiate(&ge, g, 0));
        CK(cudaGraphLaunch(ge, s)); CK(cudaStreamSynchronize(s));
        CK(cudaEventRecord(e0, s));
        for (int r = 0; r < 10; r++) CK(cudaGraphLaunch(ge, s));
        CK(cudaEventRecord(e1, s)); CK(cudaEventSynchronize(e1));
        float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
        const double us = ms * 1e3 / (10.0 * phases);
        printf("%6.2f MB/phase graph of kernels grid %4d:          %6.2f us/phase (%5.0f GB/s)\n", bytes / 1e6, grid, us, bytes / us / 1e3);
        CK(cudaGraphExecDestroy(ge)); CK(cudaGraphDestroy(g)); CK(cudaFree(buf));
    }
    /* the barrier alone */
    for (int bps = 1; bps <= 2; bps++) {
        const int grid = sms * (bps < occ ? bps : occ);
        persistent<<<grid, 256, 0, s>>>(nullptr, 0, 1000, 0, out); CK(cudaStreamSynchronize(s));
        CK(cudaEventRecord(e0, s)); persistent<<<grid, 256, 0, s>>>(nullptr, 0, 1000, 0, out);
        CK(cudaEventRecord(e1, s)); CK(cudaEventSynchronize(e1));
        float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
        printf("barrier alone, grid %4d: %.2f us\n", grid, ms * 1e3 / 1000.0);
    }
    return 0;
}
