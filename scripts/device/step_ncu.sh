#!/bin/bash
# One decode step's kernels under ncu (GPT-2 124M and LLaMA 1.1B bf16, B=1; kernels serialised, caches
# not flushed, clocks left alone): per kernel name, count, total and mean us, and the step's sum.
# Summary: $OUT/step_ncu.txt. NCU_T (default 200): seconds for each model's ncu run.
set -u
. scripts/device/build.sh
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1
for m in g2 ll; do
  timeout ${NCU_T:-200} ncu --nvtx --nvtx-include "step/" --graph-profiling node --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum --csv python3 scripts/device/step_ncu.py /tmp/$m > /tmp/ncu_$m.csv 2> /tmp/ncu_$m.err
  echo "== $m rc $? ($(( $(date +%s) - T0 )) s)" | tee -a $OUT/step_ncu.txt
  python3 - /tmp/ncu_$m.csv <<'PY' | tee -a $OUT/step_ncu.txt
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    print(open(sys.argv[1]).read()[-2000:]); sys.exit()
h = rows[0]; ki, mi, vi, ui = h.index("Kernel Name"), h.index("Metric Name"), h.index("Metric Value"), h.index("Metric Unit")
agg = collections.OrderedDict()
for r in rows[1:]:
    if r[mi] != "gpu__time_duration.sum":
        continue
    v = float(r[vi].replace(",", "")) * {"n": 1e-3, "u": 1.0, "m": 1e3}[r[ui][:1]]  # ns, us (usecond), ms
    name = r[ki].split("(")[0][:70]
    c, t = agg.get(name, (0, 0.0)); agg[name] = (c + 1, t + v)
tot = sum(t for _, t in agg.values())
print(f"kernels {sum(c for c, _ in agg.values())}, sum {tot:.1f} us")
for name, (c, t) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"  {t:8.1f} us  {c:3d} x {t / c:6.2f}  {name}")
PY
  tail -3 /tmp/ncu_$m.err | tee -a $OUT/step_ncu.txt
done
