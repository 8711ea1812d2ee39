/* status.c — lc_status names, the thread-local last-error message, aligned allocation.
 * Tests: tests/c/test_core.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define LC_ERROR_CAPACITY 512

static _Thread_local char lc_error_text[LC_ERROR_CAPACITY];

static const char *const lc_status_names[LC_STATUS_COUNT] = {
    [LC_OK] = "ok",
    [LC_ERR_INVALID_ARGUMENT] = "invalid_argument",
    [LC_ERR_SHAPE] = "shape_mismatch",
    [LC_ERR_DTYPE] = "dtype_unsupported",
    [LC_ERR_OUT_OF_MEMORY] = "out_of_memory",
    [LC_ERR_DEVICE_UNAVAILABLE] = "device_unavailable",
    [LC_ERR_UNSUPPORTED] = "unsupported",
    [LC_ERR_BACKEND] = "backend_error",
    [LC_ERR_INTERNAL] = "internal_error",
};

const char *lc_status_str(lc_status status) {
    if ((int)status < 0 || status >= LC_STATUS_COUNT) return "unknown_status";
    return lc_status_names[status];
}

const char *lc_last_error(void) { return lc_error_text; }

void lc_clear_error(void) { lc_error_text[0] = '\0'; }

/* Both setters format into a local buffer first and copy it in afterwards, so an argument that points
 * into the thread-local text (lc_last_error()) is read before anything is written there. */
lc_status lc_error(lc_status status, const char *fmt, ...) {
    char text[LC_ERROR_CAPACITY];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(lc_error_text, text, sizeof text);
    return status;
}

lc_status lc_error_wrap(lc_status status, const char *fmt, ...) {
    char text[LC_ERROR_CAPACITY];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    size_t len = (size_t)n < sizeof text - 1 ? (size_t)n : sizeof text - 1;
    size_t inner = strlen(lc_error_text);
    if (inner > 0 && len + 2 < sizeof text) { /* "<context>: <message>", cut to the capacity */
        text[len++] = ':';
        text[len++] = ' ';
        if (inner > sizeof text - 1 - len) inner = sizeof text - 1 - len;
        memcpy(text + len, lc_error_text, inner);
        text[len + inner] = '\0';
    }
    memcpy(lc_error_text, text, sizeof text);
    return status;
}

void *lc_aligned_alloc(size_t bytes) {
    if (bytes == 0 || bytes > SIZE_MAX - 63) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63; /* aligned_alloc needs a multiple of the alignment */
    return aligned_alloc(64, rounded);
}

void lc_aligned_free(void *p) { free(p); }
