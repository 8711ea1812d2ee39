/* backend.h — the backend table and registry, and the kernel-level argument structs.
 *
 * A backend is a table of function pointers: memory (alloc/free/copies/sync) and one kernel entry per
 * op id over one call struct (lc_call). The ops layer (src/ops/) validates tensors against the op table,
 * picks a backend by the device policy, makes operands contiguous and calls kernels[op]; kernels see only
 * contiguous, validated, non-overlapping (except where an op allows in-place) buffers on their device.
 * Backends are registered at build time; CPU is always present and is the universal fallback.
 * The CUDA backend (src/backend/cuda/) is registered when built with LC_HAVE_CUDA.
 * Tests: tests/c/test_ops.c.
 */
#ifndef LC_BACKEND_H
#define LC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "lightning_core/ops.h"
#include "lightning_core/status.h"
#include "lightning_core/tensor.h"
#include "core/op_table.h"

/* One call of an op's kernel, the same struct for every op and backend (kernels[op] below): the op, the
 * operands' dtype, contiguous validated buffers on the backend's device (in[i] NULL: optional input i
 * absent) with their shapes, the output and its shape, the resolved attributes (stride/pad, causal,
 * eps, gelu_approx, seq/head_dim) and the epilogues of linear (act) and conv2d (apply_relu). A
 * backend's table entry is a thin adapter (backend_cpu.c, backend_cuda.c) from this to the kernel's
 * own argument struct below (lc_call_* in op_call.c fill those). */
typedef struct lc_call {
    lc_op op;
    lc_dtype dtype;
    int nin;
    const void *in[LC_OP_MAX_INPUTS];
    int ndim[LC_OP_MAX_INPUTS];
    const int64_t *shape[LC_OP_MAX_INPUTS];
    lc_dtype in_dtype[LC_OP_MAX_INPUTS]; /* each input's own dtype (mixed-dtype ops: embedding's ids) */
    void *out;
    int out_ndim;
    int64_t out_shape[LC_MAX_DIMS];
    lc_graph_attrs attrs;
    lc_activation act;
    int apply_relu;
    const void *ext; /* ops with their own strided argument struct (sdpa: lc_sdpa_args, kv_append:
                      * lc_kv_append_args), filled by the ops layer; NULL for the others */
    unsigned in_t;   /* bit i: 2-D input i [r, c] came as the transpose of a contiguous [c, r] array and in[i] points
                      * at that array (only for LC_OPF_W_T ops' w, on backends with takes_w_t) */
} lc_call;

/* A kernel entry: LC_OK or an error set with lc_error(); *path receives a static string naming the
 * kernel path taken (e.g. "avx512_small"), for the dispatch record and the trace. */
typedef lc_status (*lc_kernel_fn)(const lc_call *c, const char **path);
/* Whether a kernel takes these shapes (data pointers may be NULL). */
typedef int (*lc_fits_fn)(const lc_call *c);

/* c[m,n] = a[m,k] · b[k,n]; all contiguous row-major; dtype F32 or F64. */
typedef struct lc_matmul_args {
    lc_dtype dtype;
    int64_t m, k, n;
    const void *a;
    const void *b;
    void *c;
    int b_t; /* b points at bᵀ [n, k] contiguous (b is its transposed view) */
} lc_matmul_args;

/* An argmax folded into a linear's epilogue (lc_layer_norm_linear_argmax, lc_rms_norm_linear_argmax; lc_call.ext
 * of those ops): idx [m] int64 on the backend's device receives each row's lc_argmax of out (the first maximum,
 * NaN largest, -0 == +0). A backend whose launch computed it sets done; else (done 0, nothing written to idx) the
 * ops layer runs lc_argmax on out after the op. */
typedef struct lc_argmax_fold {
    int64_t *idx;
    int done;
} lc_argmax_fold;

/* out[m,n] = act(x[m,k] · w[k,n] + bias[n]); bias may be NULL. dtype float32, float16 or bfloat16 (all
 * four operands in it; 16-bit: float32 accumulation, bias and act on the float32 sums, one rounding). */
/* out[m,n] = act(x[m,k] · w[k,n] + bias[n]) + residual[m,n]; bias and residual may be NULL; residual may be
 * out itself (read before the element is written), never a partial overlap (checked by the op). */
typedef struct lc_linear_args {
    lc_dtype dtype;
    int64_t m, k, n;
    lc_activation act;
    const void *x, *w, *bias;
    const void *residual;
    void *out;
    int w_t; /* w points at wᵀ [n, k] contiguous (torch's Linear layout; w is its transposed view) */
    lc_argmax_fold *argmax; /* NULL, or the argmax the ops layer asks to fold (below; norm_linear only) */
} lc_linear_args;

/* layer_norm_linear / rms_norm_linear: out = act(norm(x) · w + bias), norm(x) the row normalisation of x
 * [m,k] as lc_layer_norm (kind LC_NORM_LAYER: gamma, beta) or lc_rms_norm (LC_NORM_RMS: gamma is its weight,
 * beta NULL) compute it, rounded to the dtype as those ops round their output, then the linear's contract.
 * lin.x is x before the norm; lin.residual is NULL. gamma, beta may be NULL (no scale / no shift).
 * silu_mul_linear (kind LC_NORM_SWIGLU, the same "prologue on x" shape): lin.x is gu [m, 2k] (row pitch 2k,
 * gate | up), the transformed row is silu(gu[i, :k]) · gu[i, k:] rounded as lc_silu_mul writes it; lin.k = k;
 * lin.residual may be set (and be lin.out); gamma, beta NULL, eps unused. */
typedef enum lc_norm_kind { LC_NORM_LAYER = 1, LC_NORM_RMS = 2, LC_NORM_SWIGLU = 3 } lc_norm_kind;
typedef struct lc_norm_linear_args {
    lc_linear_args lin;
    lc_norm_kind kind;
    double eps;
    const void *gamma, *beta;
} lc_norm_linear_args;

/* out[seq,d] = softmax(scale · q kᵀ (+ causal mask)) v, float32: the attention part of the fused
 * attention_projection (which embeds this struct; out unused there). attention_forward itself runs on the
 * backends' sdpa kernels (lc_call_attention_sdpa below). */
typedef struct lc_attention_args {
    lc_dtype dtype;
    int64_t seq, head_dim;
    int causal;
    float scale;
    const void *q, *k, *v;
    void *out;
} lc_attention_args;

/* y[n,oc,oh,ow] = conv(x[n,c,h,w], w[oc,c,kh,kw]) + bias[oc] (bias may be NULL), optional ReLU. dtype
 * float32, float16 or bfloat16 (x, weight, bias, y all in it; 16-bit: float32 sums, bias and ReLU on them,
 * y rounded once). The fused conv_attention (which embeds this struct) takes float32 only. */
typedef struct lc_conv2d_args {
    lc_dtype dtype;
    int64_t n, c, h, w;
    int64_t oc, kh, kw;
    int64_t oh, ow;
    int stride_h, stride_w, pad_h, pad_w;
    int apply_relu;
    const void *x, *weight, *bias;
    void *y;
} lc_conv2d_args;

typedef enum lc_binary_kind { LC_BINARY_ADD = 0, LC_BINARY_SUB, LC_BINARY_DIV, LC_BINARY_COUNT } lc_binary_kind;

/* out[i] = a[i] (+|-|/) b[i]; float32, float64, float16, bfloat16 (16-bit: the float32 result rounded
 * once); out may equal a or b (exact alias). */
typedef struct lc_binary_args {
    lc_binary_kind kind;
    lc_dtype dtype;
    int64_t n;
    const void *a, *b;
    void *out;
} lc_binary_args;

/* out[i] = max(x[i], 0) (NaN propagates); float32, float64, float16, bfloat16; out may equal x. */
typedef struct lc_relu_args {
    lc_dtype dtype;
    int64_t n;
    const void *x;
    void *out;
} lc_relu_args;

/* out[i] = gelu(x[i]); dtype float32, float16 or bfloat16 (16-bit: computed in float32, rounded once);
 * out may equal x. */
typedef struct lc_gelu_args {
    lc_gelu_approx approx;
    lc_dtype dtype;
    int64_t n;
    const void *x;
    void *out;
} lc_gelu_args;

/* Per row of x[rows, cols]: (x - mean) / sqrt(var + eps) * gamma + beta; gamma/beta may be NULL;
 * biased variance (divide by cols), as torch. dtype float32, float16 or bfloat16 (x, gamma, beta, out
 * all in it; 16-bit: statistics and the output computed as float32, rounded once); out may equal x. */
typedef struct lc_layer_norm_args {
    lc_dtype dtype;
    int64_t rows, cols;
    double eps;
    const void *x, *gamma, *beta;
    void *out;
} lc_layer_norm_args;

/* rms_norm: per row of x[rows, cols], out = x / sqrt(mean(x²) + eps) * weight (weight [cols] or NULL = 1);
 * the mean of squares in float32 or better, then one rounding of the float32 result (16-bit: x loaded as
 * float). dtype float32, float16 or bfloat16 (x, weight, out in it); out may equal x. */
typedef struct lc_rms_norm_args {
    lc_dtype dtype;
    int64_t rows, cols;
    double eps;
    const void *x, *weight;
    void *out;
} lc_rms_norm_args;

/* softmax over the last axis of x[rows, cols]: out = exp(x - max) / Σ exp(x - max); a row holding NaN, +inf
 * or only -inf gives NaN everywhere (as torch). dtype float32, float16 or bfloat16; out may equal x. */
typedef struct lc_softmax_args {
    lc_dtype dtype;
    int64_t rows, cols;
    const void *x;
    void *out;
} lc_softmax_args;

/* silu: out[i] = a[i] * sigmoid(a[i]); silu_mul (b != NULL): out[i] = silu(a[i]) * b[i] (SwiGLU). float32
 * arithmetic, one rounding; dtype float32, float16 or bfloat16; out may equal a or b. cols > 0 (CUDA kernel
 * only: silu_mul_linear's fallback): n / cols rows of cols elements, a and b read at row pitch `pitch`
 * elements, out contiguous; 0: flat. */
typedef struct lc_silu_args {
    lc_dtype dtype;
    int64_t n;
    const void *a, *b;
    void *out;
    int64_t cols, pitch;
} lc_silu_args;

typedef enum lc_bcast_kind { LC_BCAST_ADD = 0, LC_BCAST_MUL, LC_BCAST_COUNT } lc_bcast_kind;

/* add / mul with NumPy broadcasting, normalised to 4 axes: out [s0,s1,s2,s3] contiguous; a's element for
 * output index (i0..i3) at a + Σ ik*a_st[k] (a_st[k] == 0 on a broadcast axis), likewise b. Axes are
 * merged where both inputs allow (op_call.c), so `contig` (a_st and b_st both the output's contiguous
 * strides) is the equal-shape fast path. float32/float64 arithmetic of the dtype (16-bit: float32, one
 * rounding). out may equal a or b when that input has the output's shape. */
typedef struct lc_bcast_args {
    lc_bcast_kind kind;
    lc_dtype dtype;
    int64_t shape[4];
    int64_t a_st[4], b_st[4];
    int contig;
    const void *a, *b;
    void *out;
} lc_bcast_args;

/* rope (rotary position embedding, half-split layout of LLaMA / GPT-NeoX): x [batch, heads, seq, head_dim]
 * with element (b, h, s, d) at x + b*x_st[0] + h*x_st[1] + s*x_st[2] + d*x_st[3] (any strides >= 0), out
 * contiguous [batch, heads, seq, head_dim]; positions int32/int64 with element (b, s) at
 * positions + b*p_st[0] + s*p_st[1] (p_st[0] == 0: one row for every batch entry). With h2 = rotary_dim / 2
 * and angle = position * inv_freq[i] (lc_rope_inv_freq, rope_freq.h; formed in float64):
 *   out[i]      = x[i] cos(angle) - x[i + h2] sin(angle)      i < h2
 *   out[i + h2] = x[i + h2] cos(angle) + x[i] sin(angle)
 *   out[j]      = x[j]                                        rotary_dim <= j < head_dim
 * cos/sin of the angle reduced mod 2π in float64 (float32 accuracy at any position), the rest float32, one
 * rounding. dtype float32, float16 or bfloat16; out may equal x (contiguous, exact alias). */
typedef struct lc_rope_args {
    lc_dtype dtype;
    int64_t batch, heads, seq, head_dim, rotary_dim;
    const void *x;
    int64_t x_st[4];
    const void *positions;
    lc_dtype pos_dtype; /* LC_DTYPE_I32 or LC_DTYPE_I64 */
    int64_t p_st[2];
    lc_rope_options opt; /* resolved: theta > 0, scaling parameters checked */
    void *out;
} lc_rope_args;

/* qkv_pack_repeat: dst[i] = src[i % src_n] for i < dst_n (the seed's flatten, then repeat or truncate
 * a conv output into q|k|v); a copy, any dtype of the table's mask (elements of lc_dtype_size(dtype)
 * bytes, bit-exact); src and dst do not overlap. */
typedef struct lc_qkv_pack_args {
    lc_dtype dtype;
    int64_t src_n, dst_n;
    const void *src;
    void *dst;
} lc_qkv_pack_args;

/* Scaled dot-product attention, batched multi-head (the sdpa op, lc_sdpa in ops.h).
 * Element (b, h, s, d) of an operand lives at ptr + b*st[0] + h*st[1] + s*st[2] + d*st[3] (elements, any
 * strides >= 0; no copies of strided views). q [batch, heads, sq, head_dim], k and v
 * [batch, kv_heads, skv, head_dim], out [batch, heads, sq, head_dim]; heads % kv_heads == 0 and query head h
 * reads kv head h / (heads / kv_heads) (GQA; MQA when kv_heads == 1). For query row i of sequence b, key j
 * is visible when all of:
 *   j < L_b                       L_b = key_lengths[b] (clamped to [0, skv]) or skv when key_lengths is NULL
 *   !causal || j <= i + L_b - sq  the causal diagonal aligned to the end of the (valid) keys
 *   !window || j > i + L_b - sq - window   the sliding window (left bound), with or without causal
 *   mask_kind != BOOL || mask[b,h,i,j] != 0
 * p_i = i + L_b - sq is query i's own key position (causal alignment), so with causal a row sees at most
 * `window` keys, p_i - window < j <= p_i: Hugging Face's sliding window (transformers' masking_utils
 * sliding_window_overlay: kv_idx > q_idx - sliding_window, q_idx the absolute position; Mistral, Qwen2).
 * Without causal the window is the left bound only (keys past p_i stay visible). window 0: none; > 0 else.
 * score = scale * q_i·k_j (+ mask[b,h,i,j] when mask_kind == ADD; -inf there hides the key);
 * out_i = sum_j softmax_j(score) v_j over the visible keys; a row with no visible key (or only -inf scores)
 * gets zeros (and lse -inf). NaN in q, k, v or an additive mask propagates to the rows it reaches.
 * dtype: float32, float16 or bfloat16 for q, k, v and out (16-bit: float32 scores, softmax and
 * accumulation, out rounded once). An ADD mask is float32 or the operands' dtype (mask_dtype); a BOOL mask
 * is one byte per element (nonzero: take part). key_lengths is int32 or int64 [batch] on the kernel's
 * device. lse (optional, float32 contiguous [batch, heads, sq]) gets log(sum_j exp(score_j)) over the
 * visible keys (natural log). Everything lives on the kernel's device; out does not overlap an input. */
typedef enum lc_sdpa_mask_kind { LC_SDPA_MASK_NONE = 0, LC_SDPA_MASK_ADD, LC_SDPA_MASK_BOOL } lc_sdpa_mask_kind;

typedef struct lc_sdpa_args {
    lc_dtype dtype;
    int64_t batch, heads, kv_heads, sq, skv, head_dim;
    const void *q, *k, *v;
    void *out;
    int64_t q_st[4], k_st[4], v_st[4], o_st[4];
    lc_sdpa_mask_kind mask_kind;
    lc_dtype mask_dtype;
    const void *mask;
    int64_t m_st[4];            /* over (b, h, i, j); 0 on broadcast axes */
    const void *key_lengths;    /* NULL or [batch] */
    lc_dtype key_lengths_dtype; /* LC_DTYPE_I32 or LC_DTYPE_I64 */
    int causal;
    int64_t window;             /* 0: no sliding window; else >= 1 (the visibility rule above) */
    float scale;
    float *lse;                 /* NULL or [batch, heads, sq] */
    /* 1 (calls without a mask): NaN/Inf as the plain formula softmax(s)·v gives them, attention_forward's rule
     * (lc_call_attention_sdpa) and its float64 reference's: a row whose visible scores are all -inf (its rows
     * all see key 0, so only ±inf in q or k gets there) is NaN, not zeros (lse stays -inf); and on the CPU
     * every visible key's v is multiplied by its weight, 0 included (0·NaN = NaN), so the p·v arithmetic does
     * not depend on what v holds (no zero-skipping fallback for a v tile with NaN/Inf). On CUDA it runs the
     * generic kernel (which never skips without a mask) for every sq, not the decode kernels (sq <= 16, which
     * skip zero weights under causal), and the tensor-core prefill (lc_cuda_sdpa_mma_fits) refuses it.
     * lc_sdpa leaves it 0. */
    int plain_nonfinite;
    /* NULL, or a KV-cache append to run first (the KV cache's attention with k_new/v_new): k/v above are its
     * caches (skv = max_seq), key_lengths its lengths (int32). The call means append, then attention at the
     * advanced lengths. A backend may fuse the two (CUDA: the tensor-core decode reads keys [L_b, L_b + tokens)
     * from k_new/v_new, writes them into the caches and advances the lengths as it attends), else it runs its
     * append kernel, then the attention. */
    const struct lc_kv_append_args *append;
    /* NULL, or (with append) the rotary embedding of q and of the append's new keys first: rope(q, positions),
     * rope(k_new, positions) as lc_rope_args gives them (positions, pos_dtype, p_st over (b, token), opt,
     * rotary_dim; x and out unused), token i of both at positions[b, i]; the caches receive the rotated keys.
     * Only a backend that fuses it takes it (CUDA: the tensor-core decode, lc_cuda_launch_sdpa); the
     * others return LC_ERR_UNSUPPORTED before doing anything, and the KV cache then runs rope first. */
    const struct lc_rope_args *rope;
} lc_sdpa_args;

/* KV-cache append: for each sequence b with length L = lengths[b] (device int32, clamped to max_seq),
 * k_cache[b, g, L + t, :] = k_new[b, g, t, :] and likewise v for t < tokens while L + t < max_seq, then
 * lengths[b] = min(L + tokens, max_seq), and *overflow (device int32, may be NULL) is set to 1 when a token
 * did not fit. Caches are contiguous [batch, kv_heads, max_seq, head_dim]; k_new/v_new strided like
 * lc_sdpa_args (st over b, g, t, d). The lengths are read and written on the device only, so a captured
 * graph replays the append at each step's current length. dtype as the caches (any float dtype). */
typedef struct lc_kv_append_args {
    lc_dtype dtype;
    int64_t batch, kv_heads, max_seq, head_dim, tokens;
    void *k_cache, *v_cache;
    const void *k_new, *v_new;
    int64_t kn_st[4], vn_st[4];
    int32_t *lengths;
    int32_t *overflow;
} lc_kv_append_args;

/* The seed's conv -> attention chain in one kernel (CUDA, small shapes; conv_attention_cuda.cu):
 * y = relu(conv(x, w) + bias) per `conv` (3x3, apply_relu set; conv.y unused), then
 * out [seq, head_dim] = attention(q, k, v) where q|k|v element i is y_flat[i % y.size]. */
typedef struct lc_conv_attention_args {
    lc_conv2d_args conv;
    int64_t seq, head_dim;
    int causal;
    float scale;
    float *out;
} lc_conv_attention_args;

/* attention_projection: out [seq, pn] = attention(q, k, v) [seq, d] · w [d, pn] (+ bias [pn]), the
 * attention rows projected as they are produced (att.out unused). Every operand in att.dtype (the table's
 * mask: float32 on CUDA; float32, float16, bfloat16 on the CPU, where the float32 attention rows are projected
 * in float32 and out is rounded once). */
typedef struct lc_attention_projection_args {
    lc_attention_args att;
    const void *w, *bias;
    int64_t pn;
    void *out;
} lc_attention_projection_args;

/* embedding: out[r, :] = weight[ids[r] - offset, :] for r < rows (ids int32 or int64, flattened); weight
 * [vocab, dim] and out in `dtype` (any float dtype; a bit-exact copy). sharded 0 (lc_embedding; offset 0): an
 * id outside 0..vocab-1: the CPU refuses the call before writing (LC_ERR_INVALID_ARGUMENT naming the
 * position), CUDA writes a zero row. sharded 1 (lc_embedding_offset; lc_call.ext points to the int64_t
 * offset): weight holds the rows of ids offset..offset+vocab-1 of a larger table, and any other id gives a
 * zero row on every backend. */
typedef struct lc_embedding_args {
    lc_dtype dtype, ids_dtype;
    int sharded;
    int64_t rows, vocab, dim, offset;
    const void *weight, *ids;
    void *out;
    /* learned positions (lc_embedding_pos; pos_weight NULL: none): out row r += pos_weight[positions[r]] (rows
     * pos_rows, dtype's arithmetic as lc_add: float32 for the 16-bit dtypes, rounded once) */
    const void *pos_weight, *positions;
    lc_dtype pos_dtype;
    int64_t pos_rows;
} lc_embedding_args;

/* argmax: out[r] (int64) = the index of the largest of x[r, 0..cols) (the first one on ties; a NaN counts as
 * larger than any number, the first NaN wins, as NumPy and torch). dtype: any float dtype. */
typedef struct lc_argmax_args {
    lc_dtype dtype;
    int64_t rows, cols;
    const void *x;
    int64_t *out;
} lc_argmax_args;

/* A strided gather into a contiguous buffer (the backend's `gather` entry): dst[i] (row-major order over
 * shape) = src[sum_k idx_k * st[k]] for n = prod(shape) elements of `elem` bytes (1, 2, 4 or 8; a bit-exact
 * copy); src and dst on the backend's device, not overlapping. */
typedef struct lc_gather_args {
    size_t elem;
    int ndim;
    int64_t shape[LC_MAX_DIMS], st[LC_MAX_DIMS];
    int64_t n;
    const void *src;
    void *dst;
    int dst_strided;              /* 0: dst contiguous (the gather); 1: dst a strided view, dst_st its strides */
    int64_t dst_st[LC_MAX_DIMS];
} lc_gather_args;
/* prefetch (lc_tensor_prefetch): n byte ranges [ptr[i], ptr[i] + bytes[i]) of device memory (each a tensor's
 * span, bytes[i] > 0) to bring into the device's cache ahead of the kernels that read them. A hint: nothing is
 * written or read back. */
#define LC_PREFETCH_MAX 8
typedef struct lc_prefetch_args {
    int n;
    const void *ptr[LC_PREFETCH_MAX];
    size_t bytes[LC_PREFETCH_MAX];
} lc_prefetch_args;
/* sample (lc_sample, filled by src/ops/sample.c and reaching the kernel through lc_call.ext): for each row r
 * of logits [rows, cols] (contiguous, `dtype`), one token index into out[r] (int64), drawn as
 * src/core/sample_math.h defines: s = (float)x / temperature; top_k > 0 (and < cols) keeps the keys >= the
 * k-th largest key (ties kept); weights floor(exp(s - max) * 2^40) of the kept; top_p < 1 keeps the largest
 * keys whose weight sum first reaches ceil(top_p * total) (ties kept); u = lc_sample_bits(seed, step, r) / 2^64
 * picks the first index whose running kept weight exceeds floor(u * kept total). step = *counter (NULL: 0);
 * the backend adds 1 to *counter after every row has read it. A row holding NaN: the CPU refuses the call
 * before writing (LC_ERR_INVALID_ARGUMENT), CUDA writes the index of its first NaN. cols <= 2^23. */
typedef struct lc_sample_args {
    lc_dtype dtype;
    int64_t rows, cols;
    const void *logits;
    int64_t *out;
    float temperature, top_p; /* temperature finite > 0; top_p in (0, 1] */
    int64_t top_k;            /* >= 0 */
    uint64_t seed;
    int64_t *counter; /* on the op's device, or NULL */
} lc_sample_args;

/* Graph capture state of a backend (capture_state entry). */
enum { LC_CAPTURE_NONE = 0, LC_CAPTURE_THIS_THREAD = 1, LC_CAPTURE_OTHER_THREAD = 2 };

struct lc_dp_step_args; /* core/decode_program.h */

/* The backend table. Which op/dtype pairs a backend takes is the op table's dtype mask for it
 * (lc_op_supported, op_table.h): there is no per-backend support function to keep in step. */
typedef struct lc_backend {
    const char *name;
    lc_device device;
    int (*available)(void);
    lc_status (*alloc)(size_t bytes, void **ptr);
    void (*free)(void *ptr);
    lc_status (*copy_h2d)(void *dst, const void *src, size_t bytes); /* returns once src has been read */
    lc_status (*copy_d2h)(void *dst, const void *src, size_t bytes);
    lc_status (*copy_d2d)(void *dst, const void *src, size_t bytes);
    lc_status (*sync)(void);
    /* Kernels indexed by op id (NULL: none here; aliases run as their runs_as op's kernel, composite ops
     * as other ops). fits[op] NULL: any shape the op's rule accepts. */
    lc_kernel_fn kernels[LC_OP_COUNT];
    lc_fits_fn fits[LC_OP_COUNT];
    /* Graph capture and replay (NULL where the backend has none; the CPU runs sessions eagerly).
     * capture_begin starts recording the calling thread's work on the backend stream instead of running
     * it; capture_end(keep) stops and, when keep, returns an executable graph that owns the workspace
     * blocks freed during capture; graph_launch enqueues `loops` replays. While capturing, host copies
     * and synchronisation fail with an error instead of breaking the capture. */
    lc_status (*capture_begin)(void);
    lc_status (*capture_end)(int keep, void **graph, int64_t *nodes);
    lc_status (*graph_launch)(void *graph, int64_t loops);
    void (*graph_free)(void *graph);
    int (*capture_state)(void);
    /* Strided gather on the device into a contiguous buffer (lc_gather_args): how a strided view on the
     * device an op runs on becomes a contiguous operand without a trip through the host. */
    lc_status (*gather)(const lc_gather_args *args);
    /* Cache prefetch of device ranges (lc_prefetch_args), enqueued on the backend stream like a kernel (NULL:
     * the backend has nothing to prefetch into that pays, e.g. the CPU; lc_tensor_prefetch then does nothing). */
    lc_status (*prefetch)(const lc_prefetch_args *args);
    /* The fused decode step (core/decode_program.h; NULL: the backend has none, lc_decode_program_new refuses).
     * args NULL: fills *grid (its blocks, one per SM, all resident) and *smem_max (the dynamic shared memory a
     * block may use) for the plan; else enqueues the step. */
    lc_status (*decode_program)(const struct lc_dp_step_args *args, int *grid, size_t *smem_max);
    /* Device timer (NULL: the CPU uses wall time): events recorded on the backend stream. */
    lc_status (*timer_start)(void **handle);
    lc_status (*timer_stop)(void *handle, double *elapsed_ms);
    /* 1: the linear-family kernels (LC_OPF_W_T ops) take w as the storage of a transposed view (lc_call.in_t):
     * a w that is the transpose of a contiguous [n, k] array is passed without a gather */
    int takes_w_t;
} lc_backend;

/* The backend registered for a concrete device (CPU or CUDA), or NULL when not built. */
const lc_backend *lc_backend_for(lc_device device);

/* Whether `be` has a kernel for c->op (its runs_as) that takes c's dtype (the table's mask for be's device)
 * and c's shapes (its fits entry). */
int lc_backend_fits(const lc_backend *be, const lc_call *c);

/* A backend's table entry `fn` for a kernel taking its own argument struct: fills args_t from the call
 * (`fill`, one of the lc_call_* below) and runs `kernel`; LC_FITS_ADAPTER likewise for a fits check. */
#define LC_KERNEL_ADAPTER(fn, args_t, fill, kernel)                                                          \
    static lc_status fn(const lc_call *c, const char **path) {                                               \
        args_t a;                                                                                           \
        fill(c, &a);                                                                                        \
        return kernel(&a, path);                                                                            \
    }
#define LC_FITS_ADAPTER(fn, args_t, fill, check)                                                             \
    static int fn(const lc_call *c) {                                                                       \
        args_t a;                                                                                           \
        fill(c, &a);                                                                                        \
        return check(&a);                                                                                   \
    }

/* The kernel argument structs from a call (op_call.c): what the adapters hand the existing kernels. */
void lc_call_matmul(const lc_call *c, lc_matmul_args *a);
void lc_call_linear(const lc_call *c, lc_linear_args *a);
void lc_call_norm_linear(const lc_call *c, lc_norm_linear_args *a);
void lc_call_attention(const lc_call *c, lc_attention_args *a);
/* attention_forward [seq, d] as a [1, 1, seq, d] sdpa call (contiguous, no mask, scale 1/sqrt(d)); the same from
 * lc_attention_args (its scale; the CPU attention_projection's attention). */
void lc_call_attention_sdpa(const lc_call *c, lc_sdpa_args *a);
void lc_attention_as_sdpa(const lc_attention_args *at, lc_sdpa_args *a);
void lc_call_conv2d(const lc_call *c, lc_conv2d_args *a);
void lc_call_binary(const lc_call *c, lc_binary_args *a);
void lc_call_relu(const lc_call *c, lc_relu_args *a);
void lc_call_gelu(const lc_call *c, lc_gelu_args *a);
void lc_call_layer_norm(const lc_call *c, lc_layer_norm_args *a);
void lc_call_qkv_pack(const lc_call *c, lc_qkv_pack_args *a);
void lc_call_rms_norm(const lc_call *c, lc_rms_norm_args *a);
void lc_call_softmax(const lc_call *c, lc_softmax_args *a);
void lc_call_silu(const lc_call *c, lc_silu_args *a);
void lc_call_embedding(const lc_call *c, lc_embedding_args *a);
void lc_call_argmax(const lc_call *c, lc_argmax_args *a);
/* add / mul: the broadcast of the call's input shapes to its output shape, axes merged (lc_bcast_args). */
void lc_call_bcast(const lc_call *c, lc_bcast_args *a);
void lc_call_conv_attention(const lc_call *c, lc_conv_attention_args *a);
void lc_call_attention_projection(const lc_call *c, lc_attention_projection_args *a);

/* The CPU backend (always built). */
extern const lc_backend lc_cpu_backend;
#ifdef LC_HAVE_CUDA
/* The CUDA backend (src/backend/cuda/), built when nvcc is found (CMake LC_CUDA=AUTO|ON). */
extern const lc_backend lc_cuda_backend;
#endif

#endif
