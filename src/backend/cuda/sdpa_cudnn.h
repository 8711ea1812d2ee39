/* sdpa_cudnn.h — the 16-bit prefill on cuDNN's fused flash-attention engine (sdpa_cudnn.c says when it is
 * taken). Tests: tests/python/test_sdpa_cudnn.py. */
#ifndef LC_SDPA_CUDNN_H
#define LC_SDPA_CUDNN_H

#include <cuda_runtime.h>

#include "core/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Enqueues a on stream through cuDNN when the shapes, the library and LC_SDPA_CUDNN allow it (*taken = 1,
 * *path named); otherwise *taken = 0, nothing enqueued, LC_OK, and the caller runs its own kernels. device:
 * the CUDA device of stream; capturing: the stream is being captured (then no plan is built). An error only
 * when the workspace cannot be allocated. */
lc_status lc_cuda_sdpa_cudnn(const lc_sdpa_args *a, cudaStream_t stream, int device, int capturing,
                             const char **path, int *taken);
/* cudnnGetVersion() of the loaded library (e.g. 91900), or 0 when cuDNN is not built in or not loadable. */
int lc_cuda_sdpa_cudnn_version(void);

#ifdef __cplusplus
}
#endif

#endif
