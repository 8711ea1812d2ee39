/* layout_cpu.c — data-movement ops on the CPU: qkv_pack_repeat (dst[i] = src[i % src_n], i < dst_n:
 * the seed's flatten-then-repeat-or-truncate of a conv output into q|k|v), float32, as whole-block copies.
 * Tests: tests/c/test_ops.c (qkv_pack cases), tests/python/test_sessions.py (conv->attention chain). */
#include <string.h>

#include "backend/cpu/cpu_kernels.h"

lc_status lc_cpu_qkv_pack(const lc_qkv_pack_args *args, const char **path) {
    for (int64_t done = 0; done < args->dst_n;) {
        const int64_t chunk = args->dst_n - done < args->src_n ? args->dst_n - done : args->src_n;
        memcpy(args->dst + done, args->src, (size_t)chunk * sizeof(float));
        done += chunk;
    }
    if (path) *path = "cpu_copy";
    return LC_OK;
}
