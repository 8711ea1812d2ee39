"""bfloat16 gelu (erf and tanh forms), relu and a device copy of 64M elements, ours against torch in one process
(developer probe for the 16-bit gelu kernel; LC_EW_BPS picks the gelu kernel's blocks per SM, read once per
process). Checks the first 64 rows against float64 (the lowp suite's tolerance). Prints us per call and GB/s.
Usage: [LC_EW_BPS=N] python scripts/device/gelu_ab.py"""
import os

import numpy as np
import torch
import torch.nn.functional as F

import lightning_core as lc
from lightning_core.bench.suites.lowp import _events
from lightning_core.bench.timer import time_call
from lightning_core.testing import unit_roundoff
from lightning_core.testing.refs import ref_gelu

KW = dict(warmup=3, samples=15, min_sample_s=2e-3, settle_s=0.05, max_s=3.0)


def main():
    m, cols = 64 << 20, 4096
    x32 = np.random.default_rng(7).standard_normal((m // cols, cols)).astype(np.float32)
    xb = lc.cast(x32, "bfloat16")
    tx = lc.Tensor(xb, device="cuda", dtype="bfloat16")
    tout = lc.Tensor(np.full(xb.shape, np.nan, xb.dtype), device="cuda", dtype="bfloat16")
    px = torch.from_numpy(lc.cast(xb, "float32")).cuda().to(torch.bfloat16)
    dst = torch.empty_like(px)
    ev = _events(torch)
    copy = time_call(lambda: dst.copy_(px), sample_ms=ev, **KW)["median_s"]
    x64, u = lc.cast(xb[:64], "float64"), unit_roundoff("bfloat16")
    line = [f"LC_EW_BPS={os.environ.get('LC_EW_BPS', '-')} copy {copy * 1e6:.1f} us ({4.0 * m / copy / 1e9:.0f} GB/s)"]
    for name, ours, peer, form in (
            ("gelu", lambda: lc.gelu_into(tx, tout, device="cuda"), lambda: F.gelu(px), "none"),
            ("gelu_tanh", lambda: lc.gelu_into(tx, tout, "tanh", device="cuda"), lambda: F.gelu(px, approximate="tanh"), "tanh"),
            ("relu", lambda: lc.relu_into(tx, tout, device="cuda"), lambda: torch.relu(px), None)):
        ours()
        got = lc.cast(tout.numpy()[:64], "float64")
        if form:
            ref = ref_gelu(x64, form)
            bad = np.abs(got - ref) > (u + 1e-4) * np.abs(ref) + 1e-36
        else:
            bad = got != np.maximum(x64, 0.0)
        bad |= ~np.isfinite(got)
        t = time_call(ours, sample_ms=lambda run: lc.time_device_ms(run, device="cuda"), **KW)["median_s"]
        p = time_call(peer, sample_ms=ev, **KW)["median_s"]
        line.append(f"{name} {t * 1e6:.1f} us vs torch {p * 1e6:.1f} ({p / t:.2f}x, {copy / t:.2f} of copy)"
                    f"{' WRONG %d' % int(bad.sum()) if bad.any() else ''}")
    print("; ".join(line), flush=True)


if __name__ == "__main__":
    main()
