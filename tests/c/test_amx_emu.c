/* test_amx_emu.c — the AMX-BF16 matmul driver (src/backend/cpu/matmul_amx_impl.h: packing, 2x2-tile
 * blocking, k slices, edges, tasks over the pool) compiled here a second time with the tile instructions
 * replaced by a C emulation, so it is judged on any CPU with AVX-512 BW (the packing and the output
 * writes are AVX-512; without it, or off x86-64, the test is skipped, exit 77). The real instructions are checked by
 * test_lowp / test_lowp_ops on a CPU with AMX.
 *
 * The emulation follows the ISA: tiles configured by a 64-byte palette-1 configuration (checked: palette,
 * reserved bytes zero, rows <= 16, colsb <= 64, unused tiles empty), loads/stores of rows x colsb bytes
 * (the rest of a tile zeroed on load, as the hardware does), TDPBF16PS as Intel's pseudo-code writes it
 * (per row m, per pair k, per column n: two float32 multiply-adds in order; denormal inputs read as zero,
 * denormal results flushed), shapes of the three tiles checked against each other. Protocol checks: no
 * tile op before ldtilecfg or after tilerelease, every chunk releases what it configured (a second
 * ldtilecfg without a release in between is an error), ldtilecfg count == tilerelease count, and the
 * number of TDPBF16PS equals 4 x (32-row blocks) x (32-column blocks) x (32-k steps).
 *
 * Judged, for awkward m, k, n (1 upward, across the 16/32 tile edges and the 512-k slice edge), both
 * outputs (bfloat16 c, float32 cf), several task plans (the blocking sized for 1, 3 and 64 threads):
 *  - the float32 output bit-exact to a sequential float32 sum over k (the order the tiles add in; the
 *    products of two bfloat16 are exact in float32), the bfloat16 output its rounding (lc_f32_to_bf16);
 *  - both within u·|ref| + 2k·2^-24·Σ|a||b| of a float64 product (u = 2^-8 for bfloat16, 0 for float32);
 *  - NaN in a (b) makes exactly its row (column) NaN, Inf gives the float64 Inf/NaN (so k padding that
 *    is not zero in both operands shows);
 *  - outputs poisoned before the run, guard elements past both ends of c untouched;
 *  - amx_plan refuses sizes whose packed operands overflow.
 * Prints "N passed, N failed". */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOWP_SEED 0x5851f42d4c957f2dull
#include "lowp_check.h"
#include "backend/cpu/matmul_amx.h"
#include "core/cpu_features.h"
#include "core/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* ---- tile emulation ---------------------------------------------------------------------------------- */

typedef struct {
    int configured;
    uint8_t rows[8];
    uint16_t colsb[8];
    uint8_t data[8][16][64];
} emu_tiles;

static _Thread_local emu_tiles emu;
static atomic_long emu_errors, emu_dps, emu_configs, emu_releases;
static char emu_first_error[160];

static void emu_fail(const char *what, int t) {
    if (atomic_fetch_add(&emu_errors, 1) == 0) snprintf(emu_first_error, sizeof emu_first_error, "%s (tile %d)", what, t);
}

static int emu_usable(int t) {
    if (!emu.configured) return emu_fail("tile op before ldtilecfg or after tilerelease", t), 0;
    if (t < 0 || t > 7 || emu.rows[t] == 0 || emu.colsb[t] == 0) return emu_fail("tile not configured", t), 0;
    return 1;
}

static void emu_loadconfig(const void *cfgp) {
    const uint8_t *b = cfgp;
    atomic_fetch_add(&emu_configs, 1);
    if (emu.configured) emu_fail("ldtilecfg while configured: the previous chunk did not release", -1);
    if (b[0] != 1 || b[1] != 0) emu_fail("palette must be 1, start_row 0", -1);
    for (int i = 2; i < 16; i++)
        if (b[i]) emu_fail("reserved configuration byte not zero", -1);
    memset(&emu, 0, sizeof emu);
    for (int t = 0; t < 16; t++) {
        uint16_t colsb;
        memcpy(&colsb, b + 16 + 2 * t, 2);
        const uint8_t rows = b[48 + t];
        if (t >= 8 && (colsb || rows)) emu_fail("tiles 8-15 do not exist", t);
        if (rows > 16 || colsb > 64 || (colsb & 3) || (!rows != !colsb)) emu_fail("bad tile shape", t);
        if (t < 8) emu.rows[t] = rows, emu.colsb[t] = colsb;
    }
    emu.configured = 1;
}

static void emu_release(void) {
    atomic_fetch_add(&emu_releases, 1);
    memset(&emu, 0, sizeof emu);
}

static void emu_zero(int t) {
    if (emu_usable(t)) memset(emu.data[t], 0, sizeof emu.data[t]);
}

static void emu_load(int t, const void *p, size_t stride) {
    if (!emu_usable(t)) return;
    memset(emu.data[t], 0, sizeof emu.data[t]);
    for (int r = 0; r < emu.rows[t]; r++) memcpy(emu.data[t][r], (const uint8_t *)p + (size_t)r * stride, emu.colsb[t]);
}

static void emu_store(int t, void *p, size_t stride) {
    if (!emu_usable(t)) return;
    for (int r = 0; r < emu.rows[t]; r++) memcpy((uint8_t *)p + (size_t)r * stride, emu.data[t][r], emu.colsb[t]);
}

static float emu_bf16(const uint8_t *at) { /* DAZ */
    uint16_t h;
    memcpy(&h, at, 2);
    if ((h & 0x7f80) == 0) h &= 0x8000;
    return lc_bf16_to_f32(h);
}

static float emu_ftz(float v) { return fabsf(v) < 0x1p-126f ? copysignf(0.0f, v) : v; }

static void emu_dp(int c, int a, int b) {
    if (!emu_usable(c) || !emu_usable(a) || !emu_usable(b)) return;
    atomic_fetch_add(&emu_dps, 1);
    if (emu.rows[c] != emu.rows[a] || emu.colsb[c] != emu.colsb[b] || emu.colsb[a] / 4 != emu.rows[b] || c == a ||
        c == b || a == b)
        return emu_fail("TDPBF16PS tile shapes disagree", c);
    for (int m = 0; m < emu.rows[c]; m++) {
        float acc[16];
        memcpy(acc, emu.data[c][m], (size_t)emu.colsb[c]);
        for (int k = 0; k < emu.colsb[a] / 4; k++)
            for (int n = 0; n < emu.colsb[c] / 4; n++) {
                acc[n] = emu_ftz(acc[n] + emu_bf16(&emu.data[a][m][4 * k]) * emu_bf16(&emu.data[b][k][4 * n]));
                acc[n] = emu_ftz(acc[n] + emu_bf16(&emu.data[a][m][4 * k + 2]) * emu_bf16(&emu.data[b][k][4 * n + 2]));
            }
        memcpy(emu.data[c][m], acc, (size_t)emu.colsb[c]);
    }
}

#define AMX_FN AMX_AVX
#define AMX_LOADCONFIG(cfg) emu_loadconfig(cfg)
#define AMX_ZERO(t) emu_zero(t)
#define AMX_LOAD(t, p, s) emu_load(t, p, s)
#define AMX_DP(c, a, b) emu_dp(c, a, b)
#define AMX_STORE(t, p, s) emu_store(t, p, s)
#define AMX_RELEASE() emu_release()
#include "backend/cpu/matmul_amx_impl.h"

/* ---- one case ---------------------------------------------------------------------------------------- */

enum { GUARD = 8 };
static const uint16_t GUARD16 = 0x7d01;
static const uint32_t GUARD32 = 0x7fa00bad;

/* special: 0 none, 1 NaN in a, 2 NaN in b, 3 Inf in a's last k column, 4 NaN in a and b (last k), 5 NaN in
 * a's and b's first k (row ni-1 of a ends just before it: packing past the end of a row would catch it) */
static void run_case(int64_t m, int64_t k, int64_t n, int special, int threads_plan, int f32out) {
    uint16_t *a = malloc((size_t)(m * k) * 2), *b = malloc((size_t)(k * n) * 2);
    uint16_t *c16 = malloc((size_t)(m * n + 2 * GUARD) * 2);
    uint32_t *c32 = malloc((size_t)(m * n + 2 * GUARD) * 4);
    for (int64_t i = 0; i < m * k; i++) a[i] = to16(LC_DTYPE_BF16, rnd(-1.0, 1.0));
    for (int64_t i = 0; i < k * n; i++) b[i] = to16(LC_DTYPE_BF16, rnd(-1.0, 1.0));
    const int64_t ni = m / 2, nj = n / 3, nk = k - 1;
    if (special == 1 || special == 4) a[ni * k + nk] = nan16(LC_DTYPE_BF16);
    if (special == 2 || special == 4) b[nk * n + nj] = nan16(LC_DTYPE_BF16);
    if (special == 3) a[ni * k + nk] = inf16(LC_DTYPE_BF16, 1);
    if (special == 5) a[ni * k] = b[nj] = nan16(LC_DTYPE_BF16);
    for (int64_t i = 0; i < m * n + 2 * GUARD; i++) c16[i] = GUARD16, c32[i] = GUARD32;

    amx_ctx x = {.a = a, .b = b, .c = c16 + GUARD, .cf = f32out ? (float *)(c32 + GUARD) : NULL, .m = m, .k = k, .n = n};
    int64_t na = 0, nb = 0;
    CHECK(amx_plan(&x, threads_plan, &na, &nb));
    x.ap = lc_aligned_alloc((size_t)(na + nb) * 2);
    CHECK(x.ap != NULL);
    if (!x.ap) return;
    memset(x.ap, 0xff, (size_t)(na + nb) * 2); /* NaN patterns: packing must write every element */
    x.bp = x.ap + na;
    const long dps0 = atomic_load(&emu_dps);
    amx_run(&x);
    const long dps = atomic_load(&emu_dps) - dps0;
    CHECK(dps == 4 * x.mblocks * x.nblocks * x.ktiles);

    int bad = 0, guards = 0;
    for (int g = 0; g < GUARD; g++) {
        guards += c16[g] != GUARD16 || c16[GUARD + m * n + g] != GUARD16;
        guards += c32[g] != GUARD32 || c32[GUARD + m * n + g] != GUARD32;
    }
    for (int64_t i = 0; i < m * n && f32out; i++) guards += c16[GUARD + i] != GUARD16; /* c untouched with cf */
    for (int64_t i = 0; i < m * n && !f32out; i++) guards += c32[GUARD + i] != GUARD32;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double ref = 0, mag = 0;
            float seq = 0.0f;
            for (int64_t p = 0; p < k; p++) {
                const float fa = lc_bf16_to_f32(a[i * k + p]), fb = lc_bf16_to_f32(b[p * n + j]);
                ref += (double)fa * (double)fb, mag += fabs((double)fa * (double)fb);
                seq = emu_ftz(seq + fa * fb);
            }
            float got;
            if (f32out) memcpy(&got, &c32[GUARD + i * n + j], 4);
            else got = lc_bf16_to_f32(c16[GUARD + i * n + j]);
            const float want = f32out ? seq : lc_bf16_to_f32(lc_f32_to_bf16(seq));
            int ok;
            if (isnan(ref)) ok = isnan(got) && isnan(want);
            else if (isinf(ref)) ok = got == ref && want == ref;
            else
                ok = got == want &&
                     fabs(got - ref) <= (f32out ? 0.0 : 0x1p-8) * fabs(ref) + 2.0 * (double)k * 0x1p-24 * mag + 1e-30;
            if (!ok && bad < 3)
                fprintf(stderr, "  [%lld,%lld] got %.9g want %.9g ref %.9g\n", (long long)i, (long long)j, got, want, ref);
            bad += !ok;
        }
    if (bad || guards)
        fprintf(stderr, "m=%lld k=%lld n=%lld special=%d plan=%d f32out=%d: %d bad, %d guards touched (tr=%lld tc=%lld)\n",
                (long long)m, (long long)k, (long long)n, special, threads_plan, f32out, bad, guards, (long long)x.tr,
                (long long)x.tc);
    CHECK(bad == 0);
    CHECK(guards == 0);
    lc_aligned_free(x.ap);
    free(a), free(b), free(c16), free(c32);
}

int main(void) {
    if (!lc_cpu_caps_get()->avx512bw) {
        printf("no AVX-512 BW: the AMX driver's packing cannot run here (skipped)\n");
        return 77;
    }
    static const int64_t shapes[][3] = {
        {1, 1, 1},     {1, 2, 1},     {2, 1, 3},      {15, 17, 16},  {16, 32, 16},  {17, 31, 33},  {31, 33, 32},
        {32, 32, 32},  {33, 64, 31},  {7, 13, 5},     {63, 65, 129}, {100, 257, 70}, {5, 1000, 200}, {70, 1537, 45},
        {130, 513, 300}, {1, 4096, 3}, {257, 40, 1},  {64, 512, 128}, {96, 544, 160}, {49, 2, 97},   {200, 33, 260}};
    static const int plans[] = {1, 3, 64};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int f32out = 0; f32out < 2; f32out++)
            run_case(shapes[s][0], shapes[s][1], shapes[s][2], 0, plans[(s + (size_t)f32out) % 3], f32out);
    for (int pl = 0; pl < 3; pl++) /* every plan on a shape with several tasks per dimension and k slices */
        run_case(200, 1100, 333, 0, plans[pl], pl == 1);
    for (int special = 1; special <= 5; special++)
        for (int f32out = 0; f32out < 2; f32out++) {
            run_case(63, 65, 129, special, 64, f32out);
            run_case(13, 7, 40, special, 1, f32out);
            run_case(40, 600, 35, special, 3, f32out);
        }
    /* packed sizes that overflow are refused */
    amx_ctx big = {.m = (int64_t)1 << 40, .k = (int64_t)1 << 40, .n = 5};
    int64_t na = 0, nb = 0;
    CHECK(!amx_plan(&big, 4, &na, &nb));

    printf("tile ops: %ld TDPBF16PS, %ld ldtilecfg, %ld tilerelease, %ld protocol errors%s%s\n", atomic_load(&emu_dps),
           atomic_load(&emu_configs), atomic_load(&emu_releases), atomic_load(&emu_errors),
           atomic_load(&emu_errors) ? ": " : "", emu_first_error);
    CHECK(atomic_load(&emu_errors) == 0);
    CHECK(atomic_load(&emu_configs) == atomic_load(&emu_releases) && atomic_load(&emu_configs) > 0);
    printf("real AMX path usable in this process: %s\n", lc_cpu_amx_ready() ? "yes" : "no");
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
#else
int main(void) {
    printf("not x86-64: no AMX driver to test (skipped)\n");
    return 77;
}
#endif
