#!/bin/bash
# Written in session 30 as session 31's first call; session 31 ran s31b.sh / s31c.sh instead, so this one (its timeline part) has not run: the tree with the short-path decode on by default, measured
# where the issues' targets are read: the sdpa suite (issue 15's decode rows and graph decode step), the models suite
# (issue 16's rows), the KV-cache / engine CUDA tests (kv_card_tests), then the PDL timeline of GPT-2 124M and LLaMA 1.1B's median
# decode steps (which kernels the B=1 step's ~265 / ~1,040 us go to now that the attention is the short path).
# LIMIT: seconds planned (560 leaves the timeline its ~100 s).
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_sdpa_cuda test_gemv_cuda}"
. scripts/device/preamble.sh
kv_card_tests  # preamble.sh: the rope / KV-cache / engine / TP / CLI CUDA tests, test_sdpa_cuda, test_gemv_cuda
rm -f $OUT/configure.log $OUT/build.log
t=$(date +%s); timeout 150 python3 -m lightning_core.bench --suite sdpa --device cuda --repeats 1 --out $OUT/sdpa > /tmp/sdpa_suite.txt 2>&1
log "suite sdpa rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/sdpa_suite.txt)"; grep -o "target[^|]*MISS[^|]*" $OUT/sdpa/report.md | sort -u | head -12 | tee -a $S
wait
[ $(left) -gt 230 ] && models_suite 125
[ $(left) -gt 100 ] || { log "all $(( $(date +%s) - T0 )) s (no time for the timeline)"; exit 0; }
cmake -S . -B build -DLC_TIMELINE=ON > /tmp/tl_conf.log 2>&1 && cmake --build build -j16 --target _C > /tmp/tl_build.log 2>&1 || { tail -20 /tmp/tl_build.log | tee -a $S; exit 1; }
for d in /tmp/g2 /tmp/ll; do echo "== $d"; timeout 40 python3 scripts/device/timeline.py $d 2>&1 | grep -v Warn; done > $OUT/timeline.txt 2>&1
grep -E "^==|median step|^  [a-z_]+ +[0-9]+ " $OUT/timeline.txt | tee -a $S
log "all $(( $(date +%s) - T0 )) s"
