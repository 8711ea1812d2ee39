#!/bin/bash
# Session 31's first call (s31.sh without the timeline, with a decode sweep): the landed tree's KV-cache / engine /
# sdpa / GEMV tests on the card, then our decode attention against cuDNN's engine and torch, graph-replayed, over the
# plain single-query shapes below the cuDNN rule's 2^17 k/v rows (decode_graph.py: B 1-16, Skv 512-8k, H=32, Hkv=8,
# D=128, bf16), then the sdpa suite and the models suite. LIMIT: seconds planned.
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_sdpa_cuda test_gemv_cuda}"
. scripts/device/preamble.sh
kv_card_tests  # preamble.sh
t=$(date +%s)
DG_VARIANTS=default,cudnn DG_SHAPES=1:512,1:1024,1:2048,1:4096,1:8192,2:1024,2:4096,4:1024,4:2048,8:512,8:1024,8:2048,16:512,16:1024 \
  timeout 150 python3 scripts/device/decode_graph.py > $OUT/decode_graph.txt 2>&1
log "decode_graph rc $? in $(( $(date +%s) - t )) s"; grep -v Warn $OUT/decode_graph.txt | tee -a $S
t=$(date +%s); timeout 150 python3 -m lightning_core.bench --suite sdpa --device cuda --repeats 1 --out $OUT/sdpa > /tmp/sdpa_suite.txt 2>&1
log "suite sdpa rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/sdpa_suite.txt)"; grep -o "target[^|]*MISS[^|]*" $OUT/sdpa/report.md | sort -u | head -14 | tee -a $S
wait
[ $(left) -gt 130 ] && models_suite 125
log "all $(( $(date +%s) - T0 )) s"
