/* cpu_kernels.h — entry points of the CPU kernels (one file per op family under src/backend/cpu/),
 * wired into the CPU backend table by backend_cpu.c, and the float64 reference kernels used by the
 * tests (reference.c). Argument structs: src/core/backend.h.
 * Tests: tests/c/test_ops.c. */
#ifndef LC_CPU_KERNELS_H
#define LC_CPU_KERNELS_H

#include "core/backend.h"

lc_status lc_cpu_matmul(const lc_matmul_args *args, const char **path);         /* matmul_cpu.c */
/* 1 when large matmuls go to BLAS (built with it and not disabled by LC_MATMUL_NO_BLAS=1). */
int lc_cpu_matmul_blas_active(void);                                              /* matmul_cpu.c */
/* linear_cpu.c: linear's float32 epilogue of one row of sums, in place: + bias, the activation, + residual
 * (bias [n], res [n] or NULL); the float32 and the float16/bfloat16 linear (lowp_cpu.c) both use it. */
void lc_cpu_linear_row_epilogue(float *row, int64_t n, const float *bias, lc_activation act, const float *res);
/* matmul_lowp_cpu.c: float32 m <= 4 with AVX-512 and k·n >= 65536 through the in-place GEMV; 1 when taken. */
int lc_cpu_gemv_f32_try(const lc_matmul_args *args, const char **path, lc_status *st);
/* matmul_lowp_cpu.c: float32 at 4 < m <= 64 on AVX-512 (F + BW): the medium-m kernel the 16-bit dtypes widen into
 * (b copied slice by slice into L2-resident panels, FMA micro-kernels), path "f32_mid_avx512"; _fits says whether
 * it takes the call (matmul_cpu.c's mode "mid"). */
int lc_cpu_mid_f32_fits(const lc_matmul_args *args);
lc_status lc_cpu_matmul_mid_f32(const lc_matmul_args *args, const char **path);
/* float16 / bfloat16 storage, float32 accumulation (matmul_cpu.c hands those dtypes here). */
lc_status lc_cpu_matmul_lowp(const lc_matmul_args *args, const char **path);    /* matmul_lowp_cpu.c */
/* sdpa_cpu.c: lc_sdpa_args semantics (backend.h), float32/float16/bfloat16, threaded over batch x heads x
 * query blocks; lse may be NULL. kv_append: the cache append on host memory. */
lc_status lc_cpu_sdpa(const lc_sdpa_args *args, const char **path);
/* The same (any of its dtypes; the rows are float32) with each task's rows handed to `sink` instead of written to
 * args->out (which may be NULL): rows [i0, i0 + nq) of (b, h), normalised, row i at rows + i·stride (stride >= head_dim floats), in the
 * task's thread and scratch (valid during the call only); tasks run concurrently on the pool. sdpa_cpu.c. */
typedef void (*lc_cpu_sdpa_sink)(void *ctx, int64_t b, int64_t h, int64_t i0, int64_t nq, const float *rows,
                                 int64_t stride);
lc_status lc_cpu_sdpa_rows(const lc_sdpa_args *args, lc_cpu_sdpa_sink sink, void *ctx, const char **path);
lc_status lc_cpu_kv_append(const lc_kv_append_args *args);
/* layout_cpu.c: the backend's gather entry (a strided view into a contiguous buffer). */
lc_status lc_cpu_gather(const lc_gather_args *args);
/* index_cpu.c: embedding (ids checked before any write) and argmax. */
lc_status lc_cpu_embedding(const lc_embedding_args *args, const char **path);
lc_status lc_cpu_argmax(const lc_argmax_args *args, const char **path);
/* sample_cpu.c: one token a row (lc_sample_args; a NaN refuses the call before anything is written). */
lc_status lc_cpu_sample(const lc_sample_args *args, const char **path);
lc_status lc_cpu_conv2d(const lc_conv2d_args *args, const char **path);         /* conv2d_cpu.c */
lc_status lc_cpu_binary(const lc_binary_args *args, const char **path);         /* elementwise_cpu.c */
lc_status lc_cpu_relu(const lc_relu_args *args, const char **path);             /* elementwise_cpu.c */
lc_status lc_cpu_gelu(const lc_gelu_args *args, const char **path);             /* elementwise_cpu.c */
lc_status lc_cpu_layer_norm(const lc_layer_norm_args *args, const char **path); /* layer_norm_cpu.c */
lc_status lc_cpu_linear(const lc_linear_args *args, const char **path);         /* linear_cpu.c */
lc_status lc_cpu_norm_linear(const lc_norm_linear_args *args, const char **path); /* linear_cpu.c */
lc_status lc_cpu_attention_projection(const lc_attention_projection_args *args, const char **path); /* attention_projection_cpu.c */
lc_status lc_cpu_qkv_pack(const lc_qkv_pack_args *args, const char **path);     /* layout_cpu.c */
/* llm_cpu.c: float32/float16/bfloat16 (bcast also float64), 16-bit through float32 blocks, one rounding. */
lc_status lc_cpu_rms_norm(const lc_rms_norm_args *args, const char **path);
lc_status lc_cpu_softmax(const lc_softmax_args *args, const char **path);
lc_status lc_cpu_silu(const lc_silu_args *args, const char **path);   /* silu, and silu_mul when b != NULL */
lc_status lc_cpu_bcast(const lc_bcast_args *args, const char **path); /* add, mul with broadcasting */
/* out[0..n) = a + b, contiguous rows of dtype, with lc_cpu_bcast's arithmetic, on the calling thread (llm_cpu.c). */
void lc_cpu_add_row(lc_dtype dtype, const void *a, const void *b, void *out, int64_t n);
lc_status lc_cpu_rope(const lc_rope_args *args, const char **path);   /* rope_cpu.c */

/* float16 / bfloat16 storage (lowp_cpu.c): blocks converted to float32, the float32 kernel above run on
 * them, the result rounded once to the dtype. The float32 entries hand these dtypes here. */
static inline int lc_cpu_is_lowp(lc_dtype d) { return d == LC_DTYPE_F16 || d == LC_DTYPE_BF16; }
lc_status lc_cpu_lowp_binary(const lc_binary_args *args, const char **path);
lc_status lc_cpu_lowp_relu(const lc_relu_args *args, const char **path);
lc_status lc_cpu_lowp_gelu(const lc_gelu_args *args, const char **path);
lc_status lc_cpu_lowp_layer_norm(const lc_layer_norm_args *args, const char **path);
lc_status lc_cpu_lowp_linear(const lc_linear_args *args, const char **path);
/* conv2d: the whole operands converted into one float32 workspace, the float32 kernel, the output
 * rounded once. */
lc_status lc_cpu_lowp_conv2d(const lc_conv2d_args *args, const char **path);
/* matmul_lowp_cpu.c: a, b in args->dtype (16-bit), c written as float32 (c_f32 [m,n]), unrounded: for
 * linear's epilogue on the float32 sums. */
lc_status lc_cpu_matmul_lowp_f32out(const lc_matmul_args *args, float *c_f32, const char **path);
/* One float32 workspace of parts[0] + ... + parts[nparts-1] elements for a 16-bit op's float32 images
 * (lowp_cpu.c); NULL with *st set (`op`'s overflow or out-of-memory error) when it cannot be had. */
float *lc_cpu_f32_workspace(const char *op, lc_dtype d, const int64_t *parts, int nparts, lc_status *st);

/* float64 references (reference.c): the same contracts, inputs given as double, simple loops,
 * no threads, no SIMD. Used only by tests to judge every backend. */
void lc_ref_matmul(int64_t m, int64_t k, int64_t n, const double *a, const double *b, double *c);
void lc_ref_attention(int64_t seq, int64_t d, int causal, const double *q, const double *k, const double *v,
                      double *out);
/* sdpa on double arrays laid out as args describes (q, k, v, out by q_st/k_st/v_st/o_st, the mask by m_st:
 * additive values, or for a BOOL mask nonzero = take part; args->mask/q/k/v/out are ignored, the sizes,
 * strides, mask_kind, key_lengths, causal and scale are read). lse: NULL or contiguous [batch, heads, sq].
 * A row with a NaN score is NaN (lse NaN); keys with weight exactly 0 contribute nothing. */
void lc_ref_sdpa(const lc_sdpa_args *shape_and_attrs, const double *q, const double *k, const double *v,
                 const double *mask, double *out, double *lse);
void lc_ref_conv2d(const lc_conv2d_args *shape_and_attrs, const double *x, const double *w, const double *bias,
                   double *y);
void lc_ref_binary(lc_binary_kind kind, int64_t n, const double *a, const double *b, double *out);
void lc_ref_relu(int64_t n, const double *x, double *out);
void lc_ref_gelu(lc_gelu_approx approx, int64_t n, const double *x, double *out);
void lc_ref_linear(int64_t m, int64_t k, int64_t n, lc_activation act, const double *x, const double *w,
                   const double *bias, double *out);
void lc_ref_layer_norm(int64_t rows, int64_t cols, double eps, const double *x, const double *gamma,
                       const double *beta, double *out);

#endif
