/* cpu_features.c — run-time detection of AVX2+FMA, AVX-512 (F, BW+VL, BF16, FP16), F16C and AMX-BF16
 * (GCC/Clang __builtin_cpu_supports), masked by LC_CPU_DISABLE (comma separated names, see
 * cpu_features.h) so tests can force each kernel path.
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
    int f16c = avx2 && __builtin_cpu_supports("f16c");
    int bw = avx512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    int bf16 = bw && __builtin_cpu_supports("avx512bf16");
    int fp16 = bw && __builtin_cpu_supports("avx512fp16");
    int amx = __builtin_cpu_supports("amx-bf16") && __builtin_cpu_supports("amx-tile");
#else
    int avx2 = 0, avx512 = 0, f16c = 0, bw = 0, bf16 = 0, fp16 = 0, amx = 0;
#endif
    if (lc_env_masks("avx2")) avx2 = avx512 = f16c = bw = bf16 = fp16 = 0;
    if (lc_env_masks("avx512")) avx512 = bw = bf16 = fp16 = 0;
    if (lc_env_masks("f16c")) f16c = 0;
    if (lc_env_masks("avx512bf16")) bf16 = 0;
    if (lc_env_masks("avx512fp16")) fp16 = 0;
    if (lc_env_masks("amx")) amx = 0;
    lc_caps.avx2_fma = avx2;
    lc_caps.avx512f = avx512;
    lc_caps.f16c = f16c;
    lc_caps.avx512bw = bw;
    lc_caps.avx512bf16 = bf16;
    lc_caps.avx512fp16 = fp16;
    lc_caps.amx_bf16 = amx;
}

const lc_cpu_caps *lc_cpu_caps_get(void) {
    pthread_once(&lc_caps_once, lc_caps_detect);
    return &lc_caps;
}
