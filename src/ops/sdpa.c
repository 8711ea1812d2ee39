/* sdpa.c — lc_sdpa (ops.h): batched multi-head scaled dot-product attention from the op table's `sdpa`
 * entry (dtypes, the shape rule, the work estimate), plus what the table does not hold: the mask
 * (boolean or additive, broadcast to [b, h, sq, skv]), key_lengths, the sliding window, lse, and strided operands. Operands on
 * the device the op runs on are handed to the kernel in place with their strides (no gather); others are
 * staged contiguous (lc_operand_acquire). Shapes are normalised to 4-D (b, h, s, d) with zero strides on
 * the added axes. The kernel (kernels[LC_OP_SDPA]) gets an lc_sdpa_args through lc_call.ext.
 * lc_sdpa_run is shared with the KV cache (kv_cache.c), whose lengths it trusts, and carries the cache's
 * append when the two are one call (lc_sdpa_call.append: k_new/v_new placed on the route's device too).
 * Tests: tests/python/test_sdpa.py, tests/python/test_kv_cache.py, tests/c/test_sdpa_cpu.c (kernel). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lightning_core/dtype.h"
#include "ops/dispatch.h"
#include "ops/sdpa_internal.h"

static const char *const SDPA = "scaled_dot_product_attention";

/* Rank-r shape/strides -> 4-D (leading axes of extent 1, stride 0). */
static void lc_to4(int r, const int64_t *shape, const int64_t *strides, int64_t s4[4], int64_t st4[4]) {
    for (int i = 0; i < 4; i++) {
        const int j = i - (4 - r);
        s4[i] = j >= 0 ? shape[j] : 1;
        st4[i] = j >= 0 && strides ? strides[j] : 0;
    }
}

static void lc_contig_strides(int r, const int64_t *shape, int64_t *st) {
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        st[i] = acc;
        acc *= shape[i];
    }
}

/* One operand on the route's device: in place (its own strides) when it lives there, else staged
 * contiguous. *data and st4 (4-D element strides over the normalised axes) are set. */
lc_status lc_sdpa_operand(const char *fn, const char *name, const lc_tensor_t *t, const lc_route *route,
                                 lc_operand *staged, const void **data, int64_t st4[4]) {
    const int r = lc_tensor_ndim(t);
    int64_t s4[4], st[LC_MAX_DIMS];
    if (lc_tensor_device(t) == route->backend->device) {
        staged->data = *data = lc_tensor_data(t);
        staged->scratch = NULL;
        staged->scratch_owner = NULL;
        lc_to4(r, lc_tensor_shape(t), lc_tensor_strides(t), s4, st4);
        return LC_OK;
    }
    lc_status st_ = lc_operand_acquire(fn, name, t, route, staged);
    if (st_ != LC_OK) return st_;
    *data = staged->data;
    lc_contig_strides(r, lc_tensor_shape(t), st);
    lc_to4(r, lc_tensor_shape(t), st, s4, st4);
    return LC_OK;
}

/* The mask against the full score shape (q's leading axes + [skv], rank r): dtype, rank, broadcast (NumPy's
 * rules, aligned from the right). Its 4-D strides come from lc_sdpa_operand, broadcast axes zeroed. */
static lc_status lc_sdpa_mask_check(const char *fn, const lc_tensor_t *m, int r, const int64_t *full, lc_dtype qdt) {
    const int mr = lc_tensor_ndim(m);
    const int64_t *ms = lc_tensor_shape(m);
    const lc_dtype mdt = lc_tensor_dtype(m);
    char want[96], got[96];
    if (mdt != LC_DTYPE_BOOL && mdt != LC_DTYPE_F32 && mdt != qdt)
        return lc_error(LC_ERR_DTYPE, "%s: attn_mask: expected dtype bool, float32 or %s (q's), got %s", fn,
                        lc_dtype_name(qdt), lc_dtype_name(mdt));
    lc_op_format_shape(want, sizeof want, r, full);
    lc_op_format_shape(got, sizeof got, mr, ms);
    if (mr > r)
        return lc_error(LC_ERR_SHAPE, "%s: attn_mask: expected at most %d dimensions broadcastable to %s, got %s", fn, r,
                        want, got);
    for (int i = 0; i < mr; i++)
        if (ms[i] != full[r - mr + i] && ms[i] != 1)
            return lc_error(LC_ERR_SHAPE, "%s: attn_mask: expected a shape broadcastable to %s (each axis equal or 1), got %s",
                            fn, want, got);
    return LC_OK;
}

/* out: dtype, exact shape, writable; contiguous, or a strided view whose elements do not overlap (each
 * written once: e.g. the [b, h, s, d] view of a [b, s, h, d] buffer, so the heads land merged for the output
 * projection). A strided out must live on the op's device (checked after routing). */
static lc_status lc_sdpa_check_out(const char *fn, const lc_tensor_t *out, lc_dtype dtype, int ndim, const int64_t *shape) {
    lc_status st = lc_check_out_view(fn, out, dtype, ndim, shape);
    if (st != LC_OK || lc_tensor_is_contiguous(out)) return st;
    /* non-overlapping: sorted by stride, each axis' stride >= the span of the smaller ones */
    int order[LC_MAX_DIMS], n = 0;
    const int64_t *st_ = lc_tensor_strides(out);
    for (int i = 0; i < ndim; i++)
        if (shape[i] > 1) order[n++] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && st_[order[j]] < st_[order[j - 1]]; j--) {
            const int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int64_t span = 1;
    for (int i = 0; i < n; i++) {
        if (st_[order[i]] < span)
            return lc_error(LC_ERR_INVALID_ARGUMENT,
                            "%s: out: expected a tensor whose elements do not overlap, got a view with stride %lld on axis %d",
                            fn, (long long)st_[order[i]], order[i]);
        span = st_[order[i]] * shape[order[i]];
    }
    return LC_OK;
}

lc_status lc_sdpa_run(const lc_sdpa_call *c) {
    const char *fn = c->fn;
    const lc_op_def *d = lc_op_get(LC_OP_SDPA);
    const lc_tensor_t *q = c->q, *k = c->k, *v = c->v;
    lc_status st;
    const lc_tensor_t *qkv[3] = {q, k, v};
    lc_op_operands in;
    memset(&in, 0, sizeof in);
    in.prefix = fn;
    in.n = 3;
    for (int i = 0; i < 3; i++) {
        if ((st = lc_check_tensor(fn, d->input_names[i], qkv[i])) != LC_OK) return st;
        in.ndim[i] = lc_tensor_ndim(qkv[i]);
        in.shape[i] = lc_tensor_shape(qkv[i]);
        in.dtype[i] = lc_tensor_dtype(qkv[i]);
    }
    lc_dtype dtype;
    int ond;
    int64_t os[LC_MAX_DIMS];
    if ((st = lc_op_check_dtypes(d, &in, &dtype)) != LC_OK || (st = lc_op_infer(d, &in, NULL, &ond, os)) != LC_OK)
        return st;
    if ((st = lc_sdpa_check_out(fn, c->out, dtype, ond, os)) != LC_OK) return st;
    const int r = ond;
    int64_t q4[4], k4[4], unused[4];
    lc_to4(r, os, NULL, q4, unused);
    lc_to4(r, in.shape[1], NULL, k4, unused);
    const int64_t batch = q4[0], sq = q4[2], skv = k4[2];
    /* scale */
    double scale = c->scale;
    if (!(isfinite(scale)))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: scale: expected a finite number (or None: 1/sqrt(head_dim)), got %g", fn,
                        scale);
    if (scale == 0.0) scale = 1.0 / sqrt((double)q4[3]);
    /* window: 0 none, else >= 1; one at least skv hides nothing (every position is < skv) and runs as none */
    if (c->window < 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: window: expected 0 (none) or a number of keys >= 1, got %lld", fn,
                        (long long)c->window);
    const int64_t window = c->window >= skv ? 0 : c->window;
    /* mask */
    int64_t full[4];
    memcpy(full, os, (size_t)r * sizeof(int64_t));
    full[r - 1] = skv;
    if (c->mask) {
        if ((st = lc_check_tensor(fn, "attn_mask", c->mask)) != LC_OK) return st;
        if ((st = lc_sdpa_mask_check(fn, c->mask, r, full, dtype)) != LC_OK) return st;
    }
    /* key_lengths */
    if (c->key_lengths) {
        const lc_tensor_t *kl = c->key_lengths;
        if ((st = lc_check_tensor(fn, "key_lengths", kl)) != LC_OK) return st;
        const lc_dtype kdt = lc_tensor_dtype(kl);
        if (kdt != LC_DTYPE_I32 && kdt != LC_DTYPE_I64)
            return lc_error(LC_ERR_DTYPE, "%s: key_lengths: expected dtype int32 or int64, got %s", fn, lc_dtype_name(kdt));
        if (lc_tensor_ndim(kl) != 1 || lc_tensor_shape(kl)[0] != batch) {
            char got[96];
            lc_op_format_shape(got, sizeof got, lc_tensor_ndim(kl), lc_tensor_shape(kl));
            return lc_error(LC_ERR_SHAPE, "%s: key_lengths: expected shape [%lld] (one length per batch entry), got %s", fn,
                            (long long)batch, got);
        }
        if (!c->trusted_lengths) {
            int64_t *host = malloc((size_t)batch * sizeof(int64_t) + 8);
            if (!host) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: key_lengths: no memory for the check", fn);
            if ((st = lc_tensor_to_host(kl, host, (size_t)batch * lc_dtype_size(kdt))) != LC_OK) {
                free(host);
                return lc_error_wrap(st, "%s: key_lengths", fn);
            }
            for (int64_t b = 0; b < batch; b++) {
                const int64_t L = kdt == LC_DTYPE_I32 ? (int64_t)((const int32_t *)host)[b] : host[b];
                if (L < 0 || L > skv) {
                    free(host);
                    return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: key_lengths: expected values in 0..%lld (skv), got %lld at %lld",
                                    fn, (long long)skv, (long long)L, (long long)b);
                }
            }
            free(host);
        }
    }
    /* lse */
    if (c->lse && (st = lc_check_out_arg(fn, "lse", c->lse, LC_DTYPE_F32, r - 1, os, 1)) != LC_OK) return st;
    /* overlap: out and lse against every input */
    const lc_tensor_t *inputs[7] = {q, k, v, c->mask, c->key_lengths, c->k_new, c->v_new};
    const char *names[7] = {"q", "k", "v", "attn_mask", "key_lengths", "k_new", "v_new"};
    for (int i = 0; i < 7; i++) {
        if (!inputs[i]) continue;
        if ((st = lc_check_no_overlap(fn, c->out, names[i], inputs[i], 0)) != LC_OK) return st;
        if (c->lse && (st = lc_check_no_overlap(fn, c->lse, names[i], inputs[i], 0)) != LC_OK) return st;
    }
    if (c->lse && (st = lc_check_no_overlap(fn, c->lse, "out", c->out, 0)) != LC_OK) return st;
    /* route */
    const lc_op_work w = d->work(&in, NULL, ond, os);
    const lc_work work = {w.flops, w.bytes, NULL, LC_CROSSOVER_NONE};
    const lc_tensor_t *operands[10] = {q, k, v, c->mask, c->key_lengths, c->out, c->lse, c->k_new, c->v_new, c->positions};
    lc_route route;
    if ((st = lc_route_op(fn, LC_OP_SDPA, dtype, c->device, operands, 10, work, &route)) != LC_OK) return st;
    /* stage */
    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = dtype;
    a.batch = batch;
    a.heads = q4[1];
    a.kv_heads = k4[1];
    a.sq = sq;
    a.skv = skv;
    a.head_dim = q4[3];
    a.causal = c->causal != 0;
    a.window = window;
    a.scale = (float)scale;
    lc_operand sq_[8];
    memset(sq_, 0, sizeof sq_);
    lc_kv_append_args ap;
    lc_rope_args ra;
    lc_output oo = {0}, lo = {0};
    const void *kl_data = NULL, *mask_data = NULL;
    int64_t kl_st[4];
    st = lc_sdpa_operand(fn, "q", q, &route, &sq_[0], &a.q, a.q_st);
    if (st == LC_OK) st = lc_sdpa_operand(fn, "k", k, &route, &sq_[1], &a.k, a.k_st);
    if (st == LC_OK) st = lc_sdpa_operand(fn, "v", v, &route, &sq_[2], &a.v, a.v_st);
    if (st == LC_OK && c->mask) {
        st = lc_sdpa_operand(fn, "attn_mask", c->mask, &route, &sq_[3], &mask_data, a.m_st);
        int64_t m4[4], unused4[4]; /* the mask's shape right-aligned to (b, h, i, j): an axis of 1 broadcasts */
        lc_to4(lc_tensor_ndim(c->mask), lc_tensor_shape(c->mask), NULL, m4, unused4);
        for (int i = 0; i < 4; i++)
            if (m4[i] == 1) a.m_st[i] = 0;
        a.mask = mask_data;
        a.mask_kind = lc_tensor_dtype(c->mask) == LC_DTYPE_BOOL ? LC_SDPA_MASK_BOOL : LC_SDPA_MASK_ADD;
        a.mask_dtype = lc_tensor_dtype(c->mask);
    }
    if (st == LC_OK && c->key_lengths) {
        st = lc_sdpa_operand(fn, "key_lengths", c->key_lengths, &route, &sq_[4], &kl_data, kl_st);
        a.key_lengths = kl_data;
        a.key_lengths_dtype = lc_tensor_dtype(c->key_lengths);
    }
    if (st == LC_OK && c->append) {
        ap = *c->append;
        st = lc_sdpa_operand(fn, "k_new", c->k_new, &route, &sq_[5], &ap.k_new, ap.kn_st);
        if (st == LC_OK) st = lc_sdpa_operand(fn, "v_new", c->v_new, &route, &sq_[6], &ap.v_new, ap.vn_st);
        a.append = &ap;
    }
    if (st == LC_OK && c->append && c->rope) {
        ra = *c->rope;
        int64_t pst[4];
        st = lc_sdpa_operand(fn, "positions", c->positions, &route, &sq_[7], &ra.positions, pst);
        lc_rope_pos_strides(c->positions, pst, ra.p_st);
        a.rope = &ra;
    }
    const int out_in_place = lc_tensor_device(c->out) == route.backend->device;
    if (st == LC_OK && !out_in_place && !lc_tensor_is_contiguous(c->out))
        st = lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: a strided out must live on the device the op runs on (%s), got one on %s",
                      fn, route.backend->name, lc_device_name(lc_tensor_device(c->out)));
    if (st == LC_OK) st = lc_output_acquire(fn, c->out, &route, &oo);
    if (st == LC_OK && c->lse) st = lc_output_acquire(fn, c->lse, &route, &lo);
    if (st == LC_OK) {
        int64_t ost[LC_MAX_DIMS], s4[4];
        lc_contig_strides(r, os, ost);
        lc_to4(r, os, out_in_place ? lc_tensor_strides(c->out) : ost, s4, a.o_st);
        a.out = oo.data;
        a.lse = c->lse ? (float *)lo.data : NULL;
        lc_call call;
        memset(&call, 0, sizeof call);
        call.op = LC_OP_SDPA;
        call.dtype = dtype;
        call.nin = 3;
        call.out = oo.data;
        call.out_ndim = ond;
        memcpy(call.out_shape, os, (size_t)ond * sizeof(int64_t));
        call.attrs.causal = a.causal;
        call.ext = &a;
        const char *path = "unknown";
        lc_status kst = route.backend->kernels[LC_OP_SDPA](&call, &path);
        st = lc_output_commit(fn, &oo, kst);
        if (c->lse) {
            lc_status lst = lc_output_commit(fn, &lo, st);
            if (st == LC_OK) st = lst;
        }
        if (st == LC_OK) lc_route_done(fn, &route, path);
    } else {
        if (oo.data) lc_output_commit(fn, &oo, st);
        if (lo.data) lc_output_commit(fn, &lo, st);
    }
    for (int i = 0; i < 8; i++) lc_operand_release(&sq_[i]);
    return st;
}

lc_status lc_sdpa(const lc_tensor_t *q, const lc_tensor_t *k, const lc_tensor_t *v, lc_tensor_t *out,
                  const lc_sdpa_options *options, lc_device device) {
    lc_sdpa_call c;
    memset(&c, 0, sizeof c);
    c.fn = SDPA;
    c.q = q;
    c.k = k;
    c.v = v;
    c.out = out;
    c.device = device;
    if (options) {
        c.mask = options->attn_mask;
        c.key_lengths = options->key_lengths;
        c.causal = options->causal;
        c.scale = options->scale;
        c.lse = options->lse;
        c.window = options->window;
    }
    return lc_sdpa_run(&c);
}
