#!/usr/bin/env python3
"""API overhead (issue 6 targets; seed section 12 "API Overhead" table): what the Python layers cost on
top of the C calls they wrap, measured in the same process, interleaved:
  - lc.api.attention / conv_relu_nchw / conv_attention_torchstrong_nchw (eager) vs the direct
    lightning_core C calls doing the same work (target <= 1.05x);
  - lc.nn.Linear forward vs the bare lc.linear call (target <= 1.1x);
  - a DLPack round trip of a 64 MB CUDA tensor with torch: torch -> lc.from_dlpack -> torch.from_dlpack,
    same pointer both ways (no copy) and < 20 us.
Usage: python benchmarks/python/api_overhead_bench.py [--device auto|cpu|cuda] [--out DIR] [--quick]
Writes api_overhead.{csv,json,md}. Docs: docs/benchmarks.md ("API overhead").
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import lightning_core as lc  # noqa: E402


def _pair(direct, api, reps):
    """Interleaved medians (A B A B ...) so drift hits both sides alike."""
    d, a = [], []
    for _ in range(reps):
        d.append(harness.time_call(direct, samples=7, settle_s=0.0)["median_s"])
        a.append(harness.time_call(api, samples=7, settle_s=0.0)["median_s"])
    return float(np.median(d)), float(np.median(a))


def rows_api(dev, reps):
    rng = np.random.default_rng(7)
    out = []
    for seq, d in [(256, 64), (512, 64)]:
        q, k, v = (rng.random(seq * d).astype(np.float32) for _ in range(3))
        t_d, t_a = _pair(lambda: lc.attention_forward(q, k, v, seq, d, False, dev),
                         lambda: lc.api.attention(q, k, v, seq, d, False, dev), reps)
        out.append({"case": f"attention seq={seq},head_dim={d}", "direct_ms": t_d * 1e3, "api_ms": t_a * 1e3})
    for n in (1, 2):
        x = rng.random((n, 3, 32, 32)).astype(np.float32)
        w = rng.random((16, 3, 3, 3)).astype(np.float32)
        b = rng.random(16).astype(np.float32)
        t_d, t_a = _pair(lambda: lc.conv2d_nchw(x, w, b, 1, 1, 1, 1, dev, True),
                         lambda: lc.api.conv_relu_nchw(x, w, b, 1, 1, 1, 1, dev), reps)
        out.append({"case": f"conv_relu batch={n},in_ch=3,h=32,w=32,out_ch=16,k=3", "direct_ms": t_d * 1e3, "api_ms": t_a * 1e3})
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    w = rng.random((16, 3, 3, 3)).astype(np.float32)
    b = rng.random(16).astype(np.float32)
    for seq, d in [(48, 48), (96, 48)]:
        def direct(seq=seq, d=d):
            y = lc.conv2d_nchw(x, w, b, 1, 1, 1, 1, dev, True)
            qq, kk, vv = lc.qkv_pack_repeat(y, seq, d, dev)
            return lc.attention2d(qq, kk, vv, False, dev)

        t_d, t_a = _pair(direct, lambda seq=seq, d=d: lc.api.conv_attention_torchstrong_nchw(x, w, b, seq, d, device=dev), reps)
        out.append({"case": f"conv_attn conv(1,3->16,8x8)+attn(seq={seq},d={d})", "direct_ms": t_d * 1e3, "api_ms": t_a * 1e3})
    for r in out:
        r["ratio"] = r["api_ms"] / r["direct_ms"]
        r["target"] = "<= 1.05x"
        r["verdict"] = "PASS" if r["ratio"] <= 1.05 else "MISS"
    return out


def rows_nn(dev, reps):
    try:
        from lightning_core import nn
    except ImportError as e:
        return [{"case": "nn.Linear", "error": f"lightning_core.nn missing: {e}"}]
    rng = np.random.default_rng(8)
    out = []
    for batch, fin, fout in [(64, 512, 512), (256, 1024, 1024)]:
        layer = nn.Linear(fin, fout, seed=1, device=dev)
        x = rng.standard_normal((batch, fin)).astype(np.float32)
        w, b = layer.weight, layer.bias  # Parameters are ndarrays: the bare call gets the same buffers
        t_d, t_a = _pair(lambda: lc.linear(x, w, b, "none", dev), lambda: layer.forward(x), reps)
        ok = np.allclose(layer(x), lc.linear(x, w, b, "none", dev), rtol=1e-5, atol=1e-5)
        out.append({"case": f"nn.Linear batch={batch},{fin}->{fout}", "direct_ms": t_d * 1e3, "api_ms": t_a * 1e3,
                    "ratio": t_a / t_d, "target": "<= 1.1x", "verdict": ("PASS" if t_a / t_d <= 1.1 else "MISS") if ok else "FAILED"})
    return out


def rows_dlpack():
    try:
        import torch
    except ImportError:
        return [{"case": "dlpack round trip 64 MB", "error": "torch not installed"}]
    if not torch.cuda.is_available() or not hasattr(lc, "from_dlpack"):
        return [{"case": "dlpack round trip 64 MB", "error": "needs torch CUDA and lc.from_dlpack"}]
    t = torch.randn(16 * 1024 * 1024, device="cuda")  # 64 MB float32
    torch.cuda.synchronize()

    def round_trip():
        u = lc.from_dlpack(t)
        return torch.from_dlpack(u)

    back = round_trip()
    same = back.data_ptr() == t.data_ptr()
    lct = lc.from_dlpack(t)
    lc_ptr = getattr(lct, "data_ptr", None)
    same_lc = lc_ptr == t.data_ptr() if lc_ptr is not None else None
    s = harness.time_call(round_trip, samples=21, settle_s=0.0)
    us = s["median_s"] * 1e6
    ok = same and same_lc is not False
    return [{"case": "dlpack round trip 64 MB torch->lc->torch", "direct_ms": float("nan"), "api_ms": us / 1e3,
             "ratio": float("nan"), "same_pointer": bool(ok), "target": "no copy and < 20 us",
             "verdict": "PASS" if ok and us < 20 else "MISS"}]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="benchmark_results")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    dev = args.device
    reps = 3 if args.quick else 7
    lc.set_matmul_precision("highest")
    lc.api.set_engine("lightning")
    rows = rows_api(dev, reps) + rows_nn(dev, reps) + rows_dlpack()
    fields = ["case", "direct_ms", "api_ms", "ratio", "target", "verdict", "same_pointer", "error"]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = harness.environment({"device": dev})
    harness.write_csv(out_dir / "api_overhead.csv", rows, fields)
    harness.write_json(out_dir / "api_overhead.json", env, rows)
    lines = [[r.get("case", ""), "%.4f" % r["direct_ms"] if r.get("direct_ms") == r.get("direct_ms") and "direct_ms" in r else "n/a",
              "%.4f" % r["api_ms"] if "api_ms" in r else "n/a",
              "%.3fx" % r["ratio"] if r.get("ratio") == r.get("ratio") and "ratio" in r else "n/a",
              r.get("target", ""), r.get("verdict", "error: " + r.get("error", ""))] for r in rows]
    table = harness.markdown_table(["case", "direct ms", "API ms", "API/direct", "target", "verdict"], lines)
    (out_dir / "api_overhead.md").write_text("# API overhead\n\n" + table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
