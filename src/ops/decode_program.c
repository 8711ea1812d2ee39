/* decode_program.c — lc_decode_program_new / _step / _free (ops.h): a batch-1 decode step of a GPT-2 or
 * LLaMA-family model as one persistent kernel. _new checks every tensor of the model (errors name the layer and
 * field), writes the instruction list of core/decode_program.h (per layer: qkv GEMV with the input norm,
 * attention over the cache, o_proj GEMV added into the residual stream, the MLP's up GEMV with the second norm,
 * its down GEMV added into the residual stream; then the final norm, lm_head and its argmax), plans the
 * kernel's shared memory, and uploads the program with its float32 scratch. _step enqueues one step on the
 * backend (decode_program entry; CUDA: backend/cuda/decode_fused_cuda.cu) and marks the caches' host mirrors
 * stale. Tests: tests/python/test_decode_program.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/decode_program.h"
#include "core/internal.h"
#include "core/rope_freq.h"

#define DP_MAX_STAGES 8

struct lc_decode_program {
    lc_device device;
    const lc_backend *be;
    lc_dp_prog host;         /* with device addresses */
    lc_tensor_t *blob;       /* the program, its instructions and the rope frequencies */
    lc_tensor_t *scratch;    /* float32 activations */
    lc_tensor_t *counters;   /* argmax key (word 0), barrier counters (word 32), release word (64): 3 lines */
    lc_kv_cache_t **caches;
    int64_t n_caches;
};

static const char *const FN = "decode_program";

typedef struct dp_ctx {
    lc_dtype dtype;
    lc_device device;
    int64_t layer; /* -1: a model-level field */
} dp_ctx;

static const char *dp_where(const dp_ctx *c, char *buf, size_t n, const char *field) {
    if (c->layer < 0)
        snprintf(buf, n, "%s", field);
    else
        snprintf(buf, n, "layers[%lld].%s", (long long)c->layer, field);
    return buf;
}

static lc_status dp_common(const dp_ctx *c, const char *where, const lc_tensor_t *t) {
    if (lc_tensor_dtype(t) != c->dtype)
        return lc_error(LC_ERR_DTYPE, "%s: %s: expected dtype %s (the embedding's), got %s", FN, where,
                        lc_dtype_name(c->dtype), lc_dtype_name(lc_tensor_dtype(t)));
    if (lc_tensor_device(t) != c->device)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected device %s (the embedding's), got %s", FN, where,
                        lc_device_name(c->device), lc_device_name(lc_tensor_device(t)));
    return LC_OK;
}

/* a weight [k, n] that is the transposed view of a row-major [n, k] array; its storage address */
static lc_status dp_weight(const dp_ctx *c, const char *field, const lc_tensor_t *t, int64_t k, int64_t n,
                           const void **ptr) {
    char w[64];
    dp_where(c, w, sizeof w, field);
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a weight tensor, got NULL", FN, w);
    lc_status st = dp_common(c, w, t);
    if (st != LC_OK) return st;
    if (lc_tensor_ndim(t) != 2 || lc_tensor_dim(t, 0) != k || lc_tensor_dim(t, 1) != n)
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected shape [%lld, %lld], got rank %d [%lld, %lld]", FN, w, (long long)k,
                        (long long)n, lc_tensor_ndim(t), (long long)lc_tensor_dim(t, 0), (long long)lc_tensor_dim(t, 1));
    if (lc_tensor_stride(t, 0) != 1 || lc_tensor_stride(t, 1) != k)
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "%s: %s: expected the [in, out] view of a row-major [out, in] array (strides (1, %lld): "
                        "weight_layout 'out_in'), got strides (%lld, %lld)",
                        FN, w, (long long)k, (long long)lc_tensor_stride(t, 0), (long long)lc_tensor_stride(t, 1));
    if (k % 256 != 0 || k > LC_DP_STAGE_BYTES / 2)
        return lc_error(LC_ERR_UNSUPPORTED, "%s: %s: expected an in-dimension that is a multiple of 256 up to %d, got %lld",
                        FN, w, LC_DP_STAGE_BYTES / 2, (long long)k);
    if (((uintptr_t)lc_tensor_data(t)) % 16 != 0)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a 16-byte aligned array", FN, w);
    *ptr = lc_tensor_data(t);
    return LC_OK;
}

/* a vector [n] (contiguous), or NULL where optional */
static lc_status dp_vector(const dp_ctx *c, const char *field, const lc_tensor_t *t, int64_t n, int required,
                           const void **ptr) {
    char w[64];
    dp_where(c, w, sizeof w, field);
    *ptr = NULL;
    if (!t) return required ? lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a tensor [%lld], got NULL", FN, w, (long long)n)
                            : LC_OK;
    lc_status st = dp_common(c, w, t);
    if (st != LC_OK) return st;
    if (lc_tensor_ndim(t) != 1 || lc_tensor_dim(t, 0) != n || lc_tensor_stride(t, 0) != 1)
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected a contiguous [%lld], got rank %d, first dim %lld", FN, w,
                        (long long)n, lc_tensor_ndim(t), (long long)lc_tensor_dim(t, 0));
    if (n % 8 != 0 || ((uintptr_t)lc_tensor_data(t)) % 16 != 0) /* copied in 16-byte pieces */
        return lc_error(LC_ERR_UNSUPPORTED, "%s: %s: expected a 16-byte aligned vector of a multiple of 8 elements, got %lld",
                        FN, w, (long long)n);
    *ptr = lc_tensor_data(t);
    return LC_OK;
}

/* a table [rows, d] (contiguous) */
static lc_status dp_table(const dp_ctx *c, const char *field, const lc_tensor_t *t, int64_t d, int64_t *rows) {
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: %s: expected a tensor, got NULL", FN, field);
    lc_status st = dp_common(c, field, t);
    if (st != LC_OK) return st;
    if (lc_tensor_ndim(t) != 2 || !lc_tensor_is_contiguous(t) || (d > 0 && lc_tensor_dim(t, 1) != d))
        return lc_error(LC_ERR_SHAPE, "%s: %s: expected a contiguous [rows, %lld], got rank %d", FN, field, (long long)d,
                        lc_tensor_ndim(t));
    *rows = lc_tensor_dim(t, 0);
    return LC_OK;
}

static lc_dp_instr dp_gemv(int in, int norm, int out, int64_t n, int64_t k, const void *w, const void *bias,
                           const void *nw, const void *nb, float eps) {
    lc_dp_instr i;
    memset(&i, 0, sizeof i);
    i.kind = LC_DP_GEMV;
    i.in = in;
    i.norm = norm;
    i.out = out;
    i.n = (int32_t)n;
    i.k = (int32_t)k;
    i.w = w;
    i.bias = bias;
    i.norm_w = nw;
    i.norm_b = nb;
    i.eps = eps;
    return i;
}

void lc_decode_program_free(lc_decode_program_t *p) {
    if (!p) return;
    lc_tensor_free(p->blob);
    lc_tensor_free(p->scratch);
    lc_tensor_free(p->counters);
    free(p->caches);
    free(p);
}

/* the instruction list of the model (checked); caches[] filled; *len0 the first cache's length counter */
static lc_status dp_build(const lc_decode_model *m, const dp_ctx *c0, int64_t d, int64_t hd, int64_t cap,
                          lc_dp_instr *ins, lc_kv_cache_t **caches, int64_t *mlp_n, int32_t **len0) {
    const int gpt2 = m->arch == LC_DECODE_GPT2, norm = gpt2 ? LC_DP_NORM_LN : LC_DP_NORM_RMS;
    const int64_t h = m->heads, hkv = m->kv_heads, qkv_n = (h + 2 * hkv) * hd;
    const float eps = (float)m->eps;
    int64_t ffn = -1, ni = 0;
    *mlp_n = 0;
    for (int64_t l = 0; l < m->n_layers; l++) {
        const lc_decode_layer *L = &m->layers[l];
        dp_ctx c = *c0;
        c.layer = l;
        const void *w, *b, *nw, *nb;
        lc_status st;
        /* the norms: LayerNorm (weight and bias) for GPT-2, RMSNorm (weight) for LLaMA */
        if ((st = dp_vector(&c, "norm1_w", L->norm1_w, d, 1, &nw)) != LC_OK) return st;
        if ((st = dp_vector(&c, "norm1_b", L->norm1_b, d, gpt2, &nb)) != LC_OK) return st;
        if ((st = dp_weight(&c, "w_qkv", L->w_qkv, d, qkv_n, &w)) != LC_OK) return st;
        if ((st = dp_vector(&c, "b_qkv", L->b_qkv, qkv_n, 0, &b)) != LC_OK) return st;
        ins[ni++] = dp_gemv(l == 0 ? LC_DP_IN_EMBED : LC_DP_IN_RES, norm, LC_DP_OUT_QKV, qkv_n, d, w, b, nw, gpt2 ? nb : NULL,
                            eps);
        if (!L->cache)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: layers[%lld].cache: expected a KV cache, got NULL", FN, (long long)l);
        lc_kv_cache_parts kp;
        if ((st = lc_kv_cache_get_parts(L->cache, &kp)) != LC_OK) return st;
        if (kp.batch != 1 || kp.kv_heads != hkv || kp.head_dim != hd || kp.max_seq != cap || kp.dtype != c.dtype ||
            kp.device != c.device)
            return lc_error(LC_ERR_INVALID_ARGUMENT,
                            "%s: layers[%lld].cache: expected batch 1, %lld kv heads, head_dim %lld, max_seq %lld (layer "
                            "0's), %s on %s; got batch %lld, %lld, %lld, %lld, %s on %s",
                            FN, (long long)l, (long long)hkv, (long long)hd, (long long)cap, lc_dtype_name(c.dtype),
                            lc_device_name(c.device), (long long)kp.batch, (long long)kp.kv_heads, (long long)kp.head_dim,
                            (long long)kp.max_seq, lc_dtype_name(kp.dtype), lc_device_name(kp.device));
        lc_dp_instr a;
        memset(&a, 0, sizeof a);
        a.kind = LC_DP_ATTN;
        a.kc = kp.k;
        a.vc = kp.v;
        a.lengths = kp.lengths;
        a.overflow = kp.overflow;
        ins[ni++] = a;
        caches[l] = L->cache;
        if (l == 0) *len0 = kp.lengths;
        if ((st = dp_weight(&c, "w_o", L->w_o, h * hd, d, &w)) != LC_OK) return st;
        if ((st = dp_vector(&c, "b_o", L->b_o, d, 0, &b)) != LC_OK) return st;
        ins[ni++] = dp_gemv(LC_DP_IN_ATTN, LC_DP_NORM_NONE, LC_DP_OUT_RES, d, h * hd, w, b, NULL, NULL, eps);
        if ((st = dp_vector(&c, "norm2_w", L->norm2_w, d, 1, &nw)) != LC_OK) return st;
        if ((st = dp_vector(&c, "norm2_b", L->norm2_b, d, gpt2, &nb)) != LC_OK) return st;
        /* the MLP's width from the down projection: [ffn, d] */
        const int64_t f = L->w_down ? lc_tensor_dim(L->w_down, 0) : 0;
        if (ffn < 0) ffn = f;
        const int64_t up_n = gpt2 ? ffn : 2 * ffn;
        if ((st = dp_weight(&c, "w_up", L->w_up, d, up_n, &w)) != LC_OK) return st;
        if ((st = dp_vector(&c, "b_up", L->b_up, up_n, 0, &b)) != LC_OK) return st;
        lc_dp_instr up = dp_gemv(LC_DP_IN_RES, norm, LC_DP_OUT_MLP, up_n, d, w, b, nw, gpt2 ? nb : NULL, eps);
        if (gpt2) up.act = m->act == LC_ACT_GELU_ERF ? LC_DP_ACT_GELU_ERF : LC_DP_ACT_GELU_TANH;
        ins[ni++] = up;
        if (up_n > *mlp_n) *mlp_n = up_n;
        if ((st = dp_weight(&c, "w_down", L->w_down, ffn, d, &w)) != LC_OK) return st;
        if ((st = dp_vector(&c, "b_down", L->b_down, d, 0, &b)) != LC_OK) return st;
        ins[ni++] = dp_gemv(gpt2 ? LC_DP_IN_BUF : LC_DP_IN_SWIGLU, LC_DP_NORM_NONE, LC_DP_OUT_RES, d, ffn, w, b, NULL, NULL,
                            eps);
    }
    return LC_OK;
}

lc_status lc_decode_program_new(const lc_decode_model *m, lc_decode_program_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: out: expected a pointer, got NULL", FN);
    *out = NULL;
    if (!m) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: model: expected a model, got NULL", FN);
    if (m->arch != LC_DECODE_GPT2 && m->arch != LC_DECODE_LLAMA)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: arch: expected LC_DECODE_GPT2 or LC_DECODE_LLAMA, got %d", FN,
                        (int)m->arch);
    if (m->n_layers < 1 || m->n_layers > 1024 || !m->layers)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: layers: expected 1..1024 layers, got %lld%s", FN,
                        (long long)m->n_layers, m->layers ? "" : " (NULL array)");
    if (!m->embed) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: embed: expected a tensor, got NULL", FN);
    dp_ctx c = {lc_tensor_dtype(m->embed), lc_tensor_device(m->embed), -1};
    if (c.dtype != LC_DTYPE_BF16 && c.dtype != LC_DTYPE_F16)
        return lc_error(LC_ERR_DTYPE, "%s: embed: expected dtype bfloat16 or float16, got %s", FN, lc_dtype_name(c.dtype));
    int64_t vocab = 0, n_pos = 0;
    lc_status st = dp_table(&c, "embed", m->embed, 0, &vocab);
    if (st != LC_OK) return st;
    const int64_t d = lc_tensor_dim(m->embed, 1);
    if (m->heads < 1 || m->kv_heads < 1 || m->heads % m->kv_heads != 0 || m->heads > 1024)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: heads, kv_heads: expected heads (<= 1024) a multiple of kv_heads >= 1, got %lld, %lld",
                        FN, (long long)m->heads, (long long)m->kv_heads);
    if (m->arch == LC_DECODE_GPT2 && m->heads != m->kv_heads)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: kv_heads: expected %lld (GPT-2: heads), got %lld", FN,
                        (long long)m->heads, (long long)m->kv_heads);
    if (!(m->eps > 0.0) || !isfinite(m->eps))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: eps: expected a finite value > 0, got %g", FN, m->eps);
    if (m->window < 0) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: window: expected >= 0, got %lld", FN, (long long)m->window);
    if (m->arch == LC_DECODE_GPT2 && m->act != LC_ACT_GELU_TANH && m->act != LC_ACT_GELU_ERF)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: act: expected LC_ACT_GELU_TANH or LC_ACT_GELU_ERF, got %d", FN, (int)m->act);
    if (!m->layers[0].cache) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: layers[0].cache: expected a KV cache, got NULL", FN);
    lc_kv_cache_parts kp;
    if ((st = lc_kv_cache_get_parts(m->layers[0].cache, &kp)) != LC_OK) return st;
    const int64_t hd = kp.head_dim, cap = kp.max_seq;
    if (hd != 64 && hd != 128)
        return lc_error(LC_ERR_UNSUPPORTED, "%s: layers[0].cache: expected head_dim 64 or 128, got %lld", FN, (long long)hd);
    if (m->arch == LC_DECODE_GPT2) {
        if ((st = dp_table(&c, "pos_embed", m->pos_embed, d, &n_pos)) != LC_OK) return st;
    } else if (m->pos_embed) {
        return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: pos_embed: expected NULL for a LLaMA-family model (rotary positions)", FN);
    }
    const void *fw, *fb, *head;
    if ((st = dp_vector(&c, "final_w", m->final_w, d, 1, &fw)) != LC_OK) return st;
    if ((st = dp_vector(&c, "final_b", m->final_b, d, m->arch == LC_DECODE_GPT2, &fb)) != LC_OK) return st;
    if ((st = dp_weight(&c, "lm_head", m->lm_head, d, vocab, &head)) != LC_OK) return st;
    const int64_t n_instr = 5 * m->n_layers + 1;
    lc_decode_program_t *p = calloc(1, sizeof *p);
    lc_dp_instr *ins = calloc((size_t)n_instr, sizeof *ins);
    if (p) p->caches = calloc((size_t)m->n_layers, sizeof *p->caches);
    if (!p || !ins || !p->caches) {
        free(ins);
        lc_decode_program_free(p);
        return lc_error(LC_ERR_OUT_OF_MEMORY, "%s: no memory", FN);
    }
    p->device = c.device;
    p->n_caches = m->n_layers;
    int64_t mlp_n = 0;
    int32_t *len0 = NULL;
    int grid = 0;
    size_t smem_max = 0;
    st = dp_build(m, &c, d, hd, cap, ins, p->caches, &mlp_n, &len0);
    if (st == LC_OK) { /* every tensor checked: now the device (so the checks run on any device, for the tests) */
        p->be = lc_backend_for(c.device);
        if (!p->be || !p->be->decode_program)
            st = lc_error(LC_ERR_UNSUPPORTED, "%s: device: the fused decode step runs on CUDA, got %s", FN,
                          lc_device_name(c.device));
        else if ((st = p->be->decode_program(NULL, &grid, &smem_max)) == LC_OK && grid < 1)
            st = lc_error(LC_ERR_BACKEND, "%s: the device reports no multiprocessors", FN);
    }
    if (st == LC_OK) {
        lc_dp_instr lm = dp_gemv(LC_DP_IN_RES, m->arch == LC_DECODE_GPT2 ? LC_DP_NORM_LN : LC_DP_NORM_RMS,
                                 LC_DP_OUT_LOGITS, vocab, d, head, NULL, fw, fb, (float)m->eps);
        ins[n_instr - 1] = lm;
    }
    lc_dp_prog *hp = &p->host;
    if (st == LC_OK) { /* the plan: shared memory for the staged input, the block's accumulators, the ring */
        int64_t max_k = 0, acc_words = 0, bias_rows = 0;
        for (int64_t i = 0; i < n_instr; i++) {
            if (ins[i].kind != LC_DP_GEMV) continue;
            const int64_t rows = (ins[i].n + grid - 1) / grid; /* the most rows a block takes */
            if (ins[i].k > max_k) max_k = ins[i].k;
            /* a block's rows x the groups a slot's row is split into */
            const int64_t words = rows * lc_dp_groups(lc_dp_rows_per_slot(ins[i].k));
            if (words > acc_words) acc_words = words;
            if (ins[i].bias && rows + 16 > bias_rows) bias_rows = rows + 16; /* + 16 for the aligned copy */
        }
        hp->max_k = (int32_t)max_k;
        hp->acc_words = (int32_t)((acc_words + 3) / 4 * 4);
        hp->own_words = (int32_t)((d + grid - 1) / grid); /* a block's rows of the residual stream */
        hp->vec_bytes = (int32_t)((4 * d + 2 * bias_rows + 15) / 16 * 16); /* norm weight and bias, bias slice */
        const size_t fixed = lc_dp_smem_fixed(hp);
        const int64_t stages = smem_max > fixed ? (int64_t)((smem_max - fixed) / LC_DP_SLOT_BYTES) : 0;
        if (stages < 2)
            st = lc_error(LC_ERR_UNSUPPORTED, "%s: the device's shared memory (%zu bytes a block) holds fewer than two "
                          "weight slots besides %zu bytes of staging", FN, smem_max, fixed);
        hp->n_instr = (int32_t)n_instr;
        hp->grid = grid;
        hp->d = (int32_t)d;
        hp->heads = (int32_t)m->heads;
        hp->kv_heads = (int32_t)m->kv_heads;
        hp->head_dim = (int32_t)hd;
        hp->cap = (int32_t)cap;
        hp->window = (int32_t)(m->window > INT32_MAX ? INT32_MAX : m->window);
        hp->splits = (int32_t)(grid / m->heads > 1 ? grid / m->heads : 1);
        hp->vocab = (int32_t)vocab;
        hp->n_pos = (int32_t)n_pos;
        hp->rope = m->arch == LC_DECODE_LLAMA;
        hp->dtype = (int32_t)c.dtype;
        hp->stages = (int32_t)(stages > DP_MAX_STAGES ? DP_MAX_STAGES : stages);
        hp->scale = (float)(1.0 / sqrt((double)hd));
        hp->wte = lc_tensor_data(m->embed);
        hp->wpe = m->pos_embed ? lc_tensor_data(m->pos_embed) : NULL;
        hp->len0 = len0;
    }
    /* device memory: the blob (program, instructions, frequencies), the scratch, the counters */
    const size_t off_instr = (sizeof(lc_dp_prog) + 63) / 64 * 64;
    const size_t off_freq = off_instr + ((size_t)n_instr * sizeof(lc_dp_instr) + 63) / 64 * 64;
    const size_t blob_bytes = off_freq + (size_t)hd / 2 * sizeof(double);
    const int64_t qkv_n = (m->heads + 2 * m->kv_heads) * hd, part_n = m->heads * hp->splits * (hd + 2);
    const int64_t scratch_n = d + qkv_n + part_n + mlp_n;
    unsigned char *blob = NULL;
    if (st == LC_OK) {
        const int64_t words = (int64_t)(blob_bytes + 3) / 4, cnt = 128;
        st = lc_tensor_new(LC_DTYPE_I32, c.device, 1, &words, &p->blob);
        if (st == LC_OK) st = lc_tensor_new(LC_DTYPE_F32, c.device, 1, &scratch_n, &p->scratch);
        if (st == LC_OK) st = lc_tensor_new(LC_DTYPE_I32, c.device, 1, &cnt, &p->counters);
        blob = st == LC_OK ? calloc(1, (size_t)words * 4) : NULL;
        if (st == LC_OK && !blob) st = lc_error(LC_ERR_OUT_OF_MEMORY, "%s: no memory", FN);
    }
    if (st == LC_OK) {
        unsigned char *dev = lc_tensor_data(p->blob);
        float *s = lc_tensor_data(p->scratch);
        hp->res = s;
        hp->qkv = s + d;
        hp->part = s + d + qkv_n;
        hp->mlp = s + d + qkv_n + part_n;
        hp->amax = (unsigned long long *)lc_tensor_data(p->counters);
        hp->sync = (unsigned *)lc_tensor_data(p->counters) + 32; /* arrivals, exits; [32] the release word */
        hp->instr = (const lc_dp_instr *)(dev + off_instr);
        lc_rope_options ro = {0};
        if (m->rope) ro = *m->rope;
        if (ro.theta == 0.0) ro.theta = 10000.0;
        double *freq = (double *)(blob + off_freq);
        for (int64_t i = 0; i < hd / 2; i++) freq[i] = lc_rope_inv_freq(i, hd, &ro);
        hp->inv_freq = (const double *)(dev + off_freq);
        memcpy(blob, hp, sizeof *hp);
        memcpy(blob + off_instr, ins, (size_t)n_instr * sizeof *ins);
        st = lc_tensor_copy_from_host(p->blob, blob, lc_tensor_nbytes(p->blob));
        static const int32_t zeros[128];
        if (st == LC_OK) st = lc_tensor_copy_from_host(p->counters, zeros, sizeof zeros);
    }
    free(blob);
    free(ins);
    if (st != LC_OK) {
        lc_decode_program_free(p);
        return st;
    }
    *out = p;
    return LC_OK;
}

lc_status lc_decode_program_step(lc_decode_program_t *p, const lc_tensor_t *token, lc_tensor_t *next_token,
                                 lc_tensor_t *logits) {
    if (!p) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s.step: program: expected a program, got NULL", FN);
    const lc_tensor_t *ts[3] = {token, next_token, logits};
    static const char *const names[3] = {"token", "next_token", "logits"};
    for (int i = 0; i < 3; i++) {
        const lc_tensor_t *t = ts[i];
        if (!t) {
            if (i == 0) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s.step: token: expected an int64 tensor [1], got NULL", FN);
            continue;
        }
        const lc_dtype want = i == 2 ? LC_DTYPE_F32 : LC_DTYPE_I64;
        const int64_t n = i == 2 ? p->host.vocab : 1;
        if (lc_tensor_dtype(t) != want)
            return lc_error(LC_ERR_DTYPE, "%s.step: %s: expected dtype %s, got %s", FN, names[i], lc_dtype_name(want),
                            lc_dtype_name(lc_tensor_dtype(t)));
        if (lc_tensor_device(t) != p->device)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s.step: %s: expected device %s, got %s", FN, names[i],
                            lc_device_name(p->device), lc_device_name(lc_tensor_device(t)));
        if (lc_tensor_numel(t) != n || !lc_tensor_is_contiguous(t))
            return lc_error(LC_ERR_SHAPE, "%s.step: %s: expected %lld contiguous elements, got %lld%s", FN, names[i],
                            (long long)n, (long long)lc_tensor_numel(t), lc_tensor_is_contiguous(t) ? "" : " (strided)");
        if (i > 0 && !lc_tensor_is_writable(t))
            return lc_error(LC_ERR_INVALID_ARGUMENT, "%s.step: %s: expected a writable tensor", FN, names[i]);
    }
    lc_dp_step_args a = {
        .prog = (const lc_dp_prog *)lc_tensor_data(p->blob),
        .host = &p->host,
        .tok_in = (const int64_t *)lc_tensor_data(token),
        .tok_out = next_token ? (int64_t *)lc_tensor_data(next_token) : NULL,
        .logits = logits ? (float *)lc_tensor_data(logits) : NULL,
    };
    lc_status st = p->be->decode_program(&a, NULL, NULL);
    for (int64_t i = 0; i < p->n_caches; i++) lc_kv_cache_advanced(p->caches[i]);
    return st;
}
