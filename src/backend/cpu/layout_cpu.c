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

/* The backend's gather entry: a strided view into a contiguous buffer, or (dst_strided, concat) into a
 * strided view: a row-major odometer over the outer axes gives both offsets (a contiguous dst has row-major
 * strides); a bit-exact copy of elem-byte elements, the innermost axis with one memcpy when both its strides
 * are 1. Tests: tests/python/test_layout.py. */
lc_status lc_cpu_gather(const lc_gather_args *g) {
    if (g->n == 0) return LC_OK;
    const int nd = g->ndim;
    int64_t dst_st[LC_MAX_DIMS], step = 1;
    for (int k = nd - 1; k >= 0; k--) {
        dst_st[k] = g->dst_strided ? g->dst_st[k] : step;
        step *= g->shape[k];
    }
    const int64_t inner = nd ? g->shape[nd - 1] : 1, ist = nd ? g->st[nd - 1] : 0, dist = nd ? dst_st[nd - 1] : 0;
    int64_t idx[LC_MAX_DIMS] = {0};
    const char *src = g->src;
    char *dst = g->dst;
    for (int64_t done = 0; done < g->n; done += inner) {
        int64_t off = 0, doff = 0;
        for (int k = 0; k < nd - 1; k++) off += idx[k] * g->st[k], doff += idx[k] * dst_st[k];
        const char *s = src + (size_t)off * g->elem;
        char *o = dst + (size_t)doff * g->elem;
        if (ist == 1 && dist == 1)
            memcpy(o, s, (size_t)inner * g->elem);
        else
            for (int64_t j = 0; j < inner; j++)
                memcpy(o + (size_t)(j * dist) * g->elem, s + (size_t)(j * ist) * g->elem, g->elem);
        for (int k = nd - 2; k >= 0; k--) { /* odometer over the outer axes */
            if (++idx[k] < g->shape[k]) break;
            idx[k] = 0;
        }
    }
    return LC_OK;
}
