/* timeline.c — lc_cuda_timeline (runtime.h): gathers the timeline build's records (pdl.cuh, cmake
 * -DLC_TIMELINE=ON) from the buffer of each CUDA file whose kernels wait through programmatic dependent launch,
 * each record prefixed with the file's index in lc_tl_files. Other builds: LC_ERR_UNSUPPORTED (the records
 * exist only where the kernels were compiled to write them). Read by scripts/device/timeline.py; the build is
 * compile-checked by .ci/run (no GPU there). */
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

#ifndef LC_TIMELINE
lc_status lc_cuda_timeline(unsigned long long *dst, size_t cap, size_t *count, int reset) {
    (void)dst, (void)cap, (void)reset;
    if (count) *count = 0;
    return lc_error(LC_ERR_UNSUPPORTED, "cuda_timeline: this build has no timeline (cmake -DLC_TIMELINE=ON)");
}
#else
typedef int (*lc_tl_reader)(unsigned long long *dst, size_t cap, size_t *count, int reset);
#define LC_TL_FILE(n) int lc_tl_read_##n(unsigned long long *, size_t, size_t *, int);
#define LC_TL_FILES(X)                                                                                           \
    X(gemv_cuda) X(gemv_ring_cuda) X(index_cuda) X(kv_cache_cuda) X(layer_norm_cuda) X(layout_cuda) X(llm_cuda)  \
    X(rope_cuda) X(sdpa_cuda) X(sdpa_decode_cuda) X(sdpa_decode_mma_cuda) X(sdpa_decode_lean_cuda)
LC_TL_FILES(LC_TL_FILE)
#define LC_TL_ENTRY(n) lc_tl_read_##n,
static const lc_tl_reader lc_tl_readers[] = {LC_TL_FILES(LC_TL_ENTRY)};

lc_status lc_cuda_timeline(unsigned long long *dst, size_t cap, size_t *count, int reset) {
    if (!count || (!dst && cap)) return lc_error(LC_ERR_INVALID_ARGUMENT, "cuda_timeline: dst and count: expected pointers");
    *count = 0;
    unsigned long long *tmp = malloc((cap + 1) * 3 * sizeof *tmp); /* a file's 3-value records, then widened */
    if (!tmp) return lc_error(LC_ERR_OUT_OF_MEMORY, "cuda_timeline: host buffer");
    size_t got = 0; /* records */
    for (size_t f = 0; f < sizeof lc_tl_readers / sizeof lc_tl_readers[0]; f++) {
        size_t n = 0;
        if (lc_tl_readers[f](tmp, cap - got, &n, reset) != 0) {
            free(tmp);
            return lc_error(LC_ERR_BACKEND, "cuda_timeline: reading the records of file %zu failed", f);
        }
        for (size_t i = 0; i < n; i++) {
            unsigned long long *r = dst + 4 * (got + i);
            r[0] = f;
            memcpy(r + 1, tmp + 3 * i, 3 * sizeof *tmp);
        }
        got += n;
    }
    free(tmp);
    *count = got;
    return LC_OK;
}
#endif
