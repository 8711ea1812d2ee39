/* kv_cache.c — lc_kv_cache_* (ops.h): a KV cache for decoding. k and v are one tensor each,
 * [batch, kv_heads, max_seq, head_dim] on the cache's device, allocated once; the current length of each
 * sequence is an int32 tensor [batch] on the same device, read and advanced by the append kernel
 * (kernels[LC_OP_KV_APPEND], lc_kv_append_args through lc_call.ext) and read by the attention kernel as
 * key_lengths, so a captured graph of append + attention replays at each step's length. A host mirror of
 * the lengths lets an eager append refuse (nothing written) what would pass max_seq; a capture makes the
 * mirror stale, and the next eager append reads the device lengths back. A replayed append that does not
 * fit writes what fits and raises the overflow flag (an int32 on the device).
 * lc_kv_cache_append_attention checks both calls first (nothing appended when one fails), then hands the
 * append to the sdpa kernel through lc_sdpa_args.append (fused on the CUDA tensor-core decode);
 * lc_kv_cache_append_attention_rope also hands it the rotary embedding of q and k_new (lc_sdpa_args.rope),
 * and where no backend kernel takes that (LC_ERR_UNSUPPORTED, nothing launched) runs lc_rope into scratch first.
 * Tests: tests/python/test_kv_cache.py, tests/python/test_kv_cache_fused.py, tests/python/test_kv_cache_rope.py,
 * tests/c/test_sdpa_cpu.c (the CPU append kernel). */
#include <stdlib.h>
#include <string.h>

#include "lightning_core/dtype.h"
#include "lightning_core/session.h"
#include "ops/dispatch.h"
#include "core/decode_program.h"
#include "ops/sdpa_internal.h"

struct lc_kv_cache {
    int64_t batch, kv_heads, max_seq, head_dim;
    lc_dtype dtype;
    lc_device device;
    lc_tensor_t *k, *v, *lengths, *overflow;
    int64_t *host_len;
    int mirror_valid;
};

static const char *const APPEND = "KVCache.append";
static const char *const ATTEND = "KVCache.attention";

void lc_kv_cache_free(lc_kv_cache_t *c) {
    if (!c) return;
    lc_tensor_free(c->k);
    lc_tensor_free(c->v);
    lc_tensor_free(c->lengths);
    lc_tensor_free(c->overflow);
    free(c->host_len);
    free(c);
}

lc_status lc_kv_cache_reset(lc_kv_cache_t *c) {
    if (!c) return lc_error(LC_ERR_INVALID_ARGUMENT, "KVCache.reset: cache: expected a cache, got NULL");
    int32_t *zeros = calloc((size_t)c->batch + 1, sizeof(int32_t));
    if (!zeros) return lc_error(LC_ERR_OUT_OF_MEMORY, "KVCache.reset: no memory");
    lc_status st = lc_tensor_copy_from_host(c->lengths, zeros, (size_t)c->batch * sizeof(int32_t));
    if (st == LC_OK) st = lc_tensor_copy_from_host(c->overflow, zeros, sizeof(int32_t));
    free(zeros);
    if (st != LC_OK) return lc_error_wrap(st, "KVCache.reset");
    memset(c->host_len, 0, (size_t)c->batch * sizeof(int64_t));
    c->mirror_valid = 1;
    return LC_OK;
}

lc_status lc_kv_cache_new(int64_t batch, int64_t kv_heads, int64_t max_seq, int64_t head_dim, lc_dtype dtype,
                          lc_device device, lc_kv_cache_t **out) {
    const char *fn = "KVCache";
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", fn);
    *out = NULL;
    const int64_t dims[4] = {batch, kv_heads, max_seq, head_dim};
    const char *names[4] = {"batch", "kv_heads", "max_seq", "head_dim"};
    for (int i = 0; i < 4; i++)
        if (dims[i] < 1 || dims[i] > INT32_MAX)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected 1..%d, got %lld", fn, names[i], INT32_MAX,
                            (long long)dims[i]);
    if (head_dim > 256) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: head_dim: expected 1..256, got %lld", fn, (long long)head_dim);
    if (dtype != LC_DTYPE_F32 && dtype != LC_DTYPE_F16 && dtype != LC_DTYPE_BF16)
        return lc_error(LC_ERR_DTYPE, "%s: dtype: expected float32, float16 or bfloat16, got %s", fn, lc_dtype_name(dtype));
    if (device != LC_DEVICE_CPU && device != LC_DEVICE_CUDA)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: device: expected cpu or cuda", fn);
    lc_kv_cache_t *c = calloc(1, sizeof *c);
    if (!c) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    c->batch = batch;
    c->kv_heads = kv_heads;
    c->max_seq = max_seq;
    c->head_dim = head_dim;
    c->dtype = dtype;
    c->device = device;
    c->host_len = calloc((size_t)batch, sizeof(int64_t));
    const int64_t one = 1;
    lc_status st = c->host_len ? LC_OK : lc_error(LC_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    if (st == LC_OK) st = lc_tensor_new(dtype, device, 4, dims, &c->k);
    if (st == LC_OK) st = lc_tensor_new(dtype, device, 4, dims, &c->v);
    if (st == LC_OK) st = lc_tensor_new(LC_DTYPE_I32, device, 1, &batch, &c->lengths);
    if (st == LC_OK) st = lc_tensor_new(LC_DTYPE_I32, device, 1, &one, &c->overflow);
    if (st == LC_OK) st = lc_kv_cache_reset(c);
    if (st != LC_OK) {
        lc_kv_cache_free(c);
        return lc_error_wrap(st, "%s", fn);
    }
    *out = c;
    return LC_OK;
}

lc_status lc_kv_cache_set_lengths(lc_kv_cache_t *c, const int64_t *lengths, int64_t n) {
    const char *fn = "KVCache.set_lengths";
    if (!c || !lengths) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: expected a cache and lengths", fn);
    if (n != c->batch)
        return lc_error(LC_ERR_SHAPE, "%s: lengths: expected %lld values (one per sequence), got %lld", fn, (long long)c->batch,
                        (long long)n);
    for (int64_t b = 0; b < n; b++)
        if (lengths[b] < 0 || lengths[b] > c->max_seq)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: lengths: expected values in 0..%lld (max_seq), got %lld at %lld", fn,
                            (long long)c->max_seq, (long long)lengths[b], (long long)b);
    if (lc_capture_active()) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: not allowed inside a graph capture", fn);
    int32_t *tmp = malloc((size_t)n * sizeof(int32_t));
    if (!tmp) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    for (int64_t b = 0; b < n; b++) tmp[b] = (int32_t)lengths[b];
    lc_status st = lc_tensor_copy_from_host(c->lengths, tmp, (size_t)n * sizeof(int32_t));
    free(tmp);
    if (st != LC_OK) return lc_error_wrap(st, "%s", fn);
    for (int64_t b = 0; b < n; b++) c->host_len[b] = lengths[b];
    c->mirror_valid = 1;
    return LC_OK;
}

const lc_tensor_t *lc_kv_cache_k(const lc_kv_cache_t *c) { return c ? c->k : NULL; }
const lc_tensor_t *lc_kv_cache_v(const lc_kv_cache_t *c) { return c ? c->v : NULL; }

lc_status lc_kv_cache_lengths(lc_kv_cache_t *c, int64_t *lengths) {
    if (!c || !lengths) return lc_error(LC_ERR_INVALID_ARGUMENT, "KVCache.lengths: expected a cache and an array");
    int32_t *tmp = malloc((size_t)c->batch * sizeof(int32_t));
    if (!tmp) return lc_error(LC_ERR_OUT_OF_MEMORY, "KVCache.lengths: no memory");
    lc_status st = lc_tensor_to_host(c->lengths, tmp, (size_t)c->batch * sizeof(int32_t));
    if (st == LC_OK) {
        for (int64_t b = 0; b < c->batch; b++) lengths[b] = c->host_len[b] = tmp[b];
        c->mirror_valid = 1;
    }
    free(tmp);
    return st == LC_OK ? LC_OK : lc_error_wrap(st, "KVCache.lengths");
}

int lc_kv_cache_overflowed(lc_kv_cache_t *c) {
    int32_t f = 0;
    if (!c || lc_tensor_to_host(c->overflow, &f, sizeof f) != LC_OK) return -1;
    return f != 0;
}

/* k_new / v_new: rank 4 [batch, kv_heads, t, head_dim] in the cache's dtype. */
static lc_status lc_kv_check_new(const lc_kv_cache_t *c, const char *fn, const char *name, const lc_tensor_t *t) {
    lc_status st = lc_check_tensor(fn, name, t);
    if (st != LC_OK) return st;
    if (lc_tensor_dtype(t) != c->dtype)
        return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype %s (the cache's), got %s", fn, name, lc_dtype_name(c->dtype),
                        lc_dtype_name(lc_tensor_dtype(t)));
    const int64_t *s = lc_tensor_shape(t);
    if (lc_tensor_ndim(t) != 4 || s[0] != c->batch || s[1] != c->kv_heads || s[3] != c->head_dim) {
        char got[96];
        lc_op_format_shape(got, sizeof got, lc_tensor_ndim(t), s);
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected [%lld, %lld, t, %lld] (batch, kv_heads, tokens, head_dim), got %s",
                        fn, name, (long long)c->batch, (long long)c->kv_heads, (long long)c->head_dim, got);
    }
    return LC_OK;
}

/* The checks of an append of k_new, v_new (prefix fn): shapes and dtype, and eagerly (not capturing) room in
 * every sequence, from the host mirror (read back from the device when a capture made it stale). Fills the
 * append's arguments but for k_new/v_new's data and strides; *t = the token count. */
static lc_status lc_kv_append_prepare(lc_kv_cache_t *c, const char *fn, const lc_tensor_t *k_new, const lc_tensor_t *v_new,
                                      lc_kv_append_args *a, int64_t *t) {
    lc_status st;
    if ((st = lc_kv_check_new(c, fn, "k_new", k_new)) != LC_OK || (st = lc_kv_check_new(c, fn, "v_new", v_new)) != LC_OK) return st;
    *t = lc_tensor_shape(k_new)[2];
    if (lc_tensor_shape(v_new)[2] != *t)
        return lc_error(LC_ERR_SHAPE, "%s: v_new: expected %lld tokens (k_new's), got %lld", fn, (long long)*t,
                        (long long)lc_tensor_shape(v_new)[2]);
    if (!lc_capture_active()) {
        if (!c->mirror_valid) {
            int64_t *tmp = malloc((size_t)c->batch * sizeof(int64_t));
            if (!tmp) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
            st = lc_kv_cache_lengths(c, tmp);
            free(tmp);
            if (st != LC_OK) return st;
        }
        for (int64_t b = 0; b < c->batch; b++)
            if (c->host_len[b] + *t > c->max_seq)
                return lc_error(LC_ERR_INVALID_ARGUMENT,
                                "%s: k_new: expected at most %lld more tokens (max_seq %lld, sequence %lld holds %lld), got %lld",
                                fn, (long long)(c->max_seq - c->host_len[b]), (long long)c->max_seq, (long long)b,
                                (long long)c->host_len[b], (long long)*t);
    }
    memset(a, 0, sizeof *a);
    a->dtype = c->dtype;
    a->batch = c->batch;
    a->kv_heads = c->kv_heads;
    a->max_seq = c->max_seq;
    a->head_dim = c->head_dim;
    a->tokens = *t;
    a->k_cache = lc_tensor_data(c->k);
    a->v_cache = lc_tensor_data(c->v);
    a->lengths = lc_tensor_data(c->lengths);
    a->overflow = lc_tensor_data(c->overflow);
    return LC_OK;
}

/* After an append of t tokens went through: the host mirror follows (a capture makes it stale: every replay
 * advances the device lengths). */
static void lc_kv_append_done(lc_kv_cache_t *c, int64_t t) {
    if (lc_capture_active()) {
        c->mirror_valid = 0;
        return;
    }
    for (int64_t b = 0; b < c->batch; b++) c->host_len[b] += t;
}

lc_status lc_kv_cache_append(lc_kv_cache_t *c, const lc_tensor_t *k_new, const lc_tensor_t *v_new) {
    if (!c) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: cache: expected a cache, got NULL", APPEND);
    lc_kv_append_args a;
    int64_t t = 0;
    lc_status st = lc_kv_append_prepare(c, APPEND, k_new, v_new, &a, &t);
    if (st != LC_OK) return st;
    const lc_op_def *d = lc_op_get(LC_OP_KV_APPEND);
    lc_op_operands in;
    memset(&in, 0, sizeof in);
    in.n = 2;
    in.prefix = APPEND;
    const lc_tensor_t *nv[2] = {k_new, v_new};
    for (int i = 0; i < 2; i++) {
        in.ndim[i] = 4;
        in.shape[i] = lc_tensor_shape(nv[i]);
        in.dtype[i] = c->dtype;
    }
    const lc_op_work w = d->work(&in, NULL, 4, lc_tensor_shape(k_new));
    const lc_work work = {w.flops, w.bytes, NULL, LC_CROSSOVER_NONE};
    const lc_tensor_t *operands[6] = {k_new, v_new, c->k, c->v, c->lengths, c->overflow};
    lc_route route;
    if ((st = lc_route_op(APPEND, LC_OP_KV_APPEND, c->dtype, c->device, operands, 6, work, &route)) != LC_OK) return st;
    if (route.backend->device != c->device)
        return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: the cache's device is not available", APPEND);
    lc_operand sk, sv;
    memset(&sk, 0, sizeof sk);
    memset(&sv, 0, sizeof sv);
    st = lc_sdpa_operand(APPEND, "k_new", k_new, &route, &sk, &a.k_new, a.kn_st);
    if (st == LC_OK) st = lc_sdpa_operand(APPEND, "v_new", v_new, &route, &sv, &a.v_new, a.vn_st);
    if (st == LC_OK) {
        lc_call call;
        memset(&call, 0, sizeof call);
        call.op = LC_OP_KV_APPEND;
        call.dtype = c->dtype;
        call.nin = 2;
        call.ext = &a;
        const char *path = "unknown";
        st = route.backend->kernels[LC_OP_KV_APPEND](&call, &path);
        if (st == LC_OK) {
            lc_route_done(APPEND, &route, path);
            lc_kv_append_done(c, t);
        }
    }
    lc_operand_release(&sk);
    lc_operand_release(&sv);
    return st;
}

/* q's checks (shape [batch, heads, t, head_dim], the cache's dtype) and the sdpa call on the cache. */
static lc_status lc_kv_attention_call(lc_kv_cache_t *c, const char *fn, const lc_tensor_t *q, lc_tensor_t *out, int causal,
                                      double scale, int64_t window, lc_sdpa_call *call) {
    lc_status st = lc_check_tensor(fn, "q", q);
    if (st != LC_OK) return st;
    const int64_t *s = lc_tensor_shape(q);
    if (lc_tensor_ndim(q) != 4 || s[0] != c->batch || s[1] % c->kv_heads != 0 || s[3] != c->head_dim) {
        char got[96];
        lc_op_format_shape(got, sizeof got, lc_tensor_ndim(q), s);
        return lc_error(LC_ERR_SHAPE,
                        "%s: q: expected [%lld, heads, t, %lld] (batch, heads a multiple of kv_heads %lld, tokens, head_dim), got %s",
                        fn, (long long)c->batch, (long long)c->head_dim, (long long)c->kv_heads, got);
    }
    if (lc_tensor_dtype(q) != c->dtype)
        return lc_error(LC_ERR_DTYPE, "%s: q: expected dtype %s (the cache's), got %s", fn, lc_dtype_name(c->dtype),
                        lc_dtype_name(lc_tensor_dtype(q)));
    memset(call, 0, sizeof *call);
    call->fn = fn;
    call->q = q;
    call->k = c->k;
    call->v = c->v;
    call->key_lengths = c->lengths;
    call->trusted_lengths = 1;
    call->out = out;
    call->causal = causal;
    call->scale = scale;
    call->window = window; /* checked by lc_sdpa_run; positions from the device lengths (graph-safe) */
    call->device = c->device;
    return LC_OK;
}

lc_status lc_kv_cache_attention(lc_kv_cache_t *c, const lc_tensor_t *q, lc_tensor_t *out, int causal, double scale,
                                int64_t window) {
    if (!c) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: cache: expected a cache, got NULL", ATTEND);
    lc_sdpa_call call;
    lc_status st = lc_kv_attention_call(c, ATTEND, q, out, causal, scale, window, &call);
    return st == LC_OK ? lc_sdpa_run(&call) : st;
}

/* The rope of the fallback below: x rotated into a contiguous scratch tensor *out on the cache's device. */
static lc_status lc_kv_rope_scratch(const lc_kv_cache_t *c, const lc_tensor_t *x, const lc_tensor_t *positions,
                                    const lc_rope_options *rope, lc_tensor_t **out) {
    lc_status st = lc_tensor_new(c->dtype, c->device, 4, lc_tensor_shape(x), out);
    if (st == LC_OK) st = lc_rope(x, positions, *out, rope, c->device);
    return st;
}

/* append + attention as one sdpa call, with (rope set) the rotary embedding of q and k_new first: every check
 * before anything runs; where no backend kernel fuses the rope (LC_ERR_UNSUPPORTED, nothing launched), the rope
 * op into scratch, then this call without it. */
static lc_status lc_kv_append_attend(lc_kv_cache_t *c, const lc_tensor_t *k_new, const lc_tensor_t *v_new,
                                     const lc_tensor_t *q, lc_tensor_t *out, int causal, double scale, int64_t window,
                                     int rope, const lc_tensor_t *positions, const lc_rope_options *options) {
    if (!c) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: cache: expected a cache, got NULL", ATTEND);
    lc_sdpa_call call;
    lc_kv_append_args a;
    lc_rope_args ra;
    int64_t t = 0;
    lc_status st = lc_kv_attention_call(c, ATTEND, q, out, causal, scale, window, &call);
    if (st == LC_OK) st = lc_kv_append_prepare(c, ATTEND, k_new, v_new, &a, &t);
    if (st != LC_OK) return st;
    if (rope) {
        if (lc_tensor_shape(q)[2] != t)
            return lc_error(LC_ERR_SHAPE, "%s: q: expected %lld tokens (k_new's: one position each), got %lld", ATTEND,
                            (long long)t, (long long)lc_tensor_shape(q)[2]);
        int ond;
        int64_t os[LC_MAX_DIMS];
        /* positions against q: the rope op's rule ([t] or [batch, t]), dtype and options */
        if ((st = lc_rope_prepare(ATTEND, "q", q, positions, options, &ra, &ond, os, NULL)) != LC_OK) return st;
        call.positions = positions;
        call.rope = &ra;
    }
    call.k_new = k_new;
    call.v_new = v_new;
    call.append = &a;
    st = lc_sdpa_run(&call);
    if (st == LC_OK) lc_kv_append_done(c, t);
    if (!rope || st != LC_ERR_UNSUPPORTED) return st;
    lc_clear_error();
    lc_tensor_t *rq = NULL, *rk = NULL;
    st = lc_kv_rope_scratch(c, q, positions, &ra.opt, &rq);
    if (st == LC_OK) st = lc_kv_rope_scratch(c, k_new, positions, &ra.opt, &rk);
    if (st == LC_OK) st = lc_kv_append_attend(c, rk, v_new, rq, out, causal, scale, window, 0, NULL, NULL);
    lc_tensor_free(rq);
    lc_tensor_free(rk);
    return st;
}

lc_status lc_kv_cache_append_attention(lc_kv_cache_t *c, const lc_tensor_t *k_new, const lc_tensor_t *v_new,
                                       const lc_tensor_t *q, lc_tensor_t *out, int causal, double scale, int64_t window) {
    return lc_kv_append_attend(c, k_new, v_new, q, out, causal, scale, window, 0, NULL, NULL);
}

lc_status lc_kv_cache_append_attention_rope(lc_kv_cache_t *c, const lc_tensor_t *k_new, const lc_tensor_t *v_new,
                                            const lc_tensor_t *q, lc_tensor_t *out, int causal, double scale,
                                            int64_t window, const lc_tensor_t *positions, const lc_rope_options *rope) {
    return lc_kv_append_attend(c, k_new, v_new, q, out, causal, scale, window, 1, positions, rope);
}

/* The fused decode step (ops/decode_program.c, core/decode_program.h): a cache's storage and device counters,
 * and the host mirror made stale by a step that advanced the device lengths. */
lc_status lc_kv_cache_get_parts(const lc_kv_cache_t *c, lc_kv_cache_parts *o) {
    if (!c || !o) return lc_error(LC_ERR_INVALID_ARGUMENT, "KVCache: expected a cache, got NULL");
    o->batch = c->batch;
    o->kv_heads = c->kv_heads;
    o->max_seq = c->max_seq;
    o->head_dim = c->head_dim;
    o->dtype = c->dtype;
    o->device = c->device;
    o->k = lc_tensor_data(c->k);
    o->v = lc_tensor_data(c->v);
    o->lengths = (int32_t *)lc_tensor_data(c->lengths);
    o->overflow = (int32_t *)lc_tensor_data(c->overflow);
    return LC_OK;
}

void lc_kv_cache_advanced(lc_kv_cache_t *c) {
    if (c) c->mirror_valid = 0;
}
