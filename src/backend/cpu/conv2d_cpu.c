/* conv2d_cpu.c — CPU 2-D convolution, NCHW, float32, as a direct "implicit GEMM"
 * (float16/bfloat16: lc_cpu_lowp_conv2d, lowp_cpu.c, runs this kernel on a float32 image).
 *
 * y[n,oc,oh,ow] = sum_{c,ky,kx} w[oc,c,ky,kx] · x[n,c,oy·sh+ky-ph, ox·sw+kx-pw] + bias[oc] (bias may be
 * NULL), optional fused ReLU; any kernel size, stride >= 1, padding >= 0 (zeros outside the image).
 * Each image's output plane is treated as one flat vector f = oy·ow + ox. The input is first packed
 * (with the padding zeros written in) so that for every tap t = (c, ky, kx) the operands of outputs
 * f, f+1, ... are contiguous at packed[tapoff[t] + f]:
 *   stride_h == 1: kw shifted (and stride_w-subsampled) copies of each channel, rows flattened, so
 *                  tap (c,ky,kx) starts at c·kw·L + kx·L + ky·ow;
 *   stride_h > 1:  one plane per tap (im2col rows), tap t starts at t·L.
 * The kernel then runs blocks of output channels × vectors of f over all taps with no bounds checks
 * (borders are the packed zeros; only the last vector of a plane is stored masked), bias and ReLU fused
 * into the store. Work is split over (image, block of f) with lc_parallel_for when large enough.
 * Paths: "direct3x3_avx512" / "direct3x3_avx2" / "direct3x3_scalar" for 3×3 kernels, and
 * "direct_avx512" / "direct_avx2" / "direct_scalar" (same kernel, other sizes).
 * Tests: tests/c/test_ops.c, tests/python/test_ops_conv.py.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/cpu_features.h"
#include "core/internal.h"
#include "core/threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#define CONV_X86 1
#include <immintrin.h>
#define CONV_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define CONV_AVX2 __attribute__((target("avx2,fma")))
#define CONV_INLINE static inline __attribute__((always_inline))
#else
#define CONV_X86 0
#endif

#define CONV_PAD_TAIL 16                    /* zeros after each packed plane (vector overrun) */
#define CONV_PACK_CAP_BYTES (32u << 20)     /* packed images in flight at once (at least one) */
#define CONV_GRAIN_FLOPS 5.0e5              /* least compute worth handing to another thread */
#define CONV_PAR_MIN_FLOPS 3.0e6            /* below this a call stays on the calling thread: a pool
                                               hand-off costs more than it saves (and much more when
                                               the other cores are busy) */
#define CONV_PACK_GRAIN 16384               /* least packed floats worth handing to another thread */

enum { CONV_SCALAR = 0, CONV_ISA_AVX2, CONV_ISA_AVX512 };

typedef struct conv_job {
    const lc_conv2d_args *a;
    int isa;
    int64_t ocb;          /* output channels per register block (8 avx512, 4 otherwise) */
    int64_t nob;          /* output-channel blocks: ceil(oc / ocb) */
    int64_t vw;           /* floats per vector (16, 8; 16 for the scalar path's chunks) */
    int64_t nv;           /* vectors per tile */
    int64_t taps;         /* c·kh·kw */
    const int64_t *tapoff;
    const float *wp;      /* [nob][taps][ocb], zero beyond oc */
    int64_t ohw;          /* oh·ow */
    int64_t fvec;         /* vectors per plane: ceil(ohw / vw) */
    int64_t ntile;        /* tiles per image: ceil(fvec / nv) */
    /* packing */
    int stride_h1;
    int64_t hp;           /* rows of a shifted copy when stride_h == 1: oh + kh - 1 */
    int64_t plane;        /* L: floats per packed plane, tail zeros included */
    int64_t cstride;      /* floats per packed channel */
    int64_t img_stride;   /* floats per packed image */
    float *xp;            /* packed images of the current group */
    int64_t img0;         /* first image of the current group */
} conv_job;

/* ---------------------------------------------------------------------------------------------------
 * Packing
 * ------------------------------------------------------------------------------------------------- */

/* dst[x] = src[x·sw + off] for x < ow, 0 where that column is outside [0, w) or src is NULL. */
static void conv_pack_row(float *dst, const float *src, int64_t ow, int64_t w, int64_t sw, int64_t off) {
    if (!src) {
        memset(dst, 0, (size_t)ow * sizeof(float));
        return;
    }
    /* valid x: 0 <= x·sw + off < w */
    int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
    int64_t hi = w - off <= 0 ? 0 : (w - off + sw - 1) / sw;
    if (lo > ow) lo = ow;
    if (hi > ow) hi = ow;
    if (hi < lo) hi = lo;
    for (int64_t x = 0; x < lo; x++) dst[x] = 0.0f;
    if (sw == 1) {
        if (hi > lo) memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof(float));
    } else {
        for (int64_t x = lo; x < hi; x++) dst[x] = src[x * sw + off];
    }
    for (int64_t x = hi; x < ow; x++) dst[x] = 0.0f;
}

/* Packs channel ci of image (img0 + g) into the group buffer. */
static void conv_pack_channel(const conv_job *job, int64_t g, int64_t ci) {
    const lc_conv2d_args *a = job->a;
    const int64_t h = a->h, w = a->w, ow = a->ow, kh = a->kh, kw = a->kw;
    const float *src = (const float *)a->x + ((job->img0 + g) * a->c + ci) * h * w;
    float *dst = job->xp + g * job->img_stride + ci * job->cstride;
    const int64_t L = job->plane;
    if (job->stride_h1) {
        for (int64_t kx = 0; kx < kw; kx++) {
            float *pl = dst + kx * L;
            for (int64_t row = 0; row < job->hp; row++) {
                const int64_t iy = row - a->pad_h;
                conv_pack_row(pl + row * ow, iy >= 0 && iy < h ? src + iy * w : NULL, ow, w, a->stride_w, kx - a->pad_w);
            }
            memset(pl + job->hp * ow, 0, (size_t)(L - job->hp * ow) * sizeof(float));
        }
    } else {
        for (int64_t ky = 0; ky < kh; ky++)
            for (int64_t kx = 0; kx < kw; kx++) {
                float *pl = dst + (ky * kw + kx) * L;
                for (int64_t oy = 0; oy < a->oh; oy++) {
                    const int64_t iy = oy * a->stride_h + ky - a->pad_h;
                    conv_pack_row(pl + oy * ow, iy >= 0 && iy < h ? src + iy * w : NULL, ow, w, a->stride_w,
                                  kx - a->pad_w);
                }
                memset(pl + job->ohw, 0, (size_t)(L - job->ohw) * sizeof(float));
            }
    }
}

static void conv_pack_range(void *ctx, int64_t begin, int64_t end) {
    const conv_job *job = (const conv_job *)ctx;
    for (int64_t t = begin; t < end; t++) conv_pack_channel(job, t / job->a->c, t % job->a->c);
}

/* ---------------------------------------------------------------------------------------------------
 * Compute tiles: for every output-channel block, acc[o][u] = sum_t wp[t][o] · xp[tapoff[t] + f0 + vw·u].
 * `xb` = packed image + f0, `yb` = output image + f0, `nrem` = ohw - f0 (> 0).
 * ------------------------------------------------------------------------------------------------- */

static void conv_tile_scalar(const conv_job *job, const float *xb, float *yb, int64_t nrem, int64_t nvec) {
    const lc_conv2d_args *a = job->a;
    const int64_t taps = job->taps, ohw = job->ohw;
    const int64_t nf = nrem < 16 * nvec ? nrem : 16 * nvec;
    for (int64_t ob = 0; ob < job->nob; ob++) {
        const float *w = job->wp + ob * taps * 4;
        for (int64_t u = 0; u < nvec; u++) {
            float acc[4][16];
            for (int o = 0; o < 4; o++)
                for (int e = 0; e < 16; e++) acc[o][e] = 0.0f;
            for (int64_t t = 0; t < taps; t++) {
                const float *xt = xb + job->tapoff[t] + 16 * u;
                for (int o = 0; o < 4; o++) {
                    const float wv = w[t * 4 + o];
                    for (int e = 0; e < 16; e++) acc[o][e] += wv * xt[e];
                }
            }
            for (int64_t o = 0; o < 4 && ob * 4 + o < a->oc; o++) {
                const int64_t oc = ob * 4 + o;
                const float b = a->bias ? ((const float *)a->bias)[oc] : 0.0f;
                float *dst = yb + oc * ohw + 16 * u;
                for (int64_t e = 0; e < 16 && 16 * u + e < nf; e++) {
                    float v = acc[o][e] + b;
                    if (a->apply_relu && v < 0.0f) v = 0.0f; /* NaN stays NaN */
                    dst[e] = v;
                }
            }
        }
    }
}

#if CONV_X86
CONV_AVX512 CONV_INLINE void conv_tile_512_nv(const conv_job *job, const float *xb, float *yb, int64_t nrem,
                                              const int nv) {
    const lc_conv2d_args *a = job->a;
    const int64_t taps = job->taps, ohw = job->ohw;
    const int64_t *tapoff = job->tapoff;
    __mmask16 mk[3];
    for (int u = 0; u < nv; u++) {
        const int64_t rem = nrem - 16 * u;
        mk[u] = rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t ob = 0; ob < job->nob; ob++) {
        const float *w = job->wp + ob * taps * 8;
        __m512 acc[8][3];
        for (int o = 0; o < 8; o++)
            for (int u = 0; u < nv; u++) acc[o][u] = zero;
        for (int64_t t = 0; t < taps; t++) {
            const float *xt = xb + tapoff[t];
            __m512 x[3];
            for (int u = 0; u < nv; u++) x[u] = _mm512_loadu_ps(xt + 16 * u);
            const float *wt = w + t * 8;
            for (int o = 0; o < 8; o++) {
                const __m512 b = _mm512_set1_ps(wt[o]);
                for (int u = 0; u < nv; u++) acc[o][u] = _mm512_fmadd_ps(b, x[u], acc[o][u]);
            }
        }
        const int64_t oc0 = ob * 8;
        for (int o = 0; o < 8 && oc0 + o < a->oc; o++) {
            const __m512 b = _mm512_set1_ps(a->bias ? ((const float *)a->bias)[oc0 + o] : 0.0f);
            float *dst = yb + (oc0 + o) * ohw;
            for (int u = 0; u < nv; u++) {
                __m512 v = _mm512_add_ps(acc[o][u], b);
                if (a->apply_relu) v = _mm512_max_ps(zero, v); /* second operand wins on NaN */
                _mm512_mask_storeu_ps(dst + 16 * u, mk[u], v);
            }
        }
    }
}

CONV_AVX512 static void conv_tile_512(const conv_job *job, const float *xb, float *yb, int64_t nrem, int64_t nvec) {
    switch (nvec) {
    case 1: conv_tile_512_nv(job, xb, yb, nrem, 1); break;
    case 2: conv_tile_512_nv(job, xb, yb, nrem, 2); break;
    default: conv_tile_512_nv(job, xb, yb, nrem, 3); break;
    }
}

CONV_AVX2 CONV_INLINE void conv_tile_256_nv(const conv_job *job, const float *xb, float *yb, int64_t nrem,
                                            const int nv) {
    const lc_conv2d_args *a = job->a;
    const int64_t taps = job->taps, ohw = job->ohw;
    const int64_t *tapoff = job->tapoff;
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i mk[3];
    for (int u = 0; u < nv; u++) {
        const int64_t rem = nrem - 8 * u;
        mk[u] = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(rem >= 8 ? 8 : rem)), lanes);
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t ob = 0; ob < job->nob; ob++) {
        const float *w = job->wp + ob * taps * 4;
        __m256 acc[4][3];
        for (int o = 0; o < 4; o++)
            for (int u = 0; u < nv; u++) acc[o][u] = zero;
        for (int64_t t = 0; t < taps; t++) {
            const float *xt = xb + tapoff[t];
            __m256 x[3];
            for (int u = 0; u < nv; u++) x[u] = _mm256_loadu_ps(xt + 8 * u);
            const float *wt = w + t * 4;
            for (int o = 0; o < 4; o++) {
                const __m256 b = _mm256_broadcast_ss(wt + o);
                for (int u = 0; u < nv; u++) acc[o][u] = _mm256_fmadd_ps(b, x[u], acc[o][u]);
            }
        }
        const int64_t oc0 = ob * 4;
        for (int o = 0; o < 4 && oc0 + o < a->oc; o++) {
            const __m256 b = _mm256_set1_ps(a->bias ? ((const float *)a->bias)[oc0 + o] : 0.0f);
            float *dst = yb + (oc0 + o) * ohw;
            for (int u = 0; u < nv; u++) {
                __m256 v = _mm256_add_ps(acc[o][u], b);
                if (a->apply_relu) v = _mm256_max_ps(zero, v);
                _mm256_maskstore_ps(dst + 8 * u, mk[u], v);
            }
        }
    }
}

CONV_AVX2 static void conv_tile_256(const conv_job *job, const float *xb, float *yb, int64_t nrem, int64_t nvec) {
    switch (nvec) {
    case 1: conv_tile_256_nv(job, xb, yb, nrem, 1); break;
    case 2: conv_tile_256_nv(job, xb, yb, nrem, 2); break;
    default: conv_tile_256_nv(job, xb, yb, nrem, 3); break;
    }
}
#endif /* CONV_X86 */

static void conv_compute_range(void *ctx, int64_t begin, int64_t end) {
    const conv_job *job = (const conv_job *)ctx;
    const lc_conv2d_args *a = job->a;
    for (int64_t it = begin; it < end; it++) {
        const int64_t g = it / job->ntile, tile = it % job->ntile;
        const int64_t v0 = tile * job->nv;
        const int64_t nvec = job->fvec - v0 < job->nv ? job->fvec - v0 : job->nv;
        const int64_t f0 = v0 * job->vw;
        const float *xb = job->xp + g * job->img_stride + f0;
        float *yb = (float *)a->y + (job->img0 + g) * a->oc * job->ohw + f0;
        switch (job->isa) {
#if CONV_X86
        case CONV_ISA_AVX512: conv_tile_512(job, xb, yb, job->ohw - f0, nvec); break;
        case CONV_ISA_AVX2: conv_tile_256(job, xb, yb, job->ohw - f0, nvec); break;
#endif
        default: conv_tile_scalar(job, xb, yb, job->ohw - f0, nvec); break;
        }
    }
}

/* ---------------------------------------------------------------------------------------------------
 * Entry
 * ------------------------------------------------------------------------------------------------- */

lc_status lc_cpu_conv2d(const lc_conv2d_args *args, const char **path) {
    if (args && lc_cpu_is_lowp(args->dtype)) return lc_cpu_lowp_conv2d(args, path);
    LC_CHECK_INVARIANT(args != NULL && args->dtype == LC_DTYPE_F32);
    const lc_conv2d_args *a = args;
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    int isa = CONV_SCALAR;
#if CONV_X86
    if (caps->avx512f) isa = CONV_ISA_AVX512;
    else if (caps->avx2_fma) isa = CONV_ISA_AVX2;
#else
    (void)caps;
#endif
    const int k3 = a->kh == 3 && a->kw == 3;
    if (path) {
        if (isa == CONV_ISA_AVX512) *path = k3 ? "direct3x3_avx512" : "direct_avx512";
        else if (isa == CONV_ISA_AVX2) *path = k3 ? "direct3x3_avx2" : "direct_avx2";
        else *path = k3 ? "direct3x3_scalar" : "direct_scalar";
    }
    if (a->n <= 0 || a->oc <= 0 || a->oh <= 0 || a->ow <= 0) return LC_OK; /* nothing to write */
    if (a->c <= 0 || a->kh <= 0 || a->kw <= 0 || a->stride_h < 1 || a->stride_w < 1 || a->pad_h < 0 || a->pad_w < 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "conv2d: invalid shape or attributes");

    conv_job job;
    memset(&job, 0, sizeof job);
    job.a = a;
    job.isa = isa;
    job.ocb = isa == CONV_ISA_AVX512 ? 8 : 4;
    job.vw = isa == CONV_ISA_AVX2 ? 8 : 16;
    job.nv = 3;
    job.nob = (a->oc + job.ocb - 1) / job.ocb;
    job.stride_h1 = a->stride_h == 1;
    job.hp = a->oh + a->kh - 1;

    /* Sizes, checked for overflow: a plane, a channel, an image of packed input; taps; weights. */
    const int64_t rows = job.stride_h1 ? job.hp : a->oh;
    int64_t ohw = 0, plane = 0, khw = 0, cstride = 0, img_stride = 0, taps = 0, wfloats = 0;
    int ok = lc_mul_ok(a->oh, a->ow, &ohw) && lc_mul_ok(rows, a->ow, &plane) && plane <= INT64_MAX - CONV_PAD_TAIL &&
             lc_mul_ok(a->kh, a->kw, &khw) && lc_mul_ok(a->c, khw, &taps) &&
             lc_mul_ok(job.nob * job.ocb, taps, &wfloats);
    if (ok) {
        plane += CONV_PAD_TAIL;
        ok = lc_mul_ok(plane, job.stride_h1 ? a->kw : khw, &cstride) && lc_mul_ok(cstride, a->c, &img_stride);
    }
    if (!ok || (uint64_t)img_stride > SIZE_MAX / 8 || (uint64_t)wfloats > SIZE_MAX / 8)
        return lc_error(LC_ERR_OUT_OF_MEMORY, "conv2d: packed input too large");
    job.ohw = ohw;
    job.plane = plane;
    job.cstride = cstride;
    job.img_stride = img_stride;
    job.taps = taps;
    job.fvec = (ohw + job.vw - 1) / job.vw;
    job.ntile = (job.fvec + job.nv - 1) / job.nv;

    int64_t group = (int64_t)(CONV_PACK_CAP_BYTES / sizeof(float)) / img_stride;
    if (group < 1) group = 1;
    if (group > a->n) group = a->n;

    /* One allocation: tap offsets, packed weights, packed images (64-byte aligned sections). */
    const size_t off_bytes = ((size_t)taps * sizeof(int64_t) + 63) & ~(size_t)63;
    const size_t w_bytes = ((size_t)wfloats * sizeof(float) + 63) & ~(size_t)63;
    const size_t x_bytes = (size_t)group * (size_t)img_stride * sizeof(float);
    if (x_bytes / sizeof(float) / (size_t)group != (size_t)img_stride || off_bytes + w_bytes > SIZE_MAX - x_bytes)
        return lc_error(LC_ERR_OUT_OF_MEMORY, "conv2d: packed input too large");
    char *mem = (char *)lc_aligned_alloc(off_bytes + w_bytes + x_bytes);
    if (!mem)
        return lc_error(LC_ERR_OUT_OF_MEMORY, "conv2d: could not allocate %zu bytes of scratch",
                        off_bytes + w_bytes + x_bytes);
    int64_t *tapoff = (int64_t *)mem;
    float *wp = (float *)(mem + off_bytes);
    job.xp = (float *)(mem + off_bytes + w_bytes);
    job.tapoff = tapoff;
    job.wp = wp;

    for (int64_t ci = 0; ci < a->c; ci++)
        for (int64_t ky = 0; ky < a->kh; ky++)
            for (int64_t kx = 0; kx < a->kw; kx++)
                tapoff[(ci * a->kh + ky) * a->kw + kx] =
                    ci * cstride + (job.stride_h1 ? kx * plane + ky * a->ow : (ky * a->kw + kx) * plane);
    for (int64_t ob = 0; ob < job.nob; ob++)
        for (int64_t t = 0; t < taps; t++)
            for (int64_t o = 0; o < job.ocb; o++) {
                const int64_t oc = ob * job.ocb + o;
                wp[(ob * taps + t) * job.ocb + o] = oc < a->oc ? ((const float *)a->weight)[oc * taps + t] : 0.0f;
            }

    const double tile_flops = 2.0 * (double)(job.nob * job.ocb) * (double)taps * (double)(job.nv * job.vw);
    const double total_flops = tile_flops * (double)job.ntile * (double)a->n;
    const int64_t grain = total_flops < CONV_PAR_MIN_FLOPS ? INT64_MAX : (int64_t)(CONV_GRAIN_FLOPS / tile_flops) + 1;
    const int64_t pack_grain = total_flops < CONV_PAR_MIN_FLOPS ? INT64_MAX : CONV_PACK_GRAIN / cstride + 1;
    for (int64_t img0 = 0; img0 < a->n; img0 += group) {
        const int64_t ng = a->n - img0 < group ? a->n - img0 : group;
        job.img0 = img0;
        if (ng * a->c <= pack_grain) conv_pack_range(&job, 0, ng * a->c);
        else lc_parallel_for(ng * a->c, pack_grain, conv_pack_range, &job);
        if (ng * job.ntile <= grain) conv_compute_range(&job, 0, ng * job.ntile);
        else lc_parallel_for(ng * job.ntile, grain, conv_compute_range, &job);
    }
    lc_aligned_free(mem);
    return LC_OK;
}
