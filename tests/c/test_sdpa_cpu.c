/* test_sdpa_cpu.c — lc_cpu_sdpa and lc_cpu_kv_append (sdpa_cpu.c) against the float64 reference lc_ref_sdpa
 * (reference.c), on fresh random inputs rounded to the dtype (float32, float16, bfloat16).
 * Cases: awkward B, H, Hkv, Sq, Skv, D (1, 3, 7, 63, 65, 129, 200, 256); GQA and MQA; causal with Sq < Skv
 * and Sq > Skv (rows with no key); key_lengths int32/int64 incl. 0, 1 and Skv; ADD masks (float32 and
 * 16-bit) broadcast over b/h/i, transposed, with -inf entries and fully hidden rows; BOOL masks with fully
 * hidden rows; strided views (a packed [B, S, 3, H, D] projection, d-stride 2, k/v shared over the batch
 * with stride 0); lse; NaN in q (its row only) and in k/v rows (rows that see them); sliding windows (1, 5, 40,
 * 70, 300; causal and not, with masks, lengths and NaN rows left of some rows' windows, decode). Outputs are poisoned
 * before each run; strided outputs' gaps must stay poisoned.
 * Tolerance per output row (u: the output dtype's unit roundoff, 2^-24 for float32; e = 2^-24):
 *   |err| <= u·|ref| + (2(d + 4)·S_i + n_i + 16)·e·V_i + tiny,
 * S_i = max over visible keys of scale·Σ|q·k| + |mask| (bounds the scores, whose float32 error enters the
 * weights relatively), n_i the visible keys, V_i their largest |v|; lse: (2(d + 4)·S_i + n_i + 16)·e + e·|lse|.
 * float32 also: max |err| <= 1e-5 · max |ref| per case (the float32 accuracy target); 16-bit: >= 90% of a
 * case's elements exactly the reference rounded to the dtype. The KV cache: appends token by token (and
 * by 3 tokens, past max_seq: clamped, overflow set, nothing written past the end), then decode-style
 * lc_cpu_sdpa with key_lengths = lengths equals full causal attention, bit for bit.
 * Prints GFLOP/s for B=1, H=12, S=1024, D=64 float32 (causal and not); no timing assertion.
 * ctest runs it as is (AVX-512 where present), with LC_CPU_DISABLE=avx512 (the AVX2 path), avx512,avx2 (the
 * generic path, scalar converters) and with one thread. Prints "N passed, N failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/cpu_features.h"
#include "core/threadpool.h"

#define LOWP_SEED 0x5dbd6a19e3c2f1a7ull
#include "lowp_check.h"
#define EPS32 0x1p-24
#define DT_BOOL LC_DTYPE_COUNT /* a BOOL mask storage (one byte) in the test's buffers */

/* One storage of n elements in dtype dt: raw bits (float or uint16) and the double value of each. */
typedef struct buf {
    lc_dtype dt;
    int64_t n;
    void *raw;
    double *val;
} buf;

static size_t esz(lc_dtype d) { return d == LC_DTYPE_F32 ? 4 : d == DT_BOOL ? 1 : 2; }

static buf buf_new(lc_dtype dt, int64_t n) {
    buf b = {dt, n, calloc((size_t)(n > 0 ? n : 1), esz(dt)), calloc((size_t)(n > 0 ? n : 1), sizeof(double))};
    return b;
}
static void buf_free(buf *b) { free(b->raw), free(b->val); }

static void buf_set(buf *b, int64_t i, double x) {
    if (b->dt == LC_DTYPE_F32) {
        ((float *)b->raw)[i] = (float)x;
        b->val[i] = (double)(float)x;
    } else if (b->dt == DT_BOOL) {
        ((uint8_t *)b->raw)[i] = x != 0.0;
        b->val[i] = x != 0.0;
    } else {
        ((uint16_t *)b->raw)[i] = to16(b->dt, x);
        b->val[i] = from16(b->dt, ((uint16_t *)b->raw)[i]);
    }
}
static void buf_fill(buf *b, double lo, double hi) {
    for (int64_t i = 0; i < b->n; i++) buf_set(b, i, rnd(lo, hi));
}
static void buf_poison(buf *b) {
    for (int64_t i = 0; i < b->n; i++) {
        if (b->dt == LC_DTYPE_F32) ((float *)b->raw)[i] = NAN;
        else ((uint16_t *)b->raw)[i] = POISON;
    }
}
static int is_poison(const buf *b, int64_t i) {
    if (b->dt == LC_DTYPE_F32) {
        const float f = ((float *)b->raw)[i], p = NAN;
        return memcmp(&f, &p, 4) == 0;
    }
    return ((uint16_t *)b->raw)[i] == POISON;
}
static double got_at(const buf *b, int64_t i) {
    return b->dt == LC_DTYPE_F32 ? (double)((float *)b->raw)[i] : from16(b->dt, ((uint16_t *)b->raw)[i]);
}
static void *raw_at(const buf *b, int64_t off) { return (char *)b->raw + (size_t)off * esz(b->dt); }

typedef struct cfg {
    lc_dtype dt;
    int64_t B, H, Hkv, Sq, Skv, D;
    int causal;
    int layout; /* 0 contiguous, 1 packed [B,S,3,H,D] (Sq == Skv, H == Hkv), 2 [B,S,H,D] d-stride 2, 3 k/v stride 0 over b */
    lc_sdpa_mask_kind mk;
    int mask16;  /* ADD mask in the op's dtype (else float32) */
    int mbcast;  /* bit 0: broadcast over b, 1: over h, 2: over i; bit 3: stored transposed ([.., j, i]) */
    int lens;    /* 0: none, 32 or 64: key_lengths of that width */
    int64_t lenv[4]; /* values for the first batches (-1: random) */
    int want_lse;
    int nan_inputs; /* NaN in q[0,0,Sq/2,0], k[.., Skv-1, 0], v[.., Skv/2, 1] */
    int64_t window; /* lc_sdpa_args.window (0: none) */
} cfg;

/* The strides and storage size of an operand [B, n_heads, S, D] under a layout (element units). */
static int64_t view(int layout, int64_t B, int64_t nh, int64_t S, int64_t D, int64_t st[4]) {
    switch (layout) {
    case 2:
        st[0] = S * nh * D * 2, st[1] = D * 2, st[2] = nh * D * 2, st[3] = 2;
        return B * S * nh * D * 2;
    case 3: /* shared over the batch */
        st[0] = 0, st[1] = S * D, st[2] = D, st[3] = 1;
        return nh * S * D;
    default:
        st[0] = nh * S * D, st[1] = S * D, st[2] = D, st[3] = 1;
        return B * nh * S * D;
    }
}

/* The path lc_cpu_sdpa must take: the AVX-512 BF16 tile for bfloat16 with an even head_dim and unit d-strides
 * on a CPU with AVX512_BF16 (it rounds the weights P to bfloat16 before P·V), else the ISA's float32 tile. */
static const char *expected_path(const lc_sdpa_args *a) {
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    if (caps->avx512f && caps->avx512bf16 && a->dtype == LC_DTYPE_BF16 && a->head_dim % 2 == 0 && a->q_st[3] == 1 &&
        a->k_st[3] == 1 && a->v_st[3] == 1 && !a->plain_nonfinite)
        return "cpu_sdpa_avx512bf16";
    return caps->avx512f ? "cpu_sdpa_avx512" : caps->avx2_fma ? "cpu_sdpa_avx2" : "cpu_sdpa_generic";
}

static int g_case;

static void run_case(const cfg *c) {
    const lc_dtype dt = c->dt;
    const int64_t B = c->B, H = c->H, G = c->Hkv, Sq = c->Sq, Skv = c->Skv, D = c->D;
    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = dt, a.batch = B, a.heads = H, a.kv_heads = G, a.sq = Sq, a.skv = Skv, a.head_dim = D;
    a.causal = c->causal, a.scale = (float)(1.0 / sqrt((double)D));
    a.window = c->window;
    g_case++;

    /* q, k, v, out storages and views */
    buf bq, bk, bv, bo;
    int64_t qoff = 0, koff = 0, voff = 0;
    if (c->layout == 1) { /* one packed projection [B, S, 3, H, D]; out [B, S, H, D] */
        bq = buf_new(dt, B * Sq * 3 * H * D);
        bk = bv = bq;
        koff = H * D, voff = 2 * H * D;
        const int64_t st[4] = {Sq * 3 * H * D, D, 3 * H * D, 1};
        memcpy(a.q_st, st, sizeof st), memcpy(a.k_st, st, sizeof st), memcpy(a.v_st, st, sizeof st);
        bo = buf_new(dt, B * Sq * H * D);
        const int64_t os[4] = {Sq * H * D, D, H * D, 1};
        memcpy(a.o_st, os, sizeof os);
    } else {
        const int ql = c->layout == 3 ? 0 : c->layout;
        bq = buf_new(dt, view(ql, B, H, Sq, D, a.q_st));
        bk = buf_new(dt, view(c->layout, B, G, Skv, D, a.k_st));
        bv = buf_new(dt, view(c->layout, B, G, Skv, D, a.v_st));
        bo = buf_new(dt, view(ql, B, H, Sq, D, a.o_st));
    }
    buf_fill(&bq, -1.5, 1.5);
    if (c->layout != 1) buf_fill(&bk, -1.5, 1.5), buf_fill(&bv, -1.0, 1.0);
    if (c->nan_inputs) {
        buf_set(&bq, qoff + (Sq / 2) * a.q_st[2], NAN);
        for (int64_t g = 0; g < G; g++) {
            buf_set(&bk, koff + g * a.k_st[1] + (Skv - 1) * a.k_st[2], NAN);
            buf_set(&bv, voff + g * a.v_st[1] + (Skv / 2) * a.v_st[2] + (D > 1 ? 1 : 0) * a.v_st[3], NAN);
        }
    }
    buf_poison(&bo);
    a.q = raw_at(&bq, qoff), a.k = raw_at(&bk, koff), a.v = raw_at(&bv, voff), a.out = bo.raw;

    /* mask */
    buf bm = {LC_DTYPE_F32, 0, NULL, NULL};
    if (c->mk != LC_SDPA_MASK_NONE) {
        const int64_t mb = c->mbcast & 1 ? 1 : B, mh = c->mbcast & 2 ? 1 : H, mi = c->mbcast & 4 ? 1 : Sq;
        const lc_dtype mdt = c->mk == LC_SDPA_MASK_BOOL ? DT_BOOL : c->mask16 ? dt : LC_DTYPE_F32;
        bm = buf_new(mdt, mb * mh * mi * Skv);
        const int tr = (c->mbcast & 8) != 0;
        a.m_st[0] = mb == 1 ? 0 : mh * mi * Skv;
        a.m_st[1] = mh == 1 ? 0 : mi * Skv;
        a.m_st[2] = mi == 1 ? 0 : tr ? 1 : Skv;
        a.m_st[3] = tr ? mi : 1;
        for (int64_t e = 0; e < bm.n; e++) {
            const double r = rnd(0.0, 1.0);
            if (c->mk == LC_SDPA_MASK_BOOL) buf_set(&bm, e, r < 0.7);
            else buf_set(&bm, e, r < 0.15 ? -INFINITY : rnd(-2.0, 2.0));
        }
        /* (b, h, i) = (0, 0, 0)'s row fully hidden (and every row broadcast from it) */
        for (int64_t j = 0; j < Skv; j++) buf_set(&bm, j * a.m_st[3], c->mk == LC_SDPA_MASK_BOOL ? 0.0 : -INFINITY);
        a.mask_kind = c->mk, a.mask_dtype = mdt == DT_BOOL ? LC_DTYPE_F32 : mdt, a.mask = bm.raw;
    }

    /* key_lengths */
    int32_t l32[64];
    int64_t l64[64];
    if (c->lens) {
        for (int64_t b = 0; b < B; b++) {
            int64_t L = b < 4 && c->lenv[b] >= 0 ? c->lenv[b] : (int64_t)rnd(0.0, (double)Skv + 1.0);
            if (L > Skv) L = Skv;
            l32[b] = (int32_t)L, l64[b] = L;
        }
        a.key_lengths = c->lens == 64 ? (const void *)l64 : (const void *)l32;
        a.key_lengths_dtype = c->lens == 64 ? LC_DTYPE_I64 : LC_DTYPE_I32;
    }
    float *lse = NULL;
    double *rlse = NULL;
    if (c->want_lse) {
        lse = malloc((size_t)(B * H * Sq) * sizeof(float));
        rlse = malloc((size_t)(B * H * Sq) * sizeof(double));
        for (int64_t i = 0; i < B * H * Sq; i++) lse[i] = NAN;
        a.lse = lse;
    }

    double *ref = malloc((size_t)bo.n * sizeof(double));
    for (int64_t i = 0; i < bo.n; i++) ref[i] = 0.0;
    lc_ref_sdpa(&a, bq.val + qoff, bk.val + koff, bv.val + voff, bm.val, ref, rlse);

    const char *path = NULL;
    CHECK_OK(lc_cpu_sdpa(&a, &path));
    CHECK(path && strcmp(path, expected_path(&a)) == 0);
    const int prounded = path && strcmp(path, "cpu_sdpa_avx512bf16") == 0;

    /* judge */
    const double u = dt == LC_DTYPE_F32 ? EPS32 : unit(dt), tn = dt == LC_DTYPE_F32 ? 0.0 : tiny(dt);
    const int64_t group = H / G;
    int bad = 0, badlse = 0;
    int64_t finite = 0, exact = 0;
    double maxerr = 0.0, maxref = 0.0;
    uint8_t *written = calloc((size_t)bo.n, 1);
    for (int64_t b = 0; b < B; b++) {
        const int64_t L = c->lens ? l64[b] : Skv;
        for (int64_t h = 0; h < H; h++) {
            const int64_t g = h / group;
            for (int64_t i = 0; i < Sq; i++) {
                /* the row's bound terms over its visible keys */
                double S = 0.0, V = 0.0;
                int64_t n = 0;
                const int64_t last = c->causal && i + L - Sq < L - 1 ? i + L - Sq : L - 1;
                const int64_t first = c->window && i + L - Sq - c->window + 1 > 0 ? i + L - Sq - c->window + 1 : 0;
                for (int64_t j = first; j <= last; j++) {
                    double mv = 0.0;
                    if (c->mk != LC_SDPA_MASK_NONE) {
                        mv = bm.val[b * a.m_st[0] + h * a.m_st[1] + i * a.m_st[2] + j * a.m_st[3]];
                        if (c->mk == LC_SDPA_MASK_BOOL ? mv == 0.0 : mv == -INFINITY) continue;
                        if (c->mk == LC_SDPA_MASK_BOOL) mv = 0.0;
                    }
                    double s = 0.0;
                    for (int64_t t = 0; t < D; t++)
                        s += fabs(bq.val[qoff + b * a.q_st[0] + h * a.q_st[1] + i * a.q_st[2] + t * a.q_st[3]] *
                                  bk.val[koff + b * a.k_st[0] + g * a.k_st[1] + j * a.k_st[2] + t * a.k_st[3]]);
                    s = a.scale * s + fabs(mv);
                    if (s > S) S = s;
                    for (int64_t t = 0; t < D; t++) {
                        const double x = fabs(bv.val[voff + b * a.v_st[0] + g * a.v_st[1] + j * a.v_st[2] + t * a.v_st[3]]);
                        if (x > V) V = x;
                    }
                    n++;
                }
                /* float32 arithmetic; with P rounded to the dtype (prounded) each weight carries a relative
                 * error <= u and the weights sum to 1: at most u·max|v| more */
                const double fl = (2.0 * (double)(D + 4) * S + (double)n + 16.0) * EPS32 + (prounded ? u : 0.0);
                for (int64_t t = 0; t < D; t++) {
                    const int64_t o = b * a.o_st[0] + h * a.o_st[1] + i * a.o_st[2] + t * a.o_st[3];
                    written[o] = 1;
                    const double r = ref[o], x = got_at(&bo, o);
                    if (isnan(r)) {
                        if (!isnan(x)) bad++;
                        continue;
                    }
                    const double err = fabs(x - r);
                    if (!(err <= u * fabs(r) + fl * V + tn)) {
                        if (bad++ < 3)
                            fprintf(stderr, "  case %d b%lld h%lld i%lld t%lld: got %.9g ref %.9g (tol %.3g)\n", g_case,
                                    (long long)b, (long long)h, (long long)i, (long long)t, x, r,
                                    u * fabs(r) + fl * V + tn);
                    }
                    if (err > maxerr) maxerr = err;
                    if (fabs(r) > maxref) maxref = fabs(r);
                    if (dt != LC_DTYPE_F32) {
                        finite++;
                        exact += ((uint16_t *)bo.raw)[o] == to16(dt, r);
                    }
                }
                if (lse) {
                    const int64_t li = (b * H + h) * Sq + i;
                    const double r = rlse[li], x = lse[li];
                    const int ok = isnan(r) ? isnan(x) : isinf(r) ? x == r : fabs(x - r) <= fl + EPS32 * fabs(r);
                    if (!ok && badlse++ < 3)
                        fprintf(stderr, "  case %d lse b%lld h%lld i%lld: got %.9g ref %.9g\n", g_case, (long long)b,
                                (long long)h, (long long)i, x, r);
                }
            }
        }
    }
    int gaps = 0;
    for (int64_t o = 0; o < bo.n; o++) gaps += !written[o] && !is_poison(&bo, o);
    CHECK(bad == 0);
    CHECK(badlse == 0);
    CHECK(gaps == 0);
    if (dt == LC_DTYPE_F32 && !c->nan_inputs) CHECK(maxerr <= 1e-5 * maxref);
    /* most elements round to the reference's nearest value: 90% with float32 weights; with the weights rounded
     * to bfloat16 (prounded) the output carries their error too: half */
    if (dt != LC_DTYPE_F32 && finite >= 64) CHECK(exact * 10 >= finite * (prounded ? 5 : 9));
    if (bad || badlse || gaps)
        fprintf(stderr, "  case %d: dtype %s B%lld H%lld Hkv%lld Sq%lld Skv%lld D%lld causal %d layout %d mask %d/%d lens %d: %d bad, %d bad lse, %d gaps\n",
                g_case, lc_dtype_name(dt), (long long)B, (long long)H, (long long)G, (long long)Sq, (long long)Skv,
                (long long)D, c->causal, c->layout, (int)c->mk, c->mbcast, c->lens, bad, badlse, gaps);
    free(written), free(ref), free(lse), free(rlse);
    buf_free(&bq), buf_free(&bo);
    if (c->layout != 1) buf_free(&bk), buf_free(&bv);
    if (bm.raw) buf_free(&bm);
}

/* ---- KV cache ----------------------------------------------------------------------------------------- */

/* k_full, v_full [B, G, S, D] with d-stride 2 appended `chunk` tokens at a time into caches of max_seq
 * (>= S: then every step's causal attention of its T new queries must equal rows t0.. of the full causal
 * attention, over contiguous copies of k_full and v_full, bit for bit). max_seq < S: the appends clamp, overflow is set and nothing lands past the caches. */
static void kv_case(lc_dtype dt, int64_t B, int64_t H, int64_t G, int64_t S, int64_t D, int64_t max_seq, int64_t chunk) {
    lc_sdpa_args fa;
    memset(&fa, 0, sizeof fa);
    fa.dtype = dt, fa.batch = B, fa.heads = H, fa.kv_heads = G, fa.sq = S, fa.skv = S, fa.head_dim = D;
    fa.causal = 1, fa.scale = (float)(1.0 / sqrt((double)D));
    buf bq = buf_new(dt, view(0, B, H, S, D, fa.q_st)), bk = buf_new(dt, view(2, B, G, S, D, fa.k_st));
    buf bv = buf_new(dt, view(2, B, G, S, D, fa.v_st)), bfull = buf_new(dt, view(0, B, H, S, D, fa.o_st));
    buf_fill(&bq, -1.5, 1.5), buf_fill(&bk, -1.5, 1.5), buf_fill(&bv, -1.0, 1.0), buf_poison(&bfull);
    /* the full attention reads contiguous copies of k and v, as the steps read the contiguous caches: the same
     * kernel path (the bfloat16 tile needs unit d-strides), hence the same bits */
    lc_sdpa_args fc = fa;
    buf kd = buf_new(dt, view(0, B, G, S, D, fc.k_st)), vd = buf_new(dt, view(0, B, G, S, D, fc.v_st));
    for (int64_t b = 0; b < B; b++)
        for (int64_t g = 0; g < G; g++)
            for (int64_t t = 0; t < S; t++)
                for (int64_t p = 0; p < D; p++) {
                    const int64_t src = b * fa.k_st[0] + g * fa.k_st[1] + t * fa.k_st[2] + p * fa.k_st[3];
                    const int64_t dst = b * fc.k_st[0] + g * fc.k_st[1] + t * fc.k_st[2] + p * fc.k_st[3];
                    memcpy(raw_at(&kd, dst), raw_at(&bk, src), esz(dt));
                    memcpy(raw_at(&vd, dst), raw_at(&bv, src), esz(dt));
                }
    fc.q = bq.raw, fc.k = kd.raw, fc.v = vd.raw, fc.out = bfull.raw;
    fa.q = bq.raw, fa.k = bk.raw, fa.v = bv.raw, fa.out = bfull.raw;
    CHECK_OK(lc_cpu_sdpa(&fc, NULL));
    buf_free(&kd), buf_free(&vd);

    const int64_t guard = 64, cache_n = B * G * max_seq * D;
    buf kc = buf_new(dt, cache_n + guard), vc = buf_new(dt, cache_n + guard);
    buf_poison(&kc), buf_poison(&vc);
    int32_t lengths[8] = {0};
    int32_t overflow = 0;
    const size_t es = esz(dt);
    int mismatch = 0, badlen = 0;
    for (int64_t t0 = 0; t0 < S; t0 += chunk) {
        const int64_t T = S - t0 < chunk ? S - t0 : chunk;
        lc_kv_append_args ap;
        memset(&ap, 0, sizeof ap);
        ap.dtype = dt, ap.batch = B, ap.kv_heads = G, ap.max_seq = max_seq, ap.head_dim = D, ap.tokens = T;
        ap.k_cache = kc.raw, ap.v_cache = vc.raw;
        ap.k_new = (const char *)bk.raw + (size_t)(t0 * fa.k_st[2]) * es;
        ap.v_new = (const char *)bv.raw + (size_t)(t0 * fa.v_st[2]) * es;
        memcpy(ap.kn_st, fa.k_st, sizeof ap.kn_st), memcpy(ap.vn_st, fa.v_st, sizeof ap.vn_st);
        ap.lengths = lengths, ap.overflow = &overflow;
        CHECK_OK(lc_cpu_kv_append(&ap));
        const int64_t want = t0 + T < max_seq ? t0 + T : max_seq;
        for (int64_t b = 0; b < B; b++) badlen += lengths[b] != want;
        if (t0 + T > max_seq) continue;
        /* the T new queries against the cache */
        lc_sdpa_args sa = fa;
        sa.sq = T, sa.skv = max_seq;
        sa.q = (const char *)bq.raw + (size_t)(t0 * fa.q_st[2]) * es;
        sa.k = kc.raw, sa.v = vc.raw;
        const int64_t cst[4] = {G * max_seq * D, max_seq * D, D, 1};
        memcpy(sa.k_st, cst, sizeof cst), memcpy(sa.v_st, cst, sizeof cst);
        buf bo = buf_new(dt, B * H * T * D);
        buf_poison(&bo);
        const int64_t ost[4] = {H * T * D, T * D, D, 1};
        memcpy(sa.o_st, ost, sizeof ost);
        sa.out = bo.raw, sa.key_lengths = lengths, sa.key_lengths_dtype = LC_DTYPE_I32;
        CHECK_OK(lc_cpu_sdpa(&sa, NULL));
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < T; i++)
                    mismatch += memcmp(raw_at(&bo, b * ost[0] + h * ost[1] + i * ost[2]),
                                       raw_at(&bfull, b * fa.o_st[0] + h * fa.o_st[1] + (t0 + i) * fa.o_st[2]),
                                       (size_t)D * es) != 0;
        buf_free(&bo);
    }
    /* the caches hold the first min(S, max_seq) tokens, bit for bit; the guard past them is untouched */
    int badcache = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t g = 0; g < G; g++)
            for (int64_t t = 0; t < max_seq; t++)
                for (int64_t p = 0; p < D; p++) {
                    const int64_t c = ((b * G + g) * max_seq + t) * D + p;
                    const int64_t s = b * fa.k_st[0] + g * fa.k_st[1] + t * fa.k_st[2] + p * fa.k_st[3];
                    if (t >= S) badcache += !is_poison(&kc, c) || !is_poison(&vc, c);
                    else badcache += memcmp(raw_at(&kc, c), raw_at(&bk, s), es) != 0 || memcmp(raw_at(&vc, c), raw_at(&bv, s), es) != 0;
                }
    for (int64_t e = cache_n; e < cache_n + guard; e++) badcache += !is_poison(&kc, e) || !is_poison(&vc, e);
    CHECK(mismatch == 0);
    CHECK(badlen == 0);
    CHECK(badcache == 0);
    CHECK(overflow == (S > max_seq));
    if (mismatch || badlen || badcache)
        fprintf(stderr, "  kv %s S%lld max_seq %lld chunk %lld: %d rows differ, %d bad lengths, %d bad cache elements\n",
                lc_dtype_name(dt), (long long)S, (long long)max_seq, (long long)chunk, mismatch, badlen, badcache);
    buf_free(&bq), buf_free(&bk), buf_free(&bv), buf_free(&bfull), buf_free(&kc), buf_free(&vc);
}

/* float64 caches (any float dtype is a byte copy), lengths clamped from out-of-range starts. */
static void kv_f64(void) {
    enum { B = 2, G = 3, M = 5, D = 7, T = 3 };
    double cache[B * G * M * D], knew[B * G * T * D * 2];
    for (int i = 0; i < B * G * M * D; i++) cache[i] = -1.0;
    for (int i = 0; i < B * G * T * D * 2; i++) knew[i] = rnd(-1.0, 1.0);
    int32_t lengths[B] = {-4, 4}; /* clamped to 0 and 4: sequence 1 has room for 1 token */
    int32_t overflow = 0;
    lc_kv_append_args ap;
    memset(&ap, 0, sizeof ap);
    ap.dtype = LC_DTYPE_F64, ap.batch = B, ap.kv_heads = G, ap.max_seq = M, ap.head_dim = D, ap.tokens = T;
    ap.k_cache = cache, ap.v_cache = cache; /* the same storage twice: v's copy lands on k's, equal data */
    ap.k_new = knew, ap.v_new = knew;
    const int64_t st[4] = {G * T * D * 2, T * D * 2, D * 2, 2};
    memcpy(ap.kn_st, st, sizeof st), memcpy(ap.vn_st, st, sizeof st);
    ap.lengths = lengths, ap.overflow = &overflow;
    CHECK_OK(lc_cpu_kv_append(&ap));
    CHECK(lengths[0] == T && lengths[1] == M && overflow == 1);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++)
            for (int t = 0; t < M; t++)
                for (int p = 0; p < D; p++) {
                    const int t_new = b == 0 ? t : t - 4; /* the token written at t, or none */
                    const double want = t_new >= 0 && t_new < (b == 0 ? T : 1) ? knew[b * st[0] + g * st[1] + t_new * st[2] + p * 2] : -1.0;
                    bad += cache[((b * G + g) * M + t) * D + p] != want;
                }
    CHECK(bad == 0);
}

/* ---- timing ------------------------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* B=1, H=12, S=1024, D=64 float32: best of 3 per mode, GFLOP/s = 4·H·D·(query, key) pairs / s; head 0 of
 * the causal run judged against the reference. */
static void bench(void) {
    enum { H = 12, S = 1024, D = 64 };
    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = LC_DTYPE_F32, a.batch = 1, a.heads = H, a.kv_heads = H, a.sq = S, a.skv = S, a.head_dim = D;
    a.scale = 0.125f;
    buf bq = buf_new(LC_DTYPE_F32, view(0, 1, H, S, D, a.q_st)), bk = buf_new(LC_DTYPE_F32, view(0, 1, H, S, D, a.k_st));
    buf bv = buf_new(LC_DTYPE_F32, view(0, 1, H, S, D, a.v_st)), bo = buf_new(LC_DTYPE_F32, view(0, 1, H, S, D, a.o_st));
    buf_fill(&bq, -1.5, 1.5), buf_fill(&bk, -1.5, 1.5), buf_fill(&bv, -1.0, 1.0);
    a.q = bq.raw, a.k = bk.raw, a.v = bv.raw, a.out = bo.raw;
    const char *path = "?";
    for (int causal = 0; causal <= 1; causal++) {
        a.causal = causal;
        buf_poison(&bo);
        CHECK_OK(lc_cpu_sdpa(&a, &path));
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            const double t0 = now_s();
            CHECK_OK(lc_cpu_sdpa(&a, &path));
            const double dt = now_s() - t0;
            if (dt < best) best = dt;
        }
        const double pairs = causal ? (double)S * (S + 1) / 2.0 : (double)S * S;
        printf("sdpa B=1 H=%d S=%d D=%d float32 %-9s %s, %d threads: %.2f ms, %.1f GFLOP/s\n", H, S, D,
               causal ? "causal" : "noncausal", path, lc_pool_threads(), best * 1e3, 4.0 * H * D * pairs / best * 1e-9);
    }
    /* head 0 of the causal run against the reference */
    lc_sdpa_args h0 = a;
    h0.heads = h0.kv_heads = 1;
    double *ref = malloc((size_t)S * D * sizeof(double));
    lc_ref_sdpa(&h0, bq.val, bk.val, bv.val, NULL, ref, NULL);
    double maxerr = 0.0, maxref = 0.0;
    for (int64_t i = 0; i < S * D; i++) {
        const double e = fabs(((float *)bo.raw)[i] - ref[i]);
        maxerr = e > maxerr || isnan(e) ? e : maxerr;
        maxref = fabs(ref[i]) > maxref ? fabs(ref[i]) : maxref;
    }
    CHECK(maxerr <= 1e-5 * maxref);
    printf("  head 0 (causal): max |err| %.3g, max |ref| %.3g\n", maxerr, maxref);
    free(ref);
    buf_free(&bq), buf_free(&bk), buf_free(&bv), buf_free(&bo);
}

/* ---- cases -------------------------------------------------------------------------------------------- */

#define NONE LC_SDPA_MASK_NONE
#define ADD LC_SDPA_MASK_ADD
#define BOOLM LC_SDPA_MASK_BOOL
#define R {-1, -1, -1, -1}

static const cfg fixed[] = {
    /* dt, B, H, Hkv, Sq, Skv, D, causal, layout, mask, mask16, mbcast, lens, lenv, lse, nan */
    {0, 1, 1, 1, 1, 1, 1, 0, 0, NONE, 0, 0, 0, R, 1, 0, 0},
    {0, 2, 3, 1, 7, 65, 63, 1, 0, NONE, 0, 0, 0, R, 1, 0, 0},           /* MQA, causal Sq < Skv */
    {0, 1, 4, 2, 129, 63, 65, 1, 0, NONE, 0, 0, 0, R, 1, 0, 0},         /* causal Sq > Skv: rows without keys */
    {0, 3, 7, 7, 65, 65, 7, 1, 1, NONE, 0, 0, 0, R, 0, 0, 0},           /* packed [B, S, 3, H, D] */
    {0, 2, 2, 2, 200, 200, 64, 0, 1, NONE, 0, 0, 0, R, 1, 0, 0},
    {0, 2, 6, 3, 63, 129, 65, 1, 2, NONE, 0, 0, 64, {0, 129}, 1, 0, 0}, /* d-stride 2, lengths 0 and Skv */
    {0, 3, 2, 1, 3, 200, 129, 1, 0, NONE, 0, 0, 32, {1, 200, 77}, 1, 0, 0},
    {0, 2, 3, 3, 65, 129, 63, 0, 0, ADD, 0, 3, 0, R, 1, 0, 0},          /* mask [1, 1, Sq, Skv] */
    {0, 1, 2, 1, 63, 65, 7, 1, 0, ADD, 1, 4 | 8, 0, R, 1, 0, 0},        /* mask [B, H, 1, Skv], transposed */
    {0, 2, 3, 1, 65, 200, 65, 1, 0, BOOLM, 0, 0, 32, {200, 3}, 1, 0, 0},
    {0, 2, 2, 1, 65, 129, 63, 1, 0, BOOLM, 0, 2, 64, {129, 100}, 1, 1, 0}, /* NaN in q, k, v */
    {0, 2, 4, 2, 70, 66, 33, 0, 2, BOOLM, 0, 1 | 8, 0, R, 1, 0, 0},   /* BOOL [1, H, Sq, Skv] transposed */
    {0, 2, 4, 2, 65, 129, 63, 0, 0, ADD, 1, 0, 0, R, 1, 1, 0},          /* NaN with an ADD mask */
    {0, 2, 3, 1, 63, 129, 64, 0, 0, NONE, 0, 0, 0, R, 0, 1, 0},         /* NaN, no mask */
    {0, 3, 4, 2, 7, 129, 64, 1, 3, NONE, 0, 0, 32, {129, 0, 5}, 1, 0, 0}, /* k/v shared over the batch */
    {0, 1, 1, 1, 129, 129, 256, 1, 0, NONE, 0, 0, 0, R, 1, 0, 0},       /* D = 256 */
    {0, 2, 8, 2, 1, 1000, 128, 1, 0, NONE, 0, 0, 64, {1000, 1}, 1, 0, 0}, /* decode */
    {0, 1, 3, 3, 200, 7, 1, 0, 2, ADD, 0, 1, 0, R, 1, 0, 0},            /* D = 1, strided */
    /* sliding windows: tiles left of a block's window are skipped, the rest masked per row */
    {0, 2, 4, 2, 129, 129, 64, 1, 0, NONE, 0, 0, 0, R, 1, 0, 5},
    {0, 1, 2, 1, 140, 140, 16, 1, 0, NONE, 0, 0, 0, R, 1, 0, 1},
    {0, 2, 3, 1, 65, 200, 65, 1, 0, BOOLM, 0, 0, 32, {200, 3}, 1, 1, 70}, /* NaN v row left of late rows' windows */
    {0, 1, 2, 2, 70, 130, 33, 0, 2, NONE, 0, 0, 0, R, 1, 0, 40},       /* without causal: a left bound only */
    {0, 2, 8, 2, 1, 1000, 128, 1, 0, NONE, 0, 0, 64, {1000, 1}, 1, 0, 300}, /* decode */
    {0, 2, 4, 2, 9, 300, 32, 1, 2, ADD, 0, 2, 64, {300, 150}, 1, 0, 64},
    /* GQA decode (sq 1, no mask): a task's rows are the heads of one kv head; groups of 20 and of 72 (two
     * row blocks), strided d, lengths 0 and full, NaN inputs, k/v shared over the batch with a window */
    {0, 2, 40, 2, 1, 129, 64, 1, 2, NONE, 0, 0, 32, {0, 129}, 1, 0, 0},
    {0, 1, 72, 1, 1, 200, 32, 0, 0, NONE, 0, 0, 0, R, 1, 1, 0},
    {0, 3, 6, 3, 1, 65, 63, 1, 3, NONE, 0, 0, 64, {65, 1, 30}, 1, 0, 20},
    {0, 2, 16, 4, 1, 300, 64, 1, 0, NONE, 0, 0, 32, {300, 77}, 1, 0, 100},
};

static void random_cases(lc_dtype dt, int count) {
    static const int64_t sizes[] = {1, 3, 7, 63, 65, 129, 200};
    for (int c = 0; c < count; c++) {
        cfg k;
        memset(&k, 0, sizeof k);
        do {
            k.B = 1 + (int64_t)rnd(0.0, 3.0);
            k.Hkv = sizes[(int)rnd(0.0, 3.0)];
            k.H = k.Hkv * (1 + (int64_t)rnd(0.0, 3.0));
            k.Sq = sizes[(int)rnd(0.0, 7.0)], k.Skv = sizes[(int)rnd(0.0, 7.0)], k.D = sizes[(int)rnd(0.0, 7.0)];
        } while (k.B * k.H * k.Sq * k.Skv * k.D > 4000000);
        k.dt = dt;
        k.causal = rnd(0.0, 1.0) < 0.5;
        k.layout = rnd(0.0, 1.0) < 0.3 ? 2 : rnd(0.0, 1.0) < 0.2 ? 3 : 0;
        const double m = rnd(0.0, 3.0);
        k.mk = m < 1.0 ? NONE : m < 2.0 ? ADD : BOOLM;
        k.mask16 = dt != LC_DTYPE_F32 && rnd(0.0, 1.0) < 0.5;
        k.mbcast = (int)rnd(0.0, 16.0);
        k.lens = rnd(0.0, 1.0) < 0.5 ? 0 : rnd(0.0, 1.0) < 0.5 ? 32 : 64;
        for (int i = 0; i < 4; i++) k.lenv[i] = -1;
        k.want_lse = rnd(0.0, 1.0) < 0.5;
        k.window = rnd(0.0, 1.0) < 0.3 ? 1 + (int64_t)rnd(0.0, 80.0) : 0;
        run_case(&k);
    }
}

int main(void) {
    static const lc_dtype dts[] = {LC_DTYPE_F32, LC_DTYPE_F16, LC_DTYPE_BF16};
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            cfg c = fixed[i];
            c.dt = dts[t];
            if (c.dt == LC_DTYPE_F32) c.mask16 = 0;
            run_case(&c);
        }
        random_cases(dts[t], 8);
    }
    /* the NaN k row (key 128) lies past both lengths: hidden, it must not reach any row */
    cfg hidden = {LC_DTYPE_F32, 2, 2, 2, 65, 129, 65, 0, 0, NONE, 0, 0, 32, {100, 128}, 1, 1, 0};
    run_case(&hidden);
    for (int t = 0; t < 3; t++) {
        kv_case(dts[t], 2, 4, 2, 70, 65, 80, 1);  /* token by token, GQA */
        kv_case(dts[t], 1, 3, 3, 130, 64, 130, 3); /* 3 at a time, to exactly full */
    }
    kv_case(LC_DTYPE_F32, 2, 2, 1, 40, 7, 33, 3); /* past max_seq: clamped, overflow */
    kv_f64();
    bench();
    lc_sdpa_args f32 = {.dtype = LC_DTYPE_F32};
    printf("test_sdpa_cpu (%s): %d passed, %d failed\n", expected_path(&f32), g_pass, g_fail);
    return g_fail != 0;
}
