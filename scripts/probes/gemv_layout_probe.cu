// scripts/probes/gemv_layout_probe.cu — not part of the library or its build; run on a GPU machine:
//   nvcc -arch=sm_90 -O3 -std=c++17 -I src -o /tmp/glp scripts/probes/gemv_layout_probe.cu && /tmp/glp
// Probe for the decode GEMV (docs/design.md, session 18): does a weight layout that lets every block own
// whole output columns (no split of k, so no partials, fence, ticket or last-block reduction) stream the
// weights faster than gemv_cuda.cu's [k, n] tiles with k split across blocks? m = 1, bfloat16, + bias, the
// GEMV shapes of GPT-2 124M and LLaMA 1.1B. Variants, each one kernel a call with programmatic dependent
// launch (the first weight loads before griddepcontrol.wait, as the library's GEMV under static weights):
//   nk<W,R>: w given as [n, k] (torch's Linear layout, k contiguous): warp = R output rows, lanes stride k in
//            16-byte chunks, a shuffle reduction; W warps a block.
//   kn<TW>:  w as [k, n] (the library's layout), a block owns TW = 8/16/32 columns and all of k (TW·2-byte row pieces).
//   stream:  a plain read of the same bytes (the floor).
// Each call reads its own copy of w (copies cycled past 160 MB: DRAM, as in a model's step); one captured
// graph of all copies, replayed; us a call. Outputs of nk<4,2> and kn<16> are checked against a host float64 sum.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <vector>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include "backend/cuda/pdl.cuh"

#define CK(...) do { cudaError_t e_ = (__VA_ARGS__); if (e_ != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e_), __LINE__); exit(1); } } while (0)

__device__ __forceinline__ uint4 ldw(const void *p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}
__device__ __forceinline__ float dot8(uint4 w, uint4 x, float acc) {
    const unsigned a[4] = {w.x, w.y, w.z, w.w}, b[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        acc = fmaf(__uint_as_float(a[j] << 16), __uint_as_float(b[j] << 16), acc);
        acc = fmaf(__uint_as_float(a[j] & 0xffff0000u), __uint_as_float(b[j] & 0xffff0000u), acc);
    }
    return acc;
}

// [n, k] layout: warp rows r0 .. r0 + R - 1; CH chunks (16 B) a lane a row in flight.
template <int W, int R, int CH>
__global__ void __launch_bounds__(W * 32) gemv_nk(const __nv_bfloat16 *x, const __nv_bfloat16 *w, const __nv_bfloat16 *bias,
                                                  __nv_bfloat16 *out, int k, int n) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int r0 = (blockIdx.x * W + warp) * R;
    const int nch = k / 8; // chunks a row
    const char *wr = reinterpret_cast<const char *>(w) + (size_t)r0 * k * 2;
    const uint4 *xv = reinterpret_cast<const uint4 *>(x);
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.f;
    lc_pdl_trigger();
    int c = lane;
    uint4 wv[R][CH];
    auto load = [&](int c0) {
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int u = 0; u < CH; u++)
                if (c0 + 32 * u < nch && r0 + r < n) wv[r][u] = ldw(wr + ((size_t)r * k + (size_t)(c0 + 32 * u) * 8) * 2);
    };
    load(c);
    lc_pdl_wait();
    for (; c < nch; c += 32 * CH) {
        uint4 xs[CH];
#pragma unroll
        for (int u = 0; u < CH; u++)
            if (c + 32 * u < nch) xs[u] = __ldg(xv + c + 32 * u);
        uint4 cur[R][CH];
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int u = 0; u < CH; u++) cur[r][u] = wv[r][u];
        if (c + 32 * CH < nch) load(c + 32 * CH);
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int u = 0; u < CH; u++)
                if (c + 32 * u < nch) acc[r] = dot8(cur[r][u], xs[u], acc[r]);
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        float v = acc[r];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == r && r0 + r < n) out[r0 + r] = __float2bfloat16(v + __bfloat162float(bias[r0 + r]));
    }
}

// [k, n] layout: a block owns TW columns and all of k; thread t: columns (t % LPR)·8.., rows t / LPR + RS·i
// (LPR = TW / 8 threads a row, RS = 256 / LPR rows a block step); U rows in flight a thread.
template <int TW, int U>
__global__ void __launch_bounds__(256) gemv_kn(const __nv_bfloat16 *x, const __nv_bfloat16 *w, const __nv_bfloat16 *bias,
                                               __nv_bfloat16 *out, int k, int n) {
    constexpr int LPR = TW / 8, RS = 256 / LPR;
    __shared__ float xs[8192];
    __shared__ float red[8][TW];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, part = tid % LPR, r0 = tid / LPR;
    const int col = blockIdx.x * TW + part * 8;
    const char *wc = reinterpret_cast<const char *>(w) + (size_t)col * 2;
    const size_t rowb = (size_t)n * 2;
    lc_pdl_trigger();
    uint4 wv[U];
#pragma unroll
    for (int u = 0; u < U; u++)
        if (r0 + RS * u < k) wv[u] = ldw(wc + (size_t)(r0 + RS * u) * rowb);
    lc_pdl_wait();
    for (int i = tid; i < k; i += 256) xs[i] = __bfloat162float(x[i]);
    __syncthreads();
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int rb = r0; rb < k; rb += RS * U) {
        uint4 cur[U];
#pragma unroll
        for (int u = 0; u < U; u++) cur[u] = wv[u];
        if (rb + RS * U < k) {
#pragma unroll
            for (int u = 0; u < U; u++)
                if (rb + RS * (U + u) < k) wv[u] = ldw(wc + (size_t)(rb + RS * (U + u)) * rowb);
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            if (rb + RS * u >= k) break;
            const float xv = xs[rb + RS * u];
            const unsigned q[4] = {cur[u].x, cur[u].y, cur[u].z, cur[u].w};
#pragma unroll
            for (int j = 0; j < 4; j++) {
                a[2 * j] = fmaf(xv, __uint_as_float(q[j] << 16), a[2 * j]);
                a[2 * j + 1] = fmaf(xv, __uint_as_float(q[j] & 0xffff0000u), a[2 * j + 1]);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < 8; j++) {
        float v = a[j];
#pragma unroll
        for (int o = 16; o >= LPR; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        a[j] = v;
    }
    if (lane < LPR)
#pragma unroll
        for (int j = 0; j < 8; j++) red[warp][lane * 8 + j] = a[j];
    __syncthreads();
    if (tid < TW) {
        float v = 0.f;
#pragma unroll
        for (int q = 0; q < 8; q++) v += red[q][tid];
        const int oc = blockIdx.x * TW + tid;
        if (oc < n) out[oc] = __float2bfloat16(v + __bfloat162float(bias[oc]));
    }
}

__global__ void __launch_bounds__(256) stream_read(const uint4 *p, size_t n16, float *sink) {
    lc_pdl_trigger();
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x, st = (size_t)gridDim.x * blockDim.x;
    float acc = 0.f;
    bool waited = false;
    for (size_t i = t; i < n16; i += 8 * st) {
        uint4 v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) v[u] = i + u * st < n16 ? ldw(p + i + u * st) : make_uint4(0, 0, 0, 0);
        if (!waited) lc_pdl_wait(), waited = true;
#pragma unroll
        for (int u = 0; u < 8; u++) acc += __uint_as_float(v[u].x ^ v[u].y ^ v[u].z ^ v[u].w);
    }
    if (!waited) lc_pdl_wait();
    if (acc == 12345.f) sink[0] = acc;
}

struct Bufs {
    int k, n, nc;
    std::vector<__nv_bfloat16 *> wkn, wnk;
    __nv_bfloat16 *x, *bias, *out;
    float *sink;
    std::vector<float> hw, hx, hb; // copy 0 (both layouts hold the same matrix)
};

static uint16_t f2b(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16); }
static float b2f(uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }

template <typename F> static double time_graph(cudaStream_t s, int nc, F launch) {
    cudaGraph_t g; cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    for (int c = 0; c < nc; c++) CK(launch(c));
    CK(cudaStreamEndCapture(s, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    for (int i = 0; i < 3; i++) CK(cudaGraphLaunch(ge, s));
    const int reps = 20;
    CK(cudaEventRecord(e0, s));
    for (int i = 0; i < reps; i++) CK(cudaGraphLaunch(ge, s));
    CK(cudaEventRecord(e1, s));
    CK(cudaEventSynchronize(e1));
    float ms = 0; CK(cudaEventElapsedTime(&ms, e0, e1));
    CK(cudaGraphExecDestroy(ge)); CK(cudaGraphDestroy(g));
    return ms * 1e3 / (reps * nc);
}

static double check(const Bufs &b) { // max |out - ref| / (sum |w x| + |bias|) over the columns
    std::vector<uint16_t> o(b.n);
    CK(cudaMemcpy(o.data(), b.out, b.n * 2, cudaMemcpyDeviceToHost));
    double worst = 0;
    for (int j = 0; j < b.n; j++) {
        double s = b.hb[j], a = fabs(b.hb[j]);
        for (int i = 0; i < b.k; i++) s += (double)b.hw[(size_t)i * b.n + j] * b.hx[i], a += fabs((double)b.hw[(size_t)i * b.n + j] * b.hx[i]);
        const double e = fabs(b2f(o[j]) - s) / (a + 1e-30);
        if (!(e <= worst)) worst = e; // NaN propagates
    }
    return worst;
}

template <int W, int R, int CH> static cudaError_t launch_nk(const Bufs &b, int c, cudaStream_t s) {
    const int rows = W * R;
    return lc_pdl_launch(gemv_nk<W, R, CH>, dim3((b.n + rows - 1) / rows), dim3(W * 32), 0, s, b.x, b.wnk[c], b.bias, b.out, b.k, b.n);
}

int main() {
    int sms = 0; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    cudaDeviceProp pr; CK(cudaGetDeviceProperties(&pr, 0));
    printf("%s, %d SMs; m=1 bf16 + bias, us a call from DRAM (graph of calls on distinct weight copies, PDL)\n", pr.name, sms);
    const int shapes[][2] = {{768, 768}, {768, 2304}, {768, 3072}, {3072, 768}, {2048, 2560}, {2048, 2048}, {2048, 11264}, {5632, 2048}, {2048, 32000}};
    cudaStream_t s; CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    printf("%-12s %7s %8s | %8s %8s %8s %8s %8s %8s | %8s %8s %8s | err nk / kn16\n", "k x n", "MB", "stream", "nk4x1", "nk4x2", "nk8x1", "nk8x2", "nk4x4", "best GB/s", "kn8", "kn16", "kn32");
    for (auto &sh : shapes) {
        Bufs b; b.k = sh[0]; b.n = sh[1];
        const size_t wb = (size_t)b.k * b.n * 2;
        b.nc = (int)std::min<size_t>(48, std::max<size_t>(2, (160ull << 20) / wb + 1));
        std::vector<uint16_t> hkn((size_t)b.k * b.n), hnk((size_t)b.k * b.n), hx(b.k), hb(b.n);
        b.hw.resize((size_t)b.k * b.n); b.hx.resize(b.k); b.hb.resize(b.n);
        srand(7);
        for (size_t i = 0; i < hkn.size(); i++) { hkn[i] = f2b((rand() / (float)RAND_MAX - 0.5f) * 0.1f); b.hw[i] = b2f(hkn[i]); }
        for (int i = 0; i < b.k; i++) { hx[i] = f2b(rand() / (float)RAND_MAX - 0.5f); b.hx[i] = b2f(hx[i]); }
        for (int j = 0; j < b.n; j++) { hb[j] = f2b(rand() / (float)RAND_MAX - 0.5f); b.hb[j] = b2f(hb[j]); }
        for (int i = 0; i < b.k; i++) for (int j = 0; j < b.n; j++) hnk[(size_t)j * b.k + i] = hkn[(size_t)i * b.n + j];
        b.wkn.resize(b.nc); b.wnk.resize(b.nc);
        for (int c = 0; c < b.nc; c++) {
            CK(cudaMalloc(&b.wkn[c], wb)); CK(cudaMalloc(&b.wnk[c], wb));
            CK(cudaMemcpy(b.wkn[c], hkn.data(), wb, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(b.wnk[c], hnk.data(), wb, cudaMemcpyHostToDevice));
        }
        CK(cudaMalloc(&b.x, b.k * 2)); CK(cudaMalloc(&b.bias, b.n * 2)); CK(cudaMalloc(&b.out, b.n * 2)); CK(cudaMalloc(&b.sink, 4));
        CK(cudaMemcpy(b.x, hx.data(), b.k * 2, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(b.bias, hb.data(), b.n * 2, cudaMemcpyHostToDevice));
        const double tst = time_graph(s, b.nc, [&](int c) {
            return lc_pdl_launch(stream_read, dim3(2 * sms), dim3(256), 0, s, (const uint4 *)b.wkn[c], wb / 16, b.sink); });
        double t[5];
        t[0] = time_graph(s, b.nc, [&](int c) { return launch_nk<4, 1, 8>(b, c, s); });
        t[1] = time_graph(s, b.nc, [&](int c) { return launch_nk<4, 2, 8>(b, c, s); });
        t[2] = time_graph(s, b.nc, [&](int c) { return launch_nk<8, 1, 8>(b, c, s); });
        t[3] = time_graph(s, b.nc, [&](int c) { return launch_nk<8, 2, 8>(b, c, s); });
        t[4] = time_graph(s, b.nc, [&](int c) { return launch_nk<4, 4, 4>(b, c, s); });
        CK(cudaMemset(b.out, 0xff, b.n * 2));
        CK(launch_nk<4, 2, 8>(b, 0, s)); CK(cudaStreamSynchronize(s));
        const double enk = check(b);
        double best = t[0];
        for (double v : t) best = std::min(best, v);
        double tkn8 = NAN, tkn16 = NAN, tkn32 = NAN, ekn = NAN;
        if (b.k <= 8192 && b.n % 32 == 0) {
            tkn8 = time_graph(s, b.nc, [&](int c) { return lc_pdl_launch(gemv_kn<8, 8>, dim3(b.n / 8), dim3(256), 0, s, b.x, b.wkn[c], b.bias, b.out, b.k, b.n); });
            tkn16 = time_graph(s, b.nc, [&](int c) { return lc_pdl_launch(gemv_kn<16, 8>, dim3(b.n / 16), dim3(256), 0, s, b.x, b.wkn[c], b.bias, b.out, b.k, b.n); });
            tkn32 = time_graph(s, b.nc, [&](int c) { return lc_pdl_launch(gemv_kn<32, 8>, dim3(b.n / 32), dim3(256), 0, s, b.x, b.wkn[c], b.bias, b.out, b.k, b.n); });
            CK(cudaMemset(b.out, 0xff, b.n * 2));
            CK(lc_pdl_launch(gemv_kn<16, 8>, dim3(b.n / 16), dim3(256), 0, s, b.x, b.wkn[0], b.bias, b.out, b.k, b.n));
            CK(cudaStreamSynchronize(s));
            ekn = check(b);
        }
        char name[32]; snprintf(name, sizeof name, "%dx%d", b.k, b.n);
        printf("%-12s %7.1f %8.2f | %8.2f %8.2f %8.2f %8.2f %8.2f %8.0f | %8.2f %8.2f %8.2f | %.1e / %.1e\n", name, wb / 1e6, tst, t[0], t[1], t[2], t[3], t[4],
               wb / best / 1e3, tkn8, tkn16, tkn32, enk, ekn);
        for (int c = 0; c < b.nc; c++) { CK(cudaFree(b.wkn[c])); CK(cudaFree(b.wnk[c])); }
        CK(cudaFree(b.x)); CK(cudaFree(b.bias)); CK(cudaFree(b.out)); CK(cudaFree(b.sink));
    }
    return 0;
}
