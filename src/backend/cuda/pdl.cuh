/* pdl.cuh — programmatic dependent launch (sm_90) for the kernels of a decode step.
 * A kernel launched by lc_pdl_launch may start while the kernel before it in the stream is still running;
 * it must call lc_pdl_wait() (griddepcontrol.wait: the previous grid has completed and its writes are
 * visible) in every thread before it reads or writes anything another kernel touches. Work that depends on
 * nothing earlier (the GEMV's first weight rows) goes before the wait: that is the overlap. lc_pdl_trigger()
 * (griddepcontrol.launch_dependents) lets the next PDL launch start its blocks; it is issued at a kernel's
 * entry, which is safe because the dependent's wait still waits for this whole grid. Transitivity holds
 * because every PDL kernel waits in every thread before it exits: its completion implies its predecessor's.
 * Both instructions are no-ops in a kernel launched without the attribute. LC_PDL=0 (read once per
 * process) launches without it, for A/B timing. Captured in a CUDA graph as programmatic edges.
 * The timeline build (cmake -DLC_TIMELINE=ON) makes lc_pdl_wait record its wait times (below; docs/design.md).
 * Tests: every kernel using it is covered by its op's CUDA tests (tests/c/test_gemv_cuda.c, test_sdpa_cuda.c,
 * tests/python/test_engine.py's graph-replayed decode against eager and the float64 reference). */
#ifndef LC_PDL_CUH
#define LC_PDL_CUH

#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include <utility>

__device__ __forceinline__ void lc_pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
#ifndef LC_TIMELINE
__device__ __forceinline__ void lc_pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
#define LC_TL_READER(fn)
#else
/* The timeline build (cmake -DLC_TIMELINE=ON; a developer's view of a decode step's real schedule, which ncu,
 * serialising the kernels, cannot give): thread 0 of the first and of the last block of every kernel that
 * waits here records %globaltimer before and after griddepcontrol.wait (after it: the previous grid has
 * completed) into this translation unit's buffer: [0] = blocks << 32 | last << 16 | SM, [1] = before, [2] =
 * after (ns). LC_TL_READER(fn) in a .cu file defines its reader; lc_cuda_timeline (timeline.c) gathers them. */
#define LC_TL_CAP 32768
static __device__ unsigned long long lc_tl_buf[LC_TL_CAP][3];
static __device__ unsigned lc_tl_n;
__device__ __forceinline__ unsigned long long lc_tl_now() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void lc_pdl_wait() {
    const unsigned long long t0 = lc_tl_now();
    asm volatile("griddepcontrol.wait;" ::: "memory");
    const unsigned long long t1 = lc_tl_now();
    const unsigned nb = gridDim.x * gridDim.y * gridDim.z, b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    if (threadIdx.x + threadIdx.y + threadIdx.z == 0 && (b == 0 || b == nb - 1)) {
        unsigned sm;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        const unsigned i = atomicAdd(&lc_tl_n, 1u);
        if (i < LC_TL_CAP) {
            lc_tl_buf[i][0] = (unsigned long long)nb << 32 | (unsigned long long)(b != 0 || nb == 1) << 16 | sm;
            lc_tl_buf[i][1] = t0;
            lc_tl_buf[i][2] = t1;
        }
    }
}
/* fn(dst, cap, count, reset): up to cap records (3 values each) into dst, their number into *count, the buffer
 * emptied when reset; 0, or -1 on a CUDA error. */
#define LC_TL_READER(fn)                                                                                       \
    extern "C" int fn(unsigned long long *dst, size_t cap, size_t *count, int reset) {                         \
        unsigned n = 0;                                                                                        \
        if (cudaMemcpyFromSymbol(&n, lc_tl_n, sizeof n) != cudaSuccess) return -1;                             \
        const size_t take = n < LC_TL_CAP ? (n < cap ? n : cap) : (LC_TL_CAP < cap ? LC_TL_CAP : cap);         \
        if (take && cudaMemcpyFromSymbol(dst, lc_tl_buf, take * 3 * sizeof(unsigned long long)) != cudaSuccess) \
            return -1;                                                                                         \
        *count = take;                                                                                         \
        const unsigned z = 0;                                                                                  \
        return reset && cudaMemcpyToSymbol(lc_tl_n, &z, sizeof z) != cudaSuccess ? -1 : 0;                     \
    }
#endif
/* Entry of a kernel with nothing to do before the previous grid is done: let the next one start, then wait. */
__device__ __forceinline__ void lc_pdl_entry() {
    lc_pdl_trigger();
    lc_pdl_wait();
}

/* 1 unless the env LC_PDL is "0" (read once). */
static inline int lc_pdl_enabled() {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("LC_PDL");
        v = !(e && strcmp(e, "0") == 0);
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* LC_PDL_CARVEOUT=N (0..100; read once; unset or out of range: -1, the driver's choice): the shared-memory
 * carveout in percent that every kernel launched here asks for (cudaFuncAttributePreferredSharedMemoryCarveout,
 * set at each launch: an A/B knob). Consecutive kernels of a decode step with different carveouts cannot share
 * an SM while PDL overlaps them (the SM drains and reconfigures first); one carveout for all may avoid it. */
static inline int lc_pdl_carveout() {
    static int cached = -2;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v == -2) {
        const char *e = getenv("LC_PDL_CARVEOUT");
        v = e && *e ? atoi(e) : -1;
        if (v < 0 || v > 100) v = -1;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}
template <typename... KArgs> static inline void lc_pdl_prefer_carveout(void (*kern)(KArgs...)) {
    const int c = lc_pdl_carveout();
    if (c >= 0) (void)cudaFuncSetAttribute((const void *)kern, cudaFuncAttributePreferredSharedMemoryCarveout, c);
}

/* The launch configuration of kern<<<grid, block, smem, stream>>> with the caller's attrs[0, n) and the
 * programmatic-stream-serialisation attribute appended as attrs[n] when PDL is enabled (attrs holds n + 1). */
static inline cudaLaunchConfig_t lc_pdl_config(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                               cudaLaunchAttribute *attrs, int n) {
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = attrs;
    cfg.numAttrs = (unsigned)n + (lc_pdl_enabled() ? 1u : 0u);
    return cfg;
}

/* kern<<<grid, block, smem, stream>>>(args...) with the programmatic-stream-serialisation attribute; returns
 * the launch's error, which (as for any runtime call) cudaGetLastError also reports, so a launcher may keep
 * its `return cudaGetLastError();`. */
template <typename... KArgs, typename... Args>
static cudaError_t lc_pdl_launch(void (*kern)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                 Args &&...args) {
    cudaLaunchAttribute attr[1];
    lc_pdl_prefer_carveout(kern);
    const cudaLaunchConfig_t cfg = lc_pdl_config(grid, block, smem, stream, attr, 0);
    return cudaLaunchKernelEx(&cfg, kern, std::forward<Args>(args)...);
}

/* The launch attribute for thread-block clusters of `cluster` blocks (the launch and gemv_cuda.cu's occupancy
 * query build it alike). */
static inline cudaLaunchAttribute lc_cluster_attr(dim3 cluster) {
    cudaLaunchAttribute a;
    a.id = cudaLaunchAttributeClusterDimension;
    a.val.clusterDim.x = cluster.x;
    a.val.clusterDim.y = cluster.y;
    a.val.clusterDim.z = cluster.z;
    return a;
}

/* Clusters of the `cluster` shape of kern (threads a block, smem bytes of dynamic shared memory) that can be resident at
 * once on the current device (cudaOccupancyMaxActiveClusters: a cluster's blocks share one GPC, so fewer fit than the
 * SMs' slots); 0 when the query fails. The kernel's shared-memory and non-portable-size attributes must be set. */
template <typename... KArgs>
static int lc_max_active_clusters(void (*kern)(KArgs...), dim3 cluster, unsigned threads, size_t smem) {
    cudaLaunchAttribute attr = lc_cluster_attr(cluster);
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = cluster;
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = smem;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int n = 0;
    return cudaOccupancyMaxActiveClusters(&n, kern, &cfg) == cudaSuccess ? n : 0;
}

/* A capacity cached per device: slot_of(dev) gives the cache slot of the current device (capacity + 1; 0 not yet
 * asked; at most max_devices), query() asks for it. A refused size (0) clears the error and is asked again next
 * time; racing writers store the same value. 0 without a device. */
template <typename SlotOf, typename Query> static int lc_cluster_capacity_cached(int max_devices, SlotOf slot_of, Query query) {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= max_devices) {
        (void)cudaGetLastError();
        return 0;
    }
    int *slot = slot_of(dev);
    const int known = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if (known) return known - 1;
    const int n = query();
    if (n == 0) (void)cudaGetLastError();
    else __atomic_store_n(slot, n + 1, __ATOMIC_RELAXED);
    return n;
}

/* set() (a kernel's function attributes: a driver call each, about as costly as a launch) once per device:
 * slot_of(dev) is the device's flag for that kernel (0: not yet set); set's error, or cudaSuccess. A device
 * past max_devices: every call. */
template <typename SlotOf, typename Set> static cudaError_t lc_once_per_device(int max_devices, SlotOf slot_of, Set set) {
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    int *const done = dev >= 0 && dev < max_devices ? slot_of(dev) : nullptr;
    if (done && __atomic_load_n(done, __ATOMIC_ACQUIRE)) return cudaSuccess;
    e = set();
    if (e == cudaSuccess && done) __atomic_store_n(done, 1, __ATOMIC_RELEASE);
    return e;
}

/* The same with the grid in thread-block clusters of `cluster` blocks (cudaLaunchAttributeClusterDimension;
 * grid divisible by it). */
template <typename... KArgs, typename... Args>
static cudaError_t lc_pdl_launch_cluster(void (*kern)(KArgs...), dim3 grid, dim3 block, size_t smem,
                                         cudaStream_t stream, dim3 cluster, Args &&...args) {
    cudaLaunchAttribute attr[2];
    attr[0] = lc_cluster_attr(cluster);
    lc_pdl_prefer_carveout(kern);
    const cudaLaunchConfig_t cfg = lc_pdl_config(grid, block, smem, stream, attr, 1);
    return cudaLaunchKernelEx(&cfg, kern, std::forward<Args>(args)...);
}

#endif
