/* sample.c — lc_sample (ops.h): one token a row of logits [B, V] from the op table's `sample` entry (dtypes, the
 * shape rule, int64 out, the work estimate) plus what the table does not hold: the options (temperature,
 * top_k, top_p, seed; checked here) and the counter, an int64 [1] tensor that must live on the device the op
 * runs on (the kernel reads the step from it and adds 1, so nothing is read back to the host and a captured
 * CUDA graph of the call draws fresh numbers at each replay). The kernel (kernels[LC_OP_SAMPLE]) gets an
 * lc_sample_args through lc_call.ext. Nothing is written before every check has passed.
 * Tests: tests/python/test_sample.py. */
#include <math.h>
#include <string.h>

#include "lightning_core/dtype.h"
#include "ops/dispatch.h"

static const char *const SAMPLE = "sample";

static lc_status lc_sample_check_options(const lc_sample_options *o) {
    if (!(isfinite(o->temperature) && o->temperature > 0.0f))
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "%s: temperature: expected a finite value > 0 (greedy decoding at temperature 0 is argmax), got %g",
                        SAMPLE, (double)o->temperature);
    if (o->top_k < 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: top_k: expected a value >= 0 (0: off), got %lld", SAMPLE,
                        (long long)o->top_k);
    if (!(o->top_p > 0.0f && o->top_p <= 1.0f))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: top_p: expected a value in (0, 1] (1: off), got %g", SAMPLE,
                        (double)o->top_p);
    return LC_OK;
}

static lc_status lc_sample_check_counter(const lc_tensor_t *counter) {
    static const int64_t one[1] = {1};
    lc_status st;
    if ((st = lc_check_tensor(SAMPLE, "counter", counter)) != LC_OK ||
        (st = lc_check_dtype_is(SAMPLE, "counter", counter, LC_DTYPE_I64)) != LC_OK ||
        (st = lc_check_shape(SAMPLE, "counter", counter, 1, one)) != LC_OK)
        return st;
    if (!lc_tensor_is_writable(counter))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: counter: expected a writable tensor (the call adds 1), got a read-only one",
                        SAMPLE);
    return LC_OK;
}

lc_status lc_sample(const lc_tensor_t *logits, lc_tensor_t *out, const lc_sample_options *options, lc_device device) {
    const lc_op_def *d = lc_op_get(LC_OP_SAMPLE);
    const lc_sample_options defaults = {1.0f, 0, 1.0f, 0, NULL};
    const lc_sample_options *o = options ? options : &defaults;
    lc_status st;
    if ((st = lc_check_tensor(SAMPLE, "logits", logits)) != LC_OK || (st = lc_sample_check_options(o)) != LC_OK)
        return st;
    lc_op_operands in;
    memset(&in, 0, sizeof in);
    in.prefix = SAMPLE;
    in.n = 1;
    in.ndim[0] = lc_tensor_ndim(logits);
    in.shape[0] = lc_tensor_shape(logits);
    in.dtype[0] = lc_tensor_dtype(logits);
    lc_dtype dtype;
    int ond;
    int64_t os[LC_MAX_DIMS];
    if ((st = lc_op_check_dtypes(d, &in, &dtype)) != LC_OK || (st = lc_op_infer(d, &in, NULL, &ond, os)) != LC_OK)
        return st;
    lc_tensor_t *counter = (lc_tensor_t *)o->counter;
    if (counter && (st = lc_sample_check_counter(counter)) != LC_OK) return st;
    if ((st = lc_check_out(SAMPLE, out, LC_DTYPE_I64, ond, os)) != LC_OK ||
        (st = lc_check_no_overlap(SAMPLE, out, "logits", logits, 0)) != LC_OK ||
        (st = lc_check_no_overlap(SAMPLE, out, "counter", counter, 0)) != LC_OK)
        return st;
    const lc_op_work w = d->work(&in, NULL, ond, os);
    const lc_work work = {w.flops, w.bytes, NULL, LC_CROSSOVER_NONE};
    const lc_tensor_t *operands[3] = {logits, out, counter};
    lc_route route;
    if ((st = lc_route_op(SAMPLE, LC_OP_SAMPLE, dtype, device, operands, 3, work, &route)) != LC_OK) return st;
    if (counter && lc_tensor_device(counter) != route.backend->device)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: counter: expected a tensor on %s (where the op runs), got one on %s",
                        SAMPLE, route.backend->name, lc_device_name(lc_tensor_device(counter)));
    lc_sample_args a = {.dtype = dtype,
                        .rows = os[0],
                        .cols = in.shape[0][1],
                        .temperature = o->temperature,
                        .top_p = o->top_p,
                        .top_k = o->top_k,
                        .seed = o->seed,
                        .counter = counter ? (int64_t *)lc_tensor_data(counter) : NULL};
    lc_operand sl;
    memset(&sl, 0, sizeof sl);
    lc_output oo = {0};
    st = lc_operand_acquire(SAMPLE, "logits", logits, &route, &sl);
    if (st == LC_OK) st = lc_output_acquire(SAMPLE, out, &route, &oo);
    if (st == LC_OK) {
        a.logits = sl.data;
        a.out = (int64_t *)oo.data;
        lc_call call;
        memset(&call, 0, sizeof call);
        call.op = LC_OP_SAMPLE;
        call.dtype = dtype;
        call.nin = 1;
        call.in[0] = sl.data;
        call.ndim[0] = in.ndim[0];
        call.shape[0] = in.shape[0];
        call.in_dtype[0] = dtype;
        call.out = oo.data;
        call.out_ndim = ond;
        memcpy(call.out_shape, os, (size_t)ond * sizeof(int64_t));
        call.ext = &a;
        const char *path = "unknown";
        st = lc_output_commit(SAMPLE, &oo, route.backend->kernels[LC_OP_SAMPLE](&call, &path));
        if (st == LC_OK) lc_route_done(SAMPLE, &route, path);
    }
    lc_operand_release(&sl);
    return st;
}
