/* decode_program.h — the device-side program of a fused decode step (lc_decode_program_*, ops/decode_program.c),
 * run by one persistent CUDA kernel (backend/cuda/decode_fused_cuda.cu). A batch-1 decode step of a GPT-2 or
 * LLaMA-family model is a list of instructions, each spread over every block of the grid and separated by a
 * grid barrier:
 *   GEMV  out[n] = epilogue(input(k) . W[n, k]^T + bias): W row-major [n, k] (torch's [out, in]); the input
 *         is the residual stream, the token (+ position) embedding, the attention heads' partials merged, a
 *         float32 buffer or silu(gate) * up, then an optional RMSNorm / LayerNorm; the output goes to the
 *         qkv buffer, the MLP buffer (optionally GELU-tanh), the residual stream (added) or the logits (argmax);
 *   ATTN  one layer's attention over its KV cache (batch 1): rotary embedding of q and the new key, the new
 *         key and value appended, heads x key splits as work items, partials merged by the next GEMV.
 * Weights stream through each block's shared-memory ring (bulk copies issued by one producer warp that runs
 * ahead of the barriers, since weights depend on nothing), so DRAM stays busy while the grid synchronises.
 * Activations are float32 scratch buffers; weights, embeddings, norms, biases and the KV cache are in the
 * model's dtype (bfloat16 or float16). Tests: tests/python/test_decode_program.py. */
#ifndef LC_CORE_DECODE_PROGRAM_H
#define LC_CORE_DECODE_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "lightning_core/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { LC_DP_GEMV = 0, LC_DP_ATTN = 1 };
enum { LC_DP_IN_RES = 0, LC_DP_IN_EMBED = 1, LC_DP_IN_ATTN = 2, LC_DP_IN_BUF = 3, LC_DP_IN_SWIGLU = 4 };
enum { LC_DP_NORM_NONE = 0, LC_DP_NORM_RMS = 1, LC_DP_NORM_LN = 2 };
enum { LC_DP_OUT_QKV = 0, LC_DP_OUT_MLP = 1, LC_DP_OUT_RES = 2, LC_DP_OUT_LOGITS = 3 };
enum { LC_DP_ACT_NONE = 0, LC_DP_ACT_GELU_TANH = 1, LC_DP_ACT_GELU_ERF = 2 };

#define LC_DP_STAGE_BYTES 24576 /* one ring slot: whole weight rows, so a row is at most this (k <= 12288) */
#define LC_DP_THREADS 512       /* warp 0: the producer; warps 1..15: the consumers */
#define LC_DP_MAX_HEAD_DIM 128  /* head_dim 64 or 128 (a multiple of 32, at most 4 values a lane) */
#define LC_DP_CONSUMER_WARPS (LC_DP_THREADS / 32 - 1)
/* the consumers' reduction area (float words): block sums, then the attention's per-warp max, sum, values */
#define LC_DP_RED_WORDS (3 * LC_DP_CONSUMER_WARPS + LC_DP_CONSUMER_WARPS * LC_DP_MAX_HEAD_DIM)

typedef struct lc_dp_instr {
    int32_t kind, in, norm, act, out;
    int32_t n, k; /* GEMV: W [n, k] */
    float eps;
    const void *w, *bias, *norm_w, *norm_b; /* model dtype; bias, norm_w, norm_b may be NULL */
    void *kc, *vc;                          /* ATTN: the layer's cache storage [kv_heads, cap, head_dim] */
    int32_t *lengths, *overflow;            /* ATTN: the cache's device length (int32 [1]) and overflow flag */
} lc_dp_instr;

typedef struct lc_dp_prog {
    int32_t n_instr, grid, d, heads, kv_heads, head_dim, cap, window, splits, vocab, n_pos, rope, dtype;
    int32_t max_k, acc_words, own_words, vec_bytes, stages; /* the smem plan (lc_dp_smem_fixed, ring slots) */
    float scale;
    const void *wte, *wpe;      /* token embedding [vocab, d]; learned positions [n_pos, d] or NULL */
    const double *inv_freq;     /* rope: [head_dim / 2] (rope_freq.h's rule) */
    float *res, *qkv, *part, *mlp;
    unsigned long long *amax;   /* the logits' argmax, packed (value order << 32 | ~index) */
    unsigned *sync;             /* [0] barrier arrivals, [1] exits, [32] the last barrier passed */
    const int32_t *len0;        /* the first layer's cache length: the step's position */
    const lc_dp_instr *instr;
} lc_dp_prog;

/* backend hook arguments of one step: prog in device memory (the table above, uploaded once) */
typedef struct lc_dp_step_args { /* (struct tag used by backend.h) */
    const lc_dp_prog *prog;    /* device pointer */
    const lc_dp_prog *host;    /* host copy (sizes for the launch) */
    const int64_t *tok_in;     /* device [1] */
    int64_t *tok_out;          /* device [1] or NULL */
    float *logits;             /* device [vocab] float32 or NULL */
} lc_dp_step_args;

/* The plan's arithmetic, written once for the host (decode_program.c) and the kernel (decode_fused_cuda.cu). */
#ifdef __CUDACC__
#define LC_DP_HD __host__ __device__ __forceinline__
#else
#define LC_DP_HD static inline
#endif
/* whole rows of a [n, k] weight (2-byte elements) a ring slot holds */
LC_DP_HD int lc_dp_rows_per_slot(int k) {
    const int r = LC_DP_STAGE_BYTES / (k * 2);
    return r < 1 ? 1 : r;
}
/* the groups of 256-element segments a slot's row is split into: each (row, group) unit one warp's, its sum one
 * store (no atomics: the step is deterministic) */
LC_DP_HD int lc_dp_groups(int rows_per_slot) {
    return LC_DP_CONSUMER_WARPS / rows_per_slot > 1 ? LC_DP_CONSUMER_WARPS / rows_per_slot : 1;
}
/* shared memory besides the ring and its mbarriers, in the kernel's order: vec (vec_bytes), xs [max_k],
 * acc [acc_words], the reduction area, own [own_words] */
LC_DP_HD size_t lc_dp_smem_fixed(const lc_dp_prog *h) {
    return (size_t)h->vec_bytes +
           ((size_t)h->max_k + (size_t)h->acc_words + LC_DP_RED_WORDS + (size_t)h->own_words) * sizeof(float);
}
/* a ring slot and its two mbarriers */
#define LC_DP_SLOT_BYTES (LC_DP_STAGE_BYTES + 16)
#undef LC_DP_HD

#ifndef __CUDACC__
/* kv_cache.c's side of the fused step: a cache's storage and device counters; the host mirror of its lengths
 * marked stale after a step advanced them on the device */
typedef struct lc_kv_cache_parts {
    int64_t batch, kv_heads, max_seq, head_dim;
    lc_dtype dtype;
    lc_device device;
    void *k, *v;
    int32_t *lengths, *overflow;
} lc_kv_cache_parts;
lc_status lc_kv_cache_get_parts(const lc_kv_cache_t *c, lc_kv_cache_parts *out);
void lc_kv_cache_advanced(lc_kv_cache_t *c);
#endif

#ifdef __cplusplus
}
#endif
#endif
