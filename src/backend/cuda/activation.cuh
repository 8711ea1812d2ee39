/* activation.cuh — the float32 activations of the CUDA kernels, shared by elementwise_cuda.cu (relu, gelu,
 * linear's 16-bit bias+act epilogue) and gemv_cuda.cu (the small-m linear), so every path computes them
 * bit-identically: OpIdentity, OpRelu (NaN and -0 kept), OpSilu (also llm_cuda.cu's silu), OpGeluErf (x·normcdff(x)), OpGeluTanh (float-pair
 * argument, the CPU kernel's exp polynomial; accuracy notes in elementwise_cuda.cu's header); for float16 /
 * bfloat16 outputs the cheaper OpGeluErfLowp / OpGeluTanhLowp (GeluOps<T> picks by the stored type), whose
 * float32 error (below 2e-5 relative) the 16-bit rounding absorbs.
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

/* The same functions for 16-bit outputs, branch-free at ~18 instructions an element (the float32 forms made a
 * 64M-element bfloat16 gelu compute-bound: 0.60x torch on the H100, session 13; an erff form with an out-of-line
 * tail branch, 45 instructions an element, still 0.84x). Their float32 relative error stays below 2e-5 (a float32
 * emulation over [-13, 13]: 8.0e-6 for erf; tanh below 1.3e-5 by the bound below), under float16's unit roundoff
 * 2^-11, so the stored value is the correctly rounded one or, near a tie, its neighbour.
 * Erf form: x·Φ(x) with h = Φ(-|x|) = erfc(z)/2, z = |x|/√2, as h = t·2^(G(t) - x²·log2(e)/2), t = 1/(1 + c·|x|),
 * G a degree-6 polynomial (scripts/fit_gelu_erfc.py: weighted least squares towards minimax on t in
 * [1/(1 + 13c), 1], 1.6e-6 in log2 units, i.e. relative in h; x²·log2(e)/2 by one fma, its rounding ~|x|²·4e-8
 * relative), then Φ = h (x < 0) or 1 - h (no cancellation: h <= 1/2). h underflows (ex2.approx flushes below
 * 2^-126) only where |gelu| < 1e-36 (x < -12.9), the tail's flush to -0 of the float32 form. Tanh form:
 * w = x·(A + B·x²) in plain float32 (|w|·6e-8 <= 5.2e-6 relative up to the flush at w > 87), __expf (2 ulp +
 * |w|·log2(e)·2^-24 <= 7.5e-6), __fdividef. Same specials as the float32 forms (NaN kept, ±big saturate,
 * gelu(-big) = -0, gelu(-inf) NaN). */
__device__ __forceinline__ float lc_rcp_approx(float x) { /* MUFU.RCP: 1 ulp, 0 for |x| >= 2^126, flushes */
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}
__device__ __forceinline__ float lc_ex2_approx(float x) { /* MUFU.EX2: 2 ulp, results below 2^-126 flushed */
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}
struct OpGeluErfLowp {
    __device__ __forceinline__ float operator()(float x) const {
        const float t = lc_rcp_approx(fmaf(fabsf(x), 0x1.13263ep-2f /* c = 0.38/√2 */, 1.0f));
        float g = 0x1.9bf81ap-2f; /* G(t) = log2(erfc(z) / (2t)) + z²·log2(e), c0 .. c6 */
        g = fmaf(g, t, -0x1.652ef0p+0f);
        g = fmaf(g, t, 0x1.692532p+0f);
        g = fmaf(g, t, -0x1.b9c95cp-2f);
        g = fmaf(g, t, 0x1.a4ce6ep-1f);
        g = fmaf(g, t, 0x1.6957aap+0f);
        g = fmaf(g, t, -0x1.9c205cp+1f);
        const float h = t * lc_ex2_approx(fmaf(x * -0.721347520444481703f /* -log2(e)/2 */, x, g));
        return x * (x < 0.0f ? h : 1.0f - h); /* NaN: t, h NaN */
    }
};
struct OpGeluTanhLowp {
    __device__ __forceinline__ float operator()(float x) const {
        const float A = -1.59576912160573071f, B = -0.0713548162726008f; /* -2√(2/π), 0.044715·A */
        const float w = x * fmaf(B, x * x, A);
        const float v = __fdividef(x, 1.0f + __expf(fminf(w, 87.0f))); /* computed always: a select, no branch */
        return w > 87.0f ? x * 0.0f : v;
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
