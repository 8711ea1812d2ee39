"""The sdpa suite's graph-replayed decode step (issue 15's <= 12 us target: B=1, H=32, Hkv=8, D=128, bf16, a KV cache
of 1023 tokens plus one appended a step, `cache.attention_into(q, out, k_new=, v_new=)` captured once) under several
knob settings, each captured in its own graph with its knobs set, the graphs' samples alternating (rounds of one
sample each) so that the machine's drift falls on every setting alike. Each sample resets the cache to the prefill
and times `inner` replays (the suite's sample). Prints us a step per setting (median over the rounds) and whether
every setting's output equals the first's bit for bit.
Usage: python scripts/device/step_ab.py "name=K=V,K=V;name2=..." [rounds]  (an empty setting list: the default)."""
import os
import statistics
import sys

import torch

import lightning_core as lc


def settings(arg):
    out = []
    for part in arg.split(";"):
        name, _, kv = part.partition("=")
        env = dict(x.split("=", 1) for x in kv.split(",") if "=" in x)
        out.append((name, env))
    return out


def alternate(runs, prefill, inner, rounds):
    """runs: [(name, cache, graph, out, samples)], each graph a captured decode step on its cache. One replay after
    the prefill (k, v) gives each run's output; then 2 warm-up rounds and `rounds` rounds of one sample each (the cache
    reset to the prefill, `inner` replays timed: us a step appended to the run's samples), so that the machine's drift
    falls on every run alike. Returns the outputs (clones)."""
    firsts = []
    for _, cache, graph, out, _ in runs:
        cache.reset()
        cache.append(*prefill)
        graph.replay()
        lc.synchronize("cuda")
        firsts.append(out.clone())

    def sample(cache, graph):
        cache.reset()
        cache.append(*prefill)
        return lc.time_device_ms(lambda: [graph.replay() for _ in range(inner)], device="cuda") * 1e3 / inner

    for _ in range(2):  # warm-up
        for _, cache, graph, _, _ in runs:
            sample(cache, graph)
    for _ in range(rounds):
        for _, cache, graph, _, ts in runs:
            ts.append(sample(cache, graph))
    return firsts


def main():
    sets = settings(sys.argv[1] if len(sys.argv) > 1 else "base=")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    b, h, hkv, d, pre, inner = 1, 32, 8, 128, 1023, 20
    g = torch.Generator(device="cuda").manual_seed(5)
    rnd = lambda *s: torch.randn(s, generator=g, device="cuda", dtype=torch.float32).to(torch.bfloat16)
    kp, vp, kt, vt, qt = rnd(b, hkv, pre, d), rnd(b, hkv, pre, d), rnd(b, hkv, 1, d), rnd(b, hkv, 1, d), rnd(b, h, 1, d)
    lk = [lc.from_dlpack(x) for x in (kp, vp, kt, vt, qt)]
    runs = []
    for name, env in sets:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        cache = lc.KVCache(b, hkv, pre + inner + 68, d, dtype="bfloat16", device="cuda")
        out = torch.full((b, h, 1, d), float("nan"), device="cuda", dtype=torch.bfloat16)
        lo = lc.from_dlpack(out)
        graph = lc.capture_graph(lambda: cache.attention_into(lk[4], lo, k_new=lk[2], v_new=lk[3]))
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        runs.append((name, cache, graph, out, []))
    firsts = alternate(runs, (lk[0], lk[1]), inner, rounds)
    base = statistics.median(runs[0][4])
    for (name, _, _, _, ts), o in zip(runs, firsts):
        m = statistics.median(ts)
        same = torch.equal(o.view(torch.int16), firsts[0].view(torch.int16))
        print(f"{name:>10}: {m:7.2f} us a step (min {min(ts):.2f}, {m / base:.3f}x the first) "
              f"output {'equal' if same else 'DIFFERS'}")
    for _, _, graph, _, _ in runs:
        graph.release()


if __name__ == "__main__":
    main()
