/* session.h — graph capture/replay and resident sessions (seed sections 6, 9 and 23).
 *
 * Device graphs: lc_capture_begin(LC_DEVICE_CUDA) makes the calling thread's following ops on
 * device-resident tensors be recorded instead of run; lc_capture_end returns a graph that
 * lc_device_graph_replay enqueues again and again (one CUDA graph launch per replay, no per-op host
 * work). Captured ops must keep every operand and output on the device (a host operand, a download or a
 * synchronisation during capture is an error) and the graph keeps every tensor it uses alive until
 * lc_device_graph_free. CUDA only; the CPU has no capture (sessions run eagerly there).
 *
 * Resident sessions keep their inputs, intermediates and outputs in buffers on their device, so
 * repeated work pays no allocation, no re-upload and no synchronisation it does not ask for. A session
 * has numbered inputs and one output (shapes fixed at creation; float32, or float16/bfloat16 for the
 * matmul and elementwise kinds) and one or more programs (the
 * work: e.g. matmul; or add/sub/div for the elementwise session). The building blocks:
 *   lc_session_upload    copy a host or device tensor into resident input i (returns once the source
 *                        has been read; the device copy is ordered before later work);
 *   lc_session_run       enqueue program p `loops` times on the resident inputs. On CUDA the first run
 *                        of a program is eager (it warms the allocator and autotuning); later runs
 *                        capture it once as a CUDA graph and replay it (one launch per loop);
 *   lc_session_sync      wait for the session's device work;
 *   lc_session_download  copy the resident output into a host or device tensor (a host destination
 *                        waits for the work; a device one is enqueued).
 * Runs and syncs follow the sync policy (runtime.h); lc_session_sync always waits unless the policy
 * in force is LC_SYNC_NEVER. Python's seed methods (start_into, run_into, sync_into, run_batch_*) are
 * compositions of these, documented in docs/python_api.md.
 * Tests: tests/c/test_sessions.c, tests/python/test_sessions.py, tests/python/test_capture.py. */
#ifndef LIGHTNING_CORE_SESSION_H
#define LIGHTNING_CORE_SESSION_H

#include <stdint.h>

#include "lightning_core/ops.h"
#include "lightning_core/status.h"
#include "lightning_core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device graphs ----------------------------------------------------------------------------- */

typedef struct lc_device_graph lc_device_graph_t;

lc_status lc_capture_begin(lc_device device);
/* Ends the calling thread's capture. keep = 0 discards it (error paths); keep != 0 returns the graph
 * in *out (an error when nothing was captured). */
lc_status lc_capture_end(int keep, lc_device_graph_t **out);
/* Whether the calling thread is capturing. */
int lc_capture_active(void);
/* Enqueues `loops` (>= 1) replays; waits afterwards under LC_SYNC_ALWAYS. */
lc_status lc_device_graph_replay(lc_device_graph_t *graph, int64_t loops);
int64_t lc_device_graph_nodes(const lc_device_graph_t *graph);
/* Waits for the graph's replays, then frees it and releases the tensors it kept alive. NULL is allowed. */
void lc_device_graph_free(lc_device_graph_t *graph);

/* ---- resident sessions ------------------------------------------------------------------------- */

typedef struct lc_session lc_session_t;

/* c [m,n] = a [m,k] · b [k,n]. Inputs: 0 = a, 1 = b. One program (0). float32 buffers; the _typed form
 * keeps every resident buffer in `dtype`: float32, or float16/bfloat16 (the op table's matmul dtypes:
 * storage in the dtype, float32 accumulation); another dtype is LC_ERR_DTYPE. */
lc_status lc_session_new_matmul(int64_t m, int64_t k, int64_t n, lc_device device, lc_session_t **out);
lc_status lc_session_new_matmul_typed(int64_t m, int64_t k, int64_t n, lc_dtype dtype, lc_device device,
                                      lc_session_t **out);

/* out [rows,cols] = a (+|-|/) b. Inputs: 0 = a, 1 = b. Programs: LC_ELEMWISE_ADD/SUB/DIV. */
enum { LC_ELEMWISE_ADD = 0, LC_ELEMWISE_SUB = 1, LC_ELEMWISE_DIV = 2 };
lc_status lc_session_new_elemwise(int64_t rows, int64_t cols, lc_device device, lc_session_t **out);
/* The same with every resident buffer in `dtype` (float32, float16 or bfloat16, as the _typed matmul). */
lc_status lc_session_new_elemwise_typed(int64_t rows, int64_t cols, lc_dtype dtype, lc_device device, lc_session_t **out);

/* out [seq,head_dim] = attention(q, k, v) as lc_attention_forward (float32 buffers). Inputs: 0 = q, 1 = k, 2 = v.
 * The _typed form: every resident buffer in `dtype` (float32, float16 or bfloat16: float32 scores, softmax
 * and accumulation, out rounded once, as lc_attention_forward). */
lc_status lc_session_new_attention(int64_t seq, int64_t head_dim, int causal, lc_device device, lc_session_t **out);
lc_status lc_session_new_attention_typed(int64_t seq, int64_t head_dim, int causal, lc_dtype dtype, lc_device device,
                                         lc_session_t **out);

/* The seed's conv -> attention chain: y = relu(conv2d(x [n,c,h,w], w [oc,c,3,3]) + bias [oc]) with the
 * given stride/padding; q|k|v = the first 3·seq·head_dim elements of y flattened and repeated
 * (element i = y_flat[i % y.size]); out [seq,head_dim] = attention(q, k, v). Inputs: 0 = x, 1 = w,
 * 2 = bias. Three device ops per run (conv, pack, attention): one CUDA graph replay. */
typedef struct lc_conv_attention_shape {
    int64_t n, c, h, w, oc;
    int stride_h, stride_w, pad_h, pad_w;
    int64_t seq, head_dim;
    int causal;
} lc_conv_attention_shape;
lc_status lc_session_new_conv_attention(const lc_conv_attention_shape *shape, lc_device device, lc_session_t **out);
/* The same with every resident buffer (and the intermediates of the unfused chain) in `dtype`: float32, float16
 * or bfloat16. A 16-bit chain runs as the three ops (each rounds its output once) where the fused kernel has no
 * kernel for the dtype. */
lc_status lc_session_new_conv_attention_typed(const lc_conv_attention_shape *shape, lc_dtype dtype, lc_device device,
                                              lc_session_t **out);

void lc_session_free(lc_session_t *s);

lc_device lc_session_device(const lc_session_t *s);
/* The dtype of the session's resident buffers (inputs, output). */
lc_dtype lc_session_dtype(const lc_session_t *s);
int lc_session_num_inputs(const lc_session_t *s);
/* Resident buffers (borrowed; valid for the session's life): inputs 0..n-1, the output. */
const lc_tensor_t *lc_session_input(const lc_session_t *s, int index);
const lc_tensor_t *lc_session_output(const lc_session_t *s);
/* Whether program `program` replays a captured CUDA graph (after its second run on CUDA). */
int lc_session_uses_graph(const lc_session_t *s, int program);
/* Runs of the session's programs so far (loops counted), and how many of them were graph replays. */
int64_t lc_session_runs(const lc_session_t *s);
int64_t lc_session_replays(const lc_session_t *s);
/* Whether every input has been uploaded at least once (cached runs need it). */
int lc_session_inputs_ready(const lc_session_t *s);

/* src: the session's dtype with exactly the input's element count (any shape), host or device, any layout. */
lc_status lc_session_upload(lc_session_t *s, int index, const lc_tensor_t *src);
/* The checks of lc_session_upload (index, dtype, element count) without the copy: a caller uploading
 * several inputs checks them all first, so that a refused call changes no resident input. */
lc_status lc_session_check_upload(const lc_session_t *s, int index, const lc_tensor_t *src);
/* loops: 1..LC_SESSION_MAX_LOOPS. */
lc_status lc_session_run(lc_session_t *s, int program, int64_t loops);
/* The most loops one run takes (2^24 = 16,777,216): a batch is bounded; split longer ones. */
#define LC_SESSION_MAX_LOOPS ((int64_t)1 << 24)
/* lc_session_run that can be stopped between launches: poll(ctx) is called about every 10 ms of the
 * run (never inside a launch, never for a run shorter than that); when it returns nonzero no further
 * launch is made and the call returns LC_OK with *done < loops. The launches made count (runs, replays;
 * the output holds the last one's result) and the session stays usable. *done = loops for a complete
 * run. poll NULL: exactly lc_session_run. */
lc_status lc_session_run_polled(lc_session_t *s, int program, int64_t loops, int (*poll)(void *ctx), void *ctx,
                                int64_t *done);
lc_status lc_session_sync(lc_session_t *s);
/* dst: the session's dtype, writable, contiguous, exactly the output's element count; host or device. An error if
 * no program has run yet (the output holds nothing). */
lc_status lc_session_download(lc_session_t *s, lc_tensor_t *dst);

#ifdef __cplusplus
}
#endif
#endif
