/* decode_probe.cu — stage timing of the tensor-core decode (developer probe; scripts/device/decode_probe.sh
 * builds it with the kernel's -DSDM_PROBE stamps): bf16, H 32, Hkv 8, D 128, sq 1, B and Skv from argv,
 * optionally with key_lengths (argv[6] = the length, as a KV cache has), the fused append (argv[7] = 1) and the
 * fused rope (argv[8] = 1). Launches 24 calls back to back on distinct
 * k/v copies (PDL overlaps them as in a graph), then prints, for the last call, each stage's globaltimer
 * stamp across blocks (min / median / max, in ns after the earliest block passed its PDL wait), and the median and
 * largest time of the stage after each block's own PDL wait. */
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/cuda_kernels.h"

extern "C" int sdm_probe_read(unsigned long long *dst, size_t n);

int main(int argc, char **argv) {
    const long long B = argc > 1 ? atoll(argv[1]) : 1, S = argc > 2 ? atoll(argv[2]) : 1024;
    const long long H = argc > 3 ? atoll(argv[3]) : 32, Hkv = argc > 4 ? atoll(argv[4]) : 8, D = argc > 5 ? atoll(argv[5]) : 128;
    const int len0 = argc > 6 ? atoi(argv[6]) : 0, append = argc > 7 && atoi(argv[7]) != 0, with_len = len0 > 0;
    const int rope = append && argc > 8 && atoi(argv[8]) != 0; /* the fused rope (positions len0), LLaMA's theta */
    const long long copies = 24;
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    const size_t kvb = (size_t)(B * Hkv * S * D) * 2, qb = (size_t)(B * H * D) * 2;
    void *q, *o, *ks[copies], *vs[copies];
    int *len;
    cudaMalloc(&q, qb), cudaMalloc(&o, qb), cudaMalloc(&len, 4 * B);
    cudaMemset(q, 0x3c, qb);
    std::vector<int> hl(B, with_len ? len0 : (int)S);
    cudaMemcpy(len, hl.data(), 4 * B, cudaMemcpyHostToDevice);
    const size_t nb1 = (size_t)(B * Hkv * D) * 2;
    void *kn, *vn;
    cudaMalloc(&kn, nb1), cudaMalloc(&vn, nb1);
    cudaMemset(kn, 0x3c, nb1), cudaMemset(vn, 0x3c, nb1);
    lc_kv_append_args ka;
    memset(&ka, 0, sizeof ka);
    ka.dtype = LC_DTYPE_BF16, ka.batch = B, ka.kv_heads = Hkv, ka.max_seq = S, ka.head_dim = D, ka.tokens = 1;
    ka.k_new = kn, ka.v_new = vn, ka.lengths = len;
    const int64_t nst[4] = {Hkv * D, D, D, 1};
    memcpy(ka.kn_st, nst, sizeof nst), memcpy(ka.vn_st, nst, sizeof nst);
    for (int c = 0; c < copies; c++) {
        cudaMalloc(&ks[c], kvb), cudaMalloc(&vs[c], kvb);
        cudaMemset(ks[c], 0x3c, kvb), cudaMemset(vs[c], 0x3c, kvb);
    }
    lc_sdpa_args a;
    memset(&a, 0, sizeof a);
    a.dtype = LC_DTYPE_BF16, a.batch = B, a.heads = H, a.kv_heads = Hkv, a.sq = 1, a.skv = S, a.head_dim = D;
    a.q = q, a.out = o, a.scale = 0.08838834764831845f;
    if (with_len) a.key_lengths = len, a.key_lengths_dtype = LC_DTYPE_I32;
    if (append) a.append = &ka, a.causal = 1;
    lc_rope_args ra;
    memset(&ra, 0, sizeof ra);
    int *rpos = NULL;
    if (rope) {
        cudaMalloc(&rpos, 4 * B);
        std::vector<int> hp(B, len0);
        cudaMemcpy(rpos, hp.data(), 4 * B, cudaMemcpyHostToDevice);
        ra.dtype = LC_DTYPE_BF16, ra.batch = B, ra.heads = H, ra.seq = 1, ra.head_dim = D, ra.rotary_dim = D;
        ra.positions = rpos, ra.pos_dtype = LC_DTYPE_I32, ra.p_st[0] = 1, ra.p_st[1] = 1;
        ra.opt.theta = 10000.0, ra.opt.rotary_dim = D;
        a.rope = &ra;
    }
    const int64_t qst[4] = {H * D, D, D, 1}, kst[4] = {Hkv * S * D, S * D, D, 1};
    memcpy(a.q_st, qst, sizeof qst), memcpy(a.o_st, qst, sizeof qst);
    memcpy(a.k_st, kst, sizeof kst), memcpy(a.v_st, kst, sizeof kst);
    const size_t wsb = lc_cuda_sdpa_workspace(&a, sms);
    void *ws = NULL;
    if (wsb) cudaMalloc(&ws, wsb);
    cudaStream_t st;
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    const char *path = "?";
    for (int rep = 0; rep < 3; rep++)
        for (int c = 0; c < copies; c++) {
            a.k = ka.k_cache = ks[c], a.v = ka.v_cache = vs[c];
            if (lc_cuda_launch_sdpa(&a, ws, wsb, sms, st, &path) != cudaSuccess) {
                printf("launch failed: %s\n", cudaGetErrorString(cudaGetLastError()));
                return 1;
            }
        }
    cudaStreamSynchronize(st);
    const size_t nb = 4096, NS = 12; /* the kernel's SDM_PROBE_SLOTS */
    std::vector<unsigned long long> t(nb * NS);
    if (sdm_probe_read(t.data(), nb) != 0) return 1;
    /* blocks of the last call: those whose stamp 1 is set and within 1 ms of the latest */
    unsigned long long last = 0;
    for (size_t i = 0; i < nb; i++) last = std::max(last, t[i * NS + 1]);
    std::vector<size_t> blk;
    for (size_t i = 0; i < nb; i++)
        if (t[i * NS + 1] && t[i * NS + 1] + 1000000ull > last) blk.push_back(i);
    unsigned long long t0 = ~0ull;
    for (size_t i : blk) t0 = std::min(t0, t[i * NS + 1]);
    printf("B=%lld H=%lld Hkv=%lld D=%lld Skv=%lld len %d append %d rope %d, path %s: %zu blocks; stamps in ns after the first PDL wait\n",
           B, H, Hkv, D, S, len0, append, rope, path, blk.size());
    /* the slots in the kernel's order (sdpa_decode_mma_cuda.cu's SDM_PROBE comment) */
    const int order[11] = {0, 1, 8, 2, 3, 4, 9, 5, 6, 10, 7};
    const char *names[NS] = {"entry", "pdl wait", "tiles issued", "first tile", "loop done", "partial", "cluster sync",
                             "end", "L0 known", "warps' parts", "merged"};
    for (int s : order) {
        std::vector<long long> v;
        for (size_t i : blk)
            if (t[i * NS + s]) v.push_back((long long)t[i * NS + s] - (long long)t0);
        if (v.empty()) continue;
        std::sort(v.begin(), v.end());
        /* the same stage after the block's own PDL wait (its chain, without the blocks' start skew) */
        std::vector<long long> w;
        for (size_t i : blk)
            if (t[i * NS + s] && t[i * NS + 1]) w.push_back((long long)t[i * NS + s] - (long long)t[i * NS + 1]);
        std::sort(w.begin(), w.end());
        printf("  %-13s min %7lld  med %7lld  max %7lld  (%zu blocks)  own wait +%lld med, +%lld max\n", names[s], v.front(),
               v[v.size() / 2], v.back(), v.size(), w.empty() ? 0LL : w[w.size() / 2], w.empty() ? 0LL : w.back());
    }
    return 0;
}
