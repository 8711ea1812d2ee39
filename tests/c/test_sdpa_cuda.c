/* test_sdpa_cuda.c — the CUDA sdpa kernels (lc_cuda_launch_sdpa: generic flash, key split, decode: the
 * tensor-core kernel for 16-bit k/v with 16-byte rows, the SIMT one otherwise or with LC_SDPA_DECODE=simt)
 * and the KV-cache append (lc_cuda_launch_kv_append) called directly through their launchers, judged against a
 * float64 reference of the lc_sdpa_args semantics (src/core/backend.h) on awkward shapes: every dtype,
 * GQA/MQA, sq != skv, causal, key_lengths (int32/int64, 0, 1, skv), ADD masks (float32 / the operands'
 * dtype, with -inf) and BOOL masks broadcast through zero strides, strided views ([B,S,H,D] transposes and
 * d-stride 2), head_dim 1..256, lse, NaN in q/k/v (visible: propagates; hidden by mask/causal/length: not),
 * splits forced by a large SM count and refused by a missing workspace. Outputs, lse and workspace are
 * poisoned with NaN bytes first; the unaddressed gaps of a strided output must stay poisoned. Each case runs
 * twice, the output poisoned again in between (the tensor-core decode's self-resetting split counters).
 * The tensor-core decode merges its splits through a thread-block cluster by default; the decode cases run
 * again with LC_SDPA_DECODE_CLUSTER=0 (the last block merges), with LC_SDPA_DECODE_FOLD=0 as well (sd_combine)
 * and with LC_SDPA_DECODE=simt, and with LC_SDPA_DECODE_LEAN (the short-path decode where it applies); the path taken is checked (tensor-core decode exactly where it applies), and
 * so is the split merge each mode must have run at least once and those it turns off (lc_cuda_sdpa_last_merge).
 * Tolerance per output row i (e = 2^-24, u = the output dtype's unit roundoff):
 *   |err| <= u·|ref| + 2·(d·S_i + M_i + n_i + 16)·e·V_i,  S_i = scale·max_j Σ_c |q_ic k_jc|, M_i the largest
 *   finite |mask| the row sees, n_i its visible keys, V_i its largest |v|; lse likewise without V_i.
 * The KV append: the written rows equal the new tokens bit for bit, every other cache byte is untouched,
 * lengths advance (clamped) and overflow is set only when a token did not fit; token-by-token append + decode
 * attention (key_lengths = the cache's device lengths) equals full causal attention.
 * Timing (informational, no assertion; LC_TEST_BENCH=0 skips it): GB/s of k/v read by bf16 decode, H 32,
 * Hkv 8, D 128, sq 1, B 1/8/32/64 × Skv 1k..32k, tensor-core vs SIMT kernel, and the graph-replayed decode
 * step (KV append + attention with key_lengths, B 1, Skv ~1k) in us.
 * Skips (exit 0) when built without CUDA, when no device is present, or when LC_TEST_DEVICES excludes cuda.
 * Environment: LC_TEST_VERBOSE=1 prints each case with its path and worst error. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lightning_core/dtype.h"

#ifndef LC_TEST_CUDA
int main(void) {
    printf("test_sdpa_cuda: skipped (built without CUDA)\n");
    return 0;
}
#else
#include <cuda_runtime_api.h>

#include "check.h"

#include "backend/cuda/cuda_kernels.h"

#define EPS32 0x1p-24
static int verbose;
static int want_mma = -1; /* run_case: 1 the path must be the tensor-core decode, 0 must not, -1 either */
static int merge_seen[4]; /* run_case: launches per lc_cuda_sdpa_last_merge() kind */
static int lean_seen;     /* run_case: launches that took the short-path decode (LC_SDPA_DECODE_LEAN) */
static uint64_t rng = 0x2545f4914f6cdd1dull;

static double urand(double lo, double hi) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) * 0x1.0p-53;
}

static size_t esize(lc_dtype d) { return d == LC_DTYPE_F32 ? 4 : d == LC_DTYPE_F64 ? 8 : 2; }
/* Stores v (already representable) as dtype d at element i of buf; returns the stored value. */
static double put(lc_dtype d, void *buf, int64_t i, double v) {
    if (d == LC_DTYPE_F32) return ((float *)buf)[i] = (float)v;
    if (d == LC_DTYPE_F64) return ((double *)buf)[i] = v;
    uint16_t h = d == LC_DTYPE_BF16 ? lc_f32_to_bf16((float)v) : lc_f64_to_f16(v);
    ((uint16_t *)buf)[i] = h;
    return d == LC_DTYPE_BF16 ? lc_bf16_to_f32(h) : lc_f16_to_f32(h);
}
static double get(lc_dtype d, const void *buf, int64_t i) {
    if (d == LC_DTYPE_F32) return ((const float *)buf)[i];
    if (d == LC_DTYPE_F64) return ((const double *)buf)[i];
    const uint16_t h = ((const uint16_t *)buf)[i];
    return d == LC_DTYPE_BF16 ? lc_bf16_to_f32(h) : lc_f16_to_f32(h);
}
static double unit_of(lc_dtype d) { return d == LC_DTYPE_F32 ? EPS32 : d == LC_DTYPE_BF16 ? 0x1p-8 : 0x1p-11; }

static void *dev_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 16) != cudaSuccess) {
        fprintf(stderr, "test_sdpa_cuda: cudaMalloc(%zu) failed\n", bytes);
        exit(2);
    }
    return p;
}
static void *host_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 16);
    if (!p) exit(2);
    return p;
}

/* ---- layouts of a [B, H, S, D] operand --------------------------------------------------------------- */
enum { LAY_CONTIG = 0, LAY_BSHD, LAY_DSTRIDE2, LAY_ODD };
static int64_t layout(int lay, int64_t B, int64_t H, int64_t S, int64_t D, int64_t st[4]) {
    switch (lay) {
    case LAY_BSHD: st[0] = S * H * D, st[1] = D, st[2] = H * D, st[3] = 1; return B * S * H * D;
    case LAY_DSTRIDE2: st[0] = H * S * D * 2, st[1] = S * D * 2, st[2] = D * 2, st[3] = 2; return B * H * S * D * 2;
    case LAY_ODD: st[0] = H * S * (D + 3), st[1] = S * (D + 3), st[2] = D + 3, st[3] = 1; return B * H * S * (D + 3) + 1;
    default: st[0] = H * S * D, st[1] = S * D, st[2] = D, st[3] = 1; return B * H * S * D;
    }
}
static int64_t at(const int64_t st[4], int64_t b, int64_t h, int64_t s, int64_t d) {
    return b * st[0] + h * st[1] + s * st[2] + d * st[3];
}

/* ---- one sdpa case ------------------------------------------------------------------------------------ */
enum { MK_NONE = 0, MK_ADD32, MK_ADDDT, MK_BOOL };
enum { KL_NONE = 0, KL_I32, KL_I64 };
typedef struct sd_case {
    const char *name;
    lc_dtype dt;
    int64_t B, H, Hkv, sq, skv, D;
    int causal, mask, mask_b, mask_h; /* mask_b/h: 1 = full axis, 0 = broadcast */
    int kl, lay_q, lay_kv, lay_o, lse;
    int nan_q, nan_k, nan_v; /* 1: a NaN at a random element */
    int sms;                 /* 0: the device's; -1: none (no split); else forced */
    int no_ws;               /* pass no workspace even if one is needed */
} sd_case;

static void run_case(const sd_case *c, int dev_sms) {
    const lc_dtype dt = c->dt;
    const size_t es = esize(dt);
    const int64_t B = c->B, H = c->H, Hkv = c->Hkv, sq = c->sq, skv = c->skv, D = c->D, G = H / Hkv;
    int64_t qst[4], kst[4], vst[4], ost[4];
    const int64_t nq = layout(c->lay_q, B, H, sq, D, qst), nk = layout(c->lay_kv, B, Hkv, skv, D, kst);
    const int64_t nv = layout(c->lay_kv, B, Hkv, skv, D, vst), no = layout(c->lay_o, B, H, sq, D, ost);
    void *hq = host_alloc((size_t)nq * es), *hk = host_alloc((size_t)nk * es), *hv = host_alloc((size_t)nv * es);
    double *q = host_alloc((size_t)(B * H * sq * D) * 8), *k = host_alloc((size_t)(B * Hkv * skv * D) * 8),
           *v = host_alloc((size_t)(B * Hkv * skv * D) * 8);
    memset(hq, 0, (size_t)nq * es), memset(hk, 0, (size_t)nk * es), memset(hv, 0, (size_t)nv * es);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t s = 0; s < sq; s++)
                for (int64_t d = 0; d < D; d++)
                    q[((b * H + h) * sq + s) * D + d] = put(dt, hq, at(qst, b, h, s, d), urand(-2, 2));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hkv; h++)
            for (int64_t s = 0; s < skv; s++)
                for (int64_t d = 0; d < D; d++) {
                    k[((b * Hkv + h) * skv + s) * D + d] = put(dt, hk, at(kst, b, h, s, d), urand(-2, 2));
                    v[((b * Hkv + h) * skv + s) * D + d] = put(dt, hv, at(vst, b, h, s, d), urand(-1, 1));
                }
    if (c->nan_q) {
        const int64_t b = B - 1, h = H / 2, s = sq / 2, d = D / 2;
        q[((b * H + h) * sq + s) * D + d] = put(dt, hq, at(qst, b, h, s, d), NAN);
    }
    if (c->nan_k && skv > 0) {
        const int64_t b = 0, h = 0, s = skv - 1, d = 0; /* the last key: hidden from most causal rows */
        k[((b * Hkv + h) * skv + s) * D + d] = put(dt, hk, at(kst, b, h, s, d), NAN);
    }
    if (c->nan_v && skv > 0) {
        const int64_t b = 0, h = Hkv - 1, s = skv / 3, d = D - 1;
        v[((b * Hkv + h) * skv + s) * D + d] = put(dt, hv, at(vst, b, h, s, d), NAN);
    }
    /* mask [mb, mh, sq, skv] contiguous, zero strides on broadcast axes */
    const int64_t mb = c->mask_b ? B : 1, mh = c->mask_h ? H : 1, nm = mb * mh * sq * skv;
    const lc_dtype mdt = c->mask == MK_ADDDT ? dt : LC_DTYPE_F32; /* ADD masks; a BOOL mask is bytes */
    const size_t mes = c->mask == MK_BOOL ? 1 : esize(mdt);
    void *hm = host_alloc((size_t)nm * mes);
    double *mval = host_alloc((size_t)nm * 8);
    for (int64_t i = 0; i < nm; i++) {
        if (c->mask == MK_BOOL) {
            const int on = urand(0, 1) < 0.75;
            ((uint8_t *)hm)[i] = (uint8_t)(on ? 1 + (int)urand(0, 200) : 0);
            mval[i] = on ? 0.0 : -INFINITY;
        } else if (c->mask != MK_NONE) {
            mval[i] = put(mdt, hm, i, urand(0, 1) < 0.1 ? -INFINITY : urand(-3, 3));
        }
    }
    /* every key of row 0 (b 0, h 0) hidden by the mask: a fully masked row */
    if (c->mask != MK_NONE && nm > 0)
        for (int64_t j = 0; j < skv; j++) {
            if (c->mask == MK_BOOL) ((uint8_t *)hm)[j] = 0;
            else put(mdt, hm, j, -INFINITY);
            mval[j] = -INFINITY;
        }
    const int64_t mst[4] = {c->mask_b ? mh * sq * skv : 0, c->mask_h ? sq * skv : 0, skv, 1};
    int64_t *lens = host_alloc((size_t)B * 8);
    for (int64_t b = 0; b < B; b++) {
        lens[b] = skv;
        if (c->kl != KL_NONE) {
            lens[b] = b == 0 ? skv : b == 1 ? 1 : b == 2 ? 0 : (int64_t)urand(0, (double)skv + 1);
            if (lens[b] > skv) lens[b] = skv;
        }
    }

    /* float64 reference */
    const double scale = 1.0 / sqrt((double)D);
    const int64_t rows = B * H * sq;
    double *ref = host_alloc((size_t)(rows * D) * 8), *rlse = host_alloc((size_t)rows * 8), *tol = host_alloc((size_t)rows * 8),
           *ltol = host_alloc((size_t)rows * 8), *sc = host_alloc((size_t)(skv + 1) * 8);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < sq; i++) {
                const int64_t row = (b * H + h) * sq + i, g = h / G, L = lens[b];
                const double *qi = q + row * D;
                double mx = -INFINITY, smax = 0.0, mmax = 0.0, vmax = 0.0;
                int64_t nvis = 0;
                int nan_row = 0;
                for (int64_t j = 0; j < skv; j++) {
                    sc[j] = -INFINITY;
                    if (j >= L || (c->causal && j > i + L - sq)) continue;
                    const double *kj = k + ((b * Hkv + g) * skv + j) * D;
                    double s = 0.0, sa = 0.0;
                    for (int64_t d = 0; d < D; d++) {
                        s += qi[d] * kj[d];
                        if (isfinite(qi[d] * kj[d])) sa += fabs(qi[d] * kj[d]);
                    }
                    s *= scale;
                    if (c->mask != MK_NONE) {
                        const double mv = mval[(c->mask_b ? b : 0) * mst[0] + (c->mask_h ? h : 0) * mst[1] + i * mst[2] + j];
                        if (c->mask == MK_BOOL && mv != 0.0) continue;
                        if (c->mask != MK_BOOL) {
                            s += mv;
                            if (isfinite(mv) && fabs(mv) > mmax) mmax = fabs(mv);
                        }
                    }
                    if (isnan(s)) nan_row = 1;
                    if (s == -INFINITY) continue;
                    sc[j] = s;
                    nvis++;
                    if (scale * sa > smax) smax = scale * sa;
                    if (s > mx) mx = s;
                    for (int64_t d = 0; d < D; d++)
                        if (isfinite(v[((b * Hkv + g) * skv + j) * D + d]) && fabs(v[((b * Hkv + g) * skv + j) * D + d]) > vmax)
                            vmax = fabs(v[((b * Hkv + g) * skv + j) * D + d]);
                }
                tol[row] = 2.0 * ((double)D * smax + mmax + (double)nvis + 16.0) * EPS32 * vmax;
                ltol[row] = 2.0 * ((double)D * smax + mmax + (double)nvis + 16.0) * EPS32;
                double *o = ref + row * D;
                if (nan_row) {
                    for (int64_t d = 0; d < D; d++) o[d] = NAN;
                    rlse[row] = NAN;
                    continue;
                }
                if (nvis == 0) {
                    for (int64_t d = 0; d < D; d++) o[d] = 0.0;
                    rlse[row] = -INFINITY;
                    continue;
                }
                double l = 0.0;
                for (int64_t d = 0; d < D; d++) o[d] = 0.0;
                for (int64_t j = 0; j < skv; j++) {
                    if (sc[j] == -INFINITY) continue;
                    const double p = exp(sc[j] - mx);
                    l += p;
                    for (int64_t d = 0; d < D; d++) o[d] += p * v[((b * Hkv + g) * skv + j) * D + d];
                }
                for (int64_t d = 0; d < D; d++) o[d] /= l;
                rlse[row] = mx + log(l);
            }

    /* device run */
    void *dq = dev_alloc((size_t)nq * es), *dk = dev_alloc((size_t)nk * es), *dv = dev_alloc((size_t)nv * es);
    void *dout = dev_alloc((size_t)no * es), *dm = dev_alloc((size_t)nm * mes + 1), *dkl = dev_alloc((size_t)B * 8);
    float *dlse = dev_alloc((size_t)rows * 4);
    cudaMemcpy(dq, hq, (size_t)nq * es, cudaMemcpyHostToDevice);
    cudaMemcpy(dk, hk, (size_t)nk * es, cudaMemcpyHostToDevice);
    cudaMemcpy(dv, hv, (size_t)nv * es, cudaMemcpyHostToDevice);
    if (nm > 0) cudaMemcpy(dm, hm, (size_t)nm * mes, cudaMemcpyHostToDevice);
    if (c->kl == KL_I64) cudaMemcpy(dkl, lens, (size_t)B * 8, cudaMemcpyHostToDevice);
    if (c->kl == KL_I32) {
        int32_t *l32 = host_alloc((size_t)B * 4);
        for (int64_t b = 0; b < B; b++) l32[b] = (int32_t)lens[b];
        cudaMemcpy(dkl, l32, (size_t)B * 4, cudaMemcpyHostToDevice);
        free(l32);
    }
    cudaMemset(dout, 0xff, (size_t)no * es);
    cudaMemset(dlse, 0xff, (size_t)rows * 4);

    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = dt;
    a.batch = B, a.heads = H, a.kv_heads = Hkv, a.sq = sq, a.skv = skv, a.head_dim = D;
    a.q = dq, a.k = dk, a.v = dv, a.out = dout;
    memcpy(a.q_st, qst, sizeof qst), memcpy(a.k_st, kst, sizeof kst), memcpy(a.v_st, vst, sizeof vst);
    memcpy(a.o_st, ost, sizeof ost), memcpy(a.m_st, mst, sizeof mst);
    a.mask_kind = c->mask == MK_NONE ? LC_SDPA_MASK_NONE : c->mask == MK_BOOL ? LC_SDPA_MASK_BOOL : LC_SDPA_MASK_ADD;
    a.mask_dtype = mdt;
    a.mask = c->mask == MK_NONE ? NULL : dm;
    a.key_lengths = c->kl == KL_NONE ? NULL : dkl;
    a.key_lengths_dtype = c->kl == KL_I64 ? LC_DTYPE_I64 : LC_DTYPE_I32;
    a.causal = c->causal;
    a.scale = (float)scale;
    a.lse = c->lse ? dlse : NULL;
    const int sms = c->sms == 0 ? dev_sms : c->sms < 0 ? 0 : c->sms;
    const size_t wsb = lc_cuda_sdpa_workspace(&a, sms);
    void *ws = wsb ? dev_alloc(wsb) : NULL;
    if (ws) cudaMemset(ws, 0xff, wsb);
    const char *path = "?";
    cudaError_t lerr = lc_cuda_launch_sdpa(&a, c->no_ws ? NULL : ws, c->no_ws ? 0 : wsb, sms, 0, &path);
    cudaError_t serr = cudaDeviceSynchronize();
    if (lerr == cudaSuccess && serr == cudaSuccess) { /* again: a replay must not depend on the first run */
        cudaMemset(dout, 0xff, (size_t)no * es);
        cudaMemset(dlse, 0xff, (size_t)rows * 4);
        lerr = lc_cuda_launch_sdpa(&a, c->no_ws ? NULL : ws, c->no_ws ? 0 : wsb, sms, 0, &path);
        serr = cudaDeviceSynchronize();
    }
    if (lerr == cudaSuccess) {
        const int mk = lc_cuda_sdpa_last_merge();
        CHECK(mk >= LC_SDPA_MERGE_NONE && mk <= LC_SDPA_MERGE_COMBINE);
        if (mk >= 0 && mk < 4) merge_seen[mk]++;
    }
    if (path && strstr(path, "decode_lean")) lean_seen++;
    if (want_mma >= 0) {
        const int is_mma = strstr(path, "decode_mma") != NULL;
        CHECK(is_mma == want_mma);
        if (is_mma != want_mma) fprintf(stderr, "  %s: path %s, expected %s the tensor-core decode\n", c->name, path, want_mma ? "" : "not");
    }
    CHECK(lerr == cudaSuccess && serr == cudaSuccess);
    if (lerr != cudaSuccess || serr != cudaSuccess)
        fprintf(stderr, "  %s: launch %s, sync %s\n", c->name, cudaGetErrorString(lerr), cudaGetErrorString(serr));

    void *ho = host_alloc((size_t)no * es);
    float *hl = host_alloc((size_t)rows * 4);
    cudaMemcpy(ho, dout, (size_t)no * es, cudaMemcpyDeviceToHost);
    cudaMemcpy(hl, dlse, (size_t)rows * 4, cudaMemcpyDeviceToHost);
    const double u = unit_of(dt);
    int bad = 0;
    double worst = 0.0;
    char *touched = host_alloc((size_t)no);
    memset(touched, 0, (size_t)no);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < sq; i++) {
                const int64_t row = (b * H + h) * sq + i;
                for (int64_t d = 0; d < D; d++) {
                    const int64_t e = at(ost, b, h, i, d);
                    touched[e] = 1;
                    const double got = get(dt, ho, e), r = ref[row * D + d];
                    const double t = u * fabs(r) + tol[row];
                    const int ok = isnan(r) ? isnan(got) : (isfinite(got) && fabs(got - r) <= t);
                    if (!isnan(r) && isfinite(got) && t > 0 && fabs(got - r) / t > worst) worst = fabs(got - r) / t;
                    if (!ok && bad++ < 4)
                        fprintf(stderr, "  %s: out[%lld,%lld,%lld,%lld] got %.9g ref %.9g tol %.3g\n", c->name, (long long)b,
                                (long long)h, (long long)i, (long long)d, got, r, t);
                }
                if (c->lse) {
                    const double got = hl[row], r = rlse[row];
                    const int ok = isnan(r) ? isnan(got) : isinf(r) ? got == r : fabs(got - r) <= ltol[row] + 4 * EPS32 * fabs(r) + 1e-6;
                    if (!ok && bad++ < 4)
                        fprintf(stderr, "  %s: lse[%lld] got %.9g ref %.9g\n", c->name, (long long)row, got, r);
                }
            }
    /* unaddressed elements of the output buffer keep their poison bytes */
    for (int64_t e = 0; e < no; e++) {
        if (touched[e]) continue;
        const unsigned char *byte = (const unsigned char *)ho + e * (int64_t)es;
        for (size_t x = 0; x < es; x++)
            if (byte[x] != 0xff) {
                if (bad++ < 4) fprintf(stderr, "  %s: gap element %lld of out was written\n", c->name, (long long)e);
                break;
            }
    }
    CHECK(bad == 0);
    if (bad) fprintf(stderr, "  %s: %d bad (path %s)\n", c->name, bad, path);
    if (verbose) printf("  %-34s %-26s worst err/tol %.3f%s\n", c->name, path, worst, bad ? "  FAILED" : "");

    cudaFree(dq), cudaFree(dk), cudaFree(dv), cudaFree(dout), cudaFree(dm), cudaFree(dkl), cudaFree(dlse);
    if (ws) cudaFree(ws);
    free(hq), free(hk), free(hv), free(q), free(k), free(v), free(hm), free(mval), free(lens), free(ref), free(rlse);
    free(tol), free(ltol), free(sc), free(ho), free(hl), free(touched);
}

/* ---- KV append ---------------------------------------------------------------------------------------- */

static void kv_case(lc_dtype dt, int64_t B, int64_t Hkv, int64_t maxs, int64_t D, int64_t T, const int32_t *len0, int lay) {
    const size_t es = esize(dt);
    const int64_t ncache = B * Hkv * maxs * D;
    int64_t kst[4], vst[4];
    const int64_t nk = layout(lay, B, Hkv, T, D, kst), nv = layout(LAY_CONTIG, B, Hkv, T, D, vst);
    unsigned char *hk = host_alloc((size_t)nk * es), *hv = host_alloc((size_t)nv * es);
    for (int64_t i = 0; i < nk * (int64_t)es; i++) hk[i] = (unsigned char)urand(0, 256);
    for (int64_t i = 0; i < nv * (int64_t)es; i++) hv[i] = (unsigned char)urand(0, 256);
    unsigned char *ck = host_alloc((size_t)ncache * es), *cv = host_alloc((size_t)ncache * es);
    void *dck = dev_alloc((size_t)ncache * es), *dcv = dev_alloc((size_t)ncache * es), *dk = dev_alloc((size_t)nk * es),
         *dv = dev_alloc((size_t)nv * es);
    int32_t *dl = dev_alloc((size_t)B * 4), *dov = dev_alloc(4), hl[16], ov = 0;
    cudaMemset(dck, 0xab, (size_t)ncache * es);
    cudaMemset(dcv, 0xcd, (size_t)ncache * es);
    cudaMemset(dov, 0, 4);
    cudaMemcpy(dk, hk, (size_t)nk * es, cudaMemcpyHostToDevice);
    cudaMemcpy(dv, hv, (size_t)nv * es, cudaMemcpyHostToDevice);
    cudaMemcpy(dl, len0, (size_t)B * 4, cudaMemcpyHostToDevice);
    lc_kv_append_args a;
    memset(&a, 0, sizeof a);
    a.dtype = dt, a.batch = B, a.kv_heads = Hkv, a.max_seq = maxs, a.head_dim = D, a.tokens = T;
    a.k_cache = dck, a.v_cache = dcv, a.k_new = dk, a.v_new = dv;
    memcpy(a.kn_st, kst, sizeof kst), memcpy(a.vn_st, vst, sizeof vst);
    a.lengths = dl, a.overflow = dov;
    CHECK(lc_cuda_launch_kv_append(&a, 0) == cudaSuccess);
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    cudaMemcpy(ck, dck, (size_t)ncache * es, cudaMemcpyDeviceToHost);
    cudaMemcpy(cv, dcv, (size_t)ncache * es, cudaMemcpyDeviceToHost);
    cudaMemcpy(hl, dl, (size_t)B * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(&ov, dov, 4, cudaMemcpyDeviceToHost);
    int bad = 0, over = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t L = len0[b] < 0 ? 0 : len0[b] > maxs ? maxs : len0[b];
        if (L + T > maxs) over = 1;
        const int64_t want = L + T > maxs ? maxs : L + T;
        if (hl[b] != want) bad++;
        for (int64_t g = 0; g < Hkv; g++)
            for (int64_t s = 0; s < maxs; s++)
                for (int64_t d = 0; d < D; d++) {
                    const int64_t ce = ((b * Hkv + g) * maxs + s) * D + d, t = s - L;
                    const int written = t >= 0 && t < T;
                    for (size_t x = 0; x < es; x++) {
                        const unsigned char wk = written ? hk[at(kst, b, g, t, d) * (int64_t)es + (int64_t)x] : 0xab;
                        const unsigned char wv = written ? hv[at(vst, b, g, t, d) * (int64_t)es + (int64_t)x] : 0xcd;
                        if (ck[ce * (int64_t)es + (int64_t)x] != wk || cv[ce * (int64_t)es + (int64_t)x] != wv) bad++;
                    }
                }
    }
    CHECK(bad == 0);
    CHECK(ov == over);
    if (bad || ov != over) fprintf(stderr, "  kv_append dtype %d B=%lld T=%lld lay %d: %d bad, overflow %d want %d\n", (int)dt, (long long)B, (long long)T, lay, bad, ov, over);
    if (verbose) printf("  kv_append dtype %d B %lld Hkv %lld max %lld D %lld T %lld: %s\n", (int)dt, (long long)B, (long long)Hkv,
                        (long long)maxs, (long long)D, (long long)T, bad ? "FAILED" : "ok");
    cudaFree(dck), cudaFree(dcv), cudaFree(dk), cudaFree(dv), cudaFree(dl), cudaFree(dov);
    free(hk), free(hv), free(ck), free(cv);
}

/* Appending token by token and attending (sq = 1, causal, key_lengths = the cache's lengths) equals full
 * causal attention over the sequence. float32, B = 2, H = 4, Hkv = 2, D = 64, S = 37. */
static void kv_decode_case(int dev_sms) {
    const int64_t B = 2, H = 4, Hkv = 2, S = 37, D = 64, maxs = 48, G = H / Hkv;
    const size_t nq = (size_t)(B * H * S * D), nkv = (size_t)(B * Hkv * S * D), nc = (size_t)(B * Hkv * maxs * D);
    float *q = host_alloc(nq * 4), *k = host_alloc(nkv * 4), *v = host_alloc(nkv * 4), *out = host_alloc(nq * 4);
    for (size_t i = 0; i < nq; i++) q[i] = (float)urand(-2, 2);
    for (size_t i = 0; i < nkv; i++) k[i] = (float)urand(-2, 2), v[i] = (float)urand(-1, 1);
    float *dq = dev_alloc(nq * 4), *dk = dev_alloc(nkv * 4), *dv = dev_alloc(nkv * 4), *dout = dev_alloc(nq * 4);
    float *ck = dev_alloc(nc * 4), *cv = dev_alloc(nc * 4);
    int32_t *dl = dev_alloc((size_t)B * 4);
    cudaMemcpy(dq, q, nq * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dk, k, nkv * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dv, v, nkv * 4, cudaMemcpyHostToDevice);
    cudaMemset(dout, 0xff, nq * 4);
    cudaMemset(ck, 0xff, nc * 4); /* NaN past the lengths: must never be read */
    cudaMemset(cv, 0xff, nc * 4);
    cudaMemset(dl, 0, (size_t)B * 4);
    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = LC_DTYPE_F32, a.batch = B, a.heads = H, a.kv_heads = Hkv, a.sq = 1, a.skv = maxs, a.head_dim = D;
    a.k = ck, a.v = cv;
    const int64_t cst[4] = {Hkv * maxs * D, maxs * D, D, 1}, qst[4] = {H * S * D, S * D, D, 1};
    memcpy(a.k_st, cst, sizeof cst), memcpy(a.v_st, cst, sizeof cst), memcpy(a.q_st, qst, sizeof qst), memcpy(a.o_st, qst, sizeof qst);
    a.key_lengths = dl, a.key_lengths_dtype = LC_DTYPE_I32, a.causal = 1, a.scale = (float)(1.0 / sqrt((double)D));
    const size_t wsb = lc_cuda_sdpa_workspace(&a, dev_sms);
    void *ws = wsb ? dev_alloc(wsb) : NULL;
    int errs = 0;
    for (int64_t t = 0; t < S; t++) {
        lc_kv_append_args ka;
        memset(&ka, 0, sizeof ka);
        ka.dtype = LC_DTYPE_F32, ka.batch = B, ka.kv_heads = Hkv, ka.max_seq = maxs, ka.head_dim = D, ka.tokens = 1;
        ka.k_cache = ck, ka.v_cache = cv, ka.k_new = dk + t * D, ka.v_new = dv + t * D;
        const int64_t nst[4] = {Hkv * S * D, S * D, D, 1};
        memcpy(ka.kn_st, nst, sizeof nst), memcpy(ka.vn_st, nst, sizeof nst);
        ka.lengths = dl;
        errs += lc_cuda_launch_kv_append(&ka, 0) != cudaSuccess;
        a.q = dq + t * D, a.out = dout + t * D;
        const char *path = NULL;
        errs += lc_cuda_launch_sdpa(&a, ws, wsb, dev_sms, 0, &path) != cudaSuccess;
    }
    CHECK(errs == 0 && cudaDeviceSynchronize() == cudaSuccess);
    cudaMemcpy(out, dout, nq * 4, cudaMemcpyDeviceToHost);
    int bad = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < S; i++) {
                const float *qi = q + ((b * H + h) * S + i) * D;
                double sc[64], mx = -INFINITY, l = 0.0, smax = 0.0;
                for (int64_t j = 0; j <= i; j++) {
                    const float *kj = k + ((b * Hkv + h / G) * S + j) * D;
                    double s = 0.0, sa = 0.0;
                    for (int64_t d = 0; d < D; d++) s += (double)qi[d] * kj[d], sa += fabs((double)qi[d] * kj[d]);
                    sc[j] = s / sqrt((double)D);
                    if (sa / sqrt((double)D) > smax) smax = sa / sqrt((double)D);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int64_t j = 0; j <= i; j++) l += exp(sc[j] - mx);
                for (int64_t d = 0; d < D; d++) {
                    double r = 0.0;
                    for (int64_t j = 0; j <= i; j++) r += exp(sc[j] - mx) * v[((b * Hkv + h / G) * S + j) * D + d];
                    r /= l;
                    const double got = out[((b * H + h) * S + i) * D + d];
                    if (!(fabs(got - r) <= 2.0 * ((double)D * smax + (double)(i + 1) + 16.0) * EPS32 + EPS32)) {
                        if (bad++ < 4) fprintf(stderr, "  kv decode [%lld,%lld,%lld,%lld] got %.9g ref %.9g\n", (long long)b, (long long)h, (long long)i, (long long)d, got, r);
                    }
                }
            }
    CHECK(bad == 0);
    if (verbose) printf("  kv append + decode, %lld steps: %s\n", (long long)S, bad ? "FAILED" : "ok");
    cudaFree(dq), cudaFree(dk), cudaFree(dv), cudaFree(dout), cudaFree(ck), cudaFree(cv), cudaFree(dl);
    if (ws) cudaFree(ws);
    free(q), free(k), free(v), free(out);
}

/* ---- timing (informational) -------------------------------------------------------------------------- */

static void set_env(const char *name, const char *value) {
    if (value) setenv(name, value, 1);
    else unsetenv(name);
}
static void set_mode(const char *decode, const char *fold, const char *cluster) {
    set_env("LC_SDPA_DECODE", decode);
    set_env("LC_SDPA_DECODE_FOLD", fold);
    set_env("LC_SDPA_DECODE_CLUSTER", cluster);
}
/* The decode merge modes the benches compare: LC_SDPA_DECODE, _FOLD, _CLUSTER. */
#define MODES 4
static const char *const bench_modes[MODES][3] = {{NULL, NULL, NULL}, {NULL, NULL, "0"}, {NULL, "0", "0"}, {"simt", NULL, NULL}};
static const char *const bench_names[MODES] = {"mma+cluster", "mma+fold", "mma+combine", "simt"};

/* Mean of n back-to-back launches after 3 warm-ups, in microseconds; -1 on a launch error. */
static double time_sdpa(const lc_sdpa_args *a, void *ws, size_t wsb, int sms, int n, const char **path) {
    for (int i = 0; i < 3; i++)
        if (lc_cuda_launch_sdpa(a, ws, wsb, sms, 0, path) != cudaSuccess) return -1.0;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    cudaEventRecord(e0, 0);
    for (int i = 0; i < n; i++) lc_cuda_launch_sdpa(a, ws, wsb, sms, 0, path);
    cudaEventRecord(e1, 0);
    float ms = 0.0f;
    const int ok = cudaEventSynchronize(e1) == cudaSuccess && cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess;
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    return ok ? 1000.0 * ms / n : -1.0;
}

/* bf16 decode H 32, Hkv 8, D 128, sq 1: GB/s of k/v read; tensor-core kernel (partials merged by the last
 * block / by sd_combine) and the SIMT kernel. */
static void bench_decode(int sms) {
    const int64_t H = 32, Hkv = 8, D = 128;
    const int64_t Bs[4] = {1, 8, 32, 64}, Ss[4] = {1024, 4096, 16384, 32768};
    printf("bench decode bf16 H=32 Hkv=8 D=128 sq=1 (GB/s of k/v read; informational)\n");
    for (int bi = 0; bi < 4; bi++)
        for (int si = 0; si < 4; si++) {
            const int64_t B = Bs[bi], S = Ss[si];
            const size_t kvb = (size_t)(B * Hkv * S * D) * 2, qb = (size_t)(B * H * D) * 2;
            void *k = NULL, *v = NULL, *q = NULL, *o = NULL;
            if (cudaMalloc(&k, kvb) != cudaSuccess || cudaMalloc(&v, kvb) != cudaSuccess || cudaMalloc(&q, qb) != cudaSuccess ||
                cudaMalloc(&o, qb) != cudaSuccess) {
                (void)cudaGetLastError();
                printf("  B=%lld Skv=%lld: no memory, skipped\n", (long long)B, (long long)S);
                cudaFree(k), cudaFree(v), cudaFree(q), cudaFree(o);
                continue;
            }
            cudaMemset(k, 0x3c, kvb), cudaMemset(v, 0x3c, kvb), cudaMemset(q, 0x3c, qb);
            lc_sdpa_args a;
            memset(&a, 0, sizeof a);
            a.dtype = LC_DTYPE_BF16, a.batch = B, a.heads = H, a.kv_heads = Hkv, a.sq = 1, a.skv = S, a.head_dim = D;
            a.q = q, a.k = k, a.v = v, a.out = o, a.scale = 0.08838834764831845f;
            const int64_t qst[4] = {H * D, D, D, 1}, kst[4] = {Hkv * S * D, S * D, D, 1};
            memcpy(a.q_st, qst, sizeof qst), memcpy(a.o_st, qst, sizeof qst);
            memcpy(a.k_st, kst, sizeof kst), memcpy(a.v_st, kst, sizeof kst);
            const size_t wsb = lc_cuda_sdpa_workspace(&a, sms);
            void *ws = NULL;
            if (wsb && cudaMalloc(&ws, wsb) != cudaSuccess) ws = NULL;
            const int n = B * S >= 8 * 32768 ? 10 : 50;
            double us[MODES];
            const char *path = "?";
            for (int mi = 0; mi < MODES; mi++) {
                set_mode(bench_modes[mi][0], bench_modes[mi][1], bench_modes[mi][2]);
                us[mi] = time_sdpa(&a, ws, ws ? wsb : 0, sms, n, mi == 0 ? &path : NULL);
            }
            set_mode(NULL, NULL, NULL);
            const double gb = 2.0 * (double)kvb / 1e9;
            printf("  B=%-3lld Skv=%-6lld", (long long)B, (long long)S);
            for (int mi = 0; mi < MODES; mi++) printf(" | %s %7.1f us %5.0f GB/s", bench_names[mi], us[mi], gb / (us[mi] * 1e-6));
            printf(" (%s)\n", path);
            cudaFree(k), cudaFree(v), cudaFree(q), cudaFree(o);
            if (ws) cudaFree(ws);
        }
}

/* One decode step captured in a CUDA graph (KV append of 1 token + causal attention over the cache with
 * key_lengths = the device lengths), bf16, B 1, H 32, Hkv 8, D 128, lengths 1000..1190; us per replay. */
static void bench_graph_step(int sms) {
    const int64_t B = 1, H = 32, Hkv = 8, D = 128, maxs = 1280;
    const size_t cb = (size_t)(B * Hkv * maxs * D) * 2, nb = (size_t)(B * Hkv * D) * 2, qb = (size_t)(B * H * D) * 2;
    void *ck = dev_alloc(cb), *cv = dev_alloc(cb), *kn = dev_alloc(nb), *vn = dev_alloc(nb), *q = dev_alloc(qb), *o = dev_alloc(qb);
    int32_t *len = dev_alloc(4);
    cudaMemset(ck, 0x3c, cb), cudaMemset(cv, 0x3c, cb), cudaMemset(kn, 0x3c, nb), cudaMemset(vn, 0x3c, nb);
    cudaMemset(q, 0x3c, qb);
    lc_kv_append_args ka;
    memset(&ka, 0, sizeof ka);
    ka.dtype = LC_DTYPE_BF16, ka.batch = B, ka.kv_heads = Hkv, ka.max_seq = maxs, ka.head_dim = D, ka.tokens = 1;
    ka.k_cache = ck, ka.v_cache = cv, ka.k_new = kn, ka.v_new = vn, ka.lengths = len;
    const int64_t nst[4] = {Hkv * D, D, D, 1};
    memcpy(ka.kn_st, nst, sizeof nst), memcpy(ka.vn_st, nst, sizeof nst);
    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = LC_DTYPE_BF16, a.batch = B, a.heads = H, a.kv_heads = Hkv, a.sq = 1, a.skv = maxs, a.head_dim = D;
    a.q = q, a.k = ck, a.v = cv, a.out = o, a.scale = 0.08838834764831845f, a.causal = 1;
    a.key_lengths = len, a.key_lengths_dtype = LC_DTYPE_I32;
    const int64_t qst[4] = {H * D, D, D, 1}, cst[4] = {Hkv * maxs * D, maxs * D, D, 1};
    memcpy(a.q_st, qst, sizeof qst), memcpy(a.o_st, qst, sizeof qst), memcpy(a.k_st, cst, sizeof cst), memcpy(a.v_st, cst, sizeof cst);
    const size_t wsb = lc_cuda_sdpa_workspace(&a, sms);
    void *ws = wsb ? dev_alloc(wsb) : NULL;
    cudaStream_t st;
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    printf("bench graph decode step bf16 B=1 H=32 Hkv=8 D=128 Skv 1000..1190 (KV append + attention; us per replay)\n");
    for (int mi = 0; mi < MODES; mi++) {
        set_mode(bench_modes[mi][0], bench_modes[mi][1], bench_modes[mi][2]);
        const int32_t l0 = 1000;
        cudaMemcpy(len, &l0, 4, cudaMemcpyHostToDevice);
        cudaGraph_t g = NULL;
        cudaGraphExec_t ge = NULL;
        const char *path = "?";
        int ok = cudaStreamBeginCapture(st, cudaStreamCaptureModeRelaxed) == cudaSuccess;
        if (ok) {
            ok &= lc_cuda_launch_kv_append(&ka, st) == cudaSuccess;
            ok &= lc_cuda_launch_sdpa(&a, ws, wsb, sms, st, &path) == cudaSuccess;
            ok &= cudaStreamEndCapture(st, &g) == cudaSuccess;
        }
        ok = ok && cudaGraphInstantiate(&ge, g, 0) == cudaSuccess;
        float ms = 0.0f;
        if (ok) {
            for (int i = 0; i < 10; i++) cudaGraphLaunch(ge, st);
            cudaEvent_t e0, e1;
            cudaEventCreate(&e0), cudaEventCreate(&e1);
            cudaEventRecord(e0, st);
            for (int i = 0; i < 180; i++) cudaGraphLaunch(ge, st);
            cudaEventRecord(e1, st);
            ok = cudaEventSynchronize(e1) == cudaSuccess && cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess;
            cudaEventDestroy(e0), cudaEventDestroy(e1);
        }
        int32_t lf = 0;
        cudaMemcpy(&lf, len, 4, cudaMemcpyDeviceToHost);
        if (ok) printf("  %-12s %7.2f us per step (%s; length %d after the replays, want 1190)\n", bench_names[mi], 1000.0 * ms / 180, path, (int)lf);
        else printf("  %-12s capture/replay failed (%s)\n", bench_names[mi], cudaGetErrorString(cudaGetLastError()));
        if (ge) cudaGraphExecDestroy(ge);
        if (g) cudaGraphDestroy(g);
    }
    set_mode(NULL, NULL, NULL);
    cudaStreamDestroy(st);
    cudaFree(ck), cudaFree(cv), cudaFree(kn), cudaFree(vn), cudaFree(q), cudaFree(o), cudaFree(len);
    if (ws) cudaFree(ws);
}

/* Whether the tensor-core decode applies to a case (16-bit, sq <= 16, k/v d-stride 1 with 16-byte rows). */
static int mma_applies(const sd_case *c) {
    return (c->dt == LC_DTYPE_F16 || c->dt == LC_DTYPE_BF16) && c->sq <= 16 && c->D % 8 == 0 && c->lay_kv != LAY_ODD &&
           c->lay_kv != LAY_DSTRIDE2;
}

int main(void) {
    const char *only = getenv("LC_TEST_DEVICES");
    if (only && !strstr(only, "cuda")) {
        printf("test_sdpa_cuda: skipped (LC_TEST_DEVICES=%s)\n", only);
        return 0;
    }
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        (void)cudaGetLastError();
        printf("test_sdpa_cuda: skipped (no CUDA device)\n");
        return 0;
    }
    verbose = getenv("LC_TEST_VERBOSE") != NULL;
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    set_env("LC_SDPA_DECODE_LEAN", "0"); /* the short-path decode (on by default for short caches) in its own section */
    const lc_dtype F32 = LC_DTYPE_F32, F16 = LC_DTYPE_F16, BF16 = LC_DTYPE_BF16;
    /* name, dt, B, H, Hkv, sq, skv, D, causal, mask, mask_b, mask_h, kl, lay_q, lay_kv, lay_o, lse, nan q/k/v, sms, no_ws */
    const sd_case cases[] = {
        {"f32 basic", F32, 2, 3, 3, 65, 65, 64, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"f32 causal sq<skv gqa", F32, 2, 4, 2, 63, 129, 48, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"f32 causal sq>skv", F32, 1, 2, 1, 100, 37, 32, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"f32 d1 odd layout", F32, 1, 2, 2, 33, 70, 1, 0, 0, 0, 0, 0, LAY_ODD, LAY_ODD, LAY_ODD, 1, 0, 0, 0, 0, 0},
        {"f32 d7 dstride2 add32", F32, 2, 2, 1, 17, 90, 7, 0, MK_ADD32, 1, 1, 0, LAY_DSTRIDE2, LAY_DSTRIDE2, LAY_DSTRIDE2, 1, 0, 0, 0, 0, 0},
        {"f32 bshd bool kl32 causal", F32, 4, 4, 2, 40, 77, 128, 1, MK_BOOL, 1, 0, KL_I32, LAY_BSHD, LAY_BSHD, LAY_BSHD, 1, 0, 0, 0, 0, 0},
        {"f32 d256 kl64 split", F32, 4, 2, 1, 70, 1000, 256, 0, 0, 0, 0, KL_I64, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"f32 d200 causal forced split", F32, 1, 1, 1, 129, 3000, 200, 1, MK_ADD32, 0, 1, 0, 0, LAY_BSHD, 0, 1, 0, 0, 0, 1000, 0},
        {"f32 split refused (no ws)", F32, 1, 2, 2, 129, 2000, 64, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1000, 1},
        {"f32 nan q/k/v causal", F32, 1, 2, 1, 50, 50, 16, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0},
        {"f32 nan v bool", F32, 1, 2, 2, 30, 45, 20, 0, MK_BOOL, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0},
        {"bf16 basic gqa", BF16, 2, 8, 2, 65, 200, 128, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"f16 causal adddt bshd", F16, 2, 4, 4, 33, 33, 64, 1, MK_ADDDT, 0, 1, 0, LAY_BSHD, LAY_BSHD, LAY_BSHD, 1, 0, 0, 0, 0, 0},
        {"bf16 d96 dstride2 kl32", BF16, 3, 2, 1, 18, 150, 96, 1, 0, 0, 0, KL_I32, LAY_DSTRIDE2, LAY_DSTRIDE2, 0, 1, 0, 0, 0, 0, 0},
        {"f32 d61 TR8 kl32", F32, 2, 1, 1, 1030, 4100, 61, 0, 0, 0, 0, KL_I32, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"f32 d64 TR8 causal bshd", F32, 1, 1, 1, 1024, 8200, 64, 1, 0, 0, 0, 0, LAY_BSHD, LAY_BSHD, 0, 1, 0, 0, 0, 0, 0},
        {"f32 no-split path", F32, 1, 1, 1, 300, 2000, 64, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, -1, 0},
        /* decode (sq <= 16) */
        {"dec f32 sq1 gqa", F32, 2, 8, 2, 1, 1000, 128, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"dec bf16 sq1 kl32 4k", BF16, 3, 32, 8, 1, 4100, 128, 0, 0, 0, 0, KL_I32, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"dec f16 sq4 causal kl64", F16, 4, 4, 1, 4, 300, 64, 1, 0, 0, 0, KL_I64, LAY_BSHD, LAY_BSHD, LAY_BSHD, 1, 0, 0, 0, 0, 0},
        {"dec bf16 sq16 mqa bool", BF16, 1, 6, 1, 16, 500, 80, 1, MK_BOOL, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"dec f32 sq3 d5 add odd", F32, 2, 3, 3, 3, 129, 5, 0, MK_ADD32, 1, 0, 0, LAY_ODD, LAY_ODD, LAY_ODD, 1, 0, 0, 0, 0, 0},
        {"dec f32 d256 dstride2", F32, 1, 2, 2, 2, 700, 256, 1, 0, 0, 0, 0, LAY_DSTRIDE2, LAY_DSTRIDE2, 0, 1, 0, 0, 0, 0, 0},
        {"dec bf16 d256 adddt", BF16, 2, 4, 2, 1, 1500, 256, 0, MK_ADDDT, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"dec nan k/v causal", F32, 1, 4, 2, 2, 200, 32, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0},
        {"dec skv0", F32, 2, 2, 1, 1, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"dec no ws", BF16, 1, 4, 1, 1, 3000, 64, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},
        {"f32 skv0", F32, 1, 2, 1, 40, 0, 64, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        /* tensor-core decode (16-bit, d % 8 == 0, k/v rows 16-byte aligned): every feature */
        {"mma bf16 sq1 gqa4 kl32 4k", BF16, 4, 32, 8, 1, 4100, 128, 0, 0, 0, 0, KL_I32, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"mma f16 sq1 g1 bshd", F16, 2, 8, 8, 1, 1000, 64, 0, 0, 0, 0, 0, LAY_BSHD, LAY_BSHD, LAY_BSHD, 1, 0, 0, 0, 0, 0},
        {"mma bf16 sq4 causal kl64 R16", BF16, 3, 8, 2, 4, 700, 128, 1, 0, 0, 0, KL_I64, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"mma f16 sq16 causal adddt R64", F16, 2, 4, 1, 16, 300, 64, 1, MK_ADDDT, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"mma bf16 d32 bool kl nan-v", BF16, 4, 6, 2, 3, 500, 32, 0, MK_BOOL, 1, 1, KL_I32, 0, 0, 0, 1, 0, 0, 1, 0, 0},
        {"mma f16 d256 causal add32", F16, 2, 4, 2, 2, 900, 256, 1, MK_ADD32, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"mma bf16 d256 sq1 kl64", BF16, 3, 16, 4, 1, 2500, 256, 0, 0, 0, 0, KL_I64, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"mma f16 d40 q odd, o dstride2", F16, 2, 5, 1, 1, 2000, 40, 0, 0, 0, 0, 0, LAY_ODD, 0, LAY_DSTRIDE2, 1, 0, 0, 0, 0, 0},
        {"mma bf16 d80 forced split 150", BF16, 1, 2, 1, 2, 19200, 80, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1000, 0},
        {"mma bf16 d64 nan q/k/v causal", BF16, 1, 4, 2, 2, 260, 64, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0},
        {"mma f16 d128 nan v add mask", F16, 2, 4, 4, 1, 333, 128, 0, MK_ADD32, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0},
        {"mma bf16 mqa R32 sq1", BF16, 2, 32, 1, 1, 2000, 128, 0, 0, 0, 0, 0, LAY_BSHD, 0, 0, 1, 0, 0, 0, 0, 0},
        {"mma f16 d128 causal sq1 kl32", F16, 5, 8, 2, 1, 1500, 128, 1, 0, 0, 0, KL_I32, 0, LAY_BSHD, 0, 1, 0, 0, 0, 0, 0},
        {"mma bf16 sq1 no split", BF16, 2, 4, 2, 1, 3000, 96, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, -1, 0},
        {"mma bf16 skv0", BF16, 2, 8, 2, 1, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"mma f16 skv 50 (one tile)", F16, 3, 8, 4, 5, 50, 64, 1, MK_BOOL, 0, 0, KL_I64, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        /* splits merged in clusters of 16 and 8 on any sm_90 (a few groups): lengths skv, 1, 0, random */
        {"mma bf16 mqa cluster 16 kl32", BF16, 4, 8, 1, 1, 1000, 128, 0, 0, 0, 0, KL_I32, 0, 0, 0, 1, 0, 0, 0, 0, 0},
        {"mma f16 gqa4 sq2 causal cluster 8 kl64", F16, 3, 8, 2, 2, 500, 64, 1, 0, 0, 0, KL_I64, LAY_BSHD, 0, 0, 1, 0, 0, 0, 0, 0},
    };

    printf("test_sdpa_cuda: %d SMs\n", sms);
    const size_t ncases = sizeof cases / sizeof cases[0];
    set_mode(NULL, NULL, NULL);
    memset(merge_seen, 0, sizeof merge_seen);
    for (size_t i = 0; i < ncases; i++) {
        want_mma = mma_applies(&cases[i]);
        run_case(&cases[i], sms);
    }
    CHECK(merge_seen[LC_SDPA_MERGE_CLUSTER] > 0); /* the default merge of the tensor-core decode ran */
    /* the 16-bit decode cases again: split partials merged by the last block (no clusters), by sd_combine,
     * then the SIMT kernel */
    const char *modes[3][3] = {{NULL, NULL, "0"}, {NULL, "0", "0"}, {"simt", NULL, NULL}};
    for (int mi = 0; mi < 3; mi++) {
        set_mode(modes[mi][0], modes[mi][1], modes[mi][2]);
        if (verbose)
            printf("  -- LC_SDPA_DECODE=%s LC_SDPA_DECODE_FOLD=%s LC_SDPA_DECODE_CLUSTER=%s\n",
                   modes[mi][0] ? modes[mi][0] : "(unset)", modes[mi][1] ? modes[mi][1] : "(unset)",
                   modes[mi][2] ? modes[mi][2] : "(unset)");
        memset(merge_seen, 0, sizeof merge_seen);
        for (size_t i = 0; i < ncases; i++) {
            if (cases[i].sq > 16 || cases[i].dt == F32) continue;
            want_mma = mi < 2 ? mma_applies(&cases[i]) : 0;
            run_case(&cases[i], sms);
        }
        /* each mode's merge ran, and none of the modes it turns off */
        CHECK(merge_seen[LC_SDPA_MERGE_CLUSTER] == 0);
        CHECK(mi != 0 || merge_seen[LC_SDPA_MERGE_FOLD] > 0);
        CHECK(mi != 1 || (merge_seen[LC_SDPA_MERGE_FOLD] == 0 && merge_seen[LC_SDPA_MERGE_COMBINE] > 0));
        CHECK(mi != 2 || merge_seen[LC_SDPA_MERGE_FOLD] == 0);
    }
    set_mode(NULL, NULL, NULL);
    /* the 16-bit decode cases with the short-path decode wherever it applies (LC_SDPA_DECODE_LEAN=N: caches of at most
     * N keys; one query row, head_dim 64, GQA group <= 8, no mask or window), the others on their own paths */
    set_env("LC_SDPA_DECODE_LEAN", "1000000");
    for (int form = 0; form < 2; form++) { /* a block a head, then a block a kv head (LC_SDPA_DECODE_LEAN_KV=1) */
        set_env("LC_SDPA_DECODE_LEAN_KV", form ? "1" : NULL);
        lean_seen = 0;
        want_mma = -1;
        for (size_t i = 0; i < ncases; i++)
            if (cases[i].sq <= 16 && cases[i].dt != F32) run_case(&cases[i], sms);
        kv_decode_case(sms);
        CHECK(lean_seen > 0);
    }
    set_env("LC_SDPA_DECODE_LEAN_KV", NULL);
    set_env("LC_SDPA_DECODE_LEAN", "0");
    want_mma = -1;

    const int32_t l1[4] = {0, 3, 14, 16}, l2[3] = {0, 5, 2}, l3[2] = {-3, 100};
    kv_case(LC_DTYPE_F32, 4, 2, 16, 64, 3, l1, LAY_BSHD);      /* overflow on b = 2, 3 */
    kv_case(LC_DTYPE_BF16, 3, 3, 20, 40, 7, l2, LAY_CONTIG);   /* 16-byte units, no overflow */
    kv_case(LC_DTYPE_F16, 3, 1, 9, 3, 2, l2, LAY_DSTRIDE2);    /* element copies */
    kv_case(LC_DTYPE_F64, 2, 2, 8, 5, 1, l3, LAY_CONTIG);      /* clamped lengths, overflow */
    kv_case(LC_DTYPE_BF16, 3, 8, 64, 128, 1, l2, LAY_BSHD);   /* one-launch append (decode step) */
    kv_case(LC_DTYPE_F32, 4, 2, 16, 64, 1, l1, LAY_CONTIG);    /* one launch, overflow on b = 3 */
    kv_case(LC_DTYPE_F16, 2, 4, 600, 64, 520, l3, LAY_CONTIG); /* two launches (large), overflow on b = 1 */
    kv_decode_case(sms);
    const char *bench = getenv("LC_TEST_BENCH");
    if (!bench || strcmp(bench, "0") != 0) {
        bench_decode(sms);
        bench_graph_step(sms);
    }

    printf("test_sdpa_cuda: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
#endif
