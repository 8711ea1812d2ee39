/* qkv_pack.c — lc_qkv_pack_repeat: out_flat[i] = src_flat[i % src.numel] (the seed's flatten, then
 * repeat or truncate a conv output into q|k|v). float32, any shapes; out contiguous.
 * Tests: tests/c/test_ops.c, tests/python/test_sessions.py (qkv_pack_repeat and the conv->attention chain). */
#include "ops/dispatch.h"

lc_status lc_qkv_pack_repeat(const lc_tensor_t *src, lc_tensor_t *out, lc_device device) {
    static const char *op = "qkv_pack_repeat";
    lc_status st;
    if ((st = lc_check_tensor(op, "src", src)) != LC_OK || (st = lc_check_dtype_is(op, "src", src, LC_DTYPE_F32)) != LC_OK ||
        (st = lc_check_out(op, out, LC_DTYPE_F32, lc_tensor_ndim(out), lc_tensor_shape(out))) != LC_OK ||
        (st = lc_check_no_overlap(op, out, "src", src, 0)) != LC_OK)
        return st;
    lc_route route;
    const lc_tensor_t *operands[2] = {src, out};
    const lc_work work = {0.0, (double)(lc_tensor_nbytes(src) + 2 * lc_tensor_nbytes(out)), NULL, LC_CROSSOVER_NONE};
    if ((st = lc_route_op(op, LC_OP_QKV_PACK, LC_DTYPE_F32, device, operands, 2, work, &route)) != LC_OK) return st;
    lc_operand so = {0};
    lc_output oo = {0};
    if ((st = lc_operand_acquire(op, "src", src, &route, &so)) == LC_OK && (st = lc_output_acquire(op, out, &route, &oo)) == LC_OK) {
        lc_qkv_pack_args args = {.src_n = lc_tensor_numel(src), .dst_n = lc_tensor_numel(out), .src = so.data, .dst = oo.data};
        const char *path = "unknown";
        st = lc_output_commit(op, &oo, route.backend->qkv_pack(&args, &path));
        if (st == LC_OK) lc_route_done(op, &route, path);
    }
    lc_operand_release(&so);
    return st;
}
