/* dist_none.c — dist.h in a build without NCCL (or without CUDA): every entry refuses with
 * LC_ERR_UNSUPPORTED and the reason CMake found (LC_DIST_MISSING_REASON); nothing pretends to communicate.
 * The NCCL build compiles src/backend/cuda/nccl_comm.c instead.
 * Tests: tests/c/test_dist.c, tests/python/test_distributed.py (available() False + the reason). */
#include "core/internal.h"
#include "lightning_core/dist.h"

#ifndef LC_DIST_MISSING_REASON
#define LC_DIST_MISSING_REASON "this build has no NCCL backend"
#endif

static lc_status lc_dist_refuse(const char *fn) {
    return lc_error(LC_ERR_UNSUPPORTED, "%s: %s", fn, LC_DIST_MISSING_REASON);
}

int lc_dist_available(void) { return 0; }
const char *lc_dist_unavailable_reason(void) { return LC_DIST_MISSING_REASON; }
int lc_dist_nccl_version(void) { return 0; }

lc_status lc_dist_unique_id(uint8_t id[LC_DIST_UNIQUE_ID_BYTES]) { return lc_dist_refuse("dist_unique_id"); }

lc_status lc_dist_comm_init(const uint8_t id[LC_DIST_UNIQUE_ID_BYTES], int world_size, int rank, double timeout_s,
                            lc_dist_comm_t **out) {
    if (out) *out = NULL;
    return lc_dist_refuse("dist_comm_init");
}

/* No communicator can exist in this build: the handle-taking entries only see NULL. */
lc_status lc_dist_comm_destroy(lc_dist_comm_t *comm) { return LC_OK; }
void lc_dist_comm_abort(lc_dist_comm_t *comm, const char *reason) {}
int lc_dist_comm_rank(const lc_dist_comm_t *comm) { return -1; }
int lc_dist_comm_size(const lc_dist_comm_t *comm) { return 0; }
double lc_dist_comm_timeout(const lc_dist_comm_t *comm) { return 0.0; }
lc_status lc_dist_comm_set_timeout(lc_dist_comm_t *comm, double timeout_s) { return lc_dist_refuse("dist_set_timeout"); }
int lc_dist_comm_ok(const lc_dist_comm_t *comm) { return 0; }
const char *lc_dist_comm_error(const lc_dist_comm_t *comm) { return LC_DIST_MISSING_REASON; }

lc_status lc_dist_all_reduce(lc_dist_comm_t *comm, lc_tensor_t *t) { return lc_dist_refuse("all_reduce"); }
lc_status lc_dist_all_gather(lc_dist_comm_t *comm, const lc_tensor_t *in, lc_tensor_t *out) {
    return lc_dist_refuse("all_gather");
}
lc_status lc_dist_reduce_scatter(lc_dist_comm_t *comm, const lc_tensor_t *in, lc_tensor_t *out) {
    return lc_dist_refuse("reduce_scatter");
}
lc_status lc_dist_broadcast(lc_dist_comm_t *comm, lc_tensor_t *t, int src) { return lc_dist_refuse("broadcast"); }
lc_status lc_dist_wait(lc_dist_comm_t *comm) { return lc_dist_refuse("wait"); }
lc_status lc_dist_barrier(lc_dist_comm_t *comm) { return lc_dist_refuse("barrier"); }
lc_status lc_dist_exchange_header(lc_dist_comm_t *comm, const int64_t *mine, int n, int64_t *all) {
    return lc_dist_refuse("exchange_header");
}
