/* rope_freq.h — the rotary embedding's frequencies, written once for the CPU kernel (rope_cpu.c), the CUDA
 * kernel (rope_cuda.cu, as __host__ __device__) and the C tests: inv_freq[i] = theta^(-2i/rotary_dim) in
 * float64, then Hugging Face's rope_scaling rules:
 *   linear: inv_freq / factor (the same as positions / factor);
 *   llama3: wavelen = 2π / inv_freq; wavelen > original_max / low_freq_factor: inv_freq / factor;
 *           wavelen < original_max / high_freq_factor: unchanged; between: (1 - s) * inv_freq / factor +
 *           s * inv_freq with s = (original_max / wavelen - low_freq_factor) / (high_freq_factor -
 *           low_freq_factor) (transformers' _compute_llama3_parameters).
 * lc_rope_angle_reduce: a float64 angle reduced to [-π, π] (two-part 2π), for float32 cos/sin.
 * Tests: tests/c/test_ops_llm.c, tests/python/test_ops_llm.py (against refs.ref_rope). */
#ifndef LC_CORE_ROPE_FREQ_H
#define LC_CORE_ROPE_FREQ_H

#include <math.h>
#include <stdint.h>

#include "lightning_core/ops.h"

#ifdef __CUDACC__
#define LC_HD __host__ __device__ __forceinline__
#else
#define LC_HD static inline
#endif

LC_HD double lc_rope_inv_freq(int64_t i, int64_t rotary_dim, const lc_rope_options *o) {
    double inv = pow(o->theta, -(double)(2 * i) / (double)rotary_dim);
    if (o->scaling == LC_ROPE_SCALING_LINEAR) return inv / o->factor;
    if (o->scaling == LC_ROPE_SCALING_LLAMA3) {
        const double two_pi = 6.283185307179586476925286766559;
        const double wavelen = two_pi / inv;
        const double low_wavelen = o->original_max_position_embeddings / o->low_freq_factor;
        const double high_wavelen = o->original_max_position_embeddings / o->high_freq_factor;
        if (wavelen > low_wavelen) return inv / o->factor;
        if (wavelen < high_wavelen) return inv;
        const double s = (o->original_max_position_embeddings / wavelen - o->low_freq_factor) /
                         (o->high_freq_factor - o->low_freq_factor);
        return (1.0 - s) * inv / o->factor + s * inv;
    }
    return inv;
}

/* An angle (pos * inv_freq, formed in float64) reduced into [-π, π]: angle - k*2π, k = rint(angle / 2π), 2π
 * as a float64 part plus its remainder. The error is a few ulp of the float64 angle (~1e-11 at position
 * 1e5), far below float32's resolution of the reduced angle. */
LC_HD double lc_rope_angle_reduce(double angle) {
    const double two_pi_hi = 6.28318530717958623199592693709, two_pi_lo = 2.44929359829470635445e-16;
    const double inv_two_pi = 0.159154943091895335768883763373;
    const double k = rint(angle * inv_two_pi);
    return (angle - k * two_pi_hi) - k * two_pi_lo;
}

#undef LC_HD
#endif
