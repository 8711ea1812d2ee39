// emu.cpp — host emulation of the tensor-core sdpa kernel (src/backend/cuda/sdpa_mma.cuh) for machines without a
// GPU: every lane is a std::thread, warp collectives / ldmatrix / mma.sync follow the PTX fragment layouts
// (prims.h), so a fragment-layout, masking or pipeline-indexing mistake shows up as a mismatch against a
// float64 reference. Each variant of sdpa_mma_d64.cu / sdpa_mma_d128.cu is mirrored in launch() below (keep
// them in step). Build and run: scripts/sdpa_mma_emu/run.sh [case|-1] [variant] (slow: small shapes only);
// EMU_QT_MAJOR=1 runs the tile-major block order.
#include "kern.h"
#include <cstdio>
#include <cstdlib>
static uint64_t rng = 12345;
static double rnd(double lo, double hi) { rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; return lo + (hi - lo) * ((double)(rng >> 11) / 9007199254740992.0); }
struct Case { const char *name; bool bf; int B, H, G, Sq, Skv, D, causal, klk; int64_t kl[4]; int lse, packed; double qr, sm; int nan_row; int window = 0; };
template <int D, int BN, int NW, int MT, bool QREG, int FL, bool BF> void launch1(lc_sdpa_mma_params p, int64_t bh) {
    constexpr int NT = NW * 32;
    p.n_qt = (p.sq + NW * 16 * MT - 1) / (NW * 16 * MT);
    p.bh = bh, p.qt_major = getenv("EMU_QT_MAJOR") != nullptr; /* block order (the library: causal, small k/v) */
    for (int64_t blk = 0; blk < p.n_qt * bh; blk++) {
        std::barrier<> bb(NT); block_bar = &bb;
        for (int w = 0; w < NW; w++) { warps[w].bar = new std::barrier<>(32); }
        std::vector<std::thread> th;
        for (int t = 0; t < NT; t++) th.emplace_back([&, t] { threadIdx.x = t; blockIdx.x = (unsigned)blk; my_warp = t >> 5; my_lane = t & 31;
            lc_sdpa_mma::sdpa_mma_kernel<D, BN, NW, MT, QREG, FL, 1, BF>(p); });
        for (auto &x : th) x.join();
        for (int w = 0; w < NW; w++) delete warps[w].bar;
    }
}
using namespace lc_sdpa_mma;
static int g_var = 0;
template <int D, bool BF> void launch(lc_sdpa_mma_params p, int64_t bh) {
    if (D == 128) switch (g_var) {
        case 0: return launch1<D, 64, 4, 1, true, 0, BF>(p, bh);
        case 1: return launch1<D, 64, 4, 2, false, 15, BF>(p, bh);
        case 2: return launch1<D, 64, 4, 2, false, 7, BF>(p, bh);
        case 3: return launch1<D, 64, 8, 1, true, 15, BF>(p, bh);
        case 4: return launch1<D, 64, 4, 1, true, 15, BF>(p, bh);
        case 5: return launch1<D, 32, 4, 2, false, 15, BF>(p, bh);
    }
    else switch (g_var) {
        case 0: return launch1<D, 64, 4, 1, true, 0, BF>(p, bh);
        case 1: return launch1<D, 64, 4, 2, true, 15, BF>(p, bh);
        case 2: return launch1<D, 64, 4, 2, true, 7, BF>(p, bh);
        case 3: return launch1<D, 128, 4, 2, false, 15, BF>(p, bh);
        case 4: return launch1<D, 128, 4, 1, true, 15, BF>(p, bh);
        case 5: return launch1<D, 64, 8, 1, true, 15, BF>(p, bh);
        case 6: return launch1<D, 64, 4, 2, false, 15, BF>(p, bh);
    }
    abort();
}
static uint16_t to16(bool bf, double f) { return bf ? f2bf((float)f) : f2hf((float)f); }
static double from16(bool bf, uint16_t h) { return bf ? bf2f(h) : hf2f(h); }
int run(const Case &c) {
    const int64_t B = c.B, H = c.H, G = c.G, Sq = c.Sq, Skv = c.Skv, D = c.D;
    int64_t qs[4], ks[4], vs[4], os[4], qn, kvn, on;
    if (c.packed) { qs[0] = Sq*H*D, qs[1] = D, qs[2] = H*D, qs[3] = 1, qn = B*Sq*H*D; ks[0] = Skv*2*G*D, ks[1] = D, ks[2] = 2*G*D, ks[3] = 1, kvn = B*Skv*2*G*D; memcpy(vs, ks, sizeof vs); os[0] = Sq*H*2*D, os[1] = 2*D, os[2] = H*2*D, os[3] = 1, on = B*Sq*H*2*D; }
    else { qs[0] = H*Sq*D, qs[1] = Sq*D, qs[2] = D, qs[3] = 1, qn = B*H*Sq*D; ks[0] = G*Skv*D, ks[1] = Skv*D, ks[2] = D, ks[3] = 1, kvn = B*G*Skv*D; memcpy(vs, ks, sizeof vs); memcpy(os, qs, sizeof os), on = qn; }
    const int64_t kvtot = c.packed ? kvn : 2 * kvn, voff = c.packed ? G * D : kvn;
    std::vector<uint16_t> hq(qn), hkv(kvtot), ho(on, 0x7d01); std::vector<float> hl(B*H*Sq, NAN);
    for (auto &x : hq) x = to16(c.bf, rnd(-c.qr, c.qr));
    for (auto &x : hkv) x = to16(c.bf, rnd(-c.qr, c.qr));
    for (int64_t b = 0; b < B; b++) for (int64_t g = 0; g < G; g++) for (int64_t j = 0; j < Skv; j++) for (int64_t d = 0; d < D; d++) {
        int64_t e = voff + b*vs[0] + g*vs[1] + j*vs[2] + d; hkv[e] = to16(c.bf, rnd(-1, 1));
        if (j == c.nan_row) hkv[e] = c.bf ? 0x7fc0 : 0x7e00;
        if (c.nan_row >= 0 && j == c.nan_row + 1) hkv[e] = c.bf ? 0x7f80 : 0x7c00; }
    int32_t kl32[4]; for (int i = 0; i < 4; i++) kl32[i] = (int32_t)c.kl[i];
    lc_sdpa_mma_params p{};
    p.q = hq.data(), p.k = hkv.data(), p.v = hkv.data() + voff, p.out = ho.data(), p.lse = c.lse ? hl.data() : nullptr;
    p.key_lengths = c.klk == 0 ? nullptr : c.klk == 1 ? (const void *)kl32 : (const void *)c.kl; p.kl64 = c.klk == 2;
    p.q_sb = qs[0], p.q_sh = qs[1], p.q_ss = qs[2], p.k_sb = ks[0], p.k_sh = ks[1], p.k_ss = ks[2], p.v_sb = vs[0], p.v_sh = vs[1], p.v_ss = vs[2];
    p.o_sb = os[0], p.o_sh = os[1], p.o_ss = os[2];
    p.heads = H, p.group = H / G, p.sq = Sq, p.skv = Skv, p.causal = c.causal, p.window = c.window;
    const float scale = (float)(c.sm / sqrt((double)D)); p.scale_log2 = scale * 1.4426950408889634f;
    if (D == 64) { if (c.bf) launch<64, true>(p, B*H); else launch<64, false>(p, B*H); }
    else { if (c.bf) launch<128, true>(p, B*H); else launch<128, false>(p, B*H); }
    const double u = c.bf ? 0x1p-8 : 0x1p-11; int64_t bad = 0;
    std::vector<double> sc(Skv), ref(D), mag(D);
    for (int64_t b = 0; b < B; b++) { int64_t L = c.klk ? std::clamp<int64_t>(c.kl[b], 0, Skv) : Skv;
      for (int64_t h = 0; h < H; h++) { int64_t g = h / (H / G);
        for (int64_t i = 0; i < Sq; i++) {
            auto vis = [&](int64_t j) { return j < L && (!c.causal || j <= i + L - Sq) && (!c.window || j > i + L - Sq - c.window); };
            double m = -INFINITY;
            for (int64_t j = 0; j < Skv; j++) { if (!vis(j)) continue; double s = 0; for (int64_t d = 0; d < D; d++) s += from16(c.bf, hq[b*qs[0]+h*qs[1]+i*qs[2]+d]) * from16(c.bf, hkv[b*ks[0]+g*ks[1]+j*ks[2]+d]); sc[j] = s * scale; m = std::max(m, sc[j]); }
            double l = 0; std::fill(ref.begin(), ref.end(), 0.0); std::fill(mag.begin(), mag.end(), 0.0);
            for (int64_t j = 0; j < Skv; j++) { if (!vis(j)) continue; double pp = exp(sc[j] - m); l += pp; for (int64_t d = 0; d < D; d++) { double v = from16(c.bf, hkv[voff+b*vs[0]+g*vs[1]+j*vs[2]+d]); ref[d] += pp*v; mag[d] += pp*fabs(v); } }
            for (int64_t d = 0; d < D; d++) { double r = l > 0 ? ref[d]/l : 0, A = l > 0 ? mag[d]/l : 0; double got = from16(c.bf, ho[b*os[0]+h*os[1]+i*os[2]+d]);
                double tol = 2.5*u*A + u*fabs(r); bool ok = (std::isnan(r) && std::isnan(got)) || (std::isinf(r) && got == r) || fabs(got - r) <= tol;
                if (!ok && bad++ < 5) printf("  %s out[%lld,%lld,%lld,%lld]=%g want %g tol %g\n", c.name, (long long)b, (long long)h, (long long)i, (long long)d, got, r, tol); }
            if (c.lse) { double lr = l > 0 ? m + log(l) : -INFINITY, got = hl[(b*H+h)*Sq+i]; bool ok = (std::isinf(lr) && got == lr) || fabs(got-lr) <= 1e-4*(1+fabs(lr));
                if (!ok && bad++ < 5) printf("  %s lse[%lld,%lld,%lld]=%g want %g\n", c.name, (long long)b, (long long)h, (long long)i, got, lr); }
        } } }
    if (c.packed) for (int64_t i = 0; i < on; i++) if (i % (2*D) >= D && ho[i] != 0x7d01 && bad++ < 5) printf("  gap written\n");
    printf("v%d %-32s %s\n", g_var, c.name, bad ? "FAIL" : "ok"); return bad != 0;
}
int main(int argc, char **argv) {
    const Case cs[] = {
        {"sq=skv=1 bf16 d64", true, 1, 1, 1, 1, 1, 64, 0, 0, {0}, 1, 0, 1, 1, -1},
        {"sq=skv=1 causal f16 d128", false, 2, 2, 1, 1, 1, 128, 1, 0, {0}, 1, 0, 1, 1, -1},
        {"sq1 skv200 mqa f16 d128 len", false, 2, 4, 1, 1, 200, 128, 0, 1, {200, 33}, 1, 0, 1, 1, -1},
        {"gqa causal sq<skv f16 d128", false, 1, 2, 1, 65, 129, 128, 1, 0, {0}, 1, 0, 1, 1, -1},
        {"causal sq=skv bf16 d64", true, 1, 2, 1, 129, 129, 64, 1, 0, {0}, 0, 0, 2, 1, -1},
        {"len i32 {0,1,137} f16 d64", false, 3, 1, 1, 70, 200, 64, 0, 1, {0, 1, 137}, 1, 0, 1, 1, -1},
        {"causal len i64 bf16 d128", true, 3, 2, 1, 63, 150, 128, 1, 2, {150, 5, 64}, 1, 0, 1, 1, -1},
        {"causal sq>skv f16 d128", false, 1, 1, 1, 150, 70, 128, 1, 0, {0}, 1, 0, 1, 1, -1},
        {"causal len clamp f16 d64", false, 2, 1, 1, 130, 130, 64, 1, 2, {-5, 400}, 1, 0, 1, 1, -1},
        {"packed causal bf16 d64", true, 2, 2, 1, 77, 77, 64, 1, 0, {0}, 1, 1, 1, 1, -1},
        {"packed len f16 d128", false, 1, 2, 1, 70, 190, 128, 0, 1, {100}, 0, 1, 1, 1, -1},
        {"peaky bf16 d128", true, 1, 1, 1, 99, 199, 128, 0, 0, {0}, 1, 0, 3, 2, -1},
        {"neg scale f16 d64", false, 1, 1, 1, 70, 135, 64, 0, 0, {0}, 1, 0, 2, -1.5, -1},
        {"nan/inf v f16 d64", false, 1, 1, 1, 80, 80, 64, 1, 0, {0}, 1, 0, 1, 1, 40},
        {"nan/inf v bf16 d128", true, 1, 1, 1, 150, 150, 128, 1, 0, {0}, 1, 0, 1, 1, 70},
        {"scale0 causal len bf16 d128", true, 2, 2, 1, 140, 140, 128, 1, 1, {140, 77}, 1, 0, 1, 0, -1},
        {"scale0 f16 d64", false, 1, 1, 1, 70, 90, 64, 0, 0, {0}, 1, 0, 1, 0, -1},
        {"multi-tile causal f16 d64", false, 1, 2, 2, 300, 300, 64, 1, 0, {0}, 1, 0, 1, 1, -1},
        {"neg scale causal bf16 d128", true, 1, 1, 1, 200, 260, 128, 1, 0, {0}, 1, 0, 2, -1.2, -1},
        {"window 100 causal bf16 d64", true, 1, 2, 1, 300, 300, 64, 1, 0, {0}, 1, 0, 1, 1, -1, 100},
        {"window 70 causal len f16 d128", false, 2, 2, 1, 200, 260, 128, 1, 1, {260, 90}, 1, 0, 1, 1, -1, 70},
        {"window 1 causal bf16 d64", true, 1, 1, 1, 140, 140, 64, 1, 0, {0}, 1, 0, 1, 1, -1, 1},
        {"window 33 noncausal f16 d64", false, 1, 1, 1, 150, 150, 64, 0, 0, {0}, 1, 0, 1, 1, -1, 33},
        {"window 20 nan/inf v f16 d64", false, 1, 1, 1, 150, 150, 64, 1, 0, {0}, 1, 0, 1, 1, 40, 20},
    };
    int fails = 0; int only = argc > 1 ? atoi(argv[1]) : -1; g_var = argc > 2 ? atoi(argv[2]) : 0;
    for (int i = 0; i < (int)(sizeof cs / sizeof cs[0]); i++) if (only < 0 || only == i) fails += run(cs[i]);
    printf("%d failed\n", fails); return fails != 0;
}
