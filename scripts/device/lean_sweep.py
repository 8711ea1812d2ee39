"""The short-path decode (sdpa_decode_lean_cuda.cu, LC_SDPA_DECODE_LEAN) against the tensor-core decode by cache
length, graph-replayed as the runner's step runs it: `cache.attention_into(q, out, k_new=, v_new=[, positions=,
rope_theta=])` captured once per setting (its knob set at capture), B=1 bf16 at the runner's head shapes (GPT-2 124M:
H=12, Hkv=12, D=64, no rope; LLaMA 1.1B: H=32, Hkv=4, D=64, the rope fused). For each length L (keys in the cache
before the step) the settings' graphs alternate, each sample resetting the cache to its L-key prefill and timing
`inner` replays; prints us a step per setting (median over the rounds; SETTINGS: the tensor-core decode, the short
path a block a head, a block a kv head), each / the first, and the largest difference of each setting's first
output from a float64 reference of that step (no-rope shapes) or from the first setting's (rope).
Usage: python scripts/device/lean_sweep.py [rounds]"""
import os
import statistics
import sys

import torch

import lightning_core as lc
from step_ab import alternate  # scripts/device/step_ab.py (this script's directory)

SHAPES = [("gpt2", 12, 12, 64, False), ("llama", 32, 4, 64, True)]
LENGTHS = [31, 95, 223, 479, 991]
# the tensor-core decode (LC_SDPA_DECODE_LEAN=0), the short path a block a head, and a block a kv head
SETTINGS = [("base", {"LC_SDPA_DECODE_LEAN": "0"}), ("lean", {"LC_SDPA_DECODE_LEAN": "100000"}),
            ("lean_kv", {"LC_SDPA_DECODE_LEAN": "100000", "LC_SDPA_DECODE_LEAN_KV": "1"})]
KNOBS = ["LC_SDPA_DECODE_LEAN", "LC_SDPA_DECODE_LEAN_KV"]


def ref(q, kc, vc, group):
    """float64 attention of q [1, H, 1, D] over kc/vc [1, Hkv, L, D] (no mask: the new key is the last)."""
    k = kc.double().repeat_interleave(group, 1)
    v = vc.double().repeat_interleave(group, 1)
    s = (q.double() @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    return torch.softmax(s, -1) @ v


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    inner = 20
    g = torch.Generator(device="cuda").manual_seed(7)
    rnd = lambda *s: torch.randn(s, generator=g, device="cuda", dtype=torch.float32).to(torch.bfloat16)
    for name, h, hkv, d, rope in SHAPES:
        for pre in LENGTHS:
            kp, vp, kt, vt, qt = rnd(1, hkv, pre, d), rnd(1, hkv, pre, d), rnd(1, hkv, 1, d), rnd(1, hkv, 1, d), rnd(1, h, 1, d)
            lk = [lc.from_dlpack(x) for x in (kp, vp, kt, vt, qt)]
            pos = torch.full((1, 1), pre, device="cuda", dtype=torch.int64)
            extra = dict(positions=lc.from_dlpack(pos), rope_theta=10000.0) if rope else {}
            runs = []
            for label, env in SETTINGS:
                for n in KNOBS:
                    os.environ.pop(n, None)
                os.environ.update(env)
                cache = lc.KVCache(1, hkv, pre + inner + 4, d, dtype="bfloat16", device="cuda")
                out = torch.full((1, h, 1, d), float("nan"), device="cuda", dtype=torch.bfloat16)
                graph = lc.capture_graph(lambda c=cache, o=lc.from_dlpack(out):
                                         c.attention_into(lk[4], o, k_new=lk[2], v_new=lk[3], **extra))
                runs.append((label, cache, graph, out, []))
            for n in KNOBS:
                os.environ.pop(n, None)
            firsts = alternate(runs, (lk[0], lk[1]), inner, rounds)
            meds = [statistics.median(r[4]) for r in runs]
            if rope:
                errs = [float((f.double() - firsts[0].double()).abs().max()) for f in firsts]
                what = "vs base"
            else:
                r = ref(qt, torch.cat([kp, kt], 2), torch.cat([vp, vt], 2), h // hkv)
                errs = [float((f.double() - r).abs().max()) for f in firsts]
                what = "vs float64"
            nan = any(bool(torch.isnan(f).any()) for f in firsts)
            times = ", ".join(f"{lab} {m:6.2f} us ({m / meds[0]:.3f}x)" for (lab, _), m in zip(SETTINGS, meds))
            diffs = ", ".join(f"{lab} {e:.2e}" for (lab, _), e in zip(SETTINGS, errs))
            print(f"{name:>5} L={pre + 1:5d}: {times}; max |diff| {what}: {diffs}{'  NaN!' if nan else ''}", flush=True)
            for _, _, graph, _, _ in runs:
                graph.release()


if __name__ == "__main__":
    main()
