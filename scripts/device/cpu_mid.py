"""CPU bfloat16 matmul at 4 < m <= 64 (batched decode, short prompts): the time of lc.matmul2d_into per shape
(min of 15 after a warm-up) and the path it took; run it with and without LC_CPU_DISABLE=amx on an AMX host to
compare the AMX tiles (a and b packed whole each call) with the AVX-512 BF16 medium-m path (b packed slice by
slice in L2). torch's F.linear on the same [n, k] weights beside it when torch is importable.
Usage: python scripts/device/cpu_mid.py"""
import time

import ml_dtypes
import numpy as np

import lightning_core as lc


def best(f, n=15):
    f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1e3


def main():
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    for m in (8, 32, 64):
        for k, n in ((768, 2304), (3072, 768), (2048, 2560), (2048, 11264), (768, 50257)):
            a = rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
            b = rng.standard_normal((k, n)).astype(ml_dtypes.bfloat16)
            out = np.empty((m, n), ml_dtypes.bfloat16)
            ours = best(lambda: lc.matmul2d_into(a, b, out, device="cpu"))
            line = f"m={m:2d} {k}x{n}: ours {ours:7.3f} ms ({k * n * 2 / ours / 1e6:5.1f} GB/s)"
            if torch is not None:
                ta = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
                tw = torch.from_numpy(np.ascontiguousarray(b.T).view(np.int16)).view(torch.bfloat16)
                tl = best(lambda: torch.nn.functional.linear(ta, tw))
                line += f", torch linear {tl:7.3f} ms -> {tl / ours:.2f}x"
            print(line, flush=True)


if __name__ == "__main__":
    main()
