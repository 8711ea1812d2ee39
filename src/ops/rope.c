/* rope.c — lc_rope (ops.h): rotary position embedding from the op table's `rope` entry (x's dtype, the shape
 * rule for x and positions, the work estimate) plus what the table does not hold: positions' integer dtype,
 * the options (theta, rotary_dim, HF's linear / llama3 scaling; checked and resolved here), and strided x:
 * operands on the device the op runs on are handed to the kernel in place with their strides (no gather),
 * others are staged contiguous (lc_sdpa_operand). out is contiguous and may be exactly x. The kernel
 * (kernels[LC_OP_ROPE]) gets an lc_rope_args through lc_call.ext.
 * Tests: tests/python/test_ops_llm.py, tests/c/test_ops_llm.c. */
#include <math.h>
#include <string.h>

#include "lightning_core/dtype.h"
#include "ops/dispatch.h"
#include "ops/sdpa_internal.h"

static const char *const ROPE = "rope";

static int lc_pos_finite(double v) { return isfinite(v) && v > 0.0; }

/* Defaults filled in and every value checked: LC_ERR_INVALID_ARGUMENT naming the option. */
static lc_status lc_rope_resolve(const char *fn, const lc_rope_options *given, int64_t head_dim, lc_rope_options *o) {
    if (given)
        *o = *given;
    else
        memset(o, 0, sizeof *o);
    if (o->theta == 0.0) o->theta = 10000.0;
    if (!lc_pos_finite(o->theta))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: theta: expected a finite value > 0, got %g", fn, o->theta);
    if (o->rotary_dim == 0) o->rotary_dim = head_dim;
    if (o->rotary_dim < 2 || o->rotary_dim > head_dim || o->rotary_dim % 2 != 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: rotary_dim: expected an even value in 2..%lld (head_dim), got %lld",
                        fn, (long long)head_dim, (long long)o->rotary_dim);
    if ((int)o->scaling < 0 || o->scaling >= LC_ROPE_SCALING_COUNT)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: scaling: expected none, linear or llama3, got code %d", fn,
                        (int)o->scaling);
    if (o->scaling != LC_ROPE_SCALING_NONE && !lc_pos_finite(o->factor))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: factor: expected a finite value > 0, got %g", fn, o->factor);
    if (o->scaling == LC_ROPE_SCALING_LLAMA3) {
        if (!lc_pos_finite(o->low_freq_factor))
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: low_freq_factor: expected a finite value > 0, got %g", fn,
                            o->low_freq_factor);
        if (!(isfinite(o->high_freq_factor) && o->high_freq_factor > o->low_freq_factor))
            return lc_error(LC_ERR_INVALID_ARGUMENT,
                            "%s: high_freq_factor: expected a finite value > low_freq_factor (%g), got %g", fn,
                            o->low_freq_factor, o->high_freq_factor);
        if (!lc_pos_finite(o->original_max_position_embeddings))
            return lc_error(LC_ERR_INVALID_ARGUMENT,
                            "%s: original_max_position_embeddings: expected a finite value > 0, got %g", fn,
                            o->original_max_position_embeddings);
    }
    return LC_OK;
}

/* sdpa_internal.h: x and positions checked (the op table's dtype and shape rules, positions' integer dtype),
 * the options resolved, and a's fields but for the data pointers and strides filled; ond / os: out's shape. */
lc_status lc_rope_prepare(const char *fn, const char *xname, const lc_tensor_t *x, const lc_tensor_t *positions,
                          const lc_rope_options *options, lc_rope_args *a, int *ond, int64_t *os, lc_op_work *work) {
    const lc_op_def *d = lc_op_get(LC_OP_ROPE);
    lc_status st;
    if ((st = lc_check_tensor(fn, xname, x)) != LC_OK || (st = lc_check_tensor(fn, "positions", positions)) != LC_OK)
        return st;
    lc_op_operands in;
    memset(&in, 0, sizeof in);
    in.prefix = fn;
    in.arg_names[0] = xname;
    in.n = 1; /* the dtype rule covers x; positions are integers (below) */
    in.ndim[0] = lc_tensor_ndim(x);
    in.shape[0] = lc_tensor_shape(x);
    in.dtype[0] = lc_tensor_dtype(x);
    lc_dtype dtype;
    if ((st = lc_op_check_dtypes(d, &in, &dtype)) != LC_OK) return st;
    const lc_dtype pdt = lc_tensor_dtype(positions);
    if (pdt != LC_DTYPE_I32 && pdt != LC_DTYPE_I64)
        return lc_error(LC_ERR_DTYPE, "%s: positions: expected dtype int32 or int64, got %s", fn, lc_dtype_name(pdt));
    in.n = 2;
    in.ndim[1] = lc_tensor_ndim(positions);
    in.shape[1] = lc_tensor_shape(positions);
    in.dtype[1] = pdt;
    if ((st = lc_op_infer(d, &in, NULL, ond, os)) != LC_OK) return st;
    memset(a, 0, sizeof *a);
    if ((st = lc_rope_resolve(fn, options, os[*ond - 1], &a->opt)) != LC_OK) return st;
    a->dtype = dtype;
    a->batch = *ond == 4 ? os[0] : 1;
    a->heads = *ond >= 3 ? os[*ond - 3] : 1;
    a->seq = os[*ond - 2];
    a->head_dim = os[*ond - 1];
    a->rotary_dim = a->opt.rotary_dim;
    a->pos_dtype = pdt;
    if (work) *work = d->work(&in, NULL, *ond, os);
    return LC_OK;
}

/* positions' strides over (b, s) for the kernel (0 on b for a [s] tensor), from lc_sdpa_operand's st4. */
void lc_rope_pos_strides(const lc_tensor_t *positions, const int64_t st4[4], int64_t p_st[2]) {
    p_st[0] = lc_tensor_ndim(positions) == 2 ? st4[2] : 0;
    p_st[1] = st4[3];
}

lc_status lc_rope(const lc_tensor_t *x, const lc_tensor_t *positions, lc_tensor_t *out, const lc_rope_options *options,
                  lc_device device) {
    lc_rope_args a;
    int ond;
    int64_t os[LC_MAX_DIMS];
    lc_op_work w;
    lc_status st = lc_rope_prepare(ROPE, "x", x, positions, options, &a, &ond, os, &w);
    if (st != LC_OK) return st;
    const lc_dtype dtype = a.dtype;
    if ((st = lc_check_out(ROPE, out, dtype, ond, os)) != LC_OK ||
        (st = lc_check_no_overlap(ROPE, out, "x", x, 1)) != LC_OK ||
        (st = lc_check_no_overlap(ROPE, out, "positions", positions, 0)) != LC_OK)
        return st;
    const lc_work work = {w.flops, w.bytes, NULL, LC_CROSSOVER_NONE};
    const lc_tensor_t *operands[3] = {x, positions, out};
    lc_route route;
    if ((st = lc_route_op(ROPE, LC_OP_ROPE, dtype, device, operands, 3, work, &route)) != LC_OK) return st;
    lc_operand sx, sp;
    memset(&sx, 0, sizeof sx);
    memset(&sp, 0, sizeof sp);
    lc_output oo = {0};
    int64_t pst[4];
    st = lc_sdpa_operand(ROPE, "x", x, &route, &sx, &a.x, a.x_st);
    if (st == LC_OK) st = lc_sdpa_operand(ROPE, "positions", positions, &route, &sp, &a.positions, pst);
    if (st == LC_OK) {
        lc_rope_pos_strides(positions, pst, a.p_st);
        st = lc_output_acquire(ROPE, out, &route, &oo);
    }
    if (st == LC_OK) {
        a.out = oo.data;
        lc_call call;
        memset(&call, 0, sizeof call);
        call.op = LC_OP_ROPE;
        call.dtype = dtype;
        call.nin = 2;
        call.out = oo.data;
        call.out_ndim = ond;
        memcpy(call.out_shape, os, (size_t)ond * sizeof(int64_t));
        call.ext = &a;
        const char *path = "unknown";
        st = lc_output_commit(ROPE, &oo, route.backend->kernels[LC_OP_ROPE](&call, &path));
        if (st == LC_OK) lc_route_done(ROPE, &route, path);
    }
    lc_operand_release(&sx);
    lc_operand_release(&sp);
    return st;
}
