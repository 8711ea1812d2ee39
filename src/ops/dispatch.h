/* dispatch.h — shared machinery of the ops layer: argument checks that produce the library's error
 * messages ("<op>: <arg>: expected ..., got ..."), device routing by the fallback policy, input
 * operands made contiguous, overlap checks, and the dispatch record.
 * Tests: tests/c/test_ops.c (bad-input cases), tests/python/test_bad_inputs.py. */
#ifndef LC_OPS_DISPATCH_H
#define LC_OPS_DISPATCH_H

#include "core/backend.h"
#include "core/internal.h"
#include "lightning_core/ops.h"
#include "lightning_core/tune.h"

typedef struct lc_route {
    const lc_backend *backend;
    lc_device requested;
    lc_reason reason;
    uint64_t start_ns; /* set when the runtime trace is on */
} lc_route;

/* What the op will do, for the "auto" cost model: arithmetic and bytes read + written; and, when the
 * GPU kernels cannot take this shape, why (NULL when they can): the op then stays on the CPU (recorded
 * as fallback_preferred_unsupported), or fails if its operands live on the GPU. */
typedef struct lc_work {
    double flops;
    double bytes;
    const char *gpu_limit;
    lc_crossover crossover; /* a measured CPU/GPU threshold decides "auto" instead of the cost model (op_table.h) */
} lc_work;

/* Runs op eagerly from its table entry (op_eager.c): every input checked (NULL allowed for optional
 * ones), attributes resolved and range-checked, dtypes (one dtype for all operands), ranks and the shape
 * rule (lc_op_infer), `out` (dtype, exact shape, writable, contiguous, no overlap except the exact
 * aliases the entry allows), then the work estimate, routing, operand staging and backends' kernels[op].
 * `attrs` may be NULL (defaults); act / apply_relu are linear's and conv2d's epilogues. */
lc_status lc_op_run(lc_op op, const lc_tensor_t *const *inputs, int ninputs, lc_tensor_t *out,
                    const lc_graph_attrs *attrs, lc_activation act, int apply_relu, lc_device device);
/* Same, handing the kernel `ext` (lc_call.ext: the op's own options outside lc_graph_attrs, as backend.h
 * describes per op; NULL for none). */
lc_status lc_op_run_ext(lc_op op, const lc_tensor_t *const *inputs, int ninputs, lc_tensor_t *out,
                        const lc_graph_attrs *attrs, lc_activation act, int apply_relu, const void *ext,
                        lc_device device);

/* Picks the backend for `kind`/`dtype` given the requested device and where the operands live
 * (`tensors`, NULL entries skipped), per the policy in runtime.h:
 *  - an operand on the GPU runs the op there (device "cpu" is then an error, not a silent copy);
 *  - host operands run where asked; an unavailable device falls back (or fails in strict mode);
 *  - "auto" compares estimated CPU time with GPU time including transfers (tiny or memory-bound
 *    one-shot work stays on the CPU). */
lc_status lc_route_op(const char *op, lc_op kind, lc_dtype dtype, lc_device requested, const lc_tensor_t *const *tensors,
                      int ntensors, lc_work work, lc_route *out);

/* Records a successful dispatch (last-dispatch record, and the runtime trace when it is on). */
void lc_route_done(const char *op, const lc_route *route, const char *path);

/* Non-NULL, valid metadata, on a device this build has. */
lc_status lc_check_tensor(const char *op, const char *name, const lc_tensor_t *t);
lc_status lc_check_dtype_is(const char *op, const char *name, const lc_tensor_t *t, lc_dtype dtype);
/* Exact shape; `expected` has ndim entries. */
lc_status lc_check_shape(const char *op, const char *name, const lc_tensor_t *t, int ndim, const int64_t *expected);
/* An output argument named `name` (errors say "op: name: ..."): a valid, writable tensor of dtype and exact shape,
 * and contiguous when `contiguous`. lc_check_out and lc_check_out_view are it for "out". */
lc_status lc_check_out_arg(const char *op, const char *name, const lc_tensor_t *out, lc_dtype dtype, int ndim,
                           const int64_t *expected, int contiguous);
/* lc_check_out without the contiguity rule: an out that may be a strided view (lc_copy). */
lc_status lc_check_out_view(const char *op, const lc_tensor_t *out, lc_dtype dtype, int ndim, const int64_t *expected);
/* `out`: a valid, writable, contiguous tensor of dtype and exact shape. */
lc_status lc_check_out(const char *op, const lc_tensor_t *out, lc_dtype dtype, int ndim, const int64_t *expected);
/* `out` must not share memory with `in`, except (allow_exact) when both are the same contiguous buffer. */
lc_status lc_check_no_overlap(const char *op, const lc_tensor_t *out, const char *in_name, const lc_tensor_t *in,
                              int allow_exact);

/* A read-only input as a contiguous buffer on the route's device: the tensor's own memory when it is
 * contiguous there, else a gathered and/or uploaded copy that lc_operand_release frees. */
typedef struct lc_operand {
    const void *data;
    void *scratch;
    const lc_backend *scratch_owner;
} lc_operand;

/* The gather arguments of a (strided) tensor: its shape, strides, element size and data (dst left NULL). */
void lc_gather_args_of(const lc_tensor_t *t, lc_gather_args *g);
lc_status lc_operand_acquire(const char *op, const char *name, const lc_tensor_t *t, const lc_route *route,
                             lc_operand *out);
void lc_operand_release(lc_operand *operand);

/* The output buffer on the route's device: `out`'s own memory when it lives there, else device scratch
 * that lc_output_commit downloads into `out` (only when the kernel succeeded) and frees. */
typedef struct lc_output {
    void *data;
    void *scratch;
    lc_tensor_t *out;
    const lc_backend *backend;
} lc_output;

lc_status lc_output_acquire(const char *op, lc_tensor_t *out, const lc_route *route, lc_output *o);
lc_status lc_output_commit(const char *op, lc_output *o, lc_status kernel_status);

/* "[2, 3, 4]" into buf. */
void lc_format_shape(char *buf, size_t size, int ndim, const int64_t *shape);

#endif
