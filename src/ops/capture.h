/* capture.h — internal: the ops layer's side of graph capture (capture.c), called by lc_route_op for
 * every op: while the calling thread captures, the op must run on the capture's backend with every
 * operand there, and the graph keeps its operands alive; while another thread captures, device work is
 * refused. Tests: tests/python/test_capture.py (GPU machine). */
#ifndef LC_OPS_CAPTURE_H
#define LC_OPS_CAPTURE_H

#include "core/backend.h"
#include "lightning_core/session.h"

/* Enqueues `loops` replays without applying the sync policy (the caller does). */
lc_status lc_device_graph_launch(lc_device_graph_t *graph, int64_t loops);

lc_status lc_capture_check_route(const char *op, const lc_backend *selected, const lc_tensor_t *const *tensors, int n);

#endif
