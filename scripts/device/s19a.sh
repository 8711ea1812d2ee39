#!/bin/bash
# Session 19, call 1: why LLaMA 1.1B decodes slower with out_in weights (the [n, k] GEMV). Build;
# test_gemv_cuda (every case; the timing table once); layout_ab.py (B=1, GPT-2 and LLaMA) under each setting
# of CFGS; then one decode step's kernels under ncu, in_out / out_in (step_ncu.py), while time is left.
# Applies scripts/device/gemv_nk_ab.patch to the device's copy first: the knobs LC_GEMV_NK_ORDER=warp (columns
# spread over the SMs) and LC_GEMV_NK_SPECIAL=0 (the m = 1 kernel for every prologue kind, as landed, instead
# of one kernel per kind: plain 1,104 / SwiGLU 1,768 / norm 3,392 SASS instructions against 4,376, no spills
# in the first two).
# MODELS (default "g2 ll"), NCU (default "ll:in_out ll:out_in g2:out_in"), BUDGET (default 400 s: the later steps
# start only while that leaves them time). Summary: $OUT/summary.txt.
set -u
git apply scripts/device/gemv_nk_ab.patch || exit 1  # the A/B knobs below (not landed)
. scripts/device/build.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
MODELS=${MODELS:-g2 ll}; NCU=${NCU:-ll:in_out ll:out_in g2:out_in}; B=${BUDGET:-400}  # seconds the script may run
(for m in $MODELS; do [ $m = g2 ] && python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
   [ $m = ll ] && python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1; done) &
CFGS="LC_GEMV_NK_SPECIAL=0 LC_GEMV_NK_ORDER=tile LC_GEMV_NK_ORDER=warp LC_GEMV_NK_GRID=all"
before() { [ $(( $(date +%s) - T0 )) -lt $1 ]; }
gemv() {  # $2 = 1: with the timing table
  env $1 LC_TEST_VERBOSE=${2:-0} timeout 150 build/test_gemv_cuda > /tmp/gemv_$1.txt 2>&1
  log "[$1] test_gemv_cuda rc $?: $(tail -1 /tmp/gemv_$1.txt) ($(( $(date +%s) - T0 )) s)"
  sed -n '/^timing/,/^test_gemv_cuda/p' /tmp/gemv_$1.txt | tee -a $S
}
gemv LC_GEMV_NK_ORDER=tile $((B >= 300))  # while the checkpoints are written (the timing table: BUDGET >= 300)
gemv LC_GEMV_NK_ORDER=warp
wait
for c in $CFGS; do before $((B - 40)) || break; env $c LAYOUT_AB_BATCHES=1 timeout 60 python3 scripts/device/layout_ab.py $(for m in $MODELS; do echo /tmp/$m; done) 2>&1 | sed "s/^/[$c] /" | tee -a $S; done
for ml in $NCU; do before $((B - 60)) || break; m=${ml%:*}; lay=${ml#*:}
  timeout 90 ncu --nvtx --nvtx-include "step/" --graph-profiling node --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv python3 scripts/device/step_ncu.py /tmp/$m $lay > /tmp/ncu_$m$lay.csv 2> /tmp/ncu_$m$lay.err
  log "== ncu $m $lay rc $? ($(( $(date +%s) - T0 )) s)"
  python3 - /tmp/ncu_$m$lay.csv <<'PY' | tee -a $S
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    print(open(sys.argv[1]).read()[-2000:]); sys.exit()
h = rows[0]; ki, mi, vi, ui, ii = h.index("Kernel Name"), h.index("Metric Name"), h.index("Metric Value"), h.index("Metric Unit"), h.index("ID")
t, b, nm = {}, {}, {}
for r in rows[1:]:
    v = float(r[vi].replace(",", ""))
    if r[mi] == "gpu__time_duration.sum":
        t[r[ii]] = v * {"n": 1e-3, "u": 1.0, "m": 1e3}[r[ui][:1]]
    elif r[mi] == "dram__bytes_read.sum":
        b[r[ii]] = v * {"b": 1, "K": 1e3, "M": 1e6, "G": 1e9}[r[ui][:1]]
    nm[r[ii]] = r[ki].split("(")[0][:60]
agg = collections.OrderedDict()
for i, name in nm.items():
    c, tt, bb = agg.get(name, (0, 0.0, 0.0)); agg[name] = (c + 1, tt + t.get(i, 0), bb + b.get(i, 0))
tot = sum(x[1] for x in agg.values())
print(f"kernels {sum(x[0] for x in agg.values())}, sum {tot:.1f} us")
for name, (c, tt, bb) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"  {tt:8.1f} us  {c:3d} x {tt / c:6.2f}  {bb / 1e6:8.1f} MB  {bb / 1e3 / tt if tt else 0:6.0f} GB/s  {name}")
PY
  tail -2 /tmp/ncu_$m$lay.err | tee -a $S
done
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
