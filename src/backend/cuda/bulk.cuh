/* bulk.cuh — shared-memory mbarriers and bulk copies (cp.async.bulk, sm_90) for kernels that stream weights into
 * a ring of shared-memory slots: decode_fused_cuda.cu (the fused decode step) and gemv_ring_cuda.cu (the batch-1
 * [n, k] GEMV). A slot's mbarrier is armed with the bytes it expects (lc_mbar_expect_tx, one arrival), the copy
 * completes them, a waiter tests the phase parity. Tests: those kernels' tests (tests/python/test_decode_program.py,
 * tests/c/test_gemv_cuda.c). */
#ifndef LC_BULK_CUH
#define LC_BULK_CUH

#include <stdint.h>

__device__ __forceinline__ unsigned lc_smem_addr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void lc_mbar_init(uint64_t *b, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(lc_smem_addr(b)), "r"(count) : "memory");
}
/* After a block's mbarrier inits, before any thread or copy uses them (one thread, then a block barrier). */
__device__ __forceinline__ void lc_mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
__device__ __forceinline__ void lc_mbar_expect_tx(uint64_t *b, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(lc_smem_addr(b)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void lc_mbar_arrive(uint64_t *b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(lc_smem_addr(b)) : "memory");
}
__device__ __forceinline__ bool lc_mbar_test(uint64_t *b, unsigned parity) {
    unsigned ok;
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(ok)
        : "r"(lc_smem_addr(b)), "r"(parity)
        : "memory");
    return ok != 0;
}
__device__ __forceinline__ void lc_mbar_wait(uint64_t *b, unsigned parity) {
    while (!lc_mbar_test(b, parity)) {
    }
}
/* bytes (a multiple of 16; src and dst 16-byte aligned) from global src into shared dst, completing on bar. */
__device__ __forceinline__ void lc_bulk_g2s(void *dst, const void *src, unsigned bytes, uint64_t *bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                     lc_smem_addr(dst)),
                 "l"(src), "r"(bytes), "r"(lc_smem_addr(bar))
                 : "memory");
}
/* An L2 policy under which the lines a load brings in are the first evicted (createpolicy ... evict_first): for a
 * stream read once (a decode step's weights), so that it does not push out what L2 holds for the kernels
 * around it (their code, activations, KV caches). */
__device__ __forceinline__ uint64_t lc_l2_evict_first_policy() {
    uint64_t pol;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
    return pol;
}
/* lc_bulk_g2s under an L2 cache policy (lc_l2_evict_first_policy). */
__device__ __forceinline__ void lc_bulk_g2s_hint(void *dst, const void *src, unsigned bytes, uint64_t *bar, uint64_t pol) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
            lc_smem_addr(dst)),
        "l"(src), "r"(bytes), "r"(lc_smem_addr(bar)), "l"(pol)
        : "memory");
}
/* Generic-proxy accesses of shared memory before, async-proxy (bulk copy) writes after: a slot read by threads is
 * overwritten by a copy only after this fence (the issuing thread, after the block barrier that ends the reads). */
__device__ __forceinline__ void lc_fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

#endif
