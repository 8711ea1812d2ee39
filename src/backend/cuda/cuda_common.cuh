/* cuda_common.cuh — small helpers shared by the .cu kernel files of the CUDA backend.
 * Tests: through the kernels (tests/c/test_ops.c, tests/python on "cuda"). */
#ifndef LC_CUDA_COMMON_CUH
#define LC_CUDA_COMMON_CUH

#include <cuda_runtime_api.h>

#define LC_CUDA_MAX_DEVICES 64

/* Multiprocessor count of the current device (cached per device; 132, an H100/H200, if the query fails). */
static inline int lc_cuda_sm_count(void) {
    static int cache[LC_CUDA_MAX_DEVICES];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= LC_CUDA_MAX_DEVICES) {
        (void)cudaGetLastError();
        return 132;
    }
    int sms = __atomic_load_n(&cache[dev], __ATOMIC_RELAXED);
    if (sms > 0) return sms;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms <= 0) {
        (void)cudaGetLastError();
        sms = 132;
    }
    __atomic_store_n(&cache[dev], sms, __ATOMIC_RELAXED);
    return sms;
}

#endif
