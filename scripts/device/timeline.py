"""Where a decode step's time goes in its real schedule, PDL overlap included (which ncu, serialising the kernels,
cannot show). Needs the timeline build (cmake -DLC_TIMELINE=ON: pdl.cuh's records, lc_cuda_timeline;
scripts/device/timeline.sh builds it and runs this). Loads a make_random folder (argv[1]) in bf16 on CUDA, warms
the decode graphs, empties the records, runs generate again (argv[2] new tokens, default 24), and prints the
median decode step's kernel launches in order (a step starts at its embedding lookup): the file of the kernel,
its blocks, `ready` (when the first block's griddepcontrol.wait returned, i.e. the launch before it had ended; us
from the step's start), `run` (the next launch's ready minus this one's: this kernel's time after its wait),
`early` (how long the first block had waited: the start that PDL won) and `late` (how long after the first block
the last one reached the wait: blocks not yet resident). Kernels launched without PDL (lc.add's broadcast,
argmax, cuBLASLt) leave no record; their time falls in the run of the launch before them.
Usage: python scripts/device/timeline.py DIR [NEW_TOKENS]"""
import collections
import statistics
import sys

import numpy as np

from lightning_core import _C
from lightning_core.models import load

FILES = ["gemv_cuda", "gemv_ring_cuda", "index_cuda", "kv_cache_cuda", "layer_norm_cuda", "layout_cuda",
         "llm_cuda", "rope_cuda", "sdpa_cuda", "sdpa_decode_cuda", "sdpa_decode_mma_cuda",
         "sdpa_decode_lean_cuda"]  # timeline.c's order


def launches(rec):
    """Records [file, blocks << 32 | last << 16 | SM, before, after] -> launches in order of their ready time:
    (file, blocks, first block's before, ready, last block's before or None)."""
    file, meta, t0, t1 = (rec[:, i].astype(np.int64) for i in range(4))
    blocks, last = meta >> 32, (meta >> 16) & 1
    firsts = [i for i in range(len(rec)) if last[i] == 0 or blocks[i] == 1]
    lasts = collections.defaultdict(list)
    for i in range(len(rec)):
        if last[i] == 1 and blocks[i] > 1:
            lasts[(file[i], blocks[i])].append(i)
    out = []
    for i in sorted(firsts, key=lambda i: t1[i]):
        cand = lasts.get((file[i], blocks[i]), [])
        j = min(cand, key=lambda j: abs(t1[j] - t1[i]), default=None)  # the same launch: returns with it
        if j is not None and abs(t1[j] - t1[i]) > 2000:
            j = None
        out.append((FILES[file[i]], int(blocks[i]), int(t0[i]), int(t1[i]), None if j is None else int(t0[j])))
    return out


def main():
    model = load(sys.argv[1], device="cuda", dtype="bfloat16")
    new = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    prompts = [list(range(1, 33))]
    model.generate(prompts, new)  # captures and warms the decode graphs
    _C.cuda_timeline(reset=True)
    model.generate(prompts, new)
    rec = np.frombuffer(_C.cuda_timeline(reset=True), np.uint64).reshape(-1, 4)
    ls = launches(rec)
    starts = [i for i, l in enumerate(ls) if l[0] == "index_cuda" and (i == 0 or ls[i - 1][0] != "index_cuda")]
    steps = [ls[a:b] for a, b in zip(starts, starts[1:])]
    n = statistics.mode(len(s) for s in steps)
    steps = [s for s in steps if len(s) == n]
    print(f"{sys.argv[1]}: {len(rec)} records, {len(ls)} launches, {len(steps)} decode steps of {n} PDL launches")
    if not steps:
        return
    span = [s[-1][3] - s[0][3] for s in steps]
    med = steps[span.index(sorted(span)[len(span) // 2])]
    t00 = med[0][3]
    print(f"median step: {(med[-1][3] - t00) / 1e3:.1f} us from the first launch's ready to the last one's")
    print(f"{'#':>3} {'file':<22} {'blocks':>6} {'ready':>8} {'run':>7} {'early':>7} {'late':>7}")
    per = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for i, (f, nb, b0, r, lb) in enumerate(med):
        run = (med[i + 1][3] - r) / 1e3 if i + 1 < len(med) else float("nan")
        late = "" if lb is None else f"{(lb - b0) / 1e3:7.2f}"
        print(f"{i:3d} {f:<22} {nb:6d} {(r - t00) / 1e3:8.2f} {run:7.2f} {(r - b0) / 1e3:7.2f} {late:>7}")
        if i + 1 < len(med):
            per[f][0] += 1
            per[f][1] += run
            per[f][2] += (r - b0) / 1e3
    print("per file: launches, run us (sum), early us (sum)")
    for f, (c, run, early) in sorted(per.items(), key=lambda kv: -kv[1][1]):
        print(f"  {f:<22} {c:4d} {run:9.1f} {early:9.1f}")


if __name__ == "__main__":
    main()
