/* test_kv_cache_api.c — the public KV-cache C API (ops.h: lc_kv_cache_*) on the CPU and, where a GPU is
 * usable, on CUDA: lc_kv_cache_append_attention (the append fused into the attention call) against
 * lc_kv_cache_append + lc_kv_cache_attention on a twin cache, bit for bit (float32; bfloat16 too, whose CUDA
 * decode takes the fused tensor-core path), over several decode steps after a prefill; the lengths after
 * each step. Refused calls return their status with a message naming the argument and append nothing: a NULL
 * cache, k_new of the wrong shape or dtype, too many tokens, an out of the wrong shape.
 * lc_kv_cache_append_attention_rope against lc_rope on q and k_new, then lc_kv_cache_append_attention, bit for
 * bit (head_dim 16: the rope op first on every device here; the fused CUDA kernel's own tests are
 * tests/python/test_kv_cache_rope.py); its refusals (positions NULL, of the wrong shape or dtype, a bad
 * rotary_dim, q's tokens not k_new's) append nothing.
 * (Values against the float64 reference: tests/python/test_kv_cache_fused.py.) Prints "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lightning_core/dtype.h"
#include "lightning_core/ops.h"
#include "lightning_core/runtime.h"
#include "lightning_core/status.h"
#include "lightning_core/tensor.h"
#include "check.h"

enum { B = 2, HKV = 2, H = 4, D = 16, MAXS = 12, PRE = 5 };

static unsigned g_seed = 12345u;
static float frand(void) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((g_seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* A [b, h, t, D] tensor of random values in dtype dt on device dev. */
static lc_tensor_t *rand_tensor(lc_dtype dt, lc_device dev, int64_t h, int64_t t) {
    const int64_t shape[4] = {B, h, t, D};
    const size_t n = (size_t)(B * h * t * D);
    float *f = malloc(n * sizeof(float));
    void *raw = malloc(n * 4);
    for (size_t i = 0; i < n; i++) f[i] = frand();
    lc_tensor_t *out = NULL;
    if (lc_convert(dt, raw, LC_DTYPE_F32, f, n) == LC_OK)
        (void)lc_tensor_from_host(raw, n * lc_dtype_size(dt), dt, dev, 4, shape, &out);
    free(f);
    free(raw);
    return out;
}

static int same_bytes(const lc_tensor_t *a, const lc_tensor_t *b, size_t bytes) {
    unsigned char *x = malloc(bytes), *y = malloc(bytes);
    const int ok = lc_tensor_to_host(a, x, bytes) == LC_OK && lc_tensor_to_host(b, y, bytes) == LC_OK &&
                   memcmp(x, y, bytes) == 0;
    free(x);
    free(y);
    return ok;
}

static int lengths_are(lc_kv_cache_t *c, int64_t want) {
    int64_t L[B];
    if (lc_kv_cache_lengths(c, L) != LC_OK) return 0;
    for (int b = 0; b < B; b++)
        if (L[b] != want) return 0;
    return 1;
}

static void run(lc_device dev, lc_dtype dt) {
    lc_kv_cache_t *fused = NULL, *twin = NULL;
    CHECK(lc_kv_cache_new(B, HKV, MAXS, D, dt, dev, &fused) == LC_OK);
    CHECK(lc_kv_cache_new(B, HKV, MAXS, D, dt, dev, &twin) == LC_OK);
    if (!fused || !twin) return;
    lc_tensor_t *k0 = rand_tensor(dt, dev, HKV, PRE), *v0 = rand_tensor(dt, dev, HKV, PRE);
    CHECK(lc_kv_cache_append(fused, k0, v0) == LC_OK && lc_kv_cache_append(twin, k0, v0) == LC_OK);
    const int64_t oshape[4] = {B, H, 1, D};
    const size_t obytes = (size_t)(B * H * D) * lc_dtype_size(dt);
    for (int step = 0; step < 3; step++) {
        lc_tensor_t *kn = rand_tensor(dt, dev, HKV, 1), *vn = rand_tensor(dt, dev, HKV, 1), *q = rand_tensor(dt, dev, H, 1);
        lc_tensor_t *o1 = NULL, *o2 = NULL;
        CHECK(lc_tensor_new(dt, dev, 4, oshape, &o1) == LC_OK && lc_tensor_new(dt, dev, 4, oshape, &o2) == LC_OK);
        CHECK(lc_kv_cache_append_attention(fused, kn, vn, q, o1, 1, 0.0, 0) == LC_OK);
        CHECK(lc_kv_cache_append(twin, kn, vn) == LC_OK && lc_kv_cache_attention(twin, q, o2, 1, 0.0, 0) == LC_OK);
        CHECK(same_bytes(o1, o2, obytes));
        CHECK(lengths_are(fused, PRE + step + 1) && lengths_are(twin, PRE + step + 1));
        lc_tensor_free(kn), lc_tensor_free(vn), lc_tensor_free(q), lc_tensor_free(o1), lc_tensor_free(o2);
    }
    const int64_t held = PRE + 3;
    /* refused calls: the status, the argument named, nothing appended */
    lc_tensor_t *kn = rand_tensor(dt, dev, HKV, 1), *vn = rand_tensor(dt, dev, HKV, 1), *q = rand_tensor(dt, dev, H, 1);
    lc_tensor_t *bad_k = rand_tensor(dt, dev, HKV + 1, 1), *big_k = rand_tensor(dt, dev, HKV, MAXS - held + 1);
    lc_tensor_t *big_v = rand_tensor(dt, dev, HKV, MAXS - held + 1), *big_q = rand_tensor(dt, dev, H, MAXS - held + 1);
    const lc_dtype other = dt == LC_DTYPE_F32 ? LC_DTYPE_F16 : LC_DTYPE_F32;
    lc_tensor_t *other_k = rand_tensor(other, dev, HKV, 1), *o = NULL, *bad_o = NULL;
    const int64_t bad_oshape[4] = {B, H, 2, D};
    CHECK(lc_tensor_new(dt, dev, 4, oshape, &o) == LC_OK && lc_tensor_new(dt, dev, 4, bad_oshape, &bad_o) == LC_OK);
    CHECK(lc_kv_cache_append_attention(NULL, kn, vn, q, o, 1, 0.0, 0) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lc_kv_cache_append_attention(fused, bad_k, vn, q, o, 1, 0.0, 0) == LC_ERR_SHAPE && strstr(lc_last_error(), "k_new"));
    CHECK(lc_kv_cache_append_attention(fused, other_k, vn, q, o, 1, 0.0, 0) == LC_ERR_DTYPE && strstr(lc_last_error(), "k_new"));
    CHECK(lc_kv_cache_append_attention(fused, big_k, big_v, big_q, NULL, 1, 0.0, 0) != LC_OK);
    lc_tensor_t *big_o = NULL;
    const int64_t big_oshape[4] = {B, H, MAXS - held + 1, D};
    CHECK(lc_tensor_new(dt, dev, 4, big_oshape, &big_o) == LC_OK);
    CHECK(lc_kv_cache_append_attention(fused, big_k, big_v, big_q, big_o, 1, 0.0, 0) == LC_ERR_INVALID_ARGUMENT &&
          strstr(lc_last_error(), "k_new") && strstr(lc_last_error(), "at most 4 more tokens"));
    CHECK(lc_kv_cache_append_attention(fused, kn, vn, q, bad_o, 1, 0.0, 0) != LC_OK && strstr(lc_last_error(), "out"));
    CHECK(lengths_are(fused, held));
    /* still usable, and still the twin's equal */
    CHECK(lc_kv_cache_append_attention(fused, kn, vn, q, o, 1, 0.0, 0) == LC_OK && lengths_are(fused, held + 1));
    lc_tensor_t *o2 = NULL;
    CHECK(lc_tensor_new(dt, dev, 4, oshape, &o2) == LC_OK);
    CHECK(lc_kv_cache_append(twin, kn, vn) == LC_OK && lc_kv_cache_attention(twin, q, o2, 1, 0.0, 0) == LC_OK);
    CHECK(same_bytes(o, o2, obytes));
    lc_tensor_t *all[] = {k0, v0, kn, vn, q, bad_k, big_k, big_v, big_q, other_k, o, bad_o, big_o, o2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lc_tensor_free(all[i]);
    lc_kv_cache_free(fused);
    lc_kv_cache_free(twin);
}

/* Both caches hold the same first `rows` keys of every (b, kv head), bit for bit (past them: never written). */
static int same_keys(lc_kv_cache_t *c1, lc_kv_cache_t *c2, int64_t rows, lc_dtype dt) {
    const size_t es = lc_dtype_size(dt), bytes = (size_t)(B * HKV * MAXS * D) * es, row = (size_t)D * es;
    unsigned char *x = malloc(bytes), *y = malloc(bytes);
    int ok = lc_tensor_to_host(lc_kv_cache_k(c1), x, bytes) == LC_OK && lc_tensor_to_host(lc_kv_cache_k(c2), y, bytes) == LC_OK;
    for (int64_t bg = 0; ok && bg < B * HKV; bg++) ok = memcmp(x + (size_t)bg * MAXS * row, y + (size_t)bg * MAXS * row, (size_t)rows * row) == 0;
    free(x);
    free(y);
    return ok;
}

/* positions [B, t] (int64, value base + b·7 + i) on dev. */
static lc_tensor_t *positions(lc_device dev, int64_t t, int64_t base) {
    int64_t v[B * 4];
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < t; i++) v[b * t + i] = base + b * 7 + i;
    const int64_t shape[2] = {B, t};
    lc_tensor_t *out = NULL;
    (void)lc_tensor_from_host(v, (size_t)(B * t) * sizeof(int64_t), LC_DTYPE_I64, dev, 2, shape, &out);
    return out;
}

static void run_rope(lc_device dev, lc_dtype dt) {
    lc_kv_cache_t *fused = NULL, *twin = NULL;
    CHECK(lc_kv_cache_new(B, HKV, MAXS, D, dt, dev, &fused) == LC_OK);
    CHECK(lc_kv_cache_new(B, HKV, MAXS, D, dt, dev, &twin) == LC_OK);
    if (!fused || !twin) return;
    const int64_t oshape[4] = {B, H, 1, D}, qshape[4] = {B, H, 1, D}, kshape[4] = {B, HKV, 1, D};
    const size_t obytes = (size_t)(B * H * D) * lc_dtype_size(dt);
    lc_rope_options ro;
    memset(&ro, 0, sizeof ro);
    ro.theta = 500000.0;
    for (int step = 0; step < 3; step++) {
        lc_tensor_t *kn = rand_tensor(dt, dev, HKV, 1), *vn = rand_tensor(dt, dev, HKV, 1), *q = rand_tensor(dt, dev, H, 1);
        lc_tensor_t *pos = positions(dev, 1, 3 + step), *o1 = NULL, *o2 = NULL, *rq = NULL, *rk = NULL;
        CHECK(lc_tensor_new(dt, dev, 4, oshape, &o1) == LC_OK && lc_tensor_new(dt, dev, 4, oshape, &o2) == LC_OK);
        CHECK(lc_tensor_new(dt, dev, 4, qshape, &rq) == LC_OK && lc_tensor_new(dt, dev, 4, kshape, &rk) == LC_OK);
        CHECK(lc_kv_cache_append_attention_rope(fused, kn, vn, q, o1, 1, 0.0, 0, pos, &ro) == LC_OK);
        CHECK(lc_rope(q, pos, rq, &ro, dev) == LC_OK && lc_rope(kn, pos, rk, &ro, dev) == LC_OK);
        CHECK(lc_kv_cache_append_attention(twin, rk, vn, rq, o2, 1, 0.0, 0) == LC_OK);
        CHECK(same_bytes(o1, o2, obytes));
        CHECK(same_keys(fused, twin, step + 1, dt)); /* the rotated keys went into the cache */
        CHECK(lengths_are(fused, step + 1) && lengths_are(twin, step + 1));
        lc_tensor_t *all[] = {kn, vn, q, pos, o1, o2, rq, rk};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lc_tensor_free(all[i]);
    }
    /* refused calls: the status, the argument named, nothing appended */
    lc_tensor_t *kn = rand_tensor(dt, dev, HKV, 1), *vn = rand_tensor(dt, dev, HKV, 1), *q = rand_tensor(dt, dev, H, 1);
    lc_tensor_t *q2 = rand_tensor(dt, dev, H, 2), *pos = positions(dev, 1, 0), *pos2 = positions(dev, 2, 0), *o = NULL;
    const int64_t fshape[2] = {B, 1};
    const float fv[B] = {0.0f, 1.0f};
    lc_tensor_t *fpos = NULL;
    CHECK(lc_tensor_from_host(fv, sizeof fv, LC_DTYPE_F32, dev, 2, fshape, &fpos) == LC_OK);
    CHECK(lc_tensor_new(dt, dev, 4, oshape, &o) == LC_OK);
    lc_rope_options odd = ro;
    odd.rotary_dim = 3;
    CHECK(lc_kv_cache_append_attention_rope(fused, kn, vn, q, o, 1, 0.0, 0, NULL, &ro) == LC_ERR_INVALID_ARGUMENT &&
          strstr(lc_last_error(), "positions"));
    CHECK(lc_kv_cache_append_attention_rope(fused, kn, vn, q, o, 1, 0.0, 0, pos2, &ro) == LC_ERR_SHAPE &&
          strstr(lc_last_error(), "positions"));
    CHECK(lc_kv_cache_append_attention_rope(fused, kn, vn, q, o, 1, 0.0, 0, fpos, &ro) == LC_ERR_DTYPE &&
          strstr(lc_last_error(), "positions"));
    CHECK(lc_kv_cache_append_attention_rope(fused, kn, vn, q, o, 1, 0.0, 0, pos, &odd) == LC_ERR_INVALID_ARGUMENT &&
          strstr(lc_last_error(), "rotary_dim"));
    CHECK(lc_kv_cache_append_attention_rope(fused, kn, vn, q2, NULL, 1, 0.0, 0, pos, &ro) == LC_ERR_SHAPE &&
          strstr(lc_last_error(), "q"));
    CHECK(lc_kv_cache_append_attention_rope(NULL, kn, vn, q, o, 1, 0.0, 0, pos, &ro) == LC_ERR_INVALID_ARGUMENT);
    CHECK(lengths_are(fused, 3));
    CHECK(lc_kv_cache_append_attention_rope(fused, kn, vn, q, o, 1, 0.0, 0, pos, NULL) == LC_OK && lengths_are(fused, 4));
    lc_tensor_t *all[] = {kn, vn, q, q2, pos, pos2, fpos, o};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lc_tensor_free(all[i]);
    lc_kv_cache_free(fused);
    lc_kv_cache_free(twin);
}

int main(void) {
    const lc_dtype dts[2] = {LC_DTYPE_F32, LC_DTYPE_BF16};
    for (int i = 0; i < 2; i++) run(LC_DEVICE_CPU, dts[i]), run_rope(LC_DEVICE_CPU, dts[i]);
    if (lc_device_available(LC_DEVICE_CUDA))
        for (int i = 0; i < 2; i++) run(LC_DEVICE_CUDA, dts[i]), run_rope(LC_DEVICE_CUDA, dts[i]);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
