/* harness.h — the machinery of the table-driven op harness (tests/c/test_ops.c): seeded inputs,
 * tensors built through the public API (contiguous or as strided views of a larger tensor), NaN-poisoned
 * outputs, comparison against the float64 references (cpu_kernels.h), pass/fail/skip bookkeeping per case
 * group and device, and the bad-input checks (exact status, error naming the argument, out untouched).
 *
 * Environment: LC_TEST_SEED=<u64> replays a run (the seed is always printed); LC_TEST_VERBOSE=1 prints
 * one line per case and device with its relative error and the kernel path (lc_last_dispatch).
 * Only test_ops.c includes this file, so everything here is static.
 */
#ifndef LC_TEST_HARNESS_H
#define LC_TEST_HARNESS_H

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu_kernels.h"
#include "lightning_core/lightning_core.h"

enum { H_PASS = 0, H_FAIL, H_SKIP };

typedef struct h_group {
    const char *name;
    int passed, failed, skipped;
    double t0;
} h_group;

static struct {
    uint64_t seed, rng;
    int verbose;
    lc_device devices[2];
    int ndevices;
    int passed, failed, skipped;
} H;

static double h_now(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- seeded random inputs (splitmix64) ------------------------------------------------------------ */

static uint64_t h_next(void) {
    uint64_t z = (H.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double h_uniform(double lo, double hi) { return lo + (hi - lo) * (double)(h_next() >> 11) * 0x1.0p-53; }

/* Rounds to what the dtype can hold, so the reference sees exactly the values the op sees. */
static double h_round(lc_dtype dt, double v) { return dt == LC_DTYPE_F32 ? (double)(float)v : v; }

static void h_fill(double *v, int64_t n, double lo, double hi, lc_dtype dt) {
    for (int64_t i = 0; i < n; i++) v[i] = h_round(dt, h_uniform(lo, hi));
}

static void *h_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_ops: out of host memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

static int64_t h_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* ---- tensors through the public API -------------------------------------------------------------- */

typedef enum h_layout {
    L_CONTIG = 0,  /* a fresh contiguous tensor */
    L_PADDED,      /* a view into a larger tensor: 1-D stride 2; else the last dim padded (and, for 4-D,
                      one extra channel), with a non-zero offset */
    L_TRANSPOSED   /* 2-D only: the transpose of a contiguous [cols, rows] tensor */
} h_layout;

static const char *h_layout_name(h_layout l) { return l == L_PADDED ? "padded" : l == L_TRANSPOSED ? "T" : "c"; }

/* Packs doubles as the dtype (caller frees). */
static void *h_pack(lc_dtype dt, const double *v, int64_t n) {
    void *buf = h_alloc((size_t)n * lc_dtype_size(dt));
    for (int64_t i = 0; i < n; i++) {
        if (dt == LC_DTYPE_F32)
            ((float *)buf)[i] = (float)v[i];
        else
            ((double *)buf)[i] = v[i];
    }
    return buf;
}

/* Fills every element of t (contiguous or view) with `value`. */
static lc_status h_fill_tensor(lc_tensor_t *t, double value) {
    int64_t n = lc_tensor_numel(t);
    double *v = h_alloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = value;
    void *buf = h_pack(lc_tensor_dtype(t), v, n);
    lc_status st = lc_tensor_copy_from_host(t, buf, (size_t)n * lc_dtype_size(lc_tensor_dtype(t)));
    free(buf);
    free(v);
    return st;
}

/* A tensor on `dev` holding `vals` (logical row-major order), laid out as `layout`. For a view, the rest
 * of the base storage is NaN, so reading outside the view shows up in the result; the base handle is
 * freed at once (the view keeps the storage alive). Exits on failure: these calls are not under test. */
static lc_tensor_t *h_make(lc_device dev, lc_dtype dt, int ndim, const int64_t *shape, const double *vals,
                           h_layout layout) {
    const int64_t n = h_numel(ndim, shape);
    lc_tensor_t *t = NULL;
    lc_status st;
    if (layout == L_CONTIG || (layout == L_TRANSPOSED && ndim != 2)) {
        st = lc_tensor_new(dt, dev, ndim, shape, &t);
    } else {
        int64_t bshape[LC_MAX_DIMS], vstrides[LC_MAX_DIMS], offset = 0;
        int bdim = ndim;
        for (int i = 0; i < ndim; i++) bshape[i] = shape[i];
        if (layout == L_TRANSPOSED) {
            bshape[0] = shape[1];
            bshape[1] = shape[0];
            vstrides[0] = 1;
            vstrides[1] = shape[0];
        } else if (ndim == 1) {
            bshape[0] = 2 * shape[0];
            vstrides[0] = 2;
            offset = 1;
        } else {
            bshape[ndim - 1] += 3;
            if (ndim == 4) bshape[1] += 1;
            int64_t s = 1;
            for (int i = ndim - 1; i >= 0; i--) {
                vstrides[i] = s;
                s *= bshape[i];
            }
            offset = 1 + (ndim == 4 ? vstrides[1] : 0);
        }
        lc_tensor_t *base = NULL;
        st = lc_tensor_new(dt, dev, bdim, bshape, &base);
        if (st == LC_OK) st = h_fill_tensor(base, NAN);
        if (st == LC_OK) st = lc_tensor_view(base, ndim, shape, vstrides, offset, LC_DEVICE_AUTO, &t);
        lc_tensor_free(base);
    }
    if (st == LC_OK && vals) {
        void *buf = h_pack(dt, vals, n);
        st = lc_tensor_copy_from_host(t, buf, (size_t)n * lc_dtype_size(dt));
        free(buf);
    }
    if (st != LC_OK) {
        fprintf(stderr, "test_ops: could not build a %s tensor on %s: %s: %s\n", lc_dtype_name(dt), lc_device_name(dev),
                lc_status_str(st), lc_last_error());
        exit(2);
    }
    return t;
}

/* A contiguous output tensor on `dev` poisoned with NaN, so every element must be written. */
static lc_tensor_t *h_out(lc_device dev, lc_dtype dt, int ndim, const int64_t *shape) {
    lc_tensor_t *t = h_make(dev, dt, ndim, shape, NULL, L_CONTIG);
    if (h_fill_tensor(t, NAN) != LC_OK) {
        fprintf(stderr, "test_ops: could not poison an output: %s\n", lc_last_error());
        exit(2);
    }
    return t;
}

/* The tensor's elements as doubles (caller frees). */
static double *h_read(const lc_tensor_t *t) {
    const int64_t n = lc_tensor_numel(t);
    const lc_dtype dt = lc_tensor_dtype(t);
    void *buf = h_alloc((size_t)n * lc_dtype_size(dt));
    double *v = h_alloc((size_t)n * sizeof *v);
    lc_status st = lc_tensor_to_host(t, buf, (size_t)n * lc_dtype_size(dt));
    for (int64_t i = 0; i < n; i++)
        v[i] = st != LC_OK ? NAN : dt == LC_DTYPE_F32 ? (double)((float *)buf)[i] : ((double *)buf)[i];
    free(buf);
    return v;
}

/* ---- comparison ---------------------------------------------------------------------------------- */

/* Where the reference is finite the output must be finite (a NaN never passes; a poisoned element that
 * was never written fails here); where it is NaN the output must be NaN, where it is ±inf, equal.
 * Finite elements are judged together: rel = ||out - ref|| / ||ref|| (absolute when ref is all zero).
 * With per_elem_atol >= 0 each finite element must also satisfy |out - ref| <= tol*|ref| + per_elem_atol
 * (for inputs whose norm one huge element would dominate). Returns 1 on pass; `why` explains a failure. */
static int h_compare(const double *out, const double *ref, int64_t n, double tol, double per_elem_atol, double *rel,
                     char *why, size_t why_len) {
    double num = 0.0, den = 0.0;
    *rel = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(ref[i])) {
            if (!isfinite(out[i])) {
                snprintf(why, why_len, "element %lld is %g where the reference is %.9g", (long long)i, out[i], ref[i]);
                *rel = INFINITY;
                return 0;
            }
            const double e = out[i] - ref[i];
            if (per_elem_atol >= 0.0 && fabs(e) > tol * fabs(ref[i]) + per_elem_atol) {
                snprintf(why, why_len, "element %lld is %.9g, reference %.9g", (long long)i, out[i], ref[i]);
                *rel = fabs(e) / fabs(ref[i]);
                return 0;
            }
            num += e * e;
            den += ref[i] * ref[i];
        } else if (isnan(ref[i]) ? !isnan(out[i]) : out[i] != ref[i]) {
            snprintf(why, why_len, "element %lld is %g where the reference is %g", (long long)i, out[i], ref[i]);
            *rel = INFINITY;
            return 0;
        }
    }
    *rel = den > 0.0 ? sqrt(num / den) : sqrt(num);
    if (!(*rel <= tol)) {
        snprintf(why, why_len, "relative error %.3g exceeds %.3g", *rel, tol);
        return 0;
    }
    return 1;
}

/* ---- bookkeeping --------------------------------------------------------------------------------- */

/* One case on one device: counted, and printed when it failed or in verbose mode; rel < 0 = not a
 * numerical case (nothing to print for rel/tol). */
static void h_group_begin(h_group *g, const char *name) {
    memset(g, 0, sizeof *g);
    g->name = name;
    g->t0 = h_now();
}

static void h_group_end(const h_group *g) {
    printf("%-22s %4d passed, %d failed", g->name, g->passed, g->failed);
    if (g->skipped) printf(", %d skipped", g->skipped);
    printf("  (%.2f s)\n", h_now() - g->t0);
    fflush(stdout);
    H.passed += g->passed;
    H.failed += g->failed;
    H.skipped += g->skipped;
}

static void h_record(h_group *g, lc_device dev, const char *desc, int outcome, double rel, double tol, const char *path,
                     const char *why) {
    if (outcome == H_PASS) g->passed++;
    if (outcome == H_FAIL) g->failed++;
    if (outcome == H_SKIP) g->skipped++;
    if (outcome == H_FAIL || H.verbose) {
        const char *tag = outcome == H_PASS ? "ok  " : outcome == H_FAIL ? "FAIL" : "skip";
        printf("  %s [%s] %s: %s", tag, lc_device_name(dev), g->name, desc);
        if (outcome != H_SKIP && rel >= 0.0) printf("  rel=%.3g tol=%.3g", rel, tol);
        if (path) printf("  path=%s", path);
        if (why && why[0]) printf("  (%s)", why);
        if (outcome == H_FAIL) printf("  [LC_TEST_SEED=%llu]", (unsigned long long)H.seed);
        printf("\n");
    }
}

/* Judges one op call on one device: the status (LC_ERR_UNSUPPORTED, or a run that the policy moved to
 * another device, counts as skipped: the op is not there yet), the dispatch record, then out vs ref.
 * *path_out (may be NULL) receives the kernel path on a run that happened. Returns the outcome. */
static int h_judge(h_group *g, lc_device dev, const char *desc, const char *op, lc_status st, const lc_tensor_t *out,
                   const double *ref, double tol, double per_elem_atol, const char **path_out) {
    char why[256] = "";
    double rel = 0.0;
    if (path_out) *path_out = NULL;
    if (st == LC_ERR_UNSUPPORTED) {
        snprintf(why, sizeof why, "unsupported: %s", lc_last_error());
        h_record(g, dev, desc, H_SKIP, 0, tol, NULL, why);
        return H_SKIP;
    }
    if (st != LC_OK) {
        snprintf(why, sizeof why, "status %s: %s", lc_status_str(st), lc_last_error());
        h_record(g, dev, desc, H_FAIL, INFINITY, tol, NULL, why);
        return H_FAIL;
    }
    lc_dispatch_info info;
    lc_last_dispatch(&info);
    if (info.selected != dev) {
        snprintf(why, sizeof why, "ran on %s (%s)", lc_device_name(info.selected), lc_reason_code(info.reason));
        h_record(g, dev, desc, H_SKIP, 0, tol, info.path, why);
        return H_SKIP;
    }
    if (!info.op || strcmp(info.op, op) != 0 || !info.path || !info.path[0]) {
        snprintf(why, sizeof why, "dispatch record says op=%s path=%s, expected op=%s", info.op ? info.op : "(null)",
                 info.path ? info.path : "(null)", op);
        h_record(g, dev, desc, H_FAIL, INFINITY, tol, info.path, why);
        return H_FAIL;
    }
    double *got = h_read(out);
    int ok = h_compare(got, ref, lc_tensor_numel(out), tol, per_elem_atol, &rel, why, sizeof why);
    free(got);
    h_record(g, dev, desc, ok ? H_PASS : H_FAIL, rel, tol, info.path, why);
    if (path_out) *path_out = info.path;
    return ok ? H_PASS : H_FAIL;
}

/* ---- bad input ------------------------------------------------------------------------------------ */

/* Whether `name` occurs in msg as a whole word (not inside a longer identifier). */
static int h_mentions(const char *msg, const char *name) {
    const size_t len = strlen(name);
    for (const char *p = strstr(msg, name); p; p = strstr(p + 1, name)) {
        const int before = p == msg || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        const int after = !(isalnum((unsigned char)p[len]) || p[len] == '_');
        if (before && after) return 1;
    }
    return 0;
}

/* A bad call must return exactly `want`, leave a non-empty error that names one of `names` ("a|b"),
 * and leave `out` (may be NULL) exactly as it was (`before`, from h_read before the call). */
static void h_expect_error(h_group *g, const char *desc, lc_status st, lc_status want, const char *names,
                           const lc_tensor_t *out, const double *before) {
    char why[512] = "";
    const char *msg = lc_last_error();
    if (st != want) {
        snprintf(why, sizeof why, "status %s, expected %s (message: \"%s\")", lc_status_str(st), lc_status_str(want), msg);
    } else if (!msg || !msg[0]) {
        snprintf(why, sizeof why, "empty lc_last_error()");
    } else {
        int named = 0;
        char buf[128];
        snprintf(buf, sizeof buf, "%s", names);
        for (char *tok = strtok(buf, "|"); tok && !named; tok = strtok(NULL, "|")) named = h_mentions(msg, tok);
        if (!named) snprintf(why, sizeof why, "message \"%s\" does not name %s", msg, names);
    }
    if (!why[0] && out && before) {
        double *after = h_read(out);
        const int64_t n = lc_tensor_numel(out);
        for (int64_t i = 0; i < n; i++) {
            if (memcmp(&after[i], &before[i], sizeof(double)) != 0) {
                snprintf(why, sizeof why, "out element %lld changed from %g to %g", (long long)i, before[i], after[i]);
                break;
            }
        }
        free(after);
    }
    h_record(g, LC_DEVICE_CPU, desc, why[0] ? H_FAIL : H_PASS, -1.0, 0.0, NULL, why[0] ? why : msg);
}

#endif
