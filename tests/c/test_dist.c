/* test_dist.c — dist.h (NCCL collectives). Everywhere: argument checks that need no GPU, and the clean
 * refusals of a machine without a GPU or a build without NCCL (unavailable + reason, every call an error,
 * nothing crashes). With a GPU and NCCL: a world-size-1 communicator — every collective on poisoned
 * outputs checked against the input, in-place layouts, argument errors that leave the group usable, the
 * header exchange, barrier, and abort making the group refuse later calls.
 * Multi-rank behaviour: tests/python/test_distributed_multi.py. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "lightning_core/lightning_core.h"

static int has_text(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

static void test_refusals_anywhere(void) {
    uint8_t id[LC_DIST_UNIQUE_ID_BYTES] = {0};
    lc_dist_comm_t *c = (lc_dist_comm_t *)1;
    const char *reason = lc_dist_unavailable_reason();
    CHECK(reason != NULL);
    CHECK(lc_dist_available() == (reason[0] == '\0'));
    /* bad arguments never reach NCCL (and never leave a handle behind) */
    CHECK(lc_dist_comm_init(id, 0, 0, 1.0, &c) != LC_OK && c == NULL);
    c = (lc_dist_comm_t *)1;
    CHECK(lc_dist_comm_init(id, 2, 2, 1.0, &c) != LC_OK && c == NULL);
    c = (lc_dist_comm_t *)1;
    CHECK(lc_dist_comm_init(id, 1, 0, -1.0, &c) != LC_OK && c == NULL);
    CHECK(lc_dist_comm_init(id, 1, 0, NAN, &c) != LC_OK && c == NULL);
    CHECK(lc_dist_all_reduce(NULL, NULL) != LC_OK);
    CHECK(lc_dist_barrier(NULL) != LC_OK);
    CHECK(lc_dist_comm_destroy(NULL) == LC_OK);
    CHECK(lc_dist_comm_ok(NULL) == 0);
    CHECK(lc_set_cuda_device(-1) != LC_OK);
}

static void test_no_gpu(void) {
    uint8_t id[LC_DIST_UNIQUE_ID_BYTES];
    lc_dist_comm_t *c = (lc_dist_comm_t *)1;
    CHECK(lc_dist_available() == 0);
    CHECK(strlen(lc_dist_unavailable_reason()) > 0);
    lc_status st = lc_dist_unique_id(id);
    CHECK(st == LC_ERR_DEVICE_UNAVAILABLE || st == LC_ERR_UNSUPPORTED);
    st = lc_dist_comm_init(id, 1, 0, 1.0, &c);
    CHECK((st == LC_ERR_DEVICE_UNAVAILABLE || st == LC_ERR_UNSUPPORTED) && c == NULL);
    CHECK(has_text(lc_last_error(), "GPU") || has_text(lc_last_error(), "NCCL"));
    CHECK(lc_set_cuda_device(0) == LC_ERR_DEVICE_UNAVAILABLE);
    CHECK(lc_cuda_device() == -1);
}

static lc_tensor_t *cuda_tensor(lc_dtype dt, int64_t rows, int64_t cols, const float *vals) {
    lc_tensor_t *t = NULL;
    int64_t shape[2] = {rows, cols};
    if (dt == LC_DTYPE_F32) {
        if (lc_tensor_from_host(vals, (size_t)(rows * cols) * sizeof(float), dt, LC_DEVICE_CUDA, 2, shape, &t) != LC_OK)
            return NULL;
    } else if (lc_tensor_new(dt, LC_DEVICE_CUDA, 2, shape, &t) != LC_OK) {
        return NULL;
    }
    return t;
}

static int equal_host(const lc_tensor_t *t, const float *want, int64_t n) {
    float got[64];
    if (n > 64 || lc_tensor_to_host(t, got, (size_t)n * sizeof(float)) != LC_OK) return 0;
    for (int64_t i = 0; i < n; i++)
        if (!(got[i] == want[i])) return 0;
    return 1;
}

static void test_world_one(void) {
    if (!lc_dist_available()) return;
    uint8_t id[LC_DIST_UNIQUE_ID_BYTES];
    lc_dist_comm_t *c = NULL;
    CHECK_OK(lc_dist_unique_id(id));
    CHECK_OK(lc_dist_comm_init(id, 1, 0, 60.0, &c));
    if (!c) return;
    CHECK(lc_dist_comm_rank(c) == 0 && lc_dist_comm_size(c) == 1 && lc_dist_comm_ok(c));
    float x[12], nan12[12];
    for (int i = 0; i < 12; i++) {
        x[i] = (float)(i * 3 - 7) * 0.25f;
        nan12[i] = NAN;
    }
    lc_tensor_t *t = cuda_tensor(LC_DTYPE_F32, 3, 4, x), *out = cuda_tensor(LC_DTYPE_F32, 3, 4, nan12);
    CHECK(t && out);
    if (!t || !out) goto done;
    CHECK_OK(lc_dist_all_reduce(c, t));
    CHECK(equal_host(t, x, 12));
    CHECK_OK(lc_dist_all_gather(c, t, out));
    CHECK(equal_host(out, x, 12));
    CHECK_OK(lc_tensor_copy_from_host(out, nan12, sizeof nan12));
    CHECK_OK(lc_dist_reduce_scatter(c, t, out));
    CHECK(equal_host(out, x, 12));
    CHECK_OK(lc_dist_broadcast(c, t, 0));
    CHECK(equal_host(t, x, 12));
    /* argument errors: named, and the group stays usable */
    lc_tensor_t *host = NULL, *wrong = cuda_tensor(LC_DTYPE_F32, 2, 4, x), *i8 = cuda_tensor(LC_DTYPE_BOOL, 3, 4, NULL);
    int64_t hs[2] = {3, 4};
    CHECK_OK(lc_tensor_new(LC_DTYPE_F32, LC_DEVICE_CPU, 2, hs, &host));
    CHECK(lc_dist_all_reduce(c, host) == LC_ERR_INVALID_ARGUMENT && has_text(lc_last_error(), "on cuda"));
    CHECK(lc_dist_all_gather(c, t, wrong) == LC_ERR_SHAPE && has_text(lc_last_error(), "world_size"));
    CHECK(lc_dist_all_reduce(c, i8) == LC_ERR_DTYPE && has_text(lc_last_error(), "bool"));
    CHECK(lc_dist_broadcast(c, t, 1) == LC_ERR_INVALID_ARGUMENT && has_text(lc_last_error(), "src"));
    lc_tensor_t *col = NULL;
    int64_t cs[1] = {3}, cst[1] = {4};
    CHECK_OK(lc_tensor_view(t, 1, cs, cst, 0, LC_DEVICE_AUTO, &col));
    CHECK(lc_dist_all_reduce(c, col) == LC_ERR_INVALID_ARGUMENT && has_text(lc_last_error(), "contiguous"));
    CHECK(lc_dist_comm_ok(c));
    int64_t mine[3] = {7, -1, 123456789012345LL}, all[3] = {0};
    CHECK_OK(lc_dist_exchange_header(c, mine, 3, all));
    CHECK(all[0] == 7 && all[1] == -1 && all[2] == 123456789012345LL);
    CHECK(lc_dist_exchange_header(c, mine, 0, all) == LC_ERR_INVALID_ARGUMENT);
    CHECK_OK(lc_dist_barrier(c));
    CHECK_OK(lc_dist_wait(c));
    /* abort: every later call refuses, naming the reason */
    lc_dist_comm_abort(c, "test abort");
    CHECK(!lc_dist_comm_ok(c) && has_text(lc_dist_comm_error(c), "test abort"));
    CHECK(lc_dist_all_reduce(c, t) == LC_ERR_BACKEND && has_text(lc_last_error(), "unusable"));
    lc_tensor_free(col);
    lc_tensor_free(host);
    lc_tensor_free(wrong);
    lc_tensor_free(i8);
done:
    lc_tensor_free(t);
    lc_tensor_free(out);
    lc_dist_comm_destroy(c);
}

int main(void) {
    test_refusals_anywhere();
    if (lc_device_available(LC_DEVICE_CUDA))
        test_world_one();
    else
        test_no_gpu();
    printf("test_dist: %d passed, %d failed (%s)\n", g_pass, g_fail,
           lc_dist_available() ? "world size 1 on the GPU" : lc_dist_unavailable_reason());
    return g_fail ? 1 : 0;
}
