/* cpu_features.c — run-time detection of AVX2+FMA and AVX-512F (GCC/Clang __builtin_cpu_supports),
 * masked by LC_CPU_DISABLE ("avx512", "avx2", comma separated) so tests can force each kernel path.
 * Tests: tests/c/test_ops.c under the masks (CMakeLists.txt registers them). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu_features.h"

static lc_cpu_caps lc_caps;
static pthread_once_t lc_caps_once = PTHREAD_ONCE_INIT;

static int lc_env_masks(const char *feature) {
    const char *env = getenv("LC_CPU_DISABLE");
    if (!env) return 0;
    size_t len = strlen(feature);
    for (const char *p = env; *p;) {
        const char *end = strchr(p, ',');
        size_t tok = end ? (size_t)(end - p) : strlen(p);
        if (tok == len && strncmp(p, feature, len) == 0) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

static void lc_caps_detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = avx2 && __builtin_cpu_supports("avx512f");
#else
    int avx2 = 0, avx512 = 0;
#endif
    if (lc_env_masks("avx2")) avx2 = avx512 = 0;
    if (lc_env_masks("avx512")) avx512 = 0;
    lc_caps.avx2_fma = avx2;
    lc_caps.avx512f = avx512;
}

const lc_cpu_caps *lc_cpu_caps_get(void) {
    pthread_once(&lc_caps_once, lc_caps_detect);
    return &lc_caps;
}
