/* llm_cpu.c — CPU kernels of the LLM building blocks: rms_norm and softmax (per row of the last axis),
 * silu / silu_mul (flat), and add / mul with broadcasting (lc_bcast_args: 4 normalised axes, 0 strides on
 * broadcast axes). dtypes float32, float16, bfloat16 (add / mul also float64).
 *
 * 16-bit operands are converted in blocks of LLM_BLOCK elements into stack buffers by the row converters
 * (dtype_internal.h: AVX-512 / F16C / scalar, picked at run time), the arithmetic is the float32 one, and
 * each result is rounded once to the dtype. float32 operands are read and written in place.
 *  - rms_norm: Σx² accumulated in float64 (16 lanes), rstd = 1/sqrt(Σx²/cols + eps) in float64, then
 *    out = (x * rstd) * weight in float32, rounded once. (HF rounds x * rstd to the dtype before the
 *    weight: for 16-bit that is a second rounding we skip.)
 *  - softmax: max, then Σ exp(x - max) (float lanes a block, blocks summed in float64), then
 *    exp(x - max) * (1/Σ); float32 keeps the exponentials in out between the passes. A row holding NaN or
 *    +inf, or only -inf, gives NaN everywhere (as torch): x - max is NaN somewhere and NaN reaches Σ.
 *  - silu(x) = x * σ(x) with σ from e = exp(-|x|) (never overflows): x >= 0: 1/(1+e), else e/(1+e).
 *  - add / mul: items are (row of the 3 outer axes, block of the inner axis); an input's inner stride is
 *    0 (splat) or 1 after the axis merge of op_call.c; the equal-shape case is one row of n elements.
 * Loop bodies are always-inline and compiled for AVX-512, AVX2+FMA and the baseline ISA (auto-vectorised;
 * picked per call from lc_cpu_caps_get(), so LC_CPU_DISABLE masks them); large calls are spread over the
 * pool with lc_parallel_for, small ones run inline. out may be exactly an input: every block is read
 * before it is written, and a row's passes read x only before the pass that writes out (float32 softmax
 * reads back its own exponentials).
 * lc_cpu_add_row: one row of add for another kernel's task (index_cpu.c's embedding with learned positions).
 * Tests: tests/c/test_ops_llm.c (against float64 loops, under each CPU mask), tests/python/test_ops_llm.py. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/cpu_features.h"
#include "core/dtype_internal.h"
#include "core/internal.h"
#include "core/threadpool.h"
#include "backend/cpu/vecmath_cpu.h"

#define LLM_BLOCK 1024
#define LLM_LANES 16
#define LLM_PARALLEL_MIN ((int64_t)1 << 16) /* elements; below, a call runs inline */
#define LLM_GRAIN ((int64_t)1 << 14)        /* elements a task, at least */

/* ---- block loads / stores --------------------------------------------------------------------------- */

/* len elements of base (dtype dt) from element off, as float32: the data itself for float32, else
 * converted into buf. */
static const float *ld_block(lc_dtype dt, const void *base, int64_t off, int64_t len, float *buf) {
    if (dt == LC_DTYPE_F32) return (const float *)base + off;
    const lc_cvt_rows *cv = lc_cvt_rows_get();
    const uint16_t *p = (const uint16_t *)base + off;
    if (dt == LC_DTYPE_F16)
        cv->f16_f32(p, buf, (size_t)len);
    else
        cv->bf16_f32(p, buf, (size_t)len);
    return buf;
}

/* Where a block of float32 results goes: out itself for float32, else buf (then st_block). */
static float *out_block(lc_dtype dt, void *base, int64_t off, float *buf) {
    return dt == LC_DTYPE_F32 ? (float *)base + off : buf;
}

static void st_block(lc_dtype dt, void *base, int64_t off, int64_t len, const float *buf) {
    if (dt == LC_DTYPE_F32) return; /* written in place */
    const lc_cvt_rows *cv = lc_cvt_rows_get();
    uint16_t *p = (uint16_t *)base + off;
    if (dt == LC_DTYPE_F16)
        cv->f32_f16(buf, p, (size_t)len);
    else
        cv->f32_bf16(buf, p, (size_t)len);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- rms_norm ------------------------------------------------------------------------------------------ */

LC_INLINE double sum_sq(const float *x, int64_t n) {
    double acc[LLM_LANES] = {0};
    int64_t j = 0;
    for (; j + LLM_LANES <= n; j += LLM_LANES)
        for (int l = 0; l < LLM_LANES; l++) acc[l] += (double)x[j + l] * (double)x[j + l];
    double s = 0.0;
    for (int l = 0; l < LLM_LANES; l++) s += acc[l];
    for (; j < n; j++) s += (double)x[j] * (double)x[j];
    return s;
}

LC_INLINE void rms_norm_body(const lc_rms_norm_args *a, int64_t begin, int64_t end, int fma) {
    (void)fma;
    float bx[LLM_BLOCK], bw[LLM_BLOCK], bo[LLM_BLOCK];
    const int64_t cols = a->cols;
    for (int64_t r = begin; r < end; r++) {
        const int64_t row = r * cols;
        double ss = 0.0;
        for (int64_t j = 0; j < cols; j += LLM_BLOCK) {
            const int64_t len = min64(LLM_BLOCK, cols - j);
            ss += sum_sq(ld_block(a->dtype, a->x, row + j, len, bx), len);
        }
        const float rstd = (float)(1.0 / sqrt(ss / (double)cols + a->eps));
        for (int64_t j = 0; j < cols; j += LLM_BLOCK) {
            const int64_t len = min64(LLM_BLOCK, cols - j);
            const float *x = ld_block(a->dtype, a->x, row + j, len, bx);
            float *o = out_block(a->dtype, a->out, row + j, bo);
            if (a->weight) {
                const float *w = ld_block(a->dtype, a->weight, j, len, bw);
                for (int64_t i = 0; i < len; i++) o[i] = (x[i] * rstd) * w[i];
            } else {
                for (int64_t i = 0; i < len; i++) o[i] = x[i] * rstd;
            }
            st_block(a->dtype, a->out, row + j, len, o);
        }
    }
}

/* ---- softmax ------------------------------------------------------------------------------------------- */

LC_INLINE float block_max(const float *x, int64_t n, float m) {
    float acc[LLM_LANES];
    for (int l = 0; l < LLM_LANES; l++) acc[l] = m;
    int64_t j = 0;
    for (; j + LLM_LANES <= n; j += LLM_LANES)
        for (int l = 0; l < LLM_LANES; l++) acc[l] = sel(x[j + l] > acc[l], x[j + l], acc[l]);
    for (; j < n; j++) m = sel(x[j] > m, x[j], m);
    for (int l = 0; l < LLM_LANES; l++) m = sel(acc[l] > m, acc[l], m);
    return m;
}

/* e[i] = exp(x[i] - m); returns Σ e (float lanes; a block is at most LLM_BLOCK terms). */
LC_INLINE float block_exp_sum(const float *x, float *e, int64_t n, float m, int fma) {
    float acc[LLM_LANES] = {0};
    int64_t j = 0;
    for (; j + LLM_LANES <= n; j += LLM_LANES)
        for (int l = 0; l < LLM_LANES; l++) {
            const float v = exp_f(x[j + l] - m, fma);
            e[j + l] = v;
            acc[l] += v;
        }
    float s = 0.0f;
    for (; j < n; j++) {
        const float v = exp_f(x[j] - m, fma);
        e[j] = v;
        s += v;
    }
    for (int l = 0; l < LLM_LANES; l++) s += acc[l];
    return s;
}

LC_INLINE void softmax_body(const lc_softmax_args *a, int64_t begin, int64_t end, int fma) {
    float bx[LLM_BLOCK], be[LLM_BLOCK];
    const int64_t cols = a->cols;
    const int f32 = a->dtype == LC_DTYPE_F32;
    for (int64_t r = begin; r < end; r++) {
        const int64_t row = r * cols;
        float m = -__builtin_inff();
        for (int64_t j = 0; j < cols; j += LLM_BLOCK) {
            const int64_t len = min64(LLM_BLOCK, cols - j);
            m = block_max(ld_block(a->dtype, a->x, row + j, len, bx), len, m);
        }
        /* NaN elements never win the max; they reach Σ through exp(NaN - m). */
        double s = 0.0;
        for (int64_t j = 0; j < cols; j += LLM_BLOCK) {
            const int64_t len = min64(LLM_BLOCK, cols - j);
            const float *x = ld_block(a->dtype, a->x, row + j, len, bx);
            s += (double)block_exp_sum(x, f32 ? (float *)a->out + row + j : be, len, m, fma);
        }
        const float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < cols; j += LLM_BLOCK) {
            const int64_t len = min64(LLM_BLOCK, cols - j);
            if (f32) {
                float *o = (float *)a->out + row + j;
                for (int64_t i = 0; i < len; i++) o[i] *= inv;
            } else {
                const float *x = ld_block(a->dtype, a->x, row + j, len, bx);
                for (int64_t i = 0; i < len; i++) be[i] = exp_f(x[i] - m, fma) * inv;
                st_block(a->dtype, a->out, row + j, len, be);
            }
        }
    }
}

/* ---- silu / silu_mul ----------------------------------------------------------------------------------- */

LC_INLINE float silu_1(float x, int fma) {
    const float e = exp_f(-u2f(f2u(x) & 0x7fffffffu), fma); /* exp(-|x|) in (0, 1]; NaN stays NaN */
    const float sig = sel(x >= 0.0f, 1.0f, e) / (1.0f + e);
    return x * sig;
}

/* begin/end in blocks of LLM_BLOCK elements. */
LC_INLINE void silu_body(const lc_silu_args *a, int64_t begin, int64_t end, int fma) {
    float ba[LLM_BLOCK], bb[LLM_BLOCK], bo[LLM_BLOCK];
    for (int64_t blk = begin; blk < end; blk++) {
        const int64_t off = blk * LLM_BLOCK, len = min64(LLM_BLOCK, a->n - off);
        const float *x = ld_block(a->dtype, a->a, off, len, ba);
        float *o = out_block(a->dtype, a->out, off, bo);
        if (a->b) {
            const float *y = ld_block(a->dtype, a->b, off, len, bb);
            for (int64_t i = 0; i < len; i++) o[i] = silu_1(x[i], fma) * y[i];
        } else {
            for (int64_t i = 0; i < len; i++) o[i] = silu_1(x[i], fma);
        }
        st_block(a->dtype, a->out, off, len, o);
    }
}

/* ---- add / mul with broadcasting ------------------------------------------------------------------------ */

/* Item = (row of the outer axes, block of the inner axis). */
typedef struct bc_job {
    const lc_bcast_args *a;
    int64_t nblk; /* blocks a row */
} bc_job;

/* Element offsets of row r (over shape[0..2]) in a and b. */
static void bc_row(const lc_bcast_args *a, int64_t r, int64_t *oa, int64_t *ob) {
    const int64_t i2 = r % a->shape[2], t = r / a->shape[2];
    const int64_t i1 = t % a->shape[1], i0 = t / a->shape[1];
    *oa = i0 * a->a_st[0] + i1 * a->a_st[1] + i2 * a->a_st[2];
    *ob = i0 * a->b_st[0] + i1 * a->b_st[1] + i2 * a->b_st[2];
}

/* A block of one input as float32: stride 1 a block load, stride 0 one element splat into buf. */
static const float *bc_ld(lc_dtype dt, const void *base, int64_t off, int64_t st, int64_t len, float *buf) {
    if (st != 0) return ld_block(dt, base, off, len, buf);
    float v;
    ld_block(dt, base, off, 1, buf);
    v = dt == LC_DTYPE_F32 ? ((const float *)base)[off] : buf[0];
    for (int64_t i = 0; i < len; i++) buf[i] = v;
    return buf;
}

LC_INLINE void bcast_body(const bc_job *j, int64_t begin, int64_t end, int fma) {
    (void)fma;
    const lc_bcast_args *a = j->a;
    const int64_t inner = a->shape[3], sa = a->a_st[3], sb = a->b_st[3];
    const int mul = a->kind == LC_BCAST_MUL;
    if (a->dtype == LC_DTYPE_F64) {
        double ba[LLM_BLOCK], bb[LLM_BLOCK];
        for (int64_t it = begin; it < end; it++) {
            const int64_t r = it / j->nblk, c0 = (it % j->nblk) * LLM_BLOCK, len = min64(LLM_BLOCK, inner - c0);
            int64_t oa, ob;
            bc_row(a, r, &oa, &ob);
            const double *x = (const double *)a->a + oa + c0 * sa, *y = (const double *)a->b + ob + c0 * sb;
            if (sa == 0) {
                for (int64_t i = 0; i < len; i++) ba[i] = x[0];
                x = ba;
            }
            if (sb == 0) {
                for (int64_t i = 0; i < len; i++) bb[i] = y[0];
                y = bb;
            }
            double *o = (double *)a->out + r * inner + c0;
            if (mul)
                for (int64_t i = 0; i < len; i++) o[i] = x[i] * y[i];
            else
                for (int64_t i = 0; i < len; i++) o[i] = x[i] + y[i];
        }
        return;
    }
    float ba[LLM_BLOCK], bb[LLM_BLOCK], bo[LLM_BLOCK];
    for (int64_t it = begin; it < end; it++) {
        const int64_t r = it / j->nblk, c0 = (it % j->nblk) * LLM_BLOCK, len = min64(LLM_BLOCK, inner - c0);
        int64_t oa, ob;
        bc_row(a, r, &oa, &ob);
        const float *x = bc_ld(a->dtype, a->a, oa + c0 * sa, sa, len, ba);
        const float *y = bc_ld(a->dtype, a->b, ob + c0 * sb, sb, len, bb);
        float *o = out_block(a->dtype, a->out, r * inner + c0, bo);
        if (mul)
            for (int64_t i = 0; i < len; i++) o[i] = x[i] * y[i];
        else
            for (int64_t i = 0; i < len; i++) o[i] = x[i] + y[i];
        st_block(a->dtype, a->out, r * inner + c0, len, o);
    }
}

/* ---- ISA variants ------------------------------------------------------------------------------------- */

#define LLM_VARIANTS(name, ctx_t)                                                                            \
    LC_TARGET_AVX512 static void name##_avx512(void *ctx, int64_t b, int64_t e) { name##_body((const ctx_t *)ctx, b, e, 1); } \
    LC_TARGET_AVX2 static void name##_avx2(void *ctx, int64_t b, int64_t e) { name##_body((const ctx_t *)ctx, b, e, 1); }     \
    static void name##_base(void *ctx, int64_t b, int64_t e) { name##_body((const ctx_t *)ctx, b, e, 0); }                   \
    static lc_range_fn name##_pick(const char **isa) {                                                     \
        const lc_cpu_caps *caps = lc_cpu_caps_get();                                                       \
        if (caps && caps->avx512f) return *isa = "avx512", name##_avx512;                                  \
        if (caps && caps->avx2_fma) return *isa = "avx2", name##_avx2;                                     \
        return *isa = "scalar", name##_base;                                                               \
    }

LLM_VARIANTS(rms_norm, lc_rms_norm_args)
LLM_VARIANTS(softmax, lc_softmax_args)
LLM_VARIANTS(silu, lc_silu_args)
LLM_VARIANTS(bcast, bc_job)

/* Runs fn over n items of `per_item` elements each: inline below LLM_PARALLEL_MIN elements, else over the pool. */
static void llm_run(lc_range_fn fn, void *ctx, int64_t n, int64_t per_item) {
    int64_t total;
    if (n > 1 && lc_mul_ok(n, per_item, &total) && total >= LLM_PARALLEL_MIN) {
        const int64_t grain = LLM_GRAIN / (per_item > 0 ? per_item : 1);
        lc_parallel_for(n, grain > 0 ? grain : 1, fn, ctx);
    } else {
        fn(ctx, 0, n);
    }
}

static int lowp_or_f32(lc_dtype d) { return d == LC_DTYPE_F32 || d == LC_DTYPE_F16 || d == LC_DTYPE_BF16; }

/* "<op>_<dtype>_<isa>" path names: static strings, one per combination. */
#define LLM_PATHS(op)                                                                                        \
    {{op "_f32_avx512", op "_f32_avx2", op "_f32_scalar"},                                                   \
     {op "_f16_avx512", op "_f16_avx2", op "_f16_scalar"},                                                   \
     {op "_bf16_avx512", op "_bf16_avx2", op "_bf16_scalar"},                                                \
     {op "_f64_avx512", op "_f64_avx2", op "_f64_scalar"}}

static const char *llm_path(const char *const names[4][3], lc_dtype d, const char *isa) {
    const int di = d == LC_DTYPE_F16 ? 1 : d == LC_DTYPE_BF16 ? 2 : d == LC_DTYPE_F64 ? 3 : 0;
    const int ii = isa[0] == 'a' ? (isa[4] == '5' ? 0 : 1) : 2;
    return names[di][ii];
}

lc_status lc_cpu_rms_norm(const lc_rms_norm_args *a, const char **path) {
    LC_CHECK_INVARIANT(a != NULL && a->rows >= 0 && a->cols >= 1 && lowp_or_f32(a->dtype) && a->eps > 0.0);
    LC_CHECK_INVARIANT(a->rows == 0 || (a->x && a->out));
    static const char *const names[4][3] = LLM_PATHS("rms_norm");
    const char *isa;
    lc_range_fn fn = rms_norm_pick(&isa);
    if (path) *path = llm_path(names, a->dtype, isa);
    llm_run(fn, (void *)a, a->rows, a->cols);
    return LC_OK;
}

lc_status lc_cpu_softmax(const lc_softmax_args *a, const char **path) {
    LC_CHECK_INVARIANT(a != NULL && a->rows >= 0 && a->cols >= 1 && lowp_or_f32(a->dtype));
    LC_CHECK_INVARIANT(a->rows == 0 || (a->x && a->out));
    static const char *const names[4][3] = LLM_PATHS("softmax");
    const char *isa;
    lc_range_fn fn = softmax_pick(&isa);
    if (path) *path = llm_path(names, a->dtype, isa);
    llm_run(fn, (void *)a, a->rows, a->cols);
    return LC_OK;
}

lc_status lc_cpu_silu(const lc_silu_args *a, const char **path) {
    LC_CHECK_INVARIANT(a != NULL && a->n >= 0 && lowp_or_f32(a->dtype));
    LC_CHECK_INVARIANT((a->n == 0 || (a->a && a->out)) && a->cols == 0); /* flat only (rows: the CUDA kernel) */
    static const char *const names[2][4][3] = {LLM_PATHS("silu"), LLM_PATHS("silu_mul")};
    const char *isa;
    lc_range_fn fn = silu_pick(&isa);
    if (path) *path = llm_path(names[a->b != NULL], a->dtype, isa);
    llm_run(fn, (void *)a, (a->n + LLM_BLOCK - 1) / LLM_BLOCK, LLM_BLOCK);
    return LC_OK;
}

/* One contiguous row of add on the calling thread, through the add's own loop (so the arithmetic is lc_add's by
 * construction): the embedding with learned positions adds its two rows with it inside its own pool task. */
void lc_cpu_add_row(lc_dtype dtype, const void *a, const void *b, void *out, int64_t n) {
    const lc_bcast_args args = {.kind = LC_BCAST_ADD, .dtype = dtype, .shape = {1, 1, 1, n}, .a_st = {0, 0, 0, 1},
                                .b_st = {0, 0, 0, 1}, .contig = 1, .a = a, .b = b, .out = out};
    const bc_job j = {&args, (n + LLM_BLOCK - 1) / LLM_BLOCK};
    const char *isa;
    if (n > 0) bcast_pick(&isa)((void *)&j, 0, j.nblk);
}

lc_status lc_cpu_bcast(const lc_bcast_args *a, const char **path) {
    LC_CHECK_INVARIANT(a != NULL && (lowp_or_f32(a->dtype) || a->dtype == LC_DTYPE_F64));
    LC_CHECK_INVARIANT(a->kind == LC_BCAST_ADD || a->kind == LC_BCAST_MUL);
    LC_CHECK_INVARIANT(a->a_st[3] == 0 || a->a_st[3] == 1);
    LC_CHECK_INVARIANT(a->b_st[3] == 0 || a->b_st[3] == 1);
    int64_t rows = 1;
    for (int k = 0; k < 3; k++) LC_CHECK_INVARIANT(a->shape[k] >= 0 && lc_mul_ok(rows, a->shape[k], &rows));
    static const char *const names[2][2][4][3] = {{LLM_PATHS("add"), LLM_PATHS("add_bcast")},
                                                  {LLM_PATHS("mul"), LLM_PATHS("mul_bcast")}};
    const char *isa;
    lc_range_fn fn = bcast_pick(&isa);
    if (path) *path = llm_path(names[a->kind == LC_BCAST_MUL][!a->contig], a->dtype, isa);
    if (rows == 0 || a->shape[3] == 0) return LC_OK;
    LC_CHECK_INVARIANT(a->a && a->b && a->out);
    bc_job j = {a, (a->shape[3] + LLM_BLOCK - 1) / LLM_BLOCK};
    int64_t items;
    LC_CHECK_INVARIANT(lc_mul_ok(rows, j.nblk, &items));
    llm_run(fn, &j, items, min64(a->shape[3], LLM_BLOCK));
    return LC_OK;
}
