#!/bin/bash
# Session 30's second call: the short-path decode (LC_SDPA_DECODE_LEAN) against the tensor-core decode by cache length
# at the runner's head shapes (lean_sweep.py, graph-replayed, with its float64 / base differences), the logits it gives
# a model against a float32 run (lean_logits.py: LLaMA 1.1B's greedy tokens differed between the two in the first call),
# then the PDL timeline build and the median decode step of GPT-2 124M / LLaMA 1.1B with and without it (where the
# short path's ~16 us a GPT-2 step went and why LLaMA's step did not move). LIMIT: seconds planned.
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C}"
. scripts/device/preamble.sh
rm -f $OUT/configure.log $OUT/build.log
timeout 150 python3 scripts/device/lean_sweep.py 9 2>&1 | grep -v Warn | tee -a $S
wait  # the random checkpoints
for d in /tmp/ll /tmp/g2; do timeout 80 python3 scripts/device/lean_logits.py $d 2>&1 | grep -v Warn | tee -a $S; done
log "sweep + logits $(( $(date +%s) - T0 )) s"
[ $(left) -lt 200 ] && exit 0
t=$(date +%s)
cmake -S . -B build -DLC_TIMELINE=ON > /tmp/tl_conf.log 2>&1 && cmake --build build -j16 --target _C > /tmp/tl_build.log 2>&1 || { tail -20 /tmp/tl_build.log | tee -a $S; exit 1; }
log "timeline build $(( $(date +%s) - t )) s"
for d in /tmp/g2 /tmp/ll; do
  for env in "" "LC_SDPA_DECODE_LEAN=100000"; do
    echo "== $d ${env:-default}"; timeout 60 env $env python3 scripts/device/timeline.py $d 2>&1 | grep -v Warn
  done
done > $OUT/timeline.txt 2>&1
grep -E "^==|median step|^  [a-z_]+ +[0-9]+ " $OUT/timeline.txt | tee -a $S
log "all $(( $(date +%s) - T0 )) s"
