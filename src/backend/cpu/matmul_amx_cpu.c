/* matmul_amx_cpu.c — bfloat16 matmul on AMX-BF16 tiles (Intel Sapphire Rapids and later): the driver of
 * matmul_amx_impl.h (packing, 2x2-tile blocking, edges, threads; see there) with the real tile
 * instructions, and the permission to use them.
 *
 * Linux gives a process the AMX tile data state only on request: arch_prctl(ARCH_REQ_XCOMP_PERM,
 * XFEATURE_XTILEDATA), done once (pthread_once) on the first query, and confirmed with
 * ARCH_GET_XCOMP_PERM; the OS must also have enabled the tile state in XCR0 (bits 17, 18). Any refusal
 * (old kernel, seccomp, not Linux) leaves lc_cpu_amx_ready() at 0, and matmul_lowp_cpu.c takes the
 * AVX-512 BF16 or float32 path: no tile instruction ever runs without the grant (no SIGILL).
 * Only the functions marked AMX_FN are compiled for AMX; the file builds for any x86-64 (and to stubs
 * elsewhere).
 * Tests: tests/c/test_lowp.c and test_lowp_ops.c check the path is "amx_bf16" where AMX is usable
 * (test_lowp_no_amx masks it); tests/c/test_amx_emu.c runs this driver with emulated tiles anywhere. */
#define _DEFAULT_SOURCE 1 /* syscall() */
#include <pthread.h>
#include <stdint.h>

#include "backend/cpu/matmul_amx.h"
#include "core/cpu_features.h"
#include "core/internal.h"

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend/cpu/matmul_amx_real.h"
#include "backend/cpu/matmul_amx_impl.h"

enum { ARCH_GET_XCOMP_PERM_ = 0x1022, ARCH_REQ_XCOMP_PERM_ = 0x1023, XFEATURE_XTILEDATA_ = 18 };

static int amx_granted;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

/* XCR0 has the tile configuration and tile data states enabled (the OS manages them). */
static int amx_xcr0_ok(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE: xgetbv is allowed */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & (3u << 17)) == (3u << 17);
}

static void amx_request(void) {
    if (!amx_xcr0_ok()) return;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM_, XFEATURE_XTILEDATA_) != 0) return;
    unsigned long long perm = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM_, &perm) != 0) return;
    amx_granted = (int)((perm >> XFEATURE_XTILEDATA_) & 1u);
}

int lc_cpu_amx_ready(void) {
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    if (!caps->amx_bf16 || !caps->avx512bw) return 0; /* masks first: LC_CPU_DISABLE=amx asks nothing of the OS */
    pthread_once(&amx_once, amx_request);
    return amx_granted;
}

lc_status lc_cpu_matmul_amx_bf16(const lc_matmul_args *args, float *c_f32, const char **path) {
    LC_CHECK_INVARIANT(args != NULL && args->dtype == LC_DTYPE_BF16 && lc_cpu_amx_ready());
    LC_CHECK_INVARIANT(args->m >= 0 && args->k >= 1 && args->n >= 1);
    *path = "amx_bf16";
    if (args->m == 0) return LC_OK;
    amx_ctx x = {.a = args->a, .b = args->b, .c = args->c, .cf = c_f32, .m = args->m, .k = args->k, .n = args->n};
    int64_t na = 0, nb = 0;
    if (!amx_plan(&x, lc_pool_threads(), &na, &nb))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "matmul: bfloat16 packed operand size overflows");
    x.ap = lc_aligned_alloc((size_t)(na + nb) * 2);
    if (!x.ap) return lc_error(LC_ERR_OUT_OF_MEMORY, "matmul: cannot allocate %lld bytes for packed operands", (long long)(na + nb) * 2);
    x.bp = x.ap + na;
    amx_run(&x);
    lc_aligned_free(x.ap);
    return LC_OK;
}

#else

int lc_cpu_amx_ready(void) { return 0; }

lc_status lc_cpu_matmul_amx_bf16(const lc_matmul_args *args, float *c_f32, const char **path) {
    (void)args, (void)c_f32, (void)path;
    return lc_error(LC_ERR_INTERNAL, "matmul: AMX-BF16 is not built for this platform");
}

#endif
