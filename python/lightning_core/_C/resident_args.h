/* resident_args.h — the dtype rule of inputs to resident buffers (sessions: session_py.c; graph plans:
 * plan_py.c), whose dtype is fixed when the session or plan is made:
 * - a float16/bfloat16 buffer takes only arrays and tensors of that dtype (TypeError naming the argument
 *   and both dtypes: no silent cast);
 * - a float32/float64 buffer takes tensors of its dtype and float ndarrays of any of the four dtypes,
 *   converted to its dtype (round to nearest even), as the float32 sessions always did.
 * Rules: docs/python_api.md ("Resident sessions", "Graph plans"). Tests: tests/python/test_dtype_sessions_graph.py. */
#ifndef LCPY_RESIDENT_ARGS_H
#define LCPY_RESIDENT_ARGS_H

#include "call.h"

/* Sets c's compute dtype to `want` for the inputs taken so far (`whose`: "the session's", "the graph
 * input's"); 0, or -1 with TypeError. */
static inline int call_resident_dtype(lcpy_call *c, lc_dtype want, const char *whose) {
    for (int i = 0; i < c->n; i++) {
        if (c->indt[i] == want) continue;
        if (c->tt[i] == NULL && !lcpy_is_lowp(want)) continue; /* an ndarray into a float32/float64 buffer */
        PyErr_Format(PyExc_TypeError, "%s: %s: expected dtype %s (%s%s), got %s", c->fn, c->name[i], lc_dtype_name(want),
                     whose, c->tt[i] ? "; tensors are never converted" : "; convert first with lc.cast",
                     lc_dtype_name(c->indt[i]));
        return -1;
    }
    c->dtype = want;
    c->typenum = lcpy_dtype_typenum(c->fn, want);
    return c->typenum < 0 ? -1 : 0;
}

#endif
