// grid_barrier_probe.cu — not part of the library or its build. What one grid-wide barrier costs on this card in
// the fused decode step's form
// (decode_fused_cuda.cu: one 512-thread block per SM, thread 32 adds to a global arrival counter after a
// fence and polls it with acquire loads), alone and while warp 0 of every block streams weights from DRAM
// with 24 KiB bulk copies (the fused step's producer). Prints us a barrier for each mode and poll sleep.
// (barrier_probe.cu, session 12, measured the idle case of a generation-flag barrier: 1.87 us at 132 blocks.)
// Build/run (GPU machine): nvcc -O3 -arch=sm_90 -o /tmp/gbp scripts/probes/grid_barrier_probe.cu && /tmp/gbp
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>

__device__ __forceinline__ unsigned ld_acquire(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ unsigned smem(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

__global__ void __launch_bounds__(512, 1) probe(unsigned *ctr, int n_bar, const unsigned char *w, size_t w_bytes,
                                                int stream, int sleep_ns, unsigned long long *out) {
    extern __shared__ __align__(128) unsigned char ring[];
    __shared__ uint64_t bar[8];
    __shared__ volatile int done;
    if (threadIdx.x == 0) {
        done = 0;
        for (int i = 0; i < 8; i++) asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem(&bar[i])));
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    if (threadIdx.x < 32) { // the producer: stream this block's share of w through 8 slots until the barriers end
        if (threadIdx.x == 0 && stream) {
            const size_t share = w_bytes / gridDim.x / 24576 * 24576;
            const unsigned char *base = w + share * blockIdx.x;
            unsigned phase = 0;
            for (size_t off = 0, it = 0; !done; off = (off + 24576) % share, it++) {
                const int s = (int)(it % 8);
                if (it >= 8) { // wait for the copy that used this slot
                    unsigned ok = 0;
                    while (!ok)
                        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0,1,0,p; }"
                                     : "=r"(ok) : "r"(smem(&bar[s])), "r"(phase ^ 1u) : "memory");
                }
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem(&bar[s])), "r"(24576u) : "memory");
                asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                                 smem(ring + s * 24576)), "l"(base + off), "r"(24576u), "r"(smem(&bar[s])) : "memory");
                if (s == 7) phase ^= 1u;
            }
        }
        return;
    }
    unsigned long long t0 = 0;
    for (int b = 1; b <= n_bar; b++) {
        if (b == 2) t0 = clock64(); // the first barrier lines the blocks up
        asm volatile("bar.sync 1, 480;" ::: "memory");
        if (threadIdx.x == 32) {
            __threadfence();
            atomicAdd(ctr, 1u);
            const unsigned target = (unsigned)b * gridDim.x;
            while (ld_acquire(ctr) < target)
                if (sleep_ns) __nanosleep(sleep_ns);
            __threadfence();
        }
        asm volatile("bar.sync 1, 480;" ::: "memory");
    }
    if (threadIdx.x == 32) {
        if (blockIdx.x == 0) *out = clock64() - t0;
        done = 1;
    }
}

int main() {
    int dev = 0, sms = 0, clk = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, dev); // kHz
    const size_t w_bytes = (size_t)1 << 30;
    unsigned char *w;
    unsigned *ctr;
    unsigned long long *out, cycles = 0;
    cudaMalloc(&w, w_bytes);
    cudaMemset(w, 1, w_bytes);
    cudaMalloc(&ctr, 4);
    cudaMalloc(&out, 8);
    const int smem = 8 * 24576;
    cudaFuncSetAttribute(probe, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    const int n_bar = 2001;
    for (int stream = 0; stream < 2; stream++)
        for (int sl : {0, 32, 64, 256}) {
            cudaMemset(ctr, 0, 4);
            probe<<<sms, 512, smem>>>(ctr, n_bar, w, w_bytes, stream, sl, out);
            cudaError_t e = cudaDeviceSynchronize();
            cudaMemcpy(&cycles, out, 8, cudaMemcpyDeviceToHost);
            printf("grid barrier, %d blocks, %s, poll sleep %3d ns: %.2f us a barrier (%s)\n", sms,
                   stream ? "weights streaming" : "idle memory", sl, cycles / (double)(n_bar - 1) / (clk / 1e3),
                   cudaGetErrorString(e));
        }
    return 0;
}
