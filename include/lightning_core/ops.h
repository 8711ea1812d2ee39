/* ops.h — the op entry points of the Lightning Core C API.
 *
 * Conventions: row-major everywhere; C = A·B with A [m,k], B [k,n], C [m,n]. Every op takes its inputs
 * and a caller-made `out` tensor of the exact output shape and dtype; `out` must be contiguous and
 * writable, and must not overlap an input unless the op says so. Inputs may be strided views
 * (they are gathered into a contiguous copy first). Nothing is written to `out` when a call is refused.
 * `device` follows the policy in runtime.h.
 * dtypes: matmul, vector_add, matrix_sub, matrix_div and relu take float32 or float64 (all operands the
 * same); linear, attention, conv2d, layer_norm and gelu take float32.
 * Operands may live on the host or on a GPU (lc_tensor_new with LC_DEVICE_CUDA): an op with an
 * operand on the GPU runs there, asynchronously (lc_device_synchronize waits); an op on host operands
 * sent to the GPU uploads them, runs, and downloads `out` before returning.
 * Tests: tests/c/test_ops.c (float64 reference harness), tests/python/test_ops_*.py.
 */
#ifndef LIGHTNING_CORE_OPS_H
#define LIGHTNING_CORE_OPS_H

#include "lightning_core/runtime.h"
#include "lightning_core/status.h"
#include "lightning_core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* a [m,k] · b [k,n] -> out [m,n]. */
lc_status lc_matmul(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device);

typedef enum lc_activation {
    LC_ACT_NONE = 0,
    LC_ACT_RELU,
    LC_ACT_GELU_ERF,   /* 0.5·x·(1 + erf(x/√2)) */
    LC_ACT_GELU_TANH,  /* the tanh approximation */
    LC_ACT_COUNT
} lc_activation;

/* A fused linear layer: out [m,n] = act(x [m,k] · w [k,n] + bias [n]); bias may be NULL. float32, float16
 * or bfloat16 (16-bit: float32 sums, bias and activation, out rounded once). CUDA: 16-bit with m <= 8 runs
 * the own small-m GEMV (gemv_cuda.cu, epilogue fused), else cuBLASLt (float32: its epilogues; 16-bit with a
 * bias or an activation: float32 sums and the own epilogue kernel); CPU: one pass over out after the product. */
lc_status lc_linear(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act,
                    lc_tensor_t *out, lc_device device);

/* lc_linear with a residual added after the activation: out = act(x · w + bias) + residual, residual [m,n]
 * of out's dtype (NULL: lc_linear). residual may be out itself (the transformer block's x += f(x) in one
 * call); rounded once for 16-bit. */
lc_status lc_linear_residual(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias,
                             const lc_tensor_t *residual, lc_activation act, lc_tensor_t *out, lc_device device);
/* The pre-norm projection of a transformer block as one op: out = act(norm(x) · w + bias) with norm(x) =
 * lc_layer_norm(x, gamma, beta, eps) or lc_rms_norm(x, weight, eps) (rounded to the dtype as those ops write
 * it). x [m,k], w [k,n], bias [n], gamma / beta / weight [k]; bias, gamma, beta, weight may be NULL; eps > 0.
 * float32, float16, bfloat16. On CUDA a 16-bit call with m <= 8 is one GEMV launch normalising x as it is
 * staged (a decode step saves the norm kernel); otherwise the norm into a workspace, then lc_linear. */
lc_status lc_layer_norm_linear(const lc_tensor_t *x, const lc_tensor_t *gamma, const lc_tensor_t *beta, double eps,
                               const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act, lc_tensor_t *out,
                               lc_device device);
lc_status lc_rms_norm_linear(const lc_tensor_t *x, const lc_tensor_t *weight, double eps, const lc_tensor_t *w,
                             const lc_tensor_t *bias, lc_activation act, lc_tensor_t *out, lc_device device);
/* The same, also writing argmax_out [m] (int64, contiguous) = lc_argmax(out): each row's index of its largest
 * output as lc_argmax finds it in out (the first maximum; NaN counts as largest; -0 == +0), e.g. greedy decoding's
 * next token from the final norm + lm_head. On CUDA, where the ring GEMV runs the op (16-bit, m <= 8, w given as
 * the transpose of a contiguous [n, k] array, argmax_out on the CUDA device) its blocks reduce the argmax as they
 * write out: one launch. Elsewhere lc_argmax runs after the op. argmax_out is checked before anything runs. */
lc_status lc_layer_norm_linear_argmax(const lc_tensor_t *x, const lc_tensor_t *gamma, const lc_tensor_t *beta,
                                      double eps, const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act,
                                      lc_tensor_t *out, lc_tensor_t *argmax_out, lc_device device);
lc_status lc_rms_norm_linear_argmax(const lc_tensor_t *x, const lc_tensor_t *weight, double eps, const lc_tensor_t *w,
                                    const lc_tensor_t *bias, lc_activation act, lc_tensor_t *out,
                                    lc_tensor_t *argmax_out, lc_device device);
/* SwiGLU's down projection as one op: h = silu(gu[:, :k]) * gu[:, k:] (rounded to the dtype as lc_silu_mul
 * writes it), out = act(h · w + bias) + residual with lc_linear_residual's arithmetic. gu [m, 2k] (gate | up
 * halves; any strides), w [k, n], bias [n] and residual [m, n] optional (NULL), residual may be out itself;
 * out [m, n]. float32, float16, bfloat16. On CUDA a 16-bit call with m <= 8 is one GEMV launch computing h as
 * it stages x (a decode step saves the silu_mul kernel); otherwise silu_mul into a workspace, then the linear.
 * On the CPU bit-identical to lc_silu_mul then lc_linear_residual. */
lc_status lc_silu_mul_linear(const lc_tensor_t *gu, const lc_tensor_t *w, const lc_tensor_t *bias,
                             const lc_tensor_t *residual, lc_activation act, lc_tensor_t *out, lc_device device);

/* Single-head attention forward: q, k, v, out [seq, head_dim], one dtype: float32, float16 or bfloat16
 * (16-bit: float32 scores, softmax and accumulation, out rounded once);
 * out = softmax(q·kᵀ / sqrt(head_dim) [+ causal mask]) · v, computed tiled with an online softmax
 * (memory O(seq·head_dim)). With causal != 0, query row i attends to key rows 0..i. */
lc_status lc_attention_forward(const lc_tensor_t *q, const lc_tensor_t *k, const lc_tensor_t *v,
                               lc_tensor_t *out, int causal, lc_device device);

/* Scaled dot-product attention, torch's conventions: q [b, h, sq, d], k and v [b, hkv, skv, d] (also rank 3
 * [h, s, d] and rank 2 [s, d], all three the same rank), h % hkv == 0 (GQA; MQA when hkv == 1: query head i
 * reads kv head i / (h / hkv), k/v never repeated), d in 1..256, out q's shape and dtype (contiguous).
 * q, k, v may be strided views on the device the op runs on (read in place, no copies).
 * dtypes float32, float16, bfloat16 (one dtype; float32 scores, softmax and accumulation, out rounded once).
 * Key j is visible to query i of sequence b when j < L_b (L_b = key_lengths[b], else skv), when not causal or
 * j <= i + L_b - sq (the causal diagonal aligned to the end of the keys, as FlashAttention), when window is 0
 * or j > i + L_b - sq - window (a sliding window: with causal each row sees its last `window` keys, Hugging Face's
 * Mistral rule; without causal a left bound only), and when a boolean mask has true there; an additive mask (float32 or q's dtype) is added to the scaled scores. Masks broadcast to
 * [b, h, sq, skv] by NumPy's rules (aligned from the right; rank <= q's). A row with no visible key gets zeros.
 * lse (optional, float32 contiguous, q's shape without d) receives the natural-log sum of exp of the visible
 * scaled scores (-inf for an empty row). key_lengths: int32 or int64 [b] with values in 0..skv (checked: a
 * tensor on the GPU is read back for the check, which waits for it). */
typedef struct lc_sdpa_options {
    const lc_tensor_t *attn_mask;   /* NULL, LC_DTYPE_BOOL, float32 or q's dtype */
    const lc_tensor_t *key_lengths; /* NULL or int32/int64 [b] */
    int causal;
    double scale;                   /* 0: 1 / sqrt(d) */
    lc_tensor_t *lse;               /* NULL or float32 */
    int64_t window;                 /* 0: none; else >= 1 (negative: LC_ERR_INVALID_ARGUMENT naming window) */
} lc_sdpa_options;
lc_status lc_sdpa(const lc_tensor_t *q, const lc_tensor_t *k, const lc_tensor_t *v, lc_tensor_t *out,
                  const lc_sdpa_options *options, lc_device device);

/* Rows of weight [vocab, d] (any float dtype) gathered by ids [...] (int32/int64) -> out [..., d] (weight's
 * dtype; a bit-exact copy). An id outside 0..vocab-1: on the CPU the call is refused before anything is
 * written (LC_ERR_INVALID_ARGUMENT); on CUDA (ids already on the device) that row is written as zeros. */
lc_status lc_embedding(const lc_tensor_t *weight, const lc_tensor_t *ids, lc_tensor_t *out, lc_device device);
/* The same for a vocabulary shard: weight [rows, d] holds the rows of ids offset..offset+rows-1 of a larger
 * table; the row of an id inside that range is weight[id - offset], any other id gives a zero row (on every
 * device: the shards' results summed give the whole table's lookup, as tensor parallelism needs).
 * offset < 0: LC_ERR_INVALID_ARGUMENT. */
lc_status lc_embedding_offset(const lc_tensor_t *weight, const lc_tensor_t *ids, int64_t offset, lc_tensor_t *out,
                              lc_device device);
/* Token and learned-position rows in one op (GPT-2's input): out[..., :] = weight[ids[...]] + pos_weight[positions[...]]
 * with lc_add's arithmetic (float32 for the 16-bit dtypes, rounded once: bit-identical to lc_embedding twice and
 * lc_add). pos_weight [p, d] of weight's dtype and d; positions int32/int64 of ids' shape. Out-of-range ids or
 * positions: as lc_embedding (CPU: LC_ERR_INVALID_ARGUMENT naming them, nothing written; CUDA: that table's row
 * counts as zeros). pos_weight and positions NULL: lc_embedding. */
lc_status lc_embedding_pos(const lc_tensor_t *weight, const lc_tensor_t *ids, const lc_tensor_t *pos_weight,
                           const lc_tensor_t *positions, lc_tensor_t *out, lc_device device);
/* The index of the largest element over the last axis of x [..., n] (any float dtype) -> out int64 [...] (a
 * 1-D x gives [1]); the first maximum on ties, a NaN counts as the largest (the first NaN), as NumPy. */
lc_status lc_argmax(const lc_tensor_t *x, lc_tensor_t *out, lc_device device);

/* x (any strides, any dtype, e.g. a transposed or sliced view) into out, a contiguous tensor of x's shape and
 * dtype, on the device the op runs on (a view on the GPU is gathered there, not through the host). */
lc_status lc_copy(const lc_tensor_t *x, lc_tensor_t *out, lc_device device);
/* Sampling one token per row of logits [B, V] (float32, float16, bfloat16, float64; V <= 2^23) -> out int64 [B],
 * in the order of Hugging Face's warpers: logits / temperature (in float32) -> top_k (0: off) keeps the
 * values >= the k-th largest (every value equal to it kept) -> softmax over the kept -> top_p (1: off) keeps
 * the smallest set of largest probabilities whose sum reaches top_p (every value equal to the smallest one
 * kept; always at least one token) -> one draw: u in [0, 1) from Philox-4x32-10 of (seed, step, row), the
 * first token (index order) whose running kept probability exceeds u * total. Probabilities are exp(s - max)
 * in 2^-40 fixed point (below 2^-40 of the largest: 0), so the CPU and CUDA pick the same token.
 * counter: NULL (step 0) or an int64 [1] tensor on the device the op runs on: its value is the step, and the
 * call adds 1 to it (on the device, so a captured CUDA graph draws fresh numbers at every replay).
 * temperature must be finite and > 0 (greedy decoding is lc_argmax), top_k >= 0, top_p in (0, 1]:
 * LC_ERR_INVALID_ARGUMENT otherwise. A NaN in logits: the CPU refuses the call before writing anything
 * (LC_ERR_INVALID_ARGUMENT naming the row and column); on CUDA that row gets the index of its first NaN.
 * options NULL: temperature 1, no top_k / top_p, seed 0, no counter. */
typedef struct lc_sample_options {
    float temperature;
    int64_t top_k;
    float top_p;
    uint64_t seed;
    const lc_tensor_t *counter; /* written: the call adds 1 */
} lc_sample_options;
lc_status lc_sample(const lc_tensor_t *logits, lc_tensor_t *out, const lc_sample_options *options, lc_device device);

/* A KV cache for decoding: k and v stored in place as [batch, kv_heads, max_seq, head_dim] (one allocation,
 * never moved) with each sequence's current length in device memory, so one captured graph of
 * append + attention serves every decode step. dtype float32, float16 or bfloat16; device CPU or CUDA. */
typedef struct lc_kv_cache lc_kv_cache_t;
lc_status lc_kv_cache_new(int64_t batch, int64_t kv_heads, int64_t max_seq, int64_t head_dim, lc_dtype dtype,
                          lc_device device, lc_kv_cache_t **out);
void lc_kv_cache_free(lc_kv_cache_t *cache);
/* Writes k_new, v_new [batch, kv_heads, t, head_dim] (cache dtype; strided views allowed) at each sequence's
 * current length and advances it. Eager: refused (nothing written) when a sequence would pass max_seq. Under
 * graph capture the append is recorded; a replay that would pass max_seq writes what fits and sets the
 * overflow flag (lc_kv_cache_overflowed). */
lc_status lc_kv_cache_append(lc_kv_cache_t *cache, const lc_tensor_t *k_new, const lc_tensor_t *v_new);
/* out = sdpa(q [batch, heads, t, head_dim], the cached keys/values, key_lengths = the current lengths, causal,
 * scale (0: 1/sqrt(head_dim)), window (0: none; else each query sees keys j > its position - window, the
 * positions counted from the device lengths, so a captured graph keeps the window right at every replay)):
 * appending token by token and attending equals full causal (windowed) attention. */
lc_status lc_kv_cache_attention(lc_kv_cache_t *cache, const lc_tensor_t *q, lc_tensor_t *out, int causal,
                                double scale, int64_t window);
/* lc_kv_cache_append(k_new, v_new), then lc_kv_cache_attention(q, ...), as one call (the flash-attention
 * "attention with KV cache" form of a decode step): same checks (nothing appended when any fails), same
 * results. On CUDA the tensor-core decode (float16/bfloat16, t <= 16 query rows) does both in one kernel;
 * other cases run the append kernel, then the attention. */
lc_status lc_kv_cache_append_attention(lc_kv_cache_t *cache, const lc_tensor_t *k_new, const lc_tensor_t *v_new,
                                       const lc_tensor_t *q, lc_tensor_t *out, int causal, double scale, int64_t window);
/* The current lengths into lengths[batch] (waits for the device). */
lc_status lc_kv_cache_lengths(lc_kv_cache_t *cache, int64_t *lengths);
/* Sets every sequence's length (lengths[batch] host values in 0..max_seq, n == batch): e.g. after a padded
 * prefill of prompts of different lengths, so that each sequence's next append lands right after its own
 * prompt (the padding rows are then overwritten and never attended to). Not inside a graph capture. */
lc_status lc_kv_cache_set_lengths(lc_kv_cache_t *cache, const int64_t *lengths, int64_t n);
/* Lengths (and the overflow flag) to 0; the storage is kept. */
lc_status lc_kv_cache_reset(lc_kv_cache_t *cache);
/* 1 when a replayed append did not fit (waits for the device), else 0; -1 on error. */
int lc_kv_cache_overflowed(lc_kv_cache_t *cache);
/* The cache's storage tensors [batch, kv_heads, max_seq, head_dim] (borrowed; valid while the cache lives). */
const lc_tensor_t *lc_kv_cache_k(const lc_kv_cache_t *cache);
const lc_tensor_t *lc_kv_cache_v(const lc_kv_cache_t *cache);

typedef struct lc_conv2d_params {
    int stride_h, stride_w;  /* >= 1 */
    int pad_h, pad_w;        /* >= 0 */
    int apply_relu;          /* fuse max(0, .) into the output */
} lc_conv2d_params;

/* x [n,c,h,w] (*) w [oc,c,kh,kw] (+ bias [oc], may be NULL) -> out [n,oc,oh,ow] with
 * oh = (h + 2*pad_h - kh) / stride_h + 1, ow likewise; oh, ow must be >= 1. float32, float16 or bfloat16 (one dtype; 16-bit: float32 sums, one rounding). */
lc_status lc_conv2d_nchw(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias,
                         lc_tensor_t *out, const lc_conv2d_params *params, lc_device device);

/* Elementwise on equal shapes; out may alias a or b exactly (in place). */
lc_status lc_vector_add(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device);
lc_status lc_matrix_sub(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device);
lc_status lc_matrix_div(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device);

/* The seed's qkv_pack_repeat: out_flat[i] = src_flat[i % src.numel] for every element of out (the
 * flattened src repeated, or truncated, to fill out; e.g. a conv output into a [3, seq, head_dim] q|k|v
 * buffer). float32, float16 or bfloat16 (src and out of one dtype; a bit-exact copy); any shapes; src may be strided; out contiguous and separate from src. */
lc_status lc_qkv_pack_repeat(const lc_tensor_t *src, lc_tensor_t *out, lc_device device);

/* out = max(x, 0); out may alias x exactly. NaN stays NaN. */
lc_status lc_relu(const lc_tensor_t *x, lc_tensor_t *out, lc_device device);

typedef enum lc_gelu_approx {
    LC_GELU_ERF = 0,   /* 0.5·x·(1 + erf(x/√2)) */
    LC_GELU_TANH,      /* 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
    LC_GELU_COUNT
} lc_gelu_approx;

/* GELU elementwise; out may alias x exactly. float32. */
lc_status lc_gelu(const lc_tensor_t *x, lc_tensor_t *out, lc_gelu_approx approx, lc_device device);

/* Layer norm over the last axis of x [..., d]: (x - mean) / sqrt(var + eps) * gamma + beta, with
 * gamma, beta [d] optional (NULL = 1 and 0). eps > 0. float32. out may alias x exactly. */
lc_status lc_layer_norm(const lc_tensor_t *x, const lc_tensor_t *gamma, const lc_tensor_t *beta,
                        lc_tensor_t *out, double eps, lc_device device);

/* ---- LLM building blocks (issue 16; src/ops/llm.c, src/ops/rope.c). dtypes float32, float16, bfloat16
 * (add / mul also float64); 16-bit: float32 arithmetic, one rounding. ---------------------------------- */

/* RMS norm over the last axis of x [..., d]: x / sqrt(mean(x²) + eps) * weight, weight [d] optional
 * (NULL = 1). eps > 0. out may alias x exactly. */
lc_status lc_rms_norm(const lc_tensor_t *x, const lc_tensor_t *weight, lc_tensor_t *out, double eps, lc_device device);
/* Softmax over the last axis (max-subtracted); a row holding NaN, +inf or only -inf gives NaN (as torch).
 * out may alias x exactly. */
lc_status lc_softmax(const lc_tensor_t *x, lc_tensor_t *out, lc_device device);
/* silu(x) = x * sigmoid(x); silu_mul(a, b) = silu(a) * b (a, b of one shape; SwiGLU). out may alias an
 * input exactly. */
lc_status lc_silu(const lc_tensor_t *x, lc_tensor_t *out, lc_device device);
lc_status lc_silu_mul(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device);
/* a + b and a * b with NumPy broadcasting (rank <= 4 after broadcasting); out has the broadcast shape and
 * may alias an input of that shape exactly. */
lc_status lc_add(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device);
lc_status lc_mul(const lc_tensor_t *a, const lc_tensor_t *b, lc_tensor_t *out, lc_device device);

/* Rotary position embedding, the half-split (rotate_half) layout of LLaMA / GPT-NeoX. */
typedef enum lc_rope_scaling {
    LC_ROPE_SCALING_NONE = 0,
    LC_ROPE_SCALING_LINEAR, /* HF rope_scaling "linear": inv_freq / factor (positions / factor) */
    LC_ROPE_SCALING_LLAMA3, /* HF rope_scaling "llama3": the frequency-dependent rescale of inv_freq */
    LC_ROPE_SCALING_COUNT
} lc_rope_scaling;
typedef struct lc_rope_options {
    double theta;               /* base; 0: 10000 */
    int64_t rotary_dim;         /* even, 2..head_dim; 0: head_dim (channels past it pass through) */
    lc_rope_scaling scaling;
    double factor;              /* linear, llama3: > 0 */
    double low_freq_factor;     /* llama3: > 0 */
    double high_freq_factor;    /* llama3: > low_freq_factor */
    double original_max_position_embeddings; /* llama3: > 0 */
} lc_rope_options;
/* x [batch, heads, seq, head_dim], [heads, seq, head_dim] or [seq, head_dim] (any strides: views on the
 * op's device are read in place), positions int32/int64 [batch, seq] or [seq] (each token's position: a
 * decode step passes the current one). inv_freq[i] = theta^(-2i/rotary_dim), scaled per options; the angle
 * position * inv_freq[i] is formed in float64 and reduced mod 2π before cos/sin (float32 accuracy at any
 * position). out contiguous of x's shape; it may alias x exactly (in place). options NULL: defaults. */
lc_status lc_rope(const lc_tensor_t *x, const lc_tensor_t *positions, lc_tensor_t *out, const lc_rope_options *options,
                  lc_device device);
/* The KV cache's (declared after lc_rope, whose options it takes): lc_kv_cache_append_attention with the rotary
 * embedding of q and k_new first: lc_rope(q, positions), lc_rope(k_new, positions), then append (the rotated
 * keys) + attention, as one call with the same results (checks first, nothing appended when one fails).
 * positions int32/int64 [batch, t] or [t]: token i of every sequence at positions[b, i] (q's and k_new's t tokens
 * alike); rope options as lc_rope's (NULL: defaults). On CUDA the tensor-core decode rotates q and the new keys in
 * its launch (float16/bfloat16, t <= 16, head_dim 64 or 128 (or less, padded), rotary_dim a multiple of 16);
 * other cases run the rope op on q and k_new into scratch first. */
lc_status lc_kv_cache_append_attention_rope(lc_kv_cache_t *cache, const lc_tensor_t *k_new, const lc_tensor_t *v_new,
                                            const lc_tensor_t *q, lc_tensor_t *out, int causal, double scale,
                                            int64_t window, const lc_tensor_t *positions, const lc_rope_options *rope);

/* A fused decode step (CUDA, batch 1, float16/bfloat16): one persistent kernel runs a whole step of a GPT-2 or
 * LLaMA-family model (embedding, every layer's norms, projections, rotary embedding, KV append and attention,
 * the final norm, lm_head and its argmax), streaming each block's share of the weights through shared memory
 * ahead of the grid's barriers. Weights are the [in, out] views of row-major [out, in] arrays that lc_linear
 * reads (torch's nn.Linear layout, transposed as a view; 16-byte aligned); every in-dimension a multiple of 256
 * (at most 12288); head_dim 64 or 128. The program keeps pointers to the tensors and caches given: they must
 * outlive it. Tests: tests/python/test_decode_program.py. */
typedef enum lc_decode_arch { LC_DECODE_GPT2 = 0, LC_DECODE_LLAMA = 1 } lc_decode_arch;
typedef struct lc_decode_layer {
    const lc_tensor_t *norm1_w, *norm1_b;  /* the input norm ([d]; norm1_b: LayerNorm's bias, NULL for RMSNorm) */
    const lc_tensor_t *w_qkv, *b_qkv;      /* [d, (heads + 2 kv_heads) head_dim] (q | k | v); bias or NULL */
    const lc_tensor_t *w_o, *b_o;          /* [heads head_dim, d] */
    const lc_tensor_t *norm2_w, *norm2_b;  /* the post-attention norm */
    const lc_tensor_t *w_up, *b_up;        /* GPT-2: c_fc [d, ffn] (GELU after it); LLaMA: [d, 2 ffn] (gate | up) */
    const lc_tensor_t *w_down, *b_down;    /* [ffn, d] (LLaMA: applied to silu(gate) * up) */
    lc_kv_cache_t *cache;                  /* batch 1, kv_heads x max_seq x head_dim, the model's dtype, CUDA */
} lc_decode_layer;
typedef struct lc_decode_model {
    lc_decode_arch arch;
    int64_t n_layers;
    const lc_decode_layer *layers;
    int64_t heads, kv_heads;               /* heads a multiple of kv_heads (GPT-2: equal) */
    double eps;                            /* of every norm */
    lc_activation act;                     /* GPT-2's MLP: LC_ACT_GELU_TANH or LC_ACT_GELU_ERF (LLaMA: ignored) */
    const lc_rope_options *rope;           /* LLaMA (rotary_dim = head_dim); NULL: defaults */
    int64_t window;                        /* sliding window (0: none) */
    const lc_tensor_t *embed;              /* [vocab, d] */
    const lc_tensor_t *pos_embed;          /* GPT-2 [n_positions, d]; LLaMA NULL */
    const lc_tensor_t *final_w, *final_b;  /* the final norm (final_b: LayerNorm only) */
    const lc_tensor_t *lm_head;            /* [d, vocab] */
} lc_decode_model;
typedef struct lc_decode_program lc_decode_program_t;
/* Checks the model (errors name the field: LC_ERR_SHAPE / LC_ERR_DTYPE / LC_ERR_INVALID_ARGUMENT, nothing
 * kept), uploads the program and allocates its float32 scratch. LC_ERR_UNSUPPORTED: not on this device. */
lc_status lc_decode_program_new(const lc_decode_model *model, lc_decode_program_t **out);
/* One step at the caches' current length (the first layer's; every cache must hold as many tokens): token
 * (int64 [1] on the device) in; the caches appended and advanced by one; next_token (int64 [1], may be NULL)
 * = argmax of the logits; logits (float32 [vocab] or [1, vocab], may be NULL) written. Enqueued on the
 * backend stream (capturable). A full cache (or a token out of range) writes next_token = -1 and nothing
 * else (a full cache also raises its overflow flag). */
lc_status lc_decode_program_step(lc_decode_program_t *program, const lc_tensor_t *token, lc_tensor_t *next_token,
                                 lc_tensor_t *logits);
void lc_decode_program_free(lc_decode_program_t *program);

#ifdef __cplusplus
}
#endif
#endif
