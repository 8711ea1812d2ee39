/* test_tune.c — tests of the tune cache (src/core/tune_cache.c, include/lightning_core/tune.h):
 * round trip through a file; truncated, garbage, bit-flipped, empty, foreign-version, unreadable and
 * unwritable files (each ignored with exactly one "lightning_core: warning:" line naming the file,
 * never loaded in part, the process going on in memory); concurrent writers (8 forked processes
 * storing distinct keys many times: the file parses and holds every key, no lock or temp file left);
 * files that are not ours (text, binary, larger than 64 MiB, another version, directory, symlink to a
 * cache of ours and dangling, FIFO in a child with an alarm so a hang fails, unreadable unless root):
 * one warning, byte-identical and of the same type afterwards, no ".lock" next to them, tuning in
 * memory; files that are ours (valid, absent, empty) rewritten; a lock held elsewhere: the store
 * returns after the lock timeout and the process stops writing; the autotune flag; bad keys;
 * the crossover variables; and the CPU matmul autotuner (a tuned shape gets an entry, its result is
 * right, a stored mode is honoured, an invalid one retuned).
 * Works in a fresh temporary directory. Run by ctest; prints "N passed, N failed". */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/tune_cache.h"
#include "lightning_core/lightning_core.h"
#include "check.h"


static char g_dir[64];

static void path_in_dir(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", g_dir, name); }

static void write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return;
    }
    fwrite(data, 1, n, f);
    fclose(f);
}

/* Whole file into a malloc'd NUL-terminated buffer (NULL if missing). */
static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    size_t got = fread(buf, 1, (size_t)size, f);
    buf[got] = '\0';
    fclose(f);
    if (n) *n = got;
    return buf;
}

/* Files in the test directory whose name ends in ".lock" or holds ".tmp." (none may be left). */
static int count_lock_files(void) {
    int n = 0;
    DIR *d = opendir(g_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        const size_t len = strlen(e->d_name);
        n += (len >= 5 && strcmp(e->d_name + len - 5, ".lock") == 0) || strstr(e->d_name, ".tmp.") != NULL;
    }
    if (d) closedir(d);
    return n;
}

/* Points the cache at `path` (NULL: memory only) and resets it. */
static void use_cache(const char *path) {
    if (path)
        setenv("LC_TUNE_CACHE_FILE", path, 1);
    else
        unsetenv("LC_TUNE_CACHE_FILE");
    lc_tune_reset();
}

/* ---- stderr capture ------------------------------------------------------------------------------ */

static int g_saved_err = -1;
static char g_err_path[96];

static void capture_begin(void) {
    fflush(stderr);
    path_in_dir(g_err_path, sizeof g_err_path, "stderr.txt");
    int fd = open(g_err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    g_saved_err = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Stops capturing; returns how many warning lines were printed, and whether each named `needle`. */
static int capture_end(const char *needle, int *all_named) {
    fflush(stderr);
    dup2(g_saved_err, 2);
    close(g_saved_err);
    char *text = read_file(g_err_path, NULL);
    int count = 0, named = 1;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (strncmp(line, "lightning_core: warning:", 24) == 0) {
            count++;
            if (needle && !strstr(line, needle)) named = 0;
            fprintf(stderr, "  (captured) %s\n", line);
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(text);
    if (all_named) *all_named = named;
    return count;
}

/* ---- round trip --------------------------------------------------------------------------------- */

static void test_round_trip(void) {
    char path[96];
    path_in_dir(path, sizeof path, "rt.tune");
    use_cache(path);
    CHECK(lc_tune_cache_path() && strcmp(lc_tune_cache_path(), path) == 0);
    CHECK(lc_tune_entry_count() == 0);
    CHECK(lc_tune_store("matmul|cpu|f32|m=512,k=512,n=512|thr=2", "blas", 1.25) == LC_OK);
    CHECK(lc_tune_store("attention|cuda|f32|seq=1024,d=64,causal=1|sms=132", "chunk=4", 0.0625) == LC_OK);
    CHECK(lc_tune_store("a key with spaces", "mode x", 0.0) == LC_OK);
    CHECK(lc_tune_store("matmul|cpu|f32|m=512,k=512,n=512|thr=2", "blocked", 1.5) == LC_OK); /* replaces */
    CHECK(lc_tune_entry_count() == 3);

    size_t n = 0;
    char *text = read_file(path, &n);
    CHECK(text && strncmp(text, "lightning_core-tune v1\n", 23) == 0);
    CHECK(text && strstr(text, "\nend\t3\t") != NULL && text[n - 1] == '\n');
    free(text);

    use_cache(path); /* a fresh start reads the file back */
    char mode[LC_TUNE_MODE_MAX];
    double ms = -1.0;
    CHECK(lc_tune_lookup("matmul|cpu|f32|m=512,k=512,n=512|thr=2", mode, sizeof mode, &ms) && strcmp(mode, "blocked") == 0 &&
          ms == 1.5);
    CHECK(lc_tune_lookup("attention|cuda|f32|seq=1024,d=64,causal=1|sms=132", mode, sizeof mode, &ms) &&
          strcmp(mode, "chunk=4") == 0 && ms == 0.0625);
    CHECK(lc_tune_lookup("a key with spaces", mode, sizeof mode, &ms) && strcmp(mode, "mode x") == 0 && ms == 0.0);
    CHECK(!lc_tune_lookup("absent", mode, sizeof mode, &ms));
    lc_tune_entry e[4];
    CHECK(lc_tune_entries(e, 4) == 3);
    CHECK(strcmp(e[0].key, "a key with spaces") == 0 && strcmp(e[1].key, "attention|cuda|f32|seq=1024,d=64,causal=1|sms=132") == 0);
    CHECK(lc_tune_entries(e, 1) == 1 && lc_tune_entries(NULL, 0) == 0);

    /* memory only: nothing written, path NULL */
    use_cache(NULL);
    CHECK(lc_tune_cache_path() == NULL && lc_tune_entry_count() == 0);
    CHECK(lc_tune_store("mem|only", "x", 1.0) == LC_OK && lc_tune_entry_count() == 1);
    /* the seed's alias */
    unsetenv("LC_TUNE_CACHE_FILE");
    setenv("CJ_MATMUL_TUNE_CACHE_FILE", path, 1);
    lc_tune_reset();
    CHECK(lc_tune_cache_path() && strcmp(lc_tune_cache_path(), path) == 0 && lc_tune_entry_count() == 3);
    unsetenv("CJ_MATMUL_TUNE_CACHE_FILE");
    use_cache(NULL);
}

static void test_bad_arguments(void) {
    use_cache(NULL);
    char long_key[LC_TUNE_KEY_MAX + 1];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    CHECK(lc_tune_store(NULL, "m", 1.0) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "key") != NULL);
    CHECK(lc_tune_store("", "m", 1.0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_tune_store("a\tb", "m", 1.0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_tune_store("a\nb", "m", 1.0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_tune_store("end", "m", 1.0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_tune_store(long_key, "m", 1.0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_tune_store("k", "", 1.0) == LC_ERR_INVALID_ARGUMENT && strstr(lc_last_error(), "mode") != NULL);
    CHECK(lc_tune_store("k", "m", NAN) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_tune_store("k", "m", -1.0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_tune_entry_count() == 0);
}

/* ---- damaged files ------------------------------------------------------------------------------- */

/* Writes `data` to `path` (unless NULL) and loads it: exactly one warning naming the file, nothing
 * loaded; then again after a reset: no second warning. */
static void expect_ignored(const char *what, const char *path, const char *data, size_t n) {
    if (data) write_file(path, data, n);
    capture_begin();
    use_cache(path);
    const size_t count = lc_tune_entry_count(); /* first use: loads */
    int named = 0;
    int warnings = capture_end(path, &named);
    if (warnings != 1 || !named || count != 0)
        fprintf(stderr, "  case '%s': %d warning(s), named %d, %zu entries loaded\n", what, warnings, named, count);
    CHECK(warnings == 1 && named);
    CHECK(count == 0);
    /* the same path again (after a reset): no second warning */
    capture_begin();
    use_cache(path);
    (void)lc_tune_entry_count();
    CHECK(capture_end(NULL, NULL) == 0);
}

static void test_damaged_files(void) {
    char good_path[96], path[128];
    path_in_dir(good_path, sizeof good_path, "good.tune");
    use_cache(good_path);
    CHECK(lc_tune_store("k1", "m1", 1.0) == LC_OK);
    CHECK(lc_tune_store("k2", "m2", 2.0) == LC_OK);
    CHECK(lc_tune_store("k3", "m3", 3.0) == LC_OK);
    size_t n = 0;
    char *good = read_file(good_path, &n);
    CHECK(good != NULL && n > 40);
    if (!good) return;

    /* truncated anywhere: in the header, mid-entry, at a line boundary before the end line, mid end line */
    const char *end_line = strstr(good, "end\t");
    const size_t cuts[] = {5, 23, 30, (size_t)(end_line - good), (size_t)(end_line - good) + 6, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(path, sizeof path, "%s/trunc%zu.tune", g_dir, i);
        expect_ignored("truncated", path, good, cuts[i]);
    }
    /* one flipped bit: in a mode ("m1" -> "l1": checksum mismatch), in a separator (malformed line) */
    char *flip = malloc(n);
    memcpy(flip, good, n);
    CHECK(strncmp(good + 23, "k1\tm1\t", 6) == 0);
    flip[26] ^= 0x01;
    snprintf(path, sizeof path, "%s/flip.tune", g_dir);
    expect_ignored("bit flip in a mode", path, flip, n);
    memcpy(flip, good, n);
    flip[25] ^= 0x01;
    snprintf(path, sizeof path, "%s/flip2.tune", g_dir);
    expect_ignored("bit flip in a separator", path, flip, n);
    /* data after the end line */
    char *more = malloc(n + 8);
    memcpy(more, good, n);
    memcpy(more + n, "k9\tm\t1\n", 7);
    snprintf(path, sizeof path, "%s/trailing.tune", g_dir);
    expect_ignored("trailing data", path, more, n + 7);
    free(more);
    free(flip);
    /* garbage, binary, empty */
    snprintf(path, sizeof path, "%s/garbage.tune", g_dir);
    expect_ignored("garbage", path, "hello world\nthis is not a cache\n", 32);
    const char bin[8] = {'\x7f', 'E', 'L', 'F', 0, 1, 2, 3};
    snprintf(path, sizeof path, "%s/binary.tune", g_dir);
    expect_ignored("binary", path, bin, sizeof bin);
    /* unreadable: a directory */
    snprintf(path, sizeof path, "%s/adir.tune", g_dir);
    mkdir(path, 0755);
    expect_ignored("directory", path, NULL, 0);
    capture_begin();
    CHECK(lc_tune_store("after", "dir", 1.0) == LC_OK && lc_tune_entry_count() == 1); /* in memory; no more warnings */
    CHECK(capture_end(NULL, NULL) == 0);

    /* a damaged file of ours is rewritten (whole and valid) by the next store; one that is not ours
     * (garbage) is left as it was */
    snprintf(path, sizeof path, "%s/trunc3.tune", g_dir);
    use_cache(path);
    CHECK(lc_tune_store("fresh", "mode", 4.0) == LC_OK);
    use_cache(path);
    CHECK(lc_tune_entry_count() == 1 && lc_tune_lookup("fresh", NULL, 0, NULL));
    snprintf(path, sizeof path, "%s/garbage.tune", g_dir);
    use_cache(path);
    CHECK(lc_tune_store("fresh", "mode", 4.0) == LC_OK && lc_tune_entry_count() == 1);
    char *garbage = read_file(path, NULL);
    CHECK(garbage && strcmp(garbage, "hello world\nthis is not a cache\n") == 0);
    free(garbage);

    /* a foreign version: ignored, and never overwritten */
    static const char v2[] = "lightning_core-tune v2\nsome\tfuture\tformat\nend\t1\t00000000\n";
    snprintf(path, sizeof path, "%s/v2.tune", g_dir);
    expect_ignored("foreign version", path, v2, sizeof v2 - 1);
    capture_begin();
    CHECK(lc_tune_store("mine", "m", 1.0) == LC_OK && lc_tune_lookup("mine", NULL, 0, NULL));
    CHECK(capture_end(NULL, NULL) == 0);
    char *after = read_file(path, NULL);
    CHECK(after && strcmp(after, v2) == 0);
    free(after);

    /* unwritable: a missing directory; loading is quiet (no file yet), the first store warns once and
     * leaves nothing behind */
    snprintf(path, sizeof path, "%s/no/such/dir/x.tune", g_dir);
    capture_begin();
    use_cache(path);
    CHECK(lc_tune_entry_count() == 0);
    CHECK(lc_tune_store("u1", "m", 1.0) == LC_OK && lc_tune_store("u2", "m", 1.0) == LC_OK);
    int named = 0;
    CHECK(capture_end(path, &named) == 1 && named);
    CHECK(lc_tune_entry_count() == 2);
    snprintf(path, sizeof path, "%s/no", g_dir);
    CHECK(access(path, F_OK) != 0);

    free(good);
    use_cache(NULL);
}

/* ---- concurrent writers -------------------------------------------------------------------------- */

#define WRITERS 8
#define KEYS_PER_WRITER 40

static void test_concurrent_writers(void) {
    char path[96];
    path_in_dir(path, sizeof path, "shared.tune");
    use_cache(path);
    CHECK(lc_tune_store("parent", "p", 0.5) == LC_OK);
    fflush(NULL);
    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            lc_tune_reset(); /* a fresh process's view: loads what is there now */
            const unsigned warned = lc_tune_warning_count(); /* inherited from the parent */
            int bad = 0;
            for (int i = 0; i < KEYS_PER_WRITER; i++) {
                char key[64], mode[32];
                snprintf(key, sizeof key, "writer=%d|i=%d", w, i);
                snprintf(mode, sizeof mode, "m%d", i);
                bad |= lc_tune_store(key, mode, (double)i) != LC_OK;
                /* rewrite an earlier key now and then (same value): replacements race too */
                if (i % 5 == 4) bad |= lc_tune_store("writer=0|i=0", "m0", 0.0) != LC_OK;
            }
            _exit(bad || lc_tune_warning_count() != warned ? 1 : 0);
        }
    }
    int children_ok = 1;
    for (int w = 0; w < WRITERS; w++) {
        int status = 0;
        if (pids[w] < 0 || waitpid(pids[w], &status, 0) != pids[w] || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            children_ok = 0;
    }
    CHECK(children_ok);
    const unsigned warnings_before = lc_tune_warning_count();
    use_cache(path);
    CHECK(lc_tune_entry_count() == 1 + WRITERS * KEYS_PER_WRITER);
    int all = lc_tune_lookup("parent", NULL, 0, NULL);
    for (int w = 0; w < WRITERS; w++)
        for (int i = 0; i < KEYS_PER_WRITER; i++) {
            char key[64], mode[32], want[32];
            double ms = -1.0;
            snprintf(key, sizeof key, "writer=%d|i=%d", w, i);
            snprintf(want, sizeof want, "m%d", i);
            all &= lc_tune_lookup(key, mode, sizeof mode, &ms) && strcmp(mode, want) == 0 && ms == (double)i;
        }
    CHECK(all);
    CHECK(lc_tune_warning_count() == warnings_before);
    /* no temp files left behind */
    int leftovers = 0;
    DIR *d = opendir(g_dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) leftovers++;
    if (d) closedir(d);
    CHECK(leftovers == 0);
    CHECK(count_lock_files() == 0);
    use_cache(NULL);
}

/* ---- flag, generation, crossovers ---------------------------------------------------------------- */

static void test_flags(void) {
    const int was = lc_get_autotune();
    CHECK(was == 1); /* ctest runs without LC_AUTOTUNE */
    unsigned g = lc_tune_generation();
    lc_set_autotune(0);
    CHECK(!lc_get_autotune() && lc_tune_generation() != g);
    g = lc_tune_generation();
    lc_set_autotune(0);
    CHECK(lc_tune_generation() == g); /* no change, no bump */
    lc_set_autotune(1);
    CHECK(lc_get_autotune());
    g = lc_tune_generation();
    lc_tune_reset();
    CHECK(lc_tune_generation() != g);

    unsetenv("LC_CONV2D_CPU_CROSSOVER_MACS");
    unsetenv("CJ_CONV2D_CPU_CROSSOVER_MACS");
    unsetenv("LC_MATMUL_CPU_CROSSOVER_FLOPS");
    lc_tune_reset();
    const double dflt = lc_conv2d_cpu_crossover_macs();
    CHECK(dflt > 0.0 && lc_matmul_cpu_crossover_flops() > 0.0);
    setenv("CJ_CONV2D_CPU_CROSSOVER_MACS", "260000", 1);
    lc_tune_reset();
    CHECK(lc_conv2d_cpu_crossover_macs() == 260000.0);
    setenv("LC_CONV2D_CPU_CROSSOVER_MACS", "1e6", 1); /* LC_ wins over the alias */
    setenv("LC_MATMUL_CPU_CROSSOVER_FLOPS", "-1", 1);
    CHECK(lc_conv2d_cpu_crossover_macs() == 260000.0); /* read once until the next reset */
    lc_tune_reset();
    CHECK(lc_conv2d_cpu_crossover_macs() == 1e6 && lc_matmul_cpu_crossover_flops() == -1.0);
    setenv("LC_CONV2D_CPU_CROSSOVER_MACS", "lots", 1);
    capture_begin();
    lc_tune_reset();
    CHECK(lc_conv2d_cpu_crossover_macs() == dflt);
    int named = 0;
    CHECK(capture_end("LC_CONV2D_CPU_CROSSOVER_MACS", &named) == 1 && named);
    unsetenv("LC_CONV2D_CPU_CROSSOVER_MACS");
    unsetenv("CJ_CONV2D_CPU_CROSSOVER_MACS");
    unsetenv("LC_MATMUL_CPU_CROSSOVER_FLOPS");
    lc_tune_reset();
}

/* ---- the CPU matmul autotuner --------------------------------------------------------------------- */

static double matmul_rel_err(int64_t m, int64_t k, int64_t n, const char **path) {
    float *a = malloc((size_t)(m * k) * sizeof *a), *b = malloc((size_t)(k * n) * sizeof *b);
    float *c = malloc((size_t)(m * n) * sizeof *c);
    double *a64 = malloc((size_t)(m * k) * sizeof *a64), *b64 = malloc((size_t)(k * n) * sizeof *b64);
    double *ref = malloc((size_t)(m * n) * sizeof *ref);
    unsigned s = 12345u;
    for (int64_t i = 0; i < m * k; i++) a64[i] = a[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (int64_t i = 0; i < k * n; i++) b64[i] = b[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (int64_t i = 0; i < m * n; i++) c[i] = NAN;
    lc_ref_matmul(m, k, n, a64, b64, ref);
    const int64_t sa[2] = {m, k}, sb[2] = {k, n}, sc[2] = {m, n};
    lc_tensor_t *ta = NULL, *tb = NULL, *tc = NULL;
    double err = INFINITY;
    if (lc_tensor_wrap_host(a, LC_DTYPE_F32, 2, sa, NULL, 0, &ta) == LC_OK &&
        lc_tensor_wrap_host(b, LC_DTYPE_F32, 2, sb, NULL, 0, &tb) == LC_OK &&
        lc_tensor_wrap_host(c, LC_DTYPE_F32, 2, sc, NULL, 1, &tc) == LC_OK &&
        lc_matmul(ta, tb, tc, LC_DEVICE_CPU) == LC_OK) {
        double num = 0.0, den = 0.0;
        for (int64_t i = 0; i < m * n; i++) {
            num += ((double)c[i] - ref[i]) * ((double)c[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        err = isfinite(num) ? sqrt(num / den) : INFINITY;
        lc_dispatch_info info;
        lc_last_dispatch(&info);
        *path = info.path;
    }
    lc_tensor_free(ta);
    lc_tensor_free(tb);
    lc_tensor_free(tc);
    free(a);
    free(b);
    free(c);
    free(a64);
    free(b64);
    free(ref);
    return err;
}

static int ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void test_matmul_autotune(void) {
    char path[96];
    path_in_dir(path, sizeof path, "matmul.tune");
    use_cache(path);
    lc_set_autotune(1);
    const char *p = NULL;
    /* small shapes never tune */
    CHECK(matmul_rel_err(65, 63, 66, &p) < 2e-5 && lc_tune_entry_count() == 0);
    /* 200^3 = 8 M multiply-adds: tuned (blocked, BLAS when built, small on one thread), one entry */
    CHECK(matmul_rel_err(200, 200, 200, &p) < 2e-5);
    CHECK(lc_tune_entry_count() == 1);
    lc_tune_entry e;
    CHECK(lc_tune_entries(&e, 1) == 1);
    CHECK(strncmp(e.key, "matmul|cpu|f32|m=200,k=200,n=200|thr=", 37) == 0);
    CHECK(strcmp(e.mode, "small") == 0 || strcmp(e.mode, "blas") == 0 || strcmp(e.mode, "blocked") == 0);
    CHECK(p && (strcmp(e.mode, "blas") == 0 ? strcmp(p, "blas") == 0 : ends_with(p, e.mode)));
    /* later calls (and later processes, through the file) take the stored mode */
    CHECK(lc_tune_store(e.key, "blocked", 0.5) == LC_OK);
    use_cache(path);
    CHECK(matmul_rel_err(200, 200, 200, &p) < 2e-5 && p && ends_with(p, "_blocked"));
    /* the single-threaded small kernel is a candidate for a square shape only on a one-thread pool: a stored
     * "small" is taken there, and tuned again (never choosing small) with more threads */
    CHECK(lc_tune_store(e.key, "small", 0.5) == LC_OK);
    CHECK(matmul_rel_err(200, 200, 200, &p) < 2e-5 && p && ends_with(p, "_small") == (lc_num_threads() <= 1));
    const int threads_before = lc_num_threads();
    CHECK(lc_set_num_threads(1) == LC_OK);
    const char *key1 = "matmul|cpu|f32|m=200,k=200,n=200|thr=1|";
    CHECK(matmul_rel_err(200, 200, 200, &p) < 2e-5 && lc_tune_entry_count() >= 1);
    lc_tune_entry all[4];
    const size_t n_all = lc_tune_entries(all, 4);
    int saw_thr1 = 0;
    for (size_t i = 0; i < n_all; i++) saw_thr1 |= strncmp(all[i].key, key1, strlen(key1)) == 0;
    CHECK(saw_thr1);  /* one thread: its own key, tuned with small among the candidates */
    CHECK(lc_set_num_threads(threads_before) == LC_OK);
    /* an entry that is not a candidate here is tuned again */
    CHECK(lc_tune_store(e.key, "bogus", 0.5) == LC_OK);
    CHECK(matmul_rel_err(200, 200, 200, &p) < 2e-5);
    char mode[LC_TUNE_MODE_MAX];
    CHECK(lc_tune_lookup(e.key, mode, sizeof mode, NULL) && strcmp(mode, "bogus") != 0);
    /* autotune off: no measurement, stored entries ignored (the heuristic: small up to 64^3 or 128^3) */
    CHECK(lc_tune_store(e.key, "small", 0.5) == LC_OK);
    lc_set_autotune(0);
    CHECK(matmul_rel_err(200, 200, 200, &p) < 2e-5 && p && !ends_with(p, "_small"));
    const size_t entries_before = lc_tune_entry_count();
    CHECK(matmul_rel_err(210, 200, 200, &p) < 2e-5 && lc_tune_entry_count() == entries_before);
    lc_set_autotune(1);
    use_cache(NULL);
}

/* ---- files that are not ours, files that are, a lock held elsewhere -------------------------------- */

#define TUNE_FILE_MAX ((off_t)64 << 20) /* LC_TUNE_FILE_MAX in tune_cache.c */

/* What a path is now: its lstat, the first 64 KiB of a regular file, a symlink's target text. */
typedef struct {
    int exists;
    struct stat sb;
    char head[65536];
    ssize_t head_n;
    char link[256];
} file_state;

static void take_state(const char *path, file_state *st) {
    memset(st, 0, sizeof *st);
    st->exists = lstat(path, &st->sb) == 0;
    st->head_n = -1;
    if (st->exists && S_ISREG(st->sb.st_mode)) {
        const int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            st->head_n = pread(fd, st->head, sizeof st->head, 0);
            close(fd);
        }
    }
    if (st->exists && S_ISLNK(st->sb.st_mode)) {
        const ssize_t n = readlink(path, st->link, sizeof st->link - 1);
        st->link[n > 0 ? n : 0] = '\0';
    }
}

/* 1 when `path` is what `before` recorded: type, inode, size, mtime, bytes, link target. */
static int same_state(const char *path, const file_state *before) {
    file_state now;
    take_state(path, &now);
    return now.exists == before->exists && now.sb.st_mode == before->sb.st_mode && now.sb.st_ino == before->sb.st_ino &&
           now.sb.st_size == before->sb.st_size && now.sb.st_mtim.tv_sec == before->sb.st_mtim.tv_sec &&
           now.sb.st_mtim.tv_nsec == before->sb.st_mtim.tv_nsec && now.head_n == before->head_n &&
           (now.head_n <= 0 || memcmp(now.head, before->head, (size_t)now.head_n) == 0) &&
           strcmp(now.link, before->link) == 0;
}

/* The cache pointed at `path` (already made): loading and two stores give exactly one warning naming
 * it, the entries live in memory, and the path (and `also`, a symlink's target, unless NULL) is
 * exactly as before, with no lock or temp file next to it. */
static void expect_untouched(const char *what, const char *path, const char *also) {
    static file_state before, also_before;
    take_state(path, &before);
    if (also) take_state(also, &also_before);
    capture_begin();
    use_cache(path);
    const int path_ok = lc_tune_cache_path() && strcmp(lc_tune_cache_path(), path) == 0;
    const size_t loaded = lc_tune_entry_count();
    const int stored = lc_tune_store("k|1", "m", 1.0) == LC_OK && lc_tune_store("k|2", "m", 2.0) == LC_OK;
    int named = 0;
    const int warnings = capture_end(path, &named);
    const int same = same_state(path, &before) && (!also || same_state(also, &also_before));
    const int leftovers = count_lock_files();
    if (!(path_ok && loaded == 0 && stored && lc_tune_entry_count() == 2 && warnings == 1 && named && same &&
          leftovers == 0))
        fprintf(stderr, "  case '%s': path %d, loaded %zu, stored %d, entries %zu, %d warning(s) named %d, same %d, "
                "%d lock/temp files\n", what, path_ok, loaded, stored, lc_tune_entry_count(), warnings, named, same,
                leftovers);
    CHECK(path_ok && loaded == 0 && stored && lc_tune_entry_count() == 2);
    CHECK(warnings == 1 && named);
    CHECK(same);
    CHECK(leftovers == 0);
}

/* A FIFO as the cache, in a child with an alarm: loading, a store and the first tuned matmul all return
 * (the child is killed by SIGALRM if anything waits on the FIFO), with one warning. */
static void test_fifo(void) {
    char path[96];
    path_in_dir(path, sizeof path, "fifo.tune");
    CHECK(mkfifo(path, 0600) == 0);
    fflush(NULL);
    const pid_t pid = fork();
    if (pid == 0) {
        alarm(30);
        use_cache(path);
        const unsigned w0 = lc_tune_warning_count();
        int ok = lc_tune_cache_path() && strcmp(lc_tune_cache_path(), path) == 0;
        ok &= lc_tune_entry_count() == 0;
        lc_tune_reset(); /* the first use being the tuned matmul itself */
        const char *kpath = NULL;
        ok &= matmul_rel_err(200, 200, 200, &kpath) < 2e-5 && lc_tune_entry_count() == 1;
        ok &= lc_tune_store("k", "m", 1.0) == LC_OK && lc_tune_entry_count() == 2;
        ok &= lc_tune_warning_count() == w0 + 1;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status)) fprintf(stderr, "  FIFO child killed by signal %d (hung?)\n", WTERMSIG(status));
    const int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    CHECK(child_ok);
    struct stat sb;
    CHECK(lstat(path, &sb) == 0 && S_ISFIFO(sb.st_mode));
    CHECK(count_lock_files() == 0);
    /* and in this process (only when the child came back: a hang here would stall the suite), with the
     * file state compared */
    if (child_ok) expect_untouched("fifo", path, NULL);
}

static void test_not_ours(void) {
    char path[128], target[128];
    /* a text file, a binary one, another format version */
    static const char text[] = "my notes\nplease keep\n";
    path_in_dir(path, sizeof path, "notes.txt");
    write_file(path, text, sizeof text - 1);
    expect_untouched("text file", path, NULL);
    static const char bin[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    path_in_dir(path, sizeof path, "image.png");
    write_file(path, bin, sizeof bin - 1);
    expect_untouched("binary file", path, NULL);
    static const char v3[] = "lightning_core-tune v3\nfuture\tstuff\t1\nend\t1\t00000000\n";
    path_in_dir(path, sizeof path, "v3.tune");
    write_file(path, v3, sizeof v3 - 1);
    expect_untouched("format v3", path, NULL);
    /* larger than 64 MiB (sparse), even with our header line at the start */
    path_in_dir(path, sizeof path, "big.bin");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, "lightning_core-tune v1\n", 23) == 23 && ftruncate(fd, TUNE_FILE_MAX + 4096) == 0);
    if (fd >= 0) close(fd);
    expect_untouched("64 MiB + 4 KiB file", path, NULL);
    unlink(path);
    /* a directory */
    path_in_dir(path, sizeof path, "somedir");
    CHECK(mkdir(path, 0755) == 0);
    expect_untouched("directory", path, NULL);
    /* a symlink to a valid cache of ours: the link stays a link, the target unchanged */
    path_in_dir(target, sizeof target, "real.tune");
    use_cache(target);
    CHECK(lc_tune_store("real|1", "m", 1.0) == LC_OK);
    path_in_dir(path, sizeof path, "link.tune");
    CHECK(symlink(target, path) == 0);
    expect_untouched("symlink to a cache", path, target);
    /* a dangling symlink: its target is not created */
    path_in_dir(target, sizeof target, "nowhere.tune");
    path_in_dir(path, sizeof path, "dangling.tune");
    CHECK(symlink(target, path) == 0);
    expect_untouched("dangling symlink", path, NULL);
    CHECK(access(target, F_OK) != 0);
    /* a file that cannot be read (root reads anything: skipped there) */
    if (geteuid() != 0) {
        path_in_dir(path, sizeof path, "secret.tune");
        write_file(path, "lightning_core-tune v1\n", 23);
        chmod(path, 0);
        expect_untouched("unreadable", path, NULL);
        chmod(path, 0600);
    } else {
        printf("  (unreadable-file case skipped: running as root)\n");
    }
    test_fifo();
    use_cache(NULL);
}

/* Ours: a valid cache gets the new entries merged in; an absent file is created; an empty one is an
 * empty table (no warning) and rewritten. No lock or temp file is left. */
static void test_ours_rewritten(void) {
    char path[96];
    path_in_dir(path, sizeof path, "ours.tune");
    use_cache(path);
    capture_begin();
    CHECK(access(path, F_OK) != 0 && lc_tune_entry_count() == 0 && access(path, F_OK) != 0); /* loading creates nothing */
    CHECK(lc_tune_store("a|1", "m1", 1.0) == LC_OK);                                         /* absent: created */
    use_cache(path);
    CHECK(lc_tune_entry_count() == 1 && lc_tune_store("b|2", "m2", 2.0) == LC_OK);           /* valid: merged */
    use_cache(path);
    CHECK(lc_tune_entry_count() == 2 && lc_tune_lookup("a|1", NULL, 0, NULL) && lc_tune_lookup("b|2", NULL, 0, NULL));
    path_in_dir(path, sizeof path, "touched.tune");
    write_file(path, "", 0);
    use_cache(path);
    CHECK(lc_tune_entry_count() == 0 && lc_tune_store("c|3", "m3", 3.0) == LC_OK);
    size_t n = 0;
    char *text = read_file(path, &n);
    CHECK(text && strncmp(text, "lightning_core-tune v1\nc|3\tm3\t3\nend\t1\t", 38) == 0);
    free(text);
    CHECK(capture_end(NULL, NULL) == 0);
    CHECK(count_lock_files() == 0);
    use_cache(NULL);
}

/* Another process holds the file's lock: the store returns after the timeout with one warning and the
 * file unchanged, later stores do not wait again; after a reset (lock released) writing resumes. */
static void test_lock_timeout(void) {
    char path[96];
    path_in_dir(path, sizeof path, "locked.tune");
    use_cache(path);
    CHECK(lc_tune_store("a", "m", 1.0) == LC_OK);
    file_state before;
    take_state(path, &before);
    const int hfd = open(path, O_RDONLY);
    CHECK(hfd >= 0 && flock(hfd, LOCK_EX) == 0); /* another open file description: conflicts like a process */
    lc_tune_set_lock_timeout_ms(300);
    capture_begin();
    double t0 = lc_tune_now_ms();
    CHECK(lc_tune_store("b", "m", 2.0) == LC_OK);
    const double waited = lc_tune_now_ms() - t0;
    t0 = lc_tune_now_ms();
    CHECK(lc_tune_store("c", "m", 3.0) == LC_OK);
    const double again = lc_tune_now_ms() - t0;
    int named = 0;
    CHECK(capture_end(path, &named) == 1 && named);
    if (!(waited >= 290.0 && waited < 5000.0 && again < 250.0))
        fprintf(stderr, "  lock timeout: first store %.1f ms, second %.1f ms\n", waited, again);
    CHECK(waited >= 290.0 && waited < 5000.0);
    CHECK(again < 250.0);
    CHECK(lc_tune_entry_count() == 3 && same_state(path, &before));
    flock(hfd, LOCK_UN);
    close(hfd);
    lc_tune_set_lock_timeout_ms(0);
    use_cache(path);
    CHECK(lc_tune_store("d", "m", 4.0) == LC_OK);
    use_cache(path);
    CHECK(lc_tune_entry_count() == 2 && lc_tune_lookup("a", NULL, 0, NULL) && lc_tune_lookup("d", NULL, 0, NULL));
    CHECK(count_lock_files() == 0);
    use_cache(NULL);
}

/* ---- main ----------------------------------------------------------------------------------------- */

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lc_test_tune.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("LC_AUTOTUNE");
    unsetenv("CJ_MATMUL_TUNE_CACHE_FILE");
    test_round_trip();
    test_bad_arguments();
    test_damaged_files();
    test_concurrent_writers();
    test_flags();
    test_not_ours(); /* before any matmul has started the thread pool: it forks */
    test_ours_rewritten();
    test_lock_timeout();
    test_matmul_autotune();
    remove_tree(g_dir);
    printf("test_tune: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
