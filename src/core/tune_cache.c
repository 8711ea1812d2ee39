/* tune_cache.c — the autotuner's table (key -> mode, measured ms), its versioned cache file, the
 * autotune flag and the CPU/GPU crossover thresholds (include/lightning_core/tune.h,
 * src/core/tune_cache.h).
 *
 * Table: a key-sorted array behind one mutex (lookups are a binary search; entries are few and
 * stores rare). Loaded lazily at first use from LC_TUNE_CACHE_FILE (alias CJ_MATMUL_TUNE_CACHE_FILE).
 *
 * File format (text, version 1):
 *     lightning_core-tune v1
 *     <key>\t<mode>\t<ms>          one line per entry, keys in strictly increasing byte order
 *     end\t<entries>\t<crc32>      crc32 (zlib's, 8 lower-case hex digits) of every byte before this line
 * The end line must be the last line: a file cut anywhere lacks it or fails its checksum. Any defect
 * rejects the whole file (never half a table).
 *
 * Ours or not: only a file whose first line is "lightning_core-tune v1" (damaged or not), an empty
 * file, or no file at all is ever written. Anything else is not ours and is left untouched (never
 * opened for writing, locked or replaced; the process keeps its table in memory): a file without that
 * header line, another format version, one larger than 64 MiB, a symbolic link (we would replace the
 * link, not its target), a directory, FIFO, socket or device, a file that cannot be read. The path is
 * lstat'ed before it is opened (a FIFO or device is never opened) and opened O_NONBLOCK | O_NOFOLLOW,
 * then fstat'ed, so nothing ever waits on a foreign file. The file is read without the tune mutex held.
 *
 * Writes (every lc_tune_store with a file in use): open the file itself (an absent one is created
 * empty, O_EXCL) and flock(LOCK_EX) it, polling LOCK_NB for at most 10 s without progress (after that:
 * one warning and this process stops writing the file); when the path no longer names the file waited
 * on or locked (another writer renamed its new file over it), start over with the new one. Under the
 * lock: re-read it (it must still be ours) and merge its entries (ours win on equal keys, theirs are
 * adopted into memory too), write "<file>.tmp.<pid>.<n>" in the same directory, fsync, rename over the
 * file, fsync the directory. No lock file exists; an empty file created by a write that failed is
 * removed again. Readers need no lock: rename is atomic, so they see the old or the new file, never a
 * mix.
 *
 * Warnings: one "lightning_core: warning: ..." line on stderr per path (or environment variable) and
 * process, whatever goes wrong with it later.
 * Tests: tests/c/test_tune.c (round trip, corruption cases, files not ours, lock timeout, concurrent
 * writers), tests/python/test_tuning.py. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/tune_cache.h"

#define LC_TUNE_MAGIC "lightning_core-tune v"
#define LC_TUNE_VERSION "1"
#define LC_TUNE_FILE_MAX ((size_t)64 << 20) /* a larger file is not ours */
#define LC_TUNE_PATH_MAX 4000
#define LC_TUNE_LOCK_TIMEOUT_MS 10000u /* longest wait for another writer's lock */

/* Compiled-in crossovers for device "auto" with host operands (one-shot calls: upload + run +
 * download on the GPU against the CPU kernel), set from benchmarks/python/crossover_sweep.py on the
 * H200 machine (16 host cores, 2026-11-27; docs/benchmarks.md "Crossover sweep"): the GPU wins every
 * conv2d 3x3 row from 3.0e8 MACs up and every square matmul row from 2.7e8 flops (512^3) up; below,
 * rows are mixed within +-20% or the CPU wins by up to 25x. Override with the environment variables. */
#define LC_CONV2D_CPU_CROSSOVER_MACS_DEFAULT 3.0e8
#define LC_MATMUL_CPU_CROSSOVER_FLOPS_DEFAULT 2.5e8

typedef struct lc_tune_table {
    lc_tune_entry *v;
    size_t n, cap;
} lc_tune_table;

/* Interned names (cache paths, environment variables): never freed, so lc_tune_cache_path() stays
 * valid, and each remembers whether it has been warned about. */
typedef struct lc_tune_name {
    struct lc_tune_name *next;
    int warned;
    char text[];
} lc_tune_name;

static struct {
    pthread_mutex_t mu;
    int loaded;
    unsigned resets;  /* lc_tune_reset() calls: a load that saw another count is discarded */
    const char *path; /* interned; NULL: memory only */
    int persist;      /* the file may be written (0: not ours, or its lock timed out) */
    lc_tune_table table;
    int xover_read;
    double conv_macs, matmul_flops;
} lc_tune = {.mu = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t lc_tune_names_mu = PTHREAD_MUTEX_INITIALIZER;
static lc_tune_name *lc_tune_names;
static atomic_uint lc_tune_gen;
static atomic_uint lc_tune_warnings;
static atomic_uint lc_tune_tmp_seq;
static atomic_uint lc_tune_lock_timeout_ms = LC_TUNE_LOCK_TIMEOUT_MS;
static atomic_int lc_autotune_state = -1;

/* ---- small helpers ---------------------------------------------------------------------------- */

double lc_tune_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

unsigned lc_tune_generation(void) { return atomic_load(&lc_tune_gen); }

unsigned lc_tune_warning_count(void) { return atomic_load(&lc_tune_warnings); }

void lc_tune_set_lock_timeout_ms(unsigned ms) {
    atomic_store(&lc_tune_lock_timeout_ms, ms ? ms : LC_TUNE_LOCK_TIMEOUT_MS);
}

/* CRC-32 as zlib computes it (reflected polynomial 0xEDB88320), a nibble at a time. */
static uint32_t lc_crc32(const char *p, size_t n) {
    static const uint32_t t[16] = {0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
                                   0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
                                   0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned char)p[i];
        crc = (crc >> 4) ^ t[crc & 15u];
        crc = (crc >> 4) ^ t[crc & 15u];
    }
    return ~crc;
}

static lc_tune_name *lc_tune_intern(const char *text) {
    pthread_mutex_lock(&lc_tune_names_mu);
    lc_tune_name *e = lc_tune_names;
    while (e && strcmp(e->text, text) != 0) e = e->next;
    if (!e) {
        const size_t len = strlen(text);
        e = malloc(sizeof *e + len + 1);
        if (e) {
            e->warned = 0;
            memcpy(e->text, text, len + 1);
            e->next = lc_tune_names;
            lc_tune_names = e;
        }
    }
    pthread_mutex_unlock(&lc_tune_names_mu);
    return e;
}

/* One warning per subject (a path or a variable name) and process. */
static void lc_tune_warn(const char *subject, const char *fmt, ...) LC_PRINTF(2, 3);
static void lc_tune_warn(const char *subject, const char *fmt, ...) {
    lc_tune_name *e = lc_tune_intern(subject);
    pthread_mutex_lock(&lc_tune_names_mu);
    const int first = e ? !e->warned : 1;
    if (e) e->warned = 1;
    pthread_mutex_unlock(&lc_tune_names_mu);
    if (!first) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "lightning_core: warning: %s\n", msg);
    fflush(stderr);
    atomic_fetch_add(&lc_tune_warnings, 1);
}

/* Printable ASCII, no tab; 1..max-1 bytes. */
static int lc_tune_text_ok(const char *s, size_t max) {
    size_t n = 0;
    if (!s) return 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e || n + 1 >= max) return 0;
    return n > 0;
}

/* ---- the table -------------------------------------------------------------------------------- */

/* Index of key, or (when absent) -(insertion point) - 1. */
static long lc_table_find(const lc_tune_table *t, const char *key) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(t->v[mid].key, key);
        if (c == 0) return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Inserts or (replace) overwrites; returns 0, or -1 on allocation failure, or 1 when the key was there
 * and replace is 0. */
static int lc_table_put(lc_tune_table *t, const char *key, const char *mode, double ms, int replace) {
    long at = lc_table_find(t, key);
    if (at >= 0) {
        if (!replace) return 1;
        lc_tune_entry *e = &t->v[at];
        snprintf(e->mode, sizeof e->mode, "%s", mode);
        e->ms = ms;
        return 0;
    }
    const size_t pos = (size_t)(-at - 1);
    if (t->n == t->cap) {
        const size_t cap = t->cap ? 2 * t->cap : 32;
        lc_tune_entry *v = realloc(t->v, cap * sizeof *v);
        if (!v) return -1;
        t->v = v;
        t->cap = cap;
    }
    memmove(&t->v[pos + 1], &t->v[pos], (t->n - pos) * sizeof *t->v);
    lc_tune_entry *e = &t->v[pos];
    snprintf(e->key, sizeof e->key, "%s", key);
    snprintf(e->mode, sizeof e->mode, "%s", mode);
    e->ms = ms;
    t->n++;
    return 0;
}

static void lc_table_free(lc_tune_table *t) {
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

/* ---- reading and writing the file ------------------------------------------------------------- */

/* OK: ours and whole (an empty file is an empty table); MISSING: no file (yet); DAMAGED: ours (its
 * first line is the v1 header) but corrupt or truncated, replaced by the next store; NOT_OURS:
 * anything else (not a regular file, a symbolic link, too large, no v1 header line, another format
 * version, cannot be examined, opened or read): never written, locked or replaced. */
typedef enum { LC_TF_OK, LC_TF_MISSING, LC_TF_DAMAGED, LC_TF_NOT_OURS } lc_tf_result;

/* Parses a whole file image into `out` (which must be empty); on failure `why` says what is wrong and
 * `out` is emptied again. */
static lc_tf_result lc_tune_parse(const char *buf, size_t size, lc_tune_table *out, char *why, size_t why_size) {
    if (size == 0) return LC_TF_OK; /* made by touch, or a writer's placeholder: nothing to lose */
    const char *end = buf + size;
    const char *nl = memchr(buf, '\n', size);
    const size_t first = (size_t)((nl ? nl : end) - buf);
    const size_t magic_len = sizeof LC_TUNE_MAGIC - 1, header_len = magic_len + sizeof LC_TUNE_VERSION - 1;
    if (!(first == header_len && memcmp(buf, LC_TUNE_MAGIC LC_TUNE_VERSION, header_len) == 0)) {
        int printable =
            nl && first > magic_len && first - magic_len <= 16 && memcmp(buf, LC_TUNE_MAGIC, magic_len) == 0;
        for (size_t i = magic_len; printable && i < first; i++) printable = buf[i] > 0x20 && buf[i] < 0x7f;
        if (printable)
            snprintf(why, why_size, "written in format v%.*s, this build reads v" LC_TUNE_VERSION,
                     (int)(first - magic_len), buf + magic_len);
        else
            snprintf(why, why_size,
                     "not a lightning_core tune cache (no \"" LC_TUNE_MAGIC LC_TUNE_VERSION "\" header line)");
        return LC_TF_NOT_OURS;
    }
    if (!nl) {
        snprintf(why, why_size, "truncated (header line incomplete)");
        return LC_TF_DAMAGED;
    }
    if (memchr(buf, '\0', size)) {
        snprintf(why, why_size, "corrupt (NUL bytes)");
        return LC_TF_DAMAGED;
    }
    const char *p = nl + 1;
    size_t line_no = 1;
    while (p < end) {
        line_no++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) {
            snprintf(why, why_size, "truncated (line %zu incomplete)", line_no);
            goto bad;
        }
        const size_t len = (size_t)(eol - p);
        if (len >= 4 && memcmp(p, "end\t", 4) == 0) {
            char line[64];
            unsigned long long count = 0;
            unsigned crc = 0;
            int used = -1;
            if (len < sizeof line) {
                memcpy(line, p, len);
                line[len] = '\0';
                if (sscanf(line, "end\t%llu\t%8x%n", &count, &crc, &used) != 2) used = -1;
            }
            if (used != (int)len || len < 4 + 2 + 8) {
                snprintf(why, why_size, "corrupt (bad end line %zu)", line_no);
                goto bad;
            }
            if (eol + 1 != end) {
                snprintf(why, why_size, "corrupt (data after the end line)");
                goto bad;
            }
            if (count != out->n) {
                snprintf(why, why_size, "corrupt (end line counts %llu entries, found %zu)", count, out->n);
                goto bad;
            }
            if (lc_crc32(buf, (size_t)(p - buf)) != (uint32_t)crc) {
                snprintf(why, why_size, "corrupt (checksum mismatch)");
                goto bad;
            }
            return LC_TF_OK;
        }
        /* key \t mode \t ms */
        const char *t1 = memchr(p, '\t', len);
        const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(eol - t1 - 1)) : NULL;
        char key[LC_TUNE_KEY_MAX], mode[LC_TUNE_MODE_MAX], num[48];
        const size_t klen = t1 ? (size_t)(t1 - p) : 0, mlen = t2 ? (size_t)(t2 - t1 - 1) : 0;
        const size_t nlen = t2 ? (size_t)(eol - t2 - 1) : 0;
        if (!t2 || klen >= sizeof key || mlen >= sizeof mode || nlen == 0 || nlen >= sizeof num) {
            snprintf(why, why_size, "corrupt (malformed line %zu)", line_no);
            goto bad;
        }
        memcpy(key, p, klen);
        key[klen] = '\0';
        memcpy(mode, t1 + 1, mlen);
        mode[mlen] = '\0';
        memcpy(num, t2 + 1, nlen);
        num[nlen] = '\0';
        char *num_end = NULL;
        const double ms = strtod(num, &num_end);
        if (!lc_tune_text_ok(key, sizeof key) || !lc_tune_text_ok(mode, sizeof mode) || *num_end != '\0' ||
            !isfinite(ms) || ms < 0.0) {
            snprintf(why, why_size, "corrupt (malformed line %zu)", line_no);
            goto bad;
        }
        const int put = lc_table_put(out, key, mode, ms, 0);
        if (put != 0) {
            snprintf(why, why_size, put < 0 ? "out of memory while reading" : "corrupt (key repeated at line %zu)",
                     line_no);
            goto bad;
        }
        p = eol + 1;
    }
    snprintf(why, why_size, "truncated (no end line)");
bad:
    lc_table_free(out);
    return LC_TF_DAMAGED;
}

/* 1 when a file with status `sb` may be ours by its type and size, else 0 with `why`. */
static int lc_tune_stat_ok(const struct stat *sb, char *why, size_t why_size) {
    const mode_t m = sb->st_mode;
    if (S_ISREG(m) && (uint64_t)sb->st_size <= LC_TUNE_FILE_MAX) return 1;
    if (S_ISREG(m))
        snprintf(why, why_size, "too large (%lld bytes) to be a tune cache", (long long)sb->st_size);
    else
        snprintf(why, why_size, "%s, not a regular file",
                 S_ISLNK(m)    ? "a symbolic link (name the file itself)"
                 : S_ISDIR(m)  ? "a directory"
                 : S_ISFIFO(m) ? "a FIFO"
                 : S_ISSOCK(m) ? "a socket"
                 : S_ISCHR(m)  ? "a character device"
                 : S_ISBLK(m)  ? "a block device"
                               : "of an unknown type");
    return 0;
}

/* Opens `path` read-only without ever blocking or following a final symbolic link, and only when it is
 * a regular file of at most LC_TUNE_FILE_MAX bytes: lstat first (a FIFO or a device is never opened at
 * all), O_NONBLOCK | O_NOFOLLOW, fstat after (the path may have changed in between). Returns the
 * descriptor with *sb filled in, or -1 with *r = MISSING or NOT_OURS (and `why`). */
static int lc_tune_open(const char *path, struct stat *sb, lc_tf_result *r, char *why, size_t why_size) {
    *r = LC_TF_NOT_OURS;
    if (lstat(path, sb) != 0) {
        const int e = errno;
        if (e == ENOENT) *r = LC_TF_MISSING;
        snprintf(why, why_size, "cannot be examined (%s)", strerror(e));
        return -1;
    }
    if (!lc_tune_stat_ok(sb, why, why_size)) return -1;
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        if (e == ENOENT) *r = LC_TF_MISSING;
        if (e == ELOOP)
            snprintf(why, why_size, "a symbolic link (name the file itself), not a regular file");
        else
            snprintf(why, why_size, "cannot be read (%s)", strerror(e));
        return -1;
    }
    if (fstat(fd, sb) != 0) {
        snprintf(why, why_size, "cannot be read (%s)", strerror(errno));
        close(fd);
        return -1;
    }
    if (!lc_tune_stat_ok(sb, why, why_size)) {
        close(fd);
        return -1;
    }
    const int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK); /* a regular file: plain reads from here */
    return fd;
}

/* Reads and parses the whole regular file open on `fd` (its size as fstat says now). */
static lc_tf_result lc_tune_read_fd(int fd, lc_tune_table *out, char *why, size_t why_size) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(why, why_size, "cannot be read (%s)", strerror(errno));
        return LC_TF_NOT_OURS;
    }
    if (!lc_tune_stat_ok(&sb, why, why_size)) return LC_TF_NOT_OURS;
    const size_t want = (size_t)sb.st_size;
    char *buf = malloc(want + 1);
    if (!buf) {
        snprintf(why, why_size, "out of memory while reading");
        return LC_TF_NOT_OURS;
    }
    size_t got = 0;
    while (got < want) {
        const ssize_t k = pread(fd, buf + got, want - got, (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            snprintf(why, why_size, "cannot be read (%s)", strerror(errno));
            free(buf);
            return LC_TF_NOT_OURS;
        }
        if (k == 0) break; /* shrank meanwhile: parsed as truncated */
        got += (size_t)k;
    }
    const lc_tf_result r = lc_tune_parse(buf, got, out, why, why_size);
    free(buf);
    return r;
}

static lc_tf_result lc_tune_read_path(const char *path, lc_tune_table *out, char *why, size_t why_size) {
    struct stat sb;
    lc_tf_result r;
    const int fd = lc_tune_open(path, &sb, &r, why, why_size);
    if (fd < 0) return r;
    r = lc_tune_read_fd(fd, out, why, why_size);
    close(fd);
    return r;
}

/* The file image of a table. NULL on allocation failure. */
static char *lc_tune_format(const lc_tune_table *t, size_t *size) {
    size_t cap = sizeof LC_TUNE_MAGIC + 8 + 64 + t->n * (LC_TUNE_KEY_MAX + LC_TUNE_MODE_MAX + 40);
    char *buf = malloc(cap);
    if (!buf) return NULL;
    size_t n = (size_t)snprintf(buf, cap, LC_TUNE_MAGIC LC_TUNE_VERSION "\n");
    for (size_t i = 0; i < t->n; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s\t%s\t%.9g\n", t->v[i].key, t->v[i].mode, t->v[i].ms);
    const uint32_t crc = lc_crc32(buf, n);
    n += (size_t)snprintf(buf + n, cap - n, "end\t%zu\t%08x\n", t->n, (unsigned)crc);
    *size = n;
    return buf;
}

static int lc_write_all(int fd, const char *p, size_t n) {
    while (n) {
        const ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync of the directory holding path (makes the rename durable); best effort. */
static void lc_fsync_dir(const char *path) {
    char dir[LC_TUNE_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* 1 when `path` names the file with status `sb` (same device and inode). */
static int lc_same_file(const char *path, const struct stat *sb) {
    struct stat now;
    return lstat(path, &now) == 0 && now.st_dev == sb->st_dev && now.st_ino == sb->st_ino;
}

/* flock(LOCK_EX) on *fd (the file with status `sb`), polling LOCK_NB (pauses from 0.5 to 8 ms) for at
 * most the lock timeout. 0: locked; 2: the path names another file now (a writer renamed its own over
 * it: start over with that one, which is progress, not a wait); 1: timed out; -1: flock failed (`why`).
 * Where an exclusive lock needs a descriptor open for writing (NFS answers EBADF), the same file is
 * opened read-write once instead. */
static int lc_tune_lock(int *fd, const struct stat *sb, const char *path, char *why, size_t why_size) {
    const double deadline = lc_tune_now_ms() + (double)atomic_load(&lc_tune_lock_timeout_ms);
    long pause_ns = 500000;
    int reopened = 0;
    for (;;) {
        if (flock(*fd, LOCK_EX | LOCK_NB) == 0) return 0;
        const int e = errno;
        if (e == EINTR) continue;
        if (e == EBADF && !reopened) {
            reopened = 1;
            const int w = open(path, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
            struct stat a;
            if (w >= 0 && fstat(w, &a) == 0 && a.st_dev == sb->st_dev && a.st_ino == sb->st_ino) {
                close(*fd);
                *fd = w;
                continue;
            }
            if (w >= 0) close(w);
        }
        if (e != EWOULDBLOCK) {
            snprintf(why, why_size, "flock: %s", strerror(e));
            return -1;
        }
        if (!lc_same_file(path, sb)) return 2;
        if (lc_tune_now_ms() >= deadline) return 1;
        const struct timespec ts = {0, pause_ns};
        nanosleep(&ts, NULL);
        if (pause_ns < 8000000) pause_ns *= 2;
    }
}

/* The file at `path` is not ours: one warning, and this process stops writing it. */
static void lc_tune_not_ours(const char *path, const char *why) {
    lc_tune_warn(path, "tune cache file %s left untouched: %s; tuning results stay in memory", path, why);
    pthread_mutex_lock(&lc_tune.mu);
    if (lc_tune.path == path) lc_tune.persist = 0;
    pthread_mutex_unlock(&lc_tune.mu);
}

/* Merges the table into the file (see the header comment). `gen` is the generation the caller stored
 * under: after a reset in between, nothing is written. */
static void lc_tune_persist(const char *path, unsigned gen) {
    char why[256], tmp_path[LC_TUNE_PATH_MAX + 64];
    struct stat sb, now;
    lc_tf_result r = LC_TF_MISSING;
    int fd = -1, created = 0, written = 0;
    /* 1. open the file (creating an empty one when there is none) and lock it; when the path names
     *    another file by then (a writer renamed its own over it), again with that one */
    for (int attempt = 0;; attempt++) {
        if (attempt == 10000) {
            lc_tune_warn(path, "tune cache file %s keeps being replaced; tuning results stay in memory", path);
            return;
        }
        created = 0;
        fd = lc_tune_open(path, &sb, &r, why, sizeof why);
        if (fd < 0 && r == LC_TF_MISSING) {
            fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666);
            if (fd < 0 && errno == EEXIST) continue;
            if (fd < 0 || fstat(fd, &sb) != 0) {
                lc_tune_warn(path, "tune cache file %s cannot be created (%s); tuning results stay in memory", path,
                             strerror(errno));
                if (fd >= 0) close(fd);
                return;
            }
            created = 1;
        } else if (fd < 0) {
            lc_tune_not_ours(path, why);
            return;
        }
        const int locked = lc_tune_lock(&fd, &sb, path, why, sizeof why);
        if (locked == 2) {
            close(fd);
            continue;
        }
        if (locked != 0) {
            if (locked > 0) {
                lc_tune_warn(path, "tune cache file %s stayed locked by another process for %u ms; this process stops "
                             "writing it, tuning results stay in memory", path, atomic_load(&lc_tune_lock_timeout_ms));
                pthread_mutex_lock(&lc_tune.mu);
                if (lc_tune.path == path) lc_tune.persist = 0;
                pthread_mutex_unlock(&lc_tune.mu);
            } else {
                lc_tune_warn(path, "tune cache file %s cannot be locked (%s); tuning results stay in memory", path,
                             why);
            }
            close(fd);
            return;
        }
        if (lc_same_file(path, &sb)) break;
        close(fd); /* releases the lock */
    }

    /* 2. under the lock: what is there now must still be ours; merge it */
    lc_tune_table theirs = {0}, snapshot = {0};
    char *image = NULL;
    r = lc_tune_read_fd(fd, &theirs, why, sizeof why);
    if (r == LC_TF_NOT_OURS) {
        lc_tune_not_ours(path, why);
        goto out;
    }
    if (r == LC_TF_DAMAGED) lc_tune_warn(path, "tune cache file %s ignored: %s; it will be rewritten", path, why);

    int oom = 0;
    pthread_mutex_lock(&lc_tune.mu);
    const int current = lc_tune.path == path && atomic_load(&lc_tune_gen) == gen;
    if (current) {
        for (size_t i = 0; i < theirs.n && !oom; i++)
            oom = lc_table_put(&lc_tune.table, theirs.v[i].key, theirs.v[i].mode, theirs.v[i].ms, 0) < 0;
        snapshot.v = malloc((lc_tune.table.n ? lc_tune.table.n : 1) * sizeof *snapshot.v);
        if (snapshot.v) {
            memcpy(snapshot.v, lc_tune.table.v, lc_tune.table.n * sizeof *snapshot.v);
            snapshot.n = snapshot.cap = lc_tune.table.n;
        } else {
            oom = 1;
        }
    }
    pthread_mutex_unlock(&lc_tune.mu);
    if (!current) goto out;

    /* 3. write a temporary file, fsync, rename it over the file, fsync the directory */
    size_t size = 0;
    if (oom || !(image = lc_tune_format(&snapshot, &size))) {
        lc_tune_warn(path, "tune cache file %s not written: out of memory", path);
        goto out;
    }
    if (size > LC_TUNE_FILE_MAX) { /* it would not be read back as ours */
        lc_tune_warn(path,
                     "tune cache file %s not written: %zu entries exceed %zu bytes; tuning results stay in memory",
                     path, snapshot.n, LC_TUNE_FILE_MAX);
        goto out;
    }
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&lc_tune_tmp_seq, 1));
    const int tfd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0666);
    if (tfd < 0) {
        lc_tune_warn(path, "tune cache file %s cannot be written (%s); tuning results stay in memory", path,
                     strerror(errno));
        goto out;
    }
    int err = 0;
    errno = 0;
    if (lc_write_all(tfd, image, size) != 0 || fsync(tfd) != 0) err = errno ? errno : EIO;
    if (close(tfd) != 0 && !err) err = errno ? errno : EIO;
    if (!err && rename(tmp_path, path) != 0) err = errno ? errno : EIO;
    if (err) {
        lc_tune_warn(path, "tune cache file %s cannot be written (%s); tuning results stay in memory", path,
                     strerror(err));
        unlink(tmp_path);
        goto out;
    }
    written = 1;
    lc_fsync_dir(path);
out:
    /* an empty file this call created and did not replace goes again (waiting writers then start over) */
    if (created && !written && lstat(path, &now) == 0 && now.st_dev == sb.st_dev && now.st_ino == sb.st_ino &&
        now.st_size == 0)
        unlink(path); /* (under our lock: a writer waiting on it sees the path change and starts over) */
    free(image);
    lc_table_free(&theirs);
    lc_table_free(&snapshot);
    close(fd); /* releases the lock */
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* Loads the table from LC_TUNE_CACHE_FILE at first use. The file is read without the mutex held (a slow
 * disk never stalls other threads' lookups); a reset meanwhile discards what was read, and entries
 * stored meanwhile win over the file's. */
static void lc_tune_ensure_loaded(void) {
    for (int attempt = 0; attempt < 4; attempt++) {
        pthread_mutex_lock(&lc_tune.mu);
        const int loaded = lc_tune.loaded;
        const unsigned resets = lc_tune.resets;
        pthread_mutex_unlock(&lc_tune.mu);
        if (loaded) return;

        const char *path = NULL;
        int persist = 1;
        lc_tune_table file = {0};
        const char *env = getenv("LC_TUNE_CACHE_FILE");
        if (!env) env = getenv("CJ_MATMUL_TUNE_CACHE_FILE");
        if (env && *env && strlen(env) >= LC_TUNE_PATH_MAX) {
            lc_tune_warn("LC_TUNE_CACHE_FILE", "tune cache path is longer than %d bytes; tuning results stay in memory",
                         LC_TUNE_PATH_MAX);
        } else if (env && *env) {
            lc_tune_name *name = lc_tune_intern(env);
            path = name ? name->text : NULL; /* out of memory: in-memory table */
            char why[256];
            switch (path ? lc_tune_read_path(path, &file, why, sizeof why) : LC_TF_MISSING) {
            case LC_TF_OK:
            case LC_TF_MISSING: break;
            case LC_TF_NOT_OURS:
                persist = 0;
                lc_tune_warn(path, "tune cache file %s left untouched: %s; tuning results stay in memory", path, why);
                break;
            case LC_TF_DAMAGED:
                lc_tune_warn(path, "tune cache file %s ignored: %s; it will be rewritten", path, why);
                break;
            }
        }

        pthread_mutex_lock(&lc_tune.mu);
        if (!lc_tune.loaded && lc_tune.resets == resets) {
            lc_tune.loaded = 1;
            lc_tune.path = path;
            lc_tune.persist = persist;
            if (lc_tune.table.n == 0) {
                lc_table_free(&lc_tune.table);
                lc_tune.table = file;
                file = (lc_tune_table){0};
            } else {
                for (size_t i = 0; i < file.n; i++)
                    (void)lc_table_put(&lc_tune.table, file.v[i].key, file.v[i].mode, file.v[i].ms, 0);
            }
        }
        const int done = lc_tune.loaded;
        pthread_mutex_unlock(&lc_tune.mu);
        lc_table_free(&file);
        if (done) return;
    }
}

/* ---- the API ---------------------------------------------------------------------------------- */

int lc_tune_lookup(const char *key, char *mode, size_t mode_size, double *ms) {
    if (!key) return 0;
    lc_tune_ensure_loaded();
    pthread_mutex_lock(&lc_tune.mu);
    const long at = lc_table_find(&lc_tune.table, key);
    if (at >= 0) {
        if (mode && mode_size) snprintf(mode, mode_size, "%s", lc_tune.table.v[at].mode);
        if (ms) *ms = lc_tune.table.v[at].ms;
    }
    pthread_mutex_unlock(&lc_tune.mu);
    return at >= 0;
}

lc_status lc_tune_store(const char *key, const char *mode, double ms) {
    if (!lc_tune_text_ok(key, LC_TUNE_KEY_MAX) || strcmp(key, "end") == 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "tune: key: expected 1..%d printable ASCII characters (no tab, not \"end\"), got %s%.40s%s",
                        LC_TUNE_KEY_MAX - 1, key ? "\"" : "", key ? key : "NULL", key ? "\"" : "");
    if (!lc_tune_text_ok(mode, LC_TUNE_MODE_MAX))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "tune: mode: expected 1..%d printable ASCII characters (no tab)",
                        LC_TUNE_MODE_MAX - 1);
    if (!isfinite(ms) || ms < 0.0) return lc_error(LC_ERR_INVALID_ARGUMENT, "tune: ms: expected a finite value >= 0, got %g", ms);
    lc_tune_ensure_loaded();
    pthread_mutex_lock(&lc_tune.mu);
    const int put = lc_table_put(&lc_tune.table, key, mode, ms, 1);
    const char *path = lc_tune.loaded && lc_tune.persist ? lc_tune.path : NULL;
    const unsigned gen = atomic_load(&lc_tune_gen);
    pthread_mutex_unlock(&lc_tune.mu);
    if (put < 0) return lc_error(LC_ERR_OUT_OF_MEMORY, "tune: out of memory storing an entry");
    if (path) lc_tune_persist(path, gen);
    return LC_OK;
}

void lc_tune_reset(void) {
    pthread_mutex_lock(&lc_tune.mu);
    lc_table_free(&lc_tune.table);
    lc_tune.loaded = 0;
    lc_tune.resets++;
    lc_tune.path = NULL;
    lc_tune.persist = 1;
    lc_tune.xover_read = 0;
    atomic_fetch_add(&lc_tune_gen, 1);
    pthread_mutex_unlock(&lc_tune.mu);
}

int lc_get_autotune(void) {
    int s = atomic_load(&lc_autotune_state);
    if (s < 0) {
        const char *env = getenv("LC_AUTOTUNE");
        s = !(env && (strcmp(env, "0") == 0 || strcmp(env, "off") == 0 || strcmp(env, "false") == 0));
        int expected = -1;
        if (!atomic_compare_exchange_strong(&lc_autotune_state, &expected, s)) s = expected;
    }
    return s;
}

void lc_set_autotune(int on) {
    const int prev = atomic_exchange(&lc_autotune_state, on ? 1 : 0);
    if (prev != (on ? 1 : 0)) atomic_fetch_add(&lc_tune_gen, 1);
}

const char *lc_tune_cache_path(void) {
    lc_tune_ensure_loaded();
    pthread_mutex_lock(&lc_tune.mu);
    const char *p = lc_tune.path;
    pthread_mutex_unlock(&lc_tune.mu);
    return p;
}

size_t lc_tune_entry_count(void) {
    lc_tune_ensure_loaded();
    pthread_mutex_lock(&lc_tune.mu);
    const size_t n = lc_tune.table.n;
    pthread_mutex_unlock(&lc_tune.mu);
    return n;
}

size_t lc_tune_entries(lc_tune_entry *out, size_t max) {
    lc_tune_ensure_loaded();
    pthread_mutex_lock(&lc_tune.mu);
    size_t n = lc_tune.table.n < max ? lc_tune.table.n : max;
    if (out && n) memcpy(out, lc_tune.table.v, n * sizeof *out);
    if (!out) n = 0;
    pthread_mutex_unlock(&lc_tune.mu);
    return n;
}

/* ---- crossover thresholds --------------------------------------------------------------------- */

/* A threshold from `name` (else `alias`), else the default; a value that does not parse as a finite
 * number is ignored with a warning. */
static double lc_env_threshold(const char *name, const char *alias, double fallback) {
    const char *used = name, *text = getenv(name);
    if (!text && alias) {
        used = alias;
        text = getenv(alias);
    }
    if (!text || !*text) return fallback;
    char *end = NULL;
    const double v = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(v)) {
        lc_tune_warn(used, "%s=%.40s is not a number; using the default %g", used, text, fallback);
        return fallback;
    }
    return v;
}

static void lc_xover_read_locked(void) {
    if (lc_tune.xover_read) return;
    lc_tune.conv_macs = lc_env_threshold("LC_CONV2D_CPU_CROSSOVER_MACS", "CJ_CONV2D_CPU_CROSSOVER_MACS",
                                         LC_CONV2D_CPU_CROSSOVER_MACS_DEFAULT);
    lc_tune.matmul_flops = lc_env_threshold("LC_MATMUL_CPU_CROSSOVER_FLOPS", NULL, LC_MATMUL_CPU_CROSSOVER_FLOPS_DEFAULT);
    lc_tune.xover_read = 1;
}

double lc_conv2d_cpu_crossover_macs(void) {
    pthread_mutex_lock(&lc_tune.mu);
    lc_xover_read_locked();
    const double v = lc_tune.conv_macs;
    pthread_mutex_unlock(&lc_tune.mu);
    return v;
}

double lc_matmul_cpu_crossover_flops(void) {
    pthread_mutex_lock(&lc_tune.mu);
    lc_xover_read_locked();
    const double v = lc_tune.matmul_flops;
    pthread_mutex_unlock(&lc_tune.mu);
    return v;
}
