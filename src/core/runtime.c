/* runtime.c — version, backend registry, device strings and availability, strict-device policy,
 * CPU feature string, BLAS name, reason codes and the per-thread last-dispatch record.
 * Tests: tests/c/test_core.c, tests/python/test_runtime.py. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#ifdef LC_HAVE_CUDA
#include "backend/cuda/sdpa_cudnn.h"
#endif
#include "core/backend.h"
#include "core/cpu_features.h"
#include "core/dispatch_record.h"
#include "core/internal.h"
#include "lightning_core/runtime.h"

#ifndef LC_VERSION_STRING
#define LC_VERSION_STRING "0.0.0"
#endif

const char *lc_version(void) { return LC_VERSION_STRING; }

const lc_backend *lc_backend_for(lc_device device) {
    switch (device) {
    case LC_DEVICE_CPU: return &lc_cpu_backend;
#ifdef LC_HAVE_CUDA
    case LC_DEVICE_CUDA: return &lc_cuda_backend;
#endif
    default: return NULL;
    }
}

int lc_device_built(lc_device device) { return lc_backend_for(device) != NULL; }

int lc_device_available(lc_device device) {
    const lc_backend *be = lc_backend_for(device);
    return be != NULL && be->available();
}

#ifndef LC_HAVE_CUDA
lc_status lc_set_cuda_device(int device) {
    return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "set_cuda_device: this build has no CUDA backend");
}
int lc_cuda_device(void) { return -1; }
int lc_cuda_device_count(void) { return 0; }
int lc_cudnn_version(void) { return 0; }
lc_status lc_cuda_timeline(unsigned long long *dst, size_t cap, size_t *count, int reset) {
    (void)dst, (void)cap, (void)reset;
    if (count) *count = 0;
    return lc_error(LC_ERR_UNSUPPORTED, "cuda_timeline: this build has no CUDA backend");
}
#else
int lc_cudnn_version(void) { return lc_cuda_sdpa_cudnn_version(); }
#endif

const char *lc_backend_name(void) { return lc_device_available(LC_DEVICE_CUDA) ? "cuda" : "cpu"; }

static const char *const lc_device_names[LC_DEVICE_COUNT] = {
    [LC_DEVICE_CPU] = "cpu", [LC_DEVICE_CUDA] = "cuda", [LC_DEVICE_METAL] = "metal", [LC_DEVICE_AUTO] = "auto"};

const char *lc_device_name(lc_device device) {
    if ((int)device < 0 || device >= LC_DEVICE_COUNT) return "invalid";
    return lc_device_names[device];
}

lc_status lc_device_parse(const char *text, lc_device *out) {
    if (!text) return lc_error(LC_ERR_INVALID_ARGUMENT, "device: expected one of 'cpu', 'cuda', 'metal', 'auto', got NULL");
    for (int d = 0; d < LC_DEVICE_COUNT; d++) {
        if (strcmp(text, lc_device_names[d]) == 0) {
            if (out) *out = (lc_device)d;
            return LC_OK;
        }
    }
    return lc_error(LC_ERR_INVALID_ARGUMENT, "device: expected one of 'cpu', 'cuda', 'metal', 'auto', got '%.64s'", text);
}

/* Strict device mode: -1 = not yet read from the environment. */
static atomic_int lc_strict = -1;

void lc_set_strict_device(int strict) { atomic_store(&lc_strict, strict ? 1 : 0); }

int lc_strict_device(void) {
    int v = atomic_load(&lc_strict);
    if (v < 0) {
        const char *env = getenv("LC_STRICT_DEVICE");
        int from_env = env && (strcmp(env, "1") == 0 || strcmp(env, "true") == 0 || strcmp(env, "on") == 0);
        int expected = -1;
        atomic_compare_exchange_strong(&lc_strict, &expected, from_env);
        v = atomic_load(&lc_strict);
    }
    return v;
}

static char lc_features_text[128];
static pthread_once_t lc_features_once = PTHREAD_ONCE_INIT;

static void lc_features_build(void) {
    const lc_cpu_caps *caps = lc_cpu_caps_get();
    strcpy(lc_features_text, "");
    if (caps->avx2_fma) strcat(lc_features_text, "avx2 fma");
    if (caps->f16c) strcat(lc_features_text, " f16c");
    if (caps->avx512f) strcat(lc_features_text, " avx512f");
    if (caps->avx512bw) strcat(lc_features_text, " avx512bw");
    if (caps->avx512bf16) strcat(lc_features_text, " avx512_bf16");
    if (caps->avx512fp16) strcat(lc_features_text, " avx512_fp16");
    if (caps->amx_bf16) strcat(lc_features_text, " amx_bf16");
    if (!caps->avx2_fma) strcpy(lc_features_text, "scalar");
}

const char *lc_cpu_features(void) {
    pthread_once(&lc_features_once, lc_features_build);
    return lc_features_text;
}

const char *lc_blas_name(void) { return lc_cpu_matmul_blas_active() ? "openblas" : "none"; }

static const char *const lc_reason_codes[LC_REASON_COUNT] = {
    [LC_REASON_DIRECT] = "direct",
    [LC_REASON_AUTO_SELECTED] = "auto_selected",
    [LC_REASON_FALLBACK_PREFERRED_UNAVAILABLE] = "fallback_preferred_unavailable",
    [LC_REASON_FALLBACK_PREFERRED_UNSUPPORTED] = "fallback_preferred_unsupported",
    [LC_REASON_FALLBACK_PLANNER_OPTIMIZED] = "fallback_planner_optimized",
    [LC_REASON_GRAPH_ENGINE_NOT_LIGHTNING] = "graph_engine_not_lightning",
    [LC_REASON_GRAPH_SHAPE_UNSUPPORTED] = "graph_shape_unsupported",
    [LC_REASON_TORCH_UNAVAILABLE_FALLBACK] = "torch_unavailable_fallback",
};

const char *lc_reason_code(lc_reason reason) {
    if ((int)reason < 0 || reason >= LC_REASON_COUNT) return "invalid";
    return lc_reason_codes[reason];
}

static _Thread_local lc_dispatch_info lc_last = {NULL, LC_DEVICE_CPU, LC_DEVICE_CPU, LC_REASON_DIRECT, NULL};

void lc_dispatch_record(const char *op, lc_device requested, lc_device selected, lc_reason reason, const char *path) {
    lc_last.op = op;
    lc_last.requested = requested;
    lc_last.selected = selected;
    lc_last.reason = reason;
    lc_last.path = path;
}

void lc_last_dispatch(lc_dispatch_info *out) {
    if (out) *out = lc_last;
}

static atomic_int lc_precision = LC_PRECISION_HIGHEST;

lc_status lc_set_matmul_precision(lc_matmul_precision precision) {
    if ((int)precision < 0 || precision >= LC_PRECISION_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "set_matmul_precision: precision: expected LC_PRECISION_HIGHEST or LC_PRECISION_TF32, got code %d",
                        (int)precision);
    atomic_store(&lc_precision, (int)precision);
    return LC_OK;
}

lc_matmul_precision lc_get_matmul_precision(void) { return (lc_matmul_precision)atomic_load(&lc_precision); }

lc_status lc_device_synchronize(lc_device device) {
    if (device != LC_DEVICE_CPU && device != LC_DEVICE_CUDA)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "synchronize: device: expected cpu or cuda, got %s", lc_device_name(device));
    const lc_backend *be = lc_backend_for(device);
    if (!be || !be->available())
        return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "synchronize: device: %s is not available", lc_device_name(device));
    return be->sync();
}

lc_status lc_backend_capabilities(lc_device device, lc_backend_caps *out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "backend_capabilities: out: expected a pointer, got NULL");
    if (device != LC_DEVICE_CPU && device != LC_DEVICE_CUDA && device != LC_DEVICE_METAL)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "backend_capabilities: device: expected cpu, cuda or metal, got %s",
                        lc_device_name(device));
    const int built = lc_device_built(device), available = lc_device_available(device);
    *out = (lc_backend_caps){.built = built,
                             .available = available,
                             .compute = available,
                             .memory = available && device == LC_DEVICE_CUDA,
                             .sync = available && device == LC_DEVICE_CUDA,
                             .profiling = available,
                             .trace = built,
                             .sync_policy = built,
                             .memory_model = device == LC_DEVICE_CPU    ? "host"
                                             : device == LC_DEVICE_CUDA ? (built ? "native-device" : "unavailable")
                                                                        : "unavailable"};
    return LC_OK;
}
