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

/* A fused linear layer: out [m,n] = act(x [m,k] · w [k,n] + bias [n]); bias may be NULL. float32.
 * On CUDA the bias and activation run in the cuBLASLt epilogue (GELU erf: epilogue bias + one
 * elementwise pass); on the CPU in one pass over out after the product. */
lc_status lc_linear(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_activation act,
                    lc_tensor_t *out, lc_device device);

/* Single-head attention forward: q, k, v, out [seq, head_dim], one dtype: float32, float16 or bfloat16
 * (16-bit: float32 scores, softmax and accumulation, out rounded once);
 * out = softmax(q·kᵀ / sqrt(head_dim) [+ causal mask]) · v, computed tiled with an online softmax
 * (memory O(seq·head_dim)). With causal != 0, query row i attends to key rows 0..i. */
lc_status lc_attention_forward(const lc_tensor_t *q, const lc_tensor_t *k, const lc_tensor_t *v,
                               lc_tensor_t *out, int causal, lc_device device);

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

#ifdef __cplusplus
}
#endif
#endif
