/* layout_cpu.c — data-movement ops on the CPU: qkv_pack_repeat (dst[i] = src[i % src_n], i < dst_n:
 * the seed's flatten-then-repeat-or-truncate of a conv output into q|k|v), as whole-block copies of
 * lc_dtype_size(dtype)-byte elements (float32, float16, bfloat16: a bit-exact copy, NaN payloads kept).
 * Tests: tests/c/test_ops.c (qkv_pack cases), tests/c/test_lowp_attn.c (16-bit), tests/python/test_sessions.py. */
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/internal.h"
#include "lightning_core/dtype.h"

lc_status lc_cpu_qkv_pack(const lc_qkv_pack_args *args, const char **path) {
    const lc_dtype_traits *t = lc_dtype_traits_of(args->dtype);
    LC_CHECK_INVARIANT(t != NULL && args->dst_n >= 0 && (args->src_n > 0 || args->dst_n == 0));
    const size_t es = t->size;
    const char *src = args->src;
    char *dst = args->dst;
    for (int64_t done = 0; done < args->dst_n;) {
        const int64_t chunk = args->dst_n - done < args->src_n ? args->dst_n - done : args->src_n;
        memcpy(dst + (size_t)done * es, src, (size_t)chunk * es);
        done += chunk;
    }
    if (path) *path = es == 2 ? "cpu_copy16" : "cpu_copy";
    return LC_OK;
}
