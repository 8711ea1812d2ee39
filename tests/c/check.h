/* check.h — the assertion macro shared by the small C test programs (test_core.c, test_sessions.c,
 * test_plan.c, test_graph.c, test_tune.c, test_kv_cache_api.c): CHECK counts passes and failures and prints each failure with the
 * library's last error; a program returns g_fail != 0. Only test files include this (static state). */
#ifndef LC_TEST_CHECK_H
#define LC_TEST_CHECK_H

#include <stdio.h>

#include "lightning_core/status.h"

static int g_pass, g_fail;

#define CHECK(cond)                                                                                        \
    do {                                                                                                   \
        if (cond) {                                                                                        \
            g_pass++;                                                                                      \
        } else {                                                                                           \
            g_fail++;                                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #cond, lc_last_error()); \
        }                                                                                                  \
    } while (0)

#define CHECK_OK(expr) CHECK((expr) == LC_OK)

#endif
