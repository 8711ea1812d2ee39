/* session_internal.h — internal: the resident session object shared by session.c (the generic core:
 * buffers, upload/run/sync/download, graph capture per program, trace) and session_kinds.c (the
 * constructors and programs of each session kind). Tests: tests/c/test_sessions.c. */
#ifndef LC_OPS_SESSION_INTERNAL_H
#define LC_OPS_SESSION_INTERNAL_H

#include "lightning_core/session.h"
#include "ops/dispatch.h"
#include "ops/resident.h"

#define LC_SESSION_MAX_INPUTS 3
#define LC_SESSION_MAX_PROGRAMS 3
#define LC_SESSION_MAX_TEMPS 5

typedef lc_status (*lc_session_program_fn)(lc_session_t *s, int program);

struct lc_session {
    const char *name;            /* "matmul_session", ...: errors and trace events */
    lc_device device;            /* cpu or cuda */
    lc_dtype dtype;              /* of every resident input, intermediate and the output */
    const lc_backend *backend;
    int ninputs, nprograms, ntemps;
    lc_tensor_t *in[LC_SESSION_MAX_INPUTS];
    const char *input_names[LC_SESSION_MAX_INPUTS];
    lc_tensor_t *out;
    lc_tensor_t *temp[LC_SESSION_MAX_TEMPS]; /* intermediates and views the programs use */
    lc_session_program_fn program;
    lc_replay replay[LC_SESSION_MAX_PROGRAMS]; /* per program: eager, then one captured CUDA graph */
    unsigned uploaded;           /* bit i: input i holds data */
    int have_result;
    int64_t runs, replays;
    int causal;
    int fused;                   /* conv_attention: one fused kernel instead of conv, pack, attention */
    lc_conv2d_params conv;
};

/* Allocates a session on `device` (auto/metal/cuda resolve by the fallback policy) with a resident
 * tensor of `dtype` per input shape and the output shape; the kind fills programs and temps. */
lc_status lc_session_create(const char *name, lc_device device, lc_dtype dtype, int ninputs, const char *const *input_names,
                            const int *input_ndims, const int64_t (*input_shapes)[4], int out_ndim,
                            const int64_t *out_shape, int nprograms, lc_session_program_fn program,
                            lc_session_t **out);
/* A resident intermediate of the session's dtype on the session's device, kept in temp[]; returns it (borrowed). */
lc_status lc_session_add_temp(lc_session_t *s, int ndim, const int64_t *shape, lc_tensor_t **out);
/* A view of base (contiguous, `ndim`/`shape`, element offset) kept in temp[]. */
lc_status lc_session_add_view(lc_session_t *s, const lc_tensor_t *base, int ndim, const int64_t *shape, int64_t offset,
                              lc_tensor_t **out);

#endif
