/* sdpa_cudnn.c — the large 16-bit prefill (and long decode) of lc_sdpa_args on cuDNN's fused flash-attention
 * engine (Hopper: the warp-specialised wgmma/TMA kernels torch's SDPA runs there), through cuDNN's C backend API.
 *
 * Taken (lc_cuda_sdpa_cudnn) when all hold, else the caller runs our own kernels:
 *  - cuDNN 9 loads at run time (dlopen: LC_CUDNN_LIB, else libcudnn.so.9 on the loader path; the Python
 *    package points LC_CUDNN_LIB at the pip wheel nvidia-cudnn when one is installed) and the build saw its
 *    header (LC_HAVE_CUDNN; no link-time dependency);
 *  - float16/bfloat16, no mask, no window, no lse, head_dim % 8 == 0 and <= 128, every operand's d-stride 1
 *    with 16-byte aligned rows and base; causal only with sq <= skv (every row sees a key: cuDNN has no
 *    "zeros for an empty row"); the diagonal is aligned to the end of the keys (query i sees keys
 *    <= i + L_b - sq, L_b = key_lengths[b] or skv) as everywhere in lc_sdpa; key_lengths only as the KV
 *    cache passes them with its append (args->append, int32 lengths, tokens = sq): after the append every
 *    row sees at least its own new key; the append kernel runs first;
 *  - LC_SDPA_CUDNN is not "0"; unless it is "1" (tests: every eligible shape), the work is one the engine
 *    runs faster than ours (cd_large_enough): sq, skv >= 256 (with the cache's lengths: sq >= 256), or
 *    sq = 1 without lengths reading >= 2^17 k/v rows (the KV cache's decode stays on our decode kernels);
 *  - the plan for the shapes/strides is cached, or can be built now (not while the stream is being captured:
 *    building compiles kernels and allocates; a captured call with a cached plan is fine, the engine's launch
 *    is capturable).
 * The graph is cuDNN's documented fused-attention pattern: S = Q·Kᵀ (Kᵀ a stride view of K, GQA by heads
 * broadcast), S·scale, [lengths: the padding mask, row < seq_len_q and col < seq_len_kv on its own int32
 * GEN_INDEX pair (seq_len_q: a device array of sq per plan, seq_len_kv: the cache's lengths), with the two
 * GEMMs' m/n/k overridden by them; cuDNN 9.19 refuses the graph when one index pair serves both masks],
 * [causal: row + (L_b - sq) >= col, else -inf, by GEN_INDEX / CMP_GE / BINARY_SELECT; L_b - sq a by-value
 * constant, or seq_len_kv - seq_len_q with lengths], softmax as max / sub / exp / sum / div (stats
 * max + log(sum) virtual), O = P·V with P in the I/O dtype; float32 scores, softmax and accumulation; O
 * rounded once to the dtype. Semantics our kernels keep and cuDNN does not: under causal, a NaN/Inf in a v
 * row a query cannot see can still reach it through a zero weight (0·NaN), as in torch.
 * Plans are cached per (device, dtype, shapes, strides, causal, lengths) and kept for the process, never
 * evicted (a captured graph may hold a launch of a plan's kernels): past LC_CUDNN_PLANS shapes, new ones run
 * on our kernels. A shape cuDNN refuses is remembered and never retried. The heuristic's first engine
 * configuration is taken: timing its next three on the H100 found none faster (most 1.5-2x slower). One
 * handle per device; building and enqueueing run under one lock (the handle's stream is set per call).
 * Workspace from the caller's stream-ordered allocator. LC_CUDNN_DEBUG=1 prints why a plan was refused.
 * Path: "cuda_sdpa_cudnn_<f16|bf16>".
 * Tests: tests/python/test_sdpa_cudnn.py (GPU machine with cuDNN; float64 reference). */
#include "backend/cuda/sdpa_cudnn.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/cuda_kernels.h"
#include "core/internal.h"

#if defined(LC_HAVE_CUDNN)
#include <cudnn_graph.h>

#define LC_CUDNN_PLANS 256
#define LC_CUDNN_MAX_DESC 112
#define LC_CUDNN_MAX_DEV 16

/* ---- the library, loaded once ---- */
typedef struct cd_api {
    int ok;
    size_t version;
    cudnnStatus_t (*create)(cudnnHandle_t *);
    cudnnStatus_t (*set_stream)(cudnnHandle_t, cudaStream_t);
    const char *(*error_string)(cudnnStatus_t);
    void (*last_error)(char *, size_t);
    cudnnStatus_t (*create_desc)(cudnnBackendDescriptorType_t, cudnnBackendDescriptor_t *);
    cudnnStatus_t (*destroy_desc)(cudnnBackendDescriptor_t);
    cudnnStatus_t (*finalize)(cudnnBackendDescriptor_t);
    cudnnStatus_t (*set_attr)(cudnnBackendDescriptor_t, cudnnBackendAttributeName_t, cudnnBackendAttributeType_t,
                              int64_t, const void *);
    cudnnStatus_t (*get_attr)(cudnnBackendDescriptor_t const, cudnnBackendAttributeName_t,
                              cudnnBackendAttributeType_t, int64_t, int64_t *, void *);
    cudnnStatus_t (*execute)(cudnnHandle_t, cudnnBackendDescriptor_t, cudnnBackendDescriptor_t);
} cd_api;

static cd_api cd;
static pthread_once_t cd_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cd_mu = PTHREAD_MUTEX_INITIALIZER;
static cudnnHandle_t cd_handles[LC_CUDNN_MAX_DEV];

static int cd_debug(void) {
    const char *e = getenv("LC_CUDNN_DEBUG");
    return e && strcmp(e, "1") == 0;
}

static void cd_load(void) {
    const char *env = getenv("LC_CUDNN_LIB");
    const char *names[] = {env && *env ? env : NULL, "libcudnn.so.9", "libcudnn.so"};
    void *h = NULL;
    for (int i = 0; i < 3 && !h; i++)
        if (names[i]) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        if (cd_debug()) fprintf(stderr, "lightning_core: cuDNN not loaded: %s\n", dlerror());
        return;
    }
#define CD_SYM(field, name)                                   \
    do {                                                      \
        *(void **)(&cd.field) = dlsym(h, name);               \
        if (!cd.field) return;                                \
    } while (0)
    size_t (*get_version)(void) = NULL;
    *(void **)(&get_version) = dlsym(h, "cudnnGetVersion");
    if (!get_version) return;
    CD_SYM(create, "cudnnCreate");
    CD_SYM(set_stream, "cudnnSetStream");
    CD_SYM(error_string, "cudnnGetErrorString");
    CD_SYM(last_error, "cudnnGetLastErrorString");
    CD_SYM(create_desc, "cudnnBackendCreateDescriptor");
    CD_SYM(destroy_desc, "cudnnBackendDestroyDescriptor");
    CD_SYM(finalize, "cudnnBackendFinalize");
    CD_SYM(set_attr, "cudnnBackendSetAttribute");
    CD_SYM(get_attr, "cudnnBackendGetAttribute");
    CD_SYM(execute, "cudnnBackendExecute");
#undef CD_SYM
    cd.version = get_version();
    cd.ok = cd.version >= 90000; /* the backend attributes used here are cuDNN 9's */
    if (!cd.ok && cd_debug()) fprintf(stderr, "lightning_core: cuDNN %zu is older than 9.0: not used\n", cd.version);
}

/* ---- descriptors of one plan: created in a pool, destroyed together ---- */
typedef struct cd_pool {
    cudnnBackendDescriptor_t d[LC_CUDNN_MAX_DESC];
    int n;
    cudnnStatus_t err; /* first failure */
    const char *what;
} cd_pool;

static void cd_pool_free(cd_pool *p) {
    for (int i = p->n - 1; i >= 0; i--) cd.destroy_desc(p->d[i]);
    p->n = 0;
}

static cudnnBackendDescriptor_t cd_new(cd_pool *p, cudnnBackendDescriptorType_t type, const char *what) {
    cudnnBackendDescriptor_t d = NULL;
    if (p->err != CUDNN_STATUS_SUCCESS) return NULL;
    if (p->n >= LC_CUDNN_MAX_DESC) {
        p->err = CUDNN_STATUS_INTERNAL_ERROR;
        p->what = "too many descriptors";
        return NULL;
    }
    cudnnStatus_t st = cd.create_desc(type, &d);
    if (st != CUDNN_STATUS_SUCCESS) {
        p->err = st;
        p->what = what;
        return NULL;
    }
    p->d[p->n++] = d;
    return d;
}

static void cd_set(cd_pool *p, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                   cudnnBackendAttributeType_t type, int64_t count, const void *value, const char *what) {
    if (p->err != CUDNN_STATUS_SUCCESS) return;
    cudnnStatus_t st = cd.set_attr(d, name, type, count, value);
    if (st != CUDNN_STATUS_SUCCESS) {
        p->err = st;
        p->what = what;
    }
}

static void cd_fin(cd_pool *p, cudnnBackendDescriptor_t d, const char *what) {
    if (p->err != CUDNN_STATUS_SUCCESS) return;
    cudnnStatus_t st = cd.finalize(d);
    if (st != CUDNN_STATUS_SUCCESS) {
        p->err = st;
        p->what = what;
    }
}

static void cd_setd(cd_pool *p, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                    cudnnBackendDescriptor_t v, const char *what) {
    cd_set(p, d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v, what);
}

enum {
    CD_UID_Q = 1, CD_UID_K, CD_UID_V, CD_UID_O, CD_UID_SCALE, CD_UID_NEGINF, CD_UID_SHIFT, CD_UID_SEQ_Q, CD_UID_SEQ_KV,
    CD_UID_VIRTUAL = 100
};

/* A 4-d tensor (or a by-value scalar: dims/strides all 1). */
static cudnnBackendDescriptor_t cd_tensor(cd_pool *p, int64_t uid, cudnnDataType_t dt, const int64_t dims[4],
                                          const int64_t strides[4], int is_virtual, int by_value) {
    cudnnBackendDescriptor_t t = cd_new(p, CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor");
    const int64_t one[4] = {1, 1, 1, 1}, align = 16;
    const bool virt = is_virtual != 0, byv = by_value != 0;
    cd_set(p, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, "tensor data type");
    cd_set(p, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims ? dims : one, "tensor dims");
    cd_set(p, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides ? strides : one, "tensor strides");
    cd_set(p, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid");
    cd_set(p, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
    if (virt) cd_set(p, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt, "tensor virtual");
    if (byv) cd_set(p, t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &byv, "tensor by value");
    cd_fin(p, t, "tensor");
    return t;
}

/* y = mode(x[, b][, t]) as an operation; axis >= 0 for GEN_INDEX. */
static cudnnBackendDescriptor_t cd_pointwise(cd_pool *p, cudnnPointwiseMode_t mode, cudnnDataType_t prec, int64_t axis,
                                             cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                                             cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y) {
    cudnnBackendDescriptor_t pw = cd_new(p, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise");
    cd_set(p, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    cd_set(p, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision");
    if (axis >= 0) cd_set(p, pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis");
    cd_fin(p, pw, "pointwise");
    cudnnBackendDescriptor_t op = cd_new(p, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise op");
    const float one = 1.0f;
    cd_setd(p, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw, "pointwise op desc");
    cd_setd(p, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x, "pointwise op x");
    if (b) cd_setd(p, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b, "pointwise op b");
    if (t) cd_setd(p, op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t, "pointwise op t");
    cd_setd(p, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y, "pointwise op y");
    cd_set(p, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha1");
    cd_set(p, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha2");
    cd_fin(p, op, "pointwise op");
    return op;
}

static cudnnBackendDescriptor_t cd_reduction(cd_pool *p, cudnnReduceTensorOp_t mode, cudnnBackendDescriptor_t x,
                                             cudnnBackendDescriptor_t y) {
    cudnnBackendDescriptor_t r = cd_new(p, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, "reduction");
    const cudnnDataType_t f = CUDNN_DATA_FLOAT;
    cd_set(p, r, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f, "reduction type");
    cd_set(p, r, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "reduction operator");
    cd_fin(p, r, "reduction");
    cudnnBackendDescriptor_t op = cd_new(p, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, "reduction op");
    cd_setd(p, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, r, "reduction op desc");
    cd_setd(p, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x, "reduction op x");
    cd_setd(p, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y, "reduction op y");
    cd_fin(p, op, "reduction op");
    return op;
}

/* c = a·b; with lengths (per-sequence int32 [B,1,1,1] tensors, NULL without): the GEMM's m and n (or m and
 * k, k_is_n) overridden by them, padded with zeros (cuDNN's padding-mask pattern). */
static cudnnBackendDescriptor_t cd_matmul(cd_pool *p, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b,
                                          cudnnBackendDescriptor_t c, cudnnBackendDescriptor_t m_len,
                                          cudnnBackendDescriptor_t nk_len, int k_is_n) {
    cudnnBackendDescriptor_t m = cd_new(p, CUDNN_BACKEND_MATMUL_DESCRIPTOR, "matmul");
    const cudnnDataType_t f = CUDNN_DATA_FLOAT;
    const double zero = 0.0;
    cd_set(p, m, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f, "matmul type");
    if (m_len && !k_is_n) cd_set(p, m, CUDNN_ATTR_MATMUL_PADDING_VALUE, CUDNN_TYPE_DOUBLE, 1, &zero, "matmul padding");
    cd_fin(p, m, "matmul");
    cudnnBackendDescriptor_t op = cd_new(p, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, "matmul op");
    cd_setd(p, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, a, "matmul op a");
    cd_setd(p, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, b, "matmul op b");
    cd_setd(p, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, c, "matmul op c");
    cd_setd(p, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, m, "matmul op desc");
    if (m_len) cd_setd(p, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, m_len, "matmul m override");
    if (nk_len)
        cd_setd(p, op, k_is_n ? CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC : CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC,
                nk_len, "matmul n/k override");
    cd_fin(p, op, "matmul op");
    return op;
}

/* ---- the plan cache ---- */
typedef struct cd_key {
    int device, dtype, causal;
    int lengths; /* the KV cache's int32 key_lengths (a padding mask over seq_len_kv) */
    int64_t b, h, hk, sq, skv, d;
    int64_t q_st[4], k_st[4], v_st[4], o_st[4];
} cd_key;

typedef struct cd_plan {
    cd_key key;
    int used;      /* 0: empty slot */
    int refused;   /* cuDNN could not build it: our kernels run these shapes */
    int64_t ws_bytes;
    int32_t *sq_dev; /* with lengths: [b] copies of sq on the device (seq_len_q), owned by the plan */
    cudnnBackendDescriptor_t plan;
    cd_pool pool; /* every descriptor the plan was built from (plan included) */
} cd_plan;

static cd_plan cd_plans[LC_CUDNN_PLANS];

/* The strides cuDNN is given: lc_sdpa's, except that an axis of extent 1 (rank-2/3 inputs get a batch, or
 * batch and head, axis of stride 0) takes the dense stride of the axes after it, which addresses the same
 * elements and is a stride cuDNN's tensor descriptors accept. */
static void cd_strides(const int64_t dims[4], const int64_t st[4], int64_t out[4]) {
    int64_t dense = 1;
    for (int i = 3; i >= 0; i--) {
        out[i] = dims[i] == 1 && st[i] == 0 ? dense : st[i];
        dense *= dims[i];
    }
}

static void cd_make_key(const lc_sdpa_args *a, int device, cd_key *k) {
    memset(k, 0, sizeof *k); /* padding too: keys are compared with memcmp */
    k->device = device;
    k->dtype = (int)a->dtype;
    k->causal = a->causal != 0;
    k->lengths = a->key_lengths != NULL;
    k->b = a->batch;
    k->h = a->heads;
    k->hk = a->kv_heads;
    k->sq = a->sq;
    k->skv = a->skv;
    k->d = a->head_dim;
    const int64_t qd[4] = {a->batch, a->heads, a->sq, a->head_dim}, kd[4] = {a->batch, a->kv_heads, a->skv, a->head_dim};
    cd_strides(qd, a->q_st, k->q_st);
    cd_strides(kd, a->k_st, k->k_st);
    cd_strides(kd, a->v_st, k->v_st);
    cd_strides(qd, a->o_st, k->o_st);
}

static void cd_note(const cd_key *k, const char *what, cudnnStatus_t st) {
    if (!cd_debug()) return;
    char msg[512] = "";
    cd.last_error(msg, sizeof msg);
    fprintf(stderr,
            "lightning_core: cuDNN sdpa b=%lld h=%lld hk=%lld sq=%lld skv=%lld d=%lld causal=%d: %s: %s (%s)\n",
            (long long)k->b, (long long)k->h, (long long)k->hk, (long long)k->sq, (long long)k->skv, (long long)k->d,
            k->causal, what, cd.error_string(st), msg);
}

/* Builds the operation graph and its execution plan into e (e->pool owns the descriptors). */
static void cd_build(cudnnHandle_t handle, cd_plan *e) {
    const cd_key *k = &e->key;
    cd_pool *p = &e->pool;
    memset(p, 0, sizeof *p);
    const cudnnDataType_t io = k->dtype == LC_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
    const cudnnDataType_t f = CUDNN_DATA_FLOAT, i32 = CUDNN_DATA_INT32, bl = CUDNN_DATA_BOOLEAN;
    const int64_t qd[4] = {k->b, k->h, k->sq, k->d};
    const int64_t ktd[4] = {k->b, k->hk, k->d, k->skv}, kts[4] = {k->k_st[0], k->k_st[1], k->k_st[3], k->k_st[2]};
    const int64_t vd[4] = {k->b, k->hk, k->skv, k->d};
    const int64_t sd[4] = {k->b, k->h, k->sq, k->skv}, ss[4] = {k->h * k->sq * k->skv, k->sq * k->skv, k->skv, 1};
    const int64_t rd[4] = {k->b, k->h, k->sq, 1}, rs[4] = {k->h * k->sq, k->sq, 1, 1};
    int64_t vu = CD_UID_VIRTUAL;

    cudnnBackendDescriptor_t tq = cd_tensor(p, CD_UID_Q, io, qd, k->q_st, 0, 0);
    cudnnBackendDescriptor_t tk = cd_tensor(p, CD_UID_K, io, ktd, kts, 0, 0);
    cudnnBackendDescriptor_t tv = cd_tensor(p, CD_UID_V, io, vd, k->v_st, 0, 0);
    cudnnBackendDescriptor_t to = cd_tensor(p, CD_UID_O, io, qd, k->o_st, 0, 0);
    cudnnBackendDescriptor_t tscale = cd_tensor(p, CD_UID_SCALE, f, NULL, NULL, 0, 1);
    cudnnBackendDescriptor_t ops[28];
    int nops = 0;

    const int64_t ld[4] = {k->b, 1, 1, 1}, ls[4] = {1, 1, 1, 1};
    cudnnBackendDescriptor_t tsq = k->lengths ? cd_tensor(p, CD_UID_SEQ_Q, i32, ld, ls, 0, 0) : NULL;
    cudnnBackendDescriptor_t tskv = k->lengths ? cd_tensor(p, CD_UID_SEQ_KV, i32, ld, ls, 0, 0) : NULL;
    cudnnBackendDescriptor_t tninf = k->causal || k->lengths ? cd_tensor(p, CD_UID_NEGINF, f, NULL, NULL, 0, 1) : NULL;
    cudnnBackendDescriptor_t s0 = cd_tensor(p, vu++, f, sd, ss, 1, 0);
    ops[nops++] = cd_matmul(p, tq, tk, s0, tsq, tskv, 0);
    cudnnBackendDescriptor_t s1 = cd_tensor(p, vu++, f, sd, ss, 1, 0);
    ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_MUL, f, -1, s0, tscale, NULL, s1);
    cudnnBackendDescriptor_t s = s1, row = NULL, col = NULL;
    if (k->lengths) { /* padding: row < seq_len_q and col < seq_len_kv, else -inf (its own int32 indices, as
                       * cudnn-frontend's padding_mask builds them) */
        cudnnBackendDescriptor_t prow = cd_tensor(p, vu++, i32, sd, ss, 1, 0);
        cudnnBackendDescriptor_t pcol = cd_tensor(p, vu++, i32, sd, ss, 1, 0);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_GEN_INDEX, i32, 2, s, NULL, NULL, prow);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_GEN_INDEX, i32, 3, s, NULL, NULL, pcol);
        cudnnBackendDescriptor_t rin = cd_tensor(p, vu++, bl, sd, ss, 1, 0);
        cudnnBackendDescriptor_t cin = cd_tensor(p, vu++, bl, sd, ss, 1, 0);
        cudnnBackendDescriptor_t both = cd_tensor(p, vu++, bl, sd, ss, 1, 0);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_CMP_LT, bl, -1, prow, tsq, NULL, rin);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_CMP_LT, bl, -1, pcol, tskv, NULL, cin);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_LOGICAL_AND, bl, -1, rin, cin, NULL, both);
        cudnnBackendDescriptor_t sp = cd_tensor(p, vu++, f, sd, ss, 1, 0);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_BINARY_SELECT, f, -1, s, tninf, both, sp);
        s = sp;
    }
    if (k->causal) {
        row = cd_tensor(p, vu++, i32, sd, ss, 1, 0);
        col = cd_tensor(p, vu++, i32, sd, ss, 1, 0);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_GEN_INDEX, f, 2, s, NULL, NULL, row);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_GEN_INDEX, f, 3, s, NULL, NULL, col);
        if (k->lengths) { /* per sequence: row + seq_len_kv - seq_len_q >= col */
            cudnnBackendDescriptor_t r1 = cd_tensor(p, vu++, i32, sd, ss, 1, 0);
            cudnnBackendDescriptor_t r2 = cd_tensor(p, vu++, i32, sd, ss, 1, 0);
            ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_ADD, i32, 3, row, tskv, NULL, r1);
            ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_SUB, i32, 3, r1, tsq, NULL, r2);
            row = r2;
        } else if (k->skv != k->sq) { /* the diagonal at the end of the keys: row + (skv - sq) >= col */
            cudnnBackendDescriptor_t tshift = cd_tensor(p, CD_UID_SHIFT, i32, NULL, NULL, 0, 1);
            cudnnBackendDescriptor_t row2 = cd_tensor(p, vu++, i32, sd, ss, 1, 0);
            ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_ADD, i32, -1, row, tshift, NULL, row2);
            row = row2;
        }
        cudnnBackendDescriptor_t keep = cd_tensor(p, vu++, bl, sd, ss, 1, 0);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_CMP_GE, bl, -1, row, col, NULL, keep);
        cudnnBackendDescriptor_t s2 = cd_tensor(p, vu++, f, sd, ss, 1, 0);
        ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_BINARY_SELECT, f, -1, s, tninf, keep, s2);
        s = s2;
    }
    cudnnBackendDescriptor_t mx = cd_tensor(p, vu++, f, rd, rs, 1, 0);
    ops[nops++] = cd_reduction(p, CUDNN_REDUCE_TENSOR_MAX, s, mx);
    cudnnBackendDescriptor_t sub = cd_tensor(p, vu++, f, sd, ss, 1, 0);
    ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_SUB, f, -1, s, mx, NULL, sub);
    cudnnBackendDescriptor_t ex = cd_tensor(p, vu++, f, sd, ss, 1, 0);
    ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_EXP, f, -1, sub, NULL, NULL, ex);
    cudnnBackendDescriptor_t sum = cd_tensor(p, vu++, f, rd, rs, 1, 0);
    ops[nops++] = cd_reduction(p, CUDNN_REDUCE_TENSOR_ADD, ex, sum);
    cudnnBackendDescriptor_t lg = cd_tensor(p, vu++, f, rd, rs, 1, 0);
    ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_LOG, f, -1, sum, NULL, NULL, lg);
    cudnnBackendDescriptor_t stats = cd_tensor(p, vu++, f, rd, rs, 1, 0);
    ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_ADD, f, -1, mx, lg, NULL, stats);
    cudnnBackendDescriptor_t pr = cd_tensor(p, vu++, io, sd, ss, 1, 0); /* P in the I/O dtype: the A of P·V */
    ops[nops++] = cd_pointwise(p, CUDNN_POINTWISE_DIV, f, -1, ex, sum, NULL, pr);
    ops[nops++] = cd_matmul(p, pr, tv, to, tsq, tskv, 1);

    cudnnBackendDescriptor_t graph = cd_new(p, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
    cd_set(p, graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "graph handle");
    cd_set(p, graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, nops, ops, "graph ops");
    cd_fin(p, graph, "operation graph");

    cudnnBackendDescriptor_t heur = cd_new(p, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "heuristics");
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    cd_setd(p, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph, "heuristics graph");
    cd_set(p, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode");
    cd_fin(p, heur, "heuristics");
    if (p->err != CUDNN_STATUS_SUCCESS) return;

    int64_t count = 0;
    cudnnStatus_t st = cd.get_attr(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, NULL);
    if (st != CUDNN_STATUS_SUCCESS || count < 1) {
        p->err = st != CUDNN_STATUS_SUCCESS ? st : CUDNN_STATUS_NOT_SUPPORTED;
        p->what = "heuristics: no engine";
        return;
    }
    if (count > 8) count = 8;
    cudnnBackendDescriptor_t cfgs[8];
    for (int64_t i = 0; i < count; i++) cfgs[i] = cd_new(p, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine config");
    if (p->err != CUDNN_STATUS_SUCCESS) return;
    int64_t got = 0;
    st = cd.get_attr(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, cfgs);
    if (st != CUDNN_STATUS_SUCCESS || got < 1) {
        p->err = st != CUDNN_STATUS_SUCCESS ? st : CUDNN_STATUS_NOT_SUPPORTED;
        p->what = "heuristics results";
        return;
    }
    for (int64_t i = 0; i < got; i++) { /* the first configuration that builds (the first: the fastest, measured) */
        cudnnBackendDescriptor_t plan = NULL;
        if (cd.create_desc(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) != CUDNN_STATUS_SUCCESS) continue;
        st = cd.set_attr(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
        if (st == CUDNN_STATUS_SUCCESS)
            st = cd.set_attr(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i]);
        if (st == CUDNN_STATUS_SUCCESS) st = cd.finalize(plan);
        int64_t ws = 0, n = 0;
        if (st == CUDNN_STATUS_SUCCESS)
            st = cd.get_attr(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws);
        if (st == CUDNN_STATUS_SUCCESS && p->n < LC_CUDNN_MAX_DESC) {
            p->d[p->n++] = plan;
            e->plan = plan;
            e->ws_bytes = ws;
            return;
        }
        cd_note(k, "execution plan", st);
        cd.destroy_desc(plan);
    }
    p->err = CUDNN_STATUS_NOT_SUPPORTED;
    p->what = "no engine configuration built";
}

/* The cached plan for key (built now when absent and allowed); NULL when cuDNN refuses the shapes, building
 * is not allowed, or the cache is full. Under cd_mu. */
static cd_plan *cd_plan_for(cudnnHandle_t handle, const cd_key *key, int may_build) {
    cd_plan *slot = NULL;
    for (int i = 0; i < LC_CUDNN_PLANS; i++) {
        cd_plan *e = &cd_plans[i];
        if (!e->used) {
            if (!slot) slot = e;
            continue;
        }
        if (memcmp(&e->key, key, sizeof *key) == 0) return e->refused ? NULL : e;
    }
    if (!may_build || !slot) return NULL;
    memset(slot, 0, sizeof *slot);
    slot->key = *key;
    slot->used = 1;
    if (key->lengths) { /* seq_len_q: sq for every sequence */
        int32_t host[64];
        for (int i = 0; i < 64; i++) host[i] = (int32_t)key->sq;
        int ok = cudaMalloc((void **)&slot->sq_dev, (size_t)key->b * sizeof(int32_t)) == cudaSuccess;
        for (int64_t i = 0; ok && i < key->b; i += 64)
            ok = cudaMemcpy(slot->sq_dev + i, host, (size_t)(key->b - i < 64 ? key->b - i : 64) * sizeof(int32_t),
                            cudaMemcpyHostToDevice) == cudaSuccess;
        if (!ok) {
            if (slot->sq_dev) cudaFree(slot->sq_dev);
            slot->sq_dev = NULL;
            (void)cudaGetLastError();
            slot->refused = 1;
            return NULL;
        }
    }
    cd_build(handle, slot);
    if (slot->pool.err != CUDNN_STATUS_SUCCESS || !slot->plan) {
        cd_note(key, slot->pool.what ? slot->pool.what : "build", slot->pool.err);
        cd_pool_free(&slot->pool);
        if (slot->sq_dev) cudaFree(slot->sq_dev);
        slot->sq_dev = NULL;
        slot->refused = 1;
        slot->plan = NULL;
        return NULL;
    }
    return slot;
}

static int cd_aligned(const void *ptr, const int64_t st[4]) {
    if (st[3] != 1 || ((uintptr_t)ptr % 16) != 0) return 0;
    for (int i = 0; i < 3; i++)
        if ((st[i] * 2) % 16 != 0) return 0;
    return 1;
}

/* Shapes the fused engine takes, per the rules in the header comment (the library and size rule apart). */
static int cd_shapes_ok(const lc_sdpa_args *a) {
    if (a->dtype != LC_DTYPE_F16 && a->dtype != LC_DTYPE_BF16) return 0;
    if (a->mask_kind != LC_SDPA_MASK_NONE || a->window || a->lse || a->plain_nonfinite) return 0;
    /* key_lengths only as the KV cache passes them with its append (every row then sees a key), and the
     * append only with them */
    if ((a->key_lengths != NULL) != (a->append != NULL)) return 0;
    if (a->key_lengths && (a->key_lengths_dtype != LC_DTYPE_I32 || a->append->tokens != a->sq)) return 0;
    if (a->batch < 1 || a->heads < 1 || a->kv_heads < 1 || a->heads % a->kv_heads || a->sq < 1 || a->skv < 1)
        return 0;
    if (a->head_dim % 8 || a->head_dim > 128 || (a->causal && a->sq > a->skv)) return 0;
    if (a->sq > INT32_MAX || a->skv > INT32_MAX) return 0;
    return cd_aligned(a->q, a->q_st) && cd_aligned(a->k, a->k_st) && cd_aligned(a->v, a->v_st) &&
           cd_aligned(a->out, a->o_st);
}

/* The default rule (LC_SDPA_CUDNN unset), from the sdpa suite on the H100 (docs/benchmarks.md, session 11):
 * prefill with Sq, Skv >= 256 (cuDNN about 2x our mma.sync kernel), and single-query decode reading at least
 * 2^17 k/v rows (batch x kv_heads x Skv: B=1 Hkv=8 from 16k keys, B=8 from 2k, B=32 from 512): there cuDNN
 * reads 1.03-1.3x faster than our split-KV decode kernel, below it ours is faster (B=1 Hkv=8 at 1k-4k keys:
 * 1.3-1.6x, as cuDNN's fixed cost dominates) or even. */
static int cd_large_enough(const lc_sdpa_args *a) {
    if (a->key_lengths) return a->sq >= 256; /* the cache's prefill; its decode stays on our kernels */
    if (a->sq == 1) return a->batch * a->kv_heads * a->skv >= ((int64_t)1 << 17);
    return a->sq >= 256 && a->skv >= 256;
}

lc_status lc_cuda_sdpa_cudnn(const lc_sdpa_args *a, cudaStream_t stream, int device, int capturing,
                             const char **path, int *taken) {
    *taken = 0;
    if (!cd_shapes_ok(a)) return LC_OK; /* first: every KV-cache call (decode steps included) leaves here */
    const char *env = getenv("LC_SDPA_CUDNN");
    if (env && strcmp(env, "0") == 0) return LC_OK;
    const int force = env && strcmp(env, "1") == 0;
    if (!force && !cd_large_enough(a)) return LC_OK;
    if (device < 0 || device >= LC_CUDNN_MAX_DEV) return LC_OK;
    pthread_once(&cd_once, cd_load);
    if (!cd.ok) return LC_OK;

    cd_key key;
    cd_make_key(a, device, &key);
    pthread_mutex_lock(&cd_mu);
    if (!cd_handles[device] && !capturing) {
        cudnnStatus_t st = cd.create(&cd_handles[device]);
        if (st != CUDNN_STATUS_SUCCESS) {
            cd_handles[device] = NULL;
            cd_note(&key, "cudnnCreate", st);
        }
    }
    cudnnHandle_t handle = cd_handles[device];
    cd_plan *e = handle ? cd_plan_for(handle, &key, !capturing) : NULL;
    if (!e) {
        pthread_mutex_unlock(&cd_mu);
        return LC_OK;
    }
    void *ws = NULL;
    if (e->ws_bytes > 0) {
        lc_status st = lc_cuda_alloc((size_t)e->ws_bytes, &ws);
        if (st != LC_OK) {
            pthread_mutex_unlock(&cd_mu);
            return lc_error_wrap(st, "scaled_dot_product_attention: cuDNN workspace");
        }
    }
    /* by-value operands: read when the launch is enqueued (captured into a graph's node by value) */
    float scale = a->scale, ninf = -INFINITY;
    int32_t shift = (int32_t)(a->skv - a->sq);
    int64_t uids[8] = {CD_UID_Q, CD_UID_K, CD_UID_V, CD_UID_O, CD_UID_SCALE};
    void *ptrs[8] = {(void *)a->q, (void *)a->k, (void *)a->v, a->out, &scale};
    int64_t n = 5;
    if (a->causal || a->key_lengths) uids[n] = CD_UID_NEGINF, ptrs[n++] = &ninf;
    if (a->key_lengths) {
        uids[n] = CD_UID_SEQ_Q, ptrs[n++] = e->sq_dev;
        uids[n] = CD_UID_SEQ_KV, ptrs[n++] = (void *)a->key_lengths;
    } else if (a->causal && a->skv != a->sq) {
        uids[n] = CD_UID_SHIFT, ptrs[n++] = &shift;
    }
    cd_pool vp = {0};
    cudnnBackendDescriptor_t pack = cd_new(&vp, CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, "variant pack");
    cd_set(&vp, pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids, "variant pack uids");
    cd_set(&vp, pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs, "variant pack pointers");
    cd_set(&vp, pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws, "variant pack workspace");
    cd_fin(&vp, pack, "variant pack");
    cudnnStatus_t st = vp.err;
    if (st == CUDNN_STATUS_SUCCESS) st = cd.set_stream(handle, stream);
    int appended = 0;
    if (st == CUDNN_STATUS_SUCCESS && a->append) { /* the cache's append, then the attention at the new lengths */
        const cudaError_t ce = lc_cuda_launch_kv_append(a->append, stream);
        if (ce != cudaSuccess) {
            cd_pool_free(&vp);
            pthread_mutex_unlock(&cd_mu);
            if (ws) lc_cuda_free(ws);
            *taken = 1;
            return lc_error(LC_ERR_BACKEND, "KVCache.append: %s", cudaGetErrorString(ce));
        }
        appended = 1;
    }
    if (st == CUDNN_STATUS_SUCCESS) st = cd.execute(handle, e->plan, pack);
    if (st != CUDNN_STATUS_SUCCESS) e->refused = 1; /* never again for these shapes: our kernels run the call */
    cd_pool_free(&vp);
    pthread_mutex_unlock(&cd_mu);
    if (ws) lc_cuda_free(ws); /* stream-ordered */
    if (st != CUDNN_STATUS_SUCCESS && appended) { /* the append ran: the call cannot be handed back */
        *taken = 1;
        return lc_error(LC_ERR_BACKEND, "scaled_dot_product_attention: cuDNN: %s", cd.error_string(st));
    }
    if (st != CUDNN_STATUS_SUCCESS) {
        cd_note(&key, vp.what ? vp.what : "execute", st);
        return LC_OK;
    }
    *taken = 1;
    if (path) *path = a->dtype == LC_DTYPE_BF16 ? "cuda_sdpa_cudnn_bf16" : "cuda_sdpa_cudnn_f16";
    return LC_OK;
}

int lc_cuda_sdpa_cudnn_version(void) {
    pthread_once(&cd_once, cd_load);
    return cd.ok ? (int)cd.version : 0;
}

#else /* built without cuDNN's header: never taken */

lc_status lc_cuda_sdpa_cudnn(const lc_sdpa_args *a, cudaStream_t stream, int device, int capturing,
                             const char **path, int *taken) {
    (void)a, (void)stream, (void)device, (void)capturing, (void)path;
    *taken = 0;
    return LC_OK;
}

int lc_cuda_sdpa_cudnn_version(void) { return 0; }

#endif
