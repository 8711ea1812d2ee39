/* activation.cuh — the float32 activations of the CUDA kernels, shared by elementwise_cuda.cu (relu, gelu,
 * linear's 16-bit bias+act epilogue) and gemv_cuda.cu (the small-m linear), so every path computes them
 * bit-identically: OpIdentity, OpRelu (NaN and -0 kept), OpSilu (also llm_cuda.cu's silu), OpGeluErf (x·normcdff(x)), OpGeluTanh (float-pair
 * argument, the CPU kernel's exp polynomial; accuracy notes in elementwise_cuda.cu's header); for float16 /
 * bfloat16 outputs the cheaper OpGeluErfLowp / OpGeluTanhLowp (GeluOps<T> picks by the stored type), whose
 * float32 error (below 6e-5 relative) the 16-bit rounding absorbs.
 * Tests: tests/c/test_ops.c (relu / gelu groups), tests/python/test_ops_elementwise.py,
 * tests/python/test_ops_linear.py and tests/c/test_gemv_cuda.c on device "cuda". */
#ifndef LC_CUDA_ACTIVATION_CUH
#define LC_CUDA_ACTIVATION_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

struct OpIdentity {
    __device__ __forceinline__ float operator()(float x) const { return x; }
};

/* x < 0 ? 0 : x keeps NaN (the comparison is false) and -0, as the CPU kernel. */
struct OpRelu {
    template <typename T> __device__ __forceinline__ T operator()(T x) const { return x < (T)0 ? (T)0 : x; }
};

/* silu(x) = x·σ(x), σ from e = expf(-|x|) (never overflows): x >= 0: 1/(1+e), else e/(1+e). The one formula of
 * silu / silu_mul (llm_cuda.cu) and the GEMV's SwiGLU prologue (gemv_cuda.cu), so both round alike. */
struct OpSilu {
    __device__ __forceinline__ float operator()(float x) const {
        const float e = expf(-fabsf(x));
        return x * ((x >= 0.0f ? 1.0f : e) / (1.0f + e));
    }
};

/* exp(r) for |r| <= ln2/2, ~2e-8 relative before rounding (the CPU kernel's fitted polynomial). */
__device__ __forceinline__ float gelu_exp_poly(float r) {
    float p = 0x1.6c6a72p-10f;
    p = fmaf(p, r, 0x1.120b1cp-7f);
    p = fmaf(p, r, 0x1.5555bap-5f);
    p = fmaf(p, r, 0x1.5554dep-3f);
    p = fmaf(p, r, 0.5f);
    return 1.0f + fmaf(r * r, p, r);
}

#define GELU_LOG2E 1.44269504088896341f
#define GELU_LN2_HI 0.693145751953125f /* 15 significant bits */
#define GELU_LN2_LO 1.42860682030941723e-06f
#define GELU_MAGIC 12582912.0f /* 1.5·2^23: adding it rounds to an integer */

/* x·Φ(x) with CUDA's normcdff (max error 5 ulp over the whole range, the argument x/√2 compensated
 * inside), so the lower tail keeps its relative accuracy; Φ(-inf) = 0, Φ(+inf) = 1, NaN stays NaN. */
struct OpGeluErf {
    __device__ __forceinline__ float operator()(float x) const { return x * normcdff(x); }
};

/* x·σ(2u) = x / (1 + exp(w)), w = -2u = x·(A + B·x²), A = -2√(2/π), B = 0.044715·A, evaluated as a
 * float pair (error-free products and sums) so that w keeps ~1e-9 absolute accuracy up to |w| = 87:
 * in plain float its rounding alone would cost ~|w|·6e-8 relative in the negative tail. x is clamped
 * to ±10.5 for the evaluation (beyond, σ is 1 or < 2e-38); w > 87 flushes the result to ±0. */
struct OpGeluTanh {
    __device__ __forceinline__ float operator()(float x) const {
        const float Ah = -0x1.988454p+0f, Al = 0x1.857936p-25f;
        const float Bh = -0x1.2444f2p-4f, Bl = -0x1.49b16ap-29f;
        const float xc = fminf(fmaxf(x, -10.5f), 10.5f); /* NaN -> -10.5: the final product keeps it */
        /* __fmul_rn / __fadd_rn: never contracted into FMAs, which would break the error-free steps */
        const float x2h = __fmul_rn(xc, xc);
        const float x2l = fmaf(xc, xc, -x2h);
        const float ph = __fmul_rn(Bh, x2h);
        const float pl = fmaf(Bh, x2l, fmaf(Bl, x2h, fmaf(Bh, x2h, -ph)));
        const float qh = __fadd_rn(Ah, ph); /* TwoSum(Ah, ph) */
        const float bv = __fsub_rn(qh, Ah);
        const float ql = __fadd_rn(__fsub_rn(Ah, __fsub_rn(qh, bv)), __fsub_rn(ph, bv)) + (Al + pl);
        const float wh = __fmul_rn(xc, qh);
        const float wl = fmaf(xc, ql, fmaf(xc, qh, -wh));
        const float wc = fminf(fmaxf(wh, -87.0f), 87.0f);
        const float kf = fmaf(wc, GELU_LOG2E, GELU_MAGIC);
        const int n = __float_as_int(kf) - __float_as_int(GELU_MAGIC);
        const float k = kf - GELU_MAGIC;
        const float r = fmaf(-k, GELU_LN2_LO, fmaf(-k, GELU_LN2_HI, wc)) + wl;
        const float e = gelu_exp_poly(r) * __int_as_float((n + 127) << 23); /* n in [-126, 126] */
        /* 1 + e <= e^87 < 2^126, where the fast division (2 ulp) is valid */
        return wh > 87.0f ? x * 0.0f : __fdividef(x, 1.0f + e);
    }
};

/* The same functions for 16-bit outputs, at about a third of the instructions (the float32 forms made a 64M-element
 * bfloat16 gelu compute-bound: 0.60x torch on the H100). Their float32 relative error stays below 6e-5 (an eighth
 * of float16's unit roundoff 2^-11; a float32 emulation with erff / expf 2 ulp off gave 5.5e-5 and 1.3e-5), so the
 * stored value is the correctly rounded one or, near a tie, its neighbour.
 * Erf form: 0.5·x·(1 + erff(x/√2)) for x >= -3 (erff: 2 ulp; 1 + erf cancels to Φ(-3) = 1.35e-3 at worst:
 * 6e-8 / 1.35e-3 = 4.4e-5), x·normcdff(x) below (the tail, rare in data: a warp takes it only when one of its
 * lanes has such an x). Tanh form: w = x·(A + B·x²) in plain float32 (|w|·6e-8 <= 5.2e-6 relative up to the
 * flush at w > 87), __expf (2 ulp + |w|·log2(e)·2^-24 <= 7.5e-6), __fdividef. Same specials as the float32 forms
 * (NaN kept, ±big saturate, gelu(-big) = -0, gelu(-inf) NaN). */
/* The tail out of line: normcdff's ~900 instructions would otherwise be inlined into every unrolled lane of the
 * hot loop (the bfloat16 gelu kernel's PTX went from 1366 to 487 instructions; results bit-identical). */
__device__ __noinline__ static float lc_gelu_erf_tail(float x) { return x * normcdff(x); }
struct OpGeluErfLowp {
    __device__ __forceinline__ float operator()(float x) const {
        return x >= -3.0f ? 0.5f * x * (1.0f + erff(x * 0.707106781186547524f)) : lc_gelu_erf_tail(x);
    }
};
struct OpGeluTanhLowp {
    __device__ __forceinline__ float operator()(float x) const {
        const float A = -1.59576912160573071f, B = -0.0713548162726008f; /* -2√(2/π), 0.044715·A */
        const float w = x * fmaf(B, x * x, A);
        return w > 87.0f ? x * 0.0f : __fdividef(x, 1.0f + __expf(w));
    }
};

/* The gelu functions for outputs stored as T (float: the float32 forms; float16 / bfloat16: the Lowp ones). */
template <typename T> struct GeluOps {
    typedef OpGeluErf erf;
    typedef OpGeluTanh tanh;
};
template <> struct GeluOps<__half> {
    typedef OpGeluErfLowp erf;
    typedef OpGeluTanhLowp tanh;
};
template <> struct GeluOps<__nv_bfloat16> {
    typedef OpGeluErfLowp erf;
    typedef OpGeluTanhLowp tanh;
};

#endif
