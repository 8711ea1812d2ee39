/* gemm_cublaslt.h — row-major GEMM on the GPU through cuBLASLt (internal to the CUDA backend):
 * c[m,n] = epilogue(a[m,k] · b[k,n] + bias[n]), float32 (exact, or TF32 under LC_PRECISION_TF32) or
 * float64; epilogues none / ReLU / GELU, each with or without bias (cuBLASLt's GELU is the tanh form), ready for
 * the fused paths. Algorithms are chosen once per shape and cached.
 * Tests: tests/c/test_ops.c, tests/python/test_ops_matmul.py on "cuda". */
#ifndef LC_GEMM_CUBLASLT_H
#define LC_GEMM_CUBLASLT_H

#include "core/backend.h"

typedef enum lc_gemm_epilogue {
    LC_GEMM_EPILOGUE_NONE = 0,
    LC_GEMM_EPILOGUE_RELU,
    LC_GEMM_EPILOGUE_GELU_TANH,
    LC_GEMM_EPILOGUE_BIAS,
    LC_GEMM_EPILOGUE_BIAS_RELU,
    LC_GEMM_EPILOGUE_BIAS_GELU_TANH,
    LC_GEMM_EPILOGUE_COUNT
} lc_gemm_epilogue;

/* Device pointers; bias [n] (in the operands' dtype) is required for the BIAS epilogues, ignored otherwise.
 * float16/bfloat16: float32 accumulation, the epilogue on the float32 sums, c rounded once. */
lc_status lc_cuda_gemm(const lc_matmul_args *args, const void *bias, lc_gemm_epilogue epilogue, const char **path);
/* As lc_cuda_gemm with c stored as c_dtype: args->dtype, or float32 for float16/bfloat16 operands (the
 * unrounded float32 sums, for an epilogue cuBLASLt lacks; bias epilogues are not taken then). */
lc_status lc_cuda_gemm_ex(const lc_matmul_args *args, lc_dtype c_dtype, const void *bias, lc_gemm_epilogue epilogue,
                          const char **path);
/* c = a·b + residual[m, n] (c's dtype and layout; may be c itself: then the call is not autotuned, whose timed runs
 * would add the product again), in float32, rounded once (cuBLASLt's C with beta 1). No bias or activation here: an
 * activation would apply to the residual too, and a 16-bit bias epilogue rounds the product first (gemm_cublaslt.c). */
lc_status lc_cuda_gemm_residual(const lc_matmul_args *args, const void *residual, const char **path);

#endif
