#!/bin/bash
# Why a decode step's kernels wait (developer probe): one step's kernels under ncu (step_ncu.py; kernels serialised,
# caches not flushed, clocks left alone) with their duration, instructions executed and the warp stall reasons
# as ncu counts them (average warps stalled for the reason per issue-active cycle): no_instruction (instruction
# fetch: the code not in the instruction caches), imc_miss (constant cache), long_scoreboard (global / L2
# loads), barrier, wait, membar. Per kernel name: count, mean us, instructions, and each reason's mean.
# Summary: $OUT/step_stalls.txt. STALL_MODELS (default "ll g2"), NCU_T (default 90): seconds for each ncu run.
set -u
. scripts/device/build.sh
M="gpu__time_duration.sum,smsp__inst_executed.sum"
for r in no_instruction imc_miss long_scoreboard barrier wait membar; do M="$M,smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"; done
for m in ${STALL_MODELS:-ll g2}; do
  [ -d /tmp/$m ] || python3 -m lightning_core.models.make_random --arch $([ $m = g2 ] && echo gpt2 --size 124m || echo llama --size 1b --dtype bfloat16) /tmp/$m > /dev/null 2>&1
  timeout ${NCU_T:-90} ncu --nvtx --nvtx-include "step/" --graph-profiling node --cache-control none --clock-control none \
    --metrics $M --csv python3 scripts/device/step_ncu.py /tmp/$m > /tmp/stall_$m.csv 2> /tmp/stall_$m.err
  echo "== $m rc $? ($(( $(date +%s) - T0 )) s)" | tee -a $OUT/step_stalls.txt
  python3 - /tmp/stall_$m.csv <<'PY' | tee -a $OUT/step_stalls.txt
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    print(open(sys.argv[1]).read()[-2000:]); sys.exit()
h = rows[0]; ki, mi, vi, ui, ii = h.index("Kernel Name"), h.index("Metric Name"), h.index("Metric Value"), h.index("Metric Unit"), h.index("ID")
per = collections.OrderedDict()  # kernel name -> {launch id -> {metric: value}}
for r in rows[1:]:
    v = float(r[vi].replace(",", ""))
    if r[mi] == "gpu__time_duration.sum":
        v *= {"n": 1e-3, "u": 1.0, "m": 1e3}[r[ui][:1]]
    per.setdefault(r[ki].split("(")[0][:48], {}).setdefault(r[ii], {})[r[mi]] = v
short = lambda m: m.replace("smsp__average_warps_issue_stalled_", "").replace("_per_issue_active.ratio", "")
mets = [m for m in next(iter(next(iter(per.values())).values())) if "stalled" in m]
print(f"{'kernel':<48} {'n':>3} {'us':>7} {'inst':>8} " + " ".join(f"{short(m)[:9]:>9}" for m in mets))
for name, launches in sorted(per.items(), key=lambda kv: -sum(x.get("gpu__time_duration.sum", 0) for x in kv[1].values())):
    n = len(launches)
    mean = lambda m: sum(x.get(m, 0.0) for x in launches.values()) / n
    print(f"{name:<48} {n:3d} {mean('gpu__time_duration.sum'):7.2f} {mean('smsp__inst_executed.sum'):8.0f} " +
          " ".join(f"{mean(m):9.3f}" for m in mets))
PY
  tail -2 /tmp/stall_$m.err | tee -a $OUT/step_stalls.txt
done
