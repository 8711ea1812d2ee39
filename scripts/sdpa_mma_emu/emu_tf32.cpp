// emu_tf32.cpp — host emulation of the float32 3xTF32 sdpa kernel (src/backend/cuda/sdpa_tf32.cu) for machines
// without a GPU: every lane a std::thread, warp collectives and mma.sync m16n8k8 .tf32 per the PTX fragment
// layouts (prims.h, prims_tf32.h), so a fragment, masking, split or pipeline-indexing mistake shows as a
// mismatch against a float64 reference (exact accumulation: the card's accumulation drift is not emulated; the
// GPU tests in tests/python/test_sdpa_tf32.py check that; the bound per element is (4e-6 + 2·e_s)·Σp|v|/l +
// 2e-6·|out|, e_s = 2.5·2^-21·max_j Σ_d |q_d k_jd|·|scale|, the products' error moving the scores). The variants of sdpa_tf32.cu's list are mirrored in
// launch() below (keep them in step). Build and run: scripts/sdpa_mma_emu/run_tf32.sh [case|-1] [variant]
// (slow: small shapes only; -1 runs the cases of the variant's head_dim). EMU_QT_MAJOR=1: tile-major order.
#include "kern_tf32.h"
#include <cstdio>
#include <cstdlib>
static uint64_t rng = 4242;
static double rnd(double lo, double hi) { rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; return lo + (hi - lo) * ((double)(rng >> 11) / 9007199254740992.0); }
struct Case { const char *name; int B, H, G, Sq, Skv, D, causal, klk; int64_t kl[4]; int lse; double qr, sm; int bad_v, bad_q, bad_k; };
template <int D, int BN, int NW, int MT, bool QREG> void launch1(lc_sdpa_mma_params p, int64_t bh) {
    constexpr int NT = NW * 32;
    p.n_qt = (p.sq + NW * 16 * MT - 1) / (NW * 16 * MT);
    p.bh = bh, p.qt_major = getenv("EMU_QT_MAJOR") != nullptr;
    for (int64_t blk = 0; blk < p.n_qt * bh; blk++) {
        std::barrier<> bb(NT); block_bar = &bb;
        for (int w = 0; w < NW; w++) warps[w].bar = new std::barrier<>(32);
        std::vector<std::thread> th;
        for (int t = 0; t < NT; t++) th.emplace_back([&, t] { threadIdx.x = t; blockIdx.x = (unsigned)blk; my_warp = t >> 5; my_lane = t & 31;
            lc_sdpa_tf32::sdpa_tf32_kernel<D, BN, NW, MT, QREG, 1>(p); });
        for (auto &x : th) x.join();
        for (int w = 0; w < NW; w++) delete warps[w].bar;
    }
}
static int g_var = 0;
static const int var_d[] = {64, 64, 128, 128, 128, 64, 64, 64};
static void launch(int D, lc_sdpa_mma_params p, int64_t bh) {
    if (var_d[g_var] != D) abort();
    switch (g_var) {
        case 0: return launch1<64, 64, 4, 1, true>(p, bh);
        case 1: return launch1<64, 64, 4, 1, false>(p, bh);
        case 2: return launch1<128, 32, 4, 1, false>(p, bh);
        case 3: return launch1<128, 32, 8, 1, false>(p, bh);
        case 4: return launch1<128, 64, 8, 1, false>(p, bh);
        case 5: return launch1<64, 32, 4, 1, false>(p, bh);
        case 6: return launch1<64, 32, 4, 2, false>(p, bh);
        case 7: return launch1<64, 64, 4, 2, false>(p, bh);
    }
    abort();
}
int run(const Case &c) {
    const int64_t B = c.B, H = c.H, G = c.G, Sq = c.Sq, Skv = c.Skv, D = c.D;
    const int64_t qn = B * H * Sq * D, kvn = B * G * Skv * D;
    std::vector<float> hq(qn), hk(kvn), hv(kvn), ho(qn, NAN), hl(B * H * Sq, NAN);
    for (auto &x : hq) x = (float)rnd(-c.qr, c.qr);
    for (auto &x : hk) x = (float)rnd(-c.qr, c.qr);
    for (auto &x : hv) x = (float)rnd(-1, 1);
    /* non-finite inputs (the kernel's CUDA-core tiles): v row bad_v NaN in column 3, row bad_v + 1 +inf in column 5
     * (hidden from the rows before it under causal); q row bad_q of head 0 NaN in column 7; k row bad_k of kv head
     * 0: -inf in column 0, zeros elsewhere (scores -inf or +inf by q's sign there) */
    for (int64_t b = 0; b < B; b++) for (int64_t g = 0; g < G; g++) {
        const int64_t r = (b * G + g) * Skv * D;
        if (c.bad_v >= 0) hv[r + c.bad_v * D + 3] = NAN, hv[r + (c.bad_v + 1) * D + 5] = INFINITY;
        if (c.bad_k >= 0 && g == 0) { for (int64_t d = 0; d < D; d++) hk[r + c.bad_k * D + d] = 0.f; hk[r + c.bad_k * D] = -INFINITY; }
    }
    if (c.bad_q >= 0) for (int64_t b = 0; b < B; b++) hq[(b * H * Sq + c.bad_q) * D + 7] = NAN;
    int32_t kl32[4]; for (int i = 0; i < 4; i++) kl32[i] = (int32_t)c.kl[i];
    lc_sdpa_mma_params p{};
    p.q = (const uint16_t *)hq.data(), p.k = (const uint16_t *)hk.data(), p.v = (const uint16_t *)hv.data();
    p.out = (uint16_t *)ho.data(), p.lse = c.lse ? hl.data() : nullptr;
    p.key_lengths = c.klk == 0 ? nullptr : c.klk == 1 ? (const void *)kl32 : (const void *)c.kl; p.kl64 = c.klk == 2;
    p.q_sb = H * Sq * D, p.q_sh = Sq * D, p.q_ss = D, p.k_sb = G * Skv * D, p.k_sh = Skv * D, p.k_ss = D;
    p.v_sb = p.k_sb, p.v_sh = p.k_sh, p.v_ss = D, p.o_sb = p.q_sb, p.o_sh = p.q_sh, p.o_ss = D;
    p.heads = H, p.group = H / G, p.sq = Sq, p.skv = Skv, p.causal = c.causal, p.window = 0;
    const float scale = (float)(c.sm / sqrt((double)D)); p.scale_log2 = scale * 1.4426950408889634f;
    launch(D, p, B * H);
    int64_t bad = 0;
    std::vector<double> sc(Skv), ref(D), mag(D);
    for (int64_t b = 0; b < B; b++) { const int64_t L = c.klk ? std::clamp<int64_t>(c.kl[b], 0, Skv) : Skv;
      for (int64_t h = 0; h < H; h++) { const int64_t g = h / (H / G);
        for (int64_t i = 0; i < Sq; i++) {
            auto vis = [&](int64_t j) { return j < L && (!c.causal || j <= i + L - Sq); };
            const float *qr = &hq[((b * H + h) * Sq + i) * D];
            double m = -INFINITY, es = 0; bool nan_s = false;
            for (int64_t j = 0; j < Skv; j++) { if (!vis(j)) continue; const float *kr = &hk[((b * G + g) * Skv + j) * D];
                double s = 0, sm = 0; for (int64_t d = 0; d < D; d++) s += (double)qr[d] * kr[d], sm += fabs((double)qr[d] * kr[d]);
                sc[j] = s * scale; es = std::max(es, sm * fabs(scale));
                if (std::isnan(sc[j])) nan_s = true; else m = std::max(m, sc[j]); }
            /* a score's error: <= 2.5·2^-21 of sum |q_d k_d| (3xTF32 products); it moves the output by <= 2·es·A */
            es *= 2.5 * 0x1p-21;
            double l = 0; std::fill(ref.begin(), ref.end(), 0.0); std::fill(mag.begin(), mag.end(), 0.0);
            for (int64_t j = 0; j < Skv; j++) { if (!vis(j)) continue; const double pp = nan_s ? NAN : exp(sc[j] - m); if (pp == 0) continue;
                l += pp; for (int64_t d = 0; d < D; d++) { const double v = hv[((b * G + g) * Skv + j) * D + d]; ref[d] += pp * v; mag[d] += pp * fabs(v); } }
            for (int64_t d = 0; d < D; d++) { const double r = l > 0 || std::isnan(l) ? ref[d] / l : 0, A = l > 0 ? mag[d] / l : 0;
                const double got = ho[((b * H + h) * Sq + i) * D + d];
                const double tol = (4e-6 + 2 * es) * A + 2e-6 * fabs(r) + 1e-30;
                const bool ok = (std::isnan(r) && std::isnan(got)) || (std::isinf(r) && got == r) || fabs(got - r) <= tol;
                if (!ok && bad++ < 5) printf("  %s out[%lld,%lld,%lld,%lld]=%.9g want %.9g tol %g\n", c.name, (long long)b, (long long)h, (long long)i, (long long)d, got, r, tol); }
            if (c.lse && !nan_s) { const double lr = l > 0 ? m + log(l) : -INFINITY, got = hl[(b * H + h) * Sq + i];
                const bool ok = (std::isinf(lr) && got == lr) || fabs(got - lr) <= 1e-5 * (1 + fabs(lr));
                if (!ok && bad++ < 5) printf("  %s lse[%lld,%lld,%lld]=%g want %g\n", c.name, (long long)b, (long long)h, (long long)i, got, lr); }
        } } }
    printf("v%d %-36s %s\n", g_var, c.name, bad ? "FAIL" : "ok"); return bad != 0;
}
int main(int argc, char **argv) {
    const Case cs[] = {
        /* name, B, H, Hkv, Sq, Skv, D, causal, kl kind, kl, lse, q/k range, scale mult, bad v row, bad q row, bad k row */
        {"sq17 skv17 d64", 1, 1, 1, 17, 17, 64, 0, 0, {0}, 1, 1, 1, -1, -1, -1},
        {"gqa causal sq<skv d64", 1, 4, 2, 65, 129, 64, 1, 0, {0}, 1, 1, 1, -1, -1, -1},
        {"mqa causal sq>skv d128", 1, 2, 1, 129, 65, 128, 1, 0, {0}, 1, 1, 1, -1, -1, -1},
        {"len i32 {0,1,137} d64", 3, 1, 1, 70, 200, 64, 0, 1, {0, 1, 137}, 1, 1, 1, -1, -1, -1},
        {"causal len i64 clamp d128", 2, 2, 1, 63, 150, 128, 1, 2, {-5, 400}, 1, 1, 1, -1, -1, -1},
        {"neg scale causal d64", 1, 2, 1, 140, 140, 64, 1, 0, {0}, 1, 2, -1.2, -1, -1, -1},
        {"peaky d128", 1, 1, 1, 99, 199, 128, 0, 0, {0}, 1, 3, 2, -1, -1, -1},
        {"nan/inf v causal d64", 1, 2, 1, 150, 150, 64, 1, 0, {0}, 1, 1, 1, 70, -1, -1},
        {"nan/inf v causal d128", 1, 1, 1, 150, 150, 128, 1, 0, {0}, 1, 1, 1, 100, -1, -1},
        {"nan q, -inf k d64", 1, 2, 2, 90, 130, 64, 0, 0, {0}, 0, 1, 1, -1, 40, 33},
        {"nan q, -inf k causal d128", 1, 2, 1, 90, 130, 128, 1, 0, {0}, 0, 1, 1, -1, 40, 80},
    };
    int fails = 0; const int only = argc > 1 ? atoi(argv[1]) : -1; g_var = argc > 2 ? atoi(argv[2]) : 0;
    if (g_var < 0 || g_var >= (int)(sizeof var_d / sizeof var_d[0])) { printf("no variant %d\n", g_var); return 2; }
    for (int i = 0; i < (int)(sizeof cs / sizeof cs[0]); i++)
        if ((only < 0 && cs[i].D == var_d[g_var]) || only == i) fails += run(cs[i]);
    printf("%d failed\n", fails); return fails != 0;
}
