/* lightning_core.h — umbrella header of the Lightning Core C API (status, tensor, runtime, ops, trace,
 * tune, sessions, graph).
 * Tests: tests/c/. */
#ifndef LIGHTNING_CORE_H
#define LIGHTNING_CORE_H
#include "lightning_core/status.h"
#include "lightning_core/tensor.h"
#include "lightning_core/runtime.h"
#include "lightning_core/ops.h"
#include "lightning_core/trace.h"
#include "lightning_core/tune.h"
#include "lightning_core/session.h"
#include "lightning_core/graph.h"
#include "lightning_core/dist.h"
#endif
