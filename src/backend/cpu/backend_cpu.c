/* backend_cpu.c — the CPU backend table: host memory (64-byte aligned), copies, no-op sync, and the
 * kernel entries (indexed by op id, thin adapters over lc_call) of the files in src/backend/cpu/. Always built; the universal fallback.
 * Tests: tests/c/test_ops.c. */
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/internal.h"

static int lc_cpu_available(void) { return 1; }

static lc_status lc_cpu_alloc(size_t bytes, void **ptr) {
    *ptr = lc_aligned_alloc(bytes);
    if (!*ptr) return lc_error(LC_ERR_OUT_OF_MEMORY, "cpu: could not allocate %zu bytes", bytes);
    return LC_OK;
}

static lc_status lc_cpu_copy(void *dst, const void *src, size_t bytes) {
    memmove(dst, src, bytes);
    return LC_OK;
}

static lc_status lc_cpu_sync(void) { return LC_OK; }

/* Thin adapters: the one call struct -> each kernel's own arguments (op_call.c). */
LC_KERNEL_ADAPTER(lc_cpu_k_matmul, lc_matmul_args, lc_call_matmul, lc_cpu_matmul)
LC_KERNEL_ADAPTER(lc_cpu_k_conv2d, lc_conv2d_args, lc_call_conv2d, lc_cpu_conv2d)
LC_KERNEL_ADAPTER(lc_cpu_k_binary, lc_binary_args, lc_call_binary, lc_cpu_binary)
LC_KERNEL_ADAPTER(lc_cpu_k_relu, lc_relu_args, lc_call_relu, lc_cpu_relu)
LC_KERNEL_ADAPTER(lc_cpu_k_gelu, lc_gelu_args, lc_call_gelu, lc_cpu_gelu)
LC_KERNEL_ADAPTER(lc_cpu_k_layer_norm, lc_layer_norm_args, lc_call_layer_norm, lc_cpu_layer_norm)
LC_KERNEL_ADAPTER(lc_cpu_k_linear, lc_linear_args, lc_call_linear, lc_cpu_linear)
LC_KERNEL_ADAPTER(lc_cpu_k_norm_linear, lc_norm_linear_args, lc_call_norm_linear, lc_cpu_norm_linear)
LC_KERNEL_ADAPTER(lc_cpu_k_qkv_pack, lc_qkv_pack_args, lc_call_qkv_pack, lc_cpu_qkv_pack)
LC_KERNEL_ADAPTER(lc_cpu_k_rms_norm, lc_rms_norm_args, lc_call_rms_norm, lc_cpu_rms_norm)
LC_KERNEL_ADAPTER(lc_cpu_k_softmax, lc_softmax_args, lc_call_softmax, lc_cpu_softmax)
LC_KERNEL_ADAPTER(lc_cpu_k_silu, lc_silu_args, lc_call_silu, lc_cpu_silu)
LC_KERNEL_ADAPTER(lc_cpu_k_embedding, lc_embedding_args, lc_call_embedding, lc_cpu_embedding)
LC_KERNEL_ADAPTER(lc_cpu_k_argmax, lc_argmax_args, lc_call_argmax, lc_cpu_argmax)
LC_KERNEL_ADAPTER(lc_cpu_k_bcast, lc_bcast_args, lc_call_bcast, lc_cpu_bcast)
LC_KERNEL_ADAPTER(lc_cpu_k_attention_projection, lc_attention_projection_args, lc_call_attention_projection,
               lc_cpu_attention_projection)

/* sdpa, kv_append and rope carry their own strided argument struct (lc_call.ext, filled by src/ops/sdpa.c,
 * kv_cache.c and rope.c). */
/* sdpa; with lc_sdpa_args.append (the KV cache's append + attention) the append kernel first. A fused rotary
 * embedding (lc_sdpa_args.rope) is not taken here: the KV cache runs rope first. */
static lc_status lc_cpu_k_sdpa(const lc_call *c, const char **path) {
    const lc_sdpa_args *a = c->ext;
    if (a->rope) return lc_error(LC_ERR_UNSUPPORTED, "KVCache.attention: cpu: the rotary embedding does not fuse here");
    if (a->append) {
        lc_status st = lc_cpu_kv_append(a->append);
        if (st != LC_OK) return st;
    }
    return lc_cpu_sdpa(a, path);
}
/* attention_forward: sdpa's kernel on the call seen as [1, 1, seq, d] (path "cpu_sdpa_<isa>"). */
static lc_status lc_cpu_k_attention(const lc_call *c, const char **path) {
    lc_sdpa_args a;
    lc_call_attention_sdpa(c, &a);
    return lc_cpu_sdpa(&a, path);
}
/* rope: lc_rope_args through lc_call.ext (src/ops/rope.c). */
static lc_status lc_cpu_k_rope(const lc_call *c, const char **path) { return lc_cpu_rope(c->ext, path); }
/* sample: lc_sample_args through lc_call.ext (src/ops/sample.c). */
static lc_status lc_cpu_k_sample(const lc_call *c, const char **path) { return lc_cpu_sample(c->ext, path); }
static lc_status lc_cpu_k_kv_append(const lc_call *c, const char **path) {
    if (path) *path = "cpu_kv_append";
    return lc_cpu_kv_append(c->ext);
}

/* Which dtypes each kernel takes is the op table's cpu mask (op_table.c). */
const lc_backend lc_cpu_backend = {
    .name = "cpu",
    .device = LC_DEVICE_CPU,
    .available = lc_cpu_available,
    .alloc = lc_cpu_alloc,
    .free = lc_aligned_free,
    .copy_h2d = lc_cpu_copy,
    .copy_d2h = lc_cpu_copy,
    .copy_d2d = lc_cpu_copy,
    .sync = lc_cpu_sync,
    .gather = lc_cpu_gather,
    .kernels =
        {
            [LC_OP_MATMUL] = lc_cpu_k_matmul,
            [LC_OP_VECTOR_ADD] = lc_cpu_k_binary,
            [LC_OP_MATRIX_SUB] = lc_cpu_k_binary,
            [LC_OP_MATRIX_DIV] = lc_cpu_k_binary,
            [LC_OP_RELU] = lc_cpu_k_relu,
            [LC_OP_GELU] = lc_cpu_k_gelu,
            [LC_OP_LAYER_NORM] = lc_cpu_k_layer_norm,
            [LC_OP_ATTENTION] = lc_cpu_k_attention,
            [LC_OP_CONV2D] = lc_cpu_k_conv2d,
            [LC_OP_QKV_PACK] = lc_cpu_k_qkv_pack,
            [LC_OP_LINEAR] = lc_cpu_k_linear,
            [LC_OP_LAYER_NORM_LINEAR] = lc_cpu_k_norm_linear,
            [LC_OP_RMS_NORM_LINEAR] = lc_cpu_k_norm_linear,
            [LC_OP_SILU_MUL_LINEAR] = lc_cpu_k_norm_linear,
            [LC_OP_ATTENTION_PROJECTION] = lc_cpu_k_attention_projection,
            [LC_OP_SDPA] = lc_cpu_k_sdpa,
            [LC_OP_KV_APPEND] = lc_cpu_k_kv_append,
            [LC_OP_RMS_NORM] = lc_cpu_k_rms_norm,
            [LC_OP_SOFTMAX] = lc_cpu_k_softmax,
            [LC_OP_SILU] = lc_cpu_k_silu,
            [LC_OP_EMBEDDING] = lc_cpu_k_embedding,
            [LC_OP_ARGMAX] = lc_cpu_k_argmax,
            [LC_OP_SAMPLE] = lc_cpu_k_sample,
            [LC_OP_SILU_MUL] = lc_cpu_k_silu,
            [LC_OP_ADD] = lc_cpu_k_bcast,
            [LC_OP_MUL] = lc_cpu_k_bcast,
            [LC_OP_ROPE] = lc_cpu_k_rope,
        },
};
