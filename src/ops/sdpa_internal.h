/* sdpa_internal.h — internal: one sdpa call of the ops layer (sdpa.c), shared by lc_sdpa and the KV cache
 * (kv_cache.c). trusted_lengths: key_lengths come from the library (the cache's device lengths) and are not
 * read back for the range check (which would wait for the device and break graph capture).
 * Tests: tests/python/test_sdpa.py, tests/python/test_kv_cache.py. */
#ifndef LC_OPS_SDPA_INTERNAL_H
#define LC_OPS_SDPA_INTERNAL_H

#include "lightning_core/ops.h"

typedef struct lc_sdpa_call {
    const char *fn; /* error prefix */
    const lc_tensor_t *q, *k, *v, *mask, *key_lengths;
    lc_tensor_t *out, *lse;
    int causal;
    double scale; /* 0: 1/sqrt(head_dim) */
    int64_t window; /* 0: none; >= 1 (lc_sdpa_args.window); negative: refused naming window */
    int trusted_lengths;
    lc_device device;
    /* the KV cache's append fused into its attention (kv_cache.c): k_new/v_new (checked by the caller) and the
     * append's arguments but for their data and strides, which lc_sdpa_run fills after placing them on the
     * route's device; NULL: attention alone */
    const lc_tensor_t *k_new, *v_new;
    const struct lc_kv_append_args *append;
    /* with append: the rotary embedding of q and k_new first (lc_sdpa_args.rope; positions checked by the
     * caller and placed on the route's device by lc_sdpa_run); NULL: none */
    const lc_tensor_t *positions;
    const struct lc_rope_args *rope;
} lc_sdpa_call;

lc_status lc_sdpa_run(const lc_sdpa_call *c);

struct lc_route;
struct lc_operand;
/* One strided operand of rank <= 4 on the route's device: in place with its own strides when it lives there,
 * else staged contiguous (release with lc_operand_release). *data and st4 (element strides over the
 * right-aligned 4-D axes, 0 on the added ones) are set. */
lc_status lc_sdpa_operand(const char *fn, const char *name, const lc_tensor_t *t, const struct lc_route *route,
                          struct lc_operand *staged, const void **data, int64_t st4[4]);

struct lc_rope_args;
struct lc_op_work;
/* rope.c: x and positions checked as lc_rope checks them (fn names the call, xname the rotated tensor), the
 * options resolved, and a's fields but for its data pointers and strides filled; *ond / os: the output's shape
 * (x's); *work (when not NULL): the op table's work estimate. */
lc_status lc_rope_prepare(const char *fn, const char *xname, const lc_tensor_t *x, const lc_tensor_t *positions,
                          const lc_rope_options *options, struct lc_rope_args *a, int *ond, int64_t *os,
                          struct lc_op_work *work);
/* positions' element strides over (b, token) for lc_rope_args.p_st (0 on b for a [seq] tensor), from st4 as
 * lc_sdpa_operand gives them. */
void lc_rope_pos_strides(const lc_tensor_t *positions, const int64_t st4[4], int64_t p_st[2]);

#endif
