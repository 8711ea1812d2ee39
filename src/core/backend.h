/* backend.h — the backend table and registry, and the kernel-level argument structs.
 *
 * A backend is a table of function pointers: memory (alloc/free/copies/sync), `supports`, and one
 * entry per op family. The ops layer (src/ops/) validates tensors, picks a backend by the device
 * policy, makes operands contiguous and calls an entry with the structs below; kernels see only
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

typedef enum lc_op {
    LC_OP_MATMUL = 0,
    LC_OP_ATTENTION,
    LC_OP_CONV2D,
    LC_OP_BINARY,      /* vector_add, matrix_sub, matrix_div */
    LC_OP_RELU,
    LC_OP_GELU,
    LC_OP_LAYER_NORM,
    LC_OP_LINEAR,
    LC_OP_QKV_PACK,
    LC_OP_CONV_ATTENTION,
    LC_OP_ATTENTION_PROJECTION,
    LC_OP_COUNT
} lc_op;

/* c[m,n] = a[m,k] · b[k,n]; all contiguous row-major; dtype F32 or F64. */
typedef struct lc_matmul_args {
    lc_dtype dtype;
    int64_t m, k, n;
    const void *a;
    const void *b;
    void *c;
} lc_matmul_args;

/* out[m,n] = act(x[m,k] · w[k,n] + bias[n]); float32; bias may be NULL. */
typedef struct lc_linear_args {
    int64_t m, k, n;
    lc_activation act;
    const float *x, *w, *bias;
    float *out;
} lc_linear_args;

/* out[seq,d] = softmax(scale · q kᵀ (+ causal mask)) v; float32. */
typedef struct lc_attention_args {
    int64_t seq, head_dim;
    int causal;
    float scale;
    const float *q, *k, *v;
    float *out;
} lc_attention_args;

/* y[n,oc,oh,ow] = conv(x[n,c,h,w], w[oc,c,kh,kw]) + bias[oc] (bias may be NULL), optional ReLU. */
typedef struct lc_conv2d_args {
    int64_t n, c, h, w;
    int64_t oc, kh, kw;
    int64_t oh, ow;
    int stride_h, stride_w, pad_h, pad_w;
    int apply_relu;
    const float *x, *weight, *bias;
    float *y;
} lc_conv2d_args;

typedef enum lc_binary_kind { LC_BINARY_ADD = 0, LC_BINARY_SUB, LC_BINARY_DIV, LC_BINARY_COUNT } lc_binary_kind;

/* out[i] = a[i] (+|-|/) b[i]; out may equal a or b (exact alias). */
typedef struct lc_binary_args {
    lc_binary_kind kind;
    lc_dtype dtype;
    int64_t n;
    const void *a, *b;
    void *out;
} lc_binary_args;

/* out[i] = max(x[i], 0) (NaN propagates); out may equal x. */
typedef struct lc_relu_args {
    lc_dtype dtype;
    int64_t n;
    const void *x;
    void *out;
} lc_relu_args;

/* out[i] = gelu(x[i]); float32; out may equal x. */
typedef struct lc_gelu_args {
    lc_gelu_approx approx;
    int64_t n;
    const float *x;
    float *out;
} lc_gelu_args;

/* Per row of x[rows, cols]: (x - mean) / sqrt(var + eps) * gamma + beta; gamma/beta may be NULL;
 * biased variance (divide by cols), as torch. float32; out may equal x. */
typedef struct lc_layer_norm_args {
    int64_t rows, cols;
    double eps;
    const float *x, *gamma, *beta;
    float *out;
} lc_layer_norm_args;

/* qkv_pack_repeat: dst[i] = src[i % src_n] for i < dst_n (the seed's flatten, then repeat or truncate
 * a conv output into q|k|v); float32; src and dst do not overlap. */
typedef struct lc_qkv_pack_args {
    int64_t src_n, dst_n;
    const float *src;
    float *dst;
} lc_qkv_pack_args;

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
 * attention rows projected as they are produced (att.out unused). float32. */
typedef struct lc_attention_projection_args {
    lc_attention_args att;
    const float *w, *bias;
    int64_t pn;
    float *out;
} lc_attention_projection_args;

/* Graph capture state of a backend (capture_state entry). */
enum { LC_CAPTURE_NONE = 0, LC_CAPTURE_THIS_THREAD = 1, LC_CAPTURE_OTHER_THREAD = 2 };

/* Each op entry returns LC_OK or an error set with lc_error(); *path receives a static string naming
 * the kernel path taken (e.g. "avx512_small"), for the dispatch record and the trace. */
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
    int (*supports)(lc_op op, lc_dtype dtype);
    lc_status (*matmul)(const lc_matmul_args *args, const char **path);
    lc_status (*attention)(const lc_attention_args *args, const char **path);
    lc_status (*conv2d)(const lc_conv2d_args *args, const char **path);
    lc_status (*binary)(const lc_binary_args *args, const char **path);
    lc_status (*relu)(const lc_relu_args *args, const char **path);
    lc_status (*gelu)(const lc_gelu_args *args, const char **path);
    lc_status (*layer_norm)(const lc_layer_norm_args *args, const char **path);
    lc_status (*linear)(const lc_linear_args *args, const char **path);
    lc_status (*qkv_pack)(const lc_qkv_pack_args *args, const char **path);
    /* NULL where the backend has no fused kernel; `fits` says whether a shape fits it. */
    lc_status (*conv_attention)(const lc_conv_attention_args *args, const char **path);
    int (*conv_attention_fits)(const lc_conv_attention_args *args);
    lc_status (*attention_projection)(const lc_attention_projection_args *args, const char **path);
    int (*attention_projection_fits)(const lc_attention_projection_args *args); /* NULL: any shape */
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
    /* Device timer (NULL: the CPU uses wall time): events recorded on the backend stream. */
    lc_status (*timer_start)(void **handle);
    lc_status (*timer_stop)(void *handle, double *elapsed_ms);
} lc_backend;

/* The backend registered for a concrete device (CPU or CUDA), or NULL when not built. */
const lc_backend *lc_backend_for(lc_device device);

/* The CPU backend (always built). */
extern const lc_backend lc_cpu_backend;
#ifdef LC_HAVE_CUDA
/* The CUDA backend (src/backend/cuda/), built when nvcc is found (CMake LC_CUDA=AUTO|ON). */
extern const lc_backend lc_cuda_backend;
#endif

#endif
