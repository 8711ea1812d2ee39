/* attention_projection.h — internal: attention followed by its output projection as one op
 * (attention_projection.c), used by the graph planner's attention_projection fusion. q, k, v [seq, d],
 * w [d, pn], bias [pn] (may be NULL), out [seq, pn]: contiguous float32 on one device.
 * Tests: tests/python/test_graph_plan.py (attention_projection rule on cpu and cuda). */
#ifndef LC_OPS_ATTENTION_PROJECTION_H
#define LC_OPS_ATTENTION_PROJECTION_H

#include "core/backend.h"

/* Whether `be` has the fused kernel for these sizes. */
int lc_attention_projection_fits(const lc_backend *be, int64_t seq, int64_t head_dim, int64_t pn);
lc_status lc_attention_projection_fused(const lc_tensor_t *q, const lc_tensor_t *k, const lc_tensor_t *v,
                                        const lc_tensor_t *w, const lc_tensor_t *bias, lc_tensor_t *out, int causal,
                                        lc_device device);

#endif
