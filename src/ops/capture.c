/* capture.c — device graphs (session.h): begin/end a capture on a backend that has one (CUDA), the
 * ops layer's capture checks (every operand on the capture device), the tensors a graph keeps alive, and
 * replay under the sync policy. Other threads' device work runs on while a capture records (the CUDA
 * backend gives the capturing thread its own stream).
 * Tests: tests/c/test_sessions.c, tests/python/test_capture.py (GPU machine). */
#include <stdatomic.h>
#include <stdlib.h>

#include "core/counters.h"
#include "ops/capture.h"
#include "ops/dispatch.h"

struct lc_device_graph {
    const lc_backend *backend;
    void *graph;
    int64_t nodes;
    lc_tensor_t **kept; /* views holding every captured operand's storage */
    size_t nkept;
};

/* The calling thread's capture (at most one), and whether any thread is capturing. */
static _Thread_local struct {
    const lc_backend *backend;
    lc_tensor_t **kept;
    size_t nkept, cap;
} lc_cap_here;
static atomic_int lc_captures_running;

int lc_capture_active(void) { return lc_cap_here.backend != NULL; }

static void lc_release_kept(lc_tensor_t **kept, size_t n) {
    for (size_t i = 0; i < n; i++) lc_tensor_free(kept[i]);
    free(kept);
}

lc_status lc_capture_begin(lc_device device) {
    const char *what = "capture_begin";
    if (lc_cap_here.backend) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: this thread is already capturing", what);
    if (device != LC_DEVICE_CUDA)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: device: graph capture needs cuda, got %s (the cpu runs eagerly)", what,
                        lc_device_name(device));
    const lc_backend *be = lc_backend_for(device);
    if (!be || !be->available() || !be->capture_begin)
        return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "%s: device: cuda is not available", what);
    lc_status st = be->capture_begin();
    if (st != LC_OK) return st;
    lc_cap_here.backend = be;
    lc_cap_here.kept = NULL;
    lc_cap_here.nkept = lc_cap_here.cap = 0;
    atomic_fetch_add(&lc_captures_running, 1);
    return LC_OK;
}

lc_status lc_capture_end(int keep, lc_device_graph_t **out) {
    if (out) *out = NULL;
    const lc_backend *be = lc_cap_here.backend;
    if (!be) return lc_error(LC_ERR_INVALID_ARGUMENT, "capture_end: this thread is not capturing");
    if (keep && !out) keep = 0;
    lc_tensor_t **kept = lc_cap_here.kept;
    const size_t nkept = lc_cap_here.nkept;
    lc_cap_here.backend = NULL;
    lc_cap_here.kept = NULL;
    lc_cap_here.nkept = lc_cap_here.cap = 0;
    atomic_fetch_sub(&lc_captures_running, 1);
    void *graph = NULL;
    int64_t nodes = 0;
    lc_status st = be->capture_end(keep, &graph, &nodes);
    lc_device_graph_t *g = NULL;
    if (st == LC_OK && keep) {
        g = calloc(1, sizeof *g);
        if (!g) {
            be->graph_free(graph);
            st = lc_error(LC_ERR_OUT_OF_MEMORY, "capture_end: out of host memory");
        }
    }
    if (!g) {
        lc_release_kept(kept, nkept);
        return st;
    }
    *g = (lc_device_graph_t){be, graph, nodes, kept, nkept};
    *out = g;
    return LC_OK;
}

lc_status lc_capture_check_route(const char *op, const lc_backend *selected, const lc_tensor_t *const *tensors, int n) {
    if (atomic_load_explicit(&lc_captures_running, memory_order_relaxed) == 0) return LC_OK;
    if (!lc_cap_here.backend) return LC_OK; /* another thread's capture: it records on its own stream */
    if (selected != lc_cap_here.backend)
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "%s: while capturing a graph every op must run on %s, this one would run on %s (put its "
                        "operands on %s)", op, lc_cap_here.backend->name, selected->name, lc_cap_here.backend->name);
    for (int i = 0; i < n; i++) {
        if (!tensors[i]) continue;
        if (lc_tensor_device(tensors[i]) != selected->device)
            return lc_error(LC_ERR_INVALID_ARGUMENT,
                            "%s: while capturing a graph every operand must live on %s, operand %d lives on %s", op,
                            selected->name, i, lc_device_name(lc_tensor_device(tensors[i])));
    }
    for (int i = 0; i < n; i++) {
        if (!tensors[i]) continue;
        if (lc_cap_here.nkept == lc_cap_here.cap) {
            size_t cap = lc_cap_here.cap ? 2 * lc_cap_here.cap : 16;
            lc_tensor_t **grown = realloc(lc_cap_here.kept, cap * sizeof *grown);
            if (!grown) return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: capture: out of host memory", op);
            lc_cap_here.kept = grown;
            lc_cap_here.cap = cap;
        }
        const lc_tensor_t *t = tensors[i];
        lc_tensor_t *v = NULL;
        lc_status st = lc_tensor_view(t, lc_tensor_ndim(t), lc_tensor_shape(t), lc_tensor_strides(t), lc_tensor_offset(t),
                                      LC_DEVICE_AUTO, &v);
        if (st != LC_OK) return st;
        lc_cap_here.kept[lc_cap_here.nkept++] = v;
    }
    return LC_OK;
}

lc_status lc_device_graph_launch(lc_device_graph_t *g, int64_t loops) {
    if (!g) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_replay: graph: expected a graph, got NULL");
    if (loops < 1) return lc_error(LC_ERR_INVALID_ARGUMENT, "graph_replay: loops: expected >= 1, got %lld", (long long)loops);
    return g->backend->graph_launch(g->graph, loops);
}

lc_status lc_device_graph_replay(lc_device_graph_t *g, int64_t loops) {
    lc_status st = lc_device_graph_launch(g, loops);
    if (st == LC_OK && lc_effective_sync_policy() == LC_SYNC_ALWAYS) st = g->backend->sync();
    return st;
}

int64_t lc_device_graph_nodes(const lc_device_graph_t *g) { return g ? g->nodes : 0; }

void lc_device_graph_free(lc_device_graph_t *g) {
    if (!g) return;
    g->backend->graph_free(g->graph);
    lc_release_kept(g->kept, g->nkept);
    free(g);
}
