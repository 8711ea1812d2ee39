/* cuda_kernels.h — launchers of the own CUDA kernels (one .cu file per op family), called by the CUDA
 * backend (backend_cuda.c). Every pointer is a device pointer; work is enqueued on `stream` and not
 * waited for; the return value is the launch status (cudaGetLastError after the launch) — errors
 * raised while the kernel runs surface at the backend's next synchronisation.
 * Shapes and semantics are those of the argument structs in src/core/backend.h.
 * Tests: tests/c/test_ops.c and tests/python/test_ops_*.py on device "cuda" (GPU machine only).
 */
#ifndef LC_CUDA_KERNELS_H
#define LC_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* elementwise_cuda.cu: out[i] = a[i] (+|-|/) b[i]; F32, F64, F16 or BF16 (16-bit: float32 arithmetic,
 * one rounding); out may equal a or b. */
cudaError_t lc_cuda_launch_binary(const lc_binary_args *args, cudaStream_t stream);
/* elementwise_cuda.cu: out[i] = max(x[i], 0), NaN propagates; F32, F64, F16 or BF16; out may equal x. */
cudaError_t lc_cuda_launch_relu(const lc_relu_args *args, cudaStream_t stream);
/* elementwise_cuda.cu: gelu (erf or tanh form), F32, F16 or BF16 (computed in float32); out may equal x. */
cudaError_t lc_cuda_launch_gelu(const lc_gelu_args *args, cudaStream_t stream);
/* elementwise_cuda.cu: out[i,j] = act(acc[i,j] + bias[j]) + residual[i,j], computed in float32 and rounded
 * once to dtype (F32, F16 or BF16); acc float32 [m,n] (a GEMM's unrounded sums), bias [n] and residual [m,n]
 * in dtype or NULL, out [m,n] in dtype (may be residual: each element is read before it is written). */
cudaError_t lc_cuda_launch_bias_act(lc_dtype dtype, const float *acc, const void *bias, const void *residual, void *out,
                                    int64_t m, int64_t n, lc_activation act, cudaStream_t stream);
/* gemv_cuda.cu: lc_linear_args for float16/bfloat16 with 1 <= m <= LC_GEMV_MAX_M (decode), one launch: float32
 * sums, bias + act on them, one rounding (as lc_cuda_launch_bias_act_lowp after a GEMM). lc_cuda_gemv_fits: the
 * shapes it takes (k >= 1, n % 8 == 0, w / bias / out 16-byte aligned; x any alignment). k may be split across
 * blocks for num_sms SMs: lc_cuda_gemv_workspace bytes of float32 partials (0: no split; *splits, if not NULL,
 * receives the number of k splits), passed as `workspace`; the launch returns cudaErrorInvalidValue for a
 * shape it does not fit or a missing workspace. With w_t (w given as wᵀ [n, k], lc_linear_args.w_t) the plan has no
 * split: 0 bytes, *splits = 1. */
#define LC_GEMV_MAX_M 8
int lc_cuda_gemv_fits(const lc_linear_args *args);
/* 1 when a launch of m rows with w_t runs the ring kernel (gemv_ring_cuda.cu: LC_GEMV_RING on, x's rows staged
 * whole beside the ring; norm: a layer / rms prologue, whose gamma and beta are staged too at m = 1). */
int lc_cuda_gemv_ring_fits(int64_t m, int64_t k, int64_t n, int w_t, int num_sms, int norm);
size_t lc_cuda_gemv_workspace(int64_t m, int64_t k, int64_t n, int w_t, int num_sms, int *splits);
cudaError_t lc_cuda_launch_gemv(const lc_linear_args *args, void *workspace, size_t workspace_bytes, int num_sms,
                                cudaStream_t stream);
/* The same GEMV with a prologue on x as it is staged (args->lin fits as above; the workspace of
 * lc_cuda_gemv_workspace): kind LC_NORM_LAYER / LC_NORM_RMS normalise x (layer_norm_linear / rms_norm_linear;
 * lin.residual NULL, gamma / beta 16-bit [k] or NULL, eps > 0); kind LC_NORM_SWIGLU stages silu(g)·u of
 * lin.x = gu [m, 2k] (silu_mul_linear; row pitch 2·lin.k, any alignment; lin.residual allowed). */
cudaError_t lc_cuda_launch_gemv_norm(const lc_norm_linear_args *args, void *workspace, size_t workspace_bytes,
                                     int num_sms, cudaStream_t stream);
/* layer_norm_cuda.cu: per row of [rows, cols]; F32, F16 or BF16 (x, gamma, beta, out in it); gamma/beta
 * may be NULL; out may equal x. */
cudaError_t lc_cuda_launch_layer_norm(const lc_layer_norm_args *args, cudaStream_t stream);

/* llm_cuda.cu (float32, float16, bfloat16; bcast also float64; 16-bit: float32 arithmetic, one rounding):
 * rms_norm and softmax per row of [rows, cols], silu / silu_mul (b != NULL), add / mul with broadcasting.
 * out may equal an input (exactly). */
cudaError_t lc_cuda_launch_rms_norm(const lc_rms_norm_args *args, cudaStream_t stream);
cudaError_t lc_cuda_launch_softmax(const lc_softmax_args *args, cudaStream_t stream);
cudaError_t lc_cuda_launch_silu(const lc_silu_args *args, cudaStream_t stream);
cudaError_t lc_cuda_launch_bcast(const lc_bcast_args *args, cudaStream_t stream);
/* rope_cuda.cu: lc_rope_args (x strided in place, out contiguous; out may equal x). */
cudaError_t lc_cuda_launch_rope(const lc_rope_args *args, cudaStream_t stream);
/* rope_cuda.cu: the inverse frequencies of args' rotary_dim and options (rope_freq.h, float64, rotary_dim / 2 of
 * them, at most LC_ROPE_TAB), cached per host thread while they stay the same; NULL past LC_ROPE_TAB. */
#define LC_ROPE_TAB 128
const double *lc_cuda_rope_inv_freq(const lc_rope_args *args);

/* sdpa_cuda.cu: lc_sdpa_args semantics (backend.h) on the device, every dtype/mask/length/stride case:
 * the generic flash-style kernel (float32 SIMT; 16-bit operands loaded and converted in registers) and the
 * split-KV path (keys split across blocks, partial results combined) for long key ranges and for decode
 * (small sq against a long cache). Scratch: lc_cuda_sdpa_workspace(args) bytes (0: none needed).
 * path: a static name of the kernel taken. args->rope is taken only into the tensor-core decode with the append
 * fused (head_dim padded to 64 or 128, rotary_dim a multiple of 16, q's tokens = the append's); any other call
 * with it launches nothing and returns cudaErrorNotSupported (the KV cache then runs the rope op first). */
size_t lc_cuda_sdpa_workspace(const lc_sdpa_args *args, int num_sms);
cudaError_t lc_cuda_launch_sdpa(const lc_sdpa_args *args, void *workspace, size_t workspace_bytes, int num_sms,
                                cudaStream_t stream, const char **path);
/* How this thread's last lc_cuda_launch_sdpa planned to merge its key splits (tests check that each kind ran):
 * LC_SDPA_MERGE_NONE (one split), _CLUSTER (tensor-core decode, in a thread-block cluster), _FOLD (its last
 * block), _COMBINE (the sd_combine kernel; also every split of the generic and SIMT decode kernels). Under
 * _CLUSTER and _FOLD a group whose keys fit one split still writes out from that split's block (the plan is
 * made for the cache's capacity; the lengths are known only in the kernel). */
enum { LC_SDPA_MERGE_NONE = 0, LC_SDPA_MERGE_CLUSTER = 1, LC_SDPA_MERGE_FOLD = 2, LC_SDPA_MERGE_COMBINE = 3 };
int lc_cuda_sdpa_last_merge(void);
/* sdpa_mma_cuda.cu: the tensor-core (mma.sync bf16/f16, float32 accumulation) flash-attention forward for
 * the shapes lc_cuda_sdpa_mma_fits accepts (16-bit dtype, head_dim 64 or 128, d-stride 1 and 16-byte
 * aligned rows, no mask or a mask it handles); GQA without repeating k/v, causal block skipping, key_lengths. */
int lc_cuda_sdpa_mma_fits(const lc_sdpa_args *args);
cudaError_t lc_cuda_launch_sdpa_mma(const lc_sdpa_args *args, cudaStream_t stream, const char **path);
/* A/B benchmarking of the mma kernel's variants (sdpa_mma_d64.cu / sdpa_mma_d128.cu list them): later
 * lc_cuda_launch_sdpa_mma calls for head_dim (64 or 128) use variant v (-1: the built-in default), process-wide.
 * Returns the number of variants of head_dim, or -1 (nothing changed) for another head_dim or v out of range. */
int lc_cuda_sdpa_mma_set_variant(int64_t head_dim, int variant);
/* sdpa_mma_cuda.cu / sdpa_tf32.cu: float32 attention on tensor cores with 3xTF32 products (float32 accuracy)
 * for the shapes lc_cuda_sdpa_tf32_fits accepts (as lc_cuda_sdpa_mma_fits, float32, no window); a tile holding
 * a NaN/Inf runs on CUDA cores inside the kernel. LC_SDPA_TF32_VARIANT picks a variant (sdpa_tf32.cu lists
 * them; A/B runs and tests). */
int lc_cuda_sdpa_tf32_fits(const lc_sdpa_args *args);
/* Blocks of the call's default launch (query tiles x batch·heads), for the dispatcher's fill rule. */
int64_t lc_cuda_sdpa_tf32_blocks(const lc_sdpa_args *args);
cudaError_t lc_cuda_launch_sdpa_tf32(const lc_sdpa_args *args, cudaStream_t stream, const char **path);
/* layout_cuda.cu: the backend's gather entry (a strided view into a contiguous buffer on the device). */
cudaError_t lc_cuda_launch_gather(const lc_gather_args *args, cudaStream_t stream);
/* layout_cuda.cu: the backend's prefetch entry (device ranges into L2 once the work before it is done). */
cudaError_t lc_cuda_launch_prefetch(const lc_prefetch_args *args, int num_sms, cudaStream_t stream);
/* decode_fused_cuda.cu: the fused decode step (core/decode_program.h); the largest dynamic shared memory a
 * block may opt in to. */
struct lc_dp_step_args;
cudaError_t lc_cuda_launch_decode_program(const struct lc_dp_step_args *args, cudaStream_t stream);
cudaError_t lc_cuda_decode_program_smem_max(size_t *bytes);
/* index_cuda.cu: embedding (an id out of range writes a zero row) and argmax over the last axis. */
cudaError_t lc_cuda_launch_embedding(const lc_embedding_args *args, cudaStream_t stream);
cudaError_t lc_cuda_launch_argmax(const lc_argmax_args *args, cudaStream_t stream);
/* index_cuda.cu: chunks per row the argmax launch splits rows of (rows, cols, dtype) into on the current
 * device (1: one block per row); chunk k of a 16-byte aligned row starts at element k·ceil(nv/chunks)·V,
 * V = 16 / element size, nv = cols / V (for tests). */
int lc_cuda_argmax_chunks(int64_t rows, int64_t cols, lc_dtype dtype);
/* sample_cuda.cu: one block a row, then (with a counter) a one-thread launch adding 1 to it; no allocation. */
cudaError_t lc_cuda_launch_sample(const lc_sample_args *args, cudaStream_t stream);
/* kv_cache_cuda.cu: lc_kv_append_args on the device (small appends: one launch; else two: copy at the device
 * lengths, then advance). */
cudaError_t lc_cuda_launch_kv_append(const lc_kv_append_args *args, cudaStream_t stream);

/* layout_cuda.cu: qkv_pack_repeat, dst[i] = src[i % src_n] for i < dst_n; float32, float16, bfloat16 (a
 * bit-exact copy of the elements). */
cudaError_t lc_cuda_launch_qkv_pack(const lc_qkv_pack_args *args, cudaStream_t stream);
/* layout_cuda.cu: n elements float16/bfloat16 -> float32 (exact) or float32 -> float16/bfloat16 (rounded
 * once to nearest even); other pairs return cudaErrorInvalidValue. dst and src do not overlap. */
cudaError_t lc_cuda_launch_cast(lc_dtype dst_dtype, void *dst, lc_dtype src_dtype, const void *src, int64_t n,
                                cudaStream_t stream);

/* conv_attention_cuda.cu: the conv -> qkv repeat -> attention chain in one kernel for small shapes
 * (lc_cuda_conv_attention_fits: 3x3 kernel with ReLU, head_dim <= 128, the conv output, kᵀ and the
 * score rows in one block's shared memory). */
int lc_cuda_conv_attention_fits(const lc_conv_attention_args *args);
cudaError_t lc_cuda_launch_conv_attention(const lc_conv_attention_args *args, cudaStream_t stream);

/* attention_projection_cuda.cu: out [seq, pn] = attention(q, k, v) · w (+ bias) in one kernel for small
 * shapes (lc_cuda_attention_projection_fits: head_dim, pn <= 128, kᵀ in one block's shared memory). */
int lc_cuda_attention_projection_fits(const lc_attention_projection_args *args);
cudaError_t lc_cuda_launch_attention_projection(const lc_attention_projection_args *args, cudaStream_t stream);

/* conv2d_cuda.cu: NCHW float32 (args->dtype F32; 16-bit on a float32 image, backend_cuda.c), any kh/kw/stride/pad (a fast 3x3 path), bias may be NULL, fused ReLU. */
cudaError_t lc_cuda_launch_conv2d(const lc_conv2d_args *args, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
