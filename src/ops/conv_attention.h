/* conv_attention.h — internal: the fused conv -> qkv repeat -> attention op (conv_attention.c) that the
 * conv->attention session uses on backends with the fused kernel (CUDA) for shapes that fit it. Every
 * tensor is a contiguous resident buffer on that backend's device; out is [seq, head_dim].
 * Tests: tests/python/test_sessions.py, tests/c/test_sessions.c. */
#ifndef LC_OPS_CONV_ATTENTION_H
#define LC_OPS_CONV_ATTENTION_H

#include "core/backend.h"

int lc_conv_attention_fits(const lc_backend *be, const lc_tensor_t *x, const lc_tensor_t *w, const lc_conv2d_params *p,
                           int64_t seq, int64_t head_dim, int causal);
lc_status lc_conv_attention_fused(const lc_tensor_t *x, const lc_tensor_t *w, const lc_tensor_t *bias, lc_tensor_t *out,
                                  const lc_conv2d_params *p, int causal, lc_device device);

#endif
